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
#include "team.h"
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
/* A compiled phase: buffers = Storage.data, externs = each extern's
 * float(float) function and derivative, interleaved. */
typedef void (*PhaseFn)(void **buffers, int64_t batch, void **externs);

typedef struct Engine {
    const char *name;
    /* Called once per derived program before storage is sized; may
     * register buffers (compiled code's temporaries).  NULL = nothing. */
    bool (*prepare)(void *ctx, Program *p, bool f64, char *err, size_t errlen);
    bool (*run_phase)(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen);
    void *ctx;
    Team *team;           /* threads for the work between phases (the optimizer); NULL = serial */
} Engine;

Engine engine_interp(void);

/* ---- parallel.c: batch-parallel execution over a thread pool ---- */
/* Samples per block: the unit of batch-parallel work and, in a phase that
 * sums over the batch, the unit whose partial sums are added in block
 * order — the same blocks for any thread count and any number of
 * processes (dist.c), so results depend on neither. */
enum { PARALLEL_BLOCK = 32 };
typedef struct Pool Pool;
/* A pool of n_threads (the caller counts as one) running `inner`. */
Pool *pool_new(Engine inner, int n_threads);
void pool_free(Pool *pool);
/* `inner` run block by block across the pool; results do not depend on the
 * thread count.  On a storage that is a block shard (dist.c), a phase that
 * sums over the batch adds its blocks' partial sums with every other
 * process's, in global block order. */
Engine engine_parallel(Pool *pool);

typedef struct Session {
    Model *model;
    Program *program;
    Engine engine;
    Storage st;
    RuleSpec rule;
    bool *clamped;        /* per tensor */
    int n_tensors;        /* tensors whose initial values are set (init_params) */
    TrainConfig cfg;
    bool *borrowed;       /* per buffer: storage owned by another session */
    bool solve_enabled;   /* use a program's closed-form solve when it has one */
    uint64_t hoist_epoch; /* leaf epoch its hoist.* values were computed at (0: never) */
    char error[512];
} Session;

/* Allocates storage for batch `batch`, derives the program for the model's
 * rule with observed nodes clamped or free, and initialises params and
 * consts from their INIT with cfg->seed.  Returns NULL after a message in
 * err (e.g. an unsupported rule option, reported through d). */
Session *session_new(Diag *d, Model *m, const TrainConfig *cfg, int batch, bool f64, bool observed_clamped,
                     Engine engine, char *err, size_t errlen);
void session_free(Session *s);
/* Makes the session's storage a shard of a batch spread over processes
 * (dist.c), which the session then owns: its energy becomes the global
 * batch's, and under a rank shard its batch sums are summed over the ranks
 * after each phase.  The session's batch must be the shard's count. */
void session_set_shard(Session *s, struct Shard *sh);
/* Makes dst use src's param and const storage (same model), so one
 * optimizer step updates both; dst must not outlive src. */
void session_share_params(Session *dst, Session *src);
/* Re-derives for another rule or clamp set, keeping tensor values. */
bool session_rederive(Session *s, Diag *d, RuleSpec rule, const bool *clamped);

int64_t session_buffer_len(const Session *s, int buf);   /* elements */
bool session_get(const Session *s, int buf, double *out);
bool session_set(Session *s, int buf, const double *in);
/* Tells every session that a buffer hoisted expressions may read (a param,
 * data, a fwd.* value) was written behind session_set's back; the writers
 * in the runtime (optimizer, data loader, C API) call it. */
void session_leaves_changed(void);
/* Runs one phase on the session's storage, first bringing hoist.* up to
 * date when the program has any; false with s->error set on failure. */
bool session_run_phase(Session *s, PhaseId phase);

/* Binds a params file's tensors to the params/consts of the same name;
 * every tensor must match one, with its declared shape.  SOURCE (the file
 * name) starts each error message. */
bool session_bind_params(Session *s, const TensorSet *set, const char *source, char *err, size_t errlen);
/* Binds value nodes by name (class indices or one-hot for categorical
 * nodes; a family `x` as [B, T, ...] or its elements `x[3]`). */
bool session_bind_batch(Session *s, const TensorSet *set, char *err, size_t errlen);
/* Batch size a batch file implies (its leading dimension); -1 if none. */
int batch_size_of(const TensorSet *set);

struct Optimizer;
/* One relaxation: init, `steps` integrator steps of size `step_size`
 * (none for bp), readout, errors and energy.  With `each_step` (ipc) the
 * parameters also take an optimizer step after every relaxation step.
 * Returns the number of steps taken (early stop on tol), or -1 with
 * s->error set. */
int session_relax(Session *s, int steps, double step_size, struct Optimizer *each_step);
bool session_param_grads(Session *s);
/* Allocates storage for buffers registered since the session was made or
 * last grown (the REPL's expression results and their compiled temps). */
void session_grow(Session *s);
/* For callers that drive the relaxation loop themselves (the REPL: energy
 * trajectory, Ctrl-C between steps): one step at the current values,
 * PHASE_VALUE_GRAD then the configured integrator.  `velocity` holds
 * session_relaxed_len() zeroed doubles when cfg.momentum > 0, else NULL.
 * False with s->error set. */
bool session_relax_step(Session *s, double step_size, double *velocity);
int64_t session_relaxed_len(const Session *s);
/* Mean per-sample energy of the last relax; on a shard, of the whole
 * global batch (collective; NaN with the Comm's error when it fails). */
double session_energy(const Session *s);

/* Finds the first buffer holding NaN or Inf (values, errors, params,
 * grads); returns its name or NULL. */
const char *session_find_nonfinite(const Session *s);

/* ---- dist.c: data parallelism over the processes of a Comm ---- */
/* The collectives a data-parallel run needs from its processes ("ranks"),
 * implemented over MPI by comm_mpi.c.  Every call is collective: each rank
 * makes the same calls in the same order.  A failure returns false with
 * `error` set and leaves the Comm failed (later calls fail at once). */
typedef struct Comm {
    int rank, size;
    /* Sends send_bytes[j] bytes to every rank j (taken from `send` one rank
     * after the other) and receives recv_bytes[r] from every rank r (stored
     * in `recv` in rank order). */
    bool (*exchange)(struct Comm *c, const void *send, const int64_t *send_bytes, void *recv,
                     const int64_t *recv_bytes);
    /* all ← every rank's bytes[r] bytes in rank order (`mine` is this rank's). */
    bool (*gather)(struct Comm *c, const void *mine, void *all, const int64_t *bytes);
    /* values[0..n) ← their sums over the ranks (exact). */
    bool (*sum)(struct Comm *c, int64_t *values, int n);
    /* data ← rank 0's `bytes` bytes. */
    bool (*broadcast)(struct Comm *c, void *data, int64_t bytes);
    /* Ends every rank's process with `status`: for a rank that fails while
     * the others wait for it in a collective.  Does not return. */
    void (*abort)(struct Comm *c, int status);
    void (*free)(struct Comm *c);
    bool failed;
    char error[512];
    double seconds;       /* wall time spent in exchange and gather (waiting included) */
    int64_t bytes_sent;   /* by this rank, through exchange and gather */
} Comm;

/* Which samples of a global batch this rank holds, and how they take part
 * in batch sums.  A block shard (fepc train) cuts the batch into
 * PARALLEL_BLOCK blocks exactly as one process would and gives each rank a
 * contiguous run of whole blocks, so every rank computes the blocks one
 * process would compute, bit for bit; batch sums then add all blocks'
 * partials in block order (dist_fold).  A rank shard (the C API) takes each
 * rank's own batch as one part, added in rank order. */
typedef struct Shard {
    Comm *comm;
    bool by_blocks;       /* parts are PARALLEL_BLOCK blocks, folded inside engine_parallel */
    int batch;            /* samples of the global batch */
    int offset, count;    /* this rank's samples: [offset, offset + count) */
    int *counts;          /* per rank: its samples */
    int *parts;           /* per rank: the partial sums it adds to a batch sum */
    bool owns_comm;       /* comm is freed with the shard (the C API's) */
    void *scratch;        /* dist_fold's buffers, reused */
    size_t scratch_cap;
} Shard;

/* The block shard of a global batch of `batch` samples: rank r holds
 * blocks [⌈nb·r/P⌉, ⌈nb·(r+1)/P⌉) of the nb blocks (possibly none). */
Shard *dist_shard_blocks(Comm *c, int batch);
/* The rank shard of every rank's `local` samples (collective); NULL after
 * a failed exchange (c->error). */
Shard *dist_shard_ranks(Comm *c, int local);
void dist_shard_free(Shard *sh);
/* After this rank ran `phase`, each of the phase's unbatched destinations
 * (its batch sums) has n_parts partials: parts[k][b] is part k's copy of
 * buffer b.  Sets st->data[b] to the sum of every part of the global
 * batch, added in part order in the storage's type — what one process
 * adding its blocks one by one computes.  The reduce-scatter shape of an
 * allreduce: each rank adds the parts of one slice of the sums, then every
 * rank gathers the slices.  True at once when the phase sums nothing. */
bool dist_fold_phase(Shard *sh, const Program *p, PhaseId phase, Storage *st, void **const *parts, int n_parts);
/* *out ← the mean over the global batch of per-sample values (`mine`:
 * this rank's count), added in batch order. */
bool dist_mean(Shard *sh, const double *mine, double *out);
/* values[0..n) ← their sums over the ranks. */
bool dist_sum(Comm *c, int64_t *values, int n);
/* True on every rank when every rank passed ok. */
bool dist_all_ok(Comm *c, bool ok);
/* True when every rank passed the same value; otherwise false on every
 * rank with err naming the first rank that differs from rank 0 and `what`
 * (e.g. "model hash"). */
bool dist_same(Comm *c, uint64_t value, const char *what, char *err, size_t errlen);
/* Copies rank 0's params and consts into every rank's session. */
bool dist_broadcast_params(Comm *c, Session *s);

/* ---- optim.c: SGD (momentum, Nesterov), Adam, AdamW, element-parallel on the engine's team ---- */
typedef struct Optimizer {
    TrainConfig cfg;
    bool f64;             /* the state's type: the session's */
    int n_params;
    int *param_buf, *grad_buf;
    int64_t *len;         /* per param: its number of elements */
    void **m, **v;        /* per param: first and second moment (or momentum) */
    int64_t steps;
    double clip;          /* clamp each gradient entry to ±clip; 0 = off */
    double lr_scale;      /* schedule multiplier applied to cfg.lr */
} Optimizer;

Optimizer *optim_new(const Session *s, const TrainConfig *cfg, double clip);
/* One update of every param from its grad.* buffer (∂F/∂θ). */
void optim_step(Optimizer *o, Session *s);
void optim_free(Optimizer *o);

/* ---- dataset.c: data sets and their binding to a model's nodes ---- */
/* One column of a data set: per-sample values for one value node, or for a
 * whole family `x[t in 0..T]`, or class indices for a categorical node. */
typedef struct DataColumn {
    char *node;           /* node or family it binds to; NULL = bind by shape */
    char *source;         /* file it came from (messages) */
    int *tensors;         /* model tensors it fills, `count` of them; NULL until bound */
    int count;            /* a family's length, else 1 */
    int64_t width;        /* floats per sample per tensor */
    float *values;        /* n × count × width, or NULL for class indices */
    int32_t *classes;     /* n × count class indices (categorical), or NULL */
} DataColumn;

typedef struct Dataset {
    int64_t n;            /* samples */
    DataColumn *columns;
    int n_columns;
    int label_column;     /* the categorical observed column scored for accuracy; -1 if none */
} Dataset;

/* A `--bind NODE=FILE`: FILE is .npy, .safetensors (the tensor named NODE,
 * or its only tensor) or .csv (columns `x` or `x[i]`, one row per sample).
 * Or, with `values` (the C API), an array in memory, borrowed while it
 * loads: `rank` dims, floats or (f64) doubles; `path` then names it in
 * messages. */
typedef struct DataSource {
    const char *node;
    const char *path;
    const void *values;
    bool f64;
    int rank;
    const int64_t *dims;
} DataSource;

/* Loads the train or test split from $FEP_FASHION_MNIST or Debian's
 * dataset-fashion-mnist directory: images (784 values in [0, 1]) and
 * labels (class indices), both unbound until dataset_bind. */
bool dataset_fashion_mnist(bool train, Dataset *out, char *err, size_t errlen);
/* Loads every source, checks its shape against the node it names and
 * binds it; all sources must have the same number of samples, and every
 * input and observed node of the model must be covered.  Errors name the
 * file, the tensor and both shapes. */
bool dataset_load_sources(const Model *m, const DataSource *src, int n_src, Dataset *out, char *err, size_t errlen);
/* dataset_load_sources in steps: loads and checks one source into a new
 * column (d starts zeroed with label_column -1; on failure d is as
 * before), then checks coverage and finds the label column (`files`: the
 * hint for a node without data names --bind). */
bool dataset_add_source(const Model *m, Dataset *d, const DataSource *src, char *err, size_t errlen);
bool dataset_complete(const Model *m, Dataset *d, bool files, char *err, size_t errlen);
void dataset_free(Dataset *d);
/* Binds columns that have no node name by shape (Fashion-MNIST): images
 * to the input node (or, if there is none, a non-categorical observed
 * node) with as many elements, labels to the categorical observed node with
 * as many classes (left unbound if there is none). */
bool dataset_bind(const Model *m, Dataset *d, char *err, size_t errlen);
/* A new data set of samples idx[0..n) of src (columns and bindings copied). */
void dataset_take(const Dataset *src, const int64_t *idx, int64_t n, Dataset *out);
/* Writes samples idx[0..count) into the session (count = its batch). */
void dataset_fill(Session *s, const Dataset *d, const int64_t *idx);
/* Class of sample i in the label column (its index, or the argmax of a
 * one-hot row); -1 without a label column. */
int dataset_label(const Dataset *d, int64_t i);
/* Classes of the label column (0 without one). */
int64_t dataset_classes(const Dataset *d);

/* ---- train.c: the training loop ---- */
/* One epoch's figures; NaN where they do not apply (accuracies without a
 * categorical observed node, test and validation figures without those
 * sets). */
typedef struct EpochReport {
    int epoch, epochs;
    double energy;            /* mean per-sample energy over the epoch's batches */
    double train_accuracy;
    double test_accuracy;     /* the Fashion-MNIST test split */
    double val_accuracy;      /* the held-out or given validation samples */
    double val_energy;        /* their mean clamped energy (hooks only) */
    double seconds;           /* the epoch's training, evaluation excluded */
} EpochReport;

/* Where a run reports instead of the terminal (the C API): `batch` after
 * every `every`-th batch and the last of each epoch, with the running mean
 * energy; `epoch` after each epoch.  Either may be NULL; returning false
 * stops the run (after the batch; a partial epoch is not reported). */
typedef struct TrainHooks {
    void *ctx;
    int every;                /* >= 1 */
    bool (*batch)(void *ctx, int epoch, int64_t done, int64_t total, double energy);
    bool (*epoch)(void *ctx, const EpochReport *r);
} TrainHooks;

typedef struct TrainOptions {
    const char *log_path;     /* per-epoch CSV */
    const char *save_path;    /* final parameters (and Ctrl-C checkpoint) */
    const char *resume_path;
    const char *model_hash;   /* stored in checkpoints */
    int64_t limit;            /* use only the first N training samples (0 = all) */
    int64_t val;              /* hold out N training samples for validation */
    const DataSource *sources;/* --bind NODE=FILE (replaces Fashion-MNIST) */
    int n_sources;
    double clip;
    bool progress;            /* redraw a progress bar (terminal) */
    bool f64;
    const TrainHooks *hooks;  /* report here: nothing printed, no log or checkpoint (train_session) */
    Comm *comm;               /* the ranks of a data-parallel run; NULL or size 1: this process alone */
} TrainOptions;

/* A hash of every setting that decides a run's arithmetic. */
uint64_t train_config_hash(const TrainConfig *c);
/* Trains and prints per-epoch energy, accuracies and time; returns the
 * exit status (0, 1 on error, 130 when interrupted).  Across the ranks of
 * opt->comm every global batch is spread over the ranks as a block shard;
 * the parameters after each epoch are those of one process, bit for bit.
 * Rank 0 alone prints, logs and saves (after every epoch, and on SIGTERM
 * it says which checkpoint survives); the ranks first check that they run
 * the same model, options and data.  A rank that fails alone prints its
 * error and ends the job (comm->abort). */
int train_run(Diag *d, Model *m, const TrainConfig *cfg, const TrainOptions *opt, Engine engine);
/* Evaluates on the test split, or all bound data with opt->sources, or
 * only the validation samples train_run held out with opt->val: prints
 * accuracy (where defined) and energy.  Uses f64, sources, val. */
int eval_run(Diag *d, Model *m, const TrainConfig *cfg, const char *params_path, const TrainOptions *opt,
             Engine engine);
/* train_run's epochs for the C API, on the params of `base` in place (every
 * session here shares its storage; their engine is base's) with `optim`
 * (base's optimizer, kept): bound data `train`, scored on `val` after each
 * epoch, or without one on opt->val samples held out of train; reports
 * to opt->hooks (required).  Neither data set is modified or freed.
 * Returns 0 (also when the hooks stopped it), or with a message in err 2
 * when training diverged (non-finite values) and 1 for other failures. */
int train_session(Diag *d, Session *base, Optimizer *optim, const TrainConfig *cfg, const Dataset *train,
                  const Dataset *val, const TrainOptions *opt, char *err, size_t errlen);
/* eval_run's figures for bound data on base's params: the mean clamped
 * energy and (NaN without labels) the accuracy of predictions with the
 * observed nodes free.  False with a message in err. */
bool eval_session(Diag *d, Session *base, const TrainConfig *cfg, const Dataset *data, double *accuracy,
                  double *energy, char *err, size_t errlen);
/* ---- aot.c: modules built by `fepc build` ---- */
enum { FEP_MODULE_ABI = 1 };
/* Symbol prefixes of the compiled variants: [training f32, prediction f32,
 * training f64, prediction f64]. */
extern const char *const aot_prefixes[4];
/* The rule a module was built for, as one number. */
uint64_t aot_rule_code(RuleSpec rule);
/* Derives and plans the model's rule in training then prediction mode —
 * the order the builder and the loader both follow, so their buffer tables
 * agree. */
bool aot_programs(Diag *d, Model *m, Program *out[2]);

typedef struct AotModule AotModule;
/* dlopen()s a module and returns its embedded model source (owned by the
 * module).  Call aot_bind after compiling that source. */
AotModule *aot_open(const char *path, const char **source, char *err, size_t errlen);
/* Derives the model's programs and binds the compiled functions, checking
 * the buffer-table signature; false with a message. */
bool aot_bind(AotModule *a, Diag *d, Model *m, char *err, size_t errlen);
void aot_close(AotModule *a);
/* Runs the module's compiled phases; prepare refuses programs the module
 * was not built with (another rule or clamp set). */
Engine engine_aot(AotModule *a);

/* filter.c: streams a CSV time series through a prev() model (one row per
 * step), writing every latent's relaxed value per row; `learn` adds one
 * optimizer step per time step.  Returns the exit status. */
int filter_run(Diag *d, Model *m, const TrainConfig *cfg, const char *data_path, const char *out_path,
               const char *params_path, bool learn, bool f64, Engine engine);
/* Writes every param as a tensor plus metadata, atomically. */
bool save_params(const Session *s, const char *path, const char *const *meta, int n_meta, char *err, size_t errlen);

#endif
