#!/usr/bin/env bash
# Runs every test of the workspace: the README's first command as a new user meets it, unit and doc tests,
# the UDFs' native tests, and the integration tests against tansu and librdkafka's mock cluster, then the
# benchmark suite at a small N (exactness only). Installs what they need first (idempotent). Ends with one
# line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2
bash .ci/install-build-deps
# First, before any guest compiler or tansu is installed: the demo on a throwaway HOME.
bash .ci/check-first-run
bash .ci/install-tansu
bash .ci/install-stunnel
bash .ci/install-confluent-kafka
bash .ci/install-guest-toolchains
# The tests use every UDF, so a missing compiler is an error here, not a skipped UDF.
WEIR_ALL_UDFS=1 bash scripts/build-udfs.sh
cargo build --release --bin weir
# The library's way in: the windowed pipeline built with PipelineBuilder checks its own alerts.
cargo run --release --example embedded | grep -E '^(embedded|[0-9]+ batches)'
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --workspace 2>&1 | tee "$log"
# The benchmark suite at a small N: every configuration's alerts must be exact (no timing is asserted).
bash .ci/install-chart-font
cargo build --release -p weir-bench --bin weir-bench
./target/release/weir-bench suite --n 20000 --runs 1 --latency-n 20000 --latency-rate 20000 \
  --out target/bench-small | grep -E '^(generated|run|latency|written)'
# A short soak: exact alerts with the footprint sampled (too short to show a plateau, so not checked).
./target/release/weir-bench soak --n 1000000 --rate 200000 --out target/bench-soak-small --exact-only \
  | grep -E '^(soak|written)'
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
