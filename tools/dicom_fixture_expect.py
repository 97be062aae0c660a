#!/usr/bin/python3
"""dicom_fixture_expect.py DIR: what pydicom says each DICOM fixture in DIR decodes to.

Writes DIR/expect.csv, read by tests/unit/test_dicom_read.c: for each fixture its expected
outcome, transfer syntax, image size, the SHA-256 of its pixels (the decoded stored values as
little-endian 16-bit words, int16 for signed data, samples interleaved, frames in order), and,
for lossy files, a lossless reference file and the largest error allowed against it, plus the
first frame's ImagePositionPatient, ImageOrientationPatient and PixelSpacing.

The pixels come from pydicom (numpy, its RLE handler, Pillow for JPEG baseline and JPEG 2000).
Where this pydicom has no decoder (JPEG lossless, JPEG-LS), they come from pydicom reading an
independent decompression: the uncompressed source the lossless fixture was made from, or the
file decompressed by dcmtk (dcmdjpeg, dcmdjpls). Run by tools/make_dicom_fixtures.sh, with the
system Python (/usr/bin/python3) that has pydicom and numpy.
"""
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings

import numpy
import pydicom
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

warnings.simplefilter("ignore")

# name, how its pixels are known, lossless reference for lossy files, allowed error (None: the
# error pydicom's own decode shows), outcome. How:
#   pydicom        pydicom decodes the file itself
#   same:F         a lossless copy of F (pydicom decodes F)
#   pt:N:F         F with point transform N (lossless JPEG, low N bits dropped)
#   dcmtk:TOOL     decompressed by dcmtk's TOOL, then read by pydicom
#   -              no pixels expected (outcome refused, truncated or error)
FIXTURES = [
    # made from the writer's output by make_dicom_fixtures.sh
    ("src_mr16.dcm", "pydicom", "", None, "ok"),
    ("src_mr16_signed.dcm", "pydicom", "", None, "ok"),
    ("src_mr8.dcm", "pydicom", "", None, "ok"),
    ("src_mf.dcm", "pydicom", "", None, "ok"),
    ("src_enhanced.dcm", "pydicom", "", None, "ok"),
    ("jpll_sv1.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv2.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv3.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv4.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv5.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv6.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_p14_sv7.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpll_pt2.dcm", "pt:2:src_mr16.dcm", "", None, "ok"),
    ("jpll_signed.dcm", "same:src_mr16_signed.dcm", "", None, "ok"),
    ("jpll_gdcm_signed.dcm", "same:src_mr16_signed.dcm", "", None, "ok"),
    ("jpll_mf_frag.dcm", "same:src_mf.dcm", "", None, "ok"),
    ("jpeg_baseline.dcm", "pydicom", "src_mr8.dcm", None, "ok"),
    ("jpeg_extended8.dcm", "pydicom", "", None, "ok"),
    ("jpeg_extended12.dcm", "-", "", None, "refused"),
    ("jpls_lossless.dcm", "same:src_mr16.dcm", "", None, "ok"),
    ("jpls_near2.dcm", "dcmtk:dcmdjpls", "src_mr16.dcm", 2, "ok"),
    ("jpls_gdcm_near3.dcm", "dcmtk:dcmdjpls", "src_mr16.dcm", 3, "ok"),
    ("jpls_mf_frag.dcm", "same:src_mf.dcm", "", None, "ok"),
    ("rle_dcmtk.dcm", "pydicom", "", None, "ok"),
    ("rle_gdcm_mf.dcm", "pydicom", "", None, "ok"),
    ("j2k_lossless.dcm", "pydicom", "", None, "ok"),
    ("j2k_lossy.dcm", "pydicom", "src_mr16.dcm", None, "ok"),
    # pydicom's test files (see LICENSE.pydicom)
    ("MR_small.dcm", "pydicom", "", None, "ok"),
    ("MR_small_implicit.dcm", "pydicom", "", None, "ok"),
    ("MR_small_bigendian.dcm", "pydicom", "", None, "ok"),
    ("MR_small_RLE.dcm", "pydicom", "", None, "ok"),
    ("MR_small_jp2klossless.dcm", "pydicom", "", None, "ok"),
    ("MR_small_jpeg_ls_lossless.dcm", "same:MR_small.dcm", "", None, "ok"),
    ("MR_small_padded.dcm", "pydicom", "", None, "ok"),
    ("MR_truncated.dcm", "-", "", None, "truncated"),
    ("CT_small.dcm", "pydicom", "", None, "ok"),
    ("image_dfl.dcm", "pydicom", "", None, "ok"),
    ("ExplVR_BigEndNoMeta.dcm", "-", "", None, "error"),
    ("ExplVR_LitEndNoMeta.dcm", "-", "", None, "error"),
    ("UN_sequence.dcm", "-", "", None, "error"),
    ("priv_SQ.dcm", "-", "", None, "error"),
    ("nested_priv_SQ.dcm", "-", "", None, "error"),
    ("JPEG2000.dcm", "pydicom", "", None, "ok"),
    ("J2K_pixelrep_mismatch.dcm", "pydicom", "", None, "ok"),
    ("693_J2KI.dcm", "pydicom", "", None, "ok"),
    ("JPGExtended.dcm", "-", "", None, "refused"),
    ("SC_rgb_jpeg_gdcm.dcm", "dcmtk:dcmdjpeg", "", None, "ok"),
    ("SC_rgb_rle_16bit_2frame.dcm", "pydicom", "", None, "ok"),
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "pydicom", "", None, "ok"),
    ("SC_rgb_dcmtk_+eb+cr.dcm", "pydicom", "", None, "ok"),
    ("SC_rgb_gdcm_KY.dcm", "pydicom", "", None, "ok"),
    ("rtdose_rle_1frame.dcm", "-", "", None, "refused"),
]


def ts_uid(ds):
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid:
        return str(uid)
    if ds.is_implicit_VR:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if ds.is_little_endian else ExplicitVRBigEndian


def pixels(ds):
    """Pixels as int64, frames x rows x columns x samples flattened in C order."""
    a = ds.pixel_array
    return numpy.asarray(a).astype(numpy.int64).ravel()


def words(ds, values):
    """The decoded values as the C test hashes them: little-endian 16-bit words."""
    if int(ds.PixelRepresentation) == 1:
        return values.astype("<i2").tobytes()
    return values.astype("<u2").tobytes()


def decompressed(path, tool):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "raw.dcm")
        subprocess.run([tool, path, out], check=True)
        return pixels(pydicom.dcmread(out))


def first_frame_geometry(ds):
    def pick(attr, macro):
        if attr in ds:
            return ds[attr].value
        for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
            if groups in ds and len(ds[groups].value):
                item = ds[groups].value[0]
                if macro in item and len(item[macro].value) and attr in item[macro].value[0]:
                    return item[macro].value[0][attr].value
        return None

    out = []
    for attr, macro in (
        ("ImagePositionPatient", "PlanePositionSequence"),
        ("ImageOrientationPatient", "PlaneOrientationSequence"),
        ("PixelSpacing", "PixelMeasuresSequence"),
    ):
        v = pick(attr, macro)
        out.append("\\".join(repr(float(x)) for x in v) if v is not None else "")
    return out


def main(folder):
    rows = []
    for name, how, ref, tol, outcome in FIXTURES:
        path = os.path.join(folder, name)
        ds = pydicom.dcmread(path, force=True, defer_size=None) if outcome != "truncated" else None
        row = {"file": name, "outcome": outcome, "ts_uid": ts_uid(ds) if ds is not None else ""}
        for k in ("rows", "columns", "frames", "samples", "bits_stored", "signed", "sha256",
                  "reference", "max_error", "position", "orientation", "spacing"):
            row[k] = ""
        if outcome == "ok":
            if how == "pydicom":
                values = pixels(ds)
            elif how.startswith("same:"):
                values = pixels(pydicom.dcmread(os.path.join(folder, how[5:])))
            elif how.startswith("pt:"):
                _, n, src = how.split(":")
                values = pixels(pydicom.dcmread(os.path.join(folder, src)))
                values = (values >> int(n)) << int(n)
            elif how.startswith("dcmtk:"):
                values = decompressed(path, how[6:])
            else:
                raise SystemExit(f"{name}: unknown source {how}")
            row.update(
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                frames=int(getattr(ds, "NumberOfFrames", 1) or 1),
                samples=int(ds.SamplesPerPixel),
                bits_stored=int(ds.BitsStored),
                signed=int(ds.PixelRepresentation),
                sha256=hashlib.sha256(words(ds, values)).hexdigest(),
            )
            if ref:
                want = pixels(pydicom.dcmread(os.path.join(folder, ref)))
                err = int(numpy.abs(values - want).max())
                if tol is not None and err > tol:
                    raise SystemExit(f"{name}: error {err} against {ref} exceeds {tol}")
                row.update(reference=ref, max_error=tol if tol is not None else err)
            pos, ori, spc = first_frame_geometry(ds)
            row.update(position=pos, orientation=ori, spacing=spc)
        rows.append(row)
    with open(os.path.join(folder, "expect.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"{os.path.join(folder, 'expect.csv')}: {len(rows)} fixtures")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: dicom_fixture_expect.py FIXTURE_DIR")
    main(sys.argv[1])
