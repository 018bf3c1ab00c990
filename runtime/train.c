/* train.c — the training and evaluation loops over a data set.
 *
 * One session per distinct batch size and clamp mode (full batches, the
 * last partial batch, and the prediction sessions with observed nodes
 * free), all sharing the first session's parameter storage, so one
 * optimizer step updates every view.  A SIGINT stops after the current
 * batch, saves a checkpoint and returns 130.
 *
 * Data: Fashion-MNIST (train split, test split) by default, or the
 * `--bind` sources, which have no test split.  `--val N` holds out N
 * training samples, chosen by a shuffle seeded with the train seed: with
 * bound data they are the evaluation set (the log's test_accuracy column);
 * with Fashion-MNIST they are scored beside the test split (an extra
 * val_accuracy column).
 *
 * Across ranks (opt->comm): every rank loads the same data and shuffles it
 * the same way; each session is a block shard of its global batch, so a
 * rank binds and relaxes only its blocks' samples, and the energy, the
 * gradients and the counts are the global batch's.  Errors at start-up are
 * agreed on (every rank stops); a rank that fails alone later ends the
 * job.
 *
 * train_session and eval_session run the same loops for the C API: the
 * caller's data (borrowed, never freed here), the caller's session
 * (whose parameter storage every session here shares) and optimizer, and
 * TrainHooks in place of the terminal, the log and the checkpoints. */
#include "runtime.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { interrupted = 1; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct Trainer {
    Diag *diag;
    Model *m;
    TrainConfig cfg;
    const TrainOptions *opt;
    Engine engine;
    Dataset train, test, val;  /* test, val: n = 0 when absent */
    Session *sessions[4];     /* [clamped full, clamped tail, free full, free tail] */
    Optimizer *optim;
    Comm *comm;               /* NULL: this process alone */
    bool lead;                /* rank 0 (or alone): prints, logs, saves */
    Session *base;            /* train_session: the caller's session, whose params sessions[0] shares */
    bool borrowed_train;      /* train (and val) belong to the caller */
    bool borrowed_optim;
    bool diverged;            /* the failure was non-finite values */
    char err[512];
} Trainer;

/* "fepc: error: ..." on stderr, naming the rank unless it is rank 0. */
static void report(const Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const Trainer *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->lead)
        fprintf(stderr, "fepc: error: %s\n", msg);
    else
        fprintf(stderr, "fepc: error: rank %d: %s\n", t->comm->rank, msg);
}

/* At a point every rank reaches: true when every rank got there with ok.
 * A rank that failed has reported why; rank 0 says when only others did. */
static bool agree(Trainer *t, bool ok)
{
    if (!t->comm)
        return ok;
    bool all = dist_all_ok(t->comm, ok);
    if (!all && ok && t->lead)
        fprintf(stderr, "fepc: error: %s\n", t->comm->failed ? t->comm->error : "another rank failed (its message is above)");
    return all;
}

/* After an error only this rank may have hit (the others wait in a
 * collective): reports it and ends the job.  Alone: returns 1. */
static int fail_alone(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_alone(Trainer *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(t, "%s", msg);
    if (t->comm) {
        fflush(NULL);
        t->comm->abort(t->comm, 1);
    }
    return 1;
}

static int global_batch(const Session *s) { return s->st.shard ? s->st.shard->batch : s->st.batch; }

/* This rank's samples of a batch whose samples are idx[0..batch). */
static const int64_t *mine(const Session *s, const int64_t *idx)
{
    return s->st.shard ? idx + s->st.shard->offset : idx;
}

/* The session for a (global) batch of `batch` samples, observed nodes
 * clamped or free; across ranks, a block shard holding this rank's part. */
static Session *session_for(Trainer *t, int batch, bool clamped)
{
    int slot = (clamped ? 0 : 2) + (batch != t->cfg.batch);
    Session *s = t->sessions[slot];
    if (s && global_batch(s) == batch)
        return s;
    session_free(s);
    Shard *sh = t->comm ? dist_shard_blocks(t->comm, batch) : NULL;
    s = session_new(t->diag, t->m, &t->cfg, sh ? sh->count : batch, t->opt ? t->opt->f64 : false, clamped,
                    t->engine, t->err, sizeof t->err);
    if (s)
        session_set_shard(s, sh);
    else
        dist_shard_free(sh);
    if (s && slot != 0)
        session_share_params(s, t->sessions[0]);
    else if (s && t->base)
        session_share_params(s, t->base);
    t->sessions[slot] = s;
    return s;
}

static void trainer_free(Trainer *t)
{
    for (int i = 3; i >= 0; i--)
        session_free(t->sessions[i]);
    if (!t->borrowed_optim)
        optim_free(t->optim);
    if (!t->borrowed_train) {
        dataset_free(&t->train);
        dataset_free(&t->val);
    }
    dataset_free(&t->test);
}

static int argmax(const double *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Correct predictions in the batch: argmax of the categorical node's
 * prediction, read from its value (free) or value − error (clamped). */
static int count_correct(Trainer *t, Session *s, const Dataset *d, const int64_t *idx, bool clamped)
{
    if (d->label_column < 0)
        return 0;
    const Tensor *y = &t->m->tensors[d->columns[d->label_column].tensors[0]];
    int classes = (int)dataset_classes(d);
    int64_t n = session_buffer_len(s, y->buf);
    double *value = xmalloc(sizeof *value * (size_t)n), *error = xmalloc(sizeof *error * (size_t)n);
    session_get(s, y->buf, value);
    if (clamped) {
        char name[300];
        snprintf(name, sizeof name, "error.%s", y->name);
        session_get(s, ir_model_find_buffer(t->m, name), error);
        for (int64_t i = 0; i < n; i++)
            value[i] -= error[i];
    }
    int correct = 0;
    for (int b = 0; b < s->st.batch; b++)
        correct += argmax(value + (int64_t)b * classes, classes) == dataset_label(d, idx[b]);
    free(value);
    free(error);
    return correct;
}

/* Accuracy of predictions with observed nodes free, over a data set (the
 * last batch partial); NaN with t->err on failure. */
static double accuracy(Trainer *t, const Dataset *d)
{
    int64_t correct = 0;
    int64_t *idx = xmalloc(sizeof *idx * (size_t)t->cfg.batch);
    for (int64_t at = 0; at < d->n;) {
        int count = (int)(d->n - at < t->cfg.batch ? d->n - at : t->cfg.batch);
        Session *s = session_for(t, count, false);
        if (!s) {
            free(idx);
            return NAN;
        }
        for (int k = 0; k < count; k++)
            idx[k] = at + k;
        dataset_fill(s, d, mine(s, idx));
        if (session_relax(s, t->cfg.steps, t->cfg.step_size, NULL) < 0) {
            snprintf(t->err, sizeof t->err, "%s", s->error);
            free(idx);
            return NAN;
        }
        correct += count_correct(t, s, d, mine(s, idx), false);
        at += count;
    }
    free(idx);
    if (t->comm && !dist_sum(t->comm, &correct, 1)) {
        snprintf(t->err, sizeof t->err, "%s", t->comm->error);
        return NAN;
    }
    return (double)correct / (double)d->n;
}

static void shuffle(int64_t *order, int64_t n, Rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(rng) % (uint64_t)(i + 1));
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* Reports progress (hooks, or rank 0's terminal bar); false: the hooks ask to stop. */
static bool progress(const Trainer *t, int epoch, int64_t done, int64_t total, double energy)
{
    const TrainHooks *h = t->opt->hooks;
    if (h)
        return !h->batch || h->batch(h->ctx, epoch, done, total, energy);
    if (!t->opt->progress || !t->lead)
        return true;
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r  epoch %d/%d [", epoch, t->cfg.epochs);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%%  energy %.4f ", (int)(100 * done / (total ? total : 1)), energy);
    fflush(stderr);
    return true;
}

/* Training accuracy scores the feedforward prediction: after relaxation
 * a clamped label has pulled the latents toward itself (pc, ipc), so only
 * rules whose predictions stay frozen at the forward pass (fpa, bp) can be
 * scored after relaxing. */
static bool frozen_predictions(const Session *s) { return s->rule.kind == RULE_FPA || s->rule.kind == RULE_BP; }

static bool feedforward_correct(Trainer *t, Session *s, const int64_t *idx, int *correct)
{
    static const PhaseId feedforward[] = {PHASE_INIT, PHASE_ERRORS};
    for (int i = 0; i < 2; i++)
        if (!session_run_phase(s, feedforward[i])) {
            snprintf(t->err, sizeof t->err, "%s", s->error);
            return false;
        }
    *correct = count_correct(t, s, &t->train, idx, true);
    return true;
}

/* One batch (its samples idx[0..batch)): bind, relax, learn.  Returns
 * false with t->err on failure; *diverged tells a failure every rank sees
 * (the global energy) from one only this rank may have hit. */
static bool train_batch(Trainer *t, Session *s, const int64_t *idx, double *energy, int *correct, bool *diverged)
{
    idx = mine(s, idx);
    *diverged = false;
    dataset_fill(s, &t->train, idx);
    if (!frozen_predictions(s) && !feedforward_correct(t, s, idx, correct))
        return false;
    Optimizer *each = s->program->learn_each_step ? t->optim : NULL;
    if (session_relax(s, t->cfg.steps, t->cfg.step_size, each) < 0) {
        snprintf(t->err, sizeof t->err, "%s", s->error);
        return false;
    }
    if (!each) {
        if (!session_param_grads(s)) {
            snprintf(t->err, sizeof t->err, "%s", s->error);
            return false;
        }
        optim_step(t->optim, s);
    }
    *energy = session_energy(s);
    /* Non-finite values anywhere reach the energy (this batch or the next,
     * through the updated parameters), so only then search for the culprit. */
    if (!isfinite(*energy)) {
        if (t->comm && t->comm->failed) {
            snprintf(t->err, sizeof t->err, "%s", t->comm->error);
            return false;
        }
        /* Across ranks the culprit may lie in another rank's samples. */
        const char *bad = t->comm ? NULL : session_find_nonfinite(s);
        snprintf(t->err, sizeof t->err, "training diverged: non-finite values in '%s'", bad ? bad : "energy");
        *diverged = t->diverged = true;
        return false;
    }
    if (frozen_predictions(s))
        *correct = count_correct(t, s, &t->train, idx, true);
    return true;
}

static char *fmt(const char *f, double x)
{
    char *s = xmalloc(64);
    snprintf(s, 64, f, x);
    return s;
}

static bool checkpoint(Trainer *t, const char *path, int epoch)
{
    const char *meta[8] = {"model", t->m->name, "rule", ir_rule_name(t->cfg.rule.kind), "epoch", NULL,
                           "model_hash", t->opt->model_hash ? t->opt->model_hash : ""};
    char *e = fmt("%.0f", epoch);
    meta[5] = e;
    bool ok = save_params(t->sessions[0], path, meta, 4, t->err, sizeof t->err);
    free(e);
    return ok;
}

/* The log's columns: SPEC §7's five, plus val_accuracy when Fashion-MNIST
 * has a validation split beside its test split. */
enum { LOG_MAX_COLS = 6 };
static int log_width(const Trainer *t) { return t->val.n && t->opt->n_sources == 0 ? 6 : 5; }

/* Rewrites the whole log each epoch (atomically), so it is always a
 * complete CSV even if training is killed. */
static bool write_log(Trainer *t, double *rows, int n_rows)
{
    static char *cols[] = {"epoch", "energy", "train_accuracy", "test_accuracy", "seconds", "val_accuracy"};
    return csv_save(t->opt->log_path, cols, log_width(t), rows, n_rows, t->err, sizeof t->err);
}

static bool clamped_energy(Trainer *t, const Dataset *d, double *out);

/* The epoch's report to the hooks, with the validation energy as well;
 * *stop when they ask to stop.  False with t->err when evaluation fails. */
static bool report_epoch(Trainer *t, EpochReport *r, bool *stop)
{
    const TrainHooks *h = t->opt->hooks;
    if (t->val.n && !clamped_energy(t, &t->val, &r->val_energy))
        return false;
    *stop = h->epoch && !h->epoch(h->ctx, r);
    return true;
}

/* After an epoch: scores the held-out sets, fills its log row
 * (test_accuracy: the test split, or with bound data the validation
 * samples) and prints the epoch line (rank 0; `extra` ends it) or reports
 * to the hooks, which may set *stop.  False with t->err when evaluation
 * fails. */
static bool end_epoch(Trainer *t, int epoch, double energy, double train_acc, double seconds, const char *extra,
                      double *row, bool *stop)
{
    bool has_labels = t->train.label_column >= 0;
    double test_acc = NAN, val_acc = NAN;
    if (has_labels && t->test.n && isnan(test_acc = accuracy(t, &t->test)))
        return false;
    if (has_labels && t->val.n && isnan(val_acc = accuracy(t, &t->val)))
        return false;
    row[0] = epoch, row[1] = energy, row[2] = train_acc, row[3] = t->test.n ? test_acc : val_acc, row[4] = seconds;
    if (log_width(t) > 5)
        row[5] = val_acc;
    if (t->opt->hooks) {
        EpochReport r = {.epoch = epoch, .epochs = t->cfg.epochs, .energy = energy, .train_accuracy = train_acc,
                         .test_accuracy = test_acc, .val_accuracy = val_acc, .val_energy = NAN, .seconds = seconds};
        return report_epoch(t, &r, stop);
    }
    if (!t->lead)
        return true;
    if (t->opt->progress)
        fputc('\r', stderr);
    printf("epoch %d/%d  energy %.5f", epoch, t->cfg.epochs, energy);
    if (has_labels) {
        printf("  train_accuracy %.4f", train_acc);
        if (t->val.n)
            printf("  val_accuracy %.4f", val_acc);
        if (t->test.n)
            printf("  test_accuracy %.4f", test_acc);
    }
    printf("  %.1fs%s\n", seconds, extra);
    fflush(stdout);
    return true;
}

/* The learning-rate multiplier at optimizer step `step` of `total`:
 * linear warmup, then constant or cosine decay to zero. */
static double lr_scale(const TrainConfig *c, int64_t step, int64_t total)
{
    if (step < c->warmup)
        return (double)(step + 1) / (double)c->warmup;
    if (c->schedule == SCHEDULE_COSINE && total > c->warmup)
        return 0.5 * (1 + cos(3.14159265358979323846 * (double)(step - c->warmup) / (double)(total - c->warmup)));
    return 1;
}

/* What rank 0 prints if the job is stopped under it (mpirun sends SIGTERM
 * when another rank dies, or when it is interrupted): two texts, written
 * in turn and published by index, so the handler never reads one being
 * rewritten. */
static char stop_texts[2][1024];
static size_t stop_lens[2];
static atomic_int stop_text = -1;

static void on_stop(int sig)
{
    int k = atomic_load(&stop_text);
    if (k >= 0) {
        ssize_t written = write(2, stop_texts[k], stop_lens[k]);
        (void)written;   /* nothing more to do if stderr is gone */
    }
    _exit(128 + sig);
}

/* The stop text for epoch `epoch`, naming the checkpoint that survives. */
static void set_stop_text(int epoch, const char *checkpoint_path, int checkpoint_epoch)
{
    int k = atomic_load(&stop_text) == 0 ? 1 : 0, n;
    if (checkpoint_path)
        n = snprintf(stop_texts[k], sizeof stop_texts[k], "fepc: error: the job was stopped in epoch %d (a rank died, or "
                     "mpirun was interrupted); %s holds epoch %d: go on with --resume %s, on any number of ranks\n",
                     epoch, checkpoint_path, checkpoint_epoch, checkpoint_path);
    else
        n = snprintf(stop_texts[k], sizeof stop_texts[k], "fepc: error: the job was stopped in epoch %d (a rank died, or "
                     "mpirun was interrupted); nothing was saved (--save P checkpoints every epoch)\n", epoch);
    stop_lens[k] = n < (int)sizeof stop_texts[k] ? (size_t)n : sizeof stop_texts[k] - 1;
    atomic_store(&stop_text, k);
}

/* The epoch line's tail across ranks: time in collectives and bytes sent per step. */
static void comm_figures(const Trainer *t, double seconds0, int64_t bytes0, int64_t steps, char *out, size_t len)
{
    out[0] = 0;
    if (t->comm)
        snprintf(out, len, "  (%d ranks: %.2fs in collectives, %.2f MB sent per step)", t->comm->size,
                 t->comm->seconds - seconds0, (double)(t->comm->bytes_sent - bytes0) / 1e6 / (double)(steps ? steps : 1));
}

/* For the hooks' caller (the C API, one process): keeps t->err, prefixed
 * with where it happened, instead of printing it; returns 1. */
static int keep_error(Trainer *t, const char *where)
{
    size_t k = strlen(where);
    memmove(t->err + k, t->err, sizeof t->err - k);
    memcpy(t->err, where, k);
    t->err[sizeof t->err - 1] = 0;
    return 1;
}

/* Ends a failed batch: a failure every rank sees (a session that cannot be
 * made, divergence of the global energy) is reported by rank 0 and every
 * rank returns 1; any other may be this rank's alone and ends the job. */
static int batch_failed(Trainer *t, bool everywhere, int epoch, int64_t batch)
{
    if (t->opt->hooks) {
        char where[64];
        snprintf(where, sizeof where, "epoch %d, batch %lld: ", epoch, (long long)batch);
        return keep_error(t, where);
    }
    if (t->opt->progress && t->lead)
        fputc('\n', stderr);
    if (!everywhere || !t->comm)
        return fail_alone(t, "epoch %d, batch %lld: %s", epoch, (long long)batch, t->err);
    if (t->lead)
        report(t, "epoch %d, batch %lld: %s", epoch, (long long)batch, t->err);
    return 1;
}

/* The batches of one epoch in `order` (stopping early on SIGINT, or when
 * the hooks set *stop): sums the energy × samples and the correct training
 * predictions (this rank's) and counts the steps.  0, or the status after
 * a failed batch. */
static int train_epoch(Trainer *t, int epoch, const int64_t *order, double *energy_sum, int64_t *correct,
                       int64_t *steps, bool *stop)
{
    int64_t n = t->train.n, per_epoch = (n + t->cfg.batch - 1) / t->cfg.batch;
    for (int64_t at = 0; at < n && !interrupted && !*stop; at += t->cfg.batch, ++*steps) {
        int count = (int)(n - at < t->cfg.batch ? n - at : t->cfg.batch);
        Session *s = session_for(t, count, true);
        t->optim->lr_scale = lr_scale(&t->cfg, (epoch - 1) * per_epoch + at / t->cfg.batch, t->cfg.epochs * per_epoch);
        double e;
        int c = 0;
        bool diverged = false;
        if (!s || !train_batch(t, s, order + at, &e, &c, &diverged))
            return batch_failed(t, !s || diverged, epoch, at / t->cfg.batch);
        *energy_sum += e * count;
        *correct += c;
        int every = t->opt->hooks ? t->opt->hooks->every : 20;
        if ((at / t->cfg.batch) % every == 0 || (t->opt->hooks && at + count == n))
            *stop = !progress(t, epoch, at + count, n, *energy_sum / (double)(at + count));
    }
    return 0;
}

static int run_epochs(Trainer *t, int first_epoch)
{
    int64_t n = t->train.n;
    int64_t *order = xmalloc(sizeof *order * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    Rng rng;
    rng_seed(&rng, t->cfg.seed + 0x5eed);
    double *log_rows = xcalloc((size_t)(t->cfg.epochs + 1) * LOG_MAX_COLS, sizeof(double));
    int n_rows = 0, rc = 0, saved = -1;
    bool has_labels = t->train.label_column >= 0, stop = false;
    const char *kept = t->opt->resume_path;   /* the checkpoint a stopped job leaves */
    for (int epoch = first_epoch; epoch <= t->cfg.epochs && rc == 0 && !stop; epoch++) {
        if (t->comm && t->lead)
            set_stop_text(epoch, kept, saved >= 0 ? saved : first_epoch - 1);
        shuffle(order, n, &rng);
        double start = now(), energy_sum = 0, comm_s = t->comm ? t->comm->seconds : 0;
        int64_t correct = 0, comm_bytes = t->comm ? t->comm->bytes_sent : 0, steps = 0;
        if ((rc = train_epoch(t, epoch, order, &energy_sum, &correct, &steps, &stop)) || stop)
            break;   /* the hooks stopped a partial epoch: not reported */
        double seconds = now() - start;
        if (interrupted) {
            const char *path = t->opt->save_path ? t->opt->save_path : "interrupted.safetensors";
            fprintf(stderr, "%sfepc: interrupted; saving checkpoint to %s\n", t->opt->progress ? "\n" : "", path);
            rc = checkpoint(t, path, epoch - 1) ? 130 : 1;
            if (rc == 1)
                fprintf(stderr, "fepc: error: %s\n", t->err);
            break;
        }
        char extra[160];
        comm_figures(t, comm_s, comm_bytes, steps, extra, sizeof extra);
        if (t->comm && !dist_sum(t->comm, &correct, 1)) {
            rc = fail_alone(t, "%s", t->comm->error);
            break;
        }
        double train_acc = has_labels ? (double)correct / (double)n : NAN;
        double *row = log_rows + log_width(t) * n_rows++;
        if (!end_epoch(t, epoch, energy_sum / (double)n, train_acc, seconds, extra, row, &stop)) {
            rc = t->opt->hooks ? keep_error(t, "evaluation: ") : fail_alone(t, "evaluation: %s", t->err);
            break;
        }
        if (t->lead && t->opt->log_path && !write_log(t, log_rows, n_rows))
            rc = fail_alone(t, "%s", t->err);
        /* Across ranks, rank 0 checkpoints every epoch: a lost rank costs one epoch at most. */
        if (rc == 0 && t->comm && t->opt->save_path) {
            if (t->lead && !checkpoint(t, t->opt->save_path, epoch))
                rc = fail_alone(t, "%s", t->err);
            saved = epoch;
            kept = t->opt->save_path;
        }
    }
    if (rc == 0 && t->lead && t->opt->save_path && saved != t->cfg.epochs &&
        !checkpoint(t, t->opt->save_path, t->cfg.epochs)) {
        fprintf(stderr, "fepc: error: %s\n", t->err);
        rc = 1;
    }
    free(log_rows);
    free(order);
    return rc;
}

/* Holds out opt->val samples of t->train as t->val, picked by a shuffle
 * seeded with the train seed (the same samples for train and eval). */
static bool split_val(Trainer *t)
{
    int64_t n = t->train.n, v = t->opt->val;
    if (v <= 0)
        return true;
    if (v >= n) {
        snprintf(t->err, sizeof t->err, "--val %lld leaves no training samples: the data has %lld", (long long)v,
                 (long long)n);
        return false;
    }
    int64_t *order = xmalloc(sizeof *order * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    Rng rng;
    rng_seed(&rng, t->cfg.seed + 0x7a1);
    shuffle(order, n, &rng);
    Dataset all = t->train;
    dataset_take(&all, order, n - v, &t->train);
    dataset_take(&all, order + n - v, v, &t->val);
    if (!t->borrowed_train)
        dataset_free(&all);
    t->borrowed_train = false;   /* the two parts are copies */
    free(order);
    return true;
}

/* The --bind sources (no test split), or Fashion-MNIST's test split and,
 * when training or holding out, its train split. */
static bool load_data(Trainer *t, bool need_train)
{
    const TrainOptions *o = t->opt;
    if (o->n_sources)
        return dataset_load_sources(t->m, o->sources, o->n_sources, &t->train, t->err, sizeof t->err) &&
               split_val(t);
    if (((need_train || o->val > 0) && !dataset_fashion_mnist(true, &t->train, t->err, sizeof t->err)) ||
        !dataset_fashion_mnist(false, &t->test, t->err, sizeof t->err))
        return false;
    return dataset_bind(t->m, &t->train, t->err, sizeof t->err) &&
           dataset_bind(t->m, &t->test, t->err, sizeof t->err) && split_val(t);
}

static int resume_from(Trainer *t, const char *path)
{
    TensorSet set = {0};
    int epoch = 1;
    if (!st_load(path, &set, t->err, sizeof t->err) || !session_bind_params(t->sessions[0], &set, path, t->err, sizeof t->err))
        epoch = -1;
    const char *done = epoch > 0 ? tensor_set_meta_get(&set, "epoch") : NULL;
    if (done)
        epoch = atoi(done) + 1;
    tensor_set_free(&set);
    return epoch;
}

/* Rank 0 reads a params file (--resume, --params) and every rank takes its
 * parameters and epoch; alone, this process reads it.  The next epoch to
 * train, or -1 after the error was reported. */
static int load_params(Trainer *t, const char *path)
{
    int epoch = t->lead ? resume_from(t, path) : 1;
    if (epoch < 0)
        report(t, "%s", t->err);
    if (!agree(t, epoch >= 0))
        return -1;
    if (!t->comm)
        return epoch;
    int64_t next = epoch;
    if (!dist_broadcast_params(t->comm, t->sessions[0]) || !t->comm->broadcast(t->comm, &next, sizeof next)) {
        report(t, "%s", t->comm->error);
        return -1;
    }
    return (int)next;
}

static uint64_t mix_double(uint64_t h, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return hash_mix(h, bits);
}

uint64_t train_config_hash(const TrainConfig *c)
{
    int64_t ints[] = {c->rule.kind, c->rule.backward, c->rule.no_derivative, c->rule.error_weights, c->steps,
                      c->integrator, c->optimizer, c->nesterov, c->schedule, c->warmup, c->batch, c->epochs,
                      (int64_t)c->seed};
    uint64_t h = 0x7261696eull;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        h = hash_mix(h, (uint64_t)ints[i]);
    double reals[] = {c->step_size, c->momentum, c->tol, c->lr, c->beta1, c->beta2, c->eps, c->opt_momentum,
                      c->weight_decay};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        h = mix_double(h, reals[i]);
    return h;
}

/* Everything that decides the arithmetic: the model source, the train
 * settings after overrides, the precision, engine and data options. */
static uint64_t run_hash(const Trainer *t)
{
    const TrainOptions *o = t->opt;
    uint64_t h = o->model_hash ? hash_bytes(o->model_hash, strlen(o->model_hash), 1) : 0;
    h = hash_bytes(t->engine.name, strlen(t->engine.name), hash_mix(h, train_config_hash(&t->cfg)));
    int64_t ints[] = {o->f64, o->limit, o->val, o->n_sources};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        h = hash_mix(h, (uint64_t)ints[i]);
    h = mix_double(h, o->clip);
    for (int i = 0; i < o->n_sources; i++)
        h = hash_bytes(o->sources[i].node, strlen(o->sources[i].node), h);
    return h;
}

/* The data's sample counts and a digest of 256 evenly spaced samples of
 * every column (cheap, yet a different file on one machine shows). */
static uint64_t data_hash(const Dataset *d, uint64_t h)
{
    h = hash_mix(h, (uint64_t)d->n);
    int64_t stride = d->n > 256 ? d->n / 256 : 1;
    for (int i = 0; i < d->n_columns; i++) {
        const DataColumn *c = &d->columns[i];
        int64_t row = (int64_t)c->count * c->width;
        for (int64_t k = 0; k < d->n; k += stride)
            h = c->values ? hash_bytes(c->values + k * row, sizeof(float) * (size_t)row, h)
                          : hash_bytes(c->classes + k * c->count, sizeof(int32_t) * (size_t)c->count, h);
    }
    return h;
}

/* Across ranks: the same model, options and data everywhere, or rank 0
 * says which rank differs and every rank stops. */
static bool same_everywhere(Trainer *t)
{
    if (!t->comm)
        return true;
    uint64_t data = data_hash(&t->val, data_hash(&t->test, data_hash(&t->train, 0)));
    bool ok = dist_same(t->comm, run_hash(t), "model hash (source, settings and options)", t->err, sizeof t->err) &&
              dist_same(t->comm, data, "data hash (sample counts and a digest of the samples)", t->err, sizeof t->err);
    if (!ok && t->lead)
        report(t, "%s", t->err);
    return ok;
}

/* The start every command shares: the data (with --limit when training),
 * the first session and the ranks' agreement.  False after a report. */
static bool start(Trainer *t, bool need_train)
{
    bool ok = load_data(t, need_train);
    if (!ok)
        report(t, "%s", t->err);
    if (!agree(t, ok))
        return false;
    if (need_train && t->opt->limit > 0 && t->opt->limit < t->train.n)
        t->train.n = t->opt->limit;
    /* Fewer samples than a batch: one smaller batch (set before the first
     * session, which session_for keys on cfg.batch). */
    if (need_train && t->train.n < t->cfg.batch)
        t->cfg.batch = (int)t->train.n;
    ok = session_for(t, t->cfg.batch, true) != NULL;
    if (!ok && t->lead)   /* the same derivation fails on every rank */
        report(t, "%s", t->err);
    return agree(t, ok) && same_everywhere(t);
}

static Trainer trainer(Diag *d, Model *m, const TrainConfig *cfg, const TrainOptions *opt, Engine engine)
{
    Trainer t = {.diag = d, .m = m, .cfg = *cfg, .opt = opt, .engine = engine};
    t.comm = opt->comm && opt->comm->size > 1 ? opt->comm : NULL;
    t.lead = !t.comm || t.comm->rank == 0;
    return t;
}

int train_run(Diag *d, Model *m, const TrainConfig *cfg, const TrainOptions *opt, Engine engine)
{
    Trainer t = trainer(d, m, cfg, opt, engine);
    int rc = 1, first = 1;
    if (!start(&t, true) || (opt->resume_path && (first = load_params(&t, opt->resume_path)) < 0))
        goto done;
    if (opt->resume_path && first > t.cfg.epochs) {
        if (t.lead)
            report(&t, "%s has trained %d epochs already; --epochs %d leaves nothing to train (pass the total number "
                   "of epochs, e.g. --epochs %d)", opt->resume_path, first - 1, t.cfg.epochs, first);
        goto done;
    }
    t.optim = optim_new(t.sessions[0], &t.cfg, opt->clip);
    interrupted = 0;
    /* Alone, Ctrl-C checkpoints after the batch; across ranks a stop ends
     * the job at once (the others are gone or going), so rank 0 only says
     * which checkpoint survives. */
    struct sigaction sa = {.sa_handler = t.comm ? on_stop : on_sigint}, old_int, old_term;
    bool handle = !t.comm || t.lead;
    if (handle) {
        sigaction(SIGINT, &sa, &old_int);
        if (t.comm)
            sigaction(SIGTERM, &sa, &old_term);
    }
    rc = run_epochs(&t, first);
    if (handle) {
        sigaction(SIGINT, &old_int, NULL);
        if (t.comm)
            sigaction(SIGTERM, &old_term, NULL);
    }
done:
    trainer_free(&t);
    return rc;
}

/* Mean per-sample energy with the observed nodes clamped to d (the last
 * batch partial); false with t->err on failure. */
static bool clamped_energy(Trainer *t, const Dataset *d, double *out)
{
    double energy = 0;
    bool ok = true;
    int batch = t->cfg.batch;
    int64_t *idx = xmalloc(sizeof *idx * (size_t)batch);
    for (int64_t at = 0; at < d->n; at += batch) {
        int count = (int)(d->n - at < batch ? d->n - at : batch);
        Session *s = session_for(t, count, true);
        if (!s) {
            ok = false;
            break;
        }
        for (int k = 0; k < count; k++)
            idx[k] = at + k;
        dataset_fill(s, d, mine(s, idx));
        if (session_relax(s, t->cfg.steps, t->cfg.step_size, NULL) < 0) {
            snprintf(t->err, sizeof t->err, "%s", s->error);
            ok = false;
            break;
        }
        energy += session_energy(s) * count;
    }
    free(idx);
    *out = energy / (double)d->n;
    return ok;
}

int eval_run(Diag *d, Model *m, const TrainConfig *cfg, const char *params_path, const TrainOptions *opt,
             Engine engine)
{
    Trainer t = trainer(d, m, cfg, opt, engine);
    int rc = 1;
    if (!start(&t, false) || (params_path && load_params(&t, params_path) < 0))
        goto done;
    /* The held-out samples, else all bound data, else the test split. */
    const Dataset *data = t.val.n ? &t.val : opt->n_sources ? &t.train : &t.test;
    double energy, acc = NAN;
    if (!clamped_energy(&t, data, &energy) || (data->label_column >= 0 && isnan(acc = accuracy(&t, data)))) {
        rc = fail_alone(&t, "%s", t.err);
        goto done;
    }
    if (t.lead) {
        if (data->label_column >= 0)
            printf("accuracy: %.4f\n", acc);
        printf("energy: %.4f\n", energy);
    }
    rc = 0;
done:
    trainer_free(&t);
    return rc;
}

/* The C API's trainer: the caller's data and optimizer, sessions sharing
 * base's params, reports to opt->hooks. */
static Trainer api_trainer(Diag *d, Session *base, Optimizer *optim, const TrainConfig *cfg, const Dataset *train,
                           const Dataset *val, const TrainOptions *opt)
{
    Trainer t = {.diag = d, .m = base->model, .cfg = *cfg, .opt = opt, .engine = base->engine, .optim = optim,
                 .lead = true, .base = base, .borrowed_train = true, .borrowed_optim = true};
    t.train = *train;
    if (val)
        t.val = *val;
    return t;
}

int train_session(Diag *d, Session *base, Optimizer *optim, const TrainConfig *cfg, const Dataset *train,
                  const Dataset *val, const TrainOptions *opt, char *err, size_t errlen)
{
    Trainer t = api_trainer(d, base, optim, cfg, train, val, opt);
    int rc = 1;
    if (!val && !split_val(&t))
        goto done;
    if (t.train.n < t.cfg.batch)
        t.cfg.batch = (int)t.train.n;
    if (!session_for(&t, t.cfg.batch, true))
        goto done;
    interrupted = 0;
    rc = run_epochs(&t, 1);
    t.optim->lr_scale = 1;   /* later fep_learn steps use the configured rate */
done:
    if (rc == 1)
        snprintf(err, errlen, "%s", t.err);
    trainer_free(&t);
    return rc == 1 && t.diverged ? 2 : rc;
}

bool eval_session(Diag *d, Session *base, const TrainConfig *cfg, const Dataset *data, double *accuracy_out,
                  double *energy, char *err, size_t errlen)
{
    TrainOptions opt = {.f64 = base->st.f64};
    Trainer t = api_trainer(d, base, NULL, cfg, data, NULL, &opt);
    *accuracy_out = NAN;
    bool ok = session_for(&t, t.cfg.batch, true) && clamped_energy(&t, data, energy) &&
              (data->label_column < 0 || !isnan(*accuracy_out = accuracy(&t, data)));
    if (!ok)
        snprintf(err, errlen, "%s", t.err);
    trainer_free(&t);
    return ok;
}

bool save_params(const Session *s, const char *path, const char *const *meta, int n_meta, char *err, size_t errlen)
{
    const Model *m = s->model;
    TensorSet set = {0};
    bool ok = true;
    for (int t = 0; t < m->n_tensors && ok; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_PARAM)
            continue;
        const Shape *shape = ir_shape(&m->g, tensor->shape);
        int64_t dims[TENSOR_MAX_RANK];
        for (int i = 0; i < shape->rank; i++)
            dims[i] = shape->dims[i];
        HostTensor *h = tensor_set_add(&set, tensor->name, s->st.f64 ? DT_F64 : DT_F32, shape->rank, dims);
        double *values = xmalloc(sizeof *values * (size_t)(ir_numel(shape) + 1));
        session_get(s, tensor->buf, values);
        ok = h && host_tensor_from_f64(h, values, err, errlen);
        free(values);
    }
    for (int i = 0; i < n_meta && ok; i++)
        ok = tensor_set_meta(&set, meta[2 * i], meta[2 * i + 1]);
    ok = ok && st_save(path, &set, err, errlen);
    tensor_set_free(&set);
    return ok;
}
