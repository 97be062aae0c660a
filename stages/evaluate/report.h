/* report.h: the evaluate stage's files (data-schema/evaluation.md), written by rank 0, each
 * under a temporary name and renamed. */
#ifndef ONFH_EVALUATE_REPORT_H
#define ONFH_EVALUATE_REPORT_H

#include "stages/evaluate/analysis.h"
#include "stages/evaluate/study.h"

/* What the files say about where they come from and how the selection was made. */
typedef struct Provenance {
    const char *run_name, *config_sha256, *onfh_version, *onfh_commit;
    int select_metric; /* METRIC_* */
    int selected;      /* model index in the study, -1 when there is no CNN */
    const char *tie_rule;
    int calibration_bins;
} Provenance;

/* metrics.json; cmp/cmp_a: the paper-faithful (slice-level) study beside it, or NULL. */
int report_metrics_json(const char *path, const Study *st, const Analysis *a, const Study *cmp,
                        const Analysis *cmp_a, const Provenance *pv, Err *e);
int report_selection_json(const char *path, const Study *st, const Analysis *a,
                          const Provenance *pv, Err *e);
int report_predictions_csv(const char *path, const Study *st, Err *e);
int report_h5(const char *path, const Study *st, const Analysis *a, const Provenance *pv, Err *e);

#endif
