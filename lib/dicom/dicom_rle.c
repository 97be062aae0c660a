/* dicom_rle.c: the RLE Lossless encoder of PS3.5 Annex G, one frame at a time.
 *
 * A frame becomes byte segments (G.2): for each sample, one segment per byte of the sample,
 * most significant byte first; a 16-bit grey image thus has two segments, all high bytes then
 * all low bytes. Each segment is PackBits-coded (G.3.1) row by row, never across a row boundary:
 *   replicate run of 2..128 equal bytes: header 1 - count (-1 .. -127), then the byte;
 *   literal run of 1..128 bytes:         header count - 1 (0 .. 127), then the bytes;
 *   -128 is never written.
 * Run choice, which fixes the exact bytes and so is part of what the tests pin down:
 *   - 3 or more equal bytes are always a replicate run ("shall", G.3.1);
 *   - 2 equal bytes are a replicate run, except when a literal run precedes them and a single
 *     byte (a literal) follows, where they join the literal (the G.3.1 note's advice);
 *   - runs longer than 128 are cut into 128s; a single leftover byte joins the next literal.
 * Each segment is padded with one zero byte to even length (G.3), and the 64-byte header
 * (G.5) holds the segment count and 15 offsets from the header's start, unused ones 0. */
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

#define RLE_HEADER_BYTES 64
#define RLE_MAX_SEGMENTS 15

static void put_literal(DicomBuf *out, const uint8_t *src, size_t n)
{
    while (n > 0) {
        size_t c = n < 128 ? n : 128;
        dicom__buf_u8(out, (uint8_t)(c - 1));
        dicom__buf_put(out, src, c);
        src += c;
        n -= c;
    }
}

static size_t run_at(const uint8_t *row, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && row[j] == row[i])
        j++;
    return j - i;
}

/* PackBits-codes one row of one byte segment. */
static void encode_row(DicomBuf *out, const uint8_t *row, size_t n)
{
    size_t i = 0;
    size_t lit_start = 0;
    size_t lit_len = 0;
    while (i < n) {
        size_t run = run_at(row, n, i);
        int merge_pair = run == 2 && lit_len > 0 && i + 2 < n && run_at(row, n, i + 2) == 1;
        if (run == 1 || merge_pair) {
            if (lit_len == 0)
                lit_start = i;
            lit_len += run;
            i += run;
            continue;
        }
        put_literal(out, row + lit_start, lit_len);
        lit_len = 0;
        while (run >= 2) {
            size_t c = run < 128 ? run : 128;
            dicom__buf_u8(out, (uint8_t)(1 - (int)c)); /* two's complement of 1 - count */
            dicom__buf_u8(out, row[i]);
            i += c;
            run -= c;
        }
        if (run == 1) {
            lit_start = i;
            lit_len = 1;
            i++;
        }
    }
    put_literal(out, row + lit_start, lit_len);
}

int dicom_rle_encode_frame(const uint8_t *frame, uint32_t rows, uint32_t columns, unsigned samples,
                           unsigned bytes_per_sample, unsigned planar, uint8_t **out, size_t *len,
                           Err *e)
{
    *out = NULL;
    *len = 0;
    unsigned nseg = samples * bytes_per_sample;
    if (samples < 1 || bytes_per_sample < 1 || nseg > RLE_MAX_SEGMENTS || planar > 1)
        return err_set(e, ERR_FORMAT,
                       "dicom: RLE: %u samples of %u bytes make %u segments; 1-15 allowed "
                       "(planar %u)",
                       samples, bytes_per_sample, nseg, planar);
    if (rows == 0 || columns == 0)
        return err_set(e, ERR_FORMAT, "dicom: RLE: empty frame (%u x %u)", rows, columns);
    size_t npix = (size_t)rows * columns;
    uint8_t *row = mem_alloc(columns);
    if (!row)
        return err_set(e, ERR_NOMEM, "dicom: RLE: no memory for a %u-byte row", columns);
    DicomBuf b = {0};
    dicom__buf_zeros(&b, RLE_HEADER_BYTES);
    dicom__buf_patch_u32(&b, 0, nseg, 0);
    for (unsigned k = 0; k < nseg; k++) {
        unsigned s = k / bytes_per_sample;
        unsigned byte = bytes_per_sample - 1 - k % bytes_per_sample; /* MSB first */
        if (b.len > 0xFFFFFFFFu) {
            dicom__buf_free(&b);
            mem_free(row);
            return err_set(e, ERR_FORMAT, "dicom: RLE: frame too large for 32-bit offsets");
        }
        dicom__buf_patch_u32(&b, 4 + 4 * k, (uint32_t)b.len, 0);
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t c = 0; c < columns; c++) {
                size_t p = (size_t)r * columns + c;
                size_t at = planar ? (s * npix + p) : (p * samples + s);
                row[c] = frame[at * bytes_per_sample + byte];
            }
            encode_row(&b, row, columns);
        }
        if (b.len & 1)
            dicom__buf_u8(&b, 0);
    }
    mem_free(row);
    if (b.failed) {
        dicom__buf_free(&b);
        return err_set(e, ERR_NOMEM, "dicom: RLE: no memory for the encoded frame");
    }
    if (b.len > 0xFFFFFFFEu) {
        dicom__buf_free(&b);
        return err_set(e, ERR_FORMAT, "dicom: RLE: encoded frame exceeds a 32-bit fragment");
    }
    *out = b.data;
    *len = b.len;
    return ERR_OK;
}
