#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

static char s_tomb;   /* marks a deleted slot */
#define S_TOMB (&s_tomb)

struct gp_strmap {
    char **keys;
    void **vals;
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
    self->keys = calloc(self->cap, sizeof *self->keys);
    self->vals = calloc(self->cap, sizeof *self->vals);
    if (self->keys == NULL || self->vals == NULL) {
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
    for (size_t i = 0; self->keys && i < self->cap; i++)
        if (self->keys[i] && self->keys[i] != S_TOMB)
            free(self->keys[i]);
    free(self->keys);
    free(self->vals);
    free(self);
    *self_p = NULL;
}

/* The slot holding key, or (for insertion) the first free or tombstone
 * slot on its probe path. */
static size_t s_find(const gp_strmap_t *self, const char *key, int *found)
{
    size_t mask = self->cap - 1, i = s_hash(key) & mask, insert = SIZE_MAX;
    for (;;) {
        char *k = self->keys[i];
        if (k == NULL) {
            *found = 0;
            return insert != SIZE_MAX ? insert : i;
        }
        if (k == S_TOMB) {
            if (insert == SIZE_MAX)
                insert = i;
        } else if (strcmp(k, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int s_grow(gp_strmap_t *self)
{
    size_t cap = self->n * 4 > self->cap ? self->cap * 2 : self->cap;   /* else just rehash */
    char **keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < self->cap; i++) {
        char *k = self->keys[i];
        if (k == NULL || k == S_TOMB)
            continue;
        size_t j = s_hash(k) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = k;
        vals[j] = self->vals[i];
    }
    free(self->keys);
    free(self->vals);
    self->keys = keys;
    self->vals = vals;
    self->cap = cap;
    self->used = self->n;
    return 0;
}

int gp_strmap_put(gp_strmap_t *self, const char *key, void *value)
{
    int found;
    size_t i = s_find(self, key, &found);
    if (found) {
        self->vals[i] = value;
        return 0;
    }
    if ((self->used + 1) * 2 > self->cap) {
        if (s_grow(self) < 0)
            return -1;
        i = s_find(self, key, &found);
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return -1;
    if (self->keys[i] == NULL)
        self->used++;
    self->keys[i] = copy;
    self->vals[i] = value;
    self->n++;
    return 0;
}

void *gp_strmap_get(const gp_strmap_t *self, const char *key)
{
    int found;
    size_t i = s_find(self, key, &found);
    return found ? self->vals[i] : NULL;
}

void *gp_strmap_del(gp_strmap_t *self, const char *key)
{
    int found;
    size_t i = s_find(self, key, &found);
    if (!found)
        return NULL;
    void *v = self->vals[i];
    free(self->keys[i]);
    self->keys[i] = S_TOMB;
    self->vals[i] = NULL;
    self->n--;
    return v;
}

size_t gp_strmap_size(const gp_strmap_t *self) { return self->n; }

static gp_strmap_iter_t s_scan(const gp_strmap_t *self, size_t from)
{
    gp_strmap_iter_t it = { NULL, NULL, 0 };
    for (size_t i = from; i < self->cap; i++) {
        if (self->keys[i] && self->keys[i] != S_TOMB) {
            it.key = self->keys[i];
            it.value = self->vals[i];
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
