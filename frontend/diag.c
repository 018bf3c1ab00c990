/* diag.c — the one place that renders diagnostics.
 *
 * Every message is "file:line:col: error: msg", then the source line behind a
 * right-aligned line number and " | ", then a caret under the span's first
 * character and '~' under the rest of the span on that line.  Columns are
 * 1-based display columns: UTF-8 continuation bytes do not count, a tab
 * counts as one and is echoed as a tab in the underline so the caret stays
 * aligned whatever the terminal's tab width.  Messages are formatted into the
 * Diag's arena; nothing here exits or allocates outside it. */
#include "frontend.h"

#include <stdarg.h>
#include <string.h>

enum {
    GUTTER_MIN = 4,     /* line numbers are right-aligned to at least this */
    SNIPPET_MAX = 160,  /* longer source lines are shown as a window */
    SNIPPET_LEFT = 60,  /* bytes of context kept left of the caret */
};

static bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

void diag_init(Diag *d, Arena *arena, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->arena = arena;
    d->out = out ? out : stderr;
    d->last_span.file = -1;
}

int diag_add_file(Diag *d, const char *name, const char *text, size_t len)
{
    d->files = arena_grow(d->arena, d->files, &d->cap_files, d->n_files, sizeof *d->files);
    SourceFile *f = &d->files[d->n_files];
    f->name = arena_strdup(d->arena, name ? name : "<input>");
    f->len = text ? len : 0;
    f->text = arena_strndup(d->arena, text ? text : "", f->len);
    return d->n_files++;
}

Span span_join(Span a, Span b)
{
    Span s = a;
    if (b.start < s.start)
        s.start = b.start;
    if (b.end > s.end)
        s.end = b.end;
    return s;
}

static const SourceFile *file_of(const Diag *d, int file)
{
    return file >= 0 && file < d->n_files ? &d->files[file] : NULL;
}

void diag_line_col(const Diag *d, int file, unsigned offset, int *line, int *col)
{
    const SourceFile *f = file_of(d, file);
    *line = *col = 0;
    if (!f)
        return;
    if (offset > f->len)
        offset = (unsigned)f->len;
    int l = 1, c = 1;
    for (unsigned i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)f->text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if (!is_continuation(ch)) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Echoes source bytes [from, to), replacing control characters (other than
 * tab) with '?' so a stray byte cannot garble the terminal. */
static void put_source(FILE *out, const char *text, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        unsigned char ch = (unsigned char)text[i];
        fputc(ch == '\t' || (ch >= 0x20 && ch != 0x7F) ? ch : '?', out);
    }
}

/* Moves `i` back to the start of the UTF-8 character it is inside. */
static unsigned char_start(const char *text, unsigned lo, unsigned i)
{
    while (i > lo && is_continuation((unsigned char)text[i]))
        i--;
    return i;
}

/* Prints the source line holding span.start and the caret/tilde underline. */
static void print_snippet(const Diag *d, Span span)
{
    const SourceFile *f = file_of(d, span.file);
    if (!f)
        return;
    const char *t = f->text;
    unsigned len = (unsigned)f->len;
    unsigned start = span.start > len ? len : span.start;
    unsigned ls = start, le = start;
    while (ls > 0 && t[ls - 1] != '\n')
        ls--;
    while (le < len && t[le] != '\n')
        le++;
    if (le > ls && t[le - 1] == '\r')
        le--;
    unsigned end = span.end < start ? start : span.end > le ? le : span.end;

    /* window very long lines around the caret */
    unsigned ws = ls, we = le;
    if (le - ls > SNIPPET_MAX) {
        if (start - ls > SNIPPET_LEFT)
            ws = char_start(t, ls, start - SNIPPET_LEFT);
        if (we - ws > SNIPPET_MAX)
            we = char_start(t, ws, ws + SNIPPET_MAX);
        if (end > we)
            end = we;
    }
    int line, col;
    diag_line_col(d, span.file, start, &line, &col);
    int width = GUTTER_MIN, digits = 1;
    for (int n = line; n >= 10; n /= 10)
        digits++;
    if (digits > width)
        width = digits;

    fprintf(d->out, "%*d | %s", width, line, ws > ls ? "..." : "");
    put_source(d->out, t, ws, we);
    fprintf(d->out, "%s\n%*s | %s", we < le ? "..." : "", width, "", ws > ls ? "   " : "");
    for (unsigned i = ws; i < start; i++) {
        if (t[i] == '\t')
            fputc('\t', d->out);
        else if (!is_continuation((unsigned char)t[i]))
            fputc(' ', d->out);
    }
    fputc('^', d->out);
    for (unsigned i = start + 1; i < end; i++)
        if (!is_continuation((unsigned char)t[i]))
            fputc('~', d->out);
    fputc('\n', d->out);
}

static char *vformat(Arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *s = arena_alloc(a, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* The shared body of diag_error and diag_note. */
static void report(Diag *d, const char *kind, Span span, const char *msg)
{
    const SourceFile *f = file_of(d, span.file);
    if (!f) {
        fprintf(d->out, "%s: %s\n", kind, msg);
        return;
    }
    int line, col;
    diag_line_col(d, span.file, span.start, &line, &col);
    fprintf(d->out, "%s:%d:%d: %s: %s\n", f->name, line, col, kind, msg);
    print_snippet(d, span);
}

void diag_error(Diag *d, Span span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(d->arena, fmt, ap);
    va_end(ap);
    d->n_errors++;
    d->last_message = msg;
    d->last_span = span;
    report(d, "error", span, msg);
}

void diag_note(Diag *d, Span span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(d->arena, fmt, ap);
    va_end(ap);
    report(d, "note", span, msg);
}

void diag_error_plain(Diag *d, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(d->arena, fmt, ap);
    va_end(ap);
    d->n_errors++;
    d->last_message = msg;
    d->last_span = (Span){-1, 0, 0};
    fprintf(d->out, "%s: error: %s\n", name ? name : "fepc", msg);
}
