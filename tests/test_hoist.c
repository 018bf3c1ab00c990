/* test_hoist.c — frozen expressions moved out of the relaxation
 * (passes/hoist.c) and kept up to date by the session.
 *
 * Strict pc stores W x + b of the clamped input once instead of at every
 * relaxation step; fpa stores the activations of its frozen forward values
 * so that the solve and the gradients evaluate no tanh; ipc, which learns
 * at every step, hoists nothing that reads a param.  A hoisted value never
 * goes stale: after a param, an input or a fwd.* value changes behind the
 * phases' back, every phase gives what a fresh session in the same state
 * gives, bit for bit, in both engines. */
#include "testkit.h"

#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"

static const char *model_text =
    "model hoisted\n"
    "input x : [6]\n"
    "param W1 : [5, 6] = xavier\n"
    "param b1 : [5] = zeros\n"
    "param W2 : [3, 5] = xavier\n"
    "param b2 : [3] = zeros\n"
    "latent h : [5] ~ normal(W1 @ x + b1)\n"
    "observed y : [3] ~ categorical(W2 @ tanh(h) + b2)\n";

/* Whether any node phase `ph` evaluates has op `op` (reading buffer `buf`
 * among its inputs when buf >= 0). */
static bool phase_has(const Program *p, PhaseId ph, Op op, int buf)
{
    const Graph *g = &p->model->g;
    bool *seen = calloc((size_t)g->n_nodes + 1, 1);
    NodeId *stack = malloc(sizeof *stack * ((size_t)g->n_nodes + 1));
    int top = 0;
    bool found = false;
    for (int i = 0; i < p->phases[ph].n_assigns; i++)
        stack[top++] = p->phases[ph].assigns[i].src;
    while (top && !found) {
        NodeId id = stack[--top];
        if (seen[id])
            continue;
        seen[id] = true;
        const Node *n = &g->nodes[id];
        bool reads = buf < 0;
        for (int k = 0; k < n->n_in; k++) {
            const Node *in = &g->nodes[n->in[k]];
            reads |= in->op == OP_LOAD && g->attrs[in->attr].ints[0] == buf;
            stack[top++] = n->in[k];
        }
        found = n->op == op && reads;
    }
    free(seen);
    free(stack);
    return found;
}

static void test_pc_stores_the_clamped_prediction(void **state)
{
    (void)state;
    Kit k;
    kit_compile(&k, model_text);
    kit_session(&k, RULE_PC, 4, true);
    const Program *p = k.s->program;
    int x = kit_buf(&k, "x");
    assert_true(p->phases[PHASE_HOIST].n_assigns >= 1);
    assert_true(phase_has(p, PHASE_HOIST, OP_MATMUL, x));
    assert_false(phase_has(p, PHASE_VALUE_GRAD, OP_MATMUL, x));
    assert_false(phase_has(p, PHASE_ERRORS, OP_MATMUL, x));
    kit_free(&k);
}

static void test_fpa_stores_frozen_activations(void **state)
{
    (void)state;
    Kit k;
    kit_compile(&k, model_text);
    kit_session(&k, RULE_FPA, 4, true);
    const Program *p = k.s->program;
    assert_true(phase_has(p, PHASE_HOIST, OP_TANH, -1));
    assert_false(phase_has(p, PHASE_SOLVE, OP_TANH, -1));
    assert_false(phase_has(p, PHASE_PARAM_GRAD, OP_TANH, -1));
    kit_free(&k);
}

static void test_ipc_keeps_params_live(void **state)
{
    (void)state;
    Kit k;
    kit_compile(&k, model_text);
    kit_session(&k, RULE_IPC, 4, true);
    assert_true(phase_has(k.s->program, PHASE_VALUE_GRAD, OP_MATMUL, kit_buf(&k, "x")));
    kit_free(&k);
}

/* Every buffer of `from` copied into `to` (same model and batch). */
static void copy_state(Kit *to, const Kit *from)
{
    const Model *m = from->c.model;
    for (int b = 0; b < m->n_buffers; b++) {
        if (m->buffers[b].kind == BUF_HOIST || m->buffers[b].kind == BUF_TEMP)
            continue;
        int64_t n = kit_len(from, m->buffers[b].name);
        double *v = malloc(sizeof *v * (size_t)(n + 1));
        kit_get(from, m->buffers[b].name, v);
        kit_set(to, m->buffers[b].name, v);
        free(v);
    }
}

/* After buffer `name` (or, for NULL, every param through an optimizer
 * step) of a relaxed session changes, each phase must give what a fresh
 * session in that state gives. */
static void expect_fresh(RuleKind rule, bool jit, const char *name)
{
    char err[512];
    Jit *j = jit ? jit_new(err, sizeof err) : NULL;
    Kit a, b;
    kit_compile(&a, model_text);
    kit_compile(&b, model_text);
    kit_session_engine(&a, rule, 4, false, jit ? engine_jit(j) : engine_interp());
    kit_session_engine(&b, rule, 4, false, jit ? engine_jit(j) : engine_interp());
    kit_random_data(&a, 3);
    assert_true(session_relax(a.s, 3, 0.2, NULL) >= 0 && session_param_grads(a.s));
    copy_state(&b, &a);
    kit_phase(&a, PHASE_ERRORS);   /* a's hoisted values are now current */
    /* The same change to both; b has run no phase, so it computes afresh. */
    Kit *both[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        if (name) {
            kit_randomize(both[i], name, -2, 2, 99);
        } else {   /* a learning step moves every param */
            TrainConfig sgd = both[i]->s->cfg;
            sgd.optimizer = OPT_SGD;
            sgd.lr = 0.5;
            Optimizer *o = optim_new(both[i]->s, &sgd, 0);
            optim_step(o, both[i]->s);
            optim_free(o);
        }
    }
    static const PhaseId phases[] = {PHASE_VALUE_GRAD, PHASE_ERRORS, PHASE_ENERGY, PHASE_PARAM_GRAD};
    for (int i = 0; i < 4; i++) {
        if (!a.s->program->phases[phases[i]].n_assigns)
            continue;
        kit_phase(&a, phases[i]);
        kit_phase(&b, phases[i]);
        const Model *m = a.c.model;
        for (int buf = 0; buf < m->n_buffers; buf++) {
            BufKind kind = m->buffers[buf].kind;
            if (kind != BUF_VGRAD && kind != BUF_ERROR && kind != BUF_ENERGY && kind != BUF_GRAD)
                continue;
            int64_t n = kit_len(&a, m->buffers[buf].name);
            double *va = malloc(sizeof *va * (size_t)n), *vb = malloc(sizeof *vb * (size_t)n);
            kit_get(&a, m->buffers[buf].name, va);
            kit_get(&b, m->buffers[buf].name, vb);
            if (memcmp(va, vb, sizeof *va * (size_t)n))
                fail_msg("%s, %s after changing %s: %s differs from a fresh session's", ir_rule_name(rule),
                         jit ? "jit" : "interp", name ? name : "the params", m->buffers[buf].name);
            free(va);
            free(vb);
        }
    }
    kit_free(&a);
    kit_free(&b);
    jit_free(j);
}

static void test_changed_leaves_are_recomputed(void **state)
{
    (void)state;
    for (int jit = 0; jit <= 1; jit++) {
        expect_fresh(RULE_PC, jit, "W1");
        expect_fresh(RULE_PC, jit, "x");
        expect_fresh(RULE_FPA, jit, "W2");
        expect_fresh(RULE_FPA, jit, "fwd.h");
        expect_fresh(RULE_PC, jit, NULL);
        expect_fresh(RULE_FPA, jit, NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pc_stores_the_clamped_prediction),
        cmocka_unit_test(test_fpa_stores_frozen_activations),
        cmocka_unit_test(test_ipc_keeps_params_live),
        cmocka_unit_test(test_changed_leaves_are_recomputed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
