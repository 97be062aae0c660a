/* test_h5hash.c: the HDF5 content hash (lib/h5/h5hash.h) sees values, names, shapes and
 * attributes, and not where the library put them: the same content written in another order
 * and chunk layout hashes the same; one changed value, attribute or name does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "lib/h5/h5hash.h"

/* /a (6 floats, chunked or contiguous), /g/b (2x3 ints) with attribute "unit", written a-first
 * or b-first; bump changes one value of a, unit the attribute's text. */
static void write_file(const char *path, int a_first, int chunked, float bump, const char *unit)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float a[6] = {1, 2, 3, 4, 5, 6 + bump};
    int b[6] = {7, 8, 9, 10, 11, 12};
    hsize_t da[1] = {6}, db[2] = {2, 3}, chunk[1] = {2};
    hid_t g = H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int k = 0; k < 2; k++) {
        if ((k == 0) == (a_first != 0)) {
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            if (chunked)
                H5Pset_chunk(dcpl, 1, chunk);
            hid_t s = H5Screate_simple(1, da, NULL);
            hid_t d = H5Dcreate2(f, "a", H5T_NATIVE_FLOAT, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a);
            H5Dclose(d), H5Sclose(s), H5Pclose(dcpl);
        } else {
            hid_t s = H5Screate_simple(2, db, NULL);
            hid_t d = H5Dcreate2(g, "b", H5T_NATIVE_INT, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, H5T_VARIABLE);
            hid_t as = H5Screate(H5S_SCALAR);
            hid_t at = H5Acreate2(d, "unit", t, as, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(at, t, &unit);
            H5Aclose(at), H5Sclose(as), H5Tclose(t), H5Dclose(d), H5Sclose(s);
        }
    }
    H5Gclose(g), H5Fclose(f);
}

static void hash_of(const char *path, char hex[65])
{
    Err e = {0};
    if (h5_content_sha256(path, hex, &e))
        fail_msg("%s", e.msg);
}

static void test_content_not_layout(void **state)
{
    (void)state;
    /* mkdtemp fills in the six X of its template with a unique name */
    char dir[] = "/tmp/onfh_h5hash_XXXXXX", p[5][128], h[5][65];
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i < 5; i++)
        snprintf(p[i], sizeof p[i], "%s/f%d.h5", dir, i);
    write_file(p[0], 1, 0, 0.0f, "mm");
    write_file(p[1], 0, 1, 0.0f, "mm");  /* other order, chunked: other bytes */
    write_file(p[2], 1, 0, 1e-6f, "mm"); /* one value */
    write_file(p[3], 1, 0, 0.0f, "cm");  /* one attribute */
    for (int i = 0; i < 4; i++)
        hash_of(p[i], h[i]);
    assert_string_equal(h[0], h[1]);
    assert_string_not_equal(h[0], h[2]);
    assert_string_not_equal(h[0], h[3]);
    FILE *f = fopen(p[4], "w");
    fputs("not hdf5", f);
    fclose(f);
    Err e = {0};
    assert_int_not_equal(h5_content_sha256(p[4], h[4], &e), 0);
    assert_non_null(strstr(e.msg, "not an HDF5 file"));
    for (int i = 0; i < 5; i++)
        remove(p[i]);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_content_not_layout)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
