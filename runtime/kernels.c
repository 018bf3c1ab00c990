/* kernels.c — structural kernels for compiled code (see kernels.h): shared
 * index helpers here, the typed bodies in kernels_impl.h, instantiated for
 * float and double; the spatial ops are passed on to conv.c. */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/ir.h"
#include "conv.h"
#include "gemm.h"

typedef struct View {
    int64_t rows, cols;
} View;

/* A matmul operand as a matrix: vectors on the left are rows, on the right columns. */
static View view_of(const FepKernelDesc *d, int i, bool left)
{
    if (d->rank[i] == 2)
        return (View){d->dims[i][0], d->dims[i][1]};
    return left ? (View){1, d->dims[i][0]} : (View){d->dims[i][0], 1};
}

static int64_t numel_of(const FepKernelDesc *d, int i)
{
    int64_t n = 1;
    for (int k = 0; k < d->rank[i]; k++)
        n *= d->dims[i][k];
    return n;
}

static int64_t desc_len(const FepKernelDesc *d, int i, int64_t batch)
{
    return numel_of(d, i) * (d->batched[i] ? batch : 1);
}

static int64_t inner_of(const FepKernelDesc *d, int i)
{
    int64_t n = 1;
    for (int k = 1; k < d->rank[i]; k++)
        n *= d->dims[i][k];
    return n;
}

typedef struct Space {
    int rank;
    int64_t dims[FEP_KERNEL_MAX_RANK + 1];
} Space;

static Space space_of(const FepKernelDesc *d, int i, int64_t batch)
{
    Space s = {.rank = d->rank[i] + 1};
    s.dims[0] = d->batched[i] ? batch : 1;
    for (int k = 0; k < d->rank[i]; k++)
        s.dims[k + 1] = d->dims[i][k];
    return s;
}

static int64_t space_total(const Space *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->rank; k++)
        n *= s->dims[k];
    return n;
}

/* Strides reading operand i while walking `space` (0 where broadcast). */
static void strides_into(const FepKernelDesc *d, int i, const Space *space, int64_t *st)
{
    int64_t stride = 1;
    int offset = space->rank - 1 - d->rank[i];
    for (int k = space->rank - 1; k >= 1; k--) {
        int od = k - 1 - offset;
        int64_t dim = od >= 0 ? d->dims[i][od] : 1;
        st[k] = dim != 1 ? stride : 0;
        stride *= dim;
    }
    st[0] = d->batched[i] ? stride : 0;
}

/* How the small side of a broadcast sits in the big side's space: its
 * trailing axes (the big side is `rows` repeats of it, `width` long), its
 * leading axes (each of its `rows` elements spans `width` big ones), or
 * neither.  Axes of extent 1 fit either way. */
typedef enum BroadcastLayout { SMALL_IS_TRAILING, SMALL_IS_LEADING, SMALL_IS_SCATTERED } BroadcastLayout;

static BroadcastLayout split_broadcast(const Space *sp, const int64_t *st, int64_t *rows, int64_t *width)
{
    int64_t total = space_total(sp);
    if (total == 0)
        return SMALL_IS_SCATTERED;
    /* trailing: contiguous strides from the last axis, then only broadcast axes */
    int64_t inner = 1;
    int k = sp->rank - 1;
    for (; k >= 0 && (st[k] == inner || sp->dims[k] == 1); k--)
        inner *= sp->dims[k];
    bool rest_broadcast = true;
    for (int j = k; j >= 0; j--)
        rest_broadcast &= st[j] == 0 || sp->dims[j] == 1;
    if (rest_broadcast) {
        *rows = total / inner, *width = inner;
        return SMALL_IS_TRAILING;
    }
    /* leading: broadcast axes from the last one, then contiguous strides */
    int64_t span = 1;
    for (k = sp->rank - 1; k >= 0 && (st[k] == 0 || sp->dims[k] == 1); k--)
        span *= sp->dims[k];
    int64_t expect = 1;
    for (int j = k; j >= 0; j--) {
        if (st[j] != expect && sp->dims[j] != 1)
            return SMALL_IS_SCATTERED;
        expect *= sp->dims[j];
    }
    *rows = total / span, *width = span;
    return SMALL_IS_LEADING;
}

#define T float
#define SFX f32
#define GEMM fep_sgemm
#include "kernels_impl.h"
#undef T
#undef SFX
#undef GEMM

#define T double
#define SFX f64
#define GEMM fep_dgemm
#include "kernels_impl.h"
#undef T
#undef SFX
#undef GEMM
