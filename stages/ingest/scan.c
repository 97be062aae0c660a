/* scan.c: the files of a DICOM tree, and what each one's header says (see ingest_internal.h).
 *
 * Every file's header is parsed and its pixel data's extent checked, so a truncated or corrupt
 * file is caught here, before series are assembled, and never takes a slice's place later.
 * Verdicts:
 *   not_dicom                    neither a Part 10 file nor a data set
 *   truncated                    the file ends inside an element
 *   corrupt                      other structural errors
 *   unsupported_transfer_syntax  a syntax the support matrix refuses or does not know
 *   unsupported_transfer_syntax  also JPEG (.50, .51) with more than 8 bits per sample: the
 *                                system libjpeg is 8-bit
 *   not_image                    no PixelData, or colour
 *   missing_attribute            a header field ingest needs is absent or malformed (for an
 *                                enhanced multi-frame image, in any frame: the message names it)
 *
 * A multi-frame image gives one record per frame, its position, orientation, spacing and
 * rescale from the frame's functional groups (dicom_frame_geometry). The file is read whole,
 * because its SHA-256 goes into the tree's hash, but only its header is parsed; the pixels'
 * extent is checked against the file's size without copying them. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/dicom/dicom.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
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
 * Reading and hashing. */

int ingest_read_file(const char *path, ScanFile *f, Err *e)
{
    struct stat st;
    memset(&f->err, 0, sizeof f->err);
    memset(&f->seen, 0, sizeof f->seen);
    int rc = file_read_into(path, &f->data, &f->cap, &f->len, &st, &f->err);
    if (rc == ERR_NOMEM) {
        *e = f->err;
        return rc;
    }
    if (rc) {
        err_prefix(&f->err, "dicom: "); /* as dicom_read_file says it */
        return 0;
    }
    f->seen.bytes = f->len;
    f->seen.dev = (int64_t)st.st_dev;
    f->seen.ino = (int64_t)st.st_ino;
    f->seen.size = (int64_t)st.st_size;
    f->seen.mtime_sec = (int64_t)st.st_mtim.tv_sec;
    f->seen.mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
    return 0;
}

/* Hashes the m files gathered in to[] together. */
static void hash_together(ScanFile *const to[], int m)
{
    /* (zeroed: GCC at -O1, the sanitizer build, cannot see that m entries are set) */
    const void *data[SHA256_MANY_MAX] = {0};
    size_t len[SHA256_MANY_MAX] = {0};
    uint8_t digest[SHA256_MANY_MAX][32];
    for (int j = 0; j < m; j++) {
        data[j] = to[j]->data;
        len[j] = to[j]->len;
    }
    sha256_many(m, data, len, digest);
    for (int j = 0; j < m; j++)
        memcpy(to[j]->seen.sha256, digest[j], sizeof digest[j]);
}

void ingest_hash_files(ScanFile *f, int n)
{
    ScanFile *to[SHA256_MANY_MAX];
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (f[k].err.code)
            continue;
        to[m++] = &f[k];
        if (m == SHA256_MANY_MAX) {
            hash_together(to, m);
            m = 0;
        }
    }
    if (m > 0)
        hash_together(to, m);
}

/* ---------------------------------------------------------------------------------------------
 * One file. */

/* What one file's scan adds: its records, the strings in the rank's table. */
typedef struct Scan {
    RecList *out;
    StrTab *t;
    FileRec base; /* fields every slice of the file shares */
    Err *e;
    int rc; /* ERR_NOMEM only */
} Scan;

static StrRef str(Scan *sc, const char *s)
{
    StrRef ref = 0;
    if (!sc->rc)
        sc->rc = strtab_addz(sc->t, s, &ref, sc->e);
    return ref;
}

static void skip(Scan *sc, const char *verdict, const char *reason)
{
    sc->base.skip = str(sc, verdict);
    sc->base.reason = str(sc, reason);
}

static int push(Scan *sc, const FileRec *r)
{
    RecList *l = sc->out;
    if (sc->rc)
        return sc->rc;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 1024;
        FileRec *v = mem_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return sc->rc = err_set(sc->e, ERR_NOMEM, "out of memory for file records");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *r;
    return 0;
}

/* A required string; missing or malformed gives the missing_attribute verdict. */
static int need_string(Scan *sc, const DicomDataset *ds, uint32_t tag, StrRef *out)
{
    Err e = {0};
    char buf[TEXT_CAP];
    if (dicom_find(ds, tag) && dicom_get_string(ds, tag, buf, sizeof buf, &e) == 0 && buf[0]) {
        *out = str(sc, buf);
        return 1;
    }
    char why[300];
    snprintf(why, sizeof why, "(%04X,%04X) %s is %s", DICOM_GROUP(tag), DICOM_ELEMENT(tag),
             dicom_tag_keyword(tag), dicom_find(ds, tag) ? "malformed or empty" : "absent");
    skip(sc, "missing_attribute", why);
    return 0;
}

static StrRef optional_string(Scan *sc, const DicomDataset *ds, uint32_t tag, size_t cap)
{
    Err e = {0};
    char buf[TEXT_CAP];
    if (cap > sizeof buf)
        cap = sizeof buf;
    if (!dicom_find(ds, tag) || dicom_get_string(ds, tag, buf, cap, &e) != 0)
        return 0;
    return str(sc, buf);
}

/* A frame's geometry: the frame's functional groups, the shared ones, then the data set (so a
 * classic image, which has only the last, goes through the same code). A frame without
 * position, orientation or spacing makes the file missing_attribute, naming the frame. */
static int frame_geometry(Scan *sc, const DicomDataset *ds, uint32_t frame, uint32_t frames,
                          FileRec *r)
{
    DicomFrameGeometry g;
    Err ge = {0};
    char why[600], where[32] = "";
    if (frames > 1)
        snprintf(where, sizeof where, "frame %u: ", frame + 1);
    if (dicom_frame_geometry(ds, frame, &g, &ge)) {
        snprintf(why, sizeof why, "%s", ge.msg);
        skip(sc, "missing_attribute", why);
        return 0;
    }
    const char *absent = !g.has_position      ? "(0020,0032) ImagePositionPatient"
                         : !g.has_orientation ? "(0020,0037) ImageOrientationPatient"
                         : !g.has_spacing     ? "(0028,0030) PixelSpacing"
                                              : NULL;
    if (absent) {
        snprintf(why, sizeof why, "%s%s is absent%s", where, absent,
                 frames > 1 ? " (per-frame and shared functional groups, and the data set)" : "");
        skip(sc, "missing_attribute", why);
        return 0;
    }
    memcpy(r->position, g.position, sizeof r->position);
    memcpy(r->orientation, g.orientation, sizeof r->orientation);
    memcpy(r->spacing, g.spacing, sizeof r->spacing);
    if (g.has_rescale) {
        r->slope = g.rescale_slope;
        r->intercept = g.rescale_intercept;
    }
    return 1;
}

/* The file's transfer syntax cannot give its pixels: refused by the matrix, or JPEG with more
 * than 8 bits per sample, which the system's 8-bit libjpeg cannot decode. Says why in why. */
static int refused_syntax(const DicomFile *f, const DicomImageInfo *info, char *why, size_t cap)
{
    if (!f->ts || !f->ts->supported) {
        snprintf(why, cap, "transfer syntax %s (%s)", f->ts_uid,
                 f->ts ? f->ts->name : "not in the support matrix");
        return 1;
    }
    if (info && f->ts->codec == DICOM_CODEC_JPEG && info->bits_stored > 8) {
        snprintf(why, cap,
                 "transfer syntax %s (%s) with %u-bit samples (BitsStored %u): the system "
                 "libjpeg decodes 8-bit samples only",
                 f->ts_uid, f->ts->name, info->bits_stored, info->bits_stored);
        return 1;
    }
    return 0;
}

int ingest_scan_file(const char *path, uint64_t bytes, const ScanFile *file, StrTab *t,
                     RecList *out, Err *e)
{
    Scan sc = {.out = out, .t = t, .e = e};
    FileRec *b = &sc.base;
    memset(b, 0, sizeof *b);
    const char *slash = strrchr(path, '/');
    if (slash) {
        if (!sc.rc)
            sc.rc = strtab_add(t, path, (size_t)(slash - path), &b->dir, e);
        b->name = str(&sc, slash + 1);
    } else {
        b->name = str(&sc, path);
    }
    b->bytes = bytes;
    b->n_frames = 1;
    b->slope = 1;
    DicomFile *f = NULL;
    Err re = {0};
    /* The header only: the pixels are decoded by the rank that owns the series; here their
     * extent is checked against the file's size, so a truncated file is caught now. */
    DicomReadOptions opt = {.stop_before_pixels = 1, .check_pixel_extent = 1};
    int rc = file->err.code;
    re = file->err;
    if (!rc)
        rc = dicom_read_mem(file->data, file->len, path, &opt, &f, &re);
    if (rc == ERR_NOMEM) {
        *e = re;
        return rc;
    }
    if (rc) {
        const char *verdict = strstr(re.msg, "not a DICOM file") ? "not_dicom"
                              : strstr(re.msg, "cannot")         ? "unreadable"
                              : dicom_error_truncated(&re)       ? "truncated"
                                                                 : "corrupt";
        skip(&sc, verdict, re.msg);
        return push(&sc, b);
    }
    const DicomDataset *ds = f->ds;
    char why[600];
    b->ts_uid = str(&sc, f->ts_uid);
    DicomImageInfo info;
    int have_info = f->pixels_skipped && dicom_image_info(f, &info, &re) == 0;
    if (refused_syntax(f, have_info ? &info : NULL, why, sizeof why)) {
        skip(&sc, "unsupported_transfer_syntax", why);
        goto out;
    }
    if (!f->pixels_skipped) {
        skip(&sc, "not_image", "no (7FE0,0010) PixelData");
        goto out;
    }
    if (!have_info) {
        skip(&sc, "missing_attribute", re.msg);
        goto out;
    }
    if (info.samples_per_pixel != 1) {
        snprintf(why, sizeof why, "colour images (SamplesPerPixel %u, %s) are not MR slices",
                 info.samples_per_pixel, info.photometric);
        skip(&sc, "not_image", why);
        goto out;
    }
    b->rows = info.rows;
    b->columns = info.columns;
    b->n_frames = info.frames;
    double inst = 0, field = 0;
    if (!need_string(&sc, ds, DICOM_TAG_PATIENT_ID, &b->patient_id) ||
        !need_string(&sc, ds, DICOM_TAG_STUDY_INSTANCE_UID, &b->study_uid) ||
        !need_string(&sc, ds, DICOM_TAG_SERIES_INSTANCE_UID, &b->series_uid) ||
        !need_string(&sc, ds, DICOM_TAG_SOP_INSTANCE_UID, &b->sop_uid) ||
        !need_string(&sc, ds, DICOM_TAG_STUDY_DATE, &b->study_date))
        goto out;
    b->birth_date = optional_string(&sc, ds, DICOM_TAG_PATIENT_BIRTH_DATE, 9);
    b->sex = optional_string(&sc, ds, DICOM_TAG_PATIENT_SEX, 3);
    b->series_description = optional_string(&sc, ds, DICOM_TAG_SERIES_DESCRIPTION, TEXT_CAP);
    b->manufacturer = optional_string(&sc, ds, DICOM_TAG_MANUFACTURER, TEXT_CAP);
    b->model = optional_string(&sc, ds, DICOM_TAG_MANUFACTURER_MODEL_NAME, TEXT_CAP);
    if (dicom_find(ds, DICOM_TAG_RESCALE_SLOPE))
        dicom_get_number(ds, DICOM_TAG_RESCALE_SLOPE, &b->slope, &re);
    if (dicom_find(ds, DICOM_TAG_RESCALE_INTERCEPT))
        dicom_get_number(ds, DICOM_TAG_RESCALE_INTERCEPT, &b->intercept, &re);
    if (dicom_find(ds, DICOM_TAG_INSTANCE_NUMBER) &&
        dicom_get_number(ds, DICOM_TAG_INSTANCE_NUMBER, &inst, &re) == 0 && inst >= INT32_MIN &&
        inst <= INT32_MAX)
        b->instance = (int32_t)inst;
    if (dicom_find(ds, DICOM_TAG_MAGNETIC_FIELD_STRENGTH) &&
        dicom_get_number(ds, DICOM_TAG_MAGNETIC_FIELD_STRENGTH, &field, &re) == 0)
        b->field_t = field;
    /* One record per frame; the file is skipped whole when any frame lacks its geometry. */
    int first = out->n;
    for (uint32_t k = 0; k < info.frames && !sc.rc; k++) {
        FileRec r = *b;
        r.frame = k;
        if (!frame_geometry(&sc, ds, k, info.frames, &r)) {
            out->n = first;
            break;
        }
        push(&sc, &r);
    }
out:
    if (b->skip && !sc.rc)
        push(&sc, b);
    dicom_file_free(f);
    return sc.rc;
}
