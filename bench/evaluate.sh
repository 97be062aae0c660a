#!/bin/bash
# evaluate.sh BUILD_DIR [RESAMPLES]: the statistics of `onfh evaluate` at the paper's size (10
# models x 900 slices of 30 patients, 9999 patient resamples) beside scipy, two like-for-like
# pairs of rows on the same predictions (bench_evaluate --write; both sides print model 0's
# pooled ROC AUC, which must agree):
#   all:      onfh's whole analysis (bench_evaluate: 10 metrics with BCa + percentile CIs,
#             clustered DeLong + exact McNemar + Holm for the 45 pairs) on every core, beside
#             peer_evaluate.py all: the same work with scipy.stats.bootstrap's BCa and
#             percentile on the same design of stratified patient resamples, the statistic
#             vectorised in numpy, 1 process.
#   ROC AUC:  bench_evaluate --auc-only (each model's ROC AUC with its BCa CI, DeLong for the
#             45 pairs) beside peer_evaluate.py auc, the usual script (scipy.stats.bootstrap BCa
#             over patients per model, sklearn's roc_auc_score, numpy DeLong).
# The issue's goal: under 2 s and at least 50x scipy.
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
build=${1:?usage: bench/evaluate.sh BUILD_DIR [RESAMPLES]}
resamples=${2:-9999}
cores=$(nproc)
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
echo "evaluate statistics, $resamples patient resamples, load average $(cut -d' ' -f1-3 /proc/loadavg)"
peer=0
/usr/bin/python3 -c 'import scipy, sklearn' 2>/dev/null && peer=1
for mode in all auc; do
    flag= && [ "$mode" = auc ] && flag=--auc-only
    read -r models slices patients _ ranks secs auc < <(mpirun -q -np "$cores" "$build/bench/bench_evaluate" $flag --write "$tmp/data.txt" "$resamples")
    if [ "$mode" = all ]; then
        what="10 metrics with BCa + percentile CIs, clustered DeLong + McNemar + Holm for $((models * (models - 1) / 2)) pairs"
        pwhat="the same work: scipy.stats.bootstrap BCa + percentile on stratified patient resamples, numpy-vectorised metrics, clustered DeLong, McNemar, Holm"
    else
        what="ROC AUC alone with its BCa CI, clustered DeLong for $((models * (models - 1) / 2)) pairs"
        pwhat="ROC AUC alone: scipy.stats.bootstrap BCa over patients, roc_auc_score per resample, numpy DeLong"
    fi
    printf 'onfh %-4s %d models x %d slices (%d patients), %s, %d ranks: %.2f s\n' "$mode" "$models" "$slices" "$patients" "$what" "$ranks" "$secs"
    [ "$peer" = 1 ] || continue
    read -r _ _ _ _ psecs pauc < <(/usr/bin/python3 bench/peer_evaluate.py "$mode" "$tmp/data.txt" "$resamples")
    [ "$pauc" = "$auc" ] || { echo "evaluate.sh: onfh and the peer disagree on model 0's ROC AUC ($auc, $pauc): not the same data" >&2; exit 1; }
    printf 'peer %-4s %s, 1 process: %.1f s (onfh %.0fx faster)\n' "$mode" "$pwhat" "$psecs" "$(echo "$psecs / $secs" | bc -l)"
done
