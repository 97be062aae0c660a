"""bn_diff.py A.h5 B.h5 NAME: max |difference| of BN buffer NAME (a state_dict key such as
features.0.1.running_mean) in two checkpoints, relative to its largest |value| (one number)."""
import sys

import h5py
import numpy as np


def buffer(path, name):
    with h5py.File(path, "r") as f:
        return np.asarray(f["state_dict"][name], dtype=np.float64)


a, b = (buffer(p, sys.argv[3]) for p in sys.argv[1:3])
print("%.6g" % (np.abs(a - b).max() / np.abs(a).max()))
