/* kernels_impl.h — the body of kernels.c, instantiated once per element
 * type: kernels.c defines T (float or double), SFX (f32 or f64) and GEMM
 * (the BLAS routine) before including it.  Mirrors the reference
 * interpreter's structural cases, driven by descriptors instead of nodes. */

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name##_, SFX)

/* C[M×N] (+)= op(A) op(B): fepc's own blocked, vectorised kernels
 * (runtime/gemm.c, measured 4-5× OpenBLAS inside training on this
 * machine), which also take the tiny products directly. */
static void FN(gemm)(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, bool ta, const T *B, int64_t ldb,
                     bool tb, T *C, int64_t ldc, bool accumulate)
{
    GEMM(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
}

static void FN(matmul)(const FepKernelDesc *d, const T *A, const T *B, T *out, int64_t batch)
{
    int flags = d->attr[0];
    bool ta = flags & MM_TRANS_A, tb = flags & MM_TRANS_B, sum = flags & MM_SUM_BATCH;
    View va = view_of(d, 0, true), vb = view_of(d, 1, false);
    int64_t M = ta ? va.cols : va.rows, K = ta ? va.rows : va.cols, N = tb ? vb.rows : vb.cols;
    bool ab = d->batched[0], bb = d->batched[1];
    int64_t sa = va.rows * va.cols, sb = vb.rows * vb.cols;
    if (!ab && !bb) {
        FN(gemm)(M, N, K, A, va.cols, ta, B, vb.cols, tb, out, N, false);
        return;
    }
    if (!ab && bb && vb.cols == 1 && !tb && !sum) {   /* shared matrix, batch of vectors */
        FN(gemm)(batch, M, K, B, K, false, A, va.cols, !ta, out, M, false);
        return;
    }
    if (ab && bb && sum && K == 1 && !ta && !tb && va.cols == 1 && vb.rows == 1) {   /* Σ_b u vᵀ */
        FN(gemm)(M, N, batch, A, M, true, B, N, false, out, N, false);
        return;
    }
    for (int64_t s = 0; s < batch; s++)
        FN(gemm)(M, N, K, A + (ab ? s * sa : 0), va.cols, ta, B + (bb ? s * sb : 0), vb.cols, tb,
                 out + (sum ? 0 : s * M * N), N, sum && s > 0);
}

/* out (output space) ← x broadcast; or, reducing, out ← Σ x over the axes
 * where out is broadcast, accumulated in double and rounded once (as the
 * reference interpreter does).  Two layouts take a straight walk over rows
 * of the big side: the small side is its trailing axes (a bias over the
 * batch, a per-sample tensor summed over the batch) or its leading axes (a
 * per-sample scalar spread over a vector, a vector summed per sample); the
 * additions happen in the same order as in the general walk. */
static void FN(broadcast)(const FepKernelDesc *d, const T *x, T *out, int64_t batch, bool reduce)
{
    int big = reduce ? 0 : 2, small = reduce ? 2 : 0;
    Space sp = space_of(d, big, batch);
    int64_t st[FEP_KERNEL_MAX_RANK + 1];
    strides_into(d, small, &sp, st);
    int64_t total = space_total(&sp), n_out = desc_len(d, 2, batch);
    double *acc = reduce ? xcalloc((size_t)n_out + 1, sizeof *acc) : NULL;
    int64_t rows, width;
    switch (split_broadcast(&sp, st, &rows, &width)) {
    case SMALL_IS_TRAILING:
        for (int64_t r = 0; r < rows; r++)
            if (reduce)
                for (int64_t i = 0; i < width; i++)
                    acc[i] += x[r * width + i];
            else
                memcpy(out + r * width, x, sizeof(T) * (size_t)width);
        break;
    case SMALL_IS_LEADING:
        for (int64_t r = 0; r < rows; r++)
            if (reduce)
                for (int64_t i = 0; i < width; i++)
                    acc[r] += x[r * width + i];
            else
                for (int64_t i = 0; i < width; i++)
                    out[r * width + i] = x[r];
        break;
    case SMALL_IS_SCATTERED: {
        int64_t idx[FEP_KERNEL_MAX_RANK + 1] = {0}, at_small = 0;
        for (int64_t at = 0; at < total; at++) {
            if (reduce)
                acc[at_small] += x[at];
            else
                out[at] = x[at_small];
            for (int k = sp.rank - 1; k >= 0; k--) {
                idx[k]++;
                at_small += st[k];
                if (idx[k] < sp.dims[k])
                    break;
                at_small -= st[k] * sp.dims[k];
                idx[k] = 0;
            }
        }
    }
    }
    if (reduce) {
        for (int64_t i = 0; i < n_out; i++)
            out[i] = (T)acc[i];
        free(acc);
    }
}

static void FN(softmax)(const FepKernelDesc *d, const T *x, T *out, int64_t batch, bool lse)
{
    int64_t width = d->rank[0] ? d->dims[0][d->rank[0] - 1] : 1;
    int64_t rows = desc_len(d, 0, batch) / width;
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * width;
        T mx = row[0];
        for (int64_t j = 1; j < width; j++)
            mx = row[j] > mx ? row[j] : mx;
        if (isinf(mx))
            mx = 0;
        double total = 0;
        for (int64_t j = 0; j < width; j++)
            total += exp((double)(row[j] - mx));
        if (lse)
            out[r] = (T)(mx + log(total));
        else
            for (int64_t j = 0; j < width; j++)
                out[r * width + j] = (T)(exp((double)(row[j] - mx)) / total);
    }
}

static void FN(transpose)(const FepKernelDesc *d, const T *x, T *out, int64_t batch)
{
    int64_t r = d->dims[0][0], c = d->dims[0][1], samples = d->batched[0] ? batch : 1;
    for (int64_t k = 0; k < samples; k++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                out[k * r * c + j * r + i] = x[k * r * c + i * c + j];
}

static void FN(rows)(T *dst, int64_t dst_rows, int64_t d0, const T *src, int64_t src_rows, int64_t s0, int64_t len,
                     int64_t inner, int64_t samples, bool src_shared)
{
    for (int64_t k = 0; k < samples; k++)
        memcpy(dst + (k * dst_rows + d0) * inner, src + ((src_shared ? 0 : k) * src_rows + s0) * inner,
               sizeof(T) * (size_t)(len * inner));
}

static void FN(axis0)(const FepKernelDesc *d, const T *a, const T *b, T *out, int64_t batch)
{
    int64_t inner = inner_of(d, 2), samples = d->batched[2] ? batch : 1, orows = d->dims[2][0];
    if (d->op == OP_CONCAT) {
        int64_t na = d->dims[0][0];
        FN(rows)(out, orows, 0, a, na, 0, na, inner, samples, !d->batched[0]);
        FN(rows)(out, orows, na, b, d->dims[1][0], 0, d->dims[1][0], inner, samples, !d->batched[1]);
    } else if (d->op == OP_SLICE) {
        FN(rows)(out, orows, 0, a, d->dims[0][0], d->attr[0], d->attr[1] - d->attr[0], inner, samples, false);
    } else {   /* UNSLICE */
        for (int64_t i = 0, n = desc_len(d, 2, batch); i < n; i++)
            out[i] = 0;
        FN(rows)(out, orows, d->attr[0], a, d->attr[1] - d->attr[0], 0, d->attr[1] - d->attr[0], inner, samples, false);
    }
}

void CAT(fep_kernel_, SFX)(const FepKernelDesc *d, const T *a, const T *b, T *out, int64_t batch)
{
    switch ((Op)d->op) {
    case OP_MATMUL: FN(matmul)(d, a, b, out, batch); return;
    case OP_BROADCAST: FN(broadcast)(d, a, out, batch, false); return;
    case OP_REDUCE_TO: FN(broadcast)(d, a, out, batch, true); return;
    case OP_SOFTMAX: FN(softmax)(d, a, out, batch, false); return;
    case OP_LOGSUMEXP: FN(softmax)(d, a, out, batch, true); return;
    case OP_TRANSPOSE: FN(transpose)(d, a, out, batch); return;
    case OP_RESHAPE: memcpy(out, a, sizeof(T) * (size_t)desc_len(d, 2, batch)); return;
    case OP_CONCAT: case OP_SLICE: case OP_UNSLICE: FN(axis0)(d, a, b, out, batch); return;
    default: CAT(fep_spatial_, SFX)(FEP_CONV_AUTO, d, a, b, out, batch); return;   /* conv.c */
    }
}

#undef FN
#undef CAT
#undef CAT2
