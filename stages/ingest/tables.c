/* tables.c: labels.csv and clinical.csv joined to the ingested images (see ingest_internal.h).
 *
 * Labels are keyed by SOPInstanceUID, and for a frame of a multi-frame image by SOPInstanceUID
 * and frame number (1-based, an optional `frame` column; a row without one labels every frame
 * of its instance). They apply to training slices: "lesion" 1, "normal" 0; a slice without a
 * row stays unlabelled (-1). Clinical rows are keyed by PatientID (turned into
 * the patient's index, never stored) and visit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/csv.h"
#include "lib/util/mem.h"
#include "stages/ingest/ingest_internal.h"

void ingest_report_row(Ingest *in, const char *path, const char *verdict, const char *reason)
{
    StrBuf *b = &in->report;
    const char *fields[3] = {path, verdict, reason};
    for (int k = 0; k < 3; k++) {
        strbuf_putc(b, '"');
        for (const char *p = fields[k]; *p; p++) {
            if (*p == '"')
                strbuf_putc(b, '"');
            strbuf_putc(b, *p == '\n' ? ' ' : *p);
        }
        strbuf_puts(b, k < 2 ? "\"," : "\"\n");
    }
}

/* Training slices by (SOPInstanceUID, frame), sorted, for the join. */
typedef struct SopIndex {
    const char *sop;
    uint32_t frame; /* 1-based, as DICOM numbers frames (ReferencedFrameNumber) */
    int64_t slice;
} SopIndex;

static int cmp_sop(const void *a, const void *b)
{
    const SopIndex *x = a, *y = b;
    int c = strcmp(x->sop, y->sop);
    return c ? c : (x->frame > y->frame) - (x->frame < y->frame);
}

/* The first entry with this SOPInstanceUID, or -1. */
static int64_t first_of(const SopIndex *index, int64_t n, const char *sop)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (strcmp(index[mid].sop, sop) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && !strcmp(index[lo].sop, sop) ? lo : -1;
}

/* A frame number field: "" (every frame) gives 0, else an integer >= 1. */
static int frame_field(const char *s, uint32_t *frame)
{
    char *end;
    if (!*s) {
        *frame = 0;
        return 1;
    }
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 0x7FFFFFFFL)
        return 0;
    *frame = (uint32_t)v;
    return 1;
}

int ingest_labels(Ingest *in, const char *path, Err *e)
{
    in->labels = mem_alloc((size_t)(in->n_slices ? in->n_slices : 1));
    if (!in->labels)
        return err_set(e, ERR_NOMEM, "out of memory for labels");
    memset(in->labels, -1, (size_t)in->n_slices);
    if (!path)
        return 0;
    Csv c;
    int rc = csv_read_file(&c, path, e), col_sop, col_label, col_frame = -1;
    if (rc)
        return rc;
    if ((rc = csv_column(&c, "sop_instance_uid", &col_sop, e)) ||
        (rc = csv_column(&c, "label", &col_label, e))) {
        csv_free(&c);
        return rc;
    }
    /* frame is optional: a multi-frame image's rows name the frame they label */
    Err no_frame = {0};
    if (csv_column(&c, "frame", &col_frame, &no_frame))
        col_frame = -1;
    SopIndex *index = mem_calloc((size_t)(in->n_slices ? in->n_slices : 1), sizeof *index);
    if (!index) {
        csv_free(&c);
        return err_set(e, ERR_NOMEM, "out of memory for labels");
    }
    int64_t k = 0;
    for (int s = 0; s < in->n_series; s++)
        if (in->info[s].train)
            for (int i = 0; i < in->series[s].n; i++) {
                const FileRec *r = &in->recs[in->series[s].files[i]];
                index[k++] =
                    (SopIndex){REC_STR(in, r, sop_uid), r->frame + 1, in->info[s].first_slice + i};
            }
    qsort(index, (size_t)k, sizeof *index, cmp_sop);
    for (size_t r = 0; r < c.n_rows; r++) {
        const CsvRow *row = &c.rows[r];
        const char *label = row->field[col_label], *sop = row->field[col_sop];
        char where[4200], why[512];
        snprintf(where, sizeof where, "%s:%d", path, row->line);
        int value = !strcmp(label, "lesion") ? 1 : !strcmp(label, "normal") ? 0 : -2;
        uint32_t frame = 0;
        if (value == -2 || (col_frame >= 0 && !frame_field(row->field[col_frame], &frame))) {
            if (value == -2)
                snprintf(why, sizeof why, "label \"%.100s\": expected lesion or normal", label);
            else
                snprintf(why, sizeof why,
                         "frame \"%.40s\": expected a frame number >= 1, or nothing for every "
                         "frame",
                         row->field[col_frame]);
            ingest_report_row(in, where, "label_refused", why);
            in->n_problems++;
            continue;
        }
        /* No frame: every slice of the instance (the one of a single-frame image). */
        int64_t hit = first_of(index, k, sop), matched = 0;
        for (int64_t j = hit; hit >= 0 && j < k && !strcmp(index[j].sop, sop); j++)
            if (!frame || index[j].frame == frame) {
                in->labels[index[j].slice] = (int8_t)value;
                matched++;
            }
        if (!matched) {
            if (frame)
                snprintf(why, sizeof why,
                         "SOPInstanceUID %.70s frame %u is not among the ingested training slices",
                         sop, frame);
            else
                snprintf(why, sizeof why,
                         "SOPInstanceUID %.70s is not among the ingested training slices", sop);
            ingest_report_row(in, where, "label_unmatched", why);
            in->n_problems++;
        }
    }
    mem_free(index);
    csv_free(&c);
    return 0;
}

/* A whole decimal integer field; 0 when it is not one. */
static int int_field(const char *s, int *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < -1000000000L || x > 1000000000L)
        return 0;
    *v = (int)x;
    return 1;
}

int ingest_clinical(Ingest *in, const char *path, Err *e)
{
    if (!path)
        return 0;
    Csv c;
    int rc = csv_read_file(&c, path, e);
    if (rc)
        return rc;
    static const char *const names[] = {"patient_id",           "hip",       "visit",
                                        "days_from_baseline",   "treatment", "treatment_day",
                                        "treated_before_visit", "outcome"};
    int col[8];
    for (int k = 0; k < 8 && !rc; k++)
        rc = csv_column(&c, names[k], &col[k], e);
    if (!rc && !(in->clinical = mem_calloc(c.n_rows ? c.n_rows : 1, sizeof *in->clinical)))
        rc = err_set(e, ERR_NOMEM, "out of memory for clinical rows");
    for (size_t r = 0; !rc && r < c.n_rows; r++) {
        char *const *f = c.rows[r].field;
        char where[4200], why[512];
        snprintf(where, sizeof where, "%s:%d", path, c.rows[r].line);
        Clinical cl = {.treatment_day = -1};
        const char *bad = NULL;
        cl.patient = ingest_patient_index(in, f[col[0]]);
        if (cl.patient < 0)
            bad = "patient_id matches no ingested patient";
        else if (strcmp(f[col[1]], "R") && strcmp(f[col[1]], "L"))
            bad = "hip: expected R or L";
        else if (!int_field(f[col[2]], &cl.visit) || cl.visit < 1)
            bad = "visit: expected an integer >= 1";
        else if (!int_field(f[col[3]], &cl.day))
            bad = "days_from_baseline: expected an integer";
        else if (f[col[5]][0] && !int_field(f[col[5]], &cl.treatment_day))
            bad = "treatment_day: expected an integer or nothing";
        else if (!int_field(f[col[6]], &cl.treated_before_visit) || cl.treated_before_visit < 0 ||
                 cl.treated_before_visit > 1)
            bad = "treated_before_visit: expected 0 or 1";
        else if (strcmp(f[col[7]], "progressed") && strcmp(f[col[7]], "stable") &&
                 strcmp(f[col[7]], "unaffected"))
            bad = "outcome: expected progressed, stable or unaffected";
        if (bad) {
            /* never echo the patient_id: it is an identifier */
            snprintf(why, sizeof why, "%s", bad);
            ingest_report_row(in, where, "clinical_refused", why);
            in->n_problems++;
            continue;
        }
        snprintf(cl.hip, sizeof cl.hip, "%s", f[col[1]]);
        snprintf(cl.treatment, sizeof cl.treatment, "%.15s", f[col[4]]);
        snprintf(cl.outcome, sizeof cl.outcome, "%s", f[col[7]]);
        in->clinical[in->n_clinical++] = cl;
    }
    csv_free(&c);
    return rc;
}
