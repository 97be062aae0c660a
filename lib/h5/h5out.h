/* h5out.h: writing onfh's HDF5 files (cohort.h5, vessels.h5, ...) from one or many MPI ranks.
 *
 * The rules of parallel HDF5 that shape this API (reference/hdf5-slurm.md):
 *   - creating the file, groups, datasets and attributes is collective: every rank makes the same
 *     calls with the same arguments, and attributes carry the same value on every rank;
 *   - compressed (filtered) datasets can only be written collectively, so every write here is
 *     collective: a rank with nothing to write still takes part, with an empty selection;
 *   - datasets have their final shape at creation (the caller knows every rank's row count from
 *     a gather beforehand), and rows are written along the first dimension.
 * Object timestamps are off, so the same data gives the same file content (h5diff finds nothing)
 * whatever the number of ranks. With a single process the file is written serially (no MPI-IO).
 * HDF5's own error printing is turned off; failures come back as ERR_IO with HDF5's message. */
#ifndef ONFH_H5OUT_H
#define ONFH_H5OUT_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "lib/util/err.h"

typedef struct H5Out {
    hid_t file;
    hid_t dxpl;      /* dataset transfer: collective MPI-IO, or default when serial */
    hid_t dcpl_base; /* creation properties: no timestamps */
    int parallel;
    char path[4096];
} H5Out;

/* Collective over comm: creates (truncates) path. Use a temporary name and rename when done. */
int h5out_create(H5Out *o, const char *path, MPI_Comm comm, Err *e);
/* Collective: closes everything (also on error paths; safe on a zeroed H5Out). */
int h5out_close(H5Out *o, Err *e);

/* Collective: a group (parents must exist). */
int h5out_group(H5Out *o, const char *path, Err *e);

/* Collective: a dataset of `rank` dimensions (1..4). chunk NULL gives a contiguous dataset;
 * deflate 1..9 compresses (with the shuffle filter; needs chunks). *ds is closed with H5Dclose. */
int h5out_dataset(H5Out *o, const char *path, hid_t type, int rank, const uint64_t *dims,
                  const uint64_t *chunk, int deflate, hid_t *ds, Err *e);

/* Collective: this rank writes rows [first, first + n) along dimension 0 of ds from buf, whose
 * layout is the dataset's row shape in memtype; n = 0 writes nothing but takes part. */
int h5out_write_rows(H5Out *o, hid_t ds, hid_t memtype, uint64_t first, uint64_t n, const void *buf,
                     Err *e);

/* A fixed-length, NUL-padded ASCII string type of len bytes (close with H5Tclose). */
hid_t h5out_string_type(size_t len);

/* Collective attributes on an object (file, group or dataset id); same value on every rank. */
int h5out_attr_string(hid_t obj, const char *name, const char *value, Err *e);
int h5out_attr_int(hid_t obj, const char *name, int64_t value, Err *e);
int h5out_attr_doubles(hid_t obj, const char *name, const double *values, int n, Err *e);

/* The innermost message of HDF5's current error stack ("" when empty). */
void h5_error_text(char *out, size_t cap);

#endif
