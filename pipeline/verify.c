/* verify.c: `onfh verify` (see verify.h). */
#include "pipeline/verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/h5/h5hash.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "pipeline/manifest.h"
#include "pipeline/runtime.h"
#include "pipeline/session.h"
#include "pipeline/stages.h"
#include "pipeline/version.h"

/* Stages whose outputs are a function of their inputs and config alone: the same bytes on any
 * machine and rank count (their tests check 1 against 2 ranks). */
static const char *const verify_stages[] = {"ingest", "split", "evaluate", "vessels"};

typedef struct Tally {
    int checks, differ;
} Tally;

/* 1 when two HDF5 files hold the same objects and values (h5hash.h), whatever their bytes. */
static int same_h5_content(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n < 3 || strcmp(a + n - 3, ".h5"))
        return 0;
    char ha[65], hb[65];
    Err e = {0};
    return !h5_content_sha256(a, ha, &e) && !h5_content_sha256(b, hb, &e) && !strcmp(ha, hb);
}

/* Compares the hash of path with the recorded one; prints a line on rank 0. An HDF5 output of a
 * re-run (original: the run's own file) whose bytes differ but whose content does not passes:
 * parallel HDF5 lays files out by rank count. */
static void check_hash(Tally *t, const char *label, const char *path, const char *want,
                       const char *original)
{
    char hex[65];
    uint64_t bytes, files;
    Err e = {0};
    t->checks++;
    if (!file_exists(path) && !dir_exists(path)) {
        t->differ++;
        printf("  MISSING  %s: %s\n", label, path);
    } else if (manifest_hash_path(path, hex, &bytes, &files, &e)) {
        t->differ++;
        printf("  ERROR    %s: %s\n", label, e.msg);
    } else if (want && strcmp(hex, want) && original && same_h5_content(original, path)) {
        printf("  same     %s (content; the bytes differ as HDF5 lays the file out by rank "
               "count)\n",
               label);
    } else if (!want || strcmp(hex, want)) {
        t->differ++;
        printf("  DIFFERS  %s: %s is %.16s, the manifest says %.16s\n", label, path, hex,
               want ? want : "(nothing)");
    } else {
        printf("  same     %s\n", label);
    }
}

static void check_recorded(Tally *t, const char *dir, const char *stage, const char *role,
                           const JsonValue *list)
{
    for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->n; k++) {
        const char *rel = json_get_string(&list->items[k], "path");
        char path[4400], label[600];
        snprintf(path, sizeof path, "%s/%s", dir, rel ? rel : "");
        snprintf(label, sizeof label, "%s %s %s", stage, role, rel ? rel : "?");
        check_hash(t, label, path, json_get_string(&list->items[k], "sha256"), NULL);
    }
}

/* tmp/REL -> dir/REL for every recorded input of the stage (rank 0). */
static int link_inputs(const char *dir, const char *tmp, const JsonValue *inputs, Err *e)
{
    for (size_t k = 0; inputs && inputs->type == JSON_ARRAY && k < inputs->n; k++) {
        const char *rel = json_get_string(&inputs->items[k], "path");
        if (!rel || strstr(rel, ".."))
            return err_set(e, ERR_FORMAT,
                           "%s/manifest.json: input path '%s' is not a path in "
                           "the run directory",
                           dir, rel ? rel : "(none)");
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", dir, rel);
        snprintf(to, sizeof to, "%s/%s", tmp, rel);
        char parent[4400];
        snprintf(parent, sizeof parent, "%s", to);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            if (dir_create(parent, e))
                return -1;
        }
        if (from[0] != '/') { /* links must not depend on where they are read from */
            char cwd[4096];
            if (!getcwd(cwd, sizeof cwd))
                return err_set(e, ERR_IO, "verify: cannot read the working directory");
            char abs[4400 + 4096];
            snprintf(abs, sizeof abs, "%s/%s", cwd, from);
            if (symlink(abs, to))
                return err_set(e, ERR_IO, "verify: cannot link %s: %s", to, strerror(errno));
        } else if (symlink(from, to)) {
            return err_set(e, ERR_IO, "verify: cannot link %s: %s", to, strerror(errno));
        }
    }
    return 0;
}

/* Runs stage `name` into dir/.verify/NAME and compares its outputs with the recorded ones. */
static int rerun(Tally *t, const char *dir, const char *name, const JsonValue *rec, Err *e)
{
    const Stage *st = NULL;
    for (int i = 0; i < onfh_n_stages; i++)
        if (!strcmp(onfh_stages[i].name, name))
            st = &onfh_stages[i];
    if (!st)
        return 0;
    char tmp[4400], config[4400];
    snprintf(tmp, sizeof tmp, "%s/.verify/%s", dir, name);
    snprintf(config, sizeof config, "%s/config.yaml", dir);
    int rc = 0;
    if (rt_rank() == 0)
        rc = dir_remove_tree(tmp, e) || dir_create(tmp, e) ||
             link_inputs(dir, tmp, json_get(rec, "inputs"), e);
    if (rt_agree(e))
        return -1;
    if (rt_rank() == 0)
        printf("verify: %s again, into %s\n", name, tmp);
    fflush(stdout);
    Options o = {.config = config, .run_dir = tmp, .force = 1, .fold = -1};
    Session s;
    if (session_open(&s, &o, e))
        return -1;
    rc = st->run(&s, e);
    session_close(&s);
    if (rt_agree(e))
        return -1;
    if (rt_rank() == 0) {
        const JsonValue *outs = json_get(rec, "outputs");
        for (size_t k = 0; outs && outs->type == JSON_ARRAY && k < outs->n; k++) {
            const char *rel = json_get_string(&outs->items[k], "path");
            char path[4600], original[4600], label[600];
            snprintf(path, sizeof path, "%s/%s", tmp, rel ? rel : "");
            snprintf(original, sizeof original, "%s/%s", dir, rel ? rel : "");
            snprintf(label, sizeof label, "%s re-run: %s", name, rel ? rel : "?");
            check_hash(t, label, path, json_get_string(&outs->items[k], "sha256"), original);
        }
    }
    return rc;
}

int verify_run(const char *dir, int keep)
{
    Err e = {0};
    char path[4400];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    JsonValue *m = NULL;
    json_parse_file(path, &m, &e);
    if (rt_agree(&e)) {
        if (rt_rank() == 0)
            fprintf(stderr, "onfh verify: %s (is %s a run directory?)\n", e.msg, dir);
        json_value_free(m);
        return EXIT_USAGE;
    }
    const JsonValue *stages = json_get(m, "stages");
    int rc = 0;
    Tally t = {0};
    if (rt_rank() == 0) {
        printf("verify %s: run %s, config sha256 %.16s\n", dir, json_get_string(m, "run"),
               json_get_string(m, "config_sha256"));
        Versions v;
        versions_get(&v);
        const char *made_by = json_get_string(json_get(m, "versions"), "commit");
        if (made_by && strcmp(made_by, v.commit))
            printf("verify: NOTE this onfh is commit %s, the run was made by %s: outputs that "
                   "record the version they were made with (cohort.h5, metrics.json, "
                   "evaluation.h5) differ for that reason alone; verify with the same build\n",
                   v.commit, made_by);
        printf("verify: every recorded input and output against its SHA-256\n");
        for (size_t i = 0; stages && stages->type == JSON_OBJECT && i < stages->n; i++) {
            check_recorded(&t, dir, stages->keys[i], "input",
                           json_get(&stages->items[i], "inputs"));
            check_recorded(&t, dir, stages->keys[i], "output",
                           json_get(&stages->items[i], "outputs"));
        }
        fflush(stdout);
    }
    for (size_t v = 0; rc == 0 && v < sizeof verify_stages / sizeof *verify_stages; v++) {
        const JsonValue *rec = json_get(stages, verify_stages[v]);
        if (!rec) {
            if (rt_rank() == 0)
                printf("verify: %s has not run here: nothing to re-run\n", verify_stages[v]);
            continue;
        }
        rc = rerun(&t, dir, verify_stages[v], rec, &e);
    }
    if (rc == 0 && !keep && rt_rank() == 0) {
        snprintf(path, sizeof path, "%s/.verify", dir);
        rc = dir_remove_tree(path, &e);
    }
    json_value_free(m);
    if (rt_agree(&e)) {
        if (rt_rank() == 0)
            fprintf(stderr, "onfh verify: %s\n", e.msg);
        return EXIT_FAILURE_RUN;
    }
    if (rt_rank() == 0)
        printf("verify: %d of %d checks differ%s\n", t.differ, t.checks,
               t.differ ? "" : ": the run directory is what its manifest says");
    int bad = t.differ;
    return rt_all_ok(bad == 0) ? EXIT_OK : EXIT_FAILURE_RUN;
}
