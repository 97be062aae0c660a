#!/bin/bash
# gpu_check.sh [BUNDLE]: the GPU checks, for a node with the NVIDIA driver, CUDA and PyTorch and
# nothing else of ours (make gpu-check; the bundle comes from make gpu-bundle, default .gpu).
# Run from the repository root (the golden fixtures are read from tests/fixtures/nn). Steps:
#   1. every cuda op against the CPU reference (test_nn_backend), each op synchronised so a
#      fault is blamed on its op (ONFH_CUDA_SYNC=1);
#   2. the ten architectures' golden fixtures (PyTorch float64 logits, gradients, 5 AdamW steps)
#      on cuda (test_nn_model golden_cuda_*);
#   3. training images/s and peak GPU memory at 224x224: mobilenet_v3_large batch 128 for 50
#      steps, resnet50 and densenet201 batch 128 for 20, beside PyTorch on the same GPU (fp32
#      with TF32 off, bf16 autocast, and torch.compile for mobilenet_v3_large).
# Figures and logs go to $OUT (or ./gpu-check-out); a summary table ends the output. Exit status:
# the number of failed steps (PyTorch's own failures are reported, not counted).
set -u
bundle=${1:-.gpu}
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
py=$(command -v python3)
# The CUDA libraries onfh links (cudart, cuBLAS, cuDNN, NCCL), taken from PyTorch's install.
libdirs=$("$py" - <<'PY' 2>/dev/null
import glob, os, site
want = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudnn.so.9", "libnccl.so.2")
roots = site.getsitepackages() + ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
dirs = []
for w in want:
    for r in roots:
        hits = glob.glob(os.path.join(r, "**", w), recursive=True)
        if hits:
            d = os.path.dirname(hits[0])
            if d not in dirs:
                dirs.append(d)
            break
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="$PWD/$bundle/lib:$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
    timeout 240 "$@" >"$log" 2>&1
    local rc=$? nok
    nok=$(grep -c '^not ok' "$log")
    if [ "$rc" -ne 0 ] || [ "$nok" -ne 0 ]; then
        failed=$((failed + 1))
        note "$name: FAILED (exit $rc, $nok failed cases, $((SECONDS - t0)) s): $(grep -m3 -E '^not ok|error|Error' "$log" | tr '\n' ' ')"
        grep -E '^not ok|^# ' "$log" | tail -25
    else
        note "$name: passed ($(grep -c '^ok' "$log") cases, $((SECONDS - t0)) s)"
    fi
}

ONFH_CUDA_SYNC=1 ONFH_TEST_BACKEND=cuda step "op tests, cuda vs ref" "$out/ops.log" "$bundle/bin/test_nn_backend" cuda
ONFH_TEST_ONLY='golden_cuda_*' step "golden fixtures, ten architectures on cuda" "$out/golden.log" "$bundle/bin/test_nn_model"
grep -E "worst error|KNOWN" "$out/golden.log" | sed 's/^/  /'

bench() { # bench MODEL STEPS
    local line
    line=$(timeout 120 "$bundle/bin/bench_train" train "$1" cuda 128 224 "$2" 2>&1 | tee -a "$out/bench.log" | grep '^onfh') ||
        { failed=$((failed + 1)); line="onfh train $1 cuda: FAILED: $(tail -2 "$out/bench.log" | tr '\n' ' ')"; }
    note "$line"
}
peer() { # peer MODEL MODE STEPS
    local line
    line=$(timeout 150 "$py" bench/peer_torch_gpu.py "$1" "$2" 128 224 "$3" 2>>"$out/peer.err" | tee -a "$out/peer.log" | grep '^peer') ||
        line="peer: PyTorch $2 $1: failed or timed out (see peer.err)"
    note "$line"
}
bench mobilenet_v3_large 50
peer mobilenet_v3_large fp32 20
peer mobilenet_v3_large bf16 20
for m in resnet50 densenet201; do
    bench $m 20
    peer $m fp32 20
    peer $m bf16 20
done
peer mobilenet_v3_large compile 20

echo
echo "gpu_check summary ($(head -2 "$out/machine.txt" | tail -1)):" | tee "$out/summary.txt"
printf '%s\n' "${summary[@]}" | tee -a "$out/summary.txt"
echo "failed steps: $failed" | tee -a "$out/summary.txt"
exit "$failed"
