/* dicom_internal.h: what the files of lib/dicom share with each other and nobody else.
 *
 * The VR table (how each VR is padded, byte-swapped and length-limited), the unchecked element
 * setter the writer uses for the file meta group (which the public setters refuse), and a
 * growable byte buffer with sticky failure, so an encoder can append freely and check once. */
#ifndef ONFH_DICOM_INTERNAL_H
#define ONFH_DICOM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dicom/dicom.h"
#include "lib/util/err.h"

/* "(0028,0010) Rows" style context for messages: printf("%s", buf) after dicom__tag_label. */
typedef struct DicomTagLabel {
    char s[80];
} DicomTagLabel;
DicomTagLabel dicom__tag_label(uint32_t tag);
/* Number of dictionary entries out of tag order (0 when the table is sorted); for a unit test. */
int dicom__dict_unsorted(void);

// ---------------------------------------------------------------------------------------------
// VR properties (PS3.5 6.2)

enum {
    DICOM_VR_KIND_TEXT = 1, /* character string, padded with pad */
    DICOM_VR_KIND_BINARY,   /* numbers or bytes, unit bytes each, swapped in big endian */
    DICOM_VR_KIND_SEQUENCE,
};

typedef struct DicomVrInfo {
    uint16_t vr;
    uint8_t kind;
    uint8_t unit;     /* binary: bytes per value (validation); text: 1 */
    uint8_t swap;     /* bytes per swapped word in big endian: 1 = never swapped */
    uint8_t multi;    /* text: 1 if backslash separates values (VM > 1 possible) */
    char pad;         /* byte appended to reach even length */
    uint32_t max_len; /* text: characters per value (PN: per component group); 0 = no limit */
} DicomVrInfo;

/* NULL for a VR onfh does not know. */
const DicomVrInfo *dicom__vr_info(uint16_t vr);

// ---------------------------------------------------------------------------------------------
// Elements

/* Frees the payload of el (value, items, fragments) and zeroes it. */
void dicom__element_clear(DicomElement *el);
/* Inserts el into ds in tag order, replacing (and clearing) an element with the same tag. On
 * success ds owns el's payload; on failure (ERR_NOMEM) ds is unchanged and the caller still owns
 * it. No checks on tag or VR: the public setters check before calling this. */
int dicom__put(DicomDataset *ds, const DicomElement *el, Err *e);
/* Copies len bytes into a new element value and puts it; no checks on tag, VR or value. */
int dicom__set_value(DicomDataset *ds, uint32_t tag, uint16_t vr, const void *data, size_t len,
                     Err *e);

// ---------------------------------------------------------------------------------------------
// Byte buffer

typedef struct DicomBuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: appends do nothing from then on */
} DicomBuf;

void dicom__buf_put(DicomBuf *b, const void *data, size_t n);
void dicom__buf_zeros(DicomBuf *b, size_t n);
void dicom__buf_u8(DicomBuf *b, uint8_t v);
/* 16 and 32-bit integers in the given byte order (big = 1: big endian). */
void dicom__buf_u16(DicomBuf *b, uint16_t v, int big);
void dicom__buf_u32(DicomBuf *b, uint32_t v, int big);
/* Overwrites 4 bytes at pos (a length written earlier as a placeholder). */
void dicom__buf_patch_u32(DicomBuf *b, size_t pos, uint32_t v, int big);
void dicom__buf_free(DicomBuf *b);

/* zlib's allocator hooks, through lib/util/mem.h so allocation-failure tests reach zlib's own
 * buffers too (the types match zlib's alloc_func and free_func: voidpf is void *, uInt unsigned).
 */
void *dicom__zalloc(void *opaque, unsigned items, unsigned size);
void dicom__zfree(void *opaque, void *p);

static inline uint16_t dicom__le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t dicom__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif
