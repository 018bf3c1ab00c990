/* optim.c — parameter optimizers over a session's param and grad buffers.
 *
 * Gradients are ∂F/∂θ with F summed over the batch (SPEC §2).  The state
 * (Adam's moments, SGD's momentum) has the session's element type and the
 * arithmetic is done in it, as PyTorch does for its parameters; the update
 * formulas are PyTorch's (Adam: θ −= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ)
 * + eps)).  Gradient clamping, when on, bounds each entry before the
 * optimizer sees it (the thesis clamps updates to ±50).  Every element is
 * updated on its own, so a step runs on the engine's team, one contiguous
 * share of the params laid end to end per thread (the same thread tends to
 * get the same share, whose state then stays in its cache), and the result
 * does not depend on the thread count. */
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
    o->f64 = s->st.f64;
    o->clip = clip;
    o->lr_scale = 1;
    o->param_buf = xcalloc((size_t)m->n_tensors + 1, sizeof *o->param_buf);
    o->grad_buf = xcalloc((size_t)m->n_tensors + 1, sizeof *o->grad_buf);
    o->len = xcalloc((size_t)m->n_tensors + 1, sizeof *o->len);
    o->m = xcalloc((size_t)m->n_tensors + 1, sizeof *o->m);
    o->v = xcalloc((size_t)m->n_tensors + 1, sizeof *o->v);
    size_t elem = o->f64 ? sizeof(double) : sizeof(float);
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
        o->len[o->n_params] = n;
        o->m[o->n_params] = xcalloc((size_t)n + 1, elem);
        o->v[o->n_params] = xcalloc((size_t)n + 1, elem);
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
    free(o->len);
    free(o->param_buf);
    free(o->grad_buf);
    free(o);
}

/* The constants of one step, shared by every element. */
typedef struct Rule {
    bool sgd, nesterov;
    double lr, momentum, clip;
    double b1, b2, eps;
    double step_size;         /* Adam: lr / (1 − β1ᵗ) */
    double bias2_sqrt;        /* Adam: √(1 − β2ᵗ) */
    double decay_in_grad;     /* SGD's and Adam's L2 term, added to the gradient */
    double decoupled;         /* AdamW's lr · weight decay, applied to θ */
} Rule;

/* update_f32 / update_f64: n elements of θ from their gradients, the state
 * m (moment or momentum) and v in place. */
#define DEFINE_UPDATE(name, T)                                                                          \
    static void name(const Rule *r, int64_t n, T *restrict theta, const T *restrict grad, T *restrict m, \
                     T *restrict v)                                                                     \
    {                                                                                                   \
        const T lr = (T)r->lr, mom = (T)r->momentum, clip = (T)r->clip, l2 = (T)r->decay_in_grad;       \
        const T b1 = (T)r->b1, b2 = (T)r->b2, eps = (T)r->eps, step = (T)r->step_size;                  \
        const T bias2_sqrt = (T)r->bias2_sqrt, keep = (T)(1 - r->decoupled);                            \
        const bool clipped = r->clip > 0, heavy = r->momentum > 0, nesterov = r->nesterov;              \
        if (r->sgd) {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                           \
                T g = clipped ? (grad[i] > clip ? clip : grad[i] < -clip ? -clip : grad[i]) : grad[i];  \
                g += l2 * theta[i];                                                                     \
                m[i] = mom * m[i] + g;                                                                  \
                theta[i] -= lr * (heavy ? (nesterov ? g + mom * m[i] : m[i]) : g);                      \
            }                                                                                           \
            return;                                                                                     \
        }                                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                               \
            T g = clipped ? (grad[i] > clip ? clip : grad[i] < -clip ? -clip : grad[i]) : grad[i];      \
            g += l2 * theta[i];                                                                         \
            m[i] = b1 * m[i] + (1 - b1) * g;                                                            \
            v[i] = b2 * v[i] + (1 - b2) * g * g;                                                        \
            theta[i] = keep * theta[i] - step * m[i] / (sqrtf_or_sqrt(v[i]) / bias2_sqrt + eps);        \
        }                                                                                               \
    }

#define sqrtf_or_sqrt(x) _Generic((x), float: sqrtf, default: sqrt)(x)
DEFINE_UPDATE(update_f32, float)
DEFINE_UPDATE(update_f64, double)
#undef sqrtf_or_sqrt

typedef struct StepWork {
    const Optimizer *o;
    Session *s;
    Rule rule;
    int64_t total;        /* elements of all params */
    int n_shares;
} StepWork;

/* Elements [lo, hi) of the params laid end to end. */
static void update_range(const StepWork *w, int64_t lo, int64_t hi)
{
    const Optimizer *o = w->o;
    int64_t start = 0;
    for (int p = 0; p < o->n_params && start < hi; start += o->len[p], p++) {
        int64_t a = lo > start ? lo - start : 0, b = hi - start < o->len[p] ? hi - start : o->len[p];
        if (a >= b)
            continue;
        void *theta = w->s->st.data[o->param_buf[p]];
        const void *grad = w->s->st.data[o->grad_buf[p]];
        if (o->f64)
            update_f64(&w->rule, b - a, (double *)theta + a, (const double *)grad + a, (double *)o->m[p] + a,
                       (double *)o->v[p] + a);
        else
            update_f32(&w->rule, b - a, (float *)theta + a, (const float *)grad + a, (float *)o->m[p] + a,
                       (float *)o->v[p] + a);
    }
}

/* Task k of n: the k-th of n equal contiguous shares. */
static void step_share(void *arg, int k)
{
    const StepWork *w = arg;
    update_range(w, w->total * k / w->n_shares, w->total * (k + 1) / w->n_shares);
}

void optim_step(Optimizer *o, Session *s)
{
    const TrainConfig *c = &o->cfg;
    o->steps++;
    double lr = c->lr * o->lr_scale;
    StepWork w = {o, s, {.sgd = c->optimizer == OPT_SGD, .nesterov = c->nesterov, .lr = lr,
                         .momentum = c->opt_momentum, .clip = o->clip, .b1 = c->beta1, .b2 = c->beta2, .eps = c->eps,
                         .decay_in_grad = c->optimizer == OPT_ADAMW ? 0 : c->weight_decay,
                         .decoupled = c->optimizer == OPT_ADAMW ? lr * c->weight_decay : 0}};
    if (!w.rule.sgd) {
        w.rule.step_size = lr / (1 - pow(c->beta1, (double)o->steps));
        w.rule.bias2_sqrt = sqrt(1 - pow(c->beta2, (double)o->steps));
    }
    for (int p = 0; p < o->n_params; p++)
        w.total += o->len[p];
    w.n_shares = team_size(s->engine.team);
    team_run(s->engine.team, w.n_shares, step_share, &w);
    session_leaves_changed();
}
