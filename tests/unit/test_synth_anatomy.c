/* test_synth_anatomy.c: the synthetic hip MRI phantom (stages/synth/anatomy.c).
 *
 * The phantom is the ground truth the whole project trains and tests on, so these tests check
 * that what it says and what it paints agree: the tissue at known anatomical points, the
 * rendered signal of every pixel against the point probe, tissue means against the documented
 * T1 table, the noise level against the requested SNR, the lesion mask against the exact plane
 * test over a sweep of slice positions (grazing planes included), the depth of subchondral
 * collapse, and determinism of the bytes. Every draw is seeded, so a pass is never luck. Speed
 * is printed, never asserted. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "stages/synth/anatomy.h"

#define N 256

static uint16_t img_a[N * N];
static uint16_t img_b[N * N];
static uint8_t mask_a[N * N];
static uint8_t mask_b[N * N];

static SynthAnatomy draw(uint64_t seed)
{
    Philox rng;
    SynthAnatomy a;
    philox_init(&rng, seed, PHILOX_TEST, 0);
    anatomy_draw(&a, &rng);
    return a;
}

/* A typical ONFH lesion: an anterosuperior necrotic segment reaching the articular surface
 * (the part outside the head is clipped off), bounded below by its band. */
static void place_lesion(SynthAnatomy *a, int h, double collapse_mm)
{
    SynthHip *hip = &a->hip[h];
    double R = hip->head_radius, lateral = h ? 1 : -1;
    SynthLesion *l = &hip->lesion;
    l->present = 1;
    l->center[0] = hip->head_center[0] + lateral * 0.1 * R;
    l->center[1] = hip->head_center[1] - 0.35 * R;
    l->center[2] = hip->head_center[2] + 0.62 * R;
    l->radii[0] = 0.6 * R;
    l->radii[1] = 0.5 * R;
    l->radii[2] = 0.5 * R;
    l->band_mm = 2.5;
    l->interior = 0.6;
    l->collapse_mm = collapse_mm;
}

static const SynthScanner clean = {.snr = 0, .scale = 2000, .supersample = 1};

/* The centre of pixel (r, c), computed the way the renderer computes its samples. */
static void pixel_center(const SynthSlice *sl, int r, int c, double p[3])
{
    p[0] = sl->position[0] + c * sl->spacing[1];
    p[1] = sl->position[1];
    p[2] = sl->position[2] - r * sl->spacing[0];
}

static int any_set(const uint8_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (m[i])
            return 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Drawing and probing

static void test_draw_is_plausible_and_deterministic(void **state)
{
    (void)state;
    int asymmetric = 0;
    for (uint64_t seed = 0; seed < 300; seed++) {
        SynthAnatomy a = draw(seed), b = draw(seed);
        assert_memory_equal(&a, &b, sizeof a);
        for (int h = 0; h < 2; h++) {
            const SynthHip *hip = &a.hip[h];
            double side = h ? 1 : -1;
            assert_false(hip->lesion.present);
            assert_true(hip->head_radius >= 21 && hip->head_radius <= 26);
            assert_true(side * hip->head_center[0] > 80 && side * hip->head_center[0] < 100);
            assert_true(fabs(hip->head_center[2]) < 12);
            assert_true(hip->neck_angle_deg >= 120 && hip->neck_angle_deg <= 140);
            assert_true(hip->cortex_mm > 1 && hip->cortex_mm < 3);
        }
        asymmetric += fabs(a.hip[0].head_radius - a.hip[1].head_radius) > 0.05;
        assert_true(a.body_half_width > a.hip[1].head_center[0] + 60);
        assert_true(a.fat_mm >= 7 && a.fat_mm <= 38);
        assert_true(fabs(a.pelvis_tilt_deg) <= 4);
    }
    assert_true(asymmetric > 200); /* slight asymmetry, as in people */
}

static void test_tissue_at_known_points(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        SynthAnatomy a = draw(seed);
        for (int h = 0; h < 2; h++) {
            const double *c = a.hip[h].head_center;
            double R = a.hip[h].head_radius;
            double p[3] = {c[0], c[1], c[2]};
            assert_int_equal(anatomy_tissue_at(&a, p), TISSUE_MARROW);
            /* Just above the head, inside the acetabulum: the joint's cartilage, then the
             * acetabular subchondral plate, then pelvic marrow. */
            p[2] = c[2] + R + 1.0;
            assert_int_equal(anatomy_tissue_at(&a, p), TISSUE_CARTILAGE);
            p[2] = c[2] + R + 4.5;
            assert_int_equal(anatomy_tissue_at(&a, p), TISSUE_CORTEX);
            p[2] = c[2] + R + 9;
            assert_int_equal(anatomy_tissue_at(&a, p), TISSUE_MARROW);
            /* The head's own subchondral plate. */
            p[2] = c[2] + R - 0.5 * a.hip[h].cortex_mm;
            assert_int_equal(anatomy_tissue_at(&a, p), TISSUE_CORTEX);
        }
        /* The bladder in the midline, urine in its middle. */
        double mid[3];
        for (int k = 0; k < 3; k++)
            mid[k] = 0.5 * (a.hip[0].head_center[k] + a.hip[1].head_center[k]);
        double bl[3] = {mid[0], mid[1] - 14, mid[2] - 24 + a.bladder[2]};
        assert_int_equal(anatomy_tissue_at(&a, bl), TISSUE_FLUID);
        /* Subcutaneous fat at the side of the hips, air beyond the skin. */
        double fat[3] = {mid[0] + a.body_half_width - 0.4 * a.fat_mm, mid[1] + 12, mid[2]};
        assert_int_equal(anatomy_tissue_at(&a, fat), TISSUE_FAT);
        double air[3] = {mid[0] + a.body_half_width + 5, mid[1] + 12, mid[2]};
        assert_int_equal(anatomy_tissue_at(&a, air), TISSUE_AIR);
        double far[3] = {500, 0, 0};
        assert_int_equal(anatomy_tissue_at(&a, far), TISSUE_AIR);
        /* Muscle: the obturator externus below the head, medial to the neck. */
        double side = 1, R = a.hip[1].head_radius;
        const double *c = a.hip[1].head_center;
        double mus[3] = {c[0] - side * 10, c[1], c[2] - R - 22};
        assert_int_equal(anatomy_tissue_at(&a, mus), TISSUE_MUSCLE);
    }
}

static void test_plane_cuts_head(void **state)
{
    (void)state;
    SynthAnatomy a = draw(3);
    for (int h = 0; h < 2; h++) {
        double y = a.hip[h].head_center[1], R = a.hip[h].head_radius;
        assert_true(anatomy_plane_cuts_head(&a, h, y));
        assert_true(anatomy_plane_cuts_head(&a, h, y + R - 1e-9));
        assert_false(anatomy_plane_cuts_head(&a, h, y + R + 1e-9));
        assert_false(anatomy_plane_cuts_head(&a, h, y - R - 0.5));
        assert_false(anatomy_plane_cuts_lesion(&a, h, y)); /* no lesion yet */
    }
}

/* The exact plane test against a brute-force search of the plane: a fine grid of points in the
 * outer ellipse's section, kept where they also lie in the marrow ball. Where the two disagree
 * the configuration must be marginal: a point within 0.2 mm of qualifying exists. */
static int brute_cut(const SynthHip *hip, double y, double slack)
{
    const SynthLesion *l = &hip->lesion;
    double ax = l->radii[0] + l->band_mm, ay = l->radii[1] + l->band_mm;
    double az = l->radii[2] + l->band_mm;
    double t = hip->cortex_mm < hip->head_radius / 3 ? hip->cortex_mm : hip->head_radius / 3;
    double Rm = hip->head_radius - t;
    double s = 1 - ((y - l->center[1]) / ay) * ((y - l->center[1]) / ay);
    double rho2 = Rm * Rm - (y - hip->head_center[1]) * (y - hip->head_center[1]);
    if (s < 0 || rho2 <= 0)
        return 0;
    double ex = ax * sqrt(s), ez = az * sqrt(s), rho = sqrt(rho2) + slack;
    for (double x = -ex; x <= ex; x += 0.05) {
        for (double z = -ez; z <= ez; z += 0.05) {
            if ((x / ex) * (x / ex) + (z / ez) * (z / ez) > 1)
                continue;
            double dx = l->center[0] + x - hip->head_center[0];
            double dz = l->center[2] + z - hip->head_center[2];
            if (dx * dx + dz * dz < rho * rho)
                return 1;
        }
    }
    return 0;
}

static void test_plane_cuts_lesion_exact(void **state)
{
    (void)state;
    Philox rng;
    philox_init(&rng, 11, PHILOX_TEST, 1);
    int cuts = 0, misses = 0;
    for (int trial = 0; trial < 60; trial++) {
        SynthAnatomy a = draw(100 + (uint64_t)trial);
        SynthHip *hip = &a.hip[1];
        double R = hip->head_radius;
        SynthLesion *l = &hip->lesion;
        l->present = 1;
        /* Lesions anywhere from deep inside to mostly outside the head. */
        for (int k = 0; k < 3; k++) {
            l->center[k] = hip->head_center[k] + (2 * philox_uniform(&rng) - 1) * 1.1 * R;
            l->radii[k] = 2 + 0.5 * R * philox_uniform(&rng);
        }
        l->band_mm = 3 * philox_uniform(&rng);
        l->interior = 0.5;
        for (double y = hip->head_center[1] - R - 2; y <= hip->head_center[1] + R + 2; y += 1.3) {
            int exact = anatomy_plane_cuts_lesion(&a, 1, y);
            int brute = brute_cut(hip, y, 0);
            if (exact != brute)
                assert_true(exact ? brute_cut(hip, y, 0.2) : !brute_cut(hip, y, -0.2));
            cuts += exact;
            misses += !exact;
        }
    }
    assert_true(cuts > 100 && misses > 100); /* both answers were exercised */
}

// ---------------------------------------------------------------------------------------------
// Rendering: signal, partial volume, noise

static void test_render_matches_probe(void **state)
{
    (void)state;
    SynthAnatomy a = draw(5);
    place_lesion(&a, 0, 0);
    place_lesion(&a, 1, 3);
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[1].head_center[1] - 5, 3.0, &sl);
    anatomy_render(&a, &sl, &clean, 1, 0, img_a, NULL);
    int seen[TISSUE_COUNT] = {0};
    for (int r = 0; r < N; r++) {
        for (int c = 0; c < N; c++) {
            double p[3];
            pixel_center(&sl, r, c, p);
            double want = floor(anatomy_signal_at(&a, p) * clean.scale + 0.5);
            int got = img_a[r * N + c];
            if (fabs(got - want) > 1)
                fail_msg("pixel (%d, %d): %d, probe says %.0f", r, c, got, want);
            seen[anatomy_tissue_at(&a, p)]++;
        }
    }
    for (int t = 0; t < TISSUE_COUNT; t++)
        if (!seen[t])
            fail_msg("tissue %d missing from a slice through both heads", t);
}

/* Mean stored value of pixels well inside one tissue (the 3x3 neighbourhood of the same probed
 * signal) against the documented table, with partial volume on (supersample 2, 3 mm thick). */
static void test_tissue_means(void **state)
{
    (void)state;
    SynthAnatomy a = draw(6);
    place_lesion(&a, 1, 0);
    SynthScanner sc = clean;
    sc.supersample = 2;
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[1].lesion.center[1], 3.0, &sl);
    anatomy_render(&a, &sl, &sc, 1, 0, img_a, NULL);
    static double sig[N * N];
    static uint8_t tis[N * N];
    for (int r = 0; r < N; r++) {
        for (int c = 0; c < N; c++) {
            double p[3];
            pixel_center(&sl, r, c, p);
            sig[r * N + c] = anatomy_signal_at(&a, p);
            tis[r * N + c] = (uint8_t)anatomy_tissue_at(&a, p);
        }
    }
    double sum[TISSUE_COUNT] = {0};
    int cnt[TISSUE_COUNT] = {0};
    for (int r = 1; r < N - 1; r++) {
        for (int c = 1; c < N - 1; c++) {
            double s0 = sig[r * N + c];
            int t = tis[r * N + c], inside = 1;
            for (int dr = -1; dr <= 1; dr++)
                for (int dc = -1; dc <= 1; dc++)
                    inside &= sig[(r + dr) * N + c + dc] == s0;
            double nominal = t == TISSUE_LESION ? 0.6 * anatomy_tissue_signal(TISSUE_MARROW)
                                                : anatomy_tissue_signal((SynthTissue)t);
            if (!inside || s0 != nominal) /* pelvic marrow, bowel, vessels: own values */
                continue;
            sum[t] += img_a[r * N + c];
            cnt[t]++;
        }
    }
    const SynthTissue check[] = {TISSUE_AIR,    TISSUE_FAT,   TISSUE_MUSCLE,
                                 TISSUE_MARROW, TISSUE_FLUID, TISSUE_LESION};
    for (size_t i = 0; i < sizeof check / sizeof check[0]; i++) {
        SynthTissue t = check[i];
        double want = (t == TISSUE_LESION ? 0.6 * anatomy_tissue_signal(TISSUE_MARROW)
                                          : anatomy_tissue_signal(t)) *
                      sc.scale;
        if (cnt[t] < 20)
            fail_msg("tissue %d: only %d interior pixels", t, cnt[t]);
        double mean = sum[t] / cnt[t];
        if (fabs(mean - want) > 0.03 * sc.scale)
            fail_msg("tissue %d: mean %.1f, documented %.1f", t, mean, want);
    }
    /* The documented table itself: T1 order fat > marrow > cartilage > muscle > fluid > cortex. */
    assert_true(anatomy_tissue_signal(TISSUE_FAT) == 1.0);
    assert_true(anatomy_tissue_signal(TISSUE_MARROW) >= 0.85);
    assert_true(anatomy_tissue_signal(TISSUE_CARTILAGE) > anatomy_tissue_signal(TISSUE_MUSCLE));
    assert_true(anatomy_tissue_signal(TISSUE_MUSCLE) > anatomy_tissue_signal(TISSUE_FLUID));
    assert_true(anatomy_tissue_signal(TISSUE_FLUID) > anatomy_tissue_signal(TISSUE_CORTEX));
    assert_true(anatomy_tissue_signal(TISSUE_AIR) == 0.0);
}

/* Partial volume: supersampling gives pixel values between those of the tissues at an edge. */
static void test_partial_volume(void **state)
{
    (void)state;
    SynthAnatomy a = draw(7);
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[0].head_center[1], 3.0, &sl);
    anatomy_render(&a, &sl, &clean, 1, 0, img_a, NULL);
    SynthScanner sc = clean;
    sc.supersample = 3;
    anatomy_render(&a, &sl, &sc, 1, 0, img_b, NULL);
    static uint8_t used_a[4096], used_b[4096];
    memset(used_a, 0, sizeof used_a);
    memset(used_b, 0, sizeof used_b);
    int na = 0, nb = 0;
    for (int i = 0; i < N * N; i++) {
        na += !used_a[img_a[i]];
        nb += !used_b[img_b[i]];
        used_a[img_a[i]] = used_b[img_b[i]] = 1;
    }
    assert_true(na <= 16); /* one value per painted label */
    assert_true(nb > 200); /* mixtures at every edge */
}

static void test_snr_matches_request(void **state)
{
    (void)state;
    SynthAnatomy a = draw(8);
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[0].head_center[1], 3.0, &sl);
    SynthScanner sc = clean;
    sc.snr = 20;
    anatomy_render(&a, &sl, &sc, 9, 1, img_a, NULL);
    anatomy_render(&a, &sl, &sc, 9, 2, img_b, NULL);
    double marrow = anatomy_tissue_signal(TISSUE_MARROW), sigma = marrow * sc.scale / sc.snr;
    static double sig[N * N];
    for (int r = 0; r < N; r++) {
        for (int c = 0; c < N; c++) {
            double p[3];
            pixel_center(&sl, r, c, p);
            sig[r * N + c] = anatomy_signal_at(&a, p);
        }
    }
    double d2 = 0, mean = 0, air = 0;
    int n = 0, nair = 0;
    for (int r = 1; r < N - 1; r++) {
        for (int c = 1; c < N - 1; c++) {
            double s0 = sig[r * N + c];
            int same = 1;
            for (int dr = -1; dr <= 1; dr++)
                for (int dc = -1; dc <= 1; dc++)
                    same &= sig[(r + dr) * N + c + dc] == s0;
            if (!same)
                continue;
            int i = r * N + c;
            if (s0 == marrow) {
                double d = (double)img_a[i] - img_b[i];
                d2 += d * d;
                mean += img_a[i];
                n++;
            } else if (s0 == 0) {
                air += img_a[i];
                nair++;
            }
        }
    }
    assert_true(n > 500 && nair > 500);
    double measured = marrow * sc.scale / sqrt(d2 / (2 * n));
    print_message("# marrow SNR %.2f (asked 20) from %d pixels; air mean %.1f (Rayleigh %.1f)\n",
                  measured, n, air / nair, sigma * sqrt(M_PI / 2));
    assert_true(fabs(measured - sc.snr) < 0.1 * sc.snr);
    assert_true(fabs(mean / n - marrow * sc.scale) < 0.02 * marrow * sc.scale);
    /* Rician noise: the background is Rayleigh, mean sigma sqrt(pi/2), not zero. */
    assert_true(fabs(air / nair - sigma * sqrt(M_PI / 2)) < 0.1 * sigma);
}

static void test_bias_field(void **state)
{
    (void)state;
    SynthAnatomy a = draw(9);
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[0].head_center[1], 3.0, &sl);
    anatomy_render(&a, &sl, &clean, 4, 0, img_a, NULL);
    SynthScanner sc = clean;
    sc.bias_amplitude = 0.2;
    anatomy_render(&a, &sl, &sc, 4, 0x30000, img_b, NULL);
    double lo = 2, hi = 0;
    for (int i = 0; i < N * N; i++) {
        if (img_a[i] < 1000)
            continue;
        double ratio = (double)img_b[i] / img_a[i];
        lo = ratio < lo ? ratio : lo;
        hi = ratio > hi ? ratio : hi;
    }
    assert_true(lo >= 0.8 - 1e-3 && hi <= 1.2 + 1e-3);
    assert_true(hi - lo > 0.02); /* it does vary */
    /* The same stack (noise_index differing in the low bits) shares the field; another stack
     * has its own. */
    anatomy_render(&a, &sl, &sc, 4, 0x3ffff, img_a, NULL);
    assert_memory_equal(img_a, img_b, sizeof img_a);
    anatomy_render(&a, &sl, &sc, 4, 0x40000, img_a, NULL);
    assert_true(memcmp(img_a, img_b, sizeof img_a) != 0);
}

static void test_determinism(void **state)
{
    (void)state;
    SynthAnatomy a = draw(10);
    place_lesion(&a, 0, 2);
    SynthScanner sc = {
        .snr = 25, .scale = 2500, .bias_amplitude = 0.15, .motion_mm = 1, .supersample = 2};
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, a.hip[0].lesion.center[1], 3.0, &sl);
    anatomy_render(&a, &sl, &sc, 77, 5, img_a, mask_a);
    anatomy_render(&a, &sl, &sc, 77, 5, img_b, mask_b);
    assert_memory_equal(img_a, img_b, sizeof img_a);
    assert_memory_equal(mask_a, mask_b, sizeof mask_a);
    assert_true(any_set(mask_a, sizeof mask_a));
    anatomy_render(&a, &sl, &sc, 77, 6, img_b, mask_b);
    int differ = 0;
    for (int i = 0; i < N * N; i++)
        differ += img_a[i] != img_b[i];
    assert_true(differ > N * N / 2); /* fresh noise nearly everywhere */
    anatomy_render(&a, &sl, &sc, 78, 5, img_b, mask_b);
    assert_true(memcmp(img_a, img_b, sizeof img_a) != 0);
    for (int i = 0; i < N * N; i++)
        assert_true(img_a[i] <= 4095);
}

// ---------------------------------------------------------------------------------------------
// Lesions: the mask and the exact label, collapse

/* Renders a sweep of planes across hip h's head; the mask must be non-empty exactly when the
 * plane cuts the lesion, and (without motion) mark exactly the pixels whose centre probes as
 * lesion or band, unless the cut is a sliver between pixel centres. */
static void sweep_mask(SynthAnatomy *a, int h, const SynthScanner *sc, int *n_cut, int *n_sliver)
{
    const SynthHip *hip = &a->hip[h];
    double R = hip->head_radius;
    for (double y = hip->head_center[1] - R - 3; y <= hip->head_center[1] + R + 3; y += 0.37) {
        SynthSlice sl;
        anatomy_default_slice(a, N, N, y, 3.0, &sl);
        anatomy_render(a, &sl, sc, 3, 0, img_a, mask_a);
        int cut = anatomy_plane_cuts_lesion(a, 0, y) || anatomy_plane_cuts_lesion(a, 1, y);
        if (any_set(mask_a, sizeof mask_a) != cut)
            fail_msg("y = %.2f: mask %s but the plane %s", y,
                     any_set(mask_a, sizeof mask_a) ? "set" : "empty",
                     cut ? "cuts the lesion" : "misses it");
        *n_cut += cut;
        if (sc->motion_mm > 0 || !cut)
            continue;
        /* Probe the pixels around the heads; elsewhere the mask must be clear. */
        int probed = 0, marked = 0, agree = 1;
        for (int r = 0; r < N; r++) {
            for (int c = 0; c < N; c++) {
                double p[3];
                pixel_center(&sl, r, c, p);
                int near = 0;
                for (int k = 0; k < 2; k++) {
                    const double *hc = a->hip[k].head_center;
                    double reach = a->hip[k].head_radius + 3;
                    near |= fabs(p[0] - hc[0]) < reach && fabs(p[2] - hc[2]) < reach;
                }
                SynthTissue t = near ? anatomy_tissue_at(a, p) : TISSUE_MUSCLE;
                int in = t == TISSUE_LESION || t == TISSUE_BAND;
                probed += in;
                marked += mask_a[r * N + c];
                agree &= in == mask_a[r * N + c];
            }
        }
        if (probed == 0) {
            assert_int_equal(marked, 1); /* a sliver: the pixel nearest to it */
            (*n_sliver)++;
        } else {
            assert_true(agree);
        }
    }
}

static void test_mask_consistent_with_plane_test(void **state)
{
    (void)state;
    int n_cut = 0, n_sliver = 0;
    SynthAnatomy a = draw(12);
    place_lesion(&a, 1, 0);
    sweep_mask(&a, 1, &clean, &n_cut, &n_sliver);
    assert_true(n_cut > 20);
    /* Collapse moves the lesion down but never changes which planes cut it. */
    SynthAnatomy b = a;
    b.hip[1].lesion.collapse_mm = 4;
    for (double y = -40; y <= 40; y += 0.25)
        assert_int_equal(anatomy_plane_cuts_lesion(&a, 1, y), anatomy_plane_cuts_lesion(&b, 1, y));
    sweep_mask(&b, 1, &clean, &n_cut, &n_sliver);
    /* Both hips, noise and motion on: the mask moves with the image, still non-empty exactly on
     * the cutting planes. */
    place_lesion(&b, 0, 1);
    SynthScanner sc = {
        .snr = 20, .scale = 2000, .bias_amplitude = 0.1, .motion_mm = 2, .supersample = 2};
    sweep_mask(&b, 0, &sc, &n_cut, &n_sliver);
    /* Grazing planes: a hair inside the lesion's extent in y the plane cuts a sliver thinner
     * than a pixel, a hair outside it cuts nothing. */
    const SynthLesion *l = &a.hip[1].lesion;
    double edge = l->center[1] + l->radii[1] + l->band_mm;
    assert_true(anatomy_plane_cuts_lesion(&a, 1, edge - 1e-6));
    assert_false(anatomy_plane_cuts_lesion(&a, 1, edge + 1e-6));
    SynthSlice sl;
    anatomy_default_slice(&a, N, N, edge - 1e-6, 3.0, &sl);
    anatomy_render(&a, &sl, &clean, 3, 0, img_a, mask_a);
    int marked = 0;
    for (int i = 0; i < N * N; i++)
        marked += mask_a[i];
    assert_int_equal(marked, 1);
    anatomy_default_slice(&a, N, N, edge + 1e-6, 3.0, &sl);
    anatomy_render(&a, &sl, &clean, 3, 0, img_a, mask_a);
    assert_false(any_set(mask_a, sizeof mask_a));
    print_message("# %d cutting planes, %d slivers\n", n_cut, n_sliver);
}

/* The highest point of femoral bone (cortex, marrow, lesion) above (x, y) of hip h. */
static double head_top(const SynthAnatomy *a, int h, double x, double y)
{
    const double *c = a->hip[h].head_center;
    for (double z = c[2] + a->hip[h].head_radius + 1; z > c[2]; z -= 0.01) {
        double p[3] = {x, y, z};
        SynthTissue t = anatomy_tissue_at(a, p);
        if (t == TISSUE_CORTEX || t == TISSUE_MARROW || t == TISSUE_LESION || t == TISSUE_BAND)
            return z;
    }
    return c[2];
}

static void test_collapse_lowers_contour(void **state)
{
    (void)state;
    SynthAnatomy a = draw(13);
    place_lesion(&a, 0, 0);
    SynthAnatomy b = a;
    const double *lc = a.hip[0].lesion.center, *c = a.hip[0].head_center;
    for (double collapse = 1; collapse <= 5; collapse += 2) {
        b.hip[0].lesion.collapse_mm = collapse;
        double drop = head_top(&a, 0, lc[0], lc[1]) - head_top(&b, 0, lc[0], lc[1]);
        print_message("# collapse %.1f mm: superior contour drops %.2f mm\n", collapse, drop);
        assert_true(fabs(drop - collapse) < 0.1);
        /* The gap it leaves between the head's cartilage and the acetabulum's is joint fluid,
         * about as deep as the collapse. */
        double fluid = 0, top = head_top(&b, 0, lc[0], lc[1]);
        for (double z = top; z < top + 4 + collapse; z += 0.01) {
            double p[3] = {lc[0], lc[1], z};
            fluid += 0.01 * (anatomy_tissue_at(&b, p) == TISSUE_FLUID);
        }
        assert_true(fluid > 0.9 * collapse && fluid < 1.25 * collapse);
        /* Away from the lesion's footprint, and below the head's centre, nothing moves. */
        double side = c[0] + 0.8 * a.hip[0].head_radius;
        assert_true(fabs(head_top(&a, 0, side, c[1] + 10) - head_top(&b, 0, side, c[1] + 10)) <
                    1e-9);
        double below[3] = {c[0], c[1], c[2] - a.hip[0].head_radius + 0.5};
        assert_int_equal(anatomy_tissue_at(&a, below), anatomy_tissue_at(&b, below));
    }
    /* The necrotic segment keeps its signal: interior x marrow. */
    double in[3] = {lc[0], lc[1], lc[2] - 0.3 * a.hip[0].lesion.radii[2]};
    assert_int_equal(anatomy_tissue_at(&a, in), TISSUE_LESION);
    assert_true(fabs(anatomy_signal_at(&a, in) - 0.6 * anatomy_tissue_signal(TISSUE_MARROW)) <
                1e-12);
    double band[3] = {lc[0], lc[1], lc[2] - a.hip[0].lesion.radii[2] - 1};
    assert_int_equal(anatomy_tissue_at(&a, band), TISSUE_BAND);
}

/* synth.lesion_contrast: lesion and band signals move towards marrow in proportion. */
static void test_lesion_contrast(void **state)
{
    (void)state;
    SynthAnatomy a = draw(13);
    place_lesion(&a, 0, 0);
    const double *lc = a.hip[0].lesion.center;
    double in[3] = {lc[0], lc[1], lc[2] - 0.3 * a.hip[0].lesion.radii[2]};
    double band[3] = {lc[0], lc[1], lc[2] - a.hip[0].lesion.radii[2] - 1};
    double marrow = anatomy_tissue_signal(TISSUE_MARROW);
    double gap_in = marrow - anatomy_signal_at(&a, in);
    double gap_band = marrow - anatomy_signal_at(&a, band);
    assert_true(gap_in > 0.2 && gap_band > 0.5);
    a.lesion_contrast = 0.25;
    assert_true(fabs(marrow - anatomy_signal_at(&a, in) - 0.25 * gap_in) < 1e-12);
    assert_true(fabs(marrow - anatomy_signal_at(&a, band) - 0.25 * gap_band) < 1e-12);
    assert_int_equal(anatomy_tissue_at(&a, in), TISSUE_LESION); /* the truth does not change */
}

// ---------------------------------------------------------------------------------------------
// Speed (printed only)

static void test_speed(void **state)
{
    (void)state;
    SynthAnatomy a = draw(14);
    place_lesion(&a, 1, 2);
    SynthScanner sc = {
        .snr = 25, .scale = 2400, .bias_amplitude = 0.15, .motion_mm = 0.5, .supersample = 2};
    struct timespec t0, t1;
    int reps = 40;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < reps; i++) {
        SynthSlice sl;
        anatomy_default_slice(&a, N, N, a.hip[1].head_center[1] - 20 + i, 3.0, &sl);
        anatomy_render(&a, &sl, &sc, 1, (uint64_t)i, img_a, mask_a);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / reps;
    print_message("# render %dx%d, supersample 2, noise and mask: %.2f ms per slice\n", N, N, ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_is_plausible_and_deterministic),
        cmocka_unit_test(test_tissue_at_known_points),
        cmocka_unit_test(test_plane_cuts_head),
        cmocka_unit_test(test_plane_cuts_lesion_exact),
        cmocka_unit_test(test_render_matches_probe),
        cmocka_unit_test(test_tissue_means),
        cmocka_unit_test(test_partial_volume),
        cmocka_unit_test(test_snr_matches_request),
        cmocka_unit_test(test_bias_field),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_mask_consistent_with_plane_test),
        cmocka_unit_test(test_collapse_lowers_contour),
        cmocka_unit_test(test_lesion_contrast),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
