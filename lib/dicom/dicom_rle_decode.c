/* dicom_rle_decode.c: the RLE Lossless decoder of PS3.5 Annex G, one frame at a time; the
 * inverse of dicom_rle.c.
 *
 * A frame is a 64-byte header (G.5: the segment count, then 15 little-endian offsets from the
 * header's start) and one PackBits segment per byte of each sample, most significant byte first
 * (G.2). Segment k runs from its offset to the next one (or the end of the frame). PackBits
 * (G.3.1): a header byte n in 0..127 copies the next n + 1 bytes; -1..-127 repeats the next byte
 * 1 - n times; -128 is a no-op. Decoding a segment stops once rows x columns bytes are out: the
 * encoder pads each segment to even length with a zero byte that reads as a header, and some
 * encoders let a run cross a row, so only a segment that ends short is an error. */
#include <stdio.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

#define RLE_HEADER_BYTES 64
#define RLE_MAX_SEGMENTS 15

/* PackBits-decodes src[0..n) into out[0..want); returns the bytes written. */
static size_t unpack_segment(const uint8_t *src, size_t n, uint8_t *out, size_t want)
{
    size_t i = 0;
    size_t o = 0;
    while (o < want && i < n) {
        int h = (int8_t)src[i++];
        if (h >= 0) {
            size_t c = (size_t)h + 1;
            if (c > n - i)
                c = n - i;
            if (c > want - o)
                c = want - o;
            memcpy(out + o, src + i, c);
            i += (size_t)h + 1;
            o += c;
        } else if (h != -128) {
            if (i >= n)
                break;
            size_t c = (size_t)(1 - h);
            if (c > want - o)
                c = want - o;
            memset(out + o, src[i++], c);
            o += c;
        }
    }
    return o;
}

/* Decodes into one byte plane per segment: planes[k * npix ...]. Messages are built by the
 * callers' prefix; fmt gets the segment number. */
static int decode_planes(const uint8_t *data, size_t len, size_t npix, unsigned nseg,
                         uint8_t *planes, char *why, size_t why_len)
{
    if (len < RLE_HEADER_BYTES) {
        snprintf(why, why_len, "%zu bytes, less than the 64-byte RLE header", len);
        return ERR_FORMAT;
    }
    uint32_t count = dicom__le32(data);
    if (count != nseg) {
        snprintf(why, why_len, "%u segments, %u expected (samples x bytes per sample)", count,
                 nseg);
        return ERR_FORMAT;
    }
    for (unsigned k = 0; k < nseg; k++) {
        uint32_t off = dicom__le32(data + 4 + 4 * k);
        uint64_t end = k + 1 < nseg ? dicom__le32(data + 8 + 4 * k) : len;
        if (off < RLE_HEADER_BYTES || off > end || end > len) {
            snprintf(why, why_len, "segment %u at bytes %u to %llu of %zu", k + 1, off,
                     (unsigned long long)end, len);
            return ERR_FORMAT;
        }
        size_t got = unpack_segment(data + off, (size_t)(end - off), planes + k * npix, npix);
        if (got != npix) {
            snprintf(why, why_len, "segment %u decodes to %zu bytes, %zu expected", k + 1, got,
                     npix);
            return ERR_FORMAT;
        }
    }
    return ERR_OK;
}

int dicom_rle_decode_frame(const uint8_t *data, size_t len, uint32_t rows, uint32_t columns,
                           unsigned samples, unsigned bytes_per_sample, unsigned planar,
                           uint8_t *out, Err *e)
{
    unsigned nseg = samples * bytes_per_sample;
    if (samples < 1 || bytes_per_sample < 1 || nseg > RLE_MAX_SEGMENTS || planar > 1 || rows == 0 ||
        columns == 0)
        return err_set(e, ERR_FORMAT,
                       "dicom: RLE: %u x %u frame of %u samples of %u bytes (planar %u) cannot "
                       "be RLE",
                       rows, columns, samples, bytes_per_sample, planar);
    size_t npix = (size_t)rows * columns;
    uint8_t *planes = mem_alloc(npix * nseg);
    if (!planes)
        return err_set(e, ERR_NOMEM, "dicom: RLE: no memory for %zu bytes", npix * nseg);
    char why[200];
    int rc = decode_planes(data, len, npix, nseg, planes, why, sizeof why);
    if (rc) {
        mem_free(planes);
        return err_set(e, rc, "dicom: RLE: %s", why);
    }
    for (unsigned k = 0; k < nseg; k++) {
        unsigned s = k / bytes_per_sample;
        unsigned byte = bytes_per_sample - 1 - k % bytes_per_sample; /* MSB first */
        const uint8_t *plane = planes + k * npix;
        for (size_t p = 0; p < npix; p++) {
            size_t at = planar ? s * npix + p : p * samples + s;
            out[at * bytes_per_sample + byte] = plane[p];
        }
    }
    mem_free(planes);
    return ERR_OK;
}

int dicom__decode_rle(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e)
{
    *precision = 0;
    unsigned bps = f->bits_allocated / 8;
    unsigned nseg = f->samples * bps;
    size_t npix = (size_t)f->rows * f->columns;
    uint8_t *planes = mem_alloc(npix * nseg);
    if (!planes)
        return dicom__codec_error(f, e, ERR_NOMEM, "RLE", "no memory for %zu bytes", npix * nseg);
    char why[200];
    int rc = decode_planes(f->data, f->len, npix, nseg, planes, why, sizeof why);
    if (rc) {
        mem_free(planes);
        return dicom__codec_error(f, e, rc, "RLE", "%s", why);
    }
    /* Segment s * bps + b holds byte b (most significant first) of sample s. */
    for (size_t p = 0; p < npix; p++)
        for (unsigned s = 0; s < f->samples; s++) {
            const uint8_t *seg = planes + (size_t)s * bps * npix;
            out[p * f->samples + s] = bps == 2 ? (uint16_t)((seg[p] << 8) | seg[npix + p]) : seg[p];
        }
    mem_free(planes);
    return ERR_OK;
}
