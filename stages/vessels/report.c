/* report.c: writing vessels.h5 and treatment.json (report.h). */
#include "stages/vessels/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5out.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"

const char *const vessels_length_definition =
    "sum over the branches of the pruned skeleton of the branch length: the polyline node "
    "centroid -> branch voxels -> node centroid, smoothed by a moving average of 2 points "
    "either side, in mm (spacing-aware); plus, at each end point, the distance along the "
    "branch's end direction to the vessel mask's edge less the mask's half-width there (at most "
    "end_extension_max_mm); plus, at each junction, the change when the branches run straight "
    "to where their lines meet (each branch's line through its voxels junction_line_mm out; the "
    "least-squares meeting point, if within junction_shift_max_mm of the node) instead of to "
    "the node";
const char *const vessels_branch_definition =
    "number of branches of the skeleton graph after pruning: edges between nodes (end points "
    "and 26-connected junction-voxel clusters), chains of degree-2 voxels; spurs (end-end or "
    "junction-end branches) shorter than prune_mm removed in one pass, and nodes left with two "
    "branches joined; isolated cycles count one";

/* One column of rows where m[i].ok. */
typedef double (*Getter)(const VCohort *c, const VesselResult *r, int i);
#define GET(name, expr)                                                                            \
    static double name(const VCohort *c, const VesselResult *r, int i)                             \
    {                                                                                              \
        (void)c, (void)r;                                                                          \
        return (double)(expr);                                                                     \
    }
GET(g_row, c->series[i].row)
GET(g_patient, c->series[i].patient)
GET(g_visit, c->series[i].visit)
GET(g_day, c->series[i].day)
GET(g_length, r[i].m.length_mm)
GET(g_path, r[i].m.path_mm)
GET(g_ext, r[i].end_extension_mm)
GET(g_junc, r[i].junction_correction_mm)
GET(g_branches, r[i].m.branches)
GET(g_mean, r[i].m.mean_branch_mm)
GET(g_junctions, r[i].m.junctions)
GET(g_ends, r[i].m.end_points)
GET(g_pruned, r[i].m.pruned)
GET(g_t0, r[i].m.by_type[0])
GET(g_t1, r[i].m.by_type[1])
GET(g_t2, r[i].m.by_type[2])
GET(g_t3, r[i].m.by_type[3])
GET(g_comp, r[i].components)
GET(g_mask, r[i].mask_voxels)
GET(g_skel, r[i].skeleton_voxels)
GET(g_vmax, r[i].vesselness_max)

static int column(H5Out *o, const char *name, int is_int, Getter get, const VCohort *c,
                  const VesselResult *r, const VMeasured *m, int n, Err *e)
{
    char path[128];
    snprintf(path, sizeof path, "/series/%s", name);
    uint64_t dims[1] = {(uint64_t)n};
    hid_t ds;
    if (h5out_dataset(o, path, is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, 1, dims, NULL, 0, &ds, e))
        return -1;
    void *buf = mem_alloc((size_t)(n ? n : 1) * 8);
    int rc = buf ? 0 : err_set(e, ERR_NOMEM, "vessels: out of memory");
    for (int i = 0, k = 0; rc == 0 && i < c->n_series; i++) {
        if (!m[i].ok)
            continue;
        double v = get(c, r, i);
        if (is_int)
            ((int64_t *)buf)[k++] = (int64_t)v;
        else
            ((double *)buf)[k++] = v;
    }
    if (rc == 0)
        rc = h5out_write_rows(o, ds, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, 0, (uint64_t)n,
                              buf, e);
    mem_free(buf);
    H5Dclose(ds);
    return rc;
}

int vessels_write_h5(const char *path, const VCohort *c, const VesselResult *r, const VMeasured *m,
                     const VProvenance *pv, Err *e)
{
    static const struct {
        const char *name;
        int is_int;
        Getter get;
    } cols[] = {
        {"cohort_series", 1, g_row},
        {"patient", 1, g_patient},
        {"visit", 1, g_visit},
        {"day", 1, g_day},
        {"length_mm", 0, g_length},
        {"path_mm", 0, g_path},
        {"end_extension_mm", 0, g_ext},
        {"junction_correction_mm", 0, g_junc},
        {"branches", 1, g_branches},
        {"mean_branch_mm", 0, g_mean},
        {"junctions", 1, g_junctions},
        {"end_points", 1, g_ends},
        {"pruned", 1, g_pruned},
        {"end_end", 1, g_t0},
        {"junction_end", 1, g_t1},
        {"junction_junction", 1, g_t2},
        {"cycles", 1, g_t3},
        {"components", 1, g_comp},
        {"mask_voxels", 1, g_mask},
        {"skeleton_voxels", 1, g_skel},
        {"vesselness_max", 0, g_vmax},
    };
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = 0;
    for (int i = 0; i < c->n_series; i++)
        n += m[i].ok;
    H5Out o = {0};
    const VesselMethod *me = pv->method;
    int rc = h5out_create(&o, tmp, MPI_COMM_SELF, e);
    rc = rc || h5out_attr_string(o.file, "schema", "onfh-vessels-2", e) ||
         h5out_attr_string(o.file, "run", pv->run_name, e) ||
         h5out_attr_string(o.file, "config_sha256", pv->config_sha256, e) ||
         h5out_attr_string(o.file, "onfh_version", pv->onfh_version, e) ||
         h5out_attr_string(o.file, "onfh_commit", pv->onfh_commit, e) ||
         h5out_attr_string(o.file, "length_definition", vessels_length_definition, e) ||
         h5out_attr_string(o.file, "branch_definition", vessels_branch_definition, e) ||
         h5out_attr_string(o.file, "vesselness",
                           "Frangi 1998, bright vessels, max over sigmas_mm (per-axis sigmas "
                           "from the spacing); c <= 0: half the largest Hessian norm per scale",
                           e) ||
         h5out_attr_string(o.file, "skeleton",
                           "hysteresis (26-connected) -> small objects removed -> Lee 1994 "
                           "thinning (3D), Zhang-Suen (2D)",
                           e) ||
         h5out_attr_doubles(o.file, "sigmas_mm", me->sigmas_mm, me->n_sigmas, e) ||
         h5out_attr_doubles(o.file, "frangi_alpha_beta_c", (double[]){me->alpha, me->beta, me->c},
                            3, e) ||
         h5out_attr_doubles(o.file, "threshold_low_high",
                            (double[]){me->threshold_low, me->threshold_high}, 2, e) ||
         h5out_attr_doubles(o.file, "min_object_mm3", &me->min_object_mm3, 1, e) ||
         h5out_attr_doubles(o.file, "prune_mm", &me->prune_mm, 1, e) ||
         h5out_attr_doubles(o.file, "end_extension_max_mm", &me->end_extension_max_mm, 1, e) ||
         h5out_attr_doubles(o.file, "junction_line_mm", me->junction_line_mm, 2, e) ||
         h5out_attr_doubles(o.file, "junction_shift_max_mm", &me->junction_shift_max_mm, 1, e) ||
         h5out_attr_int(o.file, "smooth_half_window", SKEL_SMOOTH, e) ||
         h5out_group(&o, "/series", e);
    for (size_t k = 0; rc == 0 && k < sizeof cols / sizeof *cols; k++)
        rc = column(&o, cols[k].name, cols[k].is_int, cols[k].get, c, r, m, n, e);
    int rc2 = h5out_close(&o, e);
    rc = rc || rc2;
    if (rc == 0 && rename(tmp, path))
        rc = err_set(e, ERR_IO, "%s: cannot rename to %s", tmp, path);
    return rc ? -1 : 0;
}

static void pair2(JsonWriter *w, const char *key, double a, double b)
{
    json_key(w, key);
    json_array_begin(w);
    json_number(w, a);
    json_number(w, b);
    json_array_end(w);
}

static void arm(JsonWriter *w, const char *key, const TreatArm *a)
{
    json_key(w, key);
    json_object_begin(w);
    json_key(w, "n"), json_int(w, a->s.n);
    json_key(w, "mean_change"), json_number(w, a->s.mean);
    json_key(w, "sd_change"), json_number(w, a->s.sd);
    pair2(w, "ci_t", a->s.t_lo, a->s.t_hi);
    pair2(w, "ci_bootstrap_bca", a->boot_bca[0], a->boot_bca[1]);
    pair2(w, "ci_bootstrap_percentile", a->boot_pct[0], a->boot_pct[1]);
    json_key(w, "t_statistic"), json_number(w, a->s.t_stat);
    json_key(w, "p_paired_t"), json_number(w, a->s.t_p);
    json_key(w, "wilcoxon_statistic"), json_number(w, a->s.w_stat);
    json_key(w, "p_wilcoxon"), json_number(w, a->s.w_p);
    json_key(w, "wilcoxon_n_nonzero"), json_int(w, a->s.w_n);
    json_key(w, "wilcoxon_method"), json_string(w, a->s.w_exact ? "exact" : "normal");
    json_object_end(w);
}

int vessels_write_treatment(const char *path, const VCohort *c, const VMeasured *m,
                            const Treatment *t, const VProvenance *pv, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "schema"), json_string(&w, "onfh-treatment-1");
    json_key(&w, "run"), json_string(&w, pv->run_name);
    json_key(&w, "config_sha256"), json_string(&w, pv->config_sha256);
    json_key(&w, "onfh_commit"), json_string(&w, pv->onfh_commit);
    json_key(&w, "definitions");
    json_object_begin(&w);
    json_key(&w, "change"),
        json_string(&w, "per patient: post minus pre; pre = last measured vessel series before "
                        "the graft, post = last after it (clinical rows of the grafted hip)");
    json_key(&w, "length_mm"), json_string(&w, vessels_length_definition);
    json_key(&w, "branches"), json_string(&w, vessels_branch_definition);
    json_key(&w, "t_interval"), json_string(&w, "mean +- t_{(1+level)/2, n-1} sd / sqrt(n)");
    json_key(&w, "bootstrap_interval"),
        json_string(&w, "patients resampled with replacement, mean change per resample; BCa "
                        "and percentile as scipy.stats.bootstrap");
    json_key(&w, "wilcoxon"),
        json_string(&w, "two-sided signed-rank, zeros dropped, exact without ties for n <= 50, "
                        "else normal with tie correction, no continuity correction");
    json_object_end(&w);
    json_key(&w, "confidence_level"), json_number(&w, t->level);
    json_key(&w, "bootstrap_resamples"), json_int(&w, t->resamples);
    json_key(&w, "bootstrap_seed"), json_int(&w, (int64_t)t->seed);
    arm(&w, "length_mm", &t->length);
    arm(&w, "branches", &t->branches);
    json_key(&w, "patients");
    json_array_begin(&w);
    for (int i = 0; i < t->n_pairs; i++) {
        const TreatPair *q = &t->pairs[i];
        json_object_begin(&w);
        json_key(&w, "patient"), json_string(&w, c->pseudonym[q->patient]);
        json_key(&w, "pre_visit"), json_int(&w, c->series[q->pre].visit);
        json_key(&w, "post_visit"), json_int(&w, c->series[q->post].visit);
        pair2(&w, "length_mm_pre_post", m[q->pre].length_mm, m[q->post].length_mm);
        pair2(&w, "branches_pre_post", m[q->pre].branches, m[q->post].branches);
        json_key(&w, "change_length_mm"), json_number(&w, q->d_length);
        json_key(&w, "change_branches"), json_number(&w, q->d_branches);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_key(&w, "skipped");
    json_array_begin(&w);
    for (int i = 0; i < t->n_skips; i++) {
        json_object_begin(&w);
        json_key(&w, "patient"), json_string(&w, c->pseudonym[t->skips[i].patient]);
        json_key(&w, "reason"), json_string(&w, t->skips[i].reason);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    char *text;
    size_t len;
    if (json_writer_finish(&w, &text, &len, e))
        return err_prefix(e, "%s", path);
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}
