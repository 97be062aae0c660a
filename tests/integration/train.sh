# train.sh: `onfh split` and `onfh train` on the small synthetic cohort: every fold trains and
# writes its checkpoint, log and held-out predictions; a run stopped after k steps and resumed
# for k more ends bit for bit where a run of 2k steps does; a last.h5 from another config is an
# error, not a fresh start; bad input gives one-line errors naming what is wrong.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/train
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml

expect_exit "synth, ingest, split, train: exit 4 (planted faults skipped)" 4 "$t/run.out" "$ONFH" run "$cfg" --run "$run"
[ -s "$run/splits.json" ] && ok "split writes splits.json" || not_ok "split writes splits.json"
for k in 0 1 2; do
    d=$run/models/mobilenet_v3_small/fold$k
    missing=""
    for f in checkpoint.h5 last.h5 log.csv heldout_predictions.csv validation_predictions.csv; do [ -s "$d/$f" ] || missing="$missing $f"; done
    [ -z "$missing" ] && ok "fold $k: checkpoint, last, log, held-out and validation predictions" || not_ok "fold $k: checkpoint, last, log, held-out and validation predictions" "missing:$missing"
done
d=$run/models/mobilenet_v3_small/fold0
[ "$(($(wc -l <"$d/log.csv") - 1))" = 2 ] && ok "log.csv has one row per epoch" || not_ok "log.csv has one row per epoch" "$(cat "$d/log.csv")"
"$ONFH" schema check "$d/checkpoint.h5" >"$t/schema.out" 2>&1 && ok "the best checkpoint matches its schema" || not_ok "the best checkpoint matches its schema" "$(cat "$t/schema.out")"
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
    n_test=$(/usr/bin/python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["fold"][0]["test"]))' "$run/splits.json")
    [ "$(($(wc -l <"$d/heldout_predictions.csv") - 1))" = "$n_test" ] && ok "one held-out prediction per test slice ($n_test)" || not_ok "one held-out prediction per test slice" "$(wc -l <"$d/heldout_predictions.csv") lines, $n_test test slices"
    n_val=$(/usr/bin/python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["fold"][0]["val"]))' "$run/splits.json")
    [ "$(($(wc -l <"$d/validation_predictions.csv") - 1))" = "$n_val" ] && ok "one validation prediction per validation slice ($n_val)" || not_ok "one validation prediction per validation slice" "$(wc -l <"$d/validation_predictions.csv") lines, $n_val validation slices"
fi
head -1 "$d/heldout_predictions.csv" | grep -qx 'patient,slice,label,probability' && ok "held-out predictions name their columns" || not_ok "held-out predictions name their columns"
grep -q -i "PATIENT\^\|SYNTH" "$d/heldout_predictions.csv" && not_ok "held-out predictions carry pseudonyms only" || ok "held-out predictions carry pseudonyms only"
expect_exit "a finished run is skipped" 4 "$t/again.out" "$ONFH" run "$cfg" --run "$run"
grep -q "train: skipped" "$t/again.out" && ok "... and says so" || not_ok "... and says so" "$(grep train "$t/again.out")"

# bit-exact resume: 4 steps straight against 2 + 2 (3 steps per epoch: the resumed part crosses
# an epoch boundary, with its validation pass and checkpoints)
one=(train "$cfg" --run "$run" --arch mobilenet_v3_small --fold 1)
expect_exit "4 steps straight" 0 "$t/s4.out" "$ONFH" "${one[@]}" --force --max-steps 4
cp "$run/models/mobilenet_v3_small/fold1/last.h5" "$t/straight.h5"
expect_exit "2 steps, stopped" 0 "$t/s2a.out" "$ONFH" "${one[@]}" --force --max-steps 2
grep -q "stopped after 2 steps" "$t/s2a.out" && ok "... says where it stopped" || not_ok "... says where it stopped" "$(tail -3 "$t/s2a.out")"
expect_exit "2 more steps, resumed" 0 "$t/s2b.out" "$ONFH" "${one[@]}" --max-steps 2
grep -q "resuming" "$t/s2b.out" && ok "... resumes" || not_ok "... resumes" "$(tail -3 "$t/s2b.out")"
cmp -s "$t/straight.h5" "$run/models/mobilenet_v3_small/fold1/last.h5" && ok "resumed weights, moments and state are bit-identical to the straight run" || not_ok "resumed weights, moments and state are bit-identical to the straight run" "$(h5diff "$t/straight.h5" "$run/models/mobilenet_v3_small/fold1/last.h5" 2>&1 | head -5)"

# without the slice cache the loader reads cohort.h5 batch by batch: the same weights
expect_exit "4 steps reading cohort.h5 batch by batch (train.cache_mib=0)" 0 "$t/nocache.out" "$ONFH" train "$cfg" --run "$run" --arch mobilenet_v3_small --fold 2 --force --max-steps 4 --set train.cache_mib=0
cp "$run/models/mobilenet_v3_small/fold2/last.h5" "$t/nocache.h5"
expect_exit "4 steps from the cache" 0 "$t/cache.out" "$ONFH" train "$cfg" --run "$run" --arch mobilenet_v3_small --fold 2 --force --max-steps 4
if command -v h5diff >/dev/null; then
    h5diff "$t/nocache.h5" "$run/models/mobilenet_v3_small/fold2/last.h5" /state_dict /state_dict >"$t/cachediff.out" 2>&1 &&
        ok "cached and uncached reading give the same weights" || not_ok "cached and uncached reading give the same weights" "$(head -5 "$t/cachediff.out")"
fi
# the GPU path's transfers, on CPUs: refdev runs ref's kernels on memory the graph must treat as
# a device's (weights uploaded, checkpoints downloaded), through a 2 + 2 resume: ref's weights
two=(train "$cfg" --run "$run" --arch mobilenet_v3_small --fold 2)
expect_exit "4 steps on ref" 0 "$t/ref.out" "$ONFH" "${two[@]}" --force --max-steps 4 --set train.backend=ref
cp "$run/models/mobilenet_v3_small/fold2/last.h5" "$t/ref.h5"
expect_exit "2 steps on refdev" 0 "$t/rd1.out" "$ONFH" "${two[@]}" --force --max-steps 2 --set train.backend=refdev
expect_exit "2 more steps on refdev, resumed" 0 "$t/rd2.out" "$ONFH" "${two[@]}" --max-steps 2 --set train.backend=refdev
if command -v h5diff >/dev/null; then
    { h5diff "$t/ref.h5" "$run/models/mobilenet_v3_small/fold2/last.h5" /state_dict /state_dict &&
        h5diff "$t/ref.h5" "$run/models/mobilenet_v3_small/fold2/last.h5" /optimizer /optimizer; } >"$t/refdev.diff" 2>&1 &&
        ok "refdev (device transfers) ends with ref's weights and moments, bit for bit" || not_ok "refdev (device transfers) ends with ref's weights and moments, bit for bit" "$(head -5 "$t/refdev.diff")"
fi
expect_exit "a last.h5 from another config is an error" 2 "$t/other.out" "$ONFH" "${one[@]}" --set train.lr=0.01
grep -q "another configuration" "$t/other.out" && ok "... saying why and what to do" || not_ok "... saying why and what to do" "$(tail -2 "$t/other.out")"
expect_exit "a fold out of range" 2 "$t/fold.out" "$ONFH" train "$cfg" --run "$run" --fold 7
grep -q -- "--fold 7: the split has folds 0 to 2" "$t/fold.out" && ok "... is named" || not_ok "... is named" "$(tail -2 "$t/fold.out")"
expect_exit "an unknown architecture" 2 "$t/arch.out" "$ONFH" train "$cfg" --run "$run" --arch resnet9000
grep -q "resnet9000" "$t/arch.out" && ok "... is named" || not_ok "... is named" "$(tail -2 "$t/arch.out")"
expect_exit "train.precision tf32 on a CPU backend" 2 "$t/tf32.out" "$ONFH" train "$cfg" --run "$run" --fold 0 --force --max-steps 1 --set train.precision=tf32 --set train.backend=ref
grep -q "train.precision tf32: the ref backend has no TF32" "$t/tf32.out" && ok "... is refused, naming the backend" || not_ok "... is refused, naming the backend" "$(tail -2 "$t/tf32.out")"
expect_exit "a batch larger than a fold's training share" 2 "$t/batch.out" "$ONFH" train "$cfg" --run "$run" --fold 0 --force --set train.batch_size=4096
grep -q "fewer than train.batch_size" "$t/batch.out" && ok "... is named" || not_ok "... is named" "$(tail -2 "$t/batch.out")"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    cp -r "$run" "$t/bad"
    /usr/bin/python3 -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r+"); f.attrs["schema"] = "onfh-cohort-0"' "$t/bad/cohort.h5"
    expect_exit "a cohort.h5 that fails its schema" 1 "$t/bad.out" "$ONFH" train "$cfg" --run "$t/bad" --fold 0 --force
    grep -q "fails its schema" "$t/bad.out" && ok "... is named, with its first problem" || not_ok "... is named, with its first problem" "$(tail -2 "$t/bad.out")"
fi
done_testing
