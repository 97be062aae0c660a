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

/* A coronal slice (orientation 1\0\0\0\0\-1, normal along -y... cross((1,0,0),(0,0,-1)) = (0,1,0)).
 */
static FileRec slice(const char *series, const char *sop, double y, long instance, const char *path)
{
    FileRec r;
    memset(&r, 0, sizeof r);
    snprintf(r.path, sizeof r.path, "%s", path);
    snprintf(r.patient_id, sizeof r.patient_id, "P1");
    snprintf(r.study_uid, sizeof r.study_uid, "1.2.3");
    snprintf(r.series_uid, sizeof r.series_uid, "%s", series);
    snprintf(r.sop_uid, sizeof r.sop_uid, "%s", sop);
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
    assert_int_equal(series_assemble(r, 7, &s, &n, &e), 0);
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
    assert_string_equal(r[3].skip, "duplicate");
    assert_string_equal(r[5].skip, "");
    assert_string_equal(r[3].reason, "same SOPInstanceUID as a/copy_of_2");
    series_free(s, n);
}

static uint32_t qc_of(FileRec *r, int n)
{
    Series *s;
    int ns;
    Err e = {0};
    assert_int_equal(series_assemble(r, n, &s, &ns, &e), 0);
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
    snprintf(r[1].skip, sizeof r[1].skip, "truncated");
    Series *s;
    int n;
    Err e = {0};
    assert_int_equal(series_assemble(r, 3, &s, &n, &e), 0);
    /* the unreadable middle slice leaves a hole: the series is flagged, not silently thinner */
    assert_int_equal(s[0].n, 2);
    assert_int_equal(s[0].qc, QC_MISSING_INSTANCE);
    assert_true(s[0].spacing_mm == 4.0);
    series_free(s, n);
    size_t base = mem_bytes_in_use();
    for (long k = 1; k < 100; k++) {
        mem_fail_at(k);
        int rc = series_assemble(r, 3, &s, &n, &e);
        mem_fail_at(0);
        if (rc == 0) {
            series_free(s, n);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(mem_bytes_in_use(), base);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_spacing_duplicates),
        cmocka_unit_test(test_qc_flags),
        cmocka_unit_test(test_unreadable_records_leave_a_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
