"""progression_diagnose.py RUN_DIR [ARCH]: what a progression forecast has to go on, on a synthetic
run. ARCH is the CNN whose features to examine (default: the one evaluate selected). Prints (1)
how well its out-of-fold slice probabilities (predictions.csv) and the slice's distance from the
middle of its stack (cohort.h5 /slices/index) each separate lesion from normal slices, their
rank correlation, and the CNN's AUC on the 4 middle slices; (2) per visit, the mean frac_above
(progression.h5) and the mean true lesion slice count (truth/slices.csv) of progressing and
stable patients. Needs /usr/bin/python3 with h5py, pandas, scipy, scikit-learn."""
import sys

import h5py
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

run = sys.argv[1]
if len(sys.argv) > 2:
    arch = sys.argv[2]
else:  # the CNN the progression stage used: evaluate's selection
    import json
    arch = json.load(open(run + "/evaluation.json"))["selected"]
p = pd.read_csv(run + "/predictions.csv")
p = p[p.model == arch].copy()
with h5py.File(run + "/cohort.h5") as f:
    index = f["/slices/index"][:]
    n_slices = f["/series/n_slices"][:]
    series = f["/slices/series"][:]
middle = (n_slices[series[p.slice.values]] - 1) / 2.0
p["off_middle"] = np.abs(index[p.slice.values] - middle)
print("slice AUC: CNN %.3f, -distance from the middle of the stack %.3f; Spearman(CNN, -distance) %.2f"
      % (roc_auc_score(p.label, p.probability), roc_auc_score(p.label, -p.off_middle),
         spearmanr(p.probability, -p.off_middle)[0]))
mid = p[p.off_middle <= 1.5]
print("4 middle slices: %d, lesion share %.2f, CNN AUC %.3f"
      % (len(mid), mid.label.mean(), roc_auc_score(mid.label, mid.probability)))

with h5py.File(run + "/progression.h5") as f:
    v = f["/features/%s/values" % arch][:]
    y = f["/patients/outcome"][:]
names = ["stable", "progressed"]
for c in (1, 0):
    print("frac_above by visit, %s: %s" % (names[c], np.round(np.nanmean(v[y == c, :, 2], 0), 3)))
s = pd.read_csv(run + "/truth/slices.csv")
t = pd.read_csv(run + "/truth/patients.csv")
s["lesion"] = s.lesion_R | s.lesion_L
g = s.groupby(["patient_id", "visit"]).lesion.sum().reset_index()
t["progressed"] = (t.progressed_R | t.progressed_L).astype(int)
g = g.merge(t[["patient_id", "progressed"]])
for c in (1, 0):
    print("true lesion slices by visit, %s: %s"
          % (names[c], np.round(g[g.progressed == c].groupby("visit").lesion.mean().values, 2)))
