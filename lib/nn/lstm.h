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
 * with its own generator. The head: logits = W h_n + b: (N,K), from the top layer's h_n.
 *
 * PARAMETERS. One ParamStore, views named as the state_dict of a torch.nn.LSTM subclass that
 * owns a torch.nn.Linear called `head` (tools/golden_lstm.py builds exactly that module), in
 * its order:
 *   weight_ih_l0 (4H,I), weight_hh_l0 (4H,H), bias_ih_l0 (4H), bias_hh_l0 (4H), then _l1 with
 *   I = H, then head.weight (K,H), head.bias (K).
 * Weights are decayed by the optimizer, biases not. So torch weights convert by name.
 *
 * BACKENDS. The LSTM is not a graph.h graph (whose ops are per-layer, not per-time-step): it is
 * a loop over time in plain C here, the reference, whose products go through the NnBackend it
 * was built with: per layer one linear_forward over all (T N) inputs, one per step for the
 * recurrent term, and the mirror linear_backward calls, plus linear and xent for the head. Any
 * backend on host memory runs it (ref; dnnl, whose matmuls then do the work), and the results
 * agree within float rounding. Device backends (refdev, cuda) are refused at nn_lstm_init:
 * cuDNN runs a whole LSTM in one cudnnRNNForward call, which wants its own entry taking the
 * whole sequence, not a per-step loop over device memory; that entry is future work.
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

typedef struct NnLstm {
    NnLstmConfig cfg;
    const NnBackend *be;
    ParamStore store;
    /* view indices in store */
    int w_ih[NN_LSTM_MAX_LAYERS], w_hh[NN_LSTM_MAX_LAYERS];
    int b_ih[NN_LSTM_MAX_LAYERS], b_hh[NN_LSTM_MAX_LAYERS];
    int head_w, head_b;

    /* The last forward, what backward reads. Time-major inside: each step's (N, .) block is
     * contiguous, so the per-step products are one linear call. */
    int n, t, training;
    NnDropout drop; /* p, seed, step of the last forward (op = layer) */
    size_t cap;     /* N T the buffers below hold */
    int cap_n;      /* N the (N, .) buffers hold */
    int *len;       /* (N) */
    int *target;    /* (N), valid when has_target */
    int has_target;
    float loss;
    float *u[NN_LSTM_MAX_LAYERS];     /* (T,N,I_l) layer inputs: x, then dropped outputs */
    float *gates[NN_LSTM_MAX_LAYERS]; /* (T,N,4H) i, f, g, o after their activations */
    float *h[NN_LSTM_MAX_LAYERS];     /* (T+1,N,H) slot 0 the zero initial state */
    float *c[NN_LSTM_MAX_LAYERS];     /* (T+1,N,H) */
    float *logits;                    /* (N,K) */
    float *probs;                     /* (N,K) softmax, for xent_backward */
    /* backward scratch */
    float *d_gates; /* (T,N,4H) */
    float *d_u;     /* (T,N,max(I,H)) */
    float *d_h;     /* (T,N,H) gradient reaching a lower layer's outputs */
    float *rec;     /* (N,4H) recurrent term of one step */
    float *dh, *dc; /* (N,H) running state gradients */
    float *dlogits; /* (N,K) */
} NnLstm;

/* Builds the model: checks cfg, declares and allocates the store with n_moments optimizer
 * moments (nn_optim_moments), weights zero (nn_lstm_init_weights or a checkpoint fills them).
 * be must keep tensors in host memory (see BACKENDS). On failure m is freed. */
int nn_lstm_init(NnLstm *m, const NnLstmConfig *cfg, const NnBackend *be, int n_moments, Err *e);
void nn_lstm_free(NnLstm *m);

/* PyTorch's default initialisation, drawn from Philox (PHILOX_INIT, index = view number):
 * every LSTM tensor U(-1/sqrt(H), 1/sqrt(H)); the head, as torch.nn.Linear, U(-1/sqrt(H),
 * 1/sqrt(H)) for weight and bias. */
void nn_lstm_init_weights(NnLstm *m, uint64_t seed);

/* Forward of a batch. x: (N,T,I) (steps t >= len[n] are never read: anything may be there),
 * len: (N) in [1, T], target: (N) in [0, K) or NULL (no loss).
 * training: dropout on (masks of optimizer step `step`). Logits land in m->logits (N,K); with a
 * target the mean cross-entropy in *loss (may be NULL). Inputs are copied: the caller's
 * buffers may change before backward. */
int nn_lstm_forward(NnLstm *m, int n, int t, const float *x, const int *len, const int *target,
                    int training, uint64_t step, float *loss, Err *e);

/* Backward of the last forward's loss (it must have had a target): parameter gradients are
 * ADDED to m->store.grads (the accumulate contract: zero them per step), and the input
 * gradient to dx: (N,T,I) when not NULL (0 contribution at t >= len). */
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
