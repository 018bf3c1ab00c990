/* graph.c — the hash-consed expression graph: node interning, shape
 * interning, and shape helpers.
 *
 * Invariant: (op, inputs, shape, batched, attr contents) identifies a node;
 * interning the same tuple twice returns the same id, which is what makes
 * CSE free and lets derivations rebuild expressions without duplication.
 * Spans are not part of a node's identity (the first span wins). */
#include "ir.h"

#include <string.h>

void ir_graph_init(Graph *g, Arena *arena)
{
    memset(g, 0, sizeof *g);
    g->arena = arena;
}

int64_t ir_numel(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

bool ir_shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

Shape ir_shape_make(int rank, const int32_t *dims)
{
    Shape s = {0};
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.dims[i] = dims[i];
    return s;
}

const char *ir_shape_str(const Shape *s, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < s->rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %d" : "%d", s->dims[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
    return buf;
}

int32_t ir_shape_id(Graph *g, const Shape *s)
{
    /* Few distinct shapes exist per model; a linear scan is fine. */
    for (int i = 0; i < g->n_shapes; i++)
        if (ir_shape_eq(&g->shapes[i], s))
            return i;
    g->shapes = arena_grow(g->arena, g->shapes, &g->cap_shapes, g->n_shapes, sizeof *g->shapes);
    Shape copy = {0};
    copy.rank = s->rank;
    memcpy(copy.dims, s->dims, sizeof(int32_t) * (size_t)s->rank);
    g->shapes[g->n_shapes] = copy;
    return g->n_shapes++;
}

static uint64_t node_key_hash(const Graph *g, Op op, int n_in, const NodeId *in, int32_t shape,
                              bool batched, const Attr *attr)
{
    uint64_t h = hash_mix((uint64_t)op, (uint64_t)shape * 2 + batched);
    for (int i = 0; i < n_in; i++)
        h = hash_mix(h, (uint64_t)(uint32_t)in[i]);
    if (attr)
        h = hash_mix(h, hash_bytes(attr, sizeof *attr, 0));
    return h;
}

static bool node_matches(const Graph *g, const Node *n, Op op, int n_in, const NodeId *in,
                         int32_t shape, bool batched, const Attr *attr)
{
    if (n->op != op || n->n_in != n_in || n->shape != shape || n->batched != batched)
        return false;
    for (int i = 0; i < n_in; i++)
        if (n->in[i] != in[i])
            return false;
    if ((n->attr >= 0) != (attr != NULL))
        return false;
    return !attr || memcmp(&g->attrs[n->attr], attr, sizeof *attr) == 0;
}

static void rehash(Graph *g)
{
    int n_slots = g->n_slots ? g->n_slots * 2 : 1024;
    int32_t *slots = arena_alloc(g->arena, sizeof(int32_t) * (size_t)n_slots);
    memset(slots, 0xff, sizeof(int32_t) * (size_t)n_slots);
    for (int id = 0; id < g->n_nodes; id++) {
        const Node *n = &g->nodes[id];
        uint64_t h = node_key_hash(g, n->op, n->n_in, n->in, n->shape, n->batched,
                                   n->attr >= 0 ? &g->attrs[n->attr] : NULL);
        int at = (int)(h & (uint64_t)(n_slots - 1));
        while (slots[at] >= 0)
            at = (at + 1) & (n_slots - 1);
        slots[at] = id;
    }
    g->node_slots = slots;
    g->n_slots = n_slots;
}

NodeId ir_intern(Graph *g, Op op, int n_in, const NodeId *in, int32_t shape, bool batched,
                 const Attr *attr, Span span)
{
    if (2 * (g->n_nodes + 1) > g->n_slots)
        rehash(g);
    uint64_t h = node_key_hash(g, op, n_in, in, shape, batched, attr);
    int at = (int)(h & (uint64_t)(g->n_slots - 1));
    while (g->node_slots[at] >= 0) {
        NodeId id = g->node_slots[at];
        if (node_matches(g, &g->nodes[id], op, n_in, in, shape, batched, attr))
            return id;
        at = (at + 1) & (g->n_slots - 1);
    }
    g->nodes = arena_grow(g->arena, g->nodes, &g->cap_nodes, g->n_nodes, sizeof *g->nodes);
    Node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->n_in = (uint8_t)n_in;
    n->batched = batched;
    n->shape = shape;
    n->in[0] = n->in[1] = NO_NODE;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    n->attr = -1;
    if (attr) {
        g->attrs = arena_grow(g->arena, g->attrs, &g->cap_attrs, g->n_attrs, sizeof *g->attrs);
        g->attrs[g->n_attrs] = *attr;
        n->attr = g->n_attrs++;
    }
    n->span = span;
    g->node_slots[at] = g->n_nodes;
    return g->n_nodes++;
}
