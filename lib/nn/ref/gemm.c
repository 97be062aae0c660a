/* gemm.c: the plain blocked single-precision matrix multiply under ref's convolution and
 * linear layers. No BLAS on purpose: ref is the oracle and should depend on nothing that could
 * share a bug with the dnnl backend it checks.
 *
 * C (M,N) += op(A) (M,K) op(B) (K,N), row-major. Three cases are needed and each gets the loop
 * order that lets the compiler vectorise the innermost loop without reassociating a sum:
 *   NN, TN: for each row i and each k, add a_ik times row k of B to row i of C (an axpy along
 *           contiguous j); blocked over k and j so the slice of B in use stays in cache.
 *   NT:     C_ij is a dot product of two contiguous rows, summed in 8 independent lanes.
 * TT is never needed and not provided. */
#include <assert.h>

#include "lib/nn/ref/ref.h"

#define BLOCK_K 128
#define BLOCK_N 512

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* C += op(A) B with op(A)_ik = ta ? A[k*lda + i] : A[i*lda + k]. */
static void gemm_xn(int ta, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                    float *c, int ldc)
{
    for (int j0 = 0; j0 < n; j0 += BLOCK_N) {
        int nj = min_int(BLOCK_N, n - j0);
        for (int k0 = 0; k0 < k; k0 += BLOCK_K) {
            int k1 = min_int(k0 + BLOCK_K, k);
            for (int i = 0; i < m; i++) {
                float *crow = c + (size_t)i * ldc + j0;
                for (int kk = k0; kk < k1; kk++) {
                    /* no skip of a_ik = 0: 0 * inf must stay NaN, as in PyTorch */
                    float aik = ta ? a[(size_t)kk * lda + i] : a[(size_t)i * lda + kk];
                    const float *brow = b + (size_t)kk * ldb + j0;
                    for (int j = 0; j < nj; j++)
                        crow[j] += aik * brow[j];
                }
            }
        }
    }
}

/* Sum of a[i] b[i] over k terms, in 8 lanes so it vectorises without -ffast-math. */
static float dot(const float *a, const float *b, int k)
{
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= k; i += 8)
        for (int u = 0; u < 8; u++)
            lane[u] += a[i + u] * b[i + u];
    float tail = 0.0f;
    for (; i < k; i++)
        tail += a[i] * b[i];
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
           ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

/* C += A B^T: A (M,K), B stored (N,K). */
static void gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                    int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[(size_t)i * ldc + j] += dot(a + (size_t)i * lda, b + (size_t)j * ldb, k);
}

void ref_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b,
               int ldb, float *c, int ldc)
{
    assert(!(ta && tb));
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    if (tb)
        gemm_nt(m, n, k, a, lda, b, ldb, c, ldc);
    else
        gemm_xn(ta, m, n, k, a, lda, b, ldb, c, ldc);
}
