#!/bin/sh
# The C API end to end: install libfep into a temporary prefix, build a
# module with `fepc build`, compile docs/examples/classify.c against the
# installed library through pkg-config, run it, and check that it learned
# (energy falls) and predicts its two training classes.
# usage: api_example.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
# (EXTRA_CFLAGS: the sanitizer flags when libfep itself is sanitized)
set -eu
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
"$tmp/prefix/bin/fepc" build "$src/models/fmnist_mlp.fep" -o "$tmp/mlp.so"
test -f "$tmp/mlp.h"
cc -Wall -Wextra -Werror $extra "$src/docs/examples/classify.c" -include "$tmp/mlp.h" \
   $(pkg-config --cflags --libs fep) -o "$tmp/classify"
"$tmp/classify" "$tmp/mlp.so" > "$tmp/out.txt"
cat "$tmp/out.txt"
grep -q "sample 0: predicted class 0" "$tmp/out.txt"
grep -q "sample 1: predicted class 1" "$tmp/out.txt"
grep -q "no tensor 'no_such_tensor'" "$tmp/out.txt"
echo "1 passed, 0 failed"
