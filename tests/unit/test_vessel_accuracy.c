/* test_vessel_accuracy.c: the vessels stage's per-series chain (stages/vessels/measure.h, with
 * the default vessels.* parameters) on synthetic trees from the synth stage's generator
 * (stages/synth/vessel_tree.h), drawn and grown as the synthetic cohort does (4..8 branches,
 * half of them grown by a graft), rendered as the default cohort renders them (64 x 64 x 40
 * voxels of 0.6 mm, Rician noise at SNR 26), against the generator's exact branch count and
 * length.
 *
 * The goal is length within 5% and branches within +-1 for 95% of series. The test
 * prints what it finds; on these 40 trees: length within 5% 39, within 10% 39, mean bias +0.5%,
 * branches within +-1 38. On 120 trees (TREES = 120) the same method gives length within 5% for
 * 116 (97%), within 10% for 119, bias +0.4%, branches within +-1 for 116 (97%). Without the
 * junction correction (vessels.junction_shift_max_mm = 0) it was 112 within 5% and a bias of
 * -1.9%: thinning moves acute junctions out to where the vessels part (bench/vessel_bias.c). The
 * assertions hold the method to the 95% on both counts (38 of 40), so a change that
 * makes it worse fails here.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "stages/synth/cohort.h"
#include "stages/synth/vessel_tree.h"
#include "stages/vessels/measure.h"

enum { TREES = 40, NX = 64, NZ = 40 };

static void test_synthetic_trees(void **state)
{
    (void)state;
    const double vox = 0.6;
    VesselParams vp = {{NX * vox, NX * vox, NZ * vox}, 0, COHORT_MIN_BRANCH_MM, 0.8};
    /* the defaults of pipeline/config_keys.c's vessels.* keys */
    VesselMethod me = {{0.3, 0.5, 0.7, 0.9}, 4,  0.5, 0.5, 0, 0.05, 0.2, 1.0, 2.0, 3.0,
                       {1.0, 3.5},           3.0};
    int dims[3] = {NX, NX, NZ};
    double sp[3] = {vox, vox, vox};
    size_t n = (size_t)NX * NX * NZ;
    uint16_t *u = mem_alloc(n * sizeof *u);
    float *f = mem_alloc(n * sizeof *f);
    int within5 = 0, within10 = 0, branches_ok = 0, done = 0;
    double bias = 0.0;
    for (int i = 0; i < TREES; i++) {
        Philox rng;
        philox_init(&rng, 20250727, PHILOX_TEST, (uint64_t)i);
        VesselTree t = {0};
        Err e = {0};
        vp.initial_branches = 4 + i % 5;
        if (vessel_tree_draw(&t, &vp, &rng, &e))
            fail_msg("tree %d: %s", i, e.msg);
        if (i % 2 && vessel_tree_grow(&t, 1 + i % 4, 12.4, &vp, &rng, &e))
            fail_msg("tree %d: grow: %s", i, e.msg);
        vessel_tree_render(&t, dims, sp, 26.0, 3000.0, 20250727, (uint64_t)i, u);
        for (size_t k = 0; k < n; k++)
            f[k] = u[k];
        VesselResult r;
        assert_int_equal(vessel_measure(f, dims, sp, &me, &r, NULL, &e), 0);
        double truth = vessel_tree_length_mm(&t), rel = (r.m.length_mm - truth) / truth;
        int db = r.m.branches - vessel_tree_branches(&t);
        within5 += fabs(rel) <= 0.05;
        within10 += fabs(rel) <= 0.10;
        branches_ok += abs(db) <= 1;
        bias += rel / TREES;
        done++;
        vessel_tree_free(&t);
    }
    printf("# %d trees: length within 5%%: %d, within 10%%: %d, mean bias %+.1f%%; branches "
           "within +-1: %d\n",
           done, within5, within10, 100 * bias, branches_ok);
    assert_true(branches_ok >= 38); /* 95%: the goal */
    assert_true(within5 >= 38);     /* 95%: the goal */
    assert_true(within10 >= 38);    /* 95% */
    assert_true(fabs(bias) < 0.03);
    mem_free(u), mem_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_synthetic_trees)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
