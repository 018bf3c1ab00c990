/* tensorio.c — the pieces every tensor file format shares: the dtype table,
 * HostTensor and TensorSet ownership, checked shape arithmetic, f16/bf16
 * conversion, error formatting and a small growable byte buffer.
 *
 * Invariants: a HostTensor that came out of host_tensor_init (or a loader)
 * has nbytes == numel * dtype_size with numel computed without overflow and
 * nbytes <= TENSORIO_MAX_TENSOR_BYTES; data is non-NULL even when nbytes is 0.
 * Large buffers use malloc/calloc and report failure; small bookkeeping uses
 * the util x* allocators. */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensorio assumes a little-endian host (safetensors/npy payloads are copied as-is)"
#endif

static const struct { const char *name; size_t size; } dtype_table[] = {
    [DT_F32] = {"F32", 4}, [DT_F64] = {"F64", 8},  [DT_I64] = {"I64", 8},
    [DT_I32] = {"I32", 4}, [DT_I16] = {"I16", 2},  [DT_I8] = {"I8", 1},
    [DT_U8] = {"U8", 1},   [DT_BOOL] = {"BOOL", 1}, [DT_F16] = {"F16", 2},
    [DT_BF16] = {"BF16", 2},
};
_Static_assert(sizeof dtype_table / sizeof *dtype_table == N_DTYPES, "dtype_table out of step");

size_t dtype_size(DType t)
{
    return (unsigned)t < N_DTYPES ? dtype_table[t].size : 0;
}

const char *dtype_name(DType t)
{
    return (unsigned)t < N_DTYPES ? dtype_table[t].name : "?";
}

bool dtype_from_name(const char *name, DType *out)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtype_table[i].name, name) == 0) {
            *out = (DType)i;
            return true;
        }
    return false;
}

void tio_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *tio_show_name(const char *name, char buf[TIO_NAME_SHOW])
{
    size_t n = 0;
    name = name ? name : "";
    for (; name[n] && n < TIO_NAME_SHOW - 4; n++)
        buf[n] = (unsigned char)name[n] < 0x20 || name[n] == 0x7F ? '?' : name[n];
    if (name[n]) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- checked shape arithmetic ---- */

bool tio_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return false;
    if (a != 0 && b > INT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* The product of the non-zero dims is checked too, so a zero dim cannot hide
 * a shape whose sub-products overflow (strides would). */
bool tio_shape_bytes(int rank, const int64_t *dims, DType dt, size_t *nbytes, char *why, size_t whylen)
{
    if (rank < 0 || rank > TENSOR_MAX_RANK) {
        tio_error(why, whylen, "rank %d is outside 0..%d", rank, TENSOR_MAX_RANK);
        return false;
    }
    int64_t nonzero = 1;
    bool empty = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) {
            tio_error(why, whylen, "dimension %d is negative (%" PRId64 ")", i, dims[i]);
            return false;
        }
        if (dims[i] == 0)
            empty = true;
        else if (!tio_mul_i64(nonzero, dims[i], &nonzero)) {
            tio_error(why, whylen, "element count overflows at dimension %d (%" PRId64 ")", i, dims[i]);
            return false;
        }
    }
    int64_t bytes;
    if (!tio_mul_i64(nonzero, (int64_t)dtype_size(dt), &bytes) || bytes > TENSORIO_MAX_TENSOR_BYTES) {
        tio_error(why, whylen, "%" PRId64 " elements of %s exceed the %" PRId64 "-byte tensor limit",
                  nonzero, dtype_name(dt), TENSORIO_MAX_TENSOR_BYTES);
        return false;
    }
    *nbytes = empty ? 0 : (size_t)bytes;
    return true;
}

/* ---- HostTensor ---- */

int64_t host_tensor_numel(const HostTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

void host_tensor_free(HostTensor *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->data);
    memset(t, 0, sizeof *t);
}

bool host_tensor_init(HostTensor *t, const char *name, DType dt, int rank, const int64_t *dims,
                      char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    char why[160], shown[TIO_NAME_SHOW];
    size_t nbytes;
    tio_show_name(name, shown);
    if ((unsigned)dt >= N_DTYPES) {
        tio_error(err, errlen, "tensor '%s': invalid dtype %d", shown, (int)dt);
        return false;
    }
    if (!tio_shape_bytes(rank, dims, dt, &nbytes, why, sizeof why)) {
        tio_error(err, errlen, "tensor '%s': %s", shown, why);
        return false;
    }
    void *data = calloc(nbytes ? nbytes : 1, 1);
    if (!data) {
        tio_error(err, errlen, "tensor '%s': out of memory allocating %zu bytes", shown, nbytes);
        return false;
    }
    t->name = xstrdup(name ? name : "");
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->data = data;
    t->nbytes = nbytes;
    return true;
}

char *host_tensor_shape_str(const HostTensor *t, char *buf, size_t buflen)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, buflen, "[");
    for (int i = 0; i < t->rank && n < buflen; i++)
        n += (size_t)snprintf(buf + n, buflen - n, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    if (n < buflen)
        snprintf(buf + n, buflen - n, "]");
    return buf;
}

/* ---- TensorSet ---- */

void tensor_set_free(TensorSet *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_tensors; i++)
        host_tensor_free(&s->tensors[i]);
    for (int i = 0; i < s->n_meta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->tensors);
    free(s->meta_keys);
    free(s->meta_values);
    memset(s, 0, sizeof *s);
}

HostTensor *tensor_set_find(const TensorSet *s, const char *name)
{
    for (int i = 0; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].name, name) == 0)
            return &s->tensors[i];
    return NULL;
}

HostTensor *tensor_set_add(TensorSet *s, const char *name, DType dt, int rank, const int64_t *dims)
{
    if (!name || tensor_set_find(s, name))
        return NULL;
    HostTensor t;
    if (!host_tensor_init(&t, name, dt, rank, dims, NULL, 0))
        return NULL;
    if (s->n_tensors == s->cap_tensors) {
        s->cap_tensors = s->cap_tensors ? 2 * s->cap_tensors : 8;
        s->tensors = xrealloc(s->tensors, (size_t)s->cap_tensors * sizeof *s->tensors);
    }
    s->tensors[s->n_tensors] = t;
    return &s->tensors[s->n_tensors++];
}

bool tensor_set_meta(TensorSet *s, const char *key, const char *value)
{
    if (!key || !value)
        return false;
    for (int i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta_keys[i], key) == 0) {
            free(s->meta_values[i]);
            s->meta_values[i] = xstrdup(value);
            return true;
        }
    size_t n = (size_t)s->n_meta + 1;
    s->meta_keys = xrealloc(s->meta_keys, n * sizeof *s->meta_keys);
    s->meta_values = xrealloc(s->meta_values, n * sizeof *s->meta_values);
    s->meta_keys[s->n_meta] = xstrdup(key);
    s->meta_values[s->n_meta] = xstrdup(value);
    s->n_meta++;
    return true;
}

const char *tensor_set_meta_get(const TensorSet *s, const char *key)
{
    for (int i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta_keys[i], key) == 0)
            return s->meta_values[i];
    return NULL;
}

/* ---- f16 / bf16 ---- */

/* Decodes an IEEE-style binary float with ebits exponent and mbits mantissa bits. */
static double minifloat_to_f64(uint16_t h, int ebits, int mbits)
{
    int bias = (1 << (ebits - 1)) - 1;
    unsigned sign = h >> (ebits + mbits);
    unsigned e = (h >> mbits) & ((1u << ebits) - 1);
    unsigned m = h & ((1u << mbits) - 1);
    double v;
    if (e == 0)
        v = ldexp((double)m, 1 - bias - mbits);
    else if (e == (1u << ebits) - 1)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(m + (1u << mbits)), (int)e - bias - mbits);
    return sign ? -v : v;
}

/* Encodes with round-to-nearest-even; overflow gives infinity, NaN stays NaN. */
static uint16_t f64_to_minifloat(double x, int ebits, int mbits)
{
    int bias = (1 << (ebits - 1)) - 1;
    uint16_t sign = signbit(x) ? (uint16_t)(1u << (ebits + mbits)) : 0;
    uint16_t inf = (uint16_t)(((1u << ebits) - 1) << mbits);
    if (isnan(x))
        return sign | inf | (uint16_t)(1u << (mbits - 1));
    double a = fabs(x);
    if (isinf(a))
        return sign | inf;
    if (a < ldexp(1.0, 1 - bias))    /* subnormal; m == 2^mbits encodes the smallest normal */
        return sign | (uint16_t)rint(ldexp(a, bias - 1 + mbits));
    int e;
    frexp(a, &e);
    int exp = e - 1;
    double m = rint(ldexp(a, mbits - exp));   /* in [2^mbits, 2^(mbits+1)] */
    if (m == ldexp(1.0, mbits + 1)) {
        m = ldexp(1.0, mbits);
        exp++;
    }
    if (exp > bias)
        return sign | inf;
    return sign | (uint16_t)((unsigned)(exp + bias) << mbits) | (uint16_t)(m - ldexp(1.0, mbits));
}

double tio_f16_to_f64(uint16_t h) { return minifloat_to_f64(h, 5, 10); }
double tio_bf16_to_f64(uint16_t b) { return minifloat_to_f64(b, 8, 7); }
uint16_t tio_f64_to_f16(double x) { return f64_to_minifloat(x, 5, 10); }
uint16_t tio_f64_to_bf16(double x) { return f64_to_minifloat(x, 8, 7); }

/* ---- dtype conversion ---- */

/* Element i of p (of dtype dt) as a double. */
static double load_element(const unsigned char *p, DType dt, int64_t i)
{
    p += (size_t)i * dtype_size(dt);
    union { float f; double d; int64_t i64; int32_t i32; int16_t i16; int8_t i8; uint8_t u8; uint16_t u16; } v;
    memcpy(&v, p, dtype_size(dt));
    switch (dt) {
    case DT_F32:  return v.f;
    case DT_F64:  return v.d;
    case DT_I64:  return (double)v.i64;
    case DT_I32:  return v.i32;
    case DT_I16:  return v.i16;
    case DT_I8:   return v.i8;
    case DT_U8:   return v.u8;
    case DT_BOOL: return v.u8 != 0;
    case DT_F16:  return tio_f16_to_f64(v.u16);
    case DT_BF16: return tio_bf16_to_f64(v.u16);
    default:      return NAN;
    }
}

/* False if x is not an integer in [lo, hi). */
static bool integral_in(double x, double lo, double hi)
{
    return x == floor(x) && x >= lo && x < hi;
}

/* Stores x as element i of dtype dt; false if an integer dtype cannot hold it exactly. */
static bool store_element(unsigned char *p, DType dt, int64_t i, double x)
{
    p += (size_t)i * dtype_size(dt);
    union { float f; double d; int64_t i64; int32_t i32; int16_t i16; int8_t i8; uint8_t u8; uint16_t u16; } v;
    switch (dt) {
    case DT_F32:  v.f = (float)x; break;
    case DT_F64:  v.d = x; break;
    case DT_I64:  if (!integral_in(x, -0x1p63, 0x1p63)) return false; v.i64 = (int64_t)x; break;
    case DT_I32:  if (!integral_in(x, -0x1p31, 0x1p31)) return false; v.i32 = (int32_t)x; break;
    case DT_I16:  if (!integral_in(x, -32768, 32768)) return false; v.i16 = (int16_t)x; break;
    case DT_I8:   if (!integral_in(x, -128, 128)) return false; v.i8 = (int8_t)x; break;
    case DT_U8:   if (!integral_in(x, 0, 256)) return false; v.u8 = (uint8_t)x; break;
    case DT_BOOL: if (x != 0 && x != 1) return false; v.u8 = (uint8_t)x; break;
    case DT_F16:  v.u16 = tio_f64_to_f16(x); break;
    case DT_BF16: v.u16 = tio_f64_to_bf16(x); break;
    default:      return false;
    }
    memcpy(p, &v, dtype_size(dt));
    return true;
}

bool tio_check_tensor(const char *path, const HostTensor *t, char *err, size_t errlen)
{
    size_t want;
    char why[160], shown[TIO_NAME_SHOW];
    const char *sep = path ? ": " : "";
    const char *name = tio_show_name(t->name, shown);
    path = path ? path : "";
    if ((unsigned)t->dtype >= N_DTYPES) {
        tio_error(err, errlen, "%s%stensor '%s': invalid dtype %d", path, sep, name, (int)t->dtype);
        return false;
    }
    if (!tio_shape_bytes(t->rank, t->dims, t->dtype, &want, why, sizeof why)) {
        tio_error(err, errlen, "%s%stensor '%s': %s", path, sep, name, why);
        return false;
    }
    if (want != t->nbytes || (!t->data && want)) {
        tio_error(err, errlen, "%s%stensor '%s': holds %zu bytes but its shape needs %zu", path, sep,
                  name, t->data ? t->nbytes : 0, want);
        return false;
    }
    return true;
}

bool host_tensor_to_f64(const HostTensor *t, double *out, char *err, size_t errlen)
{
    if (!tio_check_tensor(NULL, t, err, errlen))
        return false;
    int64_t n = host_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        out[i] = load_element(t->data, t->dtype, i);
    return true;
}

bool host_tensor_from_f64(HostTensor *t, const double *in, char *err, size_t errlen)
{
    if (!tio_check_tensor(NULL, t, err, errlen))
        return false;
    int64_t n = host_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (!store_element(t->data, t->dtype, i, in[i])) {
            char shown[TIO_NAME_SHOW];
            tio_error(err, errlen, "tensor '%s': element %" PRId64 " (%.17g) is not representable as %s",
                      tio_show_name(t->name, shown), i, in[i], dtype_name(t->dtype));
            return false;
        }
    return true;
}

/* ---- TioBuf ---- */

void tio_buf_append(TioBuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tio_buf_printf(TioBuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        tio_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tio_buf_append(b, big, (size_t)n);
    free(big);
}

void tio_buf_free(TioBuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
