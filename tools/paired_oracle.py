#!/usr/bin/python3
"""paired_oracle.py: writes tests/fixtures/stats/paired_oracle.json, scipy's answers for
lib/stats/paired.c (the treatment response's paired statistics), checked by
tests/unit/test_paired.c:

  - Student t: scipy.stats.t.cdf and its inverse (t_ppf below) on a grid of t, p and degrees of freedom;
  - per data set of differences: mean, sd (ddof 1), the interval mean +- t_{(1+level)/2, n-1}
    sd / sqrt(n) at levels 0.95 and 0.90, scipy.stats.ttest_1samp (= ttest_rel on post, pre),
    and scipy.stats.wilcoxon (zero_method 'wilcox': zeros dropped; correction False;
    two-sided), with method 'exact' where paired.h takes the exact path (at most 50 non-zero
    differences, no ties) and 'approx' (tie-corrected variance) where it does not.

Data sets: small and large, with zeros, with ties, n = 2, all zeros. Usage:

    /usr/bin/python3 tools/paired_oracle.py [OUT.json]

Needs python3-numpy, python3-scipy (tools/deps.sh bench)."""
import json
import sys

import numpy as np
import scipy
import scipy.optimize
import scipy.stats

rng = np.random.default_rng(20250812)


def datasets():
    pre = rng.normal(40, 8, 14)
    post = pre + rng.normal(12.4, 6, 14)  # the paper's vessel-length gain, mm
    yield "length_n14", (post - pre).tolist()
    yield "small_n5", rng.normal(0.5, 1, 5).tolist()
    d = rng.normal(1, 2, 20)
    d[[2, 7, 11]] = 0.0  # zeros: dropped by Wilcoxon, kept by t
    yield "zeros_n20", d.tolist()
    yield "branches_ties_n16", rng.integers(-2, 6, 16).astype(float).tolist()  # counts: ties
    yield "large_n60", rng.normal(-0.3, 1.5, 60).tolist()  # over 50: the normal approximation
    yield "n2", [1.5, 4.0]
    yield "negative_n9", rng.normal(-3, 2, 9).tolist()
    yield "all_zero_n4", [0.0, 0.0, 0.0, 0.0]


def t_ppf(p, df):
    """the root of scipy's t.cdf(x, df) = p: scipy 1.10's t.ppf itself is off by up to ~1e-8
    relative (t.ppf(0.05, 30) = -1.6972608943617, whose t.cdf is 0.04999999926), while its cdf
    agrees with lib/stats to 1e-16; so the quantile is polished on the cdf (brentq, rtol 1e-15)"""
    x0 = scipy.stats.t.ppf(p, df)
    w = 1e-6 * (1 + abs(x0))
    return scipy.optimize.brentq(lambda x: scipy.stats.t.cdf(x, df) - p, x0 - w, x0 + w,
                                 xtol=1e-300, rtol=1e-15, maxiter=200)


def num(x):
    return None if not np.isfinite(x) else float(x)


def summary(d):
    d = np.asarray(d, float)
    n = len(d)
    out = {"d": d.tolist()}
    m, sd = d.mean(), d.std(ddof=1) if n > 1 else np.nan
    out["mean"], out["sd"] = num(m), num(sd)
    for level in (0.95, 0.90):
        h = t_ppf((1 + level) / 2, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
        out[f"t_ci_{int(level * 100)}"] = [num(m - h), num(m + h)]
    if n > 1 and sd > 0:
        t = scipy.stats.ttest_1samp(d, 0.0)
        out["t_stat"], out["t_p"] = num(t.statistic), num(t.pvalue)
    nz = d[d != 0]
    if len(nz):
        exact = len(nz) <= 50 and len(np.unique(np.abs(nz))) == len(nz)
        # zero_method 'wilcox' drops the zeros; scipy 1.10 then refuses 'exact' when there were
        # any ("does not work if there are zeros"), so the exact p-value is asked of the
        # non-zero differences themselves, the same test by that definition
        w = scipy.stats.wilcoxon(nz, zero_method="wilcox", correction=False,
                                 alternative="two-sided", method="exact" if exact else "approx")
        out["w_stat"], out["w_p"], out["w_exact"], out["w_n"] = (num(w.statistic), num(w.pvalue),
                                                                 int(exact), int(len(nz)))
    else:
        out["w_stat"] = out["w_p"] = None
        out["w_exact"], out["w_n"] = 0, 0
    return out


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/stats/paired_oracle.json"
    fx = {"generator": "tools/paired_oracle.py", "scipy": scipy.__version__}
    fx["sets"] = [dict(name=name, **summary(d)) for name, d in datasets()]
    dfs = [1, 2, 3.5, 7, 13, 30, 120, 1000]
    ts = [-40, -6, -2.5, -1, -0.1, 0, 0.3, 1.7, 2.2, 5, 25]
    ps = [1e-6, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.95, 0.975, 0.999]
    fx["t_cdf"] = [[df, t, float(scipy.stats.t.cdf(t, df))] for df in dfs for t in ts]
    fx["t_ppf"] = [[df, p, float(t_ppf(p, df))] for df in dfs for p in ps]
    with open(out_path, "w") as f:
        json.dump(fx, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
