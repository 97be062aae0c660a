/* test_synth_cohort.c: the synthetic cohort's design (stages/synth/cohort.c).
 *
 * The default cohort must echo the paper exactly where the paper gives counts (30 patients, 21
 * bilateral, 1200 baseline slices, 900 labelled: 675 lesion and 225 normal) and statistically
 * where it gives distributions (vessel length +12.4 mm SD 3.2, branches +2.7 SD 1.1, about half
 * of the hips progressing). Every count is checked with the anatomy's own plane tests, the same
 * functions that label the DICOM slices. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "stages/synth/cohort.h"

static CohortParams defaults(uint64_t seed, int patients)
{
    return (CohortParams){.seed = seed,
                          .patients = patients,
                          .bilateral_fraction = 0.7,
                          .sites = 3,
                          .visits_min = 3,
                          .visits_max = 5,
                          .followup_days = 730,
                          .slices = 40,
                          .vessel_slices = 40,
                          .labelled_slices = 30,
                          .lesion_slice_fraction = 0.75,
                          .lesion_contrast = 1.0,
                          .progression_fraction = 0.5,
                          .treated_fraction = 1.0,
                          .vessel_length_change_mm = 12.4,
                          .vessel_length_change_sd_mm = 3.2,
                          .vessel_branch_change = 2.7,
                          .vessel_branch_change_sd = 1.1,
                          .fault_fraction = 0.001};
}

/* Baseline slices of pt that cut a head, and that cut a lesion of either hip. */
static void count_slices(const CohortPatient *pt, int n, int *heads, int *lesions)
{
    *heads = *lesions = 0;
    const SynthAnatomy *a = &pt->visits[0].anatomy;
    for (int s = 0; s < n; s++) {
        double y = cohort_slice_y(pt, 0, s);
        *heads += anatomy_plane_cuts_head(a, 0, y) || anatomy_plane_cuts_head(a, 1, y);
        *lesions += anatomy_plane_cuts_lesion(a, 0, y) || anatomy_plane_cuts_lesion(a, 1, y);
    }
}

static void test_default_cohort_mirrors_the_paper(void **state)
{
    (void)state;
    CohortParams p = defaults(20250727, 30);
    CohortPlan plan;
    Err e = {0};
    assert_int_equal(cohort_plan(&plan, &p, &e), 0);
    int bilateral = 0, heads_total = 0, lesions_total = 0, affected = 0, progressing = 0;
    int per_site[3] = {0, 0, 0};
    CohortPatient *pt = mem_alloc(sizeof *pt);
    for (int i = 0; i < 30; i++) {
        assert_int_equal(cohort_patient(&plan, i, pt, &e), 0);
        int heads, lesions;
        count_slices(pt, 40, &heads, &lesions);
        assert_int_equal(heads, 30);
        assert_int_equal(lesions, plan.lesion_slices[i]);
        heads_total += heads;
        lesions_total += lesions;
        bilateral += pt->affected[0] && pt->affected[1];
        per_site[pt->site]++;
        for (int h = 0; h < 2; h++) {
            affected += pt->affected[h];
            progressing += pt->progressed[h];
            /* a lesion only in an affected hip, and inside its head */
            const SynthHip *hip = &pt->visits[0].anatomy.hip[h];
            assert_int_equal(hip->lesion.present, pt->affected[h]);
            if (hip->lesion.present) {
                double c[3] = {hip->lesion.center[0], hip->lesion.center[1], hip->lesion.center[2]};
                assert_int_equal(anatomy_tissue_at(&pt->visits[0].anatomy, c) == TISSUE_LESION ||
                                     anatomy_tissue_at(&pt->visits[0].anatomy, c) == TISSUE_BAND,
                                 1);
            }
        }
        /* visits: increasing days within follow-up; grafting between the first two */
        assert_true(pt->n_visits >= 3 && pt->n_visits <= 5);
        for (int v = 1; v < pt->n_visits; v++)
            assert_true(pt->visits[v].day > pt->visits[v - 1].day);
        assert_true(pt->visits[pt->n_visits - 1].day <= 760);
        assert_true(pt->graft_day > 0 && pt->graft_day < pt->visits[1].day);
        assert_false(pt->visits[0].post_graft);
        assert_true(pt->visits[1].post_graft);
    }
    assert_int_equal(heads_total, 900);           /* labelled */
    assert_int_equal(lesions_total, 675);         /* lesion; 225 normal */
    assert_int_equal(30 * 40 - heads_total, 300); /* unlabelled */
    assert_int_equal(bilateral, 21);
    assert_int_equal(affected, 51);
    assert_int_equal(progressing, 26); /* round(0.5 x 51), all have >= 2 visits */
    for (int k = 0; k < 3; k++)
        assert_int_equal(per_site[k], 10);
    mem_free(pt);
    cohort_plan_free(&plan);
}

/* Vessel changes over a large cohort: sample means within 4 standard errors of the targets,
 * SDs within 10%. (Lengths are clamped from below so that new branches fit: a small upward
 * bias, far inside the tolerance.) */
static void test_vessel_change_distribution(void **state)
{
    (void)state;
    enum { N = 2000 };
    CohortParams p = defaults(7, N);
    CohortPlan plan;
    Err e = {0};
    assert_int_equal(cohort_plan(&plan, &p, &e), 0);
    CohortPatient *pt = mem_alloc(sizeof *pt);
    double sl = 0, sl2 = 0, sb = 0, sb2 = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(cohort_patient(&plan, i, pt, &e), 0);
        double dl = pt->vessel_length_add_mm, db = pt->vessel_branches_add;
        sl += dl;
        sl2 += dl * dl;
        sb += db;
        sb2 += db * db;
        assert_true(pt->vessel_branches_pre >= 4 && pt->vessel_branches_pre <= 8);
    }
    double ml = sl / N, sdl = sqrt(sl2 / N - ml * ml), mb = sb / N, sdb = sqrt(sb2 / N - mb * mb);
    assert_true(fabs(ml - 12.4) < 4 * 3.2 / sqrt(N));
    assert_true(fabs(sdl - 3.2) < 0.32);
    assert_true(fabs(mb - 2.7) < 4 * 1.1 / sqrt(N));
    assert_true(fabs(sdb - 1.1) < 0.15); /* rounding to whole branches adds about 1/12 */
    mem_free(pt);
    cohort_plan_free(&plan);
}

static void test_plan_counts_scale_and_repeat(void **state)
{
    (void)state;
    CohortParams p = defaults(99, 1000);
    p.bilateral_fraction = 0.33;
    p.sites = 7;
    CohortPlan a, b;
    Err e = {0};
    assert_int_equal(cohort_plan(&a, &p, &e), 0);
    assert_int_equal(cohort_plan(&b, &p, &e), 0);
    int bilateral = 0, lesion = 0, progress = 0;
    for (int i = 0; i < 1000; i++) {
        bilateral += a.bilateral[i];
        lesion += a.lesion_slices[i];
        progress += a.progresses[i][0] + a.progresses[i][1];
        assert_true(a.progresses[i][1] <= a.bilateral[i]);
    }
    assert_int_equal(bilateral, 330);
    assert_int_equal(lesion, 22500);
    assert_int_equal(progress, 665); /* round(0.5 x 1330) */
    assert_memory_equal(a.lesion_slices, b.lesion_slices, 1000 * sizeof *a.lesion_slices);
    assert_memory_equal(a.site, b.site, 1000 * sizeof *a.site);
    CohortPatient *x = mem_alloc(sizeof *x), *y = mem_alloc(sizeof *y);
    assert_int_equal(cohort_patient(&a, 517, x, &e), 0);
    assert_int_equal(cohort_patient(&b, 517, y, &e), 0);
    assert_memory_equal(x, y, sizeof *x);
    mem_free(x);
    mem_free(y);
    cohort_plan_free(&a);
    cohort_plan_free(&b);
}

static void test_impossible_designs_are_config_errors(void **state)
{
    (void)state;
    CohortPlan plan;
    Err e = {0};
    CohortParams p = defaults(1, 10);
    p.labelled_slices = 31; /* 9 outside: cannot split evenly */
    assert_int_equal(cohort_plan(&plan, &p, &e), ERR_CONFIG);
    assert_non_null(strstr(e.msg, "synth.labelled_slices"));
    p = defaults(1, 10);
    p.lesion_slice_fraction = 0.99; /* 29.7 of 30 slices: no margin in the head */
    assert_int_equal(cohort_plan(&plan, &p, &e), ERR_CONFIG);
    assert_non_null(strstr(e.msg, "synth.lesion_slice_fraction"));
    p = defaults(1, 10);
    p.visits_min = 4;
    p.visits_max = 3;
    assert_int_equal(cohort_plan(&plan, &p, &e), ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_cohort_mirrors_the_paper),
        cmocka_unit_test(test_vessel_change_distribution),
        cmocka_unit_test(test_plan_counts_scale_and_repeat),
        cmocka_unit_test(test_impossible_designs_are_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
