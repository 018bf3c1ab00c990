/* api_mpi.c — the C API's data parallelism (fep.h, "across processes"): a
 * session joined to an MPI communicator becomes a rank shard (dist.c), so
 * its energy is the global batch's and its gradients are summed over the
 * ranks, in rank order, after every gradient phase (session.c).
 *
 * Built into every libfep; without MPI (FEP_HAVE_MPI unset) joining fails
 * with a message saying so. */
#include <stdio.h>
#include <string.h>

#include "api_impl.h"

#ifdef FEP_HAVE_MPI
#include "comm_mpi.h"
#endif

int fep_mpi_enabled(void)
{
#ifdef FEP_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef FEP_HAVE_MPI
/* What every rank must share: the model's buffer table and its settings. */
static uint64_t session_hash(const Session *s)
{
    const Model *m = s->model;
    uint64_t h = hash_bytes(m->name, strlen(m->name), pass_buffer_signature(m));
    return hash_mix(hash_mix(h, train_config_hash(&s->cfg)), s->st.f64);
}

static FepStatus join(Session *s, int comm_f)
{
    char err[512];
    Comm *c = comm_mpi_new(MPI_Comm_f2c(comm_f), false, err, sizeof err);
    if (!c)
        return api_fail(FEP_ERROR_ARGUMENT, "%s", err);
    if (!dist_same(c, session_hash(s), "model hash (buffers and settings)", err, sizeof err)) {
        comm_mpi_free(c);
        return api_fail(FEP_ERROR_MODEL, "%s", err);
    }
    Shard *sh = dist_shard_ranks(c, s->st.batch);
    if (!sh || !dist_broadcast_params(c, s)) {
        snprintf(err, sizeof err, "%s", c->error);
        dist_shard_free(sh);
        comm_mpi_free(c);
        return api_fail(FEP_ERROR_ARGUMENT, "%s", err);
    }
    sh->owns_comm = true;
    session_set_shard(s, sh);
    return api_ok();
}
#endif

FepStatus fep_session_set_comm(FepSession *fs, int comm_f)
{
    Session *s = fs ? fs->s : NULL;
    if (!s)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_set_comm: NULL session");
#ifdef FEP_HAVE_MPI
    return join(s, comm_f);
#else
    (void)comm_f;
    return api_fail(FEP_ERROR_ARGUMENT, "fep_session_set_comm: this libfep was built without MPI (install "
                      "libopenmpi-dev and rebuild it)");
#endif
}

FepStatus fep_session_rank(FepSession *fs, int *rank, int *size)
{
    Session *s = fs ? fs->s : NULL;
    if (!s || !rank || !size)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_session_rank: NULL argument");
    const Shard *sh = s->st.shard;
    *rank = sh ? sh->comm->rank : 0;
    *size = sh ? sh->comm->size : 1;
    return api_ok();
}
