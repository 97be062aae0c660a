/* bench_vessels.c N [DIR]: the vessels stage's per-series chain (stages/vessels/measure.h: Frangi
 * at the default four scales, hysteresis, small objects, Lee thinning, graph, pruning, end-point
 * extension, junction correction) on N synthetic trees rendered as the default cohort renders its
 * vessel series (64 x 64 x 40 voxels of 0.6 mm, Rician noise at SNR 26; the trees of
 * test_vessel_accuracy). Prints "N nx ny nz cpu_ms_per_series branches_total
 * skeleton_voxels_total": CPU time of this one process, the per-core figure on a shared machine.
 * With DIR, writes each volume as DIR/vol_NNN.f32 (float32, x fastest) for
 * bench/peer_skimage_vessels.py to do the same work on the same voxels. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/util/mem.h"
#include "stages/synth/cohort.h"
#include "stages/synth/vessel_tree.h"
#include "stages/vessels/measure.h"

enum { NX = 64, NZ = 40 };

int main(int argc, char **argv)
{
    int trees = argc > 1 ? atoi(argv[1]) : 20;
    const char *dir = argc > 2 ? argv[2] : NULL;
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
    double cpu = 0.0;
    int branches = 0;
    int64_t skel_vox = 0;
    for (int i = 0; i < trees; i++) {
        Philox rng;
        philox_init(&rng, 20250727, PHILOX_TEST, (uint64_t)i);
        VesselTree t = {0};
        Err e = {0};
        vp.initial_branches = 4 + i % 5;
        if (vessel_tree_draw(&t, &vp, &rng, &e) ||
            (i % 2 && vessel_tree_grow(&t, 1 + i % 4, 12.4, &vp, &rng, &e)))
            return fprintf(stderr, "bench_vessels: tree %d: %s\n", i, e.msg), 1;
        vessel_tree_render(&t, dims, sp, 26.0, 3000.0, 20250727, (uint64_t)i, u);
        vessel_tree_free(&t);
        for (size_t k = 0; k < n; k++)
            f[k] = u[k];
        if (dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/vol_%03d.f32", dir, i);
            FILE *fp = fopen(path, "wb");
            if (!fp || fwrite(f, sizeof *f, n, fp) != n || fclose(fp))
                return fprintf(stderr, "bench_vessels: cannot write %s\n", path), 1;
        }
        VesselResult r;
        clock_t c0 = clock();
        if (vessel_measure(f, dims, sp, &me, &r, NULL, &e))
            return fprintf(stderr, "bench_vessels: tree %d: %s\n", i, e.msg), 1;
        cpu += (double)(clock() - c0) / CLOCKS_PER_SEC;
        branches += r.m.branches;
        skel_vox += r.skeleton_voxels;
    }
    printf("%d %d %d %d %.2f %d %lld\n", trees, NX, NX, NZ, 1000.0 * cpu / trees, branches,
           (long long)skel_vox);
    mem_free(u), mem_free(f);
    return 0;
}
