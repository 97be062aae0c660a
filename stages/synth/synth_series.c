/* synth_series.c: one patient's images as DICOM series, and the rows that describe them.
 *
 * Per visit: a coronal T1 spin-echo series (the slices the CNNs classify) and an axial 3D
 * vessel series of the grafted (else the more affected) femoral head. Identity (UIDs, names,
 * dates) is a pure function of (seed, patient, visit, slice): UIDs come from
 * dicom_uid_from_seed("onfh-synth/<seed>/..."). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "stages/synth/synth_internal.h"
#include "stages/synth/synth_streams.h"

const SiteInfo synth_sites[COHORT_MAX_SITES] = {
    {"SIEMENS", "Prisma", 3.0, 2400, 1.00},
    {"GE MEDICAL SYSTEMS", "SIGNA Premier", 3.0, 2000, 0.85},
    {"Philips Medical Systems", "Ingenia", 1.5, 2800, 1.15},
    {"Canon Medical Systems", "Vantage Orian", 1.5, 1900, 0.90},
    {"United Imaging Healthcare", "uMR 790", 3.0, 2600, 1.05},
    {"SIEMENS", "MAGNETOM Aera", 1.5, 2200, 0.80},
    {"GE MEDICAL SYSTEMS", "Optima MR450w", 1.5, 2100, 0.95},
    {"Philips Medical Systems", "Achieva dStream", 3.0, 3000, 1.10},
};

/* Synthetic but realistic-looking names, so that a leak of PHI into outputs is visible. */
static const char *const family_names[] = {"WANG",   "LI",    "ZHANG",  "LIU",  "CHEN",  "YANG",
                                           "HUANG",  "ZHAO",  "WU",     "ZHOU", "SMITH", "GARCIA",
                                           "MULLER", "ROSSI", "TANAKA", "KIM"};
static const char *const given_names[] = {"WEI",  "FANG", "JING",  "MIN",   "LEI",  "JUN",
                                          "ANNA", "JOHN", "MARIA", "KENJI", "JIHO", "LUCA"};

/* The date `days` after 2018-01-01, as YYYYMMDD. */
static void date_from_days(int days, char out[9])
{
    time_t t = (time_t)1514764800 + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 9, "%Y%m%d", &tm);
}

/* The UID of thing `what` ("study", "series", "sop", "frame") of patient i, visit v, number k. */
static void uid(const SynthCtx *c, char out[DICOM_UID_MAX + 1], const char *what, int i, int v,
                int k)
{
    char seed_text[256];
    snprintf(seed_text, sizeof seed_text, "onfh-synth/%llu/%s/%d/%d/%d",
             (unsigned long long)c->seed, what, i, v, k);
    dicom_uid_from_seed(seed_text, out);
}

void synth_series_identity(const SynthCtx *c, const CohortPatient *pt, int visit, int is_vessel,
                           int meaningless, SeriesOut *so)
{
    memset(so, 0, sizeof *so);
    so->pt = pt;
    so->visit = visit;
    so->is_vessel = is_vessel;
    so->meaningless = meaningless;
    int i = pt->index;
    snprintf(so->patient_id, sizeof so->patient_id, "S%dP%04d", pt->site + 1, i + 1);
    snprintf(so->patient_name, sizeof so->patient_name, "%s^%s",
             family_names[(i * 7 + 3) % (int)(sizeof family_names / sizeof *family_names)],
             given_names[(i * 5 + 1) % (int)(sizeof given_names / sizeof *given_names)]);
    uid(c, so->study_uid, "study", i, visit, 0);
    uid(c, so->series_uid, "series", i, visit, is_vessel);
    date_from_days(pt->baseline_days + pt->visits[visit].day, so->date);
    Philox rng;
    philox_init(&rng, c->seed, PHILOX_SYNTH, synth_stream(i, SYNTH_STREAM_FILE, visit, is_vessel));
    so->ts = c->encodings[philox_below(&rng, (uint32_t)c->n_encodings)];
    if (meaningless) {
        /* A folder tree an anonymiser or a USB export might leave: hex names, no extension. */
        uint32_t a = philox_u32(&rng), b = philox_u32(&rng), d = philox_u32(&rng);
        snprintf(so->dir, sizeof so->dir, "%s/misc/%08x/%08x/%08x", c->raw, a, b, d);
    } else {
        snprintf(so->dir, sizeof so->dir, "%s/site%d/%s/%s/%s", c->raw, pt->site + 1,
                 so->patient_id, so->date, is_vessel ? "07_MRA_FEMORAL_HEAD" : "03_COR_T1_SE");
    }
}

/* ---------------------------------------------------------------------------------------------
 * Geometry. */

void synth_t1_geometry(const SynthCtx *c, const CohortPatient *pt, int visit, int slice,
                       SynthSlice *sl, SynthScanner *sc)
{
    const SiteInfo *site = &synth_sites[pt->site];
    int m = c->matrix[pt->site % c->n_matrix];
    double px = c->fov_mm / m;
    sl->rows = m;
    sl->columns = m;
    sl->spacing[0] = px;
    sl->spacing[1] = px;
    /* Coronal: rows run patient-left (+x), columns run down (-z); heads sit a little below the
     * middle of the field, with the iliac crests in view. */
    sl->position[0] = -0.5 * c->fov_mm + 0.5 * px;
    sl->position[1] = cohort_slice_y(pt, visit, slice);
    sl->position[2] = 0.42 * c->fov_mm - 0.5 * px;
    sl->thickness = pt->spacing;
    sc->snr = c->snr * site->snr_factor;
    sc->scale = site->scale;
    sc->bias_amplitude = 0.12;
    sc->motion_mm = 0.3;
    sc->supersample = c->supersample;
}

/* The vessel volume: axial, centred on the femoral head of `hip`, voxel (0,0,0) first. */
static void vessel_origin(const SynthCtx *c, const CohortPatient *pt, double origin[3])
{
    int hip = pt->treated_hip >= 0 ? pt->treated_hip : pt->primary_hip;
    const double *head = pt->visits[0].anatomy.hip[hip].head_center;
    double v = c->vessel_voxel_mm;
    origin[0] = head[0] - 0.5 * c->vessel_matrix * v + 0.5 * v;
    origin[1] = head[1] - 0.5 * c->vessel_matrix * v + 0.5 * v;
    origin[2] = head[2] - 0.5 * c->vessel_slices * v + 0.5 * v;
}

/* ---------------------------------------------------------------------------------------------
 * Datasets and files. */

int synth_slice_dataset(const SynthCtx *c, const SeriesOut *so, int slice, const uint16_t *pixels,
                        DicomDataset **out, Err *e)
{
    const CohortPatient *pt = so->pt;
    const SiteInfo *site = &synth_sites[pt->site];
    int i = pt->index, v = so->visit;
    char sop[DICOM_UID_MAX + 1], frame[DICOM_UID_MAX + 1], birth[9], time_text[7];
    uid(c, sop, "sop", i, v * 2 + so->is_vessel, slice);
    uid(c, frame, "frame", i, v, 0);
    snprintf(birth, sizeof birth, "%04d%02d%02d", pt->birth_year, 1 + i * 7 % 12, 1 + i * 13 % 28);
    snprintf(time_text, sizeof time_text, "%02d%02d%02d", 8 + i % 9, (v * 17 + 5) % 60,
             so->is_vessel ? 40 : 10);
    char study_id[16], accession[16];
    snprintf(study_id, sizeof study_id, "%d", v + 1);
    snprintf(accession, sizeof accession, "A%07d", i * COHORT_MAX_VISITS + v + 1);
    char sex[2] = {(char)pt->sex, 0};

    DicomMrImage m;
    dicom_mr_defaults(&m);
    m.patient_name = so->patient_name;
    m.patient_id = so->patient_id;
    m.patient_birth_date = birth;
    m.patient_sex = sex;
    m.study_uid = so->study_uid;
    m.series_uid = so->series_uid;
    m.sop_instance_uid = sop;
    m.frame_of_reference_uid = frame;
    m.study_date = so->date;
    m.study_time = time_text;
    m.acquisition_date = so->date;
    m.acquisition_time = time_text;
    m.study_id = study_id;
    m.accession_number = accession;
    m.study_description = "MRI HIPS BILATERAL";
    m.manufacturer = site->manufacturer;
    m.manufacturer_model_name = site->model;
    m.magnetic_field_strength_t = site->field_t;
    m.imaging_frequency_mhz = 42.577 * site->field_t;
    m.instance_number = slice + 1;
    m.rescale_slope = 1;
    m.rescale_intercept = 0;
    if (!so->is_vessel) {
        SynthSlice sl;
        SynthScanner sc;
        synth_t1_geometry(c, pt, v, slice, &sl, &sc);
        m.series_description = "COR T1 SE";
        m.protocol_name = "HIP_COR_T1";
        m.series_number = 3;
        memcpy(m.image_position, sl.position, sizeof m.image_position);
        const double iop[6] = {1, 0, 0, 0, 0, -1};
        memcpy(m.image_orientation, iop, sizeof iop);
        m.pixel_spacing[0] = sl.spacing[0];
        m.pixel_spacing[1] = sl.spacing[1];
        m.slice_thickness = sl.thickness;
        m.spacing_between_slices = pt->spacing;
        m.rows = (uint16_t)sl.rows;
        m.columns = (uint16_t)sl.columns;
        m.window_center = 0.5 * site->scale;
        m.window_width = site->scale;
    } else {
        double origin[3], vx = c->vessel_voxel_mm;
        vessel_origin(c, pt, origin);
        m.series_description = "MRA FEMORAL HEAD 3D TOF";
        m.protocol_name = "HIP_MRA_TOF";
        m.series_number = 7;
        m.scanning_sequence = "GR";
        m.sequence_variant = "SP";
        m.mr_acquisition_type = "3D";
        m.repetition_time_ms = 23;
        m.echo_time_ms = 3.6;
        m.echo_train_length = 1;
        m.flip_angle_deg = 18;
        m.image_position[0] = origin[0];
        m.image_position[1] = origin[1];
        m.image_position[2] = origin[2] + slice * vx;
        const double iop[6] = {1, 0, 0, 0, 1, 0};
        memcpy(m.image_orientation, iop, sizeof iop);
        m.pixel_spacing[0] = vx;
        m.pixel_spacing[1] = vx;
        m.slice_thickness = vx;
        m.spacing_between_slices = vx;
        m.rows = (uint16_t)c->vessel_matrix;
        m.columns = (uint16_t)c->vessel_matrix;
        m.window_center = 0.45 * site->scale;
        m.window_width = 0.9 * site->scale;
    }
    m.pixels = pixels;
    int rc = dicom_mr_image_new(&m, out, e);
    if (rc)
        return err_prefix(e, "%s slice %d: ", so->series_uid, slice + 1);
    /* A private block on every file, and on the sites with an even index a nested private
     * sequence, so readers meet both in ordinary data, not only in test files. */
    uint32_t tag;
    if ((rc = dicom_private_tag(*out, 0x0029, "ONFH SYNTH", 0x10, &tag, e)) ||
        (rc = dicom_set_str(*out, tag, DICOM_VR_LO, "onfh synth 1", e)))
        goto fail;
    if (pt->site % 2 == 0) {
        DicomDataset *item, *inner;
        uint32_t seq, nested, leaf;
        if ((rc = dicom_private_tag(*out, 0x0029, "ONFH SYNTH", 0x20, &seq, e)) ||
            (rc = dicom_add_item(*out, seq, &item, e)) ||
            (rc = dicom_private_tag(item, 0x0029, "ONFH SYNTH", 0x21, &nested, e)) ||
            (rc = dicom_add_item(item, nested, &inner, e)) ||
            (rc = dicom_private_tag(inner, 0x0029, "ONFH SYNTH", 0x22, &leaf, e)) ||
            (rc = dicom_set_str(inner, leaf, DICOM_VR_LO, so->is_vessel ? "MRA" : "T1", e)))
            goto fail;
    }
    return 0;
fail:
    dicom_dataset_free(*out);
    *out = NULL;
    return rc;
}

int synth_write_dataset(SynthCtx *c, const char *path, const DicomDataset *ds,
                        DicomTransferSyntax ts, Err *e)
{
    DicomWriteOptions opt = {.ts = ts, .form = DICOM_FILE_PART10, .undefined_length = ts % 2};
    uint8_t *data;
    size_t len;
    int rc = dicom_write_mem(ds, &opt, &data, &len, e);
    if (!rc)
        rc = file_write(path, data, len, e);
    if (!rc) {
        c->files++;
        c->bytes += len;
    }
    mem_free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * A patient. */

int synth_vessel_trees(const SynthCtx *c, const CohortPatient *pt, VesselTree *pre,
                       VesselTree *post, Err *e)
{
    Philox rng;
    philox_init(&rng, c->seed, PHILOX_SYNTH, synth_stream(pt->index, SYNTH_STREAM_TREE, 0, 0));
    VesselParams vp = {{c->vessel_matrix * c->vessel_voxel_mm,
                        c->vessel_matrix * c->vessel_voxel_mm,
                        c->vessel_slices * c->vessel_voxel_mm},
                       pt->vessel_branches_pre,
                       COHORT_MIN_BRANCH_MM,
                       0.8};
    int rc = vessel_tree_draw(pre, &vp, &rng, e);
    if (rc)
        return rc;
    rc = vessel_tree_copy(post, pre, e);
    if (!rc && pt->vessel_branches_add + pt->vessel_length_add_mm > 0)
        rc =
            vessel_tree_grow(post, pt->vessel_branches_add, pt->vessel_length_add_mm, &vp, &rng, e);
    if (rc) {
        vessel_tree_free(pre);
        vessel_tree_free(post);
    }
    return rc;
}

/* SHA-256 of pixels as little-endian uint16 in row order: what a reader's decoded pixel array
 * must hash to, whatever the transfer syntax of the file. */
static void pixels_sha256(const uint16_t *pixels, size_t n, char hex[65])
{
    Sha256 h;
    uint8_t digest[32], le[512];
    sha256_init(&h);
    for (size_t k = 0; k < n;) {
        size_t chunk = 0;
        for (; chunk < sizeof le / 2 && k < n; chunk++, k++) {
            le[2 * chunk] = (uint8_t)pixels[k];
            le[2 * chunk + 1] = (uint8_t)(pixels[k] >> 8);
        }
        sha256_update(&h, le, 2 * chunk);
    }
    sha256_final(&h, digest);
    sha256_to_hex(digest, hex);
}

static const char *hip_name(int h)
{
    return h == 0 ? "R" : "L";
}

/* Coronal T1 series of one visit, with truth rows per slice and labels at baseline. */
static int write_t1_series(SynthCtx *c, const SeriesOut *so, Err *e)
{
    const CohortPatient *pt = so->pt;
    int v = so->visit, n = c->plan.params.slices, rc = 0;
    for (int s = 0; s < n && !rc; s++) {
        SynthSlice sl;
        SynthScanner sc;
        synth_t1_geometry(c, pt, v, s, &sl, &sc);
        const SynthAnatomy *a = &pt->visits[v].anatomy;
        anatomy_render(a, &sl, &sc, c->seed, synth_stream(pt->index, SYNTH_STREAM_T1, v, s),
                       c->pixels, c->mask);
        DicomDataset *ds;
        if ((rc = synth_slice_dataset(c, so, s, c->pixels, &ds, e)))
            break;
        char path[4600];
        if (so->meaningless)
            snprintf(path, sizeof path, "%s/%08x", so->dir, (unsigned)(s * 2654435761u));
        else
            snprintf(path, sizeof path, "%s/IM%04d.dcm", so->dir, s + 1);
        rc = synth_write_dataset(c, path, ds, so->ts, e);
        const DicomElement *sop = dicom_find(ds, DICOM_TAG_SOP_INSTANCE_UID);
        char sop_uid[DICOM_UID_MAX + 1] = "";
        if (sop)
            snprintf(sop_uid, sizeof sop_uid, "%.*s", (int)sop->length, (const char *)sop->value);
        dicom_dataset_free(ds);
        if (rc)
            break;

        /* Lesion area per hip from the mask: the right hip is on the image's left half. */
        long area[2] = {0, 0};
        for (int r = 0; r < sl.rows; r++)
            for (int col = 0; col < sl.columns; col++)
                area[col >= sl.columns / 2] += c->mask[(size_t)r * sl.columns + col];
        int cuts_head = anatomy_plane_cuts_head(a, 0, sl.position[1]) ||
                        anatomy_plane_cuts_head(a, 1, sl.position[1]);
        int lesion[2] = {anatomy_plane_cuts_lesion(a, 0, sl.position[1]),
                         anatomy_plane_cuts_lesion(a, 1, sl.position[1])};
        int labelled = v == 0 && cuts_head;
        const char *label = !labelled ? "" : lesion[0] || lesion[1] ? "lesion" : "normal";
        double px_area = sl.spacing[0] * sl.spacing[1];
        char pixels_hex[65];
        pixels_sha256(c->pixels, (size_t)sl.rows * sl.columns, pixels_hex);
        strbuf_printf(&c->slices, "%s,%d,%s,%s,%d,%.4f,%d,%d,%d,%.1f,%.1f,%d,%s,%s\n",
                      so->patient_id, v + 1, so->series_uid, sop_uid, s + 1, sl.position[1],
                      cuts_head, lesion[0], lesion[1], area[0] * px_area, area[1] * px_area,
                      labelled, label, pixels_hex);
        if (labelled)
            strbuf_printf(&c->labels, "%s,%s\n", sop_uid, label);
    }
    return rc;
}

static int write_vessel_series(SynthCtx *c, const SeriesOut *so, const VesselTree *tree, Err *e)
{
    const CohortPatient *pt = so->pt;
    int m = c->vessel_matrix, ns = c->vessel_slices, rc = 0;
    int dims[3] = {m, m, ns};
    double vox[3] = {c->vessel_voxel_mm, c->vessel_voxel_mm, c->vessel_voxel_mm};
    const SiteInfo *site = &synth_sites[pt->site];
    vessel_tree_render(tree, dims, vox, 1.2 * c->snr * site->snr_factor, 0.9 * site->scale, c->seed,
                       synth_stream(pt->index, SYNTH_STREAM_MRA, so->visit, 0), c->volume);
    for (int s = 0; s < ns && !rc; s++) {
        DicomDataset *ds;
        if ((rc = synth_slice_dataset(c, so, s, c->volume + (size_t)s * m * m, &ds, e)))
            break;
        char path[4600];
        if (so->meaningless)
            snprintf(path, sizeof path, "%s/%08x", so->dir, (unsigned)((s + 7) * 2246822519u));
        else
            snprintf(path, sizeof path, "%s/IM%04d.dcm", so->dir, s + 1);
        rc = synth_write_dataset(c, path, ds, so->ts, e);
        dicom_dataset_free(ds);
    }
    if (!rc) {
        char pixels_hex[65];
        pixels_sha256(c->volume, (size_t)m * m * ns, pixels_hex);
        strbuf_printf(&c->vessels, "%s,%d,%d,%s,%s,%d,%d,%.6f,%s\n", so->patient_id, so->visit + 1,
                      pt->visits[so->visit].day, so->series_uid,
                      hip_name(pt->treated_hip >= 0 ? pt->treated_hip : pt->primary_hip),
                      pt->visits[so->visit].post_graft, vessel_tree_branches(tree),
                      vessel_tree_length_mm(tree), pixels_hex);
    }
    return rc;
}

static void patient_rows(SynthCtx *c, const CohortPatient *pt, const char *patient_id)
{
    int last = pt->n_visits - 1;
    for (int v = 0; v < pt->n_visits; v++)
        for (int h = 0; h < 2; h++) {
            const char *outcome = !pt->affected[h]    ? "unaffected"
                                  : pt->progressed[h] ? "progressed"
                                                      : "stable";
            int treated = pt->treated_hip == h;
            char graft_day[16] = "";
            if (treated)
                snprintf(graft_day, sizeof graft_day, "%d", pt->graft_day);
            strbuf_printf(&c->clinical, "%s,%s,%d,%d,%s,%s,%d,%s\n", patient_id, hip_name(h), v + 1,
                          pt->visits[v].day, treated ? "vbg" : "none", graft_day,
                          treated && pt->visits[v].post_graft, outcome);
        }
    strbuf_printf(&c->patients, "%s,%d,%c,%d,%d,%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d\n", patient_id,
                  pt->site + 1, pt->sex, pt->birth_year, pt->affected[0] && pt->affected[1],
                  hip_name(pt->primary_hip), pt->treated_hip >= 0 ? hip_name(pt->treated_hip) : "",
                  pt->graft_day, pt->n_visits, pt->affected[0], pt->affected[1],
                  pt->visits[0].stage[0], pt->visits[0].stage[1], pt->visits[last].stage[0],
                  pt->visits[last].stage[1], pt->progressed[0], pt->progressed[1]);
}

int synth_write_patient(SynthCtx *c, const CohortPatient *pt, int n_relocated, Err *e)
{
    VesselTree pre = {0}, post = {0};
    int rc = synth_vessel_trees(c, pt, &pre, &post, e);
    if (rc)
        return rc;
    char patient_id[16] = "";
    for (int v = 0; v < pt->n_visits && !rc; v++)
        for (int kind = 0; kind < 2 && !rc; kind++) {
            /* The nested-names fault moves the last visits' vessel series, then T1 series. */
            int back = pt->n_visits - 1 - v;
            int meaningless = kind == 1 ? back < n_relocated : back + pt->n_visits < n_relocated;
            SeriesOut so;
            synth_series_identity(c, pt, v, kind, meaningless, &so);
            snprintf(patient_id, sizeof patient_id, "%s", so.patient_id);
            if ((rc = dir_create(so.dir, e)))
                break;
            rc = kind == 0
                     ? write_t1_series(c, &so, e)
                     : write_vessel_series(c, &so, pt->visits[v].post_graft ? &post : &pre, e);
            if (!rc && meaningless)
                strbuf_printf(&c->faults, "raw%s/,nested_names,ingest,%s series of visit %d\n",
                              so.dir + strlen(c->raw), kind ? "MRA" : "T1", v + 1);
        }
    if (!rc)
        patient_rows(c, pt, patient_id);
    vessel_tree_free(&pre);
    vessel_tree_free(&post);
    return rc;
}
