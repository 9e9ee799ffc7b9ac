/*
 * pools.c - memory pools and stream-ordered allocations
 * (cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemFreeAsync).
 *
 * A pool keeps the memory its allocations are freed to: with
 * CU_MEMPOOL_ATTR_RELEASE_THRESHOLD raised (as PyTorch's and TensorFlow's
 * async allocators do) it stays reserved on the device after
 * synchronisation.  So the slice counts each pool's reserved memory
 * (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, whole pages), not its live
 * allocations:
 *
 *   1. an allocation reserves its size in whole pages in the slice first
 *      (none when the pool already holds that much unused and the slice is
 *      full) -- over the limit it is refused, nothing counted;
 *   2. the driver allocates;
 *   3. the pool is "settled": its reserved memory is read from the driver
 *      and the slice's count for the pool set to it, the reservation of
 *      step 1 included (given back, or topped up).  A pool that grew by
 *      more than the slice can hold gives the allocation back, is trimmed
 *      and the allocation refused.
 *
 * On a capturing stream an allocation is a node of the captured graph:
 * counted when the graph runs (graph.c), not now.
 *
 * A free settles its pool after the driver call (a pool gives memory back
 * at synchronisation, so its count may stay high until its next
 * allocation, free, cuMemGetInfo, or the slice's next refusal).  Before
 * any allocation of the process is refused for the limit, the process's
 * pools on that device are trimmed (cuMemPoolTrimTo 0) and settled
 * (gp_pools_trim, from gp_shim_reserve).
 *
 * Devices: a pool's device is where it was made (cuMemPoolCreate's
 * location, cuDeviceGetDefaultMemPool/GetMemPool's device);
 * cuMemAllocAsync allocates from the current pool of the stream's device
 * (the device of the stream's context).  A pool the shim never saw made
 * (imported from another process) is taken to be on the current context's
 * device.
 *
 * The pools live in a fixed table under one mutex; each has its own mutex,
 * held while it is settled (a driver attribute query and a reservation in
 * the region; never a load of a library).
 */
#include "shim.h"

#include <pthread.h>
#include <string.h>

#include "alloc_table.h"

#include "banned.h"

#define GP_MAX_POOLS 256

typedef struct gp_pool {
    CUmemoryPool pool;          /* NULL: a free entry */
    int dev;
    int destroyed;              /* its outstanding allocations keep the entry */
    uint64_t counted;           /* what the slice counts for it */
    uint64_t live;              /* its allocations known to alloc_table */
    pthread_mutex_t lock;
} gp_pool_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gp_pool_t s_pools[GP_MAX_POOLS];
static _Atomic int s_npools;                    /* entries in use are below this */
static CUmemoryPool s_current[GP_SLICE_MAX_DEVICES];

static gp_pool_t *s_find(CUmemoryPool pool, int dev, int add)
{
    pthread_mutex_lock(&s_lock);
    gp_pool_t *p = NULL, *free_e = NULL;
    int n = atomic_load(&s_npools);
    for (int i = 0; i < n; i++) {
        if (s_pools[i].pool == pool && !s_pools[i].destroyed) {
            p = &s_pools[i];
            break;
        }
        if (free_e == NULL && (s_pools[i].pool == NULL ||
                               (s_pools[i].destroyed && s_pools[i].live == 0)))
            free_e = &s_pools[i];
    }
    if (p == NULL && add && dev >= 0) {
        if (free_e == NULL && n < GP_MAX_POOLS) {
            free_e = &s_pools[n];
            pthread_mutex_init(&free_e->lock, NULL);
            atomic_store(&s_npools, n + 1);
        }
        if (free_e != NULL) {
            free_e->pool = pool;
            free_e->dev = dev;
            free_e->destroyed = 0;
            free_e->counted = 0;
            free_e->live = 0;
            p = free_e;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return p;
}

/* Set the slice's count for the pool to what the driver reserves, held
 * being what the caller reserved for it already.  0, or -1 when the slice
 * could not count all of it (the rest is counted at the next settle). */
static int s_settle(gp_pool_t *p, uint64_t held)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    cuuint64_t now = 0;
    if (p->destroyed || gp_real.cuMemPoolGetAttribute == NULL ||
        gp_real.cuMemPoolGetAttribute(p->pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &now) !=
            CUDA_SUCCESS) {
        /* the driver cannot say: keep what was reserved */
        p->counted += held;
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    now = gp_shim_pages(p->dev, now);
    uint64_t have = p->counted + held;
    if (now <= have) {
        p->counted = now;
        pthread_mutex_unlock(&p->lock);
        if (have > now)
            gp_shim_release(p->dev, have - now, 0);
        return 0;
    }
    if (gp_shim_reserve_now(p->dev, now - have, 0) == 0) {
        p->counted = now;
    } else {
        p->counted = have;
        rc = -1;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* What the pool holds unused now, by the driver. */
static uint64_t s_spare(gp_pool_t *p)
{
    cuuint64_t r = 0, u = 0;
    if (gp_real.cuMemPoolGetAttribute == NULL ||
        gp_real.cuMemPoolGetAttribute(p->pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &r) != CUDA_SUCCESS ||
        gp_real.cuMemPoolGetAttribute(p->pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &u) != CUDA_SUCCESS)
        return 0;
    return r > u ? r - u : 0;
}

uint64_t gp_pools_trim(int dev)
{
    uint64_t got = 0;
    int n = atomic_load(&s_npools);
    for (int i = 0; i < n; i++) {
        gp_pool_t *p = &s_pools[i];
        if (p->pool == NULL || p->destroyed || p->dev != dev || gp_real.cuMemPoolTrimTo == NULL)
            continue;
        uint64_t before = p->counted;
        if (gp_real.cuMemPoolTrimTo(p->pool, 0) != CUDA_SUCCESS)
            continue;
        s_settle(p, 0);
        if (p->counted < before)
            got += before - p->counted;
    }
    return got;
}

void gp_pools_settle_dev(int dev)
{
    int n = atomic_load(&s_npools);
    for (int i = 0; i < n; i++)
        if (s_pools[i].pool != NULL && !s_pools[i].destroyed && s_pools[i].dev == dev)
            s_settle(&s_pools[i], 0);
}

/* ------------------------------------------------------------ devices, pools */

/* The slice device of a stream: its context's; the current context's for
 * the default streams.  -1 outside the slice. */
static int s_stream_dev(CUstream s)
{
    if (gp_shim.ndev == 1 || s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD ||
        gp_real.cuStreamGetCtx == NULL)
        return gp_shim_current_dev();
    CUcontext ctx;
    if (gp_real.cuStreamGetCtx(s, &ctx) != CUDA_SUCCESS)
        return gp_shim_current_dev();
    int dev = gp_shim_ctx_dev(ctx);
    if (dev == -2) {
        /* a context made before the shim saw it: ask the driver */
        CUdevice d;
        CUcontext popped;
        dev = -1;
        if (gp_real.cuCtxPushCurrent_v2 != NULL && gp_real.cuCtxPushCurrent_v2(ctx) == CUDA_SUCCESS) {
            if (gp_real.cuCtxGetDevice(&d) == CUDA_SUCCESS && d >= 0 && d < gp_shim.ndev)
                dev = d;
            gp_real.cuCtxPopCurrent_v2(&popped);
        }
    }
    return dev;
}

/* The current pool of slice device dev. */
static gp_pool_t *s_current_pool(int dev)
{
    CUmemoryPool pool = __atomic_load_n(&s_current[dev], __ATOMIC_ACQUIRE);
    if (pool == NULL) {
        if (gp_real.cuDeviceGetMemPool == NULL || gp_real.cuDeviceGetMemPool(&pool, dev) != CUDA_SUCCESS)
            return NULL;
        __atomic_store_n(&s_current[dev], pool, __ATOMIC_RELEASE);
    }
    return s_find(pool, dev, 1);
}

GP_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
    GP_ENTER();
    if (gp_real.cuDeviceGetDefaultMemPool == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuDeviceGetDefaultMemPool(pool, dev);
    if (rc == CUDA_SUCCESS && gp_shim.active && dev >= 0 && dev < gp_shim.ndev)
        s_find(*pool, dev, 1);
    return rc;
}

GP_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    GP_ENTER();
    if (gp_real.cuDeviceGetMemPool == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuDeviceGetMemPool(pool, dev);
    if (rc == CUDA_SUCCESS && gp_shim.active && dev >= 0 && dev < gp_shim.ndev)
        s_find(*pool, dev, 1);
    return rc;
}

GP_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    GP_ENTER();
    if (gp_real.cuDeviceSetMemPool == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuDeviceSetMemPool(dev, pool);
    if (rc == CUDA_SUCCESS && gp_shim.active && dev >= 0 && dev < gp_shim.ndev) {
        s_find(pool, dev, 1);
        __atomic_store_n(&s_current[dev], pool, __ATOMIC_RELEASE);
    }
    return rc;
}

GP_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    GP_ENTER();
    if (gp_real.cuMemPoolCreate == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemPoolCreate(pool, props);
    if (rc != CUDA_SUCCESS || !gp_shim.active || props == NULL ||
        props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return rc;
    int dev = props->location.id;
    if (dev < 0 || dev >= gp_shim.ndev || s_find(*pool, dev, 1) == NULL) {
        /* a pool outside the slice, or one it cannot follow: refused */
        gp_real.cuMemPoolDestroy(*pool);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

GP_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    GP_ENTER();
    if (gp_real.cuMemPoolDestroy == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    gp_pool_t *p = gp_shim.active ? s_find(pool, -1, 0) : NULL;
    CUresult rc = gp_real.cuMemPoolDestroy(pool);
    if (rc != CUDA_SUCCESS || p == NULL)
        return rc;
    /* what it reserved goes back to the device (outstanding allocations
     * keep theirs until freed, uncounted from here) */
    pthread_mutex_lock(&p->lock);
    uint64_t had = p->counted;
    p->counted = 0;
    p->destroyed = 1;
    pthread_mutex_unlock(&p->lock);
    for (int d = 0; d < gp_shim.ndev; d++)
        if (__atomic_load_n(&s_current[d], __ATOMIC_ACQUIRE) == pool)
            __atomic_store_n(&s_current[d], NULL, __ATOMIC_RELEASE);
    if (had > 0)
        gp_shim_release(p->dev, had, 0);
    return rc;
}

GP_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    GP_ENTER();
    if (gp_real.cuMemPoolTrimTo == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemPoolTrimTo(pool, keep);
    gp_pool_t *p;
    if (rc == CUDA_SUCCESS && gp_shim.active && (p = s_find(pool, -1, 0)) != NULL)
        s_settle(p, 0);
    return rc;
}

/* ------------------------------------------------------------ allocations */

static CUresult s_alloc(gp_pool_t *p, CUdeviceptr *dptr, size_t bytes, CUstream s,
                        CUresult (*call)(CUdeviceptr *, size_t, CUmemoryPool, CUstream,
                                         CUresult (*)(void)),
                        CUresult (*fn)(void))
{
    if (p == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t want = gp_shim_pages(p->dev, bytes), held = want;
    if (gp_shim_reserve_now(p->dev, want, 0) < 0) {
        /* the pool may serve it from what it holds */
        if (s_spare(p) >= want)
            held = 0;
        else if (gp_shim_reserve(p->dev, want, 0) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = call(dptr, bytes, p->pool, s, fn);
    if (rc != CUDA_SUCCESS) {
        if (held > 0)
            gp_shim_release(p->dev, held, 0);
        return rc;
    }
    gp_shim_alloc_t a = { .key = (uintptr_t)*dptr, .host = p, .dev = (int16_t)p->dev,
                          .kind = GP_ALLOC_POOL };
    pthread_mutex_lock(&p->lock);
    p->live++;
    pthread_mutex_unlock(&p->lock);
    int recorded = gp_shim_alloc_put(&a) == 0;
    if (s_settle(p, held) == 0 && recorded)
        return CUDA_SUCCESS;
    /* the pool grew past what the slice holds: give it back, refuse */
    if (recorded)
        gp_shim_alloc_take(a.key, GP_ALLOC_POOL, &a);
    gp_real.cuMemFreeAsync(*dptr, s);
    pthread_mutex_lock(&p->lock);
    p->live--;
    pthread_mutex_unlock(&p->lock);
    if (gp_real.cuMemPoolTrimTo != NULL)
        gp_real.cuMemPoolTrimTo(p->pool, 0);
    s_settle(p, 0);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* The driver calls, one shape for all four entry points. */
typedef CUresult (*gp_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*gp_pool_fn)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);

static CUresult s_call_async(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream s,
                             CUresult (*fn)(void))
{
    (void)pool;
    return ((gp_async_fn)(void *)fn)(dptr, bytes, s);
}

static CUresult s_call_pool(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream s,
                            CUresult (*fn)(void))
{
    return ((gp_pool_fn)(void *)fn)(dptr, bytes, pool, s);
}

#define GP_ASYNC(fn, args) do { \
        GP_ENTER(); \
        if (gp_real.fn == NULL) return CUDA_ERROR_NOT_INITIALIZED; \
        if (!gp_shim.active || bytes == 0 || dptr == NULL) return gp_real.fn args; \
        int dev = s_stream_dev(s); \
        if (dev < 0) return CUDA_ERROR_OUT_OF_MEMORY; \
        int cap_ = gp_graph_captured(s, dev, bytes); \
        if (cap_ != 0) return cap_ > 0 ? gp_real.fn args : CUDA_ERROR_OUT_OF_MEMORY; \
        return s_alloc(s_current_pool(dev), dptr, bytes, s, s_call_async, \
                       (CUresult (*)(void))(void *)gp_real.fn); \
    } while (0)

#define GP_FROM_POOL(fn, args) do { \
        GP_ENTER(); \
        if (gp_real.fn == NULL) return CUDA_ERROR_NOT_INITIALIZED; \
        if (!gp_shim.active || bytes == 0 || dptr == NULL || pool == NULL) return gp_real.fn args; \
        gp_pool_t *p = s_find(pool, -1, 0); \
        if (p == NULL) p = s_find(pool, gp_shim_current_dev(), 1); \
        if (p == NULL) return CUDA_ERROR_OUT_OF_MEMORY; \
        int cap_ = gp_graph_captured(s, p->dev, bytes); \
        if (cap_ != 0) return cap_ > 0 ? gp_real.fn args : CUDA_ERROR_OUT_OF_MEMORY; \
        return s_alloc(p, dptr, bytes, s, s_call_pool, (CUresult (*)(void))(void *)gp_real.fn); \
    } while (0)

GP_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    GP_ASYNC(cuMemAllocAsync, (dptr, bytes, s));
}

GP_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUstream s)
{
    GP_ASYNC(cuMemAllocAsync_ptsz, (dptr, bytes, s));
}

GP_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                           CUstream s)
{
    GP_FROM_POOL(cuMemAllocFromPoolAsync, (dptr, bytes, pool, s));
}

GP_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytes,
                                                CUmemoryPool pool, CUstream s)
{
    GP_FROM_POOL(cuMemAllocFromPoolAsync_ptsz, (dptr, bytes, pool, s));
}

int gp_pools_free(uintptr_t key, CUresult (*fn)(CUdeviceptr, CUstream), CUstream s,
                  CUresult *rc)
{
    gp_shim_alloc_t a;
    if (gp_shim_alloc_take(key, GP_ALLOC_POOL, &a) < 0)
        return 0;
    *rc = fn((CUdeviceptr)key, s);
    gp_pool_t *p = a.host;
    if (*rc != CUDA_SUCCESS) {
        gp_shim_alloc_put(&a);
        return 1;
    }
    pthread_mutex_lock(&p->lock);
    p->live--;
    pthread_mutex_unlock(&p->lock);
    s_settle(p, 0);
    return 1;
}

void gp_pools_fork_child(void)
{
    pthread_mutex_init(&s_lock, NULL);
    int n = atomic_load(&s_npools);
    for (int i = 0; i < n; i++) {
        s_pools[i].pool = NULL;
        pthread_mutex_init(&s_pools[i].lock, NULL);
    }
    atomic_store(&s_npools, 0);
    memset(s_current, 0, sizeof s_current);
}
