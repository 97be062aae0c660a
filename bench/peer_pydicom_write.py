#!/usr/bin/python3
"""peer_pydicom_write.py N ROWS DIR: the peer for `onfh synth` throughput: pydicom (Debian's
python3-pydicom, numpy) writing N MR slices of ROWS x ROWS uint16 in Explicit VR Little Endian,
with the same attributes onfh writes, noise pixels from numpy. Prints slices/s. This is the cost
of the writing alone, with no phantom to render: a floor for a Python generator."""
import os
import sys
import time

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

n, rows, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)
t0 = time.perf_counter()
for i in range(n):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "SYNTH^BENCH"
    ds.PatientID = "B%07d" % (i // 40)
    ds.Modality = "MR"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.InstanceNumber = i % 40 + 1
    ds.ImagePositionPatient = [-180.0, float(i % 40), 150.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.PixelSpacing = [2.8125, 2.8125]
    ds.SliceThickness = 1.6
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, (rows, rows), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(os.path.join(out, "IM%06d.dcm" % i), write_like_original=False)
dt = time.perf_counter() - t0
print(f"{n / dt:.0f}")
