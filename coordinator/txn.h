/*
 * txn.h - a transaction under construction (internal to the coordinator).
 *
 * Collects compares and operations, copying every key and value, so that a
 * module can say what it commits without managing buffers:
 *
 *     coord_txn_t *t = coord_txn_new();
 *     coord_txn_fence(t, c);                            // only while we lead
 *     coord_txn_cmp_mod(t, job_key, cached_mod_rev);    // nothing changed since
 *     coord_txn_put_job(t, c, &rec);
 *     coord_txn_del(t, alloc_key);
 *     int ok;  coord_txn_run(t, c, &ok, &err);          // or coord_txn_add(t, batch)
 *     coord_txn_destroy(&t);
 *
 * etcd accepts at most 128 operations (and 128 compares) per transaction;
 * coord_txn_ops() lets the caller stay under that.  Out of memory makes
 * the transaction unusable (run/add fail), never half-built.
 */
#ifndef GP_COORD_TXN_H
#define GP_COORD_TXN_H

#include "coord.h"

#define COORD_TXN_MAX_OPS 128

typedef struct coord_txn coord_txn_t;

coord_txn_t *coord_txn_new(void);
void coord_txn_destroy(coord_txn_t **t_p);

/* Compare the region's election key with our fencing revision. */
void coord_txn_fence(coord_txn_t *t, coord_t *c);
void coord_txn_cmp_mod(coord_txn_t *t, const char *key, int64_t mod_rev);
void coord_txn_put(coord_txn_t *t, const char *key, const char *value);
/* Put the job record at P jobs/<id>. */
void coord_txn_put_job(coord_txn_t *t, coord_t *c, const gp_jobrec_t *rec);
void coord_txn_del(coord_txn_t *t, const char *key);
int coord_txn_ops(const coord_txn_t *t);

/* Run it now: 0 and *succeeded, or -1 (transport, timeout...). */
int coord_txn_run(coord_txn_t *t, coord_t *c, int *succeeded, gp_err_t *err);
/* Queue it in a batch; returns its index or -1. */
int coord_txn_add(coord_txn_t *t, gp_etcd_batch_t *b, gp_err_t *err);

/* A job's record from the cache (its JSON), with the mod revision the
 * cache saw; -1 when the cache has no readable record. */
int coord_job_record(coord_t *c, const char *id, gp_jobrec_t *rec, int64_t *mod_rev);

/* A job lost its allocation (its node vanished, or it was preempted):
 * record why and, when it should run again, make it pending.  Returns 1
 * when it is to be queued again (the caller puts its queue key). */
int coord_requeue(gp_jobrec_t *rec, gp_job_state_t why, const char *reason, int64_t now_ms);

#endif
