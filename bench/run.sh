#!/usr/bin/env bash
# The benchmark suite with one command, on a fresh machine too: installs and builds what it needs
# (idempotent: the wasm32-wasip1 target, tansu 0.6.0, the chart font, componentize-py, the three Rust UDFs
# of examples/fraud-window and the Python fraud-flagged, the weir binary), then
# runs `weir-bench suite` with any arguments given (`bash bench/run.sh --runs 5`; `--help` lists them).
# Results: target/bench-results/{results.md, runs.csv, latency.csv, throughput.png}.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1
bash .ci/install-build-deps
bash .ci/install-tansu
bash .ci/install-chart-font
bash .ci/install-guest-toolchains python
bash scripts/build-udfs.sh json-transactions fraud-flagged filter py-fraud-flagged
cargo build --release --bin weir
cargo run --release -p weir-bench --bin weir-bench -- suite "$@"
