/* dist.c — data parallelism over the processes ("ranks") of a Comm: which
 * samples of a batch each rank holds, the batch sums added across ranks in
 * a fixed order, and the small agreements a distributed run needs (the
 * global mean energy, summed counts, equal model hashes, rank 0's
 * parameters everywhere).
 *
 * Invariant: every result is the same on every rank and depends only on
 * the global batch, never on the number of ranks: a block shard's parts are
 * the PARALLEL_BLOCK blocks one process would make, and every sum over
 * parts or samples is added in global order, in the type one process adds
 * in.  The Comm does the moving; nothing here sums in arrival order. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The Comm's exchange and gather, timed and counted. */
static bool timed_exchange(Comm *c, const void *send, const int64_t *send_bytes, void *recv, const int64_t *recv_bytes)
{
    double start = now();
    bool ok = c->exchange(c, send, send_bytes, recv, recv_bytes);
    c->seconds += now() - start;
    for (int j = 0; j < c->size; j++)
        c->bytes_sent += j == c->rank ? 0 : send_bytes[j];
    return ok;
}

static bool timed_gather(Comm *c, const void *mine, void *all, const int64_t *bytes)
{
    double start = now();
    bool ok = c->gather(c, mine, all, bytes);
    c->seconds += now() - start;
    c->bytes_sent += bytes[c->rank] * (c->size - 1);
    return ok;
}

static Shard *shard_alloc(Comm *c, int batch)
{
    Shard *sh = xcalloc(1, sizeof *sh);
    sh->comm = c;
    sh->batch = batch;
    sh->counts = xcalloc((size_t)c->size, sizeof *sh->counts);
    sh->parts = xcalloc((size_t)c->size, sizeof *sh->parts);
    return sh;
}

/* This rank's offset and count from the per-rank counts. */
static void place(Shard *sh)
{
    for (int r = 0; r < sh->comm->rank; r++)
        sh->offset += sh->counts[r];
    sh->count = sh->counts[sh->comm->rank];
}

Shard *dist_shard_blocks(Comm *c, int batch)
{
    Shard *sh = shard_alloc(c, batch);
    sh->by_blocks = true;
    int64_t n_blocks = (batch + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK, p = c->size;
    for (int r = 0; r < c->size; r++) {
        int64_t first = (n_blocks * r + p - 1) / p, last = (n_blocks * (r + 1) + p - 1) / p;
        int64_t lo = first * PARALLEL_BLOCK, hi = last * PARALLEL_BLOCK < batch ? last * PARALLEL_BLOCK : batch;
        sh->parts[r] = (int)(last - first);
        sh->counts[r] = hi > lo ? (int)(hi - lo) : 0;
    }
    place(sh);
    return sh;
}

Shard *dist_shard_ranks(Comm *c, int local)
{
    int64_t *bytes = xmalloc(sizeof *bytes * (size_t)c->size), *all = xmalloc(sizeof *all * (size_t)c->size);
    for (int r = 0; r < c->size; r++)
        bytes[r] = sizeof *all;
    int64_t mine = local;
    bool ok = timed_gather(c, &mine, all, bytes);
    Shard *sh = NULL;
    if (ok) {
        int64_t batch = 0;
        for (int r = 0; r < c->size; r++)
            batch += all[r];
        sh = shard_alloc(c, (int)batch);
        for (int r = 0; r < c->size; r++) {
            sh->counts[r] = (int)all[r];
            sh->parts[r] = 1;
        }
        place(sh);
    }
    free(bytes);
    free(all);
    return sh;
}

void dist_shard_free(Shard *sh)
{
    if (!sh)
        return;
    if (sh->owns_comm)
        sh->comm->free(sh->comm);
    free(sh->counts);
    free(sh->parts);
    free(sh->scratch);
    free(sh);
}

static void *scratch(Shard *sh, size_t bytes)
{
    if (sh->scratch_cap < bytes) {
        free(sh->scratch);
        sh->scratch = xmalloc(bytes);
        sh->scratch_cap = bytes;
    }
    return sh->scratch;
}

/* The sums one fold adds: the phase's unbatched destinations, laid end to
 * end as one vector of `total` elements. */
typedef struct Sums {
    int n_bufs;
    int *bufs;
    int64_t *lens;
    int64_t total;
    size_t elem;
} Sums;

static Sums phase_sums(const Program *p, PhaseId phase, const Storage *st)
{
    const Model *m = p->model;
    const Phase *ph = &p->phases[phase];
    Sums s = {.bufs = xmalloc(sizeof(int) * (size_t)(ph->n_assigns + 1)),
              .lens = xmalloc(sizeof(int64_t) * (size_t)(ph->n_assigns + 1)),
              .elem = st->f64 ? sizeof(double) : sizeof(float)};
    for (int i = 0; i < ph->n_assigns; i++) {
        const Buffer *b = &m->buffers[ph->assigns[i].dst];
        if (b->batched)
            continue;
        s.bufs[s.n_bufs] = ph->assigns[i].dst;
        s.lens[s.n_bufs] = ir_numel(ir_shape(&m->g, b->shape));
        s.total += s.lens[s.n_bufs++];
    }
    return s;
}

/* Elements [lo, hi) of the vector that bufs[i] of `data` make end to end:
 * copied out to `flat` (out) or in from it. */
static void copy_range(const Sums *s, void *const *data, int64_t lo, int64_t hi, char *flat, bool out)
{
    int64_t start = 0;
    for (int i = 0; i < s->n_bufs && start < hi; start += s->lens[i], i++) {
        int64_t a = lo > start ? lo - start : 0, b = hi - start < s->lens[i] ? hi - start : s->lens[i];
        if (a >= b)
            continue;
        char *buf = (char *)data[s->bufs[i]] + (size_t)a * s->elem;
        size_t n = (size_t)(b - a) * s->elem;
        memcpy(out ? flat : buf, out ? buf : flat, n);
        flat += n;
    }
}

/* acc ← acc + part, element by element, in the storage's type. */
static void add_f32(float *restrict acc, const float *restrict part, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        acc[e] += part[e];
}

static void add_f64(double *restrict acc, const double *restrict part, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        acc[e] += part[e];
}

bool dist_fold_phase(Shard *sh, const Program *p, PhaseId phase, Storage *st, void **const *parts, int n_parts)
{
    Sums s = phase_sums(p, phase, st);
    Comm *c = sh->comm;
    int ranks = c->size, me = c->rank;
    if (!s.n_bufs || c->failed) {
        free(s.bufs);
        free(s.lens);
        return !c->failed;
    }
    int all_parts = 0;
    for (int r = 0; r < ranks; r++)
        all_parts += sh->parts[r];
    /* Rank j adds slice [total·j/P, total·(j+1)/P) of every part. */
    int64_t *lo = xmalloc(sizeof *lo * (size_t)(ranks + 1));
    for (int j = 0; j <= ranks; j++)
        lo[j] = s.total * j / ranks;
    int64_t mine = lo[me + 1] - lo[me];
    int64_t *send_bytes = xmalloc(sizeof(int64_t) * (size_t)ranks), *recv_bytes = xmalloc(sizeof(int64_t) * (size_t)ranks);
    int64_t *slice_bytes = xmalloc(sizeof(int64_t) * (size_t)ranks);
    for (int j = 0; j < ranks; j++) {
        send_bytes[j] = (int64_t)n_parts * (lo[j + 1] - lo[j]) * (int64_t)s.elem;
        recv_bytes[j] = (int64_t)sh->parts[j] * mine * (int64_t)s.elem;
        slice_bytes[j] = (lo[j + 1] - lo[j]) * (int64_t)s.elem;
    }
    size_t send_size = (size_t)n_parts * (size_t)s.total * s.elem, recv_size = (size_t)all_parts * (size_t)mine * s.elem;
    char *send = scratch(sh, send_size + recv_size + (size_t)s.total * s.elem + 1);
    char *recv = send + send_size, *whole = recv + recv_size;
    char *at = send;
    for (int j = 0; j < ranks; j++)
        for (int k = 0; k < n_parts; k++) {
            copy_range(&s, (void *const *)parts[k], lo[j], lo[j + 1], at, true);
            at += (size_t)(lo[j + 1] - lo[j]) * s.elem;
        }
    bool ok = timed_exchange(c, send, send_bytes, recv, recv_bytes);
    /* recv holds this slice of every part in global part order: rank
     * order, and each rank's parts in order.  Part 0 starts the sum. */
    for (int k = 1; ok && k < all_parts; k++) {
        char *part = recv + (size_t)k * (size_t)mine * s.elem;
        if (st->f64)
            add_f64((double *)recv, (const double *)part, mine);
        else
            add_f32((float *)recv, (const float *)part, mine);
    }
    ok = ok && timed_gather(c, recv, whole, slice_bytes);
    if (ok)
        copy_range(&s, st->data, 0, s.total, whole, false);
    free(lo);
    free(send_bytes);
    free(recv_bytes);
    free(slice_bytes);
    free(s.bufs);
    free(s.lens);
    return ok;
}

bool dist_mean(Shard *sh, const double *mine, double *out)
{
    Comm *c = sh->comm;
    int64_t *bytes = xmalloc(sizeof *bytes * (size_t)c->size);
    for (int r = 0; r < c->size; r++)
        bytes[r] = (int64_t)sh->counts[r] * (int64_t)sizeof(double);
    double *all = xmalloc(sizeof *all * (size_t)(sh->batch + 1));
    bool ok = timed_gather(c, mine, all, bytes);
    double total = 0;
    for (int b = 0; ok && b < sh->batch; b++)
        total += all[b];
    *out = total / sh->batch;
    free(all);
    free(bytes);
    return ok;
}

bool dist_sum(Comm *c, int64_t *values, int n) { return !c->failed && c->sum(c, values, n); }

bool dist_all_ok(Comm *c, bool ok)
{
    int64_t failed = !ok;
    return dist_sum(c, &failed, 1) && failed == 0;
}

bool dist_same(Comm *c, uint64_t value, const char *what, char *err, size_t errlen)
{
    int64_t *bytes = xmalloc(sizeof *bytes * (size_t)c->size);
    uint64_t *all = xmalloc(sizeof *all * (size_t)c->size);
    for (int r = 0; r < c->size; r++)
        bytes[r] = sizeof *all;
    bool ok = !c->failed && timed_gather(c, &value, all, bytes);
    if (!ok)
        snprintf(err, errlen, "%s", c->error);
    for (int r = 1; ok && r < c->size; r++)
        if (all[r] != all[0]) {
            snprintf(err, errlen, "rank %d has %s %016llx, rank 0 has %016llx: every rank must run the same command "
                     "on the same model and data", r, what, (unsigned long long)all[r], (unsigned long long)all[0]);
            ok = false;
        }
    free(all);
    free(bytes);
    return ok;
}

bool dist_broadcast_params(Comm *c, Session *s)
{
    bool ok = !c->failed;
    for (int b = 0; ok && b < s->st.n_buffers; b++) {
        BufKind k = s->model->buffers[b].kind;
        if (k == BUF_PARAM || k == BUF_CONST)
            ok = c->broadcast(c, s->st.data[b],
                              session_buffer_len(s, b) * (int64_t)(s->st.f64 ? sizeof(double) : sizeof(float)));
    }
    session_leaves_changed();
    return ok;
}
