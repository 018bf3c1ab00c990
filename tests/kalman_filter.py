#!/usr/bin/python3
"""PC as a Kalman filter (SPEC §6.3, thesis §3.4), end to end through
`fepc filter`.

Simulates the thesis's accelerating body (A, B, C of models/kalman.fep,
control u_t = exp(-0.01 t), unit process and observation noise), streams it
through fepc, and checks:
  1. fepc's estimates equal a numpy twin of the same PC filter (5 steps of
     size 0.1 from the prediction A s_{t-1} + B u_t) to 1e-4 relative;
  2. they track an exact Kalman filter with the same matrices (Q = R = I):
     root-mean-square gap <= 5% of the signal's RMS;
  3. --learn (online SGD on A, lr from the model) runs, changes the
     estimates, and keeps tracking (first 60 steps).
The body's acceleration integrates u, so its position reaches ~1e5 within
800 steps; SGD on A at the model's lr 1e-5 then diverges (in a numpy twin
too), and recovery of A from a random start (thesis Fig. 3.13, dt = 0.001)
belongs to the model-zoo reproductions, not to this check of the filter.
The body, the exact filter and the numpy PC twin are the reproduction's
(scripts/repro/exp_kalman.py), so the test and the results use one copy.
Prints the measured figures.  usage: kalman_filter.py FEPC SOURCE_DIR [ENGINE]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

WRAPPER = os.environ.get("FEPC_WRAPPER", "").split()    # e.g. valgrind (the valgrind label)
FEPC, SRC = sys.argv[1], sys.argv[2]
ENGINE = sys.argv[3] if len(sys.argv) > 3 else "jit"
MODEL = os.path.join(SRC, "models", "kalman.fep")
sys.path.insert(0, os.path.join(SRC, "scripts", "repro"))
from exp_kalman import C_TRUE, kalman, kinematics, pc_twin, simulate, write_stream  # noqa: E402

A = kinematics(0.1)   # models/kalman.fep's A (dt = 0.1); B and C are the model's too
T = 800
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += 0 if cond else 1


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = np.array([[float(x) for x in line.split(",")] for line in f if line.strip()])
    return header, rows


def fepc_filter(tmp, csv, *extra):
    out = os.path.join(tmp, "est.csv")
    r = subprocess.run([*WRAPPER, FEPC, "filter", MODEL, "--data", csv, "--out", out, "--engine", ENGINE, *extra],
                       capture_output=True, text=True)
    check(r.returncode == 0, "fepc filter %s exits 0 %s" % (" ".join(extra), r.stderr.strip()))
    header, rows = read_csv(out) if r.returncode == 0 else (None, np.zeros((T, 3)))
    if header is not None:
        check(header == ["s[0]", "s[1]", "s[2]"], "output header names the latent's elements")
    return rows


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


rng = np.random.default_rng(7)
xs, os_, us = simulate(rng, A, T)
with tempfile.TemporaryDirectory() as tmp:
    csv = os.path.join(tmp, "stream.csv")
    write_stream(csv, os_, us)
    est = fepc_filter(tmp, csv)
    twin, kf = pc_twin(A, C_TRUE, os_, us)[0], kalman(A, os_, us)
    check(rms(est - twin) <= 1e-4 * rms(twin), "fepc equals the numpy PC filter (gap %.2e)" % (rms(est - twin) / rms(twin)))
    gap = rms(est - kf) / rms(kf)
    check(gap <= 0.05, "PC tracks the exact Kalman filter: RMS gap %.5f of the signal (<= 0.05)" % gap)
    print("     RMSE vs true state: Kalman %.3f, PC %.3f" % (rms(kf - xs), rms(est - xs)))

    # Online learning: one SGD step on A per time step, over the first 60
    # steps (later the body's state reaches 1e5 and SGD at the model's lr
    # diverges — see the docstring).
    short = os.path.join(tmp, "short.csv")
    write_stream(short, os_[:60], us[:60])
    fixed = fepc_filter(tmp, short)
    learned = fepc_filter(tmp, short, "--learn")
    check(rms(learned - fixed) > 0, "--learn changes the estimates")
    gap = rms(learned - kf[:60]) / rms(kf[:60])
    check(gap <= 0.05, "with --learn the filter keeps tracking: RMS gap %.5f" % gap)

print("%d passed, %d failed" % (1 if failures == 0 else 0, failures))
sys.exit(1 if failures else 0)
