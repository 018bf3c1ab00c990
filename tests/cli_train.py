#!/usr/bin/python3
"""Training end to end on real data (Fashion-MNIST), at CI scale.

  1. smoke: models/fmnist_mlp.fep, one epoch over 3200 training samples,
     must reach test accuracy >= 0.70 (measured: 0.787); the --log CSV has
     the SPEC §7 columns and one row per epoch;
  2. eval prints `accuracy:` and `energy:` lines for the saved parameters,
     and its accuracy equals the last logged test accuracy;
  3. Ctrl-C during training saves a readable checkpoint and exits 130;
     --resume continues from it (the epoch count picks up after it);
  4. the generative model (no categorical node) trains and logs empty
     accuracy columns.
usage: cli_train.py FEPC SOURCE_DIR
"""
import csv
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

FEPC, SRC = sys.argv[1], sys.argv[2]
MLP = os.path.join(SRC, "models", "fmnist_mlp.fep")
GEN = os.path.join(SRC, "models", "fmnist_generative.fep")
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += 0 if cond else 1


def run(*args):
    return subprocess.run([FEPC, *args], capture_output=True, text=True)


def safetensors_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


with tempfile.TemporaryDirectory() as tmp:
    log, params = os.path.join(tmp, "log.csv"), os.path.join(tmp, "p.safetensors")
    r = run("train", MLP, "--epochs", "1", "--limit", "3200", "--log", log, "--save", params)
    check(r.returncode == 0, "smoke training exits 0 " + r.stderr.strip())
    rows = list(csv.DictReader(open(log))) if os.path.exists(log) else []
    check(len(rows) == 1 and list(rows[0]) == ["epoch", "energy", "train_accuracy", "test_accuracy", "seconds"],
          "log has one row with the SPEC columns")
    acc = float(rows[0]["test_accuracy"]) if rows else 0
    check(acc >= 0.70, "test accuracy %.4f >= 0.70 after one small epoch" % acc)
    meta = safetensors_meta(params) if os.path.exists(params) else {}
    check(meta.get("rule") == "fpa" and meta.get("epoch") == "1" and len(meta.get("model_hash", "")) == 16,
          "checkpoint metadata names the rule, epoch and model hash: %s" % meta)

    r = run("eval", MLP, "--params", params)
    lines = dict(line.split(": ") for line in r.stdout.strip().splitlines() if ": " in line)
    check(r.returncode == 0 and "accuracy" in lines and "energy" in lines, "eval prints accuracy: and energy:")
    check(abs(float(lines.get("accuracy", -1)) - acc) < 1e-4, "eval accuracy equals the logged test accuracy")

    # Ctrl-C: a checkpoint, exit 130, then resume.
    ckpt = os.path.join(tmp, "ckpt.safetensors")
    p = subprocess.Popen([FEPC, "train", MLP, "--epochs", "50", "--limit", "3200", "--save", ckpt],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 130, "SIGINT exits 130 (got %s) %s" % (p.returncode, err.strip()[-200:]))
    check(os.path.exists(ckpt) and "epoch" in safetensors_meta(ckpt), "SIGINT saved a readable checkpoint")
    done = int(safetensors_meta(ckpt).get("epoch", "-1")) if os.path.exists(ckpt) else -1
    log2 = os.path.join(tmp, "resume.csv")
    r = run("train", MLP, "--epochs", str(done + 1), "--limit", "3200", "--resume", ckpt, "--log", log2)
    rows2 = list(csv.DictReader(open(log2))) if os.path.exists(log2) else []
    check(r.returncode == 0 and len(rows2) == 1 and rows2[0]["epoch"] == str(done + 1),
          "--resume continues at epoch %d" % (done + 1))
    r = run("train", MLP, "--epochs", str(max(done, 0)), "--limit", "3200", "--resume", ckpt)
    check(r.returncode == 1 and "leaves nothing to train" in r.stderr,
          "--resume with no epochs left is an error: " + r.stderr.strip()[-200:])

    log3 = os.path.join(tmp, "gen.csv")
    r = run("train", GEN, "--epochs", "1", "--limit", "640", "--log", log3)
    rows3 = list(csv.DictReader(open(log3))) if os.path.exists(log3) else []
    check(r.returncode == 0 and len(rows3) == 1 and rows3[0]["test_accuracy"] == "" and
          float(rows3[0]["energy"]) > 0, "the generative model trains and logs empty accuracy columns " + r.stderr)

print("%d passed, %d failed" % (1 if failures == 0 else 0, failures))
sys.exit(1 if failures else 0)
