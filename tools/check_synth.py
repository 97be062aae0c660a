#!/usr/bin/python3
"""check_synth.py RUN_DIR: reads every DICOM file of a synthetic cohort with pydicom, an
independent reader, and checks it against the generator's ground truth (truth/*.csv).

For every clean file: it parses; its transfer syntax is one onfh writes; the decoded pixel
array hashes (little-endian uint16, row order) to truth's pixels_sha256, whatever the encoding;
geometry (ImagePositionPatient y of coronal slices, orientation, spacing) matches truth;
PatientID and series are consistent. labels.csv names only baseline T1 slices that exist.
For every fault file: pydicom fails where truth says ingest must skip it. Prints TAP lines.
Run with Debian's /usr/bin/python3 (python3-pydicom, python3-numpy)."""
import hashlib
import os
import sys

import numpy as np
import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from oracle import tap  # noqa: E402

run = sys.argv[1]


def table(name):
    return oracle.table(run, name)


slices = {r["sop_instance_uid"]: r for r in table("truth/slices.csv")}
vessels = {r["series_uid"]: r for r in table("truth/vessels.csv")}
faults = table("truth/faults.csv")
labels = table("labels.csv")
patients = {r["patient_id"]: r for r in table("truth/patients.csv")}
fault_paths = {os.path.join(run, f["path"]) for f in faults if f["verdict"] != "ingest"}
fault_dirs = tuple(p for p in fault_paths if p.endswith("/"))

files = []
for root, _, names in os.walk(os.path.join(run, "raw")):
    for name in names:
        files.append(os.path.join(root, name))
files.sort()

syntaxes = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"}
seen_ts = set()
bad = []
volumes = {}
checked = 0
for path in files:
    if path in fault_paths or path.startswith(fault_dirs):
        continue
    try:
        ds = pydicom.dcmread(path)
        ts = str(ds.file_meta.TransferSyntaxUID)
        seen_ts.add(ts)
        assert ts in syntaxes, f"transfer syntax {ts}"
        px = ds.pixel_array.astype("<u2")
        assert px.shape == (ds.Rows, ds.Columns)
        digest = hashlib.sha256(px.tobytes()).hexdigest()
        assert ds.PatientID in patients, f"PatientID {ds.PatientID}"
        sop = str(ds.SOPInstanceUID)
        if ds.SeriesNumber == 3:
            t = slices[sop]
            assert digest == t["pixels_sha256"], "pixels differ from what was written"
            assert abs(float(ds.ImagePositionPatient[1]) - float(t["y_mm"])) < 1e-3, "IPP y"
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
            assert int(ds.InstanceNumber) == int(t["instance"])
            assert str(ds.SeriesInstanceUID) == t["series_uid"]
        else:
            v = volumes.setdefault(str(ds.SeriesInstanceUID), {})
            v[int(ds.InstanceNumber)] = (px.tobytes(), float(ds.ImagePositionPatient[2]))
        checked += 1
    except Exception as exc:  # noqa: BLE001 - any failure of any file is reported
        bad.append(f"{os.path.relpath(path, run)}: {exc!r}")
tap(not bad and checked > 0, f"pydicom reads all {checked} clean files; pixels, geometry and "
    "identity match the truth", "\n".join(bad))
tap(seen_ts == syntaxes, "all five transfer syntaxes occur", sorted(seen_ts))

vessel_bad = []
for uid, v in volumes.items():
    t = vessels.get(uid)
    order = sorted(v)
    zs = [v[k][1] for k in order]
    steps = np.diff(zs)
    digest = hashlib.sha256(b"".join(v[k][0] for k in order)).hexdigest()
    if t is None or digest != t["pixels_sha256"] or not np.allclose(steps, steps[0]):
        vessel_bad.append(uid)
tap(not vessel_bad and len(volumes) == len(vessels),
    f"{len(volumes)} vessel series: volumes and slice spacing match the truth", vessel_bad[:5])

baseline = {s for s, r in slices.items() if r["visit"] == "1" and r["labelled"] == "1"}
label_uids = {r["sop_instance_uid"] for r in labels}
tap(label_uids == baseline and all(r["label"] in ("lesion", "normal") for r in labels),
    f"labels.csv: {len(labels)} labels, exactly the labelled baseline slices")
tap(all(slices[u]["label"] == r["label"] for r in labels for u in [r["sop_instance_uid"]]),
    "labels.csv agrees with truth/slices.csv")

refused = []
for f in faults:
    if f["verdict"] not in ("skip:truncated", "skip:not_dicom", "skip:unsupported_transfer_syntax"):
        continue
    path = os.path.join(run, f["path"])
    try:
        ds = pydicom.dcmread(path)
        ds.pixel_array
        refused.append(f"{f['path']}: read without error")
    except Exception:  # noqa: BLE001 - failing is the expected outcome
        pass
tap(not refused, "pydicom fails on every file truth says to skip", "\n".join(refused))
oracle.plan()
