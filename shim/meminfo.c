/*
 * meminfo.c - what the job sees of memory: its slice, not the device.
 *
 * cuMemGetInfo, cuDeviceTotalMem and NVML's nvmlDeviceGetMemoryInfo (and
 * _v2) all answer from the same numbers, read from the region, so that every
 * process of the slice and both APIs agree:
 *
 *   total = the slice's limit (or the device's size when smaller / no limit)
 *   used  = what the whole slice has counted
 *   free  = total - used, and never more than the device really has free
 *           (unless the slice oversubscribes: it may then use host memory)
 *
 * NVML names devices by handle, not by CUDA ordinal: a handle maps to the
 * slice device with the same UUID (the region records each device's UUID;
 * when none is recorded yet, the shim asks the CUDA driver).  A device that
 * is not the slice's is reported as NVML reports it.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

static void s_slice_view(int dev, uint64_t real_total, uint64_t real_free, uint64_t *total,
                         uint64_t *free_b, uint64_t *used)
{
    gp_slice_device_t *d = gp_shim.dev[dev];
    uint64_t limit = atomic_load_explicit(&d->mem_limit, memory_order_relaxed);
    uint64_t u = atomic_load_explicit(&d->mem_used, memory_order_relaxed);
    uint64_t t = limit < real_total || gp_shim.oversubscribe ? limit : real_total;
    if (t == UINT64_MAX)
        t = real_total;
    uint64_t f = u < t ? t - u : 0;
    if (!gp_shim.oversubscribe && f > real_free)
        f = real_free;
    *total = t;
    *free_b = f;
    *used = u;
}

GP_EXPORT CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
    GP_ENTER();
    if (gp_real.cuMemGetInfo_v2 == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    size_t rf = 0, rt = 0;
    CUresult rc = gp_real.cuMemGetInfo_v2(&rf, &rt);
    if (rc != CUDA_SUCCESS || !gp_shim.active)
        goto out;
    int dev = gp_shim_current_dev();
    if (dev < 0)
        goto out;
    /* pools give memory back at synchronisation: count what they hold now */
    gp_pools_settle_dev(dev);
    gp_graph_settle_dev(dev);
    uint64_t t, f, u;
    s_slice_view(dev, rt, rf, &t, &f, &u);
    rf = (size_t)f;
    rt = (size_t)t;
out:
    if (rc == CUDA_SUCCESS) {
        if (free_b != NULL)
            *free_b = rf;
        if (total != NULL)
            *total = rt;
    }
    return rc;
}

GP_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    GP_ENTER();
    if (gp_real.cuDeviceTotalMem_v2 == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = gp_real.cuDeviceTotalMem_v2(bytes, dev);
    if (rc != CUDA_SUCCESS || !gp_shim.active || dev < 0 || dev >= gp_shim.ndev)
        return rc;
    uint64_t limit = atomic_load_explicit(&gp_shim.dev[dev]->mem_limit, memory_order_relaxed);
    if (limit < *bytes || (gp_shim.oversubscribe && limit != UINT64_MAX))
        *bytes = (size_t)limit;
    return rc;
}

/* The slice device of an NVML handle, or -1.  The region records each
 * device's UUID once the process has a context there; until then the
 * slice's devices are found without initialising CUDA (an NVML query must
 * not do that in a process that never did): from CUDA_VISIBLE_DEVICES when
 * it lists UUIDs (as the agent sets it: slice device i is its i-th), else
 * by NVML index (slice device i is NVML device i, the order the CUDA
 * driver uses when CUDA_DEVICE_ORDER=PCI_BUS_ID -- and asked of the CUDA
 * driver instead when this process has initialised it). */
static int s_nvml_dev(nvmlDevice_t h)
{
    char uuid[96];
    if (gp_real.nvmlDeviceGetUUID == NULL || gp_real.nvmlDeviceGetUUID(h, uuid, sizeof uuid) != NVML_SUCCESS)
        return -1;
    int dev = gp_slice_region_find_uuid(gp_shim.region, uuid);
    if (dev >= 0)
        return dev;
    int missing = 0;
    for (int d = 0; d < gp_shim.ndev; d++)
        missing |= gp_shim.dev[d]->uuid[0] == '\0';
    if (!missing)
        return -1;
    /* CUDA initialised by the program: the driver knows its devices */
    int count = 0;
    if (gp_real.cuDeviceGetCount != NULL && gp_real.cuDeviceGetCount(&count) == CUDA_SUCCESS) {
        for (int d = 0; d < gp_shim.ndev && d < count; d++)
            gp_shim_learn_uuid(d);
        return gp_slice_region_find_uuid(gp_shim.region, uuid);
    }
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (vis != NULL && strncmp(vis, "GPU-", 4) == 0) {
        char list[1024];
        gp_strlcpy(list, vis, sizeof list);
        char *save = NULL;
        int d = 0;
        for (char *tok = strtok_r(list, ",", &save); tok != NULL && d < gp_shim.ndev;
             tok = strtok_r(NULL, ",", &save), d++)
            if (strcmp(tok, uuid) == 0)
                return d;
        return -1;
    }
    if (gp_real.nvmlDeviceGetHandleByIndex_v2 == NULL)
        return -1;
    for (int d = 0; d < gp_shim.ndev; d++) {
        nvmlDevice_t hd;
        if (gp_real.nvmlDeviceGetHandleByIndex_v2((unsigned)d, &hd) == NVML_SUCCESS && hd == h)
            return d;
    }
    return -1;
}

/* Replace NVML's device totals with the slice's view (both NVML memory
 * queries); 1 when the device is in the slice and was rewritten. */
static int s_nvml_view(nvmlDevice_t h, unsigned long long *total, unsigned long long *free_b,
                       unsigned long long *used)
{
    int dev = gp_shim.active ? s_nvml_dev(h) : -1;
    if (dev < 0)
        return 0;
    uint64_t t, f, u;
    s_slice_view(dev, *total, *free_b, &t, &f, &u);
    *total = t;
    *free_b = f;
    *used = u;
    return 1;
}

GP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *mem)
{
    GP_ENTER();
    if (gp_real.nvmlDeviceGetMemoryInfo == NULL)
        return NVML_ERROR_UNINITIALIZED;
    nvmlReturn_t rc = gp_real.nvmlDeviceGetMemoryInfo(h, mem);
    if (rc == NVML_SUCCESS && mem != NULL)
        s_nvml_view(h, &mem->total, &mem->free, &mem->used);
    return rc;
}

GP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t h, nvmlMemory_v2_t *mem)
{
    GP_ENTER();
    if (gp_real.nvmlDeviceGetMemoryInfo_v2 == NULL)
        return NVML_ERROR_UNINITIALIZED;
    nvmlReturn_t rc = gp_real.nvmlDeviceGetMemoryInfo_v2(h, mem);
    if (rc == NVML_SUCCESS && mem != NULL && s_nvml_view(h, &mem->total, &mem->free, &mem->used))
        mem->reserved = 0;
    return rc;
}
