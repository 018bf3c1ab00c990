/* emit.c — LLVM IR for the phase programs (see codegen.h).
 *
 * Each materialized node of a phase becomes either
 *   - a loop nest over its index space (batch, then per-sample dims) that
 *     computes the node's whole fused elementwise expression per element,
 *     reading leaves through broadcast strides; when every leaf is either
 *     the node's own layout or a scalar the nest is one flat loop, which
 *     LLVM vectorises; or
 *   - a call to fep_kernel_f32/f64 with a constant descriptor (matmul,
 *     reductions, softmax, transposes, axis-0 copies, spatial ops).
 * Phase results are then copied where the plan says so.  No fast-math:
 * results must match the reference interpreter.
 *
 * Distinct buffers never overlap (each is an allocation of its own, or a
 * batch slice of one), which LLVM cannot see through the buffer table: so
 * every load and store of a buffer carries that buffer's alias scope and
 * is noalias every other buffer the function touches.  Loops then
 * vectorise without run-time overlap checks, and without the scalar copies
 * of themselves kept for overlap, which were a fifth of the compile time. */
#include "codegen.h"

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/kernels.h"

enum { UNROLLED_TRIPS = 8 };   /* the longest loop marked to be unrolled */

_Static_assert(sizeof(FepKernelDesc) == 30 * sizeof(int32_t), "descriptor must be a flat i32 array");

/* A load or store of a buffer, tagged once the phase is emitted. */
typedef struct Access {
    LLVMValueRef inst;
    int buf;
} Access;

typedef struct Emitter {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    const Model *m;
    const Graph *g;
    const PhasePlan *pp;
    bool f64;
    LLVMTypeRef t, i64, i32, ptr, voidt;
    LLVMValueRef fn, bufs, batch, externs;
    LLVMValueRef *buf_ptr;        /* per buffer: its data pointer, loaded in the entry block */
    LLVMValueRef kernel;          /* fep_kernel_f32/f64 */
    LLVMTypeRef kernel_type;
    PhaseId phase;
    Access *access;
    int n_access, cap_access;
    int n_descs;
    const char *prefix;
} Emitter;

static LLVMValueRef i64c(Emitter *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, true); }

static LLVMValueRef tconst(Emitter *e, double v) { return LLVMConstReal(e->t, v); }

/* The data pointer of buffer `buf` (loaded once, in the entry block). */
static LLVMValueRef buffer_ptr(Emitter *e, int buf)
{
    if (buf < 0 || buf >= e->m->n_buffers)
        fep_die("emit: operand has no storage (buffer %d)", buf);
    return e->buf_ptr[buf];
}

/* Records a load or store of buffer `buf` for tag_accesses; returns it. */
static LLVMValueRef accessed(Emitter *e, LLVMValueRef inst, int buf)
{
    if (e->n_access == e->cap_access) {
        e->cap_access = e->cap_access ? 2 * e->cap_access : 64;
        e->access = xrealloc(e->access, sizeof *e->access * (size_t)e->cap_access);
    }
    e->access[e->n_access++] = (Access){inst, buf};
    return inst;
}

/* Gives each buffer the phase accesses a scope, and each access its
 * buffer's scope and the other buffers' as noalias. */
static void tag_accesses(Emitter *e)
{
    int n = e->m->n_buffers, used = 0;
    LLVMMetadataRef *scope = xcalloc((size_t)n + 1, sizeof *scope), *own = xcalloc((size_t)n + 1, sizeof *own),
                    *others = xcalloc((size_t)n + 1, sizeof *others), *list = xcalloc((size_t)n + 1, sizeof *list);
    LLVMMetadataRef name = LLVMMDStringInContext2(e->ctx, "fep.buffers", 11);
    LLVMMetadataRef domain = LLVMMDNodeInContext2(e->ctx, &name, 1);
    for (int i = 0; i < e->n_access; i++) {
        int b = e->access[i].buf;
        if (scope[b])
            continue;
        char label[96];   /* unique: the index */
        snprintf(label, sizeof label, "%d %s", b, e->m->buffers[b].name);
        LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(e->ctx, label, strlen(label)), domain};
        scope[b] = LLVMMDNodeInContext2(e->ctx, ops, 2);
        own[b] = LLVMMDNodeInContext2(e->ctx, &scope[b], 1);
        used++;
    }
    unsigned scope_kind = LLVMGetMDKindIDInContext(e->ctx, "alias.scope", 11),
             noalias_kind = LLVMGetMDKindIDInContext(e->ctx, "noalias", 7);
    for (int i = 0; i < e->n_access; i++) {
        int b = e->access[i].buf;
        if (!others[b]) {
            int k = 0;
            for (int c = 0; c < n; c++)
                if (scope[c] && c != b)
                    list[k++] = scope[c];
            others[b] = LLVMMDNodeInContext2(e->ctx, list, (size_t)k);
        }
        LLVMSetMetadata(e->access[i].inst, scope_kind, LLVMMetadataAsValue(e->ctx, own[b]));
        if (used > 1)
            LLVMSetMetadata(e->access[i].inst, noalias_kind, LLVMMetadataAsValue(e->ctx, others[b]));
    }
    free(scope);
    free(own);
    free(others);
    free(list);
}

/* The storage of a node the plan materialized. */
static LLVMValueRef node_ptr(Emitter *e, NodeId id)
{
    if (e->pp->home[id] < 0)
        fep_die("emit: node %%%d (%s) was fused but is read as stored", id, op_info[e->g->nodes[id].op].name);
    return buffer_ptr(e, e->pp->home[id]);
}

static LLVMValueRef node_len(Emitter *e, NodeId id)
{
    LLVMValueRef n = i64c(e, ir_numel(ir_node_shape(e->g, id)));
    return e->g->nodes[id].batched ? LLVMBuildMul(e->b, n, e->batch, "len") : n;
}

/* ---- intrinsics and libm ---- */

/* Transcendental maths is evaluated in double (x is a double here) and
 * rounded once by the caller: f32 results then equal the reference
 * interpreter's, which rounds each op's double result. */
static LLVMValueRef call_math(Emitter *e, const char *name, LLVMValueRef x)
{
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
    char full[64];
    snprintf(full, sizeof full, "%s%s", name, !strncmp(name, "llvm.", 5) ? ".f64" : "");
    LLVMTypeRef ft = LLVMFunctionType(d, &d, 1, false);
    LLVMValueRef f = LLVMGetNamedFunction(e->mod, full);
    if (!f)
        f = LLVMAddFunction(e->mod, full, ft);
    return LLVMBuildCall2(e->b, ft, f, &x, 1, "");
}

static LLVMValueRef dconst(Emitter *e, double v) { return LLVMConstReal(LLVMDoubleTypeInContext(e->ctx), v); }

static LLVMValueRef select_pos(Emitter *e, LLVMValueRef x, LLVMValueRef yes, LLVMValueRef no)
{
    LLVMValueRef pos = LLVMBuildFCmp(e->b, LLVMRealOGT, x, LLVMConstNull(LLVMTypeOf(x)), "");
    return LLVMBuildSelect(e->b, pos, yes, no, "");
}

/* ---- inline exp, expm1, tanh in double (vectorisable: no calls) ---- */

static LLVMValueRef fmadd(Emitter *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    return LLVMBuildFAdd(e->b, LLVMBuildFMul(e->b, a, b, ""), c, "");
}

/* Σ_{n=1..13} z^n / n!: expm1(z) to about 1e-16 relative for |z| ≤ 0.5. */
static LLVMValueRef expm1_taylor(Emitter *e, LLVMValueRef z)
{
    double fact = 1;
    double coef[14];
    for (int n = 1; n <= 13; n++) {
        fact *= n;
        coef[n] = 1 / fact;
    }
    LLVMValueRef p = dconst(e, coef[13]);
    for (int n = 12; n >= 1; n--)
        p = fmadd(e, p, z, dconst(e, coef[n]));
    return LLVMBuildFMul(e->b, p, z, "");
}

/* 2^k for integer-valued double k in [-1076, 1024], as two normal factors
 * (so denormal and near-overflow results are exact). */
static LLVMValueRef pow2(Emitter *e, LLVMValueRef k)
{
    LLVMTypeRef i64 = e->i64, d = LLVMDoubleTypeInContext(e->ctx);
    LLVMValueRef ki = LLVMBuildFPToSI(e->b, k, i64, "");
    LLVMValueRef half = LLVMBuildAShr(e->b, ki, i64c(e, 1), "");
    LLVMValueRef rest = LLVMBuildSub(e->b, ki, half, "");
    LLVMValueRef bias = i64c(e, 1023);
    LLVMValueRef a = LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, LLVMBuildAdd(e->b, half, bias, ""), i64c(e, 52), ""), d, "");
    LLVMValueRef b = LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, LLVMBuildAdd(e->b, rest, bias, ""), i64c(e, 52), ""), d, "");
    return LLVMBuildFMul(e->b, a, b, "");
}

/* e^x: x = k ln2 + r, |r| ≤ ln2/2, e^x = 2^k (1 + expm1(r)).  Inputs are
 * clamped to [-745.2, 709.8] (the results there are 0 and finite); NaN
 * propagates through the arithmetic. */
static LLVMValueRef inline_exp(Emitter *e, LLVMValueRef x)
{
    LLVMBuilderRef b = e->b;
    LLVMValueRef hi = dconst(e, 709.8), lo = dconst(e, -745.2);
    LLVMValueRef over = LLVMBuildFCmp(b, LLVMRealOGT, x, hi, ""), under = LLVMBuildFCmp(b, LLVMRealOLT, x, lo, "");
    LLVMValueRef c = LLVMBuildSelect(b, over, hi, LLVMBuildSelect(b, under, lo, x, ""), "");
    LLVMValueRef k = call_math(e, "llvm.rint", LLVMBuildFMul(b, c, dconst(e, 1.4426950408889634), ""));
    LLVMValueRef r = fmadd(e, k, dconst(e, -6.93147180369123816490e-01), c);
    r = fmadd(e, k, dconst(e, -1.90821492927058770002e-10), r);
    LLVMValueRef v = LLVMBuildFMul(b, LLVMBuildFAdd(b, dconst(e, 1), expm1_taylor(e, r), ""), pow2(e, k), "");
    LLVMValueRef inf = dconst(e, INFINITY), zero = dconst(e, 0);
    return LLVMBuildSelect(b, over, inf, LLVMBuildSelect(b, under, zero, v, ""), "");
}

static LLVMValueRef inline_expm1(Emitter *e, LLVMValueRef x)
{
    LLVMValueRef small = LLVMBuildFCmp(e->b, LLVMRealOLT, call_math(e, "llvm.fabs", x), dconst(e, 0.5), "");
    LLVMValueRef big = LLVMBuildFSub(e->b, inline_exp(e, x), dconst(e, 1), "");
    return LLVMBuildSelect(e->b, small, expm1_taylor(e, x), big, "");
}

/* tanh x = sign(x) · t / (t + 2), t = expm1(2|x|), |x| capped at 20 where
 * tanh is 1 to double precision. */
static LLVMValueRef inline_tanh(Emitter *e, LLVMValueRef x)
{
    LLVMBuilderRef b = e->b;
    LLVMValueRef ax = call_math(e, "llvm.fabs", x);
    LLVMValueRef capped = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, ax, dconst(e, 20), ""), dconst(e, 20), ax, "");
    LLVMValueRef t = inline_expm1(e, LLVMBuildFMul(b, capped, dconst(e, 2), ""));
    LLVMValueRef mag = LLVMBuildFDiv(b, t, LLVMBuildFAdd(b, t, dconst(e, 2), ""), "");
    LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, x, dconst(e, 0), "");
    LLVMValueRef r = LLVMBuildSelect(b, neg, LLVMBuildFNeg(b, mag, ""), mag, "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, r, "");   /* NaN in, NaN out */
}

/* In f64 (the checking precision) transcendentals come from libm, correct
 * to within an ulp; f32 uses the inline versions, which keep loops
 * vectorised and are exact after rounding to float. */
static LLVMValueRef exp_of(Emitter *e, LLVMValueRef x)
{
    return e->f64 ? call_math(e, "llvm.exp", x) : inline_exp(e, x);
}

/* The double-precision maths of one non-arithmetic op (x is a double). */
static LLVMValueRef transcendental(Emitter *e, Op op, LLVMValueRef x)
{
    LLVMBuilderRef b = e->b;
    LLVMValueRef zero = dconst(e, 0), one = dconst(e, 1);
    switch (op) {
    case OP_TANH: return e->f64 ? call_math(e, "tanh", x) : inline_tanh(e, x);
    case OP_SIGMOID: {
        /* as the interpreter: 1/(1+e^−x) for x ≥ 0, e^x/(1+e^x) below */
        LLVMValueRef en = exp_of(e, LLVMBuildFNeg(b, x, "")), ep = exp_of(e, x);
        LLVMValueRef hi = LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, en, ""), "");
        LLVMValueRef lo = LLVMBuildFDiv(b, ep, LLVMBuildFAdd(b, one, ep, ""), "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, zero, ""), hi, lo, "");
    }
    case OP_ELU: return select_pos(e, x, x, e->f64 ? call_math(e, "expm1", x) : inline_expm1(e, x));
    case OP_SOFTPLUS: {
        /* x + log1p(e^−x) for x > 0, log1p(e^x) otherwise */
        LLVMValueRef hi = LLVMBuildFAdd(b, x, call_math(e, "log1p", call_math(e, "llvm.exp", LLVMBuildFNeg(b, x, ""))), "");
        LLVMValueRef lo = call_math(e, "log1p", call_math(e, "llvm.exp", x));
        return select_pos(e, x, hi, lo);
    }
    case OP_EXP: return exp_of(e, x);
    case OP_LOG: return call_math(e, "llvm.log", x);
    case OP_SQRT: return call_math(e, "llvm.sqrt", x);
    case OP_SIN: return call_math(e, "llvm.sin", x);
    case OP_COS: return call_math(e, "llvm.cos", x);
    case OP_TAN: return call_math(e, "tan", x);
    case OP_DIGAMMA: return call_math(e, "fep_digamma", x);
    default: fep_die("emit: %s is not transcendental", op_info[op].name);
    }
}

static LLVMValueRef call_extern(Emitter *e, const Attr *a, LLVMValueRef x)
{
    LLVMTypeRef f32 = LLVMFloatTypeInContext(e->ctx);
    LLVMTypeRef ft = LLVMFunctionType(f32, &f32, 1, false);
    LLVMValueRef slot = LLVMBuildGEP2(e->b, e->ptr, e->externs, (LLVMValueRef[]){i64c(e, 2 * a->ints[0] + a->ints[1])}, 1, "");
    LLVMValueRef fn = LLVMBuildLoad2(e->b, e->ptr, slot, "extern");
    LLVMValueRef arg = e->f64 ? LLVMBuildFPTrunc(e->b, x, f32, "") : x;
    LLVMValueRef r = LLVMBuildCall2(e->b, ft, fn, &arg, 1, "");
    return e->f64 ? LLVMBuildFPExt(e->b, r, e->t, "") : r;
}

/* The scalar maths of one elementwise op on already-computed operands. */
static LLVMValueRef scalar_op(Emitter *e, const Node *n, const Attr *a, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = e->b;
    LLVMValueRef zero = tconst(e, 0), one = tconst(e, 1);
    switch ((Op)n->op) {
    case OP_ADD: return LLVMBuildFAdd(b, x, y, "");
    case OP_SUB: return LLVMBuildFSub(b, x, y, "");
    case OP_MUL: return LLVMBuildFMul(b, x, y, "");
    case OP_DIV: return LLVMBuildFDiv(b, x, y, "");
    case OP_NEG: return LLVMBuildFNeg(b, x, "");
    case OP_TANH: case OP_SIGMOID: case OP_ELU: case OP_SOFTPLUS: case OP_EXP: case OP_LOG:
    case OP_SQRT: case OP_SIN: case OP_COS: case OP_TAN: case OP_DIGAMMA: {
        LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
        LLVMValueRef r = transcendental(e, (Op)n->op, e->f64 ? x : LLVMBuildFPExt(b, x, d, ""));
        return e->f64 ? r : LLVMBuildFPTrunc(b, r, e->t, "");
    }
    case OP_RELU: return select_pos(e, x, x, zero);
    case OP_SQUARE: return LLVMBuildFMul(b, x, x, "");
    case OP_ABS: {
        LLVMTypeRef ft = LLVMFunctionType(e->t, &e->t, 1, false);
        const char *name = e->f64 ? "llvm.fabs.f64" : "llvm.fabs.f32";
        LLVMValueRef f = LLVMGetNamedFunction(e->mod, name);
        if (!f)
            f = LLVMAddFunction(e->mod, name, ft);
        return LLVMBuildCall2(b, ft, f, &x, 1, "");
    }
    case OP_STEP: return select_pos(e, x, one, zero);
    case OP_SIGN: {
        LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, x, zero, "");
        return select_pos(e, x, one, LLVMBuildSelect(b, neg, tconst(e, -1), zero, ""));
    }
    case OP_EXTERN: return call_extern(e, a, x);
    default: fep_die("emit: %s is not elementwise", op_info[n->op].name);
    }
}

/* ---- loop nests ---- */

/* Where the loop nest currently is: one index per axis of the output
 * space (axis 0 = batch), or a single flat index. */
typedef struct Cursor {
    NodeId out;
    bool flat;
    LLVMValueRef flat_index;
    LLVMValueRef idx[FEP_MAX_RANK + 1];
    int rank;             /* axes in the space */
} Cursor;

/* Offset of `leaf` at the cursor: Σ idx_k · stride_k, stride 0 on the
 * axes where the leaf is broadcast. */
static LLVMValueRef leaf_offset(Emitter *e, const Cursor *c, NodeId leaf)
{
    const Node *ln = &e->g->nodes[leaf];
    int64_t numel = ir_numel(ir_node_shape(e->g, leaf));
    if (c->flat)
        return numel == 1 && !ln->batched ? i64c(e, 0) : c->flat_index;
    const Shape *ls = ir_node_shape(e->g, leaf);
    LLVMValueRef off = i64c(e, 0);
    int64_t stride = 1;
    int shift = c->rank - 1 - ls->rank;
    for (int k = c->rank - 1; k >= 1; k--) {
        int ld = k - 1 - shift;
        int64_t dim = ld >= 0 ? ls->dims[ld] : 1;
        if (dim != 1)
            off = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, c->idx[k], i64c(e, stride), ""), "");
        stride *= dim;
    }
    if (ln->batched)
        off = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, c->idx[0], i64c(e, stride), ""), "");
    return off;
}

static LLVMValueRef load_leaf(Emitter *e, const Cursor *c, NodeId leaf)
{
    LLVMValueRef base = buffer_ptr(e, e->pp->home[leaf]);
    LLVMValueRef at = LLVMBuildGEP2(e->b, e->t, base, (LLVMValueRef[]){leaf_offset(e, c, leaf)}, 1, "");
    return accessed(e, LLVMBuildLoad2(e->b, e->t, at, ""), e->pp->home[leaf]);
}

/* The value of `id` at the cursor: a constant, a stored value, or its
 * fused expression.  `top` is the node being materialized. */
static LLVMValueRef value_at(Emitter *e, const Cursor *c, NodeId id, bool top)
{
    const Node *n = &e->g->nodes[id];
    if (n->op == OP_FILL)
        return tconst(e, e->g->attrs[n->attr].num);
    if (!top && e->pp->home[id] >= 0)
        return load_leaf(e, c, id);
    if (n->op == OP_BROADCAST)
        return value_at(e, c, n->in[0], false);
    LLVMValueRef x = value_at(e, c, n->in[0], false);
    LLVMValueRef y = n->n_in > 1 ? value_at(e, c, n->in[1], false) : NULL;
    return scalar_op(e, n, n->attr >= 0 ? &e->g->attrs[n->attr] : NULL, x, y);
}

/* The back edge of a counted loop.  Loops of a few iterations known here
 * (the 3 × 3 products of filtering models) are marked to be unrolled
 * completely: the pipeline unrolls no other loop (target.c). */
static void latch_branch(Emitter *e, LLVMValueRef next, LLVMValueRef count, LLVMBasicBlockRef head,
                         LLVMBasicBlockRef after)
{
    LLVMValueRef br = LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, next, count, ""), head, after);
    if (!LLVMIsAConstantInt(count) || LLVMConstIntGetSExtValue(count) > UNROLLED_TRIPS)
        return;
    LLVMMetadataRef name = LLVMMDStringInContext2(e->ctx, "llvm.loop.unroll.full", 21);
    LLVMMetadataRef hint = LLVMMDNodeInContext2(e->ctx, &name, 1);
    LLVMMetadataRef self = LLVMTemporaryMDNode(e->ctx, NULL, 0);
    LLVMMetadataRef ops[2] = {self, hint};
    LLVMMetadataRef id = LLVMMDNodeInContext2(e->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, id);   /* a loop ID names itself first */
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9), LLVMMetadataAsValue(e->ctx, id));
}

/* A counted loop: calls body(i) for i in [0, count). */
typedef void (*LoopBody)(Emitter *e, Cursor *c, int axis);

static void counted_loop(Emitter *e, LLVMValueRef count, Cursor *c, int axis, LoopBody body, LLVMValueRef *slot)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "done");
    LLVMValueRef nonempty = LLVMBuildICmp(e->b, LLVMIntSGT, count, i64c(e, 0), "");
    LLVMBuildCondBr(e->b, nonempty, head, after);
    LLVMPositionBuilderAtEnd(e->b, head);
    LLVMValueRef i = LLVMBuildPhi(e->b, e->i64, "i");
    *slot = i;
    body(e, c, axis);
    LLVMValueRef next = LLVMBuildAdd(e->b, i, i64c(e, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    LLVMValueRef zero = i64c(e, 0);
    LLVMAddIncoming(i, &zero, &pre, 1);
    LLVMAddIncoming(i, &next, &latch, 1);
    latch_branch(e, next, count, head, after);
    LLVMPositionBuilderAtEnd(e->b, after);
}

static void store_element(Emitter *e, Cursor *c)
{
    LLVMValueRef v = value_at(e, c, c->out, true);
    LLVMValueRef base = buffer_ptr(e, e->pp->home[c->out]);
    LLVMValueRef off = c->flat ? c->flat_index : leaf_offset(e, c, c->out);
    accessed(e, LLVMBuildStore(e->b, v, LLVMBuildGEP2(e->b, e->t, base, &off, 1, "")), e->pp->home[c->out]);
}

static void nest_body(Emitter *e, Cursor *c, int axis)
{
    if (axis + 1 == c->rank) {
        store_element(e, c);
        return;
    }
    const Shape *s = ir_node_shape(e->g, c->out);
    counted_loop(e, i64c(e, s->dims[axis]), c, axis + 1, nest_body, &c->idx[axis + 1]);
}

static void flat_body(Emitter *e, Cursor *c, int axis) { store_element(e, c); }

/* True when every leaf of the fused expression has the output's layout or
 * is a single unbatched value, so one flat index addresses them all. */
static bool flat_ok(Emitter *e, NodeId out, NodeId id, bool top)
{
    const Node *n = &e->g->nodes[id];
    if (n->op == OP_FILL)
        return true;
    if (!top && e->pp->home[id] >= 0) {
        bool same = ir_shape_eq(ir_node_shape(e->g, id), ir_node_shape(e->g, out)) &&
                    n->batched == e->g->nodes[out].batched;
        return same || (ir_numel(ir_node_shape(e->g, id)) == 1 && !n->batched);
    }
    for (int k = 0; k < n->n_in; k++)
        if (!flat_ok(e, out, n->in[k], false))
            return false;
    return true;
}

static void emit_elementwise(Emitter *e, NodeId id)
{
    Cursor c = {.out = id, .rank = ir_node_shape(e->g, id)->rank + 1};
    if (flat_ok(e, id, id, true)) {
        c.flat = true;
        counted_loop(e, node_len(e, id), &c, 0, flat_body, &c.flat_index);
        return;
    }
    LLVMValueRef outer = e->g->nodes[id].batched ? e->batch : i64c(e, 1);
    counted_loop(e, outer, &c, 0, nest_body, &c.idx[0]);
}

/* ---- small matrix products, inline ---- */

/* An open counted loop [0, count): the index, and the blocks to close it. */
typedef struct OpenLoop {
    LLVMBasicBlockRef pre, head, after;
    LLVMValueRef index;
} OpenLoop;

static OpenLoop loop_begin(Emitter *e, LLVMValueRef count)
{
    OpenLoop l = {.pre = LLVMGetInsertBlock(e->b)};
    l.head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "mm");
    l.after = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "mm_done");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, count, i64c(e, 0), ""), l.head, l.after);
    LLVMPositionBuilderAtEnd(e->b, l.head);
    l.index = LLVMBuildPhi(e->b, e->i64, "k");
    LLVMValueRef zero = i64c(e, 0);
    LLVMAddIncoming(l.index, &zero, &l.pre, 1);
    return l;
}

static void loop_end(Emitter *e, OpenLoop *l, LLVMValueRef count)
{
    LLVMValueRef next = LLVMBuildAdd(e->b, l->index, i64c(e, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    LLVMAddIncoming(l->index, &next, &latch, 1);
    latch_branch(e, next, count, l->head, l->after);
    LLVMPositionBuilderAtEnd(e->b, l->after);
}

/* Element (row, col) of a matmul operand for sample `s`, honouring its
 * transpose flag; vectors are rows on the left, columns on the right. */
static LLVMValueRef operand_at(Emitter *e, NodeId x, bool left, bool trans, LLVMValueRef s, LLVMValueRef row,
                               LLVMValueRef col)
{
    const Shape *sh = ir_node_shape(e->g, x);
    int64_t cols = sh->rank == 2 ? sh->dims[1] : (left ? sh->dims[0] : 1);
    LLVMValueRef r = trans ? col : row, c = trans ? row : col;
    LLVMValueRef at = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, r, i64c(e, cols), ""), c, "");
    if (e->g->nodes[x].batched)
        at = LLVMBuildAdd(e->b, at, LLVMBuildMul(e->b, s, i64c(e, ir_numel(sh)), ""), "");
    LLVMValueRef ptr = LLVMBuildGEP2(e->b, e->t, node_ptr(e, x), &at, 1, "");
    return accessed(e, LLVMBuildLoad2(e->b, e->t, ptr, ""), e->pp->home[x]);
}

/* Per-sample products small enough that a call costs more than the work
 * (filtering models: 3 × 3) are emitted as loops.  Sums run over k in
 * ascending order, batch-summed products sample by sample, exactly as the
 * kernel's small-product loop does, so results are bit-identical. */
static bool small_matmul(const Emitter *e, NodeId id)
{
    const Node *n = &e->g->nodes[id];
    if (n->op != OP_MATMUL)
        return false;
    const Shape *a = ir_node_shape(e->g, n->in[0]), *out = ir_node_shape(e->g, id);
    int flags = e->g->attrs[n->attr].ints[0];
    int64_t k = a->rank == 2 ? a->dims[(flags & MM_TRANS_A) ? 0 : 1] : a->dims[0];
    return ir_numel(out) * k <= 512;
}

static void emit_small_matmul(Emitter *e, NodeId id)
{
    const Node *n = &e->g->nodes[id];
    int flags = e->g->attrs[n->attr].ints[0];
    bool ta = flags & MM_TRANS_A, tb = flags & MM_TRANS_B, sum = flags & MM_SUM_BATCH;
    const Shape *as = ir_node_shape(e->g, n->in[0]), *bs = ir_node_shape(e->g, n->in[1]);
    int64_t m = as->rank == 2 ? as->dims[ta ? 1 : 0] : 1, k = as->rank == 2 ? as->dims[ta ? 0 : 1] : as->dims[0];
    int64_t cols = bs->rank == 2 ? bs->dims[tb ? 0 : 1] : 1;
    bool any_batched = e->g->nodes[n->in[0]].batched || e->g->nodes[n->in[1]].batched;
    LLVMValueRef samples = any_batched ? e->batch : i64c(e, 1), out = node_ptr(e, id);
    if (sum) {   /* the batch sum accumulates into a zeroed output */
        LLVMValueRef bytes = i64c(e, m * cols * (e->f64 ? 8 : 4));
        LLVMBuildMemSet(e->b, out, LLVMConstInt(LLVMInt8TypeInContext(e->ctx), 0, false), bytes, 4);
    }
    OpenLoop ls = loop_begin(e, samples), li = loop_begin(e, i64c(e, m)), lj = loop_begin(e, i64c(e, cols));
    LLVMValueRef at = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, li.index, i64c(e, cols), ""), lj.index, "");
    if (!sum && n->batched)
        at = LLVMBuildAdd(e->b, at, LLVMBuildMul(e->b, ls.index, i64c(e, m * cols), ""), "");
    LLVMValueRef slot = LLVMBuildGEP2(e->b, e->t, out, &at, 1, "");
    LLVMValueRef acc = sum ? accessed(e, LLVMBuildLoad2(e->b, e->t, slot, ""), e->pp->home[id]) : tconst(e, 0);
    for (int64_t p = 0; p < k; p++) {   /* k is small: unrolled at emission */
        LLVMValueRef kk = i64c(e, p);
        LLVMValueRef x = operand_at(e, n->in[0], true, ta, ls.index, li.index, kk);
        LLVMValueRef y = operand_at(e, n->in[1], false, tb, ls.index, kk, lj.index);
        acc = LLVMBuildFAdd(e->b, acc, LLVMBuildFMul(e->b, x, y, ""), "");
    }
    accessed(e, LLVMBuildStore(e->b, acc, slot), e->pp->home[id]);
    loop_end(e, &lj, i64c(e, cols));
    loop_end(e, &li, i64c(e, m));
    loop_end(e, &ls, samples);
}

/* ---- kernel calls ---- */

static void describe(const Graph *g, NodeId id, FepKernelDesc *d)
{
    memset(d, 0, sizeof *d);
    const Node *n = &g->nodes[id];
    d->op = n->op;
    if (n->attr >= 0)
        memcpy(d->attr, g->attrs[n->attr].ints, sizeof d->attr);
    d->n_in = n->n_in;
    NodeId ops[3] = {n->in[0], n->n_in > 1 ? n->in[1] : NO_NODE, id};
    for (int i = 0; i < 3; i++) {
        if (ops[i] == NO_NODE)
            continue;
        const Shape *s = ir_node_shape(g, ops[i]);
        d->batched[i] = g->nodes[ops[i]].batched;
        d->rank[i] = s->rank;
        memcpy(d->dims[i], s->dims, sizeof(int32_t) * (size_t)s->rank);
    }
}

static void emit_kernel_call(Emitter *e, NodeId id)
{
    FepKernelDesc d;
    describe(e->g, id, &d);
    const int32_t *words = (const int32_t *)&d;
    LLVMValueRef elems[30];
    for (int i = 0; i < 30; i++)
        elems[i] = LLVMConstInt(e->i32, (unsigned long long)(uint32_t)words[i], false);
    LLVMTypeRef at = LLVMArrayType2(e->i32, 30);
    char name[96];
    snprintf(name, sizeof name, "%s_%s_desc%d", e->prefix, ir_phase_name(e->phase), e->n_descs++);
    LLVMValueRef global = LLVMAddGlobal(e->mod, at, name);
    LLVMSetInitializer(global, LLVMConstArray2(e->i32, elems, 30));
    LLVMSetGlobalConstant(global, true);
    LLVMSetLinkage(global, LLVMPrivateLinkage);
    const Node *n = &e->g->nodes[id];
    LLVMValueRef null = LLVMConstPointerNull(e->ptr);
    LLVMValueRef args[5] = {global, node_ptr(e, n->in[0]), n->n_in > 1 ? node_ptr(e, n->in[1]) : null,
                            node_ptr(e, id), e->batch};
    LLVMBuildCall2(e->b, e->kernel_type, e->kernel, args, 5, "");
}

static void emit_copy(Emitter *e, const Assign *a)
{
    NodeId src = a->src;
    LLVMValueRef bytes = LLVMBuildMul(e->b, node_len(e, src), i64c(e, e->f64 ? 8 : 4), "");
    LLVMBuildMemCpy(e->b, buffer_ptr(e, a->dst), e->f64 ? 8 : 4, node_ptr(e, src), e->f64 ? 8 : 4, bytes);
}

/* ---- functions ---- */

static void load_buffer_ptrs(Emitter *e)
{
    int n = e->m->n_buffers;
    e->buf_ptr = xcalloc((size_t)n + 1, sizeof *e->buf_ptr);
    for (int b = 0; b < n; b++) {
        LLVMValueRef slot = LLVMBuildGEP2(e->b, e->ptr, e->bufs, (LLVMValueRef[]){i64c(e, b)}, 1, "");
        e->buf_ptr[b] = LLVMBuildLoad2(e->b, e->ptr, slot, e->m->buffers[b].name);
    }
}

static void emit_phase(Emitter *e, PhaseId phase, const PhasePlan *pp)
{
    e->phase = phase;
    char name[96];
    ir_phase_symbol(name, sizeof name, e->prefix, phase);
    LLVMTypeRef params[3] = {e->ptr, e->i64, e->ptr};
    LLVMTypeRef ft = LLVMFunctionType(e->voidt, params, 3, false);
    e->fn = LLVMAddFunction(e->mod, name, ft);
    e->bufs = LLVMGetParam(e->fn, 0);
    e->batch = LLVMGetParam(e->fn, 1);
    e->externs = LLVMGetParam(e->fn, 2);
    e->pp = pp;
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry"));
    load_buffer_ptrs(e);
    for (int i = 0; i < pp->n_order; i++) {
        NodeId id = pp->order[i];
        if (plan_inlinable_op((Op)e->g->nodes[id].op))
            emit_elementwise(e, id);
        else if (small_matmul(e, id))
            emit_small_matmul(e, id);
        else
            emit_kernel_call(e, id);
    }
    for (int i = 0; i < pp->n_copies; i++)
        emit_copy(e, &pp->copies[i]);
    LLVMBuildRetVoid(e->b);
    tag_accesses(e);
    free(e->buf_ptr);
}

void cg_emit_phase(LLVMModuleRef mod, const Model *m, const Plan *plan, bool f64, const char *prefix, PhaseId phase)
{
    Emitter e = {.mod = mod, .m = m, .g = &m->g, .f64 = f64, .prefix = prefix};
    e.ctx = LLVMGetModuleContext(mod);
    e.b = LLVMCreateBuilderInContext(e.ctx);
    e.t = f64 ? LLVMDoubleTypeInContext(e.ctx) : LLVMFloatTypeInContext(e.ctx);
    e.i64 = LLVMInt64TypeInContext(e.ctx);
    e.i32 = LLVMInt32TypeInContext(e.ctx);
    e.ptr = LLVMPointerTypeInContext(e.ctx, 0);
    e.voidt = LLVMVoidTypeInContext(e.ctx);
    LLVMTypeRef kparams[5] = {e.ptr, e.ptr, e.ptr, e.ptr, e.i64};
    e.kernel_type = LLVMFunctionType(e.voidt, kparams, 5, false);
    const char *kname = f64 ? "fep_kernel_f64" : "fep_kernel_f32";
    e.kernel = LLVMGetNamedFunction(mod, kname);
    if (!e.kernel)
        e.kernel = LLVMAddFunction(mod, kname, e.kernel_type);
    emit_phase(&e, phase, &plan->phases[phase]);
    free(e.access);
    LLVMDisposeBuilder(e.b);
}

void cg_emit_program(LLVMModuleRef mod, const Model *m, const Program *p, const Plan *plan, bool f64,
                     const char *prefix)
{
    for (int ph = 0; ph < N_PHASES; ph++)
        if (p->phases[ph].n_assigns)
            cg_emit_phase(mod, m, plan, f64, prefix, (PhaseId)ph);
}
