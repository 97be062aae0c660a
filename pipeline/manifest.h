/* manifest.h: <run>/manifest.json, the record a reviewer checks a run against.
 *
 * {
 *   "format": "onfh-manifest-1", "run": "default", "config_sha256": "...",
 *   "updated": "2026-11-27T01:02:03Z", "versions": {...},
 *   "stages": {
 *     "synth": {"finished": "...", "wall_s": 3.2, "ranks": 2, "config_sha256": "...",
 *               "section_sha256": "...", "versions": {...},
 *               "inputs":  [{"path": "...", "sha256": "...", "bytes": 123, "files": 1}],
 *               "outputs": [...]}
 *   }
 * }
 * Paths are as the stage gave them, relative to the run directory when inside it. A directory
 * is hashed as a tree: SHA-256 over "relative/path\0<file sha256>\n" of its files in byte
 * order of their paths, so the hash does not depend on readdir order. Rank 0 writes it,
 * atomically, rewriting the whole file so entries of other stages are kept. */
#ifndef ONFH_MANIFEST_H
#define ONFH_MANIFEST_H

#include <stdint.h>

#include "lib/util/err.h"

typedef struct StageRecord {
    const char *stage;
    const char *const *inputs; /* relative to the run directory, or absolute */
    int n_inputs;
    const char *const *outputs;
    int n_outputs;
    const char *config_hash;  /* of the whole resolved config */
    const char *section_hash; /* of the stage's config section: what decides a re-run */
    int ranks;
    double wall_s;
    int partial; /* some inputs were skipped (the stage's report says which) */
} StageRecord;

/* Sets the run-level fields (name, config hash, versions), keeping stage entries. */
int manifest_update_run(const char *rundir, const char *run_name, const char *config_hash, Err *e);
/* Adds or replaces one stage's entry, hashing its inputs and outputs now. */
int manifest_record_stage(const char *rundir, const StageRecord *rec, Err *e);

/* 1 when the manifest has an entry for stage with this section hash and every input and output
 * it lists still has its recorded SHA-256 (so the stage need not run again), else 0. A missing or
 * unreadable manifest counts as not current; *why receives a short reason for the log, and
 * *partial (may be NULL) whether that run skipped inputs, so a skip repeats its exit code. */
int manifest_stage_current(const char *rundir, const char *stage, const char *section_hash,
                           char *why, size_t why_cap, int *partial);

/* SHA-256 of a file, or of a directory tree as described above; files counts the files. */
int manifest_hash_path(const char *path, char hex[65], uint64_t *bytes, uint64_t *files, Err *e);
/* Collective: the same hash on every rank, a tree's files hashed by all ranks in contiguous
 * shares (a file by rank 0 alone), and remembered on rank 0 so that its manifest entry does not
 * read the tree again. */
int manifest_hash_path_shared(const char *path, char hex[65], uint64_t *bytes, uint64_t *files,
                              Err *e);

/* What a stage saw of one file it read whole anyway: the SHA-256 of the bytes it read, and what
 * fstat said of the open file before the read. */
typedef struct ManifestFileSeen {
    uint8_t sha256[32];
    uint64_t bytes; /* bytes read and hashed */
    int64_t dev;
    int64_t ino;
    int64_t size;
    int64_t mtime_sec;
    int64_t mtime_nsec;
} ManifestFileSeen;

/* The tree hash of directory dir, as manifest_hash_path makes it, from the hashes a stage made
 * of its files while reading them for itself (ingest parses every file of a DICOM tree): rel
 * holds the n files' paths relative to dir, sorted by strcmp, as manifest_hash_path lists
 * them. The result is remembered under the signature of the stats given, so a later
 * manifest_hash_path of dir in this process (the stage's manifest entry) reuses it when the
 * tree still stats the same, and reads the tree again when anything was added, removed or
 * changed since. Not collective: call it on rank 0. */
void manifest_remember_tree(const char *dir, const char *const *rel, const ManifestFileSeen *seen,
                            size_t n, char hex[65], uint64_t *bytes);

#endif
