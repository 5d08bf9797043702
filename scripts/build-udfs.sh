#!/usr/bin/env bash
# Builds every UDF crate in udfs/ to target/wasm32-wasip1/release/<name>.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null
packages=()
for manifest in udfs/*/Cargo.toml; do
  packages+=(-p "$(basename "$(dirname "$manifest")")")
done
cargo build --release --target wasm32-wasip1 "${packages[@]}"
