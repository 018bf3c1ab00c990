/* test_gemm.c — cmocka tests for runtime/gemm: every code path this CPU can run
 * (direct loop, blocked x86-64 / AVX2 / AVX-512, and the automatic choice), in
 * float and double, against a naive double-accumulated reference.  Shapes cover
 * 0 and 1, one below/at/above each register tile and cache block, all four
 * transpose combinations, padded leading dimensions, unaligned operands,
 * accumulation, and fepc's fmnist and Kalman products.  Cells of C outside the
 * product (padding and guard zones) must stay untouched; run it under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gemm.h"

enum { GUARD = 7 }; /* elements of sentinel before and after C */

static const double SENTINEL = -12345.0;
static long checked; /* products compared with the reference */

typedef struct Case {
    int64_t M, N, K;
    bool ta, tb, acc;
    int pad;  /* extra leading-dimension elements */
    int skew; /* operands start this many elements past an aligned address */
} Case;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0 - 0.5;
}

static int64_t rng_below(int64_t n)
{
    return (int64_t)(rng_next() % (uint64_t)n);
}

/* aligned_alloc wants a multiple of the alignment. */
static size_t round64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

/* A column count per stored row, and a row count, of op(X) stored transposed or not. */
static void stored_dims(int64_t rows, int64_t cols, bool trans, int64_t *sr, int64_t *sc)
{
    *sr = trans ? cols : rows;
    *sc = trans ? rows : cols;
}

/* Runs one case on one path in float or double and compares with the
 * reference: |C − ref| ≤ tol·(Σ|a·b| + |C₀|) per element. */
static void run_case(FepGemmPath path, bool dbl, const Case *c)
{
    int64_t ar, ac, br, bc;
    stored_dims(c->M, c->K, c->ta, &ar, &ac);
    stored_dims(c->K, c->N, c->tb, &br, &bc);
    int64_t lda = ac + c->pad, ldb = bc + c->pad, ldc = c->N + c->pad;
    size_t na = (size_t)(ar * lda) + 1, nb = (size_t)(br * ldb) + 1, nc = (size_t)(c->M * ldc) + 2 * GUARD;
    double *a = malloc(sizeof(double) * na), *b = malloc(sizeof(double) * nb), *c0 = malloc(sizeof(double) * nc);
    for (size_t i = 0; i < na; i++)
        a[i] = rng_unit();
    for (size_t i = 0; i < nb; i++)
        b[i] = rng_unit();
    for (size_t i = 0; i < nc; i++)
        c0[i] = SENTINEL;
    for (int64_t i = 0; i < c->M; i++)
        for (int64_t j = 0; j < c->N; j++)
            c0[GUARD + i * ldc + j] = c->acc ? rng_unit() : NAN; /* NaN: must be overwritten, not scaled */
    size_t es = dbl ? sizeof(double) : sizeof(float);
    char *sa = aligned_alloc(64, round64((na + 16) * es)), *sb = aligned_alloc(64, round64((nb + 16) * es));
    char *sc = aligned_alloc(64, round64((nc + 16) * es));
    char *pa = sa + c->skew * es, *pb = sb + c->skew * es, *pc = sc + c->skew * es;
    for (size_t i = 0; i < na; i++)
        dbl ? (((double *)pa)[i] = a[i]) : (((float *)pa)[i] = (float)a[i]);
    for (size_t i = 0; i < nb; i++)
        dbl ? (((double *)pb)[i] = b[i]) : (((float *)pb)[i] = (float)b[i]);
    for (size_t i = 0; i < nc; i++)
        dbl ? (((double *)pc)[i] = c0[i]) : (((float *)pc)[i] = (float)c0[i]);
    if (dbl)
        fep_dgemm_path(path, c->M, c->N, c->K, (double *)pa, lda, c->ta, (double *)pb, ldb, c->tb,
                       (double *)pc + GUARD, ldc, c->acc);
    else
        fep_sgemm_path(path, c->M, c->N, c->K, (float *)pa, lda, c->ta, (float *)pb, ldb, c->tb,
                       (float *)pc + GUARD, ldc, c->acc);
    double tol = dbl ? 1e-12 : 1e-5;
    int bad = 0;
    for (int64_t i = 0; i < c->M && bad < 3; i++)
        for (int64_t j = 0; j < c->N && bad < 3; j++) {
            double ref = 0, mag = 0;
            for (int64_t l = 0; l < c->K; l++) {
                double x = dbl ? a[c->ta ? l * lda + i : i * lda + l] : (float)a[c->ta ? l * lda + i : i * lda + l];
                double y = dbl ? b[c->tb ? j * ldb + l : l * ldb + j] : (float)b[c->tb ? j * ldb + l : l * ldb + j];
                ref += x * y;
                mag += fabs(x * y);
            }
            size_t at = (size_t)(GUARD + i * ldc + j);
            if (c->acc) {
                double old = dbl ? c0[at] : (float)c0[at];
                ref += old;
                mag += fabs(old);
            }
            double got = dbl ? ((double *)pc)[at] : ((float *)pc)[at];
            if (!(fabs(got - ref) <= tol * (mag + 1e-30) + 1e-300)) {
                print_error("%s %s M=%lld N=%lld K=%lld ta=%d tb=%d acc=%d pad=%d skew=%d: C[%lld][%lld] = %.17g, "
                            "want %.17g\n",
                            fep_gemm_path_name(path), dbl ? "f64" : "f32", (long long)c->M, (long long)c->N,
                            (long long)c->K, c->ta, c->tb, c->acc, c->pad, c->skew, (long long)i, (long long)j, got,
                            ref);
                bad++;
            }
        }
    for (size_t at = 0; at < nc && bad < 3; at++) {
        bool inside = at >= GUARD && at < nc - GUARD && (int64_t)((at - GUARD) % (size_t)ldc) < c->N;
        double got = dbl ? ((double *)pc)[at] : ((float *)pc)[at];
        if (!inside && got != SENTINEL) {
            print_error("%s: M=%lld N=%lld K=%lld wrote outside C at %zu\n", fep_gemm_path_name(path),
                        (long long)c->M, (long long)c->N, (long long)c->K, at);
            bad++;
        }
    }
    checked++;
    free(a);
    free(b);
    free(c0);
    free(sa);
    free(sb);
    free(sc);
    assert_int_equal(bad, 0);
}

static const FepGemmPath paths[] = {FEP_GEMM_AUTO, FEP_GEMM_DIRECT, FEP_GEMM_GENERIC, FEP_GEMM_AVX2,
                                    FEP_GEMM_AVX512};
enum { NPATH = sizeof paths / sizeof *paths };

/* Every supported path, both element types. */
static void run_all(const Case *c)
{
    for (int p = 0; p < NPATH; p++)
        if (fep_gemm_path_supported(paths[p]))
            for (int dbl = 0; dbl < 2; dbl++)
                run_case(paths[p], dbl, c);
}

static void run_transposes(Case c)
{
    for (int t = 0; t < 4; t++) {
        c.ta = t & 1;
        c.tb = t & 2;
        run_all(&c);
    }
}

/* Sizes 0..3, around every tile edge, and past the K and N blocks. */
static void test_edge_sizes(void **state)
{
    (void)state;
    static const int64_t ms[] = {0, 1, 2, 3, 5, 7, 8, 9, 13, 17, 24, 31};
    static const int64_t ns[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47};
    static const int64_t ks[] = {0, 1, 2, 5, 16, 17};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        for (size_t j = 0; j < sizeof ns / sizeof *ns; j++)
            for (size_t l = 0; l < sizeof ks / sizeof *ks; l++)
                run_transposes((Case){ms[i], ns[j], ks[l], false, false, (i + j + l) % 2 == 1, (int)(j % 3), (int)(i % 2)});
}

/* K across the cache blocks (256 to 1024 steps) with uneven splits. */
static void test_k_blocks(void **state)
{
    (void)state;
    static const int64_t ks[] = {255, 257, 383, 385, 770, 801, 1030, 2100};
    for (size_t l = 0; l < sizeof ks / sizeof *ks; l++)
        run_transposes((Case){19, 37, ks[l], false, false, l % 2 == 1, 1, 1});
}

/* N across the NC block (1024 / 2048 columns). */
static void test_n_blocks(void **state)
{
    (void)state;
    run_transposes((Case){9, 2100, 20, false, false, false, 0, 0});
    run_transposes((Case){3, 1030, 33, false, false, true, 2, 1});
}

/* The ways of feeding the kernels: Q packed (many strips of P, or rows > 4 KB
 * apart) or read in place (few strips), with narrow last panels; and the
 * dot-product path (A·Bᵀ with M or N below a vector and K ≥ 16 vectors),
 * with K tails and uneven tiles. */
static void test_layouts(void **state)
{
    (void)state;
    static const Case cs[] = {
        {100, 47, 30, false, false, false, 0, 1}, {100, 33, 7, false, false, true, 3, 0},
        {150, 1, 9, false, false, false, 0, 0},   {5, 40, 20, false, false, true, 1100, 1},
        {70, 17, 300, false, false, false, 0, 0}, {3, 64, 64, false, false, false, 2000, 0},
        {64, 10, 300, false, true, false, 0, 0},  {3, 70, 1000, false, true, true, 1, 1},
        {17, 5, 257, false, true, true, 2, 0},    {1, 2, 4100, false, true, false, 0, 1},
        {15, 15, 513, false, true, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        run_transposes(cs[i]);
}

/* Random shapes, transposes, padding, alignment and accumulation. */
static void test_random_shapes(void **state)
{
    (void)state;
    rng_state = 12345;
    for (int it = 0; it < 60; it++) {
        Case c = {1 + rng_below(90), 1 + rng_below(90), 1 + rng_below(300), rng_below(2), rng_below(2), rng_below(2),
                  (int)rng_below(4), (int)rng_below(3)};
        run_all(&c);
    }
}

/* fepc's fmnist products (batch 64) and the Kalman-filter ones. */
static void test_model_shapes(void **state)
{
    (void)state;
    static const Case cs[] = {
        {64, 256, 784, false, true, false, 0, 0},  {64, 256, 256, false, true, false, 0, 0},
        {64, 10, 256, false, true, false, 0, 0},   {64, 256, 256, false, false, false, 0, 0},
        {256, 784, 64, true, false, false, 0, 0},  {256, 256, 64, true, false, true, 0, 0},
        {10, 256, 64, true, false, true, 0, 0},    {1, 3, 3, false, false, false, 0, 0},
        {2, 3, 3, false, true, true, 0, 0},        {3, 3, 3, true, true, false, 0, 0},
        {3, 1, 3, false, false, true, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        run_all(&cs[i]);
}

/* Products large enough that AUTO cuts them into pieces, by rows (M > N)
 * and by columns, with widths that leave a short last piece. */
static void test_pieces(void **state)
{
    (void)state;
    static const Case cs[] = {
        {1000, 70, 64, false, false, false, 0, 0}, {70, 1000, 64, false, false, true, 2, 1},
        {129, 257, 130, false, false, false, 1, 0}, {257, 129, 130, false, false, true, 0, 2},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        run_transposes(cs[i]);
}

/* K = 0: C becomes 0, or stays when accumulating; M = 0 or N = 0: nothing. */
static void test_empty(void **state)
{
    (void)state;
    for (int p = 0; p < NPATH; p++) {
        if (!fep_gemm_path_supported(paths[p]))
            continue;
        float c[6] = {1, 2, 3, 4, 5, 6}, a = 7, b = 8;
        fep_sgemm_path(paths[p], 2, 3, 0, &a, 1, false, &b, 3, false, c, 3, true);
        for (int i = 0; i < 6; i++)
            assert_true(c[i] == (float)(i + 1));
        fep_sgemm_path(paths[p], 0, 3, 4, &a, 4, false, &b, 3, false, c, 3, false);
        fep_sgemm_path(paths[p], 2, 0, 4, &a, 4, false, &b, 0, false, c, 3, false);
        for (int i = 0; i < 6; i++)
            assert_true(c[i] == (float)(i + 1));
        double d[4] = {NAN, NAN, NAN, NAN}, x = 1;
        fep_dgemm_path(paths[p], 2, 2, 0, &x, 1, true, &x, 1, true, d, 2, false);
        for (int i = 0; i < 4; i++)
            assert_true(d[i] == 0.0);
    }
}

/* Known small product, exact in floating point. */
static void test_exact(void **state)
{
    (void)state;
    const float a[6] = {1, 2, 3, 4, 5, 6}; /* 2×3 */
    const float b[6] = {7, 8, 9, 10, 11, 12}; /* 3×2 */
    for (int p = 0; p < NPATH; p++) {
        if (!fep_gemm_path_supported(paths[p]))
            continue;
        float c[4];
        fep_sgemm_path(paths[p], 2, 2, 3, a, 3, false, b, 2, false, c, 2, false);
        assert_true(c[0] == 58 && c[1] == 64 && c[2] == 139 && c[3] == 154);
        fep_sgemm_path(paths[p], 2, 2, 3, a, 3, false, b, 2, false, c, 2, true);
        assert_true(c[0] == 116 && c[1] == 128 && c[2] == 278 && c[3] == 308);
    }
}

/* The path names and tiles are consistent; AUTO picks a supported ISA. */
static void test_paths(void **state)
{
    (void)state;
    const char *best = fep_gemm_path_name(FEP_GEMM_AUTO);
    bool found = false;
    for (int p = FEP_GEMM_GENERIC; p < FEP_GEMM_NPATHS; p++) {
        int mr, nr;
        fep_gemm_path_tile((FepGemmPath)p, false, &mr, &nr);
        assert_true(mr > 0 && nr > 0);
        if (!strcmp(best, fep_gemm_path_name((FepGemmPath)p))) {
            assert_true(fep_gemm_path_supported((FepGemmPath)p));
            found = true;
        }
    }
    assert_true(found);
    printf("# gemm auto path: %s\n", best);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),         cmocka_unit_test(test_exact),    cmocka_unit_test(test_empty),
        cmocka_unit_test(test_edge_sizes),    cmocka_unit_test(test_k_blocks), cmocka_unit_test(test_n_blocks),
        cmocka_unit_test(test_layouts),       cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_model_shapes),  cmocka_unit_test(test_pieces),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("# %ld products checked against the reference\n", checked);
    return failed;
}
