/* vessels.h: `onfh vessels CONFIG`: every vessel series of cohort.h5 (role 2, native
 * resolution) through vesselness, threshold, thinning and skeleton graph into vessel length
 * and branch count (measure.h), ranks sharing the series; then the treatment response of
 * grafting (treatment.h). Writes vessels.h5, treatment.json and vessel_overlays/ (one PNG per
 * series: the MIP with the pruned skeleton), data-schema/vessels.md. Needs only cohort.h5, so
 * it runs after ingest; `onfh run` runs it after evaluate. */
#ifndef ONFH_VESSELS_H
#define ONFH_VESSELS_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int vessels_run(Session *s, Err *e);

#endif
