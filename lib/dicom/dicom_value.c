/* dicom_value.c: reading values out of a parsed data set: strings, numbers, and the per-frame
 * geometry of enhanced multi-frame images (see dicom.h, "Reading").
 *
 * Values are kept as the file had them (canonical little endian, text with its pad byte), so the
 * accessors trim and parse here: trailing spaces and NULs go from every string, leading spaces
 * from the VRs whose grammar ignores them (PS3.5 6.2); DS and IS values are checked against
 * their grammar before strtod/strtol see them, so "0x10", "nan" or "1e999" are refused, not
 * read as numbers. The reader's dictionary entries live here too: the enhanced multi-frame
 * sequences, which Implicit VR files carry without a VR and which the writer's dictionary
 * (dicom_dict.c) has no reason to know. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/dicom/dicom_internal.h"

// ---------------------------------------------------------------------------------------------
// The reader's dictionary

typedef struct ReaderEntry {
    uint32_t tag;
    uint16_t vr;
    const char *keyword;
} ReaderEntry;

#define T DICOM_TAG
static const ReaderEntry reader_dict[] = {
    {T(0x0008, 0x1115), DICOM_VR_SQ, "ReferencedSeriesSequence"},
    {T(0x0008, 0x1199), DICOM_VR_SQ, "ReferencedSOPSequence"},
    {T(0x0008, 0x9124), DICOM_VR_SQ, "DerivationImageSequence"},
    {T(0x0018, 0x9006), DICOM_VR_SQ, "MRImagingModifierSequence"},
    {T(0x0018, 0x9042), DICOM_VR_SQ, "MRReceiveCoilSequence"},
    {T(0x0018, 0x9049), DICOM_VR_SQ, "MRTransmitCoilSequence"},
    {T(0x0018, 0x9112), DICOM_VR_SQ, "MRTimingAndRelatedParametersSequence"},
    {T(0x0018, 0x9114), DICOM_VR_SQ, "MREchoSequence"},
    {T(0x0018, 0x9115), DICOM_VR_SQ, "MRModifierSequence"},
    {T(0x0018, 0x9117), DICOM_VR_SQ, "MRDiffusionSequence"},
    {T(0x0018, 0x9118), DICOM_VR_SQ, "CardiacSynchronizationSequence"},
    {T(0x0018, 0x9119), DICOM_VR_SQ, "MRAveragesSequence"},
    {T(0x0018, 0x9125), DICOM_VR_SQ, "MRFOVGeometrySequence"},
    {T(0x0018, 0x9226), DICOM_VR_SQ, "MRImageFrameTypeSequence"},
    {T(0x0020, 0x9056), DICOM_VR_SH, "StackID"},
    {T(0x0020, 0x9057), DICOM_VR_UL, "InStackPositionNumber"},
    {T(0x0020, 0x9071), DICOM_VR_SQ, "FrameAnatomySequence"},
    {T(0x0020, 0x9111), DICOM_VR_SQ, "FrameContentSequence"},
    {T(0x0020, 0x9113), DICOM_VR_SQ, "PlanePositionSequence"},
    {T(0x0020, 0x9116), DICOM_VR_SQ, "PlaneOrientationSequence"},
    {T(0x0020, 0x9128), DICOM_VR_UL, "TemporalPositionIndex"},
    {T(0x0020, 0x9157), DICOM_VR_UL, "DimensionIndexValues"},
    {T(0x0020, 0x9221), DICOM_VR_SQ, "DimensionOrganizationSequence"},
    {T(0x0020, 0x9222), DICOM_VR_SQ, "DimensionIndexSequence"},
    {T(0x0028, 0x9110), DICOM_VR_SQ, "PixelMeasuresSequence"},
    {T(0x0028, 0x9132), DICOM_VR_SQ, "FrameVOILUTSequence"},
    {T(0x0028, 0x9145), DICOM_VR_SQ, "PixelValueTransformationSequence"},
    {T(0x0040, 0x9096), DICOM_VR_SQ, "RealWorldValueMappingSequence"},
    {T(0x0088, 0x0200), DICOM_VR_SQ, "IconImageSequence"},
    {T(0x5200, 0x9229), DICOM_VR_SQ, "SharedFunctionalGroupsSequence"},
    {T(0x5200, 0x9230), DICOM_VR_SQ, "PerFrameFunctionalGroupsSequence"},
    {T(0x7FE0, 0x0001), DICOM_VR_OV, "ExtendedOffsetTable"},
    {T(0x7FE0, 0x0002), DICOM_VR_OV, "ExtendedOffsetTableLengths"},
    {T(0xFFFC, 0xFFFC), DICOM_VR_OB, "DataSetTrailingPadding"},
};
#undef T

static const ReaderEntry *reader_find(uint32_t tag)
{
    for (size_t i = 0; i < sizeof reader_dict / sizeof reader_dict[0]; i++)
        if (reader_dict[i].tag == tag)
            return &reader_dict[i];
    return NULL;
}

uint16_t dicom__reader_vr(uint32_t tag)
{
    const ReaderEntry *r = reader_find(tag);
    return r ? r->vr : 0;
}

DicomTagLabel dicom__label(uint32_t tag)
{
    DicomTagLabel l = dicom__tag_label(tag);
    const ReaderEntry *r = *dicom_tag_keyword(tag) ? NULL : reader_find(tag);
    if (r)
        snprintf(l.s, sizeof l.s, "(%04X,%04X) %s", DICOM_GROUP(tag), DICOM_ELEMENT(tag),
                 r->keyword);
    else if (tag == DICOM_TAG_ITEM)
        snprintf(l.s, sizeof l.s, "(FFFE,E000) Item");
    else if (tag == DICOM_TAG_ITEM_DELIMITATION)
        snprintf(l.s, sizeof l.s, "(FFFE,E00D) ItemDelimitationItem");
    else if (tag == DICOM_TAG_SEQUENCE_DELIMITATION)
        snprintf(l.s, sizeof l.s, "(FFFE,E0DD) SequenceDelimitationItem");
    return l;
}

// ---------------------------------------------------------------------------------------------
// Strings

static const DicomElement *find_or_fail(const DicomDataset *ds, uint32_t tag, Err *e)
{
    const DicomElement *el = dicom_find(ds, tag);
    if (!el)
        err_set(e, ERR_FORMAT, "dicom: %s: absent", dicom__label(tag).s);
    return el;
}

static int leading_spaces_insignificant(uint16_t vr)
{
    switch (vr) {
    case DICOM_VR_AE:
    case DICOM_VR_CS:
    case DICOM_VR_DA:
    case DICOM_VR_DS:
    case DICOM_VR_DT:
    case DICOM_VR_IS:
    case DICOM_VR_TM:
    case DICOM_VR_UI: return 1;
    }
    return 0;
}

/* The trimmed text of el: *start and *n. */
static void trimmed(const DicomElement *el, size_t *start, size_t *n)
{
    size_t a = 0;
    size_t b = el->length;
    while (b > a && (el->value[b - 1] == ' ' || el->value[b - 1] == '\0'))
        b--;
    if (leading_spaces_insignificant(el->vr))
        while (a < b && el->value[a] == ' ')
            a++;
    *start = a;
    *n = b - a;
}

int dicom_get_string(const DicomDataset *ds, uint32_t tag, char *out, size_t cap, Err *e)
{
    if (cap)
        out[0] = '\0';
    const DicomElement *el = find_or_fail(ds, tag, e);
    if (!el)
        return ERR_FORMAT;
    const DicomVrInfo *info = dicom__vr_info(el->vr);
    if (el->vr != DICOM_VR_UN && (!info || info->kind != DICOM_VR_KIND_TEXT)) {
        char vs[3];
        dicom_vr_str(el->vr, vs);
        return err_set(e, ERR_FORMAT, "dicom: %s: VR %s is not a string", dicom__label(tag).s, vs);
    }
    size_t start;
    size_t n;
    trimmed(el, &start, &n);
    if (n >= cap)
        return err_set(e, ERR_FORMAT, "dicom: %s: %zu characters do not fit %zu",
                       dicom__label(tag).s, n, cap ? cap - 1 : 0);
    if (n)
        memcpy(out, el->value + start, n);
    out[n] = '\0';
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Numbers

/* One DS or IS value (spaces around it allowed) into *v; 0 or -1. */
static int parse_decimal(const char *s, size_t n, int integer, double *v)
{
    while (n && *s == ' ') {
        s++;
        n--;
    }
    while (n && s[n - 1] == ' ')
        n--;
    if (n == 0 || n > 64)
        return -1;
    char buf[65];
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= '0' && c <= '9') || c == '+' || c == '-' ||
                 (!integer && (c == '.' || c == 'e' || c == 'E'));
        if (!ok)
            return -1;
        digits += c >= '0' && c <= '9';
        buf[i] = c;
    }
    if (!digits)
        return -1;
    buf[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d))
        return -1;
    if (integer && (d != floor(d) || fabs(d) > 2147483648.0))
        return -1;
    *v = d;
    return 0;
}

static double binary_value(const uint8_t *p, uint16_t vr)
{
    uint64_t u = 0;
    switch (vr) {
    case DICOM_VR_US: return dicom__le16(p);
    case DICOM_VR_SS: return (int16_t)dicom__le16(p);
    case DICOM_VR_UL:
    case DICOM_VR_OL: return dicom__le32(p);
    case DICOM_VR_SL: return (int32_t)dicom__le32(p);
    case DICOM_VR_FL:
    case DICOM_VR_OF: {
        uint32_t w = dicom__le32(p);
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    default: break;
    }
    u = (uint64_t)dicom__le32(p) | ((uint64_t)dicom__le32(p + 4) << 32);
    if (vr == DICOM_VR_UV || vr == DICOM_VR_OV)
        return (double)u;
    if (vr == DICOM_VR_SV)
        return (double)(int64_t)u;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static unsigned binary_unit(uint16_t vr)
{
    switch (vr) {
    case DICOM_VR_US:
    case DICOM_VR_SS: return 2;
    case DICOM_VR_UL:
    case DICOM_VR_SL:
    case DICOM_VR_FL:
    case DICOM_VR_OF:
    case DICOM_VR_OL: return 4;
    case DICOM_VR_FD:
    case DICOM_VR_OD:
    case DICOM_VR_SV:
    case DICOM_VR_UV:
    case DICOM_VR_OV: return 8;
    }
    return 0;
}

int dicom_get_numbers(const DicomDataset *ds, uint32_t tag, double *out, size_t max, size_t *n,
                      Err *e)
{
    if (n)
        *n = 0;
    const DicomElement *el = find_or_fail(ds, tag, e);
    if (!el)
        return ERR_FORMAT;
    size_t count = 0;
    unsigned unit = binary_unit(el->vr);
    if (unit) {
        if (el->length % unit)
            return err_set(e, ERR_FORMAT, "dicom: %s: %u bytes are not whole %u-byte values",
                           dicom__label(tag).s, el->length, unit);
        count = el->length / unit;
        for (size_t i = 0; i < count && i < max; i++)
            out[i] = binary_value(el->value + i * unit, el->vr);
    } else if ((el->vr == DICOM_VR_DS || el->vr == DICOM_VR_IS) && el->length) {
        size_t start;
        size_t len;
        trimmed(el, &start, &len);
        const char *s = (const char *)el->value + start;
        for (size_t i = 0; len && i <= len;) {
            size_t j = i;
            while (j < len && s[j] != '\\')
                j++;
            double v;
            if (parse_decimal(s + i, j - i, el->vr == DICOM_VR_IS, &v))
                return err_set(e, ERR_FORMAT, "dicom: %s: value %zu \"%.*s\" is not %s",
                               dicom__label(tag).s, count + 1, (int)(j - i > 64 ? 64 : j - i),
                               s + i, el->vr == DICOM_VR_IS ? "an IS integer" : "a DS number");
            if (count < max)
                out[count] = v;
            count++;
            i = j + 1;
        }
    } else if (el->vr != DICOM_VR_DS && el->vr != DICOM_VR_IS) {
        char vs[3];
        dicom_vr_str(el->vr, vs);
        return err_set(e, ERR_FORMAT, "dicom: %s: VR %s holds no numbers", dicom__label(tag).s, vs);
    }
    if (n)
        *n = count;
    return ERR_OK;
}

int dicom_get_number(const DicomDataset *ds, uint32_t tag, double *v, Err *e)
{
    size_t n;
    int rc = dicom_get_numbers(ds, tag, v, 1, &n, e);
    if (rc)
        return rc;
    if (n == 0)
        return err_set(e, ERR_FORMAT, "dicom: %s: empty, a number expected", dicom__label(tag).s);
    return ERR_OK;
}

int dicom_get_long(const DicomDataset *ds, uint32_t tag, long *v, Err *e)
{
    double d;
    int rc = dicom_get_number(ds, tag, &d, e);
    if (rc)
        return rc;
    if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return err_set(e, ERR_FORMAT, "dicom: %s: %g is not an integer", dicom__label(tag).s, d);
    *v = (long)d;
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Functional groups (PS3.3 C.7.6.16)

/* The first item of sequence tag in ds, or NULL. */
static const DicomDataset *first_item(const DicomDataset *ds, uint32_t tag)
{
    const DicomElement *el = ds ? dicom_find(ds, tag) : NULL;
    return el && el->vr == DICOM_VR_SQ && el->n_items ? el->items[0] : NULL;
}

/* n values of attr from the first level that has it: macro sequence in the per-frame item, in
 * the shared item, then attr in the data set itself. */
static int lookup(const DicomDataset *const levels[3], uint32_t macro, uint32_t attr, double *v,
                  size_t n, int *has, uint32_t frame, Err *e)
{
    for (int l = 0; l < 3; l++) {
        const DicomDataset *ds = l < 2 ? first_item(levels[l], macro) : levels[2];
        if (!ds || !dicom_find(ds, attr))
            continue;
        size_t got;
        int rc = dicom_get_numbers(ds, attr, v, n, &got, e);
        if (!rc && got != n)
            rc = err_set(e, ERR_FORMAT, "dicom: %s: %zu values, %zu expected", dicom__label(attr).s,
                         got, n);
        if (rc)
            return err_prefix(e, "frame %u: %s: ", frame + 1,
                              l == 0   ? "per-frame functional groups"
                              : l == 1 ? "shared functional groups"
                                       : "data set");
        *has = 1;
        return ERR_OK;
    }
    return ERR_OK;
}

int dicom_frame_geometry(const DicomDataset *ds, uint32_t frame, DicomFrameGeometry *g, Err *e)
{
    memset(g, 0, sizeof *g);
    g->rescale_slope = 1;
    const DicomDataset *levels[3] = {NULL, first_item(ds, DICOM_TAG_SHARED_FUNCTIONAL_GROUPS), ds};
    const DicomElement *per = dicom_find(ds, DICOM_TAG_PER_FRAME_FUNCTIONAL_GROUPS);
    if (per) {
        if (per->vr != DICOM_VR_SQ || frame >= per->n_items)
            return err_set(e, ERR_FORMAT, "dicom: %s: frame %u asked, %u items",
                           dicom__label(per->tag).s, frame + 1,
                           per->vr == DICOM_VR_SQ ? per->n_items : 0);
        levels[0] = per->items[frame];
    }
    int has_slope = 0;
    int has_intercept = 0;
    int rc;
    if ((rc = lookup(levels, DICOM_TAG_PLANE_POSITION_SEQUENCE, DICOM_TAG_IMAGE_POSITION_PATIENT,
                     g->position, 3, &g->has_position, frame, e)) ||
        (rc = lookup(levels, DICOM_TAG_PLANE_ORIENTATION_SEQUENCE,
                     DICOM_TAG_IMAGE_ORIENTATION_PATIENT, g->orientation, 6, &g->has_orientation,
                     frame, e)) ||
        (rc = lookup(levels, DICOM_TAG_PIXEL_MEASURES_SEQUENCE, DICOM_TAG_PIXEL_SPACING, g->spacing,
                     2, &g->has_spacing, frame, e)) ||
        (rc = lookup(levels, DICOM_TAG_PIXEL_MEASURES_SEQUENCE, DICOM_TAG_SLICE_THICKNESS,
                     &g->slice_thickness, 1, &g->has_thickness, frame, e)) ||
        (rc = lookup(levels, DICOM_TAG_PIXEL_VALUE_TRANSFORMATION_SEQUENCE, DICOM_TAG_RESCALE_SLOPE,
                     &g->rescale_slope, 1, &has_slope, frame, e)) ||
        (rc = lookup(levels, DICOM_TAG_PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                     DICOM_TAG_RESCALE_INTERCEPT, &g->rescale_intercept, 1, &has_intercept, frame,
                     e)))
        return rc;
    g->has_rescale = has_slope || has_intercept;
    return ERR_OK;
}
