/*
 * alloc_table.h - the process's live allocations: what each one counted,
 * so that a free gives back exactly that.
 *
 * Keys are device pointers and array handles,
 * told apart by kind.  The table is split into shards by key, each an
 * open-addressed array under its own spinlock; a lock is held for a probe
 * and a store, never across a driver call, and no memory is allocated
 * except when a shard grows.  gp_shim_alloc_take removes and returns a record,
 * so that of two threads freeing one pointer only one gives its bytes back.
 */
#ifndef GP_SHIM_ALLOC_TABLE_H
#define GP_SHIM_ALLOC_TABLE_H

#include <stdint.h>

enum {
    GP_ALLOC_PTR = 1,        /* cuMemAlloc*, managed, async, pitch */
    GP_ALLOC_POOL = 2,       /* from a memory pool; host: its pools.c entry */
    GP_ALLOC_ARRAY = 3,      /* cuArrayCreate, cuArray3DCreate */
    GP_ALLOC_MIPMAP = 4,     /* cuMipmappedArrayCreate */
};

typedef struct {
    uintptr_t key;
    uint64_t bytes;
    void *host;              /* host memory serving an oversubscribed allocation */
    int16_t dev;
    uint8_t kind;
    uint8_t flags;           /* GP_SLICE_HOST */
} gp_shim_alloc_t;

/* 0, or -1 when memory for the table ran out. */
int gp_shim_alloc_put(const gp_shim_alloc_t *a);
/* Remove the record of key and kind into *out: 0, or -1 when unknown. */
int gp_shim_alloc_take(uintptr_t key, int kind, gp_shim_alloc_t *out);
/* Drop every record (after fork, in the child). */
void gp_shim_alloc_clear(void);

#endif
