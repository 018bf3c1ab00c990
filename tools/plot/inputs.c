/* inputs.c — what a plot is drawn from: table columns become chart series
 * (rows with a missing value, or a non-positive one on a log axis,
 * dropped) and a tensor in a .npy or .safetensors file becomes a stack of
 * greyscale images.
 *
 * Every message starts with the file's path and names the column or the
 * tensor and its shape.  Only the images that will be drawn are converted
 * to double, so a 60000-image training set costs its file, not 8× it. */
#include "plot.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool usable(double v, bool log)
{
    return !isnan(v) && (!log || v > 0);
}

void inputs_free_series(Series *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        free(s[i].xs);
        free(s[i].ys);
    }
    free(s);
}

/* Appends (x, y) to a series sized for the whole table. */
static void push_point(Series *s, double x, double y)
{
    s->xs[s->n_points] = x;
    s->ys[s->n_points++] = y;
}

static void alloc_points(Series *s, int64_t n)
{
    s->xs = xmalloc(((size_t)n + 1) * sizeof *s->xs);
    s->ys = xmalloc(((size_t)n + 1) * sizeof *s->ys);
}

bool inputs_lines(const PlotTable *t, const char *x, const char *const *ys, int n_ys, bool logx, bool logy,
                  Series **out, char *err, size_t errlen)
{
    *out = NULL;
    int xc = table_column(t, x, err, errlen);
    if (xc < 0)
        return false;
    Series *series = xcalloc((size_t)n_ys, sizeof *series);
    int total = 0, nc = t->t.n_columns;
    for (int i = 0; i < n_ys; i++) {
        int yc = table_column(t, ys[i], err, errlen);
        if (yc < 0) {
            inputs_free_series(series, n_ys);
            return false;
        }
        series[i].name = ys[i];
        alloc_points(&series[i], t->t.n_rows);
        for (int64_t r = 0; r < t->t.n_rows; r++) {
            const double *row = t->t.values + r * nc;
            if (usable(row[xc], logx) && usable(row[yc], logy))
                push_point(&series[i], row[xc], row[yc]);
        }
        total += series[i].n_points;
    }
    if (!total) {
        tio_error(err, errlen, "%s: no row has values in column '%s' and the y column%s%s", t->path, x,
                  n_ys > 1 ? "s" : "", logx || logy ? " (positive ones, on a log axis)" : "");
        inputs_free_series(series, n_ys);
        return false;
    }
    *out = series;
    return true;
}

/* Class of a row's colour cell: 0..PLOT_N_COLOURS-1, -1 when missing, -2 when invalid. */
static int class_of(double v)
{
    if (isnan(v))
        return -1;
    if (v != floor(v) || v < 0 || v >= PLOT_N_COLOURS)
        return -2;
    return (int)v;
}

static const char *const class_names[PLOT_N_COLOURS] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"};

bool inputs_scatter(const PlotTable *t, const char *x, const char *y, const char *colour, bool logx, bool logy,
                    Series **out, int *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    int xc = table_column(t, x, err, errlen), yc = xc < 0 ? -1 : table_column(t, y, err, errlen);
    int cc = yc < 0 || !colour ? -1 : table_column(t, colour, err, errlen);
    if (xc < 0 || yc < 0 || (colour && cc < 0))
        return false;
    int nc = t->t.n_columns, n_groups = 1;
    int64_t counts[PLOT_N_COLOURS] = {0};
    for (int64_t r = 0; colour && r < t->t.n_rows; r++) {
        int k = class_of(t->t.values[r * nc + cc]);
        if (k == -2) {
            char shown[TIO_NAME_SHOW];
            tio_error(err, errlen, "%s:%d: column '%s': %g is not a class (an integer from 0 to %d)", t->path,
                      t->row_lines[r], tio_show_name(colour, shown), t->t.values[r * nc + cc], PLOT_N_COLOURS - 1);
            return false;
        }
        if (k >= 0) {
            counts[k]++;
            n_groups = k + 1 > n_groups ? k + 1 : n_groups;
        }
    }
    Series *groups = xcalloc((size_t)n_groups, sizeof *groups);
    for (int g = 0; g < n_groups; g++) {
        groups[g].name = colour ? class_names[g] : y;
        alloc_points(&groups[g], colour ? counts[g] : t->t.n_rows);
    }
    int64_t total = 0;
    for (int64_t r = 0; r < t->t.n_rows; r++) {
        const double *row = t->t.values + r * nc;
        int k = colour ? class_of(row[cc]) : 0;
        if (k >= 0 && usable(row[xc], logx) && usable(row[yc], logy)) {
            push_point(&groups[k], row[xc], row[yc]);
            total++;
        }
    }
    if (!total) {
        tio_error(err, errlen, "%s: no row has values in columns '%s'%s '%s'%s%s", t->path, x, colour ? "," : " and", y,
                  colour ? " and the class column" : "", logx || logy ? " (positive ones, on a log axis)" : "");
        inputs_free_series(groups, n_groups);
        return false;
    }
    *out = groups;
    *n_out = n_groups;
    return true;
}

/* ---- images ---- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The tensor to draw from a safetensors set: `name`, or the only one. */
static HostTensor *pick_tensor(const char *path, const TensorSet *set, const char *name, char *err, size_t errlen)
{
    char shown[TIO_NAME_SHOW], names[200] = "";
    size_t used = 0;
    for (int i = 0; i < set->n_tensors && used + TIO_NAME_SHOW + 8 < sizeof names; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                 tio_show_name(set->tensors[i].name, shown));
    if (name) {
        HostTensor *t = tensor_set_find(set, name);
        if (!t)
            tio_error(err, errlen, "%s: no tensor '%s' (tensors: %s)", path, tio_show_name(name, shown), names);
        return t;
    }
    if (set->n_tensors == 1)
        return &set->tensors[0];
    tio_error(err, errlen, "%s: %d tensors (%s); choose one with --tensor NAME", path, set->n_tensors, names);
    return NULL;
}

/* "PATH: tensor 'x' [2, 3]" or, for a .npy file, "PATH: [2, 3]". */
static void describe(const char *path, const HostTensor *t, char *buf, size_t buflen)
{
    char shown[TIO_NAME_SHOW], shape[160];
    host_tensor_shape_str(t, shape, sizeof shape);
    if (t->name && t->name[0])
        snprintf(buf, buflen, "%s: tensor '%s' %s", path, tio_show_name(t->name, shown), shape);
    else
        snprintf(buf, buflen, "%s: tensor %s", path, shape);
}

/* Image height and width from the tensor's shape and --shape; false with a message. */
static bool image_shape(const char *what, const HostTensor *t, const int *shape_hw, int64_t hw[2], char *err,
                        size_t errlen)
{
    if (t->rank == 4 && t->dims[1] != 1) {
        tio_error(err, errlen, "%s: %lld channels; only greyscale [N, 1, H, W] images can be drawn", what,
                  (long long)t->dims[1]);
        return false;
    }
    if (t->rank == 3 || t->rank == 4) {
        hw[0] = t->dims[t->rank - 2];
        hw[1] = t->dims[t->rank - 1];
    } else if (t->rank == 2 && !shape_hw) {
        int64_t side = (int64_t)llround(sqrt((double)t->dims[1]));
        if (side * side != t->dims[1]) {
            tio_error(err, errlen, "%s: %lld values per image is not a square; give --shape H,W", what,
                      (long long)t->dims[1]);
            return false;
        }
        hw[0] = hw[1] = side;
    } else if (t->rank == 2) {
        hw[0] = t->dims[1];
        hw[1] = 1;
    } else {
        tio_error(err, errlen, "%s: expected images as [N, H, W], [N, 1, H, W] or [N, D] with --shape H,W", what);
        return false;
    }
    if (shape_hw) {
        if ((int64_t)shape_hw[0] * shape_hw[1] != hw[0] * hw[1]) {
            tio_error(err, errlen, "%s: --shape %d,%d needs %lld values per image, the tensor has %lld", what,
                      shape_hw[0], shape_hw[1], (long long)shape_hw[0] * shape_hw[1], (long long)(hw[0] * hw[1]));
            return false;
        }
        hw[0] = shape_hw[0];
        hw[1] = shape_hw[1];
    }
    if (t->dims[0] == 0 || hw[0] == 0 || hw[1] == 0 || hw[0] > PLOT_MAX_SIDE || hw[1] > PLOT_MAX_SIDE) {
        tio_error(err, errlen, "%s: %s", what, t->dims[0] == 0 ? "holds no images" : "images of that size cannot be drawn");
        return false;
    }
    return true;
}

/* Converts the first `n` images of t into out->pixels. */
static bool convert(const HostTensor *t, int n, ImageStack *out, char *err, size_t errlen)
{
    int64_t per_image = (int64_t)out->height * out->width;
    HostTensor view = *t;    /* the first n images, sharing t's data */
    view.rank = 2;
    view.dims[0] = n;
    view.dims[1] = per_image;
    view.nbytes = (size_t)n * (size_t)per_image * dtype_size(t->dtype);
    out->pixels = xmalloc(((size_t)n * (size_t)per_image + 1) * sizeof *out->pixels);
    out->n = n;
    return host_tensor_to_f64(&view, out->pixels, err, errlen);
}

bool inputs_images(const char *path, const char *tensor, const int *shape_hw, int count, ImageStack *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bool npy = has_suffix(path, ".npy");
    if (!npy && !has_suffix(path, ".safetensors")) {
        tio_error(err, errlen, "%s: unknown file type (expected a .npy or .safetensors file)", path);
        return false;
    }
    HostTensor single = {0};
    TensorSet set = {0};
    HostTensor *t = NULL;
    if (npy ? npy_load(path, &single, err, errlen) : st_load(path, &set, err, errlen))
        t = npy ? &single : pick_tensor(path, &set, tensor, err, errlen);
    char what[400];
    int64_t hw[2];
    bool ok = t != NULL;
    if (ok)
        describe(path, t, what, sizeof what);
    ok = ok && image_shape(what, t, shape_hw, hw, err, errlen);
    if (ok) {
        int64_t limit = count ? count : PLOT_MAX_IMAGES;
        out->height = (int)hw[0];
        out->width = (int)hw[1];
        ok = convert(t, (int)(t->dims[0] < limit ? t->dims[0] : limit), out, err, errlen);
    }
    host_tensor_free(&single);
    tensor_set_free(&set);
    if (!ok)
        inputs_free_images(out);
    return ok;
}

void inputs_free_images(ImageStack *s)
{
    free(s->pixels);
    memset(s, 0, sizeof *s);
}
