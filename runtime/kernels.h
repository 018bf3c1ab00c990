/* kernels.h — the structural kernels compiled code calls: matrix products,
 * reductions, softmax, transposes, axis-0 copies and the spatial ops, in
 * float and double.  Elementwise work is generated inline; everything whose
 * loops are not a plain map goes through fep_kernel_f32/f64 with a constant
 * descriptor the code generator fills in.
 *
 * Layout: a batched operand holds batch × numel values; an unbatched one
 * numel.  Shapes are per sample. */
#ifndef FEP_KERNELS_H
#define FEP_KERNELS_H

#include <stdint.h>

enum { FEP_KERNEL_MAX_RANK = 6 };

typedef struct FepKernelDesc {
    int32_t op;                               /* an ir Op */
    int32_t attr[4];                          /* the node's Attr.ints */
    int32_t n_in;
    int32_t batched[3];                       /* inputs 0, 1, output */
    int32_t rank[3];
    int32_t dims[3][FEP_KERNEL_MAX_RANK];
} FepKernelDesc;

/* out is fully overwritten.  batch is the session's batch size. */
void fep_kernel_f32(const FepKernelDesc *d, const float *a, const float *b, float *out, int64_t batch);
void fep_kernel_f64(const FepKernelDesc *d, const double *a, const double *b, double *out, int64_t batch);

#endif
