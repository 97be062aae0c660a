#!/bin/bash
# progression.sh BUILD_DIR [PATIENTS [EPOCHS]]: the progression stage's LSTM training, seconds
# per epoch on PATIENTS synthetic patients (default 10,000; 3 to 5 visits, 13 inputs, hidden 16,
# batches of 64, AdamW), onfh (bench_progression: lib/nn/lstm on dnnl and on ref) beside
# torch.nn.LSTM (peer_torch_lstm.py) on the same CPU threads. Goal (issue 12): onfh at least 1.5x
# as fast as torch.
# The load average is printed: on a shared machine both sides slow.
set -eu
build=${1:?usage: bench/progression.sh BUILD_DIR [PATIENTS [EPOCHS]]}
patients=${2:-10000}
epochs=${3:-2}
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $threads thread(s)"
for be in dnnl ref; do
    read -r n t in h b name _ secs < <("$build/bench/bench_progression" "$patients" "$epochs" 16 "$be") || continue
    printf 'onfh LSTM (%s): %d patients x %d visits x %d inputs, hidden %d, batch %d: %.3f s per epoch\n' \
        "$name" "$n" "$t" "$in" "$h" "$b" "$secs"
    [ "$be" = dnnl ] && onfh_s=$secs
done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    read -r psecs ver _ < <(/usr/bin/python3 bench/peer_torch_lstm.py "$patients" "$epochs" 16 "$threads")
    printf 'peer: torch %s nn.LSTM, same shapes, %d thread(s): %.3f s per epoch; onfh (dnnl) %.2fx as fast (goal: at least 1.5x)\n' \
        "$ver" "$threads" "$psecs" "$(echo "$psecs / ${onfh_s:-1}" | bc -l)"
else
    echo "peer: PyTorch missing (tools/deps.sh bench installs it)"
fi
