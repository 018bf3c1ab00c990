/* rule_params.c — the parameters a rule's relaxations add to a model
 * (SPEC §4, thesis §3.5 and §6.4.2).
 *
 *   backward = learned | random: every param W used as an operand of a
 *     matrix product whose other operand reads a value node gets back.W, of
 *     W's own shape; the messages the product sends to that operand use
 *     back.W where the exact chain rule uses W (ir_vjp's feedback map), so
 *     value nodes receive back.Wᵀ ε instead of Wᵀ ε.
 *   error_weights = learned | random: every rank-1 normal latent or
 *     observed node v gets psi.v : [n, n]; its error becomes ψ v − mean.
 *
 * Both kinds start as normal(0.05), independent of W (thesis §3.5.1).
 * They are ordinary params (saved, loaded, stepped by the optimizer when the
 * rule gives them a gradient) marked with the relaxation that made them.  Adding is idempotent: a
 * model keeps the params of every rule it has been set to, so sessions and
 * params files stay valid when the rule changes back. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

int ir_declared_tensors(const Model *m)
{
    int n = 0;
    while (n < m->n_tensors && m->tensors[n].rule_param == RULE_PARAM_NONE)
        n++;
    return n;
}

/* A rule-made param's name: prefix "." the served tensor's name. */
static const char *const prefixes[] = {[RULE_PARAM_FEEDBACK] = "back", [RULE_PARAM_ERROR_WEIGHTS] = "psi"};

int ir_rule_param(const Model *m, RuleParam kind, int t)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", prefixes[kind], m->tensors[t].name);
    int found = ir_model_find_tensor(m, name);
    return found >= 0 && m->tensors[found].rule_param == kind ? found : -1;
}

const char *ir_rule_param_served(const char *name)
{
    for (int k = RULE_PARAM_FEEDBACK; k <= RULE_PARAM_ERROR_WEIGHTS; k++) {
        size_t n = strlen(prefixes[k]);
        if (!strncmp(name, prefixes[k], n) && name[n] == '.' && name[n + 1])
            return name + n + 1;
    }
    return NULL;
}

static void add_param(Model *m, RuleParam kind, int serves, int32_t shape)
{
    if (ir_rule_param(m, kind, serves) >= 0)
        return;
    const char *name = arena_printf(m->arena, "%s.%s", prefixes[kind], m->tensors[serves].name);
    m->tensors = arena_grow(m->arena, m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors);
    int index = m->n_tensors++;
    Tensor *t = &m->tensors[index];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->role = ROLE_PARAM;
    t->shape = shape;
    t->span = m->tensors[serves].span;
    t->mean = t->prec = NO_NODE;
    t->prev_buf = -1;
    t->family_index = -1;
    t->init = (Init){.kind = INIT_NORMAL, .a = 0.05};
    t->has_init = true;
    t->rule_param = kind;
    t->serves = serves;
    t->buf = ir_model_buffer(m, BUF_PARAM, name, shape, false, index);
}

/* back.W for every declared param W that a matrix product in `root`
 * multiplies with an operand reading a value node.  Inputs have smaller
 * ids than their users, so one downward walk visits what root reaches. */
static void add_feedback(Model *m, NodeId root)
{
    if (root == NO_NODE)
        return;
    bool *reached = xcalloc((size_t)root + 1, 1);
    reached[root] = true;
    for (NodeId id = root; id >= 0; id--) {
        if (!reached[id])
            continue;
        const Node *n = ir_node(&m->g, id);
        for (int i = 0; i < n->n_in; i++)
            reached[n->in[i]] = true;
        if (n->op != OP_MATMUL)
            continue;
        for (int side = 0; side < 2; side++) {
            const Node *w = ir_node(&m->g, n->in[side]);
            if (w->op != OP_LOAD)
                continue;
            const Buffer *b = &m->buffers[m->g.attrs[w->attr].ints[0]];
            if (b->kind != BUF_PARAM || b->tensor < 0 || m->tensors[b->tensor].rule_param != RULE_PARAM_NONE)
                continue;
            if (ir_depends_on(m, n->in[1 - side], false, true))
                add_param(m, RULE_PARAM_FEEDBACK, b->tensor, m->tensors[b->tensor].shape);
        }
    }
    free(reached);
}

bool ir_add_rule_params(Diag *d, Model *m, RuleSpec rule)
{
    int declared = ir_declared_tensors(m);
    for (int t = 0; t < declared; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (rule.backward != BACKWARD_TRANSPOSE) {
            add_feedback(m, tensor->mean);
            add_feedback(m, tensor->prec);
        }
        tensor = &m->tensors[t];   /* adding params may move the array */
        if (rule.error_weights == ERROR_WEIGHTS_IDENTITY || tensor->dist != DIST_NORMAL || tensor->role == ROLE_INPUT)
            continue;
        const Shape *s = ir_shape(&m->g, tensor->shape);
        if (s->rank != 1) {
            char buf[64];
            diag_error(d, tensor->span, "error_weights = %s needs vector nodes: '%s' has shape %s",
                       rule.error_weights == ERROR_WEIGHTS_LEARNED ? "learned" : "random", tensor->name,
                       ir_shape_str(s, buf, sizeof buf));
            return false;
        }
        Shape square = {.rank = 2, .dims = {s->dims[0], s->dims[0]}};
        add_param(m, RULE_PARAM_ERROR_WEIGHTS, t, ir_shape_id(&m->g, &square));
    }
    return true;
}
