/* dicom_read.c: parsing DICOM files into DicomFile (see dicom.h, "Reading").
 *
 * The file is one byte buffer and a cursor; every read of a header or value is preceded by a
 * check that the bytes are there, against the end of the buffer or of the enclosing item of
 * defined length, whichever is nearer. So a lying length is an error where it is met, never a
 * read past the end, and the parser recurses only into sequences, at most DICOM_MAX_DEPTH deep.
 *
 * What the bytes can look like, and how each is told apart:
 *   - PS3.10 file: "DICM" at offset 128, the meta group (Explicit VR LE) from 132;
 *   - meta group without preamble: the buffer starts with a group-0002 tag and a VR;
 *   - bare data set: neither; the syntax is guessed (guess_encoding) from the first element:
 *     two VR letters after the tag mean Explicit VR, and of the two byte orders the one that
 *     makes the group number small is taken (data sets start at group 0008 or so);
 *   - whatever the meta says, an uncompressed data set is read as Explicit or Implicit VR
 *     according to its first element (pydicom does the same, for files mislabelled by old
 *     tools); a syntax not in the matrix, or refused, has its encoding guessed the same way,
 *     so its header can still be reported;
 *   - deflated: the rest of the file after the meta group is raw deflate (PS3.5 A.5), inflated
 *     into a second buffer that is then parsed as Explicit VR LE.
 *
 * Sequences: SQ elements, and in Implicit VR unknown elements of undefined length (CP-246), hold
 * items. UN elements of undefined length hold a sequence encoded in Implicit VR LE (PS3.5
 * 6.2.2), and so may UN elements (or unknown Implicit VR elements) of defined length whose value
 * starts with an item tag: those are tried as sequences and kept as bytes if that fails.
 *
 * A stop_before_pixels read of a file reads a first chunk and parses it as a prefix; an error
 * caused by running out of bytes ("short") asks for a larger chunk, so a header scan of a large
 * file reads little more than the header. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#if ONFH_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"

#define UNDEFINED_LENGTH 0xFFFFFFFFu
#define MAX_UNSORTED     256 /* elements out of tag order in one data set */

typedef struct Rd {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int explicit_vr;
    int big;
    int inflated; /* buf is the inflated data set: offsets are into it, not the file */
    int stop_before_pixels;
    int borrow_pixels; /* DicomReadOptions.borrow_pixel_data */
    int stopped;
    size_t pixel_at; /* where it stopped */
    int short_data;  /* the error came from running out of bytes at the end of the buffer */
    const char *name;
    Err *e;
} Rd;

// ---------------------------------------------------------------------------------------------
// Bytes and messages

static uint16_t rd16(const Rd *r, size_t at)
{
    const uint8_t *p = r->buf + at;
    return r->big ? (uint16_t)((p[0] << 8) | p[1]) : (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const Rd *r, size_t at)
{
    const uint8_t *p = r->buf + at;
    if (r->big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return dicom__le32(p);
}

static uint32_t rd_tag(const Rd *r, size_t at)
{
    return DICOM_TAG(rd16(r, at), rd16(r, at + 2));
}

static int is_vr_byte(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

/* ERR_FORMAT "dicom: FILE: (gggg,eeee) Keyword: at byte N: what". tag 0 leaves the tag out. */
__attribute__((format(printf, 4, 0))) static int vbad(Rd *r, uint32_t tag, size_t at,
                                                      const char *fmt, va_list ap)
{
    char what[600];
    vsnprintf(what, sizeof what, fmt, ap);
    err_set(r->e, ERR_FORMAT, "dicom: %s: %s%sat byte %zu%s: %s", r->name,
            tag ? dicom__label(tag).s : "", tag ? ": " : "", at,
            r->inflated ? " of the inflated data set" : "", what);
    return ERR_FORMAT;
}

__attribute__((format(printf, 4, 5))) static int bad(Rd *r, uint32_t tag, size_t at,
                                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vbad(r, tag, at, fmt, ap);
    va_end(ap);
    return rc;
}

/* As bad, for a structure cut short at end: when end is the end of the buffer, the file may be
 * truncated or, in a prefix read, simply longer than what was read so far. */
__attribute__((format(printf, 5, 6))) static int cut(Rd *r, size_t end, uint32_t tag, size_t at,
                                                     const char *fmt, ...)
{
    if (end == r->len)
        r->short_data = 1;
    va_list ap;
    va_start(ap, fmt);
    int rc = vbad(r, tag, at, fmt, ap);
    va_end(ap);
    return rc;
}

static int nomem(Rd *r, uint32_t tag, size_t n)
{
    return err_set(r->e, ERR_NOMEM, "dicom: %s: %s: no memory for %zu bytes", r->name,
                   tag ? dicom__label(tag).s : "data set", n);
}

/* Makes room for one more entry in an array of n entries grown by doubling from 4. */
static int grow(void **arr, size_t n, size_t size)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    size_t cap = n == 0 ? 4 : 2 * n;
    void *p = mem_realloc(*arr, cap * size);
    if (!p)
        return -1;
    *arr = p;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Elements

static int parse_dataset(Rd *r, DicomDataset *ds, size_t end, int delimited, unsigned depth);

/* The VR of an Implicit VR element, 0 when nobody knows it. */
static uint16_t implicit_vr(uint32_t tag)
{
    uint16_t group = DICOM_GROUP(tag);
    uint16_t elem = DICOM_ELEMENT(tag);
    if (elem == 0x0000)
        return DICOM_VR_UL; /* group length */
    if ((group & 1) && elem >= 0x0010 && elem <= 0x00FF)
        return DICOM_VR_LO; /* private creator */
    uint16_t vr = dicom_dict_vr(tag);
    return vr ? vr : dicom__reader_vr(tag);
}

/* Items of a sequence, up to end (defined length) or to the sequence delimiter. */
static int read_items(Rd *r, DicomElement *el, size_t end, int delimited, unsigned depth)
{
    if (depth > DICOM_MAX_DEPTH)
        return bad(r, el->tag, r->pos, "sequences nested deeper than %d", DICOM_MAX_DEPTH);
    for (;;) {
        size_t at = r->pos;
        if (!delimited && at >= end)
            return ERR_OK;
        if (end - at < 8)
            return cut(r, end, el->tag, at, "sequence ends inside an item header%s",
                       delimited ? " (no sequence delimiter)" : "");
        uint32_t tag = rd_tag(r, at);
        uint32_t len = rd32(r, at + 4);
        r->pos = at + 8;
        if (tag == DICOM_TAG_SEQUENCE_DELIMITATION) {
            if (!delimited)
                return bad(r, el->tag, at, "sequence delimiter in a sequence of defined length");
            return ERR_OK;
        }
        if (tag != DICOM_TAG_ITEM)
            return bad(r, el->tag, at, "item tag (FFFE,E000) expected, found (%04X,%04X)",
                       DICOM_GROUP(tag), DICOM_ELEMENT(tag));
        if (el->n_items == UINT32_MAX || grow((void **)&el->items, el->n_items, sizeof *el->items))
            return nomem(r, el->tag, sizeof *el->items);
        DicomDataset *item = mem_calloc(1, sizeof *item);
        if (!item)
            return nomem(r, el->tag, sizeof *item);
        el->items[el->n_items++] = item;
        size_t item_end = end;
        if (len != UNDEFINED_LENGTH) {
            if (len > end - r->pos)
                return cut(r, end, el->tag, at, "item of %u bytes, only %zu remain", len,
                           end - r->pos);
            if (len & 1)
                return bad(r, el->tag, at, "item of odd length %u", len);
            item_end = r->pos + len;
        }
        int rc = parse_dataset(r, item, item_end, len == UNDEFINED_LENGTH, depth);
        if (rc)
            return rc;
    }
}

/* Parses the value at r->pos (len bytes, or undefined) as a sequence. Explicit VR UN and unknown
 * elements hold their items in Implicit VR Little Endian, whatever the file's syntax. */
static int read_sequence(Rd *r, DicomElement *el, uint32_t len, size_t end, int implicit_le,
                         unsigned depth)
{
    int explicit_vr = r->explicit_vr;
    int big = r->big;
    if (implicit_le) {
        r->explicit_vr = 0;
        r->big = 0;
    }
    el->vr = DICOM_VR_SQ;
    el->undefined_length = len == UNDEFINED_LENGTH;
    int rc = len == UNDEFINED_LENGTH ? read_items(r, el, end, 1, depth + 1)
                                     : read_items(r, el, r->pos + len, 0, depth + 1);
    r->explicit_vr = explicit_vr;
    r->big = big;
    return rc;
}

/* Encapsulated pixel data: items up to the sequence delimiter; the first is the Basic Offset
 * Table. Fragment item tags and lengths are in the data set's byte order. */
static int read_fragments(Rd *r, DicomElement *el, size_t end)
{
    el->vr = DICOM_VR_OB;
    el->undefined_length = 1;
    for (;;) {
        size_t at = r->pos;
        if (end - at < 8)
            return cut(r, end, el->tag, at, "ends before the sequence delimiter");
        uint32_t tag = rd_tag(r, at);
        uint32_t len = rd32(r, at + 4);
        r->pos = at + 8;
        if (tag == DICOM_TAG_SEQUENCE_DELIMITATION) {
            if (el->n_fragments == 0)
                return bad(r, el->tag, at, "no Basic Offset Table item before the delimiter");
            return ERR_OK;
        }
        if (tag != DICOM_TAG_ITEM)
            return bad(r, el->tag, at, "fragment item tag (FFFE,E000) expected, found (%04X,%04X)",
                       DICOM_GROUP(tag), DICOM_ELEMENT(tag));
        if (len == UNDEFINED_LENGTH)
            return bad(r, el->tag, at, "fragment of undefined length");
        if (len > end - r->pos)
            return cut(r, end, el->tag, at, "fragment of %u bytes, only %zu remain", len,
                       end - r->pos);
        if (len & 1)
            return bad(r, el->tag, at, "fragment of odd length %u", len);
        if (el->n_fragments == UINT32_MAX ||
            grow((void **)&el->fragments, el->n_fragments, sizeof *el->fragments))
            return nomem(r, el->tag, sizeof *el->fragments);
        DicomFragment *fr = &el->fragments[el->n_fragments];
        fr->data = NULL;
        fr->length = len;
        if (len) {
            fr->data = mem_alloc(len);
            if (!fr->data)
                return nomem(r, el->tag, len);
            memcpy(fr->data, r->buf + r->pos, len);
        }
        el->n_fragments++;
        r->pos += len;
    }
}

/* Value bytes into canonical little-endian form. */
static int read_value(Rd *r, DicomElement *el, uint32_t len, size_t at)
{
    const DicomVrInfo *info = dicom__vr_info(el->vr);
    unsigned swap = r->big && info ? info->swap : 1;
    if (len % swap)
        return bad(r, el->tag, at, "length %u is not a whole number of %u-byte values", len, swap);
    el->length = len;
    if (!len)
        return ERR_OK;
    const uint8_t *src = r->buf + r->pos;
    if (r->borrow_pixels && el->tag == DICOM_TAG_PIXEL_DATA && swap == 1 && !r->inflated) {
        el->value = (uint8_t *)src; /* the caller's bytes, as they are: see dicom.h */
        el->borrowed = 1;
        r->pos += len;
        return ERR_OK;
    }
    el->value = mem_alloc(len);
    if (!el->value)
        return nomem(r, el->tag, len);
    if (swap == 1) {
        memcpy(el->value, src, len);
    } else {
        for (uint32_t i = 0; i < len; i += swap)
            for (unsigned k = 0; k < swap; k++)
                el->value[i + k] = src[i + swap - 1 - k];
    }
    r->pos += len;
    return ERR_OK;
}

/* 1 when a defined-length value of an unknown or UN element looks like items: it starts with an
 * Implicit VR LE item tag whose length is undefined or fits. */
static int looks_like_items(const Rd *r, uint32_t len)
{
    if (len < 8)
        return 0;
    const uint8_t *p = r->buf + r->pos;
    if (dicom__le32(p) != 0xE000FFFEu)
        return 0;
    uint32_t ilen = dicom__le32(p + 4);
    return ilen == UNDEFINED_LENGTH || ilen <= len - 8;
}

static int read_defined(Rd *r, DicomElement *el, uint32_t len, size_t end, size_t at,
                        unsigned depth)
{
    uint32_t tag = el->tag;
    if (len > end - r->pos)
        return cut(r, end, el->tag, at, "value of %u bytes, only %zu remain", len, end - r->pos);
    /* An odd value length breaks PS3.5 7.1.1 but is met in the wild; like dcmtk and pydicom,
     * read the value as it is (items and fragments of odd length are refused). */
    if ((len & 1) && el->vr == DICOM_VR_SQ)
        return bad(r, el->tag, at, "sequence of odd length %u", len);
    if (el->vr == DICOM_VR_SQ)
        return read_sequence(r, el, len, end, 0, depth);
    int unknown = el->vr == 0 || el->vr == DICOM_VR_UN;
    int known_sq =
        dicom_dict_vr(el->tag) == DICOM_VR_SQ || dicom__reader_vr(el->tag) == DICOM_VR_SQ;
    if (unknown && (looks_like_items(r, len) || (known_sq && len == 0))) {
        /* Try it as a sequence; if the bytes disagree, keep them as they are. */
        size_t pos = r->pos;
        uint16_t vr = el->vr;
        Err saved = r->e ? *r->e : (Err){0};
        int rc = read_sequence(r, el, len, pos + len, 1, depth);
        if (rc != ERR_FORMAT)
            return rc;
        dicom__element_clear(el);
        el->tag = tag;
        el->vr = vr;
        r->pos = pos;
        r->short_data = 0;
        if (r->e)
            *r->e = saved;
    }
    if (!el->vr)
        el->vr = DICOM_VR_UN;
    return read_value(r, el, len, at);
}

static int read_undefined(Rd *r, DicomElement *el, size_t end, size_t at, unsigned depth)
{
    uint16_t vr = el->vr;
    if (vr == DICOM_VR_SQ || vr == 0 || vr == DICOM_VR_UN)
        return read_sequence(r, el, UNDEFINED_LENGTH, end, vr == DICOM_VR_UN && r->explicit_vr,
                             depth);
    if (el->tag == DICOM_TAG_PIXEL_DATA || vr == DICOM_VR_OB || vr == DICOM_VR_OW)
        return read_fragments(r, el, end);
    char vs[3];
    dicom_vr_str(vr, vs);
    return bad(r, el->tag, at, "undefined length is not allowed for VR %s", vs);
}

/* One element at r->pos (8 bytes are known to be there) into ds. */
static int read_element(Rd *r, DicomDataset *ds, size_t end, unsigned depth)
{
    size_t at = r->pos;
    uint32_t tag = rd_tag(r, at);
    DicomElement el = {.tag = tag};
    uint32_t len;
    if (r->explicit_vr) {
        uint8_t a = r->buf[at + 4];
        uint8_t b = r->buf[at + 5];
        el.vr = DICOM_VR(a, b);
        if (!is_vr_byte(a) || !is_vr_byte(b) || !dicom__vr_info(el.vr))
            return bad(r, tag, at, "bytes %02X %02X are not a VR (Explicit VR expected)", a, b);
        if (dicom_vr_long_length(el.vr)) {
            if (end - at < 12)
                return cut(r, end, tag, at, "element header cut short");
            len = rd32(r, at + 8);
            r->pos = at + 12;
        } else {
            len = rd16(r, at + 6);
            r->pos = at + 8;
        }
    } else {
        el.vr = implicit_vr(tag);
        len = rd32(r, at + 4);
        r->pos = at + 8;
    }
    int rc = len == UNDEFINED_LENGTH ? read_undefined(r, &el, end, at, depth)
                                     : read_defined(r, &el, len, end, at, depth);
    if (!rc && dicom__put(ds, &el, NULL))
        rc = nomem(r, tag, sizeof el);
    if (rc)
        dicom__element_clear(&el);
    return rc;
}

/* Elements up to end, or (delimited) up to an item delimiter. depth counts enclosing items.
 * Elements should come in ascending tag order (PS3.5 7.1); a few that do not are put in their
 * place, but each costs a move of the array, so many of them (only a crafted file has that)
 * are refused rather than read in quadratic time. */
static int parse_dataset(Rd *r, DicomDataset *ds, size_t end, int delimited, unsigned depth)
{
    uint32_t last = 0;
    unsigned unsorted = 0;
    for (;;) {
        size_t at = r->pos;
        if (!delimited && at == end)
            return ERR_OK;
        if (end - at < 8) {
            if (delimited)
                return cut(r, end, 0, at, "item of undefined length ends without (FFFE,E00D)");
            return cut(r, end, 0, at, "%zu stray bytes where an element header (8) should be",
                       end - at);
        }
        uint32_t tag = rd_tag(r, at);
        if (tag == DICOM_TAG_ITEM_DELIMITATION) {
            if (!delimited)
                return bad(r, tag, at, "item delimiter outside an item of undefined length");
            r->pos = at + 8;
            return ERR_OK;
        }
        if (DICOM_GROUP(tag) == 0xFFFE)
            return bad(r, tag, at, "item or delimiter where a data element should be");
        if (depth == 0 && tag == DICOM_TAG_PIXEL_DATA && r->stop_before_pixels) {
            r->stopped = 1;
            r->pixel_at = at;
            return ERR_OK;
        }
        if (ds->count && tag <= last && ++unsorted > MAX_UNSORTED)
            return bad(r, tag, at, "more than %d elements out of ascending tag order",
                       MAX_UNSORTED);
        last = tag > last ? tag : last;
        int rc = read_element(r, ds, end, depth);
        if (rc)
            return rc;
    }
}

// ---------------------------------------------------------------------------------------------
// File meta, syntax, inflate

/* Reads the group-0002 elements at r->pos into meta: up to the end the group length gives, or
 * to the first element of another group. */
static int read_meta(Rd *r, DicomDataset *meta)
{
    r->big = 0;
    r->explicit_vr =
        r->len - r->pos >= 6 && is_vr_byte(r->buf[r->pos + 4]) && is_vr_byte(r->buf[r->pos + 5]);
    size_t meta_end = 0;
    while (r->len - r->pos >= 8 && DICOM_GROUP(rd_tag(r, r->pos)) == 0x0002) {
        if (meta_end && r->pos >= meta_end)
            break;
        uint32_t tag = rd_tag(r, r->pos);
        int rc = read_element(r, meta, r->len, 0);
        if (rc)
            return rc;
        if (tag == DICOM_TAG_FILE_META_GROUP_LENGTH) {
            const DicomElement *gl = dicom_find(meta, tag);
            if (gl->length != 4)
                return bad(r, tag, r->pos, "group length of %u bytes, 4 expected", gl->length);
            uint32_t n = dicom__le32(gl->value);
            if (n > r->len - r->pos)
                return cut(r, r->len, tag, r->pos, "meta group of %u bytes, only %zu remain", n,
                           r->len - r->pos);
            meta_end = r->pos + n;
        }
    }
    if (meta_end && r->pos != meta_end)
        return bad(r, 0, r->pos, "the meta group ends at byte %zu, not %zu as its length says",
                   r->pos, meta_end);
    return ERR_OK;
}

/* Explicit VR and byte order of the data set at buf[pos..len), from its first element. A bare
 * data set (no preamble, no meta) must also look like one: an even standard group and a length
 * that fits, or the buffer is "not a DICOM file" (random bytes and text files end here, rather
 * than as a data set with an absurd first length). */
static int guess_encoding(Rd *r, int *explicit_vr, int *big, int bare)
{
    size_t n = r->len - r->pos;
    *explicit_vr = 1;
    *big = 0;
    if (n == 0 && !bare)
        return ERR_OK;
    if (n < 8) {
        if (bare)
            return bad(r, 0, r->pos, "%zu bytes: not a DICOM file", n);
        return cut(r, r->len, 0, r->pos, "%zu bytes are too few for a data element", n);
    }
    const uint8_t *p = r->buf + r->pos;
    *explicit_vr = is_vr_byte(p[4]) && is_vr_byte(p[5]) && dicom__vr_info(DICOM_VR(p[4], p[5]));
    uint16_t le = (uint16_t)(p[0] | (p[1] << 8));
    uint16_t be = (uint16_t)((p[0] << 8) | p[1]);
    *big = *explicit_vr && be < le;
    if (!bare)
        return ERR_OK;
    uint16_t group = *big ? be : le;
    Rd probe = *r;
    probe.big = *big;
    uint32_t len = UNDEFINED_LENGTH;
    size_t header = 8;
    if (!*explicit_vr) {
        len = rd32(&probe, r->pos + 4);
    } else if (!dicom_vr_long_length(DICOM_VR(p[4], p[5]))) {
        len = rd16(&probe, r->pos + 6);
    } else if (n >= 12) {
        len = rd32(&probe, r->pos + 8);
        header = 12;
    }
    int fits = len == UNDEFINED_LENGTH || len <= n - header;
    if ((group & 1) || group < 0x0002 || group > 0x7FE0 || !fits)
        return bad(r, 0, r->pos,
                   "neither DICM at byte 128 nor a plausible data element at the start (group "
                   "%04X, length %u): not a DICOM file",
                   group, len);
    return ERR_OK;
}

#if ONFH_HAVE_LIBDEFLATE
/* inflate_rest's fast path: libdeflate inflates a whole stream at 2 to 3 times zlib's speed,
 * but only into a buffer large enough for all of it, and it says only "bad data" where zlib
 * tells a stream cut short (truncated) from a corrupt one. So: buffers of 4x the input, doubled
 * while too small, up to DICOM_MAX_INFLATED; 1 when it inflated, 0 to leave the stream to zlib,
 * whose messages (and verdicts) then stand, as they did before. ERR_NOMEM aside, nothing here
 * fails. */
static struct libdeflate_decompressor *decompressor; /* one per process: reads are not threaded */

static int inflate_fast(Rd *r, uint8_t **out, size_t *out_len, int *rc)
{
    const uint8_t *in = r->buf + r->pos;
    size_t in_len = r->len - r->pos;
    if (!decompressor && !(decompressor = libdeflate_alloc_decompressor()))
        return 0;
    size_t cap = in_len < 16384 ? 65536 : 4 * in_len;
    for (;;) {
        cap = cap > DICOM_MAX_INFLATED ? DICOM_MAX_INFLATED : cap;
        uint8_t *buf = mem_alloc(cap);
        if (!buf) {
            *rc = nomem(r, 0, cap);
            return 1;
        }
        size_t used = 0, n = 0;
        enum libdeflate_result res =
            libdeflate_deflate_decompress_ex(decompressor, in, in_len, buf, cap, &used, &n);
        if (res == LIBDEFLATE_SUCCESS) {
            *out = buf;
            *out_len = n;
            *rc = ERR_OK;
            return 1;
        }
        mem_free(buf);
        if (res != LIBDEFLATE_INSUFFICIENT_SPACE || cap == DICOM_MAX_INFLATED)
            return 0;
        cap *= 2;
    }
}
#endif

/* Raw-inflates buf[pos..len) (PS3.5 A.5: deflate without zlib header) into *out. */
static int inflate_rest(Rd *r, uint8_t **out, size_t *out_len)
{
#if ONFH_HAVE_LIBDEFLATE
    int fast_rc;
    if (inflate_fast(r, out, out_len, &fast_rc))
        return fast_rc;
#endif
    *out = NULL;
    z_stream zs = {.zalloc = dicom__zalloc, .zfree = dicom__zfree};
    int zrc = inflateInit2(&zs, -MAX_WBITS);
    if (zrc != Z_OK)
        return zrc == Z_MEM_ERROR ? nomem(r, 0, sizeof zs)
                                  : bad(r, 0, r->pos, "inflateInit2 failed: %d", zrc);
    const uint8_t *in = r->buf + r->pos;
    size_t in_left = r->len - r->pos;
    size_t cap = in_left < 16384 ? 65536 : 4 * in_left;
    if (cap > DICOM_MAX_INFLATED)
        cap = DICOM_MAX_INFLATED;
    uint8_t *buf = mem_alloc(cap);
    size_t n = 0;
    int rc = ERR_OK;
    if (!buf) {
        rc = nomem(r, 0, cap);
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap == DICOM_MAX_INFLATED) {
                rc = bad(r, 0, r->pos, "deflated data set inflates beyond %zu bytes",
                         DICOM_MAX_INFLATED);
                goto out;
            }
            size_t grown_cap = 2 * cap < DICOM_MAX_INFLATED ? 2 * cap : DICOM_MAX_INFLATED;
            uint8_t *grown = mem_realloc(buf, grown_cap);
            if (!grown) {
                rc = nomem(r, 0, grown_cap);
                goto out;
            }
            buf = grown;
            cap = grown_cap;
        }
        uInt in_chunk = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
        uInt out_chunk = cap - n > 0x40000000u ? 0x40000000u : (uInt)(cap - n);
        zs.next_in = (Bytef *)in;
        zs.avail_in = in_chunk;
        zs.next_out = buf + n;
        zs.avail_out = out_chunk;
        zrc = inflate(&zs, Z_NO_FLUSH);
        in += in_chunk - zs.avail_in;
        in_left -= in_chunk - zs.avail_in;
        n += out_chunk - zs.avail_out;
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_MEM_ERROR) {
            rc = nomem(r, 0, 0);
            goto out;
        }
        if (zrc == Z_DATA_ERROR || zrc == Z_NEED_DICT) {
            rc = bad(r, 0, r->pos, "deflated data set: %s", zs.msg ? zs.msg : "bad data");
            goto out;
        }
        if (zrc == Z_BUF_ERROR && in_left == 0) {
            r->short_data = 1;
            rc = bad(r, 0, r->len, "deflated data set ends before its deflate stream does");
            goto out;
        }
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    mem_free(buf);
    inflateEnd(&zs);
    return rc;
}

/* The meta's TransferSyntaxUID into f->ts_uid, trimmed; 0 when absent. */
static int meta_ts(Rd *r, DicomFile *f, int *present)
{
    const DicomElement *el = dicom_find(f->meta, DICOM_TAG_TRANSFER_SYNTAX_UID);
    *present = 0;
    if (!el)
        return ERR_OK;
    uint32_t n = el->length;
    while (n && (el->value[n - 1] == '\0' || el->value[n - 1] == ' '))
        n--;
    if (n == 0)
        return ERR_OK;
    if (n > DICOM_UID_MAX)
        return bad(r, DICOM_TAG_TRANSFER_SYNTAX_UID, 0, "UID of %u characters (64 at most)", n);
    memcpy(f->ts_uid, el->value, n);
    f->ts_uid[n] = '\0';
    f->ts = dicom_ts_find(f->ts_uid);
    *present = 1;
    return ERR_OK;
}

static const char *ts_uid_for(int explicit_vr, int big)
{
    return !explicit_vr ? "1.2.840.10008.1.2" : big ? "1.2.840.10008.1.2.2" : "1.2.840.10008.1.2.1";
}

/* The data set at r->pos, in the encoding the syntax (or the bytes) say. */
static int read_body(Rd *r, DicomFile *f)
{
    int present;
    int rc = meta_ts(r, f, &present);
    if (rc)
        return rc;
    f->ts_guessed = !present;
    if (present && f->ts && f->ts->deflated && f->ts->supported) {
        uint8_t *plain = NULL;
        size_t n = 0;
        rc = inflate_rest(r, &plain, &n);
        if (rc)
            return rc;
        Rd in = *r;
        in.buf = plain;
        in.len = n;
        in.pos = 0;
        in.explicit_vr = 1;
        in.big = 0;
        in.inflated = 1;
        rc = parse_dataset(&in, f->ds, in.len, 0, 0);
        r->stopped = in.stopped;
        mem_free(plain);
        return rc;
    }
    int explicit_vr = 1;
    int big = 0;
    rc = guess_encoding(r, &explicit_vr, &big, f->form == DICOM_FILE_DATASET_ONLY);
    if (rc)
        return rc;
    if (present && f->ts && f->ts->supported && !f->ts->deflated)
        big = f->ts->big_endian; /* the syntax knows the byte order; VR-ness follows the bytes */
    if (!present) {
        snprintf(f->ts_uid, sizeof f->ts_uid, "%s", ts_uid_for(explicit_vr, big));
        f->ts = dicom_ts_find(f->ts_uid);
    }
    r->explicit_vr = explicit_vr;
    r->big = big;
    return parse_dataset(r, f->ds, r->len, 0, 0);
}

void dicom_file_free(DicomFile *f)
{
    if (!f)
        return;
    dicom_dataset_free(f->meta);
    dicom_dataset_free(f->ds);
    mem_free(f->name);
    mem_free(f);
}

/* Parses data; *short_data tells the caller whether a failure came from the buffer ending. */
static int read_buffer(const uint8_t *data, size_t len, const char *name,
                       const DicomReadOptions *opt, DicomFile **out, int *short_data, Err *e)
{
    *out = NULL;
    *short_data = 0;
    if (!name)
        name = "<memory>";
    DicomFile *f = mem_calloc(1, sizeof *f);
    if (!f || !(f->name = mem_strdup(name)) || dicom_dataset_new(&f->meta, NULL) ||
        dicom_dataset_new(&f->ds, NULL)) {
        dicom_file_free(f);
        return err_set(e, ERR_NOMEM, "dicom: %s: no memory for the file structure", name);
    }
    Rd r = {.buf = data, .len = len, .name = f->name, .e = e};
    r.stop_before_pixels = opt && opt->stop_before_pixels;
    r.borrow_pixels = opt && opt->borrow_pixel_data;
    int rc = ERR_OK;
    if (len >= 132 && memcmp(data + 128, "DICM", 4) == 0) {
        f->form = DICOM_FILE_PART10;
        r.pos = 132;
        rc = read_meta(&r, f->meta);
    } else if (len >= 8 && data[0] == 0x02 && data[1] == 0x00 && data[3] == 0x00) {
        f->form = DICOM_FILE_NO_PREAMBLE;
        rc = read_meta(&r, f->meta);
    } else {
        f->form = DICOM_FILE_DATASET_ONLY;
    }
    if (!rc)
        rc = read_body(&r, f);
    f->pixels_skipped = r.stopped;
    if (r.stopped && !r.inflated) {
        f->pixel_offset = r.pixel_at;
        f->pixel_big = (uint8_t)r.big;
        f->pixel_explicit_vr = (uint8_t)r.explicit_vr;
    }
    if (rc) {
        *short_data = r.short_data;
        if (r.short_data && e && e->code == ERR_FORMAT) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            err_set(e, ERR_FORMAT, "%.1000s (truncated)", msg);
        }
        dicom_file_free(f);
        return rc;
    }
    *out = f;
    return ERR_OK;
}

int dicom_error_truncated(const Err *e)
{
    static const char mark[] = " (truncated)";
    size_t n = e ? strlen(e->msg) : 0;
    return e && e->code == ERR_FORMAT && n >= sizeof mark - 1 &&
           strcmp(e->msg + n - (sizeof mark - 1), mark) == 0;
}

/* Where check_pixel_extent reads element and item headers: an open file (fp) or the bytes of
 * one in memory (mem, size bytes). */
typedef struct ExtentSrc {
    FILE *fp;
    const uint8_t *mem;
    uint64_t size;
} ExtentSrc;

/* n bytes at offset at into out; 0 when they are not all there. */
static int extent_read(const ExtentSrc *src, uint64_t at, uint8_t *out, size_t n)
{
    if (at > src->size || n > src->size - at)
        return 0;
    if (src->mem) {
        memcpy(out, src->mem + at, n);
        return 1;
    }
    return fseeko(src->fp, (off_t)at, SEEK_SET) == 0 && fread(out, 1, n, src->fp) == n;
}

/* check_pixel_extent: the PixelData element at f->pixel_offset, and each of its items when it
 * is encapsulated, must end within the file's size. Only the element and item headers are read
 * (8 or 12 bytes each), so a header scan catches a file cut inside its pixels without reading
 * them. Elements after PixelData (trailing padding) are not looked at. */
static int check_pixel_extent(const ExtentSrc *src, const char *path, const DicomFile *f, Err *e)
{
    uint64_t size = src->size, at = f->pixel_offset;
    Rd r = {.big = f->pixel_big, .name = path, .e = e};
    uint8_t h[12];
    if (!extent_read(src, at, h, 8))
        goto truncated;
    r.buf = h;
    uint64_t len, hdr = 8;
    if (f->pixel_explicit_vr && is_vr_byte(h[4]) && is_vr_byte(h[5])) {
        if (dicom_vr_long_length(DICOM_VR(h[4], h[5]))) {
            if (!extent_read(src, at + 8, h + 8, 4))
                goto truncated;
            len = rd32(&r, 8);
            hdr = 12;
        } else {
            len = rd16(&r, 6);
        }
    } else {
        len = rd32(&r, 4);
    }
    if (len != UNDEFINED_LENGTH) {
        if (at + hdr + len > size)
            goto truncated;
        return ERR_OK;
    }
    /* Encapsulated: items up to the sequence delimiter; each header read moves 8 bytes on. */
    for (uint64_t pos = at + hdr;;) {
        if (!extent_read(src, pos, h, 8))
            goto truncated;
        uint32_t tag = rd_tag(&r, 0), n = rd32(&r, 4);
        if (tag == DICOM_TAG_SEQUENCE_DELIMITATION)
            return ERR_OK;
        if (tag != DICOM_TAG_ITEM)
            return err_set(e, ERR_FORMAT,
                           "dicom: %s: (7FE0,0010) PixelData: at byte %llu: (%04X,%04X) where "
                           "an item or the sequence delimiter should be",
                           path, (unsigned long long)pos, DICOM_GROUP(tag), DICOM_ELEMENT(tag));
        pos += 8 + (uint64_t)n;
        if (pos > size)
            goto truncated;
    }
truncated:
    return err_set(e, ERR_FORMAT,
                   "dicom: %s: (7FE0,0010) PixelData: at byte %llu: the pixel data runs past the "
                   "end of the file (%llu bytes) (truncated)",
                   path, (unsigned long long)at, (unsigned long long)size);
}

int dicom_read_mem(const void *data, size_t len, const char *name, const DicomReadOptions *opt,
                   DicomFile **out, Err *e)
{
    int short_data;
    int rc = read_buffer(data, len, name, opt, out, &short_data, e);
    if (!rc && opt && opt->check_pixel_extent && (*out)->pixels_skipped && (*out)->pixel_offset &&
        (rc = check_pixel_extent(&(ExtentSrc){.mem = data, .size = len}, (*out)->name, *out, e))) {
        dicom_file_free(*out);
        *out = NULL;
    }
    return rc;
}

/* A header scan: reads 64 KiB, then, when the parse ran out of bytes, the whole file (a header
 * past 64 KiB is rare, and a deflated data set must be inflated from its start each time). */
static int read_file_prefix(const char *path, const DicomReadOptions *opt, DicomFile **out, Err *e)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return err_set(e, ERR_IO, "dicom: %s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0;
    size_t want = 65536;
    int rc;
    for (;;) {
        uint8_t *grown = mem_realloc(buf, want);
        if (!grown) {
            rc = err_set(e, ERR_NOMEM, "dicom: %s: no memory for %zu bytes", path, want);
            break;
        }
        buf = grown;
        n += fread(buf + n, 1, want - n, fp);
        if (ferror(fp)) {
            rc = err_set(e, ERR_IO, "dicom: %s: read error: %s", path, strerror(errno));
            break;
        }
        int eof = n < want;
        int short_data;
        rc = read_buffer(buf, n, path, opt, out, &short_data, e);
        if (!rc || eof || !short_data || want > SIZE_MAX / 8)
            break;
        struct stat st;
        size_t whole = fstat(fileno(fp), &st) == 0 ? (size_t)st.st_size + 1 : 0;
        want = whole > want * 4 ? whole : want * 4;
    }
    struct stat st;
    if (!rc && opt->check_pixel_extent && (*out)->pixels_skipped && (*out)->pixel_offset) {
        if (fstat(fileno(fp), &st) != 0)
            rc = err_set(e, ERR_IO, "dicom: %s: cannot stat: %s", path, strerror(errno));
        else
            rc = check_pixel_extent(&(ExtentSrc){.fp = fp, .size = (uint64_t)st.st_size}, path,
                                    *out, e);
        if (rc) {
            dicom_file_free(*out);
            *out = NULL;
        }
    }
    mem_free(buf);
    fclose(fp);
    return rc;
}

int dicom_read_file(const char *path, const DicomReadOptions *opt, DicomFile **out, Err *e)
{
    *out = NULL;
    if (opt && opt->stop_before_pixels)
        return read_file_prefix(path, opt, out, e);
    char *data;
    size_t len;
    int rc = file_read_all(path, &data, &len, e);
    if (rc)
        return e ? err_prefix(e, "dicom: ") : rc;
    DicomReadOptions own = opt ? *opt : (DicomReadOptions){0};
    own.borrow_pixel_data = 0; /* the bytes are freed below */
    rc = dicom_read_mem(data, len, path, &own, out, e);
    mem_free(data);
    return rc;
}
