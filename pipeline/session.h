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
} Options;

typedef struct Session {
    Config cfg;
    RunDir run;
    char config_hash[65];
    double t_start;
} Session;

/* Steps 1-2 only (also for `onfh config show`, which needs no run directory). */
int session_load_config(Config *cfg, const Options *o, Err *e);
int session_open(Session *s, const Options *o, Err *e);
/* Releases the lock and frees the config (every rank). */
void session_close(Session *s);

#endif
