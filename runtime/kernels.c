/* kernels.c — structural kernels for compiled code (see kernels.h): shared
 * index helpers here, the typed bodies in kernels_impl.h, instantiated for
 * float and double. */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/ir.h"
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

/* Rebuilds a small graph holding just this op, so the spatial reference
 * kernels (which read shapes from nodes) serve compiled code too. */
static void spatial_eval_desc(const FepKernelDesc *d, const double *a, const double *b, double *out, int64_t batch)
{
    Arena arena = {0};
    Graph g;
    ir_graph_init(&g, &arena);
    NodeId in[2];
    for (int i = 0; i < d->n_in; i++) {
        Shape s = ir_shape_make(d->rank[i], d->dims[i]);
        in[i] = ir_load(&g, i, ir_shape_id(&g, &s), d->batched[i]);
    }
    Shape os = ir_shape_make(d->rank[2], d->dims[2]);
    Attr attr = {.ints = {d->attr[0], d->attr[1], d->attr[2]}};
    NodeId id = ir_intern(&g, (Op)d->op, d->n_in, in, ir_shape_id(&g, &os), d->batched[2], &attr, (Span){0});
    const double *ins[2] = {a, b};
    ir_spatial_eval(&g, id, ins, out, (int)batch);
    arena_free(&arena);
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
