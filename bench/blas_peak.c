/* blas_peak.c — OpenBLAS sgemm GFLOP/s on N×N×N with a given number of
 * threads: the peak bench/run compares the training step with.  A program
 * of its own, so that no other benchmark process loads OpenBLAS (its idle
 * threads spin for a tenth of a second after the library loads).
 *
 *   blas_peak N THREADS      prints `sgemm_gflops G` (best of 7)
 *
 * OPENBLAS_CORETYPE picks OpenBLAS's kernel (bench/run tries each). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_clock.h"

int main(int argc, char **argv)
{
    if (argc != 3 || atoi(argv[1]) < 1 || atoi(argv[2]) < 1) {
        fprintf(stderr, "usage: blas_peak N THREADS\n");
        return 2;
    }
    int n = atoi(argv[1]);
    openblas_set_num_threads(atoi(argv[2]));
    float *a = malloc(sizeof *a * (size_t)n * n), *b = malloc(sizeof *b * (size_t)n * n), *c = malloc(sizeof *c * (size_t)n * n);
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = INFINITY;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("sgemm_gflops %.2f\n", 2.0 * n * n * n / best * 1e-9);
    free(a);
    free(b);
    free(c);
    return 0;
}
