/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (st_load,
 * with the JSON header reader of runtime/json.c): the input is the file's
 * bytes.  Checks the promises of runtime/tensorio.h: every loaded tensor is
 * well formed and converts to doubles, names are unique, metadata is there;
 * a failure leaves a message and an empty set.
 * Seeds: tests/fuzz/corpus/fuzz_safetensors/ (tests/fuzz/corpus/make_seeds.py).
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
    TensorSet s;
    memset(&s, 0xA5, sizeof s);   /* st_load must set every field either way */
    char err[512] = "";
    if (st_load(path, &s, err, sizeof err)) {
        for (int i = 0; i < s.n_tensors; i++) {
            const HostTensor *t = &s.tensors[i];
            FUZZ_CHECK(t->name != NULL);
            FUZZ_CHECK(tensor_set_find(&s, t->name) == t);
            fuzz_check_tensor(t);
        }
        for (int i = 0; i < s.n_meta; i++) {
            FUZZ_CHECK(s.meta_keys[i] && s.meta_values[i]);
            FUZZ_CHECK(tensor_set_meta_get(&s, s.meta_keys[i]) == s.meta_values[i]);
        }
        tensor_set_free(&s);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(!s.tensors && !s.n_tensors && !s.meta_keys && !s.meta_values && !s.n_meta);
    }
    return 0;
}
