/* parallel.c — batch-parallel execution of any engine over a thread pool.
 *
 * A phase runs once per block of PARALLEL_BLOCK samples (the last block may
 * be shorter) on a view of the storage: batched buffers are offset to the
 * block, read-only unbatched buffers are shared, and the unbatched buffers
 * the phase writes (batch-summed parameter gradients, compiled code's
 * unbatched temporaries) are the session's own for block 0 and a private
 * copy for every other block.  Partial sums are then added in block order.
 * The blocks do not depend on the thread count, so results are identical
 * for any --threads.  A phase of a single block runs on the calling thread
 * with the pool's team made ambient, so its large matrix products run in
 * pieces on every thread (gemm.h).  On a block shard (dist.c) the blocks
 * are this process's run of the global batch's blocks, and a phase that
 * sums over the batch hands its blocks' partials to dist_fold_phase, which
 * adds every process's in global block order. */
#include "runtime.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "team.h"

/* Elements per task of the block sums (a chunk that stays in L1 while
 * every block's partial is added to it). */
enum { SUM_CHUNK = 4096 };

typedef struct Job {
    const Pool *pool;
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
    int64_t b0 = (int64_t)k * PARALLEL_BLOCK, n = job->st->batch - b0 < PARALLEL_BLOCK ? job->st->batch - b0 : PARALLEL_BLOCK;
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
                data[b] = (char *)st->data[b] + (size_t)(k * PARALLEL_BLOCK) * (size_t)buffer_len(m, b, 1) * elem(st);
            else if (job->written[b] && k > 0)
                data[b] = scratch_for(pool, k, b, (size_t)buffer_len(m, b, 1) * elem(st) + 1);
            else
                data[b] = st->data[b];
        }
        job->private[k] = data;
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

/* Task i of the block sums: one SUM_CHUNK of one destination, to which
 * blocks 1, 2, ... are added in order (block 0 wrote it in place). */
typedef struct Sum {
    Job *job;
    int *dst;             /* per task: its buffer */
    int64_t *from;        /* per task: its first element */
} Sum;

static void sum_chunk(void *arg, int i)
{
    const Sum *sum = arg;
    const Job *job = sum->job;
    int b = sum->dst[i];
    int64_t at = sum->from[i], n = buffer_len(job->p->model, b, 1) - at;
    n = n < SUM_CHUNK ? n : SUM_CHUNK;
    for (int k = 1; k < job->n_blocks; k++) {
        if (job->st->f64)
            add_f64((double *)job->st->data[b] + at, (const double *)job->private[k][b] + at, n);
        else
            add_f32((float *)job->st->data[b] + at, (const float *)job->private[k][b] + at, n);
    }
}

/* The phase's unbatched destinations ← Σ over blocks, in block order,
 * chunk by chunk across the team. */
static void reduce_blocks(Job *job, const Model *m)
{
    const Phase *ph = &job->p->phases[job->phase];
    int n_tasks = 0, cap = 0;
    Sum sum = {job, NULL, NULL};
    for (int i = 0; i < ph->n_assigns; i++) {
        int b = ph->assigns[i].dst;
        if (m->buffers[b].batched)
            continue;
        for (int64_t at = 0; at < buffer_len(m, b, 1); at += SUM_CHUNK) {
            if (n_tasks == cap) {
                cap = cap ? 2 * cap : 64;
                sum.dst = xrealloc(sum.dst, sizeof *sum.dst * (size_t)cap);
                sum.from = xrealloc(sum.from, sizeof *sum.from * (size_t)cap);
            }
            sum.dst[n_tasks] = b;
            sum.from[n_tasks++] = at;
        }
    }
    team_run(job->pool->team, n_tasks, sum_chunk, &sum);
    free(sum.dst);
    free(sum.from);
}

static void free_views(Job *job)
{
    for (int k = 0; k < job->n_blocks; k++)
        free(job->private[k]);
    free(job->private);
    free(job->written);
}

static bool sums_batch(const Program *p, PhaseId phase)
{
    const Phase *ph = &p->phases[phase];
    for (int i = 0; i < ph->n_assigns; i++)
        if (!p->model->buffers[ph->assigns[i].dst].batched)
            return true;
    return false;
}

/* The whole storage as one block, on the calling thread with the team ambient. */
static bool run_whole(Pool *pool, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    Team *outer = team_set_ambient(pool->team);
    bool ok = pool->inner.run_phase(pool->inner.ctx, p, phase, st, err, errlen);
    team_set_ambient(outer);
    return ok;
}

/* A phase that sums over a batch spread over processes: this process's
 * blocks (none, one, or several), then the fold with every other's. */
static bool run_shard(Pool *pool, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    int n_blocks = (st->batch + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK;
    void **whole[1] = {st->data};
    if (n_blocks <= 1) {
        if (n_blocks == 1 && !run_whole(pool, p, phase, st, err, errlen))
            return false;
        if (dist_fold_phase(st->shard, p, phase, st, whole, n_blocks))
            return true;
        snprintf(err, errlen, "%s", st->shard->comm->error);
        return false;
    }
    Job job = {.pool = pool, .p = p, .phase = phase, .st = st, .n_blocks = n_blocks};
    job.written = written_unbatched(p, phase, st->n_buffers);
    make_views(pool, &job, p->model);
    team_run(pool->team, n_blocks, run_block, &job);
    bool ok = !atomic_load(&job.failed);
    if (!ok)
        snprintf(err, errlen, "%s", job.err);
    else if (!(ok = dist_fold_phase(st->shard, p, phase, st, job.private, n_blocks)))
        snprintf(err, errlen, "%s", st->shard->comm->error);
    free_views(&job);
    return ok;
}

static bool parallel_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    Pool *pool = ctx;
    bool sums = sums_batch(p, phase);
    if (st->shard && st->shard->by_blocks && sums)
        return run_shard(pool, p, phase, st, err, errlen);
    if (st->batch == 0)   /* a shard that holds no samples of this batch */
        return true;
    int n_blocks = (st->batch + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK;
    if (n_blocks <= 1)
        return run_whole(pool, p, phase, st, err, errlen);
    Job job = {.pool = pool, .p = p, .phase = phase, .st = st, .n_blocks = n_blocks};
    job.written = written_unbatched(p, phase, st->n_buffers);
    make_views(pool, &job, p->model);
    team_run(pool->team, n_blocks, run_block, &job);
    bool ok = !atomic_load(&job.failed);
    if (ok && sums)
        reduce_blocks(&job, p->model);
    else if (!ok)
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
