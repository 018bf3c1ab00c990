"""exp_agents — discrete active inference (thesis §2.10 and ch. 5;
thesis-notes/thesis-action.md §5.4 T1–T4), run by `fepc act` on the models
of models/agents/ and measured from its per-step logs and saved counts.

  T1  the T-maze: one-step G and q(a) at the centre, G after the cue, the
      closed-loop reward rate over 200 episodes with and without the
      information gain (utility alone)
  T2  EFE against FEEF (risk alone) on the null-cue and ambiguous-cue mazes
      (the null-cue maze is tmaze.fep with its cue table edited, written to
      the scratch folder)
  T3  the grid world (3 × 3 and 5 × 5): the goal in the Manhattan distance
      and staying; with noisy cells the EFE agent's unambiguous path
      against the utility-only agent's indifference
  T4  Dirichlet learning (explore.fep): counts against the process's true
      likelihood as the run gets longer, and novelty against no novelty in
      the first steps

Every run is f64 (the reference values have four decimals).  Quick mode
runs the same checks with shorter learning runs.
"""
import math
import re

import numpy as np

from common import ReproError, Row, Section, markdown_table, read_csv, read_safetensors, write_csv, \
    write_safetensors

TITLE = "Active inference (discrete): T-maze, EFE vs FEEF, grid world, Dirichlet novelty (thesis §2.10, ch. 5)"

MOVES = ["centre", "left", "right", "cue"]
GRID_MOVES = ["north", "south", "west", "east", "stay"]
NOISY = (3, 6, 7)
TRUE_LIGHT = [0.2, 0.4, 0.6, 0.8]
TOL = 5e-5          # the thesis-notes values have four decimals


def _act(ctx, name, model, env, *args):
    """`fepc act` with a per-step log; returns its rows (dicts of floats)."""
    log = ctx.work("agents", name + ".csv")
    ctx.fepc("act", model, "--env", env, "--dtype", "f64", "--log", log, *args)
    return read_csv(log)


def _vec(row, name, n):
    return np.array([row["%s[%d]" % (name, i)] for i in range(n)])


def _episodes(rows):
    out = {}
    for r in rows:
        out.setdefault(int(r["episode"]), []).append(r)
    return [out[k] for k in sorted(out)]


def _fmt(v, digits=4):
    return " / ".join("%.*f" % (digits, round(float(x), digits) + 0.0) for x in v)   # no "-0.0000"


def _verdict(ok, why):
    return "agrees" if ok else "differs: " + why


def _null_cue_model(ctx):
    """tmaze.fep with the cue saying "null" (a third value) away from the cue place (thesis-notes T2)."""
    with open(ctx.model("agents/tmaze")) as f:
        text = f.read()
    edits = [(r"^const\s+A_cue\b.*$", "const    A_cue[o, l, k] : [3, 4, 2] = where(l == 3, o == k, o == 2)"),
             (r"^outcome\s+cue\b.*$", "outcome  cue    : [3] ~ categorical(likelihood = A_cue(loc, ctx))")]
    for pattern, line in edits:
        text, n = re.subn(pattern, line, text, count=1, flags=re.M)
        if n != 1:
            raise ReproError("models/agents/tmaze.fep: no line matches %r to make the null-cue variant" % pattern)
    path = ctx.work("agents", "tmaze_null_cue.fep")
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- T1 ----

def _first_arm_rewards(episode):
    """+1 / −1 for the first arm entered (the environment's reward), None when no arm was entered;
    and whether the cue was visited before it."""
    for r in episode:
        if r["env_reward"] != 0:
            cued = any(x["where"] == 3 for x in episode if x["t"] <= r["t"])
            return r["env_reward"], cued
    return None, False


def _reward_rate(eps):
    first = [_first_arm_rewards(e) for e in eps]
    won = sum(1 for f, _ in first if f == 1)
    lost = sum(1 for f, _ in first if f == -1)
    blind = [f for f, cued in first if f is not None and not cued]
    return won / max(won + lost, 1), won + lost, blind


def t1(ctx, rows, figs):
    tmaze = ctx.model("agents/tmaze")
    runs = _act(ctx, "tmaze_efe", tmaze, "tmaze", "--episodes", 200, "--seed", 7)
    eps = _episodes(runs)
    first = eps[0][0]
    G0, P0, ig0 = _vec(first, "G", 4), _vec(first, "P.move", 4), _vec(first, "G.info_gain", 4)
    want_G, want_P = [5.1304, 4.5353, 4.5353, 4.4372], [0.0, 0.1471, 0.1471, 0.7059]
    rows.append(Row("T1 T-maze, one step at the centre: G (centre / left / right / cue)",
                    "G = 5.1304 / 4.5353 / 4.5353 / 4.4372; info gain 0 / 0.5951 / 0.5951 / 0.6931 (ln 2)",
                    "G = %s; info gain %s" % (_fmt(G0), _fmt(ig0)),
                    _verdict(max(abs(G0 - want_G)) < TOL and max(abs(ig0 - [0, 0.5951, 0.5951, 0.6931])) < TOL,
                             "more than 5e-5 from the reference")))
    rows.append(Row("T1 T-maze, action posterior q(a) at γ = 16",
                    "q(a) = 0 / .1471 / .1471 / .7059: the cue first",
                    "q(a) = %s" % _fmt(P0), _verdict(max(abs(P0 - want_P)) < TOL, "more than 5e-5 off")))
    # after the cue: every episode at the cue at t = 1, mirrored for the cue "right"
    post = []
    for e in eps:
        if len(e) > 1 and e[1]["where"] == 3:
            G = _vec(e[1], "G", 4)
            post.append((G if e[1]["cue"] == 0 else G[[0, 2, 1, 3]], _vec(e[1], "P.move", 4)[1 + int(e[1]["cue"])]))
    if not post:
        raise ReproError("T-maze: no episode reached the cue at t = 1")
    after = post[0][0]
    dev = max(float(max(abs(g - [5.1304, 2.2504, 8.0104, 5.1304]))) for g, _ in post)
    rows.append(Row("T1 T-maze after the cue says \"left\"",
                    "G = 5.1304 / 2.2504 / 8.0104 / 5.1304 (the correct arm 2.2504); q(correct arm) ≈ 1",
                    "G = %s; min q(cued arm) %.6f over the %d episodes at the cue at t = 1 (the cue \"right\" "
                    "mirrored), max deviation %.1e" % (_fmt(after), min(p for _, p in post), len(post), dev),
                    _verdict(dev < TOL and min(p for _, p in post) > 0.999, "G or q off")))
    rate, n_arm, _ = _reward_rate(eps)
    cue_then_arm = sum(1 for e in eps if len(e) > 1 and e[0]["move"] == 3 and e[1]["where"] == 3
                       and e[1]["move"] == e[1]["cue"] + 1)
    rows.append(Row("T1 T-maze closed loop, 200 episodes (sampled actions, α = 16)",
                    "centre → cue → correct arm; reward rate ≈ 0.98 (issue: ≥ 0.95)",
                    "reward rate %.3f (first arm entered, %d episodes); cue then the cued arm in %d / %d"
                    % (rate, n_arm, cue_then_arm, len(eps)),
                    _verdict(rate >= 0.95 and cue_then_arm >= 0.95 * len(eps), "below 0.95")))
    blind_runs = _act(ctx, "tmaze_utility", tmaze, "tmaze", "--episodes", 200, "--seed", 7,
                      "--policy", "efe(utility = on)")
    beps = _episodes(blind_runs)
    rate_off, n_off, blind = _reward_rate(beps)
    Gb = _vec(beps[0][0], "G", 4)
    firsts = [int(e[0]["move"]) for e in beps]
    blind_rate = sum(1 for f in blind if f == 1) / max(len(blind), 1)
    sigma = math.sqrt(0.25 / max(len(blind), 1))
    rows.append(Row("T1 T-maze with information gain off (utility alone)",
                    "every first move ties (5.1304); reward rate falls to chance (0.5) unless the agent "
                    "wanders onto the cue",
                    "first-move G %s (spread %.1e); first moves %s; reward rate %.3f overall, %.3f in the %d "
                    "episodes that entered an arm before the cue" % (
                        _fmt(Gb), float(Gb.max() - Gb.min()),
                        " / ".join("%s %d" % (m, firsts.count(i)) for i, m in enumerate(MOVES)),
                        rate_off, blind_rate, len(blind)),
                    _verdict(float(Gb.max() - Gb.min()) < 1e-9 and abs(blind_rate - 0.5) < 3 * sigma
                             and rate_off < rate, "not at chance")))
    # figures: the running reward rate, and q(a) over the steps of one longer episode
    cum = []
    for k, eps_k in (("efe", eps), ("utility", beps)):
        won = lost = 0
        series = []
        for e in eps_k:
            f, _ = _first_arm_rewards(e)
            won += f == 1
            lost += f == -1
            series.append(won / max(won + lost, 1))
        cum.append(series)
    path = ctx.work("agents", "reward_rate.csv")
    write_csv(path, ["episode", "EFE", "information_gain_off"],
              [[i + 1, float(a), float(b)] for i, (a, b) in enumerate(zip(*cum))])
    figs.append(("T-maze: reward rate over the episodes so far (the first arm entered), EFE against utility "
                 "alone (information gain off)",
                 ctx.plot("lines", "agents_tmaze_reward_rate", path, "--x", "episode",
                          "--y", "EFE,information_gain_off", "--title", "T-maze: running reward rate",
                          "--ylabel", "reward rate (first arm entered)")))
    long = _act(ctx, "tmaze_long", tmaze, "tmaze", "--episodes", 1, "--steps", 6, "--seed", 7)
    path = ctx.work("agents", "tmaze_qa.csv")
    write_csv(path, ["t"] + ["q_" + m for m in MOVES],
              [[int(r["t"])] + [float(x) for x in _vec(r, "P.move", 4)] for r in long])
    figs.append(("T-maze: q(a) at each step of one episode (t = 0 at the centre, then the cue, then the cued arm; "
                 "the places seen: %s)" % ", ".join(MOVES[int(r["where"])] for r in long),
                 ctx.plot("lines", "agents_tmaze_qa", path, "--x", "t", "--y", ",".join("q_" + m for m in MOVES),
                          "--title", "T-maze: action posterior per step", "--ylabel", "q(a)")))
    return {"rate": rate, "rate_off": rate_off, "after": after}


# ---- T2 ----

def t2(ctx, rows):
    null = _null_cue_model(ctx)
    out = {}
    for key, model, env, policy in (("null_efe", null, "tmaze:cue=null", None),
                                    ("null_feef", null, "tmaze:cue=null", "feef"),
                                    ("ambiguous_efe", ctx.model("agents/tmaze"), "tmaze", None),
                                    ("ambiguous_feef", ctx.model("agents/tmaze"), "tmaze", "feef")):
        extra = ["--policy", policy] if policy else []
        r = _act(ctx, "t2_" + key, model, env, "--episodes", 1, "--steps", 1, *extra)[0]
        out[key] = (_vec(r, "G", 4), _vec(r, "P.move", 4))
    checks = [
        ("T2 null cue, EFE", "G = 5.5359 / 4.9407 / 4.9407 / 4.8427; q = 0 / .1471 / .1471 / .7059", "null_efe",
         [5.5359, 4.9407, 4.9407, 4.8427], [0, 0.1471, 0.1471, 0.7059]),
        ("T2 null cue, FEEF (risk alone)",
         "G = 5.5359 / 4.8427 / 4.8427 / 4.8427 (an exact tie); q = 0 / ⅓ / ⅓ / ⅓",
         "null_feef", [5.5359, 4.8427, 4.8427, 4.8427], [0, 1 / 3, 1 / 3, 1 / 3]),
        ("T2 ambiguous cue, FEEF (risk alone)", "the FEEF prefers the arms: 3.7441 against the cue's 4.4372; "
         "q = 0 / .5 / .5 / 0 (\"noisy TV\")", "ambiguous_feef", [None, 3.7441, 3.7441, 4.4372], [0, 0.5, 0.5, 0]),
    ]
    for name, claim, key, want_G, want_P in checks:
        G, P = out[key]
        ok = all(abs(g - w) < TOL for g, w in zip(G, want_G) if w is not None) and max(abs(P - want_P)) < TOL
        rows.append(Row(name, claim, "G = %s; q = %s" % (_fmt(G), _fmt(P)), _verdict(ok, "more than 5e-5 off")))
    return out


# ---- T3 ----

def _path(rows_):
    return [int(r["seen"]) for r in rows_]


def _visit_image(cells, size, steps):
    """Each cell's brightness: (t + 1) / steps at the step t of its first visit, 0 when never visited."""
    img = np.zeros(size * size)
    for t, c in enumerate(cells[:steps]):
        if img[c] == 0:
            img[c] = (t + 1) / steps
    return img.reshape(size, size)


def t3(ctx, rows, figs):
    grid = _act(ctx, "grid", ctx.model("agents/grid"), "grid", "--steps", 12)
    cells = _path(grid)
    reach = cells.index(8) if 8 in cells else None
    stays = reach is not None and all(c == 8 for c in cells[reach:])
    p0 = _vec(grid[0], "P.move", 5)
    ig = max(abs(r["G.info_gain[%d]" % i]) for r in grid for i in range(5 ** 4))
    grid5 = _act(ctx, "grid5", ctx.model("agents/grid5"), "grid:size=5,goal=12", "--steps", 12)
    cells5 = _path(grid5)
    reach5 = cells5.index(12) if 12 in cells5 else None
    stays5 = reach5 is not None and all(c == 12 for c in cells5[reach5:])
    rows.append(Row("T3 grid world, cells seen exactly (3 × 3, horizon 4; 5 × 5, horizon 5)",
                    "reaches the goal in the Manhattan distance d and stays; information gain 0; the first action's "
                    "mass on shortest-path moves",
                    "3 × 3: the goal (d = 4) at step %s, there for the remaining %d of %d steps; P(south or east) at "
                    "t = 0 = %.6f; largest absolute information gain %.1e; 5 × 5: the centre (d = 4) at step %s, %s"
                    % (reach, len(cells) - (reach or 0), len(cells), p0[1] + p0[3], ig, reach5,
                       "and stays" if stays5 else "but leaves it"),
                    _verdict(reach == 4 and stays and p0[1] + p0[3] > 0.999 and ig < 1e-9 and reach5 == 4 and stays5,
                             "not the shortest path, or it left the goal")))
    noisy_env = "grid:noisy=" + "+".join(map(str, NOISY))
    efe = _act(ctx, "grid_noisy_efe", ctx.model("agents/grid_noisy"), noisy_env)
    util = _act(ctx, "grid_noisy_utility", ctx.model("agents/grid_noisy"), noisy_env, "--policy", "efe(utility = on)")
    # the cell the agent is in, from its own belief (the noisy cells' observations can lie)
    believed = [int(np.argmax(_vec(r, "q.cell", 9))) for r in efe]
    believed_u = [int(np.argmax(_vec(r, "q.cell", 9))) for r in util]
    pe, pu = _vec(efe[0], "P.move", 5), _vec(util[0], "P.move", 5)
    clean = not set(NOISY) & set(believed[:5]) and believed[4] == 8
    rows.append(Row("T3 grid with noisy cells 3, 6, 7 (the left column and the bottom row)",
                    "the EFE agent takes the equal-length path through unambiguous cells; a utility-only agent is "
                    "indifferent",
                    "EFE: path %s, P(east) at t = 0 = %.6f; utility alone: P(south) = %.6f, P(east) = %.6f "
                    "(path %s)" % ("→".join(map(str, believed[:5])), pe[3], pu[1], pu[3],
                                   "→".join(map(str, believed_u[:5]))),
                    _verdict(clean and pe[3] > 0.99 and abs(pu[1] - pu[3]) < 1e-9 and pu[1] > 0.49,
                             "the EFE agent entered a noisy cell, or utility alone was not indifferent")))
    imgs = np.stack([_visit_image(cells, 3, 5), _visit_image(believed, 3, 5), _visit_image(believed_u, 3, 5)])
    path = ctx.work("agents", "grid_paths.safetensors")
    write_safetensors(path, {"paths": imgs})
    figs.append(("Grid paths, the first five steps (left to right: the clean 3 × 3 grid, the noisy grid with EFE, "
                 "the noisy grid with utility alone; each cell lit by the step of its first visit, brighter = "
                 "later, black = never visited; the noisy cells are 3, 6 and 7: the left column's lower two and "
                 "the bottom row's middle)",
                 ctx.plot("grid", "agents_grid_paths", path, "--scale", 48, "--cols", 3)))
    return {"reach": reach, "path": believed[:5]}


# ---- T4 ----

def t4(ctx, rows, figs):
    explore = ctx.model("agents/explore")
    lengths = [10, 25, 50, 100, 200, 400] if ctx.quick else [10, 25, 50, 100, 200, 400, 800, 1600, 3200]
    learned, visits = [], []
    for n in lengths:
        save = ctx.work("agents", "counts_%d.safetensors" % n)
        ctx.fepc("act", explore, "--env", "model", "--steps", n, "--dtype", "f64", "--save", save)
        a = read_safetensors(save)["a_light"]
        learned.append(a[1] / a.sum(0))
        visits.append(a.sum(0) - 2)      # the prior is one sighting of each kind
    est, n_vis = learned[-1], visits[-1]
    z = np.abs(est - TRUE_LIGHT) / np.sqrt(np.array(TRUE_LIGHT) * (1 - np.array(TRUE_LIGHT)) / np.maximum(n_vis, 1))
    rows.append(Row("T4 Dirichlet counts converge to the true likelihood (novelty on)",
                    "a / a₀ → the true A",
                    "after %d steps P(light on at each place) = %s (truth %s); visits %s; max error %.3f (%.1f binomial "
                    "standard errors)" % (lengths[-1], _fmt(est, 3), _fmt(TRUE_LIGHT, 1),
                                          " / ".join("%d" % v for v in n_vis), float(max(abs(est - TRUE_LIGHT))),
                                          float(z.max())),
                    _verdict(z.max() < 4 and n_vis.min() > lengths[-1] / 8, "beyond 4 standard errors")))
    path = ctx.work("agents", "counts.csv")
    write_csv(path, ["steps"] + ["place_%d" % k for k in range(4)],
              [[n] + [float(x) for x in est_n] for n, est_n in zip(lengths, learned)])
    figs.append(("Dirichlet learning: the learned P(light on at each place) = a / a₀ after each run length (one run per "
                 "length, from the same seed); the truth is %s" % _fmt(TRUE_LIGHT, 1),
                 ctx.plot("lines", "agents_counts", path, "--x", "steps",
                          "--y", ",".join("place_%d" % k for k in range(4)), "--logx",
                          "--title", "Dirichlet counts: learned P(light on) per place",
                          "--ylabel", "a[light] / a0")))
    seeds, steps = range(1, 11), 12
    distinct = {}
    for key, policy in (("novelty", "efe(novelty = on)"), ("plain", "efe")):
        curves = []
        for s in seeds:
            r = _act(ctx, "explore_%s_%d" % (key, s), explore, "model", "--steps", steps, "--seed", s,
                     "--policy", policy)
            seen, curve = set(), []
            for x in r:
                seen.add(int(x["where"]))
                curve.append(len(seen))
            curves.append(curve)
        distinct[key] = np.array(curves)
    first4 = {k: v[:, 3] for k, v in distinct.items()}
    rows.append(Row("T4 novelty visits the places it knows least first",
                    "with parameter information gain on, low-count states first; off, exploration only from "
                    "softmax noise",
                    "places seen in the first 4 steps over %d seeds: novelty on %s (mean %.1f), off %s (mean %.1f)"
                    % (len(seeds), " ".join(map(str, first4["novelty"])), first4["novelty"].mean(),
                       " ".join(map(str, first4["plain"])), first4["plain"].mean()),
                    _verdict(all(first4["novelty"] == 4) and first4["plain"].mean() < 3.5,
                             "novelty did not visit every place first")))
    path = ctx.work("agents", "novelty.csv")
    write_csv(path, ["step", "novelty_on", "novelty_off"],
              [[t + 1, float(distinct["novelty"][:, t].mean()), float(distinct["plain"][:, t].mean())]
               for t in range(steps)])
    figs.append(("Novelty: places seen so far against the step, mean of %d seeds, with the novelty term on and off"
                 % len(seeds),
                 ctx.plot("lines", "agents_novelty", path, "--x", "step", "--y", "novelty_on,novelty_off",
                          "--title", "explore.fep: distinct places seen", "--ylabel", "places seen (of 4)")))
    return {"est": est, "visits": n_vis, "lengths": lengths}


def run(ctx):
    rows, figs = [], []
    r1 = t1(ctx, rows, figs)
    r2 = t2(ctx, rows)
    t3(ctx, rows, figs)
    t4(ctx, rows, figs)
    table = markdown_table(["T-maze variant, policy", "G: centre / left / right / cue", "q(a)"],
                           [[k.replace("_", ", ").replace("efe", "EFE").replace("feef", "FEEF"), _fmt(G), _fmt(P)]
                            for k, (G, P) in r2.items()])
    body = """Settings: `fepc act --dtype f64` on `models/agents/tmaze.fep` (the pymdp-style T-maze: places
centre / left / right / cue, the context unknown, reward preferred +3 and loss −3, p(reward | correct
arm) = 0.98, γ = 16, horizon 1, actions sampled with α = 16; the environment `--env tmaze`),
`grid.fep` and `grid5.fep` (`--env grid`, argmax actions), `grid_noisy.fep` (`--env
grid:noisy=3+6+7`, preferences over states) and `explore.fep` (`--env model`: four places with a
light on with probability %s, which the agent learns as Dirichlet counts). Every number above
is read from fepc's per-step log (`--log`: observations, beliefs, G and each of its terms per
policy, q(π), P(u), the action, the environment's reward) or its saved counts (`--save`).

Choices: the reward rate is the share of episodes whose first arm entered paid the reward (the
environment's reward, +1 or −1), of those that entered an arm; "information gain off" is
`--policy "efe(utility = on)"` (G = −utility), and "FEEF" is `--policy feef` (the risk alone). The
null-cue maze is tmaze.fep with the cue table replaced by a three-valued one whose third value
("null") is seen everywhere but at the cue, run in `--env tmaze:cue=null`. In the noisy grid the
path is the agent's own belief (argmax q(cell)), since its observations in the noisy cells can lie.
The count runs are separate runs of increasing length from the same seed (the counts after n steps
are those of a run of n steps); the count check allows 4 binomial standard errors at the visits
each place received. Closed-loop T-maze: centre → cue → arm takes two moves, so the agent's
3-step episodes end at the arm: reward rate %.3f with EFE, %.3f with utility alone.

T2 at the centre (the first step), all four runs:

%s

%s
""" % (_fmt(TRUE_LIGHT, 1), r1["rate"], r1["rate_off"], table,
       "\n\n".join("%s\n\n%s" % (link, caption) for caption, link in figs))
    return Section("agents", TITLE, rows, body)
