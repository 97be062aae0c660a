/* version.h: what this build of onfh is and which libraries it runs on, for `onfh --version`
 * and for the provenance that every manifest entry and output file carries. */
#ifndef ONFH_VERSION_H
#define ONFH_VERSION_H

#include <stdio.h>

#include "lib/util/json.h"

typedef struct Versions {
    char onfh[32];
    char commit[48];
    char build[256]; /* variant, GPU, oneDNN, optimisation and sanitizer flags */
    char mpi[128];   /* first line of MPI_Get_library_version */
    char hdf5[32];
    char yaml[32];
    char onednn[32]; /* "off" in builds without oneDNN */
    char zlib[32];
    char libpng[32];
    char cuda[160]; /* runtime, driver and devices; "off" in CPU builds */
    char cudnn[32];
    char nccl[32];
    char cublas[32];
} Versions;

/* Runtime versions (what is loaded, not what was compiled against). No MPI_Init needed. */
void versions_get(Versions *v);
void versions_print(FILE *out);
void versions_json(JsonWriter *w); /* writes one object */

#endif
