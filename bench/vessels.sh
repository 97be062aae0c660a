#!/bin/bash
# vessels.sh BUILD_DIR [N]: the vessels stage's per-series chain (bench_vessels: N synthetic
# trees at the default cohort's vessel-series size, 64 x 64 x 40 voxels of 0.6 mm) beside
# scikit-image doing the same work on the same volumes (peer_skimage_vessels.py: frangi at the
# same scales, hysteresis, small objects, skeletonize_3d). Both in one process, one thread; CPU
# milliseconds per series, the per-core figure. The load average is printed: on a shared machine
# both sides slow, the ratio less so.
set -eu
build=${1:?usage: bench/vessels.sh BUILD_DIR [N]}
trees=${2:-20}
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r n nx ny nz ms branches svox < <("$build/bench/bench_vessels" "$trees" "$tmp")
printf 'onfh vessels chain (Frangi 4 scales, hysteresis, Lee thinning, graph, pruning, end and junction corrections): %d series of %dx%dx%d: %.1f ms CPU per series (%d skeleton voxels)\n' \
    "$n" "$nx" "$ny" "$nz" "$ms" "$svox"
if /usr/bin/python3 -c 'import skimage' 2>/dev/null; then
    read -r _ pms pfr pvox < <(/usr/bin/python3 bench/peer_skimage_vessels.py "$tmp" "$trees")
    printf 'peer: scikit-image frangi + hysteresis + remove_small_objects + skeletonize_3d, 1 process: %.1f ms CPU per series (frangi alone %.1f ms; %d skeleton voxels): onfh %.1fx faster per core (%.1fx than its frangi alone)\n' \
        "$pms" "$pfr" "$pvox" "$(echo "$pms / $ms" | bc -l)" "$(echo "$pfr / $ms" | bc -l)"
else
    echo "peer: scikit-image missing (tools/deps.sh bench installs python3-skimage)"
fi
