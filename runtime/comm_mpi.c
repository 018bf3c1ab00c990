/* comm_mpi.c — runtime.h's Comm over MPI: the block-sum exchange is
 * MPI_Alltoallv, gathers MPI_Allgatherv, counts MPI_Allreduce on int64,
 * parameters MPI_Bcast, all on bytes of a duplicated communicator (so
 * fepc's traffic never matches a caller's messages) with MPI_ERRORS_RETURN.
 *
 * Invariants: MPI's int counts are checked, never truncated (a message of
 * 2 GiB or more fails with a message); after a failure the Comm stays
 * failed and every later call fails at once; a fatal Comm (fepc) never
 * returns from a failure — the others wait in the collective, so it ends
 * the job. */
#include "comm_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct MpiComm {
    Comm base;            /* first: a Comm * is an MpiComm * */
    MPI_Comm comm;
    bool fatal;
    int *counts, *displs, *recv_counts, *recv_displs;   /* per rank, for the v-collectives */
} MpiComm;

/* Records a failed call; a fatal Comm reports it and ends the job. */
static bool failed(MpiComm *m, const char *call, int code)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (code != MPI_SUCCESS)
        MPI_Error_string(code, text, &len);
    snprintf(m->base.error, sizeof m->base.error, "rank %d: %s failed: %s (a rank died, or the network between "
             "ranks failed)", m->base.rank, call, code == MPI_SUCCESS ? "message too large for MPI's int counts" : text);
    m->base.failed = true;
    if (m->fatal) {
        fprintf(stderr, "fepc: error: %s\n", m->base.error);
        fflush(NULL);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return false;
}

/* Byte counts and their displacements as MPI ints; false when one does not fit. */
static bool as_ints(int n, const int64_t *bytes, int *counts, int *displs)
{
    int64_t at = 0;
    for (int r = 0; r < n; r++) {
        if (bytes[r] > INT_MAX || at > INT_MAX)
            return false;
        counts[r] = (int)bytes[r];
        displs[r] = (int)at;
        at += bytes[r];
    }
    return true;
}

static bool mpi_exchange(Comm *c, const void *send, const int64_t *send_bytes, void *recv, const int64_t *recv_bytes)
{
    MpiComm *m = (MpiComm *)c;
    if (c->failed)
        return false;
    if (!as_ints(c->size, send_bytes, m->counts, m->displs) ||
        !as_ints(c->size, recv_bytes, m->recv_counts, m->recv_displs))
        return failed(m, "MPI_Alltoallv", MPI_SUCCESS);
    int code = MPI_Alltoallv(send, m->counts, m->displs, MPI_BYTE, recv, m->recv_counts, m->recv_displs, MPI_BYTE,
                             m->comm);
    return code == MPI_SUCCESS || failed(m, "MPI_Alltoallv", code);
}

static bool mpi_gather(Comm *c, const void *mine, void *all, const int64_t *bytes)
{
    MpiComm *m = (MpiComm *)c;
    if (c->failed)
        return false;
    if (!as_ints(c->size, bytes, m->recv_counts, m->recv_displs))
        return failed(m, "MPI_Allgatherv", MPI_SUCCESS);
    int code = MPI_Allgatherv(mine, m->recv_counts[c->rank], MPI_BYTE, all, m->recv_counts, m->recv_displs, MPI_BYTE,
                              m->comm);
    return code == MPI_SUCCESS || failed(m, "MPI_Allgatherv", code);
}

static bool mpi_sum(Comm *c, int64_t *values, int n)
{
    MpiComm *m = (MpiComm *)c;
    if (c->failed)
        return false;
    int code = MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_SUM, m->comm);
    return code == MPI_SUCCESS || failed(m, "MPI_Allreduce", code);
}

static bool mpi_broadcast(Comm *c, void *data, int64_t bytes)
{
    MpiComm *m = (MpiComm *)c;
    enum { CHUNK = 1 << 30 };
    for (int64_t at = 0; at < bytes && !c->failed; at += CHUNK) {
        int n = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        int code = MPI_Bcast((char *)data + at, n, MPI_BYTE, 0, m->comm);
        if (code != MPI_SUCCESS)
            return failed(m, "MPI_Bcast", code);
    }
    return !c->failed;
}

static void mpi_abort(Comm *c, int status)
{
    MPI_Abort(((MpiComm *)c)->comm, status);
    exit(status);   /* MPI_Abort does not return; this keeps the promise if it ever did */
}

Comm *comm_mpi_new(MPI_Comm comm, bool fatal, char *err, size_t errlen)
{
    MpiComm *m = xcalloc(1, sizeof *m);
    int code = MPI_Comm_dup(comm, &m->comm);
    if (code != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING] = "";
        int len = 0;
        MPI_Error_string(code, text, &len);
        snprintf(err, errlen, "MPI_Comm_dup failed: %s", text);
        free(m);
        return NULL;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->base.rank);
    MPI_Comm_size(m->comm, &m->base.size);
    m->fatal = fatal;
    m->counts = xcalloc((size_t)m->base.size, sizeof(int));
    m->displs = xcalloc((size_t)m->base.size, sizeof(int));
    m->recv_counts = xcalloc((size_t)m->base.size, sizeof(int));
    m->recv_displs = xcalloc((size_t)m->base.size, sizeof(int));
    m->base.exchange = mpi_exchange;
    m->base.gather = mpi_gather;
    m->base.sum = mpi_sum;
    m->base.broadcast = mpi_broadcast;
    m->base.abort = mpi_abort;
    m->base.free = comm_mpi_free;
    return &m->base;
}

void comm_mpi_free(Comm *c)
{
    if (!c)
        return;
    MpiComm *m = (MpiComm *)c;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&m->comm);
    free(m->counts);
    free(m->displs);
    free(m->recv_counts);
    free(m->recv_displs);
    free(m);
}

Comm *comm_mpi_launch(void)
{
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "fepc: error: MPI_Init failed: cannot join the other ranks\n");
        return NULL;
    }
    char err[512];
    Comm *c = comm_mpi_new(MPI_COMM_WORLD, true, err, sizeof err);
    if (!c) {
        fprintf(stderr, "fepc: error: %s\n", err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return c;
}

void comm_mpi_finish(Comm *c)
{
    comm_mpi_free(c);
    MPI_Finalize();
}
