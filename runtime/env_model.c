/* env_model.c — `--env model`: the generative process written in the
 * agent's own file.  Each episode draws the hidden state from the process
 * priors (process_prior, else prior), each step draws the outcomes from the
 * process likelihoods and the next state from the process transitions
 * given the action.  The agent itself only ever sees the outcomes.  A
 * table the agent learns (counts) says nothing about the truth, so such a
 * factor or outcome needs its process table written out.
 * Reward: the sum of the preferences of the observed outcome values. */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

static double *values(const Model *m, int t)
{
    const Tensor *tensor = &m->tensors[t];
    const Shape *s = ir_shape(&m->g, tensor->shape);
    int64_t n = ir_numel(s);
    double *v = xcalloc((size_t)n + 1, sizeof *v);
    Rng unused;
    rng_seed(&unused, 0);
    init_fill(&tensor->init, s, &unused, v);
    return v;
}

/* Draws an index from column `col` of a table whose distribution runs
 * along an axis of `len` entries spaced `stride` apart. */
static int draw(Rng *rng, const double *table, int64_t col, int len, int64_t stride)
{
    double r = rng_uniform(rng), acc = 0;
    for (int i = 0; i < len; i++) {
        acc += table[col + i * stride];
        if (r < acc)
            return i;
    }
    return len - 1;
}

typedef struct ModelEnv {
    const Agent *a;
    double *prior[AGENT_MAX_FACTORS], *trans[AGENT_MAX_FACTORS], *lik[16], *pref[16];
    int state[AGENT_MAX_FACTORS];
} ModelEnv;

static void model_free(void *st)
{
    ModelEnv *e = st;
    for (int i = 0; i < AGENT_MAX_FACTORS; i++) {
        free(e->prior[i]);
        free(e->trans[i]);
    }
    for (int i = 0; i < 16; i++) {
        free(e->lik[i]);
        free(e->pref[i]);
    }
    free(e);
}

static void *create(const char *options, const Model *m, EnvInfo *info, char *err, size_t errlen)
{
    static const char *const keys[] = {NULL};
    if (!env_option_keys(options, keys, "model", err, errlen))
        return NULL;
    const Agent *a = m ? m->agent : NULL;
    if (!a) {
        snprintf(err, errlen, "the model declares no POMDP to use as the generative process");
        return NULL;
    }
    if (a->n_outcomes > 16) {
        snprintf(err, errlen, "at most 16 outcomes");
        return NULL;
    }
    for (int f = 0; f < a->n_factors; f++) {
        const AgentFactor *fa = &a->factors[f];
        const char *which = m->tensors[fa->process_prior].counts ? "prior"
                            : fa->process_transition >= 0 && m->tensors[fa->process_transition].counts ? "transition" : NULL;
        if (which) {
            snprintf(err, errlen, "hidden factor '%s' learns its %s from counts: give the process its true table "
                     "(process_%s = ...)", fa->name, which, which);
            return NULL;
        }
    }
    for (int o = 0; o < a->n_outcomes; o++)
        if (m->tensors[a->outcomes[o].process_likelihood].counts) {
            snprintf(err, errlen, "outcome '%s' learns its likelihood from counts: give the process its true table "
                     "(process_likelihood = ...)", a->outcomes[o].name);
            return NULL;
        }
    ModelEnv *e = xcalloc(1, sizeof *e);
    e->a = a;
    *info = (EnvInfo){.n_obs = a->n_outcomes, .n_act = a->n_controls};
    for (int f = 0; f < a->n_factors; f++) {
        e->prior[f] = values(m, a->factors[f].process_prior);
        if (a->factors[f].process_transition >= 0)
            e->trans[f] = values(m, a->factors[f].process_transition);
    }
    for (int o = 0; o < a->n_outcomes; o++) {
        e->lik[o] = values(m, a->outcomes[o].process_likelihood);
        if (a->outcomes[o].preference >= 0)
            e->pref[o] = values(m, a->outcomes[o].preference);
        info->obs_levels[o] = a->outcomes[o].size;
        info->obs_names[o] = a->outcomes[o].name;
    }
    for (int c = 0; c < a->n_controls; c++) {
        info->act_levels[c] = a->controls[c].size;
        info->act_names[c] = a->controls[c].name;
    }
    return e;
}

static void observe(ModelEnv *e, Rng *rng, double *obs, double *reward)
{
    const Agent *a = e->a;
    double total = 0;
    for (int o = 0; o < a->n_outcomes; o++) {
        const AgentOutcome *out = &a->outcomes[o];
        int64_t col = 0, cols = 1;
        for (int k = 0; k < out->n_factors; k++) {
            int size = a->factors[out->factors[k]].size;
            col = col * size + e->state[out->factors[k]];
            cols *= size;
        }
        int v = draw(rng, e->lik[o], col, out->size, cols);
        obs[o] = v;
        if (e->pref[o])
            total += e->pref[o][v];
    }
    if (reward)
        *reward = total;
}

static void reset(void *st, Rng *rng, double *obs)
{
    ModelEnv *e = st;
    for (int f = 0; f < e->a->n_factors; f++)
        e->state[f] = draw(rng, e->prior[f], 0, e->a->factors[f].size, 1);
    observe(e, rng, obs, NULL);
}

static bool step(void *st, Rng *rng, const double *act, double *obs, double *reward)
{
    ModelEnv *e = st;
    const Agent *a = e->a;
    for (int f = 0; f < a->n_factors; f++) {
        const AgentFactor *fa = &a->factors[f];
        if (!e->trans[f])
            continue;
        int S = fa->size;
        int64_t base = fa->control >= 0 ? (int64_t)act[fa->control] * S * S : 0;   /* B[u, s', s] or B[s', s] */
        e->state[f] = draw(rng, e->trans[f], base + e->state[f], S, S);
    }
    observe(e, rng, obs, reward);
    return false;
}

const EnvClass env_model = {"model", "the generative process of the agent's own file (process_* tables)",
                            create, reset, step, model_free};
