#!/usr/bin/env bash
# Builds src/train/gru/gru.wasm from src/train/gru/gru.c: C -> wasm32 + simd128, no libc, no debug info.
#
#   scripts/build-gru-wasm.sh [OUT]      (default OUT: src/train/gru/gru.wasm)
#
# Needs clang and wasm-ld (Debian bookworm: apt-get install -y clang lld, clang 14.0.6). The output is
# deterministic for a given clang version: no debug info, no names, no producers section, fixed flags.
# The shipped gru.wasm was built with the version in PINNED_CLANG; test/unit/gru-kernel.test.ts checks
# that a fresh build equals it byte for byte when that clang is on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

PINNED_CLANG="14.0.6"
SRC=src/train/gru/gru.c
OUT="${1:-src/train/gru/gru.wasm}"
CLANG="${CLANG:-clang}"

command -v "$CLANG" >/dev/null || { echo "build-gru-wasm: $CLANG not found (apt-get install -y clang lld)" >&2; exit 2; }
command -v wasm-ld >/dev/null || { echo "build-gru-wasm: wasm-ld not found (apt-get install -y lld)" >&2; exit 2; }
version="$("$CLANG" --version | head -n1 | sed -E 's/.*clang version ([0-9.]+).*/\1/')"
if [ "$version" != "$PINNED_CLANG" ]; then
  echo "build-gru-wasm: WARNING: clang $version, the shipped gru.wasm was built with $PINNED_CLANG;" \
       "the output will work but will not be byte-identical" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# -ffreestanding -nostdlib: no libc; -fno-builtin: no implicit memset/memcpy calls (nothing would provide them).
# -ffp-contract=off: no fused multiply-add (wasm SIMD128 has none anyway), so the JS port can match closely.
# Linker: no entry point, export only the functions marked export_name plus the memory, 1 MiB stack,
# memory growable to 4 GiB, and strip names/debug/producers so the bytes depend only on source and compiler.
"$CLANG" --target=wasm32 -msimd128 -O3 -ffreestanding -nostdlib -fno-builtin -ffp-contract=off \
  -fno-exceptions -fvisibility=hidden -std=c11 -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=1048576 -Wl,--max-memory=4294967296 \
  -o "$tmp/gru.wasm" "$SRC"
cp "$tmp/gru.wasm" "$OUT"
chmod 0644 "$OUT"   # wasm-ld marks its output executable
echo "build-gru-wasm: wrote $OUT ($(wc -c <"$OUT") bytes, clang $version)" >&2
