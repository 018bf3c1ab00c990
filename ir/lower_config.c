/* lower_config.c — the non-expression parts of a model: INIT specs, matrix
 * literals and the train block (also used for `--key value` overrides).
 *
 * Each train key is validated here once, so the file, the command line and
 * the REPL report the same error for the same bad value. */
#include "lower.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define SEED_MAX (1L << 53)   /* seeds are read as doubles, exact up to 2^53 */

static const char *const train_keys[] = {"rule", "steps", "step_size", "optimizer", "batch", "epochs",
                                         "seed", "integrator", "momentum", "tol", "schedule", "warmup"};
enum { N_TRAIN_KEYS = sizeof train_keys / sizeof *train_keys };

/* "a, b or c" */
static void join_names(char *list, size_t len, const char *const *names, int n)
{
    list[0] = 0;
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), len - strlen(list), "%s%s", i ? (i == n - 1 ? " or " : ", ") : "",
                 names[i]);
}

/* "; did you mean 'y'?" when `name` is close to one of `names`, or else
 * "; expected a, b or c": the one tail of every "unknown X 'name'" error. */
static const char *hint_or_list(Lowerer *lw, const char *name, const char *const *names, int n)
{
    const char *hint = suggest_name(name, names, n);
    if (hint)
        return arena_printf(lw->model->arena, "; did you mean '%s'?", hint);
    char list[256];
    join_names(list, sizeof list, names, n);
    return arena_printf(lw->model->arena, "; expected %s", list);
}

/* ---- matrix literals ---- */

static bool literal_shape(Lowerer *lw, const AstExpr *e, Shape *shape, int depth)
{
    if (e->kind != AST_LIST) {
        shape->rank = depth;
        return true;
    }
    if (depth >= FEP_MAX_RANK) {
        diag_error(lw->diag, e->span, "matrix literal nested deeper than %d levels", FEP_MAX_RANK);
        return false;
    }
    if (e->n_args == 0) {
        diag_error(lw->diag, e->span, "empty matrix literal");
        return false;
    }
    shape->dims[depth] = e->n_args;
    return literal_shape(lw, e->args[0].value, shape, depth + 1);
}

static bool literal_fill(Lowerer *lw, const AstExpr *e, const Shape *shape, int depth, double *out,
                         int64_t *at)
{
    if (depth == shape->rank) {
        const AstExpr *v = e;
        double sign = 1;
        if (v->kind == AST_NEG) {
            sign = -1;
            v = v->lhs;
        }
        if (v->kind != AST_NUM) {
            diag_error(lw->diag, e->span,
                       e->kind == AST_LIST ? "ragged matrix literal: expected a number here, found a list"
                                           : "matrix literal entries must be numbers");
            return false;
        }
        out[(*at)++] = sign * v->num;
        return true;
    }
    if (e->kind != AST_LIST) {
        diag_error(lw->diag, e->span, "ragged matrix literal: expected a list of %d element%s here",
                   shape->dims[depth], shape->dims[depth] == 1 ? "" : "s");
        return false;
    }
    if (e->n_args != shape->dims[depth]) {
        diag_error(lw->diag, e->span, "ragged matrix literal: this row has %d element%s, expected %d",
                   e->n_args, e->n_args == 1 ? "" : "s", shape->dims[depth]);
        return false;
    }
    for (int i = 0; i < e->n_args; i++)
        if (!literal_fill(lw, e->args[i].value, shape, depth + 1, out, at))
            return false;
    return true;
}

bool lower_literal(Lowerer *lw, const AstExpr *e, Shape *shape, double **values, int64_t *n)
{
    Shape s = {0};
    if (!literal_shape(lw, e, &s, 0))
        return false;
    int64_t count = ir_numel(&s);
    if (count > (1 << 24)) {
        diag_error(lw->diag, e->span, "matrix literal too large");
        return false;
    }
    double *vals = arena_alloc(lw->model->arena, sizeof *vals * (size_t)count);
    int64_t at = 0;
    if (!literal_fill(lw, e, &s, 0, vals, &at))
        return false;
    *shape = s;
    *values = vals;
    *n = count;
    return true;
}

/* ---- INIT ---- */

static bool number_arg(Lowerer *lw, const AstExpr *call, int i, double *out)
{
    const AstExpr *v = call->args[i].value;
    double sign = 1;
    if (v->kind == AST_NEG) {
        sign = -1;
        v = v->lhs;
    }
    if (v->kind != AST_NUM || call->args[i].name) {
        diag_error(lw->diag, call->args[i].value->span, "invalid initializer: '%s' takes numbers",
                   call->name);
        return false;
    }
    *out = sign * v->num;
    return true;
}

/* Every INIT form, for the "unknown initializer" hint or list. */
static const char *const init_forms[] = {"zeros", "ones", "xavier", "kaiming", "normal(std)",
                                         "uniform(lo, hi)", "a number", "a matrix literal"};
static const char *const init_names[] = {"zeros", "ones", "xavier", "kaiming", "normal", "uniform"};

static void unknown_init(Lowerer *lw, Span span, const char *name)
{
    const char *hint = suggest_name(name, init_names, 6);
    char list[256];
    join_names(list, sizeof list, init_forms, 8);
    if (hint)
        diag_error(lw->diag, span, "unknown initializer '%s'; did you mean '%s'?", name, hint);
    else
        diag_error(lw->diag, span, "unknown initializer '%s'; expected %s", name, list);
}

static bool init_call(Lowerer *lw, const AstExpr *e, Init *out)
{
    int want = strcmp(e->name, "normal") == 0 ? 1 : strcmp(e->name, "uniform") == 0 ? 2 : -1;
    if (want < 0) {
        unknown_init(lw, e->name_span, e->name);
        return false;
    }
    if (e->n_args != want) {
        diag_error(lw->diag, e->span, "wrong number of arguments to '%s': expected %d, got %d",
                   e->name, want, e->n_args);
        return false;
    }
    out->kind = want == 1 ? INIT_NORMAL : INIT_UNIFORM;
    if (!number_arg(lw, e, 0, &out->a) || (want == 2 && !number_arg(lw, e, 1, &out->b)))
        return false;
    if (want == 1 && !(out->a >= 0)) {
        diag_error(lw->diag, e->args[0].value->span, "invalid initializer: normal(std) needs std >= 0, got %g",
                   out->a);
        return false;
    }
    if (want == 2 && !(out->a < out->b)) {
        diag_error(lw->diag, e->span, "invalid initializer: uniform(lo, hi) needs lo < hi, got lo = %g, hi = %g",
                   out->a, out->b);
        return false;
    }
    return true;
}

/* The name of the declaration whose INIT is `e` (for shape messages). */
static const char *init_owner(const Lowerer *lw, const AstExpr *e)
{
    for (int i = 0; lw->ast && i < lw->ast->n_decls; i++)
        if (lw->ast->decls[i]->init == e)
            return lw->ast->decls[i]->name;
    return "the tensor";
}

bool lower_init(Lowerer *lw, const AstExpr *e, const Shape *shape, Init *out)
{
    memset(out, 0, sizeof *out);
    const AstExpr *v = e->kind == AST_NEG && e->lhs->kind == AST_NUM ? e->lhs : e;
    switch (v->kind) {
    case AST_NUM:
        out->kind = INIT_VALUE;
        out->a = v == e ? v->num : -v->num;
        return true;
    case AST_NAME: {
        static const char *const names[] = {"zeros", "ones", "xavier", "kaiming"};
        static const InitKind kinds[] = {INIT_ZEROS, INIT_VALUE, INIT_XAVIER, INIT_KAIMING};
        for (int i = 0; i < 4; i++)
            if (strcmp(v->name, names[i]) == 0) {
                out->kind = kinds[i];
                out->a = 1;
                return true;
            }
        unknown_init(lw, v->span, v->name);
        return false;
    }
    case AST_CALL:
        return init_call(lw, v, out);
    case AST_LIST: {
        Shape lit;
        if (!lower_literal(lw, v, &lit, &out->values, &out->n_values))
            return false;
        Shape bc;
        if (!ir_broadcast_shapes(&lit, shape, &bc, NULL) || !ir_shape_eq(&bc, shape)) {
            char a[64], b[64];
            diag_error(lw->diag, v->span, "shape mismatch: the matrix literal has shape %s but '%s' is declared %s",
                       ir_shape_str(&lit, a, sizeof a), init_owner(lw, e), ir_shape_str(shape, b, sizeof b));
            return false;
        }
        if (!ir_shape_eq(&lit, shape)) {
            /* Broadcast a smaller literal (e.g. a row) to the declared shape. */
            int64_t n = ir_numel(shape);
            double *full = arena_alloc(lw->model->arena, sizeof *full * (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, src = 0, stride = 1;
                for (int d = shape->rank - 1; d >= 0; d--) {
                    int64_t idx = rem % shape->dims[d];
                    rem /= shape->dims[d];
                    int ld = d - (shape->rank - lit.rank);
                    if (ld >= 0) {
                        src += (lit.dims[ld] == 1 ? 0 : idx) * stride;
                        stride *= lit.dims[ld];
                    }
                }
                full[i] = out->values[src];
            }
            out->values = full;
            out->n_values = n;
        }
        out->kind = INIT_LITERAL;
        return true;
    }
    default: {
        char list[256];
        join_names(list, sizeof list, init_forms, 8);
        diag_error(lw->diag, e->span, "invalid initializer: expected %s", list);
        return false;
    }
    }
}

/* ---- train block ---- */

bool lower_expect_number(Lowerer *lw, const AstExpr *v, const char *block, const char *key, double *out)
{
    const AstExpr *n = v->kind == AST_NEG ? v->lhs : v;
    if (n->kind != AST_NUM) {
        diag_error(lw->diag, v->span, "%s key '%s' expects a number", block, key);
        return false;
    }
    *out = v->kind == AST_NEG ? -n->num : n->num;
    return true;
}

/* An integer in [lo, hi]. */
bool lower_expect_int(Lowerer *lw, const AstExpr *v, const char *block, const char *key, long lo, long hi, long *out)
{
    double x;
    if (!lower_expect_number(lw, v, block, key, &x))
        return false;
    if (x != floor(x) || x < (double)lo) {
        diag_error(lw->diag, v->span, "%s key '%s' expects an integer >= %ld, got %g", block, key, lo, x);
        return false;
    }
    if (x > (double)hi) {
        diag_error(lw->diag, v->span, "%s key '%s' expects an integer <= %ld, got %g", block, key, hi, x);
        return false;
    }
    *out = (long)x;
    return true;
}

bool lower_expect_positive(Lowerer *lw, const AstExpr *v, const char *block, const char *key, double *out)
{
    if (!lower_expect_number(lw, v, block, key, out))
        return false;
    if (!(*out > 0) || isinf(*out)) {
        diag_error(lw->diag, v->span, "%s key '%s' expects a positive number, got %g", block, key, *out);
        return false;
    }
    return true;
}

bool lower_read_options(Lowerer *lw, const AstExpr *call, const char *const *allowed, int n_allowed,
                         LowerOption *opts)
{
    for (int i = 0; i < n_allowed; i++)
        opts[i] = (LowerOption){allowed[i], NULL};
    for (int i = 0; i < call->n_args; i++) {
        const AstArg *a = &call->args[i];
        int slot = -1;
        if (!a->name) {
            slot = i < n_allowed ? i : -1;   /* positional in declaration order */
            if (slot < 0) {
                diag_error(lw->diag, call->span, "wrong number of arguments to '%s': expected at most %d, got %d",
                           call->name, n_allowed, call->n_args);
                return false;
            }
        } else {
            for (int k = 0; k < n_allowed; k++)
                if (strcmp(a->name, allowed[k]) == 0)
                    slot = k;
            if (slot < 0) {
                diag_error(lw->diag, a->name_span, "unknown argument '%s' to '%s'%s", a->name, call->name,
                           hint_or_list(lw, a->name, allowed, n_allowed));
                return false;
            }
        }
        if (opts[slot].value) {
            diag_error(lw->diag, a->name ? a->name_span : a->value->span, "argument '%s' given twice to '%s'",
                       allowed[slot], call->name);
            return false;
        }
        opts[slot].value = a->value;
    }
    return true;
}

/* One of a closed set of names.  `what` names the kind ("rule") for the
 * unknown-name error; `where` names the slot ("train key 'rule'") for a
 * value that is not a name at all. */
bool lower_choice(Lowerer *lw, const AstExpr *v, const char *what, const char *where,
                   const char *const *names, int n, int *out)
{
    if (v->kind == AST_NAME) {
        for (int i = 0; i < n; i++)
            if (strcmp(v->name, names[i]) == 0) {
                *out = i;
                return true;
            }
        diag_error(lw->diag, v->span, "unknown %s '%s'%s", what, v->name, hint_or_list(lw, v->name, names, n));
        return false;
    }
    char list[160];
    join_names(list, sizeof list, names, n);
    diag_error(lw->diag, v->span, "%s expects %s", where, list);
    return false;
}

/* "argument 'backward' to 'pc'": where an option's value goes. */
static const char *arg_of(Lowerer *lw, const char *arg, const AstExpr *call)
{
    return arena_printf(lw->model->arena, "argument '%s' to '%s'", arg, call->name);
}

static void train_rule(Lowerer *lw, const AstExpr *v, TrainConfig *t)
{
    static const char *const rules[] = {"pc", "fpa", "ipc", "bp", "ar"};
    /* pc(backward = ...) is chosen by its callee name; this must outlive
     * the choice below (a compound literal in an if body would not). */
    AstExpr callee = {.kind = AST_NAME, .name = v->name, .span = v->name_span};
    const AstExpr *head = v->kind == AST_CALL ? &callee : v;
    int kind;
    if (!lower_choice(lw, head, "rule", "train key 'rule'", rules, 5, &kind))
        return;
    RuleSpec r = {.kind = (RuleKind)kind};
    if (v->kind == AST_CALL) {
        static const char *const allowed[] = {"backward", "derivative", "error_weights"};
        LowerOption o[3];
        if (!lower_read_options(lw, v, allowed, 3, o))
            return;
        static const char *const backward[] = {"transpose", "learned", "random"};
        static const char *const deriv[] = {"exact", "none"};
        static const char *const ew[] = {"identity", "learned", "random"};
        int x;
        if (o[0].value) {
            if (!lower_choice(lw, o[0].value, "backward mode", arg_of(lw, "backward", v), backward, 3, &x))
                return;
            r.backward = (BackwardMode)x;
        }
        if (o[1].value) {
            if (!lower_choice(lw, o[1].value, "derivative mode", arg_of(lw, "derivative", v), deriv, 2, &x))
                return;
            r.no_derivative = x == 1;
        }
        if (o[2].value) {
            if (!lower_choice(lw, o[2].value, "error_weights mode", arg_of(lw, "error_weights", v), ew, 3, &x))
                return;
            r.error_weights = (ErrorWeights)x;
        }
    }
    t->rule = r;
}

static void train_optimizer(Lowerer *lw, const AstExpr *v, TrainConfig *t)
{
    static const char *const names[] = {"sgd", "adam", "adamw"};
    const AstExpr *head = v->kind == AST_CALL ? &(AstExpr){.kind = AST_NAME, .name = v->name, .span = v->name_span} : v;
    int kind;
    if (!lower_choice(lw, head, "optimizer", "train key 'optimizer'", names, 3, &kind))
        return;
    TrainConfig n = *t;
    n.optimizer = (OptimizerKind)kind;
    n.lr = kind == OPT_SGD ? 0.01 : 0.001;
    n.opt_momentum = 0;
    n.nesterov = false;
    n.weight_decay = kind == OPT_ADAMW ? 0.01 : 0;
    n.beta1 = 0.9, n.beta2 = 0.999, n.eps = 1e-8;
    if (v->kind == AST_CALL) {
        static const char *const sgd_args[] = {"lr", "momentum", "nesterov", "weight_decay"};
        static const char *const adam_args[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
        const char *const *allowed = kind == OPT_SGD ? sgd_args : adam_args;
        int n_allowed = kind == OPT_SGD ? 4 : 5;
        LowerOption o[5];
        if (!lower_read_options(lw, v, allowed, n_allowed, o))
            return;
        for (int i = 0; i < n_allowed; i++) {
            if (!o[i].value)
                continue;
            double x;
            const AstExpr *val = o[i].value;
            const AstExpr *num = val->kind == AST_NEG ? val->lhs : val;
            const char *k = o[i].name;
            if (num->kind != AST_NUM) {
                diag_error(lw->diag, val->span, "argument '%s' to '%s' expects a number", k, v->name);
                return;
            }
            x = val->kind == AST_NEG ? -num->num : num->num;
            const char *want = NULL;   /* the valid range, when x is outside it */
            if (!strcmp(k, "lr"))
                want = !(x > 0) || isinf(x) ? "a positive number" : NULL, n.lr = x;
            else if (!strcmp(k, "momentum"))
                want = !(x >= 0 && x < 1) ? "a number in [0, 1)" : NULL, n.opt_momentum = x;
            else if (!strcmp(k, "nesterov"))
                want = !(x == 0 || x == 1) ? "0 or 1" : NULL, n.nesterov = x != 0;
            else if (!strcmp(k, "weight_decay"))
                want = !(x >= 0) || isinf(x) ? "a number >= 0" : NULL, n.weight_decay = x;
            else if (!strcmp(k, "beta1"))
                want = !(x >= 0 && x < 1) ? "a number in [0, 1)" : NULL, n.beta1 = x;
            else if (!strcmp(k, "beta2"))
                want = !(x >= 0 && x < 1) ? "a number in [0, 1)" : NULL, n.beta2 = x;
            else if (!strcmp(k, "eps"))
                want = !(x > 0) || isinf(x) ? "a positive number" : NULL, n.eps = x;
            if (want) {
                diag_error(lw->diag, val->span, "argument '%s' to '%s' expects %s, got %g", k, v->name, want, x);
                return;
            }
        }
    }
    *t = n;
}

bool ir_apply_train_setting(Diag *d, Model *m, const char *key, Span key_span, const AstExpr *v)
{
    Lowerer lw = {.diag = d, .model = m};
    int before = d->n_errors;
    TrainConfig *t = &m->train;
    long n;
    double x;
    int idx;
    if (!strcmp(key, "rule")) {
        train_rule(&lw, v, t);
        /* While lowering, ir_lower adds them once every mean is defined. */
        if (m->scope && d->n_errors == before)
            ir_add_rule_params(d, m, t->rule);
    }
    else if (!strcmp(key, "optimizer"))
        train_optimizer(&lw, v, t);
    else if (!strcmp(key, "steps")) {
        if (lower_expect_int(&lw, v, "train", key, 0, INT_MAX, &n))
            t->steps = (int)n;
    } else if (!strcmp(key, "batch")) {
        if (lower_expect_int(&lw, v, "train", key, 1, INT_MAX, &n))
            t->batch = (int)n;
    } else if (!strcmp(key, "epochs")) {
        if (lower_expect_int(&lw, v, "train", key, 0, INT_MAX, &n))
            t->epochs = (int)n;
    } else if (!strcmp(key, "seed")) {
        if (lower_expect_int(&lw, v, "train", key, 0, SEED_MAX, &n))
            t->seed = (uint64_t)n;
    } else if (!strcmp(key, "step_size")) {
        if (lower_expect_positive(&lw, v, "train", key, &x))
            t->step_size = x;
    } else if (!strcmp(key, "momentum")) {
        if (lower_expect_number(&lw, v, "train", key, &x)) {
            if (x < 0 || x >= 1)
                diag_error(d, v->span, "train key 'momentum' expects a number in [0, 1), got %g", x);
            else
                t->momentum = x;
        }
    } else if (!strcmp(key, "tol")) {
        if (lower_expect_number(&lw, v, "train", key, &x)) {
            if (x < 0)
                diag_error(d, v->span, "train key 'tol' expects a number >= 0, got %g", x);
            else
                t->tol = x;
        }
    } else if (!strcmp(key, "warmup")) {
        if (lower_expect_int(&lw, v, "train", key, 0, INT_MAX, &n))
            t->warmup = (int)n;
    } else if (!strcmp(key, "schedule")) {
        static const char *const names[] = {"constant", "cosine"};
        if (lower_choice(&lw, v, "schedule", "train key 'schedule'", names, 2, &idx))
            t->schedule = (ScheduleKind)idx;
    } else if (!strcmp(key, "integrator")) {
        static const char *const names[] = {"euler", "heun"};
        if (lower_choice(&lw, v, "integrator", "train key 'integrator'", names, 2, &idx))
            t->integrator = (IntegratorKind)idx;
    } else {
        diag_error(d, key_span, "unknown train key '%s'%s", key, hint_or_list(&lw, key, train_keys, N_TRAIN_KEYS));
    }
    return d->n_errors == before;
}

void lower_train_block(Lowerer *lw, const AstDecl *d)
{
    for (int i = 0; i < d->n_entries; i++) {
        const AstTrainEntry *e = &d->entries[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(d->entries[j].key, e->key)) {
                diag_error(lw->diag, e->key_span, "duplicate train key '%s'", e->key);
                diag_note(lw->diag, d->entries[j].key_span, "first set here");
                break;
            }
        ir_apply_train_setting(lw->diag, lw->model, e->key, e->key_span, e->value);
    }
}
