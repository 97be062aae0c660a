/* linear.c: the fully connected layer (torch.nn.Linear) as three oneDNN matmuls.
 *
 * x: (N,IN), w: (OUT,IN) as PyTorch stores it, y = x w^T + b. A transposed operand is the
 * same memory described with swapped strides (format tag ba), so nothing is copied:
 *   y (N,OUT)    = x (N,IN) w^T (IN,OUT) + b      w^T: w as (IN,OUT) ba; b as (1,OUT)
 *   dx (N,IN)   += dy (N,OUT) w (OUT,IN)           sum post-op
 *   dw (OUT,IN) += dy^T (OUT,N) x (N,IN)           dy^T: dy as (OUT,N) ba; sum post-op
 * The sum post-op makes oneDNN accumulate into dx and dw, as backend.h wants, with no
 * temporary. db is the column sum of dy, a short loop. */
#if ONFH_HAVE_DNNL

#include <stdio.h>

#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/util/mem.h"

enum { KEY_LINEAR = 4 };

enum { LIN_FWD, LIN_FWD_BIAS, LIN_BWD_DATA, LIN_BWD_WEIGHTS };

static void lin_entry_free(void *p)
{
    dnnl_be_exec_free(p);
    mem_free(p);
}

/* The matmul of one kind for (n, in, out), made on first use. Arguments: SRC, WEIGHTS, DST
 * (and BIAS for LIN_FWD_BIAS) in the roles of the table above. */
static DnnlBeExec *lin_exec(int kind, int n, int in, int out)
{
    DnnlBeKey k = {{KEY_LINEAR, kind, n, in, out}};
    DnnlBeExec *ex = dnnl_be_cache_find(&k);
    if (ex)
        return ex;
    static const char *const names[] = {"forward", "forward+bias", "backward-data",
                                        "backward-weights"};
    char name[96];
    snprintf(name, sizeof name, "linear %s N%d %d -> %d", names[kind], n, in, out);
    dnnl_dim_t m;
    dnnl_dim_t kk;
    dnnl_dim_t nn;
    dnnl_format_tag_t a_tag = dnnl_ab;
    dnnl_format_tag_t b_tag = dnnl_ab;
    if (kind == LIN_FWD || kind == LIN_FWD_BIAS) {
        m = n, kk = in, nn = out, b_tag = dnnl_ba;
    } else if (kind == LIN_BWD_DATA) {
        m = n, kk = out, nn = in;
    } else {
        m = out, kk = n, nn = in, a_tag = dnnl_ba;
    }
    dnnl_dim_t ad[2] = {m, kk};
    dnnl_dim_t bd[2] = {kk, nn};
    dnnl_dim_t cd[2] = {m, nn};
    dnnl_dim_t biasd[2] = {1, nn};
    dnnl_memory_desc_t a = dnnl_be_md(2, ad, a_tag);
    dnnl_memory_desc_t b = dnnl_be_md(2, bd, b_tag);
    dnnl_memory_desc_t c = dnnl_be_md(2, cd, dnnl_ab);
    dnnl_memory_desc_t bias = dnnl_be_md(2, biasd, dnnl_ab);
    dnnl_matmul_desc_t d;
    dnnl_be_check(dnnl_matmul_desc_init(&d, &a, &b, kind == LIN_FWD_BIAS ? &bias : NULL, &c), name);
    dnnl_primitive_desc_t pd = dnnl_be_pd(&d, dnnl_be_attr(0, kind >= LIN_BWD_DATA), NULL, name);
    ex = mem_calloc(1, sizeof *ex);
    if (!ex)
        dnnl_be_check(dnnl_out_of_memory, name);
    ex->prim = dnnl_be_primitive(pd, name);
    dnnl_be_exec_arg(ex, pd, DNNL_ARG_SRC);
    dnnl_be_exec_arg(ex, pd, DNNL_ARG_WEIGHTS);
    dnnl_be_exec_arg(ex, pd, DNNL_ARG_DST);
    if (kind == LIN_FWD_BIAS)
        dnnl_be_exec_arg(ex, pd, DNNL_ARG_BIAS);
    dnnl_primitive_desc_destroy(pd);
    dnnl_be_cache_add(&k, ex, lin_entry_free);
    return ex;
}

static void lin_run(DnnlBeExec *ex, const float *a, const float *b, float *c, const char *what)
{
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, a);
    dnnl_be_exec_bind(ex, DNNL_ARG_WEIGHTS, b);
    dnnl_be_exec_bind(ex, DNNL_ARG_DST, c);
    dnnl_be_exec_run(ex, what);
}

void dnnl_be_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                            float *y)
{
    DnnlBeExec *ex = lin_exec(b ? LIN_FWD_BIAS : LIN_FWD, n, in, out);
    if (b)
        dnnl_be_exec_bind(ex, DNNL_ARG_BIAS, b);
    lin_run(ex, x, w, y, "linear forward");
}

void dnnl_be_linear_backward(int n, int in, int out, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db)
{
    if (dx)
        lin_run(lin_exec(LIN_BWD_DATA, n, in, out), dy, w, dx, "linear backward-data");
    lin_run(lin_exec(LIN_BWD_WEIGHTS, n, in, out), dy, x, dw, "linear backward-weights");
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)i * out + o];
}

#endif
