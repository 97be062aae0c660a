/* schema.c: `onfh schema check FILE`: an HDF5 file onfh wrote, checked against the layout its
 * schema attribute names (the data-schema/ documents describe the same layouts for people).
 *
 * The layout is declared once, below, as a table of datasets: path, type class, element size,
 * rank and the table it belongs to. The check then verifies presence, types and ranks, that the
 * columns of a table have one length, that indices point inside the tables they index, that
 * codes are in range, and the relations between tables (training slices of a series lie inside
 * /slices, vessel voxels add up to /native/voxels, images are grid_size square). Evaluation
 * and vessel files: their shapes against the models, metrics and resamples their attributes
 * name, values in their ranges (ROC curves monotone from (0, 0), calibration bins, rates in
 * [0, 1], a symmetric DeLong covariance) and the identities between vessel columns. */
#include "pipeline/schema.h"

#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/stats/metrics.h"
#include "lib/util/mem.h"
#include "lib/util/strbuf.h"

typedef enum { T_INT, T_UINT, T_FLOAT, T_STRING } TypeClass;

typedef struct Column {
    const char *path;
    TypeClass type;
    size_t size; /* bytes per element (string: length) */
    int rank;
    int width; /* second dimension for rank 2 (0: any) */
} Column;

/* schema onfh-cohort-1 (data-schema/cohort.md) */
static const Column cohort_columns[] = {
    {"/patients/pseudonym", T_STRING, 16, 1, 0},
    {"/patients/sex", T_STRING, 2, 1, 0},
    {"/patients/age_years", T_FLOAT, 8, 1, 0},
    {"/patients/n_studies", T_INT, 4, 1, 0},
    {"/studies/patient", T_INT, 4, 1, 0},
    {"/studies/day", T_INT, 4, 1, 0},
    {"/studies/visit", T_INT, 4, 1, 0},
    {"/series/patient", T_INT, 4, 1, 0},
    {"/series/study", T_INT, 4, 1, 0},
    {"/series/role", T_INT, 1, 1, 0},
    {"/series/qc_flags", T_UINT, 4, 1, 0},
    {"/series/n_slices", T_INT, 4, 1, 0},
    {"/series/rows", T_INT, 4, 1, 0},
    {"/series/columns", T_INT, 4, 1, 0},
    {"/series/spacing_mm", T_FLOAT, 8, 2, 3},
    {"/series/orientation", T_FLOAT, 8, 2, 6},
    {"/series/origin_mm", T_FLOAT, 8, 2, 3},
    {"/series/first_slice", T_INT, 8, 1, 0},
    {"/series/native_offset", T_INT, 8, 1, 0},
    {"/series/description", T_STRING, 64, 1, 0},
    {"/series/manufacturer", T_STRING, 64, 1, 0},
    {"/series/model", T_STRING, 64, 1, 0},
    {"/series/transfer_syntax", T_STRING, 64, 1, 0},
    {"/slices/image", T_FLOAT, 4, 3, 0},
    {"/slices/series", T_INT, 4, 1, 0},
    {"/slices/index", T_INT, 4, 1, 0},
    {"/slices/patient", T_INT, 4, 1, 0},
    {"/slices/position_mm", T_FLOAT, 4, 1, 0},
    {"/slices/label", T_INT, 1, 1, 0},
    {"/slices/valid", T_INT, 1, 1, 0},
    {"/native/voxels", T_FLOAT, 4, 1, 0},
    {"/clinical/patient", T_INT, 4, 1, 0},
    {"/clinical/hip", T_STRING, 2, 1, 0},
    {"/clinical/visit", T_INT, 4, 1, 0},
    {"/clinical/days_from_baseline", T_INT, 4, 1, 0},
    {"/clinical/treatment", T_STRING, 16, 1, 0},
    {"/clinical/treatment_day", T_INT, 4, 1, 0},
    {"/clinical/treated_before_visit", T_INT, 1, 1, 0},
    {"/clinical/outcome", T_STRING, 16, 1, 0},
};
static const char *const cohort_attributes[] = {
    "schema",       "onfh_version", "onfh_commit", "config_sha256", "inputs_sha256",
    "hdf5_version", "mpi_version",  "pseudonym",   "grid_size",     "clip_quantiles"};

typedef struct Check {
    const char *file;
    hid_t f;
    StrBuf problems;
    int n_problems;
} Check;

static void problem(Check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(Check *c, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    strbuf_printf(&c->problems, "%s: %s\n", c->file, text);
    c->n_problems++;
}

/* First dimension of a dataset, -1 when absent or unreadable. */
static long rows_of(Check *c, const char *path)
{
    if (!h5_exists(c->f, path))
        return -1;
    hid_t d = H5Dopen2(c->f, path, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[8];
    int r = s < 0 ? -1 : H5Sget_simple_extent_dims(s, dims, NULL);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return r < 1 ? -1 : (long)dims[0];
}

static void check_column(Check *c, const Column *col)
{
    if (!h5_exists(c->f, col->path)) {
        problem(c, "%s: missing", col->path);
        return;
    }
    hid_t d = H5Dopen2(c->f, col->path, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    hsize_t dims[8];
    int rank = H5Sget_simple_extent_dims(s, dims, NULL);
    static const H5T_class_t want[] = {H5T_INTEGER, H5T_INTEGER, H5T_FLOAT, H5T_STRING};
    static const char *const names[] = {"integer", "unsigned integer", "float", "string"};
    if (cls != want[col->type] || size != col->size ||
        (col->type == T_UINT && H5Tget_sign(t) != H5T_SGN_NONE) ||
        (col->type == T_INT && H5Tget_sign(t) != H5T_SGN_2))
        problem(c, "%s: expected %s of %zu bytes", col->path, names[col->type], col->size);
    if (rank != col->rank || (col->rank == 2 && col->width && dims[1] != (hsize_t)col->width))
        problem(c, "%s: expected rank %d%s", col->path, col->rank, col->width ? " and width" : "");
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
}

/* Reads an integer column (converted to int32 by HDF5); NULL with a problem when it cannot. */
static int32_t *ints(Check *c, const char *path, long *n)
{
    H5Array a;
    Err e = {0};
    if (!h5_exists(c->f, path) || h5_read_int(c->f, path, &a, &e)) {
        *n = 0;
        return NULL;
    }
    *n = (long)a.numel;
    return a.data;
}

static void check_index(Check *c, const char *path, long limit, const char *table)
{
    long n;
    int32_t *v = ints(c, path, &n);
    for (long i = 0; v && i < n; i++)
        if (v[i] < 0 || v[i] >= limit) {
            problem(c, "%s[%ld] = %d: not a row of %s (%ld rows)", path, i, v[i], table, limit);
            break;
        }
    mem_free(v);
}

static void check_codes(Check *c, const char *path, int lo, int hi)
{
    long n;
    int32_t *v = ints(c, path, &n);
    for (long i = 0; v && i < n; i++)
        if (v[i] < lo || v[i] > hi) {
            problem(c, "%s[%ld] = %d: expected %d..%d", path, i, v[i], lo, hi);
            break;
        }
    mem_free(v);
}

static void check_cohort(Check *c)
{
    for (size_t k = 0; k < sizeof cohort_attributes / sizeof *cohort_attributes; k++)
        if (H5Aexists(c->f, cohort_attributes[k]) <= 0)
            problem(c, "root attribute %s: missing", cohort_attributes[k]);
    for (size_t k = 0; k < sizeof cohort_columns / sizeof *cohort_columns; k++)
        check_column(c, &cohort_columns[k]);
    /* one length per table */
    static const char *const tables[] = {"/patients", "/studies", "/series", "/slices",
                                         "/clinical"};
    long len[5] = {0};
    for (int t = 0; t < 5; t++) {
        len[t] = -1;
        for (size_t k = 0; k < sizeof cohort_columns / sizeof *cohort_columns; k++) {
            const char *p = cohort_columns[k].path;
            if (strncmp(p, tables[t], strlen(tables[t])) || p[strlen(tables[t])] != '/')
                continue;
            long r = rows_of(c, p);
            if (len[t] < 0)
                len[t] = r;
            else if (r >= 0 && r != len[t])
                problem(c, "%s has %ld rows, other columns of %s have %ld", p, r, tables[t],
                        len[t]);
        }
    }
    long np = len[0], nst = len[1], ns = len[2], nsl = len[3];
    check_index(c, "/studies/patient", np, "/patients");
    check_index(c, "/series/patient", np, "/patients");
    check_index(c, "/series/study", nst, "/studies");
    check_index(c, "/slices/series", ns, "/series");
    check_index(c, "/slices/patient", np, "/patients");
    check_index(c, "/clinical/patient", np, "/patients");
    check_codes(c, "/series/role", 0, 2);
    check_codes(c, "/slices/label", -1, 1);
    check_codes(c, "/slices/valid", 0, 1);
    check_codes(c, "/clinical/treated_before_visit", 0, 1);
    /* images are grid_size square; series slices and voxels add up */
    long grid = 0;
    Err e = {0};
    if (h5_attr_long(c->f, ".", "grid_size", &grid, &e) == 0 && h5_exists(c->f, "/slices/image")) {
        hid_t d = H5Dopen2(c->f, "/slices/image", H5P_DEFAULT), s = H5Dget_space(d);
        hsize_t dims[3] = {0};
        if (H5Sget_simple_extent_dims(s, dims, NULL) == 3 &&
            (dims[1] != (hsize_t)grid || dims[2] != (hsize_t)grid))
            problem(c, "/slices/image: %llu x %llu images, grid_size says %ld",
                    (unsigned long long)dims[1], (unsigned long long)dims[2], grid);
        H5Sclose(s);
        H5Dclose(d);
    }
    long n1, n2, n3, n4, n5;
    int32_t *first = ints(c, "/series/first_slice", &n1), *count = ints(c, "/series/n_slices", &n2);
    int32_t *native = ints(c, "/series/native_offset", &n3), *rows = ints(c, "/series/rows", &n4);
    int32_t *cols = ints(c, "/series/columns", &n5);
    long voxels = 0, in_slices = 0;
    for (long s = 0; first && count && native && rows && cols && s < n1; s++) {
        if (first[s] >= 0) {
            in_slices += count[s];
            if (first[s] + count[s] > nsl)
                problem(c, "/series/first_slice[%ld]: its %d slices run past /slices", s, count[s]);
        }
        if (native[s] >= 0) {
            if (native[s] != voxels)
                problem(c, "/series/native_offset[%ld] = %d, expected %ld", s, native[s], voxels);
            voxels += (long)count[s] * rows[s] * cols[s];
        }
    }
    if (first && in_slices != nsl)
        problem(c, "training series hold %ld slices, /slices has %ld", in_slices, nsl);
    long nv = rows_of(c, "/native/voxels");
    if (nv >= 0 && nv != voxels)
        problem(c, "/native/voxels has %ld values, the vessel series %ld", nv, voxels);
    mem_free(first);
    mem_free(count);
    mem_free(native);
    mem_free(rows);
    mem_free(cols);
}

/* schema onfh-checkpoint-1 (data-schema/checkpoint.md): the attributes read, and the file
 * loads strictly into the model it names (every tensor present, of its shape, none extra). */
static void check_checkpoint(Check *c)
{
    NnCheckpointInfo info;
    Err e = {0};
    if (nn_checkpoint_info(c->file, &info, &e)) {
        problem(c, "%s", e.msg);
        return;
    }
    NnGraph g;
    int moments = info.has_optim ? nn_optim_moments(&info.optim) : 0;
    if (info.classes < 1 || info.in_channels < 1 || info.image_size < 1) {
        problem(c, "classes %d, in_channels %d, image_size %d: each must be positive", info.classes,
                info.in_channels, info.image_size);
        return;
    }
    if (nn_model_graph(&g, nn_backend_ref(), info.model, 1, info.in_channels, info.image_size,
                       info.image_size, info.classes, 0, moments, &e)) {
        problem(c, "%s", e.msg);
        return;
    }
    NnCheckpointInfo loaded;
    if (nn_checkpoint_load(c->file, &g.store, &loaded, 0, NULL, &e))
        problem(c, "%s", e.msg);
    nn_graph_free(&g);
}

/* Rank and dims of a dataset, -1 when absent or unreadable. */
static int dims_of(Check *c, const char *path, hsize_t dims[8])
{
    if (!h5_exists(c->f, path))
        return -1;
    hid_t d = H5Dopen2(c->f, path, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    int r =
        s < 0 || H5Sget_simple_extent_ndims(s) > 8 ? -1 : H5Sget_simple_extent_dims(s, dims, NULL);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return r;
}

/* Every value of a numeric dataset as doubles (NULL, *n = 0 when absent or unreadable: the
 * column check has said why). */
static double *doubles(Check *c, const char *path, long *n)
{
    hsize_t dims[8];
    int r = dims_of(c, path, dims);
    *n = 0;
    if (r < 0)
        return NULL;
    long total = 1;
    for (int k = 0; k < r; k++)
        total *= (long)dims[k];
    double *v = mem_alloc((size_t)(total ? total : 1) * sizeof *v);
    hid_t d = H5Dopen2(c->f, path, H5P_DEFAULT);
    hid_t t = d < 0 ? -1 : H5Dget_type(d);
    int ok = v && t >= 0 && H5Tget_class(t) != H5T_STRING &&
             H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    if (!ok) {
        mem_free(v);
        return NULL;
    }
    *n = total;
    return v;
}

static void check_attributes(Check *c, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (H5Aexists(c->f, names[k]) <= 0)
            problem(c, "root attribute %s: missing", names[k]);
}

/* The first value of v[0..n) outside [lo, hi] (NaN allowed when nan_ok) is a problem. */
static void check_range(Check *c, const char *path, const double *v, long n, double lo, double hi,
                        int nan_ok, const char *what)
{
    for (long i = 0; v && i < n; i++)
        if (isnan(v[i]) ? !nan_ok : v[i] < lo || v[i] > hi) {
            problem(c, "%s[%ld] = %g: expected %s", path, i, v[i], what);
            return;
        }
}

/* schema onfh-evaluation-1 (data-schema/evaluation.md) */
static const char *const evaluation_attributes[] = {"schema",       "run",         "config_sha256",
                                                    "onfh_version", "onfh_commit", "metrics",
                                                    "models",       "resamples",   "seed"};

/* /models/NAME: the pooled ROC curve and the calibration bins; *slices gets the binned count. */
static void check_evaluation_model(Check *c, const char *name, long *slices)
{
    static const char *const curves[] = {"roc_fpr",
                                         "roc_tpr",
                                         "roc_threshold",
                                         "calibration_mean_predicted",
                                         "calibration_fraction_positive",
                                         "calibration_count"};
    char path[6][300];
    for (int k = 0; k < 6; k++) {
        snprintf(path[k], sizeof path[k], "/models/%s/%s", name, curves[k]);
        check_column(c, &(Column){path[k], k == 5 ? T_INT : T_FLOAT, k == 5 ? 4 : 8, 1, 0});
    }
    long n[6];
    double *v[6];
    for (int k = 0; k < 6; k++)
        v[k] = doubles(c, path[k], &n[k]);
    double *fpr = v[0], *tpr = v[1], *thr = v[2], *mean = v[3], *frac = v[4], *count = v[5];
    if (fpr && tpr && thr) {
        if (n[1] != n[0] || n[2] != n[0])
            problem(c, "/models/%s: roc_fpr, roc_tpr, roc_threshold have %ld, %ld, %ld points",
                    name, n[0], n[1], n[2]);
        else if (n[0] < 1 || fpr[0] != 0 || tpr[0] != 0 || thr[0] != INFINITY)
            problem(c, "/models/%s: the ROC curve must start at (0, 0) with threshold +inf", name);
        else {
            check_range(c, path[0], fpr, n[0], 0, 1, 0, "a false positive rate in [0, 1]");
            check_range(c, path[1], tpr, n[1], 0, 1, 0, "a true positive rate in [0, 1]");
            for (long i = 1; i < n[0]; i++)
                if (!(fpr[i] >= fpr[i - 1] && tpr[i] >= tpr[i - 1] && thr[i] < thr[i - 1])) {
                    problem(c,
                            "/models/%s: ROC point %ld goes back (rates must not fall, thresholds "
                            "must fall)",
                            name, i);
                    break;
                }
        }
    }
    if (mean && frac && count) {
        long bins = n[5];
        if (n[3] != bins || n[4] != bins)
            problem(c, "/models/%s: calibration datasets have %ld, %ld, %ld bins", name, n[3], n[4],
                    bins);
        for (long b = 0; n[3] == bins && n[4] == bins && b < bins; b++) {
            int empty = count[b] == 0;
            if (count[b] < 0 || (empty ? !isnan(mean[b]) || !isnan(frac[b])
                                       : !(frac[b] >= 0 && frac[b] <= 1) ||
                                             !(mean[b] >= (double)b / bins - 1e-12 &&
                                               mean[b] <= (double)(b + 1) / bins + 1e-12))) {
                problem(c,
                        "/models/%s: calibration bin %ld (count %g, mean predicted %g, fraction "
                        "positive %g): expected a mean in [%g, %g] and a fraction in [0, 1], "
                        "both NaN when empty",
                        name, b, count[b], mean[b], frac[b], (double)b / bins,
                        (double)(b + 1) / bins);
                break;
            }
            *slices += (long)count[b];
        }
    }
    for (int k = 0; k < 6; k++)
        mem_free(v[k]);
}

static void check_evaluation(Check *c)
{
    check_attributes(c, evaluation_attributes,
                     sizeof evaluation_attributes / sizeof *evaluation_attributes);
    Err e = {0};
    char metrics[1024] = "", models[8192] = "";
    StrBuf want = STRBUF_INIT;
    for (int k = 0; k < METRIC_COUNT; k++)
        strbuf_printf(&want, "%s%s", k ? "," : "", metric_names[k]);
    char *want_text = NULL;
    if (strbuf_finish(&want, &want_text, NULL, &e)) {
        problem(c, "%s", e.msg);
        return;
    }
    if (h5_attr_string(c->f, ".", "metrics", metrics, sizeof metrics, &e) == 0 &&
        strcmp(metrics, want_text))
        problem(c, "root attribute metrics: '%s', expected '%s'", metrics, want_text);
    mem_free(want_text);
    long resamples = -1;
    if (h5_attr_long(c->f, ".", "resamples", &resamples, &e) == 0 && resamples < 1)
        problem(c, "root attribute resamples: %ld, expected at least 1", resamples);
    /* the models, in order; each has its group of curves */
    int M = 0;
    long slices = -1;
    if (h5_attr_string(c->f, ".", "models", models, sizeof models, &e) == 0 && models[0]) {
        for (char *name = models, *end; name; name = end ? end + 1 : NULL, M++) {
            end = strchr(name, ',');
            if (end)
                *end = 0;
            long n = 0;
            check_evaluation_model(c, name, &n);
            if (slices >= 0 && n != slices)
                problem(c, "/models/%s: calibration bins count %ld slices, the models before %ld",
                        name, n, slices);
            slices = n;
        }
    } else
        problem(c, "root attribute models: expected the model names, comma-separated");
    /* bootstrap distributions and jackknife: (resamples | patients, models, metrics) */
    static const char *const arrays[] = {"/bootstrap/distribution", "/bootstrap/jackknife"};
    for (int k = 0; k < 2; k++) {
        check_column(c, &(Column){arrays[k], T_FLOAT, 8, 3, 0});
        hsize_t d[8];
        if (dims_of(c, arrays[k], d) != 3)
            continue;
        if ((k == 0 && (long)d[0] != resamples) || (k == 1 && d[0] < 2) || (long)d[1] != M ||
            d[2] != METRIC_COUNT) {
            problem(c, "%s: %llu x %llu x %llu, expected %s x %d models x %d metrics", arrays[k],
                    (unsigned long long)d[0], (unsigned long long)d[1], (unsigned long long)d[2],
                    k ? "patients (2 or more)" : "resamples", M, METRIC_COUNT);
            continue;
        }
        long n;
        double *v = doubles(c, arrays[k], &n);
        /* every metric but the calibration slope and intercept lies in [0, 1] (NaN: undefined) */
        for (long i = 0; v && i < n; i++)
            if (i % METRIC_COUNT < METRIC_CAL_SLOPE && !isnan(v[i]) && !(v[i] >= 0 && v[i] <= 1)) {
                problem(c, "%s[%ld][%ld][%s] = %g: expected a value in [0, 1] or NaN", arrays[k],
                        i / (M * METRIC_COUNT), i / METRIC_COUNT % M,
                        metric_names[i % METRIC_COUNT], v[i]);
                break;
            }
        mem_free(v);
    }
    /* DeLong: a symmetric (models x models) covariance with a non-negative diagonal */
    check_column(c, &(Column){"/delong_covariance", T_FLOAT, 8, 2, M});
    hsize_t d[8];
    long n;
    double *cov = dims_of(c, "/delong_covariance", d) == 2 && (long)d[0] == M && (long)d[1] == M
                      ? doubles(c, "/delong_covariance", &n)
                      : NULL;
    for (int r = 0; cov && r < M; r++)
        for (int q = 0; q <= r; q++)
            if (!(cov[r * M + q] == cov[q * M + r] ||
                  (isnan(cov[r * M + q]) && isnan(cov[q * M + r]))) ||
                (r == q && cov[r * M + r] < 0)) {
                problem(c,
                        "/delong_covariance[%d][%d] = %g, [%d][%d] = %g: expected a symmetric "
                        "matrix with a non-negative diagonal",
                        r, q, cov[r * M + q], q, r, cov[q * M + r]);
                r = M;
                break;
            }
    if (!cov && dims_of(c, "/delong_covariance", d) == 2)
        problem(c, "/delong_covariance: expected %d x %d (models)", M, M);
    mem_free(cov);
}

/* schema onfh-vessels-2 (data-schema/vessels.md) */
static const char *const vessels_attributes[] = {"schema",
                                                 "run",
                                                 "config_sha256",
                                                 "onfh_version",
                                                 "onfh_commit",
                                                 "length_definition",
                                                 "branch_definition",
                                                 "vesselness",
                                                 "skeleton",
                                                 "sigmas_mm",
                                                 "frangi_alpha_beta_c",
                                                 "threshold_low_high",
                                                 "min_object_mm3",
                                                 "prune_mm",
                                                 "end_extension_max_mm",
                                                 "junction_line_mm",
                                                 "junction_shift_max_mm",
                                                 "smooth_half_window"};
/* the /series columns, in the order of the enum */
enum {
    V_SERIES,
    V_PATIENT,
    V_VISIT,
    V_DAY,
    V_BRANCHES,
    V_JUNCTIONS,
    V_END_POINTS,
    V_PRUNED,
    V_END_END,
    V_JUNCTION_END,
    V_JUNCTION_JUNCTION,
    V_CYCLES,
    V_COMPONENTS,
    V_MASK_VOXELS,
    V_SKELETON_VOXELS,
    V_LENGTH,
    V_PATH,
    V_END_EXTENSION,
    V_JUNCTION_CORRECTION,
    V_MEAN_BRANCH,
    V_VESSELNESS_MAX,
    V_COLUMNS
};
static const Column vessels_columns[V_COLUMNS] = {
    {"/series/cohort_series", T_INT, 8, 1, 0},
    {"/series/patient", T_INT, 8, 1, 0},
    {"/series/visit", T_INT, 8, 1, 0},
    {"/series/day", T_INT, 8, 1, 0},
    {"/series/branches", T_INT, 8, 1, 0},
    {"/series/junctions", T_INT, 8, 1, 0},
    {"/series/end_points", T_INT, 8, 1, 0},
    {"/series/pruned", T_INT, 8, 1, 0},
    {"/series/end_end", T_INT, 8, 1, 0},
    {"/series/junction_end", T_INT, 8, 1, 0},
    {"/series/junction_junction", T_INT, 8, 1, 0},
    {"/series/cycles", T_INT, 8, 1, 0},
    {"/series/components", T_INT, 8, 1, 0},
    {"/series/mask_voxels", T_INT, 8, 1, 0},
    {"/series/skeleton_voxels", T_INT, 8, 1, 0},
    {"/series/length_mm", T_FLOAT, 8, 1, 0},
    {"/series/path_mm", T_FLOAT, 8, 1, 0},
    {"/series/end_extension_mm", T_FLOAT, 8, 1, 0},
    {"/series/junction_correction_mm", T_FLOAT, 8, 1, 0},
    {"/series/mean_branch_mm", T_FLOAT, 8, 1, 0},
    {"/series/vesselness_max", T_FLOAT, 8, 1, 0},
};

static void check_vessels(Check *c)
{
    check_attributes(c, vessels_attributes, sizeof vessels_attributes / sizeof *vessels_attributes);
    double *v[V_COLUMNS];
    long len[V_COLUMNS], rows = -1;
    int all = 1;
    for (int k = 0; k < V_COLUMNS; k++) {
        check_column(c, &vessels_columns[k]);
        v[k] = doubles(c, vessels_columns[k].path, &len[k]);
        if (v[k] && rows < 0)
            rows = len[k];
        else if (v[k] && len[k] != rows)
            problem(c, "%s has %ld rows, other columns of /series have %ld",
                    vessels_columns[k].path, len[k], rows);
        all = all && v[k] && len[k] == rows;
    }
    /* the relations between columns, once every column is there with one length */
    for (long i = 0; all && i < rows; i++) {
        double branches = v[V_BRANCHES][i], length = v[V_LENGTH][i], ext = v[V_END_EXTENSION][i];
        double by_type =
            v[V_END_END][i] + v[V_JUNCTION_END][i] + v[V_JUNCTION_JUNCTION][i] + v[V_CYCLES][i];
        double mean = branches > 0 ? length / branches : 0;
        const char *why = NULL;
        if (v[V_SERIES][i] < 0 || (i > 0 && v[V_SERIES][i] <= v[V_SERIES][i - 1]))
            why = "cohort_series: rows of cohort.h5's /series, increasing";
        else if (v[V_PATIENT][i] < 0)
            why = "patient: a row of cohort.h5's /patients";
        else if (branches != by_type)
            why = "branches = end_end + junction_end + junction_junction + cycles";
        else if (!(length >= 0 && v[V_PATH][i] >= 0 && ext >= 0 && ext <= length))
            why = "length_mm, path_mm, end_extension_mm >= 0, end_extension_mm <= length_mm";
        else if (!(fabs(v[V_JUNCTION_CORRECTION][i]) <= length))
            why = "|junction_correction_mm| <= length_mm";
        else if (!(fabs(v[V_MEAN_BRANCH][i] - mean) <= 1e-9 * (1 + mean)))
            why = "mean_branch_mm = length_mm / branches (0 without branches)";
        else if (!(v[V_SKELETON_VOXELS][i] >= 0 && v[V_SKELETON_VOXELS][i] <= v[V_MASK_VOXELS][i]))
            why = "0 <= skeleton_voxels <= mask_voxels";
        if (why) {
            problem(c, "/series row %ld: expected %s", i, why);
            break;
        }
    }
    for (int k = 0; k < V_COLUMNS; k++)
        mem_free(v[k]);
}

/* schema onfh-progression-1 (data-schema/progression.md) */
static const char *const progression_attributes[] = {"schema",
                                                     "run",
                                                     "config_sha256",
                                                     "onfh_version",
                                                     "onfh_commit",
                                                     "features",
                                                     "feature_definitions",
                                                     "model_features",
                                                     "unit",
                                                     "outcome_definition",
                                                     "cutoff_days",
                                                     "slice_threshold"};
static const Column progression_columns[] = {
    {"/patients/pseudonym", T_STRING, 16, 1, 0},
    {"/patients/patient", T_INT, 4, 1, 0},
    {"/patients/outcome", T_INT, 4, 1, 0},
    {"/patients/n_visits", T_INT, 4, 1, 0},
    {"/patients/visits_used", T_INT, 4, 1, 0},
    {"/patients/included", T_INT, 4, 1, 0},
    {"/patients/cnn_fold", T_INT, 4, 1, 0},
    {"/patients/fold", T_INT, 4, 1, 0},
    {"/visits/visit", T_INT, 4, 2, 0},
    {"/visits/day", T_INT, 4, 2, 0},
    {"/visits/days_since_previous", T_FLOAT, 4, 2, 0},
};
enum { PROGRESSION_FEATURES = 6 }; /* the last axis of /features/ARCH/values */

/* The names of the members of group `path` (at most cap), their count; -1 when absent. */
static int members(Check *c, const char *path, char (*names)[64], int cap)
{
    if (!h5_exists(c->f, path))
        return -1;
    hid_t g = H5Gopen2(c->f, path, H5P_DEFAULT);
    H5G_info_t info;
    int n = g >= 0 && H5Gget_info(g, &info) >= 0 ? (int)info.nlinks : -1;
    for (int k = 0; k < n && k < cap; k++)
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)k, names[k], 64,
                               H5P_DEFAULT) < 0)
            names[k][0] = '\0';
    if (g >= 0)
        H5Gclose(g);
    return n < cap ? n : cap;
}

static void check_progression(Check *c)
{
    check_attributes(c, progression_attributes,
                     sizeof progression_attributes / sizeof *progression_attributes);
    const size_t n_cols = sizeof progression_columns / sizeof *progression_columns;
    for (size_t k = 0; k < n_cols; k++)
        check_column(c, &progression_columns[k]);
    long n = rows_of(c, "/patients/outcome"), t = -1;
    hsize_t d[8];
    if (dims_of(c, "/visits/day", d) == 2)
        t = (long)d[1];
    for (size_t k = 0; n >= 0 && k < n_cols; k++) {
        long rows = rows_of(c, progression_columns[k].path);
        if (rows >= 0 && rows != n) /* a missing one is already a problem */
            problem(c, "%s: expected %ld rows (patients)", progression_columns[k].path, n);
    }
    long len;
    double *outcome = doubles(c, "/patients/outcome", &len);
    check_range(c, "/patients/outcome", outcome, len, 0, 1, 0, "0 stable or 1 progressed");
    double *included = doubles(c, "/patients/included", &len);
    check_range(c, "/patients/included", included, len, 0, 1, 0, "0 or 1");
    double *used = doubles(c, "/patients/visits_used", &len), *visits;
    long nv;
    visits = doubles(c, "/patients/n_visits", &nv);
    for (long i = 0; used && visits && len == nv && i < len; i++)
        if (used[i] < 0 || used[i] > visits[i] || visits[i] > t) {
            problem(c,
                    "/patients/visits_used[%ld] = %g of n_visits %g: expected 0 <= used <= "
                    "n_visits <= %ld (the visit axis)",
                    i, used[i], visits[i], t);
            break;
        }
    /* features: one group per CNN, values and mask (N, T, 6), the mask 0 or 1 */
    char names[8][64];
    int groups = members(c, "/features", names, 8);
    if (groups < 1)
        problem(c, "/features: expected a group per CNN (at least the selected one)");
    for (int g = 0; g < groups; g++) {
        char path[160];
        for (int m = 0; m < 2; m++) {
            snprintf(path, sizeof path, "/features/%s/%s", names[g], m ? "mask" : "values");
            Column col = {path, T_FLOAT, 4, 3, 0};
            check_column(c, &col);
            if (dims_of(c, path, d) == 3 &&
                ((long)d[0] != n || (long)d[1] != t || d[2] != PROGRESSION_FEATURES))
                problem(c, "%s: expected (%ld, %ld, %d): patients, visits, features", path, n, t,
                        PROGRESSION_FEATURES);
            if (m) {
                double *mask = doubles(c, path, &len);
                for (long i = 0; mask && i < len; i++)
                    if (mask[i] != 0.0 && mask[i] != 1.0) {
                        problem(c, "%s[%ld] = %g: expected 0 missing or 1 observed", path, i,
                                mask[i]);
                        break;
                    }
                mem_free(mask);
            }
        }
    }
    /* predictions: a probability for every included patient, NaN for the rest */
    int models = members(c, "/predictions", names, 8);
    if (models < 2)
        problem(c, "/predictions: expected lstm and logistic_last_visit at least");
    for (int m = 0; m < models; m++) {
        char path[160];
        snprintf(path, sizeof path, "/predictions/%s", names[m]);
        Column col = {path, T_FLOAT, 8, 1, 0};
        check_column(c, &col);
        double *p = doubles(c, path, &len);
        for (long i = 0; p && included && len == n && i < len; i++)
            if (included[i] ? !(p[i] >= 0 && p[i] <= 1) : !isnan(p[i])) {
                problem(c,
                        "%s[%ld] = %g: expected a probability for an included patient, NaN "
                        "otherwise (/patients/included %g)",
                        path, i, p[i], included[i]);
                break;
            }
        mem_free(p);
    }
    mem_free(outcome), mem_free(included), mem_free(used), mem_free(visits);
}

int schema_check(const char *path, char **report, int *n_problems, Err *e)
{
    Check c = {.file = path, .problems = STRBUF_INIT};
    *report = NULL;
    *n_problems = 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = h5_open_read(path, &c.f, e);
    if (rc)
        return rc;
    char schema[64] = "";
    Err ae = {0};
    if (h5_attr_string(c.f, ".", "schema", schema, sizeof schema, &ae))
        problem(&c, "no schema attribute: not a file onfh wrote");
    else if (!strcmp(schema, "onfh-cohort-1"))
        check_cohort(&c);
    else if (!strcmp(schema, "onfh-checkpoint-1"))
        check_checkpoint(&c);
    else if (!strcmp(schema, "onfh-evaluation-1"))
        check_evaluation(&c);
    else if (!strcmp(schema, "onfh-vessels-2"))
        check_vessels(&c);
    else if (!strcmp(schema, "onfh-progression-1"))
        check_progression(&c);
    else
        problem(&c, "schema %s: unknown to this onfh", schema);
    h5_close(c.f);
    *n_problems = c.n_problems;
    return strbuf_finish(&c.problems, report, NULL, e);
}
