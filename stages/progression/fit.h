/* fit.h: patient-grouped cross-validation of the progression models on per-visit features.
 *
 * Fold k trains on the other folds' patients and predicts its own, so every included patient
 * gets one out-of-fold probability of progression from each model:
 *   - lstm: lib/nn/lstm over the visits up to the cut-off. Inputs per visit (nn_lstm_visit_inputs)
 *     [ m * z (F) | m (F) | gap (1) ], z the feature standardised with the mean and SD of the
 *     fold's training patients' observed visits (up to the cut-off: no later value and no test
 *     patient reaches the statistics), m the observation mask, gap the years since the previous
 *     visit. AdamW on softmax cross-entropy; batches of patients in a Philox order of (seed,
 *     epoch); weights from (seed, fold).
 *   - logistic: L2 logistic regression (C = 1, lib/stats/logistic) on the same inputs of the
 *     last visit before the cut-off only: what a single visit tells.
 * Folds: patients stratified by outcome, each class in a Philox permutation dealt round-robin. */
#ifndef ONFH_PROGRESSION_FIT_H
#define ONFH_PROGRESSION_FIT_H

#include <stdint.h>

#include "lib/nn/backend.h"
#include "lib/nn/lstm.h"
#include "lib/util/err.h"

#define PROG_MAX_INPUT_FEATURES 64

typedef struct ProgFit {
    /* the columns of values the models see (progression.features), in order; n_use 0: all */
    int use[PROG_MAX_INPUT_FEATURES], n_use;
    int hidden, layers, epochs, batch;
    float dropout;
    double lr, weight_decay;
    uint64_t seed;
    const NnBackend *be;
} ProgFit;

/* fold[i] in [0, k) for included patients (stratified by outcome), -1 for the rest. */
void prog_folds(int n, const int *outcome, const int *included, int k, uint64_t seed, int *fold);

/* Trains a fresh LSTM (m: uninitialised on entry, the trained model on success; free it with
 * nn_lstm_free) on n sequences x (n,t,in) of lengths len with targets 0/1. init_seed keys the
 * weights. epoch_s (may be NULL) receives the mean wall seconds per epoch. */
int prog_lstm_train(NnLstm *m, const ProgFit *fit, uint64_t init_seed, int n, int t, int in,
                    const float *x, const int *len, const int *target, double *epoch_s, Err *e);

/* Out-of-fold probabilities of progression (n each; NaN where fold[i] < 0). values, mask:
 * (n,t_all,f), of which the models see fit->use's columns (all f when fit->n_use is 0); len: visits
 * up to the cut-off (n); gap_days (n,t_all). epoch_s: mean seconds of an LSTM epoch over the folds
 * (may be NULL). */
int prog_cross_validate(int n, int t_all, int f, const float *values, const float *mask,
                        const float *gap_days, const int *len, const int *outcome, const int *fold,
                        int k, const ProgFit *fit, double *p_lstm, double *p_logistic,
                        double *epoch_s, Err *e);

#endif
