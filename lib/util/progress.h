/* progress.h: progress of a long loop, as a bar on a terminal or as periodic lines in a log.
 *
 * The caller passes the time (progress_now()) so tests can drive the clock. A bar redraws at
 * most 10 times a second on its FILE (normally stderr, rank 0 only); lines go to a sink (the
 * logger) every interval_s seconds, so batch jobs get a readable log instead of \r noise. */
#ifndef ONFH_PROGRESS_H
#define ONFH_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ProgressMode {
    PROGRESS_OFF,
    PROGRESS_BAR,
    PROGRESS_LINES,
} ProgressMode;

typedef void (*ProgressSink)(void *ctx, const char *line);

typedef struct Progress {
    char label[64];
    uint64_t total; /* 0: unknown; shows count and rate only */
    uint64_t done;
    ProgressMode mode;
    double interval_s; /* PROGRESS_LINES: seconds between lines */
    double t_start;
    double t_last; /* last draw or line */
    FILE *tty;     /* PROGRESS_BAR */
    ProgressSink sink;
    void *sink_ctx;
    int drawn; /* a bar is on screen and must be cleared before other output */
} Progress;

double progress_now(void); /* monotonic seconds */

void progress_start(Progress *p, const char *label, uint64_t total, ProgressMode mode,
                    double interval_s, FILE *tty, ProgressSink sink, void *sink_ctx, double now);
void progress_update(Progress *p, uint64_t done, double now);
/* Final line: "label: 100/100 in 8.1 s (12.3/s)". */
void progress_finish(Progress *p, double now);
/* Clears a drawn bar (before a log line) and draws it again (after). */
void progress_clear(Progress *p);
void progress_redraw(Progress *p, double now);

/* The text shown: bar = 1 gives "label [#####.....]  45/100  45%  12.3/s  ETA 0:04",
 * bar = 0 gives "label: 45/100 (45%), 12.3/s, ETA 0:04". */
void progress_format(const Progress *p, double now, int bar, char *out, size_t cap);

#endif
