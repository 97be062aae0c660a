/* results.c: statistics and files of the progression stage (results.h). */
#include "stages/progression/results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/h5/h5out.h"
#include "lib/stats/bootstrap.h"
#include "lib/stats/calibration.h"
#include "lib/stats/delong.h"
#include "lib/stats/metrics.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int prog_statistics(ProgResults *r, const ProgCohort *c, Err *e)
{
    int n = 0, K = r->n_models;
    for (int i = 0; i < c->n; i++)
        n += !isnan(r->models[0].p[i]);
    r->n = n, r->n_progressed = 0;
    size_t a = (size_t)(n ? n : 1);
    double *prob = mem_alloc(a * K * sizeof(double)), *w = mem_alloc(a * sizeof(double));
    double *dist = mem_alloc((size_t)(r->resamples ? r->resamples : 1) * K * sizeof(double));
    double *jack = mem_alloc(a * K * sizeof(double));
    int *label = mem_alloc(a * sizeof(int)), *pred = mem_alloc(a * K * sizeof(int));
    int *pos = mem_alloc(a * sizeof(int)), *neg = mem_alloc(a * sizeof(int));
    int *count = mem_alloc(a * sizeof(int)), *cluster = mem_alloc(a * sizeof(int));
    Scores sc[PROG_MAX_MODELS] = {0};
    BootDesign d = {0};
    int rc = prob && w && dist && jack && label && pred && pos && neg && count && cluster
                 ? 0
                 : err_set(e, ERR_NOMEM, "progression: out of memory");
    for (int i = 0, j = 0; rc == 0 && i < c->n; i++) {
        if (isnan(r->models[0].p[i]))
            continue;
        label[j] = c->outcome[i], pos[j] = c->outcome[i], neg[j] = !c->outcome[i], cluster[j] = j;
        r->n_progressed += c->outcome[i];
        for (int k = 0; k < K; k++) {
            double p = r->models[k].p[i];
            if (isnan(p))
                rc = err_set(e, ERR_INTERNAL, "progression: model %s has no probability for %s",
                             r->models[k].name, c->pseudonym[i]);
            prob[(size_t)k * n + j] = p;
            pred[(size_t)k * n + j] = p >= 0.5;
        }
        j++;
    }
    if (rc == 0 && n < 2)
        rc = err_set(e, ERR_FORMAT,
                     "progression: %d patient(s) with an outcome and a visit after the cut-off "
                     "(progression.cutoff_days): too few to evaluate",
                     n);
    for (int k = 0; rc == 0 && k < K; k++)
        if (scores_prepare(&sc[k], n, prob + (size_t)k * n, label, pred + (size_t)k * n))
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    if (rc == 0 && bootstrap_design(&d, n, pos, neg, r->seed))
        rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    double m[METRIC_COUNT];
    for (int k = 0; rc == 0 && k < K; k++) {
        ProgModel *pm = &r->models[k];
        metrics_weighted(&sc[k], NULL, m);
        pm->auc = m[METRIC_ROC_AUC], pm->brier = m[METRIC_BRIER], pm->accuracy = m[METRIC_ACCURACY];
        pm->cal_slope = m[METRIC_CAL_SLOPE], pm->cal_intercept = m[METRIC_CAL_INTERCEPT];
        pm->agree_n = n, pm->agree_k = (int)lround(m[METRIC_ACCURACY] * n);
        calibration_bins(n, prob + (size_t)k * n, label, r->bins, pm->cal_mean, pm->cal_frac,
                         pm->cal_count);
        pm->roc_fpr = mem_alloc((a + 1) * sizeof(double));
        pm->roc_tpr = mem_alloc((a + 1) * sizeof(double));
        double *thr = mem_alloc((a + 1) * sizeof(double));
        if (!pm->roc_fpr || !pm->roc_tpr || !thr)
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
        else
            pm->roc_points =
                metrics_roc(prob + (size_t)k * n, label, n, pm->roc_fpr, pm->roc_tpr, thr);
        mem_free(thr);
    }
    for (int b = 0; rc == 0 && b < r->resamples; b++) {
        bootstrap_counts(&d, (uint64_t)b, count);
        for (int j = 0; j < n; j++)
            w[j] = count[j];
        for (int k = 0; k < K; k++) {
            metrics_weighted(&sc[k], w, m);
            dist[(size_t)k * r->resamples + b] = m[METRIC_ROC_AUC];
        }
    }
    for (int j = 0; rc == 0 && j < n; j++) { /* leave-one-patient-out, for BCa */
        for (int q = 0; q < n; q++)
            w[q] = q != j;
        for (int k = 0; k < K; k++) {
            metrics_weighted(&sc[k], w, m);
            jack[(size_t)k * n + j] = m[METRIC_ROC_AUC];
        }
    }
    for (int k = 0; rc == 0 && k < K; k++) {
        ProgModel *pm = &r->models[k];
        double *dk = dist + (size_t)k * r->resamples;
        qsort(dk, (size_t)r->resamples, sizeof(double), cmp_double);
        bootstrap_percentile(dk, r->resamples, r->level, &pm->auc_percentile[0],
                             &pm->auc_percentile[1]);
        bootstrap_bca(dk, r->resamples, pm->auc, jack + (size_t)k * n, n, r->level, &pm->auc_bca[0],
                      &pm->auc_bca[1], NULL, NULL);
    }
    if (rc == 0) {
        const double *score[PROG_MAX_MODELS];
        double auc[PROG_MAX_MODELS], cov[PROG_MAX_MODELS * PROG_MAX_MODELS];
        for (int k = 0; k < K; k++)
            score[k] = prob + (size_t)k * n;
        if (delong(K, n, score, label, cluster, n, auc, cov))
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
        for (int x = 0; rc == 0 && x < K; x++)
            for (int y = 0; y < K; y++)
                delong_test(K, auc, cov, x, y, &r->delong_z[x][y], &r->delong_p[x][y]);
    }
    for (int k = 0; k < K; k++)
        scores_free(&sc[k]);
    bootstrap_design_free(&d);
    mem_free(prob), mem_free(w), mem_free(dist), mem_free(jack), mem_free(label), mem_free(pred);
    mem_free(pos), mem_free(neg), mem_free(count), mem_free(cluster);
    return rc;
}

void prog_results_free(ProgResults *r)
{
    for (int k = 0; k < PROG_MAX_MODELS; k++) {
        mem_free(r->models[k].p), mem_free(r->models[k].roc_fpr), mem_free(r->models[k].roc_tpr);
        r->models[k].p = r->models[k].roc_fpr = r->models[k].roc_tpr = NULL;
    }
}

/* A dataset of `rank` dims from a float/int/double buffer. */
static int put(H5Out *o, const char *path, hid_t file_type, hid_t mem_type, int rank,
               const uint64_t *dims, const void *buf, Err *e)
{
    hid_t ds;
    if (h5out_dataset(o, path, file_type, rank, dims, NULL, 0, &ds, e))
        return -1;
    int rc = h5out_write_rows(o, ds, mem_type, 0, dims[0], buf, e);
    H5Dclose(ds);
    return rc;
}

int prog_write_h5(const char *path, const ProgCohort *c, const ProgFeatures *const *feat,
                  int n_feat, const ProgResults *r, const ProgRun *pr, Err *e)
{
    char tmp[4200], names[512] = "", used[512] = "", defs[4096] = "", p[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    prog_feature_list(pr->fit->use, pr->fit->n_use, ",", used, sizeof used);
    prog_feature_list(NULL, 0, ",", names, sizeof names);
    for (int q = 0; q < PROG_N_FEATURES; q++)
        snprintf(defs + strlen(defs), sizeof defs - strlen(defs), "%s%s: %s", q ? "; " : "",
                 prog_feature_names[q], prog_feature_definitions[q]);
    size_t n = (size_t)c->n;
    uint64_t d1[1] = {n}, d2[2] = {n, (uint64_t)c->t}, d3[3] = {n, (uint64_t)c->t, PROG_N_FEATURES};
    int32_t *buf = mem_alloc((n ? n : 1) * sizeof(int32_t));
    H5Out o = {0};
    int rc = buf ? 0 : err_set(e, ERR_NOMEM, "progression: out of memory");
    rc = rc || h5out_create(&o, tmp, MPI_COMM_SELF, e);
    rc = rc || h5out_attr_string(o.file, "schema", "onfh-progression-1", e) ||
         h5out_attr_string(o.file, "run", pr->run_name, e) ||
         h5out_attr_string(o.file, "config_sha256", pr->config_sha256, e) ||
         h5out_attr_string(o.file, "onfh_version", pr->onfh, e) ||
         h5out_attr_string(o.file, "onfh_commit", pr->commit, e) ||
         h5out_attr_string(o.file, "features", names, e) ||
         h5out_attr_string(o.file, "feature_definitions", defs, e) ||
         h5out_attr_string(o.file, "model_features", used, e) ||
         h5out_attr_string(o.file, "unit", "patient", e) ||
         h5out_attr_string(o.file, "outcome_definition",
                           "1 when any affected hip progressed (ARCO stage increase or collapse) "
                           "by the last visit (cohort.h5 /clinical outcome), 0 when stable",
                           e) ||
         h5out_attr_int(o.file, "cutoff_days", pr->cutoff_days, e) ||
         h5out_attr_doubles(o.file, "slice_threshold", &pr->slice_threshold, 1, e);
    rc = rc || h5out_group(&o, "/patients", e) || h5out_group(&o, "/visits", e) ||
         h5out_group(&o, "/features", e) || h5out_group(&o, "/predictions", e);
    if (rc == 0) {
        hid_t st = h5out_string_type(16);
        char(*ps)[16] = mem_calloc(n ? n : 1, 16);
        for (size_t i = 0; ps && i < n; i++)
            memcpy(ps[i], c->pseudonym[i], 16);
        rc = ps ? put(&o, "/patients/pseudonym", st, st, 1, d1, ps, e)
                : err_set(e, ERR_NOMEM, "progression: out of memory");
        H5Tclose(st);
        mem_free(ps);
    }
    const struct {
        const char *name;
        const int *v;
    } cols[] = {{"patient", c->patient}, {"outcome", c->outcome},   {"n_visits", c->n_visits},
                {"visits_used", c->len}, {"included", c->included}, {"cnn_fold", c->cnn_fold},
                {"fold", pr->fold}};
    for (size_t k = 0; rc == 0 && k < sizeof cols / sizeof cols[0]; k++) {
        for (size_t i = 0; i < n; i++)
            buf[i] = cols[k].v[i];
        snprintf(p, sizeof p, "/patients/%s", cols[k].name);
        rc = put(&o, p, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d1, buf, e);
    }
    rc = rc || put(&o, "/visits/visit", H5T_STD_I32LE, H5T_NATIVE_INT, 2, d2, c->visit, e) ||
         put(&o, "/visits/day", H5T_STD_I32LE, H5T_NATIVE_INT, 2, d2, c->day, e) ||
         put(&o, "/visits/days_since_previous", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2,
             c->gap_days, e);
    for (int k = 0; rc == 0 && k < n_feat; k++) {
        snprintf(p, sizeof p, "/features/%s", feat[k]->arch);
        rc = h5out_group(&o, p, e);
        snprintf(p, sizeof p, "/features/%s/values", feat[k]->arch);
        rc = rc || put(&o, p, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d3, feat[k]->values, e);
        snprintf(p, sizeof p, "/features/%s/mask", feat[k]->arch);
        rc = rc || put(&o, p, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, d3, feat[k]->mask, e);
    }
    for (int k = 0; rc == 0 && k < r->n_models; k++) {
        snprintf(p, sizeof p, "/predictions/%s", r->models[k].name);
        rc = put(&o, p, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d1, r->models[k].p, e);
    }
    int rc2 = h5out_close(&o, rc ? NULL : e);
    rc = rc || rc2;
    mem_free(buf);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_set(e, ERR_IO, "%s: cannot rename to %s", tmp, path);
    if (rc)
        remove(tmp);
    return rc;
}

static void pair(JsonWriter *w, const char *key, const double v[2])
{
    json_key(w, key);
    json_array_begin(w);
    json_number(w, v[0]);
    json_number(w, v[1]);
    json_array_end(w);
}

static void numbers(JsonWriter *w, const char *key, const double *v, int n)
{
    json_key(w, key);
    json_array_begin(w);
    for (int i = 0; i < n; i++)
        json_number(w, v[i]);
    json_array_end(w);
}

/* Up to 3 progressing and 3 stable included patients (the first in cohort order): every visit's
 * day and lesion extent, for the report's figure. */
static void examples(JsonWriter *w, const ProgCohort *c, const ProgFeatures *feat,
                     const ProgResults *r)
{
    json_key(w, "example_trajectories");
    json_array_begin(w);
    for (int cls = 1; cls >= 0; cls--)
        for (int i = 0, shown = 0; i < c->n && shown < 3; i++) {
            if (!c->included[i] || c->outcome[i] != cls)
                continue;
            shown++;
            json_object_begin(w);
            json_key(w, "pseudonym"), json_string(w, c->pseudonym[i]);
            json_key(w, "outcome"), json_int(w, cls);
            json_key(w, "visits_used"), json_int(w, c->len[i]);
            json_key(w, "lstm"), json_number(w, r->models[0].p[i]);
            json_key(w, "day");
            json_array_begin(w);
            for (int v = 0; v < c->n_visits[i]; v++)
                json_int(w, c->day[(size_t)i * c->t + v]);
            json_array_end(w);
            json_key(w, "extent_mm");
            json_array_begin(w);
            for (int v = 0; v < c->n_visits[i]; v++)
                json_number(w,
                            feat->values[((size_t)i * c->t + v) * PROG_N_FEATURES + PF_EXTENT_MM]);
            json_array_end(w);
            json_object_end(w);
        }
    json_array_end(w);
}

/* The members both forms of progression.json begin with. */
static void write_header(JsonWriter *w, const ProgRun *pr, int available)
{
    json_key(w, "schema"), json_string(w, "onfh-progression-1");
    json_key(w, "run"), json_string(w, pr->run_name);
    json_key(w, "config_sha256"), json_string(w, pr->config_sha256);
    json_key(w, "onfh"), json_string(w, pr->onfh);
    json_key(w, "commit"), json_string(w, pr->commit);
    json_key(w, "available"), json_bool(w, available);
}

int prog_write_json(const char *path, const ProgCohort *c, const ProgFeatures *feat,
                    const ProgResults *r, const ProgRun *pr, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    write_header(&w, pr, 1);
    json_key(&w, "unit"), json_string(&w, "patient");
    json_key(&w, "outcome");
    json_string(&w, "progression (ARCO stage increase or collapse) of any affected hip by the "
                    "last visit, from cohort.h5 /clinical outcome");
    json_key(&w, "cutoff_days"), json_int(&w, pr->cutoff_days);
    json_key(&w, "cutoff_rule");
    json_string(&w, "the models see only visits on or before cutoff_days after the first; "
                    "patients without a later visit are left out");
    json_key(&w, "features");
    json_object_begin(&w);
    for (int q = 0; q < PROG_N_FEATURES; q++)
        json_key(&w, prog_feature_names[q]), json_string(&w, prog_feature_definitions[q]);
    json_key(&w, "days_since_previous");
    json_string(&w, "days since the previous visit (0 at the first); the LSTM takes it in years");
    json_object_end(&w);
    json_key(&w, "model_features");
    json_array_begin(&w);
    for (int j = 0; j < pr->fit->n_use; j++)
        json_string(&w, prog_feature_names[pr->fit->use[j]]);
    json_array_end(&w);
    json_key(&w, "slice_threshold"), json_number(&w, pr->slice_threshold);
    int incl = 0, after = 0;
    for (int i = 0; i < c->n; i++)
        incl += c->included[i], after += !c->included[i];
    json_key(&w, "patients");
    json_object_begin(&w);
    json_key(&w, "in_cohort"), json_int(&w, c->n_patients);
    json_key(&w, "without_outcome"), json_int(&w, c->n_no_outcome);
    json_key(&w, "with_outcome"), json_int(&w, c->n);
    json_key(&w, "no_visit_after_cutoff"), json_int(&w, after);
    json_key(&w, "included"), json_int(&w, r->n);
    json_key(&w, "progressed"), json_int(&w, r->n_progressed);
    json_key(&w, "stable"), json_int(&w, r->n - r->n_progressed);
    json_object_end(&w);
    json_key(&w, "cross_validation");
    json_object_begin(&w);
    json_key(&w, "folds"), json_int(&w, pr->folds);
    json_key(&w, "grouping"), json_string(&w, "patient");
    json_key(&w, "stratified_by"), json_string(&w, "outcome");
    json_key(&w, "seed"), json_int(&w, (int64_t)pr->fit->seed);
    json_key(&w, "standardisation");
    json_string(&w, "each feature by the mean and SD of the fold's training patients' observed "
                    "visits up to the cut-off");
    json_object_end(&w);
    json_key(&w, "lstm");
    json_object_begin(&w);
    json_key(&w, "hidden"), json_int(&w, pr->fit->hidden);
    json_key(&w, "layers"), json_int(&w, pr->fit->layers);
    json_key(&w, "dropout"), json_number(&w, pr->fit->dropout);
    json_key(&w, "epochs"), json_int(&w, pr->fit->epochs);
    json_key(&w, "batch_size"), json_int(&w, pr->fit->batch);
    json_key(&w, "optimizer"), json_string(&w, "AdamW (betas 0.9, 0.999, eps 1e-8)");
    json_key(&w, "lr"), json_number(&w, pr->fit->lr);
    json_key(&w, "weight_decay"), json_number(&w, pr->fit->weight_decay);
    json_key(&w, "backend"), json_string(&w, pr->backend);
    char inputs[256];
    snprintf(inputs, sizeof inputs,
             "per visit [mask x standardised feature (%d, model_features) | mask (%d) | years "
             "since the previous visit (1)]; missing values enter as 0 with mask 0",
             pr->fit->n_use, pr->fit->n_use);
    json_key(&w, "inputs"), json_string(&w, inputs);
    json_object_end(&w);
    json_key(&w, "bootstrap");
    json_object_begin(&w);
    json_key(&w, "unit"), json_string(&w, "patient");
    json_key(&w, "strata"), json_string(&w, "outcome");
    json_key(&w, "resamples"), json_int(&w, r->resamples);
    json_key(&w, "seed"), json_int(&w, (int64_t)r->seed);
    json_key(&w, "confidence_level"), json_number(&w, r->level);
    json_key(&w, "methods"), json_string(&w, "BCa (leave-one-patient-out jackknife), percentile");
    json_object_end(&w);
    json_key(&w, "models");
    json_array_begin(&w);
    for (int k = 0; k < r->n_models; k++) {
        const ProgModel *m = &r->models[k];
        json_object_begin(&w);
        json_key(&w, "name"), json_string(&w, m->name);
        json_key(&w, "description"), json_string(&w, m->description);
        json_key(&w, "cnn"), json_string(&w, m->arch);
        json_key(&w, "roc_auc"), json_number(&w, m->auc);
        pair(&w, "roc_auc_bca", m->auc_bca);
        pair(&w, "roc_auc_percentile", m->auc_percentile);
        json_key(&w, "brier"), json_number(&w, m->brier);
        json_key(&w, "agreement");
        json_object_begin(&w);
        json_key(&w, "k"), json_int(&w, m->agree_k);
        json_key(&w, "n"), json_int(&w, m->agree_n);
        json_key(&w, "rule");
        json_string(&w, "progression predicted when the probability is >= 0.5; agreement: the "
                        "prediction equals the clinical outcome");
        json_object_end(&w);
        json_key(&w, "calibration_slope"), json_number(&w, m->cal_slope);
        json_key(&w, "calibration_intercept"), json_number(&w, m->cal_intercept);
        json_key(&w, "calibration");
        json_object_begin(&w);
        json_key(&w, "bins"), json_int(&w, r->bins);
        const char *keys[3] = {"mean_predicted", "fraction_progressed", "count"};
        for (int q = 0; q < 3; q++) {
            json_key(&w, keys[q]);
            json_array_begin(&w);
            for (int b = 0; b < r->bins; b++)
                if (q == 2)
                    json_int(&w, m->cal_count[b]);
                else
                    json_number(&w, q == 0 ? m->cal_mean[b] : m->cal_frac[b]);
            json_array_end(&w);
        }
        json_object_end(&w);
        json_key(&w, "roc");
        json_object_begin(&w);
        numbers(&w, "fpr", m->roc_fpr, m->roc_points);
        numbers(&w, "tpr", m->roc_tpr, m->roc_points);
        json_object_end(&w);
        json_object_end(&w);
    }
    json_array_end(&w);
    examples(&w, c, feat, r);
    json_key(&w, "resnet50");
    json_object_begin(&w);
    json_key(&w, "available"), json_bool(&w, pr->resnet50_unavailable == NULL);
    json_key(&w, "reason"), json_string(&w, pr->resnet50_unavailable);
    json_object_end(&w);
    json_key(&w, "comparisons");
    json_array_begin(&w);
    for (int a = 0; a < r->n_models; a++)
        for (int b = a + 1; b < r->n_models; b++) {
            json_object_begin(&w);
            json_key(&w, "a"), json_string(&w, r->models[a].name);
            json_key(&w, "b"), json_string(&w, r->models[b].name);
            json_key(&w, "auc_difference"), json_number(&w, r->models[a].auc - r->models[b].auc);
            json_key(&w, "delong_z"), json_number(&w, r->delong_z[a][b]);
            json_key(&w, "delong_p"), json_number(&w, r->delong_p[a][b]);
            json_object_end(&w);
        }
    json_array_end(&w);
    json_object_end(&w);
    char *text;
    size_t len;
    if (json_writer_finish(&w, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

int prog_write_unavailable(const char *path, const ProgRun *pr, const char *why, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    write_header(&w, pr, 0);
    json_key(&w, "reason"), json_string(&w, why);
    json_key(&w, "cutoff_days"), json_int(&w, pr->cutoff_days);
    json_object_end(&w);
    char *text;
    size_t len;
    if (json_writer_finish(&w, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}
