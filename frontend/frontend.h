/* frontend.h — the .fep frontend: source files, spans, diagnostics, the
 * AST, and the parser entry points.
 *
 * Data flow: SourceFile text → lexer.l tokens → parser.y → AST (allocated in
 * the caller's arena; every node carries the Span of its text).  The AST is
 * purely syntactic: names are unresolved strings, shapes are unchecked
 * integers.  frontend/lower.c (in ir/) is the only code that reads it.
 *
 * Errors never exit: they are reported through a Diag, which counts them;
 * callers check diag->n_errors after each stage. */
#ifndef FEP_FRONTEND_H
#define FEP_FRONTEND_H

#include <stdbool.h>
#include <stdio.h>

#include "../util/util.h"

/* ---- diag.c ---- */

/* A source text registered with a Diag; `id` indexes Diag.files. */
typedef struct SourceFile {
    const char *name;     /* as given on the command line, or "<repl>" */
    const char *text;     /* NUL-terminated copy owned by the Diag's arena */
    size_t len;
} SourceFile;

/* Half-open byte range [start, end) inside file `file`. */
typedef struct Span {
    int file;
    unsigned start, end;
} Span;

typedef struct Diag {
    Arena *arena;
    SourceFile *files;
    int n_files, cap_files;
    int n_errors;
    FILE *out;            /* where messages go; stderr by default */
    char *last_message;   /* text of the last error ("message" only), for tests */
    Span last_span;
} Diag;

void diag_init(Diag *d, Arena *arena, FILE *out);
/* Registers a copy of `text` and returns its file id. */
int diag_add_file(Diag *d, const char *name, const char *text, size_t len);
/* Prints "file:line:col: error: msg", the source line and a caret/tilde
 * underline spanning `span` (clipped to its first line); counts the error. */
void diag_error(Diag *d, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note attached to the previous error (e.g. "previous definition is here"). */
void diag_note(Diag *d, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error with no source location: "name: error: msg". */
void diag_error_plain(Diag *d, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1-based line and column (display columns) of a byte offset. */
void diag_line_col(const Diag *d, int file, unsigned offset, int *line, int *col);
Span span_join(Span a, Span b);

/* ---- ast.c ---- */

typedef enum AstExprKind {
    AST_NUM,        /* number literal: num */
    AST_NAME,       /* identifier: name */
    AST_BINARY,     /* lhs op rhs: binop, lhs, rhs */
    AST_NEG,        /* -operand: lhs */
    AST_CALL,       /* name(args): name, args (keyword args have arg.name) */
    AST_INDEX,      /* base[lo] or base[lo:hi]: lhs = base, index_lo, index_hi, is_slice */
    AST_LIST,       /* [e, e, ...] — nested lists are matrix literals: args */
} AstExprKind;

/* Comparisons and the logical operators yield 1 or 0; they are only
 * meaningful in table definitions (`const T[i, j] : [..] = i == j`). */
typedef enum AstBinop {
    BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MATMUL,
    BIN_EQ, BIN_NE, BIN_LT, BIN_LE, BIN_GT, BIN_GE, BIN_AND, BIN_OR,
} AstBinop;

typedef struct AstExpr AstExpr;

typedef struct AstArg {
    const char *name;     /* keyword name (`stride` in stride = 1), or NULL */
    Span name_span;
    AstExpr *value;
} AstArg;

struct AstExpr {
    AstExprKind kind;
    Span span;            /* whole expression */
    double num;           /* AST_NUM */
    bool num_is_int;      /* AST_NUM written without '.', 'e' */
    const char *name;     /* AST_NAME, AST_CALL (callee) */
    Span name_span;       /* AST_CALL: span of the callee name */
    AstBinop binop;       /* AST_BINARY */
    AstExpr *lhs, *rhs;   /* AST_BINARY; AST_NEG and AST_INDEX use lhs */
    AstExpr *index_lo, *index_hi;  /* AST_INDEX; either may be NULL in a slice */
    bool is_slice;        /* AST_INDEX: written with ':' */
    AstArg *args;         /* AST_CALL arguments, AST_LIST elements (value only) */
    int n_args;
};

typedef enum AstDeclKind {
    DECL_PARAM,     /* param NAME : SHAPE = INIT */
    DECL_CONST,     /* const NAME : SHAPE = INIT */
    DECL_INPUT,     /* input NAME[FAMILY]? : SHAPE */
    DECL_LATENT,    /* latent NAME[FAMILY]? : SHAPE ~ DIST (init = INIT)? */
    DECL_OBSERVED,  /* observed NAME[FAMILY]? : SHAPE ~ DIST */
    DECL_LET,       /* let NAME = EXPR */
    DECL_EXTERN,    /* extern NAME(P, ...) = "lib:sym" grad "sym" */
    DECL_TRAIN,     /* train { KEY = VALUE ... } */
    /* discrete active inference (the soft keywords; docs/language/agents.md) */
    DECL_HIDDEN,    /* hidden NAME : [S] ~ categorical(prior = .., transition = B(u)) */
    DECL_OUTCOME,   /* outcome NAME : [O] ~ categorical(likelihood = A(s, ..), preference = ..) */
    DECL_CONTROL,   /* control NAME : [U] */
    DECL_COUNTS,    /* counts NAME : SHAPE = INIT (Dirichlet concentrations, learned) */
    DECL_AGENT,     /* agent { KEY = VALUE ... } */
} AstDeclKind;

typedef struct AstTrainEntry {
    const char *key;
    Span key_span;
    AstExpr *value;       /* NAME, number, or CALL with keyword args */
} AstTrainEntry;

typedef struct AstDecl {
    AstDeclKind kind;
    Span span;            /* whole declaration */
    const char *name;
    Span name_span;
    /* unrolled family `h[t in LO..HI]`: has_family, family_var, lo, hi */
    bool has_family;
    const char *family_var;
    long family_lo, family_hi;
    Span family_span;
    /* CONST table `T[i, j] : [..] = EXPR`: the index variables, one per dim */
    const char **index_vars;
    int n_index_vars;
    Span index_span;
    /* shape `[d0, d1, ...]`; a written `[]` gives rank 0 */
    long *dims;
    Span *dim_spans;
    int n_dims;
    Span shape_span;
    AstExpr *dist;        /* LATENT, OBSERVED, HIDDEN, OUTCOME: a CALL such as normal(mean, prec = P) */
    AstExpr *init;        /* PARAM, CONST, COUNTS (required), LATENT `init = ...` (optional) */
    AstExpr *value;       /* LET */
    /* EXTERN */
    const char **ext_params;
    int n_ext_params;
    const char *ext_target;   /* "libfoo.so:softsign" (quotes removed) */
    Span ext_target_span;
    const char *ext_grad;     /* "softsign_grad" */
    Span ext_grad_span;
    /* TRAIN, AGENT */
    AstTrainEntry *entries;
    int n_entries;
} AstDecl;

typedef struct AstModel {
    const char *name;     /* from `model NAME`; NULL when the line is absent */
    Span name_span;
    AstDecl **decls;
    int n_decls;
} AstModel;

/* Builders used by the grammar actions; all allocate in `arena`. */
AstExpr *ast_num(Arena *arena, double value, bool is_int, Span span);
AstExpr *ast_name(Arena *arena, const char *name, Span span);
AstExpr *ast_binary(Arena *arena, AstBinop op, AstExpr *lhs, AstExpr *rhs);
AstExpr *ast_neg(Arena *arena, AstExpr *operand, Span span);
AstExpr *ast_call(Arena *arena, const char *name, Span name_span, AstArg *args, int n_args, Span span);
AstExpr *ast_index(Arena *arena, AstExpr *base, AstExpr *lo, AstExpr *hi, bool is_slice, Span span);
AstExpr *ast_list(Arena *arena, AstArg *elems, int n_elems, Span span);
const char *ast_binop_text(AstBinop op);   /* "+", "@", ... */
/* Prints an expression back as .fep text (fully parenthesised binaries). */
void ast_print_expr(FILE *out, const AstExpr *e);

/* ---- parser.y / lexer.l ---- */

/* What a parse call accepts. */
typedef enum ParseMode {
    PARSE_MODEL,    /* a whole file: optional `model NAME`, then declarations */
    PARSE_DECLS,    /* declarations only (REPL input that declares) */
    PARSE_EXPR,     /* exactly one expression (REPL evaluation) */
} ParseMode;

typedef struct ParseResult {
    AstModel *model;      /* PARSE_MODEL, PARSE_DECLS */
    AstExpr *expr;        /* PARSE_EXPR */
} ParseResult;

/* Parses file `file_id` of `d` in mode `mode`.  Returns false after
 * reporting at least one diagnostic (syntax errors stop at the first
 * failing token; lexical errors are reported with their exact span).
 * Empty input in PARSE_MODEL is an error ("empty model file"); text that
 * contains NUL bytes is rejected as binary before lexing. */
bool parse_source(Diag *d, Arena *arena, int file_id, ParseMode mode, ParseResult *out);

#endif
