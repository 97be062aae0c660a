#!/usr/bin/python3
"""peer_evaluate.py MODE DATA [RESAMPLES]: the peer of bench_evaluate, what a Python study does
for the same design: 10 models x 900 slices of 30 patients (5 folds by patient), 9999 patient
resamples. DATA: the predictions bench_evaluate --write wrote ("patient label prob_0 ..
prob_9" per slice). Prints "models slices patients resamples seconds estimate", estimate being
model 0's pooled ROC AUC (bench_evaluate prints its own: the same data on both sides).

MODE all: the work of `onfh evaluate`'s statistics, as its best user would write it: the ten
metrics of every model per fold and pooled; the same stratified patient-cluster resamples as
lib/stats/bootstrap.h (strata by the classes a patient's slices carry, each drawn with
replacement to its size; numpy's generator, not Philox), every model on every resample, the
statistic vectorised over resamples and models in numpy (weighted confusion counts and Brier
by matrix products, ROC and PR AUC by one sort per model and cumulative sums, both calibration
fits by Newton's method on all resamples at once); scipy.stats.bootstrap's BCa (its own
jackknife through the same statistic) and percentile intervals from that distribution
(n_resamples=0, bootstrap_result=...); clustered DeLong (Obuchowski) for the 45 pairs from
midranks; exact McNemar; Holm over each test's 45 p-values.

MODE auc: the ROC AUC alone, the usual script: scipy.stats.bootstrap(method='BCa') resampling
patients per model, sklearn's roc_auc_score on their slices as the statistic, and numpy
DeLong (midranks, unclustered) for the 45 pairs."""
import sys
import time
import types

import numpy as np
import scipy.special
import scipy.stats
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

MODELS, SLICES, PATIENTS, FOLDS = 10, 900, 30, 5
EPS = 1e-9  # lib/stats/calibration.h CALIBRATION_EPS
BATCH = 250  # resamples per vectorised statistic call: (250, 10, 900) doubles = 18 MB


def data(path):
    table = np.loadtxt(path, ndmin=2)
    if table.shape != (SLICES, 2 + MODELS):
        sys.exit(f"{path}: expected {SLICES} lines of patient, label and {MODELS} probabilities")
    patient, label, prob = table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2:].T.copy()
    return np.random.default_rng(1), patient, label, prob


class Metrics:
    """The ten metrics of every model (M, n) for a batch of slice weights W (B, n), vectorised:
    __call__ returns (B, M, 10) in lib/stats/metrics.h order."""

    def __init__(self, prob, label, pred):
        self.prob, self.label, self.pred = prob, label.astype(float), pred.astype(float)
        self.order = np.argsort(prob, axis=1, kind="stable")
        self.x = scipy.special.logit(np.clip(prob, EPS, 1 - EPS))
        self.sq = (prob - label) ** 2
        self.start = None
        self.start = self.calibration(np.ones((1, prob.shape[1])))[0]

    def auc_ap(self, W, pos, neg):
        M = self.prob.shape[0]
        auc, ap = np.empty((len(W), M)), np.empty((len(W), M))
        for m in range(M):
            o, p = self.order[m], self.prob[m, self.order[m]]
            starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])  # tie groups, ascending
            y = self.label[o]
            gp = np.add.reduceat(W[:, o] * y, starts, axis=1)
            gn = np.add.reduceat(W[:, o] * (1 - y), starts, axis=1)
            below = np.cumsum(gn, axis=1) - gn
            auc[:, m] = np.sum(gp * (below + 0.5 * gn), axis=1) / (pos * neg)
            cp, cn = np.cumsum(gp[:, ::-1], axis=1), np.cumsum(gn[:, ::-1], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                prec = np.where(gp[:, ::-1] > 0, cp / (cp + cn), 0)
            ap[:, m] = np.sum(gp[:, ::-1] * prec, axis=1) / pos
        return auc, ap

    def calibration(self, W):
        """slope of y ~ a + b x and intercept of y ~ a + offset(x), Newton from the unweighted
        fit, to a step below 1e-10: (B, M, 2)"""
        B, M = len(W), self.prob.shape[0]
        x, y, Wb = self.x[None], self.label[None, None], W[:, None, :]
        a = np.zeros((B, M)) if self.start is None else np.broadcast_to(self.start[:, 0], (B, M)).copy()
        b = np.ones((B, M)) if self.start is None else np.broadcast_to(self.start[:, 1], (B, M)).copy()
        for _ in range(50):
            p = scipy.special.expit(a[..., None] + b[..., None] * x)
            r, v = Wb * (p - y), Wb * p * (1 - p)
            g0, g1 = r.sum(-1), (r * x).sum(-1)
            h00, h01, h11 = v.sum(-1), (v * x).sum(-1), (v * x * x).sum(-1)
            det = h00 * h11 - h01 * h01
            da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
            a, b = a - da, b - db
            if np.all(np.maximum(abs(da), abs(db)) <= 1e-10 * (1 + np.maximum(abs(a), abs(b)))):
                break
        c = np.zeros((B, M)) if self.start is None else np.broadcast_to(self.start[:, 2], (B, M)).copy()
        for _ in range(50):
            p = scipy.special.expit(c[..., None] + x)
            d = (Wb * (p - y)).sum(-1) / (Wb * p * (1 - p)).sum(-1)
            c = c - d
            if np.all(abs(d) <= 1e-10 * (1 + abs(c))):
                break
        return np.stack([a, b, c], axis=-1)

    def __call__(self, W):
        y, pred = self.label, self.pred
        pos, allw = W @ y, W.sum(axis=1)
        neg = allw - pos
        tp, fp = W @ (y[:, None] * pred.T), W @ ((1 - y)[:, None] * pred.T)
        tn = neg[:, None] - fp
        out = np.empty((len(W), self.prob.shape[0], 10))
        with np.errstate(invalid="ignore", divide="ignore"):
            sens, prec = tp / pos[:, None], np.where(tp + fp > 0, tp / (tp + fp), 0)
            out[..., 0] = (tp + tn) / allw[:, None]
            out[..., 1], out[..., 2], out[..., 3] = sens, tn / neg[:, None], prec
            out[..., 4] = np.where(prec + sens > 0, 2 * prec * sens / (prec + sens), 0)
            out[..., 5], out[..., 6] = self.auc_ap(W, pos, neg)
            out[..., 7] = W @ self.sq.T / allw[:, None]
            fit = self.calibration(W)
        out[..., 8], out[..., 9] = fit[..., 1], fit[..., 2]
        return out


def delong_clustered(prob, label, cluster):
    """AUCs and Obuchowski's clustered covariance from midranks (Sun & Xu)"""
    pos, neg = label == 1, label == 0
    M, N = pos.sum(), neg.sum()
    C = cluster.max() + 1
    v10, v01 = [], []
    for s in prob:
        tz, tx, ty = rankdata(s), rankdata(s[pos]), rankdata(s[neg])
        v10.append(np.bincount(cluster[pos], (tz[pos] - tx) / N, C))
        v01.append(np.bincount(cluster[neg], 1 - (tz[neg] - ty) / M, C))
    v10, v01 = np.array(v10), np.array(v01)
    auc = v10.sum(axis=1) / M
    m, n = np.bincount(cluster[pos], minlength=C), np.bincount(cluster[neg], minlength=C)
    i10, i01, i = (m > 0).sum(), (n > 0).sum(), ((m + n) > 0).sum()
    d10, d01 = v10 - auc[:, None] * m, v01 - auc[:, None] * n
    s11 = i / ((i - 1) * M * N) * d10 @ d01.T
    return auc, (i10 / ((i10 - 1) * M * M) * d10 @ d10.T + i01 / ((i01 - 1) * N * N) * d01 @ d01.T
                 + s11 + s11.T)


def holm(p):
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1, (len(p) - np.arange(len(p))) * p[order])
    out = np.empty(len(p))
    out[order] = np.maximum.accumulate(adj)
    return out


def evaluate_all(rng, patient, label, prob, resamples):
    pred = (prob >= 0.5).astype(int)
    fold = patient % FOLDS
    metrics = Metrics(prob, label, pred)
    pooled = metrics(np.ones((1, SLICES)))[0]
    for k in range(FOLDS):  # per fold: the fold's slices alone
        sub = fold == k
        Metrics(prob[:, sub], label[sub], pred[:, sub])(np.ones((1, sub.sum())))

    # stratified patient-cluster resamples
    has_pos = np.bincount(patient, weights=label, minlength=PATIENTS) > 0
    has_neg = np.bincount(patient, weights=1 - label, minlength=PATIENTS) > 0
    stratum = np.where(has_pos & has_neg, 2, np.where(has_pos, 1, 0))
    draws = np.concatenate([members[rng.integers(0, len(members), (resamples, len(members)))]
                            for members in (np.flatnonzero(stratum == s) for s in range(3))
                            if len(members)], axis=1)

    def statistic(idx, axis=-1):  # idx (..., patients drawn) -> (models x metrics, ...)
        rows = np.atleast_2d(idx)
        counts = np.array([np.bincount(r, minlength=PATIENTS) for r in rows], dtype=float)
        out = np.concatenate([metrics(counts[s:s + BATCH, patient]).reshape(-1, MODELS * 10)
                              for s in range(0, len(counts), BATCH)]).T
        return out if np.ndim(idx) > 1 else out[:, 0]

    dist = statistic(draws)
    prior = types.SimpleNamespace(bootstrap_distribution=dist)
    ci = {}
    for method in ("BCa", "percentile"):
        ci[method] = scipy.stats.bootstrap((np.arange(PATIENTS),), statistic, vectorized=True,
                                           n_resamples=0, bootstrap_result=prior, method=method,
                                           confidence_level=0.95, batch=BATCH).confidence_interval

    auc, cov = delong_clustered(prob, label, patient)
    p_delong, p_mcnemar = [], []
    right = pred == label
    for a in range(MODELS):
        for b in range(a + 1, MODELS):
            z = (auc[a] - auc[b]) / np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
            p_delong.append(2 * scipy.stats.norm.sf(abs(z)))
            only_a, only_b = np.sum(right[a] & ~right[b]), np.sum(right[b] & ~right[a])
            n = only_a + only_b
            p_mcnemar.append(min(1, 2 * scipy.stats.binom.cdf(min(only_a, only_b), n, 0.5)) if n else 1)
    holm(np.array(p_delong)), holm(np.array(p_mcnemar))
    return pooled[0, 5], ci


def evaluate_auc(rng, patient, label, prob, resamples):
    slices_of = [np.flatnonzero(patient == p) for p in range(PATIENTS)]
    for s in prob:
        def stat(idx, axis=-1):
            rows = np.concatenate([slices_of[p] for p in idx])
            return roc_auc_score(label[rows], s[rows])
        scipy.stats.bootstrap((np.arange(PATIENTS),), stat, vectorized=False,
                              n_resamples=resamples, method="BCa", random_state=rng)
    pos, neg = label == 1, label == 0
    m, n = pos.sum(), neg.sum()
    v10, v01 = [], []
    for s in prob:
        tz, tx, ty = rankdata(s), rankdata(s[pos]), rankdata(s[neg])
        v10.append((tz[pos] - tx) / n)
        v01.append(1 - (tz[neg] - ty) / m)
    v10, v01 = np.array(v10), np.array(v01)
    auc, cov = v10.mean(axis=1), np.cov(v10) / m + np.cov(v01) / n
    for a in range(MODELS):
        for b in range(a + 1, MODELS):
            z = (auc[a] - auc[b]) / np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
            2 * scipy.stats.norm.sf(abs(z))
    return auc[0], None


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    if len(args) not in (2, 3) or args[0] not in ("all", "auc"):
        sys.exit("usage: peer_evaluate.py all|auc DATA [RESAMPLES] [-v]")
    resamples = int(args[2]) if len(args) > 2 else 9999
    rng, patient, label, prob = data(args[1])
    t0 = time.perf_counter()
    run = evaluate_all if sys.argv[1] == "all" else evaluate_auc
    estimate, ci = run(rng, patient, label, prob, resamples)
    secs = time.perf_counter() - t0
    print(MODELS, SLICES, PATIENTS, resamples, f"{secs:.3f}", f"{estimate:.6f}")
    if ci is not None and "-v" in sys.argv:  # model 0's ROC AUC intervals, for a look beside onfh
        print("roc_auc bca", ci["BCa"].low[5], ci["BCa"].high[5],
              "percentile", ci["percentile"].low[5], ci["percentile"].high[5], file=sys.stderr)


if __name__ == "__main__":
    main()
