/* csv.c — numeric CSV tables: a header row of column names, then rows of
 * finite numbers.  Used for `--bind NODE=file.csv` data, time series
 * (`fepc filter --data S.csv`) and the training log.  Fields may be quoted
 * ("a,b" with "" for a quote, newlines allowed inside quotes); lines end in
 * '\n' or "\r\n".
 *
 * The record reader (csv_reader, csv_read_record) splits text one record at a
 * time into a reusable CsvRecord; `fepc plot` reads its lenient tables with it
 * too.  csv_load reads the whole file (at most TENSORIO_MAX_CSV_BYTES) into
 * memory and parses records into numbers.  Every error names FILE:LINE (the
 * line where the record starts) and, for a cell, its column.  Trailing blank
 * lines are ignored; blank lines inside the table are errors. */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- record reader ---- */

CsvReader csv_reader(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    return (CsvReader){.text = text, .len = len, .line = 1, .path = path, .err = err, .errlen = errlen};
}

void csv_record_free(CsvRecord *rec)
{
    tio_buf_free(&rec->text);
    free(rec->starts);
    free(rec->quoted);
}

static void begin_field(CsvRecord *rec, bool quoted)
{
    if (rec->n_fields == rec->cap_fields) {
        rec->cap_fields = rec->cap_fields ? 2 * rec->cap_fields : 16;
        rec->starts = xrealloc(rec->starts, (size_t)rec->cap_fields * sizeof *rec->starts);
        rec->quoted = xrealloc(rec->quoted, (size_t)rec->cap_fields * sizeof *rec->quoted);
    }
    rec->starts[rec->n_fields] = rec->text.len;
    rec->quoted[rec->n_fields++] = quoted;
}

const char *csv_field(const CsvRecord *rec, int i)
{
    return rec->text.data + rec->starts[i];
}

static bool csv_fail(CsvReader *rd, int line, const char *msg)
{
    tio_error(rd->err, rd->errlen, "%s:%d: %s", rd->path, line, msg);
    return false;
}

/* A quoted field body (cursor after the opening quote) up to the closing quote. */
static bool read_quoted(CsvReader *rd, CsvRecord *rec)
{
    int start_line = rd->line;
    for (;;) {
        if (rd->pos >= rd->len)
            return csv_fail(rd, start_line, "unterminated quoted field");
        char c = rd->text[rd->pos++];
        if (c == '"') {
            if (rd->pos < rd->len && rd->text[rd->pos] == '"')
                rd->pos++;
            else
                break;
        } else if (c == '\0') {
            return csv_fail(rd, rd->line, "NUL byte in the file");
        } else if (c == '\n') {
            rd->line++;
        }
        tio_buf_append(&rec->text, &c, 1);
    }
    while (rd->pos < rd->len && (rd->text[rd->pos] == ' ' || rd->text[rd->pos] == '\t'))
        rd->pos++;
    char next = rd->pos < rd->len ? rd->text[rd->pos] : '\n';
    if (next != ',' && next != '\n' && !(next == '\r' && rd->pos + 1 < rd->len && rd->text[rd->pos + 1] == '\n'))
        return csv_fail(rd, rd->line, "unexpected character after a closing quote");
    return true;
}

/* An unquoted field up to ',' or the end of the line. */
static bool read_plain(CsvReader *rd, CsvRecord *rec)
{
    size_t start = rd->pos;
    while (rd->pos < rd->len) {
        char c = rd->text[rd->pos];
        if (c == ',' || c == '\n' || (c == '\r' && rd->pos + 1 < rd->len && rd->text[rd->pos + 1] == '\n'))
            break;
        if (c == '\0')
            return csv_fail(rd, rd->line, "NUL byte in the file");
        rd->pos++;
    }
    tio_buf_append(&rec->text, rd->text + start, rd->pos - start);
    return true;
}

/* True if only line breaks remain from pos on. */
static bool only_blank_lines_left(const CsvReader *rd)
{
    for (size_t p = rd->pos; p < rd->len; p++)
        if (rd->text[p] != '\n' && rd->text[p] != '\r')
            return false;
    return true;
}

int csv_read_record(CsvReader *rd, CsvRecord *rec)
{
    if (only_blank_lines_left(rd))
        return 0;
    rec->text.len = 0;
    rec->n_fields = 0;
    rec->line = rd->line;
    for (;;) {
        size_t start = rd->pos;
        while (rd->pos < rd->len && (rd->text[rd->pos] == ' ' || rd->text[rd->pos] == '\t'))
            rd->pos++;
        bool quoted = rd->pos < rd->len && rd->text[rd->pos] == '"';
        rd->pos = quoted ? rd->pos + 1 : start;    /* spaces before a quote are not content */
        begin_field(rec, quoted);
        if (!(quoted ? read_quoted(rd, rec) : read_plain(rd, rec)))
            return -1;
        tio_buf_append(&rec->text, "", 1);    /* the field's terminating NUL */
        if (rd->pos < rd->len && rd->text[rd->pos] == ',') {
            rd->pos++;
            continue;
        }
        if (rd->pos < rd->len)
            rd->pos += rd->text[rd->pos] == '\r' ? 2 : 1;
        rd->line++;
        break;
    }
    return 1;
}

char *csv_trimmed(const char *s)
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

/* ---- csv_load ---- */

/* The next record of a table, where a blank line is an error. */
static int next_table_record(CsvReader *rd, CsvRecord *rec)
{
    int more = csv_read_record(rd, rec);
    if (more == 1 && rec->n_fields == 1 && !rec->quoted[0] && csv_field(rec, 0)[0] == '\0') {
        csv_fail(rd, rec->line, "blank line inside the table");
        return -1;
    }
    return more;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Column names from the header record: non-empty and unique. */
static bool take_header(CsvReader *rd, const CsvRecord *rec, CsvTable *out)
{
    out->columns = xcalloc((size_t)rec->n_fields, sizeof *out->columns);
    out->n_columns = rec->n_fields;
    for (int i = 0; i < rec->n_fields; i++) {
        out->columns[i] = rec->quoted[i] ? xstrdup(csv_field(rec, i)) : csv_trimmed(csv_field(rec, i));
        if (!out->columns[i][0]) {
            char msg[64];
            snprintf(msg, sizeof msg, "column %d of the header has an empty name", i + 1);
            return csv_fail(rd, rec->line, msg);
        }
    }
    char **sorted = xmalloc((size_t)out->n_columns * sizeof *sorted);
    memcpy(sorted, out->columns, (size_t)out->n_columns * sizeof *sorted);
    qsort(sorted, (size_t)out->n_columns, sizeof *sorted, cmp_str_ptr);
    bool ok = true;
    for (int i = 1; ok && i < out->n_columns; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            char shown[TIO_NAME_SHOW], msg[120];
            snprintf(msg, sizeof msg, "duplicate column name '%s'", tio_show_name(sorted[i], shown));
            ok = csv_fail(rd, rec->line, msg);
        }
    free(sorted);
    return ok;
}

/* Parses one cell as a finite decimal number (hex, nan and inf rejected). */
static bool parse_cell(CsvReader *rd, const CsvTable *t, int line, int col, const char *cell, double *out)
{
    char shown[TIO_NAME_SHOW], cell_shown[TIO_NAME_SHOW], msg[240];
    char *s = csv_trimmed(cell), *end;
    errno = 0;
    double v = strtod(s, &end);
    bool ok = s[0] && *end == '\0' && !strpbrk(s, "xX") && isfinite(v);
    if (!ok) {
        const char *why = !s[0] ? "is empty" : *end || strpbrk(s, "xX") ? "is not a number" : "is not a finite number";
        snprintf(msg, sizeof msg, "column '%s': '%s' %s", tio_show_name(t->columns[col], shown),
                 tio_show_name(s, cell_shown), why);
        csv_fail(rd, line, msg);
    }
    free(s);
    *out = v;
    return ok;
}

/* Appends one data record as a row of values. */
static bool take_row(CsvReader *rd, const CsvRecord *rec, CsvTable *t, int64_t *cap_rows)
{
    if (rec->n_fields != t->n_columns) {
        char msg[96];
        snprintf(msg, sizeof msg, "expected %d fields, found %d", t->n_columns, rec->n_fields);
        return csv_fail(rd, rec->line, msg);
    }
    if (t->n_rows == *cap_rows) {
        int64_t cap = *cap_rows ? 2 * *cap_rows : 64;
        double *grown = realloc(t->values, (size_t)cap * (size_t)t->n_columns * sizeof *grown);
        if (!grown)
            return csv_fail(rd, rec->line, "out of memory");
        t->values = grown;
        *cap_rows = cap;
    }
    double *row = t->values + t->n_rows * t->n_columns;
    for (int i = 0; i < t->n_columns; i++)
        if (!parse_cell(rd, t, rec->line, i, csv_field(rec, i), &row[i]))
            return false;
    t->n_rows++;
    return true;
}

/* Reads at most TENSORIO_MAX_CSV_BYTES of path into a NUL-terminated buffer. */
static char *read_capped(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tio_error(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    bool too_big = false;
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;                                  /* end of file or an error */
        if (cap == TENSORIO_MAX_CSV_BYTES) {
            char probe;
            too_big = fread(&probe, 1, 1, f) == 1;
            break;
        }
        cap = cap * 2 < TENSORIO_MAX_CSV_BYTES ? cap * 2 : TENSORIO_MAX_CSV_BYTES;
        buf = xrealloc(buf, cap + 1);
    }
    bool failed = ferror(f) || too_big;
    if (too_big)
        tio_error(err, errlen, "%s: larger than the %zu-byte CSV limit", path, (size_t)TENSORIO_MAX_CSV_BYTES);
    else if (failed)
        tio_error(err, errlen, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

bool csv_load(const char *path, CsvTable *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = read_capped(path, &len, err, errlen);
    if (!text)
        return false;
    CsvReader rd = csv_reader(path, text, len, err, errlen);
    CsvRecord rec = {0};
    int64_t cap_rows = 0;
    int more = next_table_record(&rd, &rec);
    bool ok = more == 1;
    if (more == 0)
        csv_fail(&rd, 1, "empty file (no header row)");
    ok = ok && take_header(&rd, &rec, out);
    while (ok && (more = next_table_record(&rd, &rec)) == 1)
        ok = take_row(&rd, &rec, out, &cap_rows);
    ok = ok && more == 0;
    csv_record_free(&rec);
    free(text);
    if (!ok)
        csv_free(out);
    return ok;
}

void csv_free(CsvTable *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_columns; i++)
        free(t->columns[i]);
    free(t->columns);
    free(t->values);
    memset(t, 0, sizeof *t);
}

int csv_column(const CsvTable *t, const char *name)
{
    for (int i = 0; i < t->n_columns; i++)
        if (strcmp(t->columns[i], name) == 0)
            return i;
    return -1;
}

/* ---- writer ---- */

/* True if a name must be quoted to survive csv_load unchanged. */
static bool needs_quotes(const char *s)
{
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") || n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t';
}

static void write_name(FILE *f, const char *s)
{
    if (!needs_quotes(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Rejects infinities (naming row and column) before anything is written. */
static bool check_values(const char *path, char **columns, int n_columns, const double *values, int64_t n_rows,
                         char *err, size_t errlen)
{
    for (int64_t r = 0; r < n_rows; r++)
        for (int c = 0; c < n_columns; c++)
            if (isinf(values[r * n_columns + c])) {
                char shown[TIO_NAME_SHOW];
                tio_error(err, errlen, "%s: row %lld, column '%s': cannot write an infinite value", path,
                          (long long)r + 1, tio_show_name(columns[c], shown));
                return false;
            }
    return true;
}

bool csv_save(const char *path, char **columns, int n_columns, const double *values, int64_t n_rows,
              char *err, size_t errlen)
{
    if (n_columns <= 0 || n_rows < 0) {
        tio_error(err, errlen, "%s: a CSV table needs at least one column", path);
        return false;
    }
    if (!check_values(path, columns, n_columns, values, n_rows, err, errlen))
        return false;
    AtomicFile af;
    if (!atomic_open(&af, path, err, errlen))
        return false;
    for (int c = 0; c < n_columns; c++) {
        if (c)
            fputc(',', af.f);
        write_name(af.f, columns[c]);
    }
    fputc('\n', af.f);
    for (int64_t r = 0; r < n_rows && !ferror(af.f); r++) {
        for (int c = 0; c < n_columns; c++) {
            double v = values[r * n_columns + c];
            if (c)
                fputc(',', af.f);
            if (!isnan(v))
                fprintf(af.f, "%.9g", v);
        }
        fputc('\n', af.f);
    }
    return atomic_commit(&af, err, errlen);
}
