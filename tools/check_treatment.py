#!/usr/bin/python3
"""check_treatment.py RUN_DIR LENGTH_CHANGE BRANCH_CHANGE: the treatment response of `onfh
vessels` (RUN_DIR/treatment.json) against the synthetic cohort's ground truth
(RUN_DIR/truth/vessels.csv), in TAP.

The true change of a patient is the generator's: its tree's length and branch count in the last
vessel series after the graft minus those in the last one before it (the stage's pairing rule,
data-schema/vessels.md). Checked: the same patients are paired; for length and branches, both
95% CIs (Student t, bootstrap BCa) cover the cohort's true mean change, and the t CI covers the
generator's mean change (LENGTH_CHANGE, BRANCH_CHANGE: synth.vessel_length_change_mm and
synth.vessel_branch_change); the measured mean change is within 1 mm / 0.5 branch of the true
one. Needs only the standard library."""
import csv
import json
import sys
from collections import defaultdict

n_tap = 0


def check(ok, what, detail=""):
    global n_tap
    n_tap += 1
    print(f"{'ok' if ok else 'not ok'} {n_tap} - {what}")
    if not ok and detail:
        print(f"# {detail}")


def main():
    run, population = sys.argv[1], {"length_mm": float(sys.argv[2]), "branches": float(sys.argv[3])}
    treatment = json.load(open(f"{run}/treatment.json"))
    series = defaultdict(lambda: {0: [], 1: []})
    for row in csv.DictReader(open(f"{run}/truth/vessels.csv")):
        series[row["patient_id"]][int(row["post_graft"])].append(
            (int(row["visit"]), float(row["length_mm"]), int(row["branches"])))
    true = {"length_mm": [], "branches": []}
    for s in series.values():
        if s[0] and s[1]:
            pre, post = max(s[0]), max(s[1])
            true["length_mm"].append(post[1] - pre[1])
            true["branches"].append(post[2] - pre[2])
    n = len(true["length_mm"])
    check(treatment["length_mm"]["n"] == n, f"treatment.json pairs the {n} grafted patients of the truth",
          f"it pairs {treatment['length_mm']['n']}")
    for key, unit, max_bias in (("length_mm", "mm", 1.0), ("branches", "branches", 0.5)):
        arm = treatment[key]
        mean = sum(true[key]) / n
        for ci in ("ci_t", "ci_bootstrap_bca"):
            lo, hi = arm[ci]
            check(lo <= mean <= hi, f"{key}: {ci} [{lo:.2f}, {hi:.2f}] covers the cohort's true mean change {mean:+.2f} {unit}")
        lo, hi = arm["ci_t"]
        check(lo <= population[key] <= hi,
              f"{key}: ci_t [{lo:.2f}, {hi:.2f}] covers the generator's mean change {population[key]:+.2f} {unit}")
        bias = arm["mean_change"] - mean
        check(abs(bias) <= max_bias,
              f"{key}: measured mean change {arm['mean_change']:+.2f} within {max_bias} {unit} of the true {mean:+.2f} (bias {bias:+.2f})")
    print(f"1..{n_tap}")


if __name__ == "__main__":
    main()
