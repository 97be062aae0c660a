/* vesselness.c: Frangi vesselness (see vesselness.h). Per scale: the six Hessian components
 * from separable Gaussian-derivative passes, slice by slice (hessian); then S^2 and a cheap
 * test of every voxel, and eigenvalues and V only where a bright tube can be (frangi). The
 * passes are plain loops over contiguous floats that the compiler vectorises (the Makefile
 * builds this file at -O3 for that); the per-voxel work is in double. */
#include "lib/image/vesselness.h"

#include <math.h>
#include <string.h>

#include "lib/util/mem.h"

/* Sampled Gaussian-derivative weights of order 0, 1, 2 for correlation (out[x] = sum_j w[j]
 * in[x + j], j = -r..r), normalised so that they are exact on polynomials: order 0 sums to 1,
 * order 1 gives 1 on f = x, order 2 sums to 0 and gives 2 on f = x^2. Small sigmas (under a
 * voxel) would otherwise lose much of their derivative gain to sampling. Orders 0 and 2 are
 * even, order 1 odd, so only j = 0..r is kept (see corr_lines), order d times unit[d].
 * h: 3 x (r + 1). */
static void gauss_weights(double s, int r, const double unit[3], float *h)
{
    double sum = 0, m2 = 0, m4 = 0;
    for (int j = -r; j <= r; j++)
        sum += exp(-0.5 * j * j / (s * s));
    for (int j = -r; j <= r; j++) {
        double g0 = exp(-0.5 * j * j / (s * s)) / sum;
        m2 += j * j * g0;
        m4 += (double)j * j * j * j * g0;
    }
    /* order 2 kernel (j^2 - m2) g0 scaled to give 2 on x^2: sum j^2 (j^2 - m2) g0 = m4 - m2^2 */
    double a2 = 2.0 / (m4 - m2 * m2);
    for (int j = 0; j <= r; j++) {
        double g0 = exp(-0.5 * j * j / (s * s)) / sum;
        h[j] = (float)(g0 * unit[0]);
        h[r + 1 + j] = (float)(j * g0 / m2 * unit[1]); /* d/dx f(x) = sum_j f(x + j) j g0 / m2 */
        h[2 * (r + 1) + j] = (float)((j * j - m2) * g0 * a2 * unit[2]);
    }
}

/* scipy.ndimage's 'reflect' boundary: d c b a | a b c d | d c b a. */
static int reflect(int i, int n)
{
    if (n == 1)
        return 0;
    for (;;) {
        if (i < 0)
            i = -i - 1;
        else if (i >= n)
            i = 2 * n - i - 1;
        else
            return i;
    }
}

/* The kernels are symmetric (orders 0, 2) or antisymmetric (order 1), so a pass folds them about
 * the centre: one multiply per pair of taps. h: the half kernel, h[j] the weight at +j; at -j it
 * is h[j] (even) or -h[j] (odd, where h[0] = 0). */

/* out[k] = sum_{j=-r..r} w(j) line[r + j][k], k < len: one output line from 2r + 1 input lines
 * (whole slices for the z pass, rows of a slice for the y pass, shifted views of one mirrored
 * row for the x pass), so every loop runs over contiguous memory and vectorises. */
static void corr_lines(const float *const *line, int r, const float *h, int odd, size_t len,
                       float *restrict out)
{
    const float *restrict c = line[r];
    float h0 = h[0];
    for (size_t k = 0; k < len; k++)
        out[k] = h0 * c[k];
    for (int j = 1; j <= r; j++) {
        const float *restrict a = line[r + j], *restrict b = line[r - j];
        float hj = h[j];
        if (odd)
            for (size_t k = 0; k < len; k++)
                out[k] += hj * (a[k] - b[k]);
        else
            for (size_t k = 0; k < len; k++)
                out[k] += hj * (a[k] + b[k]);
    }
}

/* Along x, one row of nx values: mirrored into pad (nx + 2r floats), then corr_lines over the
 * 2r + 1 shifted views of it (ln: 2r + 1 pointers). */
static void corr_row(const float *in, int nx, int r, const float *h, int odd, float *pad,
                     const float **ln, float *restrict out)
{
    for (int i = -r; i < 0; i++)
        pad[i + r] = in[reflect(i, nx)];
    memcpy(pad + r, in, (size_t)nx * sizeof *pad);
    for (int i = nx; i < nx + r; i++)
        pad[i + r] = in[reflect(i, nx)];
    for (int j = 0; j <= 2 * r; j++)
        ln[j] = pad + j;
    corr_lines(ln, r, h, odd, (size_t)nx, out);
}

static int kernel_radius(double s)
{
    int r = (int)ceil(4.0 * s);
    return r < 1 ? 1 : r;
}

static int check_geometry(const int dims[3], const double spacing[3], Err *e)
{
    for (int a = 0; a < 3; a++) {
        if (dims[a] < 1)
            return err_set(e, ERR_CONFIG, "vesselness: dimension %d is %d", a, dims[a]);
        if (!(spacing[a] > 0) || !isfinite(spacing[a]))
            return err_set(e, ERR_CONFIG, "vesselness: spacing %d is %g mm (must be > 0)", a,
                           spacing[a]);
    }
    return 0;
}

/* Scratch of the Hessian passes, sized for the largest scale and allocated once per volume:
 * the half kernels per axis and order, the current slice along z (orders 0..2), one slice
 * after the y pass, a mirrored row, and the input-line pointers of a pass. */
typedef struct HessWork {
    float *h[3];      /* axis a: 3 x (r + 1), order d at h[a] + d * (r + 1) */
    float *zs;        /* 3 slices */
    float *ys;        /* 1 slice */
    float *pad;       /* nx + 2 r along x */
    const float **ln; /* 2 max(r) + 1 */
} HessWork;

static void hess_work_free(HessWork *w)
{
    for (int a = 0; a < 3; a++)
        mem_free(w->h[a]);
    mem_free(w->zs), mem_free(w->ys), mem_free(w->pad), mem_free((void *)w->ln);
    memset(w, 0, sizeof *w);
}

static int hess_work_alloc(HessWork *w, const int dims[3], const double spacing[3],
                           double sigma_max_mm, Err *e)
{
    memset(w, 0, sizeof *w);
    size_t plane = (size_t)dims[0] * dims[1];
    int r[3], rmax = 0;
    for (int a = 0; a < 3; a++) {
        r[a] = kernel_radius(sigma_max_mm / spacing[a]);
        rmax = r[a] > rmax ? r[a] : rmax;
        w->h[a] = mem_alloc(3 * (size_t)(r[a] + 1) * sizeof(float));
    }
    w->zs = mem_alloc(3 * plane * sizeof *w->zs);
    w->ys = mem_alloc(plane * sizeof *w->ys);
    w->pad = mem_alloc((size_t)(dims[0] + 2 * r[0]) * sizeof *w->pad);
    w->ln = mem_alloc((size_t)(2 * rmax + 1) * sizeof *w->ln);
    if (!w->h[0] || !w->h[1] || !w->h[2] || !w->zs || !w->ys || !w->pad || !w->ln) {
        hess_work_free(w);
        return err_set(e, ERR_NOMEM, "vesselness: out of memory for a %dx%dx%d volume", dims[0],
                       dims[1], dims[2]);
    }
    return 0;
}

/* The Hessian at one scale into h[0..5] (see hessian_3d), with w's scratch. Per z-slice: the
 * input smoothed and differentiated along z (3 passes over its 2r + 1 neighbouring slices),
 * then per component a pass along y and one along x: 15 one-dimensional passes in all (the 2D
 * case 3), each slice's work in cache. The unit (mm^-2 times sigma^2) is folded into the
 * kernels: order d along axis a scaled by 1 / spacing[a]^d, and x's by sigma^2 as well. */
static void hessian(const float *in, const int dims[3], const double spacing[3], double sigma_mm,
                    HessWork *w, float *h[6])
{
    int nx = dims[0], ny = dims[1], nz = dims[2];
    size_t plane = (size_t)nx * ny;
    int r[3];
    for (int a = 0; a < 3; a++) {
        double s = sigma_mm / spacing[a];
        r[a] = kernel_radius(s);
        double g = a == 0 ? sigma_mm * sigma_mm : 1.0;
        double unit[3] = {g, g / spacing[a], g / (spacing[a] * spacing[a])};
        gauss_weights(s, r[a], unit, w->h[a]);
    }
    const float *hz[3], *hy[3], *hx[3];
    for (int d = 0; d < 3; d++) {
        hz[d] = w->h[2] + d * (r[2] + 1);
        hy[d] = w->h[1] + d * (r[1] + 1);
        hx[d] = w->h[0] + d * (r[0] + 1);
    }
    int nzd = nz > 1 ? 3 : 1; /* z derivatives to take (a 2D image has none) */
    /* (z order, y order, x order) of xx, xy, yy, xz, yz, zz */
    static const int ord[6][3] = {{0, 0, 2}, {0, 1, 1}, {0, 2, 0}, {1, 0, 1}, {1, 1, 0}, {2, 0, 0}};
    for (int z = 0; z < nz; z++) {
        const float *zsl[3] = {in + (size_t)z * plane, NULL, NULL};
        if (nz > 1) {
            for (int j = -r[2]; j <= r[2]; j++)
                w->ln[j + r[2]] = in + (size_t)reflect(z + j, nz) * plane;
            for (int d = 0; d < 3; d++) {
                corr_lines(w->ln, r[2], hz[d], d == 1, plane, w->zs + d * plane);
                zsl[d] = w->zs + d * plane;
            }
        }
        for (int c = 0; c < 6; c++) {
            const int *o = ord[c];
            float *dst = h[c] + (size_t)z * plane;
            if (o[0] >= nzd) {
                memset(dst, 0, plane * sizeof *dst);
                continue;
            }
            for (int y = 0; y < ny; y++) {
                for (int j = -r[1]; j <= r[1]; j++)
                    w->ln[j + r[1]] = zsl[o[0]] + (size_t)reflect(y + j, ny) * nx;
                corr_lines(w->ln, r[1], hy[o[1]], o[1] == 1, (size_t)nx, w->ys + (size_t)y * nx);
            }
            for (int y = 0; y < ny; y++)
                corr_row(w->ys + (size_t)y * nx, nx, r[0], hx[o[2]], o[2] == 1, w->pad, w->ln,
                         dst + (size_t)y * nx);
        }
    }
}

int hessian_3d(const float *in, const int dims[3], const double spacing[3], double sigma_mm,
               float *h[6], Err *e)
{
    if (check_geometry(dims, spacing, e))
        return -1;
    if (!(sigma_mm > 0))
        return err_set(e, ERR_CONFIG, "vesselness: sigma %g mm (must be > 0)", sigma_mm);
    HessWork w;
    if (hess_work_alloc(&w, dims, spacing, sigma_mm, e))
        return -1;
    hessian(in, dims, spacing, sigma_mm, &w, h);
    hess_work_free(&w);
    return 0;
}

/* Eigenvalues of the symmetric matrix a = (xx, xy, yy, xz, yz, zz), e[0] >= e[1] >= e[2]: the
 * trigonometric solution of the characteristic cubic (Smith 1961), stable enough in double
 * precision for float Hessians. The roots are q + 2p cos(phi + 2 pi k / 3); the smallest,
 * cos(phi + 2 pi / 3) = -(cos phi + sqrt(3) sin phi) / 2 with sin phi >= 0 (phi in [0, pi/3]),
 * costs a square root instead of a second cosine. */
static void eig3_desc(const double a[6], double e[3])
{
    double xx = a[0], xy = a[1], yy = a[2], xz = a[3], yz = a[4], zz = a[5];
    double p1 = xy * xy + xz * xz + yz * yz;
    if (p1 == 0.0) {
        e[0] = xx, e[1] = yy, e[2] = zz;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2 - i; j++)
                if (e[j] < e[j + 1]) {
                    double t = e[j];
                    e[j] = e[j + 1], e[j + 1] = t;
                }
        return;
    }
    double q = (xx + yy + zz) / 3.0;
    double dx = xx - q, dy = yy - q, dz = zz - q; /* a - q I = p B */
    double p = sqrt((dx * dx + dy * dy + dz * dz + 2.0 * p1) / 6.0);
    double det = dx * (dy * dz - yz * yz) - xy * (xy * dz - yz * xz) + xz * (xy * yz - dy * xz);
    double rr = det / (2.0 * p * p * p); /* det(B) / 2, in [-1, 1] */
    double cs = rr <= -1.0 ? 0.5 : rr >= 1.0 ? 1.0 : cos(acos(rr) / 3.0);
    double sn = sqrt(fmax(0.0, 1.0 - cs * cs));
    e[0] = q + 2.0 * p * cs;
    e[2] = q - p * (cs + sqrt(3.0) * sn);
    e[1] = 3.0 * q - e[0] - e[2];
}

void eig3_sym(const double a[6], double l[3])
{
    double e[3];
    eig3_desc(a, e);
    /* sort by magnitude: three compare-swaps */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2 - i; j++)
            if (fabs(e[j]) > fabs(e[j + 1])) {
                double t = e[j];
                e[j] = e[j + 1], e[j + 1] = t;
            }
    l[0] = e[0], l[1] = e[1], l[2] = e[2];
}

static int check_params(const FrangiParams *p, Err *e)
{
    if (p->n_sigmas < 1 || p->n_sigmas > 255)
        return err_set(e, ERR_CONFIG, "vesselness: %d scales (1..255)", p->n_sigmas);
    for (int s = 0; s < p->n_sigmas; s++)
        if (!(p->sigmas_mm[s] > 0))
            return err_set(e, ERR_CONFIG, "vesselness: scale %d is %g mm (must be > 0)", s,
                           p->sigmas_mm[s]);
    if (!(p->beta > 0) || (!(p->alpha > 0)))
        return err_set(e, ERR_CONFIG, "vesselness: alpha %g and beta %g must be > 0", p->alpha,
                       p->beta);
    return 0;
}

/* Per scale, the vesselness goes in two passes. The first visits every voxel with a few
 * multiplies and no branches: S^2 for Frangi's c, and whether the voxel is a bright-tube
 * candidate at all (below), listing those. The second visits the candidates only (a quarter of
 * the voxels in a noisy series): it skips those where V's upper bound cannot beat an earlier
 * scale, and only then takes the eigenvalues (two transcendental functions) and V's exponentials.
 *
 * Candidates. V is 0 unless the two eigenvalues of largest magnitude are negative. With
 * e0 >= e1 >= e2 (3D) they are e1 and e2 exactly when e0 + e1 < 0 (a non-negative e0 then has
 * the smallest magnitude), and e0 + e1 is the smallest eigenvalue of tr(H) I - H, so the test
 * is H - tr(H) I positive definite: its three leading principal minors positive (Sylvester's
 * criterion), no eigenvalues needed. In 2D the larger-magnitude eigenvalue has the trace's
 * sign. Bound. S^2 = l1^2 + l2^2 + l3^2 is the squared Frobenius norm of H, and Ra <= 1, so
 * V <= (1 - exp(-1 / 2 alpha^2)) (1 - exp(-S^2 / 2 c^2)) (3D; 2D without the first factor). */
static double frob2(const float *const h[6], size_t i, int is3d)
{
    double xx = h[0][i], xy = h[1][i], yy = h[2][i];
    if (!is3d)
        return xx * xx + yy * yy + 2.0 * xy * xy;
    double xz = h[3][i], yz = h[4][i], zz = h[5][i];
    return xx * xx + yy * yy + zz * zz + 2.0 * (xy * xy + xz * xz + yz * yz);
}

static int tube_candidate(const float *const h[6], size_t i, int is3d)
{
    double xx = h[0][i], xy = h[1][i], yy = h[2][i];
    if (!is3d)
        return xx + yy < 0.0;
    double xz = h[3][i], yz = h[4][i], zz = h[5][i];
    double n11 = -(yy + zz), n22 = -(xx + zz), n33 = -(xx + yy);
    double m2 = n11 * n22 - xy * xy;
    double det =
        n11 * (n22 * n33 - yz * yz) - xy * (xy * n33 - yz * xz) + xz * (xy * yz - n22 * xz);
    return (n11 > 0.0) & (m2 > 0.0) & (det > 0.0);
}

/* V of a candidate voxel (vesselness.h), given its structureness factor st. */
static double tube_vesselness(const float *const h[6], size_t i, int is3d, double st, double a2,
                              double b2)
{
    if (is3d) {
        double a[6] = {h[0][i], h[1][i], h[2][i], h[3][i], h[4][i], h[5][i]}, e[3];
        eig3_desc(a, e); /* by magnitude l1 = e0, l2 = e1, l3 = e2 (the candidate test) */
        double l1 = e[0], l2 = e[1], l3 = e[2];
        if (l2 >= 0.0 || l3 >= 0.0)
            return 0.0; /* rounding at the candidate test's edge */
        double ra2 = (l2 * l2) / (l3 * l3);
        double rb2 = (l1 * l1) / fabs(l2 * l3);
        return (1.0 - exp(-ra2 / a2)) * exp(-rb2 / b2) * st;
    }
    double xx = h[0][i], xy = h[1][i], yy = h[2][i];
    double m = 0.5 * (xx + yy), d = 0.5 * (xx - yy);
    double rt = sqrt(d * d + xy * xy);
    double l1 = m + rt, l2 = m - rt; /* m < 0: l2 has the larger magnitude */
    double rb2 = (l1 * l1) / (l2 * l2);
    return exp(-rb2 / b2) * st;
}

/* Both dimensionalities: nz = 1 is the 2D filter (no Ra term, 2x2 eigenvalues). */
static int frangi(const float *in, const int dims[3], const double spacing[3],
                  const FrangiParams *p, float *out, uint8_t *scale, Err *e)
{
    if (check_params(p, e) || check_geometry(dims, spacing, e))
        return -1;
    int is3d = dims[2] > 1;
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    double sigma_max = 0.0;
    for (int s = 0; s < p->n_sigmas; s++)
        sigma_max = p->sigmas_mm[s] > sigma_max ? p->sigmas_mm[s] : sigma_max;
    HessWork w;
    if (hess_work_alloc(&w, dims, spacing, sigma_max, e))
        return -1;
    float *h[6] = {0};
    size_t *cand = mem_alloc(n * sizeof *cand);
    int rc = 0;
    for (int c = 0; c < 6; c++)
        h[c] = mem_alloc(n * sizeof *h[c]);
    if (!cand || !h[0] || !h[1] || !h[2] || !h[3] || !h[4] || !h[5]) {
        rc = err_set(e, ERR_NOMEM, "vesselness: out of memory for a %dx%dx%d volume", dims[0],
                     dims[1], dims[2]);
        goto out;
    }
    memset(out, 0, n * sizeof *out);
    if (scale)
        memset(scale, 0, n);
    const float *const *hc = (const float *const *)h;
    double a2 = 2.0 * p->alpha * p->alpha, b2 = 2.0 * p->beta * p->beta;
    double ra_max = is3d ? 1.0 - exp(-1.0 / a2) : 1.0;
    for (int s = 0; s < p->n_sigmas; s++) {
        hessian(in, dims, spacing, p->sigmas_mm[s], &w, h);
        double smax = 0.0;
        size_t nc = 0;
        for (size_t i = 0; i < n; i++) {
            double s2 = frob2(hc, i, is3d);
            smax = s2 > smax ? s2 : smax;
            cand[nc] = i;
            nc += tube_candidate(hc, i, is3d);
        }
        double c = p->c > 0 ? p->c : 0.5 * sqrt(smax);
        double c2 = 2.0 * c * c;
        if (!(c2 > 0))
            continue; /* a flat image: no structure at this scale */
        for (size_t k = 0; k < nc; k++) {
            size_t i = cand[k];
            double st = 1.0 - exp(-frob2(hc, i, is3d) / c2);
            if (ra_max * st <= out[i])
                continue; /* V <= ra_max st: this scale cannot win here */
            double v = tube_vesselness(hc, i, is3d, st, a2, b2);
            if (v > out[i]) {
                out[i] = (float)v;
                if (scale)
                    scale[i] = (uint8_t)s;
            }
        }
    }
out:
    for (int c = 0; c < 6; c++)
        mem_free(h[c]);
    mem_free(cand);
    hess_work_free(&w);
    return rc;
}

int frangi_3d(const float *in, const int dims[3], const double spacing[3], const FrangiParams *p,
              float *out, uint8_t *scale, Err *e)
{
    if (dims[2] < 2)
        return err_set(e, ERR_CONFIG, "vesselness: a 3D volume needs at least 2 slices, got %d",
                       dims[2]);
    return frangi(in, dims, spacing, p, out, scale, e);
}

int frangi_2d(const float *in, const int dims[2], const double spacing[2], const FrangiParams *p,
              float *out, uint8_t *scale, Err *e)
{
    int d3[3] = {dims[0], dims[1], 1};
    double s3[3] = {spacing[0], spacing[1], 1.0};
    return frangi(in, d3, s3, p, out, scale, e);
}
