/* filter.c — streaming inference through a prev() model (SPEC §7, thesis
 * §3.4): one CSV row per time step binds the inputs and observed nodes, the
 * latents relax for `steps` steps from their prediction, their values are
 * written out, and prev(x) ← x before the next row.  With `learn`, the
 * parameters also take one optimizer step per time step (online learning,
 * thesis Fig. 3.13).
 *
 * Columns bind to nodes by header: `x` for a one-element node, `x[i]` for
 * element i of a node flattened row-major. */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Column index of element `i` of tensor `t`, or -1. */
static int column_of(const CsvTable *csv, const Tensor *t, int64_t numel, int64_t i)
{
    char name[300];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && numel != 1)
            continue;
        if (pass == 0)
            snprintf(name, sizeof name, "%s", t->name);
        else
            snprintf(name, sizeof name, "%s[%lld]", t->name, (long long)i);
        for (int c = 0; c < csv->n_columns; c++)
            if (!strcmp(csv->columns[c], name))
                return c;
    }
    return -1;
}

typedef struct Binding {
    int tensor;
    int64_t numel;
    int *columns;
} Binding;

static bool bind_columns(const Model *m, const CsvTable *csv, const char *path, Binding *out, int *n_out, char *err,
                         size_t errlen)
{
    *n_out = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_INPUT && tensor->role != ROLE_OBSERVED)
            continue;
        int64_t numel = ir_numel(ir_shape(&m->g, tensor->shape));
        Binding b = {t, numel, xmalloc(sizeof(int) * (size_t)numel)};
        for (int64_t i = 0; i < numel; i++) {
            b.columns[i] = column_of(csv, tensor, numel, i);
            if (b.columns[i] < 0) {
                snprintf(err, errlen, "%s: no column '%s%s' for %s node '%s' (columns bind by name: x, or x[i])", path,
                         tensor->name, numel == 1 ? "" : "[i]", ir_role_name(tensor->role), tensor->name);
                free(b.columns);
                return false;
            }
        }
        out[(*n_out)++] = b;
    }
    return true;
}

/* The output header: every latent's elements, named like the input columns. */
static char **latent_columns(const Model *m, int *n_cols)
{
    int n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].role == ROLE_LATENT)
            n += (int)ir_numel(ir_shape(&m->g, m->tensors[t].shape));
    char **cols = xcalloc((size_t)n + 1, sizeof *cols);
    int k = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_LATENT)
            continue;
        int64_t numel = ir_numel(ir_shape(&m->g, tensor->shape));
        for (int64_t i = 0; i < numel; i++) {
            char name[300];
            if (numel == 1)
                snprintf(name, sizeof name, "%s", tensor->name);
            else
                snprintf(name, sizeof name, "%s[%lld]", tensor->name, (long long)i);
            cols[k++] = xstrdup(name);
        }
    }
    *n_cols = n;
    return cols;
}

static bool step_once(Session *s, Optimizer *o, const TrainConfig *cfg, double *row_out)
{
    if (session_relax(s, cfg->steps, cfg->step_size, NULL) < 0)
        return false;
    if (o) {
        if (!session_param_grads(s))
            return false;
        optim_step(o, s);
    }
    const Model *m = s->model;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].role == ROLE_LATENT) {
            session_get(s, m->tensors[t].buf, row_out);
            row_out += ir_numel(ir_shape(&m->g, m->tensors[t].shape));
        }
    return session_run_phase(s, PHASE_ADVANCE);
}

int filter_run(Diag *d, Model *m, const TrainConfig *cfg, const char *data_path, const char *out_path,
               const char *params_path, bool learn, bool f64, Engine engine)
{
    char err[1024] = "";
    CsvTable csv = {0};
    Binding *binds = xcalloc((size_t)m->n_tensors + 1, sizeof *binds);
    int n_binds = 0, n_cols = 0, rc = 1;
    char **cols = NULL;
    double *rows = NULL;
    Optimizer *o = NULL;
    TensorSet params = {0};
    Session *s = NULL;
    if (!m->has_prev)
        snprintf(err, sizeof err, "model '%s' has no prev() state to stream through; filter needs a stream model", m->name);
    else if (csv_load(data_path, &csv, err, sizeof err) &&
             bind_columns(m, &csv, data_path, binds, &n_binds, err, sizeof err))
        s = session_new(d, m, cfg, 1, f64, true, engine, err, sizeof err);
    if (!s)
        goto done;
    if (params_path && (!st_load(params_path, &params, err, sizeof err) ||
                        !session_bind_params(s, &params, params_path, err, sizeof err)))
        goto done;
    cols = latent_columns(m, &n_cols);
    rows = xcalloc((size_t)(csv.n_rows * n_cols) + 1, sizeof *rows);
    o = learn ? optim_new(s, cfg, 0) : NULL;
    for (int64_t r = 0; r < csv.n_rows; r++) {
        for (int i = 0; i < n_binds; i++) {
            double *v = xmalloc(sizeof *v * (size_t)binds[i].numel);
            for (int64_t k = 0; k < binds[i].numel; k++)
                v[k] = csv.values[r * csv.n_columns + binds[i].columns[k]];
            session_set(s, m->tensors[binds[i].tensor].buf, v);
            free(v);
        }
        if (!step_once(s, o, cfg, rows + r * n_cols)) {
            snprintf(err, sizeof err, "%s: row %lld: %s", data_path, (long long)r + 2, s->error);
            goto done;
        }
        if (!isfinite(session_energy(s))) {
            snprintf(err, sizeof err, "%s: row %lld: the filter diverged (non-finite energy)", data_path, (long long)r + 2);
            goto done;
        }
    }
    if (csv_save(out_path, cols, n_cols, rows, csv.n_rows, err, sizeof err))
        rc = 0;
done:
    if (rc)
        fprintf(stderr, "fepc: error: %s\n", err);
    for (int i = 0; i < n_binds; i++)
        free(binds[i].columns);
    free(binds);
    for (int i = 0; i < n_cols; i++)
        free(cols[i]);
    free(cols);
    free(rows);
    optim_free(o);
    session_free(s);
    tensor_set_free(&params);
    csv_free(&csv);
    return rc;
}
