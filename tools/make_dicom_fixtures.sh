#!/bin/sh
# make_dicom_fixtures.sh: regenerates tests/fixtures/dicom, the files test_dicom_read decodes.
#
#   1. the uncompressed sources, written by onfh's own writer (test_dicom_read --emit-sources);
#   2. those compressed by independent encoders: dcmtk (dcmcjpeg, dcmcjpls, dcmcrle) and GDCM
#      (gdcmconv), in every syntax onfh decodes, with other predictors, a point transform,
#      several fragments per frame without an offset table, near-lossless and lossy variants,
#      and a 12-bit JPEG that onfh must refuse;
#   3. a few of pydicom's own test files (MIT licence: see LICENSE.pydicom);
#   4. expect.csv: what pydicom says each decodes to (tools/dicom_fixture_expect.py).
#
# Needs dcmtk, libgdcm-tools, python3-pydicom and a built test (make build/rel/tests/test_dicom_read);
# `make test` does not run this, it only reads what it made (committed). Output is deterministic
# apart from the UIDs dcmtk gives lossy files.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/tests/fixtures/dicom
build=${ONFH_BUILD:-$root/build/rel}
pyd=/usr/lib/python3/dist-packages/pydicom/data/test_files
for tool in dcmcjpeg dcmcjpls dcmcrle dcmdjpeg dcmdjpls gdcmconv; do
    command -v $tool >/dev/null || { echo "make_dicom_fixtures: $tool is missing (apt-get install dcmtk libgdcm-tools)" >&2; exit 1; }
done
[ -d "$pyd" ] || { echo "make_dicom_fixtures: no pydicom test files at $pyd (apt-get install python3-pydicom)" >&2; exit 1; }
make -C "$root" --no-print-directory "${build#$root/}/tests/test_dicom_read" >/dev/null

mkdir -p "$out"
rm -f "$out"/*.dcm "$out"/expect.csv
"$build/tests/test_dicom_read" --emit-sources "$out" >/dev/null
cd "$out"

# JPEG lossless (own decoder), by dcmtk: SV1 (.70), process 14 with predictors 2-7 (.57), point
# transform 2, signed data, 3 frames in 1 KiB fragments with an empty offset table; by GDCM.
dcmcjpeg +e1 src_mr16.dcm jpll_sv1.dcm
for sv in 2 3 4 5 6 7; do
    dcmcjpeg +el +sv $sv src_mr16.dcm jpll_p14_sv$sv.dcm
done
dcmcjpeg +el +sv 1 +pt 2 src_mr16.dcm jpll_pt2.dcm
dcmcjpeg +e1 src_mr16_signed.dcm jpll_signed.dcm
dcmcjpeg +e1 +fs 1 -ot src_mf.dcm jpll_mf_frag.dcm
gdcmconv --jpeg src_mr16_signed.dcm jpll_gdcm_signed.dcm
# JPEG baseline (GDCM: dcmtk's lossy encoder rescales the values) and extended 8-bit; 12-bit
# extended, which the 8-bit system libjpeg cannot decode.
gdcmconv --jpeg --lossy -q 90 src_mr8.dcm jpeg_baseline.dcm 2>/dev/null
dcmcjpeg -q +ee src_mr8.dcm jpeg_extended8.dcm
dcmcjpeg -q +ee src_mr16.dcm jpeg_extended12.dcm
# JPEG-LS (CharLS): lossless, near-lossless 2 (dcmtk) and 3 (GDCM), fragmented multi-frame.
dcmcjpls src_mr16.dcm jpls_lossless.dcm
dcmcjpls +en +md 2 src_mr16.dcm jpls_near2.dcm
gdcmconv --jpegls --lossy -e 3 src_mr16.dcm jpls_gdcm_near3.dcm 2>/dev/null
dcmcjpls +fs 1 -ot src_mf.dcm jpls_mf_frag.dcm
# RLE (own decoder) by two other encoders; JPEG 2000 (OpenJPEG) lossless and lossy.
dcmcrle src_mr16.dcm rle_dcmtk.dcm
gdcmconv --rle src_mf.dcm rle_gdcm_mf.dcm
gdcmconv --j2k src_mr16.dcm j2k_lossless.dcm
gdcmconv --j2k --lossy -q 80 src_mr16.dcm j2k_lossy.dcm 2>/dev/null

for f in MR_small.dcm MR_small_implicit.dcm MR_small_bigendian.dcm MR_small_RLE.dcm \
    MR_small_jp2klossless.dcm MR_small_jpeg_ls_lossless.dcm MR_small_padded.dcm MR_truncated.dcm \
    CT_small.dcm image_dfl.dcm ExplVR_BigEndNoMeta.dcm ExplVR_LitEndNoMeta.dcm UN_sequence.dcm \
    priv_SQ.dcm nested_priv_SQ.dcm JPEG2000.dcm J2K_pixelrep_mismatch.dcm 693_J2KI.dcm \
    JPGExtended.dcm SC_rgb_jpeg_gdcm.dcm SC_rgb_rle_16bit_2frame.dcm "SC_rgb_dcmtk_+eb+cy+np.dcm" \
    "SC_rgb_dcmtk_+eb+cr.dcm" SC_rgb_gdcm_KY.dcm rtdose_rle_1frame.dcm; do
    cp "$pyd/$f" .
done

/usr/bin/python3 "$root/tools/dicom_fixture_expect.py" "$out"
echo "make_dicom_fixtures: $(ls "$out"/*.dcm | wc -l) files, $(du -sh "$out" | cut -f1)"
