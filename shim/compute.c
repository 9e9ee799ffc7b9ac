/*
 * compute.c - kernel launches: the compute limiter and priority.
 *
 * Every launch path is metered: cuLaunchKernel, cuLaunchKernelEx,
 * cuLaunchCooperativeKernel and cuGraphLaunch, each with its per-thread
 * default stream (_ptsz) variant.
 *
 * THE COMPUTE LIMITER
 *
 * A slice with a cap of c% may keep the GPU busy c% of the time.  The
 * limiter charges each launch the GPU time it will take, and lets launches
 * through at the rate at which that time is earned -- a shared virtual
 * clock V per device (the GCRA form of a token bucket), in the region so
 * that every process of the slice draws on one budget:
 *
 *     launch of estimated cost e:
 *         wait until V <= now                 (the slice owes nothing)
 *         V = max(V, now - BURST) + e * 100 / c
 *
 * V runs ahead of the wall clock by the work already granted, scaled by
 * 100/c; a slice idle for a while may bank at most BURST of wall time (so a
 * burst of BURST*c/100 of GPU time after idling).  Over any long window the
 * slice is granted at most c% of the GPU's time plus that one burst.  Sleep
 * overshoot is not lost: V only moves when a launch is granted, so a late
 * wake-up leaves V further behind now, which the next launches use.  Since
 * launches are paced as they are queued, the GPU's queue holds at most a
 * burst of the slice's work, and the share holds on the GPU's clock over
 * short windows, not only on average over queue drains.  What remains is
 * the error of the cost estimates below.
 *
 * The cost of a launch comes from measurement, not from the launch's
 * shape: the limiter keeps a per-process table of the GPU time of each
 * (function, grid, block) or graph, learned by timing launches with a pair
 * of events around them (less the host time between the two records, which
 * on an idle GPU is idle time).  The first launch of a process is timed
 * synchronously (so nothing is queued unpaced); after that one launch every
 * PROBE_INTERVAL is timed asynchronously, and its events are read on a
 * later launch.  A timed launch also corrects V by the difference between
 * its estimate and its measured time.  A launch with no estimate yet is
 * charged the process's running average and timed.  Graphs are metered as
 * one unit, keyed by their executable graph.  Because the cost is measured
 * GPU time, the cap means the same on a small GPU and a large one, and a
 * kernel slowed by other work sharing the GPU is charged for the time it
 * occupied -- the cap errs towards the other slices.  (Sampling NVML's
 * utilization instead, as some limiters do, cannot tell one slice's kernels
 * from another's and reacts a sample period late.)
 *
 * The hot path under a cap that does not bind: one read of the coarse clock
 * (vDSO, no syscall; the precise clock only when V is ahead of the coarse
 * time), a table probe, and one compare-and-swap on V; nothing is locked
 * across the driver call, and the timing runs at most every PROBE_INTERVAL.
 *
 * PRIORITY
 *
 * A high-priority slice stamps the GPU's shared state file (gpu-<UUID>.state)
 * with the time of its launches (at most once per millisecond).  A
 * low-priority slice's launch waits while that stamp is younger than
 * GP_SLICE_PRIORITY_IDLE_MS, whatever its cap; its memory stays allocated.
 * The agent can also suspend a slice's launches through the region
 * (dev.suspended).  Waiting time is recorded in the region.
 */
#include "shim.h"
#include "share.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

#include "banned.h"

#define BURST_NS (100LL * 1000000)         /* wall time a slice may bank */
#define SHARE_BURST_NS (50LL * 1000000)    /* ... a share slice: its neighbours
                                            * wait behind its bursts */
#define S_BURST (gp_shim.cfg.compute_share ? SHARE_BURST_NS : BURST_NS)
#define PROBE_INTERVAL_NS (20LL * 1000000) /* one timed launch per interval */
#define POLL_INTERVAL_NS (1LL * 1000000)
#define SUSPEND_POLL_NS (1LL * 1000000)
#define EST_SLOTS 4096
#define MAX_PROBES 4

/* ------------------------------------------------------------ clock */

static inline int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The coarse clock (the last timer tick, a few ms behind, and several times
 * cheaper to read) is never ahead of the precise one: a launch it shows
 * owing nothing owes nothing. */
static inline int64_t s_coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_sleep_until(int64_t t)
{
    struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ------------------------------------------------------------ launch description */

enum { L_KERNEL, L_KERNEL_PTSZ, L_EX, L_EX_PTSZ, L_COOP, L_COOP_PTSZ, L_GRAPH, L_GRAPH_PTSZ };

typedef struct {
    int kind;
    CUfunction f;
    unsigned g[3], b[3], shmem;
    CUstream s;
    void **params, **extra;
    const CUlaunchConfig *cfg;
    CUgraphExec exec;
} s_launch_t;

static CUresult s_call(const s_launch_t *l)
{
    switch (l->kind) {
    case L_KERNEL:
        return gp_real.cuLaunchKernel(l->f, l->g[0], l->g[1], l->g[2], l->b[0], l->b[1], l->b[2],
                                      l->shmem, l->s, l->params, l->extra);
    case L_KERNEL_PTSZ:
        return gp_real.cuLaunchKernel_ptsz(l->f, l->g[0], l->g[1], l->g[2], l->b[0], l->b[1],
                                           l->b[2], l->shmem, l->s, l->params, l->extra);
    case L_EX:
        return gp_real.cuLaunchKernelEx(l->cfg, l->f, l->params, l->extra);
    case L_EX_PTSZ:
        return gp_real.cuLaunchKernelEx_ptsz(l->cfg, l->f, l->params, l->extra);
    case L_COOP:
        return gp_real.cuLaunchCooperativeKernel(l->f, l->g[0], l->g[1], l->g[2], l->b[0],
                                                 l->b[1], l->b[2], l->shmem, l->s, l->params);
    case L_COOP_PTSZ:
        return gp_real.cuLaunchCooperativeKernel_ptsz(l->f, l->g[0], l->g[1], l->g[2], l->b[0],
                                                      l->b[1], l->b[2], l->shmem, l->s,
                                                      l->params);
    case L_GRAPH:
        return gp_real.cuGraphLaunch(l->exec, l->s);
    default:
        return gp_real.cuGraphLaunch_ptsz(l->exec, l->s);
    }
}

static int s_ptsz(const s_launch_t *l) { return l->kind & 1; }

static uint64_t s_key(const s_launch_t *l)
{
    uint64_t h;
    if (l->kind >= L_GRAPH) {
        h = (uint64_t)(uintptr_t)l->exec * 0x9e3779b97f4a7c15ULL;
    } else {
        unsigned gx = l->g[0], gy = l->g[1], gz = l->g[2], bx = l->b[0], by = l->b[1], bz = l->b[2];
        if (l->cfg != NULL) {
            gx = l->cfg->gridDimX, gy = l->cfg->gridDimY, gz = l->cfg->gridDimZ;
            bx = l->cfg->blockDimX, by = l->cfg->blockDimY, bz = l->cfg->blockDimZ;
        }
        h = (uint64_t)(uintptr_t)l->f;
        h = (h ^ ((uint64_t)gx * gy * gz << 20)) * 0x9e3779b97f4a7c15ULL;
        h = (h ^ ((uint64_t)bx * by * bz)) * 0xff51afd7ed558ccdULL;
    }
    h ^= h >> 29;
    return h | 1;
}

/* ------------------------------------------------------------ cost estimates */

static struct {
    _Atomic uint64_t key;
    _Atomic int64_t ns;
} s_est[EST_SLOTS];
static _Atomic int64_t s_est_default = -1;

static int64_t s_est_get(uint64_t key)
{
    for (int i = 0; i < 8; i++) {
        size_t j = (size_t)(key + (uint64_t)i) & (EST_SLOTS - 1);
        uint64_t k = atomic_load_explicit(&s_est[j].key, memory_order_acquire);
        if (k == key)
            return atomic_load_explicit(&s_est[j].ns, memory_order_relaxed);
        if (k == 0)
            return -1;
    }
    return -1;
}

static int64_t s_blend(int64_t old, int64_t measured, int64_t w);

static void s_est_put(uint64_t key, int64_t measured)
{
    for (int i = 0; i < 8; i++) {
        size_t j = (size_t)(key + (uint64_t)i) & (EST_SLOTS - 1);
        uint64_t k = atomic_load_explicit(&s_est[j].key, memory_order_acquire);
        if (k == 0) {
            atomic_store_explicit(&s_est[j].ns, measured, memory_order_relaxed);
            if (atomic_compare_exchange_strong(&s_est[j].key, &k, key))
                break;
        }
        if (k == key) {
            int64_t old = atomic_load_explicit(&s_est[j].ns, memory_order_relaxed);
            atomic_store_explicit(&s_est[j].ns, s_blend(old, measured, 4), memory_order_relaxed);
            break;
        }
    }
    int64_t d = atomic_load(&s_est_default);
    atomic_store(&s_est_default, s_blend(d, measured, 8));
}

/* The estimate of a key after a new measurement.  A cap slice averages (a
 * kernel slowed by other slices' work is charged the time it occupied).  A
 * share slice runs on a GPU its neighbours keep busy by design, so nearly
 * every measurement includes time spent behind their kernels (they
 * interleave with its own): a measurement is the kernel's time plus that
 * wait, so the smallest one seen is the closest to the kernel's own time,
 * and that is what a share slice is charged.  (A kernel whose time grows
 * with its data under one key is undercharged by the growth: the price of
 * not charging a share slice for its neighbours' work.) */
static int64_t s_blend(int64_t old, int64_t measured, int64_t w)
{
    if (old < 0)
        return measured;
    if (gp_shim.cfg.compute_share)
        return measured < old ? measured : old;
    return (old * (w - 1) + measured) / w;
}

/* ------------------------------------------------------------ the virtual clock */

/* Charge cost ns of GPU time to dev's clock (or, negative, refund it). */
static void s_charge(gp_slice_device_t *d, int64_t cost, unsigned cap, int64_t now)
{
    int64_t scaled = cost * 100 / (int64_t)cap;
    int64_t v = atomic_load_explicit(&d->vclock_ns, memory_order_relaxed);
    int64_t nv;
    do {
        int64_t base = v > now - S_BURST ? v : now - S_BURST;
        nv = base + scaled;
    } while (!atomic_compare_exchange_weak_explicit(&d->vclock_ns, &v, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (cost > 0)
        atomic_fetch_add_explicit(&d->charged_ns, (uint64_t)cost, memory_order_relaxed);
    else if (cost < 0)
        atomic_fetch_sub_explicit(&d->charged_ns, (uint64_t)-cost, memory_order_relaxed);
}

/* Wait until the slice owes nothing on dev, then charge cost.  Returns the
 * time after waiting. */
static int64_t s_meter(int dev, gp_slice_device_t *d, int64_t cost, unsigned cap, int64_t now)
{
    int64_t scaled = cost * 100 / (int64_t)cap;
    int64_t waited_from = 0;
    int64_t v = atomic_load_explicit(&d->vclock_ns, memory_order_relaxed);
    if (v > now)
        now = s_now();   /* the coarse time was not enough to decide */
    for (;;) {
        if (v > now) {
            if (waited_from == 0)
                waited_from = now;
            if (gp_shim.cfg.compute_share) {
                /* stay marked busy while waiting, in steps shorter than
                 * the share table's busy window */
                gp_share_touch(dev, now);
                s_sleep_until(v < now + GP_SHARE_BUSY_NS / 5 ? v : now + GP_SHARE_BUSY_NS / 5);
            } else {
                s_sleep_until(v);
            }
            now = s_now();
            v = atomic_load_explicit(&d->vclock_ns, memory_order_relaxed);
            continue;
        }
        int64_t base = v > now - S_BURST ? v : now - S_BURST;
        if (scaled == 0)
            break;   /* nothing to charge: leave V (and its cache line) alone */
        if (atomic_compare_exchange_weak_explicit(&d->vclock_ns, &v, base + scaled,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    }
    if (cost > 0)
        atomic_fetch_add_explicit(&d->charged_ns, (uint64_t)cost, memory_order_relaxed);
    if (waited_from != 0)
        atomic_fetch_add_explicit(&d->throttled_ns, (uint64_t)(now - waited_from),
                                  memory_order_relaxed);
    return now;
}

/* ------------------------------------------------------------ timing launches */

typedef struct {
    CUevent start, end;
    uint64_t key;
    int64_t charged;
    int64_t host_span;     /* host time between the two event records */
    int dev;
} s_probe_t;

static pthread_mutex_t s_probe_lock = PTHREAD_MUTEX_INITIALIZER;
static s_probe_t s_probes[MAX_PROBES];
static int s_nprobes;
static _Atomic int64_t s_next_probe_ns;
static _Atomic int64_t s_next_poll_ns;

static CUresult s_record(CUevent e, const s_launch_t *l)
{
    if (s_ptsz(l) && gp_real.cuEventRecord_ptsz != NULL)
        return gp_real.cuEventRecord_ptsz(e, l->s);
    return gp_real.cuEventRecord(e, l->s);
}

static int64_t s_elapsed_ns(CUevent a, CUevent b)
{
    float ms = 0;
    if (gp_real.cuEventElapsedTime(&ms, a, b) != CUDA_SUCCESS || ms < 0)
        return -1;
    return (int64_t)((double)ms * 1e6);
}

/* The GPU time of a timed launch.  The events bracket the launch; on an
 * idle GPU the first one completes as soon as it is recorded, before the
 * kernel has even been submitted, so the host time between the two records
 * is idle time, not the kernel's.  Subtracting it is exact on an idle GPU
 * and undercounts by that span (microseconds) on a busy one. */
static int64_t s_gpu_time(int64_t elapsed, int64_t host_span)
{
    if (elapsed < 0)
        return -1;
    return elapsed > host_span ? elapsed - host_span : 0;
}

/* Launch l between two events.  With sync, wait for it and return its
 * measured time in *measured; without, queue the probe (under s_probe_lock,
 * held by the caller). */
static CUresult s_timed_launch(const s_launch_t *l, uint64_t key, int dev, int64_t charged,
                               int sync, int64_t *measured)
{
    CUevent a = NULL, b = NULL;
    *measured = -1;
    if (gp_real.cuEventCreate == NULL || gp_real.cuEventCreate(&a, CU_EVENT_DEFAULT) != CUDA_SUCCESS)
        return s_call(l);
    if (gp_real.cuEventCreate(&b, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
        gp_real.cuEventDestroy_v2(a);
        return s_call(l);
    }
    int64_t h0 = s_now();
    int ok = s_record(a, l) == CUDA_SUCCESS;
    CUresult rc = s_call(l);
    ok = ok && rc == CUDA_SUCCESS && s_record(b, l) == CUDA_SUCCESS;
    int64_t span = s_now() - h0;
    if (ok && sync) {
        if (gp_real.cuEventSynchronize(b) == CUDA_SUCCESS)
            *measured = s_gpu_time(s_elapsed_ns(a, b), span);
    } else if (ok && s_nprobes < MAX_PROBES) {
        s_probes[s_nprobes++] = (s_probe_t){ a, b, key, charged, span, dev };
        return rc;
    }
    gp_real.cuEventDestroy_v2(a);
    gp_real.cuEventDestroy_v2(b);
    return rc;
}

static int s_share_primed;   /* under s_probe_lock */

/* Read the probes whose launches have finished (caller holds s_probe_lock). */
static void s_poll_probes(int64_t now)
{
    for (int i = 0; i < s_nprobes;) {
        s_probe_t *p = &s_probes[i];
        CUresult q = gp_real.cuEventQuery(p->end);
        if (q == CUDA_ERROR_NOT_READY) {
            i++;
            continue;
        }
        int64_t m = q == CUDA_SUCCESS ? s_gpu_time(s_elapsed_ns(p->start, p->end), p->host_span) : -1;
        if (m >= 0 && gp_shim.cfg.compute_share && !s_share_primed) {
            /* a share process's first kernel waited behind whatever its
             * neighbours had queued; the next ones, queued behind it, did
             * not: the first measurement is left out */
            s_share_primed = 1;
            m = -1;
        }
        if (m >= 0) {
            s_est_put(p->key, m);
            if (gp_shim.cfg.compute_share) {
                /* correct by the estimate, not the contended time; a launch
                 * charged nothing (no estimate yet) stays uncharged */
                int64_t e = s_est_get(p->key);
                if (e >= 0 && e < m)
                    m = e;
                if (p->charged == 0)
                    m = 0;
            }
            gp_slice_device_t *d = gp_shim.dev[p->dev];
            unsigned cap = atomic_load_explicit(&d->compute_pct, memory_order_relaxed);
            if (gp_shim.cfg.compute_share && cap >= 1)
                cap = gp_share_rate(p->dev, cap, now);
            if (cap >= 1 && (cap < 100 || gp_shim.cfg.compute_share) && m != p->charged)
                s_charge(d, m - p->charged, cap, now);
        }
        gp_real.cuEventDestroy_v2(p->start);
        gp_real.cuEventDestroy_v2(p->end);
        s_probes[i] = s_probes[--s_nprobes];
    }
}

/* ------------------------------------------------------------ priority */

static gp_gpu_state_t *s_gpu[GP_SLICE_MAX_DEVICES];
static _Atomic int64_t s_gpu_retry_ns[GP_SLICE_MAX_DEVICES];
static pthread_mutex_t s_gpu_lock = PTHREAD_MUTEX_INITIALIZER;

static gp_gpu_state_t *s_gpu_state(int dev, int64_t now)
{
    gp_gpu_state_t *st = __atomic_load_n(&s_gpu[dev], __ATOMIC_ACQUIRE);
    if (GP_LIKELY(st != NULL) || now < atomic_load(&s_gpu_retry_ns[dev]))
        return st;
    pthread_mutex_lock(&s_gpu_lock);
    if (s_gpu[dev] == NULL) {
        atomic_store(&s_gpu_retry_ns[dev], now + 100LL * 1000000);
        gp_shim_learn_uuid(dev);
        const char *uuid = gp_shim.dev[dev]->uuid;
        if (uuid[0] != '\0') {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", gp_shim.cfg.region_path);
            char *slash = strrchr(dir, '/');
            if (slash == NULL)
                snprintf(dir, sizeof dir, ".");
            else if (slash == dir)
                dir[1] = '\0';
            else
                *slash = '\0';
            gp_err_t err;
            gp_gpu_state_t *s = gp_gpu_state_open(dir, uuid, &err);
            if (s == NULL)
                gp_log_warn("priority state unavailable: %s", err.msg);
            __atomic_store_n(&s_gpu[dev], s, __ATOMIC_RELEASE);
        }
    }
    st = s_gpu[dev];
    pthread_mutex_unlock(&s_gpu_lock);
    return st;
}

/* Wait while the slice's launches on dev are suspended: by the agent, or,
 * for a low-priority slice, by an active high-priority one.  Returns now. */
static int64_t s_wait_resumed(int dev, gp_slice_device_t *d, int64_t now)
{
    int64_t from = 0;
    gp_gpu_state_t *st = gp_shim.priority == GP_SLICE_PRIO_LOW ? s_gpu_state(dev, now) : NULL;
    int64_t idle = gp_shim.cfg.priority_idle_ns;
    for (;;) {
        int held = atomic_load_explicit(&d->suspended, memory_order_relaxed) != 0;
        if (!held && st != NULL) {
            int64_t last = atomic_load_explicit(&st->hp_last_active_ns, memory_order_relaxed);
            held = now - last < idle;
        }
        if (!held)
            break;
        if (from == 0)
            from = now;
        s_sleep_until(now + SUSPEND_POLL_NS);
        now = s_now();
    }
    if (from != 0)
        atomic_fetch_add_explicit(&d->suspended_ns, (uint64_t)(now - from), memory_order_relaxed);
    return now;
}

static void s_stamp_high(int dev, int64_t now)
{
    gp_gpu_state_t *st = s_gpu_state(dev, now);
    if (st == NULL)
        return;
    int64_t last = atomic_load_explicit(&st->hp_last_active_ns, memory_order_relaxed);
    if (now - last > 1000000) {
        atomic_store_explicit(&st->hp_last_active_ns, now, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->hp_launches, 1, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------ the gated path */

static GP_TLS uint32_t t_launches;

static inline void s_count_launch(gp_slice_device_t *d)
{
    if (GP_UNLIKELY((++t_launches & 255) == 0))
        atomic_fetch_add_explicit(&d->launches, 256, memory_order_relaxed);
}

static CUresult s_gated(const s_launch_t *l)
{
    int dev = gp_shim_current_dev();
    if (dev < 0)
        return s_call(l);
    gp_slice_device_t *d = gp_shim.dev[dev];
    s_count_launch(d);
    int64_t now = s_coarse_now();
    if (gp_shim.priority == GP_SLICE_PRIO_LOW || atomic_load_explicit(&d->suspended, memory_order_relaxed))
        now = s_wait_resumed(dev, d, now);
    else if (gp_shim.priority == GP_SLICE_PRIO_HIGH)
        s_stamp_high(dev, now);

    unsigned cap = atomic_load_explicit(&d->compute_pct, memory_order_relaxed);
    if (cap < 1 || (cap >= 100 && !gp_shim.cfg.compute_share))
        return s_call(l);
    cap = gp_share_rate(dev, cap, now);

    uint64_t key = s_key(l);
    int64_t est = s_est_get(key);
    int known = est >= 0;
    if (!known)
        est = atomic_load_explicit(&s_est_default, memory_order_relaxed);
    if (est < 0 && gp_shim.cfg.compute_share) {
        /* a share slice's first kernel would be timed behind its
         * neighbours' queue: it goes uncharged, timed like the others,
         * until the smallest of the first measurements is known */
        est = 0;
    } else if (est < 0) {
        /* the process's first metered launch: time it before queuing more */
        now = s_meter(dev, d, 0, cap, now);
        int64_t m;
        CUresult rc = s_timed_launch(l, key, dev, 0, 1, &m);
        if (m >= 0) {
            s_est_put(key, m);
            s_charge(d, m, cap, s_now());
        }
        return rc;
    }
    now = s_meter(dev, d, est, cap, now);

    if (now >= atomic_load_explicit(&s_next_poll_ns, memory_order_relaxed) &&
        pthread_mutex_trylock(&s_probe_lock) == 0) {
        atomic_store_explicit(&s_next_poll_ns, now + POLL_INTERVAL_NS, memory_order_relaxed);
        s_poll_probes(now);
        CUresult rc = CUDA_SUCCESS;
        int timed = 0;
        if ((!known || now >= atomic_load_explicit(&s_next_probe_ns, memory_order_relaxed)) &&
            s_nprobes < MAX_PROBES) {
            atomic_store_explicit(&s_next_probe_ns, now + PROBE_INTERVAL_NS, memory_order_relaxed);
            int64_t m;
            rc = s_timed_launch(l, key, dev, est, 0, &m);
            timed = 1;
        }
        pthread_mutex_unlock(&s_probe_lock);
        if (timed)
            return rc;
    }
    return s_call(l);
}

/* ------------------------------------------------------------ the wrappers */

static inline int s_fast(void)
{
    int mode = gp_shim.launch_mode;
    if (GP_LIKELY(mode == GP_LAUNCH_PASS))
        return 1;
    if (mode == GP_LAUNCH_FAST) {
        /* one device, normal priority, no cap at start: stay fast while the
         * agent neither suspends the slice nor sets a cap */
        gp_slice_device_t *d = gp_shim.dev[0];
        s_count_launch(d);
        return atomic_load_explicit(&d->suspended, memory_order_relaxed) == 0 &&
               atomic_load_explicit(&d->compute_pct, memory_order_relaxed) >= 100;
    }
    return 0;
}

#define GP_LAUNCH_GUARD(fn) do { \
        GP_ENTER(); \
        if (GP_UNLIKELY(gp_real.fn == NULL)) return CUDA_ERROR_NOT_INITIALIZED; \
    } while (0)

GP_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                  unsigned int bx, unsigned int by, unsigned int bz,
                                  unsigned int shmem, CUstream s, void **params, void **extra)
{
    GP_LAUNCH_GUARD(cuLaunchKernel);
    if (GP_LIKELY(s_fast()))
        return gp_real.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
    s_launch_t l = { L_KERNEL, f, { gx, gy, gz }, { bx, by, bz }, shmem, s, params, extra, NULL, NULL };
    return s_gated(&l);
}

GP_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                       unsigned int gz, unsigned int bx, unsigned int by,
                                       unsigned int bz, unsigned int shmem, CUstream s,
                                       void **params, void **extra)
{
    GP_LAUNCH_GUARD(cuLaunchKernel_ptsz);
    if (GP_LIKELY(s_fast()))
        return gp_real.cuLaunchKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
    s_launch_t l = { L_KERNEL_PTSZ, f, { gx, gy, gz }, { bx, by, bz }, shmem, s, params, extra, NULL, NULL };
    return s_gated(&l);
}

GP_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *cfg, CUfunction f, void **params,
                                    void **extra)
{
    GP_LAUNCH_GUARD(cuLaunchKernelEx);
    if (GP_LIKELY(s_fast()) || cfg == NULL)
        return gp_real.cuLaunchKernelEx(cfg, f, params, extra);
    s_launch_t l = { L_EX, f, { 0, 0, 0 }, { 0, 0, 0 }, 0, cfg->hStream, params, extra, cfg, NULL };
    return s_gated(&l);
}

GP_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *cfg, CUfunction f, void **params,
                                         void **extra)
{
    GP_LAUNCH_GUARD(cuLaunchKernelEx_ptsz);
    if (GP_LIKELY(s_fast()) || cfg == NULL)
        return gp_real.cuLaunchKernelEx_ptsz(cfg, f, params, extra);
    s_launch_t l = { L_EX_PTSZ, f, { 0, 0, 0 }, { 0, 0, 0 }, 0, cfg->hStream, params, extra, cfg, NULL };
    return s_gated(&l);
}

GP_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy,
                                             unsigned int gz, unsigned int bx, unsigned int by,
                                             unsigned int bz, unsigned int shmem, CUstream s,
                                             void **params)
{
    GP_LAUNCH_GUARD(cuLaunchCooperativeKernel);
    if (GP_LIKELY(s_fast()))
        return gp_real.cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params);
    s_launch_t l = { L_COOP, f, { gx, gy, gz }, { bx, by, bz }, shmem, s, params, NULL, NULL, NULL };
    return s_gated(&l);
}

GP_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                                  unsigned int gz, unsigned int bx,
                                                  unsigned int by, unsigned int bz,
                                                  unsigned int shmem, CUstream s, void **params)
{
    GP_LAUNCH_GUARD(cuLaunchCooperativeKernel_ptsz);
    if (GP_LIKELY(s_fast()))
        return gp_real.cuLaunchCooperativeKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params);
    s_launch_t l = { L_COOP_PTSZ, f, { gx, gy, gz }, { bx, by, bz }, shmem, s, params, NULL, NULL, NULL };
    return s_gated(&l);
}

/* A graph that allocates memory reserves it first (graph.c). */
static CUresult s_graph_launch(CUgraphExec exec, CUstream s, int kind)
{
    uint64_t held[GP_SLICE_MAX_DEVICES];
    int mem = 0;
    if (GP_UNLIKELY(atomic_load_explicit(&gp_graph_mem_used, memory_order_relaxed)) && gp_shim.active &&
        (mem = gp_graph_launch_begin(exec, held)) < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc;
    if (GP_LIKELY(s_fast())) {
        rc = kind == L_GRAPH ? gp_real.cuGraphLaunch(exec, s) : gp_real.cuGraphLaunch_ptsz(exec, s);
    } else {
        s_launch_t l = { kind, NULL, { 0, 0, 0 }, { 0, 0, 0 }, 0, s, NULL, NULL, NULL, exec };
        rc = s_gated(&l);
    }
    if (mem > 0)
        gp_graph_launch_end(held, rc);
    return rc;
}

GP_EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream s)
{
    GP_LAUNCH_GUARD(cuGraphLaunch);
    return s_graph_launch(exec, s, L_GRAPH);
}

GP_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s)
{
    GP_LAUNCH_GUARD(cuGraphLaunch_ptsz);
    return s_graph_launch(exec, s, L_GRAPH_PTSZ);
}

/* ------------------------------------------------------------ set-up */

void gp_compute_init(void)
{
    int gated = gp_shim.ndev > 1 || gp_shim.priority != GP_SLICE_PRIO_NORMAL ||
                gp_shim.cfg.compute_share;
    for (int d = 0; d < gp_shim.ndev; d++)
        if (atomic_load(&gp_shim.dev[d]->compute_pct) < 100)
            gated = 1;
    gp_shim.launch_mode = gated ? GP_LAUNCH_GATED : GP_LAUNCH_FAST;
}

void gp_compute_fork_child(void)
{
    /* the parent's events belong to the parent's contexts */
    pthread_mutex_init(&s_probe_lock, NULL);
    s_nprobes = 0;
    atomic_store(&s_next_probe_ns, 0);
    atomic_store(&s_next_poll_ns, 0);
    s_share_primed = 0;
    gp_share_fork_child();
}
