/* diagkit.c — see diagkit.h. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "diagkit.h"


/* Compiles `text` as "t.fep"; when that succeeds, derives the model's own
 * rule with observed nodes clamped (what `fepc check` does). */
void run_text(Run *r, const char *text)
{
    memset(r, 0, sizeof *r);
    r->out = open_memstream(&r->out_buf, &r->out_len);
    r->compiled = compile_model(&r->c, "t.fep", text, r->out);
    r->ok = r->compiled && pass_derive(&r->c.diag, r->c.model, r->c.model->train.rule,
                                       pass_clamp_set(r->c.model, true)) != NULL;
    fflush(r->out);
}

void run_free(Run *r)
{
    fclose(r->out);
    free(r->out_buf);
    compiler_free(&r->c);
}

/* The last error of `r`: message, line:col and the source text of its span. */
void check_last(Run *r, int line, int col, const char *span_text, const char *message)
{
    const Diag *d = &r->c.diag;
    assert_true(d->n_errors >= 1);
    assert_non_null(d->last_message);
    assert_string_equal(d->last_message, message);
    Span s = d->last_span;
    assert_true(s.file >= 0 && s.file < d->n_files);
    const SourceFile *f = &d->files[s.file];
    assert_true(s.start <= s.end && s.end <= f->len);
    int l, c;
    diag_line_col(d, s.file, s.start, &l, &c);
    if (l != line || c != col)
        fail_msg("'%s' reported at %d:%d, expected %d:%d", message, l, c, line, col);
    char *under = strndup(f->text + s.start, s.end - s.start);
    if (strcmp(under, span_text))
        fail_msg("'%s' spans \"%s\", expected \"%s\"", message, under, span_text);
    free(under);
}

/* `text` fails with exactly one error, worded `message`, at line:col over
 * `span_text`; the rendering starts with "t.fep:line:col: error: message". */
void expect_error(const char *text, int line, int col, const char *span_text, const char *message)
{
    Run r;
    run_text(&r, text);
    if (r.ok)
        fail_msg("expected \"%s\" but the model compiled:\n%s", message, text);
    if (r.c.diag.n_errors != 1)
        fail_msg("expected one error, got %d:\n%s", r.c.diag.n_errors, r.out_buf);
    check_last(&r, line, col, span_text, message);
    char head[512];
    snprintf(head, sizeof head, "t.fep:%d:%d: error: %s\n", line, col, message);
    if (strncmp(r.out_buf, head, strlen(head)))
        fail_msg("rendered as:\n%s\nexpected it to start with:\n%s", r.out_buf, head);
    run_free(&r);
}

/* `text` fails and prints exactly `rendered`. */
void expect_rendered(const char *text, const char *rendered)
{
    Run r;
    run_text(&r, text);
    assert_false(r.ok);
    assert_string_equal(r.out_buf, rendered);
    run_free(&r);
}

void expect_ok(const char *text)
{
    Run r;
    run_text(&r, text);
    if (!r.ok)
        fail_msg("expected success, got:\n%s", r.out_buf);
    run_free(&r);
}

