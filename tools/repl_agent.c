/* repl_agent.c — the REPL's commands for discrete agents, one step of the
 * perception–action cycle at a time:
 *   :reset            start an episode (beliefs back to the priors)
 *   :observe V ..     one value per outcome (index or 0-based number): infer
 *                     and plan; prints the beliefs, G and q(π) per policy and
 *                     the action marginals
 *   :act [U ..]       choose the action (the agent's rule, or the values
 *                     given, one per control) and predict the next prior
 * and `:learn` adds the step's Dirichlet counts.  Every agent of the batch
 * gets the same observation. */
#include "repl.h"

#include <stdlib.h>
#include <string.h>

#include "../runtime/agent.h"

static AgentSession *agent_of(Repl *r)
{
    if (!r->s->model->agent) {
        fprintf(stderr, "error: model %s is not an agent (no hidden/outcome declarations)\n", r->s->model->name);
        return NULL;
    }
    if (!r->agent || r->agent->s != r->s) {
        agent_session_free(r->agent);
        r->agent = agent_session_over(r->s, false);
        if (!agent_reset(r->agent)) {
            fprintf(stderr, "error: %s\n", r->s->error);
            return NULL;
        }
    }
    return r->agent;
}

/* Reads up to n integers from the rest of the line; how many, or -1
 * after an error. */
static int read_values(Repl *r, Args *a, int *out, int n, const char *what)
{
    int k = 0;
    size_t s, e;
    while (args_word(a, &s, &e)) {
        char *word = args_dup(a->l, s, e), *end;
        long v = strtol(word, &end, 10);
        bool bad = *end || end == word;
        free(word);
        if (bad || k == n) {
            repl_error_at(r, a->l, s, e, bad ? "expected a value index (an integer)" : "too many values: %s", what);
            return -1;
        }
        out[k++] = (int)v;
    }
    return k;
}

/* "(3, 1)": policy p's actions, first step first. */
static void policy_label(const Agent *a, int64_t p, char *buf, size_t len)
{
    int64_t steps[64];
    for (int h = a->cfg.horizon - 1; h >= 0; h--) {
        steps[h] = p % a->n_actions;
        p /= a->n_actions;
    }
    snprintf(buf, len, "(");
    for (int h = 0; h < a->cfg.horizon; h++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%lld", h ? ", " : "", (long long)steps[h]);
    snprintf(buf + strlen(buf), len - strlen(buf), ")");
}

static void print_buffer(AgentSession *as, const char *name, int64_t width)
{
    double *v = xmalloc(sizeof *v * (size_t)(width + 1));
    agent_read(as, name, v, width);   /* agent 0 */
    printf("  %-12s", name);
    for (int64_t i = 0; i < width; i++)
        printf(" %.4f", v[i]);
    printf("\n");
    free(v);
}

/* The best policies (all when few), with G, its terms and q(π), for agent 0. */
static void print_policies(AgentSession *as)
{
    const Agent *a = as->a;
    int64_t n = a->n_policies, B = as->batch;
    double *G = xmalloc(sizeof *G * (size_t)(n * B)), *q = xmalloc(sizeof *q * (size_t)(n * B));
    double *terms[5] = {NULL};
    static const char *const names[] = {"G.risk", "G.ambiguity", "G.utility", "G.info_gain", "G.novelty"};
    agent_read(as, "G", G, n * B);
    agent_read(as, "q_pi", q, n * B);
    for (int k = 0; k < 5; k++)
        if (a->term_buf[k] >= 0) {
            terms[k] = xmalloc(sizeof *terms[k] * (size_t)(n * B));
            agent_read(as, names[k], terms[k], n * B);
        }
    int64_t *order = xmalloc(sizeof *order * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = 1; i < n; i++)   /* insertion sort by G: n is at most a few thousand here */
        for (int64_t j = i; j > 0 && G[order[j]] < G[order[j - 1]]; j--) {
            int64_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int64_t shown = n <= 32 ? n : 10;
    printf("  %s policies by G%s:\n  %-16s %10s %10s", n <= 32 ? "all" : "the best", n <= 32 ? "" : " (of many)",
           "policy", "G", "q(π)");
    for (int k = 0; k < 5; k++)
        if (terms[k])
            printf(" %11s", names[k] + 2);
    printf("\n");
    for (int64_t i = 0; i < shown && n <= 100000; i++) {
        char label[256];
        policy_label(a, order[i], label, sizeof label);
        printf("  %-16s %10.4f %10.4f", label, G[order[i]], q[order[i]]);
        for (int k = 0; k < 5; k++)
            if (terms[k])
                printf(" %11.4f", terms[k][order[i]]);
        printf("\n");
    }
    for (int k = 0; k < 5; k++)
        free(terms[k]);
    free(order);
    free(G);
    free(q);
}

bool repl_cmd_reset(Repl *r, Args *a)
{
    AgentSession *as;
    if (!args_end(r, a) || !(as = agent_of(r)))
        return true;
    if (!agent_reset(as))
        fprintf(stderr, "error: %s\n", r->s->error);
    else
        printf("episode started: beliefs are the priors\n");
    return true;
}

bool repl_cmd_observe(Repl *r, Args *a)
{
    AgentSession *as = agent_of(r);
    if (!as)
        return true;
    const Agent *ag = as->a;
    int values[64];
    int k = read_values(r, a, values, ag->n_outcomes, "one per outcome");
    if (k < 0)
        return true;
    if (k != ag->n_outcomes) {
        fprintf(stderr, "error: :observe takes one value per outcome (%d:", ag->n_outcomes);
        for (int o = 0; o < ag->n_outcomes; o++)
            fprintf(stderr, " %s", ag->outcomes[o].name);
        fprintf(stderr, "), got %d\n", k);
        return true;
    }
    int *obs = xmalloc(sizeof *obs * (size_t)(as->batch * ag->n_outcomes));
    for (int b = 0; b < as->batch; b++)
        memcpy(obs + b * ag->n_outcomes, values, sizeof *values * (size_t)ag->n_outcomes);
    char err[256];
    bool ok = agent_observe(as, obs, err, sizeof err);
    free(obs);
    if (!ok) {
        fprintf(stderr, "error: %s\n", err);
        return true;
    }
    if (!agent_infer(as) || !agent_plan(as)) {
        fprintf(stderr, "error: %s\n", r->s->error);
        return true;
    }
    printf("step %d (agent 0 of %d):\n", as->t, as->batch);
    for (int f = 0; f < ag->n_factors; f++)
        print_buffer(as, r->s->model->buffers[ag->factors[f].q_buf].name, ag->factors[f].size);
    for (int c = 0; c < ag->n_controls; c++)
        print_buffer(as, r->s->model->buffers[ag->controls[c].marginal_buf].name, ag->controls[c].size);
    print_policies(as);
    return true;
}

bool repl_cmd_act(Repl *r, Args *a)
{
    AgentSession *as = agent_of(r);
    if (!as)
        return true;
    const Agent *ag = as->a;
    int values[AGENT_MAX_CONTROLS];
    int k = read_values(r, a, values, ag->n_controls, "one per control");
    if (k < 0)
        return true;
    if (k && k != ag->n_controls) {
        fprintf(stderr, "error: :act takes no values (the agent chooses) or one per control (%d), got %d\n",
                ag->n_controls, k);
        return true;
    }
    int *act = xmalloc(sizeof *act * (size_t)(as->batch * (ag->n_controls + 1)));
    char err[512];
    bool ok = true;
    if (k) {
        for (int b = 0; b < as->batch; b++)
            memcpy(act + b * ag->n_controls, values, sizeof *values * (size_t)ag->n_controls);
        ok = agent_set_action(as, act, err, sizeof err);
    } else {
        agent_select(as, act);
    }
    if (ok && !agent_predict(as)) {
        snprintf(err, sizeof err, "%s", r->s->error);
        ok = false;
    }
    if (!ok)
        fprintf(stderr, "error: %s\n", err);
    else
        for (int c = 0; c < ag->n_controls; c++)
            printf("%s = %d%s\n", ag->controls[c].name, act[c], k ? "" : " (chosen)");
    free(act);
    return true;
}

bool repl_agent_learn(Repl *r)
{
    AgentSession *as = agent_of(r);
    if (!as)
        return true;
    bool any = false;
    for (int t = 0; t < r->s->model->n_tensors; t++)
        any |= r->s->model->tensors[t].counts;
    if (!any)
        printf("model %s has no counts to learn\n", r->s->model->name);
    else if (!agent_learn(as))
        fprintf(stderr, "error: %s\n", r->s->error);
    else
        printf("counts updated (lr %g)\n", as->a->cfg.lr);
    return true;
}
