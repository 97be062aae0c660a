/* philox.h: Philox4x32-10, the one random number generator of onfh.
 *
 * Counter-based (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3"): the
 * output is a pure function of (key, counter), so a draw keyed by (seed, purpose, index) is the
 * same whatever the rank count, thread count or order of evaluation. That is what makes sample
 * order, augmentation, dropout masks and bootstrap resamples independent of how work is split.
 *
 * Stream layout: key = (seed low 32 bits, seed high 32 bits);
 * counter = (block, purpose, index low 32 bits, index high 32 bits). Each (seed, purpose, index)
 * stream therefore has 2^32 blocks of 4 words. */
#ifndef ONFH_PHILOX_H
#define ONFH_PHILOX_H

#include <stdint.h>

/* One block: out = Philox4x32-10(ctr, key). Checked against the Random123 known-answer vectors. */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Purposes: each use of randomness gets its own, so streams never overlap. Append, never renumber
 * (renumbering changes every result). */
enum {
    PHILOX_TEST = 0,
    PHILOX_SYNTH = 1,
    PHILOX_SPLIT = 2,
    PHILOX_SHUFFLE = 3,
    PHILOX_AUGMENT = 4,
    PHILOX_DROPOUT = 5,
    PHILOX_INIT = 6,
    PHILOX_BOOTSTRAP = 7,
    PHILOX_PROGRESSION = 8, /* progression folds, LSTM batch order */
};

typedef struct Philox {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int used;      /* words of buf already handed out (4 = refill) */
    int has_spare; /* philox_normal: spare holds the second Box-Muller output */
    double spare_normal;
} Philox;

void philox_init(Philox *p, uint64_t seed, uint32_t purpose, uint64_t index);
uint32_t philox_u32(Philox *p);
uint64_t philox_u64(Philox *p);
/* Uniform in [0, 1): 53 random bits / 24 random bits. */
double philox_uniform(Philox *p);
float philox_uniformf(Philox *p);
/* Uniform integer in [0, n), n >= 1, without modulo bias (Lemire's method with rejection). */
uint32_t philox_below(Philox *p, uint32_t n);
/* Standard normal (Box-Muller on two uniforms; both outputs are used in turn). */
double philox_normal(Philox *p);

#endif
