/* jit.c — compiles emitted modules in memory with ORC LLJIT, tuned for the
 * host CPU, and wraps the result as a runtime Engine.
 *
 * One Jit owns one LLJIT instance; every compiled program gets a unique
 * symbol prefix in it.  Each phase of a program is a module of its own, so
 * phases compile in parallel (objects.c) and are cached one by one.
 * Modules are optimised with the new pass manager (default<O3>) on a
 * TargetMachine for the host's CPU name and features, so loops are
 * vectorised to the machine's width.  Runtime helpers (fep_kernel_*) and
 * libm resolve from the process. */
#include "codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>

#include "../runtime/kernels.h"

typedef struct Compiled {
    uint64_t program;     /* Program.uid (addresses are reused after a model is freed) */
    bool f64;
    PhaseFn fns[N_PHASES];
    void **externs;
} Compiled;

struct Jit {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm;
    uint64_t *keys;       /* cache keys of the code already in this JIT */
    int n_keys;
    Compiled *compiled;
    int n_compiled, cap_compiled;
};

/* Symbols the generated code calls that live in this process. */
static bool define_runtime_symbols(Jit *j, char *err, size_t errlen)
{
    LLVMOrcJITDylibRef main = LLVMOrcLLJITGetMainJITDylib(j->jit);
    LLVMOrcDefinitionGeneratorRef gen;
    if (!cg_take_error(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit),
                                                                          NULL, NULL),
                    "process symbols", err, errlen))
        return false;
    LLVMOrcJITDylibAddGenerator(main, gen);
    LLVMOrcCSymbolMapPair syms[3] = {
        {LLVMOrcLLJITMangleAndIntern(j->jit, "fep_kernel_f32"),
         {(LLVMOrcExecutorAddress)(uintptr_t)fep_kernel_f32, {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
        {LLVMOrcLLJITMangleAndIntern(j->jit, "fep_kernel_f64"),
         {(LLVMOrcExecutorAddress)(uintptr_t)fep_kernel_f64, {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
        {LLVMOrcLLJITMangleAndIntern(j->jit, "fep_digamma"),
         {(LLVMOrcExecutorAddress)(uintptr_t)fep_digamma, {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
    };
    return cg_take_error(LLVMOrcJITDylibDefine(main, LLVMOrcAbsoluteSymbols(syms, 3)), "runtime symbols", err, errlen);
}

Jit *jit_new(char *err, size_t errlen)
{
    Jit *j = xcalloc(1, sizeof *j);
    j->tm = cg_host_machine(err, errlen);
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    if (!j->tm || !cg_take_error(LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb), "host detection", err, errlen)) {
        jit_free(j);
        return NULL;
    }
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    if (!cg_take_error(LLVMOrcCreateLLJIT(&j->jit, builder), "creating the JIT", err, errlen) ||
        !define_runtime_symbols(j, err, errlen)) {
        jit_free(j);
        return NULL;
    }
    return j;
}

void jit_free(Jit *j)
{
    if (!j)
        return;
    if (j->jit)
        LLVMOrcDisposeLLJIT(j->jit);
    if (j->tm)
        LLVMDisposeTargetMachine(j->tm);
    for (int i = 0; i < j->n_compiled; i++)
        free(j->compiled[i].externs);
    free(j->compiled);
    free(j->keys);
    free(j);
}

/* One phase of a program on its way into the JIT. */
typedef struct Unit {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    size_t size;              /* of its bitcode: what its compile time goes by */
    uint64_t key;             /* in the disk cache */
    LLVMMemoryBufferRef obj;
} Unit;

static int larger_first(const void *a, const void *b)
{
    size_t x = (*(Unit *const *)a)->size, y = (*(Unit *const *)b)->size;
    return (x < y) - (x > y);
}

/* Loads the optimised object code of p's phases into the JIT, each from
 * the disk cache or freshly built (and then cached).  A phase's key hashes
 * its emitted, unoptimised IR (as bitcode, which is quicker to write than
 * text), so any change to the program or to code generation misses. */
static bool load_program(Jit *j, Model *m, Program *p, bool f64, const char *prefix, char *err, size_t errlen)
{
    Plan *plan = pass_plan(m, p);
    Unit units[N_PHASES], *todo[N_PHASES];
    int n = 0, n_todo = 0;
    for (int ph = 0; ph < N_PHASES; ph++) {
        if (!p->phases[ph].n_assigns)
            continue;
        Unit *u = &units[n++];
        char name[64];
        ir_phase_symbol(name, sizeof name, prefix, (PhaseId)ph);
        u->ctx = LLVMContextCreate();
        u->mod = cg_new_module(u->ctx, j->tm, name);
        cg_emit_phase(u->mod, m, plan, f64, prefix, (PhaseId)ph);
        LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(u->mod);
        u->size = LLVMGetBufferSize(bitcode);
        u->key = cache_key(hash_bytes(LLVMGetBufferStart(bitcode), u->size, 0), f64, j->tm);
        LLVMDisposeMemoryBuffer(bitcode);
        u->obj = cache_load(u->key);
        if (!u->obj)
            todo[n_todo++] = u;
    }
    /* Largest first, so that the threads finish together. */
    qsort(todo, (size_t)n_todo, sizeof *todo, larger_first);
    LLVMModuleRef mods[N_PHASES];
    LLVMMemoryBufferRef objs[N_PHASES];
    for (int k = 0; k < n_todo; k++)
        mods[k] = todo[k]->mod;
    bool ok = cg_compile_modules(mods, n_todo, j->tm, objs, err, errlen);
    for (int k = 0; ok && k < n_todo; k++) {
        todo[k]->obj = objs[k];
        cache_store(todo[k]->key, objs[k]);
    }
    for (int i = 0; i < n; i++) {
        LLVMDisposeModule(units[i].mod);
        LLVMContextDispose(units[i].ctx);
        if (!units[i].obj)
            continue;
        if (ok)   /* the JIT takes the buffer */
            ok = cg_take_error(LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), units[i].obj),
                               "loading code", err, errlen);
        else
            LLVMDisposeMemoryBuffer(units[i].obj);
    }
    return ok;
}

static bool loaded(const Jit *j, uint64_t key)
{
    for (int i = 0; i < j->n_keys; i++)
        if (j->keys[i] == key)
            return true;
    return false;
}

bool jit_compile(Jit *j, Model *m, Program *p, bool f64, PhaseFn fns[N_PHASES], char *err, size_t errlen)
{
    pass_plan(m, p);
    uint64_t key = hash_mix(pass_program_hash(m, p), f64);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "k%016llx", (unsigned long long)key);
    /* Identical programs share one copy of the code in this process. */
    if (!loaded(j, key)) {
        if (!load_program(j, m, p, f64, prefix, err, errlen))
            return false;
        j->keys = xrealloc(j->keys, sizeof *j->keys * (size_t)(j->n_keys + 1));
        j->keys[j->n_keys++] = key;
    }
    for (int ph = 0; ph < N_PHASES; ph++) {
        fns[ph] = NULL;
        if (!p->phases[ph].n_assigns)
            continue;
        char name[64];
        ir_phase_symbol(name, sizeof name, prefix, (PhaseId)ph);
        LLVMOrcExecutorAddress addr;
        if (!cg_take_error(LLVMOrcLLJITLookup(j->jit, &addr, name), "linking", err, errlen))
            return false;
        fns[ph] = (PhaseFn)(uintptr_t)addr;
    }
    return true;
}

char *jit_llvm_text(Model *m, Program *p, bool f64, bool optimised, char *err, size_t errlen)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    char *text = NULL;
    if (tm) {
        LLVMModuleRef mod = cg_program_module(ctx, tm, m, p, f64, "fep", optimised, err, errlen);
        if (mod) {
            char *s = LLVMPrintModuleToString(mod);
            text = xstrdup(s);
            LLVMDisposeMessage(s);
            LLVMDisposeModule(mod);
        }
        LLVMDisposeTargetMachine(tm);
    }
    LLVMContextDispose(ctx);
    return text;
}

/* ---- the Engine ---- */

static Compiled *find(Jit *j, const Program *p, bool f64)
{
    for (int i = 0; i < j->n_compiled; i++)
        if (j->compiled[i].program == p->uid && j->compiled[i].f64 == f64)
            return &j->compiled[i];
    return NULL;
}

static bool jit_prepare(void *ctx, Program *p, bool f64, char *err, size_t errlen)
{
    Jit *j = ctx;
    if (find(j, p, f64))
        return true;
    Compiled c = {.program = p->uid, .f64 = f64};
    Model *m = p->model;
    if (m->n_externs && !ir_resolve_externs(m, err, errlen))
        return false;
    c.externs = xcalloc((size_t)(2 * m->n_externs + 1), sizeof *c.externs);
    for (int i = 0; i < m->n_externs; i++) {
        c.externs[2 * i] = m->externs[i].fn_f;
        c.externs[2 * i + 1] = m->externs[i].grad_fn_f;
    }
    if (!jit_compile(j, m, p, f64, c.fns, err, errlen)) {
        free(c.externs);
        return false;
    }
    if (j->n_compiled == j->cap_compiled) {
        j->cap_compiled = j->cap_compiled ? 2 * j->cap_compiled : 8;
        j->compiled = xrealloc(j->compiled, sizeof *j->compiled * (size_t)j->cap_compiled);
    }
    j->compiled[j->n_compiled++] = c;
    return true;
}

static bool jit_run(void *ctx, const Program *p, PhaseId phase, Storage *st, char *err, size_t errlen)
{
    Compiled *c = find(ctx, p, st->f64);
    if (!c) {
        snprintf(err, errlen, "program was not compiled for this precision");
        return false;
    }
    if (c->fns[phase])
        c->fns[phase](st->data, st->batch, c->externs);
    return true;
}

Engine engine_jit(Jit *j) { return (Engine){"jit", jit_prepare, jit_run, j, NULL}; }
