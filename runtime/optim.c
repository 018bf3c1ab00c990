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

/* True when the session's program writes buffer b in its gradient phase:
 * a param the rule does not learn (random feedback) has no such write. */
static bool program_writes_grad(const Session *s, int b)
{
    const Phase *ph = &s->program->phases[PHASE_PARAM_GRAD];
    for (int i = 0; i < ph->n_assigns; i++)
        if (ph->assigns[i].dst == b)
            return true;
    return false;
}

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
        if (grad < 0 || !program_writes_grad(s, grad))
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

/* The update of one entry: θ and its gradient g in double, the moments m
 * (or momentum) and v in place.  Returns the new θ. */
static inline double update_one(const TrainConfig *c, double lr, double bias1, double bias2, double clip,
                                double theta, double g, double *m, double *v)
{
    if (clip > 0)
        g = g > clip ? clip : g < -clip ? -clip : g;
    if (c->optimizer == OPT_SGD) {
        g += c->weight_decay * theta;
        *m = c->opt_momentum * *m + g;
        double step = c->opt_momentum > 0 ? (c->nesterov ? g + c->opt_momentum * *m : *m) : g;
        return theta - lr * step;
    }
    if (c->optimizer == OPT_ADAM)
        g += c->weight_decay * theta;
    *m = c->beta1 * *m + (1 - c->beta1) * g;
    *v = c->beta2 * *v + (1 - c->beta2) * g * g;
    if (c->optimizer == OPT_ADAMW)
        theta -= lr * c->weight_decay * theta;
    return theta - lr * (*m / bias1) / (sqrt(*v / bias2) + c->eps);
}

/* Adam / AdamW with the optimizer decision taken outside the loop, so the
 * loop is a straight vector update (one copy per storage type). */
typedef struct AdamStep {
    double lr, b1, b2, eps, bias1, bias2, clip;
    double decay_in_grad;     /* Adam's L2 term, added to the gradient */
    double decoupled;         /* AdamW's lr · weight decay, applied to θ */
} AdamStep;

static inline double adam_one(const AdamStep *a, double th, double g, double *m, double *v)
{
    g = a->clip > 0 ? (g > a->clip ? a->clip : g < -a->clip ? -a->clip : g) : g;
    g += a->decay_in_grad * th;
    *m = a->b1 * *m + (1 - a->b1) * g;
    *v = a->b2 * *v + (1 - a->b2) * g * g;
    th -= a->decoupled * th;
    return th - a->lr * (*m / a->bias1) / (sqrt(*v / a->bias2) + a->eps);
}

static void adam_f32(const AdamStep *a, int64_t n, float *theta, const float *grad, double *m, double *v)
{
    for (int64_t i = 0; i < n; i++)
        theta[i] = (float)adam_one(a, theta[i], grad[i], &m[i], &v[i]);
}

static void adam_f64(const AdamStep *a, int64_t n, double *theta, const double *grad, double *m, double *v)
{
    for (int64_t i = 0; i < n; i++)
        theta[i] = adam_one(a, theta[i], grad[i], &m[i], &v[i]);
}

void optim_step(Optimizer *o, Session *s)
{
    const TrainConfig *c = &o->cfg;
    o->steps++;
    double lr = c->lr * o->lr_scale;
    double bias1 = 1 - pow(c->beta1, (double)o->steps), bias2 = 1 - pow(c->beta2, (double)o->steps);
    for (int p = 0; p < o->n_params; p++) {
        int64_t n = session_buffer_len(s, o->param_buf[p]);
        double *m = o->m[p], *v = o->v[p];
        void *theta = s->st.data[o->param_buf[p]];
        const void *g = s->st.data[o->grad_buf[p]];
        /* In place in the session's own precision: no copies per step. */
        AdamStep a = {lr, c->beta1, c->beta2, c->eps, bias1, bias2, o->clip,
                      c->optimizer == OPT_ADAM ? c->weight_decay : 0, c->optimizer == OPT_ADAMW ? lr * c->weight_decay : 0};
        if (c->optimizer != OPT_SGD && s->st.f64)
            adam_f64(&a, n, theta, g, m, v);
        else if (c->optimizer != OPT_SGD)
            adam_f32(&a, n, theta, g, m, v);
        else if (s->st.f64)
            for (int64_t i = 0; i < n; i++)
                ((double *)theta)[i] = update_one(c, lr, bias1, bias2, o->clip, ((double *)theta)[i],
                                                  ((const double *)g)[i], &m[i], &v[i]);
        else
            for (int64_t i = 0; i < n; i++)
                ((float *)theta)[i] = (float)update_one(c, lr, bias1, bias2, o->clip, ((float *)theta)[i],
                                                        ((const float *)g)[i], &m[i], &v[i]);
    }
}
