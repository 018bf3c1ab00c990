/* fuzz_io.h — scaffolding shared by the file-reader fuzz targets
 * (fuzz_idx, fuzz_safetensors, fuzz_csv_npy): one scratch file per process
 * for the loaders that take a path, and checks of runtime/tensorio.h's
 * promises.  Static and guarded, because replay.c includes every target's
 * source into one program. */
#ifndef FEP_FUZZ_IO_H
#define FEP_FUZZ_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/tensorio.h"

#ifndef FEP_FUZZ_TMPFILE
#define FEP_FUZZ_TMPFILE
/* The loaders take a path: every input is written to one scratch file per
 * process, made with mkstemp under /tmp on first use, rewritten on every
 * call and removed at exit. */
static char fuzz_tmp_path[] = "/tmp/fep-fuzz-XXXXXX";
static int fuzz_tmp_fd = -1;

static void fuzz_tmp_remove(void) { unlink(fuzz_tmp_path); }

static const char *fuzz_tmp_write(const uint8_t *data, size_t size)
{
    if (fuzz_tmp_fd < 0) {
        fuzz_tmp_fd = mkstemp(fuzz_tmp_path);
        if (fuzz_tmp_fd < 0) {
            perror("fuzz: mkstemp");
            abort();
        }
        atexit(fuzz_tmp_remove);
    }
    /* Overwrite, then cut to size: truncating to 0 first makes ext4 flush
     * the old data to disk (auto_da_alloc), ~2 ms a call. */
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fuzz_tmp_fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("fuzz: pwrite");
            abort();
        }
        done += (size_t)n;
    }
    if (ftruncate(fuzz_tmp_fd, (off_t)size) != 0) {
        perror("fuzz: ftruncate");
        abort();
    }
    return fuzz_tmp_path;
}
#endif

/* A broken promise of runtime/tensorio.h: report it as a crash. */
#ifndef FEP_FUZZ_CHECK
#define FEP_FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: tensorio contract broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* An empty (zeroed) tensor, as a failed load leaves it. */
__attribute__((unused)) static bool fuzz_empty_tensor(const HostTensor *t)
{
    return !t->name && !t->data && !t->nbytes && !t->rank;
}

/* A loaded tensor is well formed and converts to doubles. */
static void fuzz_check_tensor(const HostTensor *t)
{
    char err[512] = "";
    FUZZ_CHECK(tio_check_tensor(NULL, t, err, sizeof err));
    int64_t n = host_tensor_numel(t);
    double *v = malloc(sizeof *v * (size_t)(n + 1));
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(host_tensor_to_f64(t, v, err, sizeof err));
    free(v);
}
#endif

#endif
