# verify.sh: `onfh verify` on a small evaluated run: everything matches (on 1 and 2 ranks, with
# the deterministic stages re-run), and a changed output, a removed one and a changed input are
# each named, with exit 1.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/verify
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml

expect_exit "synth through report: exit 4 (planted faults skipped)" 4 "$t/run.out" "$ONFH" run "$cfg" --run "$run" --set evaluate.bootstrap_resamples=199
expect_exit "onfh verify: exit 0" 0 "$t/v1.out" "$ONFH" verify "$run"
grep -q "^verify: 0 of [0-9]* checks differ" "$t/v1.out" && ok "... every check matches" || not_ok "... every check matches" "$(grep -v '  same' "$t/v1.out" | tail -5)"
n=$(grep -c "re-run: " "$t/v1.out")
[ "$n" -ge 8 ] && ok "ingest, split, evaluate and vessels re-ran, their $n outputs compared" || not_ok "ingest, split, evaluate and vessels re-ran" "$n re-run checks"
[ ! -e "$run/.verify" ] && ok "... in a directory removed afterwards" || not_ok "... in a directory removed afterwards"
expect_exit "mpirun -np 2 onfh verify: exit 0" 0 "$t/v2.out" mpirun -np 2 "$ONFH" verify "$run"
grep -q "^verify: 0 of [0-9]* checks differ" "$t/v2.out" && ok "... every check matches on 2 ranks" || not_ok "... every check matches on 2 ranks" "$(grep -v '  same' "$t/v2.out" | tail -5)"

cp "$run/metrics.json" "$t/metrics.json"
sed -i 's/"roc_auc"/"roc_auc" /' "$run/metrics.json"
expect_exit "a changed output: exit 1" 1 "$t/v3.out" "$ONFH" verify "$run"
grep -q "DIFFERS  evaluate output metrics.json" "$t/v3.out" && ok "... names it" || not_ok "... names it" "$(grep -v '  same' "$t/v3.out" | tail -5)"
cp "$t/metrics.json" "$run/metrics.json"
mv "$run/predictions.csv" "$t/"
expect_exit "a removed output: exit 1" 1 "$t/v4.out" "$ONFH" verify "$run"
grep -q "MISSING  evaluate output predictions.csv" "$t/v4.out" && ok "... names it" || not_ok "... names it" "$(grep -v '  same' "$t/v4.out" | tail -5)"
mv "$t/predictions.csv" "$run/"
f=$(find "$run/raw" -name '*.dcm' | sort | head -1)
printf 'x' >>"$f"
expect_exit "a changed input: exit 1" 1 "$t/v5.out" "$ONFH" verify "$run"
grep -q "DIFFERS  ingest input raw" "$t/v5.out" && ok "... names it" || not_ok "... names it" "$(grep -v '  same' "$t/v5.out" | tail -5)"
expect_exit "verify of a directory that is not a run: usage error" 2 "$t/v6.out" "$ONFH" verify "$t/nothing"
grep -q "is $t/nothing a run directory" "$t/v6.out" && ok "... saying so" || not_ok "... saying so" "$(tail -2 "$t/v6.out")"
done_testing
