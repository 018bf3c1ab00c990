#!/bin/sh
# The C API end to end: install libfep into a temporary prefix, build a
# module with `fepc build`, compile docs/examples/classify.c against the
# installed library through pkg-config, run it, and check that it learned
# (energy falls) and predicts its two training classes; then drive the
# T-maze agent from C (docs/examples/tmaze_agent.c) and act in a world
# written in C (docs/examples/coin_world.c, a FepEnvironment).
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
# a discrete agent driven step by step from C, in a world the program owns
cc -Wall -Wextra -Werror $extra "$src/docs/examples/tmaze_agent.c" $(pkg-config --cflags --libs fep) -o "$tmp/agent"
"$tmp/agent" "$src/models/agents/tmaze.fep" > "$tmp/agent.txt"
cat "$tmp/agent.txt"
grep -q "first move: G = 5.1304 4.5353 4.5353 4.4372, P = 0.0000 0.1471 0.1471 0.7059" "$tmp/agent.txt"
rate=$(sed -n 's/first arm rewarded in \([0-9]*\) of 100 episodes/\1/p' "$tmp/agent.txt")
test "${rate:-0}" -ge 95
grep -q "bad observation: agent 0: outcome 'where' has 4 values (0..3), got 7" "$tmp/agent.txt"
# an environment written in C, loaded by fepc act
cc -Wall -Wextra -Werror $extra -shared -fPIC "$src/docs/examples/coin_world.c" $(pkg-config --cflags fep) \
   -o "$tmp/libcoin.so"
"$tmp/prefix/bin/fepc" act "$src/models/agents/tmaze.fep" --env "$tmp/libcoin.so:coin_tmaze" --episodes 100 \
   --summary "$tmp/coin.csv" > "$tmp/coin.txt"
tail -2 "$tmp/coin.txt"
# returns: +1 for each reward step; an informed agent collects two per episode
awk -F, 'NR > 1 { total += $3 } END { exit !(total >= 190) }' "$tmp/coin.csv"
if "$tmp/prefix/bin/fepc" act "$src/models/agents/tmaze.fep" --env "$tmp/libcoin.so:no_such" 2> "$tmp/err.txt"; then
    echo "a missing symbol must fail"; exit 1
fi
grep -q "no such symbol" "$tmp/err.txt"
echo "1 passed, 0 failed"
