/* analysis.c: see analysis.h. One bootstrap resample is a vector of patient multiplicities
 * (bootstrap.h); every model is evaluated on the same resample (paired), its slices weighted by
 * their patient's multiplicity, from per-patient sums prepared once (patient_metrics.h), so a
 * resample costs no copy and little more than the calibration fits' passes. */
#include "stages/evaluate/analysis.h"

#include <math.h>
#include <string.h>

#include "lib/stats/bootstrap.h"
#include "lib/stats/delong.h"
#include "lib/stats/mcnemar.h"
#include "lib/stats/patient_metrics.h"
#include "lib/util/mem.h"
#include "pipeline/runtime.h"

enum { K = METRIC_COUNT };

/* Per-fold metrics of every model. */
static int per_fold(const Study *st, Analysis *a, Err *e)
{
    int n = st->n;
    double *p = mem_alloc((size_t)(n + 1) * sizeof *p);
    int *l = mem_alloc((size_t)(n + 1) * sizeof *l), *d = mem_alloc((size_t)(n + 1) * sizeof *d);
    int rc = !p || !l || !d ? err_set(e, ERR_NOMEM, "evaluate: out of memory") : 0;
    for (int m = 0; rc == 0 && m < a->n_models; m++) {
        const Model *mo = &st->models[m];
        ModelResult *r = &a->res[m];
        r->fold = mem_alloc((size_t)a->folds * K * sizeof *r->fold);
        r->fold_n = mem_alloc((size_t)a->folds * sizeof *r->fold_n);
        if (!r->fold || !r->fold_n) {
            rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
            break;
        }
        for (int k = 0; rc == 0 && k < a->folds; k++) {
            int c = 0;
            for (int i = 0; i < n; i++)
                if (st->fold[i] == k)
                    p[c] = mo->prob[i], l[c] = st->label[i], d[c++] = mo->pred[i];
            Scores s;
            if (scores_prepare(&s, c, p, l, d)) {
                rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
                break;
            }
            metrics_weighted(&s, NULL, r->fold + (size_t)k * K);
            r->fold_n[k] = c;
            scores_free(&s);
        }
    }
    mem_free(p), mem_free(l), mem_free(d);
    return rc;
}

/* This rank's block of resamples; rank 0 gathers every block, in resample order. */
static int bootstrap_all(const PatientScores *ps, const BootDesign *design, Analysis *a, Err *e)
{
    int M = a->n_models, P = a->n_patients;
    uint64_t b0, b1;
    rt_share((uint64_t)a->resamples, &b0, &b1);
    size_t per = (size_t)M * K;
    double *mine = mem_alloc(((size_t)(b1 - b0) * per + 1) * sizeof *mine);
    double *w = mem_alloc((size_t)(P + 1) * sizeof *w);
    int *count = mem_alloc((size_t)(P + 1) * sizeof *count);
    int rc = !mine || !w || !count ? err_set(e, ERR_NOMEM, "evaluate: out of memory") : 0;
    for (uint64_t b = b0; rc == 0 && b < b1; b++) {
        bootstrap_counts(design, b, count);
        for (int p = 0; p < P; p++)
            w[p] = count[p];
        for (int m = 0; m < M; m++)
            metrics_patients(&ps[m], w, mine + (size_t)(b - b0) * per + (size_t)m * K);
    }
    mem_free(w), mem_free(count);
    if (rt_agree(e)) {
        mem_free(mine);
        return -1;
    }
    char *all = NULL;
    size_t len = 0;
    rc = rt_gather_text((const char *)mine, (size_t)(b1 - b0) * per * sizeof *mine, &all, &len, e);
    mem_free(mine);
    if (rc == 0 && rt_rank() == 0) {
        a->dist = mem_alloc(len + sizeof(double));
        if (!a->dist)
            rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
        else
            memcpy(a->dist, all, len); /* aligned for doubles */
    }
    mem_free(all);
    return rc;
}

/* Rank 0: jackknife, intervals, DeLong, McNemar, Holm. */
static int intervals_and_tests(const Study *st, const PatientScores *ps, Analysis *a, Err *e)
{
    int M = a->n_models, n = st->n, P = a->n_patients;
    a->jack = mem_alloc(((size_t)P * M * K + 1) * sizeof *a->jack);
    double *w = mem_alloc((size_t)(P + 1) * sizeof *w);
    double *col = mem_alloc(((size_t)(a->resamples > P ? a->resamples : P) + 1) * sizeof *col);
    double *jcol = mem_alloc((size_t)(P + 1) * sizeof *jcol);
    a->auc = mem_alloc((size_t)(M + 1) * sizeof *a->auc);
    a->cov = mem_alloc((size_t)(M * M + 1) * sizeof *a->cov);
    const double **scores = mem_alloc((size_t)(M + 1) * sizeof *scores);
    if (!a->jack || !w || !col || !jcol || !a->auc || !a->cov || !scores) {
        mem_free(w), mem_free(col), mem_free(jcol), mem_free(scores);
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    }
    for (int q = 0; q < P; q++) {
        for (int p = 0; p < P; p++)
            w[p] = p != q;
        for (int m = 0; m < M; m++)
            metrics_patients(&ps[m], w, a->jack + ((size_t)q * M + m) * K);
    }
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            ModelResult *r = &a->res[m];
            int undefined = 0;
            for (int b = 0; b < a->resamples; b++) {
                col[b] = a->dist[((size_t)b * M + m) * K + k];
                undefined += !isfinite(col[b]);
            }
            for (int q = 0; q < P; q++)
                jcol[q] = a->jack[((size_t)q * M + m) * K + k];
            r->undefined[k] = undefined;
            bootstrap_percentile(col, a->resamples, a->level, &r->percentile[k][0],
                                 &r->percentile[k][1]);
            bootstrap_bca(col, a->resamples, r->pooled[k], jcol, P, a->level, &r->bca[k][0],
                          &r->bca[k][1], NULL, NULL);
        }
    for (int m = 0; m < M; m++)
        scores[m] = st->models[m].prob;
    int rc = delong(M, n, scores, st->label, st->patient, P, a->auc, a->cov);
    mem_free(w), mem_free(col), mem_free(jcol), mem_free(scores);
    if (rc)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");

    a->pairs = mem_alloc((size_t)(M * M + 1) * sizeof *a->pairs);
    if (!a->pairs)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    for (int x = 0; x < M; x++)
        for (int y = x + 1; y < M; y++) {
            int cx = st->models[x].kind == MODEL_CNN, cy = st->models[y].kind == MODEL_CNN;
            if (!cx)
                continue; /* baselines are not compared with each other */
            Pair *p = &a->pairs[a->n_pairs++];
            memset(p, 0, sizeof *p);
            p->a = x, p->b = y, p->family = cy ? FAMILY_ARCHS : FAMILY_BASELINES;
            delong_test(M, a->auc, a->cov, x, y, &p->z, &p->p_delong);
            for (int i = 0; i < n; i++) {
                int ra = st->models[x].pred[i] == st->label[i];
                int rb = st->models[y].pred[i] == st->label[i];
                p->only_a += ra && !rb, p->only_b += rb && !ra;
            }
            p->p_mcnemar = mcnemar_exact(p->only_a, p->only_b);
        }
    /* Holm within each family, for each test */
    double *pv = mem_alloc((size_t)(a->n_pairs + 1) * sizeof *pv);
    double *adj = mem_alloc((size_t)(a->n_pairs + 1) * sizeof *adj);
    int *idx = mem_alloc((size_t)(a->n_pairs + 1) * sizeof *idx);
    rc = !pv || !adj || !idx ? err_set(e, ERR_NOMEM, "evaluate: out of memory") : 0;
    for (int fam = 0; rc == 0 && fam < 2; fam++)
        for (int test = 0; rc == 0 && test < 2; test++) {
            int c = 0;
            for (int i = 0; i < a->n_pairs; i++)
                if (a->pairs[i].family == fam) {
                    idx[c] = i;
                    pv[c++] = test ? a->pairs[i].p_mcnemar : a->pairs[i].p_delong;
                }
            if (holm_adjust(c, pv, adj)) {
                rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
                break;
            }
            for (int j = 0; j < c; j++)
                *(test ? &a->pairs[idx[j]].p_mcnemar_holm : &a->pairs[idx[j]].p_delong_holm) =
                    adj[j];
        }
    mem_free(pv), mem_free(adj), mem_free(idx);
    return rc;
}

int analysis_run(const Study *st, int resamples, uint64_t seed, double level, Analysis *a, Err *e)
{
    memset(a, 0, sizeof *a);
    a->n_models = st->n_models, a->folds = st->splits.folds, a->resamples = resamples;
    a->seed = seed, a->level = level, a->n_patients = st->n_patients;
    int M = a->n_models, P = st->n_patients;
    a->res = mem_calloc((size_t)(M + 1), sizeof *a->res);
    Scores *sc = mem_calloc((size_t)(M + 1), sizeof *sc);
    PatientScores *ps = mem_calloc((size_t)(M + 1), sizeof *ps);
    int *has_pos = mem_calloc((size_t)(P + 1), sizeof *has_pos);
    int *has_neg = mem_calloc((size_t)(P + 1), sizeof *has_neg);
    BootDesign design = {0};
    int rc = !a->res || !sc || !ps || !has_pos || !has_neg
                 ? err_set(e, ERR_NOMEM, "evaluate: out of memory")
                 : 0;
    for (int m = 0; rc == 0 && m < M; m++) {
        if (scores_prepare(&sc[m], st->n, st->models[m].prob, st->label, st->models[m].pred) ||
            patient_scores_prepare(&ps[m], &sc[m], st->patient, P))
            rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
        else
            metrics_weighted(&sc[m], NULL, a->res[m].pooled);
    }
    for (int i = 0; rc == 0 && i < st->n; i++)
        *(st->label[i] ? &has_pos[st->patient[i]] : &has_neg[st->patient[i]]) = 1;
    if (rc == 0 && bootstrap_design(&design, P, has_pos, has_neg, seed))
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    if (rc == 0)
        rc = per_fold(st, a, e);
    if (rt_agree(e))
        goto out;
    rc = bootstrap_all(ps, &design, a, e);
    if (rc == 0 && rt_rank() == 0)
        rc = intervals_and_tests(st, ps, a, e);
out:
    for (int m = 0; sc && m < M; m++)
        scores_free(&sc[m]);
    for (int m = 0; ps && m < M; m++)
        patient_scores_free(&ps[m]);
    mem_free(sc), mem_free(ps), mem_free(has_pos), mem_free(has_neg);
    bootstrap_design_free(&design);
    return rc ? -1 : 0;
}

void analysis_free(Analysis *a)
{
    for (int m = 0; a->res && m < a->n_models; m++)
        mem_free(a->res[m].fold), mem_free(a->res[m].fold_n);
    mem_free(a->res), mem_free(a->dist), mem_free(a->jack), mem_free(a->auc), mem_free(a->cov);
    mem_free(a->pairs);
    memset(a, 0, sizeof *a);
}
