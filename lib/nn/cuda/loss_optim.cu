/* loss_optim.cu: softmax cross-entropy (forward, backward) and the optimizer steps (AdamW,
 * SGD, RMSprop) (see cuda_be.h, backend.h).
 *
 * Cross-entropy is lib/nn/ref/loss.c's, in double: forward runs in one block (a warp per row,
 * rows dealt to warps in a fixed order, fixed shuffle trees, warps summed in order by one
 * thread), so the loss is the same to the bit from run to run; its three sums come back to
 * the host, which finishes the formula exactly as ref does. N and K are small (a batch of
 * logits), so one block is plenty. Backward first sums the target weights W and the class
 * weights (one warp), then adds each logit's gradient in one elementwise pass.
 *
 * The optimizers are one elementwise kernel per call with ref's operations in ref's order, in
 * double, rounded once; constants (bias corrections) come from the host in double, computed
 * as ref computes them. Every product that feeds an add or subtract is an explicit __dmul_rn
 * (and the add an explicit __dadd_rn / __dsub_rn): nvcc would otherwise fuse them into FMAs,
 * which ref (x86-64, no contraction) never does, so the updates equal ref's to the bit. */
#include "lib/nn/cuda/cu_core.cuh"

#include <cmath>

enum { THREADS = 256, XENT_THREADS = 512, XENT_WARPS = XENT_THREADS / 32 };

#define GRID_STRIDE(i, total)                                                                      \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (total);                    \
         i += (size_t)gridDim.x * blockDim.x)

// --- cross-entropy ---------------------------------------------------------------------------

/* Forward's sums (nll, smooth, W) for the host; backward's (W, sum of class weights). One
 * stream orders every use, so one copy of each serves all calls. */
__device__ double xent_sums[3];
__device__ double xent_wsums[2];

/* Sum over a warp by a xor butterfly: every lane gets the same value, in a fixed order. */
__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double class_weight(const float *weight, int c)
{
    return weight ? weight[c] : 1.0;
}

/* logits, probs: (N,K), target: (N), weight: (K) or NULL. One block; warp w takes rows w,
 * w + XENT_WARPS, ... Writes probs = softmax(logits) and xent_sums = (sum_i -w_y log p_y,
 * sum_i sum_c -w_c log p_c, sum_i w_y). */
__global__ void xent_forward_kernel(int n, int k, const float *__restrict__ logits,
                                    const int *__restrict__ target,
                                    const float *__restrict__ weight, float *__restrict__ probs)
{
    __shared__ double part[3][XENT_WARPS];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    double nll = 0.0, smooth = 0.0, wsum = 0.0;
    for (int i = warp; i < n; i += XENT_WARPS) {
        const float *z = logits + (size_t)i * k;
        float *p = probs + (size_t)i * k;
        float zmax = z[0];
        for (int c = lane; c < k; c += 32)
            zmax = z[c] > zmax ? z[c] : zmax;
        for (int o = 16; o > 0; o >>= 1) {
            float other = __shfl_xor_sync(0xffffffffu, zmax, o);
            zmax = other > zmax ? other : zmax;
        }
        double sum = 0.0;
        for (int c = lane; c < k; c += 32)
            sum += exp((double)z[c] - zmax);
        double lse = zmax + log(warp_sum(sum));
        for (int c = lane; c < k; c += 32) {
            double logp = z[c] - lse;
            p[c] = (float)exp(logp);
            smooth -= class_weight(weight, c) * logp;
        }
        if (lane == 0) {
            int t = target[i];
            nll -= class_weight(weight, t) * (z[t] - lse);
            wsum += class_weight(weight, t);
        }
    }
    smooth = warp_sum(smooth);
    if (lane == 0) {
        part[0][warp] = nll;
        part[1][warp] = smooth;
        part[2][warp] = wsum;
    }
    __syncthreads();
    if (threadIdx.x < 3) {
        double total = 0.0;
        for (int w = 0; w < XENT_WARPS; w++)
            total += part[threadIdx.x][w];
        xent_sums[threadIdx.x] = total;
    }
}

/* xent_wsums = (W = sum_i w[target_i], sum_c w[c]); one warp. */
__global__ void xent_wsums_kernel(int n, int k, const int *__restrict__ target,
                                  const float *__restrict__ weight)
{
    double w = 0.0, wc = 0.0;
    for (int i = threadIdx.x; i < n; i += 32)
        w += class_weight(weight, target[i]);
    for (int c = threadIdx.x; c < k; c += 32)
        wc += class_weight(weight, c);
    w = warp_sum(w);
    wc = warp_sum(wc);
    if (threadIdx.x == 0) {
        xent_wsums[0] = w;
        xent_wsums[1] = wc;
    }
}

/* dlogits: (N,K) += dloss ((1 - s) w_y (p_j - [j = y]) + (s / K) (p_j sum_c w_c - w_j)) / W,
 * ref's expression term by term (p_j - [j = y] in float, as there). */
__global__ void xent_backward_kernel(int n, int k, const float *__restrict__ probs,
                                     const int *__restrict__ target,
                                     const float *__restrict__ weight, double one_minus_s,
                                     double s_over_k, float dloss, float *__restrict__ dlogits)
{
    double w = xent_wsums[0], wsum = xent_wsums[1];
    GRID_STRIDE(i, (size_t)n * k)
    {
        int row = (int)(i / k), c = (int)(i % k);
        int t = target[row];
        float p = probs[i];
        double hit = __dmul_rn(__dmul_rn(one_minus_s, class_weight(weight, t)),
                               (double)(p - (float)(c == t)));
        double spread =
            __dmul_rn(s_over_k, __dsub_rn(__dmul_rn((double)p, wsum), class_weight(weight, c)));
        dlogits[i] += (float)(__dmul_rn((double)dloss, __dadd_rn(hit, spread)) / w);
    }
}

float cu_xent_forward(const NnXent *x, const float *logits, const int *target, const float *weight,
                      float *probs)
{
    xent_forward_kernel<<<1, XENT_THREADS, 0, cu_stream()>>>(x->n, x->k, logits, target, weight,
                                                             probs);
    double sums[3];
    CU_CHECK(cudaMemcpyFromSymbolAsync(sums, xent_sums, sizeof sums, 0, cudaMemcpyDeviceToHost,
                                       cu_stream()));
    CU_CHECK(cudaStreamSynchronize(cu_stream()));
    double s = x->smoothing;
    float loss = (float)((1.0 - s) * sums[0] / sums[2] + s / x->k * sums[1] / sums[2]);
    CU_AFTER("xent forward");
    return loss;
}

void cu_xent_backward(const NnXent *x, const float *probs, const int *target, const float *weight,
                      float dloss, float *dlogits)
{
    double s = x->smoothing;
    size_t total = (size_t)x->n * x->k;
    xent_wsums_kernel<<<1, 32, 0, cu_stream()>>>(x->n, x->k, target, weight);
    xent_backward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(
        x->n, x->k, probs, target, weight, 1.0 - s, s / x->k, dloss, dlogits);
    CU_AFTER("xent backward");
}

// --- optimizers ------------------------------------------------------------------------------

/* p, g, m, v: (n). ref_adamw_step's update. */
__global__ void adamw_kernel(size_t n, double shrink, double beta1, double beta2, double step_size,
                             double bc2_sqrt, double eps, float *__restrict__ p,
                             const float *__restrict__ g, float *__restrict__ m,
                             float *__restrict__ v)
{
    double one_b1 = 1.0 - beta1, one_b2 = 1.0 - beta2;
    GRID_STRIDE(i, n)
    {
        double gi = g[i];
        double pi = __dmul_rn((double)p[i], shrink); /* decoupled decay */
        float mi = (float)__dadd_rn(__dmul_rn(beta1, (double)m[i]), __dmul_rn(one_b1, gi));
        float vi =
            (float)__dadd_rn(__dmul_rn(beta2, (double)v[i]), __dmul_rn(__dmul_rn(one_b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        /* eps outside the square root, after bias correction */
        double denom = __dadd_rn(sqrt((double)vi) / bc2_sqrt, eps);
        p[i] = (float)__dsub_rn(pi, __dmul_rn(step_size, (double)mi) / denom);
    }
}

/* p, g: (n), buf: (n) or NULL (momentum 0). ref_sgd_step's update. */
__global__ void sgd_kernel(size_t n, double lr, double wd, double momentum, int first, int nesterov,
                           float *__restrict__ p, const float *__restrict__ g,
                           float *__restrict__ buf)
{
    GRID_STRIDE(i, n)
    {
        double d = __dadd_rn((double)g[i], __dmul_rn(wd, (double)p[i]));
        if (buf) {
            /* PyTorch starts the buffer at the first gradient, not at zero */
            float b = (float)(first ? d : __dadd_rn(__dmul_rn(momentum, (double)buf[i]), d));
            buf[i] = b;
            d = nesterov ? __dadd_rn(d, __dmul_rn(momentum, (double)b)) : b;
        }
        p[i] = (float)__dsub_rn((double)p[i], __dmul_rn(lr, d));
    }
}

/* p, g, sq: (n), buf: (n) or NULL (momentum 0). ref_rmsprop_step's update. */
__global__ void rmsprop_kernel(size_t n, double lr, double alpha, double eps, double wd,
                               double momentum, float *__restrict__ p, const float *__restrict__ g,
                               float *__restrict__ sq, float *__restrict__ buf)
{
    double one_a = 1.0 - alpha;
    GRID_STRIDE(i, n)
    {
        double d = __dadd_rn((double)g[i], __dmul_rn(wd, (double)p[i]));
        float s =
            (float)__dadd_rn(__dmul_rn(alpha, (double)sq[i]), __dmul_rn(__dmul_rn(one_a, d), d));
        sq[i] = s;
        double avg = __dadd_rn(sqrt((double)s), eps); /* eps outside the square root */
        if (buf) {
            float b = (float)__dadd_rn(__dmul_rn(momentum, (double)buf[i]), d / avg);
            buf[i] = b;
            p[i] = (float)__dsub_rn((double)p[i], __dmul_rn(lr, (double)b));
        } else {
            p[i] = (float)__dsub_rn((double)p[i], __dmul_rn(lr, d) / avg);
        }
    }
}

void cu_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                   float *m, float *v)
{
    double shrink = 1.0 - h->lr * (decay ? h->weight_decay : 0.0);
    double step_size = h->lr / (1.0 - pow(h->beta1, (double)step));
    double bc2_sqrt = sqrt(1.0 - pow(h->beta2, (double)step));
    if (n)
        adamw_kernel<<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(
            n, shrink, h->beta1, h->beta2, step_size, bc2_sqrt, h->eps, p, g, m, v);
    CU_AFTER("adamw step");
}

void cu_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                 float *buf)
{
    double wd = decay ? h->weight_decay : 0.0;
    if (n)
        sgd_kernel<<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(
            n, h->lr, wd, h->momentum, step <= 1, h->nesterov, p, g,
            h->momentum != 0.0 ? buf : NULL);
    CU_AFTER("sgd step");
}

void cu_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g, float *sq,
                     float *buf)
{
    double wd = decay ? h->weight_decay : 0.0;
    if (n)
        rmsprop_kernel<<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(
            n, h->lr, h->alpha, h->eps, wd, h->momentum, p, g, sq, h->momentum > 0.0 ? buf : NULL);
    CU_AFTER("rmsprop step");
}
