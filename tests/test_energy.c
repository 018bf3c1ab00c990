/* test_energy.c — identities every energy term must satisfy (SPEC §2):
 * Gaussian energy is ≥ 0 and 0 at the prediction with gradient P(v − mean);
 * the categorical gradient is softmax − target, shift-invariant and finite
 * at extreme logits; after the feedforward init only observed nodes carry
 * error; clamped nodes never move; a learnable precision adds −½ log P and
 * its gradient matches finite differences. */
#include "testkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *gaussian_model =
    "model g\n"
    "input x : [3]\n"
    "param W : [4, 3] = normal(1)\n"
    "param V : [2, 4] = normal(1)\n"
    "const P : [4] = [0.5, 1, 2, 4]\n"
    "latent h : [4] ~ normal(tanh(W @ x), prec = P)\n"
    "observed y : [2] ~ normal(V @ h)\n";

static void test_gaussian_energy_nonnegative_and_zero_at_prediction(void **state)
{
    Kit k;
    kit_compile(&k, gaussian_model);
    kit_session(&k, RULE_PC, 5, true);
    kit_randomize(&k, "x", -1, 1, 1);
    kit_randomize(&k, "y", -2, 2, 2);
    assert_true(session_relax(k.s, 0, 0.1, NULL) == 0);
    double e[5], err_h[20];
    kit_get(&k, "energy", e);
    for (int b = 0; b < 5; b++)
        assert_true(e[b] >= 0);
    /* After the feedforward init only the observed node carries error. */
    kit_get(&k, "error.h", err_h);
    for (int i = 0; i < 20; i++)
        assert_true(err_h[i] == 0);
    /* Put y at its prediction: the energy vanishes. */
    double err_y[10], y[10];
    kit_get(&k, "error.y", err_y);
    kit_get(&k, "y", y);
    for (int i = 0; i < 10; i++)
        y[i] -= err_y[i];
    kit_set(&k, "y", y);
    kit_phase(&k, PHASE_ENERGY);
    kit_get(&k, "energy", e);
    for (int b = 0; b < 5; b++)
        assert_true(fabs(e[b]) < 1e-24);
    kit_free(&k);
}

/* ∂F/∂h = P(h − mean) for a node whose only energy is its own term. */
static void test_gaussian_gradient_is_precision_weighted_error(void **state)
{
    Kit k;
    kit_compile(&k, "model g\ninput x : [3]\nparam W : [4, 3] = normal(1)\nconst P : [4] = [0.5, 1, 2, 4]\n"
                    "latent h : [4] ~ normal(W @ x, prec = P)\n");
    kit_session(&k, RULE_PC, 2, true);
    kit_randomize(&k, "x", -1, 1, 3);
    assert_true(session_relax(k.s, 0, 0.1, NULL) == 0);
    double mean[8], h[8], g[8];
    kit_get(&k, "h", mean);
    kit_randomize(&k, "h", -3, 3, 4);
    kit_get(&k, "h", h);
    kit_phase(&k, PHASE_VALUE_GRAD);
    kit_get(&k, "vgrad.h", g);
    const double P[4] = {0.5, 1, 2, 4};
    for (int i = 0; i < 8; i++)
        assert_true(fabs(g[i] - P[i % 4] * (h[i] - mean[i])) < 1e-12);
    kit_free(&k);
}

static const char *categorical_model =
    "model c\n"
    "input x : [3]\n"
    "param W : [5, 3] = normal(1)\n"
    "param b : [5] = zeros\n"
    "observed y : [5] ~ categorical(W @ x + b)\n";

static void softmax(const double *l, double *out, int n)
{
    double mx = l[0], total = 0;
    for (int i = 1; i < n; i++)
        mx = fmax(mx, l[i]);
    for (int i = 0; i < n; i++)
        total += exp(l[i] - mx);
    for (int i = 0; i < n; i++)
        out[i] = exp(l[i] - mx) / total;
}

static void one_hot(Kit *k, int cls)
{
    double y[5] = {0};
    y[cls] = 1;
    kit_set(k, "y", y);
}

/* error.y = y − softmax(logits), i.e. ∂F/∂logits = softmax − y. */
static void test_categorical_gradient_is_softmax_minus_target(void **state)
{
    Kit k;
    kit_compile(&k, categorical_model);
    kit_session(&k, RULE_PC, 1, true);
    kit_randomize(&k, "x", -1, 1, 5);
    one_hot(&k, 2);
    assert_true(session_relax(k.s, 0, 0.1, NULL) >= 0);
    double W[15], x[3], logits[5] = {0}, p[5], err[5];
    kit_get(&k, "W", W);
    kit_get(&k, "x", x);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++)
            logits[i] += W[i * 3 + j] * x[j];
    softmax(logits, p, 5);
    kit_get(&k, "error.y", err);
    for (int i = 0; i < 5; i++)
        assert_true(fabs(-err[i] - (p[i] - (i == 2))) < 1e-12);
    /* Shift invariance: adding a constant to every logit changes nothing. */
    double shifted[5] = {7, 7, 7, 7, 7}, err2[5];
    kit_set(&k, "b", shifted);
    kit_phase(&k, PHASE_ERRORS);
    kit_get(&k, "error.y", err2);
    for (int i = 0; i < 5; i++)
        assert_true(fabs(err2[i] - err[i]) < 1e-12);
    kit_free(&k);
}

static void test_categorical_extreme_logits_stay_finite(void **state)
{
    Kit k;
    kit_compile(&k, categorical_model);
    kit_session(&k, RULE_PC, 1, false);   /* f32 storage: the harder case */
    double b[5] = {1000, -1000, 0, 500, -500}, x[3] = {0, 0, 0};
    kit_set(&k, "b", b);
    kit_set(&k, "x", x);
    one_hot(&k, 1);   /* the least likely class: energy ≈ 2000 */
    assert_true(session_relax(k.s, 0, 0.1, NULL) >= 0);
    assert_true(session_param_grads(k.s));
    double err[5], e, g[5];
    kit_get(&k, "error.y", err);
    kit_get(&k, "energy", &e);
    kit_get(&k, "grad.b", g);
    assert_true(isfinite(e) && fabs(e - 2000) < 1e-3 * 2000);
    for (int i = 0; i < 5; i++)
        assert_true(isfinite(err[i]) && isfinite(g[i]));
    assert_true(fabs(g[0] - 1) < 1e-6 && fabs(g[1] + 1) < 1e-6);
    kit_free(&k);
}

/* Inputs and clamped observed nodes keep their data through relaxation. */
static void test_clamped_nodes_never_move(void **state)
{
    Kit k;
    kit_compile(&k, gaussian_model);
    kit_session(&k, RULE_PC, 3, true);
    kit_randomize(&k, "x", -1, 1, 6);
    kit_randomize(&k, "y", -1, 1, 7);
    double x0[9], y0[6], x1[9], y1[6], h0[12], h1[12];
    kit_get(&k, "x", x0);
    kit_get(&k, "y", y0);
    assert_true(session_relax(k.s, 0, 0.1, NULL) == 0);
    kit_get(&k, "h", h0);
    assert_true(session_relax(k.s, 25, 0.1, NULL) == 25);
    kit_get(&k, "x", x1);
    kit_get(&k, "y", y1);
    kit_get(&k, "h", h1);
    assert_memory_equal(x0, x1, sizeof x0);
    assert_memory_equal(y0, y1, sizeof y0);
    assert_memory_not_equal(h0, h1, sizeof h0);   /* the latent did move */
    kit_free(&k);
}

static const char *precision_model =
    "model p\n"
    "input x : [3]\n"
    "param W : [4, 3] = normal(1)\n"
    "param P : [4] = uniform(0.5, 2)\n"
    "param V : [2, 4] = normal(1)\n"
    "latent h : [4] ~ normal(W @ x, prec = P)\n"
    "observed y : [2] ~ normal(V @ h)\n";

/* F includes −½ Σ log P for a learned precision, and ∂F/∂P = ½ε² − ½/P
 * summed over the batch — checked against central differences. */
static void test_learnable_precision(void **state)
{
    Kit k;
    kit_compile(&k, precision_model);
    kit_session(&k, RULE_PC, 4, true);
    kit_randomize(&k, "x", -1, 1, 8);
    kit_randomize(&k, "y", -1, 1, 9);
    assert_true(session_relax(k.s, 5, 0.1, NULL) == 5);
    assert_true(session_param_grads(k.s));
    double P[4], grad[4], err_h[16], err_y[8];
    kit_get(&k, "P", P);
    kit_get(&k, "grad.P", grad);
    kit_get(&k, "error.h", err_h);
    kit_get(&k, "error.y", err_y);
    /* Energy by hand: ½ Σ P ε² − ½ Σ log P per sample, + ½ Σ ε_y². */
    double expect = 0;
    for (int b = 0; b < 4; b++) {
        for (int i = 0; i < 4; i++) {
            double eps = err_h[b * 4 + i] / P[i];
            expect += 0.5 * P[i] * eps * eps - 0.5 * log(P[i]);
        }
        for (int i = 0; i < 2; i++)
            expect += 0.5 * err_y[b * 2 + i] * err_y[b * 2 + i];
    }
    assert_true(fabs(kit_total_energy(&k) - expect) < 1e-10 * fabs(expect));
    for (int i = 0; i < 4; i++) {
        double keep = P[i], h = 1e-5;
        P[i] = keep + h;
        kit_set(&k, "P", P);
        double up = kit_total_energy(&k);
        P[i] = keep - h;
        kit_set(&k, "P", P);
        double down = kit_total_energy(&k);
        P[i] = keep;
        kit_set(&k, "P", P);
        double fd = (up - down) / (2 * h);
        assert_true(fabs(grad[i] - fd) <= 1e-6 * fmax(fabs(fd), 1e-3));
    }
    kit_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaussian_energy_nonnegative_and_zero_at_prediction),
        cmocka_unit_test(test_gaussian_gradient_is_precision_weighted_error),
        cmocka_unit_test(test_categorical_gradient_is_softmax_minus_target),
        cmocka_unit_test(test_categorical_extreme_logits_stay_finite),
        cmocka_unit_test(test_clamped_nodes_never_move),
        cmocka_unit_test(test_learnable_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
