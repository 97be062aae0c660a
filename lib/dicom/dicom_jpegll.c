/* dicom_jpegll.c: onfh's own decoder for lossless JPEG (ITU-T T.81 process 14, Annex H): the
 * DICOM transfer syntaxes 1.2.840.10008.1.2.4.57 (any predictor) and .70 (predictor 1).
 *
 * The stream: SOI, tables (DHT, DRI; others skipped), SOF3 (precision P of 2..16 bits, rows,
 * columns, components, each sampled 1x1), then one or more scans (SOS: components, predictor
 * Ss in 1..7, point transform Pt = Al), EOI. A scan is Huffman-coded differences (H.1.2.2: a
 * DC-style category 0..16 and that many extra bits; 16 means 32768 with no extra bits), in
 * interleaved order when it holds several components. Each sample is its prediction plus its
 * difference, modulo 2^16 (H.2.1), in the point-transformed domain; the output is shifted back
 * left by Pt. Predictions (H.1.2.1; Ra left, Rb above, Rc above-left):
 *
 *   1 Ra   2 Rb   3 Rc   4 Ra + Rb - Rc   5 Ra + (Rb - Rc) / 2   6 Rb + (Ra - Rc) / 2
 *   7 (Ra + Rb) / 2                    (halving is an arithmetic shift right, as T.81 says)
 *
 * The first row of a scan, and of each restart interval, uses Ra, and its first sample 2^(P-Pt-1);
 * the first sample of every other row uses Rb. Restart intervals must be whole rows (T.81 H.2.2
 * asks lossless encoders for that; libjpeg assumes it too).
 *
 * Safety: every segment length is checked against the buffer; Huffman tables are checked to
 * form a prefix code (C.2); the bit reader appends zero bits once the entropy-coded data ends
 * (at a marker or the buffer's end) and counts them, so consuming any is the error "ends early",
 * never a read past the end. Not supported (clear errors): arithmetic coding, hierarchical
 * mode, subsampled components, DNL-defined heights. */
#include <stdio.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/util/mem.h"

#define FAST_BITS  9
#define MAX_COMP   4
#define CODEC_NAME "JPEG lossless"

typedef struct Huff {
    uint8_t fast_len[1 << FAST_BITS]; /* length of the code a FAST_BITS-bit prefix starts with */
    uint8_t fast_val[1 << FAST_BITS]; /* ... and its value; length 0: longer code or none */
    int32_t maxcode[17];              /* largest code of each length, -1 for none */
    int32_t valoff[17];               /* value index of a code of length l: code + valoff[l] */
    uint8_t val[256];
    int defined;
} Huff;

typedef struct Bits {
    const uint8_t *p;
    size_t len;
    size_t pos;   /* next byte to read */
    uint64_t acc; /* nbits bits, the oldest at bit nbits - 1 */
    int nbits;
    int fake;    /* zero bits appended after the data ended, at the bottom of acc */
    int stopped; /* at a marker or the end: no more data bytes */
} Bits;

typedef struct Jpg {
    const DicomCodecFrame *f;
    Err *e;
    const uint8_t *p;
    size_t len;
    size_t pos;
    int have_sof;
    unsigned precision;
    unsigned width;
    unsigned height;
    unsigned ncomp;
    uint8_t comp_id[MAX_COMP];
    unsigned restart; /* restart interval in MCUs (DRI), 0 for none */
    Huff tables[4];
    uint16_t *planes[MAX_COMP];
    unsigned pt[MAX_COMP]; /* point transform each component was coded with */
    int decoded[MAX_COMP];
} Jpg;

static int fail(Jpg *j, const char *what, size_t at)
{
    return dicom__codec_error(j->f, j->e, ERR_FORMAT, CODEC_NAME, "%s (stream byte %zu)", what, at);
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)(p[0] << 8 | p[1]);
}

// ---------------------------------------------------------------------------------------------
// Huffman tables (T.81 Annex C, F.2.2.3)

/* bits[l] codes of length l (l = 1..16) for the values vals, in order. -1 if they overflow. */
static int huff_build(Huff *h, const uint8_t *bits, const uint8_t *vals)
{
    memset(h, 0, sizeof *h);
    int32_t code = 0;
    unsigned k = 0;
    for (int l = 1; l <= 16; l++) {
        h->valoff[l] = (int32_t)k - code;
        for (unsigned i = 0; i < bits[l - 1]; i++) {
            if (code >= (1 << l))
                return -1;
            if (l <= FAST_BITS) {
                unsigned first = (unsigned)code << (FAST_BITS - l);
                for (unsigned x = 0; x < 1u << (FAST_BITS - l); x++) {
                    h->fast_len[first + x] = (uint8_t)l;
                    h->fast_val[first + x] = vals[k];
                }
            }
            h->val[k] = vals[k];
            k++;
            code++;
        }
        h->maxcode[l] = bits[l - 1] ? code - 1 : -1;
        code <<= 1;
    }
    h->defined = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Bits (F.2.2.5: bytes 0xFF are followed by a stuffed 0x00; any other byte after 0xFF is a marker)

static void bits_fill(Bits *b)
{
    while (b->nbits <= 56) {
        int byte = -1;
        if (!b->stopped) {
            if (b->pos < b->len && b->p[b->pos] != 0xFF) {
                byte = b->p[b->pos++];
            } else if (b->pos + 1 < b->len && b->p[b->pos + 1] == 0x00) {
                byte = 0xFF;
                b->pos += 2;
            } else {
                b->stopped = 1; /* pos stays on the marker */
            }
        }
        if (byte < 0) {
            byte = 0;
            b->fake += 8;
        }
        b->acc = (b->acc << 8) | (uint64_t)byte;
        b->nbits += 8;
    }
}

static uint32_t bits_get(Bits *b, int n)
{
    if (b->nbits < n)
        bits_fill(b);
    b->nbits -= n;
    return (uint32_t)(b->acc >> b->nbits) & ((1u << n) - 1);
}

/* The next Huffman-coded value, or -1 for a code not in the table. */
static int huff_decode(Bits *b, const Huff *h)
{
    if (b->nbits < 16)
        bits_fill(b);
    unsigned peek = (unsigned)(b->acc >> (b->nbits - FAST_BITS)) & ((1u << FAST_BITS) - 1);
    if (h->fast_len[peek]) {
        b->nbits -= h->fast_len[peek];
        return h->fast_val[peek];
    }
    uint32_t code16 = (uint32_t)(b->acc >> (b->nbits - 16)) & 0xFFFF;
    for (int l = FAST_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(code16 >> (16 - l));
        if (code <= h->maxcode[l]) {
            b->nbits -= l;
            return h->val[code + h->valoff[l]];
        }
    }
    return -1;
}

/* A difference of category s (H.1.2.2, table H.2; F.2.2.1 EXTEND). */
static int32_t receive_diff(Bits *b, int s)
{
    if (s == 0)
        return 0;
    if (s == 16)
        return 32768;
    int32_t v = (int32_t)bits_get(b, s);
    return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
}

// ---------------------------------------------------------------------------------------------
// Marker segments

static int read_sof(Jpg *j, const uint8_t *s, unsigned n, size_t at)
{
    const DicomCodecFrame *f = j->f;
    if (j->have_sof)
        return fail(j, "a second SOF", at);
    if (n < 6 || n != 6 + 3u * s[5])
        return fail(j, "SOF3 segment of the wrong length", at);
    j->precision = s[0];
    j->height = be16(s + 1);
    j->width = be16(s + 3);
    j->ncomp = s[5];
    if (j->precision < 2 || j->precision > 16)
        return fail(j, "sample precision outside 2..16", at);
    if (j->height == 0)
        return fail(j, "height defined by a DNL marker: not supported", at);
    if (j->ncomp < 1 || j->ncomp > MAX_COMP)
        return fail(j, "1 to 4 components expected", at);
    if (j->width != f->columns || j->height != f->rows || j->ncomp != f->samples)
        return dicom__codec_error(f, j->e, ERR_FORMAT, CODEC_NAME,
                                  "the stream is %u x %u x %u, the data set says %u x %u x %u",
                                  j->height, j->width, j->ncomp, f->rows, f->columns, f->samples);
    for (unsigned c = 0; c < j->ncomp; c++) {
        j->comp_id[c] = s[6 + 3 * c];
        if (s[7 + 3 * c] != 0x11)
            return fail(j, "subsampled component: not supported", at);
    }
    j->have_sof = 1;
    return ERR_OK;
}

static int read_dht(Jpg *j, const uint8_t *s, unsigned n, size_t at)
{
    while (n > 0) {
        if (n < 17)
            return fail(j, "DHT segment cut short", at);
        unsigned tc = s[0] >> 4;
        unsigned th = s[0] & 15;
        unsigned total = 0;
        for (int l = 0; l < 16; l++)
            total += s[1 + l];
        if (tc > 1 || th > 3 || total > 256 || 17 + total > n)
            return fail(j, "bad DHT table header", at);
        /* Lossless scans use the DC-class tables; AC-class ones are checked and skipped. */
        if (tc == 0 && huff_build(&j->tables[th], s + 1, s + 17))
            return fail(j, "Huffman table with more codes than its lengths allow", at);
        s += 17 + total;
        n -= 17 + total;
    }
    return ERR_OK;
}

/* Position of the next marker at or after pos (skipping entropy-coded bytes and fill). */
static size_t next_marker(const Jpg *j, size_t pos)
{
    while (pos + 1 < j->len) {
        if (j->p[pos] == 0xFF && j->p[pos + 1] != 0x00 && j->p[pos + 1] != 0xFF &&
            (j->p[pos + 1] < 0xD0 || j->p[pos + 1] > 0xD7))
            return pos;
        pos++;
    }
    return j->len;
}

// ---------------------------------------------------------------------------------------------
// Scans

static inline int32_t predict(unsigned psv, int32_t ra, int32_t rb, int32_t rc)
{
    switch (psv) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
    }
}

/* After a restart interval: drop the leftover bits, expect RSTn (after any stray bytes, which
 * libjpeg also skips), start reading after it. */
static int restart(Jpg *j, Bits *b, unsigned *next_rst)
{
    size_t pos = b->pos;
    while (pos + 1 < b->len &&
           !(b->p[pos] == 0xFF && b->p[pos + 1] != 0x00 && b->p[pos + 1] != 0xFF))
        pos++;
    if (pos + 1 >= b->len || b->p[pos + 1] != 0xD0 + *next_rst)
        return fail(j, "restart marker expected", (size_t)(b->p - j->p) + pos);
    b->pos = pos + 2;
    b->acc = 0;
    b->nbits = 0;
    b->fake = 0;
    b->stopped = 0;
    *next_rst = (*next_rst + 1) & 7;
    return ERR_OK;
}

static int decode_scan(Jpg *j, const unsigned *comp, const unsigned *table, unsigned ns,
                       unsigned psv, unsigned pt)
{
    unsigned w = j->width;
    unsigned h = j->height;
    if (j->restart && j->restart % w)
        return fail(j, "restart interval not a whole number of rows: not supported", j->pos);
    unsigned rows_per_interval = j->restart ? j->restart / w : 0;
    int32_t initial = 1 << (j->precision - pt - 1);
    Bits b = {.p = j->p + j->pos, .len = j->len - j->pos};
    unsigned next_rst = 0;
    unsigned first_row = 0;
    for (unsigned y = 0; y < h; y++) {
        if (rows_per_interval && y > 0 && y % rows_per_interval == 0) {
            int rc = restart(j, &b, &next_rst);
            if (rc)
                return rc;
            first_row = y;
        }
        for (unsigned x = 0; x < w; x++)
            for (unsigned i = 0; i < ns; i++) {
                int s = huff_decode(&b, &j->tables[table[i]]);
                if (s < 0 || s > 16)
                    return fail(j, s < 0 ? "invalid Huffman code" : "difference category > 16",
                                j->pos + b.pos);
                int32_t diff = receive_diff(&b, s);
                uint16_t *row = j->planes[comp[i]] + (size_t)y * w;
                int32_t pred;
                if (y == first_row)
                    pred = x == 0 ? initial : row[x - 1];
                else if (x == 0)
                    pred = row[(ptrdiff_t)x - w];
                else
                    pred =
                        predict(psv, row[x - 1], row[(ptrdiff_t)x - w], row[(ptrdiff_t)x - w - 1]);
                row[x] = (uint16_t)(pred + diff);
            }
        if (b.nbits < b.fake)
            return fail(j, "entropy-coded data ends early", j->pos + b.pos);
    }
    for (unsigned i = 0; i < ns; i++) {
        j->decoded[comp[i]] = 1;
        j->pt[comp[i]] = pt;
    }
    j->pos = next_marker(j, j->pos + b.pos);
    return ERR_OK;
}

static int read_sos(Jpg *j, const uint8_t *s, unsigned n, size_t at)
{
    if (!j->have_sof)
        return fail(j, "SOS before SOF3", at);
    unsigned ns = n ? s[0] : 0;
    if (ns < 1 || ns > j->ncomp || n != 4 + 2 * ns)
        return fail(j, "bad SOS segment", at);
    unsigned comp[MAX_COMP];
    unsigned table[MAX_COMP];
    for (unsigned i = 0; i < ns; i++) {
        unsigned c = 0;
        while (c < j->ncomp && j->comp_id[c] != s[1 + 2 * i])
            c++;
        if (c == j->ncomp || j->decoded[c])
            return fail(j, "SOS names an unknown or already decoded component", at);
        comp[i] = c;
        table[i] = s[2 + 2 * i] >> 4;
        if (table[i] > 3 || !j->tables[table[i]].defined)
            return fail(j, "SOS selects an undefined Huffman table", at);
    }
    unsigned psv = s[1 + 2 * ns];
    unsigned pt = s[3 + 2 * ns] & 15;
    if (psv < 1 || psv > 7)
        return fail(j, "predictor outside 1..7", at);
    if (pt >= j->precision)
        return fail(j, "point transform not below the precision", at);
    return decode_scan(j, comp, table, ns, psv, pt);
}

// ---------------------------------------------------------------------------------------------
// The stream

static int parse(Jpg *j)
{
    if (j->len < 2 || j->p[0] != 0xFF || j->p[1] != 0xD8)
        return fail(j, "no SOI marker at the start", 0);
    j->pos = 2;
    for (;;) {
        if (j->pos + 2 > j->len) {
            /* A missing EOI after complete scans costs nothing (libjpeg warns, no more). */
            int done = j->have_sof;
            for (unsigned c = 0; c < j->ncomp; c++)
                done = done && j->decoded[c];
            return done ? ERR_OK : fail(j, "stream ends before EOI", j->pos);
        }
        if (j->p[j->pos] != 0xFF)
            return fail(j, "marker expected", j->pos);
        while (j->pos + 2 < j->len && j->p[j->pos + 1] == 0xFF)
            j->pos++;
        size_t at = j->pos;
        unsigned m = j->p[j->pos + 1];
        j->pos += 2;
        if (m == 0xD9)
            return ERR_OK;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* TEM, or a stray RST: no segment */
        if (m == 0xD8)
            return fail(j, "second SOI", at);
        if (j->pos + 2 > j->len || be16(j->p + j->pos) < 2 || be16(j->p + j->pos) > j->len - j->pos)
            return fail(j, "marker segment longer than the stream", at);
        const uint8_t *s = j->p + j->pos + 2;
        unsigned n = be16(j->p + j->pos) - 2;
        j->pos += 2 + n;
        int rc = ERR_OK;
        if (m == 0xC3) {
            rc = read_sof(j, s, n, at);
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            char what[80];
            snprintf(what, sizeof what, "SOF%u: not lossless process 14 (SOF3)", m - 0xC0);
            rc = fail(j, what, at);
        } else if (m == 0xCC) {
            rc = fail(j, "arithmetic coding (DAC): not supported", at);
        } else if (m == 0xC4) {
            rc = read_dht(j, s, n, at);
        } else if (m == 0xDD) {
            if (n != 2)
                return fail(j, "bad DRI segment", at);
            j->restart = be16(s);
        } else if (m == 0xDA) {
            rc = read_sos(j, s, n, at);
        } else if (m == 0xDC) {
            rc = fail(j, "DNL marker: not supported", at);
        }
        if (rc)
            return rc;
    }
}

int dicom__decode_jpeg_lossless(const DicomCodecFrame *f, uint16_t *out, unsigned *precision,
                                Err *e)
{
    *precision = 0;
    Jpg *j = mem_calloc(1, sizeof *j);
    if (!j)
        return dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for the decoder");
    j->f = f;
    j->e = e;
    j->p = f->data;
    j->len = f->len;
    size_t npix = (size_t)f->rows * f->columns;
    int rc = ERR_OK;
    /* One component decodes in place; more go to planes, interleaved at the end. */
    for (unsigned c = 0; c < f->samples && c < MAX_COMP; c++) {
        j->planes[c] = f->samples == 1 ? out : mem_alloc(npix * sizeof(uint16_t));
        if (!j->planes[c]) {
            rc = dicom__codec_error(f, e, ERR_NOMEM, CODEC_NAME, "no memory for %zu samples", npix);
            goto out;
        }
    }
    rc = parse(j);
    if (rc)
        goto out;
    if (!j->have_sof) {
        rc = fail(j, "no SOF3 before EOI", j->pos);
        goto out;
    }
    for (unsigned c = 0; c < j->ncomp; c++)
        if (!j->decoded[c]) {
            rc = fail(j, "a component has no scan", j->pos);
            goto out;
        }
    for (size_t p = 0; p < npix; p++)
        for (unsigned c = 0; c < j->ncomp; c++)
            out[p * j->ncomp + c] = (uint16_t)(j->planes[c][p] << j->pt[c]);
    *precision = j->precision;
out:
    if (f->samples > 1)
        for (unsigned c = 0; c < MAX_COMP; c++)
            mem_free(j->planes[c]);
    mem_free(j);
    return rc;
}

int dicom__jpeg_sof(const uint8_t *data, size_t len, unsigned *marker, unsigned *precision,
                    unsigned *components, unsigned *rows, unsigned *columns)
{
    if (len < 2 || data[0] != 0xFF || data[1] != 0xD8)
        return -1;
    size_t pos = 2;
    while (pos + 4 <= len) {
        if (data[pos] != 0xFF)
            return -1;
        unsigned m = data[pos + 1];
        if (m == 0xFF) {
            pos++;
            continue;
        }
        if (m == 0xD9 || m == 0xDA)
            return -1;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            pos += 2;
            continue;
        }
        unsigned n = be16(data + pos + 2);
        if (n < 2 || n > len - pos - 2)
            return -1;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (n < 8)
                return -1;
            const uint8_t *s = data + pos + 4;
            *marker = m;
            *precision = s[0];
            *rows = be16(s + 1);
            *columns = be16(s + 3);
            *components = s[5];
            return 0;
        }
        pos += 2 + n;
    }
    return -1;
}
