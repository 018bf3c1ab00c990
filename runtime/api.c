/* api.c — the public C API (fep.h) over the runtime's sessions.
 *
 * A FepModule owns a compiled model and the engine that runs it (the JIT
 * for fep_compile_file, the module's own code for fep_load_so).  A
 * FepSession wraps a Session plus its optimizer.  Errors are returned as
 * codes; the message goes to a thread-local buffer read by
 * fep_last_error(). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../codegen/codegen.h"
#include "fep.h"

struct FepModule {
    Compiler c;
    Engine engine;
    Jit *jit;
    AotModule *aot;
};

struct FepSession {
    FepModule *module;
    Session *s;
    Optimizer *optim;
    bool *clamped;        /* per tensor */
    bool relaxed;         /* fep_relax ran since the last change */
};

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

/* Compiles text (or a file) with diagnostics captured into last_error. */
static bool compile_quietly(FepModule *m, const char *path, const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *capture = open_memstream(&buf, &len);
    bool done = compile_model(&m->c, path, text, capture ? capture : stderr);
    if (capture)
        fclose(capture);
    if (!done)
        fail(FEP_ERROR_MODEL, "%s", buf && *buf ? buf : "the model does not compile");
    free(buf);
    return done;
}

FepStatus fep_compile_file(const char *path, FepModule **out)
{
    if (!path || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_compile_file: NULL argument");
    *out = NULL;
    FepModule *m = xcalloc(1, sizeof *m);
    char err[512];
    if (!compile_quietly(m, path, NULL)) {
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

FepStatus fep_load_so(const char *path, FepModule **out)
{
    if (!path || !out)
        return fail(FEP_ERROR_ARGUMENT, "fep_load_so: NULL argument");
    *out = NULL;
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
    free(s->clamped);
    free(s);
}

/* The tensor's buffer after checking that n floats fit it exactly. */
static FepStatus locate(FepSession *s, const char *name, size_t n, int *buf)
{
    if (!s)
        return fail(FEP_ERROR_ARGUMENT, "NULL session");
    const Tensor *t = find(s->s->model, name);
    if (!t)
        return fail(FEP_ERROR_NAME, "model '%s' has no tensor '%s'", s->s->model->name, name ? name : "(null)");
    int64_t len = session_buffer_len(s->s, t->buf);
    if ((int64_t)n != len)
        return fail(FEP_ERROR_SHAPE, "tensor '%s' holds %lld floats, not %zu", name, (long long)len, n);
    *buf = t->buf;
    return FEP_OK;
}

FepStatus fep_set(FepSession *s, const char *name, const float *data, size_t n)
{
    int buf;
    FepStatus st = locate(s, name, n, &buf);
    if (st)
        return st;
    if (!data)
        return fail(FEP_ERROR_ARGUMENT, "fep_set: NULL data");
    memcpy(s->s->st.data[buf], data, sizeof(float) * n);
    session_leaves_changed();
    return ok();
}

FepStatus fep_get(FepSession *s, const char *name, float *data, size_t n)
{
    int buf;
    FepStatus st = locate(s, name, n, &buf);
    if (st)
        return st;
    if (!data)
        return fail(FEP_ERROR_ARGUMENT, "fep_get: NULL data");
    memcpy(data, s->s->st.data[buf], sizeof(float) * n);
    return ok();
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

Session *api_session(FepSession *s) { return s ? s->s : NULL; }

int api_status(int code, const char *message)
{
    snprintf(last_error, sizeof last_error, "%s", message);
    return code;
}
