#!/usr/bin/python3
"""agent_bench.py — time per agent step of a discrete active-inference
agent (issue 12, "Speed"): fepc against the same agent written plainly in
NumPy (bench/agent_numpy.py), measured in the same run, one thread each.

  usage: bench/agent_bench.py [--quick | --check] [FEPC]

Prints a markdown body (tables) that bench/run puts into docs/PERFORMANCE.md.

  check    fepc runs each model with --dtype f64 --log; the NumPy agent
           replays the same observations and actions and must give the same
           G for every policy at every step (to 1e-6: the log's 9 digits);
           otherwise the benchmark stops with an error (--check: only this,
           at horizons 1–3 and 1, 3, 5, in a few seconds; CTest runs it)
  steps    the T-maze (models/agents/tmaze.fep, 4 policies) and a 5 × 5 grid
           (models/agents/grid5.fep, horizon 5: 3125 policies): fepc's time
           per step is the `seconds` column of `fepc act --summary` (the
           episode's perception–action loop, compilation excluded, the
           environment's step included) divided by its steps, the median of
           the episodes; NumPy's is its replay of fepc's trajectory (infer,
           plan, select, predict); medians of 5 interleaved rounds
  sweep    the horizon of both models up to the first that takes more than
           one second per step (or that fepc's policy budget refuses), each
           agent acting in its own copy of the environment; the largest
           policy count within one second per step is reported for each.

"NumPy" enumerates every policy and rolls each forward on its own (H·P
belief updates per plan), as pymdp-style code does; "NumPy, shared
prefixes" computes each action prefix once (Σ_h U^h updates), the
algorithm passes/agent.c compiles, so the two columns separate what the
algorithm saves from what compilation saves.  The machine is shared and
noisy: read the ratios.
"""
import os
import sys

# One core each (fepc runs with --threads 1), and glibc's mmap threshold
# raised for NumPy: by default every temporary array above 128 KiB is a
# fresh mmap that page-faults in, which doubles NumPy's time at 3125
# policies (fepc's times do not change).  Set before NumPy loads: re-exec.
TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
if __name__ == "__main__" and (os.environ.get("GLIBC_TUNABLES") != TUNABLES or
                               "OPENBLAS_NUM_THREADS" not in os.environ):
    os.execve(sys.executable, [sys.executable] + sys.argv,
              dict(os.environ, GLIBC_TUNABLES=TUNABLES,
                   OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1")))

import csv          # noqa: E402
import subprocess   # noqa: E402
import tempfile     # noqa: E402
import time         # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_numpy as an  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = "--quick" in sys.argv
CHECK = "--check" in sys.argv
ARGS = [a for a in sys.argv[1:] if a not in ("--quick", "--check")]
FEPC = ARGS[0] if ARGS else os.path.join(ROOT, "build", "fepc")
ONE_SECOND = 1.0
REPEATS = 3 if QUICK else 5
TARGET = 20.0


class Case:
    def __init__(self, name, model, env, outs, factory, horizon, max_horizon, episodes, steps, log_episodes,
                 env_factory):
        self.name, self.model, self.env, self.outs = name, os.path.join(ROOT, "models", "agents", model), env, outs
        self.factory, self.horizon, self.max_horizon = factory, horizon, max_horizon
        self.episodes, self.steps, self.log_episodes = episodes, steps, log_episodes
        self.env_factory = env_factory


CASES = [
    Case("T-maze", "tmaze.fep", "tmaze", ["where", "reward", "cue"], an.tmaze, 1, 12,
         3 if QUICK else 5, 50 if QUICK else 200, 3 if QUICK else 5, lambda agent: an.TmazeEnv(seed=3)),
    Case("grid 5×5", "grid5.fep", "grid:size=5,goal=12", ["seen"], an.grid, 5, 10,
         3 if QUICK else 5, 8 if QUICK else 24, 1, an.GridEnv),
]


def fepc(*args):
    return subprocess.run([FEPC, "act", *map(str, args)], capture_output=True, text=True)


def fepc_args(case, horizon, episodes, steps):
    return [case.model, "--env", case.env, "--horizon", horizon, "--episodes", episodes, "--steps", steps,
            "--threads", 1, "--dtype", "f64"]


def fepc_per_step(case, horizon, episodes, steps, tmp):
    """Median seconds per step over the episodes, or None when the policy budget refuses the horizon."""
    summary = os.path.join(tmp, "summary.csv")
    r = fepc(*fepc_args(case, horizon, episodes, steps), "--summary", summary)
    if r.returncode and "planning tree needs" in r.stderr:
        return None
    if r.returncode:
        sys.exit("fepc act failed:\n" + r.stderr)
    with open(summary) as f:
        rows = list(csv.DictReader(f))
    return float(np.median([float(x["seconds"]) / int(x["steps"]) for x in rows]))


def fepc_log(case, tmp, horizon=None, steps=None):
    log = os.path.join(tmp, "steps.csv")
    r = fepc(*fepc_args(case, horizon or case.horizon, case.log_episodes, steps or case.steps), "--log", log)
    if r.returncode:
        sys.exit("fepc act failed:\n" + r.stderr)
    with open(log) as f:
        reader = csv.reader(f)
        head = next(reader)
        col = {name: i for i, name in enumerate(head)}
        g0, n = col["G[0]"], 0
        while "G[%d]" % n in col:
            n += 1
        out = []
        for row in reader:
            out.append((int(row[col["t"]]), [int(row[col[o]]) for o in case.outs], int(row[col["move"]]),
                        np.array(row[g0:g0 + n], dtype=float)))
        return out


def replay(agent, rows):
    """(seconds per step, max |G_numpy − G_fepc|) over fepc's trajectory."""
    Gs, elapsed = [], 0.0
    for i, (t, obs, u, _) in enumerate(rows):
        if t == 0:
            agent.reset()
        t0 = time.perf_counter()
        agent.infer(obs)
        agent.plan()
        agent.select()
        agent.predict(u)   # fepc's action, to stay on its trajectory
        if i > 0:          # the first step warms up
            elapsed += time.perf_counter() - t0
        Gs.append(agent.G.copy())
    return elapsed / (len(rows) - 1), max(float(np.abs(g - r[3]).max()) for g, r in zip(Gs, rows))


def closed_loop(agent, env, budget, warm):
    """Seconds per step of the agent acting in env: at least 2 steps and `budget` seconds."""
    obs = env.reset()
    agent.reset()
    if warm:
        u = agent.step(obs)
        agent.predict(u)
        obs = env.step(u)
    steps, elapsed = 0, 0.0
    while steps < 2 or (elapsed < budget and steps < 200):
        t0 = time.perf_counter()
        u = agent.step(obs)
        agent.predict(u)
        elapsed += time.perf_counter() - t0
        obs = env.step(u)
        steps += 1
        if steps % 16 == 0:
            obs = env.reset()
            agent.reset()
    return elapsed / steps


def sweep(case, tmp):
    """Rows (horizon, policies, numpy s, tree s, fepc s) up to the horizon fepc's policy budget refuses (or
    case.max_horizon), None where not measured: each series stops after its first horizon beyond one second
    per step.  Returns the rows and the refused horizon (or None)."""
    budget = 0.05 if QUICK else 0.3
    rows, live = [], {"numpy": True, "tree": True, "fepc": True}
    last = {"numpy": 0.0, "tree": 0.0, "fepc": 0.0}
    U = case.factory(horizon=1).U
    for h in range(1, case.max_horizon + 1):
        if not any(live.values()):
            break
        cells = {}
        if live["fepc"]:
            est = last["fepc"] * U if last["fepc"] else 1e-3
            cells["fepc"] = fepc_per_step(case, h, 3, int(max(2, min(200, budget / est))), tmp)
            if cells["fepc"] is None:
                rows.append((h, U ** h, None, None, None))
                return rows, h
        for kind in ("numpy", "tree"):
            if live[kind]:
                agent = case.factory(horizon=h, tree=kind == "tree")
                cells[kind] = closed_loop(agent, case.env_factory(agent), budget, last[kind] < 0.05)
                del agent
        for kind in cells:
            last[kind] = cells[kind]
            live[kind] = cells[kind] <= ONE_SECOND
        rows.append((h, U ** h, cells.get("numpy"), cells.get("tree"), cells.get("fepc")))
    return rows, None


def largest(rows, k):
    """The largest policy count of series k within one second per step, and whether a larger horizon was
    measured beyond it (False: it fit at every horizon measured, so the count is a lower bound)."""
    fit = [r[1] for r in rows if r[k] is not None and r[k] <= ONE_SECOND]
    return (max(fit) if fit else 0), any(r[k] is not None and r[k] > ONE_SECOND for r in rows)


def ms(x):
    return "-" if x is None else ("%.3f" % (x * 1e3) if x < 0.01 else "%.1f" % (x * 1e3))


def check():
    """The G check alone, at several horizons (CTest agent_numpy_check): exit status 1 on a mismatch."""
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for case, horizons in ((CASES[0], (1, 2, 3)), (CASES[1], (1, 3, 5))):
            for h in horizons:
                rows = fepc_log(case, tmp, h, 8)
                for tree in (False, True):
                    dG = replay(case.factory(horizon=h, tree=tree), rows)[1]
                    print("%s, horizon %d, %s: %d steps, max |G_NumPy - G_fepc| = %.2e" % (
                        case.name, h, "shared prefixes" if tree else "every policy", len(rows), dG))
                    worst = max(worst, dG)
    print("ok" if worst < 1e-6 else "FAIL: NumPy and fepc disagree")
    return 0 if worst < 1e-6 else 1


def main():
    if CHECK:
        sys.exit(check())
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        # ---- the per-step targets ----
        head = ["| model | policies | NumPy (µs/step) | NumPy, shared prefixes (µs/step) | fepc (µs/step) |"
                " NumPy / fepc | shared prefixes / fepc | target | met | max abs(G_NumPy − G_fepc) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for case in CASES:
            rows = fepc_log(case, tmp)
            # interleaved rounds, medians: on a shared machine one sample can be far off
            samples = {False: [], True: [], "fepc": []}
            for _ in range(REPEATS):
                for tree in (False, True):
                    samples[tree].append(replay(case.factory(horizon=case.horizon, tree=tree), rows))
                samples["fepc"].append(fepc_per_step(case, case.horizon, case.episodes, case.steps, tmp))
            res = {tree: (float(np.median([r[0] for r in samples[tree]])), max(r[1] for r in samples[tree]))
                   for tree in (False, True)}
            dG = max(res[False][1], res[True][1])
            if not dG < 1e-6:
                sys.exit("agent_bench: NumPy and fepc disagree on %s: max |ΔG| = %.3g" % (case.name, dG))
            f = float(np.median(samples["fepc"]))
            P = len(rows[0][3])
            ratio, tree_ratio = res[False][0] / f, res[True][0] / f
            head.append("| %s, horizon %d | %d | %.1f | %.1f | %.1f | %.1f× | %.1f× | >= %g× | %s | %.1e |" % (
                case.name, case.horizon, P, res[False][0] * 1e6, res[True][0] * 1e6, f * 1e6, ratio, tree_ratio,
                TARGET, "yes" if ratio >= TARGET else "no", dG))
            print("%s: NumPy %.1f µs, shared prefixes %.1f µs, fepc %.1f µs per step: %.1f× (%.1f×); "
                  "max |ΔG| %.1e"
                  % (case.name, res[False][0] * 1e6, res[True][0] * 1e6, f * 1e6, ratio, tree_ratio, dG),
                  file=sys.stderr)
        out += head
        out.append("\nfepc: `fepc act --threads 1 --dtype f64`, the `seconds` column of `--summary` over the steps "
                   "(median of the episodes, then of %d rounds); NumPy %s with OPENBLAS_NUM_THREADS=%s and glibc's "
                   "mmap threshold at 32 MiB, replaying fepc's logged observations and actions (median of %d "
                   "replays, interleaved with fepc's rounds); the last column checks both NumPy agents' G against "
                   "fepc's log at every step." % (REPEATS, np.__version__, os.environ["OPENBLAS_NUM_THREADS"], REPEATS))
        # ---- the sweep ----
        out.append("\n### Policies within one second per step (the horizon swept, one agent acting in its "
                   "environment)\n")
        out.append("| model | horizon | policies | NumPy (ms/step) | NumPy, shared prefixes (ms/step) |"
                   " fepc (ms/step) | NumPy / fepc |")
        out.append("|---|---|---|---|---|---|---|")
        summary = []
        for case in CASES:
            rows, refused = sweep(case, tmp)
            for h, P, npy, tree, f in rows:
                fepc_cell = "refused (policy budget)" if refused == h else ms(f)
                ratio = "%.1f×" % (npy / f) if npy is not None and f is not None else "-"
                out.append("| %s | %d | %d | %s | %s | %s | %s |" % (case.name, h, P, ms(npy), ms(tree), fepc_cell,
                                                                     ratio))
                print("sweep %s h=%d P=%d: %s %s %s ms" % (case.name, h, P, ms(npy), ms(tree), ms(f)),
                      file=sys.stderr)
            parts = []
            for k, what in ((2, "NumPy"), (3, "NumPy with shared prefixes"), (4, "fepc")):
                n, bounded = largest(rows, k)
                parts.append("%s %s%d" % (what, "" if bounded else "≥ ", n))
            summary.append("%s: %s%s" % (case.name, ", ".join(parts), (
                " (horizon %d is refused by fepc's policy budget)" % refused) if refused else ""))
        out.append("\nLargest policy count within one second per step — " + "; ".join(summary) + ".")
    print("\n".join(out))


if __name__ == "__main__":
    main()
