#!/usr/bin/env python3
"""scaling_model.py ONFH [--measured FILE] [--profiles DIR] [--alpha-us A] [--gbps B] [--doc MD]

The cost model of docs/scaling.md: data-parallel efficiency of the ten architectures at 8, 64
and 512 GPUs, from
  - gradient bytes: `ONFH model list` (parameters for 2 classes, float32);
  - when each gradient is final during backward: DIR/<arch>.txt, the output of
    `ONFH model profile ARCH` (tools/scaling_profiles.sh writes them);
  - step times: FILE (docs/scaling/measured.tsv), measured images/s with their commands;
  - the fabric: ring all-reduce over B Gb/s per GPU with a per-step latency of A microseconds.
Prints the Markdown tables docs/scaling.md holds, between its marker lines (--doc MD: writes
them there instead). Standard library only (make test runs it).

The model, per step of one GPU (per-GPU batch fixed: weak scaling):
  T(p, S) = 2 (p-1)/p * S / B + 2 (p-1) * alpha     ring all-reduce of S bytes on p GPUs
  buckets are cut from the end of the gradient buffer, whole nodes' tensors of at least the
  bucket size, as lib/nn/comm.c does; bucket k is ready when backward has produced its last
  gradient (the profile, as a fraction of backward, times the step's backward time) and the
  reductions run one after another on the fabric:
      start_k = max(ready_k, end_(k-1)),  end_k = start_k + T(p, S_k)
  exposed = max(0, end_last - backward); efficiency = step / (step + exposed).
"""
import argparse
import math
import os
import statistics
import subprocess
import sys

P = (8, 64, 512)
BUCKETS_MIB = (1, 2, 4, 8, 16, 25, 32, 64, 128, math.inf)  # inf: one bucket, started at the end


def fail(msg):
    sys.exit("scaling_model.py: " + msg)


def param_counts(onfh):
    """{arch: parameters for 2 classes} from `onfh model list`, in its order."""
    try:
        out = subprocess.run([onfh, "model", "list"], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"{onfh} model list: {e}")
    counts = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) < 2 or not f[1].isdigit():
            fail(f"{onfh} model list: expected 'architecture params ...', got {line!r}")
        counts[f[0]] = int(f[1])
    if not counts:
        fail(f"{onfh} model list printed no architecture")
    return counts


def read_profile(path):
    """(backward share of a step, [(fraction of backward, bytes final)], total bytes)."""
    keys, points = {}, []
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        fail(f"{path}: {e} (tools/scaling_profiles.sh writes it)")
    for n, line in enumerate(lines, 1):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        try:
            if f[0] == "node" and len(f) == 4:
                points.append((float(f[2]), int(f[3])))
            elif len(f) == 2:
                keys[f[0]] = float(f[1])
            else:
                raise ValueError
        except ValueError:
            fail(f"{path}:{n}: expected 'KEY VALUE' or 'node I SECONDS BYTES', got {line!r}")
    for k in ("forward_s", "backward_s", "optimizer_s", "gradient_bytes"):
        if k not in keys:
            fail(f"{path}: no {k} line (output of `onfh model profile`?)")
    if not points or points[-1][1] != keys["gradient_bytes"]:
        fail(f"{path}: the last node line must hold every gradient byte "
             f"({int(keys['gradient_bytes'])})")
    bwd = keys["backward_s"]
    step = keys["forward_s"] + bwd + keys["optimizer_s"]
    if bwd <= 0:
        fail(f"{path}: backward_s must be positive")
    return bwd / step, [(min(t / bwd, 1.0), b) for t, b in points], keys["gradient_bytes"]


def read_measured(path):
    """{(arch, device, engine): step seconds} and {the same: source}."""
    steps, sources = {}, {}
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        fail(f"{path}: {e}")
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        try:
            if len(f) != 6:
                raise ValueError
            arch, device, engine, batch, ips, source = f
            step = int(batch) / float(ips)
        except (ValueError, ZeroDivisionError):
            fail(f"{path}:{n}: expected 6 tab-separated fields 'arch device engine batch "
                 f"images_per_s source' with a positive rate, got {line!r}")
        steps[(arch, device, engine)] = step
        sources[(arch, device, engine)] = source
    return steps, sources


def ring(p, nbytes, alpha, bw):
    """Seconds of a ring all-reduce of nbytes on p GPUs."""
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * alpha


def buckets(profile, total, bucket_bytes):
    """[(ready fraction of backward, bytes)]: cut from the end of the buffer, each closed at the
    first node that brings it to bucket_bytes (whole tensors), the last with what is left."""
    out, lo = [], 0
    for frac, final in profile:
        if final - lo >= bucket_bytes:
            out.append((frac, final - lo))
            lo = final
    if lo < total:
        out.append((profile[-1][0], total - lo))
    return out


def simulate(step, share, profile, total, grad_bytes, p, bucket_mib, alpha, bw):
    """(efficiency, overlap, number of buckets) of one step of `step` seconds on p GPUs. The
    profile's byte counts are scaled to grad_bytes (the engine's count for this model)."""
    backward = share * step
    scale = grad_bytes / total
    plan = buckets(profile, total, bucket_mib * 1048576 / scale)
    free, comm = 0.0, 0.0
    for frac, nbytes in plan:
        t = ring(p, nbytes * scale, alpha, bw)
        free = max(frac * backward, free) + t
        comm += t
    exposed = max(0.0, free - backward)
    return step / (step + exposed), max(0.0, 1 - exposed / comm) if comm > 0 else 1.0, len(plan)


def mib(b):
    return "one bucket" if b == math.inf else f"{b:g} MiB"


BEGIN, END = "<!-- tools/scaling_model.py begins -->\n", "<!-- tools/scaling_model.py ends -->\n"


def write_doc(a):
    """The tables printed by this program (without --doc) between the markers of a.doc."""
    try:
        text = open(a.doc).read()
    except OSError as e:
        fail(f"{a.doc}: {e}")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        fail(f"{a.doc}: expected one line {BEGIN.strip()} before one line {END.strip()}")
    argv = [x for i, x in enumerate(sys.argv[1:]) if x != "--doc" and sys.argv[i] != "--doc"
            and not x.startswith("--doc=")]
    tables = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, check=True,
                            capture_output=True, text=True).stdout
    head, rest = text.split(BEGIN)
    with open(a.doc + ".tmp", "w") as f:
        f.write(head + BEGIN + tables + END + rest.split(END, 1)[1])
    os.replace(a.doc + ".tmp", a.doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("onfh")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--measured", default=os.path.join(root, "docs/scaling/measured.tsv"))
    ap.add_argument("--profiles", default=os.path.join(root, "docs/scaling/profiles"))
    ap.add_argument("--alpha-us", type=float, default=9.6)
    ap.add_argument("--gbps", type=float, default=200.0)
    ap.add_argument("--doc", help="replace the tables between the marker lines of this file")
    a = ap.parse_args()
    if a.doc:
        write_doc(a)
        return
    alpha, bw = a.alpha_us * 1e-6, a.gbps * 1e9 / 8
    counts = param_counts(a.onfh)
    steps, _ = read_measured(a.measured)
    prof = {m: read_profile(os.path.join(a.profiles, m + ".txt")) for m in counts}

    # H200 step times: PyTorch fp32 where measured; elsewhere PyTorch's 2-thread CPU step
    # (measured for all ten) times the median H200/CPU ratio of the measured ones
    ratios = [steps[(m, "h200", "pytorch fp32")] / 128 / (steps[(m, "cpu", "pytorch fp32")] / 16)
              for m in counts if (m, "h200", "pytorch fp32") in steps
              and (m, "cpu", "pytorch fp32") in steps]
    if not ratios:
        fail(f"{a.measured}: no architecture has both h200 and cpu 'pytorch fp32' rows")
    ratio = statistics.median(ratios)
    gpu, estimated = {}, set()
    for m in counts:
        if (m, "h200", "pytorch fp32") in steps:
            gpu[m] = steps[(m, "h200", "pytorch fp32")]
        elif (m, "cpu", "pytorch fp32") in steps:
            gpu[m] = steps[(m, "cpu", "pytorch fp32")] / 16 * ratio * 128
            estimated.add(m)
        else:
            fail(f"{a.measured}: {m}: no h200 or cpu 'pytorch fp32' row")

    print(f"Fabric: ring all-reduce, B = {a.gbps:g} Gb/s per GPU, alpha = {a.alpha_us:g} us per "
          f"ring step: 2 (p-1) alpha = "
          f"{' / '.join(f'{2 * (p - 1) * alpha * 1e3:.2f}' for p in P)} ms per bucket at "
          f"{' / '.join(map(str, P))} GPUs. H200/CPU per-image time ratio of PyTorch fp32 (for the estimated step "
          f"times): median {ratio:.4f} of {', '.join(f'{r:.4f}' for r in ratios)}.")
    print()
    print("| architecture | parameters (2 classes) | gradients MiB | backward share of a step "
          "| H200 step, batch 128, ms | one all-reduce of every gradient at 8 / 64 / 512 GPUs, "
          "ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m, n in counts.items():
        est = " (est.)" if m in estimated else ""
        t = " / ".join(f"{ring(p, 4 * n, alpha, bw) * 1e3:.1f}" for p in P)
        print(f"| {m} | {n:,} | {4 * n / 1048576:.1f} | {prof[m][0]:.2f} | "
              f"{gpu[m] * 1e3:.1f}{est} | {t} |")
    print()

    # the bucket size: the best mean efficiency over the ten at each p (ties: the better worst
    # case, then the larger bucket: fewer calls)
    print("Efficiency over the ten architectures at H200 PyTorch fp32 step times, by bucket "
          "size (mean / worst):")
    print()
    print("| bucket | " + " | ".join(f"{p} GPUs" for p in P) + " |")
    print("| --- | " + " | ".join("---:" for _ in P) + " |")
    best, overall = {}, None
    for b in BUCKETS_MIB:
        cells = []
        for p in P:
            e = [simulate(gpu[m], prof[m][0], prof[m][1], prof[m][2], 4 * n, p, b, alpha, bw)[0]
                 for m, n in counts.items()]
            score = (round(statistics.mean(e), 3), round(min(e), 3))
            cells.append(f"{score[0]:.3f} / {score[1]:.3f}")
            if p not in best or score >= best[p][1]:
                best[p] = (b, score)
        print(f"| {mib(b)} | " + " | ".join(cells) + " |")
        everywhere = statistics.mean(
            simulate(gpu[m], prof[m][0], prof[m][1], prof[m][2], 4 * n, p, b, alpha, bw)[0]
            for m, n in counts.items() for p in P)
        if overall is None or round(everywhere, 3) >= overall[1]:
            overall = (b, round(everywhere, 3))
    print()
    print("Recommended bucket (best mean): " +
          "; ".join(f"{p} GPUs: {mib(best[p][0])}" for p in P) +
          f"; one size for all three: {mib(overall[0])} (mean {overall[1]:.3f} over the "
          f"{len(counts) * len(P)} architecture x GPU count pairs).")
    print()

    print("Predicted efficiency (overlap: share of the all-reduce hidden behind backward) at "
          "H200 PyTorch fp32 step times, with 25 MiB buckets (train.bucket_mib's default) and "
          "with the recommended bucket:")
    print()
    print("| architecture | " + " | ".join(f"{p} GPUs, 25 MiB" for p in P) + " | " +
          " | ".join(f"{p} GPUs, {mib(best[p][0])}" for p in P) + " |")
    print("| --- | " + " | ".join("---:" for _ in range(2 * len(P))) + " |")
    for m, n in counts.items():
        cells = []
        for b in (25, None):
            for p in P:
                e, o, k = simulate(gpu[m], prof[m][0], prof[m][1], prof[m][2], 4 * n, p,
                                   best[p][0] if b is None else b, alpha, bw)
                cells.append(f"{e:.3f} ({o:.2f}, {k} b.)")
        print(f"| {m}{' (est.)' if m in estimated else ''} | " + " | ".join(cells) + " |")
    print()

    print("Other measured step times (PyTorch's CPU ones only serve the estimates above), "
          "recommended bucket:")
    print()
    print("| architecture | engine | step, ms | efficiency 8 / 64 / 512 |")
    print("| --- | --- | ---: | ---: |")
    for (m, device, engine), t in steps.items():
        if m not in counts or engine == "pytorch fp32":
            continue
        e = [simulate(t, prof[m][0], prof[m][1], prof[m][2], 4 * counts[m], p, best[p][0],
                      alpha, bw)[0] for p in P]
        batch = 128 if device == "h200" else 16
        print(f"| {m} | {engine}, {device}, batch {batch} | {t * 1e3:.1f} | "
              f"{' / '.join(f'{x:.3f}' for x in e)} |")


if __name__ == "__main__":
    main()
