#!/usr/bin/env bash
# Builds every UDF in udfs/ from source to target/wasm32-wasip1/release/<name>.wasm, with `-` in the folder
# name written `_`, whatever the language:
#   udfs/<name>/Cargo.toml    Rust     cargo, target wasm32-wasip1
#   udfs/<name>/*.c           C        clang --target=wasm32-wasi (wasi-libc), with guest-sdk/c on the include path
#   udfs/<name>/*.zig         Zig      zig 0.13 build-exe, with guest-sdk/zig/weir.zig as module `weir`
#   udfs/<name>/package.json  AssemblyScript  npm ci && npm run build (writes build/<name>.wasm)
# The compilers come from .ci/install-guest-toolchains.
set -euo pipefail
cd "$(dirname "$0")/.."
out="target/wasm32-wasip1/release"
zig="${ZIG:-$HOME/.cache/weir/zig-0.13.0/ziglang/zig}"
need() {
  command -v "$1" >/dev/null || [ -x "$1" ] || { echo "build-udfs: $1 not found; run .ci/install-guest-toolchains" >&2; exit 1; }
}

rustup target add wasm32-wasip1 >/dev/null
packages=()
for manifest in udfs/*/Cargo.toml; do
  packages+=(-p "$(basename "$(dirname "$manifest")")")
done
cargo build --release --target wasm32-wasip1 "${packages[@]}"

for dir in udfs/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  module="$out/${name//-/_}.wasm"
  if compgen -G "$dir/*.c" >/dev/null; then
    need clang
    echo "build-udfs: C $dir -> $module"
    clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
      -I guest-sdk/c -o "$module" "$dir"/*.c
  elif compgen -G "$dir/*.zig" >/dev/null; then
    need "$zig"
    echo "build-udfs: Zig $dir -> $module"
    root="$(ls "$dir"/*.zig | head -1)"
    "$zig" build-exe -target wasm32-freestanding -fno-entry -rdynamic -O ReleaseSmall \
      --cache-dir target/zig-cache --global-cache-dir target/zig-cache \
      --dep weir "-Mroot=$root" -Mweir=guest-sdk/zig/weir.zig "-femit-bin=$module"
    rm -f "$module.o"
  elif [ -f "$dir/package.json" ]; then
    need npm
    echo "build-udfs: AssemblyScript $dir -> $module"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
    cp "$dir/build/$name.wasm" "$module"
  fi
done
