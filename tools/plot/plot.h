/* plot.h — the `fepc plot` module: an RGB canvas with a bitmap font, line and
 * scatter charts, greyscale image grids, a lenient CSV reader and a PNG writer.
 *
 * Data flow: cmd_plot.c parses argv, inputs.c turns files into Series or
 * images, chart.c / grid.c draw them on a Canvas, png_out.c writes the PNG.
 * Invariants: every drawing call clips to the canvas (coordinates may lie
 * anywhere); nothing here exits; fallible calls return false with one line
 * "FILE: ..." in err[errlen]. */
#ifndef FEP_PLOT_H
#define FEP_PLOT_H

#include "runtime/tensorio.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest canvas side in pixels (a grid or --width/--height beyond it is refused). */
#define PLOT_MAX_SIDE 8192

/* ---- raster.c: the RGB canvas and primitive shapes ---- */
typedef struct Rgb { uint8_t r, g, b; } Rgb;

typedef struct Canvas {
    int width, height;
    uint8_t *pixels;          /* width*height*3 bytes, rows top to bottom, owned */
    int clip_x0, clip_y0, clip_x1, clip_y1;   /* drawing stays inside [x0,x1)×[y0,y1) */
} Canvas;

/* A canvas filled with `fill`, clip = whole canvas.  Sides must be 1..PLOT_MAX_SIDE. */
void canvas_init(Canvas *cv, int width, int height, Rgb fill);
void canvas_free(Canvas *cv);
/* Restricts drawing to a rectangle (intersected with the canvas); canvas_unclip undoes it. */
void canvas_clip(Canvas *cv, int x0, int y0, int x1, int y1);
void canvas_unclip(Canvas *cv);
/* The pixel at (x, y); white outside the canvas. */
Rgb canvas_get(const Canvas *cv, int x, int y);
void canvas_put(Canvas *cv, int x, int y, Rgb c);
/* Filled rectangle [x0,x1)×[y0,y1) and its 1-pixel outline. */
void canvas_fill_rect(Canvas *cv, int x0, int y0, int x1, int y1, Rgb c);
void canvas_rect(Canvas *cv, int x0, int y0, int x1, int y1, Rgb c);
/* A straight line between pixel centres, `thickness` pixels wide (1 or more). */
void canvas_line(Canvas *cv, double x0, double y0, double x1, double y1, int thickness, Rgb c);
/* A filled disc of the given radius centred on (x, y). */
void canvas_disc(Canvas *cv, double x, double y, int radius, Rgb c);

/* ---- font.c: a 5x7 bitmap font for printable ASCII ---- */
#define FONT_ADVANCE 6        /* pixels per character at scale 1, spacing included */
#define FONT_HEIGHT 7         /* height of capitals and digits at scale 1 (the layout unit) */
#define FONT_ROWS 9           /* glyph rows: FONT_HEIGHT and two for descenders */
/* Width in pixels of `text` at `scale` (UTF-8 sequences count as one '?'). */
int font_width(const char *text, int scale);
/* Draws text with its top-left corner at (x, y); `vertical` turns it 90°
 * counter-clockwise (reading upwards, (x, y) is then its bottom-left). */
void font_draw(Canvas *cv, int x, int y, const char *text, int scale, bool vertical, Rgb c);

/* ---- axes.c: ranges, ticks and the frame around a plot area ---- */
#define AXIS_MAX_TICKS 64

typedef struct Axis {
    bool log;                 /* log10 scale */
    double lo, hi;            /* data range shown (lo < hi; > 0 when log) */
    double step;              /* linear: distance between labelled ticks */
    double ticks[AXIS_MAX_TICKS]; int n_ticks;     /* labelled ticks */
    double minor[AXIS_MAX_TICKS]; int n_minor;     /* unlabelled (log axes) */
    int px0, px1;             /* pixel positions of lo and hi */
} Axis;

/* Fits lo..hi (finite; lo <= hi; both > 0 when log) with about `target`
 * labelled ticks, widening the range to round tick values.  Resets the
 * whole Axis: set px0/px1 afterwards. */
void axis_fit(Axis *a, double lo, double hi, bool log, int target);
/* The pixel coordinate of a data value (unclamped). */
double axis_pixel(const Axis *a, double v);
/* The label of tick i, e.g. "0.25", "1e-05"; returns buf. */
const char *axis_label(const Axis *a, int i, char *buf, size_t buflen);
/* Widest tick label of the axis in pixels at `scale`. */
int axis_label_width(const Axis *a, int scale);

typedef struct Rect { int x0, y0, x1, y1; } Rect;   /* [x0,x1)×[y0,y1) */
#define AXIS_TICK_LEN 5
extern const Rgb plot_grid_rgb;   /* grid-line colour (light grey) */
/* Draws grid lines at the labelled ticks inside `frame` (the plot area), a
 * 1-pixel outline just outside it, tick marks outside that and the tick
 * labels (x below, y to the left). */
void axes_draw(Canvas *cv, Rect frame, const Axis *x, const Axis *y, int scale);

/* ---- chart.c: line and scatter charts ---- */
typedef struct Series {
    const char *name;         /* legend label */
    double *xs, *ys; int n_points;   /* finite points only (owned by the caller) */
} Series;

typedef struct ChartSpec {
    int width, height;
    const char *title, *xlabel, *ylabel;   /* NULL: none */
    bool logx, logy;
    bool markers;             /* scatter: discs at points, no connecting lines */
    bool legend;
} ChartSpec;

/* The colour of series (or class) i: a fixed palette of PLOT_N_COLOURS. */
#define PLOT_N_COLOURS 12
Rgb plot_colour(int i);
/* Draws the chart on a new canvas (cv is initialised only on success).
 * False with a message when no series has a point, the values overflow the
 * axis arithmetic, or width × height is too small for the axes and labels. */
bool chart_draw(Canvas *cv, const ChartSpec *spec, const Series *series, int n_series, char *err, size_t errlen);

/* ---- grid.c: greyscale images side by side ---- */
typedef struct GridSpec {
    int n_images, height, width;   /* images are n × height × width, row-major */
    int cols, scale;
    double lo, hi;                 /* value range mapped to 0..255 (clipped) */
} GridSpec;

/* Draws the grid on a new canvas; false with a message when it would be
 * larger than PLOT_MAX_SIDE (cv is then untouched). */
bool grid_draw(Canvas *cv, const GridSpec *spec, const double *pixels, char *err, size_t errlen);

/* ---- table.c: CSV with missing cells ---- */
typedef struct PlotTable {
    CsvTable t;               /* values; NaN for a missing or unusable cell */
    int *row_lines;           /* per row: its line in the file, for messages */
    int *bad_lines;           /* per column: line of the first non-numeric cell, 0 if none */
    char **bad_cells;         /* per column: that cell's text, or NULL */
    const char *path;
} PlotTable;

/* Reads a header row and rows of numbers.  Empty, "nan" and infinite cells
 * are missing; a non-numeric cell only makes its column unusable (reported
 * by table_column).  False on an unreadable file, a record csv_read_record
 * rejects, ragged rows or an empty file. */
bool table_load(const char *path, PlotTable *out, char *err, size_t errlen);
void table_free(PlotTable *t);
/* The index of a usable column; -1 with "FILE: no column 'NAME' (columns: ...)"
 * or "FILE:LINE: column 'NAME': 'abc' is not a number". */
int table_column(const PlotTable *t, const char *name, char *err, size_t errlen);

/* ---- inputs.c: files to chart series and image stacks ---- */
/* Series from table columns: x against each of ys[0..n_ys), dropping rows
 * where either value is missing or not positive on a log axis.  *out gets
 * n_ys series (free with inputs_free_series).  False if a column is missing
 * or unusable or no series has a point. */
bool inputs_lines(const PlotTable *t, const char *x, const char *const *ys, int n_ys, bool logx, bool logy,
                  Series **out, char *err, size_t errlen);
/* Scatter groups: one series per class 0..max of column `colour` (names "0",
 * "1", ...), or a single series named after y when colour is NULL.  Classes
 * must be integers in 0..PLOT_N_COLOURS-1. */
bool inputs_scatter(const PlotTable *t, const char *x, const char *y, const char *colour, bool logx, bool logy,
                    Series **out, int *n_out, char *err, size_t errlen);
void inputs_free_series(Series *s, int n);

typedef struct ImageStack {
    double *pixels;           /* n × height × width, owned */
    int n, height, width;
} ImageStack;

/* Loads the first `count` images (all when count is 0) of tensor `tensor`
 * (NULL: the only one) from a .npy or .safetensors file.  The tensor is
 * [N, H, W], [N, 1, H, W] or [N, D] with shape_hw = {H, W} (H*W == D), or a
 * square D when shape_hw is NULL.  At most PLOT_MAX_IMAGES images are read. */
#define PLOT_MAX_IMAGES 400
bool inputs_images(const char *path, const char *tensor, const int *shape_hw, int count, ImageStack *out,
                   char *err, size_t errlen);
void inputs_free_images(ImageStack *s);

/* ---- png_out.c ---- */
/* Writes the canvas as an 8-bit RGB PNG, atomically (temp file + rename). */
bool png_save(const Canvas *cv, const char *path, char *err, size_t errlen);

#endif
