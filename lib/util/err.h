/* err.h: the error convention of onfh.
 *
 * Every function that can fail returns 0 on success or a negative ERR_* code, and writes
 * a one-line message into the caller's Err naming what failed: the file, the field and what
 * was expected. Only pipeline/ turns a code into a process exit status (pipeline/cli.h). */
#ifndef ONFH_ERR_H
#define ONFH_ERR_H

#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_IO = -1,        /* a file or directory could not be read or written */
    ERR_FORMAT = -2,    /* input present but malformed: YAML, JSON, DICOM ... */
    ERR_CONFIG = -3,    /* a config value is missing, unknown, of the wrong type or out of range */
    ERR_NOMEM = -4,     /* an allocation failed (or was made to fail by mem_fail_at) */
    ERR_BUSY = -5,      /* the run directory is locked by another run */
    ERR_MPI = -6,       /* an MPI call failed */
    ERR_USAGE = -7,     /* bad command line */
    ERR_INTERNAL = -8,  /* a broken invariant: a bug in onfh */
    ERR_PREEMPTED = -9, /* stopped by a signal (SIGUSR1, SIGTERM) after saving a checkpoint */
};

typedef struct Err {
    int code;
    char msg[1024];
} Err;

/* Sets e->code and e->msg (printf style) and returns code, so callers can write
 * `return err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno));`. e may be NULL. */
int err_set(Err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends context to an existing message ("ingest: " + msg); returns e->code. */
int err_prefix(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short name of a code: "io", "format", "config" ... */
const char *err_name(int code);

#endif
