# torch_peer.sh, sourced by the benches that run PyTorch on the CPU: torch_peer ARGS... runs
# /usr/bin/python3 ARGS... the way ../shared/reference/peers.md says PyTorch runs at its best.
# Tuned malloc: glibc otherwise returns PyTorch's large buffers to the kernel after every step
# and page faults dominate. Transparent huge pages (glibc.malloc.hugetlb=1): onfh asks for them
# on its large blocks (lib/util/mem.c), and they give PyTorch about 4% here too.
torch_peer() {
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 MALLOC_MMAP_THRESHOLD_=33554432 \
        MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824 /usr/bin/python3 "$@"
}
