/*
 * placement.c - the placement engine's state (see placement.h): the policy
 * table, interned names, the seeded random source and tie order, nodes and
 * their devices, allocations (the invariants of placement.h are checked
 * here, in add_alloc), a job compiled against the engine (gp_pl_req_t),
 * the device-level helpers policies use, and the statistics.
 *
 * Beside it: placement_index.c (where to look: the summary tree),
 * placement_shape_index.c (the per-shape index and the change log),
 * placement_plan.c (where to go: scoring, search,
 * place/rank/score, gangs), placement_preempt.c (whom to move) and the
 * policies, policy_*.c, each a score function (placement_internal.h).
 * Every change to a node goes through gp_pl_changed, which stamps it and
 * logs it for the index.
 */
#include "placement_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

_Static_assert(offsetof(gp_pl_node_t, nallocs) + sizeof(int) <= GP_PL_NODE_HOT,
               "a node's scored fields span GP_PL_NODE_HOT bytes");

/* The policies, listed once: policy P is gp_policy_P, named "P" (the
 * name list and the table are both made from this list). */
#define S_POLICIES(X)                                                                    \
    X(binpack) X(spread) X(topology) X(fgd) X(random) X(dotprod) X(gpuclustering)         \
    X(gpupacking) X(bestfit) X(gpupool)
#define S_POLICY_ENTRY(p) &gp_policy_##p,
#define S_POLICY_NAME(p)  #p,

static const gp_policy_t *const s_policies[] = { S_POLICIES(S_POLICY_ENTRY) };
static const char *const s_policy_names[] = { S_POLICIES(S_POLICY_NAME) NULL };

const char *const *gp_policy_names(void)
{
    return s_policy_names;
}

static const gp_policy_t *s_policy_find(const char *name)
{
    for (size_t i = 0; i < GP_ARRAY_LEN(s_policies); i++)
        if (strcmp(s_policies[i]->name, name) == 0)
            return s_policies[i];
    return NULL;
}

const char *gp_policy_doc(const char *name)
{
    const gp_policy_t *p = s_policy_find(name);
    return p ? p->doc : NULL;
}

/* FNV-1a, mixed (seeds the random policy's per-node draw). */
static uint64_t s_hash(const char *s)
{
    uint64_t h = gp_hash_str(s);
    return h ^ (h >> 29);
}

/* ------------------------------------------------------------ name indexes
 * common/strmap maps (created on first use) whose values are ints. */

int gp_pl_map_find(const gp_strmap_t *m, const char *key)
{
    void *v = m ? gp_strmap_get(m, key) : NULL;
    return v ? (int)((intptr_t)v - 1) : -1;
}

/* Insert or replace. */
static int s_map_put(gp_strmap_t **m, const char *key, int val)
{
    if (*m == NULL && (*m = gp_strmap_new()) == NULL)
        return -1;
    return gp_strmap_put(*m, key, (void *)(intptr_t)(val + 1));
}

static void s_map_del(gp_strmap_t *m, const char *key)
{
    if (m)
        gp_strmap_del(m, key);
}

/* Interned strings: ids for regions, zones, labels ("k=v"). -1 for "". */
static int s_intern(gp_placement_t *pl, const char *s)
{
    if (*s == '\0')
        return -1;
    int id = gp_pl_map_find(pl->strings, s);
    if (id >= 0)
        return id;
    if (s_map_put(&pl->strings, s, pl->nstrings) < 0)
        return -2;
    return pl->nstrings++;
}

static int s_lookup(const gp_placement_t *pl, const char *s)
{
    return gp_pl_map_find(pl->strings, s);
}

/* ------------------------------------------------------------------ random */

uint64_t gp_pl_rand(gp_placement_t *pl)
{
    uint64_t z = (pl->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A node's place in the tie order: a hash of the seed and its name, so the
 * order is a random permutation fixed for a seed (the published simulator
 * prefixes node names with a seeded permutation index and takes the lowest
 * name among equal scores: first fit in a random but fixed order). */
static uint32_t s_rank(uint64_t seed, const char *name)
{
    uint64_t z = s_hash(name) ^ (seed * 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

void gp_placement_reseed(gp_placement_t *self, uint64_t seed)
{
    self->rng = seed * 0x2545F4914F6CDD1DULL + 1;
    self->seed = seed;
    bool any = false;
    for (int i = 0; i < self->nslots; i++)
        if (self->nodes[i].used) {
            self->nodes[i].rank = s_rank(seed, self->nodes[i].name);
            any = true;
        }
    if (any)
        self->epoch++;             /* the per-shape indexes are ordered by rank */
}

/* ------------------------------------------------------------ lifecycle */

static void s_node_refresh(gp_pl_node_t *n);

/* Generations are drawn from one counter for every engine of the
 * process: an engine rebuilt from scratch never repeats a value that an
 * earlier one had, so a memo of (generation, verdict) cannot outlive its
 * engine by coincidence. */
static atomic_uint_fast64_t s_generations;

static void s_new_generation(gp_placement_t *pl)
{
    pl->gen = atomic_fetch_add_explicit(&s_generations, 1, memory_order_relaxed) + 1;
}

gp_placement_t *gp_placement_new(const gp_placement_opts_t *opts, gp_err_t *err)
{
    gp_placement_opts_t def = GP_PLACEMENT_OPTS_DEFAULT;
    if (opts == NULL)
        opts = &def;
    const gp_policy_t *pol = s_policy_find(opts->policy ? opts->policy : "binpack");
    if (pol == NULL) {
        gp_err_set(err, GP_ERR_INVALID, "unknown policy \"%s\"", opts->policy);
        return NULL;
    }
    gp_placement_t *pl = calloc(1, sizeof *pl);
    if (pl == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pl->policy = pol;
    pl->plan_slot = -1;
    s_new_generation(pl);
    gp_placement_reseed(pl, opts->seed);
    pl->full_scan_nodes = opts->full_scan_nodes > 0 ? opts->full_scan_nodes : 4096;
    pl->max_candidates = opts->max_candidates > 0 ? opts->max_candidates : 512;
    pl->no_job_index = opts->no_job_index;
    pl->next_learn = 16;
    if (gp_pl_tree_resize(pl, 64) < 0) {
        free(pl);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return pl;
}

/* ------------------------------------------------------------ allocation memory
 *
 * An allocation and its job id are one block (the id after the devices).
 * Blocks come from the engine's own pool: per size class (32-byte grains
 * up to 1 KiB) a list of freed blocks, and slabs of 64 KiB that new
 * blocks are carved from; the slabs are freed with the engine.  A
 * placement and a removal are then a push and a pop, and the many small
 * blocks a long run frees (one per departure, in a simulator) are never
 * coalesced by the allocator, which with its fast bins does it all at
 * once, in one pass over every freed block, at the next large request.
 * The memory of allocations removed stays with the engine for the next
 * ones.  Under AddressSanitizer every block is malloc'd, so that a use
 * after removal is still caught. */
#define S_SLAB (64 * 1024)

static gp_pl_alloc_t *s_alloc_new(gp_placement_t *pl, size_t size)
{
    int cls = (int)((size + GP_PL_POOL_GRAIN - 1) / GP_PL_POOL_GRAIN) - 1;
#ifdef __SANITIZE_ADDRESS__
    cls = GP_PL_POOL_CLASSES;
#endif
    if (cls >= GP_PL_POOL_CLASSES) {
        gp_pl_alloc_t *a = calloc(1, size);
        if (a)
            a->cls = -1;
        return a;
    }
    size_t bsize = (size_t)(cls + 1) * GP_PL_POOL_GRAIN;
    void *b = pl->pool_free[cls];
    if (b != NULL) {
        memcpy(&pl->pool_free[cls], b, sizeof(void *));
    } else {
        if (pl->slab_left < bsize) {
            if (pl->nslabs == pl->slabs_cap) {
                int ncap = pl->slabs_cap ? pl->slabs_cap * 2 : 16;
                void **ns = realloc(pl->slabs, sizeof *ns * (size_t)ncap);
                if (ns == NULL)
                    return NULL;
                pl->slabs = ns;
                pl->slabs_cap = ncap;
            }
            char *slab = aligned_alloc(64, S_SLAB);
            if (slab == NULL)
                return NULL;
            pl->slabs[pl->nslabs++] = slab;
            pl->slab_at = slab;
            pl->slab_left = S_SLAB;
        }
        b = pl->slab_at;
        pl->slab_at += bsize;
        pl->slab_left -= bsize;
    }
    memset(b, 0, bsize);
    gp_pl_alloc_t *a = b;
    a->cls = cls;
    return a;
}

static void s_alloc_free(gp_placement_t *pl, gp_pl_alloc_t *a)
{
    if (a->cls < 0) {
        free(a);
        return;
    }
    void *b = a;
    memcpy(b, &pl->pool_free[a->cls], sizeof(void *));
    pl->pool_free[a->cls] = b;
}

static void s_node_clear(gp_pl_node_t *n)
{
    free(n->name);
    for (int i = 0; i < n->ndev; i++)
        free(n->dev[i].uuid);
    free(n->dev);
    free(n->labels);
    free(n->allocs);
    free(n->cache);
    memset(n, 0, sizeof *n);
}

void gp_placement_destroy(gp_placement_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gp_placement_t *pl = *self_p;
    for (int i = 0; i < pl->nslots; i++)
        s_node_clear(&pl->nodes[i]);
    free(pl->nodes);
    free(pl->free_slots);
    for (int i = 0; i < pl->nallocs; i++)
        if (pl->allocs[i]->cls < 0)
            free(pl->allocs[i]);
    free(pl->allocs);
    for (int i = 0; i < pl->nslabs; i++)
        free(pl->slabs[i]);
    free(pl->slabs);
    gp_strmap_destroy(&pl->node_index);
    gp_strmap_destroy(&pl->job_index);
    gp_strmap_destroy(&pl->strings);
    gp_strmap_destroy(&pl->kinds);
    for (int g = 0; g < pl->ngroups; g++) {
        free(pl->group_vendor[g]);
        free(pl->group_model[g]);
    }
    free(pl->tree);
    free(pl->brief);
    free(pl->explain_memo);
    if (pl->shape_ix) {
        gp_pl_index_free(pl);
        free(pl->shape_ix);
    }
    free(pl->changes);
    free(pl->change_live);
    free(pl->change_scratch);
    free(pl->last_change);
    free(pl->empty_kind);
    gp_pl_typical_free(pl->typical);
    free(pl->seen);
    free(pl->seen_w);
    free(pl);
    *self_p = NULL;
}

int gp_placement_set_policy(gp_placement_t *self, const char *policy, gp_err_t *err)
{
    const gp_policy_t *p = s_policy_find(policy);
    if (p == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "unknown policy \"%s\"", policy);
    self->policy = p;
    s_new_generation(self);
    return 0;
}

const char *gp_placement_policy(const gp_placement_t *self)
{
    return self->policy->name;
}

/* ------------------------------------------------------------------ nodes */


static int s_group(gp_placement_t *pl, const char *vendor, const char *model, int64_t mem)
{
    for (int g = 0; g < pl->ngroups; g++)
        if (strcmp(pl->group_vendor[g], vendor) == 0 && strcmp(pl->group_model[g], model) == 0)
            return g;
    if (pl->ngroups >= GP_PL_MAX_GROUPS * 4)
        return -1;
    int g = pl->ngroups;
    pl->group_vendor[g] = strdup(vendor);
    pl->group_model[g] = strdup(model);
    if (pl->group_vendor[g] == NULL || pl->group_model[g] == NULL) {
        free(pl->group_vendor[g]);
        free(pl->group_model[g]);
        return -1;
    }
    pl->group_mem[g] = mem;
    pl->ngroups++;
    pl->epoch++;               /* FGD tables depend on the set of models */
    gp_pl_typical_free(pl->typical);
    pl->typical = NULL;
    return g;
}

static bool s_dev_alike(const gp_pl_dev_t *a, const gp_pl_dev_t *b)
{
    return a->mem_cap == b->mem_cap && a->mem_phys == b->mem_phys && a->healthy == b->healthy &&
           a->numa == b->numa && a->links == b->links && a->group == b->group;
}

/* A node's kind: everything of its state without allocations but the
 * names (its own, the devices' uuids), written out as a key and numbered
 * from 1 in order of appearance; 0 when out of memory (no kind). */
static int s_kind(gp_placement_t *pl, const gp_pl_node_t *n)
{
    char key[64 + GP_MAX_LABELS * 12 + GP_MAX_DEVICES * 80];
    size_t len = (size_t)snprintf(key, sizeof key, "%d %lld %lld %d %d %d %d %d", n->healthy,
                                  (long long)n->cpu_cap, (long long)n->mem_cap, n->ndev,
                                  n->region, n->cloud, n->zone, n->nlabels);
    for (int i = 0; i < n->nlabels && len < sizeof key; i++)
        len += (size_t)snprintf(key + len, sizeof key - len, " l%d", n->labels[i]);
    /* devices alike (the usual node) are written once */
    int same = 1;
    while (same < n->ndev && s_dev_alike(&n->dev[same], &n->dev[0]))
        same++;
    for (int i = 0; i < n->ndev && len < sizeof key; i += i == 0 ? same : 1) {
        const gp_pl_dev_t *d = &n->dev[i];
        len += (size_t)snprintf(key + len, sizeof key - len, " d%lld,%lld,%d,%d,%u,%d",
                                (long long)d->mem_cap, (long long)d->mem_phys, d->healthy,
                                d->numa, d->links, d->group);
        if (i == 0 && len < sizeof key)
            len += (size_t)snprintf(key + len, sizeof key - len, "x%d", same);
    }
    if (len >= sizeof key)
        return 0;
    int id = gp_pl_map_find(pl->kinds, key);
    if (id > 0)
        return id;
    if (s_map_put(&pl->kinds, key, pl->nkinds + 1) < 0)
        return 0;
    return ++pl->nkinds;
}

static int s_node_fill(gp_placement_t *pl, gp_pl_node_t *n, const gp_node_t *src, gp_err_t *err)
{
    memset(n, 0, sizeof *n);
    n->name = strdup(src->name);
    n->dev = calloc((size_t)(src->ndevices ? src->ndevices : 1), sizeof *n->dev);
    n->labels = calloc((size_t)(src->nlabels ? src->nlabels : 1), sizeof *n->labels);
    if (n->name == NULL || n->dev == NULL || n->labels == NULL)
        goto nomem;
    n->used = true;
    n->rank = s_rank(pl->seed, src->name);
    n->healthy = src->healthy;
    n->cpu_cap = n->cpu_free = src->cpu_milli;
    n->mem_cap = n->mem_free = src->mem_mib;
    n->ndev = src->ndevices;
    n->group = -1;
    n->region = s_intern(pl, src->region);
    n->cloud = s_intern(pl, src->cloud);
    n->zone = s_intern(pl, src->zone);
    if (n->region < -1 || n->cloud < -1 || n->zone < -1)
        goto nomem;
    for (int i = 0; i < src->nlabels; i++) {
        char kv[2 * GP_SHORT_LEN + 2];
        snprintf(kv, sizeof kv, "%s=%s", src->labels[i].key, src->labels[i].value);
        if ((n->labels[i] = s_intern(pl, kv)) < 0)
            goto nomem;
    }
    n->nlabels = src->nlabels;
    for (int i = 0; i < src->ndevices; i++) {
        const gp_device_t *s = &src->devices[i];
        gp_pl_dev_t *d = &n->dev[i];
        d->mem_phys = s->mem_mib;
        d->mem_cap = d->mem_free = (int64_t)((double)s->mem_mib * src->oversub);
        d->comp_free = 1000;
        d->healthy = s->healthy;
        d->numa = s->numa;
        d->links = s->links;
        d->uuid = strdup(s->uuid);
        d->group = s_group(pl, s->vendor, s->model, s->mem_mib);
        if (d->uuid == NULL)
            goto nomem;
        if (d->group < 0) {
            s_node_clear(n);
            return gp_err_set(err, GP_ERR_INVALID, "node %s: more than %d device models",
                              src->name, GP_PL_MAX_GROUPS * 4);
        }
        if (i == 0)
            n->group = d->group;
    }
    s_node_refresh(n);
    n->kind = s_kind(pl, n);
    if (src->cpu_milli > pl->max_cpu) {
        pl->max_cpu = (double)src->cpu_milli;
        pl->epoch++;           /* scores normalised by the largest node */
    }
    if (src->ndevices * 1000.0 > pl->max_gpu_milli) {
        pl->max_gpu_milli = src->ndevices * 1000.0;
        pl->epoch++;
    }
    return 0;
nomem:
    s_node_clear(n);
    return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
}

static int s_alloc_check(const gp_placement_t *pl, const gp_pl_node_t *n,
                         const gp_pl_alloc_t *a, gp_err_t *err);

int gp_placement_add_node(gp_placement_t *self, const gp_node_t *node, gp_err_t *err)
{
    if (gp_node_validate(node, err) < 0)
        return -1;
    int slot = gp_pl_map_find(self->node_index, node->name);
    if (slot >= 0) {
        /* Update: rebuild the node, then re-apply its allocations. */
        gp_pl_node_t *old = &self->nodes[slot];
        gp_pl_node_t fresh;
        if (s_node_fill(self, &fresh, node, err) < 0)
            return -1;
        for (int i = 0; i < old->nallocs; i++) {
            gp_pl_alloc_t *a = old->allocs[i];
            for (int k = 0; k < a->ndev; k++) {
                int idx = a->dev[k].idx;
                if (idx >= fresh.ndev || strcmp(fresh.dev[idx].uuid, old->dev[idx].uuid) != 0) {
                    s_node_clear(&fresh);
                    return gp_err_set(err, GP_ERR_CONFLICT,
                                      "node %s: update drops device %s used by job %s",
                                      node->name, old->dev[idx].uuid, a->job);
                }
            }
        }
        gp_pl_alloc_t **list = old->allocs;
        int nlist = old->nallocs;
        fresh.version = ++self->clock;
        old->allocs = NULL;
        s_node_clear(old);
        *old = fresh;
        for (int i = 0; i < nlist; i++)
            gp_pl_apply(self, list[i], +1);
        free(list);
        s_new_generation(self);
        gp_pl_changed(self, slot);
        gp_pl_tree_update(self, slot);
        return 0;
    }
    if (self->nfree > 0) {
        slot = self->free_slots[--self->nfree];
    } else {
        if (self->nslots == self->slots_cap) {
            int ncap = self->slots_cap ? self->slots_cap * 2 : 64;
            gp_pl_node_t *nn = realloc(self->nodes, sizeof *nn * (size_t)ncap);
            int *fs = realloc(self->free_slots, sizeof *fs * (size_t)ncap);
            if (nn == NULL || fs == NULL) {
                if (nn)
                    self->nodes = nn;
                if (fs)
                    self->free_slots = fs;
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
            self->nodes = nn;
            self->free_slots = fs;
            self->slots_cap = ncap;
        }
        slot = self->nslots;
        memset(&self->nodes[slot], 0, sizeof self->nodes[slot]);
    }
    if (s_node_fill(self, &self->nodes[slot], node, err) < 0 ||
        s_map_put(&self->node_index, node->name, slot) < 0) {
        if (self->nodes[slot].used)
            s_node_clear(&self->nodes[slot]);
        if (slot < self->nslots)
            self->free_slots[self->nfree++] = slot;
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    if (slot == self->nslots)
        self->nslots++;
    self->nnodes++;
    s_new_generation(self);
    gp_pl_changed(self, slot);
    if (self->nslots > self->tree_leaves) {
        if (gp_pl_tree_resize(self, self->nslots) < 0)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    } else {
        gp_pl_tree_update(self, slot);
    }
    return 0;
}

/* The job index maps a job to its allocation itself, and an allocation
 * knows its place in allocs: a removal is one lookup and one deletion. */
static gp_pl_alloc_t *s_alloc_find(const gp_placement_t *pl, const char *job)
{
    return pl->job_index ? gp_strmap_get(pl->job_index, job) : NULL;
}

static void s_alloc_unlink(gp_placement_t *pl, gp_pl_alloc_t *a)
{
    s_map_del(pl->job_index, a->job);
    int idx = a->ix;
    if (idx < pl->nallocs - 1) {
        pl->allocs[idx] = pl->allocs[pl->nallocs - 1];
        pl->allocs[idx]->ix = idx;
    }
    pl->nallocs--;
}

int gp_placement_remove_node(gp_placement_t *self, const char *name, gp_err_t *err)
{
    int slot = gp_pl_map_find(self->node_index, name);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no node %s", name);
    gp_pl_node_t *n = &self->nodes[slot];
    for (int i = 0; i < n->nallocs; i++) {
        s_alloc_unlink(self, n->allocs[i]);
        s_alloc_free(self, n->allocs[i]);
    }
    s_node_clear(n);
    s_map_del(self->node_index, name);
    self->free_slots[self->nfree++] = slot;
    self->nnodes--;
    s_new_generation(self);
    gp_pl_changed(self, slot);
    gp_pl_tree_update(self, slot);
    return 0;
}

/* ------------------------------------------------------------ allocations */

/* Add (sign +1) or take back (-1) an allocation's resources on its node;
 * +1 also links it into the node's list, -1 unlinks it. */
void gp_pl_apply(gp_placement_t *pl, gp_pl_alloc_t *a, int sign)
{
    gp_pl_node_t *n = &pl->nodes[a->node];
    n->cpu_free -= sign * a->cpu;
    n->mem_free -= sign * a->mem;
    for (int k = 0; k < a->ndev; k++) {
        gp_pl_dev_t *d = &n->dev[a->dev[k].idx];
        d->mem_free -= sign * a->dev[k].mem;
        d->comp_free -= sign * a->dev[k].comp;
        d->nalloc += sign;
        if (a->dev[k].whole)
            d->whole_taken = sign > 0;
    }
    if (sign > 0) {
        if (n->nallocs == n->allocs_cap) {
            int ncap = n->allocs_cap ? n->allocs_cap * 2 : 4;
            gp_pl_alloc_t **na = realloc(n->allocs, sizeof *na * (size_t)ncap);
            if (na == NULL)
                abort();       /* tiny; treated like a failed stack growth */
            n->allocs = na;
            n->allocs_cap = ncap;
        }
        n->allocs[n->nallocs++] = a;
    } else {
        for (int i = 0; i < n->nallocs; i++)
            if (n->allocs[i] == a) {
                n->allocs[i] = n->allocs[--n->nallocs];
                break;
            }
    }
    s_node_refresh(n);
    gp_pl_changed(pl, a->node);
    gp_pl_tree_update(pl, a->node);
}

static int s_alloc_check(const gp_placement_t *pl, const gp_pl_node_t *n,
                         const gp_pl_alloc_t *a, gp_err_t *err)
{
    (void)pl;
    if (a->cpu > n->cpu_free || a->mem > n->mem_free)
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s: node %s lacks CPU or host memory",
                          a->job, n->name);
    for (int k = 0; k < a->ndev; k++) {
        const gp_pl_dev_t *d = &n->dev[a->dev[k].idx];
        for (int j = 0; j < k; j++)
            if (a->dev[j].idx == a->dev[k].idx)
                return gp_err_set(err, GP_ERR_CONFLICT, "job %s: device %s named twice",
                                  a->job, d->uuid);
        if (d->whole_taken || (a->dev[k].whole && d->nalloc > 0) ||
            a->dev[k].mem > d->mem_free || a->dev[k].comp > d->comp_free)
            return gp_err_set(err, GP_ERR_CONFLICT,
                              "job %s: device %s on node %s lacks room", a->job, d->uuid,
                              n->name);
    }
    return 0;
}

int gp_placement_add_alloc(gp_placement_t *self, const gp_alloc_t *alloc, gp_err_t *err)
{
    gp_placement_ref_t *ref;
    return gp_placement_add_alloc_ref(self, alloc, &ref, err);
}

int gp_placement_add_alloc_ref(gp_placement_t *self, const gp_alloc_t *alloc,
                               gp_placement_ref_t **ref, gp_err_t *err)
{
    /* most commits are of the plan place() just made: its node first */
    int slot = self->plan_slot;
    if (slot < 0 || slot >= self->nslots || !self->nodes[slot].used ||
        strcmp(self->nodes[slot].name, alloc->node) != 0)
        slot = gp_pl_map_find(self->node_index, alloc->node);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node %s", alloc->job, alloc->node);
    if (alloc->job[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "allocation without a job id");
    if (!self->no_job_index && s_alloc_find(self, alloc->job) != NULL)
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s is already allocated", alloc->job);
    gp_pl_node_t *n = &self->nodes[slot];
    if (alloc->ndevices < 0 || alloc->ndevices > n->ndev)
        return gp_err_set(err, GP_ERR_INVALID, "job %s: %d devices on a node of %d",
                          alloc->job, alloc->ndevices, n->ndev);
    gp_pl_alloc_t *a;
    size_t devs = sizeof *a + sizeof a->dev[0] * (size_t)alloc->ndevices;
    size_t idlen = strnlen(alloc->job, sizeof alloc->job - 1) + 1;
    a = s_alloc_new(self, devs + idlen);
    if (a == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    a->job = (char *)a + devs;
    memcpy(a->job, alloc->job, idlen - 1);
    a->node = slot;
    a->priority = alloc->priority;
    a->cpu = alloc->cpu_milli;
    a->mem = alloc->host_mem_mib;
    a->ndev = alloc->ndevices;
    for (int k = 0; k < a->ndev; k++) {
        const gp_alloc_dev_t *s = &alloc->devices[k];
        int idx = s->index;
        if (s->uuid[0] && (idx >= n->ndev || strcmp(n->dev[idx].uuid, s->uuid) != 0)) {
            idx = -1;
            for (int i = 0; i < n->ndev; i++)
                if (strcmp(n->dev[i].uuid, s->uuid) == 0)
                    idx = i;
        }
        if (idx < 0 || idx >= n->ndev) {
            s_alloc_free(self, a);
            return gp_err_set(err, GP_ERR_INVALID, "job %s: no device %s (index %d) on node %s",
                              alloc->job, s->uuid, s->index, alloc->node);
        }
        a->dev[k].idx = idx;
        a->dev[k].whole = s->whole;
        a->dev[k].mem = s->whole ? n->dev[idx].mem_cap : s->mem_mib;
        a->dev[k].comp = s->whole ? 1000 : s->compute_permille;
        if (a->dev[k].mem < 0 || a->dev[k].comp < 0 || a->dev[k].comp > 1000) {
            s_alloc_free(self, a);
            return gp_err_set(err, GP_ERR_INVALID, "job %s: bad device share", alloc->job);
        }
    }
    /* gpuclustering's tag: a fractional job is "share", a whole one "N whole" */
    a->tag = a->ndev == 0 ? -1 : a->dev[0].whole ? a->ndev : 0;
    if (s_alloc_check(self, n, a, err) < 0) {
        s_alloc_free(self, a);
        return -1;
    }
    if (self->nallocs == self->allocs_cap) {
        int ncap = self->allocs_cap ? self->allocs_cap * 2 : 256;
        gp_pl_alloc_t **na = realloc(self->allocs, sizeof *na * (size_t)ncap);
        if (na == NULL) {
            s_alloc_free(self, a);
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        self->allocs = na;
        self->allocs_cap = ncap;
    }
    if (!self->no_job_index &&
        ((self->job_index == NULL && (self->job_index = gp_strmap_new()) == NULL) ||
         gp_strmap_put(self->job_index, a->job, a) < 0)) {
        s_alloc_free(self, a);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    a->ix = self->nallocs;
    self->allocs[self->nallocs++] = a;
    gp_pl_apply(self, a, +1);
    *ref = a;
    return 0;
}

int gp_placement_remove_alloc(gp_placement_t *self, const char *job, gp_err_t *err)
{
    gp_pl_alloc_t *a = s_alloc_find(self, job);
    if (a == NULL)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no allocation for job %s", job);
    gp_placement_remove_ref(self, a);
    return 0;
}

void gp_placement_remove_ref(gp_placement_t *self, gp_placement_ref_t *ref)
{
    gp_pl_apply(self, ref, -1);
    s_alloc_unlink(self, ref);
    s_alloc_free(self, ref);
}

void gp_placement_prefetch_ref(const gp_placement_t *self, const gp_placement_ref_t *ref,
                               int stage)
{
    const char *a = (const char *)ref;
    if (stage == 0) {
        __builtin_prefetch(a);
        __builtin_prefetch(a + 64);
        return;
    }
    int slot = ref->node;
    const gp_pl_node_t *n = &self->nodes[slot];
    if (stage == 1) {
        /* the node, its summary (and the summaries above it) and brief,
         * its place in the change log and among the positions, and the
         * allocation's place in the list */
        for (size_t o = 0; o < sizeof *n; o += 64)
            __builtin_prefetch((const char *)n + o);
        __builtin_prefetch((const char *)(n + 1) - 1);
        gp_pl_prefetch_change(self, slot);
        __builtin_prefetch(&self->allocs[ref->ix]);
        return;
    }
    /* the devices it holds and the node's list of allocations */
    for (int k = 0; k < ref->ndev; k++)
        __builtin_prefetch(&n->dev[ref->dev[k].idx]);
    __builtin_prefetch(n->allocs);
    if (slot < self->ix_cap && self->ix_at[slot] >= 0)
        __builtin_prefetch(&self->ix_mem[(1 << self->ix_bits) + self->ix_at[slot]]);
}

static void s_alloc_export(const gp_placement_t *pl, const gp_pl_alloc_t *a, gp_alloc_t *out)
{
    const gp_pl_node_t *n = &pl->nodes[a->node];
    gp_alloc_init(out);
    gp_strlcpy(out->job, a->job, sizeof out->job);
    gp_strlcpy(out->node, n->name, sizeof out->node);
    out->priority = a->priority;
    out->cpu_milli = a->cpu;
    out->host_mem_mib = a->mem;
    out->ndevices = a->ndev;
    for (int k = 0; k < a->ndev; k++) {
        const gp_pl_dev_t *d = &n->dev[a->dev[k].idx];
        gp_strlcpy(out->devices[k].uuid, d->uuid, sizeof out->devices[k].uuid);
        out->devices[k].index = a->dev[k].idx;
        out->devices[k].mem_mib = a->dev[k].whole ? d->mem_phys : a->dev[k].mem;
        out->devices[k].compute_permille = a->dev[k].comp;
        out->devices[k].whole = a->dev[k].whole;
    }
}

int gp_placement_get_alloc(const gp_placement_t *self, const char *job, gp_alloc_t *out)
{
    const gp_pl_alloc_t *a = s_alloc_find(self, job);
    if (a == NULL)
        return -1;
    s_alloc_export(self, a, out);
    return 0;
}

/* ------------------------------------------------------------ requests */

static void s_fill_ids(const gp_placement_t *pl, const gp_strlist_t *l, int *ids, int *n)
{
    *n = l->n;
    for (int i = 0; i < l->n; i++)
        ids[i] = s_lookup(pl, l->v[i]);
}

static bool s_group_allowed(const gp_placement_t *pl, const gp_job_t *j, int g)
{
    const char *vendor = pl->group_vendor[g], *model = pl->group_model[g];
    if (j->vendors.n && !gp_strlist_has(&j->vendors, vendor))
        return false;
    if (gp_strlist_has(&j->exclude_vendors, vendor) || gp_strlist_has(&j->exclude_models, model))
        return false;
    return j->models.n == 0 || gp_strlist_has(&j->models, model);
}

int gp_pl_compile(gp_placement_t *pl, const gp_job_t *job, gp_pl_req_t *r, gp_err_t *err)
{
    if (gp_job_validate(job, err) < 0)
        return -1;
    memset(r, 0, offsetof(gp_pl_req_t, allowed));
    r->job = job;
    r->policy = pl->policy;
    if (job->policy[0] && (r->policy = s_policy_find(job->policy)) == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "job %s: unknown policy \"%s\"", job->id,
                          job->policy);
    r->n = job->devices;
    r->whole = job->whole;
    r->mem_mib = job->mem_mib;
    r->mem_pm = job->mem_permille;
    r->comp_pm = job->compute_permille;
    r->cpu = job->cpu_milli;
    r->hmem = job->host_mem_mib;
    r->priority = job->priority;
    r->dev_filter = job->uuids.n > 0 || job->exclude_uuids.n > 0;
    for (int g = 0; g < pl->ngroups; g++) {
        r->allowed[g] = s_group_allowed(pl, job, g);
        if (r->allowed[g])
            r->group_mask |= 1ULL << (g < 63 ? g : 63);
    }
    const gp_strlist_t *pins[3] = {&job->regions, &job->clouds, &job->zones};
    const gp_strlist_t *prefs[3] = {&job->prefer_regions, &job->prefer_clouds,
                                    &job->prefer_zones};
    for (int i = 0; i < 3; i++) {
        s_fill_ids(pl, pins[i], r->pin[i], &r->npin[i]);
        s_fill_ids(pl, prefs[i], r->pref[i], &r->npref[i]);
        if (r->npref[i])
            r->has_pref = true;
        if (r->npin[i])
            r->node_filter = true;
    }
    r->nlabels = job->nlabels;
    for (int i = 0; i < job->nlabels; i++) {
        char kv[2 * GP_SHORT_LEN + 2];
        snprintf(kv, sizeof kv, "%s=%s", job->labels[i].key, job->labels[i].value);
        r->labels[i] = s_lookup(pl, kv);
        if (r->labels[i] < 0)
            r->impossible = true;
        r->node_filter = true;
    }
    if (r->whole)
        r->milli = 1000;
    else if (r->n > 0) {
        int m = r->comp_pm;
        int mm = r->mem_pm;
        if (r->mem_mib > 0) {
            int64_t big = 0;
            for (int g = 0; g < pl->ngroups; g++)
                if (pl->group_mem[g] > big)
                    big = pl->group_mem[g];
            mm = big > 0 ? (int)((r->mem_mib * 1000 + big - 1) / big) : 1000;
        }
        r->milli = m > mm ? m : mm;
        if (r->milli > 1000)
            r->milli = 1000;
    }
    /* the shape: everything a cacheable policy's score depends on */
    uint64_t h = 1469598103934665603ULL;
    int64_t parts[] = {r->n, r->whole, r->mem_mib, r->mem_pm, r->comp_pm, r->cpu,
                       (int64_t)r->group_mask, (int64_t)(uintptr_t)r->policy};
    for (size_t i = 0; i < GP_ARRAY_LEN(parts); i++)
        h = (h ^ (uint64_t)parts[i]) * 1099511628211ULL;
    r->shape_devices = h ^ (h >> 31);
    h = (h ^ (uint64_t)r->hmem) * 1099511628211ULL;
    r->shape = h ^ (h >> 31);
    return 0;
}

/* ------------------------------------------------------------ device level */

static int s_dev_milli_calc(const gp_pl_dev_t *d)
{
    if (!d->healthy || d->whole_taken)
        return 0;
    int64_t m = (d->mem_free * 1000 + d->mem_cap / 2) / d->mem_cap;
    return m < d->comp_free ? (int)m : d->comp_free;
}

static void s_node_refresh(gp_pl_node_t *n)
{
    n->gpu_free = 0;
    for (int i = 0; i < n->ndev; i++) {
        n->dev[i].milli = s_dev_milli_calc(&n->dev[i]);
        n->gpu_free += n->dev[i].milli;
    }
}

bool gp_pl_dev_fits_slow(const gp_pl_dev_t *d, const gp_pl_req_t *r)
{
    const gp_job_t *j = r->job;
    if (j->uuids.n && !gp_strlist_has(&j->uuids, d->uuid))
        return false;
    return !gp_strlist_has(&j->exclude_uuids, d->uuid);
}

/*
 * Device choice.  PACK takes the fitting devices with the least free share
 * first (keeps whole devices whole), SPREAD the most free first (lowest
 * interference), FIRST in index order.  TOPO, for multi-device jobs, tries
 * each fitting device as a seed and grows a set greedily by the number of
 * links into the set, then same NUMA node as the seed, then PACK order; the
 * set with the most internal links (then most same-NUMA pairs) wins.  For a
 * single device it is PACK.
 */
bool gp_pl_pick(const gp_placement_t *pl, const gp_pl_node_t *node, const gp_pl_req_t *r,
                int mode, int8_t *pick)
{
    int8_t fit[GP_MAX_DEVICES];
    int key[GP_MAX_DEVICES];
    int nf = 0;
    if (r->n == 0)
        return true;
    for (int i = 0; i < node->ndev; i++)
        if (gp_pl_dev_fits(pl, &node->dev[i], r)) {
            fit[nf] = (int8_t)i;
            key[nf] = mode == GP_PICK_FIRST ? i
                    : mode == GP_PICK_SPREAD ? -gp_pl_dev_free_milli(&node->dev[i])
                    : gp_pl_dev_free_milli(&node->dev[i]);
            nf++;
        }
    if (nf < r->n)
        return false;
    /* insertion sort by key, stable */
    for (int i = 1; i < nf; i++) {
        int8_t f = fit[i];
        int k = key[i], j = i - 1;
        while (j >= 0 && key[j] > k) {
            fit[j + 1] = fit[j];
            key[j + 1] = key[j];
            j--;
        }
        fit[j + 1] = f;
        key[j + 1] = k;
    }
    if (mode != GP_PICK_TOPO || r->n == 1 || r->n == nf) {
        memcpy(pick, fit, (size_t)r->n);
        return true;
    }
    int best_q = -1;
    for (int s = 0; s < nf; s++) {
        int8_t set[GP_MAX_DEVICES];
        bool in[GP_MAX_DEVICES] = {false};
        int ns = 0, q = 0;
        set[ns++] = fit[s];
        in[s] = true;
        int seed_numa = node->dev[fit[s]].numa;
        while (ns < r->n) {
            int bi = -1, bl = -1, bn = -1;
            for (int c = 0; c < nf; c++) {
                if (in[c])
                    continue;
                int links = 0;
                for (int k = 0; k < ns; k++)
                    links += (node->dev[fit[c]].links >> set[k]) & 1u;
                int numa = node->dev[fit[c]].numa == seed_numa;
                if (links > bl || (links == bl && numa > bn)) {
                    bi = c;
                    bl = links;
                    bn = numa;
                }
            }
            in[bi] = true;
            set[ns++] = fit[bi];
        }
        for (int a = 0; a < ns; a++)
            for (int b = a + 1; b < ns; b++) {
                q += 4 * (int)((node->dev[set[a]].links >> set[b]) & 1u);
                q += node->dev[set[a]].numa == node->dev[set[b]].numa;
            }
        if (q > best_q) {
            best_q = q;
            memcpy(pick, set, (size_t)r->n);
        }
    }
    return true;
}

int64_t gp_pl_node_gpu_free(const gp_pl_node_t *n)
{
    return n->gpu_free;
}

void gp_pl_max_spec(const gp_placement_t *pl, double *cpu, double *gpu_milli)
{
    *cpu = pl->max_cpu > 0 ? pl->max_cpu : 1;
    *gpu_milli = pl->max_gpu_milli > 0 ? pl->max_gpu_milli : 1;
}

int gp_placement_node_count(const gp_placement_t *self)
{
    return self->nnodes;
}

uint64_t gp_placement_generation(const gp_placement_t *self)
{
    return self->gen;
}

void gp_placement_stats(const gp_placement_t *self, gp_placement_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int s = 0; s < self->nslots; s++) {
        const gp_pl_node_t *n = &self->nodes[s];
        if (!n->used)
            continue;
        out->nodes++;
        out->devices += n->ndev;
        out->cpu_total += n->cpu_cap;
        out->cpu_used += n->cpu_cap - n->cpu_free;
        for (int i = 0; i < n->ndev; i++) {
            const gp_pl_dev_t *d = &n->dev[i];
            out->gpu_milli_total += 1000;
            int used;
            if (d->whole_taken)
                used = 1000;
            else {
                int64_t m = ((d->mem_cap - d->mem_free) * 1000 + d->mem_cap / 2) / d->mem_cap;
                int c = 1000 - d->comp_free;
                used = m > c ? (int)m : c;
                if (used > 1000)
                    used = 1000;
            }
            out->gpu_milli_used += used;
        }
    }
    out->allocs = self->nallocs;
}
