/* lower_table.c — tables defined entry by entry: `const T[i, j] : [3, 4] = EXPR`.
 *
 * The index variables name the axes in order; EXPR is evaluated once per
 * entry, at compile time, with each variable bound to its integer index,
 * and the result becomes the tensor's INIT_LITERAL.  The body is arithmetic
 * on numbers and index variables: + - * /, unary minus, the comparisons
 * (== != < <= > >=) and && || (1 for true, 0 for false), and the calls
 * where(c, a, b), mod(a, b), floor, min, max, abs, exp, log, sqrt.  It is
 * how a researcher writes a transition matrix for a 25-cell grid without
 * typing 3125 numbers.  Every error points at the sub-expression that
 * caused it; evaluation stops at the first. */
#include "lower.h"

#include <math.h>
#include <string.h>

typedef struct TableEval {
    Lowerer *lw;
    const AstDecl *decl;
    long index[FEP_MAX_RANK];
    bool failed;
} TableEval;

static const char *const table_calls[] = {"where", "mod", "floor", "min", "max", "abs", "exp", "log", "sqrt"};
enum { N_TABLE_CALLS = sizeof table_calls / sizeof *table_calls };

static double fail_at(TableEval *te, Span span, const char *msg, const char *name)
{
    if (!te->failed)
        diag_error(te->lw->diag, span, msg, name);
    te->failed = true;
    return 0;
}

static double eval(TableEval *te, const AstExpr *e);

static double eval_call(TableEval *te, const AstExpr *e)
{
    int which = -1;
    for (int i = 0; i < N_TABLE_CALLS; i++)
        if (!strcmp(e->name, table_calls[i]))
            which = i;
    if (which < 0) {
        const char *hint = suggest_name(e->name, table_calls, N_TABLE_CALLS);
        const char *tail = hint ? arena_printf(te->lw->model->arena, "; did you mean '%s'?", hint)
                                : "; expected where, mod, floor, min, max, abs, exp, log or sqrt";
        if (!te->failed)
            diag_error(te->lw->diag, e->name_span, "unknown function '%s' in a table definition%s", e->name, tail);
        te->failed = true;
        return 0;
    }
    int want = which == 0 ? 3 : which <= 1 || which == 3 || which == 4 ? 2 : 1;
    if (e->n_args != want) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%%s' takes %d argument%s in a table definition", want, want == 1 ? "" : "s");
        return fail_at(te, e->span, msg, e->name);
    }
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].name)
            return fail_at(te, e->args[i].name_span, "unexpected keyword argument '%s' in a table definition",
                           e->args[i].name);
    double a = eval(te, e->args[0].value);
    if (which == 0) {   /* where(c, a, b) evaluates only the branch it takes */
        return a != 0 ? eval(te, e->args[1].value) : eval(te, e->args[2].value);
    }
    double b = want > 1 ? eval(te, e->args[1].value) : 0;
    switch (which) {
    case 1:
        if (b == 0)
            return fail_at(te, e->args[1].value->span, "%s: division by zero", "mod");
        return a - b * floor(a / b);
    case 2: return floor(a);
    case 3: return a < b ? a : b;
    case 4: return a > b ? a : b;
    case 5: return fabs(a);
    case 6: return exp(a);
    case 7: return log(a);
    default: return sqrt(a);
    }
}

static double eval_binary(TableEval *te, const AstExpr *e)
{
    if (e->binop == BIN_MATMUL)
        return fail_at(te, e->span, "'%s' has no meaning on numbers in a table definition", "@");
    double a = eval(te, e->lhs);
    if (e->binop == BIN_AND && a == 0)
        return 0;
    if (e->binop == BIN_OR && a != 0)
        return 1;
    double b = eval(te, e->rhs);
    switch (e->binop) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV:
        if (b == 0)
            return fail_at(te, e->rhs->span, "%s: division by zero", "table definition");
        return a / b;
    case BIN_EQ: return a == b;
    case BIN_NE: return a != b;
    case BIN_LT: return a < b;
    case BIN_LE: return a <= b;
    case BIN_GT: return a > b;
    case BIN_GE: return a >= b;
    case BIN_AND:
    case BIN_OR: return b != 0;
    default: return 0;
    }
}

static double eval(TableEval *te, const AstExpr *e)
{
    if (te->failed)
        return 0;
    switch (e->kind) {
    case AST_NUM:
        return e->num;
    case AST_NAME:
        for (int i = 0; i < te->decl->n_index_vars; i++)
            if (!strcmp(e->name, te->decl->index_vars[i]))
                return (double)te->index[i];
        return fail_at(te, e->span,
                       "unknown name '%s' in a table definition: only the index variables and numbers can appear",
                       e->name);
    case AST_NEG:
        return -eval(te, e->lhs);
    case AST_BINARY:
        return eval_binary(te, e);
    case AST_CALL:
        return eval_call(te, e);
    default:
        return fail_at(te, e->span, "%s cannot appear in a table definition", "this expression");
    }
}

bool lower_table(Lowerer *lw, const AstDecl *d, const Shape *shape, Init *out)
{
    if (d->n_index_vars != shape->rank) {
        diag_error(lw->diag, d->index_span, "table '%s' names %d index variable%s but its shape has %d axes",
                   d->name, d->n_index_vars, d->n_index_vars == 1 ? "" : "s", shape->rank);
        return false;
    }
    for (int i = 0; i < d->n_index_vars; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(d->index_vars[i], d->index_vars[j])) {
                diag_error(lw->diag, d->index_span, "index variable '%s' is named twice", d->index_vars[i]);
                return false;
            }
    int64_t n = ir_numel(shape);
    if (n > (1 << 24)) {
        diag_error(lw->diag, d->shape_span, "table '%s' is too large to define entry by entry (%lld entries; at most %d)",
                   d->name, (long long)n, 1 << 24);
        return false;
    }
    double *values = arena_alloc(lw->model->arena, sizeof *values * (size_t)(n + 1));
    TableEval te = {.lw = lw, .decl = d};
    for (int64_t k = 0; k < n && !te.failed; k++) {
        int64_t rem = k;
        for (int a = shape->rank - 1; a >= 0; a--) {
            te.index[a] = (long)(rem % shape->dims[a]);
            rem /= shape->dims[a];
        }
        values[k] = eval(&te, d->init);
        if (!te.failed && !isfinite(values[k])) {
            char at[96] = "";
            for (int a = 0; a < shape->rank; a++)
                snprintf(at + strlen(at), sizeof at - strlen(at), "%s%s = %ld", a ? ", " : "", d->index_vars[a],
                         te.index[a]);
            diag_error(lw->diag, d->init->span, "table '%s' is not finite at %s (%g)", d->name, at, values[k]);
            te.failed = true;
        }
    }
    if (te.failed)
        return false;
    *out = (Init){.kind = INIT_LITERAL, .values = values, .n_values = n};
    return true;
}
