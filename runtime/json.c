/* json.c — a small pull-style JSON reader and a string writer, enough for
 * safetensors headers.  The reader walks text held in memory with a cursor
 * (JsonReader); callers drive it value by value, so no tree is built and
 * nothing but decoded strings is allocated.
 *
 * Invariants: the reader never reads past text[len); nesting is capped at
 * TENSORIO_MAX_JSON_DEPTH; the first error sticks (r->failed) and later calls
 * fail fast.  Strings are validated UTF-8; \uXXXX escapes (with surrogate
 * pairs) are decoded; raw control characters and \u0000 are rejected. */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

bool json_fail(JsonReader *r, const char *fmt, ...)
{
    if (r->failed)
        return false;
    r->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tio_error(r->err, r->errlen, "%s: byte %zu: %s", r->path, r->base + r->pos, msg);
    return false;
}

/* Length of the UTF-8 sequence at p[0..n), or 0 if it is invalid (overlong,
 * surrogate, above U+10FFFF or cut short). */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 0 || c > 0xF4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;     /* overlong 3-byte */
    if (c == 0xED && p[1] >= 0xA0) return 0;    /* UTF-16 surrogate */
    if (c == 0xF0 && p[1] < 0x90) return 0;     /* overlong 4-byte */
    if (c == 0xF4 && p[1] >= 0x90) return 0;    /* above U+10FFFF */
    return len;
}

bool json_check_utf8(JsonReader *r)
{
    const unsigned char *p = (const unsigned char *)r->text;
    for (size_t i = 0; i < r->len;) {
        size_t n = utf8_seq_len(p + i, r->len - i);
        if (n == 0) {
            r->pos = i;
            return json_fail(r, "invalid UTF-8");
        }
        i += n;
    }
    return true;
}

/* The byte c for a message: 'x' if printable, else its hex value. */
static const char *show_byte(char c, char buf[16])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7F)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", u);
    return buf;
}

static void skip_ws(JsonReader *r)
{
    while (r->pos < r->len) {
        char c = r->text[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

bool json_peek(JsonReader *r, char c)
{
    if (r->failed)
        return false;
    skip_ws(r);
    return r->pos < r->len && r->text[r->pos] == c;
}

bool json_expect(JsonReader *r, char c, const char *what)
{
    if (r->failed)
        return false;
    skip_ws(r);
    if (r->pos >= r->len)
        return json_fail(r, "expected %s, found end of header", what);
    char buf[16];
    if (r->text[r->pos] != c)
        return json_fail(r, "expected %s, found %s", what, show_byte(r->text[r->pos], buf));
    r->pos++;
    return true;
}

/* Four hex digits at the cursor into *out. */
static bool read_hex4(JsonReader *r, unsigned *out)
{
    if (r->len - r->pos < 4)
        return json_fail(r, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->text[r->pos + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return json_fail(r, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)d;
    }
    r->pos += 4;
    *out = v;
    return true;
}

static void put_utf8(TioBuf *b, unsigned cp)
{
    unsigned char s[4];
    size_t n;
    if (cp < 0x80) { s[0] = (unsigned char)cp; n = 1; }
    else if (cp < 0x800) { s[0] = (unsigned char)(0xC0 | cp >> 6); s[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        s[0] = (unsigned char)(0xE0 | cp >> 12); s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        s[0] = (unsigned char)(0xF0 | cp >> 18); s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
    }
    tio_buf_append(b, s, n);
}

/* \uXXXX (the "\u" already consumed), joining a surrogate pair. */
static bool read_unicode_escape(JsonReader *r, TioBuf *b)
{
    unsigned cp;
    if (!read_hex4(r, &cp))
        return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return json_fail(r, "unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (r->len - r->pos < 2 || r->text[r->pos] != '\\' || r->text[r->pos + 1] != 'u')
            return json_fail(r, "unpaired high surrogate in \\u escape");
        r->pos += 2;
        if (!read_hex4(r, &lo))
            return false;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return json_fail(r, "unpaired high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0)
        return json_fail(r, "\\u0000 is not allowed in names");
    put_utf8(b, cp);
    return true;
}

/* One escape sequence after the backslash. */
static bool read_escape(JsonReader *r, TioBuf *b)
{
    if (r->pos >= r->len)
        return json_fail(r, "unterminated string");
    char c = r->text[r->pos++], out;
    switch (c) {
    case '"': case '\\': case '/': out = c; break;
    case 'b': out = '\b'; break;
    case 'f': out = '\f'; break;
    case 'n': out = '\n'; break;
    case 'r': out = '\r'; break;
    case 't': out = '\t'; break;
    case 'u': return read_unicode_escape(r, b);
    default: {
        char buf[16];
        r->pos--;
        return json_fail(r, "invalid escape character %s", show_byte(c, buf));
    }
    }
    tio_buf_append(b, &out, 1);
    return true;
}

/* Decodes a string into b (cursor after the opening quote). */
static bool read_string_body(JsonReader *r, TioBuf *b)
{
    for (;;) {
        if (r->pos >= r->len)
            return json_fail(r, "unterminated string");
        unsigned char c = (unsigned char)r->text[r->pos];
        if (c == '"') {
            r->pos++;
            return true;
        }
        if (c < 0x20)
            return json_fail(r, "control character 0x%02x in string", c);
        r->pos++;
        if (c == '\\') {
            if (!read_escape(r, b))
                return false;
        } else {
            tio_buf_append(b, &c, 1);
        }
    }
}

bool json_read_string(JsonReader *r, char **out)
{
    *out = NULL;
    if (!json_expect(r, '"', "a string"))
        return false;
    TioBuf b = {0};
    tio_buf_append(&b, "", 0);
    if (!read_string_body(r, &b)) {
        tio_buf_free(&b);
        return false;
    }
    *out = b.data;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Validates a number per the JSON grammar; *is_int says it had no fraction or exponent. */
static bool scan_number(JsonReader *r, bool *is_int)
{
    size_t p = r->pos;
    *is_int = true;
    if (p < r->len && r->text[p] == '-')
        p++;
    if (p >= r->len || !is_digit(r->text[p]))
        return json_fail(r, "malformed number");
    if (r->text[p] == '0' && p + 1 < r->len && is_digit(r->text[p + 1]))
        return json_fail(r, "number with a leading zero");
    while (p < r->len && is_digit(r->text[p]))
        p++;
    if (p < r->len && r->text[p] == '.') {
        *is_int = false;
        if (++p >= r->len || !is_digit(r->text[p]))
            return json_fail(r, "malformed number");
        while (p < r->len && is_digit(r->text[p]))
            p++;
    }
    if (p < r->len && (r->text[p] == 'e' || r->text[p] == 'E')) {
        *is_int = false;
        p++;
        if (p < r->len && (r->text[p] == '+' || r->text[p] == '-'))
            p++;
        if (p >= r->len || !is_digit(r->text[p]))
            return json_fail(r, "malformed number");
        while (p < r->len && is_digit(r->text[p]))
            p++;
    }
    r->pos = p;
    return true;
}

bool json_read_int(JsonReader *r, int64_t *out)
{
    if (r->failed)
        return false;
    skip_ws(r);
    size_t start = r->pos;
    bool is_int;
    if (r->pos >= r->len || (r->text[r->pos] != '-' && !is_digit(r->text[r->pos])))
        return json_fail(r, "expected an integer");
    if (!scan_number(r, &is_int))
        return false;
    size_t end = r->pos;
    r->pos = start;
    if (!is_int)
        return json_fail(r, "expected an integer, found a fraction or exponent");
    bool neg = r->text[start] == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t p = start + neg; p < end; p++) {
        unsigned d = (unsigned)(r->text[p] - '0');
        if (v > (limit - d) / 10)
            return json_fail(r, "integer out of range");
        v = v * 10 + d;
    }
    r->pos = end;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

/* Consumes the literal word w. */
static bool read_word(JsonReader *r, const char *w)
{
    size_t n = strlen(w);
    char buf[16];
    if (r->len - r->pos < n || memcmp(r->text + r->pos, w, n) != 0)
        return json_fail(r, "unexpected %s", show_byte(r->text[r->pos], buf));
    r->pos += n;
    return true;
}

bool json_object_begin(JsonReader *r)
{
    if (!json_expect(r, '{', "'{'"))
        return false;
    if (++r->depth > TENSORIO_MAX_JSON_DEPTH)
        return json_fail(r, "nesting deeper than %d", TENSORIO_MAX_JSON_DEPTH);
    return true;
}

int json_object_next(JsonReader *r, bool *first, char **key)
{
    *key = NULL;
    if (r->failed)
        return -1;
    if (json_peek(r, '}')) {
        r->pos++;
        r->depth--;
        return 0;
    }
    if (!*first && !json_expect(r, ',', "',' or '}'"))
        return -1;
    *first = false;
    if (!json_peek(r, '"')) {
        json_expect(r, '"', "a key string");
        return -1;
    }
    if (!json_read_string(r, key))
        return -1;
    if (!json_expect(r, ':', "':'")) {
        free(*key);
        *key = NULL;
        return -1;
    }
    return 1;
}

bool json_array_begin(JsonReader *r)
{
    if (!json_expect(r, '[', "'['"))
        return false;
    if (++r->depth > TENSORIO_MAX_JSON_DEPTH)
        return json_fail(r, "nesting deeper than %d", TENSORIO_MAX_JSON_DEPTH);
    return true;
}

int json_array_next(JsonReader *r, bool *first)
{
    if (r->failed)
        return -1;
    if (json_peek(r, ']')) {
        r->pos++;
        r->depth--;
        return 0;
    }
    if (!*first && !json_expect(r, ',', "',' or ']'"))
        return -1;
    *first = false;
    return 1;
}

bool json_skip_value(JsonReader *r)
{
    if (r->failed)
        return false;
    skip_ws(r);
    if (r->pos >= r->len)
        return json_fail(r, "expected a value, found end of header");
    char c = r->text[r->pos];
    bool first = true;
    int more;
    char *key;
    switch (c) {
    case '{':
        if (!json_object_begin(r))
            return false;
        while ((more = json_object_next(r, &first, &key)) == 1) {
            free(key);
            if (!json_skip_value(r))
                return false;
        }
        return more == 0;
    case '[':
        if (!json_array_begin(r))
            return false;
        while ((more = json_array_next(r, &first)) == 1)
            if (!json_skip_value(r))
                return false;
        return more == 0;
    case '"': {
        char *s;
        bool ok = json_read_string(r, &s);
        free(s);
        return ok;
    }
    case 't': return read_word(r, "true");
    case 'f': return read_word(r, "false");
    case 'n': return read_word(r, "null");
    default: {
        bool is_int;
        char buf[16];
        if (c != '-' && !is_digit(c))
            return json_fail(r, "unexpected %s", show_byte(c, buf));
        return scan_number(r, &is_int);
    }
    }
}

bool json_write_string(TioBuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    tio_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0)
            return false;
        if (p[i] == '"' || p[i] == '\\')
            tio_buf_printf(b, "\\%c", p[i]);
        else if (p[i] < 0x20)
            tio_buf_printf(b, "\\u%04x", p[i]);
        else
            tio_buf_append(b, p + i, len);
        i += len;
    }
    tio_buf_append(b, "\"", 1);
    return true;
}
