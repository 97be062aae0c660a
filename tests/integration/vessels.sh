# vessels.sh: `onfh vessels` on the small synthetic cohort: its files, in the manifest; every
# definition and parameter in vessels.h5's attributes; a treatment response with both CIs and
# both tests; the same numbers on 1 and 2 MPI ranks; a cohort without clinical rows and a
# patient without a post-graft visit reported by name with the reason, the run going on;
# vessels.h5 through `onfh schema check`, whole and damaged; at 0.4 mm voxels the treatment
# response's CIs cover the generator's true change.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/vessels
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml
few=(--set vessels.bootstrap_resamples=999)

expect_exit "synth" 0 "$t/synth.out" "$ONFH" synth "$cfg" --run "$run"
expect_exit "ingest (planted faults: exit 4)" 4 "$t/ingest.out" "$ONFH" ingest "$cfg" --run "$run"
expect_exit "vessels on 1 rank" 0 "$t/one.out" "$ONFH" vessels "$cfg" --run "$run" "${few[@]}"
missing=""
for f in vessels.h5 treatment.json; do
    [ -s "$run/$f" ] || missing="$missing $f"
    grep -q "\"$f\"" "$run/manifest.json" || missing="$missing $f(manifest)"
done
n_png=$(ls "$run/vessel_overlays"/*.png 2>/dev/null | wc -l)
n_rows=$(grep -c ',' "$run/truth/vessels.csv")
[ -z "$missing" ] && [ "$n_png" -eq $((n_rows - 1)) ] && ok "vessels.h5, treatment.json in the manifest, one overlay PNG per vessel series ($n_png)" || not_ok "vessels outputs" "missing:$missing; $n_png PNGs for $((n_rows - 1)) series"
attrs=$(h5dump -A "$run/vessels.h5" 2>&1)
bad=""
for a in length_definition branch_definition sigmas_mm frangi_alpha_beta_c threshold_low_high min_object_mm3 prune_mm end_extension_max_mm junction_line_mm junction_shift_max_mm smooth_half_window; do
    echo "$attrs" | grep -q "ATTRIBUTE \"$a\"" || bad="$bad $a"
done
[ -z "$bad" ] && ok "vessels.h5 states its definitions and every parameter" || not_ok "vessels.h5 attributes" "missing:$bad"
rows=$(h5dump -d /series/branches "$run/vessels.h5" | sed -n 's/.*DATASPACE  SIMPLE { ( \([0-9]*\) ).*/\1/p')
[ "$rows" = $((n_rows - 1)) ] && ok "one row per vessel series ($rows)" || not_ok "one row per vessel series" "$rows rows, truth has $((n_rows - 1))"
for k in ci_t ci_bootstrap_bca ci_bootstrap_percentile p_paired_t p_wilcoxon; do
    [ "$(grep -c "\"$k\"" "$run/treatment.json")" -eq 2 ] || bad="$bad $k"
done
grep -q '"n": 6' "$run/treatment.json" && [ -z "$bad" ] && ok "treatment.json: 6 patients paired; t and bootstrap CIs, t-test and Wilcoxon for length and branches" || not_ok "treatment.json" "$bad $(head -40 "$run/treatment.json")"
grep -q "vessels: change after grafting (n=6): length" "$t/one.out" && ok "the change is logged" || not_ok "the change is logged" "$(tail -3 "$t/one.out")"

# onfh schema check: vessels.h5 matches data-schema/vessels.md; a damaged copy does not
expect_exit "schema check of vessels.h5: exit 0" 0 "$t/schema.out" "$ONFH" schema check "$run/vessels.h5"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    cp "$run/vessels.h5" "$t/damaged.h5"
    /usr/bin/python3 - "$t/damaged.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["/series/branches"][1] += 1  # no longer the sum of the branch types
    visit = f["/series/visit"][...]
    del f["/series/visit"]
    f["/series/visit"] = visit.astype("f8")  # a float column where integers belong
PY
    expect_exit "schema check of a damaged vessels.h5: exit 1" 1 "$t/damaged.out" "$ONFH" schema check "$t/damaged.h5"
    if grep -q '/series/visit: expected integer of 8 bytes' "$t/damaged.out" &&
        grep -q '/series row 1: expected branches = end_end + junction_end + junction_junction + cycles' "$t/damaged.out"; then
        ok "schema check names each problem of vessels.h5"
    else
        not_ok "schema check names each problem of vessels.h5" "$(cat "$t/damaged.out")"
    fi
else
    ok "# SKIP h5py not installed"
fi

# 1 and 2 ranks: identical numbers (h5diff compares values; treatment.json byte for byte)
cp "$run/vessels.h5" "$t/one.h5"
cp "$run/treatment.json" "$t/one.json"
expect_exit "vessels on 2 ranks" 0 "$t/two.out" mpi 2 "$ONFH" vessels "$cfg" --run "$run" --force "${few[@]}"
h5diff "$t/one.h5" "$run/vessels.h5" /series /series >"$t/h5diff.out" 2>&1 && ok "vessels.h5 numbers are identical on 1 and 2 ranks" || not_ok "vessels.h5 numbers are identical on 1 and 2 ranks" "$(head -5 "$t/h5diff.out")"
cmp -s "$t/one.json" "$run/treatment.json" && ok "treatment.json is identical on 1 and 2 ranks" || not_ok "treatment.json is identical on 1 and 2 ranks" "$(diff "$t/one.json" "$run/treatment.json" | head -5)"

# bad input: a cohort without clinical rows (no graft known), and without vessel series
expect_exit "ingest without clinical.csv" 4 "$t/ingest2.out" "$ONFH" ingest "$cfg" --run "$t/noclin" --set ingest.dicom_dir="$run/raw" --set ingest.clinical_csv=null --set ingest.labels_csv=null
expect_exit "vessels without clinical rows: partial (exit 4), files written" 4 "$t/noclin.out" "$ONFH" vessels "$cfg" --run "$t/noclin" "${few[@]}"
grep -q "skipped patient .*: not grafted" "$t/noclin.out" && grep -q "has no clinical rows" "$t/noclin.out" && [ -s "$t/noclin/treatment.json" ] && ok "... each patient skipped by name with the reason" || not_ok "... each patient skipped by name with the reason" "$(grep vessels "$t/noclin.out" | tail -5)"
expect_exit "ingest with no vessel series" 4 "$t/ingest3.out" "$ONFH" ingest "$cfg" --run "$t/novessel" --set ingest.dicom_dir="$run/raw" --set ingest.vessel_series=NOSUCHSERIES --set ingest.clinical_csv=null --set ingest.labels_csv=null
expect_exit "vessels with no vessel series: partial (exit 4)" 4 "$t/novessel.out" "$ONFH" vessels "$cfg" --run "$t/novessel" "${few[@]}"
grep -q "has no vessel series (role 2" "$t/novessel.out" && ok "... and says why" || not_ok "... and says why" "$(grep vessels "$t/novessel.out" | tail -3)"

# The treatment response against the generator's truth. synth_small's vessel series (32 x 32 x 16
# voxels of 1 mm) are too coarse: the measured lengths fall well short of the true ones and the
# change comes out about 4 mm short (shown here, not checked). At 0.4 mm (96 x 96 x 60 voxels,
# the same field of view as the default 64 x 64 x 40 of 0.6 mm) both CIs cover the cohort's true
# mean change and the t CI the generator's mean change (tools/check_treatment.py), and so do they
# on the paper-sized cohort at the default 0.6 mm (data-schema/vessels.md).
if /usr/bin/python3 -c 'import json, csv' 2>/dev/null; then
    /usr/bin/python3 "$ONFH_ROOT/tools/check_treatment.py" "$run" 12.4 2.7 | sed -n 's/^\(ok\|not ok\) [0-9]* - \(.*\)/# synth_small (coarse), \1: \2/p'
    fine=$t/fine
    geometry=(--set synth.vessel_matrix=96 --set synth.vessel_slices=60 --set synth.vessel_voxel_mm=0.4)
    expect_exit "synth and ingest with 0.4 mm vessel series" 0 "$t/fine.out" bash -c '"$0" synth "$1" --run "$2" "${@:3}" && { "$0" ingest "$1" --run "$2" "${@:3}"; [ $? -eq 4 ]; }' "$ONFH" "$cfg" "$fine" "${geometry[@]}"
    expect_exit "vessels with 0.4 mm vessel series" 0 "$t/fine_vessels.out" "$ONFH" vessels "$cfg" --run "$fine" "${geometry[@]}" "${few[@]}"
    /usr/bin/python3 "$ONFH_ROOT/tools/check_treatment.py" "$fine" \
        "$("$ONFH" config get "$cfg" synth.vessel_length_change_mm)" "$("$ONFH" config get "$cfg" synth.vessel_branch_change)" >"$t/fine.check" 2>&1
    relay "$t/fine.check"
    grep -q '^1\.\.' "$t/fine.check" || not_ok "check_treatment.py ran" "$(tail -5 "$t/fine.check")"
    # issue 11's criterion as named: the paper-sized cohort (configs/default.yaml) at its default
    # 0.6 mm vessel voxels, 30 grafted patients (ingest exits 4: the planted faults are skipped)
    paper=$t/paper
    expect_exit "synth, ingest and vessels of configs/default.yaml (0.6 mm vessel voxels)" 0 "$t/paper.out" bash -c '"$0" synth "$1" --run "$2" && { "$0" ingest "$1" --run "$2"; [ $? -eq 4 ]; } && "$0" vessels "$1" --run "$2" --set vessels.overlays=false' "$ONFH" "$ONFH_ROOT/configs/default.yaml" "$paper"
    /usr/bin/python3 "$ONFH_ROOT/tools/check_treatment.py" "$paper" 12.4 2.7 | sed 's/^\(not \)\{0,1\}ok [0-9]* - /&default cohort: /' >"$t/paper.check" 2>&1
    relay "$t/paper.check"
    grep -q '^1\.\.' "$t/paper.check" || not_ok "check_treatment.py ran on the default cohort" "$(tail -5 "$t/paper.check")"
else
    ok "# SKIP python3 not installed"
fi
done_testing
