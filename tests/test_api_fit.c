/* test_api_fit.c — the C API the Python package stands on, through fep.h
 * alone (linked against libfep): tensor enumeration, sessions with
 * train-key overrides (checked as the command line checks them), tensors
 * in either precision and the derived error./grad./prev. buffers, data
 * sets from arrays with their shape checks, fep_fit with callbacks that
 * stop it, fep_evaluate, and the status of each bad call.  Run under
 * AddressSanitizer with leak detection in the sanitizer build, which the
 * Python suite (an unsanitized interpreter) cannot do. */
#include <fep.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *model_text =
    "model tiny\n"
    "input    x : [6]\n"
    "param    W : [4, 6] = xavier\n"
    "param    V : [3, 4] = xavier\n"
    "latent   h : [4] ~ normal(W @ x)\n"
    "observed y : [3] ~ categorical(V @ tanh(h))\n"
    "train { rule = fpa  steps = 4  step_size = 0.5  optimizer = adam(lr = 0.01)  batch = 8  epochs = 2 }\n";

enum { N = 40 };

static FepModule *module(void)
{
    FepModule *m = NULL;
    assert_int_equal(fep_compile_string("tiny.fep", model_text, &m), FEP_OK);
    return m;
}

static FepSession *open_with(FepModule *m, int n, const char *const *keys, const char *const *values, int f64)
{
    FepSessionOptions o = {.f64 = f64, .threads = 2, .n_settings = n, .keys = keys, .values = values};
    FepSession *s = NULL;
    FepStatus st = fep_session_open(m, &o, &s);
    return st == FEP_OK ? s : NULL;
}

/* Samples x in [0, 1) and a label that depends on them, so training can learn. */
static void make_data(double *x, double *y)
{
    unsigned r = 12345;
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int k = 0; k < 6; k++) {
            r = r * 1103515245u + 12345u;
            x[i * 6 + k] = (r >> 8 & 0xffff) / 65536.0;
            sum += k < 3 ? x[i * 6 + k] : -x[i * 6 + k];
        }
        y[i] = sum > 0.3 ? 2 : sum < -0.3 ? 0 : 1;
    }
}

static void test_tensors(void **state)
{
    FepModule *m = module();
    int n = 0;
    assert_int_equal(fep_tensor_count(m, &n), FEP_OK);
    assert_int_equal(n, 5);
    FepTensorInfo t;
    assert_int_equal(fep_tensor_at(m, 1, &t), FEP_OK);
    assert_string_equal(t.name, "W");
    assert_int_equal(t.kind, FEP_KIND_PARAM);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[0], 4);
    assert_int_equal(t.dims[1], 6);
    assert_int_equal(fep_tensor_at(m, 4, &t), FEP_OK);
    assert_true(t.kind == FEP_KIND_OBSERVED && t.categorical && !t.family);
    assert_int_equal(fep_tensor_at(m, 5, &t), FEP_ERROR_ARGUMENT);
    assert_int_equal(fep_tensor_at(NULL, 0, &t), FEP_ERROR_ARGUMENT);
    assert_string_equal(fep_module_name(m), "tiny");
    assert_int_equal(fep_api_version(), FEP_API_VERSION);
    fep_module_free(m);
}

static void test_settings(void **state)
{
    FepModule *m = module();
    const char *keys[] = {"steps", "batch", "rule"}, *values[] = {"7", "5", "pc(backward = learned)"};
    FepSession *s = open_with(m, 3, keys, values, 0);
    assert_non_null(s);
    char buf[1024];
    size_t needed = 0;
    assert_int_equal(fep_session_config(s, buf, sizeof buf, &needed), FEP_OK);
    assert_int_equal(needed, strlen(buf) + 1);
    assert_non_null(strstr(buf, "rule = pc(backward = learned, derivative = exact, error_weights = identity)\n"));
    assert_non_null(strstr(buf, "steps = 7\n"));
    assert_non_null(strstr(buf, "batch = 5\n"));
    char small[8];
    assert_int_equal(fep_session_config(s, small, sizeof small, &needed), FEP_OK);
    assert_int_equal(strlen(small), 7);
    float back[16];
    assert_int_equal(fep_get(s, "back.V", back, 12), FEP_OK);   /* the rule's own param */
    /* Another session keeps the model's settings. */
    FepSession *plain = open_with(m, 0, NULL, NULL, 0);
    assert_int_equal(fep_session_config(plain, buf, sizeof buf, &needed), FEP_OK);
    assert_non_null(strstr(buf, "rule = fpa\nsteps = 4\n"));
    const char *bad_keys[] = {"steps"}, *bad_values[] = {"-1"};
    assert_null(open_with(m, 1, bad_keys, bad_values, 0));
    assert_non_null(strstr(fep_last_error(), "--steps:1:1: error: train key 'steps' expects an integer >= 0"));
    const char *unknown[] = {"stepz"};
    assert_null(open_with(m, 1, unknown, bad_values, 0));
    assert_non_null(strstr(fep_last_error(), "did you mean 'steps'"));
    const char *null_value[] = {NULL};
    assert_null(open_with(m, 1, keys, null_value, 0));
    FepSessionOptions threads = {.threads = -2};
    FepSession *none = NULL;
    assert_int_equal(fep_session_open(m, &threads, &none), FEP_ERROR_ARGUMENT);
    fep_session_free(plain);
    fep_session_free(s);
    fep_module_free(m);
}

static void test_tensor_access(void **state)
{
    FepModule *m = module();
    FepSession *s32 = open_with(m, 0, NULL, NULL, 0), *s64 = open_with(m, 0, NULL, NULL, 1);
    double third[24], back[48];
    for (int i = 0; i < 24; i++)
        third[i] = 1.0 / (3 + i);
    assert_int_equal(fep_set_f64(s64, "W", third, 24), FEP_OK);
    assert_int_equal(fep_get_f64(s64, "W", back, 24), FEP_OK);
    assert_memory_equal(third, back, sizeof third);                /* doubles kept */
    assert_int_equal(fep_set_f64(s32, "W", third, 24), FEP_OK);
    float f[24];
    assert_int_equal(fep_get(s32, "W", f, 24), FEP_OK);
    assert_true(f[5] == (float)third[5]);                           /* rounded once */
    assert_int_equal(fep_get(s64, "W", f, 24), FEP_OK);             /* floats from an f64 session */
    assert_true(f[5] == (float)third[5]);
    assert_int_equal(fep_get_f64(s64, "W", back, 23), FEP_ERROR_SHAPE);
    assert_int_equal(fep_get_f64(s64, "error.h", back, 8 * 4), FEP_OK);
    assert_int_equal(fep_set_f64(s64, "error.h", back, 8 * 4), FEP_ERROR_NAME);
    assert_int_equal(fep_get_f64(s64, "fwd.h", back, 8 * 4), FEP_ERROR_NAME);
    assert_int_equal(fep_get_f64(s64, "nope", back, 1), FEP_ERROR_NAME);
    assert_int_equal(fep_get_f64(s64, NULL, back, 1), FEP_ERROR_ARGUMENT);
    assert_int_equal(fep_get_f64(s64, "W", NULL, 24), FEP_ERROR_ARGUMENT);
    assert_int_equal(fep_grads(s64), FEP_ERROR_ARGUMENT);           /* no relax yet */
    double x[8 * 6], y[8 * 3] = {0};
    for (int i = 0; i < 48; i++)
        x[i] = i / 48.0;
    for (int b = 0; b < 8; b++)
        y[b * 3 + b % 3] = 1;
    assert_int_equal(fep_set_f64(s64, "x", x, 48), FEP_OK);
    assert_int_equal(fep_set_f64(s64, "y", y, 24), FEP_OK);
    assert_int_equal(fep_relax(s64, -1), FEP_OK);
    assert_int_equal(fep_grads(s64), FEP_OK);
    double g[12];
    assert_int_equal(fep_get_f64(s64, "grad.V", g, 12), FEP_OK);
    double norm = 0;
    for (int i = 0; i < 12; i++)
        norm += g[i] * g[i];
    assert_true(norm > 0 && isfinite(norm));
    fep_session_free(s32);
    fep_session_free(s64);
    fep_module_free(m);
}

typedef struct Seen {
    int batches, epochs, stop_at;
    double last_val_accuracy;
} Seen;

static int on_batch(void *ctx, int epoch, int64_t done, int64_t total, double energy)
{
    Seen *seen = ctx;
    seen->batches++;
    assert_true(done > 0 && done <= total && total == N - 8 && isfinite(energy));
    return 0;
}

static int on_epoch(void *ctx, const FepEpochStats *st)
{
    Seen *seen = ctx;
    seen->epochs++;
    assert_int_equal(st->epoch, seen->epochs);
    assert_true(isfinite(st->energy) && st->train_accuracy >= 0 && st->val_accuracy >= 0 && st->seconds >= 0);
    assert_true(isfinite(st->val_energy));
    seen->last_val_accuracy = st->val_accuracy;
    return st->epoch == seen->stop_at;
}

static void test_fit_and_evaluate(void **state)
{
    FepModule *m = module();
    FepSession *s = open_with(m, 0, NULL, NULL, 0);
    static double x[N * 6], y[N];
    make_data(x, y);
    FepData *train = NULL, *val = NULL;
    assert_int_equal(fep_data_new(m, &train), FEP_OK);
    int64_t xd[2] = {N, 6}, yd[1] = {N}, bad[2] = {N, 5};
    assert_int_equal(fep_data_add(train, "x", x, 1, 2, bad), FEP_ERROR_SHAPE);
    assert_non_null(strstr(fep_last_error(), "array 'x': tensor 'x' has shape [40, 5] but input node 'x' : [6] needs"));
    assert_int_equal(fep_data_add(train, "z", x, 1, 2, xd), FEP_ERROR_NAME);
    assert_int_equal(fep_data_add(train, "h", x, 1, 2, xd), FEP_ERROR_SHAPE);
    assert_int_equal(fep_data_samples(train), 0);                   /* failures left it as it was */
    assert_int_equal(fep_data_add(train, "x", x, 1, 2, xd), FEP_OK);
    int64_t short_y[1] = {N - 1};
    assert_int_equal(fep_data_add(train, "y", y, 1, 1, short_y), FEP_ERROR_SHAPE);
    FepFitOptions o = {.epochs = -1, .holdout = 8, .report_every = 1, .on_batch = on_batch, .on_epoch = on_epoch};
    assert_int_equal(fep_fit(s, train, NULL, &o), FEP_ERROR_SHAPE);   /* y has no data */
    assert_non_null(strstr(fep_last_error(), "observed node 'y' of model 'tiny' has no data"));
    assert_int_equal(fep_data_add(train, "y", y, 1, 1, yd), FEP_OK);
    assert_int_equal(fep_data_samples(train), N);

    Seen seen = {.stop_at = 99};
    o.ctx = &seen;
    assert_int_equal(fep_fit(s, train, NULL, &o), FEP_OK);
    assert_int_equal(seen.epochs, 2);                               /* the epochs key */
    assert_int_equal(seen.batches, 2 * 4);                          /* 32 samples, batch 8 */
    Seen once = {.stop_at = 1};
    o.ctx = &once;
    o.epochs = 5;
    assert_int_equal(fep_fit(s, train, NULL, &o), FEP_OK);          /* stopped by the callback */
    assert_int_equal(once.epochs, 1);
    o.holdout = N;
    assert_int_equal(fep_fit(s, train, NULL, &o), FEP_ERROR_ARGUMENT);
    o.holdout = 0;
    o.clip = -1;
    assert_int_equal(fep_fit(s, train, NULL, &o), FEP_ERROR_ARGUMENT);

    assert_int_equal(fep_data_new(m, &val), FEP_OK);
    float xf[N * 6];
    for (int i = 0; i < N * 6; i++)
        xf[i] = (float)x[i];
    assert_int_equal(fep_data_add(val, "x", xf, 0, 2, xd), FEP_OK);  /* floats work too */
    assert_int_equal(fep_data_add(val, "y", y, 1, 1, yd), FEP_OK);
    double acc = -1, energy = -1;
    assert_int_equal(fep_evaluate(s, val, &acc, &energy), FEP_OK);
    assert_true(acc >= 0 && acc <= 1 && isfinite(energy));
    o.holdout = 8;
    assert_int_equal(fep_fit(s, train, val, &o), FEP_ERROR_ARGUMENT);   /* both a holdout and val */

    FepModule *other = module();
    FepSession *foreign = open_with(other, 0, NULL, NULL, 0);
    assert_int_equal(fep_evaluate(foreign, val, &acc, &energy), FEP_ERROR_ARGUMENT);
    fep_session_free(foreign);
    fep_module_free(other);

    /* Divergence is a numeric error naming the batch. */
    float inf[12];
    for (int i = 0; i < 12; i++)
        inf[i] = INFINITY;
    assert_int_equal(fep_set(s, "V", inf, 12), FEP_OK);
    FepFitOptions plain = {.epochs = 1};
    assert_int_equal(fep_fit(s, train, NULL, &plain), FEP_ERROR_NUMERIC);
    assert_non_null(strstr(fep_last_error(), "epoch 1, batch 0: training diverged"));
    assert_int_equal(fep_fit(NULL, train, NULL, NULL), FEP_ERROR_ARGUMENT);
    fep_data_free(val);
    fep_data_free(train);
    fep_session_free(s);
    fep_module_free(m);
}

static void test_bad_modules(void **state)
{
    FepModule *m = NULL;
    assert_int_equal(fep_compile_file("/no/such/model.fep", &m), FEP_ERROR_IO);
    assert_null(m);
    assert_int_equal(fep_load_so("/no/such/m.so", &m), FEP_ERROR_IO);
    assert_int_equal(fep_compile_string("bad.fep", "model m\nlatent h : [2] ~ normal(q)\n", &m), FEP_ERROR_MODEL);
    assert_non_null(strstr(fep_last_error(), "bad.fep:2:"));
    assert_int_equal(fep_compile_string(NULL, NULL, &m), FEP_ERROR_ARGUMENT);
    assert_int_equal(fep_session_open(NULL, NULL, NULL), FEP_ERROR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_tensor_access),
        cmocka_unit_test(test_fit_and_evaluate),
        cmocka_unit_test(test_bad_modules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
