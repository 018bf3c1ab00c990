/* table.c — the CSV reader behind `fepc plot lines|scatter`.  Unlike
 * runtime/csv.c (strict: every cell a finite number) it takes the files
 * people plot: training logs with empty cells where a value does not apply
 * (val_accuracy between evaluations), and tables with text columns nobody
 * asked for.
 *
 * Format: a header row of names, then rows with as many fields; fields may
 * be "quoted" ("" for a quote); blank lines are skipped anywhere; '\n' or
 * "\r\n" ends a line.  Cells: empty, "nan" and infinities are missing
 * (NaN); a non-numeric cell makes only its own column unusable, and the
 * error is raised when that column is selected (table_column). */
#include "plot.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One record split into NUL-terminated fields inside buf. */
typedef struct Record {
    char *buf; size_t len, cap;
    size_t *starts; int n_fields, cap_fields;
    int line;
} Record;

typedef struct Cursor {
    const char *text; size_t len, pos;
    int line;
} Cursor;

static void put_char(Record *rec, char c)
{
    if (rec->len == rec->cap) {
        rec->cap = rec->cap ? 2 * rec->cap : 256;
        rec->buf = xrealloc(rec->buf, rec->cap);
    }
    rec->buf[rec->len++] = c;
}

static void begin_field(Record *rec)
{
    if (rec->n_fields == rec->cap_fields) {
        rec->cap_fields = rec->cap_fields ? 2 * rec->cap_fields : 16;
        rec->starts = xrealloc(rec->starts, (size_t)rec->cap_fields * sizeof *rec->starts);
    }
    rec->starts[rec->n_fields++] = rec->len;
}

static const char *field(const Record *rec, int i)
{
    return rec->buf + rec->starts[i];
}

static bool at_line_end(const Cursor *cur)
{
    return cur->pos >= cur->len || cur->text[cur->pos] == '\n' ||
           (cur->text[cur->pos] == '\r' && (cur->pos + 1 >= cur->len || cur->text[cur->pos + 1] == '\n'));
}

/* Skips lines holding only spaces, tabs and a line break. */
static void skip_blank_lines(Cursor *cur)
{
    for (;;) {
        size_t p = cur->pos;
        while (p < cur->len && (cur->text[p] == ' ' || cur->text[p] == '\t' || cur->text[p] == '\r'))
            p++;
        if (p >= cur->len) {
            cur->pos = p;
            return;
        }
        if (cur->text[p] != '\n')
            return;
        cur->pos = p + 1;
        cur->line++;
    }
}

/* A quoted field's body, cursor just past the opening quote; false if unterminated. */
static bool read_quoted(Cursor *cur, Record *rec)
{
    for (;;) {
        if (cur->pos >= cur->len)
            return false;
        char c = cur->text[cur->pos++];
        if (c == '"') {
            if (cur->pos >= cur->len || cur->text[cur->pos] != '"')
                return true;
            cur->pos++;
        }
        cur->line += c == '\n';
        put_char(rec, c);
    }
}

/* Splits the next record: 1 = one read, 0 = end of input, -1 = an unterminated quote. */
static int read_record(Cursor *cur, Record *rec)
{
    skip_blank_lines(cur);
    if (cur->pos >= cur->len)
        return 0;
    rec->len = 0;
    rec->n_fields = 0;
    rec->line = cur->line;
    for (;;) {
        begin_field(rec);
        size_t p = cur->pos;
        while (p < cur->len && (cur->text[p] == ' ' || cur->text[p] == '\t'))
            p++;
        if (p < cur->len && cur->text[p] == '"') {
            cur->pos = p + 1;
            if (!read_quoted(cur, rec))
                return -1;
        }
        while (!at_line_end(cur) && cur->text[cur->pos] != ',')
            put_char(rec, cur->text[cur->pos++]);
        put_char(rec, '\0');
        if (cur->pos < cur->len && cur->text[cur->pos] == ',') {
            cur->pos++;
            continue;
        }
        cur->pos += cur->pos < cur->len && cur->text[cur->pos] == '\r';
        cur->pos += cur->pos < cur->len;    /* the '\n' */
        cur->line++;
        return 1;
    }
}

/* Copies s without leading and trailing spaces and tabs. */
static char *trimmed(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = xmalloc(n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* One cell into *out (NaN when missing); false if it is not a number. */
static bool parse_cell(const char *cell, double *out)
{
    char *s = trimmed(cell), *end;
    double v = strtod(s, &end);
    bool ok = !s[0] || (*end == '\0' && !strpbrk(s, "xX"));
    *out = ok && s[0] && isfinite(v) ? v : NAN;
    free(s);
    return ok;
}

static void take_header(PlotTable *t, const Record *rec)
{
    t->t.n_columns = rec->n_fields;
    t->t.columns = xcalloc((size_t)rec->n_fields, sizeof *t->t.columns);
    t->bad_lines = xcalloc((size_t)rec->n_fields, sizeof *t->bad_lines);
    t->bad_cells = xcalloc((size_t)rec->n_fields, sizeof *t->bad_cells);
    for (int i = 0; i < rec->n_fields; i++)
        t->t.columns[i] = trimmed(field(rec, i));
}

static bool take_row(PlotTable *t, const Record *rec, int64_t *cap_rows, char *err, size_t errlen)
{
    int n = t->t.n_columns;
    if (rec->n_fields != n) {
        tio_error(err, errlen, "%s:%d: expected %d fields, found %d", t->path, rec->line, n, rec->n_fields);
        return false;
    }
    if (t->t.n_rows == *cap_rows) {
        *cap_rows = *cap_rows ? 2 * *cap_rows : 64;
        t->t.values = xrealloc(t->t.values, (size_t)*cap_rows * (size_t)n * sizeof *t->t.values);
        t->row_lines = xrealloc(t->row_lines, (size_t)*cap_rows * sizeof *t->row_lines);
    }
    t->row_lines[t->t.n_rows] = rec->line;
    double *row = t->t.values + t->t.n_rows * n;
    for (int i = 0; i < n; i++)
        if (!parse_cell(field(rec, i), &row[i]) && !t->bad_lines[i]) {
            t->bad_lines[i] = rec->line;
            t->bad_cells[i] = trimmed(field(rec, i));
        }
    t->t.n_rows++;
    return true;
}

bool table_load(const char *path, PlotTable *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        tio_error(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    Cursor cur = {.text = text, .len = len, .line = 1};
    Record rec = {0};
    int64_t cap_rows = 0;
    int more = read_record(&cur, &rec);
    bool ok = more == 1;
    if (more == 0)
        tio_error(err, errlen, "%s: empty file (no header row)", path);
    if (ok)
        take_header(out, &rec);
    while (ok && (more = read_record(&cur, &rec)) == 1)
        ok = take_row(out, &rec, &cap_rows, err, errlen);
    if (more < 0) {
        tio_error(err, errlen, "%s:%d: unterminated quoted field", path, rec.line);
        ok = false;
    }
    free(rec.buf);
    free(rec.starts);
    free(text);
    if (!ok)
        table_free(out);
    return ok;
}

void table_free(PlotTable *t)
{
    for (int i = 0; t->bad_cells && i < t->t.n_columns; i++)
        free(t->bad_cells[i]);
    free(t->bad_cells);
    free(t->bad_lines);
    free(t->row_lines);
    csv_free(&t->t);
    memset(t, 0, sizeof *t);
}

/* "a, b, c" (cut short with "..." past about 200 bytes). */
static void list_columns(const PlotTable *t, char *buf, size_t buflen)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->t.n_columns && used + 1 < buflen; i++) {
        char shown[TIO_NAME_SHOW];
        const char *name = tio_show_name(t->t.columns[i], shown);
        if (used + strlen(name) + 8 > buflen) {
            snprintf(buf + used, buflen - used, "%s...", i ? ", " : "");
            return;
        }
        used += (size_t)snprintf(buf + used, buflen - used, "%s%s", i ? ", " : "", name);
    }
}

int table_column(const PlotTable *t, const char *name, char *err, size_t errlen)
{
    char shown[TIO_NAME_SHOW], cell[TIO_NAME_SHOW];
    int col = csv_column(&t->t, name);
    if (col < 0) {
        char names[240];
        list_columns(t, names, sizeof names);
        tio_error(err, errlen, "%s: no column '%s' (columns: %s)", t->path, tio_show_name(name, shown), names);
        return -1;
    }
    if (t->bad_lines[col]) {
        tio_error(err, errlen, "%s:%d: column '%s': '%s' is not a number", t->path, t->bad_lines[col],
                  tio_show_name(name, shown), tio_show_name(t->bad_cells[col], cell));
        return -1;
    }
    return col;
}
