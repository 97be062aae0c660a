/* backends.c: choosing a backend by name (config and command line). */
#include <string.h>

#include "lib/nn/backend.h"
#include "lib/nn/dnnl/nn_dnnl.h"

const NnBackend *nn_backend_by_name(const char *name, Err *e)
{
    if (!strcmp(name, "ref"))
        return nn_backend_ref();
    if (!strcmp(name, "auto"))
        return nn_backend_dnnl() ? nn_backend_dnnl() : nn_backend_ref();
    if (!strcmp(name, "dnnl")) {
        if (!nn_backend_dnnl())
            err_set(e, ERR_CONFIG,
                    "backend 'dnnl': this onfh was built without oneDNN "
                    "(install libdnnl-dev, or set DNNL_DIR, and rebuild)");
        return nn_backend_dnnl();
    }
    err_set(e, ERR_CONFIG, "backend '%s': unknown (expected auto, ref or dnnl)", name);
    return NULL;
}
