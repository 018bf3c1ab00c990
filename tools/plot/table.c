/* table.c — the CSV reader behind `fepc plot lines|scatter`.  Unlike
 * runtime/csv.c (strict: every cell a finite number) it takes the files
 * people plot: training logs with empty cells where a value does not apply
 * (val_accuracy between evaluations), and tables with text columns nobody
 * asked for.
 *
 * Format: a header row of names, then rows with as many fields, split by
 * runtime/csv.c's record reader (csv_read_record: "quoted" fields with ""
 * for a quote, '\n' or "\r\n" ends a line); blank lines, even of spaces,
 * are skipped anywhere.  Cells: empty, "nan" and infinities are missing
 * (NaN); a non-numeric cell makes only its own column unusable, and the
 * error is raised when that column is selected (table_column). */
#include "plot.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A line holding only spaces, tabs and CRs: one unquoted blank field. */
static bool is_blank_line(const CsvRecord *rec)
{
    const char *s = csv_field(rec, 0);
    return rec->n_fields == 1 && !rec->quoted[0] && s[strspn(s, " \t\r")] == '\0';
}

/* The next record that is not a blank line: 1, 0 at the end, -1 on an error. */
static int next_record(CsvReader *rd, CsvRecord *rec)
{
    int more;
    while ((more = csv_read_record(rd, rec)) == 1 && is_blank_line(rec))
        continue;
    return more;
}

/* One cell into *out (NaN when missing); false if it is not a number. */
static bool parse_cell(const char *cell, double *out)
{
    char *s = csv_trimmed(cell), *end;
    double v = strtod(s, &end);
    bool ok = !s[0] || (*end == '\0' && !strpbrk(s, "xX"));
    *out = ok && s[0] && isfinite(v) ? v : NAN;
    free(s);
    return ok;
}

static void take_header(PlotTable *t, const CsvRecord *rec)
{
    t->t.n_columns = rec->n_fields;
    t->t.columns = xcalloc((size_t)rec->n_fields, sizeof *t->t.columns);
    t->bad_lines = xcalloc((size_t)rec->n_fields, sizeof *t->bad_lines);
    t->bad_cells = xcalloc((size_t)rec->n_fields, sizeof *t->bad_cells);
    for (int i = 0; i < rec->n_fields; i++)
        t->t.columns[i] = csv_trimmed(csv_field(rec, i));
}

static bool take_row(PlotTable *t, const CsvRecord *rec, int64_t *cap_rows, char *err, size_t errlen)
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
        if (!parse_cell(csv_field(rec, i), &row[i]) && !t->bad_lines[i]) {
            t->bad_lines[i] = rec->line;
            t->bad_cells[i] = csv_trimmed(csv_field(rec, i));
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
    CsvReader rd = csv_reader(path, text, len, err, errlen);
    CsvRecord rec = {0};
    int64_t cap_rows = 0;
    int more = next_record(&rd, &rec);
    bool ok = more == 1;
    if (more == 0)
        tio_error(err, errlen, "%s: empty file (no header row)", path);
    if (ok)
        take_header(out, &rec);
    while (ok && (more = next_record(&rd, &rec)) == 1)
        ok = take_row(out, &rec, &cap_rows, err, errlen);
    ok = ok && more == 0;
    csv_record_free(&rec);
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
