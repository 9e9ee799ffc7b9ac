/*
 * recovery.c - releasing what a vanished node held.
 *
 * A node's record lives on its agent's lease, so it vanishes when the
 * agent has been silent for the lease's TTL (dead agent, dead node, or a
 * node cut off from etcd).  Its allocations are still in etcd.  Every half
 * second the leader of the owning region looks for allocations on nodes
 * that are not there, and for each, in one fenced transaction (compared
 * with the job record the cache holds): deletes the allocation, marks the
 * job lost and, by its restart policy (on-failure or always, within
 * max_restarts), makes it pending again and puts it back in its region's
 * queue.  A job that may not restart stays lost.
 *
 * If the agent comes back, it finds its allocations gone and stops the
 * jobs it still runs: by then they have been requeued, perhaps elsewhere.
 *
 * The queue's safety net.  The leader's queue is fed by the watch and
 * trimmed by its own commits; a job whose queue key is in etcd but that
 * the leader no longer queues would wait forever.  Every 10 s, and one
 * second after a transaction that did not commit, the leader lists
 * queue/<region>/ at the revision its cache reflects (so that the watch's
 * lag cannot look like a difference) and puts back every pending job the
 * cache holds, with a queue key here, that is missing from the queue.  A
 * job changed since that revision by our own commits is skipped: the
 * watch brings its change.  Each repair is logged and counted
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

static int64_t s_reconcile_ms;   /* next queue reconciliation (monotonic) */

void coord_recovery_reconcile_soon(coord_t *c)
{
    (void)c;
    int64_t soon = gp_mono_ms() + 1000;
    if (s_reconcile_ms > soon)
        s_reconcile_ms = soon;
}

static void s_reconcile_queue(coord_t *c)
{
    char prefix[GP_KEY_MAX];
    snprintf(prefix, sizeof prefix, "%squeue/%s/", c->cfg.prefix, c->cfg.region);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = prefix,
                        .flags = GP_ETCD_PREFIX | GP_ETCD_KEYS_ONLY, .revision = c->cache_rev };
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_do(c->etcd, &op, &res, &err) < 0) {
        coord_count_etcd_error(c, "reconcile", &err);
        return;
    }
    size_t plen = strlen(prefix);
    int repaired = 0;
    for (size_t k = 0; k < res.n_kvs; k++) {
        char id[GP_NAME_LEN];
        if (res.kvs[k].key_len <= plen || res.kvs[k].key_len - plen >= sizeof id)
            continue;
        memcpy(id, res.kvs[k].key + plen, res.kvs[k].key_len - plen);
        id[res.kvs[k].key_len - plen] = '\0';
        coord_job_t *j = coord_cache_job(c, id);
        if (j == NULL || j->state != GP_JOB_PENDING || j->mod_rev > c->cache_rev ||
            gp_strmap_get(c->queue, id) != NULL)
            continue;
        gp_log_warn("queue repaired: a pending job with a queue key here was not queued job=%s", id);
        coord_cache_queue_here(c, j);
        repaired++;
    }
    gp_etcd_result_free(&res);
    if (repaired > 0)
        gp_metric_add(gp_metrics_counter(c->metrics, "gpupool_coordinator_queue_repairs_total",
                                         "Pending jobs put back in the queue by reconciliation",
                                         NULL), repaired);
}

void coord_recovery_tick(coord_t *c)
{
    static int64_t next_ms;
    int64_t now = gp_mono_ms();
    if (!coord_is_leader(c)) {
        s_reconcile_ms = now + 1000;   /* a new leader's cache was just listed */
        return;
    }
    if (now >= s_reconcile_ms) {
        s_reconcile_ms = now + S_RECONCILE_EVERY_MS;
        s_reconcile_queue(c);
    }
    if (now < next_ms)
        return;
    next_ms = now + 500;
    gp_etcd_batch_t *b = NULL;
    int n = 0;
    for (gp_strmap_iter_t it = gp_strmap_first(c->allocs); it.key; it = gp_strmap_next(c->allocs, it)) {
        gp_alloc_t *al = it.value;
        coord_node_t *node = coord_cache_node(c, al->node, 0);
        if (node && node->present)
            continue;
        coord_job_t *j = coord_cache_job(c, al->job);
        const char *owner = j && j->region[0] ? j->region : node ? node->region : "";
        if (strcmp(owner, c->cfg.region) != 0)
            continue;   /* another region's leader releases it */
        if (b == NULL && (b = gp_etcd_batch_new(c->etcd)) == NULL)
            return;
        gp_txnb_t *t = gp_txnb_new();
        if (t == NULL)
            break;
        char akey[GP_KEY_MAX], qkey[GP_KEY_MAX], jkey[GP_KEY_MAX], reason[200];
        coord_txn_fence(t, c);
        gp_txnb_del(t, gp_key_alloc(akey, c->cfg.prefix, al->node, al->job));
        gp_jobrec_t rec;
        int64_t mod;
        if (coord_job_record(c, al->job, &rec, &mod) == 0) {
            snprintf(reason, sizeof reason, "node %.100s vanished (its agent's lease expired)",
                     al->node);
            gp_txnb_cmp(t, gp_key_job(jkey, c->cfg.prefix, al->job), GP_ETCD_CMP_MOD, mod);
            if (coord_requeue(&rec, GP_JOB_LOST, reason, gp_wall_ms()))
                gp_txnb_put(t, gp_key_queue(qkey, c->cfg.prefix,
                                              rec.region[0] ? rec.region : c->cfg.region, al->job),
                              "");
            coord_txn_put_job(t, c, &rec);
            gp_log_info("releasing the allocation of a vanished node job=%s node=%s requeued=%s",
                        al->job, al->node, rec.state == GP_JOB_PENDING ? "yes" : "no");
            gp_jobrec_clear(&rec);
        }
        gp_txnb_add(t, b, NULL);
        gp_txnb_destroy(&t);
        n++;
    }
    if (b) {
        gp_err_t err;
        if (n > 0 && gp_etcd_batch_run(b, 64, &err) < 0)
            coord_count_etcd_error(c, "recovery", &err);
        else if (n > 0)
            gp_metric_add(gp_metrics_counter(c->metrics, "gpupool_coordinator_lost_allocations_total",
                                             "Allocations released because their node vanished",
                                             NULL), n);
        gp_etcd_batch_destroy(&b);
    }
}
