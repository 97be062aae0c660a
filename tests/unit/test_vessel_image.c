/* test_vessel_image.c: the vessel parts of lib/image (vesselness, components, thinning,
 * skeleton graph), each against an answer known without running it:
 *   - Frangi: on a Gaussian tube I = exp(-r^2 / 2 s0^2) the scale-normalised Hessian across the
 *     tube at its axis is -sigma^2 s0^2 / (s0^2 + sigma^2)^2 (smoothing a Gaussian by a Gaussian
 *     adds variances), along it 0; the same tube sampled on anisotropic voxels gives the same
 *     numbers (sigmas are converted per axis); a tube scores higher than a blob or a plate;
 *   - hysteresis keeps exactly the weak components that touch a strong voxel; small objects go;
 *   - thinning: scikit-image's own docstring example (2D); a 3D box thins to one line, a ring
 *     to a ring (components and holes kept), and the skeleton is one voxel wide;
 *   - skeleton graph: hand-drawn skeletons with known branches, junctions, lengths and types,
 *     spacing-aware lengths, spur pruning and joining, isolated cycles, the end-point
 *     extension and the junction correction. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/image/components.h"
#include "lib/image/skelgraph.h"
#include "lib/image/thin.h"
#include "lib/image/vesselness.h"
#include "lib/util/mem.h"

#define IDX(x, y, z, nx, ny) (((size_t)(z) * (ny) + (y)) * (nx) + (x))

/* A Gaussian tube along x through the volume's centre, profile sd s0 mm. */
static float *tube_x(const int d[3], const double sp[3], double s0)
{
    float *v = mem_alloc((size_t)d[0] * d[1] * d[2] * sizeof *v);
    double cy = 0.5 * (d[1] - 1) * sp[1], cz = 0.5 * (d[2] - 1) * sp[2];
    for (int z = 0; z < d[2]; z++)
        for (int y = 0; y < d[1]; y++)
            for (int x = 0; x < d[0]; x++) {
                double dy = y * sp[1] - cy, dz = z * sp[2] - cz;
                v[IDX(x, y, z, d[0], d[1])] =
                    (float)(100.0 * exp(-(dy * dy + dz * dz) / (2 * s0 * s0)));
            }
    return v;
}

static void hessian_axis(const int d[3], const double sp[3], double s0, double sigma, double l[3])
{
    float *v = tube_x(d, sp, s0), *h[6];
    size_t n = (size_t)d[0] * d[1] * d[2];
    for (int c = 0; c < 6; c++)
        h[c] = mem_alloc(n * sizeof *h[c]);
    Err e = {0};
    assert_int_equal(hessian_3d(v, d, sp, sigma, h, &e), 0);
    size_t i = IDX(d[0] / 2, (d[1] - 1) / 2, (d[2] - 1) / 2, d[0], d[1]);
    double a[6];
    for (int c = 0; c < 6; c++)
        a[c] = h[c][i] / 100.0;
    eig3_sym(a, l);
    for (int c = 0; c < 6; c++)
        mem_free(h[c]);
    mem_free(v);
}

static void test_frangi_tube_analytic(void **state)
{
    (void)state;
    double s0 = 1.0;
    for (int k = 0; k < 3; k++) {
        double sigma = (double[]){0.7, 1.0, 1.4}[k];
        double want = -sigma * sigma * s0 * s0 / pow(s0 * s0 + sigma * sigma, 2);
        double l[3];
        /* isotropic 0.25 mm voxels (odd sizes put a voxel on the axis) */
        hessian_axis((int[]){41, 41, 41}, (double[]){0.25, 0.25, 0.25}, s0, sigma, l);
        assert_true(fabs(l[0]) < 1e-3);
        assert_true(fabs(l[1] - want) < 0.01 * fabs(want));
        assert_true(fabs(l[2] - want) < 0.01 * fabs(want));
        /* anisotropic: 0.25 mm in-plane, 0.5 mm between slices (z), same answer */
        hessian_axis((int[]){41, 41, 21}, (double[]){0.25, 0.25, 0.5}, s0, sigma, l);
        assert_true(fabs(l[1] - want) < 0.02 * fabs(want));
        assert_true(fabs(l[2] - want) < 0.02 * fabs(want));
    }
    /* the normalised response peaks at sigma = s0 in 3D (d/dsigma of sigma^2 / (s0^2 +
     * sigma^2)^2 vanishes there): the scale map picks the middle of three scales */
    int d[3] = {31, 31, 31};
    double sp[3] = {0.25, 0.25, 0.25}, sig[3] = {0.5, 1.0, 2.0};
    float *v = tube_x(d, sp, s0), *out = mem_alloc(31 * 31 * 31 * sizeof *out);
    uint8_t *scale = mem_alloc(31 * 31 * 31);
    FrangiParams p = {sig, 3, 0.5, 0.5, 10}; /* a fixed c (contrast 100): V grows with S */
    Err e = {0};
    assert_int_equal(frangi_3d(v, d, sp, &p, out, scale, &e), 0);
    size_t c = IDX(15, 15, 15, 31, 31);
    assert_int_equal(scale[c], 1);
    /* on the axis Ra = 1 and Rb = 0: V = (1 - exp(-1 / 2 alpha^2)) (1 - exp(-S^2 / 2 c^2)),
     * S = sqrt(2) 100 / 4 */
    double s = sqrt(2.0) * 25.0;
    assert_true(fabs(out[c] - (1 - exp(-2.0)) * (1 - exp(-s * s / 200.0))) < 0.01);
    /* far from the tube (corner): nothing */
    assert_true(out[IDX(15, 1, 1, 31, 31)] < 0.01f);
    mem_free(v), mem_free(out), mem_free(scale);
}

/* A tube, a blob and a plate of the same contrast: vesselness ranks them tube >> plate, blob. */
static void test_frangi_shapes(void **state)
{
    (void)state;
    enum { N = 33 };
    int d[3] = {N, N, N};
    double sp[3] = {0.5, 0.5, 0.5}, sig[1] = {1.0};
    float *v = mem_alloc(N * N * N * sizeof *v), *out = mem_alloc(N * N * N * sizeof *out);
    FrangiParams p = {sig, 1, 0.5, 0.5, 0.1};
    Err e = {0};
    double score[3];
    for (int shape = 0; shape < 3; shape++) {
        for (int z = 0; z < N; z++)
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) {
                    double dx = (x - 16) * 0.5, dy = (y - 16) * 0.5, dz = (z - 16) * 0.5;
                    double r2 = shape == 0   ? dy * dy + dz * dz
                                : shape == 1 ? dx * dx + dy * dy + dz * dz
                                             : dz * dz;
                    v[IDX(x, y, z, N, N)] = (float)exp(-r2 / 2.0);
                }
        assert_int_equal(frangi_3d(v, d, sp, &p, out, NULL, &e), 0);
        score[shape] = out[IDX(16, 16, 16, N, N)];
    }
    /* sigma = s0 = 1 mm: the tube's lambda2 = lambda3 = -1/4 (Ra = 1, Rb = 0), the blob's
     * three eigenvalues -(1/2)^1.5 / 2 each (Ra = Rb = 1), the plate's one -1/4 (Ra = 0);
     * 2 c^2 = 0.02 */
    double sv = 1 - exp(-0.125 / 0.02), sb = 1 - exp(-3 * 0.03125 / 0.02);
    assert_true(fabs(score[0] - (1 - exp(-2.0)) * sv) < 0.01);
    assert_true(fabs(score[1] - (1 - exp(-2.0)) * exp(-2.0) * sb) < 0.01);
    assert_true(score[2] < 0.01);
    /* a dark tube on a bright background is no bright vessel */
    for (size_t i = 0; i < (size_t)N * N * N; i++)
        v[i] = 0;
    for (int z = 0; z < N; z++)
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                double dy = (y - 16) * 0.5, dz = (z - 16) * 0.5;
                v[IDX(x, y, z, N, N)] = (float)(1.0 - exp(-(dy * dy + dz * dz) / 2.0));
            }
    assert_int_equal(frangi_3d(v, d, sp, &p, out, NULL, &e), 0);
    assert_true(out[IDX(16, 16, 16, N, N)] == 0.0f);
    /* 2D: a bright line */
    int d2[2] = {N, N};
    double sp2[2] = {0.5, 0.5};
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            v[y * N + x] = (float)exp(-((y - 16) * 0.5) * ((y - 16) * 0.5) / 2.0);
    assert_int_equal(frangi_2d(v, d2, sp2, &p, out, NULL, &e), 0);
    assert_true(out[16 * N + 16] > 0.3f);
    assert_true(out[2 * N + 16] < 0.05f * out[16 * N + 16]);
    /* bad input is refused with a message */
    double bad[3] = {0.5, 0, 0.5};
    assert_int_not_equal(frangi_3d(v, d, bad, &p, out, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "spacing"));
    mem_free(v), mem_free(out);
}

static void test_hysteresis_small_objects(void **state)
{
    (void)state;
    /* one row: weak run touching a strong voxel, weak run alone, diagonal neighbours */
    enum { NX = 12, NY = 3 };
    int d[3] = {NX, NY, 1};
    float v[NY * NX] = {0};
    const float row[NX] = {0.3f, 0.3f, 0.9f, 0.3f, 0, 0.3f, 0.3f, 0.3f, 0, 0, 0, 0};
    memcpy(v + NX, row, sizeof row);
    v[2 * NX + 9] = 0.9f; /* strong, alone */
    v[0 * NX + 8] = 0.3f; /* weak, touches row 1 col 7 diagonally */
    uint8_t m[NY * NX];
    assert_int_equal(hysteresis_threshold(v, d, 0.2f, 0.5f, 26, m), 2);
    for (int x = 0; x < 4; x++)
        assert_int_equal(m[NX + x], 1);
    for (int x = 5; x < 8; x++)
        assert_int_equal(m[NX + x], 0);
    assert_int_equal(m[8], 0);
    assert_int_equal(m[2 * NX + 9], 1);
    /* 26- vs 6-connectivity labels */
    uint8_t diag[4] = {1, 0, 0, 1};
    int32_t lab[4];
    assert_int_equal(cc_label(diag, (int[]){2, 2, 1}, 26, lab, NULL), 1);
    assert_int_equal(cc_label(diag, (int[]){2, 2, 1}, 6, lab, NULL), 2);
    assert_int_equal(remove_small_objects(m, d, 26, 2), 1);
    assert_int_equal(m[2 * NX + 9], 0);
    assert_int_equal(m[NX], 1);
}

static void test_thin_2d_skimage_example(void **state)
{
    (void)state;
    /* skimage.morphology.skeletonize's docstring: the ellipse (x-4)^2/3 + (y-4)^2 < 9 on 9x9
     * thins to column 4, rows 3..6 */
    uint8_t img[81];
    for (int x = 0; x < 9; x++)
        for (int y = 0; y < 9; y++)
            img[x * 9 + y] = (x - 4) * (x - 4) / 3.0 + (y - 4) * (y - 4) < 9;
    assert_int_equal(thin_2d(img, (int[]){9, 9}), 0);
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 9; c++)
            assert_int_equal(img[r * 9 + c], c == 4 && r >= 3 && r <= 6);
}

static int count_components(const uint8_t *m, const int d[3], int conn)
{
    int32_t *lab = mem_alloc((size_t)d[0] * d[1] * d[2] * sizeof *lab);
    int k = cc_label(m, d, conn, lab, NULL);
    mem_free(lab);
    return k;
}

static void test_thin_3d_topology(void **state)
{
    (void)state;
    enum { N = 24 };
    int d[3] = {N, N, N};
    uint8_t *img = mem_calloc(N * N * N, 1), *bg = mem_alloc(N * N * N);
    /* a 16 x 4 x 4 box: one line along x, no branches */
    for (int z = 10; z < 14; z++)
        for (int y = 10; y < 14; y++)
            for (int x = 4; x < 20; x++)
                img[IDX(x, y, z, N, N)] = 1;
    /* and a ring of square cross-section 3 around (12, 12) at z 3..5 */
    for (int z = 3; z < 6; z++)
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                double r = hypot(x - 11.5, y - 11.5);
                if (r >= 6 && r < 9)
                    img[IDX(x, y, z, N, N)] = 1;
            }
    int before = count_components(img, d, 26);
    for (size_t i = 0; i < N * N * N; i++)
        bg[i] = !img[i];
    int holes_before = count_components(bg, d, 6);
    assert_int_equal(thin_3d(img, d), 0);
    assert_int_equal(count_components(img, d, 26), before);
    for (size_t i = 0; i < N * N * N; i++)
        bg[i] = !img[i];
    assert_int_equal(count_components(bg, d, 6), holes_before);
    /* one voxel wide: the graph has one end-end branch (box) and one cycle (ring) */
    SkelGraph g;
    Err e = {0};
    assert_int_equal(skel_graph_build(&g, img, d, (double[]){1, 1, 1}, &e), 0);
    SkelMeasures m;
    skel_graph_prune(&g, 0);
    skel_graph_measures(&g, &m);
    assert_int_equal(m.branches, 2);
    assert_int_equal(m.by_type[SKEL_END_END], 1);
    assert_int_equal(m.by_type[SKEL_CYCLE], 1);
    assert_int_equal(m.junctions, 0);
    skel_graph_free(&g);
    mem_free(img), mem_free(bg);
}

/* A hand-drawn 2D skeleton: a Y (two diagonal arms of 4 steps up from a one-pixel junction at
 * (7, 7), a stem of 8 down), a 2-pixel spur sideways off the stem at (7, 11), and a separate
 * straight segment of 4 pixels. */
static void draw_y(uint8_t *img, int nx)
{
    img[7 * nx + 7] = 1;
    for (int k = 1; k <= 4; k++)
        img[(7 - k) * nx + 7 - k] = img[(7 - k) * nx + 7 + k] = 1;
    for (int y = 8; y <= 15; y++)
        img[y * nx + 7] = 1;
    img[11 * nx + 8] = img[11 * nx + 9] = 1;
    for (int x = 2; x <= 5; x++)
        img[17 * nx + x] = 1;
}

static void test_graph_hand_made(void **state)
{
    (void)state;
    enum { NX = 16, NY = 20 };
    uint8_t img[NX * NY] = {0};
    draw_y(img, NX);
    int d[3] = {NX, NY, 1};
    SkelGraph g;
    Err e = {0};
    assert_int_equal(skel_graph_build(&g, img, d, (double[]){1, 1, 1}, &e), 0);
    SkelMeasures m;
    skel_graph_measures(&g, &m);
    /* (8, 11) touches (7, 10), (7, 11), (7, 12) and (9, 11): with its three stem neighbours
     * (degree 3 each) it makes one junction cluster, centroid (7.25, 11). Branches: two arms
     * and the stem from the junction at (7, 7), the tail and the spur from the cluster, and
     * the separate segment. */
    assert_int_equal(m.branches, 6);
    assert_int_equal(m.junctions, 2);
    assert_int_equal(m.end_points, 6);
    assert_int_equal(m.by_type[SKEL_END_END], 1);
    assert_int_equal(m.by_type[SKEL_JUNCTION_END], 4);
    assert_int_equal(m.by_type[SKEL_JUNCTION_JUNCTION], 1);
    /* voxel path lengths: arms 4 sqrt 2 each; stem (7,7)->(7,9)->centroid = 2 + hypot(0.25, 2);
     * tail centroid->(7,13)->(7,15) = hypot(0.25, 2) + 2; spur centroid -> (9,11) = 1.75;
     * segment 3 */
    double arms = 8 * sqrt(2.0), stem = 2 + hypot(0.25, 2), tail = hypot(0.25, 2) + 2;
    assert_true(fabs(m.path_mm - (arms + stem + tail + 1.75 + 3)) < 1e-9);
    /* pruning spurs under 2: the spur goes, the cluster joins stem and tail into one branch */
    skel_graph_prune(&g, 2.0);
    skel_graph_measures(&g, &m);
    assert_int_equal(m.branches, 4);
    assert_int_equal(m.pruned, 1);
    assert_int_equal(m.junctions, 1);
    assert_int_equal(m.end_points, 5);
    assert_int_equal(m.by_type[SKEL_JUNCTION_END], 3);
    assert_true(fabs(m.path_mm - (arms + stem + tail + 3)) < 1e-9);
    /* the painted skeleton no longer has the spur's end */
    uint8_t paint[NX * NY] = {0};
    skel_graph_paint(&g, paint, 1, 2);
    assert_int_equal(paint[11 * NX + 9], 0);
    assert_int_equal(paint[15 * NX + 7], 2);
    assert_int_equal(paint[14 * NX + 7], 1);
    skel_graph_free(&g);
    /* pruning at 3.5 also takes the separate 3-pixel segment (an end-end branch) */
    assert_int_equal(skel_graph_build(&g, img, d, (double[]){1, 1, 1}, &e), 0);
    skel_graph_prune(&g, 3.5);
    skel_graph_measures(&g, &m);
    assert_int_equal(m.branches, 3);
    skel_graph_free(&g);
}

static void test_graph_spacing_and_smoothing(void **state)
{
    (void)state;
    /* a straight 3D line along z, 11 voxels of 0.5 x 0.5 x 1.5 mm: 15 mm */
    enum { N = 12 };
    uint8_t img[N * N * N] = {0};
    for (int z = 0; z <= 10; z++)
        img[IDX(3, 4, z, N, N)] = 1;
    SkelGraph g;
    Err e = {0};
    double sp[3] = {0.5, 0.5, 1.5};
    assert_int_equal(skel_graph_build(&g, img, (int[]){N, N, N}, sp, &e), 0);
    SkelMeasures m;
    skel_graph_measures(&g, &m);
    assert_int_equal(m.branches, 1);
    assert_true(fabs(m.path_mm - 15.0) < 1e-9);
    assert_true(fabs(m.length_mm - 15.0) < 1e-9); /* smoothing keeps a straight line */
    skel_graph_free(&g);
    /* a digital line of slope 1/2 in 2D (it zig-zags between straight and diagonal steps):
     * the voxel path is longer than the line; the smoothed length is within 2% of it */
    enum { M = 40 };
    uint8_t st[M * M] = {0};
    for (int y = 0; y < M; y++)
        st[y * M + y / 2] = 1; /* steps (0, 1) and (1, 1) in turn */
    double line = hypot((M - 1) / 2, M - 1);
    assert_int_equal(skel_graph_build(&g, st, (int[]){M, M, 1}, (double[]){1, 1, 1}, &e), 0);
    skel_graph_measures(&g, &m);
    assert_int_equal(m.branches, 1);
    assert_true(m.path_mm > 1.03 * line);
    assert_true(fabs(m.length_mm - line) < 0.02 * line);
    skel_graph_free(&g);
}

static void test_end_extension(void **state)
{
    (void)state;
    /* a 2D bar 3 pixels wide (y 4..6) from x 2 to x 20, and a skeleton that stops at x 15: the
     * extension runs to the bar's edge (x 20.5) less the half-width (1.5): 4 */
    enum { NX = 24, NY = 12 };
    uint8_t mask[NX * NY] = {0}, sk[NX * NY] = {0};
    for (int y = 4; y <= 6; y++)
        for (int x = 2; x <= 20; x++)
            mask[y * NX + x] = 1;
    for (int x = 5; x <= 15; x++)
        sk[5 * NX + x] = 1;
    SkelGraph g;
    Err e = {0};
    assert_int_equal(skel_graph_build(&g, sk, (int[]){NX, NY, 1}, (double[]){1, 1, 1}, &e), 0);
    double ext[2];
    double total = skel_graph_end_extension(&g, mask, 10.0, ext);
    /* start (5,5): edge at 1.5 -> 3.5 - 1.5 = 2; end (15,5): 5.5 - 1.5 = 4 (steps of 0.1) */
    assert_true(fabs(ext[0] - 2.0) < 0.11);
    assert_true(fabs(ext[1] - 4.0) < 0.11);
    assert_true(fabs(total - 6.0) < 0.21);
    skel_graph_free(&g);
}

static void test_junction_correction(void **state)
{
    (void)state;
    /* 2D, 0.25 mm pixels: vessels that meet at J = (40, 40) (a stem along -x, two branches at
     * +-45 degrees), drawn as thinning draws an acute junction: the stem runs on to (42, 40),
     * where the branches part, and each branch bends back onto its true line by (43, 43). The
     * lines through 1..3.5 mm of each branch meet at J exactly; moving the junction from
     * (42, 40) to J changes the length by (node - J) . sum of the directions =
     * 0.5 (-1 + 2 cos 45 degrees) mm. */
    enum { N = 72 };
    uint8_t sk[N * N] = {0};
    for (int x = 4; x <= 42; x++)
        sk[40 * N + x] = 1;
    for (int k = 1; k <= 3; k++)
        sk[(40 + k) * N + 43] = sk[(40 - k) * N + 43] = 1;
    for (int k = 1; k <= 24; k++)
        sk[(43 + k) * N + 43 + k] = sk[(37 - k) * N + 43 + k] = 1;
    SkelGraph g;
    Err e = {0};
    assert_int_equal(skel_graph_build(&g, sk, (int[]){N, N, 1}, (double[]){0.25, 0.25, 1}, &e), 0);
    skel_graph_prune(&g, 0);
    SkelMeasures m;
    skel_graph_measures(&g, &m);
    assert_int_equal(m.junctions, 1);
    assert_int_equal(m.branches, 3);
    double corr[4], want = 0.5 * (sqrt(2.0) - 1.0);
    assert_int_equal(g.n_nodes, 4);
    double total = skel_graph_junction_correction(&g, (double[]){1.0, 3.5}, 3.0, corr);
    assert_true(fabs(total - want) < 1e-9);
    for (int v = 0; v < 4; v++)
        assert_true(fabs(corr[v] - (g.nodes[v].degree == 3 ? want : 0.0)) < 1e-9);
    /* a junction is not moved farther than the limit (here 0.5 mm away) */
    assert_true(skel_graph_junction_correction(&g, (double[]){1.0, 3.5}, 0.4, NULL) == 0.0);
    /* branches too short for the stretch give no line: nothing to correct */
    assert_true(skel_graph_junction_correction(&g, (double[]){8.0, 12.0}, 3.0, NULL) == 0.0);
    skel_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frangi_tube_analytic),
        cmocka_unit_test(test_frangi_shapes),
        cmocka_unit_test(test_hysteresis_small_objects),
        cmocka_unit_test(test_thin_2d_skimage_example),
        cmocka_unit_test(test_thin_3d_topology),
        cmocka_unit_test(test_graph_hand_made),
        cmocka_unit_test(test_graph_spacing_and_smoothing),
        cmocka_unit_test(test_end_extension),
        cmocka_unit_test(test_junction_correction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
