/* delong.c: see delong.h.
 *
 * Structural components of one model: for a positive slice x, V10(x) = the share of negatives
 * scored below x, ties counting half; for a negative y, V01(y) = the share of positives scored
 * above y. Sun & Xu get them from midranks (overall, among positives, among negatives); the
 * same numbers come out of one walk over the sorted scores, tie group by tie group, which is
 * what this does. The AUC is the mean of V10 over positives (= of V01 over negatives).
 *
 * Obuchowski's clustered covariance of models r and s, with per-patient sums V10_k, V01_k,
 * m_k positives and n_k negatives in patient k, M and N in all, I10 / I01 patients with a
 * positive / negative slice, I patients:
 *   S10 = I10 / ((I10 - 1) M^2) sum_k (V10_k^r - m_k A^r)(V10_k^s - m_k A^s)
 *   S01 = I01 / ((I01 - 1) N^2) sum_k (V01_k^r - n_k A^r)(V01_k^s - n_k A^s)
 *   S11 = I / ((I - 1) M N)     sum_k (V10_k^r - m_k A^r)(V01_k^s - n_k A^s)
 *   cov(A^r, A^s) = S10 + S01 + S11^{rs} + S11^{sr}. */
#include "lib/stats/delong.h"

#include <math.h>
#include <stdlib.h>

#include "lib/stats/metrics.h"
#include "lib/stats/normal.h"
#include "lib/util/mem.h"

int delong(int K, int n, const double *const *score, const int *label, const int *cluster,
           int n_clusters, double *auc, double *cov)
{
    int C = n_clusters;
    int *order = mem_alloc((size_t)(n ? n : 1) * sizeof *order);
    double *v10 = mem_calloc((size_t)K * (size_t)(C ? C : 1), sizeof *v10);
    double *v01 = mem_calloc((size_t)K * (size_t)(C ? C : 1), sizeof *v01);
    int *m = mem_calloc((size_t)(C ? C : 1), sizeof *m),
        *nn = mem_calloc((size_t)(C ? C : 1), sizeof *nn);
    if (!order || !v10 || !v01 || !m || !nn) {
        mem_free(order), mem_free(v10), mem_free(v01), mem_free(m), mem_free(nn);
        return -1;
    }
    double M = 0, N = 0;
    for (int i = 0; i < n; i++) {
        if (label[i])
            m[cluster[i]]++, M++;
        else
            nn[cluster[i]]++, N++;
    }
    for (int k = 0; k < K; k++) {
        const double *s = score[k];
        double *a10 = v10 + (size_t)k * C, *a01 = v01 + (size_t)k * C;
        metrics_order(s, order, n);
        double neg_below = 0, pos_below = 0, sum10 = 0;
        for (int a = 0; a < n;) {
            int b = a;
            double gp = 0, gn = 0;
            for (; b < n && s[order[b]] == s[order[a]]; b++)
                label[order[b]] ? gp++ : gn++;
            double x10 = N > 0 ? (neg_below + 0.5 * gn) / N : NAN;
            double y01 = M > 0 ? (M - pos_below - gp + 0.5 * gp) / M : NAN;
            for (int j = a; j < b; j++) {
                int i = order[j];
                if (label[i])
                    a10[cluster[i]] += x10, sum10 += x10;
                else
                    a01[cluster[i]] += y01;
            }
            neg_below += gn, pos_below += gp;
            a = b;
        }
        auc[k] = M > 0 && N > 0 ? sum10 / M : NAN;
    }
    int i10 = 0, i01 = 0, iall = 0;
    for (int c = 0; c < C; c++) {
        i10 += m[c] > 0, i01 += nn[c] > 0;
        iall += m[c] + nn[c] > 0;
    }
    double f10 = i10 > 1 ? i10 / ((i10 - 1.0) * M * M) : NAN;
    double f01 = i01 > 1 ? i01 / ((i01 - 1.0) * N * N) : NAN;
    double f11 = iall > 1 ? iall / ((iall - 1.0) * M * N) : NAN;
    for (int r = 0; r < K; r++)
        for (int q = 0; q <= r; q++) {
            double s10 = 0, s01 = 0, s11 = 0;
            for (int c = 0; c < C; c++) {
                double pr = v10[(size_t)r * C + c] - m[c] * auc[r];
                double pq = v10[(size_t)q * C + c] - m[c] * auc[q];
                double nr = v01[(size_t)r * C + c] - nn[c] * auc[r];
                double nq = v01[(size_t)q * C + c] - nn[c] * auc[q];
                s10 += pr * pq, s01 += nr * nq, s11 += pr * nq + pq * nr;
            }
            cov[r * K + q] = cov[q * K + r] = f10 * s10 + f01 * s01 + f11 * s11;
        }
    mem_free(order), mem_free(v10), mem_free(v01), mem_free(m), mem_free(nn);
    return 0;
}

void delong_test(int K, const double *auc, const double *cov, int a, int b, double *z, double *p)
{
    double d = auc[a] - auc[b];
    double var = cov[a * K + a] + cov[b * K + b] - 2 * cov[a * K + b];
    if (d == 0 && !(var > 0)) {
        *z = 0, *p = 1;
        return;
    }
    *z = var > 0 ? d / sqrt(var) : NAN;
    *p = erfc(fabs(*z) / M_SQRT2); /* 2 P(Z > |z|) */
}
