/* hoist.c — frozen expressions moved out of the relaxation.
 *
 * Requires: a derived Program.  Produces: PHASE_HOIST assignments
 * hoist.k ← e, one BUF_HOIST buffer each, and the other phases rewritten
 * to read hoist.k where they computed e.
 *
 * A buffer is frozen when nothing but PHASE_INIT writes it while a batch
 * relaxes and learns: params (unless the rule learns at every relaxation
 * step), constants, clamped data and fwd.* values; relaxed values (moved
 * by the integrator or the solve) and anything another phase writes never
 * are.  An expression is frozen when every leaf is.  One is hoisted when it
 * is frozen, batched, costs real work (it contains a product, a
 * transcendental function, a division or a softmax) and would otherwise be
 * evaluated more than once per relaxation: it occurs in a loop phase
 * (value_grad, solve_level), or in two phases or more.  Only the largest such expressions
 * are stored; their frozen parts are computed inside PHASE_HOIST.  Under
 * strict pc this takes W x + b of a clamped input out of every relaxation
 * step; under fpa the activations of the frozen forward values, which the
 * solve, the errors, the energy and the gradients all read.
 *
 * The runtime runs PHASE_HOIST before any phase that reads hoist.* when a
 * leaf may have changed since its last run (session.c), so each phase sees
 * exactly the values it would have computed itself, in every engine. */
#include "passes.h"

#include <stdlib.h>

/* Ops whose results are worth storing rather than recomputing. */
static bool costly(Op op)
{
    switch (op) {
    case OP_LOAD: case OP_FILL: case OP_ADD: case OP_SUB: case OP_MUL: case OP_NEG: case OP_RELU: case OP_SQUARE:
    case OP_ABS: case OP_STEP: case OP_SIGN: case OP_REDUCE_TO: case OP_BROADCAST: case OP_TRANSPOSE:
    case OP_RESHAPE: case OP_CONCAT: case OP_SLICE: case OP_UNSLICE:
        return false;
    default:
        return true;
    }
}

bool pass_hoist_leaf_kind(BufKind k) { return k == BUF_PARAM || k == BUF_CONST || k == BUF_VALUE || k == BUF_FORWARD; }

static bool *frozen_buffers(const Program *p)
{
    const Model *m = p->model;
    bool *written_later = xcalloc((size_t)m->n_buffers + 1, 1), *frozen = xcalloc((size_t)m->n_buffers + 1, 1);
    for (int ph = 0; ph < N_PHASES; ph++)
        for (int i = 0; ph != PHASE_INIT && i < p->phases[ph].n_assigns; i++)
            written_later[p->phases[ph].assigns[i].dst] = true;
    for (int i = 0; i < p->n_relaxed; i++)
        written_later[p->relaxed[i].value_buf] = true;
    for (int b = 0; b < m->n_buffers; b++) {
        const Buffer *buf = &m->buffers[b];
        bool live_param = buf->kind == BUF_PARAM && p->learn_each_step;
        bool free_value = buf->kind == BUF_VALUE && !(buf->tensor >= 0 && p->clamped[buf->tensor]);
        frozen[b] = !written_later[b] && pass_hoist_leaf_kind(buf->kind) && !live_param && !free_value;
    }
    free(written_later);
    return frozen;
}

typedef struct Hoister {
    Graph *g;
    NodeId n;             /* nodes that existed before hoisting */
    bool *frozen, *worth; /* per node */
    int *phases;          /* per node: in how many phases it occurs (value_grad counts twice) */
    bool *chosen;         /* per node: stored in a hoist.* buffer */
    NodeId *nodes;        /* room for one phase's nodes */
} Hoister;

/* Calls visit(h, node, ph) once for every node phase `ph` evaluates. */
static void walk(Hoister *h, const Phase *phase, int ph, void (*visit)(Hoister *, NodeId, int))
{
    int n = ir_phase_nodes(h->g, phase, h->nodes);
    for (int i = 0; i < n; i++)
        visit(h, h->nodes[i], ph);
}

/* The loop phases run many times per relaxation: one occurrence is enough. */
static void count(Hoister *h, NodeId id, int ph)
{
    h->phases[id] += ph == PHASE_VALUE_GRAD || ph == PHASE_SOLVE_LEVEL ? 2 : 1;
}

static bool candidate(const Hoister *h, NodeId id)
{
    const Node *node = &h->g->nodes[id];
    return h->frozen[id] && h->worth[id] && node->batched && node->op != OP_LOAD && h->phases[id] >= 2;
}

/* A candidate read by a non-candidate is stored. */
static void mark_frontier(Hoister *h, NodeId id, int ph)
{
    (void)ph;
    const Node *node = &h->g->nodes[id];
    if (candidate(h, id))
        return;
    for (int k = 0; k < node->n_in; k++)
        if (candidate(h, node->in[k]))
            h->chosen[node->in[k]] = true;
}

void pass_hoist(Program *p)
{
    Model *m = p->model;
    Graph *g = &m->g;
    bool *frozen_buf = frozen_buffers(p);
    Hoister h = {g, g->n_nodes};
    h.frozen = xcalloc((size_t)h.n + 1, 1);
    h.worth = xcalloc((size_t)h.n + 1, 1);
    h.phases = xcalloc((size_t)h.n + 1, sizeof *h.phases);
    h.nodes = xmalloc(sizeof *h.nodes * ((size_t)h.n + 1));
    h.chosen = xcalloc((size_t)h.n + 1, 1);
    for (NodeId id = 0; id < h.n; id++) {   /* inputs precede their users */
        const Node *node = &g->nodes[id];
        h.frozen[id] = node->op == OP_LOAD ? frozen_buf[g->attrs[node->attr].ints[0]] : true;
        h.worth[id] = costly((Op)node->op);
        for (int k = 0; k < node->n_in; k++) {
            h.frozen[id] &= h.frozen[node->in[k]];
            h.worth[id] |= h.worth[node->in[k]];
        }
    }
    for (int ph = 0; ph < N_PHASES; ph++)
        if (ph != PHASE_INIT && ph != PHASE_HOIST)
            walk(&h, &p->phases[ph], ph, count);
    for (int ph = 0; ph < N_PHASES; ph++) {
        const Phase *phase = &p->phases[ph];
        if (ph == PHASE_INIT || ph == PHASE_HOIST)
            continue;
        walk(&h, phase, ph, mark_frontier);
        for (int i = 0; i < phase->n_assigns; i++)
            if (candidate(&h, phase->assigns[i].src))
                h.chosen[phase->assigns[i].src] = true;
    }
    NodeId *by_node = xmalloc(sizeof *by_node * ((size_t)h.n + 1));
    int n_hoisted = 0;
    for (NodeId id = 0; id < h.n; id++) {
        by_node[id] = NO_NODE;
        if (!h.chosen[id])
            continue;
        int k = 0;
        for (int b = 0; b < m->n_buffers; b++)
            k += m->buffers[b].kind == BUF_HOIST;
        int buf = ir_model_buffer(m, BUF_HOIST, arena_printf(m->arena, "hoist.%d", k), g->nodes[id].shape, true, -1);
        ir_assign(p, PHASE_HOIST, buf, id);
        by_node[id] = ir_load(g, buf, g->nodes[id].shape, true);
        n_hoisted++;
    }
    for (int ph = 0; n_hoisted && ph < N_PHASES; ph++) {
        Phase *phase = &p->phases[ph];
        for (int i = 0; ph != PHASE_INIT && ph != PHASE_HOIST && i < phase->n_assigns; i++)
            phase->assigns[i].src = ir_replace_nodes(g, phase->assigns[i].src, by_node, h.n);
    }
    free(by_node);
    free(h.chosen);
    free(h.frozen);
    free(h.worth);
    free(h.phases);
    free(h.nodes);
    free(frozen_buf);
}
