/* fileio.h: whole-file reads, atomic writes and directories.
 *
 * Atomic write: data goes to "<path>.tmp.<pid>" in the same directory, is fsync'ed, then
 * renamed over path and the directory fsync'ed, so a killed job never leaves a file that looks
 * finished (DESIGN.md section 3). Errors name the path and the OS's reason. */
#ifndef ONFH_FILEIO_H
#define ONFH_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lib/util/err.h"

/* Reads a whole file; *data is NUL-terminated (not counted in *len); free with mem_free. */
int file_read_all(const char *path, char **data, size_t *len, Err *e);
/* The same into a buffer kept from call to call (*buf of *cap bytes, grown with mem_realloc;
 * mem_free it when done), for loops over many files: no allocation per file once it fits.
 * *len bytes, NUL-terminated. st (may be NULL): what fstat said of the open file before it was
 * read (zeros when fstat failed). */
int file_read_into(const char *path, uint8_t **buf, size_t *cap, size_t *len, struct stat *st,
                   Err *e);
int file_write_atomic(const char *path, const void *data, size_t len, Err *e);
/* A plain write (create or truncate, no fsync): for the many files of a directory that is
 * itself written under a temporary name and renamed into place when complete. */
int file_write(const char *path, const void *data, size_t len, Err *e);
/* Removes a directory and everything under it (symbolic links are removed, not followed). A
 * path that does not exist is fine. */
int dir_remove_tree(const char *path, Err *e);
/* Creates a directory and its parents (mode 0777 & ~umask); existing directories are fine. */
int dir_create(const char *path, Err *e);
int file_exists(const char *path);
int dir_exists(const char *path);

#endif
