"""nn_oracle.py: what the PyTorch golden scripts (golden_ops.py, golden.py) share: onfh's
Philox4x32-10 (lib/util/philox.c, restated from the paper, scalar and vectorised) and an HDF5
writer without timestamps.
"""

import h5py
import numpy as np
import torch


M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF
PHILOX_DROPOUT = 5


def philox(ctr, key):
    c = list(ctr)
    k = list(key)
    for r in range(10):
        if r > 0:
            k = [(k[0] + W0) & MASK32, (k[1] + W1) & MASK32]
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & MASK32, p1 & MASK32,
             ((p0 >> 32) ^ c[3] ^ k[1]) & MASK32, p0 & MASK32]
    return c


# Random123 known answers, as in tests/unit/test_philox.c
assert philox([0, 0, 0, 0], [0, 0]) == [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
assert philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]) == \
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]


def philox_np(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 over numpy arrays of counters (uint64 holding 32-bit words), one key."""
    c = [np.asarray(x, dtype=np.uint64) for x in (c0, c1, c2, c3)]
    c = [np.broadcast_to(x, np.broadcast(*c).shape).copy() for x in c]
    k = [np.uint64(k0), np.uint64(k1)]
    m32 = np.uint64(MASK32)
    for r in range(10):
        if r > 0:
            k = [(k[0] + np.uint64(W0)) & m32, (k[1] + np.uint64(W1)) & m32]
        p0 = np.uint64(M0) * c[0]
        p1 = np.uint64(M1) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k[0]) & m32, p1 & m32,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k[1]) & m32, p0 & m32]
    return c


assert [int(x) for x in philox_np(0, 0, 0, 0, 0, 0)] == philox([0, 0, 0, 0], [0, 0])


def uniform24(seed, purpose, stream, count):
    """count floats in [0, 1) with 24 random bits: element j is word j % 4 of the block with
    counter (j / 4, purpose, stream low, stream high) and key (seed low, seed high); the rule
    of nn_mask_uniform with any purpose and stream."""
    blocks = (count + 3) // 4
    j = np.arange(blocks, dtype=np.uint64)
    w = philox_np(j, purpose, stream & MASK32, stream >> 32, seed & MASK32, seed >> 32)
    words = np.stack(w, axis=1).reshape(-1)[:count]
    return (words >> np.uint64(8)).astype(np.float64) * 2.0**-24


class Writer:
    """HDF5 output with no timestamps anywhere, so that re-running the script on the same torch
    gives a byte-identical file and the committed fixture only changes when its numbers do."""

    def __init__(self, path, generator="tools/golden_ops.py"):
        fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
        fcpl.set_obj_track_times(False)  # the root group
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        self.f = h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl,
                                           fapl=fapl))
        self.f.attrs["generator"] = generator
        self.f.attrs["torch_version"] = str(torch.__version__)

    def group(self, parent, name):
        if name in parent:
            return parent[name]
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))

    def case(self, op, arrays, attrs):
        g = self.group(self.f, op)
        n = int(g.attrs.get("n_cases", 0))
        c = self.group(g, f"c{n}")
        for k, v in arrays.items():
            v = np.asarray(v)
            if v.dtype.kind == "f":
                v = v.astype(np.float32)
            c.create_dataset(k, data=v, track_times=False)
        for k, v in attrs.items():
            c.attrs[k] = v
        g.attrs["n_cases"] = n + 1
