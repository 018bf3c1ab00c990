/* mpi_api.c — the C API's data parallelism (fep.h, fep_session_set_comm),
 * run by CTest as `mpirun -np P mpi_api MODEL OTHER_MODEL` (label mpi).
 *
 * Every rank drives a session over its own, differently sized share of
 * one synthetic data set.  Checks: fep_mpi_enabled; joining copies rank
 * 0's parameters over every rank's (the others start from scribbled
 * ones); fep_session_rank; after five relax/learn steps every rank holds
 * the same parameters bit for bit and saw the same energies, and they
 * match one process's session over the whole data set to f32 rounding
 * (MODEL learns by SGD, so a gradient summed wrongly would move W1 by a
 * different amount: the check is relative to how far W1 moved);
 * a rank whose session runs another model makes joining fail on every
 * rank with FEP_ERROR_MODEL and a message naming it.  Rank 0 prints the
 * verdict; the exit status is non-zero on any failure. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fep.h"

enum { IN = 784, STEPS = 5 };

static int rank, ranks, failures;
static size_t W1;   /* elements of the model's W1 */

static void check(int cond, const char *what)
{
    int all_ok = 0, mine = cond != 0;
    MPI_Allreduce(&mine, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s %s\n", all_ok ? "ok  " : "FAIL", what);
    failures += !all_ok;
}

/* Sample i of the data set: x in [0, 1). */
static void sample(int i, float *x)
{
    unsigned s = 2654435761u * (unsigned)(i + 1);
    for (int k = 0; k < IN; k++) {
        s = s * 1664525u + 1013904223u;
        x[k] = (float)(s >> 8) / 16777216.0f;
    }
}

/* Binds samples [first, first + n) to node x of a session of batch n. */
static int bind(FepSession *s, int first, int n)
{
    float *x = malloc(sizeof *x * (size_t)n * IN);
    for (int b = 0; b < n; b++)
        sample(first + b, x + (size_t)b * IN);
    int ok = fep_set(s, "x", x, (size_t)n * IN) == FEP_OK;
    free(x);
    return ok;
}

/* STEPS relax/learn steps; energies[i] after each relaxation. */
static int train(FepSession *s, double *energies)
{
    for (int i = 0; i < STEPS; i++)
        if (fep_relax(s, -1) != FEP_OK || fep_energy(s, &energies[i]) != FEP_OK || fep_learn(s) != FEP_OK) {
            fprintf(stderr, "rank %d: step %d: %s\n", rank, i, fep_last_error());
            return 0;
        }
    return 1;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc != 3) {
        fprintf(stderr, "usage: mpi_api MODEL OTHER_MODEL\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    check(fep_mpi_enabled() == 1, "fep_mpi_enabled: this libfep has MPI");
    FepModule *m = NULL, *other = NULL;
    int rank_w = 0, is_value = 1;
    int64_t dims[8];
    check(fep_compile_file(argv[1], &m) == FEP_OK && fep_compile_file(argv[2], &other) == FEP_OK &&
          fep_tensor_info(m, "W1", &rank_w, dims, &is_value) == FEP_OK && rank_w == 2 && !is_value,
          "models compile; MODEL has a matrix W1");
    W1 = (size_t)(dims[0] * dims[1]);
    int local = 20 + 7 * rank, first = 0, total = 0;   /* uneven shares */
    for (int r = 0; r < ranks; r++) {
        first += r < rank ? 20 + 7 * r : 0;
        total += 20 + 7 * r;
    }
    FepSession *s = NULL;
    check(fep_session_new(m, local, &s) == FEP_OK && bind(s, first, local), "each rank binds its share");
    float *w = malloc(sizeof *w * W1), *w0 = malloc(sizeof *w0 * W1), *all = malloc(sizeof *all * W1 * (size_t)ranks);
    if (rank > 0) {   /* scribble: joining must replace these with rank 0's */
        for (size_t i = 0; i < W1; i++)
            w[i] = (float)rank;
        fep_set(s, "W1", w, W1);
    }
    int r0 = -1, n0 = -1;
    check(fep_session_rank(s, &r0, &n0) == FEP_OK && r0 == 0 && n0 == 1, "before joining: rank 0 of 1");
    check(fep_session_set_comm(s, (int)MPI_Comm_c2f(MPI_COMM_WORLD)) == FEP_OK, "fep_session_set_comm");
    check(fep_session_rank(s, &r0, &n0) == FEP_OK && r0 == rank && n0 == ranks, "after joining: this rank of all");
    fep_get(s, "W1", w0, W1);
    MPI_Allgather(w0, (int)W1, MPI_FLOAT, all, (int)W1, MPI_FLOAT, MPI_COMM_WORLD);
    int same = 1;
    for (int r = 1; r < ranks; r++)
        same &= !memcmp(all, all + (size_t)r * W1, sizeof *w * W1);
    check(same, "joining copies rank 0's parameters to every rank");

    double energies[STEPS], all_energies[STEPS * 8];
    check(train(s, energies), "five collective relax/learn steps");
    fep_get(s, "W1", w, W1);
    MPI_Allgather(w, (int)W1, MPI_FLOAT, all, (int)W1, MPI_FLOAT, MPI_COMM_WORLD);
    MPI_Allgather(energies, STEPS, MPI_DOUBLE, all_energies, STEPS, MPI_DOUBLE, MPI_COMM_WORLD);
    same = 1;
    for (int r = 1; r < ranks && r < 8; r++)
        same &= !memcmp(all, all + (size_t)r * W1, sizeof *w * W1) &&
                !memcmp(all_energies, all_energies + r * STEPS, sizeof energies);
    check(same, "every rank holds the same parameters and saw the same energies, bit for bit");

    /* One process over the whole data set, from the same start. */
    int close = 1;
    if (rank == 0) {
        FepSession *one = NULL;
        double ref[STEPS];
        float *v = malloc(sizeof *v * W1);
        close = fep_session_new(m, total, &one) == FEP_OK && bind(one, 0, total) && train(one, ref) &&
                fep_get(one, "W1", v, W1) == FEP_OK;
        double worst = 0, moved = 0;
        for (size_t i = 0; close && i < W1; i++) {
            worst = fmax(worst, fabs(v[i] - w[i]));
            moved = fmax(moved, fabs(v[i] - w0[i]));
        }
        for (int i = 0; close && i < STEPS; i++)
            close = fabs(ref[i] - energies[i]) <= 1e-5 * fabs(ref[i]);
        close = close && moved > 0 && worst <= 1e-3 * moved;
        printf("     max |W1 difference| %.3g, max |W1 step| %.3g; energy %.6f vs %.6f\n", worst, moved,
               energies[STEPS - 1], ref[STEPS - 1]);
        free(v);
        fep_session_free(one);
    }
    check(close, "the joined sessions match one session over all the data to f32 rounding");
    free(w0);

    /* A rank with another model: joining fails everywhere, with the reason. */
    FepSession *mixed = NULL;
    int ok = fep_session_new(rank == ranks - 1 ? other : m, 4, &mixed) == FEP_OK;
    FepStatus st = fep_session_set_comm(mixed, (int)MPI_Comm_c2f(MPI_COMM_WORLD));
    char expect[64];
    snprintf(expect, sizeof expect, "rank %d has model hash", ranks - 1);
    check(ok && st == FEP_ERROR_MODEL && strstr(fep_last_error(), expect),
          "another model on the last rank: FEP_ERROR_MODEL on every rank, naming it");
    fep_session_free(mixed);

    fep_session_free(s);
    fep_module_free(m);
    fep_module_free(other);
    free(w);
    free(all);
    MPI_Finalize();
    return failures ? 1 : 0;
}
