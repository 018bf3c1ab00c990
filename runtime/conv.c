/* conv.c — the spatial kernels of conv.h: the geometry read from a kernel
 * descriptor and the choice between direct loops and im2col + GEMM here,
 * the typed bodies in conv_impl.h, instantiated for float and double.
 *
 * Geometry: the forward conv maps x [C, H, W] through K [O, C, kh, kw] to
 * y [O, ho, wo]; back_input takes (gy, K) to dx, back_kernel (x, gy) to dK,
 * so each op's operands and output are these three tensors in some order. */
#include "conv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/ir.h"
#include "gemm.h"

typedef struct ConvGeom {
    int64_t c, h, w;    /* input x, per sample */
    int64_t o, ho, wo;  /* output y */
    int64_t kh, kw, stride, pad;
} ConvGeom;

typedef struct PoolGeom {
    int64_t c, h, w;    /* the large side (pooled input, or unpooled output) */
    int64_t ho, wo, k;  /* the pooled side: h / k × w / k windows */
} PoolGeom;

/* Output positions [lo, hi) along one axis at which tap t reads inside. */
typedef struct Range {
    int64_t lo, hi;
} Range;

static int64_t desc_numel(const FepKernelDesc *d, int i)
{
    int64_t n = 1;
    for (int k = 0; k < d->rank[i]; k++)
        n *= d->dims[i][k];
    return n;
}

/* Which descriptor slot (0, 1 = inputs, 2 = output) holds x, K and y. */
static ConvGeom conv_geom(const FepKernelDesc *d)
{
    Op op = (Op)d->op;
    int xi = op == OP_CONV2D_BACK_INPUT ? 2 : 0, ki = op == OP_CONV2D_BACK_KERNEL ? 2 : 1;
    int yi = op == OP_CONV2D ? 2 : op == OP_CONV2D_BACK_INPUT ? 0 : 1;
    const int32_t *x = d->dims[xi], *k = d->dims[ki], *y = d->dims[yi];
    return (ConvGeom){x[0], x[1], x[2], y[0], y[1], y[2], k[2], k[3], d->attr[0], d->attr[1]};
}

static PoolGeom pool_geom(const FepKernelDesc *d)
{
    Op op = (Op)d->op;
    int big = op == OP_AVGPOOL_BACK ? 2 : 0;
    int small = op == OP_MAXPOOL_SCATTER ? 1 : op == OP_AVGPOOL_BACK ? 0 : 2;
    const int32_t *x = d->dims[big];
    return (PoolGeom){x[0], x[1], x[2], d->dims[small][1], d->dims[small][2], d->attr[0]};
}

/* Output rows (row) or columns at which tap t reads input index
 * i·stride + t − pad inside [0, H) (or [0, W)); empty when none do. */
static Range tap_range(const ConvGeom *g, int64_t t, bool row)
{
    int64_t len = row ? g->h : g->w, out = row ? g->ho : g->wo;
    int64_t first = g->pad - t, last = len - 1 + g->pad - t;
    Range r = {first > 0 ? (first + g->stride - 1) / g->stride : 0, last < 0 ? 0 : last / g->stride + 1};
    if (r.hi > out)
        r.hi = out;
    if (r.hi < r.lo)
        r.hi = r.lo;
    return r;
}

/* The offset in x of the pixel tap (u, v) of channel c reads for output (i, j). */
static inline int64_t in_at(const ConvGeom *g, int64_t c, int64_t i, int64_t u, int64_t j, int64_t v)
{
    return (c * g->h + i * g->stride + u - g->pad) * g->w + j * g->stride + v - g->pad;
}

/* The dispatch rule of FEP_CONV_AUTO, from bench/conv_bench (f32 and f64,
 * batch 64): im2col + GEMM wins every shape with 4 or more output channels,
 * by 2-20× over the direct loops (small_cnn's layers up to 3×3 32→64 at
 * 16×16).  The direct loops win only when the GEMM degenerates: with O ≤ 2
 * output channels it has 1-2 rows (the register tile has 6-8) for conv2d
 * and back_kernel (direct 1.2-3× faster), and back_input's GEMM, whose
 * depth is O, is a bare outer product at O = 1 (direct 1.2-1.4× faster). */
static bool conv_prefers_im2col(Op op, const ConvGeom *g)
{
    return op == OP_CONV2D_BACK_INPUT ? g->o > 1 : g->o > 2;
}

FepConvPath fep_conv_choice(const FepKernelDesc *d)
{
    ConvGeom g = conv_geom(d);
    return conv_prefers_im2col((Op)d->op, &g) ? FEP_CONV_IM2COL : FEP_CONV_DIRECT;
}

#define T float
#define SFX f32
#define GEMM fep_sgemm
#include "conv_impl.h"
#undef T
#undef SFX
#undef GEMM

#define T double
#define SFX f64
#define GEMM fep_dgemm
#include "conv_impl.h"
#undef T
#undef SFX
#undef GEMM
