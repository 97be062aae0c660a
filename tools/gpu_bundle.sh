#!/bin/bash
# gpu_bundle.sh BUILD_DIR OUT_DIR: packs the GPU check's programs for a GPU node that has the
# NVIDIA driver, CUDA and PyTorch but none of our Debian packages and no network (make
# gpu-bundle). OUT_DIR/bin gets the programs, OUT_DIR/lib every shared library they need that
# such a node lacks (ldd tells). Not packed: glibc (libresolv included) and the C++ runtime (every node has them,
# newer), and the CUDA libraries (the driver's libcuda, and the cudart, cuBLAS, cuDNN and NCCL
# that the node's PyTorch install already carries: tools/gpu_check.sh finds them there).
set -eu
build=${1:?usage: tools/gpu_bundle.sh BUILD_DIR OUT_DIR}
out=${2:?usage: tools/gpu_bundle.sh BUILD_DIR OUT_DIR}
skip='linux-vdso|ld-linux|/libc\.so|/libm\.so|libpthread|/libdl\.so|/librt\.so|/libresolv\.so|/libutil\.so|/libanl\.so|libgcc_s|libstdc\+\+|libcudnn|libcublas|libnccl|libcudart|/libcuda\.so'
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for p in tests/test_nn_model tests/test_nn_backend tests/test_nn_lstm_device tests/test_nn_nccl \
    bench/bench_train bench/bench_progression; do
    [ -x "$build/$p" ] || { echo "gpu_bundle: $build/$p is missing (make gpu-bundle builds it)" >&2; exit 1; }
    cp "$build/$p" "$out/bin/"
    ldd "$build/$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -Ev "$skip" |
        while read -r lib; do cp -nL "$lib" "$out/lib/"; done
done
cp tools/gpu_check.sh tools/gpu_env.sh tools/gpu_perf.sh "$out/"
echo "gpu_bundle: $(du -sh "$out" | cut -f1) in $out ($(ls "$out/lib" | wc -l) libraries)"
