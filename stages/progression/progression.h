/* progression.h: `onfh progression CONFIG`: per-visit features of every patient (the selected
 * CNN's slice probabilities at each visit, scored out of fold, and vessel measures;
 * features.h) into an LSTM forecast of progression from the visits up to a cut-off, with a
 * last-visit logistic regression and, when resnet50 was trained, the LSTM on ResNet50 features
 * as comparators, cross-validated by patient (fit.h); AUCs with patient-bootstrap CIs, DeLong
 * tests, agreement k/N and calibration (results.h). Writes progression.h5 and progression.json
 * (data-schema/progression.md). Reads cohort.h5, splits.json, evaluation.json, the CNN
 * checkpoints and vessels.h5: `onfh run` runs it after vessels. Rank 0 computes (a few
 * thousand slices and a few hundred small sequences); the files do not depend on the rank
 * count. */
#ifndef ONFH_PROGRESSION_H
#define ONFH_PROGRESSION_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int progression_run(Session *s, Err *e);

#endif
