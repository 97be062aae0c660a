/* vessels.c: `onfh vessels` (vessels.h): series i is measured by rank i mod size; the measures
 * travel to every rank by a sum over ranks of arrays that are zero except where a rank measured
 * (x + 0 is exact, so the numbers do not depend on the rank count); rank 0 pairs the visits
 * and writes the files. */
#include "stages/vessels/vessels.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/image/overlay.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"
#include "stages/vessels/report.h"

enum { NF = 19 }; /* doubles per series in the exchange */

static void pack(const VesselResult *r, double *f)
{
    double v[NF] = {1.0,
                    r->m.length_mm,
                    r->m.path_mm,
                    r->end_extension_mm,
                    r->m.branches,
                    r->m.mean_branch_mm,
                    r->m.junctions,
                    r->m.end_points,
                    r->m.pruned,
                    r->m.by_type[0],
                    r->m.by_type[1],
                    r->m.by_type[2],
                    r->m.by_type[3],
                    r->components,
                    r->removed_objects,
                    (double)r->mask_voxels,
                    (double)r->skeleton_voxels,
                    r->vesselness_max,
                    r->junction_correction_mm};
    memcpy(f, v, sizeof v);
}

static void unpack(const double *f, VesselResult *r, VMeasured *m)
{
    m->ok = f[0] > 0;
    r->m.length_mm = f[1], r->m.path_mm = f[2], r->end_extension_mm = f[3];
    r->m.branches = (int)f[4], r->m.mean_branch_mm = f[5], r->m.junctions = (int)f[6];
    r->m.end_points = (int)f[7], r->m.pruned = (int)f[8];
    for (int k = 0; k < 4; k++)
        r->m.by_type[k] = (int)f[9 + k];
    r->components = (int)f[13], r->removed_objects = (int)f[14];
    r->mask_voxels = (int64_t)f[15], r->skeleton_voxels = (int64_t)f[16];
    r->vesselness_max = f[17], r->junction_correction_mm = f[18];
    m->length_mm = r->m.length_mm, m->branches = r->m.branches;
}

/* The method from the config; ERR_CONFIG names a bad vessels.sigmas_mm item. */
static int read_method(const Config *cfg, VesselMethod *me, Err *e)
{
    memset(me, 0, sizeof *me);
    char *const *items;
    int n = config_list(cfg, "vessels.sigmas_mm", &items);
    if (n > VESSEL_MAX_SIGMAS)
        return err_set(e, ERR_CONFIG, "vessels.sigmas_mm: %d scales, at most %d", n,
                       VESSEL_MAX_SIGMAS);
    for (int i = 0; i < n; i++) {
        char *end;
        double v = strtod(items[i], &end);
        if (*end || !(v > 0) || !isfinite(v))
            return err_set(e, ERR_CONFIG,
                           "%s: vessels.sigmas_mm: item %d is \"%s\", expected a number > 0 (mm)",
                           config_where(cfg, "vessels.sigmas_mm"), i + 1, items[i]);
        me->sigmas_mm[i] = v;
    }
    me->n_sigmas = n;
    me->alpha = config_num(cfg, "vessels.frangi_alpha");
    me->beta = config_num(cfg, "vessels.frangi_beta");
    me->c = config_num(cfg, "vessels.frangi_c");
    me->threshold_low = config_num(cfg, "vessels.threshold_low");
    me->threshold_high = config_num(cfg, "vessels.threshold_high");
    if (me->threshold_low > me->threshold_high)
        return err_set(e, ERR_CONFIG, "vessels.threshold_low (%g) is above threshold_high (%g)",
                       me->threshold_low, me->threshold_high);
    me->min_object_mm3 = config_num(cfg, "vessels.min_object_mm3");
    me->prune_mm = config_num(cfg, "vessels.prune_mm");
    me->end_extension_max_mm = config_num(cfg, "vessels.end_extension_max_mm");
    n = config_list(cfg, "vessels.junction_line_mm", &items);
    for (int i = 0; i < n; i++) {
        char *end;
        double v = strtod(items[i], &end);
        if (*end || !(v >= 0) || !isfinite(v))
            return err_set(
                e, ERR_CONFIG,
                "%s: vessels.junction_line_mm: item %d is \"%s\", expected a number >= 0 "
                "(mm)",
                config_where(cfg, "vessels.junction_line_mm"), i + 1, items[i]);
        me->junction_line_mm[i] = v;
    }
    if (!(me->junction_line_mm[1] > me->junction_line_mm[0]))
        return err_set(e, ERR_CONFIG, "%s: vessels.junction_line_mm: [%g, %g], expected from < to",
                       config_where(cfg, "vessels.junction_line_mm"), me->junction_line_mm[0],
                       me->junction_line_mm[1]);
    me->junction_shift_max_mm = config_num(cfg, "vessels.junction_shift_max_mm");
    return 0;
}

/* Why series s cannot be measured, or NULL. */
static const char *unusable(const VSeries *s)
{
    for (int a = 0; a < 3; a++)
        if (!(s->spacing[a] > 0) || !isfinite(s->spacing[a]))
            return "spacing missing or not positive (PixelSpacing, or the slice positions)";
    if (s->dims[0] < 3 || s->dims[1] < 3 || s->dims[2] < 1)
        return "fewer than 3 rows or columns";
    if (s->offset < 0)
        return "no native voxels in cohort.h5";
    return NULL;
}

static int measure_mine(const Session *s, const char *cohort, const VCohort *c,
                        const VesselMethod *me, int overlays, double *f, Err *e)
{
    int rank = rt_rank(), size = rt_size();
    for (int i = rank; i < c->n_series; i += size) {
        const VSeries *vs = &c->series[i];
        if (unusable(vs))
            continue;
        size_t n = (size_t)vs->dims[0] * vs->dims[1] * vs->dims[2];
        float *vol = mem_alloc(n * sizeof *vol);
        uint8_t *skel = mem_alloc(n);
        VesselResult r;
        int rc = vol && skel ? 0 : err_set(e, ERR_NOMEM, "vessels: out of memory");
        rc = rc || vcohort_voxels(cohort, vs, vol, e) ||
             vessel_measure(vol, vs->dims, vs->spacing, me, &r, skel, e);
        if (rc == 0 && overlays && vs->dims[2] > 1) {
            char path[4400];
            snprintf(path, sizeof path, "%s/vessel_overlays/%s_visit%d_series%d.png", s->run.path,
                     c->pseudonym[vs->patient], vs->visit, vs->row);
            int scale = vs->dims[0] >= 256 ? 1 : 256 / vs->dims[0];
            rc = overlay_mip_png(path, vol, skel, vs->dims, scale, e);
        }
        mem_free(vol), mem_free(skel);
        if (rc)
            return err_prefix(e, "vessels: series %d (patient %s, visit %d)", vs->row,
                              c->pseudonym[vs->patient], vs->visit);
        pack(&r, f + (size_t)i * NF);
    }
    return 0;
}

int vessels_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    const Config *cfg = &s->cfg;
    char cohort[4200];
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", s->run.path);
    VesselMethod me;
    VCohort c = {0};
    Treatment t = {0};
    double *f = NULL;
    VesselResult *res = NULL;
    VMeasured *m = NULL;
    int overlays = config_bool(cfg, "vessels.overlays");
    int rc = read_method(cfg, &me, e) || vcohort_read(&c, cohort, e);
    if (rt_agree(e) && (rc = -1))
        goto out;
    if (c.n_series == 0) {
        log_warn("vessels: %s has no vessel series (role 2: SeriesDescription matching "
                 "ingest.vessel_series): nothing to measure; vessels.h5 and treatment.json "
                 "are written empty",
                 cohort);
        s->stage_partial = 1;
    }
    for (int i = 0; i < c.n_series; i++) {
        const char *why = unusable(&c.series[i]);
        if (why) {
            log_warn("vessels: skipped series %d of patient %s, visit %d: %s", c.series[i].row,
                     c.pseudonym[c.series[i].patient], c.series[i].visit, why);
            s->stage_partial = 1;
        }
    }
    size_t ns = (size_t)(c.n_series ? c.n_series : 1);
    f = mem_calloc(ns * NF, sizeof *f);
    res = mem_calloc(ns, sizeof *res);
    m = mem_calloc(ns, sizeof *m);
    if (!f || !res || !m)
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
    if (rc == 0 && overlays && rt_rank() == 0) {
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/vessel_overlays", s->run.path);
        rc = dir_exists(dir) ? 0 : dir_create(dir, e);
    }
    if (rt_agree(e) && (rc = -1))
        goto out;
    log_info("vessels: %d vessel series of %d patients on %d rank(s); sigmas %g..%g mm, "
             "hysteresis %g/%g, prune %g mm",
             c.n_series, c.n_patients, rt_size(), me.sigmas_mm[0], me.sigmas_mm[me.n_sigmas - 1],
             me.threshold_low, me.threshold_high, me.prune_mm);
    rc = measure_mine(s, cohort, &c, &me, overlays, f, e);
    if (rt_agree(e) && (rc = -1))
        goto out;
    MPI_Allreduce(MPI_IN_PLACE, f, (int)(ns * NF), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (int i = 0; i < c.n_series; i++)
        unpack(f + (size_t)i * NF, &res[i], &m[i]);
    if (rt_rank() == 0) {
        rc = treatment_compute(&c, m, (int)config_int(cfg, "vessels.bootstrap_resamples"),
                               (uint64_t)config_int(cfg, "run.seed"),
                               config_num(cfg, "vessels.confidence_level"), &t, e);
        for (int i = 0; rc == 0 && i < t.n_skips; i++)
            log_warn("vessels: treatment response: skipped patient %s: %s",
                     c.pseudonym[t.skips[i].patient], t.skips[i].reason);
        if (rc == 0 && c.n_clinical == 0 && c.n_series > 0)
            s->stage_partial = 1;
        if (rc == 0 && c.n_clinical == 0)
            log_warn("vessels: %s has no clinical rows (ingest.clinical_csv unset?): no visit "
                     "is known to follow a graft, so treatment.json has no pairs",
                     cohort);
        Versions v;
        versions_get(&v);
        VProvenance pv = {config_str(cfg, "run.name"), s->config_hash, v.onfh, v.commit, &me};
        char p1[4300], p2[4300];
        snprintf(p1, sizeof p1, "%s/vessels.h5", s->run.path);
        snprintf(p2, sizeof p2, "%s/treatment.json", s->run.path);
        rc = rc || vessels_write_h5(p1, &c, res, m, &pv, e) ||
             vessels_write_treatment(p2, &c, m, &t, &pv, e);
        if (rc == 0)
            log_info("vessels: change after grafting (n=%d): length %+.2f mm (95%% CI t %.2f to "
                     "%.2f, bootstrap BCa %.2f to %.2f; p t %.3g, Wilcoxon %.3g), branches %+.2f "
                     "(t %.2f to %.2f, BCa %.2f to %.2f; p t %.3g, Wilcoxon %.3g)",
                     t.n_pairs, t.length.s.mean, t.length.s.t_lo, t.length.s.t_hi,
                     t.length.boot_bca[0], t.length.boot_bca[1], t.length.s.t_p, t.length.s.w_p,
                     t.branches.s.mean, t.branches.s.t_lo, t.branches.s.t_hi,
                     t.branches.boot_bca[0], t.branches.boot_bca[1], t.branches.s.t_p,
                     t.branches.s.w_p);
        /* a patient without a post-graft visit (or never grafted) is the cohort as it is,
         * not a fault of the input: warned, not partial */
    }
    MPI_Bcast(&s->stage_partial, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rt_agree(e) && (rc = -1))
        goto out;
    const char *inputs[] = {"cohort.h5"};
    const char *outputs[] = {"vessels.h5", "treatment.json", "vessel_overlays"};
    rc = session_record_stage(s, "vessels", inputs, 1, outputs, overlays ? 3 : 2, MPI_Wtime() - t0,
                              e);
out:
    treatment_free(&t);
    vcohort_free(&c);
    mem_free(f), mem_free(res), mem_free(m);
    return rc ? -1 : 0;
}
