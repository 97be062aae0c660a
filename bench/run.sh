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

# ingest: the default cohort's DICOM tree into cohort.h5, on 1 and on every core, beside a
# pydicom + scipy + h5py script doing the same work and dcm2niix converting the same tree.
# Peak memory is the largest resident set of one process (GNU time). CPU is user + system
# seconds of all ranks: the per-core figure on a shared machine, where wall time is noisy. The
# last onfh row turns compression off (ingest.deflate=0), to show what it costs. Slices are
# resampled to 128x128, the peer's size (the default config now says 64).
want ingest || exit 0
if [ ! -d runs/default/raw ]; then
    mpirun -np "$cores" "$build/onfh" synth configs/default.yaml >/dev/null 2>&1
fi
mb=$(du -sm runs/default/raw | cut -f1)
for run in "1" "$cores" "1 ingest.deflate=0"; do
    set -- $run
    np=$1
    extra=${2:+--set $2}
    rm -rf "$tmp/ingest"
    mkdir -p "$tmp/ingest"
    ln -s "$PWD/runs/default/raw" "$tmp/ingest/raw"
    cp runs/default/labels.csv runs/default/clinical.csv "$tmp/ingest/"
    start=$(date +%s.%N)
    # exit 4 is expected: the default cohort plants faults for ingest to skip
    rc=0
    /usr/bin/time -f '%M %U %S' -o "$tmp/rss" mpirun -q -np "$np" "$build/onfh" ingest configs/default.yaml --run "$tmp/ingest" --set ingest.grid_size=128 $extra >"$tmp/ingest.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || { cat "$tmp/ingest.log"; exit 1; }
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    files=$(grep -o '"files": [0-9]*' "$tmp/ingest/ingest_report.json" | grep -o '[0-9]*$')
    slices=$(grep -o '"training_slices": [0-9]*' "$tmp/ingest/ingest_report.json" | grep -o '[0-9]*$')
    read -r rss user sys < <(tail -n 1 "$tmp/rss")
    printf 'onfh ingest, %d rank(s)%s: %d files (%d MiB) in %.1f s: %.0f files/s, %.0f training slices/s, %.1f MiB/s; CPU %.1f s; peak RSS %s KiB\n' \
        "$np" "${2:+, $2}" "$files" "$mb" "$secs" "$(echo "$files / $secs" | bc -l)" "$(echo "$slices / $secs" | bc -l)" \
        "$(echo "$mb / $secs" | bc -l)" "$(echo "$user + $sys" | bc -l)" "$rss"
done
if /usr/bin/python3 -c 'import pydicom, h5py, scipy' 2>/dev/null; then
    /usr/bin/time -f '%M %U %S' -o "$tmp/rss" /usr/bin/python3 bench/peer_ingest.py runs/default/raw "$tmp/peer.h5" 128 >"$tmp/peer.out"
    read -r files slices secs <"$tmp/peer.out"
    read -r rss user sys < <(tail -n 1 "$tmp/rss")
    printf 'peer: pydicom + scipy + h5py, 1 process: %d files in %.1f s: %.0f files/s, %.1f MiB/s; CPU %.1f s; peak RSS %s KiB\n' \
        "$files" "$secs" "$(echo "$files / $secs" | bc -l)" "$(echo "$mb / $secs" | bc -l)" "$(echo "$user + $sys" | bc -l)" "$rss"
fi
if command -v dcm2niix >/dev/null; then
    mkdir -p "$tmp/nii"
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$tmp/cpu" dcm2niix -z n -o "$tmp/nii" runs/default/raw >/dev/null 2>&1 || true
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    read -r user sys < <(tail -n 1 "$tmp/cpu")
    printf 'peer: dcm2niix -z n, 1 process: the same tree in %.1f s: %.1f MiB/s; CPU %.1f s\n' "$secs" "$(echo "$mb / $secs" | bc -l)" "$(echo "$user + $sys" | bc -l)"
fi

