/* conv.c: 2-D convolution (dense, grouped, depthwise, dilated) on oneDNN, forward and both
 * backward passes.
 *
 * Activations are handed to oneDNN as plain NHWC and the weights as format `any`: oneDNN 2.6
 * has JIT kernels for channels-last activations in every direction (brgconv / jit_1x1 /
 * brdgmm_dw forward, jit / jit_dw backward on AVX-512), so activations are never reordered and
 * only the small weight tensors are, per call, from OIHW (goihw with groups: the same memory
 * viewed (G, Cout/G, Cin/G, KH, KW)) into whatever blocked layout each direction chose. The
 * backward-data primitive picks its own weight layout (toolchain.md gotcha 2), so it gets its
 * own reorder.
 *
 * oneDNN's backward passes overwrite their outputs, while backend.h wants them accumulated:
 * dx is computed into the workspace and added to dx, and dw is reordered back to OIHW by a
 * reorder with a sum post-op (dw += reorder(diff_weights)). Padding is symmetric: oneDNN
 * checks (in - ker_range + pad_l + pad_r) / stride + 1 == out with C's division, which is
 * PyTorch's floor formula when pad_r = pad_l. The weight gradient of a depthwise convolution
 * whose kernel oneDNN has no depthwise backward-weights implementation for (anything but 3x3)
 * is computed by hand (dwconv.c).
 *
 * Workspace (the graph's, sized by dnnl_be_conv2d_workspace), carved in 64-byte aligned parts:
 *   forward:  [oneDNN scratchpad][weights in the forward layout]
 *   backward: [oneDNN scratchpad][weights in the bwd-data layout][dx: (N,H,W,Cin)]
 *             [dw in the bwd-weights layout][db: (Cout)] */
#if ONFH_HAVE_DNNL

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/nn/backend.h"
#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/util/mem.h"

enum { KEY_CONV = 1 };

/* The cached primitives of one descriptor. [b] indexes the variant without (0) and with (1)
 * a bias (forward) or a bias gradient (backward-weights). Primitives are made on first use;
 * the descriptors, which size the workspace, when the entry is made. */
typedef struct ConvEntry {
    NnConv2d c;
    dnnl_memory_desc_t w_user; /* oihw or goihw */
    dnnl_primitive_desc_t fwd_pd[2];
    dnnl_primitive_desc_t bwdd_pd;
    dnnl_primitive_desc_t bwdw_pd[2];
    DnnlBeExec fwd[2];
    DnnlBeExec bwdd;
    DnnlBeExec bwdw[2];
    DnnlBeReorder w_to_fwd[2]; /* OIHW -> forward layout */
    DnnlBeReorder w_to_bwdd;   /* OIHW -> backward-data layout */
    DnnlBeReorder dw_acc[2];   /* bwd-weights layout -> OIHW, accumulating */
    DnnlBeReorder dw_set[2];   /* the same, writing (fresh parameter gradients) */
    int fwd_ready[2];
    int bwdd_ready;
    int bwdw_ready[2];
    /* Backward-data as a forward convolution (bwdd_as_forward): [acc] overwrites (0) or, with a
     * sum post-op, accumulates into dx (1). */
    int bwdd_fwd;
    dnnl_primitive_desc_t bwdd_fwd_pd[2];
    DnnlBeExec bwdd_fwd_ex[2];
    DnnlBeReorder w_to_bwdd_fwd[2]; /* the flipped, transposed weights -> the forward layout */
    int bwdd_fwd_ready[2];
    int hand_dw;   /* weight gradient by dwconv.c: oneDNN has no depthwise kernel for it */
    size_t ws_fwd; /* workspace bytes of forward and backward */
    size_t ws_bwd;
} ConvEntry;

static void conv_name(const NnConv2d *c, const char *dir, char *buf, size_t len)
{
    snprintf(buf, len, "conv %s N%d %dx%dx%d -> %d k%dx%d s%d,%d p%d,%d d%d,%d g%d", dir, c->n,
             c->c_in, c->h_in, c->w_in, c->c_out, c->kh, c->kw, c->stride_h, c->stride_w, c->pad_h,
             c->pad_w, c->dil_h, c->dil_w, c->groups);
}

static void conv_entry_free(void *p)
{
    ConvEntry *e = p;
    for (int b = 0; b < 2; b++) {
        dnnl_be_exec_free(&e->fwd[b]);
        dnnl_be_exec_free(&e->bwdw[b]);
        dnnl_be_reorder_free(&e->w_to_fwd[b]);
        dnnl_be_reorder_free(&e->dw_acc[b]);
        dnnl_be_reorder_free(&e->dw_set[b]);
        dnnl_primitive_desc_destroy(e->fwd_pd[b]);
        dnnl_primitive_desc_destroy(e->bwdw_pd[b]);
        dnnl_be_exec_free(&e->bwdd_fwd_ex[b]);
        dnnl_be_reorder_free(&e->w_to_bwdd_fwd[b]);
        if (e->bwdd_fwd_pd[b])
            dnnl_primitive_desc_destroy(e->bwdd_fwd_pd[b]);
    }
    dnnl_be_exec_free(&e->bwdd);
    dnnl_be_reorder_free(&e->w_to_bwdd);
    dnnl_primitive_desc_destroy(e->bwdd_pd);
    mem_free(e);
}

/* Weight bytes in the layout of pd's argument arg. */
static size_t arg_bytes(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_memory_desc_get_size(dnnl_be_arg_md(pd, arg));
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static int one_by_one(const NnConv2d *c)
{
    return c->kh == 1 && c->kw == 1;
}

/* Backward-data of a dense stride-1 convolution is a forward convolution of dy with the
 * weights flipped in space and transposed (in and out channels swapped), padded k - 1 - p.
 * Why run it so: oneDNN 2.6's forward kernels (brgconv) are faster than its backward-data ones
 * (jit), and a forward convolution takes a sum post-op, so a dx that already holds another
 * consumer's gradient is added to in place instead of through a temporary and a second pass.
 * 1x1 too where dx has 64 channels or more: a ResNet bottleneck's first 1x1 then adds into the
 * gradient its shortcut wrote with no temporary and no add pass, and DenseNet's 1x1 convolutions
 * ran 12% faster so (ONEDNN_VERBOSE times per shape, 2-core AVX-512 machine, 2026-11-27); with
 * fewer (MobileNetV2's expansions from 16 to 32 channels) brgconv's output blocks go mostly
 * unused and it ran up to 2x slower than jit_1x1's backward-data. ONFH_DNNL_BWDD=native keeps
 * oneDNN's backward-data primitive. */
static int bwdd_as_forward(const NnConv2d *c)
{
    static int off = -1;
    if (off < 0) {
        const char *v = getenv("ONFH_DNNL_BWDD");
        off = v && !strcmp(v, "native");
    }
    return !off && c->groups == 1 && c->stride_h == 1 && c->stride_w == 1 && c->dil_h == 1 &&
           c->dil_w == 1 && 2 * c->pad_h <= c->kh - 1 && 2 * c->pad_w <= c->kw - 1 &&
           (!one_by_one(c) || c->c_in >= 64);
}

/* Workspace of backward-data as a forward convolution: [scratchpad][W' plain][W' blocked]. */
static size_t bwdd_fwd_ws(const ConvEntry *e, int acc)
{
    const NnConv2d *c = &e->c;
    size_t plain = (size_t)c->c_out * c->c_in * c->kh * c->kw * sizeof(float);
    return dnnl_be_round(dnnl_be_scratch_bytes(e->bwdd_fwd_pd[acc])) + dnnl_be_round(plain) +
           dnnl_be_round(
               dnnl_memory_desc_get_size(dnnl_be_arg_md(e->bwdd_fwd_pd[acc], DNNL_ARG_WEIGHTS)));
}

/* Creates the five primitive descriptors of c and the workspace sizes. */
static void conv_entry_init(ConvEntry *e, const NnConv2d *c)
{
    int g = c->groups > 1;
    dnnl_dim_t xd[4] = {c->n, c->c_in, c->h_in, c->w_in};
    dnnl_dim_t yd[4] = {c->n, c->c_out, c->h_out, c->w_out};
    dnnl_dim_t wd[5] = {c->groups, c->c_out / c->groups, c->c_in / c->groups, c->kh, c->kw};
    dnnl_dim_t bd[1] = {c->c_out};
    dnnl_dims_t strides = {c->stride_h, c->stride_w};
    dnnl_dims_t dil = {c->dil_h - 1, c->dil_w - 1}; /* oneDNN counts the gaps */
    dnnl_dims_t pad = {c->pad_h, c->pad_w};
    dnnl_memory_desc_t x = dnnl_be_md(4, xd, dnnl_nhwc);
    dnnl_memory_desc_t y = dnnl_be_md(4, yd, dnnl_nhwc);
    dnnl_memory_desc_t w = dnnl_be_md(g ? 5 : 4, g ? wd : wd + 1, dnnl_format_tag_any);
    dnnl_memory_desc_t b = dnnl_be_md(1, bd, dnnl_x);
    char name[160];
    dnnl_convolution_desc_t d;

    e->c = *c;
    e->w_user = dnnl_be_md(g ? 5 : 4, g ? wd : wd + 1, g ? dnnl_goihw : dnnl_oihw);
    conv_name(c, "forward", name, sizeof name);
    for (int hb = 0; hb < 2; hb++) {
        dnnl_be_check(dnnl_dilated_convolution_forward_desc_init(
                          &d, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
                          hb ? &b : NULL, &y, strides, dil, pad, pad),
                      name);
        e->fwd_pd[hb] = dnnl_be_pd(&d, dnnl_be_attr(1, 0), NULL, name);
    }
    conv_name(c, "backward-data", name, sizeof name);
    dnnl_be_check(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x,
                                                                   &w, &y, strides, dil, pad, pad),
                  name);
    e->bwdd_pd = dnnl_be_pd(&d, dnnl_be_attr(1, 0), e->fwd_pd[0], name);
    conv_name(c, "backward-weights", name, sizeof name);
    for (int hb = 0; hb < 2; hb++) {
        dnnl_be_check(
            dnnl_dilated_convolution_backward_weights_desc_init(
                &d, dnnl_convolution_direct, &x, &w, hb ? &b : NULL, &y, strides, dil, pad, pad),
            name);
        e->bwdw_pd[hb] = dnnl_be_pd(&d, dnnl_be_attr(1, 0), e->fwd_pd[hb], name);
    }

    e->bwdd_fwd = bwdd_as_forward(c);
    if (e->bwdd_fwd) {
        /* dx = conv(dy, W'), stride 1, padding k - 1 - p, W'[i][o][a][b] = W[o][i][kh-1-a][kw-1-b]
         */
        dnnl_dim_t wtd[4] = {c->c_in, c->c_out, c->kh, c->kw};
        dnnl_memory_desc_t wt = dnnl_be_md(4, wtd, dnnl_format_tag_any);
        dnnl_dims_t one = {1, 1}, none = {0, 0};
        dnnl_dims_t tpad = {c->kh - 1 - c->pad_h, c->kw - 1 - c->pad_w};
        conv_name(c, "backward-data as forward", name, sizeof name);
        for (int acc = 0; acc < 2; acc++) {
            dnnl_be_check(dnnl_dilated_convolution_forward_desc_init(
                              &d, dnnl_forward_inference, dnnl_convolution_direct, &y, &wt, NULL,
                              &x, one, none, tpad, tpad),
                          name);
            e->bwdd_fwd_pd[acc] = dnnl_be_pd(&d, dnnl_be_attr(1, acc), NULL, name);
        }
    }

    const char *impl = "";
    dnnl_primitive_desc_query(e->bwdw_pd[0], dnnl_query_impl_info_str, 0, &impl);
    e->hand_dw = dnnl_be_dw_hand_ok(c) && !strstr(impl, "_dw");
    if (e->hand_dw && dnnl_be_verbose())
        fprintf(stderr, "onfh dnnl: %s: hand-written NHWC depthwise (oneDNN offers %s)\n", name,
                impl);

    for (int hb = 0; hb < 2; hb++)
        e->ws_fwd =
            max_size(e->ws_fwd, dnnl_be_round(dnnl_be_scratch_bytes(e->fwd_pd[hb])) +
                                    dnnl_be_round(arg_bytes(e->fwd_pd[hb], DNNL_ARG_WEIGHTS)));
    size_t scratch = dnnl_be_scratch_bytes(e->bwdd_pd);
    size_t dw = 0;
    for (int hb = 0; hb < 2; hb++) {
        scratch = max_size(scratch, dnnl_be_scratch_bytes(e->bwdw_pd[hb]));
        dw = max_size(dw, arg_bytes(e->bwdw_pd[hb], DNNL_ARG_DIFF_WEIGHTS));
    }
    e->ws_bwd = dnnl_be_round(scratch) + dnnl_be_round(arg_bytes(e->bwdd_pd, DNNL_ARG_WEIGHTS)) +
                dnnl_be_round(arg_bytes(e->bwdd_pd, DNNL_ARG_DIFF_SRC)) + dnnl_be_round(dw) +
                dnnl_be_round((size_t)c->c_out * sizeof(float));
    for (int acc = 0; e->bwdd_fwd && acc < 2; acc++)
        e->ws_bwd = max_size(e->ws_bwd, bwdd_fwd_ws(e, acc));
}

static ConvEntry *conv_entry(const NnConv2d *c)
{
    DnnlBeKey k = {{KEY_CONV, c->n, c->c_in, c->h_in, c->w_in, c->c_out, c->kh, c->kw, c->stride_h,
                    c->stride_w, c->pad_h, c->pad_w, c->dil_h, c->dil_w, c->groups}};
    ConvEntry *e = dnnl_be_cache_find(&k);
    if (e)
        return e;
    e = mem_calloc(1, sizeof *e);
    if (!e)
        dnnl_be_check(dnnl_out_of_memory, "conv cache entry");
    conv_entry_init(e, c);
    dnnl_be_cache_add(&k, e, conv_entry_free);
    return e;
}

/* Makes the primitive of pd with the given arguments (and the scratchpad if it needs one). */
static void exec_init(DnnlBeExec *ex, const_dnnl_primitive_desc_t pd, const int *args, int n,
                      const char *name)
{
    ex->prim = dnnl_be_primitive(pd, name);
    for (int i = 0; i < n; i++)
        dnnl_be_exec_arg(ex, pd, args[i]);
    if (dnnl_be_scratch_bytes(pd))
        dnnl_be_exec_arg(ex, pd, DNNL_ARG_SCRATCHPAD);
}

/* Points ex's scratchpad at the workspace's start, where the primitive has one (exec_init). */
static void bind_scratchpad(DnnlBeExec *ex, char *ws)
{
    for (int i = 0; i < ex->n_args; i++)
        if (ex->args[i].arg == DNNL_ARG_SCRATCHPAD)
            dnnl_be_exec_bind(ex, DNNL_ARG_SCRATCHPAD, ws);
}

size_t dnnl_be_conv2d_workspace(const NnConv2d *c)
{
    ConvEntry *e = conv_entry(c);
    return max_size(e->ws_fwd, e->ws_bwd);
}

void dnnl_be_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b,
                            float *y, void *workspace)
{
    ConvEntry *e = conv_entry(c);
    int hb = b != NULL;
    char name[160];
    conv_name(c, "forward", name, sizeof name);
    if (!e->fwd_ready[hb]) {
        const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        const int args_nb[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        exec_init(&e->fwd[hb], e->fwd_pd[hb], hb ? args : args_nb, hb ? 4 : 3, name);
        dnnl_be_reorder_init(&e->w_to_fwd[hb], &e->w_user,
                             dnnl_be_arg_md(e->fwd_pd[hb], DNNL_ARG_WEIGHTS), 0, name);
        e->fwd_ready[hb] = 1;
    }
    DnnlBeExec *ex = &e->fwd[hb];
    char *ws = workspace;
    char *w_blocked = ws + dnnl_be_round(dnnl_be_scratch_bytes(e->fwd_pd[hb]));
    const float *wk = w;
    if (e->w_to_fwd[hb].ex.prim) {
        dnnl_be_reorder_run(&e->w_to_fwd[hb], w, w_blocked, name);
        wk = (const float *)w_blocked;
    }
    bind_scratchpad(ex, ws);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_WEIGHTS, wk);
    if (hb)
        dnnl_be_exec_bind(ex, DNNL_ARG_BIAS, b);
    /* a channel view of y (ldy): oneDNN's JIT kernels want a dense NHWC destination, so the
     * output goes through the arena and its rows are copied into the view, Cout floats each */
    size_t rows = (size_t)c->n * c->h_out * c->w_out;
    float *dst = c->ldy ? dnnl_be_arena(rows * c->c_out * sizeof(float)) : y;
    dnnl_be_exec_bind(ex, DNNL_ARG_DST, dst);
    dnnl_be_exec_run(ex, name);
    if (c->ldy)
        dnnl_be_rows(rows, c->c_out, dst, c->c_out, y, c->ldy, 0);
}

/* dx += backward-data(dy, w), through a dx-sized temporary in the workspace. */
static void conv_backward_data(ConvEntry *e, const float *w, const float *dy, float *dx, char *ws)
{
    char name[160];
    conv_name(&e->c, "backward-data", name, sizeof name);
    if (!e->bwdd_ready) {
        const int args[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        exec_init(&e->bwdd, e->bwdd_pd, args, 3, name);
        dnnl_be_reorder_init(&e->w_to_bwdd, &e->w_user,
                             dnnl_be_arg_md(e->bwdd_pd, DNNL_ARG_WEIGHTS), 0, name);
        e->bwdd_ready = 1;
    }
    size_t scratch = dnnl_be_round(dnnl_be_scratch_bytes(e->bwdd_pd));
    for (int hb = 0; hb < 2; hb++)
        scratch = max_size(scratch, dnnl_be_round(dnnl_be_scratch_bytes(e->bwdw_pd[hb])));
    char *w_blocked = ws + scratch;
    float *dx_tmp = (float *)(w_blocked + dnnl_be_round(arg_bytes(e->bwdd_pd, DNNL_ARG_WEIGHTS)));
    const float *wk = w;
    if (e->w_to_bwdd.ex.prim) {
        dnnl_be_reorder_run(&e->w_to_bwdd, w, w_blocked, name);
        wk = (const float *)w_blocked;
    }
    DnnlBeExec *ex = &e->bwdd;
    bind_scratchpad(ex, ws);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_DST, dy);
    dnnl_be_exec_bind(ex, DNNL_ARG_WEIGHTS, wk);
    /* a fresh dx (backend.h, set_fresh_grads) is written in place: no temporary, no add */
    int fresh = dnnl_be_fresh & 1;
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SRC, fresh ? dx : dx_tmp);
    dnnl_be_exec_run(ex, name);
    const NnConv2d *c = &e->c;
    if (!fresh)
        dnnl_be_accumulate((size_t)c->n * c->c_in * c->h_in * c->w_in, dx_tmp, dx);
}

/* dx (+)= backward-data(dy, w) as a forward convolution (bwdd_as_forward): written when fresh,
 * else added to by the sum post-op. */
static void conv_backward_data_fwd(ConvEntry *e, const float *w, const float *dy, float *dx,
                                   char *ws)
{
    const NnConv2d *c = &e->c;
    int acc = !(dnnl_be_fresh & 1);
    char name[160];
    conv_name(c, "backward-data as forward", name, sizeof name);
    const_dnnl_primitive_desc_t pd = e->bwdd_fwd_pd[acc];
    if (!e->bwdd_fwd_ready[acc]) {
        const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        exec_init(&e->bwdd_fwd_ex[acc], pd, args, 3, name);
        /* W' (Cin, Cout, KH, KW) plain; for 1x1 that is W's own memory read as iohw (no
         * flip), so the reorder transposes and blocks in one pass from w */
        dnnl_dim_t wtd[4] = {c->c_in, c->c_out, c->kh, c->kw};
        dnnl_memory_desc_t plain = dnnl_be_md(4, wtd, one_by_one(c) ? dnnl_iohw : dnnl_oihw);
        dnnl_be_reorder_init(&e->w_to_bwdd_fwd[acc], &plain, dnnl_be_arg_md(pd, DNNL_ARG_WEIGHTS),
                             0, name);
        e->bwdd_fwd_ready[acc] = 1;
    }
    float *wt = (float *)(ws + dnnl_be_round(dnnl_be_scratch_bytes(pd)));
    char *wb =
        (char *)wt + dnnl_be_round((size_t)c->c_out * c->c_in * c->kh * c->kw * sizeof(float));
    size_t taps = (size_t)c->kh * c->kw;
    const float *wk = w; /* 1x1: the reorder reads W as iohw */
    if (!one_by_one(c)) {
        for (int i = 0; i < c->c_in; i++)
            for (int o = 0; o < c->c_out; o++) {
                const float *src = w + ((size_t)o * c->c_in + i) * taps;
                float *dst = wt + ((size_t)i * c->c_out + o) * taps;
                for (size_t t = 0; t < taps; t++)
                    dst[t] = src[taps - 1 - t]; /* (a, b) -> (kh-1-a, kw-1-b): taps reversed */
            }
        wk = wt;
    }
    if (e->w_to_bwdd_fwd[acc].ex.prim) {
        dnnl_be_reorder_run(&e->w_to_bwdd_fwd[acc], wk, wb, name);
        wk = (const float *)wb;
    }
    DnnlBeExec *ex = &e->bwdd_fwd_ex[acc];
    bind_scratchpad(ex, ws);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, dy);
    dnnl_be_exec_bind(ex, DNNL_ARG_WEIGHTS, wk);
    dnnl_be_exec_bind(ex, DNNL_ARG_DST, dx);
    dnnl_be_exec_run(ex, name);
}

/* dw += backward-weights(x, dy) (and db += sum of dy), through temporaries placed after the
 * backward-data parts of the workspace; dw = ..., db = ... when they are fresh
 * (NN_FRESH_PARAMS). */
static void conv_backward_weights(ConvEntry *e, const float *x, const float *dy, float *dw,
                                  float *db, char *ws)
{
    int hb = db != NULL, fresh = (dnnl_be_fresh & NN_FRESH_PARAMS) != 0;
    char name[160];
    if (e->hand_dw) {
        if (fresh) {
            const NnConv2d *c = &e->c;
            memset(dw, 0, (size_t)c->c_out * (c->c_in / c->groups) * c->kh * c->kw * sizeof *dw);
            if (db)
                memset(db, 0, (size_t)c->c_out * sizeof *db);
        }
        dnnl_be_dw_backward_weights(&e->c, x, dy, dw, db);
        return;
    }
    conv_name(&e->c, "backward-weights", name, sizeof name);
    if (!e->bwdw_ready[hb]) {
        const int args[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                            DNNL_ARG_DIFF_BIAS};
        exec_init(&e->bwdw[hb], e->bwdw_pd[hb], args, hb ? 4 : 3, name);
        dnnl_be_reorder_init(&e->dw_acc[hb], dnnl_be_arg_md(e->bwdw_pd[hb], DNNL_ARG_DIFF_WEIGHTS),
                             &e->w_user, 1, name);
        dnnl_be_reorder_init(&e->dw_set[hb], dnnl_be_arg_md(e->bwdw_pd[hb], DNNL_ARG_DIFF_WEIGHTS),
                             &e->w_user, 0, name);
        e->bwdw_ready[hb] = 1;
    }
    size_t scratch = dnnl_be_round(dnnl_be_scratch_bytes(e->bwdd_pd));
    size_t dw_max = 0;
    for (int v = 0; v < 2; v++) {
        scratch = max_size(scratch, dnnl_be_round(dnnl_be_scratch_bytes(e->bwdw_pd[v])));
        dw_max = max_size(dw_max, arg_bytes(e->bwdw_pd[v], DNNL_ARG_DIFF_WEIGHTS));
    }
    char *dw_tmp = ws + scratch + dnnl_be_round(arg_bytes(e->bwdd_pd, DNNL_ARG_WEIGHTS)) +
                   dnnl_be_round(arg_bytes(e->bwdd_pd, DNNL_ARG_DIFF_SRC));
    float *db_tmp = (float *)(dw_tmp + dnnl_be_round(dw_max));
    DnnlBeExec *ex = &e->bwdw[hb];
    bind_scratchpad(ex, ws);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_DST, dy);
    /* fresh, in a layout that is already OIHW's (no reorder made): written in place */
    int direct = fresh && !e->dw_set[hb].ex.prim;
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_WEIGHTS, direct ? (void *)dw : dw_tmp);
    if (hb)
        dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_BIAS, db_tmp);
    dnnl_be_exec_run(ex, name);
    if (!direct)
        dnnl_be_reorder_run(fresh ? &e->dw_set[hb] : &e->dw_acc[hb], dw_tmp, dw, name);
    if (hb)
        for (int o = 0; o < e->c.c_out; o++)
            db[o] = fresh ? db_tmp[o] : db[o] + db_tmp[o];
}

void dnnl_be_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, void *workspace)
{
    ConvEntry *e = conv_entry(c);
    if (c->ldy) { /* dy a channel view: gathered dense, as forward wrote y */
        size_t rows = (size_t)c->n * c->h_out * c->w_out;
        float *dense = dnnl_be_arena(rows * c->c_out * sizeof(float));
        dnnl_be_rows(rows, c->c_out, dy, c->ldy, dense, c->c_out, 0);
        dy = dense;
    }
    if (dx && e->bwdd_fwd)
        conv_backward_data_fwd(e, w, dy, dx, workspace);
    else if (dx)
        conv_backward_data(e, w, dy, dx, workspace);
    conv_backward_weights(e, x, dy, dw, db, workspace);
}

#endif
