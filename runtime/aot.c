/* aot.c — loading shared objects written by `fepc build` (codegen/aot.c)
 * and running their compiled phases as an Engine.
 *
 * Loading is dlopen + the embedded model source: the caller compiles that
 * source, and aot_bind derives and plans the programs in the builder's
 * order, verifies that the buffer table has the signature the code was
 * compiled against, and looks up every phase function.  No LLVM here. */
#include "runtime.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

const char *const aot_prefixes[4] = {"fep_t32", "fep_p32", "fep_t64", "fep_p64"};

struct AotModule {
    void *handle;
    char *path;
    uint64_t signature;
    uint64_t rule;
    const Program *programs[2];
    PhaseFn fns[4][N_PHASES];
    void **externs;
};

uint64_t aot_rule_code(RuleSpec rule)
{
    return (uint64_t)rule.kind | (uint64_t)rule.backward << 8 | (uint64_t)rule.no_derivative << 16 |
           (uint64_t)rule.error_weights << 17;
}

bool aot_programs(Diag *d, Model *m, Program *out[2])
{
    for (int mode = 0; mode < 2; mode++) {
        out[mode] = pass_derive_cached(d, m, m->train.rule, pass_clamp_set(m, mode == 0));
        if (!out[mode])
            return false;
        pass_plan(m, out[mode]);
    }
    return true;
}

AotModule *aot_open(const char *path, const char **source, char *err, size_t errlen)
{
    /* RTLD_LOCAL: several modules may be open at once without clashing. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "cannot load module %s: %s", path, dlerror());
        return NULL;
    }
    const char *src = dlsym(h, "fep_module_source");
    const uint64_t *sig = dlsym(h, "fep_module_signature"), *abi = dlsym(h, "fep_module_abi");
    const uint64_t *rule = dlsym(h, "fep_module_rule");
    if (!src || !sig || !abi || !rule) {
        snprintf(err, errlen, "%s is not a module built by `fepc build`", path);
        dlclose(h);
        return NULL;
    }
    if (*abi != FEP_MODULE_ABI) {
        snprintf(err, errlen, "%s was built for module ABI %llu; this runtime reads %d (rebuild it)", path,
                 (unsigned long long)*abi, FEP_MODULE_ABI);
        dlclose(h);
        return NULL;
    }
    AotModule *a = xcalloc(1, sizeof *a);
    a->handle = h;
    a->path = xstrdup(path);
    a->signature = *sig;
    a->rule = *rule;
    *source = src;
    return a;
}

bool aot_bind(AotModule *a, Diag *d, Model *m, char *err, size_t errlen)
{
    if (aot_rule_code(m->train.rule) != a->rule) {
        snprintf(err, errlen, "%s was built for rule %s; rebuild it (fepc build) to run rule %s", a->path,
                 ir_rule_name((RuleKind)(a->rule & 0xff)), ir_rule_name(m->train.rule.kind));
        return false;
    }
    Program *programs[2];
    if (!aot_programs(d, m, programs)) {
        snprintf(err, errlen, "%s: its model does not derive", a->path);
        return false;
    }
    if (pass_buffer_signature(m) != a->signature) {
        snprintf(err, errlen, "%s: the compiled code does not match this runtime's derivation (rebuild the module)",
                 a->path);
        return false;
    }
    if (m->n_externs && !ir_resolve_externs(m, err, errlen))
        return false;
    a->externs = xcalloc((size_t)(2 * m->n_externs + 1), sizeof *a->externs);
    for (int i = 0; i < m->n_externs; i++) {
        a->externs[2 * i] = m->externs[i].fn_f;
        a->externs[2 * i + 1] = m->externs[i].grad_fn_f;
    }
    for (int v = 0; v < 4; v++) {
        const Program *p = programs[v % 2];
        a->programs[v % 2] = p;
        for (int ph = 0; ph < N_PHASES; ph++) {
            if (!p->phases[ph].n_assigns)
                continue;
            char name[64];
            ir_phase_symbol(name, sizeof name, aot_prefixes[v], (PhaseId)ph);
            a->fns[v][ph] = (PhaseFn)(uintptr_t)dlsym(a->handle, name);
            if (!a->fns[v][ph]) {
                snprintf(err, errlen, "%s: missing compiled phase %s", a->path, name);
                return false;
            }
        }
    }
    return true;
}

void aot_close(AotModule *a)
{
    if (!a)
        return;
    dlclose(a->handle);
    free(a->externs);
    free(a->path);
    free(a);
}

static int variant_of(const AotModule *a, const Program *p, bool f64)
{
    for (int mode = 0; mode < 2; mode++)
        if (a->programs[mode] == p)
            return mode + (f64 ? 2 : 0);
    return -1;
}

static bool aot_prepare(void *ctx, Program *p, bool f64, char *err, size_t errlen)
{
    if (variant_of(ctx, p, f64) < 0) {
        snprintf(err, errlen, "this module was built for rule %s in training and prediction modes only",
                 ir_rule_name(p->model->train.rule.kind));
        return false;
    }
    return true;
}

static bool aot_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    AotModule *a = ctx;
    int v = variant_of(a, p, st->f64);
    if (v < 0) {
        snprintf(err, errlen, "program not in this module");
        return false;
    }
    if (a->fns[v][phase])
        a->fns[v][phase](st->data, st->batch, a->externs);
    return true;
}

Engine engine_aot(AotModule *a) { return (Engine){"aot", aot_prepare, aot_run, a, NULL}; }
