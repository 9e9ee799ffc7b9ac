/*
 * txnbuild.h - an etcd transaction under construction.
 *
 * Collects compares and operations, copying every key and value, so that
 * callers can add to a transaction piece by piece (many jobs' updates in
 * one transaction, say) without managing buffers:
 *
 *     gp_txnb_t *t = gp_txnb_new();
 *     gp_txnb_cmp(t, key, GP_ETCD_CMP_MOD, cached_mod_rev);
 *     gp_txnb_put(t, key, value);
 *     gp_txnb_del(t, other_key);
 *     gp_txnb_add(t, batch, &err);      // or gp_txnb_run(t, etcd, &res, &err)
 *     gp_txnb_destroy(&t);
 *
 * etcd accepts at most 128 operations and 128 compares per transaction
 * (--max-txn-ops); gp_txnb_ops() and gp_txnb_cmps() let the caller stay
 * under that.  Overflowing it, running out of memory, or a put of a NULL
 * value (one that could not be made) makes the transaction unusable (add
 * and run fail), never half-built.  The builder owns its copies; reset
 * empties it for reuse.
 */
#ifndef GP_TXNBUILD_H
#define GP_TXNBUILD_H

#include "etcd.h"

#define GP_TXN_MAX_OPS 128
#define GP_TXN_KEY_MAX 1024

typedef struct gp_txnb gp_txnb_t;

gp_txnb_t *gp_txnb_new(void);
void gp_txnb_destroy(gp_txnb_t **t_p);
void gp_txnb_reset(gp_txnb_t *t);

/* "target(key) == number" (VERSION, CREATE, MOD or LEASE). */
void gp_txnb_cmp(gp_txnb_t *t, const char *key, gp_etcd_cmp_target_t target, int64_t number);
/* "target(k) < bound" for every key k under prefix (CREATE or MOD); holds
 * for an empty range.  "No key under prefix was created after revision R"
 * is gp_txnb_cmp_prefix_below(t, prefix, GP_ETCD_CMP_CREATE, R + 1). */
void gp_txnb_cmp_prefix_below(gp_txnb_t *t, const char *prefix, gp_etcd_cmp_target_t target,
                              int64_t bound);
void gp_txnb_put(gp_txnb_t *t, const char *key, const char *value);
void gp_txnb_del(gp_txnb_t *t, const char *key);
void gp_txnb_range(gp_txnb_t *t, const char *key);
/* The same with op flags (GP_ETCD_SERIALIZABLE: a transaction of
 * serializable ranges alone is answered by the member asked, from its own
 * copy, without a round trip to the raft leader). */
void gp_txnb_range_flags(gp_txnb_t *t, const char *key, unsigned flags);
/* A range in the failure branch (run when a compare fails). */
void gp_txnb_fail_range(gp_txnb_t *t, const char *key);
int gp_txnb_ops(const gp_txnb_t *t);
int gp_txnb_cmps(const gp_txnb_t *t);

/* Run now (*res filled on success; the caller frees it), or queue in a
 * batch (returns the index, or -1). */
int gp_txnb_run(gp_txnb_t *t, gp_etcd_t *etcd, gp_etcd_result_t *res, gp_err_t *err);
int gp_txnb_add(gp_txnb_t *t, gp_etcd_batch_t *b, gp_err_t *err);

#endif
