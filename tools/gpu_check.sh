#!/bin/bash
# gpu_check.sh [BUNDLE]: the GPU checks, for a node with the NVIDIA driver, CUDA and PyTorch and
# nothing else of ours (make gpu-check; the bundle comes from make gpu-bundle, default .gpu).
# Run from the repository root (the golden fixtures are read from tests/fixtures/nn). Steps:
#   1. every cuda op against the CPU reference (test_nn_backend), each op synchronised so a
#      fault is blamed on its op (ONFH_CUDA_SYNC=1); batch norm again on own kernels
#      (ONFH_CUDA_BN=cudnn; own kernels are the default), with one golden fixture; convolutions
#      all on cuDNN (ONFH_CUDA_CONV=cudnn; pointwise and depthwise ones are own by default);
#   1b. the LSTM of lib/nn/lstm on cuDNN against its host loop on ref (test_nn_lstm_device
#      cuda: outputs, logits, loss, every gradient, 1 and 2 layers, unequal lengths; evaluation
#      only with dropout, whose masks are cuDNN's; dropout runs), then the progression stage's
#      LSTM training (bench_progression, 10,000 patients, 2 epochs) on cuda and on ref: seconds
#      per epoch, and that it runs;
#   1c. the NCCL transport of lib/nn/comm on one GPU without MPI (test_nn_nccl: a one-rank
#      communicator; reductions ordered after the compute stream's work, buckets, join, sync);
#   2. the ten architectures' golden fixtures (PyTorch float64 logits, gradients, 5 AdamW steps)
#      on cuda (test_nn_model golden_cuda_MODEL, one program each);
#   3. training images/s and peak GPU memory at 224x224: mobilenet_v3_large batch 128 for 50
#      steps, resnet50 and densenet201 batch 128 for 20, beside PyTorch on the same GPU (fp32
#      with TF32 off, bf16 autocast, and torch.compile for mobilenet_v3_large).
# Figures and logs go to $OUT (or ./gpu-check-out); a summary table ends the output. Exit status:
# the number of failed steps (PyTorch's own failures are reported, not counted).
set -u
bundle=${1:-.gpu}
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
. "$(dirname "$0")/gpu_env.sh" "$bundle"
export ONFH_ROOT=$PWD CMOCKA_MESSAGE_OUTPUT=TAP
failed=0
summary=()
note() { summary+=("$1"); echo "== $1"; }

{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
    "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} 2>&1 | tee "$out/machine.txt"
missing=$(for b in "$bundle"/bin/*; do ldd "$b" | grep "not found"; done | sort -u)
if [ -n "$missing" ]; then
    echo "gpu_check: libraries not found:"; echo "$missing"
    exit 1
fi

step() { # step NAME LOG CMD...: runs a test program, counts TAP failures
    local name=$1 log=$2
    shift 2
    local t0=$SECONDS
    timeout 120 "$@" >"$log" 2>&1
    local rc=$? nok
    nok=$(grep -c '^not ok' "$log")
    if grep -q 'SKIP' "$log" || ! grep -q '^ok' "$log"; then # a skip or no case run: no GPU
        rc=${rc/#0/77}
    fi
    if [ "$rc" -ne 0 ] || [ "$nok" -ne 0 ]; then
        failed=$((failed + 1))
        note "$name: FAILED (exit $rc, $nok failed cases, $((SECONDS - t0)) s): $(grep -m3 -E '^not ok|SKIP|error|Error' "$log" | tr '\n' ' ')"
        grep -E '^not ok|^# ' "$log" | tail -25
    else
        note "$name: passed ($(grep -c '^ok' "$log") cases, $((SECONDS - t0)) s)"
    fi
}

ONFH_CUDA_SYNC=1 step "op tests, cuda vs ref" "$out/ops.log" "$bundle/bin/test_nn_backend" cuda
if grep -q 'Aborted\|exited\|error in' "$out/ops.log" || ! grep -q '^1\.\.' "$out/ops.log"; then
    # a fault stops the program: run each case alone, so one fault hides no other result
    for t in test_layout test_conv test_batchnorm test_activations test_pooling test_adaptive_pool \
        test_linear test_add_chanmul test_chanmul_large test_concat_split test_shuffle \
        test_dropout test_xent test_optimizers; do
        ONFH_CUDA_SYNC=1 ONFH_TEST_ONLY=$t timeout 60 "$bundle/bin/test_nn_backend" cuda >"$out/op_$t.log" 2>&1
        echo "  $t: exit $? $(grep -m2 -E '^not ok|error in|^ok' "$out/op_$t.log" | tr '\n' ' ')"
    done | tee "$out/ops_each.txt"
fi
# convolutions all on cuDNN (ONFH_CUDA_CONV=cudnn): the pointwise and depthwise shapes that
# conv_own.cu takes by default
ONFH_CUDA_SYNC=1 ONFH_CUDA_CONV=cudnn ONFH_TEST_ONLY=test_conv step "convolutions all on cuDNN (ONFH_CUDA_CONV=cudnn) vs ref" "$out/ops_conv_cudnn.log" "$bundle/bin/test_nn_backend" cuda
# batch norm on cuDNN's kernels (ONFH_CUDA_BN=cudnn, cu_core.cuh): the op cases that use it
ONFH_CUDA_SYNC=1 ONFH_CUDA_BN=cudnn ONFH_TEST_ONLY=test_batchnorm step "batch norm on cuDNN (ONFH_CUDA_BN=cudnn) vs ref" "$out/ops_bn_cudnn.log" "$bundle/bin/test_nn_backend" cuda
ONFH_CUDA_BN=cudnn ONFH_TEST_ONLY=golden_cuda_resnet18 step "golden fixture resnet18 with cuDNN batch norm" "$out/golden_bn_cudnn.log" "$bundle/bin/test_nn_model"

# the LSTM on cuDNN (lstm_cudnn.cu), and the progression stage's LSTM training on cuda and ref
ONFH_CUDA_SYNC=1 step "LSTM on cuDNN vs the host loop" "$out/lstm.log" "$bundle/bin/test_nn_lstm_device" cuda
if grep -q 'Aborted\|exited\|error in' "$out/lstm.log" || ! grep -q '^1\.\.' "$out/lstm.log"; then
    for t in test_one_layer test_two_layers test_two_layers_dropout test_dropout_runs test_sgd_steps; do
        ONFH_CUDA_SYNC=1 ONFH_TEST_ONLY=$t timeout 60 "$bundle/bin/test_nn_lstm_device" cuda >"$out/lstm_$t.log" 2>&1
        echo "  $t: exit $? $(grep -m2 -E '^not ok|error in|^ok' "$out/lstm_$t.log" | tr '\n' ' ')"
    done | tee "$out/lstm_each.txt"
fi
for b in cuda ref; do
    line=$(timeout 120 "$bundle/bin/bench_progression" 10000 2 16 $b 2>&1 | tee "$out/progression_$b.log" | tail -1)
    case $line in
    "10000 "*) note "progression LSTM training on $b (patients visits inputs hidden batch backend threads s/epoch): $line" ;;
    *) failed=$((failed + 1)) && note "progression LSTM training on $b: FAILED: $(tail -2 "$out/progression_$b.log" | tr '\n' ' ')" ;;
    esac
done

# NCCL (nccl.cu): a communicator of one rank, the plumbing that several GPUs share
step "NCCL transport, one rank on one GPU" "$out/nccl.log" "$bundle/bin/test_nn_nccl"

# one program per architecture, so a fault in one hides no other
for m in mobilenet_v3_large mobilenet_v3_small mobilenet_v2 resnet18 resnet50 densenet121 \
    densenet201 efficientnet_b0 shufflenet_v2_x1_0 vgg16_bn; do
    ONFH_TEST_ONLY="golden_cuda_$m" step "golden fixture $m on cuda" "$out/golden_$m.log" "$bundle/bin/test_nn_model"
    grep -E "worst error|KNOWN" "$out/golden_$m.log" | sed 's/^/  /'
done

bench() { # bench MODEL STEPS
    local line
    line=$(timeout 120 "$bundle/bin/bench_train" train "$1" cuda 128 224 "$2" 2>&1 | tee "$out/bench_$1.log" | grep '^onfh') ||
        { failed=$((failed + 1)); line="onfh train $1 cuda: FAILED: $(tail -2 "$out/bench_$1.log" | tr '\n' ' ')"; }
    note "$line"
}
peer() { # peer MODEL MODE STEPS
    local line
    line=$(timeout 150 "$py" bench/peer_torch_gpu.py "$1" "$2" 128 224 "$3" 2>>"$out/peer.err" | tee -a "$out/peer.log" | grep '^peer') ||
        line="peer: PyTorch $2 $1: failed or timed out (see peer.err)"
    note "$line"
}
peers=${GPU_CHECK_PEERS:-1} # 0: onfh's figures only (a rerun after a fix)
bench mobilenet_v3_large 50
if [ "$peers" = 1 ]; then
    peer mobilenet_v3_large fp32 10
    peer mobilenet_v3_large bf16 10
fi
for m in resnet50 densenet201; do
    bench $m 20
    if [ "$peers" = 1 ]; then
        peer $m fp32 10
        peer $m bf16 10
    fi
done
[ "$peers" = 1 ] && peer mobilenet_v3_large compile 10

echo
echo "gpu_check summary ($(head -2 "$out/machine.txt" | tail -1)):" | tee "$out/summary.txt"
printf '%s\n' "${summary[@]}" | tee -a "$out/summary.txt"
echo "failed steps: $failed" | tee -a "$out/summary.txt"
tar -C "$out" -czf /tmp/gpu-check.tgz . && mv /tmp/gpu-check.tgz "$out/" # one file to fetch
exit "$failed"
