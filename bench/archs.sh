#!/bin/bash
# archs.sh BUILD_DIR [THREADS] [MODEL...]: training throughput of each of the ten architectures
# at 224x224, batch 16 (forward + backward + AdamW on random data, 2 classes), onfh's dnnl
# backend beside PyTorch at its best (channels_last, tuned malloc, the same thread count:
# ../shared/reference/peers.md), run one after the other per model so both see the same
# machine. Prints a table with the ratio; the goal (issue 7): every architecture at least 1.0x
# PyTorch, the depthwise ones (mobilenet_v3_large/small, mobilenet_v2, efficientnet_b0,
# shufflenet_v2_x1_0) at least 1.25x.
set -u
build=${1:?usage: bench/archs.sh BUILD_DIR [THREADS] [MODEL...]}
threads=${2:-$(nproc)}
shift $(($# >= 2 ? 2 : 1))
models=${*:-mobilenet_v3_large mobilenet_v3_small mobilenet_v2 resnet18 resnet50 densenet121 densenet201 efficientnet_b0 shufflenet_v2_x1_0 vgg16_bn}
export OMP_NUM_THREADS=$threads
steps=5
have_torch=0
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null && have_torch=1
echo "ten architectures, training at 224x224 batch 16, $threads threads, median of $steps steps"
rows=()
for m in $models; do
    o=$("$build/bench/bench_train" train "$m" dnnl 16 224 $steps 2>&1 | grep '^onfh')
    echo "${o:-onfh $m: failed}"
    ours=$(echo "$o" | sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p')
    ours_mem=$(echo "$o" | sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p')
    peer="" peer_mem=""
    if [ "$have_torch" = 1 ]; then
        p=$(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824 \
            /usr/bin/python3 bench/peer_torch_train.py train "$m" channels_last 16 224 $steps 2>/dev/null)
        echo "${p:-peer: PyTorch $m: failed}"
        peer=$(echo "$p" | sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p')
        peer_mem=$(echo "$p" | sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p')
    fi
    ratio=$([ -n "$ours" ] && [ -n "$peer" ] && echo "scale=2; $ours / $peer" | bc)
    rows+=("$(printf '%-20s %10s %10s %7s %10s %10s' "$m" "${ours:--}" "${peer:--}" "${ratio:--}" "${ours_mem:--}" "${peer_mem:--}")")
done
echo
printf '%-20s %10s %10s %7s %10s %10s\n' model "onfh img/s" "torch img/s" ratio "onfh MiB" "torch MiB"
printf '%s\n' "${rows[@]}"
[ "$have_torch" = 1 ] || echo "peer: PyTorch not installed (tools/deps.sh bench installs python3-torch python3-torchvision)"
