#!/usr/bin/python3
"""check_predict.py RUN_DIR: `onfh predict` against PyTorch on the same checkpoint and slices.

Builds torchvision's mobilenet_v3_large (2 classes) with PyTorch's own random initialisation,
perturbs the BN running statistics (so eval mode is exercised), saves its state_dict, converts
it with tools/torch_to_onfh.py, runs `onfh predict` on RUN_DIR's cohort.h5 with it, and compares
the per-slice probabilities with PyTorch's eval-mode softmax of the same slices (3 copies of the
grayscale plane). Then converts the checkpoint back with tools/onfh_to_torch.py and checks that
every tensor survives the round trip bit for bit. Prints TAP lines. Needs python3-torch,
python3-torchvision and python3-h5py; env ONFH is the onfh binary, ONFH_PREDICT_BACKEND the
backend (default auto).
"""

import csv
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onfh_to_torch import read_state_dict  # noqa: E402
from torch_to_onfh import write_checkpoint  # noqa: E402

n_ok = n_fail = 0


def check(cond, what, detail=""):
    global n_ok, n_fail
    if cond:
        n_ok += 1
        print(f"ok {n_ok + n_fail} - {what}")
    else:
        n_fail += 1
        print(f"not ok {n_ok + n_fail} - {what}")
        for line in str(detail).splitlines():
            print(f"#   {line}")


def main():
    run = sys.argv[1]
    config = sys.argv[2]
    onfh = os.environ.get("ONFH", "bin/onfh")
    with h5py.File(os.path.join(run, "cohort.h5"), "r") as f:
        grid = int(f.attrs["grid_size"])
        images = f["slices/image"][()]
        valid = f["slices/valid"][()]
    torch.manual_seed(1)
    model = torchvision.models.mobilenet_v3_large(num_classes=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(17)
    model.eval()
    ckpt = os.path.join(run, "torch_init.h5")
    write_checkpoint(ckpt, "mobilenet_v3_large", model.state_dict(), grid,
                     "tools/check_predict.py")
    out = os.path.join(run, "predictions_torch_ckpt.csv")
    backend = os.environ.get("ONFH_PREDICT_BACKEND", "auto")
    r = subprocess.run([onfh, "predict", config, "--run", run, "--checkpoint", ckpt, "--out", out,
                        "--backend", backend], capture_output=True, text=True)
    check(r.returncode == 0, "onfh predict runs on a converted torchvision checkpoint",
          r.stderr[-2000:])
    if r.returncode != 0:
        return
    rows = list(csv.DictReader(open(out)))
    check(len(rows) == len(images), f"one row per slice ({len(rows)} of {len(images)})")
    with torch.no_grad():
        x = torch.tensor(images).unsqueeze(1).repeat(1, 3, 1, 1)
        want = torch.softmax(model(x), dim=1).numpy()
    worst = 0.0
    for i, row in enumerate(rows):
        if not valid[i]:
            check(row["p0"] == "" and row["p1"] == "", f"slice {i} undecodable: no probability")
            continue
        got = np.array([float(row["p0"]), float(row["p1"])])
        worst = max(worst, float(np.max(np.abs(got - want[i]))))
    check(worst < 1e-4, f"probabilities match PyTorch's (largest difference {worst:.2e})")
    back, model_id, classes = read_state_dict(ckpt)
    sd = model.state_dict()
    same = all(torch.equal(back[k].to(sd[k].dtype).reshape(sd[k].shape), sd[k]) for k in sd)
    check(same and set(back) == set(sd) and model_id == "mobilenet_v3_large" and classes == 2,
          "torch -> onfh -> torch keeps every tensor bit for bit")


if __name__ == "__main__":
    main()
    print(f"# check_predict: {n_ok} passed, {n_fail} failed")
    sys.exit(1 if n_fail else 0)
