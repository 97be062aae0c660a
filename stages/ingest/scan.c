/* scan.c: the files of a DICOM tree, and what each one's header says (see ingest_internal.h).
 *
 * Every file is parsed whole (pixels not decoded), so a truncated or corrupt file is caught
 * here, before series are assembled, and never takes a slice's place later. Verdicts:
 *   not_dicom                    neither a Part 10 file nor a data set
 *   truncated                    the file ends inside an element
 *   corrupt                      other structural errors
 *   unsupported_transfer_syntax  a syntax the support matrix refuses or does not know
 *   not_image                    no PixelData (structured reports, presentation states ...)
 *   missing_attribute            a header field ingest needs is absent or malformed
 *   multiframe                   enhanced multi-frame images: not ingested (yet) */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/dicom/dicom.h"
#include "lib/util/mem.h"
#include "stages/ingest/ingest_internal.h"

/* ---------------------------------------------------------------------------------------------
 * Listing. */

typedef struct List {
    char **paths;
    uint64_t *sizes;
    int n;
    int cap;
} List;

static int list_add(List *l, const char *path, uint64_t size, Err *e)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **p = mem_realloc(l->paths, (size_t)cap * sizeof *p);
        if (p)
            l->paths = p;
        uint64_t *s = p ? mem_realloc(l->sizes, (size_t)cap * sizeof *s) : NULL;
        if (!p || !s)
            return err_set(e, ERR_NOMEM, "out of memory listing files");
        l->sizes = s;
        l->cap = cap;
    }
    if (!(l->paths[l->n] = mem_strdup(path)))
        return err_set(e, ERR_NOMEM, "out of memory listing files");
    l->sizes[l->n++] = size;
    return 0;
}

static int walk(List *l, const char *dir, Err *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set(e, ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *ent;
    while (!rc && (ent = readdir(d))) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >= (int)sizeof path)
            continue; /* a path too long to open is not a file we can read */
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk(l, path, e);
        else if (S_ISREG(st.st_mode))
            rc = list_add(l, path, (uint64_t)st.st_size, e);
    }
    closedir(d);
    return rc;
}

typedef struct Entry {
    char *path;
    uint64_t size;
} Entry;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const Entry *)a)->path, ((const Entry *)b)->path);
}

int ingest_list_files(const char *dir, char ***paths, uint64_t **sizes, int *n, Err *e)
{
    List l = {0};
    Entry *entries = NULL;
    int rc = walk(&l, dir, e);
    if (!rc && !(entries = mem_calloc((size_t)(l.n ? l.n : 1), sizeof *entries)))
        rc = err_set(e, ERR_NOMEM, "out of memory listing files");
    if (rc) {
        for (int i = 0; i < l.n; i++)
            mem_free(l.paths[i]);
        mem_free(l.paths);
        mem_free(l.sizes);
        return rc;
    }
    /* Byte order of paths: the same on every machine, whatever readdir returned. */
    for (int i = 0; i < l.n; i++)
        entries[i] = (Entry){l.paths[i], l.sizes[i]};
    qsort(entries, (size_t)l.n, sizeof *entries, cmp_entry);
    for (int i = 0; i < l.n; i++) {
        l.paths[i] = entries[i].path;
        l.sizes[i] = entries[i].size;
    }
    mem_free(entries);
    *paths = l.paths;
    *sizes = l.sizes;
    *n = l.n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * One file. */

static void skip(FileRec *r, const char *verdict, const char *reason)
{
    snprintf(r->skip, sizeof r->skip, "%s", verdict);
    snprintf(r->reason, sizeof r->reason, "%s", reason);
}

/* A required string; missing or malformed gives the missing_attribute verdict. */
static int need_string(const DicomDataset *ds, uint32_t tag, char *out, size_t cap, FileRec *r)
{
    Err e = {0};
    if (dicom_find(ds, tag) && dicom_get_string(ds, tag, out, cap, &e) == 0 && out[0])
        return 1;
    char why[300];
    snprintf(why, sizeof why, "(%04X,%04X) %s is %s", DICOM_GROUP(tag), DICOM_ELEMENT(tag),
             dicom_tag_keyword(tag), dicom_find(ds, tag) ? "malformed or empty" : "absent");
    skip(r, "missing_attribute", why);
    return 0;
}

static int need_numbers(const DicomDataset *ds, uint32_t tag, double *out, size_t want, FileRec *r)
{
    Err e = {0};
    size_t n = 0;
    if (dicom_find(ds, tag) && dicom_get_numbers(ds, tag, out, want, &n, &e) == 0 && n >= want)
        return 1;
    char why[300];
    snprintf(why, sizeof why, "(%04X,%04X) %s: expected %zu numbers%s%s", DICOM_GROUP(tag),
             DICOM_ELEMENT(tag), dicom_tag_keyword(tag), want, e.msg[0] ? ": " : "", e.msg);
    skip(r, "missing_attribute", why);
    return 0;
}

static void optional_string(const DicomDataset *ds, uint32_t tag, char *out, size_t cap)
{
    Err e = {0};
    out[0] = '\0';
    if (dicom_find(ds, tag) && dicom_get_string(ds, tag, out, cap, &e) != 0)
        out[0] = '\0';
}

int ingest_scan_file(const char *path, uint64_t bytes, FileRec *r, Err *e)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->bytes = bytes;
    DicomFile *f = NULL;
    Err re = {0};
    int rc = dicom_read_file(path, NULL, &f, &re);
    if (rc == ERR_NOMEM) {
        *e = re;
        return rc;
    }
    if (rc) {
        const char *verdict = strstr(re.msg, "not a DICOM file") ? "not_dicom"
                              : strstr(re.msg, "cannot")         ? "unreadable"
                              : dicom_error_truncated(&re)       ? "truncated"
                                                                 : "corrupt";
        skip(r, verdict, re.msg);
        return 0;
    }
    const DicomDataset *ds = f->ds;
    snprintf(r->ts_uid, sizeof r->ts_uid, "%s", f->ts_uid);
    if (!f->ts || !f->ts->supported) {
        char why[300];
        snprintf(why, sizeof why, "transfer syntax %s (%s)", f->ts_uid,
                 f->ts ? f->ts->name : "not in the support matrix");
        skip(r, "unsupported_transfer_syntax", why);
        goto out;
    }
    if (!dicom_find(ds, DICOM_TAG_PIXEL_DATA)) {
        skip(r, "not_image", "no (7FE0,0010) PixelData");
        goto out;
    }
    DicomImageInfo info;
    if (dicom_image_info(f, &info, &re)) {
        skip(r, "missing_attribute", re.msg);
        goto out;
    }
    if (info.frames != 1 || info.samples_per_pixel != 1) {
        skip(r, "multiframe",
             info.frames != 1 ? "enhanced multi-frame images are not ingested yet"
                              : "colour images are not MR slices");
        goto out;
    }
    r->rows = info.rows;
    r->columns = info.columns;
    double inst = 0, field = 0;
    if (!need_string(ds, DICOM_TAG_PATIENT_ID, r->patient_id, sizeof r->patient_id, r) ||
        !need_string(ds, DICOM_TAG_STUDY_INSTANCE_UID, r->study_uid, sizeof r->study_uid, r) ||
        !need_string(ds, DICOM_TAG_SERIES_INSTANCE_UID, r->series_uid, sizeof r->series_uid, r) ||
        !need_string(ds, DICOM_TAG_SOP_INSTANCE_UID, r->sop_uid, sizeof r->sop_uid, r) ||
        !need_string(ds, DICOM_TAG_STUDY_DATE, r->study_date, sizeof r->study_date, r) ||
        !need_numbers(ds, DICOM_TAG_IMAGE_POSITION_PATIENT, r->position, 3, r) ||
        !need_numbers(ds, DICOM_TAG_IMAGE_ORIENTATION_PATIENT, r->orientation, 6, r) ||
        !need_numbers(ds, DICOM_TAG_PIXEL_SPACING, r->spacing, 2, r))
        goto out;
    optional_string(ds, DICOM_TAG_PATIENT_BIRTH_DATE, r->birth_date, sizeof r->birth_date);
    optional_string(ds, DICOM_TAG_PATIENT_SEX, r->sex, sizeof r->sex);
    optional_string(ds, DICOM_TAG_SERIES_DESCRIPTION, r->series_description,
                    sizeof r->series_description);
    optional_string(ds, DICOM_TAG_MANUFACTURER, r->manufacturer, sizeof r->manufacturer);
    optional_string(ds, DICOM_TAG_MANUFACTURER_MODEL_NAME, r->model, sizeof r->model);
    r->slope = 1;
    r->intercept = 0;
    if (dicom_find(ds, DICOM_TAG_RESCALE_SLOPE))
        dicom_get_number(ds, DICOM_TAG_RESCALE_SLOPE, &r->slope, &re);
    if (dicom_find(ds, DICOM_TAG_RESCALE_INTERCEPT))
        dicom_get_number(ds, DICOM_TAG_RESCALE_INTERCEPT, &r->intercept, &re);
    if (dicom_find(ds, DICOM_TAG_INSTANCE_NUMBER) &&
        dicom_get_number(ds, DICOM_TAG_INSTANCE_NUMBER, &inst, &re) == 0)
        r->instance = (long)inst;
    if (dicom_find(ds, DICOM_TAG_MAGNETIC_FIELD_STRENGTH) &&
        dicom_get_number(ds, DICOM_TAG_MAGNETIC_FIELD_STRENGTH, &field, &re) == 0)
        r->field_t = field;
out:
    dicom_file_free(f);
    return 0;
}
