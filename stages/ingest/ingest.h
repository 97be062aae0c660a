/* ingest.h: `onfh ingest`, a DICOM tree plus labels.csv and clinical.csv into one documented
 * parallel-HDF5 cohort.h5 (data-schema/cohort.md) that every later stage reads, with
 * ingest_report.csv/.json for every file skipped, row refused and series flagged. Files and
 * series are shared out over MPI ranks; the output does not depend on the rank count. */
#ifndef ONFH_INGEST_H
#define ONFH_INGEST_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int ingest_run(Session *s, Err *e);

#endif
