#!/bin/bash
# run.sh BUILD_DIR: every benchmark, each printing onfh's figure beside its peer's.
set -eu
build=${1:?usage: bench/run.sh BUILD_DIR}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
cores=$(nproc)
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
echo "onfh benchmarks on $cores cores, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m)"
echo

"$build/bench/bench_hash"
echo

# synth: a 1000-patient cohort on every core, and the default (paper-sized) cohort
for cfg in bench/configs/synth_1000.yaml configs/default.yaml; do
    start=$(date +%s.%N)
    mpirun -np "$cores" "$build/onfh" synth "$cfg" --run "$tmp/synth" --force >"$tmp/synth.log" 2>&1 ||
        { cat "$tmp/synth.log"; exit 1; }
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    slices=$(awk -F, 'NR > 1' "$tmp/synth/truth/slices.csv" | wc -l)
    mra=$(awk -F, 'NR > 1' "$tmp/synth/truth/vessels.csv" | wc -l)
    patients=$(awk -F, 'NR > 1' "$tmp/synth/truth/patients.csv" | wc -l)
    printf 'onfh synth %s: %d patients, %d T1 slices + %d vessel series in %.1f s on %d ranks: %.0f T1 slices/s\n' \
        "$cfg" "$patients" "$slices" "$mra" "$secs" "$cores" "$(echo "$slices / $secs" | bc -l)"
    rm -rf "$tmp/synth"
done
if /usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null; then
    rate=$(/usr/bin/python3 bench/peer_pydicom_write.py 2000 128 "$tmp/peer")
    echo "peer: pydicom writing 128x128 MR slices, no rendering, 1 process: $rate slices/s"
fi
