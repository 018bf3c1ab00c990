/* raster.c — the RGB canvas behind every figure and its primitive shapes:
 * pixels, rectangles, thick lines and discs.
 *
 * Invariants: pixels are 3 bytes (R, G, B), rows top to bottom; every write
 * goes through canvas_put, which drops pixels outside the clip rectangle, so
 * callers may pass any coordinates (even far off-canvas) without harm.
 * Lines are clipped to the clip rectangle before they are walked, so the
 * work is bounded by the canvas size, not by the coordinates. */
#include "plot.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void canvas_init(Canvas *cv, int width, int height, Rgb fill)
{
    cv->width = width;
    cv->height = height;
    cv->pixels = xmalloc((size_t)width * (size_t)height * 3);
    for (size_t i = 0; i < (size_t)width * (size_t)height; i++) {
        cv->pixels[3 * i] = fill.r;
        cv->pixels[3 * i + 1] = fill.g;
        cv->pixels[3 * i + 2] = fill.b;
    }
    canvas_unclip(cv);
}

void canvas_free(Canvas *cv)
{
    free(cv->pixels);
    memset(cv, 0, sizeof *cv);
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void canvas_clip(Canvas *cv, int x0, int y0, int x1, int y1)
{
    cv->clip_x0 = clamp_int(x0, 0, cv->width);
    cv->clip_y0 = clamp_int(y0, 0, cv->height);
    cv->clip_x1 = clamp_int(x1, cv->clip_x0, cv->width);
    cv->clip_y1 = clamp_int(y1, cv->clip_y0, cv->height);
}

void canvas_unclip(Canvas *cv)
{
    canvas_clip(cv, 0, 0, cv->width, cv->height);
}

Rgb canvas_get(const Canvas *cv, int x, int y)
{
    if (x < 0 || y < 0 || x >= cv->width || y >= cv->height)
        return (Rgb){255, 255, 255};
    const uint8_t *p = cv->pixels + 3 * ((size_t)y * (size_t)cv->width + (size_t)x);
    return (Rgb){p[0], p[1], p[2]};
}

void canvas_put(Canvas *cv, int x, int y, Rgb c)
{
    if (x < cv->clip_x0 || y < cv->clip_y0 || x >= cv->clip_x1 || y >= cv->clip_y1)
        return;
    uint8_t *p = cv->pixels + 3 * ((size_t)y * (size_t)cv->width + (size_t)x);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void canvas_fill_rect(Canvas *cv, int x0, int y0, int x1, int y1, Rgb c)
{
    x0 = clamp_int(x0, cv->clip_x0, cv->clip_x1);
    x1 = clamp_int(x1, cv->clip_x0, cv->clip_x1);
    y0 = clamp_int(y0, cv->clip_y0, cv->clip_y1);
    y1 = clamp_int(y1, cv->clip_y0, cv->clip_y1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            canvas_put(cv, x, y, c);
}

void canvas_rect(Canvas *cv, int x0, int y0, int x1, int y1, Rgb c)
{
    canvas_fill_rect(cv, x0, y0, x1, y0 + 1, c);
    canvas_fill_rect(cv, x0, y1 - 1, x1, y1, c);
    canvas_fill_rect(cv, x0, y0, x0 + 1, y1, c);
    canvas_fill_rect(cv, x1 - 1, y0, x1, y1, c);
}

/* Liang–Barsky: shrinks the segment p0 + t·d, t in [t0, t1], to the box
 * [lo, hi] along one coordinate; false when nothing is left. */
static bool clip_coord(double p0, double d, double lo, double hi, double *t0, double *t1)
{
    if (d == 0)
        return p0 >= lo && p0 <= hi;
    double ta = (lo - p0) / d, tb = (hi - p0) / d;
    if (ta > tb) {
        double tmp = ta;
        ta = tb;
        tb = tmp;
    }
    *t0 = ta > *t0 ? ta : *t0;
    *t1 = tb < *t1 ? tb : *t1;
    return *t0 <= *t1;
}

/* Stamps a square `thickness` pixels wide centred on (x, y). */
static void stamp(Canvas *cv, int x, int y, int thickness, Rgb c)
{
    int lo = -(thickness - 1) / 2, hi = thickness / 2;
    for (int dy = lo; dy <= hi; dy++)
        for (int dx = lo; dx <= hi; dx++)
            canvas_put(cv, x + dx, y + dy, c);
}

void canvas_line(Canvas *cv, double x0, double y0, double x1, double y1, int thickness, Rgb c)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return;
    /* Clip with a margin for the pen width, then walk one step per pixel. */
    double margin = thickness + 1.0, t0 = 0, t1 = 1;
    double dx = x1 - x0, dy = y1 - y0;
    if (!clip_coord(x0, dx, cv->clip_x0 - margin, cv->clip_x1 + margin, &t0, &t1) ||
        !clip_coord(y0, dy, cv->clip_y0 - margin, cv->clip_y1 + margin, &t0, &t1))
        return;
    double ax = x0 + t0 * dx, ay = y0 + t0 * dy, bx = x0 + t1 * dx, by = y0 + t1 * dy;
    double span = fmax(fabs(bx - ax), fabs(by - ay));
    int steps = (int)ceil(span);
    for (int i = 0; i <= steps; i++) {
        double t = steps ? (double)i / steps : 0;
        stamp(cv, (int)lround(ax + t * (bx - ax)), (int)lround(ay + t * (by - ay)), thickness, c);
    }
}

void canvas_disc(Canvas *cv, double x, double y, int radius, Rgb c)
{
    if (!isfinite(x) || !isfinite(y) || x < -radius - 1 || y < -radius - 1 || x > cv->width + radius + 1 ||
        y > cv->height + radius + 1)
        return;
    int cx = (int)lround(x), cy = (int)lround(y);
    double r2 = (radius + 0.5) * (radius + 0.5);
    for (int dy = -radius; dy <= radius; dy++)
        for (int dx = -radius; dx <= radius; dx++)
            if (dx * dx + dy * dy <= r2)
                canvas_put(cv, cx + dx, cy + dy, c);
}
