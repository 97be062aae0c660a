/* ingest.c: the `ingest` stage: a DICOM tree plus labels.csv and clinical.csv into cohort.h5,
 * with ingest_report.csv and .json listing every file skipped, row refused and series flagged
 * (the flow is in ingest_internal.h). cohort.h5 is written as cohort.h5.partial and renamed when
 * complete; a run with skips exits with EXIT_PARTIAL. */
#include "stages/ingest/ingest.h"

#include <mpi.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "pipeline/manifest.h"
#include "pipeline/runtime.h"
#include "stages/ingest/ingest_internal.h"

/* A config path: absolute, or relative to the run directory. NULL stays NULL. */
static const char *run_path(const Session *s, const char *p, char *out, size_t cap)
{
    if (!p)
        return NULL;
    if (p[0] == '/')
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%s/%s", s->run.path, p);
    return out;
}

/* A path as the report shows it: relative to the run directory when inside it, identifiers
 * in folder names replaced (ingest_safe_path). */
static void safe_report_path(const Ingest *in, const char *path, char *out, size_t cap)
{
    const char *run = in->s->run.path;
    size_t n = strlen(run);
    if (!strncmp(path, run, n) && path[n] == '/')
        path += n + 1;
    ingest_safe_path(in, path, out, cap);
}

/* Rank 0 lists the tree; every rank gets "size\tpath\n" lines in path order. */
static int list_everywhere(const char *dir, char **text, size_t *len, Err *e)
{
    StrBuf b = STRBUF_INIT;
    int rc = 0;
    *text = NULL;
    *len = 0;
    if (rt_rank() == 0) {
        char **paths = NULL;
        uint64_t *sizes = NULL;
        int n = 0;
        rc = ingest_list_files(dir, &paths, &sizes, &n, e);
        for (int i = 0; i < n; i++) {
            if (!rc)
                strbuf_printf(&b, "%llu\t%s\n", (unsigned long long)sizes[i], paths[i]);
            mem_free(paths[i]);
        }
        mem_free(paths);
        mem_free(sizes);
    }
    if (rt_agree(e)) {
        strbuf_free(&b);
        return e->code;
    }
    void *all;
    rc = rt_allgather_bytes(b.s ? b.s : "", b.len, &all, len, e);
    strbuf_free(&b);
    *text = all;
    return rc;
}

/* This rank's files: a contiguous block holding about 1/size of the bytes. */
static void share_by_bytes(const uint64_t *sizes, int n, int *begin, int *end)
{
    uint64_t total = 0, acc = 0;
    for (int i = 0; i < n; i++)
        total += sizes[i] + 1;
    *begin = *end = 0;
    int r = rt_rank(), size = rt_size();
    for (int i = 0; i < n; i++) {
        /* file i goes to the rank whose byte range holds its middle */
        uint64_t mid = acc + (sizes[i] + 1) / 2;
        int owner = (int)((__uint128_t)mid * size / (total ? total : 1));
        if (owner < r)
            *begin = i + 1;
        if (owner <= r)
            *end = i + 1;
        acc += sizes[i] + 1;
    }
    if (*end < *begin)
        *end = *begin;
}

/* Collective: the tree's hash from the hashes the scan made (each rank's, of its contiguous
 * share of paths[0..n), in path order), made and remembered by rank 0 (manifest_remember_tree),
 * in->dicom_sha256 on every rank. */
static int remember_tree(Ingest *in, char **paths, int n, const ManifestFileSeen *seen,
                         size_t n_seen, Err *e)
{
    char *all = NULL;
    size_t len = 0;
    int rc = rt_gather_text((const char *)seen, n_seen * sizeof *seen, &all, &len, e);
    if (!rc && rt_rank() == 0) {
        size_t dir_len = strlen(in->dicom_dir);
        const char **rel = mem_calloc((size_t)(n ? n : 1), sizeof *rel);
        if (!rel)
            rc = err_set(e, ERR_NOMEM, "out of memory for the tree's hash");
        for (int i = 0; !rc && i < n; i++) {
            if (strncmp(paths[i], in->dicom_dir, dir_len) || paths[i][dir_len] != '/')
                rc = err_set(e, ERR_INTERNAL, "%s: listed outside %s", paths[i], in->dicom_dir);
            else
                rel[i] = paths[i] + dir_len + 1;
        }
        if (!rc && len != (size_t)n * sizeof *seen)
            rc = err_set(e, ERR_INTERNAL, "ingest: %zu bytes of file hashes for %d files", len, n);
        uint64_t bytes;
        if (!rc)
            manifest_remember_tree(in->dicom_dir, rel, (const ManifestFileSeen *)all, (size_t)n,
                                   in->dicom_sha256, &bytes);
        mem_free(rel);
    }
    mem_free(all);
    if (rt_agree(e))
        return e->code;
    if (rt_mpi_active() && rt_size() > 1)
        MPI_Bcast(in->dicom_sha256, sizeof in->dicom_sha256, MPI_CHAR, 0, MPI_COMM_WORLD);
    return 0;
}

static int scan_everywhere(Ingest *in, Err *e)
{
    char *list;
    size_t len;
    int rc = list_everywhere(in->dicom_dir, &list, &len, e);
    if (rc)
        return rc;
    int n = 0;
    for (size_t k = 0; k < len; k++)
        n += list[k] == '\n';
    char **paths = mem_calloc((size_t)(n ? n : 1), sizeof *paths);
    uint64_t *sizes = mem_calloc((size_t)(n ? n : 1), sizeof *sizes);
    rc = paths && sizes ? 0 : err_set(e, ERR_NOMEM, "out of memory listing files");
    char *p = list;
    for (int i = 0; !rc && i < n; i++) {
        char *tab = strchr(p, '\t'), *nl = strchr(p, '\n');
        *tab = *nl = '\0';
        sizes[i] = strtoull(p, NULL, 10);
        paths[i] = tab + 1;
        p = nl + 1;
    }
    int begin = 0, end = 0;
    if (!rc)
        share_by_bytes(sizes, n, &begin, &end);
    RecList mine = {0};
    StrTab t = {0};
    if (!rc)
        rc = strtab_init(&t, e);
    ManifestFileSeen *seen = mem_calloc((size_t)(end > begin ? end - begin : 1), sizeof *seen);
    if (!rc && !seen)
        rc = err_set(e, ERR_NOMEM, "out of memory for the files' hashes");
    /* Files SHA256_MANY_MAX at a time: all read, hashed together (sha256_many), then scanned
     * in path order. */
    ScanFile files[SHA256_MANY_MAX] = {0};
    int all_read = 1;
    Progress bar;
    rt_progress_start(&bar, "ingest: headers of rank 0", (uint64_t)(end - begin));
    for (int i = begin; !rc && i < end; i += SHA256_MANY_MAX) {
        int m = end - i < SHA256_MANY_MAX ? end - i : SHA256_MANY_MAX;
        for (int k = 0; !rc && k < m; k++)
            rc = ingest_read_file(paths[i + k], &files[k], e);
        if (rc)
            break;
        ingest_hash_files(files, m);
        for (int k = 0; !rc && k < m; k++) {
            all_read &= !files[k].err.code;
            seen[i + k - begin] = files[k].seen;
            rc = ingest_scan_file(paths[i + k], sizes[i + k], &files[k], &t, &mine, e);
        }
        rt_progress_update(&bar, (uint64_t)(i + m - begin));
    }
    rt_progress_finish(&bar);
    for (int k = 0; k < SHA256_MANY_MAX; k++)
        mem_free(files[k].data);
    /* (a file that could not be read has no hash: the tree is then hashed as any input is) */
    int hashed = rt_all_ok(all_read);
    if (rt_agree(e) || (hashed && remember_tree(in, paths, n, seen, (size_t)(end - begin), e))) {
        mem_free(seen);
        mem_free(paths);
        mem_free(sizes);
        mem_free(list);
        mem_free(mine.v);
        strtab_free(&t);
        return e->code;
    }
    mem_free(seen);
    mem_free(paths);
    mem_free(sizes);
    mem_free(list);
    /* Every rank gets every record, in path order (shares are contiguous and in rank order),
     * and every rank's strings, one table after the other: a record's offsets move by where
     * its rank's table starts. */
    uint64_t base = 0, my_len = t.len;
    if (rt_mpi_active() && rt_size() > 1)
        MPI_Exscan(&my_len, &base, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (rt_rank() == 0)
        base = 0;
    if (base + t.len > UINT32_MAX)
        rc = err_set(e, ERR_NOMEM, "ingest: the strings of the file records pass 4 GiB");
    static const size_t refs[] = {
        offsetof(FileRec, dir),          offsetof(FileRec, name),
        offsetof(FileRec, skip),         offsetof(FileRec, reason),
        offsetof(FileRec, patient_id),   offsetof(FileRec, birth_date),
        offsetof(FileRec, sex),          offsetof(FileRec, study_uid),
        offsetof(FileRec, series_uid),   offsetof(FileRec, sop_uid),
        offsetof(FileRec, study_date),   offsetof(FileRec, series_description),
        offsetof(FileRec, manufacturer), offsetof(FileRec, model),
        offsetof(FileRec, ts_uid)};
    for (int i = 0; !rc && i < mine.n; i++)
        for (size_t k = 0; k < sizeof refs / sizeof *refs; k++) {
            StrRef *f = (StrRef *)((char *)&mine.v[i] + refs[k]);
            *f += *f ? (StrRef)base : 0;
        }
    if (rt_agree(e)) {
        mem_free(mine.v);
        strtab_free(&t);
        return e->code;
    }
    void *all = NULL, *strs = NULL;
    size_t all_len = 0, strs_len = 0;
    rc = rt_allgather_bytes(mine.v, (size_t)mine.n * sizeof *mine.v, &all, &all_len, e);
    mem_free(mine.v);
    if (!rc)
        rc = rt_allgather_bytes(t.s, t.len, &strs, &strs_len, e);
    strtab_free(&t);
    if (rc) {
        mem_free(all);
        return rc;
    }
    in->recs = all;
    in->n_recs = (int)(all_len / sizeof(FileRec));
    strtab_adopt(&in->strs, strs, strs_len);
    for (int i = 0; i < in->n_recs; i++)
        in->n_files += in->recs[i].frame == 0;
    return 0;
}

/* Roles, training flags, slice and voxel offsets, owners: the same on every rank. */
static int plan_series(Ingest *in, Err *e)
{
    const Config *cfg = &in->s->cfg;
    regex_t train_re, vessel_re;
    if (regcomp(&train_re, config_str(cfg, "ingest.training_series"),
                REG_EXTENDED | REG_ICASE | REG_NOSUB))
        return err_set(e, ERR_CONFIG, "ingest.training_series: not an extended regular expression");
    if (regcomp(&vessel_re, config_str(cfg, "ingest.vessel_series"),
                REG_EXTENDED | REG_ICASE | REG_NOSUB)) {
        regfree(&train_re);
        return err_set(e, ERR_CONFIG, "ingest.vessel_series: not an extended regular expression");
    }
    in->info = mem_calloc((size_t)(in->n_series ? in->n_series : 1), sizeof *in->info);
    if (!in->info) {
        regfree(&train_re);
        regfree(&vessel_re);
        return err_set(e, ERR_NOMEM, "out of memory planning series");
    }
    int64_t slices = 0, voxels = 0, files = 0;
    for (int s = 0; s < in->n_series; s++) {
        const FileRec *r = &in->recs[in->series[s].files[0]];
        SeriesInfo *si = &in->info[s];
        const char *desc = REC_STR(in, r, series_description);
        si->patient = ingest_patient_index(in, REC_STR(in, r, patient_id));
        si->study = ingest_study_index(in, si->patient, REC_STR(in, r, study_uid));
        si->role = !regexec(&vessel_re, desc, 0, NULL, 0)  ? ROLE_VESSEL
                   : !regexec(&train_re, desc, 0, NULL, 0) ? ROLE_TRAINING
                                                           : ROLE_OTHER;
        si->train = si->role == ROLE_TRAINING && !(in->series[s].qc & QC_EXCLUDE);
        si->first_slice = si->train ? slices : -1;
        slices += si->train ? in->series[s].n : 0;
        si->native = si->role == ROLE_VESSEL ? voxels : -1;
        voxels += si->role == ROLE_VESSEL ? (int64_t)in->series[s].n * r->rows * r->columns : 0;
        files += in->series[s].n;
    }
    in->n_slices = slices;
    /* Owners: contiguous blocks of series with about equal file counts. */
    int64_t acc = 0;
    for (int s = 0; s < in->n_series; s++) {
        int64_t mid = acc + in->series[s].n / 2;
        in->info[s].owner = files ? (int)(mid * rt_size() / files) : 0;
        acc += in->series[s].n;
    }
    regfree(&train_re);
    regfree(&vessel_re);
    return 0;
}

/* 1 when record i is skipped and is the first skipped record of its file (the frames of a
 * multi-frame file are consecutive records): files are reported and counted once. */
static int first_skip_of_file(const Ingest *in, int i)
{
    const FileRec *r = &in->recs[i];
    return r->skip && !(i > 0 && series_same_file(r, r - 1) && r[-1].skip);
}

/* Report rows for skipped files and flagged series (rank 0: every rank has the same view). */
static void report_skips(Ingest *in)
{
    for (int i = 0; i < in->n_recs; i++) {
        const FileRec *r = &in->recs[i];
        if (!first_skip_of_file(in, i))
            continue;
        in->n_skipped++;
        if (rt_rank() != 0)
            continue;
        char safe[4200], path[4200];
        series_rec_path(&in->strs, r, path, sizeof path);
        safe_report_path(in, path, safe, sizeof safe);
        /* Reader messages name the file, and a duplicate's names the other copy: the report
         * shows neither as written (PatientIDs and dates in folder names are identifiers). */
        char reason[600], cleaned[4800];
        const char *msg = REC_STR(in, r, reason), *colon = strstr(msg, path);
        if (colon)
            msg = colon + strlen(path);
        snprintf(reason, sizeof reason, "%s", msg[0] == ':' ? msg + 2 : msg);
        const char *dir = strstr(reason, in->dicom_dir);
        if (dir) {
            char other[4200];
            safe_report_path(in, dir, other, sizeof other);
            snprintf(cleaned, sizeof cleaned, "%.*s%s", (int)(dir - reason), reason, other);
        } else {
            snprintf(cleaned, sizeof cleaned, "%s", reason);
        }
        char verdict[64];
        snprintf(verdict, sizeof verdict, "skip:%s", REC_STR(in, r, skip));
        ingest_report_row(in, safe, verdict, cleaned);
    }
    for (int s = 0; s < in->n_series; s++) {
        if (!(in->series[s].qc & ~QC_SINGLE_SLICE))
            continue;
        in->n_problems++;
        if (rt_rank() != 0)
            continue;
        char flags[128], safe[4200], dir[4200], why[256];
        series_qc_text(in->series[s].qc, flags, sizeof flags);
        series_rec_path(&in->strs, &in->recs[in->series[s].files[0]], dir, sizeof dir);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[1] = '\0';
        safe_report_path(in, dir, safe, sizeof safe);
        snprintf(why, sizeof why, "series %d: %d slices, %s%s", s, in->series[s].n, flags,
                 in->info[s].role == ROLE_TRAINING ? "; left out of the training slices" : "");
        char verdict[160];
        snprintf(verdict, sizeof verdict, "qc:%s", flags);
        ingest_report_row(in, safe, verdict, why);
    }
}

static int write_reports(Ingest *in, const char *csv_path, const char *json_path, Err *e)
{
    char *rows;
    size_t len;
    int rc = rt_gather_text(in->report.s ? in->report.s : "", in->report.len, &rows, &len, e);
    if (rc || rt_rank() != 0)
        return rc;
    StrBuf b = STRBUF_INIT;
    strbuf_puts(&b, "path,verdict,reason\n");
    strbuf_append(&b, rows, len);
    mem_free(rows);
    char *text;
    size_t text_len;
    if ((rc = strbuf_finish(&b, &text, &text_len, e)))
        return rc;
    rc = file_write_atomic(csv_path, text, text_len, e);
    mem_free(text);
    if (rc)
        return rc;
    int64_t labelled = 0, lesion = 0;
    for (int64_t k = 0; k < in->n_slices; k++) {
        labelled += in->labels[k] >= 0;
        lesion += in->labels[k] == 1;
    }
    int flagged = 0, training_series = 0, vessel_series = 0;
    for (int s = 0; s < in->n_series; s++) {
        flagged += (in->series[s].qc & ~QC_SINGLE_SLICE) != 0;
        training_series += in->info[s].train;
        vessel_series += in->info[s].role == ROLE_VESSEL;
    }
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "files");
    json_int(&w, in->n_files);
    json_key(&w, "files_ingested");
    json_int(&w, in->n_files - in->n_skipped);
    int multiframe = 0, frames = 0;
    for (int i = 0; i < in->n_recs; i++)
        if (!in->recs[i].skip && in->recs[i].n_frames > 1) {
            multiframe += in->recs[i].frame == 0;
            frames++;
        }
    json_key(&w, "multiframe_files");
    json_int(&w, multiframe);
    json_key(&w, "multiframe_slices");
    json_int(&w, frames);
    json_key(&w, "files_skipped");
    json_object_begin(&w);
    static const char *const verdicts[] = {
        "not_dicom", "truncated",         "corrupt",  "unreadable", "unsupported_transfer_syntax",
        "not_image", "missing_attribute", "duplicate"};
    for (size_t v = 0; v < sizeof verdicts / sizeof *verdicts; v++) {
        int count = 0;
        for (int i = 0; i < in->n_recs; i++)
            count +=
                first_skip_of_file(in, i) && !strcmp(REC_STR(in, &in->recs[i], skip), verdicts[v]);
        json_key(&w, verdicts[v]);
        json_int(&w, count);
    }
    json_object_end(&w);
    json_key(&w, "patients");
    json_int(&w, in->n_patients);
    json_key(&w, "studies");
    json_int(&w, in->n_studies);
    json_key(&w, "series");
    json_int(&w, in->n_series);
    json_key(&w, "series_flagged");
    json_int(&w, flagged);
    json_key(&w, "training_series");
    json_int(&w, training_series);
    json_key(&w, "vessel_series");
    json_int(&w, vessel_series);
    json_key(&w, "training_slices");
    json_int(&w, in->n_slices);
    json_key(&w, "labelled");
    json_int(&w, labelled);
    json_key(&w, "lesion");
    json_int(&w, lesion);
    json_key(&w, "normal");
    json_int(&w, labelled - lesion);
    json_key(&w, "clinical_rows");
    json_int(&w, in->n_clinical);
    json_key(&w, "rows_refused_or_series_flagged");
    json_int(&w, in->n_problems);
    json_object_end(&w);
    if ((rc = json_writer_finish(&w, &text, &text_len, e)))
        return rc;
    rc = file_write_atomic(json_path, text, text_len, e);
    mem_free(text);
    return rc;
}

/* SHA-256 over the inputs' hashes (every rank gets it: it is an attribute). The DICOM tree's
 * comes from the scan (remember_tree), when every file could be read; otherwise, and for the
 * CSVs, from manifest_hash_path_shared. Rank 0 remembers them for the manifest entry. */
static int inputs_hash(const Ingest *in, const char *const *paths, int n, char hex[65], Err *e)
{
    Sha256 s;
    sha256_init(&s);
    for (int i = 0; i < n; i++) {
        char h[65];
        uint64_t bytes, files;
        if (!paths[i])
            continue;
        if (paths[i] == in->dicom_dir && in->dicom_sha256[0]) {
            sha256_update(&s, in->dicom_sha256, 64);
            continue;
        }
        int rc = manifest_hash_path_shared(paths[i], h, &bytes, &files, e);
        if (rc)
            return rc;
        sha256_update(&s, h, 64);
    }
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_to_hex(d, hex);
    return 0;
}

static void free_ingest(Ingest *in)
{
    series_free(in->series, in->n_series);
    mem_free(in->recs);
    strtab_free(&in->strs);
    mem_free(in->info);
    mem_free(in->patients);
    mem_free(in->studies);
    mem_free(in->labels);
    mem_free(in->clinical);
    strbuf_free(&in->report);
    memset(in->key, 0, sizeof in->key);
}

int ingest_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    Ingest in = {.s = s};
    const Config *cfg = &s->cfg;
    char labels_buf[4200], clinical_buf[4200], partial[4200], final[4200], csv[4200], json[4200];
    run_path(s, config_str(cfg, "ingest.dicom_dir"), in.dicom_dir, sizeof in.dicom_dir);
    const char *labels =
        run_path(s, config_str(cfg, "ingest.labels_csv"), labels_buf, sizeof labels_buf);
    const char *clinical =
        run_path(s, config_str(cfg, "ingest.clinical_csv"), clinical_buf, sizeof clinical_buf);
    in.grid = (int)config_int(cfg, "ingest.grid_size");
    int rc = ingest_site_key(&in, e);
    if (!rc && !dir_exists(in.dicom_dir))
        rc = err_set(e, ERR_CONFIG, "ingest.dicom_dir: %s is not a directory", in.dicom_dir);
    if (!rc && labels && !file_exists(labels))
        rc = err_set(e, ERR_CONFIG, "ingest.labels_csv: %s does not exist (null: no labels)",
                     labels);
    if (!rc && clinical && !file_exists(clinical))
        rc = err_set(e, ERR_CONFIG,
                     "ingest.clinical_csv: %s does not exist (null: no clinical data)", clinical);
    if (rt_agree(e))
        goto out;
    if ((rc = scan_everywhere(&in, e)))
        goto out;
    rc = series_assemble(in.recs, in.n_recs, &in.strs, &in.series, &in.n_series, e);
    if (!rc)
        rc = ingest_patients(&in, e);
    if (!rc)
        rc = plan_series(&in, e);
    if (!rc)
        rc = ingest_labels(&in, labels, e);
    if (!rc)
        rc = ingest_clinical(&in, clinical, e);
    if (rt_agree(e))
        goto out;
    report_skips(&in);
    const char *inputs[3] = {in.dicom_dir, labels, clinical};
    char hash[65];
    if ((rc = inputs_hash(&in, inputs, 3, hash, e)))
        goto out;
    snprintf(partial, sizeof partial, "%s/cohort.h5.partial", s->run.path);
    snprintf(final, sizeof final, "%s/cohort.h5", s->run.path);
    rc = ingest_write_h5(&in, partial, hash, e);
    if (rt_agree(e))
        goto out;
    if (rt_rank() == 0 && rename(partial, final) != 0)
        rc = err_set(e, ERR_IO, "%s: cannot rename to %s", partial, final);
    if (rt_agree(e))
        goto out;
    snprintf(csv, sizeof csv, "%s/ingest_report.csv", s->run.path);
    snprintf(json, sizeof json, "%s/ingest_report.json", s->run.path);
    rc = write_reports(&in, csv, json, e);
    if (rt_agree(e))
        goto out;
    s->stage_partial = in.n_skipped > 0 || in.n_problems > 0;
    /* Inputs relative to the run directory when inside it, as the manifest prefers. */
    const char *rel[3];
    int n_in = 0;
    for (int k = 0; k < 3; k++)
        if (inputs[k])
            rel[n_in++] = !strncmp(inputs[k], s->run.path, strlen(s->run.path))
                              ? inputs[k] + strlen(s->run.path) + 1
                              : inputs[k];
    const char *outputs[] = {"cohort.h5", "ingest_report.csv", "ingest_report.json"};
    rc = session_record_stage(s, "ingest", rel, n_in, outputs, 3, MPI_Wtime() - t0, e);
    if (!rc)
        log_info("ingest: %d files (%d skipped), %d patients, %d series, %lld training slices, "
                 "%d problems; see ingest_report.csv",
                 in.n_files, in.n_skipped, in.n_patients, in.n_series, (long long)in.n_slices,
                 in.n_problems);
    rt_agree(e);
out:
    free_ingest(&in);
    return e->code;
}
