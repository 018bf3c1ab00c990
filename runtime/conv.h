/* conv.h — the spatial kernels compiled code calls (through kernels.c):
 * conv2d, its two VJP ops (back_input, back_kernel) and the pools, on
 * per-sample [C, H, W] tensors in float and double, with the semantics of
 * the reference ir_spatial_eval (ir/spatial.c): the same operand roles,
 * batching and window rules.  The convolutions come in two implementations,
 * direct loops and im2col + fep_sgemm/fep_dgemm; FEP_CONV_AUTO picks the
 * one measured faster for the shape (rule in conv.c), the others exist for
 * tests and benchmarks.  Thread-safe: no global state. */
#ifndef FEP_CONV_H
#define FEP_CONV_H

#include <stdint.h>

#include "kernels.h"

typedef enum FepConvPath {
    FEP_CONV_AUTO,   /* what fep_kernel_f32/f64 use */
    FEP_CONV_DIRECT, /* loops over the taps, no scratch matrix */
    FEP_CONV_IM2COL, /* patch matrix, then one GEMM per sample */
} FepConvPath;

/* Evaluates the spatial op d->op (CONV2D*, MAXPOOL_*, AVGPOOL*) on a (and b
 * for binary ops) into out, fully overwritten.  An output that is unbatched
 * while an operand is batched (the batch-summed kernel gradient) is the sum
 * over samples, accumulated in double.  path matters only for the three
 * convolution ops. */
void fep_spatial_f32(FepConvPath path, const FepKernelDesc *d, const float *a, const float *b, float *out,
                     int64_t batch);
void fep_spatial_f64(FepConvPath path, const FepKernelDesc *d, const double *a, const double *b, double *out,
                     int64_t batch);

/* The path FEP_CONV_AUTO takes for the convolution op d (DIRECT or IM2COL). */
FepConvPath fep_conv_choice(const FepKernelDesc *d);

#endif
