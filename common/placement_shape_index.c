/*
 * placement_shape_index.c - per job shape, the nodes that can hold it in
 * the policy's order: the fast path of place() for cacheable policies
 * (gp_pl_index_best), and the change log that keeps it current
 * (gp_pl_changed, called for every change of a node).
 *
 * Per shape the nodes are ordered by the policy's score then the seed's
 * tie order: a max tree of one-byte scores over the tie order for
 * whole-number scores, an indexed heap otherwise.  The comment below
 * explains the algorithm.
 */
#include "placement_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

/* ------------------------------------------------------------ shape index
 *
 * The fast path of place() for the common job: no pins, labels,
 * preferences or uuid lists, and a policy whose score is a pure function
 * of the node's state and the job's shape (gp_policy_t.cacheable).  Then a
 * node's score for a shape changes only when the node changes, and every
 * change goes through gp_pl_changed, which stamps the node with a new version
 * and appends its slot to a change log (a ring).
 *
 * Per shape (up to S_MAX_SHAPES, least recently used evicted) the engine
 * keeps the nodes that can hold the shape ordered by (score, the node's
 * place in the seed's tie order).  A query for a shape first re-scores the
 * nodes logged since its previous query, then takes the best.  So a
 * placement costs O(c log n) for the c nodes changed since the shape was
 * last seen (typically a handful), not a pass over every node, and the
 * answer is the one scoring every node would give.  A shape seen for the
 * first time, or whose log position fell out of the ring, is built by one
 * pass.  Two orders:
 *   - whole-number scores (gp_policy_t.whole: FGD and the published
 *     baselines): one byte per node (1 + score, 0 when it cannot hold the
 *     shape) and a max tree of those bytes over the nodes' positions in the
 *     tie order (below).  An update rewrites the node's byte and climbs
 *     from its leaf until a maximum stops changing; the best node is the
 *     leftmost maximum, found by one descent.  Shapes that differ only in
 *     host memory (no whole policy scores it) share one tree that leaves
 *     out nodes with less free than the least of them asked; a job that
 *     asks more is checked at the top, with a search that skips subtrees
 *     that cannot beat the best found or lack the memory (a max tree of
 *     free host memory over the same positions).
 *   - other scores: an indexed 4-ary max-heap of (score, tie rank, slot),
 *     with each node's place in it; a node that still fits moves up or
 *     down, one that no longer fits leaves, one that now fits enters.
 *
 * The log holds slots, and a slot's entry is blanked when the slot changes
 * again (its new entry comes later in the log, so any catch-up that would
 * meet the old entry meets the new one too): a catch-up re-scores each
 * changed node once, with its final state, reading the log in order.  A
 * node whose score did not change touches nothing else.  Both matter with
 * many shapes: every change is re-scored once per shape queried after it,
 * and most changes neither move a node nor reach the top.  A bit per log
 * entry says it is live, so that a catch-up first gathers the live
 * entries, 64 to a word, in order, without walking the superseded ones.
 * Most changed nodes cannot hold most shapes: for a whole index, a node
 * whose byte is 0 and whose summary in brief still turns the shape away
 * is dropped from the gathered list without reading anything else, and
 * one whose byte is not 0 but whose brief now turns the shape away (a
 * node that was filled) gets the byte 0 without being scored: both tests
 * read the slot's brief record (a line a slot, placement_internal.h; the
 * index's bit there says its byte is not 0), which every index catching
 * up on that node reads.  The rest is memory-bound: a few entries ahead
 * a catch-up asks for the node's summary and byte or heap place, then, if
 * the summary lets the node hold the shape, the node, every line of its
 * devices and what the policy keeps of it (gp_policy_t.prefetch).  A whole index's leaf is at
 * least the byte of every node at its position (a node that leaves a
 * position does not lower it; s_ix_top corrects it when it reaches it),
 * so that a byte that rises, or falls below what another node there
 * holds, only climbs; a rebuild scores one empty node per kind (the empty
 * nodes of a kind, numbered by their records less the names when they
 * are added, share its byte, and their devices are not read).
 *
 * Memory per node per indexed shape: 2 to 3 bytes for a tree (its byte
 * and its share of the tree; its bit is in the brief record), 16 for
 * a heap (a 12-byte entry and a 4-byte place).  The chosen devices are
 * not kept: the policy picks them again for the top node only (the same
 * pick, the score being a pure function of the node's state).
 */
#define S_LOG_SIZE 65536
#define S_PREFETCH 16
#define S_MAX_SHAPES GP_PL_MAX_SHAPES
#define S_MAX_BYTES (512L * 1024 * 1024)

typedef struct {
    float score;
    uint32_t slot;
    uint32_t rank;
} s_hent_t;

struct gp_pl_change {
    int32_t slot;           /* -1: superseded */
};

struct gp_pl_shape_ix {
    uint64_t tag;
    bool whole;             /* the tree below, not the heap */
    /* heap */
    s_hent_t *h;
    int n, cap;
    int32_t *pos;           /* slot -> heap index, -1 absent */
    int npos;
    /* whole scores */
    uint8_t *sc;            /* slot -> 1 + score, 0: cannot hold the shape */
    uint8_t *t;             /* max tree over positions: t[1] root, leaves at 2^bits */
    int nsc;
    int64_t bytes;
    int64_t hmin;           /* whole: the least host memory its shapes asked */
    uint64_t log_pos;
    uint64_t used;
};

static void s_pos_sync(gp_placement_t *pl, int slot);

/* The whole index's bit in the slot's brief record: its byte is not 0. */
static void s_held_set(gp_placement_t *pl, const struct gp_pl_shape_ix *ix, int slot, bool on)
{
    int i = (int)(ix - pl->shape_ix);
    uint64_t *w = &pl->brief[slot].held[i / 64];
    if (on)
        *w |= 1ULL << (i % 64);
    else
        *w &= ~(1ULL << (i % 64));
}

/* A slot's kind while it is used and holds nothing (gp_pl_node_t.kind), else 0. */
static int32_t s_empty_kind(const gp_pl_node_t *n)
{
    return n->used && n->nallocs == 0 ? n->kind : 0;
}

void gp_pl_prefetch_change(const gp_placement_t *pl, int slot)
{
    for (int i = pl->tree_leaves + slot, up = 0; i >= 1 && up < 4; i /= 2, up++)
        __builtin_prefetch(&pl->tree[i]);
    __builtin_prefetch(&pl->brief[slot]);
    if (slot < pl->nlast)
        __builtin_prefetch(&pl->last_change[slot]);
    if (slot < pl->ix_cap) {
        __builtin_prefetch(&pl->ix_next[slot]);
        __builtin_prefetch(&pl->ix_at[slot]);
    }
}

void gp_pl_changed(gp_placement_t *pl, int slot)
{
    pl->nodes[slot].version = ++pl->clock;
    if (slot >= pl->nempty) {
        /* grown with the slots; a slot it cannot hold is read from its node */
        int ne = pl->slots_cap > slot ? pl->slots_cap : slot + 1;
        int32_t *e = realloc(pl->empty_kind, sizeof *e * (size_t)ne);
        if (e != NULL) {
            for (int i = pl->nempty; i < ne; i++)
                e[i] = i < pl->nslots ? s_empty_kind(&pl->nodes[i]) : 0;
            pl->empty_kind = e;
            pl->nempty = ne;
        }
    }
    if (slot < pl->nempty)
        pl->empty_kind[slot] = s_empty_kind(&pl->nodes[slot]);
    s_pos_sync(pl, slot);
    if (pl->changes == NULL) {
        pl->changes = malloc(sizeof *pl->changes * S_LOG_SIZE);
        pl->change_live = calloc(S_LOG_SIZE / 64, sizeof *pl->change_live);
        pl->change_scratch = malloc(sizeof *pl->change_scratch * S_LOG_SIZE);
        if (pl->changes == NULL || pl->change_live == NULL || pl->change_scratch == NULL) {
            free(pl->changes);
            free(pl->change_live);
            free(pl->change_scratch);
            pl->changes = NULL;
            pl->change_live = NULL;
            pl->change_scratch = NULL;
            /* without a log the indexes cannot follow: make them rebuild */
            pl->nchanges += S_LOG_SIZE + 1;
            return;
        }
    }
    if (slot >= pl->nlast) {
        int nl = pl->slots_cap > slot ? pl->slots_cap : slot + 1;
        uint64_t *l = realloc(pl->last_change, sizeof *l * (size_t)nl);
        if (l == NULL) {
            pl->nchanges += S_LOG_SIZE + 1;
            return;
        }
        memset(l + pl->nlast, 0, sizeof *l * (size_t)(nl - pl->nlast));
        pl->last_change = l;
        pl->nlast = nl;
    }
    /* the slot's previous entry, if still in the ring, is superseded:
     * every catch-up that would meet it meets this one too */
    uint64_t prev = pl->last_change[slot];
    if (prev > 0 && pl->nchanges - (prev - 1) < S_LOG_SIZE) {
        uint64_t at = (prev - 1) % S_LOG_SIZE;
        pl->changes[at].slot = -1;
        pl->change_live[at / 64] &= ~(1ULL << (at % 64));
    }
    uint64_t at = pl->nchanges % S_LOG_SIZE;
    pl->changes[at].slot = slot;
    pl->change_live[at / 64] |= 1ULL << (at % 64);
    pl->nchanges++;
    pl->last_change[slot] = pl->nchanges;
}

/* ------------------------------------------------ rank positions
 *
 * For whole-number scores (gp_policy_t.whole) the index of a shape is a
 * max tree over the nodes in the seed's tie order: the node's position is
 * the top ix_bits bits of its rank (2^(ix_bits + 1) >= slots, so a
 * position holds one or two nodes, chained and compared by rank and slot:
 * half the positions of one per node make every shape's tree half as
 * large, which the memory traffic of a catch-up feels more than the
 * longer chains).  Positions are kept as nodes come and go
 * (s_pos_sync from gp_pl_changed) and rebuilt, with the trees, when the
 * slots outgrow them or the seed changes.
 */
static int s_pos_of(const gp_placement_t *pl, uint32_t rank)
{
    return (int)(rank >> (32 - pl->ix_bits));
}

static void s_pos_link(gp_placement_t *pl, int slot)
{
    int at = s_pos_of(pl, pl->nodes[slot].rank);
    pl->ix_at[slot] = at;
    pl->ix_next[slot] = pl->ix_head[at];
    pl->ix_head[at] = slot;
}

/* A node (new, or moved) arrives at its position: no index has it there
 * yet, whatever its old byte says (see s_ix_update). */
static void s_pos_arrive(gp_placement_t *pl, int slot)
{
    s_pos_link(pl, slot);
    for (int i = 0; i < pl->nshape_ix; i++)
        if (pl->shape_ix[i].whole && slot < pl->shape_ix[i].nsc)
            pl->shape_ix[i].sc[slot] = 0;
    if (slot < pl->tree_leaves)   /* else a new slot: its record comes zeroed */
        memset(pl->brief[slot].held, 0, sizeof pl->brief[slot].held);
}

static void s_pos_unlink(gp_placement_t *pl, int slot)
{
    int32_t *p = &pl->ix_head[pl->ix_at[slot]];
    while (*p >= 0 && *p != slot)
        p = &pl->ix_next[*p];
    if (*p == slot)
        *p = pl->ix_next[slot];
    pl->ix_next[slot] = -2;
}

/* The host memory tree: per position at least the most free host memory
 * of its nodes, and up the tree at least the maximum below, so that a
 * search for a node with enough of it (s_ix_search) skips the subtrees
 * without one.  A change only raises it (s_mem_raise: no other node is
 * read); a search that finds a position's bound too high corrects it
 * (s_mem_fix: the exact value, and the maxima above it). */
static void s_mem_raise(gp_placement_t *pl, int at, int64_t v)
{
    for (int i = (1 << pl->ix_bits) + at; i >= 1 && pl->ix_mem[i] < v; i /= 2)
        pl->ix_mem[i] = v;
}

static void s_mem_fix(gp_placement_t *pl, int at)
{
    int64_t v = -1;
    for (int m = pl->ix_head[at]; m >= 0; m = pl->ix_next[m])
        if (pl->nodes[m].mem_free > v)
            v = pl->nodes[m].mem_free;
    int i = (1 << pl->ix_bits) + at;
    if (pl->ix_mem[i] == v)
        return;
    pl->ix_mem[i] = v;
    for (i /= 2; i >= 1; i /= 2) {
        int64_t a = pl->ix_mem[2 * i], b = pl->ix_mem[2 * i + 1];
        int64_t m = a > b ? a : b;
        if (pl->ix_mem[i] == m)
            break;
        pl->ix_mem[i] = m;
    }
}

static void s_pos_sync(gp_placement_t *pl, int slot)
{
    if (pl->ix_bits == 0 || pl->ix_stale)
        return;
    if (slot >= pl->ix_cap || pl->nslots > (2 << pl->ix_bits)) {
        pl->ix_stale = true;
        return;
    }
    bool linked = pl->ix_next[slot] != -2;
    bool used = pl->nodes[slot].used;
    if (linked && (!used || pl->ix_at[slot] != s_pos_of(pl, pl->nodes[slot].rank)))
        s_pos_unlink(pl, slot);
    if (used && pl->ix_next[slot] == -2)
        s_pos_arrive(pl, slot);
    if (pl->ix_at[slot] >= 0 && used)
        s_mem_raise(pl, pl->ix_at[slot], pl->nodes[slot].mem_free);
}

static int s_pos_build(gp_placement_t *pl)
{
    int bits = 6;
    while ((2 << bits) < pl->nslots)
        bits++;
    int cap = pl->slots_cap > pl->nslots ? pl->slots_cap : pl->nslots;
    int32_t *head = malloc(sizeof *head << bits);
    int32_t *next = malloc(sizeof *next * (size_t)(cap ? cap : 1));
    int32_t *at = malloc(sizeof *at * (size_t)(cap ? cap : 1));
    int64_t *mem = malloc(sizeof *mem << (bits + 1));
    if (head == NULL || next == NULL || at == NULL || mem == NULL) {
        free(head);
        free(next);
        free(at);
        free(mem);
        return -1;
    }
    free(pl->ix_head);
    free(pl->ix_next);
    free(pl->ix_at);
    free(pl->ix_mem);
    pl->ix_head = head;
    pl->ix_next = next;
    pl->ix_at = at;
    pl->ix_mem = mem;
    pl->ix_bits = bits;
    pl->ix_cap = cap;
    pl->ix_stale = false;
    for (int i = 0; i < (1 << bits); i++)
        head[i] = -1;
    for (int i = 0; i < cap; i++) {
        next[i] = -2;
        at[i] = -1;
    }
    for (int i = 0; i < (2 << bits); i++)
        mem[i] = -1;
    for (int slot = pl->nslots - 1; slot >= 0; slot--)
        if (pl->nodes[slot].used) {
            s_pos_link(pl, slot);
            int i = (1 << bits) + at[slot];
            if (pl->nodes[slot].mem_free > mem[i])
                mem[i] = pl->nodes[slot].mem_free;
        }
    for (int i = (1 << bits) - 1; i >= 1; i--)
        mem[i] = mem[2 * i] > mem[2 * i + 1] ? mem[2 * i] : mem[2 * i + 1];
    return 0;
}

/* ------------------------------------------------ heap */

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

/* A 4-ary heap: half the levels of a binary one, and a node's children
 * (4 x 12 bytes) in one or two cache lines. */
#define S_HARITY 4

static void s_hup(struct gp_pl_shape_ix *ix, int i)
{
    s_hent_t x = ix->h[i];
    while (i > 0 && s_hbetter(&x, &ix->h[(i - 1) / S_HARITY])) {
        s_hset(ix, i, ix->h[(i - 1) / S_HARITY]);
        i = (i - 1) / S_HARITY;
    }
    s_hset(ix, i, x);
}

static void s_hdown(struct gp_pl_shape_ix *ix, int i)
{
    s_hent_t x = ix->h[i];
    for (;;) {
        int c = S_HARITY * i + 1;
        if (c >= ix->n)
            break;
        int end = c + S_HARITY < ix->n ? c + S_HARITY : ix->n;
        for (int k = c + 1; k < end; k++)
            if (s_hbetter(&ix->h[k], &ix->h[c]))
                c = k;
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
    int64_t before = ix->bytes;
    if (ix->whole) {
        if (ix->nsc < pl->nslots) {
            int ns = ix->nsc == 0 ? pl->nslots : pl->nslots + pl->nslots / 4;
            uint8_t *sc = realloc(ix->sc, (size_t)ns);
            if (sc == NULL)
                return -1;
            memset(sc + ix->nsc, 0, (size_t)(ns - ix->nsc));
            ix->sc = sc;
            ix->nsc = ns;
        }
        if (ix->t == NULL && (ix->t = calloc((size_t)2 << pl->ix_bits, 1)) == NULL)
            return -1;
        ix->bytes = ix->nsc + ((int64_t)2 << pl->ix_bits);
        pl->shape_bytes += ix->bytes - before;
        return 0;
    }
    if (ix->npos < pl->nslots) {
        /* exactly the slots at the first build (most engines get all their
         * nodes before the first placement), room to grow after that */
        int np = ix->npos == 0 ? pl->nslots : pl->nslots + pl->nslots / 4;
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
        ix->h = h;
        ix->cap = nc;
    }
    ix->bytes = (int64_t)ix->cap * (int64_t)sizeof *ix->h + (int64_t)ix->npos * 4;
    pl->shape_bytes += ix->bytes - before;
    return 0;
}

/* Score slot for the shape (and its devices into *mask when asked); false
 * when it cannot hold it. */
static bool s_ix_score(gp_placement_t *pl, const gp_pl_req_t *r, int slot, double *score,
                       uint32_t *mask)
{
    gp_pl_node_t *n = &pl->nodes[slot];
    int8_t pick[GP_MAX_DEVICES];
    /* the index is the cache here: score directly; the summary first (an
     * unused slot's never holds anything), so that a node that cannot
     * hold the shape is not read at all */
    if (!gp_pl_sum_ok(&pl->tree[pl->tree_leaves + slot], r) || !n->used ||
        !gp_pl_node_static_ok(n, r) || !r->policy->score(pl, n, r, score, pick))
        return false;
    if (mask)
        *mask = gp_pl_mask(pick, r->n);
    return true;
}

/* Whole scores: 1 + score, 0 when the node cannot hold the shape, 255
 * when the policy broke its promise (a fraction or out of range). */
static uint8_t s_ix_byte(gp_placement_t *pl, const gp_pl_req_t *r, int slot)
{
    double sc;
    if (!s_ix_score(pl, r, slot, &sc, NULL))
        return 0;
    if (!(sc >= 0 && sc <= GP_PL_WHOLE_MAX) || sc != (double)(int)sc)
        return 255;
    return (uint8_t)(1 + (int)sc);
}

/* Recompute the leaf at position at from its nodes, and its ancestors up
 * to the first that does not change. */
static void s_tree_fix(const gp_placement_t *pl, struct gp_pl_shape_ix *ix, int at)
{
    uint8_t v = 0;
    for (int m = pl->ix_head[at]; m >= 0; m = pl->ix_next[m])
        if (ix->sc[m] > v)
            v = ix->sc[m];
    int i = (1 << pl->ix_bits) + at;
    if (ix->t[i] == v)
        return;
    ix->t[i] = v;
    for (i /= 2; i >= 1; i /= 2) {
        uint8_t a = ix->t[2 * i], b = ix->t[2 * i + 1];
        uint8_t m = a > b ? a : b;
        if (ix->t[i] == m)
            break;
        ix->t[i] = m;
    }
}

/* A whole index's byte for slot becomes b. */
static void s_ix_set(gp_placement_t *pl, struct gp_pl_shape_ix *ix, int slot, uint8_t b)
{
    uint8_t old = ix->sc[slot];
    if (old == b)
        return;             /* its leaf holds it already (s_pos_arrive) */
    ix->sc[slot] = b;
    s_held_set(pl, ix, slot, b != 0);
    if (pl->ix_next[slot] == -2)
        return;
    /* a leaf is at least the byte of every node at its position (it may
     * be more: s_ix_top corrects it); only a node that held its leaf's
     * value and lost it makes the leaf look at the others */
    int i = (1 << pl->ix_bits) + pl->ix_at[slot];
    if (b > ix->t[i]) {
        for (; i >= 1 && ix->t[i] < b; i /= 2)
            ix->t[i] = b;
    } else if (old >= ix->t[i]) {
        s_tree_fix(pl, ix, pl->ix_at[slot]);
    }
}

/* Bring slot up to date in the shape's index; -1 when a whole policy gave a
 * score that is not a whole number in range. */
static int s_ix_update(gp_placement_t *pl, struct gp_pl_shape_ix *ix, const gp_pl_req_t *r,
                       int slot)
{
    if (ix->whole) {
        uint8_t b = s_ix_byte(pl, r, slot);
        if (b == 255)
            return -1;
        s_ix_set(pl, ix, slot, b);
        return 0;
    }
    s_hent_t e;
    double sc;
    if (!s_ix_score(pl, r, slot, &sc, NULL)) {
        s_hremove(ix, slot);
        return 0;
    }
    e.score = (float)sc;
    e.slot = (uint32_t)slot;
    e.rank = pl->nodes[slot].rank;
    int i = ix->pos[slot];
    if (i >= 0 && ix->h[i].score == e.score && ix->h[i].rank == e.rank)
        return 0;           /* same key: same place */
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
    return 0;
}

/* A rebuild walks the slots in order: the summaries come by themselves,
 * the nodes' devices (allocated apart) and what the policy keeps are asked
 * for a few slots ahead, for the nodes whose summary lets them hold the
 * shape. */
static void s_rebuild_prefetch(gp_placement_t *pl, const gp_pl_req_t *r, int s, bool by_kind)
{
    if (s + S_PREFETCH < pl->nslots) {
        int a = s + S_PREFETCH;
        const gp_pl_node_t *an = &pl->nodes[a];
        /* by_kind: an empty node (but the first of its kind) takes its
         * kind's byte without being read */
        bool empty = a < pl->nempty ? pl->empty_kind[a] > 0 : an->nallocs == 0;
        if ((!by_kind || !empty) && gp_pl_sum_ok(&pl->tree[pl->tree_leaves + a], r)) {
            const char *dv = (const char *)an->dev;
            size_t dlen = sizeof *an->dev * (size_t)an->ndev;
            for (size_t o = 0; o < dlen; o += 64)
                __builtin_prefetch(dv + o);
            if (r->policy->prefetch)
                r->policy->prefetch(pl, a);
        }
    }
}

#define S_EMPTY_KINDS 64

static int s_ix_rebuild(gp_placement_t *pl, struct gp_pl_shape_ix *ix, const gp_pl_req_t *r,
                        const gp_pl_brief_req_t *q)
{
    if (ix->whole) {
        int leaves = 1 << pl->ix_bits;
        memset(ix->t, 0, (size_t)2 * (size_t)leaves);
        /* an empty node's byte, by kind: most nodes are empty when most
         * shapes are first seen, and a kind's empty nodes are in the same
         * state (gp_pl_node_t.kind), so they score alike */
        struct {
            int kind;
            uint8_t b;
        } empty[S_EMPTY_KINDS];
        for (int k = 0; k < S_EMPTY_KINDS; k++)
            empty[k].kind = 0;
        for (int s = 0; s < pl->nslots; s++) {
            if (!gp_pl_brief_ok(&pl->brief[s], q)) {
                ix->sc[s] = 0;
                s_held_set(pl, ix, s, false);
                continue;
            }
            s_rebuild_prefetch(pl, r, s, true);
            int kind = s < pl->nempty ? pl->empty_kind[s] : s_empty_kind(&pl->nodes[s]);
            int at = kind % S_EMPTY_KINDS;
            uint8_t b;
            if (kind > 0 && empty[at].kind == kind) {
                b = empty[at].b;
            } else {
                b = s_ix_byte(pl, r, s);
                if (kind > 0) {
                    empty[at].kind = kind;
                    empty[at].b = b;
                }
            }
            if (b == 255)
                return -1;
            ix->sc[s] = b;
            s_held_set(pl, ix, s, b != 0);
        }
        /* the leaves, in a pass of their own (the pass above streams
         * nodes and devices) */
        for (int s = 0; s < pl->nslots; s++) {
            uint8_t b = ix->sc[s];
            if (b > 0 && pl->ix_next[s] != -2 && b > ix->t[leaves + pl->ix_at[s]])
                ix->t[leaves + pl->ix_at[s]] = b;
        }
        for (int i = leaves - 1; i >= 1; i--)
            ix->t[i] = ix->t[2 * i] > ix->t[2 * i + 1] ? ix->t[2 * i] : ix->t[2 * i + 1];
        return 0;
    }
    for (int i = 0; i < ix->npos; i++)
        ix->pos[i] = -1;
    ix->n = 0;
    for (int s = 0; s < pl->nslots; s++) {
        double sc;
        s_rebuild_prefetch(pl, r, s, false);
        if (s_ix_score(pl, r, s, &sc, NULL)) {
            s_hent_t e = {(float)sc, (uint32_t)s, pl->nodes[s].rank};
            s_hset(ix, ix->n++, e);
        }
    }
    for (int i = ix->n > 1 ? (ix->n - 2) / S_HARITY : -1; i >= 0; i--)
        s_hdown(ix, i);
    return 0;
}

/* Is m better than best (-1: none) for the whole index: higher byte, then
 * lower rank, then lower slot? */
static bool s_wbetter(const gp_placement_t *pl, const struct gp_pl_shape_ix *ix, int m, int best)
{
    if (best < 0 || ix->sc[m] != ix->sc[best])
        return best < 0 || ix->sc[m] > ix->sc[best];
    uint32_t a = pl->nodes[m].rank, b = pl->nodes[best].rank;
    return a < b || (a == b && m < best);
}

/* The best node of subtree i (positions lo..hi-1) with at least hmem host
 * memory free into *best.  The child with the higher maximum first (the
 * left one among equals), so that a good node is found early; a subtree
 * is skipped when its maximum is below the best's byte, or equal and all
 * its positions after the best's (a tie goes to the lower position). */
static void s_ix_search(gp_placement_t *pl, const struct gp_pl_shape_ix *ix, int i,
                        int lo, int hi, int64_t hmem, int *best)
{
    int leaves = 1 << pl->ix_bits;
    if (ix->t[i] == 0 || pl->ix_mem[i] < hmem)
        return;
    if (*best >= 0) {
        uint8_t b = ix->sc[*best];
        if (ix->t[i] < b || (ix->t[i] == b && lo > pl->ix_at[*best]))
            return;
    }
    if (i < leaves) {
        int mid = (lo + hi) / 2;
        if (ix->t[2 * i + 1] > ix->t[2 * i]) {
            s_ix_search(pl, ix, 2 * i + 1, mid, hi, hmem, best);
            s_ix_search(pl, ix, 2 * i, lo, mid, hmem, best);
        } else {
            s_ix_search(pl, ix, 2 * i, lo, mid, hmem, best);
            s_ix_search(pl, ix, 2 * i + 1, mid, hi, hmem, best);
        }
        return;
    }
    int found = -1;
    bool room = false;
    for (int m = pl->ix_head[i - leaves]; m >= 0; m = pl->ix_next[m]) {
        if (pl->nodes[m].mem_free < hmem)
            continue;
        room = true;
        if (ix->sc[m] > 0 && s_wbetter(pl, ix, m, found))
            found = m;
    }
    if (!room)
        s_mem_fix(pl, i - leaves);      /* its bound was too high */
    if (found >= 0 && s_wbetter(pl, ix, found, *best))
        *best = found;
}

/* The best slot of a current index, -1 when none fits.  Shapes that differ
 * only in host memory share a whole index, whose bytes leave out the nodes
 * with less free than the least any of them asked (ix->hmin); a job that
 * asks more is checked here. */
static int s_ix_top(gp_placement_t *pl, struct gp_pl_shape_ix *ix, int64_t hmem)
{
    if (!ix->whole)
        return ix->n > 0 ? (int)ix->h[0].slot : -1;
    int leaves = 1 << pl->ix_bits;
    for (;;) {
        uint8_t top = ix->t[1];
        if (top == 0)
            return -1;
        int i = 1;
        while (i < leaves)
            i = ix->t[2 * i] == top ? 2 * i : 2 * i + 1;
        int best = -1;
        for (int m = pl->ix_head[i - leaves]; m >= 0; m = pl->ix_next[m])
            if (ix->sc[m] == top && s_wbetter(pl, ix, m, best))
                best = m;
        if (best >= 0 && pl->nodes[best].mem_free >= hmem)
            return best;
        if (best >= 0) {
            /* the best lacks host memory: search, skipping what cannot win */
            best = -1;
            s_ix_search(pl, ix, 1, 0, leaves, hmem, &best);
            return best;
        }
        /* a node left this position since the leaf was set (its slot was
         * reused elsewhere): correct the leaf and look again */
        s_tree_fix(pl, ix, i - leaves);
    }
}

static void s_ix_free_one(gp_placement_t *pl, struct gp_pl_shape_ix *ix)
{
    pl->shape_bytes -= ix->bytes;
    free(ix->h);
    free(ix->pos);
    free(ix->sc);
    free(ix->t);
    memset(ix, 0, sizeof *ix);
}

void gp_pl_index_free(gp_placement_t *pl)
{
    for (int i = 0; i < pl->nshape_ix; i++)
        s_ix_free_one(pl, &pl->shape_ix[i]);
    pl->nshape_ix = 0;
    free(pl->ix_head);
    free(pl->ix_next);
    free(pl->ix_at);
    free(pl->ix_mem);
    pl->ix_head = pl->ix_next = pl->ix_at = NULL;
    pl->ix_mem = NULL;
    pl->ix_bits = 0;
    pl->ix_cap = 0;
}

/* 1 and *best when a node fits, 0 when none, -1 out of memory. */
int gp_pl_index_best(gp_placement_t *pl, const gp_pl_req_t *r, gp_pl_cand_t *best)
{
    if (pl->shape_ix == NULL &&
        (pl->shape_ix = calloc(S_MAX_SHAPES, sizeof *pl->shape_ix)) == NULL)
        return -1;
    bool whole = r->policy->whole && !pl->ix_no_whole;
    if (pl->ix_epoch != pl->epoch || (whole && (pl->ix_bits == 0 || pl->ix_stale))) {
        gp_pl_index_free(pl);
        pl->ix_epoch = pl->epoch;
        if (whole && s_pos_build(pl) < 0)
            return -1;
    }
    /* whole indexes score without host memory (see s_ix_top) */
    uint64_t tag = (whole ? r->shape_devices : r->shape) | 1;
    struct gp_pl_shape_ix *ix = NULL;
    int hint = pl->shape_hint[(tag >> 8) % GP_PL_SHAPE_HINTS];
    if (hint < pl->nshape_ix && pl->shape_ix[hint].tag == tag)
        ix = &pl->shape_ix[hint];
    for (int i = 0; ix == NULL && i < pl->nshape_ix; i++)
        if (pl->shape_ix[i].tag == tag)
            ix = &pl->shape_ix[i];
    if (ix != NULL && ix->whole != whole) {
        s_ix_free_one(pl, ix);
        ix->tag = tag;
        ix->log_pos = pl->nchanges - S_LOG_SIZE - 1;       /* rebuild */
    }
    bool rebuild = false;
    if (ix == NULL) {
        int64_t need = whole ? pl->nslots + ((int64_t)2 << pl->ix_bits)
                             : (int64_t)pl->nslots * 16;
        while (pl->nshape_ix > 0 && (pl->nshape_ix == S_MAX_SHAPES ||
                                     pl->shape_bytes + need > S_MAX_BYTES)) {
            int lru = 0;
            for (int i = 1; i < pl->nshape_ix; i++)
                if (pl->shape_ix[i].used < pl->shape_ix[lru].used)
                    lru = i;
            s_ix_free_one(pl, &pl->shape_ix[lru]);
            pl->shape_ix[lru] = pl->shape_ix[--pl->nshape_ix];
            memset(&pl->shape_ix[pl->nshape_ix], 0, sizeof *ix);
            /* the moved index's bits in the briefs are at its old place */
            if (lru < pl->nshape_ix)
                pl->shape_ix[lru].log_pos = pl->nchanges - S_LOG_SIZE - 1;
        }
        ix = &pl->shape_ix[pl->nshape_ix++];
        ix->tag = tag;
        rebuild = true;
        ix->hmin = r->hmem;
    } else if (pl->nchanges - ix->log_pos > S_LOG_SIZE) {
        rebuild = true;
    }
    if (whole && r->hmem < ix->hmin) {
        ix->hmin = r->hmem;     /* nodes left out so far may serve this one */
        rebuild = true;
    }
    /* a whole index scores with its shapes' least host memory (s_ix_top) */
    gp_pl_req_t rw;
    if (whole) {
        memcpy(&rw, r, sizeof rw);
        rw.hmem = ix->hmin;
    }
    const gp_pl_req_t *r_ix = whole ? &rw : r;
    gp_pl_brief_req_t bq;
    gp_pl_brief_req(r_ix, &bq);
    ix->whole = whole;
    ix->used = ++pl->shape_use;
    pl->shape_hint[(tag >> 8) % GP_PL_SHAPE_HINTS] = (int)(ix - pl->shape_ix);
    if (s_ix_reserve(pl, ix) < 0)
        return -1;
    int rc = 0;
    if (rebuild) {
        rc = s_ix_rebuild(pl, ix, r_ix, &bq);
    } else {
        /* the live entries since the shape's last query, in order: a
         * word of the live bits covers 64 entries, superseded ones cost
         * nothing */
        int32_t *live = pl->change_scratch;
        int n = 0;
        for (uint64_t c = ix->log_pos; c < pl->nchanges;) {
            uint64_t at = c % S_LOG_SIZE;
            uint64_t span = 64 - at % 64;
            if (span > pl->nchanges - c)
                span = pl->nchanges - c;
            uint64_t bits = pl->change_live[at / 64] >> (at % 64);
            if (span < 64)
                bits &= (1ULL << span) - 1;
            while (bits) {
                live[n++] = pl->changes[at + (uint64_t)__builtin_ctzll(bits)].slot;
                bits &= bits - 1;
            }
            c += span;
        }
        if (whole) {
            /* a node that could not hold the shape (its byte is 0) and
             * still cannot (its brief says so): nothing to do */
            int m = 0, xi = (int)(ix - pl->shape_ix);
            for (int k = 0; k < n; k++) {
                if (k + 2 * S_PREFETCH < n)
                    __builtin_prefetch(&pl->brief[live[k + 2 * S_PREFETCH]]);
                int slot = live[k];
                const struct gp_pl_brief *br = &pl->brief[slot];
                if (gp_pl_brief_ok(br, &bq))
                    live[m++] = slot;
                else if (br->held[xi / 64] >> (xi % 64) & 1)
                    live[m++] = ~slot;      /* its byte goes to 0, unscored */
            }
            n = m;
        }
        const struct gp_pl_sum *leaf = &pl->tree[pl->tree_leaves];
        for (int k = 0; k < n && rc == 0; k++) {
            /* the entries ahead touch nodes, summaries and positions at
             * random: ask for them early (a long catch-up is memory-bound),
             * in three steps, so that the node and its devices are asked
             * for only when its summary lets it hold the shape (most
             * changed nodes cannot hold most shapes: their byte stays 0) */
            if (k + 3 * S_PREFETCH < n && live[k + 3 * S_PREFETCH] < 0) {
                int ahead = ~live[k + 3 * S_PREFETCH];
                __builtin_prefetch(&ix->sc[ahead]);
                __builtin_prefetch(&pl->ix_at[ahead]);
            } else if (k + 3 * S_PREFETCH < n) {
                int ahead = live[k + 3 * S_PREFETCH];
                __builtin_prefetch(&leaf[ahead]);     /* one line (32 bytes, aligned) */
                if (whole) {
                    __builtin_prefetch(&ix->sc[ahead]);
                    __builtin_prefetch(&pl->ix_at[ahead]);
                } else {
                    __builtin_prefetch(&ix->pos[ahead]);
                }
            }
            if (k + 2 * S_PREFETCH < n && live[k + 2 * S_PREFETCH] < 0) {
                int ahead = ~live[k + 2 * S_PREFETCH];
                if (pl->ix_at[ahead] >= 0)
                    __builtin_prefetch(&ix->t[(1 << pl->ix_bits) + pl->ix_at[ahead]]);
            } else if (k + 2 * S_PREFETCH < n) {
                int ahead = live[k + 2 * S_PREFETCH];
                if (gp_pl_sum_ok(&leaf[ahead], r_ix)) {
                    const char *hot = (const char *)&pl->nodes[ahead];
                    __builtin_prefetch(hot);
                    __builtin_prefetch(hot + GP_PL_NODE_HOT - 1);
                }
                /* most bytes that a catch-up re-scores change: their leaf */
                if (whole && pl->ix_at[ahead] >= 0)
                    __builtin_prefetch(&ix->t[(1 << pl->ix_bits) + pl->ix_at[ahead]]);
            }
            if (k + S_PREFETCH < n && live[k + S_PREFETCH] >= 0) {
                int ahead = live[k + S_PREFETCH];
                if (gp_pl_sum_ok(&leaf[ahead], r_ix)) {
                    /* the node came in S_PREFETCH entries ago: its devices
                     * (every line of them) now, and what the policy keeps */
                    const gp_pl_node_t *an = &pl->nodes[ahead];
                    const char *dv = (const char *)an->dev;
                    size_t dlen = sizeof *an->dev * (size_t)an->ndev;
                    for (size_t o = 0; o < dlen; o += 64)
                        __builtin_prefetch(dv + o);
                    if (r->policy->prefetch)
                        r->policy->prefetch(pl, ahead);
                }
            }
            if (live[k] >= 0)
                rc = s_ix_update(pl, ix, r_ix, live[k]);
            else
                s_ix_set(pl, ix, ~live[k], 0);
        }
    }
    if (rc < 0) {
        /* a whole policy gave a fractional score: heaps from now on */
        pl->ix_no_whole = true;
        gp_pl_index_free(pl);
        return gp_pl_index_best(pl, r, best);
    }
    ix->log_pos = pl->nchanges;
    int slot = s_ix_top(pl, ix, r->hmem);
    if (slot < 0)
        return 0;
    /* the node is likely to take the job: what its commit will touch
     * beside the node, asked for while the policy picks its devices */
    gp_pl_prefetch_change(pl, slot);
    __builtin_prefetch(pl->nodes[slot].allocs);
    uint32_t mask = 0;
    double sc;
    if (!s_ix_score(pl, r, slot, &sc, &mask))
        return -1;          /* cannot happen: the index is current */
    best->slot = slot;
    best->mask = mask;
    best->score = sc;
    return 1;
}
