/* objects.c — object code for a batch of independent modules, optimised
 * and generated in parallel.
 *
 * Optimisation and code generation are nearly all of a cold compile, and a
 * program's phases are independent functions, so the JIT emits each phase
 * into a module of its own (each in its own LLVMContext: a context is never
 * used by two threads at once) and compiles them here, each thread taking
 * the next module until none is left, one thread per CPU (while there are
 * modules for it; fmnist_mlp on 2 cores: 53 ms cold, 55 ms with a thread
 * more).  A TargetMachine is not safe to share, so every
 * extra thread gets its own, made like the caller's; the calling thread
 * works too, with the caller's.  Modules are taken in the order given:
 * callers put the largest first so that the threads end together. */
#include "codegen.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

enum { MAX_THREADS = 8 };

typedef struct Batch {
    LLVMModuleRef *mods;
    LLVMMemoryBufferRef *objs;
    int n;
    atomic_int next;       /* the next module to take */
    atomic_bool failed;    /* set by the first failure, which writes err */
    char *err;
    size_t errlen;
} Batch;

typedef struct Worker {
    Batch *batch;
    LLVMTargetMachineRef tm;
    pthread_t thread;
} Worker;

static bool compile_one(LLVMModuleRef mod, LLVMTargetMachineRef tm, LLVMMemoryBufferRef *obj, char *err,
                        size_t errlen)
{
    if (!cg_optimise(mod, tm, err, errlen))
        return false;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, obj)) {
        snprintf(err, errlen, "generating machine code: %s", msg);
        LLVMDisposeMessage(msg);
        *obj = NULL;
        return false;
    }
    return true;
}

static void *work(void *arg)
{
    Worker *w = arg;
    Batch *b = w->batch;
    char err[512];
    for (int i; !atomic_load(&b->failed) && (i = atomic_fetch_add(&b->next, 1)) < b->n;)
        if (!compile_one(b->mods[i], w->tm, &b->objs[i], err, sizeof err) && !atomic_exchange(&b->failed, true))
            snprintf(b->err, b->errlen, "%s", err);
    return NULL;
}

bool cg_compile_modules(LLVMModuleRef *mods, int n, LLVMTargetMachineRef tm, LLVMMemoryBufferRef *objs, char *err,
                        size_t errlen)
{
    Batch b = {.mods = mods, .objs = objs, .n = n, .err = err, .errlen = errlen};
    atomic_init(&b.next, 0);
    atomic_init(&b.failed, false);
    for (int i = 0; i < n; i++)
        objs[i] = NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : n <= cpus ? n : (int)cpus;
    threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    Worker workers[MAX_THREADS] = {{.batch = &b, .tm = tm}};
    int started = 1;
    while (started < threads) {
        Worker *w = &workers[started];
        *w = (Worker){.batch = &b, .tm = cg_machine_like(tm)};
        if (!w->tm)
            break;
        if (pthread_create(&w->thread, NULL, work, w)) {   /* fewer threads do the work */
            LLVMDisposeTargetMachine(w->tm);
            break;
        }
        started++;
    }
    work(&workers[0]);
    for (int k = 1; k < started; k++) {
        pthread_join(workers[k].thread, NULL);
        LLVMDisposeTargetMachine(workers[k].tm);
    }
    if (!atomic_load(&b.failed))
        return true;
    for (int i = 0; i < n; i++)
        if (objs[i]) {
            LLVMDisposeMemoryBuffer(objs[i]);
            objs[i] = NULL;
        }
    return false;
}
