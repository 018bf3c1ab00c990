/* session.c — a model instance for one batch size: storage for every
 * buffer, the derived program for the current rule and clamp set, data
 * binding, and the relaxation loop with its integrators.
 *
 * Invariants: st.data[b] is allocated for every model buffer (buffers that
 * derivations add later are allocated on re-derivation); a clamped node's
 * buffer is written only by binding; the engine is the only code that
 * evaluates IR. */
#include "runtime.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static bool interp_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    return ir_interp_phase(p, phase, st, err, errlen);
}

Engine engine_interp(void) { return (Engine){"interp", NULL, interp_run, NULL, NULL}; }

static void fail(Session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
}

int64_t session_buffer_len(const Session *s, int buf)
{
    const Buffer *b = &s->model->buffers[buf];
    return ir_numel(ir_shape(&s->model->g, b->shape)) * (b->batched ? s->st.batch : 1);
}

static size_t elem_size(const Session *s) { return s->st.f64 ? sizeof(double) : sizeof(float); }

/* Allocates storage for buffers registered since the last call. */
static void grow_storage(Session *s)
{
    int n = s->model->n_buffers;
    if (n == s->st.n_buffers)
        return;
    s->st.data = xrealloc(s->st.data, sizeof *s->st.data * (size_t)n);
    if (s->borrowed) {
        s->borrowed = xrealloc(s->borrowed, (size_t)n + 1);
        memset(s->borrowed + s->st.n_buffers, 0, (size_t)(n - s->st.n_buffers) + 1);
    }
    for (int b = s->st.n_buffers; b < n; b++)
        s->st.data[b] = xcalloc((size_t)session_buffer_len(s, b) + 1, elem_size(s));
    s->st.n_buffers = n;
    s->hoist_epoch = 0;
}

bool session_get(const Session *s, int buf, double *out)
{
    int64_t n = session_buffer_len(s, buf);
    if (s->st.f64)
        memcpy(out, s->st.data[buf], sizeof *out * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++)
            out[i] = ((const float *)s->st.data[buf])[i];
    return true;
}

bool session_set(Session *s, int buf, const double *in)
{
    if (pass_hoist_leaf_kind(s->model->buffers[buf].kind))
        session_leaves_changed();
    int64_t n = session_buffer_len(s, buf);
    if (s->st.f64)
        memcpy(s->st.data[buf], in, sizeof *in * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++)
            ((float *)s->st.data[buf])[i] = (float)in[i];
    return true;
}

/* Initial values of tensors [from, n): params and consts from their INIT,
 * stream state from the node's init.  Declared tensors share one random
 * stream (their order fixes their values); a rule-made param draws from
 * its own, so it gets the same values whenever the rule adds it. */
static void init_params(Session *s, int from)
{
    Rng rng;
    rng_seed(&rng, s->cfg.seed);
    Model *m = s->model;
    for (int t = from; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_PARAM && tensor->role != ROLE_CONST && tensor->prev_buf < 0)
            continue;
        const Shape *shape = ir_shape(&m->g, tensor->shape);
        int64_t n = ir_numel(shape);
        double *values = xcalloc((size_t)n, sizeof *values);
        Rng own;
        rng_seed(&own, s->cfg.seed * 0x9E3779B97F4A7C15ull + (uint64_t)t);
        if (tensor->has_init)
            init_fill(&tensor->init, shape, tensor->rule_param != RULE_PARAM_NONE ? &own : &rng, values);
        if (tensor->role == ROLE_PARAM || tensor->role == ROLE_CONST) {
            session_set(s, tensor->buf, values);
        } else {
            /* Stream state starts at the node's init (zeros by default) in every sample. */
            int64_t total = session_buffer_len(s, tensor->prev_buf);
            double *rows = xmalloc(sizeof *rows * (size_t)total);
            for (int64_t i = 0; i < total; i++)
                rows[i] = values[i % n];
            session_set(s, tensor->prev_buf, rows);
            free(rows);
        }
        free(values);
    }
    s->n_tensors = m->n_tensors;
}

bool session_rederive(Session *s, Diag *d, RuleSpec rule, const bool *clamped)
{
    Program *p = pass_derive_cached(d, s->model, rule, clamped);
    if (!p) {
        fail(s, "cannot derive rule %s for this model", ir_rule_name(rule.kind));
        return false;
    }
    char err[512];
    if (s->engine.prepare && !s->engine.prepare(s->engine.ctx, p, s->st.f64, err, sizeof err)) {
        fail(s, "%s engine: %s", s->engine.name, err);
        return false;
    }
    s->program = p;
    s->rule = rule;
    s->hoist_epoch = 0;
    /* The derivation may have added a relaxation's params (rule_params.c). */
    int n = s->model->n_tensors;
    s->clamped = xrealloc(s->clamped, (size_t)n + 1);
    memset(s->clamped, 0, (size_t)n + 1);
    memcpy(s->clamped, p->clamped, (size_t)ir_declared_tensors(s->model));
    grow_storage(s);
    if (s->n_tensors && n > s->n_tensors)
        init_params(s, s->n_tensors);
    return true;
}

Session *session_new(Diag *d, Model *m, const TrainConfig *cfg, int batch, bool f64, bool observed_clamped,
                     Engine engine, char *err, size_t errlen)
{
    Session *s = xcalloc(1, sizeof *s);
    s->model = m;
    s->cfg = *cfg;
    s->engine = engine;
    s->st.batch = batch;
    s->st.f64 = f64;
    s->solve_enabled = true;
    s->clamped = xcalloc((size_t)m->n_tensors + 1, 1);
    if (!session_rederive(s, d, cfg->rule, pass_clamp_set(m, observed_clamped))) {
        snprintf(err, errlen, "%s", s->error);
        session_free(s);
        return NULL;
    }
    init_params(s, 0);
    return s;
}

void session_free(Session *s)
{
    if (!s)
        return;
    for (int b = 0; b < s->st.n_buffers; b++)
        if (!s->borrowed || !s->borrowed[b])
            free(s->st.data[b]);
    free(s->st.data);
    free(s->borrowed);
    free(s->clamped);
    dist_shard_free(s->st.shard);
    free(s);
}

void session_set_shard(Session *s, Shard *sh)
{
    dist_shard_free(s->st.shard);
    s->st.shard = sh;
}

void session_share_params(Session *dst, Session *src)
{
    grow_storage(dst);
    grow_storage(src);
    if (!dst->borrowed)
        dst->borrowed = xcalloc((size_t)dst->model->n_buffers + 1, 1);
    for (int b = 0; b < dst->model->n_buffers; b++) {
        BufKind k = dst->model->buffers[b].kind;
        if (k != BUF_PARAM && k != BUF_CONST)
            continue;
        if (!dst->borrowed[b])
            free(dst->st.data[b]);
        dst->st.data[b] = src->st.data[b];
        dst->borrowed[b] = true;
    }
    session_leaves_changed();
}

const char *session_find_nonfinite(const Session *s)
{
    for (int b = 0; b < s->st.n_buffers; b++) {
        BufKind k = s->model->buffers[b].kind;
        if (k == BUF_ENERGY || k == BUF_CONST)
            continue;
        int64_t n = session_buffer_len(s, b);
        for (int64_t i = 0; i < n; i++) {
            double x = s->st.f64 ? ((const double *)s->st.data[b])[i] : ((const float *)s->st.data[b])[i];
            if (!isfinite(x))
                return s->model->buffers[b].name;
        }
    }
    return NULL;
}

/* ---- binding ---- */

int batch_size_of(const TensorSet *set)
{
    for (int i = 0; i < set->n_tensors; i++)
        if (set->tensors[i].rank >= 1)
            return (int)set->tensors[i].dims[0];
    return -1;
}

static const char *shape_of_host(const HostTensor *t, char *buf, size_t len)
{
    return host_tensor_shape_str(t, buf, len);
}

static bool bind_param(Session *s, int t, const HostTensor *h, const char *source, char *err, size_t errlen)
{
    const Tensor *tensor = &s->model->tensors[t];
    const Shape *shape = ir_shape(&s->model->g, tensor->shape);
    bool ok = h->rank == shape->rank;
    for (int i = 0; ok && i < h->rank; i++)
        ok = h->dims[i] == shape->dims[i];
    if (!ok) {
        char a[64], b[64];
        snprintf(err, errlen, "%s: tensor '%s' has shape %s but the model declares %s", source, tensor->name,
                 shape_of_host(h, a, sizeof a), ir_shape_str(shape, b, sizeof b));
        return false;
    }
    double *values = xmalloc(sizeof *values * (size_t)(host_tensor_numel(h) + 1));
    ok = host_tensor_to_f64(h, values, err, errlen);
    if (ok)
        session_set(s, tensor->buf, values);
    free(values);
    return ok;
}

/* back.W or psi.v of a model that has W or v: a relaxation's param (saved
 * by a run under a relaxed rule) that the current rule does not use. */
static bool unused_rule_param(const Model *m, const char *name)
{
    const char *served = ir_rule_param_served(name);
    return served && ir_model_find_tensor(m, name) < 0 && ir_model_find_tensor(m, served) >= 0;
}

bool session_bind_params(Session *s, const TensorSet *set, const char *source, char *err, size_t errlen)
{
    for (int i = 0; i < set->n_tensors; i++) {
        const HostTensor *h = &set->tensors[i];
        if (unused_rule_param(s->model, h->name))
            continue;
        int t = ir_model_find_tensor(s->model, h->name);
        if (t < 0 || (s->model->tensors[t].role != ROLE_PARAM && s->model->tensors[t].role != ROLE_CONST)) {
            snprintf(err, errlen, "%s: tensor '%s' is not a param or const of model '%s'",
                     source, h->name, s->model->name);
            return false;
        }
        if (!bind_param(s, t, h, source, err, errlen))
            return false;
    }
    return true;
}

/* Writes per-sample values (B × numel) into a value node, one-hot encoding
 * class indices for categorical nodes. */
static bool bind_value(Session *s, int t, const char *file_name, const HostTensor *h, int64_t offset,
                       int64_t stride_elems, char *err, size_t errlen)
{
    const Tensor *tensor = &s->model->tensors[t];
    const Shape *shape = ir_shape(&s->model->g, tensor->shape);
    int64_t numel = ir_numel(shape), batch = s->st.batch;
    int64_t per_sample = stride_elems;
    double *all = xmalloc(sizeof *all * (size_t)(host_tensor_numel(h) + 1));
    if (!host_tensor_to_f64(h, all, err, errlen)) {
        free(all);
        return false;
    }
    double *values = xcalloc((size_t)(batch * numel + 1), sizeof *values);
    bool ok = true;
    bool indices = tensor->dist == DIST_CATEGORICAL && per_sample == 1 && numel > 1;
    for (int64_t b = 0; b < batch && ok; b++) {
        const double *src = all + b * per_sample + offset;
        if (indices) {
            double c = src[0];
            int64_t width = shape->dims[shape->rank - 1];
            if (c != floor(c) || c < 0 || c >= (double)width || numel != width) {
                snprintf(err, errlen, "'%s' sample %lld: class index %g is not in 0..%lld", file_name,
                         (long long)b, c, (long long)width - 1);
                ok = false;
                break;
            }
            values[b * numel + (int64_t)c] = 1;
        } else {
            memcpy(values + b * numel, src, sizeof *values * (size_t)numel);
        }
    }
    if (ok)
        session_set(s, tensor->buf, values);
    free(values);
    free(all);
    return ok;
}

static bool shape_mismatch(const Session *s, int t, const HostTensor *h, const char *expect, char *err, size_t errlen)
{
    char a[64];
    snprintf(err, errlen, "tensor '%s' has shape %s but the model expects %s", h->name, shape_of_host(h, a, sizeof a),
             expect);
    return false;
}

static bool bind_one(Session *s, const HostTensor *h, char *err, size_t errlen)
{
    Model *m = s->model;
    int64_t batch = s->st.batch;
    char expect[160], dims[64];
    int t = ir_model_find_tensor(m, h->name);
    if (t >= 0 && ir_is_value_role(m->tensors[t].role)) {
        const Shape *shape = ir_shape(&m->g, m->tensors[t].shape);
        int64_t numel = ir_numel(shape);
        int64_t per = h->rank ? host_tensor_numel(h) / (h->dims[0] ? h->dims[0] : 1) : 0;
        bool indices_ok = m->tensors[t].dist == DIST_CATEGORICAL && h->rank == 1;
        snprintf(expect, sizeof expect, "[%lld, %s%s", (long long)batch, ir_shape_str(shape, dims, sizeof dims) + 1,
                 m->tensors[t].dist == DIST_CATEGORICAL ? " (or class indices)" : "");
        if (shape->rank == 0)
            snprintf(expect, sizeof expect, "[%lld]", (long long)batch);
        if (h->rank < 1 || h->dims[0] != batch || (per != numel && !(indices_ok && per == 1)))
            return shape_mismatch(s, t, h, expect, err, errlen);
        return bind_value(s, t, h->name, h, 0, per, err, errlen);
    }
    /* A whole family `x` given as [B, T, ...]. */
    int first = -1, count = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].family && !strcmp(m->tensors[k].family, h->name)) {
            if (first < 0)
                first = k;
            count++;
        }
    if (first >= 0) {
        const Shape *shape = ir_shape(&m->g, m->tensors[first].shape);
        int64_t numel = ir_numel(shape);
        snprintf(expect, sizeof expect, "[%lld, %d, %s", (long long)batch, count,
                 ir_shape_str(shape, dims, sizeof dims) + 1);
        if (h->rank < 2 || h->dims[0] != batch || h->dims[1] != count || host_tensor_numel(h) != batch * count * numel)
            return shape_mismatch(s, first, h, expect, err, errlen);
        for (int k = 0; k < count; k++)
            if (!bind_value(s, first + k, h->name, h, k * numel, (int64_t)count * numel, err, errlen))
                return false;
        return true;
    }
    snprintf(err, errlen, "batch file has tensor '%s', which is not an input, latent or observed node of model '%s'",
             h->name, m->name);
    return false;
}

bool session_bind_batch(Session *s, const TensorSet *set, char *err, size_t errlen)
{
    for (int i = 0; i < set->n_tensors; i++)
        if (!bind_one(s, &set->tensors[i], err, errlen))
            return false;
    return true;
}

/* ---- relaxation ---- */

/* Bumped whenever a buffer that a hoisted expression may read is written
 * (params, data, fwd.* values): hoist.* values computed at an older epoch
 * are recomputed before use.  Process-wide, so sessions sharing params see
 * each other's updates. */
static _Atomic uint64_t leaf_epoch = 1;

void session_leaves_changed(void) { atomic_fetch_add(&leaf_epoch, 1); }

static bool run_engine(Session *s, PhaseId phase)
{
    char err[256];
    if (!s->engine.run_phase(s->engine.ctx, s->program, phase, &s->st, err, sizeof err)) {
        fail(s, "%s", err);
        return false;
    }
    return true;
}

bool session_run_phase(Session *s, PhaseId phase)
{
    if (phase != PHASE_INIT && s->program->phases[PHASE_HOIST].n_assigns) {
        uint64_t now = atomic_load(&leaf_epoch);
        if (s->hoist_epoch != now) {
            if (!run_engine(s, PHASE_HOIST))
                return false;
            s->hoist_epoch = now;
        }
    }
    bool ok = run_engine(s, phase);
    if (phase == PHASE_INIT)
        session_leaves_changed();
    Shard *sh = s->st.shard;
    if (ok && sh && !sh->by_blocks) {   /* a rank shard: this rank's whole batch is its one part */
        void **whole[1] = {s->st.data};
        if (!(ok = dist_fold_phase(sh, s->program, phase, &s->st, whole, 1)))
            fail(s, "%s", sh->comm->error);
    }
    return ok;
}

double session_energy(const Session *s)
{
    int buf = ir_model_find_buffer(s->model, "energy");
    double *e = xmalloc(sizeof *e * (size_t)(s->st.batch + 1));
    session_get(s, buf, e);
    double total = 0;
    if (s->st.shard) {   /* the global batch's, added in its order; NaN when the exchange failed */
        if (!dist_mean(s->st.shard, e, &total))
            total = NAN;
        free(e);
        return total;
    }
    for (int b = 0; b < s->st.batch; b++)
        total += e[b];
    free(e);
    return total / s->st.batch;
}

/* Relaxation state as doubles: v and ∂F/∂v of every relaxed node, laid
 * end to end, so the integrators are plain vector updates. */
typedef struct Flat {
    int64_t n;
    double *v, *g;
} Flat;

static int64_t relaxed_len(const Session *s)
{
    int64_t n = 0;
    for (int i = 0; i < s->program->n_relaxed; i++)
        n += session_buffer_len(s, s->program->relaxed[i].value_buf);
    return n;
}

/* Copies values (and gradients, if g) out of the session. */
static void gather(const Session *s, double *v, double *g)
{
    for (int i = 0; i < s->program->n_relaxed; i++) {
        const Relaxed *r = &s->program->relaxed[i];
        int64_t n = session_buffer_len(s, r->value_buf);
        if (v) {   /* no arithmetic on a NULL pointer, not even + 0 (UB) */
            session_get(s, r->value_buf, v);
            v += n;
        }
        if (g) {
            session_get(s, r->vgrad_buf, g);
            g += n;
        }
    }
}

static void scatter(Session *s, const double *v)
{
    for (int i = 0; i < s->program->n_relaxed; i++) {
        const Relaxed *r = &s->program->relaxed[i];
        session_set(s, r->value_buf, v);
        v += session_buffer_len(s, r->value_buf);
    }
}

/* v ← v − η · vgrad for every relaxed node (explicit Euler), in the
 * session's own precision. */
static void euler_step(Session *s, double step_size)
{
    for (int i = 0; i < s->program->n_relaxed; i++) {
        const Relaxed *r = &s->program->relaxed[i];
        int64_t n = session_buffer_len(s, r->value_buf);
        if (s->st.f64) {
            double *v = s->st.data[r->value_buf];
            const double *g = s->st.data[r->vgrad_buf];
            for (int64_t k = 0; k < n; k++)
                v[k] -= step_size * g[k];
        } else {
            float *v = s->st.data[r->value_buf];
            const float *g = s->st.data[r->vgrad_buf];
            float eta = (float)step_size;
            for (int64_t k = 0; k < n; k++)
                v[k] -= eta * g[k];
        }
    }
}

/* One integrator step after PHASE_VALUE_GRAD has run at the current v.
 *   momentum: u ← μ u + ∂F/∂v,  v ← v − η u
 *   heun:     v ← v − η/2 (g(v) + g(v − η g(v)))  (a second evaluation) */
static bool integrate(Session *s, double step_size, double *velocity)
{
    const TrainConfig *c = &s->cfg;
    if (c->integrator == INTEGRATOR_EULER && c->momentum == 0) {
        euler_step(s, step_size);
        return true;
    }
    int64_t n = relaxed_len(s);
    Flat f = {n, xmalloc(sizeof(double) * (size_t)(n + 1)), xmalloc(sizeof(double) * (size_t)(n + 1))};
    gather(s, f.v, f.g);
    bool ok = true;
    if (c->integrator == INTEGRATOR_HEUN) {
        double *v0 = xmalloc(sizeof(double) * (size_t)(n + 1)), *g2 = xmalloc(sizeof(double) * (size_t)(n + 1));
        memcpy(v0, f.v, sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++)
            f.v[k] -= step_size * f.g[k];
        scatter(s, f.v);
        ok = session_run_phase(s, PHASE_VALUE_GRAD);
        gather(s, NULL, g2);
        for (int64_t k = 0; k < n; k++)
            f.g[k] = 0.5 * (f.g[k] + g2[k]);
        memcpy(f.v, v0, sizeof(double) * (size_t)n);
        free(v0);
        free(g2);
    }
    for (int64_t k = 0; k < n; k++) {
        double step = f.g[k];
        if (c->momentum > 0)
            step = velocity[k] = c->momentum * velocity[k] + f.g[k];
        f.v[k] -= step_size * step;
    }
    scatter(s, f.v);
    free(f.v);
    free(f.g);
    return ok;
}

/* C(n, j) η^j (1 − η)^(n−j), in logs so that large n neither overflows
 * the binomial coefficient nor underflows the powers (η may lie outside
 * [0, 1]; signs are kept apart). */
static double binomial_term(int n, double eta, int j)
{
    double log_mag = lgamma(n + 1.0) - lgamma(j + 1.0) - lgamma(n - j + 1.0), sign = 1;
    double q = 1 - eta;
    if (j > 0) {
        if (eta == 0)
            return 0;
        log_mag += j * log(fabs(eta));
        sign = eta < 0 && j % 2 ? -sign : sign;
    }
    if (n - j > 0) {
        if (q == 0)
            return 0;
        log_mag += (n - j) * log(fabs(q));
        sign = q < 0 && (n - j) % 2 ? -sign : sign;
    }
    return sign * exp(log_mag);
}

/* P[Binomial(n, η) ≥ k]: the share of a k-hop message that n Jacobi steps
 * of size η deliver.  The upper tail is summed directly in [0, 1] (accurate
 * when small); outside it the same polynomial is 1 − the lower tail. */
static double binomial_tail(int n, double eta, int k)
{
    if (k > n)
        return 0;
    double total = 0;
    bool upper = eta >= 0 && eta <= 1;
    for (int j = upper ? k : 0; j <= (upper ? n : k - 1); j++)
        total += binomial_term(n, eta, j);
    return upper ? total : 1 - total;
}

/* P[Binomial(n, η) = k]: the share of the start that has travelled k hops. */
static double binomial_pmf(int n, double eta, int k) { return k > n ? 0 : binomial_term(n, eta, k); }

/* fpa and ar in closed form: one phase (or, level by level, depth phases)
 * replaces `steps` Euler steps exactly (derive.c: c_k = P[Bin ≥ k], then
 * for ar P[Bin = k]). */
static bool solve(Session *s, int steps, double step_size)
{
    int depth = s->program->solve_depth;
    if (s->program->solve_by_level) {   /* one coefficient per level (derive.c) */
        for (int k = 0; k < depth; k++) {
            double c = binomial_tail(steps, step_size, k + 1);
            session_set(s, s->program->solve_coeff_buf, &c);
            if (!session_run_phase(s, k == 0 ? PHASE_SOLVE : PHASE_SOLVE_LEVEL))
                return false;
        }
        return true;
    }
    int n = s->program->solve_transient ? 2 * depth : depth;
    double *c = xmalloc(sizeof *c * (size_t)n);
    for (int k = 0; k < depth; k++)
        c[k] = binomial_tail(steps, step_size, k + 1);
    for (int k = 0; k < n - depth; k++)
        c[depth + k] = binomial_pmf(steps, step_size, k);
    session_set(s, s->program->solve_coeff_buf, c);
    free(c);
    return session_run_phase(s, PHASE_SOLVE);
}

int session_relax(Session *s, int steps, double step_size, Optimizer *each_step)
{
    if (!session_run_phase(s, PHASE_INIT))
        return -1;
    int taken = 0;
    bool plain = s->cfg.integrator == INTEGRATOR_EULER && s->cfg.momentum == 0 && s->cfg.tol == 0;
    if (s->program->relaxes && s->program->solve_coeff_buf >= 0 && s->solve_enabled && plain) {
        if (!solve(s, steps, step_size))
            return -1;
        taken = steps;
    } else if (s->program->relaxes) {
        double *velocity = s->cfg.momentum > 0 ? xcalloc((size_t)relaxed_len(s) + 1, sizeof(double)) : NULL;
        double last = INFINITY;
        bool ok = true;
        for (; taken < steps && ok; taken++) {
            ok = session_run_phase(s, PHASE_VALUE_GRAD) && integrate(s, step_size, velocity);
            if (ok && each_step) {
                ok = session_run_phase(s, PHASE_PARAM_GRAD);
                if (ok)
                    optim_step(each_step, s);
            }
            if (ok && s->cfg.tol > 0) {   /* early stop when the energy settles */
                ok = session_run_phase(s, PHASE_ENERGY);
                double e = session_energy(s);
                if (fabs(last - e) < s->cfg.tol) {
                    taken++;
                    break;
                }
                last = e;
            }
        }
        free(velocity);
        if (!ok)
            return -1;
    }
    if (!session_run_phase(s, PHASE_READOUT) || !session_run_phase(s, PHASE_ERRORS) || !session_run_phase(s, PHASE_ENERGY))
        return -1;
    return taken;
}

bool session_param_grads(Session *s) { return session_run_phase(s, PHASE_PARAM_GRAD); }

void session_grow(Session *s) { grow_storage(s); }

int64_t session_relaxed_len(const Session *s) { return relaxed_len(s); }

bool session_relax_step(Session *s, double step_size, double *velocity)
{
    return session_run_phase(s, PHASE_VALUE_GRAD) && integrate(s, step_size, velocity);
}
