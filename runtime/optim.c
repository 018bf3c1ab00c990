/* optim.c — parameter optimizers over a session's param and grad buffers.
 *
 * Gradients are ∂F/∂θ with F summed over the batch (SPEC §2).  State (the
 * moments) is kept in double whatever the session's dtype.  Gradient
 * clamping, when on, bounds each entry before the optimizer sees it (the
 * thesis clamps updates to ±50). */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Optimizer *optim_new(const Session *s, const TrainConfig *cfg, double clip)
{
    const Model *m = s->model;
    Optimizer *o = xcalloc(1, sizeof *o);
    o->cfg = *cfg;
    o->clip = clip;
    o->lr_scale = 1;
    o->param_buf = xcalloc((size_t)m->n_tensors + 1, sizeof *o->param_buf);
    o->grad_buf = xcalloc((size_t)m->n_tensors + 1, sizeof *o->grad_buf);
    o->m = xcalloc((size_t)m->n_tensors + 1, sizeof *o->m);
    o->v = xcalloc((size_t)m->n_tensors + 1, sizeof *o->v);
    char name[300];
    for (int t = 0; t < m->n_tensors; t++) {
        if (m->tensors[t].role != ROLE_PARAM)
            continue;
        snprintf(name, sizeof name, "grad.%s", m->tensors[t].name);
        int grad = ir_model_find_buffer(m, name);
        if (grad < 0)
            continue;
        int64_t n = session_buffer_len(s, m->tensors[t].buf);
        o->param_buf[o->n_params] = m->tensors[t].buf;
        o->grad_buf[o->n_params] = grad;
        o->m[o->n_params] = xcalloc((size_t)n + 1, sizeof(double));
        o->v[o->n_params] = xcalloc((size_t)n + 1, sizeof(double));
        o->n_params++;
    }
    return o;
}

void optim_free(Optimizer *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n_params; i++) {
        free(o->m[i]);
        free(o->v[i]);
    }
    free(o->m);
    free(o->v);
    free(o->param_buf);
    free(o->grad_buf);
    free(o);
}

/* One parameter tensor's update, in double state over theta and g copied
 * from the session's storage (so the loop vectorises for either dtype). */
static void update(const TrainConfig *c, double lr, double bias1, double bias2, double clip, int64_t n, double *theta,
                   double *g, double *m, double *v)
{
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        if (clip > 0)
            gi = gi > clip ? clip : gi < -clip ? -clip : gi;
        if (c->optimizer == OPT_SGD) {
            gi += c->weight_decay * theta[i];
            m[i] = c->opt_momentum * m[i] + gi;
            double step = c->opt_momentum > 0 ? (c->nesterov ? gi + c->opt_momentum * m[i] : m[i]) : gi;
            theta[i] -= lr * step;
        } else {
            if (c->optimizer == OPT_ADAM)
                gi += c->weight_decay * theta[i];
            m[i] = c->beta1 * m[i] + (1 - c->beta1) * gi;
            v[i] = c->beta2 * v[i] + (1 - c->beta2) * gi * gi;
            if (c->optimizer == OPT_ADAMW)
                theta[i] -= lr * c->weight_decay * theta[i];
            theta[i] -= lr * (m[i] / bias1) / (sqrt(v[i] / bias2) + c->eps);
        }
    }
}

void optim_step(Optimizer *o, Session *s)
{
    const TrainConfig *c = &o->cfg;
    o->steps++;
    double lr = c->lr * o->lr_scale;
    double bias1 = 1 - pow(c->beta1, (double)o->steps), bias2 = 1 - pow(c->beta2, (double)o->steps);
    for (int p = 0; p < o->n_params; p++) {
        int64_t n = session_buffer_len(s, o->param_buf[p]);
        double *theta = xmalloc(sizeof *theta * (size_t)n), *g = xmalloc(sizeof *g * (size_t)n);
        session_get(s, o->param_buf[p], theta);
        session_get(s, o->grad_buf[p], g);
        update(c, lr, bias1, bias2, o->clip, n, theta, g, o->m[p], o->v[p]);
        session_set(s, o->param_buf[p], theta);
        free(theta);
        free(g);
    }
}
