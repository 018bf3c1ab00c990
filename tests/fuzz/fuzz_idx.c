/* fuzz_idx.c — libFuzzer target for the IDX reader (idx_load): the input
 * is the file's bytes, plain or gzipped (zlib reads both).  Checks the
 * promises of runtime/tensorio.h: a loaded tensor is well formed and
 * converts to doubles; a failure leaves a message and an empty tensor.
 * Seeds: tests/fuzz/corpus/fuzz_idx/ (made by tests/fuzz/corpus/make_seeds.py).
 * tests/fuzz/replay.c runs this same function without libFuzzer. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/tensorio.h"

#include "fuzz_io.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_tmp_write(data, size);
    HostTensor t;
    memset(&t, 0xA5, sizeof t);   /* idx_load must set every field either way */
    char err[512] = "";
    if (idx_load(path, &t, err, sizeof err)) {
        fuzz_check_tensor(&t);
        host_tensor_free(&t);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(fuzz_empty_tensor(&t));
    }
    return 0;
}
