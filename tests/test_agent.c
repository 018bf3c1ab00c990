/* test_agent.c — discrete active inference (passes/agent.c, runtime/agent.c)
 * against the reference values of thesis-notes/thesis-action.md §5.4: the
 * T-maze's one-step expected free energies and action posterior (T1), EFE
 * against FEEF on its null- and ambiguous-cue variants (T2), exact Bayes in
 * one step for a single factor (thesis eq. 2.42), and the compiled kernels
 * against the reference interpreter (f64, 1e-12).  The closed-loop checks
 * (reward rates, grid world, learning) are in test_act.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "runtime/agent.h"
#include "testkit.h"

typedef struct AgentKit {
    Compiler c;
    Jit *jit;
    AgentSession *as;
} AgentKit;

/* The shipped T-maze with the lines that start with edits[2i] replaced by
 * edits[2i + 1] (NULL-terminated pairs). */
static char *model_with(const char *path, const char *const *edits)
{
    size_t len;
    char *text = read_file(path, &len);
    assert_non_null(text);
    size_t cap = len + 4096;
    char *out = xmalloc(cap);
    out[0] = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *use = line;
        for (int i = 0; edits && edits[i]; i += 2)
            if (!strncmp(line, edits[i], strlen(edits[i])))
                use = edits[i + 1];
        assert_true(strlen(out) + strlen(use) + 2 < cap);
        strcat(out, use);
        strcat(out, "\n");
    }
    free(text);
    return out;
}

static const char *const TMAZE = FEP_SOURCE_DIR "/models/agents/tmaze.fep";
/* the cue says "null" away from the cue place (thesis-action.md T2) */
static const char *const NULL_CUE[] = {
    "const    A_cue", "const A_cue[o, l, k] : [3, 4, 2] = where(l == 3, o == k, o == 2)",
    "outcome  cue", "outcome cue : [3] ~ categorical(likelihood = A_cue(loc, ctx))", NULL};

static void open_agent(AgentKit *k, const char *text, bool jit, int batch)
{
    memset(k, 0, sizeof *k);
    if (!compile_model(&k->c, "<test>", text, stderr))
        fail_msg("model does not compile");
    char err[512] = "";
    Engine engine = engine_interp();
    if (jit) {
        k->jit = jit_new(err, sizeof err);
        assert_non_null(k->jit);
        engine = engine_jit(k->jit);
    }
    k->as = agent_session_new(&k->c.diag, k->c.model, batch, true, engine, err, sizeof err);
    if (!k->as)
        fail_msg("%s", err);
}

static void close_agent(AgentKit *k)
{
    agent_session_free(k->as);
    jit_free(k->jit);
    compiler_free(&k->c);
}

static void step(AgentKit *k, const int *obs)
{
    char err[256];
    assert_true(agent_observe(k->as, obs, err, sizeof err));
    assert_true(agent_infer(k->as));
    assert_true(agent_plan(k->as));
}

static void read_buf(AgentKit *k, const char *name, double *out, int64_t n)
{
    assert_int_equal(agent_read(k->as, name, out, n), n);
}

static void assert_near4(const double *got, const double *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 5e-5)
            fail_msg("%s[%d] = %.6f, expected %.4f", what, i, got[i], want[i]);
}

/* T1: at the centre with the context unknown, the cue's information gain
 * (ln 2) makes it the best first move. */
static void test_tmaze_one_step(void **state)
{
    for (int jit = 0; jit < 2; jit++) {
        char *text = model_with(TMAZE, NULL);
        AgentKit k;
        open_agent(&k, text, jit, 1);
        free(text);
        assert_true(agent_reset(k.as));
        int obs[3] = {0, 0, 0};   /* centre, no reward, a cue that means nothing here */
        step(&k, obs);
        double G[4], P[4], ig[4];
        read_buf(&k, "G", G, 4);
        read_buf(&k, "P.move", P, 4);
        read_buf(&k, "G.info_gain", ig, 4);
        assert_near4(G, (double[]){5.1304, 4.5353, 4.5353, 4.4372}, 4, "G");
        assert_near4(P, (double[]){0.0000, 0.1471, 0.1471, 0.7059}, 4, "q(a)");
        assert_near4(ig, (double[]){0, 0.5951, 0.5951, 0.6931}, 4, "info gain");
        /* go to the cue, see "left" (context 0): the left arm is now best */
        int act[1] = {3};
        char err[256];
        assert_true(agent_set_action(k.as, act, err, sizeof err));
        assert_true(agent_predict(k.as));
        int cue_obs[3] = {3, 0, 0};
        step(&k, cue_obs);
        double ctx[2];
        read_buf(&k, "q.ctx", ctx, 2);
        assert_near4(ctx, (double[]){1, 0}, 2, "context belief");
        read_buf(&k, "G", G, 4);
        assert_near4(G, (double[]){5.1304, 2.2504, 8.0104, 5.1304}, 4, "G after the cue");
        read_buf(&k, "P.move", P, 4);
        assert_true(P[1] > 0.9999);
        close_agent(&k);
    }
}

/* G and P(move) at the centre for a T-maze variant and policy. */
static void centre_step(const char *const *edits, double *G, double *P, int n_cue)
{
    char *text = model_with(TMAZE, edits);
    AgentKit k;
    open_agent(&k, text, false, 1);
    free(text);
    assert_true(agent_reset(k.as));
    step(&k, (int[]){0, 0, n_cue == 3 ? 2 : 0});
    read_buf(&k, "G", G, 4);
    read_buf(&k, "P.move", P, 4);
    close_agent(&k);
}

/* T2: the FEEF (risk alone) drops the ambiguity: on the null-cue maze the
 * arms tie with the cue; on the ambiguous one the FEEF prefers the arms,
 * whose noisy outcomes it mistakes for information ("noisy TV"). */
static void test_efe_vs_feef(void **state)
{
    double G[4], P[4];
    centre_step(NULL_CUE, G, P, 3);
    assert_near4(G, (double[]){5.5359, 4.9407, 4.9407, 4.8427}, 4, "EFE, null cue");
    assert_near4(P, (double[]){0, 0.1471, 0.1471, 0.7059}, 4, "EFE q(a), null cue");
    const char *feef_null[] = {NULL_CUE[0], NULL_CUE[1], NULL_CUE[2], NULL_CUE[3], "  policy", "  policy = feef", NULL};
    centre_step(feef_null, G, P, 3);
    assert_near4(G, (double[]){5.5359, 4.8427, 4.8427, 4.8427}, 4, "FEEF, null cue");
    assert_near4(P, (double[]){0, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 4, "FEEF q(a), null cue");
    const char *feef[] = {"  policy", "  policy = feef", NULL};
    centre_step(feef, G, P, 2);
    assert_near4(G + 1, (double[]){3.7441, 3.7441, 4.4372}, 3, "FEEF, ambiguous cue");
    assert_near4(P, (double[]){0, 0.5, 0.5, 0}, 4, "FEEF q(a), ambiguous cue");
    /* information gain off: utility alone, every move ties */
    const char *utility[] = {"  policy", "  policy = efe(utility = on)", NULL};
    centre_step(utility, G, P, 2);
    assert_near4(G, (double[]){5.1304, 5.1304, 5.1304, 5.1304}, 4, "utility alone");
}

/* Open-loop two-step policies (thesis-action.md T1): (cue, cue) best at
 * 8.8745, then (cue, arm) and (arm, cue) at 8.9725; the first action's
 * marginal is the one-step posterior's. */
static void test_tmaze_two_steps(void **state)
{
    const char *edits[] = {"  horizon", "  horizon = 2", NULL};
    char *text = model_with(TMAZE, edits);
    AgentKit k;
    open_agent(&k, text, false, 1);
    free(text);
    assert_true(agent_reset(k.as));
    step(&k, (int[]){0, 0, 0});
    double G[16], P[4];
    read_buf(&k, "G", G, 16);
    read_buf(&k, "P.move", P, 4);
    int best = 0;
    for (int i = 1; i < 16; i++)
        best = G[i] < G[best] ? i : best;
    assert_int_equal(best, 3 * 4 + 3);   /* (cue, cue) */
    assert_near4(&G[15], (double[]){8.8745}, 1, "G(cue, cue)");
    assert_near4((double[]){G[3 * 4 + 1], G[1 * 4 + 3]}, (double[]){8.9725, 8.9725}, 2, "G(cue, arm), G(arm, cue)");
    assert_near4(P, (double[]){0, 0.1471, 0.1471, 0.7059}, 4, "first-action marginal");
    close_agent(&k);
}

/* Thesis eq. 2.42: for one factor the posterior is exact Bayes in one
 * step, σ(ln D + ln Aᵀo) = D ⊙ A[o, :] / Σ. */
static void test_exact_bayes(void **state)
{
    const char *text = "const A : [3, 4] = [[0.1, 0.5, 0.2, 0.7], [0.3, 0.25, 0.2, 0.1], [0.6, 0.25, 0.6, 0.2]]\n"
                       "hidden s : [4] ~ categorical(prior = [0.1, 0.2, 0.3, 0.4])\n"
                       "outcome o : [3] ~ categorical(likelihood = A(s))\n";
    const double A[3][4] = {{0.1, 0.5, 0.2, 0.7}, {0.3, 0.25, 0.2, 0.1}, {0.6, 0.25, 0.6, 0.2}};
    const double D[4] = {0.1, 0.2, 0.3, 0.4};
    for (int jit = 0; jit < 2; jit++) {
        AgentKit k;
        open_agent(&k, text, jit, 3);
        assert_true(agent_reset(k.as));
        step(&k, (int[]){0, 1, 2});   /* three agents, one outcome value each */
        double q[12];
        read_buf(&k, "q.s", q, 12);
        for (int o = 0; o < 3; o++) {
            double z = 0;
            for (int s = 0; s < 4; s++)
                z += D[s] * A[o][s];
            for (int s = 0; s < 4; s++)
                if (fabs(q[o * 4 + s] - D[s] * A[o][s] / z) > 1e-14)
                    fail_msg("q(s = %d | o = %d) = %.17g, Bayes gives %.17g", s, o, q[o * 4 + s], D[s] * A[o][s] / z);
        }
        close_agent(&k);
    }
}

/* Every agent buffer after a scripted run (3 agents, learning on): the
 * compiled kernels against the reference interpreter, f64, 1e-12.  The
 * models cover several factors (mean-field sweeps), joint outcome entropy,
 * a two-step tree, learned counts (digamma, novelty) and state preferences. */
static void run_script(AgentKit *k, const int *obs_seq, int n_obs, int steps)
{
    char err[256];
    assert_true(agent_reset(k->as));
    for (int t = 0; t < steps; t++) {
        int obs[3 * 4], act[3 * 4];
        for (int i = 0; i < 3 * n_obs; i++)
            obs[i] = obs_seq[(t * 3 * n_obs + i) % (6 * n_obs)];
        assert_true(agent_observe(k->as, obs, err, sizeof err));
        assert_true(agent_infer(k->as));
        assert_true(agent_learn(k->as));
        assert_true(agent_plan(k->as));
        for (int b = 0; b < 3; b++)
            act[b] = (t + b) % k->as->a->controls[0].size;
        assert_true(agent_set_action(k->as, act, err, sizeof err));
        assert_true(agent_predict(k->as));
    }
}

static void test_jit_equals_interpreter(void **state)
{
    const char *two_steps[] = {"  horizon", "  horizon = 2", NULL};
    struct { const char *path; const char *const *edits; int n_obs; int obs[24]; } cases[] = {
        {TMAZE, two_steps, 3, {0, 0, 1, 3, 0, 0, 1, 1, 0, 3, 0, 1, 2, 2, 0, 0, 0, 1}},
        {FEP_SOURCE_DIR "/models/agents/explore.fep", NULL, 2, {0, 1, 1, 0, 2, 1, 3, 1, 0, 0, 2, 0}},
        {FEP_SOURCE_DIR "/models/agents/grid_noisy.fep", NULL, 1, {0, 3, 4, 1, 7, 8}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *text = model_with(cases[c].path, cases[c].edits);
        AgentKit k[2];
        for (int jit = 0; jit < 2; jit++) {
            open_agent(&k[jit], text, jit, 3);
            run_script(&k[jit], cases[c].obs, cases[c].n_obs, 4);
        }
        free(text);
        const Model *m = k[0].c.model;
        int compared = 0;
        for (int b = 0; b < m->n_buffers; b++) {
            if (m->buffers[b].kind != BUF_AGENT && !(m->buffers[b].kind == BUF_PARAM))
                continue;
            const char *name = m->buffers[b].name;
            int64_t n = agent_read(k[0].as, name, NULL, 0);
            double *x = xmalloc(sizeof *x * (size_t)n), *y = xmalloc(sizeof *y * (size_t)n);
            agent_read(k[0].as, name, x, n);
            assert_int_equal(agent_read(k[1].as, name, y, n), n);
            double d = kit_rel_diff(y, x, n, 1e-300);
            if (d > 1e-12)
                fail_msg("%s: buffer %s differs by %g between JIT and interpreter", cases[c].path, name, d);
            free(x);
            free(y);
            compared++;
        }
        assert_true(compared > 10);
        close_agent(&k[0]);
        close_agent(&k[1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tmaze_one_step),
        cmocka_unit_test(test_efe_vs_feef),
        cmocka_unit_test(test_tmaze_two_steps),
        cmocka_unit_test(test_exact_bayes),
        cmocka_unit_test(test_jit_equals_interpreter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
