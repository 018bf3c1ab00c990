#!/usr/bin/python3
"""End-to-end test of `fepc grad` (SPEC §7), independent of fepc's own I/O:
batches are written and outputs read with numpy and the reproductions'
Python safetensors reader and writer (scripts/repro/common.py).

Checks: output keys and shapes; fpa at step size 1 equals bp (f64); class
indices and one-hot labels give identical results; params files round-trip;
missing, extra and mis-shaped tensors are errors naming the tensor (and both
shapes) with exit status 1 and no output file left behind.

usage: cli_grad.py FEPC SOURCE_DIR SOFTSIGN_SO
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

WRAPPER = os.environ.get("FEPC_WRAPPER", "").split()    # e.g. valgrind (the valgrind label)
FEPC, SRC, SOFTSIGN = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(SRC, "scripts", "repro"))
from common import read_safetensors as read_st, write_safetensors as write_st  # noqa: E402
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def fepc(*args):
    return subprocess.run([*WRAPPER, FEPC, *args], capture_output=True, text=True)


model = os.path.join(SRC, "models", "fmnist_mlp.fep")
rng = np.random.default_rng(3)
with tempfile.TemporaryDirectory() as tmp:
    def p(name):
        return os.path.join(tmp, name)

    x = rng.random((4, 784))
    labels = np.array([3, 0, 9, 3], dtype=np.int64)
    write_st(p("batch.safetensors"), {"x": x, "y": labels})
    write_st(p("onehot.safetensors"), {"x": x, "y": np.eye(10)[labels]})

    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("fpa.safetensors"),
             "--rule", "fpa", "--step-size", "1", "--steps", "3", "--dtype", "f64", "--seed", "5")
    check(r.returncode == 0, "fpa grad exits 0: " + r.stderr)
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("bp.safetensors"),
             "--rule", "bp", "--dtype", "f64", "--seed", "5")
    check(r.returncode == 0, "bp grad exits 0: " + r.stderr)
    fpa, bp = read_st(p("fpa.safetensors")), read_st(p("bp.safetensors"))
    expected = {"value.h1", "value.h2", "value.y", "error.h1", "error.h2", "error.y", "energy",
                "grad.W1", "grad.b1", "grad.W2", "grad.b2", "grad.W3", "grad.b3"}
    check(set(fpa) == expected, "output keys %s" % sorted(fpa))
    check(fpa["grad.W1"].shape == (256, 784) and fpa["value.h1"].shape == (4, 256), "output shapes")
    for k in expected:
        if k.startswith(("grad.", "error.")):
            scale = max(np.abs(bp[k]).max(), 1e-12)
            check(np.abs(fpa[k] - bp[k]).max() <= 1e-12 * scale, "fpa equals bp on " + k)

    r = fepc("grad", model, "--batch", p("onehot.safetensors"), "--out", p("onehot_out.safetensors"),
             "--rule", "fpa", "--step-size", "1", "--steps", "3", "--dtype", "f64", "--seed", "5")
    check(r.returncode == 0, "one-hot labels accepted: " + r.stderr)
    onehot = read_st(p("onehot_out.safetensors"))
    check(all(np.array_equal(onehot[k], fpa[k]) for k in expected), "one-hot and indices agree")

    # ar at unit step and enough steps gives backprop's gradients; errors are −(adjoint).
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("ar.safetensors"),
             "--rule", "ar", "--step-size", "1", "--steps", "3", "--dtype", "f64", "--seed", "5")
    check(r.returncode == 0, "ar grad exits 0: " + r.stderr)
    if r.returncode == 0:
        ar = read_st(p("ar.safetensors"))
        for k in expected:
            if k.startswith(("grad.", "error.")):
                scale = max(np.abs(bp[k]).max(), 1e-12)
                check(np.abs(ar[k] - bp[k]).max() <= 1e-12 * scale, "ar equals bp on " + k)
    # Relaxed rules from the command line: feedback matrices equal to W (set through a
    # params file) change nothing; learned ones get W's gradient; the error weights' params
    # appear in the output; a params file with back.* loads under a rule that has none.
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("fb0.safetensors"),
             "--rule", "fpa(backward = learned)", "--step-size", "0.5", "--steps", "4", "--dtype", "f64")
    check(r.returncode == 0, "fpa(backward = learned) runs: " + r.stderr)
    fb0 = read_st(p("fb0.safetensors")) if r.returncode == 0 else {}
    check(set(fb0) >= {"grad.back.W2", "grad.back.W3"} and "grad.back.W1" not in fb0,
          "feedback matrices for W2, W3 only (W1 multiplies the input): %s" % sorted(fb0))
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("fpa5.safetensors"),
             "--rule", "fpa", "--step-size", "0.5", "--steps", "4", "--dtype", "f64", "--seed", "5")
    fpa5 = read_st(p("fpa5.safetensors"))
    params = {}
    rs = np.random.default_rng(11)
    for name, shape in [("W1", (256, 784)), ("b1", (256,)), ("W2", (256, 256)), ("b2", (256,)),
                        ("W3", (10, 256)), ("b3", (10,))]:
        params[name] = rs.normal(0, 0.05, shape)
    write_st(p("plain.safetensors"), params)
    write_st(p("fbparams.safetensors"), dict(params, **{"back.W2": params["W2"], "back.W3": params["W3"]}))
    outs = {}
    for tag, rule, pfile in [("plain", "fpa", "plain"), ("fb", "fpa(backward = learned)", "fbparams"),
                             ("fb_on_plain", "fpa", "fbparams"), ("fb2", "fpa(backward = random)", "plain")]:
        r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("out_" + tag + ".safetensors"), "--rule", rule,
                 "--params", p(pfile + ".safetensors"), "--step-size", "0.5", "--steps", "4", "--dtype", "f64")
        check(r.returncode == 0, "grad --rule '%s' --params %s: %s" % (rule, pfile, r.stderr))
        outs[tag] = read_st(p("out_" + tag + ".safetensors")) if r.returncode == 0 else {}
    if all(outs.values()):
        for k in ("error.h1", "error.h2", "grad.W1", "grad.W2", "grad.W3"):
            check(np.allclose(outs["fb"][k], outs["plain"][k], rtol=0, atol=1e-12 * np.abs(outs["plain"][k]).max()),
                  "back.W = W reproduces fpa on " + k)
            check(np.array_equal(outs["fb_on_plain"][k], outs["plain"][k]), "unused back.* params are ignored: " + k)
        check(np.array_equal(outs["fb"]["grad.back.W2"], outs["fb"]["grad.W2"]), "learned back.W2 takes W2's gradient")
        check(not np.allclose(outs["fb2"]["error.h1"], outs["plain"]["error.h1"]),
              "random feedback changes the messages")
        check("grad.back.W2" not in outs["fb2"], "random feedback has no gradient")
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("ew.safetensors"),
             "--rule", "pc(error_weights = learned, derivative = none)", "--steps", "3")
    check(r.returncode == 0, "pc(error_weights = learned, derivative = none) runs: " + r.stderr)
    if r.returncode == 0:
        ew = read_st(p("ew.safetensors"))
        check(ew["grad.psi.h1"].shape == (256, 256) and "grad.psi.y" not in ew,
              "error weights on the normal latents, not the categorical output")
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("o"), "--rule", "bp(error_weights = learned)")
    check(r.returncode == 1 and "error_weights applies to the rules that relax errors" in r.stderr,
          "bp refuses error weights: " + r.stderr)

    # Params round trip: the seed-5 init saved by hand, then loaded with another seed.
    r = fepc("grad", model, "--batch", p("batch.safetensors"), "--out", p("seed7.safetensors"),
             "--rule", "bp", "--dtype", "f64", "--seed", "7")
    seed7 = read_st(p("seed7.safetensors"))
    check(not np.array_equal(seed7["grad.W1"], bp["grad.W1"]), "seed changes the init")

    # Error cases: exit 1, message names the tensor, no output left behind.
    write_st(p("missing.safetensors"), {"x": x})
    write_st(p("extra.safetensors"), {"x": x, "y": labels, "z": x})
    write_st(p("badshape.safetensors"), {"x": x[:, :700], "y": labels})
    write_st(p("badclass.safetensors"), {"x": x, "y": np.array([3, 0, 10, 3], dtype=np.int64)})
    for name, needle in [("missing", "'y'"), ("extra", "'z'"), ("badshape", "[4, 700]"), ("badclass", "10")]:
        out = p(name + "_out.safetensors")
        r = fepc("grad", model, "--batch", p(name + ".safetensors"), "--out", out)
        check(r.returncode == 1, name + ": exit 1 (got %d)" % r.returncode)
        check(needle in r.stderr, name + ": message names the problem: " + r.stderr.strip())
        check(not os.path.exists(out), name + ": no output file")
    check("[4, 784]" in fepc("grad", model, "--batch", p("badshape.safetensors"), "--out", p("o")).stderr,
          "shape error shows the expected shape too")
    r = fepc("grad", model, "--batch", p("nonexistent.safetensors"), "--out", p("o"))
    check(r.returncode == 1 and "nonexistent.safetensors" in r.stderr, "missing batch file named")
    # Batch-parallel execution gives the same bits for any thread count.
    xb = rng.random((150, 784))   # five blocks of up to 32 samples
    write_st(p("big.safetensors"), {"x": xb, "y": np.arange(150, dtype=np.int64) % 10})
    outs = []
    for threads in ("1", "2", "3"):
        for rule in ("pc", "fpa"):
            out = p("threads%s-%s.safetensors" % (threads, rule))
            r = fepc("grad", model, "--batch", p("big.safetensors"), "--out", out, "--rule", rule,
                     "--steps", "3", "--threads", threads)
            check(r.returncode == 0, "grad with --threads %s exits 0: %s" % (threads, r.stderr))
            outs.append(open(out, "rb").read() if r.returncode == 0 else b"")
    check(outs[0] == outs[2] == outs[4] and outs[1] == outs[3] == outs[5],
          "results are identical for 1, 2 and 3 threads")

    # An AOT module computes exactly what the JIT computes, bit for bit.
    so = p("mlp.so")
    r = fepc("build", model, "-o", so)
    check(r.returncode == 0 and os.path.exists(p("mlp.h")), "fepc build writes m.so and m.h: " + r.stderr)
    for rule_args in ((), ("--steps", "3")):
        r1 = fepc("grad", "--module", so, "--batch", p("big.safetensors"), "--out", p("aot.safetensors"), *rule_args)
        r2 = fepc("grad", model, "--batch", p("big.safetensors"), "--out", p("jit.safetensors"), *rule_args)
        check(r1.returncode == 0 and r2.returncode == 0, "grad through --module and the JIT: " + r1.stderr + r2.stderr)
        if r1.returncode == 0 and r2.returncode == 0:
            check(open(p("aot.safetensors"), "rb").read() == open(p("jit.safetensors"), "rb").read(),
                  "AOT and JIT outputs are bit-identical")
    r = fepc("grad", "--module", so, "--rule", "pc", "--batch", p("big.safetensors"), "--out", p("o"))
    check(r.returncode == 1 and "was built for rule fpa" in r.stderr, "a module refuses another rule: " + r.stderr)

    # An extern function from a C library, called through libffi.
    with open(p("ext.fep"), "w") as f:
        f.write('model ext\nextern softsign(x) = "%s:softsign" grad "softsign_grad"\n'
                'input x : [3]\nparam W : [2, 3] = normal(1)\n'
                'latent h : [2] ~ normal(softsign(W @ x))\nobserved y : [2] ~ normal(h)\n' % SOFTSIGN)
    write_st(p("ext_batch.safetensors"), {"x": rng.normal(size=(2, 3)), "y": np.zeros((2, 2))})
    r = fepc("grad", p("ext.fep"), "--batch", p("ext_batch.safetensors"), "--out", p("ext_out.safetensors"),
             "--rule", "bp", "--dtype", "f64", "--seed", "2")
    check(r.returncode == 0, "extern model runs: " + r.stderr)
    if r.returncode == 0:
        ext = read_st(p("ext_out.safetensors"))
        h = ext["value.h"]
        check(h.shape == (2, 2) and np.all(np.abs(h) < 1), "softsign output inside (-1, 1)")
        check(np.allclose(ext["error.y"], -h, atol=1e-6), "error.y = y - h with y = 0")
    with open(p("noext.fep"), "w") as f:
        f.write('model noext\nextern f(x) = "/nonexistent/libnope.so:f" grad "g"\n'
                'input x : [1]\nlatent h : [1] ~ normal(f(x))\n')
    write_st(p("noext_batch.safetensors"), {"x": np.zeros((1, 1))})
    r = fepc("grad", p("noext.fep"), "--batch", p("noext_batch.safetensors"), "--out", p("o"))
    check(r.returncode == 1 and "libnope.so" in r.stderr, "unloadable extern library named: " + r.stderr)

    leftovers = [f for f in os.listdir(tmp) if ".tmp." in f]
    check(not leftovers, "no temp files left: %s" % leftovers)

print("%d passed, %d failed" % (0 if failures else 1, failures))
sys.exit(1 if failures else 0)
