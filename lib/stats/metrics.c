/* metrics.c: see metrics.h. The rank metrics (ROC AUC, PR AUC) walk the slices once in the
 * probability order fixed by scores_prepare, group by group of tied probabilities, so a
 * weighted evaluation costs O(n) and no sort: that is what makes 10 models x 9999 resamples
 * cheap. */
#include "lib/stats/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stats/calibration.h"
#include "lib/util/mem.h"

const char *const metric_names[METRIC_COUNT] = {
    "accuracy", "sensitivity", "specificity", "precision",         "f1",
    "roc_auc",  "pr_auc",      "brier",       "calibration_slope", "calibration_intercept",
};

int metric_find(const char *name)
{
    for (int m = 0; m < METRIC_COUNT; m++)
        if (!strcmp(name, metric_names[m]))
            return m;
    return -1;
}

/* qsort of indices by a shared key array: qsort has no context argument, and the sort happens
 * once per model, so a file-scope pointer set around the call is the simple way. Ties keep index
 * order, so the order is the same on every platform. */
static const double *sort_key;

static int cmp_index(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    double x = sort_key[i], y = sort_key[j];
    if (x != y)
        return (x > y) - (x < y);
    return (i > j) - (i < j);
}

void metrics_order(const double *key, int *order, int n)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_key = key;
    qsort(order, (size_t)n, sizeof *order, cmp_index);
    sort_key = NULL;
}

int scores_prepare(Scores *s, int n, const double *prob, const int *label, const int *pred)
{
    memset(s, 0, sizeof *s);
    s->n = n, s->prob = prob, s->label = label, s->pred = pred;
    s->order = mem_alloc((size_t)(n ? n : 1) * sizeof *s->order);
    s->logit = mem_alloc((size_t)(n ? n : 1) * sizeof *s->logit);
    s->odds = mem_alloc((size_t)(n ? n : 1) * sizeof *s->odds);
    if (!s->order || !s->logit || !s->odds) {
        scores_free(s);
        return -1;
    }
    metrics_order(prob, s->order, n);
    for (int i = 0; i < n; i++) {
        s->logit[i] = calibration_logit(prob[i]);
        s->odds[i] = exp(s->logit[i]);
    }
    double fit[3];
    calibration_fit(n, s->logit, s->odds, label, NULL, NULL, fit);
    for (int k = 0; k < 3; k++)
        s->cal_start[k] = isfinite(fit[k]) ? fit[k] : (k == 1);
    return 0;
}

void scores_free(Scores *s)
{
    mem_free(s->order), mem_free(s->logit), mem_free(s->odds);
    s->order = NULL, s->logit = NULL, s->odds = NULL;
}

void metrics_from_counts(double tp, double fp, double tn, double fn, double brier,
                         double out[METRIC_COUNT])
{
    double pos = tp + fn, neg = tn + fp, all = pos + neg;
    out[METRIC_ACCURACY] = all > 0 ? (tp + tn) / all : NAN;
    out[METRIC_SENSITIVITY] = pos > 0 ? tp / pos : NAN;
    out[METRIC_SPECIFICITY] = neg > 0 ? tn / neg : NAN;
    out[METRIC_PRECISION] = tp + fp > 0 ? tp / (tp + fp) : 0;
    double prec = out[METRIC_PRECISION], rec = out[METRIC_SENSITIVITY];
    out[METRIC_F1] = pos > 0 ? (prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0) : NAN;
    out[METRIC_BRIER] = all > 0 ? brier / all : NAN;
}

double metrics_auc_weighted(const Scores *s, const double *w)
{
    /* ascending: each positive beats the negative weight below its tie group and ties half of
     * the group's own */
    const double *p = s->prob;
    const int *y = s->label;
    double auc = 0, below_neg = 0, pos = 0;
    for (int a = 0; a < s->n;) {
        int b = a;
        double gp = 0, gn = 0;
        for (; b < s->n && p[s->order[b]] == p[s->order[a]]; b++) {
            int i = s->order[b];
            double wi = w ? w[i] : 1;
            if (y[i])
                gp += wi;
            else
                gn += wi;
        }
        auc += gp * (below_neg + 0.5 * gn);
        below_neg += gn, pos += gp;
        a = b;
    }
    return pos > 0 && below_neg > 0 ? auc / (pos * below_neg) : NAN;
}

void metrics_weighted(const Scores *s, const double *w, double out[METRIC_COUNT])
{
    int n = s->n;
    const double *p = s->prob;
    const int *y = s->label, *pred = s->pred;
    double tp = 0, fp = 0, tn = 0, fn = 0, brier = 0;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (y[i]) {
            if (pred[i])
                tp += wi;
            else
                fn += wi;
        } else if (pred[i])
            fp += wi;
        else
            tn += wi;
        double d = p[i] - (y[i] != 0);
        brier += wi * d * d;
    }
    metrics_from_counts(tp, fp, tn, fn, brier, out);
    double pos = tp + fn, neg = tn + fp;

    out[METRIC_ROC_AUC] = metrics_auc_weighted(s, w);
    /* PR AUC descending: each group of tied probabilities adds recall gained x precision */
    double ap = 0, cum_p = 0, cum_n = 0;
    for (int b = n - 1; b >= 0;) {
        int a = b;
        double gp = 0, gn = 0;
        for (; a >= 0 && p[s->order[a]] == p[s->order[b]]; a--) {
            int i = s->order[a];
            double wi = w ? w[i] : 1;
            if (y[i])
                gp += wi;
            else
                gn += wi;
        }
        cum_p += gp, cum_n += gn;
        if (gp > 0)
            ap += gp / pos * (cum_p / (cum_p + cum_n));
        b = a;
    }
    out[METRIC_PR_AUC] = pos > 0 ? ap : NAN;
    double fit[3] = {NAN, NAN, NAN};
    if (pos > 0 && neg > 0)
        calibration_fit(n, s->logit, s->odds, y, w, s->cal_start, fit);
    out[METRIC_CAL_SLOPE] = fit[1];
    out[METRIC_CAL_INTERCEPT] = fit[2];
}

double metrics_auc(const double *score, const int *label, int n)
{
    int *order = mem_alloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order)
        return NAN;
    metrics_order(score, order, n);
    /* the rank part of metrics_weighted, without weights and calibration fits */
    double auc = 0, below_neg = 0, pos = 0;
    for (int a = 0; a < n;) {
        int b = a;
        double gp = 0, gn = 0;
        for (; b < n && score[order[b]] == score[order[a]]; b++) {
            gp += label[order[b]] != 0;
            gn += label[order[b]] == 0;
        }
        auc += gp * (below_neg + 0.5 * gn);
        below_neg += gn, pos += gp;
        a = b;
    }
    mem_free(order);
    return pos > 0 && below_neg > 0 ? auc / (pos * below_neg) : NAN;
}

/* The distinct probabilities from the highest down (thr), with the counts of positives (tps)
 * and negatives (fps) at or above each; returns how many, or -1 when out of memory. */
static int by_threshold(const double *prob, const int *label, int n, double *tps, double *fps,
                        double *thr)
{
    int *order = mem_alloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order)
        return -1;
    metrics_order(prob, order, n);
    int k = 0;
    double tp = 0, fp = 0;
    for (int b = n - 1; b >= 0;) {
        int a = b;
        for (; a >= 0 && prob[order[a]] == prob[order[b]]; a--) {
            tp += label[order[a]] != 0;
            fp += label[order[a]] == 0;
        }
        tps[k] = tp, fps[k] = fp, thr[k++] = prob[order[b]];
        b = a;
    }
    mem_free(order);
    return k;
}

double metrics_youden_threshold(const double *prob, const int *label, int n)
{
    double *buf = mem_alloc((size_t)(3 * n + 3) * sizeof *buf);
    if (!buf)
        return NAN;
    double *tps = buf, *fps = buf + n + 1, *thr = buf + 2 * n + 2;
    int k = by_threshold(prob, label, n, tps, fps, thr);
    double pos = k > 0 ? tps[k - 1] : 0, neg = k > 0 ? fps[k - 1] : 0;
    double best_j = 0, best_t = INFINITY;
    for (int i = 0; i < k && pos > 0 && neg > 0; i++) {
        double j = tps[i] / pos - fps[i] / neg;
        if (j > best_j) /* strictly: a tie keeps the higher threshold met first */
            best_j = j, best_t = thr[i];
    }
    mem_free(buf);
    return k < 0 ? NAN : best_t;
}

int metrics_roc(const double *prob, const int *label, int n, double *fpr, double *tpr,
                double *threshold)
{
    double *buf = mem_alloc((size_t)(3 * n + 3) * sizeof *buf);
    if (!buf)
        return -1;
    double *tps = buf, *fps = buf + n + 1, *thr = buf + 2 * n + 2;
    int k = by_threshold(prob, label, n, tps, fps, thr);
    double pos = k > 0 ? tps[k - 1] : 0, neg = k > 0 ? fps[k - 1] : 0;
    fpr[0] = 0, tpr[0] = 0, threshold[0] = INFINITY;
    for (int i = 0; i < k; i++) {
        fpr[i + 1] = neg > 0 ? fps[i] / neg : NAN;
        tpr[i + 1] = pos > 0 ? tps[i] / pos : NAN;
        threshold[i + 1] = thr[i];
    }
    mem_free(buf);
    return k < 0 ? -1 : k + 1;
}
