/* predict.h: `onfh predict CONFIG --checkpoint FILE`: per-slice class probabilities of a
 * checkpoint over the run's cohort.h5, written to predictions.csv (data-schema/predictions.md).
 * Collective over MPI ranks; the output does not depend on the rank count. */
#ifndef ONFH_PREDICT_H
#define ONFH_PREDICT_H

#include "lib/util/err.h"
#include "pipeline/session.h"

typedef struct PredictOptions {
    const char *checkpoint; /* required */
    const char *out;        /* NULL: <run>/predictions.csv */
    const char *backend;    /* NULL: auto */
    int batch;              /* 0: 32 */
} PredictOptions;

int predict_run(Session *s, const PredictOptions *o, Err *e);

#endif
