/* mpi_h5out.c: collective HDF5 writing (lib/h5/h5out.c) under mpirun on 1, 2 and 3 ranks.
 *   mpi_h5out FILE   every rank writes its share (rt_share) of the rows of a compressed,
 *                    chunked dataset, a string dataset and an empty one, plus attributes; then
 *                    rank 0 reopens the file serially and checks every value (TAP lines).
 * tests/integration/mpi.sh also compares the files of different rank counts with h5diff. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5out.h"
#include "pipeline/runtime.h"

enum { ROWS = 10, SIDE = 8 };

static int n_check;

static void check(int ok, const char *what)
{
    printf("%sok %d - %s\n", ok ? "" : "not ", ++n_check, what);
}

static float value(int row, int k)
{
    return (float)row * 1000.0f + (float)k * 0.5f;
}

static int write_file(const char *path, Err *e)
{
    H5Out o;
    uint64_t b, end;
    rt_share(ROWS, &b, &end);
    uint64_t n = end - b;
    float rows[ROWS * SIDE * SIDE];
    char names[ROWS][16];
    for (uint64_t r = 0; r < n; r++) {
        for (int k = 0; k < SIDE * SIDE; k++)
            rows[r * SIDE * SIDE + k] = value((int)(b + r), k);
        memset(names[r], 0, 16);
        snprintf(names[r], 16, "row%llu", (unsigned long long)(b + r));
    }
    uint64_t dims[3] = {ROWS, SIDE, SIDE}, chunk[3] = {1, SIDE, SIDE}, sdims[1] = {ROWS};
    uint64_t empty[2] = {0, 4}, echunk[2] = {1, 4};
    hid_t data = -1, str = -1, none = -1, stype = h5out_string_type(16);
    double spacing[3] = {0.5, 0.5, 1.25};
    int rc = h5out_create(&o, path, MPI_COMM_WORLD, e);
    if (!rc)
        rc = h5out_group(&o, "/g", e);
    if (!rc)
        rc = h5out_dataset(&o, "/g/data", H5T_NATIVE_FLOAT, 3, dims, chunk, 4, &data, e);
    if (!rc)
        rc = h5out_dataset(&o, "/names", stype, 1, sdims, NULL, 0, &str, e);
    if (!rc)
        rc = h5out_dataset(&o, "/empty", H5T_NATIVE_INT, 2, empty, echunk, 4, &none, e);
    if (!rc)
        rc = h5out_write_rows(&o, data, H5T_NATIVE_FLOAT, b, n, rows, e);

    if (!rc)
        rc = h5out_write_rows(&o, str, stype, b, n, names, e);

    if (!rc)
        rc = h5out_write_rows(&o, none, H5T_NATIVE_INT, 0, 0, NULL, e);
    if (!rc)
        rc = h5out_attr_string(o.file, "schema", "onfh-test-1", e);
    if (!rc)
        rc = h5out_attr_int(o.file, "rows", ROWS, e);
    if (!rc)
        rc = h5out_attr_doubles(data, "spacing_mm", spacing, 3, e);
    if (data >= 0)
        H5Dclose(data);
    if (str >= 0)
        H5Dclose(str);
    if (none >= 0)
        H5Dclose(none);
    if (stype >= 0)
        H5Tclose(stype);
    int rc2 = h5out_close(&o, e);
    return rc ? rc : rc2;
}

static void read_back(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    check(f >= 0, "the file reopens serially");
    float all[ROWS * SIDE * SIDE];
    hid_t d = H5Dopen2(f, "/g/data", H5P_DEFAULT);
    int ok = d >= 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0;
    for (int r = 0; ok && r < ROWS; r++)
        for (int k = 0; k < SIDE * SIDE; k++)
            ok &= all[r * SIDE * SIDE + k] == value(r, k);
    check(ok, "every rank's rows of the compressed dataset read back exactly");
    hid_t dcpl = H5Dget_create_plist(d);
    check(H5Pget_nfilters(dcpl) == 2, "the dataset is shuffled and deflated");
    double spacing[3] = {0};
    hid_t a = H5Aopen(d, "spacing_mm", H5P_DEFAULT);
    check(a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, spacing) >= 0 && spacing[2] == 1.25,
          "a dataset attribute reads back");
    H5Aclose(a);
    H5Pclose(dcpl);
    H5Dclose(d);
    char names[ROWS][16];
    hid_t st = h5out_string_type(16);
    d = H5Dopen2(f, "/names", H5P_DEFAULT);
    ok = d >= 0 && H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0;
    ok &= !strcmp(names[0], "row0") && !strcmp(names[ROWS - 1], "row9");
    check(ok, "fixed-length strings read back");
    H5Dclose(d);
    H5Tclose(st);
    d = H5Dopen2(f, "/empty", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    check(H5Sget_simple_extent_dims(sp, dims, NULL) == 2 && dims[0] == 0 && dims[1] == 4,
          "an empty dataset keeps its shape");
    H5Sclose(sp);
    H5Dclose(d);
    int64_t rows = 0;
    a = H5Aopen(f, "rows", H5P_DEFAULT);
    check(a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &rows) >= 0 && rows == ROWS,
          "a file attribute reads back");
    H5Aclose(a);
    H5Fclose(f);
}

int main(int argc, char **argv)
{
    Err e = {0};
    if (rt_init(&argc, &argv, &e) || argc < 2) {
        fprintf(stderr, "usage: mpi_h5out FILE (%s)\n", e.msg);
        return 2;
    }
    int rc = write_file(argv[1], &e);
    if (rt_agree(&e)) {
        if (rt_rank() == 0)
            printf("not ok 1 - writing %s: %s\n", argv[1], e.msg);
        rt_exit(1);
    }
    (void)rc;
    if (rt_rank() == 0) {
        check(1, "every rank wrote its rows collectively");
        read_back(argv[1]);
        printf("1..%d\n", n_check);
    }
    rt_exit(0);
}
