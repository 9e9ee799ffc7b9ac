#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

static char s_tomb;   /* marks a deleted slot */
#define S_TOMB (&s_tomb)

/* A slot: its key (NULL free, S_TOMB deleted), value and the key's hash,
 * side by side, so that a probe compares hashes within one line and reads
 * a key (another allocation) only when its hash matches. */
typedef struct {
    char *key;
    void *val;
    uint64_t hash;
} s_slot_t;

struct gp_strmap {
    s_slot_t *slots;
    size_t cap, n, used;   /* used = live + tombstones */
};

static uint64_t s_hash(const char *s)
{
    uint64_t h = gp_hash_str(s);
    return h ^ (h >> 29);
}

gp_strmap_t *gp_strmap_new(void)
{
    gp_strmap_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->cap = 16;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (self->slots == NULL) {
        gp_strmap_destroy(&self);
        return NULL;
    }
    return self;
}

void gp_strmap_destroy(gp_strmap_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gp_strmap_t *self = *self_p;
    for (size_t i = 0; self->slots && i < self->cap; i++)
        if (self->slots[i].key && self->slots[i].key != S_TOMB)
            free(self->slots[i].key);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* The slot holding key (hash h), or (for insertion) the first free or
 * tombstone slot on its probe path. */
static size_t s_find(const gp_strmap_t *self, const char *key, uint64_t h, int *found)
{
    size_t mask = self->cap - 1, i = h & mask, insert = SIZE_MAX;
    for (;;) {
        const s_slot_t *e = &self->slots[i];
        if (e->key == NULL) {
            *found = 0;
            return insert != SIZE_MAX ? insert : i;
        }
        if (e->key == S_TOMB) {
            if (insert == SIZE_MAX)
                insert = i;
        } else if (e->hash == h && strcmp(e->key, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int s_grow(gp_strmap_t *self)
{
    size_t cap = self->n * 4 > self->cap ? self->cap * 2 : self->cap;   /* else just rehash */
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < self->cap; i++) {
        const s_slot_t *e = &self->slots[i];
        if (e->key == NULL || e->key == S_TOMB)
            continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
    self->used = self->n;
    return 0;
}

int gp_strmap_put(gp_strmap_t *self, const char *key, void *value)
{
    int found;
    uint64_t h = s_hash(key);
    size_t i = s_find(self, key, h, &found);
    if (found) {
        self->slots[i].val = value;
        return 0;
    }
    if ((self->used + 1) * 2 > self->cap) {
        if (s_grow(self) < 0)
            return -1;
        i = s_find(self, key, h, &found);
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return -1;
    if (self->slots[i].key == NULL)
        self->used++;
    self->slots[i].key = copy;
    self->slots[i].val = value;
    self->slots[i].hash = h;
    self->n++;
    return 0;
}

void *gp_strmap_get(const gp_strmap_t *self, const char *key)
{
    int found;
    size_t i = s_find(self, key, s_hash(key), &found);
    return found ? self->slots[i].val : NULL;
}

void *gp_strmap_del(gp_strmap_t *self, const char *key)
{
    int found;
    size_t i = s_find(self, key, s_hash(key), &found);
    if (!found)
        return NULL;
    void *v = self->slots[i].val;
    free(self->slots[i].key);
    self->slots[i].key = S_TOMB;
    self->slots[i].val = NULL;
    self->n--;
    return v;
}

size_t gp_strmap_size(const gp_strmap_t *self) { return self->n; }

/* A map never shrinks: one that held a burst and is empty again is not
 * scanned slot by slot for nothing (the coordinator's queue, at every
 * round). */
static gp_strmap_iter_t s_scan(const gp_strmap_t *self, size_t from)
{
    gp_strmap_iter_t it = { NULL, NULL, 0 };
    if (self->n == 0)
        return it;
    for (size_t i = from; i < self->cap; i++) {
        if (self->slots[i].key && self->slots[i].key != S_TOMB) {
            it.key = self->slots[i].key;
            it.value = self->slots[i].val;
            it.pos = i;
            return it;
        }
    }
    return it;
}

gp_strmap_iter_t gp_strmap_first(const gp_strmap_t *self) { return s_scan(self, 0); }

gp_strmap_iter_t gp_strmap_next(const gp_strmap_t *self, gp_strmap_iter_t it)
{
    return s_scan(self, it.pos + 1);
}
