/* lower_agent.c — the declarations of a discrete active-inference agent
 * (docs/language/agents.md) to Model.agent:
 *
 *   control  move : [4]
 *   hidden   loc  : [4] ~ categorical(prior = D_loc, transition = B_loc(move))
 *   outcome  cue  : [2] ~ categorical(likelihood = A_cue(loc, ctx), preference = [0, 0])
 *   agent { horizon = 1  gamma = 16  policy = efe(risk = on, ambiguity = on) }
 *
 * Runs after every tensor is defined, so tables are known by value: each
 * probability table is checked here for its shape against the variables it
 * is indexed by and for normalisation (a const's columns sum to 1, counts
 * are non-negative), and the policy space (joint actions ^ horizon) for
 * size.  Every error points at the use, with a note at the tensor's
 * declaration where that helps.  The agent's buffers are registered later,
 * by the derivation (passes/agent.c), so command-line overrides of the
 * agent keys (ir_apply_agent_setting) can still change the horizon. */
#include "lower.h"

#include <math.h>
#include <string.h>

/* Policies and planning memory one agent may need. */
static const int64_t MAX_POLICIES = 1 << 22;
static const double MAX_PLAN_BYTES = 2.0 * (1 << 30);

static const char *const agent_keys[] = {"horizon", "gamma", "policy", "action", "iterations", "lr",
                                         "habit", "outcomes", "steps", "seed"};
enum { N_AGENT_KEYS = sizeof agent_keys / sizeof *agent_keys };

void ir_default_agent(AgentConfig *c)
{
    *c = (AgentConfig){.horizon = 1, .gamma = 16, .terms = TERM_RISK | TERM_AMBIGUITY, .joint_outcomes = true,
                       .action = ACTION_SAMPLE, .alpha = 16, .iterations = 16, .lr = 1, .habit = -1, .steps = 16,
                       .seed = 1};
}

/* ---- tables: which tensor, indexed by which variables ---- */

typedef struct TableUse {
    int tensor;
    Span span;                         /* the whole argument */
    int n_index;                       /* A(loc, ctx): 2; a bare name or literal: -1 */
    const char *index[AGENT_MAX_FACTORS + 1];
    Span index_span[AGENT_MAX_FACTORS + 1];
} TableUse;

static int find_tensor(const Model *m, const char *name) { return ir_model_find_tensor(m, name); }

static bool table_use(Lowerer *lw, const AstExpr *e, const char *what, TableUse *out)
{
    Model *m = lw->model;
    *out = (TableUse){.tensor = -1, .span = e->span, .n_index = -1};
    const char *name = NULL;
    Span name_span = e->span;
    if (e->kind == AST_LIST) {
        NodeId load = lower_expr(lw, e);   /* an anonymous const, as any literal */
        if (load == NO_NODE)
            return false;
        out->tensor = m->buffers[ir_node_attr(&m->g, load)->ints[0]].tensor;
        return true;
    }
    if (e->kind == AST_NAME) {
        name = e->name;
    } else if (e->kind == AST_CALL) {
        name = e->name;
        name_span = e->name_span;
        if (e->n_args > AGENT_MAX_FACTORS) {
            diag_error(lw->diag, e->span, "%s '%s' is indexed by %d variables; at most %d are allowed", what, name,
                       e->n_args, AGENT_MAX_FACTORS);
            return false;
        }
        out->n_index = e->n_args;
        for (int i = 0; i < e->n_args; i++) {
            const AstArg *a = &e->args[i];
            if (a->name || a->value->kind != AST_NAME) {
                diag_error(lw->diag, a->name ? a->name_span : a->value->span,
                           "the variables of %s '%s' are names of hidden factors or controls, as in %s(loc, ctx)",
                           what, name, name);
                return false;
            }
            out->index[i] = a->value->name;
            out->index_span[i] = a->value->span;
        }
    } else {
        diag_error(lw->diag, e->span, "expected a table for the %s: a name, a literal such as [0.5, 0.5], or A(s1, s2)",
                   what);
        return false;
    }
    int t = find_tensor(m, name);
    if (t < 0 || (m->tensors[t].role != ROLE_CONST && !(m->tensors[t].role == ROLE_PARAM && m->tensors[t].counts))) {
        if (t < 0)
            diag_error(lw->diag, name_span, "unknown table '%s' for the %s", name, what);
        else
            diag_error(lw->diag, name_span, "the %s '%s' must be a const table or counts, not %s %s", what, name,
                       m->tensors[t].role == ROLE_PARAM ? "a" : "an", ir_role_name(m->tensors[t].role));
        return false;
    }
    out->tensor = t;
    return true;
}

/* The values of a table known at compile time. */
static const double *table_values(Lowerer *lw, int t, Span use, int64_t *n)
{
    Model *m = lw->model;
    const Tensor *tensor = &m->tensors[t];
    *n = ir_numel(ir_shape(&m->g, tensor->shape));
    double *v = arena_alloc(m->arena, sizeof *v * (size_t)(*n + 1));
    const Init *init = &tensor->init;
    switch (tensor->has_init ? init->kind : INIT_NORMAL) {
    case INIT_ZEROS:
        return v;
    case INIT_VALUE:
        for (int64_t i = 0; i < *n; i++)
            v[i] = init->a;
        return v;
    case INIT_LITERAL:
        return init->values;
    default:
        diag_error(lw->diag, use, "'%s' is initialised at random; a probability table needs fixed values",
                   tensor->name);
        diag_note(lw->diag, tensor->span, "'%s' is declared here", tensor->name);
        return NULL;
    }
}

/* "[:, 1, 0]": the column of a table whose distribution runs along `axis`. */
static const char *column_text(Arena *a, const Shape *s, int axis, int64_t flat)
{
    char buf[128] = "[";
    for (int d = 0; d < s->rank; d++) {
        int64_t stride = 1;
        for (int k = d + 1; k < s->rank; k++)
            stride *= s->dims[k];
        if (d == axis)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s:", d ? ", " : "");
        else
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%lld", d ? ", " : "",
                     (long long)(flat / stride % s->dims[d]));
    }
    return arena_printf(a, "%s]", buf);
}

/* Every column along `axis` is a distribution (a const: entries in [0, 1]
 * summing to 1) or a set of Dirichlet counts (non-negative, not all zero). */
static bool check_stochastic(Lowerer *lw, const TableUse *u, const char *what, int axis)
{
    Model *m = lw->model;
    const Tensor *t = &m->tensors[u->tensor];
    const Shape *s = ir_shape(&m->g, t->shape);
    int64_t n;
    const double *v = table_values(lw, u->tensor, u->span, &n);
    if (!v)
        return false;
    int64_t stride = 1;
    for (int k = axis + 1; k < s->rank; k++)
        stride *= s->dims[k];
    int len = s->dims[axis];
    for (int64_t base = 0; base < n; base++) {
        if (base / stride % len)
            continue;   /* visit each column once, from its first entry */
        double sum = 0;
        for (int i = 0; i < len; i++) {
            double x = v[base + i * stride];
            if (!isfinite(x) || x < 0 || (!t->counts && x > 1 + 1e-9)) {
                diag_error(lw->diag, u->span, "%s '%s' has entry %g in column %s; %s", what, t->name, x,
                           column_text(m->arena, s, axis, base),
                           t->counts ? "Dirichlet counts must be non-negative" : "probabilities lie in [0, 1]");
                diag_note(lw->diag, t->span, "'%s' is declared here", t->name);
                return false;
            }
            sum += x;
        }
        if (t->counts ? !(sum > 0) : fabs(sum - 1) > 1e-6) {
            diag_error(lw->diag, u->span, "column %s of %s '%s' sums to %.9g; %s", column_text(m->arena, s, axis, base),
                       what, t->name, sum, t->counts ? "a column of counts needs a positive total"
                                                     : "each column must be a distribution summing to 1");
            diag_note(lw->diag, t->span, "'%s' is declared here", t->name);
            return false;
        }
    }
    return true;
}

static bool expect_shape(Lowerer *lw, const TableUse *u, const char *what, const Shape *want, const char *why)
{
    const Model *m = lw->model;
    const Shape *got = ir_shape(&m->g, m->tensors[u->tensor].shape);
    if (ir_shape_eq(got, want))
        return true;
    char a[64], b[64];
    diag_error(lw->diag, u->span, "%s '%s' has shape %s but %s needs %s", what, m->tensors[u->tensor].name,
               ir_shape_str(got, a, sizeof a), why, ir_shape_str(want, b, sizeof b));
    return false;
}

/* ---- declarations ---- */

static int find_factor(const Agent *a, const char *name)
{
    for (int i = 0; i < a->n_factors; i++)
        if (!strcmp(a->factors[i].name, name))
            return i;
    return -1;
}

static int find_control(const Agent *a, const char *name)
{
    for (int i = 0; i < a->n_controls; i++)
        if (!strcmp(a->controls[i].name, name))
            return i;
    return -1;
}

/* The arguments of categorical(...) by name or position. */
static bool dist_args(Lowerer *lw, const AstDecl *d, const char *const *names, int n, const AstExpr **out)
{
    const AstExpr *call = d->dist;
    if (call->kind != AST_CALL || strcmp(call->name, "categorical")) {
        diag_error(lw->diag, call->kind == AST_CALL ? call->name_span : call->span,
                   "%s '%s' is categorical: write ~ categorical(%s = ...)", d->kind == DECL_HIDDEN ? "hidden factor" : "outcome",
                   d->name, names[0]);
        return false;
    }
    LowerOption o[5];
    if (!lower_read_options(lw, call, names, n, o))
        return false;
    for (int i = 0; i < n; i++)
        out[i] = o[i].value;
    if (!out[0]) {
        diag_error(lw->diag, call->span, "%s '%s' needs its %s", d->kind == DECL_HIDDEN ? "hidden factor" : "outcome",
                   d->name, names[0]);
        return false;
    }
    return true;
}

static bool check_rank1(Lowerer *lw, const AstDecl *d, int *size)
{
    if (d->n_dims != 1) {
        diag_error(lw->diag, d->shape_span, "%s '%s' has one axis, its number of values, as in [4]",
                   d->kind == DECL_HIDDEN ? "a hidden factor" : d->kind == DECL_OUTCOME ? "an outcome" : "a control",
                   d->name);
        return false;
    }
    *size = (int)d->dims[0];
    return true;
}

/* A transition B(u) [U, S, S] for a controlled factor, B [S, S] for one that is not. */
static bool lower_transition(Lowerer *lw, Agent *a, AgentFactor *f, const AstExpr *e, bool process, int *out)
{
    TableUse u;
    const char *what = process ? "process transition" : "transition";
    if (!table_use(lw, e, what, &u))
        return false;
    if (u.n_index > 1) {
        diag_error(lw->diag, u.index_span[1], "a transition is indexed by at most one control, as in B(move)");
        return false;
    }
    int c = -1;
    if (u.n_index == 1 && (c = find_control(a, u.index[0])) < 0) {
        diag_error(lw->diag, u.index_span[0], "'%s' is not a control; a transition is indexed by a control, as in B(move)",
                   u.index[0]);
        return false;
    }
    if (process && c != f->control) {
        diag_error(lw->diag, u.span, "the process transition of '%s' must be indexed like its transition", f->name);
        return false;
    }
    f->control = c;
    Shape want = c >= 0 ? (Shape){3, {a->controls[c].size, f->size, f->size}} : (Shape){2, {f->size, f->size}};
    const char *why = c >= 0 ? arena_printf(lw->model->arena, "p(%s' | %s, %s)", f->name, f->name, a->controls[c].name)
                             : arena_printf(lw->model->arena, "p(%s' | %s)", f->name, f->name);
    if (!expect_shape(lw, &u, what, &want, why) || !check_stochastic(lw, &u, what, c >= 0 ? 1 : 0))
        return false;
    if (process && lw->model->tensors[u.tensor].counts) {
        diag_error(lw->diag, u.span, "the generative process needs fixed probabilities, not counts");
        return false;
    }
    *out = u.tensor;
    return true;
}

static bool lower_prior(Lowerer *lw, AgentFactor *f, const AstExpr *e, bool process, int *out)
{
    TableUse u;
    const char *what = process ? "process prior" : "prior";
    if (!table_use(lw, e, what, &u))
        return false;
    if (u.n_index >= 0) {
        diag_error(lw->diag, u.span, "a prior is a vector over the factor's values, not indexed");
        return false;
    }
    Shape want = {1, {f->size}};
    if (!expect_shape(lw, &u, what, &want, arena_printf(lw->model->arena, "p(%s)", f->name)) ||
        !check_stochastic(lw, &u, what, 0))
        return false;
    if (process && lw->model->tensors[u.tensor].counts) {
        diag_error(lw->diag, u.span, "the generative process needs fixed probabilities, not counts");
        return false;
    }
    *out = u.tensor;
    return true;
}

/* Log-preferences ln p̃ over the `size` values of `what` (an outcome or a
 * hidden factor): a fixed vector. */
static bool lower_preference(Lowerer *lw, const AstExpr *e, int size, const char *what, int *out)
{
    TableUse u;
    if (!table_use(lw, e, "preference", &u))
        return false;
    Shape want = {1, {size}};
    int64_t n;
    if (u.n_index >= 0 || lw->model->tensors[u.tensor].counts) {
        diag_error(lw->diag, u.span, "a preference is a vector of log-preferences over the values of '%s'", what);
        return false;
    }
    if (!expect_shape(lw, &u, "preference", &want, arena_printf(lw->model->arena, "ln p̃(%s)", what)) ||
        !table_values(lw, u.tensor, u.span, &n))
        return false;
    *out = u.tensor;
    return true;
}

static bool lower_hidden(Lowerer *lw, Agent *a, const AstDecl *d)
{
    AgentFactor *f = &a->factors[a->n_factors];
    *f = (AgentFactor){.name = d->name, .span = d->name_span, .prior = -1, .transition = -1, .control = -1,
                       .preference = -1, .process_prior = -1, .process_transition = -1};
    if (!check_rank1(lw, d, &f->size))
        return false;
    static const char *const names[] = {"prior", "transition", "preference", "process_prior", "process_transition"};
    const AstExpr *arg[5];
    if (!dist_args(lw, d, names, 5, arg) || !lower_prior(lw, f, arg[0], false, &f->prior))
        return false;
    if (arg[2] && !lower_preference(lw, arg[2], f->size, f->name, &f->preference))
        return false;
    arg[2] = arg[3];
    arg[3] = arg[4];
    if (arg[1] && !lower_transition(lw, a, f, arg[1], false, &f->transition))
        return false;
    f->process_prior = f->prior;
    f->process_transition = f->transition;
    if (arg[2] && !lower_prior(lw, f, arg[2], true, &f->process_prior))
        return false;
    if (arg[3] && !arg[1]) {
        diag_error(lw->diag, arg[3]->span, "'%s' has a process transition but no transition of its own", d->name);
        return false;
    }
    if (arg[3] && !lower_transition(lw, a, f, arg[3], true, &f->process_transition))
        return false;
    a->n_factors++;
    return true;
}

static bool lower_likelihood(Lowerer *lw, Agent *a, AgentOutcome *o, const AstExpr *e, bool process, int *out)
{
    TableUse u;
    const char *what = process ? "process likelihood" : "likelihood";
    if (!table_use(lw, e, what, &u))
        return false;
    if (u.n_index < 1) {
        diag_error(lw->diag, u.span, "a likelihood names the hidden factors it depends on, as in A(loc, ctx)");
        return false;
    }
    Shape want = {1 + u.n_index, {o->size}};
    char why[160];
    snprintf(why, sizeof why, "p(%s | ", o->name);
    for (int i = 0; i < u.n_index; i++) {
        int f = find_factor(a, u.index[i]);
        if (f < 0) {
            diag_error(lw->diag, u.index_span[i], "'%s' is not a hidden factor", u.index[i]);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(u.index[j], u.index[i])) {
                diag_error(lw->diag, u.index_span[i], "hidden factor '%s' is named twice", u.index[i]);
                return false;
            }
        if (process ? o->factors[i] != f : false) {
            diag_error(lw->diag, u.index_span[i], "the process likelihood must name the same factors as the likelihood");
            return false;
        }
        o->factors[i] = f;
        want.dims[1 + i] = a->factors[f].size;
        snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s", i ? ", " : "", u.index[i]);
    }
    if (process && u.n_index != o->n_factors) {
        diag_error(lw->diag, u.span, "the process likelihood must name the same factors as the likelihood");
        return false;
    }
    o->n_factors = u.n_index;
    strncat(why, ")", sizeof why - strlen(why) - 1);
    if (!expect_shape(lw, &u, what, &want, why) || !check_stochastic(lw, &u, what, 0))
        return false;
    if (process && lw->model->tensors[u.tensor].counts) {
        diag_error(lw->diag, u.span, "the generative process needs fixed probabilities, not counts");
        return false;
    }
    *out = u.tensor;
    return true;
}

static bool lower_outcome(Lowerer *lw, Agent *a, const AstDecl *d)
{
    AgentOutcome *o = &a->outcomes[a->n_outcomes];
    *o = (AgentOutcome){.name = d->name, .span = d->name_span, .likelihood = -1, .preference = -1,
                        .process_likelihood = -1};
    if (!check_rank1(lw, d, &o->size))
        return false;
    static const char *const names[] = {"likelihood", "preference", "process_likelihood"};
    const AstExpr *arg[3];
    if (!dist_args(lw, d, names, 3, arg) || !lower_likelihood(lw, a, o, arg[0], false, &o->likelihood))
        return false;
    o->process_likelihood = o->likelihood;
    if (arg[2] && !lower_likelihood(lw, a, o, arg[2], true, &o->process_likelihood))
        return false;
    if (arg[1] && !lower_preference(lw, arg[1], o->size, o->name, &o->preference))
        return false;
    a->n_outcomes++;
    return true;
}

/* ---- the agent block and command-line overrides ---- */

/* on | off */
static bool switch_value(Lowerer *lw, const AstExpr *v, const char *where, bool *out)
{
    static const char *const onoff[] = {"off", "on"};
    int x;
    if (!lower_choice(lw, v, "switch", where, onoff, 2, &x))
        return false;
    *out = x == 1;
    return true;
}

/* policy = efe | feef | efe(risk = on, ambiguity = on, utility = off, info_gain = off, novelty = off) */
static bool agent_policy(Lowerer *lw, const AstExpr *v, AgentConfig *c)
{
    static const char *const objectives[] = {"efe", "feef"};
    AstExpr callee = {.kind = AST_NAME, .name = v->name, .span = v->name_span};
    int kind;
    if (!lower_choice(lw, v->kind == AST_CALL ? &callee : v, "policy objective", "agent key 'policy'", objectives, 2,
                      &kind))
        return false;
    static const char *const terms[] = {"risk", "ambiguity", "utility", "info_gain", "novelty"};
    bool set[5] = {false}, on[5] = {false};
    if (v->kind == AST_CALL) {
        LowerOption o[5];
        if (!lower_read_options(lw, v, terms, 5, o))
            return false;
        for (int i = 0; i < 5; i++)
            if (o[i].value) {
                set[i] = true;
                if (!switch_value(lw, o[i].value, arena_printf(lw->model->arena, "term '%s'", terms[i]), &on[i]))
                    return false;
            }
    }
    /* Defaults: efe is risk + ambiguity, feef risk alone; naming utility or
     * info_gain chooses that decomposition instead. */
    bool other = (set[2] && on[2]) || (set[3] && on[3]);
    if (!set[0])
        on[0] = !other;
    if (!set[1])
        on[1] = !other && kind == 0;
    unsigned t = 0;
    for (int i = 0; i < 5; i++)
        if (on[i])
            t |= 1u << i;
    static const struct { unsigned pair; const char *why; } clashes[] = {
        {TERM_RISK | TERM_UTILITY, "risk already contains the utility (risk = −utility − H[Q(o)])"},
        {TERM_RISK | TERM_INFO_GAIN, "risk and info_gain both contain the outcome entropy H[Q(o)]"},
        {TERM_AMBIGUITY | TERM_INFO_GAIN, "info_gain already contains the ambiguity (info_gain = H[Q(o)] − ambiguity)"},
    };
    for (int i = 0; i < 3; i++)
        if ((t & clashes[i].pair) == clashes[i].pair) {
            diag_error(lw->diag, v->span, "G counts a term twice: %s; choose risk + ambiguity or utility + info_gain",
                       clashes[i].why);
            return false;
        }
    if (!(t & ~(unsigned)TERM_NOVELTY)) {
        diag_error(lw->diag, v->span, "G has no term that scores outcomes: turn on risk or utility");
        return false;
    }
    c->terms = t;
    c->terms_span = v->span;
    return true;
}

static bool agent_action(Lowerer *lw, const AstExpr *v, AgentConfig *c)
{
    static const char *const rules[] = {"sample", "argmax"};
    AstExpr callee = {.kind = AST_NAME, .name = v->name, .span = v->name_span};
    int kind;
    if (!lower_choice(lw, v->kind == AST_CALL ? &callee : v, "action rule", "agent key 'action'", rules, 2, &kind))
        return false;
    double alpha = 16;
    if (v->kind == AST_CALL) {
        static const char *const args[] = {"alpha"};
        LowerOption o[1];
        if (kind == 1) {
            diag_error(lw->diag, v->span, "'argmax' takes no arguments");
            return false;
        }
        if (!lower_read_options(lw, v, args, 1, o) ||
            (o[0].value && !lower_expect_positive(lw, o[0].value, "agent", "action alpha", &alpha)))
            return false;
    }
    c->action = (ActionRule)kind;
    c->alpha = alpha;
    return true;
}

/* The policy space fits: joint actions ^ horizon policies within the
 * limits, its planning tree within memory. */
static bool check_budget(Diag *d, const Model *m, Span at)
{
    const Agent *a = m->agent;
    int64_t u = 1;
    for (int i = 0; i < a->n_controls; i++)
        u *= a->controls[i].size;
    double policies = pow((double)u, a->cfg.horizon), nodes = 0;
    for (int h = 1; h <= a->cfg.horizon; h++)
        nodes += pow((double)u, h);
    double per_node = 0;
    for (int f = 0; f < a->n_factors; f++)
        per_node += 2 * a->factors[f].size;
    for (int o = 0; o < a->n_outcomes; o++) {
        double joint = 1;
        for (int k = 0; k < a->outcomes[o].n_factors; k++)
            joint *= a->factors[a->outcomes[o].factors[k]].size;
        per_node += joint + 2 * a->outcomes[o].size;
    }
    double bytes = nodes * (per_node + 16) * sizeof(double);
    if (policies > (double)MAX_POLICIES || bytes > MAX_PLAN_BYTES) {
        diag_error(d, at, "horizon %d gives %lld^%d = %.4g policies, whose planning tree needs %.3g GiB per agent; "
                   "at most %lld policies and %.0f GiB fit: shorten the horizon or the action set",
                   a->cfg.horizon, (long long)u, a->cfg.horizon, policies, bytes / (1 << 30), (long long)MAX_POLICIES,
                   MAX_PLAN_BYTES / (1 << 30));
        return false;
    }
    return true;
}

static bool apply_agent_setting(Lowerer *lw, const char *key, Span key_span, const AstExpr *v)
{
    Model *m = lw->model;
    AgentConfig *c = &m->agent->cfg;
    long n;
    double x;
    if (!strcmp(key, "horizon")) {
        if (!lower_expect_int(lw, v, "agent", key, 1, 64, &n))
            return false;
        c->horizon = (int)n;
        c->horizon_span = v->span;
        return check_budget(lw->diag, m, v->span);
    }
    if (!strcmp(key, "gamma")) {
        if (!lower_expect_positive(lw, v, "agent", key, &x))
            return false;
        c->gamma = x;
        return true;
    }
    if (!strcmp(key, "policy"))
        return agent_policy(lw, v, c);
    if (!strcmp(key, "action"))
        return agent_action(lw, v, c);
    if (!strcmp(key, "iterations") || !strcmp(key, "steps")) {
        if (!lower_expect_int(lw, v, "agent", key, 1, 1000000, &n))
            return false;
        *(key[0] == 'i' ? &c->iterations : &c->steps) = (int)n;
        return true;
    }
    if (!strcmp(key, "lr")) {
        if (!lower_expect_number(lw, v, "agent", key, &x))
            return false;
        if (!(x >= 0) || isinf(x)) {
            diag_error(lw->diag, v->span, "agent key 'lr' expects a non-negative number, got %g", x);
            return false;
        }
        c->lr = x;
        return true;
    }
    if (!strcmp(key, "seed")) {
        if (!lower_expect_int(lw, v, "agent", key, 0, 1L << 53, &n))
            return false;
        c->seed = (uint64_t)n;
        return true;
    }
    if (!strcmp(key, "outcomes")) {
        static const char *const forms[] = {"separate", "joint"};
        int k;
        if (!lower_choice(lw, v, "outcome entropy", "agent key 'outcomes'", forms, 2, &k))
            return false;
        c->joint_outcomes = k == 1;
        return true;
    }
    if (!strcmp(key, "habit")) {
        TableUse u;
        if (!table_use(lw, v, "habit", &u))
            return false;
        c->habit = u.tensor;   /* its shape depends on the horizon: the derivation checks it */
        c->habit_span = u.span;
        return true;
    }
    const char *hint = suggest_name(key, agent_keys, N_AGENT_KEYS);
    if (hint)
        diag_error(lw->diag, key_span, "unknown agent key '%s'; did you mean '%s'?", key, hint);
    else
        diag_error(lw->diag, key_span, "unknown agent key '%s'; expected horizon, gamma, policy, action, iterations, "
                   "lr, habit, outcomes, steps or seed", key);
    return false;
}

bool ir_apply_agent_setting(Diag *d, Model *m, const char *key, Span key_span, const AstExpr *value)
{
    if (!m->agent) {
        diag_error(d, key_span, "'%s' is an agent key, but model '%s' declares no hidden factors", key, m->name);
        return false;
    }
    LowerScope *sc = m->scope;
    Lowerer lw = {.diag = d, .model = m, .lets = sc->lets, .n_lets = sc->n_lets, .families = sc->families,
                  .n_families = sc->n_families, .n_literals = sc->n_literals};
    bool ok = apply_agent_setting(&lw, key, key_span, value);
    sc->n_literals = lw.n_literals;
    return ok;
}

bool lower_agent(Lowerer *lw)
{
    const AstModel *ast = lw->ast;
    Model *m = lw->model;
    int n[5] = {0};   /* hidden, outcome, control, agent blocks, value nodes */
    const AstDecl *first = NULL, *block = NULL;
    for (int i = 0; i < ast->n_decls; i++) {
        const AstDecl *d = ast->decls[i];
        int k = d->kind == DECL_HIDDEN ? 0 : d->kind == DECL_OUTCOME ? 1 : d->kind == DECL_CONTROL ? 2
              : d->kind == DECL_AGENT ? 3 : -1;
        if (k >= 0) {
            n[k]++;
            if (!first && k != 3)
                first = d;
            if (k == 3) {
                if (block) {
                    diag_error(lw->diag, d->name_span, "a model has one agent block");
                    diag_note(lw->diag, block->name_span, "the first is here");
                    return false;
                }
                block = d;
            }
        }
    }
    if (!n[0] && !n[1] && !n[2]) {
        if (block) {
            diag_error(lw->diag, block->name_span, "an agent block needs hidden factors and outcomes to act on");
            return false;
        }
        return true;
    }
    for (int t = 0; t < m->n_tensors; t++)
        if (ir_is_value_role(m->tensors[t].role)) {
            diag_error(lw->diag, m->tensors[t].span,
                       "'%s' is %s node, but this model is a discrete agent (it declares '%s'); a model is either a "
                       "predictive-coding graph or a POMDP agent", m->tensors[t].name,
                       m->tensors[t].role == ROLE_INPUT ? "an input" : m->tensors[t].role == ROLE_LATENT ? "a latent"
                                                                                                       : "an observed",
                       first->name);
            return false;
        }
    if (!n[0] || !n[1]) {
        diag_error(lw->diag, first->name_span, "a discrete agent needs at least one hidden factor and one outcome");
        return false;
    }
    if (n[0] > AGENT_MAX_FACTORS || n[2] > AGENT_MAX_CONTROLS) {
        diag_error(lw->diag, first->name_span, "at most %d hidden factors and %d controls are supported",
                   AGENT_MAX_FACTORS, AGENT_MAX_CONTROLS);
        return false;
    }
    Agent *a = arena_alloc(m->arena, sizeof *a);
    a->factors = arena_alloc(m->arena, sizeof *a->factors * (size_t)n[0]);
    a->outcomes = arena_alloc(m->arena, sizeof *a->outcomes * (size_t)n[1]);
    a->controls = arena_alloc(m->arena, sizeof *a->controls * (size_t)(n[2] + 1));
    ir_default_agent(&a->cfg);
    m->agent = a;
    /* controls first (transitions name them), then factors (likelihoods name them), then outcomes */
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < ast->n_decls; i++) {
            const AstDecl *d = ast->decls[i];
            if (pass == 0 && d->kind == DECL_CONTROL) {
                AgentControl *c = &a->controls[a->n_controls];
                *c = (AgentControl){.name = d->name, .span = d->name_span};
                if (!check_rank1(lw, d, &c->size))
                    return false;
                a->n_controls++;
            } else if (pass == 1 && d->kind == DECL_HIDDEN && !lower_hidden(lw, a, d)) {
                return false;
            } else if (pass == 2 && d->kind == DECL_OUTCOME && !lower_outcome(lw, a, d)) {
                return false;
            }
        }
    for (int f = 0; f < a->n_factors; f++)
        for (int o = 0; o < a->n_outcomes; o++)
            if (a->factors[f].preference >= 0 && a->outcomes[o].preference >= 0) {
                diag_error(lw->diag, a->outcomes[o].span, "outcome '%s' has preferences, and so does hidden factor '%s': "
                           "risk is over outcomes or over states, so give preferences to one kind only",
                           a->outcomes[o].name, a->factors[f].name);
                return false;
            }
    for (int c = 0; c < a->n_controls; c++) {
        bool used = false;
        for (int f = 0; f < a->n_factors; f++)
            used |= a->factors[f].control == c;
        if (!used) {
            diag_error(lw->diag, a->controls[c].span, "control '%s' moves no hidden factor: index a transition by it, "
                       "as in transition = B(%s)", a->controls[c].name, a->controls[c].name);
            return false;
        }
    }
    if (block)
        for (int i = 0; i < block->n_entries; i++) {
            const AstTrainEntry *e = &block->entries[i];
            for (int j = 0; j < i; j++)
                if (!strcmp(block->entries[j].key, e->key)) {
                    diag_error(lw->diag, e->key_span, "duplicate agent key '%s'", e->key);
                    diag_note(lw->diag, block->entries[j].key_span, "first set here");
                    return false;
                }
            if (!apply_agent_setting(lw, e->key, e->key_span, e->value))
                return false;
        }
    return check_budget(lw->diag, m, a->cfg.horizon_span.end ? a->cfg.horizon_span : first->name_span);
}
