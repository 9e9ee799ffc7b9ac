/*
 * slice_region.h - the per-slice shared accounting region.
 *
 * A slice (one job's share of one or more GPUs) has one accounting region:
 * a small file, mapped shared by every process of the job (through the
 * shim, libgpupool-shim.so) and by the node agent.  It holds, per device of
 * the slice, the memory limit and what the whole slice uses, the compute
 * limiter's shared clock, and counters the agent reports; and one slot per
 * live process, with what that process holds, so that the usage of a
 * process that died is given back (gp_slice_region_reclaim).
 *
 * The slice contract (set by the agent in the job's environment, read by
 * the shim at start-up; garbage in any of them stops the process at
 * start-up with a message naming the variable):
 *
 *   GP_SLICE_REGION       path of this region's file.  The agent creates it
 *                         (gp_slice_region_open with a config) in a
 *                         directory it chooses, one directory per node; the
 *                         first process of the job creates it from the
 *                         variables below when it is missing.  Unset: the
 *                         shim passes every call through untouched.
 *   GP_SLICE_MEM_LIMIT    memory limit per device, a size in MiB ("512",
 *                         "512M", "4G", "4GiB"); a comma-separated list
 *                         gives one per device, a single value applies to
 *                         all.  Default: no limit (the device's memory).
 *   GP_SLICE_COMPUTE      compute cap per device, percent of the GPU's time,
 *                         1..100, list or single value.  Default 100 (no cap).
 *   GP_SLICE_PRIORITY     "low", "normal" or "high".  Default "normal"
 *                         (gp_slice_priority_of maps a job's priority).  A
 *                         high-priority slice that launches kernels on a GPU
 *                         suspends the launches of low-priority slices on
 *                         that GPU (their memory stays).
 *   GP_SLICE_PRIORITY_IDLE_MS  how long a high-priority slice must have been
 *                         idle (no launch) before low-priority slices resume,
 *                         a duration ("500ms", "2s", bare number = ms).
 *                         Default 500 ms.
 *   GP_SLICE_OVERSUBSCRIBE "0" or "1".  When 1, an allocation the device
 *                         cannot hold any more is served from mapped pinned
 *                         host memory, within the slice's limit, and counted
 *                         as host-backed.  Default 0.
 *   GP_SLICE_CTX_OVERHEAD_MIB  memory counted per process and device for a
 *                         CUDA context, MiB.  Default 0 (set it to the
 *                         measured context size of the GPU model).
 *   GP_SLICE_DEVICES      number of devices in the slice, 1..16, when the
 *                         region must be created by the shim.  Default: the
 *                         length of the longest list above, or 1.
 *   GP_SHIM_LOG           shim log level: debug, info, warn, error.
 *                         Default warn.
 *
 * Device i of the region is CUDA device ordinal i of the job (the agent
 * sets CUDA_VISIBLE_DEVICES in the same order).  Each device records the
 * GPU's UUID ("GPU-xxxxxxxx-..."), filled by the agent or by the first
 * process that opens a context, so that NVML handles map to it.
 *
 * Invariants, all kept under the region's lock (a spinlock word holding the
 * owner's pid, held only for a few loads and stores, never across a driver
 * call; a waiter that finds the owner dead takes the lock over):
 *   dev.mem_used  == sum over process slots of slot.used[dev]
 *   dev.host_used == sum over process slots of slot.host[dev]
 *   dev.mem_used  <= dev.mem_limit after every successful reservation.
 * A process that dies holding the lock leaves the next locker to rebuild
 * the device totals from the slots; a process that dies at any other point
 * leaves its slot, which reclaim subtracts and clears.  So the sum is exact
 * whatever is killed when.
 *
 * The reservation protocol (the shim): reserve(bytes) before calling the
 * driver -- over the limit it fails and nothing is counted; if the driver
 * call then fails, release(bytes).  Concurrent processes therefore can
 * never pass the limit together.  Release never goes below zero.
 *
 * Agent calling sequence:
 *     gp_slice_config_t cfg = {...};
 *     gp_slice_region_t *r = gp_slice_region_open(path, &cfg, &err);
 *     ... start the job with GP_SLICE_REGION=path ...
 *     every few seconds: gp_slice_region_reclaim(r); gp_slice_region_usage(r, d, &u);
 *     gp_slice_region_set_suspended(r, -1, 1) to stop its launches, 0 to resume;
 *     gp_slice_region_close(&r); unlink(path) once the job is gone.
 *
 * The per-GPU priority state (gp_gpu_state_*) is a second, tiny file per
 * physical GPU, "gpu-<UUID>.state" in the region's directory, shared by all
 * slices on the node: a high-priority slice stamps it on every launch, and
 * low-priority slices read it.
 *
 * Thread safety: every function may be called from any thread and process.
 * The layout below is the file format (version GP_SLICE_REGION_VERSION).
 */
#ifndef GP_SLICE_REGION_H
#define GP_SLICE_REGION_H

#include <stdatomic.h>
#include <stdint.h>

#include "err.h"

#define GP_SLICE_REGION_MAGIC   0x3130505553504721ULL /* "!GPSUP01" */
#define GP_SLICE_REGION_VERSION 1
#define GP_SLICE_MAX_DEVICES    16
#define GP_SLICE_MAX_PROCS      512
#define GP_SLICE_UUID_LEN       64

typedef enum {
    GP_SLICE_PRIO_LOW = 0,
    GP_SLICE_PRIO_NORMAL = 1,
    GP_SLICE_PRIO_HIGH = 2,
} gp_slice_priority_t;

/* One device of the slice, in the shared file. */
typedef struct {
    char uuid[GP_SLICE_UUID_LEN];        /* "GPU-...", or "" while unknown */
    _Atomic uint64_t mem_limit;          /* bytes */
    _Atomic uint64_t mem_used;           /* bytes, the whole slice, host-backed included */
    _Atomic uint64_t host_used;          /* bytes of mem_used served from host memory */
    _Atomic uint64_t mem_peak;           /* highest mem_used seen */
    _Atomic uint32_t compute_pct;        /* 1..100 */
    _Atomic uint32_t suspended;          /* set by the agent: launches wait */
    _Atomic int64_t  vclock_ns;          /* the compute limiter's clock (see shim/compute.c) */
    _Atomic uint64_t charged_ns;         /* GPU time charged to the slice's launches */
    _Atomic uint64_t launches;           /* kernel and graph launches */
    _Atomic uint64_t throttled_ns;       /* time launches waited for compute budget */
    _Atomic uint64_t suspended_ns;       /* time launches waited while suspended */
    _Atomic uint64_t oom_count;          /* allocations refused over the limit */
    uint8_t pad[256 - GP_SLICE_UUID_LEN - 8 * 4 - 4 * 2 - 8 * 6];
} gp_slice_device_t;

/* One process of the job. */
typedef struct {
    _Atomic int32_t pid;                 /* 0: free */
    uint32_t pad;
    uint64_t starttime;                  /* /proc/<pid>/stat field 22, against pid reuse */
    uint64_t used[GP_SLICE_MAX_DEVICES];
    uint64_t host[GP_SLICE_MAX_DEVICES];
} gp_slice_proc_t;

typedef struct {
    _Atomic uint64_t magic;              /* written last at creation */
    uint32_t version;
    uint32_t ndevices;
    uint64_t size;
    uint32_t priority;                   /* gp_slice_priority_t */
    uint32_t oversubscribe;
    _Atomic int32_t lock_owner;          /* pid holding the region's lock, 0: free */
    uint32_t pad0;
    uint8_t pad[128 - 40];
    gp_slice_device_t dev[GP_SLICE_MAX_DEVICES];
    gp_slice_proc_t proc[GP_SLICE_MAX_PROCS];
} gp_slice_layout_t;

typedef struct {
    int ndevices;
    gp_slice_priority_t priority;
    int oversubscribe;
    struct {
        char uuid[GP_SLICE_UUID_LEN];    /* may be "" */
        uint64_t mem_limit;              /* bytes; UINT64_MAX: no limit */
        unsigned compute_pct;            /* 1..100 */
    } dev[GP_SLICE_MAX_DEVICES];
} gp_slice_config_t;

typedef struct {
    uint64_t mem_limit, mem_used, host_used, mem_peak;
    unsigned compute_pct;
    int suspended;
    uint64_t charged_ns, launches, throttled_ns, suspended_ns, oom_count;
    int nprocs;                          /* processes holding a slot */
} gp_slice_usage_t;

typedef struct gp_slice_region gp_slice_region_t;

/* Map the region at path.  With create != NULL the file is created from it
 * when missing (atomically: a temporary file is linked into place, so that
 * concurrent creators agree on one); an existing file is used as it is.
 * With create == NULL the file must exist.  Caller owns the result. */
gp_slice_region_t *gp_slice_region_open(const char *path, const gp_slice_config_t *create,
                                        gp_err_t *err);
/* Unmap; sets *self_p to NULL.  Slots of this process are not released
 * (gp_slice_region_detach does that). */
void gp_slice_region_close(gp_slice_region_t **self_p);

int gp_slice_region_ndevices(const gp_slice_region_t *self);
gp_slice_priority_t gp_slice_region_priority(const gp_slice_region_t *self);
/* The slice priority a job of priority prio (-1000..1000, default 0) runs
 * at: >= 100 high, < 0 low, anything else -- the default 0 included --
 * normal, which is never held by a high-priority slice.  The name is
 * GP_SLICE_PRIORITY's value: "low", "normal", "high". */
gp_slice_priority_t gp_slice_priority_of(int prio);
const char *gp_slice_priority_name(gp_slice_priority_t p);
int gp_slice_region_oversubscribe(const gp_slice_region_t *self);
/* The device's shared record, for the shim's lock-free paths; NULL when
 * dev is out of range. */
gp_slice_device_t *gp_slice_region_device(gp_slice_region_t *self, int dev);

/* A consistent-enough snapshot of one device (each field read atomically). */
int gp_slice_region_usage(gp_slice_region_t *self, int dev, gp_slice_usage_t *out);
/* Suspend (on = 1) or resume the slice's launches on dev, or on all its
 * devices with dev = -1. */
int gp_slice_region_set_suspended(gp_slice_region_t *self, int dev, int on);
int gp_slice_region_set_mem_limit(gp_slice_region_t *self, int dev, uint64_t bytes);
/* Record the UUID of dev when the region has none yet. */
int gp_slice_region_set_uuid(gp_slice_region_t *self, int dev, const char *uuid);
/* The device whose UUID is uuid, or -1. */
int gp_slice_region_find_uuid(gp_slice_region_t *self, const char *uuid);

/* Give back the usage of every process that has exited (or whose pid now
 * names another process).  Returns how many slots were reclaimed, -1 on
 * error. */
int gp_slice_region_reclaim(gp_slice_region_t *self);

/* Process side.  attach claims a slot for pid (reclaiming dead processes
 * first when the table is full) and returns its index, or -1 when none is
 * free.  detach releases everything the slot holds and frees it. */
int gp_slice_region_attach(gp_slice_region_t *self, int pid);
void gp_slice_region_detach(gp_slice_region_t *self, int slot);

#define GP_SLICE_HOST 1   /* the bytes are served from host memory */

/* Reserve bytes on dev for the process in slot: 0 when it fits under the
 * limit (and is now counted), -1 when it does not (nothing counted). */
int gp_slice_region_reserve(gp_slice_region_t *self, int slot, int dev, uint64_t bytes,
                            int flags);
/* Give back bytes reserved earlier with the same flags; never below zero. */
void gp_slice_region_release(gp_slice_region_t *self, int slot, int dev, uint64_t bytes,
                             int flags);

/* Mark bytes already reserved (without GP_SLICE_HOST) as host-backed: they
 * stay counted once in mem_used and are added to host_used. */
void gp_slice_region_mark_host(gp_slice_region_t *self, int slot, int dev, uint64_t bytes);

/* ---- per-GPU priority state, "gpu-<UUID>.state" next to the regions ---- */

typedef struct {
    _Atomic uint64_t magic;
    _Atomic int64_t hp_last_active_ns;   /* CLOCK_MONOTONIC of a high-priority launch */
    _Atomic uint64_t hp_launches;
    uint8_t pad[64 - 24];
} gp_gpu_state_t;

/* Map (creating when missing) the state of the GPU uuid in directory dir.
 * Caller owns the result; release it with gp_gpu_state_close. */
gp_gpu_state_t *gp_gpu_state_open(const char *dir, const char *uuid, gp_err_t *err);
void gp_gpu_state_close(gp_gpu_state_t **self_p);

#endif
