/* codegen.h — LLVM code generation for derived programs, and the JIT
 * engine that runs them.
 *
 * emit.c turns a Program and its Plan into LLVM functions, one per phase:
 *     void <prefix>_<phase>(void **buffers, int64_t batch, void **externs)
 * buffers[b] is buffer b's storage (the session's Storage.data), which
 * must not overlap any other buffer's (the code is optimised assuming so);
 * externs holds each extern's float(float) function and derivative,
 * interleaved.
 * jit.c puts each phase in a module of its own, optimises them for the host
 * CPU (new pass manager, O3) in parallel (objects.c) and loads the objects
 * into ORC LLJIT.  Tools reach all of this through engine_jit(); the
 * runtime only ever sees an Engine. */
#ifndef FEP_CODEGEN_H
#define FEP_CODEGEN_H

#include "../runtime/runtime.h"

typedef struct LLVMOpaqueModule *LLVMModuleRef;
typedef struct LLVMOpaqueContext *LLVMContextRef;
typedef struct LLVMOpaqueTargetMachine *LLVMTargetMachineRef;
typedef struct LLVMOpaqueMemoryBuffer *LLVMMemoryBufferRef;

/* ---- emit.c ---- */
/* Adds the phase functions of `p` (planned by `plan`) to `mod`, named
 * `<prefix>_<phase>`.  f64 selects double arithmetic. */
void cg_emit_program(LLVMModuleRef mod, const Model *m, const Program *p, const Plan *plan, bool f64,
                     const char *prefix);
/* Adds just the function of one (non-empty) phase. */
void cg_emit_phase(LLVMModuleRef mod, const Model *m, const Plan *plan, bool f64, const char *prefix, PhaseId phase);

/* ---- target.c ---- */
typedef struct LLVMOpaqueError *LLVMErrorRef;
/* Turns an LLVM error into "what: message" in err; true when there was none. */
bool cg_take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen);
/* A TargetMachine for this CPU; NULL with a message. */
LLVMTargetMachineRef cg_host_machine(char *err, size_t errlen);
/* Another TargetMachine with tm's target, CPU and features (NULL if LLVM
 * cannot make one), for another thread. */
LLVMTargetMachineRef cg_machine_like(LLVMTargetMachineRef tm);
LLVMModuleRef cg_new_module(LLVMContextRef ctx, LLVMTargetMachineRef tm, const char *name);
/* Verifies and optimises (default<O3>, without unrolling); false with a
 * message. */
bool cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, char *err, size_t errlen);
/* A module holding `p`'s phases under `prefix`, planned and emitted (and
 * optimised when asked). */
LLVMModuleRef cg_program_module(LLVMContextRef ctx, LLVMTargetMachineRef tm, Model *m, Program *p, bool f64,
                                const char *prefix, bool optimised, char *err, size_t errlen);

/* ---- objects.c ---- */
/* Verifies, optimises and generates object code for each of mods[0..n),
 * modules in contexts of their own, on up to one thread more than CPUs, into
 * objs[i] (the caller's, like the modules).  False with the first failure's
 * message and no objects. */
bool cg_compile_modules(LLVMModuleRef *mods, int n, LLVMTargetMachineRef tm, LLVMMemoryBufferRef *objs, char *err,
                        size_t errlen);

/* ---- cache.c: compiled objects on disk ---- */
uint64_t cache_key(uint64_t ir_hash, bool f64, LLVMTargetMachineRef tm);
/* The cached object for key, or NULL. */
LLVMMemoryBufferRef cache_load(uint64_t key);
void cache_store(uint64_t key, LLVMMemoryBufferRef object);

/* ---- jit.c ---- */
typedef struct Jit Jit;
Jit *jit_new(char *err, size_t errlen);
void jit_free(Jit *j);
/* Plans, emits, optimises and compiles `p`; fills fns[phase] (NULL for
 * empty phases).  Returns false with a message. */
bool jit_compile(Jit *j, Model *m, Program *p, bool f64, PhaseFn fns[N_PHASES], char *err, size_t errlen);
/* The optimised LLVM IR of a program as text (fepc emit --llvm); caller frees. */
char *jit_llvm_text(Model *m, Program *p, bool f64, bool optimised, char *err, size_t errlen);

/* ---- aot.c ---- */
/* `fepc build`: compiles the model's rule in training and prediction modes
 * (f32 and f64) into a shared object at so_path (with the model source
 * embedded) and writes the C header h_path.  Both written atomically. */
bool aot_build(Model *m, const char *source, const char *so_path, const char *h_path, char *err, size_t errlen);

/* The JIT as a runtime Engine: compiles each program on first use. */
Engine engine_jit(Jit *j);

#endif
