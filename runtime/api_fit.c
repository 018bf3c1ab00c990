/* api_fit.c — training and evaluation over arrays through the C API.
 *
 * A FepData is a runtime Dataset whose columns come from caller arrays,
 * loaded and checked by dataset.c exactly as `--bind` files are (the
 * array is named "array 'NODE'" in messages).  fep_fit and fep_evaluate
 * hand it to train.c's loops (train_session, eval_session), which borrow
 * it: the loop is the one `fepc train` runs, and only its reporting goes
 * to the caller's callbacks instead of the terminal. */
#include "api_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct FepData {
    FepModule *module;
    Dataset d;
};

FepStatus fep_data_new(FepModule *m, FepData **out)
{
    if (!m || !out)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_data_new: NULL argument");
    FepData *d = xcalloc(1, sizeof *d);
    d->module = m;
    d->d.label_column = -1;
    *out = d;
    return api_ok();
}

/* A tensor or family of that name exists. */
static bool names_node(const Model *m, const char *name)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (!strcmp(m->tensors[t].name, name) || (m->tensors[t].family && !strcmp(m->tensors[t].family, name)))
            return true;
    return false;
}

FepStatus fep_data_add(FepData *d, const char *node, const void *values, int f64, int rank, const int64_t *dims)
{
    if (!d || !node || !values || (rank > 0 && !dims))
        return api_fail(FEP_ERROR_ARGUMENT, "fep_data_add: NULL argument");
    char label[300], err[1024];
    snprintf(label, sizeof label, "array '%s'", node);
    DataSource src = {.node = node, .path = label, .values = values, .f64 = f64 != 0, .rank = rank, .dims = dims};
    const Model *m = d->module->c.model;
    if (!dataset_add_source(m, &d->d, &src, err, sizeof err))
        return api_fail(names_node(m, node) ? FEP_ERROR_SHAPE : FEP_ERROR_NAME, "%s", err);
    return api_ok();
}

int64_t fep_data_samples(const FepData *d) { return d ? d->d.n : 0; }

void fep_data_free(FepData *d)
{
    if (!d)
        return;
    dataset_free(&d->d);
    free(d);
}

/* A shallow copy of d's set, checked to bind every input and observed
 * node of s's model, with its label column found. */
static FepStatus usable(const FepSession *s, const FepData *d, const char *what, Dataset *out)
{
    char err[1024];
    if (d->module != s->module)
        return api_fail(FEP_ERROR_ARGUMENT, "%s data belongs to another module", what);
    if (d->d.n == 0)
        return api_fail(FEP_ERROR_ARGUMENT, "%s data has no arrays", what);
    *out = d->d;
    if (!dataset_complete(s->s->model, out, false, err, sizeof err))
        return api_fail(FEP_ERROR_SHAPE, "%s data: %s", what, err);
    return FEP_OK;
}

/* TrainHooks over the caller's callbacks (ctx: the FepFitOptions). */
static bool on_batch(void *ctx, int epoch, int64_t done, int64_t total, double energy)
{
    const FepFitOptions *o = ctx;
    return !o->on_batch || o->on_batch(o->ctx, epoch, done, total, energy) == 0;
}

static bool on_epoch(void *ctx, const EpochReport *r)
{
    const FepFitOptions *o = ctx;
    FepEpochStats stats = {r->epoch, r->epochs, r->energy, r->train_accuracy, r->val_accuracy, r->val_energy,
                           r->seconds};
    return !o->on_epoch || o->on_epoch(o->ctx, &stats) == 0;
}

static FepStatus check_fit_options(const FepFitOptions *o, bool has_val, int64_t samples)
{
    if (o->holdout < 0)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_fit: holdout %lld is negative", (long long)o->holdout);
    if (o->holdout >= samples && samples > 0)
        return api_fail(FEP_ERROR_ARGUMENT,
                        "fep_fit: holding out %lld samples leaves none to train on: the data has %lld",
                        (long long)o->holdout, (long long)samples);
    if (o->holdout > 0 && has_val)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_fit: give validation data or a holdout, not both");
    if (!(o->clip >= 0) || isinf(o->clip))
        return api_fail(FEP_ERROR_ARGUMENT, "fep_fit: clip must be a number >= 0 (0: off), not %g", o->clip);
    return FEP_OK;
}

FepStatus fep_fit(FepSession *s, const FepData *train, const FepData *val, const FepFitOptions *opt)
{
    if (!s || !train)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_fit: NULL %s", s ? "training data" : "session");
    FepFitOptions defaults = {.epochs = -1};
    const FepFitOptions *o = opt ? opt : &defaults;
    Dataset tr, va;
    FepStatus st = check_fit_options(o, val != NULL, train->d.n);
    if (st || (st = usable(s, train, "training", &tr)) || (val && (st = usable(s, val, "validation", &va))))
        return st;
    TrainConfig cfg = s->s->cfg;
    if (o->epochs >= 0)
        cfg.epochs = o->epochs;
    if (!s->optim)
        s->optim = optim_new(s->s, &s->s->cfg, 0);
    double clip = s->optim->clip;
    s->optim->clip = o->clip;
    TrainHooks hooks = {(void *)o, o->report_every > 0 ? o->report_every : 20, on_batch, on_epoch};
    TrainOptions topt = {.val = o->holdout, .f64 = s->s->st.f64, .hooks = &hooks};
    char err[1024];
    ApiCapture cap;
    api_capture_begin(&cap, &s->module->c.diag);
    int rc = train_session(&s->module->c.diag, s->s, s->optim, &cfg, &tr, val ? &va : NULL, &topt, err, sizeof err);
    char *text = api_capture_end(&cap);
    s->optim->clip = clip;
    s->relaxed = false;   /* the params moved since the last fep_relax */
    st = rc == 0 ? api_ok() : api_fail(rc == 2 ? FEP_ERROR_NUMERIC : FEP_ERROR_MODEL, "%s%s", text, err);
    free(text);
    return st;
}

FepStatus fep_evaluate(FepSession *s, const FepData *data, double *accuracy, double *energy)
{
    if (!s || !data)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_evaluate: NULL %s", s ? "data" : "session");
    Dataset d;
    FepStatus st = usable(s, data, "evaluation", &d);
    if (st)
        return st;
    double acc, e;
    char err[1024];
    ApiCapture cap;
    api_capture_begin(&cap, &s->module->c.diag);
    bool ok = eval_session(&s->module->c.diag, s->s, &s->s->cfg, &d, &acc, &e, err, sizeof err);
    char *text = api_capture_end(&cap);
    st = ok ? api_ok() : api_fail(FEP_ERROR_MODEL, "%s%s", text, err);
    free(text);
    if (ok && accuracy)
        *accuracy = acc;
    if (ok && energy)
        *energy = e;
    return st;
}
