/* philox.c: Philox4x32-10 and the draws built on it (see philox.h).
 *
 * The block function follows Salmon et al. (SC'11) and the Random123 reference code: ten rounds
 * of two 32x32->64 multiplies, with the key bumped by the Weyl constants between rounds. A
 * Philox stream hands out the four words of one block, then moves to the next block by
 * incrementing ctr[0]; the other counter words hold purpose and index and never change, which is
 * why streams of different (purpose, index) never overlap. */
#include "lib/util/philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

// ---------------------------------------------------------------------------------------------
// Block function

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32);
    uint32_t lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32);
    uint32_t lo1 = (uint32_t)p1;
    uint32_t c1 = c[1];
    uint32_t c3 = c[3];
    c[0] = hi1 ^ c1 ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k[1];
    c[3] = lo0;
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

// ---------------------------------------------------------------------------------------------
// Streams

void philox_init(Philox *p, uint64_t seed, uint32_t purpose, uint64_t index)
{
    p->key[0] = (uint32_t)seed;
    p->key[1] = (uint32_t)(seed >> 32);
    p->ctr[0] = 0;
    p->ctr[1] = purpose;
    p->ctr[2] = (uint32_t)index;
    p->ctr[3] = (uint32_t)(index >> 32);
    p->used = 4;
    p->has_spare = 0;
    p->spare_normal = 0.0;
}

uint32_t philox_u32(Philox *p)
{
    if (p->used >= 4) {
        philox4x32_10(p->ctr, p->key, p->buf);
        /* After 2^32 blocks the stream wraps and repeats; at 16 bytes a block that is 64 GiB of
         * draws from one (seed, purpose, index), far beyond any single use in onfh. */
        p->ctr[0]++;
        p->used = 0;
    }
    return p->buf[p->used++];
}

uint64_t philox_u64(Philox *p)
{
    uint64_t lo = philox_u32(p);
    uint64_t hi = philox_u32(p);
    return (hi << 32) | lo;
}

double philox_uniform(Philox *p)
{
    return (double)(philox_u64(p) >> 11) * 0x1.0p-53;
}

float philox_uniformf(Philox *p)
{
    return (float)(philox_u32(p) >> 8) * 0x1.0p-24f;
}

/* Lemire, "Fast random integer generation in an interval" (2019): the high word of x*n is
 * uniform on [0, n) once the low word's biased band (below 2^32 mod n) is rejected. The
 * division to find that band is only paid when the low word lands near it. */
uint32_t philox_below(Philox *p, uint32_t n)
{
    if (n == 0)
        return 0; /* outside the contract; answer something harmless rather than divide by 0 */
    uint64_t m = (uint64_t)philox_u32(p) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)-n % n; /* 2^32 mod n */
        while (low < threshold) {
            m = (uint64_t)philox_u32(p) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Box-Muller: two uniforms give two independent normals; the second is kept for the next call
 * so no randomness is thrown away. u1 is taken from (0, 1] so that log(u1) is finite. */
double philox_normal(Philox *p)
{
    if (p->has_spare) {
        p->has_spare = 0;
        return p->spare_normal;
    }
    double u1 = 1.0 - philox_uniform(p);
    double u2 = philox_uniform(p);
    double r = sqrt(-2.0 * log(u1));
    double theta = 2.0 * M_PI * u2;
    p->spare_normal = r * sin(theta);
    p->has_spare = 1;
    return r * cos(theta);
}
