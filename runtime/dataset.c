/* dataset.c — data sets as named columns and their binding to a model's
 * nodes: the default Fashion-MNIST (Debian's dataset-fashion-mnist, IDX
 * gzip files, bound by shape) and `--bind NODE=FILE` sources (.npy,
 * .safetensors, .csv; SPEC §7) or arrays in memory (the C API), bound by
 * name.
 *
 * A column holds n × count × width floats (count = a family's length, 1
 * for a single node; width = one node's elements), or n × count class
 * indices for a categorical node, one-hot encoded when a batch is filled.
 * Files are read whole, converted to doubles, checked against the node
 * (errors name the file, the tensor and both shapes) and then stored as
 * floats or class indices. */
#include "runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Fashion-MNIST ---- */

static const char *data_dir(void)
{
    const char *env = getenv("FEP_FASHION_MNIST");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

static bool load_idx(const char *dir, const char *name, HostTensor *t, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return idx_load(path, t, err, errlen);
}

static DataColumn *add_column(Dataset *d, const char *node, const char *source)
{
    d->columns = xrealloc(d->columns, sizeof *d->columns * (size_t)(d->n_columns + 1));
    DataColumn *c = &d->columns[d->n_columns++];
    memset(c, 0, sizeof *c);
    c->node = node ? xstrdup(node) : NULL;
    c->source = xstrdup(source);
    c->count = 1;
    return c;
}

/* Images → a 784-wide value column, labels → a 10-class index column. */
static bool fmnist_columns(const HostTensor *images, const HostTensor *labels, const char *dir, Dataset *out,
                           char *err, size_t errlen)
{
    out->n = images->dims[0];
    DataColumn *img = add_column(out, NULL, dir);
    img->width = images->dims[1] * images->dims[2];
    img->values = xmalloc(sizeof *img->values * (size_t)(out->n * img->width));
    const uint8_t *px = images->data, *lb = labels->data;
    for (int64_t i = 0; i < out->n * img->width; i++)
        img->values[i] = px[i] / 255.0f;
    DataColumn *lab = add_column(out, NULL, dir);
    lab->width = 10;
    lab->classes = xmalloc(sizeof *lab->classes * (size_t)out->n);
    for (int64_t i = 0; i < out->n; i++) {
        lab->classes[i] = lb[i];
        if (lb[i] >= 10) {
            snprintf(err, errlen, "%s: label %d of sample %lld is not a class in 0..9", dir, lb[i], (long long)i);
            return false;
        }
    }
    return true;
}

bool dataset_fashion_mnist(bool train, Dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->label_column = -1;
    const char *dir = data_dir();
    HostTensor images = {0}, labels = {0};
    bool ok = load_idx(dir, train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz", &images, err, errlen) &&
              load_idx(dir, train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz", &labels, err, errlen);
    if (ok && (images.rank != 3 || labels.rank != 1 || images.dims[0] != labels.dims[0] || images.dtype != DT_U8 ||
               labels.dtype != DT_U8)) {
        snprintf(err, errlen, "%s: unexpected Fashion-MNIST layout (want u8 images [N, 28, 28] and u8 labels [N])", dir);
        ok = false;
    }
    ok = ok && fmnist_columns(&images, &labels, dir, out, err, errlen);
    host_tensor_free(&images);
    host_tensor_free(&labels);
    if (!ok)
        dataset_free(out);
    return ok;
}

void dataset_free(Dataset *d)
{
    for (int i = 0; i < d->n_columns; i++) {
        DataColumn *c = &d->columns[i];
        free(c->node);
        free(c->source);
        free(c->tensors);
        free(c->values);
        free(c->classes);
    }
    free(d->columns);
    memset(d, 0, sizeof *d);
    d->label_column = -1;
}

/* ---- binding by shape (Fashion-MNIST) ---- */

static void bind_single(DataColumn *c, int tensor)
{
    free(c->tensors);
    c->tensors = xmalloc(sizeof *c->tensors);
    c->tensors[0] = tensor;
    c->count = 1;
}

static bool is_label_node(const Tensor *t) { return t->role == ROLE_OBSERVED && t->dist == DIST_CATEGORICAL; }

/* The first single-node categorical observed column: the one scored. */
static int find_label_column(const Model *m, const Dataset *d)
{
    for (int i = 0; i < d->n_columns; i++) {
        const DataColumn *c = &d->columns[i];
        if (c->tensors && c->count == 1 && is_label_node(&m->tensors[c->tensors[0]]))
            return i;
    }
    return -1;
}

/* Images: the first input node with as many elements, else the last
 * non-categorical observed node with as many. */
static bool bind_by_shape(const Model *m, DataColumn *c, const char *what, char *err, size_t errlen)
{
    int input = -1, observed = -1, label = -1;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        int64_t numel = ir_numel(ir_shape(&m->g, tensor->shape));
        if (numel != c->width)
            continue;
        if (tensor->role == ROLE_INPUT && input < 0)
            input = t;
        if (tensor->role == ROLE_OBSERVED && tensor->dist != DIST_CATEGORICAL)
            observed = t;
        if (is_label_node(tensor))
            label = t;
    }
    int target = c->classes ? label : input >= 0 ? input : observed;
    if (target >= 0)
        bind_single(c, target);
    else if (!c->classes) {
        snprintf(err, errlen, "model '%s' has no input or observed node with %lld elements to receive %s images",
                 m->name, (long long)c->width, what);
        return false;
    }
    return true;
}

bool dataset_bind(const Model *m, Dataset *d, char *err, size_t errlen)
{
    for (int i = 0; i < d->n_columns; i++)
        if (!d->columns[i].node && !bind_by_shape(m, &d->columns[i], "Fashion-MNIST", err, errlen))
            return false;
    d->label_column = find_label_column(m, d);
    return true;
}

/* ---- sources: the node a name binds to ---- */

static bool is_data_role(Role r) { return r == ROLE_INPUT || r == ROLE_OBSERVED; }

/* The elements of family `name` in index order; count 0 if none. */
static void find_family(const Model *m, const char *name, DataColumn *c)
{
    c->count = 0;
    for (int k = 0; k < m->n_tensors; k++)
        c->count += m->tensors[k].family && !strcmp(m->tensors[k].family, name);
    if (c->count == 0)
        return;
    c->tensors = xmalloc(sizeof *c->tensors * (size_t)c->count);
    int at = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].family && !strcmp(m->tensors[k].family, name))
            c->tensors[at++] = k;
    for (int i = 1; i < c->count; i++)   /* insertion sort by family index */
        for (int j = i; j > 0; j--) {
            int *pair = c->tensors + j - 1;
            if (m->tensors[pair[0]].family_index <= m->tensors[pair[1]].family_index)
                break;
            int tmp = pair[0];
            pair[0] = pair[1];
            pair[1] = tmp;
        }
}

/* How messages name a source: "--bind x=FILE", or an array's name. */
static const char *source_label(const DataSource *src, char *buf, size_t len)
{
    if (src->values)
        return src->path;
    snprintf(buf, len, "--bind %s=%s", src->node, src->path);
    return buf;
}

/* The tensors src->node binds: one input/observed node, or a family's
 * elements.  False with a message naming the source. */
static bool find_target(const Model *m, const DataSource *src, DataColumn *c, char *err, size_t errlen)
{
    const char *name = src->node;
    char buf[1200];
    const char *label = source_label(src, buf, sizeof buf);
    int t = ir_model_find_tensor(m, name);
    if (t >= 0)
        bind_single(c, t);
    else
        find_family(m, name, c);
    if (c->count == 0) {
        snprintf(err, errlen, "%s: model '%s' has no node or family named '%s'", label, m->name, name);
        return false;
    }
    Role r = m->tensors[c->tensors[0]].role;
    if (!is_data_role(r)) {
        snprintf(err, errlen, "%s: '%s' is a %s%s of model '%s'; only input and observed nodes take data",
                 label, name, t >= 0 ? "" : "family of ", ir_role_name(r), m->name);
        return false;
    }
    return true;
}

/* ---- sources: reading files into doubles ---- */

/* A file's tensor as doubles, whatever its format. */
typedef struct RawData {
    const float *f;       /* an array's floats, borrowed (then v is NULL) */
    bool borrowed;        /* v is the caller's */
    char tensor[160];     /* the tensor's name in messages */
    char detail[160];     /* after the name: the CSV columns it came from */
    int rank;
    int64_t dims[TENSOR_MAX_RANK];
    double *v;
} RawData;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static bool raw_from_host(const HostTensor *h, RawData *raw, char *err, size_t errlen)
{
    raw->rank = h->rank;
    memcpy(raw->dims, h->dims, sizeof raw->dims);
    raw->v = xmalloc(sizeof *raw->v * (size_t)(host_tensor_numel(h) + 1));
    return host_tensor_to_f64(h, raw->v, err, errlen);
}

static bool read_npy(const char *path, RawData *raw, char *err, size_t errlen)
{
    HostTensor h = {0};
    bool ok = npy_load(path, &h, err, errlen) && raw_from_host(&h, raw, err, errlen);
    host_tensor_free(&h);
    return ok;
}

/* The tensor named `node`, or the file's only tensor. */
static bool read_safetensors(const char *path, const char *node, RawData *raw, char *err, size_t errlen)
{
    TensorSet set = {0};
    if (!st_load(path, &set, err, errlen))
        return false;
    const HostTensor *h = tensor_set_find(&set, node);
    if (!h && set.n_tensors == 1)
        h = &set.tensors[0];
    bool ok = h != NULL;
    if (ok) {
        char shown[TIO_NAME_SHOW];
        snprintf(raw->tensor, sizeof raw->tensor, "%s", tio_show_name(h->name, shown));
        ok = raw_from_host(h, raw, err, errlen);
    } else
        snprintf(err, errlen, "%s: no tensor '%s' among its %d tensors (name it after the node, or keep one tensor)",
                 path, node, set.n_tensors);
    tensor_set_free(&set);
    return ok;
}

/* Columns `name[0]`, `name[1]`, ... present from 0 on. */
static int csv_run(const CsvTable *csv, const char *name)
{
    char col[300];
    for (int k = 0;; k++) {
        snprintf(col, sizeof col, "%s[%d]", name, k);
        if (csv_column(csv, col) < 0)
            return k;
    }
}

/* Header binding (SPEC §7): `name` for a one-element block (or a column
 * of class indices), else `name[i]` for element i flattened row-major.
 * The columns become a tensor [rows] or [rows, K]. */
static bool read_csv(const char *path, const char *node, int64_t block, RawData *raw, char *err, size_t errlen)
{
    CsvTable csv = {0};
    if (!csv_load(path, &csv, err, errlen))
        return false;
    int whole = csv_column(&csv, node), k = csv_run(&csv, node);
    bool ok = whole >= 0 || k > 0;
    if (!ok)
        snprintf(err, errlen,
                 "%s: no column '%s' or '%s[0]' for node '%s' (columns bind by header: %s for a one-element node, "
                 "%s[i] for element i flattened row-major)",
                 path, node, node, node, node, node);
    bool use_whole = ok && (k == 0 || (block == 1 && whole >= 0));
    raw->rank = use_whole ? 1 : 2;
    raw->dims[0] = csv.n_rows;
    raw->dims[1] = k;
    int width = use_whole ? 1 : k;
    if (use_whole)
        snprintf(raw->detail, sizeof raw->detail, " (column %s)", node);
    else
        snprintf(raw->detail, sizeof raw->detail, " (columns %s[0]..%s[%d])", node, node, k - 1);
    int *cols = xmalloc(sizeof *cols * (size_t)(width + 1));
    for (int i = 0; i < width; i++) {
        char col[300];
        snprintf(col, sizeof col, "%s[%d]", node, i);
        cols[i] = use_whole ? whole : csv_column(&csv, col);
    }
    raw->v = xmalloc(sizeof *raw->v * (size_t)(csv.n_rows * width + 1));
    for (int64_t r = 0; ok && r < csv.n_rows; r++)
        for (int i = 0; i < width; i++)
            raw->v[r * width + i] = csv.values[r * csv.n_columns + cols[i]];
    free(cols);
    csv_free(&csv);
    return ok;
}

/* An array in memory, borrowed. */
static bool read_array(const DataSource *src, RawData *raw, char *err, size_t errlen)
{
    if (src->rank < 0 || src->rank > TENSOR_MAX_RANK) {
        snprintf(err, errlen, "%s: rank %d is not in 0..%d", src->path, src->rank, TENSOR_MAX_RANK);
        return false;
    }
    raw->rank = src->rank;
    int64_t total = 1;
    for (int i = 0; i < src->rank; i++) {
        int64_t d = src->dims[i];
        if (d < 0 || (d > 0 && total > INT64_MAX / 8 / d)) {
            snprintf(err, errlen, "%s: dimension %d (%lld) is negative or too large", src->path, i, (long long)d);
            return false;
        }
        total *= d;
        raw->dims[i] = d;
    }
    raw->borrowed = true;
    if (src->f64)
        raw->v = (double *)src->values;
    else
        raw->f = src->values;
    return true;
}

static bool read_source(const DataSource *src, int64_t block, RawData *raw, char *err, size_t errlen)
{
    snprintf(raw->tensor, sizeof raw->tensor, "%s", src->node);
    if (src->values)
        return read_array(src, raw, err, errlen);
    if (ends_with(src->path, ".npy"))
        return read_npy(src->path, raw, err, errlen);
    if (ends_with(src->path, ".safetensors"))
        return read_safetensors(src->path, src->node, raw, err, errlen);
    if (ends_with(src->path, ".csv"))
        return read_csv(src->path, src->node, block, raw, err, errlen);
    snprintf(err, errlen, "%s: unknown data format (expected a .npy, .safetensors or .csv file)", src->path);
    return false;
}

/* ---- sources: shape checks ---- */

static bool dims_equal(const int64_t *a, int na, const int64_t *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* What one sample must look like: E = [count, S...] for a family, S for
 * a node; also accepted flattened, [count, width], and [] for one element. */
static int expected_dims(const Model *m, const DataColumn *c, int64_t *dims)
{
    const Shape *s = ir_shape(&m->g, m->tensors[c->tensors[0]].shape);
    int rank = 0;
    if (c->node && ir_model_find_tensor(m, c->node) < 0)
        dims[rank++] = c->count;
    for (int i = 0; i < s->rank; i++)
        dims[rank++] = s->dims[i];
    return rank;
}

static bool values_fit(const RawData *raw, const int64_t *e, int erank, const DataColumn *c)
{
    const int64_t *d = raw->dims + 1;
    int drank = raw->rank - 1;
    int64_t total = c->count * c->width, flat[2] = {total, 0}, pair[2] = {c->count, c->width};
    return dims_equal(d, drank, e, erank) || dims_equal(d, drank, flat, 1) ||
           (c->count > 1 && dims_equal(d, drank, pair, 2)) || (total == 1 && drank == 0);
}

/* Class indices: [N] or [N, 1] for a node, [N, T] or [N, T, 1] for a
 * family, of a rank-1 categorical node with more than one class. */
static bool categorical(const Model *m, const DataColumn *c)
{
    const Tensor *t = &m->tensors[c->tensors[0]];
    return t->dist == DIST_CATEGORICAL && ir_shape(&m->g, t->shape)->rank == 1 && c->width > 1;
}

static bool indices_fit(const Model *m, const RawData *raw, const DataColumn *c)
{
    const int64_t *d = raw->dims + 1;
    int drank = raw->rank - 1;
    int64_t one[2] = {c->count, 1};
    return categorical(m, c) && ((c->count == 1 && drank == 0) || dims_equal(d, drank, one, 1) ||
                                 dims_equal(d, drank, one, 2));
}

static const char *dims_str(int64_t n, const int64_t *dims, int rank, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[%lld", (long long)n);
    for (int i = 0; i < rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, ", %lld", (long long)dims[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
    return buf;
}

static bool shape_error(const Model *m, const DataSource *src, const RawData *raw, const DataColumn *c,
                        const int64_t *e, int erank, char *err, size_t errlen)
{
    char got[160], want[160], node[64], target[200], alt[200] = "";
    int64_t n = raw->rank ? raw->dims[0] : 0;
    const Tensor *t = &m->tensors[c->tensors[0]];
    ir_shape_str(ir_shape(&m->g, t->shape), node, sizeof node);
    if (ir_model_find_tensor(m, src->node) < 0)
        snprintf(target, sizeof target, "family '%s' (%d %s nodes : %s)", src->node, c->count, ir_role_name(t->role),
                 node);
    else
        snprintf(target, sizeof target, "%s node '%s' : %s", ir_role_name(t->role), src->node, node);
    if (categorical(m, c)) {
        int64_t one = c->count;
        char idx[96];
        snprintf(alt, sizeof alt, " (one-hot) or %s (class indices)",
                 dims_str(n, &one, erank > 1, idx, sizeof idx));
    }
    if (raw->rank == 0)
        snprintf(got, sizeof got, "[] (no sample dimension)");
    else
        dims_str(raw->dims[0], raw->dims + 1, raw->rank - 1, got, sizeof got);
    snprintf(err, errlen, "%s: tensor '%s'%s has shape %s but %s needs %s%s", src->path, raw->tensor, raw->detail, got,
             target, dims_str(n, e, erank, want, sizeof want), alt);
    return false;
}

/* Stores raw as floats or validated class indices. */
static bool fill_column(const DataSource *src, const RawData *raw, bool indices, DataColumn *c, char *err,
                        size_t errlen)
{
    int64_t n = raw->dims[0], per = indices ? c->count : c->count * c->width;
    if (!indices) {
        c->values = xmalloc(sizeof *c->values * (size_t)(n * per + 1));
        if (raw->f)
            memcpy(c->values, raw->f, sizeof *c->values * (size_t)(n * per));
        else
            for (int64_t i = 0; i < n * per; i++)
                c->values[i] = (float)raw->v[i];
        return true;
    }
    c->classes = xmalloc(sizeof *c->classes * (size_t)(n * per + 1));
    for (int64_t i = 0; i < n * per; i++) {
        double k = raw->f ? raw->f[i] : raw->v[i];
        if (k != floor(k) || k < 0 || k >= (double)c->width) {
            snprintf(err, errlen, "%s: tensor '%s' sample %lld: class index %g is not in 0..%lld", src->path,
                     raw->tensor, (long long)(i / per), k, (long long)c->width - 1);
            return false;
        }
        c->classes[i] = (int32_t)k;
    }
    return true;
}

/* Loads one source into a new column of `out`, checking its shape;
 * *n = its samples. */
static bool load_source(const Model *m, const DataSource *src, Dataset *out, int64_t *n, char *err, size_t errlen)
{
    DataColumn *c = add_column(out, src->node, src->path);
    if (!find_target(m, src, c, err, errlen))
        return false;
    const Tensor *first = &m->tensors[c->tensors[0]];
    c->width = ir_numel(ir_shape(&m->g, first->shape));
    for (int k = 1; k < c->count; k++)
        if (ir_numel(ir_shape(&m->g, m->tensors[c->tensors[k]].shape)) != c->width) {
            char label[1200];
            snprintf(err, errlen, "%s: the elements of family '%s' differ in shape",
                     source_label(src, label, sizeof label), src->node);
            return false;
        }
    RawData raw = {0};
    int64_t e[TENSOR_MAX_RANK + 2];
    int erank = expected_dims(m, c, e);
    bool ok = read_source(src, c->count * c->width, &raw, err, errlen);
    bool indices = ok && raw.rank >= 1 && indices_fit(m, &raw, c);
    if (ok && (raw.rank < 1 || (!indices && !values_fit(&raw, e, erank, c))))
        ok = shape_error(m, src, &raw, c, e, erank, err, errlen);
    if (ok && raw.dims[0] < 1) {
        snprintf(err, errlen, "%s: tensor '%s' has no samples", src->path, raw.tensor);
        ok = false;
    }
    ok = ok && fill_column(src, &raw, indices, c, err, errlen);
    *n = ok ? raw.dims[0] : 0;
    if (!raw.borrowed)
        free(raw.v);
    return ok;
}

/* Every input and observed node bound exactly once; a node without data
 * gets a hint for files (--bind) or arrays. */
static bool check_coverage(const Model *m, const Dataset *d, bool files, char *err, size_t errlen)
{
    int *owner = xmalloc(sizeof *owner * (size_t)(m->n_tensors + 1));
    for (int t = 0; t < m->n_tensors; t++)
        owner[t] = -1;
    bool ok = true;
    for (int i = 0; i < d->n_columns && ok; i++)
        for (int k = 0; k < d->columns[i].count && ok; k++) {
            int t = d->columns[i].tensors[k];
            if (owner[t] >= 0) {
                snprintf(err, errlen, "node '%s' is bound twice (by %s and %s)", m->tensors[t].name,
                         d->columns[owner[t]].source, d->columns[i].source);
                ok = false;
            }
            owner[t] = i;
        }
    for (int t = 0; t < m->n_tensors && ok; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (is_data_role(tensor->role) && owner[t] < 0) {
            const char *name = tensor->family ? tensor->family : tensor->name;
            snprintf(err, errlen, "%s node '%s' of model '%s' has no data (%s %s%s)", ir_role_name(tensor->role),
                     tensor->name, m->name, files ? "add --bind" : "give an array for", name, files ? "=FILE" : "");
            ok = false;
        }
    }
    free(owner);
    return ok;
}

/* Frees the last column (a source that failed to load). */
static void drop_last_column(Dataset *d)
{
    DataColumn *c = &d->columns[--d->n_columns];
    free(c->node);
    free(c->source);
    free(c->tensors);
    free(c->values);
    free(c->classes);
}

bool dataset_add_source(const Model *m, Dataset *d, const DataSource *src, char *err, size_t errlen)
{
    int64_t n = 0;
    bool ok = load_source(m, src, d, &n, err, errlen);
    if (ok && d->n_columns > 1 && n != d->n) {
        snprintf(err, errlen, "%s has %lld samples but %s has %lld (every bound %s needs the same number)",
                 src->path, (long long)n, d->columns[0].source, (long long)d->n, src->values ? "array" : "file");
        ok = false;
    }
    if (!ok) {
        drop_last_column(d);
        return false;
    }
    d->n = n;
    return true;
}

bool dataset_complete(const Model *m, Dataset *d, bool files, char *err, size_t errlen)
{
    if (!check_coverage(m, d, files, err, errlen))
        return false;
    d->label_column = find_label_column(m, d);
    return true;
}

bool dataset_load_sources(const Model *m, const DataSource *src, int n_src, Dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->label_column = -1;
    bool ok = true;
    for (int i = 0; i < n_src && ok; i++)
        ok = dataset_add_source(m, out, &src[i], err, errlen);
    ok = ok && dataset_complete(m, out, n_src == 0 || !src[0].values, err, errlen);
    if (!ok)
        dataset_free(out);
    return ok;
}

/* ---- subsets, batches, labels ---- */

static void *take_rows(const void *src, size_t row_bytes, const int64_t *idx, int64_t n)
{
    if (!src)
        return NULL;
    char *out = xmalloc(row_bytes * (size_t)n + 1);
    for (int64_t i = 0; i < n; i++)
        memcpy(out + row_bytes * (size_t)i, (const char *)src + row_bytes * (size_t)idx[i], row_bytes);
    return out;
}

void dataset_take(const Dataset *src, const int64_t *idx, int64_t n, Dataset *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    out->label_column = src->label_column;
    for (int i = 0; i < src->n_columns; i++) {
        const DataColumn *s = &src->columns[i];
        DataColumn *c = add_column(out, s->node, s->source);
        c->count = s->count;
        c->width = s->width;
        if (s->tensors) {
            c->tensors = xmalloc(sizeof *c->tensors * (size_t)s->count);
            memcpy(c->tensors, s->tensors, sizeof *c->tensors * (size_t)s->count);
        }
        c->values = take_rows(s->values, sizeof(float) * (size_t)(s->count * s->width), idx, n);
        c->classes = take_rows(s->classes, sizeof(int32_t) * (size_t)s->count, idx, n);
    }
}

/* Row k of a batched buffer of `width` elements per sample. */
static void store(Session *s, int buf, int64_t at, const float *src, int64_t width)
{
    if (s->st.f64)
        for (int64_t i = 0; i < width; i++)
            ((double *)s->st.data[buf])[at + i] = src[i];
    else
        memcpy((float *)s->st.data[buf] + at, src, sizeof(float) * (size_t)width);
}

static void store_one_hot(Session *s, int buf, int64_t at, int64_t width, int32_t cls)
{
    size_t elem = s->st.f64 ? sizeof(double) : sizeof(float);
    memset((char *)s->st.data[buf] + elem * (size_t)at, 0, elem * (size_t)width);
    if (s->st.f64)
        ((double *)s->st.data[buf])[at + cls] = 1;
    else
        ((float *)s->st.data[buf])[at + cls] = 1;
}

void dataset_fill(Session *s, const Dataset *d, const int64_t *idx)
{
    session_leaves_changed();
    const Model *m = s->model;
    for (int i = 0; i < d->n_columns; i++) {
        const DataColumn *c = &d->columns[i];
        if (!c->tensors)
            continue;
        for (int k = 0; k < c->count; k++) {
            int buf = m->tensors[c->tensors[k]].buf;
            for (int b = 0; b < s->st.batch; b++) {
                int64_t row = idx[b] * c->count + k;
                if (c->values)
                    store(s, buf, (int64_t)b * c->width, c->values + row * c->width, c->width);
                else
                    store_one_hot(s, buf, (int64_t)b * c->width, c->width, c->classes[row]);
            }
        }
    }
}

int dataset_label(const Dataset *d, int64_t i)
{
    if (d->label_column < 0)
        return -1;
    const DataColumn *c = &d->columns[d->label_column];
    if (c->classes)
        return c->classes[i];
    const float *row = c->values + i * c->width;
    int best = 0;
    for (int k = 1; k < c->width; k++)
        if (row[k] > row[best])
            best = k;
    return best;
}

int64_t dataset_classes(const Dataset *d) { return d->label_column < 0 ? 0 : d->columns[d->label_column].width; }
