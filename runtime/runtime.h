/* runtime.h — libfep's internal interface: sessions over a derived
 * program, parameter initialisation, data binding and the relaxation and
 * learning loops.  The public C API (fep.h) wraps these.
 *
 * A Session owns one Storage (every buffer of the model, sized for its
 * batch) and the program derived for its current rule and clamp set.  An
 * Engine runs phases; the reference interpreter is one engine, compiled
 * kernels are another, and the loops here never know which. */
#ifndef FEP_RUNTIME_H
#define FEP_RUNTIME_H

#include "../passes/passes.h"
#include "tensorio.h"

/* ---- rng.c: seeded, platform-independent random numbers ---- */
typedef struct Rng {
    uint64_t s[4];
} Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
double rng_uniform(Rng *r);    /* [0, 1) */
double rng_normal(Rng *r);     /* standard normal */

/* ---- init.c ---- */
/* Fills n = numel(shape) doubles from the INIT spec; xavier and kaiming
 * read fan-in/fan-out from the shape ([out, in, k...]). */
void init_fill(const Init *init, const Shape *shape, Rng *rng, double *out);

/* ---- session.c ---- */
typedef struct Engine {
    const char *name;
    bool (*run_phase)(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen);
    void *ctx;
} Engine;

Engine engine_interp(void);

typedef struct Session {
    Model *model;
    Program *program;
    Engine engine;
    Storage st;
    RuleSpec rule;
    bool *clamped;        /* per tensor */
    TrainConfig cfg;
    char error[512];
} Session;

/* Allocates storage for batch `batch`, derives the program for the model's
 * rule with observed nodes clamped or free, and initialises params and
 * consts from their INIT with cfg->seed.  Returns NULL after a message in
 * err (e.g. an unsupported rule option, reported through d). */
Session *session_new(Diag *d, Model *m, const TrainConfig *cfg, int batch, bool f64, bool observed_clamped,
                     Engine engine, char *err, size_t errlen);
void session_free(Session *s);
/* Re-derives for another rule or clamp set, keeping tensor values. */
bool session_rederive(Session *s, Diag *d, RuleSpec rule, const bool *clamped);

int64_t session_buffer_len(const Session *s, int buf);   /* elements */
bool session_get(const Session *s, int buf, double *out);
bool session_set(Session *s, int buf, const double *in);

/* Binds named tensors: params/consts by tensor name, value nodes by name
 * (class indices or one-hot for categorical nodes; a family `x` as
 * [B, T, ...] or its elements `x[3]`).  With `require_all`, every entry
 * must match something in the model. */
bool session_bind_params(Session *s, const TensorSet *set, char *err, size_t errlen);
bool session_bind_batch(Session *s, const TensorSet *set, char *err, size_t errlen);
/* Batch size a batch file implies (its leading dimension); -1 if none. */
int batch_size_of(const TensorSet *set);

/* One relaxation: init, `steps` integrator steps of size `step_size`
 * (none for bp), readout, errors and energy.  Returns the number of steps
 * taken (early stop on tol), or -1 with s->error set. */
int session_relax(Session *s, int steps, double step_size);
bool session_param_grads(Session *s);
/* Mean per-sample energy of the last relax. */
double session_energy(const Session *s);

#endif
