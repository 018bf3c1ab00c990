/* ir.h — every IR type of fepc, with its small accessors.
 *
 * Three layers share one expression Graph:
 *   Graph    hash-consed, pure expression nodes (Node) referred to by 32-bit
 *            ids; identical (op, inputs, shape, attr) means identical id, so
 *            common-subexpression elimination happens at construction.
 *   Model    the declared tensors of a .fep file (params, consts, inputs,
 *            latents, observed nodes), their distributions as expressions
 *            over LOADs of buffers, the extern table and the train block.
 *   Program  what a rule derives for one clamp set: named phases, each a
 *            parallel assignment of nodes to buffers.
 *
 * Invariants: every node's shape is checked by the op's shape rule when the
 * node is made; a node never refers to a node with a larger id; shapes are
 * per-sample (the implicit batch dimension is the `batched` flag).  All
 * memory belongs to the Model's arena. */
#ifndef FEP_IR_H
#define FEP_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../frontend/frontend.h"
#include "../util/util.h"

enum { FEP_MAX_RANK = 6 };

typedef int32_t NodeId;
enum { NO_NODE = -1 };

/* ---- the op table (ops.def) ---- */
typedef enum OpFlag { EW = 1, COMM = 2, LEAF = 4, REDUCE = 8 } OpFlag;

typedef enum Op {
#define OP(name, text, arity, flags, shape, e1, e2, vjp) OP_##name,
#include "ops.def"
#undef OP
    N_OPS
} Op;

/* MATMUL attribute flags (Attr.ints[0]). */
enum { MM_TRANS_A = 1, MM_TRANS_B = 2, MM_SUM_BATCH = 4 };
/* Spatial ops: CONV2D*: ints[0] = stride, ints[1] = padding, ints[2] =
 * MM_SUM_BATCH for a batch-summed kernel gradient; pools: ints[0] = k. */

typedef struct Shape {
    int32_t rank;
    int32_t dims[FEP_MAX_RANK];
} Shape;

/* Op-specific constants; which fields mean what is documented per op:
 *   LOAD: ints[0] = buffer id        FILL: num = the value
 *   MATMUL: ints[0] = MM_* flags     SLICE/UNSLICE: ints[0..1] = [start, end) on axis 0
 *   EXTERN: ints[0] = extern index */
typedef struct Attr {
    double num;
    int32_t ints[4];
} Attr;

typedef struct Node {
    uint8_t op;
    uint8_t n_in;
    uint8_t batched;      /* carries the implicit leading batch dimension */
    int32_t shape;        /* index into Graph.shapes */
    NodeId in[2];
    int32_t attr;         /* index into Graph.attrs, or -1 */
    Span span;            /* source text that produced it (0,0,0 if derived) */
} Node;

typedef struct Graph {
    Arena *arena;
    Node *nodes;
    int n_nodes, cap_nodes;
    Shape *shapes;
    int n_shapes, cap_shapes;
    Attr *attrs;
    int n_attrs, cap_attrs;
    int32_t *node_slots;  /* open-addressing hash of nodes, size n_slots */
    int n_slots;
    Span cur_span;        /* given to nodes made from now on (ir_set_span) */
} Graph;

/* ---- buffers: named storage the phases read (LOAD) and write (Assign) ---- */
typedef enum BufKind {
    BUF_PARAM,      /* learned θ, unbatched */
    BUF_CONST,      /* fixed tensor */
    BUF_VALUE,      /* value node (input, latent, observed), batched */
    BUF_PREV,       /* prev(x): x at the previous stream step */
    BUF_FORWARD,    /* feedforward value of a free node, frozen under fpa/bp */
    BUF_ERROR,      /* precision-weighted prediction error of an energy node */
    BUF_VGRAD,      /* ∂F/∂v of a relaxed node */
    BUF_GRAD,       /* ∂F/∂θ summed over the batch */
    BUF_ENERGY,     /* per-sample energy, shape [] batched */
    BUF_COEFF,      /* runtime coefficients of a closed-form solve, unbatched */
    BUF_TEMP,       /* a compiled phase's intermediate (passes/plan.c) */
    BUF_HOIST,      /* a frozen expression shared by phases, computed once per relaxation (passes/hoist.c) */
    BUF_LEVEL,      /* fpa's level-by-level solve: the messages k hops from the errors */
    BUF_AGENT,      /* a discrete agent's state and results: beliefs, observations, G, q(π), count deltas */
} BufKind;

typedef struct Buffer {
    const char *name;     /* "W1", "h1", "error.h1", "grad.W1", "fwd.h1", "prev.s" */
    BufKind kind;
    int32_t shape;        /* index into Graph.shapes */
    bool batched;
    int tensor;           /* model tensor it belongs to, or -1 (energy) */
} Buffer;

/* ---- the model ---- */
typedef enum Role { ROLE_PARAM, ROLE_CONST, ROLE_INPUT, ROLE_LATENT, ROLE_OBSERVED } Role;
typedef enum DistKind { DIST_NONE, DIST_NORMAL, DIST_CATEGORICAL, DIST_BERNOULLI } DistKind;
/* The relaxation that added a param (rule_params.c); NONE: declared in the model. */
typedef enum RuleParam { RULE_PARAM_NONE, RULE_PARAM_FEEDBACK, RULE_PARAM_ERROR_WEIGHTS } RuleParam;
typedef enum InitKind {
    INIT_ZEROS, INIT_VALUE, INIT_LITERAL, INIT_NORMAL, INIT_UNIFORM, INIT_XAVIER, INIT_KAIMING
} InitKind;

typedef struct Init {
    InitKind kind;
    double a, b;          /* VALUE: a; NORMAL: std a; UNIFORM: [a, b) */
    double *values;       /* LITERAL: row-major, numel entries */
    int64_t n_values;
} Init;

typedef struct Tensor {
    const char *name;     /* "W1", "h[3]" for element 3 of family h */
    Role role;
    int32_t shape;
    bool batched;         /* value nodes: true; params/consts: false */
    Span span;            /* the declaration's name */
    int buf;              /* its value buffer */
    int prev_buf;         /* BUF_PREV buffer when prev(name) is used, else -1 */
    Init init;            /* params, consts; latents: stream init (prev) */
    bool has_init;
    DistKind dist;
    NodeId mean;          /* NORMAL: mean; CATEGORICAL/BERNOULLI: logits */
    NodeId prec;          /* NORMAL: precision (NO_NODE = 1) */
    bool prec_log_term;   /* precision depends on params or value nodes */
    const char *family;   /* "h" for h[3]; NULL otherwise */
    int family_index;
    RuleParam rule_param; /* added by a relaxation (back.W, psi.v), or RULE_PARAM_NONE */
    bool counts;          /* a param of Dirichlet concentrations, learned by counting (agents) */
    int serves;           /* rule-made params: the tensor they serve (W, v) */
} Tensor;

typedef struct Extern {
    const char *name;
    const char *lib, *sym, *grad_sym;
    Span span;
    double (*fn)(double);       /* resolved by the executor that needs it */
    double (*grad_fn)(double);
    void *fn_f, *grad_fn_f;     /* the float(float) symbols as declared */
} Extern;

typedef enum RuleKind { RULE_PC, RULE_FPA, RULE_IPC, RULE_BP, RULE_AR } RuleKind;
typedef enum BackwardMode { BACKWARD_TRANSPOSE, BACKWARD_LEARNED, BACKWARD_RANDOM } BackwardMode;
typedef enum ErrorWeights { ERROR_WEIGHTS_IDENTITY, ERROR_WEIGHTS_LEARNED, ERROR_WEIGHTS_RANDOM } ErrorWeights;
typedef enum OptimizerKind { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimizerKind;
typedef enum IntegratorKind { INTEGRATOR_EULER, INTEGRATOR_HEUN } IntegratorKind;
typedef enum ScheduleKind { SCHEDULE_CONSTANT, SCHEDULE_COSINE } ScheduleKind;

typedef struct RuleSpec {
    RuleKind kind;
    BackwardMode backward;
    bool no_derivative;       /* derivative = none */
    ErrorWeights error_weights;
} RuleSpec;

typedef struct TrainConfig {
    RuleSpec rule;
    int steps;
    double step_size;
    IntegratorKind integrator;
    double momentum;          /* relaxation momentum, 0 = none */
    double tol;               /* early stop on energy change, 0 = off */
    OptimizerKind optimizer;
    double lr, beta1, beta2, eps, opt_momentum, weight_decay;
    bool nesterov;
    ScheduleKind schedule;    /* learning-rate multiplier over the run */
    int warmup;               /* linear warmup over this many optimizer steps */
    int batch;
    int epochs;
    uint64_t seed;
} TrainConfig;

/* ---- discrete active inference: a POMDP and its agent (lowered by ir/lower_agent.c) ----
 * Probability tables are model tensors: a const holds fixed probabilities,
 * a `counts` param holds Dirichlet concentrations (the table is their
 * normalised value, and learning adds to them).  Axis order follows the
 * thesis's notation: A[o, s1, s2, ..] = p(o | s1, s2, ..) over the factors
 * the outcome names; B[u, s', s] = p(s' | s, u) for a controlled factor,
 * B[s', s] for an uncontrolled one; D[s]; C[o] log-preferences; E[π]. */
enum { AGENT_MAX_FACTORS = 4, AGENT_MAX_CONTROLS = 4 };

typedef struct AgentFactor {
    const char *name;
    Span span;
    int size;
    int prior;            /* tensor D (or counts d) */
    int transition;       /* tensor B (or counts b), or -1: the factor stays put */
    int control;          /* index into Agent.controls, or -1 */
    int preference;       /* tensor of log-preferences over the factor's values (risk over states), or -1 */
    int process_prior, process_transition;   /* the generative process's tables (default: the model's) */
    int q_buf, prior_buf, qprev_buf;         /* BUF_AGENT, batched */
} AgentFactor;

typedef struct AgentOutcome {
    const char *name;
    Span span;
    int size;
    int likelihood;       /* tensor A (or counts a) */
    int factors[AGENT_MAX_FACTORS];          /* A's axes after the first */
    int n_factors;
    int preference;       /* tensor C (log-preferences), or -1: indifferent */
    int process_likelihood;
    int obs_buf;          /* BUF_AGENT, batched one-hot */
} AgentOutcome;

typedef struct AgentControl {
    const char *name;
    Span span;
    int size;
    int taken_buf;        /* BUF_AGENT, batched one-hot: the action taken */
    int marginal_buf;     /* BUF_AGENT, batched: P(u) of the first step */
} AgentControl;

/* The terms of G(π) (bits of AgentConfig.terms).  With preferences over
 * outcomes: utility = E ln p̃(o), risk = KL[Q(o) ‖ p̃(o)] = −utility − H[Q(o)],
 * so EFE = risk + ambiguity = −utility − info_gain (info_gain = H[Q(o)] −
 * ambiguity, entering negated).  With preferences over hidden states:
 * utility = E ln p̃(s), risk = KL[Q(s) ‖ p̃(s)].  novelty (Dirichlet
 * parameter information gain) enters negated. */
enum { TERM_RISK = 1, TERM_AMBIGUITY = 2, TERM_UTILITY = 4, TERM_INFO_GAIN = 8, TERM_NOVELTY = 16 };
typedef enum ActionRule { ACTION_SAMPLE, ACTION_ARGMAX } ActionRule;

typedef struct AgentConfig {
    int horizon;
    double gamma;         /* policy precision */
    unsigned terms;       /* TERM_* */
    bool joint_outcomes;  /* H[Q(o)] over the joint of all outcomes (pymdp), else summed per outcome */
    ActionRule action;
    double alpha;         /* ACTION_SAMPLE: u ~ softmax(alpha ln P(u)) */
    int iterations;       /* mean-field sweeps of state inference (several factors) */
    double lr;            /* Dirichlet learning rate (0 = no learning) */
    int habit;            /* tensor E over policies, or -1 */
    int steps;            /* steps per episode */
    uint64_t seed;
    Span terms_span, horizon_span, habit_span;
} AgentConfig;

typedef struct Agent {
    AgentFactor *factors;
    int n_factors;
    AgentOutcome *outcomes;
    int n_outcomes;
    AgentControl *controls;
    int n_controls;
    AgentConfig cfg;
    int64_t n_actions;    /* joint actions: the product of the control sizes */
    int64_t n_policies;   /* n_actions ^ horizon */
    int G_buf, q_pi_buf;  /* BUF_AGENT, batched [n_policies] */
    int term_buf[5];      /* per TERM_* bit: that term of G summed over the horizon (BUF_AGENT), -1 if off */
    int *delta_buf;       /* per tensor: its count increment buffer (counts only), else -1 */
} Agent;

typedef struct Model {
    Arena *arena;
    Graph g;
    const char *name;
    const char *path;
    Tensor *tensors;
    int n_tensors, cap_tensors;
    Buffer *buffers;
    int n_buffers, cap_buffers;
    int *topo;                /* value-node tensors in topological order */
    int n_topo;
    Extern *externs;
    int n_externs, cap_externs;
    TrainConfig train;
    bool has_prev;            /* a stream model */
    struct LowerScope *scope; /* lets and families, for lowering later expressions (lower.h) */
    struct Program **programs;/* derived programs, one per (rule, clamp set): pass_derive_cached */
    Agent *agent;             /* a discrete active-inference model (hidden/outcome/control); NULL for PC */
    int n_programs, cap_programs;
} Model;

/* ---- derived programs ---- */
typedef enum PhaseId {
    PHASE_INIT,         /* feedforward sweep: free nodes ← predictions; fwd.* */
    PHASE_VALUE_GRAD,   /* vgrad.v ← ∂F/∂v for every relaxed node */
    PHASE_READOUT,      /* free observed leaves ← their current prediction */
    PHASE_ERRORS,       /* error.v ← precision-weighted error of every energy node */
    PHASE_ENERGY,       /* energy ← per-sample F */
    PHASE_PARAM_GRAD,   /* grad.θ ← ∂F/∂θ summed over the batch */
    PHASE_ADVANCE,      /* prev.x ← x (end of a stream step) */
    PHASE_SOLVE,        /* fpa in closed form: every relaxed value after n steps at once */
    PHASE_HOIST,        /* hoist.* ← frozen expressions the other phases share (passes/hoist.c) */
    PHASE_SOLVE_LEVEL,  /* fpa level by level: lvl ← M lvl, v ← v + c·lvl (repeated depth − 1 times) */
    /* a discrete agent's cycle (passes/agent.c): reset, then per step infer → plan → (act) → predict → learn */
    PHASE_AGENT_RESET,  /* prior.f ← D_f: the start of an episode */
    PHASE_AGENT_INFER,  /* q.f ← posterior over factor f given the outcomes o.m and prior.f */
    PHASE_AGENT_PLAN,   /* G, its terms, q(π) and the action marginals p.c over every policy */
    PHASE_AGENT_PREDICT,/* prior.f ← B_f(u) q.f for the action u taken; qprev.f ← q.f */
    PHASE_AGENT_LEARN,  /* delta.* ← the batch-summed Dirichlet count increments of this step */
    N_PHASES
} PhaseId;

typedef struct Assign {
    int dst;              /* buffer id */
    NodeId src;
} Assign;

/* Parallel assignment: every src is evaluated against the state at phase
 * entry, then all dst are written. */
typedef struct Phase {
    Assign *assigns;
    int n_assigns, cap_assigns;
} Phase;

typedef struct Relaxed {
    int tensor;           /* relaxed value node */
    int value_buf, vgrad_buf;
} Relaxed;

typedef struct Program Program;
struct Program {
    Model *model;
    RuleSpec rule;
    bool *clamped;        /* per tensor: value supplied by data */
    Phase phases[N_PHASES];
    Relaxed *relaxed;
    int n_relaxed;
    bool relaxes;         /* false for bp: one sweep, no relaxation loop */
    bool learn_each_step; /* ipc: parameters step at every relaxation step */
    NodeId *error_nodes;  /* per tensor: its error expression (printers name it ε_v) */
    uint64_t uid;         /* unique in the process: caches of compiled code key on it */
    struct Plan *plan;    /* storage plan for compiled execution (pass_plan), once made */
    int solve_coeff_buf;  /* PHASE_SOLVE's coefficient buffer (c_k = P[Bin(n, η) ≥ k]), or -1 */
    int solve_depth;      /* number of coefficients (longest relaxed path) */
    bool solve_transient; /* ar: depth more coefficients follow, P[Bin(n, η) = k] for k = 0.. */
    bool solve_by_level;  /* fpa on deep graphs: PHASE_SOLVE then PHASE_SOLVE_LEVEL × (depth − 1), one
                             coefficient at a time in solve_coeff_buf */
};

/* ---- graph.c ---- */
void ir_graph_init(Graph *g, Arena *arena);
int32_t ir_shape_id(Graph *g, const Shape *s);
static inline const Shape *ir_shape(const Graph *g, int32_t id) { return &g->shapes[id]; }
static inline const Node *ir_node(const Graph *g, NodeId id) { return &g->nodes[id]; }
static inline const Shape *ir_node_shape(const Graph *g, NodeId id) { return &g->shapes[g->nodes[id].shape]; }
static inline const Attr *ir_node_attr(const Graph *g, NodeId id)
{
    return g->nodes[id].attr >= 0 ? &g->attrs[g->nodes[id].attr] : NULL;
}
int64_t ir_numel(const Shape *s);   /* product of dims; 1 for rank 0 */
bool ir_shape_eq(const Shape *a, const Shape *b);
Shape ir_shape_make(int rank, const int32_t *dims);
/* "[256, 784]" (with a trailing " per sample" never added); static buffer-free: writes into buf */
const char *ir_shape_str(const Shape *s, char *buf, size_t len);

/* Low-level constructor: finds or adds the node.  Callers normally use the
 * checked builders in build.c, which compute the shape with the op's rule. */
NodeId ir_intern(Graph *g, Op op, int n_in, const NodeId *in, int32_t shape, bool batched,
                 const Attr *attr, Span span);

/* ---- ops.c: the op table's data and scalar maths ---- */
typedef double (*ScalarFn1)(double);
typedef double (*ScalarFn2)(double, double);
typedef struct OpInfo {
    const char *name;     /* "add", "tanh" */
    int arity;
    unsigned flags;
    ScalarFn1 eval1;
    ScalarFn2 eval2;
} OpInfo;
extern const OpInfo op_info[N_OPS];
/* ψ(x), the DIGAMMA op's maths; compiled code calls it by this name. */
double fep_digamma(double x);
static inline bool op_is_elementwise(Op op) { return op_info[op].flags & EW; }
static inline bool op_is_leaf(Op op) { return op_info[op].flags & LEAF; }

/* ---- build.c: checked node builders (shape rules from the table) ---- */
/* Each returns NO_NODE after storing a message in *err when shapes do not
 * fit; the caller (lower.c) turns that into a diagnostic at its span. */
typedef struct BuildError {
    char message[256];
} BuildError;

/* A shape rule (the shape column of ops.def). */
typedef bool (*ShapeRule)(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given,
                          bool given_batched, Shape *out, bool *batched, BuildError *err);
void build_fail(BuildError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

NodeId ir_load(Graph *g, int buf, int32_t shape, bool batched);
NodeId ir_fill(Graph *g, double value, const Shape *shape, bool batched);
NodeId ir_scalar(Graph *g, double value);
NodeId ir_unary(Graph *g, Op op, NodeId x);
NodeId ir_binary(Graph *g, Op op, NodeId a, NodeId b, BuildError *err);
NodeId ir_matmul(Graph *g, NodeId a, NodeId b, int flags, BuildError *err);
NodeId ir_reduce_to(Graph *g, NodeId x, const Shape *shape, bool batched);
NodeId ir_broadcast(Graph *g, NodeId x, const Shape *shape, bool batched);
NodeId ir_softmax(Graph *g, NodeId x);
NodeId ir_logsumexp(Graph *g, NodeId x);
NodeId ir_transpose(Graph *g, NodeId x, BuildError *err);
NodeId ir_reshape(Graph *g, NodeId x, const Shape *shape, BuildError *err);
/* Generic checked constructor used by all builders: runs the op's shape
 * rule; `given`/`given_batched` feed the rules that take a caller shape. */
NodeId ir_build(Graph *g, Op op, const NodeId *in, const Attr *attr, const Shape *given,
                bool given_batched, BuildError *err);
NodeId ir_concat(Graph *g, NodeId a, NodeId b, BuildError *err);
NodeId ir_slice(Graph *g, NodeId x, int start, int end, BuildError *err);
NodeId ir_unslice(Graph *g, NodeId x, int start, int end, const Shape *full);
NodeId ir_extern(Graph *g, NodeId x, int extern_index);
/* Broadcast result shape of a and b, or false (message in err). */
bool ir_broadcast_shapes(const Shape *a, const Shape *b, Shape *out, BuildError *err);
/* Attaches a source span to nodes built after this call until reset with
 * an empty span; lower.c uses it so derived errors can point at source. */
void ir_set_span(Graph *g, Span span);

/* Convenience arithmetic for derivations (shapes known to fit). */
NodeId ir_add(Graph *g, NodeId a, NodeId b);
NodeId ir_sub(Graph *g, NodeId a, NodeId b);
NodeId ir_mul(Graph *g, NodeId a, NodeId b);
NodeId ir_div(Graph *g, NodeId a, NodeId b);
NodeId ir_neg(Graph *g, NodeId a);

/* ---- vjp.c ---- */
/* How a sweep departs from the exact chain rule (the rule relaxations of
 * SPEC §4).  NULL = exact. */
typedef struct VjpRules {
    bool no_derivative;   /* derivative = none: elementwise f' factors dropped */
    const int *feedback;  /* buffer → the buffer that replaces it in the message a matrix
                           * product sends to its other operand (backward = learned |
                           * random), or -1; NULL = none */
    int n_feedback;
} VjpRules;
/* Reverse-mode sweep over the DAG rooted at `root` with cotangent `seed`
 * (same shape/batching as root).  Cotangents reaching LOAD leaves are added
 * into leaf_ct[buffer] (NO_NODE = none yet); an unbatched leaf receives the
 * batch sum. */
void ir_vjp(Graph *g, NodeId root, NodeId seed, NodeId *leaf_ct, int n_buffers, const VjpRules *rules);
/* Cotangent of the op's inputs for one node: the vjp column of ops.def. */
typedef void (*VjpFn)(Graph *g, NodeId node, NodeId ct, NodeId in_ct[2], bool no_derivative);

/* ---- spatial.c: conv2d, maxpool, avgpool (shape rules, VJPs, kernels) ---- */
bool shape_conv2d(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given, bool given_batched,
                  Shape *out, bool *batched, BuildError *err);
bool shape_pool(const Graph *g, const NodeId *in, const Attr *attr, const Shape *given, bool given_batched,
                Shape *out, bool *batched, BuildError *err);
void vjp_conv2d(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_conv2d_back_input(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_conv2d_back_kernel(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_maxpool_gather(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_maxpool_scatter(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_avgpool(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
void vjp_avgpool_back(Graph *g, NodeId n, NodeId ct, NodeId d[2], bool nd);
NodeId ir_conv2d(Graph *g, NodeId x, NodeId k, int stride, int pad, BuildError *err);
NodeId ir_maxpool(Graph *g, NodeId x, int k, BuildError *err);
NodeId ir_avgpool(Graph *g, NodeId x, int k, BuildError *err);
/* Evaluates a spatial node: ins[i] are its inputs' values, out is zeroed. */
void ir_spatial_eval(const Graph *g, NodeId id, const double *const ins[2], double *out, int batch);

/* ---- model.c ---- */
Model *ir_model_new(Arena *arena);
int ir_model_buffer(Model *m, BufKind kind, const char *name, int32_t shape, bool batched, int tensor);
int ir_model_find_buffer(const Model *m, const char *name);
int ir_model_find_tensor(const Model *m, const char *name);
bool ir_is_value_role(Role r);
/* True when the expression reads a param or value-node buffer. */
bool ir_depends_on(const Model *m, NodeId root, bool params, bool values);
/* Value-node tensors whose current value `root` reads (each once; at most
 * `max`).  prev() reads are not parents: they are last step's values. */
int ir_value_parents(const Model *m, NodeId root, int *out, int max);
/* One step of ir_rewrite: `id` is `original` after its inputs were
 * rewritten (rebuilt when any changed); returns the node to use instead. */
typedef NodeId IrRewriteStep(Graph *g, NodeId id, NodeId original, void *ctx);
/* Rewrites `root` bottom-up, each node once: memo has an entry per node up
 * to root, NO_NODE where not visited yet (an entry set beforehand replaces
 * that node outright) and is kept for the next root of the same rewrite;
 * step may be NULL.  The one rewriting mechanism: the functions below and
 * passes/simplify.c use it. */
NodeId ir_rewrite(Graph *g, NodeId root, NodeId *memo, IrRewriteStep *step, void *ctx);
/* Rewrites `root`, replacing LOAD(buf) with map[buf] wherever map[buf] != NO_NODE. */
NodeId ir_substitute(Graph *g, NodeId root, const NodeId *map, int n_buffers);
/* Rewrites `root`, replacing node n with by_node[n] wherever n < n_map and
 * by_node[n] != NO_NODE. */
NodeId ir_replace_nodes(Graph *g, NodeId root, const NodeId *by_node, NodeId n_map);
/* The distinct nodes a phase evaluates (everything its results reach), each
 * once, in no particular order; out has room for g->n_nodes.  Returns how
 * many. */
int ir_phase_nodes(const Graph *g, const Phase *ph, NodeId *out);
/* Appends dst ← src to a phase of p (arena: the model's). */
void ir_assign(Program *p, PhaseId phase, int dst, NodeId src);
/* "init", "value_grad", ...: a phase's name in printouts and symbols. */
const char *ir_phase_name(PhaseId phase);
/* "<prefix>_<phase>": the symbol of a phase's compiled function, in JIT
 * code and AOT modules alike. */
void ir_phase_symbol(char *out, size_t len, const char *prefix, PhaseId phase);
const char *ir_role_name(Role r);
const char *ir_dist_name(DistKind d);
const char *ir_rule_name(RuleKind r);
void ir_default_train(TrainConfig *t);

/* ---- rule_params.c ---- */
/* Adds the parameters a rule's relaxations need, once each: back.W (the
 * feedback matrix that replaces W in the messages of every `W @ v` on a
 * value node) for backward = learned | random, psi.v (error weights,
 * ε = ψ v − mean, for every rank-1 normal value node that is not an input)
 * for error_weights = learned | random.  Both start as normal(0.05).
 * False after a diagnostic (error weights on a node that is not a vector). */
bool ir_add_rule_params(Diag *d, Model *m, RuleSpec rule);
/* Tensors the model declares: rule-made params follow them, so a clamp set
 * (which never clamps a param) needs only this many entries. */
int ir_declared_tensors(const Model *m);
/* The rule-made parameter of `kind` serving tensor t, or -1. */
int ir_rule_param(const Model *m, RuleParam kind, int t);
/* "W1" for a rule-made param's name ("back.W1", "psi.W1"), else NULL;
 * points into `name`. */
const char *ir_rule_param_served(const char *name);

/* ---- interp.c: the reference executor ---- */
/* Buffer storage an executor runs against: data[b] holds buffer b as
 * batch × numel (batched) or numel values of type double (f64) or float. */
typedef struct Storage {
    int batch;
    bool f64;
    void **data;
    int n_buffers;
    struct Shard *shard;  /* NULL, or which part of a batch spread over processes this is (runtime/dist.c) */
} Storage;

/* Evaluates one phase (parallel assignment) in double precision, rounding
 * every intermediate to float when the storage is f32.  Extern functions
 * are called through libffi.  Returns false with a message in err when an
 * extern cannot be called. */
bool ir_interp_phase(const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen);
/* Evaluates one expression against the storage into out (batch × numel or
 * numel doubles, caller-allocated); used by the REPL and tests. */
bool ir_interp_expr(const Model *m, NodeId root, Storage *st, double *out, char *err, size_t errlen);

/* ---- externs.c ---- */
/* dlopen()s every extern's library and finds its function and derivative.
 * Returns false with a message naming the library or symbol. */
bool ir_resolve_externs(Model *m, char *err, size_t errlen);

/* ---- print.c ---- */
void ir_print_node_expr(FILE *out, const Model *m, NodeId id);   /* readable math */
void ir_print_graph(FILE *out, const Model *m);                  /* --ir dump */
void ir_print_program(FILE *out, const Program *p);              /* --derived dump */
void ir_print_summary(FILE *out, const Model *m);                /* fepc check */
void ir_print_explain(FILE *out, const Program *p);              /* fepc explain */

/* ---- print_agent.c ---- */
void ir_print_agent_summary(FILE *out, const Model *m);          /* fepc check of an agent */
void ir_print_agent_explain(FILE *out, const Program *p);        /* fepc explain of an agent */

/* ---- lower*.c (AST → Model; the only files that know both) ---- */
/* Lowers one expression against a lowered model (its tensors, lets and
 * families): how the REPL evaluates `tanh(W1 @ x)`.  NO_NODE after a
 * diagnostic. */
NodeId ir_lower_expr(Diag *d, Model *m, const AstExpr *e);
/* Sets one agent key (agent block, `fepc act --key value`); false after a
 * diagnostic at the value's span. */
bool ir_apply_agent_setting(Diag *d, Model *m, const char *key, Span key_span, const AstExpr *value);
void ir_default_agent(AgentConfig *c);
/* Sets one train key from an expression (train block, `--key value`, REPL);
 * false after a diagnostic at the value's span. */
bool ir_apply_train_setting(Diag *d, Model *m, const char *key, Span key_span, const AstExpr *value);
/* Builds and checks the model.  Returns NULL after reporting diagnostics. */
Model *ir_lower(Diag *d, Arena *arena, const AstModel *ast, const char *path);

#endif
