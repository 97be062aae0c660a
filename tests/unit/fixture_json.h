/* fixture_json.h: the JSON oracle fixtures of the unit tests (tests/fixtures/..., written by
 * tools/ scripts): loading one relative to ONFH_ROOT, and a member lookup that fails the test
 * naming the file and the key. Include after cmocka.h (fail_msg). Test code only. */
#ifndef ONFH_TEST_FIXTURE_JSON_H
#define ONFH_TEST_FIXTURE_JSON_H

#include <stdio.h>
#include <stdlib.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"

/* Parses ONFH_ROOT/rel (or ./rel) into *out; prints the error and returns -1 on failure (a
 * cmocka group setup's convention). */
static inline int fixture_json_load(const char *rel, JsonValue **out)
{
    const char *root = getenv("ONFH_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    char *text;
    size_t len;
    Err e = {0};
    if (file_read_all(path, &text, &len, &e) || json_parse(text, len, path, out, &e))
        return fprintf(stderr, "%s\n", e.msg), -1;
    mem_free(text);
    return 0;
}

/* Member `key` of v, or the test fails naming `file`. */
static inline const JsonValue *fixture_get(const char *file, const JsonValue *v, const char *key)
{
    const JsonValue *x = json_get(v, key);
    if (!x)
        fail_msg("%s: no '%s'", file, key);
    return x;
}

#endif
