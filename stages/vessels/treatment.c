/* treatment.c: pairing pre and post series per patient, and the statistics (treatment.h). */
#include "stages/vessels/treatment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stats/bootstrap.h"
#include "lib/util/mem.h"

/* Percentile and BCa intervals of the mean of d over patient resamples. */
static int boot_mean(const BootDesign *bd, const double *d, int n, int B, double level,
                     TreatArm *arm)
{
    double *dist = mem_alloc((size_t)(B ? B : 1) * sizeof *dist);
    double *jack = mem_alloc((size_t)n * sizeof *jack);
    int *count = mem_alloc((size_t)n * sizeof *count);
    if (!dist || !jack || !count) {
        mem_free(dist), mem_free(jack), mem_free(count);
        return -1;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += d[i];
    for (int b = 0; b < B; b++) {
        bootstrap_counts(bd, (uint64_t)b, count);
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += count[i] * d[i];
        dist[b] = s / n;
    }
    for (int i = 0; i < n; i++)
        jack[i] = n > 1 ? (sum - d[i]) / (n - 1) : NAN;
    bootstrap_percentile(dist, B, level, &arm->boot_pct[0], &arm->boot_pct[1]);
    bootstrap_bca(dist, B, sum / n, jack, n, level, &arm->boot_bca[0], &arm->boot_bca[1], NULL,
                  NULL);
    mem_free(dist), mem_free(jack), mem_free(count);
    return 0;
}

static void skip(Treatment *t, int patient, const char *why)
{
    TreatSkip *s = &t->skips[t->n_skips++];
    s->patient = patient;
    snprintf(s->reason, sizeof s->reason, "%s", why);
}

int treatment_compute(const VCohort *c, const VMeasured *m, int resamples, uint64_t seed,
                      double level, Treatment *t, Err *e)
{
    memset(t, 0, sizeof *t);
    t->resamples = resamples, t->seed = seed, t->level = level;
    size_t np = (size_t)(c->n_patients ? c->n_patients : 1);
    t->pairs = mem_calloc(np, sizeof *t->pairs);
    t->skips = mem_calloc(np, sizeof *t->skips);
    double *dl = mem_alloc(np * sizeof *dl), *db = mem_alloc(np * sizeof *db);
    int *ones = mem_alloc(np * sizeof *ones), *zeros = mem_calloc(np, sizeof *zeros);
    int rc = 0;
    if (!t->pairs || !t->skips || !dl || !db || !ones || !zeros) {
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
        goto out;
    }
    for (int p = 0; p < c->n_patients; p++) {
        /* visits of the grafted hip: treated before the visit or not; -1 unknown */
        int grafted = 0, pre = -1, post = -1, any = 0;
        for (int k = 0; k < c->n_clinical; k++)
            grafted |= c->clinical[k].patient == p && c->clinical[k].grafted;
        for (int i = 0; i < c->n_series; i++) {
            const VSeries *s = &c->series[i];
            if (s->patient != p)
                continue;
            any = 1;
            int after = -1;
            for (int k = 0; k < c->n_clinical; k++) {
                const VClinical *r = &c->clinical[k];
                if (r->patient == p && r->grafted && r->visit == s->visit)
                    after = r->treated_before;
            }
            if (!m[i].ok || after < 0)
                continue;
            int *slot = after ? &post : &pre;
            if (*slot < 0 || c->series[*slot].visit < s->visit)
                *slot = i;
        }
        if (!any)
            skip(t, p, "no vessel series");
        else if (!grafted)
            skip(t, p, "not grafted (no clinical row with treatment vbg)");
        else if (pre < 0)
            skip(t, p, "no measured vessel series before the graft");
        else if (post < 0)
            skip(t, p, "no measured vessel series after the graft");
        else {
            TreatPair *q = &t->pairs[t->n_pairs++];
            q->patient = p, q->pre = pre, q->post = post;
            q->d_length = m[post].length_mm - m[pre].length_mm;
            q->d_branches = (double)(m[post].branches - m[pre].branches);
        }
    }
    int n = t->n_pairs;
    for (int i = 0; i < n; i++)
        dl[i] = t->pairs[i].d_length, db[i] = t->pairs[i].d_branches, ones[i] = 1;
    if (paired_summary(dl, n, level, &t->length.s) ||
        paired_summary(db, n, level, &t->branches.s)) {
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
        goto out;
    }
    t->length.boot_bca[0] = t->length.boot_bca[1] = NAN;
    t->length.boot_pct[0] = t->length.boot_pct[1] = NAN;
    t->branches.boot_bca[0] = t->branches.boot_bca[1] = NAN;
    t->branches.boot_pct[0] = t->branches.boot_pct[1] = NAN;
    if (n >= 2) {
        /* one stratum: every patient "has a positive" and no negative */
        BootDesign bd;
        if (bootstrap_design(&bd, n, ones, zeros, seed)) {
            rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
            goto out;
        }
        rc = boot_mean(&bd, dl, n, resamples, level, &t->length) ||
             boot_mean(&bd, db, n, resamples, level, &t->branches);
        bootstrap_design_free(&bd);
        if (rc)
            rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
    }
out:
    mem_free(dl), mem_free(db), mem_free(ones), mem_free(zeros);
    return rc;
}

void treatment_free(Treatment *t)
{
    mem_free(t->pairs), mem_free(t->skips);
    memset(t, 0, sizeof *t);
}
