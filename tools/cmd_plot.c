/* cmd_plot.c — `fepc plot KIND IN [options] -o OUT.png`: the argument
 * grammar of the three figure kinds and the load → draw → save sequence.
 *
 *   grid    IN.npy|IN.safetensors [--tensor NAME] [--shape H,W] [--cols C]
 *           [--count N] [--range LO,HI] [--scale S]
 *   lines   IN.csv --x COL --y COL[,COL...] [--logx] [--logy]
 *   scatter IN.csv --x COL --y COL [--color COL] [--logx] [--logy]
 *   lines and scatter: [--title T] [--xlabel L] [--ylabel L] [--width W] [--height H]
 *
 * grid: --tensor picks from a safetensors file (optional when it holds one
 * tensor; a .npy file has one); [N, D] without --shape needs a square D;
 * --count past N draws all N.  lines: points join in file order, rows with
 * an empty cell are skipped.  x and y labels default to the column names.
 *
 * Exit status: 0 written, 1 a data error ("fepc plot: FILE: ..."), 2 a usage
 * error (unknown kind or option, an option of another kind, a bad or
 * missing value).  Nothing is written unless the whole figure is drawn. */
#include "cli.h"
#include "plot/plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_Y_COLUMNS 32

static const char plot_usage[] =
    "usage: fepc plot KIND IN [options] -o OUT.png\n"
    "  grid IN.npy|IN.safetensors [--tensor NAME] [--shape H,W] [--cols C] [--count N]\n"
    "       [--range LO,HI] [--scale S]     the first N (default all, at most 400) images of\n"
    "       [N,H,W], [N,1,H,W] or [N,H*W] as greyscale, LO..HI (default 0,1) to black..white\n"
    "  lines IN.csv --x COL --y COL[,COL...] [--logx] [--logy]    one curve per y column\n"
    "  scatter IN.csv --x COL --y COL [--color CLASS_COL]         points, coloured by class 0..11\n"
    "  lines, scatter: [--title T] [--xlabel L] [--ylabel L] [--width W] [--height H] (default 640x480)\n";

enum { GRID = 1, LINES = 2, SCATTER = 4, CHARTS = LINES | SCATTER, ALL = 7 };

typedef struct PlotArgs {
    int kind;
    const char *in, *out, *tensor, *x, *color, *title, *xlabel, *ylabel;
    const char *ys[MAX_Y_COLUMNS]; int n_ys;
    char *ys_text;             /* owned copy of --y, split in place into ys */
    int shape[2]; bool has_shape;
    int cols, count, scale, width, height;
    double lo, hi;
    bool logx, logy;
} PlotArgs;

static const struct {
    const char *flag;
    int kinds;
    const char *value;         /* what the value must be; NULL for a switch */
} flags[] = {
    {"-o", ALL, "a file name"},
    {"--out", ALL, "a file name"},
    {"--tensor", GRID, "a tensor name"},
    {"--shape", GRID, "H,W: two integers from 1 to 8192"},
    {"--cols", GRID, "an integer from 1 to 400"},
    {"--count", GRID, "an integer from 1 to 400"},
    {"--range", GRID, "LO,HI: two different finite numbers"},
    {"--scale", GRID, "an integer from 1 to 64"},
    {"--x", CHARTS, "a column name"},
    {"--y", CHARTS, "column names separated by commas (at most 32)"},
    {"--color", SCATTER, "a column name"},
    {"--title", CHARTS, "a text"},
    {"--xlabel", CHARTS, "a text"},
    {"--ylabel", CHARTS, "a text"},
    {"--width", CHARTS, "an integer from 100 to 8192"},
    {"--height", CHARTS, "an integer from 100 to 8192"},
    {"--logx", CHARTS, NULL},
    {"--logy", CHARTS, NULL},
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fepc plot: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", plot_usage);
    va_end(ap);
    return 2;
}

static const char *kind_name(int kind)
{
    return kind == GRID ? "grid" : kind == LINES ? "lines" : "scatter";
}

/* An integer in lo..hi, all of text. */
static bool parse_int(const char *text, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!text[0] || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* "A,B" as two integers in lo..hi. */
static bool parse_int_pair(const char *text, int lo, int hi, int out[2])
{
    const char *comma = strchr(text, ',');
    char first[32];
    if (!comma || (size_t)(comma - text) >= sizeof first)
        return false;
    memcpy(first, text, (size_t)(comma - text));
    first[comma - text] = '\0';
    return parse_int(first, lo, hi, &out[0]) && parse_int(comma + 1, lo, hi, &out[1]);
}

/* "LO,HI" as two different finite numbers. */
static bool parse_range(const char *text, double *lo, double *hi)
{
    char *end;
    *lo = strtod(text, &end);
    if (end == text || *end != ',')
        return false;
    const char *second = end + 1;
    *hi = strtod(second, &end);
    return end != second && !*end && isfinite(*lo) && isfinite(*hi) && *lo != *hi;
}

/* Splits --y "a,b,c" into args->ys; false on an empty name or too many. */
static bool split_ys(PlotArgs *args, const char *text)
{
    free(args->ys_text);
    args->ys_text = xstrdup(text);
    args->n_ys = 0;
    for (char *p = args->ys_text;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p || args->n_ys == MAX_Y_COLUMNS)
            return false;
        args->ys[args->n_ys++] = p;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* Stores one valued option; false if the value is malformed or out of range. */
static bool take_value(PlotArgs *args, const char *flag, const char *v)
{
    bool ok = true;
    if (!strcmp(flag, "-o") || !strcmp(flag, "--out"))
        args->out = v;
    else if (!strcmp(flag, "--tensor"))
        args->tensor = v;
    else if (!strcmp(flag, "--shape"))
        ok = args->has_shape = parse_int_pair(v, 1, PLOT_MAX_SIDE, args->shape);
    else if (!strcmp(flag, "--cols"))
        ok = parse_int(v, 1, PLOT_MAX_IMAGES, &args->cols);
    else if (!strcmp(flag, "--count"))
        ok = parse_int(v, 1, PLOT_MAX_IMAGES, &args->count);
    else if (!strcmp(flag, "--scale"))
        ok = parse_int(v, 1, 64, &args->scale);
    else if (!strcmp(flag, "--range"))
        ok = parse_range(v, &args->lo, &args->hi);
    else if (!strcmp(flag, "--x"))
        args->x = v;
    else if (!strcmp(flag, "--y"))
        ok = split_ys(args, v);
    else if (!strcmp(flag, "--color"))
        args->color = v;
    else if (!strcmp(flag, "--title"))
        args->title = v;
    else if (!strcmp(flag, "--xlabel"))
        args->xlabel = v;
    else if (!strcmp(flag, "--ylabel"))
        args->ylabel = v;
    else if (!strcmp(flag, "--width"))
        ok = parse_int(v, 100, PLOT_MAX_SIDE, &args->width);
    else if (!strcmp(flag, "--height"))
        ok = parse_int(v, 100, PLOT_MAX_SIDE, &args->height);
    return ok;
}

/* One option at argv[*i] (advancing past its value); 0 or a usage status. */
static int take_option(PlotArgs *args, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) {
        if (strcmp(a, flags[k].flag))
            continue;
        if (!(flags[k].kinds & args->kind))
            return usage_error("option '%s' does not apply to plot %s", a, kind_name(args->kind));
        if (!flags[k].value) {
            args->logx |= !strcmp(a, "--logx");
            args->logy |= !strcmp(a, "--logy");
            return 0;
        }
        if (*i + 1 >= argc)
            return usage_error("option '%s' needs a value (%s)", a, flags[k].value);
        const char *v = argv[++*i];
        return take_value(args, a, v) ? 0 : usage_error("bad value '%s' for %s (expected %s)", v, a, flags[k].value);
    }
    return usage_error("unknown option '%s'", a);
}

static int parse_plot_args(int argc, char **argv, PlotArgs *args)
{
    *args = (PlotArgs){.scale = 2, .lo = 0, .hi = 1, .width = 640, .height = 480};
    if (argc < 1)
        return usage_error("missing the figure kind (grid, lines or scatter)");
    const char *kind = argv[0];
    args->kind = !strcmp(kind, "grid") ? GRID : !strcmp(kind, "lines") ? LINES : !strcmp(kind, "scatter") ? SCATTER : 0;
    if (!args->kind)
        return usage_error("unknown plot kind '%s' (expected grid, lines or scatter)", kind);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            int rc = take_option(args, argc, argv, &i);
            if (rc)
                return rc;
            continue;
        }
        if (args->in)
            return usage_error("unexpected argument '%s' (plot takes one input file)", argv[i]);
        args->in = argv[i];
    }
    if (!args->in)
        return usage_error("plot %s: missing the input file", kind);
    if (!args->out)
        return usage_error("plot %s: missing -o OUT.png", kind);
    if (args->kind != GRID && (!args->x || !args->n_ys))
        return usage_error("plot %s needs --x COL and --y COL", kind);
    if (args->kind == SCATTER && args->n_ys != 1)
        return usage_error("plot scatter takes one --y column");
    return 0;
}

static int data_error(const char *err)
{
    fprintf(stderr, "fepc plot: %s\n", err);
    return 1;
}

static int run_grid(const PlotArgs *args, Canvas *cv, char *err, size_t errlen)
{
    ImageStack images;
    if (!inputs_images(args->in, args->tensor, args->has_shape ? args->shape : NULL, args->count, &images, err, errlen))
        return data_error(err);
    GridSpec spec = {.n_images = images.n, .height = images.height, .width = images.width, .cols = args->cols,
                     .scale = args->scale, .lo = args->lo, .hi = args->hi};
    if (!spec.cols)
        spec.cols = (int)ceil(sqrt((double)images.n));
    spec.cols = spec.cols > images.n ? images.n : spec.cols;
    char why[300];
    bool ok = grid_draw(cv, &spec, images.pixels, why, sizeof why);
    if (!ok)
        snprintf(err, errlen, "%s: %s", args->in, why);
    inputs_free_images(&images);
    return ok ? 0 : data_error(err);
}

static int run_chart(const PlotArgs *args, Canvas *cv, char *err, size_t errlen)
{
    PlotTable table;
    if (!table_load(args->in, &table, err, errlen))
        return data_error(err);
    Series *series = NULL;
    int n_series = args->n_ys;
    bool ok = args->kind == LINES
                  ? inputs_lines(&table, args->x, args->ys, args->n_ys, args->logx, args->logy, &series, err, errlen)
                  : inputs_scatter(&table, args->x, args->ys[0], args->color, args->logx, args->logy, &series,
                                   &n_series, err, errlen);
    for (int i = 0; ok && args->kind == LINES && i < n_series; i++)
        if (!series[i].n_points)
            fprintf(stderr, "fepc plot: warning: %s: column '%s' has no points to plot\n", args->in, series[i].name);
    ChartSpec spec = {.width = args->width, .height = args->height, .title = args->title, .logx = args->logx,
                      .logy = args->logy, .markers = args->kind == SCATTER,
                      .legend = args->kind == LINES || args->color};
    spec.xlabel = args->xlabel ? args->xlabel : args->x;
    spec.ylabel = args->ylabel ? args->ylabel : args->n_ys == 1 ? args->ys[0] : NULL;
    char why[300];
    if (ok && !(ok = chart_draw(cv, &spec, series, n_series, why, sizeof why)))
        snprintf(err, errlen, "%s: %s", args->in, why);
    inputs_free_series(series, n_series);
    table_free(&table);
    return ok ? 0 : data_error(err);
}

int cmd_plot(int argc, char **argv)
{
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(plot_usage, stdout);
        return 0;
    }
    PlotArgs args;
    int rc = parse_plot_args(argc, argv, &args);
    char err[1024];
    Canvas cv = {0};
    if (!rc)
        rc = args.kind == GRID ? run_grid(&args, &cv, err, sizeof err) : run_chart(&args, &cv, err, sizeof err);
    if (!rc && !png_save(&cv, args.out, err, sizeof err))
        rc = data_error(err);
    canvas_free(&cv);
    free(args.ys_text);
    return rc;
}
