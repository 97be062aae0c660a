/* split.c: `onfh split` (see split.h). Rank 0 does the work (it is milliseconds) and the
 * others wait for the verdict. */
#include "stages/split/split.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/cohort/splits.h"
#include "lib/h5/h5read.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "pipeline/runtime.h"
#include "stages/split/folds.h"

/* Reads /slices/patient, label, valid and keeps the labelled, decodable rows. */
static int eligible(const char *cohort, Splits *sp, int32_t **patient, int32_t **label, Err *e)
{
    hid_t f;
    if (h5_open_read(cohort, &f, e))
        return err_prefix(e, "split (run `onfh ingest` first?)");
    H5Array pa = {0}, la = {0}, va = {0};
    int rc = h5_read_int(f, "/slices/patient", &pa, e) || h5_read_int(f, "/slices/label", &la, e) ||
             h5_read_int(f, "/slices/valid", &va, e);
    h5_close(f);
    if (rc)
        goto out;
    size_t n = pa.numel;
    sp->rows = mem_alloc((n ? n : 1) * sizeof *sp->rows);
    *patient = mem_alloc((n ? n : 1) * sizeof **patient);
    *label = mem_alloc((n ? n : 1) * sizeof **label);
    if (!sp->rows || !*patient || !*label) {
        rc = err_set(e, ERR_NOMEM, "split: out of memory");
        goto out;
    }
    const int32_t *p = pa.data, *l = la.data, *v = va.data;
    for (size_t i = 0; i < n; i++)
        if (l[i] >= 0 && v[i]) {
            sp->rows[sp->n] = (int32_t)i;
            (*patient)[sp->n] = p[i];
            (*label)[sp->n++] = l[i];
        }
out:
    h5_array_free(&pa), h5_array_free(&la), h5_array_free(&va);
    return rc ? -1 : 0;
}

static int split_rank0(Session *s, Splits *sp, Err *e)
{
    const Config *cfg = &s->cfg;
    char cohort[4200], out[4200];
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", s->run.path);
    snprintf(out, sizeof out, "%s/splits.json", s->run.path);
    sp->folds = (int)config_int(cfg, "split.folds");
    sp->val_fraction = config_num(cfg, "split.val_fraction");
    sp->slice_level = !strcmp(config_str(cfg, "split.level"), "slice");
    sp->seed = (uint64_t)config_int(cfg, "run.seed");
    if (sha256_file(cohort, sp->cohort_sha256, NULL, e))
        return err_prefix(e, "split (run `onfh ingest` first?)");
    int32_t *patient = NULL, *label = NULL, *group = NULL;
    int rc = eligible(cohort, sp, &patient, &label, e);
    if (rc == 0) {
        group = sp->slice_level ? sp->rows : patient;
        sp->part = mem_alloc((size_t)sp->folds * (size_t)(sp->n ? sp->n : 1));
        if (!sp->part)
            rc = err_set(e, ERR_NOMEM, "split: out of memory");
    }
    if (rc == 0 && sp->n == 0)
        rc = err_set(e, ERR_CONFIG, "split: %s has no labelled slices (ingest.labels_csv)", cohort);
    if (rc == 0)
        rc = folds_assign(sp->n, group, label, sp->folds, sp->val_fraction, sp->seed, sp->part, e);
    if (rc == 0)
        rc = folds_check(sp->n, patient, label, sp->folds, sp->part, sp->slice_level, e);
    if (rc == 0) {
        splits_hash(sp);
        rc = splits_write(out, sp, e);
    }
    if (rc == 0) {
        int pos = 0;
        for (int i = 0; i < sp->n; i++)
            pos += label[i] != 0;
        log_info("split: %d labelled slices (%d lesion, %d normal) into %d %s-level folds, "
                 "validation %.0f%% of each training share; assignment %.12s",
                 sp->n, pos, sp->n - pos, sp->folds, sp->slice_level ? "slice" : "patient",
                 100 * sp->val_fraction, sp->sha256);
        if (sp->slice_level)
            log_warn("split: split.level is 'slice' (the paper's protocol): slices of one patient "
                     "land in training and test, which inflates every metric");
    }
    mem_free(patient);
    mem_free(label);
    return rc;
}

int split_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    Splits sp = {0};
    int rc = rt_rank() == 0 ? split_rank0(s, &sp, e) : 0;
    splits_free(&sp);
    if (rt_agree(e))
        return -1;
    const char *inputs[] = {"cohort.h5"}, *outputs[] = {"splits.json"};
    return session_record_stage(s, "split", inputs, 1, outputs, 1, MPI_Wtime() - t0, e) ? -1 : rc;
}
