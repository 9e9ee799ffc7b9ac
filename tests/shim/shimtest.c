/*
 * shimtest - the programs the shim's tests run under LD_PRELOAD.
 *
 * They use only the CUDA driver API (linked, dlsym'd and through
 * cuGetProcAddress) and NVML (dlopen'd), and take what they expect from the
 * slice contract in the environment (GP_SLICE_MEM_LIMIT, GP_SLICE_COMPUTE,
 * GP_SLICE_CTX_OVERHEAD_MIB), so that they run the same against the fake
 * driver and a real one.  Kernels are "gp_spin", which spins for the
 * nanoseconds in its first parameter (PTX below; the fake driver reads the
 * parameter as the kernel's duration).
 *
 *   shimtest paths                  every allocation path holds the limit (TAP)
 *   shimtest meminfo USED_MIB [FREE_MIB]  CUDA and NVML report the slice (TAP)
 *   shimtest hold MIB SECONDS       allocate and hold, print "holding"
 *   shimtest stress SECONDS SEED    allocate/free random sizes (1..48 MiB, whole
 *                                   MiB); print counts
 *   shimtest churn                  allocate/free forever (to be killed)
 *   shimtest compute HOW SECONDS US achieved share vs GP_SLICE_COMPUTE (TAP);
 *   shimtest sharelog T0 FROM_MS TO_MS SECONDS US [IDLE_FROM_MS IDLE_TO_MS]
 *                                GPU time per 20 ms bucket;
 *                                   HOW: launch, ex, coop, graph, procaddr
 *   shimtest launchlog START_NS SECONDS US   launch+sync in a loop; print
 *                                   launches per 100 ms bucket from START
 *   shimtest burst START_NS FROM_MS TO_MS US launch+sync between two times
 *   shimtest oversub DEVICE_MIB     oversubscription serves host memory (TAP)
 *   shimtest multidev               a two-device slice: limits per device (TAP)
 *   shimtest fork                   a forked child shares the slice (TAP)
 *   shimtest vmm                    VMM memory counted until its last handle
 *                                   and mapping are gone (TAP)
 *   shimtest gran                   every cuMemAlloc-family path counts whole
 *                                   pages of the driver's granularity (TAP)
 *   shimtest pool                   pools' reserved memory counted, trimmed
 *                                   before a refusal (TAP)
 *   shimtest pooldev                stream-ordered memory charged to the
 *                                   stream's device (TAP, two devices)
 *   shimtest graphmem               graph memory charged when a graph runs (TAP)
 *   shimtest contexts               context overhead given back, limits
 *                                   counted (TAP)
 *   shimtest fakedriver             the fake driver's own memory rules (TAP;
 *                                   without the shim, two fake devices)
 *   shimtest devmem [DEV]           what the device really holds: used=
 *                                   (and peak= on the fake driver)
 *   shimtest now                    print CLOCK_MONOTONIC in ns
 *   shimtest rtldnext               dlsym(RTLD_NEXT) from the program searches
 *                                   after the program, whatever the shim's
 *                                   build (TAP)
 *   shimtest nvmlonly               NVML reports the slice without CUDA being
 *                                   initialised by it (TAP)
 *   shimtest passthrough MIB        allocate MIB: the driver's own answers (TAP)
 *   shimtest noop                   start and exit
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_api.h"
#include "tap.h"
#include "util.h"

#include "banned.h"

#define MiB ((uint64_t)1024 * 1024)
/* the fake driver's resident threads (fakestate.h: 16 SMs x 2048) */
#define FAKE_STACK_THREADS (16ULL * 2048)

static const char s_ptx[] =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry gp_spin(.param .u64 ns)\n{\n"
    "  .reg .u64 %rd<5>;\n  .reg .pred %p;\n"
    "  ld.param.u64 %rd1, [ns];\n  mov.u64 %rd2, %globaltimer;\n"
    "SPIN:\n  mov.u64 %rd3, %globaltimer;\n  sub.u64 %rd4, %rd3, %rd2;\n"
    "  setp.lt.u64 %p, %rd4, %rd1;\n  @%p bra SPIN;\n  ret;\n}\n";

static CUcontext s_ctx;
static CUfunction s_spin;

#define CK(call) do { \
        CUresult rc_ = (call); \
        if (rc_ != CUDA_SUCCESS) { \
            fprintf(stderr, "shimtest: %s failed: %d at line %d\n", #call, (int)rc_, __LINE__); \
            exit(2); \
        } \
    } while (0)

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_sleep_until(int64_t t)
{
    struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* The runtime's way in: the primary context. */
static void s_setup(void)
{
    CUdevice dev;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&s_ctx, dev));
    CK(cuCtxSetCurrent(s_ctx));
    CUmodule mod;
    CK(cuModuleLoadData(&mod, s_ptx));
    CK(cuModuleGetFunction(&s_spin, mod, "gp_spin"));
}

/* The i-th value of a comma-separated list of sizes (the last one when the
 * list is shorter), in MiB. */
static uint64_t s_env_mib_at(const char *name, int i, uint64_t dflt)
{
    const char *v = getenv(name);
    uint64_t mib;
    if (v == NULL)
        return dflt;
    char buf[256];
    gp_strlcpy(buf, v, sizeof buf);
    char *item = buf, *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL && i >= 0; tok = strtok_r(NULL, ",", &save), i--)
        item = tok;
    if (gp_parse_mib(item, &mib) < 0) {
        fprintf(stderr, "shimtest: bad %s\n", name);
        exit(2);
    }
    return mib;
}

static uint64_t s_env_mib(const char *name, uint64_t dflt) { return s_env_mib_at(name, 0, dflt); }
static uint64_t s_limit(void) { return s_env_mib("GP_SLICE_MEM_LIMIT", 0) * MiB; }
static uint64_t s_overhead(void) { return s_env_mib("GP_SLICE_CTX_OVERHEAD_MIB", 0) * MiB; }

/* What the job sees as used: total - free. */
static uint64_t s_seen_used(void)
{
    size_t f, t;
    CK(cuMemGetInfo_v2(&f, &t));
    return t - f;
}

/* ------------------------------------------------------------ NVML */

static struct {
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*mem)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*mem2)(nvmlDevice_t, nvmlMemory_v2_t *);
    nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlDevice_t dev;
} N;

static void s_nvml(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "shimtest: no NVML: %s\n", dlerror());
        exit(2);
    }
    *(void **)&N.init = dlsym(h, "nvmlInit_v2");
    *(void **)&N.handle = dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&N.mem = dlsym(h, "nvmlDeviceGetMemoryInfo");
    *(void **)&N.mem2 = dlsym(h, "nvmlDeviceGetMemoryInfo_v2");
    *(void **)&N.util = dlsym(h, "nvmlDeviceGetUtilizationRates");
    if (!N.init || !N.handle || !N.mem || !N.mem2 || !N.util || N.init() != NVML_SUCCESS ||
        N.handle(0, &N.dev) != NVML_SUCCESS) {
        fprintf(stderr, "shimtest: NVML unusable\n");
        exit(2);
    }
}

/* ------------------------------------------------------------ the device's truth */

/* What device dev really holds, from the driver and not through the shim:
 * the fake driver's own counters, or NVML's used memory on a real one.
 * Returns 0 and sets *peak to UINT64_MAX when the driver keeps no peak. */
static int s_device_truth(int dev, uint64_t *used, uint64_t *peak)
{
    uint64_t (*f_used)(int), (*f_peak)(int);
    *(void **)&f_used = dlsym(RTLD_DEFAULT, "fakecuda_mem_used");
    *(void **)&f_peak = dlsym(RTLD_DEFAULT, "fakecuda_mem_peak");
    if (f_used != NULL && f_peak != NULL) {
        *used = f_used(dev);
        *peak = f_peak(dev);
        return 0;
    }
    /* NVML's own answer, not the shim's view of it: looked up with libc's
     * dlsym (by its symbol version), which the shim does not interpose */
    static nvmlReturn_t (*real_mem)(nvmlDevice_t, nvmlMemory_t *);
    s_nvml();
    if (real_mem == NULL) {
        static const char *const vers[] = { "GLIBC_2.34", "GLIBC_2.17", "GLIBC_2.2.5" };
        void *(*libc_dlsym)(void *, const char *) = NULL;
        for (size_t i = 0; i < sizeof vers / sizeof vers[0] && libc_dlsym == NULL; i++)
            *(void **)&libc_dlsym = dlvsym(RTLD_DEFAULT, "dlsym", vers[i]);
        void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD);
        if (lib != NULL && libc_dlsym != NULL)
            *(void **)&real_mem = libc_dlsym(lib, "nvmlDeviceGetMemoryInfo");
        if (real_mem == NULL)
            return -1;
    }
    nvmlDevice_t h;
    nvmlMemory_t m;
    if (N.handle((unsigned)dev, &h) != NVML_SUCCESS || real_mem(h, &m) != NVML_SUCCESS)
        return -1;
    *used = m.used;
    *peak = UINT64_MAX;
    return 0;
}

/* Whether the driver is the fake one (which keeps the device's exact usage). */
static int s_is_fake(void) { return dlsym(RTLD_DEFAULT, "fakecuda_mem_used") != NULL; }

static uint64_t s_dev_used(int dev)
{
    uint64_t u, p;
    if (s_device_truth(dev, &u, &p) < 0)
        bail_out("cannot read the device's memory");
    return u;
}

/* The device's truth against the slice's limit, for a test that filled it:
 * what the device holds now (used above base) and its peak. */
static void s_check_truth(int dev, uint64_t base, uint64_t limit, const char *what)
{
    uint64_t used, peak;
    if (s_device_truth(dev, &used, &peak) < 0)
        bail_out("cannot read the device's memory");
    ok(used - base <= limit, "%s: the device holds no more than the limit (%" PRIu64 " MiB of %" PRIu64 ")",
       what, (used - base) / MiB, limit / MiB);
    if (peak != UINT64_MAX)
        ok(peak - base <= limit, "%s: the device's peak stayed within the limit (%" PRIu64 " MiB)", what,
           (peak - base) / MiB);
}

/* ------------------------------------------------------------ paths */

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*async_fn)(CUdeviceptr *, size_t, CUstream);

enum { P_ALLOC, P_PITCH, P_MANAGED, P_ASYNC, P_POOL, P_CREATE, P_ARRAY, P_ARRAY3D, P_MIPMAP,
       P_PROC_V1, P_PROC_V2, P_PROC_PTSZ, P_DLSYM, P_COUNT };
static const char *const s_path_names[P_COUNT] = {
    "cuMemAlloc", "cuMemAllocPitch", "cuMemAllocManaged", "cuMemAllocAsync",
    "cuMemAllocFromPoolAsync", "cuMemCreate", "cuArrayCreate", "cuArray3DCreate",
    "cuMipmappedArrayCreate", "cuMemAlloc via cuGetProcAddress",
    "cuMemAlloc via cuGetProcAddress_v2", "cuMemAllocAsync via cuGetProcAddress (per-thread stream)",
    "cuMemAlloc_v2 via dlopen+dlsym",
};

static alloc_fn s_proc_alloc_v1, s_proc_alloc_v2, s_dlsym_alloc;
static async_fn s_proc_async_ptsz;
static CUresult (*s_proc_free)(CUdeviceptr);

/* One allocation of about chunk bytes on path p; *bytes is what it should
 * count; *handle is what to free it with. */
static CUresult s_alloc_on(int p, uint64_t chunk, uint64_t *bytes, uintptr_t *handle)
{
    CUdeviceptr d = 0;
    CUresult rc;
    *bytes = chunk;
    switch (p) {
    case P_ALLOC: rc = cuMemAlloc_v2(&d, chunk); break;
    case P_PITCH: {
        /* a width that is not a multiple of the pitch alignment: the true
         * pitch is wider, and that is what must be counted */
        size_t pitch = 0, width = 1000, height = chunk / 1024;
        rc = cuMemAllocPitch_v2(&d, &pitch, width, height, 4);
        *bytes = (uint64_t)pitch * height;
        break;
    }
    case P_MANAGED: rc = cuMemAllocManaged(&d, chunk, CU_MEM_ATTACH_GLOBAL); break;
    case P_ASYNC: rc = cuMemAllocAsync(&d, chunk, NULL); break;
    case P_POOL: {
        CUmemoryPool pool;
        CK(cuDeviceGetDefaultMemPool(&pool, 0));
        rc = cuMemAllocFromPoolAsync(&d, chunk, pool, NULL);
        break;
    }
    case P_CREATE: {
        CUmemAllocationProp prop;
        memset(&prop, 0, sizeof prop);
        prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
        prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        prop.location.id = 0;
        CUmemGenericAllocationHandle h = 0;
        rc = cuMemCreate(&h, chunk, &prop, 0);
        *handle = (uintptr_t)h;
        return rc;
    }
    case P_ARRAY: {
        /* float4 elements: 16 bytes each */
        CUDA_ARRAY_DESCRIPTOR a = { 1024, chunk / (1024 * 16), CU_AD_FORMAT_FLOAT, 4 };
        CUarray arr = NULL;
        rc = cuArrayCreate_v2(&arr, &a);
        *bytes = 1024ULL * (chunk / (1024 * 16)) * 16;
        *handle = (uintptr_t)arr;
        return rc;
    }
    case P_ARRAY3D: {
        CUDA_ARRAY3D_DESCRIPTOR a = { 256, 256, chunk / (256 * 256 * 4), CU_AD_FORMAT_UNSIGNED_INT8, 4, 0 };
        CUarray arr = NULL;
        rc = cuArray3DCreate_v2(&arr, &a);
        *bytes = 256ULL * 256 * (chunk / (256 * 256 * 4)) * 4;
        *handle = (uintptr_t)arr;
        return rc;
    }
    case P_MIPMAP: {
        /* 2 levels of a square 2D array: the second is a quarter of the first */
        uint64_t side = 1;
        while ((side * 2) * (side * 2) * 4 * 5 / 4 <= chunk)
            side *= 2;
        CUDA_ARRAY3D_DESCRIPTOR a = { side, side, 0, CU_AD_FORMAT_FLOAT, 1, 0 };
        CUmipmappedArray arr = NULL;
        rc = cuMipmappedArrayCreate(&arr, &a, 2);
        *bytes = side * side * 4 + (side / 2) * (side / 2) * 4;
        *handle = (uintptr_t)arr;
        return rc;
    }
    case P_PROC_V1: rc = s_proc_alloc_v1(&d, chunk); break;
    case P_PROC_V2: rc = s_proc_alloc_v2(&d, chunk); break;
    case P_PROC_PTSZ: rc = s_proc_async_ptsz(&d, chunk, NULL); break;
    default: rc = s_dlsym_alloc(&d, chunk); break;
    }
    *handle = (uintptr_t)d;
    return rc;
}

/* What an allocation of bytes occupies on the device: whole 2 MiB pages. */
static uint64_t s_pages(uint64_t bytes) { return (bytes + 2 * MiB - 1) / (2 * MiB) * (2 * MiB); }

static CUresult s_free_on(int p, uintptr_t h)
{
    switch (p) {
    case P_ASYNC: case P_POOL: return cuMemFreeAsync((CUdeviceptr)h, NULL);
    case P_CREATE: return cuMemRelease((CUmemGenericAllocationHandle)h);
    case P_ARRAY: case P_ARRAY3D: return cuArrayDestroy((CUarray)h);
    case P_MIPMAP: return cuMipmappedArrayDestroy((CUmipmappedArray)h);
    case P_PROC_V1: case P_PROC_V2: return s_proc_free((CUdeviceptr)h);
    default: return cuMemFree_v2((CUdeviceptr)h);
    }
}

static int cmd_paths(void)
{
    s_setup();
    uint64_t limit = s_limit();
    if (limit == 0)
        bail_out("GP_SLICE_MEM_LIMIT must be set");
    CK(cuGetProcAddress("cuMemAlloc", (void **)&s_proc_alloc_v1, 12000, CU_GET_PROC_ADDRESS_DEFAULT));
    CUdriverProcAddressQueryResult q;
    CK(cuGetProcAddress_v2("cuMemAlloc", (void **)&s_proc_alloc_v2, 12040, CU_GET_PROC_ADDRESS_DEFAULT, &q));
    CK(cuGetProcAddress_v2("cuMemAllocAsync", (void **)&s_proc_async_ptsz, 12040,
                           CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &q));
    CK(cuGetProcAddress_v2("cuMemFree", (void **)&s_proc_free, 12040, CU_GET_PROC_ADDRESS_DEFAULT, &q));
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (lib == NULL || (*(void **)&s_dlsym_alloc = dlsym(lib, "cuMemAlloc_v2")) == NULL)
        bail_out("cannot dlsym cuMemAlloc_v2");

    uint64_t base = s_seen_used(), base_dev = s_dev_used(0) - s_overhead();
    is_int(base, s_overhead(), "before any allocation the slice counts the context overhead only");
    /* 4 MiB chunks: a multiple of every granularity a real driver has */
    uint64_t chunk = 4 * MiB;
    for (int p = 0; p < P_COUNT; p++) {
        uintptr_t handles[4096];
        int n = 0;
        uint64_t counted = 0, bytes = chunk;
        CUresult rc = CUDA_SUCCESS;
        while (n < 4096) {
            uintptr_t h = 0;
            uint64_t b = 0;
            rc = s_alloc_on(p, chunk, &b, &h);
            if (rc != CUDA_SUCCESS)
                break;
            b = s_pages(b);
            handles[n++] = h;
            counted += b;
            bytes = b;
        }
        uint64_t used = s_seen_used();
        is_int(rc, CUDA_ERROR_OUT_OF_MEMORY, "%s: over the limit the driver call fails with OUT_OF_MEMORY",
               s_path_names[p]);
        is_int(used, base + counted, "%s: every allocation counted at its true size", s_path_names[p]);
        ok(used <= limit && limit - used < bytes,
           "%s: allocations fill the slice up to its limit and not beyond (used %" PRIu64
           " MiB of %" PRIu64 " MiB)", s_path_names[p], used / MiB, limit / MiB);
        s_check_truth(0, base_dev, limit, s_path_names[p]);
        int freed = 1;
        for (int i = 0; i < n; i++)
            freed &= s_free_on(p, handles[i]) == CUDA_SUCCESS;
        /* stream-ordered frees reach the device at a synchronisation */
        CK(cuCtxSynchronize());
        ok(freed, "%s: every allocation frees", s_path_names[p]);
        is_int(s_seen_used(), base, "%s: after the frees nothing stays counted", s_path_names[p]);
    }

    /* a refused allocation leaves nothing behind */
    CUdeviceptr big;
    is_int(cuMemAlloc_v2(&big, limit + MiB), CUDA_ERROR_OUT_OF_MEMORY, "one allocation larger than the slice is refused");
    is_int(s_seen_used(), base, "a refused allocation counts nothing");
    /* freeing what the slice never counted */
    CUresult rc = cuMemFree_v2((CUdeviceptr)0x7ff0deadbee0ULL);
    ok(rc != CUDA_SUCCESS, "freeing an unknown pointer is left to the driver (which refuses it: %d)", (int)rc);
    is_int(s_seen_used(), base, "freeing an unknown pointer is never counted negative");
    return done_testing();
}

/* ------------------------------------------------------------ meminfo, hold */

static int cmd_meminfo(uint64_t expect_used, int64_t expect_free)
{
    s_setup();
    s_nvml();
    uint64_t limit = s_limit();
    size_t f, t, tm;
    CK(cuMemGetInfo_v2(&f, &t));
    CUdevice dev;
    CK(cuDeviceGet(&dev, 0));
    CK(cuDeviceTotalMem_v2(&tm, dev));
    nvmlMemory_t m;
    nvmlMemory_v2_t m2;
    memset(&m2, 0, sizeof m2);
    m2.version = nvmlMemory_v2;
    is_int(N.mem(N.dev, &m), NVML_SUCCESS, "nvmlDeviceGetMemoryInfo answers");
    is_int(N.mem2(N.dev, &m2), NVML_SUCCESS, "nvmlDeviceGetMemoryInfo_v2 answers");
    is_int(t, limit, "cuMemGetInfo total is the slice's limit");
    is_int(tm, limit, "cuDeviceTotalMem is the slice's limit");
    is_int(m.total, limit, "NVML total is the slice's limit");
    is_int(m2.total, limit, "NVML v2 total is the slice's limit");
    if (expect_free >= 0)
        is_int(f, expect_free, "cuMemGetInfo free is no more than the device really has free");
    else
        is_int(t - f, expect_used, "cuMemGetInfo shows what the whole slice uses");
    is_int(m.used, expect_used, "NVML used is what the whole slice uses");
    is_int(m.free, f, "NVML free equals cuMemGetInfo free");
    is_int(m2.free, f, "NVML v2 free equals cuMemGetInfo free");
    is_int(m2.used, expect_used, "NVML v2 used is what the whole slice uses");
    return done_testing();
}

static int cmd_hold(uint64_t mib, double seconds)
{
    s_setup();
    CUdeviceptr d;
    CK(cuMemAlloc_v2(&d, mib * MiB));
    printf("holding\n");
    fflush(stdout);
    s_sleep_until(s_now() + (int64_t)(seconds * 1e9));
    CK(cuMemFree_v2(d));
    return 0;
}

/* ------------------------------------------------------------ stress, churn */

static int cmd_stress(double seconds, unsigned seed)
{
    s_setup();
    CUdeviceptr held[8] = { 0 };
    uint64_t ok_n = 0, oom = 0;
    int64_t end = s_now() + (int64_t)(seconds * 1e9);
    while (s_now() < end) {
        int i = rand_r(&seed) % 8;
        if (held[i] != 0) {
            CK(cuMemFree_v2(held[i]));
            held[i] = 0;
            continue;
        }
        uint64_t sz = (uint64_t)(1 + rand_r(&seed) % 48) * MiB;
        CUresult rc = cuMemAlloc_v2(&held[i], sz);
        if (rc == CUDA_SUCCESS) {
            ok_n++;
        } else if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
            held[i] = 0;
            oom++;
        } else {
            fprintf(stderr, "shimtest: cuMemAlloc: %d\n", (int)rc);
            return 2;
        }
    }
    for (int i = 0; i < 8; i++)
        if (held[i] != 0)
            CK(cuMemFree_v2(held[i]));
    printf("ok=%" PRIu64 " oom=%" PRIu64 "\n", ok_n, oom);
    return 0;
}

static int cmd_churn(void)
{
    s_setup();
    CUdeviceptr keep[4];
    for (int i = 0; i < 4; i++)
        CK(cuMemAlloc_v2(&keep[i], 8 * MiB));
    printf("churning\n");
    fflush(stdout);
    for (unsigned i = 0;; i++) {
        CUdeviceptr d;
        if (cuMemAlloc_v2(&d, (1 + i % 7) * MiB) == CUDA_SUCCESS)
            cuMemFree_v2(d);
    }
    return 0;
}

/* ------------------------------------------------------------ compute */

static CUresult s_launch(const char *how, uint64_t *ns, CUgraphExec exec)
{
    void *params[] = { ns };
    if (strcmp(how, "launch") == 0)
        return cuLaunchKernel(s_spin, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
    if (strcmp(how, "coop") == 0)
        return cuLaunchCooperativeKernel(s_spin, 1, 1, 1, 32, 1, 1, 0, NULL, params);
    if (strcmp(how, "ex") == 0) {
        CUlaunchConfig cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
        cfg.blockDimX = 32;
        cfg.blockDimY = cfg.blockDimZ = 1;
        return cuLaunchKernelEx(&cfg, s_spin, params, NULL);
    }
    if (strcmp(how, "graph") == 0)
        return cuGraphLaunch(exec, NULL);
    static CUresult (*ptsz)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            unsigned, CUstream, void **, void **);
    if (ptsz == NULL) {
        CUdriverProcAddressQueryResult q;
        CK(cuGetProcAddress_v2("cuLaunchKernel", (void **)&ptsz, 12040,
                               CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &q));
    }
    return ptsz(s_spin, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
}

static int cmd_compute(const char *how, double seconds, uint64_t us)
{
    s_setup();
    s_nvml();
    const char *cap_s = getenv("GP_SLICE_COMPUTE");
    uint64_t cap = 100;
    if (cap_s == NULL || gp_parse_uint64(cap_s, 100, &cap) < 0)
        bail_out("GP_SLICE_COMPUTE must be one percentage");
    uint64_t ns = us * 1000;
    CUgraphExec exec = NULL;
    if (strcmp(how, "graph") == 0) {
        /* a graph of two kernels */
        CUgraph g;
        CUgraphNode node;
        void *params[] = { &ns };
        CUDA_KERNEL_NODE_PARAMS kp = { s_spin, 1, 1, 1, 32, 1, 1, 0, params, NULL };
        CK(cuGraphCreate(&g, 0));
        CK(cuGraphAddKernelNode_v2(&node, g, NULL, 0, &kp));
        CK(cuGraphAddKernelNode_v2(&node, g, &node, 1, &kp));
        CK(cuGraphInstantiateWithFlags(&exec, g, 0));
    }
    nvmlUtilization_t u;
    int64_t warm = s_now() + 500000000;
    while (s_now() < warm)
        CK(s_launch(how, &ns, exec));
    N.util(N.dev, &u);     /* starts the window */
    int64_t end = s_now() + (int64_t)(seconds * 1e9);
    uint64_t n = 0;
    while (s_now() < end) {
        CK(s_launch(how, &ns, exec));
        n++;
    }
    N.util(N.dev, &u);
    int share = (int)u.gpu;
    diag("%s: cap %" PRIu64 "%% achieved %d%% (%" PRIu64 " launches of %" PRIu64 " us)", how, cap,
         share, n, us);
    ok(share >= (int)cap - 5 && share <= (int)cap + 5,
       "%s at a %" PRIu64 "%% cap keeps the GPU busy %d%% of the time (want %" PRIu64 " +/- 5)", how,
       cap, share, cap);
    cuCtxSynchronize();
    return done_testing();
}

/* ------------------------------------------------------------ priority */

static int cmd_launchlog(int64_t start, double seconds, uint64_t us)
{
    s_setup();
    uint64_t ns = us * 1000;
    int nb = (int)(seconds * 10);
    int *bucket = calloc((size_t)nb, sizeof *bucket);
    s_sleep_until(start);
    int64_t end = start + (int64_t)(seconds * 1e9);
    for (;;) {
        CK(s_launch("launch", &ns, NULL));
        CK(cuCtxSynchronize());
        int64_t t = s_now();
        if (t >= end)
            break;
        bucket[(t - start) / 100000000]++;
    }
    printf("buckets=");
    for (int i = 0; i < nb; i++)
        printf("%s%d", i ? "," : "", bucket[i]);
    printf("\n");
    free(bucket);
    return 0;
}

static int cmd_burst(int64_t start, int64_t from_ms, int64_t to_ms, uint64_t us)
{
    s_setup();
    uint64_t ns = us * 1000;
    s_sleep_until(start + from_ms * 1000000);
    uint64_t n = 0;
    while (s_now() < start + to_ms * 1000000) {
        CK(s_launch("launch", &ns, NULL));
        CK(cuCtxSynchronize());
        n++;
    }
    printf("launches=%" PRIu64 "\n", n);
    return 0;
}

/* ------------------------------------------------------------ shares */

/* Launch kernels of us from start+from_ms to start+to_ms, keeping at most
 * 32 queued (none between idle_from_ms and idle_to_ms, when given), and
 * print the GPU time (us) of those that completed in each 20 ms bucket from
 * start, for seconds.  On the fake driver the device
 * runs kernels FIFO on its own clock, so a slice's buckets are its share of
 * the GPU's time. */
static int cmd_sharelog(int64_t start, int64_t from_ms, int64_t to_ms, double seconds, uint64_t us,
                        int64_t idle_from_ms, int64_t idle_to_ms)
{
    s_setup();
    enum { DEPTH = 32, BUCKET_NS = 20000000 };
    uint64_t ns = us * 1000;
    int nb = (int)(seconds * 1e9 / BUCKET_NS);
    uint64_t *bucket = calloc((size_t)nb, sizeof *bucket);
    CUevent ev[DEPTH];
    for (int i = 0; i < DEPTH; i++)
        CK(cuEventCreate(&ev[i], 0));
    s_sleep_until(start + from_ms * 1000000);
    int64_t end = start + to_ms * 1000000;
    unsigned n = 0;
    for (;;) {
        if (n >= DEPTH) {
            CK(cuEventSynchronize(ev[n % DEPTH]));
            int64_t b = (s_now() - start) / BUCKET_NS;
            if (b >= 0 && b < nb)
                bucket[b] += us;
        }
        if (s_now() >= end)
            break;
        if (idle_to_ms > idle_from_ms && s_now() >= start + idle_from_ms * 1000000) {
            /* the idle gap: let what is queued finish, launch nothing */
            for (unsigned i = n >= DEPTH ? n - DEPTH + 1 : 0; i < n; i++) {
                CK(cuEventSynchronize(ev[i % DEPTH]));
                int64_t b = (s_now() - start) / BUCKET_NS;
                if (b >= 0 && b < nb)
                    bucket[b] += us;
            }
            n = 0;
            s_sleep_until(start + idle_to_ms * 1000000);
            idle_to_ms = idle_from_ms;
        }
        CK(s_launch("launch", &ns, NULL));
        CK(cuEventRecord(ev[n % DEPTH], NULL));
        n++;
    }
    printf("buckets=");
    for (int i = 0; i < nb; i++)
        printf("%s%" PRIu64, i ? "," : "", bucket[i]);
    printf("\n");
    free(bucket);
    return 0;
}

/* ------------------------------------------------------------ oversubscription */

static int cmd_oversub(uint64_t device_mib)
{
    s_setup();
    uint64_t limit = s_limit();
    uint64_t chunk = device_mib * MiB * 3 / 4;
    CUdeviceptr d[16];
    int n = 0;
    while (n < 16 && (uint64_t)(n + 1) * chunk <= limit) {
        CUresult rc = cuMemAlloc_v2(&d[n], chunk);
        if (rc != CUDA_SUCCESS)
            break;
        n++;
    }
    is_int(n, (int)(limit / chunk), "allocations beyond the device's memory succeed up to the slice's limit");
    is_int(s_seen_used(), (uint64_t)n * chunk + s_overhead(), "they are all counted in the slice");
    CUdeviceptr more;
    is_int(cuMemAlloc_v2(&more, chunk), CUDA_ERROR_OUT_OF_MEMORY, "beyond the slice's limit: OUT_OF_MEMORY");
    size_t pitch = 0;
    CUdeviceptr pd;
    is_int(cuMemAllocPitch_v2(&pd, &pitch, 1000, 16, 4), CUDA_SUCCESS, "a pitched allocation is served too");
    ok(pitch >= 1000, "with a pitch (%zu) no narrower than its width", pitch);
    CK(cuMemFree_v2(pd));
    printf("# holding %d\n", n);
    fflush(stdout);
    const char *wait_file = getenv("SHIMTEST_WAIT_FILE");
    if (wait_file != NULL) {
        /* "ready" only when every check above passed */
        printf(tap_failures() == 0 ? "# ready\n" : "# not ready: %d checks failed\n", tap_failures());
        fflush(stdout);
        while (access(wait_file, F_OK) != 0)
            s_sleep_until(s_now() + 20000000);
    }
    int freed = 1;
    for (int i = 0; i < n; i++)
        freed &= cuMemFree_v2(d[i]) == CUDA_SUCCESS;
    ok(freed, "host-served allocations free like device ones");
    is_int(s_seen_used(), s_overhead(), "and leave nothing counted");
    return done_testing();
}

/* ------------------------------------------------------------ several devices */

/* Fill device d of the slice with 4 MiB allocations; returns how many. */
static int s_fill(CUdeviceptr *held, int max)
{
    int n = 0;
    while (n < max && cuMemAlloc_v2(&held[n], 4 * MiB) == CUDA_SUCCESS)
        n++;
    return n;
}

static int cmd_multidev(void)
{
    CK(cuInit(0));
    s_nvml();
    nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *) = N.handle;
    for (int d = 1; d >= 0; d--) {
        CUdevice dev;
        CUcontext ctx;
        CK(cuDeviceGet(&dev, d));
        CK(cuCtxCreate_v2(&ctx, 0, dev));
        uint64_t limit = s_env_mib_at("GP_SLICE_MEM_LIMIT", d, 0) * MiB;
        size_t f, t;
        CK(cuMemGetInfo_v2(&f, &t));
        is_int(t, limit, "device %d: cuMemGetInfo total is that device's limit", d);
        CUdeviceptr held[1024];
        uint64_t before = s_dev_used(d);
        int n = s_fill(held, 1024);
        is_int((uint64_t)n * 4 * MiB, limit, "device %d: allocations fill exactly its own limit", d);
        ok(s_dev_used(d) - before <= limit, "device %d: which the device itself holds no more than (%" PRIu64 " MiB)",
           d, (s_dev_used(d) - before) / MiB);
        nvmlDevice_t h;
        nvmlMemory_t m;
        handle((unsigned)d, &h);
        N.mem(h, &m);
        is_int(m.total, limit, "device %d: NVML (by UUID) reports that device's limit", d);
        is_int(m.used, limit, "device %d: and what the slice uses on it", d);
        for (int i = 0; i < n; i++)
            CK(cuMemFree_v2(held[i]));
    }
    return done_testing();
}

/* ------------------------------------------------------------ fork */

static int cmd_fork(void)
{
    s_setup();
    CUdeviceptr a;
    CK(cuMemAlloc_v2(&a, 10 * MiB));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child starts its own CUDA state, as a real child must */
        CUdevice dev;
        CUcontext ctx;
        CUdeviceptr b;
        if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
            cuCtxCreate_v2(&ctx, 0, dev) != CUDA_SUCCESS || cuMemAlloc_v2(&b, 20 * MiB) != CUDA_SUCCESS)
            exit(3);
        /* exit, not _exit: a process that ends normally gives its usage back */
        exit(s_seen_used() == 30 * MiB + 2 * s_overhead() ? 0 : 4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
           "a forked child's allocations count in the same slice as its parent's");
    is_int(s_seen_used(), 10 * MiB + s_overhead(), "the child's usage leaves with it; the parent's stays");
    CK(cuMemFree_v2(a));
    is_int(s_seen_used(), s_overhead(), "the parent frees its own");
    return done_testing();
}

static int cmd_devmem(int dev)
{
    uint64_t u, p;
    if (s_device_truth(dev, &u, &p) < 0)
        return 2;
    if (p == UINT64_MAX)
        printf("used=%" PRIu64 "\n", u);
    else
        printf("used=%" PRIu64 " peak=%" PRIu64 "\n", u, p);
    return 0;
}

/* ------------------------------------------------------------ VMM, processes */


static CUmemAllocationProp s_vmm_prop(int dev)
{
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    return prop;
}

/* Create bytes of VMM memory on dev and map it: the handle and the address. */
static CUresult s_vmm_map(int dev, uint64_t bytes, CUmemGenericAllocationHandle *h, CUdeviceptr *va)
{
    CUmemAllocationProp prop = s_vmm_prop(dev);
    CUresult rc = cuMemCreate(h, bytes, &prop, 0);
    if (rc != CUDA_SUCCESS)
        return rc;
    CK(cuMemAddressReserve(va, bytes, 0, 0, 0));
    CK(cuMemMap(*va, bytes, 0, *h, 0));
    CUmemAccessDesc acc = { prop.location, CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
    CK(cuMemSetAccess(*va, bytes, &acc, 1));
    return CUDA_SUCCESS;
}

static void s_write_all(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        exit(5);
}

static void s_read_all(int fd, void *p, size_t n)
{
    if (read(fd, p, n) != (ssize_t)n)
        exit(5);
}

/* In a forked child: import the shareable handle fd, map it, tell the
 * parent (byte 'm'), wait for its go (any byte), unmap and release, exit. */
static void s_child_import(int fd, uint64_t bytes, int to_parent, int from_parent)
{
    CUdevice dev;
    CUcontext ctx;
    CUmemGenericAllocationHandle h;
    CUdeviceptr va;
    char c = 'm';
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuCtxCreate_v2(&ctx, 0, dev) != CUDA_SUCCESS ||
        cuMemImportFromShareableHandle(&h, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) != CUDA_SUCCESS ||
        cuMemAddressReserve(&va, bytes, 0, 0, 0) != CUDA_SUCCESS ||
        cuMemMap(va, bytes, 0, h, 0) != CUDA_SUCCESS)
        exit(3);
    s_write_all(to_parent, &c, 1);
    s_read_all(from_parent, &c, 1);
    if (cuMemUnmap(va, bytes) != CUDA_SUCCESS || cuMemRelease(h) != CUDA_SUCCESS)
        exit(4);
    exit(0);
}

/* ------------------------------------------------------------ VMM */

static int cmd_vmm(void)
{
    s_setup();
    uint64_t limit = s_limit(), base_dev = s_dev_used(0) - s_overhead(), base = s_seen_used();
    /* create, map, release the handle at once: the memory stays mapped */
    CUmemGenericAllocationHandle h[64];
    CUdeviceptr va[64];
    int n = 0;
    CUresult rc = CUDA_SUCCESS;
    while (n < 64 && (rc = s_vmm_map(0, 8 * MiB, &h[n], &va[n])) == CUDA_SUCCESS) {
        CK(cuMemRelease(h[n]));
        n++;
    }
    is_int(rc, CUDA_ERROR_OUT_OF_MEMORY, "create-map-release: over the limit cuMemCreate fails with OUT_OF_MEMORY");
    is_int(s_seen_used() - base, (uint64_t)n * 8 * MiB, "memory released while mapped stays counted (%d x 8 MiB)", n);
    is_int(s_dev_used(0) - base_dev - s_overhead(), (uint64_t)n * 8 * MiB, "as the device holds it");
    s_check_truth(0, base_dev, limit, "create-map-release");
    for (int i = 0; i < n; i++)
        CK(cuMemUnmap(va[i], 8 * MiB));
    is_int(s_seen_used(), base, "the last unmap gives it back");

    /* a retained handle keeps the memory after the last unmap */
    CUmemGenericAllocationHandle r;
    CK(s_vmm_map(0, 8 * MiB, &h[0], &va[0]));
    CK(cuMemRetainAllocationHandle(&r, (void *)(uintptr_t)va[0]));
    CK(cuMemRelease(h[0]));
    CK(cuMemUnmap(va[0], 8 * MiB));
    is_int(s_seen_used() - base, 8 * MiB, "a handle from cuMemRetainAllocationHandle keeps it counted");
    CK(cuMemRelease(r));
    is_int(s_seen_used(), base, "until it is released too");

    /* two mappings of one handle: counted once, until both are gone */
    CUdeviceptr va2;
    CK(s_vmm_map(0, 8 * MiB, &h[0], &va[0]));
    CK(cuMemAddressReserve(&va2, 8 * MiB, 0, 0, 0));
    CK(cuMemMap(va2, 8 * MiB, 0, h[0], 0));
    CK(cuMemRelease(h[0]));
    is_int(s_seen_used() - base, 8 * MiB, "memory mapped twice is counted once");
    CK(cuMemUnmap(va[0], 8 * MiB));
    is_int(s_seen_used() - base, 8 * MiB, "and stays counted while one mapping remains");
    CK(cuMemUnmap(va2, 8 * MiB));
    is_int(s_seen_used(), base, "the last unmap gives it back");

    /* exported to another process of the slice, which imports it */
    int fd = -1, up[2], down[2];
    CK(s_vmm_map(0, 16 * MiB, &h[0], &va[0]));
    CK(cuMemExportToShareableHandle(&fd, h[0], CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    if (pipe(up) < 0 || pipe(down) < 0)
        bail_out("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        s_child_import(fd, 16 * MiB, up[1], down[0]);
    char c;
    s_read_all(up[0], &c, 1);
    /* the importer has a context too: its overhead is its own */
    is_int(s_seen_used() - base, 16 * MiB + s_overhead(),
           "memory imported by another process of the slice is not counted twice");
    s_write_all(down[1], &c, 1);
    int st = 0;
    waitpid(pid, &st, 0);
    is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "the importer mapped, unmapped and released it");
    is_int(s_seen_used() - base, 16 * MiB, "the exporter still counts what it holds");
    CK(cuMemUnmap(va[0], 16 * MiB));
    CK(cuMemRelease(h[0]));
    is_int(s_seen_used(), base, "and gives it back with its last reference");
    return done_testing();
}

/* ------------------------------------------------------------ granularity */

enum { G_ALLOC, G_PITCH, G_MANAGED, G_ASYNC, G_POOL, G_ARRAY, G_COUNT };
static const char *const s_gran_names[G_COUNT] = {
    "cuMemAlloc", "cuMemAllocPitch", "cuMemAllocManaged", "cuMemAllocAsync",
    "cuMemAllocFromPoolAsync", "cuArrayCreate",
};

/* One allocation of 2 MiB + 4 KiB (about) on path p. */
static CUresult s_gran_alloc(int p, uintptr_t *handle)
{
    CUdeviceptr d = 0;
    CUresult rc;
    uint64_t odd = 2 * MiB + 4096;
    switch (p) {
    case G_ALLOC: rc = cuMemAlloc_v2(&d, odd); break;
    case G_PITCH: {
        size_t pitch;
        rc = cuMemAllocPitch_v2(&d, &pitch, 4096, odd / 4096, 4);
        break;
    }
    case G_MANAGED: rc = cuMemAllocManaged(&d, odd, CU_MEM_ATTACH_GLOBAL); break;
    case G_ASYNC: rc = cuMemAllocAsync(&d, odd, NULL); break;
    case G_POOL: {
        CUmemoryPool pool;
        CK(cuDeviceGetDefaultMemPool(&pool, 0));
        rc = cuMemAllocFromPoolAsync(&d, odd, pool, NULL);
        break;
    }
    default: {
        CUDA_ARRAY_DESCRIPTOR a = { 1024, odd / 4096, CU_AD_FORMAT_FLOAT, 1 };
        CUarray arr = NULL;
        rc = cuArrayCreate_v2(&arr, &a);
        *handle = (uintptr_t)arr;
        return rc;
    }
    }
    *handle = (uintptr_t)d;
    return rc;
}

static int cmd_gran(void)
{
    s_setup();
    uint64_t limit = s_limit(), base = s_seen_used(), base_dev = s_dev_used(0) - s_overhead();
    for (int p = 0; p < G_COUNT; p++) {
        uintptr_t hs[256];
        int n = 0;
        CUresult rc = CUDA_SUCCESS;
        while (n < 256 && (rc = s_gran_alloc(p, &hs[n])) == CUDA_SUCCESS)
            n++;
        is_int(rc, CUDA_ERROR_OUT_OF_MEMORY, "%s: 2 MiB + 4 KiB at a time, the limit is reached", s_gran_names[p]);
        uint64_t lost = s_dev_used(0) - base_dev - s_overhead();
        if (s_is_fake() || (p != G_MANAGED && p != G_ARRAY))
            is_int(s_seen_used() - base, lost,
                   "%s: the slice counts what the device lost (%d allocations, %" PRIu64 " MiB)",
                   s_gran_names[p], n, lost / MiB);
        else   /* managed memory is resident only once touched; arrays are laid out by the GPU */
            diag("%s: the slice counts %" PRIu64 " MiB, the device lost %" PRIu64 " MiB", s_gran_names[p],
                 (s_seen_used() - base) / MiB, lost / MiB);
        s_check_truth(0, base_dev, limit, s_gran_names[p]);
        for (int i = 0; i < n; i++) {
            if (p == G_ARRAY)
                CK(cuArrayDestroy((CUarray)hs[i]));
            else if (p == G_ASYNC || p == G_POOL)
                CK(cuMemFreeAsync((CUdeviceptr)hs[i], NULL));
            else
                CK(cuMemFree_v2((CUdeviceptr)hs[i]));
        }
        CK(cuCtxSynchronize());
        is_int(s_seen_used(), base, "%s: the frees give it all back", s_gran_names[p]);
    }
    /* an array with deferred mapping takes no memory of its own */
    CUDA_ARRAY3D_DESCRIPTOR dd = { 1024, 1024, 8, CU_AD_FORMAT_FLOAT, 4, CUDA_ARRAY3D_DEFERRED_MAPPING };
    CUarray deferred;
    CK(cuArray3DCreate_v2(&deferred, &dd));
    is_int(s_dev_used(0) - base_dev - s_overhead(), 0, "a 128 MiB array with deferred mapping takes nothing of the device");
    is_int(s_seen_used(), base, "and the slice counts nothing for it");
    CK(cuArrayDestroy(deferred));
    return done_testing();
}

/* ------------------------------------------------------------ pools */

/* Fill pool (NULL: the device's current pool, by cuMemAllocAsync) with
 * 8 MiB allocations until refused, free them all and synchronise. */
static int s_pool_fill_free(CUmemoryPool pool)
{
    CUdeviceptr d[64];
    int n = 0;
    while (n < 64 && (pool ? cuMemAllocFromPoolAsync(&d[n], 8 * MiB, pool, NULL)
                           : cuMemAllocAsync(&d[n], 8 * MiB, NULL)) == CUDA_SUCCESS)
        n++;
    for (int i = 0; i < n; i++)
        CK(cuMemFreeAsync(d[i], NULL));
    CK(cuCtxSynchronize());
    return n;
}

static int cmd_pool(void)
{
    s_setup();
    uint64_t limit = s_limit(), base = s_seen_used(), base_dev = s_dev_used(0) - s_overhead();
    cuuint64_t keep_all = UINT64_MAX;
    CUmemoryPool dflt, mine;
    CK(cuDeviceGetDefaultMemPool(&dflt, 0));
    CK(cuMemPoolSetAttribute(dflt, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all));
    int n = s_pool_fill_free(NULL);
    ok(n > 0, "cuMemAllocAsync fills the slice (%d x 8 MiB)", n);
    uint64_t held = s_dev_used(0) - base_dev - s_overhead();
    ok(held > 0, "the default pool keeps %" PRIu64 " MiB reserved after the frees and a synchronisation", held / MiB);
    is_int(s_seen_used() - base, held, "the slice counts the pool's reserved memory");
    s_check_truth(0, base_dev, limit, "the default pool");
    /* a plain allocation that needs the pool's memory: the pool is trimmed */
    CUdeviceptr big;
    uint64_t want = limit - (base - s_overhead()) - s_overhead() - 8 * MiB;
    is_int(cuMemAlloc_v2(&big, want), CUDA_SUCCESS,
           "an allocation the pool's reserve stands in the way of succeeds (the pool is trimmed first)");
    s_check_truth(0, base_dev, limit, "after the trim");
    CK(cuMemFree_v2(big));

    /* a pool of the program's own, with its threshold raised */
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    CK(cuMemPoolCreate(&mine, &props));
    CK(cuMemPoolSetAttribute(mine, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all));
    n = s_pool_fill_free(mine);
    ok(n > 0, "cuMemAllocFromPoolAsync fills the slice (%d x 8 MiB)", n);
    held = s_dev_used(0) - base_dev - s_overhead();
    is_int(s_seen_used() - base, held, "the slice counts the created pool's reserved memory (%" PRIu64 " MiB)", held / MiB);
    s_check_truth(0, base_dev, limit, "a created pool");
    /* the other pool wants memory: this one is trimmed */
    n = s_pool_fill_free(NULL);
    ok(n * 8 * MiB + 16 * MiB >= limit - (base - s_overhead()) - s_overhead(),
       "the default pool gets the slice back from the created one (%d x 8 MiB)", n);
    s_check_truth(0, base_dev, limit, "two pools");
    CK(cuMemPoolDestroy(mine));
    CK(cuMemPoolTrimTo(dflt, 0));
    is_int(s_seen_used(), base, "trimmed and destroyed pools count nothing");
    return done_testing();
}

static int cmd_pooldev(void)
{
    CUdevice d0, d1;
    CUcontext c0, c1;
    CK(cuInit(0));
    CK(cuDeviceGet(&d0, 0));
    CK(cuDeviceGet(&d1, 1));
    CK(cuCtxCreate_v2(&c0, 0, d0));
    CUstream s0;
    CK(cuStreamCreate(&s0, 0));
    CK(cuCtxCreate_v2(&c1, 0, d1));
    uint64_t limit0 = s_env_mib_at("GP_SLICE_MEM_LIMIT", 0, 0) * MiB;
    uint64_t base0 = s_dev_used(0) - s_overhead(), base1 = s_dev_used(1) - s_overhead();
    CUdeviceptr d[64];
    int n = 0;
    while (n < 64 && cuMemAllocAsync(&d[n], 8 * MiB, s0) == CUDA_SUCCESS)
        n++;
    ok(n > 0, "allocations on a stream of device 0, from a context of device 1 (%d x 8 MiB)", n);
    s_check_truth(0, base0, limit0, "device 0");
    is_int(s_dev_used(1) - base1 - s_overhead(), 0, "device 1 holds none of it");
    size_t f, t;
    CK(cuMemGetInfo_v2(&f, &t));
    is_int(t - f, s_overhead(), "and device 1's slice counts none of it");
    for (int i = 0; i < n; i++)
        CK(cuMemFreeAsync(d[i], s0));
    CK(cuStreamSynchronize(s0));
    return done_testing();
}

/* ------------------------------------------------------------ contexts */

/* ------------------------------------------------------------ graph memory */

/* A graph of n allocation nodes of bytes each on device 0, each freed in
 * the graph when free_them. */
static CUgraphExec s_mem_graph(int n, uint64_t bytes, int free_them)
{
    CUgraph g;
    CUgraphExec exec;
    CK(cuGraphCreate(&g, 0));
    for (int i = 0; i < n; i++) {
        CUDA_MEM_ALLOC_NODE_PARAMS p;
        memset(&p, 0, sizeof p);
        p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
        p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        p.poolProps.location.id = 0;
        p.bytesize = bytes;
        CUgraphNode an, fn;
        CK(cuGraphAddMemAllocNode(&an, g, NULL, 0, &p));
        if (free_them)
            CK(cuGraphAddMemFreeNode(&fn, g, &an, 1, p.dptr));
    }
    CK(cuGraphInstantiateWithFlags(&exec, g, 0));
    CK(cuGraphDestroy(g));
    return exec;
}

static int cmd_graphmem(void)
{
    s_setup();
    uint64_t limit = s_limit(), base = s_seen_used(), base_dev = s_dev_used(0) - s_overhead();
    CUgraphExec e1 = s_mem_graph(1, 24 * MiB, 1);
    is_int(s_seen_used(), base, "building and instantiating a graph that allocates counts nothing");
    CK(cuGraphLaunch(e1, NULL));
    CK(cuCtxSynchronize());
    is_int(s_seen_used() - base, 24 * MiB, "its launch counts the graph memory it reserves");
    cuuint64_t reserved = 0;
    CK(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved));
    is_int(s_seen_used() - base, reserved, "as much as CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT");
    CK(cuGraphLaunch(e1, NULL));
    CK(cuGraphLaunch(e1, NULL));
    is_int(s_seen_used() - base, 24 * MiB, "launched again, it reuses that memory: counted once");
    CK(cuDeviceGraphMemTrim(0));
    is_int(s_seen_used(), base, "cuDeviceGraphMemTrim gives it back");

    /* a graph that needs more than the slice */
    CUgraphExec e3 = s_mem_graph(3, 24 * MiB, 0);
    is_int(cuGraphLaunch(e3, NULL), CUDA_ERROR_OUT_OF_MEMORY, "a graph allocating more than the slice is refused at launch");
    s_check_truth(0, base_dev, limit, "graph memory");
    is_int(s_seen_used(), base, "and counts nothing");

    /* allocations captured from a stream */
    CUstream st;
    CUgraph g;
    CUgraphExec ec;
    CUdeviceptr d;
    CK(cuStreamCreate(&st, 0));
    CK(cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CK(cuMemAllocAsync(&d, 16 * MiB, st));
    CK(cuMemFreeAsync(d, st));
    CK(cuStreamEndCapture(st, &g));
    is_int(s_seen_used(), base, "a captured cuMemAllocAsync counts nothing at capture");
    CK(cuGraphInstantiateWithFlags(&ec, g, 0));
    CK(cuGraphLaunch(ec, st));
    CK(cuStreamSynchronize(st));
    is_int(s_seen_used() - base, 16 * MiB, "it is counted when the graph runs");
    is_int(s_dev_used(0) - base_dev - s_overhead(), 16 * MiB, "as the device holds it");
    /* the slice wants the graph pool's memory: it is trimmed first */
    CUdeviceptr big;
    is_int(cuMemAlloc_v2(&big, limit - base - 8 * MiB), CUDA_SUCCESS,
           "an allocation the graph pool stands in the way of succeeds (it is trimmed first)");
    s_check_truth(0, base_dev, limit, "after the trim");
    CK(cuMemFree_v2(big));
    CK(cuGraphExecDestroy(e1));
    CK(cuGraphExecDestroy(e3));
    CK(cuGraphExecDestroy(ec));
    return done_testing();
}

/* What the slice uses on device 0 as NVML reports it (no context needed). */
static uint64_t s_nvml_used(void)
{
    nvmlMemory_t m;
    if (N.mem(N.dev, &m) != NVML_SUCCESS)
        bail_out("nvmlDeviceGetMemoryInfo failed");
    return m.used;
}

static int cmd_contexts(void)
{
    CUdevice dev;
    CUcontext ctx, p;
    CK(cuInit(0));
    s_nvml();
    CK(cuDeviceGet(&dev, 0));
    uint64_t limit = s_limit(), ovh = s_overhead(), base_dev = s_dev_used(0);
    CK(cuDevicePrimaryCtxRetain(&p, dev));
    CK(cuCtxSetCurrent(p));
    is_int(s_seen_used(), ovh, "the primary context counts the overhead");
    CK(cuDevicePrimaryCtxRetain(&p, dev));
    CK(cuCtxCreate_v2(&ctx, 0, dev));
    is_int(s_seen_used(), ovh, "once per process and device, however many contexts");
    CK(cuCtxDestroy_v2(ctx));
    CK(cuCtxSetCurrent(p));
    CK(cuDevicePrimaryCtxRelease_v2(dev));
    is_int(s_seen_used(), ovh, "while a context remains it stays counted");
    CK(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 72 * MiB));
    is_int(s_seen_used(), ovh + 64 * MiB, "a malloc heap raised from 8 to 72 MiB counts 64 MiB");
    CK(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 9 * MiB));
    is_int(s_seen_used(), ovh + 72 * MiB, "a printf FIFO raised from 1 to 9 MiB counts 8 MiB");
    CK(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 1 * MiB));
    is_int(s_seen_used(), ovh + 64 * MiB, "set back, it counts nothing");
    is_int(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, limit + 8 * MiB), CUDA_ERROR_OUT_OF_MEMORY,
           "a heap larger than the slice is refused");
    is_int(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1024 + limit / FAKE_STACK_THREADS), CUDA_ERROR_OUT_OF_MEMORY,
           "a stack that takes more than the slice over the device's threads is refused");
    s_check_truth(0, base_dev, limit, "context limits");
    CK(cuDevicePrimaryCtxRelease_v2(dev));
    is_int(s_nvml_used(), 0, "the primary context's last release gives back its overhead and limits");
    is_int(s_dev_used(0), base_dev, "as the device does");
    CK(cuCtxCreate_v2(&ctx, 0, dev));
    is_int(s_seen_used(), ovh, "a created context counts it again");
    CK(cuCtxDestroy_v2(ctx));
    is_int(s_nvml_used(), 0, "cuCtxDestroy of the last context gives it back");
    CK(cuDevicePrimaryCtxRetain(&p, dev));
    CK(cuDevicePrimaryCtxRetain(&p, dev));
    CK(cuDevicePrimaryCtxReset_v2(dev));
    is_int(s_nvml_used(), 0, "cuDevicePrimaryCtxReset gives it back however often it was retained");
    is_int(s_dev_used(0), base_dev, "as the device does");
    return done_testing();
}

/* ------------------------------------------------------------ the fake driver itself */
static int cmd_fakedriver(void)
{
    CUdevice dev0, dev1;
    CUcontext c0, c1, p0;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev0, 0));
    CK(cuDeviceGet(&dev1, 1));
    uint64_t ctx_mib = s_env_mib("FAKECUDA_CTX_MIB", 0) * MiB;
    uint64_t u0 = s_dev_used(0);
    CK(cuDevicePrimaryCtxRetain(&p0, dev0));
    is_int(s_dev_used(0) - u0, ctx_mib, "a context occupies FAKECUDA_CTX_MIB of its device");
    CK(cuDevicePrimaryCtxRetain(&p0, dev0));
    CK(cuDevicePrimaryCtxRelease_v2(dev0));
    is_int(s_dev_used(0) - u0, ctx_mib, "the primary context stays while it is retained");
    CK(cuDevicePrimaryCtxRelease_v2(dev0));
    is_int(s_dev_used(0), u0, "and goes with its last release");
    CK(cuDevicePrimaryCtxRetain(&p0, dev0));
    CK(cuDevicePrimaryCtxReset_v2(dev0));
    is_int(s_dev_used(0), u0, "or at a reset");
    CK(cuCtxCreate_v2(&c0, 0, dev0));
    uint64_t base = s_dev_used(0);
    is_int(base - u0, ctx_mib, "a created context occupies its device too");
    CK(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 72 * MiB));
    is_int(s_dev_used(0) - base, 64 * MiB, "a malloc heap raised from 8 to 72 MiB takes 64 MiB more");
    CK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 2048));
    is_int(s_dev_used(0) - base, 64 * MiB + 1024ULL * FAKE_STACK_THREADS,
           "a stack raised by 1 KiB takes 1 KiB per resident thread");
    CK(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 8 * MiB));
    CK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1024));
    is_int(s_dev_used(0), base, "limits set back to their defaults give it back");

    /* granularity */
    CUmemAllocationProp prop = s_vmm_prop(0);
    size_t gran = 0;
    CK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    is_int(gran, 2 * MiB, "the allocation granularity is 2 MiB");
    CUdeviceptr d;
    CK(cuMemAlloc_v2(&d, 2 * MiB + 4096));
    is_int(s_dev_used(0) - base, 4 * MiB, "2 MiB + 4 KiB occupies 4 MiB of the device");
    CK(cuMemFree_v2(d));
    is_int(s_dev_used(0), base, "and gives all of it back");
    CUmemGenericAllocationHandle h;
    is_int(cuMemCreate(&h, 3 * MiB, &prop, 0), CUDA_ERROR_INVALID_VALUE,
           "cuMemCreate refuses a size that is not a multiple of the granularity");

    /* VMM: alive until the last handle and the last mapping are gone */
    CUdeviceptr va;
    CK(s_vmm_map(0, 8 * MiB, &h, &va));
    CK(cuMemRelease(h));
    is_int(s_dev_used(0) - base, 8 * MiB, "VMM memory released while mapped stays on the device");
    CUmemGenericAllocationHandle h2;
    CK(cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)(va + MiB)));
    CK(cuMemUnmap(va, 8 * MiB));
    is_int(s_dev_used(0) - base, 8 * MiB, "a retained handle keeps it after the last unmap");
    CK(cuMemRelease(h2));
    is_int(s_dev_used(0), base, "the last release gives it back");
    is_int(cuMemRelease(h2), CUDA_ERROR_INVALID_VALUE, "a handle cannot be released twice");

    /* VMM across processes: an imported handle is the same memory */
    int fd = -1, up[2], down[2];
    CK(s_vmm_map(0, 16 * MiB, &h, &va));
    CK(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    if (pipe(up) < 0 || pipe(down) < 0)
        bail_out("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        s_child_import(fd, 16 * MiB, up[1], down[0]);
    char c;
    s_read_all(up[0], &c, 1);
    is_int(s_dev_used(0) - base, 16 * MiB, "memory imported by another process is not counted twice");
    CK(cuMemUnmap(va, 16 * MiB));
    CK(cuMemRelease(h));
    is_int(s_dev_used(0) - base, 16 * MiB, "it stays while the importer maps it");
    s_write_all(down[1], &c, 1);
    int st = 0;
    waitpid(pid, &st, 0);
    is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "the importer mapped, unmapped and released it");
    is_int(s_dev_used(0), base, "the importer's last release gives it back");

    /* pools keep freed memory above their release threshold */
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, 0));
    CK(cuMemAllocAsync(&d, 10 * MiB + 1, NULL));
    is_int(s_dev_used(0) - base, 12 * MiB, "a pool allocation takes whole pages");
    CK(cuMemFreeAsync(d, NULL));
    is_int(s_dev_used(0) - base, 12 * MiB, "freed, it stays reserved in the pool until a synchronisation");
    CK(cuCtxSynchronize());
    is_int(s_dev_used(0), base, "with the default release threshold (0) a synchronisation gives it back");
    cuuint64_t thr = UINT64_MAX, reserved = 0;
    CK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    CK(cuMemAllocAsync(&d, 10 * MiB, NULL));
    CK(cuMemFreeAsync(d, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
    is_int(s_dev_used(0) - base, 10 * MiB, "with the threshold raised the pool keeps it after synchronising");
    is_int(reserved, 10 * MiB, "and reports it as reserved");
    CK(cuMemAllocAsync(&d, 6 * MiB, NULL));
    is_int(s_dev_used(0) - base, 10 * MiB, "a new allocation reuses the pool's reserve");
    CK(cuMemFreeAsync(d, NULL));
    CK(cuMemPoolTrimTo(pool, 0));
    is_int(s_dev_used(0), base, "cuMemPoolTrimTo gives it back");
    thr = 0;
    CK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));

    /* graph memory: taken when the graph runs, kept by the graph pool */
    CUgraphExec ge = s_mem_graph(1, 6 * MiB, 1);
    is_int(s_dev_used(0), base, "a graph that allocates takes nothing until it runs");
    CK(cuGraphLaunch(ge, NULL));
    CK(cuGraphLaunch(ge, NULL));
    is_int(s_dev_used(0) - base, 6 * MiB, "run (twice), its graph pool keeps what it took, once");
    CK(cuDeviceGraphMemTrim(0));
    is_int(s_dev_used(0), base, "cuDeviceGraphMemTrim gives it back");
    CK(cuGraphExecDestroy(ge));
    CUstream cs;
    CUgraph cg;
    CK(cuStreamCreate(&cs, 0));
    CK(cuStreamBeginCapture_v2(cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CK(cuMemAllocAsync(&d, 4 * MiB, cs));
    CK(cuStreamEndCapture(cs, &cg));
    is_int(s_dev_used(0), base, "a captured stream-ordered allocation takes nothing at capture");
    CK(cuGraphInstantiateWithFlags(&ge, cg, 0));
    CK(cuGraphLaunch(ge, cs));
    is_int(s_dev_used(0) - base, 4 * MiB, "it takes its memory when the graph runs");
    CK(cuMemFreeAsync(d, cs));
    CK(cuDeviceGraphMemTrim(0));
    is_int(s_dev_used(0), base, "freed and trimmed, it is given back");
    CK(cuGraphExecDestroy(ge));
    CK(cuGraphDestroy(cg));

    /* a stream-ordered allocation is made on the stream's device */
    CUstream s0;
    CK(cuStreamCreate(&s0, 0));
    CK(cuCtxCreate_v2(&c1, 0, dev1));
    uint64_t base1 = s_dev_used(1);
    CK(cuMemAllocAsync(&d, 4 * MiB, s0));
    is_int(s_dev_used(0) - base, 4 * MiB, "cuMemAllocAsync takes memory on the stream's device");
    is_int(s_dev_used(1), base1, "not on the current context's");
    CK(cuMemFreeAsync(d, s0));
    CK(cuStreamSynchronize(s0));
    CK(cuCtxDestroy_v2(c1));
    CK(cuCtxSetCurrent(c0));
    CK(cuCtxDestroy_v2(c0));
    is_int(s_dev_used(0), u0, "destroying the context gives its memory back");
    uint64_t used, peak;
    s_device_truth(0, &used, &peak);
    ok(peak >= base + 16 * MiB, "the device keeps its peak (%" PRIu64 " MiB)", peak / MiB);
    return done_testing();
}

/* ------------------------------------------------------------ pass-through */

/* With the shim loaded but no slice: an allocation of mib succeeds and the
 * device holds it, and the memory queries are the device's. */
static int cmd_passthrough(uint64_t mib)
{
    Dl_info info;
    void *entry = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
    ok(entry != NULL && dladdr(entry, &info) != 0 && info.dli_fname != NULL &&
           strstr(info.dli_fname, "libgpupool-shim") != NULL,
       "the shim is loaded and interposes cuMemAlloc_v2 (%s)",
       entry != NULL && dladdr(entry, &info) != 0 && info.dli_fname ? info.dli_fname : "?");
    s_setup();
    uint64_t before = s_dev_used(0);
    CUdeviceptr d;
    if (!is_int(cuMemAlloc_v2(&d, mib * MiB), CUDA_SUCCESS, "an allocation of %" PRIu64 " MiB succeeds", mib))
        return done_testing();
    is_int(s_dev_used(0) - before, mib * MiB, "and the device holds it");
    size_t f, t, tm;
    CK(cuMemGetInfo_v2(&f, &t));
    CK(cuDeviceTotalMem_v2(&tm, 0));
    is_int(t, tm, "cuMemGetInfo reports the device's total");
    is_int(t - f, s_dev_used(0), "and the device's own usage");
    CK(cuMemFree_v2(d));
    is_int(s_dev_used(0), before, "the free gives it back");
    return done_testing();
}

/* ------------------------------------------------------------ robustness */

static const char *s_object_of(void *p)
{
    Dl_info info;
    if (p == NULL || dladdr(p, &info) == 0 || info.dli_fname == NULL)
        return "(none)";
    return info.dli_fname;
}

static int cmd_rtldnext(void)
{
    /* the program is first in load order, the shim next: the next "dlsym"
     * after the program is the shim's own */
    const char *o = s_object_of(dlsym(RTLD_NEXT, "dlsym"));
    ok(strstr(o, "libgpupool-shim") != NULL, "dlsym(RTLD_NEXT, \"dlsym\") finds the next object's: %s", o);
    o = s_object_of(dlsym(RTLD_NEXT, "cuMemAlloc_v2"));
    ok(strstr(o, "libgpupool-shim") != NULL, "dlsym(RTLD_NEXT, \"cuMemAlloc_v2\") is the shim's: %s", o);
    o = s_object_of(dlsym(RTLD_NEXT, "getpid"));
    ok(strstr(o, "libc.so") != NULL, "dlsym(RTLD_NEXT, \"getpid\") is libc's: %s", o);
    return done_testing();
}

static int cmd_nvmlonly(void)
{
    s_nvml();
    nvmlMemory_t m;
    is_int(N.mem(N.dev, &m), NVML_SUCCESS, "nvmlDeviceGetMemoryInfo answers in a process that never used CUDA");
    is_int(m.total, s_limit(), "with the slice's limit");
    int count = 0;
    is_int(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED, "and CUDA is still not initialised");
    return done_testing();
}

/* ------------------------------------------------------------ main */

static void s_usage(void)
{
    fprintf(stderr, "usage: shimtest paths|meminfo|hold|stress|churn|compute|launchlog|burst|oversub|noop ...\n");
    exit(64);
}

static double s_arg_d(int argc, char **argv, int i)
{
    double v;
    if (i >= argc || gp_parse_double(argv[i], 0, 1e12, &v) < 0)
        s_usage();
    return v;
}

static int64_t s_arg_i(int argc, char **argv, int i)
{
    int64_t v;
    if (i >= argc || gp_parse_int64(argv[i], INT64_MIN, INT64_MAX, &v) < 0)
        s_usage();
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        s_usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "paths") == 0)
        return cmd_paths();
    if (strcmp(cmd, "meminfo") == 0)
        return cmd_meminfo((uint64_t)s_arg_i(argc, argv, 2) * MiB,
                           argc > 3 ? s_arg_i(argc, argv, 3) * (int64_t)MiB : -1);
    if (strcmp(cmd, "hold") == 0)
        return cmd_hold((uint64_t)s_arg_i(argc, argv, 2), s_arg_d(argc, argv, 3));
    if (strcmp(cmd, "stress") == 0)
        return cmd_stress(s_arg_d(argc, argv, 2), (unsigned)s_arg_i(argc, argv, 3));
    if (strcmp(cmd, "churn") == 0)
        return cmd_churn();
    if (strcmp(cmd, "compute") == 0 && argc >= 5)
        return cmd_compute(argv[2], s_arg_d(argc, argv, 3), (uint64_t)s_arg_i(argc, argv, 4));
    if (strcmp(cmd, "launchlog") == 0)
        return cmd_launchlog(s_arg_i(argc, argv, 2), s_arg_d(argc, argv, 3),
                             (uint64_t)s_arg_i(argc, argv, 4));
    if (strcmp(cmd, "burst") == 0)
        return cmd_burst(s_arg_i(argc, argv, 2), s_arg_i(argc, argv, 3), s_arg_i(argc, argv, 4),
                         (uint64_t)s_arg_i(argc, argv, 5));
    if (strcmp(cmd, "sharelog") == 0)
        return cmd_sharelog(s_arg_i(argc, argv, 2), s_arg_i(argc, argv, 3), s_arg_i(argc, argv, 4),
                            s_arg_d(argc, argv, 5), (uint64_t)s_arg_i(argc, argv, 6),
                            argc > 8 ? s_arg_i(argc, argv, 7) : 0, argc > 8 ? s_arg_i(argc, argv, 8) : 0);
    if (strcmp(cmd, "oversub") == 0)
        return cmd_oversub((uint64_t)s_arg_i(argc, argv, 2));
    if (strcmp(cmd, "multidev") == 0)
        return cmd_multidev();
    if (strcmp(cmd, "fork") == 0)
        return cmd_fork();
    if (strcmp(cmd, "vmm") == 0)
        return cmd_vmm();
    if (strcmp(cmd, "gran") == 0)
        return cmd_gran();
    if (strcmp(cmd, "pool") == 0)
        return cmd_pool();
    if (strcmp(cmd, "pooldev") == 0)
        return cmd_pooldev();
    if (strcmp(cmd, "graphmem") == 0)
        return cmd_graphmem();
    if (strcmp(cmd, "contexts") == 0)
        return cmd_contexts();
    if (strcmp(cmd, "fakedriver") == 0)
        return cmd_fakedriver();
    if (strcmp(cmd, "devmem") == 0)
        return cmd_devmem(argc > 2 ? (int)s_arg_i(argc, argv, 2) : 0);
    if (strcmp(cmd, "now") == 0) {
        printf("%" PRId64 "\n", s_now());
        return 0;
    }
    if (strcmp(cmd, "rtldnext") == 0)
        return cmd_rtldnext();
    if (strcmp(cmd, "nvmlonly") == 0)
        return cmd_nvmlonly();
    if (strcmp(cmd, "passthrough") == 0)
        return cmd_passthrough((uint64_t)s_arg_i(argc, argv, 2));
    if (strcmp(cmd, "noop") == 0) {
        CK(cuInit(0));
        return 0;
    }
    s_usage();
    return 64;
}
