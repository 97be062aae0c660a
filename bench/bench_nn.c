/* bench_nn.c: speed of the neural-network backends.
 *
 * 1. One convolution, 3x3 64->64 on 56x56, batch 8, pad 1 (1.85 GFLOP forward; the shape of
 *    toolchain.md's oneDNN figures): forward and backward (dx, dw), ref beside dnnl, best of 5.
 * 2. A MobileNetV3-Large training step at 224x224 through the dnnl backend's kernels: every
 *    layer of torchvision's mobilenet_v3_large (stem, the 15 inverted-residual blocks with
 *    squeeze-excitation, the last 1x1, pooling, the classifier), forward, then backward in
 *    reverse with every activation gradient zeroed first and accumulated as the graph will,
 *    then an AdamW step over all parameters. No graph, no data loading: the figure is the
 *    kernels' share of a step, the part the backend decides. Prints images per second (the
 *    PyTorch peer, channels_last on 2 threads, reaches ~50 img/s) and the time per op kind.
 *   bench_nn [batch] [steps]   (default 32 and 3; threads from OMP_NUM_THREADS) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/nn/backend.h"
#include "lib/nn/dnnl/nn_dnnl.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *rand_floats(size_t n, float scale)
{
    float *p = mem_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_nn: out of memory\n");
        exit(1);
    }
    Philox rng;
    philox_init(&rng, 5, PHILOX_TEST, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (2.0f * philox_uniformf(&rng) - 1.0f) * scale;
    return p;
}

static float *zeros(size_t n)
{
    float *p = mem_calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_nn: out of memory\n");
        exit(1);
    }
    return p;
}

// ---------------------------------------------------------------------------------------------
// 1. One convolution

static void bench_conv(const NnBackend *be)
{
    NnConv2d c = nn_conv2d_square(8, 64, 56, 56, 64, 3, 1, 1, 1, 1);
    Err e = {0};
    nn_conv2d_setup(&c, &e);
    size_t nx = (size_t)c.n * c.c_in * c.h_in * c.w_in;
    size_t nw = (size_t)c.c_out * c.c_in * 9;
    size_t ny = (size_t)c.n * c.c_out * c.h_out * c.w_out;
    float *x = rand_floats(nx, 1.0f);
    float *w = rand_floats(nw, 0.1f);
    float *y = zeros(ny);
    float *dy = rand_floats(ny, 1.0f);
    float *dx = zeros(nx);
    float *dw = zeros(nw);
    void *ws = mem_alloc(be->conv2d_workspace(&c) + 1);
    double best_f = 1e30;
    double best_b = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now();
        be->conv2d_forward(&c, x, w, NULL, y, ws);
        double t2 = now();
        be->conv2d_backward(&c, x, w, dy, dx, dw, NULL, ws);
        double t3 = now();
        best_f = t2 - t < best_f ? t2 - t : best_f;
        best_b = t3 - t2 < best_b ? t3 - t2 : best_b;
    }
    double gflop = 2.0 * ny * c.c_in * 9 / 1e9;
    printf("  %-5s forward %8.2f ms (%5.0f GFLOP/s)   backward dx+dw %8.2f ms (%5.0f GFLOP/s)\n",
           be->name, best_f * 1e3, gflop / best_f, best_b * 1e3, 2 * gflop / best_b);
    mem_free(x);
    mem_free(w);
    mem_free(y);
    mem_free(dy);
    mem_free(dx);
    mem_free(dw);
    mem_free(ws);
}

// ---------------------------------------------------------------------------------------------
// 2. A MobileNetV3-Large step as a flat list of ops over numbered activation buffers

enum { K_CONV, K_BN, K_ACT, K_POOL, K_CHANMUL, K_ADD, K_LINEAR, K_KINDS };
static const char *const kind_name[K_KINDS] = {"conv",    "batchnorm", "activation", "avgpool",
                                               "chanmul", "add",       "linear"};

typedef struct Op {
    int kind;
    int in, in2, out; /* activation buffers (in2: chanmul's scale, add's second term) */
    NnConv2d conv;
    NnBatchNorm bn;
    NnAct act;
    NnAdaptivePool pool;
    int lin_in, lin_out;
    int has_bias;
    float *w, *b, *dw, *db; /* parameters and their gradients (views into one buffer) */
    float *stats;           /* bn: running mean, var, save mean, invstd: 4 C */
    int64_t counter;
} Op;

#define MAX_OPS  256
#define MAX_BUFS 256

typedef struct Net {
    int batch;
    Op ops[MAX_OPS];
    int n_ops;
    size_t size[MAX_BUFS]; /* floats */
    int c[MAX_BUFS], h[MAX_BUFS], w[MAX_BUFS];
    int n_bufs;
    float *act[MAX_BUFS];
    float *grad[MAX_BUFS];
    size_t n_params;
    float *params, *grads, *m, *v;
    size_t ws_bytes;
} Net;

static int new_buf(Net *net, int c, int h, int w)
{
    int i = net->n_bufs++;
    net->c[i] = c;
    net->h[i] = h;
    net->w[i] = w;
    net->size[i] = (size_t)net->batch * c * h * w;
    return i;
}

static Op *new_op(Net *net, int kind, int in)
{
    Op *op = &net->ops[net->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in = in;
    op->in2 = -1;
    return op;
}

static int conv(Net *net, int in, int cout, int k, int stride, int groups, int bias)
{
    Op *op = new_op(net, K_CONV, in);
    NnConv2d c = nn_conv2d_square(net->batch, net->c[in], net->h[in], net->w[in], cout, k, stride,
                                  (k - 1) / 2, 1, groups);
    Err e = {0};
    nn_conv2d_setup(&c, &e);
    op->conv = c;
    op->out = new_buf(net, cout, c.h_out, c.w_out);
    net->n_params += (size_t)cout * (c.c_in / groups) * k * k + (bias ? cout : 0);
    op->has_bias = bias;
    return op->out;
}

static int bn(Net *net, int in)
{
    Op *op = new_op(net, K_BN, in);
    op->bn = (NnBatchNorm){.n = net->batch,
                           .c = net->c[in],
                           .h = net->h[in],
                           .w = net->w[in],
                           .eps = 1e-3f,
                           .momentum = 0.01f};
    op->out = new_buf(net, net->c[in], net->h[in], net->w[in]);
    net->n_params += 2 * (size_t)net->c[in];
    return op->out;
}

static int act(Net *net, int in, NnAct a)
{
    Op *op = new_op(net, K_ACT, in);
    op->act = a;
    op->out = new_buf(net, net->c[in], net->h[in], net->w[in]);
    return op->out;
}

static int conv_bn_act(Net *net, int in, int cout, int k, int stride, int groups, int a)
{
    int t = bn(net, conv(net, in, cout, k, stride, groups, 0));
    return a < 0 ? t : act(net, t, (NnAct)a);
}

static int two_in(Net *net, int kind, int in, int in2)
{
    Op *op = new_op(net, kind, in);
    op->in2 = in2;
    op->out = new_buf(net, net->c[in], net->h[in], net->w[in]);
    return op->out;
}

static int squeeze_excite(Net *net, int in, int squeeze)
{
    Op *op = new_op(net, K_POOL, in);
    op->pool = (NnAdaptivePool){net->batch, net->c[in], net->h[in], net->w[in], 1, 1};
    op->out = new_buf(net, net->c[in], 1, 1);
    int s = act(net, conv(net, op->out, squeeze, 1, 1, 1, 1), NN_RELU);
    s = act(net, conv(net, s, net->c[in], 1, 1, 1, 1), NN_HARDSIGMOID);
    return two_in(net, K_CHANMUL, in, s);
}

static int make_divisible(int v)
{
    int r = (v + 4) / 8 * 8;
    if (r < 8)
        r = 8;
    return r < 0.9 * v ? r + 8 : r;
}

/* torchvision's mobilenet_v3_large, with `classes` outputs. */
static int build_mobilenet(Net *net, int classes)
{
    static const int cfg[15][7] = {
        /* in, kernel, expanded, out, se, hardswish, stride */
        {16, 3, 16, 16, 0, 0, 1},    {16, 3, 64, 24, 0, 0, 2},    {24, 3, 72, 24, 0, 0, 1},
        {24, 5, 72, 40, 1, 0, 2},    {40, 5, 120, 40, 1, 0, 1},   {40, 5, 120, 40, 1, 0, 1},
        {40, 3, 240, 80, 0, 1, 2},   {80, 3, 200, 80, 0, 1, 1},   {80, 3, 184, 80, 0, 1, 1},
        {80, 3, 184, 80, 0, 1, 1},   {80, 3, 480, 112, 1, 1, 1},  {112, 3, 672, 112, 1, 1, 1},
        {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1},
    };
    int x = new_buf(net, 3, 224, 224);
    x = conv_bn_act(net, x, 16, 3, 2, 1, NN_HARDSWISH);
    for (int i = 0; i < 15; i++) {
        const int *b = cfg[i];
        int a = b[5] ? NN_HARDSWISH : NN_RELU;
        int t = x;
        if (b[2] != b[0])
            t = conv_bn_act(net, t, b[2], 1, 1, 1, a);
        t = conv_bn_act(net, t, b[2], b[1], b[6], b[2], a);
        if (b[4])
            t = squeeze_excite(net, t, make_divisible(b[2] / 4));
        t = conv_bn_act(net, t, b[3], 1, 1, 1, -1);
        x = b[6] == 1 && b[0] == b[3] ? two_in(net, K_ADD, t, x) : t;
    }
    x = conv_bn_act(net, x, 960, 1, 1, 1, NN_HARDSWISH);
    Op *op = new_op(net, K_POOL, x);
    op->pool = (NnAdaptivePool){net->batch, 960, net->h[x], net->w[x], 1, 1};
    x = op->out = new_buf(net, 960, 1, 1);
    op = new_op(net, K_LINEAR, x);
    op->lin_in = 960;
    op->lin_out = 1280;
    x = op->out = new_buf(net, 1280, 1, 1);
    net->n_params += 960 * 1280 + 1280;
    x = act(net, x, NN_HARDSWISH);
    op = new_op(net, K_LINEAR, x);
    op->lin_in = 1280;
    op->lin_out = classes;
    x = op->out = new_buf(net, classes, 1, 1);
    net->n_params += (size_t)1280 * classes + classes;
    return x;
}

/* Places parameters and gradients in flat buffers, allocates activations. */
static void net_alloc(Net *net, const NnBackend *be)
{
    net->params = rand_floats(net->n_params, 0.05f);
    net->grads = zeros(net->n_params);
    net->m = zeros(net->n_params);
    net->v = zeros(net->n_params);
    size_t at = 0;
    for (int i = 0; i < net->n_ops; i++) {
        Op *op = &net->ops[i];
        size_t nw = 0;
        size_t nb = 0;
        if (op->kind == K_CONV) {
            NnConv2d *c = &op->conv;
            nw = (size_t)c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
            nb = op->has_bias ? (size_t)c->c_out : 0;
            size_t ws = be->conv2d_workspace(c);
            net->ws_bytes = ws > net->ws_bytes ? ws : net->ws_bytes;
        } else if (op->kind == K_BN) {
            nw = nb = (size_t)op->bn.c;
            op->stats = zeros(4 * nw);
            for (size_t k = 0; k < nw; k++)
                op->stats[nw + k] = 1.0f;
        } else if (op->kind == K_LINEAR) {
            nw = (size_t)op->lin_in * op->lin_out;
            nb = (size_t)op->lin_out;
        }
        op->w = net->params + at;
        op->dw = net->grads + at;
        op->b = nb ? net->params + at + nw : NULL;
        op->db = nb ? net->grads + at + nw : NULL;
        at += nw + nb;
        /* PyTorch's initialisation, roughly: fan-in scaled weights, BN gamma 1 and beta 0, so
         * activations and gradients keep their size through the 185 ops (random gammas shrink
         * gradients into denormals, which run 5x slower and no real step sees). */
        size_t fan_in = op->kind == K_CONV
                            ? (size_t)(op->conv.c_in / op->conv.groups) * op->conv.kh * op->conv.kw
                            : (size_t)op->lin_in;
        for (size_t k = 0; k < nw; k++)
            op->w[k] = op->kind == K_BN ? 1.0f : op->w[k] * 20.0f * sqrtf(3.0f / (float)fan_in);
        for (size_t k = 0; k < nb; k++)
            op->b[k] = 0.0f;
    }
    for (int i = 0; i < net->n_bufs; i++) {
        net->act[i] = rand_floats(net->size[i], 1.0f);
        net->grad[i] = zeros(net->size[i]);
    }
}

static void net_free(Net *net)
{
    for (int i = 0; i < net->n_ops; i++)
        mem_free(net->ops[i].stats);
    for (int i = 0; i < net->n_bufs; i++) {
        mem_free(net->act[i]);
        mem_free(net->grad[i]);
    }
    mem_free(net->params);
    mem_free(net->grads);
    mem_free(net->m);
    mem_free(net->v);
}

static void op_forward(const NnBackend *be, Net *net, Op *op, void *ws)
{
    const float *x = net->act[op->in];
    float *y = net->act[op->out];
    size_t c = op->kind == K_BN ? (size_t)op->bn.c : 0;
    switch (op->kind) {
    case K_CONV: be->conv2d_forward(&op->conv, x, op->w, op->b, y, ws); break;
    case K_BN:
        be->batchnorm_forward_train(&op->bn, x, op->w, op->b, y, op->stats, op->stats + c,
                                    &op->counter, op->stats + 2 * c, op->stats + 3 * c);
        break;
    case K_ACT: be->act_forward(op->act, net->size[op->in], x, y); break;
    case K_POOL: be->adaptive_avgpool2d_forward(&op->pool, x, y); break;
    case K_CHANMUL:
        be->chanmul_forward(net->batch, net->c[op->in], net->h[op->in] * net->w[op->in], x,
                            net->act[op->in2], y);
        break;
    case K_ADD: be->add_forward(net->size[op->in], x, net->act[op->in2], y); break;
    case K_LINEAR:
        be->linear_forward(net->batch, op->lin_in, op->lin_out, x, op->w, op->b, y);
        break;
    }
}

static void op_backward(const NnBackend *be, Net *net, Op *op, void *ws, int first)
{
    const float *x = net->act[op->in];
    const float *dy = net->grad[op->out];
    float *dx = first ? NULL : net->grad[op->in]; /* the image needs no gradient */
    size_t c = op->kind == K_BN ? (size_t)op->bn.c : 0;
    switch (op->kind) {
    case K_CONV: be->conv2d_backward(&op->conv, x, op->w, dy, dx, op->dw, op->db, ws); break;
    case K_BN:
        be->batchnorm_backward_train(&op->bn, x, op->w, op->stats + 2 * c, op->stats + 3 * c, dy,
                                     dx, op->dw, op->db);
        break;
    case K_ACT: be->act_backward(op->act, net->size[op->in], x, dy, dx); break;
    case K_POOL: be->adaptive_avgpool2d_backward(&op->pool, dy, dx); break;
    case K_CHANMUL:
        be->chanmul_backward(net->batch, net->c[op->in], net->h[op->in] * net->w[op->in], x,
                             net->act[op->in2], dy, dx, net->grad[op->in2]);
        break;
    case K_ADD: be->add_backward(net->size[op->in], dy, dx, net->grad[op->in2]); break;
    case K_LINEAR:
        be->linear_backward(net->batch, op->lin_in, op->lin_out, x, op->w, dy, dx, op->dw, op->db);
        break;
    }
}

/* One training step; adds each op kind's seconds to t_kind[kind][0 forward, 1 backward]. */
static void net_step(const NnBackend *be, Net *net, void *ws, long step, double t_kind[][3])
{
    for (int i = 0; i < net->n_ops; i++) {
        double t = now();
        op_forward(be, net, &net->ops[i], ws);
        t_kind[net->ops[i].kind][0] += now() - t;
    }
    double t = now();
    for (int i = 0; i < net->n_bufs - 1; i++) /* the graph zeroes gradients before use */
        memset(net->grad[i], 0, net->size[i] * sizeof(float));
    memset(net->grads, 0, net->n_params * sizeof(float));
    t_kind[K_ADD][2] += now() - t;
    for (int i = net->n_ops - 1; i >= 0; i--) {
        t = now();
        op_backward(be, net, &net->ops[i], ws, i == 0);
        t_kind[net->ops[i].kind][1] += now() - t;
        if (getenv("ONFH_BENCH_OPS"))
            printf("      op %3d %-10s in %3d (%zu) backward %.2f ms\n", i,
                   kind_name[net->ops[i].kind], net->ops[i].in, net->size[net->ops[i].in],
                   (now() - t) * 1e3);
    }
    t = now();
    NnAdamW h = {1e-3, 0.9, 0.999, 1e-8, 0.01};
    be->adamw_step(&h, step, 1, net->n_params, net->params, net->grads, net->m, net->v);
    t_kind[K_LINEAR][2] += now() - t;
}

static void bench_mobilenet(const NnBackend *be, int batch, int steps)
{
    Net *net = mem_calloc(1, sizeof *net);
    net->batch = batch;
    int out = build_mobilenet(net, 1000);
    double t0 = now();
    net_alloc(net, be);
    void *ws = mem_alloc(net->ws_bytes + 1);
    /* the loss gradient */
    for (size_t i = 0; i < net->size[out]; i++)
        net->grad[out][i] = 1e-3f;
    double t_kind[K_KINDS][3];
    memset(t_kind, 0, sizeof t_kind);
    net_step(be, net, ws, 1, t_kind); /* creates every primitive */
    double setup = now() - t0;
    memset(t_kind, 0, sizeof t_kind);
    double best = 1e30;
    double total = 0.0;
    for (int s = 0; s < steps; s++) {
        double t = now();
        double cpu = cpu_now();
        net_step(be, net, ws, s + 2, t_kind);
        t = now() - t;
        cpu = cpu_now() - cpu;
        if (getenv("ONFH_BENCH_STEPS"))
            printf("    step %d: %.1f ms wall, %.1f ms cpu\n", s + 2, t * 1e3, cpu * 1e3);
        total += t;
        best = t < best ? t : best;
    }
    printf("  mobilenet_v3_large %s, batch %d, %zu params, %d ops, workspace %.1f MiB, first step"
           " %.2f s:\n",
           be->name, batch, net->n_params, net->n_ops, net->ws_bytes / 1048576.0, setup);
    printf("    best step %.1f ms = %.1f img/s (mean %.1f img/s over %d steps)\n", best * 1e3,
           batch / best, batch * steps / total, steps);
    for (int k = 0; k < K_KINDS; k++)
        printf("    %-10s forward %7.1f ms  backward %7.1f ms\n", kind_name[k],
               t_kind[k][0] * 1e3 / steps, t_kind[k][1] * 1e3 / steps);
    printf("    zeroing gradients %.1f ms, adamw %.1f ms\n", t_kind[K_ADD][2] * 1e3 / steps,
           t_kind[K_LINEAR][2] * 1e3 / steps);
    net->grad[out][0] = 0.0f;
    mem_free(ws);
    net_free(net);
    mem_free(net);
}

int main(int argc, char **argv)
{
    int batch = argc > 1 ? atoi(argv[1]) : 32;
    int steps = argc > 2 ? atoi(argv[2]) : 3;
    const NnBackend *dnnl = nn_backend_dnnl();
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("nn backends, OMP_NUM_THREADS=%s\n", threads ? threads : "(unset)");
    printf("conv 3x3 64->64, 56x56, batch 8, pad 1, best of 5:\n");
    bench_conv(nn_backend_ref());
    if (!dnnl) {
        printf("  dnnl: not built (no oneDNN)\n");
        return 0;
    }
    bench_conv(dnnl);
    bench_mobilenet(dnnl, batch, steps);
    nn_dnnl_release();
    return 0;
}
