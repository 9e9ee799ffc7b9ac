/*
 * fakecuda.c - a fake CUDA driver, built as libcuda.so.1 for the tests.
 *
 * It implements the part of the driver API that cuda_api.h declares, on
 * the simulated devices of fakestate.h: device memory is host memory
 * counted against the device's size, kernels "run" on the device clock for
 * a duration taken from their launch parameters, events and
 * synchronisation follow that clock.  cuGetProcAddress (both versions)
 * resolves a base name, a CUDA version and the stream flags to the
 * versioned or per-thread-stream entry point, as the real driver does.
 *
 * fakecuda_busy_ns() is the one test-only export: the device's busy time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_api.h"
#include "fakestate.h"

#include "banned.h"

#define EXPORT __attribute__((visibility("default")))

static int s_inited;
static fake_state_t *S;

/* ------------------------------------------------------------ contexts */

struct CUctx_st {
    int dev;
    int64_t last_end_ns;   /* end of the last work this context queued */
};
static struct CUctx_st s_primary[FAKE_MAX_DEVICES];
static _Thread_local CUcontext t_ctx;

#define NEED_INIT() do { if (!s_inited) return CUDA_ERROR_NOT_INITIALIZED; } while (0)
#define NEED_CTX() do { NEED_INIT(); if (t_ctx == NULL) return CUDA_ERROR_INVALID_CONTEXT; } while (0)

EXPORT CUresult cuInit(unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    S = fake_state_get();
    if (S == NULL)
        return CUDA_ERROR_NO_DEVICE;
    for (int d = 0; d < FAKE_MAX_DEVICES; d++)
        s_primary[d].dev = d;
    fake_reclaim(S);
    s_inited = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *v)
{
    *v = 12040;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count)
{
    NEED_INIT();
    *count = S->ndevices;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
    NEED_INIT();
    if (ordinal < 0 || ordinal >= S->ndevices)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = ordinal;
    return CUDA_SUCCESS;
}

#define CHECK_DEV(d) do { if ((d) < 0 || (d) >= S->ndevices) return CUDA_ERROR_INVALID_DEVICE; } while (0)

EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    fake_uuid(dev, uuid->bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid(uuid, dev); }

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    *bytes = S->dev[dev].total;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    (void)flags;
    NEED_INIT();
    CHECK_DEV(dev);
    CUcontext c = calloc(1, sizeof *c);
    if (c == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    c->dev = dev;
    t_ctx = c;
    *pctx = c;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, void *params, int nparams, unsigned int flags,
                               CUdevice dev)
{
    (void)params, (void)nparams;
    return cuCtxCreate_v2(pctx, flags, dev);
}

EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, void *params, unsigned int flags, CUdevice dev)
{
    (void)params;
    return cuCtxCreate_v2(pctx, flags, dev);
}

EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    NEED_INIT();
    if (ctx == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (t_ctx == ctx)
        t_ctx = NULL;
    if (ctx < &s_primary[0] || ctx >= &s_primary[FAKE_MAX_DEVICES])
        free(ctx);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    NEED_INIT();
    *pctx = t_ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    NEED_INIT();
    t_ctx = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice *dev)
{
    NEED_CTX();
    *dev = t_ctx->dev;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize(void)
{
    NEED_CTX();
    fake_sleep_until(t_ctx->last_end_ns);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    *pctx = &s_primary[dev];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------ memory */

/* Allocations of this process: pointer -> size, device, kind. */
typedef struct {
    uintptr_t key;
    uint64_t size;
    int dev;
    int kind;   /* 1 device, 2 host, 3 generic handle, 4 array */
} fake_alloc_t;

static pthread_mutex_t s_alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_alloc_t *s_allocs;
static size_t s_alloc_cap, s_alloc_n;

static size_t s_hash(uintptr_t k) { return (size_t)((k >> 4) * 0x9e3779b97f4a7c15ULL); }

static int s_alloc_put_locked(fake_alloc_t a);

static int s_alloc_grow(void)
{
    size_t ncap = s_alloc_cap ? s_alloc_cap * 2 : 1024;
    fake_alloc_t *old = s_allocs;
    size_t ocap = s_alloc_cap;
    s_allocs = calloc(ncap, sizeof *s_allocs);
    if (s_allocs == NULL) {
        s_allocs = old;
        return -1;
    }
    s_alloc_cap = ncap;
    s_alloc_n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key != 0 && old[i].kind != 0)
            s_alloc_put_locked(old[i]);
    free(old);
    return 0;
}

static int s_alloc_put_locked(fake_alloc_t a)
{
    if ((s_alloc_n + 1) * 2 > s_alloc_cap && s_alloc_grow() < 0)
        return -1;
    size_t i = s_hash(a.key) & (s_alloc_cap - 1);
    while (s_allocs[i].key != 0)
        i = (i + 1) & (s_alloc_cap - 1);
    s_allocs[i] = a;
    s_alloc_n++;
    return 0;
}

static int s_alloc_put(uintptr_t key, uint64_t size, int dev, int kind)
{
    pthread_mutex_lock(&s_alloc_lock);
    int rc = s_alloc_put_locked((fake_alloc_t){ key, size, dev, kind });
    pthread_mutex_unlock(&s_alloc_lock);
    return rc;
}

/* Remove key (of kind) and return its record; 0 when found. */
static int s_alloc_take(uintptr_t key, int kind, fake_alloc_t *out)
{
    int rc = -1;
    pthread_mutex_lock(&s_alloc_lock);
    if (s_alloc_cap == 0)
        goto out;
    size_t i = s_hash(key) & (s_alloc_cap - 1);
    while (s_allocs[i].key != 0) {
        if (s_allocs[i].key == key && s_allocs[i].kind == kind) {
            *out = s_allocs[i];
            /* backward-shift deletion keeps probe chains intact */
            size_t j = i;
            for (;;) {
                s_allocs[i].key = 0;
                for (;;) {
                    j = (j + 1) & (s_alloc_cap - 1);
                    if (s_allocs[j].key == 0)
                        goto removed;
                    size_t h = s_hash(s_allocs[j].key) & (s_alloc_cap - 1);
                    if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j)))
                        break;
                }
                s_allocs[i] = s_allocs[j];
                i = j;
            }
removed:
            s_alloc_n--;
            rc = 0;
            break;
        }
        i = (i + 1) & (s_alloc_cap - 1);
    }
out:
    pthread_mutex_unlock(&s_alloc_lock);
    return rc;
}

static CUresult s_dev_alloc(CUdeviceptr *dptr, uint64_t bytes, int dev)
{
    if (dptr == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (fake_mem_take(S, dev, bytes) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(bytes);
    if (p == NULL || s_alloc_put((uintptr_t)p, bytes, dev, 1) < 0) {
        free(p);
        fake_mem_give(S, dev, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *dptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    NEED_CTX();
    return s_dev_alloc(dptr, bytes, t_ctx->dev);
}

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                   unsigned int elem)
{
    NEED_CTX();
    if (elem != 4 && elem != 8 && elem != 16)
        return CUDA_ERROR_INVALID_VALUE;
    size_t p = (width + 511) & ~(size_t)511;
    CUresult rc = s_dev_alloc(dptr, (uint64_t)p * height, t_ctx->dev);
    if (rc == CUDA_SUCCESS)
        *pitch = p;
    return rc;
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    (void)flags;
    NEED_CTX();
    return s_dev_alloc(dptr, bytes, t_ctx->dev);
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    NEED_INIT();
    fake_alloc_t a;
    if (s_alloc_take((uintptr_t)dptr, 1, &a) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    free((void *)(uintptr_t)dptr);
    fake_mem_give(S, a.dev, a.size);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    (void)s;
    NEED_CTX();
    return s_dev_alloc(dptr, bytes, t_ctx->dev);
}

EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    return cuMemAllocAsync(dptr, bytes, s);
}

EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
    static int pools[FAKE_MAX_DEVICES];
    NEED_INIT();
    CHECK_DEV(dev);
    *pool = (CUmemoryPool)(void *)&pools[dev];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                        CUstream s)
{
    (void)pool;
    return cuMemAllocAsync(dptr, bytes, s);
}

EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                             CUstream s)
{
    (void)pool;
    return cuMemAllocAsync(dptr, bytes, s);
}

EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s)
{
    (void)s;
    return cuMemFree_v2(dptr);
}

EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s) { return cuMemFreeAsync(dptr, s); }

EXPORT CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
    NEED_CTX();
    fake_reclaim(S);
    fake_device_t *d = &S->dev[t_ctx->dev];
    uint64_t used = fake_mem_used(S, (int)(d - S->dev));
    *total = d->total;
    *free_b = used < d->total ? d->total - used : 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t bytes,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
    NEED_INIT();
    if (h == NULL || prop == NULL || flags != 0 || bytes == 0 ||
        prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(prop->location.id);
    if (fake_mem_take(S, prop->location.id, bytes) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(1);
    if (p == NULL || s_alloc_put((uintptr_t)p, bytes, prop->location.id, 3) < 0) {
        free(p);
        fake_mem_give(S, prop->location.id, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *h = (CUmemGenericAllocationHandle)(uintptr_t)p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    NEED_INIT();
    fake_alloc_t a;
    if (s_alloc_take((uintptr_t)h, 3, &a) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    free((void *)(uintptr_t)h);
    fake_mem_give(S, a.dev, a.size);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    (void)flags;
    NEED_INIT();
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (s_alloc_put((uintptr_t)p, bytes, 0, 2) < 0) {
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *dptr, void *p, unsigned int flags)
{
    NEED_INIT();
    if (flags != 0 || p == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *dptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFreeHost(void *p)
{
    NEED_INIT();
    fake_alloc_t a;
    if (s_alloc_take((uintptr_t)p, 2, &a) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    free(p);
    return CUDA_SUCCESS;
}

static uint64_t s_format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 0;
    }
}

static CUresult s_array(void **out, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels)
{
    NEED_CTX();
    uint64_t fb = s_format_bytes(d->Format);
    if (fb == 0 || d->Width == 0 || (d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = 0, w = d->Width, h = d->Height ? d->Height : 1, z = d->Depth ? d->Depth : 1;
    for (unsigned l = 0; l < levels; l++) {
        bytes += w * h * z * fb * d->NumChannels;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : 1;
        if (!(d->Flags & CUDA_ARRAY3D_LAYERED))
            z = z > 1 ? z / 2 : 1;
    }
    int dev = t_ctx->dev;
    if (fake_mem_take(S, dev, bytes) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(1);
    if (p == NULL || s_alloc_put((uintptr_t)p, bytes, dev, 4) < 0) {
        free(p);
        fake_mem_give(S, dev, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = p;
    return CUDA_SUCCESS;
}

static CUresult s_array_free(void *p)
{
    NEED_INIT();
    fake_alloc_t a;
    if (s_alloc_take((uintptr_t)p, 4, &a) < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    free(p);
    fake_mem_give(S, a.dev, a.size);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuArrayCreate_v2(CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    CUDA_ARRAY3D_DESCRIPTOR d = { desc->Width, desc->Height, 0, desc->Format, desc->NumChannels, 0 };
    return s_array((void **)arr, &d, 1);
}

EXPORT CUresult cuArray3DCreate_v2(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    return s_array((void **)arr, desc, 1);
}

EXPORT CUresult cuArrayDestroy(CUarray arr) { return s_array_free(arr); }

EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                       unsigned int levels)
{
    if (levels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return s_array((void **)arr, desc, levels);
}

EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr) { return s_array_free(arr); }

/* ------------------------------------------------------------ modules, kernels */

struct CUmod_st { int unused; };
struct CUfunc_st { int spin; };
static struct CUmod_st s_module;
static struct CUfunc_st s_spin_fn = { 1 }, s_noop_fn = { 0 };

EXPORT CUresult cuModuleLoadData(CUmodule *mod, const void *image)
{
    NEED_CTX();
    if (image == NULL)
        return CUDA_ERROR_INVALID_IMAGE;
    *mod = &s_module;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule mod, const char *name)
{
    NEED_CTX();
    if (mod != &s_module || name == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *f = strcmp(name, "gp_spin") == 0 ? &s_spin_fn : &s_noop_fn;
    return CUDA_SUCCESS;
}

static int64_t s_duration(CUfunction f, void **params)
{
    if (f == &s_spin_fn && params != NULL && params[0] != NULL)
        return (int64_t)*(const uint64_t *)params[0];
    return 0;
}

/* Queue a duration on the current context's device.  Like the real driver's
 * bounded launch queue, a launch waits while more than 1 s of work from
 * this context is queued. */
static CUresult s_run(int64_t dur)
{
    NEED_CTX();
    int64_t now = fake_now_ns();
    if (t_ctx->last_end_ns - now > 1000000000)
        fake_sleep_until(t_ctx->last_end_ns - 1000000000);
    if (dur == 0) {
        atomic_fetch_add(&S->dev[t_ctx->dev].launches, 1);
        return CUDA_SUCCESS;
    }
    t_ctx->last_end_ns = fake_enqueue(S, t_ctx->dev, dur);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                               unsigned int bx, unsigned int by, unsigned int bz,
                               unsigned int shmem, CUstream s, void **params, void **extra)
{
    (void)shmem, (void)s, (void)extra;
    if (f == NULL || gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return s_run(s_duration(f, params));
}

EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                    unsigned int bx, unsigned int by, unsigned int bz,
                                    unsigned int shmem, CUstream s, void **params, void **extra)
{
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
}

EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *cfg, CUfunction f, void **params,
                                 void **extra)
{
    if (cfg == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return cuLaunchKernel(f, cfg->gridDimX, cfg->gridDimY, cfg->gridDimZ, cfg->blockDimX,
                          cfg->blockDimY, cfg->blockDimZ, cfg->sharedMemBytes, cfg->hStream,
                          params, extra);
}

EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *cfg, CUfunction f, void **params,
                                      void **extra)
{
    return cuLaunchKernelEx(cfg, f, params, extra);
}

EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy,
                                          unsigned int gz, unsigned int bx, unsigned int by,
                                          unsigned int bz, unsigned int shmem, CUstream s,
                                          void **params)
{
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, NULL);
}

EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                               unsigned int gz, unsigned int bx, unsigned int by,
                                               unsigned int bz, unsigned int shmem, CUstream s,
                                               void **params)
{
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, NULL);
}

/* ------------------------------------------------------------ streams, events */

struct CUstream_st { int unused; };
struct CUevent_st { int64_t t; int recorded; };

EXPORT CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
    (void)flags;
    NEED_CTX();
    *s = calloc(1, sizeof **s);
    return *s ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuStreamSynchronize(CUstream s)
{
    (void)s;
    return cuCtxSynchronize();
}

EXPORT CUresult cuEventCreate(CUevent *e, unsigned int flags)
{
    (void)flags;
    NEED_CTX();
    *e = calloc(1, sizeof **e);
    return *e ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuEventDestroy_v2(CUevent e)
{
    NEED_INIT();
    free(e);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventRecord(CUevent e, CUstream s)
{
    (void)s;
    NEED_CTX();
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    int64_t now = fake_now_ns();
    e->t = t_ctx->last_end_ns > now ? t_ctx->last_end_ns : now;
    e->recorded = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventRecord_ptsz(CUevent e, CUstream s) { return cuEventRecord(e, s); }

EXPORT CUresult cuEventQuery(CUevent e)
{
    NEED_INIT();
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return !e->recorded || fake_now_ns() >= e->t ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

EXPORT CUresult cuEventSynchronize(CUevent e)
{
    NEED_INIT();
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (e->recorded)
        fake_sleep_until(e->t);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end)
{
    NEED_INIT();
    if (start == NULL || end == NULL || !start->recorded || !end->recorded)
        return CUDA_ERROR_INVALID_HANDLE;
    if (fake_now_ns() < end->t || fake_now_ns() < start->t)
        return CUDA_ERROR_NOT_READY;
    *ms = (float)((double)(end->t - start->t) / 1e6);
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------ graphs */

struct CUgraph_st { int64_t total_ns; int nodes; };
struct CUgraphExec_st { int64_t total_ns; int nodes; };
struct CUgraphNode_st { int unused; };
static struct CUgraphNode_st s_node;

EXPORT CUresult cuGraphCreate(CUgraph *g, unsigned int flags)
{
    (void)flags;
    NEED_INIT();
    *g = calloc(1, sizeof **g);
    return *g ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *node, CUgraph g, const CUgraphNode *deps,
                                        size_t ndeps, const CUDA_KERNEL_NODE_PARAMS *p)
{
    (void)deps, (void)ndeps;
    NEED_INIT();
    if (g == NULL || p == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    g->total_ns += s_duration(p->func, p->kernelParams);
    g->nodes++;
    *node = &s_node;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph g, unsigned long long flags)
{
    (void)flags;
    NEED_INIT();
    if (g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *exec = calloc(1, sizeof **exec);
    if (*exec == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    (*exec)->total_ns = g->total_ns;
    (*exec)->nodes = g->nodes;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream s)
{
    (void)s;
    if (exec == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return s_run(exec->total_ns);
}

EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s) { return cuGraphLaunch(exec, s); }

/* ------------------------------------------------------------ cuGetProcAddress */

#define FAKE_ENTRY(name, params, args) { #name, (void *)name },
static const struct { const char *name; void *fn; } s_exports[] = {
    GP_CUDA_CALLS(FAKE_ENTRY)
};

/* Base name -> versioned export, by the CUDA version that introduced it. */
static const struct { const char *base; int since; const char *name; } s_versions[] = {
    { "cuDeviceTotalMem", 3020, "cuDeviceTotalMem_v2" },
    { "cuCtxCreate", 3020, "cuCtxCreate_v2" },
    { "cuCtxCreate", 11040, "cuCtxCreate_v3" },
    { "cuCtxCreate", 12050, "cuCtxCreate_v4" },
    { "cuCtxDestroy", 4000, "cuCtxDestroy_v2" },
    { "cuDevicePrimaryCtxRelease", 11000, "cuDevicePrimaryCtxRelease_v2" },
    { "cuDeviceGetUuid", 11040, "cuDeviceGetUuid_v2" },
    { "cuMemGetInfo", 3020, "cuMemGetInfo_v2" },
    { "cuMemAlloc", 3020, "cuMemAlloc_v2" },
    { "cuMemAllocPitch", 3020, "cuMemAllocPitch_v2" },
    { "cuMemFree", 3020, "cuMemFree_v2" },
    { "cuMemHostGetDevicePointer", 3020, "cuMemHostGetDevicePointer_v2" },
    { "cuArrayCreate", 3020, "cuArrayCreate_v2" },
    { "cuArray3DCreate", 3020, "cuArray3DCreate_v2" },
    { "cuEventDestroy", 4000, "cuEventDestroy_v2" },
    { "cuGraphAddKernelNode", 12000, "cuGraphAddKernelNode_v2" },
    { "cuGetProcAddress", 12000, "cuGetProcAddress_v2" },
};

static void *s_export(const char *name)
{
    for (size_t i = 0; i < sizeof s_exports / sizeof s_exports[0]; i++)
        if (strcmp(s_exports[i].name, name) == 0)
            return s_exports[i].fn;
    return NULL;
}

static CUresult s_proc_address(const char *sym, void **pfn, int ver, cuuint64_t flags,
                               CUdriverProcAddressQueryResult *status)
{
    if (sym == NULL || pfn == NULL || ver <= 0 ||
        (flags & ~(CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)))
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    char name[128];
    const char *chosen = sym;
    int versioned = 0, too_new = 0;
    for (size_t i = 0; i < sizeof s_versions / sizeof s_versions[0]; i++) {
        if (strcmp(s_versions[i].base, sym) != 0)
            continue;
        versioned = 1;
        if (ver >= s_versions[i].since)
            chosen = s_versions[i].name;
    }
    /* the stream-ordered and graph APIs exist since these versions */
    if ((strncmp(sym, "cuMemAllocAsync", 15) == 0 || strncmp(sym, "cuMemFreeAsync", 14) == 0 ||
         strncmp(sym, "cuMemAllocFromPoolAsync", 23) == 0) && ver < 11020)
        too_new = 1;
    if (strcmp(sym, "cuLaunchKernelEx") == 0 && ver < 11080)
        too_new = 1;
    (void)versioned;
    if (too_new) {
        if (status)
            *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        return CUDA_ERROR_NOT_FOUND;
    }
    snprintf(name, sizeof name, "%s", chosen);
    if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) {
        char ptsz[128];
        snprintf(ptsz, sizeof ptsz, "%s_ptsz", chosen);
        if (s_export(ptsz) != NULL)
            memcpy(name, ptsz, sizeof name);
    }
    void *fn = s_export(name);
    if (fn == NULL) {
        if (status)
            *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = fn;
    if (status)
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, cuuint64_t flags)
{
    return s_proc_address(sym, pfn, ver, flags, NULL);
}

EXPORT CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *status)
{
    return s_proc_address(sym, pfn, ver, flags, status);
}

/* ------------------------------------------------------------ test-only */

EXPORT uint64_t fakecuda_busy_ns(int dev);
EXPORT uint64_t fakecuda_busy_ns(int dev)
{
    if (S == NULL || dev < 0 || dev >= S->ndevices)
        return 0;
    return fake_busy_ns(S, dev, fake_now_ns());
}
