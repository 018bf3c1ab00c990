/* allreduce_bench.c — the baseline of bench/mpi_scaling.py: the time per
 * call of MPI_Allreduce (MPI_SUM) on a gradient of FLOATS floats, against
 * the collectives fepc's deterministic fold makes for the same gradient
 * when every rank holds one block (MPI_Alltoallv of 1/P slices, then
 * MPI_Allgatherv of the summed slices; runtime/dist.c).  Median over
 * ROUNDS rounds of 20 calls each.  Run under mpirun; rank 0 prints
 *   allreduce_us X
 *   fold_collectives_us Y
 * usage: allreduce_bench FLOATS ROUNDS */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_clock.h"

enum { CALLS = 20 };

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc != 3) {
        if (!rank)
            fprintf(stderr, "usage: allreduce_bench FLOATS ROUNDS\n");
        MPI_Finalize();
        return 2;
    }
    int n = atoi(argv[1]), rounds = atoi(argv[2]);
    float *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    int *counts = malloc(sizeof *counts * (size_t)ranks), *displs = malloc(sizeof *displs * (size_t)ranks);
    for (int r = 0; r < ranks; r++) {   /* slice r: floats [n·r/P, n·(r+1)/P), in bytes */
        displs[r] = (int)((int64_t)n * r / ranks) * (int)sizeof(float);
        counts[r] = (int)((int64_t)n * (r + 1) / ranks) * (int)sizeof(float) - displs[r];
    }
    int *recv_counts = malloc(sizeof *recv_counts * (size_t)ranks), *recv_displs = malloc(sizeof *recv_displs * (size_t)ranks);
    for (int r = 0; r < ranks; r++) {   /* every rank's part of this rank's slice */
        recv_counts[r] = counts[rank];
        recv_displs[r] = r * counts[rank];
    }
    double *all = malloc(sizeof *all * (size_t)rounds), *fold = malloc(sizeof *fold * (size_t)rounds);
    for (int k = 0; k < rounds; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        for (int i = 0; i < CALLS; i++)
            MPI_Allreduce(a, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t1 = now();
        for (int i = 0; i < CALLS; i++) {
            MPI_Alltoallv(a, counts, displs, MPI_BYTE, b, recv_counts, recv_displs, MPI_BYTE, MPI_COMM_WORLD);
            MPI_Allgatherv(b, counts[rank], MPI_BYTE, a, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
        }
        all[k] = (t1 - t0) / CALLS;
        fold[k] = (now() - t1) / CALLS;
    }
    if (!rank)
        printf("allreduce_us %.1f\nfold_collectives_us %.1f\n", 1e6 * median(all, rounds), 1e6 * median(fold, rounds));
    free(a), free(b), free(counts), free(displs), free(recv_counts), free(recv_displs), free(all), free(fold);
    MPI_Finalize();
    return 0;
}
