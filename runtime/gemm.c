/* gemm.c — the matrix products of gemm.h (BLIS/GotoBLAS design).
 *
 * A product is computed as C' = P·Q.  P (m×k) is the operand whose elements
 * are broadcast: read in place when its rows are contiguous, else packed into
 * strips.  Q (k×n) is loaded as vectors: packed NR columns to a panel
 * (transposing with in-register shuffles when it is stored by columns) unless
 * its rows are contiguous and few strips would reuse a packed copy.  C' is C,
 * or Cᵀ when that avoids transposing the larger operand.  K is cut into blocks
 * whose Q fits in half the L2, N into NC columns; each strip of ≤ MR rows of P
 * sweeps all panels with an MR×NR register tile (AVX-512 float: 8×32, double
 * 8×16; AVX2: 6×16 / 6×8; x86-64: 4×8 / 4×4), or 2·MR×VL when C' is one
 * vector wide.  A·Bᵀ with a narrow side (N = 10) runs as dot products, tiny
 * products as a plain loop.  The typed, per-ISA body is the second half of
 * this file, which includes itself six times (float/double × x86-64/AVX2/
 * AVX-512); the ISA is picked once, at the first call.  AUTO products of
 * at least 2·GEMM_PIECE_MNK multiply-adds are cut, by shape alone, into
 * pieces along C's longer side that run on the caller's ambient team. */
#ifndef GEMM_INSTANCE

#include "runtime/gemm.h"
#include "runtime/team.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    GEMM_DIRECT_MNK = 64,         /* products with at most this many multiply-adds take the direct loop */
    GEMM_LOCAL_BYTES = 16384,     /* scratch up to this size lives on the stack: no malloc for small products */
    GEMM_INPLACE_Q_STRIPS = 8,    /* Q is read unpacked by at most this many strips of P ... */
    GEMM_INPLACE_Q_STRIDE = 4096, /* ... when its rows are at most this many bytes apart */
    GEMM_DOT_MIN_VECTORS = 16,    /* dot-product path: K at least this many vectors (the lane sums amortised) */
    GEMM_PIECE_MNK = 1 << 21,     /* AUTO cuts products into pieces of about this many multiply-adds ... */
    GEMM_PIECE_ALIGN = 32,        /* ... made of units this wide (whole register tiles) ... */
    GEMM_MAX_PIECES = 8,          /* ... at most this many, and an even number */
};

static inline int64_t min_i64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* 64-byte aligned scratch; aborts when memory runs out. */
static void *scratch_alloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "fep gemm: out of memory (%zu bytes of scratch)\n", bytes);
        abort();
    }
    return p;
}

#define GEMM_INSTANCE

#define T float
#define IT int32_t
#define SFX f32_generic
#define VL 4
#define MR 4
#define KC 256
#define NC 1024
#define VEC_TRANSPOSE 0
#define DT 3
#define TGT
#include __FILE__

#define T double
#define IT int64_t
#define SFX f64_generic
#define VL 2
#define MR 4
#define KC 256
#define NC 512
#define VEC_TRANSPOSE 0
#define DT 3
#define TGT
#include __FILE__

#define T float
#define IT int32_t
#define SFX f32_avx2
#define VL 8
#define MR 6
#define KC 256
#define NC 1024
#define VEC_TRANSPOSE 1
#define DT 3
#define TGT __attribute__((target("avx2,fma")))
#include __FILE__

#define T double
#define IT int64_t
#define SFX f64_avx2
#define VL 4
#define MR 6
#define KC 256
#define NC 512
#define VEC_TRANSPOSE 1
#define DT 3
#define TGT __attribute__((target("avx2,fma")))
#include __FILE__

#define T float
#define IT int32_t
#define SFX f32_avx512
#define VL 16
#define MR 8
#define KC 256
#define NC 1024
#define VEC_TRANSPOSE 1
#define DT 4
#define TGT __attribute__((target("avx512f")))
#include __FILE__

#define T double
#define IT int64_t
#define SFX f64_avx512
#define VL 8
#define MR 8
#define KC 256
#define NC 512
#define VEC_TRANSPOSE 1
#define DT 4
#define TGT __attribute__((target("avx512f")))
#include __FILE__

#undef GEMM_INSTANCE

/* ---- the direct loop, for tiny products ---- */

/* gemm.h's contract as a plain scalar loop, one dot product per element of C,
 * any transposes; no allocation, no set-up.  For Kalman-sized products. */
#define FEP_GEMM_DIRECT_LOOP(T, name)                                                                           \
    static inline void name(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, bool ta, const T *B, int64_t ldb, \
                     bool tb, T *C, int64_t ldc, bool accumulate)                                                \
    {                                                                                                            \
        int64_t ai = ta ? 1 : lda, ak = ta ? lda : 1, bk = tb ? 1 : ldb, bj = tb ? ldb : 1;                      \
        for (int64_t i = 0; i < M; i++)                                                                          \
            for (int64_t j = 0; j < N; j++) {                                                                    \
                T s = 0;                                                                                         \
                for (int64_t l = 0; l < K; l++)                                                                  \
                    s += A[i * ai + l * ak] * B[l * bk + j * bj];                                                \
                C[i * ldc + j] = accumulate ? C[i * ldc + j] + s : s;                                            \
            }                                                                                                    \
    }
FEP_GEMM_DIRECT_LOOP(float, direct_f32)
FEP_GEMM_DIRECT_LOOP(double, direct_f64)
#undef FEP_GEMM_DIRECT_LOOP

/* ---- path table and the one-time ISA choice ---- */

typedef void SgemmFn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta, const float *B,
                     int64_t ldb, bool tb, float *C, int64_t ldc, bool accumulate);
typedef void DgemmFn(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta, const double *B,
                     int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate);

typedef struct GemmImpl {
    const char *name;
    SgemmFn *sgemm;
    DgemmFn *dgemm;
    int mr_f, nr_f, mr_d, nr_d;
} GemmImpl;

static const GemmImpl impls[] = {
    [FEP_GEMM_GENERIC] = {"generic", gemm_f32_generic, gemm_f64_generic,
                          tile_rows_f32_generic, tile_cols_f32_generic, tile_rows_f64_generic, tile_cols_f64_generic},
    [FEP_GEMM_AVX2] = {"avx2", gemm_f32_avx2, gemm_f64_avx2, tile_rows_f32_avx2,
                       tile_cols_f32_avx2, tile_rows_f64_avx2, tile_cols_f64_avx2},
    [FEP_GEMM_AVX512] = {"avx512", gemm_f32_avx512, gemm_f64_avx512,
                         tile_rows_f32_avx512, tile_cols_f32_avx512, tile_rows_f64_avx512, tile_cols_f64_avx512},
};

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static unsigned cpu_paths;    /* bit p: path p runs here; written once, under cpu_once */
static FepGemmPath best_path; /* likewise */

static void probe_cpu(void)
{
    __builtin_cpu_init();
    cpu_paths = 1u << FEP_GEMM_AUTO | 1u << FEP_GEMM_DIRECT | 1u << FEP_GEMM_GENERIC;
    best_path = FEP_GEMM_GENERIC;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cpu_paths |= 1u << FEP_GEMM_AVX2;
        best_path = FEP_GEMM_AVX2;
    }
    if (__builtin_cpu_supports("avx512f")) { /* libgcc also checks that the OS saves the zmm state */
        cpu_paths |= 1u << FEP_GEMM_AVX512;
        best_path = FEP_GEMM_AVX512;
    }
}

static const GemmImpl *best_impl(void)
{
    pthread_once(&cpu_once, probe_cpu);
    return &impls[best_path];
}

bool fep_gemm_path_supported(FepGemmPath path)
{
    pthread_once(&cpu_once, probe_cpu);
    return path >= 0 && path < FEP_GEMM_NPATHS && (cpu_paths >> path & 1);
}

const char *fep_gemm_path_name(FepGemmPath path)
{
    if (path == FEP_GEMM_AUTO)
        return best_impl()->name;
    if (path == FEP_GEMM_DIRECT)
        return "direct";
    if (path >= FEP_GEMM_GENERIC && path < FEP_GEMM_NPATHS)
        return impls[path].name;
    return "?";
}

void fep_gemm_path_tile(FepGemmPath path, bool dbl, int *mr, int *nr)
{
    *mr = *nr = 0;
    if (path >= FEP_GEMM_GENERIC && path < FEP_GEMM_NPATHS) {
        *mr = dbl ? impls[path].mr_d : impls[path].mr_f;
        *nr = dbl ? impls[path].nr_d : impls[path].nr_f;
    }
}

/* Whether a product is small enough for the direct loop (no packing). */
static inline bool is_tiny(int64_t M, int64_t N, int64_t K)
{
    return M <= GEMM_DIRECT_MNK && N <= GEMM_DIRECT_MNK && K <= GEMM_DIRECT_MNK && M * N * K <= GEMM_DIRECT_MNK;
}

static const GemmImpl *path_impl(FepGemmPath path)
{
    if (path == FEP_GEMM_AUTO)
        return best_impl();
    if (!fep_gemm_path_supported(path)) {
        fprintf(stderr, "fep gemm: path %d is not supported on this CPU\n", (int)path);
        abort();
    }
    return &impls[path];
}

/* ---- large products in pieces, for the ambient team ---- */

/* One product cut along the longer side of C into n pieces of whole
 * GEMM_PIECE_ALIGN-wide units (rows when by_rows, else columns), as even as
 * the units allow; each piece is an independent product writing its own
 * part of C.  The cut depends on the shape alone, so the result is the
 * same whichever threads run the pieces. */
typedef struct Pieces {
    const GemmImpl *impl;
    bool dbl, by_rows;
    int64_t M, N, K, lda, ldb, ldc;
    int n;
    const void *A, *B;
    void *C;
    bool ta, tb, accumulate;
} Pieces;

/* How many pieces: one per GEMM_PIECE_MNK multiply-adds, at most
 * GEMM_MAX_PIECES and one per unit, and an even number (two or more threads
 * then share them evenly). */
static int n_pieces(int64_t M, int64_t N, int64_t K)
{
    int64_t side = M > N ? M : N;
    int64_t n = min_i64(min_i64(GEMM_MAX_PIECES, M * N * K / GEMM_PIECE_MNK), ceil_div(side, GEMM_PIECE_ALIGN));
    return n < 2 ? 1 : (int)(n / 2 * 2);
}

/* Where piece i starts along the cut side. */
static int64_t piece_start(const Pieces *p, int i)
{
    int64_t side = p->by_rows ? p->M : p->N, units = ceil_div(side, GEMM_PIECE_ALIGN);
    return min_i64(side, units * i / p->n * GEMM_PIECE_ALIGN);
}

static void run_piece(void *arg, int i)
{
    const Pieces *p = arg;
    int64_t at = piece_start(p, i), len = piece_start(p, i + 1) - at;
    size_t es = p->dbl ? sizeof(double) : sizeof(float);
    const char *A = p->A, *B = p->B;
    char *C = p->C;
    int64_t M = p->M, N = p->N;
    if (p->by_rows) {   /* rows of C: rows of op(A) */
        A += (size_t)(p->ta ? at : at * p->lda) * es;
        C += (size_t)(at * p->ldc) * es;
        M = len;
    } else {            /* columns of C: columns of op(B) */
        B += (size_t)(p->tb ? at * p->ldb : at) * es;
        C += (size_t)at * es;
        N = len;
    }
    if (p->dbl)
        p->impl->dgemm(M, N, p->K, (const double *)A, p->lda, p->ta, (const double *)B, p->ldb, p->tb, (double *)C,
                       p->ldc, p->accumulate);
    else
        p->impl->sgemm(M, N, p->K, (const float *)A, p->lda, p->ta, (const float *)B, p->ldb, p->tb, (float *)C,
                       p->ldc, p->accumulate);
}

/* The blocked product, in pieces on the ambient team when it is large. */
static void blocked(const GemmImpl *impl, bool dbl, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                    bool ta, const void *B, int64_t ldb, bool tb, void *C, int64_t ldc, bool accumulate)
{
    Pieces p = {impl, dbl, M > N, M, N, K, lda, ldb, ldc, n_pieces(M, N, K), A, B, C, ta, tb, accumulate};
    team_run(team_ambient(), p.n, run_piece, &p);   /* one piece: the whole product, here */
}

void fep_sgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta,
                    const float *B, int64_t ldb, bool tb, float *C, int64_t ldc, bool accumulate)
{
    if (path == FEP_GEMM_DIRECT || (path == FEP_GEMM_AUTO && is_tiny(M, N, K)))
        direct_f32(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
    else if (path == FEP_GEMM_AUTO)
        blocked(best_impl(), false, M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
    else
        path_impl(path)->sgemm(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

void fep_dgemm_path(FepGemmPath path, int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta,
                    const double *B, int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate)
{
    if (path == FEP_GEMM_DIRECT || (path == FEP_GEMM_AUTO && is_tiny(M, N, K)))
        direct_f64(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
    else if (path == FEP_GEMM_AUTO)
        blocked(best_impl(), true, M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
    else
        path_impl(path)->dgemm(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

void fep_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, bool ta, const float *B, int64_t ldb,
               bool tb, float *C, int64_t ldc, bool accumulate)
{
    fep_sgemm_path(FEP_GEMM_AUTO, M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

void fep_dgemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, bool ta, const double *B,
               int64_t ldb, bool tb, double *C, int64_t ldc, bool accumulate)
{
    fep_dgemm_path(FEP_GEMM_AUTO, M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

#else /* GEMM_INSTANCE: the typed body for element type T (index type IT),
         VL lanes per vector, an MR × 2·VL register tile, K blocks of at least
         KC steps (see kc_max), NC-column blocks of Q, DT×DT dot-product
         tiles, compiled with the attribute TGT; names end in _SFX.
         VEC_TRANSPOSE: transpose VL×VL blocks in registers (AVX2, AVX-512). */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
#define NR (2 * VL)
#define V FN(vec)
#define AINL static inline __attribute__((always_inline)) TGT

/* Strips of P are MR rows for two-vector panels, MR1 rows when C' is at most
 * one vector wide (the same number of accumulators). */
#define MR1 (2 * MR < 16 ? 2 * MR : 16)
enum { FN(tile_rows) = MR, FN(tile_cols) = NR };

typedef T V __attribute__((vector_size(VL * sizeof(T))));
typedef IT FN(ivec) __attribute__((vector_size(VL * sizeof(T))));
#if VL == 2
#define FEP_GEMM_IOTA {0, 1}
#elif VL == 4
#define FEP_GEMM_IOTA {0, 1, 2, 3}
#elif VL == 8
#define FEP_GEMM_IOTA {0, 1, 2, 3, 4, 5, 6, 7}
#else
#define FEP_GEMM_IOTA {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
#endif

/* C' = P·Q as strided views: p(i, l) = p[i*rs_p + l*cs_p] (m×k), q(l, j) =
 * q[l*rs_q + j*cs_q] (k×n), c'(i, j) = c[i*rs_c + j*cs_c]; beta: add to C'. */
typedef struct FN(Prob) {
    int64_t m, n, k;
    const T *p;
    int64_t rs_p, cs_p;
    const T *q;
    int64_t rs_q, cs_q;
    T *c;
    int64_t rs_c, cs_c;
    bool beta;
} FN(Prob);

AINL V FN(loadu)(const T *src)
{
    V v;
    memcpy(&v, src, sizeof v);
    return v;
}

AINL void FN(storeu)(T *dst, V v)
{
    memcpy(dst, &v, sizeof v);
}

/* The smallest power of two ≥ r (r ≤ 16). */
AINL int FN(pow2_at_least)(int r)
{
    return r <= 1 ? 1 : r <= 2 ? 2 : r <= 4 ? 4 : r <= 8 ? 8 : 16;
}

/* Two-source shuffles for a power of two d < VL: lane t of lo(a, b) is
 * (t & d) ? b[t - d] : a[t]; of hi(a, b), (t & d) ? b[t] : a[t + d]. */
AINL V FN(shuffle_lo)(V a, V b, const int d)
{
    const FN(ivec) iota = FEP_GEMM_IOTA;
    return __builtin_shuffle(a, b, iota + ((FN(ivec))((iota & d) != 0) & (VL - d)));
}

AINL V FN(shuffle_hi)(V a, V b, const int d)
{
    const FN(ivec) iota = FEP_GEMM_IOTA;
    return __builtin_shuffle(a, b, iota + d + ((FN(ivec))((iota & d) != 0) & (VL - d)));
}

/* Sums of VL vectors at once: lane t of the result is the sum of the lanes of
 * v[bitrev(t)] (t's log2(VL) bits reversed).  log2(VL) rounds, each adding
 * lo and hi shuffles of pairs, halving the count. */
AINL V FN(sum_lanes)(V *v)
{
#pragma GCC unroll 4
    for (int d = VL / 2, cnt = VL; d >= 1; d >>= 1, cnt >>= 1)
#pragma GCC unroll 16
        for (int t = 0; t < cnt / 2; t++)
            v[t] = FN(shuffle_lo)(v[2 * t], v[2 * t + 1], d) + FN(shuffle_hi)(v[2 * t], v[2 * t + 1], d);
    return v[0];
}

/* t's log2(VL) bits reversed. */
AINL int FN(bitrev)(int t)
{
    int r = 0;
#pragma GCC unroll 4
    for (int b = 1; b < VL; b <<= 1)
        r = r << 1 | ((t & b) != 0);
    return r;
}

#if VEC_TRANSPOSE
/* In-register transpose of the RP×RP sub-blocks of rows x[0..RP): afterwards
 * x[r][g*RP + i] = old x[i][g*RP + r].  log2(RP) rounds of two-source
 * shuffles, each swapping the off-diagonal d×d blocks of every 2d×2d block. */
AINL void FN(transpose_rows)(const int RP, V *x)
{
#pragma GCC unroll 4
    for (int d = 1; d < RP; d <<= 1)
#pragma GCC unroll 16
        for (int r = 0; r < RP; r++) {
            if (r & d)
                continue;
            V a = x[r], b = x[r + d];
            x[r] = FN(shuffle_lo)(a, b, d);
            x[r + d] = FN(shuffle_hi)(a, b, d);
        }
}

/* Writes R ≤ VL rows × NVEC vectors of a register tile to a transposed C'
 * (rs_c == 1): row j of the tile's columns becomes R contiguous values of C
 * at c + j*cs_c. */
AINL void FN(store_transposed)(const int R, const int NVEC, V (*acc)[2], T *c, int64_t cs_c, bool beta)
{
    const int RP = FN(pow2_at_least)(R);
    T buf[16 * VL] __attribute__((aligned(64)));
#pragma GCC unroll 2
    for (int v = 0; v < NVEC; v++) {
        V x[16];
#pragma GCC unroll 16
        for (int r = 0; r < RP; r++)
            x[r] = r < R ? acc[r][v] : (V){0};
        FN(transpose_rows)(RP, x);
#pragma GCC unroll 16
        for (int r = 0; r < RP; r++)
            FN(storeu)(buf + r * VL, x[r]);
        for (int g = 0; g < VL / RP; g++)
#pragma GCC unroll 16
            for (int r = 0; r < RP; r++) {
                T *dst = c + (v * VL + g * RP + r) * cs_c;
                const T *src = buf + r * VL + g * RP;
                if (beta)
                    for (int t = 0; t < R; t++)
                        dst[t] += src[t];
                else
                    memcpy(dst, src, sizeof(T) * (size_t)R);
            }
    }
}
#endif

/* Writes an m×n block held in tmp (row stride NR) to C' with any strides.
 * The contiguous case is unrolled over the NR columns so that GCC cannot
 * turn it into a memcpy call (which it would expand to a slow rep movs). */
static TGT void FN(store_tmp)(const T *tmp, int m, int n, T *c, int64_t rs_c, int64_t cs_c, bool beta)
{
    if (cs_c == 1) {
        for (int i = 0; i < m; i++, tmp += NR, c += rs_c)
#pragma GCC unroll 32
            for (int j = 0; j < NR; j++)
                if (j < n)
                    c[j] = beta ? c[j] + tmp[j] : tmp[j];
        return;
    }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            c[i * rs_c + j * cs_c] = beta ? c[i * rs_c + j * cs_c] + tmp[i * NR + j] : tmp[i * NR + j];
}

/* The register tile: R rows × NVEC vectors of C' (compile-time constants
 * after inlining) summed over kc steps.  P is read at p[i*rs_p + l*cs_p];
 * step l of Q at q + l*rs_q (a packed panel: rs_q = NR).
 * The leading R×n part is written back (n ≤ NVEC·VL). */
AINL void FN(tile)(const int R, const int NVEC, int64_t kc, const T *p, int64_t rs_p, int64_t cs_p, const T *q,
                   int64_t rs_q, T *c, int64_t rs_c, int64_t cs_c, int n, bool beta)
{
    V acc[MR1][2];
#pragma GCC unroll 16
    for (int i = 0; i < R; i++)
        acc[i][0] = acc[i][1] = (V){0};
    /* rows 8.. from a second base, so that 8 row offsets (in registers) serve all */
    const T *p8 = R > 8 ? p + 8 * rs_p : p;
    for (int64_t l = 0; l < kc; l++, p8 += cs_p) {
        V q0 = FN(loadu)(q), q1 = NVEC > 1 ? FN(loadu)(q + VL) : (V){0};
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            T a = i < 8 ? p[i * rs_p] : p8[(i - 8) * rs_p];
            acc[i][0] += a * q0;
            if (NVEC > 1)
                acc[i][1] += a * q1;
        }
        p += cs_p;
        q += rs_q;
    }
    if (cs_c == 1 && n == NVEC * VL) {
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            T *row = c + i * rs_c;
#pragma GCC unroll 2
            for (int v = 0; v < NVEC; v++)
                FN(storeu)(row + v * VL, beta ? FN(loadu)(row + v * VL) + acc[i][v] : acc[i][v]);
        }
        return;
    }
#if VEC_TRANSPOSE
    if (R <= VL && rs_c == 1 && n == NVEC * VL) {
        FN(store_transposed)(R, NVEC, acc, c, cs_c, beta);
        return;
    }
#endif
    T tmp[MR1 * NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NVEC; v++)
            FN(storeu)(tmp + i * NR + v * VL, acc[i][v]);
    FN(store_tmp)(tmp, R, n, c, rs_c, cs_c, beta);
}

/* One micro-kernel call on m rows × n columns of C' (m ≤ MR, n ≤ NR; or m ≤
 * MR1, n ≤ VL): the tile compiled for exactly m rows and one or two vectors. */
static TGT void FN(kernel)(int64_t kc, const T *p, int64_t rs_p, int64_t cs_p, const T *q, int64_t rs_q, T *c,
                           int64_t rs_c, int64_t cs_c, int m, int n, bool beta)
{
    switch (m) {
#define FEP_GEMM_TILE(RR)                                                                                     \
    case RR:                                                                                                  \
        if ((RR) <= MR && n > VL)                                                                             \
            FN(tile)((RR) <= MR ? (RR) : 1, 2, kc, p, rs_p, cs_p, q, rs_q, c, rs_c, cs_c, n, beta);           \
        else if ((RR) <= MR1 && n <= VL)                                                                      \
            FN(tile)((RR) <= MR1 ? (RR) : 1, 1, kc, p, rs_p, cs_p, q, rs_q, c, rs_c, cs_c, n, beta);          \
        else                                                                                                  \
            break;                                                                                            \
        return;
        FEP_GEMM_TILE(1)
        FEP_GEMM_TILE(2)
        FEP_GEMM_TILE(3)
        FEP_GEMM_TILE(4)
        FEP_GEMM_TILE(5)
        FEP_GEMM_TILE(6)
        FEP_GEMM_TILE(7)
        FEP_GEMM_TILE(8)
        FEP_GEMM_TILE(9)
        FEP_GEMM_TILE(10)
        FEP_GEMM_TILE(11)
        FEP_GEMM_TILE(12)
        FEP_GEMM_TILE(13)
        FEP_GEMM_TILE(14)
        FEP_GEMM_TILE(15)
        FEP_GEMM_TILE(16)
#undef FEP_GEMM_TILE
    }
    abort(); /* m outside 1..MR1: a driver bug */
}

/* Copies kc rows of w ≤ NR contiguous values (row stride rs) into a panel,
 * zero-padding columns w..NR, or only w..VL when w ≤ VL (the kernel then
 * reads one vector per step).  The partial case is unrolled over the columns
 * so that GCC does not split it into memcpy and memset calls. */
static TGT void FN(pack_rows)(const T *src, int64_t rs, int64_t kc, int w, T *dst)
{
    if (w == NR) {
        for (int64_t l = 0; l < kc; l++, src += rs, dst += NR) {
            FN(storeu)(dst, FN(loadu)(src));
            FN(storeu)(dst + VL, FN(loadu)(src + VL));
        }
        return;
    }
    int width = w > VL ? NR : VL;
    for (int64_t l = 0; l < kc; l++, src += rs, dst += NR)
#pragma GCC unroll 32
        for (int j = 0; j < NR; j++)
            if (j < width)
                dst[j] = j < w ? src[j] : 0;
}

/* Panel columns [j0, j0+VL) for steps [l0, l1) from a column-contiguous
 * source (q(l, j) = src[j*cs + l]), zero beyond column w. */
static TGT void FN(pack_cols_scalar)(const T *src, int64_t cs, int64_t l0, int64_t l1, int j0, int w, T *dst)
{
    for (int j = j0; j < j0 + VL; j++)
        for (int64_t l = l0; l < l1; l++)
            dst[l * NR + j] = j < w ? src[j * cs + l] : 0;
}

#if VEC_TRANSPOSE
/* dst[r*NR + j] = src[j*cs + r] for r, j < VL, zero for columns j ≥ cols. */
AINL void FN(pack_cols_block)(const T *src, int64_t cs, int cols, T *dst)
{
    V x[VL];
#pragma GCC unroll 16
    for (int r = 0; r < VL; r++)
        x[r] = r < cols ? FN(loadu)(src + r * cs) : (V){0};
    FN(transpose_rows)(VL, x);
#pragma GCC unroll 16
    for (int r = 0; r < VL; r++)
        *(V *)__builtin_assume_aligned(dst + r * NR, sizeof(V)) = x[r];
}
#endif

/* Packs kc steps of w ≤ NR columns stored column-contiguously (q(l, j) =
 * src[j*cs + l]) into a panel: the transposing pack.  Zero-pads as pack_rows. */
static TGT void FN(pack_cols)(const T *src, int64_t cs, int64_t kc, int w, T *dst)
{
    for (int j0 = 0; j0 < (w > VL ? NR : VL); j0 += VL) {
        int64_t l0 = 0;
#if VEC_TRANSPOSE
        if (j0 < w)
            for (; l0 + VL <= kc; l0 += VL)
                FN(pack_cols_block)(src + j0 * cs + l0, cs, w - j0, dst + l0 * NR + j0);
#endif
        FN(pack_cols_scalar)(src, cs, l0, kc, j0, w, dst);
    }
}

/* Packs w ≤ NR columns of Q from (pc, j) on, kc steps, into one panel. */
static TGT void FN(pack_panel)(const FN(Prob) *pr, int64_t pc, int64_t kc, int64_t j, int w, T *dst)
{
    const T *src = pr->q + pc * pr->rs_q + j * pr->cs_q;
    if (pr->cs_q == 1)
        FN(pack_rows)(src, pr->rs_q, kc, w, dst);
    else
        FN(pack_cols)(src, pr->cs_q, kc, w, dst);
}

/* Packs the kc×nc block of Q at (pc, jc) into NR-wide panels, kc·NR each. */
static TGT void FN(pack_q)(const FN(Prob) *pr, int64_t pc, int64_t kc, int64_t jc, int64_t nc, T *dst)
{
    for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR)
        FN(pack_panel)(pr, pc, kc, jc + j0, (int)min_i64(NR, nc - j0), dst);
}

/* Packs mr ≤ ps rows × kc steps of a P whose columns are contiguous
 * (p(i, l) = src[i + l*cs]) as dst[l*ps + i].  Unrolled over the rows so
 * that GCC does not make a memcpy call of each step. */
static TGT void FN(pack_p)(const T *src, int64_t cs, int64_t kc, int mr, int ps, T *dst)
{
    for (int64_t l = 0; l < kc; l++, src += cs, dst += ps)
#pragma GCC unroll 16
        for (int i = 0; i < MR1; i++)
            if (i < mr)
                dst[i] = src[i];
}

/* The K block: as long as the packed Q block (kc × nc) fits in half of a
 * 2 MB L2, between KC and 1024 steps when C' is Cᵀ (each tile's transposed
 * store is then rarer), 512 when C' is C (a P strip stays in L1). */
static TGT int64_t FN(kc_max)(const FN(Prob) *pr)
{
    int64_t nc = ceil_div(min_i64(pr->n, NC), NR) * NR;
    int64_t kc = (1 << 20) / ((int64_t)sizeof(T) * nc), hi = pr->rs_c == 1 ? 1024 : 512;
    return kc < KC ? KC : kc > hi ? hi : kc;
}

/* C' ← 0 unless beta (the K = 0 product). */
static TGT void FN(clear_c)(const FN(Prob) *pr)
{
    if (pr->beta)
        return;
    for (int64_t i = 0; i < pr->m; i++)
        for (int64_t j = 0; j < pr->n; j++)
            pr->c[i * pr->rs_c + j * pr->cs_c] = 0;
}

/* Q read in place (but for a narrow last panel) when its rows are contiguous,
 * at most a page apart, and few strips would reuse a packed panel: packing
 * then costs more than it saves. */
static TGT bool FN(q_in_place)(const FN(Prob) *pr, int64_t strips)
{
    return pr->cs_q == 1 && strips <= GEMM_INPLACE_Q_STRIPS && pr->rs_q * (int64_t)sizeof(T) <= GEMM_INPLACE_Q_STRIDE;
}

/* One block of the product: steps [pc, pc+kc) × columns [jc, jc+nc) of C';
 * Q's panels packed at qbuf, or in place (only a narrow last one at qbuf). */
typedef struct FN(Block) {
    int64_t pc, kc, jc, nc;
    const T *qbuf;
    bool in_place, beta;
} FN(Block);

/* mr rows of P from row ir across all panels of a block.  When P's columns
 * are the contiguous direction and three or more panels will reread the strip,
 * it is packed first into pbuf, ps values a step (in place, each step is a
 * line of its own, and with a power-of-two stride they share few L1 sets). */
static TGT void FN(strip)(const FN(Prob) *pr, const FN(Block) *b, int64_t ir, int mr, int ps, T *pbuf)
{
    const T *p = pr->p + ir * pr->rs_p + b->pc * pr->cs_p;
    int64_t rs_p = pr->rs_p, cs_p = pr->cs_p;
    if (cs_p != 1 && b->nc > 2 * NR) {
        FN(pack_p)(p, cs_p, b->kc, mr, ps, pbuf);
        p = pbuf;
        rs_p = 1;
        cs_p = ps;
    }
    T *c = pr->c + ir * pr->rs_c + b->jc * pr->cs_c;
    for (int64_t jr = 0; jr < b->nc; jr += NR) {
        int w = (int)min_i64(NR, b->nc - jr);
        bool direct = b->in_place && w == NR;
        const T *q = direct ? pr->q + b->pc * pr->rs_q + b->jc + jr : b->in_place ? b->qbuf : b->qbuf + jr * b->kc;
        FN(kernel)(b->kc, p, rs_p, cs_p, q, direct ? pr->rs_q : NR, c + jr * pr->cs_c, pr->rs_c, pr->cs_c, mr, w,
                   b->beta);
    }
}

/* The blocked product: for each block of NC columns × kc steps, Q's panels
 * are packed (or not, see q_in_place), then each strip of P sweeps them.
 * Strip heights are even (64 rows: 8 × 8; 10 rows: 5 + 5), so no strip is
 * much thinner than MR. */
static TGT void FN(blocked)(const FN(Prob) *pr)
{
    int64_t m = pr->m, n = pr->n, k = pr->k;
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        FN(clear_c)(pr);
        return;
    }
    int64_t kcb = ceil_div(k, ceil_div(k, FN(kc_max)(pr)));
    int ps = n <= VL ? MR1 : MR; /* strip height */
    int64_t strips = ceil_div(m, ps), base = m / strips, extra = m % strips;
    bool in_place = FN(q_in_place)(pr, strips);
    size_t qsize = (size_t)(kcb * (in_place ? NR : ceil_div(min_i64(n, NC), NR) * NR));
    size_t need = qsize + (pr->cs_p != 1 ? (size_t)(MR1 * kcb) : 0);
    T local[GEMM_LOCAL_BYTES / sizeof(T)] __attribute__((aligned(64)));
    T *qbuf = need <= sizeof local / sizeof(T) ? local : scratch_alloc(sizeof(T) * need);
    for (int64_t jc = 0; jc < n; jc += NC)
        for (int64_t pc = 0; pc < k; pc += kcb) {
            FN(Block) b = {pc, min_i64(kcb, k - pc), jc, min_i64(NC, n - jc), qbuf, in_place, pr->beta || pc > 0};
            if (!in_place)
                FN(pack_q)(pr, pc, b.kc, jc, b.nc, qbuf);
            else if (b.nc % NR)
                FN(pack_panel)(pr, pc, b.kc, jc + b.nc / NR * NR, (int)(b.nc % NR), qbuf);
            for (int64_t s = 0, ir = 0; s < strips; ir += base + (s < extra), s++)
                FN(strip)(pr, &b, ir, (int)(base + (s < extra)), ps, qbuf + qsize);
        }
    if (qbuf != local)
        free(qbuf);
}

/* The dot-product tile: C[i][j] (+)= Σ_l a[i*lda + l]·b[j*ldb + l] for R rows
 * of A and S rows of B, both contiguous in l: R·S vector accumulators along
 * l, summed across lanes at the end (VL sums per sum_lanes), the l tail past
 * the last whole vector added in scalar. */
AINL void FN(dot_tile)(const int R, const int S, int64_t K, const T *a, int64_t lda, const T *b, int64_t ldb, T *c,
                       int64_t ldc, bool beta)
{
    enum { NACC = (DT * DT + VL - 1) / VL * VL };
    V acc[NACC];
#pragma GCC unroll 16
    for (int t = 0; t < NACC; t++)
        acc[t] = (V){0};
    int64_t l = 0;
    for (; l + VL <= K; l += VL) {
        V x[DT], y[DT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            x[r] = FN(loadu)(a + r * lda + l);
#pragma GCC unroll 4
        for (int j = 0; j < S; j++)
            y[j] = FN(loadu)(b + j * ldb + l);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int j = 0; j < S; j++)
                acc[r * S + j] += x[r] * y[j];
    }
    T sum[NACC] __attribute__((aligned(64))); /* sum of acc[u] at sum[u/VL*VL + bitrev(u%VL)] */
#pragma GCC unroll 4
    for (int g = 0; g < (R * S + VL - 1) / VL; g++)
        FN(storeu)(sum + g * VL, FN(sum_lanes)(acc + g * VL));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < S; j++) {
            int u = r * S + j;
            T v = sum[u / VL * VL + FN(bitrev)(u % VL)];
            for (int64_t t = l; t < K; t++)
                v += a[r * lda + t] * b[j * ldb + t];
            c[r * ldc + j] = beta ? c[r * ldc + j] + v : v;
        }
}

/* DT×DT dot tiles, or smaller ones at the edges. */
static TGT void FN(dot_kernel)(int r, int s, int64_t K, const T *a, int64_t lda, const T *b, int64_t ldb, T *c,
                               int64_t ldc, bool beta)
{
#define FEP_GEMM_DOT(RR, SS)                                                                                  \
    if (r == (RR) && s == (SS) && (RR) <= DT && (SS) <= DT) {                                                 \
        FN(dot_tile)((RR) <= DT ? (RR) : 1, (SS) <= DT ? (SS) : 1, K, a, lda, b, ldb, c, ldc, beta);          \
        return;                                                                                               \
    }
#define FEP_GEMM_DOT_ROW(RR) FEP_GEMM_DOT(RR, 1) FEP_GEMM_DOT(RR, 2) FEP_GEMM_DOT(RR, 3) FEP_GEMM_DOT(RR, 4)
    FEP_GEMM_DOT_ROW(1)
    FEP_GEMM_DOT_ROW(2)
    FEP_GEMM_DOT_ROW(3)
    FEP_GEMM_DOT_ROW(4)
#undef FEP_GEMM_DOT_ROW
#undef FEP_GEMM_DOT
    abort(); /* r or s outside 1..DT: a driver bug */
}

/* C = A·Bᵀ (+ C) with A's and B's rows contiguous, as dot products: no
 * packing, full vectors whatever M and N.  Tiles split M and N evenly; a strip
 * of A stays in L1 while all of B (small, in practice) passes by. */
static TGT void FN(dot_product)(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, const T *B, int64_t ldb,
                                T *C, int64_t ldc, bool beta)
{
    int64_t ti = ceil_div(M, DT), tj = ceil_div(N, DT);
    for (int64_t u = 0, i = 0; u < ti; u++) {
        int r = (int)(M / ti + (u < M % ti));
        for (int64_t v = 0, j = 0; v < tj; v++) {
            int s = (int)(N / tj + (v < N % tj));
            FN(dot_kernel)(r, s, K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc, beta);
            j += s;
        }
        i += r;
    }
}

/* gemm.h's contract, for products too big for the direct loop: A·Bᵀ with a
 * long K and a side that would leave a quarter or more of the vector lanes of
 * the register tiles idle (N = 10 classes) as dot products, the rest through
 * the blocked path, as Cᵀ = op(B)ᵀ·op(A)ᵀ when op(B) would need a transposing
 * pack and op(A) is the smaller operand (or needs none). */
static TGT void FN(gemm)(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, bool ta, const T *B, int64_t ldb,
                         bool tb, T *C, int64_t ldc, bool accumulate)
{
    int64_t narrow = M < N ? M : N; /* C's side that the blocked path would cover with vectors */
    if (!ta && tb && narrow > 0 && 4 * narrow <= 3 * ceil_div(narrow, VL) * VL && K >= GEMM_DOT_MIN_VECTORS * VL) {
        FN(dot_product)(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    bool swap = tb && (ta || M < N);
    FN(Prob) pr;
    if (!swap)
        pr = (FN(Prob)){M, N, K, A, ta ? 1 : lda, ta ? lda : 1, B, tb ? 1 : ldb, tb ? ldb : 1, C, ldc, 1,
                        accumulate};
    else
        pr = (FN(Prob)){N, M, K, B, tb ? ldb : 1, tb ? 1 : ldb, A, ta ? lda : 1, ta ? 1 : lda, C, 1, ldc,
                        accumulate};
    FN(blocked)(&pr);
}

#undef AINL
#undef FEP_GEMM_IOTA
#undef MR1
#undef V
#undef NR
#undef FN
#undef CAT
#undef CAT_
#undef T
#undef IT
#undef SFX
#undef VL
#undef MR
#undef KC
#undef NC
#undef VEC_TRANSPOSE
#undef DT
#undef TGT

#endif /* GEMM_INSTANCE */
