/* h5read.h: reading HDF5 datasets and attributes by path, with onfh's error convention.
 *
 * Small helpers over the HDF5 C API for files read whole by one process (golden fixtures,
 * checkpoints): open read-only, read a float or integer dataset with its shape into memory from
 * lib/util/mem.h, read a numeric attribute. Every failure names the file and the object. */
#ifndef ONFH_H5_READ_H
#define ONFH_H5_READ_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "lib/util/err.h"

#define H5_MAX_DIMS 8

/* A dataset read into memory: data (mem_alloc'ed, at least one element's room) and shape. */
typedef struct H5Array {
    void *data; /* float * or int32_t *, as read */
    int ndim;
    int64_t dims[H5_MAX_DIMS];
    size_t numel;
} H5Array;

/* Opens an existing file read-only (serial access, default property lists). */
int h5_open_read(const char *path, hid_t *file, Err *e);
void h5_close(hid_t file);

/* 1 if every link along path ("a/b/c", relative to loc) exists, else 0. No HDF5 error output. */
int h5_exists(hid_t loc, const char *path);

/* Reads a floating-point dataset as float32 / an integer dataset as int32 (HDF5 converts
 * from the stored type). Free with h5_array_free. */
int h5_read_float(hid_t loc, const char *path, H5Array *out, Err *e);
int h5_read_int(hid_t loc, const char *path, H5Array *out, Err *e);
void h5_array_free(H5Array *a);
/* Reads rows first .. first + n - 1 (along the first dimension, every other dimension whole)
 * of the dataset at path into buf, converted to mem_type (H5T_NATIVE_FLOAT, ...). */
int h5_read_rows(hid_t loc, const char *path, int64_t first, int64_t n, hid_t mem_type, void *buf,
                 Err *e);

/* A fixed-length string dataset of width w: *out gets its rows of w + 1 bytes each, NUL-
 * terminated (mem_calloc'ed, room for one more row), *count the rows; file names the file in the
 * error. */
int h5_read_strings(hid_t loc, const char *file, const char *path, size_t w, char **out,
                    long *count, Err *e);

/* Reads scalar numeric attribute `name` of the object at path (relative to loc; "." for loc). */
int h5_attr_double(hid_t loc, const char *path, const char *name, double *out, Err *e);
/* Reads a numeric attribute of exactly n values. */
int h5_attr_doubles(hid_t loc, const char *path, const char *name, double *out, int n, Err *e);
int h5_attr_long(hid_t loc, const char *path, const char *name, long *out, Err *e);
/* Reads string attribute `name` (fixed or variable length) into buf; too long is an error. */
int h5_attr_string(hid_t loc, const char *path, const char *name, char *buf, size_t size, Err *e);

#endif
