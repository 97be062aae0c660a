/* augment.h: training-time augmentation of one slice, and resampling to the model's input size.
 *
 * One bilinear pass maps the output grid (out x out) onto the source slice (h x w) through a
 * random flip (left-right), rotation and isotropic scale about the centre, then applies an
 * intensity gain and offset. Samples outside the slice take the nearest edge value (the slices
 * are z-scored, so zero would be a bright rim). The draws come from Philox keyed by
 * (seed, PHILOX_AUGMENT, epoch 2^32 + sample), so a sample's augmentation depends on nothing
 * else: not the batch, thread, rank or resume point. With every amplitude 0 and out = h = w
 * the output equals the input exactly. */
#ifndef ONFH_AUGMENT_H
#define ONFH_AUGMENT_H

#include <stdint.h>

typedef struct Augment {
    int flip;            /* 1: left-right flip with probability 1/2 */
    double rotation_deg; /* angle uniform in [-r, r] */
    double scale;        /* zoom factor uniform in [1 - s, 1 + s] */
    double intensity;    /* gain uniform in [1 - i, 1 + i], offset uniform in [-i, i] (z units) */
} Augment;

/* src: (h, w) -> dst: (out, out). a may be NULL (no augmentation: a plain resample). */
void augment_slice(const Augment *a, uint64_t seed, uint64_t epoch, uint64_t sample,
                   const float *src, int h, int w, float *dst, int out);

#endif
