#!/usr/bin/env python3
"""peer_torch_gpu.py MODEL MODE [BATCH] [SIZE] [STEPS]: PyTorch's GPU training figure beside
bench_train on the cuda backend (tools/gpu_check.sh), run the way its best users run it:
cudnn.benchmark on, channels_last, and MODE
  fp32     eager float32 with TF32 off (the arithmetic onfh's fp32 mode does),
  bf16     eager, bf16 autocast (tensor cores) with float32 master weights,
  compile  bf16 autocast under torch.compile (default mode).
Forward + backward + AdamW (lr 1e-4, wd 0.01) on random data, 2 classes. Warm-up steps (5;
compile's first call includes its compilation, reported apart), then STEPS (default 20) timed
with CUDA events; prints the median images/s with min and max, and the peak GPU memory
(torch.cuda.max_memory_allocated)."""

import sys
import time

import torch
import torchvision


def main():
    model_id, mode = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 224
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_id)(num_classes=2)
    model = model.to(dev, memory_format=torch.channels_last).train()
    x = torch.randn(batch, 3, size, size, device=dev).to(memory_format=torch.channels_last)
    y = torch.arange(batch, device=dev) % 2
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step(m):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode != "fp32"):
            loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()

    run = torch.compile(model) if mode == "compile" else model
    t0 = time.perf_counter()
    step(run)
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    for _ in range(4):
        step(run)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step(run)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    peak = torch.cuda.max_memory_allocated() / 2**20
    extra = f"; first step (compilation) {first:.1f} s" if mode == "compile" else ""
    print(f"peer: PyTorch {torch.__version__} {mode} train {model_id} batch {batch} at {size} on "
          f"{torch.cuda.get_device_name()}: {batch / times[len(times) // 2]:.1f} images/s "
          f"(median of {steps}; min {batch / times[-1]:.1f}, max {batch / times[0]:.1f}); "
          f"peak GPU memory {peak:.0f} MiB{extra}", flush=True)


if __name__ == "__main__":
    main()
