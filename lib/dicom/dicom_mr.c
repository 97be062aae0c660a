/* dicom_mr.c: one call that builds a complete MR Image Storage instance (see dicom.h).
 *
 * The attribute list follows the MR Image IOD (PS3.3 A.4) module by module, with every type 1
 * and type 2 attribute present (type 2 possibly empty) and the conditional ones the IOD needs
 * for a plain 2D MR slice: PatientPosition (2C, required for MR without a Patient Orientation
 * Code Sequence), Laterality (2C, the hip is a paired body part), ContentDate and ContentTime
 * (2C, the images of a series are temporally related), InversionTime (2C, when
 * ScanningSequence has IR), WindowCenter/Width (VOI LUT). Rescale Slope and Intercept are not
 * part of the MR IOD; they are written because the issue asks for them and because real MR
 * files carry them (Philips), so the reader must apply them: dciodvfy reports them as a
 * warning, not an error. tests/integration/dicom_readers.sh runs dciodvfy on the output.
 *
 * The parameters are checked first: a synthetic cohort writes thousands of files, and a bad
 * orientation or an out-of-range pixel is best refused with a message than found by a reader. */
#include <math.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"
#include "lib/util/mem.h"

void dicom_mr_defaults(DicomMrImage *p)
{
    memset(p, 0, sizeof *p);
    p->image_type = "ORIGINAL\\PRIMARY\\OTHER";
    p->patient_position = "HFS";
    p->body_part_examined = "HIP";
    p->laterality = "";
    p->manufacturer = "ONFH";
    p->manufacturer_model_name = "SYNTH";
    p->series_number = 1;
    p->instance_number = 1;
    p->image_orientation[0] = 1.0; /* axial: rows run left to right, columns front to back */
    p->image_orientation[4] = 1.0;
    p->pixel_spacing[0] = 1.0;
    p->pixel_spacing[1] = 1.0;
    p->slice_thickness = 1.0;
    p->spacing_between_slices = 1.0;
    p->rescale_slope = 1.0;
    p->window_center = 2048.0;
    p->window_width = 4096.0;
    p->scanning_sequence = "SE";
    p->sequence_variant = "NONE";
    p->scan_options = "";
    p->mr_acquisition_type = "2D";
    p->repetition_time_ms = 500.0;
    p->echo_time_ms = 15.0;
    p->echo_train_length = 1;
    p->magnetic_field_strength_t = 3.0;
    p->imaging_frequency_mhz = 127.74; /* 1H Larmor frequency at 3 T */
    p->flip_angle_deg = 90.0;
    p->number_of_averages = 1.0;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Refuses parameters that would make a wrong or unreadable image. */
static int check_params(const DicomMrImage *p, Err *e)
{
    const char *uids[] = {p->study_uid, p->series_uid, p->sop_instance_uid,
                          p->frame_of_reference_uid};
    const char *names[] = {"study_uid", "series_uid", "sop_instance_uid", "frame_of_reference_uid"};
    for (int i = 0; i < 4; i++) {
        if (!uids[i])
            return err_set(e, ERR_FORMAT, "dicom: MR image: %s is required", names[i]);
        int rc = dicom_uid_check(uids[i], e);
        if (rc)
            return e ? err_prefix(e, "dicom: MR image: %s: ", names[i]) : rc;
    }
    if (!p->pixels || p->rows == 0 || p->columns == 0)
        return err_set(e, ERR_FORMAT, "dicom: MR image: pixels, rows and columns are required");
    if (!(p->pixel_spacing[0] > 0) || !(p->pixel_spacing[1] > 0))
        return err_set(e, ERR_FORMAT, "dicom: MR image: pixel spacing must be positive");
    const double *o = p->image_orientation;
    double rn = sqrt(o[0] * o[0] + o[1] * o[1] + o[2] * o[2]);
    double cn = sqrt(o[3] * o[3] + o[4] * o[4] + o[5] * o[5]);
    double dot = o[0] * o[3] + o[1] * o[4] + o[2] * o[5];
    if (fabs(rn - 1) > 1e-4 || fabs(cn - 1) > 1e-4 || fabs(dot) > 1e-4)
        return err_set(
            e, ERR_FORMAT,
            "dicom: MR image: orientation rows (|r| = %g) and columns (|c| = %g) must be "
            "orthogonal unit vectors (r.c = %g)",
            rn, cn, dot);
    if (p->rescale_slope == 0)
        return err_set(e, ERR_FORMAT, "dicom: MR image: rescale slope is 0");
    size_t n = (size_t)p->rows * p->columns;
    for (size_t i = 0; i < n; i++)
        if (p->pixels[i] > 4095)
            return err_set(e, ERR_FORMAT,
                           "dicom: MR image: pixel %zu (row %zu, column %zu) = %u exceeds the 12 "
                           "stored bits",
                           i, i / p->columns, i % p->columns, p->pixels[i]);
    return ERR_OK;
}

/* One attribute per line below; the first failure stops the rest. */
typedef struct Fill {
    DicomDataset *ds;
    Err *e;
    int rc;
} Fill;

static void str(Fill *f, uint32_t tag, uint16_t vr, const char *s)
{
    if (!f->rc)
        f->rc = dicom_set_str(f->ds, tag, vr, or_empty(s), f->e);
}

static void num(Fill *f, uint32_t tag, const double *v, size_t n)
{
    if (!f->rc)
        f->rc = dicom_set_ds(f->ds, tag, v, n, f->e);
}

static void num1(Fill *f, uint32_t tag, double v)
{
    num(f, tag, &v, 1);
}

static void intval(Fill *f, uint32_t tag, long v)
{
    if (!f->rc)
        f->rc = dicom_set_is(f->ds, tag, &v, 1, f->e);
}

static void us(Fill *f, uint32_t tag, uint16_t v)
{
    if (!f->rc)
        f->rc = dicom_set_us(f->ds, tag, &v, 1, f->e);
}

static void fill(Fill *f, const DicomMrImage *p)
{
    /* SOP Common */
    str(f, DICOM_TAG_SOP_CLASS_UID, DICOM_VR_UI, DICOM_SOP_CLASS_MR_IMAGE);
    str(f, DICOM_TAG_SOP_INSTANCE_UID, DICOM_VR_UI, p->sop_instance_uid);
    /* Patient */
    str(f, DICOM_TAG_PATIENT_NAME, DICOM_VR_PN, p->patient_name);
    str(f, DICOM_TAG_PATIENT_ID, DICOM_VR_LO, p->patient_id);
    str(f, DICOM_TAG_PATIENT_BIRTH_DATE, DICOM_VR_DA, p->patient_birth_date);
    str(f, DICOM_TAG_PATIENT_SEX, DICOM_VR_CS, p->patient_sex);
    /* General Study */
    str(f, DICOM_TAG_STUDY_INSTANCE_UID, DICOM_VR_UI, p->study_uid);
    str(f, DICOM_TAG_STUDY_DATE, DICOM_VR_DA, p->study_date);
    str(f, DICOM_TAG_STUDY_TIME, DICOM_VR_TM, p->study_time);
    str(f, DICOM_TAG_REFERRING_PHYSICIAN_NAME, DICOM_VR_PN, "");
    str(f, DICOM_TAG_STUDY_ID, DICOM_VR_SH, p->study_id);
    str(f, DICOM_TAG_ACCESSION_NUMBER, DICOM_VR_SH, p->accession_number);
    if (p->study_description && *p->study_description)
        str(f, DICOM_TAG_STUDY_DESCRIPTION, DICOM_VR_LO, p->study_description);
    /* General Series */
    str(f, DICOM_TAG_MODALITY, DICOM_VR_CS, "MR");
    str(f, DICOM_TAG_SERIES_INSTANCE_UID, DICOM_VR_UI, p->series_uid);
    intval(f, DICOM_TAG_SERIES_NUMBER, p->series_number);
    str(f, DICOM_TAG_SERIES_DATE, DICOM_VR_DA, p->study_date);
    str(f, DICOM_TAG_SERIES_TIME, DICOM_VR_TM, p->study_time);
    str(f, DICOM_TAG_SERIES_DESCRIPTION, DICOM_VR_LO, p->series_description);
    if (p->protocol_name && *p->protocol_name)
        str(f, DICOM_TAG_PROTOCOL_NAME, DICOM_VR_LO, p->protocol_name);
    str(f, DICOM_TAG_PATIENT_POSITION, DICOM_VR_CS, p->patient_position);
    if (p->body_part_examined && *p->body_part_examined)
        str(f, DICOM_TAG_BODY_PART_EXAMINED, DICOM_VR_CS, p->body_part_examined);
    str(f, DICOM_TAG_LATERALITY, DICOM_VR_CS, p->laterality);
    /* Frame of Reference */
    str(f, DICOM_TAG_FRAME_OF_REFERENCE_UID, DICOM_VR_UI, p->frame_of_reference_uid);
    str(f, DICOM_TAG_POSITION_REFERENCE_INDICATOR, DICOM_VR_LO, "");
    /* General Equipment */
    str(f, DICOM_TAG_MANUFACTURER, DICOM_VR_LO, p->manufacturer);
    str(f, DICOM_TAG_MANUFACTURER_MODEL_NAME, DICOM_VR_LO, p->manufacturer_model_name);
    /* General Acquisition and General Image */
    str(f, DICOM_TAG_ACQUISITION_DATE, DICOM_VR_DA, p->acquisition_date);
    str(f, DICOM_TAG_ACQUISITION_TIME, DICOM_VR_TM, p->acquisition_time);
    str(f, DICOM_TAG_CONTENT_DATE, DICOM_VR_DA, p->study_date);
    str(f, DICOM_TAG_CONTENT_TIME, DICOM_VR_TM, p->study_time);
    intval(f, DICOM_TAG_INSTANCE_NUMBER, p->instance_number);
    str(f, DICOM_TAG_IMAGE_TYPE, DICOM_VR_CS, p->image_type);
    /* Image Plane */
    num(f, DICOM_TAG_IMAGE_POSITION_PATIENT, p->image_position, 3);
    num(f, DICOM_TAG_IMAGE_ORIENTATION_PATIENT, p->image_orientation, 6);
    num(f, DICOM_TAG_PIXEL_SPACING, p->pixel_spacing, 2);
    num1(f, DICOM_TAG_SLICE_THICKNESS, p->slice_thickness);
    num1(f, DICOM_TAG_SPACING_BETWEEN_SLICES, p->spacing_between_slices);
    /* Image Pixel */
    us(f, DICOM_TAG_SAMPLES_PER_PIXEL, 1);
    str(f, DICOM_TAG_PHOTOMETRIC_INTERPRETATION, DICOM_VR_CS, "MONOCHROME2");
    us(f, DICOM_TAG_ROWS, p->rows);
    us(f, DICOM_TAG_COLUMNS, p->columns);
    us(f, DICOM_TAG_BITS_ALLOCATED, 16);
    us(f, DICOM_TAG_BITS_STORED, 12);
    us(f, DICOM_TAG_HIGH_BIT, 11);
    us(f, DICOM_TAG_PIXEL_REPRESENTATION, 0);
    if (!f->rc)
        f->rc = dicom_set_pixels16(f->ds, p->pixels, (size_t)p->rows * p->columns, f->e);
    /* MR Image */
    str(f, DICOM_TAG_SCANNING_SEQUENCE, DICOM_VR_CS, p->scanning_sequence);
    str(f, DICOM_TAG_SEQUENCE_VARIANT, DICOM_VR_CS, p->sequence_variant);
    str(f, DICOM_TAG_SCAN_OPTIONS, DICOM_VR_CS, p->scan_options);
    str(f, DICOM_TAG_MR_ACQUISITION_TYPE, DICOM_VR_CS, p->mr_acquisition_type);
    num1(f, DICOM_TAG_REPETITION_TIME, p->repetition_time_ms);
    num1(f, DICOM_TAG_ECHO_TIME, p->echo_time_ms);
    if (p->scanning_sequence && strstr(p->scanning_sequence, "IR"))
        num1(f, DICOM_TAG(0x0018, 0x0082), p->inversion_time_ms);
    intval(f, DICOM_TAG_ECHO_TRAIN_LENGTH, p->echo_train_length);
    num1(f, DICOM_TAG_NUMBER_OF_AVERAGES, p->number_of_averages);
    num1(f, DICOM_TAG_IMAGING_FREQUENCY, p->imaging_frequency_mhz);
    num1(f, DICOM_TAG_MAGNETIC_FIELD_STRENGTH, p->magnetic_field_strength_t);
    num1(f, DICOM_TAG_FLIP_ANGLE, p->flip_angle_deg);
    /* VOI LUT and rescale */
    num1(f, DICOM_TAG_WINDOW_CENTER, p->window_center);
    num1(f, DICOM_TAG_WINDOW_WIDTH, p->window_width);
    num1(f, DICOM_TAG_RESCALE_INTERCEPT, p->rescale_intercept);
    num1(f, DICOM_TAG_RESCALE_SLOPE, p->rescale_slope);
}

int dicom_mr_image_new(const DicomMrImage *p, DicomDataset **out, Err *e)
{
    *out = NULL;
    int rc = check_params(p, e);
    if (rc)
        return rc;
    DicomDataset *ds;
    rc = dicom_dataset_new(&ds, e);
    if (rc)
        return rc;
    Fill f = {ds, e, 0};
    fill(&f, p);
    if (f.rc) {
        dicom_dataset_free(ds);
        return e ? err_prefix(e, "MR image: ") : f.rc;
    }
    *out = ds;
    return ERR_OK;
}
