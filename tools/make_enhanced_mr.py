#!/usr/bin/python3
"""make_enhanced_mr.py SERIES_DIR OUT.dcm [--order shuffle|reverse] [--intercepts STEP]
[--rle] [--drop-position K] [--description TEXT]: one Enhanced MR Image Storage file (multi-frame, SOP class
1.2.840.10008.5.1.4.1.1.4.1) from a folder of classic MR slices, made with pydicom, independent of
onfh's writer, for ingest's tests.

The frames are the slices' stored values, in the order asked (shuffled by a fixed seed, or
reversed) so ingest must order them by position. Geometry goes where the Enhanced MR IOD puts it:
PixelSpacing, SliceThickness and ImageOrientationPatient in the Shared Functional Groups, each
frame's ImagePositionPatient in its Per-frame Functional Groups item. --intercepts STEP gives frame
k its own RescaleIntercept (source intercept + STEP * k) in its per-frame Pixel Value
Transformation item, so a reader that applies one rescale to every frame is caught. --rle encodes
the pixels RLE Lossless (pydicom's encoder); --drop-position K leaves frame K (1-based) without a
position; --description replaces the SeriesDescription. The series gets a new SeriesInstanceUID (derived from the source's), the instance a new
SOPInstanceUID; patient and study are the source's. Prints the SOPInstanceUID.

The file carries what ingest reads (identity, image pixel module, functional groups), not every
module the Enhanced MR IOD requires (dciodvfy lists the MR-specific macros as missing)."""
import argparse
import glob
import os
import random

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"

ap = argparse.ArgumentParser()
ap.add_argument("series_dir")
ap.add_argument("out")
ap.add_argument("--order", choices=["shuffle", "reverse"], default="shuffle")
ap.add_argument("--intercepts", type=float, default=0.0)
ap.add_argument("--rle", action="store_true")
ap.add_argument("--drop-position", type=int, default=0)
ap.add_argument("--description")
a = ap.parse_args()

src = [pydicom.dcmread(p) for p in sorted(glob.glob(os.path.join(a.series_dir, "*")))]
if a.order == "shuffle":
    random.Random(7).shuffle(src)
else:
    src.reverse()
first = src[0]

ds = Dataset()
for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
           "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
           "Manufacturer", "ManufacturerModelName", "SeriesDescription", "SeriesNumber",
           "FrameOfReferenceUID", "MagneticFieldStrength"):
    if kw in first:
        setattr(ds, kw, first.data_element(kw).value)
if a.description:
    ds.SeriesDescription = a.description
ds.SOPClassUID = ENHANCED_MR
ds.SOPInstanceUID = generate_uid(entropy_srcs=[first.SeriesInstanceUID, a.out, "sop"])
ds.SeriesInstanceUID = generate_uid(entropy_srcs=[first.SeriesInstanceUID, a.out, "series"])
ds.Modality = "MR"
ds.InstanceNumber = 1
ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
ds.ContentDate = first.StudyDate
ds.ContentTime = first.get("StudyTime", "000000")
ds.AcquisitionDateTime = first.StudyDate + "000000"
ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = "MONOCHROME2"
ds.Rows, ds.Columns = first.Rows, first.Columns
ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, first.BitsStored, first.HighBit
ds.PixelRepresentation = first.PixelRepresentation
ds.NumberOfFrames = len(src)

measures = Dataset()
measures.PixelSpacing = list(first.PixelSpacing)
measures.SliceThickness = first.get("SliceThickness", 1.0)
orient = Dataset()
orient.ImageOrientationPatient = list(first.ImageOrientationPatient)
shared = Dataset()
shared.PixelMeasuresSequence = Sequence([measures])
shared.PlaneOrientationSequence = Sequence([orient])
ds.SharedFunctionalGroupsSequence = Sequence([shared])

per = []
slope0 = float(first.get("RescaleSlope", 1))
icpt0 = float(first.get("RescaleIntercept", 0))
for k, s in enumerate(src):
    item = Dataset()
    if k + 1 != a.drop_position:
        pos = Dataset()
        pos.ImagePositionPatient = list(s.ImagePositionPatient)
        item.PlanePositionSequence = Sequence([pos])
    pvt = Dataset()
    pvt.RescaleSlope = slope0
    pvt.RescaleIntercept = icpt0 + a.intercepts * k
    pvt.RescaleType = "US"
    item.PixelValueTransformationSequence = Sequence([pvt])
    content = Dataset()
    content.InStackPositionNumber = k + 1
    item.FrameContentSequence = Sequence([content])
    per.append(item)
ds.PerFrameFunctionalGroupsSequence = Sequence(per)

frames = np.stack([s.pixel_array for s in src]).astype("<u2")
ds.file_meta = FileMetaDataset()
ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.is_little_endian, ds.is_implicit_VR = True, False
if a.rle:
    ds.compress(RLELossless, frames)
else:
    ds.PixelData = frames.tobytes()
ds.preamble = b"\0" * 128
ds.save_as(a.out, write_like_original=False)
print(ds.SOPInstanceUID)
