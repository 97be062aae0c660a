/* lstm.c: the LSTM sequence classifier of lstm.h: its parameters, the host loop (forward and
 * backward through time), the device path (the cuDNN core on cuda, the host loop on refdev)
 * and the head both share.
 *
 * The host loop. Per layer, forward precomputes the input term of every step in one product,
 *   A (T N, 4H) = U (T N, I) W_ih^T + b_ih,
 * then walks t = 0 .. T-1 adding the recurrent term h_{t-1} (N,H) W_hh^T + b_hh and applying
 * the cell; the gates are saved after their activations, with c and h, for backward. Backward
 * walks t = T-1 .. 0 with the running gradients dh, dc (N,H):
 *   dc += dh o (1 - tanh^2 c_t)
 *   da_i = dc g i (1-i)   da_f = dc c_{t-1} f (1-f)   da_g = dc i (1-g^2)   da_o = dh tanh c_t o
 * (1-o) dc <- dc f,   dh <- da W_hh (and dW_hh += da^T h_{t-1}, db_hh += da) and finally dU = dA
 * W_ih, dW_ih += dA^T U, db_ih += dA over all steps at once. Rows of sequences that have ended (t
 * >= len) carry h and c unchanged forward, so their gradients pass through unchanged backward and
 * their da rows are 0.
 *
 * The device path (cuda, refdev; lstm.h BACKENDS). Forward: x, its padded steps zeroed, goes up
 * into x_dev (N,T,I); the core makes y_dev (N,T,H) and hy_dev (L,N,H); the head reads the top
 * layer's hy. Backward: the head's gradient lands in the top layer's slice of dhy_dev (the
 * lower layers' final states feed nothing: 0); the core adds the parameter gradients and makes
 * dx_dev, which comes down only when the caller wants dx. On refdev the core is the host loop
 * itself, reading and writing these buffers directly (refdev's memory is host memory that the
 * graph and this file must treat as a device's, backend.h): so every transfer and layout of the
 * path is checked on CPUs, and only the cuDNN calls are left to the GPU test. */
#include "lib/nn/lstm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/cuda/nn_cuda.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

static float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static int in_size(const NnLstm *m, int l)
{
    return l == 0 ? m->cfg.input : m->cfg.hidden;
}

static int on_device(const NnLstm *m)
{
    return m->be->mem->device;
}

// --- parameters and buffers ------------------------------------------------------------------

static void free_batch(NnLstm *m)
{
    const NnMemory *mem = m->be->mem;
    for (int l = 0; l < NN_LSTM_MAX_LAYERS; l++) {
        mem_free(m->u[l]);
        mem_free(m->gates[l]);
        mem_free(m->h[l]);
        mem_free(m->c[l]);
        m->u[l] = m->gates[l] = m->h[l] = m->c[l] = NULL;
    }
    mem_free(m->d_gates), mem_free(m->d_u), mem_free(m->d_h), mem_free(m->rec);
    mem_free(m->dh), mem_free(m->dc), mem_free(m->len), mem_free(m->logits);
    mem_free(m->stage);
    m->d_gates = m->d_u = m->d_h = m->rec = m->dh = m->dc = m->logits = m->stage = NULL;
    m->len = NULL;
    mem->free(m->target_dev), mem->free(m->logits_dev), mem->free(m->probs);
    mem->free(m->dlogits), mem->free(m->x_dev), mem->free(m->y_dev), mem->free(m->hy_dev);
    mem->free(m->dhy_dev), mem->free(m->dx_dev);
    m->target_dev = NULL;
    m->logits_dev = m->probs = m->dlogits = m->x_dev = m->y_dev = m->hy_dev = NULL;
    m->dhy_dev = m->dx_dev = NULL;
    m->hn = NULL;
    m->cap = 0;
    m->cap_n = 0;
}

void nn_lstm_free(NnLstm *m)
{
    if (m->be) {
        free_batch(m);
        if (on_device(m)) { /* the replica's buffers; its views are the store's */
            m->be->mem->free(m->dev.params);
            m->be->mem->free(m->dev.grads);
            for (int k = 0; k < NN_MAX_MOMENTS; k++)
                m->be->mem->free(m->dev.moments[k]);
        }
    }
    nn_cudnn_lstm_destroy(m->cudnn);
    m->cudnn = NULL;
    nn_store_free(&m->store);
    memset(&m->dev, 0, sizeof m->dev);
}

static int add_view(NnLstm *m, int *index, const char *name, int d0, int d1, Err *e)
{
    int shape[2] = {d0, d1};
    *index = m->store.n_views;
    return nn_store_add(&m->store, NN_PARAM, name, d1 ? 2 : 1, shape, d1 ? 1 : 0, e);
}

/* What the kernels use (lstm.h): the store itself on host memory, else a replica with the same
 * views in the backend's memory. The LSTM has no buffers or counters. */
static int alloc_replica(NnLstm *m, Err *e)
{
    const NnMemory *mem = m->be->mem;
    const ParamStore *s = &m->store;
    size_t bytes = s->n_param * sizeof(float);
    m->dev = *s;
    if (!mem->device)
        return 0;
    m->dev.params = mem->alloc(bytes);
    m->dev.grads = mem->alloc(bytes);
    int ok = m->dev.params && m->dev.grads;
    for (int k = 0; k < NN_MAX_MOMENTS; k++) {
        m->dev.moments[k] = k < s->n_moments ? mem->alloc(bytes) : NULL;
        ok &= k >= s->n_moments || m->dev.moments[k];
    }
    return ok ? 0
              : err_set(e, ERR_NOMEM, "lstm: cannot allocate %zu KiB of parameters on %s",
                        (2 + (size_t)s->n_moments) * bytes >> 10, m->be->name);
}

/* The cuda backend runs the cuDNN core; refdev (ref's kernels on memory standing for a
 * device's) the host loop behind the device path; host backends the host loop. */
static int make_core(NnLstm *m, Err *e)
{
    if (!on_device(m) || !strcmp(m->be->name, "refdev"))
        return 0;
    if (strcmp(m->be->name, "cuda"))
        return err_set(e, ERR_CONFIG,
                       "lstm: backend %s keeps tensors on a device and has no LSTM core "
                       "(host backends, refdev and cuda have one)",
                       m->be->name);
    char why[512];
    const NnLstmConfig *c = &m->cfg;
    if (nn_cudnn_lstm_create(&m->cudnn, c->input, c->hidden, c->layers, c->dropout, c->seed, why,
                             sizeof why))
        return err_set(e, ERR_CONFIG, "lstm on cuda: %s", why);
    return 0;
}

int nn_lstm_init(NnLstm *m, const NnLstmConfig *cfg, const NnBackend *be, int n_moments, Err *e)
{
    memset(m, 0, sizeof *m);
    nn_store_init(&m->store);
    if (cfg->input < 1 || cfg->hidden < 1 || cfg->classes < 2 || cfg->layers < 1 ||
        cfg->layers > NN_LSTM_MAX_LAYERS || !(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return err_set(e, ERR_CONFIG,
                       "lstm: input %d, hidden %d, classes %d, layers %d, dropout %g: need "
                       "input, hidden >= 1, classes >= 2, layers 1..%d, 0 <= dropout < 1",
                       cfg->input, cfg->hidden, cfg->classes, cfg->layers, cfg->dropout,
                       NN_LSTM_MAX_LAYERS);
    m->cfg = *cfg;
    m->be = be;
    int h4 = 4 * cfg->hidden;
    char name[NN_NAME_MAX];
    int rc = 0;
    for (int l = 0; l < cfg->layers && !rc; l++) {
        snprintf(name, sizeof name, "weight_ih_l%d", l);
        rc = add_view(m, &m->w_ih[l], name, h4, in_size(m, l), e);
        snprintf(name, sizeof name, "weight_hh_l%d", l);
        rc = rc ? rc : add_view(m, &m->w_hh[l], name, h4, cfg->hidden, e);
        snprintf(name, sizeof name, "bias_ih_l%d", l);
        rc = rc ? rc : add_view(m, &m->b_ih[l], name, h4, 0, e);
        snprintf(name, sizeof name, "bias_hh_l%d", l);
        rc = rc ? rc : add_view(m, &m->b_hh[l], name, h4, 0, e);
    }
    rc = rc ? rc : add_view(m, &m->head_w, "head.weight", cfg->classes, cfg->hidden, e);
    rc = rc ? rc : add_view(m, &m->head_b, "head.bias", cfg->classes, 0, e);
    rc = rc ? rc : nn_store_alloc(&m->store, n_moments, e);
    rc = rc ? rc : alloc_replica(m, e);
    rc = rc ? rc : make_core(m, e);
    if (rc)
        nn_lstm_free(m);
    return rc;
}

void nn_lstm_upload(NnLstm *m)
{
    const NnMemory *mem = m->be->mem;
    const ParamStore *s = &m->store;
    size_t bytes = s->n_param * sizeof(float);
    if (!mem->device)
        return;
    mem->upload(m->dev.params, s->params, bytes);
    mem->upload(m->dev.grads, s->grads, bytes);
    for (int k = 0; k < s->n_moments; k++)
        mem->upload(m->dev.moments[k], s->moments[k], bytes);
}

void nn_lstm_download(NnLstm *m)
{
    const NnMemory *mem = m->be->mem;
    ParamStore *s = &m->store;
    size_t bytes = s->n_param * sizeof(float);
    if (!mem->device)
        return;
    mem->download(s->params, m->dev.params, bytes);
    mem->download(s->grads, m->dev.grads, bytes);
    for (int k = 0; k < s->n_moments; k++)
        mem->download(s->moments[k], m->dev.moments[k], bytes);
}

void nn_lstm_zero_grads(NnLstm *m)
{
    m->be->mem->zero(m->dev.grads, m->dev.n_param * sizeof(float));
}

int nn_lstm_step(NnLstm *m, const NnOptim *o, long step, Err *e)
{
    return nn_optim_step(m->be, o, &m->dev, step, e);
}

void nn_lstm_init_weights(NnLstm *m, uint64_t seed)
{
    float bound = 1.0f / sqrtf((float)m->cfg.hidden);
    for (int i = 0; i < m->store.n_views; i++) {
        Philox p;
        philox_init(&p, seed, PHILOX_INIT, (uint64_t)i);
        float *w = nn_store_param(&m->store, i);
        for (size_t j = 0; j < m->store.views[i].numel; j++)
            w[j] = bound * (2.0f * philox_uniformf(&p) - 1.0f);
    }
    nn_lstm_upload(m);
}

/* Buffers for a batch of n sequences of t steps; grown, never shrunk. The (T+1,N,H) states
 * need (n t + n) H floats, which n t <= cap and n <= cap_n bound. The host loop's own buffers
 * are made only where it runs (not on cuda), the device path's only on device backends. */
static int reserve(NnLstm *m, int n, int t, Err *e)
{
    const NnMemory *mem = m->be->mem;
    int I = m->cfg.input, H = m->cfg.hidden, K = m->cfg.classes, L = m->cfg.layers;
    size_t nt = (size_t)n * t, nn = (size_t)n, io = (size_t)(I > H ? I : H), f = sizeof(float);
    if (nt <= m->cap && n <= m->cap_n)
        return 0;
    free_batch(m);
    int bad = !(m->len = mem_calloc(nn, sizeof(int)));
    bad |= !(m->logits = mem_calloc(nn * K, f));
    bad |= !(m->target_dev = mem->alloc(nn * sizeof(int)));
    bad |= !(m->logits_dev = mem->alloc(nn * K * f));
    bad |= !(m->probs = mem->alloc(nn * K * f));
    bad |= !(m->dlogits = mem->alloc(nn * K * f));
    for (int l = 0; l < L && !m->cudnn; l++) {
        bad |= !(m->u[l] = mem_calloc(nt * (size_t)in_size(m, l), f));
        bad |= !(m->gates[l] = mem_calloc(nt * 4 * (size_t)H, f));
        bad |= !(m->h[l] = mem_calloc((nt + nn) * (size_t)H, f));
        bad |= !(m->c[l] = mem_calloc((nt + nn) * (size_t)H, f));
    }
    if (!m->cudnn) {
        bad |= !(m->d_gates = mem_calloc(nt * 4 * (size_t)H, f));
        bad |= !(m->d_u = mem_calloc(nt * io, f));
        bad |= !(m->d_h = mem_calloc(nt * (size_t)H, f));
        bad |= !(m->rec = mem_calloc(nn * 4 * (size_t)H, f));
        bad |= !(m->dh = mem_calloc(nn * (size_t)H, f));
        bad |= !(m->dc = mem_calloc(nn * (size_t)H, f));
    }
    if (mem->device) {
        bad |= !(m->x_dev = mem->alloc(nt * I * f));
        bad |= !(m->y_dev = mem->alloc(nt * H * f));
        bad |= !(m->hy_dev = mem->alloc((size_t)L * nn * H * f));
        bad |= !(m->dhy_dev = mem->alloc((size_t)L * nn * H * f));
        bad |= !(m->dx_dev = mem->alloc(nt * I * f));
        bad |= !(m->stage = mem_calloc(nt * io, f));
    }
    if (bad) {
        free_batch(m);
        return err_set(e, ERR_NOMEM, "lstm: out of memory for a batch of %d x %d on %s", n, t,
                       m->be->name);
    }
    m->cap = nt;
    m->cap_n = n;
    return 0;
}

// --- the host loop ---------------------------------------------------------------------------

/* Layer l over the inputs m->u[l]: fills gates[l], h[l], c[l]. */
static void layer_forward(NnLstm *m, int l)
{
    const NnBackend *be = m->be;
    const ParamStore *s = &m->dev;
    int n = m->n, T = m->t, H = m->cfg.hidden, G = 4 * H;
    size_t nh = (size_t)n * H, ng = (size_t)n * G;
    float *a = m->gates[l];
    be->linear_forward(n * T, in_size(m, l), G, m->u[l], nn_store_param(s, m->w_ih[l]),
                       nn_store_param(s, m->b_ih[l]), a);
    memset(m->h[l], 0, nh * sizeof(float));
    memset(m->c[l], 0, nh * sizeof(float));
    for (int t = 0; t < T; t++) {
        const float *hp = m->h[l] + (size_t)t * nh, *cp = m->c[l] + (size_t)t * nh;
        float *hn = m->h[l] + (size_t)(t + 1) * nh, *cn = m->c[l] + (size_t)(t + 1) * nh;
        float *at = a + (size_t)t * ng;
        be->linear_forward(n, H, G, hp, nn_store_param(s, m->w_hh[l]),
                           nn_store_param(s, m->b_hh[l]), m->rec);
        for (int i = 0; i < n; i++) {
            float *g = at + (size_t)i * G;
            const float *r = m->rec + (size_t)i * G;
            size_t o = (size_t)i * H;
            if (t >= m->len[i]) { /* ended: carry the state, no gates */
                memcpy(hn + o, hp + o, (size_t)H * sizeof(float));
                memcpy(cn + o, cp + o, (size_t)H * sizeof(float));
                memset(g, 0, (size_t)G * sizeof(float));
                continue;
            }
            for (int k = 0; k < H; k++) {
                float gi = sigmoidf(g[k] + r[k]);
                float gf = sigmoidf(g[H + k] + r[H + k]);
                float gg = tanhf(g[2 * H + k] + r[2 * H + k]);
                float go = sigmoidf(g[3 * H + k] + r[3 * H + k]);
                g[k] = gi, g[H + k] = gf, g[2 * H + k] = gg, g[3 * H + k] = go;
                cn[o + k] = gf * cp[o + k] + gi * gg;
                hn[o + k] = go * tanhf(cn[o + k]);
            }
        }
    }
}

/* Layer l's outputs (h[l] slots 1..T) -> the next layer's input, through dropout in training.
 * The mask element is the batch-first flat index (lstm.h). */
static void inter_layer(NnLstm *m, int l)
{
    int n = m->n, T = m->t, H = m->cfg.hidden;
    size_t nh = (size_t)n * H;
    const float *out = m->h[l] + nh;
    float *u = m->u[l + 1];
    int drop = m->training && m->drop.p > 0.0f;
    NnDropout d = m->drop;
    d.op = (uint32_t)l;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < H; k++) {
                size_t at = (size_t)t * nh + (size_t)i * H + k;
                uint64_t j = ((uint64_t)i * T + t) * H + k;
                u[at] = drop ? out[at] * nn_mask_scale(&d, j) : out[at];
            }
}

/* Every layer over the batch-first x (N,T,I); h_n is then at slot T of the top layer's h. */
static void host_forward(NnLstm *m, const float *x)
{
    int n = m->n, t = m->t, I = m->cfg.input, H = m->cfg.hidden, L = m->cfg.layers;
    /* batch-first x -> time-major u[0]; steps past a length are zeroed, not copied: they are
     * never used, but dW_ih sums over every row, and 0 times a NaN there would be NaN */
    for (int i = 0; i < n; i++)
        for (int s = 0; s < t; s++) {
            float *dst = m->u[0] + ((size_t)s * n + i) * I;
            if (s < m->len[i])
                memcpy(dst, x + ((size_t)i * t + s) * I, (size_t)I * sizeof(float));
            else
                memset(dst, 0, (size_t)I * sizeof(float));
        }
    for (int l = 0; l < L; l++) {
        layer_forward(m, l);
        if (l + 1 < L)
            inter_layer(m, l);
    }
    m->hn = m->h[L - 1] + (size_t)t * n * H;
}

/* Backward through layer l. On entry m->dh holds d loss / d h_T (N,H); dout (T,N,H) or NULL
 * the gradient reaching the layer's outputs at each step from above. Adds parameter gradients
 * and writes d loss / d u[l] into du (T,N,I_l) (or skips it when NULL). */
static void layer_backward(NnLstm *m, int l, const float *dout, float *du)
{
    const NnBackend *be = m->be;
    const ParamStore *s = &m->dev;
    int n = m->n, T = m->t, H = m->cfg.hidden, G = 4 * H, I = in_size(m, l);
    size_t nh = (size_t)n * H, ng = (size_t)n * G;
    float *dh = m->dh, *dc = m->dc;
    memset(dc, 0, nh * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        const float *cp = m->c[l] + (size_t)t * nh, *cn = m->c[l] + (size_t)(t + 1) * nh;
        const float *gt = m->gates[l] + (size_t)t * ng;
        float *da = m->d_gates + (size_t)t * ng;
        if (dout)
            for (size_t k = 0; k < nh; k++)
                dh[k] += dout[(size_t)t * nh + k];
        for (int i = 0; i < n; i++) {
            float *dai = da + (size_t)i * G;
            size_t o = (size_t)i * H;
            if (t >= m->len[i]) { /* carried: dh, dc pass through */
                memset(dai, 0, (size_t)G * sizeof(float));
                continue;
            }
            const float *g = gt + (size_t)i * G;
            for (int k = 0; k < H; k++) {
                float gi = g[k], gf = g[H + k], gg = g[2 * H + k], go = g[3 * H + k];
                float tc = tanhf(cn[o + k]);
                float dck = dc[o + k] + dh[o + k] * go * (1.0f - tc * tc);
                dai[k] = dck * gg * gi * (1.0f - gi);
                dai[H + k] = dck * cp[o + k] * gf * (1.0f - gf);
                dai[2 * H + k] = dck * gi * (1.0f - gg * gg);
                dai[3 * H + k] = dh[o + k] * tc * go * (1.0f - go);
                dc[o + k] = dck * gf;
                dh[o + k] = 0.0f; /* refilled below with da W_hh */
            }
        }
        be->linear_backward(n, H, G, m->h[l] + (size_t)t * nh, nn_store_param(s, m->w_hh[l]), da,
                            t > 0 ? dh : NULL, nn_store_grad(s, m->w_hh[l]),
                            nn_store_grad(s, m->b_hh[l]));
    }
    if (du)
        memset(du, 0, (size_t)T * n * I * sizeof(float));
    be->linear_backward(n * T, I, G, m->u[l], nn_store_param(s, m->w_ih[l]), m->d_gates, du,
                        nn_store_grad(s, m->w_ih[l]), nn_store_grad(s, m->b_ih[l]));
}

/* Every layer back, from d loss / d h_n of the top layer in m->dh (N,H). Parameter gradients
 * are added; with want_du, d loss / d x lands in m->d_u, time-major (T,N,I), 0 past lengths. */
static void host_backward(NnLstm *m, int want_du)
{
    int n = m->n, T = m->t, H = m->cfg.hidden, L = m->cfg.layers;
    size_t nh = (size_t)n * H;
    const float *dout = NULL;
    for (int l = L - 1; l > 0; l--) {
        layer_backward(m, l, dout, m->d_u);
        /* d u[l] -> d outputs of layer l-1, through the same dropout mask */
        int drop = m->training && m->drop.p > 0.0f;
        NnDropout d = m->drop;
        d.op = (uint32_t)(l - 1);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < n; i++)
                for (int k = 0; k < H; k++) {
                    size_t at = (size_t)t * nh + (size_t)i * H + k;
                    uint64_t j = ((uint64_t)i * T + t) * H + k;
                    m->d_h[at] = drop ? m->d_u[at] * nn_mask_scale(&d, j) : m->d_u[at];
                }
        dout = m->d_h;
        memset(m->dh, 0, nh * sizeof(float)); /* h_T of a lower layer feeds no head */
    }
    layer_backward(m, 0, dout, want_du ? m->d_u : NULL);
}

/* The top layer's outputs, batch-first (N,T,H), 0 past lengths. */
static void host_outputs(const NnLstm *m, float *out)
{
    int n = m->n, T = m->t, H = m->cfg.hidden;
    const float *h = m->h[m->cfg.layers - 1];
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)i * T + t) * H;
            if (t < m->len[i])
                memcpy(o, h + ((size_t)(t + 1) * n + i) * H, (size_t)H * sizeof(float));
            else
                memset(o, 0, (size_t)H * sizeof(float));
        }
}

// --- the device path -------------------------------------------------------------------------

/* Pointers to the kernels' copies of each layer's four tensors (nn_cuda.h's order). */
static void layer_tensors(const NnLstm *m, int grads, float **p)
{
    float *(*of)(const ParamStore *, int) = grads ? nn_store_grad : nn_store_param;
    for (int l = 0; l < m->cfg.layers; l++) {
        p[4 * l + 0] = of(&m->dev, m->w_ih[l]);
        p[4 * l + 1] = of(&m->dev, m->w_hh[l]);
        p[4 * l + 2] = of(&m->dev, m->b_ih[l]);
        p[4 * l + 3] = of(&m->dev, m->b_hh[l]);
    }
}

/* x (host, batch-first) -> x_dev, then the core -> y_dev, hy_dev. keep: the forward of a loss
 * that backward may follow. cuDNN runs in training mode (keeping its reserve space) then, and
 * in training (its dropout is a training-mode thing); else in inference mode. */
static int device_forward(NnLstm *m, const float *x, int keep, Err *e)
{
    const NnMemory *mem = m->be->mem;
    int n = m->n, T = m->t, I = m->cfg.input, H = m->cfg.hidden, L = m->cfg.layers;
    size_t nh = (size_t)n * H;
    for (int i = 0; i < n; i++) { /* padded steps zeroed, as host_forward does */
        size_t row = (size_t)i * T * I, valid = (size_t)m->len[i] * I;
        memcpy(m->stage + row, x + row, valid * sizeof(float));
        memset(m->stage + row + valid, 0, ((size_t)T * I - valid) * sizeof(float));
    }
    mem->upload(m->x_dev, m->stage, (size_t)n * T * I * sizeof(float));
    if (m->cudnn) {
        float *w[4 * NN_LSTM_MAX_LAYERS];
        char why[512];
        layer_tensors(m, 0, w);
        if (nn_cudnn_lstm_forward(m->cudnn, (const float *const *)w, n, T, m->len, m->x_dev,
                                  m->y_dev, m->hy_dev, keep || m->training,
                                  m->training && m->drop.p > 0.0f, why, sizeof why))
            return err_set(e, ERR_INTERNAL, "lstm on cuda, batch %d x %d: %s", n, T, why);
    } else { /* refdev: the host loop, on its memory directly */
        host_forward(m, m->x_dev);
        host_outputs(m, m->y_dev);
        for (int l = 0; l < L; l++)
            memcpy(m->hy_dev + l * nh, m->h[l] + (size_t)T * nh, nh * sizeof(float));
    }
    m->hn = m->hy_dev + (L - 1) * nh;
    return 0;
}

/* dhy_dev -> parameter gradients added, and dx (host, batch-first) += d loss / d x. */
static void device_backward(NnLstm *m, float *dx)
{
    int n = m->n, T = m->t, I = m->cfg.input, H = m->cfg.hidden, L = m->cfg.layers;
    size_t nh = (size_t)n * H;
    if (m->cudnn) {
        float *g[4 * NN_LSTM_MAX_LAYERS];
        layer_tensors(m, 1, g);
        nn_cudnn_lstm_backward(m->cudnn, m->x_dev, m->y_dev, m->dhy_dev, m->dx_dev, g);
    } else { /* refdev */
        memcpy(m->dh, m->dhy_dev + (L - 1) * nh, nh * sizeof(float));
        host_backward(m, dx != NULL);
        for (int i = 0; dx && i < n; i++) /* time-major d_u -> batch-first dx_dev */
            for (int t = 0; t < T; t++)
                memcpy(m->dx_dev + ((size_t)i * T + t) * I, m->d_u + ((size_t)t * n + i) * I,
                       (size_t)I * sizeof(float));
    }
    if (!dx)
        return;
    m->be->mem->download(m->stage, m->dx_dev, (size_t)n * T * I * sizeof(float));
    for (int i = 0; i < n; i++) /* steps past a length get nothing, whatever the core left */
        for (size_t k = 0; k < (size_t)m->len[i] * I; k++)
            dx[(size_t)i * T * I + k] += m->stage[(size_t)i * T * I + k];
}

// --- the head and the entry points -----------------------------------------------------------

/* logits = W h_n + b into logits_dev and down to m->logits; with a target the loss. */
static float head_forward(NnLstm *m, const int *target)
{
    const NnBackend *be = m->be;
    const ParamStore *s = &m->dev;
    int n = m->n, H = m->cfg.hidden, K = m->cfg.classes;
    NnXent xent = {n, K, 0.0f};
    be->linear_forward(n, H, K, m->hn, nn_store_param(s, m->head_w), nn_store_param(s, m->head_b),
                       m->logits_dev);
    be->mem->download(m->logits, m->logits_dev, (size_t)n * K * sizeof(float));
    if (!target)
        return 0.0f;
    be->mem->upload(m->target_dev, target, (size_t)n * sizeof(int));
    return be->xent_forward(&xent, m->logits_dev, m->target_dev, NULL, m->probs);
}

/* The head back: dh (N,H), zeroed by the caller, += d loss / d h_n; head gradients added. */
static void head_backward(NnLstm *m, float *dh)
{
    const NnBackend *be = m->be;
    const ParamStore *s = &m->dev;
    int n = m->n, H = m->cfg.hidden, K = m->cfg.classes;
    NnXent xent = {n, K, 0.0f};
    be->mem->zero(m->dlogits, (size_t)n * K * sizeof(float));
    be->xent_backward(&xent, m->probs, m->target_dev, NULL, 1.0f, m->dlogits);
    be->linear_backward(n, H, K, m->hn, nn_store_param(s, m->head_w), m->dlogits, dh,
                        nn_store_grad(s, m->head_w), nn_store_grad(s, m->head_b));
}

int nn_lstm_forward(NnLstm *m, int n, int t, const float *x, const int *len, const int *target,
                    int training, uint64_t step, float *loss, Err *e)
{
    if (n < 1 || t < 1)
        return err_set(e, ERR_INTERNAL, "lstm: batch %d x %d", n, t);
    for (int i = 0; i < n; i++)
        if (len[i] < 1 || len[i] > t)
            return err_set(e, ERR_INTERNAL, "lstm: sequence %d has length %d, need 1..%d", i,
                           len[i], t);
    NnXent xent = {n, m->cfg.classes, 0.0f};
    if (target && nn_xent_setup(&xent, target, e))
        return e ? e->code : ERR_INTERNAL;
    int rc = reserve(m, n, t, e);
    if (rc)
        return rc;
    m->n = n, m->t = t, m->training = training;
    m->drop =
        (NnDropout){.p = m->cfg.dropout, .seed = m->cfg.seed, .step = step, .op = 0, .first = 0};
    memcpy(m->len, len, (size_t)n * sizeof(int));
    m->has_target = 0;
    if (on_device(m))
        rc = device_forward(m, x, target != NULL, e);
    else
        host_forward(m, x);
    if (rc)
        return rc;
    m->loss = head_forward(m, target);
    m->has_target = target != NULL;
    if (target && loss)
        *loss = m->loss;
    return 0;
}

void nn_lstm_backward(NnLstm *m, float *dx)
{
    int n = m->n, T = m->t, I = m->cfg.input, H = m->cfg.hidden, L = m->cfg.layers;
    size_t nh = (size_t)n * H;
    if (on_device(m)) {
        m->be->mem->zero(m->dhy_dev, (size_t)L * nh * sizeof(float));
        head_backward(m, m->dhy_dev + (L - 1) * nh);
        device_backward(m, dx);
        return;
    }
    memset(m->dh, 0, nh * sizeof(float));
    head_backward(m, m->dh);
    host_backward(m, dx != NULL);
    if (dx)
        for (int i = 0; i < n; i++)
            for (int t = 0; t < T; t++)
                for (int k = 0; k < I; k++)
                    dx[((size_t)i * T + t) * I + k] += m->d_u[((size_t)t * n + i) * I + k];
}

void nn_lstm_outputs(const NnLstm *m, float *out)
{
    int n = m->n, T = m->t, H = m->cfg.hidden;
    if (!on_device(m)) {
        host_outputs(m, out);
        return;
    }
    m->be->mem->download(out, m->y_dev, (size_t)n * T * H * sizeof(float));
    for (int i = 0; i < n; i++) /* cuDNN's padding fill is 0 already; this makes it certain */
        memset(out + ((size_t)i * T + m->len[i]) * H, 0,
               (size_t)(T - m->len[i]) * H * sizeof(float));
}

void nn_lstm_visit_inputs(int n, int t, int f, const float *values, const float *mask,
                          const float *gap_days, float *x)
{
    int w = 2 * f + 1;
    for (size_t v = 0; v < (size_t)n * t; v++) {
        const float *val = values + v * f, *msk = mask + v * f;
        float *o = x + v * w;
        for (int k = 0; k < f; k++) {
            int seen = msk[k] != 0.0f;
            o[k] = seen ? val[k] : 0.0f; /* selected: NaN or garbage there cannot leak */
            o[f + k] = seen ? 1.0f : 0.0f;
        }
        o[2 * f] = v % (size_t)t == 0 ? 0.0f : gap_days[v] / 365.25f;
    }
}
