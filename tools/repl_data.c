/* repl_data.c — the REPL commands that move tensors through files:
 * :clamp NAME FILE binds a node (or a whole family) from an .npy, .csv or
 * .safetensors file and holds it fixed, with the session's batch size set
 * by the file's leading dimension; :save and :restore write and read the
 * params as safetensors.  A failed command leaves the session as it was. */
#include "repl.h"

#include <stdlib.h>
#include <string.h>

/* The tensors NAME denotes: itself, or every element of family NAME. */
static int targets_of(const Model *m, const char *name, int *out)
{
    int t = ir_model_find_tensor(m, name), n = 0;
    if (t >= 0) {
        out[n++] = t;
        return n;
    }
    for (int k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].family && !strcmp(m->tensors[k].family, name))
            out[n++] = k;
    return n;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* A CSV table's columns NAME (one value, or class indices) or NAME[i] as
 * a [rows, numel] (or [rows]) tensor. */
static bool csv_tensor(const char *path, const char *name, int64_t numel, HostTensor *out, char *err, size_t errlen)
{
    CsvTable tab = {0};
    if (!csv_load(path, &tab, err, errlen))
        return false;
    int whole = csv_column(&tab, name);
    int64_t width = whole >= 0 ? 1 : numel;
    int64_t dims[2] = {tab.n_rows, width};
    bool ok = host_tensor_init(out, name, DT_F64, whole >= 0 ? 1 : 2, dims, err, errlen);
    double *dst = ok ? out->data : NULL;
    for (int64_t j = 0; ok && j < width; j++) {
        char col[300];
        snprintf(col, sizeof col, "%s[%lld]", name, (long long)j);
        int c = whole >= 0 ? whole : csv_column(&tab, col);
        if (c < 0) {
            snprintf(err, errlen, "%s: no column '%s'", path, numel == 1 ? name : col);
            ok = false;
            break;
        }
        for (int64_t i = 0; i < tab.n_rows; i++)
            dst[i * width + j] = tab.values[i * tab.n_columns + c];
    }
    if (!ok)
        host_tensor_free(out);
    csv_free(&tab);
    return ok;
}

/* Reads NAME's data from an .npy, .csv or .safetensors file as a tensor
 * named NAME with a leading batch dimension. */
static bool read_node_data(const char *path, const char *name, const Shape *per, int count, HostTensor *out,
                           char *err, size_t errlen)
{
    bool ok;
    if (ends_with(path, ".npy")) {
        ok = npy_load(path, out, err, errlen);
    } else if (ends_with(path, ".csv")) {
        ok = csv_tensor(path, name, ir_numel(per) * count, out, err, errlen);
    } else if (ends_with(path, ".safetensors")) {
        TensorSet set = {0};
        ok = st_load(path, &set, err, errlen);
        HostTensor *h = ok ? tensor_set_find(&set, name) : NULL;
        if (ok && !h && set.n_tensors == 1)
            h = &set.tensors[0];
        if (ok && !h)
            snprintf(err, errlen, "%s: no tensor named '%s'", path, name);
        if (h) {
            *out = *h;
            memset(h, 0, sizeof *h);
        }
        ok = h != NULL;
        tensor_set_free(&set);
    } else {
        snprintf(err, errlen, "%s: unknown data file type (expected .npy, .csv or .safetensors)", path);
        return false;
    }
    if (!ok)
        return false;
    free(out->name);
    out->name = xstrdup(name);
    /* exactly one sample's shape: add the batch dimension */
    bool one = count == 1 && out->rank == per->rank && out->rank < TENSOR_MAX_RANK;
    for (int i = 0; one && i < per->rank; i++)
        one = out->dims[i] == per->dims[i];
    if (one) {
        memmove(out->dims + 1, out->dims, sizeof *out->dims * (size_t)out->rank);
        out->dims[0] = 1;
        out->rank++;
    }
    if (out->rank < 1 || out->dims[0] < 1 || out->dims[0] > INT32_MAX) {
        char sh[64];
        snprintf(err, errlen, "%s: data of shape %s has no batch dimension", path,
                 host_tensor_shape_str(out, sh, sizeof sh));
        host_tensor_free(out);
        return false;
    }
    return true;
}

/* Clamps targets[0..n) and binds h to them: in the current session, or in
 * a new one when the batch or the clamp set changes.  The current session
 * is untouched on failure. */
static bool clamp_into(Repl *r, const int *targets, int n, HostTensor *h, const char *path)
{
    const Model *m = r->c->model;
    bool *clamped = xmalloc((size_t)m->n_tensors + 1);
    memcpy(clamped, r->s->clamped, (size_t)m->n_tensors);
    for (int i = 0; i < n; i++)
        clamped[targets[i]] = true;
    int batch = (int)h->dims[0];
    bool same = batch == r->s->st.batch && !memcmp(clamped, r->s->clamped, (size_t)ir_declared_tensors(m));
    Session *s = same ? r->s : repl_make_session(r, batch, clamped);
    free(clamped);
    if (!s)
        return false;
    char err[512];
    TensorSet set = {.tensors = h, .n_tensors = 1, .cap_tensors = 1};
    if (!session_bind_batch(s, &set, err, sizeof err)) {
        fprintf(stderr, "error: %s (in %s)\n", err, path);
        if (s != r->s)
            session_free(s);
        return false;
    }
    if (s != r->s) {
        if (r->s->st.batch > 1 && batch != r->s->st.batch)
            printf("note: the batch is now %d (was %d); other per-sample values start afresh\n", batch,
                   r->s->st.batch);
        repl_use_session(r, s);
    }
    return true;
}

bool repl_cmd_clamp(Repl *r, Args *a)
{
    size_t ns, ne, fs, fe;
    if (!args_need(r, a, "a node name", &ns, &ne))
        return true;
    if (!args_rest(a, &fs, &fe)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected a data file (:clamp NAME FILE)");
        return true;
    }
    const Model *m = r->c->model;
    char *name = args_dup(a->l, ns, ne), *path = args_dup(a->l, fs, fe), err[512];
    int *targets = xmalloc(sizeof *targets * (size_t)(m->n_tensors + 1));
    int n = targets_of(m, name, targets);
    HostTensor h = {0};
    if (n == 0)
        repl_error_at(r, a->l, ns, ne, "no node named '%s'", name);
    else if (!ir_is_value_role(m->tensors[targets[0]].role))
        repl_error_at(r, a->l, ns, ne, "'%s' is a %s; :clamp takes an input, latent or observed node", name,
                      ir_role_name(m->tensors[targets[0]].role));
    else if (!read_node_data(path, name, ir_shape(&m->g, m->tensors[targets[0]].shape), n, &h, err, sizeof err))
        fprintf(stderr, "error: %s\n", err);
    else if (clamp_into(r, targets, n, &h, path))
        printf("clamped %s to %s (batch %d)\n", name, path, r->s->st.batch);
    host_tensor_free(&h);
    free(targets);
    free(name);
    free(path);
    return true;
}

static int count_params(const Model *m)
{
    int n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        n += m->tensors[t].role == ROLE_PARAM;
    return n;
}

bool repl_cmd_save(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_rest(a, &s, &e)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected a file name (:save FILE)");
        return true;
    }
    char *path = args_dup(a->l, s, e), err[512];
    const char *meta[] = {"model", r->c->model->name};
    if (save_params(r->s, path, meta, 1, err, sizeof err))
        printf("saved %d params to %s\n", count_params(r->c->model), path);
    else
        fprintf(stderr, "error: %s\n", err);
    free(path);
    return true;
}

bool repl_cmd_restore(Repl *r, Args *a)
{
    size_t s, e;
    if (!args_rest(a, &s, &e)) {
        repl_error_at(r, a->l, a->l->len, a->l->len, "expected a file name (:restore FILE)");
        return true;
    }
    char *path = args_dup(a->l, s, e), err[512];
    TensorSet set = {0};
    if (!st_load(path, &set, err, sizeof err) || !session_bind_params(r->s, &set, path, err, sizeof err))
        fprintf(stderr, "error: %s\n", err);
    else
        printf("restored %d tensors from %s\n", set.n_tensors, path);
    tensor_set_free(&set);
    free(path);
    return true;
}
