/* gemm.h — dense matrix products for the runtime, in float
 * and double: C = op(A)·op(B) (+ C), row-major, any sizes and strides.
 * Large products go through a packed, cache-blocked, register-tiled kernel
 * (BLIS/GotoBLAS style) compiled for AVX-512, AVX2+FMA and plain x86-64;
 * the best one the CPU supports is picked once, at first use.  Tiny
 * products (Kalman-sized) run a direct loop with no packing or allocation.
 * Large products run in pieces on the calling thread's ambient team
 * (team.h) when it has one; the pieces depend on the shape alone, so
 * results never depend on the number of threads.  Thread-safe: no mutable
 * global state besides a pthread_once choice. */
#ifndef FEP_GEMM_H
#define FEP_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* C[M×N] = op(A)[M×K] · op(B)[K×N], or C += that product when accumulate.
 * Row-major: element (i, j) of a matrix X with leading dimension ldx is
 * X[i*ldx + j].  op(A) = Aᵀ when ta (A is then stored K×M), likewise B/tb.
 * Any M, N, K ≥ 0 (K = 0 gives C = 0, or leaves C alone when accumulating);
 * no alignment requirements; C must not overlap A or B.  Accumulation is in
 * the element type; results match a double-accumulated reference to
 * rounding.  May allocate scratch (aborts on out-of-memory). */
void fep_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta, const float *B, int64_t ldb,
               bool tb, float *C, int64_t ldc, bool accumulate);
void fep_dgemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta, const double *B,
               int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate);

/* Code paths, for tests and benchmarks.  FEP_GEMM_AUTO is what fep_sgemm
 * and fep_dgemm use (the best supported ISA, the direct loop for tiny
 * products); the others force one path for every size. */
typedef enum FepGemmPath {
    FEP_GEMM_AUTO,
    FEP_GEMM_DIRECT,  /* the plain loop used for tiny products */
    FEP_GEMM_GENERIC, /* blocked, plain x86-64 (SSE2) */
    FEP_GEMM_AVX2,    /* blocked, AVX2 + FMA */
    FEP_GEMM_AVX512,  /* blocked, AVX-512F */
    FEP_GEMM_NPATHS
} FepGemmPath;

/* Whether this CPU can run `path` (AUTO, DIRECT and GENERIC always can). */
bool fep_gemm_path_supported(FepGemmPath path);
/* A short name: "avx512", "avx2", "generic", "direct"; for AUTO the ISA that
 * AUTO picked on this CPU. */
const char *fep_gemm_path_name(FepGemmPath path);
/* The register tile (rows × columns of C per micro-kernel call) of a blocked
 * path for float (dbl false) or double; 0×0 for AUTO and DIRECT. */
void fep_gemm_path_tile(FepGemmPath path, bool dbl, int *mr, int *nr);

/* fep_sgemm / fep_dgemm through a given path.  An unsupported path aborts. */
void fep_sgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta,
                    const float *B, int64_t ldb, bool tb, float *C, int64_t ldc, bool accumulate);
void fep_dgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta,
                    const double *B, int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate);

#endif
