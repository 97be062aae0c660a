/* evaluate.c: `onfh evaluate` (see evaluate.h): load the study, analyse it (the bootstrap is
 * shared out over ranks), select, and write the files on rank 0. */
#include "stages/evaluate/evaluate.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/mem.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"
#include "stages/evaluate/analysis.h"
#include "stages/evaluate/report.h"
#include "stages/evaluate/study.h"

static const char *const tie_rule =
    "the CNN with the best pooled value of the metric (lowest for brier, highest otherwise); "
    "on an exact tie the better BCa bound on the side of doubt (the higher lower bound; for "
    "brier the lower upper bound); then the earlier in train.archs";

/* The selected CNN by the tie rule above, or -1 when the study has none. */
static int select_model(const Study *st, const Analysis *a, int k)
{
    int best = -1, lower = k == METRIC_BRIER;
    for (int m = 0; m < st->n_models; m++) {
        if (st->models[m].kind != MODEL_CNN || isnan(a->res[m].pooled[k]))
            continue;
        if (best < 0) {
            best = m;
            continue;
        }
        double v = a->res[m].pooled[k], bv = a->res[best].pooled[k];
        double bound = a->res[m].bca[k][lower], bbound = a->res[best].bca[k][lower];
        int better = lower ? v < bv : v > bv;
        int tie = v == bv && (lower ? bound < bbound : bound > bbound);
        if (better || tie)
            best = m;
    }
    return best;
}

/* The intervals of the log: method, resample count and seed next to each. */
static void log_model(const Study *st, const Analysis *a, int m)
{
    const ModelResult *r = &a->res[m];
    static const int shown[] = {METRIC_ROC_AUC, METRIC_ACCURACY, METRIC_SENSITIVITY,
                                METRIC_SPECIFICITY};
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++) {
        int k = shown[i];
        log_info("evaluate %s: %s %.4f (%.0f%% CI BCa %.4f-%.4f, percentile %.4f-%.4f; %d "
                 "patient resamples, seed %llu)",
                 st->models[m].name, metric_names[k], r->pooled[k], 100 * a->level, r->bca[k][0],
                 r->bca[k][1], r->percentile[k][0], r->percentile[k][1], a->resamples,
                 (unsigned long long)a->seed);
    }
}

int evaluate_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    const Config *cfg = &s->cfg;
    char *const *archs;
    int n_archs = config_list(cfg, "train.archs", &archs);
    int resamples = (int)config_int(cfg, "evaluate.bootstrap_resamples");
    double level = config_num(cfg, "evaluate.confidence_level");
    uint64_t seed = (uint64_t)config_int(cfg, "run.seed");
    int baselines = config_bool(cfg, "evaluate.baselines");
    const char *compare = config_str(cfg, "evaluate.compare_run");
    int metric = metric_find(config_str(cfg, "evaluate.select_metric"));
    Study st = {0}, cmp = {0};
    Analysis an = {0}, can = {0};
    int rc = study_load(&st, s->run.path, archs, n_archs, baselines, e);
    if (rt_agree(e) && (rc = -1))
        goto out;
    log_info("evaluate: %d slices of %d patients in %d %s-level folds, %d model(s); %d patient "
             "resamples (seed %llu) on %d rank(s)",
             st.n, st.n_patients, st.splits.folds, st.splits.slice_level ? "slice" : "patient",
             st.n_models, resamples, (unsigned long long)seed, rt_size());
    rc = analysis_run(&st, resamples, seed, level, &an, e);
    if (rt_agree(e) && (rc = -1))
        goto out;
    if (compare) {
        rc = study_load(&cmp, compare, archs, n_archs, baselines, e);
        if (rc == 0 && strcmp(cmp.splits.cohort_sha256, st.splits.cohort_sha256))
            rc = err_set(e, ERR_CONFIG,
                         "evaluate.compare_run: %s was split from another "
                         "cohort.h5 (%.12s, this run %.12s)",
                         compare, cmp.splits.cohort_sha256, st.splits.cohort_sha256);
        if (rc == 0 && cmp.splits.slice_level == st.splits.slice_level)
            rc = err_set(e, ERR_CONFIG,
                         "evaluate.compare_run: %s and this run are both split "
                         "at the %s level; the side-by-side needs one run with split.level: "
                         "slice",
                         compare, st.splits.slice_level ? "slice" : "patient");
        if (rt_agree(e) && (rc = -1))
            goto out;
        rc = analysis_run(&cmp, resamples, seed, level, &can, e);
        if (rt_agree(e) && (rc = -1))
            goto out;
    }
    if (rt_rank() == 0) {
        Versions v;
        versions_get(&v);
        Provenance pv = {.run_name = config_str(cfg, "run.name"),
                         .config_sha256 = s->config_hash,
                         .onfh_version = v.onfh,
                         .onfh_commit = v.commit,
                         .select_metric = metric,
                         .selected = select_model(&st, &an, metric),
                         .tie_rule = tie_rule,
                         .calibration_bins = (int)config_int(cfg, "evaluate.calibration_bins")};
        char path[4][4300];
        static const char *const names[] = {"metrics.json", "evaluation.json", "predictions.csv",
                                            "evaluation.h5"};
        for (int i = 0; i < 4; i++)
            snprintf(path[i], sizeof path[i], "%s/%s", s->run.path, names[i]);
        rc = report_metrics_json(path[0], &st, &an, compare ? &cmp : NULL, compare ? &can : NULL,
                                 &pv, e) ||
             report_selection_json(path[1], &st, &an, &pv, e) ||
             report_predictions_csv(path[2], &st, e) || report_h5(path[3], &st, &an, &pv, e);
        for (int m = 0; rc == 0 && m < st.n_models; m++)
            log_model(&st, &an, m);
        if (rc == 0 && pv.selected >= 0)
            log_info("evaluate: selected %s by pooled %s %.4f (tie rule in evaluation.json)",
                     st.models[pv.selected].name, metric_names[metric],
                     an.res[pv.selected].pooled[metric]);
    }
    if (rt_agree(e) && (rc = -1))
        goto out;
    const char *inputs[] = {"cohort.h5", "splits.json", "models"};
    const char *outputs[] = {"metrics.json", "evaluation.json", "predictions.csv", "evaluation.h5"};
    rc = session_record_stage(s, "evaluate", inputs, 3, outputs, 4, MPI_Wtime() - t0, e);
out:
    analysis_free(&an), analysis_free(&can);
    study_free(&st), study_free(&cmp);
    return rc ? -1 : 0;
}
