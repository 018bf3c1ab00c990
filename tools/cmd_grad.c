/* cmd_grad.c — `fepc grad`: one relaxation and the parameter gradients on
 * one batch, with no parameter update (SPEC §7).
 *
 * Output (safetensors, written atomically): value.NODE for every latent and
 * observed node (relaxed values), error.NODE (precision-weighted errors),
 * grad.PARAM (∂F/∂θ summed over the batch) and energy (F summed over the
 * batch, the quantity the gradients differentiate). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static bool add_buffer(TensorSet *out, const Session *s, int buf, const char *name, bool f64, char *err,
                       size_t errlen)
{
    const Model *m = s->model;
    const Buffer *b = &m->buffers[buf];
    const Shape *shape = ir_shape(&m->g, b->shape);
    int64_t dims[TENSOR_MAX_RANK];
    int rank = 0;
    if (b->batched)
        dims[rank++] = s->st.batch;
    for (int i = 0; i < shape->rank; i++)
        dims[rank++] = shape->dims[i];
    HostTensor *t = tensor_set_add(out, name, f64 ? DT_F64 : DT_F32, rank, dims);
    if (!t) {
        snprintf(err, errlen, "cannot add tensor '%s' to the output", name);
        return false;
    }
    double *values = xmalloc(sizeof *values * (size_t)(session_buffer_len(s, buf) + 1));
    session_get(s, buf, values);
    bool ok = host_tensor_from_f64(t, values, err, errlen);
    free(values);
    return ok;
}

static bool collect_outputs(const Session *s, bool f64, TensorSet *out, char *err, size_t errlen)
{
    const Model *m = s->model;
    char name[300];
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_LATENT && tensor->role != ROLE_OBSERVED)
            continue;
        snprintf(name, sizeof name, "value.%s", tensor->name);
        if (!add_buffer(out, s, tensor->buf, name, f64, err, errlen))
            return false;
    }
    for (int b = 0; b < m->n_buffers; b++) {
        const Buffer *buf = &m->buffers[b];
        if ((buf->kind == BUF_ERROR || buf->kind == BUF_GRAD) && !add_buffer(out, s, b, buf->name, f64, err, errlen))
            return false;
    }
    int64_t none[1] = {0};
    HostTensor *e = tensor_set_add(out, "energy", f64 ? DT_F64 : DT_F32, 0, none);
    double total = session_energy(s) * s->st.batch;
    return e && host_tensor_from_f64(e, &total, err, errlen);
}

static int fail(const char *msg)
{
    fprintf(stderr, "fepc: error: %s\n", msg);
    return 1;
}

int cmd_grad(const Options *opt)
{
    if (!opt->batch_path || !opt->out_path) {
        fprintf(stderr, "fepc: grad needs --batch B.safetensors and --out G.safetensors\n");
        return 2;
    }
    char err[512];
    Cli cli;
    if (!cli_open(&cli, opt)) {
        cli_close(&cli);
        return 1;
    }
    Model *m = cli.c.model;
    TensorSet batch = {0}, params = {0}, out = {0};
    Session *s = NULL;
    int rc = 1;
    if (!st_load(opt->batch_path, &batch, err, sizeof err)) {
        fail(err);
        goto done;
    }
    int b = batch_size_of(&batch);
    if (b <= 0) {
        snprintf(err, sizeof err, "%s: no tensor with a batch dimension", opt->batch_path);
        fail(err);
        goto done;
    }
    if (m->n_externs && !ir_resolve_externs(m, err, sizeof err)) {
        fail(err);
        goto done;
    }
    s = session_new(&cli.c.diag, m, &m->train, b, opt->f64, true, cli.engine, err, sizeof err);
    if (!s) {
        fail(err);
        goto done;
    }
    if (opt->params_path && (!st_load(opt->params_path, &params, err, sizeof err) ||
                             !session_bind_params(s, &params, opt->params_path, err, sizeof err))) {
        fail(err);
        goto done;
    }
    if (!session_bind_batch(s, &batch, err, sizeof err)) {
        snprintf(err + strlen(err), sizeof err - strlen(err), " (in %s)", opt->batch_path);
        fail(err);
        goto done;
    }
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].role == ROLE_INPUT || m->tensors[t].role == ROLE_OBSERVED) {
            if (!tensor_set_find(&batch, m->tensors[t].name) &&
                !(m->tensors[t].family && tensor_set_find(&batch, m->tensors[t].family))) {
                snprintf(err, sizeof err, "%s: missing tensor '%s' (%s node of the model)", opt->batch_path,
                         m->tensors[t].name, ir_role_name(m->tensors[t].role));
                fail(err);
                goto done;
            }
        }
    if (session_relax(s, m->train.steps, m->train.step_size, NULL) < 0 || !session_param_grads(s)) {
        fail(s->error);
        goto done;
    }
    if (!collect_outputs(s, opt->f64, &out, err, sizeof err) || !st_save(opt->out_path, &out, err, sizeof err)) {
        fail(err);
        goto done;
    }
    rc = 0;
done:
    session_free(s);
    tensor_set_free(&batch);
    tensor_set_free(&params);
    tensor_set_free(&out);
    cli_close(&cli);
    return rc;
}
