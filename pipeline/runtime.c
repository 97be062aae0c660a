/* runtime.c: MPI start and end, rank-aware logging, agreement, fatal errors, progress.
 * See runtime.h for the rules. One process-wide state: there is one MPI world per process. */
#include "pipeline/runtime.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/mem.h"
#include "lib/util/mpicheck.h"

static struct {
    int mpi; /* MPI_Init done by us */
    int rank;
    int size;
    LogLevel level;
    int all_ranks;
    FILE *rank_log;
    void (*exit_hook)(void *);
    void *exit_ctx;
    ProgressMode progress_mode;
    double progress_interval_s;
    Progress *active; /* the bar on screen, cleared around log lines */
} rt = {.size = 1, .level = LOG_INFO, .progress_mode = PROGRESS_LINES, .progress_interval_s = 10};

int rt_init(int *argc, char ***argv, Err *e)
{
    int provided = 0;
    int rc = MPI_CALL(e, MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    if (rc)
        return rc;
    rt.mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rt.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &rt.size);
    return 0;
}

void rt_finalize(void)
{
    if (rt.rank_log) {
        fclose(rt.rank_log);
        rt.rank_log = NULL;
    }
    if (rt.mpi) {
        MPI_Finalize();
        rt.mpi = 0;
    }
}

int rt_rank(void)
{
    return rt.rank;
}

int rt_size(void)
{
    return rt.size;
}

int rt_mpi_active(void)
{
    return rt.mpi;
}

void rt_set_logging(LogLevel level, int all_ranks)
{
    rt.level = level;
    rt.all_ranks = all_ranks;
}

int rt_open_rank_log(const char *dir, Err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/rank%d.log", dir, rt.rank);
    FILE *f = fopen(path, "a");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot open the rank log for appending", path);
    setvbuf(f, NULL, _IOLBF, 0);
    if (rt.rank_log)
        fclose(rt.rank_log);
    rt.rank_log = f;
    return 0;
}

static void stamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void vlog(LogLevel level, const char *fmt, va_list ap)
{
    static const char *const tag[] = {"debug: ", "", "warning: ", "error: "};
    char when[40], text[4096];
    stamp(when, sizeof when);
    vsnprintf(text, sizeof text, fmt, ap);
    int to_stderr = level == LOG_ERROR || (level >= rt.level && (rt.rank == 0 || rt.all_ranks));
    if (to_stderr) {
        if (rt.active)
            progress_clear(rt.active);
        fprintf(stderr, "%s r%d %s%s\n", when, rt.rank, tag[level], text);
        fflush(stderr);
        if (rt.active)
            progress_redraw(rt.active, progress_now());
    }
    if (rt.rank_log && level >= rt.level)
        fprintf(rt.rank_log, "%s r%d %s%s\n", when, rt.rank, tag[level], text);
}

void rt_log(LogLevel level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void rt_share(uint64_t n, uint64_t *begin, uint64_t *end)
{
    uint64_t size = (uint64_t)rt.size, rank = (uint64_t)rt.rank;
    uint64_t base = n / size, extra = n % size;
    *begin = rank * base + (rank < extra ? rank : extra);
    *end = *begin + base + (rank < extra ? 1 : 0);
}

int rt_gather_text(const char *mine, size_t len, char **all, size_t *all_len, Err *e)
{
    *all = NULL;
    *all_len = 0;
    if (!rt.mpi || rt.size == 1) {
        *all = mem_alloc(len + 1);
        if (!*all)
            return err_set(e, ERR_NOMEM, "out of memory gathering %zu bytes", len);
        memcpy(*all, mine, len);
        (*all)[len] = '\0';
        *all_len = len;
        return 0;
    }
    /* Every failure below is agreed before the next collective, so no rank is left waiting
     * in MPI_Gatherv for a rank that gave up. MPI counts are int: more than 2 GiB is refused. */
    Err local = {0}; /* rt_agree reads the code: start clean whatever the caller's Err holds */
    int n = len > (size_t)INT32_MAX ? -1 : (int)len, rc = 0;
    int *counts = rt.rank == 0 ? mem_calloc((size_t)rt.size, sizeof *counts) : NULL;
    int *displs = rt.rank == 0 ? mem_calloc((size_t)rt.size, sizeof *displs) : NULL;
    if (rt.rank == 0 && (!counts || !displs))
        rc = err_set(&local, ERR_NOMEM, "out of memory gathering text");
    if (!rt_all_ok(rc == 0)) {
        rc = rc ? rc : err_set(&local, ERR_NOMEM, "rank 0 ran out of memory gathering text");
        goto out;
    }
    if ((rc = MPI_CALL(&local, MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD))))
        goto out;
    if (rt.rank == 0) {
        size_t total = 0;
        for (int r = 0; r < rt.size && !rc; r++) {
            if (counts[r] < 0)
                rc = err_set(&local, ERR_INTERNAL, "rank %d has over 2 GiB of text to gather", r);
            displs[r] = (int)total;
            total += (size_t)(counts[r] > 0 ? counts[r] : 0);
        }
        if (!rc && total > (size_t)INT32_MAX)
            rc = err_set(&local, ERR_INTERNAL, "%zu bytes of text is too much to gather", total);
        if (!rc && !(*all = mem_alloc(total + 1)))
            rc = err_set(&local, ERR_NOMEM, "out of memory gathering %zu bytes", total);
        if (!rc) {
            (*all)[total] = '\0';
            *all_len = total;
        }
    }
    if (rt_agree(&local)) {
        rc = local.code;
        goto out;
    }
    rc = MPI_CALL(
        &local, MPI_Gatherv(mine, n, MPI_CHAR, *all, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD));
out:
    mem_free(counts);
    mem_free(displs);
    if (rc) {
        mem_free(*all);
        *all = NULL;
        *all_len = 0;
        if (e)
            *e = local;
    }
    return rc;
}

int rt_allgather_bytes(const void *mine, size_t len, void **all, size_t *all_len, Err *e)
{
    char *text = NULL;
    size_t n = 0;
    int rc = rt_gather_text(mine, len, &text, &n, e);
    if (rc)
        return rc;
    *all = NULL;
    *all_len = 0;
    if (!rt.mpi || rt.size == 1) {
        *all = text;
        *all_len = n;
        return 0;
    }
    Err local = {0};
    unsigned long long total = n;
    rc = MPI_CALL(&local, MPI_Bcast(&total, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD));
    if (!rc && rt.rank != 0 && !(text = mem_alloc(total + 1)))
        rc = err_set(&local, ERR_NOMEM, "out of memory receiving %llu bytes", total);
    if (rt_agree(&local))
        goto fail;
    /* MPI counts are int: broadcast in pieces of at most 1 GiB. */
    for (unsigned long long at = 0; at < total && !rc; at += 1u << 30) {
        unsigned long long piece = total - at < (1u << 30) ? total - at : (1u << 30);
        rc = MPI_CALL(&local, MPI_Bcast(text + at, (int)piece, MPI_BYTE, 0, MPI_COMM_WORLD));
    }
    if (rt_agree(&local))
        goto fail;
    text[total] = '\0';
    *all = text;
    *all_len = (size_t)total;
    return 0;
fail:
    mem_free(text);
    if (e)
        *e = local;
    return local.code;
}

int rt_all_ok(int ok)
{
    if (!rt.mpi || rt.size == 1)
        return ok != 0;
    int mine = ok != 0, all = 0;
    if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        rt_fatal(EXIT_FAILURE_RUN, "MPI_Allreduce failed while ranks agreed on a status");
    return all;
}

int rt_agree(Err *e)
{
    if (!rt.mpi || rt.size == 1)
        return e->code;
    int mine = e->code ? rt.rank : rt.size, first = rt.size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        rt_fatal(EXIT_FAILURE_RUN, "MPI_Allreduce failed while ranks agreed on an error");
    if (first == rt.size) {
        e->code = 0;
        return 0;
    }
    if (MPI_Bcast(e, (int)sizeof *e, MPI_BYTE, first, MPI_COMM_WORLD) != MPI_SUCCESS)
        rt_fatal(EXIT_FAILURE_RUN, "MPI_Bcast failed while ranks agreed on an error");
    return e->code;
}

void rt_set_exit_hook(void (*fn)(void *), void *ctx)
{
    rt.exit_hook = fn;
    rt.exit_ctx = ctx;
}

static void run_exit_hook(void)
{
    void (*fn)(void *) = rt.exit_hook;
    rt.exit_hook = NULL;
    if (fn)
        fn(rt.exit_ctx);
}

void rt_fatal(int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_ERROR, fmt, ap);
    va_end(ap);
    run_exit_hook();
    if (rt.rank_log)
        fflush(rt.rank_log);
    if (rt.mpi && rt.size > 1) {
        /* Let the message reach the launcher's output before the other ranks are killed. */
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
    rt_finalize();
    exit(exit_code);
}

void rt_exit(int exit_code)
{
    run_exit_hook();
    rt_finalize();
    exit(exit_code);
}

int rt_exit_code(int err_code)
{
    switch (err_code) {
    case ERR_OK: return EXIT_OK;
    case ERR_CONFIG:
    case ERR_USAGE: return EXIT_USAGE;
    case ERR_BUSY: return EXIT_BUSY;
    case ERR_PREEMPTED: return EXIT_REQUEUE;
    default: return EXIT_FAILURE_RUN;
    }
}

void rt_set_progress(const char *mode, double interval_s)
{
    rt.progress_interval_s = interval_s;
    if (!strcmp(mode, "off"))
        rt.progress_mode = PROGRESS_OFF;
    else if (!strcmp(mode, "bar"))
        rt.progress_mode = PROGRESS_BAR;
    else if (!strcmp(mode, "lines"))
        rt.progress_mode = PROGRESS_LINES;
    else
        rt.progress_mode = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_LINES;
}

static void progress_line(void *ctx, const char *line)
{
    (void)ctx;
    rt_log(LOG_INFO, "%s", line);
}

void rt_progress_start(Progress *p, const char *label, uint64_t total)
{
    ProgressMode mode = rt.rank == 0 ? rt.progress_mode : PROGRESS_OFF;
    progress_start(p, label, total, mode, rt.progress_interval_s, stderr, progress_line, NULL,
                   progress_now());
    if (p->mode == PROGRESS_BAR)
        rt.active = p;
}

void rt_progress_update(Progress *p, uint64_t done)
{
    progress_update(p, done, progress_now());
}

void rt_progress_finish(Progress *p)
{
    if (rt.active == p)
        rt.active = NULL;
    progress_finish(p, progress_now());
}
