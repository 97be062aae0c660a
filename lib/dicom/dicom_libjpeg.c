/* dicom_libjpeg.c: JPEG Baseline and Extended (1.2.840.10008.1.2.4.50 and .51) through
 * libjpeg-turbo.
 *
 * Debian's libjpeg62-turbo is built for 8-bit samples only (jconfig.h: BITS_IN_JSAMPLE 8), so
 * 12-bit Extended streams are refused with a message that says so; the stream's own SOF is read
 * first (dicom__jpeg_sof) so that libjpeg never sees them. A lossless (SOF3) stream labelled as
 * .50/.51 goes to onfh's lossless decoder instead of failing.
 *
 * libjpeg reports fatal errors by calling error_exit, which here longjmps back with the
 * formatted message; its warnings ("premature end of data", "corrupt data") are where it would
 * go on and return gray-filled or damaged pixels, so any warning but extraneous bytes between
 * markers fails the frame. The decompressor lives on the heap, so nothing the longjmp skips over
 * is an automatic variable changed after setjmp. libjpeg allocates through its own malloc; only
 * onfh's buffers go through lib/util/mem.h.
 *
 * Colour comes out in the colour space the data set names, as pydicom gives it: for YBR_FULL
 * and YBR_FULL_422 libjpeg only upsamples (out_color_space YCbCr); for RGB it converts from
 * YCbCr when the stream says it was transformed (a JFIF marker, or an Adobe marker with
 * transform 1) and otherwise takes the stream as RGB already (dcmtk's +cr streams). */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/util/mem.h"

#define CODEC_NAME "JPEG (libjpeg-turbo)"
#define MAX_SCANS  100

typedef struct Ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jump;
    int warned;
    char msg[JMSG_LENGTH_MAX];
} Ctx;

static void on_error(j_common_ptr cinfo)
{
    Ctx *c = (Ctx *)cinfo->client_data;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    Ctx *c = (Ctx *)cinfo->client_data;
    if (level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA || c->warned)
        return;
    c->warned = 1;
    (*cinfo->err->format_message)(cinfo, c->msg);
}

static int decode(Ctx *c, const DicomCodecFrame *f, uint16_t *out, uint8_t *line, Err *e)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    if (setjmp(c->jump))
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s", c->msg);
    jpeg_create_decompress(ci);
    ci->client_data = c;
    jpeg_mem_src(ci, f->data, (unsigned long)f->len);
    jpeg_read_header(ci, TRUE);
    if (f->samples == 3 && strncmp(f->photometric, "YBR", 3) == 0) {
        ci->jpeg_color_space = JCS_YCbCr;
        ci->out_color_space = JCS_YCbCr;
    } else if (f->samples == 3) {
        ci->out_color_space = JCS_RGB;
        if (!ci->saw_JFIF_marker && !(ci->saw_Adobe_marker && ci->Adobe_transform))
            ci->jpeg_color_space = JCS_RGB;
    } else {
        ci->out_color_space = JCS_GRAYSCALE;
    }
    jpeg_start_decompress(ci);
    if (ci->output_width != f->columns || ci->output_height != f->rows ||
        (unsigned)ci->output_components != f->samples)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "decodes to %u x %u x %d, the data set says %u x %u x %u",
                                  ci->output_height, ci->output_width, ci->output_components,
                                  f->rows, f->columns, f->samples);
    size_t per_row = (size_t)f->columns * f->samples;
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        JSAMPROW row = line;
        if (jpeg_read_scanlines(ci, &row, 1) != 1)
            return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "no scanline %zu", y + 1);
        for (size_t i = 0; i < per_row; i++)
            out[y * per_row + i] = line[i];
    }
    jpeg_finish_decompress(ci);
    if (c->warned)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s", c->msg);
    return ERR_OK;
}

int dicom__decode_jpeg(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e)
{
    *precision = 0;
    unsigned marker, bits, comps, rows, cols;
    if (dicom__jpeg_sof(f->data, f->len, &marker, &bits, &comps, &rows, &cols))
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "no SOI and SOF marker found");
    if (marker == 0xC3)
        return dicom__decode_jpeg_lossless(f, out, precision, e);
    if (marker != 0xC0 && marker != 0xC1 && marker != 0xC2 && marker != 0xC9 && marker != 0xCA)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "SOF%u (hierarchical or lossless): not supported", marker - 0xC0);
    if (bits != 8)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "refused: transfer syntax %s with %u-bit samples needs a 12-bit "
                                  "libjpeg; the system libjpeg-turbo is built for 8-bit samples "
                                  "only",
                                  f->ts_uid, bits);
    /* A progressive stream of thousands of tiny scans costs libjpeg seconds per frame; no real
     * encoder writes more than a dozen. FF DA cannot occur inside entropy-coded data. */
    unsigned scans = 0;
    for (size_t i = 0; i + 1 < f->len; i++)
        scans += f->data[i] == 0xFF && f->data[i + 1] == 0xDA;
    if (scans > MAX_SCANS)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%u scans (%d at most)", scans,
                                  MAX_SCANS);
    if (rows != f->rows || cols != f->columns || comps != f->samples)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "the stream is %u x %u x %u, the data set says %u x %u x %u",
                                  rows, cols, comps, f->rows, f->columns, f->samples);
    Ctx *c = mem_calloc(1, sizeof *c);
    uint8_t *line = mem_alloc((size_t)f->columns * f->samples);
    int rc;
    if (!c || !line) {
        rc = dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for the decoder");
    } else {
        c->cinfo.err = jpeg_std_error(&c->jerr);
        c->jerr.error_exit = on_error;
        c->jerr.emit_message = on_message;
        rc = decode(c, f, out, line, e);
        jpeg_destroy_decompress(&c->cinfo);
    }
    mem_free(line);
    mem_free(c);
    if (!rc)
        *precision = 8;
    return rc;
}
