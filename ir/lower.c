/* lower.c — AST declarations to a Model: tensors and their buffers,
 * unrolled families, lets, externs, distributions and the train block.
 *
 * Two passes over the declarations: the first registers every name (so
 * declarations may refer to tensors declared later) and reports
 * redefinitions; the second lowers initialisers and distributions.  The
 * result then goes through passes/check.c for acyclicity and ordering. */
#include "lower.h"

#include <string.h>

/* Family bounds stay within what an index expression can name (lower_expr.c
 * takes integer constants up to 1e9) and what Tensor.family_index holds. */
static const long FAMILY_BOUND = 1000000000L;

/* "a param", "an input": the kind of a declaration with its article. */
static const char *decl_word(AstDeclKind k)
{
    static const char *words[] = {"a param", "a const",  "an input",  "a latent node",
                                  "an observed node", "a let", "an extern", "a train block",
                                  "a hidden factor", "an outcome", "a control", "a counts table",
                                  "an agent block"};
    return words[k];
}

/* Appends "; did you mean 'y'?" when `name` is close to one of `names`, or
 * else "; expected a, b or c": the one pattern for every "unknown X" error. */
static const char *hint_or_list(Lowerer *lw, const char *name, const char *const *names, int n)
{
    const char *hint = suggest_name(name, names, n);
    if (hint)
        return arena_printf(lw->model->arena, "; did you mean '%s'?", hint);
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 i ? (i == n - 1 ? " or " : ", ") : "", names[i]);
    return arena_printf(lw->model->arena, "; expected %s", list);
}

/* First declaration that defined `name`, for redefinition notes. */
static const AstDecl *find_decl(const AstModel *ast, int before, const char *name)
{
    for (int i = 0; i < before; i++) {
        const AstDecl *d = ast->decls[i];
        if (d->kind != DECL_TRAIN && d->kind != DECL_AGENT && d->name && !strcmp(d->name, name))
            return d;
    }
    return NULL;
}

static bool check_shape(Lowerer *lw, const AstDecl *d, Shape *out)
{
    if (d->n_dims > FEP_MAX_RANK) {
        diag_error(lw->diag, d->shape_span, "too many dimensions: %d (at most %d)", d->n_dims, FEP_MAX_RANK);
        return false;
    }
    Shape s = {.rank = d->n_dims};
    int64_t total = 1;
    for (int i = 0; i < d->n_dims; i++) {
        if (d->dims[i] <= 0) {
            diag_error(lw->diag, d->dim_spans[i], "dimension must be positive, got %ld", d->dims[i]);
            return false;
        }
        if (d->dims[i] > (1L << 30) || (total *= d->dims[i]) > (1LL << 31)) {
            diag_error(lw->diag, d->dim_spans[i], "tensor too large: more than 2^31 elements");
            return false;
        }
        s.dims[i] = (int32_t)d->dims[i];
    }
    *out = s;
    return true;
}

static Role role_of(AstDeclKind k)
{
    switch (k) {
    case DECL_PARAM:
    case DECL_COUNTS: return ROLE_PARAM;
    case DECL_CONST: return ROLE_CONST;
    case DECL_INPUT: return ROLE_INPUT;
    case DECL_LATENT: return ROLE_LATENT;
    default: return ROLE_OBSERVED;
    }
}

static int add_tensor(Lowerer *lw, const AstDecl *d, const char *name, const Shape *shape)
{
    Model *m = lw->model;
    m->tensors = arena_grow(m->arena, m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors);
    int index = m->n_tensors++;
    Tensor *t = &m->tensors[index];
    t->name = name;
    t->role = role_of(d->kind);
    t->shape = ir_shape_id(&m->g, shape);
    t->batched = ir_is_value_role(t->role);
    t->span = d->name_span;
    t->mean = t->prec = NO_NODE;
    t->prev_buf = -1;
    t->family_index = -1;
    t->counts = d->kind == DECL_COUNTS;
    BufKind kind = t->role == ROLE_PARAM ? BUF_PARAM : t->role == ROLE_CONST ? BUF_CONST : BUF_VALUE;
    t->buf = ir_model_buffer(m, kind, name, t->shape, t->batched, index);
    return index;
}

/* Pass 1: names, shapes, tensors, families, lets, externs. */
static void declare(Lowerer *lw, int i)
{
    const AstDecl *d = lw->ast->decls[i];
    Model *m = lw->model;
    if (d->kind == DECL_TRAIN || d->kind == DECL_AGENT)
        return;
    const AstDecl *prior = find_decl(lw->ast, i, d->name);
    if (prior) {
        diag_error(lw->diag, d->name_span, "redefinition of '%s'", d->name);
        diag_note(lw->diag, prior->name_span, "'%s' was first declared here, as %s", d->name,
                  decl_word(prior->kind));
        return;
    }
    if (d->kind == DECL_LET) {
        lw->lets[lw->n_lets++] = (LetBinding){.decl = d, .value = NO_NODE};
        return;
    }
    if (d->kind == DECL_EXTERN) {
        m->externs = arena_grow(m->arena, m->externs, &m->cap_externs, m->n_externs, sizeof *m->externs);
        Extern *x = &m->externs[m->n_externs++];
        x->name = d->name;
        x->span = d->name_span;
        x->grad_sym = d->ext_grad;
        const char *colon = strrchr(d->ext_target, ':');
        if (d->n_ext_params != 1)
            diag_error(lw->diag, d->name_span,
                       "extern '%s' must take exactly one parameter (an elementwise float(float) function)",
                       d->name);
        if (!d->ext_grad) {
            diag_error(lw->diag, d->name_span,
                       "extern '%s' needs its derivative: add grad \"symbol\" after the target", d->name);
            return;
        }
        if (!colon || colon == d->ext_target || !colon[1]) {
            diag_error(lw->diag, d->ext_target_span, "extern target must look like \"libname.so:symbol\"");
            return;
        }
        x->lib = arena_strndup(m->arena, d->ext_target, (size_t)(colon - d->ext_target));
        x->sym = colon + 1;
        return;
    }
    Shape shape;
    if (!check_shape(lw, d, &shape))
        return;
    if (d->kind == DECL_HIDDEN || d->kind == DECL_OUTCOME || d->kind == DECL_CONTROL)
        return;   /* the agent's variables, not tensors: lower_agent */
    if (!d->has_family) {
        add_tensor(lw, d, d->name, &shape);
        return;
    }
    if (d->kind == DECL_PARAM || d->kind == DECL_CONST) {
        diag_error(lw->diag, d->family_span, "only input, latent and observed nodes can be unrolled");
        return;
    }
    if (d->family_hi <= d->family_lo) {
        diag_error(lw->diag, d->family_span,
                   "empty family range %ld..%ld: the end is exclusive, so it must be greater than the start",
                   d->family_lo, d->family_hi);
        return;
    }
    /* unsigned: hi - lo of two extreme longs must not overflow */
    unsigned long steps = (unsigned long)d->family_hi - (unsigned long)d->family_lo;
    if (steps > 10000) {
        diag_error(lw->diag, d->family_span, "family range %ld..%ld has %lu steps; at most 10000 are allowed",
                   d->family_lo, d->family_hi, steps);
        return;
    }
    if (d->family_lo < -FAMILY_BOUND || d->family_hi > FAMILY_BOUND) {
        diag_error(lw->diag, d->family_span, "family range %ld..%ld must lie within -%ld..%ld", d->family_lo,
                   d->family_hi, FAMILY_BOUND, FAMILY_BOUND);
        return;
    }
    Family *f = &lw->families[lw->n_families++];
    f->name = d->name;
    f->lo = d->family_lo;
    f->hi = d->family_hi;
    f->first_tensor = m->n_tensors;
    for (long t = d->family_lo; t < d->family_hi; t++) {
        int index = add_tensor(lw, d, arena_printf(m->arena, "%s[%ld]", d->name, t), &shape);
        m->tensors[index].family = d->name;
        m->tensors[index].family_index = (int)t;
    }
}

/* The mean (or logits) must broadcast to the node's shape.  `what` names the
 * argument with its verb ("the mean has", "the logits have"). */
static bool fits_node(Lowerer *lw, int ti, NodeId arg, Span span, const char *what, bool exact)
{
    const Graph *g = &lw->model->g;
    const Tensor *t = &lw->model->tensors[ti];
    const Shape *ts = ir_shape(g, t->shape), *as = ir_node_shape(g, arg);
    Shape bc;
    bool ok = exact ? ir_shape_eq(ts, as)
                    : ir_broadcast_shapes(as, ts, &bc, NULL) && ir_shape_eq(&bc, ts);
    if (!ok) {
        char a[64], b[64];
        diag_error(lw->diag, span, "shape mismatch: %s shape %s but '%s' is declared %s", what,
                   ir_shape_str(as, a, sizeof a), t->name, ir_shape_str(ts, b, sizeof b));
    }
    return ok;
}

/* A precision or variance that is a known constant (a number, or a const
 * tensor whose INIT is already lowered) must be positive: finds an entry
 * that is not. */
static bool nonpositive_constant(const Model *m, NodeId p, double *bad)
{
    const Graph *g = &m->g;
    const Node *n = ir_node(g, p);
    const Attr *a = ir_node_attr(g, p);
    if (n->op == OP_FILL) {
        *bad = a->num;
        return !(a->num > 0);
    }
    if (n->op != OP_LOAD)
        return false;
    const Buffer *b = &m->buffers[a->ints[0]];
    if (b->kind != BUF_CONST || b->tensor < 0 || !m->tensors[b->tensor].has_init)
        return false;
    const Init *init = &m->tensors[b->tensor].init;
    switch (init->kind) {
    case INIT_ZEROS:
        *bad = 0;
        return true;
    case INIT_VALUE:
        *bad = init->a;
        return !(init->a > 0);
    case INIT_LITERAL:
        for (int64_t i = 0; i < init->n_values; i++)
            if (!(init->values[i] > 0)) {
                *bad = init->values[i];
                return true;
            }
        return false;
    default:
        return false;
    }
}

static void lower_normal(Lowerer *lw, int ti, const AstExpr *call)
{
    static const char *const keywords[] = {"mean", "prec", "var"};
    Graph *g = &lw->model->g;
    const AstExpr *mean = NULL, *prec = NULL, *var = NULL;
    if (call->n_args == 0) {
        diag_error(lw->diag, call->span, "wrong number of arguments to 'normal': expected 1 or 2, got 0");
        return;
    }
    for (int i = 0; i < call->n_args; i++) {
        const AstArg *a = &call->args[i];
        const AstExpr **slot = !a->name ? (i == 0 ? &mean : NULL)
                               : !strcmp(a->name, "mean") ? &mean
                               : !strcmp(a->name, "prec") ? &prec
                               : !strcmp(a->name, "var")  ? &var : NULL;
        if (!slot) {
            if (a->name)
                diag_error(lw->diag, a->name_span, "unknown argument '%s' to 'normal'%s", a->name,
                           hint_or_list(lw, a->name, keywords, 3));
            else
                diag_error(lw->diag, a->value->span,
                           "'normal' takes one positional argument (the mean); name the others, as in prec = P");
            return;
        }
        if (*slot) {
            diag_error(lw->diag, a->name ? a->name_span : a->value->span, "argument '%s' given twice to 'normal'",
                       slot == &mean ? "mean" : slot == &prec ? "prec" : "var");
            return;
        }
        *slot = a->value;
    }
    if (!mean) {
        diag_error(lw->diag, call->span, "missing argument 'mean' to 'normal'");
        return;
    }
    if (prec && var) {
        diag_error(lw->diag, var->span, "give either prec or var to 'normal', not both");
        return;
    }
    NodeId m = lower_expr(lw, mean);
    if (m == NO_NODE || !fits_node(lw, ti, m, mean->span, "the mean has", false))
        return;
    NodeId p = NO_NODE;
    if (prec || var) {
        p = lower_expr(lw, prec ? prec : var);
        if (p == NO_NODE ||
            !fits_node(lw, ti, p, (prec ? prec : var)->span, prec ? "the precision has" : "the variance has", false))
            return;
        double bad;
        if (nonpositive_constant(lw->model, p, &bad)) {
            diag_error(lw->diag, (prec ? prec : var)->span, "argument '%s' to 'normal' expects a positive number, got %g",
                       prec ? "prec" : "var", bad);
            return;
        }
        if (var)
            p = ir_div(g, ir_scalar(g, 1), p);
    }
    Tensor *t = &lw->model->tensors[ti];
    t->dist = DIST_NORMAL;
    t->mean = m;
    t->prec = p;
    t->prec_log_term = p != NO_NODE && ir_depends_on(lw->model, p, true, true);
}

static void lower_dist(Lowerer *lw, int ti, const AstExpr *call)
{
    static const char *const dists[] = {"normal", "categorical", "bernoulli"};
    if (call->kind != AST_CALL || (strcmp(call->name, "normal") &&
        strcmp(call->name, "categorical") && strcmp(call->name, "bernoulli"))) {
        if (call->kind == AST_CALL)
            diag_error(lw->diag, call->name_span, "unknown distribution '%s'%s", call->name,
                       hint_or_list(lw, call->name, dists, 3));
        else
            diag_error(lw->diag, call->span, "expected a distribution such as normal(mean) after '~'");
        return;
    }
    if (!strcmp(call->name, "normal")) {
        lower_normal(lw, ti, call);
        return;
    }
    if (call->n_args != 1) {
        diag_error(lw->diag, call->span, "wrong number of arguments to '%s': expected 1 (the logits), got %d",
                   call->name, call->n_args);
        return;
    }
    static const char *const logits_kw[] = {"logits"};
    if (call->args[0].name && strcmp(call->args[0].name, "logits")) {
        diag_error(lw->diag, call->args[0].name_span, "unknown argument '%s' to '%s'%s", call->args[0].name,
                   call->name, hint_or_list(lw, call->args[0].name, logits_kw, 1));
        return;
    }
    NodeId logits = lower_expr(lw, call->args[0].value);
    if (logits == NO_NODE || !fits_node(lw, ti, logits, call->args[0].value->span, "the logits have", true))
        return;
    Tensor *t = &lw->model->tensors[ti];
    t->dist = !strcmp(call->name, "categorical") ? DIST_CATEGORICAL : DIST_BERNOULLI;
    t->mean = logits;
    if (t->dist == DIST_CATEGORICAL && ir_shape(&lw->model->g, t->shape)->rank == 0)
        diag_error(lw->diag, t->span, "a categorical node needs at least one dimension (the classes)");
}

/* Pass 2: initialisers and distributions. */
static void define(Lowerer *lw, const AstDecl *d)
{
    Model *m = lw->model;
    if (d->kind == DECL_TRAIN) {
        lower_train_block(lw, d);
        return;
    }
    if (d->kind == DECL_LET) {
        LetBinding *let = NULL;
        for (int i = 0; i < lw->n_lets; i++)
            if (lw->lets[i].decl == d)
                let = &lw->lets[i];
        if (let && let->value == NO_NODE && !let->visiting) {
            let->visiting = true;
            let->value = lower_expr(lw, d->value);
            let->visiting = false;
        }
        return;
    }
    if (d->kind == DECL_EXTERN || d->kind == DECL_AGENT || d->kind == DECL_HIDDEN || d->kind == DECL_OUTCOME ||
        d->kind == DECL_CONTROL)
        return;
    int first = ir_model_find_tensor(m, d->has_family ? arena_printf(m->arena, "%s[%ld]", d->name, d->family_lo) : d->name);
    if (first < 0 || m->tensors[first].span.start != d->name_span.start)
        return;   /* its declaration failed */
    long count = d->has_family ? d->family_hi - d->family_lo : 1;
    for (long k = 0; k < count; k++) {
        int ti = (int)(first + k);
        lw->loop_var = d->has_family ? d->family_var : NULL;
        lw->loop_value = d->family_lo + k;
        Shape shape = *ir_shape(&m->g, m->tensors[ti].shape);
        if (d->init) {
            Init init;
            if (d->n_index_vars ? lower_table(lw, d, &shape, &init) : lower_init(lw, d->init, &shape, &init)) {
                m->tensors[ti].init = init;
                m->tensors[ti].has_init = true;
            }
        }
        if (d->dist)
            lower_dist(lw, ti, d->dist);
        lw->loop_var = NULL;
        if (lw->diag->n_errors)
            return;   /* one family element's error would repeat for every element */
    }
}

Model *ir_lower(Diag *d, Arena *arena, const AstModel *ast, const char *path)
{
    Model *m = ir_model_new(arena);
    m->name = ast->name ? ast->name : "model";
    m->path = path;
    Lowerer lw = {.diag = d, .model = m, .ast = ast};
    lw.lets = arena_alloc(arena, sizeof *lw.lets * (size_t)(ast->n_decls + 1));
    lw.families = arena_alloc(arena, sizeof *lw.families * (size_t)(ast->n_decls + 1));
    int before = d->n_errors;
    for (int i = 0; i < ast->n_decls; i++)
        declare(&lw, i);
    for (int i = 0; i < ast->n_decls && d->n_errors == before; i++)
        define(&lw, ast->decls[i]);
    if (d->n_errors != before || !lower_agent(&lw))
        return NULL;
    LowerScope *scope = arena_alloc(arena, sizeof *scope);
    *scope = (LowerScope){lw.lets, lw.n_lets, lw.families, lw.n_families, lw.n_literals};
    m->scope = scope;
    return ir_add_rule_params(d, m, m->train.rule) ? m : NULL;
}

NodeId ir_lower_expr(Diag *d, Model *m, const AstExpr *e)
{
    LowerScope *sc = m->scope;
    Lowerer lw = {.diag = d, .model = m, .lets = sc->lets, .n_lets = sc->n_lets, .families = sc->families,
                  .n_families = sc->n_families, .n_literals = sc->n_literals};
    NodeId r = lower_expr(&lw, e);
    sc->n_literals = lw.n_literals;
    return r;
}
