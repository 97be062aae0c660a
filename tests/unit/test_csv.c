/* test_csv.c: CSV reading (lib/util/csv.c): quoting, line ends, line numbers in errors,
 * allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/csv.h"
#include "lib/util/mem.h"

static int parse(Csv *c, const char *text, Err *e)
{
    return csv_parse(c, "t.csv", text, strlen(text), e);
}

static void test_fields_and_quotes(void **state)
{
    (void)state;
    Csv c;
    Err e = {0};
    const char *text = "id,label,note\r\n1.2.3,lesion,\"a, b\"\r\n\n4.5,normal,\"say \"\"hi\"\"\"\n"
                       "6,,\"two\nlines\"\n7,x,last";
    assert_int_equal(parse(&c, text, &e), 0);
    assert_int_equal(c.header.n, 3);
    assert_int_equal(c.n_rows, 4);
    assert_string_equal(c.rows[0].field[2], "a, b");
    assert_int_equal(c.rows[0].line, 2);
    assert_string_equal(c.rows[1].field[2], "say \"hi\"");
    assert_int_equal(c.rows[1].line, 4);
    assert_string_equal(c.rows[2].field[1], "");
    assert_string_equal(c.rows[2].field[2], "two\nlines");
    assert_int_equal(c.rows[3].line, 7);
    assert_string_equal(c.rows[3].field[2], "last");
    int col;
    assert_int_equal(csv_column(&c, "label", &col, &e), 0);
    assert_int_equal(col, 1);
    assert_int_equal(csv_column(&c, "missing", &col, &e), ERR_FORMAT);
    assert_string_equal(e.msg, "t.csv:1: no column \"missing\" in the header");
    csv_free(&c);
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    Csv c;
    Err e = {0};
    assert_int_equal(parse(&c, "a,b\n1,2\n3\n", &e), ERR_FORMAT);
    assert_string_equal(e.msg, "t.csv:3: 1 field, expected 2 as in the header");
    assert_int_equal(parse(&c, "a,b\n1,\"open\n", &e), ERR_FORMAT);
    assert_string_equal(e.msg, "t.csv:2: a quoted field is not closed");
    assert_int_equal(parse(&c, "\n\n", &e), ERR_FORMAT);
    assert_string_equal(e.msg, "t.csv: empty, expected a header row");
}

static void test_allocation_failures(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    for (long n = 1; n < 1000; n++) {
        Csv c;
        Err e = {0};
        mem_fail_at(n);
        int rc = parse(&c, "a,b\n1,\"x\"\n2,y\n", &e);
        mem_fail_at(0);
        if (rc == 0) {
            csv_free(&c);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(mem_bytes_in_use(), base);
    }
    assert_int_equal(mem_bytes_in_use(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_quotes),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
