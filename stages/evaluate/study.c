/* study.c: reading a run's split, labels, pseudonyms and the CNNs' held-out and validation
 * predictions into a Study (study.h), checking every line: each slice of a fold's partition
 * exactly once, the label and patient cohort.h5 has for it, a probability in [0, 1]. */
#include "stages/evaluate/study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/stats/metrics.h"
#include "lib/util/csv.h"
#include "lib/util/mem.h"

/* index of row r in st->row (ascending), or -1 */
static int find_row(const Study *st, int32_t r)
{
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (st->row[mid] == r)
            return mid;
        if (st->row[mid] < r)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The split's slices with their labels, folds and patients. */
static int load_split(Study *st, Err *e)
{
    char path[4200], cohort[4200];
    snprintf(path, sizeof path, "%s/splits.json", st->run);
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", st->run);
    if (splits_read(path, &st->splits, e))
        return err_prefix(e, "evaluate (run `onfh split` first?)");
    const Splits *sp = &st->splits;
    st->n = sp->n;
    size_t n = (size_t)(sp->n ? sp->n : 1);
    st->row = mem_alloc(n * sizeof *st->row);
    st->label = mem_alloc(n * sizeof *st->label);
    st->fold = mem_alloc(n * sizeof *st->fold);
    st->patient = mem_alloc(n * sizeof *st->patient);
    if (!st->row || !st->label || !st->fold || !st->patient)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    hid_t f;
    if (h5_open_read(cohort, &f, e))
        return -1;
    H5Array la = {0}, pa = {0};
    char *pseud = NULL;
    long np = 0;
    int *dense = NULL;
    int rc = h5_read_int(f, "/slices/label", &la, e) || h5_read_int(f, "/slices/patient", &pa, e) ||
             h5_read_strings(f, cohort, "/patients/pseudonym", 16, &pseud, &np, e);
    h5_close(f);
    if (rc == 0 && !(dense = mem_alloc((size_t)(np + 1) * sizeof *dense)))
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    if (rc == 0 && !(st->pseudonym = mem_calloc((size_t)(np + 1), sizeof *st->pseudonym)))
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    for (long p = 0; rc == 0 && p < np; p++)
        dense[p] = -1;
    const int32_t *label = la.data, *patient = pa.data;
    for (int i = 0; rc == 0 && i < sp->n; i++) {
        int32_t r = sp->rows[i];
        st->row[i] = r;
        if ((size_t)r >= la.numel || label[r] < 0 || label[r] > 1 || patient[r] < 0 ||
            patient[r] >= np) {
            rc = err_set(e, ERR_FORMAT,
                         "%s: slice %d has no label or patient in %s (label %d): split and "
                         "cohort disagree",
                         path, r, cohort, (size_t)r < la.numel ? label[r] : -9);
            break;
        }
        st->label[i] = label[r];
        int p = patient[r];
        if (dense[p] < 0) {
            dense[p] = st->n_patients;
            memcpy(st->pseudonym[st->n_patients++], pseud + 17 * (size_t)p, 17);
        }
        st->patient[i] = dense[p];
        st->fold[i] = -1;
        for (int k = 0; k < sp->folds; k++)
            if (sp->part[(size_t)k * sp->n + i] == SPLIT_TEST) {
                if (st->fold[i] >= 0) {
                    rc = err_set(e, ERR_FORMAT,
                                 "%s: slice %d is in the test partitions of folds "
                                 "%d and %d",
                                 path, r, st->fold[i], k);
                    break;
                }
                st->fold[i] = k;
            }
        if (rc == 0 && st->fold[i] < 0)
            rc = err_set(e, ERR_FORMAT, "%s: slice %d is in no fold's test partition", path, r);
    }
    /* a patient-level split keeps each patient's slices in one test fold */
    if (rc == 0 && !sp->slice_level) {
        int *home = mem_alloc((size_t)(st->n_patients + 1) * sizeof *home);
        if (!home)
            rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
        for (int p = 0; rc == 0 && p < st->n_patients; p++)
            home[p] = -1;
        for (int i = 0; rc == 0 && i < st->n; i++) {
            int p = st->patient[i];
            if (home[p] >= 0 && home[p] != st->fold[i])
                rc = err_set(e, ERR_FORMAT,
                             "%s: patient %s has test slices in folds %d and %d, but the split "
                             "is patient-level (level: patient)",
                             path, st->pseudonym[p], home[p], st->fold[i]);
            home[p] = st->fold[i];
        }
        mem_free(home);
    }
    h5_array_free(&la), h5_array_free(&pa);
    mem_free(pseud), mem_free(dense);
    return rc ? -1 : 0;
}

/* Reads one predictions file of (arch, fold, partition): prob[i] for study slice i (test), or
 * appends to the validation arrays. seen: (n) scratch. */
static int read_predictions(const Study *st, const char *path, int fold, int part, double *prob,
                            double *vprob, int *vlabel, int *vfold, int *nv, int *seen, Err *e)
{
    Csv c;
    if (csv_read_file(&c, path, e))
        return err_prefix(e, "evaluate (has `onfh train` finished this fold?)");
    int ip, is, il, iq, rc = 0;
    if (csv_column(&c, "patient", &ip, e) || csv_column(&c, "slice", &is, e) ||
        csv_column(&c, "label", &il, e) || csv_column(&c, "probability", &iq, e)) {
        csv_free(&c);
        return -1;
    }
    const Splits *sp = &st->splits;
    memset(seen, 0, (size_t)st->n * sizeof *seen);
    for (size_t k = 0; k < c.n_rows && rc == 0; k++) {
        const CsvRow *r = &c.rows[k];
        char *end;
        long row = strtol(r->field[is], &end, 10);
        int i = *r->field[is] && !*end ? find_row(st, (int32_t)row) : -1;
        if (i < 0 || sp->part[(size_t)fold * sp->n + i] != part) {
            rc = err_set(e, ERR_FORMAT,
                         "%s:%d: field slice: '%s' is not a slice of fold %d's %s "
                         "partition in splits.json",
                         path, r->line, r->field[is], fold,
                         part == SPLIT_TEST ? "test" : "validation");
            break;
        }
        if (seen[i]++) {
            rc = err_set(e, ERR_FORMAT, "%s:%d: slice %ld appears a second time", path, r->line,
                         row);
            break;
        }
        if (strcmp(r->field[ip], st->pseudonym[st->patient[i]])) {
            rc = err_set(e, ERR_FORMAT,
                         "%s:%d: field patient: '%s', but cohort.h5 has slice %ld "
                         "from patient %s",
                         path, r->line, r->field[ip], row, st->pseudonym[st->patient[i]]);
            break;
        }
        long lab = strtol(r->field[il], &end, 10);
        if (!*r->field[il] || *end || lab != st->label[i]) {
            rc = err_set(e, ERR_FORMAT,
                         "%s:%d: field label: '%s', but cohort.h5 labels slice "
                         "%ld %d",
                         path, r->line, r->field[il], row, st->label[i]);
            break;
        }
        double p = strtod(r->field[iq], &end);
        if (!*r->field[iq] || *end || !(p >= 0 && p <= 1)) {
            rc = err_set(e, ERR_FORMAT,
                         "%s:%d: field probability: '%s', expected a number in "
                         "[0, 1]",
                         path, r->line, r->field[iq]);
            break;
        }
        if (part == SPLIT_TEST)
            prob[i] = p;
        else
            vprob[*nv] = p, vlabel[*nv] = st->label[i], vfold[(*nv)++] = fold;
    }
    int missing = 0, first = -1;
    for (int i = 0; rc == 0 && i < st->n; i++)
        if (sp->part[(size_t)fold * sp->n + i] == part && !seen[i])
            missing++, first = first < 0 ? st->row[i] : first;
    if (rc == 0 && missing)
        rc = err_set(e, ERR_FORMAT,
                     "%s: %d slice(s) of fold %d's %s partition have no "
                     "prediction, the first /slices row %d",
                     path, missing, fold, part == SPLIT_TEST ? "test" : "validation", first);
    csv_free(&c);
    return rc ? -1 : 0;
}

int study_threshold(const Study *st, Model *m, const double *vprob, const int *vlabel,
                    const int *vfold, int nv, Err *e)
{
    int folds = st->splits.folds;
    double *p = mem_alloc((size_t)(nv + 1) * sizeof *p);
    int *l = mem_alloc((size_t)(nv + 1) * sizeof *l);
    if (!p || !l) {
        mem_free(p), mem_free(l);
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    }
    for (int k = 0; k < folds; k++) {
        int c = 0;
        for (int j = 0; j < nv; j++)
            if (vfold[j] == k)
                p[c] = vprob[j], l[c++] = vlabel[j];
        m->threshold[k] = metrics_youden_threshold(p, l, c);
    }
    for (int i = 0; i < st->n; i++)
        m->pred[i] = m->prob[i] >= m->threshold[st->fold[i]];
    mem_free(p), mem_free(l);
    return 0;
}

static int model_alloc(Study *st, const char *name, int kind, Model **out, Err *e)
{
    Model *grown = mem_realloc(st->models, (size_t)(st->n_models + 1) * sizeof *grown);
    if (!grown)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    st->models = grown;
    Model *m = &st->models[st->n_models++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->kind = kind;
    m->prob = mem_alloc((size_t)(st->n + 1) * sizeof *m->prob);
    m->pred = mem_alloc((size_t)(st->n + 1) * sizeof *m->pred);
    m->threshold = mem_alloc((size_t)(st->splits.folds + 1) * sizeof *m->threshold);
    if (!m->prob || !m->pred || !m->threshold)
        return err_set(e, ERR_NOMEM, "evaluate: out of memory");
    *out = m;
    return 0;
}

/* One CNN: its held-out and validation predictions of every fold. */
static int load_cnn(Study *st, const char *arch, Err *e)
{
    Model *m = NULL;
    if (model_alloc(st, arch, MODEL_CNN, &m, e))
        return -1;
    size_t n = (size_t)(st->n + 1);
    double *vprob = mem_alloc(n * sizeof *vprob);
    int *vlabel = mem_alloc(n * sizeof *vlabel), *vfold = mem_alloc(n * sizeof *vfold);
    int *seen = mem_alloc(n * sizeof *seen), nv = 0, rc = 0;
    if (!vprob || !vlabel || !vfold || !seen)
        rc = err_set(e, ERR_NOMEM, "evaluate: out of memory");
    for (int k = 0; rc == 0 && k < st->splits.folds; k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/models/%s/fold%d/heldout_predictions.csv", st->run, arch,
                 k);
        rc = read_predictions(st, path, k, SPLIT_TEST, m->prob, NULL, NULL, NULL, NULL, seen, e);
        snprintf(path, sizeof path, "%s/models/%s/fold%d/validation_predictions.csv", st->run, arch,
                 k);
        if (rc == 0)
            rc = read_predictions(st, path, k, SPLIT_VAL, NULL, vprob, vlabel, vfold, &nv, seen, e);
    }
    if (rc == 0)
        rc = study_threshold(st, m, vprob, vlabel, vfold, nv, e);
    mem_free(vprob), mem_free(vlabel), mem_free(vfold), mem_free(seen);
    return rc ? -1 : 0;
}

int study_load(Study *st, const char *run, char *const *archs, int n_archs, int baselines, Err *e)
{
    memset(st, 0, sizeof *st);
    snprintf(st->run, sizeof st->run, "%s", run);
    int rc = load_split(st, e);
    for (int a = 0; rc == 0 && a < n_archs; a++)
        rc = load_cnn(st, archs[a], e);
    if (rc == 0 && baselines) {
        char cohort[4200];
        snprintf(cohort, sizeof cohort, "%s/cohort.h5", run);
        rc = study_add_baselines(st, cohort, e);
    }
    return rc ? -1 : 0;
}

void study_free(Study *st)
{
    for (int m = 0; m < st->n_models; m++) {
        mem_free(st->models[m].prob), mem_free(st->models[m].pred);
        mem_free(st->models[m].threshold);
    }
    mem_free(st->models);
    mem_free(st->row), mem_free(st->label), mem_free(st->fold), mem_free(st->patient);
    mem_free(st->pseudonym);
    splits_free(&st->splits);
    memset(st, 0, sizeof *st);
}
