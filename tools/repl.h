/* repl.h — private interface between the files of `fepc repl`:
 *   repl.c       the input loop, dispatch, model and session lifecycle,
 *                expression evaluation (JIT or interpreter)
 *   repl_cmds.c  the `:command`s
 *   repl_data.c  the commands that read and write files: :clamp, :save, :restore
 *   repl_agent.c a discrete agent's step: :reset, :observe, :act (and :learn)
 *   repl_show.c  tensor display (values, elision, summary statistics)
 *   repl_complete.c  tab-completion candidates
 *   repl_line.c  line input: libedit, history, completion, Ctrl-C flag
 * Only tools/repl*.c include it. */
#ifndef FEP_REPL_H
#define FEP_REPL_H

#include <time.h>

#include "cli.h"

/* ---- repl_line.c ---- */
typedef struct Completions {
    char **items;         /* malloc'd strings */
    int n, cap;
} Completions;
void completions_add(Completions *c, const char *s);

/* Fills `out` with candidates for the word that ends at the end of `line`
 * (the text before the cursor) and returns where that word starts. */
typedef size_t (*CompleteFn)(void *ctx, const char *line, Completions *out);

typedef struct LineReader LineReader;
/* interactive: libedit with history at history_path (may be NULL) and tab
 * completion through `complete`; otherwise plain line-by-line stdin. */
LineReader *line_reader_new(bool interactive, const char *history_path, CompleteFn complete, void *ctx);
/* The next line without its newline (valid until the next call), or NULL
 * at end of input.  *interrupted is set when Ctrl-C ended the read. */
const char *line_reader_get(LineReader *lr, const char *prompt, bool *interrupted);
void line_reader_free(LineReader *lr);

/* Ctrl-C: the handler only sets a flag; long loops poll it. */
void repl_install_sigint(void);
bool repl_interrupted(void);
void repl_clear_interrupt(void);

/* ---- repl.c ---- */
enum { TIMER_COMPILE = N_PHASES, TIMER_EXPR, N_TIMERS };

typedef struct Timer {
    long count;
    double ms;
} Timer;

/* Wraps the session's engine to time every phase and compilation. */
typedef struct TimedEngine {
    Engine inner;
    Timer timers[N_TIMERS];
} TimedEngine;

/* A train key typed at the prompt (:train, :rule), re-applied after every
 * recompilation of the model. */
typedef struct Setting {
    char *key, *value;
} Setting;

typedef struct Repl {
    const Options *opt;
    Arena arena;          /* the prompt's own diagnostics when no model is loaded */
    Diag diag;
    Compiler *c;          /* the current model, or NULL */
    char *source;         /* its whole text: the file plus typed declarations */
    char *source_name;    /* the file's path, or "<repl>" */
    Session *s;
    Optimizer *optim;     /* made on first use; dropped when the session changes */
    struct AgentSession *agent;   /* an agent model's step state over s (repl_agent.c), made on first use */
    Jit *jit;
    TimedEngine timed;
    int batch;
    uint64_t next_uid;    /* Program.uid of expression programs (a range derive never reaches) */
    Setting *settings;
    int n_settings, cap_settings;
    char prompt[96];
} Repl;

/* One typed line and its registration (as "<repl>") in a Diag. */
typedef struct Line {
    const char *text;
    size_t len;
    int file;             /* -1 until registered */
    Diag *diag;
} Line;

/* A fresh REPL state with no model, on the engine opt names (false, with
 * the reason on stderr, when that engine cannot start); repl_free releases
 * it, whatever it went on to hold. */
bool repl_init(Repl *r, const Options *opt);
void repl_free(Repl *r);

/* The Diag that typed lines go to: the model's, else the prompt's own. */
Diag *repl_diag(Repl *r);
/* Reports an error at text[start, end) of the typed line. */
void repl_error_at(Repl *r, Line *l, size_t start, size_t end, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "no model loaded; use :load FILE" when none is; true when one is. */
bool repl_need_model(Repl *r);
/* Parses text[start..] of the line as one expression (the prefix blanked,
 * so carets line up with what was typed) and lowers it against the model. */
NodeId repl_lower(Repl *r, Line *l, size_t start);
/* Evaluates a lowered expression against the session's current values:
 * a malloc'd array of batch × numel (batched) or numel doubles, or NULL
 * after printing an error. */
double *repl_eval(Repl *r, NodeId root);
/* Loads a model file (keeping the old one on failure). */
bool repl_load(Repl *r, const char *path);
/* Sets train key text[key_start, key_end) (empty: "rule") to the
 * expression at value_start, in the model and the session (re-deriving for
 * a new rule); kept for later recompilations.  False after a diagnostic. */
bool repl_train_setting(Repl *r, Line *l, size_t key_start, size_t key_end, size_t value_start);
/* A new session for the current model with this batch and clamp set (NULL
 * = the default), with the values of the current session copied in (by
 * name and shape; batch-1 values tiled).  NULL after printing an error. */
Session *repl_make_session(Repl *r, int batch, const bool *clamped);
/* Makes s the current session (freeing the old one and the optimizer). */
void repl_use_session(Repl *r, Session *s);
/* Runs one phase of the current program through the timed engine. */
bool repl_run_phase(Repl *r, PhaseId phase);
/* Energy at the current values (errors + energy phases); NAN if none. */
double repl_energy_now(Repl *r);
Optimizer *repl_optimizer(Repl *r);

/* ---- repl_cmds.c ---- */
/* A command's view of its typed line: the position after the command word. */
typedef struct Args {
    Line *l;
    size_t pos;
} Args;
/* The next blank-separated word, [*start, *end); false when none is left. */
bool args_word(Args *a, size_t *start, size_t *end);
/* The rest of the line, trimmed; false when empty. */
bool args_rest(Args *a, size_t *start, size_t *end);
/* args_word, or an "expected WHAT" error at the end of the line. */
bool args_need(Repl *r, Args *a, const char *what, size_t *start, size_t *end);
/* True when nothing is left; otherwise an "unexpected argument" error. */
bool args_end(Repl *r, Args *a);
char *args_dup(const Line *l, size_t start, size_t end);   /* malloc'd copy */

/* Runs a `:command` line; false when it asks to quit. */
bool repl_command(Repl *r, Line *l);
/* Command names, for completion (NULL-terminated). */
extern const char *const repl_command_names[];
extern const char *const repl_train_keys[];

/* ---- repl_data.c ---- */
bool repl_cmd_clamp(Repl *r, Args *a);
bool repl_cmd_save(Repl *r, Args *a);
bool repl_cmd_restore(Repl *r, Args *a);

/* ---- repl_agent.c ---- */
bool repl_cmd_reset(Repl *r, Args *a);
bool repl_cmd_observe(Repl *r, Args *a);
bool repl_cmd_act(Repl *r, Args *a);
bool repl_agent_learn(Repl *r);

/* ---- repl_complete.c ---- */
size_t repl_complete(void *ctx, const char *line, Completions *out);   /* a CompleteFn */

/* ---- repl_show.c ---- */
/* Prints values laid out as dims[0..rank) (row-major), eliding long
 * tensors, then min/max/mean/std when there is more than one value. */
void show_values(FILE *out, const double *v, int rank, const int64_t *dims);
/* "[2, 3]" for a buffer as stored: batch first when batched (and > 1). */
int show_dims(const Session *s, int buf, int64_t dims[TENSOR_MAX_RANK]);

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
