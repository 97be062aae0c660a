/* session.c: config resolution and run directory set-up, the same on every rank (session.h). */
#include "pipeline/session.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/mpicheck.h"
#include "lib/util/sha256.h"
#include "pipeline/config_keys.h"
#include "pipeline/manifest.h"
#include "pipeline/runtime.h"

/* Rank 0 reads path; every rank gets the bytes (or rank 0's error). */
static int read_on_rank0(const char *path, char **text, size_t *len, Err *e)
{
    int rc = 0;
    *text = NULL;
    if (rt_rank() == 0)
        rc = file_read_all(path, text, len, e);
    if (!rt_mpi_active() || rt_size() == 1)
        return rc;
    if (rt_agree(e))
        return e->code;
    unsigned long long n = rt_rank() == 0 ? *len : 0;
    if ((rc = MPI_CALL(e, MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD))))
        return rc;
    if (rt_rank() != 0) {
        *len = (size_t)n;
        *text = mem_alloc(*len + 1);
        if (!*text)
            rc = err_set(e, ERR_NOMEM, "%s: out of memory receiving the config", path);
    }
    if (rt_agree(e))
        goto fail;
    if ((rc = MPI_CALL(e, MPI_Bcast(*text, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD))))
        goto fail;
    (*text)[*len] = '\0';
    return 0;
fail:
    mem_free(*text);
    *text = NULL;
    return e->code;
}

/* "configs/default.yaml" -> "default" */
static void file_stem(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int session_load_config(Config *cfg, const Options *o, Err *e)
{
    char *text;
    size_t len;
    /* A config that cannot be read or parsed is a user error (exit 2), like a bad value. */
    int rc = read_on_rank0(o->config, &text, &len, e);
    if (!rc) {
        rc = config_load(cfg, onfh_config_keys, onfh_config_n_keys, o->config, text, len, o->sets,
                         o->n_sets, e);
        mem_free(text);
    }
    if (rc == ERR_IO || rc == ERR_FORMAT)
        rc = e->code = ERR_CONFIG;
    if (rc)
        return rc;
    if (!config_is_set(cfg, "run.name")) {
        char stem[256];
        file_stem(o->config, stem, sizeof stem);
        rc = config_set_string(cfg, "run.name", stem, "the config file's name", e);
        if (rc) {
            config_free(cfg);
            return err_prefix(e, "run.name is not set and the file name cannot serve: ");
        }
    }
    return 0;
}

static void unlock_hook(void *ctx)
{
    rundir_close(ctx);
}

static int open_rundir(Session *s, const Options *o, Err *e)
{
    char path[4096];
    if (o->run_dir)
        snprintf(path, sizeof path, "%s", o->run_dir);
    else
        snprintf(path, sizeof path, "%s/%s", config_str(&s->cfg, "run.output_root"),
                 config_str(&s->cfg, "run.name"));
    /* One training task (a Slurm array task) locks only itself: the array's tasks share the run
     * directory, each writing its own models/<arch>/fold<k>/ (the run-level files they rewrite
     * are written atomically and hold the same content). */
    char lock[320] = "";
    if (o->arch && o->fold >= 0)
        rundir_train_lock_name(lock, sizeof lock, o->arch, o->fold);
    char note[1024] = "";
    int rc = 0;
    if (rt_rank() == 0) {
        rc = rundir_open_locked(&s->run, path, lock[0] ? lock : NULL, note, sizeof note, e);
        if (!rc)
            rt_set_exit_hook(unlock_hook, &s->run);
    } else {
        snprintf(s->run.path, sizeof s->run.path, "%s", path);
    }
    if (rt_agree(e))
        return e->code;
    char logs[4200];
    snprintf(logs, sizeof logs, "%s/logs", s->run.path);
    rt_open_rank_log(logs, e);
    if (rt_agree(e))
        return e->code;
    if (note[0])
        log_warn("%s", note);
    return 0;
}

int session_open(Session *s, const Options *o, Err *e)
{
    memset(s, 0, sizeof *s);
    s->t_start = MPI_Wtime();
    int rc = session_load_config(&s->cfg, o, e);
    if (rc)
        return rc;
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *level = config_str(&s->cfg, "run.log_level");
    for (int i = 0; i < 4; i++)
        if (!strcmp(level, levels[i]))
            rt_set_logging((LogLevel)i, config_bool(&s->cfg, "run.log_all_ranks"));
    rt_set_progress(config_str(&s->cfg, "run.progress"),
                    config_num(&s->cfg, "run.progress_interval_s"));

    rc = config_hash(&s->cfg, NULL, s->config_hash, e);
    if (!rc)
        rc = open_rundir(s, o, e);
    if (rc)
        goto fail;
    char *yaml = NULL;
    if (rt_rank() == 0) {
        rc = config_to_yaml(&s->cfg, NULL, &yaml, e);
        if (!rc)
            rc = rundir_write(&s->run, "config.yaml", yaml, e);
        if (!rc)
            rc = manifest_update_run(s->run.path, config_str(&s->cfg, "run.name"), s->config_hash,
                                     e);
        mem_free(yaml);
    }
    if (rt_agree(e))
        goto fail;
    return 0;
fail:
    session_close(s);
    return e->code;
}

void session_close(Session *s)
{
    rundir_close(&s->run);
    rt_set_exit_hook(NULL, NULL);
    config_free(&s->cfg);
}

int session_section_hash(const Session *s, const char *stage, char hex[65], Err *e)
{
    char *section = NULL, seed[64];
    int rc = config_to_yaml(&s->cfg, stage, &section, e);
    if (rc)
        return rc;
    snprintf(seed, sizeof seed, "run.seed: %lld\n", (long long)config_int(&s->cfg, "run.seed"));
    Sha256 h;
    uint8_t digest[32];
    sha256_init(&h);
    sha256_update(&h, seed, strlen(seed));
    sha256_update(&h, section, strlen(section));
    sha256_final(&h, digest);
    sha256_to_hex(digest, hex);
    mem_free(section);
    return 0;
}

int session_stage_current(Session *s, const char *stage, char *why, size_t why_cap)
{
    int current = 0, partial = 0;
    char hex[65];
    Err e = {0};
    if (rt_rank() == 0) {
        if (session_section_hash(s, stage, hex, &e) == 0)
            current = manifest_stage_current(s->run.path, stage, hex, why, why_cap, &partial);
        else
            snprintf(why, why_cap, "%s", e.msg);
    }
    int both[2] = {current, partial};
    if (rt_mpi_active() && rt_size() > 1)
        MPI_Bcast(both, 2, MPI_INT, 0, MPI_COMM_WORLD);
    if (both[0] && both[1])
        s->partial = 1;
    return both[0];
}

int session_record_stage(const Session *s, const char *stage, const char *const *inputs,
                         int n_inputs, const char *const *outputs, int n_outputs, double wall_s,
                         Err *e)
{
    if (rt_rank() != 0)
        return 0;
    char hex[65];
    int rc = session_section_hash(s, stage, hex, e);
    if (rc)
        return rc;
    StageRecord rec = {stage,          inputs, n_inputs,  outputs, n_outputs,
                       s->config_hash, hex,    rt_size(), wall_s,  s->stage_partial};
    return manifest_record_stage(s->run.path, &rec, e);
}
