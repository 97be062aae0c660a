/* test_json.c: the JSON writer and reader (lib/util/json.c).
 *
 * Writer: exact text for nested documents in both layouts, escaping, the shortest round-trip
 * form of doubles, null for non-finite numbers, and ERR_INTERNAL for calls out of order.
 * Reader: writer output read back, \u escapes with surrogate pairs, the depth limit, duplicate
 * keys, and one case per error path checking the "WHAT:LINE:COL: message" form. Allocation
 * failure paths are in test_mem.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

static size_t mem_base;

static int record_mem(void **state)
{
    (void)state;
    mem_base = mem_bytes_in_use();
    return 0;
}

/* Every test must give back what it took. */
static int check_mem(void **state)
{
    (void)state;
    return mem_bytes_in_use() == mem_base ? 0 : -1;
}

/* Finishes w, compares with want, frees. */
static void expect_text(JsonWriter *w, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    Err e = {0};
    assert_int_equal(json_writer_finish(w, &text, &len, &e), ERR_OK);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    mem_free(text);
}

// ---------------------------------------------------------------------------------------------
// Writer

static void write_nested(JsonWriter *w)
{
    json_object_begin(w);
    json_key(w, "a");
    json_int(w, 1);
    json_key(w, "b");
    json_array_begin(w);
    json_int(w, 1);
    json_string(w, "x");
    json_object_begin(w);
    json_object_end(w);
    json_array_begin(w);
    json_array_end(w);
    json_array_end(w);
    json_key(w, "c");
    json_object_begin(w);
    json_key(w, "d");
    json_null(w);
    json_key(w, "e");
    json_bool(w, 1);
    json_key(w, "f");
    json_bool(w, 0);
    json_key(w, "g");
    json_string(w, NULL);
    json_object_end(w);
    json_object_end(w);
}

static void test_writer_pretty(void **state)
{
    (void)state;
    JsonWriter w;
    json_writer_init(&w, 1);
    write_nested(&w);
    expect_text(&w, "{\n"
                    "  \"a\": 1,\n"
                    "  \"b\": [\n"
                    "    1,\n"
                    "    \"x\",\n"
                    "    {},\n"
                    "    []\n"
                    "  ],\n"
                    "  \"c\": {\n"
                    "    \"d\": null,\n"
                    "    \"e\": true,\n"
                    "    \"f\": false,\n"
                    "    \"g\": null\n"
                    "  }\n"
                    "}\n");
}

static void test_writer_compact(void **state)
{
    (void)state;
    JsonWriter w;
    json_writer_init(&w, 0);
    write_nested(&w);
    expect_text(&w, "{\"a\":1,\"b\":[1,\"x\",{},[]],\"c\":{\"d\":null,\"e\":true,\"f\":false,"
                    "\"g\":null}}");
    /* The writer is reset by finish and can be used again. */
    json_array_begin(&w);
    json_array_begin(&w);
    json_int(&w, INT64_MIN);
    json_array_end(&w);
    json_int(&w, INT64_MAX);
    json_array_end(&w);
    expect_text(&w, "[[-9223372036854775808],9223372036854775807]");
    json_string(&w, "top-level scalar");
    expect_text(&w, "\"top-level scalar\"");
}

static void test_writer_escaping(void **state)
{
    (void)state;
    JsonWriter w;
    json_writer_init(&w, 0);
    json_object_begin(&w);
    json_key(&w, "k\"ey\n");
    json_string(&w, "q\"b\\s\b\f\n\r\t\x01\x1f/\xc3\xa9 end");
    json_object_end(&w);
    expect_text(&w, "{\"k\\\"ey\\n\":\"q\\\"b\\\\s\\b\\f\\n\\r\\t\\u0001\\u001f/\xc3\xa9 end\"}");
}

static void expect_number(double v, const char *want)
{
    JsonWriter w;
    json_writer_init(&w, 0);
    json_number(&w, v);
    expect_text(&w, want);
}

static void test_writer_doubles(void **state)
{
    (void)state;
    expect_number(0.1, "0.1");
    expect_number(1e300, "1e+300");
    expect_number(-0.0, "-0");
    expect_number(0.0, "0");
    expect_number(1.0 / 3.0, "0.3333333333333333");
    expect_number(0.1 + 0.2, "0.30000000000000004");
    expect_number(2.5, "2.5");
    expect_number(-1234567.0, "-1234567");
    expect_number(5e-324, "4.94065645841247e-324"); /* subnormal: 15 digits suffice */
    expect_number(NAN, "null");
    expect_number(INFINITY, "null");
    expect_number(-INFINITY, "null");
}

/* Written then read back, every double keeps its exact bits (sign of zero included). */
static void test_doubles_round_trip(void **state)
{
    (void)state;
    enum { N = 2000 };
    static double v[N];
    const double fixed[] = {0.1,
                            1e300,
                            -0.0,
                            1.0 / 3.0,
                            2.0 / 3.0,
                            1e-310,
                            1.7976931348623157e308,
                            123456789.125,
                            -2.2250738585072014e-308};
    size_t nf = sizeof fixed / sizeof fixed[0];
    Philox p;
    philox_init(&p, 5, PHILOX_TEST, 3);
    for (size_t i = 0; i < N; i++) {
        if (i < nf) {
            v[i] = fixed[i];
            continue;
        }
        /* Random bit patterns cover every exponent; non-finite ones are redrawn. */
        uint64_t bits;
        do {
            bits = philox_u64(&p);
            memcpy(&v[i], &bits, sizeof v[i]);
        } while (!isfinite(v[i]));
    }
    JsonWriter w;
    char *text;
    size_t len;
    Err e = {0};
    json_writer_init(&w, 0);
    json_array_begin(&w);
    for (size_t i = 0; i < N; i++)
        json_number(&w, v[i]);
    json_array_end(&w);
    assert_int_equal(json_writer_finish(&w, &text, &len, &e), ERR_OK);
    JsonValue *doc;
    assert_int_equal(json_parse(text, len, "numbers", &doc, &e), ERR_OK);
    assert_int_equal(doc->type, JSON_ARRAY);
    assert_int_equal(doc->n, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(doc->items[i].type, JSON_NUMBER);
        assert_memory_equal(&doc->items[i].number, &v[i], sizeof v[i]);
    }
    assert_true(signbit(doc->items[2].number));
    json_value_free(doc);
    mem_free(text);
}

static void expect_misuse(JsonWriter *w)
{
    char *text = (char *)"sentinel";
    Err e = {0};
    assert_int_equal(json_writer_finish(w, &text, NULL, &e), ERR_INTERNAL);
    assert_null(text);
    assert_int_equal(e.code, ERR_INTERNAL);
}

static void test_writer_misuse(void **state)
{
    (void)state;
    JsonWriter w;
    json_writer_init(&w, 1);
    expect_misuse(&w); /* nothing written */

    json_object_begin(&w);
    json_int(&w, 1); /* value without a key */
    json_object_end(&w);
    expect_misuse(&w);

    json_array_begin(&w);
    json_key(&w, "k"); /* key in an array */
    json_array_end(&w);
    expect_misuse(&w);

    json_array_begin(&w);
    json_object_end(&w); /* mismatched end */
    expect_misuse(&w);

    json_object_begin(&w);
    json_key(&w, "k");
    json_object_end(&w); /* key without a value */
    expect_misuse(&w);

    json_object_begin(&w);
    json_key(&w, "k");
    json_key(&w, "k2"); /* two keys in a row */
    expect_misuse(&w);

    json_array_begin(&w); /* never closed */
    expect_misuse(&w);

    json_array_end(&w); /* end with nothing open */
    expect_misuse(&w);

    json_int(&w, 1);
    json_int(&w, 2); /* two top-level values */
    expect_misuse(&w);
}

static void test_writer_depth_limit(void **state)
{
    (void)state;
    JsonWriter w;
    json_writer_init(&w, 0);
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        json_array_begin(&w);
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        json_array_end(&w);
    char *text;
    size_t len;
    Err e = {0};
    assert_int_equal(json_writer_finish(&w, &text, &len, &e), ERR_OK);
    assert_int_equal(len, 2 * JSON_MAX_DEPTH);
    /* The reader takes what the writer can write. */
    JsonValue *v;
    assert_int_equal(json_parse(text, len, "deep", &v, &e), ERR_OK);
    json_value_free(v);
    mem_free(text);

    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        json_array_begin(&w);
    expect_misuse(&w);
}

// ---------------------------------------------------------------------------------------------
// Reader

static void test_reader_round_trip(void **state)
{
    (void)state;
    for (int pretty = 0; pretty <= 1; pretty++) {
        JsonWriter w;
        char *text;
        size_t len;
        Err e = {0};
        json_writer_init(&w, pretty);
        write_nested(&w);
        assert_int_equal(json_writer_finish(&w, &text, &len, &e), ERR_OK);
        JsonValue *v;
        assert_int_equal(json_parse(text, len, "rt", &v, &e), ERR_OK);
        assert_int_equal(v->type, JSON_OBJECT);
        assert_int_equal(v->n, 3);
        assert_string_equal(v->keys[0], "a");
        assert_string_equal(v->keys[1], "b");
        assert_string_equal(v->keys[2], "c");
        assert_true(json_get_number(v, "a", 0) == 1.0);
        const JsonValue *b = json_get(v, "b");
        assert_non_null(b);
        assert_int_equal(b->type, JSON_ARRAY);
        assert_int_equal(b->n, 4);
        assert_int_equal(b->items[1].type, JSON_STRING);
        assert_string_equal(b->items[1].string, "x");
        assert_int_equal(b->items[2].type, JSON_OBJECT);
        assert_int_equal(b->items[2].n, 0);
        assert_int_equal(b->items[3].type, JSON_ARRAY);
        assert_int_equal(b->items[3].n, 0);
        const JsonValue *c = json_get(v, "c");
        assert_int_equal(json_get(c, "d")->type, JSON_NULL);
        assert_int_equal(json_get(c, "e")->type, JSON_BOOL);
        assert_int_equal(json_get(c, "e")->boolean, 1);
        assert_int_equal(json_get(c, "f")->boolean, 0);
        assert_int_equal(json_get(c, "g")->type, JSON_NULL);
        json_value_free(v);
        mem_free(text);
    }
}

static void test_reader_escapes(void **state)
{
    (void)state;
    const char *in = "[\"\\u00e9\\u20AC\\ud83d\\ude00\\u0041\\n\\/\\\"\\\\\\b\\f\\r\\t\", "
                     "\"\xc3\xa9 raw\"]";
    JsonValue *v;
    Err e = {0};
    assert_int_equal(json_parse(in, strlen(in), "esc", &v, &e), ERR_OK);
    assert_string_equal(v->items[0].string, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                                            "A\n/\"\\\b\f\r\t");
    assert_string_equal(v->items[1].string, "\xc3\xa9 raw");
    json_value_free(v);
}

static void test_reader_values(void **state)
{
    (void)state;
    /* The text need not be NUL-terminated: only len bytes are read. */
    const char *in = " [0, -0, 1.5e2, -2E-2, 1e+2, true, false, null, {\"k\": []}] trailing";
    JsonValue *v;
    Err e = {0};
    assert_int_equal(json_parse(in, strlen(in) - strlen(" trailing"), "vals", &v, &e), ERR_OK);
    assert_int_equal(v->n, 9);
    assert_true(v->items[0].number == 0.0 && !signbit(v->items[0].number));
    assert_true(signbit(v->items[1].number));
    assert_true(v->items[2].number == 150.0);
    assert_true(v->items[3].number == -0.02);
    assert_true(v->items[4].number == 100.0);
    assert_int_equal(v->items[5].boolean, 1);
    assert_int_equal(v->items[6].type, JSON_BOOL);
    assert_int_equal(v->items[6].boolean, 0);
    assert_int_equal(v->items[7].type, JSON_NULL);
    assert_int_equal(json_get(&v->items[8], "k")->type, JSON_ARRAY);
    json_value_free(v);
}

static void test_reader_depth_limit(void **state)
{
    (void)state;
    char in[2 * JSON_MAX_DEPTH + 3];
    JsonValue *v;
    Err e = {0};
    for (int d = JSON_MAX_DEPTH; d <= JSON_MAX_DEPTH + 1; d++) {
        size_t n = 0;
        for (int i = 0; i < d; i++)
            in[n++] = '[';
        for (int i = 0; i < d; i++)
            in[n++] = ']';
        int rc = json_parse(in, n, "deep", &v, &e);
        if (d == JSON_MAX_DEPTH) {
            assert_int_equal(rc, ERR_OK);
            json_value_free(v);
        } else {
            assert_int_equal(rc, ERR_FORMAT);
            assert_null(v);
            assert_string_equal(e.msg, "deep:1:65: nesting deeper than 64 levels");
        }
    }
    /* The same through objects. */
    char obj[16 * (JSON_MAX_DEPTH + 1) + 16];
    size_t n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        n += (size_t)snprintf(obj + n, sizeof obj - n, "{\"k\":");
    n += (size_t)snprintf(obj + n, sizeof obj - n, "1");
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        obj[n++] = '}';
    assert_int_equal(json_parse(obj, n, "deep", &v, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "nesting deeper than 64"));
    /* 64 levels of objects are fine. */
    assert_int_equal(json_parse(obj + 5, n - 6, "deep", &v, &e), ERR_OK);
    json_value_free(v);
}

static void test_reader_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want; /* the whole message */
    } cases[] = {
        {"", "t:1:1: unexpected end of input: expected a value"},
        {"   \n ", "t:2:2: unexpected end of input: expected a value"},
        {"{\"a\" 1}", "t:1:6: expected ':' after key \"a\""},
        {"[1 2]", "t:1:4: expected ',' or ']'"},
        {"{\"a\":1 \"b\"}", "t:1:8: expected ',' or '}'"},
        {"{1:2}", "t:1:2: expected a string key"},
        {"[1,]", "t:1:4: unexpected ']': expected a value"},
        {"[1,\n 2,\n @]", "t:3:2: unexpected '@': expected a value"},
        {"+1", "t:1:1: unexpected '+': expected a value"},
        {"\x01", "t:1:1: unexpected 0x01: expected a value"},
        {"\n  tru", "t:2:3: invalid literal (expected true, false or null)"},
        {"nul", "t:1:1: invalid literal (expected true, false or null)"},
        {"[\"abc", "t:1:2: unterminated string"},
        {"\"abc\\\"", "t:1:1: unterminated string"},
        {"\"a\tb\"", "t:1:3: control character 0x09 in string (must be escaped)"},
        {"\"\\x\"", "t:1:2: invalid escape \\'x' in string"},
        {"\"\\u12G4\"", "t:1:2: invalid \\u escape: expected 4 hex digits"},
        {"\"\\u12\"", "t:1:2: invalid \\u escape: expected 4 hex digits"},
        {"\"x\\ud800\"", "t:1:3: high surrogate \\uD800 not followed by a low surrogate"},
        {"\"\\ud800\\u0041\"", "t:1:2: high surrogate \\uD800 not followed by a low surrogate"},
        {"\"\\udc00\"", "t:1:2: unpaired low surrogate \\uDC00"},
        {"\"\\u0000\"", "t:1:2: \\u0000 is not supported in strings"},
        {"-", "t:1:2: invalid number: expected a digit"},
        {"-a", "t:1:2: invalid number: expected a digit"},
        {"1.", "t:1:3: invalid number: expected a digit after '.'"},
        {"1.e5", "t:1:3: invalid number: expected a digit after '.'"},
        {"1e", "t:1:3: invalid number: expected a digit in exponent"},
        {"1e+", "t:1:4: invalid number: expected a digit in exponent"},
        {"[1e999]", "t:1:2: number out of range for a double"},
        {"01", "t:1:2: unexpected text after the JSON value"},
        {"{} x", "t:1:4: unexpected text after the JSON value"},
        {"\"\xc3\xa9\" x", "t:1:5: unexpected text after the JSON value"},
        {"{\"a\":", "t:1:6: unexpected end of input: expected a value"},
        {"[1", "t:1:3: unexpected end of input: expected ',' or ']'"},
        {"{\"a\":1", "t:1:7: unexpected end of input: expected ',' or '}'"},
        {"{", "t:1:2: unexpected end of input: expected a key"},
        {"{\"a\":1,", "t:1:8: unexpected end of input: expected a key"},
        {"{\"a\"", "t:1:5: expected ':' after key \"a\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        JsonValue *v = (JsonValue *)&v; /* not NULL, so the reset to NULL is checked */
        Err e = {0};
        int rc = json_parse(cases[i].in, strlen(cases[i].in), "t", &v, &e);
        if (rc != ERR_FORMAT || strcmp(e.msg, cases[i].want) != 0)
            print_error("case %zu: input \"%s\": rc %d, message \"%s\"\n", i, cases[i].in, rc,
                        e.msg);
        assert_int_equal(rc, ERR_FORMAT);
        assert_int_equal(e.code, ERR_FORMAT);
        assert_string_equal(e.msg, cases[i].want);
        assert_null(v);
    }
}

static void test_get_last_wins(void **state)
{
    (void)state;
    const char *in = "{\"a\": 1, \"b\": \"x\", \"a\": 2, \"s\": \"first\", \"s\": \"second\"}";
    JsonValue *v;
    Err e = {0};
    assert_int_equal(json_parse(in, strlen(in), "dup", &v, &e), ERR_OK);
    assert_int_equal(v->n, 5); /* every member is kept, in file order */
    assert_true(json_get_number(v, "a", -1) == 2.0);
    assert_string_equal(json_get_string(v, "s"), "second");
    assert_string_equal(json_get_string(v, "b"), "x");
    assert_null(json_get_string(v, "a")); /* wrong type */
    assert_true(json_get_number(v, "b", -1) == -1.0);
    assert_true(json_get_number(v, "missing", 7.5) == 7.5);
    assert_null(json_get(v, "missing"));
    assert_null(json_get(NULL, "a"));
    assert_null(json_get_string(NULL, "a"));
    assert_true(json_get_number(NULL, "a", 3) == 3.0);
    json_value_free(v);
    json_value_free(NULL);

    assert_int_equal(json_parse("[1]", 3, "arr", &v, &e), ERR_OK);
    assert_null(json_get(v, "a")); /* not an object */
    json_value_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_pretty, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_writer_compact, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_writer_escaping, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_writer_doubles, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_doubles_round_trip, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_writer_misuse, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_writer_depth_limit, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_reader_round_trip, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_reader_escapes, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_reader_values, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_reader_depth_limit, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_reader_errors, record_mem, check_mem),
        cmocka_unit_test_setup_teardown(test_get_last_wins, record_mem, check_mem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
