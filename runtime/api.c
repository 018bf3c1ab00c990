/* api.c — the public C API (fep.h) over the runtime's sessions: modules,
 * sessions, tensors by name, relaxation and learning.
 *
 * A FepModule owns a compiled model and the engine that runs it (the JIT
 * for fep_compile_file, the module's own code for fep_load_so).  A
 * FepSession wraps a Session plus its optimizer (api_impl.h).  Errors are
 * returned as codes; the message goes to a thread-local buffer read by
 * fep_last_error().  Tensor enumeration, options at session creation,
 * double precision and training over arrays live in api_*.c. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_impl.h"

static _Thread_local char last_error[1024];

const char *fep_last_error(void) { return last_error; }

static FepStatus fail(FepStatus code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static FepStatus fail(FepStatus code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

static FepStatus ok(void)
{
    last_error[0] = 0;
    return FEP_OK;
}

FepStatus api_fail(FepStatus code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

FepStatus api_ok(void) { return ok(); }

void api_capture_begin(ApiCapture *c, Diag *d)
{
    c->diag = d;
    c->text = NULL;
    c->len = 0;
    c->stream = open_memstream(&c->text, &c->len);
    d->out = c->stream ? c->stream : stderr;
}

char *api_capture_end(ApiCapture *c)
{
    if (c->stream)
        fclose(c->stream);
    c->diag->out = stderr;
    return c->text ? c->text : xstrdup("");
}

/* Compiles text (or a file) with diagnostics captured into last_error. */
static bool compile_quietly(FepModule *m, const char *path, const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *capture = open_memstream(&buf, &len);
    bool done = compile_model(&m->c, path, text, capture ? capture : stderr);
    if (capture)
        fclose(capture);
    m->c.diag.out = stderr;   /* not the closed capture: later messages are captured per call */
    if (!done)
        fail(FEP_ERROR_MODEL, "%s", buf && *buf ? buf : "the model does not compile");
    free(buf);
    return done;
}

/* A JIT module from a file (text NULL) or from source text named path. */
static FepStatus compile_jit(const char *path, const char *text, FepModule **out)
{
    *out = NULL;
    if (!text && access(path, R_OK) != 0)
        return fail(FEP_ERROR_IO, "%s: error: cannot read model file: %s", path, strerror(errno));
    FepModule *m = xcalloc(1, sizeof *m);
    char err[512];
    if (!compile_quietly(m, path, text)) {
        fep_module_free(m);
        return FEP_ERROR_MODEL;
    }
    m->jit = jit_new(err, sizeof err);
    if (!m->jit) {
        fep_module_free(m);
        return fail(FEP_ERROR_MODEL, "cannot start the JIT: %s", err);
    }
    m->engine = engine_jit(m->jit);
    *out = m;
    return ok();
}

FepStatus fep_compile_file(const char *path, FepModule **out)
{
    if (!path || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_compile_file: NULL argument");
    return compile_jit(path, NULL, out);
}

FepStatus fep_compile_string(const char *name, const char *source, FepModule **out)
{
    if (!source || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_compile_string: NULL argument");
    return compile_jit(name ? name : "<string>", source, out);
}

FepStatus fep_load_so(const char *path, FepModule **out)
{
    if (!path || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_load_so: NULL argument");
    *out = NULL;
    if (access(path, R_OK) != 0)
        return fail(FEP_ERROR_IO, "cannot load module %s: %s", path, strerror(errno));
    FepModule *m = xcalloc(1, sizeof *m);
    char err[1024];
    const char *source;
    m->aot = aot_open(path, &source, err, sizeof err);
    if (!m->aot) {
        free(m);
        return fail(FEP_ERROR_MODEL, "%s", err);
    }
    if (!compile_quietly(m, path, source)) {
        fep_module_free(m);
        return FEP_ERROR_MODEL;
    }
    if (!aot_bind(m->aot, &m->c.diag, m->c.model, err, sizeof err)) {
        fep_module_free(m);
        return fail(FEP_ERROR_MODEL, "%s", err);
    }
    m->engine = engine_aot(m->aot);
    *out = m;
    return ok();
}

void fep_module_free(FepModule *m)
{
    if (!m)
        return;
    jit_free(m->jit);
    compiler_free(&m->c);
    aot_close(m->aot);
    free(m);
}

static const Tensor *find(const Model *model, const char *name)
{
    int t = name ? ir_model_find_tensor(model, name) : -1;
    return t >= 0 ? &model->tensors[t] : NULL;
}

FepStatus fep_tensor_info(const FepModule *m, const char *name, int *rank, int64_t dims[8], int *is_value)
{
    if (!m || !rank || !dims || !is_value)
        return fail(FEP_ERROR_ARGUMENT, "fep_tensor_info: NULL argument");
    const Tensor *t = find(m->c.model, name);
    if (!t)
        return fail(FEP_ERROR_NAME, "model '%s' has no tensor '%s'", m->c.model->name, name ? name : "(null)");
    const Shape *s = ir_shape(&m->c.model->g, t->shape);
    *rank = s->rank;
    for (int i = 0; i < s->rank; i++)
        dims[i] = s->dims[i];
    *is_value = ir_is_value_role(t->role);
    return ok();
}

FepStatus fep_session_new(FepModule *m, int batch, FepSession **out)
{
    if (!m || !out || batch < 1)
        return fail(FEP_ERROR_ARGUMENT, "fep_session_new: needs a module and batch >= 1");
    char err[512];
    Model *model = m->c.model;
    Session *s = session_new(&m->c.diag, model, &model->train, batch, false, true, m->engine, err, sizeof err);
    if (!s)
        return fail(FEP_ERROR_MODEL, "%s", err);
    FepSession *fs = xcalloc(1, sizeof *fs);
    fs->module = m;
    fs->s = s;
    fs->clamped = xmalloc((size_t)model->n_tensors + 1);
    memcpy(fs->clamped, s->clamped, (size_t)model->n_tensors);
    *out = fs;
    return ok();
}

void fep_session_free(FepSession *s)
{
    if (!s)
        return;
    optim_free(s->optim);
    session_free(s->s);
    pool_free(s->pool);
    free(s->clamped);
    free(s);
}

FepStatus fep_set(FepSession *s, const char *name, const float *data, size_t n)
{
    return api_transfer(s, name, (void *)data, n, false, true, "fep_set");
}

FepStatus fep_get(FepSession *s, const char *name, float *data, size_t n)
{
    return api_transfer(s, name, data, n, false, false, "fep_get");
}

FepStatus fep_clamp(FepSession *s, const char *name, int clamped)
{
    if (!s)
        return fail(FEP_ERROR_ARGUMENT, "NULL session");
    Model *model = s->s->model;
    int t = name ? ir_model_find_tensor(model, name) : -1;
    if (t < 0 || (model->tensors[t].role != ROLE_LATENT && model->tensors[t].role != ROLE_OBSERVED))
        return fail(FEP_ERROR_NAME, "model '%s' has no latent or observed node '%s'", model->name, name ? name : "(null)");
    s->clamped[t] = clamped != 0;
    if (!session_rederive(s->s, &s->module->c.diag, s->s->rule, s->clamped))
        return fail(FEP_ERROR_MODEL, "%s", s->s->error);
    return ok();
}

FepStatus fep_relax(FepSession *s, int steps)
{
    if (!s)
        return fail(FEP_ERROR_ARGUMENT, "NULL session");
    const TrainConfig *cfg = &s->s->cfg;
    if (session_relax(s->s, steps < 0 ? cfg->steps : steps, cfg->step_size, NULL) < 0)
        return fail(FEP_ERROR_MODEL, "%s", s->s->error);
    s->relaxed = true;
    double e = session_energy(s->s);
    if (!isfinite(e)) {
        const char *bad = session_find_nonfinite(s->s);
        return fail(FEP_ERROR_NUMERIC, "relaxation produced non-finite values in '%s'", bad ? bad : "energy");
    }
    return ok();
}

FepStatus fep_advance(FepSession *s)
{
    if (!s)
        return fail(FEP_ERROR_ARGUMENT, "NULL session");
    if (!session_run_phase(s->s, PHASE_ADVANCE))
        return fail(FEP_ERROR_MODEL, "%s", s->s->error);
    return ok();
}

FepStatus fep_learn(FepSession *s)
{
    if (!s)
        return fail(FEP_ERROR_ARGUMENT, "NULL session");
    if (!s->relaxed)
        return fail(FEP_ERROR_ARGUMENT, "fep_learn needs a fep_relax first");
    if (!s->optim)
        s->optim = optim_new(s->s, &s->s->cfg, 0);
    if (!session_param_grads(s->s))
        return fail(FEP_ERROR_MODEL, "%s", s->s->error);
    optim_step(s->optim, s->s);
    return ok();
}

FepStatus fep_energy(FepSession *s, double *out)
{
    if (!s || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_energy: NULL argument");
    if (!s->relaxed)
        return fail(FEP_ERROR_ARGUMENT, "fep_energy needs a fep_relax first");
    *out = session_energy(s->s);
    return ok();
}

FepStatus fep_save_params(FepSession *s, const char *path)
{
    char err[512];
    if (!s || !path)
        return fail(FEP_ERROR_ARGUMENT, "fep_save_params: NULL argument");
    const char *meta[2] = {"model", s->s->model->name};
    if (!save_params(s->s, path, meta, 1, err, sizeof err))
        return fail(FEP_ERROR_IO, "%s", err);
    return ok();
}

FepStatus fep_load_params(FepSession *s, const char *path)
{
    char err[512];
    if (!s || !path)
        return fail(FEP_ERROR_ARGUMENT, "fep_load_params: NULL argument");
    TensorSet set = {0};
    bool loaded = st_load(path, &set, err, sizeof err);
    bool bound = loaded && session_bind_params(s->s, &set, path, err, sizeof err);
    tensor_set_free(&set);
    if (!bound)
        return fail(loaded ? FEP_ERROR_SHAPE : FEP_ERROR_IO, "%s", err);
    return ok();
}
