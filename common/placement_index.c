/*
 * placement_index.c - where to look for a node that can hold a job.
 *
 * The summary tree: a max-summary of free resources over the engine's node
 * slots, kept current by the engine (gp_pl_tree_update after every change
 * of a node), so that a search visits only subtrees where the job can fit
 * (gp_pl_candidates).  And the random policy's uniform draw over the
 * feasible nodes (gp_pl_random_best).  The per-shape index, the fast path
 * of place() for cacheable policies, is placement_shape_index.c.  The
 * comments above each explain the algorithm.
 */
#include "placement_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

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
static void s_sum_leaf(const gp_pl_node_t *n, struct gp_pl_sum *s)
{
    memset(s, 0, sizeof *s);
    s->cpu = -1;
    if (!n->used || !n->healthy)
        return;
    s->cpu = gp_pl_sum_sat(n->cpu_free);
    s->mem = gp_pl_sum_sat(n->mem_free);
    for (int i = 0; i < n->ndev; i++) {
        const gp_pl_dev_t *d = &n->dev[i];
        s->groups |= 1ULL << (d->group < 63 ? d->group : 63);
        if (!d->healthy || d->whole_taken)
            continue;
        if (d->comp_free > s->comp)
            s->comp = d->comp_free;
        if (gp_pl_sum_sat(d->mem_free) > s->dmem)
            s->dmem = gp_pl_sum_sat(d->mem_free);
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

static bool s_sum_same(const struct gp_pl_sum *a, const struct gp_pl_sum *b)
{
    return a->cpu == b->cpu && a->mem == b->mem && a->dmem == b->dmem && a->comp == b->comp &&
           a->dpm == b->dpm && a->whole == b->whole && a->groups == b->groups;
}

/* The brief's fields (not the shape indexes' bits). */
static void s_brief(const struct gp_pl_sum *s, struct gp_pl_brief *b)
{
    memset(b, 0, offsetof(struct gp_pl_brief, held));
    b->cpu = gp_pl_brief_u16(s->cpu, 6);
    b->mem = gp_pl_brief_u16(s->mem, 8);
    b->dmem = gp_pl_brief_u16(s->dmem, 6);
    b->comp = gp_pl_brief_u16(s->comp, 0);
    b->dpm = gp_pl_brief_u16(s->dpm, 0);
    b->whole = (uint8_t)(s->whole < 0 ? 0 : s->whole > 255 ? 255 : s->whole);
    b->groups = gp_pl_brief_groups(s->groups);
}

void gp_pl_brief_req(const gp_pl_req_t *r, gp_pl_brief_req_t *q)
{
    memset(q, 0, sizeof *q);
    q->cpu = gp_pl_brief_u16(r->cpu, 6);
    q->mem = gp_pl_brief_u16(r->hmem, 8);
    q->dmem = gp_pl_brief_u16(r->mem_mib, 6);
    q->comp = gp_pl_brief_u16(r->comp_pm, 0);
    q->dpm = gp_pl_brief_u16(r->mem_pm, 0);
    q->whole = (uint8_t)(r->n < 0 ? 0 : r->n > 255 ? 255 : r->n);
    q->groups = gp_pl_brief_groups(r->group_mask);
    q->n = r->n;
    q->whole_job = r->whole;
    q->by_pm = r->mem_pm != 0;
}

/* The climb stops at the first entry that does not change: the entries
 * above it are maxima of what did not change. */
void gp_pl_tree_update(gp_placement_t *pl, int slot)
{
    int i = pl->tree_leaves + slot;
    s_sum_leaf(&pl->nodes[slot], &pl->tree[i]);
    s_brief(&pl->tree[i], &pl->brief[slot]);
    for (i /= 2; i >= 1; i /= 2) {
        struct gp_pl_sum m;
        s_sum_merge(&m, &pl->tree[2 * i], &pl->tree[2 * i + 1]);
        if (s_sum_same(&m, &pl->tree[i]))
            break;
        pl->tree[i] = m;
    }
}

int gp_pl_tree_resize(gp_placement_t *pl, int min_leaves)
{
    int leaves = pl->tree_leaves ? pl->tree_leaves : 64;
    while (leaves < min_leaves)
        leaves *= 2;
    _Static_assert(sizeof(struct gp_pl_sum) == 32, "a summary is half a cache line");
    struct gp_pl_sum *t = aligned_alloc(64, sizeof *t * 2 * (size_t)leaves);
    struct gp_pl_brief *b = aligned_alloc(64, sizeof *b * (size_t)leaves);
    if (t == NULL || b == NULL) {
        free(t);
        free(b);
        return -1;
    }
    /* the shape indexes' bits stay with their slots */
    memset(b, 0, sizeof *b * (size_t)leaves);
    for (int s = 0; s < pl->tree_leaves; s++)
        memcpy(b[s].held, pl->brief[s].held, sizeof b[s].held);
    for (int i = 0; i < 2 * leaves; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].cpu = -1;
    }
    free(pl->tree);
    free(pl->brief);
    pl->tree = t;
    pl->brief = b;
    pl->tree_leaves = leaves;
    for (int s = 0; s < leaves; s++) {
        if (s < pl->nslots)
            s_sum_leaf(&pl->nodes[s], &t[leaves + s]);
        s_brief(&t[leaves + s], &b[s]);
    }
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
    if (v->n >= v->max || hi <= from || lo >= to || !gp_pl_sum_ok(&pl->tree[i], r))
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
int gp_pl_candidates(gp_placement_t *pl, const gp_pl_req_t *r, int *out, int max)
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
            if (gp_pl_sum_ok(&leaf[s], r))
                out[n++] = s;
        for (int s = 0; s < start; s++)
            if (gp_pl_sum_ok(&leaf[s], r))
                out[n++] = s;
        return n;
    }
    s_visit_t v = {out, 0, max};
    s_tree_visit(pl, 1, 0, pl->tree_leaves, start, pl->nslots, r, &v);
    s_tree_visit(pl, 1, 0, pl->tree_leaves, 0, start, r, &v);
    return v.n;
}

/*
 * The random policy wants a node drawn uniformly from the nodes that can
 * hold the job.  Rejection sampling does that exactly without looking at
 * every node: draw a slot, keep it if the job fits.  When the job fits few
 * nodes (after 64 misses), draw instead from the nodes whose summary
 * covers the job, removing each that turns out not to fit: still uniform
 * over the feasible nodes.
 */
int gp_pl_random_best(gp_placement_t *pl, const gp_pl_req_t *r, gp_pl_cand_t *best)
{
    for (int t = 0; t < 64 && pl->nslots > 0; t++) {
        int slot = (int)(gp_pl_rand(pl) % (uint64_t)pl->nslots);
        if (gp_pl_eval(pl, &pl->nodes[slot], r, &best->score, &best->mask)) {
            best->slot = slot;
            return 1;
        }
    }
    int *slots = malloc(sizeof *slots * (size_t)(pl->nslots ? pl->nslots : 1));
    if (slots == NULL)
        return -1;
    int n = gp_pl_candidates(pl, r, slots, pl->nslots);
    while (n > 0) {
        int i = (int)(gp_pl_rand(pl) % (uint64_t)n);
        if (gp_pl_eval(pl, &pl->nodes[slots[i]], r, &best->score, &best->mask)) {
            best->slot = slots[i];
            free(slots);
            return 1;
        }
        slots[i] = slots[--n];
    }
    free(slots);
    return 0;
}
