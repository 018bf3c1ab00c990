/* simplify.c — exact rewrites that make executed phases cheaper.
 *
 * Requires: a derived Program (after pass_hoist).  The derivations pull
 * negations outwards so that equations print the way a researcher writes
 * them, −(Σ_b ε ⊗ x); executed that way, the whole product is negated in a
 * pass of its own (a 256 × 784 weight gradient from a 64 × 256 error).
 * Here −(A·B) becomes (−A)·B, negating the operand with fewer elements,
 * when that operand is at most half the product and the product has no
 * other use in the phase.  Negation is exact and rounding is symmetric, so
 * every bit of the result is unchanged. */
#include "passes.h"

#include <stdlib.h>

enum { TYPICAL_BATCH = 64 };   /* weighs batched operands when comparing sizes */

static int64_t weight(const Graph *g, NodeId id)
{
    return ir_numel(ir_node_shape(g, id)) * (g->nodes[id].batched ? TYPICAL_BATCH : 1);
}

typedef struct Rewriter {
    Graph *g;
    NodeId *memo;
    int *uses;            /* per node: users within the phase */
} Rewriter;

static NodeId negated_product(Rewriter *rw, NodeId neg)
{
    Graph *g = rw->g;
    NodeId mm = g->nodes[neg].in[0];
    if (g->nodes[mm].op != OP_MATMUL || rw->uses[mm] != 1)
        return neg;
    NodeId in[2] = {g->nodes[mm].in[0], g->nodes[mm].in[1]};
    int small = weight(g, in[0]) <= weight(g, in[1]) ? 0 : 1;
    if (2 * weight(g, in[small]) > weight(g, mm))
        return neg;
    in[small] = ir_neg(g, in[small]);
    Attr attr = g->attrs[g->nodes[mm].attr];
    Shape shape = *ir_node_shape(g, mm);
    bool batched = g->nodes[mm].batched;
    BuildError err;
    NodeId r = ir_build(g, OP_MATMUL, in, &attr, &shape, batched, &err);
    if (r == NO_NODE)
        fep_die("negated product: %s", err.message);
    return r;
}

static NodeId rewrite(Rewriter *rw, NodeId id)
{
    if (rw->memo[id] != NO_NODE)
        return rw->memo[id];
    Graph *g = rw->g;
    NodeId in[2] = {NO_NODE, NO_NODE};
    bool changed = false;
    for (int k = 0; k < g->nodes[id].n_in; k++) {
        in[k] = rewrite(rw, g->nodes[id].in[k]);
        changed |= in[k] != g->nodes[id].in[k];
    }
    NodeId result = id;
    const Node *n = &g->nodes[id];
    if (n->op == OP_NEG && !changed)
        result = negated_product(rw, id);
    else if (changed) {
        Attr attr = n->attr >= 0 ? g->attrs[n->attr] : (Attr){0};
        Shape shape = g->shapes[n->shape];
        BuildError err;
        result = ir_build(g, (Op)n->op, in, n->attr >= 0 ? &attr : NULL, &shape, n->batched, &err);
        if (result == NO_NODE)
            fep_die("simplify: %s", err.message);
    }
    rw->memo[id] = result;
    return result;
}

/* Users of each node among the distinct nodes phase `ph` evaluates (a
 * phase result counts as one more). */
static void count_uses(const Graph *g, const Phase *ph, int *uses, NodeId n_nodes)
{
    bool *seen = xcalloc((size_t)n_nodes + 1, 1);
    NodeId *stack = xmalloc(sizeof *stack * ((size_t)n_nodes + 1));
    int top = 0;
    for (int i = 0; i < ph->n_assigns; i++)
        if (uses[ph->assigns[i].src]++ == 0 && !seen[ph->assigns[i].src]) {
            seen[ph->assigns[i].src] = true;
            stack[top++] = ph->assigns[i].src;
        }
    while (top) {
        const Node *n = &g->nodes[stack[--top]];
        for (int k = 0; k < n->n_in; k++) {
            uses[n->in[k]]++;
            if (!seen[n->in[k]]) {
                seen[n->in[k]] = true;
                stack[top++] = n->in[k];
            }
        }
    }
    free(seen);
    free(stack);
}

void pass_simplify(Program *p)
{
    Graph *g = &p->model->g;
    for (int ph = 0; ph < N_PHASES; ph++) {
        Phase *phase = &p->phases[ph];
        if (!phase->n_assigns)
            continue;
        NodeId n = g->n_nodes;
        Rewriter rw = {g, xmalloc(sizeof(NodeId) * ((size_t)n + 1)), xcalloc((size_t)n + 1, sizeof(int))};
        for (NodeId id = 0; id < n; id++)
            rw.memo[id] = NO_NODE;
        count_uses(g, phase, rw.uses, n);
        for (int i = 0; i < phase->n_assigns; i++)
            phase->assigns[i].src = rewrite(&rw, phase->assigns[i].src);
        free(rw.memo);
        free(rw.uses);
    }
}
