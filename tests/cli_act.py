#!/usr/bin/python3
"""End-to-end tests of `fepc act` (discrete active inference) on the
validation cases of thesis-notes/thesis-action.md §5.4, read back from the
per-step CSV log and the saved counts:

  T1  T-maze closed loop: centre → cue → the rewarded arm, reward rate
      (the first arm entered pays) ≥ 0.95 over 200 episodes; with
      information gain off (utility alone) the first moves tie, the agent
      wanders and the rate falls towards chance (≤ 0.75: above 0.5 only by
      the episodes that wander onto the cue first).
  T3  grid world: the goal in the Manhattan distance and stays there, the
      first action's mass on the shortest-path moves; with noisy cells the
      EFE agent takes the unambiguous path while a utility-only agent is
      indifferent between the two.
  T4  Dirichlet learning: novelty visits the places it knows least first
      (all four in the first four steps, for every seed; without novelty
      fewer), and the counts converge to the process's true likelihood.
Also: the environment and the agent must agree (clear error otherwise),
unknown environments and bad options are errors, and a failed run leaves
no log behind.

usage: cli_act.py FEPC SOURCE_DIR
"""
import csv
import os
import subprocess
import sys
import tempfile

WRAPPER = os.environ.get("FEPC_WRAPPER", "").split()    # e.g. valgrind (the valgrind label)
FEPC, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "scripts", "repro"))
from common import read_safetensors  # noqa: E402

MODELS = os.path.join(SRC, "models", "agents")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def fepc(*args, expect=0):
    r = subprocess.run(WRAPPER + [FEPC, *args], capture_output=True, text=True)
    if r.returncode != expect:
        raise SystemExit("fepc %s: exit %d (expected %d)\n%s%s" % (" ".join(args), r.returncode, expect,
                                                                   r.stdout, r.stderr))
    return r


def act_log(tmp, model, env, *extra):
    log = os.path.join(tmp, "steps.csv")
    fepc("act", os.path.join(MODELS, model), "--env", env, "--log", log, *extra)
    with open(log) as f:
        return list(csv.DictReader(f))


def episodes(rows):
    out = {}
    for r in rows:
        out.setdefault(int(r["episode"]), []).append(r)
    return [out[k] for k in sorted(out)]


def reward_rate(rows):
    """The share of episodes whose first arm paid the reward (of those that reached an arm)."""
    won = lost = 0
    for e in episodes(rows):
        first = next((r["reward"] for r in e if r["reward"] in ("1", "2")), None)
        won += first == "1"
        lost += first == "2"
    return won / max(won + lost, 1)


def tmaze(tmp):
    rows = act_log(tmp, "tmaze.fep", "tmaze", "--episodes", "200", "--seed", "7")
    eps = episodes(rows)
    check(len(eps) == 200, "200 T-maze episodes logged, got %d" % len(eps))
    rate = reward_rate(rows)
    print("T-maze reward rate with EFE: %.3f" % rate)
    check(rate >= 0.95, "EFE reward rate %.3f >= 0.95" % rate)
    # centre → cue → the arm the cue named, every time (the first move is sampled, α = 16)
    good = sum(e[0]["move"] == "3" and e[1]["where"] == "3" and int(e[1]["move"]) == int(e[1]["cue"]) + 1
               for e in eps)
    check(good >= 195, "cue then the cued arm in %d of 200 episodes" % good)
    blind = act_log(tmp, "tmaze.fep", "tmaze", "--episodes", "200", "--seed", "7", "--policy", "efe(utility = on)")
    rate_off = reward_rate(blind)
    print("T-maze reward rate with information gain off: %.3f" % rate_off)
    check(rate_off <= 0.75, "information gain off: reward rate %.3f falls to near chance (<= 0.75)" % rate_off)
    first = [e[0]["move"] for e in episodes(blind)]
    check(len(set(first)) == 4, "information gain off: the tied first moves are sampled uniformly")


def grid(tmp):
    rows = act_log(tmp, "grid.fep", "grid")
    cells = [r["seen"] for r in rows]
    check(cells[4:] == ["8"] * (len(cells) - 4) and "8" not in cells[:4],
          "grid: the goal after exactly 4 moves, then stays (cells %s)" % cells)
    p0 = [float(rows[0]["P.move[%d]" % i]) for i in range(5)]
    check(p0[1] + p0[3] > 0.999, "grid: the first action's mass is on south and east (%s)" % p0)
    check(all(float(rows[0]["G.info_gain[%d]" % i]) < 1e-9 for i in range(5 ** 4)),
          "grid: no information to gain when every cell is seen exactly")
    noisy = act_log(tmp, "grid_noisy.fep", "grid:noisy=3+6+7")
    path = [r["seen"] for r in noisy]
    check(not {"3", "6", "7"} & set(path[:5]) and path[4] == "8",
          "noisy grid: EFE reaches the goal avoiding cells 3, 6, 7 (cells %s)" % path)
    p = [float(noisy[0]["P.move[%d]" % i]) for i in range(5)]
    check(p[3] > 0.99, "noisy grid: EFE goes east first (%s)" % p)
    util = act_log(tmp, "grid_noisy.fep", "grid:noisy=3+6+7", "--policy", "efe(utility = on)")
    pu = [float(util[0]["P.move[%d]" % i]) for i in range(5)]
    check(abs(pu[1] - pu[3]) < 1e-9 and pu[1] > 0.49, "noisy grid: utility alone is indifferent (%s)" % pu)


def explore(tmp):
    def distinct_first_four(policy, seed):
        rows = act_log(tmp, "explore.fep", "model", "--steps", "4", "--seed", str(seed), "--policy", policy)
        return len({r["where"] for r in rows})
    novel = [distinct_first_four("efe(novelty = on)", s) for s in range(1, 11)]
    plain = [distinct_first_four("efe", s) for s in range(1, 11)]
    print("places seen in the first 4 steps, novelty on: %s, off: %s" % (novel, plain))
    check(novel == [4] * 10, "novelty visits every place first: %s" % novel)
    check(sum(plain) / 10 < 3.5, "without novelty exploration is random: %s" % plain)
    save = os.path.join(tmp, "counts.safetensors")
    fepc("act", os.path.join(MODELS, "explore.fep"), "--env", "model", "--steps", "800", "--save", save)
    a = read_safetensors(save)["a_light"]
    learned = a[1] / a.sum(0)
    truth = [0.2, 0.4, 0.6, 0.8]
    print("learned P(light | place): %s (truth %s), visits %s" % (learned.round(3), truth, a.sum(0) - 2))
    check(max(abs(learned - truth)) < 0.1, "counts converge to the true likelihood: %s" % learned)
    check(min(a.sum(0)) > 150, "novelty keeps visiting every place: %s" % a.sum(0))


def errors(tmp):
    log = os.path.join(tmp, "never.csv")
    r = fepc("act", os.path.join(MODELS, "tmaze.fep"), "--env", "grid", "--log", log, expect=1)
    check("environment 'grid' gives 1 observation and takes 1 action, but the agent has 3 outcomes and 1 control"
          in r.stderr, "mismatched environment: %s" % r.stderr)
    check(not os.path.exists(log), "a failed run leaves no log")
    r = fepc("act", os.path.join(MODELS, "tmaze.fep"), "--env", "maze", expect=1)
    check("unknown environment 'maze'" in r.stderr, "unknown environment: %s" % r.stderr)
    r = fepc("act", os.path.join(MODELS, "tmaze.fep"), "--env", "tmaze:p=2", expect=1)
    check("option p=2: expected a probability in [0, 1]" in r.stderr, "bad option: %s" % r.stderr)
    r = fepc("act", os.path.join(MODELS, "tmaze.fep"), "--env", "tmaze", "--horizon", "40", expect=1)
    check("--horizon:1:1: error: horizon 40 gives 4^40" in r.stderr, "override checked like the file: %s" % r.stderr)
    r = fepc("act", os.path.join(SRC, "models", "kalman.fep"), "--env", "tmaze", expect=1)
    check("declares no hidden factors" in r.stderr, "a graph model is not an agent: %s" % r.stderr)
    r = fepc("act", os.path.join(MODELS, "grid.fep"), "--env", "grid:size=4", expect=1)
    check("observation 0 takes 16 values, but outcome 'seen' has 9" in r.stderr, "sizes checked: %s" % r.stderr)


with tempfile.TemporaryDirectory() as tmp:
    tmaze(tmp)
    grid(tmp)
    explore(tmp)
    errors(tmp)
sys.exit(1 if failures else 0)
