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

/* ir_rewrite step: −(A·B) → (−A)·B for a product the phase uses only
 * here (uses: per node that existed before the phase was rewritten). */
static NodeId negated_product(Graph *g, NodeId neg, NodeId original, void *uses_per_node)
{
    const int *uses = uses_per_node;
    if (neg != original || g->nodes[neg].op != OP_NEG)
        return neg;
    NodeId mm = g->nodes[neg].in[0];
    if (g->nodes[mm].op != OP_MATMUL || uses[mm] != 1)
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

/* Users of each node among the distinct nodes phase `ph` evaluates (a
 * phase result counts as one more). */
static void count_uses(const Graph *g, const Phase *ph, int *uses)
{
    NodeId *nodes = xmalloc(sizeof *nodes * ((size_t)g->n_nodes + 1));
    int n = ir_phase_nodes(g, ph, nodes);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[nodes[i]].n_in; k++)
            uses[g->nodes[nodes[i]].in[k]]++;
    for (int i = 0; i < ph->n_assigns; i++)
        uses[ph->assigns[i].src]++;
    free(nodes);
}

void pass_simplify(Program *p)
{
    Graph *g = &p->model->g;
    for (int ph = 0; ph < N_PHASES; ph++) {
        Phase *phase = &p->phases[ph];
        if (!phase->n_assigns)
            continue;
        NodeId n = g->n_nodes;
        NodeId *memo = xmalloc(sizeof *memo * ((size_t)n + 1));
        int *uses = xcalloc((size_t)n + 1, sizeof *uses);
        for (NodeId id = 0; id < n; id++)
            memo[id] = NO_NODE;
        count_uses(g, phase, uses);
        for (int i = 0; i < phase->n_assigns; i++)
            phase->assigns[i].src = ir_rewrite(g, phase->assigns[i].src, memo, negated_product, uses);
        free(memo);
        free(uses);
    }
}
