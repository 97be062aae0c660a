/* dicom_dataset.c: the in-memory DICOM dataset and its checked setters (see dicom.h).
 *
 * A dataset is a sorted array of elements; lookups are binary searches and inserts move the tail,
 * which is cheap for the hundred or so elements of an image header and keeps the writer's job of
 * "elements in ascending tag order" (PS3.5 7.1) free.
 *
 * Setters check before they change anything, and build the new value before touching the
 * dataset, so a failed setter (bad value or no memory) leaves the dataset as it was. The checks
 * are those a validator (dciodvfy) or a strict reader would make of the encoded value: allowed
 * tag, VR agreeing with the dictionary, character repertoire (the default repertoire, ASCII,
 * because onfh writes no Specific Character Set), value length and syntax of DA, TM, DS, IS, AS
 * and UI values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

// ---------------------------------------------------------------------------------------------
// Dataset and elements

int dicom_dataset_new(DicomDataset **out, Err *e)
{
    *out = mem_calloc(1, sizeof **out);
    if (!*out)
        return err_set(e, ERR_NOMEM, "dicom: no memory for a dataset");
    return ERR_OK;
}

void dicom__element_clear(DicomElement *el)
{
    if (!el->borrowed)
        mem_free(el->value);
    for (uint32_t i = 0; i < el->n_items; i++)
        dicom_dataset_free(el->items[i]);
    mem_free(el->items);
    for (uint32_t i = 0; i < el->n_fragments; i++)
        mem_free(el->fragments[i].data);
    mem_free(el->fragments);
    memset(el, 0, sizeof *el);
}

void dicom_dataset_free(DicomDataset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->count; i++)
        dicom__element_clear(&ds->elements[i]);
    mem_free(ds->elements);
    mem_free(ds);
}

/* Index of the first element with a tag >= tag. */
static size_t lower_bound(const DicomDataset *ds, uint32_t tag)
{
    size_t lo = 0;
    size_t hi = ds->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->elements[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const DicomElement *dicom_find(const DicomDataset *ds, uint32_t tag)
{
    size_t i = lower_bound(ds, tag);
    return i < ds->count && ds->elements[i].tag == tag ? &ds->elements[i] : NULL;
}

void dicom_remove(DicomDataset *ds, uint32_t tag)
{
    size_t i = lower_bound(ds, tag);
    if (i >= ds->count || ds->elements[i].tag != tag)
        return;
    dicom__element_clear(&ds->elements[i]);
    memmove(&ds->elements[i], &ds->elements[i + 1], (ds->count - i - 1) * sizeof ds->elements[0]);
    ds->count--;
}

int dicom__put(DicomDataset *ds, const DicomElement *el, Err *e)
{
    size_t i = lower_bound(ds, el->tag);
    if (i < ds->count && ds->elements[i].tag == el->tag) {
        dicom__element_clear(&ds->elements[i]);
        ds->elements[i] = *el;
        return ERR_OK;
    }
    if (ds->count == ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 32;
        DicomElement *grown = mem_realloc(ds->elements, cap * sizeof *grown);
        if (!grown)
            return err_set(e, ERR_NOMEM, "dicom: %s: no memory for the element",
                           dicom__tag_label(el->tag).s);
        ds->elements = grown;
        ds->cap = cap;
    }
    memmove(&ds->elements[i + 1], &ds->elements[i], (ds->count - i) * sizeof ds->elements[0]);
    ds->elements[i] = *el;
    ds->count++;
    return ERR_OK;
}

int dicom__set_value(DicomDataset *ds, uint32_t tag, uint16_t vr, const void *data, size_t len,
                     Err *e)
{
    DicomElement el = {.tag = tag, .vr = vr, .length = (uint32_t)len};
    if (len > 0xFFFFFFFEu)
        return err_set(e, ERR_FORMAT, "dicom: %s: value of %zu bytes exceeds the 32-bit length",
                       dicom__tag_label(tag).s, len);
    if (len) {
        el.value = mem_alloc(len);
        if (!el.value)
            return err_set(e, ERR_NOMEM, "dicom: %s: no memory for a %zu-byte value",
                           dicom__tag_label(tag).s, len);
        memcpy(el.value, data, len);
    }
    int rc = dicom__put(ds, &el, e);
    if (rc)
        mem_free(el.value);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Checks

/* Refuses tags a dataset must not carry and VRs that disagree with the dictionary. Private
 * elements need their creator in the same dataset (PS3.5 7.8.1), so check this one. */
static int check_tag(const DicomDataset *ds, uint32_t tag, uint16_t vr, Err *e)
{
    uint16_t group = DICOM_GROUP(tag);
    uint16_t elem = DICOM_ELEMENT(tag);
    char vs[3];
    dicom_vr_str(vr, vs);
    if (group == 0x0000 || group == 0x0002)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: group %04X is not a dataset group (the file meta group is "
                       "written by dicom_write)",
                       dicom__tag_label(tag).s, group);
    if (group >= 0xFFFE || ((group & 1) && group <= 0x0007))
        return err_set(e, ERR_FORMAT, "dicom: %s: group %04X is not allowed in a dataset",
                       dicom__tag_label(tag).s, group);
    if (elem == 0x0000)
        return err_set(e, ERR_FORMAT, "dicom: %s: group lengths are retired; not written",
                       dicom__tag_label(tag).s);
    if (!dicom__vr_info(vr))
        return err_set(e, ERR_FORMAT, "dicom: %s: unknown VR %s", dicom__tag_label(tag).s, vs);
    if (!dicom_dict_vr_allowed(tag, vr)) {
        char want[3];
        dicom_vr_str(dicom_dict_vr(tag), want);
        return err_set(e, ERR_FORMAT, "dicom: %s: VR %s given, the dictionary says %s",
                       dicom__tag_label(tag).s, vs, want);
    }
    if (!(group & 1))
        return ERR_OK;
    if (elem < 0x0010)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: private elements (gggg,0001-000F) are not allowed",
                       dicom__tag_label(tag).s);
    if (elem <= 0x00FF) {
        if (vr != DICOM_VR_LO)
            return err_set(e, ERR_FORMAT, "dicom: %s: a private creator must be LO, not %s",
                           dicom__tag_label(tag).s, vs);
        return ERR_OK;
    }
    const DicomElement *creator = dicom_find(ds, DICOM_TAG(group, elem >> 8));
    if (!creator || creator->vr != DICOM_VR_LO || creator->length == 0)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: no private creator at (%04X,00%02X); use dicom_private_tag",
                       dicom__tag_label(tag).s, group, elem >> 8);
    return ERR_OK;
}

/* Encoded length limit: 2-byte length VRs hold at most 0xFFFE bytes once padded. */
static int check_length(uint32_t tag, uint16_t vr, size_t len, Err *e)
{
    size_t padded = len + (len & 1);
    size_t max = dicom_vr_long_length(vr) ? 0xFFFFFFFEu : 0xFFFEu;
    if (padded > max)
        return err_set(e, ERR_FORMAT,
                       "dicom: %s: value of %zu bytes is too long for its length field",
                       dicom__tag_label(tag).s, len);
    return ERR_OK;
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Returns NULL if the value v[0..n) is valid for vr, else what is wrong. Leading and trailing
 * spaces are insignificant in the numeric VRs, so they are trimmed before the syntax check. */
static const char *check_value(uint16_t vr, const char *v, size_t n, char *why, size_t why_len)
{
    const DicomVrInfo *info = dicom__vr_info(vr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        int text_ctrl = (vr == DICOM_VR_LT || vr == DICOM_VR_ST || vr == DICOM_VR_UT) &&
                        (c == '\t' || c == '\n' || c == '\f' || c == '\r');
        if ((c < 0x20 || c > 0x7E) && !text_ctrl) {
            snprintf(why, why_len,
                     "byte 0x%02X at %zu is outside the default character repertoire (ASCII)", c,
                     i);
            return why;
        }
        if (vr == DICOM_VR_CS &&
            !((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_')) {
            snprintf(why, why_len, "CS allows A-Z, 0-9, space and _ only, not '%c'", c);
            return why;
        }
    }
    if (vr == DICOM_VR_PN) {
        /* Up to three component groups (alphabetic=ideographic=phonetic), 64 characters each. */
        int groups = 1;
        size_t run = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i] == '=') {
                groups++;
                run = 0;
            } else if (++run > 64) {
                return "a PN component group is longer than 64 characters";
            }
        }
        if (groups > 3)
            return "PN has more than three component groups";
        return NULL;
    }
    if (info->max_len && n > info->max_len) {
        char vs[3];
        dicom_vr_str(vr, vs);
        snprintf(why, why_len, "value is %zu characters, %s allows %u", n, vs,
                 (unsigned)info->max_len);
        return why;
    }
    /* Trim spaces for the syntax checks below. */
    const char *s = v;
    size_t m = n;
    while (m && *s == ' ')
        s++, m--;
    while (m && s[m - 1] == ' ')
        m--;
    if (m == 0)
        return NULL; /* an empty value is always allowed (type 2, or an empty multi-value slot) */
    switch (vr) {
    case DICOM_VR_DA: {
        if (m != 8 || !all_digits(s, 8))
            return "DA must be YYYYMMDD";
        int month = (s[4] - '0') * 10 + (s[5] - '0');
        int day = (s[6] - '0') * 10 + (s[7] - '0');
        if (month < 1 || month > 12 || day < 1 || day > 31)
            return "DA month or day out of range";
        return NULL;
    }
    case DICOM_VR_TM: {
        size_t digits = m;
        const char *dot = memchr(s, '.', m);
        if (dot) {
            digits = (size_t)(dot - s);
            size_t frac = m - digits - 1;
            if (digits != 6 || frac < 1 || frac > 6 || !all_digits(dot + 1, frac))
                return "TM fraction must follow HHMMSS and have 1-6 digits";
        }
        if ((digits != 2 && digits != 4 && digits != 6) || !all_digits(s, digits))
            return "TM must be HH, HHMM or HHMMSS[.FFFFFF]";
        if ((s[0] - '0') * 10 + (s[1] - '0') > 23 ||
            (digits >= 4 && (s[2] - '0') * 10 + (s[3] - '0') > 59) ||
            (digits >= 6 && (s[4] - '0') * 10 + (s[5] - '0') > 60))
            return "TM hour, minute or second out of range";
        return NULL;
    }
    case DICOM_VR_AS:
        if (m != 4 || !all_digits(s, 3) || !strchr("DWMY", s[3]))
            return "AS must be nnnD, nnnW, nnnM or nnnY";
        return NULL;
    case DICOM_VR_IS: {
        size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
        if (i == m || !all_digits(s + i, m - i))
            return "IS must be an optionally signed integer";
        char tmp[16];
        memcpy(tmp, s, m);
        tmp[m] = '\0';
        long long x = strtoll(tmp, NULL, 10);
        if (x < -2147483648LL || x > 2147483647LL)
            return "IS out of range -2^31 .. 2^31-1";
        return NULL;
    }
    case DICOM_VR_DS: {
        char tmp[20];
        if (strspn(s, "0123456789+-eE.") < m)
            return "DS allows 0-9 + - E e . only";
        memcpy(tmp, s, m);
        tmp[m] = '\0';
        char *end;
        double x = strtod(tmp, &end);
        if (end != tmp + m || !isfinite(x))
            return "DS is not a decimal number";
        return NULL;
    }
    case DICOM_VR_UI: {
        if (m != n)
            return "UI must not contain spaces";
        char tmp[DICOM_UID_MAX + 1];
        memcpy(tmp, s, m);
        tmp[m] = '\0';
        Err ue = {0};
        if (dicom_uid_check(tmp, &ue)) {
            size_t k = strnlen(ue.msg, why_len - 1); /* truncating on purpose */
            memcpy(why, ue.msg, k);
            why[k] = '\0';
            return why;
        }
        return NULL;
    }
    }
    return NULL;
}

/* Checks a whole text value: its values one by one (split at backslashes for multi VRs). */
static int check_text(uint32_t tag, uint16_t vr, const char *s, size_t len, Err *e)
{
    const DicomVrInfo *info = dicom__vr_info(vr);
    char vs[3];
    dicom_vr_str(vr, vs);
    if (!info || info->kind != DICOM_VR_KIND_TEXT)
        return err_set(e, ERR_FORMAT, "dicom: %s: %s is not a text VR", dicom__tag_label(tag).s,
                       vs);
    size_t start = 0;
    int index = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !(info->multi && s[i] == '\\'))
            continue;
        char why[200];
        const char *bad = check_value(vr, s + start, i - start, why, sizeof why);
        if (bad)
            return err_set(e, ERR_FORMAT, "dicom: %s: %s value %d \"%.*s\": %s",
                           dicom__tag_label(tag).s, vs, index + 1,
                           (int)(i - start > 80 ? 80 : i - start), s + start, bad);
        start = i + 1;
        index++;
    }
    return check_length(tag, vr, len, e);
}

// ---------------------------------------------------------------------------------------------
// Setters

int dicom_set_str(DicomDataset *ds, uint32_t tag, uint16_t vr, const char *s, Err *e)
{
    int rc = check_tag(ds, tag, vr, e);
    if (rc)
        return rc;
    size_t len = strlen(s);
    rc = check_text(tag, vr, s, len, e);
    if (rc)
        return rc;
    return dicom__set_value(ds, tag, vr, s, len, e);
}

int dicom_set_strs(DicomDataset *ds, uint32_t tag, uint16_t vr, const char *const *values, size_t n,
                   Err *e)
{
    int rc = check_tag(ds, tag, vr, e);
    if (rc)
        return rc;
    const DicomVrInfo *info = dicom__vr_info(vr);
    if (n > 1 && !info->multi) {
        char vs[3];
        dicom_vr_str(vr, vs);
        return err_set(e, ERR_FORMAT, "dicom: %s: %s takes one value, %zu given",
                       dicom__tag_label(tag).s, vs, n);
    }
    size_t len = n ? n - 1 : 0;
    for (size_t i = 0; i < n; i++) {
        if (info->multi && strchr(values[i], '\\'))
            return err_set(e, ERR_FORMAT, "dicom: %s: value %zu \"%s\" contains a backslash",
                           dicom__tag_label(tag).s, i + 1, values[i]);
        len += strlen(values[i]);
    }
    char *joined = mem_alloc(len + 1);
    if (!joined)
        return err_set(e, ERR_NOMEM, "dicom: %s: no memory for %zu values", dicom__tag_label(tag).s,
                       n);
    char *p = joined;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(values[i]);
        memcpy(p, values[i], k);
        p += k;
        if (i + 1 < n)
            *p++ = '\\';
    }
    *p = '\0';
    rc = check_text(tag, vr, joined, len, e);
    if (!rc)
        rc = dicom__set_value(ds, tag, vr, joined, len, e);
    mem_free(joined);
    return rc;
}

/* The most precise form of x that fits the 16 characters of a DS value. */
static int format_ds(double x, char out[32])
{
    for (int prec = 16; prec >= 1; prec--) {
        int k = snprintf(out, 32, "%.*g", prec, x);
        if (k > 0 && k <= 16)
            return 0;
    }
    return -1;
}

int dicom_set_ds(DicomDataset *ds, uint32_t tag, const double *values, size_t n, Err *e)
{
    char text[32 * 16];
    const char *parts[16];
    if (n > 16)
        return err_set(e, ERR_FORMAT, "dicom: %s: %zu DS values; at most 16 supported",
                       dicom__tag_label(tag).s, n);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(values[i]) || format_ds(values[i], text + 32 * i))
            return err_set(e, ERR_FORMAT, "dicom: %s: DS value %zu (%g) is not a finite number",
                           dicom__tag_label(tag).s, i + 1, values[i]);
        parts[i] = text + 32 * i;
    }
    return dicom_set_strs(ds, tag, DICOM_VR_DS, parts, n, e);
}

int dicom_set_is(DicomDataset *ds, uint32_t tag, const long *values, size_t n, Err *e)
{
    char text[16 * 16];
    const char *parts[16];
    if (n > 16)
        return err_set(e, ERR_FORMAT, "dicom: %s: %zu IS values; at most 16 supported",
                       dicom__tag_label(tag).s, n);
    for (size_t i = 0; i < n; i++) {
        if (values[i] < -2147483647L - 1 || values[i] > 2147483647L)
            return err_set(e, ERR_FORMAT, "dicom: %s: IS value %zu (%ld) out of range",
                           dicom__tag_label(tag).s, i + 1, values[i]);
        snprintf(text + 16 * i, 16, "%ld", values[i]);
        parts[i] = text + 16 * i;
    }
    return dicom_set_strs(ds, tag, DICOM_VR_IS, parts, n, e);
}

/* Stores n numbers of size bytes each, converted to little endian, under a binary VR. */
static int set_numbers(DicomDataset *ds, uint32_t tag, uint16_t vr, const void *values, size_t n,
                       size_t size, Err *e)
{
    int rc = check_tag(ds, tag, vr, e);
    if (rc)
        return rc;
    if (n > 0xFFFFFFFEu / size)
        return err_set(e, ERR_FORMAT, "dicom: %s: %zu values are too many", dicom__tag_label(tag).s,
                       n);
    rc = check_length(tag, vr, n * size, e);
    if (rc)
        return rc;
    uint8_t *le = mem_alloc(n * size + 1);
    if (!le)
        return err_set(e, ERR_NOMEM, "dicom: %s: no memory for %zu values", dicom__tag_label(tag).s,
                       n);
    const uint8_t *src = values;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = 0;
        /* Read the host value as an integer of its size, then write its bytes low first. */
        if (size == 2) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            x = v;
        } else if (size == 4) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            x = v;
        } else {
            memcpy(&x, src + 8 * i, 8);
        }
        for (size_t b = 0; b < size; b++)
            le[i * size + b] = (uint8_t)(x >> (8 * b));
    }
    rc = dicom__set_value(ds, tag, vr, le, n * size, e);
    mem_free(le);
    return rc;
}

int dicom_set_us(DicomDataset *ds, uint32_t tag, const uint16_t *values, size_t n, Err *e)
{
    return set_numbers(ds, tag, DICOM_VR_US, values, n, 2, e);
}

int dicom_set_ss(DicomDataset *ds, uint32_t tag, const int16_t *values, size_t n, Err *e)
{
    return set_numbers(ds, tag, DICOM_VR_SS, values, n, 2, e);
}

int dicom_set_ul(DicomDataset *ds, uint32_t tag, const uint32_t *values, size_t n, Err *e)
{
    return set_numbers(ds, tag, DICOM_VR_UL, values, n, 4, e);
}

int dicom_set_fl(DicomDataset *ds, uint32_t tag, const float *values, size_t n, Err *e)
{
    _Static_assert(sizeof(float) == 4, "FL is IEEE single precision");
    return set_numbers(ds, tag, DICOM_VR_FL, values, n, 4, e);
}

int dicom_set_fd(DicomDataset *ds, uint32_t tag, const double *values, size_t n, Err *e)
{
    _Static_assert(sizeof(double) == 8, "FD is IEEE double precision");
    return set_numbers(ds, tag, DICOM_VR_FD, values, n, 8, e);
}

int dicom_set_pixels16(DicomDataset *ds, const uint16_t *pixels, size_t count, Err *e)
{
    return set_numbers(ds, DICOM_TAG_PIXEL_DATA, DICOM_VR_OW, pixels, count, 2, e);
}

int dicom_set_bytes(DicomDataset *ds, uint32_t tag, uint16_t vr, const void *data, size_t len,
                    Err *e)
{
    int rc = check_tag(ds, tag, vr, e);
    if (rc)
        return rc;
    const DicomVrInfo *info = dicom__vr_info(vr);
    char vs[3];
    dicom_vr_str(vr, vs);
    if (info->kind == DICOM_VR_KIND_SEQUENCE)
        return err_set(e, ERR_FORMAT, "dicom: %s: an SQ has items, not bytes",
                       dicom__tag_label(tag).s);
    if (len % info->unit)
        return err_set(e, ERR_FORMAT, "dicom: %s: %zu bytes is not a whole number of %s values",
                       dicom__tag_label(tag).s, len, vs);
    rc = check_length(tag, vr, len, e);
    if (rc)
        return rc;
    return dicom__set_value(ds, tag, vr, data, len, e);
}

int dicom_set_encapsulated(DicomDataset *ds, uint32_t tag, const DicomFragment *frags, size_t n,
                           Err *e)
{
    int rc = check_tag(ds, tag, DICOM_VR_OB, e);
    if (rc)
        return rc;
    if (n < 1 || n > 0xFFFFFFFEu)
        return err_set(e, ERR_FORMAT, "dicom: %s: encapsulated data needs a Basic Offset Table",
                       dicom__tag_label(tag).s);
    for (size_t i = 0; i < n; i++)
        if (frags[i].length & 1 || (frags[i].length && !frags[i].data))
            return err_set(e, ERR_FORMAT, "dicom: %s: fragment %zu has odd length %u",
                           dicom__tag_label(tag).s, i, (unsigned)frags[i].length);
    DicomElement el = {.tag = tag, .vr = DICOM_VR_OB, .undefined_length = 1};
    el.fragments = mem_calloc(n, sizeof *el.fragments);
    if (!el.fragments)
        goto out_nomem;
    el.n_fragments = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        el.fragments[i].length = frags[i].length;
        if (!frags[i].length)
            continue;
        el.fragments[i].data = mem_alloc(frags[i].length);
        if (!el.fragments[i].data)
            goto out_nomem;
        memcpy(el.fragments[i].data, frags[i].data, frags[i].length);
    }
    rc = dicom__put(ds, &el, e);
    if (rc)
        dicom__element_clear(&el);
    return rc;
out_nomem:
    dicom__element_clear(&el);
    return err_set(e, ERR_NOMEM, "dicom: %s: no memory for %zu fragments", dicom__tag_label(tag).s,
                   n);
}

int dicom_set_sequence(DicomDataset *ds, uint32_t tag, Err *e)
{
    int rc = check_tag(ds, tag, DICOM_VR_SQ, e);
    if (rc)
        return rc;
    DicomElement el = {.tag = tag, .vr = DICOM_VR_SQ};
    return dicom__put(ds, &el, e);
}

int dicom_add_item(DicomDataset *ds, uint32_t tag, DicomDataset **item, Err *e)
{
    *item = NULL;
    int rc = check_tag(ds, tag, DICOM_VR_SQ, e);
    if (rc)
        return rc;
    DicomElement *sq = (DicomElement *)dicom_find(ds, tag);
    if (sq && sq->vr != DICOM_VR_SQ)
        return err_set(e, ERR_FORMAT, "dicom: %s: not a sequence, cannot add an item",
                       dicom__tag_label(tag).s);
    if (sq && sq->n_items >= 0xFFFFFFFEu)
        return err_set(e, ERR_FORMAT, "dicom: %s: too many items", dicom__tag_label(tag).s);
    DicomDataset *fresh;
    rc = dicom_dataset_new(&fresh, e);
    if (rc)
        return rc;
    if (sq) {
        DicomDataset **grown = mem_realloc(sq->items, (sq->n_items + 1) * sizeof *grown);
        if (!grown)
            goto out_nomem;
        sq->items = grown;
        sq->items[sq->n_items++] = fresh;
    } else {
        DicomElement el = {.tag = tag, .vr = DICOM_VR_SQ, .n_items = 1};
        el.items = mem_alloc(sizeof *el.items);
        if (!el.items)
            goto out_nomem;
        el.items[0] = fresh;
        rc = dicom__put(ds, &el, e);
        if (rc) {
            dicom__element_clear(&el);
            return rc;
        }
    }
    *item = fresh;
    return ERR_OK;
out_nomem:
    dicom_dataset_free(fresh);
    return err_set(e, ERR_NOMEM, "dicom: %s: no memory for an item", dicom__tag_label(tag).s);
}

// ---------------------------------------------------------------------------------------------
// Private tags

/* 1 if the creator element holds name (trailing spaces, the padding, ignored). */
static int creator_is(const DicomElement *el, const char *name, size_t n)
{
    size_t len = el->length;
    while (len && (el->value[len - 1] == ' ' || el->value[len - 1] == '\0'))
        len--;
    return el->vr == DICOM_VR_LO && len == n && memcmp(el->value, name, n) == 0;
}

int dicom_private_tag(DicomDataset *ds, uint16_t group, const char *creator, uint8_t element_offset,
                      uint32_t *tag, Err *e)
{
    *tag = 0;
    if (!(group & 1) || group < 0x0009 || group > 0xFFFD)
        return err_set(e, ERR_FORMAT, "dicom: private group %04X: must be odd, 0009-FFFD", group);
    size_t n = strlen(creator);
    if (n == 0)
        return err_set(e, ERR_FORMAT, "dicom: private group %04X: empty private creator", group);
    int free_block = -1;
    for (int block = 0x10; block <= 0xFF; block++) {
        const DicomElement *el = dicom_find(ds, DICOM_TAG(group, block));
        if (el && creator_is(el, creator, n)) {
            *tag = DICOM_TAG(group, (block << 8) | element_offset);
            return ERR_OK;
        }
        if (!el && free_block < 0)
            free_block = block;
    }
    if (free_block < 0)
        return err_set(e, ERR_FORMAT, "dicom: private group %04X: all 240 creator blocks in use",
                       group);
    int rc = dicom_set_str(ds, DICOM_TAG(group, free_block), DICOM_VR_LO, creator, e);
    if (rc)
        return rc;
    *tag = DICOM_TAG(group, (free_block << 8) | element_offset);
    return ERR_OK;
}
