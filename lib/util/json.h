/* json.h: a small JSON writer (manifests, reports, metrics) and a small reader (manifests read
 * back for skip checks, `onfh status`, `onfh verify`).
 *
 * Writer: calls append to a growing buffer; commas and (optionally) indentation are handled
 * for the caller. Allocation failure is sticky: json_finish reports it once. Doubles are
 * written in the shortest form that reads back to the same value; NaN and infinities as null.
 * Reader: RFC 8259, UTF-8 passed through, \u escapes (with surrogate pairs) decoded; errors
 * name line:column. Nesting deeper than JSON_MAX_DEPTH is refused. */
#ifndef ONFH_JSON_H
#define ONFH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

#define JSON_MAX_DEPTH 64

typedef struct JsonWriter {
    char *buf;
    size_t len;
    size_t cap;
    int depth;
    int pretty;                /* 1: two-space indentation and newlines */
    int count[JSON_MAX_DEPTH]; /* values written so far at each depth */
    uint64_t object_mask;      /* bit d: the container at depth d is an object */
    int after_key;             /* a key was just written: the next value needs no comma */
    int failed;                /* an allocation failed or nesting was misused */
} JsonWriter;

void json_writer_init(JsonWriter *w, int pretty);
void json_object_begin(JsonWriter *w);
void json_object_end(JsonWriter *w);
void json_array_begin(JsonWriter *w);
void json_array_end(JsonWriter *w);
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *s); /* NULL writes null */
void json_int(JsonWriter *w, int64_t v);
void json_number(JsonWriter *w, double v);
void json_bool(JsonWriter *w, int v);
void json_null(JsonWriter *w);
/* Hands the NUL-terminated text to the caller (free with mem_free) and resets w. Returns ERR_NOMEM
 * if any allocation failed, ERR_INTERNAL if begin/end calls were unbalanced. */
int json_writer_finish(JsonWriter *w, char **text, size_t *len, Err *e);
void json_writer_free(JsonWriter *w); /* discards the text (error paths) */

typedef enum JsonType {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} JsonType;

typedef struct JsonValue {
    JsonType type;
    int boolean;
    double number;
    char *string;            /* JSON_STRING: decoded, NUL-terminated */
    size_t n;                /* JSON_ARRAY / JSON_OBJECT: number of items */
    struct JsonValue *items; /* n values */
    char **keys;             /* JSON_OBJECT: n keys, in file order */
} JsonValue;

/* Parses text (len bytes, need not be NUL-terminated). `what` names the source in messages:
 * "runs/x/manifest.json:3:14: expected ',' or '}'". *out is freed with json_value_free. */
int json_parse(const char *text, size_t len, const char *what, JsonValue **out, Err *e);
/* Reads the file at path whole and parses it (json_parse, path naming the source). */
int json_parse_file(const char *path, JsonValue **out, Err *e);
void json_value_free(JsonValue *v);
/* Member of an object by key (last one wins), or NULL; NULL-safe on v. */
const JsonValue *json_get(const JsonValue *v, const char *key);
/* Convenience: string member or NULL; number member or fallback. */
const char *json_get_string(const JsonValue *v, const char *key);
double json_get_number(const JsonValue *v, const char *key, double fallback);

#endif
