/* npy.c — NumPy .npy files: "\x93NUMPY", version (1.0, 2.0 or 3.0), header
 * length (u16 for 1.0, u32 after), then a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
 * spaces and '\n', then the raw C-order payload.
 *
 * The header parser accepts exactly that dict (keys in any order, each once,
 * no others) and rejects everything it cannot honour: Fortran order,
 * big-endian or structured dtypes, dtypes outside our table, and payloads
 * whose length is not exactly the shape's byte size. */
#define _POSIX_C_SOURCE 200809L    /* fileno, fsync, O_CLOEXEC, clock_gettime */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER (1u << 20)

static const struct { const char *code; DType dtype; } npy_codes[] = {
    {"f4", DT_F32}, {"f8", DT_F64}, {"i8", DT_I64}, {"i4", DT_I32}, {"i2", DT_I16},
    {"f2", DT_F16}, {"i1", DT_I8},  {"u1", DT_U8},  {"b1", DT_BOOL},
};

/* Cursor over the header dict; `base` is the file offset of text[0]. */
typedef struct NpyParser {
    const char *text; size_t len, pos, base;
    const char *path;
    char *err; size_t errlen;
} NpyParser;

static bool npy_fail(NpyParser *p, const char *msg)
{
    tio_error(p->err, p->errlen, "%s: byte %zu: %s", p->path, p->base + p->pos, msg);
    return false;
}

static void skip_space(NpyParser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->text[p->pos]) && p->text[p->pos])
        p->pos++;
}

/* Skips spaces and consumes c if it is next. */
static bool accept(NpyParser *p, char c)
{
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

/* A '...' or "..." literal without escapes, copied into buf. */
static bool parse_quoted(NpyParser *p, char *buf, size_t buflen)
{
    skip_space(p);
    if (p->pos >= p->len || (p->text[p->pos] != '\'' && p->text[p->pos] != '"'))
        return npy_fail(p, "expected a quoted string");
    char q = p->text[p->pos++];
    const char *close = memchr(p->text + p->pos, q, p->len - p->pos);
    if (!close)
        return npy_fail(p, "unterminated string");
    size_t n = (size_t)(close - (p->text + p->pos));
    if (n >= buflen || memchr(p->text + p->pos, '\\', n))
        return npy_fail(p, "unsupported string in header");
    memcpy(buf, p->text + p->pos, n);
    buf[n] = '\0';
    p->pos += n + 1;
    return true;
}

/* 'descr': a byte-order char and one of our type codes. */
static bool parse_descr(NpyParser *p, DType *dt)
{
    char s[32], msg[96];
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == '[')
        return npy_fail(p, "structured dtypes are not supported");
    if (!parse_quoted(p, s, sizeof s))
        return false;
    for (size_t i = 0; i < sizeof npy_codes / sizeof *npy_codes; i++) {
        if (strlen(s) != 3 || strcmp(s + 1, npy_codes[i].code) != 0)
            continue;
        bool one_byte = dtype_size(npy_codes[i].dtype) == 1;
        if (s[0] == '>' && !one_byte) {
            snprintf(msg, sizeof msg, "big-endian dtype '%s' is not supported", s);
            return npy_fail(p, msg);
        }
        if (s[0] == '<' || s[0] == '=' || (one_byte && (s[0] == '|' || s[0] == '>'))) {
            *dt = npy_codes[i].dtype;
            return true;
        }
    }
    snprintf(msg, sizeof msg, "unsupported dtype '%s'", s);
    return npy_fail(p, msg);
}

/* 'fortran_order': True | False. */
static bool parse_bool(NpyParser *p, bool *out)
{
    skip_space(p);
    const char *t = p->text + p->pos;
    size_t left = p->len - p->pos;
    if (left >= 4 && memcmp(t, "True", 4) == 0) { *out = true; p->pos += 4; return true; }
    if (left >= 5 && memcmp(t, "False", 5) == 0) { *out = false; p->pos += 5; return true; }
    return npy_fail(p, "expected True or False");
}

/* One non-negative dimension (an old 'L' suffix is tolerated). */
static bool parse_dim(NpyParser *p, int64_t *out)
{
    skip_space(p);
    int64_t v = 0;
    size_t start = p->pos;
    while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
        int d = p->text[p->pos] - '0';
        if (v > (INT64_MAX - d) / 10)
            return npy_fail(p, "dimension out of range");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos == start)
        return npy_fail(p, "expected a non-negative integer dimension");
    if (p->pos < p->len && p->text[p->pos] == 'L')
        p->pos++;
    *out = v;
    return true;
}

/* 'shape': () | (d,) | (d0, d1, ...) with an optional trailing comma. */
static bool parse_shape(NpyParser *p, HostTensor *t)
{
    if (!accept(p, '('))
        return npy_fail(p, "expected '(' for the shape");
    t->rank = 0;
    while (!accept(p, ')')) {
        if (t->rank == TENSOR_MAX_RANK)
            return npy_fail(p, "rank exceeds 8");
        if (!parse_dim(p, &t->dims[t->rank]))
            return false;
        t->rank++;
        if (!accept(p, ',')) {
            if (!accept(p, ')'))
                return npy_fail(p, "expected ',' or ')' in the shape");
            break;
        }
    }
    return true;
}

/* The header dict; fills dtype and shape of t. */
static bool parse_dict(NpyParser *p, HostTensor *t)
{
    bool seen[3] = {false, false, false}, fortran = false;
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    if (!accept(p, '{'))
        return npy_fail(p, "expected '{' to open the header dict");
    while (!accept(p, '}')) {
        char key[32];
        int k = 0;
        if (!parse_quoted(p, key, sizeof key))
            return false;
        while (k < 3 && strcmp(key, keys[k]) != 0)
            k++;
        if (k == 3 || seen[k])
            return npy_fail(p, k == 3 ? "unexpected key in header dict" : "duplicate key in header dict");
        seen[k] = true;
        if (!accept(p, ':'))
            return npy_fail(p, "expected ':'");
        bool ok = k == 0 ? parse_descr(p, &t->dtype) : k == 1 ? parse_bool(p, &fortran) : parse_shape(p, t);
        if (!ok)
            return false;
        if (fortran)
            return npy_fail(p, "fortran_order True is not supported (save a C-contiguous array)");
        if (!accept(p, ',') && !accept(p, '}'))
            return npy_fail(p, "expected ',' or '}'");
        else if (p->text[p->pos - 1] == '}')
            break;
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k]) {
            char msg[64];
            snprintf(msg, sizeof msg, "header dict lacks '%s'", keys[k]);
            return npy_fail(p, msg);
        }
    skip_space(p);
    if (p->pos < p->len)
        return npy_fail(p, "trailing characters after the header dict");
    return true;
}

/* Reads the magic, version and header; *data_at is the payload's file offset. */
static bool read_preamble(FILE *f, const char *path, HostTensor *t, int64_t *data_at, char *err, size_t errlen)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        tio_error(err, errlen, "%s: byte 0: not a .npy file (bad magic)", path);
        return false;
    }
    int major = pre[6];
    if (major < 1 || major > 3) {
        tio_error(err, errlen, "%s: byte 6: unsupported .npy format version %d.%d", path, major, pre[7]);
        return false;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8, at = 10;
    if (major >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            tio_error(err, errlen, "%s: byte 10: file ends inside the header length", path);
            return false;
        }
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        at = 12;
    }
    if (hlen > NPY_MAX_HEADER) {
        tio_error(err, errlen, "%s: byte 8: header length %zu exceeds %u", path, hlen, NPY_MAX_HEADER);
        return false;
    }
    char *text = xmalloc(hlen + 1);
    bool ok = fread(text, 1, hlen, f) == hlen;
    if (!ok)
        tio_error(err, errlen, "%s: byte %zu: file ends inside the %zu-byte header", path, at, hlen);
    NpyParser p = {.text = text, .len = hlen, .base = at, .path = path, .err = err, .errlen = errlen};
    ok = ok && parse_dict(&p, t);
    free(text);
    *data_at = (int64_t)(at + hlen);
    return ok;
}

bool npy_load(const char *path, HostTensor *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        tio_error(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    HostTensor shape = {0};
    int64_t data_at = 0;
    char why[160];
    size_t nbytes = 0;
    bool ok = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    if (!ok)
        tio_error(err, errlen, "%s: not a regular file", path);
    ok = ok && read_preamble(f, path, &shape, &data_at, err, errlen);
    if (ok && !(ok = tio_shape_bytes(shape.rank, shape.dims, shape.dtype, &nbytes, why, sizeof why)))
        tio_error(err, errlen, "%s: %s", path, why);
    if (ok && (int64_t)st.st_size - data_at != (int64_t)nbytes) {
        tio_error(err, errlen, "%s: byte %" PRId64 ": shape needs %zu payload bytes of %s but the file has %" PRId64,
                  path, data_at, nbytes, dtype_name(shape.dtype), (int64_t)st.st_size - data_at);
        ok = false;
    }
    ok = ok && host_tensor_init(out, "", shape.dtype, shape.rank, shape.dims, err, errlen);
    if (ok && fread(out->data, 1, nbytes, f) != nbytes) {
        tio_error(err, errlen, "%s: unexpected end of file in the payload", path);
        ok = false;
    }
    if (!ok)
        host_tensor_free(out);
    fclose(f);
    return ok;
}

/* The numpy descr for dt, or NULL (bf16 has none). */
static const char *npy_descr(DType dt)
{
    switch (dt) {
    case DT_F32: return "<f4";
    case DT_F64: return "<f8";
    case DT_I64: return "<i8";
    case DT_I32: return "<i4";
    case DT_I16: return "<i2";
    case DT_F16: return "<f2";
    case DT_I8: return "|i1";
    case DT_U8: return "|u1";
    case DT_BOOL: return "|b1";
    default: return NULL;
    }
}

/* Builds a version 1.0 preamble + dict + padding so the payload starts on a
 * 64-byte boundary (rank <= 8 keeps the dict far below 1.0's 64 KiB limit). */
static void build_npy_header(const HostTensor *t, TioBuf *b)
{
    TioBuf dict = {0};
    tio_buf_printf(&dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", npy_descr(t->dtype));
    for (int i = 0; i < t->rank; i++)
        tio_buf_printf(&dict, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    tio_buf_printf(&dict, "%s), }", t->rank == 1 ? "," : "");
    size_t total = (10 + dict.len + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                               (unsigned char)(hlen & 0xFF), (unsigned char)(hlen >> 8)};
    tio_buf_append(b, magic, sizeof magic);
    tio_buf_append(b, dict.data, dict.len);
    while (b->len < total - 1)
        tio_buf_append(b, " ", 1);
    tio_buf_append(b, "\n", 1);
    tio_buf_free(&dict);
}

bool npy_save(const char *path, const HostTensor *t, char *err, size_t errlen)
{
    if (!tio_check_tensor(path, t, err, errlen))
        return false;
    if (!npy_descr(t->dtype)) {
        tio_error(err, errlen, "%s: dtype %s has no NumPy equivalent", path, dtype_name(t->dtype));
        return false;
    }
    TioBuf header = {0};
    AtomicFile af;
    build_npy_header(t, &header);
    bool ok = atomic_open(&af, path, err, errlen);
    if (ok) {
        ok = atomic_write(&af, header.data, header.len, err, errlen)
             && atomic_write(&af, t->data, t->nbytes, err, errlen);
        ok = ok ? atomic_commit(&af, err, errlen) : (atomic_abort(&af), false);
    }
    tio_buf_free(&header);
    return ok;
}
