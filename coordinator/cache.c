/*
 * cache.c - the coordinator's view of the whole pool, fed by one watch.
 *
 * At start (and after a compaction) the cache lists every folder of the
 * pool at one revision R (the first range fixes R, the others read at R),
 * so the listing is one consistent snapshot; then it watches the whole
 * pool from R + 1, all but the agents' usage reports (P usage/, which
 * sorts last: the watch is the range [P, P usage/)).  One watch, not one
 * per folder: etcd delivers the events of one range in revision order, so
 * the cache is always the state of the pool at some revision, never a mix
 * (separate watches could show a job's record ahead of the allocation
 * that placed it, and let a round pick it again).
 *
 * What it keeps:
 *   nodes         node records -> the placement engine; per node, the
 *                 revision of our last commit on it (the commit fence) and
 *                 the agent that hosts it (from HELLOs, round.c)
 *   allocs        every committed allocation; those on present nodes are in
 *                 the engine too (a node that vanishes takes its allocations
 *                 out of the engine; they come back if it returns); also by
 *                 node, and the GPU share they hold (for the API, the console)
 *   tentative     allocations planned by a bid round, already in the engine
 *                 so that the next jobs of the batch see them; confirmed when
 *                 the watch delivers the committed allocation, removed when
 *                 the commit fails
 *   jobs          a summary of every job record and its JSON (for rounds and
 *                 the API); the queue of this region derived from them
 *                 (coord.h: coord_job_t), and its ended jobs (retention)
 *   usage         each node's usage record, not watched: read by the web
 *                 console when it needs them (ui.c), kept on the node
 *   leaders, coordinators   for the API and the election
 *   capacity      a second engine with the same nodes and no allocations,
 *                 NotReady nodes too (notready.c): intake asks it whether
 *                 any node the pool knows could ever hold a job
 *
 * The invariant the placement relies on: at cache revision R the engine
 * holds every allocation etcd had at R (plus our plans), because the
 * watch delivers whole revisions in order; so a commit may compare "no
 * allocation under alloc/<node>/ was created after R".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "jscan.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

/* The cache's own state: what the other modules ask about through
 * coord_cache_* (coord.h), never read directly. */
struct coord_cache {
    gp_etcd_watch_t *watch;
    int relist;                      /* the watch broke or was compacted: list again */
    int64_t revision;                /* the revision the cache reflects */
    gp_strmap_t *queue;              /* id -> coord_job_t*: jobs queued in this region */
    gp_strmap_t *held;               /* id -> coord_job_t*: hold_rev or doubt set */
    gp_strmap_t *tentative;          /* job -> gp_alloc_t* (planned in a round) */
    int capacity_freed;              /* an allocation or node came: retry waiting jobs */
    int64_t milli_alloc;             /* GPU milli of the committed allocations on present
                                      * nodes (coord_cache_milli_allocated) */
    int milli_stale;                 /* a node changed: count milli_alloc again when asked */
    gp_placement_t *engine;          /* the nodes, committed allocations and held plans */
    gp_placement_t *capacity;        /* the same nodes, empty: "could it ever fit?" */
    gp_strmap_t *nodes;              /* name -> coord_node_t* */
    gp_strmap_t *allocs;             /* job -> gp_alloc_t* (committed, from etcd) */
    gp_strmap_t *on_node;            /* node -> gp_strmap_t* (job -> the same gp_alloc_t*):
                                      * a node's allocations without a pass over all */
    gp_strmap_t *jobs;               /* id -> coord_job_t* */
    gp_strmap_t *ended;              /* id -> coord_job_t*: this region's, in a final state
                                      * (store.c's retention looks at these alone) */
    gp_strmap_t *leaders;            /* region -> strdup(leader id) */
    gp_strmap_t *coordinators;       /* "region/id" -> strdup(record JSON) */
    gp_strmap_t *quotas;             /* team -> coord_quota_t* */
    gp_strmap_t *drains;             /* node -> coord_drain_t* */
    gp_strmap_t *agents;             /* "region/agent" -> json_t* (agents/ records) */
    gp_strmap_t *expected;           /* id -> s_expected_t*: records we commit, not seen yet */
    int schema;                      /* the store schema the pool writes (P schema; 1 absent) */
    int64_t schema_mod_rev;
    struct s_lagged *lagged;         /* test hook: watch responses held back (owned) */
    struct s_lagged **lagged_tail;
};

/* A watch response held back by GPUPOOL_FAULT_WATCH_LAG_MS: its events,
 * copied, applied when due. */
typedef struct s_lagged {
    int64_t due_ms, revision;
    size_t n;
    gp_etcd_event_type_t *types;
    gp_etcd_kv_t *kvs;              /* key and value owned */
    struct s_lagged *next;
} s_lagged_t;

typedef enum {
    K_NONE, K_NODES, K_JOBS, K_ALLOC, K_LEADER, K_COORD, K_QUOTA, K_AGENT, K_CORDON, K_DRAIN,
    K_SCHEMA, K_NOTREADY, K_RIGHTSIZE,
} s_kind_t;

static const struct { const char *name; s_kind_t kind; int parts; } s_kinds[] = {
    { "nodes/", K_NODES, 2 },       { "jobs/", K_JOBS, 1 },        { "alloc/", K_ALLOC, 2 },
    { "leader/", K_LEADER, 1 },     { "coordinators/", K_COORD, 2 },
    { "quotas/", K_QUOTA, 1 },      { "agents/", K_AGENT, 2 },     { "cordons/", K_CORDON, 1 },
    { "drains/", K_DRAIN, 1 },      { "notready/", K_NOTREADY, 2 }, { "rightsize/", K_RIGHTSIZE, 1 },
};

/* Split a key into its kind and one or two names. */
static s_kind_t s_parse_key(coord_t *c, const char *key, size_t len, char *a, char *b)
{
    size_t pl = strlen(c->cfg.prefix);
    if (len <= pl || memcmp(key, c->cfg.prefix, pl) != 0)
        return K_NONE;
    key += pl;
    len -= pl;
    if (len == 6 && !memcmp(key, "schema", 6))
        return K_SCHEMA;
    for (size_t i = 0; i < GP_ARRAY_LEN(s_kinds); i++) {
        size_t kl = strlen(s_kinds[i].name);
        if (len <= kl || memcmp(key, s_kinds[i].name, kl) != 0)
            continue;
        const char *rest = key + kl;
        size_t rl = len - kl;
        const char *slash = memchr(rest, '/', rl);
        if (s_kinds[i].parts == 1) {
            if (slash || rl >= GP_NAME_LEN)
                return K_NONE;
            memcpy(a, rest, rl);
            a[rl] = '\0';
        } else {
            if (!slash || (size_t)(slash - rest) >= GP_NAME_LEN ||
                rl - (size_t)(slash - rest) - 1 >= GP_NAME_LEN || slash + 1 == rest + rl)
                return K_NONE;
            memcpy(a, rest, (size_t)(slash - rest));
            a[slash - rest] = '\0';
            memcpy(b, slash + 1, rl - (size_t)(slash - rest) - 1);
            b[rl - (size_t)(slash - rest) - 1] = '\0';
        }
        return s_kinds[i].kind;
    }
    return K_NONE;
}

/* ------------------------------------------------------- the maps, read */

static gp_strmap_t *s_map(coord_t *c, coord_cache_map_t map)
{
    if (c->cache == NULL)
        return NULL;
    switch (map) {
    case COORD_NODES: return c->cache->nodes;
    case COORD_ALLOCS: return c->cache->allocs;
    case COORD_JOBS: return c->cache->jobs;
    case COORD_ENDED: return c->cache->ended;
    case COORD_LEADERS: return c->cache->leaders;
    case COORD_COORDINATORS: return c->cache->coordinators;
    case COORD_QUOTAS: return c->cache->quotas;
    case COORD_DRAINS: return c->cache->drains;
    case COORD_AGENTS: return c->cache->agents;
    }
    return NULL;
}

coord_cache_iter_t coord_cache_first(coord_t *c, coord_cache_map_t map)
{
    gp_strmap_t *m = s_map(c, map);
    gp_strmap_iter_t at = m ? gp_strmap_first(m) : (gp_strmap_iter_t){ 0 };
    return (coord_cache_iter_t){ at.key, at.value, map, at.pos };
}

coord_cache_iter_t coord_cache_next(coord_t *c, coord_cache_iter_t it)
{
    gp_strmap_t *m = s_map(c, it.map);
    gp_strmap_iter_t at = { it.key, it.value, it.pos };
    at = m && it.key ? gp_strmap_next(m, at) : (gp_strmap_iter_t){ 0 };
    return (coord_cache_iter_t){ at.key, at.value, it.map, at.pos };
}

size_t coord_cache_count(coord_t *c, coord_cache_map_t map)
{
    gp_strmap_t *m = s_map(c, map);
    return m ? gp_strmap_size(m) : 0;
}

int coord_cache_listed(coord_t *c)
{
    return c->cache && c->cache->nodes;
}

const gp_alloc_t *coord_cache_alloc(coord_t *c, const char *job)
{
    gp_strmap_t *m = s_map(c, COORD_ALLOCS);
    return m ? gp_strmap_get(m, job) : NULL;
}

const char *coord_cache_leader(coord_t *c, const char *region)
{
    gp_strmap_t *m = s_map(c, COORD_LEADERS);
    return m ? gp_strmap_get(m, region) : NULL;
}

const coord_quota_t *coord_cache_quota(coord_t *c, const char *team)
{
    gp_strmap_t *m = s_map(c, COORD_QUOTAS);
    return m ? gp_strmap_get(m, team) : NULL;
}

const coord_drain_t *coord_cache_drain(coord_t *c, const char *node)
{
    gp_strmap_t *m = s_map(c, COORD_DRAINS);
    return m ? gp_strmap_get(m, node) : NULL;
}

int coord_cache_schema(coord_t *c, int64_t *mod_rev)
{
    if (mod_rev)
        *mod_rev = c->cache ? c->cache->schema_mod_rev : 0;
    return c->cache ? c->cache->schema : 1;
}

coord_node_t *coord_cache_node(coord_t *c, const char *name, int create)
{
    gp_strmap_t *m = s_map(c, COORD_NODES);
    coord_node_t *n = m ? gp_strmap_get(m, name) : NULL;
    if (n || !create || m == NULL)
        return n;
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    gp_strlcpy(n->name, name, sizeof n->name);
    if (gp_strmap_put(c->cache->nodes, name, n) < 0) {
        free(n);
        return NULL;
    }
    return n;
}

coord_job_t *coord_cache_job(coord_t *c, const char *id)
{
    gp_strmap_t *m = s_map(c, COORD_JOBS);
    return m ? gp_strmap_get(m, id) : NULL;
}

size_t coord_cache_queue_size(coord_t *c)
{
    return c->cache && c->cache->queue ? gp_strmap_size(c->cache->queue) : 0;
}

size_t coord_cache_queued(coord_t *c, coord_job_t **out, size_t max)
{
    size_t n = 0;
    gp_strmap_t *q = c->cache ? c->cache->queue : NULL;
    for (gp_strmap_iter_t it = q ? gp_strmap_first(q) : (gp_strmap_iter_t){ 0 }; it.key && n < max;
         it = gp_strmap_next(q, it))
        out[n++] = it.value;
    return n;
}

int coord_cache_take_capacity_freed(coord_t *c)
{
    int freed = c->cache && c->cache->capacity_freed;
    if (c->cache)
        c->cache->capacity_freed = 0;
    return freed;
}

int64_t coord_cache_revision(coord_t *c)
{
    return c->cache ? c->cache->revision : 0;
}

gp_placement_t *coord_cache_engine(coord_t *c)
{
    return c->cache ? c->cache->engine : NULL;
}

gp_placement_t *coord_cache_capacity(coord_t *c)
{
    return c->cache ? c->cache->capacity : NULL;
}

void coord_cache_capacity_keep(coord_t *c, const gp_node_t *node)
{
    gp_placement_remove_node(c->cache->capacity, node->name, NULL);
    gp_placement_add_node(c->cache->capacity, node, NULL);
}

const gp_alloc_t *coord_cache_held(coord_t *c, const char *job)
{
    return c->cache && c->cache->tentative ? gp_strmap_get(c->cache->tentative, job) : NULL;
}

void coord_cache_each_queued(coord_t *c, void (*fn)(coord_job_t *j, void *arg), void *arg)
{
    gp_strmap_t *q = c->cache ? c->cache->queue : NULL;
    for (gp_strmap_iter_t it = q ? gp_strmap_first(q) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(q, it))
        fn(it.value, arg);
}

void coord_cache_each_plan(coord_t *c, void (*fn)(const gp_alloc_t *al, void *arg), void *arg)
{
    gp_strmap_t *held = c->cache ? c->cache->tentative : NULL;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ALLOCS); it.key;
         it = coord_cache_next(c, it)) {
        const gp_alloc_t *al = it.value;
        if (held == NULL || gp_strmap_get(held, al->job) == NULL)
            fn(al, arg);   /* a job with a held plan counts once, as held */
    }
    for (gp_strmap_iter_t it = held ? gp_strmap_first(held) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(held, it))
        fn(it.value, arg);
}

size_t coord_cache_doubts(coord_t *c, coord_job_t **out, size_t max)
{
    size_t n = 0;
    gp_strmap_t *h = c->cache ? c->cache->held : NULL;
    for (gp_strmap_iter_t it = h ? gp_strmap_first(h) : (gp_strmap_iter_t){ 0 }; it.key && n < max;
         it = gp_strmap_next(h, it)) {
        coord_job_t *j = it.value;
        if (j->doubt && j->raw)
            out[n++] = j;
    }
    return n;
}

void coord_cache_untentative(coord_t *c, const char *job)
{
    gp_alloc_t *t = gp_strmap_del(c->cache->tentative, job);
    if (t == NULL)
        return;
    gp_placement_remove_alloc(c->cache->engine, job, NULL);
    /* A committed allocation of the job (an older one) goes back in. */
    gp_alloc_t *old = gp_strmap_get(c->cache->allocs, job);
    coord_node_t *n = old ? coord_cache_node(c, old->node, 0) : NULL;
    if (old && n && n->present)
        gp_placement_add_alloc(c->cache->engine, old, NULL);
    free(t);
}

int64_t coord_alloc_milli(coord_t *c, const gp_alloc_t *al, int64_t *mem_mib, int64_t *compute_pct,
                          const char **model_of_first)
{
    coord_node_t *n = coord_cache_node(c, al->node, 0);
    json_t *devs = n && n->record ? json_object_get(n->record, "devices") : NULL;
    int64_t milli = 0, mem = 0, cpt = 0;
    for (int d = 0; d < al->ndevices; d++) {
        json_t *dev = json_array_get(devs, (size_t)al->devices[d].index);
        int64_t dm = json_integer_value(json_object_get(dev, "mem_mib"));
        if (d == 0 && model_of_first)
            *model_of_first = json_string_value(json_object_get(dev, "model"));
        if (al->devices[d].whole) {
            milli += 1000;
            mem += dm;
            cpt += 100;
            continue;
        }
        int64_t share = dm > 0 ? al->devices[d].mem_mib * 1000 / dm : 0;
        milli += al->devices[d].compute_permille > share ? al->devices[d].compute_permille : share;
        mem += al->devices[d].mem_mib;
        cpt += al->devices[d].compute_permille / 10;
    }
    if (mem_mib)
        *mem_mib = mem;
    if (compute_pct)
        *compute_pct = cpt;
    return milli;
}

/* ---------------------------------------------------------------- the queue */

int coord_cache_eval(coord_t *c, coord_job_t *j)
{
    int want = j->state == GP_JOB_PENDING && !strcmp(j->region, c->cfg.region) &&
               j->hold_rev == 0 && !j->doubt && j->raw != NULL &&
               gp_strmap_get(c->cache->allocs, j->id) == NULL;
    if (want && !j->queued && c->fault_queue_drop && !strcmp(c->fault_queue_drop, j->id)) {
        /* Fault injection (GPUPOOL_FAULT_QUEUE_DROP): lose the job once, as
         * a bug in this bookkeeping would, so that tests see recovery.c's
         * reconciliation put it back. */
        gp_log_warn("fault injection: the queue loses job=%s", j->id);
        c->fault_queue_drop = NULL;
        return want;
    }
    if (want && !j->queued) {
        j->queued = 1;
        j->not_before_ms = 0;
        j->backoff_ms = 0;
        gp_strmap_put(c->cache->queue, j->id, j);
        coord_round_kick(c);
    } else if (!want && j->queued) {
        j->queued = 0;
        gp_strmap_del(c->cache->queue, j->id);
    }
    return want;
}

static void s_eval_id(coord_t *c, const char *id)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j)
        coord_cache_eval(c, j);
}

void coord_cache_placed(coord_t *c, const char *id, int64_t revision)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL)
        return;
    if (revision > c->cache->revision) {
        j->hold_rev = revision;
        gp_strmap_put(c->cache->held, id, j);
    }
    coord_cache_eval(c, j);
}

void coord_cache_record_written(coord_t *c, const char *id, const char *region, int64_t revision)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL)
        return;
    if (revision > j->mod_rev)
        j->mod_rev = revision;
    if (region)
        gp_strlcpy(j->region, region, sizeof j->region);
    coord_cache_eval(c, j);
}

void coord_cache_doubt(coord_t *c, const char *id, const char *node)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL)
        return;
    j->doubt = 1;
    gp_strlcpy(j->doubt_node, node, sizeof j->doubt_node);
    gp_strmap_put(c->cache->held, id, j);
    coord_cache_eval(c, j);
}

void coord_cache_undoubt(coord_t *c, coord_job_t *j)
{
    j->doubt = 0;
    if (j->hold_rev == 0)
        gp_strmap_del(c->cache->held, j->id);
    coord_cache_eval(c, j);
}

/* The watch reached revision rev: our commits up to it are in the cache. */
static void s_release_held(coord_t *c, int64_t rev)
{
    coord_job_t *done[64];
    int n;
    do {
        n = 0;
        for (gp_strmap_iter_t it = gp_strmap_first(c->cache->held); it.key && n < 64;
             it = gp_strmap_next(c->cache->held, it)) {
            coord_job_t *j = it.value;
            if (j->hold_rev && j->hold_rev <= rev)
                done[n++] = j;
        }
        for (int i = 0; i < n; i++) {
            done[i]->hold_rev = 0;
            if (!done[i]->doubt)
                gp_strmap_del(c->cache->held, done[i]->id);
            coord_cache_eval(c, done[i]);
        }
    } while (n == 64);
}

gp_job_state_t coord_cache_state(coord_t *c, const coord_job_t *j, const char **node)
{
    const gp_alloc_t *al = j->state == GP_JOB_PENDING ? coord_cache_alloc(c, j->id) : NULL;
    if (node)
        *node = al ? al->node : j->node;
    return al ? GP_JOB_PLACED : j->state;
}

int64_t coord_cache_fence(coord_t *c, const char *node)
{
    coord_node_t *n = coord_cache_node(c, node, 0);
    return n && n->fence_rev > c->cache->revision ? n->fence_rev : c->cache->revision;
}

int coord_cache_hold(coord_t *c, const gp_alloc_t *plan)
{
    gp_alloc_t *t = malloc(sizeof *t);
    if (t == NULL)
        return -1;
    *t = *plan;
    if (gp_placement_add_alloc(c->cache->engine, t, NULL) < 0) {
        free(t);
        return -1;
    }
    free(gp_strmap_get(c->cache->tentative, plan->job));
    gp_strmap_put(c->cache->tentative, plan->job, t);
    return 0;
}

static void s_node_put(coord_t *c, const char *region, const char *name, const gp_etcd_kv_t *kv)
{
    gp_node_t node;
    gp_err_t err;
    if (gp_node_from_json_str(kv->value, &node, &err) < 0 || strcmp(node.name, name) != 0) {
        gp_metric_inc(c->m.bad_records[COORD_RECORD_NODE]);
        gp_log_warn("ignoring a malformed node record node=%s err=\"%s\"", name, err.msg);
        return;
    }
    coord_node_t *n = coord_cache_node(c, name, 1);
    if (n == NULL)
        return;
    c->cache->milli_stale = 1;
    int was = n->present;
    gp_strlcpy(n->region, region, sizeof n->region);
    n->gone_ms = 0;
    gp_node_t open = node;   /* the capacity engine sees a cordoned node as it is */
    if (n->cordon)
        node.healthy = false;
    if (gp_placement_add_node(c->cache->engine, &node, &err) < 0) {
        /* A device with allocations went away: take the node out and in again. */
        gp_placement_remove_node(c->cache->engine, name, NULL);
        if (gp_placement_add_node(c->cache->engine, &node, &err) < 0) {
            gp_log_warn("node record refused node=%s err=\"%s\"", name, err.msg);
            n->present = 0;
            return;
        }
        was = 0;
    }
    n->present = 1;
    c->cache->capacity_freed = 1;
    gp_placement_remove_node(c->cache->capacity, name, NULL);
    gp_placement_add_node(c->cache->capacity, &open, NULL);
    json_decref(n->record);
    n->record = json_loadb(kv->value, kv->value_len, 0, NULL);
    gp_strmap_t *on = was ? NULL : gp_strmap_get(c->cache->on_node, name);
    if (on) {
        for (gp_strmap_iter_t it = gp_strmap_first(on); it.key; it = gp_strmap_next(on, it)) {
            gp_alloc_t *al = it.value;
            if (gp_strmap_get(c->cache->tentative, al->job) == NULL &&
                gp_placement_add_alloc(c->cache->engine, al, &err) < 0)
                gp_log_warn("allocation does not fit its node job=%s node=%s err=\"%s\"", al->job,
                            name, err.msg);
        }
    }
}

static void s_node_del(coord_t *c, const char *name)
{
    coord_node_t *n = coord_cache_node(c, name, 0);
    if (n == NULL || !n->present)
        return;
    n->present = 0;
    c->cache->milli_stale = 1;
    /* NotReady from now: its last record stays, and the capacity engine
     * keeps it (notready.c forgets it after node-retention). */
    n->gone_ms = gp_wall_ms();
    /* Tentative plans on it are void. */
    for (gp_strmap_iter_t it = gp_strmap_first(c->cache->tentative); it.key;
         it = gp_strmap_next(c->cache->tentative, it)) {
        gp_alloc_t *t = it.value;
        if (strcmp(t->node, name) == 0)
            free(gp_strmap_del(c->cache->tentative, it.key));
    }
    gp_placement_remove_node(c->cache->engine, name, NULL);
    gp_log_info("node gone, NotReady node=%s", name);
}

void coord_cache_forget_node(coord_t *c, coord_node_t *n)
{
    if (n->present)
        return;
    gp_placement_remove_node(c->cache->capacity, n->name, NULL);
    json_decref(n->record);
    n->record = NULL;
    n->gone_ms = 0;
}

/* A cordon came or went: the engine sees the node unhealthy while it is
 * cordoned (no round, gang or preemption plans anything on it). */
static void s_cordon(coord_t *c, const char *name, const gp_etcd_kv_t *kv, int put)
{
    coord_node_t *n = coord_cache_node(c, name, put);
    if (n == NULL)
        return;
    json_decref(n->cordon);
    n->cordon = put ? json_loadb(kv->value, kv->value_len, 0, NULL) : NULL;
    if (put && !json_is_object(n->cordon)) {
        json_decref(n->cordon);
        n->cordon = json_object();   /* unreadable: still cordoned */
    }
    if (!put)
        c->cache->capacity_freed = 1;
    gp_node_t node;
    if (!n->present || n->record == NULL || gp_node_from_json(n->record, &node, NULL) < 0)
        return;
    if (n->cordon)
        node.healthy = false;
    gp_err_t err;
    if (gp_placement_add_node(c->cache->engine, &node, &err) < 0)
        gp_log_warn("node update refused node=%s err=\"%s\"", name, err.msg);
    gp_log_info("node %s node=%s", put ? "cordoned" : "uncordoned", name);
}

static void s_drain(coord_t *c, const char *name, const gp_etcd_kv_t *kv, int put)
{
    coord_drain_t *d = gp_strmap_del(c->cache->drains, name);
    if (d) {
        json_decref(d->rec);
        free(d);
    }
    json_t *rec = put ? json_loadb(kv->value, kv->value_len, 0, NULL) : NULL;
    if (!json_is_object(rec)) {
        json_decref(rec);
        return;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL || gp_strmap_put(c->cache->drains, name, d) < 0) {
        free(d);
        json_decref(rec);
        return;
    }
    d->rec = rec;
    d->mod_rev = kv->mod_revision;
}

/* The per-node index of the committed allocations (on_node). */
static void s_on_node_add(coord_t *c, gp_alloc_t *al)
{
    gp_strmap_t *m = gp_strmap_get(c->cache->on_node, al->node);
    if (m == NULL && ((m = gp_strmap_new()) == NULL ||
                      gp_strmap_put(c->cache->on_node, al->node, m) < 0)) {
        gp_strmap_destroy(&m);
        return;
    }
    gp_strmap_put(m, al->job, al);   /* (as the queue's: out of memory, the next listing) */
}

static void s_on_node_del(coord_t *c, const gp_alloc_t *al)
{
    gp_strmap_t *m = gp_strmap_get(c->cache->on_node, al->node);
    if (m && gp_strmap_get(m, al->job) == al) {
        gp_strmap_del(m, al->job);
        if (gp_strmap_size(m) == 0) {
            gp_strmap_del(c->cache->on_node, al->node);
            gp_strmap_destroy(&m);
        }
    }
}

void coord_cache_each_alloc_on(coord_t *c, const char *node,
                               void (*fn)(const gp_alloc_t *al, void *arg), void *arg)
{
    gp_strmap_t *m = c->cache && c->cache->on_node ? gp_strmap_get(c->cache->on_node, node) : NULL;
    for (gp_strmap_iter_t it = m ? gp_strmap_first(m) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(m, it))
        fn(it.value, arg);
}

/* An allocation enters (sign +1) or leaves (-1) the running total of
 * milli allocated, while its node is present; a node that changes makes
 * the total stale instead (its devices, or whether it counts at all). */
static void s_milli(coord_t *c, const gp_alloc_t *al, int sign)
{
    coord_node_t *n = c->cache->milli_stale ? NULL : coord_cache_node(c, al->node, 0);
    if (n && n->present)
        c->cache->milli_alloc += sign * coord_alloc_milli(c, al, NULL, NULL, NULL);
}

int64_t coord_cache_milli_allocated(coord_t *c)
{
    coord_cache_t *k = c->cache;
    if (k == NULL || k->allocs == NULL)
        return 0;
    if (k->milli_stale) {
        k->milli_stale = 0;
        k->milli_alloc = 0;
        for (gp_strmap_iter_t it = gp_strmap_first(k->allocs); it.key;
             it = gp_strmap_next(k->allocs, it))
            s_milli(c, it.value, +1);
    }
    return k->milli_alloc;
}

static void s_alloc_put(coord_t *c, const char *node, const char *job, const gp_etcd_kv_t *kv)
{
    gp_alloc_t al;
    gp_err_t err;
    if (gp_alloc_from_json_str(kv->value, &al, &err) < 0 || strcmp(al.node, node) != 0 ||
        strcmp(al.job, job) != 0) {
        gp_metric_inc(c->m.bad_records[COORD_RECORD_ALLOC]);
        gp_log_warn("ignoring a malformed allocation key=%.*s", (int)kv->key_len, kv->key);
        return;
    }
    gp_alloc_t *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return;
    *copy = al;
    gp_alloc_t *old = gp_strmap_get(c->cache->allocs, job);
    if (old) {
        s_milli(c, old, -1);
        s_on_node_del(c, old);
    }
    free(old);
    if (gp_strmap_put(c->cache->allocs, job, copy) == 0) {
        s_milli(c, copy, +1);
        s_on_node_add(c, copy);
    }
    gp_alloc_t *t = gp_strmap_get(c->cache->tentative, job);
    if (t && strcmp(t->node, node) == 0) {
        free(gp_strmap_del(c->cache->tentative, job));   /* our plan, now committed */
        gp_placement_remove_alloc(c->cache->engine, job, NULL);
    } else if (t) {
        coord_cache_untentative(c, job);
    }
    gp_placement_remove_alloc(c->cache->engine, job, NULL);
    coord_node_t *n = coord_cache_node(c, node, 0);
    if (n && n->present && gp_placement_add_alloc(c->cache->engine, copy, &err) < 0) {
        gp_metric_inc(c->m.inconsistencies);
        gp_log_error("committed allocation does not fit its node job=%s node=%s err=\"%s\"", job,
                     node, err.msg);
    }
    s_eval_id(c, job);
}

static void s_alloc_del(coord_t *c, const char *node, const char *job)
{
    gp_alloc_t *al = gp_strmap_get(c->cache->allocs, job);
    if (al == NULL || strcmp(al->node, node) != 0)
        return;
    gp_strmap_del(c->cache->allocs, job);
    s_milli(c, al, -1);
    s_on_node_del(c, al);
    free(al);
    c->cache->capacity_freed = 1;
    if (gp_strmap_get(c->cache->tentative, job) == NULL)
        gp_placement_remove_alloc(c->cache->engine, job, NULL);
    s_eval_id(c, job);
}

/* A span as a C string in buf; NULL when absent; false when it does not
 * fit (then the caller takes the general path). */
static bool s_span_str(gp_jscan_span_t v, char *buf, size_t size, const char **out)
{
    *out = NULL;
    if (v.p == NULL)
        return true;
    if (v.n >= size)
        return false;
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    *out = buf;
    return true;
}

static void s_job_free(void *value)
{
    coord_job_t *j = value;
    if (j) {
        free(j->raw);
        json_decref(j->spec);
        free(j);
    }
}

/* A record this coordinator committed (coord_cache_expect_record). */
typedef struct {
    char *text;
    size_t len;
    json_t *spec;
} s_expected_t;

#define S_EXPECTED_MAX 20000   /* records being committed, not yet seen: a bound above a burst's */

static void s_expected_free(void *value)
{
    s_expected_t *x = value;
    if (x == NULL)
        return;
    free(x->text);
    json_decref(x->spec);
    free(x);
}

void coord_cache_expect_record(coord_t *c, const char *id, const char *text, json_t *spec)
{
    coord_cache_t *k = c->cache;
    if (k == NULL || k->jobs == NULL || coord_cache_job(c, id) || !json_is_object(spec) ||
        (k->expected == NULL && (k->expected = gp_strmap_new()) == NULL) ||
        gp_strmap_size(k->expected) >= S_EXPECTED_MAX)
        return;
    s_expected_t *x = malloc(sizeof *x);
    if (x == NULL || (x->text = strdup(text)) == NULL) {
        free(x);
        return;
    }
    x->len = strlen(x->text);
    x->spec = json_incref(spec);
    s_expected_free(gp_strmap_del(k->expected, id));
    if (gp_strmap_put(k->expected, id, x) < 0)
        s_expected_free(x);
}

void coord_cache_unexpect(coord_t *c, const char *id)
{
    if (c->cache && c->cache->expected)
        s_expected_free(gp_strmap_del(c->cache->expected, id));
}

/* Copy a record's summary into the job's entry (created if new), with the
 * record's text.  spec: the record's spec, kept while the job is pending
 * (rounds read it from here: the text is parsed once). */
static coord_job_t *s_job_fill(coord_t *c, const char *id, const gp_etcd_kv_t *kv,
                               const gp_jobrec_sum_t *m, gp_job_state_t st, json_t *spec)
{
    char owner[256], cls[256];
    const char *owner_s = NULL, *cls_s = NULL;
    /* Names longer than any valid one make no class. */
    int names_fit = s_span_str(m->owner, owner, sizeof owner, &owner_s) &&
                    s_span_str(m->cls, cls, sizeof cls, &cls_s);
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL || gp_strmap_put(c->cache->jobs, id, j) < 0) {
            free(j);
            return NULL;
        }
        gp_strlcpy(j->id, id, sizeof j->id);
    }
    char *raw = malloc(kv->value_len + 1);
    if (raw) {
        memcpy(raw, kv->value, kv->value_len);
        raw[kv->value_len] = '\0';
        free(j->raw);
        j->raw = raw;
        j->raw_len = kv->value_len;
    }
    j->state = st;
    j->mod_rev = kv->mod_revision;
#define S_STR(field, span) do { size_t n_ = (span).n < sizeof j->field ? (span).n : sizeof j->field - 1; \
        memcpy(j->field, (span).p ? (span).p : "", (span).p ? n_ : 0); j->field[(span).p ? n_ : 0] = '\0'; } while (0)
    S_STR(region, m->region);
    S_STR(owner, m->owner);
    S_STR(node, m->node);
    S_STR(reason, m->reason);
    S_STR(gang, m->gang);
#undef S_STR
    j->reason_hash = gp_hash_mem(m->reason.p ? m->reason.p : "", m->reason.p ? m->reason.n : 0);
    json_decref(j->spec);
    j->spec = st == GP_JOB_PENDING && json_is_object(spec) ? json_incref(spec) : NULL;
    j->priority = (int)m->priority;
    j->devices = (int)m->devices;
    j->attempts = (int)m->attempts;
    j->gang_size = (int)m->gang_size;
    char mode[32];
    const char *mode_s;
    int okm;
    if (!s_span_str(m->rightsize, mode, sizeof mode, &mode_s))
        gp_strlcpy(mode, "?", sizeof mode), mode_s = mode;   /* not a mode: as parse says */
    j->rightsize = (int)gp_rightsize_mode_parse(mode_s, &okm);
    j->floor_mib = m->floor_mib;
    if (!names_fit || gp_rightsize_class(owner_s, cls_s, id, j->cls, sizeof j->cls) < 0)
        j->cls[0] = '\0';
    j->submitted_ms = m->submitted_ms;
    j->restart_at_ms = m->restart_at_ms;
    j->ttl_after_finished_ms = m->ttl_ms;
    j->updated_ms = m->updated_ms;
    if (gp_job_state_final(st) && !strcmp(j->region, c->cfg.region))
        gp_strmap_put(c->cache->ended, id, j);   /* (as the queue's: out of memory, the next listing) */
    else
        gp_strmap_del(c->cache->ended, id);
    return j;
}

/*
 * A job record came.  The tree is built only when something needs it: a
 * pending job's spec (rounds place from it) and a job the learned shapes
 * have not counted.  The records of a burst are mostly the agents'
 * reports ("running", 500+ bytes with their history), read in place; any
 * record the scan does not take is parsed whole.
 */
/* The record's summary and state read in place; false if the scan does
 * not take it. */
static bool s_sum_scan(const gp_etcd_kv_t *kv, gp_jobrec_sum_t *m, gp_job_state_t *st)
{
    char state[32];
    const char *state_s;
    return gp_jobrec_sum_scan(kv->value, kv->value_len, m) &&
           s_span_str(m->state, state, sizeof state, &state_s) && state_s &&
           gp_job_state_parse(state_s, st) == 0;
}

static void s_job_put(coord_t *c, const char *id, const gp_etcd_kv_t *kv)
{
    gp_jobrec_sum_t m;
    const char *state_s;
    gp_job_state_t st;
    /* A record we committed, byte for byte: the spec parsed for its
     * round serves, and the rest is read in place. */
    s_expected_t *x = c->cache->expected ? gp_strmap_del(c->cache->expected, id) : NULL;
    if (x && x->len == kv->value_len && !memcmp(x->text, kv->value, x->len) &&
        s_sum_scan(kv, &m, &st)) {
        coord_job_t *j = s_job_fill(c, id, kv, &m, st, x->spec);
        if (j) {
            coord_shapes_job_seen(c, id, x->spec, m.submitted_ms);   /* the first time only */
            coord_cache_eval(c, j);
        }
        s_expected_free(x);
        return;
    }
    s_expected_free(x);
    if (coord_cache_job(c, id) != NULL && coord_shapes_job_known(c, id) &&
        s_sum_scan(kv, &m, &st) && st != GP_JOB_PENDING) {
        coord_job_t *j = s_job_fill(c, id, kv, &m, st, NULL);
        if (j)
            coord_cache_eval(c, j);
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb(kv->value, kv->value_len, 0, &jerr);
    state_s = o ? json_string_value(json_object_get(o, "state")) : NULL;
    if (state_s == NULL || gp_job_state_parse(state_s, &st) < 0) {
        gp_metric_inc(c->m.bad_records[COORD_RECORD_JOB]);
        json_decref(o);
        return;
    }
    gp_jobrec_sum_json(o, &m);
    coord_job_t *j = s_job_fill(c, id, kv, &m, st, json_object_get(o, "spec"));
    if (j == NULL) {
        json_decref(o);
        return;
    }
    coord_shapes_job_seen(c, id, json_object_get(o, "spec"),
                          json_integer_value(json_object_get(o, "submitted_ms")));   /* the first time only */
    json_decref(o);
    coord_cache_eval(c, j);
}

static void s_apply(coord_t *c, gp_etcd_event_type_t type, const gp_etcd_kv_t *kv)
{
    char a[GP_NAME_LEN], b[GP_NAME_LEN];
    int put = type == GP_ETCD_EVENT_PUT;
    switch (s_parse_key(c, kv->key, kv->key_len, a, b)) {
    case K_NODES:
        if (put)
            s_node_put(c, a, b, kv);
        else
            s_node_del(c, b);
        c->recovery_dirty = 1;
        break;
    case K_ALLOC:
        if (put) {
            s_alloc_put(c, a, b, kv);
            coord_job_t *j = coord_cache_job(c, b);
            /* A job not known yet whose record we are committing comes in
             * the same revision, right after its allocation: no orphan.
             * (Should it not come, the periodic full pass sees one.) */
            int coming = j == NULL && c->cache->expected && gp_strmap_get(c->cache->expected, b);
            coord_node_t *an = j ? coord_cache_node(c, a, 0) : NULL;
            if ((j == NULL && !coming) ||
                (j && (gp_job_state_final(j->state) || j->state == GP_JOB_LOST || an == NULL ||
                       !an->present)))
                c->recovery_dirty = 1;
        } else {
            s_alloc_del(c, a, b);
        }
        break;
    case K_JOBS:
        if (put) {
            coord_job_t *j = coord_cache_job(c, a);
            int known = j != NULL;
            char region[sizeof j->region];
            gp_strlcpy(region, j ? j->region : "", sizeof region);
            s_job_put(c, a, kv);
            j = coord_cache_job(c, a);
            /* What can make an allocation releasable (recovery.c): the job
             * ended or lost, moved to another region, or new while its
             * allocation's node is gone (a new job on a present node, as a
             * burst brings thousands, makes none); an allocation put does
             * the same for a job already known (its record came first). */
            const gp_alloc_t *al = j && !known ? coord_cache_alloc(c, a) : NULL;
            coord_node_t *an = al ? coord_cache_node(c, al->node, 0) : NULL;
            if ((j == NULL && !known) ||   /* a record that made no job: its allocation? */
                (j && (gp_job_state_final(j->state) || j->state == GP_JOB_LOST ||
                       (known && strcmp(j->region, region) != 0) ||
                       (al && (an == NULL || !an->present)))))
                c->recovery_dirty = 1;
        } else {
            c->recovery_dirty = 1;
            coord_job_t *j = gp_strmap_del(c->cache->jobs, a);
            gp_strmap_del(c->cache->queue, a);
            gp_strmap_del(c->cache->ended, a);
            coord_shapes_job_gone(c, a);
            gp_strmap_del(c->cache->held, a);
            s_job_free(j);
        }
        break;
    case K_LEADER:
        free(gp_strmap_del(c->cache->leaders, a));
        if (put) {
            char *v = strndup(kv->value, kv->value_len);
            if (v)
                gp_strmap_put(c->cache->leaders, a, v);
        } else if (!strcmp(a, c->cfg.region)) {
            coord_election_campaign_soon(c);   /* the leader is gone: campaign now */
        }
        break;
    case K_COORD: {
        char key[2 * GP_NAME_LEN + 2];
        snprintf(key, sizeof key, "%s/%s", a, b);
        free(gp_strmap_del(c->cache->coordinators, key));
        if (put) {
            char *v = strndup(kv->value, kv->value_len);
            if (v)
                gp_strmap_put(c->cache->coordinators, key, v);
        }
        break;
    }
    case K_QUOTA: {
        free(gp_strmap_del(c->cache->quotas, a));
        json_t *q = put ? json_loadb(kv->value, kv->value_len, 0, NULL) : NULL;
        coord_quota_t *qt = q ? calloc(1, sizeof *qt) : NULL;
        if (qt) {
            json_t *v;
            qt->gpus = json_is_number(v = json_object_get(q, "gpus")) ? json_number_value(v) : -1;
            qt->mem_mib = json_is_integer(v = json_object_get(q, "mem_mib")) ? json_integer_value(v) : -1;
            qt->compute_percent = json_is_integer(v = json_object_get(q, "compute_percent"))
                                      ? json_integer_value(v) : -1;
            qt->disruption_budget = json_is_integer(v = json_object_get(q, "disruption_budget"))
                                        ? (int)json_integer_value(v) : 0;
            qt->gang_disruption_budget =
                json_is_integer(v = json_object_get(q, "gang_disruption_budget"))
                    ? (int)json_integer_value(v) : 0;
            gp_strmap_put(c->cache->quotas, a, qt);
        }
        json_decref(q);
        break;
    }
    case K_AGENT: {
        char key[2 * GP_NAME_LEN + 2];
        snprintf(key, sizeof key, "%s/%s", a, b);
        json_decref(gp_strmap_del(c->cache->agents, key));
        json_t *v = put ? json_loadb(kv->value, kv->value_len, 0, NULL) : NULL;
        if (json_is_object(v)) {
            gp_strmap_put(c->cache->agents, key, v);
            coord_versions_agent_seen(c);   /* the schema may be raised now */
        } else {
            json_decref(v);
        }
        break;
    }
    case K_CORDON:
        s_cordon(c, a, kv, put);
        break;
    case K_DRAIN:
        s_drain(c, a, kv, put);
        break;
    case K_SCHEMA: {
        json_t *v = put ? json_loadb(kv->value, kv->value_len, 0, NULL) : NULL;
        json_t *n = json_object_get(v, "schema");
        c->cache->schema = json_is_integer(n) ? (int)json_integer_value(n) : 1;
        c->cache->schema_mod_rev = put ? kv->mod_revision : 0;
        json_decref(v);
        break;
    }
    case K_NOTREADY:
        coord_notready_apply(c, a, b, put ? kv : NULL);
        c->recovery_dirty = 1;
        break;
    case K_RIGHTSIZE:
        if (put)
            coord_rightsize_put(c, a, kv->value, kv->value_len);
        else
            coord_rightsize_del(c, a);
        break;
    case K_NONE:
        break;
    }
}

static void s_lagged_free(s_lagged_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->kvs[i].key);
        free(l->kvs[i].value);
    }
    free(l->types);
    free(l->kvs);
    free(l);
}

/* Fault injection (GPUPOOL_FAULT_WATCH_LAG_MS): hold a watch response
 * back for that long, as a slow etcd watch would, so that tests can show
 * what the leader does between its commit and the watch's echo of it. */
static void s_lag(coord_t *c, const gp_etcd_watch_resp_t *resp)
{
    coord_cache_t *k = c->cache;
    s_lagged_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->types = calloc(resp->n_events + 1, sizeof *l->types)) == NULL ||
        (l->kvs = calloc(resp->n_events + 1, sizeof *l->kvs)) == NULL) {
        if (l)
            free(l->types);
        free(l);
        c->cache->relist = 1;
        return;
    }
    l->due_ms = gp_mono_ms() + c->fault_watch_lag_ms;
    l->revision = resp->revision;
    for (size_t i = 0; i < resp->n_events; i++, l->n++) {
        const gp_etcd_kv_t *kv = &resp->events[i].kv;
        l->types[i] = resp->events[i].type;
        l->kvs[i] = *kv;
        l->kvs[i].key = malloc(kv->key_len + 1);
        l->kvs[i].value = malloc(kv->value_len + 1);
        if (l->kvs[i].key == NULL || l->kvs[i].value == NULL) {
            l->n++;
            s_lagged_free(l);
            c->cache->relist = 1;
            return;
        }
        memcpy(l->kvs[i].key, kv->key, kv->key_len);
        l->kvs[i].key[kv->key_len] = '\0';
        if (kv->value_len)
            memcpy(l->kvs[i].value, kv->value, kv->value_len);
        l->kvs[i].value[kv->value_len] = '\0';
    }
    if (k->lagged_tail == NULL)
        k->lagged_tail = &k->lagged;
    *k->lagged_tail = l;
    k->lagged_tail = &l->next;
}

/* The held-back responses that are due (all: the cache is listed again). */
static void s_lag_apply(coord_t *c, int drop)
{
    coord_cache_t *k = c->cache;
    while (k->lagged && (drop || gp_mono_ms() >= k->lagged->due_ms)) {
        s_lagged_t *l = k->lagged;
        k->lagged = l->next;
        if (k->lagged == NULL)
            k->lagged_tail = &k->lagged;
        for (size_t i = 0; !drop && i < l->n; i++)
            s_apply(c, l->types[i], &l->kvs[i]);
        if (!drop && l->revision > k->revision)
            k->revision = l->revision;
        if (!drop)
            s_release_held(c, k->revision);
        s_lagged_free(l);
    }
}

static void s_on_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    coord_t *c = arg;
    if (resp->kind == GP_ETCD_WATCH_COMPACTED || resp->kind == GP_ETCD_WATCH_ERROR) {
        gp_log_warn("pool watch ended (%s), listing again",
                    resp->kind == GP_ETCD_WATCH_COMPACTED ? "compacted" : "error");
        c->cache->relist = 1;
        return;
    }
    if (c->fault_watch_lag_ms > 0) {
        s_lag(c, resp);
        return;
    }
    for (size_t i = 0; i < resp->n_events; i++)
        s_apply(c, resp->events[i].type, &resp->events[i].kv);
    if (resp->revision > c->cache->revision)
        c->cache->revision = resp->revision;
    s_release_held(c, c->cache->revision);
}

/* Free map's values with fn (free when NULL), then the map. */
static void s_map_destroy(gp_strmap_t **map, void (*fn)(void *value))
{
    for (gp_strmap_iter_t it = *map ? gp_strmap_first(*map) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(*map, it))
        (fn ? fn : free)(it.value);
    gp_strmap_destroy(map);
}

static void s_node_free(void *value)
{
    coord_node_t *n = value;
    json_decref(n->record);
    json_decref(n->usage);
    json_decref(n->cordon);
    free(n);
}

static void s_drain_free(void *value)
{
    json_decref(((coord_drain_t *)value)->rec);
    free(value);
}

static void s_json_free(void *value) { json_decref(value); }

static void s_strmap_free(void *value)
{
    gp_strmap_t *m = value;
    gp_strmap_destroy(&m);
}

static void s_clear(coord_t *c)
{
    coord_cache_t *k = c->cache;
    gp_etcd_watch_destroy(&k->watch);
    s_lag_apply(c, 1);
    s_map_destroy(&k->nodes, s_node_free);
    s_map_destroy(&k->drains, s_drain_free);
    s_map_destroy(&k->agents, s_json_free);
    s_map_destroy(&k->jobs, s_job_free);
    s_map_destroy(&k->expected, s_expected_free);
    s_map_destroy(&k->on_node, s_strmap_free);
    gp_strmap_t **maps[] = { &k->allocs, &k->tentative, &k->leaders, &k->coordinators, &k->quotas };
    for (size_t m = 0; m < GP_ARRAY_LEN(maps); m++)
        s_map_destroy(maps[m], NULL);
    coord_rightsize_clear(c);
    gp_placement_destroy(&k->engine);
    gp_placement_destroy(&k->capacity);
    gp_strmap_destroy(&k->queue);
    gp_strmap_destroy(&k->held);
    gp_strmap_destroy(&k->ended);
}

/* Empty maps and engines for a listing; -1 out of memory. */
static int s_maps_new(coord_t *c, gp_err_t *err)
{
    coord_cache_t *k = c->cache;
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = c->cfg.policy;
    k->engine = gp_placement_new(&po, err);
    k->capacity = gp_placement_new(&po, err);
    gp_strmap_t **maps[] = { &k->nodes, &k->allocs, &k->on_node, &k->tentative, &k->jobs,
                             &k->leaders, &k->coordinators, &k->queue, &k->held, &k->ended,
                             &k->quotas, &k->drains, &k->agents };
    int ok = k->engine && k->capacity;
    for (size_t m = 0; m < GP_ARRAY_LEN(maps); m++)
        ok &= (*maps[m] = gp_strmap_new()) != NULL;
    k->schema = 1;
    k->schema_mod_rev = 0;
    k->milli_stale = 1;
    if (coord_rightsize_reset(c) < 0 || !ok)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return 0;
}

static int s_list_all(coord_t *c, gp_err_t *err);

/* Commits in doubt outlive a re-listing: a lost commit may still apply. */
typedef struct {
    char id[GP_NAME_LEN], node[GP_NAME_LEN];
} s_doubt_t;

static s_doubt_t *s_doubts_save(coord_t *c, size_t *n)
{
    *n = 0;
    size_t cap = c->cache->held ? gp_strmap_size(c->cache->held) : 0;
    s_doubt_t *d = cap ? calloc(cap, sizeof *d) : NULL;
    for (gp_strmap_iter_t it = d ? gp_strmap_first(c->cache->held) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(c->cache->held, it)) {
        coord_job_t *j = it.value;
        if (!j->doubt)
            continue;
        gp_strlcpy(d[*n].id, j->id, sizeof d[*n].id);
        gp_strlcpy(d[*n].node, j->doubt_node, sizeof d[*n].node);
        (*n)++;
    }
    return d;
}

static int s_list(coord_t *c, gp_err_t *err)
{
    size_t ndoubts;
    s_doubt_t *doubts = s_doubts_save(c, &ndoubts);
    int rc = s_list_all(c, err);
    for (size_t i = 0; rc == 0 && i < ndoubts; i++)
        coord_cache_doubt(c, doubts[i].id, doubts[i].node);
    free(doubts);
    return rc;
}

static int s_list_all(coord_t *c, gp_err_t *err)
{
    s_clear(c);
    coord_shapes_reset(c);   /* relearned from the records listed */
    if (s_maps_new(c, err) < 0)
        return -1;
    /* Cordons before nodes (a cordoned node enters the engine unhealthy),
     * nodes before allocations, allocations before the records (whose
     * queue rule looks at them). */
    static const char *const order[] = { "cordons/", "nodes/", "notready/", "alloc/", "jobs/",
                                         "leader/", "coordinators/", "quotas/", "agents/",
                                         "drains/", "schema", "rightsize/" };
    int64_t rev = 0;
    for (size_t i = 0; i < GP_ARRAY_LEN(order); i++) {
        char key[GP_KEY_MAX];
        snprintf(key, sizeof key, "%s%s", c->cfg.prefix, order[i]);
        gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = key,
                            .flags = strchr(order[i], '/') ? GP_ETCD_PREFIX : 0, .revision = rev };
        gp_etcd_result_t res;
        if (gp_etcd_do(c->etcd, &op, &res, err) < 0)
            return -1;
        if (rev == 0)
            rev = res.revision;
        for (size_t k = 0; k < res.n_kvs; k++)
            s_apply(c, GP_ETCD_EVENT_PUT, &res.kvs[k]);
        gp_etcd_result_free(&res);
    }
    c->cache->revision = rev;
    char end[GP_KEY_MAX];
    gp_etcd_watch_opts_t wo = { .key = c->cfg.prefix, .range_end = gp_key_cache_end(end, c->cfg.prefix),
                                .start_revision = rev + 1, .cb = s_on_watch, .arg = c };
    c->cache->watch = gp_etcd_watch_new(c->etcd, &wo, err);
    if (c->cache->watch == NULL)
        return -1;
    gp_log_info("cache listed revision=%lld nodes=%zu allocations=%zu jobs=%zu queued_here=%zu",
                (long long)rev, gp_strmap_size(c->cache->nodes), gp_strmap_size(c->cache->allocs),
                gp_strmap_size(c->cache->jobs), gp_strmap_size(c->cache->queue));
    return 0;
}

int coord_cache_start(coord_t *c, gp_err_t *err)
{
    if (c->cache == NULL && (c->cache = calloc(1, sizeof *c->cache)) == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return s_list(c, err);
}

void coord_cache_tick(coord_t *c)
{
    if (c->fault_relist_waiting > 0 && coord_round_waiting(c) >= c->fault_relist_waiting) {
        /* Fault injection (GPUPOOL_FAULT_RELIST_WAITING): list again once
         * while rounds wait for a commit, as after a compacted watch. */
        gp_log_warn("fault injection: the cache is listed again while %d rounds wait for a commit",
                    coord_round_waiting(c));
        c->fault_relist_waiting = 0;
        c->cache->relist = 1;
    }
    s_lag_apply(c, c->cache->relist);
    if (!c->cache->relist)
        return;
    coord_round_abort(c, "the cache is rebuilt");
    gp_err_t err;
    if (s_list(c, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "list", &err);
        return;   /* relist stays set: retried next tick */
    }
    c->cache->relist = 0;
    c->recovery_dirty = 1;
}

void coord_cache_stop(coord_t *c)
{
    if (c->cache == NULL)
        return;
    s_clear(c);
    free(c->cache);
    c->cache = NULL;
    coord_shapes_destroy(c);
}
