/* testkit.h — helpers shared by the derivation and runtime tests: compile
 * a model from text, open a session, read and write buffers by name, and
 * evaluate single phases.  Every helper fails the running cmocka test on
 * error instead of returning it. */
#ifndef FEP_TESTKIT_H
#define FEP_TESTKIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/runtime.h"

typedef struct Kit {
    Compiler c;
    Session *s;
} Kit;

/* Compiles `text` (failing the test on any diagnostic). */
void kit_compile(Kit *k, const char *text);
/* Opens a session with the given rule, observed nodes clamped. */
void kit_session(Kit *k, RuleKind rule, int batch, bool f64);
void kit_session_engine(Kit *k, RuleKind rule, int batch, bool f64, Engine engine);
/* Fills every input and observed node with seeded data (one-hot labels for
 * categorical nodes). */
void kit_random_data(Kit *k, uint64_t seed);
void kit_free(Kit *k);

int kit_buf(const Kit *k, const char *name);            /* fails if missing */
int64_t kit_len(const Kit *k, const char *name);
void kit_get(const Kit *k, const char *name, double *out);
void kit_set(Kit *k, const char *name, const double *in);
/* Fills a buffer with uniform values in [lo, hi) from a fixed seed stream. */
void kit_randomize(Kit *k, const char *name, double lo, double hi, uint64_t seed);
void kit_phase(Kit *k, PhaseId phase);
/* Σ_b F_b after running the energy phase on the current values. */
double kit_total_energy(Kit *k);

/* A random DAG model as .fep text: input x, 2–5 latents each reading one
 * or two earlier nodes through a matrix and an activation, and two
 * observed nodes (one categorical when asked), so nodes branch and have
 * several children.  *n_latents bounds the depth. */
void kit_random_dag(char *text, size_t len, uint64_t seed, bool categorical, int *n_latents);

/* Largest |a − b| relative to max(‖b‖∞, floor). */
double kit_rel_diff(const double *a, const double *b, int64_t n, double floor);

#endif
