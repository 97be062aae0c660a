/* components.c: breadth-first labelling with an explicit queue (no recursion, so a long vessel
 * cannot overflow the stack), and the two filters built on it (components.h). */
#include "lib/image/components.h"

#include <stddef.h>
#include <string.h>

#include "lib/util/mem.h"

int cc_offsets(int conn, int d[26][3])
{
    if (conn != 6 && conn != 18 && conn != 26)
        return 0;
    int k = 0;
    for (int dz = -1; dz <= 1; dz++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int m = (dx != 0) + (dy != 0) + (dz != 0);
                if (m == 0 || (conn == 6 && m > 1) || (conn == 18 && m > 2))
                    continue;
                d[k][0] = dx, d[k][1] = dy, d[k][2] = dz, k++;
            }
    return k;
}

int cc_label(const uint8_t *mask, const int dims[3], int conn, int32_t *labels, int64_t **sizes)
{
    int d[26][3], nd = cc_offsets(conn, d);
    if (!nd)
        return -1;
    int nx = dims[0], ny = dims[1], nz = dims[2];
    size_t n = (size_t)nx * ny * nz;
    size_t *queue = mem_alloc((n ? n : 1) * sizeof *queue);
    int64_t *sz = NULL;
    size_t cap = 0;
    if (!queue)
        return -1;
    memset(labels, 0, n * sizeof *labels);
    int count = 0;
    for (size_t s = 0; s < n; s++) {
        if (!mask[s] || labels[s])
            continue;
        if (sizes && (size_t)count + 2 > cap) {
            size_t nc = cap ? 2 * cap : 64;
            int64_t *t = mem_realloc(sz, nc * sizeof *t);
            if (!t) {
                mem_free(queue), mem_free(sz);
                return -1;
            }
            sz = t, cap = nc;
        }
        int lab = ++count;
        size_t head = 0, tail = 0;
        queue[tail++] = s;
        labels[s] = lab;
        while (head < tail) {
            size_t i = queue[head++];
            int x = (int)(i % nx), y = (int)(i / nx % ny), z = (int)(i / ((size_t)nx * ny));
            for (int k = 0; k < nd; k++) {
                int xx = x + d[k][0], yy = y + d[k][1], zz = z + d[k][2];
                if (xx < 0 || yy < 0 || zz < 0 || xx >= nx || yy >= ny || zz >= nz)
                    continue;
                size_t j = ((size_t)zz * ny + yy) * nx + xx;
                if (mask[j] && !labels[j]) {
                    labels[j] = lab;
                    queue[tail++] = j;
                }
            }
        }
        if (sizes)
            sz[lab] = (int64_t)tail;
    }
    mem_free(queue);
    if (sizes) {
        if (!sz && !(sz = mem_calloc(1, sizeof *sz)))
            return -1;
        *sizes = sz;
    }
    return count;
}

int hysteresis_threshold(const float *v, const int dims[3], float lo, float hi, int conn,
                         uint8_t *mask)
{
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    int32_t *lab = mem_alloc((n ? n : 1) * sizeof *lab);
    if (!lab)
        return -1;
    for (size_t i = 0; i < n; i++)
        mask[i] = v[i] > lo;
    int count = cc_label(mask, dims, conn, lab, NULL);
    uint8_t *strong = count >= 0 ? mem_calloc((size_t)count + 1, 1) : NULL;
    if (!strong) {
        mem_free(lab);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i] > hi)
            strong[lab[i]] = 1;
    int kept = 0;
    for (int c = 1; c <= count; c++)
        kept += strong[c];
    for (size_t i = 0; i < n; i++)
        mask[i] = lab[i] && strong[lab[i]];
    mem_free(strong), mem_free(lab);
    return kept;
}

int remove_small_objects(uint8_t *mask, const int dims[3], int conn, int64_t min_voxels)
{
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    int32_t *lab = mem_alloc((n ? n : 1) * sizeof *lab);
    int64_t *sizes = NULL;
    if (!lab)
        return -1;
    int count = cc_label(mask, dims, conn, lab, &sizes);
    if (count < 0) {
        mem_free(lab);
        return -1;
    }
    int removed = 0;
    for (int c = 1; c <= count; c++)
        removed += sizes[c] < min_voxels;
    for (size_t i = 0; i < n; i++)
        if (lab[i] && sizes[lab[i]] < min_voxels)
            mask[i] = 0;
    mem_free(sizes), mem_free(lab);
    return removed;
}
