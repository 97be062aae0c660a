#!/usr/bin/python3
"""check_dicom.py: pydicom's verdict on the sample files that onfh's DICOM writer produced.

Usage: /usr/bin/python3 tools/check_dicom.py DIR [NAME...]

DIR holds the files and the manifest.txt written by `test_dicom_write --emit DIR` (one line per
file: name, transfer syntax UID, form, lengths, kind). Form is part10, no-preamble or
dataset-only, or "transcoded" for a Part 10 file rewritten by another tool (dcmdrle), whose
preamble and implementation UID are that tool's. For each file (or only the NAMEs given)
this prints one TAP line without a number, "ok - ..." or "not ok - ...", followed by "# ..."
lines naming every mismatch; tests/integration/dicom_readers.sh numbers them. With the series
files present it adds one line for the geometry across the series.

pydicom is an independent reader: what is checked here is what a third party reads back, not
what onfh meant to write. The expected values are those of sample_params() and add_extras() in
tests/unit/test_dicom_write.c (change both together). UIDs are recomputed here with hashlib from
the same seeds, which checks onfh's UID derivation as well.

Needs Debian's pydicom and numpy, so run it with /usr/bin/python3 (the python3 first on PATH
may be another interpreter without them).
"""
import hashlib
import os
import sys
import zlib

import numpy as np
import pydicom
from pydicom.datadict import add_private_dict_entries
from pydicom.pixel_data_handlers.util import apply_modality_lut

# The private dictionary of the "ONFH SYNTH" block, so that pydicom can give Implicit VR
# private elements their VRs (it reads them as UN otherwise).
add_private_dict_entries("ONFH SYNTH", {
    0x00291010: ("LO", "1", "Cohort Label", ""),
    0x00291011: ("US", "1", "Cohort Version", ""),
    0x00291012: ("FD", "1", "Cohort Scale", ""),
    0x00291020: ("SQ", "1", "Finding Sequence", ""),
    0x00291021: ("LO", "1", "Finding Label", ""),
    0x00291022: ("SQ", "1", "Finding Detail Sequence", ""),
    0x00291023: ("SS", "1", "Finding Code", ""),
    0x00291030: ("SQ", "1", "Empty Sequence", ""),
})

ROWS, COLUMNS = 48, 64
MF_FRAMES, MF_ROWS, MF_COLUMNS = 3, 5, 7
IMPLEMENTATION_VERSION = "ONFH_DICOM_1"


def uid_from_seed(seed):
    """2.25 + the 128-bit integer of SHA-256(seed)[:16] with UUID version 8 and variant 10."""
    d = bytearray(hashlib.sha256(seed.encode()).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x80
    d[8] = (d[8] & 0x3F) | 0x80
    return "2.25.%d" % int.from_bytes(d, "big")


def sample_pixels():
    r, c = np.mgrid[0:ROWS, 0:COLUMNS]
    px = (r * 61 + c * 7 + (r * c) % 17) % 4096
    px[r % 8 == 0] = 1000
    return px.astype(np.uint16)


def multiframe_pixels(bits):
    f, r, c = np.mgrid[0:MF_FRAMES, 0:MF_ROWS, 0:MF_COLUMNS]
    if bits == 8:
        return ((f * 50 + r * 7 + c) & 0xFF).astype(np.uint8)
    return (f * 1000 + r * 70 + c * 3 + np.where(c == 3, 40000, 0)).astype(np.uint16)


def mr_expected(k):
    """Attribute keyword -> expected value for slice k of the sample series."""
    return {
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4",
        "SOPInstanceUID": uid_from_seed("onfh-test/instance/%d" % k),
        "StudyInstanceUID": uid_from_seed("onfh-test/study"),
        "SeriesInstanceUID": uid_from_seed("onfh-test/series"),
        "FrameOfReferenceUID": uid_from_seed("onfh-test/frame-of-reference"),
        "PatientID": "ONFH-P0001",
        "PatientName": "SYNTH^P0001",
        "PatientBirthDate": "19700101",
        "PatientSex": "F",
        "StudyDate": "20250314",
        "StudyTime": "101500",
        "SeriesDate": "20250314",
        "ContentDate": "20250314",
        "AcquisitionDate": "20250314",
        "AcquisitionTime": "102000",
        "StudyID": "S1",
        "AccessionNumber": "A0001",
        "ReferringPhysicianName": "",
        "StudyDescription": "HIP MRI",
        "Modality": "MR",
        "Manufacturer": "ONFH",
        "ManufacturerModelName": "SYNTH",
        "SeriesDescription": "COR T1 SE HIP",
        "ProtocolName": "hip_t1_cor",
        "SeriesNumber": 3,
        "InstanceNumber": k,
        "PatientPosition": "HFS",
        "BodyPartExamined": "HIP",
        "Laterality": "R",
        "PositionReferenceIndicator": "",
        "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
        "ImagePositionPatient": [-120.5, 10.25 + 3.5 * (k - 1), 95.0],
        "ImageOrientationPatient": [1, 0, 0, 0, 0, -1],
        "PixelSpacing": [0.7, 0.8],
        "SliceThickness": 3.0,
        "SpacingBetweenSlices": 3.5,
        "Rows": ROWS,
        "Columns": COLUMNS,
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 12,
        "HighBit": 11,
        "PixelRepresentation": 0,
        "RescaleSlope": 2.5,
        "RescaleIntercept": -10.0,
        "WindowCenter": 1200.0,
        "WindowWidth": 2400.0,
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "FS",
        "MRAcquisitionType": "2D",
        "RepetitionTime": 600.0,
        "EchoTime": 12.0,
        "EchoTrainLength": 1,
        "MagneticFieldStrength": 3.0,
        "ImagingFrequency": 127.74,
        "FlipAngle": 90.0,
        "NumberOfAverages": 2.0,
    }


def same(got, want):
    if isinstance(want, list):
        got = list(got) if isinstance(got, (list, pydicom.multival.MultiValue)) else [got]
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return abs(float(got) - want) < 1e-9
    if isinstance(want, int):
        return int(got) == want
    return str(got) == want


class Check:
    """Collects the problems found in one file."""

    def __init__(self):
        self.problems = []

    def expect(self, cond, what):
        if not cond:
            self.problems.append(what)
        return cond


def check_layout(c, raw, ts, form):
    """The bytes before the data set: preamble, DICM, meta group length, deflate stream."""
    if form == "transcoded":  # another tool's Part 10 file: its preamble is its business
        c.expect(raw[128:132] == b"DICM", "no DICM at 128")
        meta = 132
    elif form == "part10":
        c.expect(raw[:128] == bytes(128), "preamble is not 128 zero bytes")
        c.expect(raw[128:132] == b"DICM", "no DICM at 128")
        meta = 132
    elif form == "no-preamble":
        c.expect(raw[:6] == b"\x02\x00\x00\x00UL", "does not start with (0002,0000) UL")
        meta = 0
    else:
        big = ts == "1.2.840.10008.1.2.2"
        first = b"\x00\x08" if big else b"\x08\x00"
        c.expect(raw[:2] == first, "data set does not start with group 0008")
        return
    group_length = int.from_bytes(raw[meta + 8:meta + 12], "little")
    body = raw[meta + 12 + group_length:]
    if ts == "1.2.840.10008.1.2.1.99":
        c.expect(len(raw) % 2 == 0, "deflated file has odd length")
        try:
            body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)
        except zlib.error as e:
            c.expect(False, "raw inflate failed: %s" % e)
            return
    big = ts == "1.2.840.10008.1.2.2"
    first = b"\x00\x08" if big else b"\x08\x00"
    c.expect(body[:2] == first, "group length %d does not lead to the data set" % group_length)


def check_meta(c, ds, ts, form):
    if form == "dataset-only":
        big = ts == "1.2.840.10008.1.2.2"
        implicit = ts == "1.2.840.10008.1.2"
        c.expect(ds.is_little_endian != big, "pydicom guessed the wrong byte order")
        c.expect(ds.is_implicit_VR == implicit, "pydicom guessed the wrong VR form")
        # No meta to name the syntax: tell the pixel handler what the file is.
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
        return
    m = ds.file_meta
    c.expect(m.get("TransferSyntaxUID") == ts, "TransferSyntaxUID %s" % m.get("TransferSyntaxUID"))
    c.expect(m.get("FileMetaInformationVersion") == b"\x00\x01", "FileMetaInformationVersion")
    c.expect(m.get("MediaStorageSOPClassUID") == ds.SOPClassUID, "MediaStorageSOPClassUID")
    c.expect(m.get("MediaStorageSOPInstanceUID") == ds.SOPInstanceUID,
             "MediaStorageSOPInstanceUID")
    if form == "transcoded":
        return  # the transcoding tool names itself
    c.expect(m.get("ImplementationClassUID") == uid_from_seed("onfh implementation class uid"),
             "ImplementationClassUID %s" % m.get("ImplementationClassUID"))
    c.expect(m.get("ImplementationVersionName") == IMPLEMENTATION_VERSION,
             "ImplementationVersionName")


def check_mr(c, ds, k, extras):
    for keyword, want in mr_expected(k).items():
        got = ds.get(keyword)
        c.expect(got is not None and same(got, want), "%s = %r, want %r" % (keyword, got, want))
    arr = ds.pixel_array
    # Compare kind and size, not byte order: pydicom keeps big-endian data as '>u2'.
    c.expect(arr.dtype.kind == "u" and arr.dtype.itemsize == 2 and arr.shape == (ROWS, COLUMNS),
             "pixel_array %s %s" % (arr.dtype, arr.shape))
    if arr.shape == (ROWS, COLUMNS):
        bad = np.argwhere(arr != sample_pixels())
        c.expect(len(bad) == 0, "%d pixels differ, first at %s" % (len(bad), bad[:1].tolist()))
        hu = apply_modality_lut(arr, ds)
        c.expect(np.allclose(hu, arr * 2.5 - 10), "modality LUT (slope, intercept) not applied")
    for uid in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        v = str(ds.get(uid, ""))
        c.expect(len(v) <= 64 and all(p == "0" or not p.startswith("0") for p in v.split(".")),
                 "%s %s is not a valid UID" % (uid, v))
    if extras:
        check_extras(c, ds)


def check_extras(c, ds):
    """Private tags and nested sequences (add_extras in the unit test)."""
    try:
        block = ds.private_block(0x0029, "ONFH SYNTH")
        c.expect(block[0x10].value == "synthetic cohort", "(0029,1010) %r" % block[0x10].value)
        c.expect(block[0x11].value == 7, "(0029,1011) %r" % block[0x11].value)
        c.expect(block[0x12].value == 3.25, "(0029,1012) %r" % block[0x12].value)
        item = block[0x20].value[0]
        inner = item.private_block(0x0029, "ONFH SYNTH")
        c.expect(inner[0x21].value == "lesion", "(0029,1021) %r" % inner[0x21].value)
        deeper = inner[0x22].value[0].private_block(0x0029, "ONFH SYNTH")
        c.expect(deeper[0x23].value == -5, "(0029,1023) %r" % deeper[0x23].value)
        c.expect(len(block[0x30].value) == 0, "(0029,1030) should be an empty sequence")
        req = ds.RequestAttributesSequence[0]
        c.expect(req.RequestedProcedureID == "RP0001", "RequestedProcedureID")
        c.expect(req.ScheduledProcedureStepID == "SPS0001", "ScheduledProcedureStepID")
        code = req.ScheduledProtocolCodeSequence[0]
        c.expect((code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) ==
                 ("ONFH01", "99ONFH", "MRI of hip"), "ScheduledProtocolCodeSequence item")
    except (KeyError, AttributeError, IndexError, TypeError) as e:
        c.expect(False, "private or nested element missing: %r" % e)


def check_multiframe(c, ds, bits):
    c.expect(int(ds.NumberOfFrames) == MF_FRAMES, "NumberOfFrames")
    arr = ds.pixel_array
    want = multiframe_pixels(bits)
    c.expect(arr.dtype.kind == "u" and arr.dtype.itemsize == want.itemsize and
             arr.shape == want.shape,
             "pixel_array %s %s" % (arr.dtype, arr.shape))
    if arr.shape == want.shape:
        c.expect(np.array_equal(arr, want), "%d pixels differ" % int((arr != want).sum()))


def check_file(path, ts, form, kind):
    c = Check()
    with open(path, "rb") as f:
        raw = f.read()
    check_layout(c, raw, ts, form)
    ds = pydicom.dcmread(path, force=form not in ("part10", "transcoded"))
    check_meta(c, ds, ts, form)
    if kind in ("mr", "series"):
        check_mr(c, ds, int(ds.get("InstanceNumber", 0)), kind == "mr")
    else:
        check_multiframe(c, ds, 8 if kind == "mf8" else 16)
    return c.problems, ds


def check_series(datasets):
    """Geometry across the series: parallel planes, spacing from IPP along the normal."""
    c = Check()
    iop = [np.array(ds.ImageOrientationPatient, float) for ds in datasets]
    c.expect(all(np.allclose(o, iop[0]) for o in iop), "orientation differs between slices")
    normal = np.cross(iop[0][:3], iop[0][3:])
    c.expect(np.allclose(normal, [0, 1, 0]), "slice normal %s, want (0, 1, 0)" % normal)
    pos = sorted(float(np.dot(np.array(ds.ImagePositionPatient, float), normal))
                 for ds in datasets)
    gaps = np.diff(pos)
    c.expect(len(pos) == 3 and np.allclose(gaps, 3.5), "IPP spacing along the normal %s" % gaps)
    c.expect(all(np.isclose(float(ds.SpacingBetweenSlices), 3.5) for ds in datasets),
             "SpacingBetweenSlices")
    c.expect(len({ds.SeriesInstanceUID for ds in datasets}) == 1, "SeriesInstanceUID differs")
    c.expect(len({ds.FrameOfReferenceUID for ds in datasets}) == 1, "FrameOfReferenceUID differs")
    c.expect(len({ds.SOPInstanceUID for ds in datasets}) == len(datasets), "SOPInstanceUID reused")
    c.expect(sorted(int(ds.InstanceNumber) for ds in datasets) == [1, 2, 3], "InstanceNumber")
    return c.problems


def report(ok, what, problems):
    print("%s - %s" % ("ok" if ok else "not ok", what))
    for p in problems[:20]:
        print("#   %s" % p)
    sys.stdout.flush()


def main(argv):
    if len(argv) < 2:
        print("usage: check_dicom.py DIR [NAME...]", file=sys.stderr)
        return 2
    folder, only = argv[1], set(argv[2:])
    failed = 0
    series = []
    with open(os.path.join(folder, "manifest.txt")) as f:
        entries = [line.split() for line in f if line.strip()]
    for name, ts, form, lengths, kind in entries:
        if only and name not in only:
            continue
        what = "pydicom reads %s (%s, %s, %s lengths): transfer syntax, attributes, pixels" % (
            name, ts, form, lengths)
        try:
            problems, ds = check_file(os.path.join(folder, name), ts, form, kind)
        except Exception as e:  # a reader exception is a failed check, with its reason
            problems, ds = ["pydicom raised %s: %s" % (type(e).__name__, e)], None
        report(not problems, what, problems)
        failed += bool(problems)
        if kind == "series" and ds is not None:
            series.append(ds)
    if len(series) > 1:
        problems = check_series(series)
        report(not problems, "pydicom: series geometry (orientation, IPP spacing, UIDs)", problems)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
