/* api_agent.c — the C API for discrete active-inference agents (fep.h,
 * "agents"): a FepAgent is a runtime AgentSession (agent.c) over a module
 * whose model declares hidden factors and outcomes; a C program drives it
 * step by step — observe, infer, plan, act, learn — and reads any of its
 * buffers (beliefs q.F, priors, G and its terms, q_pi, marginals P.C). */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "api_impl.h"

struct FepAgent {
    FepModule *module;
    AgentSession *as;
};

static FepStatus engine_error(FepAgent *a) { return api_fail(FEP_ERROR_NUMERIC, "%s", a->as->s->error); }

FepStatus fep_agent_new(FepModule *m, int n_agents, int f64, FepAgent **out)
{
    if (!m || !out)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_new: NULL argument");
    *out = NULL;
    if (!m->c.model->agent)
        return api_fail(FEP_ERROR_MODEL, "model '%s' is not an agent: it declares no hidden factors and outcomes",
                        m->c.model->name);
    if (n_agents < 1 || n_agents > 1 << 20)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_new: n_agents must be 1..%d, got %d", 1 << 20, n_agents);
    char err[512];
    ApiCapture cap;
    api_capture_begin(&cap, &m->c.diag);
    AgentSession *as = agent_session_new(&m->c.diag, m->c.model, n_agents, f64 != 0, m->engine, err, sizeof err);
    char *diags = api_capture_end(&cap);
    if (!as) {
        FepStatus st = api_fail(FEP_ERROR_MODEL, "%s%s", diags, err);
        free(diags);
        return st;
    }
    free(diags);
    FepAgent *a = xcalloc(1, sizeof *a);
    a->module = m;
    a->as = as;
    if (!agent_reset(as)) {
        FepStatus st = engine_error(a);
        fep_agent_free(a);
        return st;
    }
    *out = a;
    return api_ok();
}

void fep_agent_free(FepAgent *a)
{
    if (!a)
        return;
    agent_session_free(a->as);
    free(a);
}

FepStatus fep_agent_shape(const FepAgent *a, int *n_outcomes, int *n_controls, int64_t *n_policies)
{
    if (!a)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_shape: NULL agent");
    const Agent *ag = a->as->a;
    if (n_outcomes)
        *n_outcomes = ag->n_outcomes;
    if (n_controls)
        *n_controls = ag->n_controls;
    if (n_policies)
        *n_policies = ag->n_policies;
    return api_ok();
}

FepStatus fep_agent_reset(FepAgent *a)
{
    if (!a)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_reset: NULL agent");
    return agent_reset(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_observe(FepAgent *a, const int *obs)
{
    if (!a || !obs)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_observe: NULL argument");
    char err[256];
    return agent_observe(a->as, obs, err, sizeof err) ? api_ok() : api_fail(FEP_ERROR_ARGUMENT, "%s", err);
}

FepStatus fep_agent_infer(FepAgent *a)
{
    if (!a)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_infer: NULL agent");
    return agent_infer(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_plan(FepAgent *a)
{
    if (!a)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_plan: NULL agent");
    return agent_plan(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_act(FepAgent *a, int *actions)
{
    if (!a || !actions)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_act: NULL argument");
    agent_select(a->as, actions);
    return agent_predict(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_act_with(FepAgent *a, const int *actions)
{
    if (!a || !actions)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_act_with: NULL argument");
    char err[256];
    if (!agent_set_action(a->as, actions, err, sizeof err))
        return api_fail(FEP_ERROR_ARGUMENT, "%s", err);
    return agent_predict(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_learn(FepAgent *a)
{
    if (!a)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_learn: NULL agent");
    return agent_learn(a->as) ? api_ok() : engine_error(a);
}

FepStatus fep_agent_get(const FepAgent *a, const char *name, double *data, size_t n)
{
    if (!a || !name || !data)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_agent_get: NULL argument");
    const Model *m = a->as->m;
    int buf = ir_model_find_buffer(m, name);
    BufKind k = buf >= 0 ? m->buffers[buf].kind : BUF_TEMP;
    if (buf < 0 || (k != BUF_AGENT && k != BUF_PARAM && k != BUF_CONST))
        return api_fail(FEP_ERROR_NAME, "agent '%s' has no buffer '%s' (q.FACTOR, prior.FACTOR, o.OUTCOME, u.CONTROL, "
                        "P.CONTROL, G, G.risk, G.ambiguity, G.utility, G.info_gain, q_pi, or a table)", m->name, name);
    int64_t len = session_buffer_len(a->as->s, buf);
    if ((int64_t)n != len)
        return api_fail(FEP_ERROR_SHAPE, "'%s' holds %lld values (agents × its size), got room for %zu", name,
                        (long long)len, n);
    session_get(a->as->s, buf, data);
    return api_ok();
}
