/* chart.c — line and scatter charts: layout, series and the legend.
 *
 * Layout works from the outside in: the title's band at the top, the x tick
 * labels and x label at the bottom, the y label and the widest y tick label
 * on the left; what is left is the plot frame.  Data maps into the frame
 * inset by a few pixels so lines at the range ends stay off the border.
 * The legend goes into whichever frame corner covers the fewest data
 * pixels (top-right on a tie), so it rarely hides a curve.
 * Text is 5x7 at scale 1, doubled on canvases of at least 1280×960. */
#include "plot.h"

#include <math.h>
#include <stdio.h>

static const Rgb white = {255, 255, 255};
static const Rgb ink = {0, 0, 0};
static const Rgb legend_border = {160, 160, 160};

static const Rgb palette[PLOT_N_COLOURS] = {
    {31, 100, 190},  {235, 110, 20},  {30, 150, 60},   {210, 40, 40},  {140, 80, 200},  {130, 80, 50},
    {225, 90, 180},  {110, 110, 110}, {170, 170, 20},  {20, 180, 200}, {10, 30, 110},   {120, 220, 80},
};

Rgb plot_colour(int i)
{
    return palette[(i % PLOT_N_COLOURS + PLOT_N_COLOURS) % PLOT_N_COLOURS];
}

typedef struct Layout {
    int scale, pad, gap, text_h;
    Rect frame;
    Axis x, y;
} Layout;

/* Bounding box {xlo, xhi, ylo, yhi} of every point (empty: lo > hi). */
static void data_bounds(const Series *series, int n_series, double box[4])
{
    box[0] = box[2] = INFINITY;
    box[1] = box[3] = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n_points; i++) {
            box[0] = fmin(box[0], series[s].xs[i]);
            box[1] = fmax(box[1], series[s].xs[i]);
            box[2] = fmin(box[2], series[s].ys[i]);
            box[3] = fmax(box[3], series[s].ys[i]);
        }
}

/* Fits the x axis to `room` pixels, dropping ticks until the labels have space. */
static void fit_x(Layout *l, const double box[4], bool log, int room)
{
    for (int target = room / (60 * l->scale) + 1; target >= 2; target--) {
        axis_fit(&l->x, box[0], box[1], log, target);
        int spacing = room / (l->x.n_ticks > 1 ? l->x.n_ticks - 1 : 1);
        if (axis_label_width(&l->x, l->scale) + 8 * l->scale < spacing)
            return;
    }
}

static bool layout(Layout *l, const ChartSpec *spec, const double box[4], char *err, size_t errlen)
{
    l->scale = spec->width >= 1280 && spec->height >= 960 ? 2 : 1;
    l->pad = 8 * l->scale;
    l->gap = 3 * l->scale;
    l->text_h = FONT_HEIGHT * l->scale;
    int title_h = spec->title ? 2 * l->text_h + l->gap : 0;
    int top = l->pad + title_h + l->pad;
    int bottom = AXIS_TICK_LEN + l->gap + l->text_h + (spec->xlabel ? 2 * l->gap + l->text_h : 0) + l->pad;
    int room_y = spec->height - top - bottom;
    axis_fit(&l->y, box[2], box[3], spec->logy, room_y / (40 * l->scale));
    int left = l->pad + (spec->ylabel ? l->text_h + 2 * l->gap : 0) + axis_label_width(&l->y, l->scale) + l->gap +
               AXIS_TICK_LEN;
    fit_x(l, box, spec->logx, spec->width - left - 3 * l->pad);
    int right = l->pad + axis_label_width(&l->x, l->scale) / 2;
    right = right < 2 * l->pad ? 2 * l->pad : right;
    if (!isfinite(l->x.lo) || !isfinite(l->x.hi) || !isfinite(l->y.lo) || !isfinite(l->y.hi)) {
        snprintf(err, errlen, "the values are too large to plot (round axis ends overflow)");
        return false;
    }
    l->frame = (Rect){left, top, spec->width - right, spec->height - bottom};
    if (l->frame.x1 - l->frame.x0 < 40 || l->frame.y1 - l->frame.y0 < 40) {
        snprintf(err, errlen, "a %dx%d figure is too small for the axes and labels", spec->width, spec->height);
        return false;
    }
    int inset = 4 * l->scale;
    l->x.px0 = l->frame.x0 + inset;
    l->x.px1 = l->frame.x1 - 1 - inset;
    l->y.px0 = l->frame.y1 - 1 - inset;
    l->y.px1 = l->frame.y0 + inset;
    return true;
}

static void draw_labels(Canvas *cv, const Layout *l, const ChartSpec *spec)
{
    const Rect *f = &l->frame;
    if (spec->title) {
        int title_scale = font_width(spec->title, 2 * l->scale) <= spec->width - 2 * l->pad ? 2 * l->scale : l->scale;
        int w = font_width(spec->title, title_scale);
        font_draw(cv, (spec->width - w) / 2, l->pad, spec->title, title_scale, false, ink);
    }
    if (spec->xlabel) {
        int w = font_width(spec->xlabel, l->scale);
        int y = f->y1 + AXIS_TICK_LEN + l->gap + l->text_h + 2 * l->gap;
        font_draw(cv, (f->x0 + f->x1 - w) / 2, y, spec->xlabel, l->scale, false, ink);
    }
    if (spec->ylabel) {
        int w = font_width(spec->ylabel, l->scale);
        font_draw(cv, l->pad, (f->y0 + f->y1 + w) / 2, spec->ylabel, l->scale, true, ink);
    }
}

static int marker_radius(const ChartSpec *spec, const Series *s, int scale)
{
    if (spec->markers)
        return (s->n_points <= 500 ? 3 : 2) * scale;
    return s->n_points <= 50 ? 2 * scale : 0;    /* dots on short curves (a few epochs) */
}

static void draw_series(Canvas *cv, const Layout *l, const ChartSpec *spec, const Series *s, Rgb c)
{
    int radius = marker_radius(spec, s, l->scale);
    double px = 0, py = 0;
    for (int i = 0; i < s->n_points; i++) {
        double x = axis_pixel(&l->x, s->xs[i]), y = axis_pixel(&l->y, s->ys[i]);
        if (!spec->markers && i > 0)
            canvas_line(cv, px, py, x, y, 2 * l->scale, c);
        if (radius || s->n_points == 1)
            canvas_disc(cv, x, y, radius ? radius : 2 * l->scale, c);
        px = x;
        py = y;
    }
}

/* Pixels in r that are neither background nor grid: data under a legend there. */
static int covered_pixels(const Canvas *cv, Rect r)
{
    int n = 0;
    for (int y = r.y0; y < r.y1; y++)
        for (int x = r.x0; x < r.x1; x++) {
            Rgb p = canvas_get(cv, x, y);
            bool background = (p.r == 255 && p.g == 255 && p.b == 255) ||
                              (p.r == plot_grid_rgb.r && p.g == plot_grid_rgb.g && p.b == plot_grid_rgb.b);
            n += !background;
        }
    return n;
}

static void draw_legend(Canvas *cv, const Layout *l, const ChartSpec *spec, const Series *series, int n_series)
{
    int sc = l->scale, row_h = l->text_h + 4 * sc, swatch = 20 * sc, widest = 0, rows = 0;
    for (int s = 0; s < n_series; s++)
        if (series[s].n_points) {
            int w = font_width(series[s].name, sc);
            widest = w > widest ? w : widest;
            rows++;
        }
    if (!rows)
        return;
    int w = 2 * l->gap + swatch + 2 * l->gap + widest + 2 * l->gap, h = rows * row_h + 2 * l->gap;
    const Rect *f = &l->frame;
    int m = 6 * sc;
    int lefts[4] = {f->x1 - m - w, f->x0 + m, f->x1 - m - w, f->x0 + m};    /* TR, TL, BR, BL */
    int tops[4] = {f->y0 + m, f->y0 + m, f->y1 - m - h, f->y1 - m - h};
    Rect best = {0, 0, 0, 0};
    int best_n = -1;
    for (int i = 0; i < 4; i++) {
        Rect r = {lefts[i], tops[i], lefts[i] + w, tops[i] + h};
        int n = covered_pixels(cv, r);
        if (best_n < 0 || n < best_n) {
            best = r;
            best_n = n;
        }
    }
    canvas_fill_rect(cv, best.x0, best.y0, best.x1, best.y1, white);
    canvas_rect(cv, best.x0, best.y0, best.x1, best.y1, legend_border);
    int y = best.y0 + l->gap + 2 * sc;
    for (int s = 0; s < n_series; s++) {
        if (!series[s].n_points)
            continue;
        Rgb c = plot_colour(s);
        int mid = y + l->text_h / 2, x = best.x0 + 2 * l->gap;
        if (spec->markers)
            canvas_disc(cv, x + swatch / 2, mid, 3 * sc, c);
        else
            canvas_line(cv, x, mid, x + swatch, mid, 2 * sc, c);
        font_draw(cv, x + swatch + 2 * l->gap, y, series[s].name, sc, false, ink);
        y += row_h;
    }
}

bool chart_draw(Canvas *cv, const ChartSpec *spec, const Series *series, int n_series, char *err, size_t errlen)
{
    double box[4];
    data_bounds(series, n_series, box);
    if (!(box[0] <= box[1])) {
        snprintf(err, errlen, "no points to plot");
        return false;
    }
    if (!isfinite(box[1] - box[0]) || !isfinite(box[3] - box[2])) {
        snprintf(err, errlen, "the values span too wide a range to plot");
        return false;
    }
    Layout l = {0};
    if (!layout(&l, spec, box, err, errlen))
        return false;
    canvas_init(cv, spec->width, spec->height, white);
    axes_draw(cv, l.frame, &l.x, &l.y, l.scale);
    draw_labels(cv, &l, spec);
    canvas_clip(cv, l.frame.x0, l.frame.y0, l.frame.x1, l.frame.y1);
    for (int s = 0; s < n_series; s++)
        draw_series(cv, &l, spec, &series[s], plot_colour(s));
    if (spec->legend)
        draw_legend(cv, &l, spec, series, n_series);
    canvas_unclip(cv);
    return true;
}
