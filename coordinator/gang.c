/*
 * gang.c - gangs: members placed all-or-nothing, in one transaction.
 *
 * Jobs with the same `gang` name and a `gang_size` wait until every member
 * is queued in this region (until then they wait, with a reason saying how
 * many are there).  The leader then plans them together from its cache
 * (gp_placement_place_gang: each member in turn, against the engine with
 * the previous members held): first inside one zone at a time (zones tried
 * by their free GPU capacity, most first), and only if no single zone can
 * hold the gang, across zones.  Multi-device members get the topology
 * policy, so each node's share is an NVLink-connected (then same-NUMA)
 * device set.  The whole gang is then committed in ONE transaction, fenced
 * like a bid round's (leader key, no allocation created on any of its
 * nodes since the plan, every member's record unchanged), and writes the
 * members' allocations alone: either every member has its allocation in etcd
 * or none has -- a partial gang never exists, whatever races it.
 * Gangs are placed by the leader's plan without a call for bids.  A gang is
 * at most 30 members (etcd's 128 operations per transaction), checked at
 * intake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

typedef struct {
    char name[GP_NAME_LEN];
    int size, n;
    int64_t not_before_ms;     /* the gang's backoff: its members' latest */
    coord_job_t *members[GP_MAX_GANG];
} s_gang_t;

/* Free GPU milli of the region's nodes in one zone. */
static int64_t s_zone_free(coord_t *c, const char *zone)
{
    int64_t total = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        const char *z = n->record ? json_string_value(json_object_get(n->record, "zone")) : NULL;
        if (n->present && !strcmp(n->region, c->cfg.region) && z && !strcmp(z, zone))
            total += (int64_t)json_array_size(json_object_get(n->record, "devices")) * 1000;
    }
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ALLOCS); it.key;
         it = coord_cache_next(c, it)) {
        const gp_alloc_t *al = it.value;
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        const char *z = n && n->record ? json_string_value(json_object_get(n->record, "zone")) : NULL;
        if (n && n->present && z && !strcmp(z, zone))
            for (int d = 0; d < al->ndevices; d++)
                total -= al->devices[d].whole ? 1000 : al->devices[d].compute_permille;
    }
    return total;
}

/* Plan the gang: one zone first (most free first), then any zone. */
static int s_plan(coord_t *c, gp_job_t *jobs, int n, gp_alloc_t *plans, char *why, size_t wsize)
{
    char zones[32][GP_SHORT_LEN];
    int64_t free_milli[32];
    int nz = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key && nz < 32;
         it = coord_cache_next(c, it)) {
        coord_node_t *nd = it.value;
        const char *z = nd->record ? json_string_value(json_object_get(nd->record, "zone")) : NULL;
        if (!nd->present || strcmp(nd->region, c->cfg.region) || z == NULL || *z == '\0')
            continue;
        int seen = 0;
        for (int i = 0; i < nz && !seen; i++)
            seen = !strcmp(zones[i], z);
        if (!seen) {
            gp_strlcpy(zones[nz], z, GP_SHORT_LEN);
            free_milli[nz] = s_zone_free(c, z);
            nz++;
        }
    }
    for (int pass = 0; pass < nz; pass++) {
        int best = -1;
        for (int i = 0; i < nz; i++)
            if (free_milli[i] >= 0 && (best < 0 || free_milli[i] > free_milli[best]))
                best = i;
        if (best < 0)
            break;
        gp_job_t *copy = malloc(sizeof *copy * (size_t)n);
        if (copy == NULL)
            return -1;
        for (int m = 0; m < n; m++) {
            copy[m] = jobs[m];
            if (copy[m].zones.n == 0)
                gp_strlist_add(&copy[m].zones, zones[best]);
        }
        int rc = gp_placement_place_gang(coord_cache_engine(c), copy, n, false, plans, NULL);
        free(copy);
        if (rc == 0)
            return 0;
        free_milli[best] = -1;
    }
    gp_err_t err;
    if (gp_placement_place_gang(coord_cache_engine(c), jobs, n, false, plans, &err) == 0)
        return 0;
    snprintf(why, wsize, "gang does not fit: %.230s", err.msg);
    return -1;
}

static void s_commit_gang(coord_t *c, s_gang_t *g, gp_etcd_batch_t *reasons)
{
    gp_job_t *jobs = calloc((size_t)g->n, sizeof *jobs);
    gp_alloc_t *plans = calloc((size_t)g->n, sizeof *plans);
    gp_jobrec_t rec;
    char why[256] = "";   /* a record's reason holds 255 */
    gp_txnb_t *t = NULL;
    int nheld = 0;
    if (jobs == NULL || plans == NULL)
        goto cleanup;
    for (int i = 0; i < g->n; i++) {
        if (coord_job_record(c, g->members[i]->id, &rec, NULL) < 0)
            goto cleanup;
        jobs[i] = rec.spec;
        if (jobs[i].regions.n == 0)
            gp_strlist_add(&jobs[i].regions, c->cfg.region);
        if (jobs[i].devices > 1 && jobs[i].policy[0] == '\0')
            gp_strlcpy(jobs[i].policy, "topology", sizeof jobs[i].policy);
        gp_jobrec_clear(&rec);
    }
    if (s_plan(c, jobs, g->n, plans, why, sizeof why) < 0) {
        for (int i = 0; i < g->n; i++)
            coord_set_reason(c, reasons, g->members[i], why);
        goto cleanup;
    }
    t = gp_txnb_new();
    if (t == NULL)
        goto cleanup;
    coord_txn_fence(t, c);
    char key[GP_KEY_MAX];
    for (int i = 0; i < g->n; i++) {
        /* each node's fence once */
        int first = 1;
        for (int k = 0; k < i && first; k++)
            first = strcmp(plans[k].node, plans[i].node) != 0;
        if (first)
            coord_txn_node_fence(t, c, plans[i].node, coord_cache_fence(c, plans[i].node));
        gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, g->members[i]->id), GP_ETCD_CMP_MOD,
                    g->members[i]->mod_rev);
        if (coord_txn_put_alloc(t, c, &plans[i]) < 0)
            goto cleanup;
    }
    for (nheld = 0; nheld < g->n; nheld++)
        if (coord_cache_hold(c, &plans[nheld]) < 0)
            break;
    int committed = 0;
    int64_t revision = 0;
    gp_err_t err;
    if (nheld == g->n && coord_txn_run(t, c, &committed, &revision, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "gang", &err);
        for (int i = 0; i < g->n; i++)   /* it may have committed: recovery.c settles it */
            coord_cache_doubt(c, g->members[i]->id, plans[i].node);
    }
    if (committed) {
        for (int i = 0; i < g->n; i++)
            coord_cache_placed(c, g->members[i]->id, revision);
        gp_log_info("gang placed gang=%s members=%d", g->name, g->n);
        gp_metric_add(c->m.placements, g->n);
        gp_metric_inc(c->m.gangs);
        nheld = 0;   /* keep them: the watch confirms */
    } else {
        gp_metric_inc(c->m.commit_conflicts);
    }
cleanup:
    for (int i = 0; i < nheld; i++)
        coord_cache_untentative(c, plans[i].job);
    gp_txnb_destroy(&t);
    free(jobs);
    free(plans);
}

/* Add a queued job to its gang (gangs: name -> s_gang_t*). */
static void s_gather(coord_job_t *j, void *arg)
{
    gp_strmap_t *gangs = arg;
    if (j->gang[0] == '\0' || j->state != GP_JOB_PENDING)
        return;
    s_gang_t *g = gp_strmap_get(gangs, j->gang);
    if (g == NULL) {
        g = calloc(1, sizeof *g);
        if (g == NULL)
            return;
        gp_strlcpy(g->name, j->gang, sizeof g->name);
        g->size = j->gang_size;
        gp_strmap_put(gangs, j->gang, g);
    }
    if (g->n < GP_MAX_GANG)
        g->members[g->n++] = j;
    if (j->not_before_ms > g->not_before_ms)
        g->not_before_ms = j->not_before_ms;
}

void coord_gang_round(coord_t *c, int64_t now)
{
    gp_strmap_t *gangs = gp_strmap_new();
    if (gangs == NULL)
        return;
    coord_cache_each_queued(c, s_gather, gangs);
    gp_etcd_batch_t *reasons = gp_etcd_batch_new(c->etcd);
    for (gp_strmap_iter_t it = gp_strmap_first(gangs); it.key; it = gp_strmap_next(gangs, it)) {
        s_gang_t *g = it.value;
        if (g->not_before_ms > now) {
            free(g);
            continue;   /* the whole gang backs off together */
        }
        if (g->n < g->size) {
            char why[160];
            snprintf(why, sizeof why, "waiting for the gang: %d of %d members queued", g->n, g->size);
            for (int i = 0; i < g->n; i++)
                coord_set_reason(c, reasons, g->members[i], why);
        } else {
            s_commit_gang(c, g, reasons);
        }
        int backoff = 0;
        for (int i = 0; i < g->n; i++)
            if (g->members[i]->backoff_ms > backoff)
                backoff = g->members[i]->backoff_ms;
        backoff = backoff ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : 100;
        for (int i = 0; i < g->n; i++) {
            g->members[i]->backoff_ms = backoff;
            g->members[i]->not_before_ms = now + backoff;
        }
        free(g);
    }
    if (reasons && gp_etcd_batch_size(reasons) > 0)
        gp_etcd_batch_run(reasons, 64, NULL);   /* gangs back off past the watch's delay */
    gp_etcd_batch_destroy(&reasons);
    gp_strmap_destroy(&gangs);
}
