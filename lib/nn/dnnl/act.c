/* act.c: pointwise activations, forward on oneDNN's eltwise (relu, relu6 as clip_v2 [0, 6],
 * hardswish, sigmoid as logistic, silu as swish with alpha 1), hardsigmoid by hand (oneDNN 2.6
 * has none).
 *
 * Backward of the piecewise-linear ones (relu, relu6, hardswish, hardsigmoid) is a hand loop:
 * it adds straight into dx (one pass where oneDNN's eltwise backward, which overwrites, would
 * need a temporary and a second pass), and it takes PyTorch's derivative at the kinks
 * (backend.h), where oneDNN's conventions differ (its clip passes the gradient at x = 6).
 * Sigmoid and silu need exp, which oneDNN's JIT vectorises and plain C does not, so their
 * backward runs on oneDNN into the scratch arena and is then accumulated. */
#if ONFH_HAVE_DNNL

#include <stdio.h>

#include <string.h>

#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/util/mem.h"

enum { KEY_ELTWISE = 3 };

typedef struct EltEntry {
    dnnl_primitive_desc_t fwd_pd; /* the hint of backward */
    DnnlBeExec fwd;
    DnnlBeExec bwd; /* made on first backward */
} EltEntry;

static void elt_entry_free(void *p)
{
    EltEntry *e = p;
    dnnl_be_exec_free(&e->fwd);
    dnnl_be_exec_free(&e->bwd);
    dnnl_primitive_desc_destroy(e->fwd_pd);
    mem_free(e);
}

/* oneDNN's algorithm and its alpha, beta for a. */
static dnnl_alg_kind_t elt_alg(NnAct a, float *alpha, float *beta)
{
    *alpha = 0.0f;
    *beta = 0.0f;
    switch (a) {
    case NN_RELU: return dnnl_eltwise_relu;
    case NN_RELU6: *beta = 6.0f; return dnnl_eltwise_clip_v2;
    case NN_HARDSWISH: return dnnl_eltwise_hardswish;
    case NN_SILU: *alpha = 1.0f; return dnnl_eltwise_swish;
    case NN_SIGMOID: return dnnl_eltwise_logistic;
    case NN_HARDSIGMOID: break;
    }
    return dnnl_alg_kind_undef;
}

static EltEntry *elt_entry(NnAct a, size_t n, int backward)
{
    DnnlBeKey k = {{KEY_ELTWISE, (int)a, (int)(n & 0x7fffffff), (int)(n >> 31)}};
    EltEntry *e = dnnl_be_cache_find(&k);
    char name[96];
    float alpha;
    float beta;
    dnnl_alg_kind_t alg = elt_alg(a, &alpha, &beta);
    dnnl_dim_t d[1] = {(dnnl_dim_t)n};
    dnnl_memory_desc_t md = dnnl_be_md(1, d, dnnl_a);
    if (!e) {
        snprintf(name, sizeof name, "eltwise %s forward n=%zu", nn_act_name(a), n);
        e = mem_calloc(1, sizeof *e);
        if (!e)
            dnnl_be_check(dnnl_out_of_memory, name);
        dnnl_eltwise_desc_t desc;
        dnnl_be_check(
            dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_training, alg, &md, alpha, beta),
            name);
        e->fwd_pd = dnnl_be_pd(&desc, dnnl_be_attr(0, 0), NULL, name);
        e->fwd.prim = dnnl_be_primitive(e->fwd_pd, name);
        dnnl_be_exec_arg(&e->fwd, e->fwd_pd, DNNL_ARG_SRC);
        dnnl_be_exec_arg(&e->fwd, e->fwd_pd, DNNL_ARG_DST);
        dnnl_be_cache_add(&k, e, elt_entry_free);
    }
    if (backward && !e->bwd.prim) {
        snprintf(name, sizeof name, "eltwise %s backward n=%zu", nn_act_name(a), n);
        dnnl_eltwise_desc_t desc;
        dnnl_be_check(dnnl_eltwise_backward_desc_init(&desc, alg, &md, &md, alpha, beta), name);
        dnnl_primitive_desc_t pd = dnnl_be_pd(&desc, dnnl_be_attr(0, 0), e->fwd_pd, name);
        e->bwd.prim = dnnl_be_primitive(pd, name);
        dnnl_be_exec_arg(&e->bwd, pd, DNNL_ARG_SRC);
        dnnl_be_exec_arg(&e->bwd, pd, DNNL_ARG_DIFF_DST);
        dnnl_be_exec_arg(&e->bwd, pd, DNNL_ARG_DIFF_SRC);
        dnnl_primitive_desc_destroy(pd);
    }
    return e;
}

#define CHUNK 4096

/* y may equal x (in place), so neither is restrict */
DNNL_BE_CLONES static void hardsigmoid_range(size_t n, const float *x, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = x[i] + 3.0f;
        v = v < 0.0f ? 0.0f : v;
        v = v > 6.0f ? 6.0f : v;
        y[i] = v / 6.0f;
    }
}

void dnnl_be_act_forward(NnAct a, size_t n, const float *x, float *y)
{
    if (n == 0)
        return;
    if (a == NN_HARDSIGMOID) {
        size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
        for (size_t ch = 0; ch < chunks; ch++) {
            size_t i0 = ch * CHUNK;
            hardsigmoid_range(n - i0 < CHUNK ? n - i0 : CHUNK, x + i0, y + i0);
        }
        return;
    }
    EltEntry *e = elt_entry(a, n, 0);
    dnnl_be_exec_bind(&e->fwd, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(&e->fwd, DNNL_ARG_DST, y);
    dnnl_be_exec_run(&e->fwd, "eltwise forward");
}

/* dx += d act / dx (x) dy for the piecewise-linear activations, PyTorch's values at kinks. A
 * fresh dx (backend.h: it holds nothing yet) is taken as 0 rather than zeroed first: one pass
 * over it fewer, the same bits (0 + g, as after a memset). */
DNNL_BE_CLONES static void linear_pieces_backward(NnAct a, int fresh, size_t n,
                                                  const float *restrict x, const float *restrict dy,
                                                  float *restrict dx)
{
    switch (a) {
    case NN_RELU:
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] = (fresh ? 0.0f : dx[i]) + (x[i] > 0.0f ? dy[i] : 0.0f);
        break;
    case NN_RELU6:
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] = (fresh ? 0.0f : dx[i]) + (x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f);
        break;
    case NN_HARDSWISH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            float g = v < -3.0f ? 0.0f : v <= 3.0f ? v / 3.0f + 0.5f : 1.0f;
            dx[i] = (fresh ? 0.0f : dx[i]) + dy[i] * g;
        }
        break;
    case NN_HARDSIGMOID:
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] = (fresh ? 0.0f : dx[i]) + (x[i] > -3.0f && x[i] < 3.0f ? dy[i] / 6.0f : 0.0f);
        break;
    default: break;
    }
}

void dnnl_be_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx)
{
    if (n == 0)
        return;
    if (a == NN_SIGMOID || a == NN_SILU) {
        EltEntry *e = elt_entry(a, n, 1);
        float *tmp = dnnl_be_arena(n * sizeof(float));
        dnnl_be_exec_bind(&e->bwd, DNNL_ARG_SRC, x);
        dnnl_be_exec_bind(&e->bwd, DNNL_ARG_DIFF_DST, dy);
        dnnl_be_exec_bind(&e->bwd, DNNL_ARG_DIFF_SRC, tmp);
        dnnl_be_exec_run(&e->bwd, "eltwise backward");
        dnnl_be_deliver(0, n, tmp, dx);
        return;
    }
    int fresh = dnnl_be_fresh & 1; /* dx holds nothing yet (backend.h): written, not added to */
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        linear_pieces_backward(a, fresh, len, x + i0, dy + i0, dx + i0);
    }
}

#endif
