/* conv_own.cu: the two convolution shapes that cuDNN's legacy API runs slowly in fp32 NHWC,
 * done here instead (conv.cu dispatches; ONFH_CUDA_CONV=cudnn sends everything to cuDNN):
 *
 *   pointwise (1x1, no padding, groups 1): in NHWC this is a matrix product over pixels, so it
 *     goes to cuBLAS. x (M, Cin) with M = N Ho Wo pixels (after taking every stride-th pixel),
 *     w (Cout, Cin) (OIHW with 1x1 kernels), y (M, Cout):
 *       y = x w^T,   dx += dy w,   dw += dy^T x.
 *     On an H200 cuDNN's fp32 backward for resnet50's 1x1 convolutions took 29-73 ms a call
 *     (its only deterministic FMA algorithms), about 80% of a step (README).
 *     With a stride, the sampled pixels of x are gathered into the workspace first, and dx's
 *     product lands in the workspace and is scattered back (each pixel of dx is hit once).
 *
 *   depthwise (groups = Cin = Cout, kernels 3x3 or 5x5): direct kernels, one thread per output
 *     (forward) or input (backward data) element with channels fastest, so a warp reads 32
 *     neighbouring channels of one pixel; dw is a deterministic two-stage sum over the M output
 *     pixels: block (t, r) sums rows [r chunk, (r+1) chunk) of the 32 channels of tile t for all
 *     KH KW taps in a fixed order into partial (R, KH KW, C), then a second kernel adds the R
 *     partials of each tap in order. R depends on the shape only, so runs repeat bit for bit.
 *
 * Every backward adds into dx and dw (the backend contract); biases stay with conv.cu. */
#include "lib/nn/cuda/cu_core.cuh"

enum { TILE = 32, LANES = 8, MOST_BLOCKS = 2048 };

int cu_conv_own_path(const NnConv2d *c)
{
    size_t in = (size_t)c->n * c->c_in * c->h_in * c->w_in;
    size_t out = (size_t)c->n * c->c_out * c->h_out * c->w_out;
    if (in >= (1u << 31) || out >= (1u << 31)) /* the kernels index in 32 bits */
        return CU_CONV_CUDNN;
    if (c->kh == 1 && c->kw == 1 && c->pad_h == 0 && c->pad_w == 0 && c->groups == 1)
        return CU_CONV_GEMM;
    if (c->groups == c->c_in && c->c_out == c->c_in &&
        ((c->kh == 3 && c->kw == 3) || (c->kh == 5 && c->kw == 5)))
        return CU_CONV_DEPTHWISE;
    return CU_CONV_CUDNN;
}

static int strided(const NnConv2d *c)
{
    return c->stride_h != 1 || c->stride_w != 1;
}

/* Depthwise: how the M output pixels are cut for dw's sums (R parts of `chunk` rows). */
static void dw_rows(const NnConv2d *c, size_t *rparts, size_t *chunk)
{
    size_t m = (size_t)c->n * c->h_out * c->w_out;
    size_t tiles = (c->c_in + TILE - 1) / TILE;
    size_t r = (m + 255) / 256, most = MOST_BLOCKS / tiles;
    if (r > most)
        r = most;
    if (r < 1)
        r = 1;
    *rparts = r;
    *chunk = (m + r - 1) / r;
}

static size_t round256(size_t bytes)
{
    return (bytes + 255) / 256 * 256;
}

/* Workspace: pointwise with a stride, the gathered pixels (M, Cin); depthwise, the filter as
 * (KH, KW, C) and then dw's partial sums (R, KH KW, C). */
size_t cu_conv_own_workspace(const NnConv2d *c, int path)
{
    if (path == CU_CONV_GEMM)
        return strided(c) ? (size_t)c->n * c->h_out * c->w_out * c->c_in * sizeof(float) : 0;
    size_t r, chunk, kk = (size_t)c->kh * c->kw;
    dw_rows(c, &r, &chunk);
    return round256(kk * c->c_in * sizeof(float)) + r * kk * c->c_in * sizeof(float);
}

// --- pointwise ---------------------------------------------------------------------------------

/* xs (N Ho Wo, C) = every (stride_h, stride_w)-th pixel of x (N H W, C) */
static __global__ void gather_kernel(unsigned total, int c, int ho, int wo, int h, int w, int sh,
                                     int sw, const float *x, float *xs)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        unsigned ch = i % c, p = i / c;
        unsigned ow = p % wo, oh = p / wo % ho, n = p / wo / ho;
        xs[i] = x[((size_t)(n * h + oh * sh) * w + ow * sw) * c + ch];
    }
}

/* dx (N H W, C) += dxs (N Ho Wo, C) at the sampled pixels */
static __global__ void scatter_add_kernel(unsigned total, int c, int ho, int wo, int h, int w,
                                          int sh, int sw, const float *dxs, float *dx)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        unsigned ch = i % c, p = i / c;
        unsigned ow = p % wo, oh = p / wo % ho, n = p / wo / ho;
        dx[((size_t)(n * h + oh * sh) * w + ow * sw) * c + ch] += dxs[i];
    }
}

static const float *pointwise_input(const NnConv2d *c, const float *x, void *workspace)
{
    if (!strided(c))
        return x;
    unsigned total = (unsigned)((size_t)c->n * c->h_out * c->w_out * c->c_in);
    gather_kernel<<<cu_blocks(total, 256), 256, 0, cu_stream()>>>(
        total, c->c_in, c->h_out, c->w_out, c->h_in, c->w_in, c->stride_h, c->stride_w, x,
        (float *)workspace);
    return (const float *)workspace;
}

/* Row-major (r, k) matrices are cuBLAS's column-major (k, r) ones: see linear.cu. */
static void pointwise_forward(const NnConv2d *c, const float *x, const float *w, float *y,
                              void *workspace)
{
    int m = c->n * c->h_out * c->w_out;
    const float one = 1.0f, zero = 0.0f;
    const float *xs = pointwise_input(c, x, workspace);
    CUBLAS_CHECK(cublasSgemm(cu_cublas(), CUBLAS_OP_T, CUBLAS_OP_N, c->c_out, m, c->c_in, &one, w,
                             c->c_in, xs, c->c_in, &zero, y, c->c_out));
}

static void pointwise_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                               float *dx, float *dw, void *workspace)
{
    int m = c->n * c->h_out * c->w_out;
    cublasHandle_t h = cu_cublas();
    const float one = 1.0f, zero = 0.0f;
    const float *xs = pointwise_input(c, x, workspace);
    /* dw (Cout, Cin) += dy^T (Cout, M) xs (M, Cin) */
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, c->c_in, c->c_out, m, &one, xs, c->c_in,
                             dy, c->c_out, &one, dw, c->c_in));
    if (!dx)
        return;
    if (!strided(c)) { /* dx (M, Cin) += dy (M, Cout) w (Cout, Cin) */
        CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, c->c_in, m, c->c_out, &one, w,
                                 c->c_in, dy, c->c_out, &one, dx, c->c_in));
        return;
    }
    float *dxs = (float *)workspace; /* xs is used up: its place takes the sampled dx */
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, c->c_in, m, c->c_out, &one, w, c->c_in,
                             dy, c->c_out, &zero, dxs, c->c_in));
    unsigned total = (unsigned)((size_t)m * c->c_in);
    scatter_add_kernel<<<cu_blocks(total, 256), 256, 0, cu_stream()>>>(
        total, c->c_in, c->h_out, c->w_out, c->h_in, c->w_in, c->stride_h, c->stride_w, dxs, dx);
}

// --- depthwise ---------------------------------------------------------------------------------

/* The geometry every depthwise kernel needs, passed by value. */
typedef struct DwShape {
    int n, c, h, w, ho, wo, sh, sw, ph, pw, dh, dw;
} DwShape;

static DwShape dw_shape(const NnConv2d *c)
{
    return (DwShape){c->n,        c->c_in,     c->h_in,  c->w_in,  c->h_out, c->w_out,
                     c->stride_h, c->stride_w, c->pad_h, c->pad_w, c->dil_h, c->dil_w};
}

/* wt (KH, KW, C) = w (C, 1, KH, KW): a warp's 32 channels then read one tap contiguously */
static __global__ void dw_filter_kernel(int c, int kk, const float *w, float *wt)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < c * kk; i += gridDim.x * blockDim.x)
        wt[(i % kk) * c + i / kk] = w[i];
}

/* y (N, Ho, Wo, C) = sum over taps of x at the tap's pixel times the tap's weight */
template <int KH, int KW>
static __global__ void dw_forward_kernel(unsigned total, DwShape s, const float *x, const float *wt,
                                         float *y)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        int ch = (int)(i % s.c);
        unsigned p = i / s.c;
        int ow = (int)(p % s.wo), oh = (int)(p / s.wo % s.ho), n = (int)(p / s.wo / s.ho);
        float acc = 0.0f;
#pragma unroll
        for (int r = 0; r < KH; r++) {
            int ih = oh * s.sh - s.ph + r * s.dh;
            if (ih < 0 || ih >= s.h)
                continue;
#pragma unroll
            for (int q = 0; q < KW; q++) {
                int iw = ow * s.sw - s.pw + q * s.dw;
                if (iw < 0 || iw >= s.w)
                    continue;
                acc = fmaf(x[((size_t)(n * s.h + ih) * s.w + iw) * s.c + ch],
                           wt[(r * KW + q) * s.c + ch], acc);
            }
        }
        y[i] = acc;
    }
}

/* dx (N, H, W, C) += sum over the taps that read this pixel of dy there times the weight */
template <int KH, int KW>
static __global__ void dw_backward_data_kernel(unsigned total, DwShape s, const float *dy,
                                               const float *wt, float *dx)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        int ch = (int)(i % s.c);
        unsigned p = i / s.c;
        int iw = (int)(p % s.w), ih = (int)(p / s.w % s.h), n = (int)(p / s.w / s.h);
        float acc = 0.0f;
#pragma unroll
        for (int r = 0; r < KH; r++) {
            int t = ih + s.ph - r * s.dh; /* = oh * sh */
            if (t < 0 || t % s.sh)
                continue;
            int oh = t / s.sh;
            if (oh >= s.ho)
                continue;
#pragma unroll
            for (int q = 0; q < KW; q++) {
                int u = iw + s.pw - q * s.dw;
                if (u < 0 || u % s.sw)
                    continue;
                int ow = u / s.sw;
                if (ow >= s.wo)
                    continue;
                acc = fmaf(dy[((size_t)(n * s.ho + oh) * s.wo + ow) * s.c + ch],
                           wt[(r * KW + q) * s.c + ch], acc);
            }
        }
        dx[i] += acc;
    }
}

/* partial[r][tap][c] = sum over output rows [r chunk, (r+1) chunk) of dy times x at the tap;
 * block (tile, r) of TILE x LANES threads, lanes summed in shared memory in a fixed order. */
template <int KH, int KW>
static __global__ void dw_filter_partial_kernel(DwShape s, unsigned m, unsigned chunk,
                                                const float *x, const float *dy, float *partial)
{
    __shared__ float sum[LANES][KH * KW][TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int ch = blockIdx.x * TILE + tx;
    unsigned begin = blockIdx.y * chunk, end = begin + chunk < m ? begin + chunk : m;
    float acc[KH * KW];
#pragma unroll
    for (int k = 0; k < KH * KW; k++)
        acc[k] = 0.0f;
    if (ch < s.c)
        for (unsigned p = begin + ty; p < end; p += LANES) {
            int ow = (int)(p % s.wo), oh = (int)(p / s.wo % s.ho), n = (int)(p / s.wo / s.ho);
            float g = dy[(size_t)p * s.c + ch];
#pragma unroll
            for (int r = 0; r < KH; r++) {
                int ih = oh * s.sh - s.ph + r * s.dh;
                if (ih < 0 || ih >= s.h)
                    continue;
#pragma unroll
                for (int q = 0; q < KW; q++) {
                    int iw = ow * s.sw - s.pw + q * s.dw;
                    if (iw < 0 || iw >= s.w)
                        continue;
                    acc[r * KW + q] =
                        fmaf(g, x[((size_t)(n * s.h + ih) * s.w + iw) * s.c + ch], acc[r * KW + q]);
                }
            }
        }
#pragma unroll
    for (int k = 0; k < KH * KW; k++)
        sum[ty][k][tx] = acc[k];
    __syncthreads();
    for (int half = LANES / 2; half > 0; half >>= 1) {
        if (ty < half)
#pragma unroll
            for (int k = 0; k < KH * KW; k++)
                sum[ty][k][tx] += sum[ty + half][k][tx];
        __syncthreads();
    }
    if (ty == 0 && ch < s.c)
#pragma unroll
        for (int k = 0; k < KH * KW; k++)
            partial[((size_t)blockIdx.y * KH * KW + k) * s.c + ch] = sum[0][k][tx];
}

/* dw (C, 1, KH, KW) += the R partials of each tap, added in order */
static __global__ void dw_filter_finish_kernel(int c, int kk, int rparts, const float *partial,
                                               float *dw)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < c * kk; i += gridDim.x * blockDim.x) {
        int ch = i / kk, k = i % kk;
        float a = 0.0f;
        for (int r = 0; r < rparts; r++)
            a += partial[((size_t)r * kk + k) * c + ch];
        dw[i] += a;
    }
}

static const float *dw_filter(const NnConv2d *c, const float *w, void *workspace)
{
    int kk = c->kh * c->kw;
    float *wt = (float *)workspace;
    dw_filter_kernel<<<cu_blocks((size_t)c->c_in * kk, 256), 256, 0, cu_stream()>>>(c->c_in, kk, w,
                                                                                    wt);
    return wt;
}

template <int KH, int KW>
static void depthwise_forward(const NnConv2d *c, const float *x, const float *w, float *y,
                              void *workspace)
{
    const float *wt = dw_filter(c, w, workspace);
    unsigned total = (unsigned)((size_t)c->n * c->h_out * c->w_out * c->c_in);
    dw_forward_kernel<KH, KW>
        <<<cu_blocks(total, 256), 256, 0, cu_stream()>>>(total, dw_shape(c), x, wt, y);
}

template <int KH, int KW>
static void depthwise_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                               float *dx, float *dw, void *workspace)
{
    int kk = KH * KW;
    size_t rparts, chunk;
    dw_rows(c, &rparts, &chunk);
    float *partial = (float *)((char *)workspace + round256((size_t)kk * c->c_in * sizeof(float)));
    unsigned m = (unsigned)((size_t)c->n * c->h_out * c->w_out);
    dim3 grid((unsigned)((c->c_in + TILE - 1) / TILE), (unsigned)rparts), block(TILE, LANES);
    dw_filter_partial_kernel<KH, KW>
        <<<grid, block, 0, cu_stream()>>>(dw_shape(c), m, (unsigned)chunk, x, dy, partial);
    dw_filter_finish_kernel<<<cu_blocks((size_t)c->c_in * kk, 256), 256, 0, cu_stream()>>>(
        c->c_in, kk, (int)rparts, partial, dw);
    if (dx) {
        const float *wt = dw_filter(c, w, workspace);
        unsigned total = (unsigned)((size_t)c->n * c->h_in * c->w_in * c->c_in);
        dw_backward_data_kernel<KH, KW>
            <<<cu_blocks(total, 256), 256, 0, cu_stream()>>>(total, dw_shape(c), dy, wt, dx);
    }
}

void cu_conv_own_forward(int path, const NnConv2d *c, const float *x, const float *w, float *y,
                         void *workspace)
{
    if (path == CU_CONV_GEMM)
        pointwise_forward(c, x, w, y, workspace);
    else if (c->kh == 3)
        depthwise_forward<3, 3>(c, x, w, y, workspace);
    else
        depthwise_forward<5, 5>(c, x, w, y, workspace);
}

void cu_conv_own_backward(int path, const NnConv2d *c, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, void *workspace)
{
    if (path == CU_CONV_GEMM)
        pointwise_backward(c, x, w, dy, dx, dw, workspace);
    else if (c->kh == 3)
        depthwise_backward<3, 3>(c, x, w, dy, dx, dw, workspace);
    else
        depthwise_backward<5, 5>(c, x, w, dy, dx, dw, workspace);
}
