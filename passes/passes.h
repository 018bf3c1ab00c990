/* passes.h — the compiler passes between the model and the executors.
 *
 * Order (see pipeline.c): check → derive(rule) → [simplify, hoist, fuse,
 * plan arrive with the code generator].  Each pass states what it
 * requires and produces above its entry point. */
#ifndef FEP_PASSES_H
#define FEP_PASSES_H

#include "../ir/ir.h"

/* ---- check.c ---- */
/* Requires: a lowered Model.  Produces: m->topo (value nodes in dependency
 * order).  Reports cycles among value nodes; returns false on error. */
bool pass_check(Diag *d, Model *m);

/* ---- derive.c ---- */
/* Which value nodes hold data: inputs always; observed nodes when
 * `observed_clamped`.  Returns an arena array indexed by tensor. */
bool *pass_clamp_set(Model *m, bool observed_clamped);

/* Requires: pass_check.  Produces a Program whose phases implement `rule`
 * for the clamp set (see ir.h PhaseId).  Returns NULL after a diagnostic
 * when the rule or one of its options cannot apply to this model. */
Program *pass_derive(Diag *d, Model *m, RuleSpec rule, const bool *clamped);

/* The program for (rule, clamp set), derived on first request and then
 * shared: sessions, engines and loaded modules all see one Program per
 * mode, so buffer tables stay identical however they are reached. */
Program *pass_derive_cached(Diag *d, Model *m, RuleSpec rule, const bool *clamped);

/* ---- agent.c ---- */
/* Requires: a lowered Model.agent.  Produces the program of one
 * perception–action cycle (PHASE_AGENT_*), registering the agent's
 * buffers; NULL after a diagnostic (a habit of the wrong length, ...). */
Program *pass_derive_agent(Diag *d, Model *m);

/* Requires: pass_derive.  Moves frozen expressions that the phases would
 * evaluate more than once per relaxation into PHASE_HOIST (hoist.c). */
void pass_hoist(Program *p);
/* The kinds of buffer a hoisted expression may read (params, constants,
 * values, fwd.*): writing one makes hoisted values stale. */
bool pass_hoist_leaf_kind(BufKind k);

/* Requires: pass_derive.  Exact rewrites for execution: a negated product
 * becomes the product of its negated smaller operand (simplify.c). */
void pass_simplify(Program *p);

/* ---- plan.c ---- */
/* How one phase executes as compiled code: which nodes get storage (in
 * evaluation order) and where; every other node is computed inline inside
 * the loop of the elementwise node that uses it. */
typedef struct PhasePlan {
    NodeId *order;        /* materialized nodes, inputs before users */
    int n_order;
    int *home;            /* per node id: the buffer holding its value, or -1 (inline) */
    int n_nodes;
    Assign *copies;       /* after all nodes: dst ← buffer of src (hazards, aliases) */
    int n_copies;
} PhasePlan;

typedef struct Plan {
    PhasePlan phases[N_PHASES];
} Plan;

/* Requires: a derived Program.  Produces its Plan (made once, then cached
 * in p->plan); registers one BUF_TEMP buffer per materialized intermediate
 * (sessions allocate them like any buffer).  Never mutates the graph. */
Plan *pass_plan(Model *m, Program *p);
/* A hash of the buffer table (names, kinds, shapes): compiled code is only
 * valid against the table it was compiled for. */
uint64_t pass_buffer_signature(const Model *m);
/* A hash of a planned program's structure (requires pass_plan): two
 * programs with equal hashes compile to the same code. */
uint64_t pass_program_hash(const Model *m, const Program *p);
/* True when a node can be computed inside an elementwise loop. */
bool plan_inlinable_op(Op op);

/* ---- pipeline.c ---- */
typedef struct Compiler {
    Arena arena;          /* owns the AST, the model and every program */
    Diag diag;
    Model *model;
} Compiler;

/* Parses, lowers and checks `path` (or `text` when non-NULL, named `path`).
 * Returns false after diagnostics on c->diag. */
bool compile_model(Compiler *c, const char *path, const char *text, FILE *diag_out);
void compiler_free(Compiler *c);

#endif
