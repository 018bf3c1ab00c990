#!/bin/sh
# repl_test.sh — `fepc repl` driven through stdin, end to end.
# Usage: repl_test.sh FEPC SOURCE_DIR [LIBSOFTSIGN.so]
#
# Each scenario feeds a script of REPL lines to `fepc repl` (stdin is not a
# terminal, so there is no prompt and no libedit), then checks the exit
# status and fragments of stdout+stderr: the acceptance scenario of the
# REPL issue, :set, declarations at the prompt, :rule/:explain, :save and
# :restore, :clamp from CSV and NPY, the interpreter engine, externs, Ctrl-C
# during :relax, and (when util-linux `script` exists) a terminal session
# that writes the history file.  Any failed check makes the test fail.
set -u
FEPC=$1
SRC=$2
SOFTSIGN=${3:-}
MODEL=$SRC/models/scalar_graph.fep
T=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
trap '' PIPE   # a REPL that died must fail checks, not kill this script
export FEPC_HISTORY="$T/history"
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run NAME [ARGS...]: fepc repl ARGS < NAME.in > NAME.out (stderr too); the
# status is left in NAME.rc.  A status >= 128 is a crash.
run() {
    name=$1
    shift
    "$FEPC" repl "$@" <"$T/$name.in" >"$T/$name.out" 2>&1
    echo $? >"$T/$name.rc"
}

# status NAME WANT
status() {
    checks=$((checks + 1))
    got=$(cat "$T/$1.rc")
    if [ "$got" != "$2" ]; then
        fail "$1: exit status $got, expected $2; output:"
        sed 's/^/    /' "$T/$1.out" >&2
    fi
}

# has NAME TEXT: the output contains TEXT (a fixed string).
has() {
    checks=$((checks + 1))
    grep -qF -- "$2" "$T/$1.out" || fail "$1: output lacks '$2'"
}

# lacks NAME TEXT
lacks() {
    checks=$((checks + 1))
    if grep -qF -- "$2" "$T/$1.out"; then fail "$1: output has '$2'"; fi
}

# value_after NAME HEADER: the line after the first line equal to HEADER.
value_after() {
    awk -v h="$2" 'found { print; exit } $0 == h { found = 1 }' "$T/$1.out"
}

# ---- the acceptance scenario ----
cat >"$T/accept.in" <<EOF
:load $MODEL
:model
:print theta
tanh(theta) * 2
:frobnicate
tanh(nope)
:relax 20
:energy
:quit
this line is never read
EOF
run accept
status accept 0
for node in "param     theta" "latent    v0" "latent    v1" "latent    v2" "latent    v3" "observed  v4"; do
    has accept "$node"
done
has accept "theta : [1]  param"
checks=$((checks + 1))
[ "$(value_after accept 'theta : [1]  param')" = "[2]" ] || fail "accept: :print theta does not show [2]"
v=$(value_after accept "shape [1]" | tr -d '[]')
checks=$((checks + 1))
[ "$(awk -v v="$v" 'BEGIN { printf "%.4f", v }')" = "1.9281" ] || fail "accept: tanh(theta) * 2 printed '$v', not 1.9281"
has accept "<repl>:1:1: error: unknown command ':frobnicate'"
has accept "<repl>:1:6: error: unknown name 'nope'"
has accept "   1 | tanh(nope)"
has accept "     |      ^~~~"
has accept "energy: 0.0062344 (0) → "
has accept "20 steps of 0.1"
checks=$((checks + 1))
grep -q '^energy: [-0-9na]' "$T/accept.out" || fail "accept: :energy printed no energy"
lacks accept "never read"
lacks accept "scalar_graph> "   # no prompt when stdin is not a terminal

# ---- :set, declarations, :rule, :save / :restore; end of input without :quit ----
cat >"$T/edit.in" <<EOF
:load $MODEL
:set theta = 3
:print theta
:set theta = [1, 2]
:set theta = v0
:set nope = 1
param extra : [2] = ones
extra * 2
:print theta
param broken : [2] = nope
extra + theta
:save $T/p.safetensors
:set theta = 7
:restore $T/p.safetensors
:print theta
:restore $T/missing.safetensors
:rule bp
:explain
:relax 3
:rule nonsense
:train step_size 0.05
:train stepsize 1
:grad
:learn
:time
EOF
run edit
status edit 0
checks=$((checks + 1))
[ "$(value_after edit 'theta : [1]  param')" = "[3]" ] || fail "edit: :set theta = 3 then :print theta does not show [3]"
has edit "the value has shape [2], which does not fit 'theta' of shape [1]"
has edit "the value differs per sample (it reads value nodes), but 'theta' is a param"
has edit "no tensor named 'nope'"
has edit "added extra"
has edit "[2 2]"
has edit "unknown initializer 'nope'"
has edit "saved 2 params to $T/p.safetensors"
has edit "restored 2 tensors from $T/p.safetensors"
checks=$((checks + 1))
[ "$(grep -A1 '^theta : \[1\]  param$' "$T/edit.out" | grep -c '^\[3\]$')" -ge 3 ] ||
    fail "edit: theta is not 3 after the declaration and after :restore"
has edit "missing.safetensors"
has edit "rule bp: derived"
has edit "backpropagation"
has edit "rule bp does not relax"
has edit "unknown rule 'nonsense'"
has edit "step_size 0.05"
has edit "did you mean 'step_size'?"
has edit "|dF/dtheta| = "
has edit "(adam step 1, lr 0.001"
has edit "param_grad"
has edit "(compile)"
checks=$((checks + 1))
[ -s "$T/p.safetensors" ] || fail "edit: :save wrote no file"

# ---- data: :clamp from NPY and CSV; batched expressions ----
# npy3 FILE "R, C": float32 1, 2, 3 of shape (R, C) (header padded to 128 bytes)
npy3() {
    {
        printf '\223NUMPY\001\000\166\000'
        printf "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" "$2"
        printf '%58s\n' ''
        printf '\000\000\200\077\000\000\000\100\000\000\100\100'
    } >"$1"
}
npy3 "$T/v0.npy" "3, 1"
npy3 "$T/wide.npy" "1, 3"
printf 'v4\n0.1\n0.2\n0.3\n' >"$T/v4.csv"
printf 'x\n0.1\n' >"$T/other.csv"
cat >"$T/data.in" <<EOF
:load $MODEL
:clamp v0 $T/v0.npy
:print v0
v0 * theta
:clamp v4 $T/v4.csv
:clamp v4 $T/other.csv
:clamp v1 $T/wide.npy
:clamp theta $T/v4.csv
:clamp v1 $T/nothing.npy
:model
:train step_size 0.01
:relax 8
:energy
EOF
run data
status data 0
has data "clamped v0 to $T/v0.npy (batch 3)"
has data "v0 : [1]  latent, clamped, batch 3"
has data "shape [1] per sample, batch 3"
has data " [4]"
has data " [6]]"
has data "min 2  max 6  mean 4"
has data "clamped v4 to $T/v4.csv (batch 3)"
has data "other.csv: no column 'v4'"
has data "tensor 'v1' has shape [1, 3] but the model expects [1, 1]"
has data "'theta' is a param; :clamp takes an input, latent or observed node"
has data "nothing.npy"
has data "session: batch 3, rule pc, jit engine, f32; clamped: v0 v4"
has data "(mean over a batch of 3)"

# ---- no model; the interpreter engine; declarations from scratch; externs ----
cat >"$T/scratch.in" <<EOF
:model
:relax 5
theta
param a : [3] = ones
a * 2 + 1
latent h : [3] ~ normal(tanh(a))
observed y : [3] ~ normal(h)
:relax 4
:print h
EOF
if [ -n "$SOFTSIGN" ]; then
    cat >>"$T/scratch.in" <<EOF
extern softsign(x) = "$SOFTSIGN:softsign" grad "softsign_grad"
softsign(a * 3)
EOF
fi
for engine in jit interp; do
    cp "$T/scratch.in" "$T/scratch_$engine.in"
    run "scratch_$engine" --engine $engine
    status "scratch_$engine" 0
    has "scratch_$engine" "error: no model loaded; use :load FILE"
    checks=$((checks + 1))
    [ "$(grep -c 'no model loaded' "$T/scratch_$engine.out")" = 3 ] ||
        fail "scratch_$engine: :model, :relax and an expression need a model"
    has "scratch_$engine" "added a"
    has "scratch_$engine" "[3 3 3]"
    has "scratch_$engine" "h : [3]  latent"
    has "scratch_$engine" "4 steps of 0.1"
    if [ -n "$SOFTSIGN" ]; then
        has "scratch_$engine" "[0.75 0.75 0.75]"
    fi
done

# ---- empty input; the model on the command line ----
: >"$T/empty.in"
run empty "$MODEL"
status empty 0
has empty "loaded model scalar_graph"

# ---- Ctrl-C stops a long :relax, not the session ----
mkfifo "$T/fifo"
"$FEPC" repl "$MODEL" <"$T/fifo" >"$T/intr.out" 2>&1 &
pid=$!
exec 3>"$T/fifo"
i=0
while ! grep -q "loaded model" "$T/intr.out" && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo ':relax 2000000000' >&3
sleep 1
kill -INT $pid
echo ':print theta' >&3
echo ':quit' >&3
exec 3>&-
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
if kill -0 $pid 2>/dev/null; then
    kill -KILL $pid
    fail "intr: Ctrl-C did not stop :relax 2000000000"
fi
wait $pid
echo $? >"$T/intr.rc"
status intr 0
has intr "interrupted after"
has intr "theta : [1]  param"

# ---- a discrete agent, one step at a time: the T-maze's G per policy ----
cat >"$T/agent.in" <<EOF
:load $SRC/models/agents/tmaze.fep
:observe 0 0 0
:act 3
:observe 3 0 1
:act
:observe 9 0 0
:observe 1
:learn
:quit
EOF
run agent
status agent 0
has agent "(3)                  4.4372     0.7059"
has agent "(1)                  4.5353     0.1471"
has agent "q.ctx        0.0000 1.0000"
has agent "(2)                  2.2504     1.0000"
has agent "move = 2 (chosen)"
has agent "error: agent 0: outcome 'where' has 4 values (0..3), got 9"
has agent "error: :observe takes one value per outcome (3: where reward cue), got 1"
has agent "model tmaze has no counts to learn"

# ---- a terminal session (util-linux script): prompt and history ----
checks=$((checks + 1))
[ -e "$FEPC_HISTORY" ] && fail "history: written although stdin was never a terminal"
if command -v script >/dev/null 2>&1; then
    printf ':load %s\ntheta * 2\n:quit\n' "$MODEL" |
        script -qec "\"$FEPC\" repl" /dev/null >"$T/tty.out" 2>&1
    echo $? >"$T/tty.rc"
    status tty 0
    has tty "scalar_graph> "
    has tty "[4]"
    checks=$((checks + 1))
    grep -q 'theta\\040\*\\0402' "$FEPC_HISTORY" 2>/dev/null || fail "history: $FEPC_HISTORY lacks 'theta * 2'"
else
    echo "note: util-linux script not found; terminal mode not tested"
fi

echo "repl_test: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
