/* test_optim.c — the optimizers against the published update rules.
 *
 * Each case sets params and a fresh gradient per step by hand, runs
 * optim_step and compares every element with the rule evaluated here in
 * double, element by element, the way the PyTorch documentation writes it:
 * SGD with momentum (plain and Nesterov) and L2 weight decay, Adam with
 * bias correction and L2 decay, AdamW with decoupled decay, and gradient
 * clamping.  The model's V has more elements than one optimizer chunk, so
 * chunk boundaries are crossed; a team of 3 threads must give the same
 * bits as none. */
#include "testkit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *model_text =
    "model opt\n"
    "input x : [200]\n"
    "param V : [100, 200] = xavier\n"
    "param b : [100] = zeros\n"
    "observed y : [100] ~ normal(V @ x + b)\n";

enum { STEPS = 6 };

typedef struct Case {
    const char *name;
    OptimizerKind kind;
    double lr, momentum, weight_decay, clip;
    bool nesterov;
} Case;

static const Case cases[] = {
    {"sgd", OPT_SGD, 0.1, 0, 0, 0, false},
    {"sgd momentum + decay", OPT_SGD, 0.05, 0.9, 0.01, 0, false},
    {"sgd nesterov", OPT_SGD, 0.05, 0.8, 0, 0, true},
    {"adam", OPT_ADAM, 0.01, 0, 0, 0, false},
    {"adam + L2 decay + clip", OPT_ADAM, 0.01, 0, 0.1, 0.3, false},
    {"adamw", OPT_ADAMW, 0.01, 0, 0.05, 0, false},
};

/* Deterministic gradients with both signs and a spread of magnitudes. */
static double grad_at(int step, int64_t i)
{
    double u = sin(0.37 * (double)i + 1.3 * step) * exp(0.5 * cos(0.11 * (double)i));
    return step % 3 == 2 ? -u : u;
}

/* The reference: one element's whole trajectory, in double. */
static double reference(const Case *c, const TrainConfig *cfg, double theta, int64_t i)
{
    double m = 0, v = 0;
    for (int t = 1; t <= STEPS; t++) {
        double g = grad_at(t, i);
        if (c->clip > 0)
            g = fmax(-c->clip, fmin(c->clip, g));
        if (c->kind == OPT_SGD) {
            g += c->weight_decay * theta;
            m = c->momentum * m + g;
            double d = c->momentum > 0 ? (c->nesterov ? g + c->momentum * m : m) : g;
            theta -= c->lr * d;
            continue;
        }
        if (c->kind == OPT_ADAM)
            g += c->weight_decay * theta;
        else
            theta *= 1 - c->lr * c->weight_decay;
        m = cfg->beta1 * m + (1 - cfg->beta1) * g;
        v = cfg->beta2 * v + (1 - cfg->beta2) * g * g;
        double m_hat = m / (1 - pow(cfg->beta1, t)), v_hat = v / (1 - pow(cfg->beta2, t));
        theta -= c->lr * m_hat / (sqrt(v_hat) + cfg->eps);
    }
    return theta;
}

/* Runs the case on a session and returns V then b, laid end to end. */
static double *run_case(const Case *c, bool f64, Team *team, TrainConfig *cfg_out, double **theta0)
{
    Kit k;
    kit_compile(&k, model_text);
    Engine engine = engine_interp();
    engine.team = team;
    kit_session_engine(&k, RULE_PC, 4, f64, engine);
    static const char *names[] = {"V", "b"};
    int64_t len[2] = {kit_len(&k, "V"), kit_len(&k, "b")};
    double *out = malloc(sizeof *out * (size_t)(len[0] + len[1]));
    *theta0 = malloc(sizeof **theta0 * (size_t)(len[0] + len[1]));
    for (int p = 0, at = 0; p < 2; at += (int)len[p], p++) {
        kit_randomize(&k, names[p], -1, 1, 40 + (uint64_t)p);
        kit_get(&k, names[p], *theta0 + at);
    }
    TrainConfig cfg = k.s->cfg;
    cfg.optimizer = c->kind;
    cfg.lr = c->lr;
    cfg.opt_momentum = c->momentum;
    cfg.nesterov = c->nesterov;
    cfg.weight_decay = c->weight_decay;
    *cfg_out = cfg;
    Optimizer *o = optim_new(k.s, &cfg, c->clip);
    assert_int_equal(o->n_params, 2);
    double *g = malloc(sizeof *g * (size_t)len[0]);
    for (int t = 1; t <= STEPS; t++) {
        for (int p = 0, at = 0; p < 2; at += (int)len[p], p++) {
            char name[16];
            snprintf(name, sizeof name, "grad.%s", names[p]);
            for (int64_t i = 0; i < len[p]; i++)
                g[i] = grad_at(t, at + i);
            kit_set(&k, name, g);
        }
        optim_step(o, k.s);
    }
    for (int p = 0, at = 0; p < 2; at += (int)len[p], p++)
        kit_get(&k, names[p], out + at);
    free(g);
    optim_free(o);
    kit_free(&k);
    return out;
}

static void test_rules(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (int f64 = 0; f64 <= 1; f64++) {
            const Case *c = &cases[ci];
            TrainConfig cfg;
            double *theta0;
            double *got = run_case(c, f64, NULL, &cfg, &theta0);
            int64_t n = 100 * 200 + 100;
            /* f32: a few float roundings per step on params of order 1 */
            double worst = 0, floor = f64 ? 1e-3 : 0.1, tol = f64 ? 1e-13 : 1e-5;
            for (int64_t i = 0; i < n; i++) {
                double want = reference(c, &cfg, theta0[i], i);
                worst = fmax(worst, fabs(got[i] - want) / fmax(fabs(want), floor));
            }
            if (!(worst <= tol))
                fail_msg("%s (%s): relative error %g > %g", c->name, f64 ? "f64" : "f32", worst, tol);
            free(got);
            free(theta0);
        }
    }
}

static void test_threads_do_not_change_bits(void **state)
{
    (void)state;
    Team *team = team_new(3);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        TrainConfig cfg;
        double *t0, *t1;
        double *serial = run_case(&cases[ci], false, NULL, &cfg, &t0);
        double *parallel = run_case(&cases[ci], false, team, &cfg, &t1);
        assert_memory_equal(serial, parallel, sizeof *serial * (100 * 200 + 100));
        free(serial);
        free(parallel);
        free(t0);
        free(t1);
    }
    team_free(team);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_threads_do_not_change_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
