#!/usr/bin/python3
"""check_evaluate.py RUN: what `onfh evaluate` wrote in RUN, recomputed from the files it read,
in plain Python (no numpy, so `make test` needs no ML packages; the statistics themselves are
checked against scikit-learn and scipy in tests/unit/test_stats.c). Prints TAP.

  - predictions.csv carries each CNN's held-out probabilities, fold by fold, unchanged;
  - each CNN's threshold of fold k is Youden's on validation_predictions.csv of fold k (never
    the test fold), and the predicted class is probability >= threshold;
  - pooled ROC AUC (pairwise, by definition), accuracy, sensitivity, specificity and Brier
    score in metrics.json match the predictions;
  - the bounds of every BCa and percentile interval are in order."""
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import plan, tap  # noqa: E402


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def youden(pairs):
    """highest J over cut-offs at the distinct probabilities, ties to the higher cut-off"""
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    best_j, best_t = 0.0, math.inf
    for t in sorted({p for p, _ in pairs}, reverse=True):
        tp = sum(1 for p, y in pairs if y and p >= t)
        fp = sum(1 for p, y in pairs if not y and p >= t)
        j = tp / pos - fp / neg
        if j > best_j:
            best_j, best_t = j, t
    return best_t


def auc(pairs):
    pos = [p for p, y in pairs if y]
    neg = [p for p, y in pairs if not y]
    s = sum((x > z) + 0.5 * (x == z) for x in pos for z in neg)
    return s / (len(pos) * len(neg))


def main():
    run = sys.argv[1]
    m = json.load(open(os.path.join(run, "metrics.json")))
    preds = rows(os.path.join(run, "predictions.csv"))
    by_model = {}
    for r in preds:
        by_model.setdefault(r["model"], []).append(r)
    for model in m["models"]:
        name = model["name"]
        mine = by_model.get(name, [])
        tap(len(mine) == m["split"]["slices"], f"{name}: one prediction per slice",
            f"{len(mine)} rows, {m['split']['slices']} slices")
        if model["kind"] == "cnn":
            held = {}
            for k in range(m["split"]["folds"]):
                d = os.path.join(run, "models", name, f"fold{k}")
                for r in rows(os.path.join(d, "heldout_predictions.csv")):
                    held[int(r["slice"])] = (k, float(r["probability"]))
                val = [(float(r["probability"]), int(r["label"]))
                       for r in rows(os.path.join(d, "validation_predictions.csv"))]
                t = youden(val)
                got = model["thresholds"][k]
                got = math.inf if got is None else got
                tap(got == t, f"{name} fold {k}: threshold is Youden's on the validation partition",
                    f"metrics.json {got}, validation {t}")
            same = all(held.get(int(r["slice"])) == (int(r["fold"]), float(r["probability"]))
                       for r in mine)
            tap(same, f"{name}: predictions.csv holds the held-out probabilities, by fold")
        calls_ok = all(int(r["predicted"]) == (float(r["probability"]) >= float(r["threshold"]))
                       for r in mine)
        tap(calls_ok, f"{name}: predicted = probability >= the fold's threshold")
        pairs = [(float(r["probability"]), int(r["label"])) for r in mine]
        calls = [(int(r["predicted"]), int(r["label"])) for r in mine]
        tp = sum(1 for c, y in calls if c and y)
        tn = sum(1 for c, y in calls if not c and not y)
        pos = sum(y for _, y in calls)
        want = {"roc_auc": auc(pairs), "accuracy": (tp + tn) / len(calls),
                "sensitivity": tp / pos, "specificity": tn / (len(calls) - pos),
                "brier": sum((p - y) ** 2 for p, y in pairs) / len(pairs)}
        for key, value in want.items():
            got = model["pooled"][key]["estimate"]
            tap(abs(got - value) < 1e-6, f"{name}: pooled {key} matches the predictions",
                f"metrics.json {got}, recomputed {value}")
        ordered = all(
            v["bca"][0] is None or v["bca"][0] <= v["bca"][1]
            for v in model["pooled"].values() if isinstance(v, dict)) and all(
            v["percentile"][0] is None or v["percentile"][0] <= v["percentile"][1]
            for v in model["pooled"].values() if isinstance(v, dict))
        tap(ordered, f"{name}: every interval has its lower bound first")
    plan()


if __name__ == "__main__":
    main()
