/* dicom_buf.c: the growable byte buffer the DICOM encoders append to (see dicom_internal.h).
 *
 * Failure is sticky: after one failed allocation every append is a no-op and b->failed stays
 * set, so an encoder writes a whole element tree without checking each call, and checks once at
 * the end. Integers are written byte by byte in the requested order, never by memcpy of a host
 * integer, so the output does not depend on the host's endianness. */
#include <string.h>

#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

/* Makes room for n more bytes; 0 on success. */
static int reserve(DicomBuf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *grown = mem_realloc(b->data, cap);
    if (!grown) {
        b->failed = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

void dicom__buf_put(DicomBuf *b, const void *data, size_t n)
{
    if (n == 0 || reserve(b, n))
        return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

void dicom__buf_zeros(DicomBuf *b, size_t n)
{
    if (n == 0 || reserve(b, n))
        return;
    memset(b->data + b->len, 0, n);
    b->len += n;
}

void dicom__buf_u8(DicomBuf *b, uint8_t v)
{
    dicom__buf_put(b, &v, 1);
}

void dicom__buf_u16(DicomBuf *b, uint16_t v, int big)
{
    uint8_t p[2];
    p[big ? 1 : 0] = (uint8_t)v;
    p[big ? 0 : 1] = (uint8_t)(v >> 8);
    dicom__buf_put(b, p, 2);
}

static void store_u32(uint8_t *p, uint32_t v, int big)
{
    for (int i = 0; i < 4; i++)
        p[big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

void dicom__buf_u32(DicomBuf *b, uint32_t v, int big)
{
    uint8_t p[4];
    store_u32(p, v, big);
    dicom__buf_put(b, p, 4);
}

void dicom__buf_patch_u32(DicomBuf *b, size_t pos, uint32_t v, int big)
{
    if (b->failed || pos + 4 > b->len)
        return;
    store_u32(b->data + pos, v, big);
}

void dicom__buf_free(DicomBuf *b)
{
    mem_free(b->data);
    memset(b, 0, sizeof *b);
}

void *dicom__zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return mem_alloc((size_t)items * size);
}

void dicom__zfree(void *opaque, void *p)
{
    (void)opaque;
    mem_free(p);
}
