#!/usr/bin/python3
"""golden.py: PyTorch's answers for whole models, for tests/unit/test_nn_model.c.

Usage: /usr/bin/python3 tools/golden.py MODEL [--size S] [--batch B] [--out FILE]
                                             [--lr LR] [--eps EPS] [--shift SHIFT]
       (default FILE tests/fixtures/nn/MODEL.h5; S, B, LR and SHIFT from SIZES below: the
       other flags are for experiments, the committed fixtures use the defaults)

Developer tool, never run by `make test`: needs Debian's python3-torch, python3-torchvision and
python3-h5py, run with /usr/bin/python3. The file it writes is committed.

What it computes, for torchvision's MODEL(num_classes=2) in training mode, in float64 (so the
golden is PyTorch's exact answer and the C side is judged on its own float32 error):
- weights: not stored, but drawn by a rule the C test restates (so the fixture stays small):
  element j of the i-th state_dict tensor is u = uniform24(SEED, PHILOX_TEST, i)[j] (the
  nn_mask_uniform rule with purpose PHILOX_TEST and stream i, nn_oracle.py) mapped by kind:
  conv / linear weight  (2u - 1) sqrt(6 / fan_in)     (He uniform: activations neither
                                                       explode nor vanish)
  bias                  0.2 (2u - 1)
  BN weight             1 + 0.5 (2u - 1);   BN bias SHIFT + 0.2 (2u - 1), SHIFT from SIZES
                        (attribute bn_bias_shift, absent when 0)
  running_mean 0, running_var 1, num_batches_tracked 0 (PyTorch's defaults).
- /keys: every state_dict key with its shape, "name:d0 d1 ..", in order.
- /input (B,3,S,S), /target (B): a fixed batch.
- /logits (B,2) and /loss: the first training-mode forward. Dropout and stochastic depth use
  onfh's mask rule (seed SEED, step = optimizer steps taken, op = the ordinal of the random op
  in module order, which is the order the C builders create them: graph.h), not torch's
  generator. Stochastic depth only counts where torchvision applies it (MBConv blocks with a
  residual connection).
- every parameter gradient of that step, summarised so the file stays small but no element
  escapes: /grad/<name>/norm (L2), /proj (4 dot products with vectors r_k = 2 u - 1,
  u = uniform24(SEED, PHILOX_TEST, 2^20 + 4 i + k)), /sample (64 elements at j = t numel / 64,
  or the whole tensor when it has at most 256 elements; the C test restates which).
- /adamw_loss (5): the loss of steps 0..4 of AdamW (lr from SIZES, betas 0.9/0.999, eps 1e-8,
  weight decay 0.01 on conv and linear weights only: onfh's store flags), each step a forward,
  backward and update.
- /eval_logits (B,2): an eval-mode forward after the first training forward and before the
  first update, which checks the running statistics. (After updates it would not be a fair
  test: parameters whose exact gradient is 0, such as the bias of a BN that only feeds
  conv + training-mode BN, get gradients of pure rounding noise, and Adam turns noise of any
  size into steps of size lr, which eval mode then sees.)
- Gradients that are 0 in exact arithmetic for the same reason are compared against a floor
  of 1e-3 of the largest gradient norm of the model (the C test says so).
"""

import sys

import h5py
import numpy as np
import torch
import torchvision

from nn_oracle import Writer, philox_np, uniform24

SEED = 20251127
PHILOX_TEST = 0
PHILOX_DROPOUT = 5
CLASSES, STEPS = 2, 5
# (size, batch, AdamW lr, BN bias shift) per model.
# Size and batch: small enough that the ref backend runs the 5 steps in seconds, big enough that
# no BatchNorm normalises fewer than 8 values per channel (with 2 values, training BN's input
# gradient is pure cancellation). VGG at 32: its last convs see 2x2 maps, and its cost is then
# mostly the 10^8 classifier weights' (AdamW, gradient summaries), not the convs'.
# The golden must be well conditioned: float32 rounding (relative 1e-7) in the C run must not
# move the answers by the tolerances. Deep ReLU networks with training-mode BatchNorm on a tiny
# batch are not, at the plain weight rule: in ResNet-50 a 1e-7 relative change of the input
# moves sampled gradient elements by 2% (gradient explosion of BN networks at init, Yang et al.
# 2019), in DenseNet-121 by 0.2%. A positive shift of every BN bias keeps most ReLUs in their
# linear part and makes them well conditioned (ResNet-50: 2e-5 with shift 0.5). Likewise the
# AdamW lr of the 5-step curve: Adam's first step moves every weight by about lr whatever its
# gradient's size, and at 1e-4 most of these models' curves are chaotic (the loss falls from ~1
# to ~0.01 in a step or two and float32 noise moves it by 1%); the deeper the model and the more
# weights, the smaller the lr (VGG's 10^8 classifier weights: 1e-8; its loss still jumps from
# step to step, with the dropout masks). Each lr was picked by running the C test at several
# (worst error / tolerance of the curve on ref, all other checks well below: mobilenet_v2 0.6,
# resnet18 0.26, resnet50 0.09, densenet121 0.18, densenet201 0.26, efficientnet_b0 0.07,
# shufflenet 0.47, vgg16_bn 0.15). ResNet-50's curve is the touchiest: not monotonic in lr
# (1e-5: 2.4, 3e-6: 11, 1e-6: 0.7, 3e-7: 1.2, 1e-7: 0.09), as if some step landed a value on
# a kink. MobileNetV3 is fine with 1e-4 and no shift (its fixture predates the others).
SIZES = {
    "mobilenet_v3_large": (64, 4, 1e-4, 0.0),
    "mobilenet_v3_small": (64, 4, 1e-4, 0.0),
    "mobilenet_v2": (64, 4, 3e-6, 0.0),
    "resnet18": (64, 2, 1e-5, 0.5),
    "resnet50": (64, 2, 1e-7, 0.5),
    "densenet121": (64, 2, 1e-5, 0.5),
    "densenet201": (64, 2, 3e-6, 0.5),
    "efficientnet_b0": (64, 4, 1e-5, 0.5),
    "shufflenet_v2_x1_0": (64, 4, 1e-5, 0.5),
    "vgg16_bn": (32, 2, 1e-8, 0.5),
}
TARGETS = [0, 1, 1, 0]
BETAS, EPS, WD = (0.9, 0.999), 1e-8, 0.01


class OnfhDropout(torch.nn.Module):
    """Dropout with onfh's mask: element j kept when uniform24(seed, DROPOUT, step 2^24 + op)
    >= p, kept values scaled by 1 / (1 - p)."""

    def __init__(self, p, op):
        super().__init__()
        self.p, self.op, self.step = p, op, 0

    def forward(self, x):
        if not self.training:
            return x
        stream = (self.step << 24) | self.op
        u = uniform24(SEED, PHILOX_DROPOUT, stream, x.numel())
        keep = torch.tensor((u >= self.p) / (1.0 - self.p), dtype=x.dtype).reshape(x.shape)
        return x * keep


class OnfhStochasticDepth(torch.nn.Module):
    """torchvision's StochasticDepth in "row" mode with onfh's mask: sample i kept when
    uniform24(seed, DROPOUT, step 2^24 + op)[i] >= p, kept samples scaled by 1 / (1 - p)."""

    def __init__(self, p, op):
        super().__init__()
        self.p, self.op, self.step = p, op, 0

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        stream = (self.step << 24) | self.op
        u = uniform24(SEED, PHILOX_DROPOUT, stream, x.shape[0])
        keep = torch.tensor((u >= self.p) / (1.0 - self.p), dtype=x.dtype)
        return x * keep.reshape(-1, *([1] * (x.dim() - 1)))


def onfh_random_ops(model):
    """Replaces every dropout and every stochastic depth that runs by onfh's, numbered in
    module order; returns them (their step is set before each forward)."""
    ops = []
    for name, mod in list(model.named_modules()):
        if isinstance(mod, torch.nn.Dropout):
            new = OnfhDropout(mod.p, len(ops))
        elif isinstance(mod, torchvision.ops.StochasticDepth):
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            if not getattr(parent, "use_res_connect", False):
                continue  # built but never called: no node in the C graph either
            new = OnfhStochasticDepth(mod.p, len(ops))
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
        ops.append(new)
    return ops


def fill_weights(model, shift=0.0):
    sd = model.state_dict()
    for i, (name, t) in enumerate(sd.items()):
        if name.endswith("num_batches_tracked"):
            t.zero_()
            continue
        if name.endswith("running_mean"):
            t.zero_()
            continue
        if name.endswith("running_var"):
            t.fill_(1.0)
            continue
        u = uniform24(SEED, PHILOX_TEST, i, t.numel()).reshape(t.shape)
        if t.dim() > 1:
            fan_in = t[0].numel()
            v = (2 * u - 1) * np.sqrt(6.0 / fan_in)
        elif is_bn(model, name) and name.endswith("weight"):
            v = 1 + 0.5 * (2 * u - 1)
        elif is_bn(model, name):
            v = shift + 0.2 * (2 * u - 1)
        else:
            v = 0.2 * (2 * u - 1)
        # the C side computes in float: round the same way, then widen
        t.copy_(torch.tensor(v.astype(np.float32).astype(np.float64)))


def is_bn(model, name):
    mod = model.get_submodule(name.rsplit(".", 1)[0])
    return isinstance(mod, torch.nn.BatchNorm2d)


def grad_proj(g, i, k):
    """dot(g, 2 u - 1) with u = uniform24(SEED, PHILOX_TEST, 2^20 + 4 i + k), in chunks (a
    VGG classifier weight has 10^8 elements)."""
    chunk = 1 << 22
    total = 0.0
    for at in range(0, g.size, chunk):
        n = min(chunk, g.size - at)
        # chunk is a multiple of 4: block at / 4 onwards continues the same sequence
        blocks = np.arange(at // 4, (at + n + 3) // 4, dtype=np.uint64)
        stream = (1 << 20) + 4 * i + k
        w = philox_np(blocks, PHILOX_TEST, stream & 0xFFFFFFFF, stream >> 32,
                      SEED & 0xFFFFFFFF, SEED >> 32)
        u = (np.stack(w, axis=1).reshape(-1)[:n] >> np.uint64(8)).astype(np.float64) * 2.0**-24
        total += float(np.dot(g[at:at + n], 2 * u - 1))
    return total


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    model_id = args[0]
    size, batch, lr, shift = SIZES[model_id]
    eps = EPS
    out = f"tests/fixtures/nn/{model_id}.h5"
    for flag, value in zip(args[1::2], args[2::2]):
        if flag == "--size":
            size = int(value)
        elif flag == "--batch":
            batch = int(value)
        elif flag == "--out":
            out = value
        elif flag == "--lr":
            lr = float(value)
        elif flag == "--eps":
            eps = float(value)
        elif flag == "--shift":
            shift = float(value)
        else:
            sys.exit(f"unknown option {flag}")
    torch.set_default_dtype(torch.float64)
    model = getattr(torchvision.models, model_id)(num_classes=CLASSES).double()
    random_ops = onfh_random_ops(model)
    fill_weights(model, shift)
    model.train()

    gen = np.random.default_rng(7)
    x = gen.standard_normal((batch, 3, size, size)).astype(np.float32)
    target = np.array([TARGETS[i % 4] for i in range(batch)], dtype=np.int32)
    xt = torch.tensor(x.astype(np.float64))
    tt = torch.tensor(target.astype(np.int64))

    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=BETAS, eps=eps)

    w = Writer(out, "tools/golden.py")
    f = w.f
    f.attrs["model"] = model_id
    f.attrs["torchvision_version"] = str(torchvision.__version__)
    if shift:
        f.attrs["bn_bias_shift"] = shift
    for k, v in dict(seed=SEED, batch=batch, size=size, classes=CLASSES, steps=STEPS).items():
        f.attrs[k] = v
    f.attrs["adamw"] = np.array([lr, BETAS[0], BETAS[1], eps, WD])
    f.create_dataset("input", data=x, track_times=False)
    f.create_dataset("target", data=target, track_times=False)

    names = list(model.state_dict().keys())
    shapes = [" ".join(str(d) for d in t.shape) for t in model.state_dict().values()]
    f.create_dataset("keys", data=np.array([f"{n}:{s}" for n, s in zip(names, shapes)],
                                           dtype=h5py.string_dtype("ascii")), track_times=False)
    params = dict(model.named_parameters())
    losses = []
    for step in range(STEPS):
        for op in random_ops:
            op.step = step
        opt.zero_grad()
        logits = model(xt)
        loss = torch.nn.functional.cross_entropy(logits, tt)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            f.create_dataset("logits", data=logits.detach().numpy().astype(np.float32),
                             track_times=False)
            f.attrs["loss"] = loss.item()
            grads = w.group(f, "grad")
            for i, name in enumerate(names):
                if name not in params:
                    continue
                g = params[name].grad.detach().numpy().reshape(-1)
                gg = w.group(grads, name)
                gg.attrs["norm"] = float(np.sqrt(np.sum(g * g)))
                gg.attrs["proj"] = np.array([grad_proj(g, i, k) for k in range(4)])
                idx = np.arange(g.size) if g.size <= 256 else \
                    (np.arange(64) * g.size) // 64
                gg.create_dataset("sample", data=g[idx].astype(np.float32), track_times=False)
            model.eval()
            with torch.no_grad():
                f.create_dataset("eval_logits", data=model(xt).numpy().astype(np.float32),
                                 track_times=False)
            model.train()
        opt.step()
    f.attrs["adamw_loss"] = np.array(losses)
    f.close()
    print(f"wrote {out}: loss {losses[0]:.6f}, 5-step AdamW losses {losses}")


if __name__ == "__main__":
    main()
