/* features.c: the progression stage's patients, visits and per-visit features (features.h). */
#include "stages/progression/features.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"

const char *const prog_feature_names[PROG_N_FEATURES] = {
    "p_mean", "p_max", "frac_above", "extent_mm", "vessel_length_mm", "vessel_branches",
};

const char *const prog_feature_definitions[PROG_N_FEATURES] = {
    "mean over the visit's decodable training slices of the CNN's lesion probability",
    "largest lesion probability of the visit's slices",
    "fraction of the visit's slices whose lesion probability is >= progression.slice_threshold",
    "lesion extent along the slice stack from the probability profile: sum over the visit's "
    "slices of probability x slice spacing (mm), the expected length of stack showing a lesion",
    "vessel length of the visit's vessel series (vessels.h5 /series/length_mm), mm",
    "branch count of the visit's vessel series (vessels.h5 /series/branches)",
};

void prog_feature_list(const int *use, int n, const char *sep, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int j = 0; j < (use ? n : PROG_N_FEATURES) && at < cap; j++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", j ? sep : "",
                               prog_feature_names[use ? use[j] : j]);
}

void prog_cohort_free(ProgCohort *c)
{
    mem_free(c->pseudonym), mem_free(c->patient), mem_free(c->outcome), mem_free(c->n_visits);
    mem_free(c->len), mem_free(c->included), mem_free(c->cnn_fold), mem_free(c->study);
    mem_free(c->visit), mem_free(c->day), mem_free(c->gap_days);
    memset(c, 0, sizeof *c);
}

/* patient_fold[p] (n_patients): the split fold whose test partition holds patient p's slices,
 * -1 when none does (no labelled slice). A slice-level split sets why (nothing to forecast). */
static int read_split(const char *run_dir, const int32_t *slice_patient, int64_t n_slices,
                      int n_patients, int *patient_fold, int *n_folds, char *why, size_t why_cap,
                      Err *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/splits.json", run_dir);
    JsonValue *v = NULL;
    int rc = json_parse_file(path, &v, e);
    if (rc && !file_exists(path))
        return err_prefix(e, "progression (run `onfh split` first?): ");
    if (rc)
        return -1;
    const char *level = json_get_string(v, "level");
    const JsonValue *folds = json_get(v, "fold");
    for (int p = 0; p < n_patients; p++)
        patient_fold[p] = -1;
    if (level && !strcmp(level, "slice")) {
        snprintf(why, why_cap,
                 "splits.json is slice-level (split.level: slice): every CNN checkpoint has seen "
                 "slices of every patient, so no patient has an out-of-fold score to forecast "
                 "from");
        json_value_free(v);
        return 0;
    }
    if (!level || strcmp(level, "patient"))
        rc = err_set(e, ERR_FORMAT, "%s: field level: '%s', expected 'patient' or 'slice'", path,
                     level ? level : "(none)");
    else if (!folds || folds->type != JSON_ARRAY || folds->n < 2)
        rc = err_set(e, ERR_FORMAT, "%s: field fold: expected an array of at least 2 folds", path);
    for (size_t k = 0; rc == 0 && k < folds->n; k++) {
        const JsonValue *test = json_get(&folds->items[k], "test");
        if (!test || test->type != JSON_ARRAY) {
            rc = err_set(e, ERR_FORMAT, "%s: fold %zu: field test: expected an array of slice rows",
                         path, k);
            break;
        }
        for (size_t j = 0; j < test->n; j++) {
            double r = test->items[j].number;
            if (test->items[j].type != JSON_NUMBER || r < 0 || r >= (double)n_slices ||
                r != floor(r)) {
                rc = err_set(e, ERR_FORMAT,
                             "%s: fold %zu: field test: item %zu is not a row of cohort.h5 "
                             "/slices (0..%lld)",
                             path, k, j, (long long)n_slices - 1);
                break;
            }
            int p = slice_patient[(int64_t)r];
            if (p < 0 || p >= n_patients) {
                rc = err_set(e, ERR_FORMAT, "cohort.h5: /slices/patient of row %lld is %d",
                             (long long)r, p);
                break;
            }
            if (patient_fold[p] >= 0 && patient_fold[p] != (int)k) {
                rc = err_set(e, ERR_FORMAT,
                             "%s: patient row %d has test slices in folds %d and %zu: not a "
                             "patient-level split",
                             path, p, patient_fold[p], k);
                break;
            }
            patient_fold[p] = (int)k;
        }
    }
    if (rc == 0)
        *n_folds = (int)folds->n;
    json_value_free(v);
    return rc;
}

int prog_cohort_read(ProgCohort *c, const char *run_dir, int cutoff_days, char *why, size_t why_cap,
                     Err *e)
{
    memset(c, 0, sizeof *c);
    why[0] = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/cohort.h5", run_dir);
    hid_t f;
    if (h5_open_read(path, &f, e))
        return err_prefix(e, "progression (run `onfh ingest` first?): ");
    char *pseud = NULL, *outcome = NULL;
    long np = 0, no = 0;
    H5Array st_patient = {0}, st_day = {0}, st_visit = {0}, cl_patient = {0}, sl_patient = {0};
    int *fold_of = NULL, *status = NULL, *slot = NULL;
    int rc = h5_read_strings(f, path, "/patients/pseudonym", 16, &pseud, &np, e) ||
             h5_read_int(f, "/studies/patient", &st_patient, e) ||
             h5_read_int(f, "/studies/day", &st_day, e) ||
             h5_read_int(f, "/studies/visit", &st_visit, e) ||
             h5_read_int(f, "/slices/patient", &sl_patient, e);
    if (rc == 0 && !h5_exists(f, "/clinical/patient")) {
        snprintf(why, why_cap,
                 "cohort.h5 has no /clinical table (ingest.clinical_csv unset?), so no outcome");
        h5_close(f);
        mem_free(pseud);
        h5_array_free(&st_patient), h5_array_free(&st_day), h5_array_free(&st_visit);
        h5_array_free(&sl_patient);
        return 0;
    }
    rc = rc || h5_read_int(f, "/clinical/patient", &cl_patient, e) ||
         h5_read_strings(f, path, "/clinical/outcome", 15, &outcome, &no, e);
    h5_close(f);
    int n_p = (int)np;
    size_t a = (size_t)(n_p ? n_p : 1);
    if (rc == 0) {
        fold_of = mem_alloc(a * sizeof(int));
        status = mem_alloc(a * sizeof(int));
        slot = mem_alloc(a * sizeof(int));
        if (!fold_of || !status || !slot)
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    }
    rc = rc || read_split(run_dir, sl_patient.data, (int64_t)sl_patient.numel, n_p, fold_of,
                          &c->n_cnn_folds, why, why_cap, e);
    if (rc == 0 && why[0]) {
        n_p = 0; /* nothing to forecast: an empty cohort */
        cl_patient.numel = 0;
        st_patient.numel = 0;
    }
    /* status: -1 no clinical row, 0 unaffected only, 1 stable, 2 progressed */
    for (int p = 0; rc == 0 && p < n_p; p++)
        status[p] = -1;
    for (size_t i = 0; rc == 0 && i < cl_patient.numel; i++) {
        int p = ((int32_t *)cl_patient.data)[i];
        const char *o = outcome + 16 * i;
        int s = !strcmp(o, "progressed") ? 2 : !strcmp(o, "stable") ? 1 : 0;
        if (p < 0 || p >= n_p)
            rc = err_set(e, ERR_FORMAT,
                         "%s: /clinical row %zu: patient %d is not a row of /patients", path, i, p);
        else if (s == 0 && strcmp(o, "unaffected"))
            rc = err_set(e, ERR_FORMAT,
                         "%s: /clinical row %zu: field outcome: '%s', expected progressed, stable "
                         "or unaffected",
                         path, i, o);
        else if (s > status[p])
            status[p] = s;
    }
    /* patients with an outcome, and their visits with a usable date, in /studies order */
    int n = 0, t = 0;
    for (int p = 0; rc == 0 && p < n_p; p++) {
        slot[p] = status[p] >= 1 ? n++ : -1;
        c->n_no_outcome += status[p] < 1;
    }
    int *count = rc ? NULL : mem_calloc(a, sizeof(int));
    if (rc == 0 && !count)
        rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    for (size_t s = 0; rc == 0 && s < st_patient.numel; s++) {
        int p = ((int32_t *)st_patient.data)[s];
        if (p < 0 || p >= n_p)
            rc = err_set(e, ERR_FORMAT,
                         "%s: /studies row %zu: patient %d is not a row of /patients", path, s, p);
        else if (((int32_t *)st_day.data)[s] >= 0 && ++count[p] > t)
            t = count[p];
    }
    c->n = n, c->t = t > 0 ? t : 1, c->n_patients = n_p;
    size_t nn = (size_t)(n ? n : 1), nt = nn * (size_t)c->t;
    if (rc == 0) {
        c->pseudonym = mem_calloc(nn, sizeof *c->pseudonym);
        c->patient = mem_alloc(nn * sizeof(int)), c->outcome = mem_alloc(nn * sizeof(int));
        c->n_visits = mem_calloc(nn, sizeof(int)), c->len = mem_calloc(nn, sizeof(int));
        c->included = mem_calloc(nn, sizeof(int)), c->cnn_fold = mem_alloc(nn * sizeof(int));
        c->study = mem_alloc(nt * sizeof(int)), c->visit = mem_alloc(nt * sizeof(int));
        c->day = mem_alloc(nt * sizeof(int)), c->gap_days = mem_calloc(nt, sizeof(float));
        if (!c->pseudonym || !c->patient || !c->outcome || !c->n_visits || !c->len ||
            !c->included || !c->cnn_fold || !c->study || !c->visit || !c->day || !c->gap_days)
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    }
    for (size_t k = 0; rc == 0 && k < nt; k++)
        c->study[k] = c->visit[k] = c->day[k] = -1;
    for (int p = 0; rc == 0 && p < n_p; p++) {
        int i = slot[p];
        if (i < 0)
            continue;
        memcpy(c->pseudonym[i], pseud + 17 * (size_t)p, 17);
        c->patient[i] = p;
        c->outcome[i] = status[p] == 2;
        /* no labelled slice: no fold held it out, and no checkpoint was trained on it */
        c->cnn_fold[i] = fold_of[p] >= 0 ? fold_of[p] : 0;
    }
    for (size_t s = 0; rc == 0 && s < st_patient.numel; s++) {
        int p = ((int32_t *)st_patient.data)[s], d = ((int32_t *)st_day.data)[s];
        int i = slot[p];
        if (i < 0 || d < 0)
            continue;
        int v = c->n_visits[i]++;
        size_t at = (size_t)i * c->t + v;
        c->study[at] = (int)s, c->day[at] = d, c->visit[at] = ((int32_t *)st_visit.data)[s];
        c->gap_days[at] = v > 0 ? (float)(d - c->day[at - 1]) : 0.0f;
        if (v > 0 && d < c->day[at - 1])
            rc = err_set(e, ERR_FORMAT, "%s: /studies rows of patient %s are not in date order",
                         path, c->pseudonym[i]);
        if (d <= cutoff_days)
            c->len[i] = v + 1;
        else
            c->included[i] = 1;
    }
    for (int i = 0; rc == 0 && i < n; i++)
        if (c->len[i] < 1) /* the first study comes after the cut-off: nothing to forecast from */
            c->included[i] = 0, c->len[i] = 1;
    mem_free(count);
    mem_free(pseud), mem_free(outcome), mem_free(fold_of), mem_free(status), mem_free(slot);
    h5_array_free(&st_patient), h5_array_free(&st_day), h5_array_free(&st_visit);
    h5_array_free(&cl_patient), h5_array_free(&sl_patient);
    if (rc)
        prog_cohort_free(c);
    return rc;
}

static void checkpoint_path(char *out, size_t cap, const char *run_dir, const char *arch, int k)
{
    snprintf(out, cap, "%s/models/%s/fold%d/checkpoint.h5", run_dir, arch, k);
}

int prog_checkpoints_exist(const ProgCohort *c, const char *run_dir, const char *arch)
{
    char path[4400];
    for (int k = 0; k < c->n_cnn_folds; k++) {
        checkpoint_path(path, sizeof path, run_dir, arch, k);
        if (!file_exists(path))
            return 0;
    }
    return 1;
}

/* The slice tables the scoring needs. */
typedef struct Slices {
    int64_t n;
    H5Array patient, series, valid;
    H5Array ser_study;
    double *ser_spacing; /* (series, 3) */
    int64_t n_series;
    long grid;
} Slices;

static void slices_free(Slices *s)
{
    h5_array_free(&s->patient), h5_array_free(&s->series), h5_array_free(&s->valid);
    h5_array_free(&s->ser_study);
    mem_free(s->ser_spacing);
}

static int slices_read(hid_t f, const char *path, Slices *s, Err *e)
{
    memset(s, 0, sizeof *s);
    int rc = h5_read_int(f, "/slices/patient", &s->patient, e) ||
             h5_read_int(f, "/slices/series", &s->series, e) ||
             h5_read_int(f, "/slices/valid", &s->valid, e) ||
             h5_read_int(f, "/series/study", &s->ser_study, e) ||
             h5_attr_long(f, ".", "grid_size", &s->grid, e);
    if (rc)
        return -1;
    s->n = (int64_t)s->patient.numel;
    s->n_series = (int64_t)s->ser_study.numel;
    s->ser_spacing = mem_alloc((size_t)(s->n_series ? s->n_series : 1) * 3 * sizeof(double));
    if (!s->ser_spacing)
        return err_set(e, ERR_NOMEM, "progression: out of memory");
    if (s->n_series &&
        h5_read_rows(f, "/series/spacing_mm", 0, s->n_series, H5T_NATIVE_DOUBLE, s->ser_spacing, e))
        return -1;
    for (int64_t r = 0; r < s->n; r++) {
        int se = ((int32_t *)s->series.data)[r];
        if (se < 0 || se >= s->n_series)
            return err_set(e, ERR_FORMAT,
                           "%s: /slices/series of row %lld is %d, not a row of /series", path,
                           (long long)r, se);
    }
    return 0;
}

/* Lesion probability of every slice of fold k's patients with fold k's checkpoint: prob (rows
 * of /slices) gets softmax class 1; other rows are left alone. */
static int score_fold(hid_t f, const char *cohort, const Slices *sl, const int *slot,
                      const ProgCohort *c, const char *run_dir, const char *arch, int k,
                      const NnBackend *be, float *prob, long *scored, Err *e)
{
    char ckpt[4400];
    checkpoint_path(ckpt, sizeof ckpt, run_dir, arch, k);
    NnCheckpointInfo info;
    if (nn_checkpoint_info(ckpt, &info, e))
        return err_prefix(e, "(has `onfh train` finished every fold of %s?) ", arch);
    if (info.image_size != sl->grid || info.classes < 2)
        return err_set(e, ERR_FORMAT,
                       "%s: trained at %d px with %d classes, but %s holds %ld px slices", ckpt,
                       info.image_size, info.classes, cohort, sl->grid);
    enum { BATCH = 16 };
    NnGraph g;
    if (nn_model_graph(&g, be, info.model, BATCH, info.in_channels, (int)sl->grid, (int)sl->grid,
                       info.classes, 0, 0, e))
        return -1;
    size_t plane = (size_t)sl->grid * sl->grid;
    int ch = info.in_channels;
    float *gray = mem_alloc(plane * sizeof(float));
    float *images = mem_calloc((size_t)BATCH * ch * plane, sizeof(float));
    int64_t rows[BATCH];
    int rc = gray && images ? 0 : err_set(e, ERR_NOMEM, "progression: out of memory");
    NnCheckpointInfo loaded;
    rc = rc || nn_checkpoint_load(ckpt, &g.store, &loaded, NN_CKPT_WEIGHTS_ONLY, NULL, e);
    if (rc == 0)
        nn_graph_upload(&g);
    int nb = 0;
    for (int64_t r = 0; rc == 0 && r <= sl->n; r++) {
        int take = 0;
        if (r < sl->n) {
            int p = ((int32_t *)sl->patient.data)[r],
                i = p >= 0 && p < c->n_patients ? slot[p] : -1;
            take = i >= 0 && c->cnn_fold[i] == k && ((int32_t *)sl->valid.data)[r] == 1;
        }
        if (take) {
            rc = h5_read_rows(f, "/slices/image", r, 1, H5T_NATIVE_FLOAT, gray, e);
            for (int ci = 0; rc == 0 && ci < ch; ci++) /* grayscale as 3 planes, as predict does */
                memcpy(images + ((size_t)nb * ch + ci) * plane, gray, plane * sizeof(float));
            rows[nb++] = r;
        }
        if (rc == 0 && nb > 0 && (nb == BATCH || r == sl->n)) {
            nn_graph_set_input(&g, images);
            rc = nn_graph_forward(&g, 0, e);
            const float *z = rc ? NULL : nn_graph_output(&g);
            for (int b = 0; z && b < nb; b++) {
                const float *zb = z + (size_t)b * info.classes;
                double m = zb[0], s = 0.0;
                for (int q = 1; q < info.classes; q++)
                    m = fmax(m, zb[q]);
                for (int q = 0; q < info.classes; q++)
                    s += exp(zb[q] - m);
                prob[rows[b]] = (float)(exp(zb[1] - m) / s);
            }
            *scored += nb;
            nb = 0;
        }
    }
    mem_free(gray), mem_free(images);
    nn_graph_free(&g);
    return rc ? err_prefix(e, "progression: scoring with %s: ", ckpt) : 0;
}

/* Vessel length and branches per (patient slot, visit) from vessels.h5. */
static int vessel_features(const ProgCohort *c, const char *run_dir, const int *slot, float *values,
                           float *mask, Err *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vessels.h5", run_dir);
    hid_t f;
    if (h5_open_read(path, &f, e))
        return err_prefix(e, "progression (run `onfh vessels` first?): ");
    H5Array patient = {0}, visit = {0}, length = {0}, branches = {0};
    int rc = 0;
    if (h5_exists(f, "/series/patient")) /* an empty vessels.h5 has no rows */
        rc = h5_read_int(f, "/series/patient", &patient, e) ||
             h5_read_int(f, "/series/visit", &visit, e) ||
             h5_read_float(f, "/series/length_mm", &length, e) ||
             h5_read_int(f, "/series/branches", &branches, e);
    h5_close(f);
    for (size_t r = 0; rc == 0 && r < patient.numel; r++) {
        int p = ((int32_t *)patient.data)[r], v = ((int32_t *)visit.data)[r];
        if (p < 0 || p >= c->n_patients) {
            rc = err_set(e, ERR_FORMAT,
                         "%s: /series/patient row %zu is %d, not a row of cohort.h5 /patients",
                         path, r, p);
            break;
        }
        int i = slot[p];
        for (int s = 0; i >= 0 && s < c->n_visits[i]; s++) {
            size_t at = (size_t)i * c->t + s;
            if (c->visit[at] != v)
                continue;
            size_t o = at * PROG_N_FEATURES;
            values[o + PF_VESSEL_LENGTH_MM] = ((float *)length.data)[r];
            values[o + PF_VESSEL_BRANCHES] = (float)((int32_t *)branches.data)[r];
            mask[o + PF_VESSEL_LENGTH_MM] = mask[o + PF_VESSEL_BRANCHES] = 1.0f;
        }
    }
    h5_array_free(&patient), h5_array_free(&visit), h5_array_free(&length);
    h5_array_free(&branches);
    return rc;
}

void prog_features_free(ProgFeatures *pf)
{
    mem_free(pf->values), mem_free(pf->mask);
    memset(pf, 0, sizeof *pf);
}

int prog_features(ProgFeatures *pf, const ProgCohort *c, const char *run_dir, const char *arch,
                  double threshold, const NnBackend *be, Err *e)
{
    memset(pf, 0, sizeof *pf);
    snprintf(pf->arch, sizeof pf->arch, "%s", arch);
    size_t nv = (size_t)(c->n ? c->n : 1) * c->t, nf = nv * PROG_N_FEATURES;
    pf->values = mem_alloc(nf * sizeof(float));
    pf->mask = mem_calloc(nf, sizeof(float));
    int *slot = mem_alloc((size_t)(c->n_patients ? c->n_patients : 1) * sizeof(int));
    if (!pf->values || !pf->mask || !slot) {
        mem_free(slot);
        prog_features_free(pf);
        return err_set(e, ERR_NOMEM, "progression: out of memory");
    }
    for (size_t k = 0; k < nf; k++)
        pf->values[k] = NAN;
    for (int p = 0; p < c->n_patients; p++)
        slot[p] = -1;
    for (int i = 0; i < c->n; i++)
        slot[c->patient[i]] = i;

    char cohort[4200];
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", run_dir);
    hid_t f;
    Slices sl;
    float *prob = NULL;
    int rc = h5_open_read(cohort, &f, e);
    if (rc) {
        mem_free(slot);
        prog_features_free(pf);
        return rc;
    }
    rc = slices_read(f, cohort, &sl, e);
    if (rc == 0 && !(prob = mem_alloc((size_t)(sl.n ? sl.n : 1) * sizeof(float))))
        rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    for (int64_t r = 0; rc == 0 && r < sl.n; r++)
        prob[r] = NAN;
    for (int k = 0; rc == 0 && k < c->n_cnn_folds; k++) { /* every fold's, before any work */
        char ckpt[4400];
        NnCheckpointInfo info;
        checkpoint_path(ckpt, sizeof ckpt, run_dir, arch, k);
        if (nn_checkpoint_info(ckpt, &info, e))
            rc = err_prefix(e, "(has `onfh train` finished every fold of %s?) ", arch);
    }
    for (int k = 0; rc == 0 && k < c->n_cnn_folds; k++)
        rc = score_fold(f, cohort, &sl, slot, c, run_dir, arch, k, be, prob, &pf->slices, e);
    h5_close(f);

    /* per visit, over its study's scored slices in /slices order: sums, then means */
    float *count = rc ? NULL : mem_calloc(nv, sizeof(float));
    if (rc == 0 && !count)
        rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    for (int64_t r = 0; rc == 0 && r < sl.n; r++) {
        if (isnan(prob[r]))
            continue;
        int i = slot[((int32_t *)sl.patient.data)[r]];
        int se = ((int32_t *)sl.series.data)[r], study = ((int32_t *)sl.ser_study.data)[se];
        for (int v = 0; v < c->n_visits[i]; v++) {
            size_t at = (size_t)i * c->t + v;
            if (c->study[at] != study)
                continue;
            float *val = pf->values + at * PROG_N_FEATURES, *m = pf->mask + at * PROG_N_FEATURES;
            double p = prob[r];
            if (count[at] == 0.0f) {
                val[PF_P_MEAN] = val[PF_P_MAX] = val[PF_FRAC_ABOVE] = val[PF_EXTENT_MM] = 0.0f;
                m[PF_P_MEAN] = m[PF_P_MAX] = m[PF_FRAC_ABOVE] = m[PF_EXTENT_MM] = 1.0f;
            }
            count[at] += 1.0f;
            val[PF_P_MEAN] += (float)p;
            val[PF_P_MAX] = fmaxf(val[PF_P_MAX], (float)p);
            val[PF_FRAC_ABOVE] += p >= threshold;
            val[PF_EXTENT_MM] += (float)(p * sl.ser_spacing[3 * se + 2]);
            break;
        }
    }
    for (size_t at = 0; rc == 0 && at < nv; at++)
        if (count[at] > 0.0f) {
            pf->values[at * PROG_N_FEATURES + PF_P_MEAN] /= count[at];
            pf->values[at * PROG_N_FEATURES + PF_FRAC_ABOVE] /= count[at];
        }
    mem_free(count);
    rc = rc || vessel_features(c, run_dir, slot, pf->values, pf->mask, e);
    slices_free(&sl);
    mem_free(prob), mem_free(slot);
    if (rc)
        prog_features_free(pf);
    return rc;
}
