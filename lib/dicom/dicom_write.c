/* dicom_write.c: encoding a DicomDataset as a DICOM Part 10 file (PS3.10 7, PS3.5 7 and A).
 *
 * Layout of what comes out, for the standard form:
 *
 *   128 zero bytes, "DICM"                                  (PS3.10 7.1)
 *   (0002,0000) UL  group length = bytes of the meta elements that follow
 *   (0002,0001) OB  00 01
 *   (0002,0002) UI  MediaStorageSOPClassUID    = SOPClassUID of the data set
 *   (0002,0003) UI  MediaStorageSOPInstanceUID = SOPInstanceUID of the data set
 *   (0002,0010) UI  TransferSyntaxUID
 *   (0002,0012) UI  ImplementationClassUID     = DICOM_IMPLEMENTATION_CLASS_UID
 *   (0002,0013) SH  ImplementationVersionName  = DICOM_IMPLEMENTATION_VERSION
 *   the data set, elements in ascending tag order, in the transfer syntax
 *
 * The meta group is always Explicit VR Little Endian, whatever the data set's syntax.
 * An element is tag (group, element: 2 bytes each), then in Explicit VR the two VR characters
 * and either a 2-byte length or, for OB OD OF OL OV OW SQ SV UC UN UR UT UV, two zero bytes and a
 * 4-byte length; in Implicit VR just a 4-byte length. Values are padded to even length with the
 * VR's pad byte (space for text, NUL for UI, OB and UN). In Explicit VR Big Endian, tags,
 * lengths and every multi-byte number are byte-swapped by their word size (2 for US SS OW AT,
 * 4 for UL SL FL OF OL, 8 for FD OD SV UV OV), including native OW pixel data; text and OB are
 * not. Sequences and items carry a defined length (patched in once their content is written) or
 * undefined length (0xFFFFFFFF) closed by (FFFE,E00D) and (FFFE,E0DD) items of length 0; in
 * Implicit VR, private sequences always get defined lengths (see put_sequence).
 *
 * Deflated Explicit VR LE (A.5): the data set is encoded as Explicit VR LE, then raw deflate
 * (zlib with negative windowBits: no zlib header or checksum), padded with a zero byte to even
 * length as pydicom does. RLE Lossless (A.4, Annex G): the data set is Explicit VR LE with Pixel
 * Data encapsulated: OB, undefined length, a Basic Offset Table item holding each frame's offset,
 * one fragment item per frame, a sequence delimiter. */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"

#define UNDEFINED_LENGTH 0xFFFFFFFFu

static const char *const ts_uid[DICOM_TS_COUNT] = {
    [DICOM_TS_EXPLICIT_LE] = "1.2.840.10008.1.2.1",
    [DICOM_TS_IMPLICIT_LE] = "1.2.840.10008.1.2",
    [DICOM_TS_EXPLICIT_BE] = "1.2.840.10008.1.2.2",
    [DICOM_TS_DEFLATED_LE] = "1.2.840.10008.1.2.1.99",
    [DICOM_TS_RLE] = "1.2.840.10008.1.2.5",
};

static const char *const ts_name[DICOM_TS_COUNT] = {
    [DICOM_TS_EXPLICIT_LE] = "explicit-le",
    [DICOM_TS_IMPLICIT_LE] = "implicit-le",
    [DICOM_TS_EXPLICIT_BE] = "explicit-be",
    [DICOM_TS_DEFLATED_LE] = "deflated",
    [DICOM_TS_RLE] = "rle",
};

const char *dicom_ts_uid(DicomTransferSyntax ts)
{
    return (unsigned)ts < DICOM_TS_COUNT ? ts_uid[ts] : "";
}

const char *dicom_ts_name(DicomTransferSyntax ts)
{
    return (unsigned)ts < DICOM_TS_COUNT ? ts_name[ts] : "unknown";
}

// ---------------------------------------------------------------------------------------------
// The element encoder

typedef struct Enc {
    DicomBuf *b;
    int explicit_vr;
    int big;
    int undefined;   /* sequences and items of undefined length */
    int encapsulate; /* RLE: native Pixel Data is RLE-coded into fragments */
    Err *e;
    int rc; /* first error; later writes still run but are discarded */
} Enc;

static int fail(Enc *enc, int code)
{
    if (!enc->rc)
        enc->rc = code;
    return enc->rc;
}

static void put_tag(Enc *enc, uint32_t tag)
{
    dicom__buf_u16(enc->b, DICOM_GROUP(tag), enc->big);
    dicom__buf_u16(enc->b, DICOM_ELEMENT(tag), enc->big);
}

/* Element header; returns the offset of the length field, for patching. */
static size_t put_header(Enc *enc, uint32_t tag, uint16_t vr, uint32_t length)
{
    put_tag(enc, tag);
    if (!enc->explicit_vr) {
        dicom__buf_u32(enc->b, length, enc->big);
        return enc->b->len - 4;
    }
    uint8_t v[2] = {(uint8_t)(vr >> 8), (uint8_t)vr};
    dicom__buf_put(enc->b, v, 2);
    if (dicom_vr_long_length(vr)) {
        dicom__buf_zeros(enc->b, 2);
        dicom__buf_u32(enc->b, length, enc->big);
        return enc->b->len - 4;
    }
    dicom__buf_u16(enc->b, (uint16_t)length, enc->big);
    return enc->b->len - 2;
}

/* Item and delimiter headers: tag and 4-byte length, never a VR (PS3.5 7.5). */
static void put_item_header(Enc *enc, uint32_t tag, uint32_t length)
{
    put_tag(enc, tag);
    dicom__buf_u32(enc->b, length, enc->big);
}

/* Patches the defined length of what was written since start into the field at pos. */
static void patch_length(Enc *enc, size_t pos, size_t start, uint32_t tag)
{
    size_t n = enc->b->len - start;
    if (n > 0xFFFFFFFEu) {
        err_set(enc->e, ERR_FORMAT, "dicom: %s: %zu bytes exceed a defined 32-bit length",
                dicom__tag_label(tag).s, n);
        fail(enc, ERR_FORMAT);
        return;
    }
    dicom__buf_patch_u32(enc->b, pos, (uint32_t)n, enc->big);
}

static void put_dataset(Enc *enc, const DicomDataset *ds);

/* In Implicit VR a private sequence keeps defined lengths, down its whole subtree, even when
 * undefined lengths are asked for: a reader without the creator's dictionary sees an unknown
 * tag, and with a defined length it skips a blob, while with an undefined one it must guess that
 * an unknown element of undefined length is a sequence (CP-246; dcmdump warns that it does). */
static void put_sequence(Enc *enc, const DicomElement *el)
{
    int saved = enc->undefined;
    if (!enc->explicit_vr && (DICOM_GROUP(el->tag) & 1))
        enc->undefined = 0;
    uint32_t len = enc->undefined ? UNDEFINED_LENGTH : 0;
    size_t pos = put_header(enc, el->tag, DICOM_VR_SQ, len);
    size_t start = enc->b->len;
    for (uint32_t i = 0; i < el->n_items; i++) {
        put_item_header(enc, DICOM_TAG_ITEM, len);
        size_t item_pos = enc->b->len - 4;
        size_t item_start = enc->b->len;
        put_dataset(enc, el->items[i]);
        if (enc->undefined)
            put_item_header(enc, DICOM_TAG_ITEM_DELIMITATION, 0);
        else
            patch_length(enc, item_pos, item_start, el->tag);
    }
    if (enc->undefined)
        put_item_header(enc, DICOM_TAG_SEQUENCE_DELIMITATION, 0);
    else
        patch_length(enc, pos, start, el->tag);
    enc->undefined = saved;
}

/* A value, padded to even length, swapped word by word in big endian. */
static void put_value(Enc *enc, const DicomElement *el)
{
    const DicomVrInfo *info = dicom__vr_info(el->vr);
    unsigned swap = info && enc->big ? info->swap : 1;
    char pad = info ? info->pad : '\0';
    uint32_t len = el->length;
    uint32_t padded = len + (len & 1);
    if (enc->explicit_vr && !dicom_vr_long_length(el->vr) && padded > 0xFFFEu) {
        err_set(enc->e, ERR_FORMAT, "dicom: %s: %u bytes do not fit a 2-byte length",
                dicom__tag_label(el->tag).s, len);
        fail(enc, ERR_FORMAT);
        return;
    }
    if (len % swap) {
        err_set(enc->e, ERR_FORMAT, "dicom: %s: %u bytes is not a whole number of %u-byte words",
                dicom__tag_label(el->tag).s, len, swap);
        fail(enc, ERR_FORMAT);
        return;
    }
    put_header(enc, el->tag, el->vr, padded);
    if (swap == 1) {
        dicom__buf_put(enc->b, el->value, len);
    } else {
        uint8_t w[8];
        for (uint32_t i = 0; i < len; i += swap) {
            for (unsigned k = 0; k < swap; k++)
                w[k] = el->value[i + swap - 1 - k];
            dicom__buf_put(enc->b, w, swap);
        }
    }
    if (len & 1)
        dicom__buf_u8(enc->b, (uint8_t)pad);
}

static void put_fragments(Enc *enc, uint32_t tag, const DicomFragment *frags, size_t n)
{
    put_header(enc, tag, DICOM_VR_OB, UNDEFINED_LENGTH);
    for (size_t i = 0; i < n; i++) {
        put_item_header(enc, DICOM_TAG_ITEM, frags[i].length);
        dicom__buf_put(enc->b, frags[i].data, frags[i].length);
    }
    put_item_header(enc, DICOM_TAG_SEQUENCE_DELIMITATION, 0);
}

/* A US attribute of ds, or dflt when absent; -1 when present but not one US value. */
static long get_us(const DicomDataset *ds, uint32_t tag, long dflt)
{
    const DicomElement *el = dicom_find(ds, tag);
    if (!el)
        return dflt;
    if (el->vr != DICOM_VR_US || el->length != 2)
        return -1;
    return dicom__le16(el->value);
}

/* NumberOfFrames (IS), 1 when absent, -1 when unreadable. */
static long get_frames(const DicomDataset *ds)
{
    const DicomElement *el = dicom_find(ds, DICOM_TAG_NUMBER_OF_FRAMES);
    if (!el)
        return 1;
    long n = 0;
    int digits = 0;
    for (uint32_t i = 0; i < el->length; i++) {
        char c = (char)el->value[i];
        if (c >= '0' && c <= '9' && n < 100000000) {
            n = 10 * n + (c - '0');
            digits++;
        } else if (c != ' ' && c != '+') {
            return -1;
        }
    }
    return digits ? n : -1;
}

/* RLE-codes the native pixel data el of ds, frame by frame, and writes it encapsulated. */
static void put_rle_pixels(Enc *enc, const DicomDataset *ds, const DicomElement *el)
{
    long rows = get_us(ds, DICOM_TAG_ROWS, 0);
    long cols = get_us(ds, DICOM_TAG_COLUMNS, 0);
    long spp = get_us(ds, DICOM_TAG_SAMPLES_PER_PIXEL, 0);
    long bits = get_us(ds, DICOM_TAG_BITS_ALLOCATED, 0);
    long planar = get_us(ds, DICOM_TAG_PLANAR_CONFIGURATION, 0);
    long frames = get_frames(ds);
    if (rows <= 0 || cols <= 0 || spp <= 0 || bits <= 0 || bits % 8 || planar < 0 || planar > 1 ||
        frames <= 0) {
        err_set(enc->e, ERR_FORMAT,
                "dicom: RLE needs Rows, Columns, SamplesPerPixel, BitsAllocated (a multiple of 8), "
                "PlanarConfiguration and NumberOfFrames; got %ld, %ld, %ld, %ld, %ld, %ld",
                rows, cols, spp, bits, planar, frames);
        fail(enc, ERR_FORMAT);
        return;
    }
    size_t frame_bytes = (size_t)rows * (size_t)cols * (size_t)spp * (size_t)(bits / 8);
    size_t total = frame_bytes * (size_t)frames;
    if (el->length != total && el->length != total + 1) {
        err_set(enc->e, ERR_FORMAT,
                "dicom: %s: %u bytes, but %ld frames of %ld x %ld x %ld x %ld "
                "bits need %zu",
                dicom__tag_label(el->tag).s, el->length, frames, rows, cols, spp, bits, total);
        fail(enc, ERR_FORMAT);
        return;
    }
    DicomFragment *frags = mem_calloc((size_t)frames + 1, sizeof *frags);
    uint8_t *bot = mem_alloc(4 * (size_t)frames);
    if (!frags || !bot) {
        err_set(enc->e, ERR_NOMEM, "dicom: RLE: no memory for %ld fragments", frames);
        fail(enc, ERR_NOMEM);
        goto out;
    }
    uint64_t offset = 0;
    for (long f = 0; f < frames; f++) {
        size_t n;
        int rc = dicom_rle_encode_frame(el->value + (size_t)f * frame_bytes, (uint32_t)rows,
                                        (uint32_t)cols, (unsigned)spp, (unsigned)(bits / 8),
                                        (unsigned)planar, &frags[f + 1].data, &n, enc->e);
        if (rc) {
            fail(enc, rc);
            goto out;
        }
        frags[f + 1].length = (uint32_t)n;
        if (offset > 0xFFFFFFFFu) {
            err_set(enc->e, ERR_FORMAT, "dicom: RLE: frame offsets exceed 32 bits");
            fail(enc, ERR_FORMAT);
            goto out;
        }
        for (int k = 0; k < 4; k++)
            bot[4 * f + k] = (uint8_t)(offset >> (8 * k));
        offset += 8 + n; /* item tag and length, then the fragment */
    }
    frags[0].data = bot;
    frags[0].length = (uint32_t)(4 * frames);
    put_fragments(enc, el->tag, frags, (size_t)frames + 1);
out:
    if (frags)
        for (long f = 1; f <= frames; f++)
            mem_free(frags[f].data);
    mem_free(frags);
    mem_free(bot);
}

static void put_element(Enc *enc, const DicomDataset *ds, const DicomElement *el)
{
    uint16_t group = DICOM_GROUP(el->tag);
    if (group == 0x0002 || group == 0xFFFE) {
        err_set(enc->e, ERR_FORMAT, "dicom: %s: group %04X cannot be in a data set",
                dicom__tag_label(el->tag).s, group);
        fail(enc, ERR_FORMAT);
        return;
    }
    if (el->vr == DICOM_VR_SQ) {
        put_sequence(enc, el);
    } else if (el->n_fragments) {
        if (!enc->encapsulate) {
            err_set(enc->e, ERR_FORMAT,
                    "dicom: %s: encapsulated pixel data needs an encapsulated transfer syntax",
                    dicom__tag_label(el->tag).s);
            fail(enc, ERR_FORMAT);
            return;
        }
        put_fragments(enc, el->tag, el->fragments, el->n_fragments);
    } else if (enc->encapsulate && el->tag == DICOM_TAG_PIXEL_DATA) {
        put_rle_pixels(enc, ds, el);
    } else {
        put_value(enc, el);
    }
}

static void put_dataset(Enc *enc, const DicomDataset *ds)
{
    for (size_t i = 0; i < ds->count && !enc->rc && !enc->b->failed; i++)
        put_element(enc, ds, &ds->elements[i]);
}

/* Encodes ds into b; 0 or the first error (ERR_NOMEM when the buffer failed to grow). */
static int encode(DicomBuf *b, const DicomDataset *ds, int explicit_vr, int big, int undefined,
                  int encapsulate, Err *e)
{
    Enc enc = {b, explicit_vr, big, undefined, encapsulate, e, 0};
    put_dataset(&enc, ds);
    if (enc.rc)
        return enc.rc;
    if (b->failed)
        return err_set(e, ERR_NOMEM, "dicom: no memory for the encoded data set");
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// File meta information

/* The UI value of tag in ds without its pad byte, checked; into out. */
static int meta_uid(const DicomDataset *ds, uint32_t tag, char out[DICOM_UID_MAX + 1], Err *e)
{
    const DicomElement *el = dicom_find(ds, tag);
    if (!el || el->vr != DICOM_VR_UI || el->length == 0)
        return err_set(e, ERR_FORMAT, "dicom: the data set has no %s, needed for the file meta",
                       dicom__tag_label(tag).s);
    uint32_t n = el->length;
    while (n && (el->value[n - 1] == '\0' || el->value[n - 1] == ' '))
        n--;
    if (n > DICOM_UID_MAX)
        return err_set(e, ERR_FORMAT, "dicom: %s: UID longer than 64 characters",
                       dicom__tag_label(tag).s);
    memcpy(out, el->value, n);
    out[n] = '\0';
    int rc = dicom_uid_check(out, e);
    if (rc && e)
        err_prefix(e, "dicom: %s: ", dicom__tag_label(tag).s);
    return rc;
}

/* Appends the group length element and the meta group to out. */
static int put_meta(DicomBuf *out, const DicomDataset *ds, const char *meta_ts, Err *e)
{
    char sop_class[DICOM_UID_MAX + 1];
    char sop_instance[DICOM_UID_MAX + 1];
    int rc = meta_uid(ds, DICOM_TAG_SOP_CLASS_UID, sop_class, e);
    if (!rc)
        rc = meta_uid(ds, DICOM_TAG_SOP_INSTANCE_UID, sop_instance, e);
    if (rc)
        return rc;
    static const uint8_t version[2] = {0x00, 0x01};
    DicomDataset meta = {0};
    DicomBuf body = {0};
    rc = dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0001), DICOM_VR_OB, version, 2, e);
    if (!rc)
        rc = dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0002), DICOM_VR_UI, sop_class,
                              strlen(sop_class), e);
    if (!rc)
        rc = dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0003), DICOM_VR_UI, sop_instance,
                              strlen(sop_instance), e);
    if (!rc)
        rc = dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0010), DICOM_VR_UI, meta_ts,
                              strlen(meta_ts), e);
    if (!rc)
        rc = dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0012), DICOM_VR_UI,
                              DICOM_IMPLEMENTATION_CLASS_UID,
                              strlen(DICOM_IMPLEMENTATION_CLASS_UID), e);
    if (!rc)
        rc =
            dicom__set_value(&meta, DICOM_TAG(0x0002, 0x0013), DICOM_VR_SH,
                             DICOM_IMPLEMENTATION_VERSION, strlen(DICOM_IMPLEMENTATION_VERSION), e);
    if (rc)
        goto out;
    /* The meta group is Explicit VR Little Endian, always (PS3.10 7.1). */
    Enc enc = {&body, 1, 0, 0, 0, e, 0};
    for (size_t i = 0; i < meta.count; i++)
        put_value(&enc, &meta.elements[i]);
    if (enc.rc) {
        rc = enc.rc;
        goto out;
    }
    if (body.failed) {
        rc = err_set(e, ERR_NOMEM, "dicom: no memory for the file meta group");
        goto out;
    }
    Enc head = {out, 1, 0, 0, 0, e, 0};
    put_header(&head, DICOM_TAG(0x0002, 0x0000), DICOM_VR_UL, 4);
    dicom__buf_u32(out, (uint32_t)body.len, 0);
    dicom__buf_put(out, body.data, body.len);
out:
    for (size_t i = 0; i < meta.count; i++)
        dicom__element_clear(&meta.elements[i]);
    mem_free(meta.elements);
    dicom__buf_free(&body);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Deflate

/* Appends raw deflate of in[0..n) to out, padded to even length. */
static int put_deflated(DicomBuf *out, const uint8_t *in, size_t n, Err *e)
{
    if (n > UINT_MAX)
        return err_set(e, ERR_FORMAT, "dicom: deflate: data set of %zu bytes is too large", n);
    z_stream zs = {.zalloc = dicom__zalloc, .zfree = dicom__zfree};
    /* Negative windowBits: raw deflate (RFC 1951), no zlib header or Adler-32 (PS3.5 A.5). */
    int zrc =
        deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        return err_set(e, ERR_NOMEM, "dicom: deflate: no memory for the compressor");
    if (zrc != Z_OK)
        return err_set(e, ERR_INTERNAL, "dicom: deflateInit2 failed: %d", zrc);
    int rc = ERR_OK;
    uLong bound = deflateBound(&zs, (uLong)n);
    uint8_t *z = mem_alloc(bound + 1);
    if (!z) {
        rc = err_set(e, ERR_NOMEM, "dicom: deflate: no memory for %lu bytes", (unsigned long)bound);
        goto out;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)bound;
    zrc = deflate(&zs, Z_FINISH);
    if (zrc != Z_STREAM_END) {
        rc = err_set(e, zrc == Z_MEM_ERROR ? ERR_NOMEM : ERR_INTERNAL,
                     "dicom: deflate did not finish: %d", zrc);
        goto out;
    }
    size_t zn = zs.total_out;
    if (zn & 1)
        z[zn++] = 0;
    dicom__buf_put(out, z, zn);
out:
    mem_free(z);
    deflateEnd(&zs);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Whole files

int dicom_write_mem(const DicomDataset *ds, const DicomWriteOptions *opt, uint8_t **data,
                    size_t *len, Err *e)
{
    static const DicomWriteOptions defaults = {0};
    if (!opt)
        opt = &defaults;
    *data = NULL;
    *len = 0;
    DicomTransferSyntax ts = opt->ts;
    if ((unsigned)ts >= DICOM_TS_COUNT)
        return err_set(e, ERR_FORMAT, "dicom: unknown transfer syntax %d", (int)ts);
    if (opt->form == DICOM_FILE_DATASET_ONLY && (ts == DICOM_TS_DEFLATED_LE || ts == DICOM_TS_RLE))
        return err_set(e, ERR_FORMAT,
                       "dicom: a %s data set needs the file meta to name its transfer syntax",
                       dicom_ts_name(ts));
    int explicit_vr = ts != DICOM_TS_IMPLICIT_LE;
    int big = ts == DICOM_TS_EXPLICIT_BE;
    int rle = ts == DICOM_TS_RLE;
    DicomBuf out = {0};
    DicomBuf plain = {0};
    int rc = ERR_OK;
    if (opt->form == DICOM_FILE_PART10) {
        dicom__buf_zeros(&out, 128);
        dicom__buf_put(&out, "DICM", 4);
    }
    if (opt->form != DICOM_FILE_DATASET_ONLY) {
        const char *meta_ts = opt->meta_ts_uid ? opt->meta_ts_uid : dicom_ts_uid(ts);
        rc = dicom_uid_check(meta_ts, e);
        if (!rc)
            rc = put_meta(&out, ds, meta_ts, e);
        if (rc)
            goto out;
    }
    if (ts == DICOM_TS_DEFLATED_LE) {
        rc = encode(&plain, ds, 1, 0, opt->undefined_length, 0, e);
        if (!rc)
            rc = put_deflated(&out, plain.data, plain.len, e);
    } else {
        rc = encode(&out, ds, explicit_vr, big, opt->undefined_length, rle, e);
    }
    if (rc)
        goto out;
    if (out.failed) {
        rc = err_set(e, ERR_NOMEM, "dicom: no memory for the encoded file");
        goto out;
    }
    *data = out.data;
    *len = out.len;
    out.data = NULL;
out:
    dicom__buf_free(&out);
    dicom__buf_free(&plain);
    return rc;
}

int dicom_write_file(const char *path, const DicomDataset *ds, const DicomWriteOptions *opt, Err *e)
{
    uint8_t *data;
    size_t len;
    int rc = dicom_write_mem(ds, opt, &data, &len, e);
    if (rc)
        return e ? err_prefix(e, "%s: ", path) : rc;
    rc = file_write_atomic(path, data, len, e);
    mem_free(data);
    return rc;
}
