/* h5out.c: collective HDF5 writing for one or many ranks (see h5out.h). */
#include "lib/h5/h5out.h"

#include <stdio.h>
#include <string.h>

#include "lib/h5/h5deflate.h"

/* ---------------------------------------------------------------------------------------------
 * Errors: HDF5 keeps a stack of messages; we report the innermost (most specific) one. */

typedef struct Walk {
    char *out;
    size_t cap;
} Walk;

static herr_t take_first(unsigned n, const H5E_error2_t *err, void *data)
{
    Walk *w = data;
    if (n == 0)
        snprintf(w->out, w->cap, "%s (%s)", err->desc ? err->desc : "", err->func_name);
    return 0;
}

void h5_error_text(char *out, size_t cap)
{
    Walk w = {out, cap};
    out[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, take_first, &w);
    H5Eclear2(H5E_DEFAULT);
}

static int h5_fail(Err *e, const char *what, const char *path)
{
    char text[512];
    h5_error_text(text, sizeof text);
    return err_set(e, ERR_IO, "%s: %s failed%s%s", path, what, text[0] ? ": " : "", text);
}

/* ---------------------------------------------------------------------------------------------
 * Files, groups, datasets. */

int h5out_create(H5Out *o, const char *path, MPI_Comm comm, Err *e)
{
    memset(o, 0, sizeof *o);
    o->file = o->dxpl = o->dcpl_base = H5I_INVALID_HID;
    snprintf(o->path, sizeof o->path, "%s", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back through Err, not stderr */
    (void)h5_deflate_backend();            /* links compress2 on libdeflate in (h5deflate.h) */
    int size = 1, initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_size(comm, &size);
    o->parallel = size > 1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fapl < 0 || fcpl < 0)
        goto fail;
    if (o->parallel) {
        if (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
            H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)
            goto fail;
    }
    o->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (o->file < 0)
        goto fail;
    o->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (o->dxpl < 0 || (o->parallel && H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0))
        goto fail;
    o->dcpl_base = H5Pcreate(H5P_DATASET_CREATE);
    if (o->dcpl_base < 0 || H5Pset_obj_track_times(o->dcpl_base, 0) < 0)
        goto fail;
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return 0;
fail:;
    int rc = h5_fail(e, "creating the file", path);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    h5out_close(o, NULL);
    return rc;
}

int h5out_close(H5Out *o, Err *e)
{
    int rc = 0;
    if (o->dxpl > 0)
        H5Pclose(o->dxpl);
    if (o->dcpl_base > 0)
        H5Pclose(o->dcpl_base);
    if (o->file > 0 && H5Fclose(o->file) < 0)
        rc = h5_fail(e, "closing the file", o->path);
    o->file = o->dxpl = o->dcpl_base = H5I_INVALID_HID;
    return rc;
}

int h5out_group(H5Out *o, const char *path, Err *e)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0) {
        if (gcpl >= 0)
            H5Pclose(gcpl);
        return h5_fail(e, "making group properties", o->path);
    }
    hid_t g = H5Gcreate2(o->file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%s", o->path, path);
        return h5_fail(e, "creating the group", where);
    }
    H5Gclose(g);
    return 0;
}

int h5out_dataset(H5Out *o, const char *path, hid_t type, int rank, const uint64_t *dims,
                  const uint64_t *chunk, int deflate, hid_t *ds, Err *e)
{
    char where[4200];
    snprintf(where, sizeof where, "%s:%s", o->path, path);
    *ds = H5I_INVALID_HID;
    if (rank < 1 || rank > 4 || (deflate && !chunk))
        return err_set(e, ERR_INTERNAL, "%s: bad dataset request (rank %d, deflate without chunks)",
                       where, rank);
    hsize_t d[4], c[4];
    for (int i = 0; i < rank; i++) {
        d[i] = dims[i];
        c[i] = chunk ? (chunk[i] < 1 ? 1 : chunk[i] > dims[i] && dims[i] ? dims[i] : chunk[i]) : 0;
    }
    hid_t space = H5Screate_simple(rank, d, NULL);
    hid_t dcpl = H5Pcopy(o->dcpl_base);
    int rc = 0;
    if (space < 0 || dcpl < 0) {
        rc = h5_fail(e, "making the dataspace", where);
        goto out;
    }
    /* A dataset with no rows cannot be chunked: leave it contiguous (and empty). */
    int chunked = chunk && d[0] > 0;
    if (chunked && (H5Pset_chunk(dcpl, rank, c) < 0 ||
                    (deflate && (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, deflate) < 0)) ||
                    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)) {
        rc = h5_fail(e, "setting chunks and filters", where);
        goto out;
    }
    *ds = H5Dcreate2(o->file, path, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (*ds < 0)
        rc = h5_fail(e, "creating the dataset", where);
out:
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return rc;
}

int h5out_write_rows(H5Out *o, hid_t ds, hid_t memtype, uint64_t first, uint64_t n, const void *buf,
                     Err *e)
{
    hid_t file_space = H5Dget_space(ds), mem_space = H5I_INVALID_HID;
    int rc = 0;
    hsize_t dims[4], start[4] = {0}, count[4];
    int rank = file_space < 0 ? -1 : H5Sget_simple_extent_dims(file_space, dims, NULL);
    if (rank < 1) {
        rc = h5_fail(e, "reading the dataset's shape", o->path);
        goto out;
    }
    if (first + n > dims[0]) {
        rc = err_set(e, ERR_INTERNAL, "%s: rows %llu..%llu beyond the %llu rows of a dataset",
                     o->path, (unsigned long long)first, (unsigned long long)(first + n),
                     (unsigned long long)dims[0]);
        goto out;
    }
    if (dims[0] == 0)
        goto out; /* an empty dataset: nothing to write on any rank (and MPI-IO chokes on it) */
    if (n == 0) {
        /* Takes part in the collective write with nothing selected on either side. */
        mem_space = H5Screate(H5S_NULL);
        H5Sselect_none(file_space);
    } else {
        for (int i = 0; i < rank; i++)
            count[i] = dims[i];
        start[0] = first;
        count[0] = n;
        mem_space = H5Screate_simple(rank, count, NULL);
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    if (mem_space < 0 || H5Dwrite(ds, memtype, mem_space, file_space, o->dxpl, buf) < 0)
        rc = h5_fail(e, "writing rows", o->path);
out:
    if (mem_space >= 0)
        H5Sclose(mem_space);
    if (file_space >= 0)
        H5Sclose(file_space);
    return rc;
}

hid_t h5out_string_type(size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, len ? len : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0)) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---------------------------------------------------------------------------------------------
 * Attributes. */

static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *value,
                      Err *e)
{
    hid_t acpl = H5Pcreate(H5P_ATTRIBUTE_CREATE);
    hid_t a = acpl < 0 ? H5I_INVALID_HID : H5Acreate2(obj, name, type, space, acpl, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, value) < 0 ? h5_fail(e, "writing the attribute", name) : 0;
    if (a >= 0)
        H5Aclose(a);
    if (acpl >= 0)
        H5Pclose(acpl);
    return rc;
}

int h5out_attr_string(hid_t obj, const char *name, const char *value, Err *e)
{
    hid_t type = h5out_string_type(strlen(value));
    hid_t space = H5Screate(H5S_SCALAR);
    int rc = type < 0 || space < 0 ? h5_fail(e, "making the attribute type", name)
                                   : write_attr(obj, name, type, space, value, e);
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

int h5out_attr_int(hid_t obj, const char *name, int64_t value, Err *e)
{
    hid_t space = H5Screate(H5S_SCALAR);
    int rc = space < 0 ? h5_fail(e, "making the attribute space", name)
                       : write_attr(obj, name, H5T_NATIVE_INT64, space, &value, e);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

int h5out_attr_doubles(hid_t obj, const char *name, const double *values, int n, Err *e)
{
    hsize_t dim = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    int rc = space < 0 ? h5_fail(e, "making the attribute space", name)
                       : write_attr(obj, name, H5T_NATIVE_DOUBLE, space, values, e);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}
