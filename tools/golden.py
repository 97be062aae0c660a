#!/usr/bin/python3
"""golden.py: PyTorch's answers for whole models, for tests/unit/test_nn_model.c.

Usage: /usr/bin/python3 tools/golden.py [OUT]   (default tests/fixtures/nn/mobilenet_v3_large.h5)

Developer tool, never run by `make test`: needs Debian's python3-torch, python3-torchvision and
python3-h5py, run with /usr/bin/python3. The file it writes is committed.

What it computes, for torchvision's mobilenet_v3_large(num_classes=2) in training mode, in
float64 (so the golden is PyTorch's exact answer and the C side is judged on its own float32
error):
- weights: not stored, but drawn by a rule the C test restates (so the fixture stays small):
  element j of the i-th state_dict tensor is u = uniform24(SEED, PHILOX_TEST, i)[j] (the
  nn_mask_uniform rule with purpose PHILOX_TEST and stream i, nn_oracle.py) mapped by kind:
  conv / linear weight  (2u - 1) sqrt(6 / fan_in)     (He uniform: activations neither
                                                       explode nor vanish)
  bias                  0.2 (2u - 1)
  BN weight             1 + 0.5 (2u - 1);   BN bias 0.2 (2u - 1)
  running_mean 0, running_var 1, num_batches_tracked 0 (PyTorch's defaults).
- /keys: every state_dict key with its shape, "name:d0 d1 ..", in order.
- /input (4,3,64,64), /target (4): a fixed batch.
- /logits (4,2) and /loss: the first training-mode forward. Dropout uses onfh's mask rule
  (seed SEED, step = optimizer steps taken, op 0: the only random op), not torch's generator.
- every parameter gradient of that step, summarised so the file stays small but no element
  escapes: /grad/<name>/norm (L2), /proj (4 dot products with vectors r_k = 2 u - 1,
  u = uniform24(SEED, PHILOX_TEST, 2^20 + 4 i + k)), /sample (64 elements at j = t numel / 64,
  or the whole tensor when it has at most 256 elements).
- /adamw_loss (5): the loss of steps 0..4 of AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8,
  weight decay 0.01 on conv and linear weights only: onfh's store flags), each step a forward,
  backward and update.
- /eval_logits (4,2): an eval-mode forward after the first training forward and before the
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

from nn_oracle import Writer, uniform24

SEED = 20251127
PHILOX_TEST = 0
PHILOX_DROPOUT = 5
BATCH, SIZE, CLASSES, STEPS = 4, 64, 2, 5
LR, BETAS, EPS, WD = 1e-4, (0.9, 0.999), 1e-8, 0.01


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


def fill_weights(model):
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
        else:
            v = 0.2 * (2 * u - 1)
        # the C side computes in float: round the same way, then widen
        t.copy_(torch.tensor(v.astype(np.float32).astype(np.float64)))


def is_bn(model, name):
    mod = model.get_submodule(name.rsplit(".", 1)[0])
    return isinstance(mod, torch.nn.BatchNorm2d)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/nn/mobilenet_v3_large.h5"
    torch.set_default_dtype(torch.float64)
    model = torchvision.models.mobilenet_v3_large(num_classes=CLASSES).double()
    drop = OnfhDropout(0.2, 0)
    model.classifier[2] = drop
    fill_weights(model)
    model.train()

    gen = np.random.default_rng(7)
    x = gen.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32)
    target = np.array([0, 1, 1, 0], dtype=np.int32)
    xt = torch.tensor(x.astype(np.float64))
    tt = torch.tensor(target.astype(np.int64))

    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)

    w = Writer(out, "tools/golden.py")
    f = w.f
    f.attrs["model"] = "mobilenet_v3_large"
    f.attrs["torchvision_version"] = str(torchvision.__version__)
    for k, v in dict(seed=SEED, batch=BATCH, size=SIZE, classes=CLASSES, steps=STEPS).items():
        f.attrs[k] = v
    f.attrs["adamw"] = np.array([LR, BETAS[0], BETAS[1], EPS, WD])
    f.create_dataset("input", data=x, track_times=False)
    f.create_dataset("target", data=target, track_times=False)

    names = list(model.state_dict().keys())
    shapes = [" ".join(str(d) for d in t.shape) for t in model.state_dict().values()]
    f.create_dataset("keys", data=np.array([f"{n}:{s}" for n, s in zip(names, shapes)],
                                           dtype=h5py.string_dtype("ascii")), track_times=False)
    params = dict(model.named_parameters())
    losses = []
    for step in range(STEPS):
        drop.step = step
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
                proj = [float(np.dot(g, 2 * uniform24(SEED, PHILOX_TEST, (1 << 20) + 4 * i + k,
                                                      g.size) - 1)) for k in range(4)]
                gg.attrs["proj"] = np.array(proj)
                idx = np.arange(g.size) if g.size <= 256 else \
                    (np.arange(64) * g.size) // 64
                gg.create_dataset("index", data=idx.astype(np.int32), track_times=False)
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
