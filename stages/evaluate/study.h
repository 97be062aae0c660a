/* study.h: what the evaluate stage works on: one run directory's out-of-fold predictions.
 *
 * Every slice of splits.json lies in exactly one test fold, so the held-out predictions of all
 * folds give each slice one probability per model. A Study holds them in one order (the split's
 * /slices rows, ascending), with each slice's label, fold and patient, for the CNNs of
 * train.archs (read from models/ARCH/foldK/) and the two baselines (fitted here). Each model's
 * decision threshold is chosen per fold on that fold's validation partition. */
#ifndef ONFH_EVALUATE_STUDY_H
#define ONFH_EVALUATE_STUDY_H

#include <stdint.h>

#include "lib/cohort/splits.h"
#include "lib/util/err.h"

enum { MODEL_CNN, MODEL_MAJORITY, MODEL_LOGISTIC };

typedef struct Model {
    char name[64];
    int kind;          /* MODEL_* */
    double *prob;      /* (n) out-of-fold probability of a lesion */
    int *pred;         /* (n) prob >= the threshold of the slice's fold */
    double *threshold; /* (folds) chosen on each fold's validation partition */
} Model;

typedef struct Study {
    char run[4096];
    Splits splits;
    int n;          /* slices (all of splits.json's) */
    int32_t *row;   /* (n) /slices rows, ascending */
    int *label;     /* (n) 0/1 */
    int *fold;      /* (n) the fold whose test partition holds the slice */
    int *patient;   /* (n) index into pseudonym, dense from 0 */
    int n_patients; /* patients with a slice in the split */
    char (*pseudonym)[17];
    int n_models;
    Model *models;
} Study;

/* Collective (every rank loads the same study; the baseline's slice features are shared out).
 * run: the run directory; archs: the CNNs; baselines: also fit the two baselines. Errors name
 * the file, its line and field, and what was expected. */
int study_load(Study *st, const char *run, char *const *archs, int n_archs, int baselines, Err *e);
void study_free(Study *st);

/* Baselines (baselines.c): appends the majority-class and the intensity logistic-regression
 * models to st (collective: features of the slices are computed in shares over ranks). */
int study_add_baselines(Study *st, const char *cohort, Err *e);

/* Fills m->pred from m->prob and per-fold Youden thresholds on validation predictions
 * (vprob, vlabel, vfold: nv validation slices of all folds). */
int study_threshold(const Study *st, Model *m, const double *vprob, const int *vlabel,
                    const int *vfold, int nv, Err *e);

#endif
