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
 */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

void coord_recovery_tick(coord_t *c)
{
    static int64_t next_ms;
    int64_t now = gp_mono_ms();
    if (!coord_is_leader(c) || now < next_ms)
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
