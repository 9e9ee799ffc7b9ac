#include "fakestate.h"

#include <errno.h>
#include <fcntl.h>
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

#define FAKE_MAGIC 0x4b41464144554331ULL

static fake_state_t *s_state;
static pthread_mutex_t s_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_slot = -1;
static int s_slot_pid;

int64_t fake_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fake_sleep_until(int64_t t_ns)
{
    struct timespec ts = { .tv_sec = t_ns / 1000000000, .tv_nsec = t_ns % 1000000000 };
    while (fake_now_ns() < t_ns)
        if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0 && errno != EINTR)
            break;
}

static int s_init(fake_state_t *s)
{
    const char *nd = getenv("FAKECUDA_DEVICES");
    const char *mem = getenv("FAKECUDA_MEM_MIB");
    int n = 1;
    if (nd != NULL) {
        char *end;
        long v = strtol(nd, &end, 10);
        if (*nd == '\0' || *end != '\0' || v < 1 || v > FAKE_MAX_DEVICES) {
            fprintf(stderr, "fakecuda: bad FAKECUDA_DEVICES=%s\n", nd);
            return -1;
        }
        n = (int)v;
    }
    memset(s, 0, sizeof *s);
    s->ndevices = n;
    uint64_t mib = 16384;
    const char *p = mem;
    for (int d = 0; d < n; d++) {
        if (p != NULL && *p != '\0') {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p || (*end != ',' && *end != '\0') || v == 0) {
                fprintf(stderr, "fakecuda: bad FAKECUDA_MEM_MIB=%s\n", mem);
                return -1;
            }
            mib = v;
            p = *end == ',' ? end + 1 : end;
        }
        s->dev[d].total = mib << 20;
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&s->dev[d].lock, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    atomic_store(&s->magic, FAKE_MAGIC);
    return 0;
}

fake_state_t *fake_state_get(void)
{
    fake_state_t *s = __atomic_load_n(&s_state, __ATOMIC_ACQUIRE);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&s_init_lock);
    if (s_state != NULL) {
        pthread_mutex_unlock(&s_init_lock);
        return s_state;
    }
    const char *path = getenv("FAKECUDA_STATE");
    void *p = MAP_FAILED;
    if (path == NULL || *path == '\0') {
        p = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED && s_init(p) < 0) {
            munmap(p, sizeof *s);
            p = MAP_FAILED;
        }
    } else {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        /* Every user's processes share the fake GPUs, as /dev/nvidia* are
         * 0666 (jobs run as other accounts than the agent). */
        if (fd >= 0)
            fchmod(fd, 0666);
        if (fd >= 0 && flock(fd, LOCK_EX) == 0) {
            struct stat st;
            int fresh = fstat(fd, &st) == 0 && st.st_size == 0;
            if (fresh && ftruncate(fd, sizeof *s) < 0)
                fresh = -1;
            if (fresh >= 0)
                p = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p != MAP_FAILED && fresh && s_init(p) < 0) {
                munmap(p, sizeof *s);
                p = MAP_FAILED;
                ftruncate(fd, 0);
            }
        }
        if (fd >= 0) {
            flock(fd, LOCK_UN); /* the mapping keeps the file open: unlock explicitly */
            close(fd);
        }
    }
    if (p != MAP_FAILED && atomic_load(&((fake_state_t *)p)->magic) == FAKE_MAGIC)
        __atomic_store_n(&s_state, (fake_state_t *)p, __ATOMIC_RELEASE);
    else if (path != NULL)
        fprintf(stderr, "fakecuda: cannot use state %s\n", path);
    pthread_mutex_unlock(&s_init_lock);
    return s_state;
}

static int s_alive(int pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

static int s_my_slot(fake_state_t *s)
{
    int pid = (int)getpid();
    if (s_slot >= 0 && s_slot_pid == pid)
        return s_slot;
    for (int i = 0; i < FAKE_MAX_PROCS; i++) {
        int32_t zero = 0;
        if (atomic_compare_exchange_strong(&s->proc[i].pid, &zero, pid)) {
            for (int d = 0; d < FAKE_MAX_DEVICES; d++)
                atomic_store(&s->proc[i].used[d], 0);
            s_slot = i;
            s_slot_pid = pid;
            int hi = atomic_load(&s->proc_hi);
            while (hi < i + 1 && !atomic_compare_exchange_weak(&s->proc_hi, &hi, i + 1))
                ;
            return i;
        }
    }
    return -1;
}

void fake_reclaim(fake_state_t *s)
{
    for (int i = 0; i < FAKE_MAX_PROCS; i++) {
        int pid = atomic_load(&s->proc[i].pid);
        if (pid == 0 || s_alive(pid))
            continue;
        for (int d = 0; d < s->ndevices; d++) {
            uint64_t u = atomic_exchange(&s->proc[i].used[d], 0);
            atomic_fetch_sub(&s->dev[d].used_now, u);
        }
        int32_t expect = pid;
        atomic_compare_exchange_strong(&s->proc[i].pid, &expect, 0);
    }
}

/* A device's used memory is the sum of what each process holds: one
 * counter per process, so that a process killed at any point leaves
 * nothing inconsistent behind. */
uint64_t fake_mem_used(fake_state_t *s, int dev)
{
    uint64_t used = 0;
    int hi = atomic_load(&s->proc_hi);
    for (int i = 0; i < hi; i++)
        if (atomic_load(&s->proc[i].pid) != 0)
            used += atomic_load(&s->proc[i].used[dev]);
    return used;
}

/* What the other processes use, refreshed at most every millisecond, so
 * that allocations in several processes do not all read each other's
 * counters (the real driver does not serialise processes either); this
 * process's own usage is always exact. */
static uint64_t s_others_used(fake_state_t *s, int dev, int slot)
{
    static _Thread_local int64_t when[FAKE_MAX_DEVICES];
    static _Thread_local uint64_t cached[FAKE_MAX_DEVICES];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (now - when[dev] >= 1000000 || when[dev] == 0) {
        cached[dev] = fake_mem_used(s, dev) - atomic_load(&s->proc[slot].used[dev]);
        when[dev] = now;
    }
    return cached[dev];
}

int fake_mem_take(fake_state_t *s, int dev, uint64_t bytes)
{
    fake_device_t *d = &s->dev[dev];
    int slot = s_my_slot(s);
    if (slot < 0)
        return -1;
    uint64_t used = s_others_used(s, dev, slot) + atomic_load(&s->proc[slot].used[dev]);
    if (bytes > d->total || used > d->total - bytes)
        return -1;
    atomic_fetch_add(&s->proc[slot].used[dev], bytes);
    uint64_t now = atomic_fetch_add(&d->used_now, bytes) + bytes;
    uint64_t peak = atomic_load(&d->peak);
    while (now > peak && !atomic_compare_exchange_weak(&d->peak, &peak, now))
        ;
    return 0;
}

/* Take up to bytes from a slot's usage (never below zero) and from the
 * device's. */
static void s_give_slot(fake_state_t *s, int slot, int dev, uint64_t bytes)
{
    uint64_t u = atomic_load(&s->proc[slot].used[dev]), take;
    do
        take = u > bytes ? bytes : u;
    while (!atomic_compare_exchange_weak(&s->proc[slot].used[dev], &u, u - take));
    atomic_fetch_sub(&s->dev[dev].used_now, take);
}

void fake_mem_give(fake_state_t *s, int dev, uint64_t bytes)
{
    int slot = s_my_slot(s);
    if (slot < 0)
        return;
    s_give_slot(s, slot, dev, bytes);
}

uint64_t fake_mem_now(fake_state_t *s, int dev) { return atomic_load(&s->dev[dev].used_now); }
uint64_t fake_mem_peak(fake_state_t *s, int dev) { return atomic_load(&s->dev[dev].peak); }

int fake_phys_new(fake_state_t *s, int dev, uint64_t size)
{
    for (int i = 0; i < FAKE_MAX_PHYS; i++) {
        int32_t zero = 0;
        /* -1 marks an entry being filled in: not free, not referable */
        if (!atomic_compare_exchange_strong(&s->phys[i].refs, &zero, -1))
            continue;
        if (fake_mem_take(s, dev, size) < 0) {
            atomic_store(&s->phys[i].refs, 0);
            return -1;
        }
        s->phys[i].slot = s_my_slot(s);
        s->phys[i].pid = (int32_t)getpid();
        s->phys[i].dev = dev;
        s->phys[i].size = size;
        atomic_store(&s->phys[i].refs, 1);
        return i;
    }
    return -1;
}

int fake_phys_ref(fake_state_t *s, int idx)
{
    if (idx < 0 || idx >= FAKE_MAX_PHYS)
        return -1;
    int32_t r = atomic_load(&s->phys[idx].refs);
    do
        if (r <= 0)
            return -1;
    while (!atomic_compare_exchange_weak(&s->phys[idx].refs, &r, r + 1));
    return 0;
}

void fake_phys_unref(fake_state_t *s, int idx)
{
    fake_phys_t *p = &s->phys[idx];
    int32_t r = atomic_load(&p->refs);
    for (;;) {
        if (r <= 0)
            return;
        /* the last reference marks the entry -1 while it is torn down */
        if (atomic_compare_exchange_weak(&p->refs, &r, r == 1 ? -1 : r - 1))
            break;
    }
    if (r != 1)
        return;
    /* the last reference: back to the device, from its creator's usage
     * unless the creator has exited and been reclaimed already */
    if (atomic_load(&s->proc[p->slot].pid) == p->pid)
        s_give_slot(s, p->slot, p->dev, p->size);
    atomic_store(&p->refs, 0);
}

static void s_lock(fake_device_t *d)
{
    if (pthread_mutex_lock(&d->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&d->lock);
}

int64_t fake_enqueue(fake_state_t *s, int dev, int64_t dur)
{
    fake_device_t *d = &s->dev[dev];
    int64_t now = fake_now_ns();
    s_lock(d);
    int64_t start = d->busy_until_ns > now ? d->busy_until_ns : now;
    d->busy_until_ns = start + dur;
    d->enqueued_ns += (uint64_t)dur;
    int64_t end = d->busy_until_ns;
    pthread_mutex_unlock(&d->lock);
    atomic_fetch_add(&d->launches, 1);
    return end;
}

uint64_t fake_busy_ns(fake_state_t *s, int dev, int64_t now)
{
    fake_device_t *d = &s->dev[dev];
    s_lock(d);
    uint64_t busy = d->enqueued_ns;
    if (d->busy_until_ns > now)
        busy -= (uint64_t)(d->busy_until_ns - now);
    pthread_mutex_unlock(&d->lock);
    return busy;
}

void fake_uuid(int dev, char out[16])
{
    static const unsigned char base[16] = { 0x6b, 0x1e, 0x5a, 0x11, 0xfa, 0x4e, 0x4c, 0x0d,
                                            0x9a, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
    memcpy(out, base, 16);
    out[15] = (char)dev;
}
