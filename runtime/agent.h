/* agent.h — libfep's internal interface for acting: discrete
 * active-inference agents over a derived agent program (agent.c), the
 * environments they act in (env.c and env_*.c), and the perception–action
 * loop with its per-step log (act.c).
 *
 * An AgentSession is a Session over the program of passes/agent.c plus
 * what the kernels do not do: turning observations into one-hot buffers,
 * choosing actions from the marginals (argmax, or sampling with a seeded
 * generator), and adding the Dirichlet count increments.  Each of the
 * `batch` samples is one independent agent. */
#ifndef FEP_AGENT_H
#define FEP_AGENT_H

#include "runtime.h"

/* ---- agent.c ---- */
typedef struct AgentSession {
    Session *s;
    bool owns_session;
    Model *m;
    Agent *a;
    Rng rng;              /* action sampling */
    int t;                /* steps taken in this episode */
    int batch;
    double *scratch;      /* one buffer's worth of doubles */
    int64_t scratch_len;
} AgentSession;

/* A session of `batch` agents (f64 recommended: the reference values are
 * checked in double).  NULL with a message for a model that is not an agent. */
AgentSession *agent_session_new(Diag *d, Model *m, int batch, bool f64, Engine engine, char *err, size_t errlen);
/* An agent over an existing session of an agent model (the REPL's);
 * `owns`: agent_session_free frees the session too. */
AgentSession *agent_session_over(Session *s, bool owns);
void agent_session_free(AgentSession *as);
/* Starts an episode: prior ← D for every agent. */
bool agent_reset(AgentSession *as);
/* obs[b * n_outcomes + m]: the value index agent b observes in outcome m;
 * false with a message naming the outcome when one is out of range. */
bool agent_observe(AgentSession *as, const int *obs, char *err, size_t errlen);
/* State inference from the observation and the prior. */
bool agent_infer(AgentSession *as);
/* G, q(π) and the action marginals for every agent. */
bool agent_plan(AgentSession *as);
/* Chooses each agent's action from the marginals (argmax, or u ~ σ(α ln P))
 * into act[b * n_controls + c] and the u.* buffers. */
void agent_select(AgentSession *as, int *act);
/* Sets the actions to given values instead (a C caller that decides). */
bool agent_set_action(AgentSession *as, const int *act, char *err, size_t errlen);
/* prior ← B(u) q for the next step; the episode's step count advances. */
bool agent_predict(AgentSession *as);
/* Adds lr × the count increments of this step (likelihood counts every
 * step, transition counts after the first, prior counts on the first),
 * only where counts are positive (structural zeros stay zero). */
bool agent_learn(AgentSession *as);
/* Copies a buffer by name ("q.loc", "G", "P.move") into out (batch ×
 * numel doubles); its length, or -1 when there is no such buffer. */
int64_t agent_read(const AgentSession *as, const char *name, double *out, int64_t cap);

/* ---- env.c: environments ---- */
typedef struct EnvInfo {
    int n_obs, n_act;               /* values per observation and per action */
    int obs_levels[16];             /* discrete: how many values each observation entry takes; 0 = real */
    int act_levels[16];             /* discrete: how many actions each action entry takes; 0 = real */
    const char *obs_names[16], *act_names[16];
    double act_lo[16], act_hi[16];  /* real actions: the bounds they are clipped to */
    int max_steps;                  /* the environment's episode limit; 0 = none */
} EnvInfo;

typedef struct EnvClass {
    const char *name;
    const char *summary;            /* one line for `fepc act --help` */
    /* Builds an instance from "key=value,..." options (NULL = defaults) and
     * the model the agent runs (the `model` environment reads its process
     * tables); fills info.  NULL with a message. */
    void *(*create)(const char *options, const Model *m, EnvInfo *info, char *err, size_t errlen);
    void (*reset)(void *st, Rng *rng, double *obs);
    /* One step; *reward is the environment's reward; true when the episode ended. */
    bool (*step)(void *st, Rng *rng, const double *act, double *obs, double *reward);
    void (*destroy)(void *st);
} EnvClass;

typedef struct Env {
    const EnvClass *cls;
    void *st;
    EnvInfo info;
    Rng rng;
    void *lib;                      /* dlopen handle of an extern environment */
} Env;

/* Opens SPEC: a built-in name with options ("tmaze", "grid:size=5,goal=24"),
 * "model" (the generative process of the agent's own file), or
 * "lib.so:symbol" (a FepEnvironment from C, fep.h).  Seeded for replay. */
bool env_open(const char *spec, const Model *m, uint64_t seed, Env *out, char *err, size_t errlen);
void env_reset(Env *e, double *obs);
bool env_step(Env *e, const double *act, double *obs, double *reward);
void env_close(Env *e);
/* The built-in environments, NULL-terminated. */
extern const EnvClass *const env_builtins[];
/* Reads "key=value" options: the value of `key` in `options`, or NULL;
 * checks that every key given is in `known` (NULL-terminated). */
bool env_option_keys(const char *options, const char *const *known, const char *env, char *err, size_t errlen);
bool env_option_int(const char *options, const char *key, long lo, long hi, long *out, char *err, size_t errlen);
bool env_option_num(const char *options, const char *key, double *out, char *err, size_t errlen);

/* ---- act.c: the perception–action loop ---- */
typedef struct ActOptions {
    const char *env;                /* environment spec */
    int episodes;
    int agents;                     /* agents acting at once (the batch); 0 = 1 */
    int steps;                      /* per episode; 0 = the agent's `steps` */
    uint64_t seed;
    const char *log_path;           /* per-step CSV */
    const char *summary_path;       /* per-episode CSV */
    const char *save_path;          /* the counts (and every param) after the run, safetensors */
    bool learn;                     /* Dirichlet learning on (when the model has counts) */
    bool quiet;
    bool f64;
} ActOptions;

/* Runs the loop and prints per-episode returns and a summary; exit status. */
int act_run(Diag *d, Model *m, const ActOptions *opt, Engine engine);

#endif
