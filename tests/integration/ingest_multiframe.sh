# ingest_multiframe.sh: enhanced multi-frame MR files, made by pydicom (tools/make_enhanced_mr.py)
# from a synthetic patient's classic series, ingested on 1 and 2 ranks: each frame is a slice,
# ordered by its per-frame position, with its per-frame rescale (tools/check_multiframe.py
# compares with pydicom), labels join by SOPInstanceUID and frame; an enhanced copy of a classic
# series gives the very same training images; a frame without a position, a truncated
# multi-frame file and a 12-bit JPEG Extended file are skipped with their reasons.
. "$(dirname "$0")/../tap.sh"
set -u
t=$ONFH_TEST_TMP/ingest_multiframe
rm -rf "$t"
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
py=/usr/bin/python3
if ! $py -c 'import h5py, pydicom, numpy' 2>/dev/null; then
    ok "# SKIP h5py, pydicom or numpy not installed"
    done_testing
    exit 0
fi

expect_exit "synth: one patient, two visits, no faults" 0 "$t/synth.out" "$ONFH" synth "$ONFH_ROOT/tests/fixtures/configs/synth_small.yaml" --run "$t/src" --set synth.patients=1 --set synth.visits_min=2 --set synth.visits_max=2 --set synth.fault_fraction=0
visit=$(ls -d "$t"/src/raw/site*/*/* | sort | head -1)
later=$(ls -d "$t"/src/raw/site*/*/* | sort | tail -1)
raw=$t/raw
mkdir -p "$raw/classic" "$raw/enhanced"
cp -r "$visit/03_COR_T1_SE" "$raw/classic/"
mk() { $py "$ONFH_ROOT/tools/make_enhanced_mr.py" "$@"; }
sop=$(mk "$visit/03_COR_T1_SE" "$raw/enhanced/t1.dcm" --intercepts 10 --description "COR T1 SE ENHANCED") &&
    mk "$visit/03_COR_T1_SE" "$raw/enhanced/t1_same.dcm" >/dev/null &&
    mk "$visit/07_MRA_FEMORAL_HEAD" "$raw/enhanced/mra.dcm" --order reverse --intercepts -3 --rle --description "MRA ENHANCED" >/dev/null &&
    mk "$later/07_MRA_FEMORAL_HEAD" "$raw/enhanced/nopos.dcm" --drop-position 3 >/dev/null &&
    mk "$later/07_MRA_FEMORAL_HEAD" "$t/whole.dcm" --rle >/dev/null &&
    ok "pydicom writes enhanced MR files" || not_ok "pydicom writes enhanced MR files"
head -c "$(($(stat -c %s "$t/whole.dcm") - 700))" "$t/whole.dcm" >"$raw/enhanced/cut.dcm"
cp "$ONFH_ROOT/tests/fixtures/dicom/jpeg_extended12.dcm" "$raw/jpeg12.dcm"
printf 'sop_instance_uid,label,frame\n%s,lesion,2\n%s,normal,5\n%s,normal,99\n' "$sop" "$sop" "$sop" >"$t/labels.csv"
echo "patient_id,hip,visit,days_from_baseline,treatment,treatment_day,treated_before_visit,outcome" >"$t/clinical.csv"
cat >"$t/mf.yaml" <<EOF
run:
  seed: 1
ingest:
  grid_size: 64
  site_key: "synthetic-test-key"
  dicom_dir: $raw
  labels_csv: $t/labels.csv
  clinical_csv: $t/clinical.csv
EOF

expect_exit "ingest on 1 rank: exit 4 (files skipped)" 4 "$t/one.out" "$ONFH" ingest "$t/mf.yaml" --run "$t/one"
expect_exit "ingest on 2 ranks: exit 4" 4 "$t/two.out" mpi 2 "$ONFH" ingest "$t/mf.yaml" --run "$t/two"
if h5diff "$t/one/cohort.h5" "$t/two/cohort.h5" >"$t/h5diff.out" 2>&1; then
    ok "h5diff: cohort.h5 from 1 and 2 ranks has the same content"
else
    not_ok "h5diff: cohort.h5 from 1 and 2 ranks has the same content" "$(head "$t/h5diff.out")"
fi
report=$t/one/ingest_report.csv
grep -q '"skip:missing_attribute","frame 3: (0020,0032) ImagePositionPatient is absent' "$report" &&
    ok "a frame without a position: the file is skipped, the frame named" || not_ok "a frame without a position: the file is skipped, the frame named" "$(cat "$report")"
grep -q 'cut.dcm","skip:truncated"' "$report" &&
    ok "a multi-frame file cut inside its pixels: skip:truncated" || not_ok "a multi-frame file cut inside its pixels: skip:truncated" "$(cat "$report")"
grep -q 'jpeg12.dcm","skip:unsupported_transfer_syntax","transfer syntax 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 & 4)) with 12-bit samples' "$report" &&
    ok "12-bit JPEG Extended: refused at the scan, naming the syntax and the bit depth" || not_ok "12-bit JPEG Extended: refused at the scan, naming the syntax and the bit depth" "$(cat "$report")"
grep -q 'frame 99 is not among the ingested training slices' "$report" &&
    ok "a label for a frame that does not exist is reported" || not_ok "a label for a frame that does not exist is reported" "$(cat "$report")"
grep -q '"multiframe_files": 3' "$t/one/ingest_report.json" &&
    ok "the report counts the multi-frame files" || not_ok "the report counts the multi-frame files" "$(cat "$t/one/ingest_report.json")"

$py "$ONFH_ROOT/tools/check_multiframe.py" "$t/one" training "$raw/enhanced/t1.dcm" "$t/labels.csv" >"$t/check1.out" 2>&1 ||
    not_ok "check_multiframe.py (t1) exited non-zero" "$(tail -20 "$t/check1.out")"
relay "$t/check1.out"
$py "$ONFH_ROOT/tools/check_multiframe.py" "$t/one" vessel "$raw/enhanced/mra.dcm" >"$t/check2.out" 2>&1 ||
    not_ok "check_multiframe.py (mra) exited non-zero" "$(tail -20 "$t/check2.out")"
relay "$t/check2.out"

# the enhanced copy without per-frame intercepts: the same training images as the classic series
$py - "$t/one/cohort.h5" >"$t/same.out" 2>&1 <<'PY'
import sys, h5py, numpy as np
h = h5py.File(sys.argv[1], "r")
role, first, n = h["/series/role"][:], h["/series/first_slice"][:], h["/series/n_slices"][:]
syn = h["/series/transfer_syntax"][:]
img = h["/slices/image"]
series = [s for s in range(len(role)) if role[s] == 1]
vols = [img[first[s]:first[s] + n[s]] for s in series]
same = [(a, b) for a in range(len(vols)) for b in range(a + 1, len(vols))
        if vols[a].shape == vols[b].shape and np.array_equal(vols[a], vols[b])]
print(len(series), len(same))
PY
[ "$(cat "$t/same.out")" = "3 1" ] && ok "an enhanced copy of a classic series gives bit-identical training images" ||
    not_ok "an enhanced copy of a classic series gives bit-identical training images" "$(cat "$t/same.out")"

# the training series with per-frame rescale as a vessel series: native voxels against pydicom
expect_exit "ingest with T1 as vessel series: exit 4" 4 "$t/native.out" "$ONFH" ingest "$t/mf.yaml" --run "$t/native" --set 'ingest.vessel_series=MRA|T1'
$py "$ONFH_ROOT/tools/check_multiframe.py" "$t/native" vessel "$raw/enhanced/t1.dcm" >"$t/check3.out" 2>&1 ||
    not_ok "check_multiframe.py (t1 native) exited non-zero" "$(tail -20 "$t/check3.out")"
relay "$t/check3.out"
done_testing
