/*
 * shim.h - what the shim's files share: the real driver's entry points,
 * the process's view of its slice, and the interposition tables.
 *
 * Lifecycle: a constructor parses the slice contract and maps the region
 * (shim.c); the real libcuda and libnvidia-ml are opened on the first call
 * that needs them (gp_shim_load, once, then a single load on each call);
 * a process claims a slot in the region on its first allocation or
 * context; at exit its slot is released; a forked child starts over with no
 * slot and no allocations (the parent's are the parent's).
 *
 * Files: shim.c (start-up, dlsym, cuGetProcAddress), memory.c (the
 * cuMemAlloc family and arrays), vmm.c (cuMemCreate and its handles and
 * mappings), pools.c (memory pools and stream-ordered allocations),
 * context.c (contexts, their overhead and limits), graph.c (graph memory
 * nodes), meminfo.c (what the job
 * sees: cuMemGetInfo, cuDeviceTotalMem, NVML), compute.c (launch metering
 * and priority), alloc_table.c (the process's allocations).
 *
 * Everything here has hidden visibility; only the interposed driver, NVML
 * and dlsym symbols are exported (GP_EXPORT).
 */
#ifndef GP_SHIM_H
#define GP_SHIM_H

#include <stdatomic.h>
#include <stdint.h>

#include "shim_config.h"
#include "cuda_api.h"
#include "slice_region.h"

#define GP_EXPORT __attribute__((visibility("default")))
#define GP_LIKELY(x) __builtin_expect(!!(x), 1)
#define GP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GP_TLS __thread __attribute__((tls_model("initial-exec")))

typedef struct {
#define GP_REAL_FIELD(name, params, args) CUresult (*name) params;
    GP_CUDA_CALLS(GP_REAL_FIELD)
#undef GP_REAL_FIELD
#define GP_REAL_NVML_FIELD(name, params, args) nvmlReturn_t (*name) params;
    GP_NVML_CALLS(GP_REAL_NVML_FIELD)
#undef GP_REAL_NVML_FIELD
} gp_real_t;

extern gp_real_t gp_real;
extern _Atomic int gp_loaded;
void gp_shim_load(void);

/* Call at the top of every wrapper: the real entry points are there after it. */
#define GP_ENTER() do { \
        if (GP_UNLIKELY(!atomic_load_explicit(&gp_loaded, memory_order_acquire))) gp_shim_load(); \
    } while (0)

/* Launch modes, from the configuration (compute.c). */
enum { GP_LAUNCH_PASS = 0, GP_LAUNCH_FAST, GP_LAUNCH_GATED };

typedef struct {
    int active;                                   /* a slice is enforced */
    gp_shim_config_t cfg;
    gp_slice_region_t *region;
    int ndev;
    gp_slice_device_t *dev[GP_SLICE_MAX_DEVICES];
    gp_slice_priority_t priority;
    int oversubscribe;
    int launch_mode;
    _Atomic int slot;                             /* -1 until the first reservation */
    _Atomic int ctx_counted[GP_SLICE_MAX_DEVICES];
    _Atomic uint64_t gran[GP_SLICE_MAX_DEVICES];  /* allocation granularity, 0 until known */
} gp_shim_t;

extern gp_shim_t gp_shim;

/* Reserve/release in the slice for this process (claiming its slot first
 * when needed).  0 / -1 (over the limit).  Over the limit, gp_shim_reserve
 * trims this process's memory pools on dev and reclaims the memory of dead
 * processes before refusing (it may call the driver: hold no lock);
 * gp_shim_reserve_now only tries. */
int gp_shim_reserve(int dev, uint64_t bytes, int flags);
int gp_shim_reserve_now(int dev, uint64_t bytes, int flags);
void gp_shim_release(int dev, uint64_t bytes, int flags);
/* Mark bytes this process has reserved on dev as served from host memory. */
void gp_shim_mark_host(int dev, uint64_t bytes);
/* The slice device of the calling thread's current context: 0 for a
 * one-device slice, else its ordinal; -1 when it has none or it is outside
 * the slice. */
int gp_shim_current_dev(void);
/* Count the context overhead of dev once for this process; 0 / -1. */
int gp_shim_count_context(int dev);
/* Learn the UUID of slice device dev (from the driver) into the region. */
void gp_shim_learn_uuid(int dev);
/* ... and its allocation granularity. */
void gp_shim_learn_device(int dev);

/* What an allocation of bytes occupies on slice device dev: whole pages of
 * the driver's allocation granularity (2 MiB until the driver says). */
#define GP_DEFAULT_GRANULARITY ((uint64_t)2 << 20)
uint64_t gp_shim_granularity_slow(int dev);
static inline uint64_t gp_shim_pages(int dev, uint64_t bytes)
{
    uint64_t g = atomic_load_explicit(&gp_shim.gran[dev], memory_order_relaxed);
    if (GP_UNLIKELY(g == 0))
        g = gp_shim_granularity_slow(dev);
    if (GP_UNLIKELY(bytes > UINT64_MAX - g))
        return UINT64_MAX;
    return (bytes + g - 1) & ~(g - 1);
}

/* The slice device of a context this process made (context.c): -1 outside
 * the slice, -2 unknown. */
int gp_shim_ctx_dev(CUcontext ctx);

/* Memory pools (pools.c): give back what this process's pools on dev hold
 * unused, and recount them; returns the bytes the slice got back. */
uint64_t gp_pools_trim(int dev);
/* Recount every pool of dev from the driver (what the job sees). */
void gp_pools_settle_dev(int dev);
/* Free a pool allocation (key) with fn: 1 when it was one (the driver's
 * answer in *rc), 0 when the shim does not know it as one. */
int gp_pools_free(uintptr_t key, CUresult (*fn)(CUdeviceptr, CUstream), CUstream s, CUresult *rc);

/* Graph memory (graph.c): gp_graph_mem_used is set once a graph of the
 * process allocates.  A launch of exec: reserve what its allocation nodes
 * need (held, per device): 1, or -1 over the limit; after the driver
 * call, recount (or give back on failure).  An
 * allocation on a capturing stream is the captured graph's: 1 recorded (do
 * not count it now), 0 not capturing, -1 cannot be recorded.  Trim and
 * recount the device's graph memory before a refusal (bytes got back), or
 * recount it. */
extern _Atomic int gp_graph_mem_used;
int gp_graph_launch_begin(CUgraphExec exec, uint64_t held[GP_SLICE_MAX_DEVICES]);
void gp_graph_launch_end(const uint64_t held[GP_SLICE_MAX_DEVICES], CUresult rc);
int gp_graph_captured(CUstream s, int dev, uint64_t bytes);
uint64_t gp_graph_trim(int dev);
void gp_graph_settle_dev(int dev);

/* Fork: the child keeps nothing of its parent's accounting. */
void gp_vmm_fork_child(void);
void gp_pools_fork_child(void);
void gp_ctx_fork_child(void);
void gp_graph_fork_child(void);
void gp_compute_init(void);
void gp_compute_fork_child(void);

#endif
