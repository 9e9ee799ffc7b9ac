/* placement.c - the placement engine (see placement.h). */
#include "placement_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

static const gp_policy_t *const s_policies[] = {
    &gp_policy_binpack, &gp_policy_spread, &gp_policy_topology, &gp_policy_fgd,
    &gp_policy_random, &gp_policy_dotprod, &gp_policy_gpuclustering, &gp_policy_gpupacking,
    &gp_policy_bestfit,
};

static const char *const s_policy_names[] = {
    "binpack", "spread", "topology", "fgd", "random", "dotprod", "gpuclustering",
    "gpupacking", "bestfit", NULL,
};

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

/* ------------------------------------------------------------ string map
 * Open addressing with linear probing; keys are owned copies; deleted
 * slots are tombstones (key == s_tomb) until the next grow. */

static char s_tomb_key;
#define S_TOMB (&s_tomb_key)

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int s_map_find(const gp_pl_map_t *m, const char *key)
{
    if (m->cap == 0)
        return -1;
    for (size_t i = s_hash(key) & (size_t)(m->cap - 1);; i = (i + 1) & (size_t)(m->cap - 1)) {
        if (m->keys[i] == NULL)
            return -1;
        if (m->keys[i] != S_TOMB && strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static int s_map_grow(gp_pl_map_t *m)
{
    int ncap = m->cap ? m->cap * 2 : 64;
    while ((m->n + 1) * 2 > ncap)
        ncap *= 2;
    char **keys = calloc((size_t)ncap, sizeof *keys);
    int *vals = calloc((size_t)ncap, sizeof *vals);
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return -1;
    }
    for (int i = 0; i < m->cap; i++) {
        if (m->keys[i] == NULL || m->keys[i] == S_TOMB)
            continue;
        size_t j = s_hash(m->keys[i]) & (size_t)(ncap - 1);
        while (keys[j])
            j = (j + 1) & (size_t)(ncap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = ncap;
    m->tomb = 0;
    return 0;
}

/* Insert or replace. */
static int s_map_put(gp_pl_map_t *m, const char *key, int val)
{
    if ((m->n + m->tomb + 1) * 2 > m->cap && s_map_grow(m) < 0)
        return -1;
    size_t i = s_hash(key) & (size_t)(m->cap - 1);
    for (;; i = (i + 1) & (size_t)(m->cap - 1)) {
        if (m->keys[i] == NULL)
            break;
        if (m->keys[i] != S_TOMB && strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return 0;
        }
    }
    char *k = strdup(key);
    if (k == NULL)
        return -1;
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    return 0;
}

static void s_map_del(gp_pl_map_t *m, const char *key)
{
    if (m->cap == 0)
        return;
    for (size_t i = s_hash(key) & (size_t)(m->cap - 1);; i = (i + 1) & (size_t)(m->cap - 1)) {
        if (m->keys[i] == NULL)
            return;
        if (m->keys[i] != S_TOMB && strcmp(m->keys[i], key) == 0) {
            free(m->keys[i]);
            m->keys[i] = S_TOMB;
            m->n--;
            m->tomb++;
            return;
        }
    }
}

static void s_map_free(gp_pl_map_t *m)
{
    for (int i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != S_TOMB)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Interned strings: ids for regions, zones, labels ("k=v"). -1 for "". */
static int s_intern(gp_placement_t *pl, const char *s)
{
    if (*s == '\0')
        return -1;
    int id = s_map_find(&pl->strings, s);
    if (id >= 0)
        return id;
    if (s_map_put(&pl->strings, s, pl->nstrings) < 0)
        return -2;
    return pl->nstrings++;
}

static int s_lookup(const gp_placement_t *pl, const char *s)
{
    return s_map_find(&pl->strings, s);
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
        self->epoch++;             /* the per-shape heaps are ordered by rank */
}

/* ---------------------------------------------------------- summary tree
 *
 * The index.  Node slots are the leaves of a complete binary tree kept in
 * an array (leaf i at tree_leaves + i).  A leaf holds the node's summary:
 * free CPU, free host memory, and over its devices the best free compute,
 * the best free memory (MiB and permille of the device), the number of
 * entirely free devices and the set of models present.  An inner entry
 * holds the component-wise maximum (and the union of models) of its two
 * children.  A job can fit a node only if the node's summary covers the
 * job's demand, so a search descends only into subtrees whose summary
 * covers it: when few nodes fit it visits little more than the path to
 * them, when many fit it stops after the candidates it needs.  Updates
 * (an allocation added or removed) recompute one leaf and its log2(n)
 * ancestors.  Free slots have cpu -1 and match nothing.
 */
struct gp_pl_sum {
    int64_t cpu, mem, dmem;
    int comp, dpm, whole;
    uint64_t groups;
};

static void s_sum_leaf(const gp_pl_node_t *n, struct gp_pl_sum *s)
{
    memset(s, 0, sizeof *s);
    s->cpu = -1;
    if (!n->used || !n->healthy)
        return;
    s->cpu = n->cpu_free;
    s->mem = n->mem_free;
    for (int i = 0; i < n->ndev; i++) {
        const gp_pl_dev_t *d = &n->dev[i];
        s->groups |= 1ULL << (d->group < 63 ? d->group : 63);
        if (!d->healthy || d->whole_taken)
            continue;
        if (d->comp_free > s->comp)
            s->comp = d->comp_free;
        if (d->mem_free > s->dmem)
            s->dmem = d->mem_free;
        /* an upper bound of the permille a device can still take (see
         * gp_pl_dev_mem_need: a request of pm takes floor(pm * phys / 1000)) */
        int pm = (int)((d->mem_free + 1) * 1000 / d->mem_phys);
        if (pm > s->dpm)
            s->dpm = pm;
        if (d->nalloc == 0)
            s->whole++;
    }
}

static void s_sum_merge(struct gp_pl_sum *o, const struct gp_pl_sum *a, const struct gp_pl_sum *b)
{
    o->cpu = a->cpu > b->cpu ? a->cpu : b->cpu;
    o->mem = a->mem > b->mem ? a->mem : b->mem;
    o->dmem = a->dmem > b->dmem ? a->dmem : b->dmem;
    o->comp = a->comp > b->comp ? a->comp : b->comp;
    o->dpm = a->dpm > b->dpm ? a->dpm : b->dpm;
    o->whole = a->whole > b->whole ? a->whole : b->whole;
    o->groups = a->groups | b->groups;
}

static bool s_sum_ok(const struct gp_pl_sum *s, const gp_pl_req_t *r)
{
    if (s->cpu < r->cpu || s->mem < r->hmem)
        return false;
    if (r->n == 0)
        return true;
    if ((s->groups & r->group_mask) == 0)
        return false;
    if (r->whole)
        return s->whole >= r->n;
    if (s->comp < r->comp_pm)
        return false;
    return r->mem_pm ? s->dpm >= r->mem_pm : s->dmem >= r->mem_mib;
}

static void s_tree_update(gp_placement_t *pl, int slot)
{
    int i = pl->tree_leaves + slot;
    s_sum_leaf(&pl->nodes[slot], &pl->tree[i]);
    for (i /= 2; i >= 1; i /= 2)
        s_sum_merge(&pl->tree[i], &pl->tree[2 * i], &pl->tree[2 * i + 1]);
}

static int s_tree_resize(gp_placement_t *pl, int min_leaves)
{
    int leaves = pl->tree_leaves ? pl->tree_leaves : 64;
    while (leaves < min_leaves)
        leaves *= 2;
    struct gp_pl_sum *t = malloc(sizeof *t * 2 * (size_t)leaves);
    if (t == NULL)
        return -1;
    for (int i = 0; i < 2 * leaves; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].cpu = -1;
    }
    free(pl->tree);
    pl->tree = t;
    pl->tree_leaves = leaves;
    for (int s = 0; s < pl->nslots; s++)
        s_sum_leaf(&pl->nodes[s], &t[leaves + s]);
    for (int i = leaves - 1; i >= 1; i--)
        s_sum_merge(&t[i], &t[2 * i], &t[2 * i + 1]);
    return 0;
}

typedef struct {
    int *out;
    int n, max;
} s_visit_t;

static void s_tree_visit(const gp_placement_t *pl, int i, int lo, int hi, int from, int to,
                         const gp_pl_req_t *r, s_visit_t *v)
{
    if (v->n >= v->max || hi <= from || lo >= to || !s_sum_ok(&pl->tree[i], r))
        return;
    if (i >= pl->tree_leaves) {
        v->out[v->n++] = i - pl->tree_leaves;
        return;
    }
    int mid = (lo + hi) / 2;
    s_tree_visit(pl, 2 * i, lo, mid, from, to, r, v);
    s_tree_visit(pl, 2 * i + 1, mid, hi, from, to, r, v);
}

/* Slots of nodes whose summary covers r, starting at a random slot and
 * wrapping, at most max of them. */
static int s_candidates(gp_placement_t *pl, const gp_pl_req_t *r, int *out, int max)
{
    if (pl->nslots == 0)
        return 0;
    int start = (int)(gp_pl_rand(pl) % (uint64_t)pl->nslots);
    if (max >= pl->nslots) {
        /* every node will be scored: a straight pass over the leaves is
         * cheaper than the descent */
        int n = 0;
        const struct gp_pl_sum *leaf = &pl->tree[pl->tree_leaves];
        for (int s = start; s < pl->nslots; s++)
            if (s_sum_ok(&leaf[s], r))
                out[n++] = s;
        for (int s = 0; s < start; s++)
            if (s_sum_ok(&leaf[s], r))
                out[n++] = s;
        return n;
    }
    s_visit_t v = {out, 0, max};
    s_tree_visit(pl, 1, 0, pl->tree_leaves, start, pl->nslots, r, &v);
    s_tree_visit(pl, 1, 0, pl->tree_leaves, 0, start, r, &v);
    return v.n;
}

/* ------------------------------------------------------------ lifecycle */

static void s_node_refresh(gp_pl_node_t *n);
static void s_changed(gp_placement_t *pl, int slot);
static void s_ix_free_all(gp_placement_t *pl);

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
    gp_placement_reseed(pl, opts->seed);
    pl->full_scan_nodes = opts->full_scan_nodes > 0 ? opts->full_scan_nodes : 4096;
    pl->max_candidates = opts->max_candidates > 0 ? opts->max_candidates : 512;
    pl->next_learn = 16;
    if (s_tree_resize(pl, 64) < 0) {
        free(pl);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return pl;
}

static void s_alloc_free(gp_pl_alloc_t *a)
{
    if (a) {
        free(a->job);
        free(a);
    }
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
        s_alloc_free(pl->allocs[i]);
    free(pl->allocs);
    s_map_free(&pl->node_index);
    s_map_free(&pl->job_index);
    s_map_free(&pl->strings);
    for (int g = 0; g < pl->ngroups; g++) {
        free(pl->group_vendor[g]);
        free(pl->group_model[g]);
    }
    free(pl->tree);
    if (pl->shape_ix) {
        s_ix_free_all(pl);
        free(pl->shape_ix);
    }
    free(pl->changes);
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

static void s_apply(gp_placement_t *pl, gp_pl_alloc_t *a, int sign);
static int s_alloc_check(const gp_placement_t *pl, const gp_pl_node_t *n,
                         const gp_pl_alloc_t *a, gp_err_t *err);

int gp_placement_add_node(gp_placement_t *self, const gp_node_t *node, gp_err_t *err)
{
    if (gp_node_validate(node, err) < 0)
        return -1;
    int slot = s_map_find(&self->node_index, node->name);
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
            s_apply(self, list[i], +1);
        free(list);
        s_changed(self, slot);
        s_tree_update(self, slot);
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
    s_changed(self, slot);
    if (self->nslots > self->tree_leaves) {
        if (s_tree_resize(self, self->nslots) < 0)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    } else {
        s_tree_update(self, slot);
    }
    return 0;
}

static void s_alloc_unlink(gp_placement_t *pl, gp_pl_alloc_t *a)
{
    int idx = s_map_find(&pl->job_index, a->job);
    s_map_del(&pl->job_index, a->job);
    if (idx >= 0 && idx < pl->nallocs - 1) {
        pl->allocs[idx] = pl->allocs[pl->nallocs - 1];
        s_map_put(&pl->job_index, pl->allocs[idx]->job, idx);
    }
    pl->nallocs--;
}

int gp_placement_remove_node(gp_placement_t *self, const char *name, gp_err_t *err)
{
    int slot = s_map_find(&self->node_index, name);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no node %s", name);
    gp_pl_node_t *n = &self->nodes[slot];
    for (int i = 0; i < n->nallocs; i++) {
        s_alloc_unlink(self, n->allocs[i]);
        s_alloc_free(n->allocs[i]);
    }
    s_node_clear(n);
    s_map_del(&self->node_index, name);
    self->free_slots[self->nfree++] = slot;
    self->nnodes--;
    s_changed(self, slot);
    s_tree_update(self, slot);
    return 0;
}

/* ------------------------------------------------------------ allocations */

/* Add (sign +1) or take back (-1) an allocation's resources on its node;
 * +1 also links it into the node's list, -1 unlinks it. */
static void s_apply(gp_placement_t *pl, gp_pl_alloc_t *a, int sign)
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
    s_changed(pl, a->node);
    s_tree_update(pl, a->node);
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
    int slot = s_map_find(&self->node_index, alloc->node);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node %s", alloc->job, alloc->node);
    if (alloc->job[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "allocation without a job id");
    if (s_map_find(&self->job_index, alloc->job) >= 0)
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s is already allocated", alloc->job);
    gp_pl_node_t *n = &self->nodes[slot];
    if (alloc->ndevices < 0 || alloc->ndevices > n->ndev)
        return gp_err_set(err, GP_ERR_INVALID, "job %s: %d devices on a node of %d",
                          alloc->job, alloc->ndevices, n->ndev);
    gp_pl_alloc_t *a = calloc(1, sizeof *a);
    if (a == NULL || (a->job = strdup(alloc->job)) == NULL) {
        free(a);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
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
            s_alloc_free(a);
            return gp_err_set(err, GP_ERR_INVALID, "job %s: no device %s (index %d) on node %s",
                              alloc->job, s->uuid, s->index, alloc->node);
        }
        a->dev[k].idx = idx;
        a->dev[k].whole = s->whole;
        a->dev[k].mem = s->whole ? n->dev[idx].mem_cap : s->mem_mib;
        a->dev[k].comp = s->whole ? 1000 : s->compute_permille;
        if (a->dev[k].mem < 0 || a->dev[k].comp < 0 || a->dev[k].comp > 1000) {
            s_alloc_free(a);
            return gp_err_set(err, GP_ERR_INVALID, "job %s: bad device share", alloc->job);
        }
    }
    /* gpuclustering's tag: a fractional job is "share", a whole one "N whole" */
    a->tag = a->ndev == 0 ? -1 : a->dev[0].whole ? a->ndev : 0;
    if (s_alloc_check(self, n, a, err) < 0) {
        s_alloc_free(a);
        return -1;
    }
    if (self->nallocs == self->allocs_cap) {
        int ncap = self->allocs_cap ? self->allocs_cap * 2 : 256;
        gp_pl_alloc_t **na = realloc(self->allocs, sizeof *na * (size_t)ncap);
        if (na == NULL) {
            s_alloc_free(a);
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        self->allocs = na;
        self->allocs_cap = ncap;
    }
    if (s_map_put(&self->job_index, a->job, self->nallocs) < 0) {
        s_alloc_free(a);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    self->allocs[self->nallocs++] = a;
    s_apply(self, a, +1);
    return 0;
}

int gp_placement_remove_alloc(gp_placement_t *self, const char *job, gp_err_t *err)
{
    int idx = s_map_find(&self->job_index, job);
    if (idx < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no allocation for job %s", job);
    gp_pl_alloc_t *a = self->allocs[idx];
    s_apply(self, a, -1);
    s_alloc_unlink(self, a);
    s_alloc_free(a);
    return 0;
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
    int idx = s_map_find(&self->job_index, job);
    if (idx < 0)
        return -1;
    s_alloc_export(self, self->allocs[idx], out);
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

static int s_compile(gp_placement_t *pl, const gp_job_t *job, gp_pl_req_t *r, gp_err_t *err)
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
    int64_t parts[] = {r->n, r->whole, r->mem_mib, r->mem_pm, r->comp_pm, r->cpu, r->hmem,
                       (int64_t)r->group_mask, (int64_t)(uintptr_t)r->policy};
    for (size_t i = 0; i < GP_ARRAY_LEN(parts); i++)
        h = (h ^ (uint64_t)parts[i]) * 1099511628211ULL;
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

/* ------------------------------------------------------------ evaluation */

static bool s_in(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id && id >= 0)
            return true;
    return false;
}

static bool s_node_static_ok(const gp_pl_node_t *n, const gp_pl_req_t *r)
{
    if (!n->used || !n->healthy || n->cpu_free < r->cpu || n->mem_free < r->hmem)
        return false;
    if (!r->node_filter)
        return true;
    if (r->impossible)
        return false;
    int own[3] = {n->region, n->cloud, n->zone};
    for (int i = 0; i < 3; i++)
        if (r->npin[i] && !s_in(r->pin[i], r->npin[i], own[i]))
            return false;
    for (int i = 0; i < r->nlabels; i++)
        if (!s_in(n->labels, n->nlabels, r->labels[i]))
            return false;
    return true;
}

static double s_pref_bonus(const gp_pl_node_t *n, const gp_pl_req_t *r)
{
    if (!r->has_pref)
        return 0;
    int own[3] = {n->region, n->cloud, n->zone};
    int m = 0;
    for (int i = 0; i < 3; i++)
        if (r->npref[i] && s_in(r->pref[i], r->npref[i], own[i]))
            m++;
    return m * 1e12;
}

static uint32_t s_mask(const int8_t *pick, int n)
{
    uint32_t m = 0;
    for (int k = 0; k < n; k++)
        m |= 1u << pick[k];
    return m;
}

/* Score one node; false when r does not fit it.  The devices come back as
 * a bit mask (the order of a pick carries no meaning). */
static bool s_eval(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r, double *score,
                   uint32_t *mask)
{
    if (!s_node_static_ok(n, r))
        return false;
    const gp_policy_t *pol = r->policy;
    int8_t pick[GP_MAX_DEVICES];
    bool ok;
    if (pol->cacheable && !r->dev_filter) {
        if (n->cache == NULL && (n->cache = calloc(GP_PL_CACHE_WAYS, sizeof *n->cache)) == NULL)
            goto direct;
        uint64_t tag = r->shape ^ ((uint64_t)pl->epoch * 0x9E3779B97F4A7C15ULL);
        gp_pl_cache_t *c = &n->cache[(tag >> 17) % GP_PL_CACHE_WAYS];
        if (c->tag == tag && c->version == n->version && c->ok >= 0) {
            if (!c->ok)
                return false;
            *score = c->score;
            *mask = c->pick;
            return true;
        }
        ok = pol->score(pl, n, r, score, pick);
        c->tag = tag;
        c->version = n->version;
        c->ok = ok;
        c->score = ok ? *score : 0;
        c->pick = ok ? s_mask(pick, r->n) : 0;
        *mask = c->pick;
        return ok;
    }
direct:
    ok = pol->score(pl, n, r, score, pick);
    if (ok)
        *mask = s_mask(pick, r->n);
    return ok;
}

static void s_unmask(uint32_t mask, int8_t *pick)
{
    int k = 0;
    for (int i = 0; mask; i++, mask >>= 1)
        if (mask & 1u)
            pick[k++] = (int8_t)i;
}

static void s_make_plan(const gp_placement_t *pl, const gp_pl_node_t *n, const gp_pl_req_t *r,
                        const int8_t *pick, gp_alloc_t *out)
{
    (void)pl;
    gp_alloc_init(out);
    gp_strlcpy(out->job, r->job->id, sizeof out->job);
    gp_strlcpy(out->node, n->name, sizeof out->node);
    out->priority = r->priority;
    out->cpu_milli = r->cpu;
    out->host_mem_mib = r->hmem;
    out->ndevices = r->n;
    for (int k = 0; k < r->n; k++) {
        const gp_pl_dev_t *d = &n->dev[pick[k]];
        gp_alloc_dev_t *o = &out->devices[k];
        gp_strlcpy(o->uuid, d->uuid, sizeof o->uuid);
        o->index = pick[k];
        o->whole = r->whole;
        o->mem_mib = r->whole ? d->mem_phys : gp_pl_dev_mem_need(d, r);
        o->compute_permille = r->whole ? 1000 : r->comp_pm;
    }
}

static void s_observe(gp_placement_t *pl, const gp_pl_req_t *r);

typedef struct {
    double score;
    int slot;
    uint32_t mask;
} s_cand_t;

/* Higher score first; among equal scores the node earlier in the tie order. */
static bool s_cand_better(const gp_placement_t *pl, const s_cand_t *a, const s_cand_t *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    uint32_t ra = pl->nodes[a->slot].rank, rb = pl->nodes[b->slot].rank;
    return ra < rb || (ra == rb && a->slot < b->slot);
}

/* The best k candidates for r into top[0..*n), best first. */
static int s_search(gp_placement_t *pl, const gp_pl_req_t *r, s_cand_t *top, int k)
{
    if (r->n > 0 && r->group_mask == 0)
        return 0;
    int max = pl->nnodes <= pl->full_scan_nodes ? pl->nslots : pl->max_candidates;
    if (max < k)
        max = k;
    int stackbuf[1024];
    int *slots = max <= 1024 ? stackbuf : malloc(sizeof *slots * (size_t)max);
    if (slots == NULL)
        return -1;
    int nc = s_candidates(pl, r, slots, max);
    int nt = 0;
    for (int i = 0; i < nc; i++) {
        gp_pl_node_t *n = &pl->nodes[slots[i]];
        s_cand_t c;
        if (!s_eval(pl, n, r, &c.score, &c.mask))
            continue;
        c.score += s_pref_bonus(n, r);
        c.slot = slots[i];
        if (nt == k && !s_cand_better(pl, &c, &top[k - 1]))
            continue;
        int j = nt < k ? nt++ : k - 1;
        while (j > 0 && s_cand_better(pl, &c, &top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    if (slots != stackbuf)
        free(slots);
    return nt;
}

/* ------------------------------------------------------------ shape index
 *
 * The fast path of place() for the common job: no pins, labels,
 * preferences or uuid lists, and a policy whose score is a pure function
 * of the node's state and the job's shape (gp_policy_t.cacheable).  Then a
 * node's score for a shape changes only when the node changes, and every
 * change goes through s_changed, which stamps the node with a new version
 * and appends its slot to a change log (a ring).
 *
 * Per shape (up to S_MAX_SHAPES, least recently used evicted) the engine
 * keeps an indexed max-heap of the nodes that can hold the shape, keyed by
 * (score, random tie key), with each node's position in the heap.  A query
 * for a shape first re-scores the nodes logged since its previous query:
 * a node that still fits moves up or down to its new place, one that no
 * longer fits (or is gone) leaves the heap, one that now fits enters it.
 * Then the top is the best node.  So a placement costs O(c log n) for the
 * c nodes changed since the shape was last seen (typically a handful), not
 * a pass over every node, and the answer is the one scoring every node
 * would give.  A shape seen for the first time, or whose log position fell
 * out of the ring, is built by one pass and a heapify.  Memory: one entry
 * and one position per node per indexed shape.
 */
#define S_LOG_SIZE 65536
#define S_MAX_SHAPES 256
#define S_MAX_ENTRIES (32L * 1024 * 1024)

typedef struct {
    float score;
    uint32_t slot;
    uint32_t rank;
    uint16_t mask;
} s_hent_t;

struct gp_pl_shape_ix {
    uint64_t tag;
    s_hent_t *h;
    int n, cap;
    int32_t *pos;           /* slot -> heap index, -1 absent */
    int npos;
    uint64_t log_pos;
    uint64_t used;
};

static void s_changed(gp_placement_t *pl, int slot)
{
    pl->nodes[slot].version = ++pl->clock;
    if (pl->changes == NULL && (pl->changes = malloc(sizeof *pl->changes * S_LOG_SIZE)) == NULL) {
        /* without a log the indexes cannot follow: make them rebuild */
        pl->nchanges += S_LOG_SIZE + 1;
        return;
    }
    pl->changes[pl->nchanges % S_LOG_SIZE] = slot;
    pl->nchanges++;
}

static bool s_hbetter(const s_hent_t *a, const s_hent_t *b)
{
    return a->score > b->score ||
           (a->score == b->score && (a->rank < b->rank || (a->rank == b->rank && a->slot < b->slot)));
}

static void s_hset(struct gp_pl_shape_ix *ix, int i, s_hent_t e)
{
    ix->h[i] = e;
    ix->pos[e.slot] = i;
}

static void s_hup(struct gp_pl_shape_ix *ix, int i)
{
    s_hent_t x = ix->h[i];
    while (i > 0 && s_hbetter(&x, &ix->h[(i - 1) / 2])) {
        s_hset(ix, i, ix->h[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    s_hset(ix, i, x);
}

static void s_hdown(struct gp_pl_shape_ix *ix, int i)
{
    s_hent_t x = ix->h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= ix->n)
            break;
        if (c + 1 < ix->n && s_hbetter(&ix->h[c + 1], &ix->h[c]))
            c++;
        if (!s_hbetter(&ix->h[c], &x))
            break;
        s_hset(ix, i, ix->h[c]);
        i = c;
    }
    s_hset(ix, i, x);
}

static void s_hremove(struct gp_pl_shape_ix *ix, int slot)
{
    int i = ix->pos[slot];
    if (i < 0)
        return;
    ix->pos[slot] = -1;
    if (i == --ix->n)
        return;
    s_hset(ix, i, ix->h[ix->n]);
    s_hup(ix, i);
    s_hdown(ix, ix->pos[ix->h[i].slot] == i ? i : ix->pos[ix->h[i].slot]);
}

static int s_ix_reserve(gp_placement_t *pl, struct gp_pl_shape_ix *ix)
{
    if (ix->npos < pl->nslots) {
        int np = pl->slots_cap > pl->nslots ? pl->slots_cap : pl->nslots;
        int32_t *p = realloc(ix->pos, sizeof *p * (size_t)np);
        if (p == NULL)
            return -1;
        for (int i = ix->npos; i < np; i++)
            p[i] = -1;
        ix->pos = p;
        ix->npos = np;
    }
    if (ix->cap < pl->nslots) {
        int nc = ix->npos;
        s_hent_t *h = realloc(ix->h, sizeof *h * (size_t)nc);
        if (h == NULL)
            return -1;
        pl->shape_entries += nc - ix->cap;
        ix->h = h;
        ix->cap = nc;
    }
    return 0;
}

/* Score slot for the shape; false when it cannot hold it. */
static bool s_ix_score(gp_placement_t *pl, const gp_pl_req_t *r, int slot, s_hent_t *e)
{
    gp_pl_node_t *n = &pl->nodes[slot];
    double sc;
    int8_t pick[GP_MAX_DEVICES];
    /* the heap is the cache here: score directly */
    if (!n->used || !s_sum_ok(&pl->tree[pl->tree_leaves + slot], r) ||
        !s_node_static_ok(n, r) || !r->policy->score(pl, n, r, &sc, pick))
        return false;
    e->score = (float)sc;
    e->slot = (uint32_t)slot;
    e->mask = (uint16_t)s_mask(pick, r->n);
    e->rank = n->rank;
    return true;
}

static void s_ix_update(gp_placement_t *pl, struct gp_pl_shape_ix *ix, const gp_pl_req_t *r,
                        int slot)
{
    s_hent_t e;
    if (!s_ix_score(pl, r, slot, &e)) {
        s_hremove(ix, slot);
        return;
    }
    int i = ix->pos[slot];
    if (i < 0) {
        i = ix->n++;
        s_hset(ix, i, e);
        s_hup(ix, i);
    } else {
        bool up = s_hbetter(&e, &ix->h[i]);
        s_hset(ix, i, e);
        if (up)
            s_hup(ix, i);
        else
            s_hdown(ix, i);
    }
}

static void s_ix_free_one(gp_placement_t *pl, struct gp_pl_shape_ix *ix)
{
    pl->shape_entries -= ix->cap;
    free(ix->h);
    free(ix->pos);
    memset(ix, 0, sizeof *ix);
}

static void s_ix_free_all(gp_placement_t *pl)
{
    for (int i = 0; i < pl->nshape_ix; i++)
        s_ix_free_one(pl, &pl->shape_ix[i]);
    pl->nshape_ix = 0;
}

/* 1 and *best when a node fits, 0 when none, -1 out of memory. */
static int s_ix_best(gp_placement_t *pl, const gp_pl_req_t *r, s_cand_t *best)
{
    if (pl->shape_ix == NULL &&
        (pl->shape_ix = calloc(S_MAX_SHAPES, sizeof *pl->shape_ix)) == NULL)
        return -1;
    if (pl->ix_epoch != pl->epoch) {
        s_ix_free_all(pl);
        pl->ix_epoch = pl->epoch;
    }
    uint64_t tag = r->shape | 1;
    struct gp_pl_shape_ix *ix = NULL;
    int hint = pl->shape_hint[(tag >> 8) % GP_PL_SHAPE_HINTS];
    if (hint < pl->nshape_ix && pl->shape_ix[hint].tag == tag)
        ix = &pl->shape_ix[hint];
    for (int i = 0; ix == NULL && i < pl->nshape_ix; i++)
        if (pl->shape_ix[i].tag == tag)
            ix = &pl->shape_ix[i];
    bool rebuild = false;
    if (ix == NULL) {
        while (pl->nshape_ix > 0 && (pl->nshape_ix == S_MAX_SHAPES ||
                                     pl->shape_entries + pl->nslots > S_MAX_ENTRIES)) {
            int lru = 0;
            for (int i = 1; i < pl->nshape_ix; i++)
                if (pl->shape_ix[i].used < pl->shape_ix[lru].used)
                    lru = i;
            s_ix_free_one(pl, &pl->shape_ix[lru]);
            pl->shape_ix[lru] = pl->shape_ix[--pl->nshape_ix];
            memset(&pl->shape_ix[pl->nshape_ix], 0, sizeof *ix);
        }
        ix = &pl->shape_ix[pl->nshape_ix++];
        ix->tag = tag;
        rebuild = true;
    } else if (pl->nchanges - ix->log_pos > S_LOG_SIZE) {
        rebuild = true;
    }
    ix->used = ++pl->shape_use;
    pl->shape_hint[(tag >> 8) % GP_PL_SHAPE_HINTS] = (int)(ix - pl->shape_ix);
    if (s_ix_reserve(pl, ix) < 0)
        return -1;
    if (rebuild) {
        for (int i = 0; i < ix->npos; i++)
            ix->pos[i] = -1;
        ix->n = 0;
        for (int s = 0; s < pl->nslots; s++) {
            s_hent_t e;
            if (s_ix_score(pl, r, s, &e))
                s_hset(ix, ix->n++, e);
        }
        for (int i = ix->n / 2 - 1; i >= 0; i--)
            s_hdown(ix, i);
    } else {
        int prev = -1;
        for (uint64_t c = ix->log_pos; c < pl->nchanges; c++) {
            int slot = pl->changes[c % S_LOG_SIZE];
            if (slot != prev)
                s_ix_update(pl, ix, r, slot);
            prev = slot;
        }
    }
    ix->log_pos = pl->nchanges;
    if (ix->n == 0)
        return 0;
    best->slot = (int)ix->h[0].slot;
    best->mask = ix->h[0].mask;
    best->score = ix->h[0].score;
    return 1;
}

/*
 * The random policy wants a node drawn uniformly from the nodes that can
 * hold the job.  Rejection sampling does that exactly without looking at
 * every node: draw a slot, keep it if the job fits.  When the job fits few
 * nodes (after 64 misses), draw instead from the nodes whose summary
 * covers the job, removing each that turns out not to fit: still uniform
 * over the feasible nodes.
 */
static int s_random_best(gp_placement_t *pl, const gp_pl_req_t *r, s_cand_t *best)
{
    for (int t = 0; t < 64 && pl->nslots > 0; t++) {
        int slot = (int)(gp_pl_rand(pl) % (uint64_t)pl->nslots);
        if (s_eval(pl, &pl->nodes[slot], r, &best->score, &best->mask)) {
            best->slot = slot;
            return 1;
        }
    }
    int *slots = malloc(sizeof *slots * (size_t)(pl->nslots ? pl->nslots : 1));
    if (slots == NULL)
        return -1;
    int n = s_candidates(pl, r, slots, pl->nslots);
    while (n > 0) {
        int i = (int)(gp_pl_rand(pl) % (uint64_t)n);
        if (s_eval(pl, &pl->nodes[slots[i]], r, &best->score, &best->mask)) {
            best->slot = slots[i];
            free(slots);
            return 1;
        }
        slots[i] = slots[--n];
    }
    free(slots);
    return 0;
}

static bool s_ix_applies(const gp_pl_req_t *r)
{
    return r->policy->cacheable && !r->dev_filter && !r->node_filter && !r->has_pref;
}

int gp_placement_rank(gp_placement_t *self, const gp_job_t *job, gp_candidate_t *out, int k,
                      int *n, gp_err_t *err)
{
    gp_pl_req_t r;
    if (k < 1)
        return gp_err_set(err, GP_ERR_INVALID, "rank: k must be >= 1");
    if (s_compile(self, job, &r, err) < 0)
        return -1;
    s_observe(self, &r);
    s_cand_t one, *top = k == 1 ? &one : malloc(sizeof *top * (size_t)k);
    if (top == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    int nt = s_search(self, &r, top, k);
    if (nt < 0) {
        if (top != &one)
            free(top);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++) {
        int8_t pick[GP_MAX_DEVICES];
        s_unmask(top[i].mask, pick);
        out[i].score = top[i].score;
        s_make_plan(self, &self->nodes[top[i].slot], &r, pick, &out[i].plan);
    }
    if (top != &one)
        free(top);
    *n = nt;
    if (nt == 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node can hold it now", job->id);
    return 0;
}

int gp_placement_place(gp_placement_t *self, const gp_job_t *job, gp_alloc_t *out,
                       gp_err_t *err)
{
    gp_pl_req_t r;
    if (s_compile(self, job, &r, err) < 0)
        return -1;
    s_observe(self, &r);
    s_cand_t best;
    int nt;
    if (r.n > 0 && r.group_mask == 0)
        nt = 0;
    else if (r.policy == &gp_policy_random && !r.has_pref)
        nt = s_random_best(self, &r, &best);
    else if (s_ix_applies(&r))
        nt = s_ix_best(self, &r, &best);
    else
        nt = s_search(self, &r, &best, 1);
    if (nt < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    if (nt == 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node can hold it now", job->id);
    int8_t pick[GP_MAX_DEVICES];
    s_unmask(best.mask, pick);
    s_make_plan(self, &self->nodes[best.slot], &r, pick, out);
    return 0;
}

int gp_placement_score_node(gp_placement_t *self, const char *node, const gp_job_t *job,
                            double *score, gp_alloc_t *plan, gp_err_t *err)
{
    int slot = s_map_find(&self->node_index, node);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no node %s", node);
    gp_pl_req_t r;
    if (s_compile(self, job, &r, err) < 0)
        return -1;
    double sc;
    uint32_t mask;
    int8_t pick[GP_MAX_DEVICES];
    if (!s_eval(self, &self->nodes[slot], &r, &sc, &mask))
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s does not fit node %s", job->id, node);
    sc += s_pref_bonus(&self->nodes[slot], &r);
    s_unmask(mask, pick);
    if (plan)
        s_make_plan(self, &self->nodes[slot], &r, pick, plan);
    *score = sc;
    return 0;
}

bool gp_placement_fits(gp_placement_t *self, const char *node, const gp_job_t *job)
{
    double s;
    return gp_placement_score_node(self, node, job, &s, NULL, NULL) == 0;
}

/* ------------------------------------------------------------------ gangs */

int gp_placement_place_gang(gp_placement_t *self, const gp_job_t *jobs, int n, bool commit,
                            gp_alloc_t *out, gp_err_t *err)
{
    int placed = 0, rc = -1;
    char (*ids)[GP_NAME_LEN] = calloc((size_t)(n > 0 ? n : 1), GP_NAME_LEN);
    if (ids == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        gp_job_t m = jobs[i];
        if (m.id[0] == '\0' || !commit)
            snprintf(m.id, sizeof m.id, "\x01gang-%d", i);  /* not a valid job id */
        if (gp_placement_place(self, &m, &out[i], err) < 0) {
            if (err && err->code == GP_ERR_NOTFOUND)
                gp_err_set(err, GP_ERR_NOTFOUND, "gang member %d (%s) does not fit", i,
                           jobs[i].id);
            goto cleanup;
        }
        if (gp_placement_add_alloc(self, &out[i], err) < 0)
            goto cleanup;
        gp_strlcpy(ids[placed++], out[i].job, GP_NAME_LEN);
    }
    rc = 0;
cleanup:
    if (rc < 0 || !commit) {
        for (int i = placed - 1; i >= 0; i--)
            gp_placement_remove_alloc(self, ids[i], NULL);
    }
    if (rc == 0 && !commit)
        for (int i = 0; i < n; i++)
            gp_strlcpy(out[i].job, jobs[i].id, sizeof out[i].job);
    free(ids);
    return rc;
}

/* -------------------------------------------------------------- preemption
 *
 * For a job that fits nowhere, find on one node the cheapest set of
 * allocations with a lower priority whose removal lets it fit.  Cost is
 * compared as (number of victims, highest victim priority, sum of victim
 * priorities), lowest first.  Per node:
 *   1. Take back every lower-priority allocation; if the job still does not
 *      fit, the node is out.
 *   2. Otherwise search subsets in order of size: all single victims, all
 *      pairs, all triples (exact, in lowest-priority-first order), and when
 *      none works a greedy set (remove in lowest-priority order until it
 *      fits, then put back each one it can do without).
 * Nodes are independent and the state is restored after each trial, so the
 * plan changes nothing.  Cost: O(nodes x m^3) fit checks for m
 * lower-priority allocations per node, fine for the tens a node holds.
 */
typedef struct {
    int count, maxp;
    long sump;
} s_cost_t;

static bool s_cost_less(s_cost_t a, s_cost_t b)
{
    if (a.count != b.count)
        return a.count < b.count;
    if (a.maxp != b.maxp)
        return a.maxp < b.maxp;
    return a.sump < b.sump;
}

static bool s_fits_without(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                           gp_pl_alloc_t **v, int nv, double *score, uint32_t *pick)
{
    for (int i = 0; i < nv; i++)
        s_apply(pl, v[i], -1);
    bool ok = s_eval(pl, n, r, score, pick);
    for (int i = nv - 1; i >= 0; i--)
        s_apply(pl, v[i], +1);
    return ok;
}

static int s_prio_cmp(const void *a, const void *b)
{
    const gp_pl_alloc_t *x = *(gp_pl_alloc_t *const *)a, *y = *(gp_pl_alloc_t *const *)b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

int gp_placement_plan_preemption(gp_placement_t *self, const gp_job_t *job,
                                 char (*victims)[GP_NAME_LEN], int max, int *nvictims,
                                 gp_alloc_t *plan, gp_err_t *err)
{
    gp_pl_req_t r;
    if (s_compile(self, job, &r, err) < 0)
        return -1;
    bool found = false;
    s_cost_t best = {0, 0, 0};
    gp_pl_alloc_t *bestv[64];
    int nbest = 0, bslot = -1;
    uint32_t bpick = 0;
    gp_pl_alloc_t **low = NULL;
    int lowcap = 0;
    for (int s = 0; s < self->nslots; s++) {
        gp_pl_node_t *n = &self->nodes[s];
        if (!n->used || !n->healthy)
            continue;
        int m = 0;
        if (n->nallocs > lowcap) {
            gp_pl_alloc_t **nl = realloc(low, sizeof *nl * (size_t)n->nallocs);
            if (nl == NULL) {
                free(low);
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
            low = nl;
            lowcap = n->nallocs;
        }
        for (int i = 0; i < n->nallocs; i++)
            if (n->allocs[i]->priority < r.priority)
                low[m++] = n->allocs[i];
        if (m == 0)
            continue;
        qsort(low, (size_t)m, sizeof *low, s_prio_cmp);
        double sc;
        uint32_t pk;
        if (!s_fits_without(self, n, &r, low, m, &sc, &pk))
            continue;
        gp_pl_alloc_t *set[64];
        int ns = 0;
        bool got = false;
        for (int a = 0; a < m && !got; a++) {
            set[0] = low[a];
            if (s_fits_without(self, n, &r, set, 1, &sc, &pk)) { ns = 1; got = true; }
        }
        for (int a = 0; a < m && !got && m <= 64; a++)
            for (int b = a + 1; b < m && !got; b++) {
                set[0] = low[a]; set[1] = low[b];
                if (s_fits_without(self, n, &r, set, 2, &sc, &pk)) { ns = 2; got = true; }
            }
        for (int a = 0; a < m && !got && m <= 24; a++)
            for (int b = a + 1; b < m && !got; b++)
                for (int c = b + 1; c < m && !got; c++) {
                    set[0] = low[a]; set[1] = low[b]; set[2] = low[c];
                    if (s_fits_without(self, n, &r, set, 3, &sc, &pk)) { ns = 3; got = true; }
                }
        if (!got) {
            ns = 0;
            for (int a = 0; a < m && ns < 64; a++) {
                set[ns++] = low[a];
                if (s_fits_without(self, n, &r, set, ns, &sc, &pk))
                    break;
            }
            for (int a = ns - 1; a >= 0; a--) {
                gp_pl_alloc_t *keep = set[a];
                set[a] = set[ns - 1];
                if (s_fits_without(self, n, &r, set, ns - 1, &sc, &pk))
                    ns--;
                else
                    set[a] = keep;
            }
            if (!s_fits_without(self, n, &r, set, ns, &sc, &pk))
                continue;
        }
        s_cost_t c = {ns, INT32_MIN, 0};
        for (int i = 0; i < ns; i++) {
            if (set[i]->priority > c.maxp)
                c.maxp = set[i]->priority;
            c.sump += set[i]->priority;
        }
        if (!found || s_cost_less(c, best)) {
            found = true;
            best = c;
            nbest = ns;
            memcpy(bestv, set, sizeof *set * (size_t)ns);
            bslot = s;
            s_fits_without(self, n, &r, set, ns, &sc, &bpick);
        }
    }
    free(low);
    if (!found)
        return gp_err_set(err, GP_ERR_NOTFOUND,
                          "job %s: no set of lower-priority jobs makes room", job->id);
    if (nbest > max)
        return gp_err_set(err, GP_ERR_INVALID, "preemption needs %d victims, room for %d",
                          nbest, max);
    for (int i = 0; i < nbest; i++)
        gp_strlcpy(victims[i], bestv[i]->job, GP_NAME_LEN);
    *nvictims = nbest;
    if (plan) {
        int8_t pick[GP_MAX_DEVICES];
        s_unmask(bpick, pick);
        s_make_plan(self, &self->nodes[bslot], &r, pick, plan);
    }
    return 0;
}

/* ------------------------------------------------------------ typical shapes */

int gp_placement_set_typical(gp_placement_t *self, const gp_shape_t *shapes,
                             const double *weights, int n, gp_err_t *err)
{
    for (int i = 0; i < n; i++)
        if (!(weights[i] > 0) || shapes[i].milli < 0 || shapes[i].milli > 1000 ||
            shapes[i].devices < 0 || shapes[i].devices > GP_MAX_DEVICES ||
            shapes[i].cpu_milli < 0)
            return gp_err_set(err, GP_ERR_INVALID, "typical shape %d is malformed", i);
    gp_shape_t *s = malloc(sizeof *s * (size_t)(n ? n : 1));
    double *w = malloc(sizeof *w * (size_t)(n ? n : 1));
    if (s == NULL || w == NULL) {
        free(s);
        free(w);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    memcpy(s, shapes, sizeof *s * (size_t)n);
    memcpy(w, weights, sizeof *w * (size_t)n);
    free(self->seen);
    free(self->seen_w);
    self->seen = s;
    self->seen_w = w;
    self->nseen = self->seen_cap = n;
    self->typical_fixed = true;
    gp_pl_typical_free(self->typical);
    self->typical = NULL;
    self->epoch++;
    return 0;
}

/* Learn the workload's shapes from the jobs placed, for FGD without a set
 * distribution.  The tables are rebuilt at 16, 32, 64, ... observations
 * and then every 4096, so that score caches stay warm between rebuilds. */
static void s_observe(gp_placement_t *pl, const gp_pl_req_t *r)
{
    if (pl->typical_fixed || r->policy != &gp_policy_fgd)
        return;
    gp_shape_t sh;
    memset(&sh, 0, sizeof sh);
    sh.cpu_milli = r->cpu;
    sh.milli = r->n ? r->milli : 0;
    sh.devices = r->n;
    if (r->job->models.n == 1)
        gp_strlcpy(sh.model, r->job->models.v[0], sizeof sh.model);
    int i;
    for (i = 0; i < pl->nseen; i++)
        if (memcmp(&pl->seen[i], &sh, sizeof sh) == 0)
            break;
    if (i == pl->nseen && pl->nseen < 1024) {
        if (pl->nseen == pl->seen_cap) {
            int ncap = pl->seen_cap ? pl->seen_cap * 2 : 16;
            gp_shape_t *ns = realloc(pl->seen, sizeof *ns * (size_t)ncap);
            if (ns == NULL)
                return;
            pl->seen = ns;
            double *nw = realloc(pl->seen_w, sizeof *nw * (size_t)ncap);
            if (nw == NULL)
                return;
            pl->seen_w = nw;
            pl->seen_cap = ncap;
        }
        pl->seen[i] = sh;
        pl->seen_w[i] = 0;
        pl->nseen++;
    }
    if (i < pl->nseen)
        pl->seen_w[i] += 1;
    if (++pl->nobserved >= pl->next_learn || pl->typical == NULL) {
        pl->next_learn = pl->nobserved < 4096 ? pl->nobserved * 2 : pl->nobserved + 4096;
        gp_pl_typical_free(pl->typical);
        pl->typical = NULL;
        pl->epoch++;
    }
}

void gp_placement_frag(gp_placement_t *self, double *frag_milli, double *idle_milli)
{
    double f = 0, idle = 0;
    int mf[GP_MAX_DEVICES];
    for (int s = 0; s < self->nslots; s++) {
        gp_pl_node_t *n = &self->nodes[s];
        if (!n->used || !n->healthy)
            continue;
        for (int i = 0; i < n->ndev; i++) {
            mf[i] = gp_pl_dev_free_milli(&n->dev[i]);
            idle += mf[i];
        }
        f += gp_pl_fgd_node_frag(self, n, n->cpu_free, mf);
    }
    *frag_milli = f;
    *idle_milli = idle;
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
