/* agent.c — discrete active-inference agents at run time: a Session over
 * the agent program (passes/agent.c) plus the work that is not a tensor
 * contraction: one-hot observations, action selection, and adding the
 * Dirichlet count increments.
 *
 * Invariants: the kernels alone compute beliefs, G, q(π) and marginals;
 * this file only reads their buffers.  Sampling uses the session's own
 * seeded generator, so a run is replayed exactly by its seed. */
#include "agent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

AgentSession *agent_session_over(Session *s, bool owns)
{
    Model *m = s->model;
    AgentSession *as = xcalloc(1, sizeof *as);
    as->s = s;
    as->owns_session = owns;
    as->m = m;
    as->a = m->agent;
    as->batch = s->st.batch;
    rng_seed(&as->rng, m->agent->cfg.seed);
    for (int b = 0; b < m->n_buffers; b++) {
        int64_t n = session_buffer_len(s, b);
        if (n > as->scratch_len)
            as->scratch_len = n;
    }
    as->scratch = xmalloc(sizeof *as->scratch * (size_t)(as->scratch_len + 1));
    return as;
}

AgentSession *agent_session_new(Diag *d, Model *m, int batch, bool f64, Engine engine, char *err, size_t errlen)
{
    if (!m->agent) {
        snprintf(err, errlen, "model '%s' is not an agent: it declares no hidden factors and outcomes", m->name);
        return NULL;
    }
    if (batch < 1) {
        snprintf(err, errlen, "an agent session needs at least one agent, got %d", batch);
        return NULL;
    }
    Session *s = session_new(d, m, &m->train, batch, f64, false, engine, err, errlen);
    return s ? agent_session_over(s, true) : NULL;
}

void agent_session_free(AgentSession *as)
{
    if (!as)
        return;
    if (as->owns_session)
        session_free(as->s);
    free(as->scratch);
    free(as);
}

bool agent_reset(AgentSession *as)
{
    as->t = 0;
    return session_run_phase(as->s, PHASE_AGENT_RESET);
}

/* Writes one-hot rows for value indices idx[b * stride + k]. */
static void set_one_hot(AgentSession *as, int buf, int size, const int *idx, int stride, int k)
{
    double *v = as->scratch;
    memset(v, 0, sizeof *v * (size_t)(as->batch * size));
    for (int b = 0; b < as->batch; b++)
        v[b * size + idx[b * stride + k]] = 1;
    session_set(as->s, buf, v);
}

bool agent_observe(AgentSession *as, const int *obs, char *err, size_t errlen)
{
    const Agent *a = as->a;
    for (int b = 0; b < as->batch; b++)
        for (int o = 0; o < a->n_outcomes; o++) {
            int v = obs[b * a->n_outcomes + o];
            if (v < 0 || v >= a->outcomes[o].size) {
                snprintf(err, errlen, "agent %d: outcome '%s' has %d values (0..%d), got %d", b, a->outcomes[o].name,
                         a->outcomes[o].size, a->outcomes[o].size - 1, v);
                return false;
            }
        }
    for (int o = 0; o < a->n_outcomes; o++)
        set_one_hot(as, a->outcomes[o].obs_buf, a->outcomes[o].size, obs, a->n_outcomes, o);
    return true;
}

bool agent_infer(AgentSession *as) { return session_run_phase(as->s, PHASE_AGENT_INFER); }

bool agent_plan(AgentSession *as) { return session_run_phase(as->s, PHASE_AGENT_PLAN); }

/* The largest entry's index, the first of ties. */
static int argmax(const double *p, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

/* u ~ σ(α ln P): P^α renormalised, in log space so that tiny P cannot
 * underflow to a uniform draw. */
static int sample(Rng *rng, const double *p, int n, double alpha)
{
    double logits[256], mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        logits[i] = alpha * log(p[i] + 1e-16);
        mx = logits[i] > mx ? logits[i] : mx;
    }
    double total = 0;
    for (int i = 0; i < n; i++)
        total += logits[i] = exp(logits[i] - mx);
    double r = rng_uniform(rng) * total;
    for (int i = 0; i < n; i++) {
        if (r < logits[i])
            return i;
        r -= logits[i];
    }
    return n - 1;
}

void agent_select(AgentSession *as, int *act)
{
    const Agent *a = as->a;
    for (int c = 0; c < a->n_controls; c++) {
        const AgentControl *ctl = &a->controls[c];
        session_get(as->s, ctl->marginal_buf, as->scratch);
        for (int b = 0; b < as->batch; b++) {
            const double *p = as->scratch + (int64_t)b * ctl->size;
            act[b * a->n_controls + c] = a->cfg.action == ACTION_ARGMAX || ctl->size > 256
                                             ? argmax(p, ctl->size)
                                             : sample(&as->rng, p, ctl->size, a->cfg.alpha);
        }
    }
    for (int c = 0; c < a->n_controls; c++)
        set_one_hot(as, a->controls[c].taken_buf, a->controls[c].size, act, a->n_controls, c);
}

bool agent_set_action(AgentSession *as, const int *act, char *err, size_t errlen)
{
    const Agent *a = as->a;
    for (int b = 0; b < as->batch; b++)
        for (int c = 0; c < a->n_controls; c++) {
            int v = act[b * a->n_controls + c];
            if (v < 0 || v >= a->controls[c].size) {
                snprintf(err, errlen, "agent %d: control '%s' has %d actions (0..%d), got %d", b, a->controls[c].name,
                         a->controls[c].size, a->controls[c].size - 1, v);
                return false;
            }
        }
    for (int c = 0; c < a->n_controls; c++)
        set_one_hot(as, a->controls[c].taken_buf, a->controls[c].size, act, a->n_controls, c);
    return true;
}

bool agent_predict(AgentSession *as)
{
    if (!session_run_phase(as->s, PHASE_AGENT_PREDICT))
        return false;
    as->t++;
    return true;
}

/* Which count tables take this step's increment. */
static bool learns_now(const AgentSession *as, int tensor)
{
    const Agent *a = as->a;
    for (int o = 0; o < a->n_outcomes; o++)
        if (a->outcomes[o].likelihood == tensor)
            return true;
    for (int f = 0; f < a->n_factors; f++) {
        if (a->factors[f].transition == tensor && as->t > 0)
            return true;
        if (a->factors[f].prior == tensor && as->t == 0)
            return true;
    }
    return false;
}

bool agent_learn(AgentSession *as)
{
    const Agent *a = as->a;
    Model *m = as->m;
    if (a->cfg.lr == 0)
        return true;
    if (!session_run_phase(as->s, PHASE_AGENT_LEARN))
        return false;
    for (int t = 0; t < m->n_tensors; t++) {
        if (a->delta_buf[t] < 0 || !learns_now(as, t))
            continue;
        int64_t n = session_buffer_len(as->s, m->tensors[t].buf);
        double *counts = xmalloc(sizeof *counts * (size_t)(2 * n + 1)), *delta = counts + n;
        session_get(as->s, m->tensors[t].buf, counts);
        session_get(as->s, a->delta_buf[t], delta);
        for (int64_t i = 0; i < n; i++)
            if (counts[i] > 0)
                counts[i] += a->cfg.lr * delta[i];
        session_set(as->s, m->tensors[t].buf, counts);
        free(counts);
    }
    return true;
}

int64_t agent_read(const AgentSession *as, const char *name, double *out, int64_t cap)
{
    int buf = ir_model_find_buffer(as->m, name);
    if (buf < 0)
        return -1;
    int64_t n = session_buffer_len(as->s, buf);
    if (out && n <= cap)
        session_get(as->s, buf, out);
    return n;
}
