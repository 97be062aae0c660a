/* report.h: `onfh report CONFIG`: one self-contained HTML page for a run (report/index.html):
 * provenance, cohort and participant flow, training curves, the architecture comparison with
 * its CIs and a forest plot, ROC and calibration curves, the paired tests, the leakage
 * side-by-side when evaluate made one, the treatment response (vessels), and a TRIPOD+AI / CLAIM
 * item map. Figures are inline SVG (lib/image/svg.h): no network, no scripts. Every section
 * reads only files the earlier stages wrote and documented (data-schema/); a section whose stage
 * has not run says so. Rank 0 writes the page; it is the same bytes for the same run
 * directory. */
#ifndef ONFH_REPORT_H
#define ONFH_REPORT_H

#include "lib/util/err.h"
#include "pipeline/session.h"

int report_run(Session *s, Err *e);

#endif
