/* build.c — checked node construction: the shape-rule column of ops.def
 * and the builders every other stage uses to make nodes.
 *
 * A shape rule computes the per-sample result shape and batching of an op
 * from its inputs (and, for ops like RESHAPE or REDUCE_TO, a caller-given
 * shape) or explains in BuildError why the inputs do not fit.  Builders
 * that derivations call with shapes known to be right die on a mismatch:
 * that is a compiler bug, not a user error. */
#include "ir.h"

#include <stdio.h>
#include <string.h>

void build_fail(BuildError *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

#define SHP(buf, s) ir_shape_str((s), buf, sizeof buf)

bool ir_broadcast_shapes(const Shape *a, const Shape *b, Shape *out, BuildError *err)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    Shape r = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        int ia = a->rank - rank + i, ib = b->rank - rank + i;
        int32_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[64], sb[64];
            build_fail(err, "cannot broadcast shapes %s and %s (dimension %d: %d vs %d)", SHP(sa, a),
                 SHP(sb, b), i, da, db);
            return false;
        }
        r.dims[i] = da == 1 ? db : da;
    }
    *out = r;
    return true;
}

static bool shape_broadcast(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                            bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    *batched = g->nodes[in[0]].batched || g->nodes[in[1]].batched;
    return ir_broadcast_shapes(ir_node_shape(g, in[0]), ir_node_shape(g, in[1]), out, err);
}

static bool shape_same(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                       bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    *out = *ir_node_shape(g, in[0]);
    *batched = g->nodes[in[0]].batched;
    return true;
}

/* LOAD, FILL, RESHAPE, REDUCE_TO, BROADCAST, UNSLICE: the caller gives the
 * result shape; this checks it is reachable from the input. */
static bool shape_given(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                        bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    *out = *given;
    *batched = given_batched;
    if (!in)
        return true;
    const Shape *x = ir_node_shape(g, in[0]);
    bool xb = g->nodes[in[0]].batched;
    char sa[64], sb[64];
    Shape bc;
    switch (attr ? (int)attr->ints[3] : 0) {
    case OP_RESHAPE:
        *batched = xb;
        if (ir_numel(x) != ir_numel(given)) {
            build_fail(err, "cannot reshape %s (%lld elements) to %s (%lld elements)", SHP(sa, x),
                 (long long)ir_numel(x), SHP(sb, given), (long long)ir_numel(given));
            return false;
        }
        return true;
    case OP_REDUCE_TO:
        if ((given_batched && !xb) || !ir_broadcast_shapes(given, x, &bc, NULL) ||
            !ir_shape_eq(&bc, x)) {
            build_fail(err, "cannot sum %s down to %s", SHP(sa, x), SHP(sb, given));
            return false;
        }
        return true;
    case OP_BROADCAST:
        if ((xb && !given_batched) || !ir_broadcast_shapes(given, x, &bc, NULL) ||
            !ir_shape_eq(&bc, given)) {
            build_fail(err, "cannot broadcast %s to %s", SHP(sa, x), SHP(sb, given));
            return false;
        }
        return true;
    case OP_UNSLICE:
        *batched = xb;
        if (x->rank != given->rank || x->rank < 1 || attr->ints[1] - attr->ints[0] != x->dims[0] ||
            attr->ints[1] > given->dims[0]) {
            build_fail(err, "cannot place %s at [%d:%d] of %s", SHP(sa, x), attr->ints[0], attr->ints[1],
                 SHP(sb, given));
            return false;
        }
        return true;
    }
    return true;
}

static bool shape_matmul(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                         bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    const Shape *a = ir_node_shape(g, in[0]), *b = ir_node_shape(g, in[1]);
    int flags = attr->ints[0];
    char sa[64], sb[64];
    if (a->rank < 1 || a->rank > 2 || b->rank < 1 || b->rank > 2) {
        build_fail(err, "matrix product needs vectors or matrices, got %s @ %s", SHP(sa, a), SHP(sb, b));
        return false;
    }
    /* A vector's orientation is its position (row on the left, column on
     * the right); the executors and vjp_matmul read MM_TRANS_* as applying
     * to a stored matrix, so a transpose flag on a vector is refused. */
    if (((flags & MM_TRANS_A) && a->rank != 2) || ((flags & MM_TRANS_B) && b->rank != 2)) {
        build_fail(err, "matrix product %s @ %s: a transpose flag needs a matrix operand", SHP(sa, a), SHP(sb, b));
        return false;
    }
    /* Operand dims after the optional transposes: a is (m, k), b is (k, n). */
    int32_t am = a->rank == 2 ? a->dims[(flags & MM_TRANS_A) ? 1 : 0] : 1;
    int32_t ak = a->rank == 2 ? a->dims[(flags & MM_TRANS_A) ? 0 : 1] : a->dims[0];
    int32_t bk = b->rank == 2 ? b->dims[(flags & MM_TRANS_B) ? 1 : 0] : b->dims[0];
    int32_t bn = b->rank == 2 ? b->dims[(flags & MM_TRANS_B) ? 0 : 1] : 1;
    if (ak != bk) {
        build_fail(err, "matrix product shapes %s @ %s do not match: %d columns vs %d rows", SHP(sa, a),
             SHP(sb, b), ak, bk);
        return false;
    }
    Shape r = {0};
    if (a->rank == 2)
        r.dims[r.rank++] = am;
    if (b->rank == 2)
        r.dims[r.rank++] = bn;
    *out = r;
    bool any = g->nodes[in[0]].batched || g->nodes[in[1]].batched;
    *batched = (flags & MM_SUM_BATCH) ? false : any;
    return true;
}

static bool shape_lastaxis1(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                            bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    *out = *ir_node_shape(g, in[0]);
    if (out->rank > 0)
        out->dims[out->rank - 1] = 1;
    *batched = g->nodes[in[0]].batched;
    return true;
}

static bool shape_transpose(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                            bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    const Shape *x = ir_node_shape(g, in[0]);
    char sa[64];
    if (x->rank != 2) {
        build_fail(err, "transpose expects a matrix, got shape %s", SHP(sa, x));
        return false;
    }
    *out = *x;
    out->dims[0] = x->dims[1];
    out->dims[1] = x->dims[0];
    *batched = g->nodes[in[0]].batched;
    return true;
}

static bool shape_concat(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                         bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    const Shape *a = ir_node_shape(g, in[0]), *b = ir_node_shape(g, in[1]);
    char sa[64], sb[64];
    bool ok = a->rank >= 1 && a->rank == b->rank;
    for (int i = 1; ok && i < a->rank; i++)
        ok = a->dims[i] == b->dims[i];
    if (!ok) {
        build_fail(err, "cannot concatenate shapes %s and %s along their first axis", SHP(sa, a),
             SHP(sb, b));
        return false;
    }
    *out = *a;
    out->dims[0] = a->dims[0] + b->dims[0];
    *batched = g->nodes[in[0]].batched || g->nodes[in[1]].batched;
    return true;
}

static bool shape_slice(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                        bool given_batched, Shape *out, bool *batched, BuildError *err)
{
    const Shape *x = ir_node_shape(g, in[0]);
    char sa[64];
    int start = attr->ints[0], end = attr->ints[1];
    if (x->rank < 1 || start < 0 || end > x->dims[0] || start >= end) {
        build_fail(err, "slice [%d:%d] is out of range for shape %s", start, end, SHP(sa, x));
        return false;
    }
    *out = *x;
    out->dims[0] = end - start;
    *batched = g->nodes[in[0]].batched;
    return true;
}

static const ShapeRule shape_rules[N_OPS] = {
#define OP(name, text, arity, flags, shape, e1, e2, vjp) [OP_##name] = shape,
#include "ops.def"
#undef OP
};

void ir_set_span(Graph *g, Span span) { g->cur_span = span; }

NodeId ir_build(Graph *g, Op op, const NodeId *in, const Attr *attr, const Shape *given,
                bool given_batched, BuildError *err)
{
    Attr rule_attr = {0};
    if (attr)
        rule_attr = *attr;
    rule_attr.ints[3] = op;   /* lets shape_given tell its ops apart */
    Shape out;
    bool batched = false;
    if (!shape_rules[op](g, op_info[op].arity ? in : NULL, &rule_attr, given, given_batched, &out,
                         &batched, err))
        return NO_NODE;
    if (attr) {
        Attr stored = *attr;
        stored.ints[3] = 0;
        return ir_intern(g, op, op_info[op].arity, in, ir_shape_id(g, &out), batched, &stored,
                         g->cur_span);
    }
    return ir_intern(g, op, op_info[op].arity, in, ir_shape_id(g, &out), batched, NULL, g->cur_span);
}

static bool is_fill(const Graph *g, NodeId x, double *value);

/* For derivation code: a shape failure here is a compiler bug. */
static NodeId must(NodeId id, const BuildError *err, const char *what)
{
    if (id == NO_NODE)
        fep_die("%s: %s", what, err->message);
    return id;
}

NodeId ir_load(Graph *g, int buf, int32_t shape, bool batched)
{
    Attr a = {.ints = {buf}};
    return ir_build(g, OP_LOAD, NULL, &a, &g->shapes[shape], batched, NULL);
}

NodeId ir_fill(Graph *g, double value, const Shape *shape, bool batched)
{
    Attr a = {.num = value};
    if (value == 0)
        a.num = 0;   /* one zero: -0.0 and 0.0 intern together */
    return ir_build(g, OP_FILL, NULL, &a, shape, batched, NULL);
}

NodeId ir_scalar(Graph *g, double value)
{
    Shape s = {0};
    return ir_fill(g, value, &s, false);
}

NodeId ir_unary(Graph *g, Op op, NodeId x) { return ir_build(g, op, &x, NULL, NULL, false, NULL); }

NodeId ir_binary(Graph *g, Op op, NodeId a, NodeId b, BuildError *err)
{
    NodeId in[2] = {a, b};
    return ir_build(g, op, in, NULL, NULL, false, err);
}

NodeId ir_matmul(Graph *g, NodeId a, NodeId b, int flags, BuildError *err)
{
    NodeId in[2] = {a, b};
    Attr at = {.ints = {flags}};
    NodeId r = ir_build(g, OP_MATMUL, in, &at, NULL, false, err);
    double v;
    /* A product with zeros (h[t-1] before the first step) is zeros. */
    if (r != NO_NODE && ((is_fill(g, a, &v) && v == 0) || (is_fill(g, b, &v) && v == 0)))
        return ir_fill(g, 0, ir_node_shape(g, r), g->nodes[r].batched);
    return r;
}

NodeId ir_reduce_to(Graph *g, NodeId x, const Shape *shape, bool batched)
{
    const Node *n = &g->nodes[x];
    if (ir_shape_eq(&g->shapes[n->shape], shape) && n->batched == batched)
        return x;
    BuildError err;
    return must(ir_build(g, OP_REDUCE_TO, &x, NULL, shape, batched, &err), &err, "reduce_to");
}

NodeId ir_broadcast(Graph *g, NodeId x, const Shape *shape, bool batched)
{
    const Node *n = &g->nodes[x];
    if (ir_shape_eq(&g->shapes[n->shape], shape) && n->batched == batched)
        return x;
    BuildError err;
    return must(ir_build(g, OP_BROADCAST, &x, NULL, shape, batched, &err), &err, "broadcast");
}

NodeId ir_softmax(Graph *g, NodeId x) { return ir_build(g, OP_SOFTMAX, &x, NULL, NULL, false, NULL); }
NodeId ir_logsumexp(Graph *g, NodeId x) { return ir_build(g, OP_LOGSUMEXP, &x, NULL, NULL, false, NULL); }

NodeId ir_transpose(Graph *g, NodeId x, BuildError *err)
{
    return ir_build(g, OP_TRANSPOSE, &x, NULL, NULL, false, err);
}

NodeId ir_reshape(Graph *g, NodeId x, const Shape *shape, BuildError *err)
{
    if (ir_shape_eq(ir_node_shape(g, x), shape))
        return x;
    return ir_build(g, OP_RESHAPE, &x, NULL, shape, false, err);
}

NodeId ir_concat(Graph *g, NodeId a, NodeId b, BuildError *err)
{
    NodeId in[2] = {a, b};
    return ir_build(g, OP_CONCAT, in, NULL, NULL, false, err);
}

NodeId ir_slice(Graph *g, NodeId x, int start, int end, BuildError *err)
{
    Attr a = {.ints = {start, end}};
    return ir_build(g, OP_SLICE, &x, &a, NULL, false, err);
}

NodeId ir_unslice(Graph *g, NodeId x, int start, int end, const Shape *full)
{
    Attr a = {.ints = {start, end}};
    BuildError err;
    return must(ir_build(g, OP_UNSLICE, &x, &a, full, false, &err), &err, "unslice");
}

NodeId ir_extern(Graph *g, NodeId x, int extern_index)
{
    Attr a = {.ints = {extern_index}};
    return ir_build(g, OP_EXTERN, &x, &a, NULL, false, NULL);
}

static NodeId arith(Graph *g, Op op, NodeId a, NodeId b)
{
    BuildError err;
    return must(ir_binary(g, op, a, b, &err), &err, op_info[op].name);
}

static bool is_fill(const Graph *g, NodeId x, double *value)
{
    if (g->nodes[x].op != OP_FILL)
        return false;
    *value = g->attrs[g->nodes[x].attr].num;
    return true;
}

static bool is_neg(const Graph *g, NodeId x) { return g->nodes[x].op == OP_NEG; }

/* `x` already has the shape and batching of `op(x, other)`, so an identity
 * element may be dropped without changing the result's type. */
static bool dominates(const Graph *g, NodeId x, NodeId other)
{
    Shape out;
    const Node *a = &g->nodes[x], *b = &g->nodes[other];
    return (a->batched || !b->batched) && ir_broadcast_shapes(&g->shapes[a->shape], &g->shapes[b->shape], &out, NULL) &&
           ir_shape_eq(&out, &g->shapes[a->shape]);
}

/* Folds two constants into one FILL of the broadcast shape. */
static NodeId fold(Graph *g, Op op, NodeId a, NodeId b, double va, double vb)
{
    Shape out;
    ir_broadcast_shapes(ir_node_shape(g, a), ir_node_shape(g, b), &out, NULL);
    return ir_fill(g, op_info[op].eval2(va, vb), &out, g->nodes[a].batched || g->nodes[b].batched);
}

/* The convenience builders canonicalise as they build (constants folded,
 * x + 0 and x · 1 dropped, negations pulled outwards) so that derived
 * equations print the way a researcher writes them: ε_h − W̄ᵀ(f' ⊙ ε). */
NodeId ir_add(Graph *g, NodeId a, NodeId b)
{
    double va, vb;
    bool ca = is_fill(g, a, &va), cb = is_fill(g, b, &vb);
    if (ca && cb)
        return fold(g, OP_ADD, a, b, va, vb);
    if (cb && vb == 0 && dominates(g, a, b))
        return a;
    if (ca && va == 0 && dominates(g, b, a))
        return b;
    if (is_neg(g, a) && is_neg(g, b))
        return ir_neg(g, ir_add(g, g->nodes[a].in[0], g->nodes[b].in[0]));
    if (is_neg(g, b))
        return arith(g, OP_SUB, a, g->nodes[b].in[0]);
    if (is_neg(g, a))
        return arith(g, OP_SUB, b, g->nodes[a].in[0]);
    return arith(g, OP_ADD, a, b);
}

NodeId ir_sub(Graph *g, NodeId a, NodeId b)
{
    double va, vb;
    bool ca = is_fill(g, a, &va), cb = is_fill(g, b, &vb);
    if (ca && cb)
        return fold(g, OP_SUB, a, b, va, vb);
    if (cb && vb == 0 && dominates(g, a, b))
        return a;
    if (is_neg(g, b))
        return ir_add(g, a, g->nodes[b].in[0]);
    if (is_neg(g, a))
        return ir_neg(g, ir_add(g, g->nodes[a].in[0], b));
    return arith(g, OP_SUB, a, b);
}

NodeId ir_mul(Graph *g, NodeId a, NodeId b)
{
    double va, vb;
    bool ca = is_fill(g, a, &va), cb = is_fill(g, b, &vb);
    if (ca && cb)
        return fold(g, OP_MUL, a, b, va, vb);
    if (cb && vb == 1 && dominates(g, a, b))
        return a;
    if (ca && va == 1 && dominates(g, b, a))
        return b;
    if (is_neg(g, a))
        return ir_neg(g, ir_mul(g, g->nodes[a].in[0], b));
    if (is_neg(g, b))
        return ir_neg(g, ir_mul(g, a, g->nodes[b].in[0]));
    return arith(g, OP_MUL, a, b);
}

NodeId ir_div(Graph *g, NodeId a, NodeId b)
{
    double va, vb;
    if (is_fill(g, a, &va) && is_fill(g, b, &vb))
        return fold(g, OP_DIV, a, b, va, vb);
    if (is_fill(g, b, &vb) && vb == 1 && dominates(g, a, b))
        return a;
    if (is_neg(g, a))
        return ir_neg(g, ir_div(g, g->nodes[a].in[0], b));
    return arith(g, OP_DIV, a, b);
}

NodeId ir_neg(Graph *g, NodeId a)
{
    double v;
    if (is_fill(g, a, &v))
        return ir_fill(g, -v, ir_node_shape(g, a), g->nodes[a].batched);
    if (is_neg(g, a))
        return g->nodes[a].in[0];
    return ir_unary(g, OP_NEG, a);
}
