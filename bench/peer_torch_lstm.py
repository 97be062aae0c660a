"""peer_torch_lstm.py PATIENTS EPOCHS HIDDEN THREADS: torch.nn.LSTM training seconds per epoch on
the shapes of bench_progression (3 to 5 visits of 13 inputs, a linear head on the last valid
hidden state, cross-entropy, AdamW, batches of 64 as packed sequences), after one warm-up
epoch. Prints: seconds_per_epoch torch_version threads."""
import sys
import time

import torch

n, epochs, hidden, threads = (int(a) for a in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(1)
T, I, B = 5, 13, 64
x = torch.rand(n, T, I) * 2 - 1
lengths = torch.randint(3, 6, (n,))
y = ((x[:, :, 0] * (torch.arange(T)[None, :] < lengths[:, None])).sum(1) > 0).long()
lstm = torch.nn.LSTM(I, hidden, batch_first=True)
head = torch.nn.Linear(hidden, 2)
opt = torch.optim.AdamW(list(lstm.parameters()) + list(head.parameters()), lr=0.01, weight_decay=0.01)


def epoch():
    order = torch.randperm(n)
    for b in range(0, n, B):
        idx = order[b:b + B]
        packed = torch.nn.utils.rnn.pack_padded_sequence(x[idx], lengths[idx], batch_first=True,
                                                         enforce_sorted=False)
        _, (h, _) = lstm(packed)
        loss = torch.nn.functional.cross_entropy(head(h[-1]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


epoch()
start = time.perf_counter()
for _ in range(epochs):
    epoch()
print("%.6f %s %d" % ((time.perf_counter() - start) / epochs, torch.__version__, threads))
