/*
 * txn.h - the coordinator's fenced transactions (internal), over the
 * common transaction builder (txnbuild.h).
 *
 *     gp_txnb_t *t = gp_txnb_new();
 *     coord_txn_fence(t, c);                            // only while we lead
 *     gp_txnb_cmp(t, job_key, GP_ETCD_CMP_MOD, cached_mod_rev);
 *     coord_txn_put_job(t, c, &rec);
 *     int ok;  int64_t rev;  coord_txn_run(t, c, &ok, &rev, &err);          // or gp_txnb_add(t, batch)
 *     gp_txnb_destroy(&t);
 */
#ifndef GP_COORD_TXN_H
#define GP_COORD_TXN_H

#include "coord.h"
#include "txnbuild.h"

/* Compare the region's election key with our fencing revision. */
void coord_txn_fence(gp_txnb_t *t, coord_t *c);
/* "No allocation under alloc/<node>/ was created after revision fence":
 * the plan that saw the node at fence still holds (coord_cache_fence). */
void coord_txn_node_fence(gp_txnb_t *t, coord_t *c, const char *node, int64_t fence);
/* Put the allocation at P alloc/<node>/<job>; -1 when out of memory. */
int coord_txn_put_alloc(gp_txnb_t *t, coord_t *c, const gp_alloc_t *al);
/* Put the job record at P jobs/<id> (a record that cannot be written out
 * makes t unusable: txnbuild.h). */
void coord_txn_put_job(gp_txnb_t *t, coord_t *c, const gp_jobrec_t *rec);
/* Run it now: 0 and *succeeded (at *revision), or -1 (transport,
 * timeout...: the outcome is unknown). */
int coord_txn_run(gp_txnb_t *t, coord_t *c, int *succeeded, int64_t *revision, gp_err_t *err);

/* A job's record from the cache (its JSON), with the mod revision the
 * cache saw; -1 when the cache has no readable record. */
int coord_job_record(coord_t *c, const char *id, gp_jobrec_t *rec, int64_t *mod_rev);

/* A job lost its allocation (its node vanished, or it was preempted):
 * record why and, when it should run again, make it pending (it is then
 * queued again in its owner region).  Returns 1 when it is pending.  A
 * placement the agent never reported (the record still pending) counts
 * as an attempt here. */
int coord_requeue(gp_jobrec_t *rec, gp_job_state_t why, const char *reason, int64_t now_ms);

#endif
