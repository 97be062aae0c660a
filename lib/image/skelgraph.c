/* skelgraph.c: skeleton voxels -> nodes (end points, junction clusters) -> branches traced
 * through degree-2 voxels -> one pass of spur pruning -> measures (skelgraph.h). */
#include "lib/image/skelgraph.h"

#include <math.h>
#include <string.h>

#include "lib/image/components.h"
#include "lib/util/mem.h"

/* Working state of a build: per voxel of the volume, its degree (-1 off the skeleton), its
 * node (-1 for degree-2 voxels) and whether a trace has passed it. */
typedef struct Build {
    SkelGraph *g;
    int nx, ny, nz;
    int d[26][3];
    int nd;
    int8_t *deg;
    int32_t *node;
    uint8_t *seen;
    int64_t cap_path;
} Build;

static int64_t at(const Build *b, int x, int y, int z)
{
    return ((int64_t)z * b->ny + y) * b->nx + x;
}

static void coords(const Build *b, int64_t i, int c[3])
{
    c[0] = (int)(i % b->nx), c[1] = (int)(i / b->nx % b->ny);
    c[2] = (int)(i / ((int64_t)b->nx * b->ny));
}

/* The skeleton neighbours of voxel i (linear indices, in offset order); returns their count. */
static int neighbours(const Build *b, int64_t i, int64_t out[26])
{
    int c[3], k = 0;
    coords(b, i, c);
    for (int j = 0; j < b->nd; j++) {
        int x = c[0] + b->d[j][0], y = c[1] + b->d[j][1], z = c[2] + b->d[j][2];
        if (x < 0 || y < 0 || z < 0 || x >= b->nx || y >= b->ny || z >= b->nz)
            continue;
        int64_t n = at(b, x, y, z);
        if (b->deg[n] >= 0)
            out[k++] = n;
    }
    return k;
}

static double step_mm(const double p[3], const double q[3])
{
    double dx = p[0] - q[0], dy = p[1] - q[1], dz = p[2] - q[2];
    return sqrt(dx * dx + dy * dy + dz * dz);
}

static void voxel_mm(const Build *b, int64_t i, double p[3])
{
    int c[3];
    coords(b, i, c);
    for (int a = 0; a < 3; a++)
        p[a] = c[a] * b->g->spacing[a];
}

static int push_path(Build *b, int64_t v)
{
    SkelGraph *g = b->g;
    if (g->n_path == b->cap_path) {
        int64_t nc = b->cap_path ? 2 * b->cap_path : 256;
        int64_t *t = mem_realloc(g->path, (size_t)nc * sizeof *t);
        if (!t)
            return -1;
        g->path = t, b->cap_path = nc;
    }
    g->path[g->n_path++] = v;
    return 0;
}

static SkelBranch *new_branch(Build *b)
{
    SkelGraph *g = b->g;
    if (g->n_branches == g->cap_branches) {
        int nc = g->cap_branches ? 2 * g->cap_branches : 32;
        SkelBranch *t = mem_realloc(g->branches, (size_t)nc * sizeof *t);
        if (!t)
            return NULL;
        g->branches = t, g->cap_branches = nc;
    }
    SkelBranch *br = &g->branches[g->n_branches++];
    memset(br, 0, sizeof *br);
    br->alive = 1, br->joined_into = -1;
    br->first = g->n_path;
    return br;
}

/* Walks from node voxel u through its degree-2 neighbour w to the next node voxel. */
static int trace(Build *b, int64_t u, int64_t w, Err *e)
{
    SkelGraph *g = b->g;
    SkelBranch *br = new_branch(b);
    if (!br)
        return err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
    int64_t prev = u, cur = w, nb[26];
    while (b->node[cur] < 0) {
        b->seen[cur] = 1;
        if (push_path(b, cur))
            return err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
        neighbours(b, cur, nb); /* degree 2: exactly two */
        int64_t next = nb[0] == prev ? nb[1] : nb[0];
        prev = cur, cur = next;
    }
    br->node[0] = br->traced[0] = b->node[u];
    br->node[1] = br->traced[1] = b->node[cur];
    br->n_voxels = g->n_path - br->first;
    return 0;
}

/* A closed chain of degree-2 voxels through start (no node on it). */
static int trace_cycle(Build *b, int64_t start, Err *e)
{
    SkelBranch *br = new_branch(b);
    if (!br)
        return err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
    int64_t prev = -1, cur = start, nb[26];
    for (;;) {
        b->seen[cur] = 1;
        if (push_path(b, cur))
            return err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
        neighbours(b, cur, nb);
        int64_t next = nb[0] == prev ? nb[1] : nb[0]; /* the first step takes nb[0] */
        if (next == start)
            break;
        prev = cur, cur = next;
    }
    br->node[0] = br->node[1] = br->traced[0] = br->traced[1] = -1;
    br->n_voxels = b->g->n_path - br->first;
    return 0;
}

/* Point j of a branch's polyline: the start node, its voxels, the end node (a cycle: its voxels,
 * indices taken modulo their count). */
static void branch_point(const Build *b, const SkelBranch *br, int64_t j, double p[3])
{
    const SkelGraph *g = b->g;
    if (br->node[0] < 0) {
        voxel_mm(b, g->path[br->first + (j % br->n_voxels + br->n_voxels) % br->n_voxels], p);
        return;
    }
    if (j <= 0 || j > br->n_voxels) {
        const double *q = g->nodes[br->node[j <= 0 ? 0 : 1]].pos_mm;
        p[0] = q[0], p[1] = q[1], p[2] = q[2];
        return;
    }
    voxel_mm(b, g->path[br->first + j - 1], p);
}

/* Both lengths of a branch: the voxel path (Skan's branch-distance) and the path smoothed by a
 * moving average of SKEL_SMOOTH points either side (the window shrinks towards the ends, which
 * stay put; a cycle wraps around), which removes most of the staircase a digital path adds to
 * an oblique line. */
static void branch_lengths(const Build *b, SkelBranch *br)
{
    int cycle = br->node[0] < 0;
    int64_t np = cycle ? br->n_voxels : br->n_voxels + 2; /* points */
    double raw = 0.0, smooth = 0.0, p[3], q[3], sp[3] = {0, 0, 0}, sq[3];
    for (int64_t j = 0; j < np + cycle; j++) {
        branch_point(b, br, j, q);
        int64_t w = SKEL_SMOOTH;
        if (!cycle) {
            if (w > j)
                w = j;
            if (w > np - 1 - j)
                w = np - 1 - j;
        }
        sq[0] = sq[1] = sq[2] = 0.0;
        for (int64_t k = j - w; k <= j + w; k++) {
            double r[3];
            branch_point(b, br, k, r);
            for (int a = 0; a < 3; a++)
                sq[a] += r[a] / (double)(2 * w + 1);
        }
        if (j > 0) {
            raw += step_mm(p, q);
            smooth += step_mm(sp, sq);
        }
        memcpy(p, q, sizeof p);
        memcpy(sp, sq, sizeof sp);
    }
    br->path_mm = raw;
    br->length_mm = smooth;
}

/* Junction clusters and end points into nodes, in raster order of their first voxel. */
static int make_nodes(Build *b, const int64_t *vox, int64_t nv, Err *e)
{
    SkelGraph *g = b->g;
    int64_t n_node_vox = 0;
    for (int64_t k = 0; k < nv; k++)
        n_node_vox += b->deg[vox[k]] != 2;
    g->nodes = mem_calloc((size_t)(n_node_vox ? n_node_vox : 1), sizeof *g->nodes);
    g->node_voxels = mem_alloc((size_t)(n_node_vox ? n_node_vox : 1) * sizeof *g->node_voxels);
    if (!g->nodes || !g->node_voxels)
        return err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
    int64_t filled = 0, nb[26];
    for (int64_t k = 0; k < nv; k++) {
        int64_t v = vox[k];
        if (b->deg[v] == 2 || b->node[v] >= 0)
            continue;
        int id = g->n_nodes++;
        SkelNode *nd = &g->nodes[id];
        nd->first = filled;
        nd->junction = b->deg[v] >= 3;
        b->node[v] = id;
        g->node_voxels[filled++] = v;
        /* a junction cluster: breadth-first over touching junction voxels */
        for (int64_t h = nd->first; nd->junction && h < filled; h++) {
            int m = neighbours(b, g->node_voxels[h], nb);
            for (int j = 0; j < m; j++)
                if (b->deg[nb[j]] >= 3 && b->node[nb[j]] < 0) {
                    b->node[nb[j]] = id;
                    g->node_voxels[filled++] = nb[j];
                }
        }
        nd->n_voxels = (int)(filled - nd->first);
        double s[3] = {0, 0, 0}, p[3];
        for (int64_t h = nd->first; h < filled; h++) {
            voxel_mm(b, g->node_voxels[h], p);
            for (int a = 0; a < 3; a++)
                s[a] += p[a];
        }
        for (int a = 0; a < 3; a++)
            nd->pos_mm[a] = s[a] / nd->n_voxels;
    }
    return 0;
}

static void set_types(SkelGraph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i].degree = 0;
    for (int k = 0; k < g->n_branches; k++) {
        SkelBranch *br = &g->branches[k];
        if (!br->alive || br->node[0] < 0)
            continue;
        g->nodes[br->node[0]].degree++;
        g->nodes[br->node[1]].degree++;
    }
    for (int k = 0; k < g->n_branches; k++) {
        SkelBranch *br = &g->branches[k];
        if (br->node[0] < 0) {
            br->type = SKEL_CYCLE;
            continue;
        }
        int ends = (g->nodes[br->node[0]].degree == 1) + (g->nodes[br->node[1]].degree == 1);
        br->type = ends == 2   ? SKEL_END_END
                   : ends == 1 ? SKEL_JUNCTION_END
                               : SKEL_JUNCTION_JUNCTION;
    }
}

int skel_graph_build(SkelGraph *g, const uint8_t *skel, const int dims[3], const double spacing[3],
                     Err *e)
{
    memset(g, 0, sizeof *g);
    memcpy(g->dims, dims, sizeof g->dims);
    memcpy(g->spacing, spacing, sizeof g->spacing);
    Build b = {.g = g, .nx = dims[0], .ny = dims[1], .nz = dims[2]};
    b.nd = cc_offsets(26, b.d);
    int64_t n = (int64_t)dims[0] * dims[1] * dims[2], nv = 0;
    for (int64_t i = 0; i < n; i++)
        nv += skel[i] != 0;
    b.deg = mem_alloc((size_t)(n ? n : 1));
    b.node = mem_alloc((size_t)(n ? n : 1) * sizeof *b.node);
    b.seen = mem_calloc((size_t)(n ? n : 1), 1);
    int64_t *vox = mem_alloc((size_t)(nv ? nv : 1) * sizeof *vox);
    int rc = 0;
    if (!b.deg || !b.node || !b.seen || !vox) {
        rc = err_set(e, ERR_NOMEM, "skeleton graph: out of memory for %lld voxels", (long long)n);
        goto out;
    }
    for (int64_t i = 0, k = 0; i < n; i++) {
        b.deg[i] = skel[i] ? 0 : -1;
        b.node[i] = -1;
        if (skel[i])
            vox[k++] = i;
    }
    int64_t nb[26];
    for (int64_t k = 0; k < nv; k++)
        b.deg[vox[k]] = (int8_t)neighbours(&b, vox[k], nb);
    if ((rc = make_nodes(&b, vox, nv, e)))
        goto out;
    /* branches from every node voxel, raster order; a chain is traced once (its voxels are
     * marked seen), and a pair of adjacent node voxels of different nodes makes a branch of
     * no interior, taken from its lower voxel */
    for (int64_t k = 0; k < nv && rc == 0; k++) {
        int64_t u = vox[k];
        if (b.node[u] < 0)
            continue;
        int m = neighbours(&b, u, nb);
        for (int j = 0; j < m && rc == 0; j++) {
            int64_t w = nb[j];
            if (b.node[w] >= 0) {
                if (b.node[w] == b.node[u] || w < u)
                    continue;
                SkelBranch *br = new_branch(&b);
                if (!br) {
                    rc = err_set(e, ERR_NOMEM, "skeleton graph: out of memory");
                    break;
                }
                br->node[0] = br->traced[0] = b.node[u];
                br->node[1] = br->traced[1] = b.node[w];
            } else if (!b.seen[w]) {
                rc = trace(&b, u, w, e);
            }
        }
    }
    for (int64_t k = 0; k < nv && rc == 0; k++)
        if (b.deg[vox[k]] == 2 && !b.seen[vox[k]])
            rc = trace_cycle(&b, vox[k], e);
    for (int k = 0; k < g->n_branches && rc == 0; k++)
        branch_lengths(&b, &g->branches[k]);
    if (rc == 0)
        set_types(g);
out:
    mem_free(b.deg), mem_free(b.node), mem_free(b.seen), mem_free(vox);
    if (rc)
        skel_graph_free(g);
    return rc;
}

/* The alive branch other than `not` with an end at node v, and which end; -1 when none. */
static int branch_at(const SkelGraph *g, int v, int not, int *end)
{
    for (int k = 0; k < g->n_branches; k++) {
        const SkelBranch *br = &g->branches[k];
        if (!br->alive || k == not )
            continue;
        for (int s = 0; s < 2; s++)
            if (br->node[s] == v) {
                *end = s;
                return k;
            }
    }
    return -1;
}

void skel_graph_prune(SkelGraph *g, double min_spur_mm)
{
    set_types(g);
    if (min_spur_mm > 0) {
        for (int k = 0; k < g->n_branches; k++) {
            SkelBranch *br = &g->branches[k];
            int loop = br->node[0] >= 0 && br->node[0] == br->node[1];
            int spur = br->type == SKEL_END_END || br->type == SKEL_JUNCTION_END || loop;
            if (br->alive && spur && br->length_mm < min_spur_mm)
                br->alive = 0;
        }
        set_types(g);
    }
    /* join the two branches at every node of degree 2 (a junction no more) */
    for (int v = 0; v < g->n_nodes; v++) {
        if (g->nodes[v].degree != 2)
            continue;
        int e1 = 0, e2 = 0, a = branch_at(g, v, -1, &e1);
        SkelBranch *ba = &g->branches[a];
        if (ba->node[0] == v && ba->node[1] == v) {
            /* a loop through v alone: an isolated cycle now */
            ba->node[0] = ba->node[1] = -1;
            g->nodes[v].degree = 0;
            continue;
        }
        int c = branch_at(g, v, a, &e2);
        SkelBranch *bc = &g->branches[c];
        ba->node[e1] = bc->node[1 - e2];
        ba->length_mm += bc->length_mm;
        ba->path_mm += bc->path_mm;
        bc->alive = 0;
        bc->joined_into = a;
        /* when both ends now meet at one node of degree 2, that node, later in the loop, turns
         * the branch into a cycle (a node already visited has no branch ends left) */
        g->nodes[v].degree = 0;
    }
    set_types(g);
}

void skel_graph_measures(const SkelGraph *g, SkelMeasures *m)
{
    memset(m, 0, sizeof *m);
    for (int k = 0; k < g->n_branches; k++) {
        const SkelBranch *br = &g->branches[k];
        if (!br->alive) {
            m->pruned += br->joined_into < 0;
            continue;
        }
        m->branches++;
        m->length_mm += br->length_mm;
        m->path_mm += br->path_mm;
        m->by_type[br->type]++;
    }
    for (int v = 0; v < g->n_nodes; v++) {
        m->junctions += g->nodes[v].degree >= 3;
        m->end_points += g->nodes[v].degree == 1;
    }
    m->mean_branch_mm = m->branches ? m->length_mm / m->branches : 0.0;
}

/* Distance from p along unit vector dir, by steps h, while the nearest voxel is in mask. */
static double ray_in_mask(const SkelGraph *g, const uint8_t *mask, const double p[3],
                          const double dir[3], double max_mm, double h)
{
    const int *d = g->dims;
    double t = 0.0;
    while (t + h <= max_mm) {
        int64_t c[3];
        for (int a = 0; a < 3; a++)
            c[a] = (int64_t)floor((p[a] + (t + h) * dir[a]) / g->spacing[a] + 0.5);
        if (c[0] < 0 || c[1] < 0 || c[2] < 0 || c[0] >= d[0] || c[1] >= d[1] || c[2] >= d[2] ||
            !mask[(c[2] * d[1] + c[1]) * d[0] + c[0]])
            break;
        t += h;
    }
    return t;
}

/* Two unit vectors across dir (in the image plane for a 2D image: w is then 0). */
static void orthonormal(const double dir[3], double u[3], double w[3], int is3d)
{
    if (!is3d) {
        u[0] = -dir[1], u[1] = dir[0], u[2] = 0.0;
        w[0] = w[1] = w[2] = 0.0;
        return;
    }
    double a[3] = {0, 0, 0};
    int k = fabs(dir[0]) <= fabs(dir[1]) ? (fabs(dir[0]) <= fabs(dir[2]) ? 0 : 2)
                                         : (fabs(dir[1]) <= fabs(dir[2]) ? 1 : 2);
    a[k] = 1.0;
    /* u = a x dir normalised, w = dir x u */
    u[0] = a[1] * dir[2] - a[2] * dir[1];
    u[1] = a[2] * dir[0] - a[0] * dir[2];
    u[2] = a[0] * dir[1] - a[1] * dir[0];
    double n = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    for (int i = 0; i < 3; i++)
        u[i] /= n;
    w[0] = dir[1] * u[2] - dir[2] * u[1];
    w[1] = dir[2] * u[0] - dir[0] * u[2];
    w[2] = dir[0] * u[1] - dir[1] * u[0];
}

double skel_graph_end_extension(const SkelGraph *g, const uint8_t *mask, double max_mm, double *ext)
{
    const int *d = g->dims;
    const double *sp = g->spacing;
    double h = sp[0] < sp[1] ? sp[0] : sp[1], total = 0.0;
    if (d[2] > 1 && sp[2] < h)
        h = sp[2];
    h /= 10.0;
    for (int v = 0; v < g->n_nodes; v++) {
        if (ext)
            ext[v] = 0.0;
        if (g->nodes[v].degree != 1)
            continue;
        /* the traced branch (alive or joined into one) that ends here */
        const SkelBranch *br = NULL;
        int s = 0;
        for (int k = 0; k < g->n_branches && !br; k++) {
            const SkelBranch *c = &g->branches[k];
            if (!c->alive && c->joined_into < 0)
                continue;
            for (s = 0; s < 2; s++)
                if (c->traced[s] == v) {
                    br = c;
                    break;
                }
        }
        if (!br)
            continue;
        const double *p = g->nodes[v].pos_mm;
        double back[3] = {0, 0, 0};
        int64_t nb = br->n_voxels < SKEL_SMOOTH + 1 ? br->n_voxels : SKEL_SMOOTH + 1;
        if (nb == 0) {
            const double *q = g->nodes[br->traced[1 - s]].pos_mm;
            back[0] = q[0], back[1] = q[1], back[2] = q[2];
        }
        for (int64_t j = 0; j < nb; j++) {
            int64_t i = g->path[br->first + (s == 0 ? j : br->n_voxels - 1 - j)];
            int64_t c[3] = {i % d[0], i / d[0] % d[1], i / ((int64_t)d[0] * d[1])};
            for (int a = 0; a < 3; a++)
                back[a] += c[a] * sp[a] / (double)nb;
        }
        double dir[3], norm = 0.0;
        for (int a = 0; a < 3; a++) {
            dir[a] = p[a] - back[a];
            norm += dir[a] * dir[a];
        }
        if (!(norm > 0))
            continue;
        norm = sqrt(norm);
        for (int a = 0; a < 3; a++)
            dir[a] /= norm;
        /* along the end direction to the mask's edge, then less the object's radius there
         * (the mean distance to the edge over 8 directions across it): the skeleton of a tube
         * with a rounded end should stop where the rounding begins */
        double t = ray_in_mask(g, mask, p, dir, max_mm, h);
        double u[3], w[3], r = 0.0;
        orthonormal(dir, u, w, d[2] > 1);
        int nr = d[2] > 1 ? 8 : 2;
        for (int k = 0; k < nr; k++) {
            double ang = 2.0 * M_PI * k / nr, q[3];
            for (int a = 0; a < 3; a++)
                q[a] = cos(ang) * u[a] + sin(ang) * w[a];
            r += ray_in_mask(g, mask, p, q, max_mm, h) / nr;
        }
        t = t > r ? t - r : 0.0;
        if (ext)
            ext[v] = t;
        total += t;
    }
    return total;
}

/* The line a traced branch follows over the stretch from_mm..to_mm of voxel path away from its
 * end s (counted from the end's node centroid): through the centroid c of the stretch's voxels,
 * along the unit d from the centroid of its nearer half to that of its farther half (away from
 * the node). 0 when the branch does not reach two thirds of the way through the stretch. */
static int branch_line(const SkelGraph *g, const SkelBranch *br, int s, double from_mm,
                       double to_mm, double c[3], double d[3])
{
    const int *dm = g->dims;
    double prev[3], arc = 0.0, half[2][3] = {{0}}, mid = 0.5 * (from_mm + to_mm);
    int n[2] = {0, 0};
    memcpy(prev, g->nodes[br->traced[s]].pos_mm, sizeof prev);
    for (int64_t j = 0; j < br->n_voxels; j++) {
        int64_t i = g->path[br->first + (s == 0 ? j : br->n_voxels - 1 - j)];
        int64_t v[3] = {i % dm[0], i / dm[0] % dm[1], i / ((int64_t)dm[0] * dm[1])};
        double p[3];
        for (int a = 0; a < 3; a++)
            p[a] = v[a] * g->spacing[a];
        arc += step_mm(prev, p);
        memcpy(prev, p, sizeof prev);
        if (arc < from_mm)
            continue;
        if (arc > to_mm)
            break;
        int far = arc > mid;
        for (int a = 0; a < 3; a++)
            half[far][a] += p[a];
        n[far]++;
    }
    if (!n[0] || !n[1] || arc < from_mm + 2.0 * (to_mm - from_mm) / 3.0)
        return 0;
    double norm = 0.0;
    for (int a = 0; a < 3; a++) {
        c[a] = (half[0][a] + half[1][a]) / (n[0] + n[1]);
        d[a] = half[1][a] / n[1] - half[0][a] / n[0];
        norm += d[a] * d[a];
    }
    if (!(norm > 0))
        return 0;
    for (int a = 0; a < 3; a++)
        d[a] /= sqrt(norm);
    return 1;
}

static double det3(const double m[3][3])
{
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
           m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

double skel_graph_junction_correction(const SkelGraph *g, const double line_mm[2],
                                      double max_shift_mm, double *corr)
{
    enum { MAX_LINES = 16 };
    double total = 0.0;
    for (int v = 0; v < g->n_nodes; v++) {
        if (corr)
            corr[v] = 0.0;
        if (g->nodes[v].degree < 3)
            continue;
        /* the point x nearest to every line (c_i, d_i) in least squares solves
         * sum (I - d_i d_i^T) x = sum (I - d_i d_i^T) c_i */
        double m[3][3] = {{0}}, rhs[3] = {0}, dir[MAX_LINES][3];
        int nl = 0;
        for (int k = 0; k < g->n_branches; k++) {
            const SkelBranch *br = &g->branches[k];
            if ((!br->alive && br->joined_into < 0) || br->traced[0] < 0)
                continue;
            for (int s = 0; s < 2 && nl < MAX_LINES; s++) {
                double c[3], d[3];
                if (br->traced[s] != v || !branch_line(g, br, s, line_mm[0], line_mm[1], c, d))
                    continue;
                memcpy(dir[nl], d, sizeof d);
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        double w = (a == b) - d[a] * d[b];
                        m[a][b] += w;
                        rhs[a] += w * c[b];
                    }
                nl++;
            }
        }
        /* two lines at angle t give det = 2 sin^2 t: nearly parallel lines meet nowhere useful */
        double det = det3(m);
        if (nl < 2 || !(det > 1e-3))
            continue;
        double x[3];
        for (int a = 0; a < 3; a++) {
            double t[3][3];
            memcpy(t, m, sizeof t);
            for (int b = 0; b < 3; b++)
                t[b][a] = rhs[b];
            x[a] = det3(t) / det; /* Cramer's rule */
        }
        const double *node = g->nodes[v].pos_mm;
        if (step_mm(x, node) > max_shift_mm)
            continue;
        /* moving the junction from the node to x lengthens each branch by the move's
         * component against the branch's direction d (to first order: node and x on the
         * lines): together (node - x) . sum d */
        double cv = 0.0;
        for (int i = 0; i < nl; i++)
            for (int a = 0; a < 3; a++)
                cv += (node[a] - x[a]) * dir[i][a];
        if (corr)
            corr[v] = cv;
        total += cv;
    }
    return total;
}

int64_t skel_graph_paint(const SkelGraph *g, uint8_t *img, uint8_t branch_value, uint8_t node_value)
{
    int64_t painted = 0;
    for (int k = 0; k < g->n_branches; k++) {
        const SkelBranch *br = &g->branches[k];
        if (!br->alive && br->joined_into < 0)
            continue;
        for (int64_t j = 0; j < br->n_voxels; j++, painted++)
            img[g->path[br->first + j]] = branch_value;
    }
    /* nodes still touched by a branch: its ends and the joints of joined branches */
    for (int k = 0; k < g->n_branches; k++) {
        const SkelBranch *br = &g->branches[k];
        if ((!br->alive && br->joined_into < 0) || br->node[0] < 0)
            continue;
        for (int s = 0; s < 2; s++) {
            const SkelNode *nd = &g->nodes[br->node[s]];
            for (int j = 0; j < nd->n_voxels; j++) {
                int64_t v = g->node_voxels[nd->first + j];
                if (img[v] != node_value) {
                    img[v] = node_value;
                    painted++;
                }
            }
        }
    }
    return painted;
}

void skel_graph_free(SkelGraph *g)
{
    mem_free(g->nodes), mem_free(g->branches), mem_free(g->path), mem_free(g->node_voxels);
    memset(g, 0, sizeof *g);
}
