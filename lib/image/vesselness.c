/* vesselness.c: Frangi vesselness (see vesselness.h). Per scale: three passes along z give the
 * volume smoothed and differentiated once and twice in z; each z-slice of those is then filtered
 * along y and x into the six Hessian components (15 one-dimensional passes in all, the 2D case
 * 3); eigenvalues per voxel; then the vesselness with c known from the whole image. */
#include "lib/image/vesselness.h"

#include <math.h>
#include <string.h>

#include "lib/util/mem.h"

/* Sampled Gaussian-derivative weights of order 0, 1, 2 for correlation (out[x] = sum_j w[j]
 * in[x + j], j = -r..r), normalised so that they are exact on polynomials: order 0 sums to 1,
 * order 1 gives 1 on f = x, order 2 sums to 0 and gives 2 on f = x^2. Small sigmas (under a
 * voxel) would otherwise lose much of their derivative gain to sampling. w: 3 x (2r + 1). */
static void gauss_weights(double s, int r, float *w)
{
    int n = 2 * r + 1;
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
    for (int j = -r; j <= r; j++) {
        double g0 = exp(-0.5 * j * j / (s * s)) / sum;
        w[j + r] = (float)g0;
        w[n + j + r] = (float)(j * g0 / m2); /* correlation: d/dx f(x) = sum_j f(x + j) j g0 / m2 */
        w[2 * n + j + r] = (float)((j * j - m2) * g0 * a2);
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

/* out = in correlated with w (2r + 1 taps) along the slowest axis of in: (len, inner), so
 * each output plane of `inner` contiguous values is a weighted sum of input planes (z over
 * whole slices, y over rows of a slice), and the inner loop runs over contiguous memory. */
static void corr_planes(const float *in, float *out, int len, size_t inner, const float *w, int r)
{
    for (int i = 0; i < len; i++) {
        float *o = out + (size_t)i * inner;
        memset(o, 0, inner * sizeof *o);
        for (int j = -r; j <= r; j++) {
            float wj = w[j + r];
            if (wj == 0.0f)
                continue;
            const float *src = in + (size_t)reflect(i + j, len) * inner;
            for (size_t k = 0; k < inner; k++)
                o[k] += wj * src[k];
        }
    }
}

/* Along x: rows of nx values; pad is scratch of nx + 2r floats. */
static void corr_rows(const float *in, float *out, int nx, size_t rows, const float *w, int r,
                      float *pad)
{
    for (size_t y = 0; y < rows; y++) {
        const float *src = in + y * (size_t)nx;
        for (int i = -r; i < nx + r; i++)
            pad[i + r] = src[reflect(i, nx)];
        float *o = out + y * (size_t)nx;
        for (int x = 0; x < nx; x++) {
            float acc = 0.0f;
            const float *p = pad + x;
            for (int j = 0; j <= 2 * r; j++)
                acc += w[j] * p[j];
            o[x] = acc;
        }
    }
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

int hessian_3d(const float *in, const int dims[3], const double spacing[3], double sigma_mm,
               float *h[6], Err *e)
{
    if (check_geometry(dims, spacing, e))
        return -1;
    if (!(sigma_mm > 0))
        return err_set(e, ERR_CONFIG, "vesselness: sigma %g mm (must be > 0)", sigma_mm);
    int nx = dims[0], ny = dims[1], nz = dims[2];
    size_t plane = (size_t)nx * ny, n = plane * nz;
    int r[3];
    float *w[3] = {0};
    for (int a = 0; a < 3; a++) {
        r[a] = kernel_radius(sigma_mm / spacing[a]);
        w[a] = mem_alloc(3 * (size_t)(2 * r[a] + 1) * sizeof(float));
    }
    int nzd = nz > 1 ? 3 : 1; /* z derivatives to take (a 2D image has none) */
    float *zk = mem_alloc((size_t)nzd * n * sizeof *zk);
    float *tmp = mem_alloc(plane * sizeof *tmp);
    float *pad = mem_alloc((size_t)(nx + 2 * r[0] + 1) * sizeof *pad);
    int rc = 0;
    if (!w[0] || !w[1] || !w[2] || !zk || !tmp || !pad) {
        rc = err_set(e, ERR_NOMEM, "vesselness: out of memory for a %dx%dx%d volume", nx, ny, nz);
        goto out;
    }
    for (int a = 0; a < 3; a++)
        gauss_weights(sigma_mm / spacing[a], r[a], w[a]);
    if (nz > 1)
        for (int d = 0; d < 3; d++)
            corr_planes(in, zk + (size_t)d * n, nz, plane, w[2] + d * (2 * r[2] + 1), r[2]);
    else
        memcpy(zk, in, n * sizeof *zk);
    /* (z order, y order, x order) of xx, xy, yy, xz, yz, zz */
    static const int ord[6][3] = {{0, 0, 2}, {0, 1, 1}, {0, 2, 0}, {1, 0, 1}, {1, 1, 0}, {2, 0, 0}};
    for (int c = 0; c < 6; c++) {
        const int *o = ord[c];
        /* mm^-2, times sigma^2: d/dx_mm = (1 / spacing) d/dx_voxel */
        double unit = sigma_mm * sigma_mm /
                      (pow(spacing[0], o[2]) * pow(spacing[1], o[1]) * pow(spacing[2], o[0]));
        if (o[0] >= nzd) {
            memset(h[c], 0, n * sizeof *h[c]);
            continue;
        }
        for (int z = 0; z < nz; z++) {
            const float *src = zk + (size_t)o[0] * n + (size_t)z * plane;
            corr_planes(src, tmp, ny, (size_t)nx, w[1] + o[1] * (2 * r[1] + 1), r[1]);
            float *dst = h[c] + (size_t)z * plane;
            corr_rows(tmp, dst, nx, (size_t)ny, w[0] + o[2] * (2 * r[0] + 1), r[0], pad);
            for (size_t i = 0; i < plane; i++)
                dst[i] = (float)(dst[i] * unit);
        }
    }
out:
    for (int a = 0; a < 3; a++)
        mem_free(w[a]);
    mem_free(zk), mem_free(tmp), mem_free(pad);
    return rc;
}

void eig3_sym(const double a[6], double l[3])
{
    /* a = (xx, xy, yy, xz, yz, zz); the trigonometric solution of the characteristic cubic
     * (Smith 1961), stable enough in double precision for float Hessians. */
    double xx = a[0], xy = a[1], yy = a[2], xz = a[3], yz = a[4], zz = a[5];
    double p1 = xy * xy + xz * xz + yz * yz;
    double e[3];
    if (p1 == 0.0) {
        e[0] = xx, e[1] = yy, e[2] = zz;
    } else {
        double q = (xx + yy + zz) / 3.0;
        double p2 = (xx - q) * (xx - q) + (yy - q) * (yy - q) + (zz - q) * (zz - q) + 2.0 * p1;
        double p = sqrt(p2 / 6.0);
        double bxx = (xx - q) / p, byy = (yy - q) / p, bzz = (zz - q) / p;
        double bxy = xy / p, bxz = xz / p, byz = yz / p;
        double det = bxx * (byy * bzz - byz * byz) - bxy * (bxy * bzz - byz * bxz) +
                     bxz * (bxy * byz - byy * bxz);
        double rr = det / 2.0;
        double phi = rr <= -1.0 ? M_PI / 3.0 : rr >= 1.0 ? 0.0 : acos(rr) / 3.0;
        e[0] = q + 2.0 * p * cos(phi);
        e[2] = q + 2.0 * p * cos(phi + 2.0 * M_PI / 3.0);
        e[1] = 3.0 * q - e[0] - e[2];
    }
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

/* Both dimensionalities: nz = 1 is the 2D filter (no Ra term, 2x2 eigenvalues). */
static int frangi(const float *in, const int dims[3], const double spacing[3],
                  const FrangiParams *p, float *out, uint8_t *scale, Err *e)
{
    if (check_params(p, e) || check_geometry(dims, spacing, e))
        return -1;
    int is3d = dims[2] > 1;
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    float *h[6] = {0};
    for (int c = 0; c < 6; c++)
        if (!(h[c] = mem_alloc(n * sizeof *h[c]))) {
            for (int k = 0; k < c; k++)
                mem_free(h[k]);
            return err_set(e, ERR_NOMEM, "vesselness: out of memory");
        }
    memset(out, 0, n * sizeof *out);
    if (scale)
        memset(scale, 0, n);
    int rc = 0;
    double a2 = 2.0 * p->alpha * p->alpha, b2 = 2.0 * p->beta * p->beta;
    for (int s = 0; s < p->n_sigmas && rc == 0; s++) {
        if ((rc = hessian_3d(in, dims, spacing, p->sigmas_mm[s], h, e)))
            break;
        /* eigenvalues into h[0..2] (sorted by magnitude), largest S for c */
        double smax = 0.0;
        for (size_t i = 0; i < n; i++) {
            double l[3];
            if (is3d) {
                double a[6] = {h[0][i], h[1][i], h[2][i], h[3][i], h[4][i], h[5][i]};
                eig3_sym(a, l);
            } else {
                double m = 0.5 * (h[0][i] + h[2][i]), d = 0.5 * (h[0][i] - h[2][i]);
                double rt = sqrt(d * d + (double)h[1][i] * h[1][i]);
                double u = m + rt, v = m - rt;
                l[0] = 0.0;
                l[1] = fabs(u) <= fabs(v) ? u : v;
                l[2] = fabs(u) <= fabs(v) ? v : u;
            }
            double s2 = l[0] * l[0] + l[1] * l[1] + l[2] * l[2];
            if (s2 > smax)
                smax = s2;
            h[0][i] = (float)l[0], h[1][i] = (float)l[1], h[2][i] = (float)l[2];
        }
        double c = p->c > 0 ? p->c : 0.5 * sqrt(smax);
        double c2 = 2.0 * c * c;
        if (!(c2 > 0))
            continue; /* a flat image: no structure at this scale */
        for (size_t i = 0; i < n; i++) {
            double v;
            if (is3d) {
                double l1 = h[0][i], l2 = h[1][i], l3 = h[2][i];
                if (l2 >= 0.0 || l3 >= 0.0)
                    continue;
                double ra2 = (l2 * l2) / (l3 * l3);
                double rb2 = (l1 * l1) / fabs(l2 * l3);
                double s2 = l1 * l1 + l2 * l2 + l3 * l3;
                v = (1.0 - exp(-ra2 / a2)) * exp(-rb2 / b2) * (1.0 - exp(-s2 / c2));
            } else {
                double l1 = h[1][i], l2 = h[2][i];
                if (l2 >= 0.0)
                    continue;
                double rb2 = (l1 * l1) / (l2 * l2);
                double s2 = l1 * l1 + l2 * l2;
                v = exp(-rb2 / b2) * (1.0 - exp(-s2 / c2));
            }
            if (v > out[i]) {
                out[i] = (float)v;
                if (scale)
                    scale[i] = (uint8_t)s;
            }
        }
    }
    for (int c = 0; c < 6; c++)
        mem_free(h[c]);
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
