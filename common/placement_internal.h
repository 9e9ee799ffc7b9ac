/*
 * placement_internal.h - what the engine's files (placement.c,
 * placement_index.c, placement_shape_index.c, placement_plan.c,
 * placement_preempt.c) share with each
 * other and with the policies (policy_*.c).  Not for other modules: use
 * placement.h.
 *
 * A policy is one gp_policy_t: a name, one line of documentation, and a
 * score function that, for one node that passed the engine's node filters,
 * picks the devices (device level) and returns a score (node level, higher
 * is better), or false when the job does not fit the node's devices; and
 * optionally the key by which jobs placed together as a batch are ordered
 * (gp_placement_batch_key).  The engine does the filtering, the candidate
 * search, preferences, ties and top-K; policies only judge.
 */
#ifndef GP_PLACEMENT_INTERNAL_H
#define GP_PLACEMENT_INTERNAL_H

#include "placement.h"
#include "strmap.h"

typedef struct {
    int64_t mem_cap;        /* MiB offered to slices: physical x oversub */
    int64_t mem_phys;
    int64_t mem_free;
    int comp_free;          /* permille */
    int nalloc;
    bool whole_taken;
    bool healthy;
    int numa;
    uint32_t links;
    int group;              /* interned vendor/model */
    int milli;              /* free share, permille: gp_pl_dev_free_milli, kept current */
    char *uuid;
} gp_pl_dev_t;

typedef struct gp_pl_alloc gp_pl_alloc_t;

typedef struct {
    uint64_t tag;
    uint32_t version;
    uint32_t pick;          /* device bit mask */
    double score;
    int ok;
} gp_pl_cache_t;

#define GP_PL_CACHE_WAYS 32

/* The bytes of a node that scoring reads (gp_pl_node_t's first fields). */
#define GP_PL_NODE_HOT 64

typedef struct {
    /* what scoring a node reads, first (a catch-up asks for these lines) */
    bool used;
    bool healthy;
    int ndev;
    gp_pl_dev_t *dev;
    int64_t cpu_free, mem_free;
    int group;              /* of device 0 (-1 without devices) */
    uint32_t version;
    double frag;            /* FGD: cached fragmentation */
    uint32_t frag_version;
    uint32_t frag_epoch;
    uint32_t rank;          /* tie order, fixed per seed: lower wins among equal scores */
    int nallocs;
    /* the rest */
    char *name;
    int64_t cpu_cap, mem_cap;
    int64_t gpu_free;       /* sum of the devices' free share, kept current */
    int region, cloud, zone;
    int nlabels;
    int *labels;            /* interned "key=value" */
    gp_pl_alloc_t **allocs;
    int allocs_cap;
    gp_pl_cache_t *cache;
    int kind;               /* > 0: the id of its record less the names (placement.c):
                               two nodes of one kind without allocations are in
                               the same state */
} gp_pl_node_t;

struct gp_pl_alloc {
    char *job;
    int ix;                 /* in the engine's allocs */
    int node;
    int priority;
    int cls;                /* its size class in the engine's pool, -1 malloc'd (placement.c) */
    int64_t cpu, mem;
    int ndev;
    int tag;                /* gpuclustering: -1 no device, 0 a share, N whole devices */
    struct { int idx; int64_t mem; int comp; bool whole; } dev[];   /* ndev of them */
};

#define GP_PL_MAX_GROUPS 64
#define GP_PL_SHAPE_HINTS 1024

typedef struct gp_policy gp_policy_t;

/* A job compiled against the engine's interned names. */
typedef struct {
    const gp_job_t *job;
    int n;
    bool whole;
    int64_t mem_mib;
    int mem_pm;
    int comp_pm;
    int64_t cpu, hmem;
    uint64_t group_mask;    /* allowed interned models (all ones: any / too many) */
    bool dev_filter;        /* uuid lists present: check each device */
    bool node_filter;       /* pins or labels present */
    int priority;
    int milli;              /* per-device share in permille for shape-based policies */
    uint64_t shape;         /* hash of the shape, for score caches */
    uint64_t shape_devices; /* the same without host memory (no whole policy scores it) */
    const gp_policy_t *policy;
    int npin[3], pin[3][GP_MAX_LIST];      /* region, cloud, zone ids */
    int npref[3], pref[3][GP_MAX_LIST];
    int nlabels, labels[GP_MAX_LABELS];
    bool impossible;        /* names a pin or label no node has */
    bool has_pref;
    uint8_t allowed[GP_PL_MAX_GROUPS * 4];
} gp_pl_req_t;

enum { GP_PICK_PACK, GP_PICK_SPREAD, GP_PICK_FIRST, GP_PICK_TOPO };

struct gp_policy {
    const char *name;
    const char *doc;
    bool cacheable;         /* score is a pure function of (node state, shape) */
    bool (*score)(gp_placement_t *pl, gp_pl_node_t *node, const gp_pl_req_t *r,
                  double *score, int8_t *pick);
    bool whole;             /* scores are whole numbers in 0..GP_PL_WHOLE_MAX, and host
                               memory only filters (the score does not read r->hmem) */
    /* optional: ask the memory for what score will read of the node at
     * slot beyond the engine's own state (a catch-up calls it a few
     * entries ahead) */
    void (*prefetch)(const gp_placement_t *pl, int slot);
    /* optional: the key a batch of jobs placed together is ordered by,
     * descending (ties keep their arrival order); NULL: arrival order */
    double (*batch_key)(const gp_pl_req_t *r);
};

#define GP_PL_WHOLE_MAX 250

/* The FGD tables compiled from the typical shapes (policy_fgd.c). */
typedef struct gp_pl_typical gp_pl_typical_t;

#define GP_PL_POOL_GRAIN 32
#define GP_PL_POOL_CLASSES 32      /* blocks up to 1 KiB; larger ones are malloc'd */

struct gp_placement {
    const gp_policy_t *policy;
    uint64_t rng;
    uint64_t seed;
    int full_scan_nodes, max_candidates;
    gp_pl_node_t *nodes;
    int nslots, slots_cap;
    int *free_slots;
    int nfree;
    int nnodes;
    uint64_t gen;                /* new at each change of nodes or policy (gp_placement_generation) */
    int plan_slot;               /* the node of place()'s last plan (-1 none): add_alloc's
                                    likely node, checked by name */
    gp_strmap_t *node_index;     /* name -> slot (gp_pl_map_find) */
    gp_strmap_t *job_index;      /* job -> its gp_pl_alloc_t (s_alloc_find) */
    bool no_job_index;           /* opts.no_job_index: job_index stays NULL */
    gp_pl_alloc_t **allocs;
    int nallocs, allocs_cap;
    /* the allocations' memory (placement.c): per size class a list of
     * freed blocks, carved from slabs freed with the engine */
    void *pool_free[GP_PL_POOL_CLASSES];
    void **slabs;
    int nslabs, slabs_cap;
    char *slab_at;
    size_t slab_left;
    gp_strmap_t *strings;        /* interned names -> id */
    gp_strmap_t *kinds;          /* node kinds (gp_pl_node_t.kind) by their key */
    int nkinds;
    int nstrings;
    int ngroups;
    int64_t group_mem[GP_PL_MAX_GROUPS * 4];
    char *group_vendor[GP_PL_MAX_GROUPS * 4];
    char *group_model[GP_PL_MAX_GROUPS * 4];
    /* max-summary tree over node slots, and its leaves in brief */
    struct gp_pl_sum *tree;
    struct gp_pl_brief *brief;
    int tree_leaves;
    double max_cpu, max_gpu_milli;
    /* change log and per-shape indexes (placement.c) */
    uint32_t clock;              /* node versions: every change takes the next */
    uint64_t nchanges;
    struct gp_pl_change *changes;    /* ring of changed slots (placement_shape_index.c) */
    uint64_t *change_live;       /* a bit per ring entry: not superseded */
    int32_t *change_scratch;     /* a catch-up's live entries, in order */
    uint64_t *last_change;       /* per slot: 1 + its latest entry's place in the log */
    int nlast;
    int32_t *empty_kind;         /* per slot: its kind while used and without allocations,
                                    else 0 (kept by gp_pl_changed; a rebuild reads it
                                    instead of the node) */
    int nempty;
    struct gp_pl_shape_ix *shape_ix;
    int nshape_ix;
    int64_t shape_bytes;
    /* whole-score indexes: node slots in rank order (placement_shape_index.c) */
    int ix_bits;                 /* 2^ix_bits positions; 0: not built */
    bool ix_stale;               /* rebuild the positions at the next query */
    bool ix_no_whole;            /* a whole policy gave a fractional score: heaps only */
    int ix_cap;                  /* slots ix_at and ix_next hold */
    int32_t *ix_head;            /* position -> first slot there, -1 none */
    int32_t *ix_next;            /* slot -> next slot at its position, -1 end, -2 unlinked */
    int32_t *ix_at;              /* slot -> its position, -1 never linked */
    int64_t *ix_mem;             /* max tree (upper bounds) of free host memory over positions */
    uint32_t ix_epoch;
    int shape_hint[GP_PL_SHAPE_HINTS];        /* tag -> likely index in shape_ix */
    uint64_t shape_use;
    /* FGD */
    gp_pl_typical_t *typical;
    uint32_t epoch;
    bool typical_fixed;
    gp_shape_t *seen;            /* learned shapes */
    double *seen_w;
    int nseen, seen_cap;
    int64_t nobserved, next_learn;
    double cpu_per_gpu;          /* gpupool: the shapes' CPU per GPU milli */
    uint32_t cpu_per_gpu_epoch;
    int16_t waste[1001];         /* gpupool: a device's leftover by free share (permille) */
    uint32_t waste_epoch;        /* the epoch waste was built at, + 1 (0: never) */
    bool waste_off;              /* gpupool: CPU binds, leftovers do not count */
    /* placement_explain.c: recent explanations, by request and clock */
    struct gp_pl_explain_memo *explain_memo;
};

/* FGD tables: build from shapes (NULL on no memory), free. */
gp_pl_typical_t *gp_pl_typical_build(const gp_placement_t *pl, const gp_shape_t *shapes,
                                     const double *w, int n);
void gp_pl_typical_free(gp_pl_typical_t *t);

/* Engine services for policies. */

/* A device's free share in thousandths: the smaller of free compute and
 * free memory (kept current by the engine). */
static inline int gp_pl_dev_free_milli(const gp_pl_dev_t *d)
{
    return d->milli;
}

/* Memory r takes on d: a share of the device is rounded down, so that
 * shares adding up to 100% fit one device. */
static inline int64_t gp_pl_dev_mem_need(const gp_pl_dev_t *d, const gp_pl_req_t *r)
{
    if (r->whole)
        return d->mem_cap;
    if (r->mem_mib > 0)
        return r->mem_mib;
    int64_t need = r->mem_pm * d->mem_phys / 1000;
    return need > 0 ? need : 1;
}

/* The device's free share (permille) if r were placed on it. */
static inline int gp_pl_dev_milli_after(const gp_pl_dev_t *d, const gp_pl_req_t *r)
{
    if (r->whole)
        return 0;
    int64_t m = ((d->mem_free - gp_pl_dev_mem_need(d, r)) * 1000 + d->mem_cap / 2) / d->mem_cap;
    int c = d->comp_free - r->comp_pm;
    return m < c ? (int)m : c;
}

bool gp_pl_dev_fits_slow(const gp_pl_dev_t *d, const gp_pl_req_t *r);

/* Can d take r (health, model, uuid lists, room)? */
static inline bool gp_pl_dev_fits(const gp_placement_t *pl, const gp_pl_dev_t *d,
                                  const gp_pl_req_t *r)
{
    (void)pl;
    if (!d->healthy || d->whole_taken || !r->allowed[d->group])
        return false;
    if (r->dev_filter && !gp_pl_dev_fits_slow(d, r))
        return false;
    if (r->whole)
        return d->nalloc == 0;
    return d->comp_free >= r->comp_pm && d->mem_free >= gp_pl_dev_mem_need(d, r);
}
/* Choose r->n devices into pick[0..n); false when too few fit. */
bool gp_pl_pick(const gp_placement_t *pl, const gp_pl_node_t *node, const gp_pl_req_t *r,
                int mode, int8_t *pick);
uint64_t gp_pl_rand(gp_placement_t *pl);
/* binpack's utilization of a node after r on pick (policy_binpack.c) */
double gp_pl_util_after(const gp_pl_node_t *n, const gp_pl_req_t *r, const int8_t *pick);
void gp_pl_max_spec(const gp_placement_t *pl, double *cpu, double *gpu_milli);
int64_t gp_pl_node_gpu_free(const gp_pl_node_t *n);
double gp_pl_fgd_node_frag(gp_placement_t *pl, const gp_pl_node_t *n, int64_t cpu_free,
                           const int *milli_free);
/* FGD's fragmentation of the node as it is (milli_free: its devices' free
 * shares), cached per node version. */
double gp_pl_fgd_node_frag_cached(gp_placement_t *pl, gp_pl_node_t *n, const int *milli_free);

/* A candidate node: its score, slot and device mask. */
typedef struct {
    double score;
    int slot;
    uint32_t mask;
} gp_pl_cand_t;

/* placement.c: the state */
/* The engine's name indexes are common/strmap maps holding an int i as
 * (void *)(i + 1); the int under key, or -1. */
int gp_pl_map_find(const gp_strmap_t *m, const char *key);
void gp_pl_apply(gp_placement_t *pl, gp_pl_alloc_t *a, int sign);  /* +1 add, -1 take back */
int gp_pl_compile(gp_placement_t *pl, const gp_job_t *job, gp_pl_req_t *r, gp_err_t *err);

/* placement_index.c: the summary tree.  A leaf holds a node's free
 * resources (free CPU, host memory, over its devices the best free compute,
 * free memory in MiB and as a permille bound, entirely free devices, the
 * models present); an inner entry the component-wise maximum. */
struct gp_pl_sum {
    int32_t cpu, mem, dmem;  /* saturated to 32 bits (gp_pl_sum_sat) */
    int32_t comp, dpm, whole;
    uint64_t groups;
};                          /* 32 bytes: a leaf, or two siblings, in one cache line */

static inline int32_t gp_pl_sum_sat(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Does summary s cover r's demand (a node under it may hold r)?  The
 * demand is saturated like the summary, so that saturation never turns a
 * node away (the exact checks come later). */
static inline bool gp_pl_sum_ok(const struct gp_pl_sum *s, const gp_pl_req_t *r)
{
    if (s->cpu < gp_pl_sum_sat(r->cpu) || s->mem < gp_pl_sum_sat(r->hmem))
        return false;
    if (r->n == 0)
        return true;
    if ((s->groups & r->group_mask) == 0)
        return false;
    if (r->whole)
        return s->whole >= r->n;
    if (s->comp < r->comp_pm)
        return false;
    return r->mem_pm ? s->dpm >= r->mem_pm : s->dmem >= gp_pl_sum_sat(r->mem_mib);
}

/* placement_index.c: a leaf's summary in brief, beside the tree (so that
 * a long catch-up of a shape index turns most changed nodes away from a
 * small record): each field the leaf's, scaled down and saturated by
 * gp_pl_brief_u16 (CPU >> 6, host memory >> 8, device memory >> 6,
 * compute and permille as they are), entirely free devices at most 255,
 * the models' bits folded into 8.  A request is brought to the same form
 * (gp_pl_brief_req); the scaling keeps order, so a node whose brief turns
 * a request away has a summary that turns it away too.  The record, one
 * cache line per slot, also holds for placement_shape_index.c a bit per
 * whole-score index (by its place in shape_ix): the slot's byte there is
 * not 0.  A catch-up reads both from the one line, and the many indexes
 * catching up on one changed node read the same line. */
#define GP_PL_MAX_SHAPES 256
struct gp_pl_brief {
    uint16_t cpu, mem, dmem, comp, dpm;
    uint8_t whole, groups;
    uint8_t pad[4];
    uint64_t held[GP_PL_MAX_SHAPES / 64];
    uint8_t pad2[16];
};

typedef struct {
    uint16_t cpu, mem, dmem, comp, dpm;
    uint8_t whole, groups;
    int n;
    bool whole_job, by_pm;
} gp_pl_brief_req_t;

static inline uint16_t gp_pl_brief_u16(int64_t v, int shift)
{
    if (v < 0)
        return 0;
    v >>= shift;
    return v > 65535 ? 65535 : (uint16_t)v;
}

static inline uint8_t gp_pl_brief_groups(uint64_t g)
{
    g |= g >> 32;
    g |= g >> 16;
    g |= g >> 8;
    return (uint8_t)g;
}

void gp_pl_brief_req(const gp_pl_req_t *r, gp_pl_brief_req_t *q);

/* false only when gp_pl_sum_ok(the slot's leaf, r) is false */
static inline bool gp_pl_brief_ok(const struct gp_pl_brief *b, const gp_pl_brief_req_t *q)
{
    if (b->cpu < q->cpu || b->mem < q->mem)
        return false;
    if (q->n == 0)
        return true;
    if ((b->groups & q->groups) == 0)
        return false;
    if (q->whole_job)
        return b->whole >= q->whole;
    if (b->comp < q->comp)
        return false;
    return q->by_pm ? b->dpm >= q->dpm : b->dmem >= q->dmem;
}

/* placement_index.c: where to look */
void gp_pl_tree_update(gp_placement_t *pl, int slot);
int gp_pl_tree_resize(gp_placement_t *pl, int min_leaves);
/* Slots whose summary covers r, into out[0..max), from a seeded start. */
int gp_pl_candidates(gp_placement_t *pl, const gp_pl_req_t *r, int *out, int max);
int gp_pl_random_best(gp_placement_t *pl, const gp_pl_req_t *r, gp_pl_cand_t *best);

/* placement_shape_index.c: the per-shape index */
void gp_pl_changed(gp_placement_t *pl, int slot);      /* stamp and log a node change */
/* Ask for what a change of slot's node will touch beside the node itself
 * (its summaries up the tree, brief, change-log stamp, position entries),
 * ahead of the change. */
void gp_pl_prefetch_change(const gp_placement_t *pl, int slot);
void gp_pl_index_free(gp_placement_t *pl);
/* 1 and *best when a node fits, 0 when none, -1 out of memory. */
int gp_pl_index_best(gp_placement_t *pl, const gp_pl_req_t *r, gp_pl_cand_t *best);

/* placement_plan.c: where to go */
bool gp_pl_node_static_ok(const gp_pl_node_t *n, const gp_pl_req_t *r);
uint32_t gp_pl_mask(const int8_t *pick, int n);
void gp_pl_unmask(uint32_t mask, int8_t *pick);
/* The policy's score of n for r (cached per shape and node version). */
bool gp_pl_eval(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r, double *score,
                uint32_t *mask);
void gp_pl_make_plan(const gp_placement_t *pl, const gp_pl_node_t *n, const gp_pl_req_t *r,
                     const int8_t *pick, gp_alloc_t *out);

/* policy_fgd.c: learn the typical shapes from the jobs asked about */
void gp_pl_observe(gp_placement_t *pl, const gp_pl_req_t *r);

extern const gp_policy_t gp_policy_binpack, gp_policy_spread, gp_policy_topology,
    gp_policy_fgd, gp_policy_random, gp_policy_dotprod, gp_policy_gpuclustering,
    gp_policy_gpupacking, gp_policy_bestfit, gp_policy_gpupool;

#endif
