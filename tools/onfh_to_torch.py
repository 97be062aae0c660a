#!/usr/bin/python3
"""onfh_to_torch.py: an onfh checkpoint (HDF5) -> a torchvision state_dict (.pth).

Usage: /usr/bin/python3 tools/onfh_to_torch.py IN.h5 OUT.pth

Then, in PyTorch: m = torchvision.models.<model>(num_classes=<classes>);
m.load_state_dict(torch.load("OUT.pth")) (model and classes are printed, and stored as root
attributes of IN.h5). Optimizer state is not converted. Layout: data-schema/checkpoint.md.
"""

import sys
from collections import OrderedDict

import h5py
import torch


def read_state_dict(path):
    with h5py.File(path, "r") as f:
        if f.attrs.get("schema") not in ("onfh-checkpoint-1", b"onfh-checkpoint-1"):
            sys.exit(f"{path}: not an onfh checkpoint (schema {f.attrs.get('schema')!r})")
        sd = OrderedDict()
        g = f["state_dict"]
        # HDF5 lists names alphabetically; torchvision's load_state_dict does not care about
        # order, and neither does anything else here.
        for k in g:
            sd[k] = torch.from_numpy(g[k][()]) if g[k].shape else torch.tensor(g[k][()])
        model = f.attrs["model"]
        classes = int(f.attrs["classes"])
    return sd, (model.decode() if isinstance(model, bytes) else model), classes


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sd, model, classes = read_state_dict(sys.argv[1])
    torch.save(sd, sys.argv[2])
    print(f"wrote {sys.argv[2]}: {len(sd)} tensors of {model} with {classes} classes")


if __name__ == "__main__":
    main()
