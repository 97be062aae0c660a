/* linear.cu: fully connected layer (torch.nn.Linear) on cuBLAS, fp32 (the handle's
 * CUBLAS_DEFAULT_MATH: no TF32).
 *
 * x: (N,IN), w: (OUT,IN), y, dy: (N,OUT), all row-major. cuBLAS is column-major, and a
 * row-major (r, c) matrix is the column-major (c, r) matrix with ld = c, its transpose. So
 * with X = x^T (IN,N) ld IN, W = w^T (IN,OUT) ld IN, Y = y^T (OUT,N) ld OUT, the three
 * products of ref/linear.c become:
 *   y = x w^T           ->  Y (OUT,N)   = W^T (OUT,IN) X (IN,N)      gemm T N, m OUT n N k IN
 *   dx += dy w          ->  dX (IN,N)  += W (IN,OUT) dY (OUT,N)      gemm N N, m IN n N k OUT
 *   dw += dy^T x        ->  dW (IN,OUT) += X (IN,N) dY^T (N,OUT)     gemm N T, m IN n OUT k N
 * beta = 1 makes the backward products accumulate. The bias is cu_bias_add and db its
 * column sum of dy, cu_bias_grad (conv.cu). */
#include "lib/nn/cuda/cu_core.cuh"

void cu_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y)
{
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(cu_cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in,
                             &zero, y, out));
    if (b)
        cu_bias_add(n, out, b, y);
    CU_AFTER("linear forward");
}

void cu_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db)
{
    cublasHandle_t h = cu_cublas();
    const float one = 1.0f;
    if (dx)
        CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out,
                                 &one, dx, in));
    CUBLAS_CHECK(
        cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &one, dw, in));
    if (db)
        cu_bias_grad(n, out, dy, db);
    CU_AFTER("linear backward");
}
