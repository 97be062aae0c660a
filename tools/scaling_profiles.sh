#!/bin/bash
# scaling_profiles.sh BUILD_DIR [ARCH...]: the backward profiles the cost model reads
# (tools/scaling_model.py, docs/scaling.md): `onfh model profile ARCH` (dnnl, batch 16 at
# 224x224, medians of 3 steps) for every architecture of `onfh model list` (or those named),
# each into docs/scaling/profiles/ARCH.txt, with the machine's load average in its header.
set -eu
build=${1:?usage: tools/scaling_profiles.sh BUILD_DIR [ARCH...]}
shift
out=docs/scaling/profiles
mkdir -p "$out"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || mapfile -t archs < <("$build/onfh" model list | awk 'NR > 1 { print $1 }')
for arch in "${archs[@]}"; do
    {
        "$build/onfh" model profile "$arch" --batch 16 --size 224 --steps 3
        echo "# $(date -u +%Y-%m-%dT%H:%MZ), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$out/$arch.txt.tmp"
    mv "$out/$arch.txt.tmp" "$out/$arch.txt"
    echo "$out/$arch.txt: backward $(awk '$1 == "backward_s" { print $2 }' "$out/$arch.txt") s"
done
