/* fileio.c: whole-file reads, atomic writes and directory creation (see fileio.h).
 *
 * Atomic write follows the usual recipe for crash safety on POSIX file systems: write a temp
 * file next to the target (same directory, so rename cannot cross file systems), fsync it so
 * its data is on disk before its name is, rename it over the target, then fsync the directory so
 * the rename itself survives a crash. On any failure the temp file is removed, so a failed or
 * interrupted write leaves either the old file or nothing, never a torn one. */
#include "lib/util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/mem.h"

// ---------------------------------------------------------------------------------------------
// Reading

int file_read_into(const char *path, uint8_t **buf, size_t *cap, size_t *len, struct stat *st,
                   Err *e)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* The size is only a first guess: files under /proc report 0, and a file may grow while
     * it is read, so the loop reads until EOF whatever fstat said. Room for the size and two
     * bytes more: the read that finds EOF needs one free byte, the NUL the other. */
    struct stat own;
    if (!st)
        st = &own;
    size_t want = 4096;
    if (fstat(fd, st) == 0 && st->st_size > 0)
        want = (size_t)st->st_size + 2;
    else if (st != &own)
        memset(st, 0, sizeof *st);
    int rc = ERR_OK;
    size_t n = 0;
    for (;;) {
        if (want > *cap || n + 1 >= *cap) {
            size_t grown_cap = want > *cap ? want : *cap * 2;
            uint8_t *grown = mem_realloc(*buf, grown_cap);
            if (!grown) {
                rc = err_set(e, ERR_NOMEM, "%s: no memory to read %zu bytes", path, grown_cap);
                break;
            }
            *buf = grown;
            *cap = grown_cap;
        }
        ssize_t got = read(fd, *buf + n, *cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = err_set(e, ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (rc)
        return rc;
    (*buf)[n] = '\0';
    *len = n;
    return ERR_OK;
}

int file_read_all(const char *path, char **data, size_t *len, Err *e)
{
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    *data = NULL;
    if (len)
        *len = 0;
    int rc = file_read_into(path, &buf, &cap, &n, NULL, e);
    if (rc) {
        mem_free(buf);
        return rc;
    }
    *data = (char *)buf;
    if (len)
        *len = n;
    return ERR_OK;
}

// ---------------------------------------------------------------------------------------------
// Atomic writing

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return -1;
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

/* fsync of the directory holding path, so a rename into it is durable. */
static int sync_parent_dir(const char *path, Err *e)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == path ? mem_strdup("/")
                : slash       ? mem_strndup(path, (size_t)(slash - path))
                              : mem_strdup(".");
    if (!dir)
        return err_set(e, ERR_NOMEM, "%s: no memory for the directory name", path);
    int rc = ERR_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = err_set(e, ERR_IO, "%s: cannot open directory %s: %s", path, dir, strerror(errno));
        goto out_free;
    }
    /* Some file systems cannot fsync a directory (EINVAL); nothing better can be done there. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = err_set(e, ERR_IO, "%s: cannot fsync directory %s: %s", path, dir, strerror(errno));
    close(fd);
out_free:
    mem_free(dir);
    return rc;
}

int file_write_atomic(const char *path, const void *data, size_t len, Err *e)
{
    int rc = ERR_OK;
    int n = snprintf(NULL, 0, "%s.tmp.%ld", path, (long)getpid());
    char *tmp = mem_alloc((size_t)n + 1);
    if (!tmp)
        return err_set(e, ERR_NOMEM, "%s: no memory for the temp file name", path);
    snprintf(tmp, (size_t)n + 1, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = err_set(e, ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out_free;
    }
    if (write_all(fd, data, len) != 0) {
        rc = err_set(e, ERR_IO, "%s: write to %s failed: %s", path, tmp, strerror(errno));
        close(fd);
        goto out_unlink;
    }
    if (fsync(fd) != 0) {
        rc = err_set(e, ERR_IO, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
        close(fd);
        goto out_unlink;
    }
    /* close can report a deferred write error (NFS), so it is checked too. */
    if (close(fd) != 0) {
        rc = err_set(e, ERR_IO, "%s: close of %s failed: %s", path, tmp, strerror(errno));
        goto out_unlink;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set(e, ERR_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
        goto out_unlink;
    }
    rc = sync_parent_dir(path, e);
    goto out_free;
out_unlink:
    unlink(tmp);
out_free:
    mem_free(tmp);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Directories

/* mkdir that treats an existing directory as success. */
static int make_one_dir(const char *dir, const char *path, Err *e)
{
    if (mkdir(dir, 0777) == 0)
        return ERR_OK;
    int saved = errno;
    if (saved == EEXIST && dir_exists(dir))
        return ERR_OK;
    if (saved == EEXIST)
        return err_set(e, ERR_IO, "%s: cannot create directory: %s exists and is not a directory",
                       path, dir);
    return err_set(e, ERR_IO, "%s: cannot create directory %s: %s", path, dir, strerror(saved));
}

int dir_create(const char *path, Err *e)
{
    if (!path || !*path)
        return err_set(e, ERR_IO, "dir_create: empty path");
    if (dir_exists(path))
        return ERR_OK;
    char *buf = mem_strdup(path);
    if (!buf)
        return err_set(e, ERR_NOMEM, "%s: no memory for the path", path);
    int rc = ERR_OK;
    /* Each parent in turn, from the top: "a/b/c" creates "a", then "a/b", then "a/b/c".
     * Index 0 is skipped so that an absolute path does not try to create "". */
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/' || s[-1] == '/')
            continue;
        *s = '\0';
        rc = make_one_dir(buf, path, e);
        *s = '/';
        if (rc)
            goto out_free;
    }
    rc = make_one_dir(buf, path, e);
out_free:
    mem_free(buf);
    return rc;
}

int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int file_write(const char *path, const void *data, size_t len, Err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (write_all(fd, data, len) != 0) {
        int saved = errno;
        close(fd);
        unlink(path);
        return err_set(e, ERR_IO, "%s: write failed: %s", path, strerror(saved));
    }
    if (close(fd) != 0) {
        unlink(path);
        return err_set(e, ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int dir_remove_tree(const char *path, Err *e)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0
                               : err_set(e, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0
                   ? 0
                   : err_set(e, ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    /* FTW_DEPTH: children before their directory; FTW_PHYS: never follow links. */
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return err_set(e, ERR_IO, "%s: cannot remove the tree: %s", path, strerror(errno));
    return 0;
}

int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
