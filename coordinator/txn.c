#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

#include "banned.h"

void coord_txn_fence(gp_txnb_t *t, coord_t *c)
{
    char key[GP_KEY_MAX];
    gp_txnb_cmp(t, gp_key_leader(key, c->cfg.prefix, c->cfg.region), GP_ETCD_CMP_CREATE,
                coord_leader_fence(c));
}

void coord_txn_node_fence(gp_txnb_t *t, coord_t *c, const char *node, int64_t fence)
{
    char key[GP_KEY_MAX];
    gp_txnb_cmp_prefix_below(t, gp_key_alloc(key, c->cfg.prefix, node, NULL), GP_ETCD_CMP_CREATE,
                             fence + 1);
}

int coord_txn_put_alloc(gp_txnb_t *t, coord_t *c, const gp_alloc_t *al)
{
    char key[GP_KEY_MAX];
    gp_ebuf_t text = { 0 };
    if (gp_alloc_dump_buf(al, &text) < 0) {
        gp_ebuf_free(&text);
        return -1;
    }
    gp_txnb_put(t, gp_key_alloc(key, c->cfg.prefix, al->node, al->job), text.p);
    gp_ebuf_free(&text);
    return 0;
}

void coord_txn_put_job(gp_txnb_t *t, coord_t *c, const gp_jobrec_t *rec)
{
    char key[GP_KEY_MAX];
    char *text = gp_jobrec_dump(rec);
    gp_txnb_put(t, gp_key_job(key, c->cfg.prefix, rec->spec.id), text);
    free(text);
}

int coord_txn_run(gp_txnb_t *t, coord_t *c, int *succeeded, int64_t *revision, gp_err_t *err)
{
    gp_etcd_result_t res;
    if (gp_txnb_run(t, c->etcd, &res, err) < 0)
        return -1;
    *succeeded = res.succeeded;
    *revision = res.revision;
    gp_etcd_result_free(&res);
    return 0;
}

int coord_job_record(coord_t *c, const char *id, gp_jobrec_t *rec, int64_t *mod_rev)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL || j->raw == NULL || gp_jobrec_from_json_str(j->raw, j->raw_len, rec, NULL) < 0)
        return -1;
    if (mod_rev)
        *mod_rev = j->mod_rev;
    return 0;
}

int coord_requeue(gp_jobrec_t *rec, gp_job_state_t why, const char *reason, int64_t now_ms)
{
    if (rec->state == GP_JOB_PENDING)
        rec->attempts++;   /* placed, never reported running */
    gp_jobrec_set_state(rec, why, NULL, reason, now_ms);
    int again = why == GP_JOB_PREEMPTED || gp_jobrec_restarts_again(rec, 1);
    if (again)
        gp_jobrec_set_state(rec, GP_JOB_PENDING, "", why == GP_JOB_PREEMPTED
                                                       ? "requeued after preemption"
                                                       : "requeued after its node was lost",
                            now_ms);
    return again;
}

int coord_set_reason(coord_t *c, gp_etcd_batch_t *b, coord_job_t *j, const char *reason)
{
    int idx = -1;
    uint64_t h = gp_hash_str(reason);
    if (b == NULL || j == NULL || reason[0] == '\0' || j->last_reason_hash == h ||
        j->reason_hash == h)
        return -1;
    gp_jobrec_t rec;
    int64_t mod;
    if (coord_job_record(c, j->id, &rec, &mod) < 0)
        return -1;
    gp_strlcpy(rec.reason, reason, sizeof rec.reason);
    rec.updated_ms = gp_wall_ms();
    gp_txnb_t *t = gp_txnb_new();
    char key[GP_KEY_MAX];
    if (t) {
        gp_txnb_cmp(t, gp_key_job(key, c->cfg.prefix, j->id), GP_ETCD_CMP_MOD, mod);
        coord_txn_put_job(t, c, &rec);
        if ((idx = gp_txnb_add(t, b, NULL)) >= 0)
            j->last_reason_hash = h;
        gp_txnb_destroy(&t);
    }
    gp_jobrec_clear(&rec);
    return idx;
}

void coord_reasons_done(coord_t *c, gp_etcd_batch_t *b, char (*ids)[GP_NAME_LEN], const int *idx,
                        int n)
{
    for (int i = 0; i < n; i++) {
        const gp_etcd_result_t *res;
        coord_job_t *j = coord_cache_job(c, ids[i]);
        if (j && idx[i] >= 0 && gp_etcd_batch_result(b, (size_t)idx[i], &res, NULL) == 0 &&
            res->succeeded && res->revision > j->mod_rev)
            j->mod_rev = res->revision;   /* our write: known before the watch says so */
    }
}
