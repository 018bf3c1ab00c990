#!/usr/bin/python3
"""The Python package's overhead (issue 14), measured side by side in one run.

  fit       models/fmnist_mlp.fep (fpa), one epoch over the first N training
            images, batch 64: the per-batch time of `fepc train` (its log's
            `seconds`, training only) against Session.fit (its history's
            `seconds`, the same measure), without a progress display and with
            the default one (tqdm when installed, drawn to /dev/null); fit's
            whole call (data copied in, sessions made) is reported beside it;
  kalman    models/kalman.fep at batch 1: one stream time step from Python
            (s["u"] = ..., s["o"] = ..., s.relax(), s["s"], s.advance()), one
            relax() call alone, and the C API's time step (bench_api kalman).
Interleaved repetitions, medians.  Prints `key value` lines (bench/run reads
them), then a summary.  usage: bench/python_overhead.py [--quick] [--threads N]
"""
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("FEP_LIBRARY", os.path.join(BUILD, "libfep.so"))
import fep  # noqa: E402
import numpy as np  # noqa: E402

QUICK = "--quick" in sys.argv
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
LIMIT = 3200 if QUICK else 12800
REPEATS = 3 if QUICK else 7
KALMAN_STEPS = 20000 if QUICK else 100000
MLP = os.path.join(ROOT, "models", "fmnist_mlp.fep")
KALMAN = os.path.join(ROOT, "models", "kalman.fep")
BATCHES = -(-LIMIT // 64)


def cli_epoch(tmp):
    log = os.path.join(tmp, "log.csv")
    subprocess.run([os.path.join(BUILD, "fepc"), "train", MLP, "--epochs", "1", "--limit", str(LIMIT),
                    "--threads", str(THREADS), "--log", log], check=True, capture_output=True)
    with open(log) as f:
        return float(f.read().strip().splitlines()[1].split(",")[4])


def fit_epoch(model, x, y, progress):
    with model.session(threads=THREADS) as s:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            t0 = time.perf_counter()
            h = s.fit(x, y, epochs=1, progress=progress)
            wall = time.perf_counter() - t0
    return h["seconds"][0], wall


def kalman_python():
    """(µs per time step, µs per relax() call) through the package."""
    with fep.compile(KALMAN).session(batch=1, threads=1) as s:
        u = np.zeros((1, 1), np.float32)
        o = np.zeros((1, 3), np.float32)

        def step(t):
            u[0, 0] = np.exp(-0.01 * (t % 500))
            o[0] = np.sin(0.01 * t + np.arange(3))
            s["u"] = u
            s["o"] = o
            s.relax()
            s["s"]
            s.advance()

        for t in range(1000):   # warm up
            step(t)
        t0 = time.perf_counter()
        for t in range(KALMAN_STEPS):
            step(t)
        per_step = (time.perf_counter() - t0) / KALMAN_STEPS
        relax = s.relax
        t0 = time.perf_counter()
        for _ in range(KALMAN_STEPS):
            relax()
        per_relax = (time.perf_counter() - t0) / KALMAN_STEPS
    return per_step * 1e6, per_relax * 1e6


def kalman_c():
    out = subprocess.run([os.path.join(BUILD, "bench_api"), "kalman", KALMAN, str(KALMAN_STEPS)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[1])


def main():
    x, y = fep.datasets.fashion_mnist("train", limit=LIMIT)
    model = fep.compile(MLP)
    runs = {"cli": [], "fit": [], "fit_bar": [], "fit_wall": []}
    with tempfile.TemporaryDirectory() as tmp:
        cli_epoch(tmp)                          # warm the kernel cache
        fit_epoch(model, x, y, False)
        for _ in range(REPEATS):
            runs["cli"].append(cli_epoch(tmp))
            seconds, wall = fit_epoch(model, x, y, False)
            runs["fit"].append(seconds)
            runs["fit_wall"].append(wall)
            runs["fit_bar"].append(fit_epoch(model, x, y, True)[0])
    med = {k: statistics.median(v) for k, v in runs.items()}
    kal = [kalman_python() for _ in range(3)]
    step_us = statistics.median(k[0] for k in kal)
    relax_us = statistics.median(k[1] for k in kal)
    c_us = statistics.median(kalman_c() for _ in range(3))
    print("cli_batch_ms %.4f" % (1e3 * med["cli"] / BATCHES))
    print("fit_batch_ms %.4f" % (1e3 * med["fit"] / BATCHES))
    print("fit_bar_batch_ms %.4f" % (1e3 * med["fit_bar"] / BATCHES))
    print("fit_wall_batch_ms %.4f" % (1e3 * med["fit_wall"] / BATCHES))
    print("fit_over_cli %.4f" % (med["fit"] / med["cli"]))
    print("fit_bar_over_cli %.4f" % (med["fit_bar"] / med["cli"]))
    print("fit_over_cli_best %.4f" % (min(runs["fit"]) / min(runs["cli"])))   # best runs: least disturbed
    print("kalman_python_step_us %.3f" % step_us)
    print("kalman_python_relax_us %.3f" % relax_us)
    print("kalman_c_step_us %.3f" % c_us)
    print("# fmnist_mlp fpa, %d samples (%d batches of 64), %d threads, median of %d interleaved runs:" % (
        LIMIT, BATCHES, THREADS, REPEATS), file=sys.stderr)
    print("#   fepc train %.3f ms/batch; fit %.3f (%.3f x), with progress bar %.3f (%.3f x); "
          "fit's whole call %.3f ms/batch; best runs fit / fepc train %.3f x" % (
              1e3 * med["cli"] / BATCHES, 1e3 * med["fit"] / BATCHES, med["fit"] / med["cli"],
              1e3 * med["fit_bar"] / BATCHES, med["fit_bar"] / med["cli"], 1e3 * med["fit_wall"] / BATCHES,
              min(runs["fit"]) / min(runs["cli"])), file=sys.stderr)
    print("# kalman, batch 1: Python time step %.2f us, relax() alone %.2f us; C API time step %.2f us" % (
        step_us, relax_us, c_us), file=sys.stderr)


if __name__ == "__main__":
    main()
