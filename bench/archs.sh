#!/bin/bash
# archs.sh BUILD_DIR [THREADS] [MODEL...]: training throughput of each of the ten architectures
# at 224x224, batch 16 (forward + backward + AdamW on random data, 2 classes), onfh's dnnl
# backend beside PyTorch at its best (channels_last, the same thread count, tuned malloc and
# huge pages: torch_peer.sh, ../shared/reference/peers.md). The goal (issue 7): every
# architecture at least 1.0x PyTorch, the depthwise ones (mobilenet_v3_large/small,
# mobilenet_v2, efficientnet_b0, shufflenet_v2_x1_0) at least 1.25x.
#
# Why rounds: on a shared 2-core machine one run of either side moves by up to 8% (PyTorch's
# more than onfh's), so one pair of runs can put a ratio on either side of its goal. Each model
# runs ARCHS_ROUNDS times (default 3) per side, the two sides alternating and the order
# swapped each round (so neither always follows the other). Each run reports the median of its
# 5 timed steps; the table gives the median run of each side, the ratio of those medians, and
# the lowest and highest of the per-round ratios.
set -u
. "$(dirname "$0")/torch_peer.sh"
build=${1:?usage: bench/archs.sh BUILD_DIR [THREADS] [MODEL...]}
threads=${2:-$(nproc)}
shift $(($# >= 2 ? 2 : 1))
models=${*:-mobilenet_v3_large mobilenet_v3_small mobilenet_v2 resnet18 resnet50 densenet121 densenet201 efficientnet_b0 shufflenet_v2_x1_0 vgg16_bn}
rounds=${ARCHS_ROUNDS:-3}
export OMP_NUM_THREADS=$threads
steps=5
have_torch=0
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null && have_torch=1
echo "ten architectures, training at 224x224 batch 16, $threads threads, $rounds alternated rounds of a median of $steps steps each"

# field LINE KEY: the number before " images/s" (KEY=rate) or after "peak RSS " (KEY=rss)
field() {
    case $2 in
    rate) echo "$1" | sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p' ;;
    rss) echo "$1" | sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p' ;;
    esac
}
ours_run() { "$build/bench/bench_train" train "$1" dnnl 16 224 $steps 2>&1 | grep '^onfh'; }
peer_run() {
    torch_peer bench/peer_torch_train.py train "$1" channels_last 16 224 $steps 2>/dev/null
}
# median of the numbers given (the lower middle one of an even count)
median() { printf '%s\n' "$@" | sort -g | sed -n "$(((($# + 1) / 2)))p"; }

rows=()
for m in $models; do
    ours=() peer=() ratios=() ours_mem="" peer_mem=""
    for ((r = 1; r <= rounds; r++)); do
        for side in $([ $((r % 2)) = 1 ] && echo "ours peer" || echo "peer ours"); do
            if [ "$side" = ours ]; then
                o=$(ours_run "$m")
                echo "round $r: ${o:-onfh $m: failed}"
                v=$(field "$o" rate) && [ -n "$v" ] && ours+=("$v") && ours_mem=$(field "$o" rss)
            elif [ "$have_torch" = 1 ]; then
                p=$(peer_run "$m")
                echo "round $r: ${p:-peer: PyTorch $m: failed}"
                v=$(field "$p" rate) && [ -n "$v" ] && peer+=("$v") && peer_mem=$(field "$p" rss)
            fi
        done
        n=${#ours[@]}
        if [ "$n" -gt 0 ] && [ "${#peer[@]}" = "$n" ]; then
            ratios+=("$(echo "scale=3; ${ours[n - 1]} / ${peer[n - 1]}" | bc)")
        fi
    done
    o_med=$([ ${#ours[@]} -gt 0 ] && median "${ours[@]}")
    p_med=$([ ${#peer[@]} -gt 0 ] && median "${peer[@]}")
    ratio=$([ -n "$o_med" ] && [ -n "$p_med" ] && echo "scale=2; $o_med / $p_med" | bc)
    range=$([ ${#ratios[@]} -gt 0 ] && printf '%.2f-%.2f' "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" \
        "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)")
    rows+=("$(printf '%-20s %10s %10s %7s %11s %10s %10s' "$m" "${o_med:--}" "${p_med:--}" "${ratio:--}" "${range:--}" \
        "${ours_mem:--}" "${peer_mem:--}")")
done
echo
printf '%-20s %10s %10s %7s %11s %10s %10s\n' model "onfh img/s" "torch img/s" ratio "round range" "onfh MiB" "torch MiB"
printf '%s\n' "${rows[@]}"
[ "$have_torch" = 1 ] || echo "peer: PyTorch not installed (tools/deps.sh bench installs python3-torch python3-torchvision)"
