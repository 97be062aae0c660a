/* lstm_cudnn.cu: the recurrent core of lib/nn/lstm on the cuda backend (nn_cuda.h): a stacked
 * unidirectional LSTM as one cuDNN RNN, on cuDNN 9's RNN API (cudnnRNNForward,
 * cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8), fp32.
 *
 * Data. x: (N,T,I) and y: (N,T,H) batch-first with a length per sequence
 * (CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, which needs CUDNN_RNN_PADDED_IO_ENABLED): as
 * after pack_padded_sequence, steps t >= len[i] are not computed, y there is the padding fill 0,
 * and hy: (L,N,H) holds every layer's state at each sequence's own last step, torch's h_n.
 * Initial states hx, cx are zero: a zeroed (L,N,H) buffer, also passed as dcy (no gradient at
 * the final cell states), and dy is a zeroed (N,T,H) buffer (the head reads hy only).
 *
 * Weights. cuDNN keeps its own flat weight space, and cudnnGetRNNWeightParams says where each
 * gate's matrix and bias lie in it. For an LSTM linLayerID 0..3 are the input matrices of gates
 * i, f, g (cuDNN's "new memory") and o, each (H,I_l) row-major, and 4..7 the recurrent ones
 * (H,H), each with its bias (CUDNN_RNN_DOUBLE_BIAS: b_ih with 0..3, b_hh with 4..7): torch's
 * gate order and layouts, so weight_ih_l (4H,I_l) is the four input matrices one after another
 * (torch relies on the same to alias its parameters into cuDNN's buffer). create checks that
 * the gates of each tensor do lie one after another and keeps one offset per tensor; forward
 * copies the 4 L tensors into the weight space (device to device, a few KB); backward zeroes
 * the gradient space, lets cuDNN add into it (CUDNN_WGRAD_MODE_ADD, the one mode of
 * BackwardWeights_v8) and adds each tensor into the caller's gradients (the accumulate
 * contract of backend.h).
 *
 * Dropout between layers is cuDNN's: its generator, its state (seeded once, at create), so its
 * masks cannot be lib/nn/lstm's Philox ones. Two RNN descriptors share one weight layout: one
 * without dropout (evaluation, and training forwards with dropout off, the way torch sets
 * p = 0 outside training) and, with layers > 1 and p > 0, one with it; backward uses the one
 * its forward ran with.
 *
 * Math: fp32 data and math type FMA, so no TF32 rounding (as conv.cu; ONFH_CUDA_MATH=tf32 at
 * create allows tensor cores). Algorithm: CUDNN_RNN_ALGO_STANDARD, which takes sequences of
 * unequal lengths (the persistent ones may not).
 *
 * Errors: create and forward return -1 with the failing call and cuDNN's message in why (a
 * shape cuDNN does not support is a reason, not a crash); backward aborts naming the call,
 * as every kernel of this backend (cu_core.cuh), since forward already ran that batch. */
#include "lib/nn/cuda/cu_core.cuh"
#include "lib/nn/cuda/nn_cuda.h"

#include <cstdio>
#include <cstdlib>

enum { MAX_LAYERS = 8, TENSORS = 4 }; /* per layer: weight_ih, weight_hh, bias_ih, bias_hh */

struct NnCudnnLstm {
    int input, hidden, layers;
    cudnnDropoutDescriptor_t no_drop; /* p = 0: no generator state */
    cudnnDropoutDescriptor_t drop;    /* p between layers, or NULL */
    void *drop_states;                /* drop's generator state */
    cudnnRNNDescriptor_t rnn;         /* the stack without dropout */
    cudnnRNNDescriptor_t rnn_drop;    /* the stack with it, or NULL (one layer, or p = 0) */
    cudnnRNNDataDescriptor_t xd, yd;  /* (N,T,I), (N,T,H) with lengths: the last batch */
    cudnnTensorDescriptor_t hd;       /* (L,N,H) hidden and cell states */
    size_t w_bytes;                   /* of the weight space and of its gradient */
    float *w, *dw;
    size_t off[MAX_LAYERS * TENSORS];   /* params[k] lies at w + off[k] */
    size_t numel[MAX_LAYERS * TENSORS]; /* floats of params[k] */

    /* The last batch. */
    cudnnRNNDescriptor_t used;        /* what its forward ran with */
    int trained;                      /* its forward kept the reserve space for backward */
    void *len_dev;                    /* (N) int32: the lengths again, for the kernels */
    void *zero_state;                 /* (L,N,H) zeros: hx, cx, dcy */
    void *dy_zero;                    /* (N,T,H) zeros: no gradient reaches y */
    void *work, *reserve;             /* cuDNN's scratch, and what forward keeps for backward */
    size_t work_bytes, reserve_bytes; /* what the last forward asked for */
    size_t cap_len, cap_state, cap_dy, cap_work, cap_reserve; /* bytes held */
};

/* A cuDNN status as this file's result: 0, or -1 with "call: cuDNN's message" in why. */
static int status(cudnnStatus_t s, const char *call, char *why, size_t cap)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 0;
    snprintf(why, cap, "%s: %s", call, cudnnGetErrorString(s));
    return -1;
}

/* *p: device memory of at least `bytes`, zeroed when it had to grow (what it held is lost). */
static int grow(void **p, size_t *cap, size_t bytes, const char *what, char *why, size_t whycap)
{
    if (bytes <= *cap && *p)
        return 0;
    cu_free(*p);
    *p = cu_alloc(bytes);
    *cap = *p ? bytes : 0;
    if (*p)
        return 0;
    snprintf(why, whycap, "out of device memory for the LSTM's %s (%zu bytes)", what, bytes);
    return -1;
}

/* Elements of a tensor descriptor cuDNN filled in. */
static int numel_of(cudnnTensorDescriptor_t d, size_t *n, char *why, size_t cap)
{
    cudnnDataType_t type;
    int nd = 0, dims[8], strides[8];
    int rc = status(cudnnGetTensorNdDescriptor(d, 8, &type, &nd, dims, strides),
                    "cudnnGetTensorNdDescriptor", why, cap);
    *n = 1;
    for (int i = 0; !rc && i < nd && i < 8; i++)
        *n *= (size_t)dims[i];
    return rc;
}

// --- set-up ----------------------------------------------------------------------------------

/* An RNN descriptor of the stack with dropout descriptor `drop`. projSize = hidden: no
 * projection. */
static int make_rnn(NnCudnnLstm *r, cudnnRNNDescriptor_t *d, cudnnDropoutDescriptor_t drop,
                    char *why, size_t cap)
{
    int rc = status(cudnnCreateRNNDescriptor(d), "cudnnCreateRNNDescriptor", why, cap);
    return rc ? rc
              : status(cudnnSetRNNDescriptor_v8(
                           *d, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, CUDNN_RNN_DOUBLE_BIAS,
                           CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT,
                           CUDNN_DATA_FLOAT, cu_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH,
                           r->input, r->hidden, r->hidden, r->layers, drop,
                           CUDNN_RNN_PADDED_IO_ENABLED),
                       "cudnnSetRNNDescriptor_v8", why, cap);
}

/* Where gate `id`'s matrix and bias of layer l lie in the weight space (floats from w),
 * checked against the sizes torch's tensors give them. */
static int gate_params(NnCudnnLstm *r, cudnnTensorDescriptor_t md, cudnnTensorDescriptor_t bd,
                       int l, int id, size_t *m_off, size_t *b_off, char *why, size_t cap)
{
    int H = r->hidden, in = id < 4 ? (l == 0 ? r->input : H) : H;
    void *ma = NULL, *ba = NULL;
    size_t mn = 0, bn = 0;
    int rc = status(
        cudnnGetRNNWeightParams(cu_cudnn(), r->rnn, l, r->w_bytes, r->w, id, md, &ma, bd, &ba),
        "cudnnGetRNNWeightParams", why, cap);
    rc = rc ? rc : numel_of(md, &mn, why, cap);
    rc = rc ? rc : numel_of(bd, &bn, why, cap);
    if (rc)
        return rc;
    const char *base = (const char *)r->w;
    size_t mo = ma ? (size_t)((const char *)ma - base) : 0;
    size_t bo = ba ? (size_t)((const char *)ba - base) : 0;
    if (!ma || !ba || mn != (size_t)H * in || bn != (size_t)H || mo % sizeof(float) ||
        bo % sizeof(float) || mo + mn * sizeof(float) > r->w_bytes ||
        bo + bn * sizeof(float) > r->w_bytes) {
        snprintf(why, cap,
                 "cudnnGetRNNWeightParams: layer %d gate %d: matrix of %zu floats at byte %zu, "
                 "bias of %zu at %zu in a weight space of %zu bytes; expected %d x %d and %d",
                 l, id, mn, mo, bn, bo, r->w_bytes, H, in, H);
        return -1;
    }
    *m_off = mo / sizeof(float);
    *b_off = bo / sizeof(float);
    return 0;
}

/* The offset of every tensor of every layer in the weight space: the gates of a tensor must
 * lie one after another in order i, f, g, o (the top of the file). */
static int map_weights(NnCudnnLstm *r, char *why, size_t cap)
{
    cudnnTensorDescriptor_t md = NULL, bd = NULL;
    int H = r->hidden;
    int rc = status(cudnnCreateTensorDescriptor(&md), "cudnnCreateTensorDescriptor", why, cap);
    rc =
        rc ? rc : status(cudnnCreateTensorDescriptor(&bd), "cudnnCreateTensorDescriptor", why, cap);
    for (int l = 0; !rc && l < r->layers; l++) {
        int in = l == 0 ? r->input : H;
        size_t m_off[8], b_off[8];
        for (int id = 0; !rc && id < 8; id++)
            rc = gate_params(r, md, bd, l, id, &m_off[id], &b_off[id], why, cap);
        for (int id = 0; !rc && id < 8; id++) {
            int g = id % 4;
            size_t mat = (size_t)H * (id < 4 ? in : H);
            if (m_off[id] != m_off[id - g] + g * mat || b_off[id] != b_off[id - g] + g * H) {
                snprintf(why, cap,
                         "cuDNN's weight space: layer %d gate %d is not where torch's layout puts "
                         "it (matrix at %zu, bias at %zu; gate 0 at %zu and %zu)",
                         l, id, m_off[id], b_off[id], m_off[id - g], b_off[id - g]);
                rc = -1;
            }
        }
        if (rc)
            break;
        size_t *off = r->off + TENSORS * l, *numel = r->numel + TENSORS * l;
        off[0] = m_off[0], numel[0] = 4 * (size_t)H * in; /* weight_ih_l (4H,I_l) */
        off[1] = m_off[4], numel[1] = 4 * (size_t)H * H;  /* weight_hh_l (4H,H) */
        off[2] = b_off[0], numel[2] = 4 * (size_t)H;      /* bias_ih_l (4H) */
        off[3] = b_off[4], numel[3] = 4 * (size_t)H;      /* bias_hh_l (4H) */
    }
    if (bd)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(bd));
    if (md)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(md));
    return rc;
}

/* The dropout descriptor, its generator state and the RNN descriptor that uses them. */
static int make_dropout(NnCudnnLstm *r, float p, uint64_t seed, char *why, size_t cap)
{
    cudnnHandle_t h = cu_cudnn();
    size_t bytes = 0;
    int rc = status(cudnnDropoutGetStatesSize(h, &bytes), "cudnnDropoutGetStatesSize", why, cap);
    rc = rc ? rc
            : status(cudnnCreateDropoutDescriptor(&r->drop), "cudnnCreateDropoutDescriptor", why,
                     cap);
    if (!rc && !(r->drop_states = cu_alloc(bytes))) {
        snprintf(why, cap, "out of device memory for cuDNN's dropout state (%zu bytes)", bytes);
        rc = -1;
    }
    /* initialises the generator state on the device: once */
    rc = rc ? rc
            : status(cudnnSetDropoutDescriptor(r->drop, h, p, r->drop_states, bytes,
                                               (unsigned long long)seed),
                     "cudnnSetDropoutDescriptor", why, cap);
    rc = rc ? rc : make_rnn(r, &r->rnn_drop, r->drop, why, cap);
    size_t same = 0;
    rc = rc ? rc
            : status(cudnnGetRNNWeightSpaceSize(h, r->rnn_drop, &same),
                     "cudnnGetRNNWeightSpaceSize", why, cap);
    if (!rc && same != r->w_bytes) {
        snprintf(why, cap, "cuDNN's weight space: %zu bytes with dropout, %zu without", same,
                 r->w_bytes);
        rc = -1;
    }
    return rc;
}

int nn_cudnn_lstm_create(NnCudnnLstm **out, int input, int hidden, int layers, float dropout,
                         uint64_t seed, char *why, size_t cap)
{
    *out = NULL;
    if (input < 1 || hidden < 1 || layers < 1 || layers > MAX_LAYERS) {
        snprintf(why, cap, "LSTM of input %d, hidden %d, %d layers: need sizes >= 1, 1..%d layers",
                 input, hidden, layers, MAX_LAYERS);
        return -1;
    }
    NnCudnnLstm *r = (NnCudnnLstm *)calloc(1, sizeof *r);
    if (!r) {
        snprintf(why, cap, "out of host memory");
        return -1;
    }
    r->input = input, r->hidden = hidden, r->layers = layers;
    cudnnHandle_t h = cu_cudnn();
    int rc =
        status(cudnnCreateDropoutDescriptor(&r->no_drop), "cudnnCreateDropoutDescriptor", why, cap);
    /* p = 0 needs no state (torch's no-dropout descriptor is made the same way) */
    rc = rc ? rc
            : status(cudnnSetDropoutDescriptor(r->no_drop, h, 0.0f, NULL, 0, 0),
                     "cudnnSetDropoutDescriptor (p = 0)", why, cap);
    rc = rc ? rc : make_rnn(r, &r->rnn, r->no_drop, why, cap);
    rc = rc ? rc
            : status(cudnnGetRNNWeightSpaceSize(h, r->rnn, &r->w_bytes),
                     "cudnnGetRNNWeightSpaceSize", why, cap);
    if (!rc &&
        (!(r->w = (float *)cu_alloc(r->w_bytes)) || !(r->dw = (float *)cu_alloc(r->w_bytes)))) {
        snprintf(why, cap, "out of device memory for cuDNN's weight spaces (2 x %zu bytes)",
                 r->w_bytes);
        rc = -1;
    }
    rc = rc ? rc : map_weights(r, why, cap);
    if (!rc && layers > 1 && dropout > 0.0f)
        rc = make_dropout(r, dropout, seed, why, cap);
    rc =
        rc ? rc
           : status(cudnnCreateRNNDataDescriptor(&r->xd), "cudnnCreateRNNDataDescriptor", why, cap);
    rc =
        rc ? rc
           : status(cudnnCreateRNNDataDescriptor(&r->yd), "cudnnCreateRNNDataDescriptor", why, cap);
    rc = rc ? rc
            : status(cudnnCreateTensorDescriptor(&r->hd), "cudnnCreateTensorDescriptor", why, cap);
    if (rc) {
        nn_cudnn_lstm_destroy(r);
        return -1;
    }
    CU_AFTER("lstm create");
    *out = r;
    return 0;
}

void nn_cudnn_lstm_destroy(NnCudnnLstm *r)
{
    if (!r)
        return;
    cu_free(r->w);
    cu_free(r->dw);
    cu_free(r->drop_states);
    cu_free(r->len_dev);
    cu_free(r->zero_state);
    cu_free(r->dy_zero);
    cu_free(r->work);
    cu_free(r->reserve);
    if (r->hd)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(r->hd));
    if (r->yd)
        CUDNN_CHECK(cudnnDestroyRNNDataDescriptor(r->yd));
    if (r->xd)
        CUDNN_CHECK(cudnnDestroyRNNDataDescriptor(r->xd));
    if (r->rnn_drop)
        CUDNN_CHECK(cudnnDestroyRNNDescriptor(r->rnn_drop));
    if (r->rnn)
        CUDNN_CHECK(cudnnDestroyRNNDescriptor(r->rnn));
    if (r->drop)
        CUDNN_CHECK(cudnnDestroyDropoutDescriptor(r->drop));
    if (r->no_drop)
        CUDNN_CHECK(cudnnDestroyDropoutDescriptor(r->no_drop));
    free(r);
}

// --- a batch ---------------------------------------------------------------------------------

/* Descriptors and scratch for n sequences of at most t steps, lengths len (host), run with
 * descriptor rnn in mode. */
static int plan(NnCudnnLstm *r, cudnnRNNDescriptor_t rnn, cudnnForwardMode_t mode, int n, int t,
                const int *len, char *why, size_t cap)
{
    static float pad = 0.0f; /* the padding fill of y, read from host memory */
    int L = r->layers, H = r->hidden, train = mode == CUDNN_FWD_MODE_TRAINING;
    int dims[3] = {L, n, H}, strides[3] = {n * H, H, 1};
    int rc = status(cudnnSetRNNDataDescriptor(r->xd, CUDNN_DATA_FLOAT,
                                              CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, t, n,
                                              r->input, len, &pad),
                    "cudnnSetRNNDataDescriptor (x)", why, cap);
    rc = rc ? rc
            : status(cudnnSetRNNDataDescriptor(r->yd, CUDNN_DATA_FLOAT,
                                               CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, t, n, H,
                                               len, &pad),
                     "cudnnSetRNNDataDescriptor (y)", why, cap);
    rc = rc ? rc
            : status(cudnnSetTensorNdDescriptor(r->hd, CUDNN_DATA_FLOAT, 3, dims, strides),
                     "cudnnSetTensorNdDescriptor (states)", why, cap);
    rc = rc ? rc
            : status(cudnnGetRNNTempSpaceSizes(cu_cudnn(), rnn, mode, r->xd, &r->work_bytes,
                                               &r->reserve_bytes),
                     "cudnnGetRNNTempSpaceSizes", why, cap);
    rc = rc ? rc : grow(&r->len_dev, &r->cap_len, (size_t)n * sizeof(int32_t), "lengths", why, cap);
    rc = rc ? rc
            : grow(&r->zero_state, &r->cap_state, (size_t)L * n * H * sizeof(float),
                   "initial states", why, cap);
    rc = rc ? rc : grow(&r->work, &r->cap_work, r->work_bytes, "workspace", why, cap);
    if (!rc && train)
        rc = grow(&r->reserve, &r->cap_reserve, r->reserve_bytes, "reserve space", why, cap);
    if (!rc && train)
        rc = grow(&r->dy_zero, &r->cap_dy, (size_t)n * t * H * sizeof(float), "output gradient",
                  why, cap);
    if (!rc)
        cu_upload(r->len_dev, len, (size_t)n * sizeof(int32_t));
    return rc;
}

int nn_cudnn_lstm_forward(NnCudnnLstm *r, const float *const *params, int n, int t, const int *len,
                          const float *x, float *y, float *hy, int train, int dropout, char *why,
                          size_t cap)
{
    cudnnRNNDescriptor_t rnn = train && dropout && r->rnn_drop ? r->rnn_drop : r->rnn;
    cudnnForwardMode_t mode = train ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE;
    r->trained = 0;
    int rc = plan(r, rnn, mode, n, t, len, why, cap);
    if (rc)
        return rc;
    for (int k = 0; k < TENSORS * r->layers; k++) /* torch's tensors into cuDNN's weight space */
        CU_CHECK(cudaMemcpyAsync(r->w + r->off[k], params[k], r->numel[k] * sizeof(float),
                                 cudaMemcpyDeviceToDevice, cu_stream()));
    rc = status(cudnnRNNForward(cu_cudnn(), rnn, mode, (const int32_t *)r->len_dev, r->xd, x, r->yd,
                                y, r->hd, r->zero_state, hy, r->hd, r->zero_state, NULL, r->w_bytes,
                                r->w, r->work_bytes, r->work, train ? r->reserve_bytes : 0,
                                train ? r->reserve : NULL),
                "cudnnRNNForward", why, cap);
    CU_AFTER("lstm forward");
    r->used = rnn;
    r->trained = rc == 0 && train;
    return rc;
}

void nn_cudnn_lstm_backward(NnCudnnLstm *r, const float *x, const float *y, const float *dhy,
                            float *dx, float *const *grads)
{
    if (!r->trained)
        cu_die("cuDNN", "lstm backward",
               "the last forward did not keep the reserve space (train 0)", __FILE__, __LINE__);
    cudnnHandle_t h = cu_cudnn();
    const int32_t *len = (const int32_t *)r->len_dev;
    /* data first: it leaves in the reserve space what the weight gradients are made from */
    CUDNN_CHECK(cudnnRNNBackwardData_v8(h, r->used, len, r->yd, y, r->dy_zero, r->xd, dx, r->hd,
                                        r->zero_state, dhy, NULL, r->hd, r->zero_state,
                                        r->zero_state, NULL, r->w_bytes, r->w, r->work_bytes,
                                        r->work, r->reserve_bytes, r->reserve));
    CU_CHECK(cudaMemsetAsync(r->dw, 0, r->w_bytes, cu_stream()));
    CUDNN_CHECK(cudnnRNNBackwardWeights_v8(h, r->used, CUDNN_WGRAD_MODE_ADD, len, r->xd, x, r->hd,
                                           r->zero_state, r->yd, y, r->w_bytes, r->dw,
                                           r->work_bytes, r->work, r->reserve_bytes, r->reserve));
    for (int k = 0; k < TENSORS * r->layers; k++)
        cu_add_forward(r->numel[k], grads[k], r->dw + r->off[k], grads[k]);
    CU_AFTER("lstm backward");
}
