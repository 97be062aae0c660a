#!/usr/bin/python3
"""peer_evaluate.py [RESAMPLES]: the peer of bench_evaluate: what a Python study does for the
same design, 10 models x 900 slices of 30 patients, a patient-level bootstrap of each model's
ROC AUC (scipy.stats.bootstrap, BCa, 9999 resamples; patients resampled, the statistic
sklearn's roc_auc_score on their slices) and DeLong's test for the 45 pairs (numpy, the fast
midrank algorithm). Only one metric where onfh computes ten, so the comparison flatters the
peer. Prints "models slices patients resamples seconds"."""
import sys
import time

import numpy as np
import scipy.stats
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

MODELS, SLICES, PATIENTS = 10, 900, 30


def delong_cov(scores, label):
    pos, neg = label == 1, label == 0
    m, n = pos.sum(), neg.sum()
    v10, v01 = [], []
    for s in scores:
        tz, tx, ty = rankdata(s), rankdata(s[pos]), rankdata(s[neg])
        v10.append((tz[pos] - tx) / n)
        v01.append(1 - (tz[neg] - ty) / m)
    v10, v01 = np.array(v10), np.array(v01)
    return v10.mean(axis=1), np.cov(v10) / m + np.cov(v01) / n


def main():
    resamples = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    rng = np.random.default_rng(1)
    patient = np.arange(SLICES) * PATIENTS // SLICES
    label = (rng.random(SLICES) < 0.75).astype(int)
    scores = [1 / (1 + np.exp(-((1 + 0.1 * k) * (2 * label - 1) + rng.normal(size=SLICES))))
              for k in range(MODELS)]
    slices_of = [np.flatnonzero(patient == p) for p in range(PATIENTS)]
    t0 = time.perf_counter()
    for s in scores:
        def stat(idx, axis=-1):
            rows = np.concatenate([slices_of[p] for p in idx])
            return roc_auc_score(label[rows], s[rows])
        scipy.stats.bootstrap((np.arange(PATIENTS),), stat, vectorized=False,
                              n_resamples=resamples, method="BCa", random_state=rng)
    auc, cov = delong_cov(scores, label)
    for a in range(MODELS):
        for b in range(a + 1, MODELS):
            z = (auc[a] - auc[b]) / np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
            2 * scipy.stats.norm.sf(abs(z))
    print(MODELS, SLICES, PATIENTS, resamples, f"{time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    main()
