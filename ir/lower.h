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

/* Closest name within edit distance 2 among `names`, or NULL. */
const char *lower_suggest(const char *name, const char *const *names, int n_names);

#endif
