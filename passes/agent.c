/* agent.c — the derivation of a discrete active-inference agent: its POMDP
 * (Model.agent, from ir/lower_agent.c) to the phase programs of one
 * perception–action cycle, in the same IR every rule uses, so the same
 * interpreter and compiled kernels run them.  Each sample of the batch is
 * one independent agent.  The maths (thesis-notes/thesis-action.md §2,
 * docs/language/agents.md):
 *
 *   reset    prior_f ← D_f
 *   infer    q_f ← σ(ln prior_f + Σ_m E_{q_{g≠f}}[ln A_m]·o_m)  (exact Bayes, eq. 2.42, for one
 *            factor; mean-field fixed-point sweeps for several)
 *   plan     every policy π (a sequence of `horizon` joint actions) as a path in the tree of
 *            action prefixes: level h holds U^h predicted beliefs Q(s_h | prefix) = B(u_h) Q(s_{h−1});
 *            per level and outcome Q(o) = A Q(s) and the terms
 *              utility = E_Q(o) ln p̃(o)          ambiguity = E_Q(s) H[p(o|s)]
 *              H[Q(o)] (the joint of the outcomes, or per outcome)
 *              novelty = Q(o)·W Q(s), W = ½(1/a − 1/a₀) for learned likelihoods
 *            summed along the path; G = the switched terms (risk = −utility − H, info_gain =
 *            H − ambiguity, G = risk + ambiguity = −utility − info_gain by default), then
 *            q(π) = σ(−γG + ln E) and P(u) = Σ_π q(π)[π₁ = u]
 *   predict  prior_f ← B_f(u) q_f for the action taken; qprev_f ← q_f
 *   learn    Δa_m = Σ_agents o_m ⊗ Q(s), Δb_f = Σ u ⊗ q_f ⊗ qprev_f, Δd_f = Σ q_f
 *
 * Sharing the prefixes costs Σ_h U^h rather than H·U^H per plan.  Tables
 * are normalised in the kernels (counts a give E[A] = a / a₀ for
 * prediction and E[ln A] = ψ(a) − ψ(a₀) for inference), so learning needs
 * no recompilation.  Logarithms of probabilities take ε = 1e-16 inside.
 *
 * Requires: lowered Model.agent.  Produces: a Program with the five
 * PHASE_AGENT_* phases (no relaxation), registering the agent's buffers
 * on first use. */
#include "passes.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static const double EPS = 1e-16;

typedef struct AgentDeriver {
    Diag *diag;
    Model *m;
    Graph *g;
    Program *p;
    Agent *a;
} AgentDeriver;

static Shape shp(int rank, ...)
{
    Shape s = {.rank = rank};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        s.dims[i] = va_arg(ap, int);
    va_end(ap);
    return s;
}

/* Builders on shapes the derivation has already made fit: a failure is a
 * compiler bug. */
static NodeId rs(Graph *g, NodeId x, Shape s)
{
    BuildError err;
    NodeId r = ir_reshape(g, x, &s, &err);
    if (r == NO_NODE)
        fep_die("agent: %s", err.message);
    return r;
}

static NodeId mm(Graph *g, NodeId a, NodeId b, int flags)
{
    BuildError err;
    NodeId r = ir_matmul(g, a, b, flags, &err);
    if (r == NO_NODE)
        fep_die("agent: %s", err.message);
    return r;
}

static NodeId load(AgentDeriver *ad, int buf)
{
    const Buffer *b = &ad->m->buffers[buf];
    return ir_load(ad->g, buf, b->shape, b->batched);
}

static NodeId tensor(AgentDeriver *ad, int t) { return load(ad, ad->m->tensors[t].buf); }

static const Shape *tensor_shape(const AgentDeriver *ad, int t) { return ir_shape(ad->g, ad->m->tensors[t].shape); }

static NodeId safe_log(Graph *g, NodeId x) { return ir_unary(g, OP_LOG, ir_add(g, x, ir_scalar(g, EPS))); }

/* Sums x over `axis`, keeping it as a 1. */
static NodeId sum_axis(Graph *g, NodeId x, int axis)
{
    Shape s = *ir_node_shape(g, x);
    s.dims[axis] = 1;
    return ir_reduce_to(g, x, &s, g->nodes[x].batched);
}

/* Sums the last axis away: [N, K] → [N]. */
static NodeId sum_last(Graph *g, NodeId x)
{
    Shape s = *ir_node_shape(g, x);
    NodeId r = sum_axis(g, x, s.rank - 1);
    s.rank--;
    return rs(g, r, s);
}

/* A table's probabilities: a const as written, counts divided by their
 * column totals along the distribution axis. */
static NodeId table(AgentDeriver *ad, int t, int axis)
{
    NodeId x = tensor(ad, t);
    return ad->m->tensors[t].counts ? ir_div(ad->g, x, sum_axis(ad->g, x, axis)) : x;
}

/* E[ln table]: ln(p + ε) of a const, ψ(a + ε) − ψ(a₀ + ε) of counts. */
static NodeId log_table(AgentDeriver *ad, int t, int axis)
{
    Graph *g = ad->g;
    NodeId x = tensor(ad, t);
    if (!ad->m->tensors[t].counts)
        return safe_log(g, x);
    NodeId eps = ir_scalar(g, EPS);
    return ir_sub(g, ir_unary(g, OP_DIGAMMA, ir_add(g, x, eps)),
                  ir_unary(g, OP_DIGAMMA, ir_add(g, sum_axis(g, x, axis), eps)));
}

static int joint_size(const Agent *a, const AgentOutcome *o)
{
    int n = 1;
    for (int k = 0; k < o->n_factors; k++)
        n *= a->factors[o->factors[k]].size;
    return n;
}

/* The outer product of per-factor beliefs, one row per tree node:
 * rows[k] is [N, S_k] for factor list[k] (or [S_k] with N = 0: one belief
 * per agent); the result is [N, Π S_k] (or [Π S_k]). */
static NodeId outer_rows(Graph *g, const NodeId *rows, const int *sizes, int n, int N)
{
    if (n == 1)
        return rows[0];
    int lead = N > 0;
    NodeId acc = NO_NODE;
    Shape full = {.rank = lead + n};
    if (lead)
        full.dims[0] = N;
    for (int k = 0; k < n; k++)
        full.dims[lead + k] = sizes[k];
    for (int k = 0; k < n; k++) {
        Shape s = full;
        for (int j = 0; j < n; j++)
            if (j != k)
                s.dims[lead + j] = 1;
        NodeId r = rs(g, rows[k], s);
        acc = acc == NO_NODE ? r : ir_mul(g, acc, r);
    }
    int total = 1;
    for (int k = 0; k < n; k++)
        total *= sizes[k];
    return lead ? rs(g, acc, shp(2, N, total)) : rs(g, acc, shp(1, total));
}

/* ---- buffers ---- */

static int agent_buffer(AgentDeriver *ad, const char *name, Shape s, bool batched)
{
    return ir_model_buffer(ad->m, BUF_AGENT, name, ir_shape_id(ad->g, &s), batched, -1);
}

static void make_buffers(AgentDeriver *ad)
{
    Agent *a = ad->a;
    Model *m = ad->m;
    int64_t u = 1;
    for (int c = 0; c < a->n_controls; c++)
        u *= a->controls[c].size;
    a->n_actions = u;
    a->n_policies = 1;
    for (int h = 0; h < a->cfg.horizon; h++)
        a->n_policies *= u;
    for (int f = 0; f < a->n_factors; f++) {
        AgentFactor *fa = &a->factors[f];
        Shape s = shp(1, fa->size);
        fa->q_buf = agent_buffer(ad, arena_printf(m->arena, "q.%s", fa->name), s, true);
        fa->prior_buf = agent_buffer(ad, arena_printf(m->arena, "prior.%s", fa->name), s, true);
        fa->qprev_buf = agent_buffer(ad, arena_printf(m->arena, "qprev.%s", fa->name), s, true);
    }
    for (int o = 0; o < a->n_outcomes; o++) {
        AgentOutcome *out = &a->outcomes[o];
        out->obs_buf = agent_buffer(ad, arena_printf(m->arena, "o.%s", out->name), shp(1, out->size), true);
    }
    for (int c = 0; c < a->n_controls; c++) {
        AgentControl *ctl = &a->controls[c];
        ctl->taken_buf = agent_buffer(ad, arena_printf(m->arena, "u.%s", ctl->name), shp(1, ctl->size), true);
        ctl->marginal_buf = agent_buffer(ad, arena_printf(m->arena, "P.%s", ctl->name), shp(1, ctl->size), true);
    }
    Shape pol = shp(1, (int)a->n_policies);
    a->G_buf = agent_buffer(ad, "G", pol, true);
    a->q_pi_buf = agent_buffer(ad, "q_pi", pol, true);
    static const char *const term_names[] = {"G.risk", "G.ambiguity", "G.utility", "G.info_gain", "G.novelty"};
    bool any_learned_likelihood = false;
    for (int o = 0; o < a->n_outcomes; o++)
        any_learned_likelihood |= m->tensors[a->outcomes[o].likelihood].counts;
    for (int k = 0; k < 5; k++)
        a->term_buf[k] = k < 4 || any_learned_likelihood ? agent_buffer(ad, term_names[k], pol, true) : -1;
    a->delta_buf = arena_alloc(m->arena, sizeof *a->delta_buf * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++)
        a->delta_buf[t] = m->tensors[t].counts
                              ? ir_model_buffer(m, BUF_AGENT, arena_printf(m->arena, "delta.%s", m->tensors[t].name),
                                                m->tensors[t].shape, false, t)
                              : -1;
}

/* ---- phases ---- */

static void derive_reset(AgentDeriver *ad)
{
    for (int f = 0; f < ad->a->n_factors; f++) {
        const AgentFactor *fa = &ad->a->factors[f];
        NodeId d = table(ad, fa->prior, 0);
        NodeId rows = ir_broadcast(ad->g, d, tensor_shape(ad, fa->prior), true);
        ir_assign(ad->p, PHASE_AGENT_RESET, fa->prior_buf, rows);
        ir_assign(ad->p, PHASE_AGENT_RESET, fa->q_buf, rows);
        ir_assign(ad->p, PHASE_AGENT_RESET, fa->qprev_buf, rows);
    }
}

/* E_{q_{g≠f}}[L], L the joint log-likelihood [S_1, .., S_n] of an outcome
 * over its factors, for the factor at position k of its list. */
static NodeId expect_others(AgentDeriver *ad, const AgentOutcome *o, NodeId L, int k, const NodeId *q)
{
    Graph *g = ad->g;
    int n = o->n_factors;
    if (n == 1)
        return L;
    Shape joint = {.rank = n};
    for (int j = 0; j < n; j++)
        joint.dims[j] = ad->a->factors[o->factors[j]].size;
    NodeId acc = L;
    for (int j = 0; j < n; j++) {
        if (j == k)
            continue;
        Shape s = joint;
        for (int i = 0; i < n; i++)
            if (i != j)
                s.dims[i] = 1;
        acc = ir_mul(g, acc, rs(g, q[o->factors[j]], s));
    }
    Shape kept = joint;
    for (int i = 0; i < n; i++)
        if (i != k)
            kept.dims[i] = 1;
    return rs(g, ir_reduce_to(g, acc, &kept, true), shp(1, joint.dims[k]));
}

static void derive_infer(AgentDeriver *ad)
{
    Agent *a = ad->a;
    Graph *g = ad->g;
    NodeId L[16];   /* per outcome: o_m · E[ln A_m], over the joint of its factors */
    bool coupled = false;
    for (int o = 0; o < a->n_outcomes; o++) {
        const AgentOutcome *out = &a->outcomes[o];
        int J = joint_size(a, out);
        NodeId lnA = rs(g, log_table(ad, out->likelihood, 0), shp(2, out->size, J));
        NodeId l = mm(g, load(ad, out->obs_buf), lnA, 0);
        Shape joint = {.rank = out->n_factors};
        for (int k = 0; k < out->n_factors; k++)
            joint.dims[k] = a->factors[out->factors[k]].size;
        L[o] = rs(g, l, joint);
        coupled |= out->n_factors > 1;
    }
    NodeId q[AGENT_MAX_FACTORS], log_prior[AGENT_MAX_FACTORS];
    for (int f = 0; f < a->n_factors; f++) {
        log_prior[f] = safe_log(g, load(ad, a->factors[f].prior_buf));
        q[f] = load(ad, a->factors[f].prior_buf);
    }
    /* One sweep is exact when no outcome couples factors; otherwise Jacobi
     * sweeps of the mean-field fixed point, every factor from the last. */
    int sweeps = coupled ? a->cfg.iterations : 1;
    for (int it = 0; it < sweeps; it++) {
        NodeId next[AGENT_MAX_FACTORS];
        for (int f = 0; f < a->n_factors; f++) {
            NodeId acc = log_prior[f];
            for (int o = 0; o < a->n_outcomes; o++)
                for (int k = 0; k < a->outcomes[o].n_factors; k++)
                    if (a->outcomes[o].factors[k] == f)
                        acc = ir_add(g, acc, expect_others(ad, &a->outcomes[o], L[o], k, q));
            next[f] = ir_softmax(g, acc);
        }
        memcpy(q, next, sizeof q);
    }
    for (int f = 0; f < a->n_factors; f++)
        ir_assign(ad->p, PHASE_AGENT_INFER, a->factors[f].q_buf, q[f]);
}

/* Position of control c among the joint action's axes. */
static Shape action_axes(const Agent *a, int N, int c, int width)
{
    Shape s = {.rank = a->n_controls + 2};
    s.dims[0] = N;
    for (int k = 0; k < a->n_controls; k++)
        s.dims[1 + k] = c < 0 || k == c ? (c < 0 ? 1 : a->controls[k].size) : 1;
    s.dims[a->n_controls + 1] = width;
    return s;
}

/* One level down the tree: [N, S] beliefs to [N·U, S]. */
static NodeId step_factor(AgentDeriver *ad, const AgentFactor *f, NodeId S, int N)
{
    Graph *g = ad->g;
    Agent *a = ad->a;
    int U = (int)a->n_actions, Sz = f->size;
    NodeId next = S;
    int c = f->transition >= 0 ? f->control : -1;
    if (f->transition >= 0) {
        int uc = c >= 0 ? a->controls[c].size : 1;
        NodeId B = rs(g, table(ad, f->transition, c >= 0 ? 1 : 0), shp(2, uc * Sz, Sz));
        next = mm(g, S, B, MM_TRANS_B);   /* [N, uc·S'] */
    }
    if (U == 1)
        return rs(g, next, shp(2, N, Sz));
    Shape placed = action_axes(a, N, c, Sz), full = action_axes(a, N, -1, Sz);
    for (int k = 0; k < a->n_controls; k++)
        full.dims[1 + k] = a->controls[k].size;
    NodeId spread = ir_broadcast(g, rs(g, next, placed), &full, true);
    return rs(g, spread, shp(2, N * U, Sz));
}

/* The joint-outcome likelihood [Π O_m, Π S_f] (pymdp's H[Q(o)]): outcome by
 * outcome, acc [O so far, 1, S_1, .., S_F] times A_m laid out as
 * [1, O_m, S_1 or 1, ..] (1 for the factors it does not name). */
static NodeId joint_likelihood(AgentDeriver *ad)
{
    Graph *g = ad->g;
    Agent *a = ad->a;
    int F = a->n_factors, J = 1, O = 1;
    Shape acc_shape = {.rank = F + 2};
    acc_shape.dims[0] = acc_shape.dims[1] = 1;
    for (int f = 0; f < F; f++)
        J *= acc_shape.dims[2 + f] = a->factors[f].size;
    NodeId acc = ir_fill(g, 1, &acc_shape, false);
    for (int o = 0; o < a->n_outcomes; o++) {
        const AgentOutcome *out = &a->outcomes[o];
        Shape s = {.rank = F + 2};
        s.dims[0] = 1;
        s.dims[1] = out->size;
        for (int f = 0; f < F; f++)
            s.dims[2 + f] = 1;
        for (int k = 0; k < out->n_factors; k++)
            s.dims[2 + out->factors[k]] = a->factors[out->factors[k]].size;
        NodeId prod = ir_mul(g, acc, rs(g, table(ad, out->likelihood, 0), s));   /* [O, O_m, S..] */
        O *= out->size;
        acc_shape.dims[0] = O;
        acc = rs(g, prod, acc_shape);
    }
    return rs(g, acc, shp(2, O, J));
}

/* Per-node terms of one level, [N] each.  `utility` and `risk_entropy`
 * are over outcomes, or over hidden states when the agent prefers states;
 * `entropy` is H[Q(o)] either way (the information gain's first half). */
enum { T_UTILITY, T_AMBIGUITY, T_ENTROPY, T_RISK_ENTROPY, T_NOVELTY, N_LEVEL_TERMS };

static NodeId add_opt(Graph *g, NodeId acc, NodeId x) { return acc == NO_NODE ? x : ir_add(g, acc, x); }

static NodeId neg_entropy_rows(Graph *g, NodeId p) { return sum_last(g, ir_mul(g, p, safe_log(g, p))); }

static bool prefers_states(const Agent *a)
{
    for (int f = 0; f < a->n_factors; f++)
        if (a->factors[f].preference >= 0)
            return true;
    return false;
}

static NodeId log_preference(AgentDeriver *ad, int tensor_id, int size)
{
    Graph *g = ad->g;
    if (tensor_id < 0) {
        Shape s = shp(1, size);
        return ir_fill(g, -log((double)size), &s, false);   /* indifferent: ln(1/n) */
    }
    NodeId c = tensor(ad, tensor_id);
    return ir_sub(g, c, ir_logsumexp(g, c));
}

static void level_terms(AgentDeriver *ad, const NodeId *S, int N, NodeId A_joint, NodeId *t)
{
    Graph *g = ad->g;
    Agent *a = ad->a;
    bool states = prefers_states(a);
    for (int k = 0; k < N_LEVEL_TERMS; k++)
        t[k] = NO_NODE;
    for (int o = 0; o < a->n_outcomes; o++) {
        const AgentOutcome *out = &a->outcomes[o];
        int J = joint_size(a, out), O = out->size;
        NodeId rows[AGENT_MAX_FACTORS];
        int sizes[AGENT_MAX_FACTORS];
        for (int k = 0; k < out->n_factors; k++) {
            rows[k] = S[out->factors[k]];
            sizes[k] = a->factors[out->factors[k]].size;
        }
        NodeId Js = outer_rows(g, rows, sizes, out->n_factors, N);        /* [N, J] */
        NodeId A = rs(g, table(ad, out->likelihood, 0), shp(2, O, J));     /* [O, J] */
        NodeId Qo = mm(g, Js, A, MM_TRANS_B);                              /* [N, O] */
        if (!states)
            t[T_UTILITY] = add_opt(g, t[T_UTILITY], mm(g, Qo, log_preference(ad, out->preference, O), 0));
        NodeId H = ir_neg(g, rs(g, sum_axis(g, ir_mul(g, A, safe_log(g, A)), 0), shp(1, J)));
        t[T_AMBIGUITY] = add_opt(g, t[T_AMBIGUITY], mm(g, Js, H, 0));
        if (!a->cfg.joint_outcomes)
            t[T_ENTROPY] = add_opt(g, t[T_ENTROPY], ir_neg(g, neg_entropy_rows(g, Qo)));
        if (ad->m->tensors[out->likelihood].counts) {
            NodeId cnt = rs(g, tensor(ad, out->likelihood), shp(2, O, J));
            NodeId eps = ir_scalar(g, EPS), one = ir_scalar(g, 1);
            NodeId inv = ir_div(g, one, ir_add(g, cnt, eps));
            NodeId inv0 = ir_div(g, one, ir_add(g, sum_axis(g, cnt, 0), eps));
            NodeId W = ir_mul(g, ir_mul(g, ir_sub(g, inv, inv0), ir_scalar(g, 0.5)), ir_unary(g, OP_STEP, cnt));
            t[T_NOVELTY] = add_opt(g, t[T_NOVELTY], sum_last(g, ir_mul(g, Qo, mm(g, Js, W, MM_TRANS_B))));
        }
    }
    if (a->cfg.joint_outcomes) {
        int sizes[AGENT_MAX_FACTORS];
        for (int f = 0; f < a->n_factors; f++)
            sizes[f] = a->factors[f].size;
        NodeId Jall = outer_rows(g, S, sizes, a->n_factors, N);   /* [N, J] */
        NodeId Qo = mm(g, Jall, A_joint, MM_TRANS_B);             /* [N, Π O] */
        t[T_ENTROPY] = ir_neg(g, neg_entropy_rows(g, Qo));
    }
    if (!states) {
        t[T_RISK_ENTROPY] = t[T_ENTROPY];
        return;
    }
    for (int f = 0; f < a->n_factors; f++) {
        const AgentFactor *fa = &a->factors[f];
        t[T_UTILITY] = add_opt(g, t[T_UTILITY], mm(g, S[f], log_preference(ad, fa->preference, fa->size), 0));
        if (fa->preference >= 0)   /* KL to an indifferent factor's uniform preference would only add −H */
            t[T_RISK_ENTROPY] = add_opt(g, t[T_RISK_ENTROPY], ir_neg(g, neg_entropy_rows(g, S[f])));
    }
}

/* acc over the prefixes [N] extended by this level's g [N·U]: [N·U]. */
static NodeId extend(Graph *g, NodeId acc, NodeId level, int N, int U)
{
    if (acc == NO_NODE)
        return level;
    NodeId sum = ir_add(g, rs(g, acc, shp(2, N, 1)), rs(g, level, shp(2, N, U)));
    return rs(g, sum, shp(1, N * U));
}

static void derive_plan(AgentDeriver *ad)
{
    Agent *a = ad->a;
    Graph *g = ad->g;
    int U = (int)a->n_actions;
    NodeId S[AGENT_MAX_FACTORS];
    for (int f = 0; f < a->n_factors; f++)
        S[f] = rs(g, load(ad, a->factors[f].q_buf), shp(2, 1, a->factors[f].size));
    NodeId A_joint = a->cfg.joint_outcomes ? joint_likelihood(ad) : NO_NODE;
    NodeId acc[N_LEVEL_TERMS];
    for (int k = 0; k < N_LEVEL_TERMS; k++)
        acc[k] = NO_NODE;
    int N = 1;
    for (int h = 1; h <= a->cfg.horizon; h++) {
        for (int f = 0; f < a->n_factors; f++)
            S[f] = step_factor(ad, &a->factors[f], S[f], N);
        NodeId lv[N_LEVEL_TERMS];
        level_terms(ad, S, N * U, A_joint, lv);
        for (int k = 0; k < N_LEVEL_TERMS; k++)
            if (lv[k] != NO_NODE)
                acc[k] = extend(g, acc[k], rs(g, lv[k], shp(1, N * U)), N, U);
        N *= U;
    }
    NodeId util = acc[T_UTILITY], amb = acc[T_AMBIGUITY], ent = acc[T_ENTROPY], nov = acc[T_NOVELTY];
    NodeId risk = ir_neg(g, ir_add(g, util, acc[T_RISK_ENTROPY])), info = ir_sub(g, ent, amb);
    unsigned terms = a->cfg.terms;
    NodeId G = NO_NODE;
    if (terms & TERM_RISK)
        G = add_opt(g, G, risk);
    if (terms & TERM_AMBIGUITY)
        G = add_opt(g, G, amb);
    if (terms & TERM_UTILITY)
        G = add_opt(g, G, ir_neg(g, util));
    if (terms & TERM_INFO_GAIN)
        G = add_opt(g, G, ir_neg(g, info));
    if ((terms & TERM_NOVELTY) && nov != NO_NODE)
        G = add_opt(g, G, ir_neg(g, nov));
    Program *p = ad->p;
    ir_assign(p, PHASE_AGENT_PLAN, a->G_buf, G);
    NodeId parts[5] = {risk, amb, util, info, nov};
    for (int k = 0; k < 5; k++)
        if (a->term_buf[k] >= 0 && parts[k] != NO_NODE)
            ir_assign(p, PHASE_AGENT_PLAN, a->term_buf[k], parts[k]);
    NodeId logits = ir_mul(g, G, ir_scalar(g, -a->cfg.gamma));
    if (a->cfg.habit >= 0)
        logits = ir_add(g, logits, safe_log(g, table(ad, a->cfg.habit, 0)));
    NodeId q_pi = ir_softmax(g, logits);
    ir_assign(p, PHASE_AGENT_PLAN, a->q_pi_buf, q_pi);
    /* P(first joint action), then each control's marginal */
    int later = (int)(a->n_policies / U);
    NodeId first = rs(g, ir_reduce_to(g, rs(g, q_pi, shp(2, U, later)), &(Shape){2, {U, 1}}, true), shp(1, U));
    Shape axes = {.rank = a->n_controls};
    for (int c = 0; c < a->n_controls; c++)
        axes.dims[c] = a->controls[c].size;
    NodeId joint = rs(g, first, axes);
    for (int c = 0; c < a->n_controls; c++) {
        Shape kept = axes;
        for (int k = 0; k < a->n_controls; k++)
            if (k != c)
                kept.dims[k] = 1;
        NodeId marginal = rs(g, ir_reduce_to(g, joint, &kept, true), shp(1, a->controls[c].size));
        ir_assign(p, PHASE_AGENT_PLAN, a->controls[c].marginal_buf, marginal);
    }
}

static void derive_predict(AgentDeriver *ad)
{
    Agent *a = ad->a;
    Graph *g = ad->g;
    for (int f = 0; f < a->n_factors; f++) {
        const AgentFactor *fa = &a->factors[f];
        NodeId q = load(ad, fa->q_buf), next = q;
        if (fa->transition >= 0 && fa->control >= 0) {
            int uc = a->controls[fa->control].size;
            NodeId B = rs(g, table(ad, fa->transition, 1), shp(2, uc * fa->size, fa->size));
            NodeId each = rs(g, mm(g, B, q, 0), shp(2, uc, fa->size));   /* [u, s'] */
            next = mm(g, load(ad, a->controls[fa->control].taken_buf), each, 0);
        } else if (fa->transition >= 0) {
            next = mm(g, table(ad, fa->transition, 0), q, 0);
        }
        ir_assign(ad->p, PHASE_AGENT_PREDICT, fa->prior_buf, next);
        ir_assign(ad->p, PHASE_AGENT_PREDICT, fa->qprev_buf, q);
    }
}

/* Σ over the agents of x ⊗ y for batched vectors: [len x, len y]. */
static NodeId batch_outer(Graph *g, NodeId x, NodeId y)
{
    int nx = (int)ir_numel(ir_node_shape(g, x)), ny = (int)ir_numel(ir_node_shape(g, y));
    return mm(g, rs(g, x, shp(2, nx, 1)), rs(g, y, shp(2, 1, ny)), MM_SUM_BATCH);
}

static void derive_learn(AgentDeriver *ad)
{
    Agent *a = ad->a;
    Graph *g = ad->g;
    Model *m = ad->m;
    NodeId q[AGENT_MAX_FACTORS];
    for (int f = 0; f < a->n_factors; f++)
        q[f] = load(ad, a->factors[f].q_buf);
    for (int o = 0; o < a->n_outcomes; o++) {
        const AgentOutcome *out = &a->outcomes[o];
        if (!m->tensors[out->likelihood].counts)
            continue;
        NodeId rows[AGENT_MAX_FACTORS];
        int sizes[AGENT_MAX_FACTORS];
        for (int k = 0; k < out->n_factors; k++) {
            rows[k] = q[out->factors[k]];
            sizes[k] = a->factors[out->factors[k]].size;
        }
        NodeId Js = outer_rows(g, rows, sizes, out->n_factors, 0);
        NodeId d = rs(g, batch_outer(g, load(ad, out->obs_buf), Js), *tensor_shape(ad, out->likelihood));
        ir_assign(ad->p, PHASE_AGENT_LEARN, a->delta_buf[out->likelihood], d);
    }
    for (int f = 0; f < a->n_factors; f++) {
        const AgentFactor *fa = &a->factors[f];
        NodeId qprev = load(ad, fa->qprev_buf);
        if (fa->transition >= 0 && m->tensors[fa->transition].counts) {
            NodeId to = q[f];
            if (fa->control >= 0) {
                int uc = a->controls[fa->control].size;
                NodeId u = rs(g, load(ad, a->controls[fa->control].taken_buf), shp(2, uc, 1));
                to = rs(g, ir_mul(g, u, rs(g, q[f], shp(2, 1, fa->size))), shp(1, uc * fa->size));
            }
            NodeId d = rs(g, batch_outer(g, to, qprev), *tensor_shape(ad, fa->transition));
            ir_assign(ad->p, PHASE_AGENT_LEARN, a->delta_buf[fa->transition], d);
        }
        if (m->tensors[fa->prior].counts) {
            Shape s = shp(1, fa->size);
            ir_assign(ad->p, PHASE_AGENT_LEARN, a->delta_buf[fa->prior], ir_reduce_to(g, q[f], &s, false));
        }
    }
}

/* Checks what depends on the horizon: the habit's length, and (with joint
 * outcomes) that each likelihood names its factors in declaration order,
 * so the joint likelihood can be laid out by reshapes alone. */
static bool check(AgentDeriver *ad)
{
    Agent *a = ad->a;
    if (a->cfg.habit >= 0) {
        const Shape *s = tensor_shape(ad, a->cfg.habit);
        if (s->rank != 1 || s->dims[0] != a->n_policies) {
            char b[64];
            diag_error(ad->diag, a->cfg.habit_span, "habit '%s' has shape %s but there are %lld policies (%lld actions, "
                       "horizon %d)", ad->m->tensors[a->cfg.habit].name, ir_shape_str(s, b, sizeof b),
                       (long long)a->n_policies, (long long)a->n_actions, a->cfg.horizon);
            return false;
        }
    }
    if (a->cfg.joint_outcomes) {
        double O = 1, J = 1;
        for (int o = 0; o < a->n_outcomes; o++) {
            O *= a->outcomes[o].size;
            for (int k = 1; k < a->outcomes[o].n_factors; k++)
                if (a->outcomes[o].factors[k] < a->outcomes[o].factors[k - 1]) {
                    diag_error(ad->diag, a->outcomes[o].span,
                               "with outcomes = joint, the likelihood of '%s' must name its factors in the order they "
                               "are declared ('%s' before '%s'), or set outcomes = separate",
                               a->outcomes[o].name, a->factors[a->outcomes[o].factors[k]].name,
                               a->factors[a->outcomes[o].factors[k - 1]].name);
                    return false;
                }
        }
        for (int f = 0; f < a->n_factors; f++)
            J *= a->factors[f].size;
        if (O * J > (double)(1 << 24)) {
            diag_error(ad->diag, a->outcomes[0].span,
                       "the joint of all outcomes and states has %.3g entries (at most %d): set outcomes = separate in "
                       "the agent block", O * J, 1 << 24);
            return false;
        }
    }
    return true;
}

Program *pass_derive_agent(Diag *d, Model *m)
{
    static _Atomic uint64_t next_uid = (uint64_t)1 << 62;   /* apart from pass_derive's ids */
    Program *p = arena_alloc(m->arena, sizeof *p);
    p->uid = next_uid++;
    p->model = m;
    p->clamped = arena_alloc(m->arena, (size_t)m->n_tensors + 1);
    p->relaxed = arena_alloc(m->arena, sizeof *p->relaxed);
    p->error_nodes = arena_alloc(m->arena, sizeof *p->error_nodes * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++)
        p->error_nodes[t] = NO_NODE;
    p->solve_coeff_buf = -1;
    AgentDeriver ad = {.diag = d, .m = m, .g = &m->g, .p = p, .a = m->agent};
    make_buffers(&ad);
    if (!check(&ad))
        return NULL;
    derive_reset(&ad);
    derive_infer(&ad);
    derive_plan(&ad);
    derive_predict(&ad);
    derive_learn(&ad);
    return p;
}
