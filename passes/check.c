/* check.c — whole-model checks after lowering: the value nodes must form a
 * DAG (prev() edges excepted: they read the previous time step), and their
 * topological order is recorded for the feedforward sweep and for bp.
 *
 * The depth-first search keeps its own stack, so a 10000-step family chain
 * cannot overflow the C stack, and parent lists take memory in proportion
 * to the edges.  Requires: ir_lower.  Produces: m->topo.  Never mutates the
 * graph. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

enum { CYCLE_SHOWN = 8 };   /* longer cycles print their first and last names */

/* Reports the cycle path[start..n_path) → path[start]. */
static void report_cycle(Diag *d, const Model *m, const int *path, int start, int n_path)
{
    size_t cap = 64, len = 0;
    int count = n_path - start;
    for (int i = start; i < n_path; i++)
        cap += strlen(m->tensors[path[i]].name) + 8;
    char *text = xmalloc(cap);
    text[0] = 0;
    for (int i = start; i < n_path; i++) {
        int k = i - start;
        if (count > CYCLE_SHOWN && k == CYCLE_SHOWN / 2) {
            len += (size_t)snprintf(text + len, cap - len, "… (%d more) → ", count - CYCLE_SHOWN);
            i = n_path - CYCLE_SHOWN / 2 - 1;
            continue;
        }
        len += (size_t)snprintf(text + len, cap - len, "%s → ", m->tensors[path[i]].name);
    }
    snprintf(text + len, cap - len, "%s", m->tensors[path[start]].name);
    diag_error(d, m->tensors[path[start]].span, "cycle in the model: %s (use prev() to refer to the previous time step)",
               text);
    free(text);
}

bool pass_check(Diag *d, Model *m)
{
    int n = m->n_tensors;
    int **parents = xcalloc((size_t)n + 1, sizeof *parents);
    int *n_parents = xcalloc((size_t)n + 1, sizeof *n_parents);
    int *scratch = xmalloc(sizeof *scratch * (2 * (size_t)n + 2));
    for (int t = 0; t < n; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->dist == DIST_NONE)
            continue;
        int k = ir_value_parents(m, tensor->mean, scratch, n + 1);
        k += ir_value_parents(m, tensor->prec, scratch + k, n + 1);
        parents[t] = xmalloc(sizeof **parents * ((size_t)k + 1));
        memcpy(parents[t], scratch, sizeof *scratch * (size_t)k);
        n_parents[t] = k;
    }
    free(scratch);

    /* Iterative DFS: path[] is the stack of tensors being visited, next[]
     * the index of the parent each one explores next. */
    char *color = xcalloc((size_t)n + 1, 1);   /* 0 new, 1 on the path, 2 done */
    int *path = xmalloc(sizeof *path * ((size_t)n + 1));
    int *next = xmalloc(sizeof *next * ((size_t)n + 1));
    int *order = arena_alloc(m->arena, sizeof *order * ((size_t)n + 1));
    int n_order = 0;
    bool ok = true;
    for (int root = 0; root < n && ok; root++) {
        if (color[root])
            continue;
        int depth = 0;
        path[depth] = root;
        next[depth++] = 0;
        color[root] = 1;
        while (depth && ok) {
            int t = path[depth - 1];
            if (next[depth - 1] < n_parents[t]) {
                int p = parents[t][next[depth - 1]++];
                if (color[p] == 1) {
                    int start = depth - 1;
                    while (start > 0 && path[start] != p)
                        start--;
                    report_cycle(d, m, path, start, depth);
                    ok = false;
                } else if (color[p] == 0) {
                    color[p] = 1;
                    path[depth] = p;
                    next[depth++] = 0;
                }
                continue;
            }
            color[t] = 2;
            depth--;
            if (ir_is_value_role(m->tensors[t].role))
                order[n_order++] = t;
        }
    }
    for (int t = 0; t < n; t++)
        free(parents[t]);
    free(parents);
    free(n_parents);
    free(color);
    free(path);
    free(next);
    m->topo = order;
    m->n_topo = n_order;
    return ok;
}
