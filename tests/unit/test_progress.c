/* test_progress.c: progress bar and progress lines (lib/util/progress.c), driven by a fake
 * clock so rates, ETAs and the line interval are exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/progress.h"

static char lines[16][256];
static int n_lines;

static void sink(void *ctx, const char *line)
{
    (void)ctx;
    if (n_lines < 16)
        snprintf(lines[n_lines++], sizeof lines[0], "%s", line);
}

static void test_format(void **state)
{
    (void)state;
    Progress p;
    char out[256];
    progress_start(&p, "ingest", 100, PROGRESS_OFF, 10, NULL, NULL, NULL, 1000.0);
    p.done = 45;
    progress_format(&p, 1009.0, 0, out, sizeof out);
    assert_string_equal(out, "ingest: 45/100 (45%), 5/s, ETA 0:11");
    progress_format(&p, 1009.0, 1, out, sizeof out);
    assert_string_equal(out, "ingest [##########..............] 45/100  45% 5/s ETA 0:11");
    p.done = 1;
    progress_format(&p, 1000.0 + 7200, 0, out, sizeof out);
    assert_string_equal(out, "ingest: 1/100 (1%), 0.000139/s, ETA 198:00:00");
    Progress u;
    progress_start(&u, "files", 0, PROGRESS_OFF, 10, NULL, NULL, NULL, 0.0);
    u.done = 30;
    progress_format(&u, 3.0, 0, out, sizeof out);
    assert_string_equal(out, "files: 30, 10/s");
}

static void test_lines_every_interval(void **state)
{
    (void)state;
    Progress p;
    n_lines = 0;
    progress_start(&p, "hash", 10, PROGRESS_LINES, 5, NULL, sink, NULL, 0.0);
    for (int i = 1; i <= 10; i++)
        progress_update(&p, (uint64_t)i, (double)i * 1.5); /* 1.5 s per item */
    progress_finish(&p, 15.0);
    /* lines at t = 6 (4 done), 12 (8 done), then the final line */
    assert_int_equal(n_lines, 3);
    assert_string_equal(lines[0], "hash: 4/10 (40%), 0.667/s, ETA 0:09");
    assert_string_equal(lines[1], "hash: 8/10 (80%), 0.667/s, ETA 0:03");
    assert_string_equal(lines[2], "hash: 10/10 in 15.0 s (0.667/s)");
    progress_update(&p, 11, 100.0); /* finished: silent */
    assert_int_equal(n_lines, 3);
}

static void test_bar_draws_and_clears(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *tty = open_memstream(&buf, &len);
    Progress p;
    progress_start(&p, "train", 4, PROGRESS_BAR, 10, tty, NULL, NULL, 0.0);
    progress_update(&p, 1, 0.05); /* within 0.1 s: not redrawn */
    progress_update(&p, 2, 1.0);
    progress_clear(&p);
    progress_finish(&p, 2.0);
    fclose(tty);
    const char *expect = "\r\033[Ktrain [........................] 0/4   0% 0/s ETA ?"
                         "\r\033[Ktrain [############............] 2/4  50% 2/s ETA 0:01"
                         "\r\033[K"
                         "\r\033[Ktrain: 2/4 in 2.0 s (1/s)\n";
    assert_string_equal(buf, expect);
    free(buf);
}

static void test_off_modes(void **state)
{
    (void)state;
    Progress p;
    n_lines = 0;
    progress_start(&p, "x", 3, PROGRESS_BAR, 1, NULL, sink, NULL, 0.0); /* bar without a tty */
    assert_int_equal(p.mode, PROGRESS_OFF);
    progress_update(&p, 3, 50.0);
    progress_finish(&p, 60.0);
    assert_int_equal(n_lines, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_lines_every_interval),
        cmocka_unit_test(test_bar_draws_and_clears),
        cmocka_unit_test(test_off_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
