/* norm.cu: BatchNorm2d, training and eval mode, forward and backward: own kernels for training
 * (below), cuDNN's legacy batch norm (CUDNN_BATCHNORM_SPATIAL) for eval forward and, with
 * ONFH_CUDA_BN=cudnn, for training too.
 *
 * x, y, dx, dy: (N,C,H,W) NHWC, i.e. (M, C) with M = N H W rows; gamma, beta, running and saved
 * statistics: (C), one (1,C,1,1) descriptor. cuDNN's conventions are PyTorch's (which calls
 * it), so they are backend.h's: it normalises with the biased batch variance, keeps
 * running_var with the unbiased one var M / (M - 1), blends running = (1 - f) running + f batch
 * with f = exponentialAverageFactor = momentum, and saves mean and invstd = 1 / sqrt(var + eps).
 * Backward blends its results into dx, dgamma and dbeta with beta = 1: the accumulate contract.
 *
 * cuDNN's backward always writes dx, so without dx (a frozen input) and in eval mode (the
 * statistics are constants; cuDNN has no entry) the kernels below do it:
 *   dbeta += sum dy,  dgamma += invstd sum dy (x - mean),  eval dx += dy gamma invstd.
 * The sums are deterministic: block (t, r) of param_partial sums rows [r chunk, (r+1) chunk) of
 * the 32 channels of tile t in a fixed order into partial (2, R, C), and param_finish adds the
 * R partials of a channel in order. R depends on the shape only.
 *
 * Training mode runs on own kernels by default (ONFH_CUDA_BN=cudnn, cu_core.cuh, picks cuDNN's
 * legacy batch norm, 3x slower on an H200 in NHWC fp32), built from the
 * same deterministic row sums: forward takes two passes (sum x, then sum (x - mean) and
 * sum (x - mean)^2, the corrected two-pass variance), backward one (sum dy, sum dy (x - mean))
 * and then dx += gamma invstd (dy - sum dy / M - xhat invstd sum dy (x - mean) / M), ref's
 * formula. */
#include "lib/nn/cuda/cu_core.cuh"

#include <cassert>
#include <cstdlib>

typedef struct BnEntry {
    int n, c, h, w;                /* the key */
    cudnnTensorDescriptor_t x;     /* NHWC (N,C,H,W): x, y, dx, dy */
    cudnnTensorDescriptor_t param; /* (1,C,1,1) */
    struct BnEntry *next;
} BnEntry;

static BnEntry *entries;

/* The row sums' partials (2, R, C), then (2, C) finished sums; grown on demand. */
static float *partial;
static size_t partial_len;

enum { TILE = 32, LANES = 16 }; /* param_partial's block: 32 channels x 16 row lanes */

/* The descriptors of bn's shape, made on first sight. */
static BnEntry *bn_entry(const NnBatchNorm *bn)
{
    assert(bn->ldx == 0); /* channel_views = 0: the graph never sets it */
    for (BnEntry *e = entries; e; e = e->next)
        if (e->n == bn->n && e->c == bn->c && e->h == bn->h && e->w == bn->w)
            return e;
    BnEntry *e = (BnEntry *)calloc(1, sizeof *e);
    if (!e)
        cu_die("host", "batchnorm cache entry", "out of memory", __FILE__, __LINE__);
    e->n = bn->n;
    e->c = bn->c;
    e->h = bn->h;
    e->w = bn->w;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->param));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, bn->n, bn->c,
                                           bn->h, bn->w));
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(e->param, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, bn->c, 1, 1));
    e->next = entries;
    entries = e;
    return e;
}

static __global__ void count_batch_kernel(int64_t *num_batches_tracked)
{
    *num_batches_tracked += 1;
}

/* partial[r][c] = sum dy, partial[R + r][c] = sum dy (x - mean) over rows [r chunk, (r+1)
 * chunk) of x, dy: (m, C), in a fixed order; R = gridDim.y. */
static __global__ void param_partial_kernel(size_t m, int c, size_t chunk, const float *x,
                                            const float *mean, const float *dy, float *partial)
{
    __shared__ float s_dy[LANES][TILE], s_dyx[LANES][TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int ch = blockIdx.x * TILE + tx;
    size_t r = blockIdx.y, begin = r * chunk, end = begin + chunk < m ? begin + chunk : m;
    float a = 0.0f, b = 0.0f;
    if (ch < c) {
        float mu = mean[ch];
        for (size_t i = begin + ty; i < end; i += LANES) {
            float g = dy[i * c + ch];
            a += g;
            b += g * (x[i * c + ch] - mu);
        }
    }
    s_dy[ty][tx] = a;
    s_dyx[ty][tx] = b;
    __syncthreads();
    for (int s = LANES / 2; s > 0; s >>= 1) {
        if (ty < s) {
            s_dy[ty][tx] += s_dy[ty + s][tx];
            s_dyx[ty][tx] += s_dyx[ty + s][tx];
        }
        __syncthreads();
    }
    if (ty == 0 && ch < c) {
        partial[r * c + ch] = s_dy[0][tx];
        partial[(gridDim.y + r) * c + ch] = s_dyx[0][tx];
    }
}

/* dbeta += sum of the R partial sums dy, dgamma += invstd times those of dy (x - mean); invstd
 * given (training) or 1 / sqrt(var + eps) (eval, var given). sums (2, C), when given, keeps the
 * two sums for train_dx_kernel. */
static __global__ void param_finish_kernel(int c, int rparts, const float *partial,
                                           const float *invstd, const float *var, float eps,
                                           float *dgamma, float *dbeta, float *sums)
{
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        float a = 0.0f, b = 0.0f;
        for (int r = 0; r < rparts; r++) {
            a += partial[(size_t)r * c + ch];
            b += partial[(size_t)(rparts + r) * c + ch];
        }
        float is = invstd ? invstd[ch] : 1.0f / sqrtf(var[ch] + eps);
        dgamma[ch] += b * is;
        dbeta[ch] += a;
        if (sums) {
            sums[ch] = a;
            sums[c + ch] = b;
        }
    }
}

/* partial[r][c] = sum (x - mu), partial[R + r][c] = sum (x - mu)^2 over rows [r chunk,
 * (r+1) chunk) of x: (m, C), in a fixed order; mu = mean, or 0 when mean is NULL. */
static __global__ void stat_partial_kernel(size_t m, int c, size_t chunk, const float *x,
                                           const float *mean, float *partial)
{
    __shared__ float s_a[LANES][TILE], s_b[LANES][TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int ch = blockIdx.x * TILE + tx;
    size_t r = blockIdx.y, begin = r * chunk, end = begin + chunk < m ? begin + chunk : m;
    float a = 0.0f, b = 0.0f;
    if (ch < c) {
        float mu = mean ? mean[ch] : 0.0f;
        for (size_t i = begin + ty; i < end; i += LANES) {
            float d = x[i * c + ch] - mu;
            a += d;
            b += d * d;
        }
    }
    s_a[ty][tx] = a;
    s_b[ty][tx] = b;
    __syncthreads();
    for (int s = LANES / 2; s > 0; s >>= 1) {
        if (ty < s) {
            s_a[ty][tx] += s_a[ty + s][tx];
            s_b[ty][tx] += s_b[ty + s][tx];
        }
        __syncthreads();
    }
    if (ty == 0 && ch < c) {
        partial[r * c + ch] = s_a[0][tx];
        partial[(gridDim.y + r) * c + ch] = s_b[0][tx];
    }
}

/* Pass 1: mean = sum x / m, into save_mean. */
static __global__ void mean_finish_kernel(int c, int rparts, double m, const float *partial,
                                          float *mean)
{
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        double a = 0.0;
        for (int r = 0; r < rparts; r++)
            a += partial[(size_t)r * c + ch];
        mean[ch] = (float)(a / m);
    }
}

/* Pass 2: var = (sum d^2 - (sum d)^2 / m) / m with d = x - mean (the correction cancels the
 * mean's rounding); invstd, and the running statistics blended as ref does (unbiased var). */
static __global__ void var_finish_kernel(int c, int rparts, double m, const float *partial,
                                         const float *mean, float eps, float momentum,
                                         float *invstd, float *running_mean, float *running_var)
{
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        double a = 0.0, b = 0.0;
        for (int r = 0; r < rparts; r++) {
            a += partial[(size_t)r * c + ch];
            b += partial[(size_t)(rparts + r) * c + ch];
        }
        double var = (b - a * a / m) / m;
        if (var < 0.0)
            var = 0.0;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
        double mom = momentum;
        running_mean[ch] = (float)((1.0 - mom) * running_mean[ch] + mom * mean[ch]);
        running_var[ch] = (float)((1.0 - mom) * running_var[ch] + mom * var * m / (m - 1.0));
    }
}

/* y = (x - mean) invstd gamma + beta, per channel of the NHWC element. */
static __global__ void normalize_kernel(size_t n, int c, const float *x, const float *mean,
                                        const float *invstd, const float *gamma, const float *beta,
                                        float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c);
        y[i] = (x[i] - mean[ch]) * invstd[ch] * gamma[ch] + beta[ch];
    }
}

/* dx += gamma invstd (dy - s1 / m - xhat invstd s2 / m), xhat = (x - mean) invstd, with
 * sums = (s1, s2) = (sum dy, sum dy (x - mean)) per channel: (2, C). */
static __global__ void train_dx_kernel(size_t n, int c, float m, const float *x, const float *dy,
                                       const float *mean, const float *invstd, const float *gamma,
                                       const float *sums, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c);
        float is = invstd[ch], xhat = (x[i] - mean[ch]) * is;
        dx[i] += gamma[ch] * is * (dy[i] - sums[ch] / m - xhat * is * sums[c + ch] / m);
    }
}

/* dx: (n) += dy gamma / sqrt(var + eps), per channel of the NHWC element. */
static __global__ void eval_dx_kernel(size_t n, int c, const float *gamma, const float *var,
                                      float eps, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c);
        dx[i] += dy[i] * (gamma[ch] * (1.0f / sqrtf(var[ch] + eps)));
    }
}

/* How the M = N H W rows of bn are cut for the row sums: R parts of `chunk` rows, about a
 * thousand rows a block and no more than 1024 blocks in all; the partial buffer grown to hold
 * (2, R, C) partials and (2, C) finished sums (at partial + 2 R C). */
typedef struct RowPlan {
    size_t m, rparts, chunk;
    dim3 grid, block;
    float *sums;
} RowPlan;

static RowPlan row_plan(const NnBatchNorm *bn)
{
    assert(bn->ldx == 0);
    RowPlan p;
    p.m = (size_t)bn->n * bn->h * bn->w;
    size_t tiles = (bn->c + TILE - 1) / TILE;
    size_t most = 1024 / tiles;
    p.rparts = (p.m + 1023) / 1024;
    if (p.rparts > most)
        p.rparts = most;
    if (p.rparts < 1)
        p.rparts = 1;
    p.chunk = (p.m + p.rparts - 1) / p.rparts;
    size_t need = 2 * p.rparts * bn->c + 2 * (size_t)bn->c;
    if (need > partial_len) {
        cu_free(partial);
        partial = (float *)cu_alloc(need * sizeof(float));
        if (!partial)
            cu_die("CUDA", "batchnorm", "out of device memory for partial sums", __FILE__,
                   __LINE__);
        partial_len = need;
    }
    p.grid = dim3((unsigned)tiles, (unsigned)p.rparts);
    p.block = dim3(TILE, LANES);
    p.sums = partial + 2 * p.rparts * bn->c;
    return p;
}

/* dgamma, dbeta += their sums (header comment) with the given mean and invstd, or var; the
 * plain sums also land in p->sums. */
static void param_grads(const NnBatchNorm *bn, const RowPlan *p, const float *x, const float *mean,
                        const float *invstd, const float *var, const float *dy, float *dgamma,
                        float *dbeta)
{
    param_partial_kernel<<<p->grid, p->block, 0, cu_stream()>>>(p->m, bn->c, p->chunk, x, mean, dy,
                                                                partial);
    param_finish_kernel<<<cu_blocks(bn->c, 256), 256, 0, cu_stream()>>>(
        bn->c, (int)p->rparts, partial, invstd, var, bn->eps, dgamma, dbeta, p->sums);
}

void cu_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *beta, float *y, float *running_mean,
                                float *running_var, int64_t *num_batches_tracked, float *save_mean,
                                float *save_invstd)
{
    if (cu_bn_own) {
        RowPlan p = row_plan(bn);
        unsigned nb = cu_blocks(bn->c, 256);
        stat_partial_kernel<<<p.grid, p.block, 0, cu_stream()>>>(p.m, bn->c, p.chunk, x, NULL,
                                                                 partial);
        mean_finish_kernel<<<nb, 256, 0, cu_stream()>>>(bn->c, (int)p.rparts, (double)p.m, partial,
                                                        save_mean);
        stat_partial_kernel<<<p.grid, p.block, 0, cu_stream()>>>(p.m, bn->c, p.chunk, x, save_mean,
                                                                 partial);
        var_finish_kernel<<<nb, 256, 0, cu_stream()>>>(bn->c, (int)p.rparts, (double)p.m, partial,
                                                       save_mean, bn->eps, bn->momentum,
                                                       save_invstd, running_mean, running_var);
        size_t n = p.m * bn->c;
        normalize_kernel<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(n, bn->c, x, save_mean,
                                                                     save_invstd, gamma, beta, y);
    } else {
        BnEntry *e = bn_entry(bn);
        const float one = 1.0f, zero = 0.0f;
        CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
            cu_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, e->x, x, e->x, y, e->param, gamma,
            beta, bn->momentum, running_mean, running_var, bn->eps, save_mean, save_invstd));
    }
    count_batch_kernel<<<1, 1, 0, cu_stream()>>>(num_batches_tracked);
    CU_AFTER("batchnorm forward train");
}

void cu_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float *y)
{
    BnEntry *e = bn_entry(bn);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(cu_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one,
                                                        &zero, e->x, x, e->x, y, e->param, gamma,
                                                        beta, running_mean, running_var, bn->eps));
    CU_AFTER("batchnorm forward eval");
}

void cu_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_invstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta)
{
    if (dx && !cu_bn_own) {
        BnEntry *e = bn_entry(bn);
        const float one = 1.0f;
        CUDNN_CHECK(cudnnBatchNormalizationBackward(
            cu_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &one, &one, &one, e->x, x, e->x, dy, e->x,
            dx, e->param, gamma, dgamma, dbeta, bn->eps, save_mean, save_invstd));
    } else {
        RowPlan p = row_plan(bn);
        param_grads(bn, &p, x, save_mean, save_invstd, NULL, dy, dgamma, dbeta);
        if (dx) {
            size_t n = p.m * bn->c;
            train_dx_kernel<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(
                n, bn->c, (float)p.m, x, dy, save_mean, save_invstd, gamma, p.sums, dx);
        }
    }
    CU_AFTER("batchnorm backward train");
}

void cu_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var,
                                const float *dy, float *dx, float *dgamma, float *dbeta)
{
    RowPlan p = row_plan(bn);
    param_grads(bn, &p, x, running_mean, NULL, running_var, dy, dgamma, dbeta);
    if (dx) {
        size_t n = (size_t)bn->n * bn->c * bn->h * bn->w;
        eval_dx_kernel<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(n, bn->c, gamma, running_var,
                                                                   bn->eps, dy, dx);
    }
    CU_AFTER("batchnorm backward eval");
}

void cu_norm_release(void)
{
    while (entries) {
        BnEntry *e = entries;
        entries = e->next;
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->x));
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->param));
        free(e);
    }
    cu_free(partial);
    partial = NULL;
    partial_len = 0;
    CU_AFTER("norm release");
}
