/* ast.c — builders for expression nodes and the expression printer.
 *
 * The grammar actions in parser.y call these; every node lives in the
 * caller's arena and carries the Span of its text (a binary node spans its
 * lhs start to its rhs end).  ast_print_expr writes an expression back as
 * .fep text that parses to the same tree: binaries are fully parenthesised,
 * and non-integer numbers are printed so that they still read as floats. */
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static AstExpr *new_expr(Arena *arena, AstExprKind kind, Span span)
{
    AstExpr *e = arena_alloc(arena, sizeof *e);
    e->kind = kind;
    e->span = span;
    return e;
}

AstExpr *ast_num(Arena *arena, double value, bool is_int, Span span)
{
    AstExpr *e = new_expr(arena, AST_NUM, span);
    e->num = value;
    e->num_is_int = is_int;
    return e;
}

AstExpr *ast_name(Arena *arena, const char *name, Span span)
{
    AstExpr *e = new_expr(arena, AST_NAME, span);
    e->name = name;
    return e;
}

AstExpr *ast_binary(Arena *arena, AstBinop op, AstExpr *lhs, AstExpr *rhs)
{
    AstExpr *e = new_expr(arena, AST_BINARY, span_join(lhs->span, rhs->span));
    e->binop = op;
    e->lhs = lhs;
    e->rhs = rhs;
    return e;
}

AstExpr *ast_neg(Arena *arena, AstExpr *operand, Span span)
{
    AstExpr *e = new_expr(arena, AST_NEG, span);
    e->lhs = operand;
    return e;
}

AstExpr *ast_call(Arena *arena, const char *name, Span name_span, AstArg *args, int n_args, Span span)
{
    AstExpr *e = new_expr(arena, AST_CALL, span);
    e->name = name;
    e->name_span = name_span;
    e->args = args;
    e->n_args = n_args;
    return e;
}

AstExpr *ast_index(Arena *arena, AstExpr *base, AstExpr *lo, AstExpr *hi, bool is_slice, Span span)
{
    AstExpr *e = new_expr(arena, AST_INDEX, span);
    e->lhs = base;
    e->index_lo = lo;
    e->index_hi = hi;
    e->is_slice = is_slice;
    return e;
}

AstExpr *ast_list(Arena *arena, AstArg *elems, int n_elems, Span span)
{
    AstExpr *e = new_expr(arena, AST_LIST, span);
    e->args = elems;
    e->n_args = n_elems;
    return e;
}

const char *ast_binop_text(AstBinop op)
{
    switch (op) {
    case BIN_ADD: return "+";
    case BIN_SUB: return "-";
    case BIN_MUL: return "*";
    case BIN_DIV: return "/";
    case BIN_MATMUL: return "@";
    case BIN_EQ: return "==";
    case BIN_NE: return "!=";
    case BIN_LT: return "<";
    case BIN_LE: return "<=";
    case BIN_GT: return ">";
    case BIN_GE: return ">=";
    case BIN_AND: return "&&";
    case BIN_OR: return "||";
    }
    return "?";
}

/* Shortest %g text that reads back as exactly `v`; a float literal keeps a
 * '.' or exponent so it does not come back as an integer. */
static void print_num(FILE *out, double v, bool is_int)
{
    char buf[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!is_int && isfinite(v) && !strpbrk(buf, ".eE"))
        strcat(buf, ".0");
    fputs(buf, out);
}

/* Prints `args` separated by ", ", keyword arguments as "name = value". */
static void print_args(FILE *out, const AstArg *args, int n_args)
{
    for (int i = 0; i < n_args; i++) {
        if (i)
            fputs(", ", out);
        if (args[i].name)
            fprintf(out, "%s = ", args[i].name);
        ast_print_expr(out, args[i].value);
    }
}

void ast_print_expr(FILE *out, const AstExpr *e)
{
    if (!e) {
        fputs("<null>", out);
        return;
    }
    switch (e->kind) {
    case AST_NUM:
        print_num(out, e->num, e->num_is_int);
        break;
    case AST_NAME:
        fputs(e->name, out);
        break;
    case AST_BINARY:
        fputc('(', out);
        ast_print_expr(out, e->lhs);
        fprintf(out, " %s ", ast_binop_text(e->binop));
        ast_print_expr(out, e->rhs);
        fputc(')', out);
        break;
    case AST_NEG:
        fputc('-', out);
        ast_print_expr(out, e->lhs);
        break;
    case AST_CALL:
        fprintf(out, "%s(", e->name);
        print_args(out, e->args, e->n_args);
        fputc(')', out);
        break;
    case AST_INDEX:
        /* -x[i] means -(x[i]); a negated base needs its parentheses back */
        if (e->lhs && e->lhs->kind == AST_NEG)
            fputc('(', out);
        ast_print_expr(out, e->lhs);
        if (e->lhs && e->lhs->kind == AST_NEG)
            fputc(')', out);
        fputc('[', out);
        if (e->index_lo)
            ast_print_expr(out, e->index_lo);
        if (e->is_slice)
            fputc(':', out);
        if (e->index_hi)
            ast_print_expr(out, e->index_hi);
        fputc(']', out);
        break;
    case AST_LIST:
        fputc('[', out);
        print_args(out, e->args, e->n_args);
        fputc(']', out);
        break;
    }
}
