# dicom_read_synth.sh: lib/dicom's reader on a whole synthetic cohort (synth_small.yaml): every
# file of raw/ is read and decoded, in whichever syntax synth chose for it, and its pixels are
# compared with truth/slices.csv and truth/vessels.csv (SHA-256 of the stored values); the faulty
# files give the errors their kind calls for (truncated, not DICOM, refused syntax). The checks
# run in test_dicom_read --synth; their TAP lines are re-numbered into ours.
. "$(dirname "$0")/../tap.sh"
set -u
run=$ONFH_TEST_TMP/dicom_read_synth
# Open MPI's own leaks (toolchain.md) are no concern here; the reader runs with leak checks on.
expect_exit "synth writes the cohort" 0 "$run.out" env ASAN_OPTIONS=detect_leaks=0 "$ONFH" synth "$ONFH_ROOT/tests/fixtures/configs/synth_small.yaml" --run "$run"
"$ONFH_BUILD/tests/test_dicom_read" --synth "$run" >"$run.tap" 2>&1
rc=$?
while read -r verdict what; do
    if [ "$verdict" = ok ]; then ok "$what"; else not_ok "$what" "$(grep '^#' "$run.tap" | head -20)"; fi
done < <(sed -n -E 's/^ok [0-9]+ - /ok /p; s/^not ok [0-9]+ - /not_ok /p' "$run.tap")
[ "$rc" -eq 0 ] && ok "test_dicom_read --synth exits 0" || not_ok "test_dicom_read --synth exits 0" "exit $rc" "$(tail -5 "$run.tap")"
done_testing
