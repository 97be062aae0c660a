/* norm.c: BatchNorm2d on oneDNN's batch normalization, NHWC, training and eval mode, forward
 * and backward.
 *
 * oneDNN computes the batch mean and the biased variance and normalises with them, but keeps
 * no running statistics (toolchain.md 4.5). So forward writes its mean straight into save_mean
 * and its variance into save_invstd, and one pass over the C channels then updates PyTorch's
 * running statistics (unbiased variance var M / (M - 1), M = N H W; momentum rule in
 * backend.h) and turns the variance into invstd = 1 / sqrt(var + eps) in place.
 *
 * Backward takes the variance again: var = 1 / invstd^2 - eps, which oneDNN turns back into
 * 1 / sqrt(var + eps) = invstd to within a float rounding. Its outputs are overwritten, so
 * they go to the scratch arena and are accumulated into dx, dgamma and dbeta (backend.h).
 * Eval mode passes the running statistics with dnnl_use_global_stats, forward and backward.
 * With dnnl_use_scale | dnnl_use_shift the backward pass needs DNNL_ARG_SHIFT although it
 * does not read it (toolchain.md gotcha 1). */
#if ONFH_HAVE_DNNL

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/util/mem.h"

enum { KEY_BN = 2 };

enum { BN_FWD_TRAIN, BN_FWD_EVAL, BN_BWD_TRAIN, BN_BWD_EVAL, BN_KINDS };

typedef struct BnEntry {
    dnnl_primitive_desc_t hint[2]; /* forward pds that backward pds need: [global stats] */
    DnnlBeExec ex[BN_KINDS];       /* made on first use */
} BnEntry;

static void bn_entry_free(void *p)
{
    BnEntry *e = p;
    for (int k = 0; k < BN_KINDS; k++)
        dnnl_be_exec_free(&e->ex[k]);
    for (int g = 0; g < 2; g++)
        if (e->hint[g])
            dnnl_primitive_desc_destroy(e->hint[g]);
    mem_free(e);
}

static void bn_name(const NnBatchNorm *bn, int kind, char *buf, size_t len)
{
    static const char *const dir[BN_KINDS] = {"forward training", "forward eval",
                                              "backward training", "backward eval"};
    snprintf(buf, len, "batchnorm %s N%d C%d %dx%d", dir[kind], bn->n, bn->c, bn->h, bn->w);
}

static dnnl_batch_normalization_desc_t bn_desc(const NnBatchNorm *bn, dnnl_prop_kind_t prop,
                                               unsigned flags, const char *name)
{
    dnnl_dim_t d[4] = {bn->n, bn->c, bn->h, bn->w};
    dnnl_memory_desc_t x = dnnl_be_md(4, d, dnnl_nhwc);
    dnnl_batch_normalization_desc_t desc;
    if (prop == dnnl_backward)
        dnnl_be_check(
            dnnl_batch_normalization_backward_desc_init(&desc, prop, &x, &x, bn->eps, flags), name);
    else
        dnnl_be_check(dnnl_batch_normalization_forward_desc_init(&desc, prop, &x, bn->eps, flags),
                      name);
    return desc;
}

/* The executable of one kind for bn, made on first use. */
static DnnlBeExec *bn_exec(const NnBatchNorm *bn, int kind)
{
    float eps = bn->eps;
    DnnlBeKey k = {{KEY_BN, bn->n, bn->c, bn->h, bn->w}};
    memcpy(&k.v[5], &eps, sizeof eps);
    BnEntry *e = dnnl_be_cache_find(&k);
    if (!e) {
        e = mem_calloc(1, sizeof *e);
        if (!e)
            dnnl_be_check(dnnl_out_of_memory, "batchnorm cache entry");
        dnnl_be_cache_add(&k, e, bn_entry_free);
    }
    DnnlBeExec *ex = &e->ex[kind];
    if (ex->prim)
        return ex;

    char name[128];
    bn_name(bn, kind, name, sizeof name);
    int global = kind == BN_FWD_EVAL || kind == BN_BWD_EVAL;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (global ? dnnl_use_global_stats : 0);
    dnnl_primitive_desc_t pd;
    if (kind == BN_FWD_TRAIN || kind == BN_FWD_EVAL) {
        dnnl_batch_normalization_desc_t d =
            bn_desc(bn, global ? dnnl_forward_inference : dnnl_forward_training, flags, name);
        pd = dnnl_be_pd(&d, dnnl_be_attr(0, 0), NULL, name);
        const int args[] = {DNNL_ARG_SRC,   DNNL_ARG_DST,  DNNL_ARG_SCALE,
                            DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
        ex->prim = dnnl_be_primitive(pd, name);
        for (int i = 0; i < 6; i++)
            dnnl_be_exec_arg(ex, pd, args[i]);
    } else {
        if (!e->hint[global]) {
            dnnl_batch_normalization_desc_t d = bn_desc(bn, dnnl_forward_training, flags, name);
            e->hint[global] = dnnl_be_pd(&d, dnnl_be_attr(0, 0), NULL, name);
        }
        dnnl_batch_normalization_desc_t d = bn_desc(bn, dnnl_backward, flags, name);
        pd = dnnl_be_pd(&d, dnnl_be_attr(0, 0), e->hint[global], name);
        const int args[] = {DNNL_ARG_SRC,      DNNL_ARG_MEAN,       DNNL_ARG_VARIANCE,
                            DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE,      DNNL_ARG_SHIFT,
                            DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
        ex->prim = dnnl_be_primitive(pd, name);
        for (int i = 0; i < 9; i++)
            dnnl_be_exec_arg(ex, pd, args[i]);
    }
    dnnl_primitive_desc_destroy(pd);
    return ex;
}

static void bn_forward(const NnBatchNorm *bn, int kind, const float *x, const float *gamma,
                       const float *beta, const float *mean, const float *var, float *y)
{
    char name[128];
    bn_name(bn, kind, name, sizeof name);
    DnnlBeExec *ex = bn_exec(bn, kind);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_DST, y);
    dnnl_be_exec_bind(ex, DNNL_ARG_SCALE, gamma);
    dnnl_be_exec_bind(ex, DNNL_ARG_SHIFT, beta);
    dnnl_be_exec_bind(ex, DNNL_ARG_MEAN, mean);
    dnnl_be_exec_bind(ex, DNNL_ARG_VARIANCE, var);
    dnnl_be_exec_run(ex, name);
}

void dnnl_be_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean,
                                     float *running_var, int64_t *num_batches_tracked,
                                     float *save_mean, float *save_invstd)
{
    /* oneDNN writes the batch mean and biased variance (outputs in training mode) */
    bn_forward(bn, BN_FWD_TRAIN, x, gamma, beta, save_mean, save_invstd, y);
    double m = (double)bn->n * bn->h * bn->w;
    double mom = bn->momentum;
    for (int c = 0; c < bn->c; c++) {
        double var = save_invstd[c];
        running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * save_mean[c]);
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * var * m / (m - 1.0));
        save_invstd[c] = (float)(1.0 / sqrt(var + bn->eps));
    }
    *num_batches_tracked += 1;
}

void dnnl_be_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float *y)
{
    bn_forward(bn, BN_FWD_EVAL, x, gamma, beta, running_mean, running_var, y);
}

/* Runs backward of one kind with the given statistics (var is the variance, not invstd) and
 * accumulates its outputs. Arena: [diff_src (N,H,W,C)][dgamma (C)][dbeta (C)]. */
static void bn_backward(const NnBatchNorm *bn, int kind, const float *x, const float *gamma,
                        const float *mean, const float *var, const float *dy, float *dx,
                        float *dgamma, float *dbeta, char *arena)
{
    char name[128];
    bn_name(bn, kind, name, sizeof name);
    size_t n = (size_t)bn->n * bn->c * bn->h * bn->w;
    float *dx_tmp = (float *)arena;
    float *dg_tmp = (float *)(arena + dnnl_be_round(n * sizeof(float)));
    float *db_tmp = dg_tmp + bn->c;
    DnnlBeExec *ex = bn_exec(bn, kind);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_MEAN, mean);
    dnnl_be_exec_bind(ex, DNNL_ARG_VARIANCE, var);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_DST, dy);
    dnnl_be_exec_bind(ex, DNNL_ARG_SCALE, gamma);
    dnnl_be_exec_bind(ex, DNNL_ARG_SHIFT, gamma); /* required, never read (gotcha 1) */
    int fresh = dx && (dnnl_be_fresh & 1);        /* written in place (backend.h) */
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SRC, fresh ? dx : dx_tmp);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SCALE, dg_tmp);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SHIFT, db_tmp);
    dnnl_be_exec_run(ex, name);
    if (dx && !fresh)
        dnnl_be_accumulate(n, dx_tmp, dx);
    for (int c = 0; c < bn->c; c++) {
        dgamma[c] += dg_tmp[c];
        dbeta[c] += db_tmp[c];
    }
}

static size_t bn_arena_bytes(const NnBatchNorm *bn)
{
    size_t n = (size_t)bn->n * bn->c * bn->h * bn->w;
    return dnnl_be_round(n * sizeof(float)) + 3 * dnnl_be_round((size_t)bn->c * sizeof(float));
}

void dnnl_be_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                      const float *save_mean, const float *save_invstd,
                                      const float *dy, float *dx, float *dgamma, float *dbeta)
{
    char *arena = dnnl_be_arena(bn_arena_bytes(bn));
    float *var =
        (float *)(arena + bn_arena_bytes(bn) - dnnl_be_round((size_t)bn->c * sizeof(float)));
    for (int c = 0; c < bn->c; c++) {
        double is = save_invstd[c];
        var[c] = (float)(1.0 / (is * is) - bn->eps);
    }
    bn_backward(bn, BN_BWD_TRAIN, x, gamma, save_mean, var, dy, dx, dgamma, dbeta, arena);
}

void dnnl_be_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *running_mean, const float *running_var,
                                     const float *dy, float *dx, float *dgamma, float *dbeta)
{
    char *arena = dnnl_be_arena(bn_arena_bytes(bn));
    bn_backward(bn, BN_BWD_EVAL, x, gamma, running_mean, running_var, dy, dx, dgamma, dbeta, arena);
}

#endif
