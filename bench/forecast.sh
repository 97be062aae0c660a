#!/bin/bash
# forecast.sh BUILD_DIR [RUN_DIR]: issue 12's claim, measured: on the synthetic cohort of
# bench/configs/progression_cohort.yaml (every stage, synth to report), the LSTM over the visits
# up to the cut-off against the logistic regression on the last of them, each patient scored out
# of fold. Prints both AUCs with their patient-bootstrap BCa intervals, agreement k/N and the
# DeLong p, and the same models on the lesion features alone (progression.features); exits 1
# when the LSTM does not beat the logistic regression. Not a timing: the wall time is printed
# for planning only.
set -eu
build=${1:?usage: bench/forecast.sh BUILD_DIR [RUN_DIR]}
run=${2:-runs/bench-forecast}
cfg=bench/configs/progression_cohort.yaml
start=$(date +%s)
"$build/onfh" run "$cfg" --run "$run" >"$run.log" 2>&1 || { tail -20 "$run.log"; exit 1; }
summary() {
    /usr/bin/python3 - "$run/progression.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in j["models"]}
p = j["patients"]
print("%s (%s): %d patients (%d progressed, %d stable)"
      % (sys.argv[2], ", ".join(j["model_features"]), p["included"], p["progressed"], p["stable"]))
for name in ("lstm", "logistic_last_visit"):
    x = m[name]
    print("  %-20s ROC AUC %.3f (BCa %.3f to %.3f), agreement %d/%d"
          % (name, x["roc_auc"], x["roc_auc_bca"][0], x["roc_auc_bca"][1], x["agreement"]["k"], x["agreement"]["n"]))
c = [c for c in j["comparisons"] if c["a"] == "lstm" and c["b"] == "logistic_last_visit"][0]
print("  LSTM - logistic: %+.3f, DeLong p %.2g" % (c["auc_difference"], c["delong_p"]))
sys.exit(0 if c["auc_difference"] > 0 else 1)
PY
}
echo "forecast: $build/onfh run $cfg ($(($(date +%s) - start)) s on $(nproc) cores)"
summary "every feature (the paper's set)" && rc=0 || rc=1
"$build/onfh" progression "$cfg" --run "$run" --force \
    --set 'progression.features=[p_mean, p_max, frac_above, extent_mm]' >>"$run.log" 2>&1
summary "the lesion features alone" || true
# the run directory back to what its config says
"$build/onfh" progression "$cfg" --run "$run" --force >>"$run.log" 2>&1
exit $rc
