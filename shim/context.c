/*
 * context.c - contexts and what they occupy: the per-process context
 * overhead (GP_SLICE_CTX_OVERHEAD_MIB) and the limits set with
 * cuCtxSetLimit.
 *
 * The overhead of a device is counted once per process, before the first
 * context on it is created (a created context or the retained primary one),
 * and given back when the process's last context there is gone:
 * cuCtxDestroy, the primary context's last cuDevicePrimaryCtxRelease, or
 * cuDevicePrimaryCtxReset.  A refusal to count it refuses the context
 * (CUDA_ERROR_OUT_OF_MEMORY).
 *
 * cuCtxSetLimit: the malloc heap and the printf FIFO occupy their size,
 * the stack its size per thread times the threads the device can hold
 * (multiprocessors x threads per multiprocessor, from the driver).  What a
 * context's limits occupy above the values they had when the context was
 * made (its defaults, part of the context overhead) is counted from the
 * call until it is set back or the context goes.
 *
 * Every context this process made is known here with its slice device,
 * which is how a stream's device is found (gp_shim_ctx_dev).  The table is
 * under one mutex, never held across a driver call or a reservation.
 */
#include "shim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

typedef struct {
    CUcontext ctx;
    int dev;                  /* slice device, -1 outside the slice */
    int primary;
    uint64_t limit_bytes;     /* counted for limits above their defaults */
} gp_ctx_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gp_ctx_t *s_ctx;
static size_t s_n, s_cap;
static int s_live[GP_SLICE_MAX_DEVICES];          /* contexts per device */
static int s_primary_refs[GP_SLICE_MAX_DEVICES];

static gp_ctx_t *s_find_locked(CUcontext ctx)
{
    for (size_t i = 0; i < s_n; i++)
        if (s_ctx[i].ctx == ctx)
            return &s_ctx[i];
    return NULL;
}

/* 0, or -1 when the table cannot grow (the context is then not known by
 * address; its overhead is still counted per device). */
static int s_add_locked(CUcontext ctx, int dev, int primary)
{
    if (s_find_locked(ctx) != NULL)
        return 0;
    if (s_n == s_cap) {
        size_t ncap = s_cap ? s_cap * 2 : 16;
        gp_ctx_t *n = realloc(s_ctx, ncap * sizeof *n);
        if (n == NULL)
            return -1;
        s_ctx = n;
        s_cap = ncap;
    }
    s_ctx[s_n++] = (gp_ctx_t){ .ctx = ctx, .dev = dev, .primary = primary };
    return 0;
}

int gp_shim_ctx_dev(CUcontext ctx)
{
    pthread_mutex_lock(&s_lock);
    gp_ctx_t *c = s_find_locked(ctx);
    int dev = c != NULL ? c->dev : -2;
    pthread_mutex_unlock(&s_lock);
    return dev;
}

static void s_release_overhead(int dev)
{
    int expect = 1;
    if (atomic_compare_exchange_strong(&gp_shim.ctx_counted[dev], &expect, 0) &&
        gp_shim.cfg.ctx_overhead > 0)
        gp_shim_release(dev, gp_shim.cfg.ctx_overhead, 0);
}

/* Before the driver makes a context on dev: count the overhead if this
 * process has none counted there. */
static CUresult s_open_begin(CUdevice dev)
{
    if (!gp_shim.active || dev < 0 || dev >= gp_shim.ndev)
        return CUDA_SUCCESS;
    return gp_shim_count_context(dev) < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

static void s_open_end(CUdevice dev, CUresult rc, CUcontext ctx, int primary)
{
    if (!gp_shim.active || dev < 0 || dev >= gp_shim.ndev)
        return;
    pthread_mutex_lock(&s_lock);
    if (rc == CUDA_SUCCESS) {
        if (!primary || s_primary_refs[dev]++ == 0) {
            s_live[dev]++;
            s_add_locked(ctx, dev, primary);
        }
    }
    int none = s_live[dev] == 0;
    pthread_mutex_unlock(&s_lock);
    if (rc == CUDA_SUCCESS)
        gp_shim_learn_device(dev);
    else if (none)
        s_release_overhead(dev);
}

/* After the driver let a context go: give back its limits, and the
 * overhead with the device's last context. */
static void s_close(int dev, CUcontext ctx)
{
    uint64_t limits = 0;
    pthread_mutex_lock(&s_lock);
    gp_ctx_t *c = ctx != NULL ? s_find_locked(ctx) : NULL;
    if (c != NULL) {
        limits = c->limit_bytes;
        *c = s_ctx[--s_n];
    }
    int last = s_live[dev] > 0 && --s_live[dev] == 0;
    pthread_mutex_unlock(&s_lock);
    if (limits > 0)
        gp_shim_release(dev, limits, 0);
    if (last)
        s_release_overhead(dev);
}

#define GP_CTX_WRAP(fn, args, dev, ctxp, primary) do { \
        GP_ENTER(); \
        if (gp_real.fn == NULL) return CUDA_ERROR_NOT_FOUND; \
        CUresult rc_ = s_open_begin(dev); \
        if (rc_ != CUDA_SUCCESS) return rc_; \
        rc_ = gp_real.fn args; \
        s_open_end((dev), rc_, rc_ == CUDA_SUCCESS && (ctxp) != NULL ? *(ctxp) : NULL, (primary)); \
        return rc_; \
    } while (0)

GP_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    GP_CTX_WRAP(cuCtxCreate_v2, (pctx, flags, dev), dev, pctx, 0);
}

GP_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, void *params, int n, unsigned int flags,
                                  CUdevice dev)
{
    GP_CTX_WRAP(cuCtxCreate_v3, (pctx, params, n, flags, dev), dev, pctx, 0);
}

GP_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, void *params, unsigned int flags, CUdevice dev)
{
    GP_CTX_WRAP(cuCtxCreate_v4, (pctx, params, flags, dev), dev, pctx, 0);
}

GP_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    GP_CTX_WRAP(cuDevicePrimaryCtxRetain, (pctx, dev), dev, pctx, 1);
}

GP_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    GP_ENTER();
    if (gp_real.cuCtxDestroy_v2 == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (!gp_shim.active)
        return gp_real.cuCtxDestroy_v2(ctx);
    int dev = gp_shim_ctx_dev(ctx);
    CUresult rc = gp_real.cuCtxDestroy_v2(ctx);
    if (rc == CUDA_SUCCESS && dev >= 0)
        s_close(dev, ctx);
    return rc;
}

/* The primary context of dev goes with its last release, or at a reset. */
static CUresult s_primary_drop(CUresult (*fn)(CUdevice), CUdevice dev, int all)
{
    if (fn == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = fn(dev);
    if (rc != CUDA_SUCCESS || !gp_shim.active || dev < 0 || dev >= gp_shim.ndev)
        return rc;
    CUcontext gone = NULL;
    pthread_mutex_lock(&s_lock);
    int last = 0;
    if (s_primary_refs[dev] > 0) {
        s_primary_refs[dev] = all ? 0 : s_primary_refs[dev] - 1;
        last = s_primary_refs[dev] == 0;
    }
    if (last)
        for (size_t i = 0; i < s_n; i++)
            if (s_ctx[i].primary && s_ctx[i].dev == dev)
                gone = s_ctx[i].ctx;
    pthread_mutex_unlock(&s_lock);
    if (last)
        s_close(dev, gone);
    return rc;
}

GP_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    GP_ENTER();
    return s_primary_drop(gp_real.cuDevicePrimaryCtxRelease_v2, dev, 0);
}

GP_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    GP_ENTER();
    return s_primary_drop(gp_real.cuDevicePrimaryCtxReset_v2, dev, 1);
}

/* ------------------------------------------------------------ limits */

/* Bytes a limit of value occupies on the current context's device; 0 when
 * the driver cannot say (the stack's thread count). */
static uint64_t s_limit_cost(CUlimit limit, uint64_t value)
{
    if (limit != CU_LIMIT_STACK_SIZE)
        return value;
    CUdevice d;
    int sms = 0, threads = 0;
    if (gp_real.cuCtxGetDevice == NULL || gp_real.cuDeviceGetAttribute == NULL ||
        gp_real.cuCtxGetDevice(&d) != CUDA_SUCCESS ||
        gp_real.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d) != CUDA_SUCCESS ||
        gp_real.cuDeviceGetAttribute(&threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, d) != CUDA_SUCCESS ||
        sms <= 0 || threads <= 0)
        return 0;
    return value * (uint64_t)sms * (uint64_t)threads;
}

GP_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    GP_ENTER();
    if (gp_real.cuCtxSetLimit == NULL)
        return CUDA_ERROR_NOT_FOUND;
    size_t old = 0;
    CUcontext ctx = NULL;
    int dev;
    if (!gp_shim.active || (int)limit < 0 || (int)limit > 2 || gp_real.cuCtxGetLimit == NULL ||
        (dev = gp_shim_current_dev()) < 0 || gp_real.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS ||
        ctx == NULL || gp_real.cuCtxGetLimit(&old, limit) != CUDA_SUCCESS)
        return gp_real.cuCtxSetLimit(limit, value);
    int64_t delta = (int64_t)s_limit_cost(limit, value) - (int64_t)s_limit_cost(limit, old);
    pthread_mutex_lock(&s_lock);
    gp_ctx_t *c = s_find_locked(ctx);
    uint64_t had = c != NULL ? c->limit_bytes : 0;
    pthread_mutex_unlock(&s_lock);
    int64_t want = (int64_t)had + delta;
    uint64_t next = want > 0 ? (uint64_t)want : 0;
    if (next > had && gp_shim_reserve(dev, next - had, 0) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = gp_real.cuCtxSetLimit(limit, value);
    if (rc != CUDA_SUCCESS) {
        if (next > had)
            gp_shim_release(dev, next - had, 0);
        return rc;
    }
    pthread_mutex_lock(&s_lock);
    c = s_find_locked(ctx);
    if (c == NULL && s_add_locked(ctx, dev, 0) == 0)
        c = s_find_locked(ctx);
    if (c != NULL)
        c->limit_bytes = next;
    pthread_mutex_unlock(&s_lock);
    if (c == NULL && next > had)
        gp_shim_release(dev, next - had, 0);    /* cannot be tracked: not kept counted */
    else if (next < had)
        gp_shim_release(dev, had - next, 0);
    return rc;
}

void gp_ctx_fork_child(void)
{
    pthread_mutex_init(&s_lock, NULL);
    s_n = 0;
    memset(s_live, 0, sizeof s_live);
    memset(s_primary_refs, 0, sizeof s_primary_refs);
}
