/* misc.cu: tensor plumbing in NHWC: residual add, channel-broadcast multiply (the
 * squeeze-excitation scale) and its reduction, channel concat / split / shuffle, dropout and
 * stochastic depth (see cuda_be.h, backend.h).
 *
 * In NHWC a channel slice is a run of C_i floats in every pixel, so concat and split are one
 * strided copy (or add) per part, one thread per element of the dense part. The reduction of
 * chanmul's backward, ds[n,c] = sum over pixels of dy x, runs in a fixed order (one block per
 * image and 32 channels, fixed per-thread strides, a fixed tree), so it is reproducible to the
 * bit from run to run, though its order is not ref's sequential one.
 *
 * Dropout and stochastic depth masks are ops.c's nn_mask_uniform / nn_mask_scale ported to
 * the device with the same integer arithmetic (Philox4x32-10, lib/util/philox.c), so every
 * mask equals the CPU's bit for bit; backward regenerates them. Products that are then added
 * are rounded first (__fmul_rn), so nvcc's FMA contraction cannot move results off ref's. */
#include "lib/nn/cuda/cu_core.cuh"

#include "lib/util/philox.h"

enum { THREADS = 256 };

#define GRID_STRIDE(i, total)                                                                      \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (total);                    \
         i += (size_t)gridDim.x * blockDim.x)

// --- add -------------------------------------------------------------------------------------

/* y may equal a or b: no __restrict__. */
__global__ void add_forward_kernel(size_t n, const float *a, const float *b, float *y)
{
    GRID_STRIDE(i, n)
    y[i] = a[i] + b[i];
}

/* da += dy, db += dy; either may be NULL. */
__global__ void add_backward_kernel(size_t n, const float *__restrict__ dy, float *da, float *db)
{
    GRID_STRIDE(i, n)
    {
        float g = dy[i];
        if (da)
            da[i] += g;
        if (db)
            db[i] += g;
    }
}

void cu_add_forward(size_t n, const float *a, const float *b, float *y)
{
    if (n)
        add_forward_kernel<<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(n, a, b, y);
    CU_AFTER("add forward");
}

void cu_add_backward(size_t n, const float *dy, float *da, float *db)
{
    if (n && (da || db))
        add_backward_kernel<<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(n, dy, da, db);
    CU_AFTER("add backward");
}

// --- chanmul ---------------------------------------------------------------------------------

/* x, y: (N,HW,C), s: (N,C): y[n,p,c] = x[n,p,c] s[n,c]. */
__global__ void chanmul_forward_kernel(size_t total, int c, size_t image,
                                       const float *__restrict__ x, const float *__restrict__ s,
                                       float *__restrict__ y)
{
    GRID_STRIDE(i, total)
    y[i] = x[i] * s[i / image * c + i % c];
}

/* dx: (N,HW,C) += dy s. */
__global__ void chanmul_dx_kernel(size_t total, int c, size_t image, const float *__restrict__ s,
                                  const float *__restrict__ dy, float *__restrict__ dx)
{
    GRID_STRIDE(i, total)
    dx[i] += __fmul_rn(dy[i], s[i / image * c + i % c]);
}

enum { DS_CH = 32, DS_ROWS = 8 };

/* ds: (N,C) += sum over the HW pixels of dy x. Block (32, 8) per (32-channel tile, image):
 * thread (tx, ty) sums pixels ty, ty + 8, ... of channel tile + tx (a warp reads 32
 * consecutive channels of one pixel), then row 0 adds the 8 partial sums in order. Images on
 * grid y, looping beyond 65535. */
__global__ void chanmul_ds_kernel(int n, int c, int hw, const float *__restrict__ x,
                                  const float *__restrict__ dy, float *__restrict__ ds)
{
    __shared__ float part[DS_ROWS][DS_CH];
    int ch = blockIdx.x * DS_CH + threadIdx.x;
    for (int b = blockIdx.y; b < n; b += gridDim.y) {
        float sum = 0.0f;
        if (ch < c) {
            size_t at = (size_t)b * hw * c + ch;
            for (int p = threadIdx.y; p < hw; p += DS_ROWS)
                sum += __fmul_rn(dy[at + (size_t)p * c], x[at + (size_t)p * c]);
        }
        part[threadIdx.y][threadIdx.x] = sum;
        __syncthreads();
        if (threadIdx.y == 0 && ch < c) {
            float total = part[0][threadIdx.x];
            for (int r = 1; r < DS_ROWS; r++)
                total += part[r][threadIdx.x];
            ds[(size_t)b * c + ch] += total;
        }
        __syncthreads(); /* part is refilled for the next image */
    }
}

void cu_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y)
{
    size_t image = (size_t)hw * c, total = (size_t)n * image;
    if (total)
        chanmul_forward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(
            total, c, image, x, s, y);
    CU_AFTER("chanmul forward");
}

void cu_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                         float *dx, float *ds)
{
    size_t image = (size_t)hw * c, total = (size_t)n * image;
    if (total && dx)
        chanmul_dx_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(total, c, image,
                                                                                  s, dy, dx);
    if (total && ds)
        chanmul_ds_kernel<<<dim3((c + DS_CH - 1) / DS_CH, n < 65535 ? n : 65535),
                            dim3(DS_CH, DS_ROWS), 0, cu_stream()>>>(n, c, hw, x, dy, ds);
    CU_AFTER("chanmul backward");
}

// --- concat, split, shuffle ------------------------------------------------------------------

/* Between a dense part (P, ci) and columns [off, off + ci) of a (P, ld) tensor, P pixels:
 * TO_SLICE copies (or adds) the part into the slice, else the slice into the part. */
template <bool TO_SLICE, bool ADD>
__global__ void slice_kernel(size_t total, int ci, int ld, int off, const float *__restrict__ src,
                             float *__restrict__ dst)
{
    GRID_STRIDE(i, total)
    {
        size_t at = i / ci * ld + off + i % ci;
        size_t from = TO_SLICE ? i : at, to = TO_SLICE ? at : i;
        if (ADD)
            dst[to] += src[from];
        else
            dst[to] = src[from];
    }
}

template <bool TO_SLICE, bool ADD>
static void slice(size_t pixels, int ci, int ld, int off, const float *src, float *dst)
{
    size_t total = pixels * ci;
    if (total)
        slice_kernel<TO_SLICE, ADD>
            <<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(total, ci, ld, off, src, dst);
}

static int total_channels(int parts, const int *c)
{
    int t = 0;
    for (int i = 0; i < parts; i++)
        t += c[i];
    return t;
}

/* xs[i]: (N,HW,C_i) -> y: (N,HW,sum C_i). xs is a host array of device pointers. */
void cu_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs, float *y)
{
    int ct = total_channels(parts, c);
    for (int i = 0, off = 0; i < parts; off += c[i], i++)
        slice<true, false>((size_t)n * hw, c[i], ct, off, xs[i], y);
    CU_AFTER("concat forward");
}

/* dxs[i] += channels of part i of dy (NULL entries skipped). */
void cu_concat_backward(int n, int hw, int parts, const int *c, const float *dy, float *const *dxs)
{
    int ct = total_channels(parts, c);
    for (int i = 0, off = 0; i < parts; off += c[i], i++)
        if (dxs[i])
            slice<false, true>((size_t)n * hw, c[i], ct, off, dy, dxs[i]);
    CU_AFTER("concat backward");
}

/* x: (N,HW,sum C_i) -> ys[i]: (N,HW,C_i) (NULL entries: unused parts). */
void cu_split_forward(int n, int hw, int parts, const int *c, const float *x, float *const *ys)
{
    int ct = total_channels(parts, c);
    for (int i = 0, off = 0; i < parts; off += c[i], i++)
        if (ys[i])
            slice<false, false>((size_t)n * hw, c[i], ct, off, x, ys[i]);
    CU_AFTER("split forward");
}

/* dx: (N,HW,sum C_i) += dys[i] in part i's channels (NULL entries: no gradient). */
void cu_split_backward(int n, int hw, int parts, const int *c, const float *const *dys, float *dx)
{
    int ct = total_channels(parts, c);
    for (int i = 0, off = 0; i < parts; off += c[i], i++)
        if (dys[i])
            slice<true, true>((size_t)n * hw, c[i], ct, off, dys[i], dx);
    CU_AFTER("split backward");
}

/* Per pixel of x, y: (P, C), C = G per: y[p, j G + g] = x[p, g per + j]. One thread per output
 * element, so writes are coalesced. */
__global__ void shuffle_forward_kernel(size_t total, int c, int groups, const float *__restrict__ x,
                                       float *__restrict__ y)
{
    int per = c / groups;
    GRID_STRIDE(i, total)
    {
        int k = (int)(i % c); /* k = j G + g */
        y[i] = x[i - k + (size_t)(k % groups) * per + k / groups];
    }
}

/* dx[p, g per + j] += dy[p, j G + g], one thread per dx element. */
__global__ void shuffle_backward_kernel(size_t total, int c, int groups,
                                        const float *__restrict__ dy, float *__restrict__ dx)
{
    int per = c / groups;
    GRID_STRIDE(i, total)
    {
        int k = (int)(i % c); /* k = g per + j */
        dx[i] += dy[i - k + (size_t)(k % per) * groups + k / per];
    }
}

void cu_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y)
{
    size_t total = (size_t)n * hw * c;
    if (total)
        shuffle_forward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(
            total, c, groups, x, y);
    CU_AFTER("shuffle forward");
}

void cu_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx)
{
    size_t total = (size_t)n * hw * c;
    if (total)
        shuffle_backward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(
            total, c, groups, dy, dx);
    CU_AFTER("shuffle backward");
}

// --- dropout and stochastic depth ------------------------------------------------------------

/* lib/util/philox.c's philox4x32_10, one block; hi and lo of the 32x32 products as there. */
__device__ __forceinline__ void philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        uint32_t c1 = c[1], c3 = c[3];
        c[0] = hi1 ^ c1 ^ k0;
        c[1] = lo1;
        c[2] = hi0 ^ c3 ^ k1;
        c[3] = lo0;
    }
}

/* The four words behind nn_mask_uniform for elements 4 q .. 4 q + 3: word j % 4 of the block
 * key = seed, counter = (q, PHILOX_DROPOUT, stream low, stream high). */
__device__ __forceinline__ void mask_block(const NnDropout &d, uint64_t q, uint32_t out[4])
{
    uint64_t stream = (d.step << 24) | (d.op & 0xffffffu);
    out[0] = (uint32_t)q;
    out[1] = PHILOX_DROPOUT;
    out[2] = (uint32_t)stream;
    out[3] = (uint32_t)(stream >> 32);
    philox(out, (uint32_t)d.seed, (uint32_t)(d.seed >> 32));
}

/* nn_mask_scale from one word: uniform (word >> 8) 2^-24 against p. keep = 1 / (1 - p),
 * computed on the host in float as ops.c does. */
__device__ __forceinline__ float word_scale(uint32_t word, float p, float keep)
{
    return (float)(word >> 8) * 0x1.0p-24f >= p ? keep : 0.0f;
}

/* The scale of element j by nn_mask_scale's cases: p <= 0 keeps all, p >= 1 drops all. */
__device__ __forceinline__ float mask_scale(const NnDropout &d, float keep, uint64_t j)
{
    if (d.p <= 0.0f)
        return 1.0f;
    if (d.p >= 1.0f)
        return 0.0f;
    j += d.first; /* global element */
    uint32_t w[4];
    mask_block(d, j / 4, w);
    uint32_t word = j % 4 == 0 ? w[0] : j % 4 == 1 ? w[1] : j % 4 == 2 ? w[2] : w[3];
    return word_scale(word, d.p, keep);
}

/* x, y: (n). One thread per Philox block: elements 4 q .. 4 q + 3. ADD: y += x scale (backward,
 * x = dy, y = dx), else y = x scale. */
template <bool ADD>
__global__ void dropout_kernel(NnDropout d, float keep, size_t n, const float *__restrict__ x,
                               float *__restrict__ y)
{
    /* blocks of the global batch: whole when d.first is a multiple of 4 (a rank's share
     * starts at a sample boundary, and samples are rarely odd-sized), else element by element */
    int aligned = d.first % 4 == 0;
    GRID_STRIDE(q, (n + 3) / 4)
    {
        uint32_t w[4] = {0, 0, 0, 0};
        if (aligned && d.p > 0.0f && d.p < 1.0f)
            mask_block(d, q + d.first / 4, w);
        for (int k = 0; k < 4; k++) {
            size_t j = 4 * q + k;
            if (j >= n)
                break;
            float s = !aligned      ? mask_scale(d, keep, j)
                      : d.p <= 0.0f ? 1.0f
                      : d.p >= 1.0f ? 0.0f
                                    : word_scale(w[k], d.p, keep);
            if (ADD)
                y[j] += __fmul_rn(x[j], s);
            else
                y[j] = x[j] * s;
        }
    }
}

/* 1 / (1 - p) as nn_mask_scale computes it (float); unused when p <= 0 or p >= 1. */
static float keep_scale(const NnDropout *d)
{
    return d->p > 0.0f && d->p < 1.0f ? 1.0f / (1.0f - d->p) : 0.0f;
}

void cu_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y)
{
    if (n)
        dropout_kernel<false><<<cu_blocks((n + 3) / 4, THREADS), THREADS, 0, cu_stream()>>>(
            *d, keep_scale(d), n, x, y);
    CU_AFTER("dropout forward");
}

void cu_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx)
{
    if (n)
        dropout_kernel<true><<<cu_blocks((n + 3) / 4, THREADS), THREADS, 0, cu_stream()>>>(
            *d, keep_scale(d), n, dy, dx);
    CU_AFTER("dropout backward");
}

/* x, y: (N, per): sample b scaled by mask_scale(b). Samples on grid y (a grid-stride loop
 * beyond 65535), elements of a sample on grid x; each thread draws its sample's scale once. */
template <bool ADD>
__global__ void depth_kernel(NnDropout d, float keep, int n, size_t per,
                             const float *__restrict__ x, float *__restrict__ y)
{
    for (int b = blockIdx.y; b < n; b += gridDim.y) {
        float s = mask_scale(d, keep, (uint64_t)b);
        const float *xb = x + (size_t)b * per;
        float *yb = y + (size_t)b * per;
        GRID_STRIDE(i, per)
        {
            if (ADD)
                yb[i] += __fmul_rn(xb[i], s);
            else
                yb[i] = xb[i] * s;
        }
    }
}

template <bool ADD>
static void depth(const NnDropout *d, int n, size_t per, const float *x, float *y)
{
    if ((size_t)n * per == 0)
        return;
    dim3 grid(cu_blocks(per, THREADS), n < 65535 ? n : 65535);
    depth_kernel<ADD><<<grid, THREADS, 0, cu_stream()>>>(*d, keep_scale(d), n, per, x, y);
}

void cu_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                 float *y)
{
    depth<false>(d, n, per_sample, x, y);
    CU_AFTER("stochastic depth forward");
}

void cu_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample, const float *dy,
                                  float *dx)
{
    depth<true>(d, n, per_sample, dy, dx);
    CU_AFTER("stochastic depth backward");
}
