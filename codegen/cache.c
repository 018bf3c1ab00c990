/* cache.c — the on-disk cache of compiled kernels.
 *
 * An entry is the optimised object file of one phase of a program, named
 * by a key that covers everything the code depends on: the hash of the
 * emitted, unoptimised IR (so any change to the program or to code
 * generation misses), the precision, the target triple, CPU and features,
 * the LLVM version that optimises it and the version below.  Entries live in
 * $FEPC_CACHE_DIR, else $XDG_CACHE_HOME/fepc, else ~/.cache/fepc, and are
 * written atomically; a missing or unwritable directory only disables the
 * cache.  FEPC_CACHE_DIR=off turns it off. */
#include "codegen.h"

#include <errno.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CACHE_VERSION = 2 };   /* bump when the optimisation of the same IR changes */

/* The cache directory (created if needed), or false when disabled. */
static bool cache_dir(char *out, size_t len)
{
    const char *dir = getenv("FEPC_CACHE_DIR");
    if (dir && !strcmp(dir, "off"))
        return false;
    if (dir && *dir) {
        snprintf(out, len, "%s", dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(out, len, "%s/fepc", xdg);
        else if (home && *home)
            snprintf(out, len, "%s/.cache/fepc", home);
        else
            return false;
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", out);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            mkdir(parent, 0755);
        }
    }
    return mkdir(out, 0755) == 0 || errno == EEXIST;
}

uint64_t cache_key(uint64_t ir_hash, bool f64, LLVMTargetMachineRef tm)
{
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm),
         *features = LLVMGetTargetMachineFeatureString(tm);
    uint64_t h = hash_mix(ir_hash, (uint64_t)CACHE_VERSION << 1 | f64);
    h = hash_mix(h, (uint64_t)major << 32 | (uint64_t)minor << 16 | patch);
    h = hash_mix(h, hash_bytes(triple, strlen(triple), 1));
    h = hash_mix(h, hash_bytes(cpu, strlen(cpu), 2));
    h = hash_mix(h, hash_bytes(features, strlen(features), 3));
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return h;
}

static bool entry_path(uint64_t key, char *out, size_t len)
{
    char dir[4096];
    if (!cache_dir(dir, sizeof dir))
        return false;
    snprintf(out, len, "%s/%016llx.o", dir, (unsigned long long)key);
    return true;
}

LLVMMemoryBufferRef cache_load(uint64_t key)
{
    char path[4200];
    if (!entry_path(key, path, sizeof path))
        return NULL;
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    if (LLVMCreateMemoryBufferWithContentsOfFile(path, &buf, &msg)) {
        LLVMDisposeMessage(msg);
        return NULL;
    }
    return buf;
}

void cache_store(uint64_t key, LLVMMemoryBufferRef object)
{
    char path[4200], err[256];
    AtomicFile af;
    if (!entry_path(key, path, sizeof path) || !atomic_open(&af, path, err, sizeof err))
        return;
    if (atomic_write(&af, LLVMGetBufferStart(object), LLVMGetBufferSize(object), err, sizeof err))
        atomic_commit(&af, err, sizeof err);
    else
        atomic_abort(&af);
}
