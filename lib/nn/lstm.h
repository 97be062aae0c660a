/* lstm.h: a sequence classifier: a stacked LSTM (torch.nn.LSTM) over the visits of a subject and
 * a linear head on its last valid hidden state, trained with softmax cross-entropy.
 *
 * THE MODEL. x: (N,T,I) batch-first, len: (N) valid steps per sequence, 1 <= len[n] <= T. Layer
 * l (0 <= l < layers) runs, for t < len[n], with u_t its input (x_t for l = 0):
 *   a = W_ih u_t + b_ih + W_hh h_{t-1} + b_hh        a: (4H) in gate order i, f, g, o
 *   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
 *   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t),   h_{-1} = c_{-1} = 0
 * exactly torch.nn.LSTM's formulas. Steps t >= len[n] are not computed: they do not exist, as
 * after pack_padded_sequence, so nothing there reaches the loss and no gradient flows from
 * them. (Internally the state is carried, h_t = h_{t-1}, so the final state of every sequence
 * is its last valid one, torch's h_n.) Between layers, in training with dropout p > 0, layer
 * l's output is multiplied by onfh's Philox mask (ops.h, nn_mask_uniform with op = l and
 * element j = (n T + t) H + k, its batch-first flat index), as torch's `dropout` argument does
 * with its own generator (on cuda, cuDNN's own mask: BACKENDS). The head: logits = W h_n + b:
 * (N,K), from the top layer's h_n.
 *
 * PARAMETERS. One ParamStore, views named as the state_dict of a torch.nn.LSTM subclass that
 * owns a torch.nn.Linear called `head` (tools/golden_lstm.py builds exactly that module), in
 * its order:
 *   weight_ih_l0 (4H,I), weight_hh_l0 (4H,H), bias_ih_l0 (4H), bias_hh_l0 (4H), then _l1 with
 *   I = H, then head.weight (K,H), head.bias (K).
 * Weights are decayed by the optimizer, biases not. So torch weights convert by name.
 *
 * BACKENDS. The LSTM is not a graph.h graph (whose ops are per layer, not per time step). It
 * runs on every backend, in one of two recurrent cores under one head (the linear layer and the
 * cross-entropy, on the backend's own linear and xent entries):
 *   - the host loop, the reference: a loop over time in plain C whose products go through the
 *     NnBackend, per layer one linear_forward over all (T N) inputs, one per step for the
 *     recurrent term, and the mirror linear_backward calls. ref and dnnl run it on host memory
 *     (dnnl's matmuls then do the work) and agree within float rounding. refdev runs it too,
 *     behind the device path below, so that CPU tests check every transfer of that path;
 *   - cuDNN, on the cuda backend (lib/nn/cuda/lstm_cudnn.cu): the whole stack in one
 *     cudnnRNNForward over the padded batch-first batch with per-sequence lengths, and
 *     cudnnRNNBackwardData_v8 / cudnnRNNBackwardWeights_v8 back, fp32 without TF32.
 * On a device backend (cuda, refdev) the kernels use a replica of the store in device memory,
 * as in graph.h: after writing the store (weights loaded, or set by a test) call
 * nn_lstm_upload; before reading it (trained weights, gradients) call nn_lstm_download;
 * nn_lstm_init_weights uploads by itself. Zero gradients and step the optimizer with
 * nn_lstm_zero_grads and nn_lstm_step, which work on whatever the kernels use (on host
 * backends the replica is the store itself and all of this costs nothing). Each forward
 * uploads the batch and brings back the logits (and the loss); a backward that wants dx brings
 * dx back: callers see the same entry points and results on every backend.
 * Dropout on cuda is cuDNN's own, between layers as torch's: its generator and state (seeded
 * once from cfg.seed), so its masks cannot be the Philox masks above, and training with
 * dropout > 0 on cuda follows a different (equally distributed) sequence of masks than on the
 * host. Without dropout, and in evaluation, cuda agrees with the host loop within fp32
 * rounding; tests/unit/test_nn_lstm_device.c checks both, and that dropout on cuda runs.
 * STATUS: the cuDNN path is compiled and linked in every build with CUDA but has not yet run on
 * a GPU: the next GPU session runs tools/gpu_check.sh, whose "LSTM on cuDNN" step is its first
 * test. Until then treat backend cuda for the LSTM as untried.
 *
 * MISSING VISITS AND TIME GAPS (the method). Visits are irregular and features may be missing.
 * nn_lstm_visit_inputs builds the LSTM input of each visit from F raw features as
 *   [ m * v (F) | m (F) | gap (1) ]   so I = 2F + 1,
 * where m is the observation mask (1 observed, 0 missing), a missing value is replaced by 0
 * (selected, not multiplied, so NaN or any garbage there cannot leak in), and gap is the time
 * since the previous visit in years (days / 365.25; 0 at the first visit). This is zero
 * imputation with missingness indicators and an elapsed-time input (Lipton et al. 2016; the
 * inputs GRU-D feeds, Che et al. 2018, without its learned decays): the LSTM itself stays
 * torch.nn.LSTM, so weights still convert and parity tests still hold, and the network learns
 * what a missing value or a long gap means. It guarantees that values marked missing change
 * nothing (the test checks it bit for bit). A visit with every feature missing still advances
 * the LSTM (with input [0 | 0 | gap]); callers that want it skipped drop it and add its gap to
 * the next visit's. */
#ifndef ONFH_NN_LSTM_H
#define ONFH_NN_LSTM_H

#include <stdint.h>

#include "lib/nn/backend.h"
#include "lib/nn/optimizer.h"
#include "lib/nn/tensor.h"
#include "lib/util/err.h"

#define NN_LSTM_MAX_LAYERS 2

typedef struct NnLstmConfig {
    int input;     /* I: features per step */
    int hidden;    /* H */
    int layers;    /* 1 or 2 */
    int classes;   /* K: outputs of the head, >= 2 */
    float dropout; /* between layers, training only (torch.nn.LSTM's dropout), 0 <= p < 1 */
    uint64_t seed; /* run seed of the dropout masks */
} NnLstmConfig;

struct NnCudnnLstm; /* lib/nn/cuda/nn_cuda.h */

typedef struct NnLstm {
    NnLstmConfig cfg;
    const NnBackend *be;
    ParamStore store; /* host memory: what weights are written to and read from (BACKENDS) */
    ParamStore dev;   /* what the kernels use: `store` itself on host backends, else its replica
                         in the backend's memory (same views) */
    /* view indices in store and dev */
    int w_ih[NN_LSTM_MAX_LAYERS], w_hh[NN_LSTM_MAX_LAYERS];
    int b_ih[NN_LSTM_MAX_LAYERS], b_hh[NN_LSTM_MAX_LAYERS];
    int head_w, head_b;
    struct NnCudnnLstm *cudnn; /* cuda: the cuDNN core; NULL: the host loop */

    /* The last forward, what backward reads. */
    int n, t, training;
    NnDropout drop; /* p, seed, step of the last forward (op = layer) */
    size_t cap;     /* N T the buffers below hold */
    int cap_n;      /* N the (N, .) buffers hold */
    int *len;       /* (N) */
    int has_target;
    float loss;
    float *logits;   /* (N,K) host memory, on every backend */
    const float *hn; /* (N,H) the top layer's h_n, which the head reads: in h[L-1] or hy_dev */

    /* The head, in the backend's memory. */
    int *target_dev;   /* (N) */
    float *logits_dev; /* (N,K) */
    float *probs;      /* (N,K) softmax, for xent_backward */
    float *dlogits;    /* (N,K) */

    /* The host loop, host memory. Time-major: each step's (N, .) block is contiguous, so the
     * per-step products are one linear call. */
    float *u[NN_LSTM_MAX_LAYERS];     /* (T,N,I_l) layer inputs: x, then dropped outputs */
    float *gates[NN_LSTM_MAX_LAYERS]; /* (T,N,4H) i, f, g, o after their activations */
    float *h[NN_LSTM_MAX_LAYERS];     /* (T+1,N,H) slot 0 the zero initial state */
    float *c[NN_LSTM_MAX_LAYERS];     /* (T+1,N,H) */
    float *d_gates;                   /* (T,N,4H) */
    float *d_u;                       /* (T,N,max(I,H)) */
    float *d_h;                       /* (T,N,H) gradient reaching a lower layer's outputs */
    float *rec;                       /* (N,4H) recurrent term of one step */
    float *dh, *dc;                   /* (N,H) running state gradients */

    /* The device path (cuda, refdev): the batch in the backend's memory, batch-first. */
    float *x_dev;   /* (N,T,I) steps t >= len zeroed */
    float *y_dev;   /* (N,T,H) the top layer's outputs, 0 at t >= len */
    float *hy_dev;  /* (L,N,H) every layer's final state; the top layer's is hn */
    float *dhy_dev; /* (L,N,H) the loss gradient there (0 below the top layer) */
    float *dx_dev;  /* (N,T,I) */
    float *stage;   /* host (N,T,max(I,H)): x on its way up, dx and outputs on their way down */
} NnLstm;

/* Builds the model: checks cfg, declares and allocates the store with n_moments optimizer
 * moments (nn_optim_moments), weights zero (nn_lstm_init_weights or a checkpoint fills them),
 * and on a device backend its replica (and on cuda the cuDNN descriptors). On failure m is
 * freed. */
int nn_lstm_init(NnLstm *m, const NnLstmConfig *cfg, const NnBackend *be, int n_moments, Err *e);
void nn_lstm_free(NnLstm *m);

/* PyTorch's default initialisation, drawn from Philox (PHILOX_INIT, index = view number):
 * every LSTM tensor U(-1/sqrt(H), 1/sqrt(H)); the head, as torch.nn.Linear, U(-1/sqrt(H),
 * 1/sqrt(H)) for weight and bias. Written to the store, then uploaded. */
void nn_lstm_init_weights(NnLstm *m, uint64_t seed);

/* The store (parameters, gradients, optimizer moments) to the kernels' replica and back
 * (BACKENDS); no-ops on host backends. */
void nn_lstm_upload(NnLstm *m);
void nn_lstm_download(NnLstm *m);
/* Zeroes the gradients the kernels accumulate into; one optimizer step of them (optimizer.h). */
void nn_lstm_zero_grads(NnLstm *m);
int nn_lstm_step(NnLstm *m, const NnOptim *o, long step, Err *e);

/* Forward of a batch. x: (N,T,I) (steps t >= len[n] are never read: anything may be there),
 * len: (N) in [1, T], target: (N) in [0, K) or NULL (no loss).
 * training: dropout on (masks of optimizer step `step`). Logits land in m->logits (N,K); with a
 * target the mean cross-entropy in *loss (may be NULL). Inputs are copied: the caller's
 * buffers may change before backward. */
int nn_lstm_forward(NnLstm *m, int n, int t, const float *x, const int *len, const int *target,
                    int training, uint64_t step, float *loss, Err *e);

/* Backward of the last forward's loss (it must have had a target): parameter gradients are
 * ADDED to the kernels' gradients (the accumulate contract: nn_lstm_zero_grads per step; read
 * them after nn_lstm_download), and the input gradient to dx: (N,T,I) host memory, when not
 * NULL (0 contribution at t >= len). */
void nn_lstm_backward(NnLstm *m, float *dx);

/* The top layer's outputs of the last forward, batch-first (N,T,H), 0 at t >= len[n] (what
 * pad_packed_sequence returns). */
void nn_lstm_outputs(const NnLstm *m, float *out);

/* LSTM inputs from visits (MISSING VISITS AND TIME GAPS above). values, mask: (N,T,F) (mask 1
 * observed, 0 missing), gap_days: (N,T) days since the previous visit (ignored at t = 0) ->
 * x: (N,T,2F+1). Padded steps (t >= len) may hold anything. */
void nn_lstm_visit_inputs(int n, int t, int f, const float *values, const float *mask,
                          const float *gap_days, float *x);

#endif
