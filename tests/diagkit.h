/* diagkit.h — running a model text through the compiler and checking its
 * one diagnostic: message, line:col and the text under the caret (the
 * harness of test_diagnostics.c and test_agent_diagnostics.c). */
#ifndef FEP_DIAGKIT_H
#define FEP_DIAGKIT_H

#include <stdbool.h>
#include <stdio.h>

#include "passes/passes.h"

typedef struct Run {
    Compiler c;
    FILE *out;
    char *out_buf;
    size_t out_len;
    bool ok;              /* compiled and derived */
    bool compiled;        /* compile_model succeeded */
} Run;

/* Compiles `text` as "t.fep"; when that succeeds, derives the model's own
 * rule with observed nodes clamped (what `fepc check` does). */
void run_text(Run *r, const char *text);
void run_free(Run *r);
/* The last error of `r`: message, line:col and the source text of its span. */
void check_last(Run *r, int line, int col, const char *span_text, const char *message);
/* `text` fails with exactly one error, worded `message`, at line:col over
 * `span_text`; the rendering starts with "t.fep:line:col: error: message". */
void expect_error(const char *text, int line, int col, const char *span_text, const char *message);
/* `text` fails and prints exactly `rendered`. */
void expect_rendered(const char *text, const char *rendered);
void expect_ok(const char *text);

#endif
