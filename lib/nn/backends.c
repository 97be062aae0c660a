/* backends.c: choosing a backend by name (config and command line). */
#include <string.h>

#include "lib/nn/backend.h"

#if ONFH_HAVE_DNNL && __has_include("lib/nn/dnnl/dnnl.h")
#include "lib/nn/dnnl/dnnl.h"
#define HAVE_DNNL_BACKEND 1
#else
#define HAVE_DNNL_BACKEND 0
#endif

const NnBackend *nn_backend_by_name(const char *name, Err *e)
{
    if (!strcmp(name, "ref"))
        return nn_backend_ref();
#if HAVE_DNNL_BACKEND
    if (!strcmp(name, "dnnl") || !strcmp(name, "auto"))
        return nn_backend_dnnl();
#else
    if (!strcmp(name, "auto"))
        return nn_backend_ref();
    if (!strcmp(name, "dnnl")) {
        err_set(e, ERR_CONFIG,
                "backend 'dnnl': this onfh was built without oneDNN "
                "(install libdnnl-dev, or set DNNL_DIR, and rebuild)");
        return NULL;
    }
#endif
    err_set(e, ERR_CONFIG, "backend '%s': unknown (expected auto, ref or dnnl)", name);
    return NULL;
}
