#!/bin/bash
# run.sh BUILD_DIR [PART...]: every benchmark (or only the parts named: hash, synth, ingest, nn, train, dp, archs, evaluate, vessels, progression, forecast), each
# printing onfh's figure beside its peer's. `make bench BENCH=ingest` passes parts.
set -eu
build=${1:?usage: bench/run.sh BUILD_DIR [hash|synth|ingest|nn|train|dp|archs|evaluate|vessels|progression|forecast]...}
shift
parts=${*:-hash synth nn train dp archs evaluate vessels progression forecast ingest}
want() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
cores=$(nproc)
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
echo "onfh benchmarks on $cores cores, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m)"
echo

if want hash; then
    "$build/bench/bench_hash"
    echo
fi
if want evaluate; then
    bench/evaluate.sh "$build"
    echo
fi
if want vessels; then
    bench/vessels.sh "$build"
    echo
fi
if want progression; then
    bench/progression.sh "$build"
    echo
fi
if want forecast; then
    mkdir -p runs
    bench/forecast.sh "$build"
    echo
fi
if want dp; then
    bench/train_dp.sh "$build"
    echo
fi

# synth: a 1000-patient cohort on every core, and the default (paper-sized) cohort
want synth && for cfg in bench/configs/synth_1000.yaml configs/default.yaml; do
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
if want synth && /usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null; then
    rate=$(/usr/bin/python3 bench/peer_pydicom_write.py 2000 128 "$tmp/peer")
    echo "peer: pydicom writing 128x128 MR slices, no rendering, 1 process: $rate slices/s"
fi

if want nn; then
    bench/nn.sh "$build"
    echo
fi
if want train; then
    bench/train.sh "$build"
    echo
fi
if want archs; then
    bench/archs.sh "$build"
    echo
fi

# ingest: the default cohort's DICOM tree into cohort.h5, beside a pydicom + scipy + h5py script
# doing the same work and dcm2niix converting the same tree. The goal is stated per core on
# uncompressed data, so the tree measured is the default cohort synthesised with every series in
# Explicit VR Little Endian (runs/bench-ingest-native, made once like runs/default): onfh on 1
# rank (default compression, then ingest.deflate=0) and on every core, each peer on 1 process,
# then the ratios of CPU seconds. One onfh row and dcm2niix on the mixed tree (runs/default/raw:
# five transfer syntaxes, deflated and RLE among them) show what compressed inputs cost.
# Peak memory is the largest resident set of one process (GNU time). CPU is user + system
# seconds of all ranks: the per-core figure on a shared machine, where wall time is noisy.
# Slices are resampled to 128x128, the peer's size (the default config now says 64).
want ingest || exit 0
native=runs/bench-ingest-native
if [ ! -d runs/default/raw ]; then
    mpirun -np "$cores" "$build/onfh" synth configs/default.yaml >/dev/null 2>&1
fi
if [ ! -d "$native/raw" ]; then
    mpirun -np "$cores" "$build/onfh" synth configs/default.yaml --run "$native" \
        --set 'synth.encodings=[explicit-le]' >/dev/null 2>&1
fi
# onfh_ingest RUN NP [KEY=VALUE]: one ingest of RUN/raw; sets cpu (user + system seconds)
onfh_ingest() {
    local src=$1 np=$2 set=${3:-} mb rc=0 secs files slices rss user sys
    mb=$(du -smL "$src/raw" | cut -f1)
    rm -rf "$tmp/ingest"
    mkdir -p "$tmp/ingest"
    ln -s "$PWD/$src/raw" "$tmp/ingest/raw"
    cp "$src/labels.csv" "$src/clinical.csv" "$tmp/ingest/"
    start=$(date +%s.%N)
    # exit 4 is expected: the default cohort plants faults for ingest to skip
    /usr/bin/time -f '%M %U %S' -o "$tmp/rss" mpirun -q -np "$np" "$build/onfh" ingest configs/default.yaml --run "$tmp/ingest" --set ingest.grid_size=128 ${set:+--set $set} >"$tmp/ingest.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || { cat "$tmp/ingest.log"; exit 1; }
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    files=$(grep -o '"files": [0-9]*' "$tmp/ingest/ingest_report.json" | grep -o '[0-9]*$')
    slices=$(grep -o '"training_slices": [0-9]*' "$tmp/ingest/ingest_report.json" | grep -o '[0-9]*$')
    read -r rss user sys < <(tail -n 1 "$tmp/rss")
    cpu=$(echo "$user + $sys" | bc -l)
    printf 'onfh ingest %s, %d rank(s)%s: %d files (%d MiB) in %.1f s: %.0f files/s, %.0f training slices/s, %.1f MiB/s; CPU %.2f s; peak RSS %s KiB\n' \
        "$src/raw" "$np" "${set:+, $set}" "$files" "$mb" "$secs" "$(echo "$files / $secs" | bc -l)" "$(echo "$slices / $secs" | bc -l)" \
        "$(echo "$mb / $secs" | bc -l)" "$cpu" "$rss"
}
# dcm2niix_tree RUN: dcm2niix over RUN/raw; sets cpu
dcm2niix_tree() {
    local user sys secs mb
    mb=$(du -smL "$1/raw" | cut -f1)
    rm -rf "$tmp/nii" && mkdir -p "$tmp/nii"
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$tmp/cpu" dcm2niix -z n -o "$tmp/nii" "$1/raw" >/dev/null 2>&1 || true
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    read -r user sys < <(tail -n 1 "$tmp/cpu")
    cpu=$(echo "$user + $sys" | bc -l)
    printf 'peer: dcm2niix -z n, 1 process, %s: in %.1f s: %.1f MiB/s; CPU %.2f s\n' "$1/raw" "$secs" "$(echo "$mb / $secs" | bc -l)" "$cpu"
}
ratio() { echo "$1 / $2" | bc -l; }

onfh_ingest "$native" 1
onfh_default=$cpu
onfh_ingest "$native" "$cores"
onfh_ingest "$native" 1 ingest.deflate=0
onfh_raw=$cpu
# the pydicom script twice: with gzip (the like of onfh's default) and without compression (the
# like of ingest.deflate=0), so each onfh row is compared with the same work
peer_gzip= peer_none=
if /usr/bin/python3 -c 'import pydicom, h5py, scipy' 2>/dev/null; then
    mb=$(du -smL "$native/raw" | cut -f1)
    for packing in gzip none; do
        /usr/bin/time -f '%M %U %S' -o "$tmp/rss" /usr/bin/python3 bench/peer_ingest.py "$native/raw" "$tmp/peer.h5" 128 "$packing" >"$tmp/peer.out"
        read -r files slices secs <"$tmp/peer.out"
        read -r rss user sys < <(tail -n 1 "$tmp/rss")
        cpu=$(echo "$user + $sys" | bc -l)
        printf -v "peer_$packing" '%s' "$cpu"
        printf 'peer: pydicom + scipy + h5py (%s), 1 process, %s: %d files in %.1f s: %.0f files/s, %.1f MiB/s; CPU %.2f s; peak RSS %s KiB\n' \
            "$packing" "$native/raw" "$files" "$secs" "$(echo "$files / $secs" | bc -l)" "$(echo "$mb / $secs" | bc -l)" "$cpu" "$rss"
    done
fi
d2n_cpu=
if command -v dcm2niix >/dev/null; then
    dcm2niix_tree "$native"
    d2n_cpu=$cpu
fi
echo "per core, uncompressed tree (peer CPU / onfh CPU, like with like; goal: 10x pydicom, 2x dcm2niix):"
# (dcm2niix -z n writes uncompressed NIfTI: only the deflate=0 row is its like)
for row in "ingest.deflate=0:$onfh_raw:$peer_none:$d2n_cpu" "default ingest.deflate:$onfh_default:$peer_gzip:"; do
    IFS=: read -r what ours peer d2n <<<"$row"
    printf '  onfh 1 rank, %s: %s%s\n' "$what" \
        "${peer:+$(printf '%.1fx pydicom + scipy + h5py' "$(ratio "$peer" "$ours")")}" \
        "${d2n:+$(printf ', %.2fx dcm2niix' "$(ratio "$d2n" "$ours")")}"
done
# the mixed tree: compressed transfer syntaxes
onfh_ingest runs/default 1 ingest.deflate=0
command -v dcm2niix >/dev/null && dcm2niix_tree runs/default
