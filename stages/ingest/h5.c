/* h5.c: cohort.h5, written collectively by every rank (layout: data-schema/cohort.md).
 *
 * Tables every rank knows whole (patients, studies, series, clinical, slice metadata) are
 * written by rank 0 inside collective calls. Pixels are written in rounds: in round r each rank
 * decodes its r-th series (series are owned in contiguous blocks, so a series' training slices
 * and native voxels are contiguous rows) and all ranks write together, a rank with nothing left
 * writing no rows. Memory stays at one series per rank whatever the cohort size. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/h5/h5out.h"
#include "lib/image/resample.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"
#include "stages/ingest/ingest_internal.h"

#define SCHEMA "onfh-cohort-1"

/* A column of n rows written by rank 0 (collective). */
static int column(H5Out *o, const char *path, hid_t type, int rank, uint64_t n, uint64_t width,
                  const void *data, Err *e)
{
    uint64_t dims[2] = {n, width};
    hid_t ds;
    int rc = h5out_dataset(o, path, type, width > 1 ? 2 : 1, dims, NULL, 0, &ds, e);
    if (rc)
        return rc;
    rc = h5out_write_rows(o, ds, type, 0, rank == 0 ? n : 0, data, e);
    H5Dclose(ds);
    return rc;
}

/* Fixed-length strings: n rows of len bytes from a function of the row. */
typedef const char *(*RowText)(const Ingest *in, int row);

static int string_column(H5Out *o, const Ingest *in, const char *path, size_t len, int n,
                         RowText text, Err *e)
{
    char *buf = mem_calloc((size_t)(n ? n : 1), len);
    hid_t t = h5out_string_type(len);
    int rc = !buf || t < 0 ? err_set(e, ERR_NOMEM, "out of memory for %s", path) : 0;
    for (int i = 0; !rc && i < n; i++)
        strncpy(buf + (size_t)i * len, text(in, i), len);
    /* every rank takes part, even one that failed to allocate: agree first */
    if (!rt_all_ok(rc == 0)) {
        mem_free(buf);
        if (t >= 0)
            H5Tclose(t);
        return rc ? rc : err_set(e, ERR_NOMEM, "out of memory on another rank for %s", path);
    }
    rc = column(o, path, t, rt_rank(), (uint64_t)n, 1, buf, e);
    H5Tclose(t);
    mem_free(buf);
    return rc;
}

static const char *pseudonym(const Ingest *in, int i)
{
    return in->patients[i].pseudonym;
}
static const char *sex(const Ingest *in, int i)
{
    return in->patients[i].sex;
}
static const char *description(const Ingest *in, int i)
{
    return REC_STR(in, &in->recs[in->series[i].files[0]], series_description);
}
static const char *manufacturer(const Ingest *in, int i)
{
    return REC_STR(in, &in->recs[in->series[i].files[0]], manufacturer);
}
static const char *model(const Ingest *in, int i)
{
    return REC_STR(in, &in->recs[in->series[i].files[0]], model);
}
static const char *syntax(const Ingest *in, int i)
{
    return REC_STR(in, &in->recs[in->series[i].files[0]], ts_uid);
}
static const char *hip(const Ingest *in, int i)
{
    return in->clinical[i].hip;
}
static const char *treatment(const Ingest *in, int i)
{
    return in->clinical[i].treatment;
}
static const char *outcome(const Ingest *in, int i)
{
    return in->clinical[i].outcome;
}

/* Numeric columns of a table, gathered from the structs into one buffer of n x width. */
static int table_numbers(H5Out *o, const char *path, hid_t type, size_t elem, int n, int width,
                         void (*fill)(const Ingest *, int, void *), const Ingest *in, Err *e)
{
    uint8_t *buf = mem_calloc((size_t)(n ? n : 1) * (size_t)width, elem);
    int rc = buf ? 0 : err_set(e, ERR_NOMEM, "out of memory for %s", path);
    for (int i = 0; !rc && i < n; i++)
        fill(in, i, buf + (size_t)i * width * elem);
    if (!rt_all_ok(rc == 0)) {
        mem_free(buf);
        return rc ? rc : err_set(e, ERR_NOMEM, "out of memory on another rank for %s", path);
    }
    rc = column(o, path, type, rt_rank(), (uint64_t)n, (uint64_t)width, buf, e);
    mem_free(buf);
    return rc;
}

#define FILLER(name, T, expr)                                                                      \
    static void name(const Ingest *in, int i, void *out)                                           \
    {                                                                                              \
        *(T *)out = (T)(expr);                                                                     \
    }
FILLER(f_age, double, in->patients[i].age_years)
FILLER(f_n_studies, int32_t, in->patients[i].n_studies)
FILLER(f_study_patient, int32_t, in->studies[i].patient)
FILLER(f_study_day, int32_t, in->studies[i].day)
FILLER(f_study_visit, int32_t, in->studies[i].visit)
FILLER(f_series_patient, int32_t, in->info[i].patient)
FILLER(f_series_study, int32_t, in->info[i].study)
FILLER(f_series_role, int8_t, in->info[i].role)
FILLER(f_series_qc, uint32_t, in->series[i].qc)
FILLER(f_series_n, int32_t, in->series[i].n)
FILLER(f_series_rows, int32_t, in->recs[in->series[i].files[0]].rows)
FILLER(f_series_columns, int32_t, in->recs[in->series[i].files[0]].columns)
FILLER(f_series_first, int64_t, in->info[i].first_slice)
FILLER(f_series_native, int64_t, in->info[i].native)
FILLER(f_clin_patient, int32_t, in->clinical[i].patient)
FILLER(f_clin_visit, int32_t, in->clinical[i].visit)
FILLER(f_clin_day, int32_t, in->clinical[i].day)
FILLER(f_clin_tday, int32_t, in->clinical[i].treatment_day)
FILLER(f_clin_before, int8_t, in->clinical[i].treated_before_visit)
#undef FILLER

static void f_series_spacing(const Ingest *in, int i, void *out)
{
    const FileRec *r = &in->recs[in->series[i].files[0]];
    double *d = out;
    d[0] = r->spacing[0];
    d[1] = r->spacing[1];
    d[2] = in->series[i].spacing_mm;
}

static void f_series_orientation(const Ingest *in, int i, void *out)
{
    memcpy(out, in->recs[in->series[i].files[0]].orientation, 6 * sizeof(double));
}

static void f_series_origin(const Ingest *in, int i, void *out)
{
    memcpy(out, in->recs[in->series[i].files[0]].position, 3 * sizeof(double));
}

static int write_tables(H5Out *o, const Ingest *in, Err *e)
{
    hid_t I8 = H5T_NATIVE_INT8, I32 = H5T_NATIVE_INT32, I64 = H5T_NATIVE_INT64;
    hid_t U32 = H5T_NATIVE_UINT32, F64 = H5T_NATIVE_DOUBLE;
    int np = in->n_patients, nst = in->n_studies, ns = in->n_series, nc = in->n_clinical;
    int rc = 0;
#define DO(call)                                                                                   \
    do {                                                                                           \
        if (!rc)                                                                                   \
            rc = (call);                                                                           \
    } while (0)
    DO(string_column(o, in, "/patients/pseudonym", 16, np, pseudonym, e));
    DO(string_column(o, in, "/patients/sex", 2, np, sex, e));
    DO(table_numbers(o, "/patients/age_years", F64, 8, np, 1, f_age, in, e));
    DO(table_numbers(o, "/patients/n_studies", I32, 4, np, 1, f_n_studies, in, e));
    DO(table_numbers(o, "/studies/patient", I32, 4, nst, 1, f_study_patient, in, e));
    DO(table_numbers(o, "/studies/day", I32, 4, nst, 1, f_study_day, in, e));
    DO(table_numbers(o, "/studies/visit", I32, 4, nst, 1, f_study_visit, in, e));
    DO(table_numbers(o, "/series/patient", I32, 4, ns, 1, f_series_patient, in, e));
    DO(table_numbers(o, "/series/study", I32, 4, ns, 1, f_series_study, in, e));
    DO(table_numbers(o, "/series/role", I8, 1, ns, 1, f_series_role, in, e));
    DO(table_numbers(o, "/series/qc_flags", U32, 4, ns, 1, f_series_qc, in, e));
    DO(table_numbers(o, "/series/n_slices", I32, 4, ns, 1, f_series_n, in, e));
    DO(table_numbers(o, "/series/rows", I32, 4, ns, 1, f_series_rows, in, e));
    DO(table_numbers(o, "/series/columns", I32, 4, ns, 1, f_series_columns, in, e));
    DO(table_numbers(o, "/series/spacing_mm", F64, 8, ns, 3, f_series_spacing, in, e));
    DO(table_numbers(o, "/series/orientation", F64, 8, ns, 6, f_series_orientation, in, e));
    DO(table_numbers(o, "/series/origin_mm", F64, 8, ns, 3, f_series_origin, in, e));
    DO(table_numbers(o, "/series/first_slice", I64, 8, ns, 1, f_series_first, in, e));
    DO(table_numbers(o, "/series/native_offset", I64, 8, ns, 1, f_series_native, in, e));
    DO(string_column(o, in, "/series/description", 64, ns, description, e));
    DO(string_column(o, in, "/series/manufacturer", 64, ns, manufacturer, e));
    DO(string_column(o, in, "/series/model", 64, ns, model, e));
    DO(string_column(o, in, "/series/transfer_syntax", 64, ns, syntax, e));
    DO(table_numbers(o, "/clinical/patient", I32, 4, nc, 1, f_clin_patient, in, e));
    DO(string_column(o, in, "/clinical/hip", 2, nc, hip, e));
    DO(table_numbers(o, "/clinical/visit", I32, 4, nc, 1, f_clin_visit, in, e));
    DO(table_numbers(o, "/clinical/days_from_baseline", I32, 4, nc, 1, f_clin_day, in, e));
    DO(string_column(o, in, "/clinical/treatment", 16, nc, treatment, e));
    DO(table_numbers(o, "/clinical/treatment_day", I32, 4, nc, 1, f_clin_tday, in, e));
    DO(table_numbers(o, "/clinical/treated_before_visit", I8, 1, nc, 1, f_clin_before, in, e));
    DO(string_column(o, in, "/clinical/outcome", 16, nc, outcome, e));
#undef DO
    return rc;
}

/* Per training slice: series, index in series, patient, position along the normal, label. */
static int write_slice_tables(H5Out *o, const Ingest *in, Err *e)
{
    int64_t n = in->n_slices;
    int32_t *series = mem_calloc((size_t)(n ? n : 1), 4),
            *index = mem_calloc((size_t)(n ? n : 1), 4);
    int32_t *patient = mem_calloc((size_t)(n ? n : 1), 4);
    float *pos = mem_calloc((size_t)(n ? n : 1), 4);
    int rc = series && index && patient && pos ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    for (int s = 0; !rc && s < in->n_series; s++)
        for (int i = 0; in->info[s].train && i < in->series[s].n; i++) {
            int64_t k = in->info[s].first_slice + i;
            series[k] = s;
            index[k] = i;
            patient[k] = in->info[s].patient;
            pos[k] = (float)in->series[s].along[i];
        }
    if (!rt_all_ok(rc == 0))
        rc = rc ? rc : err_set(e, ERR_NOMEM, "out of memory on another rank");
    if (!rc)
        rc = column(o, "/slices/series", H5T_NATIVE_INT32, rt_rank(), (uint64_t)n, 1, series, e);
    if (!rc)
        rc = column(o, "/slices/index", H5T_NATIVE_INT32, rt_rank(), (uint64_t)n, 1, index, e);
    if (!rc)
        rc = column(o, "/slices/patient", H5T_NATIVE_INT32, rt_rank(), (uint64_t)n, 1, patient, e);
    if (!rc)
        rc = column(o, "/slices/position_mm", H5T_NATIVE_FLOAT, rt_rank(), (uint64_t)n, 1, pos, e);
    if (!rc)
        rc = column(o, "/slices/label", H5T_NATIVE_INT8, rt_rank(), (uint64_t)n, 1, in->labels, e);
    mem_free(series);
    mem_free(index);
    mem_free(patient);
    mem_free(pos);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Pixels. */

/* 1 when every slice of the series decoded and all share one rescale with a positive slope:
 * the rescale is then monotone, and the histogram of stored values stands for the voxels. */
static int shared_rescale(const Ingest *in, const Series *s, const int8_t *valid)
{
    const FileRec *first = &in->recs[s->files[0]];
    for (int i = 0; i < s->n; i++) {
        const FileRec *r = &in->recs[s->files[i]];
        if (!valid[i] || r->slope != first->slope || r->intercept != first->intercept)
            return 0;
    }
    return first->slope > 0;
}

/* The rescaled value of histogram bin v (signed values are offset by 32768). */
static float bin_value(int v, int is_signed, const FileRec *r)
{
    double stored = is_signed ? (double)(v - 32768) : (double)v;
    return (float)(stored * r->slope + r->intercept);
}

/* The quantiles of a series from a histogram of its stored values (see shared_rescale): order
 * statistics of the stored values map to those of the rescaled floats, and the result is
 * bit for bit what percentiles() gives on the floats, without selecting among millions of
 * voxels. 0 for an empty histogram. */
static int histogram_quantiles(const Ingest *in, const Series *s, const uint32_t *hist,
                               int is_signed, const double q[2], double out[2])
{
    const FileRec *first = &in->recs[s->files[0]];
    uint64_t n = 0;
    for (int v = 0; v < 65536; v++)
        n += hist[v];
    if (n == 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        double pos = q[k] * (double)(n - 1);
        uint64_t i = (uint64_t)floor(pos), seen = 0;
        double f = pos - (double)i, a = 0, b = 0;
        int found_a = 0;
        for (int v = 0; v < 65536; v++) {
            if (!hist[v])
                continue;
            float value = bin_value(v, is_signed, first);
            if (!found_a && i < seen + hist[v]) {
                a = value;
                found_a = 1;
            }
            if (i + 1 < seen + hist[v] || i + 1 >= n) {
                b = i + 1 >= n ? a : value;
                break;
            }
            seen += hist[v];
        }
        out[k] = a + f * (b - a);
    }
    return 1;
}

/* The table of the 65536 stored values clipped to [lo, hi] and z-scored: the mean and SD of the
 * clipped values come from the histogram (what clip_zscore sums voxel by voxel, summed bin by
 * bin), and normalising a voxel is then one lookup. Only the entries between the smallest and
 * the largest value present are made: no voxel looks up the others. */
static void lut_build(const uint32_t *hist, int is_signed, const FileRec *r, double lo, double hi,
                      float *lut, double *mean, double *sd)
{
    double s = 0, s2 = 0, count = 0;
    int first = 65536, last = -1;
    for (int v = 0; v < 65536; v++) {
        if (!hist[v])
            continue;
        double x = bin_value(v, is_signed, r);
        x = x < lo ? lo : x > hi ? hi : x;
        s += x * hist[v];
        s2 += x * x * hist[v];
        count += hist[v];
        first = v < first ? v : first;
        last = v;
    }
    double m = count ? s / count : 0, var = count ? s2 / count - m * m : 0;
    double d = var > 0 ? sqrt(var) : 0;
    for (int v = first; v <= last; v++) {
        double x = bin_value(v, is_signed, r);
        x = x < lo ? lo : x > hi ? hi : x;
        lut[v] = d > 0 ? (float)((x - m) / d) : 0.0f;
    }
    *mean = m;
    *sd = d;
}

/* One slice's stored values (n of them) through the table. */
static void lut_slice(const uint16_t *px, size_t n, const float *lut, int is_signed, float *out)
{
    uint16_t flip = is_signed ? 0x8000u : 0;
    for (size_t k = 0; k < n; k++)
        out[k] = lut[(uint16_t)(px[k] ^ flip)];
}

/* Buffers of the pixel rounds, kept from one series to the next (growing only), so a cohort of
 * many series does not map and fault in fresh pages for each. */
typedef struct Bufs {
    uint16_t *px;
    float *vox;
    float *norm;
    float *scratch;
    float *grid;
    float *lut;
    uint32_t *hist;
    int8_t *valid;
    uint8_t *file; /* the bytes of the file being decoded */
    size_t cap[9];
} Bufs;

static void *grow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap)
        return *p;
    void *q = mem_realloc(*p, bytes);
    if (!q)
        return NULL;
    *p = q;
    *cap = bytes;
    return q;
}

static void bufs_free(Bufs *b)
{
    mem_free(b->px);
    mem_free(b->vox);
    mem_free(b->norm);
    mem_free(b->scratch);
    mem_free(b->grid);
    mem_free(b->lut);
    mem_free(b->hist);
    mem_free(b->valid);
    mem_free(b->file);
}

/* A histogram of stored values is counted in HIST_ROOM counts: HIST_BINS of its own and a
 * second table (count_values). */
enum { HIST_BINS = 65536, HIST_ROOM = 2 * HIST_BINS };

/* hist[v ^ flip] += 1 for the n stored values v, through two tables hist[0..65535] and
 * hist[65536..131071] taken in turn and added at the end (merge_counts). Why two: a run of
 * equal values (an image's background) makes each increment wait for the one before it to be
 * stored; taking the tables in turn halves that chain. */
static void count_values(const uint16_t *px, size_t n, uint16_t flip, uint32_t *hist)
{
    uint32_t *other = hist + HIST_BINS;
    size_t k = 0;
    for (; k + 2 <= n; k += 2) {
        hist[(uint16_t)(px[k] ^ flip)]++;
        other[(uint16_t)(px[k + 1] ^ flip)]++;
    }
    for (; k < n; k++)
        hist[(uint16_t)(px[k] ^ flip)]++;
}

/* Folds count_values' second table into the first. */
static void merge_counts(uint32_t *hist)
{
    for (int v = 0; v < HIST_BINS; v++)
        hist[v] += hist[HIST_BINS + v];
}

/* Decodes a series' stored values into px (n x rows x columns), reading each file once: the
 * frames of a multi-frame file are consecutive slices or not, the file stays open while its
 * slices follow one another. valid[i] = 0 for a slice that could not be decoded (zeros, and a
 * report row). hist (room for HIST_ROOM counts, may be NULL): on return its first 65536
 * count the stored values of the decoded slices, signed ones offset by 32768 so the index order
 * is the value order. */
static int decode_series(Ingest *in, const Series *s, Bufs *b, uint32_t *hist, int *is_signed,
                         Err *e)
{
    uint16_t *px = b->px;
    int8_t *valid = b->valid;
    const FileRec *first = &in->recs[s->files[0]];
    size_t plane = (size_t)first->rows * first->columns;
    DicomFile *f = NULL;
    const FileRec *open = NULL;
    DicomImageInfo info = {0};
    Err fe = {0};
    int frc = 0;
    if (hist)
        memset(hist, 0, HIST_ROOM * sizeof *hist);
    for (int i = 0; i < s->n; i++) {
        const FileRec *r = &in->recs[s->files[i]];
        char path[4200];
        series_rec_path(&in->strs, r, path, sizeof path);
        if (!open || !series_same_file(open, r)) {
            dicom_file_free(f);
            f = NULL;
            memset(&fe, 0, sizeof fe);
            size_t len;
            frc = file_read_into(path, &b->file, &b->cap[8], &len, NULL, &fe);
            if (frc && frc != ERR_NOMEM)
                err_prefix(&fe, "dicom: "); /* as dicom_read_file says it */
            /* (f borrows the pixels from b->file: it is freed before the next read) */
            DicomReadOptions opt = {.borrow_pixel_data = 1};
            if (!frc)
                frc = dicom_read_mem(b->file, len, path, &opt, &f, &fe);
            if (!frc)
                frc = dicom_image_info(f, &info, &fe);
            if (!frc && (info.rows != r->rows || info.columns != r->columns))
                frc = err_set(&fe, ERR_FORMAT, "dicom: %s: %ux%u pixels, the header scan saw %ux%u",
                              path, info.rows, info.columns, r->rows, r->columns);
            open = r;
        }
        Err de = fe;
        int rc = frc;
        uint16_t *out = px + (size_t)i * plane;
        if (!rc)
            rc = dicom_decode_frame(f, r->frame, out, plane, &de);
        valid[i] = rc == 0;
        *is_signed = info.pixel_representation != 0;
        if (rc) {
            memset(out, 0, plane * sizeof *out);
        } else if (hist) {
            count_values(out, plane, info.pixel_representation ? 0x8000u : 0, hist);
        }
        if (rc == ERR_NOMEM) {
            dicom_file_free(f);
            *e = de;
            return rc;
        }
        if (rc) {
            char safe[4200];
            ingest_safe_path(in, path, safe, sizeof safe);
            ingest_report_row(in, safe, "undecodable", de.msg);
            in->n_skipped++;
        }
    }
    dicom_file_free(f);
    if (hist)
        merge_counts(hist);
    return 0;
}

/* Rescaled floats of a decoded series: slice i with its own slope and intercept (frames of an
 * enhanced image may each have theirs). */
static void rescale_series(const Ingest *in, const Series *s, const uint16_t *px,
                           const int8_t *valid, int is_signed, float *vox)
{
    const FileRec *first = &in->recs[s->files[0]];
    size_t plane = (size_t)first->rows * first->columns;
    for (int i = 0; i < s->n; i++) {
        const FileRec *r = &in->recs[s->files[i]];
        const uint16_t *p = px + (size_t)i * plane;
        float *v = vox + (size_t)i * plane;
        for (size_t k = 0; k < plane; k++) {
            double stored = is_signed ? (double)(int16_t)p[k] : (double)p[k];
            v[k] = valid[i] ? (float)(stored * r->slope + r->intercept) : 0.0f;
        }
    }
}

/* One series' pixels: native voxels (vessel series) and normalised, resampled training slices
 * into b->vox and b->grid. */
static int series_pixels(Ingest *in, int s, Bufs *b, const double clip[2], uint64_t g, Err *e)
{
    const Series *se = &in->series[s];
    const FileRec *fr = &in->recs[se->files[0]];
    size_t plane = (size_t)fr->rows * fr->columns, total = (size_t)se->n * plane;
    int train = in->info[s].train, native = in->info[s].native >= 0;
    if (!grow((void **)&b->px, &b->cap[0], total * sizeof *b->px) ||
        !grow((void **)&b->valid, &b->cap[1], (size_t)se->n) ||
        (train && !grow((void **)&b->hist, &b->cap[2], HIST_ROOM * sizeof *b->hist)) ||
        (native && !grow((void **)&b->vox, &b->cap[3], total * sizeof *b->vox)))
        return err_set(e, ERR_NOMEM, "out of memory for a series of %d slices", se->n);
    int is_signed = 0;
    int rc = decode_series(in, se, b, train ? b->hist : NULL, &is_signed, e);
    if (rc)
        return rc;
    if (native)
        rescale_series(in, se, b->px, b->valid, is_signed, b->vox);
    if (!train)
        return 0;
    /* Per series: clip to quantiles, z-score, then resample each slice. */
    if (!grow((void **)&b->grid, &b->cap[5], (size_t)se->n * g * g * sizeof *b->grid) ||
        !grow((void **)&b->lut, &b->cap[6], 65536 * sizeof *b->lut))
        return err_set(e, ERR_NOMEM, "out of memory normalising a series");
    ResamplePlan plan;
    if (resample_plan(&plan, (int)fr->rows, (int)fr->columns, fr->spacing, (int)g) < 0)
        return err_set(e, ERR_NOMEM, "out of memory resampling a series");
    double lo, hi, mean, sd, qv[2];
    int lut = shared_rescale(in, se, b->valid) &&
              histogram_quantiles(in, se, b->hist, is_signed, clip, qv);
    /* (through the table, norm holds one slice at a time) */
    if (!grow((void **)&b->norm, &b->cap[4], (lut ? plane : total) * sizeof *b->norm)) {
        resample_plan_free(&plan);
        return err_set(e, ERR_NOMEM, "out of memory normalising a series");
    }
    if (lut) {
        lo = qv[0];
        hi = qv[1];
        lut_build(b->hist, is_signed, fr, lo, hi, b->lut, &mean, &sd);
    } else {
        if (!grow((void **)&b->scratch, &b->cap[7], total * sizeof *b->scratch)) {
            resample_plan_free(&plan);
            return err_set(e, ERR_NOMEM, "out of memory normalising a series");
        }
        rescale_series(in, se, b->px, b->valid, is_signed, b->norm);
        percentiles(b->norm, total, clip[0], clip[1], b->scratch, &lo, &hi);
        clip_zscore(b->norm, total, lo, hi, &mean, &sd);
    }
    /* A slice at a time from its stored values through the table, so what the resampling reads
     * was just written and is still in cache, or from the normalised floats. */
    float fill = sd > 0 ? (float)((lo - mean) / sd) : 0.0f;
    for (int i = 0; i < se->n; i++) {
        float *out = b->grid + (size_t)i * g * g;
        if (lut) {
            lut_slice(b->px + i * plane, plane, b->lut, is_signed, b->norm);
            resample_apply(&plan, b->norm, fill, out);
        } else {
            resample_apply(&plan, b->norm + i * plane, fill, out);
        }
    }
    resample_plan_free(&plan);
    return 0;
}

int ingest_write_h5(Ingest *in, const char *path, const char *inputs_hash, Err *e)
{
    H5Out o;
    int rc = h5out_create(&o, path, MPI_COMM_WORLD, e);
    if (rc)
        return rc;
    Versions v;
    versions_get(&v);
    static const char *const groups[] = {"/patients", "/studies", "/series",
                                         "/slices",   "/native",  "/clinical"};
    for (size_t g = 0; !rc && g < sizeof groups / sizeof *groups; g++)
        rc = h5out_group(&o, groups[g], e);
    const Config *cfg = &in->s->cfg;
    double clip[2] = {config_num(cfg, "ingest.clip_low"), config_num(cfg, "ingest.clip_high")};
    if (!rc)
        rc = h5out_attr_string(o.file, "schema", SCHEMA, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "run", config_str(cfg, "run.name"), e);
    if (!rc)
        rc = h5out_attr_string(o.file, "onfh_version", v.onfh, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "onfh_commit", v.commit, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "config_sha256", in->s->config_hash, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "inputs_sha256", inputs_hash, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "hdf5_version", v.hdf5, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "mpi_version", v.mpi, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "pseudonym", "HMAC-SHA-256(site key, PatientID), 16 hex", e);
    if (!rc)
        rc = h5out_attr_int(o.file, "grid_size", in->grid, e);
    if (!rc)
        rc = h5out_attr_doubles(o.file, "clip_quantiles", clip, 2, e);
    if (!rc)
        rc = write_tables(&o, in, e);
    if (!rc)
        rc = write_slice_tables(&o, in, e);

    /* Pixel datasets: training images (N, G, G) and every vessel series' voxels, one after the
     * other in /native/voxels (offsets in /series/native_offset). */
    uint64_t g = (uint64_t)in->grid, n = (uint64_t)in->n_slices, nv = 0;
    for (int s = 0; s < in->n_series; s++)
        if (in->info[s].native >= 0)
            nv = (uint64_t)in->info[s].native + (uint64_t)in->series[s].n *
                                                    in->recs[in->series[s].files[0]].rows *
                                                    in->recs[in->series[s].files[0]].columns;
    int deflate = (int)config_int(cfg, "ingest.deflate");
    uint64_t dims[3] = {n, g, g}, chunk[3] = {1, g, g}, vdims[1] = {nv}, vchunk[1] = {1u << 16};
    hid_t image = -1, voxels = -1, valid_ds = -1;
    if (!rc)
        rc = h5out_dataset(&o, "/slices/image", H5T_NATIVE_FLOAT, 3, dims, chunk, deflate, &image,
                           e);
    /* Chunked like everything written in rounds: a contiguous int8 dataset written by several
     * ranks in turn lost its first byte under Open MPI's MPI-IO (h5diff caught it). */
    uint64_t vchunk1[1] = {4096};
    if (!rc)
        rc = h5out_dataset(&o, "/slices/valid", H5T_NATIVE_INT8, 1, dims, vchunk1, deflate,
                           &valid_ds, e);
    if (!rc)
        rc = h5out_dataset(&o, "/native/voxels", H5T_NATIVE_FLOAT, 1, vdims, vchunk, deflate,
                           &voxels, e);

    /* Rounds: each rank's owned series in order. */
    int mine = 0, rounds = 0;
    for (int s = 0; s < in->n_series; s++)
        mine += in->info[s].owner == rt_rank();
    rounds = mine;
    if (rt_mpi_active() && rt_size() > 1)
        MPI_Allreduce(&mine, &rounds, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int next = 0;
    Bufs bufs = {0};
    for (int round = 0; round < rounds; round++) {
        while (next < in->n_series && in->info[next].owner != rt_rank())
            next++;
        int s = next < in->n_series ? next++ : -1;
        uint64_t img_first = 0, img_n = 0, vox_first = 0, vox_n = 0;
        int lrc = rc;
        if (!lrc && s >= 0 && (in->info[s].train || in->info[s].native >= 0)) {
            const Series *se = &in->series[s];
            const FileRec *fr = &in->recs[se->files[0]];
            lrc = series_pixels(in, s, &bufs, clip, g, e);
            if (!lrc && in->info[s].native >= 0) {
                vox_first = (uint64_t)in->info[s].native;
                vox_n = (uint64_t)se->n * fr->rows * fr->columns;
            }
            if (!lrc && in->info[s].train) {
                img_first = (uint64_t)in->info[s].first_slice;
                img_n = (uint64_t)se->n;
            }
        }
        /* Every rank writes (perhaps nothing) to each dataset, once agreed nobody failed. */
        if (!rt_all_ok(lrc == 0)) {
            rc = lrc ? lrc : err_set(e, ERR_IO, "another rank failed while decoding");
            break;
        }
        rc = h5out_write_rows(&o, image, H5T_NATIVE_FLOAT, img_first, img_n, bufs.grid, e);
        if (!rc)
            rc = h5out_write_rows(&o, valid_ds, H5T_NATIVE_INT8, img_first, img_n, bufs.valid, e);
        if (!rc)
            rc = h5out_write_rows(&o, voxels, H5T_NATIVE_FLOAT, vox_first, vox_n, bufs.vox, e);
        if (!rt_all_ok(rc == 0)) {
            rc = rc ? rc : err_set(e, ERR_IO, "another rank failed writing %s", path);
            break;
        }
    }
    bufs_free(&bufs);
    if (image >= 0)
        H5Dclose(image);
    if (valid_ds >= 0)
        H5Dclose(valid_ds);
    if (voxels >= 0)
        H5Dclose(voxels);
    int crc = h5out_close(&o, e);
    return rc ? rc : crc;
}
