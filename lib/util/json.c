/* json.c: the JSON writer and reader of onfh (see json.h).
 *
 * Writer: every call appends to one growing, always NUL-terminated buffer. The writer tracks
 * the open containers (count and object_mask, one entry per depth) so it can place commas and
 * indentation itself and catch calls made out of order (a value in an object without a key, an
 * end that does not match its begin). Errors are sticky: after the first one every call is a
 * no-op and json_writer_finish reports it, so callers can write a whole document and check once.
 * Pretty output uses two-space indentation and ends with a newline (it is meant for files);
 * compact output has no whitespace at all.
 *
 * Reader: recursive descent over RFC 8259, bounded by JSON_MAX_DEPTH so hostile input cannot
 * exhaust the stack. Values are built in place and are always in a freeable state, so any error
 * unwinds by freeing the partial tree. Positions in messages are 1-based lines and columns
 * counted in characters (UTF-8 continuation bytes do not advance the column). */
#include "lib/util/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"

// ---------------------------------------------------------------------------------------------
// Writer

#define WRITER_NOMEM  1 /* an allocation failed */
#define WRITER_MISUSE 2 /* calls out of order: a bug in the caller */

void json_writer_init(JsonWriter *w, int pretty)
{
    memset(w, 0, sizeof *w);
    w->pretty = pretty;
}

static void put(JsonWriter *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (n + 1 > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 256;
        while (n + 1 > cap - w->len) {
            if (cap > SIZE_MAX / 2) {
                w->failed |= WRITER_NOMEM;
                return;
            }
            cap *= 2;
        }
        char *buf = mem_realloc(w->buf, cap);
        if (!buf) {
            w->failed |= WRITER_NOMEM;
            return;
        }
        w->buf = buf;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void put_str(JsonWriter *w, const char *s)
{
    put(w, s, strlen(s));
}

static void misuse(JsonWriter *w)
{
    w->failed |= WRITER_MISUSE;
}

static int in_object(const JsonWriter *w)
{
    return w->depth > 0 && (w->object_mask >> (w->depth - 1) & 1);
}

/* Comma and indentation before the next item of the innermost container. */
static void separate(JsonWriter *w)
{
    int d = w->depth - 1;
    if (w->count[d] > 0)
        put(w, ",", 1);
    if (w->pretty) {
        put(w, "\n", 1);
        for (int i = 0; i < w->depth; i++)
            put(w, "  ", 2);
    }
    w->count[d]++;
}

/* Called before every value; returns 0 if the value must not be written. */
static int begin_value(JsonWriter *w)
{
    if (w->failed)
        return 0;
    if (w->depth == 0) {
        if (w->len > 0) { /* a second top-level value */
            misuse(w);
            return 0;
        }
        return 1;
    }
    if (in_object(w)) {
        if (!w->after_key) {
            misuse(w);
            return 0;
        }
        w->after_key = 0; /* json_key already wrote the comma and the indentation */
        return 1;
    }
    separate(w);
    return 1;
}

static void put_escaped(JsonWriter *w, const char *s)
{
    const char *run = s; /* start of the bytes not yet copied */
    put(w, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (esc) {
            put(w, run, (size_t)(s - run));
            put_str(w, esc);
            run = s + 1;
        }
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

static void container_begin(JsonWriter *w, int object)
{
    if (!begin_value(w))
        return;
    if (w->depth == JSON_MAX_DEPTH) {
        misuse(w);
        return;
    }
    put(w, object ? "{" : "[", 1);
    w->count[w->depth] = 0;
    if (object)
        w->object_mask |= (uint64_t)1 << w->depth;
    else
        w->object_mask &= ~((uint64_t)1 << w->depth);
    w->depth++;
}

static void container_end(JsonWriter *w, int object)
{
    if (w->failed)
        return;
    if (w->depth == 0 || in_object(w) != object || w->after_key) {
        misuse(w);
        return;
    }
    w->depth--;
    if (w->pretty && w->count[w->depth] > 0) {
        put(w, "\n", 1);
        for (int i = 0; i < w->depth; i++)
            put(w, "  ", 2);
    }
    put(w, object ? "}" : "]", 1);
}

void json_object_begin(JsonWriter *w)
{
    container_begin(w, 1);
}

void json_object_end(JsonWriter *w)
{
    container_end(w, 1);
}

void json_array_begin(JsonWriter *w)
{
    container_begin(w, 0);
}

void json_array_end(JsonWriter *w)
{
    container_end(w, 0);
}

void json_key(JsonWriter *w, const char *key)
{
    if (w->failed)
        return;
    if (!in_object(w) || w->after_key || !key) {
        misuse(w);
        return;
    }
    separate(w);
    put_escaped(w, key);
    put_str(w, w->pretty ? ": " : ":");
    w->after_key = 1;
}

void json_string(JsonWriter *w, const char *s)
{
    if (!s) {
        json_null(w);
        return;
    }
    if (begin_value(w))
        put_escaped(w, s);
}

void json_int(JsonWriter *w, int64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRId64, v);
    if (begin_value(w))
        put_str(w, s);
}

/* The shortest of %.15g, %.16g and %.17g that reads back to exactly v: 17 significant digits
 * always round-trip a double, fewer usually do and read better (0.1, not 0.10000000000000001).
 * -0.0 prints as "-0", which JSON allows and strtod reads back with its sign. The decimal point
 * is '.' because onfh never calls setlocale. */
void json_number(JsonWriter *w, double v)
{
    if (!isfinite(v)) {
        json_null(w); /* JSON has no NaN or infinity */
        return;
    }
    char s[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    if (begin_value(w))
        put_str(w, s);
}

void json_bool(JsonWriter *w, int v)
{
    if (begin_value(w))
        put_str(w, v ? "true" : "false");
}

void json_null(JsonWriter *w)
{
    if (begin_value(w))
        put_str(w, "null");
}

void json_writer_free(JsonWriter *w)
{
    mem_free(w->buf);
    json_writer_init(w, w->pretty);
}

int json_writer_finish(JsonWriter *w, char **text, size_t *len, Err *e)
{
    int rc = ERR_OK;
    *text = NULL;
    if (len)
        *len = 0;
    if (!w->failed && w->pretty && w->depth == 0 && w->len > 0)
        put(w, "\n", 1);
    if (w->failed & WRITER_NOMEM)
        rc = err_set(e, ERR_NOMEM, "json writer: out of memory after %zu bytes", w->len);
    else if (w->failed || w->depth != 0 || w->after_key || w->len == 0)
        rc = err_set(e, ERR_INTERNAL,
                     "json writer: begin/end or key/value calls out of order (a bug in onfh)");
    if (rc) {
        json_writer_free(w);
        return rc;
    }
    *text = w->buf;
    if (len)
        *len = w->len;
    json_writer_init(w, w->pretty);
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Reader

typedef struct Parser {
    const char *text;
    size_t len;
    size_t pos;
    const char *what; /* the source, for messages */
    Err *e;
} Parser;

/* Sets "WHAT:LINE:COL: message" for the byte at offset `at`. Line and column are found by
 * rescanning from the start: errors are rare, and the hot path need not track them. */
static int fail(Parser *p, size_t at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(Parser *p, size_t at, int code, const char *fmt, ...)
{
    int line = 1;
    int col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        unsigned char c = (unsigned char)p->text[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(p->e, code, "%s:%d:%d: %s", p->what, line, col, msg);
}

static int fail_nomem(Parser *p)
{
    return fail(p, p->pos, ERR_NOMEM, "out of memory");
}

/* A byte for a message: itself if printable, else its hex code. */
static const char *show_byte(unsigned char c, char buf[8])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
    return buf;
}

static void skip_space(Parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int at_end(const Parser *p)
{
    return p->pos >= p->len;
}

static int parse_value(Parser *p, JsonValue *v, int depth);

static int hex4(const char *s, uint32_t *out)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        x = x << 4 | (uint32_t)d;
    }
    *out = x;
    return 0;
}

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the \uXXXX escape at s (text[s] == '\\'), joining a surrogate pair; end bounds the
 * string. *used receives the number of input bytes consumed. */
static int decode_u_escape(Parser *p, size_t s, size_t end, uint32_t *cp, size_t *used)
{
    const char *t = p->text;
    if (end - s < 6 || hex4(t + s + 2, cp) != 0)
        return fail(p, s, ERR_FORMAT, "invalid \\u escape: expected 4 hex digits");
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return fail(p, s, ERR_FORMAT, "unpaired low surrogate \\u%04X", (unsigned)*cp);
    *used = 6;
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        uint32_t lo;
        if (end - s < 12 || t[s + 6] != '\\' || t[s + 7] != 'u' || hex4(t + s + 8, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, s, ERR_FORMAT, "high surrogate \\u%04X not followed by a low surrogate",
                        (unsigned)*cp);
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        *used = 12;
    }
    /* Strings are handed out NUL-terminated; an embedded NUL would silently cut them short. */
    if (*cp == 0)
        return fail(p, s, ERR_FORMAT, "\\u0000 is not supported in strings");
    return ERR_OK;
}

/* p->pos is at the opening quote. The decoded text is never longer than the raw text (every
 * escape is at least as long as the bytes it stands for), so one allocation of the raw length
 * suffices. */
static int parse_string(Parser *p, char **out)
{
    const char *t = p->text;
    size_t open = p->pos;
    size_t end = open + 1;
    while (end < p->len && t[end] != '"') {
        unsigned char c = (unsigned char)t[end];
        if (c < 0x20) {
            char b[8];
            return fail(p, end, ERR_FORMAT, "control character %s in string (must be escaped)",
                        show_byte(c, b));
        }
        end += c == '\\' ? 2 : 1;
    }
    if (end >= p->len)
        return fail(p, open, ERR_FORMAT, "unterminated string");
    char *s = mem_alloc(end - open);
    if (!s)
        return fail_nomem(p);
    size_t n = 0;
    for (size_t i = open + 1; i < end;) {
        if (t[i] != '\\') {
            s[n++] = t[i++];
            continue;
        }
        uint32_t cp;
        size_t used;
        int rc;
        char b[8];
        switch (t[i + 1]) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u':
            if ((rc = decode_u_escape(p, i, end, &cp, &used))) {
                mem_free(s);
                return rc;
            }
            n += put_utf8(s + n, cp);
            i += used;
            continue;
        default:
            mem_free(s);
            return fail(p, i, ERR_FORMAT, "invalid escape \\%s in string",
                        show_byte((unsigned char)t[i + 1], b));
        }
        i += 2;
    }
    s[n] = '\0';
    p->pos = end + 1;
    *out = s;
    return ERR_OK;
}

static int is_digit(const Parser *p)
{
    return !at_end(p) && p->text[p->pos] >= '0' && p->text[p->pos] <= '9';
}

/* RFC 8259 section 6 grammar is checked by hand, since strtod accepts more (hex, "inf",
 * leading '+' or zeros); strtod then does the correctly rounded conversion. */
static int parse_number(Parser *p, JsonValue *v)
{
    size_t start = p->pos;
    if (p->text[p->pos] == '-')
        p->pos++;
    if (!is_digit(p))
        return fail(p, p->pos, ERR_FORMAT, "invalid number: expected a digit");
    if (p->text[p->pos] == '0')
        p->pos++;
    else
        while (is_digit(p))
            p->pos++;
    if (!at_end(p) && p->text[p->pos] == '.') {
        p->pos++;
        if (!is_digit(p))
            return fail(p, p->pos, ERR_FORMAT, "invalid number: expected a digit after '.'");
        while (is_digit(p))
            p->pos++;
    }
    if (!at_end(p) && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
        p->pos++;
        if (!at_end(p) && (p->text[p->pos] == '+' || p->text[p->pos] == '-'))
            p->pos++;
        if (!is_digit(p))
            return fail(p, p->pos, ERR_FORMAT, "invalid number: expected a digit in exponent");
        while (is_digit(p))
            p->pos++;
    }
    /* The text need not be NUL-terminated, so strtod reads a copy. */
    size_t n = p->pos - start;
    char small[64];
    char *copy = small;
    if (n >= sizeof small) {
        copy = mem_strndup(p->text + start, n);
        if (!copy)
            return fail_nomem(p);
    } else {
        memcpy(small, p->text + start, n);
        small[n] = '\0';
    }
    double x = strtod(copy, NULL);
    if (copy != small)
        mem_free(copy);
    if (isinf(x))
        return fail(p, start, ERR_FORMAT, "number out of range for a double");
    v->type = JSON_NUMBER;
    v->number = x;
    return ERR_OK;
}

static int parse_literal(Parser *p, JsonValue *v)
{
    static const struct {
        const char *word;
        JsonType type;
        int boolean;
    } literals[] = {{"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
        size_t n = strlen(literals[i].word);
        if (p->len - p->pos >= n && memcmp(p->text + p->pos, literals[i].word, n) == 0) {
            v->type = literals[i].type;
            v->boolean = literals[i].boolean;
            p->pos += n;
            return ERR_OK;
        }
    }
    return fail(p, p->pos, ERR_FORMAT, "invalid literal (expected true, false or null)");
}

/* Makes room for one more member; keys too for objects. On failure the arrays stay valid (one
 * of them may be larger than *cap, which is harmless). */
static int grow(Parser *p, JsonValue *v, size_t *cap)
{
    if (v->n < *cap)
        return ERR_OK;
    size_t ncap = *cap ? *cap * 2 : 4;
    JsonValue *items = mem_realloc(v->items, ncap * sizeof *items);
    if (!items)
        return fail_nomem(p);
    v->items = items;
    if (v->type == JSON_OBJECT) {
        char **keys = mem_realloc(v->keys, ncap * sizeof *keys);
        if (!keys)
            return fail_nomem(p);
        v->keys = keys;
    }
    *cap = ncap;
    return ERR_OK;
}

/* After a member: ',' (more follow) returns 1, the closing byte returns 0, else an error. */
static int after_member(Parser *p, char close, int *more)
{
    skip_space(p);
    if (at_end(p))
        return fail(p, p->pos, ERR_FORMAT, "unexpected end of input: expected ',' or '%c'", close);
    char c = p->text[p->pos];
    if (c != ',' && c != close)
        return fail(p, p->pos, ERR_FORMAT, "expected ',' or '%c'", close);
    p->pos++;
    *more = c == ',';
    return ERR_OK;
}

static int parse_array(Parser *p, JsonValue *v, int depth)
{
    size_t cap = 0;
    int more = 1;
    v->type = JSON_ARRAY;
    p->pos++;
    skip_space(p);
    if (!at_end(p) && p->text[p->pos] == ']') {
        p->pos++;
        return ERR_OK;
    }
    while (more) {
        int rc = grow(p, v, &cap);
        if (rc)
            return rc;
        /* Counted before it is parsed, so a half-built item is freed with the rest. */
        JsonValue *item = &v->items[v->n++];
        memset(item, 0, sizeof *item);
        if ((rc = parse_value(p, item, depth)) || (rc = after_member(p, ']', &more)))
            return rc;
    }
    return ERR_OK;
}

static int parse_object(Parser *p, JsonValue *v, int depth)
{
    size_t cap = 0;
    int more = 1;
    v->type = JSON_OBJECT;
    p->pos++;
    skip_space(p);
    if (!at_end(p) && p->text[p->pos] == '}') {
        p->pos++;
        return ERR_OK;
    }
    while (more) {
        skip_space(p);
        if (at_end(p))
            return fail(p, p->pos, ERR_FORMAT, "unexpected end of input: expected a key");
        if (p->text[p->pos] != '"')
            return fail(p, p->pos, ERR_FORMAT, "expected a string key");
        int rc = grow(p, v, &cap);
        char *key;
        if (rc || (rc = parse_string(p, &key)))
            return rc;
        v->keys[v->n] = key;
        JsonValue *item = &v->items[v->n++];
        memset(item, 0, sizeof *item);
        skip_space(p);
        if (at_end(p) || p->text[p->pos] != ':')
            return fail(p, p->pos, ERR_FORMAT, "expected ':' after key \"%s\"", key);
        p->pos++;
        if ((rc = parse_value(p, item, depth)) || (rc = after_member(p, '}', &more)))
            return rc;
    }
    return ERR_OK;
}

/* depth: containers open around this value. */
static int parse_value(Parser *p, JsonValue *v, int depth)
{
    skip_space(p);
    if (at_end(p))
        return fail(p, p->pos, ERR_FORMAT, "unexpected end of input: expected a value");
    char c = p->text[p->pos];
    if ((c == '{' || c == '[') && depth >= JSON_MAX_DEPTH)
        return fail(p, p->pos, ERR_FORMAT, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    switch (c) {
    case '{': return parse_object(p, v, depth + 1);
    case '[': return parse_array(p, v, depth + 1);
    case '"': v->type = JSON_STRING; return parse_string(p, &v->string);
    case 't':
    case 'f':
    case 'n': return parse_literal(p, v);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
    }
    char b[8];
    return fail(p, p->pos, ERR_FORMAT, "unexpected %s: expected a value",
                show_byte((unsigned char)c, b));
}

static void value_clear(JsonValue *v)
{
    if (v->type == JSON_STRING)
        mem_free(v->string);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->n; i++) {
            value_clear(&v->items[i]);
            if (v->keys)
                mem_free(v->keys[i]);
        }
        mem_free(v->items);
        mem_free(v->keys);
    }
}

void json_value_free(JsonValue *v)
{
    if (!v)
        return;
    value_clear(v);
    mem_free(v);
}

int json_parse(const char *text, size_t len, const char *what, JsonValue **out, Err *e)
{
    Parser p = {.text = text, .len = len, .pos = 0, .what = what ? what : "<json>", .e = e};
    *out = NULL;
    JsonValue *v = mem_calloc(1, sizeof *v);
    if (!v)
        return fail_nomem(&p);
    int rc = parse_value(&p, v, 0);
    if (!rc) {
        skip_space(&p);
        if (!at_end(&p))
            rc = fail(&p, p.pos, ERR_FORMAT, "unexpected text after the JSON value");
    }
    if (rc) {
        json_value_free(v);
        return rc;
    }
    *out = v;
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Lookup

const JsonValue *json_get(const JsonValue *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT || !key)
        return NULL;
    /* From the end: with duplicate keys the last one wins, as in most readers. */
    for (size_t i = v->n; i-- > 0;)
        if (strcmp(v->keys[i], key) == 0)
            return &v->items[i];
    return NULL;
}

const char *json_get_string(const JsonValue *v, const char *key)
{
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_STRING ? m->string : NULL;
}

double json_get_number(const JsonValue *v, const char *key, double fallback)
{
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_NUMBER ? m->number : fallback;
}

int json_parse_file(const char *path, JsonValue **out, Err *e)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (file_read_all(path, &text, &len, e))
        return -1;
    int rc = json_parse(text, len, path, out, e);
    mem_free(text);
    return rc;
}
