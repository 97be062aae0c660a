#!/usr/bin/python3
"""golden_lstm.py: PyTorch's answers for onfh's LSTM sequence classifier (lib/nn/lstm.h).

Usage: /usr/bin/python3 tools/golden_lstm.py [OUT]   (default tests/fixtures/nn/lstm.h5)

Developer tool, never run by `make test`: needs Debian's python3-torch and python3-h5py, run
with /usr/bin/python3. The file it writes is committed; tests/unit/test_nn_lstm.c reads it.

The model is a torch.nn.LSTM (batch_first) subclass owning a torch.nn.Linear `head`, so its
state_dict keys are exactly onfh's view names (weight_ih_l0 .. bias_hh_l1, head.weight,
head.bias). Sequences of unequal lengths go through pack_padded_sequence; the head reads h_n of
the top layer; the loss is F.cross_entropy (mean). Inputs and weights are drawn as float32 (C
sees the same numbers), everything is computed in float64 and rounded to float32 once.

Inter-layer dropout uses onfh's mask rule (nn_mask_uniform, op = layer, element = the
batch-first flat index (n T + t) H + k of the lower layer's padded output), not torch's
generator: such cases run the layers one by one (single-layer LSTMs sharing the weights), and
the script first checks that this stacking equals torch.nn.LSTM when nothing is dropped.

Layout: /lstm/c0, c1, ... (attribute n_cases on /lstm), each case with attributes input,
hidden, layers, classes, dropout, seed, step, training and datasets
  x (N,T,I), len (N) int, target (N) int, w.<key> for every state_dict tensor,
  out (N,T,H) top-layer outputs (0 past each length), logits (N,K), loss (1),
  dx (N,T,I), g.<key> every parameter gradient.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nn_oracle import PHILOX_DROPOUT, Writer, uniform24

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20250612)


class LstmClassifier(torch.nn.LSTM):
    def __init__(self, input, hidden, layers, classes, dropout):
        super().__init__(input, hidden, layers, batch_first=True, dropout=dropout)
        self.head = torch.nn.Linear(hidden, classes)


def keep_scale(seed, step, op, count, p):
    """onfh's dropout multiplier for elements 0 .. count-1 of op `op` (ops.h)."""
    u = uniform24(seed, PHILOX_DROPOUT, (step << 24) | op, count)
    return np.where(u >= p, 1.0 / (1.0 - p), 0.0)


def run_stacked(model, x, lengths, scales):
    """The LSTM layer by layer on model's own tensors, torch.nn.LSTM's cell restated, each
    lower layer's padded output multiplied by scales[l] (None: nothing dropped). A sequence's
    state stops changing after its length, as with packed sequences; outputs there are 0."""
    N, T, _ = x.shape
    H = model.hidden_size
    alive = (torch.arange(T)[None, :] < lengths[:, None]).to(x.dtype)  # (N,T)
    u = x
    for l in range(model.num_layers):
        w_ih, w_hh = getattr(model, f"weight_ih_l{l}"), getattr(model, f"weight_hh_l{l}")
        b = getattr(model, f"bias_ih_l{l}") + getattr(model, f"bias_hh_l{l}")
        h = torch.zeros(N, H)
        c = torch.zeros(N, H)
        outs = []
        for t in range(T):
            a = u[:, t] @ w_ih.T + h @ w_hh.T + b
            i, f, g, o = a.chunk(4, dim=1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            m = alive[:, t:t + 1]
            c = m * c_new + (1 - m) * c
            h = m * h_new + (1 - m) * h
            outs.append(m * h_new)
        out = torch.stack(outs, dim=1)
        if l + 1 < model.num_layers and scales is not None:
            out = out * torch.tensor(scales[l].reshape(out.shape))
        u = out
    return out, h


def case(w, N, T, I, H, L, K, lengths, dropout=0.0, training=False, seed=0, step=0):
    model = LstmClassifier(I, H, L, K, dropout)
    for v in model.state_dict().values():  # float32-representable weights
        v.copy_(torch.tensor(rng.uniform(-0.6, 0.6, v.shape).astype(np.float32)))
    x = torch.tensor(rng.standard_normal((N, T, I)).astype(np.float32).astype(np.float64),
                     requires_grad=True)
    target = torch.tensor(rng.integers(0, K, N))
    lengths = torch.tensor(lengths)

    drop = training and dropout > 0.0
    if drop:
        scales = [keep_scale(seed, step, l, N * T * H, dropout) for l in range(L - 1)]
        out, last = run_stacked(model, x, lengths, scales)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (hn, _) = torch.nn.LSTM.forward(model, packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        last = hn[-1]
        s_out, s_last = run_stacked(model, x, lengths, None)
        assert torch.allclose(out, s_out, atol=1e-12) and torch.allclose(last, s_last, atol=1e-12)
    logits = model.head(last)
    loss = F.cross_entropy(logits, target)
    model.zero_grad()
    loss.backward()

    arrays = dict(x=x.detach().numpy(), len=lengths.numpy().astype(np.int32),
                  target=target.numpy().astype(np.int32), out=out.detach().numpy(),
                  logits=logits.detach().numpy(), loss=np.array([loss.item()]),
                  dx=x.grad.numpy())
    for k, p in model.named_parameters():
        arrays["w." + k] = p.detach().numpy()
        arrays["g." + k] = p.grad.numpy()
    w.case("lstm", arrays, dict(input=I, hidden=H, layers=L, classes=K, dropout=dropout,
                                seed=seed, step=step, training=int(training)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/nn/lstm.h5"
    w = Writer(out, generator="tools/golden_lstm.py")
    case(w, N=4, T=5, I=3, H=4, L=1, K=3, lengths=[5, 3, 1, 4])
    case(w, N=5, T=6, I=4, H=5, L=2, K=2, lengths=[2, 6, 6, 3, 5])
    case(w, N=4, T=6, I=3, H=6, L=2, K=3, lengths=[6, 4, 2, 5], dropout=0.4, training=True,
         seed=20251201, step=17)
    w.f.close()


if __name__ == "__main__":
    main()
