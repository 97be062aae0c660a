/* split.h: `onfh split`: cohort.h5's labelled slices into patient-grouped, class-stratified
 * folds with an inner validation share per fold, saved as splits.json (data-schema/splits.md)
 * with its hash, for every training and evaluation of the run. */
#ifndef ONFH_SPLIT_H
#define ONFH_SPLIT_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int split_run(Session *s, Err *e);

#endif
