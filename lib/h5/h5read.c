/* h5read.c: reading HDF5 datasets and attributes by path (see h5read.h).
 *
 * Existence is checked link by link with H5Lexists before anything is opened, so a missing
 * object is an onfh error message, not a dump of the HDF5 error stack on stderr. */
#include "lib/h5/h5read.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/mem.h"

/* The file name of loc, for messages. */
static const char *file_name(hid_t loc, char *buf, size_t size)
{
    if (H5Fget_name(loc, buf, size) < 0)
        snprintf(buf, size, "(hdf5 file)");
    return buf;
}

int h5_open_read(const char *path, hid_t *file, Err *e)
{
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    hid_t f;
    H5E_BEGIN_TRY /* HDF5's own error stack would only repeat "not an HDF5 file" on stderr */
    {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0)
        return err_set(e, ERR_FORMAT, "%s: not an HDF5 file", path);
    *file = f;
    return 0;
}

void h5_close(hid_t file)
{
    if (file >= 0)
        H5Fclose(file);
}

int h5_exists(hid_t loc, const char *path)
{
    char buf[1024];
    if (strcmp(path, ".") == 0)
        return 1;
    if (strlen(path) >= sizeof buf)
        return 0;
    /* H5Lexists needs each parent to exist, so test every prefix "a", "a/b", "a/b/c" */
    for (size_t i = 0;; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            if (i > 0) {
                memcpy(buf, path, i);
                buf[i] = '\0';
                if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0)
                    return 0;
            }
            if (path[i] == '\0')
                return 1;
        }
    }
}

static int read_array(hid_t loc, const char *path, H5T_class_t want, hid_t mem_type, H5Array *out,
                      Err *e)
{
    char fname[512];
    *out = (H5Array){0};
    if (!h5_exists(loc, path))
        return err_set(e, ERR_FORMAT, "%s: no dataset '%s'", file_name(loc, fname, sizeof fname),
                       path);
    int rc;
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0) {
        rc = err_set(e, ERR_FORMAT, "%s: '%s' is not a dataset",
                     file_name(loc, fname, sizeof fname), path);
        goto out;
    }
    hid_t type = H5Dget_type(ds);
    H5T_class_t cls = H5Tget_class(type);
    H5Tclose(type);
    if (cls != want) {
        rc = err_set(e, ERR_FORMAT, "%s: dataset '%s' is not of %s type",
                     file_name(loc, fname, sizeof fname), path,
                     want == H5T_FLOAT ? "float" : "integer");
        goto out_close_ds;
    }
    hid_t space = H5Dget_space(ds);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5_MAX_DIMS];
    if (ndim < 0 || ndim > H5_MAX_DIMS) {
        H5Sclose(space);
        rc = err_set(e, ERR_FORMAT, "%s: dataset '%s' has %d dimensions (at most %d)",
                     file_name(loc, fname, sizeof fname), path, ndim, H5_MAX_DIMS);
        goto out_close_ds;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    out->ndim = ndim;
    out->numel = 1;
    for (int i = 0; i < ndim; i++) {
        out->dims[i] = (int64_t)dims[i];
        out->numel *= (size_t)dims[i];
    }
    out->data = mem_alloc((out->numel ? out->numel : 1) * 4); /* float and int32: 4 bytes */
    if (!out->data) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading '%s' (%zu values)",
                     file_name(loc, fname, sizeof fname), path, out->numel);
        goto out_close_ds;
    }
    if (out->numel && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0) {
        rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset '%s'",
                     file_name(loc, fname, sizeof fname), path);
        goto out_free;
    }
    H5Dclose(ds);
    return 0;

out_free:
    h5_array_free(out);
out_close_ds:
    H5Dclose(ds);
out:
    return rc;
}

int h5_read_float(hid_t loc, const char *path, H5Array *out, Err *e)
{
    return read_array(loc, path, H5T_FLOAT, H5T_NATIVE_FLOAT, out, e);
}

int h5_read_int(hid_t loc, const char *path, H5Array *out, Err *e)
{
    return read_array(loc, path, H5T_INTEGER, H5T_NATIVE_INT32, out, e);
}

void h5_array_free(H5Array *a)
{
    mem_free(a->data);
    *a = (H5Array){0};
}

/* Opens attribute `name` of the object at path; *attr < 0 and an error if it is missing. */
static int open_attr(hid_t loc, const char *path, const char *name, hid_t *attr, Err *e)
{
    char fname[512];
    *attr = -1;
    if (!h5_exists(loc, path) || H5Aexists_by_name(loc, path, name, H5P_DEFAULT) <= 0)
        return err_set(e, ERR_FORMAT, "%s: no attribute '%s' on '%s'",
                       file_name(loc, fname, sizeof fname), name, path);
    *attr = H5Aopen_by_name(loc, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (*attr < 0)
        return err_set(e, ERR_FORMAT, "%s: cannot open attribute '%s' on '%s'",
                       file_name(loc, fname, sizeof fname), name, path);
    return 0;
}

/* Reads attribute name, which must hold exactly `want` values, as mem_type. */
static int read_attr(hid_t loc, const char *path, const char *name, hid_t mem_type, void *out,
                     hssize_t want, Err *e)
{
    char fname[512];
    hid_t attr;
    int rc = open_attr(loc, path, name, &attr, e);
    if (rc)
        return rc;
    hid_t space = H5Aget_space(attr);
    hssize_t count = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    if (count != want)
        rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' on '%s' has %lld values, expected %lld",
                     file_name(loc, fname, sizeof fname), name, path, (long long)count,
                     (long long)want);
    else if (H5Aread(attr, mem_type, out) < 0)
        rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' on '%s' is not numeric",
                     file_name(loc, fname, sizeof fname), name, path);
    H5Aclose(attr);
    return rc;
}

int h5_attr_double(hid_t loc, const char *path, const char *name, double *out, Err *e)
{
    return read_attr(loc, path, name, H5T_NATIVE_DOUBLE, out, 1, e);
}

int h5_attr_doubles(hid_t loc, const char *path, const char *name, double *out, int n, Err *e)
{
    return read_attr(loc, path, name, H5T_NATIVE_DOUBLE, out, n, e);
}

int h5_attr_long(hid_t loc, const char *path, const char *name, long *out, Err *e)
{
    return read_attr(loc, path, name, H5T_NATIVE_LONG, out, 1, e);
}

int h5_attr_string(hid_t loc, const char *path, const char *name, char *buf, size_t size, Err *e)
{
    char fname[512];
    hid_t attr;
    int rc = open_attr(loc, path, name, &attr, e);
    if (rc)
        return rc;
    hid_t type = H5Aget_type(attr);
    hid_t mem = H5Tcopy(H5T_C_S1);
    if (H5Tget_class(type) != H5T_STRING) {
        rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' on '%s' is not a string",
                     file_name(loc, fname, sizeof fname), name, path);
    } else if (H5Tis_variable_str(type) > 0) {
        char *s = NULL;
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (H5Aread(attr, mem, &s) < 0 || !s)
            rc = err_set(e, ERR_FORMAT, "%s: cannot read attribute '%s' on '%s'",
                         file_name(loc, fname, sizeof fname), name, path);
        else if (strlen(s) >= size)
            rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' on '%s' longer than %zu bytes",
                         file_name(loc, fname, sizeof fname), name, path, size - 1);
        else
            memcpy(buf, s, strlen(s) + 1);
        if (s)
            H5free_memory(s); /* HDF5 allocated it */
    } else {
        size_t len = H5Tget_size(type);
        char *tmp = mem_alloc(len + 1);
        H5Tset_size(mem, len + 1); /* room for the terminator HDF5 adds */
        if (!tmp)
            rc = err_set(e, ERR_NOMEM, "out of memory reading attribute '%s'", name);
        else if (H5Aread(attr, mem, tmp) < 0)
            rc = err_set(e, ERR_FORMAT, "%s: cannot read attribute '%s' on '%s'",
                         file_name(loc, fname, sizeof fname), name, path);
        else if (strlen(tmp) >= size)
            rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' on '%s' longer than %zu bytes",
                         file_name(loc, fname, sizeof fname), name, path, size - 1);
        else
            memcpy(buf, tmp, strlen(tmp) + 1);
        mem_free(tmp);
    }
    H5Tclose(mem);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

int h5_read_rows(hid_t loc, const char *path, int64_t first, int64_t n, hid_t mem_type, void *buf,
                 Err *e)
{
    char fname[512];
    if (!h5_exists(loc, path))
        return err_set(e, ERR_FORMAT, "%s: no dataset '%s'", file_name(loc, fname, sizeof fname),
                       path);
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0)
        return err_set(e, ERR_FORMAT, "%s: '%s' is not a dataset",
                       file_name(loc, fname, sizeof fname), path);
    hid_t space = H5Dget_space(ds);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5_MAX_DIMS], start[H5_MAX_DIMS] = {0}, count[H5_MAX_DIMS];
    int rc = 0;
    if (ndim < 1 || ndim > H5_MAX_DIMS) {
        rc = err_set(e, ERR_FORMAT, "%s: dataset '%s' has %d dimensions",
                     file_name(loc, fname, sizeof fname), path, ndim);
        goto out;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    if (first < 0 || n < 0 || (hsize_t)(first + n) > dims[0]) {
        rc = err_set(e, ERR_FORMAT, "%s: rows %lld..%lld of '%s', which has %llu",
                     file_name(loc, fname, sizeof fname), (long long)first, (long long)(first + n),
                     path, (unsigned long long)dims[0]);
        goto out;
    }
    if (n == 0)
        goto out;
    for (int i = 0; i < ndim; i++)
        count[i] = dims[i];
    start[0] = (hsize_t)first, count[0] = (hsize_t)n;
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mem = H5Screate_simple(ndim, count, NULL);
    if (H5Dread(ds, mem_type, mem, space, H5P_DEFAULT, buf) < 0)
        rc = err_set(e, ERR_FORMAT, "%s: cannot read rows of '%s' as the requested type",
                     file_name(loc, fname, sizeof fname), path);
    H5Sclose(mem);
out:
    H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

int h5_read_strings(hid_t loc, const char *file, const char *path, size_t w, char **out,
                    long *count, Err *e)
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, w + 1);
    *out = np >= 0 ? mem_calloc((size_t)np + 1, w + 1) : NULL;
    int rc = 0;
    if (!*out || (np > 0 && H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0))
        rc = err_set(e, ERR_FORMAT, "%s: cannot read %s", file, path);
    *count = (long)np;
    H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    return rc;
}
