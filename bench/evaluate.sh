#!/bin/bash
# evaluate.sh BUILD_DIR: the statistics of `onfh evaluate` at the paper's size (bench_evaluate:
# 10 models x 900 slices of 30 patients, 9999 patient resamples, 10 metrics with BCa and
# percentile CIs, DeLong + McNemar + Holm for the 45 pairs) on every core, beside
# peer_evaluate.py doing the ROC AUC part alone with scipy.stats.bootstrap (BCa) and numpy
# DeLong, in one process.
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
build=${1:?usage: bench/evaluate.sh BUILD_DIR}
cores=$(nproc)
read -r models slices patients resamples ranks secs _ < <(mpirun -q -np "$cores" "$build/bench/bench_evaluate" 9999)
printf 'onfh evaluate statistics: %d models x %d slices (%d patients) x %d resamples, 10 metrics with BCa + percentile CIs, DeLong + McNemar for %d pairs, on %d ranks: %.2f s\n' \
    "$models" "$slices" "$patients" "$resamples" $((models * (models - 1) / 2)) "$ranks" "$secs"
if /usr/bin/python3 -c 'import scipy, sklearn' 2>/dev/null; then
    read -r _ _ _ _ psecs < <(/usr/bin/python3 bench/peer_evaluate.py 9999)
    printf 'peer: scipy.stats.bootstrap (BCa, roc_auc_score per patient resample) + numpy DeLong, ROC AUC only, 1 process: %.1f s (onfh %.0fx faster)\n' \
        "$psecs" "$(echo "$psecs / $secs" | bc -l)"
fi
