/* fep.h — the public C API of libfep, the fepc runtime.
 *
 * Open a module (compile a .fep file, or load a shared object written by
 * `fepc build`), create a session for a batch size, set and get tensors by
 * name, clamp value nodes to data, relax, learn, read the energy, save and
 * load parameters.  Every call returns FEP_OK or an error code; the
 * message of the last failure on the calling thread is fep_last_error().
 *
 * Tensors are float32, row-major.  Value nodes (inputs, latents, observed)
 * carry a leading batch dimension: their size is batch × the declared
 * element count.  Params and consts have no batch dimension.
 *
 * Thread safety: distinct sessions may be used from distinct threads; one
 * session must not be used by two threads at once. */
#ifndef FEP_H
#define FEP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FEP_API_VERSION 1

typedef struct FepModule FepModule;
typedef struct FepSession FepSession;

typedef enum FepStatus {
    FEP_OK = 0,
    FEP_ERROR_IO,        /* a file could not be read or written */
    FEP_ERROR_MODEL,     /* the model does not compile, or the module is not a fepc module */
    FEP_ERROR_NAME,      /* no tensor of that name */
    FEP_ERROR_SHAPE,     /* wrong number of elements */
    FEP_ERROR_NUMERIC,   /* NaN or Inf appeared */
    FEP_ERROR_ARGUMENT,  /* an invalid argument (NULL, batch < 1, ...) */
} FepStatus;

/* The message of the last failed call on this thread ("" if none). */
const char *fep_last_error(void);

/* Compiles a .fep file and JIT-compiles its kernels for this CPU. */
FepStatus fep_compile_file(const char *path, FepModule **out);
/* Loads a shared object written by `fepc build M.fep -o m.so`. */
FepStatus fep_load_so(const char *path, FepModule **out);
void fep_module_free(FepModule *m);

/* Tensor metadata: rank and dims exclude the batch dimension; *is_value is
 * 1 for value nodes (batched), 0 for params and consts. */
FepStatus fep_tensor_info(const FepModule *m, const char *name, int *rank, int64_t dims[8], int *is_value);

/* A session holds every tensor for `batch` samples, parameters initialised
 * from the model's INIT specs with its seed.  Observed nodes start clamped
 * (training mode); fep_clamp changes that. */
FepStatus fep_session_new(FepModule *m, int batch, FepSession **out);
void fep_session_free(FepSession *s);

/* Copies n floats in or out; n must equal the tensor's size. */
FepStatus fep_set(FepSession *s, const char *name, const float *data, size_t n);
FepStatus fep_get(FepSession *s, const char *name, float *data, size_t n);

/* Clamps (1) or frees (0) an observed or latent node.  A free observed
 * node is set to its prediction by fep_relax. */
FepStatus fep_clamp(FepSession *s, const char *name, int clamped);

/* Relaxation: free nodes start at their feedforward prediction and descend
 * the energy for `steps` steps of the model's step size (steps < 0: the
 * model's own count). */
FepStatus fep_relax(FepSession *s, int steps);
/* Ends a stream time step: prev(x) ← x for every node read through
 * prev().  Call after fep_relax, before binding the next step's data. */
FepStatus fep_advance(FepSession *s);
/* One optimizer step on the parameters at the relaxed values. */
FepStatus fep_learn(FepSession *s);
/* Mean energy per sample after the last fep_relax. */
FepStatus fep_energy(FepSession *s, double *out);

FepStatus fep_save_params(FepSession *s, const char *path);
FepStatus fep_load_params(FepSession *s, const char *path);

/* ---- Data-parallel training across processes over MPI (api_mpi.c) ----
 *
 * Every rank (process) of an MPI communicator drives its own session over
 * its own samples.  Joined to the communicator, the sessions act as one
 * session over all their samples: fep_relax, fep_learn and fep_energy
 * become collective (every rank calls them, in the same order);
 * fep_energy is the mean over every rank's samples; fep_learn sums the
 * parameter gradients over the ranks — in rank order, so every rank gets
 * the same bits — and takes one identical optimizer step everywhere.
 * The communicator is passed as its Fortran handle, MPI_Comm_c2f(comm), so
 * that this header needs no mpi.h.  MPI must be initialised before and
 * finalised after the session (free the session first).  fepc's own
 * `mpirun fepc train` splits batches more finely and matches one process
 * bit for bit; a joined session matches one process over the combined
 * batch to rounding. */

/* 1 when this libfep was built with MPI; 0 when not (fep_session_set_comm
 * then fails with FEP_ERROR_ARGUMENT). */
int fep_mpi_enabled(void);
/* Joins the session to the ranks of communicator comm_f (collective; the
 * ranks' batch sizes may differ).  Checks that every rank runs the same
 * model and settings (FEP_ERROR_MODEL on every rank if not) and copies
 * rank 0's parameters to every rank. */
FepStatus fep_session_set_comm(FepSession *s, int comm_f);
/* This rank and the number of ranks: 0 and 1 for a session not joined. */
FepStatus fep_session_rank(FepSession *s, int *rank, int *size);

#ifdef __cplusplus
}
#endif

#endif
