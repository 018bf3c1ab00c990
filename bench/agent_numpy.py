"""agent_numpy.py — the discrete active-inference agent of fepc's
passes/agent.c written plainly in NumPy, as a user of pymdp-style code
would: the speed baseline of bench/agent_bench.py and the independent
check of fepc's expected free energies.

Layout (pymdp's): A[m] is [O_m, S_1, .., S_F] (every modality over every
factor), B[f] is [S_f, S_f, U_f] (B[f][to, from, u]), C[m] the
log-preferences over outcome m, D[f] the initial prior.  One step:

  infer   q_f ← σ(ln prior_f + E_{q_{g≠f}}[Σ_m ln A_m · o_m]): the mean-field
          fixed point by Jacobi sweeps from the prior (one sweep is exact for
          a single factor)
  plan    every policy as a sequence of `horizon` joint actions
          (itertools.product: the first action varies slowest), all policies
          rolled forward together as [P, S_f] arrays: Q(s_τ|π) = B(u_τ) Q(s_τ−1|π);
          per τ the risk KL[Q(o)‖σ(C)] with H[Q(o)] over the joint of the
          outcomes and the ambiguity E_Q(s)H[p(o|s)], summed over τ;
          q(π) = σ(−γG), P(u) = Σ_π q(π)[π₁ = u]
  act     argmax P, or u ~ σ(α ln P)
  predict prior_f ← B_f(u) q_f

Logarithms take ε = 1e-16 inside (pymdp's spm_log, fepc's safe_log), so
the numbers match fepc's to rounding.  Two choices follow fepc rather than
pymdp, so that G can be compared entry by entry: the fixed point starts
from the prior (pymdp starts from uniform) and always runs `iterations`
sweeps.

`tree=False` (the default, what the benchmark calls "NumPy") rolls every
policy forward on its own: H·P belief updates per plan.  `tree=True` shares
the action prefixes, Σ_h U^h updates per plan, as passes/agent.c does; the
benchmark reports it as a second baseline so the algorithmic saving and
the compilation can be told apart.

The models are written out here as NumPy arrays (tmaze(), grid()), as a
user would write them; bench/agent_bench.py checks that they are the
models of models/agents/*.fep by comparing G with fepc's log.
"""
import itertools

import numpy as np

EPS = 1e-16


def log(x):
    return np.log(x + EPS)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Agent:
    def __init__(self, A, B, C, D, horizon, gamma=16.0, action="argmax", alpha=16.0, iterations=16, seed=1,
                 tree=False):
        self.A = [np.asarray(a, float) for a in A]
        self.B = [np.asarray(b, float) for b in B]
        self.D = [np.asarray(d, float) for d in D]
        self.n_states = [d.size for d in self.D]
        self.n_controls = [b.shape[2] for b in self.B]
        self.horizon, self.gamma, self.action, self.alpha = horizon, gamma, action, alpha
        self.iterations = iterations if len(self.D) > 1 else 1
        self.tree = tree
        self.rng = np.random.default_rng(seed)
        self.lnA = [log(a) for a in self.A]
        # log-preferences normalised: ln σ(C); indifferent modalities ln(1/O)
        self.lnC = [np.asarray(c, float) - np.logaddexp.reduce(np.asarray(c, float)) for c in C]
        J = int(np.prod(self.n_states))
        # ambiguity per joint state: Σ_m H[p(o_m | s)]
        self.H = sum(-(a * log(a)).sum(0).reshape(J) for a in self.A)
        # the joint-outcome likelihood [Π O_m, J] (H[Q(o)] over the joint)
        joint = np.ones((1, J))
        for a in self.A:
            joint = (joint[:, None, :] * a.reshape(a.shape[0], J)[None]).reshape(-1, J)
        self.A_joint = joint
        self.A_flat = [a.reshape(a.shape[0], J) for a in self.A]
        # joint actions: every combination of the control factors, the last fastest
        self.actions = np.array(list(itertools.product(*[range(u) for u in self.n_controls])), dtype=np.int64)
        self.U = len(self.actions)
        # B per factor as [U, S', S] over the joint actions, and transposed for rows of beliefs
        self.Bu = [b.transpose(2, 0, 1)[self.actions[:, f]] for f, b in enumerate(self.B)]
        self.BuT = [np.ascontiguousarray(b.transpose(0, 2, 1)) for b in self.Bu]
        # [S, U·S'] for every action at once
        self.Bwide = [np.ascontiguousarray(b.transpose(2, 0, 1).reshape(b.shape[2], -1)) for b in self.Bu]
        self.n_policies = self.U ** horizon
        if not tree:
            # every policy as its sequence of joint actions, and per time step the
            # policies that take each joint action then
            self.policies = np.array(list(itertools.product(range(self.U), repeat=horizon)), dtype=np.int64)
            self.groups = [[np.flatnonzero(self.policies[:, t] == a) for a in range(self.U)] for t in range(horizon)]
        self.reset()

    def reset(self):
        self.prior = [d.copy() for d in self.D]
        self.q = [d.copy() for d in self.D]

    # ---- state inference ----
    def infer(self, obs):
        """obs: one value index per modality."""
        L = sum(la[o] for la, o in zip(self.lnA, obs))   # [S_1, .., S_F]
        lnprior = [log(p) for p in self.prior]
        q = [p.copy() for p in self.prior]
        F = len(q)
        for _ in range(self.iterations):
            nxt = []
            for f in range(F):
                x = L
                for g in range(F - 1, -1, -1):   # the others contracted away, highest axis first
                    if g != f:
                        x = np.tensordot(x, q[g], axes=([g], [0]))
                nxt.append(softmax(lnprior[f] + x))
            q = nxt
        self.q = q
        return q

    # ---- planning ----
    def _terms(self, qs):
        """Risk + ambiguity of one time step for rows of beliefs qs[f]: [N, S_f]."""
        N = qs[0].shape[0]
        joint = qs[0]
        for x in qs[1:]:
            joint = (joint[:, :, None] * x[:, None, :]).reshape(N, -1)
        utility = sum((joint @ a.T) @ c for a, c in zip(self.A_flat, self.lnC))
        qo = joint @ self.A_joint.T
        entropy = -(qo * log(qo)).sum(1)
        ambiguity = joint @ self.H
        return -(utility + entropy) + ambiguity

    def plan(self):
        """G per policy, q(π) and the first action's marginal."""
        P = self.n_policies
        if self.tree:
            qs = [x[None, :] for x in self.q]
            G = np.zeros(1)
            for _ in range(self.horizon):
                n = qs[0].shape[0]
                # every node times every action: [n, U, S] → [n·U, S]
                qs = [(x @ bw).reshape(n * self.U, -1) for bw, x in zip(self.Bwide, qs)]
                G = (G[:, None] + self._terms(qs).reshape(n, self.U)).reshape(-1)
        else:
            qs = [np.broadcast_to(x, (P, x.size)) for x in self.q]
            G = np.zeros(P)
            for t in range(self.horizon):
                # Q(s_t|π) = B(π_t) Q(s_t−1|π), one matrix product per action over the
                # policies that take it (faster than gathering B per policy)
                nxt = [np.empty((P, x.shape[1])) for x in qs]
                for a, rows in enumerate(self.groups[t]):
                    for f, x in enumerate(qs):
                        nxt[f][rows] = x[rows] @ self.BuT[f][a]
                qs = nxt
                G += self._terms(qs)
        self.G = G
        self.q_pi = softmax(-self.gamma * G)
        self.P = self.q_pi.reshape(self.U, -1).sum(1)
        return G

    def select(self):
        if self.action == "argmax":
            return int(np.argmax(self.P))
        return int(self.rng.choice(self.U, p=softmax(self.alpha * log(self.P))))

    def predict(self, u):
        """prior ← B(u) q for the joint action u taken."""
        self.prior = [b[u] @ x for b, x in zip(self.Bu, self.q)]

    def step(self, obs):
        self.infer(obs)
        self.plan()
        return self.select()


# ---- the models of models/agents/*.fep, as arrays ----

def tmaze(horizon=1, **kw):
    """models/agents/tmaze.fep: places centre, left, right, cue; contexts reward-left, reward-right."""
    A_where = np.zeros((4, 4, 2))
    for loc in range(4):
        A_where[loc, loc, :] = 1
    A_reward = np.zeros((3, 4, 2))
    A_reward[0, [0, 3], :] = 1
    for arm in (1, 2):
        for ctx in range(2):
            good = arm == ctx + 1
            A_reward[1, arm, ctx] = 0.98 if good else 0.02
            A_reward[2, arm, ctx] = 0.02 if good else 0.98
    A_cue = np.full((2, 4, 2), 0.5)
    A_cue[:, 3, :] = np.eye(2)
    B_loc = np.zeros((4, 4, 4))
    for u in range(4):
        B_loc[u, :, u] = 1
    B_ctx = np.eye(2)[:, :, None]
    C = [np.zeros(4), np.array([0.0, 3.0, -3.0]), np.zeros(2)]
    D = [np.array([1.0, 0, 0, 0]), np.array([0.5, 0.5])]
    kw.setdefault("action", "sample")
    return Agent([A_where, A_reward, A_cue], [B_loc, B_ctx], C, D, horizon, **kw)


def grid(size=5, goal=12, horizon=5, **kw):
    """models/agents/grid5.fep (size 5, goal 12) and grid.fep (size 3, goal 8): moves north, south,
    west, east, stay; the cell seen exactly; +4 for the goal cell."""
    n = size * size
    B = np.zeros((n, n, 5))
    for c in range(n):
        r, k = divmod(c, size)
        for u, (dr, dk) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))):
            rr, kk = r + dr, k + dk
            to = rr * size + kk if 0 <= rr < size and 0 <= kk < size else c
            B[to, c, u] = 1
    C = np.zeros(n)
    C[goal] = 4
    D = np.zeros(n)
    D[0] = 1
    return Agent([np.eye(n)], [B], [C], [D], horizon, **kw)


# ---- the environments of runtime/env_tmaze.c and env_grid.c ----

class TmazeEnv:
    """Places as the actions name them; the context drawn per episode; rewards from the arms with p = 0.98."""

    def __init__(self, seed=1, p=0.98):
        self.rng, self.p = np.random.default_rng(seed), p

    def _obs(self):
        reward = 0
        if self.place in (1, 2):
            reward = 1 if (self.place == self.context + 1) == (self.rng.random() < self.p) else 2
        cue = self.context if self.place == 3 else int(self.rng.random() < 0.5)
        return [self.place, reward, cue]

    def reset(self):
        self.place, self.context = 0, int(self.rng.random() < 0.5)
        return self._obs()

    def step(self, u):
        self.place = u
        return self._obs()


class GridEnv:
    """The cell, seen exactly; a move into the wall stays."""

    def __init__(self, agent):
        self.B = agent.B[0]

    def reset(self):
        self.cell = 0
        return [0]

    def step(self, u):
        self.cell = int(self.B[:, self.cell, u].argmax())
        return [self.cell]
