/* ops.c — the op table's static data (names, arities, flags) and the
 * scalar maths of the elementwise ops, shared by the interpreter and the
 * constant folder.  Derivatives live in vjp.c, shapes in build.c. */
#include "ir.h"

#include <math.h>

static double ew_add(double a, double b) { return a + b; }
static double ew_sub(double a, double b) { return a - b; }
static double ew_mul(double a, double b) { return a * b; }
static double ew_div(double a, double b) { return a / b; }
static double ew_neg(double x) { return -x; }
static double ew_tanh(double x) { return tanh(x); }
static double ew_relu(double x) { return x > 0 ? x : 0; }
static double ew_elu(double x) { return x > 0 ? x : expm1(x); }
static double ew_exp(double x) { return exp(x); }
static double ew_log(double x) { return log(x); }
static double ew_sqrt(double x) { return sqrt(x); }
static double ew_square(double x) { return x * x; }
static double ew_abs(double x) { return fabs(x); }
static double ew_sin(double x) { return sin(x); }
static double ew_cos(double x) { return cos(x); }
static double ew_tan(double x) { return tan(x); }
static double ew_step(double x) { return x > 0 ? 1 : 0; }
static double ew_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }

/* The digamma function ψ = Γ'/Γ for x > 0 (NaN elsewhere: counts are
 * positive): the recurrence ψ(x) = ψ(x + 1) − 1/x lifts x to at least 8,
 * where the asymptotic series ln x − 1/(2x) − Σ B_2k / (2k x^2k) is exact
 * to double precision after six terms.  Compiled code calls this very
 * function, so interpreter and JIT agree bit for bit in f64. */
double fep_digamma(double x)
{
    if (!(x > 0))
        return NAN;
    double shift = 0;
    while (x < 8) {
        shift -= 1 / x;
        x += 1;
    }
    double r = 1 / (x * x);
    double series = r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 - r * (1.0 / 132 - r * 691.0 / 32760)))));
    return shift + log(x) - 0.5 / x - series;
}

/* Stable in both tails: never evaluates exp of a large positive number. */
static double ew_sigmoid(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* log(1 + e^x) without overflow for large x or loss for very negative x. */
static double ew_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

const OpInfo op_info[N_OPS] = {
#define OP(name, text, arity, flags, shape, e1, e2, vjp) [OP_##name] = {text, arity, flags, e1, e2},
#include "ops.def"
#undef OP
};
