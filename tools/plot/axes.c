/* axes.c — axis ranges, tick positions, tick labels and the frame around a
 * plot area.
 *
 * Linear axes take "nice" steps (1, 2, 2.5 or 5 × 10^k) and widen the data
 * range to whole steps; log axes widen to whole decades and label powers of
 * ten (or 1, 2, 5 × 10^k when there are at most two decades), with minor
 * ticks at the other multiples.  Labels are as short as the step allows:
 * "0.25", "1500", "2.5e-5", "1e6".
 * Invariants after axis_fit: lo < hi (> 0 when log), the ticks in [lo, hi]
 * in increasing order; lo and hi are finite unless rounding them out to a
 * whole step overflows (data near ±DBL_MAX), which the caller checks. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const Rgb ink = {0, 0, 0};
const Rgb plot_grid_rgb = {225, 225, 225};

/* The smallest 1, 2, 2.5 or 5 × 10^k at least `raw`. */
static double nice_step(double raw)
{
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 2.5 + 1e-9 ? 2.5 : f <= 5 + 1e-9 ? 5 : 10) * mag;
}

static void add_tick(Axis *a, double v)
{
    if (a->n_ticks < AXIS_MAX_TICKS)
        a->ticks[a->n_ticks++] = v;
}

static void fit_linear(Axis *a, double lo, double hi, int target)
{
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) {    /* one value: show a band around it */
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d;
        hi += d;
    }
    double step = nice_step((hi - lo) / target);
    a->step = step;
    a->lo = floor(lo / step + 1e-9) * step;
    a->hi = ceil(hi / step - 1e-9) * step;
    double steps = (a->hi - a->lo) / step;    /* a whole number, barring overflow */
    int n = steps >= 0 && steps < AXIS_MAX_TICKS ? (int)lround(steps) + 1 : 0;
    for (int i = 0; i < n; i++) {
        double t = a->lo + i * step;
        add_tick(a, fabs(t) < step * 1e-9 ? 0 : t);
    }
}

static void add_minor(Axis *a, double v)
{
    if (a->n_minor < AXIS_MAX_TICKS)
        a->minor[a->n_minor++] = v;
}

static void fit_log(Axis *a, double lo, double hi, int target)
{
    int dlo = (int)floor(log10(lo) + 1e-9), dhi = (int)ceil(log10(hi) - 1e-9);
    if (dhi <= dlo) {
        dlo--;
        dhi++;
    }
    dlo = dlo < -300 ? -300 : dlo;
    dhi = dhi > 300 ? 300 : dhi <= dlo ? dlo + 1 : dhi;
    a->lo = pow(10, dlo);
    a->hi = pow(10, dhi);
    int decades = dhi - dlo;
    int stride = decades <= target ? 1 : (decades + target - 1) / target;
    for (int k = dlo; k <= dhi; k++) {
        double p = pow(10, k);
        if ((k - dlo) % stride == 0)
            add_tick(a, p);
        else
            add_minor(a, p);
        if (k == dhi || decades > 8)
            continue;
        for (int m = 2; m <= 9; m++) {
            if (decades <= 2 && (m == 2 || m == 5))
                add_tick(a, m * p);
            else
                add_minor(a, m * p);
        }
    }
}

void axis_fit(Axis *a, double lo, double hi, bool log, int target)
{
    memset(a, 0, sizeof *a);
    a->log = log;
    target = target < 2 ? 2 : target > AXIS_MAX_TICKS / 2 ? AXIS_MAX_TICKS / 2 : target;
    if (log)
        fit_log(a, lo, hi, target);
    else
        fit_linear(a, lo, hi, target);
}

double axis_pixel(const Axis *a, double v)
{
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return a->px0 + t * (a->px1 - a->px0);
}

/* "1.50e-05" → "1.5e-5", "2.00e+06" → "2e6": drops mantissa zeros and the
 * exponent's sign and padding. */
static void tidy_exponent(char *s)
{
    char *e = strchr(s, 'e');
    if (!e)
        return;
    char exp[16];
    int x = 0;
    sscanf(e + 1, "%d", &x);
    snprintf(exp, sizeof exp, "e%d", x);
    char *end = e;
    if (strchr(s, '.')) {
        while (end[-1] == '0')
            end--;
        if (end[-1] == '.')
            end--;
    }
    memmove(end, exp, strlen(exp) + 1);
}

const char *axis_label(const Axis *a, int i, char *buf, size_t buflen)
{
    double v = a->ticks[i];
    if (a->log || v == 0) {
        snprintf(buf, buflen, "%g", v);
        tidy_exponent(buf);
        return buf;
    }
    /* The decimal position of the step's last significant digit. */
    int k = (int)floor(log10(a->step) + 1e-9);
    int last = k - (fabs(a->step / pow(10, k) - 2.5) < 1e-6);
    double biggest = fmax(fabs(a->lo), fabs(a->hi));
    if (biggest >= 1e6 || last < -4) {
        int digits = (int)floor(log10(fabs(v)) + 1e-9) - last;
        snprintf(buf, buflen, "%.*e", digits < 0 ? 0 : digits, v);
        tidy_exponent(buf);
    } else {
        snprintf(buf, buflen, "%.*f", last < 0 ? -last : 0, v);
    }
    return buf;
}

int axis_label_width(const Axis *a, int scale)
{
    int widest = 0;
    char buf[48];
    for (int i = 0; i < a->n_ticks; i++) {
        int w = font_width(axis_label(a, i, buf, sizeof buf), scale);
        widest = w > widest ? w : widest;
    }
    return widest;
}

void axes_draw(Canvas *cv, Rect frame, const Axis *x, const Axis *y, int scale)
{
    char buf[48];
    int gap = 3 * scale, text_h = FONT_HEIGHT * scale;
    for (int i = 0; i < x->n_ticks; i++) {
        int px = (int)lround(axis_pixel(x, x->ticks[i]));
        canvas_fill_rect(cv, px, frame.y0, px + 1, frame.y1, plot_grid_rgb);
        canvas_fill_rect(cv, px, frame.y1, px + 1, frame.y1 + AXIS_TICK_LEN, ink);
        const char *label = axis_label(x, i, buf, sizeof buf);
        font_draw(cv, px - font_width(label, scale) / 2, frame.y1 + AXIS_TICK_LEN + gap, label, scale, false, ink);
    }
    for (int i = 0; i < y->n_ticks; i++) {
        int py = (int)lround(axis_pixel(y, y->ticks[i]));
        canvas_fill_rect(cv, frame.x0, py, frame.x1, py + 1, plot_grid_rgb);
        canvas_fill_rect(cv, frame.x0 - AXIS_TICK_LEN, py, frame.x0, py + 1, ink);
        const char *label = axis_label(y, i, buf, sizeof buf);
        int lx = frame.x0 - AXIS_TICK_LEN - gap - font_width(label, scale);
        font_draw(cv, lx, py - text_h / 2, label, scale, false, ink);
    }
    for (int i = 0; i < x->n_minor; i++) {
        int px = (int)lround(axis_pixel(x, x->minor[i]));
        canvas_fill_rect(cv, px, frame.y1, px + 1, frame.y1 + AXIS_TICK_LEN / 2 + 1, ink);
    }
    for (int i = 0; i < y->n_minor; i++) {
        int py = (int)lround(axis_pixel(y, y->minor[i]));
        canvas_fill_rect(cv, frame.x0 - AXIS_TICK_LEN / 2 - 1, py, frame.x0, py + 1, ink);
    }
    canvas_rect(cv, frame.x0 - 1, frame.y0 - 1, frame.x1 + 1, frame.y1 + 1, ink);
}
