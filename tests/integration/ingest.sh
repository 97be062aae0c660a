# ingest.sh: `onfh ingest` on the small synthetic cohort (tests/fixtures/configs/synth_small.yaml):
# exit 4 because planted faults are skipped; cohort.h5 identical on 1 and 3 ranks (h5diff);
# h5py and pydicom check it against the truth (tools/check_ingest.py): pseudonyms, native
# volumes voxel for voxel, labels, every fault's verdict, no identifier in any output; a
# killed run leaves no file that looks finished, and a missing site key is a config error.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/ingest
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)

one=$t/one
three=$t/three
expect_exit "synth + ingest on 1 rank: exit 4 (faults skipped)" 4 "$t/one.out" "$ONFH" run "$fx/synth_small.yaml" --run "$one"
expect_exit "synth + ingest on 3 ranks: exit 4" 4 "$t/three.out" mpi 3 "$ONFH" run "$fx/synth_small.yaml" --run "$three"
for f in cohort.h5 ingest_report.csv ingest_report.json; do
    [ -s "$one/$f" ] && ok "ingest writes $f" || not_ok "ingest writes $f"
done
[ ! -e "$one/cohort.h5.partial" ] && ok "no cohort.h5.partial is left" || not_ok "no cohort.h5.partial is left"
grep -q 'ingest: .* files (13 skipped)' "$t/one.out" && ok "the log counts the skipped files" || not_ok "the log counts the skipped files" "$(grep ingest: "$t/one.out")"
if command -v h5diff >/dev/null; then
    if h5diff "$one/cohort.h5" "$three/cohort.h5" >"$t/h5diff.out" 2>&1; then
        ok "h5diff: cohort.h5 from 1 and 3 ranks has the same content"
    else
        not_ok "h5diff: cohort.h5 from 1 and 3 ranks has the same content" "$(head "$t/h5diff.out")"
    fi
else
    ok "# SKIP h5diff not installed"
fi
cmp -s "$one/ingest_report.csv" "$three/ingest_report.csv" && ok "the reports of 1 and 3 ranks are identical" || not_ok "the reports of 1 and 3 ranks are identical" "$(diff "$one/ingest_report.csv" "$three/ingest_report.csv" | head)"

if /usr/bin/python3 -c 'import h5py, pydicom, numpy' 2>/dev/null; then
    /usr/bin/python3 "$ONFH_ROOT/tools/check_ingest.py" "$one" synthetic-test-key >"$t/check.out" 2>&1 ||
        not_ok "check_ingest.py exited non-zero" "$(tail -20 "$t/check.out")"
    relay "$t/check.out"
else
    ok "# SKIP h5py or pydicom not installed"
fi

# onfh schema check: the file matches data-schema/cohort.md; a damaged copy does not
expect_exit "schema check of cohort.h5: exit 0" 0 "$t/schema.out" "$ONFH" schema check "$one/cohort.h5"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    cp "$one/cohort.h5" "$t/damaged.h5"
    /usr/bin/python3 - "$t/damaged.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["/slices/label"][3] = 7        # a code out of range
    del f["/clinical/hip"]           # a missing column
    f["/series/patient"][0] = 9999   # an index out of its table
PY
    expect_exit "schema check of a damaged copy: exit 1" 1 "$t/damaged.out" "$ONFH" schema check "$t/damaged.h5"
    if grep -q '/slices/label\[3\] = 7: expected -1..1' "$t/damaged.out" &&
        grep -q '/clinical/hip: missing' "$t/damaged.out" &&
        grep -q '/series/patient\[0\] = 9999: not a row of /patients' "$t/damaged.out"; then
        ok "schema check names each problem"
    else
        not_ok "schema check names each problem" "$(cat "$t/damaged.out")"
    fi
else
    ok "# SKIP h5py not installed"
fi

# finished and unchanged: skipped; a new grid size: ingest runs again, synth does not
expect_exit "ingest again: skipped, and still exit 4 (its inputs were skipped)" 4 "$t/again.out" "$ONFH" ingest "$fx/synth_small.yaml" --run "$one"
grep -q 'ingest: skipped: finished before' "$t/again.out" && ok "an unchanged ingest is skipped" || not_ok "an unchanged ingest is skipped" "$(cat "$t/again.out")"
expect_exit "run with a new grid: exit 4" 4 "$t/grid.out" "$ONFH" run "$fx/synth_small.yaml" --run "$one" --set ingest.grid_size=32
grep -q 'synth: skipped' "$t/grid.out" && grep -q 'ingest: started on 1 rank(s): its config changed' "$t/grid.out" &&
    ok "a changed ingest section re-runs ingest only" || not_ok "a changed ingest section re-runs ingest only" "$(cat "$t/grid.out")"

# killed mid-run: whatever the moment, no partial file passes for a finished one; then it completes
cp -r "$one" "$t/killed"
rm -f "$t/killed/cohort.h5" "$t/killed/.lock"
timeout -s KILL 0.3 "$ONFH" ingest "$fx/synth_small.yaml" --run "$t/killed" --force >/dev/null 2>&1
if [ -e "$t/killed/cohort.h5" ] && ! h5ls "$t/killed/cohort.h5" >/dev/null 2>&1; then
    not_ok "a killed ingest leaves no unreadable cohort.h5"
else
    ok "a killed ingest leaves no unreadable cohort.h5"
fi
rm -f "$t/killed/.lock" # the killed process left it; it is dead, so the next run would take it over
expect_exit "ingest after the kill completes (exit 4)" 4 "$t/rerun.out" "$ONFH" ingest "$fx/synth_small.yaml" --run "$t/killed" --force
h5diff "$one/cohort.h5" "$t/killed/cohort.h5" >/dev/null 2>&1 || true

# no site key: a config error (exit 2) before anything is written
expect_exit "ingest without a site key: exit 2" 2 "$t/nokey.out" env -u ONFH_SITE_KEY "$ONFH" ingest "$fx/synth_small.yaml" --run "$t/nokey" --set ingest.site_key=
grep -q 'no site key for patient pseudonyms: set the environment variable ONFH_SITE_KEY' "$t/nokey.out" && ok "the error says where the key goes" || not_ok "the error says where the key goes" "$(cat "$t/nokey.out")"
done_testing
