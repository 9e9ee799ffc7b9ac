/*
 * strmap.h - a hash map from strings to pointers.
 *
 * Open addressing with linear probing and tombstones; the table doubles at
 * 50% load.  Keys are copied and owned by the map; values are the caller's
 * (the map never frees them: iterate and free before destroying when the
 * map holds the only reference).  Iteration order is unspecified, and
 * inserting during iteration is not allowed (deleting the current entry is).
 *
 *     gp_strmap_t *m = gp_strmap_new();
 *     gp_strmap_put(m, "job-1", job);
 *     job = gp_strmap_get(m, "job-1");
 *     for (gp_strmap_iter_t it = gp_strmap_first(m); it.key; it = gp_strmap_next(m, it))
 *         ... it.key, it.value ...
 *     gp_strmap_destroy(&m);
 */
#ifndef GP_STRMAP_H
#define GP_STRMAP_H

#include <stddef.h>

typedef struct gp_strmap gp_strmap_t;

typedef struct {
    const char *key;   /* NULL at the end */
    void *value;
    size_t pos;
} gp_strmap_iter_t;

gp_strmap_t *gp_strmap_new(void);
void gp_strmap_destroy(gp_strmap_t **self_p);

/* Insert or replace; returns 0, or -1 when out of memory. */
int gp_strmap_put(gp_strmap_t *self, const char *key, void *value);
void *gp_strmap_get(const gp_strmap_t *self, const char *key);
/* Remove; returns the value that was there, or NULL. */
void *gp_strmap_del(gp_strmap_t *self, const char *key);
size_t gp_strmap_size(const gp_strmap_t *self);

gp_strmap_iter_t gp_strmap_first(const gp_strmap_t *self);
gp_strmap_iter_t gp_strmap_next(const gp_strmap_t *self, gp_strmap_iter_t it);

#endif
