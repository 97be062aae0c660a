/* anatomy.c: the synthetic coronal T1-weighted hip MRI of onfh, painted one image row at a time.
 *
 * Every solid of the phantom is convex (an ellipsoid, a finite elliptic cylinder, either clipped
 * by half-spaces, or the body's superellipse), so a row of an image, the line of constant y and
 * z, meets it in one interval that a square root finds. A row is painted by walking the list of
 * solids in order; each overwrites the samples of its interval whose current tissue its `where`
 * mask allows. That gives unions, carvings and conditional tissue without per-sample CSG: a
 * bone paints all its outer shapes as cortex and then all its inner shapes as marrow (so parts
 * join without internal walls), the acetabular cartilage is only cut out of pelvic bone, fat
 * planes only replace muscle. The femoral heads are the one exception: subchondral collapse
 * compresses the top of a head, which no quadric describes, so a head is classified point by
 * point over the short stretch of the row that its sphere covers.
 *
 * anatomy_tissue_at paints a one-sample row with the same code, so the tissue at a point and the
 * image can never disagree, and the lesion mask comes from the same head classifier that paints
 * the lesion. Painting a row costs a bounding test per solid and a few memsets, which is what
 * makes a 256x256 slice with 8 samples per pixel take a few milliseconds.
 *
 * Coordinates are DICOM LPS millimetres (+x patient's left, +y posterior, +z head). Anatomy not
 * stored in SynthAnatomy is placed in a pelvis frame: origin midway between the head centres,
 * X towards the patient's left (turned by pelvis_tilt_deg about y), Y posterior, Z up; s = -1
 * for the right hip, +1 for the left, so one table of offsets serves both sides. */
#include "stages/synth/anatomy.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Tissues and their T1 signal

/* Painted labels: the public tissues, then finer ones that report as a public tissue but carry
 * their own signal. A lesion label per hip, because the two lesions have their own interior. */
enum {
    L_AIR = TISSUE_AIR,
    L_FAT = TISSUE_FAT,
    L_MUSCLE = TISSUE_MUSCLE,
    L_CORTEX = TISSUE_CORTEX,
    L_MARROW = TISSUE_MARROW,
    L_CARTILAGE = TISSUE_CARTILAGE,
    L_FLUID = TISSUE_FLUID,
    L_LESION0 = TISSUE_LESION,
    L_BAND = TISSUE_BAND,
    L_LESION1 = TISSUE_COUNT,
    L_PMARROW, /* pelvic marrow: more red marrow than the femur, a little darker */
    L_BOWEL,   /* bowel wall (and the bladder's) */
    L_VESSEL,  /* flowing blood: a flow void */
    L_LUMEN,   /* bowel contents */
    L_SEPTUM,  /* fat of an intermuscular plane (fat; its own label so a shell can be cut) */
    L_COUNT
};

#define BIT(l)    (1u << (l))
#define WHERE_ALL 0xffffu

static const uint8_t label_tissue[L_COUNT] = {
    TISSUE_AIR,       TISSUE_FAT,    TISSUE_MUSCLE, TISSUE_CORTEX, TISSUE_MARROW,
    TISSUE_CARTILAGE, TISSUE_FLUID,  TISSUE_LESION, TISSUE_BAND,   TISSUE_LESION,
    TISSUE_MARROW,    TISSUE_MUSCLE, TISSUE_FLUID,  TISSUE_MUSCLE, TISSUE_FAT,
};

/* T1 signal relative to subcutaneous fat (spin echo, TR ~500 ms): fatty marrow nearly as bright
 * as fat, muscle and cartilage intermediate, fluid dark (long T1), cortex and the sclerotic or
 * fibrous lesion band almost void. The lesion entries are replaced by interior x marrow. */
#define SIG_MARROW 0.88
static const double label_signal[L_COUNT] = {
    [L_AIR] = 0.0,     [L_FAT] = 1.0,        [L_MUSCLE] = 0.32,  [L_CORTEX] = 0.05,
    [L_MARROW] = 0.88, [L_CARTILAGE] = 0.40, [L_FLUID] = 0.15,   [L_LESION0] = 0.88,
    [L_BAND] = 0.15,   [L_LESION1] = 0.88,   [L_PMARROW] = 0.82, [L_BOWEL] = 0.42,
    [L_VESSEL] = 0.06, [L_LUMEN] = 0.24,     [L_SEPTUM] = 1.0,
};

/* Cartilage: femoral head and acetabulum, each about 1.8 mm (a 3-4 mm joint line on T1). */
#define CART_HEAD  1.8
#define CART_ACET  1.8
#define ACET_PLATE 2.0 /* acetabular subchondral plate */

// ---------------------------------------------------------------------------------------------
// Small geometry

typedef struct Vec3 {
    double x, y, z;
} Vec3;

static Vec3 v3(double x, double y, double z)
{
    Vec3 r = {x, y, z};
    return r;
}
static Vec3 v_add(Vec3 a, Vec3 b)
{
    return v3(a.x + b.x, a.y + b.y, a.z + b.z);
}
static Vec3 v_sub(Vec3 a, Vec3 b)
{
    return v3(a.x - b.x, a.y - b.y, a.z - b.z);
}
static Vec3 v_mul(Vec3 a, double s)
{
    return v3(a.x * s, a.y * s, a.z * s);
}
static double v_dot(Vec3 a, Vec3 b)
{
    return a.x * b.x + a.y * b.y + a.z * b.z;
}
static Vec3 v_cross(Vec3 a, Vec3 b)
{
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static Vec3 v_unit(Vec3 a)
{
    double n = sqrt(v_dot(a, a));
    return n > 0 ? v_mul(a, 1.0 / n) : v3(0, 0, 1);
}
static double v_comp(Vec3 a, int j)
{
    return j == 0 ? a.x : j == 1 ? a.y : a.z;
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Hermite step of t from 0 to 1. */
static double smooth01(double t)
{
    t = clampd(t, 0, 1);
    return t * t * (3 - 2 * t);
}

static double deg(double d)
{
    return d * (M_PI / 180.0);
}

/* The pelvis frame (file comment): a point at (s*X, Y, Z) and a direction likewise. */
typedef struct Frame {
    Vec3 o, ex, ey, ez;
} Frame;

static Vec3 fr_dir(const Frame *f, double X, double Y, double Z)
{
    return v_add(v_add(v_mul(f->ex, X), v_mul(f->ey, Y)), v_mul(f->ez, Z));
}
static Vec3 fr_pt(const Frame *f, double X, double Y, double Z)
{
    return v_add(f->o, fr_dir(f, X, Y, Z));
}

/* An orthonormal triple whose third axis is `axis` and whose first lies as close as possible to
 * `near` (so elongated solids keep a known roll). */
static void axes_from(Vec3 axis, Vec3 near, Vec3 e[3])
{
    e[2] = v_unit(axis);
    Vec3 t = v_sub(near, v_mul(e[2], v_dot(near, e[2])));
    if (v_dot(t, t) < 1e-12)
        t = fabs(e[2].x) < 0.9 ? v3(1, 0, 0) : v3(0, 1, 0);
    e[0] = v_unit(v_sub(t, v_mul(e[2], v_dot(t, e[2]))));
    e[1] = v_cross(e[2], e[0]);
}

// ---------------------------------------------------------------------------------------------
// Solids and the primitives they become

/* A convex solid: an ellipsoid (semi-axes r along e) or a finite elliptic cylinder (radii r[0],
 * r[1] across, axis e[2], half-length r[2]), optionally cut by half-spaces cn.(p - c) <= cd. A
 * bone is painted from its solids twice: as given (cortex) and shrunk by its cortex (marrow). */
typedef struct Solid {
    int cyl;
    Vec3 c;
    Vec3 e[3];
    double r[3];
    int nclip;
    Vec3 cn[5];
    double cd[5];
} Solid;

static Solid solid_ellipsoid(Vec3 c, const Vec3 e[3], double r0, double r1, double r2)
{
    Solid s = {0};
    s.c = c;
    for (int k = 0; k < 3; k++)
        s.e[k] = e[k];
    s.r[0] = r0;
    s.r[1] = r1;
    s.r[2] = r2;
    return s;
}

static Solid solid_sphere(Vec3 c, double r)
{
    static const Vec3 id[3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    return solid_ellipsoid(c, id, r, r, r);
}

/* Cylinder from p0 to p1; radius ra across in the direction closest to `near`, rb across the
 * other way. */
static Solid solid_cylinder(Vec3 p0, Vec3 p1, double ra, double rb, Vec3 near)
{
    Solid s = {0};
    Vec3 d = v_sub(p1, p0);
    s.cyl = 1;
    s.c = v_mul(v_add(p0, p1), 0.5);
    axes_from(d, near, s.e);
    s.r[0] = ra;
    s.r[1] = rb;
    s.r[2] = 0.5 * sqrt(v_dot(d, d));
    return s;
}

/* Keeps the side of the plane through q that n points away from. */
static void solid_clip(Solid *s, Vec3 n, Vec3 q)
{
    assert(s->nclip < 5);
    if (s->nclip < 5) {
        s->cn[s->nclip] = v_unit(n);
        s->cd[s->nclip] = v_dot(s->cn[s->nclip], v_sub(q, s->c));
        s->nclip++;
    }
}

enum { PRIM_QUADRIC, PRIM_BODY, PRIM_GAP, PRIM_HEAD };

#define MAX_SLABS 6 /* a cylinder's own slab and five clips */

/* What a row painter needs: inside means d' A d <= 1 with d = p - c, within every slab
 * lo <= n.d <= hi; or a body or gap outline; or a femoral head. ylo..zhi bound it. */
typedef struct Prim {
    uint8_t kind;
    uint8_t label;
    uint16_t where; /* labels it may overwrite */
    int nslab;
    double c[3];
    double A[6]; /* xx xy xz yy yz zz */
    double sn[MAX_SLABS][3];
    double slo[MAX_SLABS];
    double shi[MAX_SLABS];
    double ylo, yhi, zlo, zhi;
    double q[4]; /* outline insets (body: lateral, anterior, posterior; gap: widen, raise) */
} Prim;

// ---------------------------------------------------------------------------------------------
// Femoral heads: the point classifier

/* One femoral head and its lesion, in the form the classifier wants. Collapse moves points of
 * the upper head straight down, z' - cz = k(x, y) (z - cz) with k = 1 - D/H, where D is the dip
 * (collapse_mm over the lesion's footprint, fading outside it) and H the height of the head's
 * surface above the centre at (x, y): the bone surface drops by exactly D, and everything in
 * the head (cortex, marrow, lesion) follows. The map keeps x and y, so a plane y = const cuts
 * the collapsed lesion exactly when it cuts the undeformed one. */
typedef struct HeadZone {
    Vec3 c;
    double R, Rm, Rz; /* bone, marrow (R - cortex), outer cartilage radius */
    int lesion;
    uint8_t lesion_label;
    Vec3 lc;
    double rin[3], rout[3]; /* necrotic segment; segment plus band */
    double collapse;
} HeadZone;

enum { HZ_OUT, HZ_VACATED, HZ_CART, HZ_CORTEX, HZ_MARROW, HZ_BAND, HZ_LESION };

static void head_setup(HeadZone *hz, const SynthHip *hip, int h)
{
    memset(hz, 0, sizeof *hz);
    hz->c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
    hz->R = clampd(hip->head_radius, 5, 60);
    double t = clampd(hip->cortex_mm, 0.5, hz->R / 3);
    hz->Rm = hz->R - t;
    hz->Rz = hz->R + CART_HEAD;
    const SynthLesion *l = &hip->lesion;
    if (!l->present)
        return;
    hz->lesion = 1;
    hz->lesion_label = h ? L_LESION1 : L_LESION0;
    hz->lc = v3(l->center[0], l->center[1], l->center[2]);
    double band = clampd(l->band_mm, 0, 20);
    for (int k = 0; k < 3; k++) {
        hz->rin[k] = clampd(l->radii[k], 1e-3, 100);
        hz->rout[k] = hz->rin[k] + band;
    }
    hz->collapse = clampd(l->collapse_mm, 0, 0.35 * hz->R);
}

/* k(x, y) of the collapse map (1: no collapse here). The dip is full over the middle of the
 * lesion's outer footprint and fades out by 1.25 times its radii; it also fades where the head's
 * surface gets low (near its equator), so k stays well above 0. */
static double head_k(const HeadZone *hz, double x, double y)
{
    if (hz->collapse <= 0)
        return 1;
    double fx = (x - hz->lc.x) / hz->rout[0], fy = (y - hz->lc.y) / hz->rout[1];
    double w = 1 - smooth01((sqrt(fx * fx + fy * fy) - 0.6) / 0.65);
    if (w <= 0)
        return 1;
    double dx = x - hz->c.x, dy = y - hz->c.y;
    double h2 = hz->R * hz->R - dx * dx - dy * dy;
    if (h2 <= 0)
        return 1;
    double H = sqrt(h2);
    double D = hz->collapse * w * smooth01((H - 0.3 * hz->R) / (0.3 * hz->R));
    double k = 1 - D / H;
    return k < 0.25 ? 0.25 : k;
}

/* Which part of head hz the (deformed) point is in. */
static int head_classify(const HeadZone *hz, double x, double y, double z)
{
    double dx = x - hz->c.x, dy = y - hz->c.y, dz = z - hz->c.z;
    double rz2 = hz->Rz * hz->Rz;
    if (dx * dx + dy * dy + dz * dz > rz2)
        return HZ_OUT;
    if (dz > 0 && hz->collapse > 0)
        dz /= head_k(hz, x, y);
    double r2 = dx * dx + dy * dy + dz * dz;
    if (r2 > rz2)
        return HZ_VACATED;
    if (r2 >= hz->R * hz->R)
        return HZ_CART;
    if (r2 >= hz->Rm * hz->Rm)
        return HZ_CORTEX;
    if (hz->lesion) {
        double u = (x - hz->lc.x) / hz->rout[0];
        double v = (y - hz->lc.y) / hz->rout[1];
        double w = (hz->c.z + dz - hz->lc.z) / hz->rout[2];
        if (u * u + v * v + w * w <= 1) {
            u = (x - hz->lc.x) / hz->rin[0];
            v = (y - hz->lc.y) / hz->rin[1];
            w = (hz->c.z + dz - hz->lc.z) / hz->rin[2];
            return u * u + v * v + w * w <= 1 ? HZ_LESION : HZ_BAND;
        }
    }
    return HZ_MARROW;
}

/* The label a head paints over `cur`. Its cartilage and cortex give way to the femoral neck
 * (already painted) where the neck joins, so no ring cuts across the neck. */
static uint8_t head_label(const HeadZone *hz, double x, double y, double z, uint8_t cur)
{
    switch (head_classify(hz, x, y, z)) {
    case HZ_VACATED: return L_FLUID;
    case HZ_CART: return cur == L_CORTEX || cur == L_MARROW ? cur : L_CARTILAGE;
    case HZ_CORTEX: return cur == L_MARROW ? cur : L_CORTEX;
    case HZ_MARROW: return L_MARROW;
    case HZ_BAND: return L_BAND;
    case HZ_LESION: return hz->lesion_label;
    default: return cur;
    }
}

/* Closest point to (u, v) on the ellipse (x/a)^2 + (z/b)^2 = 1, for (u, v) outside it: the
 * point is (a^2 u / (t + a^2), b^2 v / (t + b^2)) with t > 0 the root of a decreasing function,
 * found by bisection to the last bit (Eberly, "Distance from a point to an ellipse"). */
static void ellipse_closest(double a, double b, double u, double v, double *px, double *pz)
{
    double au = a * fabs(u), bv = b * fabs(v);
    double lo = 0, hi = sqrt(au * au + bv * bv) + 1;
    for (int it = 0; it < 200; it++) {
        double t = 0.5 * (lo + hi);
        if (t <= lo || t >= hi)
            break;
        double f1 = au / (t + a * a), f2 = bv / (t + b * b);
        if (f1 * f1 + f2 * f2 > 1)
            lo = t;
        else
            hi = t;
    }
    double t = 0.5 * (lo + hi);
    *px = a * a * u / (t + a * a);
    *pz = b * b * v / (t + b * b);
}

/* Whether the plane y cuts the lesion region of hz (the outer ellipsoid within the undeformed
 * marrow ball, the same sets head_classify uses); if so, a point of the cut (deformed, as the
 * image shows it) goes to *wit. In the plane the question is whether a disc (the marrow ball's
 * section) and an ellipse (the outer ellipsoid's) meet: they do when the disc centre is in the
 * ellipse, or the ellipse's closest point to it is nearer than the disc's radius. */
static int head_lesion_cut(const HeadZone *hz, double y, Vec3 *wit)
{
    if (!hz->lesion)
        return 0;
    double dy = y - hz->c.y;
    double rho2 = hz->Rm * hz->Rm - dy * dy;
    double ly = (y - hz->lc.y) / hz->rout[1];
    double s = 1 - ly * ly;
    if (rho2 <= 0 || s < 0)
        return 0;
    double ea = hz->rout[0] * sqrt(s), eb = hz->rout[2] * sqrt(s);
    double u = hz->c.x - hz->lc.x, v = hz->c.z - hz->lc.z;
    double wx, wz; /* the witness, relative to the ellipse centre */
    if (ea <= 0 || eb <= 0) {
        if (u * u + v * v >= rho2)
            return 0;
        wx = 0, wz = 0;
    } else if ((u / ea) * (u / ea) + (v / eb) * (v / eb) <= 1) {
        wx = u, wz = v;
    } else {
        double px, pz;
        ellipse_closest(ea, eb, u, v, &px, &pz);
        double d2 = (px - u) * (px - u) + (pz - v) * (pz - v);
        if (d2 >= rho2)
            return 0;
        /* Pull the boundary point a little towards the ellipse centre: still in the ellipse,
         * and nearer the disc than its radius. */
        double gap = sqrt(rho2) - sqrt(d2), len = sqrt(px * px + pz * pz);
        double eps = len > 0 ? fmin(1e-3, 0.5 * gap / len) : 0;
        wx = px * (1 - eps), wz = pz * (1 - eps);
    }
    if (wit) {
        double x = hz->lc.x + wx, zu = hz->lc.z + wz;
        double z = zu > hz->c.z ? hz->c.z + (zu - hz->c.z) * head_k(hz, x, y) : zu;
        *wit = v3(x, y, z);
    }
    return 1;
}

// ---------------------------------------------------------------------------------------------
// The scene: the ordered list of primitives of one anatomy

#define MAX_PRIMS 448

typedef struct Scene {
    Prim prim[MAX_PRIMS];
    int n;
    HeadZone head[2];
    double signal[L_COUNT];
    Frame pf; /* pelvis frame */
    /* body outline */
    double bw, bd_ant, bd_post, by, bz, bexp;
    double gap_k;
} Scene;

static Prim *scene_add(Scene *s, int kind, int label, unsigned where)
{
    assert(s->n < MAX_PRIMS);
    if (s->n >= MAX_PRIMS)
        return NULL; /* a bug in scene_build; the phantom loses a detail, nothing breaks */
    Prim *p = &s->prim[s->n++];
    memset(p, 0, sizeof *p);
    p->kind = (uint8_t)kind;
    p->label = (uint8_t)label;
    p->where = (uint16_t)where;
    p->ylo = p->zlo = -INFINITY;
    p->yhi = p->zhi = INFINITY;
    return p;
}

static void prim_slab(Prim *p, Vec3 n, double lo, double hi)
{
    assert(p->nslab < MAX_SLABS);
    if (p->nslab >= MAX_SLABS)
        return;
    p->sn[p->nslab][0] = n.x;
    p->sn[p->nslab][1] = n.y;
    p->sn[p->nslab][2] = n.z;
    p->slo[p->nslab] = lo;
    p->shi[p->nslab] = hi;
    p->nslab++;
}

/* A = sum over the axes of e_k e_k' / r_k^2 (the first n axes); returns the half extents of the
 * ellipsoid along y and z in ext (for an elliptic cylinder, of its cross-section). */
static void quadric_from_axes(const Vec3 *e, const double *r, int n, double A[6], double ext[3])
{
    memset(A, 0, 6 * sizeof *A);
    for (int k = 0; k < n; k++) {
        double w = 1.0 / (r[k] * r[k]);
        A[0] += w * e[k].x * e[k].x;
        A[1] += w * e[k].x * e[k].y;
        A[2] += w * e[k].x * e[k].z;
        A[3] += w * e[k].y * e[k].y;
        A[4] += w * e[k].y * e[k].z;
        A[5] += w * e[k].z * e[k].z;
    }
    for (int j = 0; j < 3; j++) {
        double e2 = 0;
        for (int k = 0; k < n; k++)
            e2 += r[k] * r[k] * v_comp(e[k], j) * v_comp(e[k], j);
        ext[j] = sqrt(e2);
    }
}

/* Adds solid so shrunk by inset (grown if negative) as one quadric primitive, its clipping
 * planes moved in by clip_inset. */
static void scene_solid_ex(Scene *s, const Solid *so, double inset, double clip_inset, int label,
                           unsigned where)
{
    double r[3] = {so->r[0] - inset, so->r[1] - inset, so->r[2] - inset};
    if (r[0] <= 0 || r[1] <= 0 || r[2] <= 0)
        return;
    Prim *p = scene_add(s, PRIM_QUADRIC, label, where);
    if (!p)
        return;
    p->c[0] = so->c.x;
    p->c[1] = so->c.y;
    p->c[2] = so->c.z;
    double ext[3];
    quadric_from_axes(so->e, r, so->cyl ? 2 : 3, p->A, ext);
    if (so->cyl) {
        /* A cylinder reaches along its axis as well as across it. */
        prim_slab(p, so->e[2], -r[2], r[2]);
        for (int j = 0; j < 3; j++)
            ext[j] += fabs(v_comp(so->e[2], j)) * r[2];
    }
    for (int k = 0; k < so->nclip; k++)
        prim_slab(p, so->cn[k], -INFINITY, so->cd[k] - clip_inset);
    p->ylo = so->c.y - ext[1], p->yhi = so->c.y + ext[1];
    p->zlo = so->c.z - ext[2], p->zhi = so->c.z + ext[2];
}

static void scene_solid(Scene *s, const Solid *so, double inset, int label, unsigned where)
{
    scene_solid_ex(s, so, inset, inset, label, where);
}

/* A thin fat plane between muscles: the solid's surface layer, `thick` deep, within muscle. */
static void scene_septum(Scene *s, const Solid *so, double thick)
{
    scene_solid_ex(s, so, 0, 0, L_SEPTUM, BIT(L_MUSCLE));
    scene_solid_ex(s, so, thick, 0, L_MUSCLE, BIT(L_SEPTUM));
}

/* A bone: all outer shapes as cortex, then all inner ones as marrow, so the parts of one bone
 * merge and cortex stays only on its outside. */
static void scene_bone(Scene *s, const Solid *so, const double *cortex, int n, int marrow)
{
    for (int i = 0; i < n; i++)
        scene_solid(s, &so[i], 0, L_CORTEX, WHERE_ALL & ~BIT(L_AIR));
    for (int i = 0; i < n; i++)
        scene_solid(s, &so[i], cortex[i], marrow, BIT(L_CORTEX));
}

// ---------------------------------------------------------------------------------------------
// Row spans

/* The interval [lo, hi] of u = x - c[0] where the line (., y, z) meets d' A d <= 1, d = p - c. */
static int quadric_interval(const double A[6], const double c[3], double y, double z, double *lo,
                            double *hi)
{
    double v = y - c[1], w = z - c[2];
    double a = A[0], b = 2 * (A[1] * v + A[2] * w);
    double k = A[3] * v * v + 2 * A[4] * v * w + A[5] * w * w - 1;
    if (a > 1e-300) {
        double disc = b * b - 4 * a * k;
        if (disc < 0)
            return 0;
        double sq = sqrt(disc);
        *lo = (-b - sq) / (2 * a);
        *hi = (-b + sq) / (2 * a);
        return 1;
    }
    *lo = -INFINITY, *hi = INFINITY; /* a cylinder along x */
    return k <= 0;
}

/* The interval of x where the line (., y, z) is inside quadric primitive p. */
static int quad_span(const Prim *p, double y, double z, double *x0, double *x1)
{
    double lo, hi;
    if (!quadric_interval(p->A, p->c, y, z, &lo, &hi))
        return 0;
    double v = y - p->c[1], w = z - p->c[2];
    for (int i = 0; i < p->nslab; i++) {
        const double *n = p->sn[i];
        double off = n[1] * v + n[2] * w;
        if (fabs(n[0]) > 1e-12) {
            double t0 = (p->slo[i] - off) / n[0], t1 = (p->shi[i] - off) / n[0];
            if (n[0] < 0) {
                double t = t0;
                t0 = t1;
                t1 = t;
            }
            lo = fmax(lo, t0);
            hi = fmin(hi, t1);
        } else if (off < p->slo[i] || off > p->shi[i]) {
            return 0;
        }
    }
    if (!(lo <= hi))
        return 0;
    *x0 = lo + p->c[0];
    *x1 = hi + p->c[0];
    return 1;
}

/* The body outline: a superellipse in each axial plane, widest at the greater trochanters and
 * narrowing to the waist above and the thighs below, deeper behind (buttocks) than in front. */
static int body_span(const Scene *s, const Prim *p, double y, double z, double *x0, double *x1)
{
    double zr = z - s->bz;
    double wf =
        zr >= -25 ? 1 - 0.14 * smooth01((zr + 25) / 190) : 1 - 0.08 * smooth01((-25 - zr) / 170);
    double hw = s->bw * wf - p->q[0];
    double d;
    if (y < s->by)
        d = s->bd_ant * (1 - 0.10 * smooth01((-40 - zr) / 150)) - p->q[1];
    else
        d = s->bd_post * (1 - 0.20 * smooth01((-50 - zr) / 150)) - p->q[2];
    if (hw <= 0 || d <= 0)
        return 0;
    double t = fabs(y - s->by) / d;
    if (t >= 1)
        return 0;
    double f = pow(1 - pow(t, s->bexp), 1 / s->bexp);
    *x0 = s->pf.o.x - hw * f;
    *x1 = s->pf.o.x + hw * f;
    return 1;
}

/* The gap between the thighs: below an apex that is the perineum in the middle, rises behind
 * into the gluteal cleft and a little in front; parabolic, narrower behind (buttocks touch). */
static int gap_span(const Scene *s, const Prim *p, double y, double z, double *x0, double *x1)
{
    double Y = y - s->pf.o.y;
    double apex =
        s->pf.o.z - 88 + 108 * smooth01((Y - 30) / 60) + 18 * smooth01((-Y - 30) / 40) + p->q[1];
    if (z >= apex)
        return 0;
    double k = s->gap_k * (1 - 0.75 * smooth01((Y - 30) / 60));
    double g = k * sqrt(apex - z) + p->q[0];
    if (g <= 0)
        return 0;
    *x0 = s->pf.o.x - g;
    *x1 = s->pf.o.x + g;
    return 1;
}

/* The first sample index i in [0, n] with x0 + i dx >= a (strict: > a), computed the way the
 * samples themselves are, so a one-sample row (tissue_at) and an image row agree exactly. */
static int first_at(double x0, double dx, int n, double a, int strict)
{
    double f = (a - x0) / dx;
    int i = !(f > 0) ? 0 : f >= n ? n : (int)ceil(f);
    if (strict) {
        while (i > 0 && x0 + (i - 1) * dx > a)
            i--;
        while (i < n && !(x0 + i * dx > a))
            i++;
    } else {
        while (i > 0 && x0 + (i - 1) * dx >= a)
            i--;
        while (i < n && x0 + i * dx < a)
            i++;
    }
    return i;
}

/* The primitives that a plane y = const can meet, in painting order: found once per plane, so
 * a row only tests them against its z. */
typedef struct PlaneList {
    double y;
    int n;
    uint16_t idx[MAX_PRIMS];
} PlaneList;

static void plane_list(const Scene *s, double y, PlaneList *pl)
{
    pl->y = y;
    pl->n = 0;
    for (int k = 0; k < s->n; k++)
        if (!(y < s->prim[k].ylo || y > s->prim[k].yhi))
            pl->idx[pl->n++] = (uint16_t)k;
}

/* Paints the labels of the n samples (x0 + i dx, pl->y, z), i < n. */
static void scene_row(const Scene *s, const PlaneList *pl, double z, double x0, double dx, int n,
                      uint8_t *lab)
{
    double y = pl->y;
    memset(lab, L_AIR, (size_t)n);
    for (int j = 0; j < pl->n; j++) {
        const Prim *p = &s->prim[pl->idx[j]];
        if (z < p->zlo || z > p->zhi)
            continue;
        double a, b;
        int hit;
        switch (p->kind) {
        case PRIM_QUADRIC: hit = quad_span(p, y, z, &a, &b); break;
        case PRIM_BODY: hit = body_span(s, p, y, z, &a, &b); break;
        case PRIM_GAP: hit = gap_span(s, p, y, z, &a, &b); break;
        default: hit = quad_span(p, y, z, &a, &b); break; /* PRIM_HEAD: its bounding sphere */
        }
        if (!hit)
            continue;
        int i0 = first_at(x0, dx, n, a, 0), i1 = first_at(x0, dx, n, b, 1);
        if (i0 >= i1)
            continue;
        if (p->kind == PRIM_HEAD) {
            const HeadZone *hz = &s->head[p->label];
            for (int i = i0; i < i1; i++)
                lab[i] = head_label(hz, x0 + i * dx, y, z, lab[i]);
        } else if (p->where == WHERE_ALL) {
            memset(lab + i0, p->label, (size_t)(i1 - i0));
        } else {
            for (int i = i0; i < i1; i++)
                if (p->where >> lab[i] & 1u)
                    lab[i] = p->label;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building the scene: soft tissue, pelvis, femora, heads

/* Skin to subcutaneous fat to the muscle envelope (fat thicker over the buttocks), and the gap
 * between the thighs with its own rim of fat. */
static void scene_body(Scene *s, const SynthAnatomy *a)
{
    double fat = clampd(a->fat_mm, 2, 80);
    Prim *p;
    scene_add(s, PRIM_BODY, L_FAT, WHERE_ALL);
    if ((p = scene_add(s, PRIM_BODY, L_MUSCLE, BIT(L_FAT)))) {
        p->q[0] = 1.1 * fat;
        p->q[1] = fat;
        p->q[2] = 1.4 * fat;
    }
    if ((p = scene_add(s, PRIM_GAP, L_FAT, BIT(L_MUSCLE)))) {
        p->q[0] = 0.7 * fat;
        p->q[1] = 0.6 * fat;
    }
    scene_add(s, PRIM_GAP, L_AIR, WHERE_ALL);
}

/* The proximal femur's axes: d down the shaft (leaning in 7 degrees, distal end medial), lat
 * across it laterally, u from the head centre along the neck (neck-shaft angle, anteversion),
 * K where the neck axis meets the shaft axis, one femoral offset (1.6 R) lateral of the head. */
typedef struct FemurAxes {
    Vec3 c, d, lat, u, K;
} FemurAxes;

static void femur_axes(const Frame *f, const SynthHip *hip, double sd, FemurAxes *fa)
{
    double R = hip->head_radius, beta = deg(7);
    double alpha = deg(180 - clampd(hip->neck_angle_deg, 100, 160)) - beta;
    double av = deg(clampd(hip->anteversion_deg, -10, 40));
    fa->c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
    fa->d = v_unit(fr_dir(f, -sd * sin(beta), 0, -cos(beta)));
    fa->lat = v_unit(fr_dir(f, sd * cos(beta), 0, -sin(beta)));
    fa->u = fr_dir(f, sd * sin(alpha) * cos(av), sin(av), -cos(alpha) * cos(av));
    fa->K = v_add(fa->c, v_mul(fa->u, 1.6 * R / fmax(0.2, sin(alpha) * cos(av))));
}

/* The opening of the acetabulum of a hip: its rim is the plane o.(p - c) = -0.2 R, o pointing
 * out of the cup laterally, down and a little forwards (inclination 50, anteversion 20 degrees),
 * which leaves a lateral centre-edge angle of about 30 degrees. */
static Vec3 acetabular_opening(const Frame *f, double sd)
{
    double incl = deg(50), av = deg(20);
    return fr_dir(f, sd * sin(incl) * cos(av), -sin(incl) * sin(av), -cos(incl));
}

#define ILIAC_CREST 100 /* height of the crest above the head centres, less the radius */

/* The iliac bowl of one side: a solid ellipsoid kept to its side, between the anterior spines
 * and the posterior ilium, inside the acetabular rim and below the crest (iliac_crest rounds
 * the cut); its inside (the iliac fossa) is carved out again by iliac_fossa. What stays is the
 * wing: thick above the acetabulum, thinning up to the crest, flaring out, and further out in
 * anterior slices than in posterior ones. */
static Solid iliac_outer(const Frame *f, const SynthHip *hip, double sd, double hx)
{
    Vec3 e[3] = {f->ex, f->ey, f->ez};
    double R = hip->head_radius;
    Vec3 c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
    Solid so = solid_ellipsoid(fr_pt(f, sd * (hx - 49), 12, 150), e, hx + 11, 88, 160);
    solid_clip(&so, fr_dir(f, -sd, 0, -0.15), fr_pt(f, sd * (hx - R - 10), 0, 0));
    solid_clip(&so, v_mul(f->ey, -1), fr_pt(f, 0, -55, 0));
    solid_clip(&so, f->ey, fr_pt(f, 0, 85, 0));
    Vec3 o = acetabular_opening(f, sd);
    solid_clip(&so, o, v_add(c, v_mul(o, -0.2 * R)));
    solid_clip(&so, f->ez, fr_pt(f, 0, 0, R + ILIAC_CREST));
    return so;
}

/* The iliac crest: short segments along the top of the wing, rounding and thickening it. Each
 * sits midway between the bowl's outer and fossa surfaces (iliac_outer, iliac_fossa) at the
 * crest's height; returns how many it wrote. */
static int iliac_crest(const Frame *f, double sd, double hx, double R, Solid *out)
{
    Vec3 e[3] = {f->ex, f->ey, f->ez};
    double Z = R + ILIAC_CREST;
    int n = 0;
    for (double Y = -45; Y <= 75; Y += 20) {
        double qo = 1 - ((Y - 12) / 88) * ((Y - 12) / 88) - ((Z - 150) / 160) * ((Z - 150) / 160);
        double qi = 1 - ((Y - 5) / 80) * ((Y - 5) / 80) - ((Z - 175) / 150) * ((Z - 175) / 150);
        if (qo <= 0)
            continue;
        double xo = hx - 49 + (hx + 11) * sqrt(qo);
        double xi = qi > 0 ? hx - 59 + (hx + 6) * sqrt(qi) : xo - 20;
        if (xi > xo - 8)
            xi = xo - 8;
        out[n++] =
            solid_ellipsoid(fr_pt(f, sd * 0.5 * (xo + xi), Y, Z), e, 0.5 * (xo - xi) + 1, 14, 7);
    }
    return n;
}

/* The iliac fossa, carved out of the bowl (medial to it the psoas, behind it the sacrum stay). */
static Solid iliac_fossa(const Frame *f, double sd, double hx, double R)
{
    Vec3 e[3] = {f->ex, f->ey, f->ez};
    Solid so = solid_ellipsoid(fr_pt(f, sd * (hx - 59), 5, 175), e, hx + 6, 80, 150);
    solid_clip(&so, fr_dir(f, -sd, 0.4, 0), fr_pt(f, sd * 30, 20, 0));
    solid_clip(&so, f->ey, fr_pt(f, 0, 70, 0));
    /* Its floor, the pelvic brim, slopes down towards the front and the midline. */
    solid_clip(&so, fr_dir(f, sd * 0.25, 0.3, -1), fr_pt(f, sd * (hx - 30), 0, R + 24));
    return so;
}

/* Fat planes between muscle groups, which give a T1 image its anatomy: two between the gluteal
 * muscles, following the wing, and one medial to the femoral shaft (vastus | adductors). */
static void scene_septa(Scene *s, const SynthAnatomy *a, double hx)
{
    const Frame *f = &s->pf;
    for (int h = 0; h < 2; h++) {
        const SynthHip *hip = &a->hip[h];
        double sd = h ? 1 : -1, R = hip->head_radius;
        for (int k = 0; k < 2; k++) {
            Solid so = iliac_outer(f, hip, sd, hx);
            so.nclip = 0;
            for (int j = 0; j < 3; j++)
                so.r[j] += k ? 30 : 13;
            solid_clip(&so, fr_dir(f, -sd, 0, 0), fr_pt(f, sd * (hx - 10), 0, 0));
            solid_clip(&so, v_mul(f->ez, -1),
                       v_add(fr_pt(f, 0, 0, 0), fr_dir(f, 0, 0, k ? -5 : 8)));
            solid_clip(&so, f->ez, fr_pt(f, 0, 0, R + 118));
            solid_clip(&so, v_mul(f->ey, -1), fr_pt(f, 0, -50, 0));
            scene_septum(s, &so, k ? 2.0 : 1.6);
        }
        FemurAxes fa;
        femur_axes(f, hip, sd, &fa);
        /* Short fat streaks along the fibres (marbling): gluteal ones up and out, thigh ones
         * along the shaft. */
        Philox rng;
        philox_init(&rng, a->detail_seed, PHILOX_SYNTH, 0x73747265616b00ull + (uint64_t)h);
        for (int i = 0; i < 16; i++) {
            int thigh = i & 1;
            Vec3 p = thigh ? v_add(fa.K, v_add(v_mul(fa.d, 40 + 150 * philox_uniform(&rng)),
                                               v_mul(fa.lat, 45 * (2 * philox_uniform(&rng) - 1))))
                           : v_add(fa.c, fr_dir(f, sd * (15 + 45 * philox_uniform(&rng)), 0,
                                                30 + 70 * philox_uniform(&rng)));
            p = v_add(p, v_mul(f->ey, 50 * (2 * philox_uniform(&rng) - 1)));
            Vec3 dir = thigh ? fa.d : fr_dir(f, sd * 0.5, 0, 1);
            dir = v_add(dir, v3(0.15 * philox_normal(&rng), 0.15 * philox_normal(&rng),
                                0.15 * philox_normal(&rng)));
            Vec3 es[3];
            axes_from(dir, f->ey, es);
            Solid st = solid_ellipsoid(p, es, 0.8 + 0.5 * philox_uniform(&rng), 3,
                                       12 + 18 * philox_uniform(&rng));
            scene_solid(s, &st, 0, L_SEPTUM, BIT(L_MUSCLE));
        }
        Vec3 ep[3] = {fa.lat, f->ey, fa.d};
        Solid so = solid_ellipsoid(v_add(fa.K, v_add(v_mul(fa.d, 150), v_mul(fa.lat, -27))), ep,
                                   0.9, 26, 110);
        scene_solid(s, &so, 0, L_SEPTUM, BIT(L_MUSCLE));
    }
}

static void scene_pelvis(Scene *s, const SynthAnatomy *a, double hx)
{
    const Frame *f = &s->pf;
    Vec3 e[3] = {f->ex, f->ey, f->ez};
    Solid so[20];
    double ct[20];
    int n = 0;
    for (int h = 0; h < 2; h++) {
        const SynthHip *hip = &a->hip[h];
        double sd = h ? 1 : -1, R = hip->head_radius;
        Vec3 c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
        /* The acetabular block: bone around the head, with the medial wall (quadrilateral
         * plate) towards the pelvic cavity, open below its rim. */
        Vec3 o = acetabular_opening(f, sd);
        so[n] = solid_ellipsoid(v_add(c, fr_dir(f, -sd * 3, 2, 6)), e, R + 14, R + 14, R + 15);
        solid_clip(&so[n], o, v_add(c, v_mul(o, -0.2 * R)));
        ct[n++] = 2.2;
        so[n] = iliac_outer(f, hip, sd, hx);
        ct[n++] = 1.8;
        /* Superior pubic ramus to the pubic body at the symphysis. */
        so[n] = solid_cylinder(v_add(c, fr_dir(f, -sd * 10, -14, -8)), fr_pt(f, sd * 15, -44, -28),
                               9, 8, f->ez);
        ct[n++] = 1.8;
        Vec3 ei[3];
        axes_from(fr_dir(f, sd * 0.2, -0.2, 1), f->ex, ei);
        so[n] = solid_ellipsoid(fr_pt(f, sd * 16, -44, -33), ei, 12, 11, 20);
        ct[n++] = 1.8;
        /* Ischium down to the tuberosity, and the ischiopubic ramus forward to the pubis. */
        so[n] = solid_cylinder(v_add(c, fr_dir(f, -sd * 10, 16, -10)),
                               fr_pt(f, sd * (hx - 36), 32, -58), 13, 12, f->ex);
        ct[n++] = 1.8;
        so[n] = solid_ellipsoid(fr_pt(f, sd * (hx - 36), 34, -63), e, 15, 17, 13);
        ct[n++] = 1.8;
        so[n] = solid_cylinder(fr_pt(f, sd * (hx - 38), 28, -66), fr_pt(f, sd * 15, -40, -44), 6, 6,
                               f->ez);
        ct[n++] = 1.5;
    }
    /* Sacrum (sloping back and down) and the two lowest lumbar bodies. */
    Vec3 es[3];
    axes_from(fr_dir(f, 0, -0.45, 1), f->ex, es);
    so[n] = solid_ellipsoid(fr_pt(f, 0, 82, 55), es, 48, 18, 62);
    ct[n++] = 1.8;
    so[n] = solid_ellipsoid(fr_pt(f, 0, 52, 138), e, 26, 18, 13);
    ct[n++] = 1.5;
    so[n] = solid_ellipsoid(fr_pt(f, 0, 48, 172), e, 25, 18, 13);
    ct[n++] = 1.5;
    scene_bone(s, so, ct, n, L_PMARROW);

    for (int h = 0; h < 2; h++) {
        const SynthHip *hip = &a->hip[h];
        double sd = h ? 1 : -1, R = hip->head_radius;
        Vec3 c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
        /* The iliac fossa: a cortical plate, then the iliacus muscle in place of bone. */
        Solid fo = iliac_fossa(f, sd, hx, R);
        scene_solid_ex(s, &fo, -1.6, 0, L_CORTEX, BIT(L_PMARROW));
        scene_solid_ex(s, &fo, 0, 0, L_MUSCLE, BIT(L_CORTEX) | BIT(L_PMARROW));
        /* The crest after the carving, so the fossa does not cut it; its cortex only outside
         * the wing's marrow, its marrow over the wing's flat top. */
        Solid cr[8];
        int ncr = iliac_crest(f, sd, hx, R, cr);
        for (int i = 0; i < ncr; i++)
            scene_solid(s, &cr[i], 0, L_CORTEX, WHERE_ALL & ~BIT(L_AIR) & ~BIT(L_PMARROW));
        for (int i = 0; i < ncr; i++)
            scene_solid(s, &cr[i], 1.6, L_PMARROW, BIT(L_CORTEX));
        /* The joint: a subchondral plate lining the acetabulum, its cartilage cut out of
         * pelvic bone only, and the fat pad (pulvinar) of the acetabular fossa. */
        Solid j = solid_sphere(c, R + CART_HEAD + CART_ACET + ACET_PLATE);
        scene_solid(s, &j, 0, L_CORTEX, BIT(L_PMARROW));
        scene_solid(s, &j, ACET_PLATE, L_CARTILAGE, BIT(L_CORTEX) | BIT(L_PMARROW));
        j = solid_ellipsoid(v_add(c, fr_dir(f, -sd * (R + 3.2), 2, -0.1 * R)), e, 3.5, 9, 8);
        scene_solid(s, &j, 0, L_FAT, BIT(L_CARTILAGE) | BIT(L_CORTEX) | BIT(L_PMARROW));
    }
}

/* Soft tissue inside and around the pelvis, painted after the bones and only over soft tissue:
 * visceral fat, psoas, bowel, rectum, bladder, the femoral vessels, fat along nerves. */
static void scene_viscera(Scene *s, const SynthAnatomy *a, double hx)
{
    const Frame *f = &s->pf;
    double R = 0.5 * (a->hip[0].head_radius + a->hip[1].head_radius);
    Vec3 e[3] = {f->ex, f->ey, f->ez};
    /* Visceral fat of the lesser pelvis (between the obturator internus muscles, down to the
     * levator funnel) and of the false pelvis (medial to the iliacus). */
    Solid so = solid_ellipsoid(fr_pt(f, 0, 2, -4), e, hx - R - 19, 40, 38);
    scene_solid(s, &so, 0, L_FAT, BIT(L_MUSCLE));
    Solid abdomen = solid_ellipsoid(fr_pt(f, 0, -8, 130), e, hx - 10, 72, 105);
    scene_solid(s, &abdomen, 0, L_FAT, BIT(L_MUSCLE));
    for (int h = 0; h < 2; h++) {
        const SynthHip *hip = &a->hip[h];
        double sd = h ? 1 : -1;
        Vec3 c = v3(hip->head_center[0], hip->head_center[1], hip->head_center[2]);
        Vec3 ei[3];
        /* Ischioanal fossa: fat under the levator, medial to the ischial tuberosity. */
        axes_from(fr_dir(f, sd * 0.35, 0, 1), f->ex, ei);
        so = solid_ellipsoid(fr_pt(f, sd * 30, 40, -64), ei, 13, 26, 20);
        scene_solid(s, &so, 0, L_FAT, BIT(L_MUSCLE));
        /* Femoral triangle: fat in front of the hip around the femoral vessels. */
        Vec3 md = fr_dir(f, -sd, 0, 0);
        Vec3 t0 = v_add(c, fr_dir(f, -sd * 14, -44, 10));
        Vec3 t1 = v_add(c, fr_dir(f, -sd * 22, -40, -110));
        Vec3 et[3];
        axes_from(v_sub(t1, t0), md, et);
        so = solid_ellipsoid(v_mul(v_add(t0, t1), 0.5), et, 15, 11, 75);
        scene_solid(s, &so, 0, L_FAT, BIT(L_MUSCLE));
        /* Fat around the sciatic nerve behind the hip. */
        so = solid_cylinder(v_add(c, fr_dir(f, -sd * 12, 40, 30)),
                            v_add(c, fr_dir(f, -sd * 2, 46, -170)), 5, 5, md);
        scene_solid(s, &so, 0, L_FAT, BIT(L_MUSCLE));
        /* Psoas down the pelvic brim into the iliopsoas in front of the hip. */
        so = solid_cylinder(fr_pt(f, sd * 36, 38, 240), fr_pt(f, sd * (hx - 30), -14, 30), 17, 14,
                            f->ex);
        scene_solid(s, &so, 0, L_MUSCLE, BIT(L_FAT) | BIT(L_MUSCLE));
        /* Femoral artery and vein, and the external iliac vessels above them. */
        Vec3 top = v_add(c, fr_dir(f, -sd * 40, -22, 95));
        for (int v = 0; v < 2; v++) {
            Vec3 off = fr_dir(f, -sd * (v ? 9 : 0), 0, 0);
            double rv = v ? 5.5 : 4.2;
            so = solid_cylinder(v_add(t0, off), v_add(t1, off), rv, rv, md);
            scene_solid(s, &so, 0, L_VESSEL, BIT(L_FAT) | BIT(L_MUSCLE));
            so = solid_cylinder(v_add(top, off), v_add(t0, off), rv, rv, md);
            scene_solid(s, &so, 0, L_VESSEL, BIT(L_FAT) | BIT(L_MUSCLE));
        }
    }
    /* Bowel loops packed in the false pelvis on a jittered grid, each a thick tube of random
     * direction, most with contents in their lumen; they keep the fat they are painted over, so
     * mesenteric fat stays between them. Drawn from detail_seed: the same anatomy, the same
     * bowel. */
    Philox rng;
    philox_init(&rng, a->detail_seed, PHILOX_SYNTH, 0x616e61746f6d79ull /* "anatomy" */);
    for (double Z = 50; Z < 215; Z += 30) {
        for (double Y = -70; Y < 40; Y += 28) {
            for (double X = -(hx - 22); X <= hx - 22; X += 28) {
                Vec3 p = fr_pt(f, X + 8 * philox_normal(&rng), Y + 8 * philox_normal(&rng),
                               Z + 8 * philox_normal(&rng));
                double r = 12 + 6 * philox_uniform(&rng);
                Vec3 ax = v3(philox_normal(&rng), philox_normal(&rng), philox_normal(&rng));
                double lumen = philox_uniform(&rng);
                Vec3 d = v_sub(p, abdomen.c);
                double q = (v_dot(d, f->ex) / abdomen.r[0]) * (v_dot(d, f->ex) / abdomen.r[0]) +
                           (v_dot(d, f->ey) / abdomen.r[1]) * (v_dot(d, f->ey) / abdomen.r[1]) +
                           (v_dot(d, f->ez) / abdomen.r[2]) * (v_dot(d, f->ez) / abdomen.r[2]);
                if (q > 1.1)
                    continue;
                Vec3 eb[3];
                axes_from(ax, f->ex, eb);
                so = solid_ellipsoid(p, eb, r, 0.85 * r, 2.2 * r);
                scene_solid(s, &so, 0, L_BOWEL, BIT(L_FAT));
                if (lumen > 0.3)
                    scene_solid(s, &so, r * (0.35 + 0.3 * lumen), L_LUMEN, BIT(L_BOWEL));
            }
        }
    }
    /* Rectum down the back of the pelvis. */
    so = solid_cylinder(fr_pt(f, 0, 48, 80), fr_pt(f, 0, 28, -50), 14, 12, f->ex);
    scene_solid(s, &so, 0, L_BOWEL, BIT(L_FAT) | BIT(L_MUSCLE));
    scene_solid(s, &so, 5, L_LUMEN, BIT(L_BOWEL));
    /* Bladder on the pelvic floor behind the symphysis, with a thin wall. */
    double bx = a->bladder[0], by = a->bladder[1], bz = a->bladder[2];
    if (bx > 1 && by > 1 && bz > 1) {
        so = solid_ellipsoid(fr_pt(f, 0, -14, -24 + bz), e, bx + 2.5, by + 2.5, bz + 2.5);
        /* Flattened against the obturator internus on either side, never into it. */
        double wall = hx - R - 19;
        solid_clip(&so, f->ex, fr_pt(f, wall, 0, 0));
        solid_clip(&so, v_mul(f->ex, -1), fr_pt(f, -wall, 0, 0));
        /* The wall is painted as bowel (a similar signal); the urine only inside it. */
        scene_solid_ex(s, &so, 0, 0, L_BOWEL,
                       BIT(L_FAT) | BIT(L_BOWEL) | BIT(L_LUMEN) | BIT(L_MUSCLE));
        scene_solid_ex(s, &so, 2.5, 2.5, L_FLUID, BIT(L_BOWEL));
    }
}

/* The proximal femur below the head: neck, intertrochanteric block, greater and lesser
 * trochanters, shaft; its head is painted by the head classifier. */
static void scene_femur(Scene *s, const SynthAnatomy *a, int h)
{
    const SynthHip *hip = &a->hip[h];
    double R = hip->head_radius;
    FemurAxes fa;
    femur_axes(&s->pf, hip, h ? 1 : -1, &fa);
    Vec3 y = s->pf.ey, d = fa.d, lat = fa.lat, K = fa.K;
    Vec3 ed[3] = {lat, y, d};
    double nr = hip->neck_radius > 0 ? hip->neck_radius : 0.68 * R;
    double rs = 0.6 * R; /* shaft */
    Solid so[5];
    double ct[5];
    /* Neck, into the trochanteric block. */
    so[0] = solid_cylinder(fa.c, v_add(K, v_mul(fa.u, 6)), nr, 0.85 * nr, s->pf.ez);
    ct[0] = 2.2;
    /* Trochanteric block: from the greater trochanter's lateral face to the calcar, tapering
     * into the shaft below the lesser trochanter. */
    so[1] = solid_ellipsoid(v_add(K, v_add(v_mul(d, 10), v_mul(lat, 3))), ed, rs + 6, rs + 4, 42);
    ct[1] = 1.6;
    /* Greater trochanter, rising lateral to the neck to about the head centre's height. */
    so[2] = solid_ellipsoid(v_add(v_add(K, v_mul(lat, 12)), v_add(v_mul(d, -20), v_mul(y, 5))), ed,
                            12, 18, 25);
    ct[2] = 1.5;
    /* Lesser trochanter, behind and medial. */
    so[3] = solid_ellipsoid(v_add(v_add(K, v_mul(d, 44)), v_add(v_mul(lat, -rs), v_mul(y, 7))), ed,
                            8, 8, 11);
    ct[3] = 1.5;
    so[4] = solid_cylinder(v_add(K, v_mul(d, 20)), v_add(K, v_mul(d, 420)), rs, rs, lat);
    ct[4] = 0.23 * R;
    scene_bone(s, so, ct, 5, L_MARROW);
}

static void scene_build(Scene *s, const SynthAnatomy *a)
{
    s->n = 0;
    memcpy(s->signal, label_signal, sizeof s->signal);
    /* synth.lesion_contrast: lesion and band signals move towards marrow as it falls. */
    double contrast = clampd(a->lesion_contrast, 0, 1);
    for (int h = 0; h < 2; h++) {
        head_setup(&s->head[h], &a->hip[h], h);
        double in = clampd(a->hip[h].lesion.interior, 0, 1.2);
        if (a->hip[h].lesion.present)
            s->signal[h ? L_LESION1 : L_LESION0] = SIG_MARROW * (1 - contrast * (1 - in));
    }
    s->signal[L_BAND] = SIG_MARROW - contrast * (SIG_MARROW - label_signal[L_BAND]);
    /* Pelvis frame: origin between the heads, turned by the tilt about y. */
    double tilt = deg(clampd(a->pelvis_tilt_deg, -20, 20));
    s->pf.o = v3(0.5 * (a->hip[0].head_center[0] + a->hip[1].head_center[0]),
                 0.5 * (a->hip[0].head_center[1] + a->hip[1].head_center[1]),
                 0.5 * (a->hip[0].head_center[2] + a->hip[1].head_center[2]));
    s->pf.ex = v3(cos(tilt), 0, sin(tilt));
    s->pf.ey = v3(0, 1, 0);
    s->pf.ez = v3(-sin(tilt), 0, cos(tilt));
    s->bw = clampd(a->body_half_width, 60, 300);
    double bd = clampd(a->body_half_depth, 50, 250);
    s->bd_ant = 0.88 * bd;
    s->bd_post = 1.12 * bd;
    s->by = s->pf.o.y + 12;
    s->bz = s->pf.o.z;
    s->bexp = 2.4;
    s->gap_k = clampd(1.6 - 0.025 * a->fat_mm, 0.5, 1.6);
    double dx = a->hip[1].head_center[0] - a->hip[0].head_center[0];
    double dz = a->hip[1].head_center[2] - a->hip[0].head_center[2];
    double hx = clampd(0.5 * sqrt(dx * dx + dz * dz), 50, 150);

    /* The order is the anatomy: each layer is painted over the ones it may replace. */
    scene_body(s, a);
    scene_septa(s, a, hx);
    scene_pelvis(s, a, hx);
    scene_viscera(s, a, hx);
    for (int h = 0; h < 2; h++)
        scene_femur(s, a, h);
    for (int h = 0; h < 2; h++) {
        /* The head primitive's label is its hip (scene_row looks the head up by it). */
        Prim *p = scene_add(s, PRIM_HEAD, h, WHERE_ALL);
        if (!p)
            continue;
        const HeadZone *hz = &s->head[h];
        p->c[0] = hz->c.x, p->c[1] = hz->c.y, p->c[2] = hz->c.z;
        p->A[0] = p->A[3] = p->A[5] = 1 / (hz->Rz * hz->Rz);
        p->ylo = hz->c.y - hz->Rz, p->yhi = hz->c.y + hz->Rz;
        p->zlo = hz->c.z - hz->Rz, p->zhi = hz->c.z + hz->Rz;
    }
}

// ---------------------------------------------------------------------------------------------
// Public: drawing an anatomy, probing it

void anatomy_draw(SynthAnatomy *a, Philox *rng)
{
    memset(a, 0, sizeof *a);
    double size = clampd(1 + 0.045 * philox_normal(rng), 0.9, 1.1);
    double hx = clampd(89 * size + 1.5 * philox_normal(rng), 85, 95);
    double tilt = clampd(1.5 * philox_normal(rng), -4, 4);
    double mid[3] = {1.5 * philox_normal(rng), 2 * philox_normal(rng), 1.5 * philox_normal(rng)};
    double radius = 23.5 * size + 0.7 * philox_normal(rng);
    double neck = clampd(129 + 4 * philox_normal(rng), 122, 138);
    double antev = clampd(5 + 3 * philox_normal(rng), 0, 12);
    double cortex = clampd(1.8 + 0.25 * philox_normal(rng), 1.2, 2.6);
    for (int h = 0; h < 2; h++) {
        SynthHip *hip = &a->hip[h];
        double sd = h ? 1 : -1;
        double dx = hx + 0.8 * philox_normal(rng); /* slight asymmetry */
        hip->head_center[0] = mid[0] + sd * dx * cos(deg(tilt));
        hip->head_center[1] = mid[1] + 0.8 * philox_normal(rng);
        hip->head_center[2] = mid[2] + sd * dx * sin(deg(tilt));
        hip->head_radius = clampd(radius + 0.35 * philox_normal(rng), 21, 26);
        hip->neck_angle_deg = clampd(neck + 1.2 * philox_normal(rng), 120, 140);
        hip->neck_radius = hip->head_radius * clampd(0.68 + 0.025 * philox_normal(rng), 0.6, 0.76);
        hip->cortex_mm = clampd(cortex + 0.1 * philox_normal(rng), 1.2, 2.6);
        hip->anteversion_deg = clampd(antev + 1.5 * philox_normal(rng), 0, 15);
    }
    a->pelvis_tilt_deg = tilt;
    a->fat_mm = clampd(18 * exp(0.35 * philox_normal(rng)), 7, 38);
    a->body_half_width = hx + 63 * size + 6 + 0.85 * a->fat_mm + 2 * philox_normal(rng);
    a->body_half_depth = 100 * size + 0.9 * a->fat_mm + 4 * philox_normal(rng);
    double fill = philox_uniform(rng);
    a->bladder[0] = 32 + 16 * fill + 2 * philox_normal(rng);
    a->bladder[1] = 26 + 14 * fill + 2 * philox_normal(rng);
    a->bladder[2] = 18 + 22 * fill + 2 * philox_normal(rng);
    a->detail_seed = philox_u64(rng);
    a->lesion_contrast = 1.0;
}

void anatomy_default_slice(const SynthAnatomy *a, int rows, int columns, double y_mm,
                           double thickness_mm, SynthSlice *s)
{
    double fov = clampd(2 * a->body_half_width + 30, 320, 400);
    double sp = fov / (columns > 0 ? columns : 1);
    double cx = 0.5 * (a->hip[0].head_center[0] + a->hip[1].head_center[0]);
    double cz = 0.5 * (a->hip[0].head_center[2] + a->hip[1].head_center[2]) - 10;
    memset(s, 0, sizeof *s);
    s->rows = rows;
    s->columns = columns;
    s->spacing[0] = sp;
    s->spacing[1] = sp;
    s->position[0] = cx - 0.5 * sp * (columns - 1);
    s->position[1] = y_mm;
    s->position[2] = cz + 0.5 * sp * (rows - 1);
    s->thickness = thickness_mm;
}

/* Whether two anatomies paint the same phantom: every field, bit for bit (padding ignored).
 * Checklist: a field added to SynthAnatomy, SynthHip or SynthLesion goes here too. */
static int same_bits(const void *a, const void *b, size_t n)
{
    return memcmp(a, b, n) == 0;
}
#define SAME(f) same_bits(&a->f, &b->f, sizeof a->f)

static int anatomy_same(const SynthAnatomy *a, const SynthAnatomy *b)
{
    for (int h = 0; h < 2; h++) {
        if (!SAME(hip[h].head_center) || !SAME(hip[h].head_radius) ||
            !SAME(hip[h].neck_angle_deg) || !SAME(hip[h].neck_radius) || !SAME(hip[h].cortex_mm) ||
            !SAME(hip[h].anteversion_deg) || !SAME(hip[h].lesion.present) ||
            !SAME(hip[h].lesion.center) || !SAME(hip[h].lesion.radii) ||
            !SAME(hip[h].lesion.band_mm) || !SAME(hip[h].lesion.interior) ||
            !SAME(hip[h].lesion.collapse_mm))
            return 0;
    }
    return SAME(body_half_width) && SAME(body_half_depth) && SAME(fat_mm) &&
           SAME(pelvis_tilt_deg) && SAME(bladder) && SAME(detail_seed) && SAME(lesion_contrast);
}
#undef SAME

/* The label at p, from a per-thread scene that is rebuilt only when the anatomy changes, so
 * probing many points of one anatomy costs a row of one sample each. */
static uint8_t label_at(const SynthAnatomy *a, const double p[3], double *signal)
{
    static _Thread_local Scene s; /* ~150 KB: kept off the stack of the caller's thread */
    static _Thread_local SynthAnatomy built;
    static _Thread_local int valid;
    static _Thread_local PlaneList pl;
    if (!valid || !anatomy_same(a, &built)) {
        scene_build(&s, a);
        built = *a;
        valid = 1;
        pl.n = -1;
    }
    if (pl.n < 0 || !same_bits(&pl.y, &p[1], sizeof pl.y))
        plane_list(&s, p[1], &pl);
    uint8_t l;
    scene_row(&s, &pl, p[2], p[0], 1.0, 1, &l);
    if (signal)
        *signal = s.signal[l];
    return l;
}

SynthTissue anatomy_tissue_at(const SynthAnatomy *a, const double p[3])
{
    return (SynthTissue)label_tissue[label_at(a, p, NULL)];
}

double anatomy_signal_at(const SynthAnatomy *a, const double p[3])
{
    double v;
    label_at(a, p, &v);
    return v;
}

double anatomy_tissue_signal(SynthTissue t)
{
    return (unsigned)t < TISSUE_COUNT ? label_signal[t] : 0.0;
}

int anatomy_plane_cuts_lesion(const SynthAnatomy *a, int h, double y_mm)
{
    if (h < 0 || h > 1)
        return 0;
    HeadZone hz;
    head_setup(&hz, &a->hip[h], h);
    return head_lesion_cut(&hz, y_mm, NULL);
}

int anatomy_plane_cuts_head(const SynthAnatomy *a, int h, double y_mm)
{
    if (h < 0 || h > 1)
        return 0;
    return fabs(y_mm - a->hip[h].head_center[1]) < a->hip[h].head_radius;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/* The bias field: a normalized low-order polynomial of world position (per 200 mm, clamped),
 * its coefficients drawn once per stack. */
typedef struct Bias {
    double amp;
    double k[9];
} Bias;

static void bias_draw(Bias *b, double amplitude, uint64_t seed, uint64_t noise_index)
{
    Philox rng;
    uint64_t stack = noise_index & ~(((uint64_t)1 << ANATOMY_STACK_BITS) - 1);
    philox_init(&rng, seed, PHILOX_SYNTH, stack);
    /* Start far down the stream: block 0 onwards is the noise of the stack's first slice. */
    rng.ctr[0] = 0x80000000u;
    double sum = 0;
    for (int i = 0; i < 9; i++) {
        b->k[i] = philox_normal(&rng);
        sum += fabs(b->k[i]);
    }
    b->amp = amplitude > 0 && sum > 0 ? amplitude / sum : 0;
}

/* The field along a row (y, z fixed) is a quadratic in X = clamp(x / 200): 1 + q0 + q1 X + q2 X^2,
 * with g = k0 X + k1 Y + k2 Z + k3 XZ + k4 XY + k5 YZ + k6 (2X^2 - 1) + k7 (2Z^2 - 1) +
 * k8 (2Y^2 - 1), |g| <= 1 since sum |k| = 1 and every term is within [-1, 1]. */
static void bias_row(const Bias *b, double y, double z, double q[3])
{
    double Y = clampd(y / 200, -1, 1), Z = clampd(z / 200, -1, 1);
    const double *k = b->k;
    q[0] = b->amp * (k[1] * Y + k[2] * Z + k[5] * Y * Z - k[6] + k[7] * (2 * Z * Z - 1) +
                     k[8] * (2 * Y * Y - 1));
    q[1] = b->amp * (k[0] + k[3] * Z + k[4] * Y);
    q[2] = b->amp * 2 * k[6];
}

/* Box-Muller from two words of the stream, in plain float arithmetic: as fast as libm's logf
 * and sincosf, and unlike them the same bytes with every libm version. ln u from the exponent and
 * the series 2 atanh t in the mantissa (t <= 1/3, error < 2e-6); sin and cos of a quarter turn by
 * Taylor series to x^9 and x^10 (error < 4e-6), the quadrant from the word's top two bits. */
static void normal_pair(uint32_t w1, uint32_t w2, float *n1, float *n2)
{
    float u = ((float)(w1 >> 8) + 0.5f) * 0x1.0p-24f; /* (0, 1) */
    uint32_t bits;
    memcpy(&bits, &u, sizeof bits);
    int e = (int)((bits >> 23) & 255) - 127;
    bits = (bits & 0x007fffffu) | 0x3f800000u;
    float m;
    memcpy(&m, &bits, sizeof m);
    float t = (m - 1) / (m + 1), t2 = t * t;
    float ln = (float)e * 0.693147181f +
               2 * t * (1 + t2 * (1.0f / 3 + t2 * (1.0f / 5 + t2 * (1.0f / 7 + t2 * (1.0f / 9)))));
    float rad = sqrtf(-2 * ln);
    float x = (float)(w2 & 0x3fffffffu) * (1.57079633f * 0x1.0p-30f), x2 = x * x;
    float sn =
        x * (1 + x2 * (-1.0f / 6 + x2 * (1.0f / 120 + x2 * (-1.0f / 5040 + x2 * (1.0f / 362880)))));
    float cs =
        1 +
        x2 * (-0.5f + x2 * (1.0f / 24 + x2 * (-1.0f / 720 + x2 * (1.0f / 40320 - x2 / 3628800))));
    switch (w2 >> 30) {
    case 0: *n1 = rad * cs, *n2 = rad * sn; break;
    case 1: *n1 = -rad * sn, *n2 = rad * cs; break;
    case 2: *n1 = -rad * cs, *n2 = -rad * sn; break;
    default: *n1 = rad * sn, *n2 = -rad * cs; break;
    }
}

/* Pixels are painted in column chunks so the sample buffers live on the stack. */
#define CHUNK  256
#define MAX_SS 8

/* The lesion mask of hip h: pixel centres (on the centre plane, shifted with the motion) that
 * the head classifier puts in the lesion or its band; then made exactly consistent with
 * head_lesion_cut, which decides the label of the slice. */
static void render_mask(const Scene *s, int h, const SynthSlice *sl, double mx, double mz,
                        uint8_t *mask)
{
    const HeadZone *hz = &s->head[h];
    double y = sl->position[1];
    Vec3 wit;
    if (!head_lesion_cut(hz, y, &wit))
        return; /* the region may brush a pixel centre by rounding; the exact test rules */
    double sx = sl->spacing[1], sz = sl->spacing[0];
    int c0 = (int)floor((hz->c.x - hz->Rz + mx - sl->position[0]) / sx) - 1;
    int c1 = (int)ceil((hz->c.x + hz->Rz + mx - sl->position[0]) / sx) + 1;
    int r0 = (int)floor((sl->position[2] - (hz->c.z + hz->Rz + mz)) / sz) - 1;
    int r1 = (int)ceil((sl->position[2] - (hz->c.z - hz->Rz + mz)) / sz) + 1;
    c0 = c0 < 0 ? 0 : c0;
    r0 = r0 < 0 ? 0 : r0;
    c1 = c1 > sl->columns - 1 ? sl->columns - 1 : c1;
    r1 = r1 > sl->rows - 1 ? sl->rows - 1 : r1;
    long marked = 0;
    for (int r = r0; r <= r1; r++) {
        double z = sl->position[2] - r * sz - mz;
        for (int c = c0; c <= c1; c++) {
            int k = head_classify(hz, sl->position[0] + c * sx - mx, y, z);
            if (k == HZ_LESION || k == HZ_BAND) {
                mask[(size_t)r * sl->columns + c] = 1;
                marked++;
            }
        }
    }
    if (marked == 0) {
        /* A sliver between pixel centres: mark the pixel nearest to a point of it. */
        long c = lround((wit.x + mx - sl->position[0]) / sx);
        long r = lround((sl->position[2] - (wit.z + mz)) / sz);
        if (c >= 0 && c < sl->columns && r >= 0 && r < sl->rows)
            mask[(size_t)r * sl->columns + c] = 1;
    }
}

void anatomy_render(const SynthAnatomy *a, const SynthSlice *sl, const SynthScanner *sc,
                    uint64_t seed, uint64_t noise_index, uint16_t *pixels, uint8_t *lesion_mask)
{
    static _Thread_local Scene scene;
    static _Thread_local PlaneList planes[MAX_SS];
    Scene *s = &scene;
    scene_build(s, a);

    /* The slice's stream: motion first (always drawn, so the noise does not depend on
     * motion_mm), then two words per pixel for the noise, a block of four at a time from the
     * next block boundary, in row order. */
    Philox rng;
    philox_init(&rng, seed, PHILOX_SYNTH, noise_index);
    double mx = philox_normal(&rng), mz = philox_normal(&rng);
    double motion = sc->motion_mm > 0 ? sc->motion_mm : 0;
    mx *= motion;
    mz *= motion;
    uint32_t words[4];
    int used = 4;
    Bias bias;
    bias_draw(&bias, sc->bias_amplitude, seed, noise_index);

    int ss = sc->supersample < 1 ? 1 : sc->supersample > MAX_SS ? MAX_SS : sc->supersample;
    int np = sl->thickness > 0 ? ss : 1; /* planes through the thickness */
    double sx = sl->spacing[1], sz = sl->spacing[0];
    double scale = sc->scale;
    float sigma = sc->snr > 0 ? (float)(SIG_MARROW * scale / sc->snr) : 0.0f;
    float sig[L_COUNT];
    for (int l = 0; l < L_COUNT; l++)
        sig[l] = (float)s->signal[l];
    double norm = scale / ((double)ss * ss * np);
    double y0 = sl->position[1];
    for (int j = 0; j < np; j++)
        plane_list(s, y0 + ((j + 0.5) / np - 0.5) * (np > 1 ? sl->thickness : 0), &planes[j]);

    uint8_t lab[CHUNK * MAX_SS];
    float acc[CHUNK];
    for (int r = 0; r < sl->rows; r++) {
        double q[3];
        bias_row(&bias, y0, sl->position[2] - r * sz, q);
        for (int c0 = 0; c0 < sl->columns; c0 += CHUNK) {
            int nc = sl->columns - c0 < CHUNK ? sl->columns - c0 : CHUNK;
            memset(acc, 0, sizeof acc);
            for (int j = 0; j < np; j++) {
                for (int i = 0; i < ss; i++) {
                    double z = sl->position[2] - (r + (i + 0.5) / ss - 0.5) * sz - mz;
                    double x0 = sl->position[0] + (c0 + 0.5 / ss - 0.5) * sx - mx;
                    scene_row(s, &planes[j], z, x0, sx / ss, nc * ss, lab);
                    const uint8_t *lp = lab;
                    for (int k = 0; k < nc; k++) {
                        float v = 0;
                        for (int m = 0; m < ss; m++)
                            v += sig[*lp++];
                        acc[k] += v;
                    }
                }
            }
            uint16_t *out = pixels + (size_t)r * sl->columns + c0;
            for (int k = 0; k < nc; k++) {
                double X = clampd((sl->position[0] + (c0 + k) * sx) / 200, -1, 1);
                float v = (float)(acc[k] * norm * (1 + q[0] + X * (q[1] + X * q[2])));
                if (sigma > 0) {
                    /* Rician: the magnitude of the signal plus complex Gaussian noise (Box-Muller
                     * on two words). */
                    if (used == 4) {
                        philox4x32_10(rng.ctr, rng.key, words);
                        rng.ctr[0]++;
                        used = 0;
                    }
                    float n1, n2;
                    normal_pair(words[used], words[used + 1], &n1, &n2);
                    used += 2;
                    float re = v + sigma * n1, im = sigma * n2;
                    v = sqrtf(re * re + im * im);
                }
                v = floorf(v + 0.5f);
                out[k] = (uint16_t)(v < 0 ? 0 : v > 4095 ? 4095 : v);
            }
        }
    }
    if (lesion_mask) {
        memset(lesion_mask, 0, (size_t)sl->rows * sl->columns);
        for (int h = 0; h < 2; h++)
            render_mask(s, h, sl, mx, mz, lesion_mask);
    }
}
