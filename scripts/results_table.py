#!/usr/bin/python3
"""Turns the per-run training logs written by scripts/results (CSV:
epoch,energy,train_accuracy,test_accuracy,seconds) into docs/RESULTS.md.
usage: results_table.py LOG_DIR COMMAND"""
import csv
import glob
import os
import platform
import re
import statistics
import sys
import time

log_dir, command = sys.argv[1], sys.argv[2]
runs = {}
for path in sorted(glob.glob(os.path.join(log_dir, "*.csv"))):
    name, seed = re.match(r"(.*)-s(\d+)\.csv$", os.path.basename(path)).groups()
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if rows:
        runs.setdefault(name, []).append((int(seed), rows))

cpu = "unknown CPU"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
except (OSError, StopIteration):
    pass

print("# Results: `models/fmnist_mlp.fep` on Fashion-MNIST\n")
print("Regenerate with `%s` (per-epoch logs land in `%s/`). Measured on %s, %d cores, %s.\n"
      % (command.strip(), log_dir, cpu, os.cpu_count(), time.strftime("%Y-%m-%d")))
print("Every run uses the model's train block (Adam lr 0.001, batch 64, 20 relaxation steps of 0.5, 5 epochs)")
print("except where the name or the epochs column says otherwise: `cosine` adds `--schedule cosine`")
print("(learning rate decayed to zero over the run), `20ep` trains 20 epochs; the strict rules pc and")
print("ipc ran shorter (they recompute every prediction at each relaxation step). Test accuracy is")
print("measured with the label node free (prediction); seconds are training time per epoch, without")
print("evaluation, on a shared machine (other jobs ran at the same time, so compare within a row).\n")
print("| run | seeds | epochs | final test accuracy (each seed) | mean ± std | s/epoch |")
print("|---|---|---|---|---|---|")
for name, seeds in sorted(runs.items()):
    finals = [float(rows[-1]["test_accuracy"]) for _, rows in seeds]
    secs = [float(r["seconds"]) for _, rows in seeds for r in rows]
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print("| %s | %s | %s | %s | %.2f%% ± %.2f | %.1f |" % (
        name, ", ".join(str(s) for s, _ in seeds), seeds[0][1][-1]["epoch"],
        ", ".join("%.2f%%" % (100 * a) for a in finals), 100 * statistics.mean(finals), 100 * spread,
        statistics.mean(secs)))
print("\nPer-epoch test accuracy (seed 1):\n")
for name, seeds in sorted(runs.items()):
    rows = dict(seeds).get(1) or seeds[0][1]
    print("- %s: %s" % (name, " → ".join("%.2f" % (100 * float(r["test_accuracy"])) for r in rows)))
