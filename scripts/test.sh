#!/usr/bin/env bash
# Runs every test of the workspace: unit and doc tests, the UDFs' native tests, and the integration tests
# against tansu and librdkafka's mock cluster. Installs what they need first (idempotent). Ends with one
# line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1
bash .ci/install-tansu
bash .ci/install-guest-toolchains
bash scripts/build-udfs.sh
cargo build --release --bin weir
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --workspace 2>&1 | tee "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
