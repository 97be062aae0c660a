/* linear.c: reference fully connected layer (torch.nn.Linear), forward and backward.
 *
 * x: (N,IN), w: (OUT,IN) as PyTorch stores it, y = x w^T + b. Three products of gemm.c:
 *   y (N,OUT)    = x (N,IN) w^T (IN,OUT)      NT
 *   dx (N,IN)   += dy (N,OUT) w (OUT,IN)      NN
 *   dw (OUT,IN) += dy^T (OUT,N) x (N,IN)      TN
 * and db is the column sum of dy. */
#include "lib/nn/ref/ref.h"

void ref_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                        float *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++)
            y[(size_t)i * out + o] = b ? b[o] : 0.0f;
    ref_sgemm(0, 1, n, out, in, x, in, w, in, y, out);
}

void ref_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db)
{
    if (dx)
        ref_sgemm(0, 0, n, in, out, dy, out, w, in, dx, in);
    ref_sgemm(1, 0, out, in, n, dy, out, x, in, dw, in);
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)i * out + o];
}
