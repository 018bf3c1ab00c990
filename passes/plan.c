/* plan.c — storage planning for compiled phases: decides which nodes are
 * materialized (and into which buffer) and which are fused, inline, into
 * the elementwise loop of their single user.
 *
 * Requires: a derived Program.  Produces: a Plan (passes.h) and BUF_TEMP
 * buffers in the model's registry.  Rules:
 *   - LOADs read their buffer; FILLs are constants; RESHAPE aliases its
 *     (materialized) input, since it changes no data;
 *   - an elementwise node or BROADCAST used once, by an elementwise node
 *     or BROADCAST, is fused into that user's loop;
 *   - everything else (matmuls, reductions, softmax, spatial ops, nodes
 *     with several users, phase results) is materialized;
 *   - a phase result is written straight into its destination unless the
 *     phase also reads that buffer (parallel assignment), the node already
 *     lives elsewhere, or it feeds two destinations: then it is copied. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

bool plan_inlinable_op(Op op) { return op_is_elementwise(op) || op == OP_BROADCAST || op == OP_FILL; }

typedef struct Planner {
    Model *m;
    Graph *g;
    PhaseId phase;
    bool *need;           /* node reachable from this phase's results */
    int *uses;
    bool *fused_user;     /* every user is an inline-capable op */
    bool *is_root;
    bool *reads_buf;      /* buffer LOADed somewhere in the phase */
} Planner;

static void mark(Planner *pl, const Phase *ph)
{
    const Graph *g = pl->g;
    NodeId top = -1;
    for (int i = 0; i < ph->n_assigns; i++) {
        top = ph->assigns[i].src > top ? ph->assigns[i].src : top;
        pl->need[ph->assigns[i].src] = true;
        pl->is_root[ph->assigns[i].src] = true;
    }
    for (NodeId id = top; id >= 0; id--) {
        if (!pl->need[id])
            continue;
        const Node *n = &g->nodes[id];
        if (n->op == OP_LOAD)
            pl->reads_buf[g->attrs[n->attr].ints[0]] = true;
        for (int k = 0; k < n->n_in; k++) {
            NodeId in = n->in[k];
            pl->need[in] = true;
            pl->uses[in]++;
            if (!plan_inlinable_op((Op)n->op) || n->op == OP_FILL)
                pl->fused_user[in] = false;
        }
    }
}

static bool fused(const Planner *pl, NodeId id)
{
    const Node *n = &pl->g->nodes[id];
    if (n->op == OP_FILL)   /* a constant is free to repeat in any loop, but a kernel needs storage */
        return pl->fused_user[id] && !pl->is_root[id];
    return plan_inlinable_op((Op)n->op) && n->op != OP_LOAD && pl->uses[id] == 1 && pl->fused_user[id] &&
           !pl->is_root[id];
}

static int temp_for(Planner *pl, NodeId id)
{
    const Node *n = &pl->g->nodes[id];
    char *name = arena_printf(pl->m->arena, "tmp.%d.%d", pl->phase, id);
    return ir_model_buffer(pl->m, BUF_TEMP, name, n->shape, n->batched, -1);
}

static void add_copy(Arena *a, PhasePlan *pp, int dst, NodeId src)
{
    pp->copies = arena_realloc(a, pp->copies, sizeof *pp->copies * (size_t)pp->n_copies,
                               sizeof *pp->copies * (size_t)(pp->n_copies + 1));
    pp->copies[pp->n_copies++] = (Assign){dst, src};
}

static void plan_phase(Model *m, const Program *p, PhaseId phase, PhasePlan *pp)
{
    const Phase *ph = &p->phases[phase];
    Graph *g = &m->g;
    int n = g->n_nodes;
    Planner pl = {.m = m, .g = g, .phase = phase};
    pl.need = xcalloc((size_t)n + 1, 1);
    pl.uses = xcalloc((size_t)n + 1, sizeof *pl.uses);
    pl.fused_user = xmalloc((size_t)n + 1);
    memset(pl.fused_user, 1, (size_t)n + 1);
    pl.is_root = xcalloc((size_t)n + 1, 1);
    pl.reads_buf = xcalloc((size_t)m->n_buffers + 1, 1);
    mark(&pl, ph);

    pp->n_nodes = n;
    pp->home = arena_alloc(m->arena, sizeof *pp->home * (size_t)(n + 1));
    pp->order = arena_alloc(m->arena, sizeof *pp->order * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        pp->home[i] = -1;
    /* Results first: which destination each one can be written into directly. */
    for (int i = 0; i < ph->n_assigns; i++) {
        const Assign *a = &ph->assigns[i];
        Op op = (Op)g->nodes[a->src].op;
        bool direct = !pl.reads_buf[a->dst] && pp->home[a->src] < 0 && op != OP_LOAD && op != OP_RESHAPE;
        if (direct)
            pp->home[a->src] = a->dst;
        else
            add_copy(m->arena, pp, a->dst, a->src);
    }
    for (NodeId id = 0; id < n; id++) {
        if (!pl.need[id])
            continue;
        const Node *node = &g->nodes[id];
        if (node->op == OP_LOAD) {
            pp->home[id] = g->attrs[node->attr].ints[0];
            continue;
        }
        if (node->op == OP_RESHAPE && pp->home[node->in[0]] >= 0 && pp->home[id] < 0) {
            pp->home[id] = pp->home[node->in[0]];   /* same data, new shape */
            continue;
        }
        if (fused(&pl, id) && pp->home[id] < 0)
            continue;
        if (pp->home[id] < 0)
            pp->home[id] = temp_for(&pl, id);
        pp->order[pp->n_order++] = id;
    }
    free(pl.need);
    free(pl.uses);
    free(pl.fused_user);
    free(pl.is_root);
    free(pl.reads_buf);
}

Plan *pass_plan(Model *m, Program *p)
{
    if (p->plan)
        return p->plan;
    Plan *plan = arena_alloc(m->arena, sizeof *plan);
    p->plan = plan;
    for (int ph = 0; ph < N_PHASES; ph++)
        plan_phase(m, p, (PhaseId)ph, &plan->phases[ph]);
    return plan;
}

uint64_t pass_buffer_signature(const Model *m)
{
    uint64_t h = hash_mix(0, (uint64_t)m->n_buffers);
    for (int b = 0; b < m->n_buffers; b++) {
        const Buffer *buf = &m->buffers[b];
        const Shape *s = ir_shape(&m->g, buf->shape);
        h = hash_mix(h, hash_bytes(buf->name, strlen(buf->name), 0));
        h = hash_mix(h, (uint64_t)buf->kind * 2 + buf->batched);
        h = hash_mix(h, hash_bytes(s->dims, sizeof(int32_t) * (size_t)s->rank, (uint64_t)s->rank));
    }
    return h;
}

/* Structural hash of a planned program: every node reachable from a phase,
 * renumbered by its rank among them (so unrelated nodes elsewhere in the
 * graph do not change it), its op, inputs, shape, batching and attribute;
 * the assignments; the storage plan; and the buffer table.  Equal hashes
 * mean equal generated code. */
uint64_t pass_program_hash(const Model *m, const Program *p)
{
    const Graph *g = &m->g;
    int n = g->n_nodes;
    int32_t *rank = xmalloc(sizeof *rank * (size_t)(n + 1));
    bool *need = xcalloc((size_t)n + 1, 1);
    for (int ph = 0; ph < N_PHASES; ph++)
        for (int i = 0; i < p->phases[ph].n_assigns; i++)
            need[p->phases[ph].assigns[i].src] = true;
    for (NodeId id = n - 1; id >= 0; id--)
        for (int k = 0; need[id] && k < g->nodes[id].n_in; k++)
            need[g->nodes[id].in[k]] = true;
    uint64_t h = hash_mix(pass_buffer_signature(m), 0x9e37);
    int32_t next = 0;
    for (NodeId id = 0; id < n; id++) {
        if (!need[id])
            continue;
        rank[id] = next++;
        const Node *node = &g->nodes[id];
        const Shape *s = &g->shapes[node->shape];
        h = hash_mix(h, (uint64_t)node->op << 8 | (uint64_t)node->batched << 4 | (uint64_t)node->n_in);
        for (int k = 0; k < node->n_in; k++)
            h = hash_mix(h, (uint64_t)rank[node->in[k]]);
        h = hash_mix(h, hash_bytes(s->dims, sizeof(int32_t) * (size_t)s->rank, (uint64_t)s->rank));
        if (node->attr >= 0)
            h = hash_mix(h, hash_bytes(&g->attrs[node->attr], sizeof(Attr), 0));
    }
    for (int ph = 0; ph < N_PHASES; ph++) {
        const Phase *phase = &p->phases[ph];
        const PhasePlan *pp = p->plan ? &p->plan->phases[ph] : NULL;
        h = hash_mix(h, (uint64_t)ph << 32 | (uint64_t)phase->n_assigns);
        for (int i = 0; i < phase->n_assigns; i++)
            h = hash_mix(h, (uint64_t)phase->assigns[i].dst << 32 | (uint64_t)rank[phase->assigns[i].src]);
        for (int i = 0; pp && i < pp->n_order; i++)
            h = hash_mix(h, (uint64_t)rank[pp->order[i]] << 32 | (uint64_t)(uint32_t)pp->home[pp->order[i]]);
        for (int i = 0; pp && i < pp->n_copies; i++)
            h = hash_mix(h, (uint64_t)pp->copies[i].dst << 32 | (uint64_t)rank[pp->copies[i].src]);
    }
    free(rank);
    free(need);
    return h;
}
