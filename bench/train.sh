#!/bin/bash
# train.sh BUILD_DIR: `onfh train` end to end on the default synthetic cohort (configs/default.yaml's
# 30 patients, at the sizes of the README's row: 128x128 slices, 5 folds, up to 30 epochs,
# mobilenet_v3_large, fold 0) on every core: wall time, best validation AUC, training images/s
# with data loading beside the engine's pure-compute figure at the same size and batch
# (bench_train), and the loader's share of the training time. Its own run directory, so that
# make run's runs/default is left alone.
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
build=${1:?usage: bench/train.sh BUILD_DIR}
cfg=configs/default.yaml
run=runs/bench-train
sets=(--run "$run" --set ingest.grid_size=128 --set split.folds=5 --set train.epochs=30 --set 'train.archs=[mobilenet_v3_large]')
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
cores=$(nproc)
for stage in synth ingest split; do
    rc=0
    mpirun -q -np "$cores" "$build/onfh" "$stage" "$cfg" "${sets[@]}" >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || { echo "bench/train.sh: onfh $stage failed ($rc)"; exit 1; }
done
start=$(date +%s.%N)
"$build/onfh" train "$cfg" "${sets[@]}" --fold 0 --force >"$run/bench_train.log" 2>&1 || { tail -5 "$run/bench_train.log"; exit 1; }
secs=$(echo "$(date +%s.%N) - $start" | bc)
log=$run/models/mobilenet_v3_large/fold0/log.csv
size=$(grep -o 'grid_size: *[0-9]*' "$run/config.yaml" | grep -o '[0-9]*$' || true)
size=${size:-128}
awk -F, -v secs="$secs" 'NR > 1 {
        if ($8 > auc) { auc = $8; best = $1 }
        imgs += $9 * $11; t += $11; wait += $10; n = $1 }
    END {
        printf "onfh train mobilenet_v3_large fold 0, default cohort: %d epochs in %.0f s (%.1f min); best validation AUC %.3f (epoch %d)\n", n, secs, secs / 60, auc, best
        printf "onfh train end to end (loading, augmentation, training): %.1f images/s; loader wait %.1f s of %.1f s training (%.1f%%)\n", imgs / t, wait, t, 100 * wait / t
    }' "$log"
grep "held-out fold" "$run/bench_train.log" | sed 's/.*r0 /onfh /'
"$build/bench/bench_train" train mobilenet_v3_large auto 32 "$size" 7 | sed 's/^/pure compute: /'
