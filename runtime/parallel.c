/* parallel.c — batch-parallel execution of any engine over a thread pool.
 *
 * A phase runs once per block of samples (the last block may be shorter)
 * on a view of the storage: batched buffers are offset to the
 * block, read-only unbatched buffers are shared, and the unbatched buffers
 * the phase writes (batch-summed parameter gradients, compiled code's
 * unbatched temporaries) get a private copy per block.  Partial sums are
 * then added in block order.  The blocks do not depend on the thread
 * count, so results are identical for any --threads.  A phase of a single
 * block runs on the calling thread with the pool's team made ambient, so
 * its large matrix products run in pieces on every thread (gemm.h). */
#include "runtime.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "team.h"

/* Samples per block: a phase that sums over the batch (parameter gradients)
 * takes large blocks, whose products reuse the weights well and whose
 * partial sums are few; a phase that only writes per-sample buffers takes
 * half as many, so that a batch of 64 still spreads over two threads (its
 * products are as fast per row at 32 rows). */
enum { REDUCING_BLOCK = 64, PER_SAMPLE_BLOCK = 32 };

typedef struct Job {
    const Pool *pool;
    int block;            /* samples per block */
    const Program *p;
    PhaseId phase;
    Storage *st;
    int n_blocks;
    bool *written;        /* per buffer: unbatched and written by the phase */
    void ***private;      /* per block: its data pointers (private copies where written) */
    atomic_bool failed;
    char err[512];
} Job;

/* Private copies, reused across calls: slot (block k, buffer b) holds at
 * least cap bytes.  A phase overwrites every element it writes, so the
 * copies need no clearing. */
typedef struct Scratch {
    void *data;
    size_t cap;
} Scratch;

typedef struct Pool {
    Engine inner;
    Team *team;
    Scratch *scratch;     /* max_blocks × max_buffers */
    int max_blocks, max_buffers;
} Pool;

static size_t elem(const Storage *st) { return st->f64 ? sizeof(double) : sizeof(float); }

static int64_t buffer_len(const Model *m, int b, int64_t batch)
{
    const Buffer *buf = &m->buffers[b];
    return ir_numel(ir_shape(&m->g, buf->shape)) * (buf->batched ? batch : 1);
}

/* One block, as a team task. */
static void run_block(void *arg, int k)
{
    Job *job = arg;
    if (atomic_load(&job->failed))
        return;
    int64_t b0 = (int64_t)k * job->block, n = job->st->batch - b0 < job->block ? job->st->batch - b0 : job->block;
    Storage view = {.batch = (int)n, .f64 = job->st->f64, .data = job->private[k], .n_buffers = job->st->n_buffers};
    char err[512];
    const Engine *inner = &job->pool->inner;
    if (!inner->run_phase(inner->ctx, job->p, job->phase, &view, err, sizeof err) && !atomic_exchange(&job->failed, true))
        snprintf(job->err, sizeof job->err, "%s", err);
}

/* Which unbatched buffers the phase writes: its destinations and, for
 * compiled code, every unbatched temporary. */
static bool *written_unbatched(const Program *p, PhaseId phase, int n_buffers)
{
    const Model *m = p->model;
    bool *w = xcalloc((size_t)n_buffers + 1, 1);
    const Phase *ph = &p->phases[phase];
    for (int i = 0; i < ph->n_assigns; i++)
        w[ph->assigns[i].dst] = !m->buffers[ph->assigns[i].dst].batched;
    for (int b = 0; b < n_buffers; b++)
        if (m->buffers[b].kind == BUF_TEMP && !m->buffers[b].batched)
            w[b] = true;
    return w;
}

static void *scratch_for(Pool *pool, int k, int b, size_t bytes)
{
    Scratch *slot = &pool->scratch[(size_t)k * (size_t)pool->max_buffers + (size_t)b];
    if (slot->cap < bytes) {
        free(slot->data);
        slot->data = xmalloc(bytes);
        slot->cap = bytes;
    }
    return slot->data;
}

static void reserve_scratch(Pool *pool, int n_blocks, int n_buffers)
{
    if (n_blocks <= pool->max_blocks && n_buffers <= pool->max_buffers)
        return;
    int blocks = n_blocks > pool->max_blocks ? n_blocks : pool->max_blocks;
    int buffers = n_buffers > pool->max_buffers ? n_buffers : pool->max_buffers;
    Scratch *grown = xcalloc((size_t)blocks * (size_t)buffers, sizeof *grown);
    for (int k = 0; k < pool->max_blocks; k++)
        for (int b = 0; b < pool->max_buffers; b++)
            grown[(size_t)k * (size_t)buffers + (size_t)b] = pool->scratch[(size_t)k * (size_t)pool->max_buffers + (size_t)b];
    free(pool->scratch);
    pool->scratch = grown;
    pool->max_blocks = blocks;
    pool->max_buffers = buffers;
}

static void make_views(Pool *pool, Job *job, const Model *m)
{
    Storage *st = job->st;
    reserve_scratch(pool, job->n_blocks, st->n_buffers);
    job->private = xcalloc((size_t)job->n_blocks, sizeof *job->private);
    for (int k = 0; k < job->n_blocks; k++) {
        void **data = xmalloc(sizeof *data * (size_t)(st->n_buffers + 1));
        for (int b = 0; b < st->n_buffers; b++) {
            if (m->buffers[b].batched)
                data[b] = (char *)st->data[b] + (size_t)(k * job->block) * (size_t)buffer_len(m, b, 1) * elem(st);
            else if (job->written[b])
                data[b] = scratch_for(pool, k, b, (size_t)buffer_len(m, b, 1) * elem(st) + 1);
            else
                data[b] = st->data[b];
        }
        job->private[k] = data;
    }
}

/* The phase's unbatched destinations ← Σ over blocks, in block order. */
static void reduce_blocks(Job *job, const Model *m)
{
    Storage *st = job->st;
    const Phase *ph = &job->p->phases[job->phase];
    for (int i = 0; i < ph->n_assigns; i++) {
        int b = ph->assigns[i].dst;
        if (m->buffers[b].batched)
            continue;
        int64_t n = buffer_len(m, b, 1);
        if (st->f64) {
            double *out = st->data[b];
            memcpy(out, job->private[0][b], sizeof *out * (size_t)n);
            for (int k = 1; k < job->n_blocks; k++) {
                const double *part = job->private[k][b];
                for (int64_t e = 0; e < n; e++)
                    out[e] += part[e];
            }
        } else {
            float *out = st->data[b];
            memcpy(out, job->private[0][b], sizeof *out * (size_t)n);
            for (int k = 1; k < job->n_blocks; k++) {
                const float *part = job->private[k][b];
                for (int64_t e = 0; e < n; e++)
                    out[e] += part[e];
            }
        }
    }
}

static void free_views(Job *job)
{
    for (int k = 0; k < job->n_blocks; k++)
        free(job->private[k]);
    free(job->private);
    free(job->written);
}

static bool parallel_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    Pool *pool = ctx;
    int block = REDUCING_BLOCK;
    const Phase *ph = &p->phases[phase];
    bool reduces = false;
    for (int i = 0; i < ph->n_assigns; i++)
        reduces |= !p->model->buffers[ph->assigns[i].dst].batched;
    if (!reduces)
        block = PER_SAMPLE_BLOCK;
    int n_blocks = (st->batch + block - 1) / block;
    if (n_blocks <= 1) {
        Team *outer = team_set_ambient(pool->team);
        bool ok = pool->inner.run_phase(pool->inner.ctx, p, phase, st, err, errlen);
        team_set_ambient(outer);
        return ok;
    }
    const Model *m = p->model;
    Job job = {.pool = pool, .block = block, .p = p, .phase = phase, .st = st, .n_blocks = n_blocks};
    job.written = written_unbatched(p, phase, st->n_buffers);
    make_views(pool, &job, m);
    team_run(pool->team, n_blocks, run_block, &job);
    bool ok = !atomic_load(&job.failed);
    if (ok)
        reduce_blocks(&job, m);
    else
        snprintf(err, errlen, "%s", job.err);
    free_views(&job);
    return ok;
}

static bool parallel_prepare(void *ctx, Program *p, bool f64, char *err, size_t errlen)
{
    Pool *pool = ctx;
    return !pool->inner.prepare || pool->inner.prepare(pool->inner.ctx, p, f64, err, errlen);
}

Pool *pool_new(Engine inner, int n_threads)
{
    Pool *pool = xcalloc(1, sizeof *pool);
    pool->inner = inner;
    pool->team = team_new(n_threads);
    return pool;
}

void pool_free(Pool *pool)
{
    if (!pool)
        return;
    team_free(pool->team);
    for (int i = 0; i < pool->max_blocks * pool->max_buffers; i++)
        free(pool->scratch[i].data);
    free(pool->scratch);
    free(pool);
}

Engine engine_parallel(Pool *pool)
{
    return (Engine){pool->inner.name, parallel_prepare, parallel_run, pool, pool->team};
}
