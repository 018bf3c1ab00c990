/* test_conv.c — cmocka tests for the compiled code's spatial kernels
 * (runtime/conv.c): conv2d, back_input and back_kernel through both
 * implementations (direct loops, im2col + GEMM) and the automatic choice,
 * and the pools, in float and double, against the reference ir_spatial_eval
 * (ir/spatial.c) on random shapes with strides 1–3, padding 0–2, kernels
 * that do not tile the input, every batching of the operands, and the
 * batch-summed kernel gradient.  Outputs start as NaN, so a cell the
 * kernel forgets to write fails the comparison.
 * Tolerances: f64 1e-12, f32 1e-5, relative to the reference's largest
 * entry (f32 inputs are rounded to float before the reference sees them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/ir.h"
#include "runtime/conv.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static const char *const path_names[] = {"auto", "direct", "im2col"};
static long checked; /* (op, shape, batching, path, type) combinations compared */

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }

static double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0 * 2 - 1; }

/* One spatial op: its graph node (for the reference) and its descriptor. */
typedef struct Built {
    Arena arena;
    Graph g;
    NodeId id;
    FepKernelDesc d;
    int64_t len[3]; /* inputs 0, 1 and the output, over the whole batch */
    int batch;
} Built;

static void build(Built *bt, Op op, int n_in, const Shape sh[3], const bool batched[3], Attr attr, int batch)
{
    *bt = (Built){.batch = batch, .d = {.op = op, .n_in = n_in}};
    ir_graph_init(&bt->g, &bt->arena);
    NodeId in[2];
    for (int i = 0; i < 3; i++) {
        if (i < n_in)
            in[i] = ir_load(&bt->g, i, ir_shape_id(&bt->g, &sh[i]), batched[i]);
        bt->d.batched[i] = batched[i];
        bt->d.rank[i] = sh[i].rank;
        for (int k = 0; k < sh[i].rank; k++)
            bt->d.dims[i][k] = sh[i].dims[k];
        bt->len[i] = i < n_in || i == 2 ? ir_numel(&sh[i]) * (batched[i] ? batch : 1) : 0;
    }
    for (int k = 0; k < 4; k++)
        bt->d.attr[k] = attr.ints[k];
    bt->id = ir_intern(&bt->g, op, n_in, in, ir_shape_id(&bt->g, &sh[2]), batched[2], &attr, (Span){0});
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* Runs every path in type f64 or f32 and compares with the reference. */
static void check_type(Built *bt, bool f64, const char *what)
{
    double *in[2], *ref = calloc((size_t)bt->len[2] + 1, sizeof *ref);
    float *fin[2];
    for (int i = 0; i < 2; i++) {
        in[i] = malloc(sizeof *in[i] * (size_t)(bt->len[i] + 1));
        fin[i] = malloc(sizeof *fin[i] * (size_t)(bt->len[i] + 1));
        for (int64_t k = 0; k < bt->len[i]; k++) {
            fin[i][k] = (float)rng_unit();
            in[i][k] = f64 ? rng_unit() : fin[i][k];
        }
    }
    const double *ins[2] = {in[0], bt->d.n_in > 1 ? in[1] : NULL};
    ir_spatial_eval(&bt->g, bt->id, ins, ref, bt->batch);
    double scale = fmax(max_abs(ref, bt->len[2]), 1e-300), tol = f64 ? 1e-12 : 1e-5;
    double *out = malloc(sizeof *out * (size_t)(bt->len[2] + 1));
    float *fout = malloc(sizeof *fout * (size_t)(bt->len[2] + 1));
    for (FepConvPath path = FEP_CONV_AUTO; path <= FEP_CONV_IM2COL; path++) {
        for (int64_t k = 0; k < bt->len[2]; k++)
            out[k] = fout[k] = NAN;
        if (f64)
            fep_spatial_f64(path, &bt->d, in[0], in[1], out, bt->batch);
        else
            fep_spatial_f32(path, &bt->d, fin[0], fin[1], fout, bt->batch);
        double worst = 0;
        for (int64_t k = 0; k < bt->len[2]; k++) {
            double diff = fabs((f64 ? out[k] : fout[k]) - ref[k]) / scale;
            worst = isnan(diff) || diff > worst ? (isnan(diff) ? INFINITY : diff) : worst;
        }
        if (worst > tol)
            fail_msg("%s, %s, %s: error %.3g > %.0e", what, f64 ? "f64" : "f32", path_names[path], worst, tol);
        checked++;
    }
    for (int i = 0; i < 2; i++) {
        free(in[i]);
        free(fin[i]);
    }
    free(ref);
    free(out);
    free(fout);
}

static void check(Op op, int n_in, const Shape sh[3], const bool batched[3], Attr attr, int batch, const char *what)
{
    for (int f64 = 0; f64 < 2; f64++) {
        Built bt;
        build(&bt, op, n_in, sh, batched, attr, batch);
        check_type(&bt, f64, what);
        arena_free(&bt.arena);
    }
}

/* ---- convolutions ---- */

typedef struct Geom {
    int c, h, w, o, kh, kw, stride, pad;
} Geom;

/* Every op and batching of one geometry: x [C,H,W], K [O,C,kh,kw], y [O,ho,wo]. */
static void check_geom(Geom g, int batch)
{
    int ho = (g.h + 2 * g.pad - g.kh) / g.stride + 1, wo = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
    Shape x = {3, {g.c, g.h, g.w}}, k = {4, {g.o, g.c, g.kh, g.kw}}, y = {3, {g.o, ho, wo}};
    char what[160];
    for (int mask = 0; mask < 4; mask++) {
        bool b0 = mask & 1, b1 = mask & 2, any = b0 || b1;
        snprintf(what, sizeof what, "x[%d,%d,%d] K[%d,%d,%d,%d] s%d p%d batch %d, operands batched %d%d", g.c, g.h,
                 g.w, g.o, g.c, g.kh, g.kw, g.stride, g.pad, batch, b0, b1);
        Attr a = {.ints = {g.stride, g.pad}};
        check(OP_CONV2D, 2, (Shape[3]){x, k, y}, (bool[3]){b0, b1, any}, a, batch, what);
        check(OP_CONV2D_BACK_INPUT, 2, (Shape[3]){y, k, x}, (bool[3]){b0, b1, any}, a, batch, what);
        check(OP_CONV2D_BACK_KERNEL, 2, (Shape[3]){x, y, k}, (bool[3]){b0, b1, any}, a, batch, what);
        if (any) {   /* the shared kernel's gradient: summed over the batch */
            Attr sum = {.ints = {g.stride, g.pad, MM_SUM_BATCH}};
            check(OP_CONV2D_BACK_KERNEL, 2, (Shape[3]){x, y, k}, (bool[3]){b0, b1, false}, sum, batch, what);
        }
    }
}

static void test_conv_fixed(void **state)
{
    static const Geom geoms[] = {
        {1, 28, 28, 6, 5, 5, 1, 0},  /* small_cnn conv1 */
        {6, 12, 12, 16, 5, 5, 1, 0}, /* small_cnn conv2 */
        {3, 9, 9, 4, 3, 3, 1, 1},    /* "same" padding */
        {3, 9, 8, 4, 3, 3, 2, 1},    /* stride 2, odd size: a row and column never read */
        {2, 7, 7, 3, 3, 2, 2, 2},    /* padding wider than half the kernel */
        {2, 5, 6, 2, 5, 6, 1, 0},    /* kernel as large as the input */
        {2, 3, 3, 2, 5, 5, 3, 2},    /* kernel larger than the input */
        {4, 6, 6, 3, 1, 1, 1, 0},    /* 1 × 1 */
    };
    for (size_t i = 0; i < sizeof geoms / sizeof *geoms; i++)
        check_geom(geoms[i], 3);
}

static void test_conv_random(void **state)
{
    for (int t = 0; t < 60; t++) {
        Geom g = {rng_int(1, 4), rng_int(1, 11), rng_int(1, 11), rng_int(1, 5), 0, 0, rng_int(1, 3), rng_int(0, 2)};
        g.kh = rng_int(1, g.h + 2 * g.pad < 5 ? g.h + 2 * g.pad : 5);
        g.kw = rng_int(1, g.w + 2 * g.pad < 5 ? g.w + 2 * g.pad : 5);
        check_geom(g, rng_int(1, 4));
    }
}

/* ---- pools ---- */

static void check_pool(int c, int h, int w, int k, int batch)
{
    Shape big = {3, {c, h, w}}, small = {3, {c, h / k, w / k}};
    char what[120];
    for (int mask = 0; mask < 4; mask++) {
        bool b0 = mask & 1, b1 = mask & 2, any = b0 || b1;
        snprintf(what, sizeof what, "pool [%d,%d,%d] k %d batch %d, operands batched %d%d", c, h, w, k, batch, b0, b1);
        check(OP_MAXPOOL_GATHER, 2, (Shape[3]){big, big, small}, (bool[3]){b0, b1, any},
              (Attr){.ints = {k}}, batch, what);
        check(OP_MAXPOOL_SCATTER, 2, (Shape[3]){big, small, big}, (bool[3]){b0, b1, any},
              (Attr){.ints = {k}}, batch, what);
        check(OP_AVGPOOL, 1, (Shape[3]){big, {0}, small}, (bool[3]){b0, false, b0},
              (Attr){.ints = {k}}, batch, what);
        check(OP_AVGPOOL_BACK, 1, (Shape[3]){small, {0}, big}, (bool[3]){b0, false, b0},
              (Attr){.ints = {k}}, batch, what);
    }
}

static void test_pools(void **state)
{
    check_pool(6, 24, 24, 2, 3);   /* small_cnn */
    check_pool(2, 7, 5, 3, 2);     /* windows that do not tile the input */
    for (int t = 0; t < 20; t++) {
        int k = rng_int(1, 3);
        check_pool(rng_int(1, 3), rng_int(k, 9), rng_int(k, 9), k, rng_int(1, 3));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_fixed),
        cmocka_unit_test(test_conv_random),
        cmocka_unit_test(test_pools),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("spatial kernels: %ld (op, shape, batching, path, type) combinations compared with ir_spatial_eval\n",
           checked);
    return failed;
}
