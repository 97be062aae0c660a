#!/bin/bash
# gpu_perf.sh [BUNDLE]: where a GPU training step's time goes, for tuning the cuda backend on a
# GPU node (after make gpu-bundle), at 224x224 batch 128:
#   1. mobilenet_v3_large and resnet50 profiled (ONFH_CUDA_PROFILE=1: every op waited for; time
#      per op name, then per convolution shape with its algorithms; warm-up steps excluded), in
#      exact fp32 and with TF32 tensor-core convolutions (ONFH_CUDA_MATH=tf32);
#   2. images/s unprofiled in fp32 and tf32 with the default choices (pointwise and depthwise
#      convolutions on conv_own.cu, the rest on cuDNN's heuristics, deterministic algorithms),
#      and in fp32 with every convolution on cuDNN (ONFH_CUDA_CONV=cudnn) for comparison;
#      GPU_PERF_SEARCH=1 adds timed search (ONFH_CUDA_CONV=find) and nondeterministic
#      algorithms (ONFH_CUDA_DETERMINISTIC=0).
# GPU_PERF_MODELS narrows the models. Logs go to $OUT (or ./gpu-perf-out), packed into
# gpu-perf.tgz there as well.
set -u
bundle=${1:-.gpu}
out=${OUT:-$PWD/gpu-perf-out}
mkdir -p "$out"
. "$(dirname "$0")/gpu_env.sh" "$bundle"
b="$bundle/bin/bench_train"
models=${GPU_PERF_MODELS:-mobilenet_v3_large resnet50 densenet201}
timed() { # timed MODEL MATH CONV DETERMINISTIC
    local line
    line=$(ONFH_CUDA_MATH=$2 ONFH_CUDA_CONV=$3 ONFH_CUDA_DETERMINISTIC=$4 timeout 90 "$b" train "$1" cuda 128 224 10 2>&1 | tee "$out/$1-$2-$3-$4.log" | grep '^onfh')
    echo "== $1 math=$2 conv=$3 deterministic=$4: ${line:-FAILED: $(tail -2 "$out/$1-$2-$3-$4.log")}"
}
for m in $models; do
    if [ "$m" != densenet201 ]; then
        for math in fp32 tf32; do # profiles
            ONFH_CUDA_MATH=$math ONFH_CUDA_PROFILE=1 timeout 90 "$b" train "$m" cuda 128 224 5 >"$out/profile_${math}_$m.log" 2>&1
            echo "== $m, $math, profiled (every op waited for, timed steps only):"
            grep -A12 '^cuda profile' "$out/profile_${math}_$m.log"
            grep -A12 '^convolutions by shape' "$out/profile_${math}_$m.log"
        done
    fi
    timed "$m" fp32 heuristic 1
    timed "$m" tf32 heuristic 1
    timed "$m" fp32 cudnn 1
    if [ "${GPU_PERF_SEARCH:-0}" = 1 ]; then
        for math in fp32 tf32; do
            timed "$m" $math find 1
            timed "$m" $math heuristic 0
        done
    fi
done
tar -C "$out" -czf /tmp/gpu-perf.tgz . && mv /tmp/gpu-perf.tgz "$out/" # one file to fetch
