/* dicom_decode.c: a file's pixels as 16-bit samples, whatever the transfer syntax (dicom.h).
 *
 * The image pixel module says what a frame must hold; the support matrix (dicom_ts.c) says who
 * decodes it. Native pixel data is sliced by frame; encapsulated pixel data is first cut into
 * frames (which fragments make frame k: the Extended Offset Table, else the Basic Offset Table,
 * else one fragment per frame, else everything for a single frame, else each fragment that
 * starts a JPEG or JPEG 2000 codestream starts a frame), the frame's fragments are joined and
 * handed to the decoder. Every decoder checks its stream's own header against the module, so a
 * frame never writes more than rows x columns x samples values.
 *
 * Afterwards the values are reduced to their stored bits: bits above BitsStored are not pixel
 * data (PS3.5 8.1.1; once overlays lived there), so they are cleared (unsigned) or made copies
 * of the sign bit (signed). A compressed stream's own precision can disagree with BitsStored;
 * then signed data is sign-extended from the narrower of the two (pydicom's reading of
 * J2K_pixelrep_mismatch.dcm, an unsigned 13-bit stream in a signed data set), and unsigned data
 * keeps the stream's width when it is wider (GDCM writes 16-bit JPEG 2000 for 12-bit data, and a
 * lossy overshoot above 4095 must not wrap to 0). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

int dicom__codec_error(const DicomCodecFrame *f, Err *e, int code, const char *codec,
                       const char *fmt, ...)
{
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(e, code, "dicom: %s: (7FE0,0010) PixelData: frame %u: %s: %s", f->file,
                   f->frame + 1, codec, what);
}

// ---------------------------------------------------------------------------------------------
// The image pixel module

/* An unsigned attribute in [lo, hi], dflt when absent (dflt < 0: required). */
static int module_value(const DicomFile *f, uint32_t tag, long dflt, long lo, long hi,
                        unsigned *out, Err *e)
{
    if (!dicom_find(f->ds, tag)) {
        if (dflt < 0)
            return err_set(e, ERR_FORMAT, "dicom: %s: %s: absent, the image needs it", f->name,
                           dicom__label(tag).s);
        *out = (unsigned)dflt;
        return ERR_OK;
    }
    long v;
    Err why = {0};
    if (dicom_get_long(f->ds, tag, &v, &why))
        return err_set(e, ERR_FORMAT, "dicom: %s: %s", f->name, why.msg + strlen("dicom: "));
    if (v < lo || v > hi)
        return err_set(e, ERR_FORMAT, "dicom: %s: %s: %ld, expected %ld to %ld", f->name,
                       dicom__label(tag).s, v, lo, hi);
    *out = (unsigned)v;
    return ERR_OK;
}

int dicom_image_info(const DicomFile *f, DicomImageInfo *info, Err *e)
{
    memset(info, 0, sizeof *info);
    unsigned rows = 0; /* set on success; -O3's inlining cannot tell */
    unsigned columns = 0;
    unsigned frames = 0;
    int rc;
    if ((rc = module_value(f, DICOM_TAG_ROWS, -1, 1, 65535, &rows, e)) ||
        (rc = module_value(f, DICOM_TAG_COLUMNS, -1, 1, 65535, &columns, e)) ||
        (rc = module_value(f, DICOM_TAG_SAMPLES_PER_PIXEL, 1, 1, 4, &info->samples_per_pixel, e)) ||
        (rc = module_value(f, DICOM_TAG_BITS_ALLOCATED, -1, 1, 64, &info->bits_allocated, e)) ||
        (rc = module_value(f, DICOM_TAG_BITS_STORED, info->bits_allocated, 1, info->bits_allocated,
                           &info->bits_stored, e)) ||
        (rc = module_value(f, DICOM_TAG_HIGH_BIT, info->bits_stored - 1, 0,
                           info->bits_allocated - 1, &info->high_bit, e)) ||
        (rc = module_value(f, DICOM_TAG_PIXEL_REPRESENTATION, 0, 0, 1, &info->pixel_representation,
                           e)) ||
        (rc = module_value(f, DICOM_TAG_PLANAR_CONFIGURATION, 0, 0, 1, &info->planar_configuration,
                           e)) ||
        (rc = module_value(f, DICOM_TAG_NUMBER_OF_FRAMES, 1, 1, 0x7FFFFFFF, &frames, e)))
        return rc;
    info->rows = rows;
    info->columns = columns;
    info->frames = frames;
    Err why = {0};
    if (dicom_find(f->ds, DICOM_TAG_PHOTOMETRIC_INTERPRETATION) &&
        dicom_get_string(f->ds, DICOM_TAG_PHOTOMETRIC_INTERPRETATION, info->photometric,
                         sizeof info->photometric, &why))
        return err_set(e, ERR_FORMAT, "dicom: %s: %s", f->name, why.msg + strlen("dicom: "));
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Frames in fragments

/* 1 if a fragment starts a JPEG (SOI) or JPEG 2000 (codestream SOC+SIZ, or JP2 signature box)
 * stream. */
static int starts_codestream(const DicomFragment *fr)
{
    static const uint8_t jp2[8] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' '};
    const uint8_t *p = fr->data;
    if (fr->length >= 2 && p[0] == 0xFF && p[1] == 0xD8)
        return 1;
    if (fr->length >= 4 && p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51)
        return 1;
    return fr->length >= 8 && memcmp(p, jp2, 8) == 0;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)dicom__le32(p) | ((uint64_t)dicom__le32(p + 4) << 32);
}

/* Which fragments make each frame: frame k is fragments [first[k], first[k] + count[k]) of
 * el->fragments + 1. One pass over the fragments, so decoding every frame of a file of many
 * fragments stays linear. Every frame takes at least one fragment, so frames <= fragments. */
typedef struct FrameMap {
    uint32_t *first;
    uint32_t *count;
} FrameMap;

static void frame_map_free(FrameMap *m)
{
    mem_free(m->first);
    mem_free(m->count);
    m->first = m->count = NULL;
}

/* Frame starts from a table of offsets (BOT: 4 bytes, EOT: 8 bytes each), measured from the
 * first fragment item after the Basic Offset Table. */
static int map_by_offsets(const DicomFile *f, const DicomFragment *frags, uint32_t n,
                          const uint8_t *table, unsigned width, uint32_t frames, FrameMap *m,
                          Err *e)
{
    uint64_t pos = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n && k < frames; i++) {
        uint64_t off =
            width == 8 ? le64(table + 8 * (size_t)k) : dicom__le32(table + 4 * (size_t)k);
        if (off < pos)
            return err_set(e, ERR_FORMAT,
                           "dicom: %s: (7FE0,0010) PixelData: offset %llu of frame %u is not the "
                           "start of a fragment, or the offsets do not increase",
                           f->name, (unsigned long long)off, k + 1);
        if (off == pos)
            m->first[k++] = i;
        pos += 8 + (uint64_t)frags[i].length;
    }
    if (k < frames)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: (7FE0,0010) PixelData: the offset of frame %u is past the last "
                       "fragment",
                       f->name, k + 1);
    return ERR_OK;
}

static int map_frames(const DicomFile *f, const DicomElement *el, uint32_t frames, FrameMap *m,
                      Err *e)
{
    const DicomFragment *frags = el->fragments + 1;
    const DicomFragment *bot = &el->fragments[0];
    const DicomElement *eot = dicom_find(f->ds, DICOM_TAG_EXTENDED_OFFSET_TABLE);
    uint32_t n = el->n_fragments - 1;
    if (frames > n)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: (7FE0,0010) PixelData: %u fragments for %u frames", f->name, n,
                       frames);
    m->first = mem_alloc((size_t)frames * sizeof *m->first);
    m->count = mem_alloc((size_t)frames * sizeof *m->count);
    if (!m->first || !m->count) {
        frame_map_free(m);
        return err_set(e, ERR_NOMEM, "dicom: %s: no memory for a table of %u frames", f->name,
                       frames);
    }
    int rc = ERR_OK;
    int by_starts = 0;
    if (eot && eot->length) {
        if (eot->length / 8 < frames)
            rc = err_set(e, ERR_FORMAT, "dicom: %s: %s: %u offsets for %u frames", f->name,
                         dicom__label(eot->tag).s, eot->length / 8, frames);
        else
            rc = map_by_offsets(f, frags, n, eot->value, 8, frames, m, e);
    } else if (bot->length) {
        if (bot->length / 4 < frames)
            rc = err_set(e, ERR_FORMAT,
                         "dicom: %s: (7FE0,0010) PixelData: the Basic Offset Table holds %u "
                         "offsets for %u frames",
                         f->name, bot->length / 4, frames);
        else
            rc = map_by_offsets(f, frags, n, bot->data, 4, frames, m, e);
    } else if (n == frames) {
        for (uint32_t k = 0; k < frames; k++)
            m->first[k] = k;
    } else if (frames == 1) {
        m->first[0] = 0;
    } else {
        /* No table: each fragment that starts a codestream starts a frame. */
        by_starts = 1;
        uint32_t k = 0;
        for (uint32_t i = 0; i < n && k < frames; i++)
            if (starts_codestream(&frags[i]))
                m->first[k++] = i;
        if (k < frames || m->first[0] != 0)
            rc = err_set(e, ERR_FORMAT,
                         "dicom: %s: (7FE0,0010) PixelData: %u fragments, %u frames, no offset "
                         "table, and %u codestream starts (the first at fragment %u)",
                         f->name, n, frames, k, k ? m->first[0] + 1 : 0);
    }
    if (rc) {
        frame_map_free(m);
        return rc;
    }
    /* A frame runs to the next one's first fragment; the last, or (without a table) to the next
     * codestream start, to the end. */
    for (uint32_t k = 0; k < frames; k++) {
        uint32_t end = k + 1 < frames ? m->first[k + 1] : n;
        if (k + 1 == frames && by_starts)
            for (end = m->first[k] + 1; end < n && !starts_codestream(&frags[end]); end++)
                ;
        m->count[k] = end - m->first[k];
    }
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Native

/* A native frame: src holds rows x columns x samples values of bits_allocated / 8 bytes, little
 * endian, interleaved or (planar 1) plane by plane. */
static void native_frame(const DicomImageInfo *info, const uint8_t *src, uint16_t *out)
{
    size_t npix = (size_t)info->rows * info->columns;
    unsigned spp = info->samples_per_pixel;
    int wide = info->bits_allocated == 16;
    if (spp == 1 && wide) {
        /* the common case, grey 16-bit: a copy on a little-endian host */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(out, src, npix * sizeof *out);
#else
        for (size_t p = 0; p < npix; p++)
            out[p] = dicom__le16(src + 2 * p);
#endif
        return;
    }
    for (size_t p = 0; p < npix; p++)
        for (unsigned s = 0; s < spp; s++) {
            size_t at = info->planar_configuration ? s * npix + p : p * spp + s;
            out[p * spp + s] = wide ? dicom__le16(src + 2 * at) : src[at];
        }
}

// ---------------------------------------------------------------------------------------------
// Decoding

static int refused(const DicomFile *f, Err *e, const char *why)
{
    if (!f->ts)
        return err_set(e, ERR_FORMAT, "dicom: %s: refused: transfer syntax %s is unknown", f->name,
                       f->ts_uid);
    return err_set(e, ERR_FORMAT, "dicom: %s: refused: transfer syntax %s (%s): %s", f->name,
                   f->ts_uid, f->ts->name, why);
}

/* Keeps the low bits of each value: cleared above them, or sign-extended. */
/* Clears the bits above BitsStored, or copies the sign bit into them. Two branch-free loops the
 * vectoriser takes (every voxel of every frame goes through one): for x < 2^bits,
 * (x ^ sign) - sign is x sign-extended from bit bits - 1, modulo 2^16. */
static void keep_stored_bits(uint16_t *v, size_t n, unsigned bits, int is_signed)
{
    if (bits >= 16)
        return;
    uint16_t mask = (uint16_t)((1u << bits) - 1);
    uint16_t sign = (uint16_t)(1u << (bits - 1));
    if (!is_signed) {
        for (size_t i = 0; i < n; i++)
            v[i] &= mask;
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (uint16_t)(((v[i] & mask) ^ sign) - sign);
}

static DicomDecodeFn decoder_of(DicomCodec codec)
{
    switch (codec) {
    case DICOM_CODEC_RLE: return dicom__decode_rle;
    case DICOM_CODEC_JPEG_LOSSLESS: return dicom__decode_jpeg_lossless;
    case DICOM_CODEC_JPEG: return dicom__decode_jpeg;
    case DICOM_CODEC_JPEG_LS: return dicom__decode_jpegls;
    case DICOM_CODEC_J2K: return dicom__decode_j2k;
    default: return NULL;
    }
}

static int decode_encapsulated(const DicomFile *f, const DicomElement *el,
                               const DicomImageInfo *info, uint32_t frame, const FrameMap *map,
                               uint16_t *out, unsigned *precision, Err *e)
{
    int rc = ERR_OK;
    uint32_t count = map->count[frame];
    const DicomFragment *frags = el->fragments + 1 + map->first[frame];
    uint8_t *joined = NULL;
    const uint8_t *data = frags[0].data;
    size_t len = frags[0].length;
    if (count > 1) {
        len = 0;
        for (uint32_t i = 0; i < count; i++)
            len += frags[i].length;
        joined = mem_alloc(len ? len : 1);
        if (!joined)
            return err_set(e, ERR_NOMEM, "dicom: %s: no memory to join %u fragments (%zu bytes)",
                           f->name, count, len);
        size_t at = 0;
        for (uint32_t i = 0; i < count; i++) {
            if (frags[i].length)
                memcpy(joined + at, frags[i].data, frags[i].length);
            at += frags[i].length;
        }
        data = joined;
    }
    DicomCodecFrame cf = {
        .data = data,
        .len = len,
        .rows = info->rows,
        .columns = info->columns,
        .samples = info->samples_per_pixel,
        .bits_allocated = info->bits_allocated,
        .bits_stored = info->bits_stored,
        .is_signed = (int)info->pixel_representation,
        .photometric = info->photometric,
        .file = f->name,
        .frame = frame,
        .ts_uid = f->ts_uid,
    };
    *precision = 0;
    if (f->ts->codec == DICOM_CODEC_NATIVE_FRAMES) {
        size_t need = (size_t)info->rows * info->columns * info->samples_per_pixel *
                      (info->bits_allocated / 8);
        if (len < need)
            rc = dicom__codec_error(&cf, e, ERR_FORMAT, "native", "%zu bytes, %zu needed", len,
                                    need);
        else
            native_frame(info, data, out);
    } else {
        rc = decoder_of(f->ts->codec)(&cf, out, precision, e);
    }
    mem_free(joined);
    return rc;
}

/* What every frame needs: a syntax and layout onfh decodes, and pixel data in the form the
 * syntax says (native or encapsulated). *pel gets the PixelData element. */
static int check_source(const DicomFile *f, const DicomImageInfo *info, const DicomElement **pel,
                        Err *e)
{
    if (!f->ts || !f->ts->supported)
        return refused(f, e, f->ts ? f->ts->decoder : "");
    if (info->bits_allocated != 8 && info->bits_allocated != 16) {
        char why[80];
        snprintf(why, sizeof why, "BitsAllocated %u (only 8 and 16 are read, as 16-bit samples)",
                 info->bits_allocated);
        return refused(f, e, why);
    }
    if (info->samples_per_pixel != 1 && info->samples_per_pixel != 3)
        return refused(f, e, "SamplesPerPixel other than 1 or 3");
    if (!f->ts->encapsulated && strncmp(info->photometric, "YBR_", 4) == 0 &&
        strcmp(info->photometric, "YBR_FULL") != 0)
        return refused(f, e, "native chroma-subsampled YBR (only YBR_FULL is read natively)");
    const DicomElement *el = dicom_find(f->ds, DICOM_TAG_PIXEL_DATA);
    if (!el)
        return err_set(e, ERR_FORMAT, "dicom: %s: (7FE0,0010) PixelData: %s", f->name,
                       f->pixels_skipped ? "not read (stop_before_pixels)" : "absent");
    if (!f->ts->encapsulated && el->n_fragments)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: (7FE0,0010) PixelData: encapsulated, but the transfer syntax "
                       "%s is not",
                       f->name, f->ts_uid);
    if (f->ts->encapsulated && !el->n_fragments)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: (7FE0,0010) PixelData: not encapsulated, but the transfer "
                       "syntax %s (%s) needs it to be",
                       f->name, f->ts_uid, f->ts->name);
    if (!f->ts->encapsulated) {
        size_t frame_bytes = (size_t)info->rows * info->columns * info->samples_per_pixel *
                             (info->bits_allocated / 8);
        if (el->length / frame_bytes < info->frames)
            return err_set(e, ERR_FORMAT,
                           "dicom: %s: (7FE0,0010) PixelData: %u bytes, %u frames of %u x %u x %u "
                           "x %u bits need %zu",
                           f->name, el->length, info->frames, info->rows, info->columns,
                           info->samples_per_pixel, info->bits_allocated,
                           frame_bytes * info->frames);
    }
    *pel = el;
    return ERR_OK;
}

/* Frame of a checked source; map is the frame map of encapsulated pixel data. */
static int decode_frame(const DicomFile *f, const DicomImageInfo *info, const DicomElement *el,
                        const FrameMap *map, uint32_t frame, uint16_t *out, Err *e)
{
    size_t nvals = (size_t)info->rows * info->columns * info->samples_per_pixel;
    unsigned precision = 0;
    if (!f->ts->encapsulated) {
        native_frame(info, el->value + frame * nvals * (info->bits_allocated / 8), out);
    } else {
        int rc = decode_encapsulated(f, el, info, frame, map, out, &precision, e);
        if (rc)
            return rc;
    }
    /* Signed: sign-extend from the narrower of BitsStored and the stream's precision. Unsigned:
     * a stream wider than BitsStored keeps its width, so a lossy overshoot is not wrapped. */
    unsigned bits = info->bits_stored;
    if (precision && (info->pixel_representation ? precision < bits : precision > bits))
        bits = precision;
    keep_stored_bits(out, nvals, bits, (int)info->pixel_representation);
    return ERR_OK;
}

int dicom_decode_frame(const DicomFile *f, uint32_t frame, uint16_t *out, size_t count, Err *e)
{
    DicomImageInfo info;
    const DicomElement *el;
    FrameMap map = {0};
    int rc = dicom_image_info(f, &info, e);
    if (rc)
        return rc;
    size_t need = (size_t)info.rows * info.columns * info.samples_per_pixel;
    if (count < need)
        return err_set(e, ERR_FORMAT, "dicom: %s: a frame has %zu values, the buffer holds %zu",
                       f->name, need, count);
    if (frame >= info.frames)
        return err_set(e, ERR_FORMAT, "dicom: %s: frame %u asked, the image has %u", f->name,
                       frame + 1, info.frames);
    if ((rc = check_source(f, &info, &el, e)))
        return rc;
    if (f->ts->encapsulated && (rc = map_frames(f, el, info.frames, &map, e)))
        return rc;
    rc = decode_frame(f, &info, el, &map, frame, out, e);
    frame_map_free(&map);
    return rc;
}

int dicom_decode_pixels(const DicomFile *f, DicomImageInfo *info, uint16_t **pixels, Err *e)
{
    const DicomElement *el;
    FrameMap map = {0};
    *pixels = NULL;
    int rc = dicom_image_info(f, info, e);
    if (rc)
        return rc;
    size_t per_frame = (size_t)info->rows * info->columns * info->samples_per_pixel;
    if (info->frames > DICOM_MAX_PIXEL_BYTES / 2 / per_frame)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: %u frames of %u x %u x %u exceed the %zu-byte image limit",
                       f->name, info->frames, info->rows, info->columns, info->samples_per_pixel,
                       DICOM_MAX_PIXEL_BYTES);
    if ((rc = check_source(f, info, &el, e)))
        return rc;
    if (f->ts->encapsulated && (rc = map_frames(f, el, info->frames, &map, e)))
        return rc;
    uint16_t *buf = mem_alloc(per_frame * info->frames * sizeof *buf);
    if (!buf) {
        frame_map_free(&map);
        return err_set(e, ERR_NOMEM, "dicom: %s: no memory for %u frames of %zu values", f->name,
                       info->frames, per_frame);
    }
    for (uint32_t k = 0; k < info->frames && !rc; k++)
        rc = decode_frame(f, info, el, &map, k, buf + k * per_frame, e);
    frame_map_free(&map);
    if (rc) {
        mem_free(buf);
        return rc;
    }
    *pixels = buf;
    return ERR_OK;
}
