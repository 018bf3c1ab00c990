#!/usr/bin/python3
"""Data-parallel training across MPI ranks on localhost (label mpi):
`mpirun --allow-run-as-root --oversubscribe -np P fepc train|eval ...`.

Data: 450 synthetic Fashion-MNIST-sized samples (x: 784 values, y: one of
10 classes from a random linear teacher) bound with --bind, batch 100 and
--val 40, so an epoch has four batches of 100 samples (blocks 32, 32, 32,
4: with 3 ranks one rank holds two blocks, one a single block and one the
4-sample block) and a last batch of 10 (one block: the other ranks hold
nothing).

Checks:
  1. determinism: the saved parameters are byte-identical and the logs
     equal (but for the seconds column) for 1 process with 1 or 2 threads
     and 2 or 3 ranks with 1 or 2 threads (fpa); for ipc (a parameter step
     after every relaxation step) on 1 and 3 ranks; for pc in f64 with an
     energy tolerance (the early stop decided on the global energy) on 1
     and 2 ranks;
  2. sharded evaluation prints exactly the single-process accuracy and
     energy, on the held-out samples and on all bound data;
  3. only rank 0 prints epoch lines, and it reports the ranks' time in
     collectives;
  4. ranks that run another model setting, or bind other data, stop at
     start-up with rank 0 naming the first rank that differs;
  5. a rank killed (SIGKILL) mid-run: the job ends, rank 0 says in which
     epoch it stopped and which checkpoint holds which epoch, that
     checkpoint is complete (eval accepts it; its epoch metadata is the one
     named), and --resume from it on 1 and on 3 ranks gives identical
     parameters.
usage: mpi_train.py FEPC MPIRUN SOURCE_DIR
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

import numpy as np

FEPC, MPIRUN, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = os.path.join(SRC, "models", "fmnist_mlp.fep")
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    sys.stdout.flush()
    failures += 0 if cond else 1


def mpirun(ranks, *args, threads="1"):
    """fepc args on `ranks` ranks (1: plain fepc, no launcher)."""
    cmd = [FEPC, *args, "--threads", threads]
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(ranks)] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def mpmd(*commands):
    """One rank per fepc argument list (MPMD), so ranks can disagree."""
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe"]
    for i, args in enumerate(commands):
        cmd += ([":"] if i else []) + ["-np", "1", FEPC, *args, "--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def log_rows(path):
    """The log without its seconds column."""
    if not os.path.exists(path):
        return None
    return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(open(path))]


def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def read(path):
    return open(path, "rb").read() if os.path.exists(path) else b"missing"


with tempfile.TemporaryDirectory() as tmp:
    p = lambda name: os.path.join(tmp, name)
    rng = np.random.default_rng(15)
    x = rng.random((450, 784), dtype=np.float32)
    teacher = rng.standard_normal((784, 10)).astype(np.float32)
    y = np.argmax((x - 0.5) @ teacher, axis=1).astype(np.int64)
    np.save(p("x.npy"), x)
    np.save(p("y.npy"), y)
    x2 = x.copy()
    x2[17, 5] += 0.25
    np.save(p("x2.npy"), x2)
    data = ["--bind", "x=" + p("x.npy"), "--bind", "y=" + p("y.npy"), "--batch", "100", "--val", "40"]

    def train(tag, ranks, threads="1", extra=(), epochs="2"):
        r = mpirun(ranks, "train", MODEL, *data, "--epochs", epochs, "--save", p(tag + ".st"), "--log",
                   p(tag + ".csv"), *extra, threads=threads)
        check(r.returncode == 0, "%s: exit 0 %s" % (tag, r.stderr.strip()[-400:]))
        return r

    # 1. determinism, fpa
    ref = train("fpa-1x1", 1)
    ref_log = log_rows(p("fpa-1x1.csv"))
    check(ref_log is not None and len(ref_log) == 2, "reference run logs two epochs")
    for ranks, threads in ((1, "2"), (2, "1"), (3, "1"), (2, "2")):
        tag = "fpa-%dx%s" % (ranks, threads)
        r = train(tag, ranks, threads)
        check(read(p(tag + ".st")) == read(p("fpa-1x1.st")),
              "fpa, %d rank(s) x %s thread(s): parameters identical to 1 process x 1 thread" % (ranks, threads))
        check(log_rows(p(tag + ".csv")) == ref_log, "fpa, %d x %s: the same log" % (ranks, threads))
        if ranks > 1:
            lines = [l for l in r.stdout.splitlines() if l.startswith("epoch ")]
            check(len(lines) == 2, "%d ranks: only rank 0 prints the two epoch lines (got %d)" % (ranks, len(lines)))
            check(all("%d ranks:" % ranks in l and "in collectives" in l for l in lines),
                  "%d ranks: epoch lines report the time in collectives" % ranks)
    for rule, extra, ranks in (("ipc", ("--rule", "ipc", "--steps", "3"), 3),
                               ("pc-f64-tol", ("--rule", "pc", "--steps", "8", "--tol", "1e-4", "--dtype", "f64"), 2)):
        train(rule + "-1", 1, extra=extra)
        train(rule + "-%d" % ranks, ranks, extra=extra)
        check(read(p(rule + "-1.st")) == read(p("%s-%d.st" % (rule, ranks))) and
              log_rows(p(rule + "-1.csv")) == log_rows(p("%s-%d.csv" % (rule, ranks))),
              "%s: %d ranks give 1 process's parameters and log" % (rule, ranks))

    # 2. sharded evaluation
    for what, extra in (("held-out samples", ("--val", "40")), ("all bound data", ())):
        args = ["eval", MODEL, "--params", p("fpa-1x1.st"), "--bind", "x=" + p("x.npy"), "--bind", "y=" + p("y.npy"),
                "--batch", "100", *extra]
        one, three = mpirun(1, *args), mpirun(3, *args)
        check(one.returncode == 0 and "accuracy: " in one.stdout, "eval on %s, 1 process: %s" % (what, one.stdout.strip()))
        check(three.returncode == 0 and three.stdout == one.stdout,
              "eval on %s, 3 ranks: the same lines (%r vs %r)" % (what, three.stdout.strip(), one.stdout.strip()))

    # 4. disagreeing ranks
    base = ["train", MODEL, *data, "--epochs", "1"]
    r = mpmd(base, base + ["--step-size", "0.4"])
    check(r.returncode != 0 and "rank 1 has model hash" in r.stderr,
          "another setting on rank 1: stopped at start-up, named: " + r.stderr.strip().splitlines()[0][:200])
    other = ["train", MODEL, "--bind", "x=" + p("x2.npy"), "--bind", "y=" + p("y.npy"), "--batch", "100", "--val", "40",
             "--epochs", "1"]
    r = mpmd(base, base, other)
    check(r.returncode != 0 and "rank 2 has data hash" in r.stderr,
          "other data on rank 2: stopped at start-up, named: " + (r.stderr.strip().splitlines() or [""])[0][:200])

    # 5. a rank killed mid-run
    ck = p("ck.st")
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2", FEPC, "train", MODEL, *data, "--rule", "pc",
           "--steps", "5", "--epochs", "1000", "--save", ck, "--threads", "1"]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def rank_pids():
        """Rank -> pid of mpirun's children (Open MPI sets OMPI_COMM_WORLD_RANK)."""
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[1]) != job.pid:
                    continue
                for var in open("/proc/%s/environ" % pid, "rb").read().split(b"\0"):
                    if var.startswith(b"OMPI_COMM_WORLD_RANK="):
                        found[int(var.split(b"=")[1])] = int(pid)
            except (OSError, ValueError, IndexError):
                pass
        return found

    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(ck) and meta(ck).get("epoch") not in (None, "1")):
        time.sleep(0.05)
    pids = rank_pids()
    check(1 in pids, "found rank 1's process: %s" % pids)
    if 1 in pids:
        os.kill(pids[1], signal.SIGKILL)
    out, err = job.communicate(timeout=120)
    check(job.returncode != 0, "the job ends when a rank dies (exit %d)" % job.returncode)
    stop = [l for l in err.splitlines() if "the job was stopped in epoch" in l]
    check(len(stop) == 1, "rank 0 says the job was stopped: %s" % (stop or err[-300:]))
    named = stop[0].split(" holds epoch ")[1].split(":")[0] if stop and " holds epoch " in stop[0] else None
    check(named is not None and (ck + " holds epoch " + named) in stop[0], "and names the surviving checkpoint")
    check(meta(ck).get("epoch") == named, "the checkpoint holds the epoch named (%s): %s" % (named, meta(ck)))
    r = mpirun(1, "eval", MODEL, "--params", ck, "--bind", "x=" + p("x.npy"), "--bind", "y=" + p("y.npy"))
    check(r.returncode == 0 and "accuracy: " in r.stdout, "the checkpoint is complete: eval accepts it")
    if named:
        more = str(int(named) + 2)
        for ranks in (1, 3):
            r = mpirun(ranks, "train", MODEL, *data, "--rule", "pc", "--steps", "5", "--epochs", more, "--resume", ck,
                       "--save", p("resumed-%d.st" % ranks))
            check(r.returncode == 0 and r.stdout.count("epoch ") == 2,
                  "--resume on %d rank(s) trains epochs %d-%s %s" % (ranks, int(named) + 1, more, r.stderr[-300:]))
        check(read(p("resumed-1.st")) == read(p("resumed-3.st")), "--resume on 3 ranks gives 1 process's parameters")

sys.exit(1 if failures else 0)
