/* h5deflate.h: HDF5's deflate filter compressing with libdeflate instead of zlib.
 *
 * Why: compressing cohort.h5's pixel chunks (shuffled float32, ingest.deflate=1) was two thirds
 * of ingest's CPU time, and libdeflate's level 1 runs at 2.4x zlib's level 1 on those chunks for
 * 2% less compression. How: HDF5 offers no way to swap the compressor of a predefined filter
 * (H5Zregister refuses ids below 256) and no direct chunk writes under MPI-IO, but its deflate
 * filter compresses each chunk with one call, zlib's compress2(). h5deflate.c defines compress2
 * in onfh itself, on libdeflate: the executable's definition comes first in the dynamic
 * linker's lookup, so libhdf5's call lands there. The streams are zlib streams (RFC 1950) under
 * the same filter id, which h5py, h5dump and any HDF5 read without plugins; reading still
 * inflates through zlib. Built without libdeflate (ONFH_HAVE_LIBDEFLATE 0), zlib's compress2
 * runs as before. */
#ifndef ONFH_H5DEFLATE_H
#define ONFH_H5DEFLATE_H

/* "libdeflate" or "zlib": what compresses HDF5 chunks in this build. Calling it also keeps
 * h5deflate.o (and so compress2) in every program that writes HDF5 through h5out. */
const char *h5_deflate_backend(void);

#endif
