/* fuzz_csv_npy.c — libFuzzer target for the CSV and NPY readers: the first
 * byte picks the reader (odd, e.g. 'c': csv_load; even, e.g. 'n':
 * npy_load), the rest is the file's bytes.  Checks the promises of
 * runtime/tensorio.h: a loaded table has named, unique columns and finite
 * values; a loaded array is well formed and converts to doubles; a failure
 * leaves a message and an empty result.
 * Seeds: tests/fuzz/corpus/fuzz_csv_npy/ (tests/fuzz/corpus/make_seeds.py).
 * tests/fuzz/replay.c runs this same function without libFuzzer. */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/tensorio.h"

#include "fuzz_io.h"


static void fuzz_csv(const char *path)
{
    CsvTable t;
    memset(&t, 0xA5, sizeof t);   /* csv_load must set every field either way */
    char err[512] = "";
    if (csv_load(path, &t, err, sizeof err)) {
        FUZZ_CHECK(t.n_columns > 0 && t.n_rows >= 0);
        for (int c = 0; c < t.n_columns; c++) {
            FUZZ_CHECK(t.columns[c] != NULL);
            FUZZ_CHECK(csv_column(&t, t.columns[c]) == c);
        }
        for (int64_t i = 0; i < t.n_rows * t.n_columns; i++)
            FUZZ_CHECK(isfinite(t.values[i]));
        csv_free(&t);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(!t.columns && !t.n_columns && !t.values && !t.n_rows);
    }
}

static void fuzz_npy(const char *path)
{
    HostTensor t;
    memset(&t, 0xA5, sizeof t);   /* npy_load must set every field either way */
    char err[512] = "";
    if (npy_load(path, &t, err, sizeof err)) {
        fuzz_check_tensor(&t);
        host_tensor_free(&t);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(fuzz_empty_tensor(&t));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *path = fuzz_tmp_write(data + 1, size - 1);
    if (data[0] & 1)
        fuzz_csv(path);
    else
        fuzz_npy(path);
    return 0;
}
