# synth.sh: `onfh synth` end to end on a small cohort (tests/fixtures/configs/synth_small.yaml):
# the same seed gives a byte-identical tree on 1 and 3 ranks; counts and fault kinds are as
# configured; two independent readers (dcmtk's dcmdump, pydicom) read every clean file, and
# pydicom's pixels and geometry equal what was written; finished stages are skipped.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/synth
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)

one=$t/one
three=$t/three
expect_exit "synth on 1 rank exits 0" 0 "$t/one.out" "$ONFH" synth "$fx/synth_small.yaml" --run "$one"
expect_exit "synth on 3 ranks exits 0" 0 "$t/three.out" mpi 3 "$ONFH" synth "$fx/synth_small.yaml" --run "$three"
for f in raw clinical.csv labels.csv truth/patients.csv truth/slices.csv truth/vessels.csv truth/faults.csv; do
    [ -e "$one/$f" ] || not_ok "synth writes $f"
done
if diff -r "$one/raw" "$three/raw" >/dev/null && diff -r "$one/truth" "$three/truth" >/dev/null &&
    cmp -s "$one/clinical.csv" "$three/clinical.csv" && cmp -s "$one/labels.csv" "$three/labels.csv"; then
    ok "1 and 3 ranks give byte-identical raw/, truth/ and CSVs"
else
    not_ok "1 and 3 ranks give byte-identical raw/, truth/ and CSVs" "$(diff -rq "$one" "$three" | head)"
fi
[ ! -e "$one/raw.partial" ] && [ ! -e "$one/truth.partial" ] && ok "no .partial directories are left" || not_ok "no .partial directories are left"

# counts: 6 patients x 8 labelled baseline slices; 0.75 of them lesion
n_labels=$(($(wc -l <"$one/labels.csv") - 1))
n_lesion=$(grep -c ',lesion$' "$one/labels.csv")
[ "$n_labels" -eq 48 ] && [ "$n_lesion" -eq 36 ] && ok "labels.csv: 48 labels, 36 lesion" || not_ok "labels.csv: 48 labels, 36 lesion" "$n_labels labels, $n_lesion lesion"
n_slices=$(awk -F, 'NR > 1 && $2 == 1' "$one/truth/slices.csv" | wc -l)
[ "$n_slices" -eq 72 ] && ok "72 baseline T1 slices (6 x 12)" || not_ok "72 baseline T1 slices (6 x 12)" "$n_slices"
kinds=$(awk -F, 'NR > 1 { print $2 }' "$one/truth/faults.csv" | sort -u | tr '\n' ' ')
[ "$kinds" = "duplicate_sop garbage missing_slice nested_names non_dicom truncated unsupported_ts " ] &&
    ok "every fault kind is injected" || not_ok "every fault kind is injected" "$kinds"
grep -q '"synth"' "$one/manifest.json" && ok "the manifest records synth" || not_ok "the manifest records synth"

# independent reader 1: dcmtk
awk -F, 'NR > 1 && $3 != "ingest" { print $1 }' "$one/truth/faults.csv" | sed "s|^|$one/|" >"$t/faults.list"
find "$one/raw" -type f | sort | grep -v -F -f "$t/faults.list" >"$t/clean.list"
n_clean=$(wc -l <"$t/clean.list")
if command -v dcmdump >/dev/null; then
    xargs dcmdump -q <"$t/clean.list" >"$t/dcmdump.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && ! grep -q -E '^(E|W|F):' "$t/dcmdump.out"; then
        ok "dcmdump reads all $n_clean clean files without an error or warning"
    else
        not_ok "dcmdump reads all $n_clean clean files without an error or warning" "$(grep -E '^(E|W|F):' "$t/dcmdump.out" | head)"
    fi
else
    ok "# SKIP dcmdump not installed"
fi
# dicom3tools' dciodvfy: every clean file against the MR Image IOD (deflated ones inflated by
# dcmconv first: dciodvfy cannot inflate); no "Error" line
if command -v dciodvfy >/dev/null && command -v dcmconv >/dev/null; then
    errors=""
    while read -r f; do
        g=$f
        if head -c 400 "$f" | grep -q -a '1.2.840.10008.1.2.1.99'; then
            g=$t/inflated.dcm
            dcmconv +te "$f" "$g" >/dev/null 2>&1 || { errors="$errors $f(dcmconv)"; continue; }
        fi
        dciodvfy "$g" 2>&1 | grep -q '^Error' && errors="$errors $f"
    done <"$t/clean.list"
    [ -z "$errors" ] && ok "dciodvfy finds no error in the $n_clean clean files" || not_ok "dciodvfy finds no error in the $n_clean clean files" $errors
else
    ok "# SKIP dciodvfy not installed"
fi

# independent reader 2: pydicom, against the truth (its TAP lines re-numbered into ours)
if /usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null; then
    /usr/bin/python3 "$ONFH_ROOT/tools/check_synth.py" "$one" >"$t/pydicom.out" 2>&1 ||
        not_ok "check_synth.py exited non-zero" "$(tail -20 "$t/pydicom.out")"
    relay "$t/pydicom.out"
else
    ok "# SKIP pydicom not installed"
fi

# finished stages are skipped, --force runs them again, --preview draws the montage
expect_exit "synth again exits 0" 0 "$t/again.out" "$ONFH" synth "$fx/synth_small.yaml" --run "$one"
grep -q 'synth: skipped: finished before with the same config and outputs' "$t/again.out" && ok "an unchanged synth is skipped" || not_ok "an unchanged synth is skipped" "$(cat "$t/again.out")"
raw_hash=$(grep -A3 '"path": "raw"' "$one/manifest.json" | sed -n 's/.*"sha256": "\(.*\)".*/\1/p')
expect_exit "synth --force --preview exits 0" 0 "$t/force.out" "$ONFH" synth "$fx/synth_small.yaml" --run "$one" --force --preview
grep -q 'synth: started' "$t/force.out" && ok "--force runs it again" || not_ok "--force runs it again" "$(cat "$t/force.out")"
raw_hash2=$(grep -A3 '"path": "raw"' "$one/manifest.json" | sed -n 's/.*"sha256": "\(.*\)".*/\1/p')
[ -n "$raw_hash" ] && [ "$raw_hash" = "$raw_hash2" ] && ok "a re-run writes the same raw/ (tree hash $raw_hash)" || not_ok "a re-run writes the same raw/" "$raw_hash vs $raw_hash2"
[ "$(head -c 8 "$one/synth_preview.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] &&
    ok "--preview writes synth_preview.png" || not_ok "--preview writes synth_preview.png"
expect_exit "a changed synth section runs again" 0 "$t/changed.out" "$ONFH" synth "$fx/synth_small.yaml" --run "$one" --set synth.snr=30
grep -q 'synth: started on 1 rank(s): its config changed since it last ran' "$t/changed.out" && ok "the log says why it runs" || not_ok "the log says why it runs" "$(cat "$t/changed.out")"
done_testing
