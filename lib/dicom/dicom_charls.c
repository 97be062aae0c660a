/* dicom_charls.c: JPEG-LS lossless and near-lossless (1.2.840.10008.1.2.4.80 and .81) through
 * CharLS's C API.
 *
 * CharLS reads the stream's own header (size, bits per sample, components, interleave mode),
 * which is checked against the data set before anything is decoded, and decodes into a buffer of
 * the size it asks for: bytes for up to 8 bits per sample, host-order 16-bit words above. Colour
 * streams come out interleaved by pixel, or plane by plane for interleave mode "none", which is
 * reordered here. Near-lossless needs nothing more: the decoder is the same, only the encoder's
 * NEAR bound differs. CharLS allocates through C++ new; onfh's buffers go through
 * lib/util/mem.h. */
#include <string.h>

#include <charls/charls.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/util/mem.h"

#define CODEC_NAME "JPEG-LS (CharLS)"

static int convert(const DicomCodecFrame *f, const uint8_t *buf, int wide, int planar,
                   uint16_t *out)
{
    size_t npix = (size_t)f->rows * f->columns;
    for (size_t p = 0; p < npix; p++)
        for (unsigned s = 0; s < f->samples; s++) {
            size_t at = planar ? s * npix + p : p * f->samples + s;
            uint16_t v;
            if (wide)
                memcpy(&v, buf + 2 * at, 2);
            else
                v = buf[at];
            out[p * f->samples + s] = v;
        }
    return ERR_OK;
}

/* 1 if the stream ends with EOI (FF D9), after any zero padding. CharLS 2.4 spends seconds
 * decoding a stream cut short (its bit reader spins on the missing bytes), so a truncated
 * frame, the commonest damage, is refused before CharLS sees it. */
static int ends_with_eoi(const uint8_t *p, size_t n)
{
    while (n && p[n - 1] == 0)
        n--;
    return n >= 2 && p[n - 2] == 0xFF && p[n - 1] == 0xD9;
}

int dicom__decode_jpegls(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e)
{
    *precision = 0;
    if (!ends_with_eoi(f->data, f->len))
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "the stream does not end with EOI (FF D9): truncated");
    charls_jpegls_decoder *d = charls_jpegls_decoder_create();
    if (!d)
        return dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for the decoder");
    uint8_t *buf = NULL;
    int rc = ERR_OK;
    charls_frame_info fi = {0};
    charls_interleave_mode mode = CHARLS_INTERLEAVE_MODE_NONE;
    size_t size = 0;
    charls_jpegls_errc ec = charls_jpegls_decoder_set_source_buffer(d, f->data, f->len);
    if (!ec)
        ec = charls_jpegls_decoder_read_header(d);
    if (!ec)
        ec = charls_jpegls_decoder_get_frame_info(d, &fi);
    if (!ec)
        ec = charls_jpegls_decoder_get_interleave_mode(d, &mode);
    if (!ec)
        ec = charls_jpegls_decoder_get_destination_size(d, 0, &size);
    if (ec) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s", charls_get_error_message(ec));
        goto out;
    }
    if (fi.width != f->columns || fi.height != f->rows ||
        fi.component_count != (int32_t)f->samples || fi.bits_per_sample < 2 ||
        fi.bits_per_sample > 16) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                "the stream is %u x %u x %d of %d bits, the data set says %u x "
                                "%u x %u",
                                fi.height, fi.width, fi.component_count, fi.bits_per_sample,
                                f->rows, f->columns, f->samples);
        goto out;
    }
    int wide = fi.bits_per_sample > 8;
    size_t want = (size_t)f->rows * f->columns * f->samples * (wide ? 2 : 1);
    if (size != want) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "wants %zu bytes, %zu expected", size,
                                want);
        goto out;
    }
    buf = mem_alloc(size);
    if (!buf) {
        rc = dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for %zu bytes", size);
        goto out;
    }
    ec = charls_jpegls_decoder_decode_to_buffer(d, buf, size, 0);
    if (ec) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s", charls_get_error_message(ec));
        goto out;
    }
    convert(f, buf, wide, f->samples > 1 && mode == CHARLS_INTERLEAVE_MODE_NONE, out);
    *precision = (unsigned)fi.bits_per_sample;
out:
    mem_free(buf);
    charls_jpegls_decoder_destroy(d);
    return rc;
}
