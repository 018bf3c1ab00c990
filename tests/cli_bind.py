#!/usr/bin/python3
"""End-to-end test of `fepc train/eval --bind NODE=FILE` and `--val N`
(SPEC §7), independent of fepc's own I/O: data files are written with numpy
(and a few lines of safetensors and CSV writing), logs read with csv.

A tiny problem: 2-D points in three separable clusters, labels as class
indices, [N, 1] indices or one-hot, in NPY, safetensors and CSV files.

Checks: each format trains to val accuracy > 0.9 and gives the same log as
the others; shuffled labels (negative control) do not; the held-out
samples come from a seeded shuffle (not the file's tail; the same seed
repeats a run, another seed holds out other samples); the log has SPEC
§7's columns and its test_accuracy column is the printed val_accuracy;
without --val there is no evaluation; class indices, [N, 1] indices and
one-hot labels train identically; the last partial batch counts (energy
with frozen parameters does not depend on the batch size); eval on bound
data agrees with `fepc grad` on the same batch and with the val accuracy
train printed; a family binds as [N, T, ...]; mis-shaped, truncated,
missing and mismatched files are errors (exit 1) naming the file, the
tensor and both shapes or both sample counts.

usage: cli_bind.py FEPC SOURCE_DIR
"""
import csv
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

WRAPPER = os.environ.get("FEPC_WRAPPER", "").split()    # e.g. valgrind (the valgrind label)
FEPC, SRC = sys.argv[1], sys.argv[2]
failures = 0

MODEL = """model clusters

input    x  : [2]
param    W1 : [16, 2] = xavier
param    b1 : [16]    = zeros
param    W2 : [3, 16] = xavier
param    b2 : [3]     = zeros

latent   h  : [16] ~ normal(W1 @ x + b1)
observed y  : [3]  ~ categorical(W2 @ tanh(h) + b2)

train {
  rule = fpa
  steps = 10
  step_size = 0.5
  optimizer = adam(lr = 0.01)
  batch = 32
  epochs = 20
}
"""

SEQ_MODEL = """model seq

input    x[t in 0..4] : [2]
param    Wx : [8, 2] = xavier
param    Wh : [8, 8] = xavier
param    bh : [8]    = zeros
param    Wy : [3, 8] = xavier
param    by : [3]    = zeros

latent   h[t in 0..4] : [8] ~ normal(tanh(Wh @ h[t-1] + Wx @ x[t] + bh))
observed y : [3] ~ categorical(Wy @ h[3] + by)

train { rule = fpa  steps = 10  step_size = 0.5  batch = 16  epochs = 1 }
"""

LOG_COLUMNS = ["epoch", "energy", "train_accuracy", "test_accuracy", "seconds"]


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)
    return cond


def write_st(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        code = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}[arr.dtype]
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_st_tensor(path, name):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + n])[name]
    b, e = info["data_offsets"]
    dtype = {"F32": np.float32, "F64": np.float64}[info["dtype"]]
    return np.frombuffer(data[8 + n + b:8 + n + e], dtype).reshape(info["shape"])


def write_csv(path, columns):
    """columns: {header: 1-D array}; floats written exactly (%.9g)."""
    names = list(columns)
    rows = zip(*(columns[c] for c in names))
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row in rows:
            f.write(",".join("%.9g" % v for v in row) + "\n")


def read_log(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def fepc(*args):
    r = subprocess.run([*WRAPPER, FEPC, *args], capture_output=True, text=True)
    if r.returncode not in (0, 1):    # a crash, or a memcheck report (exit 99 under the valgrind label)
        print("fepc %s exited %d:\n%s" % (" ".join(args), r.returncode, r.stderr[-3000:]))
    return r


def binds(**files):
    out = []
    for node, path in files.items():
        out += ["--bind", "%s=%s" % (node, path)]
    return out


def epoch_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("epoch ")]


def val_accuracies(stdout):
    return [float(m.group(1)) for m in (re.search(r"val_accuracy (\S+)", l) for l in epoch_lines(stdout)) if m]


def expect_error(r, what, *needles):
    """Exit 1 with one error line naming every needle."""
    ok = check(r.returncode == 1, "%s: exit 1 (got %d): %s" % (what, r.returncode, r.stderr.strip()))
    for needle in needles:
        ok &= check(needle in r.stderr, "%s: the error names %r: %s" % (what, needle, r.stderr.strip()))
    check("Traceback" not in r.stderr and "Segmentation" not in r.stderr, what + ": no crash")
    return ok


rng = np.random.default_rng(7)
N, VAL = 300, 60
centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
labels = rng.integers(0, 3, N)
points = (centers[labels] + 0.4 * rng.standard_normal((N, 2))).astype(np.float32)
onehot = np.eye(3, dtype=np.float32)[labels]

with tempfile.TemporaryDirectory() as tmp:
    def p(name):
        return os.path.join(tmp, name)

    model = p("clusters.fep")
    with open(model, "w") as f:
        f.write(MODEL)

    np.save(p("x.npy"), points)
    np.save(p("y.npy"), labels.astype(np.int64))
    np.save(p("y_col.npy"), labels.reshape(N, 1).astype(np.int32))
    np.save(p("y_onehot.npy"), onehot)
    np.save(p("y_shuffled.npy"), rng.permutation(labels).astype(np.int64))
    write_st(p("data.safetensors"), {"x": points, "y": labels.astype(np.int64)})
    write_st(p("features.safetensors"), {"features": points})     # the only tensor: bound whatever its name
    write_csv(p("data.csv"), {"x[0]": points[:, 0], "x[1]": points[:, 1], "y": labels})
    write_csv(p("onehot.csv"), {"x[0]": points[:, 0], "x[1]": points[:, 1],
                                **{"y[%d]" % k: onehot[:, k] for k in range(3)}})

    # ---- every format trains, and all agree ----
    formats = {
        "npy": binds(x=p("x.npy"), y=p("y.npy")),
        "safetensors": binds(x=p("data.safetensors"), y=p("data.safetensors")),
        "csv": binds(x=p("data.csv"), y=p("data.csv")),
        "mixed": binds(x=p("features.safetensors"), y=p("onehot.csv")),
    }
    energies = {}
    for name, args in formats.items():
        log = p("log_%s.csv" % name)
        r = fepc("train", model, *args, "--val", str(VAL), "--log", log, "--save", p("params_%s.safetensors" % name))
        if not check(r.returncode == 0, "%s: train exits 0: %s" % (name, r.stderr.strip())):
            continue
        vals = val_accuracies(r.stdout)
        check(len(vals) == 20, "%s: 20 epoch lines with val_accuracy: %r" % (name, r.stdout))
        check(vals and vals[-1] > 0.9, "%s: val accuracy > 0.9 (got %r)" % (name, vals[-1:]))
        check("test_accuracy" not in r.stdout, "%s: no test split with bound data" % name)
        header, rows = read_log(log)
        check(header == LOG_COLUMNS, "%s: log columns %r" % (name, header))
        check(len(rows) == 20 and [int(row[0]) for row in rows] == list(range(1, 21)), "%s: 20 log rows" % name)
        check(all(abs(float(row[3]) - v) < 1e-4 for row, v in zip(rows, vals)),
              "%s: log test_accuracy is the printed val_accuracy" % name)
        check(all(row[2] != "" and 0 <= float(row[2]) <= 1 for row in rows), "%s: train_accuracy logged" % name)
        energies[name] = [float(row[1]) for row in rows]
    if check(len(energies) == len(formats), "all formats trained"):
        for name in formats:
            check(np.allclose(energies[name], energies["npy"], rtol=1e-6, atol=0),
                  "%s: same energies as npy: %r vs %r" % (name, energies[name][:3], energies["npy"][:3]))
        check(energies["npy"][-1] < 0.5 * energies["npy"][0], "training lowers the energy")

    # Negative control: the val check fails when labels carry no signal.
    r = fepc("train", model, *binds(x=p("x.npy"), y=p("y_shuffled.npy")), "--val", str(VAL))
    vals = val_accuracies(r.stdout)
    check(r.returncode == 0 and vals and vals[-1] < 0.7, "shuffled labels: val accuracy stays low (%r)" % vals[-1:])

    # ---- the held-out samples are a seeded shuffle, not the file's tail:
    # eval --val scores other samples than the last VAL, the same seed the
    # same ones, another seed others; training repeats exactly ----
    params = p("params_short.safetensors")   # early: energies large enough to tell sets apart
    fepc("train", model, *formats["npy"], "--epochs", "1", "--save", params)
    np.save(p("x_tail.npy"), points[-VAL:])
    np.save(p("y_tail.npy"), labels[-VAL:])
    tail = fepc("eval", model, "--params", params, *binds(x=p("x_tail.npy"), y=p("y_tail.npy"))).stdout
    evals = [fepc("eval", model, "--params", params, *formats["npy"], "--val", str(VAL), "--seed", seed).stdout
             for seed in ["1", "1", "2"]]
    check("energy" in tail and "energy" in evals[0], "eval --val / tail: %r %r" % (tail, evals))
    check(evals[0] == evals[1] and evals[0] != evals[2], "--seed picks the held-out samples: %r" % evals)
    check(evals[0] != tail and evals[2] != tail, "the held-out samples are not the file's tail: %r" % tail)
    r = fepc("train", model, *formats["npy"], "--val", str(VAL), "--log", p("again.csv"))
    same = [row[:4] for row in read_log(p("again.csv"))[1]] == [row[:4] for row in read_log(p("log_npy.csv"))[1]]
    check(r.returncode == 0 and same, "the same seed repeats the run")

    # ---- class indices, [N, 1] indices and one-hot train identically ----
    short = ["--epochs", "3", "--val", str(VAL)]
    logs = {}
    for name, y in [("indices", "y.npy"), ("column", "y_col.npy"), ("onehot", "y_onehot.npy")]:
        r = fepc("train", model, *binds(x=p("x.npy"), y=p(y)), *short, "--log", p("lab_%s.csv" % name))
        if check(r.returncode == 0, "%s labels: train exits 0: %s" % (name, r.stderr.strip())):
            logs[name] = [[float(v) for v in row[:4]] for row in read_log(p("lab_%s.csv" % name))[1]]
    if check(len(logs) == 3, "all label encodings trained"):
        check(logs["column"] == logs["indices"] and logs["onehot"] == logs["indices"],
              "indices, [N, 1] and one-hot labels give the same log: %r" % logs)

    # ---- without --val: no evaluation set ----
    r = fepc("train", model, *formats["npy"], "--epochs", "2", "--log", p("noval.csv"))
    if check(r.returncode == 0, "no --val: exit 0: " + r.stderr.strip()):
        check("val_accuracy" not in r.stdout and "train_accuracy" in r.stdout, "no --val: train accuracy only")
        header, rows = read_log(p("noval.csv"))
        check(header == LOG_COLUMNS and all(row[3] == "" for row in rows), "no --val: empty test_accuracy: %r" % rows)

    # ---- the last partial batch counts: with frozen parameters the mean
    # energy and accuracy over 240 samples do not depend on the batch ----
    frozen = {}
    for batch in ["32", "7", "240", "1000"]:
        r = fepc("train", model, *formats["npy"], "--val", str(VAL), "--epochs", "1", "--batch", batch,
                 "--optimizer", "sgd(lr = 1e-30)", "--log", p("frozen_%s.csv" % batch))
        if check(r.returncode == 0, "batch %s: exit 0: %s" % (batch, r.stderr.strip())):
            frozen[batch] = [float(v) for v in read_log(p("frozen_%s.csv" % batch))[1][0][1:4]]
    if check(len(frozen) == 4, "all batch sizes ran"):
        for batch in frozen:
            check(np.allclose(frozen[batch], frozen["240"], rtol=1e-6),
                  "batch %s (partial last batch) sees every sample: %r vs %r" % (batch, frozen[batch], frozen["240"]))

    # ---- eval on bound data ----
    params = p("params_npy.safetensors")
    r = fepc("eval", model, "--params", params, *formats["npy"])
    if check(r.returncode == 0, "eval --bind: exit 0: " + r.stderr.strip()):
        m = re.search(r"accuracy: (\S+)", r.stdout)
        check(m and float(m.group(1)) > 0.9, "eval --bind: accuracy > 0.9: " + r.stdout)
        check(re.search(r"energy: \S+", r.stdout), "eval --bind: energy printed")
    r = fepc("eval", model, "--params", params, *formats["npy"], "--val", str(VAL))
    train_log = read_log(p("log_npy.csv"))[1]
    m = re.search(r"accuracy: (\S+)", r.stdout)
    check(r.returncode == 0 and m and abs(float(m.group(1)) - float(train_log[-1][3])) < 1e-4,
          "eval --val scores the samples train held out: %r vs %r" % (r.stdout, train_log[-1][3]))
    # The same 32 samples through `fepc grad` (a separate binding path).
    sub = slice(0, 32)
    np.save(p("x32.npy"), points[sub])
    np.save(p("y32.npy"), labels[sub])
    write_st(p("batch32.safetensors"), {"x": points[sub], "y": onehot[sub]})
    r1 = fepc("eval", model, "--params", params, *binds(x=p("x32.npy"), y=p("y32.npy")))
    r2 = fepc("grad", model, "--params", params, "--batch", p("batch32.safetensors"), "--out", p("g.safetensors"))
    if check(r1.returncode == 0 and r2.returncode == 0, "eval/grad on 32 samples: " + r1.stderr + r2.stderr):
        e_eval = float(re.search(r"energy: (\S+)", r1.stdout).group(1))
        e_grad = float(read_st_tensor(p("g.safetensors"), "energy")) / 32
        check(abs(e_eval - e_grad) < 1e-3 * max(1.0, abs(e_grad)),
              "eval energy %g == grad energy %g" % (e_eval, e_grad))

    # ---- a family binds as [N, T, ...] (or flattened; CSV x[i]) ----
    seq = p("seq.fep")
    with open(seq, "w") as f:
        f.write(SEQ_MODEL)
    xs = rng.standard_normal((32, 4, 2)).astype(np.float32)
    ys = rng.integers(0, 3, 32)
    np.save(p("xs.npy"), xs)
    np.save(p("xs_flat.npy"), xs.reshape(32, 8))
    np.save(p("ys.npy"), ys)
    write_csv(p("seq.csv"), {**{"x[%d]" % k: xs.reshape(32, 8)[:, k] for k in range(8)}, "y": ys})
    write_st(p("seq_batch.safetensors"), {"x": xs, "y": ys.astype(np.int64)})
    r = fepc("train", seq, *binds(x=p("xs.npy"), y=p("ys.npy")), "--save", p("seq_params.safetensors"))
    check(r.returncode == 0, "family: train exits 0: " + r.stderr.strip())
    outs = []
    for args in [binds(x=p("xs.npy"), y=p("ys.npy")), binds(x=p("xs_flat.npy"), y=p("ys.npy")),
                 binds(x=p("seq.csv"), y=p("seq.csv"))]:
        r = fepc("eval", seq, "--params", p("seq_params.safetensors"), *args)
        check(r.returncode == 0, "family eval %r: %s" % (args, r.stderr.strip()))
        outs.append(r.stdout)
    check(outs[0] == outs[1] == outs[2], "family: [N, T, 2], [N, 8] and CSV agree: %r" % outs)
    r = fepc("grad", seq, "--params", p("seq_params.safetensors"), "--batch", p("seq_batch.safetensors"),
             "--out", p("seq_g.safetensors"))
    m = re.search(r"energy: (\S+)", outs[0])
    if check(r.returncode == 0 and m, "family grad: " + r.stderr.strip()):
        e_grad = float(read_st_tensor(p("seq_g.safetensors"), "energy")) / 32
        check(abs(float(m.group(1)) - e_grad) < 1e-3 * max(1.0, abs(e_grad)),
              "family: eval energy %s == grad energy %g" % (m.group(1), e_grad))
    np.save(p("xs_bad.npy"), xs[:, :3])
    expect_error(fepc("eval", seq, *binds(x=p("xs_bad.npy"), y=p("ys.npy"))), "family mis-shaped",
                 "xs_bad.npy", "'x'", "[32, 3, 2]", "[32, 4, 2]")

    # ---- errors ----
    np.save(p("x3.npy"), np.zeros((N, 3), np.float32))
    expect_error(fepc("train", model, *binds(x=p("x3.npy"), y=p("y.npy"))), "mis-shaped npy",
                 "x3.npy", "'x'", "[300, 3]", "[300, 2]")
    write_st(p("bad.safetensors"), {"x": points.reshape(N, 2, 1), "y": labels.astype(np.int64)})
    expect_error(fepc("train", model, *binds(x=p("bad.safetensors"), y=p("y.npy"))), "mis-shaped safetensors",
                 "bad.safetensors", "'x'", "[300, 2, 1]", "[300, 2]")
    np.save(p("y4.npy"), np.zeros((N, 4), np.float32))
    expect_error(fepc("train", model, *binds(x=p("x.npy"), y=p("y4.npy"))), "mis-shaped labels",
                 "y4.npy", "'y'", "[300, 4]", "[300, 3]", "[300]")
    write_csv(p("wide.csv"), {"x[%d]" % k: points[:, k % 2] for k in range(3)})
    expect_error(fepc("train", model, *binds(x=p("wide.csv"), y=p("y.npy"))), "mis-shaped csv",
                 "wide.csv", "'x'", "[300, 3]", "[300, 2]")
    write_csv(p("nocols.csv"), {"a": points[:, 0]})
    expect_error(fepc("train", model, *binds(x=p("nocols.csv"), y=p("y.npy"))), "csv without the node's columns",
                 "nocols.csv", "'x[0]'")
    with open(p("x.npy"), "rb") as f:
        whole = f.read()
    with open(p("trunc.npy"), "wb") as f:
        f.write(whole[:-10])
    expect_error(fepc("train", model, *binds(x=p("trunc.npy"), y=p("y.npy"))), "truncated npy", "trunc.npy")
    with open(p("trunc.safetensors"), "wb") as f:
        f.write(open(p("data.safetensors"), "rb").read()[:-8])
    expect_error(fepc("train", model, *binds(x=p("trunc.safetensors"), y=p("y.npy"))), "truncated safetensors",
                 "trunc.safetensors")
    expect_error(fepc("train", model, *binds(x=p("missing.npy"), y=p("y.npy"))), "missing npy", "missing.npy")
    expect_error(fepc("eval", model, *binds(x=p("x.npy"), y=p("missing.csv"))), "missing csv", "missing.csv")
    np.save(p("y250.npy"), labels[:250])
    expect_error(fepc("train", model, *binds(x=p("x.npy"), y=p("y250.npy"))), "mismatched sample counts",
                 "x.npy", "y250.npy", "300", "250")
    np.save(p("y_big.npy"), labels + 1)
    expect_error(fepc("train", model, *binds(x=p("x.npy"), y=p("y_big.npy"))), "class index out of range",
                 "y_big.npy", "0..2")
    expect_error(fepc("train", model, *binds(x=p("x.npy"))), "unbound observed node", "'y'")
    expect_error(fepc("train", model, *binds(x=p("x.npy"), y=p("y.npy"), W1=p("x.npy"))), "binding a param", "'W1'")
    expect_error(fepc("train", model, *binds(x=p("data.safetensors"), y=p("y.npy"), z=p("x.npy"))),
                 "unknown node", "'z'")
    write_st(p("two.safetensors"), {"a": points, "b": points})
    expect_error(fepc("train", model, *binds(x=p("two.safetensors"), y=p("y.npy"))), "no tensor named after the node",
                 "two.safetensors", "'x'")
    expect_error(fepc("train", model, *formats["npy"], "--val", "300"), "--val takes everything", "--val 300", "300")
    r = fepc("train", model, "--bind", "x", "--bind", "y=" + p("y.npy"))
    check(r.returncode == 2 and "NODE=FILE" in r.stderr, "--bind without '=' is a usage error: " + r.stderr[:200])

print("cli_bind: %d failure(s)" % failures)
sys.exit(1 if failures else 0)
