/* test_tensorio.c — cmocka tests for runtime/tensorio: safetensors, NPY, IDX,
 * CSV and atomic writes, including files that lie about themselves and a
 * small deterministic mutation sweep (every loader must fail cleanly, never
 * crash; run under ASan/UBSan).
 *
 * Usage: test_tensorio                          the main suite
 *        test_tensorio --numpy PYTHON SCRIPT    NumPy interop via tests/st_numpy_check.py
 * Files go to a fresh mkdtemp directory that is removed at the end.
 * FEP_FMNIST_DIR (compile definition) locates the Fashion-MNIST IDX files. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/tensorio.h"
#include "util/util.h"

#ifndef FEP_FMNIST_DIR
#define FEP_FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif

static char g_dir[256];
static const char *g_python, *g_script;

/* ---- helpers ---- */

/* PATH of `name` inside the test directory (4 rotating buffers). */
static const char *tmp(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A safetensors file with an explicit header length, header text and data. */
static void write_st_raw_len(const char *path, uint64_t len, const char *header, const void *data, size_t ndata)
{
    size_t hn = strlen(header);
    unsigned char *buf = xmalloc(8 + hn + ndata);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, hn);
    if (ndata)
        memcpy(buf + 8 + hn, data, ndata);
    write_bytes(path, buf, 8 + hn + ndata);
    free(buf);
}

static void write_st_raw(const char *path, const char *header, size_t ndata)
{
    void *zeros = xcalloc(ndata ? ndata : 1, 1);
    write_st_raw_len(path, strlen(header), header, zeros, ndata);
    free(zeros);
}

static void assert_contains_at(const char *haystack, const char *needle, const char *file, int line)
{
    if (!strstr(haystack, needle))
        fail_msg("%s:%d: expected \"%s\" in message: %s", file, line, needle, haystack);
}
#define assert_contains(h, n) assert_contains_at((h), (n), __FILE__, __LINE__)

/* Number of directory entries in the test directory other than . and .. */
static int count_entries(void)
{
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void clear_dir(void)
{
    nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(g_dir, 0700), 0);
}

static void fill_f64(HostTensor *t, const double *v)
{
    char err[256];
    if (!host_tensor_from_f64(t, v, err, sizeof err))
        fail_msg("%s", err);
}

static void assert_values(const HostTensor *t, const double *want, int64_t n)
{
    assert_int_equal(host_tensor_numel(t), n);
    double *got = xmalloc((size_t)(n ? n : 1) * sizeof *got);
    char err[256];
    assert_true(host_tensor_to_f64(t, got, err, sizeof err));
    for (int64_t i = 0; i < n; i++)
        if (!(got[i] == want[i]))
            fail_msg("tensor '%s' element %lld: got %.17g, want %.17g", t->name, (long long)i, got[i], want[i]);
    free(got);
}

static void assert_dims(const HostTensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

/* Runs argv (no shell); returns the exit status, or -1. */
static int run_argv(char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int group_setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/fep_tensorio.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    return nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- dtypes and conversions ---- */

static void test_dtype_table(void **state)
{
    static const char *names[] = {"F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F16", "BF16"};
    static const size_t sizes[] = {4, 8, 8, 4, 2, 1, 1, 1, 2, 2};
    for (int i = 0; i < N_DTYPES; i++) {
        DType dt;
        assert_string_equal(dtype_name((DType)i), names[i]);
        assert_int_equal(dtype_size((DType)i), sizes[i]);
        assert_true(dtype_from_name(names[i], &dt));
        assert_int_equal(dt, i);
    }
    DType dt;
    assert_false(dtype_from_name("f32", &dt));
    assert_false(dtype_from_name("U16", &dt));
}

static void test_half_conversions(void **state)
{
    assert_true(tio_f16_to_f64(0x3C00) == 1.0);
    assert_true(tio_f16_to_f64(0xC100) == -2.5);
    assert_true(tio_f16_to_f64(0x7BFF) == 65504.0);
    assert_true(tio_f16_to_f64(0x0001) == ldexp(1, -24));
    assert_true(isinf(tio_f16_to_f64(0x7C00)));
    assert_true(isnan(tio_f16_to_f64(0x7E00)));
    assert_int_equal(tio_f64_to_f16(1.0), 0x3C00);
    assert_int_equal(tio_f64_to_f16(1.0 + ldexp(1, -11)), 0x3C00);       /* tie → even */
    assert_int_equal(tio_f64_to_f16(1.0 + 3 * ldexp(1, -11)), 0x3C02);   /* tie → even (up) */
    assert_int_equal(tio_f64_to_f16(65519.0), 0x7BFF);
    assert_int_equal(tio_f64_to_f16(65520.0), 0x7C00);                   /* rounds to inf */
    assert_int_equal(tio_f64_to_f16(ldexp(1, -24)), 0x0001);
    assert_int_equal(tio_f64_to_f16(ldexp(1, -26)), 0x0000);
    assert_int_equal(tio_f64_to_f16(ldexp(1023, -24) + ldexp(1, -25)), 0x0400);  /* subnormal → normal */
    assert_int_equal(tio_f64_to_f16(-0.0), 0x8000);
    assert_true(tio_bf16_to_f64(0x3F80) == 1.0);
    assert_true(tio_bf16_to_f64(0x4049) == 3.140625);
    assert_int_equal(tio_f64_to_bf16(-2.0), 0xC000);
    assert_int_equal(tio_f64_to_bf16(3.14159265), 0x4049);
    for (unsigned h = 0; h < 0x10000; h++)    /* every finite f16 survives a round trip */
        if ((h & 0x7C00) != 0x7C00 && tio_f64_to_f16(tio_f16_to_f64((uint16_t)h)) != h)
            fail_msg("f16 0x%04x does not round-trip", h);
}

static void test_tensor_set_basics(void **state)
{
    TensorSet s = {0};
    int64_t dims[2] = {2, 3}, neg[1] = {-1}, huge[3] = {INT64_MAX / 2, 4, 1};
    HostTensor *t = tensor_set_add(&s, "a", DT_F32, 2, dims);
    assert_non_null(t);
    assert_int_equal(t->nbytes, 24);
    for (size_t i = 0; i < t->nbytes; i++)
        assert_int_equal(((unsigned char *)t->data)[i], 0);
    assert_null(tensor_set_add(&s, "a", DT_F64, 0, NULL));        /* duplicate */
    assert_null(tensor_set_add(&s, "n", DT_F32, 1, neg));         /* negative dim */
    assert_null(tensor_set_add(&s, "h", DT_F32, 3, huge));        /* overflow */
    assert_null(tensor_set_add(&s, "r", DT_F32, 9, dims));        /* rank */
    assert_non_null(tensor_set_add(&s, "b", DT_I8, 0, NULL));
    assert_int_equal(s.n_tensors, 2);
    assert_ptr_equal(tensor_set_find(&s, "b"), &s.tensors[1]);
    assert_null(tensor_set_find(&s, "c"));
    assert_true(tensor_set_meta(&s, "k", "v1"));
    assert_true(tensor_set_meta(&s, "k", "v2"));
    assert_int_equal(s.n_meta, 1);
    assert_string_equal(tensor_set_meta_get(&s, "k"), "v2");
    assert_false(tensor_set_meta(&s, NULL, "v"));
    tensor_set_free(&s);
    assert_int_equal(s.n_tensors, 0);
    tensor_set_free(&s);    /* idempotent */
}

static void test_f64_conversion(void **state)
{
    char err[256];
    int64_t dims[1] = {3};
    HostTensor t;
    assert_true(host_tensor_init(&t, "x", DT_I16, 1, dims, err, sizeof err));
    double ok[3] = {-32768, 0, 32767}, bad[3] = {1, 2.5, 3}, out[3];
    assert_true(host_tensor_from_f64(&t, ok, err, sizeof err));
    assert_true(host_tensor_to_f64(&t, out, err, sizeof err));
    assert_memory_equal(out, ok, sizeof ok);
    assert_false(host_tensor_from_f64(&t, bad, err, sizeof err));
    assert_contains(err, "element 1 (2.5) is not representable as I16");
    t.nbytes = 2;    /* lies about its size */
    assert_false(host_tensor_to_f64(&t, out, err, sizeof err));
    assert_contains(err, "holds 2 bytes but its shape needs 6");
    host_tensor_free(&t);
    assert_false(host_tensor_init(&t, "y", DT_F32, 1, (int64_t[]){-2}, err, sizeof err));
    assert_contains(err, "tensor 'y': dimension 0 is negative (-2)");
}

/* ---- safetensors ---- */

/* The set the numpy check expects (see tests/st_numpy_check.py). */
static void build_reference_set(TensorSet *s)
{
    HostTensor *t = tensor_set_add(s, "W1", DT_F32, 2, (int64_t[]){2, 3});
    fill_f64(t, (double[]){-1, -0.5, 0, 0.5, 1, 1.5});
    t = tensor_set_add(s, "b", DT_F64, 1, (int64_t[]){3});
    fill_f64(t, (double[]){1.0 / 3, -2.5e-300, 1e300});
    t = tensor_set_add(s, "steps", DT_I64, 1, (int64_t[]){2});
    int64_t steps[2] = {-((int64_t)1 << 62), ((int64_t)1 << 53) + 1};
    memcpy(t->data, steps, sizeof steps);
    t = tensor_set_add(s, "scalar", DT_F32, 0, NULL);
    fill_f64(t, (double[]){7.25});
    assert_non_null(tensor_set_add(s, "empty", DT_F32, 2, (int64_t[]){0, 4}));
    t = tensor_set_add(s, "half", DT_F16, 1, (int64_t[]){3});
    fill_f64(t, (double[]){1.0, -2.5, 65504});
    t = tensor_set_add(s, "mask", DT_BOOL, 1, (int64_t[]){4});
    fill_f64(t, (double[]){1, 0, 0, 1});
    t = tensor_set_add(s, "q\"\\\xc3\xa9", DT_U8, 1, (int64_t[]){2});
    fill_f64(t, (double[]){200, 7});
    tensor_set_meta(s, "format", "pt");
    tensor_set_meta(s, "note", "a \"quoted\" line\nwith \xc3\xa9");
}

static void test_st_roundtrip(void **state)
{
    TensorSet s = {0}, r;
    char err[512];
    build_reference_set(&s);
    if (!st_save(tmp("ref.safetensors"), &s, err, sizeof err))
        fail_msg("%s", err);
    if (!st_load(tmp("ref.safetensors"), &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.n_tensors, s.n_tensors);
    for (int i = 0; i < s.n_tensors; i++) {
        const HostTensor *a = &s.tensors[i], *b = &r.tensors[i];
        assert_string_equal(a->name, b->name);          /* insertion order kept */
        assert_int_equal(a->dtype, b->dtype);
        assert_dims(b, a->rank, a->dims);
        assert_int_equal(a->nbytes, b->nbytes);
        assert_memory_equal(a->data, b->data, a->nbytes);
    }
    assert_int_equal(r.n_meta, 2);
    assert_string_equal(r.meta_keys[0], "format");
    assert_string_equal(tensor_set_meta_get(&r, "note"), "a \"quoted\" line\nwith \xc3\xa9");
    HostTensor *sc = tensor_set_find(&r, "scalar");
    assert_int_equal(sc->rank, 0);
    assert_values(sc, (double[]){7.25}, 1);
    HostTensor *e = tensor_set_find(&r, "empty");
    assert_int_equal(e->nbytes, 0);
    assert_non_null(e->data);
    tensor_set_free(&s);
    tensor_set_free(&r);
}

static void test_st_layout(void **state)
{
    TensorSet s = {0};
    char err[256];
    HostTensor *a = tensor_set_add(&s, "z", DT_I8, 1, (int64_t[]){3});
    HostTensor *b;
    memcpy(a->data, "\x01\x02\x03", 3);
    b = tensor_set_add(&s, "a", DT_F32, 1, (int64_t[]){1});
    memcpy(b->data, "\x00\x00\x80\x3f", 4);
    assert_true(st_save(tmp("layout.safetensors"), &s, err, sizeof err));
    size_t len;
    unsigned char *raw = (unsigned char *)read_file(tmp("layout.safetensors"), &len);
    assert_non_null(raw);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | raw[i];
    assert_int_equal(n % 8, 0);
    assert_int_equal(len, 8 + n + 7);
    const char *want = "{\"z\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[3,7]}}";
    assert_memory_equal(raw + 8, want, strlen(want));
    for (size_t i = 8 + strlen(want); i < 8 + n; i++)
        assert_int_equal(raw[i], ' ');
    assert_memory_equal(raw + 8 + n, "\x01\x02\x03\x00\x00\x80\x3f", 7);
    free(raw);
    tensor_set_free(&s);
}

/* JSON keys in any order, whitespace, unknown fields, null metadata, escapes. */
static void test_st_lenient_reader(void **state)
{
    const char *header =
        " {\n \"second\" : {\"shape\": [1], \"extra\": {\"deep\": [1, -2.5e3, true, false, null, \"s\\\"\"]},"
        " \"data_offsets\": [4, 8], \"dtype\": \"I32\"},\n"
        " \"__metadata__\": null,\n"
        " \"fir\\u0073t\\ud83d\\ude00\\n\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]} }  ";
    float one = 1.0f;
    int32_t seven = 7;
    unsigned char data[8];
    memcpy(data, &one, 4);
    memcpy(data + 4, &seven, 4);
    write_st_raw_len(tmp("lenient.safetensors"), strlen(header), header, data, 8);
    TensorSet r;
    char err[512];
    if (!st_load(tmp("lenient.safetensors"), &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.n_tensors, 2);
    assert_int_equal(r.n_meta, 0);
    assert_string_equal(r.tensors[0].name, "first\xf0\x9f\x98\x80\n");   /* data order */
    assert_string_equal(r.tensors[1].name, "second");
    assert_values(&r.tensors[0], (double[]){1}, 1);
    assert_values(&r.tensors[1], (double[]){7}, 1);
    tensor_set_free(&r);
}

/* A header that must be rejected, with substrings the message must contain. */
typedef struct LyingFile {
    const char *header;
    size_t ndata;
    const char *want1, *want2;
} LyingFile;

static const LyingFile lying_files[] = {
    {"{\"W1\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}", 3996,
     "tensor 'W1': data offsets [0, 4000) exceed the data section (3996 bytes)", "byte 9:"},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
     "tensor 'W': shape [2, 3] of F32 needs 24 bytes but data offsets [0, 20) hold 20", NULL},
    {"{\"W\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'W': unknown or unsupported dtype 'F99'", NULL},
    {"{\"W\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "unsupported dtype 'U16'", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offs", 4, "unterminated string", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected ',' or '}', found end of header", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing characters after the header object", NULL},
    {"{}{}", 0, "trailing characters", NULL},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate tensor name 'a'", "byte 62:"},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[-1, 4],\"data_offsets\":[0,0]}}", 0, "tensor 'W': negative dimension -1", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0,
     "tensor 'W': element count overflows at dimension 1", NULL},
    {"{\"W\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807],\"data_offsets\":[0,0]}}", 0,
     "exceed the 274877906944-byte tensor limit", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,0]}}", 0, "integer out of range", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "rank exceeds 8", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'W': data offsets [4, 8) leave a gap", NULL},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "overlap", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "tensors cover 4 bytes of a 12-byte data section", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "are not an interval", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4]}}", 4, "expected an integer, found a fraction", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "']' after two data_offsets", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'W': missing \"data_offsets\"", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "duplicate \"dtype\"", NULL},
    {"{\"W\":5}", 0, "tensor 'W': expected an object", NULL},
    {"[]", 0, "expected '{', found '['", NULL},
    {"{\"W\\q\":1}", 0, "invalid escape character 'q'", NULL},
    {"{\"\\ud800x\":1}", 0, "unpaired high surrogate", NULL},
    {"{\"\\udc00\":1}", 0, "unpaired low surrogate", NULL},
    {"{\"a\\u0000b\":1}", 0, "\\u0000 is not allowed", NULL},
    {"{\"a\xff\":1}", 0, "byte 11: invalid UTF-8", NULL},
    {"{\"a\xc0\x80\":1}", 0, "invalid UTF-8", NULL},
    {"{\"a\tb\":1}", 0, "control character 0x09", NULL},
    {"{\"__metadata__\":{\"k\":1}}", 0, "metadata value for 'k' must be a string", NULL},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate metadata key 'k'", NULL},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate \"__metadata__\"", NULL},
    {"{\"W\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, "leading zero", NULL},
    {"{\"W\":{\"x\":tru,\"dtype\":\"F32\"}}", 0, "unexpected", NULL},
    {"{\"W\":{\"x\":-,\"dtype\":\"F32\"}}", 0, "malformed number", NULL},
    {"{\"W\":{\"x\":1.e5}}", 0, "malformed number", NULL},
};

static void test_st_lying_files(void **state)
{
    char err[512];
    for (size_t i = 0; i < sizeof lying_files / sizeof *lying_files; i++) {
        const LyingFile *c = &lying_files[i];
        TensorSet r;
        write_st_raw(tmp("lie.safetensors"), c->header, c->ndata);
        err[0] = '\0';
        if (st_load(tmp("lie.safetensors"), &r, err, sizeof err))
            fail_msg("case %zu loaded: %s", i, c->header);
        assert_int_equal(r.n_tensors, 0);
        assert_null(r.tensors);
        assert_contains(err, tmp("lie.safetensors"));
        assert_contains(err, c->want1);
        if (c->want2)
            assert_contains(err, c->want2);
        assert_null(strchr(err, '\n'));
    }
}

static void test_st_bad_lengths(void **state)
{
    char err[512];
    TensorSet r;
    write_st_raw_len(tmp("len.safetensors"), 1000, "{}", NULL, 0);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    assert_contains(err, "byte 0: header length 1000 exceeds the rest of the file (2 bytes)");
    write_st_raw_len(tmp("len.safetensors"), (uint64_t)1 << 40, "{}", NULL, 0);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    assert_contains(err, "100 MB limit");
    write_st_raw_len(tmp("len.safetensors"), UINT64_MAX, "{}", NULL, 0);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    write_st_raw_len(tmp("len.safetensors"), 0, "", NULL, 0);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    assert_contains(err, "header length is 0");
    write_bytes(tmp("len.safetensors"), "\x02\x00\x00", 3);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    assert_contains(err, "too short for the 8-byte header length");
    assert_false(st_load(tmp("missing.safetensors"), &r, err, sizeof err));
    assert_contains(err, "missing.safetensors: No such file");
    assert_false(st_load(g_dir, &r, err, sizeof err));
    assert_contains(err, "not a regular file");
    /* a deeply nested unknown field is cut off, not recursed into without bound */
    char deep[400] = "{\"W\":{\"x\":";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    write_st_raw(tmp("len.safetensors"), deep, 0);
    assert_false(st_load(tmp("len.safetensors"), &r, err, sizeof err));
    assert_contains(err, "nesting deeper than 64");
}

static void test_st_save_rejects(void **state)
{
    char err[512];
    TensorSet s = {0};
    HostTensor *t = tensor_set_add(&s, "a", DT_F32, 1, (int64_t[]){2});
    t->nbytes = 4;
    assert_false(st_save(tmp("bad.safetensors"), &s, err, sizeof err));
    assert_contains(err, "tensor 'a': holds 4 bytes but its shape needs 8");
    t->nbytes = 8;
    free(t->name);
    t->name = xstrdup("__metadata__");
    assert_false(st_save(tmp("bad.safetensors"), &s, err, sizeof err));
    assert_contains(err, "invalid name '__metadata__'");
    free(t->name);
    t->name = xstrdup("bad\xff");
    assert_false(st_save(tmp("bad.safetensors"), &s, err, sizeof err));
    assert_contains(err, "not valid UTF-8");
    free(t->name);
    t->name = xstrdup("b");
    assert_non_null(tensor_set_add(&s, "c", DT_F32, 0, NULL));
    free(s.tensors[1].name);
    s.tensors[1].name = xstrdup("b");    /* duplicate made behind tensor_set_add's back */
    assert_false(st_save(tmp("bad.safetensors"), &s, err, sizeof err));
    assert_contains(err, "duplicate tensor name 'b'");
    assert_int_equal(access(tmp("bad.safetensors"), F_OK), -1);
    TensorSet empty = {0}, r;
    assert_true(st_save(tmp("empty.safetensors"), &empty, err, sizeof err));
    assert_true(st_load(tmp("empty.safetensors"), &r, err, sizeof err));
    assert_int_equal(r.n_tensors, 0);
    tensor_set_free(&r);
    tensor_set_free(&s);
}

/* Every truncation and many single-byte corruptions of a valid file must be
 * loaded or rejected cleanly (ASan/UBSan watch for the rest). */
static void test_st_mutations(void **state)
{
    TensorSet s = {0}, r;
    char err[512];
    build_reference_set(&s);
    assert_true(st_save(tmp("m.safetensors"), &s, err, sizeof err));
    tensor_set_free(&s);
    size_t len;
    unsigned char *raw = (unsigned char *)read_file(tmp("m.safetensors"), &len);
    assert_non_null(raw);
    static const unsigned char values[] = {0x00, 0xff, '"', '{', '[', '-', '9', '\\', 0x80};
    int loaded = 0;
    for (size_t cut = 0; cut < len; cut++) {
        write_bytes(tmp("mut.safetensors"), raw, cut);
        assert_false(st_load(tmp("mut.safetensors"), &r, err, sizeof err));
    }
    for (size_t i = 0; i < len; i++)
        for (size_t v = 0; v < sizeof values; v++) {
            unsigned char saved = raw[i];
            raw[i] = values[v];
            write_bytes(tmp("mut.safetensors"), raw, len);
            if (st_load(tmp("mut.safetensors"), &r, err, sizeof err)) {
                loaded++;
                tensor_set_free(&r);
            } else {
                assert_true(err[0] != '\0');
            }
            raw[i] = saved;
        }
    assert_true(loaded > 0);    /* corruptions inside the data section still load */
    free(raw);
}

/* ---- npy ---- */

static const unsigned char numpy_f4_2x3[152] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
    0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
    0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
    0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x20,
    0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
    0x00, 0x00, 0xc0, 0xbf, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xc0, 0x3f,
    0x00, 0x00, 0x20, 0x40, 0x00, 0x00, 0x60, 0x40,
};

/* Writes a v1 .npy with the given dict text (padded) and n payload bytes. */
static void write_npy_raw(const char *path, const char *dict, size_t n)
{
    char buf[512];
    size_t dn = strlen(dict), hlen = (10 + dn + 1 + 63) / 64 * 64 - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xFF);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, dn);
    memset(buf + 10 + dn, ' ', hlen - dn - 1);
    buf[10 + hlen - 1] = '\n';
    memset(buf + 10 + hlen, 0x3f, n);
    write_bytes(path, buf, 10 + hlen + n);
}

static void test_npy_roundtrip(void **state)
{
    char err[256];
    static const DType types[] = {DT_F32, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_F16};
    double v[6] = {1, 0, 1, 1, 0, 1};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        HostTensor t, r;
        assert_true(host_tensor_init(&t, "t", types[i], 2, (int64_t[]){3, 2}, err, sizeof err));
        fill_f64(&t, v);
        if (!npy_save(tmp("rt.npy"), &t, err, sizeof err) || !npy_load(tmp("rt.npy"), &r, err, sizeof err))
            fail_msg("%s: %s", dtype_name(types[i]), err);
        assert_int_equal(r.dtype, types[i]);
        assert_dims(&r, 2, t.dims);
        assert_memory_equal(r.data, t.data, t.nbytes);
        size_t len;
        char *raw = read_file(tmp("rt.npy"), &len);
        assert_int_equal((len - t.nbytes) % 64, 0);     /* payload 64-byte aligned */
        free(raw);
        host_tensor_free(&t);
        host_tensor_free(&r);
    }
    HostTensor s, e, r;
    assert_true(host_tensor_init(&s, "s", DT_F64, 0, NULL, err, sizeof err));
    fill_f64(&s, (double[]){-3.5});
    assert_true(npy_save(tmp("s.npy"), &s, err, sizeof err) && npy_load(tmp("s.npy"), &r, err, sizeof err));
    assert_int_equal(r.rank, 0);
    assert_values(&r, (double[]){-3.5}, 1);
    host_tensor_free(&r);
    assert_true(host_tensor_init(&e, "e", DT_I32, 3, (int64_t[]){2, 0, 5}, err, sizeof err));
    assert_true(npy_save(tmp("e.npy"), &e, err, sizeof err) && npy_load(tmp("e.npy"), &r, err, sizeof err));
    assert_dims(&r, 3, e.dims);
    assert_int_equal(r.nbytes, 0);
    host_tensor_free(&r);
    host_tensor_free(&s);
    host_tensor_free(&e);
    HostTensor bf;
    assert_true(host_tensor_init(&bf, "bf", DT_BF16, 1, (int64_t[]){1}, err, sizeof err));
    assert_false(npy_save(tmp("bf.npy"), &bf, err, sizeof err));
    assert_contains(err, "BF16 has no NumPy equivalent");
    host_tensor_free(&bf);
}

static void test_npy_from_numpy_bytes(void **state)
{
    char err[256];
    HostTensor r;
    write_bytes(tmp("numpy.npy"), numpy_f4_2x3, sizeof numpy_f4_2x3);
    if (!npy_load(tmp("numpy.npy"), &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.dtype, DT_F32);
    assert_dims(&r, 2, (int64_t[]){2, 3});
    assert_values(&r, (double[]){-1.5, -0.5, 0.5, 1.5, 2.5, 3.5}, 6);
    host_tensor_free(&r);
    write_bytes(tmp("numpy.npy"), numpy_f4_2x3, sizeof numpy_f4_2x3 - 1);
    assert_false(npy_load(tmp("numpy.npy"), &r, err, sizeof err));
    assert_contains(err, "shape needs 24 payload bytes of F32 but the file has 23");
    unsigned char longer[sizeof numpy_f4_2x3 + 1];
    memcpy(longer, numpy_f4_2x3, sizeof numpy_f4_2x3);
    longer[sizeof numpy_f4_2x3] = 0;
    write_bytes(tmp("numpy.npy"), longer, sizeof longer);
    assert_false(npy_load(tmp("numpy.npy"), &r, err, sizeof err));
    assert_contains(err, "but the file has 25");
}

static void test_npy_rejects(void **state)
{
    static const struct { const char *dict; size_t n; const char *want; } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "fortran_order True is not supported"},
        {"{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian dtype '>i4'"},
        {"{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", 8, "unsupported dtype '<u4'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured dtypes"},
        {"{'descr': '<f4', 'shape': (2,), }", 8, "header dict lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unexpected key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, "duplicate key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "non-negative integer dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, "rank exceeds 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, "dimension out of range"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, "trailing characters"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, "expected True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8, "expected ',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, "expected ',' or '}'"},
        {"{'descr': '<f4", 8, "unterminated string"},
    };
    char err[256];
    HostTensor r;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_npy_raw(tmp("bad.npy"), cases[i].dict, cases[i].n);
        if (npy_load(tmp("bad.npy"), &r, err, sizeof err))
            fail_msg("case %zu loaded", i);
        assert_null(r.data);
        assert_contains(err, tmp("bad.npy"));
        assert_contains(err, cases[i].want);
    }
    write_bytes(tmp("bad.npy"), "\x93NUMPX\x01\x00\x00\x00", 10);
    assert_false(npy_load(tmp("bad.npy"), &r, err, sizeof err));
    assert_contains(err, "bad magic");
    write_bytes(tmp("bad.npy"), "\x93NUMPY\x04\x00\x00\x00", 10);
    assert_false(npy_load(tmp("bad.npy"), &r, err, sizeof err));
    assert_contains(err, "unsupported .npy format version 4.0");
    write_bytes(tmp("bad.npy"), "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    assert_false(npy_load(tmp("bad.npy"), &r, err, sizeof err));
    assert_contains(err, "header length 4294967295 exceeds");
    write_bytes(tmp("bad.npy"), "\x93NUMPY\x01\x00\x40\x00{'descr'", 17);
    assert_false(npy_load(tmp("bad.npy"), &r, err, sizeof err));
    assert_contains(err, "file ends inside the 64-byte header");
}

static void test_npy_mutations(void **state)
{
    char err[256];
    unsigned char raw[sizeof numpy_f4_2x3];
    HostTensor r;
    for (size_t cut = 0; cut < sizeof raw; cut++) {
        write_bytes(tmp("mut.npy"), numpy_f4_2x3, cut);
        assert_false(npy_load(tmp("mut.npy"), &r, err, sizeof err));
    }
    for (size_t i = 0; i < sizeof raw; i++)
        for (int v = 0; v < 256; v += 17) {
            memcpy(raw, numpy_f4_2x3, sizeof raw);
            raw[i] = (unsigned char)v;
            write_bytes(tmp("mut.npy"), raw, sizeof raw);
            if (npy_load(tmp("mut.npy"), &r, err, sizeof err))
                host_tensor_free(&r);
        }
}

/* ---- idx ---- */

static void test_idx_fashion_mnist(void **state)
{
    char err[512];
    HostTensor labels, images;
    if (!idx_load(FEP_FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", &labels, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(labels.dtype, DT_U8);
    assert_dims(&labels, 1, (int64_t[]){10000});
    const unsigned char *l = labels.data;
    assert_int_equal(l[0], 9);
    assert_int_equal(l[1], 2);
    long sum = 0;
    for (int i = 0; i < 10000; i++)
        sum += l[i];
    assert_int_equal(sum, 45000);
    if (!idx_load(FEP_FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &images, err, sizeof err))
        fail_msg("%s", err);
    assert_dims(&images, 3, (int64_t[]){10000, 28, 28});
    assert_int_equal(images.nbytes, 7840000);
    const unsigned char *px = images.data;
    long first = 0, all = 0;
    for (int i = 0; i < 784; i++)
        first += px[i];
    for (size_t i = 0; i < images.nbytes; i++)
        all += px[i];
    assert_int_equal(first, 33456);         /* python3: sum(gzip.open(...).read()[16:16+784]) */
    assert_int_equal(all, 573469082);
    host_tensor_free(&labels);
    host_tensor_free(&images);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static void test_idx_lying_files(void **state)
{
    char err[512];
    HostTensor r;
    unsigned char buf[16 + 200];
    memcpy(buf, "\x00\x00\x08\x03\x00\x00\x00\x0a\x00\x00\x00\x1c\x00\x00\x00\x1c", 16);
    memset(buf + 16, 7, 200);
    write_gz(tmp("short.idx.gz"), buf, 16 + 100);     /* header says 10x28x28 */
    assert_false(idx_load(tmp("short.idx.gz"), &r, err, sizeof err));
    assert_contains(err, tmp("short.idx.gz"));
    assert_contains(err, "truncated IDX payload: shape [10, 28, 28] of U8 needs 7840 bytes after the 16-byte header, found 100");
    assert_null(r.data);
    /* claims 4 GiB of payload: must fail on the bytes present, not allocate 4 GiB */
    memcpy(buf, "\x00\x00\x08\x01\xff\xff\xff\xff", 8);
    write_gz(tmp("huge.idx.gz"), buf, 8 + 50);
    assert_false(idx_load(tmp("huge.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "needs 4294967295 bytes after the 8-byte header, found 50");
    memcpy(buf, "\x00\x00\x08\x01\x00\x00\x00\x04", 8);
    write_gz(tmp("long.idx.gz"), buf, 8 + 5);
    assert_false(idx_load(tmp("long.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "byte 12: trailing data after the 4-byte IDX payload");
    write_gz(tmp("magic.idx.gz"), "\x01\x00\x08\x01", 4);
    assert_false(idx_load(tmp("magic.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "not an IDX file (magic 01 00 08 01)");
    write_gz(tmp("type.idx.gz"), "\x00\x00\x0a\x01", 4);
    assert_false(idx_load(tmp("type.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "not an IDX file");
    write_gz(tmp("rank.idx.gz"), "\x00\x00\x08\x09", 4);
    assert_false(idx_load(tmp("rank.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "rank 9 exceeds 8");
    write_gz(tmp("hdr.idx.gz"), "\x00\x00\x08\x02\x00\x00", 6);
    assert_false(idx_load(tmp("hdr.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "reading the IDX header (2 dims need 12 bytes): file ends early");
    assert_false(idx_load(tmp("nothing.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "nothing.idx.gz");
}

static void test_idx_corrupt_gzip(void **state)
{
    char err[512];
    HostTensor r;
    unsigned char buf[8 + 4000];
    memcpy(buf, "\x00\x00\x08\x01\x00\x00\x0f\xa0", 8);
    for (int i = 0; i < 4000; i++)
        buf[8 + i] = (unsigned char)(i * 7919 >> 3);
    write_gz(tmp("c.idx.gz"), buf, sizeof buf);
    size_t len;
    unsigned char *gz = (unsigned char *)read_file(tmp("c.idx.gz"), &len);
    assert_true(idx_load(tmp("c.idx.gz"), &r, err, sizeof err));
    assert_memory_equal(r.data, buf + 8, 4000);
    host_tensor_free(&r);
    write_bytes(tmp("cut.idx.gz"), gz, len / 2);              /* stream cut in half */
    assert_false(idx_load(tmp("cut.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "truncated IDX payload");
    write_bytes(tmp("cut.idx.gz"), gz, len - 4);              /* trailer (size) cut */
    assert_false(idx_load(tmp("cut.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "gzip");
    gz[len - 6] ^= 0x55;                                      /* CRC mismatch */
    write_bytes(tmp("crc.idx.gz"), gz, len);
    assert_false(idx_load(tmp("crc.idx.gz"), &r, err, sizeof err));
    assert_contains(err, "gzip");
    gz[len - 6] ^= 0x55;
    for (size_t i = 10; i < len; i += 3) {                    /* mutation sweep: no crash */
        unsigned char saved = gz[i];
        gz[i] ^= 0xA5;
        write_bytes(tmp("mut.idx.gz"), gz, len);
        if (idx_load(tmp("mut.idx.gz"), &r, err, sizeof err))
            host_tensor_free(&r);
        gz[i] = saved;
    }
    free(gz);
}

static void test_idx_plain_big_endian(void **state)
{
    char err[256];
    HostTensor r;
    write_bytes(tmp("i16.idx"), "\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe", 12);
    assert_true(idx_load(tmp("i16.idx"), &r, err, sizeof err));
    assert_int_equal(r.dtype, DT_I16);
    assert_values(&r, (double[]){258, -2}, 2);
    host_tensor_free(&r);
    write_bytes(tmp("i32.idx"), "\x00\x00\x0c\x02\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xf9", 16);
    assert_true(idx_load(tmp("i32.idx"), &r, err, sizeof err));
    assert_values(&r, (double[]){-7}, 1);
    host_tensor_free(&r);
    write_bytes(tmp("f32.idx"), "\x00\x00\x0d\x01\x00\x00\x00\x01\x3f\xc0\x00\x00", 12);
    assert_true(idx_load(tmp("f32.idx"), &r, err, sizeof err));
    assert_values(&r, (double[]){1.5}, 1);
    host_tensor_free(&r);
    write_bytes(tmp("f64.idx"), "\x00\x00\x0e\x01\x00\x00\x00\x01\xc0\x04\x00\x00\x00\x00\x00\x00", 16);
    assert_true(idx_load(tmp("f64.idx"), &r, err, sizeof err));
    assert_values(&r, (double[]){-2.5}, 1);
    host_tensor_free(&r);
    write_bytes(tmp("i8.idx"), "\x00\x00\x09\x00\x80", 5);   /* rank 0: one element */
    assert_true(idx_load(tmp("i8.idx"), &r, err, sizeof err));
    assert_int_equal(r.rank, 0);
    assert_values(&r, (double[]){-128}, 1);
    host_tensor_free(&r);
    write_bytes(tmp("f32.idx"), "\x00\x00\x0d\x01\x00\x00\x00\x02\x3f\xc0\x00\x00\x00", 13);
    assert_false(idx_load(tmp("f32.idx"), &r, err, sizeof err));
    assert_contains(err, "needs 8 bytes after the 8-byte header, found 5");
}

/* ---- csv ---- */

static void test_csv_load(void **state)
{
    const char *text = "t, \"x[0]\",\"a,\"\"b\"\"\",y\r\n"
                       "0,1.5,-2,3e2\r\n"
                       "1, 2 ,\"4\",-0.25\n"
                       "\n\r\n";
    write_bytes(tmp("a.csv"), text, strlen(text));
    CsvTable t;
    char err[256];
    if (!csv_load(tmp("a.csv"), &t, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(t.n_columns, 4);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.columns[0], "t");
    assert_string_equal(t.columns[1], "x[0]");
    assert_string_equal(t.columns[2], "a,\"b\"");
    assert_int_equal(csv_column(&t, "y"), 3);
    assert_int_equal(csv_column(&t, "z"), -1);
    double want[8] = {0, 1.5, -2, 300, 1, 2, 4, -0.25};
    for (int i = 0; i < 8; i++)
        assert_true(t.values[i] == want[i]);
    csv_free(&t);
    write_bytes(tmp("h.csv"), "a,b", 3);       /* header only, no newline */
    assert_true(csv_load(tmp("h.csv"), &t, err, sizeof err));
    assert_int_equal(t.n_rows, 0);
    assert_int_equal(t.n_columns, 2);
    csv_free(&t);
}

static void test_csv_errors(void **state)
{
    static const struct { const char *text, *want; } cases[] = {
        {"x,y\n1,2\n3,4,5\n", ":3: expected 2 fields, found 3"},
        {"x,y\n1,2\n3\n", ":3: expected 2 fields, found 1"},
        {"x,y\n1,abc\n", ":2: column 'y': 'abc' is not a number"},
        {"x,y\n1,2x\n", ":2: column 'y': '2x' is not a number"},
        {"x,y\nnan,1\n", ":2: column 'x': 'nan' is not a finite number"},
        {"x,y\n1,-inf\n", "'-inf' is not a finite number"},
        {"x,y\n1,1e999\n", "'1e999' is not a finite number"},
        {"x,y\n1,0x10\n", "'0x10' is not a number"},
        {"x,y\n1,\n", ":2: column 'y': '' is empty"},
        {"x,y\n1,2\n\n3,4\n", ":3: blank line inside the table"},
        {"x,x\n1,2\n", ":1: duplicate column name 'x'"},
        {"x,,z\n", ":1: column 2 of the header has an empty name"},
        {"", ":1: empty file"},
        {"\n\n", ":1: empty file"},
        {"x,y\n1,\"2\n", ":2: unterminated quoted field"},
        {"x,y\n1,\"2\"3\n", ":2: unexpected character after a closing quote"},
        {"\"x\n\ny\",z\n1,2\n3,4,5\n", ":5: expected 2 fields, found 3"},
    };
    char err[256];
    CsvTable t;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_bytes(tmp("bad.csv"), cases[i].text, strlen(cases[i].text));
        if (csv_load(tmp("bad.csv"), &t, err, sizeof err))
            fail_msg("case %zu loaded", i);
        assert_null(t.columns);
        assert_contains(err, tmp("bad.csv"));
        assert_contains(err, cases[i].want);
    }
    write_bytes(tmp("nul.csv"), "x\n1\0\n", 5);
    assert_false(csv_load(tmp("nul.csv"), &t, err, sizeof err));
    assert_contains(err, ":2: NUL byte");
    assert_false(csv_load(tmp("none.csv"), &t, err, sizeof err));
    assert_contains(err, "none.csv: No such file");
}

static void test_csv_save(void **state)
{
    char *cols[3] = {"epoch", "energy", "odd, \"name\""};
    double v[6] = {1, 0.1, 3.25, 2, 1.0 / 3, NAN};
    char err[256];
    assert_true(csv_save(tmp("log.csv"), cols, 3, v, 2, err, sizeof err));
    size_t len;
    char *text = read_file(tmp("log.csv"), &len);
    assert_string_equal(text, "epoch,energy,\"odd, \"\"name\"\"\"\n1,0.1,3.25\n2,0.333333333,\n");
    free(text);
    CsvTable t;
    assert_false(csv_load(tmp("log.csv"), &t, err, sizeof err));    /* NaN became an empty cell */
    assert_contains(err, ":3: column 'odd, \"name\"': '' is empty");
    v[5] = 5;
    assert_true(csv_save(tmp("log.csv"), cols, 3, v, 2, err, sizeof err));
    assert_true(csv_load(tmp("log.csv"), &t, err, sizeof err));
    assert_string_equal(t.columns[2], "odd, \"name\"");
    assert_true(t.values[4] == 0.333333333);
    csv_free(&t);
    v[1] = INFINITY;
    assert_false(csv_save(tmp("inf.csv"), cols, 3, v, 2, err, sizeof err));
    assert_contains(err, "row 1, column 'energy': cannot write an infinite value");
    assert_int_equal(access(tmp("inf.csv"), F_OK), -1);
}

static void test_csv_mutations(void **state)
{
    const char *text = "a,\"b\"\"c\",d\r\n1,2.5,-3\n\"4\",5e1, 6 \n";
    size_t n = strlen(text);
    char buf[64], err[256];
    CsvTable t;
    static const char values[] = {'\0', ',', '"', '\n', '\r', 'x', ' ', '9'};
    for (size_t i = 0; i < n; i++)
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(buf, text, n);
            buf[i] = values[v];
            write_bytes(tmp("mut.csv"), buf, n);
            if (csv_load(tmp("mut.csv"), &t, err, sizeof err))
                csv_free(&t);
            write_bytes(tmp("mut.csv"), buf, i);
            if (csv_load(tmp("mut.csv"), &t, err, sizeof err))
                csv_free(&t);
        }
}

/* ---- atomic writes ---- */

static void test_atomic_abort(void **state)
{
    char err[256];
    clear_dir();
    write_bytes(tmp("dest"), "old", 3);
    AtomicFile af;
    assert_true(atomic_open(&af, tmp("dest"), err, sizeof err));
    assert_true(atomic_write(&af, "new contents", 12, err, sizeof err));
    assert_int_equal(count_entries(), 2);             /* dest + temp */
    atomic_abort(&af);
    atomic_abort(&af);                                /* idempotent */
    assert_int_equal(count_entries(), 1);
    size_t len;
    char *text = read_file(tmp("dest"), &len);
    assert_string_equal(text, "old");
    free(text);
    assert_true(atomic_open(&af, tmp("dest"), err, sizeof err));
    assert_true(atomic_write(&af, "new", 3, err, sizeof err));
    assert_true(atomic_commit(&af, err, sizeof err));
    assert_int_equal(count_entries(), 1);
    text = read_file(tmp("dest"), &len);
    assert_string_equal(text, "new");
    free(text);
    assert_false(atomic_open(&af, tmp("no/such/dir/x.csv"), err, sizeof err));
    assert_contains(err, "no/such/dir/x.csv: cannot create a temporary file");
    assert_null(af.f);
}

static void test_atomic_keeps_mode(void **state)
{
    char err[256];
    clear_dir();
    write_bytes(tmp("p.npy"), "x", 1);
    assert_int_equal(chmod(tmp("p.npy"), 0640), 0);
    HostTensor t;
    assert_true(host_tensor_init(&t, "t", DT_F32, 1, (int64_t[]){2}, err, sizeof err));
    assert_true(npy_save(tmp("p.npy"), &t, err, sizeof err));
    struct stat st;
    assert_int_equal(stat(tmp("p.npy"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    host_tensor_free(&t);
}

/* A save that fails midway (file size limit) leaves the old file and no temp. */
static void test_atomic_failed_save(void **state)
{
    char err[256];
    clear_dir();
    write_bytes(tmp("params.safetensors"), "previous", 8);
    pid_t pid = fork();
    if (pid == 0) {
        TensorSet s = {0};
        tensor_set_add(&s, "big", DT_F32, 1, (int64_t[]){1 << 18});
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &lim);
        bool saved = st_save(tmp("params.safetensors"), &s, err, sizeof err);
        bool named = strstr(err, "params.safetensors") && strstr(err, "failed");
        tensor_set_free(&s);
        _exit(!saved && named ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_entries(), 1);
    size_t len;
    char *text = read_file(tmp("params.safetensors"), &len);
    assert_int_equal(len, 8);
    assert_memory_equal(text, "previous", 8);
    free(text);
    if (geteuid() != 0) {       /* root ignores directory permissions */
        assert_int_equal(mkdir(tmp("ro"), 0500), 0);
        TensorSet s = {0};
        assert_false(st_save(tmp("ro/x.safetensors"), &s, err, sizeof err));
        assert_contains(err, "Permission denied");
        chmod(tmp("ro"), 0700);
    }
}

/* ---- NumPy interop (test_tensorio --numpy PYTHON SCRIPT) ---- */

static int run_script(const char *mode, const char *target)
{
    char *argv[] = {(char *)g_python, (char *)g_script, (char *)mode, (char *)target, NULL};
    return run_argv(argv);
}

static void test_numpy_reads_ours(void **state)
{
    TensorSet s = {0};
    char err[256];
    build_reference_set(&s);
    assert_true(st_save(tmp("for_numpy.safetensors"), &s, err, sizeof err));
    tensor_set_free(&s);
    assert_int_equal(run_script("check-st", tmp("for_numpy.safetensors")), 0);
}

static void test_we_read_numpys(void **state)
{
    char err[512];
    TensorSet r;
    assert_int_equal(run_script("write-st", tmp("from_numpy.safetensors")), 0);
    if (!st_load(tmp("from_numpy.safetensors"), &r, err, sizeof err))
        fail_msg("%s", err);
    static const char *names[] = {"u", "a", "i", "h", "bf", "sp ace/\xc3\xbc\xe2\x98\x83\xf0\x9f\x98\x80", "tab\tname"};
    assert_int_equal(r.n_tensors, 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(r.tensors[i].name, names[i]);
    assert_dims(&r.tensors[0], 2, (int64_t[]){2, 2});
    assert_values(&r.tensors[0], (double[]){1, 2, 3, 4}, 4);
    double a[12];
    for (int i = 0; i < 12; i++)
        a[i] = i / 4.0;
    assert_dims(&r.tensors[1], 2, (int64_t[]){3, 4});
    assert_values(&r.tensors[1], a, 12);
    assert_values(&r.tensors[2], (double[]){-1, 2, 3}, 3);
    assert_values(&r.tensors[3], (double[]){0.5, -1.5, ldexp(1, -24)}, 3);
    assert_int_equal(r.tensors[4].dtype, DT_BF16);
    assert_values(&r.tensors[4], (double[]){1, -2, 3.140625}, 3);
    assert_values(&r.tensors[5], (double[]){7}, 1);
    assert_int_equal(r.tensors[6].rank, 0);
    assert_values(&r.tensors[6], (double[]){2.5}, 1);
    assert_int_equal(r.n_meta, 2);
    assert_string_equal(tensor_set_meta_get(&r, "source"), "numpy");
    assert_string_equal(tensor_set_meta_get(&r, "pi"), "3.14");
    tensor_set_free(&r);
}

static void load_npy_ok(const char *name, HostTensor *r)
{
    char err[256];
    if (!npy_load(tmp(name), r, err, sizeof err))
        fail_msg("%s", err);
}

static void test_we_read_numpy_npy(void **state)
{
    char err[256];
    HostTensor r;
    assert_int_equal(run_script("write-npy", g_dir), 0);
    load_npy_ok("f4.npy", &r);
    assert_values(&r, (double[]){-1.5, -0.5, 0.5, 1.5, 2.5, 3.5}, 6);
    host_tensor_free(&r);
    load_npy_ok("f8.npy", &r);
    assert_values(&r, (double[]){0.1, -2.0, 1e-300, 3.0, 4.5}, 5);
    host_tensor_free(&r);
    load_npy_ok("i8.npy", &r);
    assert_int_equal(r.rank, 0);
    assert_values(&r, (double[]){-1099511627776.0}, 1);
    host_tensor_free(&r);
    load_npy_ok("b1.npy", &r);
    assert_int_equal(r.dtype, DT_BOOL);
    assert_values(&r, (double[]){1, 0, 0, 1}, 4);
    host_tensor_free(&r);
    load_npy_ok("u1.npy", &r);
    assert_dims(&r, 3, (int64_t[]){2, 3, 4});
    assert_int_equal(((unsigned char *)r.data)[23], 23);
    host_tensor_free(&r);
    load_npy_ok("i2.npy", &r);
    assert_values(&r, (double[]){-32768, 32767}, 2);
    host_tensor_free(&r);
    load_npy_ok("empty.npy", &r);
    assert_dims(&r, 2, (int64_t[]){0, 3});
    host_tensor_free(&r);
    load_npy_ok("v2.npy", &r);
    assert_values(&r, (double[]){1.5, 2.5}, 2);
    host_tensor_free(&r);
    load_npy_ok("v3.npy", &r);
    assert_values(&r, (double[]){1.5, 2.5}, 2);
    host_tensor_free(&r);
    assert_false(npy_load(tmp("fortran.npy"), &r, err, sizeof err));
    assert_contains(err, "fortran_order True is not supported");
    assert_false(npy_load(tmp("big.npy"), &r, err, sizeof err));
    assert_contains(err, "big-endian dtype '>i4'");
}

static void test_numpy_reads_our_npy(void **state)
{
    char err[256];
    HostTensor t;
    assert_true(host_tensor_init(&t, "", DT_F32, 2, (int64_t[]){2, 3}, err, sizeof err));
    fill_f64(&t, (double[]){-1, -0.5, 0, 0.5, 1, 1.5});
    assert_true(npy_save(tmp("c_f4.npy"), &t, err, sizeof err));
    host_tensor_free(&t);
    assert_true(host_tensor_init(&t, "", DT_I64, 0, NULL, err, sizeof err));
    fill_f64(&t, (double[]){-7});
    assert_true(npy_save(tmp("c_scalar.npy"), &t, err, sizeof err));
    host_tensor_free(&t);
    assert_true(host_tensor_init(&t, "", DT_BOOL, 1, (int64_t[]){3}, err, sizeof err));
    fill_f64(&t, (double[]){1, 0, 1});
    assert_true(npy_save(tmp("c_bool.npy"), &t, err, sizeof err));
    host_tensor_free(&t);
    assert_true(host_tensor_init(&t, "", DT_F64, 2, (int64_t[]){3, 0}, err, sizeof err));
    assert_true(npy_save(tmp("c_empty.npy"), &t, err, sizeof err));
    host_tensor_free(&t);
    assert_int_equal(run_script("check-npy", g_dir), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest main_tests[] = {
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_tensor_set_basics),
        cmocka_unit_test(test_f64_conversion),
        cmocka_unit_test(test_st_roundtrip),
        cmocka_unit_test(test_st_layout),
        cmocka_unit_test(test_st_lenient_reader),
        cmocka_unit_test(test_st_lying_files),
        cmocka_unit_test(test_st_bad_lengths),
        cmocka_unit_test(test_st_save_rejects),
        cmocka_unit_test(test_st_mutations),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_from_numpy_bytes),
        cmocka_unit_test(test_npy_rejects),
        cmocka_unit_test(test_npy_mutations),
        cmocka_unit_test(test_idx_fashion_mnist),
        cmocka_unit_test(test_idx_lying_files),
        cmocka_unit_test(test_idx_corrupt_gzip),
        cmocka_unit_test(test_idx_plain_big_endian),
        cmocka_unit_test(test_csv_load),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_save),
        cmocka_unit_test(test_csv_mutations),
        cmocka_unit_test(test_atomic_abort),
        cmocka_unit_test(test_atomic_keeps_mode),
        cmocka_unit_test(test_atomic_failed_save),
    };
    const struct CMUnitTest numpy_tests[] = {
        cmocka_unit_test(test_numpy_reads_ours),
        cmocka_unit_test(test_we_read_numpys),
        cmocka_unit_test(test_we_read_numpy_npy),
        cmocka_unit_test(test_numpy_reads_our_npy),
    };
    if (argc >= 2 && strcmp(argv[1], "--numpy") == 0) {
        if (argc != 4 || access(argv[2], X_OK) != 0 || access(argv[3], R_OK) != 0) {
            fprintf(stderr, "test_tensorio --numpy needs PYTHON (with numpy) and tests/st_numpy_check.py\n");
            return 1;
        }
        g_python = argv[2];
        g_script = argv[3];
        return cmocka_run_group_tests_name("tensorio_numpy", numpy_tests, group_setup, group_teardown);
    }
    return cmocka_run_group_tests_name("tensorio", main_tests, group_setup, group_teardown);
}
