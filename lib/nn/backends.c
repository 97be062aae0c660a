/* backends.c: choosing a backend by name (config and command line), and the host memory that
 * the CPU backends share (backend.h NnMemory). */
#include <string.h>

#include "lib/nn/backend.h"
#include "lib/nn/cuda/nn_cuda.h"
#include "lib/nn/dnnl/nn_dnnl.h"
#include "lib/util/mem.h"

static void *host_alloc(size_t bytes)
{
    return mem_calloc(bytes ? bytes : 1, 1);
}

static void host_zero(void *p, size_t bytes)
{
    memset(p, 0, bytes);
}

static void host_copy(void *dst, const void *src, size_t bytes)
{
    if (dst != src)
        memmove(dst, src, bytes);
}

static void host_sync(void)
{
}

const NnMemory nn_host_memory = {
    .device = 0,
    .alloc = host_alloc,
    .free = mem_free,
    .zero = host_zero,
    .upload = host_copy,
    .download = host_copy,
    .copy = host_copy,
    .sync = host_sync,
};

const NnMemory nn_separate_memory = {
    .device = 1,
    .alloc = host_alloc,
    .free = mem_free,
    .zero = host_zero,
    .upload = host_copy,
    .download = host_copy,
    .copy = host_copy,
    .sync = host_sync,
};

const NnBackend *nn_backend_by_name(const char *name, Err *e)
{
    if (!strcmp(name, "ref"))
        return nn_backend_ref();
    if (!strcmp(name, "refdev"))
        return nn_backend_refdev();
    if (!strcmp(name, "auto")) {
        if (nn_backend_cuda(NULL, 0))
            return nn_backend_cuda(NULL, 0);
        return nn_backend_dnnl() ? nn_backend_dnnl() : nn_backend_ref();
    }
    if (!strcmp(name, "dnnl")) {
        if (!nn_backend_dnnl())
            err_set(e, ERR_CONFIG,
                    "backend 'dnnl': this onfh was built without oneDNN "
                    "(install libdnnl-dev, or set DNNL_DIR, and rebuild)");
        return nn_backend_dnnl();
    }
    if (!strcmp(name, "cuda")) {
        char why[256];
        const NnBackend *be = nn_backend_cuda(why, sizeof why);
        if (!be)
            err_set(e, ERR_CONFIG, "backend 'cuda': %s", why);
        return be;
    }
    err_set(e, ERR_CONFIG, "backend '%s': unknown (expected auto, ref, refdev, dnnl or cuda)",
            name);
    return NULL;
}
