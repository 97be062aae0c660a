/* progression.c: `onfh progression` (progression.h). */
#include "stages/progression/progression.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"
#include "stages/progression/features.h"
#include "stages/progression/fit.h"
#include "stages/progression/results.h"

/* Files the manifest lists as inputs: 4 plus a checkpoint per fold of (at most) two CNNs. */
enum { PROG_MAX_INPUTS = 4 + 2 * 100 };

/* evaluation.json's selected architecture into arch. */
static int read_selected(const char *run_dir, char *arch, size_t cap, Err *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/evaluation.json", run_dir);
    JsonValue *v = NULL;
    int rc = json_parse_file(path, &v, e);
    if (rc && !file_exists(path))
        return err_prefix(e, "progression (run `onfh evaluate` first?): ");
    if (rc)
        return -1;
    const char *sel = json_get_string(v, "selected");
    if (!sel || !*sel || strlen(sel) >= cap || strchr(sel, '/') || strchr(sel, '.'))
        rc = err_set(e, ERR_FORMAT,
                     "%s: field selected: expected the name of the selected architecture, found "
                     "%s",
                     path, sel ? sel : "none");
    else
        snprintf(arch, cap, "%s", sel);
    json_value_free(v);
    return rc;
}

static const NnBackend *backend(const char *name, Err *e)
{
    if (!strcmp(name, "auto")) {
        const NnBackend *be = nn_backend_by_name("dnnl", NULL);
        return be ? be : nn_backend_by_name("ref", e);
    }
    return nn_backend_by_name(name, e);
}

/* fit->use from progression.features (names checked against the choices when the config was
 * read); a feature listed twice is refused. */
static int feature_selection(const Config *cfg, ProgFit *fit, Err *e)
{
    char *const *items;
    int n = config_list(cfg, "progression.features", &items);
    fit->n_use = 0;
    for (int j = 0; j < n; j++) {
        int q = 0;
        while (q < PROG_N_FEATURES && strcmp(items[j], prog_feature_names[q]))
            q++;
        if (q == PROG_N_FEATURES)
            return err_set(e, ERR_CONFIG, "progression.features: \"%s\" is not a feature",
                           items[j]);
        for (int i = 0; i < fit->n_use; i++)
            if (fit->use[i] == q)
                return err_set(e, ERR_CONFIG,
                               "progression.features: \"%s\" is listed twice; expected each "
                               "feature once",
                               items[j]);
        fit->use[fit->n_use++] = q;
    }
    return 0;
}

/* Everything on rank 0; the inputs read and the outputs written listed for the manifest. */
static int compute(Session *s, char (*in)[128], int *n_in, int *n_out, Err *e)
{
    const Config *cfg = &s->cfg;
    const char *dir = s->run.path;
    int cutoff = (int)config_int(cfg, "progression.cutoff_days");
    double threshold = config_num(cfg, "progression.slice_threshold");
    ProgFit fit = {.hidden = (int)config_int(cfg, "progression.hidden"),
                   .layers = (int)config_int(cfg, "progression.layers"),
                   .epochs = (int)config_int(cfg, "progression.epochs"),
                   .batch = (int)config_int(cfg, "progression.batch_size"),
                   .dropout = (float)config_num(cfg, "progression.dropout"),
                   .lr = config_num(cfg, "progression.lr"),
                   .weight_decay = config_num(cfg, "progression.weight_decay"),
                   .seed = (uint64_t)config_int(cfg, "run.seed")};
    int folds = (int)config_int(cfg, "progression.folds");
    const char *be_name = config_str(cfg, "progression.backend");
    char arch[64];
    ProgCohort c = {0};
    ProgFeatures feat[2] = {0};
    ProgResults r = {0};
    int *fold = NULL, n_feat = 0;
    double epoch_s = 0.0;
    const char *no_resnet = NULL;
    fit.be = backend(be_name, e);
    int rc = fit.be && feature_selection(cfg, &fit, e) == 0 ? 0 : -1;
    char why[512] = "";
    rc = rc || read_selected(dir, arch, sizeof arch, e) ||
         prog_cohort_read(&c, dir, cutoff, why, sizeof why, e);
    if (rc)
        goto out;
    snprintf(in[(*n_in)++], 128, "cohort.h5");
    snprintf(in[(*n_in)++], 128, "splits.json");
    snprintf(in[(*n_in)++], 128, "evaluation.json");
    int n_incl = 0, n_prog = 0;
    for (int i = 0; i < c.n; i++)
        n_incl += c.included[i], n_prog += c.included[i] && c.outcome[i];
    if (!why[0] && (n_incl < 2 || n_prog == 0 || n_prog == n_incl))
        snprintf(
            why, sizeof why,
            "%d patient(s) with an outcome and a visit after day %d (progression.cutoff_days), "
            "%d of them progressing: a forecast needs both outcomes",
            n_incl, cutoff, n_prog);
    Versions v;
    versions_get(&v);
    ProgRun pr = {.run_name = config_str(cfg, "run.name"),
                  .config_sha256 = s->config_hash,
                  .onfh = v.onfh,
                  .commit = v.commit,
                  .cutoff_days = cutoff,
                  .slice_threshold = threshold,
                  .folds = folds,
                  .fit = &fit};
    char p1[4300], p2[4300];
    snprintf(p1, sizeof p1, "%s/progression.h5", dir);
    snprintf(p2, sizeof p2, "%s/progression.json", dir);
    if (why[0]) {
        log_warn("progression: nothing to forecast from: %s; progression.json says so", why);
        *n_out = 1;
        rc = prog_write_unavailable(p2, &pr, why, e);
        goto out;
    }
    *n_out = 2;
    snprintf(in[(*n_in)++], 128, "vessels.h5");
    /* the selected CNN, and resnet50 as the comparator's feature source when it was trained */
    const char *archs[2] = {arch, "resnet50"};
    int want_resnet = strcmp(arch, "resnet50") != 0;
    if (!want_resnet)
        no_resnet = "resnet50 is the selected architecture: the LSTM row is the ResNet50 pipeline";
    else if (!prog_checkpoints_exist(&c, dir, "resnet50"))
        no_resnet = "not available: no resnet50 checkpoint for every fold (resnet50 not in "
                    "train.archs, or not trained)";
    for (int k = 0; rc == 0 && k < 1 + (no_resnet == NULL); k++) {
        log_info("progression: scoring every visit's slices with %s (out-of-fold checkpoints, "
                 "backend %s)",
                 archs[k], fit.be->name);
        rc = prog_features(&feat[k], &c, dir, archs[k], threshold, fit.be, e);
        for (int f = 0; rc == 0 && f < c.n_cnn_folds && *n_in < PROG_MAX_INPUTS; f++)
            snprintf(in[(*n_in)++], 128, "models/%s/fold%d/checkpoint.h5", archs[k], f);
        n_feat += rc == 0;
        if (rc == 0)
            log_info("progression: %s: %ld slices scored", archs[k], feat[k].slices);
    }
    if (rc)
        goto out;
    fold = mem_alloc((size_t)(c.n ? c.n : 1) * sizeof(int));
    for (int m = 0; m < n_feat + 1; m++) {
        r.models[m].p = mem_alloc((size_t)(c.n ? c.n : 1) * sizeof(double));
        if (!r.models[m].p)
            rc = err_set(e, ERR_NOMEM, "progression: out of memory");
    }
    if (rc || !fold) {
        rc = err_set(e, ERR_NOMEM, "progression: out of memory");
        goto out;
    }
    prog_folds(c.n, c.outcome, c.included, folds, fit.seed, fold);
    char used[256];
    prog_feature_list(fit.use, fit.n_use, ", ", used, sizeof used);
    log_info("progression: %d patients with an outcome, %d with a visit after day %d; %d-fold "
             "patient cross-validation of the LSTM (hidden %d, %d layer(s), %d epochs) and the "
             "last-visit logistic regression on %s",
             c.n, n_incl, cutoff, folds, fit.hidden, fit.layers, fit.epochs, used);
    r.n_models = n_feat + 1;
    r.models[0] = (ProgModel){.name = "lstm",
                              .arch = feat[0].arch,
                              .p = r.models[0].p,
                              .description = "LSTM over the visits up to the cut-off"};
    r.models[1] = (ProgModel){.name = "logistic_last_visit",
                              .arch = feat[0].arch,
                              .p = r.models[1].p,
                              .description = "L2 logistic regression (C = 1) on the last visit "
                                             "before the cut-off"};
    rc = prog_cross_validate(c.n, c.t, PROG_N_FEATURES, feat[0].values, feat[0].mask, c.gap_days,
                             c.len, c.outcome, fold, folds, &fit, r.models[0].p, r.models[1].p,
                             &epoch_s, e);
    if (rc == 0 && n_feat == 2) {
        r.models[2] = (ProgModel){.name = "lstm_resnet50",
                                  .arch = "resnet50",
                                  .p = r.models[2].p,
                                  .description = "the same LSTM pipeline on ResNet50 features"};
        double *scratch = mem_alloc((size_t)(c.n ? c.n : 1) * sizeof(double));
        rc = scratch ? prog_cross_validate(c.n, c.t, PROG_N_FEATURES, feat[1].values, feat[1].mask,
                                           c.gap_days, c.len, c.outcome, fold, folds, &fit,
                                           r.models[2].p, scratch, NULL, e)
                     : err_set(e, ERR_NOMEM, "progression: out of memory");
        mem_free(scratch);
    }
    r.resamples = (int)config_int(cfg, "progression.bootstrap_resamples");
    r.bins = (int)config_int(cfg, "progression.calibration_bins");
    r.level = config_num(cfg, "progression.confidence_level");
    r.seed = fit.seed;
    rc = rc || prog_statistics(&r, &c, e);
    if (rc)
        goto out;
    pr.fold = fold, pr.backend = fit.be->name, pr.resnet50_unavailable = no_resnet;
    const ProgFeatures *fp[2] = {&feat[0], &feat[1]};
    rc = prog_write_h5(p1, &c, fp, n_feat, &r, &pr, e) ||
         prog_write_json(p2, &c, &feat[0], &r, &pr, e);
    for (int m = 0; rc == 0 && m < r.n_models; m++) {
        const ProgModel *pm = &r.models[m];
        log_info("progression: %s: ROC AUC %.3f (95%% CI BCa %.3f to %.3f; %d patient resamples, "
                 "seed %llu), agreement %d/%d, Brier %.3f",
                 pm->name, pm->auc, pm->auc_bca[0], pm->auc_bca[1], r.resamples,
                 (unsigned long long)r.seed, pm->agree_k, pm->agree_n, pm->brier);
    }
    if (rc == 0)
        log_info("progression: lstm vs logistic_last_visit: DeLong p %.3g; LSTM %.3f s per epoch "
                 "(%s)",
                 r.delong_p[0][1], epoch_s, fit.be->name);
    if (rc == 0 && no_resnet)
        log_info("progression: ResNet50 comparator: %s", no_resnet);
out:
    prog_results_free(&r);
    mem_free(fold);
    prog_features_free(&feat[0]), prog_features_free(&feat[1]);
    prog_cohort_free(&c);
    return rc;
}

int progression_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    char in[PROG_MAX_INPUTS][128];
    int n_in = 0, n_out = 0, rc = 0;
    if (rt_rank() == 0)
        rc = compute(s, in, &n_in, &n_out, e);
    if (rt_agree(e) && (rc = -1))
        return -1;
    /* session_record_stage records on rank 0 only: the lists stay there */
    const char *inputs[PROG_MAX_INPUTS];
    for (int i = 0; i < n_in; i++)
        inputs[i] = in[i];
    const char *outputs[] = {"progression.json", "progression.h5"};
    return session_record_stage(s, "progression", inputs, n_in, outputs, n_out, MPI_Wtime() - t0, e)
               ? -1
               : 0;
}
