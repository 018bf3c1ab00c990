/* target.c — the host target and module plumbing shared by the JIT and
 * the AOT builder: a TargetMachine for this CPU (name and features, so
 * vector width matches the machine), modules carrying its triple and data
 * layout, verification, and the O3 pipeline of the new pass manager.
 * Optimisation is never fast-math: results must match the interpreter.
 *
 * The pipeline unrolls only the loops emit.c marks (a few iterations, known
 * when emitted).  The vectoriser still vectorises and interleaves every
 * loop, so the loops that do the work are unchanged; what the unrollers
 * added was copies of vectorised loops of known length and of scalar
 * remainder loops, which doubled the time to optimise and generate code
 * (fmnist_mlp: 290 ms against 145 ms) for no measured speed. */
#include "codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>

bool cg_take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

static LLVMTargetMachineRef machine(LLVMTargetRef target, const char *triple, const char *cpu, const char *features)
{
    return LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                   LLVMCodeModelJITDefault);
}

LLVMTargetMachineRef cg_host_machine(char *err, size_t errlen)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetRef target;
    char *msg = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
    } else {
        tm = machine(target, triple, cpu, features);
    }
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

LLVMTargetMachineRef cg_machine_like(LLVMTargetMachineRef tm)
{
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm),
         *features = LLVMGetTargetMachineFeatureString(tm);
    LLVMTargetMachineRef copy = machine(LLVMGetTargetMachineTarget(tm), triple, cpu, features);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return copy;
}

static bool optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, char *err, size_t errlen)
{
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errlen, "generated code failed verification: %.400s", msg);
        LLVMDisposeMessage(msg);
        return false;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, true);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, true);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, false);
    bool ok = cg_take_error(LLVMRunPasses(mod, "default<O3>", tm, opts), "optimisation", err, errlen);
    LLVMDisposePassBuilderOptions(opts);
    return ok;
}

LLVMModuleRef cg_new_module(LLVMContextRef ctx, LLVMTargetMachineRef tm, const char *name)
{
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(name, ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    char *layout_text = LLVMCopyStringRepOfTargetData(layout);
    LLVMSetDataLayout(mod, layout_text);
    LLVMDisposeMessage(layout_text);
    LLVMDisposeTargetData(layout);
    return mod;
}

bool cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, char *err, size_t errlen)
{
    return optimise(mod, tm, err, errlen);
}

LLVMModuleRef cg_program_module(LLVMContextRef ctx, LLVMTargetMachineRef tm, Model *m, Program *p, bool f64,
                                const char *prefix, bool optimised, char *err, size_t errlen)
{
    Plan *plan = pass_plan(m, p);
    LLVMModuleRef mod = cg_new_module(ctx, tm, prefix);
    cg_emit_program(mod, m, p, plan, f64, prefix);
    if (optimised && !optimise(mod, tm, err, errlen)) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

