/*
 * notready.c - nodes whose agent is gone stay known, NotReady, for
 * node-retention.
 *
 * A node's record lives on its agent's lease and vanishes with it.  The
 * pool still knows the node: the API lists it as NotReady with since when
 * (GET /v1/nodes, /v1/regions), and intake still counts it among the nodes
 * that could hold a job (a job that fits only a node whose agent is
 * restarting is accepted and waits; cache.c's capacity engine keeps it).
 *
 *   every coordinator  marks a node NotReady when its record is deleted
 *                      (cache.c: gone_ms, the last record kept) and forgets
 *                      it node-retention later, unless etcd remembers it
 *   the region's leader  writes P notready/<region>/<node>
 *                      {"since_ms": T, "node": <last record>} for each of
 *                      its nodes gone, in a transaction fenced on its
 *                      leadership and on the node record being absent, so
 *                      that coordinators started later, or after a
 *                      re-listing, know it too; deletes the key when the
 *                      node returns or node-retention has passed since T
 *
 * The key is what every coordinator goes by once it exists: its put makes
 * the node NotReady since T (with the record it holds), its delete makes a
 * node without a record forgotten (cache.c: coord_cache_forget_node).
 * Once a second is enough: nothing here is urgent.  The leader's writes
 * go in the background (after an agent's lease expired, a thousand nodes
 * may want theirs at once); the next pass waits until they landed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_TICK_MS 1000
#define S_WRITES_PER_TICK 64

void coord_notready_apply(coord_t *c, const char *region, const char *node, const gp_etcd_kv_t *kv)
{
    coord_node_t *n = coord_cache_node(c, node, kv != NULL);
    if (n == NULL)
        return;
    if (kv == NULL) {
        n->notready_key = 0;
        if (!n->present)
            coord_cache_forget_node(c, n);
        return;
    }
    n->notready_key = 1;
    if (n->present)
        return;   /* back already: the leader deletes the key */
    json_t *o = json_loadb(kv->value, kv->value_len, 0, NULL);
    json_t *rec = json_object_get(o, "node");
    gp_node_t gn;
    if (o == NULL || gp_node_from_json(rec, &gn, NULL) < 0 || strcmp(gn.name, node) != 0) {
        gp_metric_inc(c->m.bad_records[COORD_RECORD_NODE]);
        json_decref(o);
        return;
    }
    gp_strlcpy(n->region, region, sizeof n->region);
    n->gone_ms = json_integer_value(json_object_get(o, "since_ms"));
    json_decref(n->record);
    n->record = json_incref(rec);
    coord_cache_capacity_keep(c, &gn);
    json_decref(o);
}

/* The leader's writes for one of its region's nodes, queued in b. */
static int s_leader_write(coord_t *c, gp_etcd_batch_t *b, coord_node_t *n, int64_t now)
{
    char key[GP_KEY_MAX], nkey[GP_KEY_MAX];
    gp_key_notready(key, c->cfg.prefix, n->region, n->name);
    int expired = n->gone_ms && now - n->gone_ms >= c->cfg.node_retention_ms;
    if (n->notready_key && (n->present || expired)) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_DELETE, .key = key };
        if (expired)
            gp_log_info("NotReady node forgotten node=%s region=%s", n->name, n->region);
        return gp_etcd_batch_add(b, &op, NULL) < 0 ? -1 : 1;
    }
    if (n->present || n->notready_key || n->record == NULL || n->gone_ms == 0 || expired)
        return 0;
    json_t *o = json_pack("{s:I,s:O}", "since_ms", (json_int_t)n->gone_ms, "node", n->record);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    gp_txnb_t *t = text ? gp_txnb_new() : NULL;
    int rc = -1;
    if (t) {
        coord_txn_fence(t, c);
        gp_txnb_cmp(t, gp_key_node(nkey, c->cfg.prefix, n->region, n->name), GP_ETCD_CMP_CREATE, 0);
        gp_txnb_put(t, key, text);
        rc = gp_txnb_add(t, b, NULL) < 0 ? -1 : 1;
        gp_log_info("node NotReady node=%s region=%s since_ms=%lld", n->name, n->region,
                    (long long)n->gone_ms);
    }
    gp_txnb_destroy(&t);
    free(text);
    return rc;
}

/* The leader's writes landed: the watch brings what they changed. */
static void s_written(gp_etcd_batch_t *b, void *arg)
{
    coord_t *c = arg;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
        const gp_etcd_result_t *res;
        gp_err_t err;
        if (gp_etcd_batch_result(b, i, &res, &err) < 0) {
            coord_metrics_etcd_error(&c->m, "notready", &err);
            break;
        }
    }
    gp_etcd_batch_destroy(&c->notready_writes);
}

void coord_notready_tick(coord_t *c)
{
    int64_t mono = gp_mono_ms();
    if (mono < c->notready_next_ms || !coord_cache_listed(c))
        return;
    c->notready_next_ms = mono + S_TICK_MS;
    int64_t now = gp_wall_ms();
    int leader = coord_is_leader(c) && c->notready_writes == NULL, queued = 0;
    gp_etcd_batch_t *b = leader ? gp_etcd_batch_new(c->etcd) : NULL;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (b && queued < S_WRITES_PER_TICK && !strcmp(n->region, c->cfg.region) &&
            s_leader_write(c, b, n, now) > 0)
            queued++;
        /* Known only here (no key): forgotten after node-retention. */
        if (!n->present && !n->notready_key && n->gone_ms &&
            now - n->gone_ms >= c->cfg.node_retention_ms)
            coord_cache_forget_node(c, n);
    }
    gp_err_t err;
    c->notready_writes = b;
    if (queued == 0 || gp_etcd_batch_start(b, 64, s_written, c, &err) < 0) {
        if (queued > 0)
            coord_metrics_etcd_error(&c->m, "notready", &err);
        gp_etcd_batch_destroy(&c->notready_writes);
    }
}

void coord_notready_stop(coord_t *c)
{
    gp_etcd_batch_destroy(&c->notready_writes);
}
