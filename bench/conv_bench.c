/* conv_bench.c — the spatial kernels compiled code calls (runtime/conv.c)
 * against the reference they replaced, ir_spatial_eval in double (which
 * compiled code used to reach through a graph rebuilt per call, not counted
 * here), on small_cnn's two convolutions, a 3×3 "same" layer, a strided one
 * and two with one or two output channels (where the direct loops win), all
 * at batch 64 with the operands batched as training has them
 * (input and gradient per sample, kernel shared, kernel gradient summed),
 * and on small_cnn's pools.
 * For each op and shape the implementations run interleaved in the same
 * process: `rounds` rounds, each timing a block of calls of at least 10 ms
 * per implementation; the median per-call time is reported.
 *
 * Usage: conv_bench [--rounds N] [--double]
 * Prints a header line (starting with #), then per op and shape:
 *   op shape ref_us direct_us im2col_us auto
 * with "-" where an implementation does not apply (pools have no im2col)
 * and auto the path FEP_CONV_AUTO takes. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "ir/ir.h"
#include "runtime/conv.h"

enum { BATCH = 64, MAX_ROUNDS = 64 };

typedef struct Geom {
    const char *name;
    int c, h, w, o, kh, kw, stride, pad;
} Geom;

static const Geom geoms[] = {
    {"small_cnn_conv1", 1, 28, 28, 6, 5, 5, 1, 0},
    {"small_cnn_conv2", 6, 12, 12, 16, 5, 5, 1, 0},
    {"3x3_same_32to64_16x16", 32, 16, 16, 64, 3, 3, 1, 1},
    {"3x3_stride2_16to32_16x16", 16, 16, 16, 32, 3, 3, 2, 1},
    {"3x3_1to1_28x28", 1, 28, 28, 1, 3, 3, 1, 0},
    {"5x5_pad2_3to2_16x16", 3, 16, 16, 2, 5, 5, 1, 2},
};

static bool bench_double; /* --double: the f64 kernels instead of f32 */

/* One op at batch 64: its graph node (for the reference), descriptor and data. */
typedef struct Bench {
    Arena arena;
    Graph g;
    NodeId id;
    FepKernelDesc d;
    int64_t len[3];
    double *in[2], *ref_out;
    void *typed[2], *out;
} Bench;

static void *typed_copy(const double *x, int64_t n)
{
    void *t = malloc((bench_double ? sizeof(double) : sizeof(float)) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        if (bench_double)
            ((double *)t)[i] = x[i];
        else
            ((float *)t)[i] = (float)x[i];
    return t;
}

static void bench_init(Bench *b, Op op, int n_in, const Shape sh[3], const bool batched[3], Attr attr)
{
    *b = (Bench){.d = {.op = op, .n_in = n_in}};
    ir_graph_init(&b->g, &b->arena);
    NodeId in[2];
    for (int i = 0; i < 3; i++) {
        bool used = i < n_in || i == 2;
        if (i < n_in)
            in[i] = ir_load(&b->g, i, ir_shape_id(&b->g, &sh[i]), batched[i]);
        b->d.batched[i] = batched[i];
        b->d.rank[i] = sh[i].rank;
        memcpy(b->d.dims[i], sh[i].dims, sizeof sh[i].dims);
        b->len[i] = used ? ir_numel(&sh[i]) * (batched[i] ? BATCH : 1) : 0;
    }
    memcpy(b->d.attr, attr.ints, sizeof attr.ints);
    b->id = ir_intern(&b->g, op, n_in, in, ir_shape_id(&b->g, &sh[2]), batched[2], &attr, (Span){0});
    srand(7);
    for (int i = 0; i < 2; i++) {
        b->in[i] = malloc(sizeof *b->in[i] * (size_t)(b->len[i] + 1));
        for (int64_t k = 0; k < b->len[i]; k++)
            b->in[i][k] = (double)rand() / RAND_MAX - 0.5;
        b->typed[i] = typed_copy(b->in[i], b->len[i]);
    }
    b->ref_out = malloc(sizeof *b->ref_out * (size_t)(b->len[2] + 1));
    b->out = malloc((bench_double ? sizeof(double) : sizeof(float)) * (size_t)(b->len[2] + 1));
}

static void bench_free(Bench *b)
{
    for (int i = 0; i < 2; i++) {
        free(b->in[i]);
        free(b->typed[i]);
    }
    free(b->ref_out);
    free(b->out);
    arena_free(&b->arena);
}

/* One call of implementation `impl`: 0 the reference, else a FepConvPath. */
static void call(Bench *b, int impl)
{
    if (impl == 0) {
        const double *ins[2] = {b->in[0], b->d.n_in > 1 ? b->in[1] : NULL};
        memset(b->ref_out, 0, sizeof *b->ref_out * (size_t)b->len[2]);   /* it accumulates into zeros */
        ir_spatial_eval(&b->g, b->id, ins, b->ref_out, BATCH);
    } else if (bench_double) {
        fep_spatial_f64((FepConvPath)impl, &b->d, b->typed[0], b->typed[1], b->out, BATCH);
    } else {
        fep_spatial_f32((FepConvPath)impl, &b->d, b->typed[0], b->typed[1], b->out, BATCH);
    }
}

/* Median seconds per call of each implementation in impls[0..n). */
static void measure(Bench *b, const int *impls, int n, int rounds, double *sec)
{
    int reps[3];
    double samples[3][MAX_ROUNDS];
    for (int k = 0; k < n; k++) {   /* warm up and size the blocks to >= 10 ms */
        double t0 = now();
        call(b, impls[k]);
        double t = now() - t0;
        reps[k] = t >= 0.01 ? 1 : (int)(0.01 / (t + 1e-9)) + 1;
    }
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n; k++) {
            double t0 = now();
            for (int i = 0; i < reps[k]; i++)
                call(b, impls[k]);
            samples[k][r] = (now() - t0) / reps[k];
        }
    for (int k = 0; k < n; k++)
        sec[k] = median(samples[k], rounds);
}

static void report(const char *op, const char *shape, Bench *b, bool conv, int rounds)
{
    int impls[3] = {0, FEP_CONV_DIRECT, FEP_CONV_IM2COL};
    double sec[3];
    measure(b, impls, conv ? 3 : 2, rounds, sec);
    if (conv)
        printf("%s %s %.1f %.1f %.1f %s\n", op, shape, 1e6 * sec[0], 1e6 * sec[1], 1e6 * sec[2],
               fep_conv_choice(&b->d) == FEP_CONV_IM2COL ? "im2col" : "direct");
    else
        printf("%s %s %.1f %.1f - direct\n", op, shape, 1e6 * sec[0], 1e6 * sec[1]);
    fflush(stdout);
}

/* The three convolution ops of one geometry, batched as in training. */
static void bench_geom(const Geom *g, int rounds)
{
    int ho = (g->h + 2 * g->pad - g->kh) / g->stride + 1, wo = (g->w + 2 * g->pad - g->kw) / g->stride + 1;
    Shape x = {3, {g->c, g->h, g->w}}, k = {4, {g->o, g->c, g->kh, g->kw}}, y = {3, {g->o, ho, wo}};
    Attr a = {.ints = {g->stride, g->pad}}, sum = {.ints = {g->stride, g->pad, MM_SUM_BATCH}};
    Bench b;
    bench_init(&b, OP_CONV2D, 2, (Shape[3]){x, k, y}, (bool[3]){true, false, true}, a);
    report("conv2d", g->name, &b, true, rounds);
    bench_free(&b);
    bench_init(&b, OP_CONV2D_BACK_INPUT, 2, (Shape[3]){y, k, x}, (bool[3]){true, false, true}, a);
    report("conv2d_back_input", g->name, &b, true, rounds);
    bench_free(&b);
    bench_init(&b, OP_CONV2D_BACK_KERNEL, 2, (Shape[3]){x, y, k}, (bool[3]){true, true, false}, sum);
    report("conv2d_back_kernel", g->name, &b, true, rounds);
    bench_free(&b);
}

/* small_cnn's first pool: [6, 24, 24] in 2 × 2 windows. */
static void bench_pools(int rounds)
{
    Shape big = {3, {6, 24, 24}}, small = {3, {6, 12, 12}};
    Attr a = {.ints = {2}};
    Bench b;
    bench_init(&b, OP_MAXPOOL_GATHER, 2, (Shape[3]){big, big, small}, (bool[3]){true, true, true}, a);
    report("maxpool", "small_cnn_pool1", &b, false, rounds);
    bench_free(&b);
    bench_init(&b, OP_MAXPOOL_SCATTER, 2, (Shape[3]){big, small, big}, (bool[3]){true, true, true}, a);
    report("maxpool_scatter", "small_cnn_pool1", &b, false, rounds);
    bench_free(&b);
    bench_init(&b, OP_AVGPOOL, 1, (Shape[3]){big, {0}, small}, (bool[3]){true, false, true}, a);
    report("avgpool", "small_cnn_pool1", &b, false, rounds);
    bench_free(&b);
}

int main(int argc, char **argv)
{
    int rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--double"))
            bench_double = true;
        else {
            fprintf(stderr, "usage: conv_bench [--rounds N] [--double]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "conv_bench: --rounds must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    printf("# batch %d, %s; microseconds per call (median of %d rounds); reference = ir_spatial_eval in double\n",
           BATCH, bench_double ? "f64" : "f32", rounds);
    printf("# op shape ref_us direct_us im2col_us auto\n");
    for (size_t i = 0; i < sizeof geoms / sizeof *geoms; i++)
        bench_geom(&geoms[i], rounds);
    bench_pools(rounds);
    return 0;
}
