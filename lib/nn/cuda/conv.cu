/* conv.cu: 2-D convolution (dense, grouped, depthwise) on cuDNN's legacy convolution API, and
 * the bias kernels conv and linear share (cu_core.cuh).
 *
 * x: (N,Cin,H,W) and y: (N,Cout,Ho,Wo) are NHWC; w: (Cout,Cin/groups,KH,KW) is PyTorch's dense
 * OIHW. cuDNN gets the filter channels last too, OHWI (its NHWC filter format), copied into the
 * workspace per call, and dw comes back OHWI and is added into OIHW: cuDNN 9.19 on an H200 has
 * no fp32 backward-data algorithm at all for NHWC activations with an NCHW filter (seen on the
 * first GPU run), and filters are small beside activations. Cross-correlation, fp32 in and
 * out, CUDNN_FMA_MATH:
 * cuDNN's default math type lets fp32 convolutions round their inputs to TF32 on sm_80 and
 * newer, and fp32 here means fp32 (cuBLAS likewise, core.cu). With ONFH_CUDA_MATH=tf32 the
 * tensor-core algorithms are allowed too, each pass run in the math type cuDNN ranked it with.
 *
 * Each distinct NnConv2d gets, once, its descriptors and three algorithms (forward, backward
 * data, backward filter) from cuDNN's heuristics (the _v7 queries: no benchmarking, since the
 * graph plans the workspace before any buffer exists). Policy, for each of the three: walk
 * cuDNN's ranking and take the first algorithm that is supported, runs in FMA math, needs at
 * most WS_CAP bytes of workspace and is deterministic; only if none is deterministic, the first
 * that passes the other tests. The nondeterministic backward algorithms (data ALGO_0,
 * filter ALGO_0 and ALGO_3) sum with atomics, and runs must repeat bit for bit.
 *
 * Backward accumulates through cuDNN's blending, beta = 1: dx += ..., dw += .... The bias is
 * added by a kernel after the convolution, and its gradient is a column sum of dy viewed as
 * (N Ho Wo, Cout): a gemv against a vector of ones, which cuBLAS computes the same way every
 * run (its reproducibility rules: one stream, no atomics mode). */
#include "lib/nn/cuda/cu_core.cuh"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static const size_t WS_CAP = (size_t)256 << 20;

typedef struct ConvEntry {
    NnConv2d c;                   /* the key: every field */
    cudnnTensorDescriptor_t x, y; /* NHWC (N,Cin,H,W), (N,Cout,Ho,Wo); also dx, dy */
    cudnnFilterDescriptor_t w;    /* OHWI (Cout,KH,KW,Cin/groups): the workspace copies */
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math; /* set before each pass */
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;                /* bytes each algorithm needs */
    size_t w_bytes;      /* one OHWI filter copy, rounded up to 256 */
    int path;            /* CU_CONV_CUDNN, or conv_own.cu's GEMM or DEPTHWISE */
    double fwd_s, bwd_s; /* ONFH_CUDA_PROFILE=1: seconds in forward and backward */
    long calls;
    struct ConvEntry *next;
} ConvEntry;

enum { BUCKETS = 128 };
static ConvEntry *table[BUCKETS];

/* (rows) floats of 1.0 for cu_bias_grad's gemv, grown on demand. */
static float *ones;
static size_t ones_len;

static unsigned conv_hash(const NnConv2d *c)
{
    const unsigned char *p = (const unsigned char *)c;
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof *c; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % BUCKETS;
}

static void conv_name(const NnConv2d *c, char *buf, size_t len)
{
    snprintf(buf, len, "conv2d N%d C%d %dx%d -> C%d %dx%d k%dx%d s%d,%d p%d,%d d%d,%d g%d", c->n,
             c->c_in, c->h_in, c->w_in, c->c_out, c->h_out, c->w_out, c->kh, c->kw, c->stride_h,
             c->stride_w, c->pad_h, c->pad_w, c->dil_h, c->dil_w, c->groups);
}

/* Index into cuDNN's ranked list p[0..count) of the algorithm the policy above takes, or -1. */
template <typename Perf> static int pick(const Perf *p, int count)
{
    for (int want_det = cu_deterministic; want_det >= 0; want_det--)
        for (int i = 0; i < count; i++)
            if (p[i].status == CUDNN_STATUS_SUCCESS && p[i].memory <= WS_CAP &&
                (cu_tf32 || (p[i].mathType != CUDNN_TENSOR_OP_MATH &&
                             p[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) &&
                (!want_det || p[i].determinism == CUDNN_DETERMINISTIC))
                return i;
    return -1;
}

static void no_algo(const NnConv2d *c, const char *pass)
{
    char name[200], msg[320];
    conv_name(c, name, sizeof name);
    snprintf(msg, sizeof msg, "no supported fp32 %s algorithm within %zu MiB of workspace", pass,
             WS_CAP >> 20);
    cu_die("cuDNN", name, msg, __FILE__, __LINE__);
}

static ConvEntry *conv_create(const NnConv2d *c)
{
    cudnnHandle_t h = cu_cudnn();
    ConvEntry *e = (ConvEntry *)calloc(1, sizeof *e);
    if (!e)
        cu_die("host", "conv2d cache entry", "out of memory", __FILE__, __LINE__);
    e->c = *c;
    e->path = cu_conv_own ? cu_conv_own_path(c) : CU_CONV_CUDNN;
    if (e->path != CU_CONV_CUDNN)
        return e;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&e->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&e->conv));
    /* the dims are given as N,C,H,W whatever the format; the format sets the strides */
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->n, c->c_in,
                                           c->h_in, c->w_in));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->n,
                                           c->c_out, c->h_out, c->w_out));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, c->c_out,
                                           c->c_in / c->groups, c->kh, c->kw));
    size_t w_numel = (size_t)c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
    e->w_bytes = (w_numel * sizeof(float) + 255) / 256 * 256;
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(e->conv, c->pad_h, c->pad_w, c->stride_h,
                                                c->stride_w, c->dil_h, c->dil_w,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(e->conv, c->groups));
    CUDNN_CHECK(
        cudnnSetConvolutionMathType(e->conv, cu_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

    /* nn_conv2d_setup's output size must be cuDNN's, or the y descriptor lies */
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &on, &oc, &oh, &ow));
    if (on != c->n || oc != c->c_out || oh != c->h_out || ow != c->w_out) {
        char name[200], msg[120];
        conv_name(c, name, sizeof name);
        snprintf(msg, sizeof msg, "cuDNN computes output N%d C%d %dx%d", on, oc, oh, ow);
        cu_die("cuDNN", name, msg, __FILE__, __LINE__);
    }

    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    if (cu_conv_find)
        CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(
            h, e->x, e->w, e->conv, e->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fwd));
    else
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
            h, e->x, e->w, e->conv, e->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fwd));
    int i = pick(fwd, n);
    if (i < 0)
        no_algo(c, "forward");
    e->fwd = fwd[i].algo;
    e->fwd_math = cu_tf32 ? fwd[i].mathType : CUDNN_FMA_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->fwd_math));
    CUDNN_CHECK(
        cudnnGetConvolutionForwardWorkspaceSize(h, e->x, e->w, e->conv, e->y, e->fwd, &e->fwd_ws));

    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (cu_conv_find)
        CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(
            h, e->w, e->y, e->conv, e->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, bd));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            h, e->w, e->y, e->conv, e->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, bd));
    i = pick(bd, n);
    if (i < 0)
        no_algo(c, "backward-data");
    e->bwd_data = bd[i].algo;
    e->bwd_data_math = cu_tf32 ? bd[i].mathType : CUDNN_FMA_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->bwd_data_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, e->w, e->y, e->conv, e->x,
                                                             e->bwd_data, &e->bwd_data_ws));

    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (cu_conv_find)
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
            h, e->x, e->y, e->conv, e->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, bf));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, e->x, e->y, e->conv, e->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, bf));
    i = pick(bf, n);
    if (i < 0)
        no_algo(c, "backward-filter");
    e->bwd_filter = bf[i].algo;
    e->bwd_filter_math = cu_tf32 ? bf[i].mathType : CUDNN_FMA_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->bwd_filter_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, e->x, e->y, e->conv, e->w,
                                                               e->bwd_filter, &e->bwd_filter_ws));
    return e;
}

/* The cached entry of c, made on first sight. */
static ConvEntry *conv_entry(const NnConv2d *c)
{
    assert(c->ldy == 0); /* channel_views = 0: the graph never sets it */
    unsigned b = conv_hash(c);
    for (ConvEntry *e = table[b]; e; e = e->next)
        if (!memcmp(&e->c, c, sizeof *c))
            return e;
    ConvEntry *e = conv_create(c);
    e->next = table[b];
    table[b] = e;
    return e;
}

/* Workspace layout: [OHWI w | OHWI dw | the algorithm's scratch]. */
size_t cu_conv2d_workspace(const NnConv2d *c)
{
    ConvEntry *e = conv_entry(c);
    if (e->path != CU_CONV_CUDNN)
        return cu_conv_own_workspace(c, e->path);
    size_t ws = e->fwd_ws;
    if (e->bwd_data_ws > ws)
        ws = e->bwd_data_ws;
    if (e->bwd_filter_ws > ws)
        ws = e->bwd_filter_ws;
    CU_AFTER("conv2d workspace");
    return 2 * e->w_bytes + ws;
}

/* Element i of an OIHW filter (o, ci, r, s) and its place in OHWI. */
static __device__ size_t ohwi_index(size_t i, int ci_n, int kh, int kw)
{
    size_t s = i % kw, r = i / kw % kh, ci = i / ((size_t)kw * kh) % ci_n;
    size_t o = i / ((size_t)kw * kh * ci_n);
    return ((o * kh + r) * kw + s) * ci_n + ci;
}

/* w (O,I,KH,KW) -> wt (O,KH,KW,I) */
static __global__ void oihw_to_ohwi(size_t n, int ci_n, int kh, int kw, const float *w, float *wt)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        wt[ohwi_index(i, ci_n, kh, kw)] = w[i];
}

/* dw (O,I,KH,KW) += dwt (O,KH,KW,I) */
static __global__ void ohwi_add_to_oihw(size_t n, int ci_n, int kh, int kw, const float *dwt,
                                        float *dw)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dw[i] += dwt[ohwi_index(i, ci_n, kh, kw)];
}

static size_t filter_numel(const NnConv2d *c)
{
    return (size_t)c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
}

/* The OHWI copy of w at the start of the workspace. */
static float *filter_ohwi(const NnConv2d *c, const float *w, void *workspace)
{
    float *wt = (float *)workspace;
    size_t n = filter_numel(c);
    oihw_to_ohwi<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(n, c->c_in / c->groups, c->kh, c->kw,
                                                             w, wt);
    return wt;
}

void cu_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b, float *y,
                       void *workspace)
{
    ConvEntry *e = conv_entry(c);
    if (e->path != CU_CONV_CUDNN) {
        cu_conv_own_forward(e->path, c, x, w, y, workspace);
    } else {
        const float one = 1.0f, zero = 0.0f;
        const float *wt = filter_ohwi(c, w, workspace);
        void *scratch = (char *)workspace + 2 * e->w_bytes;
        CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->fwd_math));
        CUDNN_CHECK(cudnnConvolutionForward(cu_cudnn(), &one, e->x, x, e->w, wt, e->conv, e->fwd,
                                            scratch, e->fwd_ws, &zero, e->y, y));
    }
    if (b)
        cu_bias_add(c->n * c->h_out * c->w_out, c->c_out, b, y);
    CU_AFTER("conv2d forward");
    e->fwd_s += cu_profile_last();
    e->calls++;
}

void cu_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *workspace)
{
    ConvEntry *e = conv_entry(c);
    cudnnHandle_t h = cu_cudnn();
    const float one = 1.0f, zero = 0.0f;
    float *dwt = (float *)((char *)workspace + e->w_bytes);
    void *scratch = (char *)workspace + 2 * e->w_bytes;
    if (db)
        cu_bias_grad(c->n * c->h_out * c->w_out, c->c_out, dy, db);
    if (e->path != CU_CONV_CUDNN) {
        cu_conv_own_backward(e->path, c, x, w, dy, dx, dw, workspace);
        CU_AFTER("conv2d backward");
        e->bwd_s += cu_profile_last();
        return;
    }
    /* dwt (Cout,KH,KW,Cin/g) = x (N,Cin,H,W) correlated with dy (N,Cout,Ho,Wo); dw += it */
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->bwd_filter_math));
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, e->x, x, e->y, dy, e->conv, e->bwd_filter,
                                               scratch, e->bwd_filter_ws, &zero, e->w, dwt));
    size_t n = filter_numel(c);
    ohwi_add_to_oihw<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(n, c->c_in / c->groups, c->kh,
                                                                 c->kw, dwt, dw);
    /* dx (N,Cin,H,W) += dy convolved with w transposed */
    if (dx) {
        const float *wt = filter_ohwi(c, w, workspace);
        CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->bwd_data_math));
        CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, e->w, wt, e->y, dy, e->conv, e->bwd_data,
                                                 scratch, e->bwd_data_ws, &one, e->x, dx));
    }
    CU_AFTER("conv2d backward");
    e->bwd_s += cu_profile_last();
}

void cu_conv_profile_reset(void)
{
    for (int b = 0; b < BUCKETS; b++)
        for (ConvEntry *e = table[b]; e; e = e->next)
            e->fwd_s = e->bwd_s = 0, e->calls = 0;
}

/* The 20 shapes with the most forward + backward time, slowest first, with their algorithms. */
void cu_conv_profile_print(void)
{
    double total = 0;
    for (int b = 0; b < BUCKETS; b++)
        for (ConvEntry *e = table[b]; e; e = e->next)
            total += e->fwd_s + e->bwd_s;
    fprintf(stderr, "convolutions by shape (%.3f s in all; algorithms fwd/bwd data/bwd filter):\n",
            total);
    for (int k = 0; k < 20; k++) {
        ConvEntry *best = NULL;
        for (int b = 0; b < BUCKETS; b++)
            for (ConvEntry *e = table[b]; e; e = e->next)
                if (e->calls > 0 && (!best || e->fwd_s + e->bwd_s > best->fwd_s + best->bwd_s))
                    best = e;
        if (!best)
            break;
        char name[200];
        conv_name(&best->c, name, sizeof name);
        fprintf(stderr, "  %-66s fwd %7.2f ms bwd %7.2f ms per call, %4ld calls, algo %d/%d/%d%s\n",
                name, 1e3 * best->fwd_s / best->calls, 1e3 * best->bwd_s / best->calls, best->calls,
                (int)best->fwd, (int)best->bwd_data, (int)best->bwd_filter,
                best->path == CU_CONV_GEMM         ? " cuBLAS"
                : best->path == CU_CONV_DEPTHWISE  ? " own depthwise"
                : best->fwd_math == CUDNN_FMA_MATH ? ""
                                                   : " tensor-op");
        best->calls = -best->calls; /* printed */
    }
}

void cu_conv_release(void)
{
    for (int b = 0; b < BUCKETS; b++)
        while (table[b]) {
            ConvEntry *e = table[b];
            table[b] = e->next;
            if (e->path == CU_CONV_CUDNN) {
                CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->x));
                CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->y));
                CUDNN_CHECK(cudnnDestroyFilterDescriptor(e->w));
                CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(e->conv));
            }
            free(e);
        }
    cu_free(ones);
    ones = NULL;
    ones_len = 0;
    CU_AFTER("conv release");
}

// --- biases (cu_core.cuh) ----------------------------------------------------------------------

static __global__ void bias_add_kernel(size_t n, int cols, const float *b, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % cols];
}

static __global__ void fill_kernel(size_t n, float v, float *p)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

void cu_bias_add(int rows, int cols, const float *b, float *y)
{
    size_t n = (size_t)rows * cols;
    bias_add_kernel<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(n, cols, b, y);
}

void cu_bias_grad(int rows, int cols, const float *dy, float *db)
{
    if ((size_t)rows > ones_len) {
        cu_free(ones);
        ones = (float *)cu_alloc((size_t)rows * sizeof(float));
        if (!ones)
            cu_die("CUDA", "bias gradient", "out of device memory for the ones vector", __FILE__,
                   __LINE__);
        fill_kernel<<<cu_blocks(rows, 256), 256, 0, cu_stream()>>>(rows, 1.0f, ones);
        ones_len = rows;
    }
    /* Row-major dy (rows, cols) is column-major (cols, rows) with ld = cols, so
     * db (cols) = 1 db + dy^T ones (rows) is gemv N on it. */
    const float one = 1.0f;
    CUBLAS_CHECK(
        cublasSgemv(cu_cublas(), CUBLAS_OP_N, cols, rows, &one, dy, cols, ones, 1, &one, db, 1));
}
