#include "txnbuild.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

struct gp_txnb {
    gp_etcd_cmp_t cmp[GP_TXN_MAX_OPS];
    gp_etcd_op_t ops[GP_TXN_MAX_OPS];
    gp_etcd_op_t fail[GP_TXN_MAX_OPS];   /* the failure branch: ranges */
    int ncmp, nops, nfail;
    char *strings[5 * GP_TXN_MAX_OPS];
    int nstrings;
    int broken;
};

gp_txnb_t *gp_txnb_new(void)
{
    return calloc(1, sizeof(gp_txnb_t));
}

void gp_txnb_reset(gp_txnb_t *t)
{
    for (int i = 0; i < t->nstrings; i++)
        free(t->strings[i]);
    t->nstrings = t->ncmp = t->nops = t->nfail = t->broken = 0;
}

void gp_txnb_destroy(gp_txnb_t **t_p)
{
    if (t_p == NULL || *t_p == NULL)
        return;
    gp_txnb_reset(*t_p);
    free(*t_p);
    *t_p = NULL;
}

static const char *s_keep(gp_txnb_t *t, const char *s)
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

static gp_etcd_op_t *s_op(gp_txnb_t *t)
{
    if (t->nops == GP_TXN_MAX_OPS) {
        t->broken = 1;
        return NULL;
    }
    gp_etcd_op_t *op = &t->ops[t->nops++];
    memset(op, 0, sizeof *op);
    return op;
}

void gp_txnb_cmp(gp_txnb_t *t, const char *key, gp_etcd_cmp_target_t target, int64_t number)
{
    if (t->ncmp == GP_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    t->cmp[t->ncmp++] = (gp_etcd_cmp_t){ .key = s_keep(t, key), .target = target,
                                         .result = GP_ETCD_CMP_EQUAL, .number = number };
}

void gp_txnb_cmp_prefix_below(gp_txnb_t *t, const char *prefix, gp_etcd_cmp_target_t target,
                              int64_t bound)
{
    if (t->ncmp == GP_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    char end[GP_TXN_KEY_MAX];
    size_t n = strlen(prefix);
    if (n == 0 || n >= sizeof end) {
        t->broken = 1;
        return;
    }
    n = gp_etcd_prefix_end(prefix, n, end);
    end[n] = '\0';
    t->cmp[t->ncmp++] = (gp_etcd_cmp_t){ .key = s_keep(t, prefix), .target = target,
                                         .result = GP_ETCD_CMP_LESS, .number = bound,
                                         .range_end = s_keep(t, end) };
}

void gp_txnb_put(gp_txnb_t *t, const char *key, const char *value)
{
    gp_etcd_op_t *op = s_op(t);
    if (op == NULL)
        return;
    op->type = GP_ETCD_OP_PUT;
    op->key = s_keep(t, key);
    if (value == NULL)
        t->broken = 1;   /* a value that could not be made: no empty record */
    op->value = s_keep(t, value);
    op->value_len = op->value ? strlen(op->value) : 0;
}

void gp_txnb_del(gp_txnb_t *t, const char *key)
{
    gp_etcd_op_t *op = s_op(t);
    if (op == NULL)
        return;
    op->type = GP_ETCD_OP_DELETE;
    op->key = s_keep(t, key);
}

void gp_txnb_range_flags(gp_txnb_t *t, const char *key, unsigned flags)
{
    gp_etcd_op_t *op = s_op(t);
    if (op == NULL)
        return;
    op->type = GP_ETCD_OP_RANGE;
    op->key = s_keep(t, key);
    op->flags = flags;
}

void gp_txnb_range(gp_txnb_t *t, const char *key)
{
    gp_txnb_range_flags(t, key, 0);
}

void gp_txnb_fail_range(gp_txnb_t *t, const char *key)
{
    if (t->nfail == GP_TXN_MAX_OPS) {
        t->broken = 1;
        return;
    }
    gp_etcd_op_t *op = &t->fail[t->nfail++];
    memset(op, 0, sizeof *op);
    op->type = GP_ETCD_OP_RANGE;
    op->key = s_keep(t, key);
}

int gp_txnb_ops(const gp_txnb_t *t) { return t->nops; }
int gp_txnb_cmps(const gp_txnb_t *t) { return t->ncmp; }

int gp_txnb_run(gp_txnb_t *t, gp_etcd_t *etcd, gp_etcd_result_t *res, gp_err_t *err)
{
    if (t->broken)
        return gp_err_set(err, GP_ERR_INVALID, "transaction too large or out of memory");
    gp_etcd_txn_t txn = { t->cmp, (size_t)t->ncmp, t->ops, (size_t)t->nops, t->fail,
                          (size_t)t->nfail };
    return gp_etcd_txn(etcd, &txn, res, err);
}

int gp_txnb_add(gp_txnb_t *t, gp_etcd_batch_t *b, gp_err_t *err)
{
    if (t->broken)
        return gp_err_set(err, GP_ERR_INVALID, "transaction too large or out of memory");
    gp_etcd_txn_t txn = { t->cmp, (size_t)t->ncmp, t->ops, (size_t)t->nops, t->fail,
                          (size_t)t->nfail };
    return gp_etcd_batch_add_txn(b, &txn, err);
}
