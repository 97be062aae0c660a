# evaluate.sh: `onfh evaluate` on a small trained run: its four files, listed in the manifest;
# its numbers recomputed from the predictions it read (tools/check_evaluate.py); the same bytes
# on 1 and 2 MPI ranks; the paper-faithful side-by-side from a slice-level run of the same
# cohort; bad predictions files refused with the file, line and field named; evaluation.h5
# through `onfh schema check`, whole and damaged.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/evaluate
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml
few=(--set evaluate.bootstrap_resamples=999)

expect_exit "synth, ingest, split, train, evaluate: exit 4 (planted faults skipped)" 4 "$t/run.out" "$ONFH" run "$cfg" --run "$run" "${few[@]}"
missing=""
for f in metrics.json evaluation.json predictions.csv evaluation.h5; do
    [ -s "$run/$f" ] || missing="$missing $f"
    grep -q "\"$f\"" "$run/manifest.json" || missing="$missing $f(manifest)"
done
[ -z "$missing" ] && ok "metrics.json, evaluation.json, predictions.csv, evaluation.h5, in the manifest" || not_ok "the four files, in the manifest" "missing:$missing"
grep -q "roc_auc .* (95% CI BCa .* percentile .*; 999 patient resamples, seed 4242)" "$t/run.out" && ok "intervals are logged with method, resamples and seed" || not_ok "intervals are logged with method, resamples and seed" "$(grep evaluate "$t/run.out" | head -5)"
grep -q '"selected": "mobilenet_v3_small"' "$run/evaluation.json" && grep -q '"tie_rule"' "$run/evaluation.json" && ok "evaluation.json names the selected architecture and the tie rule" || not_ok "evaluation.json names the selected architecture and the tie rule" "$(head -20 "$run/evaluation.json")"
if /usr/bin/python3 -c 'import csv, json' 2>/dev/null; then
    /usr/bin/python3 "$ONFH_ROOT/tools/check_evaluate.py" "$run" >"$t/check.out" 2>&1
    relay "$t/check.out"
    grep -q '^1\.\.' "$t/check.out" || not_ok "check_evaluate.py ran" "$(tail -5 "$t/check.out")"
fi

# onfh schema check: evaluation.h5 matches data-schema/evaluation.md; a damaged copy does not
expect_exit "schema check of evaluation.h5: exit 0" 0 "$t/schema.out" "$ONFH" schema check "$run/evaluation.h5"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    cp "$run/evaluation.h5" "$t/damaged.h5"
    /usr/bin/python3 - "$t/damaged.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["/models/mobilenet_v3_small/roc_tpr"][-1] = 0.0  # the ROC curve falls back
    f["/bootstrap/distribution"][5, 1, 5] = 1.5         # a ROC AUC above 1
    c = f["/delong_covariance"][...]
    c[0, 1] += 1e-3                                     # no longer symmetric
    f["/delong_covariance"][...] = c
    del f["/bootstrap/jackknife"]
PY
    expect_exit "schema check of a damaged evaluation.h5: exit 1" 1 "$t/damaged.out" "$ONFH" schema check "$t/damaged.h5"
    if grep -q 'mobilenet_v3_small: ROC point [0-9]* goes back' "$t/damaged.out" &&
        grep -q '/bootstrap/distribution\[5\]\[1\]\[roc_auc\] = 1.5: expected a value in \[0, 1\]' "$t/damaged.out" &&
        grep -q '/delong_covariance\[1\]\[0\] = .*expected a symmetric matrix' "$t/damaged.out" &&
        grep -q '/bootstrap/jackknife: missing' "$t/damaged.out"; then
        ok "schema check names each problem of evaluation.h5"
    else
        not_ok "schema check names each problem of evaluation.h5" "$(cat "$t/damaged.out")"
    fi
else
    ok "# SKIP h5py not installed"
fi

# 1 and 2 ranks: the same bytes (resamples are keyed by index, not by rank)
cp "$run/metrics.json" "$t/one.json"
cp "$run/evaluation.h5" "$t/one.h5"
cp "$run/predictions.csv" "$t/one.csv"
expect_exit "evaluate on 2 ranks" 0 "$t/two.out" mpi 2 "$ONFH" evaluate "$cfg" --run "$run" --force "${few[@]}"
cmp -s "$t/one.json" "$run/metrics.json" && cmp -s "$t/one.csv" "$run/predictions.csv" && ok "metrics.json and predictions.csv are bit-identical on 1 and 2 ranks" || not_ok "metrics.json and predictions.csv are bit-identical on 1 and 2 ranks" "$(diff "$t/one.json" "$run/metrics.json" | head -10)"
cmp -s "$t/one.h5" "$run/evaluation.h5" && ok "evaluation.h5 (bootstrap distributions) is bit-identical on 1 and 2 ranks" || not_ok "evaluation.h5 is bit-identical on 1 and 2 ranks" "$(h5diff "$t/one.h5" "$run/evaluation.h5" 2>&1 | head -5)"
expect_exit "a finished evaluate is skipped" 0 "$t/again.out" "$ONFH" evaluate "$cfg" --run "$run" "${few[@]}"
grep -q "evaluate: skipped" "$t/again.out" && ok "... and says so" || not_ok "... and says so" "$(tail -3 "$t/again.out")"

# the paper's slice-level protocol on the same cohort, evaluated beside the patient-level run
slice=$t/slice
mkdir -p "$slice"
cp "$run/cohort.h5" "$slice/"
# (val_fraction 0.4: at 0.3 the slice-level split of this 6-patient cohort leaves a validation
# partition without a normal slice, and onfh split refuses it)
lvl=(--set split.level=slice --set split.val_fraction=0.4)
expect_exit "a slice-level split and training of the same cohort" 0 "$t/slice.out" bash -c '"$0" split "$1" --run "$2" "${@:3}" && "$0" train "$1" --run "$2" "${@:3}"' "$ONFH" "$cfg" "$slice" "${lvl[@]}"
expect_exit "evaluate with evaluate.compare_run" 0 "$t/cmp.out" "$ONFH" evaluate "$cfg" --run "$run" "${few[@]}" --set evaluate.compare_run="$slice"
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
    /usr/bin/python3 - "$run/metrics.json" >"$t/cmp.check" 2>&1 <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
pf = m["paper_faithful"]
row = [r for r in pf["models"] if r["name"] == "mobilenet_v3_small"][0]
a = row["roc_auc"]
assert abs(a["inflation"] - (a["slice_level"] - a["patient_level"])) < 1e-12, a
pat = [x for x in m["models"] if x["name"] == "mobilenet_v3_small"][0]["pooled"]["roc_auc"]["estimate"]
assert a["patient_level"] == pat, (a, pat)
print("inflation", a["inflation"])
PY
    [ $? -eq 0 ] && ok "metrics.json reports the slice-level minus patient-level inflation" || not_ok "metrics.json reports the inflation" "$(cat "$t/cmp.check")"
fi
expect_exit "compare_run of the same level is refused" 2 "$t/same.out" "$ONFH" evaluate "$cfg" --run "$run" --force "${few[@]}" --set evaluate.compare_run="$run"
grep -q "both split at the patient level" "$t/same.out" && ok "... saying why" || not_ok "... saying why" "$(tail -2 "$t/same.out")"

# bad input: each names the file, the line and the field
bad=$t/bad
held=models/mobilenet_v3_small/fold1/heldout_predictions.csv
fresh() { rm -rf "$bad" && cp -r "$run" "$bad"; }
fresh
awk -F, 'BEGIN { OFS = "," } NR == 3 { $4 = "nan" } { print }' "$run/$held" >"$bad/$held"
expect_exit "a NaN probability is refused" 1 "$t/nan.out" "$ONFH" evaluate "$cfg" --run "$bad" --force "${few[@]}"
grep -q "$held:3: field probability: 'nan', expected a number in \[0, 1\]" "$t/nan.out" && ok "... naming file:line and field" || not_ok "... naming file:line and field" "$(tail -2 "$t/nan.out")"
fresh
head -n -2 "$run/$held" >"$bad/$held"
expect_exit "missing predictions of a fold are refused" 1 "$t/miss.out" "$ONFH" evaluate "$cfg" --run "$bad" --force "${few[@]}"
grep -q "$held: 2 slice(s) of fold 1's test partition have no prediction" "$t/miss.out" && ok "... saying how many and which fold" || not_ok "... saying how many and which fold" "$(tail -2 "$t/miss.out")"
fresh
other=$(awk -F, 'NR > 1 { print $1 }' "$run/models/mobilenet_v3_small/fold0/heldout_predictions.csv" | head -1)
awk -F, -v p="$other" 'BEGIN { OFS = "," } NR == 2 { $1 = p } { print }' "$run/$held" >"$bad/$held"
expect_exit "a slice put under a patient of another fold is refused" 1 "$t/pat.out" "$ONFH" evaluate "$cfg" --run "$bad" --force "${few[@]}"
grep -q "$held:2: field patient: '$other', but cohort.h5 has slice" "$t/pat.out" && ok "... naming the line and both patients" || not_ok "... naming the line and both patients" "$(tail -2 "$t/pat.out")"
fresh
rm "$bad/models/mobilenet_v3_small/fold2/validation_predictions.csv"
expect_exit "a fold without validation predictions is refused" 1 "$t/noval.out" "$ONFH" evaluate "$cfg" --run "$bad" --force "${few[@]}"
grep -q "fold2/validation_predictions.csv" "$t/noval.out" && ok "... naming the file" || not_ok "... naming the file" "$(tail -2 "$t/noval.out")"
done_testing
