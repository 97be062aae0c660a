/* rundir.h: the run directory runs/<name>/ that holds everything a run writes.
 *
 *   config.yaml     the resolved config (canonical YAML; its SHA-256 is the config hash)
 *   manifest.json   per stage: inputs and outputs with SHA-256, config-section hash, versions,
 *                   rank count, wall time (pipeline/manifest.h)
 *   logs/rank<N>.log  every line each rank logged
 *   .lock           held while a run writes here, so two runs cannot write the same directory
 *   .lock.train.<arch>.fold<k>  held instead by one training task (onfh train --arch --fold), so
 *                   the tasks of a Slurm array run side by side, each alone on its own task;
 *                   the whole train stage holds it too while it trains that task, so that
 *                   `onfh status` sees every running task (pipeline/status.h)
 *
 * Only rank 0 creates the directory and takes the lock; the caller makes ranks agree on the
 * outcome. Files are written atomically (lib/util/fileio.h). */
#ifndef ONFH_RUNDIR_H
#define ONFH_RUNDIR_H

#include "lib/util/err.h"

typedef struct RunDir {
    char path[4096];
    char lock_path[4200];
    int locked;
} RunDir;

/* Creates path and path/logs if needed and takes the lock. A lock left by a dead process on
 * this host is removed, and stale_note (may be NULL) receives a sentence saying so, for the log.
 * A live holder gives ERR_BUSY naming it (host, pid, start time, Slurm job). */
int rundir_open(RunDir *r, const char *path, char *stale_note, size_t note_cap, Err *e);
/* The same with a lock file of another name in path (NULL: ".lock"). */
int rundir_open_locked(RunDir *r, const char *path, const char *lock_name, char *stale_note,
                       size_t note_cap, Err *e);
/* Releases the lock (idempotent). */
void rundir_close(RunDir *r);
/* Writes path/name atomically. */
int rundir_write(const RunDir *r, const char *name, const char *text, Err *e);

/* Who holds a lock file, as its holder wrote it ("host pid start job"). */
typedef struct LockHolder {
    char host[256];
    long pid;
    long since;   /* Unix time the lock was taken */
    char job[64]; /* Slurm job id, "-" outside Slurm */
    int dead;     /* the holder is a process of this host that no longer exists (a killed job) */
} LockHolder;
/* Reads lock_path into *h. -1 when it cannot be read (no lock, or released meanwhile). */
int rundir_lock_holder(const char *lock_path, LockHolder *h);
/* The lock file name of one training task, ".lock.train.<arch>.fold<k>" ('/' made '_'). */
void rundir_train_lock_name(char *out, size_t cap, const char *arch, int fold);

#endif
