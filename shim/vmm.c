/*
 * vmm.c - the virtual memory management API: cuMemCreate's physical
 * memory, counted from its creation until it is really gone.
 *
 * A real driver keeps the physical memory of a generic allocation handle
 * while any reference to it remains: the handle from cuMemCreate, every
 * handle from cuMemRetainAllocationHandle or cuMemImportFromShareableHandle,
 * and every mapping (cuMemMap).  cuMemCreate -> cuMemMap -> cuMemRelease
 * at once is the usual pattern: the memory stays until cuMemUnmap.  So the
 * shim counts a handle's bytes from cuMemCreate (reserved before the driver
 * call, like every path) until the last of its handles is released and its
 * last mapping unmapped.
 *
 * Shareable handles: exporting changes nothing (the memory stays counted
 * to the process that created it, until that process's last reference
 * goes).  An imported handle counts nothing in the importing process: it
 * is memory some process created, counted there if that process is in a
 * slice (the same slice or another one) -- never twice in one slice.  What
 * is not counted: memory that stays alive only because another process
 * imported it, after its creator let it go.
 *
 * Handles and mappings live in two arrays under one mutex, held for a
 * search and an update, never across a driver call.
 */
#include "shim.h"

#include <pthread.h>
#include <stdlib.h>

#include "banned.h"

typedef struct {
    CUmemGenericAllocationHandle h;
    uint64_t bytes;          /* counted in the slice; 0 when imported */
    int dev;
    int refs;                /* handles this process holds */
    int maps;                /* mappings of it in this process */
} gp_vmm_handle_t;

typedef struct {
    CUdeviceptr va;
    uint64_t size;
    CUmemGenericAllocationHandle h;
} gp_vmm_map_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gp_vmm_handle_t *s_h;
static size_t s_nh, s_caph;
static gp_vmm_map_t *s_m;
static size_t s_nm, s_capm;

static int s_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static gp_vmm_handle_t *s_handle_locked(CUmemGenericAllocationHandle h)
{
    for (size_t i = 0; i < s_nh; i++)
        if (s_h[i].h == h)
            return &s_h[i];
    return NULL;
}

static int s_add_handle(CUmemGenericAllocationHandle h, uint64_t bytes, int dev)
{
    int rc = -1;
    pthread_mutex_lock(&s_lock);
    gp_vmm_handle_t *k = s_handle_locked(h);
    if (k != NULL) {
        /* the same memory again (an import of this process's own): counted
         * once; or a handle value the driver reused before the release of
         * its last holder was recorded here: count both */
        k->refs++;
        k->bytes += bytes;
        rc = 0;
    } else if (s_grow((void **)&s_h, &s_caph, s_nh, sizeof *s_h) == 0) {
        s_h[s_nh++] = (gp_vmm_handle_t){ .h = h, .bytes = bytes, .dev = dev, .refs = 1 };
        rc = 0;
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

/* Drop the handle when nothing refers to it: its bytes to give back. */
static uint64_t s_drop_if_gone_locked(gp_vmm_handle_t *k, int *dev)
{
    if (k->refs > 0 || k->maps > 0)
        return 0;
    uint64_t bytes = k->bytes;
    *dev = k->dev;
    *k = s_h[--s_nh];
    return bytes;
}

GP_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t bytes,
                               const CUmemAllocationProp *prop, unsigned long long flags)
{
    GP_ENTER();
    if (gp_real.cuMemCreate == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!gp_shim.active || h == NULL || prop == NULL || bytes == 0 ||
        prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return gp_real.cuMemCreate(h, bytes, prop, flags);
    int dev = prop->location.id;
    if (dev < 0 || dev >= gp_shim.ndev)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t b = gp_shim_pages(dev, bytes);
    if (gp_shim_reserve(dev, b, 0) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = gp_real.cuMemCreate(h, bytes, prop, flags);
    if (rc != CUDA_SUCCESS) {
        gp_shim_release(dev, b, 0);
        return rc;
    }
    if (s_add_handle(*h, b, dev) < 0) {
        gp_real.cuMemRelease(*h);
        gp_shim_release(dev, b, 0);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

GP_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    GP_ENTER();
    if (gp_real.cuMemRelease == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemRelease(h);
    if (rc != CUDA_SUCCESS || !gp_shim.active)
        return rc;
    uint64_t bytes = 0;
    int dev = -1;
    pthread_mutex_lock(&s_lock);
    gp_vmm_handle_t *k = s_handle_locked(h);
    if (k != NULL && k->refs > 0) {
        k->refs--;
        bytes = s_drop_if_gone_locked(k, &dev);
    }
    pthread_mutex_unlock(&s_lock);
    if (bytes > 0)
        gp_shim_release(dev, bytes, 0);
    return rc;
}

GP_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                            CUmemGenericAllocationHandle h, unsigned long long flags)
{
    GP_ENTER();
    if (gp_real.cuMemMap == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemMap(ptr, size, offset, h, flags);
    if (rc != CUDA_SUCCESS || !gp_shim.active)
        return rc;
    pthread_mutex_lock(&s_lock);
    gp_vmm_handle_t *k = s_handle_locked(h);
    if (k != NULL && s_grow((void **)&s_m, &s_capm, s_nm, sizeof *s_m) == 0) {
        s_m[s_nm++] = (gp_vmm_map_t){ .va = ptr, .size = size, .h = h };
        k->maps++;
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

GP_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    GP_ENTER();
    if (gp_real.cuMemUnmap == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemUnmap(ptr, size);
    if (rc != CUDA_SUCCESS || !gp_shim.active)
        return rc;
    /* every mapping in the range is gone; their handles may be too */
    uint64_t give[GP_SLICE_MAX_DEVICES] = { 0 };
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_nm;) {
        if (s_m[i].va >= ptr && s_m[i].va - ptr < size) {
            gp_vmm_handle_t *k = s_handle_locked(s_m[i].h);
            s_m[i] = s_m[--s_nm];
            if (k != NULL && k->maps > 0) {
                k->maps--;
                int dev = -1;
                uint64_t b = s_drop_if_gone_locked(k, &dev);
                if (b > 0 && dev >= 0)
                    give[dev] += b;
            }
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&s_lock);
    for (int d = 0; d < gp_shim.ndev; d++)
        if (give[d] > 0)
            gp_shim_release(d, give[d], 0);
    return rc;
}

GP_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *h, void *addr)
{
    GP_ENTER();
    if (gp_real.cuMemRetainAllocationHandle == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemRetainAllocationHandle(h, addr);
    if (rc != CUDA_SUCCESS || !gp_shim.active || h == NULL)
        return rc;
    pthread_mutex_lock(&s_lock);
    gp_vmm_handle_t *k = s_handle_locked(*h);
    if (k != NULL)
        k->refs++;
    pthread_mutex_unlock(&s_lock);
    return rc;
}

GP_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *h, void *os_handle,
                                                  CUmemAllocationHandleType type)
{
    GP_ENTER();
    if (gp_real.cuMemImportFromShareableHandle == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuMemImportFromShareableHandle(h, os_handle, type);
    if (rc != CUDA_SUCCESS || !gp_shim.active || h == NULL)
        return rc;
    /* counted where it was created (this process included: then it is one
     * more reference to a handle counted already) */
    if (s_add_handle(*h, 0, -1) < 0) {
        gp_real.cuMemRelease(*h);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

void gp_vmm_fork_child(void)
{
    pthread_mutex_init(&s_lock, NULL);
    s_nh = 0;
    s_nm = 0;
}
