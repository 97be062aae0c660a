# archs_train.sh: every architecture trains on the small synthetic cohort (fold 0 of
# synth_small.yaml, 64x64 slices, no augmentation): its training loss after a few epochs is
# below the first epoch's, and it leaves a best checkpoint and held-out predictions.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/archs_train
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml
for s in synth ingest split; do
    "$ONFH" "$s" "$cfg" --run "$run" >"$t/$s.out" 2>&1 || [ $? = 4 ] || not_ok "onfh $s for the training runs" "$(tail -3 "$t/$s.out")"
done
archs=(mobilenet_v3_large mobilenet_v3_small mobilenet_v2 resnet18 resnet50 densenet121 densenet201 efficientnet_b0 shufflenet_v2_x1_0 vgg16_bn)
list=$(IFS=,; echo "${archs[*]}")
for a in "${archs[@]}"; do
    expect_exit "$a trains" 0 "$t/$a.out" "$ONFH" train "$cfg" --run "$run" --fold 0 --arch "$a" \
        --set "train.archs=[$list]" --set train.epochs=5 --set train.augment=false --set train.lr=0.001 \
        --set train.warmup_epochs=0 --set train.patience=0
    log=$run/models/$a/fold0/log.csv
    if [ -s "$log" ]; then
        falls=$(awk -F, 'NR == 2 { first = $4 } NR > 2 && $4 < best || NR == 3 { best = $4 } END { print (best < first) ? "yes " first " -> " best : "no " first " -> " best }' "$log")
        case "$falls" in
        yes*) ok "$a: the training loss falls (${falls#yes })" ;;
        *) not_ok "$a: the training loss falls" "$(cat "$log")" ;;
        esac
    else
        not_ok "$a: the training loss falls" "no log.csv"
    fi
    [ -s "$run/models/$a/fold0/checkpoint.h5" ] && [ -s "$run/models/$a/fold0/heldout_predictions.csv" ] &&
        ok "$a: best checkpoint and held-out predictions" || not_ok "$a: best checkpoint and held-out predictions"
done
done_testing
