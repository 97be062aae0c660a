/* thin.c: Zhang-Suen (2D) and Lee (3D) thinning; see thin.h for what is kept and the sources. */
#include "lib/image/thin.h"

#include <stddef.h>
#include <string.h>

#include "lib/util/mem.h"

/* scikit-image's _fast_skeletonize table: for each 8-neighbourhood code (1 NW, 2 N, 4 NE, 8 E,
 * 16 SE, 32 S, 64 SW, 128 W), 1: deletable in the first sub-iteration, 2: in the second, 3: in
 * both, 0: never (Zhang-Suen's conditions: 2..6 neighbours, one 0-1 transition, and the
 * sub-iteration's two products of N, E, S, W). */
static const uint8_t zs_lut[256] = {
    0, 0, 0, 1, 0, 0, 1, 3, 0, 0, 3, 1, 1, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 3, 0, 3, 3,
    0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 2, 0,
    0, 0, 3, 1, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 1, 3, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 0, 0, 0};

int thin_2d(uint8_t *img, const int dims[2])
{
    int w = dims[0] + 2, h = dims[1] + 2;
    uint8_t *a = mem_calloc((size_t)w * h, 1), *b = mem_calloc((size_t)w * h, 1);
    if (!a || !b) {
        mem_free(a), mem_free(b);
        return -1;
    }
    for (int y = 0; y < dims[1]; y++)
        for (int x = 0; x < dims[0]; x++)
            a[(size_t)(y + 1) * w + x + 1] = img[(size_t)y * dims[0] + x] != 0;
    memcpy(b, a, (size_t)w * h);
    for (int removed = 1; removed;) {
        removed = 0;
        for (int pass = 0; pass < 2; pass++) {
            /* decisions read a (the image before this sub-iteration), deletions go to b */
            for (int y = 1; y < h - 1; y++)
                for (int x = 1; x < w - 1; x++) {
                    const uint8_t *p = a + (size_t)y * w + x;
                    if (!*p)
                        continue;
                    int code = p[-w - 1] + 2 * p[-w] + 4 * p[-w + 1] + 8 * p[1] + 16 * p[w + 1] +
                               32 * p[w] + 64 * p[w - 1] + 128 * p[-1];
                    int t = zs_lut[code];
                    if (t == 3 || (t == 1 && pass == 0) || (t == 2 && pass == 1)) {
                        b[(size_t)y * w + x] = 0;
                        removed = 1;
                    }
                }
            memcpy(a, b, (size_t)w * h);
        }
    }
    for (int y = 0; y < dims[1]; y++)
        for (int x = 0; x < dims[0]; x++)
            img[(size_t)y * dims[0] + x] = a[(size_t)(y + 1) * w + x + 1];
    mem_free(a), mem_free(b);
    return 0;
}

/* ---- Lee 3D -----------------------------------------------------------------------------
 * The 3x3x3 neighbourhood n[27] is numbered as in Lee's Fig. 1a with the centre as 13:
 * n[(dz + 1) * 9 + (dx + 1) * 3 + (dy + 1)] (z = p, y = r, x = c in scikit-image's terms). */

/* Lee's Table 2, column delta G_26: the Euler characteristic change of an octant configuration,
 * indexed by the octant's code (odd: the centre is set). */
static const int8_t euler_lut[128] = {
    1,  -1, -1, 1,  -3, -1, -1, 1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, -1, 3,  1,  1,  -1,
    3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, 3,  -1, 1,  1,  3,  -1, 1,  -1, 1,  1,  -1,
    3,  1,  1,  -1, 1,  3,  3,  1,  5,  3,  3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -7, -1,
    -1, 1,  -3, -1, -1, 1,  -1, 1,  1,  -1, 3,  1,  1,  -1, -3, -1, 3,  1,  1,  -1, 3,  1,
    -1, 1,  1,  -1, 3,  1,  1,  -1, -3, 3,  -1, 1,  1,  3,  -1, 1,  -1, 1,  1,  -1, 3,  1,
    1,  -1, 1,  3,  3,  1,  5,  3,  3,  1,  -1, 1,  1,  -1, 3,  1,  1,  -1};

/* The seven neighbours of each octant, for code bits 128, 64, 32, 16, 8, 4, 2 in turn. */
static const uint8_t octant_nb[8][7] = {{2, 1, 11, 10, 5, 4, 14},     {0, 9, 3, 12, 1, 10, 4},
                                        {8, 7, 17, 16, 5, 4, 14},     {6, 15, 7, 16, 3, 12, 4},
                                        {20, 23, 19, 22, 11, 14, 10}, {18, 21, 9, 12, 19, 22, 10},
                                        {26, 23, 17, 14, 25, 22, 16}, {24, 25, 15, 16, 21, 22, 12}};

static int euler_invariant(const uint8_t n[27])
{
    int sum = 0;
    for (int o = 0; o < 8; o++) {
        int code = 1;
        for (int k = 0; k < 7; k++)
            if (n[octant_nb[o][k]])
                code |= 128 >> k;
        sum += euler_lut[code >> 1];
    }
    return sum == 0;
}

/* Octree labelling (Lee's Figs. 6-7) on the 26 neighbours without the centre (cube index i is
 * neighbourhood index i, or i + 1 from 13 on). Each octant lists its cube members and, for each,
 * the other octants that share it: a set member spreads the label to those octants. */
typedef struct OctMember {
    uint8_t cube;
    uint8_t n_next;
    uint8_t next[3];
} OctMember;

static const OctMember octree[8][7] = {
    {{0, 0, {0}},
     {1, 1, {2}},
     {3, 1, {3}},
     {4, 3, {2, 3, 4}},
     {9, 1, {5}},
     {10, 3, {2, 5, 6}},
     {12, 3, {3, 5, 7}}},
    {{1, 1, {1}},
     {4, 3, {1, 3, 4}},
     {10, 3, {1, 5, 6}},
     {2, 0, {0}},
     {5, 1, {4}},
     {11, 1, {6}},
     {13, 3, {4, 6, 8}}},
    {{3, 1, {1}},
     {4, 3, {1, 2, 4}},
     {12, 3, {1, 5, 7}},
     {6, 0, {0}},
     {7, 1, {4}},
     {14, 1, {7}},
     {15, 3, {4, 7, 8}}},
    {{4, 3, {1, 2, 3}},
     {5, 1, {2}},
     {13, 3, {2, 6, 8}},
     {7, 1, {3}},
     {15, 3, {3, 7, 8}},
     {8, 0, {0}},
     {16, 1, {8}}},
    {{9, 1, {1}},
     {10, 3, {1, 2, 6}},
     {12, 3, {1, 3, 7}},
     {17, 0, {0}},
     {18, 1, {6}},
     {20, 1, {7}},
     {21, 3, {6, 7, 8}}},
    {{10, 3, {1, 2, 5}},
     {11, 1, {2}},
     {13, 3, {2, 4, 8}},
     {18, 1, {5}},
     {21, 3, {5, 7, 8}},
     {19, 0, {0}},
     {22, 1, {8}}},
    {{12, 3, {1, 3, 5}},
     {14, 1, {3}},
     {15, 3, {3, 4, 8}},
     {20, 1, {5}},
     {21, 3, {5, 6, 8}},
     {23, 0, {0}},
     {24, 1, {8}}},
    {{13, 3, {2, 4, 6}},
     {15, 3, {3, 4, 7}},
     {16, 1, {4}},
     {21, 3, {5, 6, 7}},
     {22, 1, {6}},
     {24, 1, {7}},
     {25, 0, {0}}},
};

/* An octant (1-based) holding cube index i, where labelling starts. */
static int first_octant(int i)
{
    static const uint8_t oct[26] = {1, 1, 2, 1, 1, 2, 3, 3, 4, 1, 1, 2, 1,
                                    2, 3, 3, 4, 5, 5, 6, 5, 5, 6, 7, 7, 8};
    return oct[i];
}

/* Simple point: the 26 neighbours form exactly one 26-connected component (labels 2, 3, ...
 * painted octant by octant with an explicit stack instead of the recursion). */
static int simple_point(const uint8_t n[27])
{
    uint8_t cube[26];
    memcpy(cube, n, 13);
    memcpy(cube + 13, n + 14, 13);
    int label = 2;
    for (int i = 0; i < 26; i++) {
        if (cube[i] != 1)
            continue;
        int stack[96], top = 0; /* 26 members, each pushing at most 3 octants */
        stack[top++] = first_octant(i);
        while (top) {
            int o = stack[--top];
            for (int m = 0; m < 7; m++) {
                const OctMember *om = &octree[o - 1][m];
                if (cube[om->cube] != 1)
                    continue;
                cube[om->cube] = (uint8_t)label;
                for (int k = 0; k < om->n_next; k++)
                    stack[top++] = om->next[k];
            }
        }
        if (++label - 2 >= 2)
            return 0;
    }
    return 1;
}

/* n[27] of voxel i of the padded volume (strides 1, sy, sz). */
static void neighbourhood(const uint8_t *v, size_t i, size_t sy, size_t sz, uint8_t n[27])
{
    int k = 0;
    for (int dz = -1; dz <= 1; dz++)
        for (int dx = -1; dx <= 1; dx++)
            for (int dy = -1; dy <= 1; dy++)
                n[k++] = v[i + (ptrdiff_t)dz * (ptrdiff_t)sz + (ptrdiff_t)dy * (ptrdiff_t)sy + dx];
}

int thin_3d(uint8_t *img, const int dims[3])
{
    int nx = dims[0], ny = dims[1], nz = dims[2];
    size_t px = (size_t)nx + 2, py = (size_t)ny + 2, pz = (size_t)nz + 2;
    size_t sy = px, sz = px * py, total = sz * pz;
    uint8_t *v = mem_calloc(total, 1);
    size_t nfg = 0;
    for (size_t i = 0, n = (size_t)nx * ny * nz; i < n; i++)
        nfg += img[i] != 0;
    size_t *fg = mem_alloc((nfg ? nfg : 1) * sizeof *fg);
    size_t *cand = mem_alloc((nfg ? nfg : 1) * sizeof *cand);
    if (!v || !fg || !cand) {
        mem_free(v), mem_free(fg), mem_free(cand);
        return -1;
    }
    /* foreground voxels of the padded volume, in raster order (scikit-image's scan order) */
    size_t k = 0;
    for (int z = 0; z < nz; z++)
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++)
                if (img[((size_t)z * ny + y) * nx + x]) {
                    size_t i = (z + 1) * sz + (y + 1) * sy + x + 1;
                    v[i] = 1;
                    fg[k++] = i;
                }
    /* border directions in scikit-image's order 4, 3, 2, 1, 5, 6: the neighbour that must be
     * background, as an offset (W: y - 1, E: y + 1, S: x + 1, N: x - 1, U: z + 1, B: z - 1) */
    const ptrdiff_t border[6] = {-(ptrdiff_t)sy, (ptrdiff_t)sy, 1, -1,
                                 (ptrdiff_t)sz,  -(ptrdiff_t)sz};
    int n_borders = nz == 1 ? 4 : 6;
    uint8_t n[27];
    for (int unchanged = 0; unchanged < n_borders;) {
        unchanged = 0;
        for (int b = 0; b < n_borders; b++) {
            size_t nc = 0;
            for (size_t f = 0; f < nfg; f++) {
                size_t i = fg[f];
                if (v[(ptrdiff_t)i + border[b]])
                    continue;
                neighbourhood(v, i, sy, sz, n);
                int count = 0;
                for (int j = 0; j < 27; j++)
                    count += n[j];
                if (count == 2 || !euler_invariant(n) || !simple_point(n))
                    continue; /* an end point, or deleting it would change the topology */
                cand[nc++] = i;
            }
            int change = 0;
            for (size_t c = 0; c < nc; c++) {
                neighbourhood(v, cand[c], sy, sz, n);
                int count = 0;
                for (int j = 0; j < 27; j++)
                    count += n[j];
                /* scikit-image re-checks simplicity only; a voxel that earlier deletions of
                 * this pass left as an end point (or alone) is simple too, and deleting it
                 * erases objects of even width whole (a 2 x 2 or 4 x 4 bar vanishes) */
                if (count > 2 && simple_point(n)) {
                    v[cand[c]] = 0;
                    change = 1;
                }
            }
            if (!change) {
                unchanged++;
                continue;
            }
            size_t kept = 0;
            for (size_t f = 0; f < nfg; f++)
                if (v[fg[f]])
                    fg[kept++] = fg[f];
            nfg = kept;
        }
    }
    for (int z = 0; z < nz; z++)
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++)
                img[((size_t)z * ny + y) * nx + x] = v[(z + 1) * sz + (y + 1) * sy + x + 1];
    mem_free(v), mem_free(fg), mem_free(cand);
    return 0;
}
