#!/usr/bin/python3
"""peer_skimage_vessels.py DIR N: the vessel chain of bench_vessels.c done with scikit-image on
the same volumes (DIR/vol_NNN.f32, 64 x 64 x 40 float32, 0.6 mm isotropic): frangi at the same
scales (sigmas in voxels = mm / 0.6; bright vessels, black_ridges=False; alpha = beta = 0.5,
gamma left to scikit-image's default, the Hessian-norm half-max, as onfh's c = 0 means), scaled
to its maximum, apply_hysteresis_threshold(0.05, 0.2), remove_small_objects (1 mm^3: 5 voxels,
26-connected), skeletonize_3d (Lee), then label + degree count of the skeleton (what a Skan
summary starts from; onfh's graph and pruning are cheaper than this is). As peers.md runs it:
numpy/scipy with one thread (OMP_NUM_THREADS=1 from bench/vessels.sh). Prints
"N cpu_ms_per_series frangi_cpu_ms_per_series skeleton_voxels_total"; CPU time of this process.
scikit-image's vesselness is scaled differently from onfh's (vesselness.h), so the same
thresholds keep more noise and its skeleton is larger: the frangi-only time is the like-for-like
figure, the whole chain's an upper bound on the peer's cost."""
import sys
import time

import numpy as np
import scipy.ndimage as ndi
from skimage.filters import apply_hysteresis_threshold, frangi
from skimage.morphology import remove_small_objects, skeletonize_3d

d, n = sys.argv[1], int(sys.argv[2])
sigmas = [s / 0.6 for s in (0.3, 0.5, 0.7, 0.9)]
cpu, cpu_frangi, vox = 0.0, 0.0, 0
for i in range(n):
    vol = np.fromfile(f"{d}/vol_{i:03d}.f32", dtype=np.float32).reshape(40, 64, 64)
    c0 = time.process_time()
    v = frangi(vol, sigmas=sigmas, alpha=0.5, beta=0.5, black_ridges=False)
    cpu_frangi += time.process_time() - c0
    v = v / max(v.max(), 1e-30)
    m = apply_hysteresis_threshold(v, 0.05, 0.2)
    m = remove_small_objects(m, 5, connectivity=3)
    sk = skeletonize_3d(m) > 0
    deg = ndi.convolve(sk.astype(np.uint8), np.ones((3, 3, 3), np.uint8), mode="constant") * sk
    ndi.label(sk, structure=np.ones((3, 3, 3)))
    cpu += time.process_time() - c0
    vox += int(sk.sum())
print(n, f"{1000 * cpu / n:.2f}", f"{1000 * cpu_frangi / n:.2f}", vox)
