#!/bin/bash
# train_dp.sh BUILD_DIR: data-parallel scaling of `onfh train` on the default cohort at the
# README row's sizes (128x128 slices, 5 folds, fold 0, global batch train.batch_size, every rank
# on the one model: train.ranks_per_model 0; its own run directory) for mobilenet_v3_large
# and resnet50 (train.archs set on the command line): 1 rank with 2 threads against 2 ranks
# with 1 thread each, on the same 2 cores.
#
# Steady-state figures come from the difference between runs of 2 and 2 + K steps (graph
# building, slice caching and the first steps cancel out):
#   images/s       K x batch over the difference in wall time;
#   efficiency     the 2-rank rate over the 1-rank rate (the same cores either way: 1.0 means
#                  data parallelism costs nothing beyond the threads it replaces; goal 0.9);
#   wait fraction  time blocked after backward waiting for the buckets' all-reduce, over the
#                  step time (both from the stage's log, per rank, averaged over the ranks);
#   overlap        share of the all-reduce hidden behind backward: 1 - the wait per step over
#                  what one reduction takes with no overlap (timed by the stage before step 1);
#   MPI share      time inside MPI calls during backward (starting and progressing buckets:
#                  where a host transport does the hidden part of the work), over step time.
# ONFH_BENCH_DP_STEPS="K1 K2" sets K per architecture (default 20 and 10: a resnet50 step takes
# several times a mobilenet_v3_large one, so either architecture's 5 runs take a minute or two
# on 2 cores). ONFH_BENCH_DP_BUCKET_MIB=M sets train.bucket_mib (default: the config's; with
# 25 MiB mobilenet_v3_large's 16 MiB of gradients are one bucket, which starts only when backward
# ends: overlap 0 by construction).
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
build=${1:?usage: bench/train_dp.sh BUILD_DIR}
cfg=configs/default.yaml
run=runs/bench-dp
sets=(--run "$run" --set ingest.grid_size=128 --set split.folds=5 --set train.ranks_per_model=0)
archs=(mobilenet_v3_large resnet50)
read -r -a steps <<<"${ONFH_BENCH_DP_STEPS:-20 10}"
bucket=()
[ -z "${ONFH_BENCH_DP_BUCKET_MIB:-}" ] || bucket=(--set "train.bucket_mib=$ONFH_BENCH_DP_BUCKET_MIB")
if [ ! -s "$run/splits.json" ]; then
    for stage in synth ingest split; do
        rc=0
        mpirun -q -np 2 "$build/onfh" "$stage" "$cfg" "${sets[@]}" >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || { echo "bench/train_dp.sh: onfh $stage failed ($rc)"; exit 1; }
    done
fi
batch=$("$build/onfh" config get "$cfg" train.batch_size)
bucket_mib=${ONFH_BENCH_DP_BUCKET_MIB:-$("$build/onfh" config get "$cfg" train.bucket_mib)}
size=128

# run ARCH NP THREADS STEPS: seconds of a run of STEPS steps on NP ranks of THREADS threads;
# its log in $run/bench_dp_ARCH_NP_STEPS.log
timed() {
    local arch=$1 np=$2 threads=$3 n=$4 start log
    log=$run/bench_dp_${arch}_${np}_$n.log
    start=$(date +%s.%N)
    # each rank bound to `threads` cores: mpirun's default binds a lone rank to ONE core, where
    # its 2 OpenMP threads would share it (the 1-rank figure then halves)
    OMP_NUM_THREADS=$threads mpirun -q -np "$np" --map-by "slot:PE=$threads" --bind-to core \
        -x OMP_NUM_THREADS "$build/onfh" train "$cfg" "${sets[@]}" --fold 0 --force --max-steps "$n" \
        --set "train.archs=[$arch]" --set train.epochs=1000 "${bucket[@]}" >"$log" 2>&1 || { tail -5 "$log"; exit 1; }
    echo "$(date +%s.%N) - $start" | bc
}
# the all-reduce line's totals are per rank, averaged: "waited W s of S s of steps", "with P s
# in MPI calls", "no overlap takes A s"
totals() {
    sed -n 's/.* waited \([0-9.]*\) s of \([0-9.]*\) s of steps .* with \([0-9.]*\) s in MPI calls; a reduction with no overlap takes \([0-9.]*\) s.*/\1 \2 \3 \4/p' "$1" | tail -1
}

printf 'onfh train data-parallel, %s fold 0 at %s, global batch %s, buckets of %s MiB, steady steps:' \
    "$cfg" "$size" "$batch" "$bucket_mib"
for i in "${!archs[@]}"; do printf ' %s %s' "${archs[$i]}" "${steps[$i]:-${steps[0]}}"; done
echo
printf '%-20s %-20s %9s %10s %8s %9s %10s\n' architecture layout images/s efficiency "wait" overlap "MPI share"
for i in "${!archs[@]}"; do
    arch=${archs[$i]} k=${steps[$i]:-${steps[0]}}
    declare -A rate=()
    timed "$arch" 2 1 1 >/dev/null # untimed: the cohort's pages and the first run's costs
    for layout in "1 2" "2 1"; do
        read -r np threads <<<"$layout"
        a=$(timed "$arch" "$np" "$threads" 2)
        b=$(timed "$arch" "$np" "$threads" $((2 + k)))
        rate[$np]=$(echo "$k * $batch / ($b - $a)" | bc -l)
    done
    printf '%-20s %-20s %9.1f %10s %8s %9s %10s\n' "$arch" "1 rank x 2 threads" "${rate[1]}" - - - -
    read -r wa sa pa _ <<<"$(totals "$run/bench_dp_${arch}_2_2.log")"
    read -r wb sb pb ab <<<"$(totals "$run/bench_dp_${arch}_2_$((2 + k)).log")"
    if [ -z "${wb:-}" ] || [ -z "${wa:-}" ]; then
        echo "bench/train_dp.sh: no all-reduce line in $run/bench_dp_${arch}_2_*.log"
        exit 1
    fi
    # over the K steady steps: the differences of the two runs' totals
    read -r wait overlap share <<<"$(echo "$wa $sa $pa $wb $sb $pb $ab $k" | awk '{
        ds = $5 - $2; w = ($4 - $1) / ds; o = $7 > 0 ? 1 - ($4 - $1) / $8 / $7 : 0
        o = o < 0 ? 0 : o > 1 ? 1 : o
        printf "%.3f %.2f %.3f", w, o, ($6 - $3) / ds }')"
    printf '%-20s %-20s %9.1f %10.2f %8s %9s %10s\n' "$arch" "2 ranks x 1 thread" "${rate[2]}" \
        "$(echo "${rate[2]} / ${rate[1]}" | bc -l)" "$wait" "$overlap" "$share"
    buckets=$(sed -n 's/.*all-reduced over 2 ranks in \([0-9]*\) bucket(s) of \([0-9.]*\) MiB.*/\1 buckets, \2 MiB/p' \
        "$run/bench_dp_${arch}_2_$((2 + k)).log" | tail -1)
    printf '  %s: %s of gradients; one reduction with no overlap %.1f ms\n' "$arch" "$buckets" \
        "$(echo "$ab * 1000" | bc -l)"
    unset rate
done
echo "efficiency: 2-rank images/s over 1-rank images/s on the same 2 cores (goal: at least 0.9)"
