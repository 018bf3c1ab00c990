/* safetensors.c — read and write the safetensors format (params, batches,
 * dumps).  Layout: u64 little-endian N, N bytes of UTF-8 JSON mapping names to
 * {"dtype", "shape", "data_offsets": [begin, end)} plus an optional
 * "__metadata__" string map, then the data section (offsets relative to it).
 *
 * The loader trusts nothing: it parses the header with json.c, checks each
 * entry against the data-section size before allocating, and, like the
 * reference implementation, requires tensors to tile the data section exactly
 * (no gaps, overlaps or trailing bytes).  Tensors come back in data order,
 * which is the insertion order for files st_save wrote. */
#define _POSIX_C_SOURCE 200809L    /* fileno, fsync, O_CLOEXEC, clock_gettime */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One header entry before its data is read. */
typedef struct StEntry {
    char *name;
    DType dtype;
    int rank;
    int64_t dims[TENSOR_MAX_RANK];
    int64_t begin, end;
    size_t at;            /* position (in the header text) of the entry's key, for messages */
} StEntry;

typedef struct StHeader {
    JsonReader r;
    int64_t data_bytes;   /* size of the data section */
    StEntry *entries; int n_entries, cap_entries;
    char **meta_keys; char **meta_values; size_t *meta_at; int n_meta, cap_meta;
    bool seen_metadata;
} StHeader;

/* A name paired with its header position, for duplicate detection by sorting. */
typedef struct NamedAt { const char *name; size_t at; } NamedAt;

static void free_header(StHeader *h)
{
    for (int i = 0; i < h->n_entries; i++)
        free(h->entries[i].name);
    for (int i = 0; i < h->n_meta; i++) {
        free(h->meta_keys[i]);
        free(h->meta_values[i]);
    }
    free(h->entries);
    free(h->meta_keys);
    free(h->meta_values);
    free(h->meta_at);
}

/* Fails at header position `at` instead of the cursor. */
static bool fail_at(JsonReader *r, size_t at, const char *msg)
{
    r->pos = at;
    return json_fail(r, "%s", msg);
}

/* "shape": [d0, d1, ...] — at most 8 non-negative integers. */
static bool parse_shape(JsonReader *r, StEntry *e, const char *shown)
{
    bool first = true;
    int more;
    if (!json_array_begin(r))
        return false;
    while ((more = json_array_next(r, &first)) == 1) {
        int64_t d;
        size_t at = r->pos;
        if (!json_read_int(r, &d))
            return false;
        if (e->rank == TENSOR_MAX_RANK) {
            r->pos = at;
            return json_fail(r, "tensor '%s': rank exceeds %d", shown, TENSOR_MAX_RANK);
        }
        if (d < 0) {
            r->pos = at;
            return json_fail(r, "tensor '%s': negative dimension %" PRId64, shown, d);
        }
        e->dims[e->rank++] = d;
    }
    return more == 0;
}

/* "data_offsets": [begin, end] with 0 <= begin <= end. */
static bool parse_offsets(JsonReader *r, StEntry *e, const char *shown)
{
    int64_t v[2];
    size_t at = r->pos;
    bool ok = json_array_begin(r) && json_read_int(r, &v[0]) && json_expect(r, ',', "',' in data_offsets")
              && json_read_int(r, &v[1]) && json_expect(r, ']', "']' after two data_offsets");
    if (!ok)
        return false;
    r->depth--;
    if (v[0] < 0 || v[1] < v[0]) {
        r->pos = at;
        return json_fail(r, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64 ") are not an interval",
                         shown, v[0], v[1]);
    }
    e->begin = v[0];
    e->end = v[1];
    return true;
}

/* "dtype": "F32" — one of ours. */
static bool parse_dtype(JsonReader *r, StEntry *e, const char *shown)
{
    size_t at = r->pos;
    char *s;
    if (!json_read_string(r, &s))
        return false;
    bool ok = dtype_from_name(s, &e->dtype);
    if (!ok) {
        char bad[TIO_NAME_SHOW];
        r->pos = at;
        json_fail(r, "tensor '%s': unknown or unsupported dtype '%s'", shown, tio_show_name(s, bad));
    }
    free(s);
    return ok;
}

/* Checks a parsed entry's size against its offsets and the data section. */
static bool check_entry(StHeader *h, const StEntry *e, const char *shown)
{
    char why[160], msg[400];
    size_t nbytes;
    if (!tio_shape_bytes(e->rank, e->dims, e->dtype, &nbytes, why, sizeof why)) {
        snprintf(msg, sizeof msg, "tensor '%s': %s", shown, why);
        return fail_at(&h->r, e->at, msg);
    }
    if (e->end > h->data_bytes) {
        snprintf(msg, sizeof msg, "tensor '%s': data offsets [%" PRId64 ", %" PRId64 ") exceed the data section (%" PRId64 " bytes)",
                 shown, e->begin, e->end, h->data_bytes);
        return fail_at(&h->r, e->at, msg);
    }
    if ((int64_t)nbytes != e->end - e->begin) {
        HostTensor t = {.rank = e->rank};
        memcpy(t.dims, e->dims, sizeof t.dims);
        char shape[200];
        snprintf(msg, sizeof msg, "tensor '%s': shape %s of %s needs %zu bytes but data offsets [%" PRId64 ", %" PRId64 ") hold %" PRId64,
                 shown, host_tensor_shape_str(&t, shape, sizeof shape), dtype_name(e->dtype), nbytes,
                 e->begin, e->end, e->end - e->begin);
        return fail_at(&h->r, e->at, msg);
    }
    return true;
}

/* json_object_next that also reports the position where the key starts. */
static int next_key(JsonReader *r, bool *first, char **key, size_t *at)
{
    size_t p = r->pos;
    int more = json_object_next(r, first, key);
    while (p < r->len && r->text[p] != '"')
        p++;
    *at = p;
    return more;
}

/* NAME: {"dtype": .., "shape": .., "data_offsets": ..}; unknown keys are skipped.
 * Takes ownership of name. */
static bool parse_tensor(StHeader *h, char *name, size_t at)
{
    JsonReader *r = &h->r;
    if (h->n_entries == h->cap_entries) {
        h->cap_entries = h->cap_entries ? 2 * h->cap_entries : 16;
        h->entries = xrealloc(h->entries, (size_t)h->cap_entries * sizeof *h->entries);
    }
    StEntry *e = &h->entries[h->n_entries++];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->at = at;
    char shown[TIO_NAME_SHOW];
    tio_show_name(name, shown);
    bool seen[3] = {false, false, false}, first = true;
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    char *key;
    int more;
    if (!json_peek(r, '{'))
        return json_fail(r, "tensor '%s': expected an object {\"dtype\", \"shape\", \"data_offsets\"}", shown);
    if (!json_object_begin(r))
        return false;
    while ((more = json_object_next(r, &first, &key)) == 1) {
        int f = 0;
        while (f < 3 && strcmp(key, fields[f]) != 0)
            f++;
        free(key);
        if (f < 3 && seen[f])
            return json_fail(r, "tensor '%s': duplicate \"%s\"", shown, fields[f]);
        bool ok = f == 0 ? parse_dtype(r, e, shown) : f == 1 ? parse_shape(r, e, shown)
                : f == 2 ? parse_offsets(r, e, shown) : json_skip_value(r);
        if (!ok)
            return false;
        if (f < 3)
            seen[f] = true;
    }
    if (more < 0)
        return false;
    for (int f = 0; f < 3; f++)
        if (!seen[f]) {
            char msg[200];
            snprintf(msg, sizeof msg, "tensor '%s': missing \"%s\"", shown, fields[f]);
            return fail_at(r, at, msg);
        }
    return check_entry(h, e, shown);
}

/* "__metadata__": {"key": "value", ...} or null. */
static bool parse_metadata(StHeader *h, size_t at)
{
    JsonReader *r = &h->r;
    if (h->seen_metadata)
        return fail_at(r, at, "duplicate \"__metadata__\"");
    h->seen_metadata = true;
    if (json_peek(r, 'n'))
        return json_skip_value(r);
    bool first = true;
    char *key;
    int more;
    size_t key_at;
    if (!json_object_begin(r))
        return false;
    while ((more = next_key(r, &first, &key, &key_at)) == 1) {
        if (h->n_meta == h->cap_meta) {
            h->cap_meta = h->cap_meta ? 2 * h->cap_meta : 8;
            h->meta_keys = xrealloc(h->meta_keys, (size_t)h->cap_meta * sizeof *h->meta_keys);
            h->meta_values = xrealloc(h->meta_values, (size_t)h->cap_meta * sizeof *h->meta_values);
            h->meta_at = xrealloc(h->meta_at, (size_t)h->cap_meta * sizeof *h->meta_at);
        }
        int i = h->n_meta++;
        h->meta_keys[i] = key;
        h->meta_values[i] = NULL;
        h->meta_at[i] = key_at;
        if (!json_peek(r, '"')) {
            char shown[TIO_NAME_SHOW];
            return json_fail(r, "metadata value for '%s' must be a string", tio_show_name(key, shown));
        }
        if (!json_read_string(r, &h->meta_values[i]))
            return false;
    }
    return more == 0;
}

/* The whole header: one object, then only whitespace. */
static bool parse_header(StHeader *h)
{
    JsonReader *r = &h->r;
    bool first = true;
    char *key;
    int more;
    if (!json_check_utf8(r) || !json_object_begin(r))
        return false;
    size_t at;
    while ((more = next_key(r, &first, &key, &at)) == 1) {
        bool ok;
        if (strcmp(key, "__metadata__") == 0) {
            free(key);
            ok = parse_metadata(h, at);
        } else {
            ok = parse_tensor(h, key, at);
        }
        if (!ok)
            return false;
    }
    if (more < 0)
        return false;
    (void)json_peek(r, '}');    /* only to skip the trailing whitespace (padding) */
    if (r->pos < r->len)
        return json_fail(r, "trailing characters after the header object");
    return true;
}

static int cmp_named(const void *a, const void *b)
{
    const NamedAt *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Rejects the first repeated name (reported at its second occurrence). */
static bool check_unique(JsonReader *r, NamedAt *items, int n, const char *what)
{
    qsort(items, (size_t)n, sizeof *items, cmp_named);
    for (int i = 1; i < n; i++)
        if (strcmp(items[i - 1].name, items[i].name) == 0) {
            char shown[TIO_NAME_SHOW], msg[200];
            snprintf(msg, sizeof msg, "duplicate %s '%s'", what, tio_show_name(items[i].name, shown));
            return fail_at(r, items[i].at, msg);
        }
    return true;
}

static bool check_all_unique(StHeader *h)
{
    int n = h->n_entries > h->n_meta ? h->n_entries : h->n_meta;
    NamedAt *items = xmalloc((size_t)(n ? n : 1) * sizeof *items);
    for (int i = 0; i < h->n_entries; i++)
        items[i] = (NamedAt){h->entries[i].name, h->entries[i].at};
    bool ok = check_unique(&h->r, items, h->n_entries, "tensor name");
    for (int i = 0; ok && i < h->n_meta; i++)
        items[i] = (NamedAt){h->meta_keys[i], h->meta_at[i]};
    ok = ok && check_unique(&h->r, items, h->n_meta, "metadata key");
    free(items);
    return ok;
}

static int cmp_offsets(const void *a, const void *b)
{
    const StEntry *x = a, *y = b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    if (x->end != y->end)
        return (x->end > y->end) - (x->end < y->end);
    return (x->at > y->at) - (x->at < y->at);
}

/* Sorts entries by offset and requires them to tile [0, data_bytes). */
static bool check_tiling(StHeader *h)
{
    if (h->n_entries > 1)
        qsort(h->entries, (size_t)h->n_entries, sizeof *h->entries, cmp_offsets);
    int64_t expect = 0;
    char shown[TIO_NAME_SHOW], msg[300];
    for (int i = 0; i < h->n_entries; i++) {
        const StEntry *e = &h->entries[i];
        if (e->begin != expect) {
            snprintf(msg, sizeof msg, "tensor '%s': data offsets [%" PRId64 ", %" PRId64 ") %s byte %" PRId64
                     " where the previous tensor ends", tio_show_name(e->name, shown), e->begin, e->end,
                     e->begin < expect ? "overlap data before" : "leave a gap after", expect);
            return fail_at(&h->r, e->at, msg);
        }
        expect = e->end;
    }
    if (expect != h->data_bytes) {
        snprintf(msg, sizeof msg, "tensors cover %" PRId64 " bytes of a %" PRId64 "-byte data section",
                 expect, h->data_bytes);
        return fail_at(&h->r, h->r.len, msg);
    }
    return true;
}

/* Reads the 8-byte length and the JSON text; sets *header and h->data_bytes. */
static bool read_header_text(FILE *f, const char *path, StHeader *h, char **header, char *err, size_t errlen)
{
    struct stat st;
    unsigned char len8[8];
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        tio_error(err, errlen, "%s: not a regular file", path);
        return false;
    }
    int64_t size = (int64_t)st.st_size;
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        tio_error(err, errlen, "%s: file is %" PRId64 " bytes, too short for the 8-byte header length", path, size);
        return false;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > TENSORIO_MAX_ST_HEADER || n > (uint64_t)(size - 8)) {
        tio_error(err, errlen, "%s: byte 0: header length %" PRIu64 " exceeds %s (%" PRId64 " bytes)", path, n,
                  n > TENSORIO_MAX_ST_HEADER ? "the 100 MB limit" : "the rest of the file", size - 8);
        return false;
    }
    if (n == 0) {
        tio_error(err, errlen, "%s: byte 0: header length is 0", path);
        return false;
    }
    *header = malloc(n + 1);
    if (!*header || fread(*header, 1, n, f) != n) {
        tio_error(err, errlen, "%s: %s reading the %" PRIu64 "-byte header", path,
                  *header ? "unexpected end of file" : "out of memory", n);
        return false;
    }
    (*header)[n] = '\0';
    h->r = (JsonReader){.text = *header, .len = n, .base = 8, .path = path, .err = err, .errlen = errlen};
    h->data_bytes = size - 8 - (int64_t)n;
    return true;
}

/* Moves the validated entries into out, reading each tensor's bytes in order. */
static bool read_tensors(FILE *f, const char *path, StHeader *h, TensorSet *out, char *err, size_t errlen)
{
    out->tensors = xcalloc((size_t)(h->n_entries ? h->n_entries : 1), sizeof *out->tensors);
    out->cap_tensors = h->n_entries ? h->n_entries : 1;
    for (int i = 0; i < h->n_entries; i++) {
        StEntry *e = &h->entries[i];
        HostTensor *t = &out->tensors[out->n_tensors++];
        size_t nbytes = (size_t)(e->end - e->begin);
        *t = (HostTensor){.name = e->name, .dtype = e->dtype, .rank = e->rank, .nbytes = nbytes};
        e->name = NULL;
        memcpy(t->dims, e->dims, sizeof t->dims);
        char shown[TIO_NAME_SHOW];
        t->data = malloc(nbytes ? nbytes : 1);
        if (!t->data || fread(t->data, 1, nbytes, f) != nbytes) {
            tio_error(err, errlen, "%s: tensor '%s': %s reading %zu bytes at byte %" PRId64, path,
                      tio_show_name(t->name, shown), t->data ? "unexpected end of file" : "out of memory",
                      nbytes, 8 + (int64_t)h->r.len + e->begin);
            return false;
        }
    }
    return true;
}

/* Moves the metadata into out in file order. */
static void take_metadata(StHeader *h, TensorSet *out)
{
    out->meta_keys = h->meta_keys;
    out->meta_values = h->meta_values;
    out->n_meta = h->n_meta;
    h->meta_keys = h->meta_values = NULL;
    h->n_meta = 0;
}

bool st_load(const char *path, TensorSet *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        tio_error(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    StHeader h = {0};
    char *header = NULL;
    bool ok = read_header_text(f, path, &h, &header, err, errlen) && parse_header(&h)
              && check_all_unique(&h) && check_tiling(&h) && read_tensors(f, path, &h, out, err, errlen);
    if (ok)
        take_metadata(&h, out);
    else
        tensor_set_free(out);
    free_header(&h);
    free(header);
    fclose(f);
    return ok;
}

/* ---- writer ---- */

/* Validates names (UTF-8, non-empty, not "__metadata__", unique) and sizes. */
static bool check_for_save(const char *path, const TensorSet *s, char *err, size_t errlen)
{
    char shown[TIO_NAME_SHOW];
    for (int i = 0; i < s->n_tensors; i++) {
        const HostTensor *t = &s->tensors[i];
        if (!tio_check_tensor(path, t, err, errlen))
            return false;
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
            tio_error(err, errlen, "%s: tensor %d has an invalid name '%s'", path, i, tio_show_name(t->name, shown));
            return false;
        }
    }
    NamedAt *items = xmalloc((size_t)(s->n_tensors ? s->n_tensors : 1) * sizeof *items);
    for (int i = 0; i < s->n_tensors; i++)
        items[i] = (NamedAt){s->tensors[i].name, (size_t)i};
    qsort(items, (size_t)s->n_tensors, sizeof *items, cmp_named);
    bool ok = true;
    for (int i = 1; ok && i < s->n_tensors; i++)
        if (strcmp(items[i - 1].name, items[i].name) == 0) {
            tio_error(err, errlen, "%s: duplicate tensor name '%s'", path, tio_show_name(items[i].name, shown));
            ok = false;
        }
    free(items);
    return ok;
}

/* Appends "KEY": as JSON; false if key is not valid UTF-8. */
static bool put_key(TioBuf *b, const char *key)
{
    if (!json_write_string(b, key))
        return false;
    tio_buf_append(b, ":", 1);
    return true;
}

/* Builds the JSON header, padded with spaces to a multiple of 8 bytes. */
static bool build_header(const char *path, const TensorSet *s, TioBuf *b, char *err, size_t errlen)
{
    tio_buf_append(b, "{", 1);
    if (s->n_meta > 0) {
        tio_buf_printf(b, "\"__metadata__\":{");
        for (int i = 0; i < s->n_meta; i++) {
            if (i)
                tio_buf_append(b, ",", 1);
            if (!put_key(b, s->meta_keys[i]) || !json_write_string(b, s->meta_values[i])) {
                tio_error(err, errlen, "%s: metadata entry %d is not valid UTF-8", path, i);
                return false;
            }
        }
        tio_buf_append(b, "}", 1);
    }
    int64_t offset = 0;
    for (int i = 0; i < s->n_tensors; i++) {
        const HostTensor *t = &s->tensors[i];
        if (i || s->n_meta > 0)
            tio_buf_append(b, ",", 1);
        if (!put_key(b, t->name)) {
            tio_error(err, errlen, "%s: tensor %d's name is not valid UTF-8", path, i);
            return false;
        }
        tio_buf_printf(b, "{\"dtype\":\"%s\",\"shape\":[", dtype_name(t->dtype));
        for (int d = 0; d < t->rank; d++)
            tio_buf_printf(b, "%s%" PRId64, d ? "," : "", t->dims[d]);
        tio_buf_printf(b, "],\"data_offsets\":[%" PRId64 ",%" PRId64 "]}", offset, offset + (int64_t)t->nbytes);
        offset += (int64_t)t->nbytes;
    }
    tio_buf_append(b, "}", 1);
    while (b->len % 8)
        tio_buf_append(b, " ", 1);
    if (b->len > TENSORIO_MAX_ST_HEADER) {
        tio_error(err, errlen, "%s: header of %zu bytes exceeds the 100 MB limit", path, b->len);
        return false;
    }
    return true;
}

/* Writes length, header and data through af. */
static bool write_all(AtomicFile *af, const TensorSet *s, const TioBuf *header, char *err, size_t errlen)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    if (!atomic_write(af, len8, 8, err, errlen) || !atomic_write(af, header->data, header->len, err, errlen))
        return false;
    for (int i = 0; i < s->n_tensors; i++)
        if (!atomic_write(af, s->tensors[i].data, s->tensors[i].nbytes, err, errlen))
            return false;
    return true;
}

bool st_save(const char *path, const TensorSet *s, char *err, size_t errlen)
{
    TioBuf header = {0};
    AtomicFile af;
    bool ok = check_for_save(path, s, err, errlen) && build_header(path, s, &header, err, errlen)
              && atomic_open(&af, path, err, errlen);
    if (ok) {
        ok = write_all(&af, s, &header, err, errlen);
        ok = ok ? atomic_commit(&af, err, errlen) : (atomic_abort(&af), false);
    }
    tio_buf_free(&header);
    return ok;
}
