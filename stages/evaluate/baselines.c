/* baselines.c: the two models every CNN is compared with (study.h).
 *
 * majority: predicts the training partition's majority class for every slice, with the
 *   training prevalence of lesions as its probability (so its ROC AUC is 1/2).
 * logistic: an L2-penalised logistic regression (C = 1, scikit-learn's default) on the
 *   intensity features of the preprocessed slice (features.h), standardised with the training
 *   partition's mean and SD; fitted per fold on the training partition only, its threshold
 *   chosen on the validation partition like the CNNs'.
 * The features of the split's slices are computed in contiguous shares over MPI ranks and
 * gathered in slice order, so every rank ends with the same bytes whatever the rank count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/stats/logistic.h"
#include "lib/util/mem.h"
#include "pipeline/runtime.h"
#include "stages/evaluate/features.h"
#include "stages/evaluate/study.h"

/* Features of study slices [begin, end) into feat (FEATURES per slice). */
static int features_share(const Study *st, const char *cohort, uint64_t begin, uint64_t end,
                          double *feat, Err *e)
{
    if (begin >= end)
        return 0;
    hid_t f;
    if (h5_open_read(cohort, &f, e))
        return -1;
    long grid = 0;
    int rc = h5_attr_long(f, ".", "grid_size", &grid, e);
    size_t px = (size_t)grid * (size_t)grid;
    float *img = rc ? NULL : mem_alloc(px * sizeof *img);
    double *scratch = rc ? NULL : mem_alloc(px * sizeof *scratch);
    if (rc == 0 && (!img || !scratch))
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    for (uint64_t i = begin; rc == 0 && i < end; i++) {
        rc = h5_read_rows(f, "/slices/image", st->row[i], 1, H5T_NATIVE_FLOAT, img, e);
        if (rc == 0)
            features_of_slice(img, (int)px, scratch, feat + (i - begin) * FEATURES);
    }
    mem_free(img), mem_free(scratch);
    h5_close(f);
    return rc ? -1 : 0;
}

static void predict(const double *beta, const double *x, double *p)
{
    double z = beta[0];
    for (int j = 0; j < FEATURES; j++)
        z += beta[j + 1] * x[j];
    *p = 1 / (1 + exp(-z));
}

int study_add_baselines(Study *st, const char *cohort, Err *e)
{
    int n = st->n, folds = st->splits.folds;
    const Splits *sp = &st->splits;
    uint64_t begin, end;
    rt_share((uint64_t)n, &begin, &end);
    double *mine = mem_alloc((size_t)(end - begin + 1) * FEATURES * sizeof *mine);
    if (!mine)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    int rc = features_share(st, cohort, begin, end, mine, e);
    if (rt_agree(e)) {
        mem_free(mine);
        return -1;
    }
    void *all = NULL;
    size_t all_len = 0;
    rc = rt_allgather_bytes(mine, (size_t)(end - begin) * FEATURES * sizeof *mine, &all, &all_len,
                            e);
    mem_free(mine);
    if (rc)
        return -1;
    const double *feat = all;

    Model *maj = NULL, *lr = NULL;
    Model *grown = mem_realloc(st->models, (size_t)(st->n_models + 2) * sizeof *grown);
    if (!grown) {
        mem_free(all);
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    }
    st->models = grown;
    maj = &st->models[st->n_models], lr = &st->models[st->n_models + 1];
    memset(maj, 0, 2 * sizeof *maj);
    st->n_models += 2;
    snprintf(maj->name, sizeof maj->name, "baseline_majority");
    snprintf(lr->name, sizeof lr->name, "baseline_logistic");
    maj->kind = MODEL_MAJORITY, lr->kind = MODEL_LOGISTIC;
    size_t nn = (size_t)(n + 1);
    for (Model *m = maj; m <= lr; m++) {
        m->prob = mem_alloc(nn * sizeof *m->prob);
        m->pred = mem_alloc(nn * sizeof *m->pred);
        m->threshold = mem_alloc((size_t)(folds + 1) * sizeof *m->threshold);
    }
    double *x = mem_alloc(nn * FEATURES * sizeof *x), *vprob = mem_alloc(nn * sizeof *vprob);
    int *y = mem_alloc(nn * sizeof *y), *vlabel = mem_alloc(nn * sizeof *vlabel);
    int *vfold = mem_alloc(nn * sizeof *vfold), nv = 0;
    if (!maj->prob || !maj->pred || !maj->threshold || !lr->prob || !lr->pred || !lr->threshold ||
        !x || !vprob || !y || !vlabel || !vfold)
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    for (int k = 0; rc == 0 && k < folds; k++) {
        /* the training partition: prevalence, feature means and SDs, the fit */
        double mean[FEATURES] = {0}, sd[FEATURES] = {0};
        int nt = 0, pos = 0;
        for (int i = 0; i < n; i++)
            if (sp->part[(size_t)k * n + i] == SPLIT_TRAIN) {
                for (int j = 0; j < FEATURES; j++)
                    mean[j] += feat[(size_t)i * FEATURES + j];
                pos += st->label[i], nt++;
            }
        for (int j = 0; j < FEATURES; j++)
            mean[j] /= nt;
        for (int i = 0; i < n; i++)
            if (sp->part[(size_t)k * n + i] == SPLIT_TRAIN)
                for (int j = 0; j < FEATURES; j++) {
                    double d = feat[(size_t)i * FEATURES + j] - mean[j];
                    sd[j] += d * d;
                }
        for (int j = 0; j < FEATURES; j++)
            sd[j] = sd[j] > 0 ? sqrt(sd[j] / nt) : 1; /* a constant feature stays 0 */
        int c = 0;
        for (int i = 0; i < n; i++)
            if (sp->part[(size_t)k * n + i] == SPLIT_TRAIN) {
                for (int j = 0; j < FEATURES; j++)
                    x[(size_t)c * FEATURES + j] =
                        (feat[(size_t)i * FEATURES + j] - mean[j]) / sd[j];
                y[c++] = st->label[i];
            }
        double beta[FEATURES + 1] = {0};
        if (logistic_fit(c, FEATURES, x, y, NULL, NULL, 1.0, beta)) {
            rc = err_set(e, ERR_INTERNAL,
                         "evaluate: the logistic baseline did not converge on "
                         "fold %d's training partition",
                         k);
            break;
        }
        double prevalence = nt ? (double)pos / nt : 0.5;
        maj->threshold[k] = prevalence >= 0.5 ? 0 : INFINITY; /* the majority class, always */
        for (int i = 0; i < n; i++) {
            int part = sp->part[(size_t)k * n + i];
            if (part == SPLIT_TRAIN)
                continue;
            double z[FEATURES], p;
            for (int j = 0; j < FEATURES; j++)
                z[j] = (feat[(size_t)i * FEATURES + j] - mean[j]) / sd[j];
            predict(beta, z, &p);
            if (part == SPLIT_TEST)
                lr->prob[i] = p, maj->prob[i] = prevalence;
            else
                vprob[nv] = p, vlabel[nv] = st->label[i], vfold[nv++] = k;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < n; i++)
            maj->pred[i] = maj->prob[i] >= maj->threshold[st->fold[i]];
        rc = study_threshold(st, lr, vprob, vlabel, vfold, nv, e);
    }
    mem_free(all), mem_free(x), mem_free(vprob), mem_free(y), mem_free(vlabel), mem_free(vfold);
    return rc ? -1 : 0;
}
