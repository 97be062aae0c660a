/* report.c: see report.h. */
#include "stages/evaluate/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5out.h"
#include "lib/stats/calibration.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/strbuf.h"

enum { K = METRIC_COUNT };

static const char *const family_names[] = {"architectures", "cnn_vs_baselines"};

static int finish_json(JsonWriter *w, const char *path, Err *e)
{
    char *text;
    size_t len;
    if (json_writer_finish(w, &text, &len, e))
        return err_prefix(e, "%s", path);
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

static void pair2(JsonWriter *w, const char *key, const double v[2])
{
    json_key(w, key);
    json_array_begin(w);
    json_number(w, v[0]);
    json_number(w, v[1]);
    json_array_end(w);
}

static void bootstrap_section(JsonWriter *w, const Analysis *a)
{
    json_key(w, "bootstrap");
    json_object_begin(w);
    json_key(w, "unit");
    json_string(w, "patient (cluster bootstrap: a resample draws patients with all their slices)");
    json_key(w, "strata");
    json_string(w, "patients with normal slices only, lesion slices only, both: each drawn with "
                   "replacement to its own size");
    json_key(w, "resamples");
    json_int(w, a->resamples);
    json_key(w, "seed");
    json_int(w, (int64_t)a->seed);
    json_key(w, "rng");
    json_string(w, "Philox4x32-10 keyed by (seed, purpose 7 = bootstrap, resample)");
    json_key(w, "confidence_level");
    json_number(w, a->level);
    json_key(w, "methods");
    json_string(w,
                "bca: bias-corrected and accelerated (jackknife over patients); percentile: "
                "quantiles of the bootstrap distribution (numpy linear), as scipy.stats.bootstrap");
    json_object_end(w);
}

/* One model: thresholds, pooled metrics with CIs, per-fold metrics. */
static void model_json(JsonWriter *w, const Study *st, const Analysis *a, int m)
{
    const Model *mo = &st->models[m];
    const ModelResult *r = &a->res[m];
    json_object_begin(w);
    json_key(w, "name");
    json_string(w, mo->name);
    json_key(w, "kind");
    json_string(w, mo->kind == MODEL_CNN ? "cnn" : "baseline");
    json_key(w, "thresholds");
    json_array_begin(w);
    for (int k = 0; k < a->folds; k++)
        json_number(w, mo->threshold[k]); /* null: +inf (nothing called a lesion) */
    json_array_end(w);
    json_key(w, "pooled");
    json_object_begin(w);
    json_key(w, "n");
    json_int(w, st->n);
    for (int k = 0; k < K; k++) {
        json_key(w, metric_names[k]);
        json_object_begin(w);
        json_key(w, "estimate");
        json_number(w, r->pooled[k]);
        pair2(w, "bca", r->bca[k]);
        pair2(w, "percentile", r->percentile[k]);
        json_key(w, "undefined_resamples");
        json_int(w, r->undefined[k]);
        json_object_end(w);
    }
    json_object_end(w);
    json_key(w, "folds");
    json_array_begin(w);
    for (int f = 0; f < a->folds; f++) {
        json_object_begin(w);
        json_key(w, "fold");
        json_int(w, f);
        json_key(w, "n");
        json_int(w, r->fold_n[f]);
        for (int k = 0; k < K; k++) {
            json_key(w, metric_names[k]);
            json_number(w, r->fold[(size_t)f * K + k]);
        }
        json_object_end(w);
    }
    json_array_end(w);
    json_object_end(w);
}

static void comparisons_json(JsonWriter *w, const Study *st, const Analysis *a)
{
    json_key(w, "comparisons");
    json_object_begin(w);
    json_key(w, "auc_test");
    json_string(w, "DeLong, fast algorithm (Sun & Xu 2014), variance clustered by patient "
                   "(Obuchowski 1997), two-sided");
    json_key(w, "accuracy_test");
    json_string(w, "exact McNemar on the slices' correct/incorrect calls, two-sided");
    json_key(w, "adjustment");
    json_string(w, "Holm, within each family and test");
    for (int fam = 0; fam < 2; fam++) {
        json_key(w, family_names[fam]);
        json_array_begin(w);
        for (int i = 0; i < a->n_pairs; i++) {
            const Pair *p = &a->pairs[i];
            if (p->family != fam)
                continue;
            json_object_begin(w);
            json_key(w, "a");
            json_string(w, st->models[p->a].name);
            json_key(w, "b");
            json_string(w, st->models[p->b].name);
            json_key(w, "auc_difference");
            json_number(w, a->auc[p->a] - a->auc[p->b]);
            json_key(w, "delong_z");
            json_number(w, p->z);
            json_key(w, "delong_p");
            json_number(w, p->p_delong);
            json_key(w, "delong_p_holm");
            json_number(w, p->p_delong_holm);
            json_key(w, "accuracy_difference");
            json_number(w, a->res[p->a].pooled[METRIC_ACCURACY] -
                               a->res[p->b].pooled[METRIC_ACCURACY]);
            json_key(w, "mcnemar_only_a_right");
            json_int(w, p->only_a);
            json_key(w, "mcnemar_only_b_right");
            json_int(w, p->only_b);
            json_key(w, "mcnemar_p");
            json_number(w, p->p_mcnemar);
            json_key(w, "mcnemar_p_holm");
            json_number(w, p->p_mcnemar_holm);
            json_object_end(w);
        }
        json_array_end(w);
    }
    json_object_end(w);
}

static void selection_body(JsonWriter *w, const Study *st, const Analysis *a, const Provenance *pv)
{
    int m = pv->selected, k = pv->select_metric;
    json_key(w, "selected");
    json_string(w, m >= 0 ? st->models[m].name : NULL);
    json_key(w, "metric");
    json_string(w, metric_names[k]);
    json_key(w, "estimate");
    json_number(w, m >= 0 ? a->res[m].pooled[k] : NAN);
    if (m >= 0) {
        pair2(w, "bca", a->res[m].bca[k]);
        pair2(w, "percentile", a->res[m].percentile[k]);
    }
    json_key(w, "tie_rule");
    json_string(w, pv->tie_rule);
}

/* The side-by-side of the two protocols: each CNN's pooled metrics under both. */
static void leakage_json(JsonWriter *w, const Study *st, const Analysis *a, const Study *cmp,
                         const Analysis *ca)
{
    static const int shown[] = {METRIC_ROC_AUC,     METRIC_ACCURACY, METRIC_SENSITIVITY,
                                METRIC_SPECIFICITY, METRIC_F1,       METRIC_PR_AUC,
                                METRIC_BRIER};
    json_key(w, "paper_faithful");
    json_object_begin(w);
    json_key(w, "run");
    json_string(w, cmp->run);
    json_key(w, "note");
    json_string(w, "the same cohort split by slice (the paper's protocol): one patient's slices "
                   "in training and test; inflation = slice-level minus patient-level estimate");
    json_key(w, "models");
    json_array_begin(w);
    for (int m = 0; m < st->n_models; m++) {
        int c = -1;
        for (int j = 0; j < cmp->n_models; j++)
            if (!strcmp(cmp->models[j].name, st->models[m].name))
                c = j;
        if (c < 0)
            continue;
        json_object_begin(w);
        json_key(w, "name");
        json_string(w, st->models[m].name);
        for (size_t i = 0; i < sizeof shown / sizeof *shown; i++) {
            int k = shown[i];
            json_key(w, metric_names[k]);
            json_object_begin(w);
            json_key(w, "patient_level");
            json_number(w, a->res[m].pooled[k]);
            pair2(w, "patient_level_bca", a->res[m].bca[k]);
            json_key(w, "slice_level");
            json_number(w, ca->res[c].pooled[k]);
            pair2(w, "slice_level_bca", ca->res[c].bca[k]);
            json_key(w, "inflation");
            json_number(w, ca->res[c].pooled[k] - a->res[m].pooled[k]);
            json_object_end(w);
        }
        json_object_end(w);
    }
    json_array_end(w);
    json_object_end(w);
}

int report_metrics_json(const char *path, const Study *st, const Analysis *a, const Study *cmp,
                        const Analysis *cmp_a, const Provenance *pv, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "schema");
    json_string(&w, "onfh-metrics-1");
    json_key(&w, "run");
    json_string(&w, pv->run_name);
    json_key(&w, "config_sha256");
    json_string(&w, pv->config_sha256);
    json_key(&w, "onfh");
    json_string(&w, pv->onfh_version);
    json_key(&w, "commit");
    json_string(&w, pv->onfh_commit);
    json_key(&w, "split");
    json_object_begin(&w);
    json_key(&w, "level");
    json_string(&w, st->splits.slice_level ? "slice" : "patient");
    json_key(&w, "folds");
    json_int(&w, st->splits.folds);
    json_key(&w, "assignment_sha256");
    json_string(&w, st->splits.sha256);
    json_key(&w, "slices");
    json_int(&w, st->n);
    json_key(&w, "patients");
    json_int(&w, st->n_patients);
    int pos = 0;
    for (int i = 0; i < st->n; i++)
        pos += st->label[i];
    json_key(&w, "lesion_slices");
    json_int(&w, pos);
    json_object_end(&w);
    json_key(&w, "threshold_rule");
    json_string(&w, "per fold, Youden's J on the fold's validation partition (p >= t is a "
                    "lesion; ties to the higher t); never the test fold");
    bootstrap_section(&w, a);
    json_key(&w, "models");
    json_array_begin(&w);
    for (int m = 0; m < st->n_models; m++)
        model_json(&w, st, a, m);
    json_array_end(&w);
    comparisons_json(&w, st, a);
    json_key(&w, "selection");
    json_object_begin(&w);
    selection_body(&w, st, a, pv);
    json_object_end(&w);
    if (cmp)
        leakage_json(&w, st, a, cmp, cmp_a);
    json_object_end(&w);
    return finish_json(&w, path, e);
}

int report_selection_json(const char *path, const Study *st, const Analysis *a,
                          const Provenance *pv, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "schema");
    json_string(&w, "onfh-evaluation-1");
    json_key(&w, "run");
    json_string(&w, pv->run_name);
    json_key(&w, "split_level");
    json_string(&w, st->splits.slice_level ? "slice" : "patient");
    selection_body(&w, st, a, pv);
    json_key(&w, "checkpoints");
    json_string(&w,
                pv->selected >= 0 ? "models/<selected>/fold<k>/checkpoint.h5, one per fold" : NULL);
    json_key(&w, "resamples");
    json_int(&w, a->resamples);
    json_key(&w, "seed");
    json_int(&w, (int64_t)a->seed);
    json_object_end(&w);
    return finish_json(&w, path, e);
}

int report_predictions_csv(const char *path, const Study *st, Err *e)
{
    StrBuf b = STRBUF_INIT;
    strbuf_puts(&b, "patient,slice,fold,model,probability,threshold,predicted,label\n");
    for (int m = 0; m < st->n_models; m++) {
        const Model *mo = &st->models[m];
        for (int i = 0; i < st->n; i++) {
            char t[32];
            format_double(mo->threshold[st->fold[i]], t);
            strbuf_printf(&b, "%s,%d,%d,%s,%.9g,%s,%d,%d\n", st->pseudonym[st->patient[i]],
                          st->row[i], st->fold[i], mo->name, mo->prob[i], t, mo->pred[i],
                          st->label[i]);
        }
    }
    char *text;
    size_t len;
    if (strbuf_finish(&b, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

static int write_doubles(H5Out *o, const char *path, int rank, const uint64_t *dims,
                         const double *data, Err *e)
{
    hid_t ds;
    if (h5out_dataset(o, path, H5T_IEEE_F64LE, rank, dims, NULL, 0, &ds, e))
        return -1;
    int rc = h5out_write_rows(o, ds, H5T_NATIVE_DOUBLE, 0, dims[0], data, e);
    H5Dclose(ds);
    return rc;
}

static int write_ints(H5Out *o, const char *path, uint64_t n, const int *data, Err *e)
{
    hid_t ds;
    if (h5out_dataset(o, path, H5T_STD_I32LE, 1, &n, NULL, 0, &ds, e))
        return -1;
    int rc = h5out_write_rows(o, ds, H5T_NATIVE_INT, 0, n, data, e);
    H5Dclose(ds);
    return rc;
}

/* Comma-separated names, for an attribute. */
static void join(StrBuf *b, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        strbuf_printf(b, "%s%s", i ? "," : "", names[i]);
}

int report_h5(const char *path, const Study *st, const Analysis *a, const Provenance *pv, Err *e)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int M = st->n_models, n = st->n, bins = pv->calibration_bins;
    H5Out o;
    double *fpr = mem_alloc((size_t)(n + 2) * 3 * sizeof *fpr);
    int *count = mem_alloc((size_t)(bins + 1) * sizeof *count);
    double *cal = mem_alloc((size_t)(bins + 1) * 2 * sizeof *cal);
    if (!fpr || !count || !cal) {
        mem_free(fpr), mem_free(count), mem_free(cal);
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    }
    int rc = h5out_create(&o, tmp, MPI_COMM_SELF, e);
    StrBuf names = STRBUF_INIT, models = STRBUF_INIT;
    join(&names, metric_names, K);
    for (int m = 0; m < M; m++)
        strbuf_printf(&models, "%s%s", m ? "," : "", st->models[m].name);
    char *mnames = NULL, *mmodels = NULL;
    size_t l1, l2;
    if (rc == 0)
        rc = strbuf_finish(&names, &mnames, &l1, e) || strbuf_finish(&models, &mmodels, &l2, e);
    if (rc == 0)
        rc = h5out_attr_string(o.file, "schema", "onfh-evaluation-1", e) ||
             h5out_attr_string(o.file, "run", pv->run_name, e) ||
             h5out_attr_string(o.file, "config_sha256", pv->config_sha256, e) ||
             h5out_attr_string(o.file, "onfh_version", pv->onfh_version, e) ||
             h5out_attr_string(o.file, "onfh_commit", pv->onfh_commit, e) ||
             h5out_attr_string(o.file, "metrics", mnames, e) ||
             h5out_attr_string(o.file, "models", mmodels, e) ||
             h5out_attr_int(o.file, "resamples", a->resamples, e) ||
             h5out_attr_int(o.file, "seed", (int64_t)a->seed, e) || h5out_group(&o, "/models", e) ||
             h5out_group(&o, "/bootstrap", e);
    for (int m = 0; rc == 0 && m < M; m++) {
        const Model *mo = &st->models[m];
        char g[200], p[300];
        snprintf(g, sizeof g, "/models/%s", mo->name);
        rc = h5out_group(&o, g, e);
        /* ROC points (fpr, tpr, threshold) of the pooled out-of-fold predictions */
        double *tpr = fpr + n + 2, *thr = fpr + 2 * (n + 2);
        int pts = rc ? 0 : metrics_roc(mo->prob, st->label, n, fpr, tpr, thr);
        if (pts < 0)
            rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
        uint64_t dims[2] = {(uint64_t)pts, 1};
        snprintf(p, sizeof p, "%s/roc_fpr", g);
        rc = rc || write_doubles(&o, p, 1, dims, fpr, e);
        snprintf(p, sizeof p, "%s/roc_tpr", g);
        rc = rc || write_doubles(&o, p, 1, dims, tpr, e);
        snprintf(p, sizeof p, "%s/roc_threshold", g);
        rc = rc || write_doubles(&o, p, 1, dims, thr, e);
        calibration_bins(n, mo->prob, st->label, bins, cal, cal + bins, count);
        uint64_t nb = (uint64_t)bins;
        snprintf(p, sizeof p, "%s/calibration_mean_predicted", g);
        rc = rc || write_doubles(&o, p, 1, &nb, cal, e);
        snprintf(p, sizeof p, "%s/calibration_fraction_positive", g);
        rc = rc || write_doubles(&o, p, 1, &nb, cal + bins, e);
        snprintf(p, sizeof p, "%s/calibration_count", g);
        rc = rc || write_ints(&o, p, nb, count, e);
    }
    uint64_t dd[3] = {(uint64_t)a->resamples, (uint64_t)M, (uint64_t)K};
    if (rc == 0)
        rc = write_doubles(&o, "/bootstrap/distribution", 3, dd, a->dist, e);
    uint64_t jd[3] = {(uint64_t)a->n_patients, (uint64_t)M, (uint64_t)K};
    if (rc == 0)
        rc = write_doubles(&o, "/bootstrap/jackknife", 3, jd, a->jack, e);
    uint64_t cd[2] = {(uint64_t)M, (uint64_t)M};
    if (rc == 0)
        rc = write_doubles(&o, "/delong_covariance", 2, cd, a->cov, e);
    Err ce = {0};
    if (h5out_close(&o, &ce) && rc == 0)
        rc = err_set(e, ce.code, "%s", ce.msg);
    if (rc == 0 && rename(tmp, path))
        rc = err_set(e, ERR_IO, "%s: cannot rename to %s", tmp, path);
    if (rc)
        remove(tmp);
    strbuf_free(&names), strbuf_free(&models);
    mem_free(mnames), mem_free(mmodels), mem_free(fpr), mem_free(count), mem_free(cal);
    return rc ? -1 : 0;
}
