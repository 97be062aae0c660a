/* dicom_codec.h: what the reader's files share with each other and nobody else.
 *
 * The reader's own few dictionary entries (the enhanced multi-frame sequences it must recognise
 * in Implicit VR), and the interface every pixel decoder implements: one compressed frame in,
 * rows x columns x samples 16-bit values out, samples interleaved, checked against what the
 * data set says the frame holds. */
#ifndef ONFH_DICOM_CODEC_H
#define ONFH_DICOM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/err.h"

/* "(5200,9230) PerFrameFunctionalGroupsSequence": dicom__tag_label, with the reader's entries. */
DicomTagLabel dicom__label(uint32_t tag);
/* The VR of tags the reader needs and the writer's dictionary lacks, or 0. */
uint16_t dicom__reader_vr(uint32_t tag);

/* One frame for a decoder. */
typedef struct DicomCodecFrame {
    const uint8_t *data; /* the frame's fragments, joined */
    size_t len;
    uint32_t rows;
    uint32_t columns;
    unsigned samples;        /* SamplesPerPixel: 1 or 3 */
    unsigned bits_allocated; /* 8 or 16 */
    unsigned bits_stored;
    int is_signed;
    const char *photometric; /* PhotometricInterpretation, "" when absent */
    const char *file;        /* for messages */
    uint32_t frame;          /* 0-based, for messages */
    const char *ts_uid;
} DicomCodecFrame;

/* Each decoder writes rows x columns x samples values to out and the sample precision its stream
 * declares to *precision (0 for none), which bounds the bits the caller keeps. Errors are
 * ERR_FORMAT (bad or disagreeing stream, via dicom__codec_error), or ERR_NOMEM. */
typedef int (*DicomDecodeFn)(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e);

int dicom__decode_rle(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e);
int dicom__decode_jpeg_lossless(const DicomCodecFrame *f, uint16_t *out, unsigned *precision,
                                Err *e);
int dicom__decode_jpeg(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e);
int dicom__decode_jpegls(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e);
int dicom__decode_j2k(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e);

/* Sets e to code with "dicom: FILE: (7FE0,0010) PixelData: frame N: <codec>: <what>". */
int dicom__codec_error(const DicomCodecFrame *f, Err *e, int code, const char *codec,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The first SOF marker of a JPEG stream (0xC0..0xCF but C4, C8, CC) and its sample precision,
 * components, rows and columns; 0 if found, -1 if the stream has none before its first SOS. */
int dicom__jpeg_sof(const uint8_t *data, size_t len, unsigned *marker, unsigned *precision,
                    unsigned *components, unsigned *rows, unsigned *columns);

#endif
