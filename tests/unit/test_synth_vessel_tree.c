/* test_synth_vessel_tree.c: the synthetic vessel tree (stages/synth/vessel_tree.c).
 *
 * The tree is the ground truth of the vessels stage, so its counts must be exact and its
 * geometry must let a skeleton recover it. Checked here: every branch count 1..15 is drawn
 * exactly; growth adds exactly the asked branches and length; branch count and length agree with
 * independent recomputations from the graph and the polylines; containment, edge lengths and the
 * clearance rules of vessel_tree.h hold after drawing and after growing; everything is a pure
 * function of the seed; the rendered volume is bright on the vessels, dark away from them, with
 * the asked SNR, and fast; and every allocation failure unwinds with ERR_NOMEM and no leak. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "stages/synth/vessel_tree.h"

/* The speed check is meaningful only in an optimized, uninstrumented build. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
#define INSTRUMENTED 1
#else
#define INSTRUMENTED 0
#endif

static VesselParams params(int branches)
{
    return (VesselParams){.extent = {40.0, 40.0, 24.0},
                          .initial_branches = branches,
                          .min_branch_mm = 3.0,
                          .root_radius_mm = 0.8};
}

static double dist(const double a[3], const double b[3])
{
    return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                (a[2] - b[2]) * (a[2] - b[2]));
}

static double dist_to_segment(const double q[3], const double a[3], const double b[3])
{
    double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    double aq[3] = {q[0] - a[0], q[1] - a[1], q[2] - a[2]};
    double ab2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
    double u = ab2 > 0 ? (aq[0] * ab[0] + aq[1] * ab[1] + aq[2] * ab[2]) / ab2 : 0.0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double foot[3] = {a[0] + u * ab[0], a[1] + u * ab[1], a[2] + u * ab[2]};
    return dist(q, foot);
}

/* Length from the polylines, written apart from the library's. */
static double polyline_length(const VesselEdge *g)
{
    double len = 0.0;
    for (int k = 1; k < g->n_pts; k++)
        len += dist(g->pts[k].p, g->pts[k - 1].p);
    return len;
}

static int degree(const VesselTree *t, int v)
{
    int d = 0;
    for (int i = 0; i < t->n_edges; i++)
        d += (t->edges[i].from == v) + (t->edges[i].to == v);
    return d;
}

static int is_root(const VesselTree *t, int v)
{
    for (int i = 0; i < t->n_edges; i++)
        if (t->edges[i].to == v)
            return 0;
    return 1;
}

/* Branch count by the header's definition, counted another way: the graph's nodes are the roots
 * and the nodes of degree other than 2; each branch has two ends among them, so branches = (sum
 * of their degrees) / 2. */
static int branches_by_degrees(const VesselTree *t)
{
    int sum = 0;
    for (int v = 0; v < t->n_nodes; v++) {
        int d = degree(t, v);
        if (d != 2 || is_root(t, v))
            sum += d;
    }
    return sum / 2;
}

static int share_node(const VesselEdge *a, const VesselEdge *b, int *node)
{
    int ends_a[2] = {a->from, a->to};
    int ends_b[2] = {b->from, b->to};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (ends_a[i] == ends_b[j]) {
                *node = ends_a[i];
                return 1;
            }
    return 0;
}

/* Clearance between two edges (vessel_tree.h). Returns the worst margin (< 0: violated). */
static double clearance_margin(const VesselTree *t, int i, int j)
{
    const VesselEdge *a = &t->edges[i];
    const VesselEdge *b = &t->edges[j];
    int node;
    double worst = INFINITY;
    if (share_node(a, b, &node)) {
        /* Meeting edges: the bound ramps up from the shared node, point to point. */
        const double *c = t->nodes[node];
        for (int k = 0; k < a->n_pts; k++)
            for (int l = 0; l < b->n_pts; l++) {
                double full = a->pts[k].radius + b->pts[l].radius + VESSEL_TREE_GAP_MM;
                double dp = dist(a->pts[k].p, c);
                double dq = dist(b->pts[l].p, c);
                double s = (dp > dq ? dp : dq) / (2.0 * full);
                double need = full * (s < 1.0 ? s : 1.0);
                double m = dist(a->pts[k].p, b->pts[l].p) - need;
                worst = m < worst ? m : worst;
            }
        return worst;
    }
    /* Edges that do not meet: the full gap, point to segment, both ways. */
    for (int pass = 0; pass < 2; pass++) {
        const VesselEdge *p = pass ? b : a;
        const VesselEdge *q = pass ? a : b;
        for (int k = 0; k < p->n_pts; k++)
            for (int l = 0; l + 1 < q->n_pts; l++) {
                double rq = fmin(q->pts[l].radius, q->pts[l + 1].radius);
                double need = p->pts[k].radius + rq + VESSEL_TREE_GAP_MM;
                double m = dist_to_segment(p->pts[k].p, q->pts[l].p, q->pts[l + 1].p) - need;
                worst = m < worst ? m : worst;
            }
    }
    return worst;
}

/* Every structural and geometric promise of vessel_tree.h. max_junction: the highest degree a
 * junction may have (3 for drawn trees). */
static void check_tree(const VesselTree *t, const VesselParams *p, int max_junction)
{
    assert_true(t->n_edges >= 1);
    double total = 0.0;
    for (int i = 0; i < t->n_edges; i++) {
        const VesselEdge *g = &t->edges[i];
        assert_true(g->from >= 0 && g->from < t->n_nodes);
        assert_true(g->to >= 0 && g->to < t->n_nodes);
        assert_true(g->n_pts >= 2);
        assert_memory_equal(g->pts[0].p, t->nodes[g->from], sizeof t->nodes[0]);
        assert_memory_equal(g->pts[g->n_pts - 1].p, t->nodes[g->to], sizeof t->nodes[0]);
        for (int k = 0; k < g->n_pts; k++) {
            for (int a = 0; a < 3; a++) {
                assert_true(g->pts[k].p[a] >= VESSEL_TREE_MARGIN_MM - 1e-9);
                assert_true(g->pts[k].p[a] <= p->extent[a] - VESSEL_TREE_MARGIN_MM + 1e-9);
            }
            assert_true(g->pts[k].radius >= VESSEL_TREE_MIN_RADIUS_MM - 1e-12);
            assert_true(g->pts[k].radius <= p->root_radius_mm + 1e-12);
            if (k)
                assert_true(dist(g->pts[k].p, g->pts[k - 1].p) <= VESSEL_TREE_STEP_MM + 1e-9);
        }
        double len = polyline_length(g);
        assert_true(len >= p->min_branch_mm - 1e-9); /* terminal or not */
        total += len;
    }
    /* A forest: each node has at most one parent, roots and end points have degree 1,
     * junctions 3 (4 after a sprout at a junction), no degree-2 nodes, no cycles. */
    for (int v = 0; v < t->n_nodes; v++) {
        int parents = 0;
        for (int i = 0; i < t->n_edges; i++)
            parents += t->edges[i].to == v;
        assert_true(parents <= 1);
        int d = degree(t, v);
        assert_true(d == 1 || (d >= 3 && d <= max_junction));
        if (is_root(t, v))
            assert_int_equal(d, 1);
        int u = v;
        int steps = 0;
        while (!is_root(t, u) && steps <= t->n_nodes) {
            for (int i = 0; i < t->n_edges; i++)
                if (t->edges[i].to == u) {
                    u = t->edges[i].from;
                    break;
                }
            steps++;
        }
        assert_true(steps <= t->n_nodes);
    }
    assert_int_equal(vessel_tree_branches(t), branches_by_degrees(t));
    assert_true(fabs(vessel_tree_length_mm(t) - total) <= 1e-12 * total);
    for (int i = 0; i < t->n_edges; i++)
        for (int j = i + 1; j < t->n_edges; j++)
            assert_true(clearance_margin(t, i, j) >= -1e-9);
}

// ---------------------------------------------------------------------------------------------
// Drawing

static void test_every_count_is_drawn_exactly(void **state)
{
    (void)state;
    for (int n = 1; n <= 15; n++)
        for (uint64_t seed = 0; seed < 16; seed++) {
            VesselParams p = params(n);
            Philox rng;
            philox_init(&rng, seed, PHILOX_SYNTH, (uint64_t)n);
            VesselTree t;
            Err e = {0};
            assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
            assert_int_equal(vessel_tree_branches(&t), n);
            assert_int_equal(t.n_edges, n); /* no degree-2 chains to merge */
            assert_memory_equal(t.extent, p.extent, sizeof t.extent);
            check_tree(&t, &p, 3);
            vessel_tree_free(&t);
        }
}

static void test_draw_other_extents_and_minimums(void **state)
{
    (void)state;
    VesselParams variants[] = {
        {.extent = {48, 48, 30}, .initial_branches = 9, .min_branch_mm = 4, .root_radius_mm = 1.0},
        {.extent = {30, 30, 20}, .initial_branches = 6, .min_branch_mm = 2, .root_radius_mm = 0.6},
        {.extent = {40, 40, 24}, .initial_branches = 11, .min_branch_mm = 5, .root_radius_mm = 0.8},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (uint64_t seed = 0; seed < 8; seed++) {
            Philox rng;
            philox_init(&rng, seed, PHILOX_SYNTH, 100 + v);
            VesselTree t;
            Err e = {0};
            assert_int_equal(vessel_tree_draw(&t, &variants[v], &rng, &e), 0);
            assert_int_equal(vessel_tree_branches(&t), variants[v].initial_branches);
            check_tree(&t, &variants[v], 3);
            vessel_tree_free(&t);
        }
}

static void test_draw_rejects_bad_params(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    VesselParams bad[] = {params(0), params(7), params(7), params(7), params(7)};
    bad[1].min_branch_mm = 0.0;
    bad[2].root_radius_mm = -1.0;
    bad[3].extent[2] = 5.0;
    bad[4].min_branch_mm = 40.0; /* 7 branches of 46 mm cannot fit 40 x 40 x 24 */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Philox rng;
        philox_init(&rng, 1, PHILOX_SYNTH, 0);
        VesselTree t;
        Err e = {0};
        assert_int_equal(vessel_tree_draw(&t, &bad[i], &rng, &e), ERR_CONFIG);
        assert_non_null(strstr(e.msg, "vessel tree"));
        assert_int_equal(t.n_edges, 0);
        vessel_tree_free(&t);
    }
    assert_int_equal(mem_bytes_in_use(), base);
}

/* root -> a -> b, b -> c, b -> d, and a separate vessel e -> f: node a has degree 2 and is not
 * a root, so root-a-b is one branch: 3 + 1 branches. */
static void test_branch_definition_merges_chains(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    static const double pos[7][3] = {{10, 30, 12}, {10, 25, 12}, {10, 20, 12}, {6, 15, 12},
                                     {14, 15, 12}, {25, 30, 12}, {25, 22, 12}};
    static const int ends[5][2] = {{0, 1}, {1, 2}, {2, 3}, {2, 4}, {5, 6}};
    VesselTree t = {.n_nodes = 7, .n_edges = 5, .extent = {40, 40, 24}};
    t.nodes = mem_alloc(sizeof pos);
    t.edges = mem_calloc(5, sizeof *t.edges);
    assert_non_null(t.nodes);
    assert_non_null(t.edges);
    memcpy(t.nodes, pos, sizeof pos);
    double expect = 0.0;
    for (int i = 0; i < 5; i++) {
        VesselEdge *g = &t.edges[i];
        g->from = ends[i][0];
        g->to = ends[i][1];
        g->n_pts = 3; /* a bent polyline through an offset midpoint */
        g->pts = mem_alloc(3 * sizeof *g->pts);
        assert_non_null(g->pts);
        for (int a = 0; a < 3; a++) {
            g->pts[0].p[a] = pos[g->from][a];
            g->pts[2].p[a] = pos[g->to][a];
            g->pts[1].p[a] = 0.5 * (pos[g->from][a] + pos[g->to][a]) + (a == 2 ? 1.0 : 0.0);
        }
        for (int k = 0; k < 3; k++)
            g->pts[k].radius = 0.5;
        expect += dist(g->pts[0].p, g->pts[1].p) + dist(g->pts[1].p, g->pts[2].p);
    }
    assert_int_equal(vessel_tree_branches(&t), 4);
    assert_int_equal(branches_by_degrees(&t), 4);
    assert_true(fabs(vessel_tree_length_mm(&t) - expect) < 1e-12);
    vessel_tree_free(&t);
    assert_int_equal(t.n_edges, 0);
    vessel_tree_free(&t); /* freeing twice is harmless */
    assert_int_equal(mem_bytes_in_use(), base);
}

// ---------------------------------------------------------------------------------------------
// Growth

static void test_grow_adds_exact_branches_and_length(void **state)
{
    (void)state;
    static const int sizes[] = {1, 2, 3, 5, 7, 9, 12, 15};
    int tried = 0;
    int refused = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (uint64_t seed = 0; seed < 8; seed++) {
            VesselParams p = params(sizes[si]);
            Philox rng;
            philox_init(&rng, seed, PHILOX_SYNTH, 1000 + si);
            VesselTree t;
            Err e = {0};
            assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
            for (int add = 0; add <= 6; add++) {
                /* The paper's change: +12.4 mm (SD 3.2); at least what add branches need. */
                double len = 12.4 + 3.2 * philox_normal(&rng);
                double least = vessel_tree_grow_min_length_mm(add, &p);
                len = len > least ? len : least + philox_uniform(&rng);
                VesselTree g;
                assert_int_equal(vessel_tree_copy(&g, &t, &e), 0);
                double before = vessel_tree_length_mm(&g);
                int rc = vessel_tree_grow(&g, add, len, &p, &rng, &e);
                tried++;
                if (rc == ERR_CONFIG && sizes[si] <= 2 && add >= 4) {
                    /* A tree of one or two edges may have no room to split three times; the
                     * refusal must leave it untouched. */
                    refused++;
                    assert_int_equal(vessel_tree_branches(&g), sizes[si]);
                    assert_true(vessel_tree_length_mm(&g) == before);
                    vessel_tree_free(&g);
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(vessel_tree_branches(&g), sizes[si] + add);
                double grown = vessel_tree_length_mm(&g) - before;
                assert_true(fabs(grown - len) <= 1e-9 * len);
                check_tree(&g, &p, 4);
                vessel_tree_free(&g);
            }
            vessel_tree_free(&t);
        }
    assert_true(refused * 10 < tried);
}

/* Visits over two years: growing several times in a row keeps every promise. */
static void test_grow_repeatedly(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 12; seed++) {
        VesselParams p = params(5 + (int)(seed % 5));
        Philox rng;
        philox_init(&rng, seed, PHILOX_SYNTH, 77);
        VesselTree t;
        Err e = {0};
        assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
        int branches = p.initial_branches;
        double length = vessel_tree_length_mm(&t);
        for (int visit = 0; visit < 3; visit++) {
            int add = (int)philox_below(&rng, 4);
            double len = add ? 4.0 + 3.0 * add : 2.5 * visit;
            assert_int_equal(vessel_tree_grow(&t, add, len, &p, &rng, &e), 0);
            branches += add;
            length += len;
            assert_int_equal(vessel_tree_branches(&t), branches);
            assert_true(fabs(vessel_tree_length_mm(&t) - length) <= 1e-9 * length);
            check_tree(&t, &p, 4);
        }
        vessel_tree_free(&t);
    }
}

static void test_grow_refuses_impossible_requests(void **state)
{
    (void)state;
    VesselParams p = params(7);
    Philox rng;
    philox_init(&rng, 5, PHILOX_SYNTH, 0);
    VesselTree t;
    Err e = {0};
    assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
    size_t base = mem_bytes_in_use();
    double len = vessel_tree_length_mm(&t);
    assert_true(vessel_tree_grow_min_length_mm(0, &p) == 0.0);
    assert_true(vessel_tree_grow_min_length_mm(1, &p) == 3.0);
    assert_true(vessel_tree_grow_min_length_mm(2, &p) == 3.0);
    assert_true(vessel_tree_grow_min_length_mm(5, &p) == 9.0);
    assert_true(vessel_tree_grow_min_length_mm(6, &p) == 9.0);
    assert_int_equal(vessel_tree_grow(&t, 5, 8.0, &p, &rng, &e), ERR_CONFIG);
    assert_non_null(strstr(e.msg, "at least 9"));
    assert_int_equal(vessel_tree_grow(&t, 2, 0.0, &p, &rng, &e), ERR_CONFIG);
    assert_int_equal(vessel_tree_grow(&t, -1, 5.0, &p, &rng, &e), ERR_CONFIG);
    assert_int_equal(vessel_tree_grow(&t, 0, -1.0, &p, &rng, &e), ERR_CONFIG);
    assert_int_equal(vessel_tree_grow(&t, 0, NAN, &p, &rng, &e), ERR_CONFIG);
    assert_int_equal(vessel_tree_grow(&t, 0, 0.0, &p, &rng, &e), 0); /* nothing to do */
    assert_int_equal(vessel_tree_branches(&t), 7);
    assert_true(vessel_tree_length_mm(&t) == len);
    assert_int_equal(mem_bytes_in_use(), base);
    vessel_tree_free(&t);
}

// ---------------------------------------------------------------------------------------------
// Copy and determinism

static void assert_trees_equal(const VesselTree *a, const VesselTree *b)
{
    assert_int_equal(a->n_nodes, b->n_nodes);
    assert_int_equal(a->n_edges, b->n_edges);
    assert_memory_equal(a->extent, b->extent, sizeof a->extent);
    assert_memory_equal(a->nodes, b->nodes, (size_t)a->n_nodes * sizeof a->nodes[0]);
    for (int i = 0; i < a->n_edges; i++) {
        assert_int_equal(a->edges[i].from, b->edges[i].from);
        assert_int_equal(a->edges[i].to, b->edges[i].to);
        assert_int_equal(a->edges[i].n_pts, b->edges[i].n_pts);
        assert_memory_equal(a->edges[i].pts, b->edges[i].pts,
                            (size_t)a->edges[i].n_pts * sizeof a->edges[i].pts[0]);
    }
}

static void draw_and_grow(uint64_t seed, VesselTree *t)
{
    VesselParams p = params(9);
    Philox rng;
    philox_init(&rng, seed, PHILOX_SYNTH, 3);
    Err e = {0};
    assert_int_equal(vessel_tree_draw(t, &p, &rng, &e), 0);
    assert_int_equal(vessel_tree_grow(t, 3, 12.4, &p, &rng, &e), 0);
}

static void test_same_seed_same_tree_and_bytes(void **state)
{
    (void)state;
    VesselTree a, b, c;
    draw_and_grow(42, &a);
    draw_and_grow(42, &b);
    draw_and_grow(43, &c);
    assert_trees_equal(&a, &b);
    assert_true(a.n_nodes != c.n_nodes ||
                memcmp(a.nodes, c.nodes, (size_t)a.n_nodes * sizeof a.nodes[0]) != 0);

    static const int dims[3] = {64, 64, 40};
    static const double vox[3] = {0.625, 0.625, 0.6};
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    uint16_t *va = mem_alloc(n * sizeof *va);
    uint16_t *vb = mem_alloc(n * sizeof *vb);
    assert_non_null(va);
    assert_non_null(vb);
    vessel_tree_render(&a, dims, vox, 20.0, 3000.0, 42, 7, va);
    vessel_tree_render(&b, dims, vox, 20.0, 3000.0, 42, 7, vb);
    assert_memory_equal(va, vb, n * sizeof *va);
    vessel_tree_render(&b, dims, vox, 20.0, 3000.0, 42, 8, vb); /* another noise stream */
    assert_true(memcmp(va, vb, n * sizeof *va) != 0);
    mem_free(va);
    mem_free(vb);

    VesselTree d;
    Err e = {0};
    assert_int_equal(vessel_tree_copy(&d, &a, &e), 0);
    assert_trees_equal(&a, &d);
    assert_true(d.edges[0].pts != a.edges[0].pts); /* deep */
    d.edges[0].pts[1].p[0] += 1.0;
    assert_true(d.edges[0].pts[1].p[0] != a.edges[0].pts[1].p[0]);
    vessel_tree_free(&a);
    vessel_tree_free(&b);
    vessel_tree_free(&c);
    vessel_tree_free(&d);
}

// ---------------------------------------------------------------------------------------------
// Rendering

static const int rdims[3] = {64, 64, 40};
static const double rvox[3] = {0.625, 0.625, 0.6};

static size_t voxel_at(const double p[3])
{
    int idx[3];
    for (int a = 0; a < 3; a++)
        idx[a] = (int)lround(p[a] / rvox[a]);
    return (size_t)idx[0] + (size_t)rdims[0] * ((size_t)idx[1] + (size_t)rdims[1] * idx[2]);
}

/* A straight tube of radius 1.1 mm along x, rendered without noise: full signal on the axis, a
 * partial-volume edge that falls monotonically, background (0.12 scale +-25%) beyond it. */
static void test_render_tube_profile(void **state)
{
    (void)state;
    VesselPoint pts[41];
    for (int k = 0; k <= 40; k++)
        pts[k] = (VesselPoint){.p = {5.0 + 0.5 * k, 20.0, 12.0}, .radius = 1.1};
    double nodes[2][3] = {{5.0, 20.0, 12.0}, {25.0, 20.0, 12.0}};
    VesselEdge edge = {.from = 0, .to = 1, .pts = pts, .n_pts = 41};
    VesselTree t = {
        .nodes = nodes, .n_nodes = 2, .edges = &edge, .n_edges = 1, .extent = {40, 40, 24}};
    size_t n = (size_t)rdims[0] * rdims[1] * rdims[2];
    uint16_t *v = mem_alloc(n * sizeof *v);
    assert_non_null(v);
    vessel_tree_render(&t, rdims, rvox, 0.0, 3000.0, 1, 0, v);
    int x = 24;  /* 15 mm, mid-tube */
    int z = 20;  /* 12 mm: the axis */
    int y0 = 32; /* 20 mm: the axis */
    size_t row = (size_t)rdims[0] * (size_t)rdims[1] * z;
    assert_true(v[row + (size_t)rdims[0] * y0 + x] >= 2990);
    int prev = v[row + (size_t)rdims[0] * y0 + x];
    for (int y = y0 + 1; y < y0 + 6; y++) {
        int cur = v[row + (size_t)rdims[0] * y + x];
        assert_true(cur <= prev);
        prev = cur;
    }
    /* 1.25 mm from the axis, the voxel straddles the wall: a partial value. */
    int edge_v = v[row + (size_t)rdims[0] * (y0 + 2) + x];
    assert_true(edge_v > 600 && edge_v < 2600);
    /* 5 mm away: background only. */
    for (int y = y0 + 8; y < y0 + 12; y++) {
        int bg = v[row + (size_t)rdims[0] * y + x];
        assert_true(bg >= 0.12 * 3000 * 0.74 && bg <= 0.12 * 3000 * 1.26);
    }
    /* Beyond the cap at x = 25 mm + 1.1 mm: background again. */
    assert_true(v[row + (size_t)rdims[0] * y0 + 45] <= 0.12 * 3000 * 1.26);
    mem_free(v);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A 15-branch tree at SNR 20: vessels bright, far background dark, the noise sigma measured from
 * two noise streams over fully inside voxels matches scale / snr, and it is fast. */
static void test_render_tree_contrast_snr_speed(void **state)
{
    (void)state;
    VesselParams p = params(15);
    Philox rng;
    philox_init(&rng, 9, PHILOX_SYNTH, 15);
    VesselTree t;
    Err e = {0};
    assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
    size_t n = (size_t)rdims[0] * rdims[1] * rdims[2];
    uint16_t *clean = mem_alloc(n * sizeof *clean);
    uint16_t *n0 = mem_alloc(n * sizeof *n0);
    uint16_t *n1 = mem_alloc(n * sizeof *n1);
    assert_non_null(clean);
    assert_non_null(n0);
    assert_non_null(n1);
    const double scale = 3000.0;
    const double snr = 20.0;
    vessel_tree_render(&t, rdims, rvox, 0.0, scale, 9, 0, clean);
    double ms = INFINITY; /* best of a few, so a busy machine does not fail it */
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        vessel_tree_render(&t, rdims, rvox, snr, scale, 9, 1, n0);
        double dt = (now_s() - t0) * 1e3;
        ms = dt < ms ? dt : ms;
    }
    vessel_tree_render(&t, rdims, rvox, snr, scale, 9, 2, n1);
    print_message("render 64x64x40, %d branches: %.2f ms\n", t.n_edges, ms);
    assert_true(ms < (INSTRUMENTED || RUNNING_ON_VALGRIND ? 5000.0 : 100.0));

    /* Centrelines of the thicker vessels are bright. */
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < t.n_edges; i++)
        for (int k = 0; k < t.edges[i].n_pts; k++)
            if (t.edges[i].pts[k].radius >= 0.6) {
                sum += n0[voxel_at(t.edges[i].pts[k].p)];
                count++;
            }
    assert_true(count > 20);
    assert_true(sum / count > 0.75 * scale);

    /* Far from every vessel: dark. */
    double bg = 0.0;
    int nbg = 0;
    for (int z = 0; z < rdims[2]; z += 3)
        for (int y = 0; y < rdims[1]; y += 3)
            for (int x = 0; x < rdims[0]; x += 3) {
                double q[3] = {x * rvox[0], y * rvox[1], z * rvox[2]};
                int far = 1;
                for (int i = 0; i < t.n_edges && far; i++)
                    for (int k = 0; k < t.edges[i].n_pts && far; k++)
                        far = dist(q, t.edges[i].pts[k].p) > 3.0;
                if (far) {
                    bg += n0[(size_t)x + (size_t)rdims[0] * ((size_t)y + (size_t)rdims[1] * z)];
                    nbg++;
                }
            }
    assert_true(nbg > 1000);
    assert_true(bg / nbg > 0.05 * scale && bg / nbg < 0.2 * scale);

    /* Noise: over bright voxels (>= 0.75 scale without noise), the difference of two noise streams
     * has sigma * sqrt(2); the Rician bias is negligible at this signal. */
    double s1 = 0.0, s2 = 0.0;
    int ninside = 0;
    for (size_t i = 0; i < n; i++)
        if (clean[i] >= 0.75 * scale) {
            double d = (double)n0[i] - (double)n1[i];
            s1 += d;
            s2 += d * d;
            ninside++;
        }
    assert_true(ninside > 100);
    double var = (s2 - s1 * s1 / ninside) / (ninside - 1);
    double measured_snr = scale / sqrt(var / 2.0);
    print_message("SNR asked %.1f, measured %.1f over %d voxels\n", snr, measured_snr, ninside);
    assert_true(fabs(measured_snr - snr) < 0.2 * snr);

    mem_free(clean);
    mem_free(n0);
    mem_free(n1);
    vessel_tree_free(&t);
}

/* Every value is 0..4095 even when scale is large and the noise is strong; voxels beyond the
 * volume's own range are never written. */
static void test_render_clamps(void **state)
{
    (void)state;
    VesselTree t;
    draw_and_grow(5, &t);
    size_t n = (size_t)rdims[0] * rdims[1] * rdims[2];
    uint16_t *v = mem_alloc((n + 8) * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < 8; i++)
        v[n + (size_t)i] = 0xBEEF;
    vessel_tree_render(&t, rdims, rvox, 2.0, 5000.0, 5, 0, v);
    int saturated = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i] <= 4095);
        saturated += v[i] == 4095;
    }
    assert_true(saturated > 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(v[n + (size_t)i], 0xBEEF);
    mem_free(v);
    vessel_tree_free(&t);
}

// ---------------------------------------------------------------------------------------------
// Failing every allocation in turn

static void test_draw_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    VesselParams p = params(9);
    int failures = 0;
    for (long k = 1;; k++) {
        Philox rng;
        philox_init(&rng, 11, PHILOX_SYNTH, 0);
        VesselTree t;
        Err e = {0};
        long injected = mem_failures_injected();
        mem_fail_at(k);
        int rc = vessel_tree_draw(&t, &p, &rng, &e);
        mem_fail_at(0);
        if (mem_failures_injected() == injected) {
            assert_int_equal(rc, 0); /* past the last allocation: it completes */
            assert_int_equal(vessel_tree_branches(&t), 9);
            vessel_tree_free(&t);
            break;
        }
        failures++;
        assert_int_equal(rc, ERR_NOMEM);
        assert_non_null(strstr(e.msg, "out of memory"));
        assert_int_equal(t.n_edges, 0);
        assert_int_equal(mem_bytes_in_use(), base);
        vessel_tree_free(&t);
    }
    assert_true(failures > 10);
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_copy_and_grow_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    VesselParams p = params(7);
    Philox rng;
    philox_init(&rng, 12, PHILOX_SYNTH, 0);
    VesselTree t;
    Err e = {0};
    assert_int_equal(vessel_tree_draw(&t, &p, &rng, &e), 0);
    size_t base = mem_bytes_in_use();

    for (long k = 1;; k++) {
        VesselTree c;
        long injected = mem_failures_injected();
        mem_fail_at(k);
        int rc = vessel_tree_copy(&c, &t, &e);
        mem_fail_at(0);
        if (mem_failures_injected() == injected) {
            assert_int_equal(rc, 0);
            vessel_tree_free(&c);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(c.n_edges, 0);
        assert_int_equal(mem_bytes_in_use(), base);
    }

    /* Growth by 5 branches and 14 mm (interior sprouts, a new vessel, extensions): each failure
     * leaves t exactly as it was. */
    VesselTree before;
    assert_int_equal(vessel_tree_copy(&before, &t, &e), 0);
    base = mem_bytes_in_use();
    int failures = 0;
    for (long k = 1;; k++) {
        Philox g;
        philox_init(&g, 13, PHILOX_SYNTH, 0);
        long injected = mem_failures_injected();
        mem_fail_at(k);
        int rc = vessel_tree_grow(&t, 5, 14.0, &p, &g, &e);
        mem_fail_at(0);
        if (mem_failures_injected() == injected) {
            assert_int_equal(rc, 0);
            assert_int_equal(vessel_tree_branches(&t), 12);
            break;
        }
        failures++;
        assert_int_equal(rc, ERR_NOMEM);
        assert_trees_equal(&t, &before);
        assert_int_equal(mem_bytes_in_use(), base);
    }
    assert_true(failures > 5);
    vessel_tree_free(&before);
    vessel_tree_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_count_is_drawn_exactly),
        cmocka_unit_test(test_draw_other_extents_and_minimums),
        cmocka_unit_test(test_draw_rejects_bad_params),
        cmocka_unit_test(test_branch_definition_merges_chains),
        cmocka_unit_test(test_grow_adds_exact_branches_and_length),
        cmocka_unit_test(test_grow_repeatedly),
        cmocka_unit_test(test_grow_refuses_impossible_requests),
        cmocka_unit_test(test_same_seed_same_tree_and_bytes),
        cmocka_unit_test(test_render_tube_profile),
        cmocka_unit_test(test_render_tree_contrast_snr_speed),
        cmocka_unit_test(test_render_clamps),
        cmocka_unit_test(test_draw_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_copy_and_grow_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
