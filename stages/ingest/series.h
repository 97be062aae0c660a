/* series.h: from the headers of many DICOM files to ordered, checked series.
 *
 * A FileRec is what ingest needs from one file's header (read with stop_before_pixels), or why
 * the file was skipped. series_assemble groups the readable records by SeriesInstanceUID, drops
 * exact duplicates (same SOPInstanceUID: the first path in byte order is kept, the others are
 * skipped as duplicates), orders slices by ImagePositionPatient projected on the slice normal
 * (row cosines x column cosines), takes the slice spacing from those positions (never from
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

#include <stdint.h>

#include "lib/util/err.h"

#define UID_CAP  65
#define TEXT_CAP 65

typedef struct FileRec {
    char path[1024];
    uint64_t bytes;
    char skip[48];    /* "" when readable, else the verdict: "not_dicom", "truncated", ... */
    char reason[256]; /* why, in words (the reader's message) */
    char patient_id[TEXT_CAP];
    char birth_date[9];
    char sex[3];
    char study_uid[UID_CAP];
    char series_uid[UID_CAP];
    char sop_uid[UID_CAP];
    char study_date[9];
    char series_description[TEXT_CAP];
    char manufacturer[TEXT_CAP];
    char model[TEXT_CAP];
    char ts_uid[UID_CAP];
    double field_t;
    double position[3];
    double orientation[6];
    double spacing[2]; /* row spacing, column spacing */
    double slope;
    double intercept;
    uint32_t rows;
    uint32_t columns;
    long instance;
} FileRec;

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
 * StudyDate, StudyInstanceUID, SeriesInstanceUID). Duplicates get skip "duplicate" in recs.
 * *series is an array of *n_series (free with series_free). */
int series_assemble(FileRec *recs, int n, Series **series, int *n_series, Err *e);
void series_free(Series *series, int n_series);
/* "uneven_spacing,missing_instance" ... for reports; "" for none. */
void series_qc_text(uint32_t qc, char *out, size_t cap);

#endif
