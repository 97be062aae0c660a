/* paired.c: Student t from the regularised incomplete beta function (continued fraction,
 * modified Lentz), its quantile by bisection, and the signed-rank test (paired.h). */
#include "lib/stats/paired.h"

#include <math.h>
#include <stdlib.h>

#include "lib/stats/normal.h"
#include "lib/util/mem.h"

/* Continued fraction of I_x(a, b) (Numerical Recipes' betacf form), for x < (a+1)/(a+b+2). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    d = fabs(d) < tiny ? tiny : d;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + aa * d, c = 1.0 + aa / c;
        d = fabs(d) < tiny ? tiny : d, c = fabs(c) < tiny ? tiny : c;
        d = 1.0 / d, h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + aa * d, c = 1.0 + aa / c;
        d = fabs(d) < tiny ? tiny : d, c = fabs(c) < tiny ? tiny : c;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16)
            break;
    }
    return h;
}

/* I_x(a, b), given x and y = 1 - x both: near x = 1, 1.0 - x would keep few digits of y (a t
 * of 1e-8 has y = 1e-16 / df), and y is what the continued fraction then needs. */
static double beta_inc(double a, double b, double x, double y)
{
    if (x <= 0.0)
        return 0.0;
    if (y <= 0.0)
        return 1.0;
    double lf = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(y);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lf) * beta_cf(a, b, x) / a;
    return 1.0 - exp(lf) * beta_cf(b, a, y) / b;
}

double student_t_cdf(double t, double df)
{
    if (isnan(t) || !(df > 0))
        return NAN;
    if (isinf(t))
        return t > 0 ? 1.0 : 0.0;
    double t2 = t * t;
    double tail = 0.5 * beta_inc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2)); /* P(T > |t|) */
    return t > 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double df)
{
    if (!(p > 0 && p < 1) || !(df > 0))
        return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    double lo = -1.0, hi = 1.0;
    while (student_t_cdf(lo, df) > p)
        lo *= 2.0;
    while (student_t_cdf(hi, df) < p)
        hi *= 2.0;
    for (int i = 0; i < 200 && hi - lo > 1e-15 * (1.0 + fabs(lo)); i++) {
        double mid = 0.5 * (lo + hi);
        if (student_t_cdf(mid, df) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int cmp_abs(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return x < y ? -1 : x > y;
}

/* Wilcoxon signed-rank of the non-zero d (sorted by |d| here). */
static int wilcoxon(const double *d, int n, PairedSummary *s)
{
    double *v = mem_alloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v)
        return -1;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (d[i] != 0.0)
            v[m++] = d[i];
    s->w_n = m;
    s->w_stat = s->w_p = NAN;
    if (m == 0) {
        mem_free(v);
        return 0;
    }
    qsort(v, (size_t)m, sizeof *v, cmp_abs);
    /* mid-ranks of |d|; tie term sum (t^3 - t) */
    double rplus = 0.0, rminus = 0.0, ties = 0.0;
    for (int i = 0; i < m;) {
        int j = i;
        while (j + 1 < m && fabs(v[j + 1]) == fabs(v[i]))
            j++;
        double rank = 0.5 * (i + j) + 1.0, t = j - i + 1;
        ties += t * t * t - t;
        for (int k = i; k <= j; k++)
            *(v[k] > 0 ? &rplus : &rminus) += rank;
        i = j + 1;
    }
    double T = rplus < rminus ? rplus : rminus;
    s->w_stat = T;
    if (m <= 50 && ties == 0.0) {
        /* counts of subsets of {1..m} by sum: the null distribution of R+ */
        int total = m * (m + 1) / 2;
        double *c = mem_calloc((size_t)total + 1, sizeof *c);
        if (!c) {
            mem_free(v);
            return -1;
        }
        c[0] = 1.0;
        for (int k = 1; k <= m; k++)
            for (int sum = total; sum >= k; sum--)
                c[sum] += c[sum - k];
        double all = ldexp(1.0, m), below = 0.0, above = 0.0;
        int r = (int)rplus;
        for (int sum = 0; sum <= total; sum++) {
            if (sum <= r)
                below += c[sum];
            if (sum >= r)
                above += c[sum];
        }
        double p = 2.0 * (below < above ? below : above) / all;
        s->w_p = 2 * r == total ? 1.0 : p > 1.0 ? 1.0 : p;
        s->w_exact = 1;
        mem_free(c);
    } else {
        double mn = m * (m + 1.0) / 4.0;
        double se = sqrt((m * (m + 1.0) * (2.0 * m + 1.0) - 0.5 * ties) / 24.0);
        double z = (T - mn) / se;
        s->w_p = 2.0 * normal_cdf(-fabs(z));
        s->w_exact = 0;
    }
    mem_free(v);
    return 0;
}

int paired_summary(const double *d, int n, double level, PairedSummary *s)
{
    s->n = n;
    s->mean = s->sd = s->t_lo = s->t_hi = s->t_stat = s->t_p = NAN;
    s->w_exact = 0;
    if (n >= 1) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += d[i];
        s->mean = sum / n;
    }
    if (n >= 2) {
        double ss = 0.0;
        for (int i = 0; i < n; i++)
            ss += (d[i] - s->mean) * (d[i] - s->mean);
        s->sd = sqrt(ss / (n - 1));
        double se = s->sd / sqrt((double)n);
        double q = student_t_quantile(0.5 * (1.0 + level), n - 1.0);
        s->t_lo = s->mean - q * se;
        s->t_hi = s->mean + q * se;
        if (se > 0) {
            s->t_stat = s->mean / se;
            s->t_p = 2.0 * student_t_cdf(-fabs(s->t_stat), n - 1.0);
        }
    }
    return wilcoxon(d, n, s);
}
