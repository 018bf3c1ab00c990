/* test_vjp.c — cmocka suite for the vector–Jacobian products of ir/vjp.c.
 *
 * Contract under test: every derived vector–Jacobian product matches
 * central finite differences (f64) to 1e-6 relative, over random shapes.
 *
 * Method.  Each case builds y = op(inputs) directly with the IR builders
 * (no parser), registers a random cotangent buffer c with y's shape and
 * batching, and takes the scalar objective L = Σ_batch Σ_elements c ⊙ y.
 * ir_vjp(y, LOAD(c)) leaves the cotangent node of every input buffer in
 * leaf[buf]; it is evaluated with the reference interpreter (ir_interp_expr,
 * f64 storage) and compared, element by element, with
 *     fd = ∂L/∂x  by the five-point central difference
 *          (8 (L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h,
 *     h  = 1e-6 · max(1, |x|),
 * where each L difference is accumulated as Σ c ⊙ (y⁺ − y⁻) so that no
 * large sum is subtracted from another.  The acceptance test is
 *     |ad − fd| ≤ tol · max(‖fd‖∞, 1e-6)   (tol = 1e-6, ‖·‖∞ per input).
 * The five-point stencil keeps the truncation error (O(h⁴)) far below the
 * tolerance even for stiff cases (logits of ±1000, tan near its pole side),
 * so the check can be tight without being flaky.
 *
 * Inputs keep away from kinks and poles: relu/elu/abs inputs satisfy
 * |x| ≥ 0.05, log/sqrt inputs lie in [0.5, 3], tan inputs in [−1.2, 1.2],
 * denominators in ±[0.5, 2].  Shapes (ranks 0–3, dims 1–5) and values come
 * from a fixed-seed xorshift generator, so every run checks the same cases;
 * a failure prints the case (seed, op, shapes) and the offending element.
 *
 * FEP_SOFTSIGN_SO (compile definition) is the path of libsoftsign.so built
 * from tests/softsign.c, the library behind the EXTERN case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

#ifndef FEP_SOFTSIGN_SO
#error "FEP_SOFTSIGN_SO must name libsoftsign.so (see tests/CMakeLists.vjp.txt)"
#endif

/* ---- deterministic random numbers (xorshift64*) ---- */

typedef struct Rng {
    uint64_t s;
} Rng;

static Rng rng_seeded(uint64_t seed)
{
    Rng r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
    if (!r.s)
        r.s = 1;
    return r;
}

static uint64_t rng_next(Rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

static double rng_unif(Rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0));
}

/* Uniform integer in [lo, hi]. */
static int rng_int(Rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

static bool rng_bool(Rng *r) { return rng_next(r) & 1; }

static Shape rand_shape(Rng *r, int min_rank, int max_rank)
{
    Shape s = {.rank = rng_int(r, min_rank, max_rank)};
    for (int i = 0; i < s.rank; i++)
        s.dims[i] = rng_int(r, 1, 5);
    return s;
}

static Shape shape_of(int rank, int d0, int d1, int d2)
{
    int32_t dims[3] = {d0, d1, d2};
    return ir_shape_make(rank, dims);
}

/* ---- the fixture: one model, its buffers and their storage ---- */

enum { MAX_BUFS = 32, MAX_INPUTS = 8 };

/* How an input's values are drawn. */
typedef struct Dist {
    double lo, hi;
    bool away;    /* ±uniform[lo, hi]: keeps |x| ≥ lo (kinks, poles, denominators) */
} Dist;

static const Dist D_WIDE = {-2, 2, false};
static const Dist D_UNIT = {-1, 1, false};
static const Dist D_AWAY = {0.05, 2, true};
static const Dist D_DENOM = {0.5, 2, true};
static const Dist D_POS = {0.5, 3, false};

typedef struct Fx {
    Arena arena;
    Model *m;
    Graph *g;
    Rng rng;
    int batch;
    void *data[MAX_BUFS];          /* double arrays, indexed by buffer id */
    int inputs[MAX_INPUTS];        /* buffer ids the check differentiates against */
    bool expect_grad[MAX_INPUTS];  /* an input y depends on must get a cotangent */
    int n_inputs;
    int n_cotangents;
    char what[160];                /* the case, for failure messages */
} Fx;

static Fx *fx_new(uint64_t seed, int batch)
{
    Fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->m = ir_model_new(&fx->arena);
    fx->g = &fx->m->g;
    fx->rng = rng_seeded(seed);
    fx->batch = batch;
    snprintf(fx->what, sizeof fx->what, "seed %llu", (unsigned long long)seed);
    return fx;
}

static void fx_free(Fx *fx)
{
    for (int i = 0; i < MAX_BUFS; i++)
        free(fx->data[i]);
    arena_free(&fx->arena);
    free(fx);
}

static void fx_describe(Fx *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fx_describe(Fx *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fx->what, sizeof fx->what, fmt, ap);
    va_end(ap);
}

static int64_t buf_len(const Fx *fx, int b)
{
    const Buffer *buf = &fx->m->buffers[b];
    return ir_numel(ir_shape(fx->g, buf->shape)) * (buf->batched ? fx->batch : 1);
}

static double *buf_data(const Fx *fx, int b) { return fx->data[b]; }

static int fx_buffer(Fx *fx, const char *name, const Shape *s, bool batched, BufKind kind)
{
    int b = ir_model_buffer(fx->m, kind, name, ir_shape_id(fx->g, s), batched, -1);
    assert_true(b >= 0 && b < MAX_BUFS);
    assert_null(fx->data[b]);
    int64_t len = buf_len(fx, b);
    fx->data[b] = calloc((size_t)(len ? len : 1), sizeof(double));
    assert_non_null(fx->data[b]);
    return b;
}

/* Registers an input buffer with random values and returns its LOAD. */
static NodeId fx_input(Fx *fx, const Shape *s, bool batched, Dist d)
{
    char name[16];
    snprintf(name, sizeof name, "in%d", fx->n_inputs);
    assert_true(fx->n_inputs < MAX_INPUTS);
    int b = fx_buffer(fx, name, s, batched, batched ? BUF_VALUE : BUF_PARAM);
    double *x = buf_data(fx, b);
    for (int64_t i = 0; i < buf_len(fx, b); i++) {
        x[i] = rng_unif(&fx->rng, d.lo, d.hi);
        if (d.away && rng_bool(&fx->rng))
            x[i] = -x[i];
    }
    fx->inputs[fx->n_inputs] = b;
    fx->expect_grad[fx->n_inputs] = true;
    fx->n_inputs++;
    return ir_load(fx->g, b, ir_shape_id(fx->g, s), batched);
}

static int load_buf(const Fx *fx, NodeId load)
{
    assert_int_equal(ir_node(fx->g, load)->op, OP_LOAD);
    return ir_node_attr(fx->g, load)->ints[0];
}

static Storage fx_storage(Fx *fx)
{
    return (Storage){.batch = fx->batch, .f64 = true, .data = fx->data, .n_buffers = fx->m->n_buffers};
}

static int64_t node_len(const Fx *fx, NodeId id)
{
    return ir_numel(ir_node_shape(fx->g, id)) * (ir_node(fx->g, id)->batched ? fx->batch : 1);
}

static void eval(Fx *fx, NodeId id, double *out)
{
    char err[256] = "";
    Storage st = fx_storage(fx);
    if (!ir_interp_expr(fx->m, id, &st, out, err, sizeof err))
        fail_msg("%s: ir_interp_expr failed: %s", fx->what, err);
}

static void assert_all_finite(const Fx *fx, const double *v, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            fail_msg("%s: %s[%lld] = %g is not finite", fx->what, what, (long long)i, v[i]);
}

/* Registers a random cotangent buffer for y and returns its LOAD. */
static NodeId fx_cotangent(Fx *fx, NodeId y, int *cbuf)
{
    const Node *yn = ir_node(fx->g, y);
    int32_t shape = yn->shape;
    bool batched = yn->batched;
    char name[32];
    snprintf(name, sizeof name, "cotangent%d", fx->n_cotangents++);
    *cbuf = fx_buffer(fx, name, ir_shape(fx->g, shape), batched, BUF_VALUE);
    double *c = buf_data(fx, *cbuf);
    for (int64_t i = 0; i < buf_len(fx, *cbuf); i++)
        c[i] = rng_unif(&fx->rng, -1, 1);
    return ir_load(fx->g, *cbuf, shape, batched);
}

/* Runs the reverse sweep; returns a malloc'd leaf table (n_buffers slots). */
static NodeId *fx_vjp(Fx *fx, NodeId y, NodeId seed, bool no_derivative)
{
    int n = fx->m->n_buffers;
    NodeId *leaf = malloc(sizeof *leaf * (size_t)n);
    assert_non_null(leaf);
    for (int i = 0; i < n; i++)
        leaf[i] = NO_NODE;
    ir_vjp(fx->g, y, seed, leaf, n, no_derivative);
    return leaf;
}

typedef struct Tol {
    double rel;      /* |ad − fd| ≤ rel · max(‖fd‖∞, 1e-6) */
    double h_rel;    /* h = h_rel · max(1, |x|) ... */
    double h_abs;    /* ... or this fixed h when > 0 */
} Tol;

static const Tol TOL_F64 = {1e-6, 1e-6, 0};

/* Worst error / tolerance over the current test: TEST_VJP_VERBOSE=1 prints
 * it per test, TEST_VJP_VERBOSE=2 also every case. */
static double g_worst_ratio;

/* Σ c ⊙ (y(x_j + t) − y(x_j − t)) with the exact step sizes taken. */
static double diff_L(Fx *fx, NodeId y, const double *c, int b, int64_t j, double t, double *yp,
                     double *ym, double *taken)
{
    double *x = buf_data(fx, b);
    double x0 = x[j];
    volatile double up = x0 + t, dn = x0 - t;
    x[j] = up;
    eval(fx, y, yp);
    x[j] = dn;
    eval(fx, y, ym);
    x[j] = x0;
    *taken = (up - x0) + (x0 - dn);
    double s = 0;
    for (int64_t i = 0; i < node_len(fx, y); i++)
        s += c[i] * (yp[i] - ym[i]);
    return s;
}

/* The whole check for root y: ir_vjp against finite differences for every
 * input.  Returns the worst |ad − fd| / max(‖fd‖∞, 1e-6) seen. */
static double check_vjp_tol(Fx *fx, NodeId y, Tol tol)
{
    if (y == NO_NODE)
        fail_msg("%s: the builder rejected the expression", fx->what);
    int cbuf;
    NodeId seed = fx_cotangent(fx, y, &cbuf);
    NodeId *leaf = fx_vjp(fx, y, seed, false);
    int64_t ylen = node_len(fx, y);
    double *y0 = malloc(sizeof *y0 * (size_t)(ylen ? ylen : 1));
    double *yp = malloc(sizeof *yp * (size_t)(ylen ? ylen : 1));
    double *ym = malloc(sizeof *ym * (size_t)(ylen ? ylen : 1));
    assert_true(y0 && yp && ym);
    eval(fx, y, y0);
    assert_all_finite(fx, y0, ylen, "y");
    const double *c = buf_data(fx, cbuf);
    double worst = 0;
    int reached = 0;
    for (int k = 0; k < fx->n_inputs; k++) {
        int b = fx->inputs[k];
        const Buffer *buf = &fx->m->buffers[b];
        int64_t len = buf_len(fx, b);
        double *ad = calloc((size_t)(len ? len : 1), sizeof *ad);
        double *fd = calloc((size_t)(len ? len : 1), sizeof *fd);
        assert_true(ad && fd);
        if (leaf[b] != NO_NODE) {
            reached++;
            /* The cotangent has exactly the input's type: an unbatched
             * input receives the batch sum, never a batched value. */
            const Node *ln = ir_node(fx->g, leaf[b]);
            char s1[64], s2[64];
            if (!ir_shape_eq(ir_node_shape(fx->g, leaf[b]), ir_shape(fx->g, buf->shape)) ||
                (bool)ln->batched != buf->batched)
                fail_msg("%s: cotangent of %s is %s%s, the input is %s%s", fx->what, buf->name,
                         ir_shape_str(ir_node_shape(fx->g, leaf[b]), s1, sizeof s1),
                         ln->batched ? " batched" : "", ir_shape_str(ir_shape(fx->g, buf->shape), s2, sizeof s2),
                         buf->batched ? " batched" : "");
            eval(fx, leaf[b], ad);
            assert_all_finite(fx, ad, len, "cotangent");
        } else if (fx->expect_grad[k]) {
            fail_msg("%s: no cotangent reached input %s", fx->what, buf->name);
        }
        double norm = 0;
        for (int64_t j = 0; j < len; j++) {
            double x0 = buf_data(fx, b)[j];
            double h = tol.h_abs > 0 ? tol.h_abs : tol.h_rel * fmax(1, fabs(x0));
            double t1, t2;
            double d1 = diff_L(fx, y, c, b, j, h, yp, ym, &t1);
            double d2 = diff_L(fx, y, c, b, j, 2 * h, yp, ym, &t2);
            /* five-point stencil, as Richardson extrapolation of the two
             * central quotients (exact for the representable steps taken) */
            fd[j] = (4 * (d1 / t1) - d2 / t2) / 3;
            norm = fmax(norm, fabs(fd[j]));
        }
        double scale = fmax(norm, 1e-6);
        for (int64_t j = 0; j < len; j++) {
            double err = fabs(ad[j] - fd[j]) / scale;
            worst = fmax(worst, err);
            if (!(err <= tol.rel)) {
                fprintf(stderr, "  y = ");
                ir_print_node_expr(stderr, fx->m, y);
                fprintf(stderr, "\n");
                fail_msg("%s: d/d%s[%lld]: vjp %.12g, finite difference %.12g (error %.3g of ‖fd‖∞ = %.3g, "
                         "tolerance %.1g)",
                         fx->what, buf->name, (long long)j, ad[j], fd[j], err, norm, tol.rel);
            }
        }
        free(ad);
        free(fd);
    }
    if (!reached)
        fail_msg("%s: no input received a cotangent", fx->what);
    g_worst_ratio = fmax(g_worst_ratio, worst / tol.rel);
    const char *verbose = getenv("TEST_VJP_VERBOSE");
    if (verbose && atoi(verbose) >= 2)
        fprintf(stderr, "    %s: worst %.3g\n", fx->what, worst);
    free(y0);
    free(yp);
    free(ym);
    free(leaf);
    return worst;
}

static double check_vjp(Fx *fx, NodeId y) { return check_vjp_tol(fx, y, TOL_F64); }

/* ---- elementwise binary ops with every broadcasting combination ---- */

static const Op BINARY_OPS[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};

static NodeId binary(Fx *fx, Op op, const Shape *sa, bool ba, const Shape *sb, bool bb)
{
    NodeId a = fx_input(fx, sa, ba, D_WIDE);
    NodeId b = fx_input(fx, sb, bb, op == OP_DIV ? D_DENOM : D_WIDE);
    BuildError err;
    NodeId y = ir_binary(fx->g, op, a, b, &err);
    if (y == NO_NODE)
        fail_msg("%s: %s", fx->what, err.message);
    assert_int_equal(ir_node(fx->g, y)->op, op);
    return y;
}

static void describe_binary(Fx *fx, Op op, const char *mode, const Shape *sa, bool ba, const Shape *sb,
                            bool bb)
{
    char s1[64], s2[64];
    fx_describe(fx, "%s %s: %s%s ∘ %s%s (batch %d)", op_info[op].name, mode, ir_shape_str(sa, s1, sizeof s1),
                ba ? " batched" : "", ir_shape_str(sb, s2, sizeof s2), bb ? " batched" : "", fx->batch);
}

static void run_binary(Op op, const char *mode, uint64_t seed, const Shape *sa, bool ba, const Shape *sb,
                       bool bb)
{
    Fx *fx = fx_new(seed, 3);
    describe_binary(fx, op, mode, sa, ba, sb, bb);
    check_vjp(fx, binary(fx, op, sa, ba, sb, bb));
    fx_free(fx);
}

/* Same shape, every batching of the two operands. */
static void test_binary_same_shape(void **state)
{
    (void)state;
    Rng r = rng_seeded(101);
    for (size_t o = 0; o < sizeof BINARY_OPS / sizeof *BINARY_OPS; o++)
        for (int trial = 0; trial < 8; trial++) {
            Shape s = rand_shape(&r, 0, 3);
            run_binary(BINARY_OPS[o], "same shape", rng_next(&r), &s, trial & 1, &s, trial & 2);
        }
}

/* A [] unbatched operand against a batched tensor, on either side. */
static void test_binary_scalar_operand(void **state)
{
    (void)state;
    Rng r = rng_seeded(102);
    Shape scalar = {0};
    for (size_t o = 0; o < sizeof BINARY_OPS / sizeof *BINARY_OPS; o++)
        for (int trial = 0; trial < 6; trial++) {
            Shape s = rand_shape(&r, 0, 3);
            if (trial & 1)
                run_binary(BINARY_OPS[o], "scalar right", rng_next(&r), &s, true, &scalar, false);
            else
                run_binary(BINARY_OPS[o], "scalar left", rng_next(&r), &scalar, false, &s, true);
        }
}

/* An unbatched [n] operand against a batched [m, n], on either side. */
static void test_binary_row_operand(void **state)
{
    (void)state;
    Rng r = rng_seeded(103);
    for (size_t o = 0; o < sizeof BINARY_OPS / sizeof *BINARY_OPS; o++)
        for (int trial = 0; trial < 6; trial++) {
            int m = rng_int(&r, 1, 5), n = rng_int(&r, 1, 5);
            Shape row = shape_of(1, n, 0, 0), mat = shape_of(2, m, n, 0);
            if (trial & 1)
                run_binary(BINARY_OPS[o], "row right", rng_next(&r), &mat, true, &row, false);
            else
                run_binary(BINARY_OPS[o], "row left", rng_next(&r), &row, false, &mat, true);
        }
}

/* Both batched; each operand has its own size-1 axes and possibly fewer
 * leading axes, so both are broadcast against the other. */
static void test_binary_mutual_broadcast(void **state)
{
    (void)state;
    Rng r = rng_seeded(104);
    for (size_t o = 0; o < sizeof BINARY_OPS / sizeof *BINARY_OPS; o++)
        for (int trial = 0; trial < 10; trial++) {
            Shape full = rand_shape(&r, 1, 3);
            for (int i = 0; i < full.rank; i++)
                full.dims[i] = rng_int(&r, 2, 4);
            Shape a = full, b = full;
            for (int i = 0; i < full.rank; i++) {
                int pick = rng_int(&r, 0, 2);   /* 0: a broadcasts, 1: b broadcasts, 2: neither */
                if (pick == 0)
                    a.dims[i] = 1;
                else if (pick == 1)
                    b.dims[i] = 1;
            }
            if (trial & 1) {   /* drop b's leading axes */
                int drop = rng_int(&r, 0, b.rank);
                Shape t = {.rank = b.rank - drop};
                for (int i = 0; i < t.rank; i++)
                    t.dims[i] = b.dims[i + drop];
                b = t;
            }
            bool ba = trial % 3 != 2, bb = trial % 3 != 1;   /* mostly both batched */
            run_binary(BINARY_OPS[o], "mutual broadcast", rng_next(&r), &a, ba, &b, bb);
        }
}

/* ---- elementwise unary ops ---- */

typedef struct UnaryCase {
    Op op;
    Dist dist;
    double extremes[4];   /* forced into the first elements (0 = none) */
} UnaryCase;

static const UnaryCase UNARY[] = {
    {OP_NEG, {-2, 2, false}, {0}},
    {OP_TANH, {-3, 3, false}, {0}},
    {OP_SIGMOID, {-5, 5, false}, {30, -30, 12, -12}},
    {OP_RELU, {0.05, 2, true}, {0}},
    {OP_ELU, {0.05, 2, true}, {-6, 3, 0}},
    {OP_SOFTPLUS, {-5, 5, false}, {40, -40, 20, -20}},
    {OP_EXP, {-2, 2, false}, {0}},
    {OP_LOG, {0.5, 3, false}, {0}},
    {OP_SQRT, {0.5, 3, false}, {0}},
    {OP_SQUARE, {-2, 2, false}, {0}},
    {OP_ABS, {0.05, 2, true}, {0}},
    {OP_SIN, {-3, 3, false}, {0}},
    {OP_COS, {-3, 3, false}, {0}},
    {OP_TAN, {-1.2, 1.2, false}, {1.2, -1.2}},
};

static void test_unary_ops(void **state)
{
    (void)state;
    Rng r = rng_seeded(201);
    for (size_t u = 0; u < sizeof UNARY / sizeof *UNARY; u++) {
        const UnaryCase *uc = &UNARY[u];
        for (int trial = 0; trial < 6; trial++) {
            Fx *fx = fx_new(rng_next(&r), 3);
            /* the last trial carries the extreme values in a [4] batched tensor */
            bool extreme = trial == 5;
            Shape s = extreme ? shape_of(1, 4, 0, 0) : rand_shape(&r, 0, 3);
            bool batched = extreme || (trial & 1);
            char ss[64];
            fx_describe(fx, "%s of %s%s%s", op_info[uc->op].name, ir_shape_str(&s, ss, sizeof ss),
                        batched ? " batched" : "", extreme ? " (extreme values)" : "");
            NodeId x = fx_input(fx, &s, batched, uc->dist);
            if (extreme)
                for (int i = 0; i < 4 && uc->extremes[i] != 0; i++)
                    buf_data(fx, load_buf(fx, x))[i] = uc->extremes[i];
            NodeId y = ir_unary(fx->g, uc->op, x);
            assert_int_equal(ir_node(fx->g, y)->op, uc->op);
            check_vjp(fx, y);
            fx_free(fx);
        }
    }
}

/* step and sign are piecewise constant: the sweep must send nothing to
 * their input, and a product with the input itself must see only the
 * other factor (step(x) ⊙ x has derivative step(x) away from 0). */
static void test_step_sign_zero_derivative(void **state)
{
    (void)state;
    const Op ops[] = {OP_STEP, OP_SIGN};
    for (int o = 0; o < 2; o++) {
        Fx *fx = fx_new(301 + (uint64_t)o, 3);
        fx_describe(fx, "%s", op_info[ops[o]].name);
        Shape s = shape_of(2, 2, 3, 0);
        NodeId x = fx_input(fx, &s, true, D_AWAY);
        NodeId y = ir_unary(fx->g, ops[o], x);
        int cbuf;
        NodeId seed = fx_cotangent(fx, y, &cbuf);
        NodeId *leaf = fx_vjp(fx, y, seed, false);
        assert_int_equal(leaf[load_buf(fx, x)], NO_NODE);
        free(leaf);
        /* and through a product: d(step(x) ⊙ x) = step(x) */
        BuildError err;
        check_vjp(fx, ir_binary(fx->g, OP_MUL, y, x, &err));
        fx_free(fx);
    }
}

/* derivative = none drops f′: the cotangent reaching x is the seed itself. */
static void test_no_derivative(void **state)
{
    (void)state;
    /* every elementwise nonlinearity whose rule multiplies by f′ */
    const Op ops[] = {OP_TANH, OP_SIGMOID, OP_RELU, OP_ELU, OP_SOFTPLUS, OP_EXP, OP_LOG,
                      OP_SQRT, OP_SQUARE, OP_ABS, OP_SIN, OP_COS, OP_TAN};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        Fx *fx = fx_new(401 + o, 3);
        fx_describe(fx, "derivative = none: %s", op_info[ops[o]].name);
        Shape s = shape_of(1, 4, 0, 0);
        NodeId x = fx_input(fx, &s, true, D_POS);
        NodeId y = ir_unary(fx->g, ops[o], x);
        int cbuf;
        NodeId seed = fx_cotangent(fx, y, &cbuf);
        NodeId *nd = fx_vjp(fx, y, seed, true);
        NodeId *full = fx_vjp(fx, y, seed, false);
        int b = load_buf(fx, x);
        if (nd[b] != seed)
            fail_msg("%s: the cotangent is not the seed", fx->what);
        if (full[b] == seed || full[b] == NO_NODE)
            fail_msg("%s: with the derivative, the cotangent must not be the bare seed", fx->what);
        /* numerically: the seed's values, unchanged */
        double *v = malloc(sizeof *v * 4 * 3);
        assert_non_null(v);
        eval(fx, nd[b], v);
        for (int i = 0; i < 12; i++)
            assert_true(v[i] == buf_data(fx, cbuf)[i]);
        free(v);
        free(nd);
        free(full);
        fx_free(fx);
    }
}

/* ---- extern (through tests/softsign.c) ---- */

static int add_softsign(Fx *fx)
{
    Model *m = fx->m;
    m->externs = arena_grow(m->arena, m->externs, &m->cap_externs, m->n_externs, sizeof *m->externs);
    Extern *x = &m->externs[m->n_externs];
    memset(x, 0, sizeof *x);
    x->name = "softsign";
    x->lib = FEP_SOFTSIGN_SO;
    x->sym = "softsign";
    x->grad_sym = "softsign_grad";
    char err[512] = "";
    int index = m->n_externs++;
    if (!ir_resolve_externs(m, err, sizeof err))
        fail_msg("ir_resolve_externs: %s", err);
    return index;
}

/* Extern functions are float(float): values and derivatives carry float
 * rounding (relative ~6e-8), so an f64 tolerance of 1e-6 with h ~ 1e-6
 * would measure rounding noise (6e-8 / 1e-6 ≈ 6e-2 relative), not the
 * rule.  With h = 1e-2 the rounding noise is ~1e-5 of the derivative and
 * the five-point truncation error ~1e-8, so 1e-4 still catches a wrong
 * rule (a missing or misplaced factor is off by O(1)).  Inputs keep
 * |x| ≥ 0.5 so x ± 2h never crosses softsign's kink at 0. */
static const Tol TOL_EXTERN = {1e-4, 0, 1e-2};

static void test_extern(void **state)
{
    (void)state;
    Rng r = rng_seeded(501);
    for (int trial = 0; trial < 6; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        int e = add_softsign(fx);
        Shape s = rand_shape(&r, 0, 3);
        bool batched = trial & 1;
        char ss[64];
        fx_describe(fx, "extern softsign of %s%s", ir_shape_str(&s, ss, sizeof ss), batched ? " batched" : "");
        NodeId x = fx_input(fx, &s, batched, (Dist){0.5, 3, true});
        NodeId y = ir_extern(fx->g, x, e);
        assert_int_equal(ir_node(fx->g, y)->op, OP_EXTERN);
        check_vjp_tol(fx, y, TOL_EXTERN);
        fx_free(fx);
    }
    /* A spot check of the values themselves: softsign′(1) = 1/4. */
    Fx *fx = fx_new(502, 1);
    int e = add_softsign(fx);
    Shape s = shape_of(1, 2, 0, 0);
    NodeId x = fx_input(fx, &s, false, D_UNIT);
    buf_data(fx, load_buf(fx, x))[0] = 1;
    buf_data(fx, load_buf(fx, x))[1] = -3;
    NodeId y = ir_extern(fx->g, x, e);
    int cbuf;
    NodeId seed = fx_cotangent(fx, y, &cbuf);
    buf_data(fx, cbuf)[0] = buf_data(fx, cbuf)[1] = 1;
    NodeId *leaf = fx_vjp(fx, y, seed, false);
    double v[2];
    eval(fx, leaf[load_buf(fx, x)], v);
    assert_float_equal(v[0], 0.25, 1e-7);
    assert_float_equal(v[1], 1.0 / 16, 1e-7);
    free(leaf);
    fx_free(fx);
}

/* ---- matrix products ---- */

/* One product: ranks ra @ rb with (m, k, n) and the given flags/batching. */
static void run_matmul(uint64_t seed, int ra, int rb, int m, int k, int n, int flags, bool ba, bool bb)
{
    Fx *fx = fx_new(seed, 3);
    Shape sa = ra == 2 ? ((flags & MM_TRANS_A) ? shape_of(2, k, m, 0) : shape_of(2, m, k, 0)) : shape_of(1, k, 0, 0);
    Shape sb = rb == 2 ? ((flags & MM_TRANS_B) ? shape_of(2, n, k, 0) : shape_of(2, k, n, 0)) : shape_of(1, k, 0, 0);
    char s1[64], s2[64];
    fx_describe(fx, "matmul %s%s%s @ %s%s%s%s", ir_shape_str(&sa, s1, sizeof s1), ba ? " batched" : "",
                (flags & MM_TRANS_A) ? " (ᵀ)" : "", ir_shape_str(&sb, s2, sizeof s2), bb ? " batched" : "",
                (flags & MM_TRANS_B) ? " (ᵀ)" : "", (flags & MM_SUM_BATCH) ? ", batch-summed" : "");
    NodeId a = fx_input(fx, &sa, ba, D_WIDE);
    NodeId b = fx_input(fx, &sb, bb, D_WIDE);
    BuildError err;
    NodeId y = ir_matmul(fx->g, a, b, flags, &err);
    if (y == NO_NODE)
        fail_msg("%s: %s", fx->what, err.message);
    /* the result's type */
    Shape want = {0};
    if (ra == 2)
        want.dims[want.rank++] = m;
    if (rb == 2)
        want.dims[want.rank++] = n;
    assert_true(ir_shape_eq(ir_node_shape(fx->g, y), &want));
    assert_int_equal(ir_node(fx->g, y)->batched, (ba || bb) && !(flags & MM_SUM_BATCH));
    check_vjp(fx, y);
    fx_free(fx);
}

/* Every rank pair × transpose flag (on matrix operands) × batching of each
 * operand × batch summation, at dims of 1 and 3 and at random dims. */
static void test_matmul(void **state)
{
    (void)state;
    Rng r = rng_seeded(601);
    const int ranks[4][2] = {{2, 2}, {2, 1}, {1, 2}, {1, 1}};
    for (int rr = 0; rr < 4; rr++) {
        int ra = ranks[rr][0], rb = ranks[rr][1];
        for (int flags = 0; flags < 8; flags++) {
            if ((flags & MM_TRANS_A) && ra != 2)
                continue;
            if ((flags & MM_TRANS_B) && rb != 2)
                continue;
            for (int bat = 0; bat < 4; bat++) {
                bool ba = bat & 1, bb = bat & 2;
                for (int dims = 0; dims < 8; dims++) {   /* m, k, n ∈ {1, 3} */
                    int m = dims & 1 ? 3 : 1, k = dims & 2 ? 3 : 1, n = dims & 4 ? 3 : 1;
                    run_matmul(rng_next(&r), ra, rb, m, k, n, flags, ba, bb);
                }
                for (int t = 0; t < 2; t++)
                    run_matmul(rng_next(&r), ra, rb, rng_int(&r, 1, 5), rng_int(&r, 1, 5), rng_int(&r, 1, 5),
                               flags, ba, bb);
            }
        }
    }
}

/* A transpose flag on a vector operand has no meaning (a vector's
 * orientation is its position): the builder must refuse it rather than
 * build a node whose shape and evaluation disagree. */
static void test_matmul_vector_transpose_refused(void **state)
{
    (void)state;
    Fx *fx = fx_new(602, 3);
    Shape v = shape_of(1, 3, 0, 0), mat = shape_of(2, 3, 3, 0);
    NodeId x = fx_input(fx, &v, true, D_WIDE);
    NodeId W = fx_input(fx, &mat, false, D_WIDE);
    BuildError err = {""};
    assert_int_equal(ir_matmul(fx->g, x, W, MM_TRANS_A, &err), NO_NODE);
    assert_non_null(strstr(err.message, "transpose"));
    assert_int_equal(ir_matmul(fx->g, W, x, MM_TRANS_B, &err), NO_NODE);
    assert_int_equal(ir_matmul(fx->g, x, x, MM_TRANS_A | MM_TRANS_B, &err), NO_NODE);
    /* the flags stay legal on the matrix operand of a mixed product */
    assert_int_not_equal(ir_matmul(fx->g, W, x, MM_TRANS_A, &err), NO_NODE);
    assert_int_not_equal(ir_matmul(fx->g, x, W, MM_TRANS_B, &err), NO_NODE);
    fx_free(fx);
}

/* ---- reductions and broadcasts ---- */

static void test_reduce_to(void **state)
{
    (void)state;
    Rng r = rng_seeded(701);
    for (int trial = 0; trial < 24; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape s = rand_shape(&r, 0, 3);
        bool xb = trial % 4 != 3;
        Shape to = s;
        bool tb = xb;
        const char *mode;
        switch (trial % 3) {
        case 0:   /* to [] (batched stays batched: a per-sample total) */
            to.rank = 0;
            mode = "to []";
            break;
        case 1:   /* keep the rank, some axes to 1, maybe drop leading axes */
            for (int i = 0; i < to.rank; i++)
                if (rng_bool(&r))
                    to.dims[i] = 1;
            if (to.rank && rng_bool(&r)) {
                to.rank--;
                memmove(to.dims, to.dims + 1, sizeof(int32_t) * (size_t)to.rank);
            }
            mode = "to size-1 axes";
            break;
        default:   /* the batch sum: same shape, unbatched */
            tb = false;
            mode = "batch sum";
            break;
        }
        if (trial % 4 == 0 && xb)
            tb = false;   /* also sum the batch away in the other modes */
        if (ir_shape_eq(&to, &s) && tb == xb) {   /* nothing to reduce: sum the batch instead */
            xb = true;
            tb = false;
        }
        char s1[64], s2[64];
        fx_describe(fx, "reduce_to %s: %s%s → %s%s", mode, ir_shape_str(&s, s1, sizeof s1), xb ? " batched" : "",
                    ir_shape_str(&to, s2, sizeof s2), tb ? " batched" : "");
        NodeId x = fx_input(fx, &s, xb, D_WIDE);
        NodeId y = ir_reduce_to(fx->g, x, &to, tb);
        assert_int_equal(ir_node(fx->g, y)->op, OP_REDUCE_TO);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

/* broadcast is reduce_to in reverse: its cotangent is a sum. */
static void test_broadcast(void **state)
{
    (void)state;
    Rng r = rng_seeded(801);
    for (int trial = 0; trial < 24; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape to = rand_shape(&r, 1, 3);
        Shape s = to;
        for (int i = 0; i < s.rank; i++)
            if (rng_bool(&r))
                s.dims[i] = 1;
        if (trial & 1) {
            int drop = rng_int(&r, 0, s.rank);
            s.rank -= drop;
            memmove(s.dims, s.dims + drop, sizeof(int32_t) * (size_t)s.rank);
        }
        bool xb = trial % 3 == 0, tb = true;
        if (!xb && trial % 3 == 1)
            tb = false;   /* unbatched to unbatched */
        if (ir_shape_eq(&to, &s) && tb == xb)
            tb = true, xb = false;
        char s1[64], s2[64];
        fx_describe(fx, "broadcast %s%s → %s%s", ir_shape_str(&s, s1, sizeof s1), xb ? " batched" : "",
                    ir_shape_str(&to, s2, sizeof s2), tb ? " batched" : "");
        NodeId x = fx_input(fx, &s, xb, D_WIDE);
        NodeId y = ir_broadcast(fx->g, x, &to, tb);
        assert_int_equal(ir_node(fx->g, y)->op, OP_BROADCAST);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

/* ---- softmax and logsumexp ---- */

static void test_softmax_logsumexp(void **state)
{
    (void)state;
    Rng r = rng_seeded(901);
    for (int lse = 0; lse < 2; lse++)
        for (int trial = 0; trial < 12; trial++) {
            Fx *fx = fx_new(rng_next(&r), 3);
            Shape s = rand_shape(&r, 1, 2);
            bool batched = trial & 1;
            char ss[64];
            fx_describe(fx, "%s of %s%s", lse ? "logsumexp" : "softmax", ir_shape_str(&s, ss, sizeof ss),
                        batched ? " batched" : "");
            NodeId x = fx_input(fx, &s, batched, (Dist){-3, 3, false});
            NodeId y = lse ? ir_logsumexp(fx->g, x) : ir_softmax(fx->g, x);
            check_vjp(fx, y);
            fx_free(fx);
        }
}

/* Logits of ±1000: values and cotangents must stay finite (no exp
 * overflow in either direction) and still match finite differences. */
static void test_softmax_logsumexp_extreme(void **state)
{
    (void)state;
    Rng r = rng_seeded(902);
    for (int lse = 0; lse < 2; lse++)
        for (int rank = 1; rank <= 2; rank++) {
            Fx *fx = fx_new(rng_next(&r), 3);
            Shape s = rank == 1 ? shape_of(1, 5, 0, 0) : shape_of(2, 3, 4, 0);
            fx_describe(fx, "%s of ±1000 logits, rank %d", lse ? "logsumexp" : "softmax", rank);
            NodeId x = fx_input(fx, &s, true, D_UNIT);
            double *v = buf_data(fx, load_buf(fx, x));
            for (int64_t i = 0; i < buf_len(fx, load_buf(fx, x)); i++)
                v[i] += rng_bool(&r) ? 1000 : -1000;
            v[0] = 1000, v[1] = 1000.5;   /* at least two competing maxima in the first row */
            NodeId y = lse ? ir_logsumexp(fx->g, x) : ir_softmax(fx->g, x);
            check_vjp(fx, y);
            fx_free(fx);
        }
}

/* ---- structural ops ---- */

static void test_transpose(void **state)
{
    (void)state;
    Rng r = rng_seeded(1001);
    for (int trial = 0; trial < 8; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape s = shape_of(2, rng_int(&r, 1, 5), rng_int(&r, 1, 5), 0);
        char ss[64];
        fx_describe(fx, "transpose of %s%s", ir_shape_str(&s, ss, sizeof ss), trial & 1 ? " batched" : "");
        NodeId x = fx_input(fx, &s, trial & 1, D_WIDE);
        BuildError err;
        check_vjp(fx, ir_transpose(fx->g, x, &err));
        fx_free(fx);
    }
}

static void test_reshape(void **state)
{
    (void)state;
    Rng r = rng_seeded(1101);
    for (int trial = 0; trial < 12; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape s = rand_shape(&r, 0, 3);
        /* target: x's dims shuffled, two of them merged, a 1 inserted */
        Shape to = s;
        for (int i = to.rank - 1; i > 0; i--) {
            int j = rng_int(&r, 0, i);
            int32_t t = to.dims[i];
            to.dims[i] = to.dims[j];
            to.dims[j] = t;
        }
        if (to.rank >= 2 && rng_bool(&r)) {
            to.dims[0] *= to.dims[1];
            memmove(to.dims + 1, to.dims + 2, sizeof(int32_t) * (size_t)(to.rank - 2));
            to.rank--;
        }
        if (rng_bool(&r) || ir_shape_eq(&to, &s)) {
            int at = rng_int(&r, 0, to.rank);
            memmove(to.dims + at + 1, to.dims + at, sizeof(int32_t) * (size_t)(to.rank - at));
            to.dims[at] = 1;
            to.rank++;
        }
        char s1[64], s2[64];
        fx_describe(fx, "reshape %s → %s%s", ir_shape_str(&s, s1, sizeof s1), ir_shape_str(&to, s2, sizeof s2),
                    trial & 1 ? " batched" : "");
        NodeId x = fx_input(fx, &s, trial & 1, D_WIDE);
        BuildError err;
        NodeId y = ir_reshape(fx->g, x, &to, &err);
        assert_int_equal(ir_node(fx->g, y)->op, OP_RESHAPE);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

static void test_concat(void **state)
{
    (void)state;
    Rng r = rng_seeded(1201);
    for (int trial = 0; trial < 16; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape sa = rand_shape(&r, 1, 3), sb = sa;
        sb.dims[0] = rng_int(&r, 1, 5);
        bool ba = trial % 4 != 3, bb = trial % 4 != 2;   /* b+b, b+u, u+b, and b+b again */
        if (trial % 8 == 7)
            ba = bb = false;
        char s1[64], s2[64];
        fx_describe(fx, "concat %s%s, %s%s", ir_shape_str(&sa, s1, sizeof s1), ba ? " batched" : "",
                    ir_shape_str(&sb, s2, sizeof s2), bb ? " batched" : "");
        NodeId a = fx_input(fx, &sa, ba, D_WIDE);
        NodeId b = fx_input(fx, &sb, bb, D_WIDE);
        BuildError err;
        NodeId y = ir_concat(fx->g, a, b, &err);
        if (y == NO_NODE)
            fail_msg("%s: %s", fx->what, err.message);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

static void test_slice(void **state)
{
    (void)state;
    Rng r = rng_seeded(1301);
    for (int trial = 0; trial < 12; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape s = rand_shape(&r, 1, 3);
        int start = rng_int(&r, 0, s.dims[0] - 1), end = rng_int(&r, start + 1, s.dims[0]);
        char ss[64];
        fx_describe(fx, "slice [%d:%d] of %s%s", start, end, ir_shape_str(&s, ss, sizeof ss),
                    trial & 1 ? " batched" : "");
        NodeId x = fx_input(fx, &s, trial & 1, D_WIDE);
        BuildError err;
        NodeId y = ir_slice(fx->g, x, start, end, &err);
        if (y == NO_NODE)
            fail_msg("%s: %s", fx->what, err.message);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

static void test_unslice(void **state)
{
    (void)state;
    Rng r = rng_seeded(1401);
    for (int trial = 0; trial < 12; trial++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        Shape s = rand_shape(&r, 1, 3);
        Shape full = s;
        full.dims[0] = s.dims[0] + rng_int(&r, 0, 4);
        int start = rng_int(&r, 0, full.dims[0] - s.dims[0]);
        char s1[64], s2[64];
        fx_describe(fx, "unslice %s%s at %d into %s", ir_shape_str(&s, s1, sizeof s1), trial & 1 ? " batched" : "",
                    start, ir_shape_str(&full, s2, sizeof s2));
        NodeId x = fx_input(fx, &s, trial & 1, D_WIDE);
        NodeId y = ir_unslice(fx->g, x, start, start + s.dims[0], &full);
        check_vjp(fx, y);
        fx_free(fx);
    }
}

/* ---- composites: nodes used more than once ---- */

static NodeId mm(Fx *fx, NodeId a, NodeId b, int flags)
{
    BuildError err;
    NodeId y = ir_matmul(fx->g, a, b, flags, &err);
    if (y == NO_NODE)
        fail_msg("%s: %s", fx->what, err.message);
    return y;
}

static NodeId bin(Fx *fx, Op op, NodeId a, NodeId b)
{
    BuildError err;
    NodeId y = ir_binary(fx->g, op, a, b, &err);
    if (y == NO_NODE)
        fail_msg("%s: %s", fx->what, err.message);
    return y;
}

/* y = tanh(W x + b) ⊙ σ(x) + (W x)² − x ⊙ x:  W x feeds two branches, x
 * four, so cotangents must be accumulated, not overwritten. */
static void test_composite_fixed(void **state)
{
    (void)state;
    Fx *fx = fx_new(1501, 3);
    fx_describe(fx, "tanh(W x + b) ⊙ σ(x) + (W x)² − x ⊙ x");
    Graph *g = fx->g;
    Shape vec = shape_of(1, 4, 0, 0), mat = shape_of(2, 4, 4, 0);
    NodeId W = fx_input(fx, &mat, false, D_UNIT);
    NodeId x = fx_input(fx, &vec, true, D_WIDE);
    NodeId b = fx_input(fx, &vec, false, D_UNIT);
    NodeId Wx = mm(fx, W, x, 0);
    NodeId t = bin(fx, OP_MUL, ir_unary(g, OP_TANH, bin(fx, OP_ADD, Wx, b)), ir_unary(g, OP_SIGMOID, x));
    NodeId y = bin(fx, OP_SUB, bin(fx, OP_ADD, t, ir_unary(g, OP_SQUARE, Wx)), bin(fx, OP_MUL, x, x));
    check_vjp(fx, y);
    fx_free(fx);
}

typedef struct Gen {
    Fx *fx;
    Rng *r;
    NodeId W;
    NodeId pool[64];
    int n_pool;
} Gen;

/* A random [n] expression of the given depth over the pool (inputs and
 * subtrees built so far, so subtrees recur). */
static NodeId gen(Gen *gn, int depth)
{
    Fx *fx = gn->fx;
    Graph *g = fx->g;
    if (depth == 0 || rng_int(gn->r, 0, 9) == 0)
        return gn->pool[rng_int(gn->r, 0, gn->n_pool - 1)];
    NodeId y;
    int kind = rng_int(gn->r, 0, 13);
    if (kind <= 6) {
        static const Op un[] = {OP_TANH, OP_SIGMOID, OP_SIN, OP_COS, OP_SOFTPLUS, OP_NEG, OP_SQUARE};
        y = ir_unary(g, un[kind], gen(gn, depth - 1));
    } else if (kind <= 9) {
        static const Op bi[] = {OP_ADD, OP_SUB, OP_MUL};
        y = bin(fx, bi[kind - 7], gen(gn, depth - 1), gen(gn, depth - 1));
    } else if (kind == 10) {   /* a / (1 + σ(b)): denominator in (1, 2) */
        NodeId den = bin(fx, OP_ADD, ir_scalar(g, 1), ir_unary(g, OP_SIGMOID, gen(gn, depth - 1)));
        y = bin(fx, OP_DIV, gen(gn, depth - 1), den);
    } else if (kind == 11) {
        y = mm(fx, gn->W, gen(gn, depth - 1), rng_bool(gn->r) ? MM_TRANS_A : 0);
    } else if (kind == 12) {
        y = ir_softmax(g, gen(gn, depth - 1));
    } else {   /* a ⊙ Σ b: a per-sample (or shared) total broadcast back */
        NodeId s = gen(gn, depth - 1);
        Shape scalar = {0};
        y = bin(fx, OP_MUL, gen(gn, depth - 1), ir_reduce_to(g, s, &scalar, ir_node(g, s)->batched));
    }
    if (gn->n_pool < 64)
        gn->pool[gn->n_pool++] = y;
    return y;
}

static void test_composite_random(void **state)
{
    (void)state;
    Rng r = rng_seeded(1601);
    for (int trial = 0; trial < 40; trial++) {
        Fx *fx = fx_new(rng_next(&r), rng_int(&r, 1, 4));   /* batch 1 too: no batch axis to broadcast */
        int n = rng_int(&r, 2, 4);
        Shape vec = shape_of(1, n, 0, 0), mat = shape_of(2, n, n, 0);
        Gen gn = {.fx = fx, .r = &r};
        gn.W = fx_input(fx, &mat, false, D_UNIT);
        gn.pool[gn.n_pool++] = fx_input(fx, &vec, true, D_WIDE);    /* x */
        gn.pool[gn.n_pool++] = fx_input(fx, &vec, true, D_WIDE);    /* v */
        gn.pool[gn.n_pool++] = fx_input(fx, &vec, false, D_UNIT);   /* b */
        gn.pool[gn.n_pool++] = mm(fx, gn.W, gn.pool[0], 0);         /* W x */
        for (int i = 0; i < fx->n_inputs; i++)
            fx->expect_grad[i] = false;   /* a random tree need not read every input */
        fx_describe(fx, "random composite %d (n = %d, batch %d)", trial, n, fx->batch);
        NodeId y = gen(&gn, 4);
        /* a tree that is just a leaf tests nothing new: combine it with x */
        if (ir_node(fx->g, y)->op == OP_LOAD)
            y = bin(fx, OP_MUL, y, ir_unary(fx->g, OP_TANH, gn.pool[0]));
        check_vjp(fx, y);
        fx_free(fx);
    }
}

static int report_margin(void **state)
{
    (void)state;
    if (getenv("TEST_VJP_VERBOSE"))
        fprintf(stderr, "    worst error: %.3g of the tolerance\n", g_worst_ratio);
    g_worst_ratio = 0;
    return 0;
}

#define TEST(f) cmocka_unit_test_teardown(f, report_margin)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_binary_same_shape),
        TEST(test_binary_scalar_operand),
        TEST(test_binary_row_operand),
        TEST(test_binary_mutual_broadcast),
        TEST(test_unary_ops),
        TEST(test_step_sign_zero_derivative),
        TEST(test_no_derivative),
        TEST(test_extern),
        TEST(test_matmul),
        TEST(test_matmul_vector_transpose_refused),
        TEST(test_reduce_to),
        TEST(test_broadcast),
        TEST(test_softmax_logsumexp),
        TEST(test_softmax_logsumexp_extreme),
        TEST(test_transpose),
        TEST(test_reshape),
        TEST(test_concat),
        TEST(test_slice),
        TEST(test_unslice),
        TEST(test_composite_fixed),
        TEST(test_composite_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
