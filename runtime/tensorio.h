/* tensorio.h — host tensors and the file formats the runtime reads and writes:
 * safetensors (params, batches, dumps), NPY, IDX (MNIST-style data, gz or
 * plain), CSV tables, and the atomic temp+fsync+rename writer they all share.
 *
 * Ownership: a HostTensor owns its name and data (malloc'd); a TensorSet owns
 * its tensors and metadata strings.  Free with host_tensor_free/tensor_set_free;
 * both accept zeroed structs and leave them zeroed, so "all zero" means empty.
 * Errors: every fallible call returns false and writes one line (no trailing
 * newline) into err[errlen] naming the file and, for format errors, the byte
 * offset and tensor.  Nothing here exits or aborts on bad input; hostile
 * files are rejected with a message.  Data is native little-endian. */
#ifndef FEP_TENSORIO_H
#define FEP_TENSORIO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TENSOR_MAX_RANK 8
/* Sanity limits; larger inputs are rejected with a clear error. */
#define TENSORIO_MAX_TENSOR_BYTES ((int64_t)1 << 38)   /* 256 GiB per tensor */
#define TENSORIO_MAX_ST_HEADER    (100u * 1000 * 1000) /* safetensors JSON header */
#define TENSORIO_MAX_CSV_BYTES    ((size_t)1 << 30)    /* 1 GiB CSV text */
#define TENSORIO_MAX_JSON_DEPTH   64

/* ---- tensorio.c: dtypes, HostTensor, TensorSet, shared helpers ---- */
typedef enum { DT_F32, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_F16, DT_BF16,
               N_DTYPES } DType;

/* Bytes per element (1..8). */
size_t dtype_size(DType t);
/* The safetensors spelling: "F32", "F64", "I64", "I32", "I16", "I8", "U8",
 * "BOOL", "F16", "BF16"; "?" for an out-of-range value. */
const char *dtype_name(DType t);
/* Inverse of dtype_name (exact match); false if the name is not one of ours. */
bool dtype_from_name(const char *name, DType *out);

typedef struct HostTensor {
    char *name;        /* owned */
    DType dtype;
    int rank;          /* 0..8 */
    int64_t dims[TENSOR_MAX_RANK];
    void *data;        /* owned, malloc'd, row-major, native little-endian */
    size_t nbytes;
} HostTensor;

typedef struct TensorSet {        /* an ordered collection, e.g. a safetensors file */
    HostTensor *tensors; int n_tensors, cap_tensors;
    char **meta_keys; char **meta_values; int n_meta;   /* safetensors "__metadata__" */
} TensorSet;

/* Product of dims (1 for rank 0).  Assumes dims were validated (no overflow). */
int64_t host_tensor_numel(const HostTensor *t);
/* Frees name and data and zeroes *t.  NULL-safe. */
void host_tensor_free(HostTensor *t);
/* Makes *t a zero-filled tensor of the given shape (name copied; NULL → "").
 * False with a message if the rank is outside 0..8, a dim is negative, the
 * byte size overflows or exceeds TENSORIO_MAX_TENSOR_BYTES, or memory runs
 * out; *t is then zeroed. */
bool host_tensor_init(HostTensor *t, const char *name, DType dt, int rank, const int64_t *dims,
                      char *err, size_t errlen);
/* Writes "[2, 3]" (or "[]" for rank 0) into buf; returns buf. */
char *host_tensor_shape_str(const HostTensor *t, char *buf, size_t buflen);

/* Frees every tensor and metadata string and zeroes *s.  NULL-safe. */
void tensor_set_free(TensorSet *s);
/* The tensor named `name`, or NULL.  Linear scan. */
HostTensor *tensor_set_find(const TensorSet *s, const char *name);
/* Appends a zero-filled tensor and returns it, or NULL if the name is NULL,
 * already present, or the shape is invalid (see host_tensor_init).  The
 * pointer stays valid until the next tensor_set_add on the same set. */
HostTensor *tensor_set_add(TensorSet *s, const char *name, DType dt, int rank, const int64_t *dims);
/* Sets (or replaces) a metadata entry; false only if key or value is NULL. */
bool tensor_set_meta(TensorSet *s, const char *key, const char *value);
/* The metadata value for key, or NULL. */
const char *tensor_set_meta_get(const TensorSet *s, const char *key);

/* Converts all numel elements to double (f16/bf16 exactly, bool as 0/1, i64
 * rounded).  `out` must hold numel doubles.  False if nbytes does not match
 * the shape or data is missing. */
bool host_tensor_to_f64(const HostTensor *t, double *out, char *err, size_t errlen);
/* Fills t->data from numel doubles, converting to t's dtype (floats round to
 * nearest; integers and bool need exact in-range integral values, else false
 * naming the element). */
bool host_tensor_from_f64(HostTensor *t, const double *in, char *err, size_t errlen);

/* Internal helpers shared by the format files (tio_ = tensor I/O). */
void tio_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* a*b into *out; false on overflow or negative operands. */
bool tio_mul_i64(int64_t a, int64_t b, int64_t *out);
/* numel*dtype_size of dims into *nbytes; false with a reason in why[] on a
 * negative dim, overflow or a size above TENSORIO_MAX_TENSOR_BYTES. */
bool tio_shape_bytes(int rank, const int64_t *dims, DType dt, size_t *nbytes, char *why, size_t whylen);
/* name for a one-line message: control characters become '?', long names
 * are cut to about 64 bytes with "...".  Returns buf. */
#define TIO_NAME_SHOW 72
const char *tio_show_name(const char *name, char buf[TIO_NAME_SHOW]);
/* True if t has a valid dtype and shape and nbytes/data match it; else a
 * message "PATH: tensor 'x': ..." (no "PATH: " when path is NULL). */
bool tio_check_tensor(const char *path, const HostTensor *t, char *err, size_t errlen);
double tio_f16_to_f64(uint16_t h);
double tio_bf16_to_f64(uint16_t b);
uint16_t tio_f64_to_f16(double x);
uint16_t tio_f64_to_bf16(double x);

/* A growable byte buffer for building headers; xrealloc'd (sizes are small). */
typedef struct TioBuf { char *data; size_t len, cap; } TioBuf;
void tio_buf_append(TioBuf *b, const void *p, size_t n);
void tio_buf_printf(TioBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tio_buf_free(TioBuf *b);

/* ---- json.c: the small JSON reader/writer behind safetensors headers ---- */
/* A cursor over UTF-8 JSON text held in memory.  The first error sticks; every
 * message reads "PATH: byte N: ..." with N = base + position (a file offset). */
typedef struct JsonReader {
    const char *text; size_t len, pos;
    size_t base;            /* file offset of text[0], for messages */
    const char *path;
    int depth;
    char *err; size_t errlen; bool failed;
} JsonReader;

/* False (with a message) if text[0..len) is not valid UTF-8. */
bool json_check_utf8(JsonReader *r);
/* Skips whitespace, then true if the next byte is c (not consumed). */
bool json_peek(JsonReader *r, char c);
/* Skips whitespace and consumes c; false with "expected ..." otherwise. */
bool json_expect(JsonReader *r, char c, const char *what);
/* Reads a string into a malloc'd NUL-terminated buffer; rejects \u0000. */
bool json_read_string(JsonReader *r, char **out);
/* Reads an integer literal (no fraction/exponent) in int64 range. */
bool json_read_int(JsonReader *r, int64_t *out);
/* Skips any value, nesting at most TENSORIO_MAX_JSON_DEPTH deep. */
bool json_skip_value(JsonReader *r);
/* Object iteration: call json_object_begin, then json_object_next until it
 * returns 0 (end) or -1 (error); on 1 *key is a malloc'd key and the cursor
 * sits after the ':' at the value. */
bool json_object_begin(JsonReader *r);
int json_object_next(JsonReader *r, bool *first, char **key);
/* Array iteration, like objects: 1 = an element follows, 0 = end, -1 = error. */
bool json_array_begin(JsonReader *r);
int json_array_next(JsonReader *r, bool *first);
/* Records an error at the current position (first error wins); returns false. */
bool json_fail(JsonReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal; false if s is not valid UTF-8. */
bool json_write_string(TioBuf *b, const char *s);

/* ---- safetensors.c ---- */
/* Loads a whole safetensors file.  On success *out is a new set (tensors in
 * data-offset order, metadata in file order) that the caller frees; on failure
 * *out is empty.  Rejects headers over 100 MB or past EOF, malformed JSON,
 * unknown dtypes, rank > 8, negative or overflowing dims, size/offset
 * mismatches, offsets outside the data section, overlaps or gaps between
 * tensors, and duplicate names or metadata keys. */
bool st_load(const char *path, TensorSet *out, char *err, size_t errlen);
/* Writes s atomically: header with __metadata__ first and tensors laid out
 * in set order, padded with spaces to 8 bytes.  False, leaving any existing
 * file untouched, on invalid names (not UTF-8, empty, duplicate,
 * "__metadata__"), a data size that does not match a shape, or an I/O error. */
bool st_save(const char *path, const TensorSet *s, char *err, size_t errlen);

/* ---- npy.c ---- */
/* Loads a .npy file (format 1.0/2.0/3.0) of dtype '<f4','<f8','<i8','<i4',
 * '<i2','<f2','|u1','|i1','|b1' in C order.  Fortran order, big-endian,
 * structured dtypes, malformed headers and payloads of the wrong length are
 * errors.  The tensor is named after nothing (name ""). *out is empty on failure. */
bool npy_load(const char *path, HostTensor *out, char *err, size_t errlen);
/* Writes t atomically as format 1.0 (payload 64-byte aligned); BF16 has no
 * NumPy dtype and is rejected. */
bool npy_save(const char *path, const HostTensor *t, char *err, size_t errlen);

/* ---- idx.c ---- */
/* Loads an IDX file (MNIST layout: 0,0,type,rank, big-endian u32 dims,
 * big-endian payload), gunzipping transparently.  Types u8/i8/i16/i32/f32/f64
 * map to DT_U8/I8/I16/I32/F32/F64.  The payload must match the dims exactly:
 * short → "truncated" error with expected and actual bytes; extra → error.
 * Memory grows with the bytes actually read, not with what the header claims. */
bool idx_load(const char *path, HostTensor *out, char *err, size_t errlen);

/* ---- csv.c ---- */
typedef struct CsvTable {
    char **columns; int n_columns;
    double *values;            /* row-major n_rows × n_columns */
    int64_t n_rows;
} CsvTable;
/* Loads a CSV table: one header row of names (optionally "quoted", "" for a
 * quote), then rows of finite numbers (strtod, spaces around a cell allowed).
 * ',' separates, '\n' or "\r\n" ends lines, trailing blank lines are ignored.
 * Errors name FILE:LINE and, for cells, the column: ragged rows ("expected N
 * fields, found M"), empty/non-numeric/nan/inf cells, blank lines inside the
 * table, duplicate or empty column names.  *out is empty on failure. */
bool csv_load(const char *path, CsvTable *out, char *err, size_t errlen);
/* Frees and zeroes.  NULL-safe. */
void csv_free(CsvTable *t);
/* Index of the column named `name`, or -1. */
int csv_column(const CsvTable *t, const char *name);

/* The record reader under csv_load, shared with `fepc plot`'s lenient table
 * reader.  It splits text[0..len) into records of fields.  ',' separates
 * fields; '\n' or "\r\n" ends a record.  A field whose first byte after spaces
 * and tabs is '"' is quoted: "" stands for a quote, ',' and line breaks are
 * content, and only spaces or tabs may follow the closing quote.  Other fields
 * are kept as written, including edge spaces.  Input ends where only line
 * breaks remain.  Any other blank line is a record of one empty unquoted
 * field, which the caller rejects or skips.  Errors, written to rd->err as
 * "PATH:LINE: ...", are a NUL byte, an unterminated quote (LINE of the
 * opening quote) and a character after a closing quote. */
typedef struct CsvReader {
    const char *text; size_t len, pos;   /* borrowed, not copied */
    int line;                            /* 1-based line of text[pos] */
    const char *path;                    /* for messages */
    char *err; size_t errlen;
} CsvReader;
typedef struct CsvRecord {
    TioBuf text;                         /* the fields, each NUL-terminated */
    size_t *starts; bool *quoted; int n_fields, cap_fields;
    int line;                            /* 1-based line where the record starts */
} CsvRecord;
CsvReader csv_reader(const char *path, const char *text, size_t len, char *err, size_t errlen);
/* Reads the next record into *rec, which is zeroed before the first call
 * and reused after it.  Returns 1 for a record, 0 at the end of input and
 * -1 on an error. */
int csv_read_record(CsvReader *rd, CsvRecord *rec);
const char *csv_field(const CsvRecord *rec, int i);
void csv_record_free(CsvRecord *rec);
/* A malloc'd copy of a field without leading/trailing spaces and tabs. */
char *csv_trimmed(const char *s);

/* Writes a table atomically; numbers as %.9g, NaN as an empty cell (e.g. an
 * accuracy column that does not apply); infinities are an error.  Names
 * containing ',', '"', CR/LF or edge spaces are quoted. */
bool csv_save(const char *path, char **columns, int n_columns, const double *values, int64_t n_rows,
              char *err, size_t errlen);

/* ---- atomic_file.c ---- */
/* Write-to-temp-then-rename.  af->f is an ordinary stdio stream; write to it,
 * then atomic_commit (success: the destination is replaced as a whole) or
 * atomic_abort (the destination is untouched, the temp file removed).  After
 * either call *af is zeroed; atomic_abort on a zeroed struct is a no-op. */
typedef struct AtomicFile { FILE *f; char *final_path; char *temp_path; } AtomicFile;
/* Creates PATH.tmp.<pid>.<n> beside path (mode 0666 & ~umask, or the mode
 * of an existing destination). */
bool atomic_open(AtomicFile *af, const char *path, char *err, size_t errlen);
/* fflush, fsync, fclose, rename over the destination, fsync the directory.
 * On any failure the temp file is removed and false returned. */
bool atomic_commit(AtomicFile *af, char *err, size_t errlen);
/* Closes and removes the temp file. */
void atomic_abort(AtomicFile *af);
/* fwrite of n bytes that reports short writes with the destination's name. */
bool atomic_write(AtomicFile *af, const void *p, size_t n, char *err, size_t errlen);

#endif
