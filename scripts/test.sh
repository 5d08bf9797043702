#!/usr/bin/env bash
# Runs every test of the workspace: unit and doc tests, the UDFs' native tests, and the integration tests
# against tansu and librdkafka's mock cluster. Installs what they need first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1
bash .ci/install-tansu
bash scripts/build-udfs.sh
cargo build --release --bin weir
cargo test --release --workspace
