/* print.c — text forms of the IR: the SSA dump (--ir), the derived phase
 * programs (--derived), the model summary (check) and the equations a
 * researcher reads (explain).
 *
 * The equation printer writes infix maths close to the thesis's notation:
 * frozen feedforward values as v̄, errors as ε_v, Wᵀ for transposed
 * operands, u ⊗ v for outer products, Σ_b for batch sums.  Reshapes and
 * broadcasts are invisible there (they change no value); the SSA dump
 * shows everything. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct Printer {
    FILE *out;
    const Model *m;
    const char **names;   /* optional display names by node id */
    int n_names;
    int *budget;          /* nodes one equation may still print, or NULL (unbounded) */
} Printer;

/* Equations print as trees, so a DAG whose subexpressions are shared many
 * times over (deep unrolled models) would print exponentially long: past
 * this many nodes an equation ends in "…". */
enum { EQUATION_NODE_BUDGET = 4000 };

/* Starts an equation's budget. */
static void begin_equation(const Printer *pr)
{
    if (pr->budget)
        *pr->budget = EQUATION_NODE_BUDGET;
}

enum { PREC_ADD = 1, PREC_MUL = 2, PREC_UNARY = 3, PREC_ATOM = 4 };

static void print_expr(const Printer *pr, NodeId id, int prec, bool top);

static const Node *node_at(const Printer *pr, NodeId id) { return &pr->m->g.nodes[id]; }

/* "h̄1": the buffer's tensor name with a macron on its first letter. */
static void print_buffer(const Printer *pr, int buf)
{
    const Buffer *b = &pr->m->buffers[buf];
    const char *name = b->tensor >= 0 ? pr->m->tensors[b->tensor].name : b->name;
    if (b->kind == BUF_FORWARD)
        fprintf(pr->out, "%c\xcc\x84%s", name[0], name + 1);
    else if (b->kind == BUF_PREV)
        fprintf(pr->out, "prev(%s)", name);
    else
        fputs(b->name, pr->out);
}

static void open_paren(const Printer *pr, bool need) { if (need) fputc('(', pr->out); }
static void close_paren(const Printer *pr, bool need) { if (need) fputc(')', pr->out); }

static bool is_scalar_fill(const Printer *pr, NodeId id)
{
    const Node *n = node_at(pr, id);
    return n->op == OP_FILL && ir_numel(ir_shape(&pr->m->g, n->shape)) == 1;
}

/* A matmul of a column reshape and a row reshape: an outer product. */
static bool is_outer(const Printer *pr, const Node *n)
{
    const Node *a = node_at(pr, n->in[0]), *b = node_at(pr, n->in[1]);
    return a->op == OP_RESHAPE && b->op == OP_RESHAPE &&
           ir_shape(&pr->m->g, a->shape)->dims[1] == 1 && ir_shape(&pr->m->g, b->shape)->dims[0] == 1 &&
           ir_node_shape(&pr->m->g, a->in[0])->rank == 1 && ir_node_shape(&pr->m->g, b->in[0])->rank == 1;
}

static void print_matmul(const Printer *pr, NodeId id, int prec)
{
    const Node *n = node_at(pr, id);
    int flags = pr->m->g.attrs[n->attr].ints[0];
    bool sum = flags & MM_SUM_BATCH;
    bool need = prec > PREC_MUL || (sum && prec > PREC_ADD);
    open_paren(pr, need);
    if (sum)
        fputs("Σ_b ", pr->out);
    if (is_outer(pr, n)) {
        print_expr(pr, node_at(pr, n->in[0])->in[0], PREC_UNARY, false);
        fputs(" ⊗ ", pr->out);
        print_expr(pr, node_at(pr, n->in[1])->in[0], PREC_UNARY, false);
    } else {
        print_expr(pr, n->in[0], PREC_UNARY, false);
        if (flags & MM_TRANS_A)
            fputs("ᵀ", pr->out);
        fputs(" @ ", pr->out);
        print_expr(pr, n->in[1], PREC_UNARY, false);
        if (flags & MM_TRANS_B)
            fputs("ᵀ", pr->out);
    }
    close_paren(pr, need);
}

static void print_reduce(const Printer *pr, NodeId id, int prec)
{
    const Node *n = node_at(pr, id), *x = node_at(pr, n->in[0]);
    bool over_batch = x->batched && !n->batched;
    const Shape *to = ir_shape(&pr->m->g, n->shape), *from = ir_shape(&pr->m->g, x->shape);
    bool over_axes = !ir_shape_eq(to, from);
    open_paren(pr, over_batch && prec > PREC_ADD);
    if (over_batch)
        fputs("Σ_b ", pr->out);
    if (over_axes) {
        fputs(to->rank && to->dims[to->rank - 1] == 1 && ir_numel(to) > 1 ? "sum_last(" : "sum(", pr->out);
        print_expr(pr, n->in[0], 0, false);
        fputc(')', pr->out);
    } else {
        print_expr(pr, n->in[0], over_batch ? PREC_UNARY : prec, false);
    }
    close_paren(pr, over_batch && prec > PREC_ADD);
}

static void print_binary(const Printer *pr, NodeId id, int prec)
{
    const Node *n = node_at(pr, id);
    const char *sym;
    int my;
    switch (n->op) {
    case OP_ADD: sym = " + ", my = PREC_ADD; break;
    case OP_SUB: sym = " − ", my = PREC_ADD; break;
    case OP_DIV: sym = " / ", my = PREC_MUL; break;
    default:
        my = PREC_MUL;
        sym = is_scalar_fill(pr, n->in[0]) || is_scalar_fill(pr, n->in[1]) ? " " : " ⊙ ";
        break;
    }
    NodeId rhs = n->in[1];
    if (n->op == OP_ADD && node_at(pr, rhs)->op == OP_NEG) {   /* a + −b reads as a − b */
        sym = " − ";
        rhs = node_at(pr, rhs)->in[0];
    }
    /* Operands of ⊙ and / that are products get parentheses: (Wᵀ @ ε) ⊙ f'. */
    int operand = my == PREC_MUL ? PREC_MUL + 1 : my;
    open_paren(pr, prec > my);
    print_expr(pr, n->in[0], operand, false);
    fputs(sym, pr->out);
    print_expr(pr, rhs, operand + (n->op == OP_SUB || n->op == OP_DIV || !strcmp(sym, " − ")), false);
    close_paren(pr, prec > my);
}

static void print_expr(const Printer *pr, NodeId id, int prec, bool top)
{
    if (pr->budget && --*pr->budget < 0) {
        if (*pr->budget == -1)
            fputs("…", pr->out);
        return;
    }
    const Node *n = node_at(pr, id);
    if (!top && pr->names && id < pr->n_names && pr->names[id]) {
        fputs(pr->names[id], pr->out);
        return;
    }
    const Attr *at = n->attr >= 0 ? &pr->m->g.attrs[n->attr] : NULL;
    switch ((Op)n->op) {
    case OP_LOAD:
        print_buffer(pr, at->ints[0]);
        return;
    case OP_FILL:
        open_paren(pr, at->num < 0 && prec > PREC_ADD);
        fprintf(pr->out, "%g", at->num);
        close_paren(pr, at->num < 0 && prec > PREC_ADD);
        return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
        print_binary(pr, id, prec);
        return;
    case OP_NEG:
        open_paren(pr, prec > PREC_ADD);
        fputs("−", pr->out);
        print_expr(pr, n->in[0], PREC_UNARY, false);
        close_paren(pr, prec > PREC_ADD);
        return;
    case OP_MATMUL:
        print_matmul(pr, id, prec);
        return;
    case OP_REDUCE_TO:
        print_reduce(pr, id, prec);
        return;
    case OP_BROADCAST:
    case OP_RESHAPE:
        print_expr(pr, n->in[0], prec, false);
        return;
    case OP_TRANSPOSE:
        print_expr(pr, n->in[0], PREC_ATOM, false);
        fputs("ᵀ", pr->out);
        return;
    case OP_SLICE:
        print_expr(pr, n->in[0], PREC_ATOM, false);
        fprintf(pr->out, "[%d:%d]", at->ints[0], at->ints[1]);
        return;
    case OP_UNSLICE:
        fputs("pad(", pr->out);
        print_expr(pr, n->in[0], 0, false);
        fprintf(pr->out, " at %d:%d)", at->ints[0], at->ints[1]);
        return;
    case OP_CONCAT:
        fputs("concat(", pr->out);
        print_expr(pr, n->in[0], 0, false);
        fputs(", ", pr->out);
        print_expr(pr, n->in[1], 0, false);
        fputc(')', pr->out);
        return;
    case OP_EXTERN:
        fprintf(pr->out, "%s%s(", pr->m->externs[at->ints[0]].name, at->ints[1] ? "'" : "");
        print_expr(pr, n->in[0], 0, false);
        fputc(')', pr->out);
        return;
    default:
        fprintf(pr->out, "%s(", op_info[n->op].name);
        print_expr(pr, n->in[0], 0, false);
        /* maxpool(x) is stored as maxpool(select = x, values = x) */
        if (n->n_in > 1 && !(n->op == OP_MAXPOOL_GATHER && n->in[0] == n->in[1])) {
            fputs(", ", pr->out);
            print_expr(pr, n->in[1], 0, false);
        }
        if (n->op >= OP_CONV2D && n->op <= OP_AVGPOOL_BACK && (at->ints[0] != 1 || at->ints[1] != 0))
            fprintf(pr->out, n->op <= OP_CONV2D_BACK_KERNEL ? ", stride = %d, pad = %d" : ", %d", at->ints[0], at->ints[1]);
        fputc(')', pr->out);
        return;
    }
}

void ir_print_node_expr(FILE *out, const Model *m, NodeId id)
{
    Printer pr = {out, m, NULL, 0, NULL};
    print_expr(&pr, id, 0, true);
}

static const char *shape_text(const Model *m, int32_t shape, bool batched, char *buf, size_t len)
{
    char dims[96];
    ir_shape_str(ir_shape(&m->g, shape), dims, sizeof dims);
    snprintf(buf, len, "%s%s", batched ? "B × " : "", dims);
    return buf;
}

void ir_print_graph(FILE *out, const Model *m)
{
    const Graph *g = &m->g;
    char sh[128];
    fprintf(out, "# model %s: %d nodes, %d buffers\n", m->name, g->n_nodes, m->n_buffers);
    for (int b = 0; b < m->n_buffers; b++)
        fprintf(out, "buffer %-16s %-8s %s\n", m->buffers[b].name,
                (const char *[]){"param", "const", "value", "prev", "forward", "error", "vgrad", "grad", "energy",
                                 "coeff", "temp"}[m->buffers[b].kind],
                shape_text(m, m->buffers[b].shape, m->buffers[b].batched, sh, sizeof sh));
    for (NodeId id = 0; id < g->n_nodes; id++) {
        const Node *n = &g->nodes[id];
        fprintf(out, "%%%d = %s", id, op_info[n->op].name);
        for (int i = 0; i < n->n_in; i++)
            fprintf(out, "%s%%%d", i ? ", " : " ", n->in[i]);
        if (n->attr >= 0) {
            const Attr *a = &g->attrs[n->attr];
            if (n->op == OP_LOAD)
                fprintf(out, " %s", m->buffers[a->ints[0]].name);
            else if (n->op == OP_FILL)
                fprintf(out, " %g", a->num);
            else
                fprintf(out, " {%d, %d}", a->ints[0], a->ints[1]);
        }
        fprintf(out, " : %s\n", shape_text(m, n->shape, n->batched, sh, sizeof sh));
    }
}

static void print_phases(const Printer *pr, const Program *p)
{
    for (int ph = 0; ph < N_PHASES; ph++) {
        const Phase *phase = &p->phases[ph];
        if (!phase->n_assigns)
            continue;
        fprintf(pr->out, "phase %s:\n", ir_phase_name((PhaseId)ph));
        for (int i = 0; i < phase->n_assigns; i++) {
            fprintf(pr->out, "  %s ← ", p->model->buffers[phase->assigns[i].dst].name);
            begin_equation(pr);
            print_expr(pr, phase->assigns[i].src, 0, true);
            fputc('\n', pr->out);
        }
    }
}

static const char **derived_names(const Program *p, int *n)
{
    const Model *m = p->model;
    *n = m->g.n_nodes;
    const char **names = xcalloc((size_t)*n + 1, sizeof *names);
    for (int t = 0; t < m->n_tensors; t++)
        if (p->error_nodes && p->error_nodes[t] != NO_NODE && m->tensors[t].dist != DIST_NONE)
            names[p->error_nodes[t]] = arena_printf(m->arena, "ε_%s", m->tensors[t].name);
    return names;
}

void ir_print_program(FILE *out, const Program *p)
{
    int n;
    const char **names = derived_names(p, &n);
    int budget;
    Printer pr = {out, p->model, names, n, &budget};
    fprintf(out, "# %s derived by rule %s (%s)\n", p->model->name, ir_rule_name(p->rule.kind),
            p->relaxes ? (p->learn_each_step ? "relaxation, learning at every step" : "relaxation, then learning")
                       : "one sweep");
    print_phases(&pr, p);
    free(names);
}

static void print_equation_list(const Printer *pr, const Program *p, PhaseId ph, const char *fmt_prefix,
                                const char *fmt_suffix)
{
    const Phase *phase = &p->phases[ph];
    for (int i = 0; i < phase->n_assigns; i++) {
        const Buffer *b = &p->model->buffers[phase->assigns[i].dst];
        const char *name = b->tensor >= 0 ? p->model->tensors[b->tensor].name : b->name;
        fprintf(pr->out, "  %s%s%s = ", fmt_prefix, name, fmt_suffix);
        begin_equation(pr);
        print_expr(pr, phase->assigns[i].src, 0, true);
        fputc('\n', pr->out);
    }
}

void ir_print_explain(FILE *out, const Program *p)
{
    int n;
    const char **names = derived_names(p, &n);
    int budget;
    Printer pr = {out, p->model, names, n, &budget};
    const Model *m = p->model;
    static const char *rule_titles[] = {
        "standard predictive coding: predictions recomputed at every step",
        "predictive coding with the fixed-prediction assumption: predictions and Jacobians frozen at the "
        "feedforward pass (v̄)",
        "incremental predictive coding: parameters step at every relaxation step",
        "exact backpropagation: one reverse sweep at the feedforward values (v̄)",
        "activation relaxation"};
    fprintf(out, "model %s — rule %s: %s\n", m->name, ir_rule_name(p->rule.kind), rule_titles[p->rule.kind]);
    if (p->rule.no_derivative)
        fprintf(out, "relaxation: derivative = none (f' dropped from the value dynamics)\n");
    if (p->rule.backward != BACKWARD_TRANSPOSE)
        fprintf(out, "relaxation: backward = %s (messages to value nodes go through back.W instead of W%s)\n",
                p->rule.backward == BACKWARD_LEARNED ? "learned" : "random",
                p->rule.backward == BACKWARD_LEARNED ? "; back.W takes W's update" : "; back.W is fixed");
    if (p->rule.error_weights != ERROR_WEIGHTS_IDENTITY)
        fprintf(out, "relaxation: error_weights = %s (ε_v = ψ_v v − mean, ψ_v = psi.v%s)\n",
                p->rule.error_weights == ERROR_WEIGHTS_LEARNED ? "learned" : "random",
                p->rule.error_weights == ERROR_WEIGHTS_LEARNED ? ", learned by −∂F/∂ψ = −ε vᵀ" : ", fixed");
    if (p->rule.kind == RULE_AR)
        fprintf(out, "activities: each relaxed value starts at its feedforward value and relaxes to its adjoint "
                     "∂L/∂v; its error is −v\n");
    fprintf(out, "\nclamped: ");
    bool any = false;
    for (int t = 0; t < m->n_tensors; t++)
        if (p->clamped[t]) {
            fprintf(out, "%s%s", any ? ", " : "", m->tensors[t].name);
            any = true;
        }
    fprintf(out, "%s\n", any ? "" : "(none)");
    fprintf(out, "\nprecision-weighted prediction errors (value − prediction):\n");
    for (int t = 0; t < m->n_tensors; t++)
        if (p->error_nodes[t] != NO_NODE) {
            fprintf(out, "  ε_%s = ", m->tensors[t].name);
            begin_equation(&pr);
            print_expr(&pr, p->error_nodes[t], 0, true);
            fputc('\n', out);
        }
    fprintf(out, "\nenergy per sample:\n  F = ");
    begin_equation(&pr);
    print_expr(&pr, p->phases[PHASE_ENERGY].assigns[0].src, 0, true);
    fputc('\n', out);
    if (p->phases[PHASE_VALUE_GRAD].n_assigns) {
        fprintf(out, "\nvalue dynamics, v ← v − η ∂F/∂v (all nodes together):\n");
        print_equation_list(&pr, p, PHASE_VALUE_GRAD, "∂F/∂", "");
    } else {
        fprintf(out, "\nno relaxation: errors are the backpropagated adjoints (ε_v = −∂L/∂v)\n");
    }
    fprintf(out, "\nparameter gradients (summed over the batch):\n");
    print_equation_list(&pr, p, PHASE_PARAM_GRAD, "∂F/∂", "");
    if (p->phases[PHASE_INIT].n_assigns) {
        fprintf(out, "\ninitial values (feedforward sweep):\n");
        const Phase *init = &p->phases[PHASE_INIT];
        for (int i = 0; i < init->n_assigns; i++) {
            const Buffer *b = &m->buffers[init->assigns[i].dst];
            if (b->kind != BUF_VALUE)
                continue;
            fprintf(out, "  %s = ", b->name);
            begin_equation(&pr);
            print_expr(&pr, init->assigns[i].src, 0, true);
            fputc('\n', out);
        }
    }
    free(names);
}

void ir_print_summary(FILE *out, const Model *m)
{
    char sh[128];
    int counts[5] = {0};
    int64_t n_params = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        counts[m->tensors[t].role]++;
        if (m->tensors[t].role == ROLE_PARAM)
            n_params += ir_numel(ir_shape(&m->g, m->tensors[t].shape));
    }
    fprintf(out, "model %s: %d params (%lld values), %d consts, %d inputs, %d latents, %d observed\n", m->name,
            counts[ROLE_PARAM], (long long)n_params, counts[ROLE_CONST], counts[ROLE_INPUT], counts[ROLE_LATENT],
            counts[ROLE_OBSERVED]);
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        fprintf(out, "  %-9s %-10s %-14s", ir_role_name(tensor->role), tensor->name,
                ir_shape_str(ir_shape(&m->g, tensor->shape), sh, sizeof sh));
        if (tensor->dist != DIST_NONE) {
            fprintf(out, " ~ %s(", ir_dist_name(tensor->dist));
            ir_print_node_expr(out, m, tensor->mean);
            if (tensor->prec != NO_NODE) {
                fputs(", prec = ", out);
                ir_print_node_expr(out, m, tensor->prec);
            }
            fputc(')', out);
        }
        if (tensor->rule_param != RULE_PARAM_NONE)
            fprintf(out, " (added by the rule: %s)",
                    tensor->rule_param == RULE_PARAM_FEEDBACK ? "feedback matrix replacing the transpose in messages"
                                                              : "error weights, error = psi v - mean");
        fputc('\n', out);
    }
    fprintf(out, "feedforward order:");
    for (int i = 0; i < m->n_topo; i++)
        fprintf(out, " %s", m->tensors[m->topo[i]].name);
    fprintf(out, "\n");
}
