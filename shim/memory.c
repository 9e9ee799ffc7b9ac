/*
 * memory.c - the cuMemAlloc family and arrays, counted against the slice
 * (VMM: vmm.c; memory pools and stream-ordered allocations: pools.c).
 *
 * The reservation protocol, the same on every path:
 *
 *   1. reserve the bytes in the slice's region (gp_shim_reserve: under the
 *      region's lock, used + bytes <= limit, or refuse) -- over the limit the
 *      call returns CUDA_ERROR_OUT_OF_MEMORY and nothing is counted;
 *   2. call the driver, holding no lock;
 *   3. if the driver failed, release the bytes; else record what was counted
 *      under the new pointer or handle (alloc_table).
 *
 * A free takes the record out of the table first (so that two threads
 * freeing one pointer cannot both give its bytes back), calls the driver,
 * and releases the bytes when the driver freed it -- or puts the record back
 * when it did not.  A pointer the table does not know (allocated before the
 * shim was loaded, or not by the driver) goes to the driver uncounted, and
 * is never counted negative.
 *
 * Because the reservation is made before the allocation, concurrent
 * processes of one slice can never be granted more than its limit
 * together; a refusal can at worst be spurious for the instant between a
 * driver free and its release.
 *
 * Sizes: what the device loses, not what was asked -- the driver hands out
 * memory in pages of its allocation granularity (2 MiB on current GPUs,
 * asked of cuMemGetAllocationGranularity), so every allocation counts its
 * size rounded up to whole pages: cuMemAlloc, cuMemAllocManaged, a pitched
 * allocation's pitch x height (the pitch the driver chose: reserved with a
 * 512-byte-aligned estimate, then corrected), and arrays (width x height x
 * depth x element size, layers and mipmap levels included, computed from
 * the descriptor: the driver reports an array's size only for arrays with
 * deferred mapping, which take no memory of their own -- theirs is mapped
 * from VMM handles, counted by vmm.c -- and count nothing here).
 *
 * Oversubscription (GP_SLICE_OVERSUBSCRIBE=1): when the driver says the
 * device is full but the slice still has room, cuMemAlloc and
 * cuMemAllocPitch are served from mapped pinned host memory
 * (cuMemHostAlloc + cuMemHostGetDevicePointer), counted in the slice and as
 * host-backed; their free releases the host memory.
 */
#include "shim.h"

#include <string.h>

#include "alloc_table.h"

#include "banned.h"

/* The one macro: a wrapper whose slice is not enforced (or whose driver
 * has no such entry point) is a pure pass-through. */
#define GP_PASSTHROUGH_IF_INACTIVE(fn, args) do { \
        GP_ENTER(); \
        if (gp_real.fn == NULL) return CUDA_ERROR_NOT_INITIALIZED; \
        if (!gp_shim.active) return gp_real.fn args; \
    } while (0)

/* ------------------------------------------------------------ the protocol */

/* An allocation of this file: the driver entry point, its arguments, and
 * where the driver puts the new pointer or handle. */
typedef enum { S_ALLOC, S_MANAGED, S_PITCH, S_ARRAY, S_ARRAY3D, S_MIPMAP } s_op_t;

typedef struct {
    s_op_t op;
    CUdeviceptr *dptr;                     /* S_ALLOC, S_MANAGED, S_PITCH */
    CUarray *arr;                          /* S_ARRAY, S_ARRAY3D */
    CUmipmappedArray *mip;                 /* S_MIPMAP */
    size_t bytes;                          /* S_ALLOC, S_MANAGED: what was asked */
    unsigned int flags;                    /* S_MANAGED */
    size_t *pitch, width, height;          /* S_PITCH */
    unsigned int elem;                     /* S_PITCH */
    const CUDA_ARRAY_DESCRIPTOR *d2;       /* S_ARRAY */
    const CUDA_ARRAY3D_DESCRIPTOR *d3;     /* S_ARRAY3D, S_MIPMAP */
    unsigned int levels;                   /* S_MIPMAP */
} s_alloc_t;

static CUresult s_driver_alloc(const s_alloc_t *r)
{
    switch (r->op) {
    case S_ALLOC: return gp_real.cuMemAlloc_v2(r->dptr, r->bytes);
    case S_MANAGED: return gp_real.cuMemAllocManaged(r->dptr, r->bytes, r->flags);
    case S_PITCH: return gp_real.cuMemAllocPitch_v2(r->dptr, r->pitch, r->width, r->height, r->elem);
    case S_ARRAY: return gp_real.cuArrayCreate_v2(r->arr, r->d2);
    case S_ARRAY3D: return gp_real.cuArray3DCreate_v2(r->arr, r->d3);
    case S_MIPMAP: return gp_real.cuMipmappedArrayCreate(r->mip, r->d3, r->levels);
    }
    return CUDA_ERROR_INVALID_VALUE;
}

/* The record of an allocation the driver made: its key and kind. */
static int s_kind(const s_alloc_t *r)
{
    return r->op == S_MIPMAP ? GP_ALLOC_MIPMAP :
           r->op == S_ARRAY || r->op == S_ARRAY3D ? GP_ALLOC_ARRAY : GP_ALLOC_PTR;
}

static uintptr_t s_key(const s_alloc_t *r)
{
    switch (s_kind(r)) {
    case GP_ALLOC_MIPMAP: return (uintptr_t)*r->mip;
    case GP_ALLOC_ARRAY: return (uintptr_t)*r->arr;
    default: return (uintptr_t)*r->dptr;
    }
}

/* Give back to the driver what it (or host memory) just gave us. */
static void s_driver_undo(const s_alloc_t *r, void *host)
{
    if (host != NULL)
        gp_real.cuMemFreeHost(host);
    else if (r->op == S_MIPMAP)
        gp_real.cuMipmappedArrayDestroy(*r->mip);
    else if (r->op == S_ARRAY || r->op == S_ARRAY3D)
        gp_real.cuArrayDestroy(*r->arr);
    else
        gp_real.cuMemFree_v2(*r->dptr);
}

/* The row pitch a pitched allocation is reserved with before the driver
 * has chosen one (and served with from host memory). */
static size_t s_pitch_estimate(size_t width) { return (width + 511) & ~(size_t)511; }

/* Serve a pointer allocation from mapped pinned host memory: the slice has
 * reserved its bytes already (as device bytes); move them to host-backed. */
static CUresult s_host_backed(CUdeviceptr *dptr, uint64_t bytes, int dev, void **host)
{
    if (gp_real.cuMemHostAlloc == NULL || gp_real.cuMemHostGetDevicePointer_v2 == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = NULL;
    if (gp_real.cuMemHostAlloc(&p, bytes, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE) !=
        CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (gp_real.cuMemHostGetDevicePointer_v2(dptr, p, 0) != CUDA_SUCCESS) {
        gp_real.cuMemFreeHost(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gp_shim_mark_host(dev, bytes);
    *host = p;
    return CUDA_SUCCESS;
}

/*
 * Every allocation of this file: reserve bytes on dev (whole pages), call
 * the driver, then commit -- record what is counted under the new pointer
 * or handle -- or release.  A pitched allocation was reserved with an
 * estimate and is corrected to the pitch the driver chose; a pointer
 * allocation the device cannot hold any more may be served from host
 * memory (oversubscription).  Whatever fails after the driver succeeded
 * gives the allocation back to the driver and the bytes to the slice, so
 * that nothing stays counted that the job does not hold, and nothing held
 * goes uncounted.
 */
static CUresult s_alloc(const s_alloc_t *r, int dev, uint64_t bytes)
{
    if (dev < 0 || bytes == UINT64_MAX || gp_shim_reserve(dev, bytes, 0) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *host = NULL;
    int flags = 0;
    CUresult rc = s_driver_alloc(r);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY && gp_shim.oversubscribe &&
        (r->op == S_ALLOC || r->op == S_PITCH) &&
        s_host_backed(r->dptr, bytes, dev, &host) == CUDA_SUCCESS) {
        rc = CUDA_SUCCESS;
        flags = GP_SLICE_HOST;
        if (r->op == S_PITCH)
            *r->pitch = s_pitch_estimate(r->width);
    }
    if (rc != CUDA_SUCCESS) {
        gp_shim_release(dev, bytes, 0);
        return rc;
    }
    if (r->op == S_PITCH) {
        /* the true size is the pitch the driver chose times the height */
        uint64_t truth = *r->pitch > UINT64_MAX / r->height ? UINT64_MAX :
                         gp_shim_pages(dev, (uint64_t)*r->pitch * r->height);
        if (truth > bytes) {
            if (truth == UINT64_MAX || gp_shim_reserve(dev, truth - bytes, flags) < 0)
                goto undo;
        } else if (truth < bytes) {
            gp_shim_release(dev, bytes - truth, flags);
        }
        bytes = truth;
    }
    gp_shim_alloc_t a = { .key = s_key(r), .bytes = bytes, .host = host, .dev = (int16_t)dev,
                          .kind = (uint8_t)s_kind(r), .flags = (uint8_t)flags };
    if (gp_shim_alloc_put(&a) == 0)
        return CUDA_SUCCESS;
undo:
    /* over the limit after all, or the table cannot record: refuse like
     * the driver would */
    s_driver_undo(r, host);
    gp_shim_release(dev, bytes, flags);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* A free of this file: the driver entry point, and what it frees. */
typedef enum { S_FREE, S_FREE_ASYNC, S_FREE_ASYNC_PTSZ, S_ARRAY_DESTROY, S_MIPMAP_DESTROY } s_free_op_t;

static CUresult s_free_sync(CUdeviceptr p, CUstream s)
{
    (void)s;
    return gp_real.cuMemFree_v2(p);
}

static CUresult s_driver_free(s_free_op_t op, uintptr_t key, CUstream s)
{
    switch (op) {
    case S_FREE: return gp_real.cuMemFree_v2((CUdeviceptr)key);
    case S_FREE_ASYNC: return gp_real.cuMemFreeAsync((CUdeviceptr)key, s);
    case S_FREE_ASYNC_PTSZ: return gp_real.cuMemFreeAsync_ptsz((CUdeviceptr)key, s);
    case S_ARRAY_DESTROY: return gp_real.cuArrayDestroy((CUarray)key);
    case S_MIPMAP_DESTROY: return gp_real.cuMipmappedArrayDestroy((CUmipmappedArray)key);
    }
    return CUDA_ERROR_INVALID_VALUE;
}

/*
 * Every free of this file: take the record out of the table first (so
 * that of two threads freeing one pointer only one gives its bytes back),
 * call the driver (or free the host memory serving it), then release the
 * bytes -- or put the record back when the driver refused.  cuMemFree and
 * cuMemFreeAsync take a pointer of either kind: of the cuMemAlloc family
 * (looked up first) or from a memory pool (pools.c).  A pointer or handle
 * the shim does not know goes to the driver uncounted.
 */
static CUresult s_free(s_free_op_t op, uintptr_t key, CUstream s)
{
    int kind = op == S_ARRAY_DESTROY ? GP_ALLOC_ARRAY :
               op == S_MIPMAP_DESTROY ? GP_ALLOC_MIPMAP : GP_ALLOC_PTR;
    gp_shim_alloc_t a;
    if (gp_shim_alloc_take(key, kind, &a) == 0) {
        CUresult rc = a.host != NULL ? gp_real.cuMemFreeHost(a.host) : s_driver_free(op, key, s);
        if (rc == CUDA_SUCCESS)
            gp_shim_release(a.dev, a.bytes, a.flags);
        else
            gp_shim_alloc_put(&a);
        return rc;
    }
    if (kind == GP_ALLOC_PTR) {
        CUresult rc;
        CUresult (*fn)(CUdeviceptr, CUstream) = op == S_FREE ? s_free_sync :
            op == S_FREE_ASYNC ? gp_real.cuMemFreeAsync : gp_real.cuMemFreeAsync_ptsz;
        if (gp_pools_free(key, fn, s, &rc))
            return rc;
    }
    return s_driver_free(op, key, s);
}

/* ------------------------------------------------------------ the cuMemAlloc family */

GP_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAlloc_v2, (dptr, bytes));
    if (bytes == 0 || dptr == NULL)
        return gp_real.cuMemAlloc_v2(dptr, bytes);
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_ALLOC, .dptr = dptr, .bytes = bytes };
    return s_alloc(&r, dev, dev < 0 ? 0 : gp_shim_pages(dev, bytes));
}

GP_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAllocManaged, (dptr, bytes, flags));
    if (bytes == 0 || dptr == NULL)
        return gp_real.cuMemAllocManaged(dptr, bytes, flags);
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_MANAGED, .dptr = dptr, .bytes = bytes, .flags = flags };
    return s_alloc(&r, dev, dev < 0 ? 0 : gp_shim_pages(dev, bytes));
}

GP_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width,
                                      size_t height, unsigned int elem)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAllocPitch_v2, (dptr, pitch, width, height, elem));
    if (dptr == NULL || pitch == NULL || width == 0 || height == 0 ||
        s_pitch_estimate(width) < width || s_pitch_estimate(width) > SIZE_MAX / height)
        return gp_real.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_PITCH, .dptr = dptr, .pitch = pitch, .width = width,
                    .height = height, .elem = elem };
    return s_alloc(&r, dev, dev < 0 ? 0 : gp_shim_pages(dev, (uint64_t)s_pitch_estimate(width) * height));
}

GP_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemFree_v2, (dptr));
    return s_free(S_FREE, (uintptr_t)dptr, NULL);
}

GP_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemFreeAsync, (dptr, s));
    return s_free(S_FREE_ASYNC, (uintptr_t)dptr, s);
}

GP_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemFreeAsync_ptsz, (dptr, s));
    return s_free(S_FREE_ASYNC_PTSZ, (uintptr_t)dptr, s);
}

/* ------------------------------------------------------------ arrays */

static uint64_t s_format_bytes(CUarray_format f)
{
    switch ((int)f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 4;   /* other formats: count 4 bytes per channel, never 0 */
    }
}

/* Pages of an array on the current device: every level of a mipmapped
 * one; layers and the six faces of a cubemap are the depth and do not
 * shrink.  UINT64_MAX when the size overflows (s_alloc refuses it). */
static uint64_t s_array_pages(int dev, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels)
{
    uint64_t elem = s_format_bytes(d->Format) * (d->NumChannels ? d->NumChannels : 1);
    uint64_t w = d->Width ? d->Width : 1, h = d->Height ? d->Height : 1, z = d->Depth ? d->Depth : 1;
    int keep_depth = (d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    uint64_t total = 0;
    for (unsigned l = 0; l < levels; l++) {
        uint64_t lv = w * h;
        if (lv / h != w || lv * z / z != lv || lv * z * elem / elem != lv * z ||
            total + lv * z * elem < total)
            return UINT64_MAX;
        total += lv * z * elem;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : 1;
        if (!keep_depth)
            z = z > 1 ? z / 2 : 1;
    }
    return dev < 0 ? 0 : gp_shim_pages(dev, total);
}

GP_EXPORT CUresult cuArrayCreate_v2(CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArrayCreate_v2, (arr, desc));
    if (arr == NULL || desc == NULL)
        return gp_real.cuArrayCreate_v2(arr, desc);
    CUDA_ARRAY3D_DESCRIPTOR d = { desc->Width, desc->Height, 0, desc->Format, desc->NumChannels, 0 };
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_ARRAY, .arr = arr, .d2 = desc };
    return s_alloc(&r, dev, s_array_pages(dev, &d, 1));
}

GP_EXPORT CUresult cuArray3DCreate_v2(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArray3DCreate_v2, (arr, desc));
    if (arr == NULL || desc == NULL || (desc->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING))
        return gp_real.cuArray3DCreate_v2(arr, desc);
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_ARRAY3D, .arr = arr, .d3 = desc };
    return s_alloc(&r, dev, s_array_pages(dev, desc, 1));
}

GP_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                          unsigned int levels)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMipmappedArrayCreate, (arr, desc, levels));
    if (arr == NULL || desc == NULL || levels == 0 || (desc->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING))
        return gp_real.cuMipmappedArrayCreate(arr, desc, levels);
    int dev = gp_shim_current_dev();
    s_alloc_t r = { .op = S_MIPMAP, .mip = arr, .d3 = desc, .levels = levels };
    return s_alloc(&r, dev, s_array_pages(dev, desc, levels));
}

GP_EXPORT CUresult cuArrayDestroy(CUarray arr)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArrayDestroy, (arr));
    return s_free(S_ARRAY_DESTROY, (uintptr_t)arr, NULL);
}

GP_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMipmappedArrayDestroy, (arr));
    return s_free(S_MIPMAP_DESTROY, (uintptr_t)arr, NULL);
}
