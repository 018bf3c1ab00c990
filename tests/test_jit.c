/* test_jit.c — compiled kernels agree with the reference interpreter
 * (SPEC §8) on every model in models/ and on every rule and relaxation:
 * values, errors, parameter gradients and energy.
 *
 * Tolerances: f64 1e-12 relative to each tensor's largest entry; f32
 * 1e-5, with an error ε_v = v − μ measured against max(|ε_v|, |v|): it is a
 * difference of two f32 numbers and cannot be more precise than they are;
 * f32 gradients, products of those errors, get 1e-5 times the worst ratio
 * max|v| / max|ε| of the run (the digits the errors lost).
 * Op by op the two executors agree to a few ulp (transcendentals rounded
 * from double in both, reductions accumulated in double); relaxation then
 * compounds that by about 1e-6 per step, so f32 relaxations are compared
 * over at most 5 steps and the full-length runs in f64.  The strict rules
 * (pc, ipc) recompute predictions at each step, and on deep unrolled models
 * (fmnist_rnn: 100 steps through 28 recurrent layers) the relaxation itself
 * amplifies f64 rounding to ~3e-11 by step 100; they are compared over 20
 * steps in f64 (fpa, ar and bp run their full length). */
#include "testkit.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"

static Jit *jit;

static int setup(void **state)
{
    char err[512];
    jit = jit_new(err, sizeof err);
    if (!jit)
        fprintf(stderr, "jit: %s\n", err);
    return jit ? 0 : -1;
}

static int teardown(void **state)
{
    jit_free(jit);
    return 0;
}

/* max |v| / max |ε| over the energy nodes of b: how many digits an error
 * loses by being a difference of values (1 = none). */
static double cancellation(Kit *b)
{
    const Model *m = b->c.model;
    double worst = 1;
    for (int i = 0; i < m->n_buffers; i++) {
        const Buffer *buf = &m->buffers[i];
        if (buf->kind != BUF_ERROR)
            continue;
        int64_t n = kit_len(b, buf->name);
        double *e = malloc(sizeof *e * (size_t)n), *v = malloc(sizeof *v * (size_t)n), emax = 0, vmax = 0;
        kit_get(b, buf->name, e);
        kit_get(b, m->tensors[buf->tensor].name, v);
        for (int64_t k = 0; k < n; k++) {
            emax = fmax(emax, fabs(e[k]));
            vmax = fmax(vmax, fabs(v[k]));
        }
        if (emax > 0)
            worst = fmax(worst, vmax / emax);
        free(e);
        free(v);
    }
    return worst;
}

static void compare(Kit *a, Kit *b, double tol, const char *what)
{
    const Model *m = a->c.model;
    /* In f32 a gradient is a product of errors, so it inherits their
     * cancellation (pc's hidden errors can be 1e-3 of the values). */
    double grad_tol = b->s->st.f64 ? tol : tol * cancellation(b);
    for (int i = 0; i < m->n_buffers; i++) {
        const Buffer *buf = &m->buffers[i];
        if (buf->kind != BUF_ERROR && buf->kind != BUF_GRAD && buf->kind != BUF_VALUE && buf->kind != BUF_ENERGY)
            continue;
        int64_t n = kit_len(a, buf->name);
        double *x = malloc(sizeof *x * (size_t)n), *y = malloc(sizeof *y * (size_t)n);
        double floor = 1e-30;
        if (buf->kind == BUF_ERROR) {   /* the value the error is a difference of */
            kit_get(b, m->tensors[buf->tensor].name, y);
            for (int64_t k = 0; k < n; k++)
                floor = fmax(floor, fabs(y[k]));
        }
        kit_get(a, buf->name, x);
        kit_get(b, buf->name, y);
        double d = kit_rel_diff(x, y, n, floor), limit = buf->kind == BUF_GRAD ? grad_tol : tol;
        if (!(d <= limit))
            fail_msg("%s: %s differs between jit and interp: %g > %g", what, buf->name, d, limit);
        free(x);
        free(y);
    }
}

static void run_pair(const char *path, const char *text, RuleSpec rule, bool f64)
{
    Kit interp, compiled;
    kit_compile(&interp, text);
    kit_compile(&compiled, text);
    interp.c.model->train.rule = compiled.c.model->train.rule = rule;
    const TrainConfig *cfg = &interp.c.model->train;
    bool long_relax = rule.kind == RULE_PC || rule.kind == RULE_IPC;
    int cap = f64 ? 20 : 5;
    int steps = long_relax && cfg->steps > cap ? cap : cfg->steps;
    kit_session(&interp, rule.kind, 3, f64);
    kit_session_engine(&compiled, rule.kind, 3, f64, engine_jit(jit));
    kit_random_data(&interp, 11);
    kit_random_data(&compiled, 11);
    assert_true(session_relax(interp.s, steps, cfg->step_size, NULL) >= 0);
    assert_true(session_relax(compiled.s, steps, cfg->step_size, NULL) >= 0);
    assert_true(session_param_grads(interp.s) && session_param_grads(compiled.s));
    char what[256];
    snprintf(what, sizeof what, "%s rule %s%s%s%s %s", path, ir_rule_name(rule.kind),
             rule.backward ? " backward" : "", rule.no_derivative ? " no-derivative" : "",
             rule.error_weights ? " error-weights" : "", f64 ? "f64" : "f32");
    compare(&compiled, &interp, f64 ? 1e-12 : 1e-5, what);
    kit_free(&interp);
    kit_free(&compiled);
}

/* ar refuses latents with a precision (they would carry no energy). */
static bool latent_with_precision(const char *text)
{
    for (const char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (!strncmp(buf, "latent", 6) && strstr(buf, "prec"))
            return true;
    }
    return false;
}

static void test_models_agree(void **state)
{
    DIR *dir = opendir(FEP_SOURCE_DIR "/models");
    assert_non_null(dir);
    struct dirent *ent;
    int models = 0;
    while ((ent = readdir(dir))) {
        size_t len = strlen(ent->d_name);
        if (len < 5 || strcmp(ent->d_name + len - 4, ".fep"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s", FEP_SOURCE_DIR, ent->d_name);
        char *text = read_file(path, NULL);
        assert_non_null(text);
        /* every rule, and the relaxations (error weights need vector nodes) */
        static const RuleSpec rules[] = {
            {.kind = RULE_PC}, {.kind = RULE_FPA}, {.kind = RULE_BP}, {.kind = RULE_IPC}, {.kind = RULE_AR},
            {.kind = RULE_FPA, .backward = BACKWARD_RANDOM, .no_derivative = true},
            {.kind = RULE_AR, .backward = BACKWARD_LEARNED, .no_derivative = true},
            {.kind = RULE_PC, .backward = BACKWARD_LEARNED, .no_derivative = true,
             .error_weights = ERROR_WEIGHTS_LEARNED}};
        bool vectors = !strstr(text, "conv2d");
        for (int r = 0; r < 8; r++) {
            if ((rules[r].error_weights && !vectors) || (rules[r].kind == RULE_AR && latent_with_precision(text)))
                continue;
            run_pair(ent->d_name, text, rules[r], true);
            run_pair(ent->d_name, text, rules[r], false);
        }
        free(text);
        models++;
    }
    closedir(dir);
    assert_true(models >= 6);
}

/* The compiled f32 transcendentals (inline, vectorised) against the
 * interpreter's libm-in-double-then-rounded values, element by element,
 * over [-50, 50]: at most one unit in the last place apart. */
static void test_transcendentals_within_one_ulp(void **state)
{
    static const char *text = "model t\ninput x : [1000]\n"
                              "latent a : [1000] ~ normal(tanh(x))\nlatent b : [1000] ~ normal(sigmoid(x))\n"
                              "latent c : [1000] ~ normal(exp(x))\nlatent d : [1000] ~ normal(elu(x))\n";
    Kit interp, compiled;
    kit_compile(&interp, text);
    kit_compile(&compiled, text);
    kit_session(&interp, RULE_PC, 1, false);
    kit_session_engine(&compiled, RULE_PC, 1, false, engine_jit(jit));
    double x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = -50 + 100.0 * i / 999 + (i % 7) * 1e-3;
    x[500] = 0;
    x[501] = 1e-30;
    x[502] = -1e-30;
    kit_set(&interp, "x", x);
    kit_set(&compiled, "x", x);
    assert_true(session_relax(interp.s, 0, 0.1, NULL) == 0 && session_relax(compiled.s, 0, 0.1, NULL) == 0);
    static const char *names[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++) {
        double want[1000], got[1000];
        kit_get(&interp, names[k], want);
        kit_get(&compiled, names[k], got);
        for (int i = 0; i < 1000; i++) {
            double ulp = fmax(fabs(want[i]) * 0x1p-23, 0x1p-149);
            if (!(fabs(got[i] - want[i]) <= ulp))
                fail_msg("%s(%g): compiled %.9g, interpreter %.9g", names[k], x[i], got[i], want[i]);
        }
    }
    kit_free(&interp);
    kit_free(&compiled);
}

static void test_random_dags_agree(void **state)
{
    static const RuleKind rules[] = {RULE_PC, RULE_FPA, RULE_BP, RULE_IPC, RULE_AR};
    for (uint64_t seed = 1; seed <= 10; seed++) {
        char text[16384], name[32];
        int n;
        kit_random_dag(text, sizeof text, 500 + seed, seed % 2 == 0, &n);
        snprintf(name, sizeof name, "random DAG %llu", (unsigned long long)seed);
        RuleSpec rule = {.kind = rules[seed % 5], .backward = seed > 5 ? BACKWARD_LEARNED : BACKWARD_TRANSPOSE};
        run_pair(name, text, rule, true);
        run_pair(name, text, rule, false);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_agree),
        cmocka_unit_test(test_transcendentals_within_one_ulp),
        cmocka_unit_test(test_random_dags_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
