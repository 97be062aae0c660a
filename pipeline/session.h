/* session.h: one invocation of a command that works in a run directory.
 *
 * session_open is collective over MPI_COMM_WORLD:
 *   1. rank 0 reads the config file and broadcasts its bytes (one reader, not N, on a shared
 *      file system); every rank parses the same bytes, so every rank reaches the same verdict;
 *   2. run.name defaults to the config file's name; the run directory is --run DIR or
 *      <run.output_root>/<run.name>;
 *   3. rank 0 creates it and takes its lock; every rank opens logs/rank<N>.log;
 *   4. rank 0 writes config.yaml (the resolved config) and the manifest's run fields.
 * Any failure on any rank is agreed (rt_agree), so every rank returns the same error. */
#ifndef ONFH_SESSION_H
#define ONFH_SESSION_H

#include "pipeline/config.h"
#include "pipeline/rundir.h"

typedef struct Options {
    const char *config;  /* CONFIG */
    const char *run_dir; /* --run DIR, or NULL */
    char **sets;         /* --set KEY=VALUE, in order */
    int n_sets;
    int force; /* --force: run stages even when their manifest entry is current */
    /* onfh train only: one architecture / fold (a Slurm array task), and a step budget */
    const char *arch; /* --arch NAME, or NULL: every train.archs entry */
    int fold;         /* --fold K, or -1: every fold */
    long max_steps;   /* --max-steps N: stop (resumable) after N optimizer steps; 0: no limit */
} Options;

typedef struct Session {
    Config cfg;
    RunDir run;
    char config_hash[65];
    double t_start;
    int partial;       /* a stage skipped some inputs (and said which): exit with EXIT_PARTIAL */
    int stage_partial; /* the stage now running skipped inputs: it sets this, run_stage folds it
                          into partial, and its manifest entry records it */
    int force;         /* --force was given */
    const char *only_arch; /* Options.arch, fold, max_steps, for the train stage */
    int only_fold;
    long max_steps;
} Session;

/* Steps 1-2 only (also for `onfh config show`, which needs no run directory). */
int session_load_config(Config *cfg, const Options *o, Err *e);
int session_open(Session *s, const Options *o, Err *e);
/* SHA-256 deciding whether a stage must run again: of run.seed and the stage's config section. */
int session_section_hash(const Session *s, const char *stage, char hex[65], Err *e);
/* Collective: 1 on every rank when rank 0 finds the stage's manifest entry current (see
 * manifest_stage_current); why gets the reason either way. A current entry that skipped inputs
 * sets s->partial, as the run that wrote it did. */
int session_stage_current(Session *s, const char *stage, char *why, size_t why_cap);
/* Rank 0: records the stage's manifest entry (hashing inputs and outputs, paths relative to
 * the run directory); other ranks return 0. */
int session_record_stage(const Session *s, const char *stage, const char *const *inputs,
                         int n_inputs, const char *const *outputs, int n_outputs, double wall_s,
                         Err *e);

/* Releases the lock and frees the config (every rank). */
void session_close(Session *s);

#endif
