/* model.c — the Model container: tensors, the buffer registry, and
 * whole-expression utilities (dependency tests, substitution) that the
 * checker and the derivation passes share.
 *
 * Buffers are registered by name and created at most once, so every
 * program derived from one model shares a single buffer table — the
 * runtime sizes a session from it. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

Model *ir_model_new(Arena *arena)
{
    Model *m = arena_alloc(arena, sizeof *m);
    m->arena = arena;
    ir_graph_init(&m->g, arena);
    ir_default_train(&m->train);
    return m;
}

void ir_default_train(TrainConfig *t)
{
    memset(t, 0, sizeof *t);
    t->rule.kind = RULE_PC;
    t->steps = 20;
    t->step_size = 0.1;
    t->integrator = INTEGRATOR_EULER;
    t->optimizer = OPT_ADAM;
    t->lr = 0.001;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->batch = 64;
    t->epochs = 1;
    t->seed = 1;
}

int ir_model_find_buffer(const Model *m, const char *name)
{
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0)
            return i;
    return -1;
}

int ir_model_buffer(Model *m, BufKind kind, const char *name, int32_t shape, bool batched, int tensor)
{
    int found = ir_model_find_buffer(m, name);
    if (found >= 0)
        return found;
    m->buffers = arena_grow(m->arena, m->buffers, &m->cap_buffers, m->n_buffers, sizeof *m->buffers);
    Buffer *b = &m->buffers[m->n_buffers];
    b->name = arena_strdup(m->arena, name);
    b->kind = kind;
    b->shape = shape;
    b->batched = batched;
    b->tensor = tensor;
    return m->n_buffers++;
}

int ir_model_find_tensor(const Model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return i;
    return -1;
}

bool ir_is_value_role(Role r) { return r == ROLE_INPUT || r == ROLE_LATENT || r == ROLE_OBSERVED; }

bool ir_depends_on(const Model *m, NodeId root, bool params, bool values)
{
    const Graph *g = &m->g;
    bool *seen = xcalloc((size_t)root + 1, 1);
    NodeId *stack = xmalloc(sizeof *stack * ((size_t)root + 1));
    int top = 0;
    bool found = false;
    stack[top++] = root;
    seen[root] = true;
    while (top && !found) {
        const Node *n = &g->nodes[stack[--top]];
        if (n->op == OP_LOAD) {
            const Buffer *b = &m->buffers[g->attrs[n->attr].ints[0]];
            found = (params && b->kind == BUF_PARAM) ||
                    (values && (b->kind == BUF_VALUE || b->kind == BUF_FORWARD || b->kind == BUF_PREV) &&
                     m->tensors[b->tensor].role != ROLE_INPUT);
        }
        for (int i = 0; i < n->n_in; i++)
            if (!seen[n->in[i]]) {
                seen[n->in[i]] = true;
                stack[top++] = n->in[i];
            }
    }
    free(seen);
    free(stack);
    return found;
}

NodeId ir_rewrite(Graph *g, NodeId id, NodeId *memo, IrRewriteStep *step, void *ctx)
{
    if (memo[id] != NO_NODE)
        return memo[id];
    NodeId result = id, in[2] = {NO_NODE, NO_NODE};
    bool changed = false;
    for (int i = 0; i < g->nodes[id].n_in; i++) {
        in[i] = ir_rewrite(g, g->nodes[id].in[i], memo, step, ctx);
        changed |= in[i] != g->nodes[id].in[i];
    }
    if (changed) {
        const Node *n = &g->nodes[id];
        Attr attr = n->attr >= 0 ? g->attrs[n->attr] : (Attr){0};
        Shape shape = g->shapes[n->shape];
        BuildError err;
        Span saved = g->cur_span;
        g->cur_span = n->span;
        result = ir_build(g, (Op)n->op, in, n->attr >= 0 ? &attr : NULL, &shape, n->batched, &err);
        g->cur_span = saved;
        if (result == NO_NODE)
            fep_die("rewrite changed a shape: %s", err.message);
    }
    if (step)
        result = step(g, result, id, ctx);
    memo[id] = result;
    return result;
}

typedef struct LoadMap {
    const NodeId *map;
    int n_buffers;
} LoadMap;

static NodeId substitute_load(Graph *g, NodeId id, NodeId original, void *ctx)
{
    const LoadMap *lm = ctx;
    const Node *n = &g->nodes[id];
    if (n->op != OP_LOAD)
        return id;
    int buf = g->attrs[n->attr].ints[0];
    return buf < lm->n_buffers && lm->map[buf] != NO_NODE ? lm->map[buf] : id;
}

/* A memo for rewriting `root` with the nodes of `by_node` (n_map long, or
 * none) replaced outright. */
static NodeId *new_memo(NodeId root, const NodeId *by_node, NodeId n_map)
{
    NodeId *memo = xmalloc(sizeof *memo * ((size_t)root + 1));
    for (NodeId i = 0; i <= root; i++)
        memo[i] = i < n_map ? by_node[i] : NO_NODE;
    return memo;
}

NodeId ir_substitute(Graph *g, NodeId root, const NodeId *map, int n_buffers)
{
    NodeId *memo = new_memo(root, NULL, 0);
    LoadMap lm = {map, n_buffers};
    NodeId r = ir_rewrite(g, root, memo, substitute_load, &lm);
    free(memo);
    return r;
}

NodeId ir_replace_nodes(Graph *g, NodeId root, const NodeId *by_node, NodeId n_map)
{
    NodeId *memo = new_memo(root, by_node, n_map);
    NodeId r = ir_rewrite(g, root, memo, NULL, NULL);
    free(memo);
    return r;
}

int ir_phase_nodes(const Graph *g, const Phase *ph, NodeId *out)
{
    bool *seen = xcalloc((size_t)g->n_nodes + 1, 1);
    int n = 0;
    for (int i = 0; i < ph->n_assigns; i++)
        if (!seen[ph->assigns[i].src]) {
            seen[ph->assigns[i].src] = true;
            out[n++] = ph->assigns[i].src;
        }
    for (int next = 0; next < n; next++) {   /* out doubles as the work list */
        const Node *node = &g->nodes[out[next]];
        for (int k = 0; k < node->n_in; k++)
            if (!seen[node->in[k]]) {
                seen[node->in[k]] = true;
                out[n++] = node->in[k];
            }
    }
    free(seen);
    return n;
}

void ir_assign(Program *p, PhaseId phase, int dst, NodeId src)
{
    Phase *ph = &p->phases[phase];
    ph->assigns = arena_grow(p->model->arena, ph->assigns, &ph->cap_assigns, ph->n_assigns, sizeof *ph->assigns);
    ph->assigns[ph->n_assigns++] = (Assign){dst, src};
}

const char *ir_phase_name(PhaseId phase)
{
    static const char *names[N_PHASES] = {"init", "value_grad", "readout", "errors", "energy", "param_grad",
                                          "advance", "solve", "hoist", "solve_level", "agent_reset", "infer",
                                          "plan", "predict", "learn"};
    return phase >= 0 && phase < N_PHASES ? names[phase] : "?";
}

void ir_phase_symbol(char *out, size_t len, const char *prefix, PhaseId phase)
{
    snprintf(out, len, "%s_%s", prefix, ir_phase_name(phase));
}

const char *ir_role_name(Role r)
{
    static const char *names[] = {"param", "const", "input", "latent", "observed"};
    return names[r];
}

const char *ir_dist_name(DistKind d)
{
    static const char *names[] = {"none", "normal", "categorical", "bernoulli"};
    return names[d];
}

const char *ir_rule_name(RuleKind r)
{
    static const char *names[] = {"pc", "fpa", "ipc", "bp", "ar"};
    return names[r];
}

int ir_value_parents(const Model *m, NodeId root, int *out, int max)
{
    if (root == NO_NODE)
        return 0;
    const Graph *g = &m->g;
    bool *seen = xcalloc((size_t)root + 1, 1);
    NodeId *stack = xmalloc(sizeof *stack * ((size_t)root + 1));
    int top = 0, n = 0;
    stack[top++] = root;
    seen[root] = true;
    while (top) {
        const Node *node = &g->nodes[stack[--top]];
        if (node->op == OP_LOAD) {
            const Buffer *b = &m->buffers[g->attrs[node->attr].ints[0]];
            if (b->kind == BUF_VALUE && n < max)
                out[n++] = b->tensor;
        }
        for (int i = 0; i < node->n_in; i++)
            if (!seen[node->in[i]]) {
                seen[node->in[i]] = true;
                stack[top++] = node->in[i];
            }
    }
    free(seen);
    free(stack);
    return n;
}
