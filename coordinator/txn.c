#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

#include "banned.h"

struct coord_txn {
    gp_etcd_cmp_t cmp[COORD_TXN_MAX_OPS];
    gp_etcd_op_t ops[COORD_TXN_MAX_OPS];
    int ncmp, nops;
    char *strings[4 * COORD_TXN_MAX_OPS];
    int nstrings;
    int broken;   /* out of memory or over the limit */
};

coord_txn_t *coord_txn_new(void)
{
    return calloc(1, sizeof(coord_txn_t));
}

void coord_txn_destroy(coord_txn_t **t_p)
{
    if (t_p == NULL || *t_p == NULL)
        return;
    for (int i = 0; i < (*t_p)->nstrings; i++)
        free((*t_p)->strings[i]);
    free(*t_p);
    *t_p = NULL;
}

static const char *s_keep(coord_txn_t *t, const char *s)
{
    if (t->nstrings == (int)GP_ARRAY_LEN(t->strings)) {
        t->broken = 1;
        return NULL;
    }
    char *copy = strdup(s ? s : "");
    if (copy == NULL)
        t->broken = 1;
    else
        t->strings[t->nstrings++] = copy;
    return copy;
}

void coord_txn_fence(coord_txn_t *t, coord_t *c)
{
    char key[GP_KEY_MAX];
    gp_key_leader(key, c->cfg.prefix, c->cfg.region);
    if (t->ncmp == COORD_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    t->cmp[t->ncmp++] = (gp_etcd_cmp_t){ .key = s_keep(t, key), .target = GP_ETCD_CMP_CREATE,
                                         .result = GP_ETCD_CMP_EQUAL, .number = c->leader_rev };
}

void coord_txn_cmp_mod(coord_txn_t *t, const char *key, int64_t mod_rev)
{
    if (t->ncmp == COORD_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    t->cmp[t->ncmp++] = (gp_etcd_cmp_t){ .key = s_keep(t, key), .target = GP_ETCD_CMP_MOD,
                                         .result = GP_ETCD_CMP_EQUAL, .number = mod_rev };
}

void coord_txn_put(coord_txn_t *t, const char *key, const char *value)
{
    if (t->nops == COORD_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    const char *v = s_keep(t, value);
    t->ops[t->nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_PUT, .key = s_keep(t, key), .value = v,
                                        .value_len = v ? strlen(v) : 0 };
}

void coord_txn_put_job(coord_txn_t *t, coord_t *c, const gp_jobrec_t *rec)
{
    char key[GP_KEY_MAX];
    char *text = gp_jobrec_dump(rec);
    if (text == NULL) {
        t->broken = 1;
        return;
    }
    coord_txn_put(t, gp_key_job(key, c->cfg.prefix, rec->spec.id), text);
    free(text);
}

void coord_txn_del(coord_txn_t *t, const char *key)
{
    if (t->nops == COORD_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    t->ops[t->nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_DELETE, .key = s_keep(t, key) };
}

int coord_txn_ops(const coord_txn_t *t) { return t->nops; }

int coord_txn_run(coord_txn_t *t, coord_t *c, int *succeeded, gp_err_t *err)
{
    if (t->broken)
        return gp_err_set(err, GP_ERR_INVALID, "transaction too large or out of memory");
    gp_etcd_txn_t txn = { t->cmp, (size_t)t->ncmp, t->ops, (size_t)t->nops, NULL, 0 };
    gp_etcd_result_t res;
    if (gp_etcd_txn(c->etcd, &txn, &res, err) < 0)
        return -1;
    *succeeded = res.succeeded;
    gp_etcd_result_free(&res);
    return 0;
}

int coord_txn_add(coord_txn_t *t, gp_etcd_batch_t *b, gp_err_t *err)
{
    if (t->broken)
        return gp_err_set(err, GP_ERR_INVALID, "transaction too large or out of memory");
    gp_etcd_txn_t txn = { t->cmp, (size_t)t->ncmp, t->ops, (size_t)t->nops, NULL, 0 };
    return gp_etcd_batch_add_txn(b, &txn, err);
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
    gp_jobrec_set_state(rec, why, NULL, reason, now_ms);
    int again = why == GP_JOB_PREEMPTED ||
                ((rec->restart == GP_RESTART_ALWAYS || rec->restart == GP_RESTART_ON_FAILURE) &&
                 rec->attempts <= rec->max_restarts);
    if (again)
        gp_jobrec_set_state(rec, GP_JOB_PENDING, "", why == GP_JOB_PREEMPTED
                                                       ? "requeued after preemption"
                                                       : "requeued after its node was lost",
                            now_ms);
    return again;
}

void coord_set_reason(coord_t *c, gp_etcd_batch_t *b, coord_job_t *j, const char *reason)
{
    if (b == NULL || j == NULL || reason[0] == '\0' || !strcmp(j->last_reason, reason) ||
        !strcmp(j->reason, reason))
        return;
    gp_jobrec_t rec;
    int64_t mod;
    if (coord_job_record(c, j->id, &rec, &mod) < 0)
        return;
    gp_strlcpy(rec.reason, reason, sizeof rec.reason);
    rec.updated_ms = gp_wall_ms();
    coord_txn_t *t = coord_txn_new();
    char key[GP_KEY_MAX];
    if (t) {
        coord_txn_cmp_mod(t, gp_key_job(key, c->cfg.prefix, j->id), mod);
        coord_txn_put_job(t, c, &rec);
        if (coord_txn_add(t, b, NULL) >= 0)
            gp_strlcpy(j->last_reason, reason, sizeof j->last_reason);
        coord_txn_destroy(&t);
    }
    gp_jobrec_clear(&rec);
}
