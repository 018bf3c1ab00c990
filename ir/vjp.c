/* vjp.c — the vector–Jacobian-product column of ops.def and the reverse
 * sweep that applies it.
 *
 * Each vjp_OP builds, for one node with output cotangent `ct`, the
 * cotangent of each input, already summed back to that input's shape and
 * batching (the inverse of broadcasting), or NO_NODE when the input gets
 * nothing.  Derivatives are written with primitive ops only, reusing the
 * forward node (tanh' = 1 − y²) so hash-consing shares it with the forward
 * pass.  tests/test_vjp.c checks every rule against central differences. */
#include "ir.h"

#include <stdlib.h>

static const Node *N(Graph *g, NodeId id) { return &g->nodes[id]; }

/* Sum `ct` down to the shape and batching of `input`. */
static NodeId unbroadcast(Graph *g, NodeId ct, NodeId input)
{
    return ir_reduce_to(g, ct, ir_node_shape(g, input), N(g, input)->batched);
}

static NodeId one(Graph *g) { return ir_scalar(g, 1); }

/* ct ⊙ f'(x), or ct alone under derivative = none. */
static NodeId chain(Graph *g, NodeId ct, NodeId deriv, bool no_derivative)
{
    return no_derivative ? ct : ir_mul(g, ct, deriv);
}

static void vjp_leaf(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd) {}
static void vjp_zero(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd) {}
/* Ops that only derivations make, on tables nothing differentiates. */
static void vjp_internal(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    fep_die("vjp: %s is never differentiated", op_info[g->nodes[n].op].name);
}

static void vjp_add(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = unbroadcast(g, ct, N(g, n)->in[0]);
    d[1] = unbroadcast(g, ct, N(g, n)->in[1]);
}

static void vjp_sub(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = unbroadcast(g, ct, N(g, n)->in[0]);
    d[1] = unbroadcast(g, ir_neg(g, ct), N(g, n)->in[1]);
}

static void vjp_mul(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId a = N(g, n)->in[0], b = N(g, n)->in[1];
    d[0] = unbroadcast(g, ir_mul(g, ct, b), a);
    d[1] = unbroadcast(g, ir_mul(g, ct, a), b);
}

/* y = a / b:  da = ct / b,  db = −ct · y / b. */
static void vjp_div(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId a = N(g, n)->in[0], b = N(g, n)->in[1];
    d[0] = unbroadcast(g, ir_div(g, ct, b), a);
    d[1] = unbroadcast(g, ir_neg(g, ir_div(g, ir_mul(g, ct, n), b)), b);
}

static void vjp_neg(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd) { d[0] = ir_neg(g, ct); }

/* tanh' = 1 − y² */
static void vjp_tanh(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_sub(g, one(g), ir_unary(g, OP_SQUARE, n)), nd);
}

/* σ' = y (1 − y) */
static void vjp_sigmoid(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_mul(g, n, ir_sub(g, one(g), n)), nd);
}

static void vjp_relu(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_unary(g, OP_STEP, N(g, n)->in[0]), nd);
}

/* elu' = 1 for x > 0, eˣ otherwise, written as (elu(x) − relu(x)) + 1 so
 * no exp of a large positive x is ever formed. */
static void vjp_elu(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId x = N(g, n)->in[0];
    d[0] = chain(g, ct, ir_add(g, ir_sub(g, n, ir_unary(g, OP_RELU, x)), one(g)), nd);
}

static void vjp_softplus(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_unary(g, OP_SIGMOID, N(g, n)->in[0]), nd);
}

static void vjp_exp(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd) { d[0] = chain(g, ct, n, nd); }

static void vjp_log(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = nd ? ct : ir_div(g, ct, N(g, n)->in[0]);
}

/* sqrt' = 1 / (2y) */
static void vjp_sqrt(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = nd ? ct : ir_div(g, ct, ir_mul(g, ir_scalar(g, 2), n));
}

static void vjp_square(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_mul(g, ir_scalar(g, 2), N(g, n)->in[0]), nd);
}

static void vjp_abs(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_unary(g, OP_SIGN, N(g, n)->in[0]), nd);
}

static void vjp_sin(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_unary(g, OP_COS, N(g, n)->in[0]), nd);
}

static void vjp_cos(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_neg(g, ir_unary(g, OP_SIN, N(g, n)->in[0])), nd);
}

/* tan' = 1 + y² */
static void vjp_tan(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = chain(g, ct, ir_add(g, one(g), ir_unary(g, OP_SQUARE, n)), nd);
}

/* The extern's declared derivative is extern slot (index, grad = 1). */
static void vjp_extern(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    const Attr *a = ir_node_attr(g, n);
    if (a->ints[1])
        fep_die("the derivative of an extern's derivative is not defined");
    Attr ga = {.ints = {a->ints[0], 1}};
    NodeId x = N(g, n)->in[0];
    d[0] = chain(g, ct, ir_build(g, OP_EXTERN, &x, &ga, NULL, false, NULL), nd);
}

/* Shape of a matmul operand viewed as a matrix: vectors on the left are
 * rows [1, k], on the right columns [k, 1]. */
static Shape as_matrix(Graph *g, NodeId x, bool left)
{
    const Shape *s = ir_node_shape(g, x);
    if (s->rank == 2)
        return *s;
    Shape m = {.rank = 2};
    m.dims[0] = left ? 1 : s->dims[0];
    m.dims[1] = left ? s->dims[0] : 1;
    return m;
}

static NodeId matmul_must(Graph *g, NodeId a, NodeId b, int flags)
{
    /* Pull negations out so −ε flows as −(Wᵀ ε), not Wᵀ(−ε). */
    if (N(g, a)->op == OP_NEG)
        return ir_neg(g, matmul_must(g, N(g, a)->in[0], b, flags));
    if (N(g, b)->op == OP_NEG)
        return ir_neg(g, matmul_must(g, a, N(g, b)->in[0], flags));
    BuildError err;
    NodeId r = ir_matmul(g, a, b, flags, &err);
    if (r == NO_NODE)
        fep_die("matmul vjp: %s", err.message);
    return r;
}

static NodeId reshape_must(Graph *g, NodeId x, const Shape *s)
{
    if (N(g, x)->op == OP_NEG && !ir_shape_eq(ir_node_shape(g, x), s))
        return ir_neg(g, reshape_must(g, N(g, x)->in[0], s));
    BuildError err;
    NodeId r = ir_reshape(g, x, s, &err);
    if (r == NO_NODE)
        fep_die("matmul vjp: %s", err.message);
    return r;
}

/* C = op(A) @ op(B) on matrix views.  With G the cotangent of C:
 *   dA = G @ op(B)ᵀ  (or its transpose when A was transposed)
 *   dB = op(A)ᵀ @ G  (or its transpose when B was transposed)
 * An unbatched operand fed by batched factors takes the batch sum. */
static NodeId outer(Graph *g, NodeId u, NodeId v, int sum)
{
    Shape us = {.rank = 2, .dims = {ir_node_shape(g, u)->dims[0], 1}};
    Shape vs = {.rank = 2, .dims = {1, ir_node_shape(g, v)->dims[0]}};
    return matmul_must(g, reshape_must(g, u, &us), reshape_must(g, v, &vs), sum);
}

/* C = op(A) @ op(B) on matrix views.  With G the cotangent of C:
 *   dA = G @ op(B)ᵀ  (or its transpose when A was transposed)
 *   dB = op(A)ᵀ @ G  (or its transpose when B was transposed)
 * An unbatched operand fed by batched factors takes the batch sum.  The
 * common matrix–vector case is built without reshapes (dx = Wᵀ g,
 * dW = g ⊗ x) so derived equations read as the thesis writes them. */
static void vjp_matmul(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId a = N(g, n)->in[0], b = N(g, n)->in[1];
    int flags = ir_node_attr(g, n)->ints[0];
    bool ta = flags & MM_TRANS_A, tb = flags & MM_TRANS_B;
    bool batched_ct = N(g, ct)->batched;
    int sum_a = !N(g, a)->batched && (batched_ct || N(g, b)->batched) ? MM_SUM_BATCH : 0;
    int sum_b = !N(g, b)->batched && (batched_ct || N(g, a)->batched) ? MM_SUM_BATCH : 0;
    NodeId da, db;
    if (ir_node_shape(g, a)->rank == 2 && ir_node_shape(g, b)->rank == 1) {
        da = ta ? outer(g, b, ct, sum_a) : outer(g, ct, b, sum_a);
        db = matmul_must(g, a, ct, (ta ? 0 : MM_TRANS_A) | sum_b);
    } else {
        Shape a2s = as_matrix(g, a, true), b2s = as_matrix(g, b, false);
        NodeId a2 = reshape_must(g, a, &a2s), b2 = reshape_must(g, b, &b2s);
        Shape gs = {.rank = 2};
        gs.dims[0] = a2s.dims[ta ? 1 : 0];
        gs.dims[1] = b2s.dims[tb ? 0 : 1];
        NodeId g2 = reshape_must(g, ct, &gs);
        da = ta ? matmul_must(g, b2, g2, (tb ? MM_TRANS_A : 0) | MM_TRANS_B | sum_a)
                : matmul_must(g, g2, b2, (tb ? 0 : MM_TRANS_B) | sum_a);
        db = tb ? matmul_must(g, g2, a2, MM_TRANS_A | (ta ? MM_TRANS_B : 0) | sum_b)
                : matmul_must(g, a2, g2, (ta ? 0 : MM_TRANS_A) | sum_b);
    }
    d[0] = ir_broadcast(g, reshape_must(g, da, ir_node_shape(g, a)), ir_node_shape(g, a), N(g, a)->batched);
    d[1] = ir_broadcast(g, reshape_must(g, db, ir_node_shape(g, b)), ir_node_shape(g, b), N(g, b)->batched);
}

static void vjp_reduce_to(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId x = N(g, n)->in[0];
    d[0] = ir_broadcast(g, ct, ir_node_shape(g, x), N(g, x)->batched);
}

static void vjp_broadcast(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = unbroadcast(g, ct, N(g, n)->in[0]);
}

/* Sum over the last axis, keeping it as size 1. */
static NodeId sum_last(Graph *g, NodeId x)
{
    Shape s = *ir_node_shape(g, x);
    if (s.rank > 0)
        s.dims[s.rank - 1] = 1;
    return ir_reduce_to(g, x, &s, N(g, x)->batched);
}

/* y = softmax(x):  dx = y ⊙ (ct − Σ_last(ct ⊙ y)) */
static void vjp_softmax(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = ir_mul(g, n, ir_sub(g, ct, sum_last(g, ir_mul(g, ct, n))));
}

/* y = log Σ_last exp(x):  dx = ct ⊙ softmax(x) */
static void vjp_logsumexp(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = ir_mul(g, ct, ir_softmax(g, N(g, n)->in[0]));
}

static void vjp_transpose(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = ir_transpose(g, ct, NULL);
}

static void vjp_reshape(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    d[0] = reshape_must(g, ct, ir_node_shape(g, N(g, n)->in[0]));
}

static void vjp_concat(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    NodeId a = N(g, n)->in[0], b = N(g, n)->in[1];
    int na = ir_node_shape(g, a)->dims[0], nb = ir_node_shape(g, b)->dims[0];
    d[0] = unbroadcast(g, ir_slice(g, ct, 0, na, NULL), a);
    d[1] = unbroadcast(g, ir_slice(g, ct, na, na + nb, NULL), b);
}

static void vjp_slice(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    const Attr *a = ir_node_attr(g, n);
    NodeId x = N(g, n)->in[0];
    d[0] = ir_unslice(g, ct, a->ints[0], a->ints[1], ir_node_shape(g, x));
}

static void vjp_unslice(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    const Attr *a = ir_node_attr(g, n);
    d[0] = ir_slice(g, ct, a->ints[0], a->ints[1], NULL);
}

static const VjpFn vjp_rules[N_OPS] = {
#define OP(name, text, arity, flags, shape, e1, e2, vjp) [OP_##name] = vjp,
#include "ops.def"
#undef OP
};

static void accumulate(Graph *g, NodeId *slot, NodeId ct)
{
    *slot = *slot == NO_NODE ? ct : ir_add(g, *slot, ct);
}

/* The load a feedback map replaces x with, or NO_NODE. */
static NodeId feedback_of(Graph *g, NodeId x, const VjpRules *rules)
{
    const Node *n = N(g, x);
    if (!rules || !rules->feedback || n->op != OP_LOAD)
        return NO_NODE;
    int buf = g->attrs[n->attr].ints[0];
    if (buf >= rules->n_feedback || rules->feedback[buf] < 0)
        return NO_NODE;
    return ir_load(g, rules->feedback[buf], n->shape, n->batched);
}

/* A matrix product's cotangents with feedback: the message to each
 * operand is computed as if its partner were the feedback matrix. */
static void vjp_matmul_feedback(Graph *g, NodeId id, NodeId ct, NodeId d[2], const VjpRules *rules)
{
    for (int side = 0; side < 2; side++) {
        NodeId fb = feedback_of(g, N(g, id)->in[side], rules);
        if (fb == NO_NODE)
            continue;
        NodeId in[2] = {N(g, id)->in[0], N(g, id)->in[1]};
        in[side] = fb;
        BuildError err;
        NodeId twin = ir_matmul(g, in[0], in[1], ir_node_attr(g, id)->ints[0], &err);
        if (twin == NO_NODE)
            fep_die("feedback vjp: %s", err.message);
        NodeId dt[2] = {NO_NODE, NO_NODE};
        vjp_matmul(g, twin, ct, dt, rules->no_derivative);
        d[1 - side] = dt[1 - side];
    }
}

void ir_vjp(Graph *g, NodeId root, NodeId seed, NodeId *leaf_ct, int n_buffers, const VjpRules *rules)
{
    bool no_derivative = rules && rules->no_derivative;
    /* Inputs always have smaller ids than their users, so walking ids from
     * the root downwards visits every node after all of its users. */
    int n = root + 1;
    NodeId *ct = xmalloc(sizeof *ct * (size_t)n);
    for (int i = 0; i < n; i++)
        ct[i] = NO_NODE;
    ct[root] = seed;
    for (NodeId id = root; id >= 0; id--) {
        if (ct[id] == NO_NODE)
            continue;
        const Node *node = &g->nodes[id];
        if (node->op == OP_LOAD) {
            int buf = g->attrs[node->attr].ints[0];
            if (buf < n_buffers)
                accumulate(g, &leaf_ct[buf], ct[id]);
            continue;
        }
        NodeId d[2] = {NO_NODE, NO_NODE};
        vjp_rules[node->op](g, id, ct[id], d, no_derivative);
        if (node->op == OP_MATMUL)
            vjp_matmul_feedback(g, id, ct[id], d, rules);
        node = &g->nodes[id];   /* the rules may have grown (moved) the node array */
        for (int i = 0; i < node->n_in; i++)
            if (d[i] != NO_NODE)
                accumulate(g, &ct[node->in[i]], d[i]);
    }
    free(ct);
}
