/* lower.h — private interface between the lowering files (lower.c,
 * lower_expr.c, lower_config.c).  Nothing outside ir/lower*.c includes it.
 *
 * Lowering walks the AST once: declarations become Tensors and Buffers,
 * expressions become graph nodes, the train block becomes a TrainConfig.
 * Every user error is reported through Diag at the span that caused it. */
#ifndef FEP_LOWER_H
#define FEP_LOWER_H

#include "ir.h"

/* A `let` binding, lowered lazily on first use (so order does not matter)
 * with a visiting mark to report self-reference as a cycle. */
typedef struct LetBinding {
    const AstDecl *decl;
    NodeId value;
    bool visiting;
} LetBinding;

/* An unrolled family `h[t in lo..hi]`: element t is tensor first + t - lo. */
typedef struct Family {
    const char *name;
    long lo, hi;
    int first_tensor;
} Family;

/* What lowering keeps with the model so later expressions can see lets
 * and families (ir_lower_expr). */
typedef struct LowerScope {
    LetBinding *lets;
    int n_lets;
    Family *families;
    int n_families;
    int n_literals;
} LowerScope;

typedef struct Lowerer {
    Diag *diag;
    Model *model;
    const AstModel *ast;
    LetBinding *lets;
    int n_lets;
    Family *families;
    int n_families;
    /* The family variable in scope while lowering one family element. */
    const char *loop_var;
    long loop_value;
    int n_literals;       /* anonymous constants made from inline matrix literals */
} Lowerer;

/* lower_expr.c */
NodeId lower_expr(Lowerer *lw, const AstExpr *e);
/* Integer value of a constant index expression (the family variable
 * allowed); false after a diagnostic. */
bool lower_const_int(Lowerer *lw, const AstExpr *e, long *out);

/* lower_config.c */
/* Reads an INIT expression for a tensor of `shape`; false after a diagnostic. */
bool lower_init(Lowerer *lw, const AstExpr *e, const Shape *shape, Init *out);
/* Flattens a (nested) list literal into values and its shape. */
bool lower_literal(Lowerer *lw, const AstExpr *e, Shape *shape, double **values, int64_t *n);
void lower_train_block(Lowerer *lw, const AstDecl *d);
/* A block key's value: a number, an integer in [lo, hi], a positive number;
 * messages say "BLOCK key 'KEY' expects ...". */
bool lower_expect_number(Lowerer *lw, const AstExpr *v, const char *block, const char *key, double *out);
bool lower_expect_int(Lowerer *lw, const AstExpr *v, const char *block, const char *key, long lo, long hi, long *out);
bool lower_expect_positive(Lowerer *lw, const AstExpr *v, const char *block, const char *key, double *out);
/* The keyword (or positional, in `allowed` order) arguments of an option
 * call such as adam(lr = 0.01): opts[i].value is NULL where absent. */
typedef struct LowerOption {
    const char *name;
    const AstExpr *value;
} LowerOption;
bool lower_read_options(Lowerer *lw, const AstExpr *call, const char *const *allowed, int n_allowed,
                        LowerOption *opts);
/* One of a closed set of names.  `what` names the kind ("rule") for the
 * unknown-name error; `where` names the slot ("train key 'rule'") for a
 * value that is not a name at all. */
bool lower_choice(Lowerer *lw, const AstExpr *v, const char *what, const char *where, const char *const *names,
                  int n, int *out);

/* lower_table.c */
/* Evaluates a table definition `const T[i, j] : SHAPE = EXPR` into a literal
 * INIT; false after a diagnostic. */
bool lower_table(Lowerer *lw, const AstDecl *d, const Shape *shape, Init *out);

/* lower_agent.c */
/* Lowers the hidden, outcome, control and agent declarations into
 * m->agent (after every tensor is defined); checks every table's shape and
 * normalisation and the size of the policy space.  False after a
 * diagnostic; true (and no agent) for a model without them. */
bool lower_agent(Lowerer *lw);


#endif
