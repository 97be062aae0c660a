/* graph.h: a static network graph, built once per model by plain C builder calls, with its
 * memory planned ahead and explicit forward and backward passes.
 *
 * A model builder (lib/nn/models) calls nn_graph_conv, nn_graph_bn, ... in torchvision's
 * module order. Each call appends one node, declares the node's parameters in the graph's
 * ParamStore under torchvision's state_dict names, and returns the id of the node's output
 * value (an activation tensor (N,C,H,W) in the backend's layout). Builders never check
 * errors call by call: the first error is kept in the graph, every later call returns -1, and
 * nn_graph_finish reports it.
 *
 * nn_graph_finish allocates the store and plans the activation arena: every value (and, when
 * the graph trains, every value's gradient) gets an offset in one float buffer, live from the
 * step that writes it to the last step that reads it, and buffers whose lifetimes do not
 * overlap share memory. Forward step i is time i and its backward is time 2 n_nodes - i, so
 * an activation a backward pass reads stays live until then, while gradients live only between
 * their first consumer's backward and their producer's. Nothing is allocated per step.
 *
 * Training step, in order:
 *   nn_graph_set_input (images, NCHW) -> nn_graph_forward(g, 1) -> nn_graph_loss ->
 *   nn_graph_discard_grads (or nn_graph_zero_grads) -> nn_graph_backward -> nn_graph_step;
 *   g->step += 1.
 *
 * Memory. Activations, workspace and per-node state live in the backend's memory
 * (backend.h NnMemory). The ParamStore `store` is always host memory: checkpoints, weight
 * initialisation and tests read and write it. The kernels run on `dev`: on a host backend that
 * is the store itself (same buffers), on a device backend a replica in device memory with the
 * same views. After writing the store on the host (a checkpoint loaded, weights set by a test)
 * call nn_graph_upload; before reading it (a checkpoint saved, gradients compared) call
 * nn_graph_download. Both are no-ops on host backends; the refdev backend runs them for real
 * in CPU tests. nn_graph_init_params uploads by itself.
 * Dropout masks depend on (g->seed, g->step, the op's random-op ordinal), see ops.h. The
 * ordinal counts the dropout and stochastic-depth nodes in the order they were created (a
 * builder creates them in torchvision's module order, which tools/golden.py restates). */
#ifndef ONFH_NN_GRAPH_H
#define ONFH_NN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/nn/backend.h"
#include "lib/nn/optimizer.h"
#include "lib/nn/tensor.h"

typedef enum NnOpKind {
    NN_OP_CONV,
    NN_OP_BN,
    NN_OP_ACT,
    NN_OP_MAXPOOL,
    NN_OP_AVGPOOL,
    NN_OP_ADAPTIVE,
    NN_OP_LINEAR,
    NN_OP_ADD,
    NN_OP_CHANMUL,
    NN_OP_CONCAT,
    NN_OP_SPLIT,
    NN_OP_SHUFFLE,
    NN_OP_DROPOUT,
    NN_OP_SDEPTH,
    NN_OP_FLATTEN, /* channels-last backends only: (N,C,H,W) to torch.flatten's (C,H,W) order */
} NnOpKind;

/* How nn_graph_init_params fills a weight (torchvision's per-model init code). */
typedef enum NnInit {
    NN_INIT_KAIMING_FAN_OUT, /* normal(0, sqrt(2 / fan_out)), conv weights of most models */
    NN_INIT_NORMAL_001,      /* normal(0, 0.01), MobileNet's linear layers */
    NN_INIT_TORCH_DEFAULT,   /* kaiming_uniform(a = sqrt 5): uniform(+-1/sqrt(fan_in)), and
                                the bias uniform(+-1/sqrt(fan_in)) too: PyTorch's own default */
    NN_INIT_KAIMING_FAN_IN,  /* normal(0, sqrt(2 / fan_in)), DenseNet's convs */
    NN_INIT_TORCH_WEIGHT,    /* the weight as TORCH_DEFAULT, bias 0: DenseNet's classifier */
    NN_INIT_UNIFORM_FAN_OUT, /* uniform(+-1/sqrt(out_features)), EfficientNet's classifier */
} NnInit;

#define NN_MAX_OUT 4 /* outputs of one node (split) */

typedef struct NnValue {
    int n, c, h, w;
    size_t numel;
    int producer;       /* node index, -1 for the graph input; a buffer's: its first writer */
    int last_consumer;  /* highest node index reading it, -1 if none */
    int needs_grad;     /* some parameter lies upstream */
    int backward_reads; /* some consumer's backward reads it (keeps it live in training) */
    size_t off, goff;   /* in floats into the arena: data and gradient (SIZE_MAX: none) */
    /* Channel buffers (nn_graph_buffer): */
    int is_buffer; /* storage that only views read and write */
    int filled;    /* buffer: channels placed so far */
    int base;      /* the buffer this value was placed in or slices, -1 if none */
    int c_off;     /* its first channel there */
    int view;      /* 1: its storage is channels [c_off, c_off + c) of base's */
    int zero_at;   /* backward step before which its gradient is zeroed (planned) */
    int alias;     /* planned: the data is value alias's, overwritten in place (ReLU), or -1 */
    int folded;    /* planned: the tensor between a fused BN or add and its activation, never
                      stored (no data, no gradient; plan_fusion in graph.c) */
} NnValue;

typedef struct NnNode {
    NnOpKind kind;
    int n_in, n_out;
    int *in; /* value ids, n_in of them */
    int out[NN_MAX_OUT];
    int weight, bias;                 /* view ids in the store, -1 if none */
    int run_mean, run_var, n_tracked; /* BN buffers */
    NnInit init;
    union {
        NnConv2d conv;
        NnBatchNorm bn;
        NnPool2d pool;
        NnAdaptivePool ap;
        struct {
            int in, out;
        } lin;
        NnAct act;
        struct {
            float p;
            uint32_t op; /* ordinal among random ops (dropout, stochastic depth) */
        } drop;
        int groups; /* shuffle */
    } u;
    /* Planned (plan_fusion in graph.c). BN, ADD: 1 when it writes the output of the activation
     * fused_act that read it (out[0] is then that output); ACT: 1 when folded into the node
     * before it, and then it runs nothing. */
    int fused;
    NnAct fused_act;
    int *chans;       /* concat inputs' / split outputs' channel counts */
    float *save_mean; /* BN training: (C) each */
    float *save_invstd;
    int32_t *argmax; /* max pooling: (N,C,Ho,Wo) */
} NnNode;

typedef struct NnGraph {
    const NnBackend *be;
    ParamStore store;
    int batch;
    NnNode *nodes;
    int n_nodes, cap_nodes;
    NnValue *values;
    int n_values, cap_values;
    int input, output;             /* value ids; output is the last value created unless set */
    int n_random;                  /* random ops so far */
    int training;                  /* planned for training (gradients and saved activations) */
    uint64_t seed;                 /* dropout masks */
    uint64_t step;                 /* optimizer steps taken; dropout masks depend on it */
    NnInit conv_init, linear_init; /* used for nodes built from now on */
    Err err;
    int failed;
    ParamStore dev; /* the store the kernels run on: `store` itself, or its device replica */
    float *arena;
    size_t arena_floats;
    void *workspace;
    size_t workspace_bytes;
    float *probs;        /* (N,K) softmax saved by nn_graph_loss */
    int *targets;        /* (N) copy of the last loss's targets */
    float *class_weight; /* (K) */
    int weighted;        /* the last loss used class_weight */
    NnXent xent;
    float *staging;     /* device backends: the input images, NCHW, on their way to to_layout */
    float *host_logits; /* (N,K) host copy of the output (nn_graph_output) */
    float **ptrs;       /* scratch: one pointer per input of the widest concat */
    int no_views;       /* set before building: concatenate by copying even where the backend could
                           use channel views (tests compare the two) */
    /* Data-parallel training (lib/nn/comm.h); the defaults (1, 0, NULL) are one process. */
    float loss_scale; /* multiplies the loss gradient: a rank's share of the global batch's mean */
    uint64_t sample0; /* index of batch sample 0 in the global batch: dropout masks are drawn for
                         global samples, so they do not depend on the rank count */
    /* Called by nn_graph_backward after node i's backward (also for nodes it skips), with i
     * descending. Node i's parameter gradients are final then: no parameter is shared between
     * nodes, so nothing later in backward adds to them. The communicator starts all-reducing a
     * bucket of gradients here while backward goes on. */
    void (*after_node)(void *ctx, int node);
    void *after_node_ctx;
    int grads_stale; /* nn_graph_discard_grads: the next backward writes parameter gradients */
} NnGraph;

void nn_graph_init(NnGraph *g, const NnBackend *be, int batch);
void nn_graph_free(NnGraph *g);

/* Builders: each returns the output value id, or -1 after an error (kept in g->err). */
int nn_graph_input(NnGraph *g, int c, int h, int w);
/* Conv2d with square kernel k, symmetric padding pad; params name.weight (+ name.bias). */
int nn_graph_conv(NnGraph *g, const char *name, int x, int c_out, int k, int stride, int pad,
                  int dil, int groups, int bias);
/* BatchNorm2d: name.weight, .bias, .running_mean, .running_var, .num_batches_tracked. */
int nn_graph_bn(NnGraph *g, const char *name, int x, float eps, float momentum);
int nn_graph_act(NnGraph *g, int x, NnAct a);
int nn_graph_maxpool(NnGraph *g, int x, int k, int stride, int pad, int ceil_mode);
int nn_graph_avgpool(NnGraph *g, int x, int k, int stride, int pad, int ceil_mode,
                     int count_include_pad);
int nn_graph_adaptive_avgpool(NnGraph *g, int x, int h_out, int w_out);
/* Linear over the flattened value (N, C H W); name.weight (out, in) (+ name.bias). */
int nn_graph_linear(NnGraph *g, const char *name, int x, int out, int bias);
int nn_graph_add(NnGraph *g, int a, int b);
/* x: (N,C,H,W) times s: (N,C,1,1) channel-wise. */
int nn_graph_chanmul(NnGraph *g, int x, int s);
int nn_graph_concat(NnGraph *g, int n, const int *xs);
/* Splits x along channels into parts of chans[i] channels; ids written to outs. Returns 0. */
int nn_graph_split(NnGraph *g, int x, int parts, const int *chans, int *outs);
int nn_graph_shuffle(NnGraph *g, int x, int groups);
/* Zero-copy channel concatenation (DenseNet). A buffer is one (N,C,H,W) tensor that values
 * are placed in, channel block after channel block; a prefix reads its first channels:
 *   buf = nn_graph_buffer(g, C, H, W);
 *   nn_graph_place(g, x0, buf);               x0 (N,C0,H,W) now lives in channels [0, C0)
 *   y = nn_graph_prefix(g, buf, C0);          a value reading those channels
 *   nn_graph_place(g, f1, buf);               f1 (N,32,H,W) lives in [C0, C0 + 32)
 *   y = nn_graph_prefix(g, buf, C0 + 32);     = concat(x0, f1), without a copy
 * On a backend with channel_views (backend.h) placed values and prefixes are views of the
 * buffer's storage: the op producing a placed value writes straight into its channels (ldy),
 * and a prefix narrower than the buffer is read with a channel stride (ldx): only by a BN,
 * which is what every reader of a DenseNet concatenation is. Gradients share the buffer's
 * gradient the same way, and since every backward accumulates (backend.h), the consumers of
 * each channel block sum into it before its producer's backward reads it. On other backends
 * (and with g->no_views) placed values keep their own storage and a prefix is a concat node
 * of the parts it covers: the same numbers, with copies. The value to place must be the one
 * just made by a conv, max pool or average pool, not read yet; a prefix must end where a
 * placed value ends. */
int nn_graph_buffer(NnGraph *g, int c, int h, int w);
int nn_graph_place(NnGraph *g, int x, int buf);
int nn_graph_prefix(NnGraph *g, int buf, int c);
int nn_graph_dropout(NnGraph *g, int x, float p);
int nn_graph_stochastic_depth(NnGraph *g, int x, float p);

/* Ends building: checks the first error, allocates the store (n_moments optimizer moments)
 * and plans memory for training (1) or inference only (0). */
int nn_graph_finish(NnGraph *g, int training, int n_moments, Err *e);

/* torchvision's initialisation, drawn from Philox (seed, PHILOX_INIT, view index): BN 1 and 0,
 * biases 0, weights by their node's NnInit. Written to the store, then uploaded. */
void nn_graph_init_params(NnGraph *g, uint64_t seed);

/* Store (host) -> dev, and dev -> store: parameters, gradients, moments, buffers, counters.
 * No-ops on host backends (see Memory above). */
void nn_graph_upload(NnGraph *g);
void nn_graph_download(NnGraph *g);
/* Zeroes dev's gradients; one optimizer step over dev (nn_optim_step). */
void nn_graph_zero_grads(NnGraph *g);
/* What a training step calls in place of nn_graph_zero_grads: the next nn_graph_backward
 * writes every parameter gradient rather than adding to it (the same result as zeroing first,
 * without the pass over all of them: each is zeroed, or written where the backend can
 * (NnBackend.fresh_param_ops), when its node's backward comes). Until then the gradients hold
 * whatever they held. */
void nn_graph_discard_grads(NnGraph *g);
int nn_graph_step(NnGraph *g, const NnOptim *o, long step, Err *e);

/* images: (N,C,H,W) NCHW float, the graph input's shape. */
void nn_graph_set_input(NnGraph *g, const float *images);
/* Runs every node; training = 1 uses batch statistics and dropout (graph planned for training
 * only). */
int nn_graph_forward(NnGraph *g, int training, Err *e);
/* Logits (N,K) after nn_graph_forward, copied to host memory owned by the graph (valid until
 * the next call). */
const float *nn_graph_output(NnGraph *g);
const NnValue *nn_graph_value(const NnGraph *g, int id);
/* A value's data in the backend's memory and layout. */
float *nn_graph_value_data(const NnGraph *g, int id);
/* Softmax cross-entropy of the output against targets (N) (class_weight (K) or NULL). */
int nn_graph_loss(NnGraph *g, const int *targets, const float *class_weight, float smoothing,
                  float *loss, Err *e);
/* Backward from the last loss into the store's gradients (accumulated: zero them first), the
 * loss gradient scaled by g->loss_scale; g->after_node, when set, runs after every node. */
int nn_graph_backward(NnGraph *g, Err *e);

/* Bytes of the planned arena, workspace and per-node state (what a step needs beyond the
 * store). */
size_t nn_graph_activation_bytes(const NnGraph *g);

/* Multiply-accumulates of one image's forward pass through the convolutions and linear layers
 * (the usual "MACs" / "FLOPs / 2" of model tables; the rest is a rounding error beside it). */
double nn_graph_forward_macs(const NnGraph *g);

#endif
