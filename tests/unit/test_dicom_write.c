/* test_dicom_write.c: the DICOM writer of lib/dicom, byte for byte.
 *
 * Expected bytes are written out by hand from PS3.5 and PS3.10 (element layouts, VR length
 * forms, padding, big-endian swapping, sequence delimiters, RLE runs) rather than produced by
 * another encoder, so a test failing means the writer and the standard disagree. Deflate is
 * checked by inflating with zlib and comparing with the plain Explicit VR LE encoding; UIDs
 * against values computed independently with Python's hashlib. Every constructor and writer is
 * run with each of its allocations failing in turn: it must return ERR_NOMEM and leak nothing.
 *
 * With "--emit DIR" the program instead writes the sample files that
 * tests/integration/dicom_readers.sh hands to dcmdump, dciodvfy and pydicom (tools/check_dicom.py
 * holds the same expected values as sample_params below: change both together), and a manifest
 * DIR/manifest.txt with one line per file: name, transfer syntax UID, form, lengths, kind. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"

// ---------------------------------------------------------------------------------------------
// Helpers

/* A byte-string literal without its terminating NUL: B("\x01\x02") -> 2 bytes. */
#define B(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        size_t n = got_len < want_len ? got_len : want_len;
        size_t i = 0;
        while (i < n && got[i] == want[i])
            i++;
        print_error("bytes differ: got %zu bytes, want %zu; first difference at %zu\n", got_len,
                    want_len, i);
        for (size_t k = i > 8 ? i - 8 : 0; k < i + 8 && k < n + 8; k++)
            print_error("  [%zu] got %02X want %02X\n", k, k < got_len ? got[k] : 0,
                        k < want_len ? want[k] : 0);
        fail();
    }
}

/* Encodes ds as a bare data set (no preamble, no meta) in ts. */
static void encode_dataset(const DicomDataset *ds, DicomTransferSyntax ts, int undefined,
                           uint8_t **data, size_t *len)
{
    Err e = {0};
    DicomWriteOptions opt = {
        .ts = ts, .form = DICOM_FILE_DATASET_ONLY, .undefined_length = undefined};
    int rc = dicom_write_mem(ds, &opt, data, len, &e);
    if (rc)
        print_error("%s\n", e.msg);
    assert_int_equal(rc, ERR_OK);
}

/* Offset of the data set in a Part 10 file: 132 + the (0002,0000) element + the group. */
static size_t dataset_offset(const uint8_t *file, size_t len)
{
    assert_true(len >= 144);
    assert_memory_equal(file + 128, "DICM", 4);
    assert_memory_equal(file + 132, "\x02\x00\x00\x00UL\x04\x00", 8);
    return 144 + dicom__le32(file + 140);
}

static DicomDataset *new_dataset(void)
{
    DicomDataset *ds;
    assert_int_equal(dicom_dataset_new(&ds, NULL), ERR_OK);
    return ds;
}

static void set_sop(DicomDataset *ds, const char *cls, const char *inst)
{
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_SOP_CLASS_UID, DICOM_VR_UI, cls, NULL), 0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_SOP_INSTANCE_UID, DICOM_VR_UI, inst, NULL), 0);
}

// ---------------------------------------------------------------------------------------------
// The sample image shared with tools/check_dicom.py

#define SAMPLE_ROWS    48
#define SAMPLE_COLUMNS 64

/* The pixel pattern check_dicom.py recomputes: flat rows every 8 (long RLE runs), a mix of
 * slowly and quickly varying bytes elsewhere; all within 12 bits. */
static uint16_t sample_pixel(int r, int c)
{
    if (r % 8 == 0)
        return 1000;
    return (uint16_t)((r * 61 + c * 7 + (r * c) % 17) % 4096);
}

static uint16_t sample_pixels[SAMPLE_ROWS * SAMPLE_COLUMNS];

typedef struct SampleUids {
    char study[DICOM_UID_MAX + 1];
    char series[DICOM_UID_MAX + 1];
    char instance[DICOM_UID_MAX + 1];
    char frame_of_reference[DICOM_UID_MAX + 1];
} SampleUids;

/* Slice k (1-based) of the sample coronal series. */
static void sample_params(DicomMrImage *p, SampleUids *u, int k)
{
    char seed[64];
    for (int r = 0; r < SAMPLE_ROWS; r++)
        for (int c = 0; c < SAMPLE_COLUMNS; c++)
            sample_pixels[r * SAMPLE_COLUMNS + c] = sample_pixel(r, c);
    dicom_uid_from_seed("onfh-test/study", u->study);
    dicom_uid_from_seed("onfh-test/series", u->series);
    snprintf(seed, sizeof seed, "onfh-test/instance/%d", k);
    dicom_uid_from_seed(seed, u->instance);
    dicom_uid_from_seed("onfh-test/frame-of-reference", u->frame_of_reference);

    dicom_mr_defaults(p);
    p->patient_name = "SYNTH^P0001";
    p->patient_id = "ONFH-P0001";
    p->patient_birth_date = "19700101";
    p->patient_sex = "F";
    p->study_uid = u->study;
    p->series_uid = u->series;
    p->sop_instance_uid = u->instance;
    p->frame_of_reference_uid = u->frame_of_reference;
    p->study_date = "20250314";
    p->study_time = "101500";
    p->acquisition_date = "20250314";
    p->acquisition_time = "102000";
    p->study_id = "S1";
    p->accession_number = "A0001";
    p->study_description = "HIP MRI";
    p->series_description = "COR T1 SE HIP";
    p->protocol_name = "hip_t1_cor";
    p->manufacturer = "ONFH";
    p->manufacturer_model_name = "SYNTH";
    p->body_part_examined = "HIP";
    p->laterality = "R";
    p->series_number = 3;
    p->instance_number = k;
    /* Coronal: rows run to the patient's left (+x), columns to the feet (-z); normal +y. */
    const double iop[6] = {1, 0, 0, 0, 0, -1};
    memcpy(p->image_orientation, iop, sizeof iop);
    p->image_position[0] = -120.5;
    p->image_position[1] = 10.25 + 3.5 * (k - 1);
    p->image_position[2] = 95.0;
    p->pixel_spacing[0] = 0.7;
    p->pixel_spacing[1] = 0.8;
    p->slice_thickness = 3.0;
    p->spacing_between_slices = 3.5;
    p->rows = SAMPLE_ROWS;
    p->columns = SAMPLE_COLUMNS;
    p->pixels = sample_pixels;
    p->rescale_slope = 2.5;
    p->rescale_intercept = -10.0;
    p->window_center = 1200.0;
    p->window_width = 2400.0;
    p->scanning_sequence = "SE";
    p->sequence_variant = "SK\\SP";
    p->scan_options = "FS";
    p->mr_acquisition_type = "2D";
    p->repetition_time_ms = 600.0;
    p->echo_time_ms = 12.0;
    p->echo_train_length = 1;
    p->magnetic_field_strength_t = 3.0;
    p->imaging_frequency_mhz = 127.74;
    p->flip_angle_deg = 90.0;
    p->number_of_averages = 2.0;
}

/* Private tags and nested sequences (standard and private, one empty) on top of the MR image:
 *   (0029,0010) "ONFH SYNTH", (0029,1010) LO, (0029,1011) US, (0029,1012) FD,
 *   (0029,1020) SQ [ { (0029,0010) "ONFH SYNTH", (0029,1021) LO,
 *                      (0029,1022) SQ [ { (0029,0010) "ONFH SYNTH", (0029,1023) SS } ] } ]
 *   (0029,1030) SQ with no items (private, because an empty standard type 3 sequence is an
 *               error for dciodvfy)
 *   (0040,0275) RequestAttributesSequence [ { ScheduledProtocolCodeSequence [ {code} ],
 *                                             ScheduledProcedureStepID, RequestedProcedureID } ] */
static int add_extras(DicomDataset *ds, Err *e)
{
    uint32_t tag;
    DicomDataset *item;
    DicomDataset *inner;
    DicomDataset *code;
    const uint16_t seven = 7;
    const double pi_ish = 3.25;
    const int16_t minus5 = -5;
    int rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x30, &tag, e)) ||
        (rc = dicom_set_sequence(ds, tag, e)))
        return rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x10, &tag, e)) ||
        (rc = dicom_set_str(ds, tag, DICOM_VR_LO, "synthetic cohort", e)))
        return rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x11, &tag, e)) ||
        (rc = dicom_set_us(ds, tag, &seven, 1, e)))
        return rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x12, &tag, e)) ||
        (rc = dicom_set_fd(ds, tag, &pi_ish, 1, e)))
        return rc;
    if ((rc = dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x20, &tag, e)) ||
        (rc = dicom_add_item(ds, tag, &item, e)))
        return rc;
    if ((rc = dicom_private_tag(item, 0x0029, "ONFH SYNTH", 0x21, &tag, e)) ||
        (rc = dicom_set_str(item, tag, DICOM_VR_LO, "lesion", e)))
        return rc;
    if ((rc = dicom_private_tag(item, 0x0029, "ONFH SYNTH", 0x22, &tag, e)) ||
        (rc = dicom_add_item(item, tag, &inner, e)))
        return rc;
    if ((rc = dicom_private_tag(inner, 0x0029, "ONFH SYNTH", 0x23, &tag, e)) ||
        (rc = dicom_set_ss(inner, tag, &minus5, 1, e)))
        return rc;
    if ((rc = dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, e)) ||
        (rc = dicom_set_str(item, DICOM_TAG(0x0040, 0x1001), DICOM_VR_SH, "RP0001", e)) ||
        (rc = dicom_set_str(item, DICOM_TAG(0x0040, 0x0009), DICOM_VR_SH, "SPS0001", e)) ||
        (rc = dicom_add_item(item, DICOM_TAG(0x0040, 0x0008), &code, e)) ||
        (rc = dicom_set_str(code, DICOM_TAG(0x0008, 0x0100), DICOM_VR_SH, "ONFH01", e)) ||
        (rc = dicom_set_str(code, DICOM_TAG(0x0008, 0x0102), DICOM_VR_SH, "99ONFH", e)) ||
        (rc = dicom_set_str(code, DICOM_TAG(0x0008, 0x0104), DICOM_VR_LO, "MRI of hip", e)))
        return rc;
    return ERR_OK;
}

/* The full sample: MR image k, plus the extras when extras is set. */
static int build_sample(int k, int extras, DicomDataset **out, Err *e)
{
    DicomMrImage p;
    SampleUids u;
    sample_params(&p, &u, k);
    int rc = dicom_mr_image_new(&p, out, e);
    if (rc)
        return rc;
    if (extras && (rc = add_extras(*out, e))) {
        dicom_dataset_free(*out);
        *out = NULL;
    }
    return rc;
}

/* A multi-frame grey image: 3 frames of 5 x 7 (odd, so 8-bit data needs a pad byte), stored as
 * Multi-frame Grayscale Byte or Word Secondary Capture. */
#define MF_FRAMES  3
#define MF_ROWS    5
#define MF_COLUMNS 7

static int build_multiframe(int bits, DicomDataset **out, Err *e)
{
    uint8_t px8[MF_FRAMES * MF_ROWS * MF_COLUMNS];
    uint16_t px16[MF_FRAMES * MF_ROWS * MF_COLUMNS];
    for (int f = 0; f < MF_FRAMES; f++)
        for (int r = 0; r < MF_ROWS; r++)
            for (int c = 0; c < MF_COLUMNS; c++) {
                int i = (f * MF_ROWS + r) * MF_COLUMNS + c;
                px8[i] = (uint8_t)((f * 50 + r * 7 + c) & 0xFF);
                px16[i] = (uint16_t)(f * 1000 + r * 70 + c * 3 + (c == 3 ? 40000 : 0));
            }
    char uid[DICOM_UID_MAX + 1];
    DicomDataset *ds;
    int rc = dicom_dataset_new(&ds, e);
    if (rc)
        return rc;
    const uint16_t one = 1;
    const uint16_t zero = 0;
    const uint16_t rows = MF_ROWS;
    const uint16_t cols = MF_COLUMNS;
    const uint16_t ba = (uint16_t)bits;
    const uint16_t hb = (uint16_t)(bits - 1);
    const long frames = MF_FRAMES;
    dicom_uid_from_seed(bits == 8 ? "onfh-test/mf8" : "onfh-test/mf16", uid);
    if ((rc = dicom_set_str(
             ds, DICOM_TAG_SOP_CLASS_UID, DICOM_VR_UI,
             bits == 8 ? "1.2.840.10008.5.1.4.1.1.7.2" : "1.2.840.10008.5.1.4.1.1.7.3", e)) ||
        (rc = dicom_set_str(ds, DICOM_TAG_SOP_INSTANCE_UID, DICOM_VR_UI, uid, e)) ||
        (rc = dicom_set_str(ds, DICOM_TAG_MODALITY, DICOM_VR_CS, "OT", e)) ||
        (rc = dicom_set_str(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, "ONFH-MF", e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_SAMPLES_PER_PIXEL, &one, 1, e)) ||
        (rc = dicom_set_str(ds, DICOM_TAG_PHOTOMETRIC_INTERPRETATION, DICOM_VR_CS, "MONOCHROME2",
                            e)) ||
        (rc = dicom_set_is(ds, DICOM_TAG_NUMBER_OF_FRAMES, &frames, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_ROWS, &rows, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_COLUMNS, &cols, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_BITS_ALLOCATED, &ba, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_BITS_STORED, &ba, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_HIGH_BIT, &hb, 1, e)) ||
        (rc = dicom_set_us(ds, DICOM_TAG_PIXEL_REPRESENTATION, &zero, 1, e)))
        goto out_free;
    if (bits == 8)
        rc = dicom_set_bytes(ds, DICOM_TAG_PIXEL_DATA, DICOM_VR_OB, px8, sizeof px8, e);
    else
        rc = dicom_set_pixels16(ds, px16, sizeof px16 / 2, e);
    if (rc)
        goto out_free;
    *out = ds;
    return ERR_OK;
out_free:
    dicom_dataset_free(ds);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// --emit DIR: sample files for the independent readers

static int emit_one(FILE *manifest, const char *dir, const char *name, const DicomDataset *ds,
                    DicomTransferSyntax ts, DicomFileForm form, int undefined, const char *kind)
{
    static const char *const forms[] = {"part10", "no-preamble", "dataset-only"};
    char path[4096];
    Err e = {0};
    DicomWriteOptions opt = {.ts = ts, .form = form, .undefined_length = undefined};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (dicom_write_file(path, ds, &opt, &e)) {
        fprintf(stderr, "emit: %s\n", e.msg);
        return 1;
    }
    fprintf(manifest, "%s %s %s %s %s\n", name, dicom_ts_uid(ts), forms[form],
            undefined ? "undefined" : "defined", kind);
    return 0;
}

static int emit(const char *dir)
{
    Err e = {0};
    char path[4096];
    char name[256];
    int bad = 0;
    if (dir_create(dir, &e)) {
        fprintf(stderr, "emit: %s\n", e.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *manifest = fopen(path, "w");
    if (!manifest) {
        perror(path);
        return 1;
    }
    DicomDataset *mr = NULL;
    DicomDataset *mf[2] = {NULL, NULL};
    if (build_sample(1, 1, &mr, &e) || build_multiframe(8, &mf[0], &e) ||
        build_multiframe(16, &mf[1], &e)) {
        fprintf(stderr, "emit: %s\n", e.msg);
        bad = 1;
        goto out;
    }
    for (int t = 0; t < DICOM_TS_COUNT; t++) {
        const char *tn = dicom_ts_name((DicomTransferSyntax)t);
        for (int undef = 0; undef <= 1; undef++) {
            snprintf(name, sizeof name, "mr_%s_%s.dcm", tn, undef ? "undef" : "def");
            bad |= emit_one(manifest, dir, name, mr, t, DICOM_FILE_PART10, undef, "mr");
        }
        snprintf(name, sizeof name, "mr_%s_nopreamble.dcm", tn);
        bad |= emit_one(manifest, dir, name, mr, t, DICOM_FILE_NO_PREAMBLE, 0, "mr");
        if (t != DICOM_TS_DEFLATED_LE && t != DICOM_TS_RLE) {
            snprintf(name, sizeof name, "mr_%s_dataset.dcm", tn);
            bad |= emit_one(manifest, dir, name, mr, t, DICOM_FILE_DATASET_ONLY, 1, "mr");
        }
        for (int b = 0; b < 2; b++) {
            snprintf(name, sizeof name, "mf%d_%s.dcm", b ? 16 : 8, tn);
            bad |=
                emit_one(manifest, dir, name, mf[b], t, DICOM_FILE_PART10, 0, b ? "mf16" : "mf8");
        }
    }
    for (int k = 1; k <= 3; k++) {
        DicomDataset *slice;
        if (build_sample(k, 0, &slice, &e)) {
            fprintf(stderr, "emit: %s\n", e.msg);
            bad = 1;
            break;
        }
        snprintf(name, sizeof name, "series_%d.dcm", k);
        bad |= emit_one(manifest, dir, name, slice, DICOM_TS_EXPLICIT_LE, DICOM_FILE_PART10, 0,
                        "series");
        dicom_dataset_free(slice);
    }
out:
    dicom_dataset_free(mr);
    dicom_dataset_free(mf[0]);
    dicom_dataset_free(mf[1]);
    if (fclose(manifest) != 0)
        bad = 1;
    return bad;
}

// ---------------------------------------------------------------------------------------------
// Dictionary and UIDs

static void test_dictionary_sorted_and_vr_forms(void **state)
{
    (void)state;
    assert_int_equal(dicom__dict_unsorted(), 0);
    assert_string_equal(dicom_tag_keyword(DICOM_TAG_ROWS), "Rows");
    assert_int_equal(dicom_dict_vr(DICOM_TAG_ROWS), DICOM_VR_US);
    assert_int_equal(dicom_dict_vr(DICOM_TAG(0x0029, 0x1010)), 0);
    assert_true(dicom_dict_vr_allowed(DICOM_TAG_PIXEL_DATA, DICOM_VR_OB));
    assert_true(dicom_dict_vr_allowed(DICOM_TAG_PIXEL_DATA, DICOM_VR_OW));
    assert_false(dicom_dict_vr_allowed(DICOM_TAG_ROWS, DICOM_VR_UL));
    static const uint16_t long_form[] = {
        DICOM_VR_OB, DICOM_VR_OD, DICOM_VR_OF, DICOM_VR_OL, DICOM_VR_OV, DICOM_VR_OW, DICOM_VR_SQ,
        DICOM_VR_SV, DICOM_VR_UC, DICOM_VR_UN, DICOM_VR_UR, DICOM_VR_UT, DICOM_VR_UV};
    static const uint16_t short_form[] = {
        DICOM_VR_AE, DICOM_VR_AS, DICOM_VR_AT, DICOM_VR_CS, DICOM_VR_DA, DICOM_VR_DS, DICOM_VR_DT,
        DICOM_VR_FD, DICOM_VR_FL, DICOM_VR_IS, DICOM_VR_LO, DICOM_VR_LT, DICOM_VR_PN, DICOM_VR_SH,
        DICOM_VR_SL, DICOM_VR_SS, DICOM_VR_ST, DICOM_VR_TM, DICOM_VR_UI, DICOM_VR_UL, DICOM_VR_US};
    for (size_t i = 0; i < sizeof long_form / sizeof long_form[0]; i++)
        assert_true(dicom_vr_long_length(long_form[i]));
    for (size_t i = 0; i < sizeof short_form / sizeof short_form[0]; i++)
        assert_false(dicom_vr_long_length(short_form[i]));
    char vs[3];
    dicom_vr_str(DICOM_VR_US, vs);
    assert_string_equal(vs, "US");
}

static void test_uid_deterministic_and_valid(void **state)
{
    (void)state;
    char a[DICOM_UID_MAX + 1];
    char b[DICOM_UID_MAX + 1];
    /* Expected values from Python: the first 16 bytes of hashlib.sha256(seed), version nibble
     * 8, variant bits 10, as a big-endian integer. */
    dicom_uid_from_seed("abc", a);
    assert_string_equal(a, "2.25.247859944228867097191300499870369849891");
    dicom_uid_from_seed("", a);
    assert_string_equal(a, "2.25.302652579918966106791432553938847512868");
    dicom_uid_from_seed("onfh implementation class uid", a);
    assert_string_equal(a, DICOM_IMPLEMENTATION_CLASS_UID);
    assert_int_equal(strlen(DICOM_IMPLEMENTATION_CLASS_UID), 44);
    for (int i = 0; i < 2000; i++) {
        char seed[32];
        snprintf(seed, sizeof seed, "run-7/patient/%d", i);
        dicom_uid_from_seed(seed, a);
        dicom_uid_from_seed(seed, b);
        assert_string_equal(a, b);
        assert_true(strlen(a) <= DICOM_UID_MAX);
        assert_memory_equal(a, "2.25.", 5);
        assert_true(a[5] != '0');
        Err e = {0};
        assert_int_equal(dicom_uid_check(a, &e), ERR_OK);
        snprintf(seed, sizeof seed, "run-7/patient/%d", i + 1);
        dicom_uid_from_seed(seed, b);
        assert_string_not_equal(a, b);
    }
}

static void test_uid_check(void **state)
{
    (void)state;
    static const char *const good[] = {"0", "1.2", "1.2.840.10008.1.2.1", "2.25.0.10",
                                       DICOM_IMPLEMENTATION_CLASS_UID};
    char too_long[DICOM_UID_MAX + 2];
    memset(too_long, '1', sizeof too_long - 1); /* 65 digits: valid but for the length */
    too_long[DICOM_UID_MAX + 1] = '\0';
    const char *const bad[] = {"", ".1", "1.", "1..2", "1.02", "01.2", "1.2a", "1.2 ", too_long};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(dicom_uid_check(good[i], NULL), ERR_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Err e = {0};
        assert_int_equal(dicom_uid_check(bad[i], &e), ERR_FORMAT);
        assert_non_null(strstr(e.msg, "UID"));
    }
}

// ---------------------------------------------------------------------------------------------
// Byte layouts

static void test_meta_group_layout(void **state)
{
    (void)state;
    DicomDataset *ds = new_dataset();
    set_sop(ds, "1.2.3", "1.2.3.4");
    uint8_t *file;
    size_t len;
    Err e = {0};
    assert_int_equal(dicom_write_mem(ds, NULL, &file, &len, &e), ERR_OK);
    uint8_t zeros[128] = {0};
    assert_memory_equal(file, zeros, 128);
    /* Group length 144 = 14 (version) + 14 + 16 (SOP UIDs, NUL padded) + 28 (TS UID, 19
     * characters + NUL) + 52 (implementation class UID, 44 characters) + 20 (version name). */
    static const uint8_t want[] =
        "DICM"
        "\x02\x00\x00\x00UL\x04\x00\x90\x00\x00\x00"
        "\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"
        "\x02\x00\x02\x00UI\x06\x00"
        "1.2.3\0"
        "\x02\x00\x03\x00UI\x08\x00"
        "1.2.3.4\0"
        "\x02\x00\x10\x00UI\x14\x00"
        "1.2.840.10008.1.2.1\0"
        "\x02\x00\x12\x00UI\x2C\x00" DICOM_IMPLEMENTATION_CLASS_UID "\x02\x00\x13\x00SH\x0C\x00"
        "ONFH_DICOM_1"
        "\x08\x00\x16\x00UI\x06\x00"
        "1.2.3\0"
        "\x08\x00\x18\x00UI\x08\x00"
        "1.2.3.4\0";
    assert_bytes(file + 128, len - 128, B(want));
    assert_int_equal(dataset_offset(file, len), 132 + 12 + 144);
    mem_free(file);

    /* No preamble: the same bytes without the 128 zeros and "DICM". */
    DicomWriteOptions opt = {.form = DICOM_FILE_NO_PREAMBLE};
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
    assert_bytes(file, len, want + 4, sizeof want - 1 - 4);
    mem_free(file);

    /* Every transfer syntax names itself in (0002,0010); the meta stays Explicit VR LE. */
    for (int t = 0; t < DICOM_TS_COUNT; t++) {
        if (t == DICOM_TS_RLE)
            continue; /* needs pixel data */
        opt = (DicomWriteOptions){.ts = t};
        assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
        const char *uid = dicom_ts_uid(t);
        size_t n = strlen(uid);
        size_t at = 132 + 12 + 14 + 14 + 16;
        assert_memory_equal(file + at, "\x02\x00\x10\x00UI", 6);
        assert_int_equal(file[at + 6], n + (n & 1));
        assert_memory_equal(file + at + 8, uid, n);
        mem_free(file);
    }
    dicom_dataset_free(ds);
}

/* One element of most VRs, the values chosen so that padding and swapping show. */
static DicomDataset *vr_sampler(void)
{
    DicomDataset *ds = new_dataset();
    uint32_t tag;
    const uint16_t rows = 512;
    const double spacing[2] = {0.5, 0.25};
    const uint8_t ob[3] = {1, 2, 3};
    const uint8_t un[2] = {0xAA, 0xBB};
    const float fl = 1.0f;
    const double fd = -2.0;
    const int16_t ss = -2;
    const uint32_t ul = 0x01020304;
    const uint8_t ow[2] = {0x34, 0x12};             /* canonical little endian: 0x1234 */
    const uint8_t at[4] = {0x10, 0x00, 0x20, 0x00}; /* (0010,0020) */
    const uint16_t px[2] = {0x0001, 0x0203};
    DicomDataset *item;
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_MODALITY, DICOM_VR_CS, "MR", NULL), 0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_PATIENT_NAME, DICOM_VR_PN, "ABC", NULL), 0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_STUDY_INSTANCE_UID, DICOM_VR_UI, "1.2.3", NULL),
                     0);
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_ROWS, &rows, 1, NULL), 0);
    assert_int_equal(dicom_set_ds(ds, DICOM_TAG_PIXEL_SPACING, spacing, 2, NULL), 0);
    assert_int_equal(dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x01, &tag, NULL), 0);
    assert_int_equal(tag, DICOM_TAG(0x0029, 0x1001));
    assert_int_equal(dicom_set_bytes(ds, tag, DICOM_VR_OB, ob, 3, NULL), 0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG(0x0029, 0x1002), DICOM_VR_UT, "xyz", NULL), 0);
    assert_int_equal(dicom_set_bytes(ds, DICOM_TAG(0x0029, 0x1003), DICOM_VR_UN, un, 2, NULL), 0);
    assert_int_equal(dicom_set_fl(ds, DICOM_TAG(0x0029, 0x1004), &fl, 1, NULL), 0);
    assert_int_equal(dicom_set_fd(ds, DICOM_TAG(0x0029, 0x1005), &fd, 1, NULL), 0);
    assert_int_equal(dicom_set_ss(ds, DICOM_TAG(0x0029, 0x1006), &ss, 1, NULL), 0);
    assert_int_equal(dicom_set_ul(ds, DICOM_TAG(0x0029, 0x1007), &ul, 1, NULL), 0);
    assert_int_equal(dicom_set_bytes(ds, DICOM_TAG(0x0029, 0x1008), DICOM_VR_OW, ow, 2, NULL), 0);
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0029, 0x1009), &item, NULL), 0);
    assert_int_equal(dicom_set_str(item, DICOM_TAG(0x0008, 0x0100), DICOM_VR_SH, "C1", NULL), 0);
    assert_int_equal(dicom_set_bytes(ds, DICOM_TAG(0x0029, 0x100A), DICOM_VR_AT, at, 4, NULL), 0);
    assert_int_equal(dicom_set_pixels16(ds, px, 2, NULL), 0);
    return ds;
}

static void test_explicit_le_vr_forms_and_padding(void **state)
{
    (void)state;
    DicomDataset *ds = vr_sampler();
    uint8_t *data;
    size_t len;
    encode_dataset(ds, DICOM_TS_EXPLICIT_LE, 0, &data, &len);
    static const uint8_t want[] =
        "\x08\x00\x60\x00"
        "CS\x02\x00"
        "MR" /* even: no pad */
        "\x10\x00\x10\x00"
        "PN\x04\x00"
        "ABC " /* text: space pad */
        "\x20\x00\x0D\x00"
        "UI\x06\x00"
        "1.2.3\0" /* UI: NUL pad */
        "\x28\x00\x10\x00"
        "US\x02\x00\x00\x02"
        "\x28\x00\x30\x00"
        "DS\x08\x00"
        "0.5\\0.25"
        "\x29\x00\x10\x00"
        "LO\x0A\x00"
        "ONFH SYNTH"
        "\x29\x00\x01\x10"
        "OB\x00\x00\x04\x00\x00\x00\x01\x02\x03\x00" /* long form, NUL pad */
        "\x29\x00\x02\x10"
        "UT\x00\x00\x04\x00\x00\x00"
        "xyz "
        "\x29\x00\x03\x10"
        "UN\x00\x00\x02\x00\x00\x00\xAA\xBB"
        "\x29\x00\x04\x10"
        "FL\x04\x00\x00\x00\x80\x3F"
        "\x29\x00\x05\x10"
        "FD\x08\x00\x00\x00\x00\x00\x00\x00\x00\xC0"
        "\x29\x00\x06\x10"
        "SS\x02\x00\xFE\xFF"
        "\x29\x00\x07\x10"
        "UL\x04\x00\x04\x03\x02\x01"
        "\x29\x00\x08\x10"
        "OW\x00\x00\x02\x00\x00\x00\x34\x12"
        "\x29\x00\x09\x10"
        "SQ\x00\x00\x12\x00\x00\x00"
        "\xFE\xFF\x00\xE0\x0A\x00\x00\x00"
        "\x08\x00\x00\x01"
        "SH\x02\x00"
        "C1"
        "\x29\x00\x0A\x10"
        "AT\x04\x00\x10\x00\x20\x00"
        "\xE0\x7F\x10\x00"
        "OW\x00\x00\x04\x00\x00\x00\x01\x00\x03\x02";
    assert_bytes(data, len, B(want));
    mem_free(data);
    dicom_dataset_free(ds);
}

static void test_implicit_le_layout(void **state)
{
    (void)state;
    DicomDataset *ds = vr_sampler();
    uint8_t *data;
    size_t len;
    encode_dataset(ds, DICOM_TS_IMPLICIT_LE, 0, &data, &len);
    static const uint8_t want[] = "\x08\x00\x60\x00\x02\x00\x00\x00"
                                  "MR"
                                  "\x10\x00\x10\x00\x04\x00\x00\x00"
                                  "ABC "
                                  "\x20\x00\x0D\x00\x06\x00\x00\x00"
                                  "1.2.3\0"
                                  "\x28\x00\x10\x00\x02\x00\x00\x00\x00\x02"
                                  "\x28\x00\x30\x00\x08\x00\x00\x00"
                                  "0.5\\0.25"
                                  "\x29\x00\x10\x00\x0A\x00\x00\x00"
                                  "ONFH SYNTH"
                                  "\x29\x00\x01\x10\x04\x00\x00\x00\x01\x02\x03\x00"
                                  "\x29\x00\x02\x10\x04\x00\x00\x00"
                                  "xyz "
                                  "\x29\x00\x03\x10\x02\x00\x00\x00\xAA\xBB"
                                  "\x29\x00\x04\x10\x04\x00\x00\x00\x00\x00\x80\x3F"
                                  "\x29\x00\x05\x10\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xC0"
                                  "\x29\x00\x06\x10\x02\x00\x00\x00\xFE\xFF"
                                  "\x29\x00\x07\x10\x04\x00\x00\x00\x04\x03\x02\x01"
                                  "\x29\x00\x08\x10\x02\x00\x00\x00\x34\x12"
                                  "\x29\x00\x09\x10\x12\x00\x00\x00"
                                  "\xFE\xFF\x00\xE0\x0A\x00\x00\x00"
                                  "\x08\x00\x00\x01\x02\x00\x00\x00"
                                  "C1"
                                  "\x29\x00\x0A\x10\x04\x00\x00\x00\x10\x00\x20\x00"
                                  "\xE0\x7F\x10\x00\x04\x00\x00\x00\x01\x00\x03\x02";
    assert_bytes(data, len, B(want));
    mem_free(data);
    dicom_dataset_free(ds);
}

static void test_explicit_be_swaps_per_vr(void **state)
{
    (void)state;
    DicomDataset *ds = vr_sampler();
    uint8_t *data;
    size_t len;
    encode_dataset(ds, DICOM_TS_EXPLICIT_BE, 0, &data, &len);
    /* Tags, lengths and numbers big endian; text, OB and UN untouched; AT swapped as two
     * 16-bit words; OW pixel data swapped per 16-bit word. */
    static const uint8_t want[] = "\x00\x08\x00\x60"
                                  "CS\x00\x02"
                                  "MR"
                                  "\x00\x10\x00\x10"
                                  "PN\x00\x04"
                                  "ABC "
                                  "\x00\x20\x00\x0D"
                                  "UI\x00\x06"
                                  "1.2.3\0"
                                  "\x00\x28\x00\x10"
                                  "US\x00\x02\x02\x00"
                                  "\x00\x28\x00\x30"
                                  "DS\x00\x08"
                                  "0.5\\0.25"
                                  "\x00\x29\x00\x10"
                                  "LO\x00\x0A"
                                  "ONFH SYNTH"
                                  "\x00\x29\x10\x01"
                                  "OB\x00\x00\x00\x00\x00\x04\x01\x02\x03\x00"
                                  "\x00\x29\x10\x02"
                                  "UT\x00\x00\x00\x00\x00\x04"
                                  "xyz "
                                  "\x00\x29\x10\x03"
                                  "UN\x00\x00\x00\x00\x00\x02\xAA\xBB"
                                  "\x00\x29\x10\x04"
                                  "FL\x00\x04\x3F\x80\x00\x00"
                                  "\x00\x29\x10\x05"
                                  "FD\x00\x08\xC0\x00\x00\x00\x00\x00\x00\x00"
                                  "\x00\x29\x10\x06"
                                  "SS\x00\x02\xFF\xFE"
                                  "\x00\x29\x10\x07"
                                  "UL\x00\x04\x01\x02\x03\x04"
                                  "\x00\x29\x10\x08"
                                  "OW\x00\x00\x00\x00\x00\x02\x12\x34"
                                  "\x00\x29\x10\x09"
                                  "SQ\x00\x00\x00\x00\x00\x12"
                                  "\xFF\xFE\xE0\x00\x00\x00\x00\x0A"
                                  "\x00\x08\x01\x00"
                                  "SH\x00\x02"
                                  "C1"
                                  "\x00\x29\x10\x0A"
                                  "AT\x00\x04\x00\x10\x00\x20"
                                  "\x7F\xE0\x00\x10"
                                  "OW\x00\x00\x00\x00\x00\x04\x00\x01\x02\x03";
    assert_bytes(data, len, B(want));
    mem_free(data);
    dicom_dataset_free(ds);
}

/* Two levels of nesting, an empty item and an empty sequence. */
static DicomDataset *nested_sampler(void)
{
    DicomDataset *ds = new_dataset();
    DicomDataset *item;
    DicomDataset *empty;
    DicomDataset *code;
    assert_int_equal(dicom_set_sequence(ds, DICOM_TAG(0x0008, 0x1110), NULL), 0);
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, NULL), 0);
    assert_int_equal(dicom_add_item(item, DICOM_TAG(0x0040, 0x0008), &code, NULL), 0);
    assert_int_equal(dicom_set_str(code, DICOM_TAG(0x0008, 0x0100), DICOM_VR_SH, "C1", NULL), 0);
    assert_int_equal(dicom_set_str(item, DICOM_TAG(0x0040, 0x1001), DICOM_VR_SH, "RP", NULL), 0);
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &empty, NULL), 0);
    return ds;
}

static void test_sequences_defined_and_undefined(void **state)
{
    (void)state;
    DicomDataset *ds = nested_sampler();
    uint8_t *data;
    size_t len;
    encode_dataset(ds, DICOM_TS_EXPLICIT_LE, 0, &data, &len);
    /* Inner item 10, inner SQ 12 + 8 + 10 = 30, item 1 = 30 + 10 = 40, outer = 8 + 40 + 8. */
    static const uint8_t want_defined[] = "\x08\x00\x10\x11"
                                          "SQ\x00\x00\x00\x00\x00\x00"
                                          "\x40\x00\x75\x02"
                                          "SQ\x00\x00\x38\x00\x00\x00"
                                          "\xFE\xFF\x00\xE0\x28\x00\x00\x00"
                                          "\x40\x00\x08\x00"
                                          "SQ\x00\x00\x12\x00\x00\x00"
                                          "\xFE\xFF\x00\xE0\x0A\x00\x00\x00"
                                          "\x08\x00\x00\x01"
                                          "SH\x02\x00"
                                          "C1"
                                          "\x40\x00\x01\x10"
                                          "SH\x02\x00"
                                          "RP"
                                          "\xFE\xFF\x00\xE0\x00\x00\x00\x00";
    assert_bytes(data, len, B(want_defined));
    mem_free(data);

    encode_dataset(ds, DICOM_TS_EXPLICIT_LE, 1, &data, &len);
    static const uint8_t want_undefined[] = "\x08\x00\x10\x11"
                                            "SQ\x00\x00\xFF\xFF\xFF\xFF"
                                            "\xFE\xFF\xDD\xE0\x00\x00\x00\x00"
                                            "\x40\x00\x75\x02"
                                            "SQ\x00\x00\xFF\xFF\xFF\xFF"
                                            "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                            "\x40\x00\x08\x00"
                                            "SQ\x00\x00\xFF\xFF\xFF\xFF"
                                            "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                            "\x08\x00\x00\x01"
                                            "SH\x02\x00"
                                            "C1"
                                            "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                            "\xFE\xFF\xDD\xE0\x00\x00\x00\x00"
                                            "\x40\x00\x01\x10"
                                            "SH\x02\x00"
                                            "RP"
                                            "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                            "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                            "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                            "\xFE\xFF\xDD\xE0\x00\x00\x00\x00";
    assert_bytes(data, len, B(want_undefined));
    mem_free(data);

    /* Implicit VR, undefined: the same structure without VRs. */
    encode_dataset(ds, DICOM_TS_IMPLICIT_LE, 1, &data, &len);
    static const uint8_t want_implicit[] = "\x08\x00\x10\x11\xFF\xFF\xFF\xFF"
                                           "\xFE\xFF\xDD\xE0\x00\x00\x00\x00"
                                           "\x40\x00\x75\x02\xFF\xFF\xFF\xFF"
                                           "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                           "\x40\x00\x08\x00\xFF\xFF\xFF\xFF"
                                           "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                           "\x08\x00\x00\x01\x02\x00\x00\x00"
                                           "C1"
                                           "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                           "\xFE\xFF\xDD\xE0\x00\x00\x00\x00"
                                           "\x40\x00\x01\x10\x02\x00\x00\x00"
                                           "RP"
                                           "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                           "\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF"
                                           "\xFE\xFF\x0D\xE0\x00\x00\x00\x00"
                                           "\xFE\xFF\xDD\xE0\x00\x00\x00\x00";
    assert_bytes(data, len, B(want_implicit));
    mem_free(data);

    /* Implicit VR, undefined asked for: a private sequence keeps defined lengths inside, so
     * that a reader without its dictionary can skip it as an unknown blob. */
    DicomDataset *priv = new_dataset();
    DicomDataset *pitem;
    uint32_t ptag;
    assert_int_equal(dicom_private_tag(priv, 0x0029, "X", 0x01, &ptag, NULL), 0);
    assert_int_equal(dicom_add_item(priv, ptag, &pitem, NULL), 0);
    assert_int_equal(dicom_set_str(pitem, DICOM_TAG(0x0008, 0x0100), DICOM_VR_SH, "C1", NULL), 0);
    encode_dataset(priv, DICOM_TS_IMPLICIT_LE, 1, &data, &len);
    static const uint8_t want_private[] = "\x29\x00\x10\x00\x02\x00\x00\x00"
                                          "X "
                                          "\x29\x00\x01\x10\x12\x00\x00\x00"
                                          "\xFE\xFF\x00\xE0\x0A\x00\x00\x00"
                                          "\x08\x00\x00\x01\x02\x00\x00\x00"
                                          "C1";
    assert_bytes(data, len, B(want_private));
    mem_free(data);
    /* ... but not in Explicit VR, where the VR says SQ. */
    encode_dataset(priv, DICOM_TS_EXPLICIT_LE, 1, &data, &len);
    assert_memory_equal(data + 10, "\x29\x00\x01\x10SQ\x00\x00\xFF\xFF\xFF\xFF", 12);
    mem_free(data);
    dicom_dataset_free(priv);

    /* Big endian, defined: item tags and lengths swapped too. */
    encode_dataset(ds, DICOM_TS_EXPLICIT_BE, 0, &data, &len);
    static const uint8_t want_be[] = "\x00\x08\x11\x10"
                                     "SQ\x00\x00\x00\x00\x00\x00"
                                     "\x00\x40\x02\x75"
                                     "SQ\x00\x00\x00\x00\x00\x38"
                                     "\xFF\xFE\xE0\x00\x00\x00\x00\x28"
                                     "\x00\x40\x00\x08"
                                     "SQ\x00\x00\x00\x00\x00\x12"
                                     "\xFF\xFE\xE0\x00\x00\x00\x00\x0A"
                                     "\x00\x08\x01\x00"
                                     "SH\x00\x02"
                                     "C1"
                                     "\x00\x40\x10\x01"
                                     "SH\x00\x02"
                                     "RP"
                                     "\xFF\xFE\xE0\x00\x00\x00\x00\x00";
    assert_bytes(data, len, B(want_be));
    mem_free(data);
    dicom_dataset_free(ds);
}

static void test_elements_sorted_whatever_the_set_order(void **state)
{
    (void)state;
    DicomDataset *ds = new_dataset();
    const uint16_t v = 1;
    static const uint32_t tags[] = {DICOM_TAG_HIGH_BIT, DICOM_TAG_ROWS, DICOM_TAG_BITS_STORED,
                                    DICOM_TAG_COLUMNS, DICOM_TAG_SAMPLES_PER_PIXEL};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dicom_set_us(ds, tags[i], &v, 1, NULL), 0);
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_ROWS, &v, 1, NULL), 0); /* replaces */
    assert_int_equal(ds->count, 5);
    for (size_t i = 1; i < ds->count; i++)
        assert_true(ds->elements[i - 1].tag < ds->elements[i].tag);
    dicom_remove(ds, DICOM_TAG_ROWS);
    dicom_remove(ds, DICOM_TAG_ROWS);
    assert_null(dicom_find(ds, DICOM_TAG_ROWS));
    assert_non_null(dicom_find(ds, DICOM_TAG_COLUMNS));
    assert_int_equal(ds->count, 4);
    dicom_dataset_free(ds);
}

// ---------------------------------------------------------------------------------------------
// Setters: what they refuse and how they format

static void expect_refused(int rc, const Err *e, const char *needle)
{
    assert_int_equal(rc, ERR_FORMAT);
    if (!strstr(e->msg, needle)) {
        print_error("message \"%s\" lacks \"%s\"\n", e->msg, needle);
        fail();
    }
}

static void test_setters_refuse_bad_values(void **state)
{
    (void)state;
    DicomDataset *ds = new_dataset();
    Err e = {0};
    const uint32_t ul = 1;
    const char *const with_backslash[] = {"A", "B\\C"};
    char long_lo[80];
    memset(long_lo, 'x', 65);
    long_lo[65] = '\0';
    expect_refused(dicom_set_ul(ds, DICOM_TAG_ROWS, &ul, 1, &e), &e, "(0028,0010) Rows");
    expect_refused(dicom_set_str(ds, DICOM_TAG_MODALITY, DICOM_VR_CS, "mr", &e), &e, "CS allows");
    expect_refused(dicom_set_str(ds, DICOM_TAG_STUDY_DATE, DICOM_VR_DA, "2025-03-14", &e), &e,
                   "DA allows 8");
    expect_refused(dicom_set_str(ds, DICOM_TAG_STUDY_DATE, DICOM_VR_DA, "2025031X", &e), &e,
                   "YYYYMMDD");
    expect_refused(dicom_set_str(ds, DICOM_TAG_STUDY_DATE, DICOM_VR_DA, "20251314", &e), &e,
                   "month");
    expect_refused(dicom_set_str(ds, DICOM_TAG_STUDY_TIME, DICOM_VR_TM, "10:15", &e), &e, "TM");
    expect_refused(dicom_set_str(ds, DICOM_TAG_STUDY_INSTANCE_UID, DICOM_VR_UI, "1.02", &e), &e,
                   "leading zero");
    expect_refused(dicom_set_str(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, long_lo, &e), &e,
                   "LO allows 64");
    expect_refused(dicom_set_str(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, "caf\xC3\xA9", &e), &e,
                   "ASCII");
    expect_refused(dicom_set_strs(ds, DICOM_TAG_IMAGE_TYPE, DICOM_VR_CS, with_backslash, 2, &e), &e,
                   "backslash");
    expect_refused(dicom_set_str(ds, DICOM_TAG(0x0002, 0x0010), DICOM_VR_UI, "1.2", &e), &e,
                   "file meta");
    expect_refused(dicom_set_str(ds, DICOM_TAG(0x0010, 0x0000), DICOM_VR_UL, "", &e), &e,
                   "group lengths");
    expect_refused(dicom_set_str(ds, DICOM_TAG(0x0029, 0x1010), DICOM_VR_LO, "x", &e), &e,
                   "no private creator");
    expect_refused(dicom_set_str(ds, DICOM_TAG_SERIES_NUMBER, DICOM_VR_IS, "3000000000", &e), &e,
                   "IS out of range");
    const long big = 3000000000L;
    expect_refused(dicom_set_is(ds, DICOM_TAG_SERIES_NUMBER, &big, 1, &e), &e, "out of range");
    const double nan = NAN;
    expect_refused(dicom_set_ds(ds, DICOM_TAG_SLICE_THICKNESS, &nan, 1, &e), &e, "finite");
    uint32_t tag;
    expect_refused(dicom_private_tag(ds, 0x0028, "X", 0x10, &tag, &e), &e, "must be odd");
    assert_int_equal(ds->count, 0); /* nothing was stored */
    dicom_dataset_free(ds);
}

static void test_string_formats(void **state)
{
    (void)state;
    DicomDataset *ds = new_dataset();
    const double v[] = {0.1, -0.7071067811865476, 1e-20, 120.5, -0.0, 123456789012345678.0};
    assert_int_equal(dicom_set_ds(ds, DICOM_TAG_IMAGE_ORIENTATION_PATIENT, v, 6, NULL), 0);
    const DicomElement *el = dicom_find(ds, DICOM_TAG_IMAGE_ORIENTATION_PATIENT);
    const char want[] = "0.1\\-0.7071067811865\\1e-20\\120.5\\-0\\1.2345678901e+17";
    assert_int_equal(el->length, strlen(want));
    assert_memory_equal(el->value, want, strlen(want));
    const long is[] = {-2147483648L, 2147483647L, 0};
    assert_int_equal(dicom_set_is(ds, DICOM_TAG_INSTANCE_NUMBER, is, 3, NULL), 0);
    el = dicom_find(ds, DICOM_TAG_INSTANCE_NUMBER);
    assert_memory_equal(el->value, "-2147483648\\2147483647\\0", el->length);
    const char *const types[] = {"ORIGINAL", "PRIMARY", "", "M"};
    assert_int_equal(dicom_set_strs(ds, DICOM_TAG_IMAGE_TYPE, DICOM_VR_CS, types, 4, NULL), 0);
    el = dicom_find(ds, DICOM_TAG_IMAGE_TYPE);
    assert_memory_equal(el->value, "ORIGINAL\\PRIMARY\\\\M", el->length);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_STUDY_TIME, DICOM_VR_TM, "101500.123456", NULL),
                     0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_PATIENT_NAME, DICOM_VR_PN, "Doe^Jane=^=", NULL),
                     0);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG(0x0010, 0x1010), DICOM_VR_AS, "045Y", NULL), 0);
    assert_int_equal(dicom_set_strs(ds, DICOM_TAG_ACCESSION_NUMBER, DICOM_VR_SH, NULL, 0, NULL), 0);
    assert_int_equal(dicom_find(ds, DICOM_TAG_ACCESSION_NUMBER)->length, 0);
    dicom_dataset_free(ds);
}

static void test_private_creator_blocks(void **state)
{
    (void)state;
    DicomDataset *ds = new_dataset();
    uint32_t a;
    uint32_t b;
    uint32_t c;
    assert_int_equal(dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0x10, &a, NULL), 0);
    assert_int_equal(a, DICOM_TAG(0x0029, 0x1010));
    assert_int_equal(dicom_private_tag(ds, 0x0029, "OTHER", 0x10, &b, NULL), 0);
    assert_int_equal(b, DICOM_TAG(0x0029, 0x1110));
    assert_int_equal(dicom_private_tag(ds, 0x0029, "ONFH SYNTH", 0xFF, &c, NULL), 0);
    assert_int_equal(c, DICOM_TAG(0x0029, 0x10FF));
    const DicomElement *creator = dicom_find(ds, DICOM_TAG(0x0029, 0x0011));
    assert_non_null(creator);
    assert_int_equal(creator->vr, DICOM_VR_LO);
    assert_memory_equal(creator->value, "OTHER", 5);
    assert_int_equal(ds->count, 2);
    /* Creator VR must be LO. */
    Err e = {0};
    expect_refused(dicom_set_str(ds, DICOM_TAG(0x0029, 0x0012), DICOM_VR_SH, "X", &e), &e,
                   "must be LO");
    /* A private tag in an item needs a creator in that item, not the parent. */
    DicomDataset *item;
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0029, 0x1020), &item, NULL), 0);
    expect_refused(dicom_set_str(item, DICOM_TAG(0x0029, 0x1021), DICOM_VR_LO, "x", &e), &e,
                   "private creator");
    dicom_dataset_free(ds);
}

// ---------------------------------------------------------------------------------------------
// RLE

static void check_rle_row(const uint8_t *row, size_t n, const uint8_t *want, size_t want_len)
{
    uint8_t *out;
    size_t len;
    Err e = {0};
    assert_int_equal(dicom_rle_encode_frame(row, 1, (uint32_t)n, 1, 1, 0, &out, &len, &e), 0);
    /* Header: 1 segment at offset 64, 14 unused offsets of 0. */
    uint8_t header[64] = {1, 0, 0, 0, 64, 0, 0, 0};
    assert_memory_equal(out, header, 64);
    assert_bytes(out + 64, len - 64, want, want_len);
    mem_free(out);
}

static void test_rle_known_runs(void **state)
{
    (void)state;
    /* 4 x 5 replicate; 1 2 3 literal; 7 7 between literals joins them; 9; 4 4 before a
     * 3-run stays a replicate; 8 8 8 replicate; 13 bytes, so one pad byte. */
    static const uint8_t a[] = {5, 5, 5, 5, 1, 2, 3, 7, 7, 9, 4, 4, 8, 8, 8};
    check_rle_row(a, sizeof a, B("\xFD\x05\x05\x01\x02\x03\x07\x07\x09\xFF\x04\xFE\x08\x00"));
    /* A pair opening the row is a replicate run; so is one closing it. */
    static const uint8_t b[] = {3, 3, 1, 2};
    check_rle_row(b, sizeof b, B("\xFF\x03\x01\x01\x02\x00"));
    static const uint8_t c[] = {1, 2, 3, 3};
    check_rle_row(c, sizeof c, B("\x01\x01\x02\xFF\x03\x00"));
    /* 130 equal bytes: 128 (header 0x81 = -127) + 2; then a single byte. */
    uint8_t d[131];
    memset(d, 0x22, 130);
    d[130] = 0x23;
    check_rle_row(d, sizeof d, B("\x81\x22\xFF\x22\x00\x23"));
    /* 129 equal bytes: 128 + 1 leftover that joins the following literal. */
    check_rle_row(d + 1, sizeof d - 1, B("\x81\x22\x01\x22\x23\x00"));
    /* 130 distinct bytes: literal runs of 128 and 2. */
    uint8_t f[130];
    uint8_t want_f[132];
    for (int i = 0; i < 130; i++)
        f[i] = (uint8_t)i;
    want_f[0] = 0x7F;
    memcpy(want_f + 1, f, 128);
    want_f[129] = 0x01;
    want_f[130] = 128;
    want_f[131] = 129;
    check_rle_row(f, sizeof f, want_f, sizeof want_f);
    /* A single byte. */
    static const uint8_t g[] = {0xAB};
    check_rle_row(g, 1, B("\x00\xAB"));
}

static void test_rle_rows_and_16bit_segments(void **state)
{
    (void)state;
    uint8_t *out;
    size_t len;
    Err e = {0};
    /* Rows are coded separately: two rows of three 1s are two runs, not one of six. */
    static const uint8_t ones[6] = {1, 1, 1, 1, 1, 1};
    assert_int_equal(dicom_rle_encode_frame(ones, 2, 3, 1, 1, 0, &out, &len, &e), 0);
    assert_int_equal(len, 68);
    assert_memory_equal(out + 64, "\xFE\x01\xFE\x01", 4);
    mem_free(out);

    /* 16 bits, 2 x 3: row 0 = 0x0102 0x0102 0x0103, row 1 = 0x0A00 0x0B00 0x0C00. Segment 1
     * (high bytes): 01 01 01 | 0A 0B 0C; segment 2 (low bytes): 02 02 03 | 00 00 00. */
    static const uint8_t px[] = {0x02, 0x01, 0x02, 0x01, 0x03, 0x01,
                                 0x00, 0x0A, 0x00, 0x0B, 0x00, 0x0C};
    assert_int_equal(dicom_rle_encode_frame(px, 2, 3, 1, 2, 0, &out, &len, &e), 0);
    uint8_t want[76] = {2, 0, 0, 0, 64, 0, 0, 0, 70, 0, 0, 0};
    memcpy(want + 64,
           "\xFE\x01\x02\x0A\x0B\x0C"
           "\xFF\x02\x00\x03\xFE\x00",
           12);
    assert_bytes(out, len, want, sizeof want);
    mem_free(out);

    /* RGB 8-bit, interleaved and by plane give the same segments: R, then G, then B. */
    static const uint8_t rgb[] = {10, 20, 30, 11, 21, 31};
    static const uint8_t planes[] = {10, 11, 20, 21, 30, 31};
    uint8_t *out2;
    size_t len2;
    assert_int_equal(dicom_rle_encode_frame(rgb, 1, 2, 3, 1, 0, &out, &len, &e), 0);
    assert_int_equal(dicom_rle_encode_frame(planes, 1, 2, 3, 1, 1, &out2, &len2, &e), 0);
    assert_bytes(out, len, out2, len2);
    uint8_t want_rgb[64 + 12] = {3, 0, 0, 0, 64, 0, 0, 0, 68, 0, 0, 0, 72, 0, 0, 0};
    memcpy(want_rgb + 64, "\x01\x0A\x0B\x00\x01\x14\x15\x00\x01\x1E\x1F\x00", 12);
    assert_bytes(out, len, want_rgb, sizeof want_rgb);
    mem_free(out);
    mem_free(out2);

    expect_refused(dicom_rle_encode_frame(px, 1, 1, 4, 4, 0, &out, &len, &e), &e, "1-15");
}

/* 2 frames of 2 x 3, 16-bit, for the encapsulation layout. */
static DicomDataset *rle_sampler(void)
{
    DicomDataset *ds = new_dataset();
    set_sop(ds, "1.2.840.10008.5.1.4.1.1.7.3", "1.2.3.4");
    const uint16_t one = 1;
    const uint16_t rows = 2;
    const uint16_t cols = 3;
    const uint16_t bits = 16;
    const long frames = 2;
    static const uint16_t px[12] = {0x0102, 0x0102, 0x0103, 0x0A00, 0x0B00, 0x0C00,
                                    7,      7,      7,      7,      7,      0xFFFF};
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_SAMPLES_PER_PIXEL, &one, 1, NULL), 0);
    assert_int_equal(dicom_set_is(ds, DICOM_TAG_NUMBER_OF_FRAMES, &frames, 1, NULL), 0);
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_ROWS, &rows, 1, NULL), 0);
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_COLUMNS, &cols, 1, NULL), 0);
    assert_int_equal(dicom_set_us(ds, DICOM_TAG_BITS_ALLOCATED, &bits, 1, NULL), 0);
    assert_int_equal(dicom_set_pixels16(ds, px, 12, NULL), 0);
    return ds;
}

static void test_rle_encapsulation(void **state)
{
    (void)state;
    DicomDataset *ds = rle_sampler();
    const DicomElement *pixels = dicom_find(ds, DICOM_TAG_PIXEL_DATA);
    uint8_t *f0;
    uint8_t *f1;
    size_t n0;
    size_t n1;
    Err e = {0};
    assert_int_equal(dicom_rle_encode_frame(pixels->value, 2, 3, 1, 2, 0, &f0, &n0, &e), 0);
    assert_int_equal(dicom_rle_encode_frame(pixels->value + 12, 2, 3, 1, 2, 0, &f1, &n1, &e), 0);

    DicomWriteOptions opt = {.ts = DICOM_TS_RLE};
    uint8_t *file;
    size_t len;
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
    /* Pixel Data is the last element: OB, undefined length; the offset table item holds 0 and
     * 8 + n0; one fragment item per frame; the sequence delimiter. */
    size_t tail = 12 + 8 + 8 + 8 + n0 + 8 + n1 + 8;
    assert_true(len > tail);
    const uint8_t *p = file + len - tail;
    assert_memory_equal(p, "\xE0\x7F\x10\x00OB\x00\x00\xFF\xFF\xFF\xFF", 12);
    assert_memory_equal(p + 12, "\xFE\xFF\x00\xE0\x08\x00\x00\x00\x00\x00\x00\x00", 12);
    assert_int_equal(dicom__le32(p + 24), 8 + n0);
    assert_memory_equal(p + 28, "\xFE\xFF\x00\xE0", 4);
    assert_int_equal(dicom__le32(p + 32), n0);
    assert_memory_equal(p + 36, f0, n0);
    assert_memory_equal(p + 36 + n0, "\xFE\xFF\x00\xE0", 4);
    assert_int_equal(dicom__le32(p + 40 + n0), n1);
    assert_memory_equal(p + 44 + n0, f1, n1);
    assert_memory_equal(p + 44 + n0 + n1, "\xFE\xFF\xDD\xE0\x00\x00\x00\x00", 8);

    /* The same fragments set by hand are written as they are: identical file. */
    uint8_t bot[8] = {0, 0, 0, 0, (uint8_t)(8 + n0)};
    DicomFragment frags[3] = {{bot, 8}, {f0, (uint32_t)n0}, {f1, (uint32_t)n1}};
    assert_int_equal(dicom_set_encapsulated(ds, DICOM_TAG_PIXEL_DATA, frags, 3, &e), 0);
    uint8_t *again;
    size_t again_len;
    assert_int_equal(dicom_write_mem(ds, &opt, &again, &again_len, &e), ERR_OK);
    assert_bytes(again, again_len, file, len);
    /* ... and refused under a native transfer syntax. */
    opt.ts = DICOM_TS_EXPLICIT_LE;
    uint8_t *native;
    size_t native_len;
    expect_refused(dicom_write_mem(ds, &opt, &native, &native_len, &e), &e,
                   "encapsulated transfer syntax");
    assert_null(native);
    mem_free(again);
    mem_free(file);
    mem_free(f0);
    mem_free(f1);
    dicom_dataset_free(ds);

    /* Missing pixel module attributes are named. */
    ds = rle_sampler();
    dicom_remove(ds, DICOM_TAG_BITS_ALLOCATED);
    opt.ts = DICOM_TS_RLE;
    expect_refused(dicom_write_mem(ds, &opt, &file, &len, &e), &e, "BitsAllocated");
    dicom_dataset_free(ds);
}

// ---------------------------------------------------------------------------------------------
// Deflate and file forms

/* Raw-inflates in[0..n) (negative windowBits), which must hold exactly one deflate stream plus
 * at most one pad byte. */
static uint8_t *inflate_raw(const uint8_t *in, size_t n, size_t *out_len)
{
    size_t cap = 1 << 22;
    uint8_t *out = malloc(cap);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, -MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_true(zs.avail_in <= 1);
    if (zs.avail_in == 1)
        assert_int_equal(in[n - 1], 0);
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return out;
}

static void test_deflate_round_trip(void **state)
{
    (void)state;
    DicomDataset *ds;
    Err e = {0};
    assert_int_equal(build_sample(1, 1, &ds, &e), ERR_OK);
    for (int undef = 0; undef <= 1; undef++) {
        DicomWriteOptions opt = {.ts = DICOM_TS_DEFLATED_LE, .undefined_length = undef};
        uint8_t *file;
        size_t len;
        assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
        assert_int_equal(len % 2, 0);
        size_t at = dataset_offset(file, len);
        assert_non_null(memmem(file, at, "1.2.840.10008.1.2.1.99", 22));
        uint8_t *plain;
        size_t plain_len;
        encode_dataset(ds, DICOM_TS_EXPLICIT_LE, undef, &plain, &plain_len);
        size_t inflated_len;
        uint8_t *inflated = inflate_raw(file + at, len - at, &inflated_len);
        assert_bytes(inflated, inflated_len, plain, plain_len);
        assert_true(len - at < plain_len); /* it did compress */
        free(inflated);
        mem_free(plain);
        mem_free(file);
    }
    dicom_dataset_free(ds);
}

/* meta_ts_uid names another syntax in the meta (fault files for readers to refuse) while the
 * data set keeps its own encoding; a malformed UID is refused. */
static void test_meta_ts_uid_override(void **state)
{
    (void)state;
    DicomDataset *ds = nested_sampler();
    set_sop(ds, "1.2.3", "1.2.3.4");
    uint8_t *file, *plain;
    size_t len, plain_len;
    Err e = {0};
    DicomWriteOptions opt = {.ts = DICOM_TS_EXPLICIT_LE};
    assert_int_equal(dicom_write_mem(ds, &opt, &plain, &plain_len, &e), ERR_OK);
    opt.meta_ts_uid = "1.2.840.10008.1.2.4.100";
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
    /* 4 more bytes of UID: "1.2.840.10008.1.2.4.100" (23, padded to 24) vs "...1.2.1" (19 -> 20) */
    assert_int_equal(len, plain_len + 4);
    assert_non_null(memmem(file, 300, "1.2.840.10008.1.2.4.100", 23));
    assert_memory_equal(file + len - 64, plain + plain_len - 64, 64); /* same data set */
    mem_free(file);
    mem_free(plain);
    opt.meta_ts_uid = "1.2.840.10008.01";
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_FORMAT);
    assert_null(file);
    dicom_dataset_free(ds);
}

static void test_file_forms(void **state)
{
    (void)state;
    DicomDataset *ds = nested_sampler();
    uint8_t *file;
    size_t len;
    Err e = {0};
    /* The meta needs the SOP UIDs; the bare data set does not. */
    expect_refused(dicom_write_mem(ds, NULL, &file, &len, &e), &e, "(0008,0016) SOPClassUID");
    assert_null(file);
    DicomWriteOptions opt = {.form = DICOM_FILE_DATASET_ONLY};
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
    assert_memory_equal(file, "\x08\x00\x10\x11SQ", 6);
    mem_free(file);
    opt.ts = DICOM_TS_DEFLATED_LE;
    expect_refused(dicom_write_mem(ds, &opt, &file, &len, &e), &e, "file meta");
    opt.ts = DICOM_TS_RLE;
    expect_refused(dicom_write_mem(ds, &opt, &file, &len, &e), &e, "file meta");
    set_sop(ds, "1.2.3", "1.2.3.4");
    opt = (DicomWriteOptions){.form = DICOM_FILE_NO_PREAMBLE, .ts = DICOM_TS_IMPLICIT_LE};
    assert_int_equal(dicom_write_mem(ds, &opt, &file, &len, &e), ERR_OK);
    assert_memory_equal(file, "\x02\x00\x00\x00UL\x04\x00", 8);
    /* After the meta group, Implicit VR: tag then a 4-byte length. */
    size_t at = 12 + dicom__le32(file + 8);
    assert_memory_equal(file + at,
                        "\x08\x00\x16\x00\x06\x00\x00\x00"
                        "1.2.3\0",
                        14);
    mem_free(file);
    dicom_dataset_free(ds);
}

static void test_write_file(void **state)
{
    (void)state;
    const char *tmp = getenv("ONFH_TEST_TMP");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/test_dicom_write.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/x.dcm", dir);
    DicomDataset *ds;
    Err e = {0};
    assert_int_equal(build_sample(1, 0, &ds, &e), ERR_OK);
    DicomWriteOptions opt = {.ts = DICOM_TS_EXPLICIT_BE};
    assert_int_equal(dicom_write_file(path, ds, &opt, &e), ERR_OK);
    char *data;
    size_t len;
    uint8_t *want;
    size_t want_len;
    assert_int_equal(file_read_all(path, &data, &len, &e), ERR_OK);
    assert_int_equal(dicom_write_mem(ds, &opt, &want, &want_len, &e), ERR_OK);
    assert_bytes((uint8_t *)data, len, want, want_len);
    mem_free(data);
    mem_free(want);
    unlink(path);
    /* An unwritable path is named in the message. */
    snprintf(path, sizeof path, "%s/no/such/dir/x.dcm", dir);
    assert_int_equal(dicom_write_file(path, ds, &opt, &e), ERR_IO);
    assert_non_null(strstr(e.msg, path));
    dicom_dataset_free(ds);
    rmdir(dir);
}

// ---------------------------------------------------------------------------------------------
// MR Image Storage

static void expect_text(const DicomDataset *ds, uint32_t tag, const char *want)
{
    const DicomElement *el = dicom_find(ds, tag);
    if (!el) {
        print_error("%s missing\n", dicom__tag_label(tag).s);
        fail();
    }
    if (el->length != strlen(want) || (el->length && memcmp(el->value, want, el->length))) {
        print_error("%s = \"%.*s\", want \"%s\"\n", dicom__tag_label(tag).s, (int)el->length,
                    (const char *)el->value, want);
        fail();
    }
}

static void expect_us(const DicomDataset *ds, uint32_t tag, uint16_t want)
{
    const DicomElement *el = dicom_find(ds, tag);
    assert_non_null(el);
    assert_int_equal(el->vr, DICOM_VR_US);
    assert_int_equal(el->length, 2);
    assert_int_equal(dicom__le16(el->value), want);
}

static void test_mr_image_attributes(void **state)
{
    (void)state;
    DicomDataset *ds;
    Err e = {0};
    SampleUids u;
    DicomMrImage p;
    sample_params(&p, &u, 2);
    assert_int_equal(dicom_mr_image_new(&p, &ds, &e), ERR_OK);
    expect_text(ds, DICOM_TAG_SOP_CLASS_UID, "1.2.840.10008.5.1.4.1.1.4");
    expect_text(ds, DICOM_TAG_SOP_INSTANCE_UID, u.instance);
    expect_text(ds, DICOM_TAG_STUDY_INSTANCE_UID, u.study);
    expect_text(ds, DICOM_TAG_SERIES_INSTANCE_UID, u.series);
    expect_text(ds, DICOM_TAG_FRAME_OF_REFERENCE_UID, u.frame_of_reference);
    expect_text(ds, DICOM_TAG_PATIENT_ID, "ONFH-P0001");
    expect_text(ds, DICOM_TAG_PATIENT_NAME, "SYNTH^P0001");
    expect_text(ds, DICOM_TAG_PATIENT_BIRTH_DATE, "19700101");
    expect_text(ds, DICOM_TAG_PATIENT_SEX, "F");
    expect_text(ds, DICOM_TAG_STUDY_DATE, "20250314");
    expect_text(ds, DICOM_TAG_ACQUISITION_DATE, "20250314");
    expect_text(ds, DICOM_TAG_MODALITY, "MR");
    expect_text(ds, DICOM_TAG_MANUFACTURER, "ONFH");
    expect_text(ds, DICOM_TAG_SERIES_DESCRIPTION, "COR T1 SE HIP");
    expect_text(ds, DICOM_TAG_IMAGE_POSITION_PATIENT, "-120.5\\13.75\\95");
    expect_text(ds, DICOM_TAG_IMAGE_ORIENTATION_PATIENT, "1\\0\\0\\0\\0\\-1");
    expect_text(ds, DICOM_TAG_PIXEL_SPACING, "0.7\\0.8");
    expect_text(ds, DICOM_TAG_SLICE_THICKNESS, "3");
    expect_text(ds, DICOM_TAG_SPACING_BETWEEN_SLICES, "3.5");
    expect_us(ds, DICOM_TAG_ROWS, SAMPLE_ROWS);
    expect_us(ds, DICOM_TAG_COLUMNS, SAMPLE_COLUMNS);
    expect_us(ds, DICOM_TAG_SAMPLES_PER_PIXEL, 1);
    expect_text(ds, DICOM_TAG_PHOTOMETRIC_INTERPRETATION, "MONOCHROME2");
    expect_us(ds, DICOM_TAG_BITS_ALLOCATED, 16);
    expect_us(ds, DICOM_TAG_BITS_STORED, 12);
    expect_us(ds, DICOM_TAG_HIGH_BIT, 11);
    expect_us(ds, DICOM_TAG_PIXEL_REPRESENTATION, 0);
    expect_text(ds, DICOM_TAG_RESCALE_SLOPE, "2.5");
    expect_text(ds, DICOM_TAG_RESCALE_INTERCEPT, "-10");
    expect_text(ds, DICOM_TAG_WINDOW_CENTER, "1200");
    expect_text(ds, DICOM_TAG_WINDOW_WIDTH, "2400");
    expect_text(ds, DICOM_TAG_INSTANCE_NUMBER, "2");
    expect_text(ds, DICOM_TAG_SERIES_NUMBER, "3");
    expect_text(ds, DICOM_TAG_SCANNING_SEQUENCE, "SE");
    expect_text(ds, DICOM_TAG_SEQUENCE_VARIANT, "SK\\SP");
    expect_text(ds, DICOM_TAG_SCAN_OPTIONS, "FS");
    expect_text(ds, DICOM_TAG_MR_ACQUISITION_TYPE, "2D");
    expect_text(ds, DICOM_TAG_REPETITION_TIME, "600");
    expect_text(ds, DICOM_TAG_ECHO_TIME, "12");
    expect_text(ds, DICOM_TAG_ECHO_TRAIN_LENGTH, "1");
    expect_text(ds, DICOM_TAG_PATIENT_POSITION, "HFS");
    expect_text(ds, DICOM_TAG_BODY_PART_EXAMINED, "HIP");
    expect_text(ds, DICOM_TAG_LATERALITY, "R");
    expect_text(ds, DICOM_TAG_IMAGE_TYPE, "ORIGINAL\\PRIMARY\\OTHER");
    expect_text(ds, DICOM_TAG_REFERRING_PHYSICIAN_NAME, "");
    expect_text(ds, DICOM_TAG_POSITION_REFERENCE_INDICATOR, "");
    assert_null(dicom_find(ds, DICOM_TAG(0x0018, 0x0082))); /* no IR, no InversionTime */
    const DicomElement *px = dicom_find(ds, DICOM_TAG_PIXEL_DATA);
    assert_int_equal(px->vr, DICOM_VR_OW);
    assert_int_equal(px->length, 2 * SAMPLE_ROWS * SAMPLE_COLUMNS);
    for (int r = 0; r < SAMPLE_ROWS; r++)
        for (int c = 0; c < SAMPLE_COLUMNS; c++)
            assert_int_equal(dicom__le16(px->value + 2 * (r * SAMPLE_COLUMNS + c)),
                             sample_pixel(r, c));
    dicom_dataset_free(ds);

    /* Defaults: both hips, so Laterality is present but empty. */
    DicomMrImage d;
    dicom_mr_defaults(&d);
    d.study_uid = d.series_uid = d.sop_instance_uid = d.frame_of_reference_uid = "1.2.3";
    d.rows = d.columns = 1;
    d.pixels = sample_pixels;
    assert_int_equal(dicom_mr_image_new(&d, &ds, &e), ERR_OK);
    expect_text(ds, DICOM_TAG_LATERALITY, "");
    expect_text(ds, DICOM_TAG_BODY_PART_EXAMINED, "HIP");
    expect_text(ds, DICOM_TAG_SEQUENCE_VARIANT, "NONE");
    expect_text(ds, DICOM_TAG_PATIENT_NAME, "");
    dicom_dataset_free(ds);

    /* Inversion recovery adds InversionTime. */
    p.scanning_sequence = "IR\\SE";
    p.inversion_time_ms = 150;
    assert_int_equal(dicom_mr_image_new(&p, &ds, &e), ERR_OK);
    expect_text(ds, DICOM_TAG(0x0018, 0x0082), "150");
    dicom_dataset_free(ds);
}

static void test_mr_image_refuses_bad_parameters(void **state)
{
    (void)state;
    DicomDataset *ds = (DicomDataset *)1;
    Err e = {0};
    SampleUids u;
    DicomMrImage p;
    sample_params(&p, &u, 1);
    p.image_orientation[5] = -0.9;
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "orthogonal unit vectors");
    assert_null(ds);
    sample_params(&p, &u, 1);
    p.study_uid = NULL;
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "study_uid is required");
    p.study_uid = "1.2.03";
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "leading zero");
    sample_params(&p, &u, 1);
    sample_pixels[5 * SAMPLE_COLUMNS + 9] = 4096;
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "row 5, column 9");
    sample_params(&p, &u, 1);
    p.pixel_spacing[1] = 0;
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "pixel spacing");
    sample_params(&p, &u, 1);
    p.patient_sex = "female";
    expect_refused(dicom_mr_image_new(&p, &ds, &e), &e, "(0010,0040) PatientSex");
    assert_null(ds);
}

// ---------------------------------------------------------------------------------------------
// Allocation failures

typedef int (*Step)(void *ctx, Err *e);

/* Runs step with the n-th allocation failing, for n = 1, 2, ... until it succeeds: each failure
 * must return ERR_NOMEM and leave the bytes in use where they were. Returns how many
 * allocations the step needs. */
static long fail_each_allocation(Step step, void *ctx, void (*cleanup)(void *ctx))
{
    size_t base = mem_bytes_in_use();
    for (long n = 1; n < 100000; n++) {
        Err e = {0};
        long injected = mem_failures_injected();
        mem_fail_at(n);
        int rc = step(ctx, &e);
        mem_fail_at(0);
        if (mem_failures_injected() == injected) {
            assert_int_equal(rc, ERR_OK); /* no failure injected: it must have worked */
            cleanup(ctx);
            assert_int_equal(mem_bytes_in_use(), base);
            return n - 1;
        }
        if (rc != ERR_NOMEM) {
            print_error("allocation %ld failed: rc %d (%s), message \"%s\"\n", n, rc, err_name(rc),
                        e.msg);
            fail();
        }
        assert_true(strlen(e.msg) > 0);
        if (mem_bytes_in_use() != base) {
            print_error("allocation %ld failed: %zu bytes leaked\n", n, mem_bytes_in_use() - base);
            fail();
        }
    }
    fail_msg("never succeeded");
    return 0;
}

typedef struct BuildCtx {
    int extras;
    DicomDataset *ds;
} BuildCtx;

static int step_build(void *ctx, Err *e)
{
    BuildCtx *c = ctx;
    return build_sample(1, c->extras, &c->ds, e);
}

static void cleanup_build(void *ctx)
{
    BuildCtx *c = ctx;
    dicom_dataset_free(c->ds);
    c->ds = NULL;
}

typedef struct WriteCtx {
    const DicomDataset *ds;
    DicomWriteOptions opt;
    uint8_t *data;
    size_t len;
} WriteCtx;

static int step_write(void *ctx, Err *e)
{
    WriteCtx *c = ctx;
    int rc = dicom_write_mem(c->ds, &c->opt, &c->data, &c->len, e);
    if (rc)
        assert_null(c->data);
    return rc;
}

static void cleanup_write(void *ctx)
{
    WriteCtx *c = ctx;
    mem_free(c->data);
    c->data = NULL;
}

static void test_allocation_failures_unwind(void **state)
{
    (void)state;
    BuildCtx b = {0};
    long needed = fail_each_allocation(step_build, &b, cleanup_build);
    assert_true(needed > 50);
    b.extras = 1;
    fail_each_allocation(step_build, &b, cleanup_build);

    Err e = {0};
    DicomDataset *ds;
    DicomDataset *mf;
    assert_int_equal(build_sample(1, 1, &ds, &e), ERR_OK);
    assert_int_equal(build_multiframe(8, &mf, &e), ERR_OK);
    for (int t = 0; t < DICOM_TS_COUNT; t++)
        for (int undef = 0; undef <= 1; undef++)
            for (int form = 0; form <= 1; form++) {
                WriteCtx w = {.ds = ds, .opt = {t, form, undef}};
                assert_true(fail_each_allocation(step_write, &w, cleanup_write) >= 1);
                w.ds = mf;
                fail_each_allocation(step_write, &w, cleanup_write);
            }
    dicom_dataset_free(ds);
    dicom_dataset_free(mf);

    /* A failed replacement leaves the old value in place. */
    ds = new_dataset();
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, "OLD", NULL), 0);
    mem_fail_at(1);
    assert_int_equal(dicom_set_str(ds, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, "NEW", &e), ERR_NOMEM);
    mem_fail_at(0);
    expect_text(ds, DICOM_TAG_PATIENT_ID, "OLD");
    DicomDataset *item;
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, NULL), 0);
    mem_fail_at(2); /* the item is allocated, growing the item array fails */
    assert_int_equal(dicom_add_item(ds, DICOM_TAG(0x0040, 0x0275), &item, &e), ERR_NOMEM);
    mem_fail_at(0);
    assert_null(item);
    assert_int_equal(dicom_find(ds, DICOM_TAG(0x0040, 0x0275))->n_items, 1);
    dicom_dataset_free(ds);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--emit") == 0)
        return emit(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dictionary_sorted_and_vr_forms),
        cmocka_unit_test(test_uid_deterministic_and_valid),
        cmocka_unit_test(test_uid_check),
        cmocka_unit_test(test_meta_group_layout),
        cmocka_unit_test(test_explicit_le_vr_forms_and_padding),
        cmocka_unit_test(test_implicit_le_layout),
        cmocka_unit_test(test_explicit_be_swaps_per_vr),
        cmocka_unit_test(test_sequences_defined_and_undefined),
        cmocka_unit_test(test_elements_sorted_whatever_the_set_order),
        cmocka_unit_test(test_setters_refuse_bad_values),
        cmocka_unit_test(test_string_formats),
        cmocka_unit_test(test_private_creator_blocks),
        cmocka_unit_test(test_rle_known_runs),
        cmocka_unit_test(test_rle_rows_and_16bit_segments),
        cmocka_unit_test(test_rle_encapsulation),
        cmocka_unit_test(test_deflate_round_trip),
        cmocka_unit_test(test_file_forms),
        cmocka_unit_test(test_meta_ts_uid_override),
        cmocka_unit_test(test_write_file),
        cmocka_unit_test(test_mr_image_attributes),
        cmocka_unit_test(test_mr_image_refuses_bad_parameters),
        cmocka_unit_test(test_allocation_failures_unwind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
