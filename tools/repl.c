/* repl.c — `fepc repl [M.fep]`: the read–evaluate–print loop (SPEC §7).
 *
 * A line is a `:command` (repl_cmds.c), a declaration, which is appended
 * to the model's text and recompiled (values of surviving tensors carried
 * over by name and shape), or an expression, which is lowered against the
 * model and evaluated on the session's current values: compiled as a
 * one-phase Program by the JIT, or by the reference interpreter with
 * --engine interp.  Errors print a diagnostic and the loop goes on. */
#include "repl.h"

#include "../runtime/agent.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- typed lines and their diagnostics ---- */

Diag *repl_diag(Repl *r) { return r->c ? &r->c->diag : &r->diag; }

static int line_file(Repl *r, Line *l)
{
    Diag *d = repl_diag(r);
    if (l->file < 0 || l->diag != d) {
        l->file = diag_add_file(d, "<repl>", l->text, l->len);
        l->diag = d;
    }
    return l->file;
}

void repl_error_at(Repl *r, Line *l, size_t start, size_t end, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int file = line_file(r, l);
    diag_error(repl_diag(r), (Span){file, (unsigned)start, (unsigned)(end > start ? end : start + 1)}, "%s", msg);
}

bool repl_need_model(Repl *r)
{
    if (r->c && r->s)
        return true;
    fprintf(stderr, "error: no model loaded; use :load FILE\n");
    return false;
}

/* Registers the line with text before `start` blanked, so that it parses
 * as what follows while columns still match what was typed. */
static int blanked_file(Repl *r, const Line *l, size_t start)
{
    char *copy = xmalloc(l->len + 1);
    memcpy(copy, l->text, l->len);
    memset(copy, ' ', start);
    int file = diag_add_file(&r->c->diag, "<repl>", copy, l->len);
    free(copy);
    return file;
}

static const AstExpr *parse_expr_from(Repl *r, const Line *l, size_t start)
{
    ParseResult parsed = {0};
    if (!parse_source(&r->c->diag, &r->c->arena, blanked_file(r, l, start), PARSE_EXPR, &parsed))
        return NULL;
    return parsed.expr;
}

NodeId repl_lower(Repl *r, Line *l, size_t start)
{
    const AstExpr *e = parse_expr_from(r, l, start);
    Model *m = r->c->model;
    int before = m->n_tensors;
    NodeId root = e ? ir_lower_expr(&r->c->diag, m, e) : NO_NODE;
    if (m->n_tensors == before)
        return root;
    /* A list literal became a const tensor: every per-tensor array of the
     * session and its program is now short, so make a new session (which
     * also initialises the literal's values). */
    bool *clamped = xcalloc((size_t)m->n_tensors + 1, 1);
    memcpy(clamped, r->s->clamped, (size_t)before);
    Session *s = repl_make_session(r, r->batch, clamped);
    free(clamped);
    if (!s)
        return NO_NODE;
    repl_use_session(r, s);
    return root;
}

static bool same_rule(RuleSpec a, RuleSpec b)
{
    return a.kind == b.kind && a.backward == b.backward && a.no_derivative == b.no_derivative &&
           a.error_weights == b.error_weights;
}

static void record_setting(Repl *r, const char *key, const char *value)
{
    for (int i = 0; i < r->n_settings; i++)
        if (!strcmp(r->settings[i].key, key)) {
            free(r->settings[i].value);
            r->settings[i].value = xstrdup(value);
            return;
        }
    if (r->n_settings == r->cap_settings) {
        r->cap_settings = r->cap_settings ? 2 * r->cap_settings : 8;
        r->settings = xrealloc(r->settings, sizeof *r->settings * (size_t)r->cap_settings);
    }
    r->settings[r->n_settings++] = (Setting){xstrdup(key), xstrdup(value)};
}

bool repl_train_setting(Repl *r, Line *l, size_t key_start, size_t key_end, size_t value_start)
{
    Model *m = r->c->model;
    Session *s = r->s;
    size_t value_end = l->len;
    while (value_end > value_start && isspace((unsigned char)l->text[value_end - 1]))
        value_end--;
    int file = line_file(r, l);
    bool named = key_end > key_start;   /* :rule R names no key */
    char *key = named ? strndup(l->text + key_start, key_end - key_start) : xstrdup("rule");
    Span key_span = named ? (Span){file, (unsigned)key_start, (unsigned)key_end}
                          : (Span){file, (unsigned)value_start, (unsigned)value_end};
    TrainConfig saved = m->train;
    const AstExpr *value = parse_expr_from(r, l, value_start);
    bool ok = value && ir_apply_train_setting(&r->c->diag, m, key, key_span, value);
    if (ok && !same_rule(m->train.rule, s->rule) && !session_rederive(s, &r->c->diag, m->train.rule, s->clamped)) {
        fprintf(stderr, "error: %s\n", s->error);
        ok = false;
    }
    if (ok) {
        s->cfg = m->train;
        optim_free(r->optim);
        r->optim = NULL;
        char *text = strndup(l->text + value_start, value_end - value_start);
        record_setting(r, key, text);
        free(text);
    } else {
        m->train = saved;
    }
    free(key);
    return ok;
}

/* ---- the timed engine: every phase and compilation is counted ---- */

static bool timed_prepare(void *ctx, Program *p, bool f64, char *err, size_t errlen)
{
    TimedEngine *t = ctx;
    if (!t->inner.prepare)
        return true;
    double t0 = now_ms();
    bool ok = t->inner.prepare(t->inner.ctx, p, f64, err, errlen);
    t->timers[TIMER_COMPILE].count++;
    t->timers[TIMER_COMPILE].ms += now_ms() - t0;
    return ok;
}

static bool timed_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    TimedEngine *t = ctx;
    double t0 = now_ms();
    bool ok = t->inner.run_phase(t->inner.ctx, p, phase, st, err, errlen);
    t->timers[phase].count++;
    t->timers[phase].ms += now_ms() - t0;
    return ok;
}

bool repl_run_phase(Repl *r, PhaseId phase)
{
    if (session_run_phase(r->s, phase))
        return true;
    fprintf(stderr, "error: %s\n", r->s->error);
    return false;
}

double repl_energy_now(Repl *r)
{
    if (ir_model_find_buffer(r->c->model, "energy") < 0)
        return NAN;
    if (!repl_run_phase(r, PHASE_ERRORS) || !repl_run_phase(r, PHASE_ENERGY))
        return NAN;
    return session_energy(r->s);
}

Optimizer *repl_optimizer(Repl *r)
{
    if (!r->optim)
        r->optim = optim_new(r->s, &r->s->cfg, r->opt->clip);
    return r->optim;
}

/* ---- expression evaluation ---- */

/* A Program whose only phase assigns `root` to buffer `dst`. */
static Program *expr_program(Repl *r, NodeId root, int dst)
{
    Model *m = r->c->model;
    Program *p = arena_alloc(m->arena, sizeof *p);
    p->model = m;
    p->uid = r->next_uid++;
    p->rule = r->s->rule;
    p->clamped = r->s->clamped;
    p->solve_coeff_buf = -1;
    Phase *ph = &p->phases[PHASE_INIT];
    ph->assigns = arena_alloc(m->arena, sizeof *ph->assigns);
    ph->assigns[0] = (Assign){dst, root};
    ph->n_assigns = ph->cap_assigns = 1;
    return p;
}

static bool eval_jit(Repl *r, NodeId root, double *out, char *err, size_t errlen)
{
    Model *m = r->c->model;
    Session *s = r->s;
    const Node *n = ir_node(&m->g, root);
    char name[64];
    snprintf(name, sizeof name, "repl.%d.%d", n->shape, n->batched);
    int buf = ir_model_buffer(m, BUF_TEMP, name, n->shape, n->batched, -1);
    Program *p = expr_program(r, root, buf);
    TimedEngine *t = &r->timed;
    double t0 = now_ms();
    if (!t->inner.prepare(t->inner.ctx, p, s->st.f64, err, errlen))
        return false;
    t->timers[TIMER_COMPILE].count++;
    t->timers[TIMER_COMPILE].ms += now_ms() - t0;
    session_grow(s);
    if (!t->inner.run_phase(t->inner.ctx, p, PHASE_INIT, &s->st, err, errlen))
        return false;
    return session_get(s, buf, out);
}

double *repl_eval(Repl *r, NodeId root)
{
    Model *m = r->c->model;
    Session *s = r->s;
    const Node *n = ir_node(&m->g, root);
    int64_t len = ir_numel(ir_shape(&m->g, n->shape)) * (n->batched ? s->st.batch : 1);
    double *out = xmalloc(sizeof *out * (size_t)(len + 1));
    char err[512];
    double t0 = now_ms();
    bool ok;
    if (r->jit) {
        ok = eval_jit(r, root, out, err, sizeof err);
    } else {
        session_grow(s);
        ok = ir_interp_expr(m, root, &s->st, out, err, sizeof err);
    }
    r->timed.timers[TIMER_EXPR].count++;
    r->timed.timers[TIMER_EXPR].ms += now_ms() - t0;
    if (!ok) {
        fprintf(stderr, "error: %s\n", err);
        free(out);
        return NULL;
    }
    return out;
}

static void evaluate(Repl *r, Line *l)
{
    if (!repl_need_model(r))
        return;
    NodeId root = repl_lower(r, l, 0);
    if (root == NO_NODE)
        return;
    double *v = repl_eval(r, root);
    if (!v)
        return;
    const Model *m = r->c->model;
    const Node *n = ir_node(&m->g, root);
    const Shape *shape = ir_shape(&m->g, n->shape);
    int64_t dims[TENSOR_MAX_RANK];
    int rank = 0;
    char sh[128];
    bool batch_axis = n->batched && r->s->st.batch > 1;
    if (batch_axis)
        dims[rank++] = r->s->st.batch;
    for (int i = 0; i < shape->rank; i++)
        dims[rank++] = shape->dims[i];
    printf("shape %s", ir_shape_str(shape, sh, sizeof sh));
    if (batch_axis)
        printf(" per sample, batch %d", r->s->st.batch);
    printf("\n");
    show_values(stdout, v, rank, dims);
    free(v);
}

/* ---- models and sessions ---- */

/* Parses `value` (registered as `name`) and sets train key `key`. */
static bool apply_setting(Diag *d, Arena *arena, Model *m, const char *name, const char *key, const char *value)
{
    int file = diag_add_file(d, name, value, strlen(value));
    ParseResult parsed = {0};
    if (!parse_source(d, arena, file, PARSE_EXPR, &parsed))
        return false;
    return ir_apply_train_setting(d, m, key, (Span){file, 0, (unsigned)strlen(value)}, parsed.expr);
}

/* Compiles a whole model text, then applies the command line's and the
 * prompt's train settings and resolves externs.  *c must be freed either way. */
static bool compile_text(Repl *r, const char *name, const char *text, Compiler *c)
{
    if (!compile_model(c, name, text, stderr))
        return false;
    Model *m = c->model;
    for (int i = 0; i < r->opt->n_overrides; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", r->opt->overrides[i].key);
        if (!apply_setting(&c->diag, &c->arena, m, flag, r->opt->overrides[i].key, r->opt->overrides[i].value))
            return false;
    }
    for (int i = 0; i < r->n_settings; i++)
        if (!apply_setting(&c->diag, &c->arena, m, "<repl>", r->settings[i].key, r->settings[i].value))
            return false;
    char err[512];
    if (m->n_externs && !ir_resolve_externs(m, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", name, err);
        return false;
    }
    return true;
}

static bool same_layout(const Session *a, int ba, const Session *b, int bb)
{
    const Buffer *x = &a->model->buffers[ba], *y = &b->model->buffers[bb];
    return x->kind == y->kind && x->batched == y->batched &&
           ir_shape_eq(ir_shape(&a->model->g, x->shape), ir_shape(&b->model->g, y->shape));
}

/* Carries values over by buffer name: params, consts, value nodes and
 * stream state of the same kind and shape; batched values when the batch
 * is the same, or tiled when the old batch was 1. */
static void copy_values(Session *dst, const Session *src)
{
    const Model *m = dst->model;
    for (int b = 0; b < m->n_buffers; b++) {
        BufKind k = m->buffers[b].kind;
        if (k != BUF_PARAM && k != BUF_CONST && k != BUF_VALUE && k != BUF_PREV)
            continue;
        int from = ir_model_find_buffer(src->model, m->buffers[b].name);
        if (from < 0 || from >= src->st.n_buffers || !same_layout(dst, b, src, from))
            continue;
        bool batched = m->buffers[b].batched;
        if (batched && src->st.batch != dst->st.batch && src->st.batch != 1)
            continue;
        int64_t n = session_buffer_len(dst, b), per = session_buffer_len(src, from);
        double *v = xmalloc(sizeof *v * (size_t)(n + 1));
        session_get(src, from, v);
        for (int64_t i = per; i < n; i++)
            v[i] = v[i % per];
        session_set(dst, b, v);
        free(v);
    }
}

Session *repl_make_session(Repl *r, int batch, const bool *clamped)
{
    Model *m = r->c->model;
    Engine engine = {r->timed.inner.name, timed_prepare, timed_run, &r->timed, r->timed.inner.team};
    char err[512];
    Session *s = session_new(&r->c->diag, m, &m->train, batch, r->opt->f64, true, engine, err, sizeof err);
    if (!s) {
        fprintf(stderr, "error: %s\n", err);
        return NULL;
    }
    if (clamped && memcmp(clamped, s->clamped, (size_t)ir_declared_tensors(m)) &&
        !session_rederive(s, &r->c->diag, m->train.rule, clamped)) {
        fprintf(stderr, "error: %s\n", s->error);
        session_free(s);
        return NULL;
    }
    if (r->s)
        copy_values(s, r->s);
    return s;
}

void repl_use_session(Repl *r, Session *s)
{
    agent_session_free(r->agent);
    r->agent = NULL;
    session_free(r->s);
    optim_free(r->optim);
    r->optim = NULL;
    r->s = s;
    r->batch = s->st.batch;
}

/* Makes c (compiled from `text`, named `name`; all three malloc'd and
 * taken over, or freed on failure) the current model, keeping the clamp
 * set and values of tensors that survived. */
static bool adopt(Repl *r, Compiler *c, char *text, char *name)
{
    Model *m = c->model;
    bool *clamped = pass_clamp_set(m, true);
    for (int t = 0; r->s && t < m->n_tensors; t++) {
        int old = ir_model_find_tensor(r->s->model, m->tensors[t].name);
        if (old >= 0 && m->tensors[t].role != ROLE_INPUT)
            clamped[t] = r->s->clamped[old];
    }
    Compiler *old = r->c;
    r->c = c;
    Session *s = repl_make_session(r, r->batch, clamped);
    if (!s) {
        r->c = old;
        compiler_free(c);
        free(c);
        free(text);
        free(name);
        return false;
    }
    repl_use_session(r, s);   /* frees the old session before its model */
    if (old) {
        compiler_free(old);
        free(old);
    }
    free(r->source);
    free(r->source_name);
    r->source = text;
    r->source_name = name;
    return true;
}

/* A compiled model text, or NULL after diagnostics (text, name freed). */
static Compiler *compile_or_free(Repl *r, char *name, char *text)
{
    Compiler *c = xcalloc(1, sizeof *c);
    if (compile_text(r, name, text, c))
        return c;
    compiler_free(c);
    free(c);
    free(text);
    free(name);
    return NULL;
}

bool repl_load(Repl *r, const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: error: cannot read model file: %s\n", path, strerror(errno));
        return false;
    }
    /* Settings typed for the previous model do not carry over to a new one. */
    int saved = r->n_settings;
    r->n_settings = 0;
    char *name = xstrdup(path);
    Compiler *c = compile_or_free(r, name, text);
    if (!c) {
        r->n_settings = saved;
        return false;
    }
    Session *old = r->s;
    r->s = NULL;   /* a new model starts from its own initial values */
    int old_batch = r->batch;
    r->batch = 1;
    if (!adopt(r, c, text, name)) {
        r->s = old;
        r->batch = old_batch;
        r->n_settings = saved;
        return false;
    }
    session_free(old);
    for (int i = 0; i < saved; i++) {
        free(r->settings[i].key);
        free(r->settings[i].value);
    }
    const Model *m = r->c->model;
    printf("loaded model %s from %s: %d tensors, rule %s\n", m->name, path, m->n_tensors,
           ir_rule_name(m->train.rule.kind));
    return true;
}

static bool is_declaration(const char *s)
{
    static const char *const keywords[] = {"param", "const", "input", "latent", "observed", "let", "extern", "train"};
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++) {
        size_t n = strlen(keywords[i]);
        if (!strncmp(s, keywords[i], n) && !isalnum((unsigned char)s[n]) && s[n] != '_')
            return true;
    }
    return false;
}

static void declare(Repl *r, Line *l)
{
    Diag *d = repl_diag(r);
    ParseResult parsed = {0};
    if (!parse_source(d, d->arena, line_file(r, l), PARSE_DECLS, &parsed))
        return;
    const char *old = r->source ? r->source : "";
    size_t n = strlen(old) + l->len + 2;
    char *text = xmalloc(n + 1);
    snprintf(text, n + 1, "%s%s%.*s\n", old, *old && old[strlen(old) - 1] != '\n' ? "\n" : "", (int)l->len,
             l->text);
    char *name = xstrdup(r->source_name ? r->source_name : "<repl>");
    Compiler *c = compile_or_free(r, name, text);
    if (!c)
        return;
    const Model *prev = r->c ? r->c->model : NULL;
    if (!prev)
        r->batch = 1;
    bool grew = false;
    for (int t = 0; t < c->model->n_tensors; t++)
        if (!prev || ir_model_find_tensor(prev, c->model->tensors[t].name) < 0) {
            printf("%s%s", grew ? ", " : "added ", c->model->tensors[t].name);
            grew = true;
        }
    int count = c->model->n_tensors;
    if (!adopt(r, c, text, name))
        return;
    if (grew)
        printf("\n");
    else
        printf("model recompiled (%d tensors)\n", count);
}

/* ---- the loop ---- */

/* Handles one line; false when it asks to quit. */
static bool handle_line(Repl *r, const char *text)
{
    size_t start = strspn(text, " \t");
    if (!text[start] || text[start] == '#')
        return true;
    Line l = {text, strlen(text), -1, NULL};
    if (text[start] == ':')
        return repl_command(r, &l);
    if (is_declaration(text + start))
        declare(r, &l);
    else
        evaluate(r, &l);
    return true;
}

static char *history_path(void)
{
    const char *env = getenv("FEPC_HISTORY");
    if (env && *env)
        return xstrdup(env);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.fepc_history";
    char *p = xmalloc(n);
    snprintf(p, n, "%s/.fepc_history", home);
    return p;
}

bool repl_init(Repl *r, const Options *opt)
{
    memset(r, 0, sizeof *r);
    r->opt = opt;
    r->batch = 1;
    r->next_uid = UINT64_C(1) << 62;
    diag_init(&r->diag, &r->arena, stderr);
    return cli_engine(opt, &r->timed.inner, &r->jit);
}

void repl_free(Repl *r)
{
    agent_session_free(r->agent);
    session_free(r->s);
    optim_free(r->optim);
    if (r->c)
        compiler_free(r->c);
    free(r->c);
    jit_free(r->jit);
    for (int i = 0; i < r->n_settings; i++) {
        free(r->settings[i].key);
        free(r->settings[i].value);
    }
    free(r->settings);
    free(r->source);
    free(r->source_name);
    arena_free(&r->arena);
}

int cmd_repl(const Options *opt)
{
    Repl r;
    if (!repl_init(&r, opt))
        return 1;
    repl_install_sigint();
    bool interactive = isatty(STDIN_FILENO);
    char *hist = interactive ? history_path() : NULL;
    LineReader *lr = line_reader_new(interactive, hist, repl_complete, &r);
    free(hist);
    if (interactive)
        printf("fepc repl (%s engine) — :help lists the commands, :quit leaves\n", r.timed.inner.name);
    if (opt->model_path)
        repl_load(&r, opt->model_path);
    int rc = 0;
    bool eof = false;
    for (;;) {
        fflush(stdout);
        snprintf(r.prompt, sizeof r.prompt, "%.80s> ", r.c ? r.c->model->name : "fepc");
        bool interrupted;
        const char *line = line_reader_get(lr, r.prompt, &interrupted);
        if (!line && interrupted && interactive) {
            repl_clear_interrupt();
            continue;
        }
        if (!line) {
            rc = interrupted ? 130 : 0;
            eof = !interrupted;
            break;
        }
        repl_clear_interrupt();
        bool go_on = handle_line(&r, line);
        fflush(stdout);
        fflush(stderr);
        if (!go_on)
            break;
    }
    if (interactive && eof)
        fputc('\n', stdout);
    line_reader_free(lr);
    repl_free(&r);
    return rc;
}
