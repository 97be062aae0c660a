/* features.h: what the progression model sees (data-schema/progression.md): the patients with
 * an outcome, their visits up to the forecast cut-off, and one feature vector per visit.
 *
 * THE UNIT is the patient. A coronal T1 slice cuts both femoral heads and the CNN scores whole
 * slices (a lesion in either hip), so image features exist per patient visit, not per hip; the
 * outcome is progression (ARCO stage increase or collapse, cohort.h5 /clinical outcome) of any
 * affected hip by the last visit. Patients without an affected hip have no outcome.
 *
 * FEATURES per visit (PROG_N_FEATURES, names and definitions below), from the selected CNN's
 * slice probabilities of that visit's training series, each patient scored by the checkpoint of
 * the split fold whose test partition holds the patient (never by a model trained on it), and
 * from vessels.h5. A feature that cannot be computed (no decodable slice at that visit, no
 * measured vessel series) is NaN in values and 0 in the observation mask. The time since the
 * previous visit is kept apart (gap_days): the LSTM takes it as an input of its own. */
#ifndef ONFH_PROGRESSION_FEATURES_H
#define ONFH_PROGRESSION_FEATURES_H

#include "lib/nn/backend.h"
#include "lib/util/err.h"

enum {
    PF_P_MEAN,
    PF_P_MAX,
    PF_FRAC_ABOVE,
    PF_EXTENT_MM,
    PF_VESSEL_LENGTH_MM,
    PF_VESSEL_BRANCHES,
    PROG_N_FEATURES
};
extern const char *const prog_feature_names[PROG_N_FEATURES];
extern const char *const prog_feature_definitions[PROG_N_FEATURES];
/* The names of features use[0..n) (all PROG_N_FEATURES when use is NULL), joined by sep. */
void prog_feature_list(const int *use, int n, const char *sep, char *buf, size_t cap);

typedef struct ProgCohort {
    int n;                 /* patients with an outcome */
    int t;                 /* most visits of any of them */
    int n_patients;        /* rows of cohort.h5 /patients */
    int n_no_outcome;      /* patients left out: no affected hip, or no clinical row */
    char (*pseudonym)[17]; /* (n) */
    int *patient;          /* (n) row of cohort.h5 /patients */
    int *outcome;          /* (n) 1 progressed, 0 stable */
    int *n_visits;         /* (n) visits with a usable date */
    int *len;              /* (n) visits on or before the cut-off day (>= 1) */
    int *included;         /* (n) 1 when a visit follows the cut-off: the outcome is a forecast */
    int *cnn_fold;         /* (n) split fold whose test partition holds the patient */
    int *study;            /* (n,t) row of /studies, -1 past n_visits */
    int *visit;            /* (n,t) visit number (/studies/visit), -1 past n_visits */
    int *day;              /* (n,t) days from the first study, -1 past n_visits */
    float *gap_days;       /* (n,t) days since the previous visit, 0 at the first */
    int n_cnn_folds;
} ProgCohort;

typedef struct ProgFeatures {
    char arch[64]; /* CNN whose slice probabilities gave the image features */
    float *values; /* (n,t,F) NaN where missing */
    float *mask;   /* (n,t,F) 1 observed, 0 missing */
    long slices;   /* slices scored */
} ProgFeatures;

/* Reads cohort.h5 (patients, studies, clinical outcomes) and splits.json (the CNN folds) of
 * run_dir. Errors name the file and what is wrong. A run with nothing to forecast from (no
 * clinical outcomes; a slice-level split) is not an error: why says so, c is empty. */
int prog_cohort_read(ProgCohort *c, const char *run_dir, int cutoff_days, char *why, size_t why_cap,
                     Err *e);
void prog_cohort_free(ProgCohort *c);

/* 1 when models/<arch>/fold<k>/checkpoint.h5 exists for every fold of the split. */
int prog_checkpoints_exist(const ProgCohort *c, const char *run_dir, const char *arch);

/* Every visit's features with CNN `arch`: scores every decodable training slice of every
 * patient of c with its out-of-fold checkpoint (be: a host backend), then summarises per visit;
 * vessel features from run_dir/vessels.h5. threshold: PF_FRAC_ABOVE's cut-off. */
int prog_features(ProgFeatures *pf, const ProgCohort *c, const char *run_dir, const char *arch,
                  double threshold, const NnBackend *be, Err *e);
void prog_features_free(ProgFeatures *pf);

#endif
