/*
 * share.c - the per-GPU share table (see share.h).
 *
 * The table is a 4 KiB file, "gpu-<UUID>.share" in the regions' directory,
 * mapped shared by every slice on the node that launches on that GPU: a
 * header line and 63 slots of one cache line each.  A slot belongs to one
 * slice (key: the device and inode of its region file, so that every
 * process of the slice finds the same slot whatever path it was given).
 *
 * The key is st_dev << 40 ^ st_ino: distinct for distinct files while the
 * device number fits in 24 bits and the inode number in 40 (the regions
 * sharing a table live in one directory, so on one filesystem; its inode
 * numbers are what tell them apart).  No key is 0, which marks a free
 * slot: device 0 holds no filesystem; a slice whose key would be 0 gets no
 * table, so a cap slice's pacing.  (Forcing a bit of the key to keep it
 * from 0 would give two files one key: two slices counted as one.)
 *
 * Claiming a slot: look for the slice's key; when absent, compare-and-swap
 * a free key (0) to it, or a key whose slot has been stale for
 * GP_SHARE_STALE_NS.  Two processes of one slice may claim two slots at
 * once; each then looks again and keeps only the lowest slot holding the
 * key (the process in the higher one gives it back), so a slice is counted
 * once after at most one such race.  A process killed between the
 * compare-and-swap and the first stamp leaves a slot whose time is 0:
 * stale, so it counts for nothing and is taken over later.
 */
#include "share.h"

#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#include "banned.h"

#define SHARE_MAGIC 0x3130524148535047ULL /* "GPSHAR01" */
#define SHARE_SLOTS 63

enum { MODE_CAP = 1, MODE_SHARE = 2 };

typedef struct {
    _Atomic uint64_t key;        /* the slice; 0: free */
    _Atomic int64_t busy_ns;     /* CLOCK_MONOTONIC of its last launch */
    _Atomic uint32_t pct;        /* its share or cap */
    _Atomic uint32_t mode;       /* MODE_CAP or MODE_SHARE */
    _Atomic int32_t pid;         /* the last process that stamped it */
    uint8_t pad[64 - 8 - 8 - 4 - 4 - 4];
} s_slot_t;

typedef struct {
    _Atomic uint64_t magic;
    uint8_t pad[64 - 8];
    s_slot_t slot[SHARE_SLOTS];
} s_table_t;

_Static_assert(sizeof(s_slot_t) == 64, "share slot is one cache line");
_Static_assert(sizeof(s_table_t) == 4096, "share table is one page");

static s_table_t *s_tab[GP_SLICE_MAX_DEVICES];
static _Atomic int64_t s_retry_ns[GP_SLICE_MAX_DEVICES];
static _Atomic int s_slot_ix[GP_SLICE_MAX_DEVICES];   /* cached: slot index + 1 */
static _Atomic unsigned s_rate[GP_SLICE_MAX_DEVICES];
static _Atomic int64_t s_rate_until[GP_SLICE_MAX_DEVICES];
static pthread_mutex_t s_open_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_key;                                  /* this slice */

static s_table_t *s_map(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        gp_log_warn("share table unavailable path=%s error=%s", path, strerror(errno));
        return NULL;
    }
    s_table_t *t = NULL;
    struct stat st;
    /* concurrent creators all extend to the same size; extending keeps
     * what another process already wrote */
    if (fstat(fd, &st) == 0 && (st.st_size >= (off_t)sizeof *t ||
                                ftruncate(fd, (off_t)sizeof *t) == 0)) {
        void *m = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED)
            t = m;
    }
    close(fd);
    if (t == NULL) {
        gp_log_warn("share table unavailable path=%s", path);
        return NULL;
    }
    uint64_t zero = 0;
    if (!atomic_compare_exchange_strong(&t->magic, &zero, SHARE_MAGIC) && zero != SHARE_MAGIC) {
        gp_log_warn("share table has an unknown format path=%s", path);
        munmap(t, sizeof *t);
        return NULL;
    }
    return t;
}

static s_table_t *s_table(int dev, int64_t now)
{
    s_table_t *t = __atomic_load_n(&s_tab[dev], __ATOMIC_ACQUIRE);
    if (GP_LIKELY(t != NULL) || now < atomic_load(&s_retry_ns[dev]))
        return t;
    pthread_mutex_lock(&s_open_lock);
    if (s_tab[dev] == NULL) {
        atomic_store(&s_retry_ns[dev], now + 100LL * 1000000);
        if (s_key == 0) {
            struct stat st;
            if (stat(gp_shim.cfg.region_path, &st) == 0)
                s_key = ((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino;
        }
        gp_shim_learn_uuid(dev);
        const char *uuid = gp_shim.dev[dev]->uuid;
        if (s_key != 0 && uuid[0] != '\0') {
            char path[4096 + 128];
            const char *rp = gp_shim.cfg.region_path;
            const char *slash = strrchr(rp, '/');
            if (slash == NULL)
                snprintf(path, sizeof path, "gpu-%s.share", uuid);
            else
                snprintf(path, sizeof path, "%.*s/gpu-%s.share", (int)(slash - rp), rp, uuid);
            __atomic_store_n(&s_tab[dev], s_map(path), __ATOMIC_RELEASE);
        }
    }
    t = s_tab[dev];
    pthread_mutex_unlock(&s_open_lock);
    return t;
}

static int s_find(s_table_t *t)
{
    for (int i = 0; i < SHARE_SLOTS; i++)
        if (atomic_load_explicit(&t->slot[i].key, memory_order_acquire) == s_key)
            return i;
    return -1;
}

/* The slice's slot on t, claimed when it has none; -1 when the table is
 * full of live slices. */
static int s_claim(s_table_t *t, int64_t now)
{
    int i = s_find(t);
    for (int j = 0; i < 0 && j < SHARE_SLOTS; j++) {
        s_slot_t *s = &t->slot[j];
        uint64_t k = atomic_load(&s->key);
        if (k != 0 && now - atomic_load(&s->busy_ns) < GP_SHARE_STALE_NS)
            continue;
        atomic_store(&s->busy_ns, now);
        if (atomic_compare_exchange_strong(&s->key, &k, s_key))
            i = j;
    }
    if (i < 0)
        return -1;
    int low = s_find(t);
    if (low >= 0 && low < i) {
        uint64_t k = s_key;
        atomic_compare_exchange_strong(&t->slot[i].key, &k, 0);
        i = low;
    }
    return i;
}

static s_slot_t *s_mine(int dev, int64_t now, s_table_t **tp)
{
    s_table_t *t = s_table(dev, now);
    *tp = t;
    if (t == NULL)
        return NULL;
    int ix = atomic_load_explicit(&s_slot_ix[dev], memory_order_relaxed) - 1;
    if (ix < 0 || atomic_load_explicit(&t->slot[ix].key, memory_order_relaxed) != s_key) {
        ix = s_claim(t, now);
        atomic_store(&s_slot_ix[dev], ix + 1);
        if (ix < 0)
            return NULL;
    }
    return &t->slot[ix];
}

static void s_stamp(s_slot_t *s, int64_t now)
{
    int64_t last = atomic_load_explicit(&s->busy_ns, memory_order_relaxed);
    if (now - last > 1000000 || now < last) {
        atomic_store_explicit(&s->busy_ns, now, memory_order_relaxed);
        atomic_store_explicit(&s->pid, (int32_t)getpid(), memory_order_relaxed);
    }
}

unsigned gp_share_rate(int dev, unsigned pct, int64_t now)
{
    int share = gp_shim.cfg.compute_share;
    s_table_t *t;
    s_slot_t *me = s_mine(dev, now, &t);
    if (me == NULL)
        return pct;
    unsigned mode = share ? MODE_SHARE : MODE_CAP;
    if (atomic_load_explicit(&me->pct, memory_order_relaxed) != pct ||
        atomic_load_explicit(&me->mode, memory_order_relaxed) != mode) {
        atomic_store(&me->pct, pct);
        atomic_store(&me->mode, mode);
    }
    s_stamp(me, now);
    if (!share)
        return pct;
    if (now < atomic_load_explicit(&s_rate_until[dev], memory_order_relaxed))
        return atomic_load_explicit(&s_rate[dev], memory_order_relaxed);
    unsigned shares = pct, caps = 0;
    for (int i = 0; i < SHARE_SLOTS; i++) {
        s_slot_t *s = &t->slot[i];
        if (s == me || atomic_load_explicit(&s->key, memory_order_relaxed) == 0)
            continue;
        int64_t b = atomic_load_explicit(&s->busy_ns, memory_order_relaxed);
        if (now - b >= GP_SHARE_BUSY_NS)
            continue;
        unsigned p = atomic_load_explicit(&s->pct, memory_order_relaxed);
        if (p > 100)
            continue;
        if (atomic_load_explicit(&s->mode, memory_order_relaxed) == MODE_SHARE)
            shares += p;
        else
            caps += p;
    }
    unsigned room = caps < 100 ? 100 - caps : 0;
    unsigned rate = (unsigned)((uint64_t)room * pct / shares);
    if (rate < 1)
        rate = 1;
    if (rate > 100)
        rate = 100;
    atomic_store_explicit(&s_rate[dev], rate, memory_order_relaxed);
    atomic_store_explicit(&s_rate_until[dev], now + GP_SHARE_RECHECK_NS, memory_order_relaxed);
    return rate;
}

void gp_share_touch(int dev, int64_t now)
{
    s_table_t *t;
    s_slot_t *me = s_mine(dev, now, &t);
    if (me != NULL)
        s_stamp(me, now);
}

void gp_share_fork_child(void)
{
    pthread_mutex_init(&s_open_lock, NULL);
    for (int d = 0; d < GP_SLICE_MAX_DEVICES; d++)
        atomic_store(&s_rate_until[d], 0);
}
