/* synth.h: `onfh synth`, the synthetic ONFH cohort written as real DICOM.
 *
 * Writes into the run directory:
 *   raw/            the DICOM tree: raw/site<k>/<PatientID>/<YYYYMMDD>/<NN_SERIES>/IM<nnnn>.dcm,
 *                   a coronal T1 series and a vessel (MRA) series per visit, in a mix of
 *                   transfer syntaxes, plus the faults asked for
 *   clinical.csv    what a study's clinical database would hold (data-schema/synth.md)
 *   labels.csv      slice labels of the baseline T1 series, keyed by SOPInstanceUID
 *   truth/          ground truth for tests only: patients, slices, vessels, faults; no stage
 *                   reads it
 *   synth_preview.png  with synth.preview (onfh synth --preview): a montage to judge realism
 * Patients are shared out over MPI ranks (rt_share); every file depends only on the seed and the
 * patient, so the tree is byte-identical whatever the rank count. */
#ifndef ONFH_SYNTH_H
#define ONFH_SYNTH_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int synth_run(Session *s, Err *e);

#endif
