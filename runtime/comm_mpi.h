/* comm_mpi.h — the Comm of runtime.h over an MPI communicator (Open MPI
 * from Debian), for `fepc train` under mpirun and the C API's
 * fep_session_set_comm.  Built only with FEP_MPI (CMake finds MPI). */
#ifndef FEP_COMM_MPI_H
#define FEP_COMM_MPI_H

#include <mpi.h>

#include "runtime.h"

/* A Comm over a duplicate of `comm` whose errors are returned, not fatal.
 * A failed collective leaves the Comm failed with a message naming the
 * call; when `fatal` (fepc), it also prints that message and ends the job
 * with MPI_Abort, since the other ranks wait in the collective.  NULL with
 * err set when the duplicate cannot be made. */
Comm *comm_mpi_new(MPI_Comm comm, bool fatal, char *err, size_t errlen);
void comm_mpi_free(Comm *c);

/* fepc's start when an MPI launcher started the process: initialises MPI
 * (one thread calls it) and returns MPI_COMM_WORLD's fatal Comm, or NULL
 * after printing why not.  comm_mpi_finish frees it and finalises MPI. */
Comm *comm_mpi_launch(void);
void comm_mpi_finish(Comm *c);

#endif
