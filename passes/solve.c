/* solve.c — fpa's and ar's relaxations in closed form.
 *
 * Requires: the Deriver of pass_derive after its rule's phases exist.
 * Produces: PHASE_SOLVE (and, level by level, PHASE_SOLVE_LEVEL) and the
 * coefficient buffer the runtime fills for the steps and step size it runs.
 *
 * With frozen Jacobians, unit precisions and Jacobi Euler steps of size η,
 * the relaxed state obeys s(t+1) = (1 − η) s(t) + η (M s(t) + b): b is the
 * drive from clamped children, M sends child states to parents and is
 * nilpotent on a DAG.  Under fpa s = ε starts at 0 and
 *   ε_i(n) = Σ_k P[Bin(n, η) ≥ k] a_i^(k),
 * a_i^(k) being the message reaching i along paths of exactly k edges
 * (a^(1) = b, a^(k) = M a^(k−1)); PHASE_SOLVE writes v_i = v̄_i + ε_i(n).
 * Under ar s = x starts at the feedforward value v̄, b = −a^(1) (the drive
 * is an adjoint, not an error), and the start decays through M:
 *   x_i(n) = −Σ_k P[Bin(n, η) ≥ k] a_i^(k) + Σ_k P[Bin(n, η) = k] (M^k v̄)_i.
 * The runtime fills the coefficients for the n and η it runs with.
 *
 * On deep graphs with paths of many lengths (unrolled recurrent models)
 * the levels a^(k) of every node, expanded into one expression, grow as
 * nodes × depth.  fpa then solves level by level instead: PHASE_SOLVE sets
 * lvl.i ← a_i^(1) and v_i ← v̄_i + c·a_i^(1), and PHASE_SOLVE_LEVEL, which
 * the runtime repeats depth − 1 times with the next coefficient in c, sets
 * lvl ← M lvl and v ← v + c·lvl: the same sums, as depth sweeps of the
 * messages instead of n Euler steps, and two small phases to compile. */
#include "derive.h"

#include <string.h>

bool derive_solve_applies(const Deriver *dv)
{
    const Model *m = dv->m;
    RuleSpec r = dv->p->rule;
    if ((r.kind != RULE_FPA && r.kind != RULE_AR) || r.error_weights != ERROR_WEIGHTS_IDENTITY ||
        m->train.integrator != INTEGRATOR_EULER || m->train.momentum != 0 || m->train.tol != 0 || m->has_prev)
        return false;
    for (int t = 0; t < m->n_tensors; t++)
        if (dv->relaxed[t] && (m->tensors[t].dist != DIST_NORMAL || m->tensors[t].prec != NO_NODE))
            return false;
    return true;
}

/* The message a node's frozen arguments send to each relaxed parent when
 * seeded with `seed` on the mean: leaf[fwd_i] after one reverse sweep. */
static NodeId *messages(Deriver *dv, int t, NodeId seed_on_mean)
{
    NodeId *leaf = dv_new_leaf_map(dv);
    NodeId mean = dv_arg_at(dv, dv->m->tensors[t].mean);
    ir_vjp(dv->g, mean, ir_reduce_to(dv->g, seed_on_mean, ir_node_shape(dv->g, mean), dv->g->nodes[mean].batched),
           leaf, dv->n_leaf, &dv->value_rules);
    return leaf;
}

static NodeId **level_table(Deriver *dv)
{
    int n = dv->m->n_tensors;
    NodeId **parts = arena_alloc(dv->m->arena, sizeof *parts * (size_t)(n + 1));
    for (int t = 0; t < n; t++) {
        parts[t] = arena_alloc(dv->m->arena, sizeof **parts * (size_t)(n + 1));
        for (int k = 0; k <= n; k++)
            parts[t][k] = NO_NODE;
    }
    return parts;
}

/* Adds msg into a level slot, counting new terms against the budget. */
static void add_term(Deriver *dv, NodeId *slot, NodeId msg, int *budget)
{
    if (*slot == NO_NODE)
        (*budget)--;
    dv_add_into(dv->g, slot, msg);
}

/* a^(k): parts[t][k-1]; returns the depth (longest level any node has), or
 * -1 once more terms than the budget allows.  Walking in reverse
 * topological order, every child's parts are complete before its parents
 * need them. */
static int drive_levels(Deriver *dv, NodeId **parts, int *n_parts, int *budget)
{
    Model *m = dv->m;
    int n = m->n_tensors, depth = 0;
    for (int i = m->n_topo - 1; i >= 0; i--) {
        int c = m->topo[i];
        const Tensor *child = &m->tensors[c];
        if (child->dist == DIST_NONE || dv->readout[c])
            continue;
        int levels = dv->relaxed[c] ? n_parts[c] : 1;
        for (int k = 0; k < levels; k++) {
            NodeId seed;
            if (dv->relaxed[c]) {
                if (parts[c][k] == NO_NODE)
                    continue;
                seed = ir_neg(dv->g, parts[c][k]);     /* ∂E_c/∂mean = −ε_c */
            } else {
                Seeds s = dv_seeds_of(dv, c, dv_value_of(dv, c), dv_arg_at(dv, child->mean), dv_arg_at(dv, child->prec));
                seed = s.mean;
            }
            NodeId *leaf = messages(dv, c, seed);
            for (int p = 0; p < n; p++) {
                if (!dv->relaxed[p] || leaf[dv->fwd_buf[p]] == NO_NODE)
                    continue;
                int level = dv->relaxed[c] ? k + 1 : 0;     /* a^(level+1) */
                add_term(dv, &parts[p][level], ir_neg(dv->g, leaf[dv->fwd_buf[p]]), budget);
                if (*budget < 0)
                    return -1;
                if (level + 1 > n_parts[p])
                    n_parts[p] = level + 1;
                if (n_parts[p] > depth)
                    depth = n_parts[p];
            }
        }
    }
    return depth;
}

/* (M^k v̄): start[t][k] for k < depth, the feedforward values sent k hops
 * up; false once more terms than the budget allows. */
static bool start_levels(Deriver *dv, NodeId **start, int depth, int *budget)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++)
        if (dv->relaxed[t])
            start[t][0] = dv_load_buf(dv, dv->fwd_buf[t]);
    for (int i = m->n_topo - 1; i >= 0; i--) {
        int c = m->topo[i];
        if (!dv->relaxed[c])
            continue;
        for (int k = 0; k + 1 < depth; k++) {
            if (start[c][k] == NO_NODE)
                continue;
            NodeId *leaf = messages(dv, c, start[c][k]);
            for (int p = 0; p < m->n_tensors; p++)
                if (dv->relaxed[p] && leaf[dv->fwd_buf[p]] != NO_NODE) {
                    add_term(dv, &start[p][k + 1], leaf[dv->fwd_buf[p]], budget);
                    if (*budget < 0)
                        return false;
                }
        }
    }
    return true;
}

static NodeId coefficient(Deriver *dv, NodeId coeffs, int k)
{
    return ir_slice(dv->g, coeffs, k, k + 1, NULL);
}

/* fpa's closed form level by level (see above). */
static void derive_solve_levels(Deriver *dv)
{
    Model *m = dv->m;
    int n = m->n_tensors;
    Shape one = {.rank = 1, .dims = {1}};
    int coeff = ir_model_buffer(m, BUF_COEFF, "solve.level_coeff", ir_shape_id(dv->g, &one), false, -1);
    NodeId c = dv_load_buf(dv, coeff);
    int *lvl = arena_alloc(m->arena, sizeof *lvl * (size_t)(n + 1));
    NodeId *first = arena_alloc(m->arena, sizeof *first * (size_t)(n + 1)),
           *next = arena_alloc(m->arena, sizeof *next * (size_t)(n + 1));
    bool *reached = arena_alloc(m->arena, (size_t)n + 1);   /* carries a nonzero level now */
    for (int t = 0; t < n; t++) {
        first[t] = next[t] = NO_NODE;
        lvl[t] = dv->relaxed[t] ? ir_model_buffer(m, BUF_LEVEL, arena_printf(m->arena, "lvl.%s", m->tensors[t].name),
                                                  m->tensors[t].shape, true, t)
                                : -1;
    }
    /* a^(1) from the clamped children; M lvl from the relaxed ones */
    bool *edge = arena_alloc(m->arena, (size_t)(n * n) + 1);   /* edge[c·n + p]: c messages p */
    memset(edge, 0, (size_t)(n * n) + 1);
    for (int i = m->n_topo - 1; i >= 0; i--) {
        int ch = m->topo[i];
        const Tensor *child = &m->tensors[ch];
        if (child->dist == DIST_NONE || dv->readout[ch])
            continue;
        NodeId seed = dv->relaxed[ch] ? dv_load_buf(dv, lvl[ch])
                                      : ir_neg(dv->g, dv_seeds_of(dv, ch, dv_value_of(dv, ch), dv_arg_at(dv, child->mean),
                                                               dv_arg_at(dv, child->prec)).mean);
        NodeId *leaf = messages(dv, ch, seed);
        for (int p = 0; p < n; p++)
            if (dv->relaxed[p] && leaf[dv->fwd_buf[p]] != NO_NODE) {
                dv_add_into(dv->g, dv->relaxed[ch] ? &next[p] : &first[p], leaf[dv->fwd_buf[p]]);
                edge[ch * n + p] = dv->relaxed[ch];
            }
    }
    /* depth: levels until no node is reached any more (M is nilpotent) */
    int depth = 0;
    bool any = false;
    for (int t = 0; t < n; t++)
        any |= (reached[t] = first[t] != NO_NODE);
    bool *now = arena_alloc(m->arena, (size_t)n + 1);
    while (any) {
        depth++;
        any = false;
        for (int p = 0; p < n; p++) {
            now[p] = false;
            for (int ch = 0; ch < n && !now[p]; ch++)
                now[p] = reached[ch] && edge[ch * n + p];
        }
        for (int t = 0; t < n; t++)
            any |= (reached[t] = now[t]);
    }
    if (depth == 0)
        return;
    for (int t = 0; t < n; t++) {
        if (!dv->relaxed[t])
            continue;
        const Shape *shape = dv_tensor_shape(dv, t);
        NodeId a1 = first[t] != NO_NODE ? first[t] : ir_fill(dv->g, 0, shape, true);
        NodeId ak = next[t] != NO_NODE ? next[t] : ir_fill(dv->g, 0, shape, true);
        ir_assign(dv->p, PHASE_SOLVE, lvl[t], ir_broadcast(dv->g, a1, shape, true));
        ir_assign(dv->p, PHASE_SOLVE, m->tensors[t].buf,
                  ir_broadcast(dv->g, ir_add(dv->g, dv_load_buf(dv, dv->fwd_buf[t]), ir_mul(dv->g, c, a1)), shape, true));
        ir_assign(dv->p, PHASE_SOLVE_LEVEL, lvl[t], ir_broadcast(dv->g, ak, shape, true));
        ir_assign(dv->p, PHASE_SOLVE_LEVEL, m->tensors[t].buf,
                  ir_broadcast(dv->g, ir_add(dv->g, dv_value_of(dv, t), ir_mul(dv->g, c, ak)), shape, true));
    }
    dv->p->solve_coeff_buf = coeff;
    dv->p->solve_depth = depth;
    dv->p->solve_by_level = true;
}

void derive_solve(Deriver *dv)
{
    Model *m = dv->m;
    bool ar = dv->p->rule.kind == RULE_AR;
    NodeId **parts = level_table(dv);
    int *n_parts = arena_alloc(m->arena, sizeof *n_parts * (size_t)(m->n_tensors + 1));
    /* A chain has about one term per node, but on deep graphs with paths of
     * many lengths (unrolled LSTMs; ar's start, which reaches every
     * ancestor at every level) the terms grow as nodes × depth and the
     * program takes minutes to derive and compile: past a linear budget
     * the Euler loop is the better program. */
    int budget = 8;
    for (int t = 0; t < m->n_tensors; t++)
        budget += 4 * dv->relaxed[t];
    int depth = drive_levels(dv, parts, n_parts, &budget);
    if (depth < 0 && !ar)
        derive_solve_levels(dv);
    if (depth <= 0)
        return;
    NodeId **start = NULL;
    if (ar) {
        start = level_table(dv);
        if (!start_levels(dv, start, depth, &budget))
            return;
    }
    Shape coeff_shape = {.rank = 1, .dims = {ar ? 2 * depth : depth}};
    int coeff = ir_model_buffer(m, BUF_COEFF, ar ? "solve.coeff_ar" : "solve.coeff", ir_shape_id(dv->g, &coeff_shape),
                                false, -1);
    NodeId coeffs = dv_load_buf(dv, coeff);
    for (int t = 0; t < m->n_tensors; t++) {
        if (!dv->relaxed[t])
            continue;
        NodeId value = ar ? NO_NODE : dv_load_buf(dv, dv->fwd_buf[t]);
        for (int k = 0; k < n_parts[t]; k++)
            if (parts[t][k] != NO_NODE) {
                NodeId term = ir_mul(dv->g, coefficient(dv, coeffs, k), parts[t][k]);
                dv_add_into(dv->g, &value, ar ? ir_neg(dv->g, term) : term);
            }
        for (int k = 0; ar && k < depth; k++)
            if (start[t][k] != NO_NODE)
                dv_add_into(dv->g, &value, ir_mul(dv->g, coefficient(dv, coeffs, depth + k), start[t][k]));
        ir_assign(dv->p, PHASE_SOLVE, m->tensors[t].buf, ir_broadcast(dv->g, value, dv_tensor_shape(dv, t), true));
    }
    dv->p->solve_coeff_buf = coeff;
    dv->p->solve_depth = depth;
    dv->p->solve_transient = ar;
}
