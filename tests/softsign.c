/* softsign.c — a tiny extern library for tests/test_vjp.c.
 *
 * Built as the MODULE library `softsign` (libsoftsign.so); the EXTERN test
 * dlopen()s it through ir_resolve_externs and checks that the reverse
 * sweep calls the declared derivative symbol.  Both functions have the
 * float(float) signature every fepc extern uses.
 *   softsign(x)      = x / (1 + |x|)
 *   softsign_grad(x) = 1 / (1 + |x|)²                                     */
#include <math.h>

float softsign(float x);
float softsign_grad(float x);

float softsign(float x) { return x / (1.0f + fabsf(x)); }

float softsign_grad(float x)
{
    float d = 1.0f + fabsf(x);
    return 1.0f / (d * d);
}
