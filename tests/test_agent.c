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

static char *tmaze_text(const char *cue_table, int cue_size, const char *policy)
{
    char *path = FEP_SOURCE_DIR "/models/agents/tmaze.fep";
    size_t len;
    char *text = read_file(path, &len);
    assert_non_null(text);
    char *out = xmalloc(len + 1024);
    out[0] = 0;
    /* swap the cue table and the policy line of the shipped model */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (cue_table && !strncmp(line, "const    A_cue", 14))
            snprintf(line = xmalloc(256), 256, "const    A_cue[o, l, k] : [%d, 4, 2] = %s", cue_size, cue_table);
        else if (cue_table && !strncmp(line, "outcome  cue", 12))
            snprintf(line = xmalloc(256), 256, "outcome  cue : [%d] ~ categorical(likelihood = A_cue(loc, ctx))",
                     cue_size);
        else if (policy && !strncmp(line, "  policy", 8))
            snprintf(line = xmalloc(256), 256, "  policy = %s", policy);
        strcat(out, line);
        strcat(out, "\n");
        if (line < text || line >= text + len)
            free(line);
    }
    free(text);
    return out;
}

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
        char *text = tmaze_text(NULL, 0, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tmaze_one_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
