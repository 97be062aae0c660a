#!/usr/bin/python3
"""check_multiframe.py RUN ROLE FILE.dcm [LABELS.csv]: checks how `onfh ingest` took one enhanced
multi-frame MR file into RUN/cohort.h5, against pydicom's reading of the same file (independent
of onfh). Prints TAP lines.

The oracle: each frame's ImagePositionPatient from its Per-frame Functional Groups item,
orientation and pixel spacing from the Shared ones, rescale from the frame's Pixel Value
Transformation item; frames ordered by position along the normal (row x column cosines). Checks:
the series has one slice per frame; origin, orientation and spacing (slice spacing from the
positions); for ROLE vessel, /native/voxels equal the frames' rescaled pixels in that order, bit
for bit; for ROLE training, /slices/position_mm follows that order and, given LABELS.csv
(sop_instance_uid,label,frame), each labelled frame's slice carries its label.
Run with Debian's /usr/bin/python3 (python3-h5py, python3-pydicom, python3-numpy)."""
import csv
import os
import sys

import h5py
import numpy as np
import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from oracle import tap  # noqa: E402

run, role, path = sys.argv[1], sys.argv[2], sys.argv[3]
labels_csv = sys.argv[4] if len(sys.argv) > 4 else None

ds = pydicom.dcmread(path)
shared = ds.SharedFunctionalGroupsSequence[0]
iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, dtype=float)
spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
normal = np.cross(iop[:3], iop[3:])
frames = ds.PerFrameFunctionalGroupsSequence
pos = np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                for f in frames])
slope = np.array([float(f.PixelValueTransformationSequence[0].RescaleSlope) for f in frames])
icpt = np.array([float(f.PixelValueTransformationSequence[0].RescaleIntercept) for f in frames])
along = pos @ normal
order = np.argsort(along, kind="stable")
n = len(frames)

h = h5py.File(os.path.join(run, "cohort.h5"), "r")
want_role = {"training": 1, "vessel": 2}[role]
desc = str(ds.SeriesDescription).encode()
rows = [s for s in range(h["/series/role"].shape[0])
        if h["/series/role"][s] == want_role and h["/series/description"][s] == desc and
        h["/series/n_slices"][s] == n]
tap(len(rows) == 1, f"{os.path.basename(path)}: one {role} series of {n} slices, one per frame",
    f"candidates {rows}")
if len(rows) != 1:
    oracle.plan()
    sys.exit(0)
s = rows[0]
gaps = np.diff(along[order])
tap(np.array_equal(h["/series/origin_mm"][s], pos[order[0]]) and
    np.array_equal(h["/series/orientation"][s], iop),
    "origin is the first frame along the normal; orientation from the shared groups",
    f"{h['/series/origin_mm'][s]} vs {pos[order[0]]}")
tap(np.allclose(h["/series/spacing_mm"][s], spacing + [float(np.median(gaps))], atol=1e-9),
    "spacing: PixelSpacing and the median gap between frame positions",
    f"{h['/series/spacing_mm'][s]} vs {spacing + [float(np.median(gaps))]}")

px = ds.pixel_array.astype(np.float64)
rescaled = (px * slope[:, None, None] + icpt[:, None, None]).astype(np.float32)
if role == "vessel":
    off = int(h["/series/native_offset"][s])
    size = n * int(ds.Rows) * int(ds.Columns)
    got = h["/native/voxels"][off:off + size]
    want = rescaled[order].ravel()
    tap(np.array_equal(got, want), "native voxels equal the frames' pixels, each frame with its "
        "own rescale, in order along the normal",
        f"{int((got != want).sum())} of {size} voxels differ")
else:
    first = int(h["/series/first_slice"][s])
    got = h["/slices/position_mm"][first:first + n]
    tap(np.array_equal(got, along[order].astype(np.float32)),
        "training slices follow the frames' positions along the normal", f"{got} vs {along[order]}")
    tap(bool((h["/slices/valid"][first:first + n] == 1).all()), "every frame decoded")
    if labels_csv:
        lab = h["/slices/label"][first:first + n]
        want = np.full(n, -1, dtype=np.int8)
        with open(labels_csv, newline="") as f:
            for r in csv.DictReader(f):
                k = int(r["frame"]) - 1 if r.get("frame") else None
                if r["sop_instance_uid"] != ds.SOPInstanceUID or (k is not None and k >= n):
                    continue
                v = 1 if r["label"] == "lesion" else 0
                for j in range(n):
                    if k is None or order[j] == k:
                        want[j] = v
        tap(np.array_equal(lab, want), "labels joined by SOPInstanceUID and frame number",
            f"{lab} vs {want}")
oracle.plan()
