/* cli.h — the fepc command line: parsed options shared by every command
 * and the command entry points (one file per family of commands).
 *
 * Every command returns the process exit status: 0 success, 1 a user
 * error already reported on stderr, 2 a usage error. */
#ifndef FEP_CLI_H
#define FEP_CLI_H

#include "../codegen/codegen.h"

typedef struct TrainOverride {
    const char *key;      /* train key spelled with '_' (step_size) */
    const char *value;    /* .fep expression text */
} TrainOverride;

typedef struct Options {
    const char *command;
    const char *model_path;
    const char *params_path;  /* --params */
    const char *batch_path;   /* --batch */
    const char *out_path;     /* --out / -o */
    const char *engine;       /* --engine jit|interp */
    const char *module_path;  /* --module m.so: run an AOT-built module */
    const char *log_path;     /* --log */
    const char *save_path;    /* --save */
    const char *resume_path;  /* --resume */
    const char *data;         /* --data (fashion-mnist) */
    const char *binds[32];    /* --bind NODE=FILE, as given (repeatable) */
    int n_binds;
    long long val;            /* --val N: hold out N training samples */
    long long limit;          /* --limit N training samples */
    double clip;              /* --clip C: clamp gradients to ±C */
    bool learn;               /* --learn (filter: online parameter steps) */
    int threads;              /* --threads N (default: the machine's cores) */
    bool f64;                 /* --dtype f64 */
    bool emit_ir, emit_derived, emit_llvm;
    const char *env;          /* act --env */
    const char *summary_path; /* act --summary (per-episode CSV) */
    int episodes, agents;     /* act --episodes N --agents N */
    TrainOverride overrides[32];
    int n_overrides;
} Options;

/* What a command runs against: the compiled model and the engine. */
typedef struct Cli {
    Compiler c;
    Engine engine;
    Jit *jit;             /* when --engine jit */
    AotModule *aot;       /* when --module m.so */
    Pool *pool;           /* the threads running the engine */
} Cli;

/* Compiles opt->model_path (or the source embedded in --module), applies
 * --key value overrides and opens the engine.  False after printing
 * diagnostics; cli_close is needed either way. */
bool cli_open(Cli *cli, const Options *opt);
void cli_close(Cli *cli);

/* The two halves of cli_open, for commands (the REPL) that reload models
 * under one engine: compile a model file with overrides; make the engine
 * --engine names (*jit is set when one was made; free with jit_free). */
bool cli_load_model(Compiler *c, const Options *opt);
bool cli_engine(const Options *opt, Engine *out, Jit **jit);

/* How many ranks an MPI launcher (Open MPI's mpirun, or a PMI launcher
 * such as MPICH's) started this process among: 1 when none did.  Read from
 * the environment, so it works in builds without MPI too. */
int cli_launched_ranks(void);

int cmd_check(const Options *opt);
int cmd_explain(const Options *opt);
int cmd_emit(const Options *opt);
int cmd_grad(const Options *opt);
int cmd_train(const Options *opt);
int cmd_eval(const Options *opt);
int cmd_repl(const Options *opt);
int cmd_filter(const Options *opt);
int cmd_build(const Options *opt);
int cmd_act(const Options *opt);
/* `fepc plot KIND ...` (argv after "plot"); see cmd_plot.c for the grammar. */
int cmd_plot(int argc, char **argv);

#endif
