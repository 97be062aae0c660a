/* vessel_tree.c: synthetic vessel trees of the femoral-head region (see vessel_tree.h).
 *
 * The synth stage gives every hip a known vessel graph before and after vascularized bone
 * grafting and an angiography-like volume of it, so the vessels stage (vesselness, skeleton,
 * branch graph) is checked against exact truth: length in mm and branch count.
 *
 * Drawing is constructive with rejection. A trunk enters from the inferior side, where the
 * retinacular branches of the medial circumflex femoral artery reach the head, and terminal edges
 * bifurcate (radii by Murray's law r^3 = r1^3 + r2^3, the thicker child deviating less) until the
 * planned count is reached. Every new point must stay inside the extent and clear of the other
 * vessels (the rules are in vessel_tree.h); an attempt that paints itself into a corner starts
 * over. All draws come from the caller's Philox stream, so a tree is a pure function of its seed.
 * Growth works on a copy that replaces the tree only when complete.
 *
 * Branch counts. With roots of degree 1 and junctions of degree 3 a vessel has 1 + 2k edges, so
 * odd counts are one vessel and even counts add a second vessel entering elsewhere (1 or 3
 * edges); growth adds 2 per sprout from an edge interior and 1 per new vessel entering with the
 * graft (or, where none fits, per sprout from a junction). Degree-4 junctions are avoided because
 * thinning may resolve one as two junctions joined by a short extra branch.
 *
 * Rendering keeps no memory of its own: the output buffer first accumulates the partial-volume
 * fraction of the tubes (max over segments, 3x3x3 supersampling near walls only), then is
 * overwritten with background, vessel signal and Rician noise. */
#include "stages/synth/vessel_tree.h"

#include <math.h>
#include <string.h>

#include "lib/util/mem.h"

#define STEP_MM           VESSEL_TREE_STEP_MM
#define MARGIN_MM         VESSEL_TREE_MARGIN_MM
#define GAP_MM            VESSEL_TREE_GAP_MM
#define MIN_RADIUS_MM     VESSEL_TREE_MIN_RADIUS_MM
#define SAMPLE_SLACK_MM   (0.5 * STEP_MM) /* point-to-point clearance implies point-to-segment */
#define SPLIT_SLACK_MM    0.25 /* interior sprouts keep both pieces this over the minimum */
#define MAX_TURN_PER_MM   0.08 /* rad/mm: radius of curvature >= 12.5 mm away from faces */
#define TURN_JITTER       0.03 /* rad/mm per step: curvature drifts, it does not jump */
#define WALL_PUSH_PER_MM  0.25 /* rad/mm: steering away from faces within WALL_ZONE_MM */
#define WALL_ZONE_MM      3.0
#define MAX_DEVIATION     0.87 /* rad (50 degrees) from an edge's first direction: no hooks */
#define LENGTH_PER_RADIUS 18.0
#define EDGE_SLACK        1.15 /* drawn edges are at least this times min_branch_mm */
#define TAPER             0.9  /* radius at the end of an edge over radius at its start */
#define DRAW_RESTARTS     400
#define TRIES             24
#define DEG               (M_PI / 180.0)

/* Where a new piece of vessel leaves the tree: edges that meet there (adj) are allowed to come
 * closer near `center`; `self` (an edge being extended) is not checked against itself. */
typedef struct Clearance {
    double center[3];
    int adj[16];
    int n_adj;
    int self;
} Clearance;

/* Scratch polyline for candidate vessels. */
typedef struct Scratch {
    VesselPoint *pts;
    int cap;
} Scratch;

// ---------------------------------------------------------------------------------------------
// Vectors and random directions

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double dist2(const double a[3], const double b[3])
{
    double d[3] = {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
    return dot3(d, d);
}

static void normalize3(double a[3])
{
    double n = sqrt(dot3(a, a));
    for (int k = 0; k < 3; k++)
        a[k] /= n;
}

static double uniform(Philox *rng, double lo, double hi)
{
    return lo + (hi - lo) * philox_uniform(rng);
}

/* A random unit vector perpendicular to the unit vector d. */
static void random_perp(const double d[3], Philox *rng, double out[3])
{
    /* u: d x (the axis least aligned with d); v = d x u; then a random angle in their plane. */
    int k = fabs(d[0]) < fabs(d[1]) ? (fabs(d[0]) < fabs(d[2]) ? 0 : 2)
                                    : (fabs(d[1]) < fabs(d[2]) ? 1 : 2);
    double a[3] = {0, 0, 0};
    a[k] = 1.0;
    double u[3] = {d[1] * a[2] - d[2] * a[1], d[2] * a[0] - d[0] * a[2], d[0] * a[1] - d[1] * a[0]};
    normalize3(u);
    double v[3] = {d[1] * u[2] - d[2] * u[1], d[2] * u[0] - d[0] * u[2], d[0] * u[1] - d[1] * u[0]};
    double psi = uniform(rng, 0.0, 2.0 * M_PI);
    for (k = 0; k < 3; k++)
        out[k] = cos(psi) * u[k] + sin(psi) * v[k];
}

/* out = d turned by angle towards the unit vector u (u perpendicular to d). */
static void turn(const double d[3], const double u[3], double angle, double out[3])
{
    for (int k = 0; k < 3; k++)
        out[k] = cos(angle) * d[k] + sin(angle) * u[k];
    normalize3(out);
}

// ---------------------------------------------------------------------------------------------
// Graph storage: arrays grown one element at a time (trees are small), popped on rejection.

static double poly_length(const VesselPoint *pts, int n)
{
    double len = 0.0;
    for (int i = 1; i < n; i++)
        len += sqrt(dist2(pts[i].p, pts[i - 1].p));
    return len;
}

/* Appends a node; returns its index or ERR_NOMEM. */
static int add_node(VesselTree *t, const double p[3])
{
    double(*nodes)[3] = mem_realloc(t->nodes, (size_t)(t->n_nodes + 1) * sizeof *nodes);
    if (!nodes)
        return ERR_NOMEM;
    t->nodes = nodes;
    memcpy(t->nodes[t->n_nodes], p, sizeof t->nodes[0]);
    return t->n_nodes++;
}

/* Appends an edge with a copy of pts; returns its index or ERR_NOMEM. */
static int add_edge(VesselTree *t, int from, int to, const VesselPoint *pts, int n)
{
    VesselPoint *copy = mem_alloc((size_t)n * sizeof *copy);
    if (!copy)
        return ERR_NOMEM;
    VesselEdge *edges = mem_realloc(t->edges, (size_t)(t->n_edges + 1) * sizeof *edges);
    if (!edges) {
        mem_free(copy);
        return ERR_NOMEM;
    }
    memcpy(copy, pts, (size_t)n * sizeof *copy);
    t->edges = edges;
    t->edges[t->n_edges] = (VesselEdge){.from = from, .to = to, .pts = copy, .n_pts = n};
    return t->n_edges++;
}

/* Adds node `to` at the end of pts and the edge from -> to; returns the edge index. */
static int add_vessel(VesselTree *t, int from, const VesselPoint *pts, int n)
{
    int to = add_node(t, pts[n - 1].p);
    if (to < 0)
        return to;
    return add_edge(t, from, to, pts, n);
}

static void pop_vessel(VesselTree *t)
{
    t->n_edges--;
    mem_free(t->edges[t->n_edges].pts);
    t->n_nodes--; /* its `to` node, always the last one added */
}

static void clear_tree(VesselTree *t)
{
    for (int i = 0; i < t->n_edges; i++)
        mem_free(t->edges[i].pts);
    mem_free(t->edges);
    mem_free(t->nodes);
    t->edges = NULL;
    t->nodes = NULL;
    t->n_edges = 0;
    t->n_nodes = 0;
}

static int node_degree(const VesselTree *t, int node)
{
    int deg = 0;
    for (int i = 0; i < t->n_edges; i++)
        deg += (t->edges[i].from == node) + (t->edges[i].to == node);
    return deg;
}

static int is_terminal(const VesselTree *t, int edge)
{
    return node_degree(t, t->edges[edge].to) == 1;
}

/* The unit direction in which edge leaves node (about 1.5 mm along it). */
static void leaving_direction(const VesselTree *t, int edge, int node, double d[3])
{
    const VesselEdge *g = &t->edges[edge];
    int k = g->n_pts - 1 < 3 ? g->n_pts - 1 : 3;
    const double *a = g->from == node ? g->pts[0].p : g->pts[g->n_pts - 1].p;
    const double *b = g->from == node ? g->pts[k].p : g->pts[g->n_pts - 1 - k].p;
    for (int j = 0; j < 3; j++)
        d[j] = b[j] - a[j];
    normalize3(d);
}

static void clearance_at_node(const VesselTree *t, int node, int self, Clearance *c)
{
    memcpy(c->center, t->nodes[node], sizeof c->center);
    c->n_adj = 0;
    c->self = self;
    for (int i = 0; i < t->n_edges && c->n_adj < 16; i++)
        if (i != self && (t->edges[i].from == node || t->edges[i].to == node))
            c->adj[c->n_adj++] = i;
}

// ---------------------------------------------------------------------------------------------
// Room: the extent with its margin, and clearance from the other vessels

static int inside(const VesselTree *t, const double q[3])
{
    for (int k = 0; k < 3; k++)
        if (q[k] < MARGIN_MM || q[k] > t->extent[k] - MARGIN_MM)
            return 0;
    return 1;
}

/* 1 when a vessel point q of radius rq keeps the clearances of vessel_tree.h from every edge. */
static int point_is_clear(const VesselTree *t, const Clearance *c, const double q[3], double rq)
{
    double dq = c ? sqrt(dist2(q, c->center)) : 0.0;
    for (int i = 0; i < t->n_edges; i++) {
        if (c && i == c->self)
            continue;
        int adjacent = 0;
        for (int j = 0; c && j < c->n_adj; j++)
            adjacent |= c->adj[j] == i;
        const VesselEdge *g = &t->edges[i];
        for (int k = 0; k < g->n_pts; k++) {
            double full = g->pts[k].radius + rq + GAP_MM;
            double need = full + SAMPLE_SLACK_MM;
            if (adjacent) {
                double dp = sqrt(dist2(g->pts[k].p, c->center));
                double s = (dp > dq ? dp : dq) / (2.0 * full);
                if (s < 1.0)
                    need *= s;
            }
            if (dist2(g->pts[k].p, q) < need * need)
                return 0;
        }
    }
    return 1;
}

/* 1 when every point of pts keeps the full (non-adjacent) clearance from the listed edges. */
static int piece_is_clear(const VesselTree *t, const VesselPoint *pts, int n, const int *edges,
                          int n_edges)
{
    for (int j = 0; j < n_edges; j++) {
        const VesselEdge *g = &t->edges[edges[j]];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < g->n_pts; k++) {
                double need = g->pts[k].radius + pts[i].radius + GAP_MM + SAMPLE_SLACK_MM;
                if (dist2(g->pts[k].p, pts[i].p) < need * need)
                    return 0;
            }
    }
    return 1;
}

static int scratch_reserve(Scratch *s, int n)
{
    if (n <= s->cap)
        return 0;
    VesselPoint *pts = mem_realloc(s->pts, (size_t)n * sizeof *pts);
    if (!pts)
        return ERR_NOMEM;
    s->pts = pts;
    s->cap = n;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Walking one vessel

/* Walks a gently curving vessel of exactly len mm from start, first along the unit vector d0,
 * radius r0 tapering linearly to r1, into s->pts (evenly spaced points, both ends included).
 * Curvature drifts as a bounded random walk, the course bends away from faces it nears and
 * never turns more than MAX_DEVIATION from d0. Returns the number of points, 0 when the vessel
 * leaves the extent or comes too close to another (the caller tries again), or ERR_NOMEM. */
static int walk_vessel(const VesselTree *t, Scratch *s, const Clearance *c, const double start[3],
                       const double d0[3], double len, double r0, double r1, Philox *rng)
{
    int m = (int)ceil(len / STEP_MM - 1e-9);
    if (m < 1)
        m = 1;
    double h = len / m;
    if (scratch_reserve(s, m + 1))
        return ERR_NOMEM;
    double d[3] = {d0[0], d0[1], d0[2]};
    double w[3]; /* turn rate, rad/mm, perpendicular to d */
    random_perp(d, rng, w);
    double w0 = uniform(rng, 0.0, 0.5 * MAX_TURN_PER_MM);
    for (int k = 0; k < 3; k++)
        w[k] *= w0;
    memcpy(s->pts[0].p, start, sizeof s->pts[0].p);
    s->pts[0].radius = r0;
    for (int i = 1; i <= m; i++) {
        const double *prev = s->pts[i - 1].p;
        double jitter[3];
        random_perp(d, rng, jitter);
        double amp = TURN_JITTER * philox_normal(rng);
        double push[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++) {
            w[k] += amp * jitter[k];
            double lo = prev[k] - MARGIN_MM;
            double hi = t->extent[k] - MARGIN_MM - prev[k];
            if (lo < WALL_ZONE_MM)
                push[k] += WALL_PUSH_PER_MM * (1.0 - lo / WALL_ZONE_MM);
            if (hi < WALL_ZONE_MM)
                push[k] -= WALL_PUSH_PER_MM * (1.0 - hi / WALL_ZONE_MM);
        }
        double wn = sqrt(dot3(w, w));
        if (wn > MAX_TURN_PER_MM)
            for (int k = 0; k < 3; k++)
                w[k] *= MAX_TURN_PER_MM / wn;
        for (int k = 0; k < 3; k++)
            d[k] += h * (w[k] + push[k]);
        normalize3(d);
        double along = dot3(d, d0);
        if (along < cos(MAX_DEVIATION)) {
            /* Back onto the cone around d0, and drop the curvature that pushed it there. */
            double u[3];
            for (int k = 0; k < 3; k++)
                u[k] = d[k] - along * d0[k];
            normalize3(u);
            turn(d0, u, MAX_DEVIATION, d);
            w[0] = w[1] = w[2] = 0.0;
        }
        double wd = dot3(w, d);
        for (int k = 0; k < 3; k++)
            w[k] -= wd * d[k];
        VesselPoint *q = &s->pts[i];
        for (int k = 0; k < 3; k++)
            q->p[k] = prev[k] + h * d[k];
        q->radius = r0 + (r1 - r0) * i / m;
        if (!inside(t, q->p) || !point_is_clear(t, c, q->p, q->radius))
            return 0;
    }
    return m + 1;
}

static double end_radius(double r0)
{
    double r = r0 * TAPER;
    return r > MIN_RADIUS_MM ? r : MIN_RADIUS_MM;
}

static double drawn_length(double radius, const VesselParams *p, Philox *rng)
{
    double len = LENGTH_PER_RADIUS * radius * uniform(rng, 0.7, 1.3);
    double least = EDGE_SLACK * p->min_branch_mm;
    return len > least ? len : least;
}

// ---------------------------------------------------------------------------------------------
// Drawing

/* An entry point and first direction. The main vessel comes from the inferior side (large y:
 * rows run head to foot), where the retinacular arteries climb the neck; others enter the field
 * of view through the inferior or a side face (a graft goes in through the neck, from below or
 * the side), heading inwards and a little up. */
static void entry(const VesselTree *t, int main_vessel, Philox *rng, double pos[3], double d[3])
{
    const double *ext = t->extent;
    if (main_vessel) {
        pos[0] = ext[0] * uniform(rng, 0.3, 0.5);
        pos[1] = ext[1] - MARGIN_MM - uniform(rng, 0.0, 0.08) * ext[1];
        pos[2] = ext[2] * uniform(rng, 0.35, 0.65);
        d[0] = uniform(rng, 0.1, 0.5);
        d[1] = -1.0;
        d[2] = 0.3 * philox_normal(rng);
    } else {
        /* face 0: inferior (y max); 1, 2: x min, x max; 3, 4: z min, z max */
        int face = (int)philox_below(rng, 5);
        int axis = face == 0 ? 1 : face < 3 ? 0 : 2;
        int at_max = face == 0 || face == 2 || face == 4;
        pos[0] = ext[0] * uniform(rng, 0.2, 0.8);
        pos[1] = ext[1] * uniform(rng, 0.45, 0.9);
        pos[2] = ext[2] * uniform(rng, 0.2, 0.8);
        double inset = MARGIN_MM + uniform(rng, 0.0, 1.5);
        pos[axis] = at_max ? ext[axis] - inset : inset;
        for (int k = 0; k < 3; k++)
            d[k] = 0.4 * philox_normal(rng);
        d[axis] += at_max ? -1.0 : 1.0;
        d[1] -= 0.3;
    }
    for (int k = 0; k < 3; k++) {
        if (pos[k] < MARGIN_MM)
            pos[k] = MARGIN_MM;
        if (pos[k] > ext[k] - MARGIN_MM)
            pos[k] = ext[k] - MARGIN_MM;
    }
    if (dot3(d, d) < 1e-12)
        d[1] = -1.0;
    normalize3(d);
}

/* Places a new vessel of one edge (a root and an end) of length len (0: drawn from radius r0).
 * Returns its edge index (>= 0), -1 when nothing fits, or ERR_NOMEM. */
static int place_trunk(VesselTree *t, Scratch *s, int main_vessel, double r0, double len,
                       const VesselParams *p, Philox *rng)
{
    for (int try = 0; try < TRIES; try++) {
        double pos[3], d[3];
        entry(t, main_vessel, rng, pos, d);
        double l = len > 0 ? len : drawn_length(r0, p, rng);
        if (!point_is_clear(t, NULL, pos, r0))
            continue;
        int n = walk_vessel(t, s, NULL, pos, d, l, r0, end_radius(r0), rng);
        if (n < 0)
            return n;
        if (n == 0)
            continue;
        int root = add_node(t, pos);
        if (root < 0)
            return root;
        return add_vessel(t, root, s->pts, n);
    }
    return -1;
}

/* Splits the end of terminal edge `leaf` into two children. Returns 1, 0 when they do not fit
 * (tree unchanged), or ERR_NOMEM. */
static int bifurcate(VesselTree *t, Scratch *s, int leaf, const VesselParams *p, Philox *rng)
{
    const VesselEdge *g = &t->edges[leaf];
    int junction = g->to;
    double d[3], u[3];
    leaving_direction(t, leaf, junction, d);
    for (int k = 0; k < 3; k++)
        d[k] = -d[k];
    double r = g->pts[g->n_pts - 1].radius;
    double share = uniform(rng, 0.25, 0.5); /* of r^3 to the thinner child (Murray) */
    double radius[2] = {r * cbrt(1.0 - share), r * cbrt(share)};
    double angle[2] = {uniform(rng, 15.0, 35.0) * DEG, uniform(rng, 40.0, 65.0) * DEG};
    random_perp(d, rng, u);
    Clearance c;
    clearance_at_node(t, junction, -1, &c);
    for (int child = 0; child < 2; child++) {
        double dc[3], side[3];
        for (int k = 0; k < 3; k++)
            side[k] = child ? -u[k] : u[k];
        turn(d, side, angle[child], dc);
        double r0 = radius[child] > MIN_RADIUS_MM ? radius[child] : MIN_RADIUS_MM;
        double len = drawn_length(r0, p, rng);
        int n = walk_vessel(t, s, &c, t->nodes[junction], dc, len, r0, end_radius(r0), rng);
        if (n < 0)
            return n;
        if (n == 0) {
            if (child)
                pop_vessel(t);
            return 0;
        }
        int edge = add_vessel(t, junction, s->pts, n);
        if (edge < 0)
            return edge;
        c.adj[c.n_adj++] = edge;
    }
    return 1;
}

/* A terminal edge among edges first.. (the vessel being drawn), thicker ends more likely: they
 * are the earlier generations, so the tree fills out rather than growing one long chain. */
static int pick_leaf(const VesselTree *t, int first, Philox *rng)
{
    double total = 0.0;
    for (int i = first; i < t->n_edges; i++)
        if (is_terminal(t, i)) {
            double r = t->edges[i].pts[t->edges[i].n_pts - 1].radius;
            total += r * r;
        }
    double x = philox_uniform(rng) * total;
    int last = -1;
    for (int i = first; i < t->n_edges; i++)
        if (is_terminal(t, i)) {
            double r = t->edges[i].pts[t->edges[i].n_pts - 1].radius;
            last = i;
            x -= r * r;
            if (x < 0)
                return i;
        }
    return last;
}

/* Draws one vessel of n_edges (odd) edges. Returns 1, 0 when it does not fit, or ERR_NOMEM. */
static int draw_vessel(VesselTree *t, Scratch *s, int n_edges, int main_vessel,
                       const VesselParams *p, Philox *rng)
{
    double r0 = main_vessel ? p->root_radius_mm : p->root_radius_mm * uniform(rng, 0.6, 0.8);
    if (r0 < MIN_RADIUS_MM)
        r0 = MIN_RADIUS_MM;
    int first = place_trunk(t, s, main_vessel, r0, 0.0, p, rng);
    if (first < 0)
        return first == -1 ? 0 : first;
    int failures = 0;
    while (t->n_edges - first < n_edges) {
        int leaf = pick_leaf(t, first, rng);
        int rc = 0;
        for (int try = 0; try < 6 && rc == 0; try++)
            rc = bifurcate(t, s, leaf, p, rng);
        if (rc < 0)
            return rc;
        if (rc == 0 && ++failures > 12 + 2 * n_edges)
            return 0;
    }
    return 1;
}

static int check_params(const VesselParams *p, Err *e)
{
    for (int k = 0; k < 3; k++)
        if (!(p->extent[k] >= 2.0 * MARGIN_MM + 4.0) || !isfinite(p->extent[k]))
            return err_set(e, ERR_CONFIG,
                           "vessel tree: extent[%d] = %g mm, need at least %g mm and finite", k,
                           p->extent[k], 2.0 * MARGIN_MM + 4.0);
    if (!(p->min_branch_mm > 0.0 && p->min_branch_mm <= 50.0))
        return err_set(e, ERR_CONFIG, "vessel tree: min_branch_mm = %g, expected (0, 50]",
                       p->min_branch_mm);
    if (!(p->root_radius_mm > 0.0 && p->root_radius_mm <= 3.0))
        return err_set(e, ERR_CONFIG, "vessel tree: root_radius_mm = %g, expected (0, 3]",
                       p->root_radius_mm);
    return 0;
}

int vessel_tree_draw(VesselTree *t, const VesselParams *p, Philox *rng, Err *e)
{
    memset(t, 0, sizeof *t);
    memcpy(t->extent, p->extent, sizeof t->extent);
    int rc = check_params(p, e);
    if (rc)
        return rc;
    int n = p->initial_branches;
    if (n < 1 || n > 1000)
        return err_set(e, ERR_CONFIG, "vessel tree: initial_branches = %d, expected 1..1000", n);
    /* Even counts: a second vessel of 1 or 3 edges beside the main one (see the top). */
    int second = n % 2 ? 0 : (n >= 4 && philox_uniform(rng) < 0.5 ? 3 : 1);
    Scratch s = {0};
    for (int attempt = 0; attempt < DRAW_RESTARTS; attempt++) {
        clear_tree(t);
        rc = draw_vessel(t, &s, n - second, 1, p, rng);
        if (rc > 0 && second)
            rc = draw_vessel(t, &s, second, 0, p, rng);
        if (rc < 0)
            goto out_nomem;
        if (rc > 0) {
            mem_free(s.pts);
            return 0;
        }
    }
    clear_tree(t);
    mem_free(s.pts);
    return err_set(e, ERR_CONFIG,
                   "vessel tree: %d branches of >= %g mm do not fit a %g x %g x %g mm extent", n,
                   p->min_branch_mm, p->extent[0], p->extent[1], p->extent[2]);
out_nomem:
    clear_tree(t);
    mem_free(s.pts);
    return err_set(e, ERR_NOMEM, "vessel tree: out of memory drawing %d branches", n);
}

// ---------------------------------------------------------------------------------------------
// Copy, free, measures

int vessel_tree_copy(VesselTree *dst, const VesselTree *src, Err *e)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->extent, src->extent, sizeof dst->extent);
    dst->nodes = mem_alloc((size_t)src->n_nodes * sizeof *dst->nodes);
    dst->edges = mem_calloc((size_t)src->n_edges, sizeof *dst->edges);
    if (!dst->nodes || !dst->edges)
        goto out_nomem;
    memcpy(dst->nodes, src->nodes, (size_t)src->n_nodes * sizeof *dst->nodes);
    dst->n_nodes = src->n_nodes;
    for (int i = 0; i < src->n_edges; i++) {
        const VesselEdge *g = &src->edges[i];
        VesselEdge *h = &dst->edges[i];
        *h = *g;
        h->pts = mem_alloc((size_t)g->n_pts * sizeof *h->pts);
        if (!h->pts)
            goto out_nomem;
        memcpy(h->pts, g->pts, (size_t)g->n_pts * sizeof *h->pts);
        dst->n_edges = i + 1;
    }
    return 0;
out_nomem:
    clear_tree(dst);
    return err_set(e, ERR_NOMEM, "vessel tree: out of memory copying %d edges", src->n_edges);
}

void vessel_tree_free(VesselTree *t)
{
    if (t)
        clear_tree(t);
}

/* Edges less the non-root nodes of degree 2 (each joins two edges into one branch). */
int vessel_tree_branches(const VesselTree *t)
{
    int branches = t->n_edges;
    for (int v = 0; v < t->n_nodes; v++) {
        int in = 0;
        int out = 0;
        for (int i = 0; i < t->n_edges; i++) {
            in += t->edges[i].to == v;
            out += t->edges[i].from == v;
        }
        if (in == 1 && out == 1)
            branches--;
    }
    return branches;
}

double vessel_tree_length_mm(const VesselTree *t)
{
    double len = 0.0;
    for (int i = 0; i < t->n_edges; i++)
        len += poly_length(t->edges[i].pts, t->edges[i].n_pts);
    return len;
}

// ---------------------------------------------------------------------------------------------
// Growth after grafting

double vessel_tree_grow_min_length_mm(int add_branches, const VesselParams *p)
{
    if (add_branches <= 0)
        return 0.0;
    return ((add_branches + 1) / 2) * p->min_branch_mm;
}

/* A random edge for which ok(t, edge, arg) holds, or -1. */
static int pick_edge(const VesselTree *t, int (*ok)(const VesselTree *, int, double), double arg,
                     Philox *rng)
{
    int count = 0;
    for (int i = 0; i < t->n_edges; i++)
        count += ok(t, i, arg);
    if (count == 0)
        return -1;
    int k = (int)philox_below(rng, (uint32_t)count);
    for (int i = 0; i < t->n_edges; i++)
        if (ok(t, i, arg) && k-- == 0)
            return i;
    return -1;
}

static int edge_is_terminal(const VesselTree *t, int edge, double unused)
{
    (void)unused;
    return is_terminal(t, edge);
}

static int edge_is_splittable(const VesselTree *t, int edge, double least)
{
    return poly_length(t->edges[edge].pts, t->edges[edge].n_pts) >= 2.0 * least;
}

/* A sprout of length len from the interior of an edge (edge `only`, or any when -1) long enough
 * to keep both pieces at least min_branch_mm: the edge splits at a new junction (+1 branch) and
 * the sprout is a new terminal edge (+1). Returns 1, 0 when no place fits, or ERR_NOMEM. */
static int sprout_interior(VesselTree *t, Scratch *s, double len, int only, const VesselParams *p,
                           Philox *rng)
{
    double least = p->min_branch_mm + SPLIT_SLACK_MM;
    for (int try = 0; try < 2 * TRIES; try++) {
        int ie = only >= 0 ? only : pick_edge(t, edge_is_splittable, least, rng);
        if (ie < 0 || !edge_is_splittable(t, ie, least))
            return 0;
        const VesselEdge *g = &t->edges[ie];
        double total = poly_length(g->pts, g->n_pts);
        /* Split point k: the first point past a random arc length in [least, total - least]. */
        double want = uniform(rng, least, total - least);
        double arc = 0.0;
        int k = 0;
        while (k < g->n_pts - 1 && arc < want) {
            arc += sqrt(dist2(g->pts[k + 1].p, g->pts[k].p));
            k++;
        }
        if (arc > total - least || k < 1 || k >= g->n_pts - 1)
            continue;
        /* The pieces stop meeting the edges at the far end of the other piece, so they need the
         * full clearance from them. */
        Clearance at_from, at_to;
        clearance_at_node(t, g->from, ie, &at_from);
        clearance_at_node(t, g->to, ie, &at_to);
        if (!piece_is_clear(t, g->pts + k, g->n_pts - k, at_from.adj, at_from.n_adj) ||
            !piece_is_clear(t, g->pts, k + 1, at_to.adj, at_to.n_adj))
            continue;
        double tangent[3], u[3], d[3];
        for (int j = 0; j < 3; j++)
            tangent[j] = g->pts[k + 1].p[j] - g->pts[k - 1].p[j];
        normalize3(tangent);
        random_perp(tangent, rng, u);
        turn(tangent, u, uniform(rng, 60.0, 85.0) * DEG, d);
        double rk = g->pts[k].radius;
        double r0 = rk * uniform(rng, 0.55, 0.75);
        if (r0 < MIN_RADIUS_MM)
            r0 = MIN_RADIUS_MM;
        Clearance c = {.n_adj = 1, .adj = {ie}, .self = -1};
        memcpy(c.center, g->pts[k].p, sizeof c.center);
        int n = walk_vessel(t, s, &c, g->pts[k].p, d, len, r0, end_radius(r0), rng);
        if (n < 0)
            return n;
        if (n == 0)
            continue;
        /* Commit: node at the split, the outer piece as a new edge, the sprout. */
        int node = add_node(t, g->pts[k].p);
        if (node < 0)
            return node;
        g = &t->edges[ie];
        int outer = add_edge(t, node, g->to, g->pts + k, g->n_pts - k);
        if (outer < 0)
            return outer;
        t->edges[ie].to = node;
        t->edges[ie].n_pts = k + 1;
        int sprout = add_vessel(t, node, s->pts, n);
        return sprout < 0 ? sprout : 1;
    }
    return 0;
}

/* A sprout of length len from a junction of degree 3, leaving it as far as possible from the
 * vessels already there. Returns 1, 0 when none fits, or ERR_NOMEM. */
static int sprout_junction(VesselTree *t, Scratch *s, double len, Philox *rng)
{
    for (int try = 0; try < 2 * TRIES; try++) {
        int node = (int)philox_below(rng, (uint32_t)t->n_nodes);
        if (node_degree(t, node) != 3)
            continue;
        Clearance c;
        clearance_at_node(t, node, -1, &c);
        double best[3] = {0, 0, 0};
        double best_cos = 2.0;
        for (int cand = 0; cand < 32; cand++) {
            double d[3] = {philox_normal(rng), philox_normal(rng), philox_normal(rng)};
            normalize3(d);
            double worst = -1.0;
            for (int j = 0; j < c.n_adj; j++) {
                double a[3];
                leaving_direction(t, c.adj[j], node, a);
                double cs = dot3(a, d);
                worst = cs > worst ? cs : worst;
            }
            if (worst < best_cos) {
                best_cos = worst;
                memcpy(best, d, sizeof best);
            }
        }
        if (best_cos > cos(60.0 * DEG))
            continue;
        double r0 = 1.0;
        for (int j = 0; j < c.n_adj; j++) {
            const VesselEdge *g = &t->edges[c.adj[j]];
            double r = g->from == node ? g->pts[0].radius : g->pts[g->n_pts - 1].radius;
            r0 = r < r0 ? r : r0;
        }
        r0 = 0.7 * r0 > MIN_RADIUS_MM ? 0.7 * r0 : MIN_RADIUS_MM;
        int n = walk_vessel(t, s, &c, t->nodes[node], best, len, r0, end_radius(r0), rng);
        if (n < 0)
            return n;
        if (n == 0)
            continue;
        int edge = add_vessel(t, node, s->pts, n);
        return edge < 0 ? edge : 1;
    }
    return 0;
}

/* One more branch: a new vessel entering with the graft, else a sprout at a junction. */
static int add_one_branch(VesselTree *t, Scratch *s, double len, const VesselParams *p, Philox *rng)
{
    double r0 = 0.5 * p->root_radius_mm;
    if (r0 < MIN_RADIUS_MM)
        r0 = MIN_RADIUS_MM;
    int edge = place_trunk(t, s, 0, r0, len, p, rng);
    if (edge >= 0)
        return 1;
    if (edge != -1)
        return edge;
    return sprout_junction(t, s, len, rng);
}

/* Extends terminal edge ie (any terminal edge when -1) by exactly len mm. Returns 1, 0 when no
 * end has room, or ERR_NOMEM. */
static int extend_end(VesselTree *t, Scratch *s, int only, double len, Philox *rng)
{
    for (int try = 0; try < (only >= 0 ? TRIES / 4 : 2 * TRIES); try++) {
        int ie = only >= 0 ? only : pick_edge(t, edge_is_terminal, 0.0, rng);
        const VesselEdge *g = &t->edges[ie];
        double d[3], u[3];
        leaving_direction(t, ie, g->to, d);
        for (int k = 0; k < 3; k++)
            d[k] = -d[k];
        if (try >= TRIES / 8) {
            /* A tip heading into a face cannot go on straight: let it bend up to 40 degrees (with
             * MAX_DEVIATION after it, never back towards its own edge). */
            random_perp(d, rng, u);
            turn(d, u, uniform(rng, 0.0, 40.0) * DEG, d);
        }
        /* The extension belongs to edge ie: it meets what ie meets at its start. */
        Clearance c;
        clearance_at_node(t, g->from, ie, &c);
        double r0 = g->pts[g->n_pts - 1].radius;
        int n = walk_vessel(t, s, &c, g->pts[g->n_pts - 1].p, d, len, r0, end_radius(r0), rng);
        if (n < 0)
            return n;
        if (n == 0)
            continue;
        VesselPoint *pts = mem_realloc(g->pts, (size_t)(g->n_pts + n - 1) * sizeof *pts);
        if (!pts)
            return ERR_NOMEM;
        VesselEdge *h = &t->edges[ie];
        h->pts = pts;
        memcpy(h->pts + h->n_pts, s->pts + 1, (size_t)(n - 1) * sizeof *pts);
        h->n_pts += n - 1;
        memcpy(t->nodes[h->to], h->pts[h->n_pts - 1].p, sizeof t->nodes[0]);
        return 1;
    }
    return 0;
}

/* When no edge is long enough to split: lengthens a terminal edge, by at most `avail` mm, until it
 * is. Returns 1 with the edge and the length spent, 0 when none could be, or ERR_NOMEM. */
static int lengthen_for_sprout(VesselTree *t, Scratch *s, double avail, const VesselParams *p,
                               Philox *rng, int *edge, double *spent)
{
    double least = p->min_branch_mm + SPLIT_SLACK_MM;
    for (int try = 0; try < TRIES; try++) {
        int ie = pick_edge(t, edge_is_terminal, 0.0, rng);
        double x = 2.0 * least + STEP_MM - poly_length(t->edges[ie].pts, t->edges[ie].n_pts);
        if (x <= 0.0 || x > avail)
            continue;
        int rc = extend_end(t, s, ie, x, rng);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            *edge = ie;
            *spent = x;
            return 1;
        }
    }
    return 0;
}

/* Spreads len over a few terminal edges; a piece that fits nowhere is halved and tried again.
 * The pieces always sum to len. Returns 1, 0 when no room, or ERR_NOMEM. */
static int extend_ends(VesselTree *t, Scratch *s, double len, Philox *rng)
{
    if (len <= 0.0)
        return 1;
    double stack[64];
    int n = (int)ceil(len / 5.0);
    n = n < 1 ? 1 : n > 8 ? 8 : n;
    double left = len;
    for (int i = 0; i < n; i++) {
        stack[i] = i == n - 1 ? left : len / n * uniform(rng, 0.7, 1.3);
        left -= stack[i];
    }
    while (n > 0) {
        double piece = stack[--n];
        int rc = extend_end(t, s, -1, piece, rng);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (piece < 0.05 || n + 2 > 64)
                return 0;
            stack[n] = 0.5 * piece;
            stack[n + 1] = piece - stack[n];
            n += 2;
        }
    }
    return 1;
}

int vessel_tree_grow(VesselTree *t, int add_branches, double add_length_mm, const VesselParams *p,
                     Philox *rng, Err *e)
{
    int rc = check_params(p, e);
    if (rc)
        return rc;
    double need = vessel_tree_grow_min_length_mm(add_branches, p);
    if (add_branches < 0 || add_branches > 128 || !(add_length_mm >= 0.0) ||
        !isfinite(add_length_mm))
        return err_set(e, ERR_CONFIG, "vessel tree: cannot grow by %d branches and %g mm",
                       add_branches, add_length_mm);
    if (add_branches > 0 && (add_length_mm <= 0.0 || add_length_mm < need - 1e-9))
        return err_set(e, ERR_CONFIG,
                       "vessel tree: %d new branches need at least %g mm of new vessel, got %g mm",
                       add_branches, need, add_length_mm);
    if (add_branches == 0 && add_length_mm == 0.0)
        return 0;
    if (t->n_edges == 0)
        return err_set(e, ERR_CONFIG, "vessel tree: cannot grow an empty tree");

    VesselTree w;
    rc = vessel_tree_copy(&w, t, e);
    if (rc)
        return rc;
    Scratch s = {0};

    /* Budget. Each new vessel gets min_branch_mm plus a random share of the surplus over what the
     * branches still to come need; what is left at the end lengthens existing ends. A pair comes
     * from an interior sprout; where no edge is long enough one is lengthened first, and where
     * that fails too the pair becomes two single branches, as far as the budget allows. */
    double left = add_length_mm;
    int rem = add_branches;
    for (int guard = 0; rem > 0; guard++) {
        rc = 0;
        if (guard > 4 * add_branches + 8)
            goto out_fail;
        int ops = (rem + 1) / 2;
        double surplus = left - vessel_tree_grow_min_length_mm(rem, p);
        surplus = surplus > 0.0 ? surplus : 0.0;
        double extra = surplus * uniform(rng, 0.5, 1.0) / ops;
        if (ops == 1 && surplus - extra < 1.0)
            extra = surplus; /* no crumbs of extension */
        int splittable = 0;
        for (int i = 0; i < w.n_edges; i++)
            splittable += edge_is_splittable(&w, i, p->min_branch_mm + SPLIT_SLACK_MM);
        if (splittable < rem / 2)
            extra = 0.0; /* keep the surplus for lengthening edges to split */
        double len = p->min_branch_mm + extra;
        if (rem >= 2) {
            rc = sprout_interior(&w, &s, len, -1, p, rng);
            if (rc < 0)
                goto out_fail;
            if (rc == 0) {
                int edge = -1;
                double spent = 0.0;
                rc = lengthen_for_sprout(&w, &s, surplus, p, rng, &edge, &spent);
                if (rc < 0)
                    goto out_fail;
                if (rc > 0) {
                    left -= spent;
                    len = p->min_branch_mm + (surplus - spent) * (ops == 1 ? 1.0 : 0.5 / ops);
                    rc = sprout_interior(&w, &s, len, edge, p, rng);
                    if (rc < 0)
                        goto out_fail;
                }
            }
            if (rc > 0) {
                rem -= 2;
                left -= len;
                continue;
            }
            len = p->min_branch_mm;
            if (left - len < vessel_tree_grow_min_length_mm(rem - 1, p) - 1e-9)
                goto out_fail;
        }
        rc = add_one_branch(&w, &s, len, p, rng);
        if (rc <= 0)
            goto out_fail;
        rem -= 1;
        left -= len;
    }
    double ext = left > 1e-12 ? left : 0.0;
    rc = extend_ends(&w, &s, ext, rng);
    if (rc <= 0)
        goto out_fail;
    mem_free(s.pts);
    clear_tree(t);
    *t = w;
    return 0;
out_fail:
    mem_free(s.pts);
    clear_tree(&w);
    if (rc < 0)
        return err_set(e, ERR_NOMEM, "vessel tree: out of memory growing %d branches",
                       add_branches);
    return err_set(e, ERR_CONFIG,
                   "vessel tree: no room to grow %d branches and %g mm in a %g x %g x %g mm extent",
                   add_branches, add_length_mm, t->extent[0], t->extent[1], t->extent[2]);
}

// ---------------------------------------------------------------------------------------------
// Rendering

#define SUPERSAMPLE 3
#define BACKGROUND  0.12 /* of scale */
#define TEXTURE     0.25 /* relative amplitude of the background's smooth variation */
#define N_WAVES     4

/* Fraction of voxel centred at c (half extents hv, half diagonal hd) inside the tapered capsule
 * a-b: 0 or 1 away from the wall, otherwise counted on a 3x3x3 grid inside the voxel. */
static double capsule_fraction(const VesselPoint *a, const VesselPoint *b, const double c[3],
                               const double hv[3], double hd)
{
    double ab[3] = {b->p[0] - a->p[0], b->p[1] - a->p[1], b->p[2] - a->p[2]};
    double ab2 = dot3(ab, ab);
    int hits = 0;
    for (int s = -1; s < SUPERSAMPLE * SUPERSAMPLE * SUPERSAMPLE; s++) {
        /* s = -1 is the voxel centre, which decides whether sampling is needed at all. */
        double q[3];
        for (int k = 0; k < 3; k++) {
            int idx = s < 0 ? 0 : (k == 0 ? s % 3 : k == 1 ? s / 3 % 3 : s / 9) - 1;
            q[k] = c[k] + idx * hv[k] * (2.0 / SUPERSAMPLE);
        }
        double aq[3] = {q[0] - a->p[0], q[1] - a->p[1], q[2] - a->p[2]};
        double u = ab2 > 0 ? dot3(aq, ab) / ab2 : 0.0;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        double r = a->radius + u * (b->radius - a->radius);
        double foot[3] = {a->p[0] + u * ab[0], a->p[1] + u * ab[1], a->p[2] + u * ab[2]};
        double d = sqrt(dist2(q, foot));
        if (s < 0) {
            if (d - r >= hd)
                return 0.0;
            if (r - d >= hd)
                return 1.0;
            continue;
        }
        hits += d <= r;
    }
    return (double)hits / (SUPERSAMPLE * SUPERSAMPLE * SUPERSAMPLE);
}

/* voxels <- max over segments of the partial-volume fraction, as 0..65535. */
static void render_fractions(const VesselTree *t, const int dims[3], const double vox[3],
                             uint16_t *voxels)
{
    double hv[3] = {0.5 * vox[0], 0.5 * vox[1], 0.5 * vox[2]};
    double hd = sqrt(dot3(hv, hv));
    for (int i = 0; i < t->n_edges; i++) {
        const VesselEdge *g = &t->edges[i];
        for (int j = 0; j + 1 < g->n_pts; j++) {
            const VesselPoint *a = &g->pts[j];
            const VesselPoint *b = &g->pts[j + 1];
            double reach = (a->radius > b->radius ? a->radius : b->radius) + hd;
            int lo[3], hi[3];
            for (int k = 0; k < 3; k++) {
                double mn = a->p[k] < b->p[k] ? a->p[k] : b->p[k];
                double mx = a->p[k] > b->p[k] ? a->p[k] : b->p[k];
                lo[k] = (int)ceil((mn - reach) / vox[k]);
                hi[k] = (int)floor((mx + reach) / vox[k]);
                lo[k] = lo[k] < 0 ? 0 : lo[k];
                hi[k] = hi[k] > dims[k] - 1 ? dims[k] - 1 : hi[k];
            }
            for (int z = lo[2]; z <= hi[2]; z++)
                for (int y = lo[1]; y <= hi[1]; y++)
                    for (int x = lo[0]; x <= hi[0]; x++) {
                        double c[3] = {x * vox[0], y * vox[1], z * vox[2]};
                        double f = capsule_fraction(a, b, c, hv, hd);
                        size_t at = (size_t)x + (size_t)dims[0] * ((size_t)y + (size_t)dims[1] * z);
                        uint16_t q = (uint16_t)(f * 65535.0 + 0.5);
                        if (q > voxels[at])
                            voxels[at] = q;
                    }
        }
    }
}

void vessel_tree_render(const VesselTree *t, const int dims[3], const double voxel_mm[3],
                        double snr, double scale, uint64_t seed, uint64_t noise_index,
                        uint16_t *voxels)
{
    if (dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0)
        return;
    size_t n = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2];
    memset(voxels, 0, n * sizeof *voxels);
    if (t)
        render_fractions(t, dims, voxel_mm, voxels);

    /* Background texture: a few plane waves of 8..25 mm, evaluated along each row by rotating
     * (cos, sin) pairs instead of calling cos per voxel. */
    Philox rng;
    philox_init(&rng, seed, PHILOX_SYNTH, noise_index);
    double kvec[N_WAVES][3], phase[N_WAVES];
    for (int w = 0; w < N_WAVES; w++) {
        double d[3] = {philox_normal(&rng), philox_normal(&rng), philox_normal(&rng)};
        normalize3(d);
        double k = 2.0 * M_PI / uniform(&rng, 8.0, 25.0);
        for (int j = 0; j < 3; j++)
            kvec[w][j] = k * d[j];
        phase[w] = uniform(&rng, 0.0, 2.0 * M_PI);
    }
    double sigma = snr > 0.0 ? scale / snr : 0.0;
    size_t at = 0;
    for (int z = 0; z < dims[2]; z++)
        for (int y = 0; y < dims[1]; y++) {
            double re[N_WAVES], im[N_WAVES], step_re[N_WAVES], step_im[N_WAVES];
            for (int w = 0; w < N_WAVES; w++) {
                double ph = phase[w] + kvec[w][1] * y * voxel_mm[1] + kvec[w][2] * z * voxel_mm[2];
                re[w] = cos(ph);
                im[w] = sin(ph);
                step_re[w] = cos(kvec[w][0] * voxel_mm[0]);
                step_im[w] = sin(kvec[w][0] * voxel_mm[0]);
            }
            for (int x = 0; x < dims[0]; x++, at++) {
                double tex = 0.0;
                for (int w = 0; w < N_WAVES; w++) {
                    tex += re[w];
                    double r = re[w] * step_re[w] - im[w] * step_im[w];
                    im[w] = re[w] * step_im[w] + im[w] * step_re[w];
                    re[w] = r;
                }
                double bg = BACKGROUND * scale * (1.0 + TEXTURE * tex / N_WAVES);
                double f = voxels[at] / 65535.0;
                double v = bg + (scale - bg) * f;
                if (sigma > 0.0) {
                    /* Rician: magnitude of a complex signal with Gaussian noise in both parts. */
                    double nr = v + sigma * philox_normal(&rng);
                    double ni = sigma * philox_normal(&rng);
                    v = sqrt(nr * nr + ni * ni);
                }
                v = v < 0.0 ? 0.0 : v > 4095.0 ? 4095.0 : v;
                voxels[at] = (uint16_t)(v + 0.5);
            }
        }
}
