/* gemm_bench.c — fep_sgemm (runtime/gemm.c) against OpenBLAS's cblas_sgemm on
 * the products fmnist training runs (batch 64), a few large square ones, and
 * the tiny Kalman-filter products (or fep_dgemm against cblas_dgemm).  Single
 * thread (openblas_set_num_threads(1)).
 * For each shape both libraries run in the same process, repetitions
 * interleaved, and the median of the timings is reported as GFLOP/s, beside
 * an estimate of the core's peak (clock from a calibrated
 * dependent-multiply loop run before every timing, as the VM's clock wanders).
 *
 * Usage: gemm_bench [--reps N] [--double] [--path direct|generic|avx2|avx512]
 * --double: fep_dgemm against cblas_dgemm; --path: force one fep path for every
 * size.  OPENBLAS_CORETYPE=Haswell makes OpenBLAS use its AVX2 kernels on CPUs it
 * does not recognise (it otherwise falls back to Prescott, SSE3). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "runtime/gemm.h"

typedef struct Shape {
    const char *what;
    int64_t M, N, K;
    bool ta, tb;
} Shape;

/* fepc's calls for the fmnist MLP (784-256-256-10) at batch 64. */
static const Shape shapes[] = {
    {"fwd L1  X·W1ᵀ", 64, 256, 784, false, true},
    {"fwd L2  H·W2ᵀ", 64, 256, 256, false, true},
    {"fwd out H·W3ᵀ", 64, 10, 256, false, true},
    {"bwd     E·W2", 64, 256, 256, false, false},
    {"bwd     E·W1", 64, 784, 256, false, false},
    {"bwd     E·W3", 64, 256, 10, false, false},
    {"fwd L1  X·W1 (NN)", 64, 256, 784, false, false},
    {"grad W1 Eᵀ·X", 256, 784, 64, true, false},
    {"grad W2 Eᵀ·H", 256, 256, 64, true, false},
    {"grad W3 Eᵀ·H", 10, 256, 64, true, false},
    {"square", 256, 256, 256, false, false},
    {"square", 512, 512, 512, false, false},
    {"square", 1024, 1024, 1024, false, false},
    {"kalman", 1, 3, 3, false, false},
    {"kalman", 2, 3, 3, false, false},
    {"kalman", 3, 3, 3, false, false},
    {"kalman", 3, 3, 3, false, true},
};

static FepGemmPath bench_path = FEP_GEMM_AUTO; /* --path; set once in main */
static bool bench_double;                      /* --double: fep_dgemm against cblas_dgemm */

/* Clock estimate: a chain of n dependent integer multiplies, 3 cycles each on
 * every x86-64 core since Sandy Bridge (a chain of immediate adds would not
 * do: Golden Cove folds those at rename).  Best of `tries`. */
static double measure_ghz(uint64_t n, int tries)
{
    double best = 0;
    for (int rep = 0; rep < tries; rep++) {
        uint64_t x = 3;
        double t0 = now();
        for (uint64_t i = 0; i < n; i++)
            __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                             "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                             : "+r"(x));
        double ghz = 3 * 8.0 * (double)n / (now() - t0) * 1e-9;
        best = ghz > best ? ghz : best;
    }
    return best;
}

/* Sustained AVX-512 FMA throughput of one core: 20 independent accumulators
 * (latency 4 × 2 ports needs 8), zero operands (no denormals). */
__attribute__((target("avx512f"), noinline)) static double measure_fma_gflops(void)
{
    long n = 10000000;
    double t0 = now();
    __asm__ volatile("vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
                     "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
                     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,18,19,20,21\n\t"
                     "vpxord %%zmm\\r, %%zmm\\r, %%zmm\\r\n\t"
                     ".endr\n"
                     "1:\n\t"
                     ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,18,19,20,21\n\t"
                     "vfmadd231ps %%zmm16, %%zmm17, %%zmm\\r\n\t"
                     ".endr\n\t"
                     "dec %0\n\t"
                     "jnz 1b"
                     : "+r"(n)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
                       "xmm21", "cc");
    return 2.0 * 16 * 20 * 10000000.0 / (now() - t0) * 1e-9;
}

/* Best of three, against interruptions. */
static double best_fma_gflops(void)
{
    double a = measure_fma_gflops(), b = measure_fma_gflops(), c = measure_fma_gflops();
    return fmax(a, fmax(b, c));
}

/* Fills n elements (float, or double when dbl) with values in [-0.5, 0.5). */
static void fill(void *x, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        double v = (double)rand() / (double)RAND_MAX - 0.5;
        if (bench_double)
            ((double *)x)[i] = v;
        else
            ((float *)x)[i] = (float)v;
    }
}

typedef struct Operands {
    void *A, *B, *C;
    int64_t lda, ldb;
} Operands;

static void *alloc_elems(int64_t n)
{
    size_t es = bench_double ? sizeof(double) : sizeof(float);
    return aligned_alloc(64, ((size_t)n * es + 64) / 64 * 64); /* a multiple of the alignment */
}

static Operands operands(const Shape *s)
{
    Operands o;
    int64_t ar = s->ta ? s->K : s->M, ac = s->ta ? s->M : s->K;
    int64_t br = s->tb ? s->N : s->K, bc = s->tb ? s->K : s->N;
    o.lda = ac;
    o.ldb = bc;
    o.A = alloc_elems(ar * ac);
    o.B = alloc_elems(br * bc);
    o.C = alloc_elems(s->M * s->N);
    fill(o.A, (size_t)(ar * ac), 1);
    fill(o.B, (size_t)(br * bc), 2);
    return o;
}

/* Seconds per call of `iters` back-to-back calls. */
static double time_fep(const Shape *s, const Operands *o, int iters)
{
    double t0 = now();
    for (int i = 0; i < iters; i++)
        if (bench_double)
            fep_dgemm_path(bench_path, s->M, s->N, s->K, o->A, o->lda, s->ta, o->B, o->ldb, s->tb, o->C, s->N, false);
        else
            fep_sgemm_path(bench_path, s->M, s->N, s->K, o->A, o->lda, s->ta, o->B, o->ldb, s->tb, o->C, s->N, false);
    return (now() - t0) / iters;
}

static double time_blas(const Shape *s, const Operands *o, int iters)
{
    enum CBLAS_TRANSPOSE ta = s->ta ? CblasTrans : CblasNoTrans, tb = s->tb ? CblasTrans : CblasNoTrans;
    double t0 = now();
    for (int i = 0; i < iters; i++)
        if (bench_double)
            cblas_dgemm(CblasRowMajor, ta, tb, (int)s->M, (int)s->N, (int)s->K, 1.0, o->A, (int)o->lda, o->B,
                        (int)o->ldb, 0.0, o->C, (int)s->N);
        else
            cblas_sgemm(CblasRowMajor, ta, tb, (int)s->M, (int)s->N, (int)s->K, 1.0f, o->A, (int)o->lda, o->B,
                        (int)o->ldb, 0.0f, o->C, (int)s->N);
    return (now() - t0) / iters;
}

static double elem(const void *x, size_t i)
{
    return bench_double ? ((const double *)x)[i] : ((const float *)x)[i];
}

/* Largest difference between the two libraries' results, relative to the
 * largest element. */
static double check(const Shape *s, const Operands *o)
{
    size_t n = (size_t)(s->M * s->N);
    double *ref = malloc(n * sizeof(double) + 1);
    time_blas(s, o, 1);
    for (size_t i = 0; i < n; i++)
        ref[i] = elem(o->C, i);
    time_fep(s, o, 1);
    double worst = 0, scale = 1e-300;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(elem(o->C, i) - ref[i]) / scale);
    free(ref);
    return worst;
}

/* Flops per cycle at peak for the ISA benchmarked: 2 FMA units × lanes × 2
 * (x86-64 without FMA: an SSE add and multiply per cycle). */
static double peak_flops_per_cycle(void)
{
    const char *isa = fep_gemm_path_name(bench_path);
    double f = !strcmp(isa, "avx512") ? 64 : !strcmp(isa, "avx2") ? 32 : 8;
    return bench_double ? f / 2 : f;
}

/* Times one shape: reps rounds of (clock, fep, OpenBLAS), the order of the two
 * libraries alternating; prints medians.  The fraction of peak is the median
 * over rounds of fep's speed over the peak at that round's clock. */
static void bench_shape(const Shape *s, int reps)
{
    Operands o = operands(s);
    double err = check(s, &o);
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    int iters = (int)fmax(1, fmin(1e6, 2e-3 / fmax(flops / 100e9, 5e-9)));
    double *tf = malloc(sizeof(double) * (size_t)reps), *tb = malloc(sizeof(double) * (size_t)reps);
    double *frac = malloc(sizeof(double) * (size_t)reps), *ghz = malloc(sizeof(double) * (size_t)reps);
    time_fep(s, &o, iters);
    time_blas(s, &o, iters);
    for (int r = 0; r < reps; r++) {
        ghz[r] = measure_ghz(20000, 3);
        if (r % 2) {
            tb[r] = time_blas(s, &o, iters);
            tf[r] = time_fep(s, &o, iters);
        } else {
            tf[r] = time_fep(s, &o, iters);
            tb[r] = time_blas(s, &o, iters);
        }
        frac[r] = flops / tf[r] * 1e-9 / (ghz[r] * peak_flops_per_cycle());
    }
    double mf = median(tf, reps), mb = median(tb, reps), mfrac = median(frac, reps), mghz = median(ghz, reps);
    char dims[64];
    snprintf(dims, sizeof dims, "%lldx%lldx%lld %c%c", (long long)s->M, (long long)s->N, (long long)s->K,
             s->ta ? 'T' : 'N', s->tb ? 'T' : 'N');
    if (flops < 1e4)
        printf("%-17s %-18s fep %7.1f ns   blas %7.1f ns    ratio %5.2f                   err %.0e\n", s->what,
               dims, mf * 1e9, mb * 1e9, mb / mf, err);
    else
        printf("%-17s %-18s fep %6.1f  blas %6.1f GFLOP/s  ratio %5.2f  %3.0f%% of peak @%.2f GHz  err %.0e\n",
               s->what, dims, flops / mf * 1e-9, flops / mb * 1e-9, mb / mf, 100 * mfrac, mghz, err);
    fflush(stdout);
    free(tf);
    free(tb);
    free(frac);
    free(ghz);
    free(o.A);
    free(o.B);
    free(o.C);
}

int main(int argc, char **argv)
{
    int reps = 25;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--double")) {
            bench_double = true;
            continue;
        }
        if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            const char *name = argv[++i];
            int p = FEP_GEMM_DIRECT;
            while (p < FEP_GEMM_NPATHS && strcmp(name, fep_gemm_path_name((FepGemmPath)p)))
                p++;
            if (p < FEP_GEMM_NPATHS && fep_gemm_path_supported((FepGemmPath)p)) {
                bench_path = (FepGemmPath)p;
                continue;
            }
            fprintf(stderr, "gemm_bench: unknown or unsupported path '%s'\n", name);
            return 2;
        }
        fprintf(stderr, "usage: gemm_bench [--reps N] [--double] [--path direct|generic|avx2|avx512]\n");
        return 2;
    }
    if (reps < 1)
        reps = 1;
    openblas_set_num_threads(1);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS: %s; kernel %s%s; single thread (openblas_set_num_threads(1))\n", openblas_get_config(),
           openblas_get_corename(), ct ? " (OPENBLAS_CORETYPE set)" : "");
    int mr = 0, nr = 0;
    for (int p = FEP_GEMM_GENERIC; p < FEP_GEMM_NPATHS; p++)
        if (!strcmp(fep_gemm_path_name((FepGemmPath)p), fep_gemm_path_name(bench_path)))
            fep_gemm_path_tile((FepGemmPath)p, bench_double, &mr, &nr);
    printf("%s: %s path%s, %dx%d %s tile\n", bench_double ? "fep_dgemm" : "fep_sgemm", fep_gemm_path_name(bench_path),
           bench_path == FEP_GEMM_AUTO ? " (auto)" : " (forced for every size)", mr, nr,
           bench_double ? "double" : "float");
    double fma = fep_gemm_path_supported(FEP_GEMM_AVX512) ? best_fma_gflops() : 0; /* also warms the clock up */
    double ghz = measure_ghz(2000000, 5), fpc = peak_flops_per_cycle();
    printf("clock ≈ %.2f GHz now (dependent-imul loop, re-measured before every timing); peak = %.0f flop/cycle "
           "(2 FMA units × %.0f lanes × 2, for the ISA benchmarked) ≈ %.0f GFLOP/s\n",
           ghz, fpc, fpc / 4, fpc * ghz);
    if (fma > 0)
        printf("AVX-512 FMA loop: %.0f GFLOP/s = %.1f flop/cycle\n", fma, fma / ghz);
    printf("median of %d interleaved timings per shape; ratio = fep speed / OpenBLAS speed\n\n", reps);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        bench_shape(&shapes[i], reps);
    return 0;
}
