#!/bin/bash
# train_dp.sh BUILD_DIR: data-parallel scaling of `onfh train` on the default config
# (mobilenet_v3_large at train.image_size / the cohort's grid, global batch train.batch_size,
# fold 0): 1 rank with 2 threads against 2 ranks with 1 thread each, on the same 2 cores.
# Steady-state images/s come from the difference between runs of 2 and 2 + K steps (graph
# building, slice caching and the first steps cancel out); efficiency is the 2-rank rate over
# the 1-rank rate (the same cores either way: 1.0 means data parallelism costs nothing beyond
# the threads it replaces). The 2-rank log gives the time spent waiting for all-reduces.
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
build=${1:?usage: bench/train_dp.sh BUILD_DIR}
cfg=configs/default.yaml
run=runs/default
K=${ONFH_BENCH_DP_STEPS:-20}
if [ ! -s "$run/splits.json" ]; then
    for stage in synth ingest split; do
        rc=0
        mpirun -q -np 2 "$build/onfh" "$stage" "$cfg" >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || { echo "bench/train_dp.sh: onfh $stage failed ($rc)"; exit 1; }
    done
fi
batch=$("$build/onfh" config show "$cfg" 2>/dev/null | grep -o 'batch_size: *[0-9]*' | grep -o '[0-9]*$' || echo 32)
# seconds of a run of N steps on NP ranks with T threads each
timed() {
    local np=$1 threads=$2 steps=$3 start
    start=$(date +%s.%N)
    # each rank bound to `threads` cores: mpirun's default binds a lone rank to ONE core, where
    # its 2 OpenMP threads would share it (the 1-rank figure then halves)
    OMP_NUM_THREADS=$threads mpirun -q -np "$np" --map-by "slot:PE=$threads" --bind-to core \
        -x OMP_NUM_THREADS "$build/onfh" train "$cfg" --fold 0 --force \
        --max-steps "$steps" --set train.epochs=1000 >"$run/bench_dp_$np.log" 2>&1 || { tail -5 "$run/bench_dp_$np.log"; exit 1; }
    echo "$(date +%s.%N) - $start" | bc
}
rate() { # images/s over the K steps beyond the first 2
    local np=$1 threads=$2 a b
    a=$(timed "$np" "$threads" 2)
    b=$(timed "$np" "$threads" $((2 + K)))
    echo "$K * $batch / ($b - $a)" | bc -l
}
r1=$(rate 1 2)
r2=$(rate 2 1)
wait_line=$(grep -o 'waited [0-9.]* s of [0-9.]* s in backward over [0-9]* steps' "$run/bench_dp_2.log" || echo "")
printf 'onfh train data-parallel, default config (mobilenet_v3_large, batch %d), %d steady steps:\n' "$batch" "$K"
printf '  1 rank x 2 threads: %.1f images/s\n  2 ranks x 1 thread: %.1f images/s\n  scaling efficiency (2 ranks / 1 rank on the same 2 cores): %.2f\n' \
    "$r1" "$r2" "$(echo "$r2 / $r1" | bc -l)"
[ -n "$wait_line" ] && echo "  2 ranks, all-reduce: $wait_line (the last run of $((2 + K)) steps)"
