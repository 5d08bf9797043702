#!/usr/bin/env bash
# The fraud demo from scratch: builds the weir binary and the two UDFs the pipeline runs (both Rust, so Rust
# is all it needs), then runs the pipeline against an in-process Kafka broker with generated transactions
# and checks the output. Extra arguments go to `weir demo` (e.g. --records 1000000).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-udfs.sh json-transactions fraud-flagged
cargo build --release --bin weir
./target/release/weir demo examples/fraud/pipeline.toml "$@"
