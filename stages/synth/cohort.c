/* cohort.c: the synthetic cohort's design (see cohort.h).
 *
 * Random streams: the plan uses Philox index COHORT_PLAN_STREAM; patient i uses index
 * synth_stream(i, SYNTH_STREAM_DESIGN, 0, 0) (stages/synth/synth_streams.h), so a patient's
 * draws never depend on another patient's, nor on the rank that generates it. */
#include "stages/synth/cohort.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/mem.h"
#include "stages/synth/synth_streams.h"
#include "stages/synth/vessel_tree.h"

/* ---------------------------------------------------------------------------------------------
 * The plan. */

/* perm[0..n) = a uniform random permutation of 0..n-1 (Fisher-Yates). */
static void permutation(int *perm, int n, Philox *rng)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)philox_below(rng, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int cohort_plan(CohortPlan *plan, const CohortParams *p, Err *e)
{
    memset(plan, 0, sizeof *plan);
    plan->params = *p;
    int n = p->patients;
    if (p->labelled_slices > p->slices || (p->slices - p->labelled_slices) % 2)
        return err_set(e, ERR_CONFIG,
                       "synth.labelled_slices: %d labelled of %d slices leaves an odd number "
                       "outside the femoral heads; it must be even (half anterior, half posterior)",
                       p->labelled_slices, p->slices);
    if (p->visits_max < p->visits_min)
        return err_set(e, ERR_CONFIG, "synth.visits_max: %d is below synth.visits_min (%d)",
                       p->visits_max, p->visits_min);
    long total = lround(p->lesion_slice_fraction * p->labelled_slices * (double)n);
    long base = total / n, extra = total % n;
    if (base < 1 || base + (extra > 0) > p->labelled_slices - 2)
        return err_set(
            e, ERR_CONFIG,
            "synth.lesion_slice_fraction: %g gives %ld to %ld lesion slices per patient; "
            "each patient needs 1 to %d (the labelled slices minus one at each end)",
            p->lesion_slice_fraction, base, base + (extra > 0), p->labelled_slices - 2);

    int *perm = mem_calloc((size_t)n, sizeof *perm);
    plan->site = mem_calloc((size_t)n, sizeof *plan->site);
    plan->bilateral = mem_calloc((size_t)n, 1);
    plan->lesion_slices = mem_calloc((size_t)n, sizeof *plan->lesion_slices);
    plan->progresses = mem_calloc((size_t)n, sizeof *plan->progresses);
    plan->treated = mem_calloc((size_t)n, 1);
    plan->n_visits = mem_calloc((size_t)n, sizeof *plan->n_visits);
    if (!perm || !plan->site || !plan->bilateral || !plan->lesion_slices || !plan->progresses ||
        !plan->treated || !plan->n_visits)
        goto nomem;

    Philox rng;
    philox_init(&rng, p->seed, PHILOX_SYNTH, COHORT_PLAN_STREAM);
    permutation(perm, n, &rng); /* sites, balanced */
    for (int k = 0; k < n; k++)
        plan->site[perm[k]] = k % p->sites;
    permutation(perm, n, &rng); /* bilateral: exactly round(fraction * n) */
    long n_bilateral = lround(p->bilateral_fraction * n);
    for (int k = 0; k < n_bilateral; k++)
        plan->bilateral[perm[k]] = 1;
    permutation(perm, n, &rng); /* lesion slices add up to exactly `total` */
    for (int k = 0; k < n; k++)
        plan->lesion_slices[perm[k]] = (int)base + (k < extra);
    /* Lesions differ in size between patients: in pairs of the permutation, d slices pass from
     * one to the other (d uniform in 0..spread), so the total stays exact. Without it every
     * patient's lesion cut the same number of slices to within one, and one visit told a
     * lesion's growth as well as the whole trajectory. A lesion stays within 60% of the
     * labelled slices, so that it fits one femoral head with marrow to spare (the paper's 75%
     * of slices showing a lesion leaves no room: the default cohort is unchanged). Its own
     * stream: the draws above and below are those of before. */
    long room = (long)(0.6 * p->labelled_slices) - base - 1;
    long spread = base - 1 < room ? base - 1 : room;
    Philox size_rng;
    philox_init(&size_rng, p->seed, PHILOX_SYNTH, COHORT_PLAN_STREAM + 1);
    for (int k = 0; spread > 0 && k + 1 < n; k += 2) {
        int d = (int)philox_below(&size_rng, (uint32_t)spread + 1);
        plan->lesion_slices[perm[k]] += d;
        plan->lesion_slices[perm[k + 1]] -= d;
    }
    permutation(perm, n, &rng);
    long n_treated = lround(p->treated_fraction * n);
    for (int k = 0; k < n_treated; k++)
        plan->treated[perm[k]] = 1;
    for (int i = 0; i < n; i++)
        plan->n_visits[i] =
            p->visits_min + (int)philox_below(&rng, (uint32_t)(p->visits_max - p->visits_min + 1));

    /* Progression: exactly round(fraction * affected hips), over (patient, slot) pairs where
     * slot 0 is the primary hip and slot 1 the second hip of a bilateral patient. */
    int n_affected = n + (int)n_bilateral;
    int *slots = mem_calloc((size_t)n_affected, sizeof *slots);
    int *order = mem_calloc((size_t)n_affected, sizeof *order);
    if (!slots || !order) {
        mem_free(slots);
        mem_free(order);
        goto nomem;
    }
    for (int i = 0, k = 0; i < n; i++) {
        slots[k++] = 2 * i;
        if (plan->bilateral[i])
            slots[k++] = 2 * i + 1;
    }
    permutation(order, n_affected, &rng);
    long n_progress = lround(p->progression_fraction * n_affected);
    for (int k = 0; k < n_progress; k++)
        plan->progresses[slots[order[k]] / 2][slots[order[k]] % 2] = 1;
    mem_free(slots);
    mem_free(order);

    /* Faults: a fraction of the clean DICOM files, each attached to a random patient. */
    long clean_files = 0;
    for (int i = 0; i < n; i++)
        clean_files += (long)plan->n_visits[i] * (p->slices + p->vessel_slices);
    plan->n_faults = (int)lround(p->fault_fraction * (double)clean_files);
    if (plan->n_faults > 0) {
        plan->fault_patient = mem_calloc((size_t)plan->n_faults, sizeof *plan->fault_patient);
        if (!plan->fault_patient)
            goto nomem;
        for (int f = 0; f < plan->n_faults; f++)
            plan->fault_patient[f] = (int)philox_below(&rng, (uint32_t)n);
    }
    mem_free(perm);
    return 0;
nomem:
    mem_free(perm);
    cohort_plan_free(plan);
    return err_set(e, ERR_NOMEM, "out of memory planning %d patients", n);
}

void cohort_plan_free(CohortPlan *plan)
{
    mem_free(plan->site);
    mem_free(plan->bilateral);
    mem_free(plan->lesion_slices);
    mem_free(plan->progresses);
    mem_free(plan->treated);
    mem_free(plan->n_visits);
    mem_free(plan->fault_patient);
    memset(plan, 0, sizeof *plan);
}

/* ---------------------------------------------------------------------------------------------
 * One patient. */

double cohort_slice_y(const CohortPatient *pt, int v, int slice)
{
    return pt->y0 + slice * pt->spacing + pt->visits[v].y_offset_mm;
}

static double uniform(Philox *rng, double lo, double hi)
{
    return lo + (hi - lo) * philox_uniform(rng);
}

/* 1 when the lesion ellipsoid lies inside the femoral head with margin_mm to spare, checked on
 * a grid of points over the ellipsoid's surface (the farthest point from the sphere's centre
 * lies on the surface). */
static int lesion_fits(const SynthHip *h, double margin_mm)
{
    /* The lesion's outer surface (segment plus band) must lie inside the marrow, inside the
     * cortical shell, with margin_mm to spare. */
    const SynthLesion *l = &h->lesion;
    double limit = h->head_radius - h->cortex_mm - margin_mm;
    double rx = l->radii[0] + l->band_mm, ry = l->radii[1] + l->band_mm;
    double rz = l->radii[2] + l->band_mm;
    for (int a = 0; a <= 24; a++) {
        double th = M_PI * a / 24.0;
        for (int b = 0; b < 48; b++) {
            double ph = 2.0 * M_PI * b / 48.0;
            double q[3] = {l->center[0] + rx * sin(th) * cos(ph) - h->head_center[0],
                           l->center[1] + ry * cos(th) - h->head_center[1],
                           l->center[2] + rz * sin(th) * sin(ph) - h->head_center[2]};
            if (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] > limit * limit)
                return 0;
        }
    }
    return 1;
}

/* Shrinks the lesion's x and z extent (and its superior offset) until it fits in the head;
 * its y extent, which decides which slices show it, never changes. 0 if impossible. */
static int fit_lesion(SynthHip *h, double margin_mm)
{
    SynthLesion *l = &h->lesion;
    for (int tries = 0; tries < 200 && !lesion_fits(h, margin_mm); tries++) {
        l->radii[0] *= 0.97;
        l->radii[2] *= 0.97;
        l->center[2] = h->head_center[2] + 0.97 * (l->center[2] - h->head_center[2]);
        l->center[0] = h->head_center[0] + 0.97 * (l->center[0] - h->head_center[0]);
    }
    return lesion_fits(h, margin_mm);
}

/* Slices [first, last] of the stack (at visit 0) whose planes cut hip h's head. */
static void head_slices(const CohortPatient *pt, int h, int n_slices, int *first, int *last)
{
    *first = -1;
    *last = -2;
    for (int s = 0; s < n_slices; s++)
        if (anatomy_plane_cuts_head(&pt->visits[0].anatomy, h, cohort_slice_y(pt, 0, s))) {
            if (*first < 0)
                *first = s;
            *last = s;
        }
}

/* The y extent [*lo, *hi] of the planes that cut hip h's lesion (the lesion clipped to the
 * head, as the anatomy paints it), found by bisection from y_in, a plane that cuts it. */
static void lesion_y_extent(const SynthAnatomy *a, int h, double y_in, double *lo, double *hi)
{
    double r = a->hip[h].head_radius;
    for (int side = 0; side < 2; side++) {
        double in = y_in, out = side ? y_in + 2 * r : y_in - 2 * r;
        for (int it = 0; it < 60; it++) {
            double mid = 0.5 * (in + out);
            if (anatomy_plane_cuts_lesion(a, h, mid))
                in = mid;
            else
                out = mid;
        }
        *(side ? hi : lo) = in;
    }
}

/* 1 when exactly the baseline planes j0..j0+k-1 cut hip h's lesion. */
static int lesion_cuts_exactly(const CohortPatient *pt, int h, int j0, int k, int n_slices)
{
    for (int s = 0; s < n_slices; s++) {
        int cuts = anatomy_plane_cuts_lesion(&pt->visits[0].anatomy, h, cohort_slice_y(pt, 0, s));
        if (cuts != (s >= j0 && s < j0 + k))
            return 0;
    }
    return 1;
}

/* The subchondral form, as ONFH looks on T1: a necrotic segment under the head's superior
 * surface, bounded below by a curved low-signal band. The ellipsoid is centred so its top
 * reaches past the marrow surface, and the anatomy clips it to the head; its y radius and centre
 * are then adjusted until the planes that cut the clipped lesion are exactly j0..j0+k-1. 0 when
 * that cannot be met (the caller falls back to a lesion wholly inside the head). */
static int place_subchondral(CohortPatient *pt, int h, int j0, int k, int n_slices)
{
    SynthAnatomy *a = &pt->visits[0].anatomy;
    SynthHip *hip = &a->hip[h];
    SynthLesion *l = &hip->lesion;
    double marrow_r = hip->head_radius - hip->cortex_mm;
    double t_lo = cohort_slice_y(pt, 0, j0) - 0.5 * pt->spacing;
    double t_hi = cohort_slice_y(pt, 0, j0 + k - 1) + 0.5 * pt->spacing;
    double rz_out = l->radii[2] + l->band_mm;
    l->center[2] = hip->head_center[2] + marrow_r - 0.6 * rz_out;
    l->center[1] = 0.5 * (t_lo + t_hi);
    l->radii[1] = 0.5 * (t_hi - t_lo);
    for (int it = 0; it < 40; it++) {
        double lo, hi;
        if (!anatomy_plane_cuts_lesion(a, h, l->center[1]))
            return 0;
        lesion_y_extent(a, h, l->center[1], &lo, &hi);
        if (fabs(lo - t_lo) < 0.05 * pt->spacing && fabs(hi - t_hi) < 0.05 * pt->spacing)
            break;
        double grow = (t_hi - t_lo) / (hi - lo);
        l->center[1] += 0.5 * ((t_lo + t_hi) - (lo + hi));
        l->radii[1] = fmax(0.2, (l->radii[1] + l->band_mm) * grow - l->band_mm);
    }
    return lesion_cuts_exactly(pt, h, j0, k, n_slices);
}

/* Places a lesion in hip h cutting exactly slices [j0, j0 + k) of the baseline stack:
 * subchondral when that can be met exactly, else wholly inside the head. */
static int place_lesion(CohortPatient *pt, int h, int j0, int k, int stage, int n_slices,
                        Philox *rng)
{
    SynthHip *hip = &pt->visits[0].anatomy.hip[h];
    SynthLesion *l = &hip->lesion;
    double r = hip->head_radius;
    double y_first = cohort_slice_y(pt, 0, j0), y_last = cohort_slice_y(pt, 0, j0 + k - 1);
    double size = stage >= STAGE_IIIA ? 0.55 : stage == STAGE_II ? 0.47 : 0.38;
    l->present = 1;
    l->center[0] = hip->head_center[0] + (h == 0 ? -1 : 1) * uniform(rng, -0.08, 0.12) * r;
    double half = 0.5 * k * pt->spacing;
    l->band_mm = fmin(uniform(rng, 1.2, 2.2), 0.4 * half);
    l->radii[0] = size * r * uniform(rng, 0.9, 1.1);
    l->radii[2] = 0.8 * size * r * uniform(rng, 0.9, 1.1);
    l->interior = uniform(rng, 0.45, 0.95);
    l->collapse_mm = stage == STAGE_IIIB   ? uniform(rng, 2.2, 3.5)
                     : stage == STAGE_IIIA ? uniform(rng, 0.6, 1.8)
                                           : 0.0;
    SynthLesion drawn = *l;
    if (place_subchondral(pt, h, j0, k, n_slices))
        return 1;
    /* Wholly inside: the outer surface (segment plus band) spans exactly the planes
     * j0..j0+k-1 in y, half-way between planes at both ends. */
    *l = drawn;
    l->center[1] = 0.5 * (y_first + y_last);
    l->center[2] = hip->head_center[2] + uniform(rng, 0.22, 0.34) * r; /* superior */
    l->radii[1] = half - l->band_mm;
    /* ONFH lesions are subchondral: when the head is tight, the band may reach the cortex. */
    return fit_lesion(hip, 1.0) || fit_lesion(hip, 0.0);
}

/* Baseline stage of an affected hip: progressing hips start early (I, II, or IIIA with room to
 * collapse further); stable ones anywhere up to IIIA. */
static int baseline_stage(int progresses, Philox *rng)
{
    double u = philox_uniform(rng);
    if (progresses)
        return u < 0.45 ? STAGE_I : u < 0.9 ? STAGE_II : STAGE_IIIA;
    return u < 0.3 ? STAGE_I : u < 0.75 ? STAGE_II : STAGE_IIIA;
}

/* The lesion of a progressing hip at fraction t (0..1) of follow-up: it grows in x and z by up
 * to 25% and along the coronal stack (y) by up to 80% (a lesion wholly inside the head is kept
 * inside), and collapse appears and deepens; the stage follows. The growth in y makes the
 * lesion reach more coronal slices over the visits: growing only in x and z, as it did before
 * the progression stage, it showed on the same slices at every visit, and slice-level CNN
 * summaries (that stage's features) could not see it grow. */
static void progress_hip(SynthHip *hip, int stage0, double t, double final_collapse, int *stage)
{
    SynthLesion *l = &hip->lesion;
    /* A subchondral lesion (reaching past the marrow surface) is clipped by the head as it
     * grows; one wholly inside is kept inside. */
    int inside = lesion_fits(hip, 0.0);
    double ry0 = l->radii[1];
    l->radii[1] *= 1.0 + 0.8 * t;
    while (inside && !lesion_fits(hip, 0.0) && l->radii[1] > ry0)
        l->radii[1] = fmax(ry0, 0.97 * l->radii[1]);
    l->radii[0] *= 1.0 + 0.25 * t;
    l->radii[2] *= 1.0 + 0.25 * t;
    if (inside)
        fit_lesion(hip, 0.0);
    double collapse = l->collapse_mm + t * (final_collapse - l->collapse_mm);
    if (collapse > l->collapse_mm)
        l->collapse_mm = collapse;
    *stage = l->collapse_mm > 2.0   ? STAGE_IIIB
             : l->collapse_mm > 0.0 ? STAGE_IIIA
             : t >= 0.5             ? (stage0 < STAGE_II ? STAGE_II : stage0)
                                    : stage0;
}

/* How far a progressing hip has come at `day` of a follow-up ending at last_day: 1 - (1 - t)^2
 * with t = day / last_day, fastest at first (half the change by a quarter of the follow-up,
 * three quarters by half of it), so that a forecast from the first year has a trajectory to
 * see. */
static double progress_share(int day, int last_day)
{
    double t = (double)day / last_day;
    return 1.0 - (1.0 - t) * (1.0 - t);
}

int cohort_patient(const CohortPlan *plan, int i, CohortPatient *pt, Err *e)
{
    const CohortParams *p = &plan->params;
    memset(pt, 0, sizeof *pt);
    Philox rng;
    philox_init(&rng, p->seed, PHILOX_SYNTH, synth_stream(i, SYNTH_STREAM_DESIGN, 0, 0));
    pt->index = i;
    pt->site = plan->site[i];
    pt->n_visits = plan->n_visits[i];
    pt->sex = philox_uniform(&rng) < 0.7 ? 'M' : 'F';
    pt->baseline_days = (int)philox_below(&rng, 4 * 365);
    pt->birth_year = 2018 + pt->baseline_days / 365 - 25 - (int)philox_below(&rng, 36);

    SynthAnatomy *a0 = &pt->visits[0].anatomy;
    anatomy_draw(a0, &rng);
    a0->lesion_contrast = p->lesion_contrast;
    pt->primary_hip = (int)philox_below(&rng, 2);
    int second = 1 - pt->primary_hip;
    pt->affected[pt->primary_hip] = 1;
    pt->affected[second] = plan->bilateral[i];

    /* The coronal stack: exactly labelled_slices planes cut a femoral head (either hip). */
    double lo = 1e9, hi = -1e9;
    for (int h = 0; h < 2; h++) {
        const SynthHip *hip = &a0->hip[h];
        lo = fmin(lo, hip->head_center[1] - hip->head_radius);
        hi = fmax(hi, hip->head_center[1] + hip->head_radius);
    }
    int n = p->slices, L = p->labelled_slices, first_head = (n - L) / 2;
    pt->spacing = (hi - lo) / L;
    pt->y0 = lo + (0.5 - first_head) * pt->spacing;
    int cut = 0;
    for (int s = 0; s < n; s++) {
        double y = cohort_slice_y(pt, 0, s);
        int in = anatomy_plane_cuts_head(a0, 0, y) || anatomy_plane_cuts_head(a0, 1, y);
        cut += in;
        if (in != (s >= first_head && s < first_head + L))
            return err_set(e, ERR_INTERNAL, "patient %d: slice %d misplaced", i, s);
    }
    if (cut != L)
        return err_set(e, ERR_INTERNAL, "patient %d: %d slices cut a head, not %d", i, cut, L);

    /* Lesions: the primary cuts exactly lesion_slices[i] planes, the second hip's a sub-range
     * of those, so the count of baseline slices showing a lesion is exact. */
    int stage0[2] = {STAGE_NONE, STAGE_NONE};
    int k = plan->lesion_slices[i], f, l, f_other, l_other;
    head_slices(pt, pt->primary_hip, n, &f, &l);
    head_slices(pt, second, n, &f_other, &l_other);
    if (l_other - f_other > l - f) {
        /* The heads sit at slightly different depths; the lesion slices fit best in the head
         * that spans more of the stack, so that one takes the primary lesion. */
        pt->primary_hip = second;
        second = 1 - second;
        pt->affected[pt->primary_hip] = 1;
        pt->affected[second] = plan->bilateral[i];
        f = f_other;
        l = l_other;
    }
    if (l - f + 1 - 2 < k)
        return err_set(e, ERR_INTERNAL,
                       "patient %d: %d lesion slices do not fit the %d slices of its head", i, k,
                       l - f + 1);
    /* Keep the lesion's ends off the cortex: `edge` slices of marrow before and after it, then
     * place it anywhere in what room is left. Anywhere, not centred: a lesion always in the
     * middle of the head makes every normal labelled slice one at the head's ends, and a slice
     * classifier learns the slice's position instead of what it shows (README, Progression).
     * Where the drawn place leaves the lesion no fit (near the ends the head is narrow), the
     * places nearer the middle are tried in turn. */
    const SynthHip *ph = &a0->hip[pt->primary_hip];
    int edge = (int)ceil((ph->cortex_mm + 1.2) / pt->spacing + 0.5);
    int room = (l - f + 1) - k;
    if (room < 2 * edge)
        edge = room / 2;
    int lo_j0 = f + edge, hi_j0 = f + room - edge, mid_j0 = f + room / 2;
    int j0 = lo_j0 + (int)philox_below(&rng, (uint32_t)(hi_j0 - lo_j0 + 1));
    stage0[pt->primary_hip] = baseline_stage(plan->progresses[i][0], &rng);
    while (!place_lesion(pt, pt->primary_hip, j0, k, stage0[pt->primary_hip], n, &rng)) {
        if (j0 == mid_j0)
            return err_set(e, ERR_INTERNAL, "patient %d: the lesion does not fit the head", i);
        j0 += j0 < mid_j0 ? 1 : -1;
    }
    if (plan->bilateral[i]) {
        int f2, l2;
        head_slices(pt, second, n, &f2, &l2);
        int edge2 = (int)ceil((a0->hip[second].cortex_mm + 1.2) / pt->spacing + 0.5);
        int lo2 = j0 > f2 + edge2 ? j0 : f2 + edge2;
        int hi2 = j0 + k - 1 < l2 - edge2 ? j0 + k - 1 : l2 - edge2;
        int span = hi2 - lo2 + 1;
        if (span < 1)
            return err_set(e, ERR_INTERNAL, "patient %d: no room for a second lesion", i);
        int k2 = span > 3 ? span - (int)philox_below(&rng, (uint32_t)(span / 3 + 1)) : span;
        stage0[second] = baseline_stage(plan->progresses[i][1], &rng);
        if (!place_lesion(pt, second, lo2, k2, stage0[second], n, &rng))
            return err_set(e, ERR_INTERNAL, "patient %d: second lesion does not fit", i);
    }

    /* Visits over follow-up; grafting between the first two. */
    int nv = pt->n_visits;
    for (int v = 1; v < nv; v++) {
        double t = (v + uniform(&rng, -0.25, 0.25)) / (nv - 1);
        int day = (int)lround(fmin(t, 1.0) * p->followup_days);
        int min_day = pt->visits[v - 1].day + 30;
        pt->visits[v].day = day > min_day ? day : min_day;
        pt->visits[v].y_offset_mm = uniform(&rng, -2.0, 2.0);
    }
    pt->treated_hip = plan->treated[i] ? pt->primary_hip : -1;
    pt->graft_day = -1;
    if (pt->treated_hip >= 0 && nv > 1)
        pt->graft_day = (int)lround(pt->visits[1].day * uniform(&rng, 0.2, 0.5));
    else if (pt->treated_hip >= 0)
        pt->graft_day = 1; /* a single visit: grafted after it, no post-graft imaging */

    /* Progressing hips collapse further by the last visit: that is what progression means. */
    double final_collapse[2];
    for (int h = 0; h < 2; h++)
        final_collapse[h] = a0->hip[h].lesion.collapse_mm + uniform(&rng, 1.0, 3.0);
    int last_day = pt->visits[nv - 1].day > 0 ? pt->visits[nv - 1].day : 1;
    for (int v = 0; v < nv; v++) {
        CohortVisit *vis = &pt->visits[v];
        if (v > 0)
            vis->anatomy = pt->visits[0].anatomy;
        vis->post_graft = pt->graft_day >= 0 && vis->day > pt->graft_day;
        for (int h = 0; h < 2; h++) {
            int slot = h == pt->primary_hip ? 0 : 1;
            vis->stage[h] = stage0[h];
            if (pt->affected[h] && plan->progresses[i][slot] && v > 0)
                progress_hip(&vis->anatomy.hip[h], stage0[h], progress_share(vis->day, last_day),
                             final_collapse[h], &vis->stage[h]);
        }
    }
    for (int h = 0; h < 2; h++)
        pt->progressed[h] =
            pt->affected[h] && (pt->visits[nv - 1].stage[h] > stage0[h] ||
                                pt->visits[nv - 1].anatomy.hip[h].lesion.collapse_mm >
                                    pt->visits[0].anatomy.hip[h].lesion.collapse_mm);

    /* Vessels of the treated (else primary) hip. */
    pt->vessel_branches_pre = 4 + (int)philox_below(&rng, 5);
    if (pt->treated_hip >= 0) {
        double db = p->vessel_branch_change + p->vessel_branch_change_sd * philox_normal(&rng);
        pt->vessel_branches_add = db > 0 ? (int)lround(db) : 0;
        double dl =
            p->vessel_length_change_mm + p->vessel_length_change_sd_mm * philox_normal(&rng);
        /* New branches need room: each is at least min_branch_mm long (vessel_tree.h). */
        VesselParams vp = {.min_branch_mm = COHORT_MIN_BRANCH_MM};
        double need = vessel_tree_grow_min_length_mm(pt->vessel_branches_add, &vp) + 0.5;
        pt->vessel_length_add_mm = dl > need ? dl : need;
    }
    return 0;
}
