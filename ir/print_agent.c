/* print_agent.c — a discrete agent in readable maths: the `fepc check`
 * summary (its variables, tables and policy space) and `fepc explain`
 * (the equations passes/agent.c derives, written with the model's own
 * names).  `fepc emit --derived` prints the phase programs themselves. */
#include "ir.h"

#include <string.h>

/* A table's name; an inline literal (literal.N) as its values when short. */
static const char *tname(const Model *m, int t)
{
    if (t < 0)
        return "-";
    const Tensor *x = &m->tensors[t];
    if (strncmp(x->name, "literal.", 8) || x->init.kind != INIT_LITERAL || x->init.n_values > 12)
        return x->name;
    char *text = arena_strdup(m->arena, "[");
    for (int64_t i = 0; i < x->init.n_values; i++)
        text = arena_printf(m->arena, "%s%s%g", text, i ? ", " : "", x->init.values[i]);
    return arena_printf(m->arena, "%s]", text);
}

static const char *plural(int n) { return n == 1 ? "" : "s"; }

/* "A_reward(loc, ctx)" */
static void print_likelihood(FILE *out, const Model *m, const AgentOutcome *o, int table)
{
    fprintf(out, "%s(", tname(m, table));
    for (int k = 0; k < o->n_factors; k++)
        fprintf(out, "%s%s", k ? ", " : "", m->agent->factors[o->factors[k]].name);
    fputc(')', out);
}

static void print_transition(FILE *out, const Model *m, const AgentFactor *f, int table)
{
    if (table < 0)
        fputs("stays", out);
    else if (f->control >= 0)
        fprintf(out, "%s(%s)", tname(m, table), m->agent->controls[f->control].name);
    else
        fputs(tname(m, table), out);
}

static const char *kind_of(const Model *m, int t) { return m->tensors[t].counts ? "counts" : "const"; }

void ir_print_agent_summary(FILE *out, const Model *m)
{
    const Agent *a = m->agent;
    const AgentConfig *c = &a->cfg;
    int64_t u = 1;
    for (int i = 0; i < a->n_controls; i++)
        u *= a->controls[i].size;
    int64_t policies = 1;
    for (int h = 0; h < c->horizon; h++)
        policies *= u;
    fprintf(out, "agent %s: %d hidden factor%s, %d outcome%s, %d control%s; %lld polic%s (%lld action%s, horizon %d)\n",
            m->name, a->n_factors, plural(a->n_factors), a->n_outcomes, plural(a->n_outcomes), a->n_controls,
            plural(a->n_controls), (long long)policies, policies == 1 ? "y" : "ies", (long long)u, plural((int)u),
            c->horizon);
    for (int i = 0; i < a->n_controls; i++)
        fprintf(out, "  control   %-10s [%d]\n", a->controls[i].name, a->controls[i].size);
    for (int i = 0; i < a->n_factors; i++) {
        const AgentFactor *f = &a->factors[i];
        fprintf(out, "  hidden    %-10s [%d]  prior %s (%s), transition ", f->name, f->size, tname(m, f->prior),
                kind_of(m, f->prior));
        print_transition(out, m, f, f->transition);
        if (f->transition >= 0)
            fprintf(out, " (%s)", kind_of(m, f->transition));
        if (f->preference >= 0)
            fprintf(out, ", preference %s", tname(m, f->preference));
        if (f->process_prior != f->prior)
            fprintf(out, ", process prior %s", tname(m, f->process_prior));
        if (f->process_transition != f->transition) {
            fputs(", process transition ", out);
            print_transition(out, m, f, f->process_transition);
        }
        fputc('\n', out);
    }
    for (int i = 0; i < a->n_outcomes; i++) {
        const AgentOutcome *o = &a->outcomes[i];
        fprintf(out, "  outcome   %-10s [%d]  likelihood ", o->name, o->size);
        print_likelihood(out, m, o, o->likelihood);
        fprintf(out, " (%s), preference %s", kind_of(m, o->likelihood), o->preference >= 0 ? tname(m, o->preference)
                                                                                           : "none (indifferent)");
        if (o->process_likelihood != o->likelihood) {
            fputs(", process ", out);
            print_likelihood(out, m, o, o->process_likelihood);
        }
        fputc('\n', out);
    }
}

/* "risk + ambiguity − novelty" */
static void print_terms(FILE *out, unsigned terms)
{
    static const char *const names[] = {"risk", "ambiguity", "utility", "info_gain", "novelty"};
    static const bool negated[] = {false, false, true, true, true};
    bool first = true;
    for (int k = 0; k < 5; k++)
        if (terms & (1u << k)) {
            fprintf(out, "%s%s", first ? (negated[k] ? "−" : "") : negated[k] ? " − " : " + ", names[k]);
            first = false;
        }
}

static bool any_counts(const Model *m)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].counts)
            return true;
    return false;
}

void ir_print_agent_explain(FILE *out, const Program *p)
{
    const Model *m = p->model;
    const Agent *a = m->agent;
    const AgentConfig *c = &a->cfg;
    ir_print_agent_summary(out, m);
    bool coupled = false, states = false;
    for (int i = 0; i < a->n_outcomes; i++)
        coupled |= a->outcomes[i].n_factors > 1;
    for (int i = 0; i < a->n_factors; i++)
        states |= a->factors[i].preference >= 0;

    fprintf(out, "\nstart of an episode:\n");
    for (int i = 0; i < a->n_factors; i++)
        fprintf(out, "  prior(%s) = %s%s\n", a->factors[i].name, tname(m, a->factors[i].prior),
                m->tensors[a->factors[i].prior].counts ? " / Σ (counts)" : "");

    fprintf(out, "\nstate inference, each step (%s):\n",
            coupled ? "mean-field fixed point, Jacobi sweeps" : "exact Bayes in one step, thesis eq. 2.42");
    for (int i = 0; i < a->n_factors; i++) {
        fprintf(out, "  q(%s) = σ(ln prior(%s)", a->factors[i].name, a->factors[i].name);
        for (int k = 0; k < a->n_outcomes; k++) {
            const AgentOutcome *o = &a->outcomes[k];
            bool uses = false;
            for (int j = 0; j < o->n_factors; j++)
                uses |= o->factors[j] == i;
            if (!uses)
                continue;
            fputs(" + ", out);
            if (o->n_factors > 1) {
                fputs("E_q(", out);
                for (int j = 0, n = 0; j < o->n_factors; j++)
                    if (o->factors[j] != i)
                        fprintf(out, "%s%s", n++ ? ", " : "", a->factors[o->factors[j]].name);
                fputs(")[", out);
            }
            fprintf(out, "o_%s · ln ", o->name);
            print_likelihood(out, m, o, o->likelihood);
            if (o->n_factors > 1)
                fputc(']', out);
        }
        fputs(")\n", out);
    }
    if (coupled)
        fprintf(out, "  (%d sweeps, every factor from the last sweep's beliefs)\n", c->iterations);
    if (any_counts(m))
        fprintf(out, "  for counts a: ln A is E[ln A] = ψ(a) − ψ(a₀), a₀ the column sums; predictions use E[A] = a / a₀\n");
    fprintf(out, "  ln x means ln(x + 1e-16) throughout\n");

    if (c->horizon == 1)
        fprintf(out, "\nplanning: every policy π = (u_1), one joint action");
    else
        fprintf(out, "\nplanning: every policy π = (u_1 .. u_%d) of joint actions", c->horizon);
    if (a->n_controls > 1) {
        fputs(" (", out);
        for (int i = 0; i < a->n_controls; i++)
            fprintf(out, "%s%s", i ? ", " : "", a->controls[i].name);
        fputc(')', out);
    }
    fprintf(out, ", rolled forward from q:\n");
    for (int i = 0; i < a->n_factors; i++) {
        const AgentFactor *f = &a->factors[i];
        fprintf(out, "  Q(%s_τ | π) = ", f->name);
        if (f->transition < 0)
            fprintf(out, "q(%s)", f->name);
        else if (f->control >= 0)
            fprintf(out, "%s(u_τ) Q(%s_τ−1 | π)", tname(m, f->transition), f->name);
        else
            fprintf(out, "%s Q(%s_τ−1 | π)", tname(m, f->transition), f->name);
        fputc('\n', out);
    }
    for (int k = 0; k < a->n_outcomes; k++) {
        fprintf(out, "  Q(%s_τ | π) = ", a->outcomes[k].name);
        print_likelihood(out, m, &a->outcomes[k], a->outcomes[k].likelihood);
        fputs(" Q(s_τ | π)\n", out);
    }
    fprintf(out, "  utility_τ   = %s\n", states ? "Σ_f Q(s_τ)·ln p̃(s)   (preferences over states)"
                                                : "Σ_m Q(o_τ)·ln p̃(o_m), p̃ = σ(preference) (uniform where none)");
    fprintf(out, "  ambiguity_τ = Σ_m Q(s_τ)·H[A_m], H[A](s) = −Σ_o A(o, s) ln A(o, s)\n");
    fprintf(out, "  info_gain_τ = H[Q(o_τ)] − ambiguity_τ   (H over the %s)\n",
            c->joint_outcomes ? "joint of all outcomes" : "outcomes one by one, summed");
    fprintf(out, "  risk_τ      = %s\n", states ? "KL[Q(s_τ) ‖ p̃(s)] = −utility_τ − H[Q(s_τ)]"
                                                : "KL[Q(o_τ) ‖ p̃(o)] = −utility_τ − H[Q(o_τ)]");
    if (any_counts(m))
        fprintf(out, "  novelty_τ   = Σ_m Q(o_τ)·W_m Q(s_τ), W = ½(1/a − 1/a₀) (0 where a = 0)\n");
    fputs("  G(π) = Σ_τ ", out);
    print_terms(out, c->terms);
    fputc('\n', out);
    fprintf(out, "  q(π) = σ(−%g G(π)%s)\n", c->gamma, c->habit >= 0 ? " + ln E" : "");
    for (int i = 0; i < a->n_controls; i++)
        fprintf(out, "  P(%s) = Σ_π q(π) [π's first %s = %s]\n", a->controls[i].name, a->controls[i].name,
                a->controls[i].name);

    fprintf(out, "\naction: ");
    if (c->action == ACTION_ARGMAX)
        fprintf(out, "the most probable value of each control (the first of ties)\n");
    else
        fprintf(out, "each control sampled from σ(%g ln P(u)), seeded (seed %llu)\n", c->alpha,
                (unsigned long long)c->seed);
    fprintf(out, "prediction: prior(s) ← B(u) q(s) for the action taken (q(s) where a factor has no transition)\n");
    if (any_counts(m) && c->lr > 0) {
        fprintf(out, "\nlearning (Dirichlet, lr %g, only where counts > 0):\n", c->lr);
        for (int k = 0; k < a->n_outcomes; k++)
            if (m->tensors[a->outcomes[k].likelihood].counts)
                fprintf(out, "  %s += lr · o_%s ⊗ q(s)   (each step)\n", tname(m, a->outcomes[k].likelihood),
                        a->outcomes[k].name);
        for (int i = 0; i < a->n_factors; i++) {
            const AgentFactor *f = &a->factors[i];
            if (f->transition >= 0 && m->tensors[f->transition].counts)
                fprintf(out, "  %s += lr · %sq(%s) ⊗ q(%s)_previous   (each step after the first)\n",
                        tname(m, f->transition), f->control >= 0 ? "u ⊗ " : "", f->name, f->name);
            if (m->tensors[f->prior].counts)
                fprintf(out, "  %s += lr · q(%s)   (first step of an episode)\n", tname(m, f->prior), f->name);
        }
    }
}
