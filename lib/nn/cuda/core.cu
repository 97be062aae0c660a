/* core.cu: the CUDA backend's device, stream, library handles, memory and error checks (see
 * cuda_be.h and cu_core.cuh). One stream carries every op, so ops run in the order the graph
 * calls them and no op needs an event. */
#include "lib/nn/cuda/cu_core.cuh"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

static int initialised;
static cudaStream_t stream;
static cudnnHandle_t cudnn;
static cublasHandle_t cublas;
static int sync_each_op; /* ONFH_CUDA_SYNC=1 */
static int profile;      /* ONFH_CUDA_PROFILE=1 */
int cu_deterministic = 1, cu_conv_find = 0, cu_conv_own = 1, cu_bn_own = 1, cu_tf32 = 0;
static size_t peak_used;
static char device_name[256];

void cu_die(const char *lib, const char *what, const char *msg, const char *file, int line)
{
    fprintf(stderr, "onfh: %s error in %s (%s:%d): %s\n", lib, what, file, line, msg);
    fflush(stderr);
    abort();
}

/* A local rank from the launcher's environment, or -1. */
static int env_int(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 0 || v > 1 << 20 ? -1 : (int)v;
}

// --- ONFH_CUDA_PROFILE: wall time between consecutive ops, each waited for, by op name --------

enum { PROFILE_OPS = 64 };
static struct {
    const char *op;
    double seconds;
    long calls;
} prof[PROFILE_OPS];
static double prof_last, prof_dt; /* when the last op ended; how long it took */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void profile_op(const char *op)
{
    double t = now();
    prof_dt = prof_last > 0 ? t - prof_last : 0;
    for (int i = 0; i < PROFILE_OPS; i++)
        if (!prof[i].op || !strcmp(prof[i].op, op)) {
            prof[i].op = op;
            prof[i].seconds += prof_dt;
            prof[i].calls++;
            break;
        }
    prof_last = t;
}

/* Forget what was timed so far: benchmarks call it after their warm-up steps, whose first calls
 * (cuDNN's algorithm choice, workspace growth, lazy kernel loading) would swamp a step's profile.
 */
void cu_profile_reset(void)
{
    memset(prof, 0, sizeof prof);
    prof_last = prof_dt = 0;
    cu_conv_profile_reset();
}

void cu_set_tf32(int on)
{
    if (on == cu_tf32)
        return;
    cu_tf32 = on;
    CUBLAS_CHECK(cublasSetMathMode(cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    cu_conv_release(); /* algorithms were chosen for the other math */
}

double cu_profile_last(void)
{
    return profile ? prof_dt : 0.0;
}

static void print_profile(void)
{
    double total = 0;
    for (int i = 0; i < PROFILE_OPS && prof[i].op; i++)
        total += prof[i].seconds;
    fprintf(stderr, "cuda profile (each op waited for; time since the previous op ended):\n");
    for (;;) { /* largest first, a selection pass at a time: at most 64 names */
        int best = -1;
        for (int i = 0; i < PROFILE_OPS && prof[i].op; i++)
            if (prof[i].calls > 0 && (best < 0 || prof[i].seconds > prof[best].seconds))
                best = i;
        if (best < 0)
            break;
        fprintf(stderr, "  %-28s %9.3f s %5.1f%% %8ld calls\n", prof[best].op, prof[best].seconds,
                100.0 * prof[best].seconds / (total > 0 ? total : 1), prof[best].calls);
        prof[best].calls = -prof[best].calls;
    }
    cu_conv_profile_print();
}

int cu_init(char *msg, size_t cap)
{
    if (initialised)
        return 0;
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess || count == 0) {
        snprintf(msg, cap, "no CUDA device: %s",
                 rc != cudaSuccess ? cudaGetErrorString(rc) : "the driver reports none");
        cudaGetLastError(); /* clear the sticky error */
        return -1;
    }
    int dev = env_int("ONFH_CUDA_DEVICE");
    if (dev < 0) {
        int local = env_int("SLURM_LOCALID");
        if (local < 0)
            local = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
        dev = local < 0 ? 0 : local % count;
    }
    if (dev >= count) {
        snprintf(msg, cap, "ONFH_CUDA_DEVICE=%d: only %d device(s)", dev, count);
        return -1;
    }
    /* a device that exists but cannot be used (taken in exclusive mode, out of memory) is a
     * reason to fall back, not a crash: the caller names it */
    cudaError_t crc = cudaSetDevice(dev);
    if (crc == cudaSuccess)
        crc = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    if (crc != cudaSuccess) {
        snprintf(msg, cap, "device %d: %s", dev, cudaGetErrorString(crc));
        cudaGetLastError();
        return -1;
    }
    cudnnStatus_t drc = cudnnCreate(&cudnn);
    if (drc != CUDNN_STATUS_SUCCESS) {
        snprintf(msg, cap, "device %d: cuDNN: %s", dev, cudnnGetErrorString(drc));
        return -1;
    }
    cublasStatus_t brc = cublasCreate(&cublas);
    if (brc != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "device %d: cuBLAS: %s", dev, cublasGetStatusString(brc));
        return -1;
    }
    CUDNN_CHECK(cudnnSetStream(cudnn, stream));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    /* fp32 means fp32: no TF32 tensor-core rounding unless asked for (ONFH_CUDA_MATH=tf32) */
    const char *m = getenv("ONFH_CUDA_MATH");
    cu_tf32 = m && !strcmp(m, "tf32");
    CUBLAS_CHECK(
        cublasSetMathMode(cublas, cu_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    cudaDeviceProp prop;
    CU_CHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(device_name, sizeof device_name, "%s", prop.name);
    const char *s = getenv("ONFH_CUDA_SYNC");
    sync_each_op = s && *s && strcmp(s, "0");
    s = getenv("ONFH_CUDA_DETERMINISTIC");
    cu_deterministic = !(s && !strcmp(s, "0"));
    s = getenv("ONFH_CUDA_CONV");
    cu_conv_find = s && !strcmp(s, "find");
    cu_conv_own = !(s && !strcmp(s, "cudnn"));
    s = getenv("ONFH_CUDA_BN");
    cu_bn_own = !(s && !strcmp(s, "cudnn"));
    s = getenv("ONFH_CUDA_PROFILE");
    profile = s && *s && strcmp(s, "0");
    if (profile)
        atexit(print_profile);
    initialised = 1;
    return 0;
}

cudaStream_t cu_stream(void)
{
    return stream;
}

cudnnHandle_t cu_cudnn(void)
{
    return cudnn;
}

cublasHandle_t cu_cublas(void)
{
    return cublas;
}

const char *cu_device_name(void)
{
    return device_name;
}

static void sample_peak(void)
{
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && total_b - free_b > peak_used)
        peak_used = total_b - free_b;
}

size_t cu_peak_bytes(void)
{
    sample_peak();
    return peak_used;
}

void *cu_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    CU_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
    sample_peak();
    return p;
}

void cu_free(void *p)
{
    if (p) {
        CU_CHECK(cudaStreamSynchronize(stream));
        CU_CHECK(cudaFree(p));
    }
}

void cu_zero(void *p, size_t bytes)
{
    if (bytes)
        CU_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
}

/* Uploads of a megabyte or more (a batch of images: 77 MB at 224x224, batch 128) go through two
 * pinned buffers in turn: the host copies chunk k + 1 into one while the DMA engine moves chunk
 * k out of the other. Copying from pageable memory instead made the driver stage it, and that
 * was the slowest stretch of a mobilenet_v3_large step on an H200 (README). If pinned memory
 * cannot be had, the pageable path stays. */
enum { STAGE_BYTES = 8 << 20 };
static char *stage[2];
static cudaEvent_t stage_free[2]; /* recorded after the copy out of stage[k] */
static int stage_state;           /* 0 untried, 1 ready, -1 unavailable */

static int stage_ready(void)
{
    if (stage_state == 0) {
        stage_state = -1;
        for (int k = 0; k < 2; k++)
            if (cudaHostAlloc((void **)&stage[k], STAGE_BYTES, cudaHostAllocDefault) !=
                    cudaSuccess ||
                cudaEventCreateWithFlags(&stage_free[k], cudaEventDisableTiming) != cudaSuccess) {
                cudaGetLastError();
                return 0; /* what was made stays allocated: a few MB, once */
            }
        stage_state = 1;
    }
    return stage_state == 1;
}

void cu_upload(void *dst, const void *src, size_t bytes)
{
    if (bytes >= (1u << 20) && stage_ready()) {
        for (size_t off = 0, k = 0; off < bytes; off += STAGE_BYTES, k ^= 1) {
            size_t len = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
            CU_CHECK(cudaEventSynchronize(stage_free[k])); /* its last copy is done */
            memcpy(stage[k], (const char *)src + off, len);
            CU_CHECK(
                cudaMemcpyAsync((char *)dst + off, stage[k], len, cudaMemcpyHostToDevice, stream));
            CU_CHECK(cudaEventRecord(stage_free[k], stream));
        }
    } else if (bytes) {
        /* pageable host memory: the driver stages the copy, and src may be reused at once */
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    }
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cu_download(void *dst, const void *src, size_t bytes)
{
    if (bytes)
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cu_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src)
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

void cu_sync(void)
{
    CU_CHECK(cudaStreamSynchronize(stream));
    CU_CHECK(cudaGetLastError());
}

void cu_after(const char *op, const char *file, int line)
{
    cudaError_t rc = cudaGetLastError();
    if (rc == cudaSuccess && (sync_each_op || profile))
        rc = cudaStreamSynchronize(stream);
    if (rc != cudaSuccess)
        cu_die("CUDA", op, cudaGetErrorString(rc), file, line);
    if (profile)
        profile_op(op);
}
