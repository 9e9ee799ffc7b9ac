/*
 * handoff.c - cross-region placement: which region should hold a job.
 *
 * A job waits in the queue of its owner region, and only that region's
 * leader places it, on that region's nodes.  When a bid round finds no
 * node for it here, or the job prefers another region, the leader looks at
 * the global inventory (its cache holds every region's nodes and
 * allocations) and hands the job over: one fenced transaction records the
 * new owner in the job record (compared with the revision the cache saw),
 * and the queues follow from the records, so that the job is owned by
 * exactly one region at every revision -- never two, never none.
 *
 * The rules, in order:
 *   1. Pins (`regions`) limit the candidates; without pins every region
 *      with nodes is a candidate.  `clouds` and `zones` pins are honoured
 *      by the placement itself.
 *   2. Candidates are tried in this order: the `prefer_regions` in the
 *      order given; then regions with nodes in a `prefer_clouds` cloud;
 *      then this region; then the others by name.
 *   3. The first candidate that can hold the job now wins.  If that is this
 *      region, the job stays and is placed here; if it is another, the job
 *      is handed to it -- but only to a region that has a leader: a region
 *      whose coordinators are all down is skipped (the job goes elsewhere,
 *      or waits here).
 *   4. If no candidate can hold it now, the job waits here, with a reason
 *      that counts the nodes by why they cannot hold it (kube-scheduler's
 *      "0/6 nodes: 4 wrong model (want B200), ..."; gp_placement_explain);
 *      it is retried as capacity frees.  A job pinned to a full region
 *      therefore waits instead of moving.
 *   5. A job that its team's quota holds (quota.c) is not handed over: the
 *      quota counts the team's allocations in every region, so it would be
 *      as held there; round.c checks the plan the target would take.
 * A gang is handed over as a whole only by its members' own rounds; gangs
 * are placed in their owner region (gang.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_MAX_REGIONS 64

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int s_has(char (*list)[GP_SHORT_LEN], int n, const char *r)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], r))
            return 1;
    return 0;
}

/* Can the job be placed in region r now? (*plan: where) */
static int s_fits_in(coord_t *c, const gp_job_t *job, const char *r, gp_alloc_t *plan)
{
    gp_job_t copy = *job;
    copy.regions.n = 0;
    gp_strlist_add(&copy.regions, r);
    gp_candidate_t cand;
    int n = 0;
    if (gp_placement_rank(coord_cache_engine(c), &copy, &cand, 1, &n, NULL) < 0 || n == 0)
        return 0;
    if (plan)
        *plan = cand.plan;
    return 1;
}

/* Why no node holds the job now, over the pool's nodes (the engine's)
 * and the NotReady ones (notready.c), which count as a cause of their own:
 * "0/3 nodes: 1 NotReady, 2 wrong model (want T4)". */
static int s_explain(coord_t *c, const gp_job_t *job, char *why, size_t wsize)
{
    char text[256];
    int fits = gp_placement_explain(coord_cache_engine(c), job, text, sizeof text, NULL);
    if (fits < 0)
        return -1;
    int notready = 0, total = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        const coord_node_t *n = it.value;
        notready += !n->present && n->gone_ms && n->record;
    }
    const char *rest = strstr(text, " nodes");
    if (notready == 0 || fits > 0 || rest == NULL || sscanf(text, "0/%d", &total) != 1) {
        snprintf(why, wsize, "%s", text);
        return 0;
    }
    rest += strlen(" nodes");
    snprintf(why, wsize, "0/%d nodes: %d NotReady%s%s", total + notready, notready,
             *rest == ':' ? "," : "", *rest == ':' ? rest + 1 : rest);
    return 0;
}

int coord_handoff_target(coord_t *c, const gp_job_t *job, int fits_here, char *target, size_t size,
                         char *why, size_t wsize, gp_alloc_t *plan)
{
    char known[S_MAX_REGIONS][GP_SHORT_LEN], order[S_MAX_REGIONS][GP_SHORT_LEN];
    int nk = 0, no = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (n->present && n->region[0] && nk < S_MAX_REGIONS && !s_has(known, nk, n->region) &&
            (job->regions.n == 0 || gp_strlist_has(&job->regions, n->region)))
            gp_strlcpy(known[nk++], n->region, GP_SHORT_LEN);
    }
    qsort(known, (size_t)nk, GP_SHORT_LEN, s_cmp_str);
    for (int i = 0; i < job->prefer_regions.n; i++)
        if (s_has(known, nk, job->prefer_regions.v[i]) && !s_has(order, no, job->prefer_regions.v[i]))
            gp_strlcpy(order[no++], job->prefer_regions.v[i], GP_SHORT_LEN);
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); job->prefer_clouds.n && it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        const char *cloud = n->record ? json_string_value(json_object_get(n->record, "cloud")) : NULL;
        if (n->present && cloud && gp_strlist_has(&job->prefer_clouds, cloud) &&
            s_has(known, nk, n->region) && !s_has(order, no, n->region))
            gp_strlcpy(order[no++], n->region, GP_SHORT_LEN);
    }
    if ((job->regions.n == 0 || gp_strlist_has(&job->regions, c->cfg.region)) &&
        !s_has(order, no, c->cfg.region))
        gp_strlcpy(order[no++], c->cfg.region, GP_SHORT_LEN);
    for (int i = 0; i < nk; i++)
        if (!s_has(order, no, known[i]))
            gp_strlcpy(order[no++], known[i], GP_SHORT_LEN);

    int leaderless = 0;
    for (int i = 0; i < no; i++) {
        if (!strcmp(order[i], c->cfg.region)) {
            if (fits_here)
                return 0;
            continue;
        }
        if (!s_fits_in(c, job, order[i], plan))
            continue;
        if (coord_cache_leader(c, order[i]) == NULL) {
            leaderless++;
            continue;
        }
        snprintf(target, size, "%s", order[i]);
        snprintf(why, wsize, "handed off from %.60s to %.60s", c->cfg.region, order[i]);
        return 1;
    }
    if (!fits_here && leaderless)
        snprintf(why, wsize, "no region with a leader can hold it now; waiting");
    else if (!fits_here && s_explain(c, job, why, wsize) < 0)
        snprintf(why, wsize, "%s", job->regions.n ? "no region it is pinned to can hold it now; waiting"
                                                  : "no region can hold it now; waiting");
    return 0;
}

int coord_handoff_add(coord_t *c, gp_etcd_batch_t *b, const char *id, const char *target,
                      const char *why)
{
    gp_jobrec_t rec;
    int64_t mod;
    if (coord_job_record(c, id, &rec, &mod) < 0)
        return -1;
    gp_txnb_t *t = gp_txnb_new();
    if (t == NULL) {
        gp_jobrec_clear(&rec);
        return -1;
    }
    char key[GP_KEY_MAX];
    coord_txn_fence(t, c);
    gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, id), GP_ETCD_CMP_MOD, mod);
    gp_strlcpy(rec.region, target, sizeof rec.region);
    gp_jobrec_set_state(&rec, GP_JOB_PENDING, "", why, gp_wall_ms());
    coord_txn_put_job(t, c, &rec);
    int idx = gp_txnb_add(t, b, NULL);
    gp_txnb_destroy(&t);
    gp_jobrec_clear(&rec);
    return idx;
}

/* The job leaves this region's queue only once its hand-off committed.
 * Refused (the job changed, we were deposed) or failed in transport, it
 * stays queued here, backed off by its round: if the transaction did
 * commit after all, the watch delivers the record with its new owner and
 * that removes it; any award made meanwhile fails its compare on the
 * record. */
void coord_handoff_done(coord_t *c, gp_etcd_batch_t *b, const char *id, const char *target, int idx)
{
    const gp_etcd_result_t *res = NULL;
    gp_err_t err = { 0 };
    if (idx >= 0 && gp_etcd_batch_result(b, (size_t)idx, &res, &err) == 0 && res->succeeded) {
        coord_cache_record_written(c, id, target, res->revision);
        gp_log_info("job handed off job=%s from=%s to=%s", id, c->cfg.region, target);
        gp_metric_inc(c->m.handoffs);
        return;
    }
    gp_log_warn("hand-off not committed, the job stays queued here job=%s to=%s err=\"%s\"", id,
                target, idx < 0 ? "not built" : res ? "refused by a compare" : err.msg);
    gp_metric_inc(c->m.commit_conflicts);
    coord_recovery_reconcile_soon(c);
}
