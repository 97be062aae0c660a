/* schema.c: `onfh schema check FILE`: an HDF5 file onfh wrote, checked against the layout its
 * schema attribute names (the data-schema/ documents describe the same layouts for people).
 *
 * The layout is declared once, below, as a table of datasets: path, type class, element size,
 * rank and the table it belongs to. The check then verifies presence, types and ranks, that the
 * columns of a table have one length, that indices point inside the tables they index, that
 * codes are in range, and the relations between tables (training slices of a series lie inside
 * /slices, vessel voxels add up to /native/voxels, images are grid_size square). */
#include "pipeline/schema.h"

#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
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
    else
        problem(&c, "schema %s: unknown to this onfh", schema);
    h5_close(c.f);
    *n_problems = c.n_problems;
    return strbuf_finish(&c.problems, report, NULL, e);
}
