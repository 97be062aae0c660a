/* folds.h: group-aware, class-stratified k-fold assignment (the algorithm of `onfh split`).
 *
 * Items (labelled slices) belong to groups (patients; or each slice its own group in the
 * paper-faithful slice-level mode). Every group goes whole into one test fold; inside each
 * fold's remaining groups, a validation share is set apart the same way. Assignment is greedy
 * and deterministic: groups are ordered by size (largest first, ties by a Philox draw keyed by
 * (seed, PHILOX_SPLIT, group)), and each goes to the bin whose class counts, as fractions of
 * what that bin should hold, would stay lowest: sum over classes of
 * (count[bin][c] + group[c]) / (target[bin] * total[c]). With 3:1 classes and patients of
 * similar size this gives folds within a slice or two of the class ratio. */
#ifndef ONFH_SPLIT_FOLDS_H
#define ONFH_SPLIT_FOLDS_H

#include <stdint.h>

#include "lib/util/err.h"

enum { PART_TRAIN = 0, PART_VAL = 1, PART_TEST = 2 };

/* n items with group[i] >= 0 and label[i] in {0, 1}. Writes part[f * n + i] (PART_*) for every
 * fold f < folds. 2 <= folds <= number of groups; 0 < val_fraction < 1. */
int folds_assign(int n, const int32_t *group, const int32_t *label, int folds, double val_fraction,
                 uint64_t seed, int8_t *part, Err *e);

/* Checks an assignment: every item in exactly one test fold; in every fold, no group in two
 * partitions (unless slice_level), and each partition holds both classes. Errors name the fold,
 * partition and group. */
int folds_check(int n, const int32_t *group, const int32_t *label, int folds, const int8_t *part,
                int slice_level, Err *e);

#endif
