/* act.c — the perception–action loop of `fepc act` for discrete agents:
 * per episode and step, the environment's observation → inference →
 * (learning) → planning → action → prediction → the environment's step.
 *
 * Each of opt->agents agents acts in its own copy of the environment
 * (seeded seed + 1000003·agent, so runs replay exactly and agents differ);
 * they share the model's counts when learning.  Per step the log holds the
 * observation, the beliefs, the action marginals, G, q(π) and each term
 * of G for every policy, the action and the environment's reward; per episode the return (the summed reward).
 * Both CSV files are written atomically. */
#include "agent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* The environment must speak the agent's language: one discrete
 * observation per outcome and one discrete action per control, with the
 * same numbers of values. */
static bool check_env(const Agent *a, const Env *e, const char *spec, char *err, size_t errlen)
{
    const EnvInfo *in = &e->info;
    if (in->n_obs != a->n_outcomes || in->n_act != a->n_controls) {
        snprintf(err, errlen, "environment '%s' gives %d observation%s and takes %d action%s, but the agent has %d "
                 "outcome%s and %d control%s", spec, in->n_obs, in->n_obs == 1 ? "" : "s", in->n_act,
                 in->n_act == 1 ? "" : "s", a->n_outcomes, a->n_outcomes == 1 ? "" : "s", a->n_controls,
                 a->n_controls == 1 ? "" : "s");
        return false;
    }
    for (int o = 0; o < a->n_outcomes; o++)
        if (in->obs_levels[o] != a->outcomes[o].size) {
            snprintf(err, errlen, "environment '%s': observation %d takes %d values, but outcome '%s' has %d", spec, o,
                     in->obs_levels[o], a->outcomes[o].name, a->outcomes[o].size);
            return false;
        }
    for (int c = 0; c < a->n_controls; c++)
        if (in->act_levels[c] != a->controls[c].size) {
            snprintf(err, errlen, "environment '%s': action %d takes %d values, but control '%s' has %d", spec, c,
                     in->act_levels[c], a->controls[c].name, a->controls[c].size);
            return false;
        }
    return true;
}

/* The per-step log's header: the columns of every buffer it records. */
typedef struct LogBuf {
    const char *name;
    int buf;
    int64_t width;
} LogBuf;

static int log_buffers(const AgentSession *as, LogBuf *out)
{
    const Agent *a = as->a;
    const Model *m = as->m;
    int n = 0;
    for (int f = 0; f < a->n_factors; f++)
        out[n++] = (LogBuf){m->buffers[a->factors[f].q_buf].name, a->factors[f].q_buf, a->factors[f].size};
    for (int c = 0; c < a->n_controls; c++)
        out[n++] = (LogBuf){m->buffers[a->controls[c].marginal_buf].name, a->controls[c].marginal_buf,
                            a->controls[c].size};
    out[n++] = (LogBuf){"G", a->G_buf, a->n_policies};
    out[n++] = (LogBuf){"q_pi", a->q_pi_buf, a->n_policies};
    for (int k = 0; k < 5; k++)
        if (a->term_buf[k] >= 0)
            out[n++] = (LogBuf){m->buffers[a->term_buf[k]].name, a->term_buf[k], a->n_policies};
    return n;
}

static void write_header(FILE *f, const AgentSession *as, const LogBuf *logs, int n_logs)
{
    const Agent *a = as->a;
    fprintf(f, "episode,agent,t");
    for (int o = 0; o < a->n_outcomes; o++)
        fprintf(f, ",%s", a->outcomes[o].name);
    for (int k = 0; k < n_logs; k++)
        for (int64_t i = 0; i < logs[k].width; i++)
            fprintf(f, ",%s[%lld]", logs[k].name, (long long)i);
    for (int c = 0; c < a->n_controls; c++)
        fprintf(f, ",%s", a->controls[c].name);
    fprintf(f, ",env_reward\n");
}

typedef struct Loop {
    AgentSession *as;
    Env *envs;
    int n_envs;
    double *obs, *reward, *values;
    int *obs_idx, *act;
    double *act_real;
    LogBuf logs[AGENT_MAX_FACTORS + AGENT_MAX_CONTROLS + 7];
    int n_logs;
    FILE *log;
} Loop;

static void write_rows(Loop *L, int episode, int t)
{
    const Agent *a = L->as->a;
    int B = L->as->batch;
    for (int b = 0; b < B; b++) {
        fprintf(L->log, "%d,%d,%d", episode + b, b, t);
        for (int o = 0; o < a->n_outcomes; o++)
            fprintf(L->log, ",%d", L->obs_idx[b * a->n_outcomes + o]);
        for (int k = 0; k < L->n_logs; k++) {
            session_get(L->as->s, L->logs[k].buf, L->values);
            for (int64_t i = 0; i < L->logs[k].width; i++)
                fprintf(L->log, ",%.9g", L->values[b * L->logs[k].width + i]);
        }
        for (int c = 0; c < a->n_controls; c++)
            fprintf(L->log, ",%d", L->act[b * a->n_controls + c]);
        fprintf(L->log, ",%.9g\n", L->reward[b]);
    }
}

static void copy_obs(Loop *L, int b)
{
    int n = L->as->a->n_outcomes;
    for (int o = 0; o < n; o++)
        L->obs_idx[b * n + o] = (int)L->obs[b * 16 + o];
}

/* One round: B agents through one episode each; returns false on error. */
static bool episode(Loop *L, int first_episode, int steps, bool learn, double *returns, int *lengths, char *err,
                    size_t errlen)
{
    AgentSession *as = L->as;
    const Agent *a = as->a;
    int B = as->batch;
    bool done[1024] = {false};
    for (int b = 0; b < B; b++) {
        env_reset(&L->envs[b], L->obs + b * 16);
        copy_obs(L, b);
        returns[b] = 0;
        lengths[b] = 0;
    }
    if (!agent_reset(as))
        goto engine_error;
    for (int t = 0; t < steps; t++) {
        if (!agent_observe(as, L->obs_idx, err, errlen))
            return false;
        if (!agent_infer(as) || (learn && !agent_learn(as)) || !agent_plan(as))
            goto engine_error;
        agent_select(as, L->act);
        for (int b = 0; b < B; b++) {
            L->reward[b] = 0;
            if (done[b])
                continue;
            for (int c = 0; c < a->n_controls; c++)
                L->act_real[c] = L->act[b * a->n_controls + c];
            double r;
            done[b] = env_step(&L->envs[b], L->act_real, L->obs + b * 16, &r);
            L->reward[b] = r;
            returns[b] += r;
            lengths[b]++;
        }
        if (L->log)
            write_rows(L, first_episode, t);
        for (int b = 0; b < B; b++)
            copy_obs(L, b);
        if (!agent_predict(as))
            goto engine_error;
        bool all = true;
        for (int b = 0; b < B; b++)
            all &= done[b];
        if (all)
            break;
    }
    return true;
engine_error:
    snprintf(err, errlen, "%s", as->s->error);
    return false;
}

int act_run(Diag *d, Model *m, const ActOptions *opt, Engine engine)
{
    char err[512];
    const Agent *a = m->agent;
    if (!a) {
        fprintf(stderr, "fepc: error: model '%s' declares no hidden factors and outcomes: `fepc act` runs discrete "
                        "agents (see docs/language/agents.md)\n", m->name);
        return 1;
    }
    int B = opt->agents > 0 ? opt->agents : 1;
    if (B > 1024) {
        fprintf(stderr, "fepc: error: --agents is at most 1024, got %d\n", B);
        return 1;
    }
    AgentSession *as = agent_session_new(d, m, B, opt->f64, engine, err, sizeof err);
    if (!as) {
        fprintf(stderr, "fepc: error: %s\n", err);
        return 1;
    }
    Loop L = {.as = as, .n_envs = B};
    AtomicFile log_file = {0}, sum_file = {0};
    FILE *summary = NULL;
    L.envs = xcalloc((size_t)B, sizeof *L.envs);
    int status = 1;
    for (int b = 0; b < B; b++)
        if (!env_open(opt->env, m, a->cfg.seed + 1000003ull * (uint64_t)(b + 1), &L.envs[b], err, sizeof err) ||
            !check_env(a, &L.envs[b], opt->env, err, sizeof err)) {
            fprintf(stderr, "fepc: error: %s\n", err);
            goto done;
        }
    L.obs = xcalloc((size_t)B * 16, sizeof *L.obs);
    L.reward = xcalloc((size_t)B, sizeof *L.reward);
    L.values = xmalloc(sizeof *L.values * (size_t)(as->scratch_len + 1));
    L.obs_idx = xcalloc((size_t)B * (size_t)(a->n_outcomes + 1), sizeof *L.obs_idx);
    L.act = xcalloc((size_t)B * (size_t)(a->n_controls + 1), sizeof *L.act);
    L.act_real = xcalloc(16, sizeof *L.act_real);
    L.n_logs = log_buffers(as, L.logs);
    if (opt->log_path) {
        if (!atomic_open(&log_file, opt->log_path, err, sizeof err)) {
            fprintf(stderr, "fepc: error: %s\n", err);
            goto done;
        }
        L.log = log_file.f;
        write_header(L.log, as, L.logs, L.n_logs);
    }
    if (opt->summary_path) {
        if (!atomic_open(&sum_file, opt->summary_path, err, sizeof err)) {
            fprintf(stderr, "fepc: error: %s\n", err);
            goto done;
        }
        summary = sum_file.f;
        fprintf(summary, "episode,agent,return,steps,seconds\n");
    }
    int steps = opt->steps > 0 ? opt->steps : a->cfg.steps;
    bool learn = a->cfg.lr > 0 && opt->learn;
    double total = 0, *returns = xcalloc((size_t)B, sizeof *returns);
    int *lengths = xcalloc((size_t)B, sizeof *lengths), episodes = opt->episodes > 0 ? opt->episodes : 1;
    bool ok = true;
    for (int e = 0; e < episodes && ok; e += B) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ok = episode(&L, e, steps, learn, returns, lengths, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        for (int b = 0; ok && b < B && e + b < episodes; b++) {
            total += returns[b];
            if (summary)
                fprintf(summary, "%d,%d,%.9g,%d,%.6f\n", e + b, b, returns[b], lengths[b], secs);
            if (!opt->quiet)
                printf("episode %d: return %g in %d steps\n", e + b, returns[b], lengths[b]);
        }
    }
    free(returns);
    free(lengths);
    if (!ok) {
        fprintf(stderr, "fepc: error: %s\n", err);
        goto done;
    }
    printf("episodes: %d\nmean return: %.6g\n", episodes, total / episodes);
    if (opt->save_path && !save_params(as->s, opt->save_path, NULL, 0, err, sizeof err)) {
        fprintf(stderr, "fepc: error: %s\n", err);
        goto done;
    }
    if ((L.log && !atomic_commit(&log_file, err, sizeof err)) ||
        (summary && !atomic_commit(&sum_file, err, sizeof err))) {
        fprintf(stderr, "fepc: error: %s\n", err);
        goto done;
    }
    status = 0;
done:
    atomic_abort(&log_file);   /* no-ops after a commit */
    atomic_abort(&sum_file);
    for (int b = 0; b < B; b++)
        env_close(&L.envs[b]);
    free(L.envs);
    free(L.obs);
    free(L.reward);
    free(L.values);
    free(L.obs_idx);
    free(L.act);
    free(L.act_real);
    agent_session_free(as);
    return status;
}
