/* mcnemar.c: see mcnemar.h. */
#include "lib/stats/mcnemar.h"

#include <math.h>
#include <stdlib.h>

#include "lib/stats/metrics.h"
#include "lib/util/mem.h"

double mcnemar_exact(long b, long c)
{
    long n = b + c, k = b < c ? b : c;
    if (n == 0)
        return 1;
    /* P(X <= k) for X ~ Binomial(n, 1/2), term by term in logs (n can be thousands) */
    double cdf = 0, lf = lgamma(n + 1.0) - n * M_LN2;
    for (long j = 0; j <= k; j++)
        cdf += exp(lf - lgamma(j + 1.0) - lgamma(n - j + 1.0));
    return fmin(1, 2 * cdf);
}

int holm_adjust(int m, const double *p, double *adj)
{
    int *idx = mem_alloc((size_t)(m ? m : 1) * sizeof *idx);
    int *order = mem_alloc((size_t)(m ? m : 1) * sizeof *order);
    double *val = mem_alloc((size_t)(m ? m : 1) * sizeof *val);
    if (!idx || !order || !val) {
        mem_free(idx), mem_free(order), mem_free(val);
        return -1;
    }
    int f = 0; /* the family: finite p-values */
    for (int i = 0; i < m; i++) {
        adj[i] = NAN;
        if (!isnan(p[i]))
            idx[f] = i, val[f++] = p[i];
    }
    metrics_order(val, order, f);
    double running = 0;
    for (int j = 0; j < f; j++) {
        running = fmax(running, fmin(1, (f - j) * val[order[j]]));
        adj[idx[order[j]]] = running;
    }
    mem_free(idx), mem_free(order), mem_free(val);
    return 0;
}
