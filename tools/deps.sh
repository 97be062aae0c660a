#!/bin/sh
# deps.sh GROUP: install the Debian/Ubuntu packages onfh needs for GROUP, only those missing.
#   build  compile bin/onfh           test  build + what `make test` needs (with Slurm and munge)
#   bench  build + the peers that `make bench` runs beside onfh, and what the oracle scripts of
#          tools/ need (tools/stats_oracle.py: numpy, scipy, scikit-learn; tools/skeleton_oracle.py
#          and bench/peer_skimage_vessels.py: scikit-image)
# A second run with everything present only queries dpkg (well under 2 s). Works as root or
# through sudo; otherwise prints the one apt-get command to run. ONFH_SKIP_DEPS=1 skips it all
# (clusters with modules: point MPICC, HDF5_DIR, YAML_DIR, DNNL_DIR at your installs instead).
set -eu
group=${1:-build}

build="pkg-config make gcc libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libyaml-dev libdnnl-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev libopenjp2-7-dev libcharls-dev libdeflate-dev"
test="$build libcmocka-dev clang-format dcmtk dicom3tools python3-pydicom python3-h5py hdf5-tools libgdcm-tools chromium python3-pil"
# Installed when possible, else named in a note: the one-node Slurm cluster of slurm/local, for
# tests/integration/slurm.sh, which skips without them (it also needs root).
test_optional="jq slurmctld slurmd slurm-client munge"
bench="$build coreutils bc time python3-pydicom python3-numpy python3-scipy python3-sklearn python3-skimage python3-h5py dcm2niix python3-torch python3-torchvision"

case "$group" in
build) want=$build ;;
test) want=$test optional=$test_optional ;;
bench) want=$bench ;;
*) echo "deps.sh: unknown group '$group' (expected build, test or bench)" >&2; exit 2 ;;
esac

[ "${ONFH_SKIP_DEPS:-0}" = 1 ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian/Ubuntu system, so nothing is installed automatically." >&2
    echo "  onfh needs: Open MPI (or another MPI), parallel HDF5, libyaml, libpng, zlib; optional oneDNN, CUDA." >&2
    echo "  Point MPICC, HDF5_DIR, YAML_DIR, DNNL_DIR, CUDA_HOME at them; the Makefile banner shows what it found." >&2
    exit 0
fi

missing_of() { # the packages of "$@" that are not installed
    for p in "$@"; do
        case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" in
        ii*) ;;
        *) printf ' %s' "$p" ;;
        esac
    done
}
# shellcheck disable=SC2086 # package lists
missing=$(missing_of $want)
# shellcheck disable=SC2086
missing_optional=$(missing_of ${optional:-})
[ -z "$missing$missing_optional" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run="sudo"
elif [ -z "$missing" ]; then
    echo "deps.sh: note: not installed (the tests that need them skip):$missing_optional" >&2
    exit 0
else
    echo "deps.sh: these packages are missing:$missing" >&2
    echo "  and this user can neither write as root nor use sudo without a password. Ask an admin to run:" >&2
    echo "    apt-get install -y$missing" >&2
    echo "  or set ONFH_SKIP_DEPS=1 and point the Makefile at your own installs (see README)." >&2
    exit 1
fi

echo "deps.sh: installing$missing$missing_optional"
export DEBIAN_FRONTEND=noninteractive
$run apt-get update -qq || true
# shellcheck disable=SC2086 # package lists
if [ -n "$missing" ] && ! $run apt-get install -y -qq $missing >/dev/null; then
    echo "deps.sh: apt-get could not install:$missing (see the messages above; is the network up?)" >&2
    exit 1
fi
# shellcheck disable=SC2086
if [ -n "$missing_optional" ] && ! $run apt-get install -y -qq $missing_optional >/dev/null; then
    echo "deps.sh: note: could not install (the tests that need them skip):$missing_optional" >&2
fi
