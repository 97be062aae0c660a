/* test_stats.c: lib/stats (metrics, calibration, Youden, ROC, bootstrap intervals, DeLong,
 * McNemar, Holm, logistic regression, the normal quantile) and the baseline's slice features,
 * against tests/fixtures/stats/oracle.json: scikit-learn's and scipy's answers on fixed data,
 * written by tools/stats_oracle.py. Plus what no oracle states: the bootstrap draws are
 * stratified, a pure function of (seed, resample), and differ between resamples. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/stats/bootstrap.h"
#include "lib/stats/calibration.h"
#include "lib/stats/delong.h"
#include "lib/stats/logistic.h"
#include "lib/stats/mcnemar.h"
#include "lib/stats/metrics.h"
#include "lib/stats/normal.h"
#include "lib/stats/patient_metrics.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "tests/unit/fixture_json.h"
#include "lib/util/mem.h"
#include "stages/evaluate/features.h"

#define K 3

static JsonValue *fx;
static int n, n_patients;
static int *patient, *label, *pred[K];
static double *prob[K];

static const JsonValue *get(const JsonValue *v, const char *key)
{
    return fixture_get("oracle.json", v, key);
}

static double *doubles(const JsonValue *a)
{
    double *d = mem_alloc((a->n + 1) * sizeof *d);
    for (size_t i = 0; i < a->n; i++)
        d[i] = a->items[i].type == JSON_NUMBER ? a->items[i].number : NAN;
    return d;
}

static int *ints(const JsonValue *a)
{
    int *d = mem_alloc((a->n + 1) * sizeof *d);
    for (size_t i = 0; i < a->n; i++)
        d[i] = (int)a->items[i].number;
    return d;
}

static void close_to(double got, double want, double tol, const char *what, int k)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("%s (model %d): %.17g, oracle %.17g", what, k, got, want);
}

static int load(void **state)
{
    (void)state;
    if (fixture_json_load("tests/fixtures/stats/oracle.json", &fx))
        return -1;
    n_patients = (int)json_get_number(fx, "n_patients", 0);
    patient = ints(get(fx, "patient"));
    label = ints(get(fx, "label"));
    n = (int)get(fx, "label")->n;
    for (int k = 0; k < K; k++) {
        prob[k] = doubles(&get(fx, "prob")->items[k]);
        pred[k] = ints(&get(fx, "pred")->items[k]);
    }
    return 0;
}

static int unload(void **state)
{
    (void)state;
    mem_free(patient), mem_free(label);
    for (int k = 0; k < K; k++)
        mem_free(prob[k]), mem_free(pred[k]);
    json_value_free(fx);
    return 0;
}

/* The oracle's metrics of each model, unweighted and with one resample's weights. */
static void test_metrics(void **state)
{
    (void)state;
    double *w = doubles(get(fx, "weights"));
    for (int k = 0; k < K; k++) {
        Scores s;
        assert_int_equal(scores_prepare(&s, n, prob[k], label, pred[k]), 0);
        for (int weighted = 0; weighted < 2; weighted++) {
            double out[METRIC_COUNT];
            metrics_weighted(&s, weighted ? w : NULL, out);
            const JsonValue *want = &get(fx, weighted ? "metrics_weighted" : "metrics")->items[k];
            for (int m = 0; m < METRIC_COUNT; m++) {
                /* the calibration oracle is an iterative fit (newton-cg, tol 1e-10) */
                double tol = m >= METRIC_CAL_SLOPE ? 1e-6 : 1e-12;
                close_to(out[m], json_get_number(want, metric_names[m], NAN), tol, metric_names[m],
                         k);
            }
        }
        close_to(metrics_auc(prob[k], label, n),
                 json_get_number(&get(fx, "metrics")->items[k], "roc_auc", NAN), 1e-12,
                 "metrics_auc", k);
        scores_free(&s);
    }
    mem_free(w);
}

/* metrics_patients gives metrics_weighted's numbers with each slice weighted by its patient's
 * count: the class counts, ROC AUC and PR AUC bit for bit, the Brier score to rounding and the
 * calibration fits to their convergence; on all patients once, the oracle's resample weights,
 * every leave-one-patient-out, the fixture's resamples, and resamples with one class absent. */
static void test_metrics_patients(void **state)
{
    (void)state;
    const JsonValue *res = get(fx, "resamples");
    int B = (int)res->n, P = n_patients;
    double *w = mem_alloc((size_t)n * sizeof *w), *count = mem_alloc((size_t)P * sizeof *count);
    double *fixture_w = doubles(get(fx, "weights"));
    for (int k = 0; k < K; k++) {
        Scores s;
        PatientScores ps;
        assert_int_equal(scores_prepare(&s, n, prob[k], label, pred[k]), 0);
        assert_int_equal(patient_scores_prepare(&ps, &s, patient, P), 0);
        for (int c = 0; c < 2 + P + B + 2; c++) {
            for (int p = 0; p < P; p++)
                count[p] = c == 0           ? 1
                           : c == 1         ? 0
                           : c < 2 + P      ? p != c - 2
                           : c < 2 + P + B  ? 0
                           : c == 2 + P + B ? p % 6 == 1  /* normal-only patients */
                                            : p % 6 == 0; /* lesion-only patients */
            if (c == 1)
                for (int i = 0; i < n; i++)
                    count[patient[i]] = fixture_w[i];
            if (c >= 2 + P && c < 2 + P + B)
                for (size_t j = 0; j < res->items[c - 2 - P].n; j++)
                    count[(int)res->items[c - 2 - P].items[j].number]++;
            for (int i = 0; i < n; i++)
                w[i] = count[patient[i]];
            double got[METRIC_COUNT], want[METRIC_COUNT];
            metrics_patients(&ps, count, got);
            metrics_weighted(&s, w, want);
            for (int m = 0; m < METRIC_COUNT; m++) {
                if (isnan(want[m]) && isnan(got[m]))
                    continue;
                double tol = m == METRIC_BRIER ? 1e-14 : m >= METRIC_CAL_SLOPE ? 1e-9 : 0;
                if (!(fabs(got[m] - want[m]) <= tol * (1 + fabs(want[m]))))
                    fail_msg("%s (model %d, weights %d): metrics_patients %.17g, metrics_weighted "
                             "%.17g",
                             metric_names[m], k, c, got[m], want[m]);
            }
            if (c == 1) /* and the oracle's answer on those weights */
                for (int m = 0; m < METRIC_COUNT; m++)
                    close_to(got[m],
                             json_get_number(&get(fx, "metrics_weighted")->items[k],
                                             metric_names[m], NAN),
                             m >= METRIC_CAL_SLOPE ? 1e-6 : 1e-12, metric_names[m], k);
            if (c >= 2 + P + B) /* one class only: the rank metrics are undefined */
                assert_true(isnan(got[METRIC_ROC_AUC]) && isnan(got[METRIC_CAL_SLOPE]));
            assert_true(got[METRIC_ROC_AUC] == metrics_patients_auc(&ps, count) ||
                        isnan(got[METRIC_ROC_AUC]));
        }
        patient_scores_free(&ps);
        scores_free(&s);
    }
    mem_free(w), mem_free(count), mem_free(fixture_w);
}

/* The calibration fits (vectorised passes with their own exp, Newton ending at a 1e-7 step)
 * against a plain one written here: libm's exp, every slice in order, Newton to a 1e-15 step
 * (the oracle's newton-cg only settles 1e-6). Unweighted, the fixture's weights, and as
 * patient groups. */
static void reference_fit(const double *x, const double *w, int slope, double *theta)
{
    for (int iter = 0; iter < 100; iter++) {
        double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
        for (int i = 0; i < n; i++) {
            double wi = w ? w[i] : 1, t = theta[0] + (slope ? theta[1] * x[i] : x[i]);
            double p = 1 / (1 + exp(-t)), r = wi * (p - label[i]), v = wi * p * (1 - p);
            g0 += r, g1 += r * x[i], h00 += v, h01 += v * x[i], h11 += v * x[i] * x[i];
        }
        double d0 = slope ? (h11 * g0 - h01 * g1) / (h00 * h11 - h01 * h01) : g0 / h00;
        double d1 = slope ? (h00 * g1 - h01 * g0) / (h00 * h11 - h01 * h01) : 0;
        theta[0] -= d0, theta[1] -= d1;
        if (fmax(fabs(d0), fabs(d1)) <= 1e-15 * (1 + fabs(theta[0]) + fabs(theta[1])))
            return;
    }
}

static void test_calibration_fit(void **state)
{
    (void)state;
    double *w = doubles(get(fx, "weights")), *x = mem_alloc((size_t)n * sizeof *x);
    double *odds = mem_alloc((size_t)n * sizeof *odds);
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < n; i++)
            x[i] = calibration_logit(prob[k][i]), odds[i] = exp(x[i]);
        for (int weighted = 0; weighted < 2; weighted++) {
            double ab[2] = {0, 1}, a[2] = {0, 0}, fit[3];
            reference_fit(x, weighted ? w : NULL, 1, ab);
            reference_fit(x, weighted ? w : NULL, 0, a);
            calibration_fit(n, x, odds, label, weighted ? w : NULL, NULL, fit);
            close_to(fit[1], ab[1], 1e-11, "calibration slope", k);
            close_to(fit[0], ab[0], 1e-11, "calibration slope's intercept", k);
            close_to(fit[2], a[0], 1e-11, "calibration intercept", k);
        }
    }
    mem_free(w), mem_free(x), mem_free(odds);
}

static void test_youden_roc_bins(void **state)
{
    (void)state;
    int *vl = ints(get(fx, "val_label"));
    int vn = (int)get(fx, "val_label")->n;
    for (int k = 0; k < K; k++) {
        double *vp = doubles(&get(fx, "val_prob")->items[k]);
        close_to(metrics_youden_threshold(vp, vl, vn), get(fx, "youden")->items[k].number, 0,
                 "Youden threshold", k);
        mem_free(vp);
        /* ROC points: sklearn's roc_curve(drop_intermediate=False); its first threshold is
         * max + 1 where ours is +inf, so thresholds are compared from the second point */
        const JsonValue *roc = &get(fx, "roc")->items[k];
        double *fpr = mem_alloc((size_t)(n + 1) * sizeof *fpr);
        double *tpr = mem_alloc((size_t)(n + 1) * sizeof *tpr);
        double *thr = mem_alloc((size_t)(n + 1) * sizeof *thr);
        int pts = metrics_roc(prob[k], label, n, fpr, tpr, thr);
        assert_int_equal(pts, (int)get(roc, "fpr")->n);
        for (int i = 0; i < pts; i++) {
            close_to(fpr[i], get(roc, "fpr")->items[i].number, 1e-15, "ROC fpr", k);
            close_to(tpr[i], get(roc, "tpr")->items[i].number, 1e-15, "ROC tpr", k);
            if (i > 0)
                close_to(thr[i], get(roc, "threshold")->items[i - 1].number, 0, "ROC thr", k);
        }
        assert_true(isinf(thr[0]));
        mem_free(fpr), mem_free(tpr), mem_free(thr);
        /* calibration_curve(n_bins=5, 'uniform') drops empty bins */
        const JsonValue *cb = &get(fx, "calibration_bins")->items[k];
        double mp[5], fp[5];
        int cnt[5];
        calibration_bins(n, prob[k], label, 5, mp, fp, cnt);
        size_t j = 0;
        for (int b = 0; b < 5; b++) {
            if (!cnt[b])
                continue;
            assert_true(j < get(cb, "mean_pred")->n);
            close_to(mp[b], get(cb, "mean_pred")->items[j].number, 1e-12, "bin mean", k);
            close_to(fp[b], get(cb, "frac_pos")->items[j].number, 1e-12, "bin fraction", k);
            j++;
        }
        assert_int_equal(j, get(cb, "mean_pred")->n);
    }
    mem_free(vl);
}

/* Percentile and BCa intervals: scipy.stats.bootstrap on the fixture's resamples. */
static void test_bootstrap_intervals(void **state)
{
    (void)state;
    const JsonValue *res = get(fx, "resamples");
    int B = (int)res->n;
    static const char *const names[] = {"accuracy", "roc_auc", "pr_auc", "brier", "sensitivity"};
    double *w = mem_alloc((size_t)n * sizeof *w), *dist = mem_alloc((size_t)B * 5 * sizeof *dist);
    double *jack = mem_alloc((size_t)n_patients * 5 * sizeof *jack);
    int *count = mem_alloc((size_t)n_patients * sizeof *count);
    for (int k = 0; k < K; k++) {
        Scores s;
        assert_int_equal(scores_prepare(&s, n, prob[k], label, pred[k]), 0);
        double out[METRIC_COUNT], theta[5];
        for (int b = 0; b < B; b++) {
            memset(count, 0, (size_t)n_patients * sizeof *count);
            for (size_t j = 0; j < res->items[b].n; j++)
                count[(int)res->items[b].items[j].number]++;
            for (int i = 0; i < n; i++)
                w[i] = count[patient[i]];
            metrics_weighted(&s, w, out);
            for (int m = 0; m < 5; m++)
                dist[m * B + b] = out[metric_find(names[m])];
        }
        for (int q = 0; q < n_patients; q++) { /* leave patient q out */
            for (int i = 0; i < n; i++)
                w[i] = patient[i] != q;
            metrics_weighted(&s, w, out);
            for (int m = 0; m < 5; m++)
                jack[m * n_patients + q] = out[metric_find(names[m])];
        }
        metrics_weighted(&s, NULL, out);
        for (int m = 0; m < 5; m++) {
            theta[m] = out[metric_find(names[m])];
            const JsonValue *want = get(&get(fx, "bootstrap")->items[k], names[m]);
            close_to(theta[m], get(want, "estimate")->number, 1e-12, names[m], k);
            double lo, hi;
            bootstrap_percentile(dist + m * B, B, 0.95, &lo, &hi);
            close_to(lo, get(want, "percentile")->items[0].number, 1e-12, "percentile low", k);
            close_to(hi, get(want, "percentile")->items[1].number, 1e-12, "percentile high", k);
            bootstrap_bca(dist + m * B, B, theta[m], jack + m * n_patients, n_patients, 0.95, &lo,
                          &hi, NULL, NULL);
            close_to(lo, get(want, "bca")->items[0].number, 1e-10, names[m], k);
            close_to(hi, get(want, "bca")->items[1].number, 1e-10, names[m], k);
        }
        scores_free(&s);
    }
    mem_free(w), mem_free(dist), mem_free(jack), mem_free(count);
}

/* Stratified draws keyed by (seed, resample) only. */
static void test_bootstrap_draws(void **state)
{
    (void)state;
    int *has_pos = mem_calloc((size_t)n_patients, sizeof(int));
    int *has_neg = mem_calloc((size_t)n_patients, sizeof(int));
    for (int i = 0; i < n; i++)
        (label[i] ? has_pos : has_neg)[patient[i]] = 1;
    BootDesign d, d2;
    assert_int_equal(bootstrap_design(&d, n_patients, has_pos, has_neg, 7), 0);
    assert_int_equal(bootstrap_design(&d2, n_patients, has_pos, has_neg, 8), 0);
    int *c = mem_alloc((size_t)n_patients * sizeof *c),
        *again = mem_alloc((size_t)n_patients * sizeof *c);
    int differ = 0, other_seed = 0;
    for (uint64_t b = 0; b < 50; b++) {
        bootstrap_counts(&d, b, c);
        int per_stratum[3] = {0}, size[3] = {0};
        for (int p = 0; p < n_patients; p++) {
            int s = has_pos[p] && has_neg[p] ? 2 : has_pos[p];
            per_stratum[s] += c[p], size[s]++;
        }
        for (int s = 0; s < 3; s++)
            assert_int_equal(per_stratum[s], size[s]); /* each stratum keeps its size */
        bootstrap_counts(&d, 1000 - b, again);
        differ += memcmp(c, again, (size_t)n_patients * sizeof *c) != 0;
        bootstrap_counts(&d, b, again); /* a pure function of (seed, b) */
        assert_memory_equal(c, again, (size_t)n_patients * sizeof *c);
        bootstrap_counts(&d2, b, again);
        other_seed += memcmp(c, again, (size_t)n_patients * sizeof *c) != 0;
    }
    assert_int_equal(differ, 50);
    assert_int_equal(other_seed, 50);
    bootstrap_design_free(&d), bootstrap_design_free(&d2);
    mem_free(c), mem_free(again), mem_free(has_pos), mem_free(has_neg);
}

static void check_delong(const char *key, const int *cluster, int n_clusters)
{
    const JsonValue *want = get(fx, key);
    double auc[K], cov[K * K];
    const double *scores[K] = {prob[0], prob[1], prob[2]};
    assert_int_equal(delong(K, n, scores, label, cluster, n_clusters, auc, cov), 0);
    for (int k = 0; k < K; k++) {
        close_to(auc[k], get(want, "auc")->items[k].number, 1e-12, "DeLong AUC", k);
        for (int q = 0; q < K; q++)
            close_to(cov[k * K + q], get(want, "cov")->items[k].items[q].number, 1e-10,
                     "DeLong covariance", k);
    }
    const JsonValue *pairs = get(want, "pairs");
    for (size_t i = 0; i < pairs->n; i++) {
        int a = (int)json_get_number(&pairs->items[i], "a", 0);
        int b = (int)json_get_number(&pairs->items[i], "b", 0);
        double z, p;
        delong_test(K, auc, cov, a, b, &z, &p);
        close_to(z, json_get_number(&pairs->items[i], "z", NAN), 1e-9, "DeLong z", (int)i);
        close_to(p, json_get_number(&pairs->items[i], "p", NAN), 1e-9, "DeLong p", (int)i);
    }
}

/* The sorted walk against the definition, clustered by patient and slice by slice. */
static void test_delong(void **state)
{
    (void)state;
    check_delong("delong", patient, n_patients);
    int *own = mem_alloc((size_t)n * sizeof *own);
    for (int i = 0; i < n; i++)
        own[i] = i;
    check_delong("delong_unclustered", own, n);
    mem_free(own);
    /* identical models: no difference, p = 1 */
    double auc[2], cov[4], z, p;
    const double *same[2] = {prob[0], prob[0]};
    assert_int_equal(delong(2, n, same, label, patient, n_patients, auc, cov), 0);
    delong_test(2, auc, cov, 0, 1, &z, &p);
    assert_true(z == 0 && p == 1);
}

static void test_mcnemar_holm(void **state)
{
    (void)state;
    const JsonValue *mc = get(fx, "mcnemar");
    for (size_t i = 0; i < mc->n; i++)
        close_to(mcnemar_exact((long)json_get_number(&mc->items[i], "b", 0),
                               (long)json_get_number(&mc->items[i], "c", 0)),
                 json_get_number(&mc->items[i], "p", NAN), 1e-12, "McNemar", (int)i);
    const JsonValue *h = get(fx, "holm");
    int m = (int)get(h, "p")->n;
    double *p = doubles(get(h, "p")), *want = doubles(get(h, "adj"));
    double adj[16];
    assert_int_equal(holm_adjust(m, p, adj), 0);
    for (int i = 0; i < m; i++)
        close_to(adj[i], want[i], 1e-15, "Holm", i);
    p[2] = NAN; /* left out of the family */
    assert_int_equal(holm_adjust(m, p, adj), 0);
    assert_true(isnan(adj[2]));
    close_to(adj[7], 7 * 0.0001, 1e-15, "Holm over the 7 left", 7); /* not 8 x 0.0001 */
    mem_free(p), mem_free(want);
}

static void test_logistic_features_normal(void **state)
{
    (void)state;
    const JsonValue *lg = get(fx, "logistic");
    const JsonValue *x = get(lg, "x");
    int rows = (int)x->n, d = (int)x->items[0].n;
    double *xs = mem_alloc((size_t)rows * d * sizeof *xs);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < d; j++)
            xs[i * d + j] = x->items[i].items[j].number;
    int *y = ints(get(lg, "y"));
    double beta[8] = {0};
    assert_int_equal(logistic_fit(rows, d, xs, y, NULL, NULL, json_get_number(lg, "l2", 1), beta),
                     0);
    for (int j = 0; j <= d; j++)
        close_to(beta[j], get(lg, "beta")->items[j].number, 1e-6, "logistic beta", j);
    /* separated classes without a penalty: no finite estimate, said so */
    for (int i = 0; i < rows; i++)
        y[i] = xs[i * d] > 0;
    double sep[8] = {0};
    assert_int_equal(logistic_fit(rows, d, xs, y, NULL, NULL, 0, sep), -1);
    assert_true(isnan(sep[1]));
    mem_free(xs), mem_free(y);

    const JsonValue *ft = get(fx, "features");
    const JsonValue *img = get(ft, "image");
    float pix[128];
    double scratch[128], out[FEATURES];
    for (size_t i = 0; i < img->n; i++)
        pix[i] = (float)img->items[i].number;
    /* the oracle had the doubles; the slice stores float32: compare at float precision */
    features_of_slice(pix, (int)img->n, scratch, out);
    for (int f = 0; f < FEATURES; f++)
        close_to(out[f], get(ft, "values")->items[f].number, 1e-6, feature_names[f], f);

    const JsonValue *nd = get(fx, "ndtri");
    for (size_t i = 0; i < get(nd, "p")->n; i++) {
        double q = get(nd, "p")->items[i].number, want = get(nd, "x")->items[i].number;
        close_to(normal_quantile(q), want, 1e-14, "normal quantile", (int)i);
        close_to(normal_cdf(want), q, 1e-13, "normal cdf", (int)i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_metrics_patients),
        cmocka_unit_test(test_calibration_fit),
        cmocka_unit_test(test_youden_roc_bins),
        cmocka_unit_test(test_bootstrap_intervals),
        cmocka_unit_test(test_bootstrap_draws),
        cmocka_unit_test(test_delong),
        cmocka_unit_test(test_mcnemar_holm),
        cmocka_unit_test(test_logistic_features_normal),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
