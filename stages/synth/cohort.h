/* cohort.h: the design of a synthetic ONFH cohort: who, which hips, which visits, what the
 * lesions and vessels do, and what every slice shows. Pure computation, no I/O.
 *
 * Two levels, so that the result does not depend on how patients are split over MPI ranks:
 *   - cohort_plan: decisions over the whole cohort that must add up exactly (how many patients
 *     are bilateral, how many baseline slices show a lesion, which hips progress, faults),
 *     computed identically on every rank from (seed, config);
 *   - cohort_patient: everything about one patient, drawn from the Philox stream of that
 *     patient alone, given the plan.
 *
 * Defaults mirror the paper (reference/paper.md): 30 patients, 21 bilateral, 40 coronal T1
 * slices per patient at baseline (1200), of which 30 cut a femoral head and are labelled (900:
 * 675 lesion, 225 normal) and 10 do not (300 unlabelled); 3 to 5 visits over about two years;
 * vascularized bone grafting after the first visit; about half of the affected hips progress
 * (their lesions grow in-plane by up to 25% and along the coronal stack by up to 80%, most of it
 * early, and collapse); vessel length +12.4 mm (SD 3.2) and +2.7 branches (SD 1.1) after
 * grafting. Where the heads leave room (lesion_slice_fraction below 0.6), lesion sizes differ
 * between patients. */
#ifndef ONFH_SYNTH_COHORT_H
#define ONFH_SYNTH_COHORT_H

#include <stdint.h>

#include "lib/util/err.h"
#include "stages/synth/anatomy.h"

#define COHORT_MAX_VISITS 12
#define COHORT_MAX_SITES  8
/* Shortest vessel branch the synthetic trees draw (mm); the vessels stage prunes below it. */
#define COHORT_MIN_BRANCH_MM 3.0

typedef struct CohortParams {
    uint64_t seed;
    int patients;
    double bilateral_fraction;
    int sites;
    int visits_min;
    int visits_max;
    int followup_days;
    int slices;                   /* coronal T1 slices per series */
    int vessel_slices;            /* slices of each vessel (MRA) series */
    int labelled_slices;          /* of which cut a femoral head (labelled at baseline) */
    double lesion_slice_fraction; /* of labelled baseline slices that show a lesion */
    double lesion_contrast;       /* 0..1: difficulty (SynthAnatomy.lesion_contrast) */
    double progression_fraction;  /* of affected hips */
    double treated_fraction;      /* of patients, grafted after the first visit */
    double vessel_length_change_mm;
    double vessel_length_change_sd_mm;
    double vessel_branch_change;
    double vessel_branch_change_sd;
    double fault_fraction; /* faults per clean series */
} CohortParams;

/* Whole-cohort decisions (arrays of params.patients). */
typedef struct CohortPlan {
    CohortParams params;
    int *site;                /* site of each patient */
    uint8_t *bilateral;       /* 1: both hips affected */
    int *lesion_slices;       /* baseline slices that show a lesion, per patient */
    uint8_t (*progresses)[2]; /* per patient and hip (affected hips only) */
    uint8_t *treated;
    int *n_visits;
    int n_faults;
    int *fault_patient; /* patient each fault is attached to, n_faults */
} CohortPlan;

/* ARCO-like stages used for lesion size and collapse (0: no lesion). */
enum { STAGE_NONE = 0, STAGE_I = 1, STAGE_II = 2, STAGE_IIIA = 3, STAGE_IIIB = 4, STAGE_IV = 5 };

typedef struct CohortVisit {
    int day;              /* days from baseline */
    int stage[2];         /* per hip */
    SynthAnatomy anatomy; /* the anatomy at this visit: lesions grown, collapse */
    double y_offset_mm;   /* repositioning: shift of the slice stack against baseline */
    int post_graft;       /* 1 when after the grafting */
} CohortVisit;

typedef struct CohortPatient {
    int index;
    int site;
    int n_visits;
    int treated_hip; /* -1 when not grafted */
    int graft_day;
    int primary_hip; /* the hip with the larger lesion */
    int affected[2];
    int progressed[2]; /* outcome: stage increase or collapse by the last visit */
    int sex;           /* 'M' or 'F' */
    int birth_year;
    int baseline_days; /* days since 2018-01-01 of the baseline visit */
    /* Coronal stack: slice i of visit v is the plane y = y0 + i * spacing + visits[v].y_offset_mm
     */
    double y0;
    double spacing;
    CohortVisit visits[COHORT_MAX_VISITS];
    /* Vessels of the treated (else primary) hip: truth before and after grafting. */
    int vessel_branches_pre;
    double vessel_length_pre_mm;
    int vessel_branches_add;
    double vessel_length_add_mm;
} CohortPatient;

int cohort_plan(CohortPlan *plan, const CohortParams *p, Err *e);
void cohort_plan_free(CohortPlan *plan);

/* Patient i of the plan. The baseline stack is placed so that exactly labelled_slices planes
 * cut a femoral head and exactly plan->lesion_slices[i] cut a lesion (checked with the
 * anatomy's own plane tests; ERR_INTERNAL if the geometry could not be met). */
int cohort_patient(const CohortPlan *plan, int i, CohortPatient *out, Err *e);

/* Plane position of slice `slice` at visit v. */
double cohort_slice_y(const CohortPatient *pt, int v, int slice);

#endif
