/* test_ingest_series.c: series assembly and QC flags (stages/ingest/series.c) on hand-made
 * headers: order along the normal whatever the file order, spacing from positions, duplicates,
 * and each QC flag raised by exactly the fault that should raise it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "stages/ingest/series.h"

/* The records' strings: one table for the whole test program. */
static StrTab T;

static StrRef ref(const char *s)
{
    StrRef r;
    assert_int_equal(strtab_addz(&T, s, &r, NULL), 0);
    return r;
}

/* A coronal slice (orientation 1\0\0\0\0\-1, normal along -y... cross((1,0,0),(0,0,-1)) = (0,1,0)).
 */
static FileRec slice(const char *series, const char *sop, double y, long instance, const char *path)
{
    FileRec r;
    memset(&r, 0, sizeof r);
    const char *slash = strrchr(path, '/');
    if (slash) {
        assert_int_equal(strtab_add(&T, path, (size_t)(slash - path), &r.dir, NULL), 0);
        r.name = ref(slash + 1);
    } else {
        r.name = ref(path);
    }
    r.patient_id = ref("P1");
    r.study_uid = ref("1.2.3");
    r.series_uid = ref(series);
    r.sop_uid = ref(sop);
    r.n_frames = 1;
    const double o[6] = {1, 0, 0, 0, 0, -1};
    memcpy(r.orientation, o, sizeof o);
    r.position[0] = -100;
    r.position[1] = y;
    r.position[2] = 80;
    r.spacing[0] = r.spacing[1] = 1;
    r.rows = r.columns = 64;
    r.instance = instance;
    return r;
}

static void test_order_spacing_duplicates(void **state)
{
    (void)state;
    FileRec r[7] = {
        slice("1.9", "s3", 4.0, 3, "b/3"), slice("1.9", "s1", 0.0, 1, "b/1"),
        slice("1.9", "s5", 8.0, 5, "b/5"), slice("1.9", "s2", 2.0, 2, "b/2"),
        slice("1.9", "s4", 6.0, 4, "b/4"), slice("1.9", "s2", 2.0, 2, "a/copy_of_2"),
        slice("1.8", "t1", 0.0, 1, "c/1"),
    };
    Series *s;
    int n;
    Err e = {0};
    assert_int_equal(series_assemble(r, 7, &T, &s, &n, &e), 0);
    assert_int_equal(n, 2);
    /* ordered by series UID: 1.8 (one slice) then 1.9 */
    assert_int_equal(s[0].n, 1);
    assert_true(s[0].qc == QC_SINGLE_SLICE);
    assert_int_equal(s[1].n, 5);
    assert_int_equal(s[1].qc, 0);
    assert_true(s[1].spacing_mm == 2.0);
    for (int i = 0; i < 5; i++) {
        assert_true(r[s[1].files[i]].position[1] == 2.0 * i);
        assert_true(s[1].along[i] == 2.0 * i);
    }
    /* the copy whose path sorts first is kept; the other is the duplicate */
    assert_string_equal(strtab_get(&T, r[3].skip), "duplicate");
    assert_string_equal(strtab_get(&T, r[5].skip), "");
    assert_string_equal(strtab_get(&T, r[3].reason), "same SOPInstanceUID as a/copy_of_2");
    series_free(s, n);
}

static uint32_t qc_of(FileRec *r, int n)
{
    Series *s;
    int ns;
    Err e = {0};
    assert_int_equal(series_assemble(r, n, &T, &s, &ns, &e), 0);
    assert_int_equal(ns, 1);
    uint32_t qc = s[0].qc;
    series_free(s, ns);
    return qc;
}

static void test_qc_flags(void **state)
{
    (void)state;
    FileRec missing[4] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                          slice("1", "c", 6, 4, "4"), slice("1", "d", 8, 5, "5")};
    assert_int_equal(qc_of(missing, 4), QC_MISSING_INSTANCE);
    FileRec uneven[4] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                         slice("1", "c", 4.4, 3, "3"), slice("1", "d", 6, 4, "4")};
    assert_int_equal(qc_of(uneven, 4), QC_UNEVEN_SPACING);
    FileRec tilt[3] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                       slice("1", "c", 4, 3, "3")};
    tilt[1].position[2] += 0.5; /* positions drift off the normal */
    tilt[2].position[2] += 1.0;
    assert_int_equal(qc_of(tilt, 3), QC_TILT);
    FileRec mixed[3] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                        slice("1", "c", 4, 3, "3")};
    const double axial[6] = {1, 0, 0, 0, 1, 0};
    memcpy(mixed[2].orientation, axial, sizeof axial);
    assert_true(qc_of(mixed, 3) & QC_MIXED_ORIENTATION);
    FileRec geometry[3] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                           slice("1", "c", 4, 3, "3")};
    geometry[1].rows = 128;
    assert_int_equal(qc_of(geometry, 3), QC_MIXED_GEOMETRY);
    char text[128];
    series_qc_text(QC_MISSING_INSTANCE | QC_TILT, text, sizeof text);
    assert_string_equal(text, "missing_instance,tilt");
}

static void test_unreadable_records_leave_a_hole(void **state)
{
    (void)state;
    FileRec r[3] = {slice("1", "a", 0, 1, "1"), slice("1", "b", 2, 2, "2"),
                    slice("1", "c", 4, 3, "3")};
    r[1].skip = ref("truncated");
    Series *s;
    int n;
    Err e = {0};
    assert_int_equal(series_assemble(r, 3, &T, &s, &n, &e), 0);
    /* the unreadable middle slice leaves a hole: the series is flagged, not silently thinner */
    assert_int_equal(s[0].n, 2);
    assert_int_equal(s[0].qc, QC_MISSING_INSTANCE);
    assert_true(s[0].spacing_mm == 4.0);
    series_free(s, n);
    size_t base = mem_bytes_in_use();
    for (long k = 1; k < 100; k++) {
        mem_fail_at(k);
        int rc = series_assemble(r, 3, &T, &s, &n, &e);
        mem_fail_at(0);
        if (rc == 0) {
            series_free(s, n);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(mem_bytes_in_use(), base);
    }
}

/* Frames of one multi-frame file are slices of its series, ordered along the normal whatever
 * their frame order; the same SOPInstanceUID and frame in another file is a duplicate. */
static void test_frames(void **state)
{
    (void)state;
    FileRec r[4] = {
        slice("2.1", "mf", 4.0, 1, "x/enh.dcm"), slice("2.1", "mf", 0.0, 1, "x/enh.dcm"),
        slice("2.1", "mf", 2.0, 1, "x/enh.dcm"), slice("2.1", "mf", 2.0, 1, "y/copy.dcm")};
    for (int i = 0; i < 4; i++)
        r[i].n_frames = 3;
    r[0].frame = 0;
    r[1].frame = 1;
    r[2].frame = 2;
    r[3].frame = 2;
    Series *s;
    int n;
    Err e = {0};
    assert_int_equal(series_assemble(r, 4, &T, &s, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].n, 3);
    assert_int_equal(s[0].qc, 0);
    assert_int_equal(s[0].files[0], 1); /* frame 2 is at y = 0 */
    assert_int_equal(s[0].files[1], 2);
    assert_int_equal(s[0].files[2], 0);
    assert_string_equal(strtab_get(&T, r[3].skip), "duplicate");
    assert_string_equal(strtab_get(&T, r[3].reason),
                        "frame 3: same SOPInstanceUID and frame as x/enh.dcm");
    series_free(s, n);
}

/* Paths compare as the strings dir "/" name would; interned strings are stored once. */
static void test_paths_and_strings(void **state)
{
    (void)state;
    const char *paths[] = {"a/b/c", "a/b.x/c", "a/b", "a", "ab/c", "a/bc", "a/b/c2"};
    size_t n = sizeof paths / sizeof *paths;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            FileRec x = slice("1", "a", 0, 1, paths[i]), y = slice("1", "a", 0, 1, paths[j]);
            int want = strcmp(paths[i], paths[j]), got = series_path_cmp(&T, &x, &y);
            assert_int_equal(want < 0, got < 0);
            assert_int_equal(want > 0, got > 0);
            char back[64];
            series_rec_path(&T, &x, back, sizeof back);
            assert_string_equal(back, paths[i]);
        }
    StrTab t;
    StrRef a, b, c, empty;
    assert_int_equal(strtab_init(&t, NULL), 0);
    for (int k = 0; k < 5000; k++) { /* grows the table and its slots */
        char text[32];
        snprintf(text, sizeof text, "uid.%d", k);
        assert_int_equal(strtab_addz(&t, text, &a, NULL), 0);
        assert_int_equal(strtab_addz(&t, text, &b, NULL), 0);
        assert_int_equal(a, b);
        assert_string_equal(strtab_get(&t, a), text);
    }
    assert_int_equal(strtab_addz(&t, "uid.17", &c, NULL), 0);
    assert_string_equal(strtab_get(&t, c), "uid.17");
    assert_int_equal(strtab_addz(&t, "", &empty, NULL), 0);
    assert_int_equal(empty, 0);
    strtab_free(&t);
}

int main(void)
{
    if (strtab_init(&T, NULL))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_paths_and_strings),
        cmocka_unit_test(test_order_spacing_duplicates),
        cmocka_unit_test(test_qc_flags),
        cmocka_unit_test(test_unreadable_records_leave_a_hole),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    strtab_free(&T);
    return failed;
}
