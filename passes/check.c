/* check.c — whole-model checks after lowering: the value nodes must form a
 * DAG (prev() edges excepted: they read the previous time step), and their
 * topological order is recorded for the feedforward sweep and for bp.
 *
 * Requires: ir_lower.  Produces: m->topo.  Never mutates the graph. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

typedef struct Visit {
    const Model *m;
    int **parents;
    int *n_parents;
    char *color;          /* 0 unvisited, 1 on the stack, 2 done */
    int *order;
    int n_order;
    int *path;
    int n_path;
} Visit;

static bool visit(Diag *d, Visit *v, int t)
{
    if (v->color[t] == 2)
        return true;
    if (v->color[t] == 1) {
        /* Report the cycle as the path from t's first appearance. */
        char text[512] = "";
        int start = v->n_path - 1;
        while (start > 0 && v->path[start] != t)
            start--;
        for (int i = start; i < v->n_path; i++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s → ", v->m->tensors[v->path[i]].name);
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s", v->m->tensors[t].name);
        diag_error(d, v->m->tensors[t].span, "cycle in the model: %s (use prev() to refer to the previous time step)", text);
        return false;
    }
    v->color[t] = 1;
    v->path[v->n_path++] = t;
    for (int i = 0; i < v->n_parents[t]; i++)
        if (!visit(d, v, v->parents[t][i]))
            return false;
    v->n_path--;
    v->color[t] = 2;
    if (ir_is_value_role(v->m->tensors[t].role))
        v->order[v->n_order++] = t;
    return true;
}

bool pass_check(Diag *d, Model *m)
{
    int n = m->n_tensors;
    Visit v = {.m = m};
    v.parents = xcalloc((size_t)n, sizeof *v.parents);
    v.n_parents = xcalloc((size_t)n, sizeof *v.n_parents);
    v.color = xcalloc((size_t)n, 1);
    v.order = arena_alloc(m->arena, sizeof *v.order * (size_t)(n + 1));
    v.path = xmalloc(sizeof *v.path * (size_t)(n + 1));
    for (int t = 0; t < n; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE)
            continue;
        int cap = m->n_tensors * 2 + 2;
        v.parents[t] = xmalloc(sizeof(int) * (size_t)cap);
        v.n_parents[t] = ir_value_parents(m, tensor->mean, v.parents[t], cap / 2);
        v.n_parents[t] += ir_value_parents(m, tensor->prec, v.parents[t] + v.n_parents[t], cap / 2);
    }
    bool ok = true;
    for (int t = 0; t < n && ok; t++)
        ok = visit(d, &v, t);
    for (int t = 0; t < n; t++)
        free(v.parents[t]);
    free(v.parents);
    free(v.n_parents);
    free(v.color);
    free(v.path);
    m->topo = v.order;
    m->n_topo = v.n_order;
    return ok;
}
