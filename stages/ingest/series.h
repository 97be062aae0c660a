/* series.h: from the headers of many DICOM files to ordered, checked series.
 *
 * A FileRec is what ingest needs from one slice: a single-frame file, or one frame of an
 * enhanced multi-frame file (its geometry and rescale from the frame's functional groups), or
 * why the file was skipped (then one record, frame 0, stands for the whole file). Text lives in
 * a string table (StrTab) and records hold offsets into it, so a record is about 200 bytes and
 * the strings that repeat (folders, patient, study and series UIDs, descriptions) are kept once
 * per rank that scanned them.
 *
 * series_assemble groups the readable records by SeriesInstanceUID, drops exact duplicates
 * (same SOPInstanceUID and frame: the first path in byte order is kept, the others are skipped
 * as duplicates), orders slices by ImagePositionPatient projected on the slice normal (row
 * cosines x column cosines), takes the slice spacing from those positions (never from
 * SliceThickness), and raises QC flags:
 *   QC_UNEVEN_SPACING     gaps between neighbours differ by more than 1% (+1 micron)
 *   QC_MISSING_INSTANCE   a gap near a whole multiple (>= 1.5x) of the typical one, or
 *                         InstanceNumbers with a hole: a slice is missing
 *   QC_MIXED_ORIENTATION  the slices' orientations are not all parallel
 *   QC_TILT               positions do not move along the normal (gantry tilt or shear)
 *   QC_MIXED_GEOMETRY     rows, columns or pixel spacing differ within the series
 *   QC_SINGLE_SLICE       one slice only: no spacing
 * A series with any flag but QC_SINGLE_SLICE is kept in cohort.h5 with its flags and left out of
 * the training slices. The result does not depend on the order the records come in. */
#ifndef ONFH_INGEST_SERIES_H
#define ONFH_INGEST_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

#define UID_CAP  65
#define TEXT_CAP 65

/* Offset of a NUL-terminated string in a StrTab; 0 is "". */
typedef uint32_t StrRef;

typedef struct StrTab {
    char *s;         /* s[0] is '\0', so StrRef 0 is "" */
    size_t len;      /* bytes used */
    size_t cap;      /* bytes allocated */
    uint32_t *slots; /* open addressing: StrRef + 1 of interned strings, 0 empty; NULL: append */
    size_t n_slots;  /* a power of two */
    size_t n_used;
} StrTab;

int strtab_init(StrTab *t, Err *e);
/* The ref of s (its first n bytes): the existing copy when t interns (after strtab_init), else
 * a new one. A table past 4 GiB is ERR_NOMEM. */
int strtab_add(StrTab *t, const char *s, size_t n, StrRef *ref, Err *e);
int strtab_addz(StrTab *t, const char *s, StrRef *ref, Err *e);
/* Takes over bytes (len of them, starting with a NUL; mem_alloc'd) as an append-only table. */
void strtab_adopt(StrTab *t, char *bytes, size_t len);
void strtab_free(StrTab *t);
static inline const char *strtab_get(const StrTab *t, StrRef r)
{
    return t->s + r;
}

typedef struct FileRec {
    StrRef dir;    /* the file's folder; path = dir "/" name */
    StrRef name;   /* the file's name */
    StrRef skip;   /* "" when readable, else the verdict: "not_dicom", "truncated", ... */
    StrRef reason; /* why, in words (the reader's message) */
    StrRef patient_id;
    StrRef birth_date;
    StrRef sex;
    StrRef study_uid;
    StrRef series_uid;
    StrRef sop_uid;
    StrRef study_date;
    StrRef series_description;
    StrRef manufacturer;
    StrRef model;
    StrRef ts_uid;
    uint32_t frame;    /* 0-based frame of its file */
    uint32_t n_frames; /* NumberOfFrames of its file (1: a classic single-frame image) */
    uint32_t rows;
    uint32_t columns;
    int32_t instance;
    uint64_t bytes; /* size of its file */
    double field_t;
    double position[3];
    double orientation[6];
    double spacing[2]; /* row spacing, column spacing */
    double slope;
    double intercept;
} FileRec;

/* The path of r's file into out (cap bytes). */
void series_rec_path(const StrTab *t, const FileRec *r, char *out, size_t cap);
/* strcmp of two records' paths, without building them. */
int series_path_cmp(const StrTab *t, const FileRec *a, const FileRec *b);
/* 1 when a and b are slices of the same file. */
static inline int series_same_file(const FileRec *a, const FileRec *b)
{
    return a->dir == b->dir && a->name == b->name;
}

enum {
    QC_UNEVEN_SPACING = 1u << 0,
    QC_MISSING_INSTANCE = 1u << 1,
    QC_MIXED_ORIENTATION = 1u << 2,
    QC_TILT = 1u << 3,
    QC_MIXED_GEOMETRY = 1u << 4,
    QC_SINGLE_SLICE = 1u << 5,
};
/* Flags that keep a series out of training. */
#define QC_EXCLUDE                                                                                 \
    (QC_UNEVEN_SPACING | QC_MISSING_INSTANCE | QC_MIXED_ORIENTATION | QC_TILT | QC_MIXED_GEOMETRY)

typedef struct Series {
    int *files; /* indices into the records, in slice order */
    int n;
    uint32_t qc;
    double normal[3];
    double spacing_mm; /* median neighbour gap along the normal; 0 for one slice */
    double *along;     /* position of each slice along the normal, mm */
} Series;

/* Groups recs (n of them; readable ones, skip == "") into series, ordered by (PatientID,
 * StudyDate, StudyInstanceUID, SeriesInstanceUID). Duplicates get skip "duplicate" in recs (and
 * their reason in t). *series is an array of *n_series (free with series_free). */
int series_assemble(FileRec *recs, int n, StrTab *t, Series **series, int *n_series, Err *e);
void series_free(Series *series, int n_series);
/* "uneven_spacing,missing_instance" ... for reports; "" for none. */
void series_qc_text(uint32_t qc, char *out, size_t cap);

#endif
