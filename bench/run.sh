#!/bin/bash
# run.sh BUILD_DIR: every benchmark, each printing onfh's figure beside its peer's.
set -eu
build=${1:?usage: bench/run.sh BUILD_DIR}
echo "onfh benchmarks on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m)"
"$build/bench/bench_hash"
