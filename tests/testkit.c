/* testkit.c — see testkit.h. */
#include "testkit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kit_compile(Kit *k, const char *text)
{
    memset(k, 0, sizeof *k);
    bool ok = compile_model(&k->c, "test.fep", text, stderr);
    if (!ok)
        fail_msg("model did not compile:\n%s", text);
}

void kit_session_engine(Kit *k, RuleKind rule, int batch, bool f64, Engine engine)
{
    char err[512];
    Model *m = k->c.model;
    TrainConfig cfg = m->train;
    cfg.rule.kind = rule;
    k->s = session_new(&k->c.diag, m, &cfg, batch, f64, true, engine, err, sizeof err);
    if (!k->s)
        fail_msg("session: %s", err);
}

void kit_session(Kit *k, RuleKind rule, int batch, bool f64) { kit_session_engine(k, rule, batch, f64, engine_interp()); }

void kit_random_data(Kit *k, uint64_t seed)
{
    const Model *m = k->c.model;
    for (int t = 0; t < m->n_tensors; t++) {
        const Tensor *tensor = &m->tensors[t];
        if (tensor->role != ROLE_INPUT && tensor->role != ROLE_OBSERVED)
            continue;
        if (tensor->dist != DIST_CATEGORICAL) {
            kit_randomize(k, tensor->name, -1, 1, seed + 17 * (uint64_t)t);
            continue;
        }
        int64_t n = kit_len(k, tensor->name), width = ir_numel(ir_shape(&m->g, tensor->shape));
        double *v = calloc((size_t)n, sizeof *v);
        for (int64_t b = 0; b < n / width; b++)
            v[b * width + (b * 7 + (int64_t)seed) % width] = 1;
        kit_set(k, tensor->name, v);
        free(v);
    }
}

void kit_free(Kit *k)
{
    session_free(k->s);
    compiler_free(&k->c);
}

int kit_buf(const Kit *k, const char *name)
{
    int b = ir_model_find_buffer(k->c.model, name);
    if (b < 0)
        fail_msg("no buffer '%s'", name);
    return b;
}

int64_t kit_len(const Kit *k, const char *name) { return session_buffer_len(k->s, kit_buf(k, name)); }

void kit_get(const Kit *k, const char *name, double *out) { session_get(k->s, kit_buf(k, name), out); }

void kit_set(Kit *k, const char *name, const double *in) { session_set(k->s, kit_buf(k, name), in); }

void kit_randomize(Kit *k, const char *name, double lo, double hi, uint64_t seed)
{
    int64_t n = kit_len(k, name);
    double *v = malloc(sizeof *v * (size_t)n);
    Rng r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * rng_uniform(&r);
    kit_set(k, name, v);
    free(v);
}

void kit_phase(Kit *k, PhaseId phase)
{
    if (!session_run_phase(k->s, phase))
        fail_msg("phase %s: %s", ir_phase_name(phase), k->s->error);
}

double kit_total_energy(Kit *k)
{
    kit_phase(k, PHASE_ENERGY);
    return session_energy(k->s) * k->s->st.batch;
}

double kit_rel_diff(const double *a, const double *b, int64_t n, double floor)
{
    double scale = floor, worst = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    return worst / scale;
}

/* ---- random DAG models ---- */


typedef struct Gen {
    Rng rng;
    char text[16384];
    size_t len;
} Gen;

static void emit(Gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(Gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g->len += (size_t)vsnprintf(g->text + g->len, sizeof g->text - g->len, fmt, ap);
    va_end(ap);
}

static int pick(Gen *g, int n) { return (int)(rng_next(&g->rng) % (uint64_t)n); }

/* |a − b| ≤ tol · max(‖b‖∞, floor): floor keeps all-zero references (a leaf
 * node's parameter gradient) from turning roundoff into a failure. */
/* A random DAG: input x, latents h0..h{n-1} each reading one or two earlier
 * nodes through a matrix and an activation, and two observed nodes reading
 * latents — so nodes branch and have several children.  *n_latents bounds
 * the depth. */
static void build_dag(Gen *g, uint64_t seed, bool categorical, int *n_latents)
{
    static const char *acts[] = {"tanh", "sigmoid", "identity", "softplus", "sin"};
    rng_seed(&g->rng, seed);
    g->len = 0;
    int n = 2 + pick(g, 4);
    int dims[8];
    emit(g, "model random_dag\ninput x : [3]\n");
    for (int i = 0; i < n; i++) {
        dims[i] = 2 + pick(g, 3);
        int parents = 1 + (i > 0 && pick(g, 2));
        int from[2];
        from[0] = pick(g, i + 1) - 1;   /* -1 = x */
        from[1] = i - 1;
        emit(g, "param b%d : [%d] = normal(0.3)\n", i, dims[i]);
        for (int k = 0; k < parents; k++)
            emit(g, "param W%d_%d : [%d, %d] = normal(0.6)\n", i, k, dims[i], from[k] < 0 ? 3 : dims[from[k]]);
        emit(g, "latent h%d : [%d] ~ normal(%s(", i, dims[i], acts[pick(g, 5)]);
        for (int k = 0; k < parents; k++) {
            if (from[k] < 0)
                emit(g, "%sW%d_%d @ x", k ? " + " : "", i, k);
            else
                emit(g, "%sW%d_%d @ h%d", k ? " + " : "", i, k, from[k]);
        }
        emit(g, " + b%d))\n", i);
    }
    /* Two observed nodes reading different latents: multi-child parents. */
    int a = n - 1, b = pick(g, n);
    emit(g, "param Va : [4, %d] = normal(0.6)\nparam Vb : [3, %d] = normal(0.6)\n", dims[a], dims[b]);
    emit(g, "observed ya : [4] ~ %s(Va @ h%d)\n", categorical ? "categorical" : "normal", a);
    emit(g, "observed yb : [3] ~ normal(Vb @ tanh(h%d))\n", b);
    *n_latents = n;
}


void kit_random_dag(char *text, size_t len, uint64_t seed, bool categorical, int *n_latents)
{
    Gen g;
    build_dag(&g, seed, categorical, n_latents);
    snprintf(text, len, "%s", g.text);
}
