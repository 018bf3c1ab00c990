/* repl_cmds.c — the REPL's `:commands` (SPEC §7), one small function
 * each, dispatched from a table that also feeds :help and completion.
 *
 * Commands parse their arguments from the typed line and report problems
 * at the argument's span, so diagnostics show the line with a caret.
 * Relaxation is driven step by step here (session_relax_step) so that
 * :relax can print an energy trajectory and stop on Ctrl-C. */
#include "repl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The next blank-separated word: [*start, *end); false when none is left. */
bool args_word(Args *a, size_t *start, size_t *end)
{
    const char *t = a->l->text;
    size_t i = a->pos;
    while (i < a->l->len && isspace((unsigned char)t[i]))
        i++;
    *start = i;
    while (i < a->l->len && !isspace((unsigned char)t[i]))
        i++;
    *end = a->pos = i;
    return *end > *start;
}

/* The rest of the line, trimmed: [*start, *end); false when empty. */
bool args_rest(Args *a, size_t *start, size_t *end)
{
    const char *t = a->l->text;
    size_t i = a->pos, e = a->l->len;
    while (i < e && isspace((unsigned char)t[i]))
        i++;
    while (e > i && isspace((unsigned char)t[e - 1]))
        e--;
    *start = i;
    *end = a->pos = e;
    return e > i;
}

char *args_dup(const Line *l, size_t start, size_t end)
{
    char *s = xmalloc(end - start + 1);
    memcpy(s, l->text + start, end - start);
    s[end - start] = '\0';
    return s;
}

/* The end of the argument list: anything left over is an error. */
bool args_end(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_rest(a, &s, &e))
        return true;
    repl_error_at(r, a->l, s, e, "unexpected argument '%.*s'", (int)(e - s), a->l->text + s);
    return false;
}

bool args_need(Repl *r, Args *a, const char *what, size_t *s, size_t *e)
{
    if (args_word(a, s, e))
        return true;
    repl_error_at(r, a->l, a->l->len, a->l->len, "expected %s", what);
    return false;
}

static const char *role_label(const Session *s, int t)
{
    Role role = s->model->tensors[t].role;
    if (role == ROLE_LATENT && s->clamped[t])
        return "latent, clamped";
    if (role == ROLE_OBSERVED && !s->clamped[t])
        return "observed, free";
    return ir_role_name(role);
}

/* Prints buffer `buf` under a header "NAME : SHAPE  LABEL". */
static void print_buffer(Repl *r, int buf, const char *label)
{
    Session *s = r->s;
    session_grow(s);   /* a buffer registered since the session was made */
    const Buffer *b = &s->model->buffers[buf];
    char sh[128];
    printf("%s : %s  %s", b->name, ir_shape_str(ir_shape(&s->model->g, b->shape), sh, sizeof sh), label);
    if (b->batched && s->st.batch > 1)
        printf(", batch %d", s->st.batch);
    printf("\n");
    double *v = xmalloc(sizeof *v * (size_t)(session_buffer_len(s, buf) + 1));
    session_get(s, buf, v);
    int64_t dims[TENSOR_MAX_RANK];
    show_values(stdout, v, show_dims(s, buf, dims), dims);
    free(v);
}

/* ---- inspecting ---- */

static bool rc_model(Repl *r, Args *a)
{
    if (!args_end(r, a))
        return true;
    const Session *s = r->s;
    const Model *m = s->model;
    if (m->agent) {
        ir_print_agent_summary(stdout, m);
        printf("session: %d agent%s, %s engine, %s\n", s->st.batch, s->st.batch == 1 ? "" : "s", r->timed.inner.name,
               s->st.f64 ? "f64" : "f32");
        return true;
    }
    ir_print_summary(stdout, m);
    printf("session: batch %d, rule %s, %s engine, %s; clamped:", s->st.batch, ir_rule_name(s->rule.kind),
           r->timed.inner.name, s->st.f64 ? "f64" : "f32");
    bool any = false;
    for (int t = 0; t < m->n_tensors; t++)
        if (s->clamped[t]) {
            printf(" %s", m->tensors[t].name);
            any = true;
        }
    printf("%s\n", any ? "" : " (none)");
    return true;
}

static bool rc_explain(Repl *r, Args *a)
{
    if (args_end(r, a))
        (r->s->model->agent ? ir_print_agent_explain : ir_print_explain)(stdout, r->s->program);
    return true;
}

static bool rc_print(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_need(r, a, "a tensor name", &s, &e) || !args_end(r, a))
        return true;
    char *name = args_dup(a->l, s, e);
    const Model *m = r->c->model;
    int t = ir_model_find_tensor(m, name);
    int buf = t >= 0 ? m->tensors[t].buf : ir_model_find_buffer(m, name);
    if (buf < 0 || m->buffers[buf].kind == BUF_TEMP)
        repl_error_at(r, a->l, s, e, "no tensor named '%s'", name);
    else
        print_buffer(r, buf, t >= 0 ? role_label(r->s, t) : "derived");
    free(name);
    return true;
}

/* ---- changing values ---- */

static bool rc_set(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_need(r, a, "a tensor name", &s, &e))
        return true;
    Model *m = r->c->model;
    char *name = args_dup(a->l, s, e);
    int t = ir_model_find_tensor(m, name);
    bool train_key = false;
    for (int i = 0; repl_train_keys[i]; i++)
        train_key |= !strcmp(repl_train_keys[i], name);
    if (t < 0)
        repl_error_at(r, a->l, s, e, "no tensor named '%s'%s", name,
                      train_key ? "; it is a train key: :train KEY VALUE sets it" : "");
    free(name);
    if (t < 0)
        return true;
    size_t eq = a->pos;
    while (eq < a->l->len && isspace((unsigned char)a->l->text[eq]))
        eq++;
    if (eq >= a->l->len || a->l->text[eq] != '=') {
        repl_error_at(r, a->l, eq, eq + 1, "expected '=' after the name (:set NAME = EXPR)");
        return true;
    }
    size_t es = eq + 1, ee;
    a->pos = es;
    if (!args_rest(a, &es, &ee)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected an expression after '='");
        return true;
    }
    NodeId root = repl_lower(r, a->l, eq + 1);
    if (root == NO_NODE)
        return true;
    const Tensor *tensor = &m->tensors[t];
    Shape want = *ir_shape(&m->g, tensor->shape), got = *ir_node_shape(&m->g, root), joint;
    BuildError berr;
    char ws[64], gs[64];
    if (!ir_broadcast_shapes(&got, &want, &joint, &berr) || !ir_shape_eq(&joint, &want)) {
        repl_error_at(r, a->l, es, ee, "the value has shape %s, which does not fit '%s' of shape %s",
                      ir_shape_str(&got, gs, sizeof gs), tensor->name, ir_shape_str(&want, ws, sizeof ws));
        return true;
    }
    if (ir_node(&m->g, root)->batched && !tensor->batched) {
        repl_error_at(r, a->l, es, ee,
                      "the value differs per sample (it reads value nodes), but '%s' is a %s, which has one value",
                      tensor->name, ir_role_name(tensor->role));
        return true;
    }
    root = ir_broadcast(&m->g, root, &want, tensor->batched);
    double *v = repl_eval(r, root);
    if (!v)
        return true;
    session_set(r->s, tensor->buf, v);
    free(v);
    print_buffer(r, tensor->buf, role_label(r->s, t));
    return true;
}

/* ---- relaxing and learning ---- */

/* False after an error when the model has no energy to minimise. */
static bool has_energy(Repl *r)
{
    if (ir_model_find_buffer(r->c->model, "energy") >= 0)
        return true;
    fprintf(stderr, "error: model %s has no energy (no latent or observed nodes)\n", r->c->model->name);
    return false;
}

typedef struct Trajectory {
    int step[8];
    double energy[8];
    int n;
} Trajectory;

static void record(Trajectory *tr, int step, double e)
{
    if (tr->n && tr->step[tr->n - 1] == step)
        tr->n--;
    if (tr->n < 8) {
        tr->step[tr->n] = step;
        tr->energy[tr->n++] = e;
    }
}

/* Steps 0, n/4, n/2, 3n/4 and n. */
static bool checkpoint(int k, int n) { return k == n || (n >= 4 && k % ((n + 3) / 4) == 0); }

/* PHASE_INIT, then up to n steps; returns the steps taken or -1. */
static int relax_steps(Repl *r, int n, Trajectory *tr, bool *stopped)
{
    Session *s = r->s;
    const TrainConfig *cfg = &s->cfg;
    if (!repl_run_phase(r, PHASE_INIT))
        return -1;
    record(tr, 0, repl_energy_now(r));
    if (!s->program->relaxes)
        return 0;
    double *velocity = cfg->momentum > 0 ? xcalloc((size_t)session_relaxed_len(s) + 1, sizeof(double)) : NULL;
    Optimizer *each = s->program->learn_each_step ? repl_optimizer(r) : NULL;
    double last = INFINITY;
    int k = 0;
    bool ok = true;
    while (k < n && ok) {
        if (repl_interrupted()) {
            *stopped = true;
            break;
        }
        ok = session_relax_step(s, cfg->step_size, velocity) && (!each || session_param_grads(s));
        if (!ok) {
            fprintf(stderr, "error: %s\n", s->error);
            break;
        }
        if (each)
            optim_step(each, s);
        k++;
        if (cfg->tol > 0 || checkpoint(k, n)) {
            double e = repl_energy_now(r);
            if (checkpoint(k, n))
                record(tr, k, e);
            if (cfg->tol > 0 && fabs(last - e) < cfg->tol)
                break;
            last = e;
        }
    }
    free(velocity);
    return ok ? k : -1;
}

static bool rc_relax(Repl *r, Args *a)
{
    size_t s, e;
    long n = r->s->cfg.steps;
    if (args_word(a, &s, &e)) {
        char *end;
        n = strtol(a->l->text + s, &end, 10);
        if (end != a->l->text + e || n < 0 || n > INT32_MAX) {
            repl_error_at(r, a->l, s, e, "expected a number of steps (:relax N)");
            return true;
        }
    }
    if (!args_end(r, a) || !has_energy(r))
        return true;
    Trajectory tr = {0};
    bool stopped = false;
    double t0 = now_ms();
    int taken = relax_steps(r, (int)n, &tr, &stopped);
    if (taken < 0 || !repl_run_phase(r, PHASE_READOUT))
        return true;
    double final = repl_energy_now(r), ms = now_ms() - t0;
    record(&tr, taken, final);
    printf("energy");
    for (int i = 0; i < tr.n; i++)
        printf("%s %.6g (%d)", i ? " →" : ":", tr.energy[i], tr.step[i]);
    if (r->s->rule.kind == RULE_BP)
        printf("   rule bp does not relax: one feedforward sweep");
    else if (!r->s->program->relaxes)
        printf("   nothing to relax (no clamped node reads a free one): the feedforward sweep");
    else
        printf("   %d steps of %g", taken, r->s->cfg.step_size);
    printf(ms < 1000 ? ", %.3g ms\n" : ", %.4g s\n", ms < 1000 ? ms : ms / 1000);
    if (r->s->program->learn_each_step)
        printf("(rule ipc: the parameters took a step at every relaxation step)\n");
    if (!isfinite(final))
        printf("warning: the energy is not finite: the relaxation diverged (a smaller step? :train step_size 0.01)\n");
    if (stopped) {
        printf("interrupted after %d of %ld steps\n", taken, n);
        repl_clear_interrupt();
    }
    return true;
}

static bool rc_energy(Repl *r, Args *a)
{
    if (!args_end(r, a) || !has_energy(r))
        return true;
    double e = repl_energy_now(r);
    printf("energy: %.6g", e);
    if (r->s->st.batch > 1)
        printf("  (mean over a batch of %d)", r->s->st.batch);
    printf("\n");
    return true;
}

static double norm_of(const Session *s, int buf)
{
    int64_t n = session_buffer_len(s, buf);
    double *v = xmalloc(sizeof *v * (size_t)(n + 1)), sq = 0;
    session_get(s, buf, v);
    for (int64_t i = 0; i < n; i++)
        sq += v[i] * v[i];
    free(v);
    return sqrt(sq);
}

static bool rc_grad(Repl *r, Args *a)
{
    if (!args_end(r, a))
        return true;
    Session *s = r->s;
    if (!session_param_grads(s)) {
        fprintf(stderr, "error: %s\n", s->error);
        return true;
    }
    const Model *m = s->model;
    char name[300], sh[64];
    int shown = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        if (m->tensors[t].role != ROLE_PARAM)
            continue;
        snprintf(name, sizeof name, "grad.%s", m->tensors[t].name);
        int g = ir_model_find_buffer(m, name);
        printf("%-12s %-12s ", m->tensors[t].name, ir_shape_str(ir_shape(&m->g, m->tensors[t].shape), sh, sizeof sh));
        if (g < 0)
            printf("no gradient (the energy does not depend on it)\n");
        else
            printf("|dF/d%s| = %.6g\n", m->tensors[t].name, norm_of(s, g));
        shown++;
    }
    if (!shown)
        printf("model %s has no params\n", m->name);
    return true;
}

static const char *optimizer_name(OptimizerKind k)
{
    return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw";
}

static bool rc_learn(Repl *r, Args *a)
{
    if (!args_end(r, a))
        return true;
    if (r->s->model->agent)
        return repl_agent_learn(r);
    Session *s = r->s;
    double before = repl_energy_now(r);
    if (!session_param_grads(s)) {
        fprintf(stderr, "error: %s\n", s->error);
        return true;
    }
    Optimizer *o = repl_optimizer(r);
    if (!o->n_params) {
        fprintf(stderr, "error: model %s has no params with a gradient to learn\n", s->model->name);
        return true;
    }
    optim_step(o, s);
    double after = repl_energy_now(r);
    printf("energy: %.6g → %.6g  (%s step %lld, lr %g, at the current values)\n", before, after,
           optimizer_name(s->cfg.optimizer), (long long)o->steps, s->cfg.lr);
    return true;
}

/* ---- rules and train keys ---- */

static bool rc_rule(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_rest(a, &s, &e)) {
        printf("rule %s\n", ir_rule_name(r->s->rule.kind));
        return true;
    }
    if (repl_train_setting(r, a->l, s, s, s))
        printf("rule %s: derived\n", ir_rule_name(r->s->rule.kind));
    return true;
}

static void show_train(const TrainConfig *t)
{
    printf("rule %s, steps %d, step_size %g, integrator %s, momentum %g, tol %g\n", ir_rule_name(t->rule.kind),
           t->steps, t->step_size, t->integrator == INTEGRATOR_HEUN ? "heun" : "euler", t->momentum, t->tol);
    printf("optimizer %s(lr = %g, beta1 = %g, beta2 = %g, eps = %g, momentum = %g, weight_decay = %g), seed %llu\n",
           optimizer_name(t->optimizer), t->lr, t->beta1, t->beta2, t->eps, t->opt_momentum, t->weight_decay,
           (unsigned long long)t->seed);
}

static bool rc_train(Repl *r, Args *a)
{
    size_t ks, ke, vs, ve;
    if (!args_word(a, &ks, &ke)) {
        show_train(&r->s->cfg);
        return true;
    }
    size_t key_end = ks;
    while (key_end < ke && a->l->text[key_end] != '=')
        key_end++;
    a->pos = key_end;
    while (a->pos < a->l->len && (isspace((unsigned char)a->l->text[a->pos]) || a->l->text[a->pos] == '='))
        a->pos++;
    if (!args_rest(a, &vs, &ve)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected a value (:train KEY VALUE)");
        return true;
    }
    if (repl_train_setting(r, a->l, ks, key_end, vs))
        show_train(&r->s->cfg);
    return true;
}

/* ---- files ---- */

static bool rc_load(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_rest(a, &s, &e)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected a model file (:load FILE)");
        return true;
    }
    char *path = args_dup(a->l, s, e);
    repl_load(r, path);
    free(path);
    return true;
}

/* ---- the session itself ---- */

static bool rc_time(Repl *r, Args *a)
{
    size_t s, e;
    if (args_word(a, &s, &e)) {
        if (e - s == 5 && !strncmp(a->l->text + s, "reset", 5)) {
            memset(r->timed.timers, 0, sizeof r->timed.timers);
            printf("timings reset\n");
        } else {
            repl_error_at(r, a->l, s, e, "expected nothing or 'reset' (:time [reset])");
        }
        return true;
    }
    printf("%-12s %8s %12s\n", "phase", "calls", "total ms");
    bool any = false;
    for (int i = 0; i < N_TIMERS; i++) {
        const Timer *t = &r->timed.timers[i];
        if (!t->count)
            continue;
        const char *name = i == TIMER_COMPILE ? "(compile)" : i == TIMER_EXPR ? "(expr)" : ir_phase_name((PhaseId)i);
        printf("%-12s %8ld %12.3f\n", name, t->count, t->ms);
        any = true;
    }
    if (!any)
        printf("(nothing has run yet)\n");
    return true;
}

static bool rc_help(Repl *r, Args *a);
static bool rc_quit(Repl *r, Args *a) { return false; }

typedef struct Command {
    const char *name;
    const char *usage;
    const char *help;
    bool needs_model;
    bool (*run)(Repl *r, Args *a);
} Command;

static const Command commands[] = {
    {":load", ":load FILE", "load a model (.fep), replacing the current one", false, rc_load},
    {":model", ":model", "the model's tensors, distributions and order; the session's state", true, rc_model},
    {":explain", ":explain", "the derived equations of the current rule", true, rc_explain},
    {":print", ":print NAME", "a tensor (or error.NODE, grad.PARAM, energy): shape, values, min/max/mean/std",
     true, rc_print},
    {":set", ":set NAME = EXPR", "store EXPR into a param, const or node (broadcast to its shape)", true, rc_set},
    {":clamp", ":clamp NAME FILE", "bind a node from .npy/.csv/.safetensors and hold it fixed (batch = rows)",
     true, repl_cmd_clamp},
    {":relax", ":relax [N]", "feedforward init, then N relaxation steps (default: train steps); energies, time",
     true, rc_relax},
    {":learn", ":learn", "parameter gradients and one optimizer step; the energy before and after", true,
     rc_learn},
    {":energy", ":energy", "the energy at the current values (mean per sample)", true, rc_energy},
    {":grad", ":grad", "the norm of each parameter's gradient at the current values", true, rc_grad},
    {":rule", ":rule R", "switch the learning rule (pc, fpa, ipc, bp) and re-derive", true, rc_rule},
    {":train", ":train [KEY VALUE]", "set a train key (steps, step_size, optimizer, ...); alone: show them", true,
     rc_train},
    {":save", ":save FILE", "write the params to a safetensors file", true, repl_cmd_save},
    {":restore", ":restore FILE", "read params from a safetensors file", true, repl_cmd_restore},
    {":reset", ":reset", "agents: start an episode (beliefs back to the priors)", true, repl_cmd_reset},
    {":observe", ":observe V ...", "agents: one value per outcome; infer, plan, print beliefs, G and q(π) per policy",
     true, repl_cmd_observe},
    {":act", ":act [U ...]", "agents: the agent's action (or the values given) and the next prior", true,
     repl_cmd_act},
    {":time", ":time [reset]", "time spent so far per phase: calls and total ms", false, rc_time},
    {":help", ":help", "this list", false, rc_help},
    {":quit", ":quit", "leave (so does the end of input)", false, rc_quit},
};
enum { N_COMMANDS = sizeof commands / sizeof *commands };

const char *const repl_command_names[] = {":load", ":model", ":explain", ":print", ":set", ":clamp", ":relax",
                                          ":learn", ":energy", ":grad", ":rule", ":train", ":save", ":restore",
                                          ":reset", ":observe", ":act", ":time", ":help", ":quit", NULL};
const char *const repl_train_keys[] = {"rule", "steps", "step_size", "integrator", "momentum", "tol",
                                       "optimizer", "warmup", "schedule", "seed", "batch", "epochs", NULL};

static bool rc_help(Repl *r, Args *a)
{
    printf("commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        printf("  %-20s %s\n", commands[i].usage, commands[i].help);
    printf("\nA declaration (param, const, input, latent, observed, let, extern, train) extends the\n"
           "model and recompiles it; tensors that survive keep their values.  Anything else is an\n"
           "expression, e.g. tanh(W1 @ x), evaluated on the current values.  Tab completes commands\n"
           "and names; Ctrl-C stops a long :relax.  Train keys: :train step_size 0.2,\n"
           ":train optimizer adam(lr = 0.01), :train integrator heun.\n");
    return true;
}

bool repl_command(Repl *r, Line *l)
{
    size_t start = strspn(l->text, " \t"), end = start;
    while (end < l->len && !isspace((unsigned char)l->text[end]))
        end++;
    Args a = {l, end};
    for (int i = 0; i < N_COMMANDS; i++) {
        const Command *c = &commands[i];
        bool exact = strlen(c->name) == end - start && !strncmp(c->name, l->text + start, end - start);
        bool alias = (end - start == 2 && !strncmp(l->text + start, ":q", 2) && c->run == rc_quit) ||
                     (end - start == 5 && !strncmp(l->text + start, ":exit", 5) && c->run == rc_quit);
        if (!exact && !alias)
            continue;
        if (c->needs_model && !repl_need_model(r))
            return true;
        return c->run(r, &a);
    }
    repl_error_at(r, l, start, end, "unknown command '%.*s' (:help lists the commands)", (int)(end - start),
                  l->text + start);
    return true;
}
