/* test_split.c: the fold assignment of `onfh split` (stages/split/folds.c) and splits.json
 * (lib/cohort/splits.c): grouping, stratification, determinism, refusals, tamper detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cohort/splits.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "stages/split/folds.h"

#define PATIENTS 30
#define MAXN     (PATIENTS * 40)

/* A cohort like the paper's: 30 patients, 20..40 labelled slices each, about 3:1 lesion. */
static int make_cohort(int32_t *group, int32_t *label, uint64_t seed)
{
    Philox p;
    philox_init(&p, seed, PHILOX_TEST, 0);
    int n = 0;
    for (int g = 0; g < PATIENTS; g++) {
        int k = 20 + (int)philox_below(&p, 21);
        for (int j = 0; j < k; j++) {
            group[n] = 100 + 7 * g; /* ids need not be dense */
            label[n++] = philox_uniform(&p) < 0.75;
        }
    }
    return n;
}

static void test_grouped_stratified(void **state)
{
    (void)state;
    static int32_t group[MAXN], label[MAXN];
    static int8_t part[5 * MAXN], again[5 * MAXN];
    int n = make_cohort(group, label, 1);
    Err e = {0};
    assert_int_equal(folds_assign(n, group, label, 5, 0.15, 42, part, &e), 0);
    assert_int_equal(folds_check(n, group, label, 5, part, 0, &e), 0);
    int total[2] = {0, 0};
    for (int i = 0; i < n; i++)
        total[label[i]]++;
    for (int f = 0; f < 5; f++) {
        int cnt[3][2] = {{0}};
        for (int i = 0; i < n; i++)
            cnt[part[f * n + i]][label[i]]++;
        /* each test fold holds a fifth of each class, give or take one patient's slices */
        for (int c = 0; c < 2; c++)
            assert_true(abs(cnt[PART_TEST][c] - total[c] / 5) <= 40);
        double val = cnt[PART_VAL][0] + cnt[PART_VAL][1];
        double rest = val + cnt[PART_TRAIN][0] + cnt[PART_TRAIN][1];
        assert_true(val / rest > 0.08 && val / rest < 0.25);
    }
    /* the same seed gives the same split; another seed another */
    assert_int_equal(folds_assign(n, group, label, 5, 0.15, 42, again, &e), 0);
    assert_memory_equal(part, again, (size_t)5 * n);
    assert_int_equal(folds_assign(n, group, label, 5, 0.15, 43, again, &e), 0);
    assert_true(memcmp(part, again, (size_t)5 * n) != 0);
}

static void test_overlap_is_an_error(void **state)
{
    (void)state;
    static int32_t group[MAXN], label[MAXN];
    static int8_t part[5 * MAXN];
    int n = make_cohort(group, label, 2);
    Err e = {0};
    assert_int_equal(folds_assign(n, group, label, 5, 0.15, 1, part, &e), 0);
    /* move one slice of a training patient into validation */
    for (int i = 0; i < n; i++)
        if (part[i] == PART_TRAIN) {
            part[i] = PART_VAL;
            break;
        }
    assert_int_not_equal(folds_check(n, group, label, 5, part, 0, &e), 0);
    assert_non_null(strstr(e.msg, "fold 0: patient"));
    /* a slice-level split allows it (the paper's protocol) */
    assert_int_equal(folds_check(n, group, label, 5, part, 1, &e), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    int32_t group[8] = {1, 1, 2, 2, 3, 3, 4, 4}, label[8] = {1, 1, 1, 1, 1, 0, 1, 1};
    int8_t part[5 * 8];
    Err e = {0};
    assert_int_not_equal(folds_assign(8, group, label, 5, 0.2, 1, part, &e), 0);
    assert_non_null(strstr(e.msg, "only 4 groups"));
    memset(&e, 0, sizeof e);
    assert_int_equal(folds_assign(8, group, label, 2, 0.4, 1, part, &e), 0);
    assert_int_not_equal(folds_check(8, group, label, 2, part, 0, &e), 0);
    assert_non_null(strstr(e.msg, "no slice labelled 0"));
}

static void test_splits_file(void **state)
{
    (void)state;
    static int32_t group[MAXN], label[MAXN];
    int n = make_cohort(group, label, 3);
    Splits s = {.folds = 5, .val_fraction = 0.15, .seed = 9, .n = n};
    memset(s.cohort_sha256, 'a', 64);
    s.rows = mem_alloc((size_t)n * sizeof *s.rows);
    s.part = mem_alloc((size_t)5 * n);
    for (int i = 0; i < n; i++)
        s.rows[i] = 3 * i + 1;
    Err e = {0};
    assert_int_equal(folds_assign(n, group, label, 5, 0.15, 9, s.part, &e), 0);
    splits_hash(&s);
    char path[512];
    const char *tmp = getenv("ONFH_TEST_TMP");
    snprintf(path, sizeof path, "%s/splits.%ld.json", tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(splits_write(path, &s, &e), 0);
    Splits r;
    if (splits_read(path, &r, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(r.sha256, s.sha256);
    assert_int_equal(r.n, n);
    assert_memory_equal(r.rows, s.rows, (size_t)n * sizeof *s.rows);
    assert_memory_equal(r.part, s.part, (size_t)5 * n);
    int32_t *rows;
    int m;
    assert_int_equal(splits_rows(&r, 2, SPLIT_TEST, &rows, &m, &e), 0);
    assert_true(m > 0 && m < n);
    mem_free(rows);
    splits_free(&r);
    /* move one slice between partitions by editing the file: refused */
    char *text;
    size_t len;
    assert_int_equal(file_read_all(path, &text, &len, &e), 0);
    char *val = strstr(text, "\"val\": [");
    assert_non_null(val);
    char *first = strchr(val, '[') + 1;
    while (*first == ' ' || *first == '\n')
        first++;
    char *end = strchr(first, ',');
    /* drop the first validation row: the fold no longer places that slice */
    memmove(first, end + 1, strlen(end + 1) + 1);
    assert_int_equal(file_write_atomic(path, text, strlen(text), &e), 0);
    mem_free(text);
    memset(&e, 0, sizeof e);
    assert_int_not_equal(splits_read(path, &r, &e), 0);
    assert_non_null(strstr(e.msg, path));
    /* a changed parameter with intact lists: the hash no longer matches */
    assert_int_equal(splits_write(path, &s, &e), 0);
    assert_int_equal(file_read_all(path, &text, &len, &e), 0);
    char *vf = strstr(text, "0.15");
    assert_non_null(vf);
    vf[3] = '6';
    assert_int_equal(file_write_atomic(path, text, strlen(text), &e), 0);
    mem_free(text);
    memset(&e, 0, sizeof e);
    assert_int_not_equal(splits_read(path, &r, &e), 0);
    assert_non_null(strstr(e.msg, "was edited"));
    unlink(path);
    splits_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_stratified),
        cmocka_unit_test(test_overlap_is_an_error),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_splits_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
