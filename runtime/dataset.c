/* dataset.c — the default data set (Fashion-MNIST from Debian's
 * dataset-fashion-mnist package, IDX gzip files) and its binding to a
 * model's nodes.
 *
 * Images are scaled to [0, 1]; labels stay class indices and are one-hot
 * encoded into the categorical node when a batch is filled. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

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

bool dataset_fashion_mnist(bool train, Dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *dir = data_dir();
    HostTensor images = {0}, labels = {0};
    bool ok = load_idx(dir, train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz", &images, err, errlen) &&
              load_idx(dir, train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz", &labels, err, errlen);
    if (ok && (images.rank != 3 || labels.rank != 1 || images.dims[0] != labels.dims[0] || images.dtype != DT_U8 ||
               labels.dtype != DT_U8)) {
        snprintf(err, errlen, "%s: unexpected Fashion-MNIST layout (want u8 images [N, 28, 28] and u8 labels [N])", dir);
        ok = false;
    }
    if (ok) {
        out->n = images.dims[0];
        out->features = images.dims[1] * images.dims[2];
        out->x = xmalloc(sizeof *out->x * (size_t)(out->n * out->features));
        out->labels = xmalloc(sizeof *out->labels * (size_t)out->n);
        const uint8_t *px = images.data, *lb = labels.data;
        for (int64_t i = 0; i < out->n * out->features; i++)
            out->x[i] = px[i] / 255.0f;
        out->n_classes = 10;
        for (int64_t i = 0; i < out->n; i++) {
            out->labels[i] = lb[i];
            if (lb[i] >= 10) {
                snprintf(err, errlen, "%s: label %d of sample %lld is not a class in 0..9", dir, lb[i], (long long)i);
                ok = false;
                break;
            }
        }
    }
    host_tensor_free(&images);
    host_tensor_free(&labels);
    if (!ok)
        dataset_free(out);
    return ok;
}

void dataset_free(Dataset *d)
{
    free(d->x);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

bool dataset_bind(const Model *m, const Dataset *d, DataBinding *b, char *err, size_t errlen)
{
    b->image_tensor = b->label_tensor = -1;
    int observed_image = -1;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        int64_t numel = ir_numel(ir_shape(&m->g, tensor->shape));
        if (tensor->role == ROLE_INPUT && numel == d->features && b->image_tensor < 0)
            b->image_tensor = t;
        if (tensor->role == ROLE_OBSERVED && tensor->dist != DIST_CATEGORICAL && numel == d->features)
            observed_image = t;
        if (tensor->role == ROLE_OBSERVED && tensor->dist == DIST_CATEGORICAL && numel == d->n_classes)
            b->label_tensor = t;
    }
    if (b->image_tensor < 0)
        b->image_tensor = observed_image;
    if (b->image_tensor < 0) {
        snprintf(err, errlen,
                 "model '%s' has no input or observed node with %lld elements to receive Fashion-MNIST images",
                 m->name, (long long)d->features);
        return false;
    }
    return true;
}

void dataset_fill(Session *s, const Dataset *d, const DataBinding *b, const int64_t *idx)
{
    const Model *m = s->model;
    int batch = s->st.batch;
    int img = m->tensors[b->image_tensor].buf;
    for (int k = 0; k < batch; k++) {
        const float *src = d->x + idx[k] * d->features;
        if (s->st.f64)
            for (int64_t i = 0; i < d->features; i++)
                ((double *)s->st.data[img])[k * d->features + i] = src[i];
        else
            memcpy((float *)s->st.data[img] + k * d->features, src, sizeof(float) * (size_t)d->features);
    }
    if (b->label_tensor < 0)
        return;
    int lab = m->tensors[b->label_tensor].buf;
    size_t elem = s->st.f64 ? sizeof(double) : sizeof(float);
    memset(s->st.data[lab], 0, elem * (size_t)(batch * d->n_classes));
    for (int k = 0; k < batch; k++) {
        int64_t at = (int64_t)k * d->n_classes + d->labels[idx[k]];
        if (s->st.f64)
            ((double *)s->st.data[lab])[at] = 1;
        else
            ((float *)s->st.data[lab])[at] = 1;
    }
}
