/*
 * fakenvml.c - a fake NVML, built as libnvidia-ml.so.1 for the tests, over
 * the same simulated devices as the fake driver (fakestate.h).
 *
 * Memory info is the device's: total, and what every process uses.
 * Utilization is the share of the simulated device clock that kernels kept
 * the device busy since this process's previous query of that device (the
 * first query of a device starts the window and reports 0) -- the real
 * NVML averages over its own sample period instead.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_api.h"
#include "fakestate.h"

#include "banned.h"

#define EXPORT __attribute__((visibility("default")))

struct nvmlDevice_st {
    int index;
    int64_t prev_t;
    uint64_t prev_busy;
};
static struct nvmlDevice_st s_devs[FAKE_MAX_DEVICES];
static fake_state_t *S;

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    S = fake_state_get();
    if (S == NULL)
        return NVML_ERROR_UNKNOWN;
    for (int i = 0; i < FAKE_MAX_DEVICES; i++)
        s_devs[i].index = i;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (S == NULL)
        return NVML_ERROR_UNINITIALIZED;
    *count = (unsigned)S->ndevices;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev)
{
    if (S == NULL)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= (unsigned)S->ndevices || dev == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *dev = &s_devs[index];
    return NVML_SUCCESS;
}

#define CHECK(dev) do { \
        if (S == NULL) return NVML_ERROR_UNINITIALIZED; \
        if ((dev) < &s_devs[0] || (dev) >= &s_devs[S->ndevices]) return NVML_ERROR_INVALID_ARGUMENT; \
    } while (0)

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int len)
{
    CHECK(dev);
    CUuuid u;
    fake_uuid(dev->index, u.bytes);
    char s[64];
    gp_cuda_uuid_string(&u, s, sizeof s);
    if (strlen(s) >= len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(uuid, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *mem)
{
    CHECK(dev);
    fake_reclaim(S);
    fake_device_t *d = &S->dev[dev->index];
    uint64_t used = fake_mem_used(S, (int)(d - S->dev));
    mem->total = d->total;
    mem->used = used;
    mem->free = used < d->total ? d->total - used : 0;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *mem)
{
    CHECK(dev);
    if (mem == NULL || mem->version != nvmlMemory_v2)
        return NVML_ERROR_INVALID_ARGUMENT;
    nvmlMemory_t m;
    nvmlDeviceGetMemoryInfo(dev, &m);
    mem->total = m.total;
    mem->reserved = 0;
    mem->free = m.free;
    mem->used = m.used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util)
{
    CHECK(dev);
    int64_t now = fake_now_ns();
    uint64_t busy = fake_busy_ns(S, dev->index, now);
    unsigned pct = 0;
    if (dev->prev_t != 0 && now > dev->prev_t)
        pct = (unsigned)((double)(busy - dev->prev_busy) * 100.0 / (double)(now - dev->prev_t) + 0.5);
    dev->prev_t = now;
    dev->prev_busy = busy;
    util->gpu = pct > 100 ? 100 : pct;
    util->memory = 0;
    return NVML_SUCCESS;
}

/* What the node agent's discovery asks besides.  The name is
 * FAKECUDA_MODEL (default "FakeGPU"); NVLink peers are FAKECUDA_NVLINK,
 * pairs of device indexes "0-1,2-3" (default none); NUMA nodes are
 * FAKECUDA_NUMA, one per device "0,0,1,1" (default 0). */
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int len);
EXPORT nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, int caps, int *status);
EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t dev, unsigned int *node);

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int len)
{
    CHECK(dev);
    const char *m = getenv("FAKECUDA_MODEL");
    if (len == 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(name, len, "%s", m && *m ? m : "FakeGPU");
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, int caps, int *status)
{
    CHECK(a);
    CHECK(b);
    const char *links = getenv("FAKECUDA_NVLINK");
    *status = 4;   /* NVML_P2P_STATUS_NOT_SUPPORTED */
    if (caps != 2 || links == NULL)   /* 2: NVML_P2P_CAPS_INDEX_NVLINK */
        return NVML_SUCCESS;
    for (const char *p = links; *p;) {
        int x, y, n = 0;
        if (sscanf(p, "%d-%d%n", &x, &y, &n) != 2)
            break;
        if ((x == a->index && y == b->index) || (y == a->index && x == b->index))
            *status = 0;   /* NVML_P2P_STATUS_OK */
        p += n;
        if (*p == ',')
            p++;
    }
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t dev, unsigned int *node)
{
    CHECK(dev);
    const char *numa = getenv("FAKECUDA_NUMA");
    unsigned v = 0;
    for (int i = 0; numa && *numa; i++) {
        unsigned x;
        int n = 0;
        if (sscanf(numa, "%u%n", &x, &n) != 1)
            break;
        if (i == dev->index)
            v = x;
        numa += n;
        if (*numa == ',')
            numa++;
    }
    *node = v;
    return NVML_SUCCESS;
}
