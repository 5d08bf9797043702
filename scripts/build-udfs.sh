#!/usr/bin/env bash
# Builds UDFs in udfs/ from source to target/wasm32-wasip1/release/<name>.wasm, with `-` in the folder
# name written `_`, whatever the language:
#   udfs/<name>/Cargo.toml    Rust     cargo, target wasm32-wasip1; or wasm32-wasip2, which makes a component,
#                                      when the Cargo.toml says `target = "wasm32-wasip2"` under
#                                      [package.metadata.weir]
#   udfs/<name>/*.c           C        clang --target=wasm32-wasi (wasi-libc), with guest-sdk/c on the include path
#   udfs/<name>/*.zig         Zig      zig 0.13 build-exe, with guest-sdk/zig/weir.zig as module `weir`
#   udfs/<name>/package.json  AssemblyScript  npm ci && npm run build (writes build/<name>.wasm)
#   udfs/<name>/app.py        Python   componentize-py 0.25.1 against wit/weir-udf.wit, with guest-sdk/python
#                                      (weir_udf) on the path; the world is pyproject.toml's [tool.weir] world
#                                      (a component, not a core module: docs/components.md)
#   udfs/<name>/app.js        JavaScript  ComponentizeJS 0.23.0 (scripts/componentize-js.mjs) against
#                                      wit/weir-udf.wit; the world is package.json's "weir": {"world": ...}
#
# Usage: scripts/build-udfs.sh [NAME...]
#   With names (folders of udfs/), builds only those: `examples/fraud/demo.sh` builds the two it runs, so a
#   new machine needs nothing but Rust. Without names, builds every UDF; a language whose compiler is not
#   installed is then skipped with a one-line note (.ci/install-guest-toolchains installs them all).
#   WEIR_ALL_UDFS=1 makes a missing compiler an error instead: the test command sets it, since the tests
#   use every UDF.
set -euo pipefail
cd "$(dirname "$0")/.."
out="target/wasm32-wasip1/release"
zig="${ZIG:-$HOME/.cache/weir/zig-0.13.0/ziglang/zig}"
componentize_py="${COMPONENTIZE_PY:-$HOME/.cache/weir/componentize-py-0.25.1/bin/componentize-py}"
componentize_js="${COMPONENTIZE_JS:-$HOME/.cache/weir/componentize-js-0.23.0}"
strict="${WEIR_ALL_UDFS:-0}"

# Whether the compiler `$1` (a command or a path) for language `$2` is here. A UDF asked for by name, or any
# UDF under WEIR_ALL_UDFS=1, needs it; otherwise its UDF is skipped with a note.
have() {
  command -v "$1" >/dev/null || [ -x "$1" ] && return 0
  if [ "$strict" = 1 ] || [ "$named" = 1 ]; then
    echo "build-udfs: $1 not found for the $2 UDF $3; run .ci/install-guest-toolchains" >&2
    exit 1
  fi
  echo "build-udfs: skipping the $2 UDF $3 ($1 not found; .ci/install-guest-toolchains installs it)" >&2
  return 1
}

dirs=()
named=0
if [ "$#" -gt 0 ]; then
  named=1
  for name in "$@"; do
    [ -d "udfs/$name" ] || { echo "build-udfs: no UDF folder udfs/$name (have: $(ls udfs | tr '\n' ' '))" >&2; exit 1; }
    dirs+=("udfs/$name")
  done
else
  for dir in udfs/*/; do dirs+=("${dir%/}"); done
fi

# Rust: core modules and components in separate cargo runs, so that the component feature of weir-guest
# is not unified into the core modules.
packages=()
components=()
for dir in "${dirs[@]}"; do
  [ -f "$dir/Cargo.toml" ] || continue
  if grep -q '^target = "wasm32-wasip2"' "$dir/Cargo.toml"; then
    components+=("$(basename "$dir")")
  else
    packages+=(-p "$(basename "$dir")")
  fi
done
if [ "${#packages[@]}" -gt 0 ]; then
  rustup target add wasm32-wasip1 >/dev/null
  cargo build --release --target wasm32-wasip1 "${packages[@]}"
fi
if [ "${#components[@]}" -gt 0 ]; then
  rustup target add wasm32-wasip2 >/dev/null
  cargo build --release --target wasm32-wasip2 "${components[@]/#/--package=}"
  mkdir -p "$out"
  for package in "${components[@]}"; do
    module="${package//-/_}.wasm"
    echo "build-udfs: Rust component udfs/$package -> $out/$module"
    cp "target/wasm32-wasip2/release/$module" "$out/$module"
  done
fi

for dir in "${dirs[@]}"; do
  name="$(basename "$dir")"
  module="$out/${name//-/_}.wasm"
  if compgen -G "$dir/*.c" >/dev/null; then
    have clang C "$name" || continue
    echo "build-udfs: C $dir -> $module"
    mkdir -p "$out"
    clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
      -I guest-sdk/c -o "$module" "$dir"/*.c
  elif compgen -G "$dir/*.zig" >/dev/null; then
    have "$zig" Zig "$name" || continue
    echo "build-udfs: Zig $dir -> $module"
    mkdir -p "$out"
    root="$(ls "$dir"/*.zig | head -1)"
    "$zig" build-exe -target wasm32-freestanding -fno-entry -rdynamic -O ReleaseSmall \
      --cache-dir target/zig-cache --global-cache-dir target/zig-cache \
      --dep weir "-Mroot=$root" -Mweir=guest-sdk/zig/weir.zig "-femit-bin=$module"
    rm -f "$module.o"
  elif [ -f "$dir/app.py" ]; then
    have "$componentize_py" Python "$name" || continue
    world="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["tool"]["weir"]["world"])' "$dir/pyproject.toml")"
    echo "build-udfs: Python $dir ($world) -> $module"
    mkdir -p "$out"
    "$componentize_py" -d wit -w "$world" componentize app -p guest-sdk/python -p "$dir" -o "$module" >/dev/null
  elif [ -f "$dir/app.js" ]; then
    have "$componentize_js/node_modules/.bin/componentize-js" JavaScript "$name" || continue
    world="$(node -p 'require(process.argv[1]).weir.world' "$PWD/$dir/package.json")"
    echo "build-udfs: JavaScript $dir ($world) -> $module"
    mkdir -p "$out"
    COMPONENTIZE_JS="$componentize_js" node scripts/componentize-js.mjs "$dir/app.js" "$world" "$module"
  elif [ -f "$dir/package.json" ]; then
    have npm AssemblyScript "$name" || continue
    echo "build-udfs: AssemblyScript $dir -> $module"
    mkdir -p "$out"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
    cp "$dir/build/$name.wasm" "$module"
  fi
done
