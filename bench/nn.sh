#!/bin/bash
# nn.sh BUILD_DIR [THREADS]: mobilenet_v3_large at 224x224, training (batch 32, forward +
# backward + AdamW) and inference images/s with peak memory, onfh's backends beside PyTorch at
# its best (channels_last and NCHW, tuned malloc, threads = THREADS; ../shared/reference/peers.md).
set -eu
. "$(dirname "$0")/torch_peer.sh"
build=${1:?usage: bench/nn.sh BUILD_DIR [THREADS]}
threads=${2:-$(nproc)}
export OMP_NUM_THREADS=$threads
model=mobilenet_v3_large
echo "nn engine: single ops, ref (plain C) beside dnnl (oneDNN), $threads threads"
"$build/bench/bench_nn" || echo "bench_nn failed"
echo
echo "nn engine: $model at 224x224 on $threads threads"
for mode in train infer; do
    for be in dnnl; do
        "$build/bench/bench_train" "$mode" "$model" "$be" 32 224 || echo "onfh $mode $be: failed"
    done
    if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
        for fmt in channels_last nchw; do
            torch_peer bench/peer_torch_train.py "$mode" "$model" "$fmt" 32 224 2>/dev/null
        done
    else
        echo "peer: PyTorch not installed (tools/deps.sh bench installs python3-torch python3-torchvision)"
    fi
done
