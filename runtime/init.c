/* init.c — parameter and constant initialisers (the INIT forms of SPEC §3).
 *
 * Fan-in/fan-out follow the usual conventions for a weight [out, in, k...]:
 * fan_in = in · Πk, fan_out = out · Πk; a vector uses its length for both.
 * xavier is Glorot-uniform ±√(6/(fan_in+fan_out)); kaiming is He-normal
 * with std √(2/fan_in). */
#include "runtime.h"

#include <math.h>

static void fans(const Shape *s, double *fan_in, double *fan_out)
{
    if (s->rank < 2) {
        *fan_in = *fan_out = s->rank ? s->dims[0] : 1;
        return;
    }
    double receptive = 1;
    for (int i = 2; i < s->rank; i++)
        receptive *= s->dims[i];
    *fan_out = s->dims[0] * receptive;
    *fan_in = s->dims[1] * receptive;
}

void init_fill(const Init *init, const Shape *shape, Rng *rng, double *out)
{
    int64_t n = ir_numel(shape);
    double fan_in, fan_out;
    fans(shape, &fan_in, &fan_out);
    for (int64_t i = 0; i < n; i++) {
        switch (init->kind) {
        case INIT_ZEROS: out[i] = 0; break;
        case INIT_VALUE: out[i] = init->a; break;
        case INIT_LITERAL: out[i] = init->values[i]; break;
        case INIT_NORMAL: out[i] = init->a * rng_normal(rng); break;
        case INIT_UNIFORM: out[i] = init->a + (init->b - init->a) * rng_uniform(rng); break;
        case INIT_XAVIER: {
            double limit = sqrt(6.0 / (fan_in + fan_out));
            out[i] = (2 * rng_uniform(rng) - 1) * limit;
            break;
        }
        case INIT_KAIMING: out[i] = sqrt(2.0 / fan_in) * rng_normal(rng); break;
        }
    }
}
