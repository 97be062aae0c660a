/* synth_internal.h: what the files of stages/synth share: the generation context and the
 * writers of series, faults and the preview. Not for other stages. */
#ifndef ONFH_SYNTH_INTERNAL_H
#define ONFH_SYNTH_INTERNAL_H

#include <stdint.h>

#include "lib/dicom/dicom.h"
#include "lib/util/strbuf.h"
#include "pipeline/config.h"
#include "stages/synth/cohort.h"
#include "stages/synth/vessel_tree.h"

typedef struct SiteInfo {
    const char *manufacturer;
    const char *model;
    double field_t;
    double scale;      /* stored value of fat */
    double snr_factor; /* times synth.snr */
} SiteInfo;

typedef struct SynthCtx {
    const Config *cfg;
    CohortPlan plan;
    uint64_t seed;
    char raw[4200];   /* raw.partial/ while generating */
    char truth[4200]; /* truth.partial/ */
    /* from the config */
    double fov_mm;
    double snr;
    int supersample;
    int matrix[8];
    int n_matrix;
    DicomTransferSyntax encodings[DICOM_TS_COUNT];
    int n_encodings;
    int vessel_matrix;
    int vessel_slices;
    double vessel_voxel_mm;
    /* rows this rank contributes, gathered to rank 0 in rank order */
    StrBuf clinical;
    StrBuf labels;
    StrBuf slices;
    StrBuf vessels;
    StrBuf patients;
    StrBuf faults;
    uint64_t files;
    uint64_t bytes;
    /* scratch, sized for the largest series */
    uint16_t *pixels;
    uint8_t *mask;
    uint16_t *volume;
} SynthCtx;

extern const SiteInfo synth_sites[COHORT_MAX_SITES];

/* One series on disk: identity and where its files go. */
typedef struct SeriesOut {
    const CohortPatient *pt;
    int visit;
    int is_vessel;
    char patient_id[16];
    char patient_name[64];
    char study_uid[DICOM_UID_MAX + 1];
    char series_uid[DICOM_UID_MAX + 1];
    char dir[4400];  /* directory of the files */
    int meaningless; /* fault: meaningless folder and file names */
    char date[9];    /* YYYYMMDD */
    DicomTransferSyntax ts;
} SeriesOut;

/* Writes a patient's clean series (every visit: coronal T1 and vessel series) and its rows. The
 * nested-names fault is applied here: the last n_relocated series (vessel series first, from
 * the last visit back) go into meaningless folders with meaningless file names. Truth paths
 * are relative to the run directory ("raw/..."). */
int synth_write_patient(SynthCtx *c, const CohortPatient *pt, int n_relocated, Err *e);

/* The DICOM dataset of one slice of a series (T1: slice of the coronal stack; vessel: slice of
 * the axial volume). pixels: rows x columns. */
int synth_slice_dataset(const SynthCtx *c, const SeriesOut *so, int slice, const uint16_t *pixels,
                        DicomDataset **out, Err *e);
/* Encodes and writes ds to path in ts; counts files and bytes. */
int synth_write_dataset(SynthCtx *c, const char *path, const DicomDataset *ds,
                        DicomTransferSyntax ts, Err *e);
/* The identity of a series (UIDs, names, date, directory, transfer syntax). */
void synth_series_identity(const SynthCtx *c, const CohortPatient *pt, int visit, int is_vessel,
                           int meaningless, SeriesOut *so);

/* The vessel trees of a patient before and after grafting. */
int synth_vessel_trees(const SynthCtx *c, const CohortPatient *pt, VesselTree *pre,
                       VesselTree *post, Err *e);
/* The T1 slice geometry and scanner of a patient's site. */
void synth_t1_geometry(const SynthCtx *c, const CohortPatient *pt, int visit, int slice,
                       SynthSlice *sl, SynthScanner *sc);

/* Injects fault f (kind f % SYNTH_FAULT_KINDS, nested-names excepted: it is applied by
 * synth_write_patient) for patient pt, appending to the faults rows. */
#define SYNTH_FAULT_KINDS 7
enum { FAULT_NESTED_NAMES = 6 };
int synth_inject_fault(SynthCtx *c, const CohortPatient *pt, int f, Err *e);

/* Writes <run>/synth_preview.png: T1 slices through the lesion across the visits of a
 * progressing patient (lesion outlined), and vessel projections before and after grafting. */
int synth_write_preview(SynthCtx *c, const char *path, Err *e);

#endif
