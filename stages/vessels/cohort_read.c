/* cohort_read.c: reading cohort.h5's tables for the vessels stage (cohort_read.h). */
#include "stages/vessels/cohort_read.h"

#include <hdf5.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/util/mem.h"

static int read_col(hid_t f, const char *path, hid_t type, int64_t n, void *buf, Err *e)
{
    return n ? h5_read_rows(f, path, 0, n, type, buf, e) : 0;
}

int vcohort_read(VCohort *c, const char *path, Err *e)
{
    memset(c, 0, sizeof *c);
    hid_t f;
    if (h5_open_read(path, &f, e))
        return err_prefix(e, "vessels (run `onfh ingest` first?): ");
    char *pseud = NULL, *hip = NULL, *treat = NULL;
    long np = 0, nh = 0, nt = 0;
    H5Array role = {0};
    int32_t *patient = NULL, *study = NULL, *nsl = NULL, *rows = NULL, *cols = NULL;
    int32_t *st_visit = NULL, *st_day = NULL;
    double *spacing = NULL;
    int64_t *offset = NULL;
    int rc = h5_read_strings(f, path, "/patients/pseudonym", 16, &pseud, &np, e) ||
             h5_read_int(f, "/series/role", &role, e);
    int64_t ns = rc ? 0 : (int64_t)role.numel;
    H5Array sv = {0};
    if (!rc)
        rc = h5_read_int(f, "/studies/visit", &sv, e);
    int64_t nst = rc ? 0 : (int64_t)sv.numel;
    size_t a = (size_t)(ns ? ns : 1), b = (size_t)(nst ? nst : 1);
    if (!rc) {
        patient = mem_alloc(a * 4), study = mem_alloc(a * 4), nsl = mem_alloc(a * 4);
        rows = mem_alloc(a * 4), cols = mem_alloc(a * 4), spacing = mem_alloc(a * 3 * 8);
        offset = mem_alloc(a * 8), st_visit = mem_alloc(b * 4), st_day = mem_alloc(b * 4);
        if (!patient || !study || !nsl || !rows || !cols || !spacing || !offset || !st_visit ||
            !st_day)
            rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
    }
    if (!rc)
        rc = read_col(f, "/series/patient", H5T_NATIVE_INT32, ns, patient, e) ||
             read_col(f, "/series/study", H5T_NATIVE_INT32, ns, study, e) ||
             read_col(f, "/series/n_slices", H5T_NATIVE_INT32, ns, nsl, e) ||
             read_col(f, "/series/rows", H5T_NATIVE_INT32, ns, rows, e) ||
             read_col(f, "/series/columns", H5T_NATIVE_INT32, ns, cols, e) ||
             read_col(f, "/series/spacing_mm", H5T_NATIVE_DOUBLE, ns, spacing, e) ||
             read_col(f, "/series/native_offset", H5T_NATIVE_INT64, ns, offset, e) ||
             read_col(f, "/studies/visit", H5T_NATIVE_INT32, nst, st_visit, e) ||
             read_col(f, "/studies/day", H5T_NATIVE_INT32, nst, st_day, e);
    c->n_patients = (int)np;
    c->pseudonym = (char(*)[17])pseud;
    pseud = NULL;
    c->n_series_total = (int)ns;
    if (!rc && !(c->series = mem_calloc(a, sizeof *c->series)))
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
    for (int64_t i = 0; !rc && i < ns; i++) {
        if (((const int32_t *)role.data)[i] != 2)
            continue;
        if (patient[i] < 0 || patient[i] >= np || study[i] < 0 || study[i] >= nst) {
            rc = err_set(e, ERR_FORMAT, "%s: /series row %lld names patient %d, study %d", path,
                         (long long)i, patient[i], study[i]);
            break;
        }
        VSeries *s = &c->series[c->n_series++];
        s->row = (int)i, s->patient = patient[i];
        s->visit = st_visit[study[i]], s->day = st_day[study[i]];
        s->dims[0] = cols[i], s->dims[1] = rows[i], s->dims[2] = nsl[i];
        s->spacing[0] = spacing[3 * i + 1], s->spacing[1] = spacing[3 * i];
        s->spacing[2] = spacing[3 * i + 2];
        s->offset = offset[i];
    }
    /* /clinical is optional: ingest without clinical.csv writes none */
    c->has_clinical = !rc && h5_exists(f, "/clinical/patient");
    if (c->has_clinical) {
        H5Array cp = {0}, cv = {0}, cb = {0};
        rc = h5_read_int(f, "/clinical/patient", &cp, e) ||
             h5_read_int(f, "/clinical/visit", &cv, e) ||
             h5_read_int(f, "/clinical/treated_before_visit", &cb, e) ||
             h5_read_strings(f, path, "/clinical/hip", 2, &hip, &nh, e) ||
             h5_read_strings(f, path, "/clinical/treatment", 16, &treat, &nt, e);
        int64_t nc = rc ? 0 : (int64_t)cp.numel;
        if (!rc && !(c->clinical = mem_calloc((size_t)(nc ? nc : 1), sizeof *c->clinical)))
            rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
        for (int64_t i = 0; !rc && i < nc; i++) {
            VClinical *r = &c->clinical[c->n_clinical++];
            r->patient = ((int32_t *)cp.data)[i], r->visit = ((int32_t *)cv.data)[i];
            r->treated_before = ((int32_t *)cb.data)[i] == 1;
            r->grafted = !strcmp(treat + 17 * i, "vbg");
        }
        h5_array_free(&cp), h5_array_free(&cv), h5_array_free(&cb);
    }
    h5_close(f);
    h5_array_free(&role), h5_array_free(&sv);
    mem_free(patient), mem_free(study), mem_free(nsl), mem_free(rows), mem_free(cols);
    mem_free(spacing), mem_free(offset), mem_free(st_visit), mem_free(st_day);
    mem_free(pseud), mem_free(hip), mem_free(treat);
    if (rc)
        vcohort_free(c);
    return rc;
}

int vcohort_voxels(const char *path, const VSeries *s, float *voxels, Err *e)
{
    hid_t f;
    if (h5_open_read(path, &f, e))
        return -1;
    int64_t n = (int64_t)s->dims[0] * s->dims[1] * s->dims[2];
    int rc = h5_read_rows(f, "/native/voxels", s->offset, n, H5T_NATIVE_FLOAT, voxels, e);
    h5_close(f);
    return rc;
}

void vcohort_free(VCohort *c)
{
    mem_free(c->pseudonym), mem_free(c->series), mem_free(c->clinical);
    memset(c, 0, sizeof *c);
}
