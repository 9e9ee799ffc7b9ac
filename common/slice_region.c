#include "slice_region.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

_Static_assert(sizeof(gp_slice_device_t) == 256, "device record is 256 bytes");
_Static_assert(sizeof(gp_gpu_state_t) == 64, "gpu state is 64 bytes");

struct gp_slice_region {
    gp_slice_layout_t *map;
    size_t size;
    uint32_t ndevices;       /* the map's, read once: the hot paths do not
                              * touch the header's cache line, which holds
                              * the lock, before they take it */
};

/* ------------------------------------------------------------ locking */

/* Rebuild the device totals from the process slots: the repair after a
 * process died holding the lock, between its two stores. */
static void s_rebuild_totals(gp_slice_layout_t *m)
{
    for (uint32_t d = 0; d < m->ndevices; d++) {
        uint64_t used = 0, host = 0;
        for (int i = 0; i < GP_SLICE_MAX_PROCS; i++) {
            if (atomic_load(&m->proc[i].pid) == 0)
                continue;
            used += m->proc[i].used[d];
            host += m->proc[i].host[d];
        }
        atomic_store(&m->dev[d].mem_used, used);
        atomic_store(&m->dev[d].host_used, host);
    }
}

/* This process's pid, cached (getpid is a system call); a forked child
 * refreshes it. */
static _Atomic int32_t s_pid;
static pthread_once_t s_pid_once = PTHREAD_ONCE_INIT;

static void s_pid_refresh(void) { atomic_store(&s_pid, (int32_t)getpid()); }
static void s_pid_init(void)
{
    s_pid_refresh();
    pthread_atfork(NULL, NULL, s_pid_refresh);
}

static inline int32_t s_me(void)
{
    int32_t me = atomic_load_explicit(&s_pid, memory_order_relaxed);
    if (__builtin_expect(me == 0, 0)) {
        pthread_once(&s_pid_once, s_pid_init);
        me = atomic_load(&s_pid);
    }
    return me;
}

/*
 * The region's lock: a word holding the owner's pid.  Taking it is one
 * compare-and-swap, releasing it one store: no system call unless a waiter
 * has spun for a while, when it yields.  A critical section is a handful
 * of loads and stores, so a long wait means the owner was preempted -- or
 * died.  A waiter that has waited long checks the owner: when its pid is
 * gone (or the same pid has held the lock for over 5 s, which only a
 * stopped or reused pid explains), it takes the lock over and rebuilds the
 * device totals from the process slots, since the dead owner may have
 * stopped between two of its stores.
 */
/* A spin-wait hint to the CPU (x86 PAUSE, Arm YIELD); nothing elsewhere. */
static inline void s_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void s_lock(gp_slice_layout_t *m)
{
    int32_t me = s_me();
    unsigned spins = 0;
    int32_t seen = 0;
    struct timespec since = { 0, 0 };
    for (;;) {
        /* The first try goes straight for the word (one transfer of its
         * cache line); a waiter then reads it until it looks free, so that
         * waiters do not take the line from the owner over and over. */
        int32_t expect = 0;
        if ((spins == 0 || atomic_load_explicit(&m->lock_owner, memory_order_relaxed) == 0) &&
            atomic_compare_exchange_weak_explicit(&m->lock_owner, &expect, me,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
        if (++spins < 64) {
            s_cpu_relax();
            continue;
        }
        sched_yield();
        if (spins % 256 != 0)
            continue;
        int32_t owner = atomic_load(&m->lock_owner);
        if (owner == 0)
            continue;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (owner != seen) {
            seen = owner;
            since = now;
        }
        int stale = now.tv_sec - since.tv_sec > 5;
        if ((stale || (kill(owner, 0) < 0 && errno == ESRCH)) &&
            atomic_compare_exchange_strong(&m->lock_owner, &owner, me)) {
            s_rebuild_totals(m);
            return;
        }
    }
}

static void s_unlock(gp_slice_layout_t *m)
{
    atomic_store_explicit(&m->lock_owner, 0, memory_order_release);
}

/* ------------------------------------------------------------ open / close */

static int s_init_layout(gp_slice_layout_t *m, const gp_slice_config_t *cfg, gp_err_t *err)
{
    (void)err;
    memset(m, 0, sizeof *m);
    m->version = GP_SLICE_REGION_VERSION;
    m->ndevices = (uint32_t)cfg->ndevices;
    m->size = sizeof *m;
    m->priority = (uint32_t)cfg->priority;
    m->oversubscribe = cfg->oversubscribe ? 1 : 0;
    for (int d = 0; d < cfg->ndevices; d++) {
        gp_slice_device_t *dev = &m->dev[d];
        memcpy(dev->uuid, cfg->dev[d].uuid, sizeof dev->uuid);
        dev->uuid[GP_SLICE_UUID_LEN - 1] = '\0';
        atomic_store(&dev->mem_limit, cfg->dev[d].mem_limit);
        atomic_store(&dev->compute_pct, cfg->dev[d].compute_pct);
    }
    return 0;
}

static int s_valid_config(const gp_slice_config_t *cfg, gp_err_t *err)
{
    if (cfg->ndevices < 1 || cfg->ndevices > GP_SLICE_MAX_DEVICES)
        return gp_err_set(err, GP_ERR_INVALID, "slice has %d devices, want 1..%d",
                          cfg->ndevices, GP_SLICE_MAX_DEVICES);
    if (cfg->priority < GP_SLICE_PRIO_LOW || cfg->priority > GP_SLICE_PRIO_HIGH)
        return gp_err_set(err, GP_ERR_INVALID, "bad priority %d", (int)cfg->priority);
    for (int d = 0; d < cfg->ndevices; d++)
        if (cfg->dev[d].compute_pct < 1 || cfg->dev[d].compute_pct > 100)
            return gp_err_set(err, GP_ERR_INVALID, "device %d compute %u%%, want 1..100", d,
                              cfg->dev[d].compute_pct);
    return 0;
}

/* Create path atomically: write a complete region to a temporary file, then
 * link it into place.  Returns 0 when created, 1 when another creator won
 * (the file exists), -1 on error. */
static int s_create(const char *path, const gp_slice_config_t *cfg, gp_err_t *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return gp_err_set(err, GP_ERR_INVALID, "region path too long");
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0)
        return gp_err_errno(err, "cannot create %s", tmp);
    int rc = -1;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)sizeof(gp_slice_layout_t)) < 0) {
        gp_err_errno(err, "cannot size %s", tmp);
        goto cleanup;
    }
    p = mmap(NULL, sizeof(gp_slice_layout_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        gp_err_errno(err, "cannot map %s", tmp);
        goto cleanup;
    }
    if (s_init_layout(p, cfg, err) < 0)
        goto cleanup;
    atomic_store(&((gp_slice_layout_t *)p)->magic, GP_SLICE_REGION_MAGIC);
    if (link(tmp, path) == 0)
        rc = 0;
    else if (errno == EEXIST)
        rc = 1;
    else
        gp_err_errno(err, "cannot link %s", path);
cleanup:
    if (p != MAP_FAILED)
        munmap(p, sizeof(gp_slice_layout_t));
    unlink(tmp);
    close(fd);
    return rc;
}

gp_slice_region_t *gp_slice_region_open(const char *path, const gp_slice_config_t *create,
                                        gp_err_t *err)
{
    if (path == NULL || *path == '\0') {
        gp_err_set(err, GP_ERR_INVALID, "no region path");
        return NULL;
    }
    if (create != NULL && s_valid_config(create, err) < 0)
        return NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create != NULL) {
        if (s_create(path, create, err) < 0)
            return NULL;
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        gp_err_errno(err, "cannot open region %s", path);
        return NULL;
    }
    struct stat st;
    gp_slice_region_t *self = NULL;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) < 0) {
        gp_err_errno(err, "cannot stat %s", path);
        goto cleanup;
    }
    if ((size_t)st.st_size != sizeof(gp_slice_layout_t)) {
        gp_err_set(err, GP_ERR_PROTOCOL, "region %s has size %lld, expected %zu", path,
                   (long long)st.st_size, sizeof(gp_slice_layout_t));
        goto cleanup;
    }
    p = mmap(NULL, sizeof(gp_slice_layout_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        gp_err_errno(err, "cannot map %s", path);
        goto cleanup;
    }
    gp_slice_layout_t *m = p;
    if (atomic_load(&m->magic) != GP_SLICE_REGION_MAGIC || m->version != GP_SLICE_REGION_VERSION ||
        m->ndevices < 1 || m->ndevices > GP_SLICE_MAX_DEVICES) {
        gp_err_set(err, GP_ERR_PROTOCOL, "region %s is not a version %d slice region", path,
                   GP_SLICE_REGION_VERSION);
        goto cleanup;
    }
    self = calloc(1, sizeof *self);
    if (self == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    self->map = m;
    self->size = sizeof *m;
    self->ndevices = m->ndevices;
    p = MAP_FAILED;
cleanup:
    if (p != MAP_FAILED)
        munmap(p, sizeof(gp_slice_layout_t));
    close(fd);
    return self;
}

void gp_slice_region_close(gp_slice_region_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    munmap((*self_p)->map, (*self_p)->size);
    free(*self_p);
    *self_p = NULL;
}

int gp_slice_region_ndevices(const gp_slice_region_t *self) { return (int)self->map->ndevices; }

gp_slice_priority_t gp_slice_region_priority(const gp_slice_region_t *self)
{
    return (gp_slice_priority_t)self->map->priority;
}

gp_slice_priority_t gp_slice_priority_of(int prio)
{
    return prio >= 100 ? GP_SLICE_PRIO_HIGH : prio < 0 ? GP_SLICE_PRIO_LOW : GP_SLICE_PRIO_NORMAL;
}

const char *gp_slice_priority_name(gp_slice_priority_t p)
{
    return p == GP_SLICE_PRIO_HIGH ? "high" : p == GP_SLICE_PRIO_LOW ? "low" : "normal";
}

int gp_slice_region_oversubscribe(const gp_slice_region_t *self)
{
    return (int)self->map->oversubscribe;
}

gp_slice_device_t *gp_slice_region_device(gp_slice_region_t *self, int dev)
{
    if (dev < 0 || (uint32_t)dev >= self->ndevices)
        return NULL;
    return &self->map->dev[dev];
}

/* ------------------------------------------------------------ agent side */

int gp_slice_region_usage(gp_slice_region_t *self, int dev, gp_slice_usage_t *out)
{
    gp_slice_device_t *d = gp_slice_region_device(self, dev);
    if (d == NULL)
        return -1;
    gp_slice_usage_t u;
    memset(&u, 0, sizeof u);
    u.mem_limit = atomic_load(&d->mem_limit);
    u.mem_used = atomic_load(&d->mem_used);
    u.host_used = atomic_load(&d->host_used);
    u.mem_peak = atomic_load(&d->mem_peak);
    u.compute_pct = atomic_load(&d->compute_pct);
    u.suspended = (int)atomic_load(&d->suspended);
    u.charged_ns = atomic_load(&d->charged_ns);
    u.launches = atomic_load(&d->launches);
    u.throttled_ns = atomic_load(&d->throttled_ns);
    u.suspended_ns = atomic_load(&d->suspended_ns);
    u.oom_count = atomic_load(&d->oom_count);
    for (int i = 0; i < GP_SLICE_MAX_PROCS; i++)
        if (atomic_load(&self->map->proc[i].pid) != 0)
            u.nprocs++;
    *out = u;
    return 0;
}

int gp_slice_region_set_suspended(gp_slice_region_t *self, int dev, int on)
{
    if (dev == -1) {
        for (uint32_t d = 0; d < self->map->ndevices; d++)
            atomic_store(&self->map->dev[d].suspended, on ? 1u : 0u);
        return 0;
    }
    gp_slice_device_t *d = gp_slice_region_device(self, dev);
    if (d == NULL)
        return -1;
    atomic_store(&d->suspended, on ? 1u : 0u);
    return 0;
}

int gp_slice_region_set_mem_limit(gp_slice_region_t *self, int dev, uint64_t bytes)
{
    gp_slice_device_t *d = gp_slice_region_device(self, dev);
    if (d == NULL)
        return -1;
    s_lock(self->map);
    atomic_store(&d->mem_limit, bytes);
    s_unlock(self->map);
    return 0;
}

int gp_slice_region_set_uuid(gp_slice_region_t *self, int dev, const char *uuid)
{
    gp_slice_device_t *d = gp_slice_region_device(self, dev);
    if (d == NULL || uuid == NULL || strlen(uuid) >= GP_SLICE_UUID_LEN)
        return -1;
    s_lock(self->map);
    if (d->uuid[0] == '\0')
        memcpy(d->uuid, uuid, strlen(uuid) + 1);
    s_unlock(self->map);
    return 0;
}

int gp_slice_region_find_uuid(gp_slice_region_t *self, const char *uuid)
{
    if (uuid == NULL || *uuid == '\0')
        return -1;
    for (uint32_t d = 0; d < self->map->ndevices; d++) {
        /* uuid is written once under the lock, before any reader can need it */
        if (strncmp(self->map->dev[d].uuid, uuid, GP_SLICE_UUID_LEN) == 0)
            return (int)d;
    }
    return -1;
}

/* The start time of pid (clock ticks since boot), 0 when it does not exist. */
static uint64_t s_starttime(int pid)
{
    uint64_t t;
    return gp_proc_stat(pid, &t, NULL) == 0 ? t : 0;
}

static int s_alive(int pid, uint64_t starttime)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 0;
    uint64_t now = s_starttime(pid);
    if (now == 0)
        return kill(pid, 0) == 0 || errno != ESRCH;
    return starttime == 0 || now == starttime;
}

/* Under the lock: subtract what slot i holds from the totals, free it. */
static void s_clear_slot(gp_slice_layout_t *m, int i)
{
    gp_slice_proc_t *p = &m->proc[i];
    for (uint32_t d = 0; d < m->ndevices; d++) {
        uint64_t used = atomic_load(&m->dev[d].mem_used);
        uint64_t host = atomic_load(&m->dev[d].host_used);
        atomic_store(&m->dev[d].mem_used, used >= p->used[d] ? used - p->used[d] : 0);
        atomic_store(&m->dev[d].host_used, host >= p->host[d] ? host - p->host[d] : 0);
        p->used[d] = 0;
        p->host[d] = 0;
    }
    p->starttime = 0;
    atomic_store(&p->pid, 0);
}

int gp_slice_region_reclaim(gp_slice_region_t *self)
{
    gp_slice_layout_t *m = self->map;
    int reclaimed = 0;
    for (int i = 0; i < GP_SLICE_MAX_PROCS; i++) {
        int pid = atomic_load(&m->proc[i].pid);
        if (pid == 0 || s_alive(pid, m->proc[i].starttime))
            continue;
        s_lock(m);
        /* the slot may have changed hands while we looked */
        if (atomic_load(&m->proc[i].pid) == pid && !s_alive(pid, m->proc[i].starttime)) {
            s_clear_slot(m, i);
            reclaimed++;
        }
        s_unlock(m);
    }
    return reclaimed;
}

/* ------------------------------------------------------------ process side */

int gp_slice_region_attach(gp_slice_region_t *self, int pid)
{
    gp_slice_layout_t *m = self->map;
    uint64_t st = s_starttime(pid);
    for (int attempt = 0; attempt < 2; attempt++) {
        s_lock(m);
        /* A slot already under this pid belongs to the image this process
         * ran before an exec: the driver freed its memory with the old
         * address space, so its usage goes too. */
        for (int i = 0; i < GP_SLICE_MAX_PROCS; i++)
            if (atomic_load(&m->proc[i].pid) == pid)
                s_clear_slot(m, i);
        for (int i = 0; i < GP_SLICE_MAX_PROCS; i++) {
            if (atomic_load(&m->proc[i].pid) != 0)
                continue;
            gp_slice_proc_t *p = &m->proc[i];
            memset(p->used, 0, sizeof p->used);
            memset(p->host, 0, sizeof p->host);
            p->starttime = st;
            atomic_store(&p->pid, pid);
            s_unlock(m);
            return i;
        }
        s_unlock(m);
        if (gp_slice_region_reclaim(self) <= 0)
            break;
    }
    return -1;
}

void gp_slice_region_detach(gp_slice_region_t *self, int slot)
{
    if (slot < 0 || slot >= GP_SLICE_MAX_PROCS)
        return;
    s_lock(self->map);
    s_clear_slot(self->map, slot);
    s_unlock(self->map);
}

int gp_slice_region_reserve(gp_slice_region_t *self, int slot, int dev, uint64_t bytes,
                            int flags)
{
    gp_slice_layout_t *m = self->map;
    if (slot < 0 || slot >= GP_SLICE_MAX_PROCS || dev < 0 || (uint32_t)dev >= self->ndevices)
        return -1;
    gp_slice_device_t *d = &m->dev[dev];
    gp_slice_proc_t *p = &m->proc[slot];
    int rc = 0;
    s_lock(m);
    uint64_t used = atomic_load_explicit(&d->mem_used, memory_order_relaxed);
    uint64_t limit = atomic_load_explicit(&d->mem_limit, memory_order_relaxed);
    if (bytes > limit || used > limit - bytes) {
        rc = -1;
    } else {
        used += bytes;
        atomic_store_explicit(&d->mem_used, used, memory_order_relaxed);
        p->used[dev] += bytes;
        if (flags & GP_SLICE_HOST) {
            atomic_fetch_add_explicit(&d->host_used, bytes, memory_order_relaxed);
            p->host[dev] += bytes;
        }
        if (used > atomic_load_explicit(&d->mem_peak, memory_order_relaxed))
            atomic_store_explicit(&d->mem_peak, used, memory_order_relaxed);
    }
    s_unlock(m);
    if (rc < 0)
        atomic_fetch_add_explicit(&d->oom_count, 1, memory_order_relaxed);
    return rc;
}

void gp_slice_region_release(gp_slice_region_t *self, int slot, int dev, uint64_t bytes,
                             int flags)
{
    gp_slice_layout_t *m = self->map;
    if (slot < 0 || slot >= GP_SLICE_MAX_PROCS || dev < 0 || (uint32_t)dev >= self->ndevices)
        return;
    gp_slice_device_t *d = &m->dev[dev];
    gp_slice_proc_t *p = &m->proc[slot];
    s_lock(m);
    /* never below zero: give back at most what this process holds */
    if (bytes > p->used[dev])
        bytes = p->used[dev];
    uint64_t used = atomic_load_explicit(&d->mem_used, memory_order_relaxed);
    atomic_store_explicit(&d->mem_used, used >= bytes ? used - bytes : 0, memory_order_relaxed);
    p->used[dev] -= bytes;
    if (flags & GP_SLICE_HOST) {
        uint64_t hb = bytes < p->host[dev] ? bytes : p->host[dev];
        uint64_t host = atomic_load_explicit(&d->host_used, memory_order_relaxed);
        atomic_store_explicit(&d->host_used, host >= hb ? host - hb : 0, memory_order_relaxed);
        p->host[dev] -= hb;
    }
    s_unlock(m);
}

void gp_slice_region_mark_host(gp_slice_region_t *self, int slot, int dev, uint64_t bytes)
{
    gp_slice_layout_t *m = self->map;
    if (slot < 0 || slot >= GP_SLICE_MAX_PROCS || dev < 0 || (uint32_t)dev >= self->ndevices)
        return;
    gp_slice_proc_t *p = &m->proc[slot];
    s_lock(m);
    uint64_t room = p->used[dev] - p->host[dev];
    if (bytes > room)
        bytes = room;
    p->host[dev] += bytes;
    atomic_fetch_add_explicit(&m->dev[dev].host_used, bytes, memory_order_relaxed);
    s_unlock(m);
}

/* ------------------------------------------------------------ per-GPU state */

#define GP_GPU_STATE_MAGIC 0x3130555047504721ULL /* "!GPGPU01" */

gp_gpu_state_t *gp_gpu_state_open(const char *dir, const char *uuid, gp_err_t *err)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/gpu-%s.state", dir, uuid);
    if (n < 0 || (size_t)n >= sizeof path || strchr(uuid, '/') != NULL) {
        gp_err_set(err, GP_ERR_INVALID, "bad gpu state path for uuid %s", uuid);
        return NULL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0) {
        gp_err_errno(err, "cannot open %s", path);
        return NULL;
    }
    gp_gpu_state_t *s = NULL;
    /* the lock orders the sizing against concurrent openers */
    if (flock(fd, LOCK_EX) < 0) {
        gp_err_errno(err, "cannot lock %s", path);
        goto cleanup;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (st.st_size == 0 && ftruncate(fd, sizeof *s) < 0)) {
        gp_err_errno(err, "cannot size %s", path);
        goto cleanup;
    }
    void *p = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        gp_err_errno(err, "cannot map %s", path);
        goto cleanup;
    }
    s = p;
    if (atomic_load(&s->magic) != GP_GPU_STATE_MAGIC) {
        atomic_store(&s->hp_last_active_ns, INT64_MIN / 2);
        atomic_store(&s->magic, GP_GPU_STATE_MAGIC);
    }
cleanup:
    flock(fd, LOCK_UN); /* explicitly: the mapping keeps the file open */
    close(fd);
    return s;
}

void gp_gpu_state_close(gp_gpu_state_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    munmap(*self_p, sizeof **self_p);
    *self_p = NULL;
}
