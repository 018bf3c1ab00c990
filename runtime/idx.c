/* idx.c — IDX files (the MNIST / Fashion-MNIST layout): bytes 0,0, an
 * element-type code and the rank, then rank big-endian u32 dims, then the
 * big-endian payload.  zlib's gzread reads gzip and plain files alike, so
 * ".gz" needs no special case.
 *
 * Invariants: memory grows only with bytes actually decompressed (a lying
 * header cannot make us allocate what the file does not hold); the payload
 * must be exactly the header's size; the result is native-endian. */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_CHUNK ((size_t)1 << 20)

/* IDX element-type code → dtype; false for unknown codes. */
static bool idx_dtype(int code, DType *dt)
{
    switch (code) {
    case 0x08: *dt = DT_U8; return true;
    case 0x09: *dt = DT_I8; return true;
    case 0x0B: *dt = DT_I16; return true;
    case 0x0C: *dt = DT_I32; return true;
    case 0x0D: *dt = DT_F32; return true;
    case 0x0E: *dt = DT_F64; return true;
    default: return false;
    }
}

/* Reads up to n bytes; returns the count, or -1 on a zlib/IO error. */
static int64_t read_some(gzFile g, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        unsigned want = (unsigned)(n - got < (1u << 30) ? n - got : (1u << 30));
        int r = gzread(g, (char *)buf + got, want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* The zlib error text for a failed read. */
static const char *gz_message(gzFile g)
{
    int code;
    const char *msg = gzerror(g, &code);
    return code == Z_ERRNO ? strerror(errno) : msg;
}

/* Why a header read came up short: "gzip error: ..." if zlib reports one, else `plain`. */
static const char *short_read_reason(gzFile g, const char *plain, char *buf, size_t buflen)
{
    int code = Z_OK;
    gzerror(g, &code);
    if (code == Z_OK)
        return plain;
    snprintf(buf, buflen, "gzip error: %s", gz_message(g));
    return buf;
}

/* Reads magic and dims into t (no data); *header_bytes gets the header size. */
static bool read_idx_header(gzFile g, const char *path, HostTensor *t, size_t *header_bytes,
                            char *err, size_t errlen)
{
    unsigned char h[4 + 4 * 255];
    char why[160];
    if (read_some(g, h, 4) != 4) {
        tio_error(err, errlen, "%s: reading the 4-byte IDX magic: %s", path,
                  short_read_reason(g, "file ends early", why, sizeof why));
        return false;
    }
    if (h[0] != 0 || h[1] != 0 || !idx_dtype(h[2], &t->dtype)) {
        tio_error(err, errlen, "%s: byte 0: not an IDX file (magic %02x %02x %02x %02x)", path, h[0], h[1], h[2], h[3]);
        return false;
    }
    int rank = h[3];
    if (rank > TENSOR_MAX_RANK) {
        tio_error(err, errlen, "%s: byte 3: rank %d exceeds %d", path, rank, TENSOR_MAX_RANK);
        return false;
    }
    if (read_some(g, h + 4, 4 * (size_t)rank) != 4 * rank) {
        tio_error(err, errlen, "%s: reading the IDX header (%d dims need %d bytes): %s", path, rank, 4 + 4 * rank,
                  short_read_reason(g, "file ends early", why, sizeof why));
        return false;
    }
    t->rank = rank;
    for (int i = 0; i < rank; i++) {
        const unsigned char *d = h + 4 + 4 * i;
        t->dims[i] = (int64_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
    }
    *header_bytes = 4 + 4 * (size_t)rank;
    return true;
}

/* Decompresses exactly `want` payload bytes into a buffer that grows as data
 * arrives; then insists on end of stream.  Returns the buffer or NULL. */
static void *read_payload(gzFile g, const char *path, const HostTensor *t, size_t header_bytes, size_t want,
                          char *err, size_t errlen)
{
    size_t cap = 0, got = 0;
    char *buf = NULL, shape[200], extra;
    for (;;) {
        size_t next = cap * 2 > IDX_CHUNK ? cap * 2 : IDX_CHUNK;
        cap = next < want ? next : want;
        char *grown = realloc(buf, cap ? cap : 1);
        if (!grown) {
            tio_error(err, errlen, "%s: out of memory reading the IDX payload (%zu bytes)", path, cap);
            break;
        }
        buf = grown;
        size_t ask = cap - got;
        int64_t n = read_some(g, buf + got, ask);
        if (n < 0) {
            tio_error(err, errlen, "%s: gzip error in the IDX payload after %zu bytes: %s", path, got, gz_message(g));
            break;
        }
        got += (size_t)n;
        if (got < want && (size_t)n == ask)
            continue;
        int64_t n_extra = got < want ? 0 : read_some(g, &extra, 1);
        int code = Z_OK;
        gzerror(g, &code);
        if (got < want)
            tio_error(err, errlen, "%s: truncated IDX payload: shape %s of %s needs %zu bytes after the %zu-byte header, found %zu%s%s",
                      path, host_tensor_shape_str(t, shape, sizeof shape), dtype_name(t->dtype), want, header_bytes, got,
                      code != Z_OK ? "; gzip: " : "", code != Z_OK ? gz_message(g) : "");
        else if (n_extra > 0)
            tio_error(err, errlen, "%s: byte %zu: trailing data after the %zu-byte IDX payload of shape %s", path,
                      header_bytes + want, want, host_tensor_shape_str(t, shape, sizeof shape));
        else if (n_extra < 0 || code != Z_OK)
            tio_error(err, errlen, "%s: gzip error at the end of the IDX payload: %s", path, gz_message(g));
        else
            return buf;
        break;
    }
    free(buf);
    return NULL;
}

/* Converts big-endian elements of `size` bytes to native order in place. */
static void swap_to_native(unsigned char *p, size_t nbytes, size_t size)
{
    for (size_t i = 0; size > 1 && i + size <= nbytes; i += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char c = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = c;
        }
}

bool idx_load(const char *path, HostTensor *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        tio_error(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        return false;
    }
    HostTensor t = {0};
    size_t header_bytes = 0, nbytes = 0;
    char why[160];
    bool ok = read_idx_header(g, path, &t, &header_bytes, err, errlen);
    if (ok && !(ok = tio_shape_bytes(t.rank, t.dims, t.dtype, &nbytes, why, sizeof why)))
        tio_error(err, errlen, "%s: %s", path, why);
    void *data = ok ? read_payload(g, path, &t, header_bytes, nbytes, err, errlen) : NULL;
    gzclose(g);
    if (!data)
        return false;
    swap_to_native(data, nbytes, dtype_size(t.dtype));
    *out = t;
    out->name = xstrdup("");
    out->data = data;
    out->nbytes = nbytes;
    return true;
}
