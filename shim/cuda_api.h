/*
 * cuda_api.h - our own declarations of the part of the CUDA driver API and
 * of NVML that the shim interposes or calls, so that neither the shim nor the
 * test programs need the CUDA toolkit to build.
 *
 * The types and values follow the driver's public ABI (cuda.h, nvml.h);
 * only what gpupool uses is declared.  Versioned entry points are declared
 * under their exported names (cuMemAlloc_v2, ...), as cuda.h's macros make
 * programs reference them.
 */
#ifndef GP_CUDA_API_H
#define GP_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- CUDA */

typedef enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_UNKNOWN = 999,
} CUresult;

typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef uint64_t cuuint64_t;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUarray_st *CUarray;
typedef struct CUmipmappedArray_st *CUmipmappedArray;
typedef struct CUmemPoolHandle_st *CUmemoryPool;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphNode_st *CUgraphNode;
typedef struct CUgraphExec_st *CUgraphExec;
typedef unsigned long long CUmemGenericAllocationHandle;

typedef struct { char bytes[16]; } CUuuid;

typedef enum {
    CU_AD_FORMAT_UNSIGNED_INT8 = 0x01,
    CU_AD_FORMAT_UNSIGNED_INT16 = 0x02,
    CU_AD_FORMAT_UNSIGNED_INT32 = 0x03,
    CU_AD_FORMAT_SIGNED_INT8 = 0x08,
    CU_AD_FORMAT_SIGNED_INT16 = 0x09,
    CU_AD_FORMAT_SIGNED_INT32 = 0x0a,
    CU_AD_FORMAT_HALF = 0x10,
    CU_AD_FORMAT_FLOAT = 0x20,
} CUarray_format;

typedef struct {
    size_t Width;
    size_t Height;
    CUarray_format Format;
    unsigned int NumChannels;
} CUDA_ARRAY_DESCRIPTOR;

typedef struct {
    size_t Width;
    size_t Height;
    size_t Depth;
    CUarray_format Format;
    unsigned int NumChannels;
    unsigned int Flags;
} CUDA_ARRAY3D_DESCRIPTOR;

#define CUDA_ARRAY3D_LAYERED 0x01
#define CUDA_ARRAY3D_CUBEMAP 0x04
#define CUDA_ARRAY3D_DEFERRED_MAPPING 0x80

typedef enum { CU_MEM_ALLOCATION_TYPE_PINNED = 0x1 } CUmemAllocationType;
typedef enum {
    CU_MEM_HANDLE_TYPE_NONE = 0x0,
    CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 0x1,
} CUmemAllocationHandleType;
typedef enum {
    CU_MEM_ALLOC_GRANULARITY_MINIMUM = 0x0,
    CU_MEM_ALLOC_GRANULARITY_RECOMMENDED = 0x1,
} CUmemAllocationGranularity_flags;
typedef enum { CU_MEM_LOCATION_TYPE_DEVICE = 0x1 } CUmemLocationType;
typedef struct {
    CUmemLocationType type;
    int id;
} CUmemLocation;
typedef struct {
    CUmemAllocationType type;
    int requestedHandleTypes;
    CUmemLocation location;
    void *win32HandleMetaData;
    struct {
        unsigned char compressionType;
        unsigned char gpuDirectRDMACapable;
        unsigned short usage;
        unsigned char reserved[4];
    } allocFlags;
} CUmemAllocationProp;

typedef enum { CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 0x3 } CUmemAccess_flags;
typedef struct {
    CUmemLocation location;
    CUmemAccess_flags flags;
} CUmemAccessDesc;

typedef struct {
    CUmemAllocationType allocType;
    CUmemAllocationHandleType handleTypes;
    CUmemLocation location;
    void *win32SecurityAttributes;
    size_t maxSize;
    unsigned short usage;
    unsigned char reserved[54];
} CUmemPoolProps;

typedef enum {
    CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4,
    CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT = 5,
    CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH = 6,
    CU_MEMPOOL_ATTR_USED_MEM_CURRENT = 7,
    CU_MEMPOOL_ATTR_USED_MEM_HIGH = 8,
} CUmemPool_attribute;

typedef enum {
    CU_LIMIT_STACK_SIZE = 0x00,
    CU_LIMIT_PRINTF_FIFO_SIZE = 0x01,
    CU_LIMIT_MALLOC_HEAP_SIZE = 0x02,
} CUlimit;

typedef enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
} CUdevice_attribute;

typedef struct {
    CUmemPoolProps poolProps;
    const CUmemAccessDesc *accessDescs;
    size_t accessDescCount;
    size_t bytesize;
    CUdeviceptr dptr;
} CUDA_MEM_ALLOC_NODE_PARAMS;

typedef enum {
    CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT = 0,
    CU_GRAPH_MEM_ATTR_USED_MEM_HIGH = 1,
    CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT = 2,
    CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH = 3,
} CUgraphMem_attribute;

typedef enum {
    CU_STREAM_CAPTURE_STATUS_NONE = 0,
    CU_STREAM_CAPTURE_STATUS_ACTIVE = 1,
    CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2,
} CUstreamCaptureStatus;

typedef enum {
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_STREAM_CAPTURE_MODE_RELAXED = 2,
} CUstreamCaptureMode;

/* the special streams */
#define CU_STREAM_LEGACY ((CUstream)0x1)
#define CU_STREAM_PER_THREAD ((CUstream)0x2)

typedef struct CUlaunchAttribute_st CUlaunchAttribute;
typedef struct {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    CUlaunchAttribute *attrs;
    unsigned int numAttrs;
} CUlaunchConfig;

typedef struct {
    CUfunction func;
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    void **kernelParams;
    void **extra;
} CUDA_KERNEL_NODE_PARAMS;

#define CU_MEMHOSTALLOC_PORTABLE 0x01
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02
#define CU_MEM_ATTACH_GLOBAL 0x1
#define CU_EVENT_DEFAULT 0x0

/* cuGetProcAddress flags and (v2) query results */
#define CU_GET_PROC_ADDRESS_DEFAULT 0
#define CU_GET_PROC_ADDRESS_LEGACY_STREAM (1ULL << 0)
#define CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM (1ULL << 1)
typedef enum {
    CU_GET_PROC_ADDRESS_SUCCESS = 0,
    CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
    CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2,
} CUdriverProcAddressQueryResult;

/* The driver API functions we interpose or call, as X(ret, name, params, args).
 * One list keeps the declarations, the shim's table of real entry points and
 * the fake driver's exports in step. */
#define GP_CUDA_CALLS(X) \
    X(cuInit, (unsigned int flags), (flags)) \
    X(cuDriverGetVersion, (int *v), (v)) \
    X(cuDeviceGet, (CUdevice *dev, int ordinal), (dev, ordinal)) \
    X(cuDeviceGetCount, (int *count), (count)) \
    X(cuDeviceGetUuid, (CUuuid *uuid, CUdevice dev), (uuid, dev)) \
    X(cuDeviceGetUuid_v2, (CUuuid *uuid, CUdevice dev), (uuid, dev)) \
    X(cuDeviceTotalMem_v2, (size_t *bytes, CUdevice dev), (bytes, dev)) \
    X(cuCtxCreate_v2, (CUcontext *pctx, unsigned int flags, CUdevice dev), (pctx, flags, dev)) \
    X(cuCtxCreate_v3, (CUcontext *pctx, void *params, int nparams, unsigned int flags, CUdevice dev), (pctx, params, nparams, flags, dev)) \
    X(cuCtxCreate_v4, (CUcontext *pctx, void *params, unsigned int flags, CUdevice dev), (pctx, params, flags, dev)) \
    X(cuCtxDestroy_v2, (CUcontext ctx), (ctx)) \
    X(cuCtxGetCurrent, (CUcontext *pctx), (pctx)) \
    X(cuCtxSetCurrent, (CUcontext ctx), (ctx)) \
    X(cuCtxGetDevice, (CUdevice *dev), (dev)) \
    X(cuCtxSynchronize, (void), ()) \
    X(cuDevicePrimaryCtxRetain, (CUcontext *pctx, CUdevice dev), (pctx, dev)) \
    X(cuDevicePrimaryCtxRelease_v2, (CUdevice dev), (dev)) \
    X(cuDevicePrimaryCtxReset_v2, (CUdevice dev), (dev)) \
    X(cuDeviceGetAttribute, (int *value, CUdevice_attribute attr, CUdevice dev), (value, attr, dev)) \
    X(cuCtxSetLimit, (CUlimit limit, size_t value), (limit, value)) \
    X(cuCtxGetLimit, (size_t *value, CUlimit limit), (value, limit)) \
    X(cuCtxPushCurrent_v2, (CUcontext ctx), (ctx)) \
    X(cuCtxPopCurrent_v2, (CUcontext *pctx), (pctx)) \
    X(cuMemGetInfo_v2, (size_t *free_b, size_t *total), (free_b, total)) \
    X(cuMemAlloc_v2, (CUdeviceptr *dptr, size_t bytes), (dptr, bytes)) \
    X(cuMemAllocPitch_v2, (CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int elem), (dptr, pitch, width, height, elem)) \
    X(cuMemAllocManaged, (CUdeviceptr *dptr, size_t bytes, unsigned int flags), (dptr, bytes, flags)) \
    X(cuMemFree_v2, (CUdeviceptr dptr), (dptr)) \
    X(cuMemAllocAsync, (CUdeviceptr *dptr, size_t bytes, CUstream s), (dptr, bytes, s)) \
    X(cuMemAllocAsync_ptsz, (CUdeviceptr *dptr, size_t bytes, CUstream s), (dptr, bytes, s)) \
    X(cuMemAllocFromPoolAsync, (CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream s), (dptr, bytes, pool, s)) \
    X(cuMemAllocFromPoolAsync_ptsz, (CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream s), (dptr, bytes, pool, s)) \
    X(cuMemFreeAsync, (CUdeviceptr dptr, CUstream s), (dptr, s)) \
    X(cuMemFreeAsync_ptsz, (CUdeviceptr dptr, CUstream s), (dptr, s)) \
    X(cuDeviceGetDefaultMemPool, (CUmemoryPool *pool, CUdevice dev), (pool, dev)) \
    X(cuDeviceGetMemPool, (CUmemoryPool *pool, CUdevice dev), (pool, dev)) \
    X(cuDeviceSetMemPool, (CUdevice dev, CUmemoryPool pool), (dev, pool)) \
    X(cuMemPoolCreate, (CUmemoryPool *pool, const CUmemPoolProps *props), (pool, props)) \
    X(cuMemPoolDestroy, (CUmemoryPool pool), (pool)) \
    X(cuMemPoolTrimTo, (CUmemoryPool pool, size_t keep), (pool, keep)) \
    X(cuMemPoolSetAttribute, (CUmemoryPool pool, CUmemPool_attribute attr, void *value), (pool, attr, value)) \
    X(cuMemPoolGetAttribute, (CUmemoryPool pool, CUmemPool_attribute attr, void *value), (pool, attr, value)) \
    X(cuMemGetAllocationGranularity, (size_t *gran, const CUmemAllocationProp *prop, CUmemAllocationGranularity_flags option), (gran, prop, option)) \
    X(cuMemCreate, (CUmemGenericAllocationHandle *h, size_t bytes, const CUmemAllocationProp *prop, unsigned long long flags), (h, bytes, prop, flags)) \
    X(cuMemRelease, (CUmemGenericAllocationHandle h), (h)) \
    X(cuMemAddressReserve, (CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr, unsigned long long flags), (ptr, size, align, addr, flags)) \
    X(cuMemAddressFree, (CUdeviceptr ptr, size_t size), (ptr, size)) \
    X(cuMemMap, (CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h, unsigned long long flags), (ptr, size, offset, h, flags)) \
    X(cuMemUnmap, (CUdeviceptr ptr, size_t size), (ptr, size)) \
    X(cuMemSetAccess, (CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count), (ptr, size, desc, count)) \
    X(cuMemRetainAllocationHandle, (CUmemGenericAllocationHandle *h, void *addr), (h, addr)) \
    X(cuMemExportToShareableHandle, (void *shareable, CUmemGenericAllocationHandle h, CUmemAllocationHandleType type, unsigned long long flags), (shareable, h, type, flags)) \
    X(cuMemImportFromShareableHandle, (CUmemGenericAllocationHandle *h, void *os_handle, CUmemAllocationHandleType type), (h, os_handle, type)) \
    X(cuMemHostAlloc, (void **pp, size_t bytes, unsigned int flags), (pp, bytes, flags)) \
    X(cuMemHostGetDevicePointer_v2, (CUdeviceptr *dptr, void *p, unsigned int flags), (dptr, p, flags)) \
    X(cuMemFreeHost, (void *p), (p)) \
    X(cuArrayCreate_v2, (CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc), (arr, desc)) \
    X(cuArray3DCreate_v2, (CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc), (arr, desc)) \
    X(cuArrayDestroy, (CUarray arr), (arr)) \
    X(cuMipmappedArrayCreate, (CUmipmappedArray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned int levels), (arr, desc, levels)) \
    X(cuMipmappedArrayDestroy, (CUmipmappedArray arr), (arr)) \
    X(cuModuleLoadData, (CUmodule *mod, const void *image), (mod, image)) \
    X(cuModuleGetFunction, (CUfunction *f, CUmodule mod, const char *name), (f, mod, name)) \
    X(cuStreamCreate, (CUstream *s, unsigned int flags), (s, flags)) \
    X(cuStreamSynchronize, (CUstream s), (s)) \
    X(cuStreamGetCtx, (CUstream s, CUcontext *pctx), (s, pctx)) \
    X(cuEventCreate, (CUevent *e, unsigned int flags), (e, flags)) \
    X(cuEventDestroy_v2, (CUevent e), (e)) \
    X(cuEventRecord, (CUevent e, CUstream s), (e, s)) \
    X(cuEventRecord_ptsz, (CUevent e, CUstream s), (e, s)) \
    X(cuEventQuery, (CUevent e), (e)) \
    X(cuEventSynchronize, (CUevent e), (e)) \
    X(cuEventElapsedTime, (float *ms, CUevent start, CUevent end), (ms, start, end)) \
    X(cuLaunchKernel, (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **params, void **extra), (f, gx, gy, gz, bx, by, bz, shmem, s, params, extra)) \
    X(cuLaunchKernel_ptsz, (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **params, void **extra), (f, gx, gy, gz, bx, by, bz, shmem, s, params, extra)) \
    X(cuLaunchKernelEx, (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra), (cfg, f, params, extra)) \
    X(cuLaunchKernelEx_ptsz, (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra), (cfg, f, params, extra)) \
    X(cuLaunchCooperativeKernel, (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **params), (f, gx, gy, gz, bx, by, bz, shmem, s, params)) \
    X(cuLaunchCooperativeKernel_ptsz, (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **params), (f, gx, gy, gz, bx, by, bz, shmem, s, params)) \
    X(cuGraphCreate, (CUgraph *g, unsigned int flags), (g, flags)) \
    X(cuGraphAddKernelNode_v2, (CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps, const CUDA_KERNEL_NODE_PARAMS *params), (node, g, deps, ndeps, params)) \
    X(cuGraphInstantiateWithFlags, (CUgraphExec *exec, CUgraph g, unsigned long long flags), (exec, g, flags)) \
    X(cuGraphAddMemAllocNode, (CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS *params), (node, g, deps, ndeps, params)) \
    X(cuGraphAddMemFreeNode, (CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps, CUdeviceptr dptr), (node, g, deps, ndeps, dptr)) \
    X(cuGraphDestroy, (CUgraph g), (g)) \
    X(cuGraphExecDestroy, (CUgraphExec exec), (exec)) \
    X(cuDeviceGraphMemTrim, (CUdevice dev), (dev)) \
    X(cuDeviceGetGraphMemAttribute, (CUdevice dev, CUgraphMem_attribute attr, void *value), (dev, attr, value)) \
    X(cuStreamBeginCapture_v2, (CUstream s, CUstreamCaptureMode mode), (s, mode)) \
    X(cuStreamEndCapture, (CUstream s, CUgraph *g), (s, g)) \
    X(cuStreamIsCapturing, (CUstream s, CUstreamCaptureStatus *status), (s, status)) \
    X(cuGraphLaunch, (CUgraphExec exec, CUstream s), (exec, s)) \
    X(cuGraphLaunch_ptsz, (CUgraphExec exec, CUstream s), (exec, s)) \
    X(cuGetProcAddress, (const char *sym, void **pfn, int ver, cuuint64_t flags), (sym, pfn, ver, flags)) \
    X(cuGetProcAddress_v2, (const char *sym, void **pfn, int ver, cuuint64_t flags, CUdriverProcAddressQueryResult *status), (sym, pfn, ver, flags, status))

#define GP_CUDA_DECLARE(name, params, args) CUresult name params;
GP_CUDA_CALLS(GP_CUDA_DECLARE)
#undef GP_CUDA_DECLARE

/* ---------------------------------------------------------------- NVML */

typedef enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_UNKNOWN = 999,
} nvmlReturn_t;

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

#define NVML_STRUCT_VERSION(name, ver) (unsigned int)(sizeof(name##_t) | ((ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(nvmlMemory_v2, 2)

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

#define GP_NVML_CALLS(X) \
    X(nvmlInit_v2, (void), ()) \
    X(nvmlShutdown, (void), ()) \
    X(nvmlDeviceGetCount_v2, (unsigned int *count), (count)) \
    X(nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t *dev), (index, dev)) \
    X(nvmlDeviceGetUUID, (nvmlDevice_t dev, char *uuid, unsigned int len), (dev, uuid, len)) \
    X(nvmlDeviceGetMemoryInfo, (nvmlDevice_t dev, nvmlMemory_t *mem), (dev, mem)) \
    X(nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t dev, nvmlMemory_v2_t *mem), (dev, mem)) \
    X(nvmlDeviceGetUtilizationRates, (nvmlDevice_t dev, nvmlUtilization_t *util), (dev, util))

#define GP_NVML_DECLARE(name, params, args) nvmlReturn_t name params;
GP_NVML_CALLS(GP_NVML_DECLARE)
#undef GP_NVML_DECLARE

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from a CUuuid, as NVML prints it. */
static inline void gp_cuda_uuid_string(const CUuuid *u, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const char *prefix = "GPU-";
    for (; prefix[o] != '\0' && o + 1 < len; o++)
        out[o] = prefix[o];
    for (int i = 0; i < 16 && o + 3 < len; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        unsigned char b = (unsigned char)u->bytes[i];
        out[o++] = hex[b >> 4];
        out[o++] = hex[b & 15];
    }
    if (len > 0)
        out[o < len ? o : len - 1] = '\0';
}

#endif
