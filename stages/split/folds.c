/* folds.c: group-aware, class-stratified k-fold assignment (see folds.h). */
#include "stages/split/folds.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"

typedef struct Group {
    int32_t id;
    int count[2];  /* items of class 0 and 1 */
    uint32_t draw; /* tie-break, Philox */
} Group;

static int cmp_group(const void *a, const void *b)
{
    const Group *x = a, *y = b;
    int nx = x->count[0] + x->count[1], ny = y->count[0] + y->count[1];
    if (nx != ny)
        return ny - nx;
    if (x->draw != y->draw)
        return x->draw < y->draw ? -1 : 1;
    return x->id - y->id;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Assigns groups g[0..ng) (sorted) to bins with target shares target[b]; bin_of[k] gets the bin
 * of g[k]. */
static void pack(const Group *g, int ng, int bins, const double *target, int *bin_of)
{
    int total[2] = {0, 0};
    for (int k = 0; k < ng; k++)
        total[0] += g[k].count[0], total[1] += g[k].count[1];
    int cnt[64][2];
    memset(cnt, 0, sizeof cnt);
    for (int k = 0; k < ng; k++) {
        int best = 0;
        double best_cost = 0;
        for (int b = 0; b < bins; b++) {
            double cost = 0;
            for (int c = 0; c < 2; c++)
                if (total[c])
                    cost += (cnt[b][c] + g[k].count[c]) / (target[b] * total[c]);
            if (b == 0 || cost < best_cost - 1e-12)
                best = b, best_cost = cost;
        }
        bin_of[k] = best;
        cnt[best][0] += g[k].count[0], cnt[best][1] += g[k].count[1];
    }
}

/* Index of group id in the sorted id list. */
static int group_index(const int32_t *ids, int ng, int32_t id)
{
    const int32_t *p = bsearch(&id, ids, (size_t)ng, sizeof *ids, cmp_i32);
    return p ? (int)(p - ids) : -1;
}

int folds_assign(int n, const int32_t *group, const int32_t *label, int folds, double val_fraction,
                 uint64_t seed, int8_t *part, Err *e)
{
    if (folds < 2 || folds > 64)
        return err_set(e, ERR_CONFIG, "split.folds: %d, expected 2 to 64", folds);
    int32_t *ids = mem_alloc((size_t)(n ? n : 1) * sizeof *ids);
    Group *g = NULL, *sub = NULL;
    int *fold_of = NULL, *bin_of = NULL, *sub_of = NULL;
    int rc = 0;
    if (!ids)
        return err_set(e, ERR_NOMEM, "split: out of memory");
    memcpy(ids, group, (size_t)n * sizeof *ids);
    qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
    int ng = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || ids[i] != ids[ng - 1])
            ids[ng++] = ids[i];
    if (ng < folds) {
        rc = err_set(e, ERR_CONFIG,
                     "split.folds: %d folds, but only %d groups (patients) have "
                     "labelled slices",
                     folds, ng);
        goto out;
    }
    g = mem_calloc((size_t)ng, sizeof *g);
    sub = mem_calloc((size_t)ng, sizeof *sub);
    fold_of = mem_alloc((size_t)ng * sizeof *fold_of);
    bin_of = mem_alloc((size_t)ng * sizeof *bin_of);
    sub_of = mem_alloc((size_t)ng * sizeof *sub_of);
    if (!g || !sub || !fold_of || !bin_of || !sub_of) {
        rc = err_set(e, ERR_NOMEM, "split: out of memory");
        goto out;
    }
    for (int k = 0; k < ng; k++) {
        Philox p;
        philox_init(&p, seed, PHILOX_SPLIT, (uint64_t)(uint32_t)ids[k]);
        g[k] = (Group){.id = ids[k], .draw = philox_u32(&p)};
    }
    for (int i = 0; i < n; i++)
        g[group_index(ids, ng, group[i])].count[label[i] != 0]++;
    qsort(g, (size_t)ng, sizeof *g, cmp_group);
    double target[64];
    for (int f = 0; f < folds; f++)
        target[f] = 1.0 / folds;
    pack(g, ng, folds, target, bin_of);
    /* fold_of by position in ids (sorted by id), for the item loop */
    for (int k = 0; k < ng; k++)
        fold_of[group_index(ids, ng, g[k].id)] = bin_of[k];
    double vt[2] = {val_fraction, 1.0 - val_fraction};
    for (int f = 0; f < folds; f++) {
        int ns = 0;
        for (int k = 0; k < ng; k++)
            if (bin_of[k] != f)
                sub[ns++] = g[k]; /* still in sorted order */
        pack(sub, ns, 2, vt, sub_of);
        for (int i = 0; i < n; i++) {
            int gi = group_index(ids, ng, group[i]);
            if (fold_of[gi] == f) {
                part[(size_t)f * n + i] = PART_TEST;
                continue;
            }
            /* find the group in sub (ns is small: patients) */
            int k = 0;
            while (k < ns && sub[k].id != group[i])
                k++;
            part[(size_t)f * n + i] = sub_of[k] == 0 ? PART_VAL : PART_TRAIN;
        }
    }
out:
    mem_free(ids), mem_free(g), mem_free(sub), mem_free(fold_of), mem_free(bin_of),
        mem_free(sub_of);
    return rc;
}

static const char *part_name(int p)
{
    return p == PART_TRAIN ? "train" : p == PART_VAL ? "validation" : "test";
}

int folds_check(int n, const int32_t *group, const int32_t *label, int folds, const int8_t *part,
                int slice_level, Err *e)
{
    int rc = 0, ng = 0;
    int32_t *ids = mem_alloc((size_t)(n ? n : 1) * sizeof *ids);
    int *seen = mem_calloc((size_t)(n ? n : 1), sizeof *seen); /* f * 4 + 4 + partition */
    if (!ids || !seen) {
        rc = err_set(e, ERR_NOMEM, "split: out of memory");
        goto out;
    }
    memcpy(ids, group, (size_t)n * sizeof *ids);
    qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
    for (int i = 0; i < n; i++)
        if (i == 0 || ids[i] != ids[ng - 1])
            ids[ng++] = ids[i];
    for (int i = 0; i < n; i++) {
        int tests = 0;
        for (int f = 0; f < folds; f++)
            tests += part[(size_t)f * n + i] == PART_TEST;
        if (tests != 1) {
            rc = err_set(e, ERR_INTERNAL, "split: item %d is in %d test folds, expected 1", i,
                         tests);
            goto out;
        }
    }
    for (int f = 0; f < folds; f++) {
        const int8_t *pf = part + (size_t)f * n;
        int have[3][2] = {{0}};
        for (int i = 0; i < n; i++)
            have[pf[i]][label[i] != 0] = 1;
        for (int p = 0; p < 3; p++)
            for (int c = 0; c < 2; c++)
                if (!have[p][c]) {
                    rc = err_set(e, ERR_CONFIG,
                                 "split: fold %d: the %s partition has no slice labelled %d "
                                 "(too few labelled patients for split.folds and "
                                 "split.val_fraction)",
                                 f, part_name(p), c);
                    goto out;
                }
        if (slice_level)
            continue;
        /* every group's items in one partition: remember the partition of the first item */
        for (int i = 0; i < n; i++) {
            int gi = group_index(ids, ng, group[i]);
            if (seen[gi] != f * 4 + 4 + pf[i] && seen[gi] >= f * 4 + 4)
                rc = err_set(e, ERR_INTERNAL,
                             "split: fold %d: patient %d is in both the %s and the %s partition", f,
                             group[i], part_name(seen[gi] - f * 4 - 4), part_name(pf[i]));
            if (rc)
                goto out;
            seen[gi] = f * 4 + 4 + pf[i];
        }
    }
out:
    mem_free(ids);
    mem_free(seen);
    return rc;
}
