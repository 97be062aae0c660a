/* progress.c: progress bar and progress lines (see progress.h). */
#include "lib/util/progress.h"

#include <string.h>
#include <time.h>

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(double s, char *out, size_t cap)
{
    if (s < 0 || s > 1e7) {
        snprintf(out, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

void progress_format(const Progress *p, double now, int bar, char *out, size_t cap)
{
    double elapsed = now - p->t_start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char eta[32] = "?";
    if (p->total && rate > 0)
        format_duration((double)(p->total - (p->done < p->total ? p->done : p->total)) / rate, eta,
                        sizeof eta);
    double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 0;
    if (pct > 100)
        pct = 100;
    if (!p->total) {
        snprintf(out, cap, "%s: %llu, %.3g/s", p->label, (unsigned long long)p->done, rate);
    } else if (bar) {
        enum { WIDTH = 24 };
        char cells[WIDTH + 1];
        int full = (int)(pct / 100.0 * WIDTH);
        for (int i = 0; i < WIDTH; i++)
            cells[i] = i < full ? '#' : '.';
        cells[WIDTH] = '\0';
        snprintf(out, cap, "%s [%s] %llu/%llu %3.0f%% %.3g/s ETA %s", p->label, cells,
                 (unsigned long long)p->done, (unsigned long long)p->total, pct, rate, eta);
    } else {
        snprintf(out, cap, "%s: %llu/%llu (%.0f%%), %.3g/s, ETA %s", p->label,
                 (unsigned long long)p->done, (unsigned long long)p->total, pct, rate, eta);
    }
}

void progress_start(Progress *p, const char *label, uint64_t total, ProgressMode mode,
                    double interval_s, FILE *tty, ProgressSink sink, void *sink_ctx, double now)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->mode = mode;
    p->interval_s = interval_s > 0 ? interval_s : 10;
    p->t_start = now;
    p->t_last = now;
    p->tty = tty;
    p->sink = sink;
    p->sink_ctx = sink_ctx;
    if (mode == PROGRESS_BAR && !tty)
        p->mode = PROGRESS_OFF;
    if (mode == PROGRESS_LINES && !sink)
        p->mode = PROGRESS_OFF;
    progress_redraw(p, now);
}

void progress_clear(Progress *p)
{
    if (p->mode == PROGRESS_BAR && p->drawn) {
        fputs("\r\033[K", p->tty);
        fflush(p->tty);
        p->drawn = 0;
    }
}

void progress_redraw(Progress *p, double now)
{
    if (p->mode != PROGRESS_BAR)
        return;
    char line[256];
    progress_format(p, now, 1, line, sizeof line);
    fprintf(p->tty, "\r\033[K%s", line);
    fflush(p->tty);
    p->drawn = 1;
}

void progress_update(Progress *p, uint64_t done, double now)
{
    p->done = done;
    if (p->mode == PROGRESS_BAR && now - p->t_last >= 0.1) {
        progress_redraw(p, now);
        p->t_last = now;
    } else if (p->mode == PROGRESS_LINES && now - p->t_last >= p->interval_s) {
        char line[256];
        progress_format(p, now, 0, line, sizeof line);
        p->sink(p->sink_ctx, line);
        p->t_last = now;
    }
}

void progress_finish(Progress *p, double now)
{
    if (p->mode == PROGRESS_OFF)
        return;
    double elapsed = now - p->t_start;
    char count[48], line[256];
    if (p->total)
        snprintf(count, sizeof count, "%llu/%llu", (unsigned long long)p->done,
                 (unsigned long long)p->total);
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)p->done);
    snprintf(line, sizeof line, "%s: %s in %.1f s (%.3g/s)", p->label, count, elapsed,
             elapsed > 0 ? (double)p->done / elapsed : 0.0);
    if (p->mode == PROGRESS_BAR) {
        fprintf(p->tty, "\r\033[K%s\n", line);
        fflush(p->tty);
        p->drawn = 0;
    } else {
        p->sink(p->sink_ctx, line);
    }
    p->mode = PROGRESS_OFF;
}
