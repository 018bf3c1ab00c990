/* derive.h — the rule derivation's shared state and helpers: derive.c
 * (the rules) and solve.c (fpa's and ar's closed forms) both build on them.
 * Internal to passes/. */
#ifndef FEP_DERIVE_H
#define FEP_DERIVE_H

#include "passes.h"

typedef struct Deriver {
    Diag *diag;
    Model *m;
    Graph *g;
    Program *p;
    bool frozen;          /* args read fwd.* (fpa, bp) */
    NodeId *frozen_map;   /* buffer → LOAD(fwd.v) for relaxed v */
    int *fwd_buf;         /* tensor → fwd buffer, or -1 */
    bool *relaxed;        /* tensor → relaxed by the integrator */
    bool *readout;        /* tensor → free observed leaf */
    bool *has_children;
    NodeId *error_node;   /* tensor → its precision-weighted error node */
    int *psi;             /* tensor → its error-weights param (psi.v) in this rule, or -1 */
    VjpRules value_rules; /* messages to value nodes: the rule's relaxations */
    VjpRules param_rules; /* parameter gradients: feedback kept, f' exact */
    int n_leaf;           /* buffers that expressions can read (maps are this long) */
} Deriver;

/* Seeds of one energy node at the given argument values. */
typedef struct Seeds {
    NodeId own;           /* ∂E/∂v */
    NodeId mean, prec;    /* ∂E/∂mean (or logits), ∂E/∂prec; NO_NODE = none */
    NodeId error;         /* −∂E/∂mean: the precision-weighted error */
    NodeId energy;        /* per-sample E, shape [] batched */
} Seeds;

NodeId dv_load_buf(Deriver *dv, int buf);
NodeId dv_value_of(Deriver *dv, int t);                  /* LOAD of tensor t's value */
const Shape *dv_tensor_shape(Deriver *dv, int t);
NodeId dv_arg_at(Deriver *dv, NodeId arg);              /* an argument as the rule reads it (frozen or live) */
Seeds dv_seeds_of(Deriver *dv, int t, NodeId v, NodeId mean, NodeId prec);
void dv_add_into(Graph *g, NodeId *slot, NodeId x);     /* *slot += x (NO_NODE is empty) */
NodeId *dv_new_leaf_map(Deriver *dv);                   /* n_leaf entries, all NO_NODE */

/* solve.c: whether fpa's or ar's relaxation has a closed form here, and
 * the phases that compute it. */
bool derive_solve_applies(const Deriver *dv);
void derive_solve(Deriver *dv);

#endif
