/* interp.c — the reference executor: evaluates phase programs node by node.
 *
 * It is deliberately plain — no fusion, no hoisting — so that it can check
 * every other backend.  All arithmetic is done in double; in f32 mode each
 * node's result is rounded to float, which reproduces single-precision
 * storage between ops.  Nodes are evaluated in increasing id order (ids are
 * topological) and freed after their last use in the phase.  Extern calls
 * go through libffi with the declared float(float) signature. */
#include "ir.h"

#include <ffi.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/gemm.h"

typedef struct Value {
    double *data;         /* batch × numel when batched, else numel */
    int uses;             /* remaining readers in this phase */
} Value;

typedef struct Interp {
    const Model *m;
    const Graph *g;
    Storage *st;
    Value *values;        /* indexed by node id */
    char *err;
    size_t errlen;
    bool failed;
} Interp;

static int64_t node_numel(const Graph *g, NodeId id) { return ir_numel(ir_node_shape(g, id)); }

static int64_t node_len(const Interp *in, NodeId id)
{
    return node_numel(in->g, id) * (in->g->nodes[id].batched ? in->st->batch : 1);
}

/* ---- broadcasting ---- */

/* The index space of a value: the batch dimension, then per-sample dims. */
typedef struct Space {
    int rank;
    int64_t dims[FEP_MAX_RANK + 1];
} Space;

static Space space_of(const Interp *in, NodeId id)
{
    const Shape *s = ir_node_shape(in->g, id);
    Space sp = {.rank = s->rank + 1};
    sp.dims[0] = in->g->nodes[id].batched ? in->st->batch : 1;
    for (int i = 0; i < s->rank; i++)
        sp.dims[i + 1] = s->dims[i];
    return sp;
}

/* Strides that read `other` while walking `space`, with 0 on the axes
 * where `other` is broadcast (size 1 or absent). */
static void strides_into(const Interp *in, const Space *space, NodeId other, int64_t *strides)
{
    const Shape *s = ir_node_shape(in->g, other);
    int64_t stride = 1;
    int offset = space->rank - 1 - s->rank;
    for (int d = space->rank - 1; d >= 1; d--) {
        int od = d - 1 - offset;
        if (od >= 0 && s->dims[od] != 1) {
            strides[d] = stride;
            stride *= s->dims[od];
        } else {
            strides[d] = 0;
            if (od >= 0)
                stride *= s->dims[od];
        }
    }
    strides[0] = in->g->nodes[other].batched ? stride : 0;
}

/* Calls visit(i_space, i_a, i_b) for every point of `space`. */
typedef void (*Visit2)(void *ctx, int64_t at, int64_t ia, int64_t ib);

static void walk(const Space *space, const int64_t *sa, const int64_t *sb, Visit2 visit, void *ctx)
{
    int64_t idx[FEP_MAX_RANK + 1] = {0};
    int64_t total = 1;
    for (int d = 0; d < space->rank; d++)
        total *= space->dims[d];
    int64_t ia = 0, ib = 0;
    for (int64_t at = 0; at < total; at++) {
        visit(ctx, at, ia, ib);
        for (int d = space->rank - 1; d >= 0; d--) {
            idx[d]++;
            ia += sa[d];
            ib += sb ? sb[d] : 0;
            if (idx[d] < space->dims[d])
                break;
            ia -= sa[d] * space->dims[d];
            ib -= sb ? sb[d] * space->dims[d] : 0;
            idx[d] = 0;
        }
    }
}

typedef struct BinCtx {
    double *out;
    const double *a, *b;
    ScalarFn2 f;
} BinCtx;

static void visit_binary(void *c, int64_t at, int64_t ia, int64_t ib)
{
    BinCtx *x = c;
    x->out[at] = x->f(x->a[ia], x->b[ib]);
}

static void eval_binary(Interp *in, NodeId id, double *out)
{
    const Node *n = &in->g->nodes[id];
    const double *a = in->values[n->in[0]].data, *b = in->values[n->in[1]].data;
    ScalarFn2 f = op_info[n->op].eval2;
    int64_t len = node_len(in, id);
    if (node_len(in, n->in[0]) == len && node_len(in, n->in[1]) == len) {
        for (int64_t i = 0; i < len; i++)
            out[i] = f(a[i], b[i]);
        return;
    }
    Space sp = space_of(in, id);
    int64_t sa[FEP_MAX_RANK + 1], sb[FEP_MAX_RANK + 1];
    strides_into(in, &sp, n->in[0], sa);
    strides_into(in, &sp, n->in[1], sb);
    BinCtx ctx = {out, a, b, f};
    walk(&sp, sa, sb, visit_binary, &ctx);
}

typedef struct CopyCtx {
    double *out;
    const double *x;
    bool accumulate;
} CopyCtx;

static void visit_gather(void *c, int64_t at, int64_t ix, int64_t unused)
{
    CopyCtx *x = c;
    x->out[at] = x->x[ix];
}

static void visit_scatter_add(void *c, int64_t at, int64_t io, int64_t unused)
{
    CopyCtx *x = c;
    x->out[io] += x->x[at];
}

/* out (node id's space) ← x broadcast. */
static void eval_broadcast(Interp *in, NodeId id, double *out)
{
    NodeId x = in->g->nodes[id].in[0];
    Space sp = space_of(in, id);
    int64_t sx[FEP_MAX_RANK + 1];
    strides_into(in, &sp, x, sx);
    CopyCtx ctx = {out, in->values[x].data, false};
    walk(&sp, sx, NULL, visit_gather, &ctx);
}

/* out ← x summed over the axes where out is broadcast. */
static void eval_reduce_to(Interp *in, NodeId id, double *out)
{
    NodeId x = in->g->nodes[id].in[0];
    memset(out, 0, sizeof *out * (size_t)node_len(in, id));
    Space sp = space_of(in, x);
    int64_t so[FEP_MAX_RANK + 1];
    strides_into(in, &sp, id, so);
    CopyCtx ctx = {out, in->values[x].data, true};
    walk(&sp, so, NULL, visit_scatter_add, &ctx);
}

/* ---- matrix products ---- */

/* C[M×N] += op(A) op(B) as an f32 execution computes it: in float, with
 * the kernels the compiled code calls (runtime/gemm.c).  The f64 path below
 * stays on independent code (a plain loop), as the reference. */
static void gemm_f32(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta, const double *B,
                     int64_t ldb, bool tb, double *C, int64_t ldc)
{
    int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;
    float *a = xmalloc(sizeof *a * (size_t)(na + 1)), *b = xmalloc(sizeof *b * (size_t)(nb + 1));
    float *c = xmalloc(sizeof *c * (size_t)(M * N + 1));
    for (int64_t i = 0; i < na; i++)
        a[i] = (float)A[i];
    for (int64_t i = 0; i < nb; i++)
        b[i] = (float)B[i];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            c[i * N + j] = (float)C[i * ldc + j];
    fep_sgemm(M, N, K, a, lda, ta, b, ldb, tb, c, N, true);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            C[i * ldc + j] = c[i * N + j];
    free(a);
    free(b);
    free(c);
}

/* C[M×N] += op(A) op(B), row-major, with leading dimensions: in f64 a
 * plain loop, which shares no code with the compiled kernels (on the
 * fmnist models it measured as fast as Debian's OpenBLAS, whose thread pool
 * fepc no longer has to carry). */
static void gemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta, const double *B,
                 int64_t ldb, bool tb, double *C, int64_t ldc, bool f32)
{
    if (f32) {
        gemm_f32(M, N, K, A, lda, ta, B, ldb, tb, C, ldc);
        return;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t p = 0; p < K; p++) {
            double a = ta ? A[p * lda + i] : A[i * lda + p];
            if (a == 0)
                continue;
            double *c = C + i * ldc;
            if (!tb) {
                const double *b = B + p * ldb;
                for (int64_t j = 0; j < N; j++)
                    c[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < N; j++)
                    c[j] += a * B[j * ldb + p];
            }
        }
}

typedef struct MatView {
    int64_t rows, cols;   /* stored layout */
} MatView;

static MatView view_of(const Graph *g, NodeId x, bool left)
{
    const Shape *s = ir_node_shape(g, x);
    if (s->rank == 2)
        return (MatView){s->dims[0], s->dims[1]};
    return left ? (MatView){1, s->dims[0]} : (MatView){s->dims[0], 1};
}

static void eval_matmul(Interp *in, NodeId id, double *out)
{
    const Node *n = &in->g->nodes[id];
    int flags = in->g->attrs[n->attr].ints[0];
    bool ta = flags & MM_TRANS_A, tb = flags & MM_TRANS_B;
    NodeId a = n->in[0], b = n->in[1];
    MatView va = view_of(in->g, a, true), vb = view_of(in->g, b, false);
    int64_t M = ta ? va.cols : va.rows, K = ta ? va.rows : va.cols, N = tb ? vb.rows : vb.cols;
    bool ab = in->g->nodes[a].batched, bb = in->g->nodes[b].batched;
    int64_t batch = in->st->batch, sa = va.rows * va.cols, sb = vb.rows * vb.cols;
    const double *A = in->values[a].data, *B = in->values[b].data;
    bool f32 = !in->st->f64;
    memset(out, 0, sizeof *out * (size_t)node_len(in, id));
    if (!ab && !bb) {
        gemm(M, N, K, A, va.cols, ta, B, vb.cols, tb, out, N, f32);
        return;
    }
    bool sum = flags & MM_SUM_BATCH;
    /* Shared matrix times a batch of vectors: one product (B×K)·op(A)ᵀ.
     * Only for an untransposed column: a stored [n, 1] with MM_TRANS_B is
     * a row (op(B) is [1, n]) and takes the general loop below. */
    if (!ab && bb && vb.cols == 1 && !tb && !sum) {
        gemm(batch, M, K, B, K, false, A, va.cols, !ta, out, M, f32);
        return;
    }
    /* Σ_b u_b v_bᵀ for batched column u and row v: Uᵀ V. */
    if (ab && bb && sum && K == 1 && !ta && !tb && va.cols == 1 && vb.rows == 1) {
        gemm(M, N, batch, A, M, true, B, N, false, out, N, f32);
        return;
    }
    for (int64_t s = 0; s < batch; s++)
        gemm(M, N, K, A + (ab ? s * sa : 0), va.cols, ta, B + (bb ? s * sb : 0), vb.cols, tb,
             out + (sum ? 0 : s * M * N), N, f32);
}

/* ---- last-axis and axis-0 structure ---- */

static void eval_softmax(Interp *in, NodeId id, double *out, bool lse)
{
    NodeId x = in->g->nodes[id].in[0];
    const Shape *s = ir_node_shape(in->g, x);
    int64_t width = s->rank ? s->dims[s->rank - 1] : 1;
    int64_t rows = node_len(in, x) / width;
    const double *xv = in->values[x].data;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = xv + r * width;
        double mx = -INFINITY;
        for (int64_t j = 0; j < width; j++)
            mx = row[j] > mx ? row[j] : mx;
        if (isinf(mx))
            mx = 0;   /* all −∞ (or +∞ somewhere): let the maths produce nan/inf honestly */
        double total = 0;
        for (int64_t j = 0; j < width; j++)
            total += exp(row[j] - mx);
        if (lse)
            out[r] = mx + log(total);
        else
            for (int64_t j = 0; j < width; j++)
                out[r * width + j] = exp(row[j] - mx) / total;
    }
}

static void eval_transpose(Interp *in, NodeId id, double *out)
{
    NodeId x = in->g->nodes[id].in[0];
    const Shape *s = ir_node_shape(in->g, x);
    int64_t r = s->dims[0], c = s->dims[1], samples = node_len(in, x) / (r * c);
    const double *xv = in->values[x].data;
    for (int64_t k = 0; k < samples; k++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                out[k * r * c + j * r + i] = xv[k * r * c + i * c + j];
}

/* Copies axis-0 ranges per sample: dst[d0:d0+len] ← src[s0:s0+len], in rows of `inner`. */
static void copy_rows(double *dst, int64_t dst_rows, int64_t d0, const double *src, int64_t src_rows, int64_t s0,
                      int64_t len, int64_t inner, int64_t samples)
{
    for (int64_t k = 0; k < samples; k++)
        memcpy(dst + (k * dst_rows + d0) * inner, src + (k * src_rows + s0) * inner,
               sizeof *dst * (size_t)(len * inner));
}

static int64_t inner_of(const Shape *s)
{
    int64_t inner = 1;
    for (int i = 1; i < s->rank; i++)
        inner *= s->dims[i];
    return inner;
}

static void eval_axis0(Interp *in, NodeId id, double *out)
{
    const Node *n = &in->g->nodes[id];
    const Shape *os = ir_node_shape(in->g, id);
    int64_t inner = inner_of(os), samples = n->batched ? in->st->batch : 1;
    int64_t orows = os->dims[0];
    const Attr *at = ir_node_attr(in->g, id);
    if (n->op == OP_CONCAT) {
        for (int k = 0; k < 2; k++) {
            NodeId x = n->in[k];
            int64_t rows = ir_node_shape(in->g, x)->dims[0];
            double *tmp = NULL;
            const double *src = in->values[x].data;
            if (!in->g->nodes[x].batched && n->batched) {   /* shared operand: repeat per sample */
                tmp = xmalloc(sizeof *tmp * (size_t)(rows * inner * samples));
                for (int64_t s = 0; s < samples; s++)
                    memcpy(tmp + s * rows * inner, src, sizeof *tmp * (size_t)(rows * inner));
                src = tmp;
            }
            copy_rows(out, orows, k ? ir_node_shape(in->g, n->in[0])->dims[0] : 0, src, rows, 0, rows, inner, samples);
            free(tmp);
        }
    } else if (n->op == OP_SLICE) {
        int64_t xrows = ir_node_shape(in->g, n->in[0])->dims[0];
        copy_rows(out, orows, 0, in->values[n->in[0]].data, xrows, at->ints[0], at->ints[1] - at->ints[0], inner, samples);
    } else {   /* UNSLICE */
        memset(out, 0, sizeof *out * (size_t)node_len(in, id));
        copy_rows(out, orows, at->ints[0], in->values[n->in[0]].data, at->ints[1] - at->ints[0], 0,
                  at->ints[1] - at->ints[0], inner, samples);
    }
}

/* ---- leaves and externs ---- */

static void eval_load(Interp *in, NodeId id, double *out)
{
    int buf = in->g->attrs[in->g->nodes[id].attr].ints[0];
    int64_t len = node_len(in, id);
    const void *src = in->st->data[buf];
    if (in->st->f64)
        memcpy(out, src, sizeof *out * (size_t)len);
    else
        for (int64_t i = 0; i < len; i++)
            out[i] = ((const float *)src)[i];
}

static bool eval_extern(Interp *in, NodeId id, double *out)
{
    const Node *n = &in->g->nodes[id];
    const Attr *at = ir_node_attr(in->g, id);
    const Extern *x = &in->m->externs[at->ints[0]];
    void *fn = at->ints[1] ? x->grad_fn_f : x->fn_f;
    if (!fn) {
        snprintf(in->err, in->errlen, "extern '%s' is not loaded", x->name);
        return false;
    }
    ffi_cif cif;
    ffi_type *args[1] = {&ffi_type_float};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_float, args) != FFI_OK) {
        snprintf(in->err, in->errlen, "extern '%s': libffi cannot describe float(float)", x->name);
        return false;
    }
    const double *xv = in->values[n->in[0]].data;
    int64_t len = node_len(in, id);
    for (int64_t i = 0; i < len; i++) {
        float arg = (float)xv[i];
        void *argp[1] = {&arg};
        ffi_arg result_slot[2];   /* ffi writes at least an ffi_arg for small returns */
        ffi_call(&cif, FFI_FN(fn), result_slot, argp);
        float r;
        memcpy(&r, result_slot, sizeof r);
        out[i] = r;
    }
    return true;
}

static bool eval_node(Interp *in, NodeId id, double *out)
{
    const Node *n = &in->g->nodes[id];
    int64_t len = node_len(in, id);
    switch ((Op)n->op) {
    case OP_LOAD:
        eval_load(in, id, out);
        return true;
    case OP_FILL: {
        double v = in->g->attrs[n->attr].num;
        for (int64_t i = 0; i < len; i++)
            out[i] = v;
        return true;
    }
    case OP_MATMUL:
        eval_matmul(in, id, out);
        return true;
    case OP_REDUCE_TO:
        eval_reduce_to(in, id, out);
        return true;
    case OP_BROADCAST:
        eval_broadcast(in, id, out);
        return true;
    case OP_SOFTMAX:
    case OP_LOGSUMEXP:
        eval_softmax(in, id, out, n->op == OP_LOGSUMEXP);
        return true;
    case OP_TRANSPOSE:
        eval_transpose(in, id, out);
        return true;
    case OP_RESHAPE:
        memcpy(out, in->values[n->in[0]].data, sizeof *out * (size_t)len);
        return true;
    case OP_CONCAT:
    case OP_SLICE:
    case OP_UNSLICE:
        eval_axis0(in, id, out);
        return true;
    case OP_EXTERN:
        return eval_extern(in, id, out);
    case OP_CONV2D: case OP_CONV2D_BACK_INPUT: case OP_CONV2D_BACK_KERNEL:
    case OP_MAXPOOL_GATHER: case OP_MAXPOOL_SCATTER: case OP_AVGPOOL: case OP_AVGPOOL_BACK: {
        const double *ins[2] = {in->values[n->in[0]].data, n->n_in > 1 ? in->values[n->in[1]].data : NULL};
        memset(out, 0, sizeof *out * (size_t)len);
        ir_spatial_eval(in->g, id, ins, out, in->st->batch);
        return true;
    }
    default:
        break;
    }
    if (op_info[n->op].eval2) {
        eval_binary(in, id, out);
        return true;
    }
    if (op_info[n->op].eval1) {
        const double *x = in->values[n->in[0]].data;
        ScalarFn1 f = op_info[n->op].eval1;
        for (int64_t i = 0; i < len; i++)
            out[i] = f(x[i]);
        return true;
    }
    fep_die("interpreter has no case for op %s", op_info[n->op].name);
}

static void release(Interp *in, NodeId id)
{
    if (--in->values[id].uses == 0) {
        free(in->values[id].data);
        in->values[id].data = NULL;
    }
}

/* Evaluates every node reachable from roots[0..n_roots) in id order;
 * results of the roots stay alive (an extra use each). */
static bool evaluate(Interp *in, const NodeId *roots, int n_roots)
{
    const Graph *g = in->g;
    NodeId top = -1;
    for (int i = 0; i < n_roots; i++)
        top = roots[i] > top ? roots[i] : top;
    if (top < 0)
        return true;
    bool *need = xcalloc((size_t)top + 1, 1);
    for (int i = 0; i < n_roots; i++) {
        need[roots[i]] = true;
        in->values[roots[i]].uses++;
    }
    for (NodeId id = top; id >= 0; id--) {
        if (!need[id])
            continue;
        for (int k = 0; k < g->nodes[id].n_in; k++) {
            need[g->nodes[id].in[k]] = true;
            in->values[g->nodes[id].in[k]].uses++;
        }
    }
    bool round = !in->st->f64;
    bool ok = true;
    for (NodeId id = 0; id <= top && ok; id++) {
        if (!need[id])
            continue;
        int64_t len = node_len(in, id);
        double *out = xmalloc(sizeof *out * (size_t)(len ? len : 1));
        ok = eval_node(in, id, out);
        if (round)
            for (int64_t i = 0; i < len; i++)
                out[i] = (float)out[i];
        in->values[id].data = out;
        for (int k = 0; k < g->nodes[id].n_in; k++)
            release(in, g->nodes[id].in[k]);
    }
    free(need);
    return ok;
}

static void store(Interp *in, int buf, const double *src, int64_t len)
{
    void *dst = in->st->data[buf];
    if (in->st->f64)
        memcpy(dst, src, sizeof *src * (size_t)len);
    else
        for (int64_t i = 0; i < len; i++)
            ((float *)dst)[i] = (float)src[i];
}

static Interp interp_new(const Model *m, Storage *st, char *err, size_t errlen)
{
    Interp in = {.m = m, .g = &m->g, .st = st, .err = err, .errlen = errlen};
    in.values = xcalloc((size_t)m->g.n_nodes + 1, sizeof *in.values);
    return in;
}

static void interp_free(Interp *in)
{
    for (int i = 0; i < in->g->n_nodes; i++)
        free(in->values[i].data);
    free(in->values);
}

bool ir_interp_phase(const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    const Phase *ph = &p->phases[phase];
    if (!ph->n_assigns)
        return true;
    Interp in = interp_new(p->model, st, err, errlen);
    NodeId *roots = xmalloc(sizeof *roots * (size_t)ph->n_assigns);
    for (int i = 0; i < ph->n_assigns; i++)
        roots[i] = ph->assigns[i].src;
    bool ok = evaluate(&in, roots, ph->n_assigns);
    /* Parallel assignment: every source was computed before any store. */
    for (int i = 0; ok && i < ph->n_assigns; i++)
        store(&in, ph->assigns[i].dst, in.values[ph->assigns[i].src].data, node_len(&in, ph->assigns[i].src));
    free(roots);
    interp_free(&in);
    return ok;
}

bool ir_interp_expr(const Model *m, NodeId root, Storage *st, double *out, char *err, size_t errlen)
{
    Interp in = interp_new(m, st, err, errlen);
    bool ok = evaluate(&in, &root, 1);
    if (ok)
        memcpy(out, in.values[root].data, sizeof *out * (size_t)node_len(&in, root));
    interp_free(&in);
    return ok;
}
