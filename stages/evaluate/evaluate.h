/* evaluate.h: `onfh evaluate CONFIG`: the out-of-fold predictions of every architecture of
 * train.archs, and two baselines, into metrics per fold and pooled with patient-level
 * bootstrap CIs, paired tests between models, and the selected architecture
 * (data-schema/evaluation.md). With evaluate.compare_run, a second run of the same cohort split
 * by slice (the paper's protocol) is evaluated beside it, so the inflation from leakage is a
 * number in metrics.json. */
#ifndef ONFH_EVALUATE_H
#define ONFH_EVALUATE_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int evaluate_run(Session *s, Err *e);

#endif
