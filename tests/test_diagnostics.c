/* test_diagnostics.c — the catalogue of errors found after parsing: names,
 * shapes, INIT, distributions, externs, families, the train block (ir/lower*.c),
 * cycles (passes/check.c) and rules (passes/derive.c).  Each error class gets
 * its exact message, line:col and the text under the caret; a few the whole
 * rendering.  A robustness test runs thousands of single-token mutations of
 * every models/ file through compile_model and pass_derive: no crash, and every
 * failure has an error with a message and a span inside the text.  Knobs:
 * FEP_FUZZ_N (mutants per model, 1500), FEP_FUZZ_DEPTH (stacked mutations, 1),
 * FEP_FUZZ_DUMP=FILE (write each mutant first), FEP_FUZZ_MESSAGES (print them). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

#ifndef FEP_SOURCE_DIR
#define FEP_SOURCE_DIR "."
#endif

#include "diagkit.h"

#define X3 "input x : [3]\n"

/* ---- names ---- */

static void test_unknown_name(void **state)
{
    expect_error(X3 "latent h : [3] ~ normal(xx)\n", 2, 25, "xx", "unknown name 'xx'; did you mean 'x'?");
    expect_error(X3 "latent h : [3] ~ normal(qqqq)\n", 2, 25, "qqqq", "unknown name 'qqqq'");
    /* lets and families are suggested too */
    expect_error(X3 "let hidden = tanh(x)\nlatent h : [3] ~ normal(hiden)\n", 3, 25, "hiden",
                 "unknown name 'hiden'; did you mean 'hidden'?");
}

static void test_redefinition(void **state)
{
    const char *text = X3 "latent x : [3] ~ normal(0)\n";
    expect_error(text, 2, 8, "x", "redefinition of 'x'");
    expect_rendered(text,
                    "t.fep:2:8: error: redefinition of 'x'\n"
                    "   2 | latent x : [3] ~ normal(0)\n"
                    "     |        ^\n"
                    "t.fep:1:7: note: 'x' was first declared here, as an input\n"
                    "   1 | input x : [3]\n"
                    "     |       ^\n");
    expect_error("param W : [3] = zeros\nlet W = 2\n", 2, 5, "W", "redefinition of 'W'");
    expect_error("extern f(x) = \"l.so:f\" grad \"g\"\nextern f(x) = \"l.so:f\" grad \"g\"\n", 2, 8, "f",
                 "redefinition of 'f'");
}

static void test_not_a_function(void **state)
{
    expect_error(X3 "latent h : [3] ~ normal(x(1))\n", 2, 25, "x", "'x' is a tensor, not a function");
    expect_error("extern f(x) = \"l.so:f\" grad \"g\"\n" X3 "latent h : [3] ~ normal(f)\n", 3, 25, "f",
                 "extern function 'f' must be called, as in f(x)");
}

/* ---- shapes ---- */

static void test_shape_mismatch_mean(void **state)
{
    expect_error(X3 "latent h : [4] ~ normal(x)\n", 2, 25, "x",
                 "shape mismatch: the mean has shape [3] but 'h' is declared [4]");
    expect_error("param W : [4, 3] = xavier\n" X3 "latent h : [4, 2] ~ normal(W @ x)\n", 3, 28, "W @ x",
                 "shape mismatch: the mean has shape [4] but 'h' is declared [4, 2]");
    expect_error(X3 "latent h : [3] ~ normal(x, prec = [1, 2])\n", 2, 35, "[1, 2]",
                 "shape mismatch: the precision has shape [2] but 'h' is declared [3]");
    expect_error(X3 "latent h : [3] ~ normal(x, var = [1, 2])\n", 2, 34, "[1, 2]",
                 "shape mismatch: the variance has shape [2] but 'h' is declared [3]");
    /* a scalar mean broadcasts to the node */
    expect_ok(X3 "latent h : [3] ~ normal(0)\n");
}

static void test_shape_mismatch_literal(void **state)
{
    const char *text = "param A : [2, 2] = [[1, 2, 3], [4, 5, 6]]\n";
    expect_error(text, 1, 20, "[[1, 2, 3], [4, 5, 6]]",
                 "shape mismatch: the matrix literal has shape [2, 3] but 'A' is declared [2, 2]");
    expect_rendered(text, "t.fep:1:20: error: shape mismatch: the matrix literal has shape [2, 3] but 'A' is "
                          "declared [2, 2]\n"
                          "   1 | param A : [2, 2] = [[1, 2, 3], [4, 5, 6]]\n"
                          "     |                    ^~~~~~~~~~~~~~~~~~~~~~\n");
    /* a row broadcasts down the declared shape */
    expect_ok("const B : [2, 3] = [1, 2, 3]\n");
}

static void test_broadcast_failure(void **state)
{
    expect_error("input x : [784]\nparam W : [256, 784] = xavier\nparam b : [10] = zeros\n"
                 "latent h : [256] ~ normal(W @ x + b)\n",
                 4, 27, "W @ x + b", "cannot broadcast shapes [256] and [10] (dimension 0: 256 vs 10)");
}

static void test_matmul_mismatch(void **state)
{
    expect_error("input x : [78]\nparam W : [256, 784] = xavier\nlatent h : [256] ~ normal(W @ x)\n", 3, 27,
                 "W @ x", "matrix product shapes [256, 784] @ [78] do not match: 784 columns vs 78 rows");
}

static void test_categorical_logits_shape(void **state)
{
    expect_error(X3 "observed y : [4] ~ categorical(x)\n", 2, 32, "x",
                 "shape mismatch: the logits have shape [3] but 'y' is declared [4]");
    expect_error(X3 "observed y : [] ~ categorical(sum(x))\n", 2, 10, "y",
                 "a categorical node needs at least one dimension (the classes)");
}

/* ---- cycles ---- */

static void test_cycle(void **state)
{
    const char *text = "latent a : [3] ~ normal(b)\nlatent b : [3] ~ normal(a)\n";
    expect_error(text, 1, 8, "a", "cycle in the model: a → b → a (use prev() to refer to the previous time step)");
    expect_error("latent a : [3] ~ normal(tanh(a))\n", 1, 8, "a",
                 "cycle in the model: a → a (use prev() to refer to the previous time step)");
    /* a long cycle shows its ends; here through a family */
    expect_error("latent h[t in 0..20] : [1] ~ normal(h[t+1] + h[t-19])\n", 1, 8, "h",
                 "cycle in the model: h[0] → h[1] → h[2] → h[3] → … (12 more) → h[16] → h[17] → h[18] → h[19] → h[0] "
                 "(use prev() to refer to the previous time step)");
    expect_error("let z = z + 1\nlatent a : [3] ~ normal(z)\n", 1, 9, "z",
                 "cycle in the model: 'let z' refers to itself");
    /* prev() breaks a cycle */
    expect_ok("latent s : [3] ~ normal(tanh(prev(s)))\n");
}

/* ---- calls ---- */

static void test_wrong_arity(void **state)
{
    expect_error(X3 "latent h : [3] ~ normal(tanh(x, x))\n", 2, 25, "tanh(x, x)",
                 "wrong number of arguments to 'tanh': expected 1, got 2");
    expect_error(X3 "latent h : [3] ~ normal()\n", 2, 18, "normal()",
                 "wrong number of arguments to 'normal': expected 1 or 2, got 0");
    expect_error(X3 "latent h : [3] ~ normal(concat(x))\n", 2, 25, "concat(x)",
                 "wrong number of arguments to 'concat': expected 2, got 1");
    expect_error(X3 "observed y : [3] ~ categorical(x, x)\n", 2, 20, "categorical(x, x)",
                 "wrong number of arguments to 'categorical': expected 1 (the logits), got 2");
    expect_error("param W : [3] = normal()\n", 1, 17, "normal()",
                 "wrong number of arguments to 'normal': expected 1, got 0");
    expect_error(X3 "latent h : [3] ~ normal(0)\ntrain { optimizer = sgd(0.1, 0.9, 0, 0, 5) }\n", 3, 21,
                 "sgd(0.1, 0.9, 0, 0, 5)", "wrong number of arguments to 'sgd': expected at most 4, got 5");
}

static void test_unknown_function(void **state)
{
    expect_error(X3 "latent h : [3] ~ normal(tnah(x))\n", 2, 25, "tnah", "unknown function 'tnah'; did you mean 'tanh'?");
    expect_error(X3 "latent h : [3] ~ normal(frobnicate(x))\n", 2, 25, "frobnicate",
                 "unknown function 'frobnicate'");
}

static void test_unknown_distribution(void **state)
{
    expect_error(X3 "latent h : [3] ~ normel(x)\n", 2, 18, "normel", "unknown distribution 'normel'; did you mean 'normal'?");
    expect_error(X3 "latent h : [3] ~ poisson(x)\n", 2, 18, "poisson",
                 "unknown distribution 'poisson'; expected normal, categorical or bernoulli");
}

static void test_normal_arguments(void **state)
{
    expect_error(X3 "latent h : [3] ~ normal(x, precision = 2)\n", 2, 28, "precision",
                 "unknown argument 'precision' to 'normal'; expected mean, prec or var");
    expect_error(X3 "latent h : [3] ~ normal(x, pre = 2)\n", 2, 28, "pre",
                 "unknown argument 'pre' to 'normal'; did you mean 'prec'?");
    expect_error(X3 "latent h : [3] ~ normal(x, prec = 2, var = 3)\n", 2, 44, "3",
                 "give either prec or var to 'normal', not both");
    expect_error(X3 "latent h : [3] ~ normal(x, var = 0)\n", 2, 34, "0",
                 "argument 'var' to 'normal' expects a positive number, got 0");
    expect_error(X3 "latent h : [3] ~ normal(x, prec = [1, -2, 3])\n", 2, 35, "[1, -2, 3]",
                 "argument 'prec' to 'normal' expects a positive number, got -2");
    expect_error("const P : [3] = zeros\n" X3 "latent h : [3] ~ normal(x, prec = P)\n", 3, 35, "P",
                 "argument 'prec' to 'normal' expects a positive number, got 0");
    expect_error(X3 "latent h : [3] ~ normal(x, 2)\n", 2, 28, "2",
                 "'normal' takes one positional argument (the mean); name the others, as in prec = P");
    expect_error(X3 "latent h : [3] ~ normal(x, mean = 2)\n", 2, 28, "mean", "argument 'mean' given twice to 'normal'");
    expect_error(X3 "latent h : [3] ~ normal(prec = 2)\n", 2, 18, "normal(prec = 2)", "missing argument 'mean' to 'normal'");
    expect_error(X3 "observed y : [3] ~ bernoulli(p = x)\n", 2, 30, "p", "unknown argument 'p' to 'bernoulli'; expected logits");
    expect_error(X3 "observed y : [3] ~ bernoulli(logit = x)\n", 2, 30, "logit",
                 "unknown argument 'logit' to 'bernoulli'; did you mean 'logits'?");
    expect_ok(X3 "observed y : [3] ~ bernoulli(logits = x)\nlatent h : [3] ~ normal(mean = x, var = 2)\n");
}

/* ---- the train block and command-line overrides ---- */

#define OK_MODEL X3 "latent h : [3] ~ normal(x)\n"

static void test_unknown_rule(void **state)
{
    expect_error(OK_MODEL "train { rule = foo }\n", 3, 16, "foo", "unknown rule 'foo'; expected pc, fpa, ipc, bp or ar");
    expect_error(OK_MODEL "train { rule = pcc }\n", 3, 16, "pcc", "unknown rule 'pcc'; did you mean 'pc'?");
    expect_error(OK_MODEL "train { rule = 3 }\n", 3, 16, "3", "train key 'rule' expects pc, fpa, ipc, bp or ar");
    expect_error(OK_MODEL "train { rule = pc(backward = lerned) }\n", 3, 30, "lerned",
                 "unknown backward mode 'lerned'; did you mean 'learned'?");
    expect_error(OK_MODEL "train { rule = pc(backwards = learned) }\n", 3, 19, "backwards",
                 "unknown argument 'backwards' to 'pc'; did you mean 'backward'?");
}

/* `--rule foo` on the command line: the value is its own source file. */
static void test_unknown_rule_override(void **state)
{
    Run r;
    run_text(&r, OK_MODEL);
    assert_true(r.ok);
    static const char *const cases[][3] = {
        {"rule", "foo", "unknown rule 'foo'; expected pc, fpa, ipc, bp or ar"},
        {"rule", "fap", "unknown rule 'fap'; did you mean 'fpa'?"},
        {"steps", "-1", "train key 'steps' expects an integer >= 0, got -1"},
        {"stepz", "3", "unknown train key 'stepz'; did you mean 'steps'?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *key = cases[i][0], *value = cases[i][1];
        char name[64];
        snprintf(name, sizeof name, "--%s", key);
        int file = diag_add_file(&r.c.diag, name, value, strlen(value));
        ParseResult pr = {0};
        assert_true(parse_source(&r.c.diag, &r.c.arena, file, PARSE_EXPR, &pr));
        Span whole = {file, 0, (unsigned)strlen(value)};
        int before = r.c.diag.n_errors;
        assert_false(ir_apply_train_setting(&r.c.diag, r.c.model, key, whole, pr.expr));
        assert_int_equal(r.c.diag.n_errors, before + 1);
        check_last(&r, 1, 1, value, cases[i][2]);
        assert_int_equal(r.c.diag.last_span.file, file);
    }
    fflush(r.out);
    assert_non_null(strstr(r.out_buf, "--rule:1:1: error: unknown rule 'foo'; expected pc, fpa, ipc, bp or ar\n"
                                      "   1 | foo\n"
                                      "     | ^~~\n"));
    /* a good override takes effect */
    int file = diag_add_file(&r.c.diag, "--rule", "bp", 2);
    ParseResult pr = {0};
    assert_true(parse_source(&r.c.diag, &r.c.arena, file, PARSE_EXPR, &pr));
    assert_true(ir_apply_train_setting(&r.c.diag, r.c.model, "rule", (Span){file, 0, 2}, pr.expr));
    assert_int_equal(r.c.model->train.rule.kind, RULE_BP);
    run_free(&r);
}

static void test_unknown_train_key(void **state)
{
    expect_error(OK_MODEL "train { step = 3 }\n", 3, 9, "step", "unknown train key 'step'; did you mean 'steps'?");
    expect_error(OK_MODEL "train { xyzzy = 3 }\n", 3, 9, "xyzzy",
                 "unknown train key 'xyzzy'; expected rule, steps, step_size, optimizer, batch, epochs, seed, "
                 "integrator, momentum, tol, schedule or warmup");
}

static void test_duplicate_train_key(void **state)
{
    const char *text = OK_MODEL "train { steps = 3 steps = 4 }\n";
    expect_error(text, 3, 19, "steps", "duplicate train key 'steps'");
    expect_rendered(text, "t.fep:3:19: error: duplicate train key 'steps'\n"
                          "   3 | train { steps = 3 steps = 4 }\n"
                          "     |                   ^~~~~\n"
                          "t.fep:3:9: note: first set here\n"
                          "   3 | train { steps = 3 steps = 4 }\n"
                          "     |         ^~~~~\n");
}

static void test_bad_train_values(void **state)
{
    expect_error(OK_MODEL "train { steps = -1 }\n", 3, 17, "-1", "train key 'steps' expects an integer >= 0, got -1");
    expect_error(OK_MODEL "train { steps = 2.5 }\n", 3, 17, "2.5", "train key 'steps' expects an integer >= 0, got 2.5");
    expect_error(OK_MODEL "train { steps = x }\n", 3, 17, "x", "train key 'steps' expects a number");
    expect_error(OK_MODEL "train { steps = 1e11 }\n", 3, 17, "1e11",
                 "train key 'steps' expects an integer <= 2147483647, got 1e+11");
    expect_error(OK_MODEL "train { batch = 0 }\n", 3, 17, "0", "train key 'batch' expects an integer >= 1, got 0");
    expect_error(OK_MODEL "train { step_size = 0 }\n", 3, 21, "0", "train key 'step_size' expects a positive number, got 0");
    expect_error(OK_MODEL "train { momentum = 1 }\n", 3, 20, "1", "train key 'momentum' expects a number in [0, 1), got 1");
    expect_error(OK_MODEL "train { tol = -0.5 }\n", 3, 15, "-0.5", "train key 'tol' expects a number >= 0, got -0.5");
    expect_error(OK_MODEL "train { integrator = 2 }\n", 3, 22, "2", "train key 'integrator' expects euler or heun");
    expect_error(OK_MODEL "train { rule = pc(derivative = 0) }\n", 3, 32, "0", "argument 'derivative' to 'pc' expects exact or none");
    expect_error(OK_MODEL "train { integrator = rk4 }\n", 3, 22, "rk4", "unknown integrator 'rk4'; expected euler or heun");
    expect_error(OK_MODEL "train { optimizer = adom(lr = 0.1) }\n", 3, 21, "adom", "unknown optimizer 'adom'; did you mean 'adam'?");
    expect_error(OK_MODEL "train { optimizer = rmsprop }\n", 3, 21, "rmsprop",
                 "unknown optimizer 'rmsprop'; expected sgd, adam or adamw");
    expect_error(OK_MODEL "train { optimizer = adam(lr = 0.1, beta = 0.9) }\n", 3, 36, "beta",
                 "unknown argument 'beta' to 'adam'; did you mean 'beta1'?");
    expect_error(OK_MODEL "train { optimizer = adam(zzz = 1) }\n", 3, 26, "zzz",
                 "unknown argument 'zzz' to 'adam'; expected lr, beta1, beta2, eps or weight_decay");
    expect_error(OK_MODEL "train { optimizer = adam(lr = -1) }\n", 3, 31, "-1",
                 "argument 'lr' to 'adam' expects a positive number, got -1");
    expect_error(OK_MODEL "train { optimizer = sgd(momentum = 1.5) }\n", 3, 36, "1.5",
                 "argument 'momentum' to 'sgd' expects a number in [0, 1), got 1.5");
    expect_error(OK_MODEL "train { optimizer = sgd(lr = fast) }\n", 3, 30, "fast", "argument 'lr' to 'sgd' expects a number");
    expect_error(OK_MODEL "train { optimizer = sgd(lr = 0.1, lr = 0.2) }\n", 3, 35, "lr", "argument 'lr' given twice to 'sgd'");
    /* every bad key is reported, not only the first */
    Run r;
    run_text(&r, OK_MODEL "train { steps = -1 step_size = 0 }\n");
    assert_false(r.ok);
    assert_int_equal(r.c.diag.n_errors, 2);
    run_free(&r);
}

/* ---- INIT ---- */

static void test_bad_init(void **state)
{
    expect_error("param W : [3] = xavir\n", 1, 17, "xavir", "unknown initializer 'xavir'; did you mean 'xavier'?");
    expect_error("param W : [3] = glorot(1)\n", 1, 17, "glorot",
                 "unknown initializer 'glorot'; expected zeros, ones, xavier, kaiming, normal(std), uniform(lo, hi), "
                 "a number or a matrix literal");
    expect_error("param W : [3] = normal(-1)\n", 1, 24, "-1", "invalid initializer: normal(std) needs std >= 0, got -1");
    expect_error("param W : [3] = uniform(2, 1)\n", 1, 17, "uniform(2, 1)",
                 "invalid initializer: uniform(lo, hi) needs lo < hi, got lo = 2, hi = 1");
    expect_error("param W : [3] = normal(x)\n", 1, 24, "x", "invalid initializer: 'normal' takes numbers");
    expect_error(X3 "param W : [3, 3] = xavier\nparam V : [3] = W @ x\n", 3, 17, "W @ x",
                 "invalid initializer: expected zeros, ones, xavier, kaiming, normal(std), uniform(lo, hi), "
                 "a number or a matrix literal");
    expect_ok("param W : [3] = -2\nconst C : [2] = normal(0)\nparam U : [2] = uniform(-1, 1)\n");
}

static void test_ragged_literal(void **state)
{
    expect_error("param A : [2, 2] = [[1, 2], [3]]\n", 1, 29, "[3]",
                 "ragged matrix literal: this row has 1 element, expected 2");
    expect_error("param A : [2, 2] = [[1, 2], 3]\n", 1, 29, "3",
                 "ragged matrix literal: expected a list of 2 elements here");
    expect_error("param A : [2] = [1, [2, 3]]\n", 1, 21, "[2, 3]",
                 "ragged matrix literal: expected a number here, found a list");
    expect_error("param A : [2] = [1, x]\n", 1, 21, "x", "matrix literal entries must be numbers");
}

/* ---- declarations ---- */

static void test_bad_dimension(void **state)
{
    expect_error("input x : [0]\n", 1, 12, "0", "dimension must be positive, got 0");
    expect_error("input x : [3, 0, 2]\n", 1, 15, "0", "dimension must be positive, got 0");
    /* a negative dimension is a syntax error: the parser takes only integers */
    expect_error("input x : [-3]\n", 1, 12, "-", "expected an integer dimension, found '-'");
    expect_error("input x : [1, 1, 1, 1, 1, 1, 1]\n", 1, 11, "[1, 1, 1, 1, 1, 1, 1]", "too many dimensions: 7 (at most 6)");
    expect_error("input x : [65536, 65536]\n", 1, 19, "65536", "tensor too large: more than 2^31 elements");
}

static void test_extern(void **state)
{
    expect_error("extern softsign(x) = \"libfoo.so:softsign\"\n", 1, 8, "softsign",
                 "extern 'softsign' needs its derivative: add grad \"symbol\" after the target");
    static const char *const targets[] = {"\"libfoo.so\"", "\":sym\"", "\"lib.so:\""};
    for (int i = 0; i < 3; i++) {
        char text[128];
        snprintf(text, sizeof text, "extern softsign(x) = %s grad \"g\"\n", targets[i]);
        expect_error(text, 1, 22, targets[i], "extern target must look like \"libname.so:symbol\"");
    }
    expect_error("extern f(x, y) = \"lib.so:f\" grad \"g\"\n", 1, 8, "f",
                 "extern 'f' must take exactly one parameter (an elementwise float(float) function)");
    expect_ok("extern f(x) = \"lib.so:f\" grad \"g\"\n" X3 "latent h : [3] ~ normal(f(x))\n");
}

static void test_family(void **state)
{
    expect_error("input x[t in 0..3] : [3]\nlatent h[t in 0..3] : [3] ~ normal(x[t])\nobserved y : [3] ~ normal(h)\n",
                 3, 27, "h", "'h' is a family of 3 nodes; index it, as in h[0]");
    expect_error("input x[t in 3..3] : [3]\n", 1, 8, "[t in 3..3]",
                 "empty family range 3..3: the end is exclusive, so it must be greater than the start");
    expect_error("input x[t in 5..3] : [3]\n", 1, 8, "[t in 5..3]",
                 "empty family range 5..3: the end is exclusive, so it must be greater than the start");
    expect_error("input x[t in 0..20000] : [3]\n", 1, 8, "[t in 0..20000]",
                 "family range 0..20000 has 20000 steps; at most 10000 are allowed");
    expect_error("input x[t in -9000000000000000000..9000000000000000000] : [3]\n", 1, 8,
                 "[t in -9000000000000000000..9000000000000000000]",
                 "family range -9000000000000000000..9000000000000000000 has 18000000000000000000 steps; "
                 "at most 10000 are allowed");
    expect_error("input x[t in 2147483640..2147483650] : [3]\n", 1, 8, "[t in 2147483640..2147483650]",
                 "family range 2147483640..2147483650 must lie within -1000000000..1000000000");
    expect_error("input x[t in 0..3] : [3]\nobserved y : [3] ~ normal(x[0:2])\n", 2, 27, "x[0:2]",
                 "a family of nodes cannot be sliced; index one element");
    expect_error("input x[t in 0..3] : [3]\nobserved y : [3] ~ normal(x[u])\n", 2, 29, "u",
                 "index must be an integer constant");
    /* an index outside the range reads zeros */
    expect_ok("input x[t in 0..3] : [3]\nlatent h[t in 0..3] : [3] ~ normal(h[t-1] + x[t])\n");
}

static void test_prev(void **state)
{
    expect_error("param W : [3] = zeros\nlatent h : [3] ~ normal(prev(W))\n", 2, 30, "W",
                 "prev() takes the name of an input, latent or observed node");
    expect_error(X3 "latent h : [3] ~ normal(prev(x + 1))\n", 2, 30, "x + 1",
                 "prev() takes the name of an input, latent or observed node");
}

/* ---- derivation ---- */

static void test_rule_combinations(void **state)
{
    expect_rendered(OK_MODEL "train { rule = bp(error_weights = learned) }\n",
                    "t.fep: error: error_weights applies to the rules that relax errors (pc, fpa, ipc), not 'bp'\n");
    expect_rendered(OK_MODEL "train { rule = ar(error_weights = random) }\n",
                    "t.fep: error: error_weights applies to the rules that relax errors (pc, fpa, ipc), not 'ar'\n");
    expect_error(X3 "latent h : [3] ~ normal(x, prec = 2)\ntrain { rule = ar }\n", 2, 8, "h",
                 "rule 'ar' relaxes activities, which carry no energy: latent 'h' cannot have a precision");
    expect_error(X3 "latent h : [1, 3] ~ normal(x)\ntrain { rule = pc(error_weights = learned) }\n", 2, 8, "h",
                 "error_weights = learned needs vector nodes: 'h' has shape [1, 3]");
    expect_error(OK_MODEL "train { rule = pc(error_weights = lerned) }\n", 3, 35, "lerned",
                 "unknown error_weights mode 'lerned'; did you mean 'learned'?");
    expect_ok(OK_MODEL "train { rule = ar(backward = learned, derivative = none) }\n");
    expect_ok(OK_MODEL "train { rule = ipc(backward = random, error_weights = random) }\n");
}

/* ---- robustness: random single-token mutations ---- */

typedef struct Tok {
    unsigned start, end;
    char kind;            /* 'i' identifier, 'n' number, 's' string, 'p' punctuation */
} Tok;

static bool is_alpha(char c) { return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Splits `t` into tokens roughly as the lexer does (comments skipped). */
static int tokenize(const char *t, Tok *toks, int max)
{
    int n = 0;
    for (unsigned i = 0; t[i] && n < max;) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '#') {
            while (t[i] && t[i] != '\n')
                i++;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            i++;
            continue;
        }
        Tok k = {.start = i};
        if (is_alpha((char)ch)) {
            while (is_alpha(t[i]) || is_digit(t[i]))
                i++;
            k.kind = 'i';
        } else if (is_digit((char)ch)) {
            while (is_digit(t[i]) || (t[i] == '.' && t[i + 1] != '.') || t[i] == 'e' ||
                   ((t[i] == '-' || t[i] == '+') && t[i - 1] == 'e'))
                i++;
            k.kind = 'n';
        } else if (ch == '"') {
            i++;
            while (t[i] && t[i] != '"' && t[i] != '\n')
                i++;
            if (t[i] == '"')
                i++;
            k.kind = 's';
        } else if (ch == '.' && t[i + 1] == '.') {
            i += 2;
            k.kind = 'p';
        } else {
            i++;   /* one character: a UTF-8 sequence stays whole */
            while (ch >= 0x80 && ((unsigned char)t[i] & 0xC0) == 0x80)
                i++;
            k.kind = 'p';
        }
        k.end = i;
        toks[n++] = k;
    }
    return n;
}

typedef struct Rng {
    uint64_t s;
} Rng;

static uint64_t next(Rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int below(Rng *r, int n) { return n > 0 ? (int)(next(r) % (uint64_t)n) : 0; }

/* Appends text[from, to) to a growing buffer. */
typedef struct Buf {
    char *p;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* One mutant of `text`: its tokens with one change; returns a description. */
static const char *mutate(Rng *r, const char *text, const Tok *toks, int n, Buf *out, char *what, size_t wlen)
{
    out->len = 0;
    put(out, "", 0);
    int idents[4096], n_idents = 0, numbers[4096], n_numbers = 0;
    for (int i = 0; i < n; i++) {
        if (toks[i].kind == 'i')
            idents[n_idents++] = i;
        if (toks[i].kind == 'n')
            numbers[n_numbers++] = i;
    }
    int kind = below(r, 6);
    int a = below(r, n), b = -1;
    const char *repl = NULL;     /* replacement text for token a */
    char num[8];
    switch (kind) {
    case 0:   /* delete a token */
        repl = "";
        snprintf(what, wlen, "delete token %d", a);
        break;
    case 1:   /* duplicate a token */
        snprintf(what, wlen, "duplicate token %d", a);
        break;
    case 2:   /* swap two identifiers */
        if (n_idents < 2)
            return NULL;
        a = idents[below(r, n_idents)];
        b = idents[below(r, n_idents)];
        if (a > b) {
            int t = a;
            a = b;
            b = t;
        }
        snprintf(what, wlen, "swap tokens %d and %d", a, b);
        break;
    case 3:   /* a number becomes 0 or -1 */
        if (!n_numbers)
            return NULL;
        a = numbers[below(r, n_numbers)];
        snprintf(num, sizeof num, "%s", below(r, 2) ? "0" : "-1");
        repl = num;
        snprintf(what, wlen, "number token %d -> %s", a, num);
        break;
    case 4:   /* a name becomes another name of the file */
        if (n_idents < 2)
            return NULL;
        a = idents[below(r, n_idents)];
        b = idents[below(r, n_idents)];
        snprintf(what, wlen, "name token %d -> token %d", a, b);
        break;
    default:  /* insert a copy of some token before another */
        b = below(r, n);
        snprintf(what, wlen, "insert token %d before %d", b, a);
        break;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        put(out, text + at, toks[i].start - at);
        const Tok *src = &toks[i];
        if (i == a && kind == 0)
            src = NULL;
        else if (i == a && kind == 3)
            src = NULL;
        else if (kind == 2 && i == a)
            src = &toks[b];
        else if (kind == 2 && i == b)
            src = &toks[a];
        else if (kind == 4 && i == a)
            src = &toks[b];
        if (kind == 5 && i == a) {
            put(out, text + toks[b].start, toks[b].end - toks[b].start);
            put(out, " ", 1);
        }
        if (src)
            put(out, text + src->start, src->end - src->start);
        else if (repl)
            put(out, repl, strlen(repl));
        if (kind == 1 && i == a) {
            put(out, " ", 1);
            put(out, text + toks[i].start, toks[i].end - toks[i].start);
        }
        at = toks[i].end;
    }
    put(out, text + at, strlen(text + at));
    return out->p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* Checks the invariants of one mutant; returns true when it compiled. */
static bool check_mutant(const char *text, const char *origin, const char *what)
{
    const char *dump = getenv("FEP_FUZZ_DUMP");
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    }
    Run r;
    run_text(&r, text);
    bool ok = r.ok;
    if (!ok) {
        const Diag *d = &r.c.diag;
        bool good = d->n_errors >= 1 && d->last_message && d->last_message[0];
        Span s = d->last_span;
        /* derivation reports rule errors against the file as a whole */
        bool plain_ok = r.compiled && s.file == -1;
        if (good && !plain_ok)
            good = s.file >= 0 && s.file < d->n_files && s.start <= s.end && s.end <= d->files[s.file].len &&
                   strstr(r.out_buf, ": error: ") != NULL;
        if (!good)
            fail_msg("%s (%s): failure without a proper diagnostic (n_errors %d, message '%s', span %d:%u-%u):\n%s\n"
                     "output:\n%s",
                     origin, what, d->n_errors, d->last_message ? d->last_message : "(null)", s.file, s.start,
                     s.end, text, r.out_buf);
    }
    if (!ok && getenv("FEP_FUZZ_MESSAGES"))
        fprintf(stderr, "MSG %s\n", r.c.diag.last_message);
    run_free(&r);
    return ok;
}

static void test_mutations(void **state)
{
    DIR *dir = opendir(FEP_SOURCE_DIR "/models");
    assert_non_null(dir);
    /* extra seeds for syntax the shipped models do not use */
    static const char *const extra[] = {
        "extern sq(x) = \"libm.so.6:sqrtf\" grad \"g\"\ninput x : [3]\nlet z = sq(x) * 2\n"
        "latent h : [3] ~ normal(z, prec = exp(x))\nobserved y : [3] ~ bernoulli(h[0:3])\n",
        "input u[t in 0..4] : [2]\nparam W : [2, 2] = [[1, 0], [0, 1]]\nlatent s[t in 0..4] : [2] ~ "
        "normal(W @ s[t-1] + u[t], var = 0.5)\nobserved o : [2] ~ normal(leaky_relu(s[3], 0.1))\n"
        "train { rule = pc(derivative = none)  integrator = heun  momentum = 0.5  tol = 0.001 }\n",
        "const C : [2, 3] = uniform(-1, 1)\ninput x : [3]\nlatent a : [2] ~ normal(softmax(C @ x))\n"
        "latent b : [5] ~ normal(concat(a, flatten(reshape(transpose([[1, 2, 3], [4, 5, 6]]) @ a, [3, 1]))))\n"
        "observed y : [5] ~ categorical(b - mean(b))\ntrain { optimizer = sgd(0.1, 0.9)  batch = 8 }\n",
    };
    struct dirent *e;
    char *texts[64];
    char names[64][300];
    int n_texts = 0;
    while ((e = readdir(dir)) && n_texts < 60) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".fep"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s", FEP_SOURCE_DIR, e->d_name);
        texts[n_texts] = slurp(path);
        assert_non_null(texts[n_texts]);
        snprintf(names[n_texts++], sizeof names[0], "models/%s", e->d_name);
    }
    closedir(dir);
    assert_true(n_texts >= 6);
    for (int i = 0; i < 3; i++) {
        texts[n_texts] = strdup(extra[i]);
        snprintf(names[n_texts++], sizeof names[0], "extra seed %d", i);
    }
    int per_text = getenv("FEP_FUZZ_N") ? atoi(getenv("FEP_FUZZ_N")) : 1500;
    int total = 0, compiled = 0;
    int depth = getenv("FEP_FUZZ_DEPTH") ? atoi(getenv("FEP_FUZZ_DEPTH")) : 1;
    Buf buf = {0}, buf2 = {0};
    Tok *toks = malloc(sizeof *toks * 4096), *toks2 = malloc(sizeof *toks2 * 4096);
    for (int m = 0; m < n_texts; m++) {
        int n = tokenize(texts[m], toks, 4096);
        assert_true(n > 0);
        if (!strncmp(names[m], "extra", 5) && !check_mutant(texts[m], names[m], "unmutated"))
            fail_msg("%s does not compile", names[m]);   /* the extra seeds must */
        Rng rng = {0x5EED0000u + (uint64_t)m};
        for (int k = 0; k < per_text; k++) {
            char what[96];
            const char *mutant = mutate(&rng, texts[m], toks, n, &buf, what, sizeof what);
            /* FEP_FUZZ_DEPTH=D stacks D mutations (exploration; 1 in CI) */
            for (int extra_depth = 1; mutant && extra_depth < depth; extra_depth++) {
                char *prev = strdup(mutant);
                int pn = tokenize(prev, toks2, 4096);
                mutant = pn ? mutate(&rng, prev, toks2, pn, &buf2, what, sizeof what) : NULL;
                if (mutant) {
                    buf.len = 0;
                    put(&buf, mutant, strlen(mutant));
                    mutant = buf.p;
                }
                free(prev);
            }
            if (!mutant)
                continue;
            total++;
            compiled += check_mutant(mutant, names[m], what);
        }
    }
    print_message("%d mutants, %d compiled and derived\n", total, compiled);
    assert_true(total >= 3000);
    free(toks);
    free(toks2);
    free(buf.p);
    free(buf2.p);
    for (int i = 0; i < n_texts; i++)
        free(texts[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_name),
        cmocka_unit_test(test_redefinition),
        cmocka_unit_test(test_not_a_function),
        cmocka_unit_test(test_shape_mismatch_mean),
        cmocka_unit_test(test_shape_mismatch_literal),
        cmocka_unit_test(test_broadcast_failure),
        cmocka_unit_test(test_matmul_mismatch),
        cmocka_unit_test(test_categorical_logits_shape),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_wrong_arity),
        cmocka_unit_test(test_unknown_function),
        cmocka_unit_test(test_unknown_distribution),
        cmocka_unit_test(test_normal_arguments),
        cmocka_unit_test(test_unknown_rule),
        cmocka_unit_test(test_unknown_rule_override),
        cmocka_unit_test(test_unknown_train_key),
        cmocka_unit_test(test_duplicate_train_key),
        cmocka_unit_test(test_bad_train_values),
        cmocka_unit_test(test_bad_init),
        cmocka_unit_test(test_ragged_literal),
        cmocka_unit_test(test_bad_dimension),
        cmocka_unit_test(test_extern),
        cmocka_unit_test(test_family),
        cmocka_unit_test(test_prev),
        cmocka_unit_test(test_rule_combinations),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
