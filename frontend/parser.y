/* parser.y — the .fep grammar: tokens from lexer.l in, an AST out.
 *
 * One grammar serves the three ParseModes: parse_source makes the lexer
 * return a pseudo start token first (START_MODEL, START_DECLS, START_EXPR).
 * Locations are Spans of byte offsets; every action is a one-line call to a
 * builder (ast.c, or the decl_* helpers below) or a list append.  All memory
 * is in the caller's arena.  The parser stops at the first error:
 * yyreport_syntax_error turns bison's expected-token set into one message
 * ("expected X, found 'Y'"), using the lexer's bracket stack to say which
 * '(' '[' '{' is still open.  Expression nesting (NEST_LIMIT) and operator
 * chains (OPERATOR_LIMIT) are capped so neither bison's stack nor the later
 * recursive passes over the AST can overflow. */

%define api.pure full
%define api.prefix {fepyy}
%define api.token.prefix {TK_}
%define api.location.type {Span}
%define parse.error custom
%define parse.lac full
%locations
%lex-param {yyscan_t scanner}
%parse-param {yyscan_t scanner} {Parser *p}

%code requires {
#include <stdbool.h>

#include "frontend/frontend.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* A token's value: NAME and STRING text (arena copy, quotes removed),
 * INT and FLOAT value; `span` repeats the token's location. */
typedef struct Tok { const char *text; double num; long ival; Span span; } Tok;

/* Lists built left-recursively by the grammar (arena arrays). */
typedef struct ArgList { AstArg *items; int n, cap; } ArgList;
typedef struct DimList { long *dims; Span *spans; int n, cap_dims, cap_spans; Span span; } DimList;
typedef struct NameList { const char **items; int n, cap; } NameList;
typedef struct EntryList { AstTrainEntry *items; int n, cap; } EntryList;
typedef struct DeclList { AstDecl **items; int n, cap; } DeclList;
typedef struct Family { bool has; const char *var; long lo, hi; Span span; } Family;
typedef struct IndexArgs { AstExpr *lo, *hi; bool is_slice; } IndexArgs;

typedef struct Bracket { char ch; Span span; } Bracket;     /* an open ( [ { */
typedef struct TokInfo { int kind; Span span; } TokInfo;

/* State shared by the lexer and the parser for one parse_source call. */
typedef struct Parser {
    Diag *diag;
    Arena *arena;             /* the AST's arena */
    int file;
    const char *text;         /* the file's text (NUL-free) */
    unsigned len;
    int start_token;          /* returned by the first yylex call, then 0 */
    unsigned offset;          /* lexer position in bytes */
    Bracket *open;            /* brackets opened and not yet closed */
    int n_open, cap_open;
    TokInfo prev, cur;        /* the last two tokens the lexer returned */
    int depth;                /* expression nesting inside the parser */
    int n_operators;          /* binary operators and indexes in this declaration */
    AstModel *model;
    AstExpr *expr;
} Parser;

/* lexer.l: runs the parser over p->text; true when it accepted. */
bool lex_parse(Parser *p);
}

%code {
#include <string.h>

#define YYLLOC_DEFAULT(cur, rhs, n)                                         \
    do {                                                                    \
        if (n) {                                                            \
            (cur).file = YYRHSLOC(rhs, 1).file;                             \
            (cur).start = YYRHSLOC(rhs, 1).start;                           \
            (cur).end = YYRHSLOC(rhs, n).end;                               \
        } else {                                                            \
            (cur).file = YYRHSLOC(rhs, 0).file;                             \
            (cur).start = (cur).end = YYRHSLOC(rhs, 0).end;                 \
        }                                                                   \
    } while (0)

/* Every word that starts a declaration, for the messages that list them. */
#define DECLARATION_WORDS \
    "param, const, input, latent, observed, let, extern, train, hidden, outcome, control, counts, agent"

enum {
    NEST_LIMIT = 256,       /* open brackets and unary minuses at once */
    OPERATOR_LIMIT = 1024,  /* binary operators and indexes in one declaration */
};

int fepyylex(FEPYYSTYPE *lval, Span *lloc, yyscan_t scanner);
static void fepyyerror(Span *loc, yyscan_t scanner, Parser *p, const char *msg);

static bool nest_enter(Parser *p, Span opener);
static bool count_operator(Parser *p, Span op);
static AstExpr *nest_leave(Parser *p, AstExpr *e);
static AstExpr *paren(AstExpr *e, Span span);
static Tok keyword_tok(Parser *p, const char *text, Span span);
static AstModel *model_new(Parser *p, const Tok *name);
static void model_finish(Parser *p, AstModel *m, const DeclList *decls);
static DeclList decl_push(Parser *p, DeclList l, AstDecl *d);
static ArgList arg_push(Parser *p, ArgList l, AstArg a);
static DimList dim_push(Parser *p, DimList l, Tok dim);
static DimList dim_close(DimList l, Span span);
static NameList name_push(Parser *p, NameList l, Tok name);
static EntryList entry_push(Parser *p, EntryList l, AstTrainEntry e);
static Family family_make(Tok var, long lo, long hi, Span span);
static AstDecl *decl_head(Parser *p, Tok name, const Family *fam, const DimList *shape);
static AstDecl *decl_tensor(Parser *p, AstDeclKind kind, Span span, Tok name, const DimList *shape, AstExpr *init);
static AstDecl *decl_node(AstDecl *d, AstDeclKind kind, Span span, AstExpr *dist, AstExpr *init);
static AstDecl *decl_let(Parser *p, Span span, Tok name, AstExpr *value);
static AstDecl *decl_extern(Parser *p, Span span, Tok name, const NameList *params, Tok target, Tok grad);
static AstDecl *decl_train(Parser *p, Span span, const EntryList *entries);
static AstDecl *decl_table(Parser *p, Span span, Tok name, const NameList *vars, Span vars_span,
                           const DimList *shape, AstExpr *body);
static AstDecl *decl_soft(Parser *p, Span span, Tok keyword, Tok name, const DimList *shape, AstExpr *tail);
static AstDecl *decl_block(Parser *p, Span span, Tok keyword, const EntryList *entries);
}

%union {
    Tok tok;
    long ival;
    AstExpr *expr;
    AstArg arg;
    ArgList args;
    DimList dims;
    NameList names;
    AstTrainEntry entry;
    EntryList entries;
    AstDecl *decl;
    DeclList decls;
    AstModel *model;
    Family family;
    IndexArgs index;
}

%token START_MODEL START_DECLS START_EXPR
%token MODEL "model" PARAM "param" CONST "const" INPUT "input" LATENT "latent"
%token OBSERVED "observed" LET "let" EXTERN "extern" TRAIN "train"
%token IN "in" GRAD "grad" INIT "init"
%token DOTDOT ".." COLON ":" EQ "=" TILDE "~" COMMA ","
%token LPAREN "(" RPAREN ")" LBRACK "[" RBRACK "]" LBRACE "{" RBRACE "}"
%token PLUS "+" MINUS "-" STAR "*" SLASH "/" AT "@"
%token EQEQ "==" NE "!=" LT "<" LE "<=" GT ">" GE ">=" AND "&&" OR "||"
%token <tok> NAME "name" INT "integer" FLOAT "number" STRING "string"

%type <model> model_line
%type <decls> decls
%type <decl> decl node_head
%type <dims> shape dim_list dims
%type <family> family
%type <ival> signed_int
%type <expr> latent_init expr disjunction conjunction comparison sum term unary postfix primary opt_expr soft_tail
%type <names> ext_params names
%type <tok> ext_grad key_name
%type <entries> train_entries
%type <entry> train_entry
%type <args> call_args arg_list list_elems expr_list
%type <arg> arg
%type <index> index

%%

start
  : START_MODEL model_line decls  { model_finish(p, $2, &$3); }
  | START_DECLS model_line decls  { model_finish(p, $2, &$3); }
  | START_EXPR expr               { p->expr = $2; }
  ;

model_line
  : %empty                        { $$ = model_new(p, NULL); }
  | MODEL NAME                    { $$ = model_new(p, &$2); }
  ;

decls
  : %empty                        { $$ = (DeclList){0}; }
  | decls decl                    { $$ = decl_push(p, $1, $2); }
  ;

decl
  : PARAM NAME ":" shape "=" expr            { $$ = decl_tensor(p, DECL_PARAM, @$, $2, &$4, $6); }
  | CONST NAME ":" shape "=" expr            { $$ = decl_tensor(p, DECL_CONST, @$, $2, &$4, $6); }
  | CONST NAME "[" names "]" ":" shape "=" expr  { $$ = decl_table(p, @$, $2, &$4, span_join(@3, @5), &$7, $9); }
  | INPUT node_head                          { $$ = decl_node($2, DECL_INPUT, @$, NULL, NULL); }
  | LATENT node_head "~" expr latent_init    { $$ = decl_node($2, DECL_LATENT, @$, $4, $5); }
  | OBSERVED node_head "~" expr              { $$ = decl_node($2, DECL_OBSERVED, @$, $4, NULL); }
  | LET NAME "=" expr                        { $$ = decl_let(p, @$, $2, $4); }
  | EXTERN NAME "(" ext_params ")" "=" STRING ext_grad  { $$ = decl_extern(p, @$, $2, &$4, $7, $8); }
  | TRAIN "{" train_entries "}"              { $$ = decl_train(p, @$, &$3); }
  | NAME NAME ":" shape soft_tail            { if (!($$ = decl_soft(p, @$, $1, $2, &$4, $5))) YYABORT; }
  | NAME "{" train_entries "}"               { if (!($$ = decl_block(p, @$, $1, &$3))) YYABORT; }
  ;

/* what follows the shape of a soft-keyword declaration (hidden, outcome,
 * control, counts): nothing, a distribution, or an initial value; which one
 * each keyword takes is checked by decl_soft */
soft_tail
  : %empty                        { $$ = NULL; }
  | "~" expr                      { $$ = $2; }
  | "=" expr                      { $$ = ast_name(p->arena, "=", @1); $$->lhs = $2; }
  ;

/* NAME[t in LO..HI] : [d0, d1, ...] */
node_head
  : NAME family ":" shape         { $$ = decl_head(p, $1, &$2, &$4); }
  ;

family
  : %empty                                        { $$ = (Family){0}; }
  | "[" NAME IN signed_int DOTDOT signed_int "]"  { $$ = family_make($2, $4, $6, @$); }
  ;

signed_int
  : INT                           { $$ = $1.ival; }
  | "-" INT                       { $$ = -$2.ival; }
  ;

shape
  : "[" dim_list "]"              { $$ = dim_close($2, @$); }
  ;

dim_list
  : %empty                        { $$ = (DimList){0}; }
  | dims
  | dims ","
  ;

dims
  : INT                           { $$ = dim_push(p, (DimList){0}, $1); }
  | dims "," INT                  { $$ = dim_push(p, $1, $3); }
  ;

latent_init
  : %empty                        { $$ = NULL; }
  | INIT "=" expr                 { $$ = $3; }
  ;

ext_params
  : %empty                        { $$ = (NameList){0}; }
  | names
  ;

names
  : NAME                          { $$ = name_push(p, (NameList){0}, $1); }
  | names "," NAME                { $$ = name_push(p, $1, $3); }
  ;

ext_grad
  : %empty                        { $$ = (Tok){0}; }
  | GRAD STRING                   { $$ = $2; }
  ;

train_entries
  : %empty                        { $$ = (EntryList){0}; }
  | train_entries train_entry     { $$ = entry_push(p, $1, $2); }
  ;

train_entry
  : key_name "=" expr             { $$ = (AstTrainEntry){$1.text, $1.span, $3}; }
  ;

/* train keys and keyword arguments may also be the soft keywords */
key_name
  : NAME
  | INIT                          { $$ = keyword_tok(p, "init", @1); }
  | IN                            { $$ = keyword_tok(p, "in", @1); }
  | GRAD                          { $$ = keyword_tok(p, "grad", @1); }
  ;

/* ---- expressions: ||  <  &&  <  == != < <= > >=  <  + -  <  * / @  <  unary -  <  postfix  <  primary ---- */

expr
  : disjunction
  ;

disjunction
  : conjunction
  | disjunction "||" count conjunction  { $$ = ast_binary(p->arena, BIN_OR, $1, $4); }
  ;

conjunction
  : comparison
  | conjunction "&&" count comparison   { $$ = ast_binary(p->arena, BIN_AND, $1, $4); }
  ;

/* comparisons do not chain: a < b < c is a syntax error */
comparison
  : sum
  | sum "==" count sum            { $$ = ast_binary(p->arena, BIN_EQ, $1, $4); }
  | sum "!=" count sum            { $$ = ast_binary(p->arena, BIN_NE, $1, $4); }
  | sum "<" count sum             { $$ = ast_binary(p->arena, BIN_LT, $1, $4); }
  | sum "<=" count sum            { $$ = ast_binary(p->arena, BIN_LE, $1, $4); }
  | sum ">" count sum             { $$ = ast_binary(p->arena, BIN_GT, $1, $4); }
  | sum ">=" count sum            { $$ = ast_binary(p->arena, BIN_GE, $1, $4); }
  ;

sum
  : term
  | sum "+" count term            { $$ = ast_binary(p->arena, BIN_ADD, $1, $4); }
  | sum "-" count term            { $$ = ast_binary(p->arena, BIN_SUB, $1, $4); }
  ;

term
  : unary
  | term "*" count unary          { $$ = ast_binary(p->arena, BIN_MUL, $1, $4); }
  | term "/" count unary          { $$ = ast_binary(p->arena, BIN_DIV, $1, $4); }
  | term "@" count unary          { $$ = ast_binary(p->arena, BIN_MATMUL, $1, $4); }
  ;

unary
  : postfix
  | "-" enter unary               { $$ = nest_leave(p, ast_neg(p->arena, $3, @$)); }
  ;

postfix
  : primary
  | postfix "[" count_enter index "]"  { $$ = nest_leave(p, ast_index(p->arena, $1, $4.lo, $4.hi, $4.is_slice, @$)); }
  ;

index
  : expr                          { $$ = (IndexArgs){$1, NULL, false}; }
  | opt_expr ":" opt_expr         { $$ = (IndexArgs){$1, $3, true}; }
  ;

opt_expr
  : %empty                        { $$ = NULL; }
  | expr
  ;

primary
  : INT                           { $$ = ast_num(p->arena, $1.num, true, @1); }
  | FLOAT                         { $$ = ast_num(p->arena, $1.num, false, @1); }
  | NAME                          { $$ = ast_name(p->arena, $1.text, @1); }
  | NAME "(" enter call_args ")"  { $$ = nest_leave(p, ast_call(p->arena, $1.text, @1, $4.items, $4.n, @$)); }
  | "(" enter expr ")"            { $$ = nest_leave(p, paren($3, @$)); }
  | "[" enter list_elems "]"      { $$ = nest_leave(p, ast_list(p->arena, $3.items, $3.n, @$)); }
  ;

/* These bound the AST's depth, so that neither bison's stack nor the
 * recursive passes after the parser can overflow: `enter` counts a level of
 * nesting at the opener just shifted (@0), `count` one more operator in the
 * declaration (left-recursive chains nest too), `count_enter` both. */
enter
  : %empty                        { if (!nest_enter(p, @0)) YYABORT; }
  ;

count
  : %empty                        { if (!count_operator(p, @0)) YYABORT; }
  ;

count_enter
  : %empty                        { if (!count_operator(p, @0) || !nest_enter(p, @0)) YYABORT; }
  ;

call_args
  : %empty                        { $$ = (ArgList){0}; }
  | arg_list
  | arg_list ","
  ;

arg_list
  : arg                           { $$ = arg_push(p, (ArgList){0}, $1); }
  | arg_list "," arg              { $$ = arg_push(p, $1, $3); }
  ;

arg
  : expr                          { $$ = (AstArg){NULL, $1->span, $1}; }
  | key_name "=" expr             { $$ = (AstArg){$1.text, $1.span, $3}; }
  ;

list_elems
  : %empty                        { $$ = (ArgList){0}; }
  | expr_list
  | expr_list ","
  ;

expr_list
  : expr                          { $$ = arg_push(p, (ArgList){0}, (AstArg){NULL, $1->span, $1}); }
  | expr_list "," expr            { $$ = arg_push(p, $1, (AstArg){NULL, $3->span, $3}); }
  ;

%%

/* ---- nesting and small builders used by the actions ---- */

/* Enters one level of expression nesting at `opener`; reports and returns
 * false past NEST_LIMIT. */
static bool nest_enter(Parser *p, Span opener)
{
    if (++p->depth <= NEST_LIMIT)
        return true;
    diag_error(p->diag, opener, "expression nested too deeply (limit %d)", NEST_LIMIT);
    return false;
}

/* Counts one binary operator or index at `op`; reports and returns false
 * past OPERATOR_LIMIT in the current declaration. */
static bool count_operator(Parser *p, Span op)
{
    if (++p->n_operators <= OPERATOR_LIMIT)
        return true;
    diag_error(p->diag, op, "expression too long (limit %d operators)", OPERATOR_LIMIT);
    return false;
}

static AstExpr *nest_leave(Parser *p, AstExpr *e)
{
    p->depth--;
    return e;
}

/* A parenthesised expression keeps its node; its span grows to the parens. */
static AstExpr *paren(AstExpr *e, Span span)
{
    e->span = span;
    return e;
}

static Tok keyword_tok(Parser *p, const char *text, Span span)
{
    return (Tok){.text = arena_strdup(p->arena, text), .span = span};
}

static AstModel *model_new(Parser *p, const Tok *name)
{
    AstModel *m = arena_alloc(p->arena, sizeof *m);
    if (name) {
        m->name = name->text;
        m->name_span = name->span;
    }
    return m;
}

static void model_finish(Parser *p, AstModel *m, const DeclList *decls)
{
    m->decls = decls->items;
    m->n_decls = decls->n;
    p->model = m;
}

static DeclList decl_push(Parser *p, DeclList l, AstDecl *d)
{
    p->n_operators = 0;
    l.items = arena_grow(p->arena, l.items, &l.cap, l.n, sizeof *l.items);
    l.items[l.n++] = d;
    return l;
}

static ArgList arg_push(Parser *p, ArgList l, AstArg a)
{
    l.items = arena_grow(p->arena, l.items, &l.cap, l.n, sizeof *l.items);
    l.items[l.n++] = a;
    return l;
}

static DimList dim_push(Parser *p, DimList l, Tok dim)
{
    l.dims = arena_grow(p->arena, l.dims, &l.cap_dims, l.n, sizeof *l.dims);
    l.spans = arena_grow(p->arena, l.spans, &l.cap_spans, l.n, sizeof *l.spans);
    l.dims[l.n] = dim.ival;
    l.spans[l.n++] = dim.span;
    return l;
}

static DimList dim_close(DimList l, Span span)
{
    l.span = span;
    return l;
}

static NameList name_push(Parser *p, NameList l, Tok name)
{
    l.items = arena_grow(p->arena, l.items, &l.cap, l.n, sizeof *l.items);
    l.items[l.n++] = name.text;
    return l;
}

static EntryList entry_push(Parser *p, EntryList l, AstTrainEntry e)
{
    l.items = arena_grow(p->arena, l.items, &l.cap, l.n, sizeof *l.items);
    l.items[l.n++] = e;
    return l;
}

static Family family_make(Tok var, long lo, long hi, Span span)
{
    return (Family){true, var.text, lo, hi, span};
}

static AstDecl *decl_new(Parser *p, AstDeclKind kind, Tok name)
{
    AstDecl *d = arena_alloc(p->arena, sizeof *d);
    d->kind = kind;
    d->name = name.text;
    d->name_span = name.span;
    return d;
}

static void set_shape(AstDecl *d, const DimList *shape)
{
    d->dims = shape->dims;
    d->dim_spans = shape->spans;
    d->n_dims = shape->n;
    d->shape_span = shape->span;
}

/* The NAME[family] : shape part of input/latent/observed; kind set later. */
static AstDecl *decl_head(Parser *p, Tok name, const Family *fam, const DimList *shape)
{
    AstDecl *d = decl_new(p, DECL_INPUT, name);
    d->has_family = fam->has;
    d->family_var = fam->var;
    d->family_lo = fam->lo;
    d->family_hi = fam->hi;
    d->family_span = fam->span;
    set_shape(d, shape);
    return d;
}

static AstDecl *decl_tensor(Parser *p, AstDeclKind kind, Span span, Tok name, const DimList *shape, AstExpr *init)
{
    AstDecl *d = decl_new(p, kind, name);
    d->span = span;
    set_shape(d, shape);
    d->init = init;
    return d;
}

static AstDecl *decl_node(AstDecl *d, AstDeclKind kind, Span span, AstExpr *dist, AstExpr *init)
{
    d->kind = kind;
    d->span = span;
    d->dist = dist;
    d->init = init;
    return d;
}

static AstDecl *decl_let(Parser *p, Span span, Tok name, AstExpr *value)
{
    AstDecl *d = decl_new(p, DECL_LET, name);
    d->span = span;
    d->value = value;
    return d;
}

static AstDecl *decl_extern(Parser *p, Span span, Tok name, const NameList *params, Tok target, Tok grad)
{
    AstDecl *d = decl_new(p, DECL_EXTERN, name);
    d->span = span;
    d->ext_params = params->items;
    d->n_ext_params = params->n;
    d->ext_target = target.text;
    d->ext_target_span = target.span;
    d->ext_grad = grad.text;
    d->ext_grad_span = grad.span;
    return d;
}

static AstDecl *decl_train(Parser *p, Span span, const EntryList *entries)
{
    AstDecl *d = decl_new(p, DECL_TRAIN, (Tok){.text = "train", .span = span});
    d->span = span;
    d->entries = entries->items;
    d->n_entries = entries->n;
    return d;
}

/* const T[i, j] : [..] = EXPR: a table whose entries EXPR gives per index. */
static AstDecl *decl_table(Parser *p, Span span, Tok name, const NameList *vars, Span vars_span,
                           const DimList *shape, AstExpr *body)
{
    AstDecl *d = decl_tensor(p, DECL_CONST, span, name, shape, body);
    d->index_vars = vars->items;
    d->n_index_vars = vars->n;
    d->index_span = vars_span;
    return d;
}

/* The soft keywords: declaration words that stay ordinary names everywhere
 * else, so models that call a tensor `hidden` or `agent` keep working. */
static const char *const soft_words[] = {"hidden", "outcome", "control", "counts"};
static const AstDeclKind soft_kinds[] = {DECL_HIDDEN, DECL_OUTCOME, DECL_CONTROL, DECL_COUNTS};

static AstDecl *decl_soft(Parser *p, Span span, Tok keyword, Tok name, const DimList *shape, AstExpr *tail)
{
    int k = 0;
    while (k < 4 && strcmp(keyword.text, soft_words[k]))
        k++;
    if (k == 4) {
        const char *hint = suggest_name(keyword.text, soft_words, 4);
        diag_error(p->diag, keyword.span, "unknown declaration '%s'%s%s%s", keyword.text,
                   hint ? "; did you mean '" : "; expected a declaration (" DECLARATION_WORDS ")",
                   hint ? hint : "", hint ? "'?" : "");
        return NULL;
    }
    bool init = tail && tail->kind == AST_NAME && !strcmp(tail->name, "=");
    AstDeclKind kind = soft_kinds[k];
    const char *want = kind == DECL_COUNTS ? "'=' and the initial counts"
                       : kind == DECL_CONTROL ? "nothing" : "'~ categorical(...)'";
    bool fits = kind == DECL_COUNTS ? init : kind == DECL_CONTROL ? !tail : tail && !init;
    if (!fits) {
        diag_error(p->diag, tail ? tail->span : shape->span, "%s '%s' takes %s after its shape", keyword.text,
                   name.text, want);
        return NULL;
    }
    AstDecl *d = decl_tensor(p, kind, span, name, shape, init ? tail->lhs : NULL);
    d->dist = init ? NULL : tail;
    return d;
}

/* NAME { KEY = VALUE ... }: `agent` is the one block besides `train`. */
static AstDecl *decl_block(Parser *p, Span span, Tok keyword, const EntryList *entries)
{
    if (strcmp(keyword.text, "agent")) {
        static const char *const blocks[] = {"agent", "train"};
        const char *hint = suggest_name(keyword.text, blocks, 2);
        diag_error(p->diag, keyword.span, "unknown block '%s'%s%s%s", keyword.text,
                   hint ? "; did you mean '" : "; expected train or agent", hint ? hint : "", hint ? "'?" : "");
        return NULL;
    }
    AstDecl *d = decl_new(p, DECL_AGENT, (Tok){.text = "agent", .span = keyword.span});
    d->span = span;
    d->entries = entries->items;
    d->n_entries = entries->n;
    return d;
}

/* ---- syntax errors ---- */

/* Bison reaches yyerror only for its own failures (stack exhaustion), which
 * the nesting limit makes unreachable; report them plainly all the same. */
static void fepyyerror(Span *loc, yyscan_t scanner, Parser *p, const char *msg)
{
    (void)scanner;
    diag_error(p->diag, *loc, "%s", msg);
}

static bool has(const yysymbol_kind_t *set, int n, yysymbol_kind_t sym)
{
    for (int i = 0; i < n; i++)
        if (set[i] == sym)
            return true;
    return false;
}

static const char *tok_text(Parser *p, Span s)
{
    unsigned n = s.end - s.start;
    if (n > 40)
        return arena_printf(p->arena, "'%.37s...'", p->text + s.start);
    return arena_printf(p->arena, "'%.*s'", (int)n, p->text + s.start);
}

/* The innermost bracket still open before the lookahead token (the lexer
 * has already pushed the lookahead when it is itself an opener). */
static const Bracket *innermost_open(const Parser *p)
{
    int i = p->n_open - 1;
    bool cur_opens = p->cur.kind == TK_LPAREN || p->cur.kind == TK_LBRACK || p->cur.kind == TK_LBRACE;
    if (i >= 0 && cur_opens && p->open[i].span.start == p->cur.span.start)
        i--;
    return i >= 0 ? &p->open[i] : NULL;
}

static char closer_of(char open) { return open == '(' ? ')' : open == '[' ? ']' : '}'; }

static yysymbol_kind_t closer_symbol(char open)
{
    return open == '(' ? YYSYMBOL_RPAREN : open == '[' ? YYSYMBOL_RBRACK : YYSYMBOL_RBRACE;
}

static const char *bracket_what(char open)
{
    return open == '(' ? "parenthesis" : open == '[' ? "bracket" : "train block";
}

static const char *symbol_text(Parser *p, yysymbol_kind_t s)
{
    switch (s) {
    case YYSYMBOL_YYEOF: return "end of input";
    case YYSYMBOL_NAME: return "a name";
    case YYSYMBOL_INT: return "an integer";
    case YYSYMBOL_FLOAT: return "a number";
    case YYSYMBOL_STRING: return "a string";
    default: return arena_printf(p->arena, "'%s'", yysymbol_name(s));
    }
}

/* "A", "A or B", "A, B or C" for the expected symbols. */
static const char *symbol_list(Parser *p, const yysymbol_kind_t *exp, int n)
{
    if (n == 0)
        return "nothing more";
    const char *s = symbol_text(p, exp[0]);
    for (int i = 1; i < n; i++)
        s = arena_printf(p->arena, "%s%s%s", s, i == n - 1 ? " or " : ", ", symbol_text(p, exp[i]));
    return s;
}

/* Wording for what the parser wanted, most specific first. */
static const char *describe_expected(Parser *p, const yysymbol_kind_t *exp, int n)
{
    int prev = p->prev.kind;
    if (has(exp, n, YYSYMBOL_PARAM))
        return "a declaration (" DECLARATION_WORDS ")";
    if (has(exp, n, YYSYMBOL_FLOAT))
        return "expression";
    if (has(exp, n, YYSYMBOL_INT))
        return prev == TK_LBRACK || prev == TK_COMMA ? "an integer dimension" : "an integer";
    if (has(exp, n, YYSYMBOL_COLON))
        return "':' after node name";
    if (has(exp, n, YYSYMBOL_TILDE))
        return "'~' and a distribution after the shape";
    if (has(exp, n, YYSYMBOL_STRING))
        return prev == TK_GRAD ? "a string naming the gradient symbol, as in \"softsign_grad\""
                               : "a string naming the function, as in \"libfoo.so:softsign\"";
    if (has(exp, n, YYSYMBOL_NAME)) {
        const Bracket *b = innermost_open(p);
        if (b && b->ch == '{')
            return "a train key (such as steps) or '}'";
        if (prev == TK_LBRACK)
            return "an index variable, as in h[t in 0..T]";
        if (prev == TK_LPAREN || prev == TK_COMMA)
            return "a parameter name";
        if (prev == TK_MODEL)
            return "a model name after 'model'";
        return arena_printf(p->arena, "a name after %s", tok_text(p, p->prev.span));
    }
    if (has(exp, n, YYSYMBOL_EQ)) {
        const Bracket *b = innermost_open(p);
        if (b && b->ch == '{')
            return arena_printf(p->arena, "'=' after train key %s", tok_text(p, p->prev.span));
        if (prev == TK_RBRACK)
            return "'=' and an initial value after the shape";
        if (prev == TK_RPAREN)
            return "'=' after the extern parameter list";
        return arena_printf(p->arena, "'=' after %s", tok_text(p, p->prev.span));
    }
    if (has(exp, n, YYSYMBOL_LBRACK) && prev == TK_COLON)
        return "a shape such as [256, 784]";
    if (has(exp, n, YYSYMBOL_IN))
        return "'in', as in h[t in 0..T]";
    if (has(exp, n, YYSYMBOL_DOTDOT))
        return "'..' between the bounds, as in h[t in 0..T]";
    if (has(exp, n, YYSYMBOL_LBRACE))
        return "'{' after 'train'";
    if (has(exp, n, YYSYMBOL_LPAREN))
        return "'(' and a parameter list after the extern name";
    if (has(exp, n, YYSYMBOL_YYEOF))
        return n == 1 ? "end of input" : "an operator or end of input";
    return symbol_list(p, exp, n);
}

/* Tokens that start the item the parser wanted; when one is expected, the
 * missing item is a better message than the unclosed bracket. */
static bool wants_item(const yysymbol_kind_t *exp, int n)
{
    return has(exp, n, YYSYMBOL_PARAM) || has(exp, n, YYSYMBOL_FLOAT) || has(exp, n, YYSYMBOL_INT) ||
           has(exp, n, YYSYMBOL_NAME) || has(exp, n, YYSYMBOL_STRING);
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, Parser *p)
{
    (void)scanner;
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    if (n < 0)
        n = 0;
    bool at_eof = yypcontext_token(ctx) == YYSYMBOL_YYEOF;
    Span at = *yypcontext_location(ctx);
    const char *found = at_eof ? "end of file" : tok_text(p, at);
    if (at_eof)   /* point just past the last token, not at a blank line */
        at.start = at.end = p->prev.span.end;
    const Bracket *open = innermost_open(p);
    int line, col;
    if (open && has(exp, n, closer_symbol(open->ch)) && (at_eof || !wants_item(exp, n))) {
        diag_line_col(p->diag, open->span.file, open->span.start, &line, &col);
        if (at_eof)
            diag_error(p->diag, open->span, "unterminated %s: expected '%c' to close '%c' at %d:%d, found end of file",
                       bracket_what(open->ch), closer_of(open->ch), open->ch, line, col);
        else
            diag_error(p->diag, at, "expected '%c' to close '%c' at %d:%d, found %s", closer_of(open->ch), open->ch,
                       line, col, found);
        return 0;
    }
    diag_error(p->diag, at, "expected %s, found %s", describe_expected(p, exp, n), found);
    if (at_eof && open)
        diag_note(p->diag, open->span, "'%c' opened here is never closed", open->ch);
    if (p->cur.kind == TK_TILDE)
        diag_note(p->diag, at, "only 'latent' and 'observed' nodes take a distribution");
    return 0;
}

/* ---- entry point ---- */

/* Length of the well-formed UTF-8 character at t[i] (1 to 4), or 0 when the
 * bytes there are not UTF-8 (overlongs and surrogates included). */
static size_t utf8_length(const unsigned char *t, size_t i, size_t len)
{
    unsigned c = t[i], lo = 0x80, hi = 0xBF;
    size_t k;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (i + k > len || t[i + 1] < lo || t[i + 1] > hi)
        return 0;
    for (size_t j = 2; j < k; j++)
        if ((t[i + j] & 0xC0) != 0x80)
            return 0;
    return k;
}

/* Offset of the first byte that makes `t` binary: a NUL anywhere, or
 * malformed UTF-8 in the first 4 KiB; -1 when the text looks fine. */
static long binary_offset(const unsigned char *t, size_t len)
{
    size_t i = 0;
    while (i < len && i < 4096) {
        size_t k = t[i] ? utf8_length(t, i, len) : 0;
        if (!k)
            return (long)i;
        i += k;
    }
    const unsigned char *nul = i < len ? memchr(t + i, 0, len - i) : NULL;
    return nul ? (long)(nul - t) : -1;
}

bool parse_source(Diag *d, Arena *arena, int file_id, ParseMode mode, ParseResult *out)
{
    memset(out, 0, sizeof *out);
    if (file_id < 0 || file_id >= d->n_files)
        fep_die("parse_source: no file %d", file_id);
    const SourceFile *f = &d->files[file_id];
    int errors_before = d->n_errors;
    if (f->len > (1u << 30)) {
        diag_error_plain(d, f->name, "file too large (limit 1 GiB)");
        return false;
    }
    long bad = binary_offset((const unsigned char *)f->text, f->len);
    if (bad >= 0) {
        diag_error_plain(d, f->name, "not a text file: binary data at byte %ld", bad);
        d->last_span = (Span){file_id, (unsigned)bad, (unsigned)bad + 1};
        return false;
    }
    Parser p = {.diag = d, .arena = arena, .file = file_id, .text = f->text, .len = (unsigned)f->len};
    p.start_token = mode == PARSE_EXPR ? TK_START_EXPR : mode == PARSE_DECLS ? TK_START_DECLS : TK_START_MODEL;
    bool ok = lex_parse(&p) && d->n_errors == errors_before;
    if (!ok && d->n_errors == errors_before)
        diag_error(d, p.cur.span, "syntax error");   /* never fail silently */
    if (ok && mode == PARSE_MODEL && !p.model->name && p.model->n_decls == 0) {
        diag_error(d, (Span){file_id, 0, 0}, "empty model file: expected 'model NAME' or a declaration");
        ok = false;
    }
    if (ok) {
        out->model = p.model;
        out->expr = p.expr;
    }
    return ok;
}
