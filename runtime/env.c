/* env.c — environments an agent acts in: the registry of built-in
 * environments, their "key=value,..." options, and C environments loaded
 * from a shared object (a FepEnvironment, fep.h).
 *
 * An environment is the generative process: it owns the true state, is
 * seeded once (env_open) and is then deterministic, so a run replays
 * exactly.  Observations and actions are doubles: a discrete entry holds a
 * value index (EnvInfo.obs_levels / act_levels say how many values), a
 * real entry a number. */
#include "agent.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "fep.h"

extern const EnvClass env_tmaze, env_grid, env_model;

const EnvClass *const env_builtins[] = {&env_tmaze, &env_grid, &env_model, NULL};

/* ---- options ---- */

/* The text of `key`'s value (up to ',' or the end), or NULL. */
static const char *option_text(const char *options, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (const char *p = options; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > klen && !strncmp(p, key, klen) && p[klen] == '=') {
            *len = n - klen - 1;
            return p + klen + 1;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

bool env_option_keys(const char *options, const char *const *known, const char *env, char *err, size_t errlen)
{
    for (const char *p = options; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        bool ok = false;
        for (int i = 0; eq && known[i]; i++)
            ok |= strlen(known[i]) == (size_t)(eq - p) && !strncmp(p, known[i], (size_t)(eq - p));
        if (!ok) {
            char list[256] = "";
            for (int i = 0; known[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", known[i]);
            snprintf(err, errlen, "environment '%s': option '%.*s' is not key=value with a key among: %s", env, (int)n, p,
                     known[0] ? list : "(none)");
            return false;
        }
        p = end ? end + 1 : NULL;
    }
    return true;
}

bool env_option_num(const char *options, const char *key, double *out, char *err, size_t errlen)
{
    size_t len;
    const char *v = option_text(options, key, &len);
    if (!v)
        return true;
    char buf[64];
    char *end;
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 63 ? len : 63), v);
    double x = strtod(buf, &end);
    if (!len || *end || len > 63) {
        snprintf(err, errlen, "option %s=%.*s: expected a number", key, (int)len, v);
        return false;
    }
    *out = x;
    return true;
}

bool env_option_int(const char *options, const char *key, long lo, long hi, long *out, char *err, size_t errlen)
{
    double x = (double)*out;
    if (!env_option_num(options, key, &x, err, errlen))
        return false;
    if (x != (double)(long)x || x < (double)lo || x > (double)hi) {
        snprintf(err, errlen, "option %s=%g: expected an integer in %ld..%ld", key, x, lo, hi);
        return false;
    }
    *out = (long)x;
    return true;
}

/* ---- C environments (fep.h FepEnvironment) ---- */

typedef struct Foreign {
    const FepEnvironment *fe;
    void *state;
} Foreign;

static void foreign_reset(void *st, Rng *rng, double *obs)
{
    Foreign *f = st;
    f->fe->reset(f->state, obs);
}

static bool foreign_step(void *st, Rng *rng, const double *act, double *obs, double *reward)
{
    Foreign *f = st;
    return f->fe->step(f->state, act, obs, reward) != 0;
}

static void foreign_destroy(void *st)
{
    Foreign *f = st;
    if (f->fe->destroy)
        f->fe->destroy(f->state);
    free(f);
}

static const EnvClass env_foreign = {"extern", "a FepEnvironment from a shared object", NULL, foreign_reset,
                                     foreign_step, foreign_destroy};

static bool open_foreign(const char *spec, uint64_t seed, Env *out, char *err, size_t errlen)
{
    const char *colon = strrchr(spec, ':');
    char *lib = xstrdup(spec);
    lib[colon - spec] = 0;
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "environment '%s': cannot load %s: %s", spec, lib, dlerror());
        free(lib);
        return false;
    }
    free(lib);
    const FepEnvironment *fe = dlsym(h, colon + 1);
    const char *why = !fe ? "no such symbol"
                      : fe->abi != FEP_ENVIRONMENT_ABI ? "its abi field is not FEP_ENVIRONMENT_ABI"
                      : !fe->create || !fe->reset || !fe->step ? "create, reset and step must all be set"
                      : fe->n_obs < 1 || fe->n_obs > 16 || fe->n_act < 0 || fe->n_act > 16
                          ? "n_obs must be 1..16 and n_act 0..16" : NULL;
    if (why) {
        snprintf(err, errlen, "environment '%s': %s", spec, why);
        dlclose(h);
        return false;
    }
    Foreign *f = xcalloc(1, sizeof *f);
    f->fe = fe;
    f->state = fe->create(seed);
    if (!f->state) {
        snprintf(err, errlen, "environment '%s': create returned NULL", spec);
        free(f);
        dlclose(h);
        return false;
    }
    memset(out, 0, sizeof *out);
    out->cls = &env_foreign;
    out->st = f;
    out->lib = h;
    out->info.n_obs = fe->n_obs;
    out->info.n_act = fe->n_act;
    for (int i = 0; i < fe->n_obs; i++) {
        out->info.obs_levels[i] = fe->obs_levels ? fe->obs_levels[i] : 0;
        out->info.obs_names[i] = "obs";
    }
    for (int i = 0; i < fe->n_act; i++) {
        out->info.act_levels[i] = fe->act_levels ? fe->act_levels[i] : 0;
        out->info.act_names[i] = "act";
        out->info.act_lo[i] = -1e300;
        out->info.act_hi[i] = 1e300;
    }
    return true;
}

/* ---- opening ---- */

bool env_open(const char *spec, const Model *m, uint64_t seed, Env *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strstr(spec, ".so:"))
        return open_foreign(spec, seed, out, err, errlen);
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    for (int i = 0; env_builtins[i]; i++) {
        const EnvClass *c = env_builtins[i];
        if (strlen(c->name) != n || strncmp(c->name, spec, n))
            continue;
        char sub[256];
        out->st = c->create(colon ? colon + 1 : NULL, m, &out->info, sub, sizeof sub);
        if (!out->st) {
            snprintf(err, errlen, "environment '%s': %s", spec, sub);
            return false;
        }
        out->cls = c;
        rng_seed(&out->rng, seed);
        return true;
    }
    char list[256] = "";
    for (int i = 0; env_builtins[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ", env_builtins[i]->name);
    snprintf(err, errlen, "unknown environment '%.*s'; expected %slib.so:symbol (a FepEnvironment)", (int)n, spec, list);
    return false;
}

void env_reset(Env *e, double *obs) { e->cls->reset(e->st, &e->rng, obs); }

bool env_step(Env *e, const double *act, double *obs, double *reward)
{
    double clipped[16];
    for (int i = 0; i < e->info.n_act; i++) {
        clipped[i] = act[i];
        if (!e->info.act_levels[i])
            clipped[i] = act[i] < e->info.act_lo[i] ? e->info.act_lo[i] : act[i] > e->info.act_hi[i] ? e->info.act_hi[i]
                                                                                                      : act[i];
    }
    *reward = 0;
    return e->cls->step(e->st, &e->rng, clipped, obs, reward);
}

void env_close(Env *e)
{
    if (e->cls && e->st)
        e->cls->destroy(e->st);
    if (e->lib)
        dlclose(e->lib);
    memset(e, 0, sizeof *e);
}
