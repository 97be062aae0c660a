/* version.c: build identity and library versions (see version.h). The commit and flags come
 * from buildinfo.h, which the Makefile rewrites only when they change. */
#include "pipeline/version.h"

#include <hdf5.h>
#include <mpi.h>
#include <png.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "buildinfo.h"
#if ONFH_HAVE_DNNL
#include <dnnl.h>
#endif
#if ONFH_GPU
#include "lib/nn/cuda/cuda_info.h"
#endif

static void dotted(char *out, size_t cap, int v, int major_div, int minor_div)
{
    snprintf(out, cap, "%d.%d.%d", v / major_div, v % major_div / minor_div, v % minor_div);
}

void versions_get(Versions *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->onfh, sizeof v->onfh, "%s", ONFH_VERSION);
    snprintf(v->commit, sizeof v->commit, "%s", ONFH_GIT_COMMIT);
    snprintf(v->build, sizeof v->build, "%s", ONFH_BUILD_FLAGS);

    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    snprintf(v->mpi, sizeof v->mpi, "%s", lib);

    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(v->hdf5, sizeof v->hdf5, "%u.%u.%u", maj, min, rel);
    snprintf(v->yaml, sizeof v->yaml, "%s", yaml_get_version_string());
    snprintf(v->zlib, sizeof v->zlib, "%s", zlibVersion());
    snprintf(v->libpng, sizeof v->libpng, "%s", png_get_libpng_ver(NULL));
#if ONFH_HAVE_DNNL
    const dnnl_version_t *d = dnnl_version();
    snprintf(v->onednn, sizeof v->onednn, "%d.%d.%d", d->major, d->minor, d->patch);
#else
    snprintf(v->onednn, sizeof v->onednn, "off");
#endif
#if ONFH_GPU
    NnCudaInfo c;
    nn_cuda_info(&c);
    char rt[32], drv[32];
    snprintf(rt, sizeof rt, "%d.%d", c.runtime_version / 1000, c.runtime_version % 1000 / 10);
    snprintf(drv, sizeof drv, "%d.%d", c.driver_version / 1000, c.driver_version % 1000 / 10);
    if (c.device_count > 0)
        snprintf(v->cuda, sizeof v->cuda, "runtime %s, driver %s, %d GPU(s), %s", rt, drv,
                 c.device_count, c.device0);
    else
        snprintf(v->cuda, sizeof v->cuda, "runtime %s, no GPU (%s)", rt, c.error);
    dotted(v->cudnn, sizeof v->cudnn, c.cudnn_version, 10000, 100);
    dotted(v->nccl, sizeof v->nccl, c.nccl_version, 10000, 100);
    dotted(v->cublas, sizeof v->cublas, c.cublas_version, 10000, 100);
#else
    (void)dotted;
    snprintf(v->cuda, sizeof v->cuda, "off");
    snprintf(v->cudnn, sizeof v->cudnn, "off");
    snprintf(v->nccl, sizeof v->nccl, "off");
    snprintf(v->cublas, sizeof v->cublas, "off");
#endif
}

void versions_print(FILE *out)
{
    Versions v;
    versions_get(&v);
    fprintf(out,
            "onfh %s (commit %s)\n"
            "build:   %s\n"
            "MPI:     %s\n"
            "HDF5:    %s\n"
            "libyaml: %s\n"
            "oneDNN:  %s\n"
            "zlib:    %s\n"
            "libpng:  %s\n"
            "CUDA:    %s\n"
            "cuDNN:   %s\n"
            "NCCL:    %s\n"
            "cuBLAS:  %s\n",
            v.onfh, v.commit, v.build, v.mpi, v.hdf5, v.yaml, v.onednn, v.zlib, v.libpng, v.cuda,
            v.cudnn, v.nccl, v.cublas);
}

void versions_json(JsonWriter *w)
{
    Versions v;
    versions_get(&v);
    const struct {
        const char *key;
        const char *value;
    } rows[] = {
        {"onfh", v.onfh},     {"commit", v.commit}, {"build", v.build},   {"mpi", v.mpi},
        {"hdf5", v.hdf5},     {"libyaml", v.yaml},  {"onednn", v.onednn}, {"zlib", v.zlib},
        {"libpng", v.libpng}, {"cuda", v.cuda},     {"cudnn", v.cudnn},   {"nccl", v.nccl},
        {"cublas", v.cublas},
    };
    json_object_begin(w);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_key(w, rows[i].key);
        json_string(w, rows[i].value);
    }
    json_object_end(w);
}
