/* derive.c — the learning rules as one pass: from a checked Model and a
 * clamp set, build the phase programs of pc, fpa, ipc and bp.
 *
 * Requires: pass_check (m->topo).  Produces: a Program (ir.h) whose phases
 * are parallel assignments over the model's buffers.  Adds nodes to the
 * model's graph and buffers to its registry; invalidates nothing.
 *
 * Every rule is the same computation seen at different points:
 *   - each energy node n ~ D(args) contributes −log D(v_n | args); its
 *     seeds are ∂E_n/∂v_n and ∂E_n/∂args;
 *   - one reverse sweep (ir_vjp) per node sends the argument seeds to the
 *     leaves they read: value nodes receive Σ_children Jᵀ(child error),
 *     params receive ∂F/∂θ;
 *   - pc reads args at the current values; fpa reads them at the frozen
 *     feedforward values (fwd.*), which makes the relaxation linear in the
 *     errors; bp visits nodes in reverse topological order and seeds each
 *     latent's prediction with its finished adjoint, one exact sweep.
 * A free observed leaf is a readout: it sits at its prediction, which is
 * the exact minimiser of its own term, so it sends nothing upstream. */
#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Deriver {
    Diag *diag;
    Model *m;
    Graph *g;
    Program *p;
    bool frozen;          /* args read fwd.* (fpa, bp) */
    NodeId *frozen_map;   /* buffer → LOAD(fwd.v) for relaxed v */
    int *fwd_buf;         /* tensor → fwd buffer, or -1 */
    bool *relaxed;        /* tensor → relaxed by the integrator */
    bool *readout;        /* tensor → free observed leaf */
    bool *has_children;
    NodeId *error_node;   /* tensor → its precision-weighted error node */
    int n_leaf;           /* buffers that expressions can read (maps are this long) */
} Deriver;

static NodeId load_buf(Deriver *dv, int buf)
{
    const Buffer *b = &dv->m->buffers[buf];
    return ir_load(dv->g, buf, b->shape, b->batched);
}

static NodeId value_of(Deriver *dv, int t) { return load_buf(dv, dv->m->tensors[t].buf); }

static const Shape *tensor_shape(Deriver *dv, int t) { return ir_shape(dv->g, dv->m->tensors[t].shape); }

/* An argument expression as the rule sees it. */
static NodeId arg_at(Deriver *dv, NodeId arg)
{
    if (arg == NO_NODE || !dv->frozen)
        return arg;
    return ir_substitute(dv->g, arg, dv->frozen_map, dv->n_leaf);
}

static void assign(Program *p, PhaseId phase, Arena *arena, int dst, NodeId src)
{
    Phase *ph = &p->phases[phase];
    ph->assigns = arena_grow(arena, ph->assigns, &ph->cap_assigns, ph->n_assigns, sizeof *ph->assigns);
    ph->assigns[ph->n_assigns++] = (Assign){dst, src};
}

/* The value a node's distribution predicts: the mean, softmax or sigmoid
 * of the logits, broadcast to the node's shape. */
static NodeId prediction(Deriver *dv, int t, NodeId mean)
{
    const Tensor *tensor = &dv->m->tensors[t];
    NodeId pred = tensor->dist == DIST_CATEGORICAL ? ir_softmax(dv->g, mean)
                  : tensor->dist == DIST_BERNOULLI ? ir_unary(dv->g, OP_SIGMOID, mean)
                                                   : mean;
    return ir_broadcast(dv->g, pred, tensor_shape(dv, t), true);
}

static NodeId sum_last(Graph *g, NodeId x)
{
    Shape s = *ir_node_shape(g, x);
    if (s.rank > 0)
        s.dims[s.rank - 1] = 1;
    return ir_reduce_to(g, x, &s, g->nodes[x].batched);
}

static NodeId per_sample_sum(Graph *g, NodeId x)
{
    Shape scalar = {0};
    return ir_broadcast(g, ir_reduce_to(g, x, &scalar, g->nodes[x].batched), &scalar, true);
}

/* Seeds of one energy node at the given argument values. */
typedef struct Seeds {
    NodeId own;           /* ∂E/∂v */
    NodeId mean, prec;    /* ∂E/∂mean (or logits), ∂E/∂prec; NO_NODE = none */
    NodeId error;         /* −∂E/∂mean: the precision-weighted error */
    NodeId energy;        /* per-sample E, shape [] batched */
} Seeds;

static Seeds seeds_of(Deriver *dv, int t, NodeId v, NodeId mean, NodeId prec)
{
    Graph *g = dv->g;
    const Tensor *tensor = &dv->m->tensors[t];
    Seeds s = {NO_NODE, NO_NODE, NO_NODE, NO_NODE, NO_NODE};
    switch (tensor->dist) {
    case DIST_NORMAL: {
        NodeId eps = ir_sub(g, v, mean);
        NodeId xi = prec == NO_NODE ? eps : ir_mul(g, prec, eps);
        s.own = xi;
        s.error = xi;
        s.mean = ir_reduce_to(g, ir_neg(g, xi), ir_node_shape(g, mean), g->nodes[mean].batched);
        NodeId quad = ir_mul(g, ir_scalar(g, 0.5), ir_mul(g, eps, xi));
        s.energy = per_sample_sum(g, quad);
        if (prec != NO_NODE) {
            NodeId dprec = ir_mul(g, ir_scalar(g, 0.5), ir_unary(g, OP_SQUARE, eps));
            if (tensor->prec_log_term) {
                NodeId half_inv = ir_div(g, ir_scalar(g, 0.5), prec);
                dprec = ir_sub(g, dprec, ir_broadcast(g, half_inv, ir_node_shape(g, eps), true));
                NodeId logp = ir_broadcast(g, ir_unary(g, OP_LOG, prec), ir_node_shape(g, eps), true);
                s.energy = ir_sub(g, s.energy, per_sample_sum(g, ir_mul(g, ir_scalar(g, 0.5), logp)));
            }
            s.prec = ir_reduce_to(g, dprec, ir_node_shape(g, prec), g->nodes[prec].batched);
        }
        break;
    }
    case DIST_CATEGORICAL: {
        /* E = Σv · lse(l) − Σ v ⊙ l;  ∂E/∂l = softmax(l) Σv − v;  ∂E/∂v = lse(l) − l */
        NodeId lse = ir_logsumexp(g, mean);
        NodeId mass = sum_last(g, v);
        s.own = ir_sub(g, lse, mean);
        s.error = ir_sub(g, v, ir_mul(g, ir_softmax(g, mean), mass));
        s.mean = ir_reduce_to(g, ir_neg(g, s.error), ir_node_shape(g, mean), g->nodes[mean].batched);
        s.energy = ir_sub(g, per_sample_sum(g, ir_mul(g, mass, lse)), per_sample_sum(g, ir_mul(g, v, mean)));
        s.own = ir_broadcast(g, s.own, tensor_shape(dv, t), true);
        break;
    }
    case DIST_BERNOULLI: {
        /* E = Σ softplus(l) − v ⊙ l;  ∂E/∂l = σ(l) − v;  ∂E/∂v = −l */
        s.own = ir_broadcast(g, ir_neg(g, mean), tensor_shape(dv, t), true);
        s.error = ir_sub(g, v, ir_unary(g, OP_SIGMOID, mean));
        s.mean = ir_reduce_to(g, ir_neg(g, s.error), ir_node_shape(g, mean), g->nodes[mean].batched);
        s.energy = per_sample_sum(g, ir_sub(g, ir_unary(g, OP_SOFTPLUS, mean), ir_mul(g, v, mean)));
        break;
    }
    case DIST_NONE:
        break;
    }
    if (s.own != NO_NODE)
        s.own = ir_broadcast(g, s.own, tensor_shape(dv, t), true);
    return s;
}

/* The seeds of node t under the rule.  Under a frozen rule a relaxed
 * normal node's frozen mean *is* its feedforward value, already stored in
 * fwd.t by the init phase: the seeds read it from there instead of
 * recomputing the prediction (W·x …) in every later phase.  The reverse
 * sweep still runs through the mean expression, whose VJP needs only its
 * inputs, so s.mean is summed back to that expression's shape. */
static Seeds node_seeds(Deriver *dv, int t, NodeId mean, NodeId prec)
{
    const Tensor *tensor = &dv->m->tensors[t];
    bool stored = dv->frozen && dv->fwd_buf[t] >= 0 && tensor->dist == DIST_NORMAL;
    Seeds s = seeds_of(dv, t, value_of(dv, t), stored ? load_buf(dv, dv->fwd_buf[t]) : mean, prec);
    if (stored)
        s.mean = ir_reduce_to(dv->g, s.mean, ir_node_shape(dv->g, mean), dv->g->nodes[mean].batched);
    return s;
}

static void add_into(Graph *g, NodeId *slot, NodeId x)
{
    *slot = *slot == NO_NODE ? x : ir_add(g, *slot, x);
}

/* ---- clamp classification ---- */

/* Relaxed: free nodes with a distribution that are not readouts.
 * Readout: free observed nodes that nothing reads. */
static void classify(Deriver *dv, const bool *clamped)
{
    Model *m = dv->m;
    int n = m->n_tensors;
    dv->relaxed = arena_alloc(m->arena, (size_t)n);
    dv->readout = arena_alloc(m->arena, (size_t)n);
    dv->has_children = arena_alloc(m->arena, (size_t)n);
    int *parents = xmalloc(sizeof *parents * (size_t)(n + 1));
    for (int t = 0; t < n; t++) {
        const Tensor *tensor = &m->tensors[t];
        int k = ir_value_parents(m, tensor->mean, parents, n);
        for (int i = 0; i < k; i++)
            dv->has_children[parents[i]] = true;
        k = ir_value_parents(m, tensor->prec, parents, n);
        for (int i = 0; i < k; i++)
            dv->has_children[parents[i]] = true;
    }
    free(parents);
    for (int t = 0; t < n; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE || clamped[t])
            continue;
        if (tensor->role == ROLE_OBSERVED && !dv->has_children[t])
            dv->readout[t] = true;
        else
            dv->relaxed[t] = true;
    }
}

/* ---- phases shared by every rule ---- */

static NodeId *new_leaf_map(Deriver *dv)
{
    NodeId *leaf = arena_alloc(dv->m->arena, sizeof *leaf * (size_t)dv->n_leaf);
    for (int b = 0; b < dv->n_leaf; b++)
        leaf[b] = NO_NODE;
    return leaf;
}


/* Feedforward sweep: each free node's initial value as an expression of
 * clamped data, params and prev() state (parents substituted in
 * topological order).  Under a frozen rule the same values go to fwd.*. */
static void derive_init(Deriver *dv)
{
    Model *m = dv->m;
    NodeId *map = new_leaf_map(dv);
    for (int i = 0; i < m->n_topo; i++) {
        int t = m->topo[i];
        const Tensor *tensor = &m->tensors[t];
        if (!dv->relaxed[t] && !dv->readout[t])
            continue;
        NodeId mean = ir_substitute(dv->g, tensor->mean, map, dv->n_leaf);
        NodeId init = prediction(dv, t, mean);
        map[tensor->buf] = init;
        assign(dv->p, PHASE_INIT, m->arena, tensor->buf, init);
        if (dv->fwd_buf[t] >= 0)
            assign(dv->p, PHASE_INIT, m->arena, dv->fwd_buf[t], init);
    }
}

static void derive_readout(Deriver *dv)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++)
        if (dv->readout[t])
            assign(dv->p, PHASE_READOUT, m->arena, m->tensors[t].buf,
                   prediction(dv, t, arg_at(dv, m->tensors[t].mean)));
}

static void derive_advance(Deriver *dv)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].prev_buf >= 0)
            assign(dv->p, PHASE_ADVANCE, m->arena, m->tensors[t].prev_buf, value_of(dv, t));
}

/* Sends one node's argument seeds through its argument expressions. */
static void sweep_args(Deriver *dv, int t, const Seeds *s, NodeId mean, NodeId prec, NodeId *leaf, bool nd)
{
    if (s->mean != NO_NODE)
        ir_vjp(dv->g, mean, s->mean, leaf, dv->n_leaf, nd);
    if (s->prec != NO_NODE)
        ir_vjp(dv->g, prec, s->prec, leaf, dv->n_leaf, nd);
}

static void emit_param_grads(Deriver *dv, const NodeId *leaf)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_PARAM)
            continue;
        const Shape *shape = tensor_shape(dv, t);
        int grad = ir_model_buffer(m, BUF_GRAD, arena_printf(m->arena, "grad.%s", tensor->name),
                                   tensor->shape, false, t);
        NodeId value = leaf[tensor->buf] == NO_NODE ? ir_fill(dv->g, 0, shape, false)
                                                    : ir_reduce_to(dv->g, leaf[tensor->buf], shape, false);
        assign(dv->p, PHASE_PARAM_GRAD, m->arena, grad, value);
    }
}

static void emit_error_and_energy(Deriver *dv, int t, const Seeds *s, NodeId *energy)
{
    Model *m = dv->m;
    const Tensor *tensor = &m->tensors[t];
    int err = ir_model_buffer(m, BUF_ERROR, arena_printf(m->arena, "error.%s", tensor->name),
                              tensor->shape, true, t);
    NodeId e = ir_broadcast(dv->g, s->error, tensor_shape(dv, t), true);
    dv->error_node[t] = e;
    assign(dv->p, PHASE_ERRORS, m->arena, err, e);
    add_into(dv->g, energy, s->energy);
}

static void emit_energy(Deriver *dv, NodeId energy)
{
    Model *m = dv->m;
    Shape scalar = {0};
    int32_t sid = ir_shape_id(dv->g, &scalar);
    int buf = ir_model_buffer(m, BUF_ENERGY, "energy", sid, true, -1);
    if (energy == NO_NODE)
        energy = ir_fill(dv->g, 0, &scalar, true);
    assign(dv->p, PHASE_ENERGY, m->arena, buf, energy);
}

/* ---- pc, ipc, fpa: relaxation rules ---- */

static void derive_relaxation(Deriver *dv)
{
    Model *m = dv->m;
    bool nd = dv->p->rule.no_derivative;
    NodeId *leaf = new_leaf_map(dv);
    NodeId *param_leaf = nd ? new_leaf_map(dv) : leaf;
    NodeId energy = NO_NODE;
    NodeId *own = arena_alloc(m->arena, sizeof *own * (size_t)m->n_tensors);
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        own[t] = NO_NODE;
        if (tensor->dist == DIST_NONE)
            continue;
        NodeId mean = arg_at(dv, tensor->mean), prec = arg_at(dv, tensor->prec);
        Seeds s = node_seeds(dv, t, mean, prec);
        emit_error_and_energy(dv, t, &s, &energy);
        if (dv->readout[t])
            continue;   /* at its prediction: sends nothing upstream */
        own[t] = s.own;
        sweep_args(dv, t, &s, mean, prec, leaf, nd);
        if (nd)
            sweep_args(dv, t, &s, mean, prec, param_leaf, false);
    }
    for (int t = 0; t < m->n_tensors; t++) {
        if (!dv->relaxed[t])
            continue;
        const Tensor *tensor = &m->tensors[t];
        /* Messages from children arrive at the value itself (pc) or at its
         * frozen copy (fpa). */
        int from = dv->frozen ? dv->fwd_buf[t] : tensor->buf;
        NodeId grad = own[t];
        if (leaf[from] != NO_NODE)
            grad = ir_add(dv->g, grad, leaf[from]);
        int vgrad = ir_model_buffer(m, BUF_VGRAD, arena_printf(m->arena, "vgrad.%s", tensor->name),
                                    tensor->shape, true, t);
        assign(dv->p, PHASE_VALUE_GRAD, m->arena, vgrad, ir_broadcast(dv->g, grad, tensor_shape(dv, t), true));
        dv->p->relaxed[dv->p->n_relaxed++] = (Relaxed){t, tensor->buf, vgrad};
    }
    emit_param_grads(dv, param_leaf);
    emit_energy(dv, energy);
}

/* ---- fpa in closed form ----
 *
 * With frozen Jacobians, unit precisions and Jacobi Euler steps of size η
 * from ε(0) = 0, the errors obey ε(t+1) = (1 − η) ε(t) + η (M ε(t) + b):
 * b is the drive from clamped children, M sends child errors to parents
 * and is nilpotent on a DAG.  Then ε_i(n) = Σ_k P[Bin(n, η) ≥ k] a_i^(k),
 * where a_i^(k) is the message reaching i along paths of exactly k edges
 * (a^(1) = Mᵀ-free drive b, a^(k) = M a^(k−1)).  PHASE_SOLVE writes
 * v_i = v̄_i + ε_i(n) for every relaxed node in one sweep; the runtime fills
 * the coefficients c_k for the n and η it runs with. */

static bool solve_applies(const Deriver *dv)
{
    const Model *m = dv->m;
    if (dv->p->rule.kind != RULE_FPA || m->train.integrator != INTEGRATOR_EULER || m->train.momentum != 0 ||
        m->train.tol != 0 || m->has_prev)
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
    NodeId *leaf = new_leaf_map(dv);
    NodeId mean = arg_at(dv, dv->m->tensors[t].mean);
    ir_vjp(dv->g, mean, ir_reduce_to(dv->g, seed_on_mean, ir_node_shape(dv->g, mean), dv->g->nodes[mean].batched),
           leaf, dv->n_leaf, dv->p->rule.no_derivative);
    return leaf;
}

static void derive_fpa_solve(Deriver *dv)
{
    Model *m = dv->m;
    int n = m->n_tensors, depth = 0;
    /* parts[t][k-1] = a_t^(k); walking in reverse topological order, every
     * child's parts are complete before its parents need them. */
    NodeId **parts = arena_alloc(m->arena, sizeof *parts * (size_t)(n + 1));
    int *n_parts = arena_alloc(m->arena, sizeof *n_parts * (size_t)(n + 1));
    for (int t = 0; t < n; t++) {
        parts[t] = arena_alloc(m->arena, sizeof **parts * (size_t)(n + 1));
        for (int k = 0; k <= n; k++)
            parts[t][k] = NO_NODE;
    }
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
                Seeds s = seeds_of(dv, c, value_of(dv, c), arg_at(dv, child->mean), arg_at(dv, child->prec));
                seed = s.mean;
            }
            NodeId *leaf = messages(dv, c, seed);
            for (int p = 0; p < n; p++) {
                if (!dv->relaxed[p] || leaf[dv->fwd_buf[p]] == NO_NODE)
                    continue;
                int level = dv->relaxed[c] ? k + 1 : 0;     /* a^(level+1) */
                NodeId msg = ir_neg(dv->g, leaf[dv->fwd_buf[p]]);
                add_into(dv->g, &parts[p][level], msg);
                if (level + 1 > n_parts[p])
                    n_parts[p] = level + 1;
                if (n_parts[p] > depth)
                    depth = n_parts[p];
            }
        }
    }
    if (depth == 0)
        return;
    Shape coeff_shape = {.rank = 1, .dims = {depth}};
    int coeff = ir_model_buffer(m, BUF_COEFF, "solve.coeff", ir_shape_id(dv->g, &coeff_shape), false, -1);
    NodeId coeffs = load_buf(dv, coeff);
    for (int t = 0; t < n; t++) {
        if (!dv->relaxed[t])
            continue;
        NodeId value = load_buf(dv, dv->fwd_buf[t]);
        for (int k = 0; k < n_parts[t]; k++)
            if (parts[t][k] != NO_NODE)
                value = ir_add(dv->g, value, ir_mul(dv->g, ir_slice(dv->g, coeffs, k, k + 1, NULL), parts[t][k]));
        assign(dv->p, PHASE_SOLVE, m->arena, m->tensors[t].buf, ir_broadcast(dv->g, value, tensor_shape(dv, t), true));
    }
    dv->p->solve_coeff_buf = coeff;
    dv->p->solve_depth = depth;
}

/* ---- bp: one exact reverse sweep at the feedforward values ---- */

static void derive_bp(Deriver *dv)
{
    Model *m = dv->m;
    NodeId *leaf = new_leaf_map(dv);
    NodeId energy = NO_NODE;
    for (int i = m->n_topo - 1; i >= 0; i--) {
        int t = m->topo[i];
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE)
            continue;
        NodeId mean = arg_at(dv, tensor->mean), prec = arg_at(dv, tensor->prec);
        Seeds s = node_seeds(dv, t, mean, prec);
        if (dv->relaxed[t]) {
            /* Its adjoint is complete: every child came earlier in this walk. */
            NodeId adjoint = leaf[dv->fwd_buf[t]];
            if (adjoint == NO_NODE)
                adjoint = ir_fill(dv->g, 0, tensor_shape(dv, t), true);
            s.error = ir_neg(dv->g, adjoint);
            ir_vjp(dv->g, prediction(dv, t, mean), adjoint, leaf, dv->n_leaf, false);
        } else if (!dv->readout[t]) {
            sweep_args(dv, t, &s, mean, prec, leaf, false);
        }
        emit_error_and_energy(dv, t, &s, &energy);
    }
    emit_param_grads(dv, leaf);
    emit_energy(dv, energy);
}

/* Relaxation starts with every relaxed node at its prediction (zero error)
 * and readouts send nothing upstream, so unless a clamped node with an
 * energy term or a prev() state reads a relaxed node, the value gradients
 * stay exactly zero and the loop can be skipped (prediction mode). */
static bool driven(Deriver *dv, const bool *clamped)
{
    Model *m = dv->m;
    if (m->has_prev)
        return true;
    int *parents = xmalloc(sizeof *parents * (size_t)(m->n_tensors + 1));
    bool found = false;
    for (int t = 0; t < m->n_tensors && !found; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (!clamped[t] || tensor->dist == DIST_NONE)
            continue;
        int k = ir_value_parents(m, tensor->mean, parents, m->n_tensors);
        k += ir_value_parents(m, tensor->prec, parents + k, m->n_tensors - k);
        for (int i = 0; i < k; i++)
            found |= dv->relaxed[parents[i]];
    }
    free(parents);
    return found;
}

/* ---- entry points ---- */

bool *pass_clamp_set(Model *m, bool observed_clamped)
{
    bool *clamped = arena_alloc(m->arena, (size_t)m->n_tensors + 1);
    for (int t = 0; t < m->n_tensors; t++)
        clamped[t] = m->tensors[t].role == ROLE_INPUT || (observed_clamped && m->tensors[t].role == ROLE_OBSERVED);
    return clamped;
}

static bool rule_supported(Diag *d, const Model *m, RuleSpec rule)
{
    const char *what = rule.kind == RULE_AR ? "rule 'ar'"
                       : rule.backward != BACKWARD_TRANSPOSE ? "backward = learned | random"
                       : rule.learned_error_weights ? "error_weights = learned" : NULL;
    if (!what)
        return true;
    diag_error_plain(d, m->path ? m->path : m->name, "%s is not implemented yet", what);
    return false;
}

Program *pass_derive(Diag *d, Model *m, RuleSpec rule, const bool *clamped)
{
    if (!rule_supported(d, m, rule))
        return NULL;
    static _Atomic uint64_t next_uid = 1;   /* ids only ever increase; never reused */
    Program *p = arena_alloc(m->arena, sizeof *p);
    p->uid = next_uid++;
    p->model = m;
    p->rule = rule;
    p->clamped = arena_alloc(m->arena, (size_t)m->n_tensors + 1);
    memcpy(p->clamped, clamped, (size_t)m->n_tensors);
    p->relaxes = rule.kind != RULE_BP;
    p->learn_each_step = rule.kind == RULE_IPC;
    p->relaxed = arena_alloc(m->arena, sizeof *p->relaxed * (size_t)(m->n_tensors + 1));

    Deriver dv = {.diag = d, .m = m, .g = &m->g, .p = p};
    dv.frozen = rule.kind == RULE_FPA || rule.kind == RULE_BP;
    dv.error_node = arena_alloc(m->arena, sizeof *dv.error_node * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++)
        dv.error_node[t] = NO_NODE;
    classify(&dv, clamped);
    dv.fwd_buf = arena_alloc(m->arena, sizeof *dv.fwd_buf * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++) {
        dv.fwd_buf[t] = -1;
        if (dv.frozen && dv.relaxed[t])
            dv.fwd_buf[t] = ir_model_buffer(m, BUF_FORWARD, arena_printf(m->arena, "fwd.%s", m->tensors[t].name),
                                            m->tensors[t].shape, true, t);
    }
    /* Expressions read only buffers that exist now; derived outputs added
     * later (error.*, grad.*) are never read, so maps stop here. */
    dv.n_leaf = m->n_buffers;
    dv.frozen_map = new_leaf_map(&dv);
    for (int t = 0; t < m->n_tensors; t++)
        if (dv.fwd_buf[t] >= 0)
            dv.frozen_map[m->tensors[t].buf] = load_buf(&dv, dv.fwd_buf[t]);

    derive_init(&dv);
    p->solve_coeff_buf = -1;
    if (rule.kind == RULE_BP)
        derive_bp(&dv);
    else
        derive_relaxation(&dv);
    if (solve_applies(&dv))
        derive_fpa_solve(&dv);
    derive_readout(&dv);
    derive_advance(&dv);
    p->relaxes = p->relaxes && driven(&dv, clamped);
    p->error_nodes = dv.error_node;
    return p;
}

Program *pass_derive_cached(Diag *d, Model *m, RuleSpec rule, const bool *clamped)
{
    for (int i = 0; i < m->n_programs; i++) {
        Program *p = m->programs[i];
        if (!memcmp(&p->rule, &rule, sizeof rule) && !memcmp(p->clamped, clamped, (size_t)m->n_tensors))
            return p;
    }
    Program *p = pass_derive(d, m, rule, clamped);
    if (p) {
        m->programs = arena_grow(m->arena, m->programs, &m->cap_programs, m->n_programs, sizeof *m->programs);
        m->programs[m->n_programs++] = p;
    }
    return p;
}
