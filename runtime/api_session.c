/* api_session.c — sessions opened with options, and tensor access in
 * either precision.
 *
 * fep_session_open applies train-key overrides to a copy of the model's
 * train block through ir_apply_train_setting, the function the train
 * block and `fepc --key value` go through, each value registered as a
 * source named "--KEY" so its diagnostic reads as the command line's.  A
 * rule override may add its relaxation's params to the (shared) model,
 * as on the command line; other sessions never see settings.  The session
 * runs on a pool of threads, batch-parallel as fepc does, so its numbers
 * are fepc's.
 *
 * api_transfer is the one copy between caller arrays and storage: by
 * name, checked length, converted between float and double. */
#include "api_impl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tensors by name ---- */

/* The buffer NAME names for reading or writing, allocated in this session. */
static FepStatus lookup(const FepSession *s, const char *name, bool write, int *buf)
{
    const Model *m = s->s->model;
    int t = ir_model_find_tensor(m, name);
    if (t >= 0) {
        *buf = m->tensors[t].buf;
    } else {
        int b = ir_model_find_buffer(m, name);
        BufKind k = b >= 0 ? m->buffers[b].kind : BUF_TEMP;
        if (b >= 0 && write && (k == BUF_ERROR || k == BUF_GRAD))
            return api_fail(FEP_ERROR_NAME, "'%s' is computed by the session and cannot be set", name);
        if (k != BUF_ERROR && k != BUF_GRAD && k != BUF_PREV)
            return api_fail(FEP_ERROR_NAME, "model '%s' has no tensor '%s'", m->name, name);
        *buf = b;
    }
    if (*buf >= s->s->st.n_buffers)
        return api_fail(FEP_ERROR_NAME, "this session (rule %s) has no '%s': a session with another rule added it",
                        ir_rule_name(s->s->rule.kind), name);
    return FEP_OK;
}

/* n values from src to dst, each float or double. */
static void convert(void *dst, bool dst_f64, const void *src, bool src_f64, size_t n)
{
    if (dst_f64 == src_f64)
        memcpy(dst, src, n * (dst_f64 ? sizeof(double) : sizeof(float)));
    else if (dst_f64)
        for (size_t i = 0; i < n; i++)
            ((double *)dst)[i] = ((const float *)src)[i];
    else
        for (size_t i = 0; i < n; i++)
            ((float *)dst)[i] = (float)((const double *)src)[i];
}

FepStatus api_transfer(FepSession *s, const char *name, void *data, size_t n, bool f64, bool write, const char *fn)
{
    if (!s || !name)
        return api_fail(FEP_ERROR_ARGUMENT, "%s: NULL %s", fn, s ? "name" : "session");
    int buf = -1;
    FepStatus st = lookup(s, name, write, &buf);
    if (st)
        return st;
    int64_t len = session_buffer_len(s->s, buf);
    if ((int64_t)n != len)
        return api_fail(FEP_ERROR_SHAPE, "tensor '%s' holds %lld values, not %zu", name, (long long)len, n);
    if (!data)
        return api_fail(FEP_ERROR_ARGUMENT, "%s: NULL data", fn);
    void *store = s->s->st.data[buf];
    if (write)
        convert(store, s->s->st.f64, data, f64, n);
    else
        convert(data, f64, store, s->s->st.f64, n);
    if (write)
        session_leaves_changed();
    return api_ok();
}

FepStatus fep_set_f64(FepSession *s, const char *name, const double *data, size_t n)
{
    return api_transfer(s, name, (void *)data, n, true, true, "fep_set_f64");
}

FepStatus fep_get_f64(FepSession *s, const char *name, double *data, size_t n)
{
    return api_transfer(s, name, data, n, true, false, "fep_get_f64");
}

FepStatus fep_grads(FepSession *s)
{
    if (!s)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_grads: NULL session");
    if (!s->relaxed)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_grads needs a fep_relax first");
    if (!session_param_grads(s->s))
        return api_fail(FEP_ERROR_MODEL, "%s", s->s->error);
    return api_ok();
}

/* ---- sessions with options ---- */

/* The model's train block with opt's overrides; the model's own is kept. */
static FepStatus apply_settings(FepModule *m, const FepSessionOptions *opt, TrainConfig *cfg)
{
    Compiler *c = &m->c;
    TrainConfig saved = c->model->train;
    ApiCapture cap;
    api_capture_begin(&cap, &c->diag);
    bool ok = true;
    for (int i = 0; i < opt->n_settings && ok; i++) {
        const char *key = opt->keys[i], *value = opt->values[i];
        if (!key || !value) {
            ok = false;
            break;
        }
        char name[80];
        snprintf(name, sizeof name, "--%s", key);
        int file = diag_add_file(&c->diag, name, value, strlen(value));
        ParseResult r = {0};
        Span whole = {file, 0, (unsigned)strlen(value)};
        ok = parse_source(&c->diag, &c->arena, file, PARSE_EXPR, &r) &&
             ir_apply_train_setting(&c->diag, c->model, key, whole, r.expr);
    }
    *cfg = c->model->train;
    c->model->train = saved;
    char *text = api_capture_end(&cap);
    FepStatus st = ok ? FEP_OK
                      : api_fail(FEP_ERROR_ARGUMENT, "%s", *text ? text : "fep_session_open: NULL key or value");
    free(text);
    return st;
}

FepStatus fep_session_open(FepModule *m, const FepSessionOptions *opt, FepSession **out)
{
    if (!m || !out)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_open: NULL argument");
    *out = NULL;
    FepSessionOptions none = {0};
    opt = opt ? opt : &none;
    if (opt->n_settings < 0 || (opt->n_settings > 0 && (!opt->keys || !opt->values)))
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_open: %d settings without keys and values", opt->n_settings);
    if (opt->threads < 0 || opt->threads > 256)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_open: threads must be 0 (one per core) to 256, not %d",
                        opt->threads);
    TrainConfig cfg;
    FepStatus st = apply_settings(m, opt, &cfg);
    if (st)
        return st;
    Model *model = m->c.model;
    char err[512];
    if (model->n_externs && !ir_resolve_externs(model, err, sizeof err))
        return api_fail(FEP_ERROR_MODEL, "%s", err);
    int threads = opt->threads ? opt->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    Pool *pool = pool_new(m->engine, threads > 0 ? threads : 1);
    ApiCapture cap;
    api_capture_begin(&cap, &m->c.diag);
    Session *s = session_new(&m->c.diag, model, &cfg, cfg.batch, opt->f64 != 0, true, engine_parallel(pool), err,
                             sizeof err);
    char *text = api_capture_end(&cap);
    if (!s) {
        pool_free(pool);
        st = api_fail(FEP_ERROR_MODEL, "%s%s", text, err);
        free(text);
        return st;
    }
    free(text);
    FepSession *fs = xcalloc(1, sizeof *fs);
    fs->module = m;
    fs->s = s;
    fs->pool = pool;
    fs->clamped = xmalloc((size_t)model->n_tensors + 1);
    memcpy(fs->clamped, s->clamped, (size_t)model->n_tensors);
    *out = fs;
    return api_ok();
}

/* ---- the settings as text ---- */

/* The shortest of %.15g and %.17g that reads back as x. */
static void put_number(FILE *f, double x)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, sizeof buf, "%.17g", x);
    fputs(buf, f);
}

static void put_rule(FILE *f, RuleSpec r)
{
    static const char *const backward[] = {"transpose", "learned", "random"};
    static const char *const weights[] = {"identity", "learned", "random"};
    fprintf(f, "rule = %s", ir_rule_name(r.kind));
    if (r.backward != BACKWARD_TRANSPOSE || r.no_derivative || r.error_weights != ERROR_WEIGHTS_IDENTITY)
        fprintf(f, "(backward = %s, derivative = %s, error_weights = %s)", backward[r.backward],
                r.no_derivative ? "none" : "exact", weights[r.error_weights]);
    fputc('\n', f);
}

static void put_optimizer(FILE *f, const TrainConfig *t)
{
    static const char *const names[] = {"sgd", "adam", "adamw"};
    fprintf(f, "optimizer = %s(lr = ", names[t->optimizer]);
    put_number(f, t->lr);
    if (t->optimizer == OPT_SGD) {
        fputs(", momentum = ", f);
        put_number(f, t->opt_momentum);
        fprintf(f, ", nesterov = %d", t->nesterov ? 1 : 0);
    } else {
        const double v[] = {t->beta1, t->beta2, t->eps};
        const char *const k[] = {"beta1", "beta2", "eps"};
        for (int i = 0; i < 3; i++) {
            fprintf(f, ", %s = ", k[i]);
            put_number(f, v[i]);
        }
    }
    fputs(", weight_decay = ", f);
    put_number(f, t->weight_decay);
    fputs(")\n", f);
}

static void put_config(FILE *f, const TrainConfig *t)
{
    put_rule(f, t->rule);
    fprintf(f, "steps = %d\nstep_size = ", t->steps);
    put_number(f, t->step_size);
    fprintf(f, "\nintegrator = %s\nmomentum = ", t->integrator == INTEGRATOR_HEUN ? "heun" : "euler");
    put_number(f, t->momentum);
    fputs("\ntol = ", f);
    put_number(f, t->tol);
    fputc('\n', f);
    put_optimizer(f, t);
    fprintf(f, "schedule = %s\nwarmup = %d\nbatch = %d\nepochs = %d\nseed = %llu\n",
            t->schedule == SCHEDULE_COSINE ? "cosine" : "constant", t->warmup, t->batch, t->epochs,
            (unsigned long long)t->seed);
}

FepStatus fep_session_config(const FepSession *s, char *buf, size_t len, size_t *needed)
{
    if (!s || (!buf && len) || !needed)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_config: NULL argument");
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return api_fail(FEP_ERROR_IO, "fep_session_config: out of memory");
    put_config(f, &s->s->cfg);
    fclose(f);
    *needed = size + 1;
    if (len) {
        size_t k = size < len - 1 ? size : len - 1;
        memcpy(buf, text, k);
        buf[k] = 0;
    }
    free(text);
    return api_ok();
}
