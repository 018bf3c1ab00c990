/* bench_clock.h — the timing helpers every benchmark in bench/ shares:
 * a monotonic clock in seconds and the median of a set of timings (the
 * figure the benchmarks report, robust to a noisy shared machine).
 * Header-only (static functions): each benchmark is one translation unit. */
#ifndef FEP_BENCH_CLOCK_H
#define FEP_BENCH_CLOCK_H

#include <stdlib.h>
#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
