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
 * Memory follows a real driver's rules, described in fakestate.h:
 * allocations in whole 2 MiB pages, VMM memory alive until its last handle
 * and mapping are gone, pools that keep freed memory reserved.
 *
 * Test-only exports: fakecuda_busy_ns() (the device's busy time),
 * fakecuda_mem_used() and fakecuda_mem_peak() (what the device holds and
 * the most it ever held).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    size_t limit[3];       /* CU_LIMIT_STACK_SIZE, PRINTF_FIFO_SIZE, MALLOC_HEAP_SIZE */
    uint64_t limit_bytes;  /* charged for limits above their defaults */
};
static struct CUctx_st s_primary[FAKE_MAX_DEVICES];
static int s_primary_refs[FAKE_MAX_DEVICES];
static int s_ctx_live[FAKE_MAX_DEVICES];   /* contexts of this process per device */
static pthread_mutex_t s_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local CUcontext t_ctx;
static _Thread_local CUcontext t_ctx_stack[16];
static _Thread_local int t_ctx_depth;

static const size_t s_limit_default[3] = { 1024, (size_t)1 << 20, (size_t)8 << 20 };

static void s_pools_settle(void);
static int s_graph_ptr_free(CUdeviceptr dptr);

#define NEED_INIT() do { if (!s_inited) return CUDA_ERROR_NOT_INITIALIZED; } while (0)
#define NEED_CTX() do { NEED_INIT(); if (t_ctx == NULL) return CUDA_ERROR_INVALID_CONTEXT; } while (0)

EXPORT CUresult cuInit(unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    S = fake_state_get();
    if (S == NULL)
        return CUDA_ERROR_NO_DEVICE;
    for (int d = 0; d < FAKE_MAX_DEVICES; d++) {
        s_primary[d].dev = d;
        memcpy(s_primary[d].limit, s_limit_default, sizeof s_limit_default);
    }
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

EXPORT CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attr, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    if (value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    switch ((int)attr) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = FAKE_SMS; return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *value = FAKE_THREADS_PER_SM; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

/* A context's memory: FAKECUDA_CTX_MIB per process and device while the
 * process has any context there. */
static uint64_t s_ctx_bytes(void)
{
    const char *v = getenv("FAKECUDA_CTX_MIB");
    return v != NULL ? strtoull(v, NULL, 10) << 20 : 0;
}

static CUresult s_ctx_open(int dev)
{
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_ctx_lock);
    if (s_ctx_live[dev] == 0 && s_ctx_bytes() > 0 && fake_mem_take(S, dev, s_ctx_bytes()) < 0)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    else
        s_ctx_live[dev]++;
    pthread_mutex_unlock(&s_ctx_lock);
    return rc;
}

static void s_ctx_close(CUcontext c)
{
    int dev = c->dev;
    pthread_mutex_lock(&s_ctx_lock);
    if (c->limit_bytes > 0)
        fake_mem_give(S, dev, c->limit_bytes);
    c->limit_bytes = 0;
    memcpy(c->limit, s_limit_default, sizeof s_limit_default);
    if (s_ctx_live[dev] > 0 && --s_ctx_live[dev] == 0) {
        if (s_ctx_bytes() > 0)
            fake_mem_give(S, dev, s_ctx_bytes());
    }
    pthread_mutex_unlock(&s_ctx_lock);
}

EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    (void)flags;
    NEED_INIT();
    CHECK_DEV(dev);
    CUcontext c = calloc(1, sizeof *c);
    if (c == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = s_ctx_open(dev);
    if (rc != CUDA_SUCCESS) {
        free(c);
        return rc;
    }
    c->dev = dev;
    memcpy(c->limit, s_limit_default, sizeof s_limit_default);
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
    if (ctx >= &s_primary[0] && ctx < &s_primary[FAKE_MAX_DEVICES])
        return CUDA_ERROR_INVALID_CONTEXT;
    if (t_ctx == ctx)
        t_ctx = NULL;
    s_ctx_close(ctx);
    free(ctx);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    NEED_INIT();
    if (t_ctx_depth >= 16)
        return CUDA_ERROR_INVALID_VALUE;
    t_ctx_stack[t_ctx_depth++] = t_ctx;
    t_ctx = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    NEED_INIT();
    if (t_ctx_depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (pctx != NULL)
        *pctx = t_ctx;
    t_ctx = t_ctx_stack[--t_ctx_depth];
    return CUDA_SUCCESS;
}

static uint64_t s_limit_cost(int which, size_t v)
{
    return which == CU_LIMIT_STACK_SIZE ? (uint64_t)v * FAKE_SMS * FAKE_THREADS_PER_SM : v;
}

/* What a context's limits above their defaults occupy on the device. */
static uint64_t s_limits_bytes(const size_t *limit)
{
    uint64_t b = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t c = s_limit_cost(i, limit[i]), d = s_limit_cost(i, s_limit_default[i]);
        b += c > d ? c - d : 0;
    }
    return b;
}

EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    NEED_CTX();
    if ((int)limit < 0 || (int)limit > 2)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&s_ctx_lock);
    size_t want[3];
    memcpy(want, t_ctx->limit, sizeof want);
    want[limit] = value;
    uint64_t now = t_ctx->limit_bytes, next = s_limits_bytes(want);
    CUresult rc = CUDA_SUCCESS;
    if (next > now && fake_mem_take(S, t_ctx->dev, next - now) < 0)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    else {
        if (next < now)
            fake_mem_give(S, t_ctx->dev, now - next);
        memcpy(t_ctx->limit, want, sizeof want);
        t_ctx->limit_bytes = next;
    }
    pthread_mutex_unlock(&s_ctx_lock);
    return rc;
}

EXPORT CUresult cuCtxGetLimit(size_t *value, CUlimit limit)
{
    NEED_CTX();
    if (value == NULL || (int)limit < 0 || (int)limit > 2)
        return CUDA_ERROR_INVALID_VALUE;
    *value = t_ctx->limit[limit];
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
    s_pools_settle();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    pthread_mutex_lock(&s_ctx_lock);
    int first = s_primary_refs[dev]++ == 0;
    pthread_mutex_unlock(&s_ctx_lock);
    if (first) {
        CUresult rc = s_ctx_open(dev);
        if (rc != CUDA_SUCCESS) {
            pthread_mutex_lock(&s_ctx_lock);
            s_primary_refs[dev]--;
            pthread_mutex_unlock(&s_ctx_lock);
            return rc;
        }
    }
    *pctx = &s_primary[dev];
    return CUDA_SUCCESS;
}

/* The primary context goes when its last retain is released (or at a
 * reset): its memory with it. */
static CUresult s_primary_drop(int dev, int all)
{
    pthread_mutex_lock(&s_ctx_lock);
    if (s_primary_refs[dev] == 0) {
        pthread_mutex_unlock(&s_ctx_lock);
        return all ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
    }
    s_primary_refs[dev] = all ? 0 : s_primary_refs[dev] - 1;
    int last = s_primary_refs[dev] == 0;
    pthread_mutex_unlock(&s_ctx_lock);
    if (last) {
        if (t_ctx == &s_primary[dev])
            t_ctx = NULL;
        s_ctx_close(&s_primary[dev]);
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    return s_primary_drop(dev, 0);
}

EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    return s_primary_drop(dev, 1);
}

/* ------------------------------------------------------------ memory */

/* Allocations of this process: pointer -> size, device, kind. */
typedef struct {
    uintptr_t key;
    uint64_t size;
    int dev;
    int kind;   /* 1 device, 2 host, 4 array, 5 from a pool */
    CUmemoryPool pool;
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

static int s_alloc_put(uintptr_t key, uint64_t size, int dev, int kind, CUmemoryPool pool)
{
    pthread_mutex_lock(&s_alloc_lock);
    int rc = s_alloc_put_locked((fake_alloc_t){ key, size, dev, kind, pool });
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

/* What an allocation of bytes occupies on the device: whole pages. */
static uint64_t s_pages(uint64_t bytes)
{
    return (bytes + FAKE_GRANULARITY - 1) / FAKE_GRANULARITY * FAKE_GRANULARITY;
}

static CUresult s_dev_alloc(CUdeviceptr *dptr, uint64_t asked, int dev)
{
    if (dptr == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (asked == 0 || asked > UINT64_MAX - FAKE_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = s_pages(asked);
    if (fake_mem_take(S, dev, bytes) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(asked);
    if (p == NULL || s_alloc_put((uintptr_t)p, bytes, dev, 1, NULL) < 0) {
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

/* ------------------------------------------------------------ memory pools */

/* A pool holds reserved pages on its device; allocations are served from
 * them (growing the reservation when too few are free); a free gives the
 * pages back to the pool, which keeps them until a synchronisation
 * releases what is above its release threshold. */
struct CUmemPoolHandle_st {
    int dev;
    uint64_t reserved, used, threshold, reserved_high, used_high;
    struct CUmemPoolHandle_st *next;
};
static pthread_mutex_t s_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct CUmemPoolHandle_st s_default_pool[FAKE_MAX_DEVICES];
static CUmemoryPool s_current_pool[FAKE_MAX_DEVICES];
static CUmemoryPool s_pools;                  /* every pool, linked */

static CUmemoryPool s_pool_of(int dev)
{
    CUmemoryPool p = s_current_pool[dev];
    if (p == NULL) {
        p = &s_default_pool[dev];
        p->dev = dev;
        pthread_mutex_lock(&s_pool_lock);
        if (s_current_pool[dev] == NULL) {
            p->next = s_pools;
            s_pools = p;
            s_current_pool[dev] = p;
        }
        p = s_current_pool[dev];
        pthread_mutex_unlock(&s_pool_lock);
    }
    return p;
}

/* Give back what the pool holds above keep (and above what is in use). */
static void s_pool_trim_locked(CUmemoryPool p, uint64_t keep)
{
    if (keep < p->used)
        keep = p->used;
    keep = keep > UINT64_MAX - FAKE_GRANULARITY ? UINT64_MAX : s_pages(keep);
    if (p->reserved > keep) {
        fake_mem_give(S, p->dev, p->reserved - keep);
        p->reserved = keep;
    }
}

static void s_pools_settle(void)
{
    pthread_mutex_lock(&s_pool_lock);
    for (CUmemoryPool p = s_pools; p != NULL; p = p->next)
        s_pool_trim_locked(p, p->threshold);
    pthread_mutex_unlock(&s_pool_lock);
}

static CUresult s_pool_alloc(CUdeviceptr *dptr, uint64_t asked, CUmemoryPool p)
{
    if (dptr == NULL || asked == 0 || asked > UINT64_MAX - FAKE_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = s_pages(asked);
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_pool_lock);
    uint64_t spare = p->reserved - p->used;
    if (spare < bytes) {
        if (fake_mem_take(S, p->dev, bytes - spare) < 0) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
        p->reserved += bytes - spare;
    }
    void *m = malloc(asked);
    if (m == NULL || s_alloc_put((uintptr_t)m, bytes, p->dev, 5, p) < 0) {
        free(m);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    p->used += bytes;
    if (p->used > p->used_high)
        p->used_high = p->used;
    if (p->reserved > p->reserved_high)
        p->reserved_high = p->reserved;
    *dptr = (CUdeviceptr)(uintptr_t)m;
out:
    pthread_mutex_unlock(&s_pool_lock);
    return rc;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    NEED_INIT();
    fake_alloc_t a;
    if (s_alloc_take((uintptr_t)dptr, 1, &a) == 0) {
        free((void *)(uintptr_t)dptr);
        fake_mem_give(S, a.dev, a.size);
        return CUDA_SUCCESS;
    }
    if (s_alloc_take((uintptr_t)dptr, 5, &a) < 0)
        return s_graph_ptr_free(dptr) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    free((void *)(uintptr_t)dptr);
    pthread_mutex_lock(&s_pool_lock);
    a.pool->used -= a.size;
    pthread_mutex_unlock(&s_pool_lock);
    return CUDA_SUCCESS;
}

struct CUstream_st { CUcontext ctx; CUgraph capture; };

static CUresult s_capture_alloc(CUstream s, CUdeviceptr *dptr, uint64_t bytes, int dev);
static int s_capture_free(CUstream s, CUdeviceptr dptr);

/* The device a stream's work runs on: its context's, or the current one's
 * for the special streams. */
static int s_stream_dev(CUstream s)
{
    if (s != NULL && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD)
        return s->ctx->dev;
    return t_ctx != NULL ? t_ctx->dev : -1;
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    NEED_INIT();
    int dev = s_stream_dev(s);
    if (dev < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (s != NULL && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD && s->capture != NULL)
        return s_capture_alloc(s, dptr, bytes, dev);
    return s_pool_alloc(dptr, bytes, s_pool_of(dev));
}

EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    return cuMemAllocAsync(dptr, bytes, s);
}

EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    s_pool_of(dev);
    *pool = &s_default_pool[dev];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    *pool = s_pool_of(dev);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    NEED_INIT();
    CHECK_DEV(dev);
    if (pool == NULL || pool->dev != dev)
        return CUDA_ERROR_INVALID_VALUE;
    s_pool_of(dev);
    s_current_pool[dev] = pool;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    NEED_INIT();
    if (pool == NULL || props == NULL || props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(props->location.id);
    s_pool_of(props->location.id);
    CUmemoryPool p = calloc(1, sizeof *p);
    if (p == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    p->dev = props->location.id;
    pthread_mutex_lock(&s_pool_lock);
    p->next = s_pools;
    s_pools = p;
    pthread_mutex_unlock(&s_pool_lock);
    *pool = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    NEED_INIT();
    if (pool == NULL || (pool >= &s_default_pool[0] && pool < &s_default_pool[FAKE_MAX_DEVICES]))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&s_pool_lock);
    CUmemoryPool *pp = &s_pools;
    while (*pp != NULL && *pp != pool)
        pp = &(*pp)->next;
    if (*pp == NULL) {
        pthread_mutex_unlock(&s_pool_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pp = pool->next;
    if (s_current_pool[pool->dev] == pool)
        s_current_pool[pool->dev] = &s_default_pool[pool->dev];
    /* outstanding allocations keep their pages until freed (the real
     * driver defers the destruction); the rest goes back now */
    s_pool_trim_locked(pool, 0);
    pthread_mutex_unlock(&s_pool_lock);
    if (pool->used == 0)
        free(pool);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    NEED_INIT();
    if (pool == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&s_pool_lock);
    s_pool_trim_locked(pool, keep);
    pthread_mutex_unlock(&s_pool_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    NEED_INIT();
    if (pool == NULL || value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_pool_lock);
    switch ((int)attr) {
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: pool->threshold = *(cuuint64_t *)value; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: pool->reserved_high = pool->reserved; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: pool->used_high = pool->used; break;
    default: rc = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&s_pool_lock);
    return rc;
}

EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    NEED_INIT();
    if (pool == NULL || value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_pool_lock);
    cuuint64_t *v = value;
    switch ((int)attr) {
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *v = pool->threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *v = pool->reserved; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *v = pool->reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *v = pool->used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *v = pool->used_high; break;
    default: rc = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&s_pool_lock);
    return rc;
}

EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                        CUstream s)
{
    NEED_INIT();
    if (pool == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (s != NULL && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD && s->capture != NULL)
        return s_capture_alloc(s, dptr, bytes, pool->dev);
    return s_pool_alloc(dptr, bytes, pool);
}

EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                             CUstream s)
{
    return cuMemAllocFromPoolAsync(dptr, bytes, pool, s);
}

EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s)
{
    if (s != NULL && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD && s->capture != NULL)
        return s_capture_free(s, dptr) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
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

/* ------------------------------------------------------------ VMM */

/* A handle names a phys entry (fakestate.h); this process's references to
 * each (handles and mappings) are counted here too, so that it can only
 * release what it holds.  Mappings are ranges of a reserved address space
 * that is never backed (the tests do not touch VMM memory). */
#define FAKE_HANDLE(i) ((CUmemGenericAllocationHandle)(((uint64_t)(i) + 1) << 8 | 0x4b))
static int s_handle_idx(CUmemGenericAllocationHandle h)
{
    if ((h & 0xff) != 0x4b)
        return -1;
    uint64_t i = (h >> 8) - 1;
    return i < FAKE_MAX_PHYS ? (int)i : -1;
}

static pthread_mutex_t s_vmm_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_handle_refs[FAKE_MAX_PHYS];
typedef struct { CUdeviceptr ptr; uint64_t size; int idx; } fake_map_t;
static fake_map_t *s_maps;
static size_t s_nmaps, s_maps_cap;
static _Atomic uint64_t s_va_next = 0x7e0000000000ULL;

EXPORT CUresult cuMemGetAllocationGranularity(size_t *gran, const CUmemAllocationProp *prop,
                                              CUmemAllocationGranularity_flags option)
{
    (void)option;
    NEED_INIT();
    if (gran == NULL || prop == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(prop->location.id);
    *gran = FAKE_GRANULARITY;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t bytes,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
    NEED_INIT();
    if (h == NULL || prop == NULL || flags != 0 || bytes == 0 || bytes % FAKE_GRANULARITY != 0 ||
        prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(prop->location.id);
    int i = fake_phys_new(S, prop->location.id, bytes);
    if (i < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&s_vmm_lock);
    s_handle_refs[i]++;
    pthread_mutex_unlock(&s_vmm_lock);
    *h = FAKE_HANDLE(i);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    NEED_INIT();
    int i = s_handle_idx(h);
    if (i < 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&s_vmm_lock);
    int held = s_handle_refs[i] > 0;
    if (held)
        s_handle_refs[i]--;
    pthread_mutex_unlock(&s_vmm_lock);
    if (!held)
        return CUDA_ERROR_INVALID_VALUE;
    fake_phys_unref(S, i);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
                                    unsigned long long flags)
{
    (void)align, (void)addr, (void)flags;
    NEED_INIT();
    if (ptr == NULL || size == 0 || size % FAKE_GRANULARITY != 0)
        return CUDA_ERROR_INVALID_VALUE;
    *ptr = atomic_fetch_add(&s_va_next, size + FAKE_GRANULARITY);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    NEED_INIT();
    return ptr != 0 && size != 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h,
                         unsigned long long flags)
{
    NEED_INIT();
    int i = s_handle_idx(h);
    if (i < 0 || flags != 0 || size == 0 || ptr == 0 || offset + size < offset ||
        offset + size > S->phys[i].size)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_vmm_lock);
    if (s_handle_refs[i] == 0 || fake_phys_ref(S, i) < 0) {
        rc = CUDA_ERROR_INVALID_HANDLE;
        goto out;
    }
    if (s_nmaps == s_maps_cap) {
        size_t ncap = s_maps_cap ? s_maps_cap * 2 : 64;
        fake_map_t *n = realloc(s_maps, ncap * sizeof *n);
        if (n == NULL) {
            fake_phys_unref(S, i);
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
        s_maps = n;
        s_maps_cap = ncap;
    }
    s_maps[s_nmaps++] = (fake_map_t){ ptr, size, i };
out:
    pthread_mutex_unlock(&s_vmm_lock);
    return rc;
}

/* Unmap every mapping that starts in [ptr, ptr + size). */
EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    NEED_INIT();
    int idx[64], n = 0;
    pthread_mutex_lock(&s_vmm_lock);
    for (size_t k = 0; k < s_nmaps && n < 64;) {
        if (s_maps[k].ptr >= ptr && s_maps[k].ptr - ptr < size) {
            idx[n++] = s_maps[k].idx;
            s_maps[k] = s_maps[--s_nmaps];
        } else {
            k++;
        }
    }
    pthread_mutex_unlock(&s_vmm_lock);
    for (int k = 0; k < n; k++)
        fake_phys_unref(S, idx[k]);
    return n > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                               size_t count)
{
    NEED_INIT();
    return ptr != 0 && size != 0 && desc != NULL && count > 0 ? CUDA_SUCCESS
                                                              : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *h, void *addr)
{
    NEED_INIT();
    CUdeviceptr a = (CUdeviceptr)(uintptr_t)addr;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&s_vmm_lock);
    for (size_t k = 0; k < s_nmaps; k++) {
        if (a >= s_maps[k].ptr && a - s_maps[k].ptr < s_maps[k].size) {
            if (fake_phys_ref(S, s_maps[k].idx) == 0) {
                s_handle_refs[s_maps[k].idx]++;
                *h = FAKE_HANDLE(s_maps[k].idx);
                rc = CUDA_SUCCESS;
            }
            break;
        }
    }
    pthread_mutex_unlock(&s_vmm_lock);
    return rc;
}

/* The shareable handle is a file descriptor of a file that holds the
 * entry's index: it passes to another process as a real one would. */
EXPORT CUresult cuMemExportToShareableHandle(void *shareable, CUmemGenericAllocationHandle h,
                                             CUmemAllocationHandleType type,
                                             unsigned long long flags)
{
    NEED_INIT();
    int i = s_handle_idx(h);
    if (shareable == NULL || i < 0 || flags != 0 || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_INVALID_VALUE;
    int fd = memfd_create("fakecuda-handle", 0);
    if (fd < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    int32_t v = i;
    if (pwrite(fd, &v, sizeof v, 0) != (ssize_t)sizeof v) {
        close(fd);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *(int *)shareable = fd;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *h, void *os_handle,
                                               CUmemAllocationHandleType type)
{
    NEED_INIT();
    int32_t v = -1;
    int fd = (int)(intptr_t)os_handle;
    if (h == NULL || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR ||
        pread(fd, &v, sizeof v, 0) != (ssize_t)sizeof v || v < 0 || v >= FAKE_MAX_PHYS)
        return CUDA_ERROR_INVALID_VALUE;
    if (fake_phys_ref(S, v) < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&s_vmm_lock);
    s_handle_refs[v]++;
    pthread_mutex_unlock(&s_vmm_lock);
    *h = FAKE_HANDLE(v);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    (void)flags;
    NEED_INIT();
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (s_alloc_put((uintptr_t)p, bytes, 0, 2, NULL) < 0) {
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
    /* deferred mapping: the memory is mapped in later, from VMM handles */
    bytes = (d->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING) ? 0 : s_pages(bytes);
    if (bytes > 0 && fake_mem_take(S, dev, bytes) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(1);
    if (p == NULL || s_alloc_put((uintptr_t)p, bytes, dev, 4, NULL) < 0) {
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

struct CUevent_st { int64_t t; int recorded; };

EXPORT CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
    (void)flags;
    NEED_CTX();
    *s = calloc(1, sizeof **s);
    if (*s == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    (*s)->ctx = t_ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamGetCtx(CUstream s, CUcontext *pctx)
{
    NEED_INIT();
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) {
        if (t_ctx == NULL)
            return CUDA_ERROR_INVALID_CONTEXT;
        *pctx = t_ctx;
    } else {
        *pctx = s->ctx;
    }
    return CUDA_SUCCESS;
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
    s_pools_settle();
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

/* Graph memory: an allocation node's memory comes from the device's graph
 * memory pool when the graph is launched (not when it is built or
 * captured), and goes back to that pool at its free node (or at the free
 * of its pointer, for an allocation that outlives the launch); the pool
 * keeps what it reserved until cuDeviceGraphMemTrim. */
typedef struct { CUdeviceptr ptr; int dev; uint64_t size; int freed; } fake_gnode_t;
struct CUgraph_st { int64_t total_ns; int nodes; fake_gnode_t *mem; size_t nmem; };
struct CUgraphExec_st { int64_t total_ns; int nodes; fake_gnode_t *mem; size_t nmem; };
struct CUgraphNode_st { int unused; };
static struct CUgraphNode_st s_node;
static pthread_mutex_t s_gmem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { uint64_t reserved, used, reserved_high, used_high; } s_gmem[FAKE_MAX_DEVICES];
typedef struct { CUdeviceptr ptr; int dev; uint64_t size; } fake_gptr_t;
static fake_gptr_t s_gptrs[1024];       /* graph allocations alive after their launch */
static size_t s_ngptrs;

EXPORT CUresult cuGraphCreate(CUgraph *g, unsigned int flags)
{
    (void)flags;
    NEED_INIT();
    *g = calloc(1, sizeof **g);
    return *g ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuGraphDestroy(CUgraph g)
{
    NEED_INIT();
    if (g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    free(g->mem);
    free(g);
    return CUDA_SUCCESS;
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

static CUresult s_graph_add_alloc(CUgraph g, int dev, uint64_t bytes, CUdeviceptr *dptr)
{
    if (bytes == 0 || bytes > UINT64_MAX - FAKE_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    fake_gnode_t *n = realloc(g->mem, (g->nmem + 1) * sizeof *n);
    if (n == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    g->mem = n;
    uint64_t size = s_pages(bytes);
    CUdeviceptr va = atomic_fetch_add(&s_va_next, size + FAKE_GRANULARITY);
    g->mem[g->nmem++] = (fake_gnode_t){ va, dev, size, 0 };
    g->nodes++;
    *dptr = va;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps,
                                       size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    (void)deps, (void)ndeps;
    NEED_INIT();
    if (g == NULL || params == NULL || params->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    CHECK_DEV(params->poolProps.location.id);
    CUresult rc = s_graph_add_alloc(g, params->poolProps.location.id, params->bytesize, &params->dptr);
    if (rc == CUDA_SUCCESS)
        *node = &s_node;
    return rc;
}

static int s_graph_mark_free(CUgraph g, CUdeviceptr dptr)
{
    for (size_t i = 0; i < g->nmem; i++)
        if (g->mem[i].ptr == dptr && !g->mem[i].freed) {
            g->mem[i].freed = 1;
            g->nodes++;
            return 0;
        }
    return -1;
}

EXPORT CUresult cuGraphAddMemFreeNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps,
                                      size_t ndeps, CUdeviceptr dptr)
{
    (void)deps, (void)ndeps;
    NEED_INIT();
    if (g == NULL || s_graph_mark_free(g, dptr) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    *node = &s_node;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode)
{
    (void)mode;
    NEED_INIT();
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || s->capture != NULL)
        return CUDA_ERROR_INVALID_VALUE;
    s->capture = calloc(1, sizeof *s->capture);
    return s->capture ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph *g)
{
    NEED_INIT();
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || s->capture == NULL || g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *g = s->capture;
    s->capture = NULL;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status)
{
    NEED_INIT();
    if (status == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *status = s != NULL && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD && s->capture != NULL
                  ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

/* A stream-ordered allocation or free on a capturing stream becomes a
 * node of the captured graph: nothing is allocated now. */
static CUresult s_capture_alloc(CUstream s, CUdeviceptr *dptr, uint64_t bytes, int dev)
{
    if (dptr == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return s_graph_add_alloc(s->capture, dev, bytes, dptr);
}

static int s_capture_free(CUstream s, CUdeviceptr dptr) { return s_graph_mark_free(s->capture, dptr); }

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
    if (g->nmem > 0) {
        (*exec)->mem = malloc(g->nmem * sizeof *g->mem);
        if ((*exec)->mem == NULL) {
            free(*exec);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy((*exec)->mem, g->mem, g->nmem * sizeof *g->mem);
        (*exec)->nmem = g->nmem;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec)
{
    NEED_INIT();
    if (exec == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    free(exec->mem);
    free(exec);
    return CUDA_SUCCESS;
}

/* Run a graph's memory nodes: take what its allocations need from the
 * devices' graph pools (growing them), give back what it frees. */
static CUresult s_graph_mem_run(CUgraphExec exec)
{
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_gmem_lock);
    size_t i;
    for (i = 0; i < exec->nmem; i++) {
        fake_gnode_t *m = &exec->mem[i];
        if (!m->freed && s_ngptrs == sizeof s_gptrs / sizeof s_gptrs[0]) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        uint64_t used = s_gmem[m->dev].used + m->size;
        if (used > s_gmem[m->dev].reserved) {
            if (fake_mem_take(S, m->dev, used - s_gmem[m->dev].reserved) < 0) {
                rc = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            s_gmem[m->dev].reserved = used;
        }
        s_gmem[m->dev].used = used;
        if (!m->freed)
            s_gptrs[s_ngptrs++] = (fake_gptr_t){ m->ptr, m->dev, m->size };
    }
    if (rc != CUDA_SUCCESS) {
        /* nothing of the graph runs: undo the allocations made */
        while (i-- > 0) {
            fake_gnode_t *m = &exec->mem[i];
            s_gmem[m->dev].used -= m->size;
            if (!m->freed)
                s_ngptrs--;
        }
    } else {
        for (i = 0; i < exec->nmem; i++) {
            fake_gnode_t *m = &exec->mem[i];
            if (s_gmem[m->dev].used > s_gmem[m->dev].used_high)
                s_gmem[m->dev].used_high = s_gmem[m->dev].used;
            if (s_gmem[m->dev].reserved > s_gmem[m->dev].reserved_high)
                s_gmem[m->dev].reserved_high = s_gmem[m->dev].reserved;
        }
        for (i = 0; i < exec->nmem; i++)
            if (exec->mem[i].freed)
                s_gmem[exec->mem[i].dev].used -= exec->mem[i].size;
    }
    pthread_mutex_unlock(&s_gmem_lock);
    return rc;
}

static int s_graph_ptr_free(CUdeviceptr dptr)
{
    int rc = -1;
    pthread_mutex_lock(&s_gmem_lock);
    for (size_t i = 0; i < s_ngptrs; i++)
        if (s_gptrs[i].ptr == dptr) {
            s_gmem[s_gptrs[i].dev].used -= s_gptrs[i].size;
            s_gptrs[i] = s_gptrs[--s_ngptrs];
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&s_gmem_lock);
    return rc;
}

EXPORT CUresult cuDeviceGraphMemTrim(CUdevice dev)
{
    NEED_INIT();
    CHECK_DEV(dev);
    pthread_mutex_lock(&s_gmem_lock);
    if (s_gmem[dev].reserved > s_gmem[dev].used) {
        fake_mem_give(S, dev, s_gmem[dev].reserved - s_gmem[dev].used);
        s_gmem[dev].reserved = s_gmem[dev].used;
    }
    pthread_mutex_unlock(&s_gmem_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void *value)
{
    NEED_INIT();
    CHECK_DEV(dev);
    if (value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    cuuint64_t *v = value;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&s_gmem_lock);
    switch ((int)attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT: *v = s_gmem[dev].used; break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: *v = s_gmem[dev].used_high; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: *v = s_gmem[dev].reserved; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: *v = s_gmem[dev].reserved_high; break;
    default: rc = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&s_gmem_lock);
    return rc;
}

EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream s)
{
    (void)s;
    if (exec == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (exec->nmem > 0) {
        NEED_INIT();
        CUresult rc = s_graph_mem_run(exec);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
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
    { "cuDevicePrimaryCtxReset", 11000, "cuDevicePrimaryCtxReset_v2" },
    { "cuCtxPushCurrent", 4000, "cuCtxPushCurrent_v2" },
    { "cuStreamBeginCapture", 10010, "cuStreamBeginCapture_v2" },
    { "cuCtxPopCurrent", 4000, "cuCtxPopCurrent_v2" },
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

/* What device dev holds now and the most it has ever held, by every
 * process of the shared state: the tests' witness. */
EXPORT uint64_t fakecuda_mem_used(int dev);
EXPORT uint64_t fakecuda_mem_used(int dev)
{
    fake_state_t *st = fake_state_get();
    if (st == NULL || dev < 0 || dev >= st->ndevices)
        return 0;
    fake_reclaim(st);
    return fake_mem_now(st, dev);
}

EXPORT uint64_t fakecuda_mem_peak(int dev);
EXPORT uint64_t fakecuda_mem_peak(int dev)
{
    fake_state_t *st = fake_state_get();
    if (st == NULL || dev < 0 || dev >= st->ndevices)
        return 0;
    return fake_mem_peak(st, dev);
}

EXPORT uint64_t fakecuda_busy_ns(int dev);
EXPORT uint64_t fakecuda_busy_ns(int dev)
{
    if (S == NULL || dev < 0 || dev >= S->ndevices)
        return 0;
    return fake_busy_ns(S, dev, fake_now_ns());
}
