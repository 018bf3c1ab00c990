/* classify.c — using a model built by `fepc build` from C, with only libfep.
 *
 *   fepc build models/fmnist_mlp.fep -o mlp.so
 *   cc classify.c $(pkg-config --cflags --libs fep) -o classify
 *   ./classify ./mlp.so
 *
 * Trains the classifier for a few steps on two synthetic "images" (a bright
 * left half labelled 0, a bright right half labelled 1), then frees the
 * label node and asks the model to predict it.  Prints the energy as it
 * falls and the predicted classes. */
#include <fep.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                 \
    do {                                                                            \
        if ((call) != FEP_OK) {                                                     \
            fprintf(stderr, "%s failed: %s\n", #call, fep_last_error());            \
            return 1;                                                               \
        }                                                                           \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s module.so\n", argv[0]);
        return 2;
    }
    FepModule *module;
    FepSession *s;
    CHECK(fep_load_so(argv[1], &module));
    CHECK(fep_session_new(module, 2, &s));

    static float x[2 * 784], y[2 * 10];
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            x[r * 28 + c] = c < 14 ? 1.0f : 0.0f;         /* sample 0: left half */
            x[784 + r * 28 + c] = c >= 14 ? 1.0f : 0.0f;  /* sample 1: right half */
        }
    y[0] = 1;        /* class 0 */
    y[10 + 1] = 1;   /* class 1 */
    CHECK(fep_set(s, "x", x, 2 * 784));
    CHECK(fep_set(s, "y", y, 2 * 10));

    double first = 0, energy = 0;
    for (int step = 0; step < 30; step++) {
        CHECK(fep_relax(s, -1));
        CHECK(fep_energy(s, &energy));
        if (step == 0)
            first = energy;
        CHECK(fep_learn(s));
    }
    printf("energy: %.4f -> %.4f\n", first, energy);

    CHECK(fep_clamp(s, "y", 0));   /* prediction: the label is now free */
    CHECK(fep_relax(s, -1));
    CHECK(fep_get(s, "y", y, 2 * 10));
    for (int b = 0; b < 2; b++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (y[b * 10 + k] > y[b * 10 + best])
                best = k;
        printf("sample %d: predicted class %d (p = %.3f)\n", b, best, y[b * 10 + best]);
    }
    float probe;
    if (fep_get(s, "no_such_tensor", &probe, 1) == FEP_ERROR_NAME)
        printf("error handling: %s\n", fep_last_error());
    fep_session_free(s);
    fep_module_free(module);
    return energy < first ? 0 : 1;
}
