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
 * Spatial ops (ir/spatial.c) are also checked against naive reference
 * formulas written here.  maxpool inputs are distinct values 0.01 apart, so
 * no finite-difference step moves a window's argmax; the relu ∘ conv2d ∘
 * maxpool composite skips draws within 1e-3 of a kink or a tie.
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
    ir_vjp(fx->g, y, seed, leaf, n, &(VjpRules){.no_derivative = no_derivative});
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

/* ---- spatial ops (ir/spatial.c): conv2d, maxpool, avgpool and their VJP ops ---- */

/* Per-sample shapes are [C, H, W]; kernels [O, C, kh, kw]. */
typedef struct ConvCase {
    int C, H, W, O, kh, kw, stride, pad;
} ConvCase;

/* floor((n + 2p − k) / s) + 1; n + 2p ≥ k, so C division is the floor. */
static int conv_out(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

static Shape conv_x_shape(const ConvCase *cc) { return shape_of(3, cc->C, cc->H, cc->W); }
static Shape conv_y_shape(const ConvCase *cc)
{
    return shape_of(3, cc->O, conv_out(cc->H, cc->kh, cc->stride, cc->pad), conv_out(cc->W, cc->kw, cc->stride, cc->pad));
}
static Shape conv_k_shape(const ConvCase *cc)
{
    Shape s = {.rank = 4, .dims = {cc->O, cc->C, cc->kh, cc->kw}};
    return s;
}

static ConvCase rand_conv_case(Rng *r, int stride, int pad)
{
    ConvCase cc = {.C = rng_int(r, 1, 3), .H = rng_int(r, 3, 7), .W = rng_int(r, 3, 7), .O = rng_int(r, 1, 3),
                   .kh = rng_int(r, 1, 3), .kw = rng_int(r, 1, 3), .stride = stride, .pad = pad};
    return cc;
}

static void describe_conv(Fx *fx, const char *what, const ConvCase *cc, const char *mode)
{
    fx_describe(fx, "%s: x [%d, %d, %d], K [%d, %d, %d, %d], stride %d, pad %d, %s (batch %d)", what, cc->C, cc->H,
                cc->W, cc->O, cc->C, cc->kh, cc->kw, cc->stride, cc->pad, mode, fx->batch);
}

/* The reference: cross-correlation of one sample with an explicitly
 * zero-padded copy of x (no bounds tests), y[o, i, j] =
 * Σ_{c,u,v} K[o, c, u, v] · xpad[c, i·s + u, j·s + v]. */
static void naive_conv(const ConvCase *cc, const double *x, const double *K, double *y)
{
    int p = cc->pad, s = cc->stride;
    int hp = cc->H + 2 * p, wp = cc->W + 2 * p;
    int ho = conv_out(cc->H, cc->kh, s, p), wo = conv_out(cc->W, cc->kw, s, p);
    double *xp = calloc((size_t)(cc->C * hp * wp), sizeof *xp);
    assert_non_null(xp);
    for (int c = 0; c < cc->C; c++)
        for (int r = 0; r < cc->H; r++)
            for (int q = 0; q < cc->W; q++)
                xp[(c * hp + r + p) * wp + q + p] = x[(c * cc->H + r) * cc->W + q];
    for (int o = 0; o < cc->O; o++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double acc = 0;
                for (int c = 0; c < cc->C; c++)
                    for (int u = 0; u < cc->kh; u++)
                        for (int v = 0; v < cc->kw; v++)
                            acc += K[((o * cc->C + c) * cc->kh + u) * cc->kw + v] * xp[(c * hp + i * s + u) * wp + j * s + v];
                y[(o * ho + i) * wo + j] = acc;
            }
    free(xp);
}

/* got against want, element by element, to rounding (1e-12 of the scale). */
static void expect_values(const Fx *fx, const char *what, const double *got, const double *want, int64_t n)
{
    double scale = 1;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-12 * scale))
            fail_msg("%s: %s[%lld] = %.15g, the reference gives %.15g", fx->what, what, (long long)i, got[i], want[i]);
}

static double *eval_alloc(Fx *fx, NodeId y)
{
    int64_t n = node_len(fx, y);
    double *v = calloc((size_t)(n ? n : 1), sizeof *v);
    assert_non_null(v);
    eval(fx, y, v);
    return v;
}

/* Asserts y's per-sample shape and batching. */
static void expect_type(const Fx *fx, NodeId y, const Shape *want, bool batched)
{
    char s1[64], s2[64];
    const Shape *got = ir_node_shape(fx->g, y);
    if (!ir_shape_eq(got, want) || (bool)ir_node(fx->g, y)->batched != batched)
        fail_msg("%s: result is %s%s, expected %s%s", fx->what, ir_shape_str(got, s1, sizeof s1),
                 ir_node(fx->g, y)->batched ? " batched" : "", ir_shape_str(want, s2, sizeof s2),
                 batched ? " batched" : "");
}

/* The three batchings of (x, K) the brief names, plus K batched alone. */
static const struct {
    bool xb, kb;
    const char *name;
} CONV_MODES[] = {
    {true, false, "x batched, K shared"},
    {true, true, "both batched"},
    {false, false, "both unbatched"},
    {false, true, "x shared, K batched"},
};

/* conv2d: the result's type, its values against naive_conv, and d/dx, d/dK
 * by finite differences, for every stride ∈ {1, 2, 3} × pad ∈ {0, 1, 2} in
 * each batching of (x, K). */
static void test_conv2d(void **state)
{
    (void)state;
    Rng r = rng_seeded(1701);
    for (size_t m = 0; m < sizeof CONV_MODES / sizeof *CONV_MODES; m++)
        for (int stride = 1; stride <= 3; stride++)
            for (int pad = 0; pad <= 2; pad++) {
                bool xb = CONV_MODES[m].xb, kb = CONV_MODES[m].kb;
                /* batch 1 once per mode: a batch axis of one sample */
                Fx *fx = fx_new(rng_next(&r), stride == 2 && pad == 1 ? 1 : rng_int(&r, 2, 3));
                ConvCase cc = rand_conv_case(&r, stride, pad);
                describe_conv(fx, "conv2d", &cc, CONV_MODES[m].name);
                Shape xs = conv_x_shape(&cc), ks = conv_k_shape(&cc), ys = conv_y_shape(&cc);
                NodeId x = fx_input(fx, &xs, xb, D_WIDE);
                NodeId K = fx_input(fx, &ks, kb, D_WIDE);
                BuildError err = {""};
                NodeId y = ir_conv2d(fx->g, x, K, stride, pad, &err);
                if (y == NO_NODE)
                    fail_msg("%s: %s", fx->what, err.message);
                assert_int_equal(ir_node(fx->g, y)->op, OP_CONV2D);
                expect_type(fx, y, &ys, xb || kb);
                /* forward values, sample by sample */
                double *got = eval_alloc(fx, y);
                int64_t nx = ir_numel(&xs), nk = ir_numel(&ks), ny = ir_numel(&ys);
                double *want = calloc((size_t)ny, sizeof *want);
                assert_non_null(want);
                int samples = xb || kb ? fx->batch : 1;
                for (int s = 0; s < samples; s++) {
                    naive_conv(&cc, buf_data(fx, load_buf(fx, x)) + (xb ? s * nx : 0),
                               buf_data(fx, load_buf(fx, K)) + (kb ? s * nk : 0), want);
                    expect_values(fx, "conv2d", got + s * ny, want, ny);
                }
                free(got);
                free(want);
                check_vjp(fx, y);
                fx_free(fx);
            }
}

/* Builds a spatial node directly (as spatial.c's VJP helpers do). */
static NodeId build_spatial(Fx *fx, Op op, NodeId a, NodeId b, Attr attr, const Shape *given, bool batched)
{
    NodeId in[2] = {a, b};
    BuildError err = {""};
    NodeId y = ir_build(fx->g, op, in, &attr, given, batched, &err);
    if (y == NO_NODE)
        fail_msg("%s: %s: %s", fx->what, op_info[op].name, err.message);
    assert_int_equal(ir_node(fx->g, y)->op, op);
    return y;
}

/* Second order, directly: dx = conv2d_back_input(g, K) as a function of
 * both its inputs (its VJP is conv2d and conv2d_back_kernel). */
static void test_conv2d_back_input(void **state)
{
    (void)state;
    Rng r = rng_seeded(1801);
    for (size_t m = 0; m < sizeof CONV_MODES / sizeof *CONV_MODES; m++)
        for (int trial = 0; trial < 6; trial++) {
            bool gb = CONV_MODES[m].xb, kb = CONV_MODES[m].kb;
            Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
            ConvCase cc = rand_conv_case(&r, 1 + trial % 3, trial / 2 % 3);
            describe_conv(fx, "conv2d_back_input", &cc, gb ? (kb ? "g, K batched" : "g batched, K shared")
                                                          : (kb ? "g shared, K batched" : "g, K unbatched"));
            Shape xs = conv_x_shape(&cc), ks = conv_k_shape(&cc), ys = conv_y_shape(&cc);
            NodeId gy = fx_input(fx, &ys, gb, D_WIDE);
            NodeId K = fx_input(fx, &ks, kb, D_WIDE);
            NodeId dx = build_spatial(fx, OP_CONV2D_BACK_INPUT, gy, K, (Attr){.ints = {cc.stride, cc.pad}}, &xs,
                                      gb || kb);
            expect_type(fx, dx, &xs, gb || kb);
            check_vjp(fx, dx);
            fx_free(fx);
        }
}

/* Second order, directly: dK = conv2d_back_kernel(x, g), per sample or
 * batch-summed (MM_SUM_BATCH, the shared-kernel case), as a function of
 * both inputs (its VJP is conv2d_back_input and conv2d). */
static void test_conv2d_back_kernel(void **state)
{
    (void)state;
    static const struct {
        bool xb, gb, sum;
        const char *name;
    } modes[] = {
        {true, true, true, "x, g batched, batch-summed"},
        {true, true, false, "x, g batched, per sample"},
        {false, false, false, "x, g unbatched"},
        {true, false, true, "x batched, g shared, batch-summed"},
        {false, true, true, "x shared, g batched, batch-summed"},
        {false, true, false, "x shared, g batched, per sample"},
    };
    Rng r = rng_seeded(1901);
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++)
        for (int trial = 0; trial < 5; trial++) {
            bool xb = modes[m].xb, gb = modes[m].gb, sum = modes[m].sum;
            Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
            ConvCase cc = rand_conv_case(&r, 1 + trial % 3, (trial + (int)m) % 3);
            describe_conv(fx, "conv2d_back_kernel", &cc, modes[m].name);
            Shape xs = conv_x_shape(&cc), ks = conv_k_shape(&cc), ys = conv_y_shape(&cc);
            NodeId x = fx_input(fx, &xs, xb, D_WIDE);
            NodeId gy = fx_input(fx, &ys, gb, D_WIDE);
            bool out_b = (xb || gb) && !sum;
            NodeId dK = build_spatial(fx, OP_CONV2D_BACK_KERNEL, x, gy,
                                      (Attr){.ints = {cc.stride, cc.pad, sum ? MM_SUM_BATCH : 0}}, &ks, out_b);
            expect_type(fx, dK, &ks, out_b);
            check_vjp(fx, dK);
            fx_free(fx);
        }
}

/* Second order, the way a derivation meets it: the cotangents ir_vjp makes
 * for conv2d(x, K) under a cotangent input g (dx = back_input(g, K)
 * reduced to x's type, dK = back_kernel(x, g) batch-summed for a shared
 * K), each FD-checked as a function of the original leaves and g. */
static void test_conv2d_second_order(void **state)
{
    (void)state;
    Rng r = rng_seeded(2001);
    for (size_t m = 0; m < sizeof CONV_MODES / sizeof *CONV_MODES; m++)
        for (int trial = 0; trial < 4; trial++) {
            bool xb = CONV_MODES[m].xb, kb = CONV_MODES[m].kb;
            Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
            ConvCase cc = rand_conv_case(&r, rng_int(&r, 1, 3), rng_int(&r, 0, 2));
            Shape xs = conv_x_shape(&cc), ks = conv_k_shape(&cc), ys = conv_y_shape(&cc);
            NodeId x = fx_input(fx, &xs, xb, D_WIDE);
            NodeId K = fx_input(fx, &ks, kb, D_WIDE);
            NodeId gy = fx_input(fx, &ys, xb || kb, D_WIDE);
            BuildError err = {""};
            NodeId y = ir_conv2d(fx->g, x, K, cc.stride, cc.pad, &err);
            if (y == NO_NODE)
                fail_msg("%s", err.message);
            NodeId *leaf = fx_vjp(fx, y, gy, false);
            NodeId dx = leaf[load_buf(fx, x)], dK = leaf[load_buf(fx, K)];
            free(leaf);
            assert_int_not_equal(dx, NO_NODE);
            assert_int_not_equal(dK, NO_NODE);
            expect_type(fx, dx, &xs, xb);
            expect_type(fx, dK, &ks, kb);
            /* a shared kernel's cotangent is one batch-summed back_kernel
             * (MM_SUM_BATCH), not a per-sample one reduced afterwards */
            if (xb && !kb) {
                assert_int_equal(ir_node(fx->g, dK)->op, OP_CONV2D_BACK_KERNEL);
                assert_int_equal(ir_node_attr(fx->g, dK)->ints[2], MM_SUM_BATCH);
            }
            /* dx reads g and K, never x; dK reads x and g, never K */
            describe_conv(fx, "d/dx of conv2d as a function", &cc, CONV_MODES[m].name);
            fx->expect_grad[0] = false, fx->expect_grad[1] = fx->expect_grad[2] = true;
            check_vjp(fx, dx);
            describe_conv(fx, "d/dK of conv2d as a function", &cc, CONV_MODES[m].name);
            fx->expect_grad[1] = false, fx->expect_grad[0] = fx->expect_grad[2] = true;
            check_vjp(fx, dK);
            fx_free(fx);
        }
}

/* Fills an input with distinct values ≥ 0.01 apart in a random order, so
 * no window holds a near-tie and a finite-difference step (≤ 2e-6) never
 * moves an argmax. */
static void fill_distinct(Fx *fx, NodeId load, Rng *r)
{
    int b = load_buf(fx, load);
    int64_t n = buf_len(fx, b);
    double *x = buf_data(fx, b);
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.01 * (double)(i - n / 2) + 0.003;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(r) % (uint64_t)(i + 1));
        double t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

/* A side in [k, 7] that is not a multiple of k when k > 1 (floor pooling
 * drops the remainder rows/columns). */
static int pool_side(Rng *r, int k)
{
    for (;;) {
        int n = rng_int(r, k, 7);
        if (k == 1 || n % k)
            return n;
    }
}

/* The reference maxpool of one sample: out[c, i, j] = v[argmax of s over
 * the window] (the first maximum in row-major order). */
static void naive_maxpool(int C, int H, int W, int k, const double *s, const double *v, double *out)
{
    int ho = H / k, wo = W / k;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                int best = -1;
                for (int u = 0; u < k; u++)
                    for (int w = 0; w < k; w++) {
                        int at = (c * H + i * k + u) * W + j * k + w;
                        if (best < 0 || s[at] > s[best])
                            best = at;
                    }
                out[(c * ho + i) * wo + j] = v[best];
            }
}

/* maxpool(x, k) = gather(s = x, v = x): values against the naive max, and
 * d/dx (the cotangent lands on each window's maximum; rows and columns
 * past the last whole window get zero). */
static void test_maxpool(void **state)
{
    (void)state;
    Rng r = rng_seeded(2101);
    for (int k = 1; k <= 3; k++)
        for (int trial = 0; trial < 6; trial++) {
            Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
            int C = rng_int(&r, 1, 3), H = pool_side(&r, k), W = pool_side(&r, k);
            bool xb = trial % 3 != 2;
            fx_describe(fx, "maxpool k = %d of [%d, %d, %d]%s (batch %d)", k, C, H, W, xb ? " batched" : "",
                        fx->batch);
            Shape xs = shape_of(3, C, H, W), ys = shape_of(3, C, H / k, W / k);
            NodeId x = fx_input(fx, &xs, xb, D_WIDE);
            fill_distinct(fx, x, &r);
            BuildError err = {""};
            NodeId y = ir_maxpool(fx->g, x, k, &err);
            if (y == NO_NODE)
                fail_msg("%s: %s", fx->what, err.message);
            assert_int_equal(ir_node(fx->g, y)->op, OP_MAXPOOL_GATHER);
            expect_type(fx, y, &ys, xb);
            double *got = eval_alloc(fx, y);
            int64_t nx = ir_numel(&xs), ny = ir_numel(&ys);
            double *want = calloc((size_t)ny, sizeof *want);
            assert_non_null(want);
            for (int s = 0; s < (xb ? fx->batch : 1); s++) {
                const double *xv = buf_data(fx, load_buf(fx, x)) + s * nx;
                naive_maxpool(C, H, W, k, xv, xv, want);
                expect_values(fx, "maxpool", got + s * ny, want, ny);
            }
            free(got);
            free(want);
            check_vjp(fx, y);
            fx_free(fx);
        }
}

/* The four batchings of (selector, value). */
static const struct {
    bool sb, vb;
    const char *name;
} SEL_MODES[] = {
    {true, true, "s, v batched"},
    {false, true, "s shared, v batched"},
    {true, false, "s batched, v shared"},
    {false, false, "s, v unbatched"},
};

/* The selector of gather/scatter is piecewise constant: ir_vjp must send
 * it nothing, or a cotangent that evaluates to zero. */
static void expect_no_selector_grad(Fx *fx, NodeId y, NodeId sel)
{
    int cbuf;
    NodeId seed = fx_cotangent(fx, y, &cbuf);
    NodeId *leaf = fx_vjp(fx, y, seed, false);
    NodeId ds = leaf[load_buf(fx, sel)];
    free(leaf);
    if (ds == NO_NODE)
        return;
    double *v = eval_alloc(fx, ds);
    for (int64_t i = 0; i < node_len(fx, ds); i++)
        if (v[i] != 0)
            fail_msg("%s: the selector received a nonzero cotangent %g at %lld", fx->what, v[i], (long long)i);
    free(v);
}

/* gather(s, v) and scatter(s, g) with a selector s separate from the
 * value: values against the reference, d/dvalue by finite differences, and
 * d/ds is nothing (FD over s is also taken, and must be zero). */
static void test_maxpool_gather_scatter(void **state)
{
    (void)state;
    Rng r = rng_seeded(2201);
    for (int scatter = 0; scatter < 2; scatter++)
        for (size_t m = 0; m < sizeof SEL_MODES / sizeof *SEL_MODES; m++)
            for (int k = 1; k <= 3; k++) {
                bool sb = SEL_MODES[m].sb, vb = SEL_MODES[m].vb;
                Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
                int C = rng_int(&r, 1, 3), H = pool_side(&r, k), W = pool_side(&r, k);
                fx_describe(fx, "maxpool %s k = %d, s [%d, %d, %d], %s (batch %d)", scatter ? "scatter" : "gather", k,
                            C, H, W, SEL_MODES[m].name, fx->batch);
                Shape big = shape_of(3, C, H, W), small = shape_of(3, C, H / k, W / k);
                NodeId s = fx_input(fx, &big, sb, D_WIDE);
                fill_distinct(fx, s, &r);
                fx->expect_grad[0] = false;
                NodeId v = fx_input(fx, scatter ? &small : &big, vb, D_WIDE);
                Attr a = {.ints = {k}};
                NodeId y;
                if (scatter) {
                    y = build_spatial(fx, OP_MAXPOOL_SCATTER, s, v, a, &big, sb || vb);
                    expect_type(fx, y, &big, sb || vb);
                } else {
                    NodeId in[2] = {s, v};
                    BuildError err = {""};
                    y = ir_build(fx->g, OP_MAXPOOL_GATHER, in, &a, NULL, false, &err);
                    if (y == NO_NODE)
                        fail_msg("%s: %s", fx->what, err.message);
                    expect_type(fx, y, &small, sb || vb);
                }
                /* values: gather picks v at the window maxima of s; scatter
                 * puts g there and zero elsewhere */
                double *got = eval_alloc(fx, y);
                int64_t nb = ir_numel(&big), ns = ir_numel(&small), ny = scatter ? nb : ns;
                double *want = calloc((size_t)nb, sizeof *want);
                double *index = calloc((size_t)nb, sizeof *index);
                double *pos = calloc((size_t)ns, sizeof *pos);
                assert_true(want && index && pos);
                for (int64_t i = 0; i < nb; i++)
                    index[i] = (double)i;   /* gathering the indices finds each window's argmax */
                for (int b = 0; b < (sb || vb ? fx->batch : 1); b++) {
                    const double *sv = buf_data(fx, load_buf(fx, s)) + (sb ? b * nb : 0);
                    const double *vv = buf_data(fx, load_buf(fx, v)) + (vb ? b * (scatter ? ns : nb) : 0);
                    if (scatter) {
                        naive_maxpool(C, H, W, k, sv, index, pos);
                        memset(want, 0, sizeof *want * (size_t)nb);
                        for (int64_t i = 0; i < ns; i++)
                            want[(int64_t)pos[i]] = vv[i];
                    } else {
                        naive_maxpool(C, H, W, k, sv, vv, want);
                    }
                    expect_values(fx, scatter ? "scatter" : "gather", got + b * ny, want, ny);
                }
                free(got);
                free(want);
                free(index);
                free(pos);
                check_vjp(fx, y);
                expect_no_selector_grad(fx, y, s);
                fx_free(fx);
            }
}

/* The reference average pool of one sample (floor: the remainder is dropped). */
static void naive_avgpool(int C, int H, int W, int k, const double *x, double *out)
{
    int ho = H / k, wo = W / k;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                double acc = 0;
                for (int u = 0; u < k; u++)
                    for (int w = 0; w < k; w++)
                        acc += x[(c * H + i * k + u) * W + j * k + w];
                out[(c * ho + i) * wo + j] = acc / (k * k);
            }
}

/* avgpool(x, k), and avgpool_back(g) (g / k² spread over each window,
 * zero past the last whole window) as a function of g. */
static void test_avgpool(void **state)
{
    (void)state;
    Rng r = rng_seeded(2301);
    for (int back = 0; back < 2; back++)
        for (int k = 1; k <= 3; k++)
            for (int trial = 0; trial < 6; trial++) {
                Fx *fx = fx_new(rng_next(&r), rng_int(&r, 2, 3));
                int C = rng_int(&r, 1, 3);
                /* odd trials: sides that are not multiples of k (k > 1) */
                int H = trial & 1 ? pool_side(&r, k) : k * rng_int(&r, 1, 7 / k);
                int W = trial & 1 ? pool_side(&r, k) : rng_int(&r, k, 7);
                bool xb = trial % 3 != 2;
                fx_describe(fx, "%s k = %d, x [%d, %d, %d]%s (batch %d)", back ? "avgpool_back" : "avgpool", k, C, H, W,
                            xb ? " batched" : "", fx->batch);
                Shape big = shape_of(3, C, H, W), small = shape_of(3, C, H / k, W / k);
                Attr a = {.ints = {k}};
                NodeId x = fx_input(fx, back ? &small : &big, xb, D_WIDE), y;
                if (back) {
                    y = build_spatial(fx, OP_AVGPOOL_BACK, x, NO_NODE, a, &big, xb);
                    expect_type(fx, y, &big, xb);
                } else {
                    BuildError err = {""};
                    y = ir_avgpool(fx->g, x, k, &err);
                    if (y == NO_NODE)
                        fail_msg("%s: %s", fx->what, err.message);
                    assert_int_equal(ir_node(fx->g, y)->op, OP_AVGPOOL);
                    expect_type(fx, y, &small, xb);
                }
                double *got = eval_alloc(fx, y);
                int64_t nb = ir_numel(&big), ns = ir_numel(&small);
                double *want = calloc((size_t)nb, sizeof *want);
                assert_non_null(want);
                for (int s = 0; s < (xb ? fx->batch : 1); s++) {
                    const double *xv = buf_data(fx, load_buf(fx, x)) + s * (back ? ns : nb);
                    if (back) {   /* out[c, r, q] = g[c, r / k, q / k] / k² inside the windows */
                        for (int c = 0; c < C; c++)
                            for (int rr = 0; rr < H; rr++)
                                for (int q = 0; q < W; q++)
                                    want[(c * H + rr) * W + q] =
                                        rr < H / k * k && q < W / k * k
                                            ? xv[(c * (H / k) + rr / k) * (W / k) + q / k] / (k * k)
                                            : 0;
                        expect_values(fx, "avgpool_back", got + s * nb, want, nb);
                    } else {
                        naive_avgpool(C, H, W, k, xv, want);
                        expect_values(fx, "avgpool", got + s * ns, want, ns);
                    }
                }
                free(got);
                free(want);
                check_vjp(fx, y);
                fx_free(fx);
            }
}

/* Smallest distance of the pre-activation from relu's kink, and of each
 * positive window maximum from its runner-up, over every sample. */
static double composite_margin(Fx *fx, NodeId pre, int O, int H, int W, int k)
{
    double *v = eval_alloc(fx, pre);
    double margin = INFINITY;
    int samples = ir_node(fx->g, pre)->batched ? fx->batch : 1;
    for (int s = 0; s < samples; s++) {
        const double *z = v + (int64_t)s * O * H * W;
        for (int i = 0; i < O * H * W; i++)
            margin = fmin(margin, fabs(z[i]));
        for (int o = 0; o < O; o++)
            for (int i = 0; i < H / k; i++)
                for (int j = 0; j < W / k; j++) {
                    double top = 0, second = 0;   /* relu outputs: ties at 0 pass nothing either way */
                    for (int u = 0; u < k; u++)
                        for (int w = 0; w < k; w++) {
                            double t = fmax(0, z[(o * H + i * k + u) * W + j * k + w]);
                            if (t > top)
                                second = top, top = t;
                            else if (t > second)
                                second = t;
                        }
                    if (top > 0)
                        margin = fmin(margin, top - second);
                }
    }
    free(v);
    return margin;
}

/* y = maxpool(relu(conv2d(x, K)), 2), x [1, 8, 8] batched, K [2, 1, 3, 3]
 * shared, by finite differences w.r.t. x and K.  Draws whose relu inputs or
 * window maxima come within 1e-3 of a kink or tie are skipped, so the FD
 * steps (≤ 2e-6 · max(1, |x|), moving a conv output by < 1e-4) stay on one
 * smooth piece. */
static void test_spatial_composite(void **state)
{
    (void)state;
    Rng r = rng_seeded(2401);
    int done = 0;
    for (int attempt = 0; attempt < 200 && done < 4; attempt++) {
        Fx *fx = fx_new(rng_next(&r), 3);
        fx_describe(fx, "maxpool(relu(conv2d(x [1, 8, 8] batched, K [2, 1, 3, 3])), 2), attempt %d", attempt);
        Shape xs = shape_of(3, 1, 8, 8);
        Shape ks = {.rank = 4, .dims = {2, 1, 3, 3}};
        NodeId x = fx_input(fx, &xs, true, D_WIDE);
        NodeId K = fx_input(fx, &ks, false, D_UNIT);
        BuildError err = {""};
        NodeId z = ir_conv2d(fx->g, x, K, 1, 0, &err);
        if (z == NO_NODE)
            fail_msg("%s: %s", fx->what, err.message);
        if (composite_margin(fx, z, 2, 6, 6, 2) < 1e-3) {
            fx_free(fx);
            continue;
        }
        NodeId y = ir_maxpool(fx->g, ir_unary(fx->g, OP_RELU, z), 2, &err);
        if (y == NO_NODE)
            fail_msg("%s: %s", fx->what, err.message);
        Shape ys = shape_of(3, 2, 3, 3);
        expect_type(fx, y, &ys, true);
        check_vjp(fx, y);
        fx_free(fx);
        done++;
    }
    assert_int_equal(done, 4);
}

/* A LOAD of a fresh buffer (not an FD input: the error cases evaluate nothing). */
static NodeId plain_load(Fx *fx, const Shape *s, bool batched)
{
    char name[16];
    snprintf(name, sizeof name, "t%d", fx->m->n_buffers);
    int b = fx_buffer(fx, name, s, batched, batched ? BUF_VALUE : BUF_PARAM);
    return ir_load(fx->g, b, ir_shape_id(fx->g, s), batched);
}

static void expect_error(const BuildError *err, NodeId got, const char *const *needles, int n)
{
    if (got != NO_NODE)
        fail_msg("the builder accepted the node (expected: %s)", needles[0]);
    for (int i = 0; i < n; i++)
        if (!strstr(err->message, needles[i]))
            fail_msg("the message \"%s\" does not mention \"%s\"", err->message, needles[i]);
}

#define EXPECT_ERROR(err, call, ...)                                                       \
    do {                                                                                   \
        static const char *const needles_[] = {__VA_ARGS__};                               \
        strcpy((err).message, "(no message)");                                            \
        NodeId got_ = (call);                                                              \
        expect_error(&(err), got_, needles_, (int)(sizeof needles_ / sizeof *needles_));   \
    } while (0)

/* Shape rules: each misuse returns NO_NODE with a message naming the
 * operands' shapes; the legal boundary cases next to each are accepted. */
static void test_spatial_shape_errors(void **state)
{
    (void)state;
    Fx *fx = fx_new(2501, 2);
    fx_describe(fx, "spatial shape errors");
    Graph *g = fx->g;
    Shape x255 = shape_of(3, 2, 5, 5), x133 = shape_of(3, 1, 3, 3), x125 = shape_of(3, 1, 2, 5);
    Shape k3333 = {.rank = 4, .dims = {3, 3, 3, 3}}, k2233 = {.rank = 4, .dims = {2, 2, 3, 3}};
    Shape k1155 = {.rank = 4, .dims = {1, 1, 5, 5}}, k1113 = {.rank = 4, .dims = {1, 1, 1, 3}};
    Shape mat = shape_of(2, 5, 5, 0);
    NodeId x = plain_load(fx, &x255, true);
    NodeId xs = plain_load(fx, &x133, true);
    NodeId xt = plain_load(fx, &x125, true);
    Shape x152 = shape_of(3, 1, 5, 2);
    NodeId xw = plain_load(fx, &x152, true);
    NodeId m2 = plain_load(fx, &mat, true);
    NodeId Kbad = plain_load(fx, &k3333, false);
    NodeId K = plain_load(fx, &k2233, false);
    NodeId Kbig = plain_load(fx, &k1155, false);
    NodeId Kwide = plain_load(fx, &k1113, false);
    BuildError err;

    /* channel mismatch: 2 input channels, the kernel expects 3 */
    EXPECT_ERROR(err, ir_conv2d(g, x, Kbad, 1, 0, &err), "channel", "[2, 5, 5]", "[3, 3, 3, 3]");
    assert_int_not_equal(ir_conv2d(g, x, K, 1, 0, &err), NO_NODE);
    /* kernel larger than the padded input: 5 × 5 over 3 × 3 needs pad 1 */
    EXPECT_ERROR(err, ir_conv2d(g, xs, Kbig, 1, 0, &err), "larger", "[1, 1, 5, 5]", "[1, 3, 3]");
    NodeId fits = ir_conv2d(g, xs, Kbig, 1, 1, &err);
    assert_int_not_equal(fits, NO_NODE);
    Shape one = shape_of(3, 1, 1, 1);
    assert_true(ir_shape_eq(ir_node_shape(g, fits), &one));
    /* ... in one direction only: a 1 × 3 kernel fits [1, 2, 5], a 3 × 1
     * kernel does not (height 3 > 2 + 2 · 0) */
    assert_int_not_equal(ir_conv2d(g, xt, Kwide, 1, 0, &err), NO_NODE);
    Shape k1131 = {.rank = 4, .dims = {1, 1, 3, 1}};
    NodeId Ktall = plain_load(fx, &k1131, false);
    EXPECT_ERROR(err, ir_conv2d(g, xt, Ktall, 1, 0, &err), "larger", "[1, 1, 3, 1]", "[1, 2, 5]");
    /* stride 0 (and a negative one), negative padding */
    EXPECT_ERROR(err, ir_conv2d(g, x, K, 0, 0, &err), "stride = 0");
    EXPECT_ERROR(err, ir_conv2d(g, x, K, -1, 0, &err), "stride = -1");
    EXPECT_ERROR(err, ir_conv2d(g, x, K, 1, -1, &err), "pad = -1");
    /* wrong ranks */
    EXPECT_ERROR(err, ir_conv2d(g, m2, K, 1, 0, &err), "[5, 5]", "[2, 2, 3, 3]");
    EXPECT_ERROR(err, ir_conv2d(g, x, x, 1, 0, &err), "[2, 5, 5]");
    /* pooling window larger than the input (in either direction), or < 1 */
    EXPECT_ERROR(err, ir_maxpool(g, xt, 3, &err), "[1, 2, 5]", "3");
    EXPECT_ERROR(err, ir_avgpool(g, xt, 3, &err), "[1, 2, 5]", "3");
    EXPECT_ERROR(err, ir_maxpool(g, x, 6, &err), "[2, 5, 5]", "6");
    EXPECT_ERROR(err, ir_avgpool(g, x, 6, &err), "[2, 5, 5]", "6");
    EXPECT_ERROR(err, ir_maxpool(g, xw, 3, &err), "[1, 5, 2]", "3");
    EXPECT_ERROR(err, ir_avgpool(g, xw, 3, &err), "[1, 5, 2]", "3");
    EXPECT_ERROR(err, ir_maxpool(g, x, 0, &err), "[2, 5, 5]");
    EXPECT_ERROR(err, ir_avgpool(g, m2, 2, &err), "[5, 5]");
    assert_int_not_equal(ir_maxpool(g, xt, 2, &err), NO_NODE);
    /* gather(s, v) with a value input of another shape than its selector
     * (evaluating it would read v out of bounds) */
    NodeId in[2] = {x, xs};
    Attr pool2 = {.ints = {2}};
    EXPECT_ERROR(err, ir_build(g, OP_MAXPOOL_GATHER, in, &pool2, NULL, false, &err), "[2, 5, 5]", "[1, 3, 3]");
    assert_int_not_equal(ir_avgpool(g, x, 5, &err), NO_NODE);
    fx_free(fx);
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
        TEST(test_conv2d),
        TEST(test_conv2d_back_input),
        TEST(test_conv2d_back_kernel),
        TEST(test_conv2d_second_order),
        TEST(test_maxpool),
        TEST(test_maxpool_gather_scatter),
        TEST(test_avgpool),
        TEST(test_spatial_composite),
        TEST(test_spatial_shape_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
