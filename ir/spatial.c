/* spatial.c — the spatial ops on per-sample [C, H, W] tensors: conv2d
 * (cross-correlation with stride and zero padding), maxpool and avgpool
 * (non-overlapping k × k windows), with their shape rules, VJPs and
 * reference kernels.
 *
 * The set is closed under differentiation, so every VJP is again one of
 * these ops:
 *   y = conv2d(x, K)            dx = back_input(g, K)     dK = back_kernel(x, g)
 *   y = back_input(g, K)        dg = conv2d(c, K)         dK = back_kernel(c, g)
 *   y = back_kernel(x, g)       dx = back_input(g, c)     dg = conv2d(x, c)
 *   y = maxpool(s, v)           dv = scatter(s, c)        (s selects the window maxima)
 *   y = scatter(s, g)           dg = maxpool(s, c)
 *   y = avgpool(x)              dx = avgpool_back(c)      and back again.
 * maxpool(x) itself is maxpool(s = x, v = x): the selection is piecewise
 * constant, so it passes no derivative. */
#include "ir.h"

#include <string.h>

typedef struct Chw {
    int64_t c, h, w;
} Chw;

static Chw chw_of(const Shape *s) { return (Chw){s->dims[0], s->dims[1], s->dims[2]}; }

static bool is_chw(const Shape *s) { return s->rank == 3; }

bool shape_conv2d(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given, bool given_batched,
                  Shape *out, bool *batched, BuildError *err)
{
    const Shape *x = ir_node_shape(g, in[0]), *k = ir_node_shape(g, in[1]);
    char a[64], b[64];
    int stride = attr->ints[0], pad = attr->ints[1];
    if (!is_chw(x) || k->rank != 4) {
        build_fail(err, "conv2d expects an input [C, H, W] and a kernel [O, C, kh, kw], got %s and %s",
                   ir_shape_str(x, a, sizeof a), ir_shape_str(k, b, sizeof b));
        return false;
    }
    if (k->dims[1] != x->dims[0]) {
        build_fail(err, "conv2d channel mismatch: input %s has %d channels but kernel %s expects %d",
                   ir_shape_str(x, a, sizeof a), x->dims[0], ir_shape_str(k, b, sizeof b), k->dims[1]);
        return false;
    }
    if (stride < 1 || pad < 0) {
        build_fail(err, "conv2d needs stride >= 1 and pad >= 0, got stride = %d, pad = %d", stride, pad);
        return false;
    }
    int64_t ho = (x->dims[1] + 2 * pad - k->dims[2]) / stride + 1, wo = (x->dims[2] + 2 * pad - k->dims[3]) / stride + 1;
    if (x->dims[1] + 2 * pad < k->dims[2] || x->dims[2] + 2 * pad < k->dims[3]) {
        build_fail(err, "conv2d kernel %s is larger than the padded input %s", ir_shape_str(k, b, sizeof b),
                   ir_shape_str(x, a, sizeof a));
        return false;
    }
    *out = (Shape){.rank = 3, .dims = {k->dims[0], (int32_t)ho, (int32_t)wo}};
    *batched = g->nodes[in[0]].batched || g->nodes[in[1]].batched;
    return true;
}

bool shape_pool(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given, bool given_batched,
                Shape *out, bool *batched, BuildError *err)
{
    const Shape *x = ir_node_shape(g, in[0]);
    char a[64];
    int k = attr->ints[0];
    if (!is_chw(x) || k < 1 || x->dims[1] < k || x->dims[2] < k) {
        build_fail(err, "pooling expects an input [C, H, W] at least %d × %d, got %s", k, k, ir_shape_str(x, a, sizeof a));
        return false;
    }
    /* gather(s, v) reads v at s's window maxima: v must have s's shape */
    if (op_info[attr->ints[3]].arity == 2 && !ir_shape_eq(ir_node_shape(g, in[1]), x)) {
        char b[64];
        build_fail(err, "maxpool selects on %s but gathers from %s; the shapes must match", ir_shape_str(x, a, sizeof a),
                   ir_shape_str(ir_node_shape(g, in[1]), b, sizeof b));
        return false;
    }
    *out = (Shape){.rank = 3, .dims = {x->dims[0], x->dims[1] / k, x->dims[2] / k}};
    *batched = g->nodes[in[0]].batched || (op_info[attr->ints[3]].arity == 2 && g->nodes[in[1]].batched);
    return true;
}

/* ---- builders ---- */

static NodeId spatial(Graph *g, Op op, NodeId a, NodeId b, Attr attr, const Shape *given, bool batched)
{
    NodeId in[2] = {a, b};
    BuildError err;
    NodeId r = ir_build(g, op, in, &attr, given, batched, &err);
    if (r == NO_NODE)
        fep_die("%s: %s", op_info[op].name, err.message);
    return r;
}

static bool any_batched(const Graph *g, NodeId a, NodeId b) { return g->nodes[a].batched || g->nodes[b].batched; }

NodeId ir_conv2d(Graph *g, NodeId x, NodeId k, int stride, int pad, BuildError *err)
{
    NodeId in[2] = {x, k};
    Attr a = {.ints = {stride, pad}};
    return ir_build(g, OP_CONV2D, in, &a, NULL, false, err);
}

NodeId ir_maxpool(Graph *g, NodeId x, int k, BuildError *err)
{
    NodeId in[2] = {x, x};
    Attr a = {.ints = {k}};
    return ir_build(g, OP_MAXPOOL_GATHER, in, &a, NULL, false, err);
}

NodeId ir_avgpool(Graph *g, NodeId x, int k, BuildError *err)
{
    Attr a = {.ints = {k}};
    return ir_build(g, OP_AVGPOOL, &x, &a, NULL, false, err);
}

static const Node *node(Graph *g, NodeId id) { return &g->nodes[id]; }

/* Gives r (already of like's per-sample shape) like's batching: the batch
 * sum when r is batched and like is not, a broadcast when like is batched
 * and r is not (the cotangent of a batch-summed back_kernel is unbatched,
 * yet its batched operand needs one per sample). */
static NodeId fit(Graph *g, NodeId r, NodeId like)
{
    if (node(g, r)->batched && !node(g, like)->batched)
        return ir_reduce_to(g, r, ir_node_shape(g, like), false);
    return ir_broadcast(g, r, ir_node_shape(g, like), node(g, like)->batched);
}

/* Makes a kernel cotangent: batch-summed when the kernel is shared. */
static NodeId back_kernel(Graph *g, NodeId x, NodeId grad, const Attr *conv, NodeId kernel)
{
    Attr a = {.ints = {conv->ints[0], conv->ints[1]}};
    bool shared = !node(g, kernel)->batched && any_batched(g, x, grad);
    if (shared)
        a.ints[2] = MM_SUM_BATCH;
    NodeId r = spatial(g, OP_CONV2D_BACK_KERNEL, x, grad, a, ir_node_shape(g, kernel), !shared && any_batched(g, x, grad));
    return ir_broadcast(g, r, ir_node_shape(g, kernel), node(g, kernel)->batched);
}

static NodeId back_input(Graph *g, NodeId grad, NodeId kernel, const Attr *conv, NodeId x)
{
    Attr a = {.ints = {conv->ints[0], conv->ints[1]}};
    NodeId r = spatial(g, OP_CONV2D_BACK_INPUT, grad, kernel, a, ir_node_shape(g, x), any_batched(g, grad, kernel));
    return fit(g, r, x);
}

static NodeId conv(Graph *g, NodeId x, NodeId kernel, const Attr *conv_attr, NodeId like)
{
    BuildError err;
    NodeId r = ir_conv2d(g, x, kernel, conv_attr->ints[0], conv_attr->ints[1], &err);
    if (r == NO_NODE)
        fep_die("conv2d vjp: %s", err.message);
    return fit(g, r, like);
}

/* ---- VJPs (see the table in the header comment) ---- */

void vjp_conv2d(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId x = node(g, n)->in[0], k = node(g, n)->in[1];
    d[0] = back_input(g, ct, k, &a, x);
    d[1] = back_kernel(g, x, ct, &a, k);
}

void vjp_conv2d_back_input(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId grad = node(g, n)->in[0], k = node(g, n)->in[1];
    d[0] = conv(g, ct, k, &a, grad);
    d[1] = back_kernel(g, ct, grad, &a, k);
}

void vjp_conv2d_back_kernel(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId x = node(g, n)->in[0], grad = node(g, n)->in[1];
    d[0] = back_input(g, grad, ct, &a, x);
    d[1] = conv(g, x, ct, &a, grad);
}

void vjp_maxpool_gather(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId sel = node(g, n)->in[0], v = node(g, n)->in[1];
    NodeId r = spatial(g, OP_MAXPOOL_SCATTER, sel, ct, a, ir_node_shape(g, v), any_batched(g, sel, ct));
    d[1] = ir_reduce_to(g, r, ir_node_shape(g, v), node(g, v)->batched);
}

void vjp_maxpool_scatter(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId sel = node(g, n)->in[0], grad = node(g, n)->in[1];
    NodeId in[2] = {sel, ct};
    BuildError err;
    NodeId r = ir_build(g, OP_MAXPOOL_GATHER, in, &a, NULL, false, &err);
    if (r == NO_NODE)
        fep_die("maxpool vjp: %s", err.message);
    d[1] = ir_reduce_to(g, r, ir_node_shape(g, grad), node(g, grad)->batched);
}

void vjp_avgpool(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId x = node(g, n)->in[0];
    d[0] = spatial(g, OP_AVGPOOL_BACK, ct, NO_NODE, a, ir_node_shape(g, x), node(g, ct)->batched);
    d[0] = ir_broadcast(g, d[0], ir_node_shape(g, x), node(g, x)->batched);
}

void vjp_avgpool_back(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd)
{
    Attr a = *ir_node_attr(g, n);
    NodeId grad = node(g, n)->in[0];
    BuildError err;
    NodeId r = ir_build(g, OP_AVGPOOL, &ct, &a, NULL, false, &err);
    if (r == NO_NODE)
        fep_die("avgpool vjp: %s", err.message);
    d[0] = ir_reduce_to(g, r, ir_node_shape(g, grad), node(g, grad)->batched);
}

/* ---- reference kernels ---- */

typedef struct ConvDims {
    Chw x, y;             /* input and output [C, H, W] */
    int64_t kh, kw, stride, pad;
} ConvDims;

/* Calls the body for every (o, c, i, j, u, v) whose input pixel is inside. */
#define FOR_TAPS(d, body)                                                                    \
    for (int64_t o = 0; o < (d).y.c; o++)                                                    \
        for (int64_t c = 0; c < (d).x.c; c++)                                                \
            for (int64_t i = 0; i < (d).y.h; i++)                                            \
                for (int64_t u = 0; u < (d).kh; u++) {                                       \
                    int64_t r = i * (d).stride + u - (d).pad;                                \
                    if (r < 0 || r >= (d).x.h)                                               \
                        continue;                                                            \
                    for (int64_t j = 0; j < (d).y.w; j++)                                    \
                        for (int64_t v = 0; v < (d).kw; v++) {                               \
                            int64_t q = j * (d).stride + v - (d).pad;                        \
                            if (q < 0 || q >= (d).x.w)                                       \
                                continue;                                                    \
                            int64_t xi = (c * (d).x.h + r) * (d).x.w + q;                    \
                            int64_t yi = (o * (d).y.h + i) * (d).y.w + j;                    \
                            int64_t ki = ((o * (d).x.c + c) * (d).kh + u) * (d).kw + v;      \
                            body;                                                            \
                        }                                                                    \
                }

static void conv_sample(const ConvDims *d, const double *x, const double *k, double *y)
{
    FOR_TAPS(*d, y[yi] += k[ki] * x[xi]);
}

static void back_input_sample(const ConvDims *d, const double *gy, const double *k, double *dx)
{
    FOR_TAPS(*d, dx[xi] += k[ki] * gy[yi]);
}

static void back_kernel_sample(const ConvDims *d, const double *x, const double *gy, double *dk)
{
    FOR_TAPS(*d, dk[ki] += gy[yi] * x[xi]);
}

#undef FOR_TAPS

/* One window's maximum position in channel c, window (i, j). */
static int64_t argmax_window(const double *s, Chw x, int64_t k, int64_t c, int64_t i, int64_t j)
{
    int64_t best = (c * x.h + i * k) * x.w + j * k;
    for (int64_t u = 0; u < k; u++)
        for (int64_t v = 0; v < k; v++) {
            int64_t at = (c * x.h + i * k + u) * x.w + j * k + v;
            if (s[at] > s[best])
                best = at;
        }
    return best;
}

static void pool_sample(Op op, Chw x, Chw y, int64_t k, const double *a, const double *b, double *out)
{
    for (int64_t c = 0; c < y.c; c++)
        for (int64_t i = 0; i < y.h; i++)
            for (int64_t j = 0; j < y.w; j++) {
                int64_t yi = (c * y.h + i) * y.w + j;
                if (op == OP_MAXPOOL_GATHER)
                    out[yi] = b[argmax_window(a, x, k, c, i, j)];
                else if (op == OP_MAXPOOL_SCATTER)
                    out[argmax_window(a, x, k, c, i, j)] += b[yi];
                else
                    for (int64_t u = 0; u < k; u++)
                        for (int64_t v = 0; v < k; v++) {
                            int64_t xi = (c * x.h + i * k + u) * x.w + j * k + v;
                            if (op == OP_AVGPOOL)
                                out[yi] += a[xi] / (double)(k * k);
                            else
                                out[xi] += a[yi] / (double)(k * k);
                        }
            }
}

void ir_spatial_eval(const Graph *g, NodeId id, const double *const ins[2], double *out, int batch)
{
    const Node *n = &g->nodes[id];
    const Attr *a = ir_node_attr(g, id);
    Op op = (Op)n->op;
    int64_t samples = batch;
    bool b0 = g->nodes[n->in[0]].batched, b1 = n->n_in > 1 && g->nodes[n->in[1]].batched;
    bool out_batched = n->batched;
    int64_t n0 = ir_numel(ir_node_shape(g, n->in[0])), n1 = n->n_in > 1 ? ir_numel(ir_node_shape(g, n->in[1])) : 0;
    int64_t no = ir_numel(ir_shape(g, n->shape));
    if (!b0 && !b1)
        samples = 1;
    for (int64_t s = 0; s < samples; s++) {
        const double *x0 = ins[0] + (b0 ? s * n0 : 0), *x1 = n->n_in > 1 ? ins[1] + (b1 ? s * n1 : 0) : NULL;
        double *y = out + (out_batched ? s * no : 0);
        if (op == OP_CONV2D || op == OP_CONV2D_BACK_INPUT || op == OP_CONV2D_BACK_KERNEL) {
            /* Recover the forward conv's geometry from whichever operands hold it. */
            const Shape *k = ir_node_shape(g, op == OP_CONV2D_BACK_KERNEL ? id : n->in[1]);
            const Shape *x = ir_node_shape(g, op == OP_CONV2D_BACK_INPUT ? id : n->in[0]);
            const Shape *yv = ir_node_shape(g, op == OP_CONV2D ? id : op == OP_CONV2D_BACK_INPUT ? n->in[0] : n->in[1]);
            ConvDims d = {chw_of(x), chw_of(yv), k->dims[2], k->dims[3], a->ints[0], a->ints[1]};
            if (op == OP_CONV2D)
                conv_sample(&d, x0, x1, y);
            else if (op == OP_CONV2D_BACK_INPUT)
                back_input_sample(&d, x0, x1, y);
            else
                back_kernel_sample(&d, x0, x1, y);
        } else {
            bool up = op == OP_MAXPOOL_SCATTER || op == OP_AVGPOOL_BACK;
            Chw big = chw_of(ir_node_shape(g, up ? id : n->in[0]));
            Chw small = chw_of(ir_node_shape(g, up ? (op == OP_AVGPOOL_BACK ? n->in[0] : n->in[1]) : id));
            if (op == OP_MAXPOOL_SCATTER || op == OP_MAXPOOL_GATHER)
                big = chw_of(ir_node_shape(g, n->in[0]));
            pool_sample(op, big, small, a->ints[0], x0, x1, y);
        }
    }
}
