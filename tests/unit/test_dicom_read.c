/* test_dicom_read.c: the DICOM reader and pixel decoders of lib/dicom.
 *
 * What is proved, and against what:
 *   - round trips: every encoding and file form the writer makes reads back to the same data
 *     set and pixels, and writing what was read gives the same bytes again;
 *   - truncation at every length of small files, hand-made malformed inputs (lengths past the
 *     end, odd item lengths, missing item tags, a nesting bomb, huge lengths, bad VRs, broken
 *     deflate) and corrupted codestreams: a clean ERR_FORMAT naming the file, never a crash;
 *   - allocation failures: each one is ERR_NOMEM and leaks nothing;
 *   - the own RLE decoder against the writer's encoder on random images;
 *   - the fixtures (tests/fixtures/dicom, made by tools/make_dicom_fixtures.sh with dcmtk and
 *     GDCM, plus pydicom's MR_small family): every one decodes to what pydicom says
 *     (expect.csv, written by tools/dicom_fixture_expect.py), exactly or within the lossy bound,
 *     with the same geometry; the own JPEG lossless decoder thus meets two independent encoders;
 *   - enhanced multi-frame geometry from functional groups, value accessors, the matrix.
 *
 * Other modes: "--emit-sources DIR" writes the uncompressed sources the fixture script
 * compresses; "--synth RUN" checks every file of an `onfh synth` run against its truth (TAP,
 * for tests/integration/dicom_read_synth.sh); "--matrix" prints the support matrix in Markdown. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_codec.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"

// ---------------------------------------------------------------------------------------------
// Helpers

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static const char *fixture_path(const char *name)
{
    static char path[4096];
    const char *root = getenv("ONFH_ROOT");
    snprintf(path, sizeof path, "%s/tests/fixtures/dicom/%s", root ? root : ".", name);
    return path;
}

static void check_ok(int rc, const Err *e)
{
    if (rc)
        print_error("unexpected error %d: %s\n", rc, e->msg);
    assert_int_equal(rc, ERR_OK);
}

/* rc must be ERR_FORMAT with a message holding each of the NULL-terminated strings. */
static void expect_format(int rc, const Err *e, ...)
{
    if (rc != ERR_FORMAT)
        print_error("expected ERR_FORMAT, got %d: %s\n", rc, e->msg);
    assert_int_equal(rc, ERR_FORMAT);
    va_list ap;
    va_start(ap, e);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(e->msg, s))
            print_error("message \"%s\" lacks \"%s\"\n", e->msg, s);
        assert_non_null(strstr(e->msg, s));
    }
    va_end(ap);
}

static void sha_pixels(const uint16_t *px, size_t n, char hex[65])
{
    Sha256 h;
    sha256_init(&h);
    uint8_t buf[1024];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buf / 2 && i < n; k++, i++) {
            buf[2 * k] = (uint8_t)px[i];
            buf[2 * k + 1] = (uint8_t)(px[i] >> 8);
        }
        sha256_update(&h, buf, 2 * k);
    }
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_to_hex(d, hex);
}

// ---------------------------------------------------------------------------------------------
// Sample data sets, made with the writer

/* A smooth image with texture, noise and flat runs, within maxval: something every codec has to
 * work on (gradients for the predictors, runs for RLE, noise for the entropy coder). */
static void fill_pixels(uint16_t *px, int rows, int cols, int frames, unsigned maxval)
{
    for (int f = 0; f < frames; f++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                double x = (double)c / cols - 0.5;
                double y = (double)r / rows - 0.5;
                double v = 0.5 + 0.35 * (1 - 4 * (x * x + y * y)) + 0.05 * f;
                v += (double)(rnd() % 64) / 64.0 * 0.04;
                if (r % 7 == 3)
                    v = 0.25; /* flat rows */
                unsigned u = (unsigned)(v * maxval);
                px[((size_t)f * rows + r) * cols + c] = (uint16_t)(u > maxval ? maxval : u);
            }
}

static int set_us(DicomDataset *ds, uint32_t tag, unsigned v, Err *e)
{
    uint16_t x = (uint16_t)v;
    return dicom_set_us(ds, tag, &x, 1, e);
}

/* Private and standard sequences, nested, one empty; binary VRs of every width (BE swapping). */
static int add_extras(DicomDataset *ds, Err *e)
{
    uint32_t tag;
    DicomDataset *item;
    DicomDataset *inner;
    const uint16_t us3[3] = {1, 515, 65535};
    const double fd[2] = {3.25, -1e-300};
    const float fl = -2.5f;
    const int16_t ss = -5;
    const uint32_t ul[2] = {7, 0xDEADBEEFu};
    int rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x10, &tag, e)) ||
        (rc = dicom_set_str(ds, tag, DICOM_VR_LO, "odd", e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x11, &tag, e)) ||
        (rc = dicom_set_us(ds, tag, us3, 3, e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x12, &tag, e)) ||
        (rc = dicom_set_fd(ds, tag, fd, 2, e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x13, &tag, e)) ||
        (rc = dicom_set_fl(ds, tag, &fl, 1, e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x14, &tag, e)) ||
        (rc = dicom_set_ul(ds, tag, ul, 2, e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x30, &tag, e)) ||
        (rc = dicom_set_sequence(ds, tag, e)) ||
        (rc = dicom_private_tag(ds, 0x0029, "ONFH TEST", 0x20, &tag, e)) ||
        (rc = dicom_add_item(ds, tag, &item, e)) || (rc = dicom_add_item(ds, tag, &item, e)) ||
        (rc = dicom_private_tag(item, 0x0029, "ONFH TEST", 0x21, &tag, e)) ||
        (rc = dicom_set_str(item, tag, DICOM_VR_LO, "second item", e)) ||
        (rc = dicom_private_tag(item, 0x0029, "ONFH TEST", 0x22, &tag, e)) ||
        (rc = dicom_add_item(item, tag, &inner, e)) ||
        (rc = dicom_private_tag(inner, 0x0029, "ONFH TEST", 0x23, &tag, e)) ||
        (rc = dicom_set_ss(inner, tag, &ss, 1, e)))
        return rc;
    if ((rc = dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, e)) ||
        (rc = dicom_set_str(item, DICOM_TAG(0x0040, 0x1001), DICOM_VR_SH, "RP1", e)) ||
        (rc = dicom_add_item(item, DICOM_TAG(0x0040, 0x0008), &inner, e)) ||
        (rc = dicom_set_str(inner, DICOM_TAG(0x0008, 0x0100), DICOM_VR_SH, "C1", e)) ||
        (rc = dicom_set_str(inner, DICOM_TAG(0x0008, 0x0104), DICOM_VR_LO, "hip", e)) ||
        (rc = dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, e)))
        return rc;
    return ERR_OK;
}

/* An MR Image Storage instance of rows x cols, 12 bits stored, pixels from fill_pixels (into
 * *pixels when not NULL, rows x cols values the caller frees). */
static int build_mr(int rows, int cols, int extras, const char *seed, DicomDataset **out,
                    uint16_t **pixels, Err *e)
{
    char study[DICOM_UID_MAX + 1], series[DICOM_UID_MAX + 1], sop[DICOM_UID_MAX + 1],
        frame[DICOM_UID_MAX + 1], text[200];
    uint16_t *px = mem_alloc((size_t)rows * cols * sizeof *px);
    if (!px)
        return err_set(e, ERR_NOMEM, "test: no memory");
    fill_pixels(px, rows, cols, 1, 4095);
    snprintf(text, sizeof text, "onfh-read-test/%s/study", seed);
    dicom_uid_from_seed(text, study);
    snprintf(text, sizeof text, "onfh-read-test/%s/series", seed);
    dicom_uid_from_seed(text, series);
    snprintf(text, sizeof text, "onfh-read-test/%s/sop", seed);
    dicom_uid_from_seed(text, sop);
    snprintf(text, sizeof text, "onfh-read-test/%s/frame", seed);
    dicom_uid_from_seed(text, frame);
    DicomMrImage p;
    dicom_mr_defaults(&p);
    p.patient_name = "READ^TEST";
    p.patient_id = "ONFH-READ";
    p.patient_birth_date = "19650203";
    p.patient_sex = "M";
    p.study_uid = study;
    p.series_uid = series;
    p.sop_instance_uid = sop;
    p.frame_of_reference_uid = frame;
    p.study_date = "20240102";
    p.study_time = "093000";
    p.acquisition_date = "20240102";
    p.acquisition_time = "093500";
    p.study_id = "7";
    p.series_description = "COR T1";
    p.series_number = 3;
    p.instance_number = 5;
    const double iop[6] = {1, 0, 0, 0, 0, -1};
    memcpy(p.image_orientation, iop, sizeof iop);
    p.image_position[0] = -120.5;
    p.image_position[1] = 14.75;
    p.image_position[2] = 95.125;
    p.pixel_spacing[0] = 0.7;
    p.pixel_spacing[1] = 0.8;
    p.slice_thickness = 3;
    p.spacing_between_slices = 3.5;
    p.rows = (uint16_t)rows;
    p.columns = (uint16_t)cols;
    p.pixels = px;
    p.rescale_slope = 2.5;
    p.rescale_intercept = -10;
    p.window_center = 1000;
    p.window_width = 2000;
    int rc = dicom_mr_image_new(&p, out, e);
    if (!rc && extras && (rc = add_extras(*out, e))) {
        dicom_dataset_free(*out);
        *out = NULL;
    }
    if (!rc && pixels)
        *pixels = px;
    else
        mem_free(px);
    return rc;
}

/* Replaces the pixel module: frames of rows x cols (from build_mr), bits allocated / stored,
 * signed or not; pixels given as uint16 values (8-bit ones are written as OB bytes). */
static int set_pixels(DicomDataset *ds, const uint16_t *px, int frames, int rows, int cols,
                      unsigned bits_allocated, unsigned bits_stored, int is_signed, Err *e)
{
    size_t n = (size_t)frames * rows * cols;
    long nf = frames;
    int rc;
    if ((rc = set_us(ds, DICOM_TAG_ROWS, (unsigned)rows, e)) ||
        (rc = set_us(ds, DICOM_TAG_COLUMNS, (unsigned)cols, e)) ||
        (rc = set_us(ds, DICOM_TAG_BITS_ALLOCATED, bits_allocated, e)) ||
        (rc = set_us(ds, DICOM_TAG_BITS_STORED, bits_stored, e)) ||
        (rc = set_us(ds, DICOM_TAG_HIGH_BIT, bits_stored - 1, e)) ||
        (rc = set_us(ds, DICOM_TAG_PIXEL_REPRESENTATION, (unsigned)is_signed, e)))
        return rc;
    if (frames > 1 && (rc = dicom_set_is(ds, DICOM_TAG_NUMBER_OF_FRAMES, &nf, 1, e)))
        return rc;
    if (bits_allocated == 16)
        return dicom_set_pixels16(ds, px, n, e);
    uint8_t *b = mem_alloc(n);
    if (!b)
        return err_set(e, ERR_NOMEM, "test: no memory");
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)px[i];
    rc = dicom_set_bytes(ds, DICOM_TAG_PIXEL_DATA, DICOM_VR_OB, b, n, e);
    mem_free(b);
    return rc;
}

/* Enhanced MR: frames of rows x cols, functional groups (shared: pixel measures, orientation;
 * per frame: position, pixel value transformation, frame content); no classic geometry. */
static int build_enhanced(int frames, int rows, int cols, DicomDataset **out, uint16_t **pixels,
                          Err *e)
{
    uint16_t *px = mem_alloc((size_t)frames * rows * cols * sizeof *px);
    if (!px)
        return err_set(e, ERR_NOMEM, "test: no memory");
    fill_pixels(px, rows, cols, frames, 4095);
    int rc = build_mr(rows, cols, 0, "enhanced", out, NULL, e);
    if (rc) {
        mem_free(px);
        return rc;
    }
    DicomDataset *ds = *out;
    DicomDataset *shared;
    DicomDataset *item;
    const double spacing[2] = {0.55, 0.65};
    const double thickness = 1.5;
    const double iop[6] = {0, 1, 0, 0, 0, -1};
    dicom_remove(ds, DICOM_TAG_IMAGE_POSITION_PATIENT);
    dicom_remove(ds, DICOM_TAG_IMAGE_ORIENTATION_PATIENT);
    dicom_remove(ds, DICOM_TAG_PIXEL_SPACING);
    dicom_remove(ds, DICOM_TAG_SLICE_THICKNESS);
    dicom_remove(ds, DICOM_TAG_RESCALE_SLOPE);
    dicom_remove(ds, DICOM_TAG_RESCALE_INTERCEPT);
    if ((rc = dicom_set_str(ds, DICOM_TAG_SOP_CLASS_UID, DICOM_VR_UI,
                            DICOM_SOP_CLASS_ENHANCED_MR_IMAGE, e)) ||
        (rc = set_pixels(ds, px, frames, rows, cols, 16, 12, 0, e)) ||
        (rc = dicom_add_item(ds, DICOM_TAG_SHARED_FUNCTIONAL_GROUPS, &shared, e)) ||
        (rc = dicom_add_item(shared, DICOM_TAG_PIXEL_MEASURES_SEQUENCE, &item, e)) ||
        (rc = dicom_set_ds(item, DICOM_TAG_PIXEL_SPACING, spacing, 2, e)) ||
        (rc = dicom_set_ds(item, DICOM_TAG_SLICE_THICKNESS, &thickness, 1, e)) ||
        (rc = dicom_add_item(shared, DICOM_TAG_PLANE_ORIENTATION_SEQUENCE, &item, e)) ||
        (rc = dicom_set_ds(item, DICOM_TAG_IMAGE_ORIENTATION_PATIENT, iop, 6, e)))
        goto out;
    for (int f = 0; f < frames && !rc; f++) {
        DicomDataset *per;
        const double ipp[3] = {-10.0 - f, 20.5 + 2.25 * f, 30.0};
        const double slope = 1.0 + 0.5 * f;
        const double intercept = -5.0 * f;
        const uint32_t index[2] = {1, (uint32_t)f + 1};
        if ((rc = dicom_add_item(ds, DICOM_TAG_PER_FRAME_FUNCTIONAL_GROUPS, &per, e)) ||
            (rc = dicom_add_item(per, DICOM_TAG_PLANE_POSITION_SEQUENCE, &item, e)) ||
            (rc = dicom_set_ds(item, DICOM_TAG_IMAGE_POSITION_PATIENT, ipp, 3, e)) ||
            (rc = dicom_add_item(per, DICOM_TAG_PIXEL_VALUE_TRANSFORMATION_SEQUENCE, &item, e)) ||
            (rc = dicom_set_ds(item, DICOM_TAG_RESCALE_SLOPE, &slope, 1, e)) ||
            (rc = dicom_set_ds(item, DICOM_TAG_RESCALE_INTERCEPT, &intercept, 1, e)) ||
            (rc = dicom_add_item(per, DICOM_TAG_FRAME_CONTENT_SEQUENCE, &item, e)) ||
            (rc = dicom_set_ul(item, DICOM_TAG(0x0020, 0x9157), index, 2, e)))
            goto out;
    }
out:
    if (rc) {
        dicom_dataset_free(*out);
        *out = NULL;
        mem_free(px);
    } else if (pixels) {
        *pixels = px;
    } else {
        mem_free(px);
    }
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Comparing data sets

/* a as set, b as read: equal, or b has the pad byte the encoder added to odd a. */
static int values_equal(const DicomElement *a, const DicomElement *b)
{
    if (b->length == a->length)
        return a->length == 0 || memcmp(a->value, b->value, a->length) == 0;
    return (a->length & 1) && b->length == a->length + 1 &&
           (b->value[a->length] == ' ' || b->value[a->length] == '\0') &&
           (a->length == 0 || memcmp(a->value, b->value, a->length) == 0);
}

/* The VR an Implicit VR reader can know for tag: 0 for none. */
static uint16_t knowable_vr(uint32_t tag)
{
    if (DICOM_ELEMENT(tag) == 0)
        return DICOM_VR_UL;
    if ((DICOM_GROUP(tag) & 1) && DICOM_ELEMENT(tag) >= 0x10 && DICOM_ELEMENT(tag) <= 0xFF)
        return DICOM_VR_LO;
    return dicom_dict_vr(tag) ? dicom_dict_vr(tag) : dicom__reader_vr(tag);
}

static void check_equal(const DicomDataset *a, const DicomDataset *b, int implicit,
                        int pixels_encapsulated, const char *where)
{
    if (a->count != b->count)
        fail_msg("%s: %zu elements written, %zu read", where, a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const DicomElement *x = &a->elements[i];
        const DicomElement *y = &b->elements[i];
        char at[300];
        snprintf(at, sizeof at, "%s > (%04X,%04X)", where, DICOM_GROUP(x->tag),
                 DICOM_ELEMENT(x->tag));
        if (x->tag != y->tag)
            fail_msg("%s: read tag (%04X,%04X)", at, DICOM_GROUP(y->tag), DICOM_ELEMENT(y->tag));
        if (x->tag == DICOM_TAG_PIXEL_DATA && pixels_encapsulated) {
            assert_true(y->n_fragments >= 2);
            continue;
        }
        uint16_t want = x->vr;
        if (implicit && x->vr != DICOM_VR_SQ)
            want = knowable_vr(x->tag) ? knowable_vr(x->tag) : DICOM_VR_UN;
        if (implicit && x->vr == DICOM_VR_SQ && x->n_items == 0 && y->vr == DICOM_VR_UN) {
            assert_int_equal(y->length, 0); /* an empty unknown sequence is an empty blob */
            continue;
        }
        if (y->vr != want)
            fail_msg("%s: VR %c%c read, %c%c expected", at, y->vr >> 8, y->vr & 0xFF, want >> 8,
                     want & 0xFF);
        if (x->vr == DICOM_VR_SQ) {
            if (x->n_items != y->n_items)
                fail_msg("%s: %u items written, %u read", at, x->n_items, y->n_items);
            for (uint32_t k = 0; k < x->n_items; k++) {
                char sub[340];
                snprintf(sub, sizeof sub, "%s[%u]", at, k);
                check_equal(x->items[k], y->items[k], implicit, 0, sub);
            }
        } else if (x->n_fragments) {
            assert_int_equal(x->n_fragments, y->n_fragments);
            for (uint32_t k = 0; k < x->n_fragments; k++) {
                assert_int_equal(x->fragments[k].length, y->fragments[k].length);
                if (x->fragments[k].length)
                    assert_memory_equal(x->fragments[k].data, y->fragments[k].data,
                                        x->fragments[k].length);
            }
        } else if (!values_equal(x, y)) {
            fail_msg("%s: value of %u bytes read as %u different bytes", at, x->length, y->length);
        }
    }
}

static const DicomWriteOptions *opts(DicomTransferSyntax ts, DicomFileForm form, int undefined)
{
    static DicomWriteOptions o;
    o = (DicomWriteOptions){.ts = ts, .form = form, .undefined_length = undefined};
    return &o;
}

static int form_allowed(int ts, int form)
{
    return form != DICOM_FILE_DATASET_ONLY || (ts != DICOM_TS_DEFLATED_LE && ts != DICOM_TS_RLE);
}

static void decode_and_compare(const DicomFile *f, const uint16_t *want, size_t n)
{
    Err e = {0};
    DicomImageInfo info;
    uint16_t *px;
    check_ok(dicom_decode_pixels(f, &info, &px, &e), &e);
    assert_int_equal((size_t)info.rows * info.columns * info.frames * info.samples_per_pixel, n);
    assert_memory_equal(px, want, n * sizeof *px);
    mem_free(px);
}

// ---------------------------------------------------------------------------------------------
// Round trips

/* Every syntax, form and length style the writer makes: the data set, meta and pixels read back,
 * and writing what was read gives the same bytes. */
static void test_round_trip_every_encoding(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    uint16_t *px;
    check_ok(build_mr(24, 20, 1, "round-trip", &ds, &px, &e), &e);
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++)
        for (int form = 0; form <= DICOM_FILE_DATASET_ONLY; form++)
            for (int undef = 0; undef <= 1; undef++) {
                if (!form_allowed(ts, form))
                    continue;
                char where[120];
                snprintf(where, sizeof where, "%s form %d %s", dicom_ts_name(ts), form,
                         undef ? "undefined" : "defined");
                uint8_t *data;
                size_t len;
                check_ok(dicom_write_mem(ds, opts(ts, form, undef), &data, &len, &e), &e);
                DicomFile *f;
                check_ok(dicom_read_mem(data, len, where, NULL, &f, &e), &e);
                assert_int_equal(f->form, form);
                assert_string_equal(f->ts_uid, dicom_ts_uid(ts));
                assert_int_equal(f->ts_guessed, form == DICOM_FILE_DATASET_ONLY);
                assert_non_null(f->ts);
                assert_int_equal(f->meta->count, form == DICOM_FILE_DATASET_ONLY ? 0 : 7);
                check_equal(ds, f->ds, ts == DICOM_TS_IMPLICIT_LE, ts == DICOM_TS_RLE, where);
                decode_and_compare(f, px, 24 * 20);
                uint8_t *again;
                size_t again_len;
                check_ok(dicom_write_mem(f->ds, opts(ts, form, undef), &again, &again_len, &e), &e);
                assert_int_equal(again_len, len);
                assert_memory_equal(again, data, len);
                mem_free(again);
                dicom_file_free(f);
                mem_free(data);
            }
    dicom_dataset_free(ds);
    mem_free(px);
}

/* Multi-frame, 8-bit (odd length, pad byte) and signed pixel data in every syntax. */
static void test_round_trip_pixel_variants(void **state)
{
    (void)state;
    Err e = {0};
    enum { R = 9, C = 11, F = 3 };
    uint16_t px[F * R * C];
    struct {
        unsigned bits_allocated, bits_stored, frames;
        int is_signed;
    } variants[] = {{8, 8, 1, 0}, {8, 8, F, 0}, {16, 16, F, 1}, {16, 12, 1, 1}, {8, 7, 1, 1}};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        unsigned ba = variants[v].bits_allocated, bs = variants[v].bits_stored;
        int sg = variants[v].is_signed, nf = (int)variants[v].frames;
        for (int i = 0; i < nf * R * C; i++) {
            int32_t x = (int32_t)(rnd() % (1u << bs));
            if (sg)
                x -= 1 << (bs - 1); /* negative values too */
            px[i] = (uint16_t)x;
            if (ba == 8)
                px[i] &= 0xFF;
        }
        /* What the decoder gives: stored bits, sign-extended for signed data. */
        uint16_t want[F * R * C];
        for (int i = 0; i < nf * R * C; i++) {
            uint32_t m = (1u << bs) - 1;
            uint32_t x = px[i] & m;
            if (sg && (x >> (bs - 1)))
                x |= ~m;
            want[i] = (uint16_t)x;
        }
        DicomDataset *ds;
        check_ok(build_mr(R, C, 0, "variant", &ds, NULL, &e), &e);
        check_ok(set_pixels(ds, px, nf, R, C, ba, bs, sg, &e), &e);
        for (int ts = 0; ts < DICOM_TS_COUNT; ts++) {
            uint8_t *data;
            size_t len;
            check_ok(dicom_write_mem(ds, opts(ts, DICOM_FILE_PART10, 1), &data, &len, &e), &e);
            DicomFile *f;
            check_ok(dicom_read_mem(data, len, "variant.dcm", NULL, &f, &e), &e);
            DicomImageInfo info;
            check_ok(dicom_image_info(f, &info, &e), &e);
            assert_int_equal(info.frames, nf);
            assert_int_equal(info.bits_allocated, ba);
            assert_int_equal(info.bits_stored, bs);
            assert_int_equal(info.pixel_representation, sg);
            decode_and_compare(f, want, (size_t)nf * R * C);
            /* One frame at a time, too. */
            uint16_t one[R * C];
            for (int k = 0; k < nf; k++) {
                check_ok(dicom_decode_frame(f, (uint32_t)k, one, R * C, &e), &e);
                assert_memory_equal(one, want + k * R * C, sizeof one);
            }
            expect_format(dicom_decode_frame(f, (uint32_t)nf, one, R * C, &e), &e, "variant.dcm",
                          "frame", NULL);
            expect_format(dicom_decode_frame(f, 0, one, R * C - 1, &e), &e, "buffer", NULL);
            dicom_file_free(f);
            mem_free(data);
        }
        dicom_dataset_free(ds);
    }
}

/* Encapsulated frames cut into fragments, with the Basic Offset Table, the Extended Offset
 * Table, or neither: written as "Encapsulated Uncompressed" so the expected pixels are exact. */
static void test_fragments_to_frames(void **state)
{
    (void)state;
    Err e = {0};
    enum { R = 6, C = 5, F = 3, PER = 3 };
    uint16_t px[F * R * C];
    for (int i = 0; i < F * R * C; i++)
        px[i] = (uint16_t)(i * 37 % 4096);
    const size_t frame_bytes = R * C * 2;
    for (int mode = 0; mode < 4; mode++) {
        /* 0: BOT, 3 fragments per frame; 1: EOT, empty BOT; 2: no table, one fragment per
         * frame; 3: no table, 3 per frame (refused: nothing marks where frames start) */
        int per = mode == 2 ? 1 : PER;
        DicomFragment frags[1 + F * PER];
        uint8_t bot[4 * F];
        uint8_t eot[8 * F];
        uint8_t bytes[F * R * C * 2];
        for (int i = 0; i < F * R * C; i++) {
            bytes[2 * i] = (uint8_t)px[i];
            bytes[2 * i + 1] = (uint8_t)(px[i] >> 8);
        }
        size_t n = 1;
        uint32_t offset = 0;
        for (int f = 0; f < F; f++) {
            for (int k = 0; k < 8; k++)
                eot[8 * f + k] = k < 4 ? (uint8_t)(offset >> (8 * k)) : 0;
            for (int k = 0; k < 4; k++)
                bot[4 * f + k] = (uint8_t)(offset >> (8 * k));
            /* fragment lengths 20, 20, 20 of a 60-byte frame (or 60) */
            size_t piece = frame_bytes / (size_t)per;
            for (int p = 0; p < per; p++) {
                frags[n].data = bytes + f * frame_bytes + p * piece;
                frags[n].length = (uint32_t)piece;
                offset += 8 + (uint32_t)piece;
                n++;
            }
        }
        frags[0].data = mode == 0 ? bot : NULL;
        frags[0].length = mode == 0 ? sizeof bot : 0;
        DicomDataset *ds;
        check_ok(build_mr(R, C, 0, "fragments", &ds, NULL, &e), &e);
        long nf = F;
        check_ok(dicom_set_is(ds, DICOM_TAG_NUMBER_OF_FRAMES, &nf, 1, &e), &e);
        check_ok(dicom_set_encapsulated(ds, DICOM_TAG_PIXEL_DATA, frags, n, &e), &e);
        if (mode == 1)
            check_ok(dicom_set_bytes(ds, DICOM_TAG_EXTENDED_OFFSET_TABLE, DICOM_VR_OV, eot,
                                     sizeof eot, &e),
                     &e);
        DicomWriteOptions o = {.ts = DICOM_TS_RLE, .meta_ts_uid = "1.2.840.10008.1.2.1.98"};
        uint8_t *data;
        size_t len;
        check_ok(dicom_write_mem(ds, &o, &data, &len, &e), &e);
        DicomFile *f;
        check_ok(dicom_read_mem(data, len, "frag.dcm", NULL, &f, &e), &e);
        assert_int_equal(f->ts->codec, DICOM_CODEC_NATIVE_FRAMES);
        assert_int_equal(dicom_find(f->ds, DICOM_TAG_PIXEL_DATA)->n_fragments, n);
        if (mode < 3) {
            decode_and_compare(f, px, F * R * C);
        } else {
            uint16_t out[R * C];
            expect_format(dicom_decode_frame(f, 1, out, R * C, &e), &e, "frag.dcm",
                          "no offset table", NULL);
        }
        dicom_file_free(f);
        mem_free(data);
        dicom_dataset_free(ds);
    }
}

// ---------------------------------------------------------------------------------------------
// Truncation and malformed input

/* Each prefix of a small file in every encoding: a clean error naming the file, saying
 * "truncated" (or "not a DICOM file" before there is anything to recognise), or, where the cut
 * leaves a complete file (deflate's pad byte), the same pixels. */
static void test_truncated_every_length(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    uint16_t *px;
    check_ok(build_mr(6, 4, 1, "truncate", &ds, &px, &e), &e);
    long checked = 0;
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++)
        for (int form = 0; form <= DICOM_FILE_DATASET_ONLY; form++)
            for (int undef = 0; undef <= 1; undef++) {
                if (!form_allowed(ts, form))
                    continue;
                uint8_t *data;
                size_t len;
                check_ok(dicom_write_mem(ds, opts(ts, form, undef), &data, &len, &e), &e);
                for (size_t cut = 0; cut < len; cut++) {
                    /* A copy of exactly cut bytes, so ASan sees any read past them. */
                    uint8_t *part = mem_alloc(cut ? cut : 1);
                    memcpy(part, data, cut);
                    DicomFile *f = NULL;
                    Err re = {0};
                    int rc = dicom_read_mem(part, cut, "cut.dcm", NULL, &f, &re);
                    if (rc) {
                        expect_format(rc, &re, "cut.dcm", NULL);
                        if (!dicom_error_truncated(&re) && !strstr(re.msg, "not a DICOM file"))
                            fail_msg("%s form %d, %zu of %zu bytes: %s", dicom_ts_name(ts), form,
                                     cut, len, re.msg);
                    } else {
                        DicomImageInfo info;
                        uint16_t *got = NULL;
                        rc = dicom_decode_pixels(f, &info, &got, &re);
                        if (rc)
                            expect_format(rc, &re, "cut.dcm", NULL);
                        else
                            assert_memory_equal(got, px, 6 * 4 * sizeof *px);
                        mem_free(got);
                        dicom_file_free(f);
                    }
                    mem_free(part);
                    checked++;
                }
                mem_free(data);
            }
    assert_true(checked > 10000);
    dicom_dataset_free(ds);
    mem_free(px);
}

/* A Part 10 header (preamble, DICM, a meta group naming ts) followed by body bytes. */
static size_t part10(uint8_t *out, const char *ts, const uint8_t *body, size_t n)
{
    size_t tl = strlen(ts) + (strlen(ts) & 1);
    memset(out, 0, 128);
    memcpy(out + 128, "DICM", 4);
    uint8_t *p = out + 132;
    memcpy(p, "\x02\x00\x10\x00UI", 6);
    p[6] = (uint8_t)tl;
    p[7] = 0;
    memset(p + 8, 0, tl);
    memcpy(p + 8, ts, strlen(ts));
    p += 8 + tl;
    if (n)
        memcpy(p, body, n);
    return (size_t)(p - out) + n;
}

#define EXPLICIT_LE "1.2.840.10008.1.2.1"
#define IMPLICIT_LE "1.2.840.10008.1.2"

/* Parses body under ts; returns rc, message in e. */
static int parse_body(const char *ts, const uint8_t *body, size_t n, DicomFile **f, Err *e)
{
    static uint8_t buf[1 << 16];
    assert_true(n + 256 < sizeof buf);
    size_t len = part10(buf, ts, body, n);
    return dicom_read_mem(buf, len, "bad.dcm", NULL, f, e);
}

static void expect_bad_body(const char *ts, const uint8_t *body, size_t n, const char *what)
{
    DicomFile *f = NULL;
    Err e = {0};
    expect_format(parse_body(ts, body, n, &f, &e), &e, "bad.dcm", what, NULL);
    assert_null(f);
}

#define BODY(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static void test_malformed_inputs(void **state)
{
    (void)state;
    /* A value longer than what follows; a huge one (never allocated). */
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x10\x00\x20\x00LO\x10\x00"
                         "ABCD"),
                    "(0010,0020)");
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x10\x00\x20\x00UT\x00\x00\xF0\xFF\xFF\xFF"
                         "AB"),
                    "value of 4294967280 bytes");
    expect_bad_body(IMPLICIT_LE,
                    BODY("\x10\x00\x20\x00\xFE\xFF\xFF\x7F"
                         "AB"),
                    "value of 2147483646 bytes");
    /* Not a VR (after a first element: the first one decides between Explicit and Implicit). */
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x08\x00\x60\x00"
                         "CS\x02\x00MR\x10\x00\x20\x00l\x01\x02\x00"
                         "AB"),
                    "not a VR");
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x08\x00\x60\x00"
                         "CS\x02\x00MR\x10\x00\x20\x00QQ\x02\x00"
                         "AB"),
                    "not a VR");
    /* Sequences: odd item length, item tag missing, delimiter where it cannot be, odd SQ. */
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x40\x00\x75\x02SQ\x00\x00\x0C\x00\x00\x00\xFE\xFF\x00\xE0\x03\x00\x00"
                         "\x00"
                         "ABCD"),
                    "item of odd length 3");
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x40\x00\x75\x02SQ\x00\x00\x10\x00\x00\x00\x08\x00\x60\x00\x08\x00\x00"
                         "\x00"
                         "MRMRMRMR"),
                    "item tag (FFFE,E000) expected, found (0008,0060)");
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x40\x00\x75\x02SQ\x00\x00\xFF\xFF\xFF\xFF\x08\x00\x60\x00"
                         "CS\x02\x00MR"),
                    "item tag (FFFE,E000) expected");
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x40\x00\x75\x02SQ\x00\x00\x08\x00\x00\x00\xFE\xFF\xDD\xE0\x00\x00\x00"
                         "\x00"),
                    "sequence delimiter in a sequence of defined length");
    expect_bad_body(EXPLICIT_LE, BODY("\xFE\xFF\x0D\xE0\x00\x00\x00\x00"),
                    "item delimiter outside an item");
    expect_bad_body(EXPLICIT_LE, BODY("\xFE\xFF\x00\xE0\x00\x00\x00\x00"), "item or delimiter");
    expect_bad_body(IMPLICIT_LE,
                    BODY("\x40\x00\x75\x02\x03\x00\x00\x00"
                         "ABC"),
                    "sequence of odd length 3");
    /* Undefined lengths: an item that never ends; a VR that cannot have one. */
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x40\x00\x75\x02SQ\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\xFF\xFF\xFF"
                         "\xFF\x08\x00\x60\x00"
                         "CS\x02\x00MR"),
                    "without (FFFE,E00D)");
    expect_bad_body(EXPLICIT_LE, BODY("\x10\x00\x20\x00UT\x00\x00\xFF\xFF\xFF\xFF"),
                    "undefined length is not allowed for VR UT");
    /* Encapsulated pixel data: no Basic Offset Table, a fragment of undefined or odd length,
     * a fragment past the end, no delimiter. */
    expect_bad_body("1.2.840.10008.1.2.5",
                    BODY("\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\xDD\xE0\x00\x00\x00"
                         "\x00"),
                    "no Basic Offset Table");
    expect_bad_body("1.2.840.10008.1.2.5",
                    BODY("\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\x00\x00\x00"
                         "\x00\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"),
                    "fragment of undefined length");
    expect_bad_body("1.2.840.10008.1.2.5",
                    BODY("\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\x00\x00\x00"
                         "\x00\xFE\xFF\x00\xE0\x01\x00\x00\x00"
                         "A"),
                    "fragment of odd length 1");
    expect_bad_body("1.2.840.10008.1.2.5",
                    BODY("\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\x00\x00\x00"
                         "\x00\xFE\xFF\x00\xE0\x00\x01\x00\x00"
                         "AB"),
                    "fragment of 256 bytes");
    expect_bad_body("1.2.840.10008.1.2.5",
                    BODY("\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\x00\x00\x00"
                         "\x00\x08\x00\x60\x00\x00\x00\x00\x00"),
                    "fragment item tag (FFFE,E000) expected");
    /* Elements in descending tag order: a few are put in place, hundreds refused. Element k is
     * (0009,eeee) LO "ab" with element eeee = 0x2000 - k. */
    static uint8_t desc[300 * 10];
    for (int k = 0; k < 300; k++) {
        memcpy(desc + 10 * k,
               "\x09\x00\x00\x00"
               "LO\x02\x00"
               "ab",
               10);
        desc[10 * k + 2] = (uint8_t)(0x2000 - k);
        desc[10 * k + 3] = (uint8_t)((0x2000 - k) >> 8);
    }
    DicomFile *few;
    Err fe = {0};
    check_ok(parse_body(EXPLICIT_LE, desc, 10 * 10, &few, &fe), &fe);
    assert_int_equal(few->ds->count, 10);
    for (size_t k = 1; k < few->ds->count; k++)
        assert_true(few->ds->elements[k - 1].tag < few->ds->elements[k].tag);
    dicom_file_free(few);
    expect_bad_body(EXPLICIT_LE, desc, sizeof desc, "out of ascending tag order");
    /* Stray bytes at the end; a meta group that lies about its length. */
    expect_bad_body(EXPLICIT_LE,
                    BODY("\x08\x00\x60\x00"
                         "CS\x02\x00MR\x00\x00\x00"),
                    "3 stray bytes");
    /* Not DICOM at all. */
    DicomFile *f = NULL;
    Err e = {0};
    expect_format(dicom_read_mem("hello, world\n", 13, "text.txt", NULL, &f, &e), &e, "text.txt",
                  "not a DICOM file", NULL);
    expect_format(dicom_read_mem("", 0, "empty", NULL, &f, &e), &e, "empty", "not a DICOM file",
                  NULL);
    uint8_t zeros[300] = {0};
    expect_format(dicom_read_mem(zeros, sizeof zeros, "zeros", NULL, &f, &e), &e,
                  "not a DICOM file", NULL);
    assert_false(dicom_error_truncated(&e));
    uint8_t meta[200];
    size_t n = part10(meta, EXPLICIT_LE, NULL, 0);
    memcpy(meta + n, "\x02\x00\x00\x00UL\x04\x00\xFF\x00\x00\x00", 12);
    expect_format(dicom_read_mem(meta, n + 12, "meta.dcm", NULL, &f, &e), &e, "meta.dcm",
                  "meta group of 255 bytes", NULL);
    assert_true(dicom_error_truncated(&e));
}

/* Sequences nested deeper than DICOM_MAX_DEPTH (each level 20 bytes: a nesting bomb). */
static void test_nesting_bomb(void **state)
{
    (void)state;
    enum { LEVELS = 100000 };
    size_t n = (size_t)LEVELS * 20;
    uint8_t *body = mem_alloc(n);
    for (size_t i = 0; i < LEVELS; i++)
        memcpy(body + 20 * i,
               "\x40\x00\x75\x02SQ\x00\x00\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF", 20);
    uint8_t *file = mem_alloc(n + 256);
    size_t len = part10(file, EXPLICIT_LE, body, n);
    DicomFile *f = NULL;
    Err e = {0};
    size_t before = mem_bytes_in_use();
    expect_format(dicom_read_mem(file, len, "bomb.dcm", NULL, &f, &e), &e, "bomb.dcm",
                  "nested deeper than 64", NULL);
    assert_int_equal(mem_bytes_in_use(), before);
    /* 64 levels are fine. */
    size_t ok = 64 * 20;
    uint8_t tail[64 * 16];
    for (int i = 0; i < 64; i++)
        memcpy(tail + 16 * i, "\xFE\xFF\x0D\xE0\x00\x00\x00\x00\xFE\xFF\xDD\xE0\x00\x00\x00\x00",
               16);
    memcpy(body + ok, tail, sizeof tail);
    len = part10(file, EXPLICIT_LE, body, ok + sizeof tail);
    check_ok(dicom_read_mem(file, len, "deep.dcm", NULL, &f, &e), &e);
    const DicomDataset *d = f->ds;
    int depth = 0;
    for (const DicomElement *el; (el = dicom_find(d, DICOM_TAG(0x0040, 0x0275)));) {
        assert_int_equal(el->n_items, 1);
        d = el->items[0];
        depth++;
    }
    assert_int_equal(depth, 64);
    dicom_file_free(f);
    mem_free(body);
    mem_free(file);
}

/* UN holding a sequence (PS3.5 6.2.2), unknown Implicit VR sequences of either length, and blobs
 * that start like items but are not. */
static void test_un_and_unknown_sequences(void **state)
{
    (void)state;
    DicomFile *f = NULL;
    Err e = {0};
    /* Explicit VR LE; (0009,1001) UN of undefined length holding an Implicit VR LE item with
     * (0010,0020) "AB" (the inner elements have no VR). */
    check_ok(parse_body(EXPLICIT_LE,
                        BODY("\x09\x00\x10\x00LO\x04\x00TEST\x09\x00\x01\x10UN\x00\x00\xFF\xFF"
                             "\xFF\xFF\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF\x10\x00\x20\x00\x02\x00"
                             "\x00\x00"
                             "AB\xFE\xFF\x0D\xE0\x00\x00\x00\x00\xFE\xFF\xDD\xE0\x00"
                             "\x00\x00\x00"),
                        &f, &e),
             &e);
    const DicomElement *sq = dicom_find(f->ds, DICOM_TAG(0x0009, 0x1001));
    assert_non_null(sq);
    assert_int_equal(sq->vr, DICOM_VR_SQ);
    assert_int_equal(sq->n_items, 1);
    char s[16];
    check_ok(dicom_get_string(sq->items[0], DICOM_TAG_PATIENT_ID, s, sizeof s, &e), &e);
    assert_string_equal(s, "AB");
    dicom_file_free(f);
    /* The same as UN of defined length (18 bytes), and a UN blob that merely starts with an
     * item tag but whose item is too long: kept as 12 bytes. */
    check_ok(parse_body(EXPLICIT_LE,
                        BODY("\x09\x00\x01\x10UN\x00\x00\x12\x00\x00\x00\xFE\xFF\x00\xE0\x0A\x00"
                             "\x00\x00\x10\x00\x20\x00\x02\x00\x00\x00"
                             "AB"
                             "\x09\x00\x02\x10UN\x00\x00\x0C\x00\x00\x00\xFE\xFF\x00\xE0\x40\x00"
                             "\x00\x00\x01\x02\x03\x04"),
                        &f, &e),
             &e);
    sq = dicom_find(f->ds, DICOM_TAG(0x0009, 0x1001));
    assert_int_equal(sq->vr, DICOM_VR_SQ);
    assert_int_equal(sq->n_items, 1);
    const DicomElement *blob = dicom_find(f->ds, DICOM_TAG(0x0009, 0x1002));
    assert_int_equal(blob->vr, DICOM_VR_UN);
    assert_int_equal(blob->length, 12);
    dicom_file_free(f);
    /* Implicit VR LE: an unknown tag of undefined length is a sequence (CP-246); one of defined
     * length whose value is items is one too; one whose "items" break is a blob. */
    check_ok(parse_body(IMPLICIT_LE,
                        BODY("\x09\x00\x01\x10\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\x0A\x00\x00\x00"
                             "\x10\x00\x20\x00\x02\x00\x00\x00"
                             "AB\xFE\xFF\xDD\xE0\x00\x00\x00"
                             "\x00\x09\x00\x02\x10\x12\x00\x00\x00\xFE\xFF\x00\xE0\x0A\x00\x00"
                             "\x00\x10\x00\x20\x00\x02\x00\x00\x00"
                             "CD"
                             "\x09\x00\x03\x10\x10\x00\x00\x00\xFE\xFF\x00\xE0\x08\x00\x00\x00"
                             "\x10\x00\x20\x00\x09\x00\x00\x00"),
                        &f, &e),
             &e);
    for (uint32_t el = 0x1001; el <= 0x1002; el++) {
        sq = dicom_find(f->ds, DICOM_TAG(0x0009, el));
        assert_int_equal(sq->vr, DICOM_VR_SQ);
        assert_int_equal(sq->n_items, 1);
        assert_int_equal(sq->undefined_length, el == 0x1001);
    }
    blob = dicom_find(f->ds, DICOM_TAG(0x0009, 0x1003));
    assert_int_equal(blob->vr, DICOM_VR_UN);
    assert_int_equal(blob->length, 16);
    dicom_file_free(f);
}

/* Deflate: a stream that is not deflate, one cut short, and one with a zlib header (refused:
 * PS3.5 A.5 is raw deflate). */
static void test_deflate_errors(void **state)
{
    (void)state;
    DicomFile *f = NULL;
    Err e = {0};
    const char *ts = "1.2.840.10008.1.2.1.99";
    expect_bad_body(ts, BODY("\xFF\xFF\xFF\xFF\xFF\xFF"), "deflated data set");
    uint8_t plain[] = "\x10\x00\x20\x00LO\x04\x00"
                      "ABCD";
    uint8_t z[64];
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = plain;
    zs.avail_in = sizeof plain - 1;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t zn = zs.total_out;
    deflateEnd(&zs);
    check_ok(parse_body(ts, z, zn, &f, &e), &e);
    char s[8];
    check_ok(dicom_get_string(f->ds, DICOM_TAG_PATIENT_ID, s, sizeof s, &e), &e);
    assert_string_equal(s, "ABCD");
    dicom_file_free(f);
    expect_format(parse_body(ts, z, zn - 2, &f, &e), &e, "bad.dcm", "ends before", NULL);
    assert_true(dicom_error_truncated(&e));
    uint8_t zlib[64];
    uLongf zl = sizeof zlib;
    assert_int_equal(compress(zlib, &zl, plain, sizeof plain - 1), Z_OK);
    expect_bad_body(ts, zlib, zl, "deflated data set");
}

// ---------------------------------------------------------------------------------------------
// Decoders

/* The own RLE decoder inverts the writer's encoder on random images of every layout. */
static void test_rle_decoder_against_encoder(void **state)
{
    (void)state;
    Err e = {0};
    for (int trial = 0; trial < 300; trial++) {
        uint32_t rows = 1 + rnd() % 33;
        uint32_t cols = 1 + rnd() % 47;
        unsigned samples = rnd() % 2 ? 3 : 1;
        unsigned bps = 1 + rnd() % 2;
        unsigned planar = samples == 3 ? rnd() % 2 : 0;
        size_t n = (size_t)rows * cols * samples * bps;
        uint8_t *img = mem_alloc(n);
        uint8_t *back = mem_alloc(n);
        unsigned style = rnd() % 3; /* noise, runs, or a mix */
        for (size_t i = 0; i < n; i++) {
            if (style == 0 || (style == 2 && rnd() % 4 == 0))
                img[i] = (uint8_t)rnd();
            else
                img[i] = i && rnd() % 9 ? img[i - 1] : (uint8_t)rnd();
        }
        uint8_t *rle;
        size_t len;
        check_ok(dicom_rle_encode_frame(img, rows, cols, samples, bps, planar, &rle, &len, &e), &e);
        check_ok(dicom_rle_decode_frame(rle, len, rows, cols, samples, bps, planar, back, &e), &e);
        assert_memory_equal(back, img, n);
        /* Every truncation fails cleanly (or, cutting only the pad byte, still decodes). */
        for (size_t cut = 0; cut < len; cut += 1 + len / 50) {
            int rc = dicom_rle_decode_frame(rle, cut, rows, cols, samples, bps, planar, back, &e);
            if (rc)
                expect_format(rc, &e, "RLE", NULL);
        }
        mem_free(rle);
        mem_free(img);
        mem_free(back);
    }
    /* Wrong segment count, offsets outside the frame, a segment that ends short. */
    uint8_t frame[64 + 4] = {0};
    uint8_t out[4];
    frame[0] = 2;
    expect_format(dicom_rle_decode_frame(frame, sizeof frame, 2, 2, 1, 1, 0, out, &e), &e,
                  "2 segments, 1 expected", NULL);
    frame[0] = 1;
    frame[4] = 70;
    expect_format(dicom_rle_decode_frame(frame, sizeof frame, 2, 2, 1, 1, 0, out, &e), &e,
                  "segment 1 at bytes 70", NULL);
    frame[4] = 64;
    frame[64] = 0xFE; /* repeat 3 times: 3 of 4 bytes */
    frame[65] = 9;
    frame[66] = 0x80; /* no-op */
    expect_format(dicom_rle_decode_frame(frame, 67, 2, 2, 1, 1, 0, out, &e), &e,
                  "decodes to 3 bytes, 4 expected", NULL);
    frame[66] = 0x00; /* a literal of one byte */
    frame[67 - 1] = 0x00;
    uint8_t good[64 + 4];
    memcpy(good, frame, sizeof good);
    good[67] = 5;
    check_ok(dicom_rle_decode_frame(good, 68, 2, 2, 1, 1, 0, out, &e), &e);
    assert_memory_equal(out, "\x09\x09\x09\x05", 4);
    expect_format(dicom_rle_decode_frame(good, 40, 2, 2, 1, 1, 0, out, &e), &e,
                  "less than the 64-byte", NULL);
}

/* The compressed fixtures, cut short and with flipped bytes: each decoder fails cleanly or
 * decodes something; it never reads outside the frame (ASan watches) or hangs. */
static void test_corrupt_codestreams(void **state)
{
    (void)state;
    static const char *const files[] = {
        "jpll_sv1.dcm",      "jpll_p14_sv7.dcm", "jpll_signed.dcm",  "SC_rgb_jpeg_gdcm.dcm",
        "jpls_lossless.dcm", "jpls_near2.dcm",   "j2k_lossless.dcm", "j2k_lossy.dcm",
        "jpeg_baseline.dcm", "rle_dcmtk.dcm",    "MR_small_RLE.dcm",
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        Err e = {0};
        DicomFile *f;
        check_ok(dicom_read_file(fixture_path(files[k]), NULL, &f, &e), &e);
        DicomElement *el = (DicomElement *)dicom_find(f->ds, DICOM_TAG_PIXEL_DATA);
        assert_non_null(el);
        assert_true(el->n_fragments == 2);
        DicomFragment *fr = &el->fragments[1];
        uint32_t len = fr->length;
        uint8_t *orig = fr->data; /* owned by f: put back before f is freed */
        DicomImageInfo info;
        check_ok(dicom_image_info(f, &info, &e), &e);
        size_t n = (size_t)info.rows * info.columns * info.samples_per_pixel;
        uint16_t *out = mem_alloc(n * sizeof *out);
        for (uint32_t cut = 0; cut < len; cut += 1 + len / 97) {
            /* A buffer of exactly cut bytes, so that reading past them is caught. */
            uint8_t *part = mem_alloc(cut ? cut : 1);
            memcpy(part, orig, cut);
            fr->data = part;
            fr->length = cut;
            int rc = dicom_decode_frame(f, 0, out, n, &e);
            if (rc)
                expect_format(rc, &e, files[k], NULL);
            mem_free(part);
        }
        fr->data = orig;
        fr->length = len;
        uint8_t *copy = mem_alloc(len);
        for (int trial = 0; trial < 60; trial++) {
            memcpy(copy, orig, len);
            for (int flips = 1 + (int)(rnd() % 4); flips > 0; flips--)
                copy[rnd() % len] ^= (uint8_t)(1 + rnd() % 255);
            fr->data = copy;
            int rc = dicom_decode_frame(f, 0, out, n, &e);
            if (rc)
                expect_format(rc, &e, files[k], NULL);
        }
        fr->data = orig;
        mem_free(copy);
        mem_free(out);
        dicom_file_free(f);
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures against pydicom

typedef struct Row {
    char *field[16];
    int n;
} Row;

/* Splits a CSV line (no quoting: the fixture table has none) in place. */
static void split_csv(char *line, Row *row)
{
    row->n = 0;
    for (char *p = line; row->n < 16;) {
        row->field[row->n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
}

static void parse_doubles(const char *s, double *v, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(s, &end);
        s = *end ? end + 1 : end;
    }
}

static void check_fixture(const Row *r, int *n_ok, int *n_refused, int *n_error)
{
    const char *name = r->field[0];
    const char *outcome = r->field[1];
    Err e = {0};
    DicomFile *f = NULL;
    int rc = dicom_read_file(fixture_path(name), NULL, &f, &e);
    if (strcmp(outcome, "truncated") == 0) {
        expect_format(rc, &e, name, NULL);
        assert_true(dicom_error_truncated(&e));
        (*n_error)++;
        return;
    }
    if (rc)
        fail_msg("%s: %s", name, e.msg);
    assert_string_equal(f->ts_uid, r->field[2]);
    DicomImageInfo info;
    uint16_t *px = NULL;
    rc = dicom_decode_pixels(f, &info, &px, &e);
    if (strcmp(outcome, "refused") == 0 || strcmp(outcome, "error") == 0) {
        /* refused: a syntax or layout onfh does not decode; error: no image in the file */
        expect_format(rc, &e, name, *outcome == 'r' ? "refused" : "", NULL);
        (*(*outcome == 'r' ? n_refused : n_error))++;
        dicom_file_free(f);
        return;
    }
    if (rc)
        fail_msg("%s: %s", name, e.msg);
    assert_int_equal(info.rows, atoi(r->field[3]));
    assert_int_equal(info.columns, atoi(r->field[4]));
    assert_int_equal(info.frames, atoi(r->field[5]));
    assert_int_equal(info.samples_per_pixel, atoi(r->field[6]));
    assert_int_equal(info.bits_stored, atoi(r->field[7]));
    assert_int_equal(info.pixel_representation, atoi(r->field[8]));
    size_t n = (size_t)info.rows * info.columns * info.frames * info.samples_per_pixel;
    char hex[65];
    sha_pixels(px, n, hex);
    if (strcmp(hex, r->field[9]) != 0)
        fail_msg("%s: pixels differ from pydicom's (sha256 %s, pydicom %s)", name, hex,
                 r->field[9]);
    if (*r->field[10]) {
        /* Lossy: within the bound of the lossless reference. */
        DicomFile *g;
        DicomImageInfo ginfo;
        uint16_t *want;
        check_ok(dicom_read_file(fixture_path(r->field[10]), NULL, &g, &e), &e);
        check_ok(dicom_decode_pixels(g, &ginfo, &want, &e), &e);
        long worst = 0;
        for (size_t i = 0; i < n; i++) {
            long a = info.pixel_representation ? (int16_t)px[i] : px[i];
            long b = ginfo.pixel_representation ? (int16_t)want[i] : want[i];
            worst = labs(a - b) > worst ? labs(a - b) : worst;
        }
        if (worst > atol(r->field[11]))
            fail_msg("%s: error %ld exceeds %s", name, worst, r->field[11]);
        mem_free(want);
        dicom_file_free(g);
    }
    DicomFrameGeometry geo;
    check_ok(dicom_frame_geometry(f->ds, 0, &geo, &e), &e);
    double v[6];
    if (*r->field[12]) {
        assert_true(geo.has_position);
        parse_doubles(r->field[12], v, 3);
        for (int i = 0; i < 3; i++)
            assert_true(fabs(v[i] - geo.position[i]) < 1e-9);
    }
    if (*r->field[13]) {
        assert_true(geo.has_orientation);
        parse_doubles(r->field[13], v, 6);
        for (int i = 0; i < 6; i++)
            assert_true(fabs(v[i] - geo.orientation[i]) < 1e-9);
    }
    if (*r->field[14]) {
        assert_true(geo.has_spacing);
        parse_doubles(r->field[14], v, 2);
        for (int i = 0; i < 2; i++)
            assert_true(fabs(v[i] - geo.spacing[i]) < 1e-9);
    }
    (*n_ok)++;
    mem_free(px);
    dicom_file_free(f);
}

static void test_fixtures_match_pydicom(void **state)
{
    (void)state;
    char *csv;
    size_t len;
    Err e = {0};
    check_ok(file_read_all(fixture_path("expect.csv"), &csv, &len, &e), &e);
    int n_ok = 0, n_refused = 0, n_error = 0;
    char *save = NULL;
    int line = 0;
    for (char *l = strtok_r(csv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (line++ == 0) {
            assert_true(strncmp(l, "file,outcome,ts_uid,", 20) == 0);
            continue;
        }
        Row r;
        split_csv(l, &r);
        assert_int_equal(r.n, 15);
        check_fixture(&r, &n_ok, &n_refused, &n_error);
    }
    print_message("# fixtures: %d decoded as pydicom says, %d refused, %d truncated or imageless\n",
                  n_ok, n_refused, n_error);
    assert_true(n_ok >= 30);
    assert_true(n_refused >= 2);
    mem_free(csv);
}

// ---------------------------------------------------------------------------------------------
// Values, geometry, the matrix, header scans

static void test_value_accessors(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    check_ok(dicom_dataset_new(&ds, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, "  ID 7  \0", 9, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_MODALITY, DICOM_VR_CS, " MR ", 4, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_STUDY_INSTANCE_UID, DICOM_VR_UI, "1.2.3\0", 6, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_IMAGE_POSITION_PATIENT, DICOM_VR_DS, " 1.5\\-2e3\\7 ",
                              12, &e),
             &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_SLICE_THICKNESS, DICOM_VR_DS, "nan ", 4, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_SPACING_BETWEEN_SLICES, DICOM_VR_DS, "0x10", 4, &e),
             &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_INSTANCE_NUMBER, DICOM_VR_IS, "12\\x", 4, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_SERIES_NUMBER, DICOM_VR_IS, "-42 ", 4, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_WINDOW_CENTER, DICOM_VR_DS, "2.5", 3, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_ECHO_TIME, DICOM_VR_DS, "", 0, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG_ROWS, DICOM_VR_US, "\x00\x02\xFF\xFF", 4, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG(0x0029, 0x1001), DICOM_VR_SS, "\xFE\xFF", 2, &e), &e);
    check_ok(dicom__set_value(ds, DICOM_TAG(0x0029, 0x1002), DICOM_VR_FD,
                              "\x00\x00\x00\x00\x00\x00\x04\x40", 8, &e),
             &e);
    check_ok(
        dicom__set_value(ds, DICOM_TAG(0x0029, 0x1003), DICOM_VR_SL, "\xFF\xFF\xFF\xFF", 4, &e),
        &e);
    char s[32];
    check_ok(dicom_get_string(ds, DICOM_TAG_PATIENT_ID, s, sizeof s, &e), &e);
    assert_string_equal(s, "  ID 7"); /* LO keeps leading spaces */
    check_ok(dicom_get_string(ds, DICOM_TAG_MODALITY, s, sizeof s, &e), &e);
    assert_string_equal(s, "MR");
    check_ok(dicom_get_string(ds, DICOM_TAG_STUDY_INSTANCE_UID, s, sizeof s, &e), &e);
    assert_string_equal(s, "1.2.3");
    expect_format(dicom_get_string(ds, DICOM_TAG_STUDY_INSTANCE_UID, s, 5, &e), &e, "do not fit",
                  NULL);
    expect_format(dicom_get_string(ds, DICOM_TAG_ROWS, s, sizeof s, &e), &e, "(0028,0010) Rows",
                  "not a string", NULL);
    expect_format(dicom_get_string(ds, DICOM_TAG_PATIENT_NAME, s, sizeof s, &e), &e,
                  "(0010,0010) PatientName", "absent", NULL);
    double v[4];
    size_t n;
    check_ok(dicom_get_numbers(ds, DICOM_TAG_IMAGE_POSITION_PATIENT, v, 4, &n, &e), &e);
    assert_int_equal(n, 3);
    assert_true(v[0] == 1.5 && v[1] == -2000 && v[2] == 7);
    check_ok(dicom_get_numbers(ds, DICOM_TAG_IMAGE_POSITION_PATIENT, v, 1, &n, &e), &e);
    assert_int_equal(n, 3); /* the count, though only one was wanted */
    expect_format(dicom_get_number(ds, DICOM_TAG_SLICE_THICKNESS, v, &e), &e, "\"nan\"",
                  "not a DS number", NULL);
    expect_format(dicom_get_number(ds, DICOM_TAG_SPACING_BETWEEN_SLICES, v, &e), &e, "0x10", NULL);
    expect_format(dicom_get_numbers(ds, DICOM_TAG_INSTANCE_NUMBER, v, 4, &n, &e), &e,
                  "value 2 \"x\" is not an IS integer", NULL);
    long l;
    check_ok(dicom_get_long(ds, DICOM_TAG_SERIES_NUMBER, &l, &e), &e);
    assert_int_equal(l, -42);
    expect_format(dicom_get_long(ds, DICOM_TAG_WINDOW_CENTER, &l, &e), &e, "not an integer", NULL);
    expect_format(dicom_get_number(ds, DICOM_TAG_ECHO_TIME, v, &e), &e, "empty", NULL);
    check_ok(dicom_get_numbers(ds, DICOM_TAG_ROWS, v, 4, &n, &e), &e);
    assert_true(n == 2 && v[0] == 512 && v[1] == 65535);
    check_ok(dicom_get_number(ds, DICOM_TAG(0x0029, 0x1001), v, &e), &e);
    assert_true(v[0] == -2);
    check_ok(dicom_get_number(ds, DICOM_TAG(0x0029, 0x1002), v, &e), &e);
    assert_true(v[0] == 2.5);
    check_ok(dicom_get_long(ds, DICOM_TAG(0x0029, 0x1003), &l, &e), &e);
    assert_int_equal(l, -1);
    expect_format(dicom_get_numbers(ds, DICOM_TAG_PATIENT_ID, v, 4, &n, &e), &e, "holds no numbers",
                  NULL);
    dicom_dataset_free(ds);
}

static void test_enhanced_mr_geometry(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    uint16_t *px;
    check_ok(build_enhanced(3, 10, 12, &ds, &px, &e), &e);
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++)
        for (int undef = 0; undef <= 1; undef++) {
            uint8_t *data;
            size_t len;
            check_ok(dicom_write_mem(ds, opts(ts, DICOM_FILE_PART10, undef), &data, &len, &e), &e);
            DicomFile *f;
            check_ok(dicom_read_mem(data, len, "enhanced.dcm", NULL, &f, &e), &e);
            check_equal(ds, f->ds, ts == DICOM_TS_IMPLICIT_LE, ts == DICOM_TS_RLE, "enhanced");
            decode_and_compare(f, px, 3 * 10 * 12);
            for (uint32_t k = 0; k < 3; k++) {
                DicomFrameGeometry g;
                check_ok(dicom_frame_geometry(f->ds, k, &g, &e), &e);
                assert_true(g.has_position && g.has_orientation && g.has_spacing &&
                            g.has_thickness && g.has_rescale);
                assert_true(g.position[0] == -10.0 - k && g.position[1] == 20.5 + 2.25 * k &&
                            g.position[2] == 30.0);
                assert_true(g.orientation[1] == 1 && g.orientation[5] == -1);
                assert_true(g.spacing[0] == 0.55 && g.spacing[1] == 0.65);
                assert_true(g.slice_thickness == 1.5);
                assert_true(g.rescale_slope == 1.0 + 0.5 * k);
                assert_true(g.rescale_intercept == -5.0 * k);
            }
            DicomFrameGeometry g;
            expect_format(dicom_frame_geometry(f->ds, 3, &g, &e), &e,
                          "(5200,9230) PerFrameFunctionalGroupsSequence", "frame 4 asked, 3 items",
                          NULL);
            dicom_file_free(f);
            mem_free(data);
        }
    dicom_dataset_free(ds);
    mem_free(px);
    /* A classic image: the attributes of the data set itself; a malformed one is named. */
    check_ok(build_mr(4, 4, 0, "classic", &ds, NULL, &e), &e);
    DicomFrameGeometry g;
    check_ok(dicom_frame_geometry(ds, 0, &g, &e), &e);
    assert_true(g.has_position && g.position[1] == 14.75 && g.position[2] == 95.125);
    assert_true(g.rescale_slope == 2.5 && g.rescale_intercept == -10);
    check_ok(dicom__set_value(ds, DICOM_TAG_PIXEL_SPACING, DICOM_VR_DS, "0.5", 3, &e), &e);
    expect_format(dicom_frame_geometry(ds, 0, &g, &e), &e, "(0028,0030) PixelSpacing",
                  "1 values, 2 expected", NULL);
    dicom_dataset_free(ds);
}

static void test_support_matrix(void **state)
{
    (void)state;
    size_t n;
    const DicomTsInfo *t = dicom_ts_table(&n);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dicom_uid_check(t[i].uid, NULL), 0);
        assert_ptr_equal(dicom_ts_find(t[i].uid), &t[i]);
        assert_int_equal(t[i].supported, t[i].codec != DICOM_CODEC_NONE);
        assert_true(*t[i].name && *t[i].decoder);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t[i].uid, t[j].uid);
    }
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++) {
        const DicomTsInfo *r = dicom_ts_find(dicom_ts_uid(ts));
        assert_non_null(r);
        assert_true(r->supported);
        assert_int_equal(r->explicit_vr, ts != DICOM_TS_IMPLICIT_LE);
        assert_int_equal(r->big_endian, ts == DICOM_TS_EXPLICIT_BE);
        assert_int_equal(r->deflated, ts == DICOM_TS_DEFLATED_LE);
        assert_int_equal(r->encapsulated, ts == DICOM_TS_RLE);
    }
    assert_non_null(dicom_ts_find("1.2.840.10008.1.2.4.70 "));
    assert_int_equal(dicom_ts_find("1.2.840.10008.1.2.4.70")->codec, DICOM_CODEC_JPEG_LOSSLESS);
    assert_false(dicom_ts_find("1.2.840.10008.1.2.4.100")->supported);
    assert_null(dicom_ts_find("1.2.3.4"));
    /* A file naming a refused or unknown syntax: the header is read, the pixels refused. */
    Err e = {0};
    DicomDataset *ds;
    check_ok(build_mr(4, 4, 0, "refused", &ds, NULL, &e), &e);
    const char *uids[2] = {"1.2.840.10008.1.2.4.100", "1.2.3.4.5"};
    for (int i = 0; i < 2; i++) {
        DicomWriteOptions o = {.ts = DICOM_TS_IMPLICIT_LE, .meta_ts_uid = uids[i]};
        uint8_t *data;
        size_t len;
        check_ok(dicom_write_mem(ds, &o, &data, &len, &e), &e);
        DicomFile *f;
        check_ok(dicom_read_mem(data, len, "odd-ts.dcm", NULL, &f, &e), &e);
        assert_string_equal(f->ts_uid, uids[i]);
        assert_true(i ? f->ts == NULL : !f->ts->supported);
        assert_non_null(dicom_find(f->ds, DICOM_TAG_PIXEL_DATA));
        uint16_t out[16];
        expect_format(dicom_decode_frame(f, 0, out, 16, &e), &e, "odd-ts.dcm", "refused", uids[i],
                      NULL);
        dicom_file_free(f);
        mem_free(data);
    }
    dicom_dataset_free(ds);
}

static const char *tmp_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("ONFH_TEST_TMP");
    snprintf(path, sizeof path, "%s/onfh-read-%d-%s", dir ? dir : "/tmp", (int)getpid(), name);
    return path;
}

static void test_stop_before_pixels(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    check_ok(build_mr(300, 256, 1, "big", &ds, NULL, &e), &e);
    DicomReadOptions stop = {.stop_before_pixels = 1};
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++) {
        const char *path = tmp_path("big.dcm");
        check_ok(dicom_write_file(path, ds, opts(ts, DICOM_FILE_PART10, 1), &e), &e);
        DicomFile *f;
        check_ok(dicom_read_file(path, &stop, &f, &e), &e);
        assert_true(f->pixels_skipped);
        assert_null(dicom_find(f->ds, DICOM_TAG_PIXEL_DATA));
        assert_int_equal(f->ds->count + 1, ds->count);
        uint16_t *one = mem_alloc(300 * 256 * sizeof *one);
        expect_format(dicom_decode_frame(f, 0, one, 300 * 256, &e), &e, "stop_before_pixels", NULL);
        mem_free(one);
        dicom_file_free(f);
        /* With check_pixel_extent, a whole file passes and one cut anywhere in its pixel data
         * (or its last byte: an encapsulated file's sequence delimiter) fails as truncated. */
        DicomReadOptions extent = {.stop_before_pixels = 1, .check_pixel_extent = 1};
        check_ok(dicom_read_file(path, &extent, &f, &e), &e);
        assert_true(f->pixels_skipped);
        dicom_file_free(f);
        char *data;
        size_t len;
        check_ok(file_read_all(path, &data, &len, &e), &e);
        /* (a deflated file's last byte may be the pad after its deflate stream) */
        const size_t cuts[] = {len / 2, len - 1, len - 2};
        for (size_t c = 0; c < (ts == DICOM_TS_DEFLATED_LE ? 1u : 3u); c++) {
            check_ok(file_write(path, data, cuts[c], &e), &e);
            expect_format(dicom_read_file(path, &extent, &f, &e), &e, path, "(truncated)", NULL);
            /* the same from the bytes in memory (ingest hashes each file, then scans it) */
            expect_format(dicom_read_mem(data, cuts[c], "mem", &extent, &f, &e), &e, "mem",
                          "(truncated)", NULL);
        }
        check_ok(dicom_read_mem(data, len, "mem", &extent, &f, &e), &e);
        assert_true(f->pixels_skipped);
        dicom_file_free(f);
        /* A header scan alone does not care that the pixel data is cut short. */
        if (ts != DICOM_TS_DEFLATED_LE) {
            check_ok(file_write(path, data, len / 2, &e), &e);
            check_ok(dicom_read_file(path, &stop, &f, &e), &e);
            dicom_file_free(f);
            expect_format(dicom_read_file(path, NULL, &f, &e), &e, path, "(truncated)", NULL);
        }
        check_ok(dicom_read_mem(data, len, "mem", &stop, &f, &e), &e);
        assert_true(f->pixels_skipped);
        dicom_file_free(f);
        /* borrow_pixel_data: the same pixels, taken from the caller's bytes where they lie as
         * kept (little endian, native), copied otherwise; dicom_read_file never borrows. */
        DicomReadOptions borrow = {.borrow_pixel_data = 1};
        DicomFile *copied, *lent;
        check_ok(dicom_read_mem(data, len, "mem", NULL, &copied, &e), &e);
        check_ok(dicom_read_mem(data, len, "mem", &borrow, &lent, &e), &e);
        const DicomElement *px = dicom_find(lent->ds, DICOM_TAG_PIXEL_DATA);
        int native_le = ts == DICOM_TS_EXPLICIT_LE || ts == DICOM_TS_IMPLICIT_LE;
        assert_int_equal(px->borrowed, native_le);
        if (native_le)
            assert_true(px->value >= (const uint8_t *)data &&
                        px->value + px->length <= (const uint8_t *)data + len);
        uint16_t *a = mem_alloc(300 * 256 * sizeof *a), *b = mem_alloc(300 * 256 * sizeof *b);
        check_ok(dicom_decode_frame(copied, 0, a, 300 * 256, &e), &e);
        check_ok(dicom_decode_frame(lent, 0, b, 300 * 256, &e), &e);
        assert_memory_equal(a, b, 300 * 256 * sizeof *a);
        mem_free(a);
        mem_free(b);
        dicom_file_free(copied);
        dicom_file_free(lent);
        check_ok(file_write(path, data, len, &e), &e);
        check_ok(dicom_read_file(path, &borrow, &f, &e), &e);
        assert_false(dicom_find(f->ds, DICOM_TAG_PIXEL_DATA)->borrowed);
        dicom_file_free(f);
        mem_free(data);
        unlink(path);
    }
    DicomFile *none;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(dicom_read_file(tmp_path("absent.dcm"), i ? &stop : NULL, &none, &e),
                         ERR_IO);
        assert_non_null(strstr(e.msg, "cannot open"));
        assert_null(none);
    }
    dicom_dataset_free(ds);
}

// ---------------------------------------------------------------------------------------------
// Allocation failures

typedef struct ReadCtx {
    const uint8_t *data;
    size_t len;
    const char *path; /* instead of data: read this file (stop_before_pixels) */
    DicomFile *f;
    uint16_t *px;
} ReadCtx;

/* Reads and decodes; on failure leaves nothing allocated. */
static int step_read(void *ctx, Err *e)
{
    ReadCtx *c = ctx;
    c->f = NULL;
    c->px = NULL;
    DicomReadOptions stop = {.stop_before_pixels = 1};
    int rc = c->path ? dicom_read_file(c->path, &stop, &c->f, e)
                     : dicom_read_mem(c->data, c->len, "alloc.dcm", NULL, &c->f, e);
    if (rc || c->path)
        return rc;
    DicomImageInfo info;
    rc = dicom_decode_pixels(c->f, &info, &c->px, e);
    if (rc) {
        dicom_file_free(c->f);
        c->f = NULL;
    }
    return rc;
}

static void cleanup_read(void *ctx)
{
    ReadCtx *c = ctx;
    dicom_file_free(c->f);
    mem_free(c->px);
    c->f = NULL;
    c->px = NULL;
}

/* Runs step with the n-th allocation failing, n = 1, 2, ... until it succeeds: each failure must
 * be ERR_NOMEM with a message, and leave the bytes in use as they were. */
static long fail_each_allocation(ReadCtx *c)
{
    size_t base = mem_bytes_in_use();
    for (long n = 1; n < 100000; n++) {
        Err e = {0};
        long injected = mem_failures_injected();
        mem_fail_at(n);
        int rc = step_read(c, &e);
        mem_fail_at(0);
        if (mem_failures_injected() == injected) {
            check_ok(rc, &e);
            cleanup_read(c);
            assert_int_equal(mem_bytes_in_use(), base);
            return n - 1;
        }
        if (rc != ERR_NOMEM)
            fail_msg("allocation %ld failed: rc %d, \"%s\"", n, rc, e.msg);
        assert_true(strlen(e.msg) > 0);
        if (mem_bytes_in_use() != base)
            fail_msg("allocation %ld failed: %zu bytes leaked", n, mem_bytes_in_use() - base);
    }
    fail_msg("never succeeded");
    return 0;
}

static void test_allocation_failures_unwind(void **state)
{
    (void)state;
    Err e = {0};
    DicomDataset *ds;
    DicomDataset *en;
    check_ok(build_mr(8, 6, 1, "alloc", &ds, NULL, &e), &e);
    check_ok(build_enhanced(2, 4, 4, &en, NULL, &e), &e);
    for (int ts = 0; ts < DICOM_TS_COUNT; ts++)
        for (int undef = 0; undef <= 1; undef++)
            for (int which = 0; which < 2; which++) {
                uint8_t *data;
                size_t len;
                check_ok(dicom_write_mem(which ? en : ds, opts(ts, DICOM_FILE_PART10, undef), &data,
                                         &len, &e),
                         &e);
                ReadCtx c = {.data = data, .len = len};
                assert_true(fail_each_allocation(&c) >= 5);
                mem_free(data);
            }
    static const char *const files[] = {
        "jpll_sv1.dcm",      "jpll_mf_frag.dcm", "SC_rgb_jpeg_gdcm.dcm",
        "jpls_lossless.dcm", "j2k_lossless.dcm", "jpeg_baseline.dcm",
        "rle_dcmtk.dcm",     "image_dfl.dcm",    "SC_rgb_rle_16bit_2frame.dcm",
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char *data;
        size_t len;
        check_ok(file_read_all(fixture_path(files[k]), &data, &len, &e), &e);
        ReadCtx c = {.data = (const uint8_t *)data, .len = len};
        fail_each_allocation(&c);
        mem_free(data);
    }
    const char *path = tmp_path("alloc.dcm");
    check_ok(dicom_write_file(path, ds, NULL, &e), &e);
    ReadCtx c = {.path = path};
    fail_each_allocation(&c);
    unlink(path);
    dicom_dataset_free(ds);
    dicom_dataset_free(en);
}

// ---------------------------------------------------------------------------------------------
// --emit-sources DIR: the uncompressed files tools/make_dicom_fixtures.sh compresses

static int emit_one(const char *dir, const char *name, const DicomDataset *ds,
                    DicomTransferSyntax ts, Err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    DicomWriteOptions o = {.ts = ts};
    int rc = dicom_write_file(path, ds, &o, e);
    if (!rc)
        printf("%s\n", path);
    return rc;
}

static int emit_sources(const char *dir)
{
    enum { R = 64, C = 48, F = 3 };
    Err e = {0};
    DicomDataset *ds = NULL;
    uint16_t *px = NULL;
    uint16_t mf[F * R * C];
    int rc;
    rng = 0x9E3779B97F4A7C15ull; /* the same files every time */
    if ((rc = build_mr(R, C, 0, "src-mr16", &ds, &px, &e)))
        goto out;
    /* No rescale: dcmtk's lossy encoders would apply it to the pixels. */
    dicom_remove(ds, DICOM_TAG_RESCALE_SLOPE);
    dicom_remove(ds, DICOM_TAG_RESCALE_INTERCEPT);
    if ((rc = emit_one(dir, "src_mr16.dcm", ds, DICOM_TS_EXPLICIT_LE, &e)))
        goto out;
    for (int i = 0; i < R * C; i++)
        mf[i] = (uint16_t)((int)px[i] - 2048); /* -2048 .. 2047 as 16-bit two's complement */
    if ((rc = set_pixels(ds, mf, 1, R, C, 16, 16, 1, &e)) ||
        (rc = emit_one(dir, "src_mr16_signed.dcm", ds, DICOM_TS_EXPLICIT_LE, &e)))
        goto out;
    for (int i = 0; i < R * C; i++)
        mf[i] = (uint16_t)(px[i] >> 4);
    if ((rc = set_pixels(ds, mf, 1, R, C, 8, 8, 0, &e)) ||
        (rc = emit_one(dir, "src_mr8.dcm", ds, DICOM_TS_EXPLICIT_LE, &e)))
        goto out;
    fill_pixels(mf, R, C, F, 4095);
    if ((rc = set_pixels(ds, mf, F, R, C, 16, 12, 0, &e)) ||
        (rc = emit_one(dir, "src_mf.dcm", ds, DICOM_TS_EXPLICIT_LE, &e)))
        goto out;
    dicom_dataset_free(ds);
    ds = NULL;
    if ((rc = build_enhanced(2, 32, 24, &ds, NULL, &e)) ||
        (rc = emit_one(dir, "src_enhanced.dcm", ds, DICOM_TS_IMPLICIT_LE, &e)))
        goto out;
out:
    if (rc)
        fprintf(stderr, "emit-sources: %s\n", e.msg);
    dicom_dataset_free(ds);
    mem_free(px);
    return rc ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// --matrix: the support matrix as a Markdown table (for the README)

static int print_matrix(void)
{
    size_t n;
    const DicomTsInfo *t = dicom_ts_table(&n);
    printf("| Transfer syntax | UID | Read | Decoder |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        printf("| %s | %s | %s | %s |\n", t[i].name, t[i].uid, t[i].supported ? "yes" : "refused",
               t[i].decoder);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// --synth RUN: every file of an `onfh synth` run against truth/ (TAP)

typedef struct Truth {
    char **key; /* SOP instance UID (slices) or series UID (vessels) */
    char **sha;
    int *hit; /* rows whose pixels were found in some file */
    int n;
} Truth;

/* Loads columns key_col and the pixels_sha256 column of a truth CSV. */
static int load_truth(const char *path, const char *key_col, Truth *t)
{
    char *csv;
    size_t len;
    Err e = {0};
    memset(t, 0, sizeof *t);
    if (file_read_all(path, &csv, &len, &e)) {
        printf("not ok - read %s\n#   %s\n", path, e.msg);
        return -1;
    }
    int ki = -1, si = -1, cap = 0;
    char *save = NULL;
    for (char *l = strtok_r(csv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        Row r;
        split_csv(l, &r);
        if (ki < 0) {
            for (int i = 0; i < r.n; i++) {
                ki = strcmp(r.field[i], key_col) == 0 ? i : ki;
                si = strcmp(r.field[i], "pixels_sha256") == 0 ? i : si;
            }
            if (ki < 0 || si < 0)
                break;
            continue;
        }
        if (r.n <= ki || r.n <= si)
            continue;
        if (t->n == cap) {
            cap = cap ? 2 * cap : 256;
            t->key = mem_realloc(t->key, (size_t)cap * sizeof *t->key);
            t->sha = mem_realloc(t->sha, (size_t)cap * sizeof *t->sha);
            t->hit = mem_realloc(t->hit, (size_t)cap * sizeof *t->hit);
        }
        t->hit[t->n] = 0;
        t->key[t->n] = mem_strdup(r.field[ki]);
        t->sha[t->n++] = mem_strdup(r.field[si]);
    }
    mem_free(csv);
    return ki < 0 || si < 0 ? -1 : 0;
}

/* The expected hash of key, or NULL; a match with got marks the row as hit. */
static const char *truth_sha(Truth *t, const char *key, const char *got)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->key[i], key) == 0) {
            t->hit[i] |= got && strcmp(got, t->sha[i]) == 0;
            return t->sha[i];
        }
    return NULL;
}

static int truth_hits(const Truth *t)
{
    int n = 0;
    for (int i = 0; i < t->n; i++)
        n += t->hit[i];
    return n;
}

static void free_truth(Truth *t)
{
    for (int i = 0; i < t->n; i++) {
        mem_free(t->key[i]);
        mem_free(t->sha[i]);
    }
    mem_free(t->key);
    mem_free(t->sha);
    mem_free(t->hit);
}

/* A vessel volume being gathered: its slices' pixels by instance number. */
typedef struct Volume {
    char series[DICOM_UID_MAX + 1];
    uint16_t *slice[512];
    size_t per_slice;
    int n;
} Volume;

typedef struct SynthCheck {
    const char *run;
    char faults[64][512]; /* path,kind of each single-file fault */
    int n_faults;
    Truth slices;
    Truth vessels;
    Volume vol[64];
    int n_vol;
    int n_failing; /* faults that must not decode: truncated, garbage, unsupported syntax */
    int files, decoded, slices_ok, faults_ok, unchecked;
    int bad;
} SynthCheck;

static void synth_fail(SynthCheck *c, const char *path, const char *why)
{
    if (c->bad++ < 20)
        printf("#   %s: %s\n", path, why);
}

static const char *fault_kind(const SynthCheck *c, const char *rel)
{
    size_t n = strlen(rel);
    for (int i = 0; i < c->n_faults; i++)
        if (strncmp(c->faults[i], rel, n) == 0 && c->faults[i][n] == ',')
            return c->faults[i] + n + 1;
    return NULL;
}

static void synth_vessel_slice(SynthCheck *c, const DicomFile *f, uint16_t *px, size_t n)
{
    char series[DICOM_UID_MAX + 1];
    long inst;
    Err e = {0};
    if (dicom_get_string(f->ds, DICOM_TAG_SERIES_INSTANCE_UID, series, sizeof series, &e) ||
        dicom_get_long(f->ds, DICOM_TAG_INSTANCE_NUMBER, &inst, &e) || inst < 1 || inst > 512) {
        synth_fail(c, f->name, "no series UID or instance number");
        mem_free(px);
        return;
    }
    Volume *v = NULL;
    for (int i = 0; i < c->n_vol && !v; i++)
        v = strcmp(c->vol[i].series, series) == 0 ? &c->vol[i] : NULL;
    if (!v && c->n_vol < 64) {
        v = &c->vol[c->n_vol++];
        snprintf(v->series, sizeof v->series, "%s", series);
        v->per_slice = n;
    }
    if (!v || v->slice[inst - 1] || v->per_slice != n) {
        synth_fail(c, f->name, "duplicate or odd vessel slice");
        mem_free(px);
        return;
    }
    v->slice[inst - 1] = px;
    v->n = inst > v->n ? (int)inst : v->n;
}

static void synth_file(SynthCheck *c, const char *path)
{
    const char *rel = path + strlen(c->run) + 1;
    const char *kind = fault_kind(c, rel);
    DicomFile *f = NULL;
    Err e = {0};
    c->files++;
    int rc = dicom_read_file(path, NULL, &f, &e);
    if (kind && (strncmp(kind, "garbage", 7) == 0 || strncmp(kind, "non_dicom", 9) == 0)) {
        if (rc == ERR_FORMAT && strstr(e.msg, "not a DICOM file") && strstr(e.msg, path))
            c->faults_ok++;
        else
            synth_fail(c, path, rc ? e.msg : "read as DICOM");
    } else if (kind && strncmp(kind, "truncated", 9) == 0) {
        if (rc == ERR_FORMAT && dicom_error_truncated(&e) && strstr(e.msg, path))
            c->faults_ok++;
        else
            synth_fail(c, path, rc ? e.msg : "read although truncated");
    } else if (rc) {
        synth_fail(c, path, e.msg);
    } else {
        DicomImageInfo info;
        uint16_t *px = NULL;
        rc = dicom_decode_pixels(f, &info, &px, &e);
        if (kind && strncmp(kind, "unsupported_ts", 14) == 0) {
            if (rc == ERR_FORMAT && strstr(e.msg, "refused") && strstr(e.msg, f->ts_uid))
                c->faults_ok++;
            else
                synth_fail(c, path, rc ? e.msg : "decoded a refused syntax");
        } else if (rc) {
            synth_fail(c, path, e.msg);
        } else {
            c->decoded++;
            size_t n = (size_t)info.rows * info.columns * info.samples_per_pixel * info.frames;
            char sop[DICOM_UID_MAX + 1] = "";
            char hex[65];
            dicom_get_string(f->ds, DICOM_TAG_SOP_INSTANCE_UID, sop, sizeof sop, &e);
            sha_pixels(px, n, hex);
            const char *want = truth_sha(&c->slices, sop, hex);
            if (want) {
                if (strcmp(want, hex) == 0)
                    c->slices_ok++;
                else
                    synth_fail(c, path, "pixels differ from truth/slices.csv");
            } else if (strstr(path, "MRA") || strstr(rel, "misc/")) {
                synth_vessel_slice(c, f, px, n);
                px = NULL;
            } else {
                c->unchecked++; /* fault copies with new UIDs: decoded, nothing to compare */
            }
        }
        mem_free(px);
    }
    dicom_file_free(f);
}

static void synth_walk(SynthCheck *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        synth_fail(c, dir, "cannot list");
        return;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.')
            continue;
        names = mem_realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = mem_strdup(ent->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            synth_walk(c, path);
        else
            synth_file(c, path);
        mem_free(names[i]);
    }
    mem_free(names);
}

static int synth_check(const char *run)
{
    static SynthCheck c;
    char path[4096];
    int t = 0;
    c.run = run;
    snprintf(path, sizeof path, "%s/truth/faults.csv", run);
    char *csv;
    size_t len;
    Err e = {0};
    if (file_read_all(path, &csv, &len, &e)) {
        printf("not ok 1 - %s\n1..1\n", e.msg);
        return 1;
    }
    char *save = NULL;
    for (char *l = strtok_r(csv, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (c.n_faults < 64 && strchr(l, '/') && !strstr(l, "/,")) { /* files, not folders */
            snprintf(c.faults[c.n_faults++], sizeof c.faults[0], "%s", l);
            /* duplicates read like any file; the others must fail, each in its own way */
            c.n_failing += !strstr(l, ",duplicate_sop,");
        }
    mem_free(csv);
    snprintf(path, sizeof path, "%s/truth/slices.csv", run);
    int trc = load_truth(path, "sop_instance_uid", &c.slices);
    snprintf(path, sizeof path, "%s/truth/vessels.csv", run);
    trc |= load_truth(path, "series_uid", &c.vessels);
    if (trc) {
        printf("not ok 1 - truth/slices.csv and truth/vessels.csv have the columns\n1..1\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/raw", run);
    synth_walk(&c, path);
    int vol_ok = 0;
    for (int i = 0; i < c.n_vol; i++) {
        Volume *v = &c.vol[i];
        Sha256 h;
        sha256_init(&h);
        int complete = 1;
        for (int k = 0; k < v->n; k++) {
            if (!v->slice[k]) {
                complete = 0;
                continue;
            }
            for (size_t j = 0; j < v->per_slice; j++) {
                uint8_t le[2] = {(uint8_t)v->slice[k][j], (uint8_t)(v->slice[k][j] >> 8)};
                sha256_update(&h, le, 2);
            }
            mem_free(v->slice[k]);
        }
        uint8_t d[32];
        char hex[65];
        sha256_final(&h, d);
        sha256_to_hex(d, hex);
        const char *want = truth_sha(&c.vessels, v->series, complete ? hex : NULL);
        if (complete && want && strcmp(want, hex) == 0)
            vol_ok++;
        else
            synth_fail(&c, v->series, "vessel volume differs from truth/vessels.csv");
    }
    printf("%s %d - read %d files, decoded %d\n", c.bad ? "not ok" : "ok", ++t, c.files, c.decoded);
    int rows_hit = truth_hits(&c.slices);
    printf("%s %d - every row of truth/slices.csv has a file with its pixels (%d of %d rows, "
           "%d files)\n",
           rows_hit == c.slices.n ? "ok" : "not ok", ++t, rows_hit, c.slices.n, c.slices_ok);
    printf("%s %d - %d vessel volumes equal truth/vessels.csv (%d rows)\n",
           vol_ok == c.vessels.n ? "ok" : "not ok", ++t, vol_ok, c.vessels.n);
    printf("%s %d - %d of %d faulty files give the expected error\n",
           c.faults_ok == c.n_failing ? "ok" : "not ok", ++t, c.faults_ok, c.n_failing);
    printf("# %d decoded files with no truth row (fault copies with new UIDs)\n", c.unchecked);
    printf("1..%d\n", t);
    free_truth(&c.slices);
    free_truth(&c.vessels);
    int ok =
        !c.bad && rows_hit == c.slices.n && vol_ok == c.vessels.n && c.faults_ok == c.n_failing;
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--emit-sources") == 0)
        return emit_sources(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--synth") == 0)
        return synth_check(argv[2]);
    if (argc == 2 && strcmp(argv[1], "--matrix") == 0)
        return print_matrix();
    if (argc == 3 && strcmp(argv[1], "--only") == 0)
        cmocka_set_test_filter(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_encoding),
        cmocka_unit_test(test_round_trip_pixel_variants),
        cmocka_unit_test(test_fragments_to_frames),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_malformed_inputs),
        cmocka_unit_test(test_nesting_bomb),
        cmocka_unit_test(test_un_and_unknown_sequences),
        cmocka_unit_test(test_deflate_errors),
        cmocka_unit_test(test_rle_decoder_against_encoder),
        cmocka_unit_test(test_corrupt_codestreams),
        cmocka_unit_test(test_fixtures_match_pydicom),
        cmocka_unit_test(test_value_accessors),
        cmocka_unit_test(test_enhanced_mr_geometry),
        cmocka_unit_test(test_support_matrix),
        cmocka_unit_test(test_stop_before_pixels),
        cmocka_unit_test(test_allocation_failures_unwind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
