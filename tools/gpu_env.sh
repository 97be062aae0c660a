# gpu_env.sh BUNDLE (sourced by tools/gpu_check.sh and tools/gpu_perf.sh): sets py (the node's
# python3, the one with PyTorch) and LD_LIBRARY_PATH: the bundle's libraries, then the CUDA
# libraries onfh links (cudart, cuBLAS, cuDNN, NCCL) from PyTorch's install.
py=$(command -v python3)
# The CUDA libraries onfh links (cudart, cuBLAS, cuDNN, NCCL), taken from PyTorch's install.
libdirs=$("$py" - <<'PY' 2>/dev/null
import glob, os, site
want = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudnn.so.9", "libnccl.so.2")
roots = site.getsitepackages() + ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
dirs = []
for w in want:
    for r in roots:
        hits = glob.glob(os.path.join(r, "**", w), recursive=True)
        if hits:
            d = os.path.dirname(hits[0])
            if d not in dirs:
                dirs.append(d)
            break
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="$PWD/$1/lib:$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
