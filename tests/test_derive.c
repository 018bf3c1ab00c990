/* test_derive.c — the correctness contract of the rule derivations
 * (SPEC §8): fpa equals bp at step size 1; fpa follows the binomial law on
 * a chain; the thesis's scalar graph converges to its backprop gradient;
 * pc gradients are the derivatives of the energy (finite differences).
 * Relaxations and ar: ar's closed form equals its loop and reaches bp at
 * unit step; feedback matrices equal to W change nothing and others scale
 * the messages; error weights ψ = I change nothing and their gradients are
 * energy derivatives; only learned relaxation params get an update. */
#include "testkit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_close_floor(const double *a, const double *b, int64_t n, double tol, double floor, const char *what)
{
    double d = kit_rel_diff(a, b, n, floor);
    if (!(d <= tol)) {
        for (int64_t i = 0; i < n && i < 6; i++)
            print_error("  %s[%lld]: %.12g vs %.12g\n", what, (long long)i, a[i], b[i]);
        fail_msg("%s differs: relative %g > %g", what, d, tol);
    }
}

static void expect_close(const double *a, const double *b, int64_t n, double tol, const char *what)
{
    expect_close_floor(a, b, n, tol, 1e-12, what);
}

/* Compares every error.* and grad.* buffer of two kits, relative to the
 * larger of a buffer's own scale and `floor`. */
static void expect_same_outputs_floor(Kit *a, Kit *b, double tol, double floor)
{
    const Model *m = a->c.model;
    for (int i = 0; i < m->n_buffers; i++) {
        const Buffer *buf = &m->buffers[i];
        if (buf->kind != BUF_ERROR && buf->kind != BUF_GRAD)
            continue;
        int64_t n = kit_len(a, buf->name);
        double *x = malloc(sizeof *x * (size_t)n), *y = malloc(sizeof *y * (size_t)n);
        kit_get(a, buf->name, x);
        kit_get(b, buf->name, y);
        expect_close_floor(x, y, n, tol, floor, buf->name);
        free(x);
        free(y);
    }
}

static void expect_same_outputs(Kit *a, Kit *b, double tol) { expect_same_outputs_floor(a, b, tol, 1e-12); }

static void bind_random_data(Kit *k, uint64_t seed)
{
    const Model *m = k->c.model;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role == ROLE_INPUT)
            kit_randomize(k, tensor->name, -1, 1, seed + (uint64_t)t);
        if (tensor->role == ROLE_OBSERVED && tensor->dist != DIST_CATEGORICAL)
            kit_randomize(k, tensor->name, -1, 1, seed + 100 + (uint64_t)t);
        if (tensor->role == ROLE_OBSERVED && tensor->dist == DIST_CATEGORICAL) {
            int64_t n = kit_len(k, tensor->name), width = ir_numel(ir_shape(&m->g, tensor->shape));
            double *v = calloc((size_t)n, sizeof *v);
            for (int64_t b = 0; b < n / width; b++)
                v[b * width + (b * 7 + (int64_t)seed) % width] = 1;
            kit_set(k, tensor->name, v);
            free(v);
        }
    }
}

static void test_fpa_equals_bp_at_unit_step(void **state)
{
    for (uint64_t seed = 1; seed <= 24; seed++) {
        char text[16384];
        int n;
        kit_random_dag(text, sizeof text, seed, seed % 2 == 0, &n);
        Kit fpa, bp;
        kit_compile(&fpa, text);
        kit_compile(&bp, text);
        fpa.c.model->train.step_size = 1;
        fpa.c.model->train.steps = n + 1;
        kit_session(&fpa, RULE_FPA, 3, true);
        kit_session(&bp, RULE_BP, 3, true);
        fpa.s->solve_enabled = seed % 3 != 0;   /* both the loop and the closed form */
        bind_random_data(&fpa, seed);
        bind_random_data(&bp, seed);
        assert_true(session_relax(fpa.s, n + 1, 1.0, NULL) >= 0);
        assert_true(session_param_grads(fpa.s));
        assert_true(session_relax(bp.s, 0, 1.0, NULL) >= 0);
        assert_true(session_param_grads(bp.s));
        expect_same_outputs(&fpa, &bp, 1e-12);
        kit_free(&fpa);
        kit_free(&bp);
    }
}

/* A chain x → h1 → … → hL → y with tanh links. */
static void chain_model(char *text, size_t len, int depth)
{
    size_t at = (size_t)snprintf(text, len, "model chain\ninput x : [3]\n");
    for (int i = 1; i <= depth; i++)
        at += (size_t)snprintf(text + at, len - at,
                               "param W%d : [3, 3] = normal(0.8)\nlatent h%d : [3] ~ normal(tanh(W%d @ %s%.0d))\n", i, i,
                               i, i == 1 ? "x" : "h", i == 1 ? 0 : i - 1);
    snprintf(text + at, len - at, "param V : [2, 3] = normal(0.8)\nobserved y : [2] ~ normal(V @ h%d)\n", depth);
}

static double binomial_tail(int n, double eta, int k)
{
    /* P[Bin(n, eta) >= k] = 1 − Σ_{j<k} C(n,j) η^j (1−η)^{n−j} */
    double below = 0;
    for (int j = 0; j < k; j++) {
        double logc = lgamma(n + 1.0) - lgamma(j + 1.0) - lgamma(n - j + 1.0);
        below += exp(logc + j * log(eta) + (n - j) * log1p(-eta));
    }
    return 1 - below;
}

static void test_fpa_chain_binomial_law(void **state)
{
    const int depth = 6, steps = 30;
    const double eta = 0.2;
    char text[4096];
    chain_model(text, sizeof text, depth);
    Kit fpa, bp;
    kit_compile(&fpa, text);
    kit_compile(&bp, text);
    kit_session(&fpa, RULE_FPA, 2, true);
    kit_session(&bp, RULE_BP, 2, true);
    fpa.s->solve_enabled = false;   /* the law is checked on the Euler loop itself */
    bind_random_data(&fpa, 7);
    bind_random_data(&bp, 7);
    assert_true(session_relax(fpa.s, steps, eta, NULL) == steps);
    assert_true(session_relax(bp.s, 0, 1, NULL) >= 0);
    for (int i = 1; i <= depth; i++) {
        char name[32];
        snprintf(name, sizeof name, "error.h%d", i);
        int k = depth - i + 1;   /* edges above the output */
        double ratio = binomial_tail(steps, eta, k);
        double a[6], b[6];
        kit_get(&fpa, name, a);
        kit_get(&bp, name, b);
        for (int j = 0; j < 6; j++)
            b[j] *= ratio;
        expect_close(a, b, 6, 1e-9, name);
    }
    kit_free(&fpa);
    kit_free(&bp);
}

static const char *scalar_graph_text(void)
{
    static char text[2048];
    size_t len;
    char *file = read_file(FEP_SOURCE_DIR "/models/scalar_graph.fep", &len);
    assert_non_null(file);
    snprintf(text, sizeof text, "%s", file);
    free(file);
    return text;
}

/* Thesis-ch6.md §3.1: with v4 clamped to 3, the error at v0 converges to
 * +31.827315 = −∂L/∂v0 for L = ½(v4 − 3)², and ∂L/∂θ = −2.461039. */
static void test_scalar_graph_reference_values(void **state)
{
    Kit fpa, bp;
    kit_compile(&fpa, scalar_graph_text());
    kit_compile(&bp, scalar_graph_text());
    kit_session(&fpa, RULE_FPA, 1, true);
    kit_session(&bp, RULE_BP, 1, true);
    double target = 3;
    kit_set(&fpa, "v4", &target);
    kit_set(&bp, "v4", &target);
    assert_true(session_relax(fpa.s, 60, 0.5, NULL) == 60);
    assert_true(session_param_grads(fpa.s));
    assert_true(session_relax(bp.s, 0, 1, NULL) >= 0);
    assert_true(session_param_grads(bp.s));
    double e0, g_theta, e_bp, v3_fwd[1];
    kit_get(&fpa, "error.v0", &e0);
    kit_get(&fpa, "grad.theta", &g_theta);
    kit_get(&bp, "error.v0", &e_bp);
    kit_get(&bp, "fwd.v3", v3_fwd);
    assert_true(fabs(e0 - 31.827315) < 1e-6 * 31.827315 + 1e-6);
    assert_true(fabs(e_bp - 31.827315) < 1e-6 * 31.827315 + 1e-6);
    assert_true(fabs(g_theta - (-2.461039)) < 1e-6 * 2.461039 + 1e-6);
    assert_true(fabs(v3_fwd[0] - 25) < 1e-12);
    kit_free(&fpa);
    kit_free(&bp);
}

/* A rule's closed-form solve reproduces its Jacobi Euler loop exactly
 * (values, errors, gradients) on random DAGs with mixed path lengths, for
 * step sizes inside and outside (0, 1] and several step counts. */
static void expect_solve_equals_iteration(RuleKind rule, uint64_t dag_seed)
{
    static const double etas[] = {0.1, 0.5, 1.0, 1.3};
    static const int steps[] = {0, 1, 7, 20};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        char text[16384];
        int n;
        kit_random_dag(text, sizeof text, seed + dag_seed, seed % 2 == 0, &n);
        Kit loop, closed;
        kit_compile(&loop, text);
        kit_compile(&closed, text);
        kit_session(&loop, rule, 2, true);
        kit_session(&closed, rule, 2, true);
        assert_true(closed.s->program->solve_coeff_buf >= 0);
        assert_int_equal(closed.s->program->solve_transient, rule == RULE_AR);
        loop.s->solve_enabled = false;
        bind_random_data(&loop, seed);
        bind_random_data(&closed, seed);
        double eta = etas[seed % 4];
        int count = steps[(seed / 4) % 4];
        assert_true(session_relax(loop.s, count, eta, NULL) == count);
        assert_true(session_relax(closed.s, count, eta, NULL) == count);
        assert_true(session_param_grads(loop.s) && session_param_grads(closed.s));
        expect_same_outputs(&loop, &closed, 1e-12);
        kit_free(&loop);
        kit_free(&closed);
    }
}

/* fpa: the binomial-tail drive; ar: the drive plus the decaying start. */
static void test_fpa_solve_equals_iteration(void **state) { expect_solve_equals_iteration(RULE_FPA, 200); }

static void test_ar_solve_equals_iteration(void **state) { expect_solve_equals_iteration(RULE_AR, 300); }

/* An unrolled LSTM-like pair of state families: paths of every length from
 * the output, too many level terms for one expression, so fpa solves level
 * by level; it must still equal the Euler loop. */
static void test_fpa_levels_equal_iteration(void **state)
{
    (void)state;
    static const char *text =
        "model deep\n"
        "input x[t in 0..12] : [3]\n"
        "param A : [4, 4] = xavier\n"
        "param B : [4, 4] = xavier\n"
        "param C : [4, 4] = xavier\n"
        "param D : [4, 4] = xavier\n"
        "param U : [4, 3] = xavier\n"
        "param W : [3, 4] = xavier\n"
        "latent c[t in 0..12] : [4] ~ normal(sigmoid(A @ c[t-1]) * tanh(B @ h[t-1] + U @ x[t]))\n"
        "latent h[t in 0..12] : [4] ~ normal(tanh(C @ c[t]) * sigmoid(D @ h[t-1]))\n"
        "observed y : [3] ~ categorical(W @ h[11])\n";
    static const double etas[] = {0.1, 0.5, 1.0, 1.3};
    static const int steps[] = {0, 1, 7, 20, 40};
    for (int i = 0; i < 20; i++) {
        Kit loop, levels;
        kit_compile(&loop, text);
        kit_compile(&levels, text);
        kit_session(&loop, RULE_FPA, 3, true);
        kit_session(&levels, RULE_FPA, 3, true);
        assert_true(levels.s->program->solve_by_level);
        assert_true(levels.s->program->solve_depth > 12);
        loop.s->solve_enabled = false;
        bind_random_data(&loop, (uint64_t)i);
        bind_random_data(&levels, (uint64_t)i);
        double eta = etas[i % 4];
        int count = steps[i / 4];
        assert_true(session_relax(loop.s, count, eta, NULL) == count);
        assert_true(session_relax(levels.s, count, eta, NULL) == count);
        assert_true(session_param_grads(loop.s) && session_param_grads(levels.s));
        /* deep nodes' errors are small (few hops arrive at small η): 1e-12
         * of the model's scale, not of theirs */
        expect_same_outputs_floor(&loop, &levels, 1e-12, 1e-2);
        kit_free(&loop);
        kit_free(&levels);
    }
}

static double distance_to(Kit *k, const double *ref, int64_t n, const char *name)
{
    double *v = malloc(sizeof *v * (size_t)n), worst = 0;
    kit_get(k, name, v);
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(v[i] - ref[i]));
    free(v);
    return worst;
}

/* Heun follows the continuous relaxation flow dv/dt = −∂F/∂v more closely
 * than Euler at the same step size (second versus first order); momentum
 * still descends the energy; tol stops once the energy settles. */
static void test_integrators(void **state)
{
    char text[4096];
    chain_model(text, sizeof text, 3);
    Kit k;
    kit_compile(&k, text);
    kit_session(&k, RULE_PC, 2, true);
    bind_random_data(&k, 3);
    /* Reference: the flow at t = 3 from tiny Euler steps. */
    assert_true(session_relax(k.s, 30000, 1e-4, NULL) == 30000);
    int64_t n = kit_len(&k, "h1");
    double *ref = malloc(sizeof *ref * (size_t)n);
    kit_get(&k, "h1", ref);
    assert_true(session_relax(k.s, 30, 0.1, NULL) == 30);
    double euler = distance_to(&k, ref, n, "h1");
    k.s->cfg.integrator = INTEGRATOR_HEUN;
    assert_true(session_relax(k.s, 30, 0.1, NULL) == 30);
    double heun = distance_to(&k, ref, n, "h1");
    assert_true(heun < euler / 10);
    /* Momentum: a different path to the same fixed point, downhill. */
    k.s->cfg.integrator = INTEGRATOR_EULER;
    assert_true(session_relax(k.s, 3000, 0.05, NULL) == 3000);
    kit_get(&k, "h1", ref);   /* now the fixed point */
    assert_true(session_relax(k.s, 0, 0.1, NULL) == 0);
    double start = session_energy(k.s), start_gap = distance_to(&k, ref, n, "h1");
    k.s->cfg.momentum = 0.5;
    assert_true(session_relax(k.s, 400, 0.05, NULL) == 400);
    assert_true(session_energy(k.s) < start);
    assert_true(distance_to(&k, ref, n, "h1") < 1e-3 * start_gap);
    /* tol: stops well before the step budget once changes are tiny. */
    k.s->cfg.momentum = 0;
    k.s->cfg.tol = 1e-6;
    int taken = session_relax(k.s, 100000, 0.1, NULL);
    assert_true(taken > 5 && taken < 100000);
    free(ref);
    kit_free(&k);
}

/* Every vgrad.* and grad.* buffer of k equals the central difference of
 * the total energy in its target at the current values. */
static void expect_energy_derivatives(Kit *k)
{
    const Model *m = k->c.model;
    for (int b = 0; b < m->n_buffers; b++) {
        const Buffer *buf = &m->buffers[b];
        if (buf->kind != BUF_GRAD && buf->kind != BUF_VGRAD)
            continue;
        const char *target = m->tensors[buf->tensor].name;
        int64_t len = kit_len(k, target);
        double *x = malloc(sizeof *x * (size_t)len), *ad = malloc(sizeof *ad * (size_t)len),
               *fd = malloc(sizeof *fd * (size_t)len);
        kit_get(k, buf->name, ad);
        kit_get(k, target, x);
        for (int64_t i = 0; i < len; i++) {
            double keep = x[i], h = 1e-5 * fmax(1, fabs(keep));
            x[i] = keep + h;
            kit_set(k, target, x);
            double up = kit_total_energy(k);
            x[i] = keep - h;
            kit_set(k, target, x);
            double down = kit_total_energy(k);
            x[i] = keep;
            kit_set(k, target, x);
            fd[i] = (up - down) / (2 * h);
        }
        expect_close_floor(ad, fd, len, 1e-6, 1e-4, buf->name);
        free(x);
        free(ad);
        free(fd);
    }
}

/* pc: vgrad.v and grad.θ are the derivatives of the energy at the current
 * values, checked by central differences on random DAG models. */
static void test_pc_gradients_are_energy_derivatives(void **state)
{
    for (uint64_t seed = 1; seed <= 10; seed++) {
        char text[16384];
        int n;
        kit_random_dag(text, sizeof text, seed + 50, seed % 2 == 1, &n);
        Kit k;
        kit_compile(&k, text);
        kit_session(&k, RULE_PC, 2, true);
        bind_random_data(&k, seed);
        assert_true(session_relax(k.s, 3, 0.1, NULL) == 3);
        kit_phase(&k, PHASE_VALUE_GRAD);
        assert_true(session_param_grads(k.s));
        expect_energy_derivatives(&k);
        kit_free(&k);
    }
}

/* ---- ar and the relaxations ---- */

static void open_rule(Kit *k, const char *text, RuleSpec rule)
{
    kit_compile(k, text);
    k->c.model->train.rule = rule;
    kit_session(k, rule.kind, 2, true);
}

/* At step size 1 and at least depth steps the start has left every node
 * and ar's activities are the backprop adjoints: its errors (−x) and
 * gradients equal bp's; at a small step they approach them. */
static void test_ar_reaches_bp(void **state)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        char text[16384];
        int n;
        kit_random_dag(text, sizeof text, seed + 400, seed % 2 == 1, &n);
        Kit ar, bp;
        open_rule(&ar, text, (RuleSpec){.kind = RULE_AR});
        open_rule(&bp, text, (RuleSpec){.kind = RULE_BP});
        ar.s->solve_enabled = seed % 3 != 0;
        bind_random_data(&ar, seed);
        bind_random_data(&bp, seed);
        assert_true(session_relax(ar.s, n + 1, 1.0, NULL) >= 0 && session_param_grads(ar.s));
        assert_true(session_relax(bp.s, 0, 1.0, NULL) >= 0 && session_param_grads(bp.s));
        expect_same_outputs(&ar, &bp, 1e-12);
        kit_free(&ar);
        kit_free(&bp);
    }
}

static void copy_buffer(Kit *k, const char *from, const char *to, double scale)
{
    int64_t n = kit_len(k, from);
    double *v = malloc(sizeof *v * (size_t)n);
    kit_get(k, from, v);
    for (int64_t i = 0; i < n; i++)
        v[i] *= scale;
    kit_set(k, to, v);
    free(v);
}

/* backward = learned | random: a feedback matrix equal to W reproduces the
 * exact rule (pc, fpa, ar, bp) (values, errors, gradients; grad.back.W = grad.W when
 * learned); one equal to 2W doubles the messages a value node receives. */
static void test_feedback_matrices(void **state)
{
    char text[4096];
    chain_model(text, sizeof text, 3);
    static const RuleKind kinds[] = {RULE_PC, RULE_FPA, RULE_AR, RULE_BP};
    for (int i = 0; i < 4; i++) {
        for (BackwardMode mode = BACKWARD_LEARNED; mode <= BACKWARD_RANDOM; mode++) {
            Kit exact, fb;
            open_rule(&exact, text, (RuleSpec){.kind = kinds[i]});
            open_rule(&fb, text, (RuleSpec){.kind = kinds[i], .backward = mode});
            /* W1 multiplies the input, which receives no messages: no back.W1 */
            assert_true(ir_model_find_tensor(fb.c.model, "back.W1") < 0);
            for (int l = 2; l <= 3; l++) {
                char w[16], back[24];
                snprintf(w, sizeof w, "W%d", l);
                snprintf(back, sizeof back, "back.W%d", l);
                copy_buffer(&fb, w, back, 1);
            }
            copy_buffer(&fb, "V", "back.V", 1);
            bind_random_data(&exact, 7);
            bind_random_data(&fb, 7);
            assert_true(session_relax(exact.s, 5, 0.3, NULL) >= 0 && session_param_grads(exact.s));
            assert_true(session_relax(fb.s, 5, 0.3, NULL) >= 0 && session_param_grads(fb.s));
            expect_same_outputs(&exact, &fb, 1e-12);
            int64_t len = kit_len(&fb, "W2");
            double *w0 = malloc(sizeof *w0 * (size_t)len), *w1 = malloc(sizeof *w1 * (size_t)len),
                   *b0 = malloc(sizeof *b0 * (size_t)len), *b1 = malloc(sizeof *b1 * (size_t)len);
            kit_get(&fb, "W2", w0);
            kit_get(&fb, "back.W2", b0);
            TrainConfig sgd = fb.s->cfg;
            sgd.optimizer = OPT_SGD;
            sgd.lr = 0.1;
            Optimizer *o = optim_new(fb.s, &sgd, 0);
            optim_step(o, fb.s);
            optim_free(o);
            kit_get(&fb, "W2", w1);
            kit_get(&fb, "back.W2", b1);
            /* learned: back.W takes W's update (thesis §3.5); random: fixed */
            for (int64_t j = 0; j < len; j++) {
                w1[j] -= w0[j];
                b1[j] -= b0[j];
            }
            if (mode == BACKWARD_LEARNED)
                expect_close(b1, w1, len, 1e-12, "back.W2 update");
            else
                for (int64_t j = 0; j < len; j++)
                    assert_true(b1[j] == 0);
            assert_int_equal(ir_model_find_buffer(fb.c.model, "grad.back.W2") >= 0, mode == BACKWARD_LEARNED);
            free(w0);
            free(w1);
            free(b0);
            free(b1);
            kit_free(&exact);
            kit_free(&fb);
        }
    }
    /* pc at the feedforward start: every message is Wᵀ(f' ⊙ ε); back = 2W doubles them. */
    Kit exact, fb;
    open_rule(&exact, text, (RuleSpec){.kind = RULE_PC});
    open_rule(&fb, text, (RuleSpec){.kind = RULE_PC, .backward = BACKWARD_LEARNED});
    copy_buffer(&fb, "W3", "back.W3", 2);
    copy_buffer(&fb, "V", "back.V", 2);
    copy_buffer(&fb, "W2", "back.W2", 2);
    bind_random_data(&exact, 3);
    bind_random_data(&fb, 3);
    kit_phase(&exact, PHASE_INIT);
    kit_phase(&fb, PHASE_INIT);
    kit_phase(&exact, PHASE_VALUE_GRAD);
    kit_phase(&fb, PHASE_VALUE_GRAD);
    int64_t len = kit_len(&fb, "vgrad.h3");
    double *a = malloc(sizeof *a * (size_t)len), *b = malloc(sizeof *b * (size_t)len);
    kit_get(&exact, "vgrad.h3", a);
    kit_get(&fb, "vgrad.h3", b);
    for (int64_t i = 0; i < len; i++)
        a[i] *= 2;
    expect_close(b, a, len, 1e-12, "vgrad.h3 with back.V = 2V");
    free(a);
    free(b);
    kit_free(&exact);
    kit_free(&fb);
}

static void set_identity(Kit *k, const char *name, int n)
{
    double *v = calloc((size_t)(n * n), sizeof *v);
    for (int i = 0; i < n; i++)
        v[i * n + i] = 1;
    kit_set(k, name, v);
    free(v);
}

/* error_weights: ψ = I reproduces the one-to-one errors; with random ψ,
 * pc's value gradients and ∂F/∂ψ are the energy's derivatives. */
static void test_error_weights(void **state)
{
    char text[4096];
    chain_model(text, sizeof text, 2);
    static const RuleKind kinds[] = {RULE_PC, RULE_FPA, RULE_IPC};
    for (int i = 0; i < 3; i++) {
        Kit exact, ew;
        open_rule(&exact, text, (RuleSpec){.kind = kinds[i]});
        open_rule(&ew, text, (RuleSpec){.kind = kinds[i], .error_weights = ERROR_WEIGHTS_LEARNED});
        set_identity(&ew, "psi.h1", 3);
        set_identity(&ew, "psi.h2", 3);
        set_identity(&ew, "psi.y", 2);
        bind_random_data(&exact, 5);
        bind_random_data(&ew, 5);
        assert_true(session_relax(exact.s, 6, 0.2, NULL) >= 0 && session_param_grads(exact.s));
        assert_true(session_relax(ew.s, 6, 0.2, NULL) >= 0 && session_param_grads(ew.s));
        expect_same_outputs(&exact, &ew, 1e-12);
        kit_free(&exact);
        kit_free(&ew);
    }
    for (ErrorWeights mode = ERROR_WEIGHTS_LEARNED; mode <= ERROR_WEIGHTS_RANDOM; mode++) {
        Kit k;
        open_rule(&k, text, (RuleSpec){.kind = RULE_PC, .error_weights = mode});
        bind_random_data(&k, 9);
        assert_true(session_relax(k.s, 3, 0.1, NULL) == 3);
        kit_phase(&k, PHASE_VALUE_GRAD);
        assert_true(session_param_grads(k.s));
        expect_energy_derivatives(&k);
        assert_int_equal(ir_model_find_buffer(k.c.model, "grad.psi.h1") >= 0, mode == ERROR_WEIGHTS_LEARNED);
        kit_free(&k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fpa_equals_bp_at_unit_step),
        cmocka_unit_test(test_fpa_chain_binomial_law),
        cmocka_unit_test(test_fpa_solve_equals_iteration),
        cmocka_unit_test(test_integrators),
        cmocka_unit_test(test_scalar_graph_reference_values),
        cmocka_unit_test(test_pc_gradients_are_energy_derivatives),
        cmocka_unit_test(test_ar_solve_equals_iteration),
        cmocka_unit_test(test_fpa_levels_equal_iteration),
        cmocka_unit_test(test_ar_reaches_bp),
        cmocka_unit_test(test_feedback_matrices),
        cmocka_unit_test(test_error_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
