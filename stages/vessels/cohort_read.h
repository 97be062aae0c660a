/* cohort_read.h: what the vessels stage needs from cohort.h5 (data-schema/cohort.md): the
 * vessel series (role 2) with their geometry and visit, the patients' pseudonyms, and the
 * clinical rows that say which hip was grafted and which visits came after the graft. Every
 * rank reads these small tables whole; voxels are read per series by the rank measuring it. */
#ifndef ONFH_VESSELS_COHORT_READ_H
#define ONFH_VESSELS_COHORT_READ_H

#include <stdint.h>

#include "lib/util/err.h"

typedef struct VSeries {
    int row;     /* row of /series */
    int patient; /* row of /patients */
    int visit, day;
    int dims[3];       /* columns (x), rows (y), slices (z) */
    double spacing[3]; /* x (column spacing), y (row spacing), z (slice spacing), mm */
    int64_t offset;    /* in /native/voxels */
} VSeries;

typedef struct VClinical {
    int patient, visit;
    int grafted;        /* treatment is vbg */
    int treated_before; /* treated_before_visit */
} VClinical;

typedef struct VCohort {
    int n_patients;
    char (*pseudonym)[17];
    VSeries *series; /* vessel series only, in /series order */
    int n_series;
    int n_series_total; /* rows of /series */
    VClinical *clinical;
    int n_clinical;
    int has_clinical;
} VCohort;

int vcohort_read(VCohort *c, const char *path, Err *e);
/* voxels: dims[0] * dims[1] * dims[2] floats of series s. */
int vcohort_voxels(const char *path, const VSeries *s, float *voxels, Err *e);
void vcohort_free(VCohort *c);

#endif
