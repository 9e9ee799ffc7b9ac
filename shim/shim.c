/*
 * shim.c - start-up, the real driver, and the three ways a program reaches
 * a driver entry point.
 *
 * 1. Linked: the program's references to cuMemAlloc_v2 & co. bind to ours,
 *    since the shim is preloaded.
 * 2. dlopen + dlsym: dlsym with a library handle searches that library, not
 *    the preloaded shim, so we interpose dlsym itself: a name we wrap
 *    returns our wrapper, anything else goes to the real dlsym.
 * 3. cuGetProcAddress (v1 and v2, as the CUDA runtime uses): we let the
 *    driver resolve the name, version and stream flags, then replace the
 *    entry point it chose by our wrapper of the same entry point -- found by
 *    address among the real entry points we wrap, or, should the driver
 *    hand out an address we do not know, by the driver's naming rules (the
 *    versioned name current at that CUDA version, the _ptsz/_ptds variant
 *    when per-thread default stream is asked for).
 */
#include "shim.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "alloc_table.h"
#include "log.h"

#include "banned.h"

gp_real_t gp_real;
_Atomic int gp_loaded;
gp_shim_t gp_shim = { .slot = -1 };

static pthread_mutex_t s_load_lock = PTHREAD_MUTEX_INITIALIZER;
static void *(*s_real_dlsym)(void *, const char *);
static void *(*s_real_dlopen)(const char *, int);
static void *s_libcuda, *s_libnvml;
/* a libcuda the program opened itself before the shim loaded one (dlsym) */
static void *_Atomic s_cuda_hint;

/* ------------------------------------------------------------ the real dlsym */

/* dlsym and what it calls before anything else may run uninstrumented: a
 * sanitizer runtime resolves its own interceptors through dlsym while it
 * starts, before its shadow memory exists. */
#define GP_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

/* glibc's versions of dlsym and dlopen: the current one (2.34, libc), else
 * the architecture's first (libdl). */
#if defined(__aarch64__)
#define GP_GLIBC_BASE "GLIBC_2.17"
#elif defined(__x86_64__)
#define GP_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__i386__)
#define GP_GLIBC_BASE "GLIBC_2.0"
#else
#define GP_GLIBC_BASE NULL
#endif

GP_NO_SANITIZE static void *s_glibc_sym(const char *name)
{
    void *p = dlvsym(RTLD_NEXT, name, "GLIBC_2.34");
    if (p == NULL && GP_GLIBC_BASE != NULL)
        p = dlvsym(RTLD_NEXT, name, GP_GLIBC_BASE);
    return p;
}

GP_NO_SANITIZE static void s_find_real_dlsym(void)
{
    if (s_real_dlsym != NULL && s_real_dlopen != NULL)
        return;
    *(void **)&s_real_dlopen = s_glibc_sym("dlopen");
    *(void **)&s_real_dlsym = s_glibc_sym("dlsym");
}

/* ------------------------------------------------------------ wrappers table */

/* Every entry point we wrap, by its exported name. */
#define GP_WRAPPED(X) \
    X(cuGetProcAddress) X(cuGetProcAddress_v2) \
    X(cuCtxCreate_v2) X(cuCtxCreate_v3) X(cuCtxCreate_v4) X(cuDevicePrimaryCtxRetain) \
    X(cuCtxDestroy_v2) X(cuDevicePrimaryCtxRelease_v2) X(cuDevicePrimaryCtxReset_v2) \
    X(cuCtxSetLimit) \
    X(cuMemAlloc_v2) X(cuMemAllocPitch_v2) X(cuMemAllocManaged) X(cuMemFree_v2) \
    X(cuMemAllocAsync) X(cuMemAllocAsync_ptsz) X(cuMemAllocFromPoolAsync) \
    X(cuMemAllocFromPoolAsync_ptsz) X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz) \
    X(cuDeviceGetDefaultMemPool) X(cuDeviceGetMemPool) X(cuDeviceSetMemPool) \
    X(cuMemPoolCreate) X(cuMemPoolDestroy) X(cuMemPoolTrimTo) \
    X(cuMemCreate) X(cuMemRelease) X(cuMemMap) X(cuMemUnmap) \
    X(cuMemRetainAllocationHandle) X(cuMemImportFromShareableHandle) \
    X(cuArrayCreate_v2) X(cuArray3DCreate_v2) \
    X(cuArrayDestroy) X(cuMipmappedArrayCreate) X(cuMipmappedArrayDestroy) \
    X(cuMemGetInfo_v2) X(cuDeviceTotalMem_v2) \
    X(cuLaunchKernel) X(cuLaunchKernel_ptsz) X(cuLaunchKernelEx) X(cuLaunchKernelEx_ptsz) \
    X(cuLaunchCooperativeKernel) X(cuLaunchCooperativeKernel_ptsz) \
    X(cuGraphLaunch) X(cuGraphLaunch_ptsz) \
    X(cuGraphAddMemAllocNode) X(cuStreamEndCapture) X(cuGraphInstantiateWithFlags) \
    X(cuGraphDestroy) X(cuGraphExecDestroy) X(cuDeviceGraphMemTrim)

#define GP_WRAPPED_NVML(X) X(nvmlDeviceGetMemoryInfo) X(nvmlDeviceGetMemoryInfo_v2)

typedef struct {
    const char *name;
    void *wrapper;
    size_t real_off;     /* offset of the real entry point in gp_real */
} gp_wrap_t;

#define GP_WRAP_ENTRY(name) { #name, (void *)name, offsetof(gp_real_t, name) },
static const gp_wrap_t s_wraps[] = { GP_WRAPPED(GP_WRAP_ENTRY) GP_WRAPPED_NVML(GP_WRAP_ENTRY) };
#define NWRAPS (sizeof s_wraps / sizeof s_wraps[0])

static void *s_real_at(size_t off) { return *(void **)((char *)&gp_real + off); }

static const gp_wrap_t *s_wrap_by_name(const char *name)
{
    for (size_t i = 0; i < NWRAPS; i++)
        if (strcmp(s_wraps[i].name, name) == 0)
            return &s_wraps[i];
    return NULL;
}

/* ------------------------------------------------------------ loading */

void gp_shim_load(void)
{
    /* loading the driver may call back into us (dlsym from its
     * constructors): that call sees what is loaded so far */
    static GP_TLS int t_loading;
    if (t_loading)
        return;
    t_loading = 1;
    s_find_real_dlsym();
    /* The loader's lock is taken by dlopen and dlsym: neither is called
     * holding ours (a library constructor calling the driver while we wait
     * for the loader would deadlock).  Threads that race here each load,
     * and the first to finish publishes. */
    void *cuda = atomic_load(&s_cuda_hint);
    if (cuda == NULL)
        cuda = s_real_dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (cuda == NULL)
        gp_log_warn("cannot load the CUDA driver err=\"%s\"", dlerror());
    void *nvml = s_real_dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_GLOBAL);
    gp_real_t t;
#define GP_RESOLVE(name, params, args) \
    *(void **)&t.name = cuda ? s_real_dlsym(cuda, #name) : NULL;
    GP_CUDA_CALLS(GP_RESOLVE)
#undef GP_RESOLVE
#define GP_RESOLVE_NVML(name, params, args) \
    *(void **)&t.name = nvml ? s_real_dlsym(nvml, #name) : NULL;
    GP_NVML_CALLS(GP_RESOLVE_NVML)
#undef GP_RESOLVE_NVML
    /* Never call a NULL entry point: a wrapper of a missing function reports
     * what the driver would for an unknown one. */
    pthread_mutex_lock(&s_load_lock);
    if (!atomic_load(&gp_loaded)) {
        gp_real = t;
        s_libcuda = cuda;
        s_libnvml = nvml;
        atomic_store_explicit(&gp_loaded, 1, memory_order_release);
    }
    pthread_mutex_unlock(&s_load_lock);
    t_loading = 0;
}

/* ------------------------------------------------------------ dlsym */

/* dlsym(RTLD_NEXT, name) searches the objects loaded after its caller.
 * glibc finds the caller by the return address, which is ours when we call
 * it -- unless the compiler made our call a tail call (not at -O0, nor
 * always under sanitizers).  Called by us, it searches after the shim:
 * right for a caller after the shim, not for one before it (the program,
 * or a library preloaded first).  For those, the objects from the caller's
 * next up to the shim are searched here first: each by a handle of its
 * own (dlopen RTLD_NOLOAD: it is loaded already), the shim by its own
 * exports. */
/* No libc string function here: a sanitizer's interceptors of them are
 * not ready while it resolves its own through dlsym. */
GP_NO_SANITIZE static int s_streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b)
        a++, b++;
    return *a == *b;
}

GP_NO_SANITIZE static int s_is_shim_export(const char *name) { return s_streq(name, "dlsym"); }

GP_NO_SANITIZE static void *s_dlsym_next(const char *name, const void *caller, void *self)
{
    Dl_info info;
    struct link_map *from = NULL, *me = NULL;
    if (dladdr1(caller, &info, (void **)&from, RTLD_DL_LINKMAP) == 0 || from == NULL ||
        dladdr1((void *)&gp_shim, &info, (void **)&me, RTLD_DL_LINKMAP) == 0 || me == NULL)
        return s_real_dlsym(RTLD_NEXT, name);
    /* is the caller before the shim? */
    struct link_map *l = from->l_next;
    while (l != NULL && l != me)
        l = l->l_next;
    if (l == NULL)
        return s_real_dlsym(RTLD_NEXT, name);      /* after it: glibc's answer is right */
    for (l = from->l_next; l != me; l = l->l_next) {
        void *h = s_real_dlopen(l->l_name[0] != '\0' ? l->l_name : NULL, RTLD_LAZY | RTLD_NOLOAD);
        if (h == NULL)
            continue;
        /* that object's own definition, not one of its dependencies' */
        void *p = s_real_dlsym(h, name);
        struct link_map *in = NULL;
        if (p != NULL && (dladdr1(p, &info, (void **)&in, RTLD_DL_LINKMAP) == 0 || in != l))
            p = NULL;
        dlclose(h);
        if (p != NULL)
            return p;
    }
    if (s_is_shim_export(name))
        return self;
    return s_real_dlsym(RTLD_NEXT, name);
}

/* A program that opens libcuda itself -- by full path, as from a CUDA
 * forward-compatibility directory -- and looks entry points up on that
 * handle must reach the driver the shim enforces on.  The first lookup of a
 * driver entry point on a handle of a libcuda decides: before the shim has
 * loaded a driver, the program's becomes the shim's; after, a different
 * copy is refused -- no entry point of it is given out (NULL, and an error
 * in the log), since its functions would escape the slice or, wrapped,
 * reach a driver the program never initialised.  (dlopen itself is not
 * interposed: glibc resolves a relative name by its caller's RUNPATH.) */
GP_NO_SANITIZE static int s_other_libcuda(void *handle)
{
    if (handle == RTLD_DEFAULT || handle == RTLD_NEXT ||
        (atomic_load_explicit(&gp_loaded, memory_order_acquire) && handle == s_libcuda))
        return 0;
    struct link_map *lm = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL)
        return 0;
    const char *base = lm->l_name;
    for (const char *c = lm->l_name; *c != '\0'; c++)
        if (*c == '/')
            base = c + 1;
    const char *want = "libcuda.so";
    for (; *want != '\0'; want++, base++)
        if (*base != *want)
            return 0;
    if (!atomic_load_explicit(&gp_loaded, memory_order_acquire)) {
        void *expect = NULL;
        if (atomic_compare_exchange_strong(&s_cuda_hint, &expect, handle))
            s_real_dlopen(lm->l_name, RTLD_NOW | RTLD_NOLOAD);    /* the shim's own reference */
        GP_ENTER();
    }
    if (handle == s_libcuda)
        return 0;
    gp_log_error("refusing a second CUDA driver path=%s: the slice is enforced on the one loaded "
                 "first; load only one", lm->l_name);
    return 1;
}

GP_NO_SANITIZE __attribute__((noinline)) GP_EXPORT void *dlsym(void *handle, const char *name)
{
    s_find_real_dlsym();
    if (gp_shim.active && ((name[0] == 'c' && name[1] == 'u') ||
        (name[0] == 'n' && name[1] == 'v' && name[2] == 'm' && name[3] == 'l'))) {
        if (name[0] == 'c' && s_other_libcuda(handle))
            return NULL;
        const gp_wrap_t *w = s_wrap_by_name(name);
        if (w != NULL) {
            GP_ENTER();
            if (s_real_at(w->real_off) != NULL)
                return w->wrapper;
        }
    }
    if (handle == RTLD_NEXT)
        return s_dlsym_next(name, __builtin_extract_return_addr(__builtin_return_address(0)),
                            (void *)dlsym);
    return s_real_dlsym(handle, name);
}

/* ------------------------------------------------------------ cuGetProcAddress */

/* The driver's names for an entry point by the CUDA version that introduced
 * them; used only when the driver returns an address we do not know. */
static const struct { const char *base; int since; const char *name; } s_versions[] = {
    { "cuCtxCreate", 3020, "cuCtxCreate_v2" },
    { "cuCtxCreate", 11040, "cuCtxCreate_v3" },
    { "cuCtxCreate", 12050, "cuCtxCreate_v4" },
    { "cuCtxDestroy", 4000, "cuCtxDestroy_v2" },
    { "cuDevicePrimaryCtxRelease", 11000, "cuDevicePrimaryCtxRelease_v2" },
    { "cuDevicePrimaryCtxReset", 11000, "cuDevicePrimaryCtxReset_v2" },
    { "cuMemGetInfo", 3020, "cuMemGetInfo_v2" },
    { "cuDeviceTotalMem", 3020, "cuDeviceTotalMem_v2" },
    { "cuMemAlloc", 3020, "cuMemAlloc_v2" },
    { "cuMemAllocPitch", 3020, "cuMemAllocPitch_v2" },
    { "cuMemFree", 3020, "cuMemFree_v2" },
    { "cuArrayCreate", 3020, "cuArrayCreate_v2" },
    { "cuArray3DCreate", 3020, "cuArray3DCreate_v2" },
    { "cuGetProcAddress", 12000, "cuGetProcAddress_v2" },
};

static void *s_wrapper_for(const char *sym, int ver, cuuint64_t flags, void *real)
{
    for (size_t i = 0; i < NWRAPS; i++)
        if (s_real_at(s_wraps[i].real_off) == real)
            return s_wraps[i].wrapper;
    const char *chosen = sym;
    for (size_t i = 0; i < sizeof s_versions / sizeof s_versions[0]; i++)
        if (strcmp(s_versions[i].base, sym) == 0 && ver >= s_versions[i].since)
            chosen = s_versions[i].name;
    char name[128];
    snprintf(name, sizeof name, "%s%s", chosen,
             (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ? "_ptsz" : "");
    const gp_wrap_t *w = s_wrap_by_name(name);
    if (w == NULL && (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        w = s_wrap_by_name(chosen);
    if (w == NULL || s_real_at(w->real_off) == NULL)
        return NULL;
    return w->wrapper;
}

GP_EXPORT CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, cuuint64_t flags)
{
    GP_ENTER();
    if (gp_real.cuGetProcAddress == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = gp_real.cuGetProcAddress(sym, pfn, ver, flags);
    if (rc == CUDA_SUCCESS && pfn != NULL && *pfn != NULL) {
        void *w = s_wrapper_for(sym, ver, flags, *pfn);
        if (w != NULL)
            *pfn = w;
    }
    return rc;
}

GP_EXPORT CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, cuuint64_t flags,
                                       CUdriverProcAddressQueryResult *status)
{
    GP_ENTER();
    if (gp_real.cuGetProcAddress_v2 == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = gp_real.cuGetProcAddress_v2(sym, pfn, ver, flags, status);
    if (rc == CUDA_SUCCESS && pfn != NULL && *pfn != NULL) {
        void *w = s_wrapper_for(sym, ver, flags, *pfn);
        if (w != NULL)
            *pfn = w;
    }
    return rc;
}

/* ------------------------------------------------------------ the slice */

static int s_claim_slot(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    int slot = atomic_load(&gp_shim.slot);
    if (slot < 0) {
        slot = gp_slice_region_attach(gp_shim.region, (int)getpid());
        if (slot < 0)
            gp_log_error("no free process slot in the slice region path=%s",
                         gp_shim.cfg.region_path);
        atomic_store(&gp_shim.slot, slot);
    }
    pthread_mutex_unlock(&lock);
    return slot;
}

int gp_shim_reserve(int dev, uint64_t bytes, int flags)
{
    int slot = atomic_load_explicit(&gp_shim.slot, memory_order_relaxed);
    if (GP_UNLIKELY(slot < 0) && (slot = s_claim_slot()) < 0)
        return -1;
    if (gp_slice_region_reserve(gp_shim.region, slot, dev, bytes, flags) == 0)
        return 0;
    /* Over the limit: this process's memory pools may hold freed memory;
     * give it back to the device first (pools.c). */
    if ((gp_pools_trim(dev) > 0 || gp_graph_trim(dev) > 0) &&
        gp_slice_region_reserve(gp_shim.region, slot, dev, bytes, flags) == 0)
        return 0;
    /* A crashed process may still hold memory.  Reclaim
     * (off the hot path: this is the refusal path, and at most every
     * 100 ms per process) and try once more. */
    static _Atomic int64_t next_reclaim;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t due = atomic_load_explicit(&next_reclaim, memory_order_relaxed);
    if (now < due || !atomic_compare_exchange_strong(&next_reclaim, &due, now + 100000000))
        return -1;
    if (gp_slice_region_reclaim(gp_shim.region) > 0 &&
        gp_slice_region_reserve(gp_shim.region, slot, dev, bytes, flags) == 0)
        return 0;
    return -1;
}

int gp_shim_reserve_now(int dev, uint64_t bytes, int flags)
{
    int slot = atomic_load_explicit(&gp_shim.slot, memory_order_relaxed);
    if (GP_UNLIKELY(slot < 0) && (slot = s_claim_slot()) < 0)
        return -1;
    return gp_slice_region_reserve(gp_shim.region, slot, dev, bytes, flags);
}

void gp_shim_release(int dev, uint64_t bytes, int flags)
{
    int slot = atomic_load_explicit(&gp_shim.slot, memory_order_relaxed);
    if (slot >= 0)
        gp_slice_region_release(gp_shim.region, slot, dev, bytes, flags);
}

void gp_shim_mark_host(int dev, uint64_t bytes)
{
    int slot = atomic_load_explicit(&gp_shim.slot, memory_order_relaxed);
    if (slot >= 0)
        gp_slice_region_mark_host(gp_shim.region, slot, dev, bytes);
}

static GP_TLS CUcontext t_ctx;
static GP_TLS int t_ctx_dev = -1;

int gp_shim_current_dev(void)
{
    if (GP_LIKELY(gp_shim.ndev == 1))
        return 0;
    CUcontext ctx = NULL;
    if (gp_real.cuCtxGetCurrent == NULL || gp_real.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS ||
        ctx == NULL)
        return -1;
    if (ctx == t_ctx)
        return t_ctx_dev;
    CUdevice d;
    if (gp_real.cuCtxGetDevice(&d) != CUDA_SUCCESS)
        return -1;
    t_ctx = ctx;
    t_ctx_dev = d >= 0 && d < gp_shim.ndev ? d : -1;
    return t_ctx_dev;
}

uint64_t gp_shim_granularity_slow(int dev)
{
    size_t g = 0;
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    /* a power of two, or the driver's page size when it cannot say */
    if (gp_real.cuMemGetAllocationGranularity == NULL ||
        gp_real.cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
            CUDA_SUCCESS ||
        g == 0 || (g & (g - 1)) != 0)
        g = GP_DEFAULT_GRANULARITY;
    atomic_store_explicit(&gp_shim.gran[dev], (uint64_t)g, memory_order_relaxed);
    return g;
}

void gp_shim_learn_device(int dev)
{
    gp_shim_learn_uuid(dev);
    if (atomic_load_explicit(&gp_shim.gran[dev], memory_order_relaxed) == 0)
        gp_shim_granularity_slow(dev);
}

void gp_shim_learn_uuid(int dev)
{
    gp_slice_device_t *d = gp_shim.dev[dev];
    if (d == NULL || d->uuid[0] != '\0')
        return;
    CUuuid u;
    CUresult rc = CUDA_ERROR_NOT_FOUND;
    if (gp_real.cuDeviceGetUuid_v2 != NULL)
        rc = gp_real.cuDeviceGetUuid_v2(&u, dev);
    if (rc != CUDA_SUCCESS && gp_real.cuDeviceGetUuid != NULL)
        rc = gp_real.cuDeviceGetUuid(&u, dev);
    if (rc != CUDA_SUCCESS)
        return;
    char s[GP_SLICE_UUID_LEN];
    gp_cuda_uuid_string(&u, s, sizeof s);
    gp_slice_region_set_uuid(gp_shim.region, dev, s);
}

int gp_shim_count_context(int dev)
{
    if (dev < 0 || dev >= gp_shim.ndev)
        return 0;
    if (atomic_load(&gp_shim.ctx_counted[dev]))
        return 0;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&gp_shim.ctx_counted[dev], &expect, 1))
        return 0;
    if (gp_shim.cfg.ctx_overhead > 0 && gp_shim_reserve(dev, gp_shim.cfg.ctx_overhead, 0) < 0) {
        atomic_store(&gp_shim.ctx_counted[dev], 0);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ start-up, exit, fork */

static const char *s_getenv(const char *name) { return getenv(name); }

static void s_fork_child(void)
{
    /* The child holds nothing yet: its parent's allocations, contexts and
     * slot stay the parent's. */
    atomic_store(&gp_shim.slot, -1);
    for (int d = 0; d < GP_SLICE_MAX_DEVICES; d++)
        atomic_store(&gp_shim.ctx_counted[d], 0);
    gp_shim_alloc_clear();
    gp_vmm_fork_child();
    gp_pools_fork_child();
    gp_ctx_fork_child();
    gp_graph_fork_child();
    gp_compute_fork_child();
}

__attribute__((constructor)) static void s_start(void)
{
    gp_err_t err;
    gp_shim_config_t cfg;
    if (gp_shim_config_parse(&cfg, s_getenv, &err) < 0) {
        gp_log_init("gpupool-shim", GP_LOG_WARN);
        gp_log_error("bad slice configuration, not starting: %s", err.msg);
        _exit(EX_CONFIG);
    }
    gp_log_init("gpupool-shim", cfg.log_level);
    gp_shim.cfg = cfg;
    if (!cfg.enabled) {
        gp_log_debug("no GP_SLICE_REGION: passing the driver through");
        return;
    }
    gp_slice_config_t create;
    gp_shim_config_to_slice(&cfg, &create);
    gp_shim.region = gp_slice_region_open(cfg.region_path, &create, &err);
    if (gp_shim.region == NULL) {
        gp_log_error("cannot open the slice region, not starting: %s", err.msg);
        _exit(EX_OSERR);
    }
    gp_shim.ndev = gp_slice_region_ndevices(gp_shim.region);
    for (int d = 0; d < gp_shim.ndev; d++)
        gp_shim.dev[d] = gp_slice_region_device(gp_shim.region, d);
    gp_shim.priority = gp_slice_region_priority(gp_shim.region);
    gp_shim.oversubscribe = gp_slice_region_oversubscribe(gp_shim.region);
    gp_shim.active = 1;
    gp_compute_init();
    pthread_atfork(NULL, NULL, s_fork_child);
    gp_log_debug("slice enforced region=%s devices=%d priority=%d", cfg.region_path,
                 gp_shim.ndev, (int)gp_shim.priority);
}

__attribute__((destructor)) static void s_stop(void)
{
    if (!gp_shim.active)
        return;
    int slot = atomic_exchange(&gp_shim.slot, -1);
    if (slot >= 0)
        gp_slice_region_detach(gp_shim.region, slot);
}
