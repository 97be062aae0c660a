/* series.c: series assembly, slice order and QC flags (see series.h). */
#include "stages/ingest/series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"

void series_rec_path(const StrTab *t, const FileRec *r, char *out, size_t cap)
{
    const char *dir = strtab_get(t, r->dir);
    snprintf(out, cap, "%s%s%s", dir, dir[0] ? "/" : "", strtab_get(t, r->name));
}

/* The i-th byte of a record's path dir "/" name, 0 past its end. */
static int path_byte(const StrTab *t, const FileRec *r, size_t dir_len, size_t i)
{
    const char *dir = strtab_get(t, r->dir);
    if (i < dir_len)
        return (uint8_t)dir[i];
    if (dir_len && i == dir_len)
        return '/';
    return (uint8_t)strtab_get(t, r->name)[i - dir_len - (dir_len != 0)];
}

int series_path_cmp(const StrTab *t, const FileRec *a, const FileRec *b)
{
    size_t la = strlen(strtab_get(t, a->dir)), lb = strlen(strtab_get(t, b->dir));
    for (size_t i = 0;; i++) {
        int x = path_byte(t, a, la, i), y = path_byte(t, b, lb, i);
        if (x != y || !x)
            return x - y;
    }
}

/* qsort has no context argument in C11: the records being sorted and their strings. */
static const FileRec *sort_recs;
static const StrTab *sort_strs;

#define STR(r, field) strtab_get(sort_strs, (r)->field)

/* Order of slices before grouping: series identity, SOPInstanceUID and frame, then path (so the
 * first copy of a duplicated slice is the one kept, whatever order the ranks scanned in). */
static int cmp_file(const void *a, const void *b)
{
    const FileRec *x = &sort_recs[*(const int *)a], *y = &sort_recs[*(const int *)b];
    int c;
    if ((c = strcmp(STR(x, patient_id), STR(y, patient_id))) ||
        (c = strcmp(STR(x, study_date), STR(y, study_date))) ||
        (c = strcmp(STR(x, study_uid), STR(y, study_uid))) ||
        (c = strcmp(STR(x, series_uid), STR(y, series_uid))) ||
        (c = strcmp(STR(x, sop_uid), STR(y, sop_uid))))
        return c;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    return series_path_cmp(sort_strs, x, y);
}

static void cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Orders one series' slices along its normal and raises its flags. */
static int order_series(const FileRec *recs, Series *s, Err *e)
{
    const FileRec *first = &recs[s->files[0]];
    double row[3] = {first->orientation[0], first->orientation[1], first->orientation[2]};
    double col[3] = {first->orientation[3], first->orientation[4], first->orientation[5]};
    cross(row, col, s->normal);
    double len = sqrt(dot(s->normal, s->normal));
    if (len > 0)
        for (int k = 0; k < 3; k++)
            s->normal[k] /= len;
    s->along = mem_calloc((size_t)s->n, sizeof *s->along);
    double *gaps = mem_calloc((size_t)s->n, sizeof *gaps);
    double *sorted = mem_calloc((size_t)s->n, sizeof *sorted);
    if (!s->along || !gaps || !sorted) {
        mem_free(gaps);
        mem_free(sorted);
        return err_set(e, ERR_NOMEM, "out of memory ordering a series");
    }
    for (int i = 0; i < s->n; i++) {
        const FileRec *r = &recs[s->files[i]];
        double n2[3];
        cross(r->orientation, r->orientation + 3, n2);
        double l2 = sqrt(dot(n2, n2));
        if (l2 == 0 || fabs(fabs(dot(n2, s->normal)) / l2 - 1) > 1e-4)
            s->qc |= QC_MIXED_ORIENTATION;
        if (r->rows != first->rows || r->columns != first->columns ||
            fabs(r->spacing[0] - first->spacing[0]) > 1e-6 ||
            fabs(r->spacing[1] - first->spacing[1]) > 1e-6)
            s->qc |= QC_MIXED_GEOMETRY;
        s->along[i] = dot(r->position, s->normal);
    }
    /* Insertion sort of (along, file) pairs: series are short, and it is stable. */
    for (int i = 1; i < s->n; i++)
        for (int j = i; j > 0 && s->along[j] < s->along[j - 1]; j--) {
            double t = s->along[j];
            s->along[j] = s->along[j - 1];
            s->along[j - 1] = t;
            int f = s->files[j];
            s->files[j] = s->files[j - 1];
            s->files[j - 1] = f;
        }
    if (s->n < 2) {
        s->qc |= QC_SINGLE_SLICE;
    } else {
        for (int i = 1; i < s->n; i++)
            gaps[i - 1] = s->along[i] - s->along[i - 1];
        memcpy(sorted, gaps, (size_t)(s->n - 1) * sizeof *gaps);
        qsort(sorted, (size_t)(s->n - 1), sizeof *sorted, cmp_double);
        s->spacing_mm = sorted[(s->n - 1) / 2];
        for (int i = 0; i < s->n - 1; i++) {
            double g = gaps[i];
            if (g >= 1.5 * s->spacing_mm)
                s->qc |= QC_MISSING_INSTANCE;
            else if (fabs(g - s->spacing_mm) > 0.01 * s->spacing_mm + 1e-3)
                s->qc |= QC_UNEVEN_SPACING;
        }
        /* Tilt: the step between neighbours should be along the normal. */
        for (int i = 1; i < s->n; i++) {
            const double *p0 = recs[s->files[i - 1]].position, *p1 = recs[s->files[i]].position;
            double d[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
            double dl = sqrt(dot(d, d));
            if (dl > 0 && fabs(dot(d, s->normal)) / dl < 0.9995)
                s->qc |= QC_TILT;
        }
        /* Instance numbers with a hole also say a slice is missing. */
        long lo = recs[s->files[0]].instance, hi = lo;
        for (int i = 0; i < s->n; i++) {
            long v = recs[s->files[i]].instance;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (hi - lo + 1 > s->n)
            s->qc |= QC_MISSING_INSTANCE;
    }
    mem_free(gaps);
    mem_free(sorted);
    return 0;
}

int series_assemble(FileRec *recs, int n, StrTab *t, Series **series, int *n_series, Err *e)
{
    *series = NULL;
    *n_series = 0;
    int *order = mem_calloc((size_t)(n ? n : 1), sizeof *order), m = 0;
    if (!order)
        return err_set(e, ERR_NOMEM, "out of memory assembling series");
    for (int i = 0; i < n; i++)
        if (!recs[i].skip)
            order[m++] = i;
    sort_recs = recs;
    sort_strs = t;
    qsort(order, (size_t)m, sizeof *order, cmp_file);
    /* Duplicates: the same SOPInstanceUID and frame again in the same series (sorted next to
     * each other). */
    int kept = 0, rc = 0;
    for (int k = 0; k < m && !rc; k++) {
        FileRec *r = &recs[order[k]];
        const FileRec *prev = kept ? &recs[order[kept - 1]] : NULL;
        if (prev && !strcmp(STR(r, sop_uid), STR(prev, sop_uid)) && r->frame == prev->frame &&
            !strcmp(STR(r, series_uid), STR(prev, series_uid))) {
            char path[4200], why[4400];
            series_rec_path(t, prev, path, sizeof path);
            if (r->n_frames > 1)
                snprintf(why, sizeof why, "frame %u: same SOPInstanceUID and frame as %s",
                         r->frame + 1, path);
            else
                snprintf(why, sizeof why, "same SOPInstanceUID as %s", path);
            if (!(rc = strtab_addz(t, "duplicate", &r->skip, e)))
                rc = strtab_addz(t, why, &r->reason, e);
            continue;
        }
        order[kept++] = order[k];
    }
    int cap = 0;
    Series *out = NULL;
    for (int k = 0; k < kept && !rc;) {
        int end = k + 1;
        while (end < kept &&
               !strcmp(STR(&recs[order[end]], series_uid), STR(&recs[order[k]], series_uid)))
            end++;
        if (*n_series == cap) {
            int ncap = cap ? 2 * cap : 16;
            Series *grown = mem_realloc(out, (size_t)ncap * sizeof *grown);
            if (!grown) {
                rc = err_set(e, ERR_NOMEM, "out of memory assembling series");
                break;
            }
            out = grown;
            cap = ncap;
        }
        Series *s = &out[(*n_series)++];
        memset(s, 0, sizeof *s);
        s->n = end - k;
        if (!(s->files = mem_calloc((size_t)s->n, sizeof *s->files))) {
            rc = err_set(e, ERR_NOMEM, "out of memory assembling series");
            break;
        }
        memcpy(s->files, order + k, (size_t)s->n * sizeof *s->files);
        rc = order_series(recs, s, e);
        k = end;
    }
    mem_free(order);
    if (rc) {
        series_free(out, *n_series);
        *n_series = 0;
        return rc;
    }
    *series = out;
    return 0;
}

void series_free(Series *series, int n_series)
{
    for (int i = 0; series && i < n_series; i++) {
        mem_free(series[i].files);
        mem_free(series[i].along);
    }
    mem_free(series);
}

void series_qc_text(uint32_t qc, char *out, size_t cap)
{
    static const char *const names[] = {"uneven_spacing", "missing_instance", "mixed_orientation",
                                        "tilt",           "mixed_geometry",   "single_slice"};
    size_t o = 0;
    out[0] = '\0';
    for (int b = 0; b < 6; b++)
        if (qc & (1u << b))
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? "," : "", names[b]);
}
