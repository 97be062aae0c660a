/* dicom_ts.c: the transfer-syntax support matrix, the one table that says what onfh reads.
 *
 * Each row gives the encoding of the data set (VR explicit or not, byte order, deflate), whether
 * pixel data is encapsulated, and the decoder, or the reason a syntax is refused. The reader
 * takes its encoding from here, dicom_decode_frame its decoder, and the README's matrix is made
 * from it, so the three cannot disagree. A refused syntax is still parsed (its header is
 * reported, e.g. by ingest's per-file verdict); only its pixels are not decoded.
 *
 * Names are PS3.6 table A-1's. If you add a decoder, flip its row here and add a fixture under
 * tests/fixtures/dicom (tools/make_dicom_fixtures.sh). */
#include <string.h>

#include "lib/dicom/dicom.h"

#define ROW(uid, name, explicit_vr, big, deflated, encaps, supported, codec, decoder)              \
    {                                                                                              \
        uid, name, explicit_vr, big, deflated, encaps, supported, codec, decoder                   \
    }

static const DicomTsInfo ts_table[] = {
    ROW("1.2.840.10008.1.2", "Implicit VR Little Endian", 0, 0, 0, 0, 1, DICOM_CODEC_NATIVE,
        "native"),
    ROW("1.2.840.10008.1.2.1", "Explicit VR Little Endian", 1, 0, 0, 0, 1, DICOM_CODEC_NATIVE,
        "native"),
    ROW("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", 1, 0, 0, 1,
        1, DICOM_CODEC_NATIVE_FRAMES, "native frames in fragments"),
    ROW("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", 1, 0, 1, 0, 1,
        DICOM_CODEC_NATIVE, "native after zlib raw inflate"),
    ROW("1.2.840.10008.1.2.2", "Explicit VR Big Endian (retired)", 1, 1, 0, 0, 1,
        DICOM_CODEC_NATIVE, "native, byte-swapped"),
    ROW("1.2.840.10008.1.2.5", "RLE Lossless", 1, 0, 0, 1, 1, DICOM_CODEC_RLE,
        "own (dicom_rle_decode.c)"),
    ROW("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", 1, 0, 0, 1, 1, DICOM_CODEC_JPEG,
        "libjpeg-turbo"),
    ROW("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", 1, 0, 0, 1, 1, DICOM_CODEC_JPEG,
        "libjpeg-turbo, 8-bit only: 12-bit files are refused (the system libjpeg is "
        "8-bit; ingest skips them at the scan as unsupported_transfer_syntax)"),
    ROW("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", 1, 0, 0, 1, 1,
        DICOM_CODEC_JPEG_LOSSLESS, "own (dicom_jpegll.c)"),
    ROW("1.2.840.10008.1.2.4.70",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        1, 0, 0, 1, 1, DICOM_CODEC_JPEG_LOSSLESS, "own (dicom_jpegll.c)"),
    ROW("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", 1, 0, 0, 1, 1,
        DICOM_CODEC_JPEG_LS, "CharLS"),
    ROW("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", 1, 0, 0, 1, 1,
        DICOM_CODEC_JPEG_LS, "CharLS"),
    ROW("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", 1, 0, 0, 1, 1,
        DICOM_CODEC_J2K, "OpenJPEG"),
    ROW("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", 1, 0, 0, 1, 1, DICOM_CODEC_J2K,
        "OpenJPEG"),
    /* Refused. The retired JPEG processes and JPEG 2000 Part 2 are not met in MR archives;
     * video, JPIP and JPEG XL hold no frames a slice pipeline can use; HTJ2K would go through
     * OpenJPEG but has no test file here. */
    ROW("1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (retired)", 1, 0, 0, 1,
        0, DICOM_CODEC_NONE, "retired JPEG process"),
    ROW("1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (retired)", 1, 0, 0, 1,
        0, DICOM_CODEC_NONE, "retired JPEG process"),
    ROW("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component (Lossless Only)", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "JPEG 2000 Part 2"),
    ROW("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "JPEG 2000 Part 2"),
    ROW("1.2.840.10008.1.2.4.94", "JPIP Referenced", 1, 0, 0, 0, 0, DICOM_CODEC_NONE,
        "pixels are not in the file"),
    ROW("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", 1, 0, 1, 0, 0, DICOM_CODEC_NONE,
        "pixels are not in the file"),
    ROW("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile @ Main Level", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile @ High Level", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", 1, 0,
        0, 1, 0, DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", 1, 0,
        0, 1, 0, DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", 1, 0,
        0, 1, 0, DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", 1, 0, 0, 1,
        0, DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "video"),
    ROW("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", 1, 0, 0, 1, 0, DICOM_CODEC_NONE,
        "no JPEG XL decoder"),
    ROW("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", 1, 0, 0, 1, 0, DICOM_CODEC_NONE,
        "no JPEG XL decoder"),
    ROW("1.2.840.10008.1.2.4.112", "JPEG XL", 1, 0, 0, 1, 0, DICOM_CODEC_NONE,
        "no JPEG XL decoder"),
    ROW("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", 1,
        0, 0, 1, 0, DICOM_CODEC_NONE, "HTJ2K untested"),
    ROW("1.2.840.10008.1.2.4.202",
        "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", 1, 0, 0, 1,
        0, DICOM_CODEC_NONE, "HTJ2K untested"),
    ROW("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "HTJ2K untested"),
    ROW("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", 1, 0, 0, 1, 0,
        DICOM_CODEC_NONE, "no test file"),
};
#undef ROW

const DicomTsInfo *dicom_ts_table(size_t *n)
{
    *n = sizeof ts_table / sizeof ts_table[0];
    return ts_table;
}

const DicomTsInfo *dicom_ts_find(const char *uid)
{
    size_t n = strlen(uid);
    while (n && uid[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < sizeof ts_table / sizeof ts_table[0]; i++)
        if (strlen(ts_table[i].uid) == n && memcmp(ts_table[i].uid, uid, n) == 0)
            return &ts_table[i];
    return NULL;
}
