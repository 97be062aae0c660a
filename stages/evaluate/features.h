/* features.h: the intensity features of the logistic-regression baseline: what a model with no
 * spatial understanding can get out of a preprocessed slice. */
#ifndef ONFH_EVALUATE_FEATURES_H
#define ONFH_EVALUATE_FEATURES_H

enum { FEATURES = 7 };

/* Names in order: mean, sd, p10, p25, p50, p75, p90. */
extern const char *const feature_names[FEATURES];

/* out: the mean, the standard deviation (over n, numpy's default) and the 10th, 25th, 50th,
 * 75th and 90th percentiles (numpy's linear interpolation) of the n pixel values. scratch: room
 * for n doubles. */
void features_of_slice(const float *pixels, int n, double *scratch, double out[FEATURES]);

#endif
