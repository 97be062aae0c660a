# predict.sh: `onfh model init` and `onfh predict` on the small synthetic cohort: one row per
# slice, probabilities that sum to 1, the same file from 1 and 2 ranks, clear errors for a
# missing checkpoint or a grid the model was not trained at; and, where PyTorch is installed,
# the probabilities of a converted torchvision checkpoint against PyTorch's
# (tools/check_predict.py).
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/predict
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml

expect_exit "synth + ingest for predict: exit 4 (planted faults skipped)" 4 "$t/run.out" "$ONFH" run "$cfg" --run "$run"
expect_exit "model init writes a checkpoint" 0 "$t/init.out" "$ONFH" model init mobilenet_v3_small --size 64 --seed 3 --out "$t/small.h5"
expect_exit "schema check accepts the checkpoint" 0 "$t/schema.out" "$ONFH" schema check "$t/small.h5"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    cp "$t/small.h5" "$t/broken.h5"
    /usr/bin/python3 -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r+"); del f["state_dict/classifier.3.bias"]' "$t/broken.h5"
    expect_exit "schema check refuses a checkpoint missing a tensor" 1 "$t/broken.out" "$ONFH" schema check "$t/broken.h5"
    grep -q "classifier.3.bias" "$t/broken.out" && ok "... naming it" || not_ok "... naming it" "$(cat "$t/broken.out")"
else
    ok "# SKIP h5py not installed"
fi
expect_exit "predict on 1 rank" 0 "$t/p1.out" "$ONFH" predict "$cfg" --run "$run" --checkpoint "$t/small.h5" --out "$t/p1.csv" --batch 16
expect_exit "predict on 2 ranks" 0 "$t/p2.out" mpi 2 "$ONFH" predict "$cfg" --run "$run" --checkpoint "$t/small.h5" --out "$t/p2.csv" --batch 7
cmp -s "$t/p1.csv" "$t/p2.csv" && ok "predictions do not depend on ranks or batch size" || not_ok "predictions do not depend on ranks or batch size" "$(diff "$t/p1.csv" "$t/p2.csv" | head -5)"
slices=$(h5dump -H -d /slices/image "$run/cohort.h5" 2>/dev/null | sed -n 's/.*DATASPACE  SIMPLE { ( \([0-9]*\),.*/\1/p')
rows=$(($(wc -l <"$t/p1.csv") - 1))
[ "$rows" = "$slices" ] && ok "one row per slice ($rows)" || not_ok "one row per slice" "rows $rows, slices $slices"
head -1 "$t/p1.csv" | grep -qx 'slice,series,index,patient,label,valid,p0,p1' && ok "header names the columns" || not_ok "header names the columns" "$(head -1 "$t/p1.csv")"
bad=$(awk -F, 'NR > 1 && $6 == 1 { s = $7 + $8; if (s < 0.999999 || s > 1.000001 || $7 < 0 || $8 < 0) n++ } END { print n + 0 }' "$t/p1.csv")
[ "$bad" = 0 ] && ok "probabilities are in [0, 1] and sum to 1" || not_ok "probabilities are in [0, 1] and sum to 1" "$bad rows off"

expect_exit "a missing checkpoint is an error" 1 "$t/miss.out" "$ONFH" predict "$cfg" --run "$run" --checkpoint "$t/none.h5"
grep -q "none.h5" "$t/miss.out" && ok "... naming the file" || not_ok "... naming the file" "$(tail -3 "$t/miss.out")"
"$ONFH" model init mobilenet_v3_small --size 96 --out "$t/s96.h5" >/dev/null
expect_exit "a checkpoint trained at another size is a config error" 2 "$t/size.out" "$ONFH" predict "$cfg" --run "$run" --checkpoint "$t/s96.h5"
grep -q "trained at 96 x 96" "$t/size.out" && ok "... saying both sizes" || not_ok "... saying both sizes" "$(tail -3 "$t/size.out")"
expect_exit "predict without --checkpoint is a usage error" 2 "$t/usage.out" "$ONFH" predict "$cfg" --run "$run"
expect_exit "an unknown backend is a config error" 2 "$t/be.out" "$ONFH" predict "$cfg" --run "$run" --checkpoint "$t/small.h5" --backend cudnn7
expect_exit "model init of an unknown architecture is a config error" 2 "$t/arch.out" "$ONFH" model init resnet9000 --out "$t/x.h5"

if /usr/bin/python3 -c 'import torch, torchvision, h5py' 2>/dev/null; then
    ONFH="$ONFH" /usr/bin/python3 "$ONFH_ROOT/tools/check_predict.py" "$run" "$cfg" >"$t/check.out" 2>&1 ||
        not_ok "check_predict.py exited non-zero" "$(tail -20 "$t/check.out")"
    relay "$t/check.out"
else
    ok "# SKIP PyTorch/torchvision not installed: no comparison with PyTorch"
fi
done_testing
