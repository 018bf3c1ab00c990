/* test_hoist.c — the rewrites for execution: frozen expressions moved out
 * of the relaxation (passes/hoist.c) and kept up to date by the session,
 * and negated products (passes/simplify.c).
 *
 * Strict pc stores W x + b of the clamped input once instead of at every
 * relaxation step; fpa stores the activations of its frozen forward values
 * so that the solve and the gradients evaluate no tanh; ipc, which learns
 * at every step, hoists nothing that reads a param.  A hoisted value never
 * goes stale: after a param, an input or a fwd.* value changes behind the
 * phases' back, every phase gives what a fresh session in the same state
 * gives, bit for bit, in both engines.  Weight gradients −(Σ_b ε ⊗ x) run
 * as (Σ_b (−ε) ⊗ x), with the bits of the derivation as written. */
#include "testkit.h"

#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"

/* Weight gradients larger than twice a batch of errors (simplify.c). */
static const char *model_text =
    "model hoisted\n"
    "input x : [200]\n"
    "param W1 : [150, 200] = xavier\n"
    "param b1 : [150] = zeros\n"
    "param W2 : [3, 150] = xavier\n"
    "param b2 : [3] = zeros\n"
    "latent h : [150] ~ normal(W1 @ x + b1)\n"
    "observed y : [3] ~ categorical(W2 @ tanh(h) + b2)\n";

/* Whether any node phase `ph` evaluates has op `op` (reading buffer `buf`
 * among its inputs when buf >= 0). */
static bool phase_has(const Program *p, PhaseId ph, Op op, int buf)
{
    const Graph *g = &p->model->g;
    NodeId *nodes = malloc(sizeof *nodes * ((size_t)g->n_nodes + 1));
    int n = ir_phase_nodes(g, &p->phases[ph], nodes);
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        const Node *node = &g->nodes[nodes[i]];
        bool reads = buf < 0;
        for (int k = 0; k < node->n_in; k++) {
            const Node *in = &g->nodes[node->in[k]];
            reads |= in->op == OP_LOAD && g->attrs[in->attr].ints[0] == buf;
        }
        found = node->op == op && reads;
    }
    free(nodes);
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

/* Whether some result of phase ph is a negated product. */
static bool negates_a_product(const Program *p, PhaseId ph)
{
    const Graph *g = &p->model->g;
    for (int i = 0; i < p->phases[ph].n_assigns; i++) {
        const Node *n = &g->nodes[p->phases[ph].assigns[i].src];
        if (n->op == OP_NEG && g->nodes[n->in[0]].op == OP_MATMUL)
            return true;
    }
    return false;
}

static void test_negated_products_keep_their_bits(void **state)
{
    (void)state;
    static const RuleKind rules[] = {RULE_PC, RULE_FPA, RULE_BP};
    for (int r = 0; r < 3; r++)
        for (int f64 = 0; f64 <= 1; f64++) {
            Kit k;
            kit_compile(&k, model_text);
            kit_session(&k, rules[r], 4, f64);
            assert_false(negates_a_product(k.s->program, PHASE_PARAM_GRAD));
            kit_random_data(&k, 5);
            assert_true(session_relax(k.s, 3, 0.2, NULL) >= 0 && session_param_grads(k.s));
            int64_t n = kit_len(&k, "grad.W1") + kit_len(&k, "grad.W2");
            double *run = malloc(sizeof *run * (size_t)n), *as_derived = malloc(sizeof *run * (size_t)n);
            kit_get(&k, "grad.W1", run);
            kit_get(&k, "grad.W2", run + kit_len(&k, "grad.W1"));
            /* the derivation as written, untouched by the execution rewrites */
            Program *raw = pass_derive(&k.c.diag, k.c.model, k.s->rule, k.s->program->clamped);
            assert_non_null(raw);
            assert_true(negates_a_product(raw, PHASE_PARAM_GRAD));
            char err[256];
            assert_true(ir_interp_phase(raw, PHASE_PARAM_GRAD, &k.s->st, err, sizeof err));
            kit_get(&k, "grad.W1", as_derived);
            kit_get(&k, "grad.W2", as_derived + kit_len(&k, "grad.W1"));
            assert_memory_equal(run, as_derived, sizeof *run * (size_t)n);
            free(run);
            free(as_derived);
            kit_free(&k);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pc_stores_the_clamped_prediction),
        cmocka_unit_test(test_fpa_stores_frozen_activations),
        cmocka_unit_test(test_ipc_keeps_params_live),
        cmocka_unit_test(test_changed_leaves_are_recomputed),
        cmocka_unit_test(test_negated_products_keep_their_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
