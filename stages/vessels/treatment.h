/* treatment.h: the treatment response of vascularized bone grafting: per patient the change
 * (post minus pre) in vessel length and branch count, and over patients the mean change with a
 * Student-t and a patient-bootstrap CI, the paired t-test and the Wilcoxon signed-rank test.
 *
 * Pre is the patient's last vessel series before the graft, post the last after it (the
 * longest follow-up), by the clinical rows of the grafted hip (treated_before_visit). A patient
 * without a graft, without a measured vessel series before or after it, is skipped with its
 * reason. The bootstrap draws patients with replacement (lib/stats/bootstrap.h with one
 * stratum: Philox keyed by (run.seed, PHILOX_BOOTSTRAP, resample)); intervals: BCa and
 * percentile, as scipy.stats.bootstrap. */
#ifndef ONFH_VESSELS_TREATMENT_H
#define ONFH_VESSELS_TREATMENT_H

#include <stdint.h>

#include "lib/stats/paired.h"
#include "stages/vessels/cohort_read.h"

typedef struct VMeasured {
    int ok; /* measured (else skipped) */
    double length_mm;
    int branches;
} VMeasured;

typedef struct TreatPair {
    int patient;
    int pre, post; /* indices into VCohort.series */
    double d_length, d_branches;
} TreatPair;

typedef struct TreatSkip {
    int patient;
    char reason[160];
} TreatSkip;

typedef struct TreatArm {
    PairedSummary s;
    double boot_bca[2], boot_pct[2];
} TreatArm;

typedef struct Treatment {
    TreatPair *pairs;
    int n_pairs;
    TreatSkip *skips;
    int n_skips;
    TreatArm length, branches;
    int resamples;
    uint64_t seed;
    double level;
} Treatment;

/* m: one entry per c->series. */
int treatment_compute(const VCohort *c, const VMeasured *m, int resamples, uint64_t seed,
                      double level, Treatment *t, Err *e);
void treatment_free(Treatment *t);

#endif
