/* patient_metrics.c: see patient_metrics.h. */
#include "lib/stats/patient_metrics.h"

#include <math.h>
#include <string.h>

#include "lib/stats/calibration.h"
#include "lib/util/mem.h"

void patient_scores_free(PatientScores *ps)
{
    mem_free(ps->begin), mem_free(ps->label), mem_free(ps->logit), mem_free(ps->odds);
    mem_free(ps->pos), mem_free(ps->neg), mem_free(ps->tp), mem_free(ps->fp), mem_free(ps->brier);
    mem_free(ps->auc_pairs), mem_free(ps->desc_patient), mem_free(ps->desc_label);
    mem_free(ps->desc_last), mem_free(ps->cal_at_start);
    memset(ps, 0, sizeof *ps);
}

int patient_scores_prepare(PatientScores *ps, const Scores *s, const int *patient, int n_patients)
{
    int n = s->n, P = n_patients;
    size_t sn = (size_t)(n ? n : 1), sp = (size_t)(P ? P : 1);
    memset(ps, 0, sizeof *ps);
    ps->n = n, ps->n_patients = P;
    ps->begin = mem_calloc(sp + 1, sizeof *ps->begin);
    ps->label = mem_alloc(sn * sizeof *ps->label);
    ps->logit = mem_alloc(sn * sizeof *ps->logit);
    ps->odds = mem_alloc(sn * sizeof *ps->odds);
    ps->pos = mem_calloc(sp, sizeof *ps->pos), ps->neg = mem_calloc(sp, sizeof *ps->neg);
    ps->tp = mem_calloc(sp, sizeof *ps->tp), ps->fp = mem_calloc(sp, sizeof *ps->fp);
    ps->brier = mem_calloc(sp, sizeof *ps->brier);
    ps->auc_pairs = mem_calloc(sp * sp, sizeof *ps->auc_pairs);
    ps->desc_patient = mem_alloc(sn * sizeof *ps->desc_patient);
    ps->desc_label = mem_alloc(sn), ps->desc_last = mem_alloc(sn);
    ps->cal_at_start = mem_alloc(sp * 7 * sizeof *ps->cal_at_start);
    int *next = mem_alloc((sp + 1) * sizeof *next);
    double *neg_below = mem_calloc(sp, sizeof *neg_below),
           *group_neg = mem_calloc(sp, sizeof *group_neg);
    if (!ps->begin || !ps->label || !ps->logit || !ps->odds || !ps->pos || !ps->neg || !ps->tp ||
        !ps->fp || !ps->brier || !ps->auc_pairs || !ps->desc_patient || !ps->desc_label ||
        !ps->desc_last || !ps->cal_at_start || !next || !neg_below || !group_neg) {
        mem_free(next), mem_free(neg_below), mem_free(group_neg);
        patient_scores_free(ps);
        return -1;
    }
    /* slices by patient, in index order within one (a counting sort), and per-patient sums */
    for (int i = 0; i < n; i++)
        ps->begin[patient[i] + 1]++;
    for (int p = 0; p < P; p++)
        ps->begin[p + 1] += ps->begin[p];
    memcpy(next, ps->begin, (size_t)P * sizeof *next);
    for (int i = 0; i < n; i++) {
        int p = patient[i], j = next[p]++, y = s->label[i] != 0;
        ps->label[j] = y, ps->logit[j] = s->logit[i], ps->odds[j] = s->odds[i];
        *(y ? &ps->pos[p] : &ps->neg[p]) += 1;
        *(y ? &ps->tp[p] : &ps->fp[p]) += s->pred[i] != 0;
        double d = s->prob[i] - y;
        ps->brier[p] += d * d;
    }
    /* A_pq, ascending by tie group: each positive of p beats the negatives of q below its group
     * and ties half of the group's own */
    const double *prob = s->prob;
    for (int a = 0; a < n;) {
        int b = a;
        for (; b < n && prob[s->order[b]] == prob[s->order[a]]; b++)
            if (!s->label[s->order[b]])
                group_neg[patient[s->order[b]]]++;
        for (int j = a; j < b; j++) {
            int i = s->order[j];
            if (!s->label[i])
                continue;
            double *row = ps->auc_pairs + (size_t)patient[i] * P;
            for (int q = 0; q < P; q++)
                row[q] += neg_below[q] + 0.5 * group_neg[q];
        }
        for (int j = a; j < b; j++) {
            int q = patient[s->order[j]];
            neg_below[q] += group_neg[q], group_neg[q] = 0;
        }
        a = b;
    }
    /* descending, for the PR AUC */
    for (int j = 0; j < n; j++) {
        int i = s->order[n - 1 - j];
        ps->desc_patient[j] = patient[i];
        ps->desc_label[j] = s->label[i] != 0;
        ps->desc_last[j] = j == n - 1 || prob[s->order[n - 2 - j]] != prob[i];
    }
    memcpy(ps->cal_start, s->cal_start, sizeof ps->cal_start);
    calibration_group_sums(P, ps->begin, ps->logit, ps->odds, ps->label, ps->cal_start,
                           ps->cal_at_start);
    mem_free(next), mem_free(neg_below), mem_free(group_neg);
    return 0;
}

double metrics_patients_auc(const PatientScores *ps, const double *count)
{
    /* c' A c / (positives x negatives) */
    int P = ps->n_patients;
    double auc = 0, pos = 0, neg = 0;
    for (int p = 0; p < P; p++) {
        if (count[p] == 0)
            continue;
        const double *row = ps->auc_pairs + (size_t)p * P;
        double r = 0;
        for (int q = 0; q < P; q++)
            r += count[q] * row[q];
        auc += count[p] * r;
        pos += count[p] * ps->pos[p], neg += count[p] * ps->neg[p];
    }
    return pos > 0 && neg > 0 ? auc / (pos * neg) : NAN;
}

void metrics_patients(const PatientScores *ps, const double *count, double out[METRIC_COUNT])
{
    int P = ps->n_patients;
    double tp = 0, fp = 0, pos = 0, neg = 0, brier = 0;
    for (int p = 0; p < P; p++) {
        if (count[p] == 0)
            continue;
        tp += count[p] * ps->tp[p], fp += count[p] * ps->fp[p];
        pos += count[p] * ps->pos[p], neg += count[p] * ps->neg[p];
        brier += count[p] * ps->brier[p];
    }
    metrics_from_counts(tp, fp, neg - fp, pos - tp, brier, out);

    out[METRIC_ROC_AUC] = metrics_patients_auc(ps, count);

    /* PR AUC descending, as metrics_weighted: each tie group adds recall gained x precision */
    /* (without branches on the label or the weight, which no predictor guesses: a group
     * without positives adds 0 / pos x ..., exactly nothing) */
    double ap = 0, cum_p = 0, cum_n = 0, gp = 0, gn = 0;
    for (int j = 0; j < ps->n; j++) {
        double w = count[ps->desc_patient[j]], wp = ps->desc_label[j] ? w : 0;
        gp += wp, gn += w - wp;
        if (!ps->desc_last[j])
            continue;
        cum_p += gp, cum_n += gn;
        double all = cum_p + cum_n > 0 ? cum_p + cum_n : 1;
        ap += gp / pos * (cum_p / all);
        gp = gn = 0;
    }
    out[METRIC_PR_AUC] = pos > 0 ? ap : NAN;

    double fit[3] = {NAN, NAN, NAN};
    if (pos > 0 && neg > 0)
        calibration_fit_groups(P, ps->begin, ps->logit, ps->odds, ps->label, count, ps->cal_start,
                               ps->cal_at_start, fit);
    out[METRIC_CAL_SLOPE] = fit[1];
    out[METRIC_CAL_INTERCEPT] = fit[2];
}
