/* synth_faults.c: the faulty files a real archive holds, added on request (synth.fault_fraction),
 * each with the verdict ingest must reach, recorded in truth/faults.csv:
 *
 *   kind            what is written                                        verdict
 *   truncated       a slice file cut at 60% of its length                  skip:truncated
 *   garbage         random bytes named IM9nnn.dcm inside a series folder   skip:not_dicom
 *   non_dicom       a text file in the patient's folder                    skip:not_dicom
 *   missing_slice   a repeat of the baseline T1 series, one slice missing  qc:missing_instance
 *   duplicate_sop   a byte-identical copy of a slice in an export folder   skip:duplicate
 *   unsupported_ts  a slice whose meta names MPEG-2 as transfer syntax
 * skip:unsupported_transfer_syntax nested_names    a clean series in hex-named folders, no
 * extensions     ingest (synth_series.c)
 *
 * Faults are additions (or, for nested names, a relocation), never removals, so the clean
 * cohort keeps its exact counts. */
#include <stdio.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "stages/synth/synth_internal.h"
#include "stages/synth/synth_streams.h"

static const char *const kind_names[SYNTH_FAULT_KINDS] = {
    "truncated",     "garbage",        "non_dicom",   "missing_slice",
    "duplicate_sop", "unsupported_ts", "nested_names"};

/* Baseline T1 slice `slice` of pt as a dataset; with tag != NULL its series and SOP UIDs are
 * replaced by fault-specific ones ("fault/<f>/..."), so the copy is a new instance. */
static int baseline_slice(SynthCtx *c, const CohortPatient *pt, const SeriesOut *so, int slice,
                          int f, long series_number, DicomDataset **ds, Err *e)
{
    SynthSlice sl;
    SynthScanner sc;
    synth_t1_geometry(c, pt, 0, slice, &sl, &sc);
    anatomy_render(&pt->visits[0].anatomy, &sl, &sc, c->seed,
                   synth_stream(pt->index, SYNTH_STREAM_T1, 0, slice), c->pixels, c->mask);
    int rc = synth_slice_dataset(c, so, slice, c->pixels, ds, e);
    if (rc || f < 0)
        return rc;
    char text[200], series[DICOM_UID_MAX + 1], sop[DICOM_UID_MAX + 1];
    snprintf(text, sizeof text, "onfh-synth/%llu/fault/%d/series", (unsigned long long)c->seed, f);
    dicom_uid_from_seed(text, series);
    snprintf(text, sizeof text, "onfh-synth/%llu/fault/%d/sop/%d", (unsigned long long)c->seed, f,
             slice);
    dicom_uid_from_seed(text, sop);
    if ((rc = dicom_set_str(*ds, DICOM_TAG_SERIES_INSTANCE_UID, DICOM_VR_UI, series, e)) ||
        (rc = dicom_set_str(*ds, DICOM_TAG_SOP_INSTANCE_UID, DICOM_VR_UI, sop, e)) ||
        (rc = dicom_set_is(*ds, DICOM_TAG_SERIES_NUMBER, &series_number, 1, e))) {
        dicom_dataset_free(*ds);
        *ds = NULL;
    }
    return rc;
}

static int write_bytes(SynthCtx *c, const char *path, const void *data, size_t len, Err *e)
{
    char dir[4600];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    int rc = dir_create(dir, e);
    if (!rc)
        rc = file_write(path, data, len, e);
    if (!rc) {
        c->files++;
        c->bytes += len;
    }
    return rc;
}

/* The path relative to the run directory, as truth records it: "raw/...". */
static const char *rel(const SynthCtx *c, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "raw%s", path + strlen(c->raw));
    return out;
}

int synth_inject_fault(SynthCtx *c, const CohortPatient *pt, int f, Err *e)
{
    int kind = f % SYNTH_FAULT_KINDS, n = c->plan.params.slices, rc = 0;
    if (kind == FAULT_NESTED_NAMES)
        return 0; /* applied while writing the patient's series */
    SeriesOut so;
    synth_series_identity(c, pt, 0, 0, 0, &so);
    Philox rng;
    philox_init(&rng, c->seed, PHILOX_SYNTH,
                synth_stream(pt->index, SYNTH_STREAM_FAULT, f & 0xFF, (f >> 8) & 0xFFFF));
    int slice = (int)philox_below(&rng, (uint32_t)n);
    char path[4800], shown[4800], patient_dir[4600];
    snprintf(patient_dir, sizeof patient_dir, "%s/site%d/%s", c->raw, pt->site + 1, so.patient_id);
    DicomDataset *ds = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    const char *verdict = "", *detail = "";
    char detail_text[256] = "";

    switch (kind) {
    case 0: /* truncated */
        snprintf(path, sizeof path, "%s/%s/90_COR_T1_SE/IM%04d.dcm", patient_dir, so.date,
                 slice + 1);
        if (!(rc = baseline_slice(c, pt, &so, slice, f, 90, &ds, e)) &&
            !(rc = dicom_write_mem(ds, &(DicomWriteOptions){.ts = so.ts}, &data, &len, e)))
            rc = write_bytes(c, path, data, len * 6 / 10, e);
        verdict = "skip:truncated";
        snprintf(detail_text, sizeof detail_text, "%zu of %zu bytes", len * 6 / 10, len);
        detail = detail_text;
        break;
    case 1: { /* garbage */
        enum { SIZE = 16384 };
        uint32_t *junk = mem_alloc(SIZE);
        if (!junk)
            return err_set(e, ERR_NOMEM, "out of memory for a fault file");
        for (int k = 0; k < SIZE / 4; k++)
            junk[k] = philox_u32(&rng);
        snprintf(path, sizeof path, "%s/%s/03_COR_T1_SE/IM9%03d.dcm", patient_dir, so.date,
                 f % 1000);
        rc = write_bytes(c, path, junk, SIZE, e);
        mem_free(junk);
        verdict = "skip:not_dicom";
        detail = "random bytes";
        break;
    }
    case 2: { /* non_dicom */
        char text[512];
        int tl = snprintf(text, sizeof text,
                          "Radiology worklist export\r\nPatient %s, study %s\r\n"
                          "Coronal T1 of both hips; see series 3.\r\n",
                          so.patient_id, so.date);
        snprintf(path, sizeof path, "%s/NOTES_%d.TXT", patient_dir, f);
        rc = write_bytes(c, path, text, (size_t)tl, e);
        verdict = "skip:not_dicom";
        detail = "text file";
        break;
    }
    case 3: { /* missing_slice: a repeat series with its middle slice left out */
        int missing = n / 2;
        snprintf(path, sizeof path, "%s/%s/91_COR_T1_SE_REPEAT", patient_dir, so.date);
        rc = dir_create(path, e);
        for (int s = 0; s < n && !rc; s++) {
            if (s == missing)
                continue;
            snprintf(path, sizeof path, "%s/%s/91_COR_T1_SE_REPEAT/IM%04d.dcm", patient_dir,
                     so.date, s + 1);
            if (!(rc = baseline_slice(c, pt, &so, s, f, 91, &ds, e)))
                rc = synth_write_dataset(c, path, ds, so.ts, e);
            dicom_dataset_free(ds);
            ds = NULL;
        }
        snprintf(path, sizeof path, "%s/%s/91_COR_T1_SE_REPEAT/", patient_dir, so.date);
        verdict = "qc:missing_instance";
        snprintf(detail_text, sizeof detail_text, "instance %d of %d missing", missing + 1, n);
        detail = detail_text;
        break;
    }
    case 4: { /* duplicate_sop: the very same file again, elsewhere */
        char dir[4700];
        snprintf(dir, sizeof dir, "%s/%s_export", patient_dir, so.date);
        snprintf(path, sizeof path, "%s/IM%04d.dcm", dir, slice + 1);
        if (!(rc = baseline_slice(c, pt, &so, slice, -1, 0, &ds, e)) && !(rc = dir_create(dir, e)))
            rc = synth_write_dataset(c, path, ds, so.ts, e);
        verdict = "skip:duplicate";
        snprintf(detail_text, sizeof detail_text, "same SOPInstanceUID as %s/IM%04d.dcm", so.date,
                 slice + 1);
        detail = detail_text;
        break;
    }
    case 5: /* unsupported_ts: encapsulated (RLE) bytes under MPEG-2's UID */
        snprintf(path, sizeof path, "%s/%s/92_COR_T1_SE/IM%04d.dcm", patient_dir, so.date,
                 slice + 1);
        if (!(rc = baseline_slice(c, pt, &so, slice, f, 92, &ds, e)) &&
            !(rc = dicom_write_mem(ds,
                                   &(DicomWriteOptions){.ts = DICOM_TS_RLE,
                                                        .meta_ts_uid = "1.2.840.10008.1.2.4.100"},
                                   &data, &len, e)))
            rc = write_bytes(c, path, data, len, e);
        verdict = "skip:unsupported_transfer_syntax";
        detail = "1.2.840.10008.1.2.4.100 (MPEG-2 Main Profile)";
        break;
    }
    dicom_dataset_free(ds);
    mem_free(data);
    if (rc)
        return err_prefix(e, "fault %d (%s): ", f, kind_names[kind]);
    strbuf_printf(&c->faults, "%s,%s,%s,%s\n", rel(c, path, shown, sizeof shown), kind_names[kind],
                  verdict, detail);
    return 0;
}
