#!/usr/bin/python3
"""stats_oracle.py: writes tests/fixtures/stats/oracle.json, the independent answers that
tests/unit/test_stats.c checks lib/stats (and the evaluate stage's features) against.

Everything here comes from scikit-learn, scipy and numpy, except DeLong's test, which scipy
lacks: it is written from the papers, the slow way (every positive against every negative,
O(m n)), with Obuchowski's clustered variance (Biometrics 1997;53:567), so it shares nothing
with lib/stats/delong.c's sorted walk. Bootstrap intervals are scipy.stats.bootstrap's own
percentile and BCa, given the bootstrap distribution of the resamples listed in the fixture
(n_resamples=0, bootstrap_result=...), so only the interval arithmetic is scipy's and the
resamples are the same on both sides. Usage:

    /usr/bin/python3 tools/stats_oracle.py [OUT.json]

Needs python3-numpy, python3-scipy, python3-sklearn (tools/deps.sh bench)."""
import json
import sys
import types

import numpy as np
import scipy
import scipy.optimize
import scipy.special
import scipy.stats
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss,
                             f1_score, precision_score, recall_score, roc_auc_score, roc_curve)
from sklearn.calibration import calibration_curve

EPS = 1e-9  # lib/stats/calibration.h CALIBRATION_EPS
rng = np.random.default_rng(20250727)


def cohort(n_patients, lo, hi):
    """patients with lo..hi slices; some all lesion, some all normal, most mixed"""
    patient, label = [], []
    for p in range(n_patients):
        k = int(rng.integers(lo, hi + 1))
        kind = p % 6
        for _ in range(k):
            patient.append(p)
            label.append(1 if kind == 0 else 0 if kind == 1 else int(rng.random() < 0.7))
    return np.array(patient), np.array(label)


def models(patient, label):
    effect = rng.normal(0, 0.8, patient.max() + 1)[patient]  # correlation within a patient
    z = 1.6 * (2 * label - 1) + effect
    p0 = scipy.special.expit(z + rng.normal(0, 1.2, len(label)))
    p1 = np.round(scipy.special.expit(0.7 * z + rng.normal(0, 1.5, len(label))) * 20) / 20  # ties
    p2 = scipy.special.expit(3 * z + rng.normal(0, 2, len(label)))
    p2[rng.random(len(label)) < 0.05] = 1.0  # exactly 1, as 9-digit files write it
    return [p0, p1, p2]


def youden(prob, label):
    fpr, tpr, thr = roc_curve(label, prob, drop_intermediate=False)
    return float(thr[int(np.argmax(tpr - fpr))])  # argmax: the first, highest, threshold


def calibration(prob, label, w=None):
    x = scipy.special.logit(np.clip(prob, EPS, 1 - EPS))
    lr = LogisticRegression(penalty=None, solver="newton-cg", tol=1e-10, max_iter=1000)
    lr.fit(x[:, None], label, sample_weight=w)
    ww = np.ones(len(label)) if w is None else w
    # calibration-in-the-large: the intercept with the slope held at 1 (logit as an offset)
    a = scipy.optimize.brentq(lambda a: np.sum(ww * (label - scipy.special.expit(a + x))), -50, 50,
                              xtol=1e-14)
    return float(lr.coef_[0, 0]), float(a)


def metrics(prob, label, pred, w=None):
    slope, intercept = calibration(prob, label, w)
    return {
        "accuracy": accuracy_score(label, pred, sample_weight=w),
        "sensitivity": recall_score(label, pred, sample_weight=w),
        "specificity": recall_score(1 - label, 1 - pred, sample_weight=w),
        "precision": precision_score(label, pred, sample_weight=w, zero_division=0),
        "f1": f1_score(label, pred, sample_weight=w, zero_division=0),
        "roc_auc": roc_auc_score(label, prob, sample_weight=w),
        "pr_auc": average_precision_score(label, prob, sample_weight=w),
        "brier": brier_score_loss(label, prob, sample_weight=w),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }


def delong_from_paper(scores, label, cluster):
    """AUCs and covariance: DeLong's structural components by their definition, summed per
    cluster, Obuchowski's variance estimator."""
    pos, neg = label == 1, label == 0
    M, N = pos.sum(), neg.sum()
    clusters = np.unique(cluster)
    K = len(scores)
    auc, v10c, v01c = np.zeros(K), np.zeros((K, len(clusters))), np.zeros((K, len(clusters)))
    for k, s in enumerate(scores):
        x, y = s[pos], s[neg]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])  # (M, N)
        auc[k] = psi.mean()
        v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
        for c_i, c in enumerate(clusters):
            v10c[k, c_i] = v10[cluster[pos] == c].sum()
            v01c[k, c_i] = v01[cluster[neg] == c].sum()
    m = np.array([(pos & (cluster == c)).sum() for c in clusters])
    n = np.array([(neg & (cluster == c)).sum() for c in clusters])
    I10, I01, I = (m > 0).sum(), (n > 0).sum(), ((m + n) > 0).sum()
    cov = np.zeros((K, K))
    for r in range(K):
        for s in range(K):
            dr10, ds10 = v10c[r] - m * auc[r], v10c[s] - m * auc[s]
            dr01, ds01 = v01c[r] - n * auc[r], v01c[s] - n * auc[s]
            s10 = I10 / ((I10 - 1) * M) * np.sum(dr10 * ds10)
            s01 = I01 / ((I01 - 1) * N) * np.sum(dr01 * ds01)
            s11 = I / (I - 1) * np.sum(dr10 * ds01)
            s11t = I / (I - 1) * np.sum(ds10 * dr01)
            cov[r, s] = s10 / M + s01 / N + (s11 + s11t) / (M * N)
    pairs = []
    for a in range(K):
        for b in range(a + 1, K):
            z = (auc[a] - auc[b]) / np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
            pairs.append({"a": a, "b": b, "z": float(z), "p": float(2 * scipy.stats.norm.sf(abs(z)))})
    return {"auc": auc.tolist(), "cov": cov.tolist(), "pairs": pairs}


def holm(p):
    """Holm's step-down adjustment, by its definition"""
    order = np.argsort(p, kind="stable")
    m, out, running = len(p), np.empty(len(p)), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[i]))
        out[i] = running
    return out.tolist()


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/stats/oracle.json"
    patient, label = cohort(24, 3, 9)
    probs = models(patient, label)
    vpatient, vlabel = cohort(10, 3, 8)
    vprobs = models(vpatient, vlabel)
    thresholds = [youden(vp, vlabel) for vp in vprobs]
    preds = [(p >= t).astype(int) for p, t in zip(probs, thresholds)]
    P = patient.max() + 1
    weights = np.bincount(rng.integers(0, P, P), minlength=P)[patient].astype(float)
    fx = {
        "generator": f"tools/stats_oracle.py: numpy {np.__version__}, scipy {scipy.__version__}, "
                     f"scikit-learn {sklearn.__version__}",
        "n_patients": int(P), "patient": patient.tolist(), "label": label.tolist(),
        "prob": [p.tolist() for p in probs],
        "val_label": vlabel.tolist(), "val_prob": [p.tolist() for p in vprobs],
        "youden": thresholds, "pred": [p.tolist() for p in preds],
        "metrics": [metrics(p, label, d) for p, d in zip(probs, preds)],
        "weights": weights.tolist(),
        "metrics_weighted": [metrics(p, label, d, weights) for p, d in zip(probs, preds)],
    }
    fx["roc"] = []
    fx["calibration_bins"] = []
    for p in probs:
        fpr, tpr, thr = roc_curve(label, p, drop_intermediate=False)
        fx["roc"].append({"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": thr[1:].tolist()})
        true, pred = calibration_curve(label, p, n_bins=5, strategy="uniform")
        fx["calibration_bins"].append({"frac_pos": true.tolist(), "mean_pred": pred.tolist()})

    # bootstrap: stratified patient resamples (normal only, lesion only, both), supplied to scipy
    has_pos = np.bincount(patient, weights=label, minlength=P) > 0
    has_neg = np.bincount(patient, weights=1 - label, minlength=P) > 0
    stratum = np.where(has_pos & has_neg, 2, np.where(has_pos, 1, 0))
    B = 400
    resamples = []
    for _ in range(B):
        draw = []
        for s in range(3):
            members = np.flatnonzero(stratum == s)
            draw += members[rng.integers(0, len(members), len(members))].tolist()
        resamples.append(draw)
    fx["resamples"] = resamples
    fx["bootstrap"] = []
    names = ["accuracy", "roc_auc", "pr_auc", "brier", "sensitivity"]
    for p, d in zip(probs, preds):
        entry = {}
        for name in names:
            def stat(idx, axis=-1):
                w = np.bincount(np.asarray(idx, dtype=int), minlength=P)[patient].astype(float)
                return metrics_cheap(name, p, label, d, w)
            dist = np.array([stat(r) for r in resamples])
            prior = types.SimpleNamespace(bootstrap_distribution=dist)
            ci = {}
            for method in ("percentile", "BCa"):
                res = scipy.stats.bootstrap((np.arange(P),), stat, vectorized=False, n_resamples=0,
                                            bootstrap_result=prior, method=method,
                                            confidence_level=0.95)
                ci[method] = [res.confidence_interval.low, res.confidence_interval.high]
            entry[name] = {"estimate": stat(np.arange(P)), "percentile": ci["percentile"],
                           "bca": ci["BCa"]}
        fx["bootstrap"].append(entry)

    fx["delong"] = delong_from_paper(probs, label, patient)
    fx["delong_unclustered"] = delong_from_paper(probs, label, np.arange(len(label)))
    mc = [(0, 0), (3, 0), (5, 9), (12, 7), (40, 61), (300, 352)]
    fx["mcnemar"] = [{"b": b, "c": c, "p": 1.0 if b + c == 0 else
                      scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue} for b, c in mc]
    hp = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04, 0.2, 0.0001]
    fx["holm"] = {"p": hp, "adj": holm(np.array(hp))}

    # the intensity baseline's model: an L2 logistic regression (C = 1) on standardised features
    X = rng.normal(0, 1, (150, 5)) * [1, 2, 0.5, 3, 1] + [0, 1, -1, 2, 0]
    y = (X @ [0.8, -0.3, 1.5, 0.1, 0] + rng.normal(0, 1.5, 150) > 0.5).astype(int)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    lr = LogisticRegression(C=1.0, solver="newton-cg", tol=1e-10, max_iter=1000).fit(Xs, y)
    fx["logistic"] = {"x": Xs.tolist(), "y": y.tolist(), "l2": 1.0,
                      "beta": [float(lr.intercept_[0])] + lr.coef_[0].tolist()}

    img = rng.normal(0.2, 1.1, 97)  # features of a slice: numpy's mean, std, linear percentiles
    fx["features"] = {"image": img.tolist(),
                      "values": [img.mean(), img.std()] + np.percentile(img, [10, 25, 50, 75, 90]).tolist()}
    q = [1e-300, 1e-20, 1e-8, 0.001, 0.02, 0.025, 0.3, 0.5, 0.7, 0.975, 0.98, 0.999, 1 - 1e-9]
    fx["ndtri"] = {"p": q, "x": scipy.special.ndtri(q).tolist()}
    with open(out_path, "w") as f:
        json.dump(fx, f, indent=None, separators=(",", ":"))
        f.write("\n")


def metrics_cheap(name, prob, label, pred, w):
    if name == "accuracy":
        return accuracy_score(label, pred, sample_weight=w)
    if name == "sensitivity":
        return recall_score(label, pred, sample_weight=w)
    if name == "roc_auc":
        return roc_auc_score(label, prob, sample_weight=w)
    if name == "pr_auc":
        return average_precision_score(label, prob, sample_weight=w)
    return brier_score_loss(label, prob, sample_weight=w)


if __name__ == "__main__":
    main()
