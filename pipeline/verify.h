/* verify.h: `onfh verify RUN_DIR`, what a reproducibility reviewer runs.
 *
 * 1. Every input and output that manifest.json records, for every stage, is hashed again and
 *    compared with the recorded SHA-256: a file edited, replaced or removed after its stage ran
 *    shows up, named.
 * 2. The deterministic stages (verify_stages in verify.c: ingest, split, evaluate, vessels) run
 *    again into RUN_DIR/.verify/STAGE, from the run's own config.yaml and links to the recorded
 *    inputs, and each output's hash is compared with the recorded one; an HDF5 output whose
 *    bytes differ passes when its content hash (lib/h5/h5hash.h) equals the run's file's, as
 *    parallel HDF5 lays files out by rank count. Training is not re-run: it is deterministic
 *    for a fixed rank count and backend but costs what it cost.
 * Collective (the stages run on every rank). Prints one line per check; returns EXIT_OK only
 * when every check matches, EXIT_FAILURE_RUN otherwise. RUN_DIR/.verify is removed afterwards
 * unless keep is set. */
#ifndef ONFH_VERIFY_H
#define ONFH_VERIFY_H

int verify_run(const char *run_dir, int keep);

#endif
