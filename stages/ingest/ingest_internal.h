/* ingest_internal.h: what the files of stages/ingest share. Not for other stages.
 *
 * The flow (ingest.c):
 *   1. rank 0 lists the DICOM tree; files are shared out by size; each rank reads its files
 *      whole, hashes them (the tree's SHA-256 for cohort.h5 and the manifest comes from these
 *      reads: no second pass over the tree), parses their headers and checks their pixel
 *      data's extent (so truncation is caught here) into FileRecs, one per slice (a
 *      multi-frame file gives one per frame): header fields, or a skip verdict;
 *   2. the records and their strings are gathered to every rank, which all assemble the same
 *      series (series.c), patients and studies (deid.c) and join the CSVs (tables.c): every
 *      rank knows every row count and offset without asking;
 *   3. series are shared out by slice count; each rank reads its series' files again and
 *      decodes them, normalises and resamples training slices, keeps
 *      vessel series at native resolution, and all ranks write cohort.h5 collectively (h5.c);
 *      rank 0 writes the report. */
#ifndef ONFH_INGEST_INTERNAL_H
#define ONFH_INGEST_INTERNAL_H

#include <stdint.h>

#include "lib/util/strbuf.h"
#include "pipeline/manifest.h"
#include "pipeline/session.h"
#include "stages/ingest/series.h"

enum { ROLE_OTHER = 0, ROLE_TRAINING = 1, ROLE_VESSEL = 2 };

typedef struct Patient {
    char id[TEXT_CAP];  /* PatientID: never written anywhere */
    char pseudonym[17]; /* first 16 hex digits of HMAC-SHA-256(site key, PatientID) */
    char sex[3];
    double age_years; /* at the first study; NaN when the birth date is missing */
    char first_date[9];
    int n_studies;
} Patient;

typedef struct Study {
    int patient;
    char uid[UID_CAP];
    char date[9];
    int day;   /* days from the patient's first study */
    int visit; /* 1-based order of the patient's studies by date */
} Study;

typedef struct SeriesInfo {
    int patient;
    int study;
    int role;
    int64_t first_slice; /* index of its first training slice in /slices, -1 if none */
    int train;           /* 1: its slices are training slices */
    int native;          /* index of its /native dataset, -1 if none */
    int owner;           /* rank that decodes and writes it */
} SeriesInfo;

typedef struct Clinical {
    int patient;
    char hip[2];
    int visit;
    int day;
    char treatment[16];
    int treatment_day; /* -1 when none */
    int treated_before_visit;
    char outcome[16];
} Clinical;

typedef struct RecList {
    FileRec *v;
    int n;
    int cap;
} RecList;

typedef struct Ingest {
    Session *s;
    char dicom_dir[4096];
    FileRec *recs; /* one per slice (frames of a multi-frame file are consecutive), in path order */
    int n_recs;
    int n_files; /* files: records with frame 0 */
    StrTab strs; /* the records' strings */
    Series *series;
    int n_series;
    SeriesInfo *info;
    Patient *patients;
    int n_patients;
    Study *studies;
    int n_studies;
    int64_t n_slices; /* training slices */
    int n_native;
    int grid;
    int8_t *labels; /* per training slice: 1 lesion, 0 normal, -1 unlabelled */
    Clinical *clinical;
    int n_clinical;
    StrBuf report;  /* CSV rows: path,verdict,reason (rank 0's view, plus rows ranks add) */
    int n_skipped;  /* files skipped */
    int n_problems; /* CSV rows refused, unknown labels, series flagged */
    uint8_t key[64];
    size_t key_len;
    char dicom_sha256[65]; /* the tree's hash from the scan's reads; "" when a file was unread */
} Ingest;

/* scan.c */
int ingest_list_files(const char *dir, char ***paths, uint64_t **sizes, int *n, Err *e);

/* One file as the scan reads it: whole, into a buffer kept from file to file, because the
 * manifest needs every file's SHA-256 and hashing the bytes already read spares a second read
 * of the tree. */
typedef struct ScanFile {
    uint8_t *data;
    size_t len;
    size_t cap;
    Err err;               /* the read failed: the file's verdict comes from this message */
    ManifestFileSeen seen; /* its stat before the read, and its hash (ingest_hash_files) */
} ScanFile;

/* Reads path whole into f. A file that cannot be read is a verdict (f->err), not an error:
 * only ERR_NOMEM is. */
int ingest_read_file(const char *path, ScanFile *f, Err *e);
/* The SHA-256 of each of n files read (f[k].err clear), SHA256_MANY_MAX at a time
 * (sha256_many); a file whose read failed gets none. */
void ingest_hash_files(ScanFile *f, int n);
/* Parses the header of a file read by ingest_read_file into records appended to out (one per
 * frame; one with skip and reason set when the file cannot be used), strings into t. Bad input
 * is a verdict, not an error: only ERR_NOMEM is. */
int ingest_scan_file(const char *path, uint64_t bytes, const ScanFile *f, StrTab *t, RecList *out,
                     Err *e);

/* deid.c */
int ingest_site_key(Ingest *in, Err *e);
int ingest_patients(Ingest *in, Err *e);
int ingest_patient_index(const Ingest *in, const char *patient_id); /* -1: unknown */
int ingest_study_index(const Ingest *in, int patient, const char *study_uid);
/* A path as reports show it: PatientIDs replaced by pseudonyms, 8-digit dates by "date". */
void ingest_safe_path(const Ingest *in, const char *path, char *out, size_t cap);
/* A record's string field. */
#define REC_STR(in, r, field) strtab_get(&(in)->strs, (r)->field)

/* tables.c: join labels.csv and clinical.csv. Rows that cannot be used (malformed, unknown
 * SOPInstanceUID or patient) are reported with file:line and skipped; a file that cannot be
 * read at all, or lacks a column, is an error. */
int ingest_labels(Ingest *in, const char *path, Err *e);
int ingest_clinical(Ingest *in, const char *path, Err *e);
/* Appends a report row (path, verdict, reason), CSV-quoted. */
void ingest_report_row(Ingest *in, const char *path, const char *verdict, const char *reason);

/* h5.c: collective; inputs_hash goes into the root attributes. */
int ingest_write_h5(Ingest *in, const char *path, const char *inputs_hash, Err *e);

#endif
