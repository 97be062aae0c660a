/* stages.c: the stage table. A stage is added here when it really works (no placeholders):
 * its entry function lives in stages/<name>/, and its keys in pipeline/config_keys.c. */
#include "pipeline/stages.h"

#include "stages/evaluate/evaluate.h"
#include "stages/ingest/ingest.h"
#include "stages/progression/progression.h"
#include "stages/report/report.h"
#include "stages/split/split.h"
#include "stages/synth/synth.h"
#include "stages/train/train.h"
#include "stages/vessels/vessels.h"

const Stage onfh_stages[] = {
    {"synth", "write the synthetic ONFH cohort as DICOM, with clinical data, labels and truth",
     synth_run, "--preview", "synth.preview=true",
     "also write synth_preview.png, a montage of slices and vessels to judge realism"},
    {"ingest", "DICOM tree, labels.csv and clinical.csv into cohort.h5 (de-identified)", ingest_run,
     NULL, NULL, NULL},
    {"split", "labelled slices into patient-grouped, class-stratified folds (splits.json)",
     split_run, NULL, NULL, NULL},
    {"train",
     "one model per (architecture, fold): early stopping, best checkpoint, held-out "
     "predictions",
     train_run, NULL, NULL, NULL},
    {"evaluate",
     "out-of-fold predictions into metrics with patient-bootstrap CIs, paired tests, baselines "
     "and the selected architecture",
     evaluate_run, NULL, NULL, NULL},
    {"vessels",
     "vessel series into vessel length and branch count (Frangi, Lee thinning, skeleton "
     "graph), and the treatment response of grafting",
     vessels_run, NULL, NULL, NULL},
    {"progression",
     "per-visit CNN and vessel features into an LSTM forecast of progression, beside a "
     "last-visit logistic regression: patient CV, bootstrap CIs, DeLong",
     progression_run, NULL, NULL, NULL},
    {"report",
     "one self-contained HTML page of the run: cohort, training, comparison with CIs, curves, "
     "tests, provenance",
     report_run, NULL, NULL, NULL},
    {.name = NULL}, /* sentinel: C has no empty arrays */
};

const int onfh_n_stages = (int)(sizeof onfh_stages / sizeof onfh_stages[0]) - 1;
