/*
 * recovery.c - what the leader repairs: allocations of vanished nodes and
 * of ended jobs, commits whose outcome is unknown, and its queue.
 *
 * Vanished nodes.  A node's record lives on its agent's lease, so it
 * vanishes when the agent has been silent for the lease's TTL (dead agent,
 * dead node, or a node cut off from etcd).  Its allocations are still in
 * etcd.  Every half second the leader of the owning region looks for
 * allocations on nodes that are not there (up to 512 a pass, written in
 * the background: the loop never waits for them, and the next pass waits
 * until they landed), and for each, in one fenced
 * transaction (compared with the job record the cache holds): deletes the
 * allocation, marks the job lost and, by its restart policy (on-failure or
 * always, within max_restarts), makes it pending again -- so that it waits
 * in its region's queue again.  A job that may not restart stays lost.
 * If the agent comes back, it finds its allocations gone and stops the
 * jobs it still runs: by then they have been requeued, perhaps elsewhere.
 *
 * Orphans.  An allocation whose job record is gone or has ended (a cancel
 * that raced the commit, from a coordinator whose cache did not show the
 * allocation yet) holds capacity for nothing: the leader of the node's
 * region deletes it, fenced on the record as the cache saw it.
 *
 * Commits in doubt.  A commit writes only allocations; the records stay
 * as they were.  When a commit fails in transport its outcome is unknown,
 * and placing its jobs again could place them twice.  So they wait out of
 * the queue until settled, one transaction per job: "if the record is
 * still at the revision the commit compared and the allocation does not
 * exist, rewrite the record as it is".  Succeeded, the old commit can no
 * longer apply (its compare on the record fails) and the job is queued
 * again; refused, the allocation exists (the job is placed) or the record
 * changed (the old commit can never apply; the watch brings the change).
 *
 * The queue's safety net.  The queue is derived from the cache (coord.h)
 * and kept up by every change the watch and our own commits bring; a
 * pending job that the bookkeeping missed would wait forever.  Every 10 s,
 * and one second after a transaction that did not commit, the leader
 * applies the queue rule to every job it caches and puts back any it
 * should queue and does not.  Each repair is logged and counted
 * (gpupool_coordinator_queue_repairs_total): it means a bug elsewhere.
 */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_RECONCILE_EVERY_MS 10000
#define S_SETTLE_PER_PASS 256
#define S_RELEASE_PER_PASS 512   /* the rest next pass: the loop stays responsive */
/* A release pass looks at every allocation (tens of thousands: 4.5% of a
 * leader's CPU in a burst of placements, at two passes a second): it runs
 * when the cache saw a change that can make one releasable
 * (c->recovery_dirty), and at least this often whatever it saw. */
#define S_RELEASE_FULL_EVERY_MS 10000

void coord_recovery_reconcile_soon(coord_t *c)
{
    int64_t soon = gp_mono_ms() + 1000;
    if (c->recovery_reconcile_ms > soon)
        c->recovery_reconcile_ms = soon;
}

static void s_reconcile_queue(coord_t *c)
{
    int repaired = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_JOBS); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        int was = j->queued;
        if (coord_cache_eval(c, j) && !was && j->queued) {
            gp_log_warn("queue repaired: a pending job of this region was not queued job=%s",
                        j->id);
            repaired++;
        }
    }
    if (repaired > 0)
        gp_metric_add(c->m.queue_repairs, repaired);
}

/* ---------------------------------------------------------------- doubt */

static void s_settle_done(coord_t *c, coord_job_t *j, const gp_etcd_result_t *res)
{
    if (res->succeeded) {
        gp_log_info("commit in doubt settled: not placed, queued again job=%s node=%s", j->id,
                    j->doubt_node);
        coord_cache_record_written(c, j->id, NULL, res->revision);
    } else if (res->n_responses == 1 && res->responses[0].n_kvs == 1) {
        gp_log_info("commit in doubt settled: placed job=%s node=%s", j->id, j->doubt_node);
        coord_cache_placed(c, j->id, res->responses[0].kvs[0].mod_revision);
    }
    coord_cache_undoubt(c, j);
}

static void s_settle_doubts(coord_t *c)
{
    coord_job_t *want[S_SETTLE_PER_PASS];
    int n = (int)coord_cache_doubts(c, want, S_SETTLE_PER_PASS);
    if (n == 0)
        return;
    gp_etcd_batch_t *b = gp_etcd_batch_new(c->etcd);
    gp_txnb_t *t = gp_txnb_new();
    int idx[S_SETTLE_PER_PASS];
    for (int i = 0; b && t && i < n; i++) {
        char jkey[GP_KEY_MAX], akey[GP_KEY_MAX];
        gp_txnb_reset(t);
        gp_key_job(jkey, c->cfg.prefix, want[i]->id);
        gp_key_alloc(akey, c->cfg.prefix, want[i]->doubt_node, want[i]->id);
        gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, want[i]->mod_rev);
        gp_txnb_cmp(t, akey, GP_ETCD_CMP_CREATE, 0);
        gp_txnb_put(t, jkey, want[i]->raw);
        gp_txnb_fail_range(t, akey);
        idx[i] = gp_txnb_add(t, b, NULL);
    }
    gp_err_t err;
    if (b && t && gp_etcd_batch_run(b, 64, &err) < 0 && err.code != GP_OK)
        coord_metrics_etcd_error(&c->m, "settle", &err);
    for (int i = 0; b && t && i < n; i++) {
        const gp_etcd_result_t *res;
        if (idx[i] >= 0 && gp_etcd_batch_result(b, (size_t)idx[i], &res, NULL) == 0)
            s_settle_done(c, want[i], res);   /* else: tried again next pass */
    }
    gp_txnb_destroy(&t);
    gp_etcd_batch_destroy(&b);
}

/* ---------------------------------------------------------------- releases */

/* Why the allocation should go, or NULL when it stays. */
static const char *s_release_why(coord_t *c, const gp_alloc_t *al, coord_job_t *j)
{
    coord_node_t *node = coord_cache_node(c, al->node, 0);
    if (node == NULL || !node->present) {
        const char *owner = j && j->region[0] ? j->region : node ? node->region : "";
        return strcmp(owner, c->cfg.region) == 0 ? "vanished" : NULL;
    }
    if (strcmp(node->region, c->cfg.region) != 0)
        return NULL;   /* another region's leader releases it */
    if (j == NULL || gp_job_state_final(j->state) || j->state == GP_JOB_LOST)
        return "orphan";
    return NULL;
}

/* One fenced transaction releasing al (why: "vanished" or "orphan"). */
static int s_release(coord_t *c, gp_etcd_batch_t *b, const gp_alloc_t *al, coord_job_t *j,
                     const char *why)
{
    gp_txnb_t *t = gp_txnb_new();
    if (t == NULL)
        return -1;
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX], reason[200];
    coord_txn_fence(t, c);
    gp_txnb_del(t, gp_key_alloc(akey, c->cfg.prefix, al->node, al->job));
    gp_key_job(jkey, c->cfg.prefix, al->job);
    gp_jobrec_t rec;
    int64_t mod;
    if (!strcmp(why, "orphan") || j == NULL) {
        /* (a vanished node's allocation whose job has no record: the
         * record must still be absent) */
        gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, j ? j->mod_rev : 0);
        gp_log_info("releasing an allocation whose job has %s job=%s node=%s",
                    j ? "ended" : "no record", al->job, al->node);
    } else if (coord_job_record(c, al->job, &rec, &mod) < 0) {
        /* Releasing without rewriting the record would leave the job
         * "running" on a node that is gone, never to be requeued. */
        gp_log_error("cannot release the allocation of a vanished node: the job's record "
                     "does not parse job=%s node=%s", al->job, al->node);
        gp_txnb_destroy(&t);
        return -1;
    } else {
        snprintf(reason, sizeof reason, "node %.100s vanished (its agent's lease expired)",
                 al->node);
        gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, mod);
        coord_requeue(&rec, GP_JOB_LOST, reason, gp_wall_ms());
        coord_txn_put_job(t, c, &rec);
        gp_log_info("releasing the allocation of a vanished node job=%s node=%s requeued=%s",
                    al->job, al->node, rec.state == GP_JOB_PENDING ? "yes" : "no");
        gp_jobrec_clear(&rec);
    }
    int idx = gp_txnb_add(t, b, NULL);
    gp_txnb_destroy(&t);
    return idx;
}

/* A pass's releases landed: count those that committed; the next pass
 * sees what came of them (and of the ones that did not). */
static void s_released(gp_etcd_batch_t *b, void *arg)
{
    coord_t *c = arg;
    int released = 0;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
        const gp_etcd_result_t *res;
        gp_err_t err;
        if (gp_etcd_batch_result(b, i, &res, &err) < 0)
            coord_metrics_etcd_error(&c->m, "recovery", &err);
        else if (res->succeeded)
            released++;
    }
    gp_metric_add(c->m.lost_allocations, released);
    c->recovery_dirty = 1;
    gp_etcd_batch_destroy(&c->recovery_releases);
}

static void s_release_allocs(coord_t *c)
{
    int64_t now = gp_mono_ms();
    if (c->recovery_releases || (!c->recovery_dirty && now < c->recovery_full_ms))
        return;   /* (a pass in flight: the next one waits for it) */
    c->recovery_dirty = 0;
    c->recovery_full_ms = now + S_RELEASE_FULL_EVERY_MS;
    gp_etcd_batch_t *b = NULL;
    int n = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ALLOCS);
         it.key && n < S_RELEASE_PER_PASS;
         it = coord_cache_next(c, it)) {
        const gp_alloc_t *al = it.value;
        coord_job_t *j = coord_cache_job(c, al->job);
        const char *why = s_release_why(c, al, j);
        if (why == NULL)
            continue;
        if (b == NULL && (b = gp_etcd_batch_new(c->etcd)) == NULL)
            return;
        if (s_release(c, b, al, j, why) >= 0)
            n++;
    }
    if (b == NULL)
        return;
    c->recovery_dirty = 1;   /* the next pass sees what came of these (or the rest) */
    gp_err_t err;
    c->recovery_releases = b;
    if (n == 0 || gp_etcd_batch_start(b, 64, s_released, c, &err) < 0) {
        if (n > 0)
            coord_metrics_etcd_error(&c->m, "recovery", &err);
        gp_etcd_batch_destroy(&c->recovery_releases);
    }
}

void coord_recovery_stop(coord_t *c)
{
    gp_etcd_batch_destroy(&c->recovery_releases);   /* what was sent may still apply */
}

void coord_recovery_tick(coord_t *c)
{
    int64_t now = gp_mono_ms();
    if (!coord_is_leader(c)) {
        c->recovery_reconcile_ms = now + 1000;   /* a new leader's cache was just listed */
        c->recovery_dirty = 1;                   /* and releases everything due at once */
        return;
    }
    if (now >= c->recovery_reconcile_ms) {
        c->recovery_reconcile_ms = now + S_RECONCILE_EVERY_MS;
        s_reconcile_queue(c);
    }
    if (now < c->recovery_next_ms)
        return;
    c->recovery_next_ms = now + 500;
    s_settle_doubts(c);
    s_release_allocs(c);
}
