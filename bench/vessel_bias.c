/* vessel_bias.c [PAIRS]: where the vessels chain's length error comes from, on synthetic vessels
 * rendered as the default cohort renders its vessel series (64 x 64 x 40 voxels of 0.6 mm, Rician
 * noise at SNR 26) and measured with the default vessels.* method (stages/vessels/measure.h).
 * Each figure is the mean of measured minus true length (mm), three ways: the skeleton's branch
 * lengths alone, plus the end-point extension, plus the junction correction as well (the
 * reported length). Not a timing: a diagnostic that data-schema/vessels.md quotes.
 *   - phantoms, 40 random poses each: a straight vessel (two ends) of radius 0.4 and 0.7 mm, and
 *     three 8 mm branches meeting at a junction: a Y with its branches 120 degrees apart, a Y
 *     with two branches 60 degrees apart, a T (a straight vessel with a side branch at 60);
 *   - PAIRS (default 300) trees drawn and grown as the synthetic cohort draws them (4..8
 *     branches; + round(N(2.7, 1.1)) branches and N(12.4, 3.2) mm after the graft): the error
 *     of the change (post minus pre), which is what the treatment response reports, and of
 *     single series. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "stages/synth/cohort.h"
#include "stages/synth/vessel_tree.h"
#include "stages/vessels/measure.h"

enum { NX = 64, NZ = 40, POSES = 40 };
static const double VOX = 0.6;

typedef struct Lengths {
    double skeleton, extended, corrected; /* measured, the three ways */
    double truth;
} Lengths;

static int measure(const VesselTree *t, uint64_t noise, uint16_t *u, float *f, Lengths *l)
{
    /* the defaults of pipeline/config_keys.c's vessels.* keys */
    VesselMethod me = {{0.3, 0.5, 0.7, 0.9}, 4,  0.5, 0.5, 0, 0.05, 0.2, 1.0, 2.0, 3.0,
                       {1.0, 3.5},           3.0};
    int dims[3] = {NX, NX, NZ};
    double sp[3] = {VOX, VOX, VOX};
    vessel_tree_render(t, dims, sp, 26.0, 3000.0, 20250727, noise, u);
    for (size_t k = 0; k < (size_t)NX * NX * NZ; k++)
        f[k] = u[k];
    VesselResult r;
    Err e = {0};
    if (vessel_measure(f, dims, sp, &me, &r, NULL, &e))
        return fprintf(stderr, "vessel_bias: %s\n", e.msg), -1;
    l->corrected = r.m.length_mm;
    l->extended = r.m.length_mm - r.junction_correction_mm;
    l->skeleton = l->extended - r.end_extension_mm;
    l->truth = vessel_tree_length_mm(t);
    return 0;
}

static void unit(Philox *rng, double d[3])
{
    double n = 0.0;
    while (!(n > 1e-6)) {
        for (int a = 0; a < 3; a++)
            d[a] = philox_normal(rng);
        n = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    }
    for (int a = 0; a < 3; a++)
        d[a] /= n;
}

/* A straight edge a -> b of constant radius, points 0.5 mm apart. */
static int straight_edge(VesselEdge *g, int from, int to, const double a[3], const double b[3],
                         double radius)
{
    double len = sqrt(pow(b[0] - a[0], 2) + pow(b[1] - a[1], 2) + pow(b[2] - a[2], 2));
    int m = (int)ceil(len / VESSEL_TREE_STEP_MM);
    g->from = from, g->to = to, g->n_pts = m + 1;
    if (!(g->pts = mem_calloc((size_t)m + 1, sizeof *g->pts)))
        return -1;
    for (int i = 0; i <= m; i++) {
        for (int k = 0; k < 3; k++)
            g->pts[i].p[k] = a[k] + (b[k] - a[k]) * i / m;
        g->pts[i].radius = radius;
    }
    return 0;
}

/* kind 0: a straight vessel through c along d, 16 mm; 1: a Y, the stem along -d, branches at
 * +-angle/2 from d; 2: a T, a straight vessel along d with a branch at angle from d. */
static int phantom(VesselTree *t, int kind, double radius, double angle_deg, Philox *rng)
{
    static double nodes[4][3];
    static VesselEdge edges[3];
    double c[3] = {0.5 * NX * VOX + philox_uniform(rng), 0.5 * NX * VOX + philox_uniform(rng),
                   0.5 * NZ * VOX + philox_uniform(rng)};
    double d[3], w[3], h = 0.5 * angle_deg * M_PI / 180.0, len = 8.0;
    unit(rng, d);
    unit(rng, w); /* w: across d, in the branches' plane */
    double dw = w[0] * d[0] + w[1] * d[1] + w[2] * d[2], nw = 0.0;
    for (int a = 0; a < 3; a++)
        w[a] -= dw * d[a], nw += w[a] * w[a];
    for (int a = 0; a < 3; a++) {
        w[a] /= sqrt(nw);
        nodes[0][a] = c[a] - len * d[a];
        nodes[1][a] = c[a];
        nodes[2][a] = c[a] + len * (kind == 1 ? cos(h) * d[a] + sin(h) * w[a] : d[a]);
        nodes[3][a] = c[a] + len * (kind == 1   ? cos(h) * d[a] - sin(h) * w[a]
                                    : kind == 2 ? cos(2 * h) * d[a] + sin(2 * h) * w[a]
                                                : 0.0);
    }
    memset(t, 0, sizeof *t);
    t->nodes = nodes, t->edges = edges;
    t->extent[0] = t->extent[1] = NX * VOX, t->extent[2] = NZ * VOX;
    if (kind == 0) {
        t->n_nodes = 3, t->n_edges = 1;
        return straight_edge(&edges[0], 0, 2, nodes[0], nodes[2], radius);
    }
    t->n_nodes = 4, t->n_edges = 3;
    return straight_edge(&edges[0], 0, 1, nodes[0], nodes[1], radius) ||
           straight_edge(&edges[1], 1, 2, nodes[1], nodes[2], radius) ||
           straight_edge(&edges[2], 1, 3, nodes[1], nodes[3], radius);
}

int main(int argc, char **argv)
{
    int pairs = argc > 1 ? atoi(argv[1]) : 300;
    size_t n = (size_t)NX * NX * NZ;
    uint16_t *u = mem_alloc(n * sizeof *u);
    float *f = mem_alloc(n * sizeof *f);
    if (!u || !f)
        return fprintf(stderr, "vessel_bias: out of memory\n"), 1;
    static const struct {
        const char *name;
        int kind;
        double radius, angle;
    } ph[] = {{"straight vessel, radius 0.4 mm (2 ends)", 0, 0.4, 0},
              {"straight vessel, radius 0.7 mm (2 ends)", 0, 0.7, 0},
              {"Y, branches 120 degrees apart, radius 0.5 (3 ends)", 1, 0.5, 120},
              {"Y, two branches 60 degrees apart, radius 0.5 (3 ends)", 1, 0.5, 60},
              {"T, side branch at 60 degrees, radius 0.5 (3 ends)", 2, 0.5, 60}};
    printf("mean measured - true length, mm: skeleton | + end-point extension | + junction "
           "correction (reported)\n");
    for (size_t k = 0; k < sizeof ph / sizeof *ph; k++) {
        Philox rng;
        philox_init(&rng, 20250727, PHILOX_TEST, 1000 + k);
        double s[3] = {0, 0, 0};
        for (int i = 0; i < POSES; i++) {
            VesselTree t;
            Lengths l;
            int rc = phantom(&t, ph[k].kind, ph[k].radius, ph[k].angle, &rng) ||
                     measure(&t, 1000 * k + i, u, f, &l);
            for (int j = 0; j < t.n_edges; j++)
                mem_free(t.edges[j].pts);
            if (rc)
                return 1;
            s[0] += (l.skeleton - l.truth) / POSES, s[1] += (l.extended - l.truth) / POSES;
            s[2] += (l.corrected - l.truth) / POSES;
        }
        printf("%-56s %+6.2f | %+6.2f | %+6.2f\n", ph[k].name, s[0], s[1], s[2]);
    }
    /* pre/post pairs: d[way] sums the change's error, e[way] the series' relative error */
    double d[3] = {0}, d2[3] = {0}, e[3] = {0};
    int done = 0, within5[3] = {0};
    for (int i = 0; i < pairs; i++) {
        Philox rng;
        philox_init(&rng, 20250727, PHILOX_TEST, 100000 + i);
        VesselParams vp = {{NX * VOX, NX * VOX, NZ * VOX},
                           4 + (int)philox_below(&rng, 5),
                           COHORT_MIN_BRANCH_MM,
                           0.8};
        double db = 2.7 + 1.1 * philox_normal(&rng);
        int add = db > 0 ? (int)lround(db) : 0;
        double dl = 12.4 + 3.2 * philox_normal(&rng);
        double need = vessel_tree_grow_min_length_mm(add, &vp) + 0.5;
        VesselTree t = {0};
        Err er = {0};
        Lengths l[2];
        if (vessel_tree_draw(&t, &vp, &rng, &er) || measure(&t, 2 * i, u, f, &l[0]) ||
            vessel_tree_grow(&t, add, dl > need ? dl : need, &vp, &rng, &er) ||
            measure(&t, 2 * i + 1, u, f, &l[1])) {
            fprintf(stderr, "vessel_bias: pair %d: %s\n", i, er.msg);
            vessel_tree_free(&t);
            continue;
        }
        vessel_tree_free(&t);
        for (int way = 0; way < 3; way++) {
            double m[2];
            for (int s = 0; s < 2; s++) {
                m[s] = way == 0 ? l[s].skeleton : way == 1 ? l[s].extended : l[s].corrected;
                double rel = (m[s] - l[s].truth) / l[s].truth;
                e[way] += rel;
                within5[way] += fabs(rel) <= 0.05;
            }
            double err = (m[1] - m[0]) - (l[1].truth - l[0].truth);
            d[way] += err, d2[way] += err * err;
        }
        done++;
    }
    if (done < 2)
        return fprintf(stderr, "vessel_bias: fewer than 2 pairs\n"), 1;
    printf("%d pre/post pairs, error of the change (mean, its standard error):", done);
    for (int way = 0; way < 3; way++) {
        double mean = d[way] / done, sd = sqrt((d2[way] - done * mean * mean) / (done - 1));
        printf("%s %+.2f (%.2f)", way ? " |" : "", mean, sd / sqrt(done));
    }
    printf("\n%d series, mean relative error; within 5%%:", 2 * done);
    for (int way = 0; way < 3; way++)
        printf("%s %+.1f%%; %.1f%%", way ? " |" : "", 100 * e[way] / (2 * done),
               100.0 * within5[way] / (2 * done));
    printf("\n");
    mem_free(u), mem_free(f);
    return 0;
}
