"""The C side: libfep's declarations (runtime/fep.h, for cffi's ABI mode)
and the loaded library.

The library is the first of:
  1. $FEP_LIBRARY (a path to libfep.so), when set;
  2. the build tree next to this package in a checkout (build/libfep.so
     beside python/, where scripts/build puts it);
  3. the path `cmake --install` recorded in fep/_install_paths.py;
  4. libfep.so.0 through the system's loader (LD_LIBRARY_PATH, ld.so.cache).

CDEF repeats fep.h's declarations without comments; tests/python/test_cdef.py
checks that each one appears in the header as written, so the two cannot
drift apart unnoticed.
"""
import os

from cffi import FFI

CDEF = """
typedef struct FepModule FepModule;
typedef struct FepSession FepSession;
typedef enum FepStatus {
    FEP_OK = 0,
    FEP_ERROR_IO,
    FEP_ERROR_MODEL,
    FEP_ERROR_NAME,
    FEP_ERROR_SHAPE,
    FEP_ERROR_NUMERIC,
    FEP_ERROR_ARGUMENT,
} FepStatus;
const char *fep_last_error(void);
FepStatus fep_compile_file(const char *path, FepModule **out);
FepStatus fep_load_so(const char *path, FepModule **out);
void fep_module_free(FepModule *m);
FepStatus fep_tensor_info(const FepModule *m, const char *name, int *rank, int64_t dims[8], int *is_value);
FepStatus fep_session_new(FepModule *m, int batch, FepSession **out);
void fep_session_free(FepSession *s);
FepStatus fep_set(FepSession *s, const char *name, const float *data, size_t n);
FepStatus fep_get(FepSession *s, const char *name, float *data, size_t n);
FepStatus fep_clamp(FepSession *s, const char *name, int clamped);
FepStatus fep_relax(FepSession *s, int steps);
FepStatus fep_advance(FepSession *s);
FepStatus fep_learn(FepSession *s);
FepStatus fep_energy(FepSession *s, double *out);
FepStatus fep_save_params(FepSession *s, const char *path);
FepStatus fep_load_params(FepSession *s, const char *path);
int fep_api_version(void);
FepStatus fep_compile_string(const char *name, const char *source, FepModule **out);
const char *fep_module_name(const FepModule *m);
typedef enum FepKind {
    FEP_KIND_PARAM = 0,
    FEP_KIND_CONST = 1,
    FEP_KIND_INPUT = 2,
    FEP_KIND_LATENT = 3,
    FEP_KIND_OBSERVED = 4,
} FepKind;
typedef struct FepTensorInfo {
    const char *name;
    FepKind kind;
    int rank;
    int64_t dims[8];
    int categorical;
    const char *family;
    int family_index;
    int rule_made;
} FepTensorInfo;
FepStatus fep_tensor_count(const FepModule *m, int *n);
FepStatus fep_tensor_at(const FepModule *m, int index, FepTensorInfo *out);
typedef struct FepSessionOptions {
    int f64;
    int threads;
    int n_settings;
    const char *const *keys;
    const char *const *values;
} FepSessionOptions;
FepStatus fep_session_open(FepModule *m, const FepSessionOptions *opt, FepSession **out);
FepStatus fep_session_config(const FepSession *s, char *buf, size_t len, size_t *needed);
FepStatus fep_set_f64(FepSession *s, const char *name, const double *data, size_t n);
FepStatus fep_get_f64(FepSession *s, const char *name, double *data, size_t n);
FepStatus fep_grads(FepSession *s);
typedef struct FepData FepData;
FepStatus fep_data_new(FepModule *m, FepData **out);
FepStatus fep_data_add(FepData *d, const char *node, const void *values, int f64, int rank, const int64_t *dims);
int64_t fep_data_samples(const FepData *d);
void fep_data_free(FepData *d);
typedef struct FepEpochStats {
    int epoch, epochs;
    double energy;
    double train_accuracy;
    double val_accuracy;
    double val_energy;
    double seconds;
} FepEpochStats;
typedef int (*FepBatchCallback)(void *ctx, int epoch, int64_t done, int64_t total, double energy);
typedef int (*FepEpochCallback)(void *ctx, const FepEpochStats *stats);
typedef struct FepFitOptions {
    int epochs;
    int64_t holdout;
    double clip;
    int report_every;
    FepBatchCallback on_batch;
    FepEpochCallback on_epoch;
    void *ctx;
} FepFitOptions;
FepStatus fep_fit(FepSession *s, const FepData *train, const FepData *val, const FepFitOptions *opt);
FepStatus fep_evaluate(FepSession *s, const FepData *data, double *accuracy, double *energy);
"""

# The header's FEP_API_VERSION these declarations were written against.
API_VERSION = 1

ffi = FFI()
ffi.cdef(CDEF)


def _candidates():
    env = os.environ.get("FEP_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = [os.path.join(os.path.dirname(os.path.dirname(here)), "build", "libfep.so")]
    try:
        from ._install_paths import LIBRARY
        found.append(LIBRARY)
    except ImportError:
        pass
    return [p for p in found if os.path.exists(p)] + ["libfep.so.0"]


def _load():
    tried = []
    for path in _candidates():
        try:
            # RTLD_GLOBAL: modules built by `fepc build` resolve libfep's
            # kernels (fep_kernel_*) from the process when libfep loads them.
            lib = ffi.dlopen(path, ffi.RTLD_NOW | ffi.RTLD_GLOBAL)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        try:
            version = lib.fep_api_version()
        except AttributeError:
            tried.append("%s (too old for this package: no fep_api_version; rebuild it)" % path)
            continue
        if version != API_VERSION:
            tried.append("%s (FEP_API_VERSION %d; this package needs %d)" % (path, version, API_VERSION))
            continue
        return lib, path
    raise ImportError("fep: cannot load libfep; tried:\n  " + "\n  ".join(tried) +
                      "\nBuild it (scripts/build build), install it (cmake --install build), "
                      "or point FEP_LIBRARY at libfep.so.")


lib, LIBRARY_PATH = _load()
