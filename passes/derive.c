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
 *   - ar (activation relaxation) relaxes activities instead of errors:
 *     each relaxed node's value converges to its adjoint ∂L/∂v through the
 *     same frozen Jacobians, starting from its feedforward value.
 * Relaxations change the sweep, not the structure: derivative = none drops
 * f' from the messages to value nodes, backward = learned | random sends
 * them through back.W instead of W (VjpRules), error_weights = learned |
 * random makes a node's error ψ v − mean (rule_params.c adds the params).
 * A free observed leaf is a readout: it sits at its prediction, which is
 * the exact minimiser of its own term, so it sends nothing upstream.
 * fpa's and ar's relaxations in closed form are solve.c's. */
#include "derive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

NodeId dv_load_buf(Deriver *dv, int buf)
{
    const Buffer *b = &dv->m->buffers[buf];
    return ir_load(dv->g, buf, b->shape, b->batched);
}

NodeId dv_value_of(Deriver *dv, int t) { return dv_load_buf(dv, dv->m->tensors[t].buf); }

const Shape *dv_tensor_shape(Deriver *dv, int t) { return ir_shape(dv->g, dv->m->tensors[t].shape); }

/* An argument expression as the rule sees it. */
NodeId dv_arg_at(Deriver *dv, NodeId arg)
{
    if (arg == NO_NODE || !dv->frozen)
        return arg;
    return ir_substitute(dv->g, arg, dv->frozen_map, dv->n_leaf);
}

/* The value a node's distribution predicts: the mean, softmax or sigmoid
 * of the logits, broadcast to the node's shape. */
static NodeId prediction(Deriver *dv, int t, NodeId mean)
{
    const Tensor *tensor = &dv->m->tensors[t];
    NodeId pred = tensor->dist == DIST_CATEGORICAL ? ir_softmax(dv->g, mean)
                  : tensor->dist == DIST_BERNOULLI ? ir_unary(dv->g, OP_SIGMOID, mean)
                                                   : mean;
    return ir_broadcast(dv->g, pred, dv_tensor_shape(dv, t), true);
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


Seeds dv_seeds_of(Deriver *dv, int t, NodeId v, NodeId mean, NodeId prec)
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
        s.own = ir_broadcast(g, s.own, dv_tensor_shape(dv, t), true);
        break;
    }
    case DIST_BERNOULLI: {
        /* E = Σ softplus(l) − v ⊙ l;  ∂E/∂l = σ(l) − v;  ∂E/∂v = −l */
        s.own = ir_broadcast(g, ir_neg(g, mean), dv_tensor_shape(dv, t), true);
        s.error = ir_sub(g, v, ir_unary(g, OP_SIGMOID, mean));
        s.mean = ir_reduce_to(g, ir_neg(g, s.error), ir_node_shape(g, mean), g->nodes[mean].batched);
        s.energy = per_sample_sum(g, ir_sub(g, ir_unary(g, OP_SOFTPLUS, mean), ir_mul(g, v, mean)));
        break;
    }
    case DIST_NONE:
        break;
    }
    if (s.own != NO_NODE)
        s.own = ir_broadcast(g, s.own, dv_tensor_shape(dv, t), true);
    return s;
}

/* The seeds of node t under the rule.  Under a frozen rule a relaxed
 * normal node's frozen mean *is* its feedforward value, already stored in
 * fwd.t by the init phase: the seeds read it from there instead of
 * recomputing the prediction (W·x …) in every later phase.  The reverse
 * sweep still runs through the mean expression, whose VJP needs only its
 * inputs, so s.mean is summed back to that expression's shape. */
/* The value a node's error compares with its mean: ψ v under error
 * weights, else v.  A readout sits at its prediction, without ψ. */
static NodeId weighted_value(Deriver *dv, int t)
{
    NodeId v = dv_value_of(dv, t);
    if (dv->psi[t] < 0 || dv->readout[t])
        return v;
    BuildError err;
    return ir_matmul(dv->g, dv_value_of(dv, dv->psi[t]), v, 0, &err);
}

static Seeds node_seeds(Deriver *dv, int t, NodeId mean, NodeId prec)
{
    const Tensor *tensor = &dv->m->tensors[t];
    bool stored = dv->frozen && dv->fwd_buf[t] >= 0 && tensor->dist == DIST_NORMAL;
    Seeds s = dv_seeds_of(dv, t, weighted_value(dv, t), stored ? dv_load_buf(dv, dv->fwd_buf[t]) : mean, prec);
    if (stored)
        s.mean = ir_reduce_to(dv->g, s.mean, ir_node_shape(dv->g, mean), dv->g->nodes[mean].batched);
    return s;
}

void dv_add_into(Graph *g, NodeId *slot, NodeId x)
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

NodeId *dv_new_leaf_map(Deriver *dv)
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
    NodeId *map = dv_new_leaf_map(dv);
    for (int i = 0; i < m->n_topo; i++) {
        int t = m->topo[i];
        const Tensor *tensor = &m->tensors[t];
        if (!dv->relaxed[t] && !dv->readout[t])
            continue;
        NodeId mean = ir_substitute(dv->g, tensor->mean, map, dv->n_leaf);
        NodeId init = prediction(dv, t, mean);
        map[tensor->buf] = init;
        ir_assign(dv->p, PHASE_INIT, tensor->buf, init);
        if (dv->fwd_buf[t] >= 0)
            ir_assign(dv->p, PHASE_INIT, dv->fwd_buf[t], init);
    }
}

static void derive_readout(Deriver *dv)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++)
        if (dv->readout[t])
            ir_assign(dv->p, PHASE_READOUT, m->tensors[t].buf,
                   prediction(dv, t, dv_arg_at(dv, m->tensors[t].mean)));
}

static void derive_advance(Deriver *dv)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].prev_buf >= 0)
            ir_assign(dv->p, PHASE_ADVANCE, m->tensors[t].prev_buf, dv_value_of(dv, t));
}

/* Sends one node's argument seeds through its argument expressions. */
static void sweep_args(Deriver *dv, const Seeds *s, NodeId mean, NodeId prec, NodeId *leaf, const VjpRules *rules)
{
    if (s->mean != NO_NODE)
        ir_vjp(dv->g, mean, s->mean, leaf, dv->n_leaf, rules);
    if (s->prec != NO_NODE)
        ir_vjp(dv->g, prec, s->prec, leaf, dv->n_leaf, rules);
}

/* Value messages and parameter gradients come from one sweep unless
 * derivative = none makes them differ. */
static NodeId *param_leaf_for(Deriver *dv, NodeId *leaf)
{
    return dv->value_rules.no_derivative ? dv_new_leaf_map(dv) : leaf;
}

static void sweep_both(Deriver *dv, const Seeds *s, NodeId mean, NodeId prec, NodeId *leaf, NodeId *param_leaf)
{
    sweep_args(dv, s, mean, prec, leaf, &dv->value_rules);
    if (param_leaf != leaf)
        sweep_args(dv, s, mean, prec, param_leaf, &dv->param_rules);
}

/* Where a param's gradient accumulates: its own buffer, or for a learned
 * feedback matrix back.W the buffer of W (thesis §3.5: θ̃ takes the
 * transpose of θ's update; back.W is stored in W's shape, so the same
 * one).  -1: the rule does not learn it (random feedback or error
 * weights, or a relaxation this rule does not use). */
static int grad_source(Deriver *dv, int t)
{
    const Tensor *tensor = &dv->m->tensors[t];
    RuleSpec r = dv->p->rule;
    switch (tensor->rule_param) {
    case RULE_PARAM_NONE:
        return tensor->buf;
    case RULE_PARAM_FEEDBACK:
        return r.backward == BACKWARD_LEARNED ? dv->m->tensors[tensor->serves].buf : -1;
    case RULE_PARAM_ERROR_WEIGHTS:
        return r.error_weights == ERROR_WEIGHTS_LEARNED ? tensor->buf : -1;
    }
    return -1;
}

static void emit_param_grads(Deriver *dv, const NodeId *leaf)
{
    Model *m = dv->m;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        int source = tensor->role == ROLE_PARAM ? grad_source(dv, t) : -1;
        if (source < 0)
            continue;
        const Shape *shape = dv_tensor_shape(dv, t);
        int grad = ir_model_buffer(m, BUF_GRAD, arena_printf(m->arena, "grad.%s", tensor->name),
                                   tensor->shape, false, t);
        NodeId value = leaf[source] == NO_NODE ? ir_fill(dv->g, 0, shape, false)
                                               : ir_reduce_to(dv->g, leaf[source], shape, false);
        ir_assign(dv->p, PHASE_PARAM_GRAD, grad, value);
    }
}

static void emit_error_and_energy(Deriver *dv, int t, const Seeds *s, NodeId *energy)
{
    Model *m = dv->m;
    const Tensor *tensor = &m->tensors[t];
    int err = ir_model_buffer(m, BUF_ERROR, arena_printf(m->arena, "error.%s", tensor->name),
                              tensor->shape, true, t);
    NodeId e = ir_broadcast(dv->g, s->error, dv_tensor_shape(dv, t), true);
    dv->error_node[t] = e;
    ir_assign(dv->p, PHASE_ERRORS, err, e);
    if (s->energy != NO_NODE)
        dv_add_into(dv->g, energy, s->energy);
}

/* ∂E/∂v from ∂E/∂(ψ v) = own: ψᵀ own, with ∂E/∂ψ added to the
 * parameter gradients when the rule learns ψ. */
static NodeId through_error_weights(Deriver *dv, int t, NodeId own, NodeId *param_leaf)
{
    if (dv->psi[t] < 0 || dv->readout[t])
        return own;
    NodeId *tmp = dv_new_leaf_map(dv);
    ir_vjp(dv->g, weighted_value(dv, t), own, tmp, dv->n_leaf, NULL);
    int psi_buf = dv->m->tensors[dv->psi[t]].buf;
    if (dv->p->rule.error_weights == ERROR_WEIGHTS_LEARNED && tmp[psi_buf] != NO_NODE)
        dv_add_into(dv->g, &param_leaf[psi_buf], tmp[psi_buf]);
    return tmp[dv->m->tensors[t].buf];
}

static void emit_energy(Deriver *dv, NodeId energy)
{
    Model *m = dv->m;
    Shape scalar = {0};
    int32_t sid = ir_shape_id(dv->g, &scalar);
    int buf = ir_model_buffer(m, BUF_ENERGY, "energy", sid, true, -1);
    if (energy == NO_NODE)
        energy = ir_fill(dv->g, 0, &scalar, true);
    ir_assign(dv->p, PHASE_ENERGY, buf, energy);
}

static void emit_value_grad(Deriver *dv, int t, NodeId grad)
{
    Model *m = dv->m;
    const Tensor *tensor = &m->tensors[t];
    int vgrad = ir_model_buffer(m, BUF_VGRAD, arena_printf(m->arena, "vgrad.%s", tensor->name),
                                tensor->shape, true, t);
    ir_assign(dv->p, PHASE_VALUE_GRAD, vgrad, ir_broadcast(dv->g, grad, dv_tensor_shape(dv, t), true));
    dv->p->relaxed[dv->p->n_relaxed++] = (Relaxed){t, tensor->buf, vgrad};
}

/* ---- pc, ipc, fpa: relaxation rules ---- */

static void derive_relaxation(Deriver *dv)
{
    Model *m = dv->m;
    NodeId *leaf = dv_new_leaf_map(dv);
    NodeId *param_leaf = param_leaf_for(dv, leaf);
    NodeId energy = NO_NODE;
    NodeId *own = arena_alloc(m->arena, sizeof *own * (size_t)m->n_tensors);
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        own[t] = NO_NODE;
        if (tensor->dist == DIST_NONE)
            continue;
        NodeId mean = dv_arg_at(dv, tensor->mean), prec = dv_arg_at(dv, tensor->prec);
        Seeds s = node_seeds(dv, t, mean, prec);
        emit_error_and_energy(dv, t, &s, &energy);
        if (dv->readout[t])
            continue;   /* at its prediction: sends nothing upstream */
        own[t] = through_error_weights(dv, t, s.own, param_leaf);
        sweep_both(dv, &s, mean, prec, leaf, param_leaf);
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
        emit_value_grad(dv, t, grad);
    }
    emit_param_grads(dv, param_leaf);
    emit_energy(dv, energy);
}

/* ---- ar: activation relaxation (thesis §6.4) ----
 *
 * A relaxed node's value x is its activity.  It starts at the feedforward
 * value and follows dx/dt = −x + Σ_children J_cᵀ x_c + (message from
 * clamped children's energy), with every Jacobian frozen at the
 * feedforward pass (eq. 6.27): at equilibrium x = ∂L/∂v, the backprop
 * adjoint.  Parameter gradients use the relaxed activities as the
 * children's adjoints (eq. 6.28).  Only clamped and readout nodes carry
 * energy; a relaxed node's error is −x (minus its adjoint, the sign an
 * error has at equilibrium under fpa). */
static void derive_ar(Deriver *dv)
{
    Model *m = dv->m;
    NodeId *leaf = dv_new_leaf_map(dv);
    NodeId *param_leaf = param_leaf_for(dv, leaf);
    NodeId energy = NO_NODE;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE)
            continue;
        NodeId mean = dv_arg_at(dv, tensor->mean), prec = dv_arg_at(dv, tensor->prec);
        if (dv->relaxed[t]) {
            NodeId x = dv_value_of(dv, t), pred = prediction(dv, t, mean);
            ir_vjp(dv->g, pred, x, leaf, dv->n_leaf, &dv->value_rules);
            if (param_leaf != leaf)
                ir_vjp(dv->g, pred, x, param_leaf, dv->n_leaf, &dv->param_rules);
            Seeds s = {.error = ir_neg(dv->g, x), .energy = NO_NODE};
            emit_error_and_energy(dv, t, &s, &energy);
            continue;
        }
        Seeds s = node_seeds(dv, t, mean, prec);
        emit_error_and_energy(dv, t, &s, &energy);
        if (!dv->readout[t])
            sweep_both(dv, &s, mean, prec, leaf, param_leaf);
    }
    for (int t = 0; t < m->n_tensors; t++) {
        if (!dv->relaxed[t])
            continue;
        NodeId x = dv_value_of(dv, t), msg = leaf[dv->fwd_buf[t]];
        emit_value_grad(dv, t, msg == NO_NODE ? x : ir_sub(dv->g, x, msg));
    }
    emit_param_grads(dv, param_leaf);
    emit_energy(dv, energy);
}

/* ---- bp: one exact reverse sweep at the feedforward values ---- */

static void derive_bp(Deriver *dv)
{
    Model *m = dv->m;
    NodeId *leaf = dv_new_leaf_map(dv);
    NodeId energy = NO_NODE;
    for (int i = m->n_topo - 1; i >= 0; i--) {
        int t = m->topo[i];
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE)
            continue;
        NodeId mean = dv_arg_at(dv, tensor->mean), prec = dv_arg_at(dv, tensor->prec);
        Seeds s = node_seeds(dv, t, mean, prec);
        if (dv->relaxed[t]) {
            /* Its adjoint is complete: every child came earlier in this walk. */
            NodeId adjoint = leaf[dv->fwd_buf[t]];
            if (adjoint == NO_NODE)
                adjoint = ir_fill(dv->g, 0, dv_tensor_shape(dv, t), true);
            s.error = ir_neg(dv->g, adjoint);
            ir_vjp(dv->g, prediction(dv, t, mean), adjoint, leaf, dv->n_leaf, &dv->param_rules);
        } else if (!dv->readout[t]) {
            sweep_args(dv, &s, mean, prec, leaf, &dv->param_rules);
        }
        emit_error_and_energy(dv, t, &s, &energy);
    }
    emit_param_grads(dv, leaf);
    emit_energy(dv, energy);
}

/* Relaxation starts with every relaxed node at its prediction (zero error)
 * and readouts send nothing upstream, so unless a clamped node with an
 * energy term or a prev() state reads a relaxed node, the value gradients
 * stay exactly zero and the loop can be skipped (prediction mode).  Under
 * error weights the prediction is not the minimum (that is ψ⁻¹ mean): the
 * loop runs. */
static bool driven(Deriver *dv, const bool *clamped)
{
    Model *m = dv->m;
    if (m->has_prev)
        return true;
    for (int t = 0; t < m->n_tensors; t++)
        if (dv->relaxed[t] && dv->psi[t] >= 0)
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

/* Combinations a derivation cannot honour, as errors at the model. */
static bool rule_supported(Diag *d, const Model *m, RuleSpec rule)
{
    const char *where = m->path ? m->path : m->name;
    if (rule.error_weights != ERROR_WEIGHTS_IDENTITY && (rule.kind == RULE_BP || rule.kind == RULE_AR)) {
        diag_error_plain(d, where, "error_weights applies to the rules that relax errors (pc, fpa, ipc), not '%s'",
                         ir_rule_name(rule.kind));
        return false;
    }
    for (int t = 0; rule.kind == RULE_AR && t < m->n_tensors; t++)
        if (m->tensors[t].role == ROLE_LATENT && m->tensors[t].prec != NO_NODE) {
            diag_error(d, m->tensors[t].span,
                       "rule 'ar' relaxes activities, which carry no energy: latent '%s' cannot have a precision",
                       m->tensors[t].name);
            return false;
        }
    return true;
}

/* The feedback map of VjpRules: W's buffer → back.W's buffer. */
static int *feedback_map(Deriver *dv)
{
    Model *m = dv->m;
    int *map = arena_alloc(m->arena, sizeof *map * (size_t)(dv->n_leaf + 1));
    for (int b = 0; b < dv->n_leaf; b++)
        map[b] = -1;
    for (int t = 0; t < m->n_tensors; t++) {
        int back = m->tensors[t].role == ROLE_PARAM ? ir_rule_param(m, RULE_PARAM_FEEDBACK, t) : -1;
        if (back >= 0)
            map[m->tensors[t].buf] = m->tensors[back].buf;
    }
    return map;
}

Program *pass_derive(Diag *d, Model *m, RuleSpec rule, const bool *clamped_in)
{
    if (m->agent)   /* a discrete agent has one program, whatever the rule */
        return pass_derive_agent(d, m);
    if (!rule_supported(d, m, rule))
        return NULL;
    /* Normally added when the rule was set; params are never clamped, so
     * the caller's clamp set extends with false. */
    int declared = ir_declared_tensors(m);
    if (!ir_add_rule_params(d, m, rule))
        return NULL;
    bool *clamped = arena_alloc(m->arena, (size_t)m->n_tensors + 1);
    memcpy(clamped, clamped_in, (size_t)declared);

    static _Atomic uint64_t next_uid = 1;   /* ids only ever increase; never reused */
    Program *p = arena_alloc(m->arena, sizeof *p);
    p->uid = next_uid++;
    p->model = m;
    p->rule = rule;
    p->clamped = clamped;
    p->relaxes = rule.kind != RULE_BP;
    p->learn_each_step = rule.kind == RULE_IPC;
    p->relaxed = arena_alloc(m->arena, sizeof *p->relaxed * (size_t)(m->n_tensors + 1));

    Deriver dv = {.diag = d, .m = m, .g = &m->g, .p = p};
    dv.frozen = rule.kind == RULE_FPA || rule.kind == RULE_BP || rule.kind == RULE_AR;
    dv.error_node = arena_alloc(m->arena, sizeof *dv.error_node * (size_t)(m->n_tensors + 1));
    dv.psi = arena_alloc(m->arena, sizeof *dv.psi * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++) {
        dv.error_node[t] = NO_NODE;
        dv.psi[t] = rule.error_weights != ERROR_WEIGHTS_IDENTITY ? ir_rule_param(m, RULE_PARAM_ERROR_WEIGHTS, t) : -1;
    }
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
    dv.frozen_map = dv_new_leaf_map(&dv);
    for (int t = 0; t < m->n_tensors; t++)
        if (dv.fwd_buf[t] >= 0)
            dv.frozen_map[m->tensors[t].buf] = dv_load_buf(&dv, dv.fwd_buf[t]);
    const int *feedback = rule.backward != BACKWARD_TRANSPOSE ? feedback_map(&dv) : NULL;
    dv.value_rules = (VjpRules){rule.no_derivative, feedback, dv.n_leaf};
    dv.param_rules = (VjpRules){false, feedback, dv.n_leaf};

    derive_init(&dv);
    p->solve_coeff_buf = -1;
    if (rule.kind == RULE_BP)
        derive_bp(&dv);
    else if (rule.kind == RULE_AR)
        derive_ar(&dv);
    else
        derive_relaxation(&dv);
    if (derive_solve_applies(&dv))
        derive_solve(&dv);
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
        if (m->agent || (!memcmp(&p->rule, &rule, sizeof rule) &&
                         !memcmp(p->clamped, clamped, (size_t)ir_declared_tensors(m))))
            return p;   /* an agent has one program whatever the rule */
    }
    Program *p = pass_derive(d, m, rule, clamped);
    if (p) {
        if (!m->agent)   /* an agent has no relaxation loop to hoist out of */
            pass_hoist(p);
        pass_simplify(p);
        m->programs = arena_grow(m->arena, m->programs, &m->cap_programs, m->n_programs, sizeof *m->programs);
        m->programs[m->n_programs++] = p;
    }
    return p;
}
