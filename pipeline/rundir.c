/* rundir.c: run directory creation and its lock file (see rundir.h).
 *
 * The lock is a file created with O_CREAT|O_EXCL, which is atomic on local disks and on the
 * NFS and Lustre file systems clusters use (flock is not reliable across nodes there). It holds
 * "host pid start job" so a user can tell who holds it. */
#include "pipeline/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"

static int try_lock(RunDir *r, Err *e)
{
    int fd = open(r->lock_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return errno == EEXIST ? ERR_BUSY
                               : err_set(e, ERR_IO, "%s: cannot create the lock file: %s",
                                         r->lock_path, strerror(errno));
    char host[256] = "unknown", line[600];
    gethostname(host, sizeof host - 1);
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(line, sizeof line, "%s %ld %ld %s\n", host, (long)getpid(), (long)time(NULL),
             job ? job : "-");
    ssize_t n = write(fd, line, strlen(line));
    close(fd);
    if (n != (ssize_t)strlen(line)) {
        unlink(r->lock_path);
        return err_set(e, ERR_IO, "%s: cannot write the lock file", r->lock_path);
    }
    r->locked = 1;
    return 0;
}

int rundir_lock_holder(const char *lock_path, LockHolder *h)
{
    char *text = NULL;
    size_t len;
    Err ignored;
    memset(h, 0, sizeof *h);
    snprintf(h->host, sizeof h->host, "?");
    snprintf(h->job, sizeof h->job, "-");
    if (file_read_all(lock_path, &text, &len, &ignored))
        return -1;
    if (sscanf(text, "%255s %ld %ld %63s", h->host, &h->pid, &h->since, h->job) < 3)
        h->pid = 0;
    mem_free(text);
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    h->dead = h->pid > 0 && !strcmp(h->host, me) && kill((pid_t)h->pid, 0) != 0 && errno == ESRCH;
    return 0;
}

void rundir_train_lock_name(char *out, size_t cap, const char *arch, int fold)
{
    int n = snprintf(out, cap, ".lock.train.%.200s.fold%d", arch, fold);
    for (int i = 12; i < n && i < (int)cap; i++) /* the name must stay one file name: no '/' */
        if (out[i] == '/')
            out[i] = '_';
}

/* Describes the holder of an existing lock. Returns 1 when it is a dead process on this host. */
static int describe_holder(const RunDir *r, char *desc, size_t cap)
{
    LockHolder h;
    rundir_lock_holder(r->lock_path, &h);
    char when[64] = "?";
    time_t t = (time_t)h.since;
    struct tm tm;
    if (h.since && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(desc, cap, "pid %ld on host %s since %s%s%s", h.pid, h.host, when,
             strcmp(h.job, "-") ? ", Slurm job " : "", strcmp(h.job, "-") ? h.job : "");
    return h.dead;
}

int rundir_open(RunDir *r, const char *path, char *stale_note, size_t note_cap, Err *e)
{
    return rundir_open_locked(r, path, NULL, stale_note, note_cap, e);
}

int rundir_open_locked(RunDir *r, const char *path, const char *lock_name, char *stale_note,
                       size_t note_cap, Err *e)
{
    memset(r, 0, sizeof *r);
    if (stale_note && note_cap)
        stale_note[0] = '\0';
    if (snprintf(r->path, sizeof r->path, "%s", path) >= (int)sizeof r->path)
        return err_set(e, ERR_USAGE, "%.100s...: run directory path too long", path);
    snprintf(r->lock_path, sizeof r->lock_path, "%s/%s", r->path, lock_name ? lock_name : ".lock");
    char logs[4200];
    snprintf(logs, sizeof logs, "%s/logs", r->path);
    int rc = dir_create(logs, e);
    if (rc)
        return rc;
    rc = try_lock(r, e);
    if (rc != ERR_BUSY)
        return rc;
    char holder[512];
    if (describe_holder(r, holder, sizeof holder)) {
        /* The holder died without unlocking (killed job); its process is gone from this host. */
        if (stale_note)
            snprintf(stale_note, note_cap, "%s: removed a stale lock left by %s", r->path, holder);
        unlink(r->lock_path);
        rc = try_lock(r, e);
        if (rc != ERR_BUSY)
            return rc;
        describe_holder(r, holder, sizeof holder);
    }
    return err_set(e, ERR_BUSY,
                   "%s: run directory is in use by %s; wait for that run, or delete %s if it is "
                   "no longer running",
                   r->path, holder, r->lock_path);
}

void rundir_close(RunDir *r)
{
    if (r->locked) {
        unlink(r->lock_path);
        r->locked = 0;
    }
}

int rundir_write(const RunDir *r, const char *name, const char *text, Err *e)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", r->path, name);
    return file_write_atomic(path, text, strlen(text), e);
}
