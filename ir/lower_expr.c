/* lower_expr.c — .fep expressions to graph nodes.
 *
 * Names resolve, in order, to the family variable in scope, a `let`, a
 * tensor (a LOAD of its buffer) or an error.  Surface functions that are
 * compositions (leaky_relu, mean, flatten, identity) decompose here into
 * primitives, so the op table stays small.  Every failure is a diagnostic
 * at the offending span and yields NO_NODE, which callers propagate. */
#include "lower.h"

#include <math.h>
#include <string.h>

static NodeId shape_error(Lowerer *lw, Span span, const BuildError *err)
{
    diag_error(lw->diag, span, "%s", err->message);
    return NO_NODE;
}

static const char *const builtin_names[] = {
    "tanh", "sigmoid", "relu", "leaky_relu", "elu", "softplus", "exp", "log", "sqrt", "square",
    "abs", "sin", "cos", "tan", "identity", "softmax", "sum", "mean", "transpose", "concat",
    "flatten", "reshape", "prev", "conv2d", "maxpool", "avgpool",
};
enum { N_BUILTINS = sizeof builtin_names / sizeof *builtin_names };

static const Op unary_ops[] = {OP_TANH, OP_SIGMOID, OP_RELU, N_OPS, OP_ELU, OP_SOFTPLUS, OP_EXP,
                               OP_LOG, OP_SQRT, OP_SQUARE, OP_ABS, OP_SIN, OP_COS, OP_TAN};

static Tensor *find_tensor(Lowerer *lw, const char *name)
{
    int t = ir_model_find_tensor(lw->model, name);
    return t >= 0 ? &lw->model->tensors[t] : NULL;
}

static const Family *find_family(Lowerer *lw, const char *name)
{
    for (int i = 0; i < lw->n_families; i++)
        if (!strcmp(lw->families[i].name, name))
            return &lw->families[i];
    return NULL;
}

static LetBinding *find_let(Lowerer *lw, const char *name)
{
    for (int i = 0; i < lw->n_lets; i++)
        if (!strcmp(lw->lets[i].decl->name, name))
            return &lw->lets[i];
    return NULL;
}

static int find_extern(Lowerer *lw, const char *name)
{
    for (int i = 0; i < lw->model->n_externs; i++)
        if (!strcmp(lw->model->externs[i].name, name))
            return i;
    return -1;
}

static NodeId load_tensor(Lowerer *lw, const Tensor *t)
{
    const Buffer *b = &lw->model->buffers[t->buf];
    return ir_load(&lw->model->g, t->buf, b->shape, b->batched);
}

/* All names visible in expressions, for "did you mean" hints. */
static const char *suggest_in_scope(Lowerer *lw, const char *name)
{
    Model *m = lw->model;
    int n = m->n_tensors + lw->n_lets + lw->n_families;
    const char **names = arena_alloc(m->arena, sizeof *names * (size_t)(n + 1));
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].family)
            names[k++] = m->tensors[i].name;
    for (int i = 0; i < lw->n_lets; i++)
        names[k++] = lw->lets[i].decl->name;
    for (int i = 0; i < lw->n_families; i++)
        names[k++] = lw->families[i].name;
    return suggest_name(name, names, k);
}

static NodeId lower_name(Lowerer *lw, const AstExpr *e)
{
    if (lw->loop_var && !strcmp(e->name, lw->loop_var))
        return ir_scalar(&lw->model->g, (double)lw->loop_value);
    LetBinding *let = find_let(lw, e->name);
    if (let) {
        if (let->visiting) {
            diag_error(lw->diag, e->span, "cycle in the model: 'let %s' refers to itself", e->name);
            return NO_NODE;
        }
        if (let->value == NO_NODE) {
            let->visiting = true;
            let->value = lower_expr(lw, let->decl->value);
            let->visiting = false;
        }
        return let->value;
    }
    Tensor *t = find_tensor(lw, e->name);
    if (t)
        return load_tensor(lw, t);
    const Family *f = find_family(lw, e->name);
    if (f) {
        diag_error(lw->diag, e->span, "'%s' is a family of %ld nodes; index it, as in %s[%ld]",
                   e->name, f->hi - f->lo, e->name, f->lo);
        return NO_NODE;
    }
    if (find_extern(lw, e->name) >= 0) {
        diag_error(lw->diag, e->span, "extern function '%s' must be called, as in %s(x)", e->name, e->name);
        return NO_NODE;
    }
    const char *hint = suggest_in_scope(lw, e->name);
    diag_error(lw->diag, e->span, "unknown name '%s'%s%s%s", e->name, hint ? "; did you mean '" : "",
               hint ? hint : "", hint ? "'?" : "");
    return NO_NODE;
}

bool lower_const_int(Lowerer *lw, const AstExpr *e, long *out)
{
    switch (e->kind) {
    case AST_NUM:
        if (e->num != floor(e->num) || fabs(e->num) > 1e9)
            break;
        *out = (long)e->num;
        return true;
    case AST_NAME:
        if (lw->loop_var && !strcmp(e->name, lw->loop_var)) {
            *out = lw->loop_value;
            return true;
        }
        break;
    case AST_NEG:
        if (!lower_const_int(lw, e->lhs, out))
            return false;
        *out = -*out;
        return true;
    case AST_BINARY: {
        long a, b;
        if (e->binop != BIN_ADD && e->binop != BIN_SUB && e->binop != BIN_MUL)
            break;
        if (!lower_const_int(lw, e->lhs, &a) || !lower_const_int(lw, e->rhs, &b))
            return false;
        long r;
        bool overflow = e->binop == BIN_ADD   ? __builtin_add_overflow(a, b, &r)
                        : e->binop == BIN_SUB ? __builtin_sub_overflow(a, b, &r)
                                              : __builtin_mul_overflow(a, b, &r);
        if (overflow || r > 1000000000L || r < -1000000000L) {
            diag_error(lw->diag, e->span, "integer constant out of range (limit ±1e9)");
            return false;
        }
        *out = r;
        return true;
    }
    default:
        break;
    }
    diag_error(lw->diag, e->span, "index must be an integer constant%s%s",
               lw->loop_var ? " or an expression of " : "", lw->loop_var ? lw->loop_var : "");
    return false;
}

/* h[t-1], x[t], h[11]: an element of a family; outside the range, zeros. */
static NodeId lower_family_index(Lowerer *lw, const Family *f, const AstExpr *e)
{
    if (e->is_slice) {
        diag_error(lw->diag, e->span, "a family of nodes cannot be sliced; index one element");
        return NO_NODE;
    }
    long i;
    if (!lower_const_int(lw, e->index_lo, &i))
        return NO_NODE;
    const Tensor *first = &lw->model->tensors[f->first_tensor];
    if (i < f->lo || i >= f->hi) {
        const Buffer *b = &lw->model->buffers[first->buf];
        return ir_fill(&lw->model->g, 0, &lw->model->g.shapes[b->shape], b->batched);
    }
    return load_tensor(lw, &lw->model->tensors[f->first_tensor + (i - f->lo)]);
}

static NodeId lower_index(Lowerer *lw, const AstExpr *e)
{
    if (e->lhs->kind == AST_NAME && !find_let(lw, e->lhs->name) && !find_tensor(lw, e->lhs->name)) {
        const Family *f = find_family(lw, e->lhs->name);
        if (f)
            return lower_family_index(lw, f, e);
    }
    NodeId base = lower_expr(lw, e->lhs);
    if (base == NO_NODE)
        return NO_NODE;
    const Shape *s = ir_node_shape(&lw->model->g, base);
    if (s->rank == 0) {
        diag_error(lw->diag, e->span, "cannot index a scalar");
        return NO_NODE;
    }
    long n = s->dims[0], lo = 0, hi = n;
    if (e->index_lo && !lower_const_int(lw, e->index_lo, &lo))
        return NO_NODE;
    if (!e->is_slice)
        hi = lo + 1;
    else if (e->index_hi && !lower_const_int(lw, e->index_hi, &hi))
        return NO_NODE;
    if (lo < 0)
        lo += n;
    if (hi < 0 || (!e->is_slice && lo >= 0 && hi <= 0))
        hi += n;
    if (hi > n)   /* python-like: a slice end past the axis stops at it */
        hi = e->is_slice ? n : hi;
    BuildError err;
    NodeId r = ir_slice(&lw->model->g, base, (int)lo, (int)hi, &err);
    if (r == NO_NODE)
        return shape_error(lw, e->span, &err);
    if (!e->is_slice) {
        Shape drop = {.rank = s->rank - 1};
        for (int i = 1; i < s->rank; i++)
            drop.dims[i - 1] = s->dims[i];
        r = ir_reshape(&lw->model->g, r, &drop, &err);
    }
    return r;
}

static NodeId lower_list(Lowerer *lw, const AstExpr *e)
{
    Model *m = lw->model;
    Shape shape;
    double *values;
    int64_t n;
    if (!lower_literal(lw, e, &shape, &values, &n))
        return NO_NODE;
    char *name = arena_printf(m->arena, "literal.%d", lw->n_literals++);
    m->tensors = arena_grow(m->arena, m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors);
    Tensor *t = &m->tensors[m->n_tensors];
    t->name = name;
    t->role = ROLE_CONST;
    t->shape = ir_shape_id(&m->g, &shape);
    t->span = e->span;
    t->init = (Init){.kind = INIT_LITERAL, .values = values, .n_values = n};
    t->has_init = true;
    t->mean = t->prec = NO_NODE;
    t->prev_buf = -1;
    t->buf = ir_model_buffer(m, BUF_CONST, name, t->shape, false, m->n_tensors);
    m->n_tensors++;
    return load_tensor(lw, t);
}

static bool check_arity(Lowerer *lw, const AstExpr *e, int lo, int hi)
{
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].name) {
            diag_error(lw->diag, e->args[i].name_span, "unknown argument '%s' to '%s'", e->args[i].name,
                       e->name);
            return false;
        }
    if (e->n_args >= lo && e->n_args <= hi)
        return true;
    if (lo == hi)
        diag_error(lw->diag, e->span, "wrong number of arguments to '%s': expected %d, got %d", e->name,
                   lo, e->n_args);
    else
        diag_error(lw->diag, e->span, "wrong number of arguments to '%s': expected %d to %d, got %d",
                   e->name, lo, hi, e->n_args);
    return false;
}

static NodeId lower_prev(Lowerer *lw, const AstExpr *e)
{
    const AstExpr *a = e->args[0].value;
    Tensor *t = a->kind == AST_NAME ? find_tensor(lw, a->name) : NULL;
    if (!t || !ir_is_value_role(t->role)) {
        diag_error(lw->diag, a->span, "prev() takes the name of an input, latent or observed node");
        return NO_NODE;
    }
    Model *m = lw->model;
    if (t->prev_buf < 0) {
        int index = (int)(t - m->tensors);
        t->prev_buf = ir_model_buffer(m, BUF_PREV, arena_printf(m->arena, "prev.%s", t->name), t->shape,
                                      true, index);
        m->has_prev = true;
    }
    return ir_load(&m->g, t->prev_buf, t->shape, true);
}

static NodeId lower_reshape(Lowerer *lw, const AstExpr *e, NodeId x)
{
    const AstExpr *dims = e->args[1].value;
    Shape s = {0};
    if (dims->kind != AST_LIST || dims->n_args > FEP_MAX_RANK) {
        diag_error(lw->diag, dims->span, "reshape expects a shape such as [16, 4, 4]");
        return NO_NODE;
    }
    for (int i = 0; i < dims->n_args; i++) {
        long d;
        if (!lower_const_int(lw, dims->args[i].value, &d))
            return NO_NODE;
        if (d <= 0) {
            diag_error(lw->diag, dims->args[i].value->span, "dimension must be positive, got %ld", d);
            return NO_NODE;
        }
        s.dims[s.rank++] = (int32_t)d;
        if (ir_numel(&s) > (1LL << 31)) {   /* dims are ≤ 1e9, so this product cannot overflow yet */
            diag_error(lw->diag, dims->span, "tensor too large: more than 2^31 elements");
            return NO_NODE;
        }
    }
    BuildError err;
    NodeId r = ir_reshape(&lw->model->g, x, &s, &err);
    return r == NO_NODE ? shape_error(lw, e->span, &err) : r;
}

/* conv2d(x, K, stride = 1, pad = 0), maxpool(x, k), avgpool(x, k): the
 * integer options may be positional or named. */
static NodeId lower_spatial(Lowerer *lw, const AstExpr *e)
{
    bool is_conv = !strcmp(e->name, "conv2d");
    static const char *const conv_names[] = {"input", "kernel", "stride", "pad"};
    static const char *const pool_names[] = {"input", "k"};
    const char *const *names = is_conv ? conv_names : pool_names;
    int n_names = is_conv ? 4 : 2, required = 2;
    const AstExpr *args[4] = {NULL};
    for (int i = 0; i < e->n_args; i++) {
        const AstArg *a = &e->args[i];
        int slot = a->name ? -1 : i;
        for (int k = 0; a->name && k < n_names; k++)
            if (!strcmp(a->name, names[k]))
                slot = k;
        if (slot < 0 || slot >= n_names) {
            if (a->name)
                diag_error(lw->diag, a->name_span, "unknown argument '%s' to '%s'", a->name, e->name);
            else
                diag_error(lw->diag, e->span, "wrong number of arguments to '%s': expected %d to %d, got %d", e->name,
                           required, n_names, e->n_args);
            return NO_NODE;
        }
        args[slot] = a->value;
    }
    if (!args[0] || !args[1]) {
        diag_error(lw->diag, e->span, "wrong number of arguments to '%s': expected %d to %d, got %d", e->name, required,
                   n_names, e->n_args);
        return NO_NODE;
    }
    long opt[2] = {1, 0};   /* conv: stride, pad */
    for (int k = 0; k < 2 && is_conv; k++)
        if (args[2 + k] && !lower_const_int(lw, args[2 + k], &opt[k]))
            return NO_NODE;
    long window = 0;
    if (!is_conv && !lower_const_int(lw, args[1], &window))
        return NO_NODE;
    NodeId x = lower_expr(lw, args[0]);
    if (x == NO_NODE)
        return NO_NODE;
    BuildError err;
    Graph *g = &lw->model->g;
    NodeId r;
    if (is_conv) {
        NodeId kernel = lower_expr(lw, args[1]);
        if (kernel == NO_NODE)
            return NO_NODE;
        r = ir_conv2d(g, x, kernel, (int)opt[0], (int)opt[1], &err);
    } else if (window < 1 || window > 1024) {
        diag_error(lw->diag, args[1]->span, "pooling window must be between 1 and 1024, got %ld", window);
        return NO_NODE;
    } else {
        r = !strcmp(e->name, "maxpool") ? ir_maxpool(g, x, (int)window, &err) : ir_avgpool(g, x, (int)window, &err);
    }
    return r == NO_NODE ? shape_error(lw, e->span, &err) : r;
}

static NodeId lower_call(Lowerer *lw, const AstExpr *e)
{
    Graph *g = &lw->model->g;
    int ext = find_extern(lw, e->name);
    int which = -1;
    for (int i = 0; i < N_BUILTINS; i++)
        if (!strcmp(e->name, builtin_names[i]))
            which = i;
    if (which < 0 && ext < 0) {
        const char *hint = suggest_name(e->name, builtin_names, N_BUILTINS);
        if (find_tensor(lw, e->name) || find_let(lw, e->name))
            diag_error(lw->diag, e->name_span, "'%s' is a tensor, not a function", e->name);
        else
            diag_error(lw->diag, e->name_span, "unknown function '%s'%s%s%s", e->name,
                       hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
        return NO_NODE;
    }
    const char *fn = e->name;
    if (ext >= 0 || !strcmp(fn, "prev") || !strcmp(fn, "softmax") || !strcmp(fn, "sum") ||
        !strcmp(fn, "mean") || !strcmp(fn, "transpose") || !strcmp(fn, "flatten") ||
        (which >= 0 && which < (int)(sizeof unary_ops / sizeof *unary_ops) && unary_ops[which] != N_OPS) ||
        !strcmp(fn, "identity")) {
        if (!check_arity(lw, e, 1, 1))
            return NO_NODE;
    } else if (!strcmp(fn, "leaky_relu")) {
        if (!check_arity(lw, e, 1, 2))
            return NO_NODE;
    } else if (!strcmp(fn, "concat") || !strcmp(fn, "reshape")) {
        if (!check_arity(lw, e, 2, 2))
            return NO_NODE;
    } else {
        return lower_spatial(lw, e);
    }
    if (!strcmp(fn, "prev"))
        return lower_prev(lw, e);
    NodeId x = lower_expr(lw, e->args[0].value);
    if (x == NO_NODE)
        return NO_NODE;
    BuildError err;
    if (ext >= 0)
        return ir_extern(g, x, ext);
    if (which < (int)(sizeof unary_ops / sizeof *unary_ops) && unary_ops[which] != N_OPS)
        return ir_unary(g, unary_ops[which], x);
    const Shape *xs = ir_node_shape(g, x);
    bool xb = g->nodes[x].batched;
    Shape scalar = {0};
    if (!strcmp(fn, "identity"))
        return x;
    if (!strcmp(fn, "leaky_relu")) {
        /* leaky_relu(x, a) = relu(x) − a · relu(−x); a defaults to 0.01 */
        NodeId a = e->n_args == 2 ? lower_expr(lw, e->args[1].value) : ir_scalar(g, 0.01);
        if (a == NO_NODE)
            return NO_NODE;
        NodeId neg_part = ir_binary(g, OP_MUL, a, ir_unary(g, OP_RELU, ir_neg(g, x)), &err);
        if (neg_part == NO_NODE)
            return shape_error(lw, e->span, &err);
        NodeId r = ir_binary(g, OP_SUB, ir_unary(g, OP_RELU, x), neg_part, &err);
        return r == NO_NODE ? shape_error(lw, e->span, &err) : r;
    }
    if (!strcmp(fn, "softmax"))
        return ir_softmax(g, x);
    if (!strcmp(fn, "sum"))
        return ir_reduce_to(g, x, &scalar, xb);
    if (!strcmp(fn, "mean"))
        return ir_div(g, ir_reduce_to(g, x, &scalar, xb), ir_scalar(g, (double)ir_numel(xs)));
    if (!strcmp(fn, "flatten")) {
        Shape flat = {.rank = 1, .dims = {(int32_t)ir_numel(xs)}};
        return ir_reshape(g, x, &flat, &err);
    }
    if (!strcmp(fn, "reshape"))
        return lower_reshape(lw, e, x);
    NodeId r = NO_NODE;
    if (!strcmp(fn, "transpose"))
        r = ir_transpose(g, x, &err);
    else if (!strcmp(fn, "concat")) {
        NodeId y = lower_expr(lw, e->args[1].value);
        if (y == NO_NODE)
            return NO_NODE;
        r = ir_concat(g, x, y, &err);
    }
    return r == NO_NODE ? shape_error(lw, e->span, &err) : r;
}

static NodeId lower_binary(Lowerer *lw, const AstExpr *e)
{
    if (e->binop >= BIN_EQ) {
        diag_error(lw->diag, e->span, "'%s' can only appear in a table definition (const T[i, j] : [..] = ...)",
                   ast_binop_text(e->binop));
        return NO_NODE;
    }
    NodeId a = lower_expr(lw, e->lhs);
    if (a == NO_NODE)
        return NO_NODE;
    NodeId b = lower_expr(lw, e->rhs);
    if (b == NO_NODE)
        return NO_NODE;
    Graph *g = &lw->model->g;
    BuildError err;
    NodeId r;
    if (e->binop == BIN_MATMUL) {
        r = ir_matmul(g, a, b, 0, &err);
    } else {
        static const Op ops[] = {[BIN_ADD] = OP_ADD, [BIN_SUB] = OP_SUB, [BIN_MUL] = OP_MUL,
                                 [BIN_DIV] = OP_DIV};
        r = ir_binary(g, ops[e->binop], a, b, &err);
    }
    return r == NO_NODE ? shape_error(lw, e->span, &err) : r;
}

NodeId lower_expr(Lowerer *lw, const AstExpr *e)
{
    Graph *g = &lw->model->g;
    Span saved = g->cur_span;
    ir_set_span(g, e->span);
    NodeId r = NO_NODE;
    switch (e->kind) {
    case AST_NUM:
        r = ir_scalar(g, e->num);
        break;
    case AST_NAME:
        r = lower_name(lw, e);
        break;
    case AST_BINARY:
        r = lower_binary(lw, e);
        break;
    case AST_NEG: {
        NodeId x = lower_expr(lw, e->lhs);
        r = x == NO_NODE ? NO_NODE : ir_neg(g, x);
        break;
    }
    case AST_CALL:
        r = lower_call(lw, e);
        break;
    case AST_INDEX:
        r = lower_index(lw, e);
        break;
    case AST_LIST:
        r = lower_list(lw, e);
        break;
    }
    ir_set_span(g, saved);
    return r;
}
