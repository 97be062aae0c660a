/* graph.c: building a static graph, planning its memory, and running it (see graph.h). */
#include "lib/nn/graph.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"

#define ALIGN_FLOATS 16 /* 64 bytes: each arena buffer starts on a cache line */

void nn_graph_init(NnGraph *g, const NnBackend *be, int batch)
{
    memset(g, 0, sizeof *g);
    g->be = be;
    g->batch = batch;
    g->input = g->output = -1;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_TORCH_DEFAULT;
    g->loss_scale = 1.0f;
    nn_store_init(&g->store);
}

void nn_graph_free(NnGraph *g)
{
    const NnMemory *m = g->be->mem;
    for (int i = 0; i < g->n_nodes; i++) {
        NnNode *nd = &g->nodes[i];
        mem_free(nd->in);
        mem_free(nd->chans);
        m->free(nd->save_mean);
        m->free(nd->save_invstd);
        m->free(nd->argmax);
    }
    mem_free(g->nodes);
    mem_free(g->values);
    m->free(g->arena);
    m->free(g->workspace);
    m->free(g->probs);
    m->free(g->targets);
    m->free(g->class_weight);
    m->free(g->staging);
    mem_free(g->host_logits);
    mem_free(g->ptrs);
    if (m->device) { /* the replica's buffers; its views are the store's */
        m->free(g->dev.params);
        m->free(g->dev.grads);
        for (int k = 0; k < NN_MAX_MOMENTS; k++)
            m->free(g->dev.moments[k]);
        m->free(g->dev.buffers);
        m->free(g->dev.counters);
    }
    nn_store_free(&g->store);
    const NnBackend *be = g->be;
    int batch = g->batch;
    nn_graph_init(g, be, batch);
}

// ---------------------------------------------------------------------------------------------
// Building

/* Records the first error; every builder returns -1 from then on. */
__attribute__((format(printf, 2, 3))) static int fail(NnGraph *g, const char *fmt, ...)
{
    if (!g->failed) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        err_set(&g->err, ERR_CONFIG, "%s", msg);
        g->failed = 1;
    }
    return -1;
}

/* Keeps e as the graph's first error (a descriptor's setup check failed). */
static int fail_err(NnGraph *g, const Err *e)
{
    if (!g->failed) {
        g->err = *e;
        g->failed = 1;
    }
    return -1;
}

static int check_value(NnGraph *g, int x)
{
    if (g->failed)
        return -1;
    if (x < 0 || x >= g->n_values)
        return fail(g, "graph: %s: no such value", "input id");
    return 0;
}

static int new_value(NnGraph *g, int n, int c, int h, int w)
{
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? 2 * g->cap_values : 64;
        NnValue *v = mem_realloc(g->values, (size_t)cap * sizeof *v);
        if (!v)
            return fail(g, "graph: %s", "out of memory");
        g->values = v;
        g->cap_values = cap;
    }
    NnValue *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->n = n, v->c = c, v->h = h, v->w = w;
    v->numel = (size_t)n * c * h * w;
    v->producer = g->n_nodes; /* the node about to be appended; the input fixes this up */
    v->last_consumer = -1;
    v->base = -1;
    v->zero_at = -1;
    v->alias = -1;
    v->off = v->goff = SIZE_MAX;
    g->output = g->n_values;
    return g->n_values++;
}

/* Appends a node reading n_in values; its outputs are added by the caller. */
static NnNode *new_node(NnGraph *g, NnOpKind kind, int n_in, const int *in)
{
    if (g->failed)
        return NULL;
    for (int i = 0; i < n_in; i++) {
        if (check_value(g, in[i]) < 0)
            return NULL;
        const NnValue *v = &g->values[in[i]];
        if (v->is_buffer || (v->view && kind != NN_OP_BN && v->c != g->values[v->base].c)) {
            fail(g, "graph: %s", "a channel buffer or a strided view read by an op but BN");
            return NULL;
        }
    }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        NnNode *nd = mem_realloc(g->nodes, (size_t)cap * sizeof *nd);
        if (!nd) {
            fail(g, "graph: %s", "out of memory");
            return NULL;
        }
        g->nodes = nd;
        g->cap_nodes = cap;
    }
    NnNode *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->weight = nd->bias = nd->run_mean = nd->run_var = nd->n_tracked = -1;
    nd->in = mem_alloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    if (!nd->in) {
        fail(g, "graph: %s", "out of memory");
        return NULL;
    }
    memcpy(nd->in, in, (size_t)n_in * sizeof(int));
    nd->n_in = n_in;
    g->n_nodes++; /* counted now so that nn_graph_free releases nd->in on any later error */
    return nd;
}

/* The node's single output; the node was appended last, so its index is n_nodes - 1. */
static int add_output(NnGraph *g, NnNode *nd, int n, int c, int h, int w)
{
    g->n_nodes--; /* new_value stamps producer = n_nodes */
    int id = new_value(g, n, c, h, w);
    g->n_nodes++;
    if (id >= 0)
        nd = &g->nodes[g->n_nodes - 1], nd->out[nd->n_out++] = id;
    return id;
}

static int add_param(NnGraph *g, int kind, const char *name, const char *suffix, int ndim,
                     const int *shape, int decay)
{
    if (g->failed)
        return -1;
    char full[NN_NAME_MAX + 32];
    snprintf(full, sizeof full, "%s.%s", name, suffix);
    Err e = {0};
    if (nn_store_add(&g->store, kind, full, ndim, shape, decay, &e) < 0)
        return fail_err(g, &e);
    return g->store.n_views - 1;
}

int nn_graph_input(NnGraph *g, int c, int h, int w)
{
    if (g->failed)
        return -1;
    if (g->input >= 0)
        return fail(g, "graph: %s", "a second input");
    int id = new_value(g, g->batch, c, h, w);
    if (id < 0)
        return -1;
    g->values[id].producer = -1;
    g->input = id;
    return id;
}

int nn_graph_conv(NnGraph *g, const char *name, int x, int c_out, int k, int stride, int pad,
                  int dil, int groups, int bias)
{
    NnNode *nd = new_node(g, NN_OP_CONV, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    NnConv2d c = nn_conv2d_square(v->n, v->c, v->h, v->w, c_out, k, stride, pad, dil, groups);
    Err e = {0};
    if (nn_conv2d_setup(&c, &e) < 0) {
        err_prefix(&e, "%s: ", name);
        return fail_err(g, &e);
    }
    nd->u.conv = c;
    nd->init = g->conv_init;
    int ws[4] = {c_out, c.c_in / groups, k, k};
    nd->weight = add_param(g, NN_PARAM, name, "weight", 4, ws, 1);
    if (bias)
        nd->bias = add_param(g, NN_PARAM, name, "bias", 1, &c_out, 0);
    return add_output(g, nd, c.n, c_out, c.h_out, c.w_out);
}

int nn_graph_bn(NnGraph *g, const char *name, int x, float eps, float momentum)
{
    NnNode *nd = new_node(g, NN_OP_BN, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    nd->u.bn =
        (NnBatchNorm){.n = v->n, .c = v->c, .h = v->h, .w = v->w, .eps = eps, .momentum = momentum};
    if (v->view)
        nd->u.bn.ldx = g->values[v->base].c;
    int c = v->c, n = v->n, h = v->h, w = v->w;
    nd->weight = add_param(g, NN_PARAM, name, "weight", 1, &c, 0);
    nd->bias = add_param(g, NN_PARAM, name, "bias", 1, &c, 0);
    nd->run_mean = add_param(g, NN_BUFFER, name, "running_mean", 1, &c, 0);
    nd->run_var = add_param(g, NN_BUFFER, name, "running_var", 1, &c, 0);
    nd->n_tracked = add_param(g, NN_COUNTER, name, "num_batches_tracked", 0, NULL, 0);
    nd->save_mean = g->be->mem->alloc((size_t)c * sizeof(float));
    nd->save_invstd = g->be->mem->alloc((size_t)c * sizeof(float));
    if (!nd->save_mean || !nd->save_invstd)
        return fail(g, "graph: %s", "out of memory");
    return add_output(g, nd, n, c, h, w);
}

int nn_graph_act(NnGraph *g, int x, NnAct a)
{
    NnNode *nd = new_node(g, NN_OP_ACT, 1, &x);
    if (!nd)
        return -1;
    nd->u.act = a;
    const NnValue *v = &g->values[x];
    return add_output(g, nd, v->n, v->c, v->h, v->w);
}

static int pool(NnGraph *g, NnOpKind kind, int x, int k, int stride, int pad, int ceil_mode,
                int cip)
{
    NnNode *nd = new_node(g, kind, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    NnPool2d p = nn_pool2d_square(v->n, v->c, v->h, v->w, k, stride, pad, ceil_mode, cip);
    Err e = {0};
    if (nn_pool2d_setup(&p, &e) < 0) {
        return fail_err(g, &e);
    }
    nd->u.pool = p;
    if (kind == NN_OP_MAXPOOL) {
        nd->argmax = g->be->mem->alloc((size_t)p.n * p.c * p.h_out * p.w_out * sizeof(int32_t));
        if (!nd->argmax)
            return fail(g, "graph: %s", "out of memory");
    }
    return add_output(g, nd, p.n, p.c, p.h_out, p.w_out);
}

int nn_graph_maxpool(NnGraph *g, int x, int k, int stride, int pad, int ceil_mode)
{
    return pool(g, NN_OP_MAXPOOL, x, k, stride, pad, ceil_mode, 1);
}

int nn_graph_avgpool(NnGraph *g, int x, int k, int stride, int pad, int ceil_mode,
                     int count_include_pad)
{
    return pool(g, NN_OP_AVGPOOL, x, k, stride, pad, ceil_mode, count_include_pad);
}

int nn_graph_adaptive_avgpool(NnGraph *g, int x, int h_out, int w_out)
{
    NnNode *nd = new_node(g, NN_OP_ADAPTIVE, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    NnAdaptivePool p = {
        .n = v->n, .c = v->c, .h_in = v->h, .w_in = v->w, .h_out = h_out, .w_out = w_out};
    Err e = {0};
    if (nn_adaptive_pool_setup(&p, &e) < 0) {
        return fail_err(g, &e);
    }
    nd->u.ap = p;
    return add_output(g, nd, p.n, p.c, h_out, w_out);
}

/* x: (N,C,H,W) in the backend's layout -> (N,CHW,1,1) in torch.flatten's order, (C,H,W). */
static int flatten(NnGraph *g, int x)
{
    NnNode *nd = new_node(g, NN_OP_FLATTEN, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    return add_output(g, nd, v->n, v->c * v->h * v->w, 1, 1);
}

int nn_graph_linear(NnGraph *g, const char *name, int x, int out, int bias)
{
    /* Linear flattens (N,C,H,W) in NCHW order (its weight's columns are (C,H,W)): free in
     * NCHW, a transposition in a channels-last layout unless H = W = 1 (VGG's 7x7 map). */
    if (check_value(g, x) == 0 && g->values[x].h * g->values[x].w != 1 &&
        g->be->layout != NN_LAYOUT_NCHW)
        x = flatten(g, x);
    NnNode *nd = new_node(g, NN_OP_LINEAR, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    int in = v->c * v->h * v->w;
    nd->u.lin.in = in, nd->u.lin.out = out;
    nd->init = g->linear_init;
    int ws[2] = {out, in};
    nd->weight = add_param(g, NN_PARAM, name, "weight", 2, ws, 1);
    if (bias)
        nd->bias = add_param(g, NN_PARAM, name, "bias", 1, &out, 0);
    return add_output(g, nd, v->n, out, 1, 1);
}

static int same_shape(const NnValue *a, const NnValue *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

int nn_graph_add(NnGraph *g, int a, int b)
{
    int in[2] = {a, b};
    NnNode *nd = new_node(g, NN_OP_ADD, 2, in);
    if (!nd)
        return -1;
    const NnValue *va = &g->values[a];
    if (!same_shape(va, &g->values[b]))
        return fail(g, "graph: %s: shapes differ", "add");
    return add_output(g, nd, va->n, va->c, va->h, va->w);
}

int nn_graph_chanmul(NnGraph *g, int x, int s)
{
    int in[2] = {x, s};
    NnNode *nd = new_node(g, NN_OP_CHANMUL, 2, in);
    if (!nd)
        return -1;
    const NnValue *vx = &g->values[x], *vs = &g->values[s];
    if (vs->n != vx->n || vs->c != vx->c || vs->h * vs->w != 1)
        return fail(g, "graph: %s: scale must be (N,C,1,1)", "chanmul");
    return add_output(g, nd, vx->n, vx->c, vx->h, vx->w);
}

int nn_graph_concat(NnGraph *g, int n, const int *xs)
{
    NnNode *nd = new_node(g, NN_OP_CONCAT, n, xs);
    if (!nd)
        return -1;
    nd->chans = mem_alloc((size_t)n * sizeof(int));
    if (!nd->chans)
        return fail(g, "graph: %s", "out of memory");
    const NnValue *v0 = &g->values[xs[0]];
    int c = 0;
    for (int i = 0; i < n; i++) {
        const NnValue *v = &g->values[xs[i]];
        if (v->n != v0->n || v->h != v0->h || v->w != v0->w)
            return fail(g, "graph: %s: spatial shapes differ", "concat");
        nd->chans[i] = v->c;
        c += v->c;
    }
    return add_output(g, nd, v0->n, c, v0->h, v0->w);
}

int nn_graph_split(NnGraph *g, int x, int parts, const int *chans, int *outs)
{
    NnNode *nd = new_node(g, NN_OP_SPLIT, 1, &x);
    if (!nd)
        return -1;
    if (parts < 1 || parts > NN_MAX_OUT)
        return fail(g, "graph: %s: 1 to 4 parts", "split");
    const NnValue v = g->values[x];
    nd->chans = mem_alloc((size_t)parts * sizeof(int));
    if (!nd->chans)
        return fail(g, "graph: %s", "out of memory");
    int c = 0;
    for (int i = 0; i < parts; i++)
        c += nd->chans[i] = chans[i];
    if (c != v.c)
        return fail(g, "graph: %s: parts do not add up to the channels", "split");
    for (int i = 0; i < parts; i++)
        if ((outs[i] = add_output(g, nd, v.n, chans[i], v.h, v.w)) < 0)
            return -1;
    return 0;
}

int nn_graph_shuffle(NnGraph *g, int x, int groups)
{
    NnNode *nd = new_node(g, NN_OP_SHUFFLE, 1, &x);
    if (!nd)
        return -1;
    const NnValue *v = &g->values[x];
    if (groups < 1 || v->c % groups)
        return fail(g, "graph: %s: groups must divide the channels", "shuffle");
    nd->u.groups = groups;
    return add_output(g, nd, v->n, v->c, v->h, v->w);
}

// ---------------------------------------------------------------------------------------------
// Channel buffers (graph.h). Why: DenseNet's layer l reads the concatenation of the block input
// and all l earlier layers' 32 new channels. Concatenating by copy, as torch.cat does, writes
// C0 + 32 l channels per layer: quadratic in the block's depth in time and, since a training
// graph keeps every concatenation for its BN's backward, in memory too. One buffer per block
// that every layer writes its channels into stores each channel once. (Each layer's norm1
// output, which relu1 then overwrites in place, is still C0 + 32 l channels wide and kept for
// conv1's backward: DenseNet-121 at 224 trains in 115 MiB of activations per image with
// buffers, 149 with copies; recomputing norm1-relu1 in backward, torchvision's
// memory_efficient, would remove that term too.)

static int views_on(const NnGraph *g)
{
    return g->be->channel_views && !g->no_views;
}

int nn_graph_buffer(NnGraph *g, int c, int h, int w)
{
    if (g->failed)
        return -1;
    if (c < 1 || h < 1 || w < 1)
        return fail(g, "graph: buffer of %d x %d x %d", c, h, w);
    int out = g->output;
    int id = new_value(g, g->batch, c, h, w);
    if (id < 0)
        return -1;
    g->output = out; /* storage, never a result */
    g->values[id].is_buffer = 1;
    g->values[id].producer = INT_MAX; /* until a view is placed */
    return id;
}

/* Sets the ldy of the node that made x: y is now a channel view of a buffer of ld channels. */
static int set_ldy(NnNode *nd, int ld)
{
    switch (nd->kind) {
    case NN_OP_CONV: nd->u.conv.ldy = ld; return 0;
    case NN_OP_MAXPOOL:
    case NN_OP_AVGPOOL: nd->u.pool.ldy = ld; return 0;
    default: return -1;
    }
}

int nn_graph_place(NnGraph *g, int x, int buf)
{
    if (check_value(g, x) < 0 || check_value(g, buf) < 0)
        return -1;
    NnValue *v = &g->values[x], *b = &g->values[buf];
    if (!b->is_buffer)
        return fail(g, "graph: %s", "placing into a value that is not a buffer");
    int unread =
        v->producer >= 0 && v->view == 0 && v->base < 0 && g->nodes[v->producer].n_out == 1;
    for (int i = v->producer + 1; unread && i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            unread &= g->nodes[i].in[k] != x;
    if (!unread)
        return fail(g, "graph: %s", "only a value not read yet can be placed, once");
    if (v->n != b->n || v->h != b->h || v->w != b->w || b->filled + v->c > b->c)
        return fail(g, "graph: %s", "placed value does not fit the buffer");
    NnNode *nd = &g->nodes[v->producer];
    if (views_on(g)) {
        if (set_ldy(nd, b->c) < 0)
            return fail(g, "graph: %s", "only conv and pooling outputs can be placed");
        v->view = 1;
        if (b->producer > v->producer)
            b->producer = v->producer;
    }
    v->base = buf;
    v->c_off = b->filled;
    b->filled += v->c;
    return x;
}

int nn_graph_prefix(NnGraph *g, int buf, int c)
{
    if (check_value(g, buf) < 0)
        return -1;
    const NnValue b = g->values[buf];
    if (!b.is_buffer || c < 1 || c > b.filled)
        return fail(g, "graph: %s", "prefix beyond the channels placed");
    if (views_on(g)) {
        int out = g->output;
        int id = new_value(g, b.n, c, b.h, b.w);
        if (id < 0)
            return -1;
        NnValue *v = &g->values[id];
        v->producer = INT_MAX; /* made by no node: the parts' producers count */
        v->base = buf, v->c_off = 0, v->view = 1;
        g->output = out;
        return id;
    }
    /* Copies: a concat of the parts covering [0, c), in placement order. */
    int n = 0, at = 0, single = -1;
    for (int id = 0; id < g->n_values && at < c; id++)
        if (g->values[id].base == buf && g->values[id].c_off == at)
            at += g->values[id].c, n++, single = id;
    if (at != c)
        return fail(g, "graph: %s", "prefix does not end where a placed value ends");
    if (n == 1)
        return single;
    int *parts = mem_alloc((size_t)n * sizeof(int));
    if (!parts)
        return fail(g, "graph: %s", "out of memory");
    n = 0, at = 0;
    for (int id = 0; id < g->n_values && at < c; id++)
        if (g->values[id].base == buf && g->values[id].c_off == at)
            at += g->values[id].c, parts[n++] = id;
    int y = nn_graph_concat(g, n, parts);
    mem_free(parts);
    return y;
}

static int random_op(NnGraph *g, NnOpKind kind, int x, float p)
{
    NnNode *nd = new_node(g, kind, 1, &x);
    if (!nd)
        return -1;
    if (!(p >= 0.0f && p <= 1.0f))
        return fail(g, "graph: %s: probability outside [0, 1]", "dropout");
    const NnValue *v = &g->values[x];
    if (kind == NN_OP_DROPOUT && v->h * v->w != 1)
        return fail(g, "graph: %s: only on (N,F) features (backend layouts differ elsewhere)",
                    "dropout");
    nd->u.drop.p = p;
    nd->u.drop.op = (uint32_t)g->n_random++;
    return add_output(g, nd, v->n, v->c, v->h, v->w);
}

int nn_graph_dropout(NnGraph *g, int x, float p)
{
    return random_op(g, NN_OP_DROPOUT, x, p);
}

int nn_graph_stochastic_depth(NnGraph *g, int x, float p)
{
    return random_op(g, NN_OP_SDEPTH, x, p);
}

// ---------------------------------------------------------------------------------------------
// Planning

/* Does node nd's backward read its input number i? (backend.h says what each one reads.) */
static int backward_reads_input(const NnNode *nd, int i)
{
    (void)i;
    switch (nd->kind) {
    case NN_OP_CONV:
    case NN_OP_BN:
    case NN_OP_ACT:
    case NN_OP_LINEAR:
    case NN_OP_CHANMUL: return 1;
    default: return 0;
    }
}

typedef struct Interval {
    int start, end; /* inclusive times */
    size_t size;    /* floats, aligned */
    size_t *off;    /* where the offset goes */
} Interval;

static size_t align_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static int cmp_size_desc(const void *a, const void *b)
{
    const Interval *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->start - y->start;
}

static int cmp_off(const void *a, const void *b)
{
    const Interval *const *x = a, *const *y = b;
    return (*x)->off[0] < (*y)->off[0] ? -1 : (*x)->off[0] > (*y)->off[0];
}

/* Places intervals in one buffer so that intervals overlapping in time never overlap in
 * memory: largest first, each at the lowest offset that fits between the already placed
 * intervals it meets in time (greedy by size, the usual heuristic of static planners).
 * Returns the buffer size in floats, or SIZE_MAX when out of memory. */
static size_t place(Interval *iv, int n)
{
    qsort(iv, (size_t)n, sizeof *iv, cmp_size_desc);
    const Interval **live = mem_alloc((size_t)(n ? n : 1) * sizeof *live);
    if (!live)
        return SIZE_MAX;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < i; j++)
            if (iv[j].start <= iv[i].end && iv[i].start <= iv[j].end)
                live[m++] = &iv[j];
        qsort(live, (size_t)m, sizeof *live, cmp_off);
        size_t at = 0;
        for (int j = 0; j < m; j++) {
            size_t lo = live[j]->off[0], hi = lo + live[j]->size;
            if (at + iv[i].size <= lo)
                break;
            if (hi > at)
                at = hi;
        }
        iv[i].off[0] = at;
        if (at + iv[i].size > total)
            total = at + iv[i].size;
    }
    mem_free(live);
    return total;
}

/* Folds the views of each channel buffer into the buffer, which holds their storage: it lives
 * from its first writer to its last reader (first_bwd: the earliest backward reading it), and
 * its gradient is zeroed before the first backward that touches any of its views. */
static void fold_views(NnGraph *g, int *first_bwd)
{
    for (int id = 0; id < g->n_values; id++) {
        NnValue *v = &g->values[id];
        if (!v->is_buffer)
            v->zero_at = v->last_consumer;
    }
    for (int id = 0; id < g->n_values; id++) {
        const NnValue *v = &g->values[id];
        if (!v->view)
            continue;
        NnValue *b = &g->values[v->base];
        if (v->last_consumer > b->last_consumer)
            b->last_consumer = v->last_consumer;
        int touch = v->producer == INT_MAX ? v->last_consumer : v->producer;
        if (v->last_consumer > touch)
            touch = v->last_consumer;
        if (touch > b->zero_at)
            b->zero_at = touch;
        b->backward_reads |= v->backward_reads;
        b->needs_grad |= v->needs_grad;
        if (first_bwd[id] < first_bwd[v->base])
            first_bwd[v->base] = first_bwd[id];
    }
}

/* Can node nd's output be fused with activation a after it (backend.h batchnorm_act_*,
 * add_act_*)? */
static int fusable(const NnBackend *be, const NnNode *nd, NnAct a)
{
    if (nd->kind == NN_OP_BN)
        return be->batchnorm_act_forward_train && nn_act_fusable(a);
    if (nd->kind == NN_OP_ADD)
        return be->add_act_forward && (a == NN_RELU || a == NN_RELU6);
    return 0;
}

/* Fusion of an activation into the op before it: batch norm (backend.h batchnorm_act_*) and
 * the residual add (add_act_*). When such an op's output z is read by one activation and by
 * nothing else, the op writes the activation's output y itself (its out[0] becomes y, written
 * at its time) and the activation node runs nothing: z is never stored and has no gradient.
 * Why: these pairs are memory-bound, and fused they pass over their tensors about a third
 * fewer times. The fused BN's backward recomputes z from x; the fused add's reads y (ReLU's
 * derivative is y's), which then lives until that backward (first_bwd). Runs before plan_inplace,
 * which must not alias y to the z that no longer exists. Builds on counts[] (the readers of each
 * value). */
static void plan_fusion(NnGraph *g, const int *counts, int *first_bwd)
{
    for (int i = 0; i < g->n_nodes; i++) {
        NnNode *nd = &g->nodes[i];
        NnValue *z = &g->values[nd->out[0]];
        if ((nd->kind != NN_OP_BN && nd->kind != NN_OP_ADD) || counts[nd->out[0]] != 1 ||
            nd->out[0] == g->output || z->view || z->is_buffer)
            continue;
        NnNode *act = &g->nodes[z->last_consumer];
        if (act->kind != NN_OP_ACT || !fusable(g->be, nd, act->u.act) ||
            g->values[act->out[0]].view)
            continue;
        int y = act->out[0];
        nd->fused = act->fused = 1;
        nd->fused_act = act->u.act;
        nd->out[0] = y;
        g->values[y].producer = i;
        z->folded = 1;
        if (nd->kind == NN_OP_ADD) {
            g->values[y].backward_reads = 1;
            first_bwd[y] = i;
        }
    }
}

/* In-place ReLU and ReLU6. Why: after BN -> ReLU a training graph would keep both the BN's
 * output (the ReLU's backward reads its input) and the ReLU's (the next conv's backward reads
 * it), two tensors where one carries the information: ReLU and ReLU6 are 0 exactly where their
 * output is 0 or 6, so their backward gives the same gradient from the output as from the input
 * (backend.h's kink rules included: relu' = 0 at x <= 0, i.e. at y = 0). So when an activation's
 * input has no other reader, is not the graph's input or output and is not a channel view, the
 * activation overwrites it (act_forward may run in place) and its backward is handed the
 * output where its input was. Gradients are never shared: only data. Builds on counts[] (the
 * readers of each value). */
static void plan_inplace(NnGraph *g, const int *counts)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const NnNode *nd = &g->nodes[i];
        if (nd->kind != NN_OP_ACT || nd->fused || (nd->u.act != NN_RELU && nd->u.act != NN_RELU6))
            continue;
        int x = nd->in[0], y = nd->out[0];
        const NnValue *vx = &g->values[x];
        if (counts[x] != 1 || x == g->input || x == g->output || y == g->output || vx->view ||
            vx->is_buffer || g->values[y].view)
            continue;
        const NnNode *p = vx->producer >= 0 ? &g->nodes[vx->producer] : NULL;
        if (p && p->kind == NN_OP_ADD && p->fused)
            continue; /* its backward reads x */
        g->values[y].alias = vx->alias >= 0 ? vx->alias : x;
    }
}

/* Folds the values computed in place into the value whose storage they share: it lives until
 * the last of them is read, forward or backward. */
static void fold_aliases(NnGraph *g, int *first_bwd)
{
    for (int id = 0; id < g->n_values; id++) {
        const NnValue *v = &g->values[id];
        if (v->alias < 0)
            continue;
        NnValue *r = &g->values[v->alias];
        if (v->last_consumer > r->last_consumer)
            r->last_consumer = v->last_consumer;
        r->backward_reads |= v->backward_reads;
        if (first_bwd[id] < first_bwd[v->alias])
            first_bwd[v->alias] = first_bwd[id];
    }
}

/* The offset of channel c_off in a buffer of h x w: a plane per channel in NCHW, one float in
 * NHWC (the view's kernels then step by the buffer's channel count, ops.h). */
static size_t channel_offset(const NnGraph *g, const NnValue *v)
{
    return g->be->layout == NN_LAYOUT_NCHW ? (size_t)v->c_off * v->h * v->w : (size_t)v->c_off;
}

static int plan(NnGraph *g, Err *e)
{
    int n = g->n_nodes, T = 2 * n; /* forward i at time i, loss at n, backward i at T - i */
    int *first_bwd = mem_alloc((size_t)g->n_values * sizeof(int));
    int *counts = mem_calloc((size_t)g->n_values, sizeof(int));
    Interval *iv = mem_alloc((size_t)(2 * g->n_values + 1) * sizeof *iv);
    if (!first_bwd || !counts || !iv) {
        mem_free(first_bwd);
        mem_free(counts);
        mem_free(iv);
        return err_set(e, ERR_NOMEM, "graph: out of memory planning %d values", g->n_values);
    }
    for (int id = 0; id < g->n_values; id++)
        first_bwd[id] = n;
    for (int i = 0; i < n; i++) {
        const NnNode *nd = &g->nodes[i];
        int upstream = nd->weight >= 0;
        for (int k = 0; k < nd->n_in; k++) {
            NnValue *v = &g->values[nd->in[k]];
            v->last_consumer = i;
            counts[nd->in[k]]++;
            /* a prefix view is made by no node: its buffer knows whether a gradient flows */
            upstream |= v->needs_grad || (v->view && g->values[v->base].needs_grad);
            if (backward_reads_input(nd, k)) {
                v->backward_reads = 1;
                if (i < first_bwd[nd->in[k]])
                    first_bwd[nd->in[k]] = i;
            }
        }
        for (int k = 0; k < nd->n_out; k++) {
            NnValue *v = &g->values[nd->out[k]];
            v->needs_grad = upstream;
            if (v->view)
                g->values[v->base].needs_grad |= upstream;
        }
    }
    fold_views(g, first_bwd);
    plan_fusion(g, counts, first_bwd);
    plan_inplace(g, counts);
    mem_free(counts);
    fold_aliases(g, first_bwd);
    int m = 0;
    for (int id = 0; id < g->n_values; id++) {
        NnValue *v = &g->values[id];
        int data = v->alias < 0; /* an in-place result only needs a gradient of its own */
        if (v->view || v->folded || (v->is_buffer && v->producer == INT_MAX))
            continue; /* storage elsewhere or none, or a buffer without views (copies: graph.h) */
        int start = v->producer; /* -1 for the input: written before the first step */
        int end = id == g->output ? n : v->last_consumer;
        if (end < start)
            end = start;
        /* In training a value some backward reads lives until the earliest such backward:
         * that of its first reader, at time T - first reader. */
        if (g->training && v->backward_reads)
            end = T - first_bwd[id];
        if (data)
            iv[m++] = (Interval){start, end, align_up(v->numel), &v->off};
        if (g->training && v->needs_grad) {
            /* From the first backward touching it (its last consumer's, or for a buffer any
             * view's) to that of its producer; the output's gradient starts at the loss. */
            int gs = id == g->output ? n : T - v->zero_at;
            iv[m++] = (Interval){gs, T - v->producer, align_up(v->numel), &v->goff};
        }
    }
    size_t total = place(iv, m);
    mem_free(iv);
    mem_free(first_bwd);
    if (total == SIZE_MAX)
        return err_set(e, ERR_NOMEM, "graph: out of memory planning %d values", g->n_values);
    for (int id = 0; id < g->n_values; id++)
        if (g->values[id].alias >= 0)
            g->values[id].off = g->values[g->values[id].alias].off;
    for (int id = 0; id < g->n_values; id++) {
        NnValue *v = &g->values[id];
        if (!v->view)
            continue;
        const NnValue *b = &g->values[v->base];
        v->off = b->off + channel_offset(g, v);
        v->goff = b->goff == SIZE_MAX ? SIZE_MAX : b->goff + channel_offset(g, v);
    }
    g->arena_floats = total;
    g->arena = g->be->mem->alloc(total * sizeof(float));
    if (!g->arena)
        return err_set(e, ERR_NOMEM, "graph: cannot allocate %zu MiB of activations",
                       total * sizeof(float) >> 20);
    return 0;
}

/* The store the kernels run on (graph.h): the store itself on host memory, else a replica
 * with the same views and offsets in the backend's memory. */
static int alloc_replica(NnGraph *g, Err *e)
{
    const NnMemory *m = g->be->mem;
    ParamStore *s = &g->store;
    g->dev = *s;
    if (!m->device)
        return 0;
    g->dev.params = m->alloc(s->n_param * sizeof(float));
    g->dev.grads = m->alloc(s->n_param * sizeof(float));
    for (int k = 0; k < NN_MAX_MOMENTS; k++)
        g->dev.moments[k] = k < s->n_moments ? m->alloc(s->n_param * sizeof(float)) : NULL;
    g->dev.buffers = m->alloc(s->n_buffer * sizeof(float));
    g->dev.counters = m->alloc(s->n_counter * sizeof(int64_t));
    int ok = g->dev.params && g->dev.grads && g->dev.buffers && g->dev.counters;
    for (int k = 0; k < s->n_moments; k++)
        ok &= g->dev.moments[k] != NULL;
    if (!ok)
        return err_set(e, ERR_NOMEM, "graph: cannot allocate %zu MiB of parameters on %s",
                       (2 + (size_t)s->n_moments) * s->n_param * sizeof(float) >> 20, g->be->name);
    return 0;
}

void nn_graph_upload(NnGraph *g)
{
    const NnMemory *m = g->be->mem;
    const ParamStore *s = &g->store;
    if (!m->device)
        return;
    m->upload(g->dev.params, s->params, s->n_param * sizeof(float));
    m->upload(g->dev.grads, s->grads, s->n_param * sizeof(float));
    for (int k = 0; k < s->n_moments; k++)
        m->upload(g->dev.moments[k], s->moments[k], s->n_param * sizeof(float));
    m->upload(g->dev.buffers, s->buffers, s->n_buffer * sizeof(float));
    m->upload(g->dev.counters, s->counters, s->n_counter * sizeof(int64_t));
}

void nn_graph_download(NnGraph *g)
{
    const NnMemory *m = g->be->mem;
    ParamStore *s = &g->store;
    if (!m->device)
        return;
    m->download(s->params, g->dev.params, s->n_param * sizeof(float));
    m->download(s->grads, g->dev.grads, s->n_param * sizeof(float));
    for (int k = 0; k < s->n_moments; k++)
        m->download(s->moments[k], g->dev.moments[k], s->n_param * sizeof(float));
    m->download(s->buffers, g->dev.buffers, s->n_buffer * sizeof(float));
    m->download(s->counters, g->dev.counters, s->n_counter * sizeof(int64_t));
}

void nn_graph_zero_grads(NnGraph *g)
{
    g->be->mem->zero(g->dev.grads, g->dev.n_param * sizeof(float));
    g->grads_stale = 0;
}

void nn_graph_discard_grads(NnGraph *g)
{
    g->grads_stale = 1;
}

int nn_graph_step(NnGraph *g, const NnOptim *o, long step, Err *e)
{
    return nn_optim_step(g->be, o, &g->dev, step, e);
}

int nn_graph_finish(NnGraph *g, int training, int n_moments, Err *e)
{
    if (g->failed) {
        *e = g->err;
        return -1;
    }
    if (g->input < 0 || g->n_nodes == 0)
        return err_set(e, ERR_CONFIG, "graph: no input or no nodes");
    const NnValue *out = &g->values[g->output];
    if (out->h * out->w != 1)
        return err_set(e, ERR_CONFIG, "graph: output must be (N,K) logits");
    g->training = training;
    if (nn_store_alloc(&g->store, n_moments, e) < 0 || alloc_replica(g, e) < 0)
        return -1;
    size_t ws = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        size_t b = 0;
        if (g->nodes[i].kind == NN_OP_CONV)
            b = g->be->conv2d_workspace(&g->nodes[i].u.conv);
        else if (g->nodes[i].kind == NN_OP_FLATTEN) /* backward's transposed dy */
            b = g->values[g->nodes[i].out[0]].numel * sizeof(float);
        if (b > ws)
            ws = b;
    }
    const NnMemory *m = g->be->mem;
    g->workspace_bytes = ws;
    g->workspace = m->alloc(ws);
    int k = out->c;
    g->probs = m->alloc((size_t)g->batch * k * sizeof(float));
    g->targets = m->alloc((size_t)g->batch * sizeof(int));
    g->class_weight = m->alloc((size_t)k * sizeof(float));
    g->host_logits = mem_alloc((size_t)g->batch * k * sizeof(float));
    if (m->device)
        g->staging = m->alloc(g->values[g->input].numel * sizeof(float));
    int max_in = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].n_in > max_in)
            max_in = g->nodes[i].n_in;
    g->ptrs = mem_alloc((size_t)max_in * sizeof(float *));
    if (!g->workspace || !g->probs || !g->targets || !g->class_weight || !g->host_logits ||
        !g->ptrs || (m->device && !g->staging))
        return err_set(e, ERR_NOMEM, "graph: out of %s memory", m->device ? "device" : "host");
    return plan(g, e);
}

size_t nn_graph_activation_bytes(const NnGraph *g)
{
    size_t b = g->arena_floats * sizeof(float) + g->workspace_bytes;
    for (int i = 0; i < g->n_nodes; i++) {
        const NnNode *nd = &g->nodes[i];
        if (nd->save_mean)
            b += 2 * (size_t)nd->u.bn.c * sizeof(float);
        if (nd->argmax)
            b += g->values[nd->out[0]].numel * sizeof(int32_t);
    }
    return b;
}

double nn_graph_forward_macs(const NnGraph *g)
{
    double macs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const NnNode *nd = &g->nodes[i];
        if (nd->kind == NN_OP_CONV) {
            const NnConv2d *c = &nd->u.conv;
            macs += (double)c->c_out * c->h_out * c->w_out * (c->c_in / c->groups) * c->kh * c->kw;
        } else if (nd->kind == NN_OP_LINEAR) {
            macs += (double)nd->u.lin.in * nd->u.lin.out;
        }
    }
    return macs; /* per image: the descriptors' batch is not counted */
}

// ---------------------------------------------------------------------------------------------
// Initialisation

void nn_graph_init_params(NnGraph *g, uint64_t seed)
{
    ParamStore *s = &g->store;
    memset(s->params, 0, s->n_param * sizeof(float));
    memset(s->buffers, 0, s->n_buffer * sizeof(float));
    memset(s->counters, 0, s->n_counter * sizeof(int64_t));
    for (int i = 0; i < g->n_nodes; i++) {
        const NnNode *nd = &g->nodes[i];
        if (nd->kind == NN_OP_BN) {
            float *w = nn_store_param(s, nd->weight), *rv = nn_store_buffer(s, nd->run_var);
            for (int c = 0; c < nd->u.bn.c; c++)
                w[c] = 1.0f, rv[c] = 1.0f;
            continue;
        }
        if (nd->weight < 0)
            continue;
        const NnView *v = &s->views[nd->weight];
        float *w = nn_store_param(s, nd->weight);
        size_t receptive = v->ndim == 4 ? (size_t)v->shape[2] * v->shape[3] : 1;
        double fan_out = (double)v->shape[0] * receptive;
        double fan_in = (double)v->shape[1] * receptive;
        Philox p;
        philox_init(&p, seed, PHILOX_INIT, (uint64_t)nd->weight);
        for (size_t j = 0; j < v->numel; j++) {
            switch (nd->init) {
            case NN_INIT_KAIMING_FAN_OUT:
                w[j] = (float)(philox_normal(&p) * sqrt(2.0 / fan_out));
                break;
            case NN_INIT_KAIMING_FAN_IN:
                w[j] = (float)(philox_normal(&p) * sqrt(2.0 / fan_in));
                break;
            case NN_INIT_NORMAL_001: w[j] = (float)(philox_normal(&p) * 0.01); break;
            case NN_INIT_TORCH_DEFAULT:
            case NN_INIT_TORCH_WEIGHT:
                w[j] = (float)((2.0 * philox_uniform(&p) - 1.0) / sqrt(fan_in));
                break;
            case NN_INIT_UNIFORM_FAN_OUT:
                w[j] = (float)((2.0 * philox_uniform(&p) - 1.0) / sqrt((double)v->shape[0]));
                break;
            }
        }
        if (nd->bias >= 0 && nd->init == NN_INIT_TORCH_DEFAULT) {
            float *b = nn_store_param(s, nd->bias);
            philox_init(&p, seed, PHILOX_INIT, (uint64_t)nd->bias);
            for (int j = 0; j < v->shape[0]; j++)
                b[j] = (float)((2.0 * philox_uniform(&p) - 1.0) / sqrt(fan_in));
        }
    }
    nn_graph_upload(g);
}

// ---------------------------------------------------------------------------------------------
// Running

float *nn_graph_value_data(const NnGraph *g, int id)
{
    return g->arena + g->values[id].off;
}

static float *grad_of(const NnGraph *g, int id)
{
    const NnValue *v = &g->values[id];
    return v->goff == SIZE_MAX ? NULL : g->arena + v->goff;
}

const NnValue *nn_graph_value(const NnGraph *g, int id)
{
    return &g->values[id];
}

const float *nn_graph_output(NnGraph *g)
{
    const NnValue *v = &g->values[g->output];
    g->be->mem->download(g->host_logits, nn_graph_value_data(g, g->output),
                         v->numel * sizeof(float));
    return g->host_logits;
}

void nn_graph_set_input(NnGraph *g, const float *images)
{
    const NnValue *v = &g->values[g->input];
    const float *x = images;
    if (g->be->mem->device) {
        g->be->mem->upload(g->staging, images, v->numel * sizeof(float));
        x = g->staging;
    }
    g->be->to_layout(v->n, v->c, v->h * v->w, x, nn_graph_value_data(g, g->input));
}

static float *param(const NnGraph *g, int view)
{
    return view < 0 ? NULL : nn_store_param(&g->dev, view);
}

static float *pgrad(const NnGraph *g, int view)
{
    return view < 0 ? NULL : nn_store_grad(&g->dev, view);
}

/* The mask descriptor of a dropout or stochastic-depth node with input vx: element (or sample)
 * 0 of this batch is element `first` of the global batch (g->sample0). */
static NnDropout dropout_of(const NnGraph *g, const NnNode *nd, const NnValue *vx)
{
    uint64_t per = nd->kind == NN_OP_DROPOUT ? vx->numel / (size_t)vx->n : 1;
    return (NnDropout){.p = nd->u.drop.p,
                       .seed = g->seed,
                       .step = g->step,
                       .op = nd->u.drop.op,
                       .first = g->sample0 * per};
}

int nn_graph_forward(NnGraph *g, int training, Err *e)
{
    if (training && !g->training)
        return err_set(e, ERR_INTERNAL, "graph: planned for inference, asked to train");
    const NnBackend *be = g->be;
    ParamStore *s = &g->dev;
    for (int i = 0; i < g->n_nodes; i++) {
        NnNode *nd = &g->nodes[i];
        if (nd->kind == NN_OP_ACT && nd->fused)
            continue; /* the BN before it wrote its output */
        const float *x = nn_graph_value_data(g, nd->in[0]);
        float *y = nn_graph_value_data(g, nd->out[0]);
        const NnValue *vx = &g->values[nd->in[0]];
        switch (nd->kind) {
        case NN_OP_CONV:
            be->conv2d_forward(&nd->u.conv, x, param(g, nd->weight), param(g, nd->bias), y,
                               g->workspace);
            break;
        case NN_OP_BN:
            if (training && nd->fused)
                be->batchnorm_act_forward_train(
                    &nd->u.bn, nd->fused_act, x, param(g, nd->weight), param(g, nd->bias), y,
                    nn_store_buffer(s, nd->run_mean), nn_store_buffer(s, nd->run_var),
                    nn_store_counter(s, nd->n_tracked), nd->save_mean, nd->save_invstd);
            else if (training)
                be->batchnorm_forward_train(
                    &nd->u.bn, x, param(g, nd->weight), param(g, nd->bias), y,
                    nn_store_buffer(s, nd->run_mean), nn_store_buffer(s, nd->run_var),
                    nn_store_counter(s, nd->n_tracked), nd->save_mean, nd->save_invstd);
            else if (nd->fused)
                be->batchnorm_act_forward_eval(&nd->u.bn, nd->fused_act, x, param(g, nd->weight),
                                               param(g, nd->bias), nn_store_buffer(s, nd->run_mean),
                                               nn_store_buffer(s, nd->run_var), y);
            else
                be->batchnorm_forward_eval(&nd->u.bn, x, param(g, nd->weight), param(g, nd->bias),
                                           nn_store_buffer(s, nd->run_mean),
                                           nn_store_buffer(s, nd->run_var), y);
            break;
        case NN_OP_ACT: be->act_forward(nd->u.act, vx->numel, x, y); break;
        case NN_OP_MAXPOOL: be->maxpool2d_forward(&nd->u.pool, x, y, nd->argmax); break;
        case NN_OP_AVGPOOL: be->avgpool2d_forward(&nd->u.pool, x, y); break;
        case NN_OP_ADAPTIVE: be->adaptive_avgpool2d_forward(&nd->u.ap, x, y); break;
        case NN_OP_LINEAR:
            be->linear_forward(vx->n, nd->u.lin.in, nd->u.lin.out, x, param(g, nd->weight),
                               param(g, nd->bias), y);
            break;
        case NN_OP_ADD:
            if (nd->fused)
                be->add_act_forward(nd->fused_act, vx->numel, x, nn_graph_value_data(g, nd->in[1]),
                                    y);
            else
                be->add_forward(vx->numel, x, nn_graph_value_data(g, nd->in[1]), y);
            break;
        case NN_OP_CHANMUL:
            be->chanmul_forward(vx->n, vx->c, vx->h * vx->w, x, nn_graph_value_data(g, nd->in[1]),
                                y);
            break;
        case NN_OP_CONCAT: {
            const float **xs = (const float **)g->ptrs;
            for (int k = 0; k < nd->n_in; k++)
                xs[k] = nn_graph_value_data(g, nd->in[k]);
            be->concat_forward(vx->n, vx->h * vx->w, nd->n_in, nd->chans, xs, y);
            break;
        }
        case NN_OP_SPLIT: {
            float *ys[NN_MAX_OUT];
            for (int k = 0; k < nd->n_out; k++)
                ys[k] = nn_graph_value_data(g, nd->out[k]);
            be->split_forward(vx->n, vx->h * vx->w, nd->n_out, nd->chans, x, ys);
            break;
        }
        case NN_OP_SHUFFLE:
            be->shuffle_forward(vx->n, vx->c, vx->h * vx->w, nd->u.groups, x, y);
            break;
        case NN_OP_FLATTEN: be->from_layout(vx->n, vx->c, vx->h * vx->w, x, y); break;
        case NN_OP_DROPOUT:
        case NN_OP_SDEPTH:
            if (!training || nd->u.drop.p == 0.0f) {
                be->mem->copy(y, x, vx->numel * sizeof(float));
                break;
            }
            NnDropout d = dropout_of(g, nd, vx);
            if (nd->kind == NN_OP_DROPOUT)
                be->dropout_forward(&d, vx->numel, x, y);
            else
                be->stochastic_depth_forward(&d, vx->n, vx->numel / (size_t)vx->n, x, y);
            break;
        }
    }
    return 0;
}

int nn_graph_loss(NnGraph *g, const int *targets, const float *class_weight, float smoothing,
                  float *loss, Err *e)
{
    const NnValue *v = &g->values[g->output];
    g->xent = (NnXent){.n = v->n, .k = v->c, .smoothing = smoothing};
    if (nn_xent_setup(&g->xent, targets, e) < 0)
        return -1;
    const NnMemory *m = g->be->mem;
    m->upload(g->targets, targets, (size_t)v->n * sizeof(int));
    g->weighted = class_weight != NULL;
    if (class_weight)
        m->upload(g->class_weight, class_weight, (size_t)v->c * sizeof(float));
    *loss = g->be->xent_forward(&g->xent, nn_graph_value_data(g, g->output), g->targets,
                                class_weight ? g->class_weight : NULL, g->probs);
    return 0;
}

/* The NN_BWD_* bit of a node's backward entry (0: the entry never takes fresh gradients). */
static unsigned bwd_bit(NnOpKind kind)
{
    switch (kind) {
    case NN_OP_CONV: return NN_BWD_CONV;
    case NN_OP_BN: return NN_BWD_BN;
    case NN_OP_ACT: return NN_BWD_ACT;
    case NN_OP_ADD: return NN_BWD_ADD;
    default: return 0;
    }
}

/* 1 if nd's backward entry is among `ops` (NnBackend.fresh_grad_ops or fresh_param_ops) and
 * so may be told its gradients are fresh; only a backward that runs (has_dy) is. */
static int takes_fresh(const NnGraph *g, const NnNode *nd, unsigned ops, int has_dy)
{
    return has_dy && g->be->set_fresh_grads && (ops & bwd_bit(nd->kind));
}

/* Prepares the gradient storage that node i's backward is the first to touch: an input's whose
 * last consumer it is, or a channel buffer's (through any view among its inputs and outputs)
 * whose views it touches last in the forward order. A plain input (not a view) of an entry
 * that takes fresh gradients (backend.h, set_fresh_grads) is left as it is and flagged in the
 * returned mask, to be written rather than added to; everything else is zeroed. */
static unsigned prepare_grads_at(NnGraph *g, const NnNode *nd, int i, int has_dy)
{
    unsigned mask = 0;
    int fresh_ok = takes_fresh(g, nd, g->be->fresh_grad_ops, has_dy);
    for (int k = 0; k < nd->n_in + nd->n_out; k++) {
        int id = k < nd->n_in ? nd->in[k] : nd->out[k - nd->n_in];
        int plain = !g->values[id].view;
        if (!plain)
            id = g->values[id].base;
        const NnValue *v = &g->values[id];
        if (v->zero_at != i || v->goff == SIZE_MAX)
            continue;
        int dup = 0; /* add(x, x): one buffer, zeroed or flagged once */
        for (int j = 0; j < k && j < nd->n_in; j++)
            dup |= nd->in[j] == nd->in[k];
        if (dup)
            continue;
        if (fresh_ok && plain && k < nd->n_in && k < 2)
            mask |= 1u << k;
        else
            g->be->mem->zero(g->arena + v->goff, v->numel * sizeof(float));
    }
    return mask;
}

/* After nn_graph_discard_grads, node nd's parameter gradients still hold the last step's. An
 * entry that writes them (NnBackend.fresh_param_ops) is told so (the returned NN_FRESH_PARAMS);
 * otherwise they are zeroed here, just before the node's backward or in place of it when it
 * is skipped (no parameter is shared between nodes: this is their only writer). */
static unsigned prepare_param_grads(NnGraph *g, const NnNode *nd, int has_dy)
{
    if (!g->grads_stale || (nd->weight < 0 && nd->bias < 0))
        return 0;
    if (takes_fresh(g, nd, g->be->fresh_param_ops, has_dy))
        return NN_FRESH_PARAMS;
    for (int k = 0; k < 2; k++) {
        int v = k ? nd->bias : nd->weight;
        if (v >= 0)
            g->be->mem->zero(pgrad(g, v), g->dev.views[v].numel * sizeof(float));
    }
    return 0;
}

int nn_graph_backward(NnGraph *g, Err *e)
{
    if (!g->training)
        return err_set(e, ERR_INTERNAL, "graph: planned for inference, asked for gradients");
    const NnBackend *be = g->be;
    float *dout = grad_of(g, g->output);
    be->mem->zero(dout, g->values[g->output].numel * sizeof(float));
    be->xent_backward(&g->xent, g->probs, g->targets, g->weighted ? g->class_weight : NULL,
                      g->loss_scale, dout);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (i < g->n_nodes - 1 && g->after_node)
            g->after_node(g->after_node_ctx, i + 1);
        NnNode *nd = &g->nodes[i];
        if (nd->kind == NN_OP_ACT && nd->fused)
            continue; /* its backward is in the BN's */
        const float *dy = grad_of(g, nd->out[0]);
        unsigned fresh =
            prepare_grads_at(g, nd, i, dy != NULL) | prepare_param_grads(g, nd, dy != NULL);
        const float *x = nn_graph_value_data(g, nd->in[0]);
        float *dx = grad_of(g, nd->in[0]);
        const NnValue *vx = &g->values[nd->in[0]];
        if (!dy && nd->kind != NN_OP_SPLIT)
            continue; /* nothing downstream needs it */
        if (fresh)
            be->set_fresh_grads(fresh);
        switch (nd->kind) {
        case NN_OP_CONV:
            be->conv2d_backward(&nd->u.conv, x, param(g, nd->weight), dy, dx, pgrad(g, nd->weight),
                                pgrad(g, nd->bias), g->workspace);
            break;
        case NN_OP_BN:
            if (nd->fused)
                be->batchnorm_act_backward_train(&nd->u.bn, nd->fused_act, x, param(g, nd->weight),
                                                 param(g, nd->bias), nd->save_mean, nd->save_invstd,
                                                 dy, dx, pgrad(g, nd->weight), pgrad(g, nd->bias));
            else
                be->batchnorm_backward_train(&nd->u.bn, x, param(g, nd->weight), nd->save_mean,
                                             nd->save_invstd, dy, dx, pgrad(g, nd->weight),
                                             pgrad(g, nd->bias));
            break;
        case NN_OP_ACT:
            if (dx)
                be->act_backward(nd->u.act, vx->numel, x, dy, dx);
            break;
        case NN_OP_MAXPOOL:
            if (dx)
                be->maxpool2d_backward(&nd->u.pool, nd->argmax, dy, dx);
            break;
        case NN_OP_AVGPOOL:
            if (dx)
                be->avgpool2d_backward(&nd->u.pool, dy, dx);
            break;
        case NN_OP_ADAPTIVE:
            if (dx)
                be->adaptive_avgpool2d_backward(&nd->u.ap, dy, dx);
            break;
        case NN_OP_LINEAR:
            be->linear_backward(vx->n, nd->u.lin.in, nd->u.lin.out, x, param(g, nd->weight), dy, dx,
                                pgrad(g, nd->weight), pgrad(g, nd->bias));
            break;
        case NN_OP_ADD:
            if (nd->fused)
                be->add_act_backward(nd->fused_act, vx->numel, nn_graph_value_data(g, nd->out[0]),
                                     dy, dx, grad_of(g, nd->in[1]));
            else
                be->add_backward(vx->numel, dy, dx, grad_of(g, nd->in[1]));
            break;
        case NN_OP_CHANMUL:
            be->chanmul_backward(vx->n, vx->c, vx->h * vx->w, x, nn_graph_value_data(g, nd->in[1]),
                                 dy, dx, grad_of(g, nd->in[1]));
            break;
        case NN_OP_CONCAT: {
            float **dxs = g->ptrs;
            for (int k = 0; k < nd->n_in; k++)
                dxs[k] = grad_of(g, nd->in[k]);
            be->concat_backward(vx->n, vx->h * vx->w, nd->n_in, nd->chans, dy, dxs);
            break;
        }
        case NN_OP_SPLIT: {
            const float *dys[NN_MAX_OUT];
            int any = 0;
            for (int k = 0; k < nd->n_out; k++)
                any |= (dys[k] = grad_of(g, nd->out[k])) != NULL;
            if (any && dx)
                be->split_backward(vx->n, vx->h * vx->w, nd->n_out, nd->chans, dys, dx);
            break;
        }
        case NN_OP_SHUFFLE:
            if (dx)
                be->shuffle_backward(vx->n, vx->c, vx->h * vx->w, nd->u.groups, dy, dx);
            break;
        case NN_OP_FLATTEN:
            if (dx) { /* dx += dy back in the backend's layout, through the workspace */
                be->to_layout(vx->n, vx->c, vx->h * vx->w, dy, g->workspace);
                be->add_backward(vx->numel, g->workspace, dx, NULL);
            }
            break;
        case NN_OP_DROPOUT:
        case NN_OP_SDEPTH: {
            if (!dx)
                break;
            if (nd->u.drop.p == 0.0f) {
                be->add_backward(vx->numel, dy, dx, NULL);
                break;
            }
            NnDropout d = dropout_of(g, nd, vx);
            if (nd->kind == NN_OP_DROPOUT)
                be->dropout_backward(&d, vx->numel, dy, dx);
            else
                be->stochastic_depth_backward(&d, vx->n, vx->numel / (size_t)vx->n, dy, dx);
            break;
        }
        }
        if (fresh)
            be->set_fresh_grads(0);
    }
    g->grads_stale = 0;
    if (g->after_node && g->n_nodes > 0)
        g->after_node(g->after_node_ctx, 0);
    return 0;
}
