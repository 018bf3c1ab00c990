/* fep.h — the public C API of libfep, the fepc runtime.
 *
 * Open a module (compile a .fep file, or load a shared object written by
 * `fepc build`), create a session for a batch size, set and get tensors by
 * name, clamp value nodes to data, relax, learn, read the energy, save and
 * load parameters.  Every call returns FEP_OK or an error code; the
 * message of the last failure on the calling thread is fep_last_error().
 *
 * Tensors are row-major, float32 through fep_set/fep_get (double through
 * fep_set_f64/fep_get_f64, for either kind of session).  Value nodes
 * (inputs, latents, observed) carry a leading batch dimension: their size
 * is batch × the declared element count.  Params and consts have no batch
 * dimension.
 *
 * Thread safety: distinct sessions may be used from distinct threads; one
 * session must not be used by two threads at once, nor may sessions of one
 * module be opened (fep_session_open), re-derived (fep_clamp) or trained
 * (fep_fit) concurrently: those derive programs into the shared model. */
#ifndef FEP_H
#define FEP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FEP_API_VERSION 1

typedef struct FepModule FepModule;
typedef struct FepSession FepSession;

typedef enum FepStatus {
    FEP_OK = 0,
    FEP_ERROR_IO,        /* a file could not be read or written */
    FEP_ERROR_MODEL,     /* the model does not compile, or the module is not a fepc module */
    FEP_ERROR_NAME,      /* no tensor of that name */
    FEP_ERROR_SHAPE,     /* wrong number of elements */
    FEP_ERROR_NUMERIC,   /* NaN or Inf appeared */
    FEP_ERROR_ARGUMENT,  /* an invalid argument (NULL, batch < 1, ...) */
} FepStatus;

/* The message of the last failed call on this thread ("" if none). */
const char *fep_last_error(void);

/* Compiles a .fep file and JIT-compiles its kernels for this CPU. */
FepStatus fep_compile_file(const char *path, FepModule **out);
/* Loads a shared object written by `fepc build M.fep -o m.so`. */
FepStatus fep_load_so(const char *path, FepModule **out);
void fep_module_free(FepModule *m);

/* Tensor metadata: rank and dims exclude the batch dimension; *is_value is
 * 1 for value nodes (batched), 0 for params and consts. */
FepStatus fep_tensor_info(const FepModule *m, const char *name, int *rank, int64_t dims[8], int *is_value);

/* A session holds every tensor for `batch` samples, parameters initialised
 * from the model's INIT specs with its seed.  Observed nodes start clamped
 * (training mode); fep_clamp changes that.  It runs on the calling thread
 * with the model's train settings in float32; fep_session_open takes
 * options. */
FepStatus fep_session_new(FepModule *m, int batch, FepSession **out);
void fep_session_free(FepSession *s);

/* Copies n floats in or out; n must equal the tensor's size. */
FepStatus fep_set(FepSession *s, const char *name, const float *data, size_t n);
FepStatus fep_get(FepSession *s, const char *name, float *data, size_t n);

/* Clamps (1) or frees (0) an observed or latent node.  A free observed
 * node is set to its prediction by fep_relax. */
FepStatus fep_clamp(FepSession *s, const char *name, int clamped);

/* Relaxation: free nodes start at their feedforward prediction and descend
 * the energy for `steps` steps of the model's step size (steps < 0: the
 * model's own count). */
FepStatus fep_relax(FepSession *s, int steps);
/* Ends a stream time step: prev(x) ← x for every node read through
 * prev().  Call after fep_relax, before binding the next step's data. */
FepStatus fep_advance(FepSession *s);
/* One optimizer step on the parameters at the relaxed values. */
FepStatus fep_learn(FepSession *s);
/* Mean energy per sample after the last fep_relax. */
FepStatus fep_energy(FepSession *s, double *out);

FepStatus fep_save_params(FepSession *s, const char *path);
FepStatus fep_load_params(FepSession *s, const char *path);

/* ==== Introspection, session options, double precision, gradients and
 * training over arrays (api_module.c, api_session.c, api_fit.c; the
 * Python package python/fep is built on these) ==== */

/* The library's FEP_API_VERSION, to compare with the header's. */
int fep_api_version(void);

/* Compiles model source text; NAME (NULL: "<string>") stands for the file
 * name in diagnostics. */
FepStatus fep_compile_string(const char *name, const char *source, FepModule **out);
/* The model's name (owned by the module); "" for NULL. */
const char *fep_module_name(const FepModule *m);

typedef enum FepKind {
    FEP_KIND_PARAM = 0,
    FEP_KIND_CONST = 1,
    FEP_KIND_INPUT = 2,
    FEP_KIND_LATENT = 3,
    FEP_KIND_OBSERVED = 4,
} FepKind;

typedef struct FepTensorInfo {
    const char *name;     /* owned by the module: "W1", "x[3]" for element 3 of family x */
    FepKind kind;
    int rank;             /* excluding a value node's batch dimension */
    int64_t dims[8];
    int categorical;      /* a categorical node: data may also be class indices */
    const char *family;   /* "x" for x[3]; NULL otherwise */
    int family_index;
    int rule_made;        /* a param a rule's relaxation added (back.W, psi.v) */
} FepTensorInfo;

/* The model's tensors in declaration order, then the params rules have
 * added: the count grows when a session's rule adds some. */
FepStatus fep_tensor_count(const FepModule *m, int *n);
FepStatus fep_tensor_at(const FepModule *m, int index, FepTensorInfo *out);

/* A session with options.  Each train key (`keys[i] = values[i]`, values
 * as .fep text: "50", "0.2", "pc(backward = learned)", "adam(lr = 0.01)")
 * is checked exactly as `fepc --key value` checks it, and applies to this
 * session only; the batch size is the `batch` key.  The engine runs on
 * `threads` threads (0: one per core), batch-parallel as in fepc, so
 * results match fepc's for any count. */
typedef struct FepSessionOptions {
    int f64;                    /* 1: double-precision storage and kernels */
    int threads;                /* 0: one per core */
    int n_settings;
    const char *const *keys;    /* "steps", "step_size", "rule", "batch", ... */
    const char *const *values;
} FepSessionOptions;
FepStatus fep_session_open(FepModule *m, const FepSessionOptions *opt, FepSession **out);
/* The session's train settings as a train block's lines ("steps = 20\n"),
 * NUL-terminated in buf (truncated to len); *needed = the full size with
 * the NUL. */
FepStatus fep_session_config(const FepSession *s, char *buf, size_t len, size_t *needed);

/* Doubles in or out, converted to or from the session's precision (as
 * fep_set/fep_get convert floats).  For reading, NAME may also be a
 * derived buffer: error.NODE (precision-weighted errors after fep_relax),
 * grad.PARAM (after fep_grads or fep_learn) and prev.NODE (stream state,
 * also writable).  Value nodes and their buffers hold batch × elements. */
FepStatus fep_set_f64(FepSession *s, const char *name, const double *data, size_t n);
FepStatus fep_get_f64(FepSession *s, const char *name, double *data, size_t n);
/* ∂F/∂θ summed over the batch at the relaxed values into grad.PARAM,
 * without updating anything (what `fepc grad` writes). */
FepStatus fep_grads(FepSession *s);

/* A data set of arrays for fep_fit and fep_evaluate, bound to the nodes
 * of one module's model. */
typedef struct FepData FepData;
FepStatus fep_data_new(FepModule *m, FepData **out);
/* Copies samples for input or observed node NODE (or a family x as
 * [n, T, ...]): a row-major array of `rank` dims, dims[0] the samples,
 * floats or (f64) doubles; a categorical node also takes class indices
 * [n].  Checked as `fepc train --bind` checks a file; every array of a
 * set must have the same number of samples.  On failure the set is as
 * before. */
FepStatus fep_data_add(FepData *d, const char *node, const void *values, int f64, int rank, const int64_t *dims);
/* Samples in the set (0 while empty). */
int64_t fep_data_samples(const FepData *d);
void fep_data_free(FepData *d);

typedef struct FepEpochStats {
    int epoch, epochs;
    double energy;            /* mean per-sample energy over the epoch's batches */
    double train_accuracy;    /* NaN without a categorical observed node */
    double val_accuracy;      /* NaN without labels or validation samples */
    double val_energy;        /* mean clamped energy of the validation samples; NaN without */
    double seconds;           /* the epoch's training, evaluation excluded */
} FepEpochStats;
/* Return nonzero to stop training (after the current batch). */
typedef int (*FepBatchCallback)(void *ctx, int epoch, int64_t done, int64_t total, double energy);
typedef int (*FepEpochCallback)(void *ctx, const FepEpochStats *stats);

typedef struct FepFitOptions {
    int epochs;               /* < 0: the session's `epochs` key */
    int64_t holdout;          /* without val: hold out this many samples (fepc train --val N) */
    double clip;              /* clamp each gradient entry to ±clip; 0: off */
    int report_every;         /* batches between on_batch calls (and each epoch's last); <= 0: 20 */
    FepBatchCallback on_batch;
    FepEpochCallback on_epoch;
    void *ctx;
} FepFitOptions;
/* Trains the session's params with `fepc train`'s loop (runtime/train.c:
 * seeded shuffle, batches of the `batch` key, the optimizer, schedule and
 * rule of the session) on `train`, scoring `val` (may be NULL) after each
 * epoch.  The optimizer's state is the session's, kept across calls and
 * shared with fep_learn.  FEP_OK also when a callback stopped it. */
FepStatus fep_fit(FepSession *s, const FepData *train, const FepData *val, const FepFitOptions *opt);
/* `fepc eval`'s figures on `data`: mean clamped energy and, with a
 * categorical observed node (else NaN), the accuracy of predictions with
 * observed nodes free. */
FepStatus fep_evaluate(FepSession *s, const FepData *data, double *accuracy, double *energy);

/* ---- discrete active-inference agents (models with hidden, outcome and
 * control declarations; docs/language/agents.md) ----
 * One FepAgent holds n_agents independent agents of one model (they share
 * its tables and, when learning, its counts).  A step: fep_agent_observe
 * (obs[agent * n_outcomes + outcome] = the value index observed), then
 * fep_agent_infer, fep_agent_plan, optionally fep_agent_learn, then
 * fep_agent_act (the agent's own choice, written to actions[agent *
 * n_controls + control]) or fep_agent_act_with (the caller's).  Every
 * number is computed by the compiled kernels of the module. */
typedef struct FepAgent FepAgent;
/* f64: 1 for double precision.  The agents start an episode (beliefs =
 * priors).  FEP_ERROR_MODEL for a model that is not an agent. */
FepStatus fep_agent_new(FepModule *m, int n_agents, int f64, FepAgent **out);
void fep_agent_free(FepAgent *a);
/* Sizes for the caller's arrays; any pointer may be NULL. */
FepStatus fep_agent_shape(const FepAgent *a, int *n_outcomes, int *n_controls, int64_t *n_policies);
/* A new episode: beliefs back to the priors. */
FepStatus fep_agent_reset(FepAgent *a);
FepStatus fep_agent_observe(FepAgent *a, const int *obs);
/* State inference: q(s) for every factor. */
FepStatus fep_agent_infer(FepAgent *a);
/* G and its terms, q(π) and the action marginals P(u) for every policy. */
FepStatus fep_agent_plan(FepAgent *a);
/* Chooses (argmax or seeded sampling, as the model says) and commits the
 * actions: the next step's prior is B(u) q(s). */
FepStatus fep_agent_act(FepAgent *a, int *actions);
FepStatus fep_agent_act_with(FepAgent *a, const int *actions);
/* Adds this step's Dirichlet count increments (models with counts). */
FepStatus fep_agent_learn(FepAgent *a);
/* n doubles out of a buffer: "q.loc", "prior.loc", "G", "G.info_gain",
 * "q_pi", "P.move", "o.cue", or a table ("a_light"); n must be its size
 * (n_agents × the buffer's per-agent size for the per-agent ones). */
FepStatus fep_agent_get(const FepAgent *a, const char *name, double *data, size_t n);

/* ---- environments written in C ----
 * `fepc act M.fep --env libworld.so:my_world` loads `my_world`, a const
 * FepEnvironment, from the shared object.  Observations and actions are
 * doubles: an entry with a level count (obs_levels[i] = n > 0) carries a
 * value index 0..n-1 (a discrete outcome or action), an entry without one
 * a real number.  A discrete agent needs one observation entry per
 * outcome and one action entry per control, in declaration order, with
 * matching level counts. */
#define FEP_ENVIRONMENT_ABI 1
typedef struct FepEnvironment {
    int abi;                   /* FEP_ENVIRONMENT_ABI */
    int n_obs, n_act;          /* entries per observation (1..16) and per action (0..16) */
    const int *obs_levels;     /* n_obs level counts (0 = real), or NULL: all real */
    const int *act_levels;     /* n_act level counts (0 = real), or NULL: all real */
    void *(*create)(uint64_t seed);                        /* NULL on failure */
    void (*reset)(void *state, double *obs);               /* starts an episode: the first observation */
    /* Applies the action; writes the next observation and the reward;
     * returns nonzero when the episode has ended. */
    int (*step)(void *state, const double *act, double *obs, double *reward);
    void (*destroy)(void *state);                          /* may be NULL */
} FepEnvironment;

/* ---- Data-parallel training across processes over MPI (api_mpi.c) ----
 *
 * Every rank (process) of an MPI communicator drives its own session over
 * its own samples.  Joined to the communicator, the sessions act as one
 * session over all their samples: fep_relax, fep_learn and fep_energy
 * become collective (every rank calls them, in the same order);
 * fep_energy is the mean over every rank's samples; fep_learn sums the
 * parameter gradients over the ranks — in rank order, so every rank gets
 * the same bits — and takes one identical optimizer step everywhere.
 * The communicator is passed as its Fortran handle, MPI_Comm_c2f(comm), so
 * that this header needs no mpi.h.  MPI must be initialised before and
 * finalised after the session (free the session first).  fepc's own
 * `mpirun fepc train` splits batches more finely and matches one process
 * bit for bit; a joined session matches one process over the combined
 * batch to rounding. */

/* 1 when this libfep was built with MPI; 0 when not (fep_session_set_comm
 * then fails with FEP_ERROR_ARGUMENT). */
int fep_mpi_enabled(void);
/* Joins the session to the ranks of communicator comm_f (collective; the
 * ranks' batch sizes may differ).  Checks that every rank runs the same
 * model and settings (FEP_ERROR_MODEL on every rank if not) and copies
 * rank 0's parameters to every rank. */
FepStatus fep_session_set_comm(FepSession *s, int comm_f);
/* This rank and the number of ranks: 0 and 1 for a session not joined. */
FepStatus fep_session_rank(FepSession *s, int *rank, int *size);

#ifdef __cplusplus
}
#endif

#endif
