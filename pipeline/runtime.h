/* runtime.h: the process around a stage: MPI, logging, progress, fatal errors, exit codes.
 *
 * Every onfh command that does work is an MPI program (one rank is fine). Logging is
 * rank-aware: each line starts with UTC time and rank ("2026-11-27T00:45:12.345Z r0 ..."); rank 0
 * prints on stderr, other ranks only with run.log_all_ranks, errors always; every rank also
 * writes all its lines to <run>/logs/rank<N>.log once the run directory is open.
 * A fatal error on any rank prints its message and aborts every rank (MPI_Abort), so a job never
 * hangs in a collective waiting for a dead peer. */
#ifndef ONFH_RUNTIME_H
#define ONFH_RUNTIME_H

#include <stdint.h>

#include "lib/util/err.h"
#include "lib/util/progress.h"

/* Exit codes, documented in README.md and `onfh --help`. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_RUN = 1, /* a stage failed: I/O, MPI, input that cannot be used, a bug */
    EXIT_USAGE = 2,       /* bad command line or config: syntax, unknown key, type, range, file */
    EXIT_BUSY = 3,        /* the run directory is locked by another run */
    EXIT_PARTIAL = 4,     /* finished, but some inputs were skipped: see the stage's report */
    EXIT_REQUEUE = 5,     /* stopped by SIGUSR1/SIGTERM with a checkpoint saved: requeue the job */
};

typedef enum LogLevel {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
} LogLevel;

/* MPI_Init_thread (funneled: only the main thread calls MPI); MPI errors return to the caller. */
int rt_init(int *argc, char ***argv, Err *e);
/* MPI_Finalize if initialized; closes the rank log. */
void rt_finalize(void);
int rt_rank(void);
int rt_size(void);
int rt_mpi_active(void);

void rt_set_logging(LogLevel level, int all_ranks);
/* Opens <dir>/rank<N>.log for this rank (appending): every line this rank logs also goes there. */
int rt_open_rank_log(const char *dir, Err *e);
void rt_log(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) rt_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  rt_log(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  rt_log(LOG_WARN, __VA_ARGS__)
#define log_error(...) rt_log(LOG_ERROR, __VA_ARGS__)

/* This rank's share [*begin, *end) of n items split into contiguous blocks, the first n % size
 * ranks taking one more: the one way work is divided among ranks (series, resamples, ...). */
void rt_share(uint64_t n, uint64_t *begin, uint64_t *end);

/* Collective: rank 0 receives every rank's text concatenated in rank order (*all, *all_len;
 * free with mem_free); other ranks get NULL. With contiguous shares (rt_share) this puts rows
 * back in item order, so files rank 0 writes do not depend on the rank count. */
int rt_gather_text(const char *mine, size_t len, char **all, size_t *all_len, Err *e);

/* Collective: every rank receives every rank's bytes concatenated in rank order (*all, *all_len;
 * free with mem_free): rt_gather_text followed by a broadcast from rank 0. */
int rt_allgather_bytes(const void *mine, size_t len, void **all, size_t *all_len, Err *e);

/* Collective: 1 when ok is non-zero on every rank. The way ranks agree to stop together. */
int rt_all_ok(int ok);
/* Collective: the error of the lowest rank that failed (code 0 when none did), copied into e on
 * every rank, so all ranks exit with the same code and rank 0 can print the message. */
int rt_agree(Err *e);

/* Prints "error: msg" (from any rank) and ends the job: MPI_Abort when several ranks run, so
 * none hangs; plain exit otherwise. Runs the exit hook first (releases the run lock). */
_Noreturn void rt_fatal(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Normal end of a command on every rank: exit hook, MPI_Finalize, exit(code). */
_Noreturn void rt_exit(int exit_code);
/* One hook, run once by rt_exit and rt_fatal (the run directory registers its unlock). */
void rt_set_exit_hook(void (*fn)(void *), void *ctx);

/* Maps an error code to the exit code. */
int rt_exit_code(int err_code);

/* Progress of a loop on rank 0, shown as run.progress says (auto: bar on a terminal, lines
 * otherwise); other ranks get PROGRESS_OFF. Log lines clear and redraw an active bar. */
void rt_set_progress(const char *mode, double interval_s);
void rt_progress_start(Progress *p, const char *label, uint64_t total);
void rt_progress_update(Progress *p, uint64_t done);
void rt_progress_finish(Progress *p);

#endif
