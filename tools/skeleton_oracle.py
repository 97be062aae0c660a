#!/usr/bin/python3
"""skeleton_oracle.py: writes tests/fixtures/vessels/skeleton_oracle.json, the independent
answers that tests/unit/test_vessel_oracle.c checks lib/image/thin.c and lib/image/skelgraph.c
against.

For a set of small binary images and volumes (a Y, a T, an X crossing, a loop, random trees,
anisotropic spacing; 2D and 3D) it records the mask, scikit-image's skeleton of it
(skeletonize: Zhang-Suen in 2D, Lee in 3D) and a Skan-style summary of that skeleton. Skan is
not packaged for Debian, so its branch summary is written here from its documented definitions
(Nunez-Iglesias et al., PeerJ 2018;6:e4312; skan.csr.Skeleton / summarize):

  - pixels are neighbours under full connectivity (8 in 2D, 26 in 3D); a pixel's degree is its
    number of skeleton neighbours;
  - a path starts at a pixel of degree != 2, runs through degree-2 pixels and stops at the next
    pixel of degree != 2; a closed chain of degree-2 pixels is a cycle;
  - junction pixels (degree >= 3) that touch form one junction, placed at their centroid
    (Skan < 0.10, unique_junctions=True): a path between two pixels of one junction with nothing
    between them is dropped, and a path's distance is measured from and to the centroid;
  - branch-distance: the sum of the Euclidean steps between consecutive points, in mm
    (spacing-aware); a cycle's includes the step that closes it;
  - branch-type, from the degrees of the path's end pixels: 0 endpoint-endpoint (both degree 1),
    1 junction-endpoint (one), 2 junction-junction (none), 3 isolated cycle.

Arrays are (z, y, x) C order (x fastest), as onfh's volumes; spacing is written (x, y, z) as
onfh takes it. Masks are run-length encoded over the flat index ([start, length, ...]);
skeletons are lists of flat indices. Usage:

    /usr/bin/python3 tools/skeleton_oracle.py [OUT.json]

Needs python3-numpy, python3-skimage (tools/deps.sh bench)."""
import json
import sys

import numpy as np
import skimage
from skimage.morphology import skeletonize

rng = np.random.default_rng(20250811)


def segment_dist(shape, a, b):
    """distance of every voxel centre (index units) to the segment a-b"""
    grids = np.indices(shape).reshape(len(shape), -1).T.astype(float)
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((grids - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
    return np.linalg.norm(grids - (a + t[:, None] * ab), axis=1).reshape(shape)


def tubes(shape, segments):
    """union of capsules: segments are (a, b, radius) in index coordinates (z, y, x)"""
    m = np.zeros(shape, bool)
    for a, b, r in segments:
        m |= segment_dist(shape, a, b) <= r
    return m


def tree(shape, depth, radius, rng):
    """a random binary tree of capsules: each branch splits into two at an angle"""
    nd = len(shape)
    lo, hi = np.full(nd, 3.0), np.array(shape, float) - 4
    segs = []

    def grow(p, d, length, r, level):
        q = np.clip(p + d * length, lo, hi)
        segs.append((p, q, r))
        if level == depth:
            return
        for sign in (1, -1):
            turn = rng.normal(0, 1, nd)
            turn -= (turn @ d) * d
            turn /= np.linalg.norm(turn)
            nd_ = np.cos(0.6) * d + sign * np.sin(0.6) * turn
            grow(q, nd_ / np.linalg.norm(nd_), length * 0.7, max(r * 0.8, 1.0), level + 1)

    start = np.array(shape, float) / 2
    start[0] = 4
    d = np.zeros(nd)
    d[0] = 1
    grow(start, d, shape[0] * 0.35, radius, 0)
    return tubes(shape, segs)


def cases():
    c = []
    # 2D (nz = 1): Zhang-Suen
    c.append(("y_2d", tubes((40, 40), [((5, 20), (20, 20), 2.2), ((20, 20), (34, 8), 2.2),
                                         ((20, 20), (34, 32), 2.2)]), (1, 1, 1)))
    c.append(("t_2d", tubes((32, 40), [((6, 5), (6, 34), 2.5), ((6, 20), (27, 20), 2.5)]),
              (1, 1, 1)))
    c.append(("x_2d", tubes((40, 40), [((5, 5), (34, 34), 2.0), ((5, 34), (34, 5), 2.0)]),
              (1, 1, 1)))
    yy, xx = np.indices((36, 36))
    r = np.hypot(yy - 17.5, xx - 17.5)
    c.append(("loop_2d", (r >= 9) & (r <= 13), (1, 1, 1)))
    c.append(("lollipop_2d", ((r >= 8) & (r <= 11)) | tubes((36, 36), [((17, 28), (17, 35), 1.5)]),
              (1, 1, 1)))  # a loop from a junction back to itself, and a stem
    c.append(("y_2d_aniso", c[0][1], (0.5, 0.8, 1)))
    c.append(("tree_2d", tree((64, 64), 3, 2.5, rng), (0.3, 0.3, 1)))
    # 3D: Lee
    c.append(("y_3d", tubes((32, 32, 32), [((4, 16, 16), (16, 16, 16), 2.2),
                                             ((16, 16, 16), (27, 8, 9), 2.2),
                                             ((16, 16, 16), (27, 24, 23), 2.2)]), (1, 1, 1)))
    c.append(("t_3d", tubes((24, 28, 32), [((12, 6, 4), (12, 6, 27), 2.0),
                                             ((12, 6, 16), (12, 23, 16), 2.0)]), (1, 1, 1)))
    c.append(("x_3d", tubes((32, 32, 32), [((5, 5, 16), (26, 26, 16), 2.0),
                                             ((5, 26, 16), (26, 5, 16), 2.0)]), (1, 1, 1)))
    zz, yy, xx = np.indices((14, 32, 32))
    rr = np.hypot(yy - 15.5, xx - 15.5)
    c.append(("torus_3d", np.hypot(rr - 10, zz - 6.5) <= 2.6, (1, 1, 1)))
    c.append(("tree_3d", tree((40, 40, 40), 3, 2.2, rng), (0.25, 0.25, 0.25)))
    c.append(("tree_3d_aniso", tree((36, 36, 36), 2, 2.0, rng), (0.3, 0.3, 0.9)))
    # Lee's even-width case (thin.h): scikit-image 0.19 erases a 4 x 4 x 16 bar, onfh keeps a line
    bar = np.zeros((12, 12, 24), bool)
    bar[4:8, 4:8, 4:20] = True
    c.append(("bar_even_3d", bar, (1, 1, 1)))
    return c


def offsets(nd):
    o = np.array(np.meshgrid(*[[-1, 0, 1]] * nd, indexing="ij")).reshape(nd, -1).T
    return [tuple(v) for v in o if any(v)]


def summarize(skel, spacing_xyz):
    """Skan-style branch table of a skeleton: [(type, distance_mm)], see the module docstring"""
    nd = skel.ndim
    sp = np.array(spacing_xyz[:nd][::-1], float)  # (z, y, x) order, as the array
    pix = set(map(tuple, np.argwhere(skel)))
    off = offsets(nd)
    nbrs = {p: [tuple(np.add(p, o)) for o in off if tuple(np.add(p, o)) in pix] for p in pix}
    deg = {p: len(v) for p, v in nbrs.items()}
    # junction clusters: connected components of junction pixels
    cluster, centroid = {}, {}
    for p in sorted(pix):
        if deg[p] < 3 or p in cluster:
            continue
        members, stack = [], [p]
        cluster[p] = p
        while stack:
            q = stack.pop()
            members.append(q)
            for n in nbrs[q]:
                if deg[n] >= 3 and n not in cluster:
                    cluster[n] = p
                    stack.append(n)
        centroid[p] = np.mean(np.array(members, float), axis=0)

    def pos(p):  # mm of a path's end: its junction's centroid, or the pixel
        return (centroid[cluster[p]] if p in cluster else np.array(p, float)) * sp

    paths, used = {}, set()
    for u in sorted(pix):
        if deg[u] == 2 or deg[u] == 0:
            continue
        for w in nbrs[u]:
            path = [u, w]
            while deg[path[-1]] == 2:
                a, b = nbrs[path[-1]]
                path.append(a if b == path[-2] else b)
            key = min(tuple(path), tuple(path[::-1]))
            if key in paths:
                continue
            if len(path) == 2 and u in cluster and w in cluster and cluster[u] == cluster[w]:
                continue  # inside one junction
            paths[key] = path
            used.update(path)
    branches = []
    for path in paths.values():
        pts = [pos(path[0])] + [np.array(p, float) * sp for p in path[1:-1]] + [pos(path[-1])]
        dist = sum(np.linalg.norm(pts[i + 1] - pts[i]) for i in range(len(pts) - 1))
        ends = (deg[path[0]] == 1) + (deg[path[-1]] == 1)
        branches.append((0 if ends == 2 else 1 if ends == 1 else 2, float(dist)))
    # cycles: degree-2 pixels no path reached
    left = {p for p in pix if deg[p] == 2 and p not in used}
    while left:
        start = min(left)
        ring = [start, nbrs[start][0]]
        while ring[-1] != start:
            a, b = nbrs[ring[-1]]
            ring.append(a if b == ring[-2] else b)
        left -= set(ring)
        pts = [np.array(p, float) * sp for p in ring]
        branches.append((3, float(sum(np.linalg.norm(pts[i + 1] - pts[i])
                                      for i in range(len(pts) - 1)))))
    branches.sort()
    return branches


def rle(mask):
    flat = np.concatenate([[0], mask.ravel().astype(np.int8), [0]])
    d = np.diff(flat)
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return np.stack([starts, stops - starts], axis=1).ravel().tolist()


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/vessels/skeleton_oracle.json"
    fx = {"generator": "tools/skeleton_oracle.py", "skimage": skimage.__version__,
          "numpy": np.__version__, "cases": []}
    for name, mask, spacing in cases():
        mask = mask.astype(bool)
        skel = skeletonize(mask) if mask.ndim == 2 else skeletonize(mask, method="lee") > 0
        dims = [1] * (3 - mask.ndim) + list(mask.shape)  # (nz, ny, nx)
        br = summarize(skel, spacing)
        fx["cases"].append({
            "name": name, "dims": dims, "spacing": list(spacing), "mask_rle": rle(mask),
            "mask_voxels": int(mask.sum()),
            "skeleton": np.flatnonzero(skel.ravel()).tolist(),
            "branch_type": [t for t, _ in br], "branch_distance": [d for _, d in br],
        })
        print(f"{name}: {int(mask.sum())} voxels, skeleton {int(skel.sum())}, "
              f"{len(br)} branches, types {np.bincount([t for t, _ in br], minlength=4).tolist()}, "
              f"total {sum(d for _, d in br):.3f} mm")
    with open(out_path, "w") as f:
        json.dump(fx, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
