/* train.h: `onfh train CONFIG [--arch NAME] [--fold K] [--max-steps N]`: one model per
 * (architecture, fold) of splits.json, with per-epoch logs, early stopping, the best
 * checkpoint, held-out predictions for the evaluate stage, and bit-exact resume
 * (data-schema/training.md). */
#ifndef ONFH_TRAIN_H
#define ONFH_TRAIN_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int train_run(Session *s, Err *e);

#endif
