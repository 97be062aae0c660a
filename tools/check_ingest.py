#!/usr/bin/python3
"""check_ingest.py RUN_DIR SITE_KEY: checks cohort.h5 and the ingest reports of a synthetic run
against the generator's ground truth (truth/*.csv), reading cohort.h5 with h5py and the DICOM
files with pydicom, both independent of onfh. Prints TAP lines.

Checks: pseudonyms are HMAC-SHA-256(key, PatientID)[:16]; every patient and vessel series is
there, and each native vessel volume equals, voxel for voxel, the pixels the generator wrote;
training slices and labels add up to the truth; every fault reaches its expected verdict; and no
PatientID, PatientName or birth date appears in cohort.h5, the reports, the manifest or the logs.
Run with Debian's /usr/bin/python3 (python3-h5py, python3-pydicom, python3-numpy)."""
import glob
import hashlib
import hmac
import os
import re
import sys

import h5py
import numpy as np
import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from oracle import tap  # noqa: E402

run, key = sys.argv[1], sys.argv[2].encode()


def table(name):
    return oracle.table(run, name)


patients = table("truth/patients.csv")
slices = table("truth/slices.csv")
vessels = table("truth/vessels.csv")
faults = table("truth/faults.csv")
report = table("ingest_report.csv")
labels = table("labels.csv")

pseudo = {p["patient_id"]: hmac.new(key, p["patient_id"].encode(), hashlib.sha256).hexdigest()[:16]
          for p in patients}

h = h5py.File(os.path.join(run, "cohort.h5"), "r")
tap(h.attrs["schema"] == b"onfh-cohort-1" or h.attrs["schema"] == "onfh-cohort-1",
    "cohort.h5 declares its schema")
got = sorted(x.decode() for x in h["/patients/pseudonym"][:])
tap(got == sorted(pseudo.values()), f"{len(got)} patients, each the keyed pseudonym of its PatientID",
    f"{got} vs {sorted(pseudo.values())}")

# vessel series: every truth volume appears, voxel for voxel (stored as rescaled floats)
role = h["/series/role"][:]
offsets = h["/series/native_offset"][:]
rows, cols, nsl = h["/series/rows"][:], h["/series/columns"][:], h["/series/n_slices"][:]
vox = h["/native/voxels"]
got_hashes = set()
for s in np.nonzero(role == 2)[0]:
    size = int(rows[s]) * int(cols[s]) * int(nsl[s])
    v = vox[offsets[s]:offsets[s] + size]
    got_hashes.add(hashlib.sha256(v.astype("<u2").tobytes()).hexdigest())
want_hashes = {v["pixels_sha256"] for v in vessels}
tap(got_hashes == want_hashes, f"{len(want_hashes)} vessel series: every native volume equals "
    "the generator's pixels", f"{len(got_hashes & want_hashes)} of {len(want_hashes)} match")

# training slices: all coronal T1 slices of every visit; labels as labels.csv says
n_t1 = len(slices)
img = h["/slices/image"]
tap(img.shape[0] == n_t1 and img.shape[1] == img.shape[2] == int(h.attrs["grid_size"]),
    f"{n_t1} training slices on a {img.shape[1]}-pixel grid", img.shape)
sample = img[:: max(1, n_t1 // 25)]
tap(bool(np.isfinite(sample).all()) and abs(float(sample.mean())) < 2,
    "training images are finite and normalised")
lab = h["/slices/label"][:]
want = {"lesion": sum(r["label"] == "lesion" for r in labels),
        "normal": sum(r["label"] == "normal" for r in labels)}
tap(int((lab == 1).sum()) == want["lesion"] and int((lab == 0).sum()) == want["normal"] and
    int((lab == -1).sum()) == n_t1 - len(labels),
    f"labels: {want['lesion']} lesion, {want['normal']} normal, the rest unlabelled",
    (int((lab == 1).sum()), int((lab == 0).sum()), int((lab == -1).sum())))
valid = h["/slices/valid"][:]
tap(bool((valid == 1).all()), "every training slice decoded")

# faults: the truth's verdict for each, under the report's de-identified path
def safe(path):
    parts = []
    for part in path.split("/"):
        if part in pseudo:
            parts.append(pseudo[part])
        else:
            parts.append(re.sub(r"(?<!\d)(19|20)\d{6}(?!\d)", "date", part))
    return "/".join(parts)


by_path = {r["path"]: r["verdict"] for r in report}
wrong = []
for f in faults:
    p = safe(f["path"])
    if f["verdict"] == "ingest":
        if any(r.startswith(p) for r in by_path):
            wrong.append(f"{p}: should have been ingested")
    elif by_path.get(p) != f["verdict"]:
        wrong.append(f"{p}: {by_path.get(p)} instead of {f['verdict']}")
tap(not wrong, f"all {len(faults)} planted faults reach their verdict", "\n".join(wrong))

# PHI: identifiers from the DICOM headers appear in no output
secrets = set()
for path in glob.glob(os.path.join(run, "raw", "site*", "*", "*", "03_*", "IM0001.dcm")):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    secrets |= {str(ds.PatientID), str(ds.PatientName), str(ds.PatientBirthDate)}
    secrets |= {str(ds.PatientName).split("^")[0]}
secrets = {s for s in secrets if len(s) >= 4}
outputs = [os.path.join(run, f) for f in ("cohort.h5", "ingest_report.csv", "ingest_report.json",
                                           "manifest.json")]
outputs += glob.glob(os.path.join(run, "logs", "*"))
leaks = []
for path in outputs:
    data = open(path, "rb").read()
    for s in secrets:
        if s.encode() in data:
            leaks.append(f"{os.path.relpath(path, run)} contains {s!r}")
tap(len(secrets) > 5 and not leaks,
    f"no PatientID, name or birth date ({len(secrets)} strings) in cohort.h5, reports, manifest "
    "or logs", "\n".join(leaks))
oracle.plan()
