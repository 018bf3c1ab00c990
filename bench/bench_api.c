/* bench_api.c — micro-benchmarks through the public C API (libfep):
 *
 *   bench_api compile M.fep REPS     seconds to compile a model and get it
 *                                    ready to run (JIT), cold (empty kernel
 *                                    cache) then cached; prints both
 *   bench_api kalman M.fep STEPS     time per stream time step of a prev()
 *                                    model at batch 1: bind u and o, relax
 *                                    (the model's steps), advance
 *
 * Results are printed as `key value` lines for bench/run to read. */
#include <fep.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"

static int die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, fep_last_error());
    return 1;
}

/* One compile: module + a session (which JIT-compiles its kernels). */
static double compile_once(const char *path)
{
    double t0 = now();
    FepModule *m;
    FepSession *s;
    if (fep_compile_file(path, &m) != FEP_OK || fep_session_new(m, 64, &s) != FEP_OK) {
        fprintf(stderr, "compile: %s\n", fep_last_error());
        exit(1);
    }
    double t = now() - t0;
    fep_session_free(s);
    fep_module_free(m);
    return t;
}

static int bench_compile(const char *path, int reps)
{
    /* Cold: the caller points FEPC_CACHE_DIR at an empty directory; the
     * first compile fills it, later ones hit it. */
    double cold = compile_once(path), best = INFINITY;
    for (int i = 0; i < reps; i++) {
        double t = compile_once(path);
        best = t < best ? t : best;
    }
    printf("compile_cold_s %.6f\ncompile_cached_s %.6f\n", cold, best);
    return 0;
}

static int bench_kalman(const char *path, int steps)
{
    FepModule *m;
    FepSession *s;
    if (fep_compile_file(path, &m) != FEP_OK || fep_session_new(m, 1, &s) != FEP_OK)
        return die("kalman");
    float u[1], o[3];
    double t0 = 0;
    for (int t = 0; t < steps + 1000; t++) {
        if (t == 1000)   /* warm up caches and branch predictors first */
            t0 = now();
        u[0] = expf(-0.01f * (float)(t % 500));
        for (int i = 0; i < 3; i++)
            o[i] = sinf(0.01f * (float)t + (float)i);
        if (fep_set(s, "u", u, 1) || fep_set(s, "o", o, 3) || fep_relax(s, -1) || fep_advance(s))
            return die("kalman step");
    }
    double per_step = (now() - t0) / steps;
    printf("kalman_step_us %.4f\n", per_step * 1e6);
    fep_session_free(s);
    fep_module_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "compile"))
        return bench_compile(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "kalman"))
        return bench_kalman(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: bench_api compile M.fep REPS | kalman M.fep STEPS\n");
    return 2;
}
