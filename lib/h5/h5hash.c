/* h5hash.c: content hash of an HDF5 file (see h5hash.h). */
#include "lib/h5/h5hash.h"

#include <hdf5.h>
#include <string.h>

#include "lib/util/mem.h"
#include "lib/util/sha256.h"

typedef struct Walk {
    Sha256 h;
    int failed;
    char what[256]; /* the object that failed */
} Walk;

static void put_u64(Walk *w, uint64_t v)
{
    sha256_update(&w->h, &v, sizeof v);
}

static void put_str(Walk *w, const char *s)
{
    put_u64(w, strlen(s));
    sha256_update(&w->h, s, strlen(s));
}

/* Type class and size, shape, then the values of n elements read by `read` into a zeroed
 * buffer (padding inside compound types stays zero, so it hashes the same every time). */
static void put_values(Walk *w, hid_t type, hid_t space, int is_attr, hid_t obj)
{
    hid_t native = H5Tget_native_type(type, H5T_DIR_ASCEND);
    H5T_class_t cls = H5Tget_class(type);
    int vlen_str = cls == H5T_STRING && H5Tis_variable_str(type) > 0;
    size_t size = H5Tget_size(native);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[32] = {0};
    if (ndim > 32 || native < 0) {
        w->failed = 1;
        goto out;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    put_u64(w, (uint64_t)cls), put_u64(w, (uint64_t)size), put_u64(w, (uint64_t)ndim);
    for (int i = 0; i < ndim; i++)
        put_u64(w, (uint64_t)dims[i]);
    if (n <= 0)
        goto out;
    void *buf = mem_calloc((size_t)n, size);
    if (!buf) {
        w->failed = 1;
        goto out;
    }
    herr_t rc = is_attr ? H5Aread(obj, native, buf)
                        : H5Dread(obj, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc < 0) {
        w->failed = 1;
    } else if (vlen_str) { /* the characters, not the pointers */
        char **s = buf;
        for (hssize_t i = 0; i < n; i++)
            put_str(w, s[i] ? s[i] : "");
        H5Dvlen_reclaim(native, space, H5P_DEFAULT, buf);
    } else {
        sha256_update(&w->h, buf, (size_t)n * size);
    }
    mem_free(buf);
out:
    if (native >= 0)
        H5Tclose(native);
}

static herr_t on_attr(hid_t obj, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    Walk *w = op;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        w->failed = 1;
        return -1;
    }
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    put_str(w, name);
    put_values(w, type, space, 1, a);
    H5Sclose(space), H5Tclose(type), H5Aclose(a);
    return w->failed ? -1 : 0;
}

static herr_t on_object(hid_t root, const char *name, const H5O_info_t *info, void *op)
{
    Walk *w = op;
    snprintf(w->what, sizeof w->what, "%s", name);
    put_str(w, name);
    put_u64(w, (uint64_t)info->type);
    hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
    if (obj < 0) {
        w->failed = 1;
        return -1;
    }
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, on_attr, w);
    if (!w->failed && info->type == H5O_TYPE_DATASET) {
        hid_t type = H5Dget_type(obj), space = H5Dget_space(obj);
        put_values(w, type, space, 0, obj);
        H5Sclose(space), H5Tclose(type);
    }
    H5Oclose(obj);
    return w->failed ? -1 : 0;
}

int h5_content_sha256(const char *path, char hex[65], Err *e)
{
    hid_t f;
    H5E_BEGIN_TRY
    {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0)
        return err_set(e, ERR_IO, "%s: not an HDF5 file onfh can open", path);
    Walk w = {.failed = 0};
    sha256_init(&w.h);
    herr_t rc;
    H5E_BEGIN_TRY
    {
        rc = H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, on_object, &w);
    }
    H5E_END_TRY;
    H5Fclose(f);
    if (rc < 0 || w.failed)
        return err_set(e, ERR_FORMAT, "%s: cannot read object %s", path, w.what);
    uint8_t digest[32];
    sha256_final(&w.h, digest);
    sha256_to_hex(digest, hex);
    return 0;
}
