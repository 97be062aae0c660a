#!/bin/bash
# gpu_perf.sh [BUNDLE]: where a GPU training step's time goes, for tuning the cuda backend on a
# GPU node (after make gpu-bundle): mobilenet_v3_large and resnet50 at 224x224 batch 128 under
# the backend's run-time choices (cu_core.cuh): cuDNN's heuristics or timed search (find), with
# and without deterministic algorithms, cuDNN's or own batch norm (ONFH_CUDA_BN), and profiled
# runs (every op waited for; time per op name). Logs go to $OUT (or ./gpu-perf-out).
set -u
bundle=${1:-.gpu}
out=${OUT:-$PWD/gpu-perf-out}
mkdir -p "$out"
. "$(dirname "$0")/gpu_env.sh" "$bundle"
b="$bundle/bin/bench_train"
for m in mobilenet_v3_large resnet50; do
    ONFH_CUDA_PROFILE=1 timeout 60 "$b" train $m cuda 128 224 6 >"$out/profile_$m.log" 2>&1
    echo "== $m, heuristics, deterministic, profiled (every op waited for):"
    head -25 "$out/profile_$m.log"
    ONFH_CUDA_BN=own ONFH_CUDA_PROFILE=1 timeout 60 "$b" train $m cuda 128 224 6 >"$out/profile_bn_own_$m.log" 2>&1
    echo "== $m, own batch norm (ONFH_CUDA_BN=own), profiled:"
    head -8 "$out/profile_bn_own_$m.log"
    for v in "heuristic 1 cudnn" "heuristic 0 cudnn" "find 1 cudnn" "find 0 cudnn" "heuristic 1 own"; do
        set -- $v
        line=$(ONFH_CUDA_CONV=$1 ONFH_CUDA_DETERMINISTIC=$2 ONFH_CUDA_BN=$3 timeout 90 "$b" train $m cuda 128 224 10 2>&1 | tee "$out/$m-$1-$2-$3.log" | grep '^onfh')
        echo "== $m conv=$1 deterministic=$2 bn=$3: ${line:-FAILED: $(tail -2 "$out/$m-$1-$2-$3.log")}"
    done
done
