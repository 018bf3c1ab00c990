/* grid.c — greyscale images side by side: n images of height × width
 * values laid out in rows of `cols`, each value a scale×scale block.
 *
 * Value v becomes grey round(255 · (v − lo) / (hi − lo)), clipped to 0..255
 * (lo > hi inverts); NaN shows as magenta so it cannot pass for data.
 * Images are separated, and surrounded, by GRID_GAP pixels of a blue-grey
 * that no grey value can match. */
#include "plot.h"

#include <math.h>
#include <stdio.h>

#define GRID_GAP 2

static const Rgb gap_colour = {90, 110, 140};
static const Rgb nan_colour = {255, 0, 255};

static Rgb grey_of(double v, double lo, double hi)
{
    if (isnan(v))
        return nan_colour;
    double t = (v - lo) / (hi - lo);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    uint8_t g = (uint8_t)lround(t * 255);
    return (Rgb){g, g, g};
}

bool grid_draw(Canvas *cv, const GridSpec *spec, const double *pixels, char *err, size_t errlen)
{
    int rows = (spec->n_images + spec->cols - 1) / spec->cols;
    int64_t cell_w = (int64_t)spec->width * spec->scale, cell_h = (int64_t)spec->height * spec->scale;
    int64_t w = GRID_GAP + spec->cols * (cell_w + GRID_GAP), h = GRID_GAP + rows * (cell_h + GRID_GAP);
    if (w > PLOT_MAX_SIDE || h > PLOT_MAX_SIDE) {
        snprintf(err, errlen, "a grid of %dx%d images of %dx%d at scale %d would be %lldx%lld pixels (at most %d a side)",
                 rows, spec->cols, spec->height, spec->width, spec->scale, (long long)w, (long long)h, PLOT_MAX_SIDE);
        return false;
    }
    canvas_init(cv, (int)w, (int)h, gap_colour);
    int64_t per_image = (int64_t)spec->height * spec->width;
    for (int k = 0; k < spec->n_images; k++) {
        int ox = GRID_GAP + (k % spec->cols) * (int)(cell_w + GRID_GAP);
        int oy = GRID_GAP + (k / spec->cols) * (int)(cell_h + GRID_GAP);
        const double *img = pixels + k * per_image;
        for (int r = 0; r < spec->height; r++)
            for (int c = 0; c < spec->width; c++) {
                int x = ox + c * spec->scale, y = oy + r * spec->scale;
                canvas_fill_rect(cv, x, y, x + spec->scale, y + spec->scale,
                                 grey_of(img[(int64_t)r * spec->width + c], spec->lo, spec->hi));
            }
    }
    return true;
}
