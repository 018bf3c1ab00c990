#!/bin/sh
# cli_errors.sh — the fepc driver's error behaviour, end to end.
# Usage: cli_errors.sh FEPC SOURCE_DIR
#
# Writes small bad models to a temporary directory and checks, for each:
# exit status 1, stderr starting "FILE:LINE:COL: error: ", a caret line, and
# no crash (a status >= 128 is a signal).  Then: every models/*.fep passes
# `fepc check`; a missing model file, an unknown command or option, and
# `fepc grad` with a missing batch file fail with the documented status.
# FEPC_WRAPPER, when set, prefixes every fepc run (the valgrind label uses it).
set -u
FEPC=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs fepc, leaves stderr in $T/err; on a wrong
# status reports it with stderr.
run() {
    want=$1
    shift
    checks=$((checks + 1))
    ${FEPC_WRAPPER:-} "$FEPC" "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ge 128 ]; then
        fail "fepc $* crashed (status $got):"
        cat "$T/err" >&2
        return 1
    fi
    if [ "$got" -ne "$want" ]; then
        fail "fepc $* exited $got, expected $want:"
        cat "$T/err" >&2
        return 1
    fi
    return 0
}

# bad NAME TEXT [MESSAGE]: `fepc check` of TEXT fails with a located
# diagnostic (MESSAGE, when given, is the expected error text).
bad() {
    name=$1
    file="$T/$name.fep"
    printf '%s\n' "$2" >"$file"
    run 1 check "$file" || return
    first=$(head -n 1 "$T/err")
    case $first in
    "$file":[0-9]*:[0-9]*": error: "?*) ;;
    *) fail "$name: first line of stderr is not FILE:LINE:COL: error: ...: $first" ;;
    esac
    if [ $# -ge 3 ]; then
        case $first in
        *": error: $3") ;;
        *) fail "$name: expected message '$3', got: $first" ;;
        esac
    fi
    grep -Eq '^ +\| *[ 	]*\^~*$' "$T/err" || { fail "$name: no caret line in:"; cat "$T/err" >&2; }
    [ -s "$T/out" ] && fail "$name: a failing check printed to stdout"
}

X='input x : [3]'

# ---- located diagnostics, one per error class ----
bad unknown_name "$X
latent h : [3] ~ normal(xx)" "unknown name 'xx'; did you mean 'x'?"
bad redefinition "$X
latent x : [3] ~ normal(0)" "redefinition of 'x'"
bad shape_mean "$X
latent h : [4] ~ normal(x)" "shape mismatch: the mean has shape [3] but 'h' is declared [4]"
bad broadcast "input x : [784]
param W : [256, 784] = xavier
param b : [10] = zeros
latent h : [256] ~ normal(W @ x + b)" "cannot broadcast shapes [256] and [10] (dimension 0: 256 vs 10)"
bad matmul "input x : [78]
param W : [256, 784] = xavier
latent h : [256] ~ normal(W @ x)"
bad cycle "latent a : [3] ~ normal(b)
latent b : [3] ~ normal(a)"
bad let_cycle "let z = z + 1
latent a : [3] ~ normal(z)"
bad arity "$X
latent h : [3] ~ normal(tanh(x, x))" "wrong number of arguments to 'tanh': expected 1, got 2"
bad unknown_function "$X
latent h : [3] ~ normal(tnah(x))" "unknown function 'tnah'; did you mean 'tanh'?"
bad unknown_distribution "$X
latent h : [3] ~ normel(x)" "unknown distribution 'normel'; did you mean 'normal'?"
bad unknown_rule "$X
latent h : [3] ~ normal(x)
train { rule = foo }" "unknown rule 'foo'; expected pc, fpa, ipc, bp or ar"
bad unknown_train_key "$X
latent h : [3] ~ normal(x)
train { step = 3 }" "unknown train key 'step'; did you mean 'steps'?"
bad duplicate_train_key "$X
latent h : [3] ~ normal(x)
train { steps = 3 steps = 4 }" "duplicate train key 'steps'"
bad negative_steps "$X
latent h : [3] ~ normal(x)
train { steps = -1 }"
bad bad_init "param W : [3] = xavir" "unknown initializer 'xavir'; did you mean 'xavier'?"
bad ragged "param A : [2, 2] = [[1, 2], [3]]"
bad zero_dim "input x : [0]" "dimension must be positive, got 0"
bad extern_no_grad 'extern f(x) = "libfoo.so:f"'
bad family_unindexed "input x[t in 0..3] : [3]
observed y : [3] ~ normal(x)"
bad prev_param "param W : [3] = zeros
latent h : [3] ~ normal(prev(W))"
bad empty_range "input x[t in 3..3] : [3]"
bad logits_shape "$X
observed y : [4] ~ categorical(x)"
bad syntax "input x : [3
latent h : [3] ~ normal(x)"
bad empty ""

# the override's value is its own source: "--rule:1:1: error: ..."
printf '%s\n' "$X" 'latent h : [3] ~ normal(x)' >"$T/good.fep"
if run 1 check "$T/good.fep" --rule foo; then
    head -n 1 "$T/err" | grep -q "^--rule:1:1: error: unknown rule 'foo'" ||
        fail "--rule foo: $(head -n 1 "$T/err")"
fi
run 1 check "$T/good.fep" --steps -1

# a binary file is refused by name
printf 'model a\n\000\n' >"$T/binary.fep"
run 1 check "$T/binary.fep" && { grep -q "binary.fep" "$T/err" || fail "binary file: message does not name it"; }

# ---- every shipped model checks ----
for m in "$SRC"/models/*.fep; do
    run 0 check "$m" || continue
    [ -s "$T/err" ] && fail "check $m wrote to stderr: $(cat "$T/err")"
done

# ---- files and usage ----
if run 1 check "$T/no_such_model.fep"; then
    grep -q "no_such_model.fep" "$T/err" || fail "missing model: message does not name the file: $(cat "$T/err")"
fi
run 2 frobnicate "$T/good.fep"
run 2 check "$T/good.fep" -x 1
run 2 check "$T/good.fep" --engine warp
run 2 check "$T/good.fep" --steps
run 2 check
run 2
if run 1 grad "$T/good.fep" --batch "$T/no_such_batch.safetensors" --out "$T/g.safetensors"; then
    grep -q "no_such_batch.safetensors" "$T/err" || fail "grad: message does not name the batch file: $(cat "$T/err")"
fi
[ -e "$T/g.safetensors" ] && fail "grad wrote its output after failing"

echo "cli_errors: $checks runs, $failures failures"
[ "$failures" -eq 0 ]
