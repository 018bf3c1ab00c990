/* conv_impl.h — the body of conv.c, instantiated once per element type:
 * conv.c defines T (float or double), SFX (f32 or f64) and GEMM (fep_sgemm
 * or fep_dgemm) before including it.  Per-sample kernels, each of which
 * overwrites its output: the three convolutions as direct loops and as
 * im2col + GEMM, and the pools; then the batch driver.  Sums over taps are
 * in T (as the GEMM's are); window averages and batch sums in double. */

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name##_, SFX)

/* y[j] += w · x[j·stride] for j < n: the inner loop of every direct kernel
 * (contiguous, hence vectorisable, in the common stride-1 case). */
static inline void FN(axpy)(int64_t n, T w, const T *x, int64_t stride, T *y)
{
    if (stride == 1)
        for (int64_t j = 0; j < n; j++)
            y[j] += w * x[j];
    else
        for (int64_t j = 0; j < n; j++)
            y[j] += w * x[j * stride];
}

/* x[j·stride] += w · y[j] for j < n: axpy's transpose (back_input). */
static inline void FN(axpy_scatter)(int64_t n, T w, const T *y, int64_t stride, T *x)
{
    if (stride == 1)
        for (int64_t j = 0; j < n; j++)
            x[j] += w * y[j];
    else
        for (int64_t j = 0; j < n; j++)
            x[j * stride] += w * y[j];
}

/* ---- direct loops: for each tap (o, c, u, v), whole output rows ---- */

/* conv2d (to_input false: input rows → output rows, axpy) and its
 * back_input (to_input true: output rows → input rows, axpy's transpose)
 * walk the same taps; `to` is overwritten. */
static void FN(taps_direct)(const ConvGeom *g, const T *from, const T *k, T *to, bool to_input)
{
    memset(to, 0, sizeof *to * (size_t)(to_input ? g->c * g->h * g->w : g->o * g->ho * g->wo));
    for (int64_t o = 0; o < g->o; o++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t u = 0; u < g->kh; u++) {
                Range ri = tap_range(g, u, true);
                for (int64_t v = 0; v < g->kw; v++) {
                    Range rj = tap_range(g, v, false);
                    T w = k[((o * g->c + c) * g->kh + u) * g->kw + v];
                    for (int64_t i = ri.lo; i < ri.hi; i++) {
                        int64_t in = in_at(g, c, i, u, rj.lo, v), out = (o * g->ho + i) * g->wo + rj.lo;
                        if (to_input)
                            FN(axpy_scatter)(rj.hi - rj.lo, w, from + out, g->stride, to + in);
                        else
                            FN(axpy)(rj.hi - rj.lo, w, from + in, g->stride, to + out);
                    }
                }
            }
}

/* dk[o, c, u, v] = Σ_ij gy[o, i, j] x[c, i·s + u − p, j·s + v − p]: the
 * products of a tap are summed per column j into row (a vector loop, no
 * reduction), and the row once at the end. */
static void FN(back_kernel_direct)(const ConvGeom *g, const T *x, const T *gy, T *dk, T *row)
{
    for (int64_t o = 0; o < g->o; o++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t u = 0; u < g->kh; u++) {
                Range ri = tap_range(g, u, true);
                for (int64_t v = 0; v < g->kw; v++) {
                    Range rj = tap_range(g, v, false);
                    int64_t n = rj.hi - rj.lo;
                    memset(row, 0, sizeof *row * (size_t)g->wo);
                    for (int64_t i = ri.lo; i < ri.hi; i++) {
                        const T *gr = gy + (o * g->ho + i) * g->wo + rj.lo, *xr = x + in_at(g, c, i, u, rj.lo, v);
                        if (g->stride == 1)
                            for (int64_t j = 0; j < n; j++)
                                row[j] += gr[j] * xr[j];
                        else
                            for (int64_t j = 0; j < n; j++)
                                row[j] += gr[j] * xr[j * g->stride];
                    }
                    T total = 0;
                    for (int64_t j = 0; j < n; j++)
                        total += row[j];
                    dk[((o * g->c + c) * g->kh + u) * g->kw + v] = total;
                }
            }
}

/* ---- im2col: col[(c, u, v)][(i, j)] = x[c, i·s + u − p, j·s + v − p] or 0 ---- */

static void FN(im2col)(const ConvGeom *g, const T *x, T *col)
{
    int64_t P = g->ho * g->wo;
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t u = 0; u < g->kh; u++) {
            Range ri = tap_range(g, u, true);
            for (int64_t v = 0; v < g->kw; v++, col += P) {
                Range rj = tap_range(g, v, false);
                if (ri.lo > 0 || ri.hi < g->ho || rj.lo > 0 || rj.hi < g->wo)
                    memset(col, 0, sizeof *col * (size_t)P);
                for (int64_t i = ri.lo; i < ri.hi; i++) {
                    const T *src = x + in_at(g, c, i, u, rj.lo, v);
                    T *dst = col + i * g->wo;
                    for (int64_t j = rj.lo; j < rj.hi; j++)
                        dst[j] = src[(j - rj.lo) * g->stride];
                }
            }
        }
}

/* dx ← Σ of col's entries at the input pixels they were read from. */
static void FN(col2im)(const ConvGeom *g, const T *col, T *dx)
{
    int64_t P = g->ho * g->wo;
    memset(dx, 0, sizeof *dx * (size_t)(g->c * g->h * g->w));
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t u = 0; u < g->kh; u++) {
            Range ri = tap_range(g, u, true);
            for (int64_t v = 0; v < g->kw; v++, col += P) {
                Range rj = tap_range(g, v, false);
                for (int64_t i = ri.lo; i < ri.hi; i++)
                    FN(axpy_scatter)(rj.hi - rj.lo, 1, col + i * g->wo + rj.lo, g->stride,
                                     dx + in_at(g, c, i, u, rj.lo, v));
            }
        }
}

/* y[O × P] = K[O × CKK] · col[CKK × P] */
static void FN(conv_gemm)(const ConvGeom *g, const T *x, const T *k, T *y, T *col)
{
    int64_t ckk = g->c * g->kh * g->kw, P = g->ho * g->wo;
    FN(im2col)(g, x, col);
    GEMM(g->o, P, ckk, k, ckk, false, col, P, false, y, P, false);
}

/* col[CKK × P] = Kᵀ · gy[O × P], then scattered back to the pixels */
static void FN(back_input_gemm)(const ConvGeom *g, const T *gy, const T *k, T *dx, T *col)
{
    int64_t ckk = g->c * g->kh * g->kw, P = g->ho * g->wo;
    GEMM(ckk, P, g->o, k, ckk, true, gy, P, false, col, P, false);
    FN(col2im)(g, col, dx);
}

/* dk[O × CKK] = gy[O × P] · colᵀ */
static void FN(back_kernel_gemm)(const ConvGeom *g, const T *x, const T *gy, T *dk, T *col)
{
    int64_t ckk = g->c * g->kh * g->kw, P = g->ho * g->wo;
    FN(im2col)(g, x, col);
    GEMM(g->o, ckk, P, gy, P, false, col, P, true, dk, ckk, false);
}

/* One sample of a convolution op through the chosen path; scratch holds
 * the patch matrix (im2col) or one output row (direct back_kernel). */
static void FN(conv_sample)(Op op, bool im2col, const ConvGeom *g, const T *a, const T *b, T *out, T *scratch)
{
    if (op == OP_CONV2D && im2col)
        FN(conv_gemm)(g, a, b, out, scratch);
    else if (op == OP_CONV2D)
        FN(taps_direct)(g, a, b, out, false);
    else if (op == OP_CONV2D_BACK_INPUT && im2col)
        FN(back_input_gemm)(g, a, b, out, scratch);
    else if (op == OP_CONV2D_BACK_INPUT)
        FN(taps_direct)(g, a, b, out, true);
    else if (im2col)
        FN(back_kernel_gemm)(g, a, b, out, scratch);
    else
        FN(back_kernel_direct)(g, a, b, out, scratch);
}

/* ---- pools on non-overlapping k × k windows (as ir/spatial.c) ---- */

/* The first maximum of s in window (i, j) of channel c, row-major (NaNs
 * never win, as in the reference). */
static int64_t FN(argmax_window)(const PoolGeom *p, const T *s, int64_t c, int64_t i, int64_t j)
{
    int64_t base = (c * p->h + i * p->k) * p->w + j * p->k, best = base;
    T top = s[base];
    for (int64_t u = 0; u < p->k; u++) {
        const T *row = s + base + u * p->w;
        for (int64_t v = 0; v < p->k; v++)
            if (row[v] > top) {
                top = row[v];
                best = base + u * p->w + v;
            }
    }
    return best;
}

/* Window averages, summed in double and divided once (the reference divides
 * each term: the same to rounding, at a k²-th of the divisions). */
static void FN(avgpool)(const PoolGeom *p, const T *x, T *y)
{
    double area = (double)(p->k * p->k);
    for (int64_t c = 0; c < p->c; c++)
        for (int64_t i = 0; i < p->ho; i++)
            for (int64_t j = 0; j < p->wo; j++) {
                const T *win = x + (c * p->h + i * p->k) * p->w + j * p->k;
                double sum = 0;
                for (int64_t u = 0; u < p->k; u++)
                    for (int64_t v = 0; v < p->k; v++)
                        sum += win[u * p->w + v];
                y[(c * p->ho + i) * p->wo + j] = (T)(sum / area);
            }
}

/* Each window's pixels get its gradient / k²; pixels outside every window 0. */
static void FN(avgpool_back)(const PoolGeom *p, const T *gy, T *dx)
{
    double area = (double)(p->k * p->k);
    memset(dx, 0, sizeof *dx * (size_t)(p->c * p->h * p->w));
    for (int64_t c = 0; c < p->c; c++)
        for (int64_t i = 0; i < p->ho; i++)
            for (int64_t j = 0; j < p->wo; j++) {
                T *win = dx + (c * p->h + i * p->k) * p->w + j * p->k;
                T share = (T)(gy[(c * p->ho + i) * p->wo + j] / area);
                for (int64_t u = 0; u < p->k; u++)
                    for (int64_t v = 0; v < p->k; v++)
                        win[u * p->w + v] = share;
            }
}

/* maxpool(s, v) reads v at s's window maxima; scatter(s, g) writes g there
 * (and 0 elsewhere). */
static void FN(maxpool)(const PoolGeom *p, const T *s, const T *v, T *out, bool scatter)
{
    if (scatter)
        memset(out, 0, sizeof *out * (size_t)(p->c * p->h * p->w));
    for (int64_t c = 0; c < p->c; c++)
        for (int64_t i = 0; i < p->ho; i++)
            for (int64_t j = 0; j < p->wo; j++) {
                int64_t yi = (c * p->ho + i) * p->wo + j, at = FN(argmax_window)(p, s, c, i, j);
                if (scatter)
                    out[at] = v[yi];
                else
                    out[yi] = v[at];
            }
}

static void FN(pool_sample)(Op op, const PoolGeom *p, const T *a, const T *b, T *out)
{
    if (op == OP_AVGPOOL)
        FN(avgpool)(p, a, out);
    else if (op == OP_AVGPOOL_BACK)
        FN(avgpool_back)(p, a, out);
    else
        FN(maxpool)(p, a, b, out, op == OP_MAXPOOL_SCATTER);
}

/* ---- the batch driver ---- */

void CAT(fep_spatial_, SFX)(FepConvPath path, const FepKernelDesc *d, const T *a, const T *b, T *out, int64_t batch)
{
    Op op = (Op)d->op;
    bool conv = op == OP_CONV2D || op == OP_CONV2D_BACK_INPUT || op == OP_CONV2D_BACK_KERNEL;
    ConvGeom g = conv ? conv_geom(d) : (ConvGeom){0};
    PoolGeom p = conv ? (PoolGeom){0} : pool_geom(d);
    bool im2col = conv && (path == FEP_CONV_AUTO ? conv_prefers_im2col(op, &g) : path == FEP_CONV_IM2COL);
    int64_t n0 = desc_numel(d, 0), n1 = d->n_in > 1 ? desc_numel(d, 1) : 0, no = desc_numel(d, 2);
    int64_t samples = d->batched[0] || d->batched[1] ? batch : 1;
    bool sum = !d->batched[2] && samples != 1;   /* the batch-summed kernel gradient */
    int64_t scratch_len = !conv ? 0 : im2col ? g.c * g.kh * g.kw * g.ho * g.wo : g.wo;
    T *scratch = xmalloc(sizeof *scratch * (size_t)(scratch_len + 1));
    T *one = sum ? xmalloc(sizeof *one * (size_t)(no + 1)) : NULL;
    double *acc = sum ? xcalloc((size_t)no + 1, sizeof *acc) : NULL;
    for (int64_t s = 0; s < samples; s++) {
        const T *x0 = a + (d->batched[0] ? s * n0 : 0), *x1 = d->n_in > 1 ? b + (d->batched[1] ? s * n1 : 0) : NULL;
        T *y = sum ? one : out + (d->batched[2] ? s * no : 0);
        if (conv)
            FN(conv_sample)(op, im2col, &g, x0, x1, y, scratch);
        else
            FN(pool_sample)(op, &p, x0, x1, y);
        for (int64_t i = 0; sum && i < no; i++)
            acc[i] += one[i];
    }
    for (int64_t i = 0; sum && i < no; i++)
        out[i] = (T)acc[i];
    free(scratch);
    free(one);
    free(acc);
}

#undef FN
#undef CAT
#undef CAT2
