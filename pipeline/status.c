/* status.c: `onfh status DIR`. Everything is read from the run directory's files, so it works
 * from a login node while jobs run elsewhere, and it never writes or locks:
 *
 *   manifest.json                     the stages that finished (what, when, how long, ranks)
 *   .lock                             the run that holds the directory (`onfh run`, a stage)
 *   config.yaml                       train.archs x split.folds: the training tasks, numbered
 *                                     as jobs/submit.sh numbers the Slurm array's tasks
 *   .lock.train.<arch>.fold<k>        held while that task trains (pipeline/rundir.h)
 *   models/<arch>/fold<k>/            its outputs (data-schema/training.md): last.h5 says
 *                                     finished or not, log.csv the epochs and their seconds,
 *                                     `failed` and `preempted` why it stopped
 *
 * A task is running while a live process holds its lock; failed when it left a `failed` marker,
 * or when its lock's process is gone from this host (killed: no marker could be written); done
 * when last.h5 says finished and both prediction files exist; pending otherwise (never started,
 * stopped by --max-steps, or preempted and waiting for its requeue). */
#include "pipeline/status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/nn/checkpoint.h"
#include "lib/util/csv.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "pipeline/config.h"
#include "pipeline/config_keys.h"
#include "pipeline/rundir.h"
#include "pipeline/runtime.h"

enum { TASK_DONE, TASK_RUNNING, TASK_FAILED, TASK_PENDING, TASK_N_STATES };
static const char *const state_names[] = {"done", "running", "failed", "pending"};

/* One training task as its files show it. */
typedef struct TaskView {
    int state;
    long epochs;      /* rows of log.csv: epochs completed */
    double seconds;   /* sum of log.csv's seconds: the time spent training */
    char detail[600]; /* when, by whom, why */
} TaskView;

static void utc(time_t t, char out[32])
{
    struct tm tm;
    if (!t || !gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "?");
}

static void duration(double s, char out[32])
{
    if (s < 100)
        snprintf(out, 32, "%.1f s", s);
    else if (s < 6000)
        snprintf(out, 32, "%.1f min", s / 60);
    else
        snprintf(out, 32, "%.1f h", s / 3600);
}

/* Epochs completed and training seconds from log.csv (absent: 0 and 0). */
static void read_log(const char *dir, TaskView *v)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    Csv c;
    Err e = {0};
    int col;
    if (!file_exists(path) || csv_read_file(&c, path, &e))
        return;
    if (csv_column(&c, "seconds", &col, &e) == 0) {
        v->epochs = (long)c.n_rows;
        for (size_t i = 0; i < c.n_rows; i++)
            v->seconds += strtod(c.rows[i].field[col], NULL);
    }
    csv_free(&c);
}

/* The first line of a small text file (a marker), without its newline; "" if unreadable. */
static void first_line(const char *path, char *out, size_t cap)
{
    char *text;
    size_t len;
    Err e = {0};
    out[0] = '\0';
    if (file_read_all(path, &text, &len, &e))
        return;
    text[strcspn(text, "\n")] = '\0';
    snprintf(out, cap, "%s", text);
    mem_free(text);
}

static void view_task(const char *run, const char *arch, int fold, TaskView *v)
{
    char dir[4400], path[4600], lock[320], when[32];
    memset(v, 0, sizeof *v);
    snprintf(dir, sizeof dir, "%s/models/%s/fold%d", run, arch, fold);
    read_log(dir, v);
    rundir_train_lock_name(lock, sizeof lock, arch, fold);
    snprintf(path, sizeof path, "%s/%s", run, lock);
    LockHolder h;
    int locked = rundir_lock_holder(path, &h) == 0;
    if (locked && !h.dead) {
        v->state = TASK_RUNNING;
        utc((time_t)h.since, when);
        double elapsed = difftime(time(NULL), (time_t)h.since);
        char took[32];
        duration(elapsed > 0 ? elapsed : 0, took);
        snprintf(v->detail, sizeof v->detail, "since %s (%s), pid %ld on %s%s%s", when, took, h.pid,
                 h.host, strcmp(h.job, "-") ? ", Slurm job " : "", strcmp(h.job, "-") ? h.job : "");
        return;
    }
    NnCheckpointInfo info;
    Err e = {0};
    snprintf(path, sizeof path, "%s/last.h5", dir);
    int have_last = file_exists(path) && nn_checkpoint_info(path, &info, &e) == 0;
    char heldout[4600], validation[4600];
    snprintf(heldout, sizeof heldout, "%s/heldout_predictions.csv", dir);
    snprintf(validation, sizeof validation, "%s/validation_predictions.csv", dir);
    if (have_last && info.finished && file_exists(heldout) && file_exists(validation)) {
        struct stat st;
        utc(stat(heldout, &st) == 0 ? st.st_mtime : 0, when);
        v->state = TASK_DONE;
        snprintf(v->detail, sizeof v->detail, "best epoch %ld, finished %s", info.best_epoch, when);
        return;
    }
    if (locked) {
        utc((time_t)h.since, when);
        v->state = TASK_FAILED;
        snprintf(v->detail, sizeof v->detail,
                 "started %s by pid %ld, which is gone from this host without releasing %s "
                 "(killed?)",
                 when, h.pid, lock);
        return;
    }
    snprintf(path, sizeof path, "%s/failed", dir);
    if (file_exists(path)) {
        v->state = TASK_FAILED;
        first_line(path, v->detail, sizeof v->detail);
        return;
    }
    v->state = TASK_PENDING;
    snprintf(path, sizeof path, "%s/preempted", dir);
    if (file_exists(path))
        first_line(path, v->detail, sizeof v->detail);
    else if (have_last)
        snprintf(v->detail, sizeof v->detail, "stopped after step %ld; resumes from last.h5",
                 info.step);
}

/* The training tasks of the run's config.yaml, in jobs/submit.sh's index order. */
static void print_tasks(const char *dir, FILE *out)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    Config cfg;
    Err e = {0};
    if (!file_exists(path)) {
        fprintf(out, "training tasks: unknown until a run writes %s\n", path);
        return;
    }
    if (config_load_file(&cfg, onfh_config_keys, onfh_config_n_keys, path, NULL, 0, &e)) {
        fprintf(out, "training tasks: unknown: %s\n", e.msg);
        return;
    }
    char *const *archs;
    int n_archs = config_list(&cfg, "train.archs", &archs);
    int folds = (int)config_int(&cfg, "split.folds");
    long max_epochs = (long)config_int(&cfg, "train.epochs");
    int n = n_archs * folds, count[TASK_N_STATES] = {0};
    TaskView *v = mem_calloc((size_t)n, sizeof *v);
    if (!v) {
        fprintf(out, "training tasks: out of memory\n");
        config_free(&cfg);
        return;
    }
    for (int i = 0; i < n; i++) {
        view_task(dir, archs[i / folds], i % folds, &v[i]);
        count[v[i].state]++;
    }
    fprintf(out,
            "training tasks (%d architecture(s) x %d fold(s)): %d done, %d running, %d failed, "
            "%d pending\n",
            n_archs, folds, count[TASK_DONE], count[TASK_RUNNING], count[TASK_FAILED],
            count[TASK_PENDING]);
    fprintf(out, "  %4s  %-20s %4s  %-7s  %7s  %9s  %s\n", "task", "architecture", "fold", "state",
            "epochs", "training", "detail");
    for (int i = 0; i < n; i++) {
        char epochs[32] = "", took[32] = "";
        if (v[i].epochs)
            snprintf(epochs, sizeof epochs, "%ld/%ld", v[i].epochs, max_epochs);
        if (v[i].epochs) /* (a few tiny epochs may log 0.000 s: still a time) */
            duration(v[i].seconds, took);
        char line[900];
        int len =
            snprintf(line, sizeof line, "  %4d  %-20s %4d  %-7s  %7s  %9s  %s", i, archs[i / folds],
                     i % folds, state_names[v[i].state], epochs, took, v[i].detail);
        if (len >= (int)sizeof line)
            len = (int)sizeof line - 1;
        while (len > 0 && line[len - 1] == ' ')
            line[--len] = '\0'; /* a pending task's empty columns */
        fprintf(out, "%s\n", line);
    }
    mem_free(v);
    config_free(&cfg);
}

int status_print(const char *dir, FILE *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    JsonValue *m;
    Err e = {0};
    if (json_parse_file(path, &m, &e)) {
        if (e.code == ERR_IO)
            fprintf(stderr, "onfh status: %s (is %s a run directory?)\n", e.msg, dir);
        else
            fprintf(stderr, "onfh status: %s\n", e.msg);
        return EXIT_FAILURE_RUN;
    }
    fprintf(out, "run %s, config sha256 %s, updated %s\n", json_get_string(m, "run"),
            json_get_string(m, "config_sha256"), json_get_string(m, "updated"));
    snprintf(path, sizeof path, "%s/.lock", dir);
    LockHolder h;
    if (rundir_lock_holder(path, &h) == 0) {
        char when[32];
        utc((time_t)h.since, when);
        fprintf(out, "locked by pid %ld on %s since %s%s%s%s\n", h.pid, h.host, when,
                strcmp(h.job, "-") ? ", Slurm job " : "", strcmp(h.job, "-") ? h.job : "",
                h.dead ? " (that process is gone: the next run takes the lock over)" : "");
    }
    const JsonValue *stages = json_get(m, "stages");
    if (!stages || !stages->n)
        fprintf(out, "no stage has finished yet\n");
    for (size_t i = 0; stages && stages->type == JSON_OBJECT && i < stages->n; i++) {
        const JsonValue *st = &stages->items[i];
        const JsonValue *outs = json_get(st, "outputs");
        fprintf(out, "  %-12s finished %s  %8.1f s  %d rank(s)  %zu output(s)\n", stages->keys[i],
                json_get_string(st, "finished"), json_get_number(st, "wall_s", 0),
                (int)json_get_number(st, "ranks", 0), outs ? outs->n : 0);
    }
    json_value_free(m);
    print_tasks(dir, out);
    return EXIT_OK;
}
