/* status.h: `onfh status DIR`, what a run directory holds and what runs in it now. */
#ifndef ONFH_STATUS_H
#define ONFH_STATUS_H

#include <stdio.h>

/* Prints, from DIR's files alone (no MPI, no lock, nothing written): the run, who holds its
 * lock, each finished stage from manifest.json, and each training task (architecture x fold of
 * DIR/config.yaml, numbered as the Slurm array's index map) done, running, failed or pending,
 * with its times. Returns an exit code (pipeline/runtime.h): 0, or 1 when DIR has no readable
 * manifest.json. */
int status_print(const char *dir, FILE *out);

#endif
