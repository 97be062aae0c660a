/* layout_act.cu: layout conversion (NCHW <-> NHWC) and pointwise activations, forward and
 * backward (see cuda_be.h, backend.h).
 *
 * The conversion is a batched matrix transpose through a shared-memory tile, so both the read
 * and the write of every warp are coalesced. Activations follow lib/nn/ref/act.c operation by
 * operation: ternaries rather than fminf/fmaxf (NaN passes through relu and relu6, as in ref)
 * and products rounded before they are added (__fmul_rn: nvcc would otherwise fuse
 * dx + dy * g into one FMA and differ from ref in the last bit). Only sigmoid and silu can
 * differ from ref, by CUDA's expf (2 ulp). */
#include "lib/nn/cuda/cu_core.cuh"

enum { TILE = 32, TILE_ROWS = 8, THREADS = 256 };

/* x: (N, R, Cc) -> y: (N, Cc, R). One block per 32x32 tile of one image; blockIdx.x runs over
 * the tiles of an image (row tiles times column tiles), blockIdx.y over images. */
__global__ void transpose_kernel(int n, int rows, int cols, const float *__restrict__ x,
                                 float *__restrict__ y)
{
    __shared__ float tile[TILE][TILE + 1]; /* +1: no bank conflicts on the transposed read */
    int col_tiles = (cols + TILE - 1) / TILE;
    int r0 = (int)(blockIdx.x / col_tiles) * TILE;
    int c0 = (int)(blockIdx.x % col_tiles) * TILE;
    size_t plane = (size_t)rows * cols;
    for (int b = blockIdx.y; b < n; b += gridDim.y) {
        const float *xb = x + (size_t)b * plane;
        float *yb = y + (size_t)b * plane;
        for (int i = threadIdx.y; i < TILE; i += TILE_ROWS) {
            int r = r0 + i, c = c0 + threadIdx.x;
            if (r < rows && c < cols)
                tile[i][threadIdx.x] = xb[(size_t)r * cols + c];
        }
        __syncthreads();
        for (int i = threadIdx.y; i < TILE; i += TILE_ROWS) {
            int c = c0 + i, r = r0 + threadIdx.x;
            if (r < rows && c < cols)
                yb[(size_t)c * rows + r] = tile[threadIdx.x][i];
        }
        __syncthreads(); /* the tile is refilled for the next image */
    }
}

static void transpose(int n, int rows, int cols, const float *x, float *y)
{
    if ((size_t)n * rows * cols == 0)
        return;
    unsigned tiles = (unsigned)((rows + TILE - 1) / TILE) * (unsigned)((cols + TILE - 1) / TILE);
    dim3 grid(tiles, n < 65535 ? n : 65535);
    transpose_kernel<<<grid, dim3(TILE, TILE_ROWS), 0, cu_stream()>>>(n, rows, cols, x, y);
}

/* x: (N,C,HW) NCHW -> y: (N,HW,C) NHWC. */
void cu_to_layout(int n, int c, int hw, const float *x, float *y)
{
    transpose(n, c, hw, x, y);
    CU_AFTER("to_layout");
}

/* x: (N,HW,C) NHWC -> y: (N,C,HW) NCHW. */
void cu_from_layout(int n, int c, int hw, const float *x, float *y)
{
    transpose(n, hw, c, x, y);
    CU_AFTER("from_layout");
}

// --- activations -----------------------------------------------------------------------------

__device__ __forceinline__ float relu6(float v)
{
    return v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
}

__device__ __forceinline__ float sigmoid(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

template <NnAct A> __device__ __forceinline__ float act(float v)
{
    switch (A) {
    case NN_RELU: return v < 0.0f ? 0.0f : v;
    case NN_RELU6: return relu6(v);
    case NN_HARDSWISH: return __fmul_rn(v, relu6(v + 3.0f)) / 6.0f;
    case NN_HARDSIGMOID: return relu6(v + 3.0f) / 6.0f;
    case NN_SILU: return __fmul_rn(v, sigmoid(v));
    case NN_SIGMOID: return sigmoid(v);
    }
    return v;
}

/* d act(v) / dv times g, PyTorch's values at the kinks (backend.h). */
template <NnAct A> __device__ __forceinline__ float act_grad(float v, float g)
{
    switch (A) {
    case NN_RELU: return v > 0.0f ? g : 0.0f;
    case NN_RELU6: return v > 0.0f && v < 6.0f ? g : 0.0f;
    case NN_HARDSWISH:
        if (v < -3.0f)
            return 0.0f;
        return v <= 3.0f ? __fmul_rn(g, v / 3.0f + 0.5f) : g;
    case NN_HARDSIGMOID: return v > -3.0f && v < 3.0f ? g / 6.0f : 0.0f;
    case NN_SILU: {
        float s = sigmoid(v);
        return __fmul_rn(__fmul_rn(g, s), 1.0f + __fmul_rn(v, 1.0f - s));
    }
    case NN_SIGMOID: {
        float s = sigmoid(v);
        return __fmul_rn(__fmul_rn(g, s), 1.0f - s);
    }
    }
    return g;
}

/* y may equal x: no __restrict__. */
template <NnAct A> __global__ void act_forward_kernel(size_t n, const float *x, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = act<A>(x[i]);
}

template <NnAct A>
__global__ void act_backward_kernel(size_t n, const float *__restrict__ x,
                                    const float *__restrict__ dy, float *__restrict__ dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dx[i] += act_grad<A>(x[i], dy[i]);
}

template <NnAct A> static void act_forward(size_t n, const float *x, float *y)
{
    act_forward_kernel<A><<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(n, x, y);
}

template <NnAct A> static void act_backward(size_t n, const float *x, const float *dy, float *dx)
{
    act_backward_kernel<A><<<cu_blocks(n, THREADS), THREADS, 0, cu_stream()>>>(n, x, dy, dx);
}

/* x, y: (n); y may equal x. */
void cu_act_forward(NnAct a, size_t n, const float *x, float *y)
{
    if (n) {
        switch (a) {
        case NN_RELU: act_forward<NN_RELU>(n, x, y); break;
        case NN_RELU6: act_forward<NN_RELU6>(n, x, y); break;
        case NN_HARDSWISH: act_forward<NN_HARDSWISH>(n, x, y); break;
        case NN_HARDSIGMOID: act_forward<NN_HARDSIGMOID>(n, x, y); break;
        case NN_SILU: act_forward<NN_SILU>(n, x, y); break;
        case NN_SIGMOID: act_forward<NN_SIGMOID>(n, x, y); break;
        }
    }
    CU_AFTER("act forward");
}

/* x: (n) the forward input, dy: (n); dx += (n). */
void cu_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx)
{
    if (n) {
        switch (a) {
        case NN_RELU: act_backward<NN_RELU>(n, x, dy, dx); break;
        case NN_RELU6: act_backward<NN_RELU6>(n, x, dy, dx); break;
        case NN_HARDSWISH: act_backward<NN_HARDSWISH>(n, x, dy, dx); break;
        case NN_HARDSIGMOID: act_backward<NN_HARDSIGMOID>(n, x, dy, dx); break;
        case NN_SILU: act_backward<NN_SILU>(n, x, dy, dx); break;
        case NN_SIGMOID: act_backward<NN_SIGMOID>(n, x, dy, dx); break;
        }
    }
    CU_AFTER("act backward");
}
