/* h5hash.h: a SHA-256 of an HDF5 file's content rather than its bytes.
 *
 * Parallel HDF5 places chunks and metadata in the file in an order that depends on the rank
 * count, so cohort.h5 written on 1 and on 3 ranks has the same datasets and attributes but not
 * the same bytes. The content hash walks every group, dataset and attribute in name order and
 * hashes, for each, its path, its type class and size, its shape and its values (as the
 * file's native type; variable-length strings by their characters): two files with equal
 * hashes hold the same objects with the same values, wherever the library put them. */
#ifndef ONFH_H5_HASH_H
#define ONFH_H5_HASH_H

#include "lib/util/err.h"

int h5_content_sha256(const char *path, char hex[65], Err *e);

#endif
