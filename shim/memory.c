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

#define GP_PASSTHROUGH_IF_INACTIVE(fn, args) do { \
        GP_ENTER(); \
        if (gp_real.fn == NULL) return CUDA_ERROR_NOT_INITIALIZED; \
        if (!gp_shim.active) return gp_real.fn args; \
    } while (0)

/* Over the limit, or the table cannot record: refuse like the driver would. */
static CUresult s_record(uintptr_t key, uint64_t bytes, int dev, int kind, int flags, void *host)
{
    gp_shim_alloc_t a = { .key = key, .bytes = bytes, .host = host, .dev = (int16_t)dev,
                     .kind = (uint8_t)kind, .flags = (uint8_t)flags };
    return gp_shim_alloc_put(&a) == 0 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

/* Serve bytes from mapped pinned host memory: the slice has reserved them
 * already (as device bytes); move them to host-backed. */
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
    /* the bytes stay reserved; they are now host-backed */
    gp_shim_mark_host(dev, bytes);
    *host = p;
    return CUDA_SUCCESS;
}

/* The common path of the pointer allocations: reserve, call, record. */
#define GP_ALLOC_BODY(call, dptr, bytes, dev, can_host) do { \
        if ((dev) < 0) return CUDA_ERROR_OUT_OF_MEMORY; \
        if (gp_shim_reserve((dev), (bytes), 0) < 0) return CUDA_ERROR_OUT_OF_MEMORY; \
        CUresult rc_ = gp_real.call; \
        void *host_ = NULL; \
        int flags_ = 0; \
        if (rc_ == CUDA_ERROR_OUT_OF_MEMORY && (can_host) && gp_shim.oversubscribe && \
            s_host_backed((dptr), (bytes), (dev), &host_) == CUDA_SUCCESS) { \
            rc_ = CUDA_SUCCESS; \
            flags_ = GP_SLICE_HOST; \
        } \
        if (rc_ != CUDA_SUCCESS) { \
            gp_shim_release((dev), (bytes), 0); \
            return rc_; \
        } \
        if (s_record((uintptr_t)*(dptr), (bytes), (dev), GP_ALLOC_PTR, flags_, host_) != CUDA_SUCCESS) { \
            s_free_ptr_driver(*(dptr), host_); \
            gp_shim_release((dev), (bytes), flags_); \
            return CUDA_ERROR_OUT_OF_MEMORY; \
        } \
        return CUDA_SUCCESS; \
    } while (0)

static void s_free_ptr_driver(CUdeviceptr p, void *host)
{
    if (host != NULL)
        gp_real.cuMemFreeHost(host);
    else
        gp_real.cuMemFree_v2(p);
}

GP_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAlloc_v2, (dptr, bytes));
    if (bytes == 0 || dptr == NULL)
        return gp_real.cuMemAlloc_v2(dptr, bytes);
    int dev = gp_shim_current_dev();
    if (dev < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t pages = gp_shim_pages(dev, bytes);
    GP_ALLOC_BODY(cuMemAlloc_v2(dptr, bytes), dptr, pages, dev, 1);
}

GP_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAllocManaged, (dptr, bytes, flags));
    if (bytes == 0 || dptr == NULL)
        return gp_real.cuMemAllocManaged(dptr, bytes, flags);
    int dev = gp_shim_current_dev();
    if (dev < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t pages = gp_shim_pages(dev, bytes);
    GP_ALLOC_BODY(cuMemAllocManaged(dptr, bytes, flags), dptr, pages, dev, 0);
}

GP_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width,
                                      size_t height, unsigned int elem)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMemAllocPitch_v2, (dptr, pitch, width, height, elem));
    if (dptr == NULL || pitch == NULL || width == 0 || height == 0 || width > SIZE_MAX / height)
        return gp_real.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
    int dev = gp_shim_current_dev();
    if (dev < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t estimate = gp_shim_pages(dev, (uint64_t)((width + 511) & ~(size_t)511) * height);
    if (gp_shim_reserve(dev, estimate, 0) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = gp_real.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
    void *host = NULL;
    int flags = 0;
    uint64_t bytes = estimate;
    if (rc == CUDA_ERROR_OUT_OF_MEMORY && gp_shim.oversubscribe &&
        s_host_backed(dptr, estimate, dev, &host) == CUDA_SUCCESS) {
        rc = CUDA_SUCCESS;
        flags = GP_SLICE_HOST;
        *pitch = (width + 511) & ~(size_t)511;
    }
    if (rc != CUDA_SUCCESS) {
        gp_shim_release(dev, estimate, 0);
        return rc;
    }
    /* the true size is the pitch the driver chose times the height */
    uint64_t truth = gp_shim_pages(dev, (uint64_t)*pitch * height);
    if (truth > bytes) {
        if (gp_shim_reserve(dev, truth - bytes, flags) < 0) {
            s_free_ptr_driver(*dptr, host);
            gp_shim_release(dev, bytes, flags);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        bytes = truth;
    } else if (truth < bytes) {
        gp_shim_release(dev, bytes - truth, flags);
        bytes = truth;
    }
    if (s_record((uintptr_t)*dptr, bytes, dev, GP_ALLOC_PTR, flags, host) != CUDA_SUCCESS) {
        s_free_ptr_driver(*dptr, host);
        gp_shim_release(dev, bytes, flags);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

/* Free a pointer: take its record, free, release (or put the record back). */
#define GP_FREE_BODY(key, kind, call) do { \
        gp_shim_alloc_t a_; \
        if (gp_shim_alloc_take((uintptr_t)(key), (kind), &a_) < 0) return gp_real.call; \
        CUresult rc_ = a_.host != NULL ? gp_real.cuMemFreeHost(a_.host) : gp_real.call; \
        if (rc_ == CUDA_SUCCESS) gp_shim_release(a_.dev, a_.bytes, a_.flags); \
        else gp_shim_alloc_put(&a_); \
        return rc_; \
    } while (0)

static CUresult s_free_sync(CUdeviceptr p, CUstream s)
{
    (void)s;
    return gp_real.cuMemFree_v2(p);
}

/* cuMemFree and cuMemFreeAsync take a pointer of either kind: of the
 * cuMemAlloc family (counted per pointer, looked up first) or from a pool
 * (pools.c); one the shim does not know goes to the driver. */
#define GP_FREE_ANY(fn, free_fn, dptr, s) do { \
        GP_PASSTHROUGH_IF_INACTIVE(fn, args_); \
        gp_shim_alloc_t a_; \
        if (gp_shim_alloc_take((uintptr_t)(dptr), GP_ALLOC_PTR, &a_) == 0) { \
            CUresult rc_ = a_.host != NULL ? gp_real.cuMemFreeHost(a_.host) : gp_real.fn args_; \
            if (rc_ == CUDA_SUCCESS) gp_shim_release(a_.dev, a_.bytes, a_.flags); \
            else gp_shim_alloc_put(&a_); \
            return rc_; \
        } \
        CUresult prc_; \
        if (gp_pools_free((uintptr_t)(dptr), (free_fn), (s), &prc_)) return prc_; \
        return gp_real.fn args_; \
    } while (0)

GP_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
#define args_ (dptr)
    GP_FREE_ANY(cuMemFree_v2, s_free_sync, dptr, NULL);
#undef args_
}

GP_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s)
{
#define args_ (dptr, s)
    GP_FREE_ANY(cuMemFreeAsync, gp_real.cuMemFreeAsync, dptr, s);
#undef args_
}

GP_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s)
{
#define args_ (dptr, s)
    GP_FREE_ANY(cuMemFreeAsync_ptsz, gp_real.cuMemFreeAsync_ptsz, dptr, s);
#undef args_
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

/* Bytes of an array: every level of a mipmapped one; layers and the six
 * faces of a cubemap are the depth and do not shrink. */
static uint64_t s_array_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels)
{
    uint64_t elem = s_format_bytes(d->Format) * (d->NumChannels ? d->NumChannels : 1);
    uint64_t w = d->Width ? d->Width : 1, h = d->Height ? d->Height : 1, z = d->Depth ? d->Depth : 1;
    int keep_depth = (d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    uint64_t total = 0;
    for (unsigned l = 0; l < levels; l++) {
        uint64_t lv = w * h;
        if (lv / h != w || lv * z / z != lv || lv * z * elem / elem != lv * z)
            return UINT64_MAX;
        total += lv * z * elem;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : 1;
        if (!keep_depth)
            z = z > 1 ? z / 2 : 1;
    }
    return total;
}

static CUresult s_array_create(void **handle, int kind, uint64_t bytes, CUresult (*call)(void *),
                               void *arg)
{
    int dev = gp_shim_current_dev();
    if (dev < 0 || bytes == UINT64_MAX)
        return CUDA_ERROR_OUT_OF_MEMORY;
    bytes = gp_shim_pages(dev, bytes);
    if (gp_shim_reserve(dev, bytes, 0) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = call(arg);
    if (rc != CUDA_SUCCESS) {
        gp_shim_release(dev, bytes, 0);
        return rc;
    }
    if (s_record((uintptr_t)*handle, bytes, dev, kind, 0, NULL) != CUDA_SUCCESS) {
        if (kind == GP_ALLOC_MIPMAP)
            gp_real.cuMipmappedArrayDestroy((CUmipmappedArray)*handle);
        else
            gp_real.cuArrayDestroy((CUarray)*handle);
        gp_shim_release(dev, bytes, 0);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

struct s_array_args {
    CUarray *arr;
    CUmipmappedArray *mip;
    const CUDA_ARRAY_DESCRIPTOR *d2;
    const CUDA_ARRAY3D_DESCRIPTOR *d3;
    unsigned levels;
};

static CUresult s_call_2d(void *p)
{
    struct s_array_args *a = p;
    return gp_real.cuArrayCreate_v2(a->arr, a->d2);
}

static CUresult s_call_3d(void *p)
{
    struct s_array_args *a = p;
    return gp_real.cuArray3DCreate_v2(a->arr, a->d3);
}

static CUresult s_call_mip(void *p)
{
    struct s_array_args *a = p;
    return gp_real.cuMipmappedArrayCreate(a->mip, a->d3, a->levels);
}

GP_EXPORT CUresult cuArrayCreate_v2(CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArrayCreate_v2, (arr, desc));
    if (arr == NULL || desc == NULL)
        return gp_real.cuArrayCreate_v2(arr, desc);
    CUDA_ARRAY3D_DESCRIPTOR d = { desc->Width, desc->Height, 0, desc->Format, desc->NumChannels, 0 };
    struct s_array_args a = { .arr = arr, .d2 = desc };
    return s_array_create((void **)arr, GP_ALLOC_ARRAY, s_array_bytes(&d, 1), s_call_2d, &a);
}

GP_EXPORT CUresult cuArray3DCreate_v2(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArray3DCreate_v2, (arr, desc));
    if (arr == NULL || desc == NULL || (desc->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING))
        return gp_real.cuArray3DCreate_v2(arr, desc);
    struct s_array_args a = { .arr = arr, .d3 = desc };
    return s_array_create((void **)arr, GP_ALLOC_ARRAY, s_array_bytes(desc, 1), s_call_3d, &a);
}

GP_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                          unsigned int levels)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMipmappedArrayCreate, (arr, desc, levels));
    if (arr == NULL || desc == NULL || levels == 0 || (desc->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING))
        return gp_real.cuMipmappedArrayCreate(arr, desc, levels);
    struct s_array_args a = { .mip = arr, .d3 = desc, .levels = levels };
    return s_array_create((void **)arr, GP_ALLOC_MIPMAP, s_array_bytes(desc, levels), s_call_mip, &a);
}

GP_EXPORT CUresult cuArrayDestroy(CUarray arr)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuArrayDestroy, (arr));
    GP_FREE_BODY(arr, GP_ALLOC_ARRAY, cuArrayDestroy(arr));
}

GP_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr)
{
    GP_PASSTHROUGH_IF_INACTIVE(cuMipmappedArrayDestroy, (arr));
    GP_FREE_BODY(arr, GP_ALLOC_MIPMAP, cuMipmappedArrayDestroy(arr));
}
