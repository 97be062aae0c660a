#!/usr/bin/python3
"""peer_torch_train.py MODE MODEL FORMAT [BATCH] [SIZE] [STEPS]: PyTorch's figure for
bench/bench_train.c, run at its best (../shared/reference/peers.md): torch.set_num_threads(N)
with N = OMP_NUM_THREADS (the cores onfh uses), FORMAT channels_last or nchw, and run by
bench/nn.sh under the tuned-malloc environment. MODE train: forward + backward + AdamW
(lr 1e-4, wd 0.01) on random data, 2 classes; infer: eval-mode forward under torch.no_grad().
2 warm-up steps, STEPS (default 7) timed; prints the median images/s with min and max, and the
peak resident set."""

import os
import resource
import sys
import time

import torch
import torchvision


def main():
    mode, model_id, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 224
    steps = int(sys.argv[6]) if len(sys.argv) > 6 else 7
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_id)(num_classes=2)
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=mf)
    x = torch.randn(batch, 3, size, size).to(memory_format=mf)
    y = torch.arange(batch) % 2
    times = []
    if mode == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        for s in range(steps + 2):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if s >= 2:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        with torch.no_grad():
            for s in range(steps + 2):
                t0 = time.perf_counter()
                model(x)
                if s >= 2:
                    times.append(time.perf_counter() - t0)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peer: PyTorch {torch.__version__} {mode} {model_id} {fmt} batch {batch} at {size}, "
          f"{threads} threads: {batch / times[len(times) // 2]:.1f} images/s (median of {steps}; "
          f"min {batch / times[-1]:.1f}, max {batch / times[0]:.1f}); peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
