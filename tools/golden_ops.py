#!/usr/bin/python3
"""golden_ops.py: PyTorch's answers for every op and optimizer of onfh's nn engine.

Usage: /usr/bin/python3 tools/golden_ops.py [OUT]   (default tests/fixtures/nn/ops.h5)

Developer tool, never run by `make test`: it needs Debian's python3-torch and python3-h5py
(`apt-get install -y python3-torch python3-h5py`; python3-torchvision is not needed: the two
torchvision functions used, channel_shuffle and stochastic_depth, are restated below from
torchvision's source). Run it with /usr/bin/python3, not a python3 earlier on PATH.

The file it writes is committed; tests/unit/test_nn_golden.c reads it and checks the C reference
backend (lib/nn/ref) against it. Layout: one group per op (/conv, /batchnorm, /act, /maxpool,
/avgpool, /adaptive_avgpool, /linear, /add, /chanmul, /concat, /split, /shuffle, /dropout,
/stochastic_depth, /xent, /adamw, /sgd, /rmsprop), one subgroup per case ("c0", "c1", ...),
attribute n_cases on each op group. A case holds float32 inputs, the upstream gradient dy and
the expected outputs and gradients under the names the C test uses; hyper-parameters are
attributes. Inputs are drawn as float32 (so C sees exactly the same numbers), then every result
is computed by PyTorch in float64 and rounded to float32 once: the goldens are the exact answers
of PyTorch's formulas, and the C side is judged on its own float32 error alone.

Dropout and stochastic-depth masks are not PyTorch's (its generator is not reproducible across
devices); they follow onfh's rule (lib/nn/ops.h nn_mask_uniform), re-implemented here from the
Philox4x32-10 paper, so the fixture also checks the C mask independently.
"""

import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from nn_oracle import MASK32, PHILOX_DROPOUT, Writer, philox

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20250101)


def randn(*shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def t(a, grad=False):
    """float32 array -> float64 tensor (exact), optionally requiring grad."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def f32(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    return np.asarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# onfh's mask rule (Philox4x32-10 itself is in nn_oracle.py)

def mask_uniform(seed, step, op, j):
    stream = (step << 24) | (op & 0xFFFFFF)
    out = philox([j // 4, PHILOX_DROPOUT, stream & MASK32, stream >> 32],
                 [seed & MASK32, seed >> 32])
    return (out[j % 4] >> 8) * 2.0**-24


def keep_mask(seed, step, op, count, p):
    return np.array([mask_uniform(seed, step, op, j) >= p for j in range(count)], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Ops


def conv(w, n, cin, h, wd, cout, k, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1, bias=True):
    kh, kw = k
    x = t(randn(n, cin, h, wd), True)
    weight = t(randn(cout, cin // groups, kh, kw, scale=0.5), True)
    b = t(randn(cout), True) if bias else None
    y = F.conv2d(x, weight, b, stride, pad, dil, groups)
    dy = t(randn(*y.shape))
    y.backward(dy)
    arrays = dict(x=x, w=weight, y=y, dy=dy, dx=x.grad, dw=weight.grad)
    if bias:
        arrays.update(b=b, db=b.grad)
    w.case("conv", {k_: f32(v) for k_, v in arrays.items()},
           dict(stride_h=stride[0], stride_w=stride[1], pad_h=pad[0], pad_w=pad[1],
                dil_h=dil[0], dil_w=dil[1], groups=groups, bias=int(bias)))


def batchnorm(w, n, c, h, wd, training, eps, momentum):
    m = torch.nn.BatchNorm2d(c, eps=eps, momentum=momentum)
    m.weight.data = t(randn(c, scale=0.5, shift=1.0))
    m.bias.data = t(randn(c))
    m.running_mean = t(randn(c, scale=0.3))
    m.running_var = t(np.abs(randn(c)) + 0.5)
    m.num_batches_tracked.fill_(7)
    rm0 = f32(m.running_mean.clone())
    rv0 = f32(m.running_var.clone())
    m.train(training)
    x = t(randn(n, c, h, wd, scale=1.5, shift=0.7), True)
    y = m(x)
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("batchnorm",
           dict(x=f32(x), gamma=f32(m.weight), beta=f32(m.bias), running_mean=rm0,
                running_var=rv0, y=f32(y), dy=f32(dy), dx=f32(x.grad), dgamma=f32(m.weight.grad),
                dbeta=f32(m.bias.grad), running_mean_out=f32(m.running_mean),
                running_var_out=f32(m.running_var)),
           dict(training=int(training), eps=eps, momentum=momentum, num_batches_tracked=7,
                num_batches_tracked_out=int(m.num_batches_tracked)))


def away_from(a, kinks, gap=1e-2):
    """Moves values within gap of a kink to kink + 2 gap: derivatives differ across kernels
    exactly at the kinks (architectures.md), so goldens stay clear of them."""
    a = a.copy()
    for k in kinks:
        near = np.abs(a - k) < gap
        a[near] = k + 2 * gap
    return a


ACTS = [("relu", F.relu, [0.0]), ("relu6", F.relu6, [0.0, 6.0]),
        ("hardswish", F.hardswish, [-3.0, 3.0]), ("hardsigmoid", F.hardsigmoid, [-3.0, 3.0]),
        ("silu", F.silu, []), ("sigmoid", torch.sigmoid, [])]


def act(w, kind, fn, kinks):
    x = t(away_from(randn(2, 3, 5, 5, scale=4.0), kinks), True)
    y = fn(x)
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("act", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)), dict(kind=kind))


def pool_attrs(k, s, p, ceil, cip=1):
    return dict(kh=k[0], kw=k[1], stride_h=s[0], stride_w=s[1], pad_h=p[0], pad_w=p[1],
                ceil_mode=int(ceil), count_include_pad=int(cip))


def maxpool(w, n, c, h, wd, k, s, p, ceil):
    x = t(randn(n, c, h, wd), True)
    y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("maxpool", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)),
           pool_attrs(k, s, p, ceil))


def avgpool(w, n, c, h, wd, k, s, p, ceil, cip):
    x = t(randn(n, c, h, wd), True)
    y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("avgpool", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)),
           pool_attrs(k, s, p, ceil, cip))


def adaptive(w, n, c, h, wd, ho, wo):
    x = t(randn(n, c, h, wd), True)
    y = F.adaptive_avg_pool2d(x, (ho, wo))
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("adaptive_avgpool", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)),
           dict(h_out=ho, w_out=wo))


def linear(w, n, fin, fout, bias):
    x = t(randn(n, fin), True)
    weight = t(randn(fout, fin, scale=0.5), True)
    b = t(randn(fout), True) if bias else None
    y = F.linear(x, weight, b)
    dy = t(randn(*y.shape))
    y.backward(dy)
    arrays = dict(x=x, w=weight, y=y, dy=dy, dx=x.grad, dw=weight.grad)
    if bias:
        arrays.update(b=b, db=b.grad)
    w.case("linear", {k: f32(v) for k, v in arrays.items()}, dict(bias=int(bias)))


def add(w):
    a = t(randn(2, 3, 4, 5), True)
    b = t(randn(2, 3, 4, 5), True)
    y = a + b
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("add", dict(a=f32(a), b=f32(b), y=f32(y), dy=f32(dy), da=f32(a.grad),
                       db=f32(b.grad)), {})


def chanmul(w, n, c, h, wd):
    x = t(randn(n, c, h, wd), True)
    s = t(rng.uniform(0, 1, (n, c, 1, 1)).astype(np.float32), True)  # a sigmoid's output
    y = x * s
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("chanmul", dict(x=f32(x), s=f32(s.reshape(n, c)), y=f32(y), dy=f32(dy),
                           dx=f32(x.grad), ds=f32(s.grad.reshape(n, c))), {})


def concat(w, n, chans, h, wd):
    xs = [t(randn(n, c, h, wd), True) for c in chans]
    y = torch.cat(xs, 1)
    dy = t(randn(*y.shape))
    y.backward(dy)
    arrays = dict(y=f32(y), dy=f32(dy), channels=np.array(chans, dtype=np.int32))
    for i, x in enumerate(xs):
        arrays[f"x{i}"] = f32(x)
        arrays[f"dx{i}"] = f32(x.grad)
    w.case("concat", arrays, dict(parts=len(chans)))


def split(w, n, chans, h, wd):
    x = t(randn(n, sum(chans), h, wd), True)
    ys = torch.split(x, chans, 1)
    dys = [t(randn(*y.shape)) for y in ys]
    torch.autograd.backward(ys, dys)
    arrays = dict(x=f32(x), dx=f32(x.grad), channels=np.array(chans, dtype=np.int32))
    for i, (y, dy) in enumerate(zip(ys, dys)):
        arrays[f"y{i}"] = f32(y)
        arrays[f"dy{i}"] = f32(dy)
    w.case("split", arrays, dict(parts=len(chans)))


def channel_shuffle(x, groups):
    # torchvision/models/shufflenetv2.py
    n, c, h, wd = x.size()
    x = x.view(n, groups, c // groups, h, wd)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, wd)


def shuffle(w, n, c, h, wd, groups):
    x = t(randn(n, c, h, wd), True)
    y = channel_shuffle(x, groups)
    dy = t(randn(*y.shape))
    y.backward(dy)
    w.case("shuffle", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)), dict(groups=groups))


def dropout(w, shape, p, seed, step, op):
    x = t(randn(*shape), True)
    keep = keep_mask(seed, step, op, x.numel(), p).reshape(shape)
    assert 0 < keep.sum() < keep.size, "pick another seed: the mask should mix"
    # torch.nn.functional.dropout's arithmetic with our mask: x * (mask / (1 - p))
    y = x * (t(keep) / (1 - p))
    dy = t(randn(*shape))
    y.backward(dy)
    w.case("dropout", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)),
           dict(p=p, seed=seed, step=step, op=op))


def stochastic_depth(w, shape, p, seed, step, op):
    # torchvision/ops/stochastic_depth.py, mode "row": one Bernoulli(1 - p) per sample,
    # divided by the survival rate
    x = t(randn(*shape), True)
    keep = keep_mask(seed, step, op, shape[0], p).reshape(shape[0], 1, 1, 1)
    assert 0 < keep.sum() < keep.size, "pick another seed: the mask should mix"
    y = x * (t(keep) / (1 - p))
    dy = t(randn(*shape))
    y.backward(dy)
    w.case("stochastic_depth", dict(x=f32(x), y=f32(y), dy=f32(dy), dx=f32(x.grad)),
           dict(p=p, seed=seed, step=step, op=op))


def xent(w, n, k, weighted, smoothing):
    z = t(randn(n, k, scale=2.0), True)
    target = rng.integers(0, k, n)
    weight = t(rng.uniform(0.2, 3.0, k).astype(np.float32)) if weighted else None
    loss = F.cross_entropy(z, torch.tensor(target), weight=weight, label_smoothing=smoothing)
    # the closed form of lib/nn/ops.h, checked here so the comment there stays true
    logp = F.log_softmax(z, 1).detach().numpy()
    wv = weight.numpy() if weighted else np.ones(k)
    big_w = wv[target].sum()
    mine = ((1 - smoothing) * -(wv[target] * logp[np.arange(n), target]).sum() / big_w +
            smoothing / k * -(logp * wv).sum() / big_w)
    assert abs(mine - loss.item()) < 1e-12, (mine, loss.item())
    dloss = 1.7
    (loss * dloss).backward()
    arrays = dict(logits=f32(z), target=target.astype(np.int32), loss=f32([loss.item()]),
                  dlogits=f32(z.grad))
    if weighted:
        arrays["weight"] = f32(weight)
    w.case("xent", arrays, dict(smoothing=smoothing, dloss=dloss, weighted=int(weighted)))


# ---------------------------------------------------------------------------------------------
# Optimizers: five steps over two tensors, "w" decayed and "b" not (the store's decay flag)

STEPS = 5


def optim(w, name, make, attrs):
    pw = torch.nn.Parameter(t(randn(6, 5)))
    pb = torch.nn.Parameter(t(randn(5)))
    w0, b0 = f32(pw), f32(pb)
    opt = make([{"params": [pw]}, {"params": [pb], "weight_decay": 0.0}])
    gw = randn(STEPS, 6, 5)
    gb = randn(STEPS, 5)
    traj_w, traj_b = [], []
    for s in range(STEPS):
        pw.grad = t(gw[s])
        pb.grad = t(gb[s])
        opt.step()
        traj_w.append(f32(pw))
        traj_b.append(f32(pb))
    w.case(name, dict(w0=w0, b0=b0, grad_w=gw, grad_b=gb, traj_w=np.stack(traj_w),
                      traj_b=np.stack(traj_b)), dict(steps=STEPS, **attrs))


def adamw(w, lr, betas, eps, wd):
    optim(w, "adamw", lambda g: torch.optim.AdamW(g, lr=lr, betas=betas, eps=eps, weight_decay=wd),
          dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=wd))


def sgd(w, lr, momentum, wd, nesterov):
    optim(w, "sgd", lambda g: torch.optim.SGD(g, lr=lr, momentum=momentum, weight_decay=wd,
                                              nesterov=nesterov),
          dict(lr=lr, momentum=momentum, weight_decay=wd, nesterov=int(nesterov)))


def rmsprop(w, lr, alpha, eps, wd, momentum):
    optim(w, "rmsprop", lambda g: torch.optim.RMSprop(g, lr=lr, alpha=alpha, eps=eps,
                                                      weight_decay=wd, momentum=momentum),
          dict(lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum))


# ---------------------------------------------------------------------------------------------


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/nn/ops.h5"
    w = Writer(out)

    conv(w, 2, 3, 7, 5, 4, (3, 3), pad=(1, 1))                         # dense, odd H/W
    conv(w, 2, 3, 9, 7, 5, (3, 3), stride=(2, 2), pad=(1, 1), bias=False)  # stride 2
    conv(w, 2, 6, 8, 7, 4, (3, 3), stride=(2, 2), groups=2)            # grouped, no padding
    conv(w, 2, 4, 9, 9, 4, (5, 5), stride=(2, 2), pad=(2, 2), groups=4)  # depthwise 5x5
    conv(w, 1, 3, 7, 6, 2, (3, 3), pad=(2, 2), dil=(2, 2))             # dilation
    conv(w, 2, 5, 5, 3, 3, (1, 1))                                     # pointwise fast path
    conv(w, 2, 4, 7, 7, 6, (1, 1), stride=(2, 2), bias=False)          # downsample shortcut
    conv(w, 1, 3, 11, 10, 2, (7, 7), stride=(2, 2), pad=(3, 3), bias=False)  # resnet stem
    conv(w, 2, 2, 5, 7, 3, (1, 3), stride=(1, 2), pad=(0, 1))          # asymmetric

    batchnorm(w, 2, 3, 5, 3, True, 1e-5, 0.1)
    batchnorm(w, 3, 4, 3, 3, True, 1e-3, 0.01)                         # mobilenet_v3's
    batchnorm(w, 2, 3, 5, 3, False, 1e-5, 0.1)

    for kind, fn, kinks in ACTS:
        act(w, kind, fn, kinks)

    maxpool(w, 2, 2, 9, 9, (3, 3), (2, 2), (1, 1), False)              # resnet stem
    maxpool(w, 1, 2, 8, 10, (3, 3), (2, 2), (0, 0), True)              # ceil adds a column
    maxpool(w, 1, 3, 7, 7, (2, 2), (2, 2), (0, 0), True)               # partial last window
    maxpool(w, 1, 2, 5, 6, (2, 2), (2, 2), (1, 1), True)               # last-window-start rule
    maxpool(w, 2, 1, 7, 5, (3, 2), (2, 1), (1, 0), False)              # non-square

    avgpool(w, 1, 3, 7, 7, (2, 2), (2, 2), (0, 0), False, True)        # densenet transition
    avgpool(w, 1, 2, 6, 5, (3, 3), (1, 1), (1, 1), False, True)        # count_include_pad
    avgpool(w, 1, 2, 6, 5, (3, 3), (1, 1), (1, 1), False, False)       # exclude padding
    avgpool(w, 1, 2, 6, 6, (3, 3), (2, 2), (1, 1), True, True)         # ceil overhang divisor
    avgpool(w, 1, 2, 5, 6, (2, 2), (2, 2), (1, 1), True, True)         # last-window-start rule
    avgpool(w, 1, 2, 5, 6, (2, 2), (2, 2), (1, 1), True, False)
    avgpool(w, 1, 2, 8, 8, (5, 5), (3, 3), (0, 0), True, True)         # inception aux, ceil

    adaptive(w, 2, 3, 7, 5, 1, 1)                                      # global
    adaptive(w, 1, 2, 7, 5, 3, 2)                                      # overlapping windows
    adaptive(w, 1, 2, 5, 5, 7, 7)                                      # more outputs than inputs
    adaptive(w, 1, 2, 6, 6, 4, 4)

    linear(w, 3, 7, 5, True)
    linear(w, 4, 9, 2, False)

    add(w)
    chanmul(w, 2, 5, 3, 3)
    chanmul(w, 3, 4, 1, 1)                                             # pooled input
    concat(w, 2, [3, 2, 4], 3, 5)
    split(w, 2, [3, 3], 3, 5)                                          # shufflenet's chunk(2)
    split(w, 2, [2, 5, 1], 3, 3)
    shuffle(w, 2, 6, 3, 5, 2)
    shuffle(w, 1, 12, 2, 3, 3)

    dropout(w, (2, 3, 5, 5), 0.2, 42, 3, 7)
    dropout(w, (4, 30), 0.5, 0x123456789, 1000, 3)
    stochastic_depth(w, (8, 3, 4, 4), 0.3, 42, 5, 11)
    stochastic_depth(w, (6, 2, 3, 3), 0.5, 7, 0, 0)

    xent(w, 6, 5, False, 0.0)
    xent(w, 6, 5, True, 0.0)
    xent(w, 6, 5, False, 0.1)
    xent(w, 6, 5, True, 0.2)
    xent(w, 8, 2, True, 0.1)                                           # onfh's two classes

    adamw(w, 1e-2, (0.9, 0.999), 1e-8, 0.05)
    adamw(w, 3e-3, (0.8, 0.99), 1e-3, 0.0)
    sgd(w, 0.1, 0.9, 1e-2, False)
    sgd(w, 0.05, 0.9, 1e-3, True)
    sgd(w, 0.2, 0.0, 1e-2, False)
    rmsprop(w, 0.01, 0.9, 0.0316, 1e-5, 0.9)                           # torchvision's recipe
    rmsprop(w, 0.01, 0.99, 1e-8, 1e-2, 0.0)

    w.f.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
