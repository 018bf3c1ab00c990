/* fuzz_frontend.c — libFuzzer target for the front half of the compiler:
 * the input is .fep source text, run through compile_model (lexer, parser,
 * lowering, pass_check) and, when that succeeds, pass_derive for the model's
 * own rule with observed nodes clamped (what `fepc check` does) and again
 * with them free.  Diagnostics go to /dev/null; externs are never resolved
 * (nothing is dlopen()ed).  Seeds: tests/fuzz/corpus/fuzz_frontend/.
 * tests/fuzz/replay.c runs this same function without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

#ifndef FEP_FUZZ_SINK
#define FEP_FUZZ_SINK
/* Where diagnostics go: /dev/null, opened once. */
static FILE *fuzz_sink(void)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        sink = stderr;
    return sink;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    Compiler c;
    if (compile_model(&c, "fuzz.fep", text, fuzz_sink())) {
        Model *m = c.model;
        pass_derive(&c.diag, m, m->train.rule, pass_clamp_set(m, true));
        pass_derive(&c.diag, m, m->train.rule, pass_clamp_set(m, false));
    }
    compiler_free(&c);
    free(text);
    return 0;
}
