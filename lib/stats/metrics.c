/* metrics.c: AUC by midranks (see metrics.h). */
#include "lib/stats/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "lib/util/mem.h"

typedef struct Scored {
    double score;
    int label;
} Scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const Scored *)a)->score, y = ((const Scored *)b)->score;
    return (x > y) - (x < y);
}

double metrics_auc(const double *score, const int *label, int n)
{
    Scored *s = mem_alloc((size_t)(n ? n : 1) * sizeof *s);
    if (!s)
        return NAN;
    long pos = 0;
    for (int i = 0; i < n; i++) {
        s[i] = (Scored){score[i], label[i] != 0};
        pos += s[i].label;
    }
    long neg = n - pos;
    if (pos == 0 || neg == 0) {
        mem_free(s);
        return NAN;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_scored);
    /* sum of the positives' ranks, tied runs sharing their mean rank */
    double rank_sum = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && s[j].score == s[i].score)
            j++;
        double mid = (i + 1 + j) / 2.0; /* ranks i+1 .. j */
        for (int k = i; k < j; k++)
            if (s[k].label)
                rank_sum += mid;
        i = j;
    }
    mem_free(s);
    return (rank_sum - pos * (pos + 1) / 2.0) / ((double)pos * neg);
}
