/* test_frontend.c — cmocka tests for frontend/: lexer, parser, AST, diag.
 *
 * Covers: the normative models of SPEC.md §5–§6 (embedded verbatim), the
 * three ParseModes, AST fields and byte spans, ast_print_expr round trips,
 * one test per error class asserting its exact wording and line:col, the
 * exact rendering of a diagnostic, and robustness (deep nesting, every
 * prefix and random mutations of the models, a 1 MB input).  Each test
 * gets a fresh arena and a memory stream that captures what diag prints. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"

/* ---- fixture ---- */

typedef struct Fx {
    Arena arena;
    Diag diag;
    FILE *out;            /* diagnostics land here */
    char *out_buf;
    size_t out_len;
    ParseResult res;
    bool ok;
    int errors_before;    /* diag.n_errors when the last parse began */
} Fx;

static int setup(void **state)
{
    Fx *fx = calloc(1, sizeof *fx);
    fx->out = open_memstream(&fx->out_buf, &fx->out_len);
    diag_init(&fx->diag, &fx->arena, fx->out);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    Fx *fx = *state;
    fclose(fx->out);
    free(fx->out_buf);
    arena_free(&fx->arena);
    free(fx);
    return 0;
}

/* Parses `len` bytes of `text` as file `name`; returns the parse result. */
static bool parse_named(Fx *fx, const char *name, const char *text, size_t len, ParseMode mode)
{
    int file = diag_add_file(&fx->diag, name, text, len);
    fx->errors_before = fx->diag.n_errors;
    fx->ok = parse_source(&fx->diag, &fx->arena, file, mode, &fx->res);
    return fx->ok;
}

static bool parse(Fx *fx, const char *text, ParseMode mode)
{
    return parse_named(fx, "t.fep", text, strlen(text), mode);
}

/* Everything diag has printed so far. */
static const char *output(Fx *fx)
{
    fflush(fx->out);
    return fx->out_buf ? fx->out_buf : "";
}

/* The last parse failed with exactly one error, worded `msg`, at line:col. */
static void check_error(Fx *fx, const char *msg, int line, int col)
{
    assert_false(fx->ok);
    assert_int_equal(fx->diag.n_errors - fx->errors_before, 1);
    assert_non_null(fx->diag.last_message);
    assert_string_equal(fx->diag.last_message, msg);
    int l, c;
    diag_line_col(&fx->diag, fx->diag.last_span.file, fx->diag.last_span.start, &l, &c);
    assert_int_equal(l, line);
    assert_int_equal(c, col);
}

static void check_ok(Fx *fx)
{
    if (!fx->ok)
        fprintf(stderr, "%s", output(fx));
    assert_true(fx->ok);
    assert_int_equal(fx->diag.n_errors, fx->errors_before);
}

/* The source text covered by `s` (arena copy). */
static const char *span_text(Fx *fx, Span s)
{
    const SourceFile *f = &fx->diag.files[s.file];
    assert_true(s.start <= s.end && s.end <= f->len);
    return arena_strndup(&fx->arena, f->text + s.start, s.end - s.start);
}

/* ast_print_expr into an arena string. */
static const char *print_expr(Fx *fx, const AstExpr *e)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ast_print_expr(f, e);
    fclose(f);
    const char *s = arena_strdup(&fx->arena, buf);
    free(buf);
    return s;
}

static const AstDecl *find_decl(const AstModel *m, const char *name)
{
    for (int i = 0; i < m->n_decls; i++)
        if (m->decls[i]->name && strcmp(m->decls[i]->name, name) == 0)
            return m->decls[i];
    fail_msg("no declaration '%s'", name);
    return NULL;
}

/* ---- the normative models, verbatim from SPEC.md ---- */

/* SPEC.md §5 training block */
static const char MODEL_5[] =
    "train {\n"
    "  rule = pc\n"
    "  steps = 20            # relaxation iterations per batch\n"
    "  step_size = 0.1       # inference rate\n"
    "  optimizer = adam(lr = 0.001)     # sgd(lr, momentum), adam(lr, beta1, beta2, eps)\n"
    "  batch = 64\n"
    "  epochs = 5\n"
    "  seed = 1\n"
    "}\n"
    ;

/* SPEC.md §6.1 models/fmnist_mlp.fep */
static const char MODEL_6_1[] =
    "model fmnist_mlp\n"
    "\n"
    "input    x  : [784]\n"
    "param    W1 : [256, 784] = xavier\n"
    "param    b1 : [256]      = zeros\n"
    "param    W2 : [256, 256] = xavier\n"
    "param    b2 : [256]      = zeros\n"
    "param    W3 : [10, 256]  = xavier\n"
    "param    b3 : [10]       = zeros\n"
    "\n"
    "latent   h1 : [256] ~ normal(W1 @ x + b1)\n"
    "latent   h2 : [256] ~ normal(W2 @ tanh(h1) + b2)\n"
    "observed y  : [10]  ~ categorical(W3 @ tanh(h2) + b3)\n"
    "\n"
    "train {\n"
    "  rule = fpa\n"
    "  steps = 20\n"
    "  step_size = 0.5\n"
    "  optimizer = adam(lr = 0.001)\n"
    "  batch = 64\n"
    "  epochs = 5\n"
    "}\n"
    ;

/* SPEC.md §6.2 models/fmnist_generative.fep */
static const char MODEL_6_2[] =
    "model fmnist_generative\n"
    "\n"
    "param    W2 : [128, 20]  = normal(0.05)\n"
    "param    W1 : [784, 128] = normal(0.05)\n"
    "latent   z  : [20]  ~ normal(0)\n"
    "latent   h  : [128] ~ normal(W2 @ z)\n"
    "observed x  : [784] ~ normal(sigmoid(W1 @ tanh(h)), prec = 4)\n"
    "\n"
    "train { rule = pc  steps = 100  step_size = 0.1  optimizer = sgd(lr = 0.01)  batch = 64  epochs = 10 }\n"
    ;

/* SPEC.md §6.3 models/kalman.fep */
static const char MODEL_6_3[] =
    "model kalman\n"
    "\n"
    "param    A : [3, 3] = [[1, 0.1, 0.005], [0, 1, 0.1], [0, 0, 1]]\n"
    "const    B : [3, 1] = [[0], [0], [1]]\n"
    "const    C : [3, 3] = [[0.5, -1.2, 0.3], [1.1, 0.4, -0.7], [-0.2, 0.9, 1.3]]\n"
    "input    u : [1]\n"
    "latent   s : [3] ~ normal(A @ prev(s) + B @ u)\n"
    "observed o : [3] ~ normal(C @ s)\n"
    "\n"
    "train { rule = pc  steps = 5  step_size = 0.1  optimizer = sgd(lr = 0.00001) }\n"
    ;

/* SPEC.md §6.4 models/names_rnn.fep */
static const char MODEL_6_4[] =
    "model names_rnn\n"
    "\n"
    "input    x[t in 0..12] : [57]\n"
    "param    Wx : [128, 57]  = xavier\n"
    "param    Wh : [128, 128] = xavier\n"
    "param    bh : [128]      = zeros\n"
    "param    Wy : [18, 128]  = xavier\n"
    "param    by : [18]       = zeros\n"
    "latent   h[t in 0..12] : [128] ~ normal(tanh(Wh @ h[t-1] + Wx @ x[t] + bh))\n"
    "observed y : [18] ~ categorical(Wy @ h[11] + by)\n"
    "\n"
    "train { rule = fpa  steps = 40  step_size = 0.5 }\n"
    ;

/* SPEC.md §6.5 models/cifar_cnn.fep-style */
static const char MODEL_6_5[] =
    "model small_cnn\n"
    "\n"
    "input    x  : [1, 28, 28]\n"
    "param    K1 : [6, 1, 5, 5]  = kaiming\n"
    "param    K2 : [16, 6, 5, 5] = kaiming\n"
    "param    W  : [10, 256]     = xavier\n"
    "latent   c1 : [6, 12, 12]   ~ normal(maxpool(relu(conv2d(x, K1)), 2))\n"
    "latent   c2 : [16, 4, 4]    ~ normal(maxpool(relu(conv2d(c1, K2)), 2))\n"
    "observed y  : [10]          ~ categorical(W @ flatten(c2))\n"
    ;

/* SPEC.md §6.6 models/scalar_graph.fep */
static const char MODEL_6_6[] =
    "model scalar_graph\n"
    "\n"
    "param    theta : [1] = 2\n"
    "latent   v0 : [1] ~ normal(5)\n"
    "latent   v1 : [1] ~ normal(theta * v0)\n"
    "latent   v2 : [1] ~ normal(sqrt(v1))\n"
    "latent   v3 : [1] ~ normal(square(v0))\n"
    "observed v4 : [1] ~ normal(tan(v2) + sin(v3))\n"
    ;

typedef struct NormativeModel {
    const char *text, *name;
    int n_decls;
} NormativeModel;

static const NormativeModel MODELS[] = {
    {MODEL_6_1, "fmnist_mlp", 11},    {MODEL_6_2, "fmnist_generative", 6}, {MODEL_6_3, "kalman", 7},
    {MODEL_6_4, "names_rnn", 9},      {MODEL_6_5, "small_cnn", 7},         {MODEL_6_6, "scalar_graph", 6},
};
enum { N_MODELS = sizeof MODELS / sizeof MODELS[0] };

/* ---- normative models ---- */

static void test_normative_models_parse(void **state)
{
    Fx *fx = *state;
    for (int i = 0; i < N_MODELS; i++) {
        parse(fx, MODELS[i].text, PARSE_MODEL);
        check_ok(fx);
        assert_non_null(fx->res.model);
        assert_string_equal(fx->res.model->name, MODELS[i].name);
        assert_int_equal(fx->res.model->n_decls, MODELS[i].n_decls);
    }
    assert_string_equal(output(fx), "");
}

static void test_spec_train_block(void **state)
{
    Fx *fx = *state;
    parse(fx, MODEL_5, PARSE_DECLS);
    check_ok(fx);
    assert_int_equal(fx->res.model->n_decls, 1);
    const AstDecl *t = fx->res.model->decls[0];
    assert_int_equal(t->kind, DECL_TRAIN);
    assert_int_equal(t->n_entries, 7);
    assert_string_equal(t->entries[2].key, "step_size");
    assert_string_equal(span_text(fx, t->entries[2].key_span), "step_size");
    assert_string_equal(print_expr(fx, t->entries[3].value), "adam(lr = 0.001)");
    assert_string_equal(t->entries[6].key, "seed");
    assert_true(t->entries[6].value->num_is_int);
}

static void test_mlp_fields(void **state)
{
    Fx *fx = *state;
    parse(fx, MODEL_6_1, PARSE_MODEL);
    check_ok(fx);
    const AstModel *m = fx->res.model;
    assert_string_equal(span_text(fx, m->name_span), "fmnist_mlp");

    const AstDecl *x = m->decls[0];
    assert_int_equal(x->kind, DECL_INPUT);
    assert_false(x->has_family);
    assert_null(x->dist);

    const AstDecl *w1 = find_decl(m, "W1");
    assert_int_equal(w1->kind, DECL_PARAM);
    assert_int_equal(w1->n_dims, 2);
    assert_int_equal(w1->dims[0], 256);
    assert_int_equal(w1->dims[1], 784);
    assert_string_equal(span_text(fx, w1->dim_spans[1]), "784");
    assert_string_equal(span_text(fx, w1->shape_span), "[256, 784]");
    assert_int_equal(w1->init->kind, AST_NAME);
    assert_string_equal(w1->init->name, "xavier");
    assert_string_equal(span_text(fx, w1->span), "param    W1 : [256, 784] = xavier");

    const AstDecl *y = find_decl(m, "y");
    assert_int_equal(y->kind, DECL_OBSERVED);
    assert_int_equal(y->dist->kind, AST_CALL);
    assert_string_equal(y->dist->name, "categorical");
    assert_string_equal(print_expr(fx, y->dist), "categorical(((W3 @ tanh(h2)) + b3))");

    const AstDecl *t = m->decls[m->n_decls - 1];
    assert_int_equal(t->kind, DECL_TRAIN);
    assert_int_equal(t->n_entries, 6);
    assert_string_equal(t->entries[0].key, "rule");
    assert_int_equal(t->entries[0].value->kind, AST_NAME);
    const AstExpr *opt = t->entries[3].value;
    assert_int_equal(opt->kind, AST_CALL);
    assert_int_equal(opt->n_args, 1);
    assert_string_equal(opt->args[0].name, "lr");
    assert_string_equal(span_text(fx, opt->args[0].name_span), "lr");
    assert_false(opt->args[0].value->num_is_int);
    assert_true(opt->args[0].value->num == 0.001);
}

static void test_rnn_families(void **state)
{
    Fx *fx = *state;
    parse(fx, MODEL_6_4, PARSE_MODEL);
    check_ok(fx);
    const AstDecl *h = find_decl(fx->res.model, "h");
    assert_true(h->has_family);
    assert_string_equal(h->family_var, "t");
    assert_int_equal(h->family_lo, 0);
    assert_int_equal(h->family_hi, 12);
    assert_string_equal(span_text(fx, h->family_span), "[t in 0..12]");
    assert_int_equal(h->n_dims, 1);
    assert_int_equal(h->dims[0], 128);
    assert_string_equal(print_expr(fx, h->dist), "normal(tanh((((Wh @ h[(t - 1)]) + (Wx @ x[t])) + bh)))");
    const AstDecl *x = find_decl(fx->res.model, "x");
    assert_int_equal(x->kind, DECL_INPUT);
    assert_true(x->has_family);
    assert_int_equal(x->family_hi, 12);
}

static void test_kalman_literals(void **state)
{
    Fx *fx = *state;
    parse(fx, MODEL_6_3, PARSE_MODEL);
    check_ok(fx);
    const AstDecl *c = find_decl(fx->res.model, "C");
    assert_int_equal(c->kind, DECL_CONST);
    assert_int_equal(c->init->kind, AST_LIST);
    assert_int_equal(c->init->n_args, 3);
    const AstExpr *row0 = c->init->args[0].value;
    assert_int_equal(row0->kind, AST_LIST);
    assert_int_equal(row0->args[1].value->kind, AST_NEG);
    assert_true(row0->args[1].value->lhs->num == 1.2);
    assert_string_equal(print_expr(fx, c->init), "[[0.5, -1.2, 0.3], [1.1, 0.4, -0.7], [-0.2, 0.9, 1.3]]");
    const AstDecl *s = find_decl(fx->res.model, "s");
    assert_string_equal(print_expr(fx, s->dist), "normal(((A @ prev(s)) + (B @ u)))");
    assert_null(s->init);
}

/* ---- modes, spans, printing ---- */

static void test_parse_expr_mode(void **state)
{
    Fx *fx = *state;
    parse(fx, "tanh(theta) * 2", PARSE_EXPR);
    check_ok(fx);
    assert_null(fx->res.model);
    const AstExpr *e = fx->res.expr;
    assert_int_equal(e->kind, AST_BINARY);
    assert_int_equal(e->binop, BIN_MUL);
    assert_int_equal(e->lhs->kind, AST_CALL);
    assert_string_equal(span_text(fx, e->span), "tanh(theta) * 2");
    assert_true(e->rhs->num_is_int);

    parse(fx, "1 +", PARSE_EXPR);
    check_error(fx, "expected expression, found end of file", 1, 4);
}

static void test_parse_expr_rejects_trailing(void **state)
{
    Fx *fx = *state;
    parse(fx, "tanh(x) y", PARSE_EXPR);
    check_error(fx, "expected an operator or end of input, found 'y'", 1, 9);
}

static void test_parse_decls_mode(void **state)
{
    Fx *fx = *state;
    parse(fx, "let z = W1 @ x\nlatent q : [] ~ normal(z)", PARSE_DECLS);
    check_ok(fx);
    assert_null(fx->res.model->name);
    assert_int_equal(fx->res.model->n_decls, 2);
    assert_int_equal(fx->res.model->decls[1]->n_dims, 0);
    assert_string_equal(span_text(fx, fx->res.model->decls[1]->shape_span), "[]");
    parse(fx, "", PARSE_DECLS);   /* an empty REPL line declares nothing */
    check_ok(fx);
    assert_int_equal(fx->res.model->n_decls, 0);
}

static void test_spans(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nlatent   h1 : [256] ~ normal(W1 @ x + b1)\n", PARSE_MODEL);
    check_ok(fx);
    const AstDecl *h = fx->res.model->decls[0];
    assert_string_equal(span_text(fx, h->span), "latent   h1 : [256] ~ normal(W1 @ x + b1)");
    assert_string_equal(span_text(fx, h->name_span), "h1");
    const AstExpr *call = h->dist;
    assert_string_equal(span_text(fx, call->span), "normal(W1 @ x + b1)");
    assert_string_equal(span_text(fx, call->name_span), "normal");
    const AstExpr *sum = call->args[0].value;
    assert_int_equal(sum->kind, AST_BINARY);
    assert_int_equal(sum->binop, BIN_ADD);
    assert_int_equal(sum->span.start, 37);
    assert_int_equal(sum->span.end, 48);
    assert_string_equal(span_text(fx, sum->span), "W1 @ x + b1");
    assert_string_equal(span_text(fx, sum->lhs->span), "W1 @ x");
    assert_string_equal(span_text(fx, sum->rhs->span), "b1");
    int line, col;
    diag_line_col(&fx->diag, sum->span.file, sum->span.start, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 30);
}

static void test_spans_of_postfix_and_parens(void **state)
{
    Fx *fx = *state;
    parse(fx, "-(a + b)[1:] * [c, 2]", PARSE_EXPR);
    check_ok(fx);
    const AstExpr *e = fx->res.expr;
    assert_string_equal(span_text(fx, e->span), "-(a + b)[1:] * [c, 2]");
    const AstExpr *neg = e->lhs;
    assert_int_equal(neg->kind, AST_NEG);
    assert_string_equal(span_text(fx, neg->span), "-(a + b)[1:]");
    const AstExpr *idx = neg->lhs;
    assert_int_equal(idx->kind, AST_INDEX);
    assert_true(idx->is_slice);
    assert_null(idx->index_hi);
    assert_string_equal(span_text(fx, idx->span), "(a + b)[1:]");
    assert_string_equal(span_text(fx, idx->lhs->span), "(a + b)");
    assert_string_equal(span_text(fx, e->rhs->span), "[c, 2]");
}

static void test_print_round_trip(void **state)
{
    Fx *fx = *state;
    static const char *const cases[][2] = {
        {"W1 @ x + b1", "((W1 @ x) + b1)"},
        {"a - b - c", "((a - b) - c)"},
        {"a - (b - c)", "(a - (b - c))"},
        {"a * b @ c / d", "(((a * b) @ c) / d)"},
        {"-x[0] + (-x)[1]", "(-x[0] + (-x)[1])"},
        {"- -x", "--x"},
        {"x[:2] + x[a:] + x[:] + x[1:b]", "(((x[:2] + x[a:]) + x[:]) + x[1:b])"},
        {"conv2d(x, K, stride = 1, pad = 0)", "conv2d(x, K, stride = 1, pad = 0)"},
        {"normal(mean, prec = P)", "normal(mean, prec = P)"},
        {"[[1, 0.1], [0, 1]]", "[[1, 0.1], [0, 1]]"},
        {"[]", "[]"},
        {"f()", "f()"},
        {"2.0 + 1e-3 + .5 + 3E2 + 7", "((((2.0 + 0.001) + 0.5) + 300.0) + 7)"},
        {"uniform(-1, 1)", "uniform(-1, 1)"},
        {"pc(backward = learned, derivative = none)", "pc(backward = learned, derivative = none)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parse(fx, cases[i][0], PARSE_EXPR);
        check_ok(fx);
        const char *once = print_expr(fx, fx->res.expr);
        assert_string_equal(once, cases[i][1]);
        parse(fx, once, PARSE_EXPR);
        check_ok(fx);
        assert_string_equal(print_expr(fx, fx->res.expr), once);
    }
    assert_string_equal(ast_binop_text(BIN_MATMUL), "@");
    assert_string_equal(ast_binop_text(BIN_DIV), "/");
}

static void test_other_declarations(void **state)
{
    Fx *fx = *state;
    parse(fx,
          "latent s : [3] ~ normal(A @ prev(s) + B @ u) init = zeros\n"
          "extern softsign(x) = \"libfoo.so:softsign\" grad \"softsign_grad\"\n"
          "extern mix(a, b) = \"libm.so:mix\"\n"
          "param W : [2, 2] = uniform(-1, 1)\n"
          "input seq[t in -2..3] : [4]\n"
          "train { rule = pc(backward = learned, derivative = none) init = 2 }\n",
          PARSE_DECLS);
    check_ok(fx);
    const AstModel *m = fx->res.model;
    const AstDecl *s = m->decls[0];
    assert_int_equal(s->kind, DECL_LATENT);
    assert_non_null(s->init);
    assert_string_equal(s->init->name, "zeros");
    const AstDecl *e = m->decls[1];
    assert_int_equal(e->kind, DECL_EXTERN);
    assert_string_equal(e->name, "softsign");
    assert_int_equal(e->n_ext_params, 1);
    assert_string_equal(e->ext_params[0], "x");
    assert_string_equal(e->ext_target, "libfoo.so:softsign");
    assert_string_equal(span_text(fx, e->ext_target_span), "\"libfoo.so:softsign\"");
    assert_string_equal(e->ext_grad, "softsign_grad");
    assert_int_equal(m->decls[2]->n_ext_params, 2);
    assert_null(m->decls[2]->ext_grad);
    assert_int_equal(m->decls[4]->family_lo, -2);
    assert_int_equal(m->decls[4]->family_hi, 3);
    const AstDecl *t = m->decls[5];
    assert_string_equal(print_expr(fx, t->entries[0].value), "pc(backward = learned, derivative = none)");
    assert_string_equal(t->entries[1].key, "init");
}

/* ---- error classes: one wording each, with line:col ---- */

static void test_error_stray_character(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nparam $W : [1] = 0", PARSE_MODEL);
    check_error(fx, "stray character '$' in model", 2, 7);
    parse(fx, "let a = b \x01", PARSE_MODEL);
    check_error(fx, "stray character '\\x01' in model", 1, 11);
    parse(fx, "let \xce\xb8 = 1", PARSE_MODEL);   /* θ */
    check_error(fx, "stray character '\xce\xb8' in model", 1, 5);
    parse(fx, "let a = b;", PARSE_MODEL);
    check_error(fx, "stray character ';' in model", 1, 10);
}

static void test_error_expected_expression(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\n\nlet z = )", PARSE_MODEL);
    check_error(fx, "expected expression, found ')'", 3, 9);
    parse(fx, "param W : [2] = ", PARSE_MODEL);
    check_error(fx, "expected expression, found end of file", 1, 16);
}

static void test_error_expected_colon(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nlatent h ~ normal(x)\n", PARSE_MODEL);
    check_error(fx, "expected ':' after node name, found '~'", 2, 10);
}

static void test_error_expected_declaration(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nfoo x : [1]\n", PARSE_MODEL);
    check_error(fx, "unknown declaration 'foo'; expected a declaration (param, const, input, latent, observed, let, extern, train, hidden, outcome, control, counts, agent)",
                2, 1);
}

static void test_error_other_syntax(void **state)
{
    Fx *fx = *state;
    static const struct { const char *text, *msg; int line, col; } cases[] = {
        {"param W : [n] = 0", "expected an integer dimension, found 'n'", 1, 12},
        {"param W : [3] xavier", "expected '=' and an initial value after the shape, found 'xavier'", 1, 15},
        {"latent h : [3] normal(x)", "expected '~' and a distribution after the shape, found 'normal'", 1, 16},
        {"latent : [3]", "expected a name after 'latent', found ':'", 1, 8},
        {"model", "expected a model name after 'model', found end of file", 1, 6},
        {"input x[t 0..3] : [2]", "expected 'in', as in h[t in 0..T], found '0'", 1, 11},
        {"input x[t in 0 3] : [2]", "expected '..' between the bounds, as in h[t in 0..T], found '3'", 1, 16},
        {"input x[t in a..3] : [2]", "expected an integer, found 'a'", 1, 14},
        {"input x : 784", "expected a shape such as [256, 784], found '784'", 1, 11},
        {"train rule", "expected '{' after 'train', found 'rule'", 1, 7},
        {"train { rule pc }", "expected '=' after train key 'rule', found 'pc'", 1, 14},
        {"train { rule = pc 5 }", "expected a train key (such as steps) or '}', found '5'", 1, 19},
        {"let z ~ 1", "expected '=' after 'z', found '~'", 1, 7},
        {"extern f x", "expected '(' and a parameter list after the extern name, found 'x'", 1, 10},
        {"extern f(x) = g", "expected a string naming the function, as in \"libfoo.so:softsign\", found 'g'", 1, 15},
        {"let a = f(x)(y)", "expected a declaration (param, const, input, latent, observed, let, extern, train, hidden, outcome, control, counts, agent), found '('",
         1, 13},
        {"let a = f(x y)", "expected ')' to close '(' at 1:10, found 'y'", 1, 13},
        {"let a = f(b ]", "expected ')' to close '(' at 1:10, found ']'", 1, 13},
        {"let a = [1 2]", "expected ']' to close '[' at 1:9, found '2'", 1, 12},
        {"let a = x[]", "expected expression, found ']'", 1, 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parse(fx, cases[i].text, PARSE_MODEL);
        check_error(fx, cases[i].msg, cases[i].line, cases[i].col);
    }
}

static void test_error_tilde_note(void **state)
{
    Fx *fx = *state;
    parse(fx, "input x : [3] ~ normal(0)", PARSE_MODEL);
    check_error(fx, "expected a declaration (param, const, input, latent, observed, let, extern, train, hidden, outcome, control, counts, agent), found '~'", 1, 15);
    assert_non_null(strstr(output(fx), "t.fep:1:15: note: only 'latent' and 'observed' nodes take a distribution\n"));
}

static void test_error_unclosed_bracket_at_token(void **state)
{
    Fx *fx = *state;
    static const char bad[] = "model bad\n\nlatent h : [256 ~ normal(x)\n";
    parse_named(fx, "models/bad.fep", bad, strlen(bad), PARSE_MODEL);
    check_error(fx, "expected ']' to close '[' at 3:12, found '~'", 3, 17);
    assert_string_equal(output(fx), "models/bad.fep:3:17: error: expected ']' to close '[' at 3:12, found '~'\n"
                                    "   3 | latent h : [256 ~ normal(x)\n"
                                    "     |                 ^\n");
}

static void test_error_unterminated_train_block(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\ntrain {\n  rule = pc\n  steps = 20\n", PARSE_MODEL);
    check_error(fx, "unterminated train block: expected '}' to close '{' at 2:7, found end of file", 2, 7);
    assert_int_equal(fx->diag.last_span.end - fx->diag.last_span.start, 1);
}

static void test_error_unterminated_paren_and_bracket(void **state)
{
    Fx *fx = *state;
    parse(fx, "latent h : [2] ~ normal(W @ x\n\n", PARSE_MODEL);
    check_error(fx, "unterminated parenthesis: expected ')' to close '(' at 1:24, found end of file", 1, 24);
    parse(fx, "const A : [2, 2] = [[1, 0],\n                    [0, 1]", PARSE_MODEL);
    check_error(fx, "unterminated bracket: expected ']' to close '[' at 1:20, found end of file", 1, 20);
    parse(fx, "param W : [3", PARSE_MODEL);
    check_error(fx, "unterminated bracket: expected ']' to close '[' at 1:11, found end of file", 1, 11);
}

static void test_error_unclosed_note_at_eof(void **state)
{
    Fx *fx = *state;
    parse(fx, "let a = f(x, y =", PARSE_MODEL);   /* ')' is not what is missing next */
    check_error(fx, "expected expression, found end of file", 1, 17);
    assert_non_null(strstr(output(fx), "t.fep:1:10: note: '(' opened here is never closed\n"));
}

static void test_error_unterminated_string(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nextern softsign(x) = \"libfoo.so:softsign\n", PARSE_MODEL);
    check_error(fx, "unterminated string literal: expected '\"' before end of line", 2, 22);
    assert_string_equal(span_text(fx, fx->diag.last_span), "\"libfoo.so:softsign");
}

static void test_error_empty_file(void **state)
{
    Fx *fx = *state;
    parse(fx, "", PARSE_MODEL);
    check_error(fx, "empty model file: expected 'model NAME' or a declaration", 1, 1);
    parse(fx, "# only a comment\n\n   \t\n# and another", PARSE_MODEL);
    check_error(fx, "empty model file: expected 'model NAME' or a declaration", 1, 1);
}

static void test_error_binary_file(void **state)
{
    Fx *fx = *state;
    static const char with_nul[] = "model m\nlet a\0 = 1\n";
    parse_named(fx, "m.fep", with_nul, sizeof with_nul - 1, PARSE_MODEL);
    check_error(fx, "not a text file: binary data at byte 13", 2, 6);
    assert_string_equal(output(fx), "m.fep: error: not a text file: binary data at byte 13\n");
    parse(fx, "model m\n\x89PNG\r\n", PARSE_MODEL);
    check_error(fx, "not a text file: binary data at byte 8", 2, 1);
    parse(fx, "let a = \xed\xa0\x80", PARSE_MODEL);   /* a UTF-16 surrogate */
    check_error(fx, "not a text file: binary data at byte 8", 1, 9);
}

static void test_error_number_out_of_range(void **state)
{
    Fx *fx = *state;
    parse(fx, "model m\nparam W : [1] = 1e999", PARSE_MODEL);
    check_error(fx, "number literal out of range", 2, 17);
    char big[400];
    memset(big, '9', 320);
    big[320] = '\0';
    parse(fx, big, PARSE_EXPR);
    check_error(fx, "number literal out of range", 1, 1);
}

static void test_error_malformed_number(void **state)
{
    Fx *fx = *state;
    parse(fx, "let z = 12abc", PARSE_MODEL);
    check_error(fx, "malformed number literal '12abc'", 1, 9);
    parse(fx, "let z = 1e+", PARSE_MODEL);
    check_error(fx, "malformed number literal '1e+'", 1, 9);
}

/* ---- rendering ---- */

static void test_diag_render(void **state)
{
    Fx *fx = *state;
    const char *src = "a\n\tb = c\xce\xb8 + wide_name_here\n";
    int file = diag_add_file(&fx->diag, "r.fep", src, strlen(src));
    unsigned at = (unsigned)(strstr(src, "wide") - src);
    diag_error(&fx->diag, (Span){file, at, at + 9}, "bad %s", "thing");
    diag_note(&fx->diag, (Span){file, 0, 1}, "first used here");
    diag_error_plain(&fx->diag, "fepc", "cannot open '%s'", "x.fep");
    assert_string_equal(output(fx), "r.fep:2:11: error: bad thing\n"
                                    "   2 | \tb = c\xce\xb8 + wide_name_here\n"
                                    "     | \t         ^~~~~~~~~\n"
                                    "r.fep:1:1: note: first used here\n"
                                    "   1 | a\n"
                                    "     | ^\n"
                                    "fepc: error: cannot open 'x.fep'\n");
    assert_int_equal(fx->diag.n_errors, 2);
    assert_string_equal(fx->diag.last_message, "cannot open 'x.fep'");
    Span j = span_join((Span){file, 5, 7}, (Span){file, 2, 3});
    assert_int_equal(j.start, 2);
    assert_int_equal(j.end, 7);
}

static void test_diag_render_wide_line_numbers_and_eol(void **state)
{
    Fx *fx = *state;
    size_t n = 12000 * 2;
    char *src = arena_alloc(&fx->arena, n + 8);
    for (size_t i = 0; i < n; i += 2)
        memcpy(src + i, "x\n", 2);
    memcpy(src + n, "abc\r\n", 6);
    int file = diag_add_file(&fx->diag, "w.fep", src, n + 5);
    diag_error(&fx->diag, (Span){file, (unsigned)n + 1, (unsigned)n + 40}, "here");   /* clipped to the line */
    assert_string_equal(output(fx), "w.fep:12001:2: error: here\n"
                                    "12001 | abc\n"
                                    "      |  ^~\n");
}

/* ---- robustness ---- */

static void test_deep_nesting(void **state)
{
    Fx *fx = *state;
    enum { DEPTH = 10000 };
    static const char *const openers[] = {"(", "[", "-", "f("};
    for (int k = 0; k < 4; k++) {
        size_t w = strlen(openers[k]);
        char *src = arena_alloc(&fx->arena, 8 + DEPTH * (w + 1) + 2);
        strcpy(src, "let a = ");
        char *p = src + 8;
        for (int i = 0; i < DEPTH; i++, p += w)
            memcpy(p, openers[k], w);
        *p++ = 'x';
        for (int i = 0; k != 2 && i < DEPTH; i++)
            *p++ = k == 1 ? ']' : ')';
        *p = '\0';
        parse(fx, src, PARSE_MODEL);
        check_error(fx, "expression nested too deeply (limit 256)", 1, 9 + 256 * (int)w + (k == 3));
    }
    /* 256 levels are fine */
    char ok[600] = "(";
    for (int i = 1; i < 256; i++)
        strcat(ok, "(");
    strcat(ok, "1");
    for (int i = 0; i < 256; i++)
        strcat(ok, ")");
    parse(fx, ok, PARSE_EXPR);
    check_ok(fx);
}

/* Left-recursive chains do not grow bison's stack, but they deepen the AST:
 * more than 1024 operators or indexes in one declaration is an error. */
static void test_long_operator_chain(void **state)
{
    Fx *fx = *state;
    char *src = arena_alloc(&fx->arena, 4 * 2000 + 8);
    for (int i = 0; i < 2000; i++)
        memcpy(src + 4 * i, "a + ", 4);
    strcpy(src + 4 * 2000, "b");
    parse(fx, src, PARSE_EXPR);
    check_error(fx, "expression too long (limit 1024 operators)", 1, 4 * 1025 - 1);

    strcpy(src, "x");
    for (int i = 0; i < 2000; i++)
        memcpy(src + 1 + 3 * i, "[0]", 4);
    parse(fx, src, PARSE_EXPR);
    check_error(fx, "expression too long (limit 1024 operators)", 1, 3 * 1025 - 1);

    /* the count is per declaration: two of 1000 operators each are fine */
    char *two = arena_alloc(&fx->arena, 2 * (8 + 4 * 1000 + 2) + 1);
    char *p = two;
    for (int d = 0; d < 2; d++) {
        p += sprintf(p, "let z%d = ", d);
        for (int i = 0; i < 1000; i++, p += 4)
            memcpy(p, "a * ", 4);
        p += sprintf(p, "b\n");
    }
    parse(fx, two, PARSE_DECLS);
    check_ok(fx);
    assert_int_equal(fx->res.model->n_decls, 2);
    assert_non_null(print_expr(fx, fx->res.model->decls[1]->value));
}

/* Every prefix of every model either parses or fails with exactly one
 * error; none crashes (run under ASan/UBSan). */
static void test_every_prefix(void **state)
{
    Fx *fx = *state;
    for (int i = 0; i < N_MODELS; i++) {
        size_t len = strlen(MODELS[i].text);
        for (size_t n = 0; n <= len; n++) {
                bool ok = parse_named(fx, "p.fep", MODELS[i].text, n, PARSE_MODEL);
            assert_int_equal(fx->diag.n_errors - fx->errors_before, ok ? 0 : 1);
        }
        rewind(fx->out);
    }
}

/* Random byte edits of the models: the parser never crashes and reports
 * exactly one error when it fails.  A fixed LCG keeps it reproducible. */
static void test_random_mutations(void **state)
{
    Fx *fx = *state;
    static const char alphabet[] = "()[]{}:=~+-*/@,.#\"\n 0123456789eEabxyz_\x01\xce\xff";
    uint64_t seed = 12345;
    char buf[1024];
    for (int iter = 0; iter < 3000; iter++) {
        const char *base = MODELS[iter % N_MODELS].text;
        size_t len = strlen(base);
        memcpy(buf, base, len);
        for (int edits = 1 + iter % 4; edits > 0; edits--) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(seed >> 33) % len;
            buf[at] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
        bool ok = parse_named(fx, "r.fep", buf, len, iter % 3 == 0 ? PARSE_DECLS : PARSE_MODEL);
        assert_int_equal(fx->diag.n_errors - fx->errors_before, ok ? 0 : 1);
        rewind(fx->out);
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A 1 MB model of many declarations parses, in time linear in its size. */
static void test_big_input(void **state)
{
    Fx *fx = *state;
    double seconds[2];
    int counts[2];
    for (int pass = 0; pass < 2; pass++) {
        size_t target = (size_t)(pass + 1) << 20, len = 0;
        char *src = malloc(target + 256);
        int n = 0;
        len += (size_t)sprintf(src, "model big\n");
        while (len < target) {
            len += (size_t)sprintf(src + len, "param W%d : [16, 16] = xavier\nlatent h%d : [16] ~ normal(W%d @ h%d + 1.5)\n",
                                   n, n, n, n ? n - 1 : 0);
            n++;
        }
        double t0 = now_seconds();
        parse_named(fx, "big.fep", src, len, PARSE_MODEL);
        seconds[pass] = now_seconds() - t0;
        free(src);
        check_ok(fx);
        assert_int_equal(fx->res.model->n_decls, 2 * n);
        counts[pass] = n;
    }
    assert_true(counts[1] > counts[0]);
    assert_true(seconds[0] < 5.0);
    /* doubling the input must not quadruple the time (generous for noise) */
    assert_true(seconds[1] < 3.0 * seconds[0] + 0.25);
}

/* One Diag and one arena serve many parses, as in the REPL. */
static void test_many_parses_share_a_diag(void **state)
{
    Fx *fx = *state;
    for (int i = 0; i < 200; i++) {
        parse(fx, MODELS[i % N_MODELS].text, PARSE_MODEL);
        check_ok(fx);
    }
    assert_int_equal(fx->diag.n_files, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normative_models_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_train_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mlp_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rnn_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kalman_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_expr_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_expr_rejects_trailing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_decls_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans_of_postfix_and_parens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_declarations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_stray_character, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_expected_expression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_expected_colon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_expected_declaration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_other_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_tilde_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unclosed_bracket_at_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unterminated_train_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unterminated_paren_and_bracket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unclosed_note_at_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unterminated_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_binary_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_number_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_malformed_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag_render_wide_line_numbers_and_eol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_operator_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_parses_share_a_diag, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
