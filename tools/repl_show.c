/* repl_show.c — how the REPL prints a tensor: nested brackets in
 * row-major order with numbers right-aligned to a common width (%.6g);
 * tensors over SHOW_ALL values keep SHOW_EDGE entries at each end of
 * every long axis, with "..." between; then min/max/mean/std whenever
 * there is more than one value. */
#include "repl.h"

#include <math.h>
#include <string.h>

enum { SHOW_ALL = 64, SHOW_EDGE = 3 };

typedef struct Layout {
    const double *v;
    int rank;
    const int64_t *dims;
    bool elide;
    int width;            /* 0 while measuring */
    FILE *out;
} Layout;

static int put_number(const Layout *lay, double x)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.6g", x);
    if (lay->width)
        fprintf(lay->out, "%*s", lay->width, buf);
    return n;
}

static bool skipped(const Layout *lay, int axis, int64_t i)
{
    int64_t d = lay->dims[axis];
    return lay->elide && d > 2 * SHOW_EDGE && i >= SHOW_EDGE && i < d - SHOW_EDGE;
}

/* Walks axis `axis` from offset `at`: prints when lay->width is set, else
 * returns the widest number it would print. */
static int walk(Layout *lay, int axis, int64_t at)
{
    if (axis == lay->rank)
        return put_number(lay, lay->v[at]);
    int64_t stride = 1;
    for (int k = axis + 1; k < lay->rank; k++)
        stride *= lay->dims[k];
    int widest = 0;
    bool print = lay->width > 0;
    if (print)
        fputc('[', lay->out);
    for (int64_t i = 0; i < lay->dims[axis]; i++) {
        if (skipped(lay, axis, i)) {
            if (print)
                fprintf(lay->out, axis + 1 == lay->rank ? " ..." : "\n%*s...", axis + 1, "");
            i = lay->dims[axis] - SHOW_EDGE - 1;
            continue;
        }
        if (print && i > 0)
            fprintf(lay->out, axis + 1 == lay->rank ? " " : "\n%*s", axis + 1, "");
        int w = walk(lay, axis + 1, at + i * stride);
        widest = w > widest ? w : widest;
    }
    if (print)
        fputc(']', lay->out);
    return widest;
}

static void show_stats(FILE *out, const double *v, int64_t n)
{
    double lo = INFINITY, hi = -INFINITY, sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sum += v[i];
    }
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    fprintf(out, "min %.6g  max %.6g  mean %.6g  std %.6g\n", lo, hi, mean, sqrt(sq / (double)n));
}

void show_values(FILE *out, const double *v, int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    if (n == 0) {
        fprintf(out, "(empty)\n");
        return;
    }
    Layout lay = {v, rank, dims, n > SHOW_ALL, 0, out};
    lay.width = walk(&lay, 0, 0);
    walk(&lay, 0, 0);
    fputc('\n', out);
    if (n > 1)
        show_stats(out, v, n);
}

int show_dims(const Session *s, int buf, int64_t dims[TENSOR_MAX_RANK])
{
    const Buffer *b = &s->model->buffers[buf];
    const Shape *shape = ir_shape(&s->model->g, b->shape);
    int rank = 0;
    if (b->batched && s->st.batch > 1)
        dims[rank++] = s->st.batch;
    for (int i = 0; i < shape->rank && rank < TENSOR_MAX_RANK; i++)
        dims[rank++] = shape->dims[i];
    return rank;
}
