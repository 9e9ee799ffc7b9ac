/*
 * preempt.c - scheduling preemption.
 *
 * A job with a positive priority that fits nowhere it may run (not in this
 * region, and no other region takes it) may take the place of jobs of
 * lower priority: the placement engine plans the fewest victims, lowest
 * priorities first, on one node of this region (gp_placement_plan_preemption).
 * One fenced transaction then, together:
 *   - deletes each victim's allocation (its agent stops it: SIGTERM, then
 *     SIGKILL after its grace) and records it as preempted, then pending
 *     again -- with its priority, attempts and history -- so that it waits
 *     in its owner region's queue and runs again when there is room;
 *   - commits the job's own allocation, as a bid round would, fenced on the
 *     leader key, the node (no allocation created on it since the plan) and
 *     every record read.
 * The job is not bid for: the agents' bids could not offer capacity that is
 * still in use; the agent starts it once the victims' slices are gone from
 * its view (the allocation is committed either way).
 */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_MAX_VICTIMS 16

int coord_preempt(coord_t *c, const gp_job_t *job, char *why, size_t wsize)
{
    if (job->priority <= 0)
        return 0;
    char victims[S_MAX_VICTIMS][GP_NAME_LEN];
    int nv = 0;
    gp_alloc_t plan;
    gp_err_t err;
    if (gp_placement_plan_preemption(coord_cache_engine(c), job, victims, S_MAX_VICTIMS, &nv, &plan,
                                     &err) < 0)
        return 0;
    gp_txnb_t *t = gp_txnb_new();
    if (t == NULL)
        return 0;
    int64_t now = gp_wall_ms();
    char key[GP_KEY_MAX], reason[200];
    coord_txn_fence(t, c);
    coord_txn_node_fence(t, c, plan.node, coord_cache_fence(c, plan.node));
    snprintf(reason, sizeof reason, "preempted by %.100s (priority %d)", job->id, job->priority);
    int ok = 1;
    for (int i = 0; i < nv && ok; i++) {
        gp_jobrec_t v;
        int64_t mod;
        if (coord_job_record(c, victims[i], &v, &mod) < 0) {
            ok = 0;
            break;
        }
        gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, victims[i]), GP_ETCD_CMP_MOD, mod);
        gp_txnb_del(t, gp_key_alloc(key, c->cfg.prefix, plan.node, victims[i]));
        coord_requeue(&v, GP_JOB_PREEMPTED, reason, now);
        coord_txn_put_job(t, c, &v);
        gp_jobrec_clear(&v);
    }
    /* The job's record says why it took the place (a preemption is rare:
     * the extra write is worth the history). */
    gp_jobrec_t rec;
    int64_t mod;
    coord_job_t *pj = coord_cache_job(c, job->id);
    if (ok && pj && pj->queued && coord_job_record(c, job->id, &rec, &mod) == 0) {
        rec.attempts++;
        snprintf(reason, sizeof reason, "attempt %d, preempting %d job%s", rec.attempts, nv,
                 nv == 1 ? "" : "s");
        gp_jobrec_set_state(&rec, GP_JOB_PLACED, plan.node, reason, now);
        gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, job->id), GP_ETCD_CMP_MOD, mod);
        coord_txn_put_job(t, c, &rec);
        gp_jobrec_clear(&rec);
        ok = coord_txn_put_alloc(t, c, &plan) == 0;
    } else {
        ok = 0;
    }
    int committed = 0;
    int64_t revision = 0;
    if (ok && coord_txn_run(t, c, &committed, &revision, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "preempt", &err);
        coord_cache_doubt(c, job->id, plan.node);   /* recovery.c settles it */
    }
    gp_txnb_destroy(&t);
    if (!committed) {
        snprintf(why, wsize, "a preemption on %.80s did not commit; retrying", plan.node);
        return 0;
    }
    /* The engine reflects it at once: victims out, the job in (held until
     * the watch confirms). */
    for (int i = 0; i < nv; i++) {
        coord_cache_untentative(c, victims[i]);
        gp_placement_remove_alloc(coord_cache_engine(c), victims[i], NULL);
    }
    coord_cache_hold(c, &plan);
    coord_cache_record_written(c, job->id, NULL, revision);
    coord_cache_placed(c, job->id, revision);
    gp_log_info("preempted job=%s node=%s victims=%d first=%s", job->id, plan.node, nv,
                nv ? victims[0] : "-");
    gp_metric_add(c->m.preempted, nv);
    return 1;
}
