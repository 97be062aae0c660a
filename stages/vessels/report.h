/* report.h: the vessels stage's files (data-schema/vessels.md): vessels.h5, one row per
 * measured vessel series with every measure and, as attributes, every parameter and
 * definition; treatment.json, the per-patient changes and their statistics. Rank 0 writes
 * both, atomically. */
#ifndef ONFH_VESSELS_REPORT_H
#define ONFH_VESSELS_REPORT_H

#include "stages/vessels/measure.h"
#include "stages/vessels/treatment.h"

typedef struct VProvenance {
    const char *run_name, *config_sha256, *onfh_version, *onfh_commit;
    const VesselMethod *method;
} VProvenance;

extern const char *const vessels_length_definition;
extern const char *const vessels_branch_definition;

/* r, m: one entry per c->series (r[i] meaningful where m[i].ok). */
int vessels_write_h5(const char *path, const VCohort *c, const VesselResult *r, const VMeasured *m,
                     const VProvenance *pv, Err *e);
int vessels_write_treatment(const char *path, const VCohort *c, const VMeasured *m,
                            const Treatment *t, const VProvenance *pv, Err *e);

#endif
