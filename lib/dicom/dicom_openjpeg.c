/* dicom_openjpeg.c: JPEG 2000 (1.2.840.10008.1.2.4.90 lossless, .91 lossless or lossy) through
 * OpenJPEG.
 *
 * The frame is a bare codestream (SOC 0xFF4F first, as PS3.5 A.4.4 asks) or, from some writers,
 * a JP2 file (signature box first; pydicom's GDCMJ2K_TextGBR.dcm): the codec is chosen by the
 * first bytes. OpenJPEG reads through a memory stream whose callbacks never step outside the
 * frame, reports errors through a callback that keeps the first message, and applies the inverse
 * colour transform (RCT or ICT) itself, so colour comes out as RGB. Each component becomes 32-bit
 * integers of its own precision and signedness; they are checked (size, no subsampling, count)
 * against the data set and stored as 16-bit samples, whose low bits dicom_decode.c keeps by the
 * stream's precision (a stream may disagree with BitsStored or PixelRepresentation, see
 * J2K_pixelrep_mismatch.dcm). OpenJPEG allocates through its own malloc. */
#include <stdio.h>
#include <string.h>

#include <openjpeg.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/util/mem.h"

#define CODEC_NAME "JPEG 2000 (OpenJPEG)"

typedef struct MemStream {
    const uint8_t *p;
    size_t len;
    size_t pos;
} MemStream;

static OPJ_SIZE_T ms_read(void *buf, OPJ_SIZE_T n, void *user)
{
    MemStream *m = user;
    if (m->pos >= m->len)
        return (OPJ_SIZE_T)-1;
    size_t c = n < m->len - m->pos ? n : m->len - m->pos;
    memcpy(buf, m->p + m->pos, c);
    m->pos += c;
    return c;
}

static OPJ_OFF_T ms_skip(OPJ_OFF_T n, void *user)
{
    MemStream *m = user;
    if (n < 0) {
        size_t back = (size_t)-n < m->pos ? (size_t)-n : m->pos;
        m->pos -= back;
        return -(OPJ_OFF_T)back;
    }
    size_t fwd = (size_t)n < m->len - m->pos ? (size_t)n : m->len - m->pos;
    m->pos += fwd;
    return (OPJ_OFF_T)fwd;
}

static OPJ_BOOL ms_seek(OPJ_OFF_T n, void *user)
{
    MemStream *m = user;
    if (n < 0 || (uint64_t)n > m->len)
        return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

typedef struct Msg {
    char text[300];
} Msg;

static void on_error(const char *msg, void *user)
{
    Msg *m = user;
    if (m->text[0])
        return;
    snprintf(m->text, sizeof m->text, "%s", msg);
    size_t n = strlen(m->text);
    while (n && (m->text[n - 1] == '\n' || m->text[n - 1] == ' '))
        m->text[--n] = '\0';
}

static void on_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

/* The image the header describes must be the frame's: components, size, no subsampling. */
static int check_size(const DicomCodecFrame *f, const opj_image_t *img, Err *e)
{
    if (img->numcomps != f->samples)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "%u components, the data set says %u samples", img->numcomps,
                                  f->samples);
    if (img->x1 - img->x0 != f->columns || img->y1 - img->y0 != f->rows)
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "the image is %u x %u, the data set says %u x %u",
                                  img->y1 - img->y0, img->x1 - img->x0, f->rows, f->columns);
    for (unsigned c = 0; c < img->numcomps; c++)
        if (img->comps[c].dx != 1 || img->comps[c].dy != 1)
            return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                      "component %u is subsampled (%u x %u)", c + 1,
                                      img->comps[c].dy, img->comps[c].dx);
    return ERR_OK;
}

/* Checks the decoded image against the frame and stores it. */
static int store(const DicomCodecFrame *f, const opj_image_t *img, uint16_t *out,
                 unsigned *precision, Err *e)
{
    int rc = check_size(f, img, e);
    if (rc)
        return rc;
    unsigned prec = 0;
    for (unsigned c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *comp = &img->comps[c];
        if (comp->w != f->columns || comp->h != f->rows || comp->dx != 1 || comp->dy != 1 ||
            !comp->data)
            return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                      "component %u is %u x %u (subsampling %u x %u), the data "
                                      "set says %u x %u",
                                      c + 1, comp->h, comp->w, comp->dy, comp->dx, f->rows,
                                      f->columns);
        if (comp->prec < 1 || comp->prec > 16)
            return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                      "component %u has %u-bit samples; 16 at most", c + 1,
                                      comp->prec);
        if (comp->prec > prec)
            prec = comp->prec;
    }
    size_t npix = (size_t)f->rows * f->columns;
    for (unsigned c = 0; c < img->numcomps; c++) {
        const OPJ_INT32 *src = img->comps[c].data;
        for (size_t p = 0; p < npix; p++)
            out[p * f->samples + c] = (uint16_t)((uint32_t)src[p] & 0xFFFFu);
    }
    *precision = prec;
    return ERR_OK;
}

int dicom__decode_j2k(const DicomCodecFrame *f, uint16_t *out, unsigned *precision, Err *e)
{
    static const uint8_t jp2_sig[8] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' '};
    *precision = 0;
    OPJ_CODEC_FORMAT fmt;
    if (f->len >= 8 && memcmp(f->data, jp2_sig, 8) == 0)
        fmt = OPJ_CODEC_JP2;
    else if (f->len >= 2 && f->data[0] == 0xFF && f->data[1] == 0x4F)
        fmt = OPJ_CODEC_J2K;
    else
        return dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME,
                                  "neither a codestream (FF 4F) nor a JP2 file at the start");
    MemStream ms = {f->data, f->len, 0};
    Msg msg = {{0}};
    opj_image_t *img = NULL;
    int rc = ERR_OK;
    opj_stream_t *s = opj_stream_create(65536, OPJ_TRUE);
    opj_codec_t *codec = opj_create_decompress(fmt);
    if (!s || !codec) {
        rc = dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for the decoder");
        goto out;
    }
    opj_stream_set_user_data(s, &ms, NULL);
    opj_stream_set_user_data_length(s, f->len);
    opj_stream_set_read_function(s, ms_read);
    opj_stream_set_skip_function(s, ms_skip);
    opj_stream_set_seek_function(s, ms_seek);
    opj_set_error_handler(codec, on_error, &msg);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
    opj_dparameters_t par;
    opj_set_default_decoder_parameters(&par);
    if (!opj_setup_decoder(codec, &par) || !opj_read_header(s, codec, &img)) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s",
                                msg.text[0] ? msg.text : "the codestream header does not read");
        goto out;
    }
    /* Check the header's size before decoding: a lying SIZ would make OpenJPEG allocate
     * whatever it claims (gigabytes, for a few bytes of input). */
    if ((rc = check_size(f, img, e)))
        goto out;
    if (!opj_decode(codec, s, img) || !opj_end_decompress(codec, s)) {
        rc = dicom__codec_error(f, e, ERR_FORMAT, CODEC_NAME, "%s",
                                msg.text[0] ? msg.text : "the codestream does not decode");
        goto out;
    }
    rc = store(f, img, out, precision, e);
out:
    opj_image_destroy(img);
    if (codec)
        opj_destroy_codec(codec);
    if (s)
        opj_stream_destroy(s);
    return rc;
}
