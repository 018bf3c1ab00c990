/* gemm_portable.c — fep_sgemm / fep_dgemm in plain C, for compilers
 * without GCC's vector extensions (the clang fuzzing build).  Same API and
 * results up to rounding as runtime/gemm.c, which GCC builds use; only the
 * "direct" and "generic" paths exist here, both this loop. */
#include "gemm.h"

#include <stdlib.h>

#define DEFINE_GEMM(name, T)                                                                       \
    void name(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, bool ta, const T *B,       \
              int64_t ldb, bool tb, T *C, int64_t ldc, bool accumulate)                            \
    {                                                                                              \
        for (int64_t i = 0; i < M; i++)                                                            \
            for (int64_t j = 0; j < N; j++) {                                                      \
                T sum = 0;                                                                         \
                for (int64_t p = 0; p < K; p++)                                                    \
                    sum += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]); \
                C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum : sum;                          \
            }                                                                                      \
    }

DEFINE_GEMM(fep_sgemm, float)
DEFINE_GEMM(fep_dgemm, double)

bool fep_gemm_path_supported(FepGemmPath path) { return path <= FEP_GEMM_GENERIC; }

const char *fep_gemm_path_name(FepGemmPath path) { return path == FEP_GEMM_DIRECT ? "direct" : "portable"; }

void fep_gemm_path_tile(FepGemmPath path, bool dbl, int *mr, int *nr)
{
    *mr = *nr = 1;
}

void fep_sgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta,
                    const float *B, int64_t ldb, bool tb, float *C, int64_t ldc, bool accumulate)
{
    if (!fep_gemm_path_supported(path))
        abort();
    fep_sgemm(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

void fep_dgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta,
                    const double *B, int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate)
{
    if (!fep_gemm_path_supported(path))
        abort();
    fep_dgemm(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}
