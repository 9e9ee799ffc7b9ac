#include "alloc_table.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define NSHARDS 64

/* A spin-wait hint for the CPU, on the architectures the shim runs on. */
#if defined(__x86_64__) || defined(__i386__)
#define GP_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define GP_CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define GP_CPU_RELAX() do { } while (0)
#endif

typedef struct {
    atomic_flag lock;
    gp_shim_alloc_t *slots;       /* key 0: empty */
    size_t cap, n;
    char pad[64 - sizeof(atomic_flag) - sizeof(void *) - 2 * sizeof(size_t)];
} shard_t;

static shard_t s_shards[NSHARDS];

static inline uint64_t s_hash(uintptr_t key, int kind)
{
    uint64_t h = (uint64_t)key ^ ((uint64_t)kind << 58);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline void s_lock(shard_t *s)
{
    int spins = 0;
    while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) {
        if (++spins > 64) {
            sched_yield();
            spins = 0;
        } else {
            GP_CPU_RELAX();
        }
    }
}

static inline void s_unlock(shard_t *s) { atomic_flag_clear_explicit(&s->lock, memory_order_release); }

static void s_insert(shard_t *s, const gp_shim_alloc_t *a)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)(s_hash(a->key, a->kind) >> 6) & mask;
    while (s->slots[i].key != 0)
        i = (i + 1) & mask;
    s->slots[i] = *a;
    s->n++;
}

static int s_grow(shard_t *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 256;
    gp_shim_alloc_t *nslots = calloc(ncap, sizeof *nslots);
    if (nslots == NULL)
        return -1;
    gp_shim_alloc_t *old = s->slots;
    size_t ocap = s->cap;
    s->slots = nslots;
    s->cap = ncap;
    s->n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key != 0)
            s_insert(s, &old[i]);
    free(old);
    return 0;
}

int gp_shim_alloc_put(const gp_shim_alloc_t *a)
{
    shard_t *s = &s_shards[s_hash(a->key, a->kind) & (NSHARDS - 1)];
    int rc = 0;
    s_lock(s);
    if ((s->n + 1) * 4 > s->cap * 3 && s_grow(s) < 0)
        rc = -1;
    else
        s_insert(s, a);
    s_unlock(s);
    return rc;
}

int gp_shim_alloc_take(uintptr_t key, int kind, gp_shim_alloc_t *out)
{
    uint64_t h = s_hash(key, kind);
    shard_t *s = &s_shards[h & (NSHARDS - 1)];
    int rc = -1;
    s_lock(s);
    if (s->cap == 0)
        goto out;
    size_t mask = s->cap - 1;
    size_t i = (size_t)(h >> 6) & mask;
    while (s->slots[i].key != 0) {
        if (s->slots[i].key == key && s->slots[i].kind == kind)
            break;
        i = (i + 1) & mask;
    }
    if (s->slots[i].key == 0)
        goto out;
    *out = s->slots[i];
    /* Backward-shift deletion: move later members of the probe run into the
     * hole when their home slot does not lie cyclically in (hole, j]. */
    for (size_t j = i;;) {
        s->slots[i].key = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (s->slots[j].key == 0)
                goto done;
            size_t home = (size_t)(s_hash(s->slots[j].key, s->slots[j].kind) >> 6) & mask;
            int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!in_range)
                break;
        }
        s->slots[i] = s->slots[j];
        i = j;
    }
done:
    s->n--;
    rc = 0;
out:
    s_unlock(s);
    return rc;
}

void gp_shim_alloc_clear(void)
{
    for (int k = 0; k < NSHARDS; k++) {
        shard_t *s = &s_shards[k];
        atomic_flag_clear(&s->lock);
        free(s->slots);
        s->slots = NULL;
        s->cap = s->n = 0;
    }
}
