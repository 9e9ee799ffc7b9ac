/*
 * drain.c - node maintenance: cordons and drains.
 *
 * A cordon (P cordons/<node>: {"node", "reason", "by", "since_ms"}) takes a
 * node out of placement: the cache gives it to the engine as unhealthy
 * (cache.c), so no bid round, gang or preemption plans anything on it, and
 * its agent refuses calls for bids for it.  The key has no lease: it
 * survives restarts of every daemon and of etcd, until an uncordon deletes
 * it.  What already runs on the node stays.
 *
 * A drain (P drains/<node>) empties a cordoned node.  It is a record, not a
 * conversation: the REST call stores it (cordoning the node in the same
 * transaction) and the leader of the node's region carries it out, so it
 * goes on when the CLI that asked exits and across a failover (the next
 * leader reads the same record from its cache and continues).  Twice a
 * second the leader walks every drain of its region that is "draining":
 *
 *   1. each job on the node whose allocation is not marked yet:
 *        restart never   -> waits ("restart: never"), unless the drain has
 *                           force: then it is cancelled (record cancelled,
 *                           allocation deleted, as DELETE /v1/jobs does)
 *        restartable     -> unless a disruption budget is spent (below),
 *                           its allocation is rewritten with "stop": true
 *                           (and the drain's grace); the agent stops the
 *                           job (SIGTERM, SIGKILL after the grace: the
 *                           drain's, else the job's grace_s, else the
 *                           agent's stop-grace) and, once the process is
 *                           gone, requeues the record and deletes the
 *                           allocation in one fenced transaction.  The job
 *                           is placed elsewhere: the node is cordoned.
 *   2. the record says what remains and why, and when each job's stop began
 *      and ended ("stopped"); "done" when the node holds no allocation,
 *      "timed out" at started_ms + timeout_s with what remains.
 * Every write is fenced on the leader key (a deposed leader writes nothing)
 * and on the revision of what it rewrites (the drain record, the job record
 * and the allocation), so a drain step is never applied twice or against a
 * state the leader did not see.
 *
 * Disruption budgets (quota.c): a job is not stopped while as many jobs of
 * its team as the team's "disruption_budget", or as many members of its
 * gang as the team's "gang_disruption_budget", are being stopped anywhere
 * in the pool (allocations marked "stop").  A stopped member leaves the
 * count when its agent has requeued it.
 *
 * Skew: the "stop" mark is store schema 2.  While the pool writes schema 1
 * (P schema, README "Versions and upgrades": some agent of the previous
 * release may still run), a restartable job is instead released the way a
 * preemption releases its victims: the allocation deleted and the record
 * requeued in one transaction; the agent stops it with its stop-grace, and
 * no budget can be observed (the stop is not reported).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_PASS_MS 500

static int64_t s_int(json_t *o, const char *k, int64_t def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char *s_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* -------------------------------------------------------- the leader's pass */

typedef struct {
    gp_strmap_t *team, *gang;   /* "team" / "team/gang" -> count (as a pointer-sized int) */
} s_counts_t;

static int s_count(gp_strmap_t *m, const char *k)
{
    return (int)(intptr_t)gp_strmap_get(m, k);
}

static void s_bump(gp_strmap_t *m, const char *k)
{
    gp_strmap_put(m, k, (void *)(intptr_t)(s_count(m, k) + 1));
}

/* The jobs being stopped now, per team and per gang. */
static void s_counts(coord_t *c, s_counts_t *n)
{
    n->team = gp_strmap_new();
    n->gang = gp_strmap_new();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ALLOCS); it.key && n->team && n->gang;
         it = coord_cache_next(c, it)) {
        const gp_alloc_t *al = it.value;
        coord_job_t *j = al->stop ? coord_cache_job(c, al->job) : NULL;
        if (j == NULL)
            continue;
        s_bump(n->team, j->owner);
        if (j->gang[0]) {
            char k[2 * GP_NAME_LEN];
            snprintf(k, sizeof k, "%s/%s", j->owner, j->gang);
            s_bump(n->gang, k);
        }
    }
}

/* Why the job may not be stopped now (a budget is spent), or NULL. */
static const char *s_budget(coord_t *c, s_counts_t *n, const coord_job_t *j, char *why, size_t size)
{
    const coord_quota_t *q = coord_cache_quota(c, j->owner);
    if (q == NULL)
        return NULL;
    if (q->disruption_budget > 0 && s_count(n->team, j->owner) >= q->disruption_budget) {
        snprintf(why, size, "disruption budget of team %s: %d of its jobs being stopped", j->owner,
                 s_count(n->team, j->owner));
        return why;
    }
    char k[2 * GP_NAME_LEN];
    snprintf(k, sizeof k, "%s/%s", j->owner, j->gang);
    if (j->gang[0] && q->gang_disruption_budget > 0 &&
        s_count(n->gang, k) >= q->gang_disruption_budget) {
        snprintf(why, size, "disruption budget of gang %s: %d of its members being stopped",
                 j->gang, s_count(n->gang, k));
        return why;
    }
    return NULL;
}

/* Mark the allocation "stop" (schema 2), fenced on the leader key, the
 * allocation's and the record's revisions.  1 when committed. */
static int s_mark_stop(coord_t *c, const char *node, const char *job, int64_t rec_mod, int grace_s)
{
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX];
    gp_key_alloc(akey, c->cfg.prefix, node, job);
    gp_etcd_result_t res;
    gp_err_t err;
    gp_alloc_t al;
    int64_t amod = 0;
    if (gp_etcd_get(c->etcd, akey, 0, &res, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "drain", &err);
        return 0;
    }
    int have = res.n_kvs == 1 && gp_alloc_from_json_str(res.kvs[0].value, &al, NULL) == 0;
    if (have)
        amod = res.kvs[0].mod_revision;
    gp_etcd_result_free(&res);
    if (!have)
        return 0;
    al.stop = true;
    al.stop_grace_s = grace_s;
    gp_txnb_t *t = gp_txnb_new();
    int ok = 0;
    int64_t rev;
    if (t == NULL)
        return 0;
    coord_txn_fence(t, c);
    gp_txnb_cmp(t, akey, GP_ETCD_CMP_MOD, amod);
    gp_txnb_cmp(t, gp_key_job(jkey, c->cfg.prefix, job), GP_ETCD_CMP_MOD, rec_mod);
    if (coord_txn_put_alloc(t, c, &al) < 0 || coord_txn_run(t, c, &ok, &rev, &err) < 0)
        ok = 0;
    gp_txnb_destroy(&t);
    return ok;
}

/* Release the allocation and rewrite the record (cancelled, or requeued
 * when the pool is at schema 1), fenced like a preemption's victims. */
static int s_release(coord_t *c, const char *node, gp_jobrec_t *rec, int64_t rec_mod, int cancel)
{
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX], why[200];
    int64_t now = gp_wall_ms();
    if (cancel) {
        snprintf(why, sizeof why, "cancelled by the drain of node %s (--force)", node);
        gp_jobrec_set_state(rec, GP_JOB_CANCELLED, NULL, why, now);
    } else {
        snprintf(why, sizeof why, "stopped by the drain of node %s; requeued", node);
        gp_jobrec_set_state(rec, GP_JOB_PENDING, "", why, now);
    }
    gp_txnb_t *t = gp_txnb_new();
    int ok = 0;
    int64_t rev;
    gp_err_t err;
    if (t == NULL)
        return 0;
    coord_txn_fence(t, c);
    gp_txnb_cmp(t, gp_key_job(jkey, c->cfg.prefix, rec->spec.id), GP_ETCD_CMP_MOD, rec_mod);
    gp_txnb_del(t, gp_key_alloc(akey, c->cfg.prefix, node, rec->spec.id));
    coord_txn_put_job(t, c, rec);
    if (coord_txn_run(t, c, &ok, &rev, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "drain", &err);
        ok = 0;
    }
    gp_txnb_destroy(&t);
    if (ok && cancel)
        gp_metric_inc(c->m.cancellations);
    return ok;
}

/* The "stopped" entry of a job in the record, or NULL. */
static json_t *s_stopped(json_t *rec, const char *job)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rec, "stopped"), i, e)
        if (!strcmp(s_str(e, "job"), job))
            return e;
    return NULL;
}

static void s_note_stopped(json_t *rec, const char *job, const char *how, int64_t now)
{
    json_t *list = json_object_get(rec, "stopped");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(rec, "stopped", list);
    }
    json_t *e = s_stopped(rec, job);
    if (e == NULL)
        json_array_append_new(list, json_pack("{s:s,s:s,s:I}", "job", job, "how", how, "since_ms",
                                              (json_int_t)now));
    else
        json_object_set_new(e, "how", json_string(how));
}

/* One drain's pass over the allocations of its node. */
typedef struct {
    coord_t *c;
    const char *node;
    json_t *rec, *remaining;
    s_counts_t *counts;
    int64_t now;
    int force, grace, on_node;
} s_pass_t;

/* What the drain does about one allocation on its node, and why it stays
 * (its writes are synchronous and leave the cache as it is: the watch
 * brings them after the pass). */
static void s_pass_alloc(const gp_alloc_t *al, void *arg)
{
    s_pass_t *p = arg;
    coord_t *c = p->c;
    p->on_node++;
    char why[200];
    coord_job_t *j = coord_cache_job(c, al->job);
    gp_jobrec_t jr;
    int64_t mod;
    if (al->stop) {
        snprintf(why, sizeof why, "being stopped");
    } else if (j == NULL || coord_job_record(c, al->job, &jr, &mod) < 0) {
        snprintf(why, sizeof why, "no readable job record (released by recovery)");
    } else {
        const char *spent = NULL;
        if (jr.restart == GP_RESTART_NEVER && !p->force) {
            snprintf(why, sizeof why, "restart: never (--force cancels it)");
        } else if (jr.restart == GP_RESTART_NEVER) {
            if (s_release(c, p->node, &jr, mod, 1)) {
                s_note_stopped(p->rec, al->job, "cancelled", p->now);
                gp_log_info("drain cancelled job=%s node=%s", al->job, p->node);
                snprintf(why, sizeof why, "cancelled");
            } else {
                snprintf(why, sizeof why, "cancel did not commit; retrying");
            }
        } else if ((spent = s_budget(c, p->counts, j, why, sizeof why)) != NULL) {
            /* why says which budget */
        } else if (coord_cache_schema(c, NULL) < 2) {
            if (s_release(c, p->node, &jr, mod, 0)) {
                s_note_stopped(p->rec, al->job, "released", p->now);
                gp_log_info("drain released job=%s node=%s (schema 1)", al->job, p->node);
                snprintf(why, sizeof why, "released");
            } else {
                snprintf(why, sizeof why, "release did not commit; retrying");
            }
        } else if (s_mark_stop(c, p->node, al->job, mod, p->grace)) {
            s_bump(p->counts->team, j->owner);
            if (j->gang[0]) {
                char k[2 * GP_NAME_LEN];
                snprintf(k, sizeof k, "%s/%s", j->owner, j->gang);
                s_bump(p->counts->gang, k);
            }
            s_note_stopped(p->rec, al->job, "stopping", p->now);
            gp_log_info("drain stopping job=%s node=%s", al->job, p->node);
            snprintf(why, sizeof why, "being stopped");
        } else {
            snprintf(why, sizeof why, "stop did not commit; retrying");
        }
        gp_jobrec_clear(&jr);
    }
    json_array_append_new(p->remaining, json_pack("{s:s,s:s}", "job", al->job, "why", why));
}

/* One pass over one drain; returns the record to write (new reference) or
 * NULL when nothing changed. */
static json_t *s_pass(coord_t *c, const char *node, const coord_drain_t *d, s_counts_t *counts)
{
    json_t *rec = json_deep_copy(d->rec);
    if (rec == NULL)
        return NULL;
    int64_t now = gp_wall_ms();
    json_t *remaining = json_array();
    s_pass_t p = { c, node, rec, remaining, counts, now, json_is_true(json_object_get(rec, "force")),
                   (int)s_int(rec, "grace_s", -1), 0 };
    coord_cache_each_alloc_on(c, node, s_pass_alloc, &p);
    int on_node = p.on_node;
    /* Stops that ended: the job left the node. */
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rec, "stopped"), i, e) {
        const gp_alloc_t *al = coord_cache_alloc(c, s_str(e, "job"));
        if (json_object_get(e, "ended_ms") || (al && !strcmp(al->node, node)))
            continue;
        coord_job_t *j = coord_cache_job(c, s_str(e, "job"));
        json_object_set_new(e, "ended_ms", json_integer(now));
        json_object_set_new(e, "state", json_string(j ? gp_job_state_name(j->state) : "gone"));
    }
    json_object_set_new(rec, "remaining", remaining);
    int64_t deadline = s_int(rec, "started_ms", now) + s_int(rec, "timeout_s", 600) * 1000;
    if (on_node == 0) {
        json_object_set_new(rec, "state", json_string("done"));
        json_object_set_new(rec, "ended_ms", json_integer(now));
        gp_log_info("drain done node=%s", node);
    } else if (now >= deadline) {
        json_object_set_new(rec, "state", json_string("timed out"));
        json_object_set_new(rec, "ended_ms", json_integer(now));
        gp_log_warn("drain timed out node=%s remaining=%d", node, on_node);
    }
    if (json_equal(rec, d->rec)) {
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "updated_ms", json_integer(now));
    return rec;
}

void coord_drain_tick(coord_t *c)
{
    int64_t mono = gp_mono_ms();
    if (mono < c->drain_next_ms || coord_cache_count(c, COORD_DRAINS) == 0 ||
        !coord_is_leader(c) || coord_store_full(c))
        return;
    c->drain_next_ms = mono + S_PASS_MS;
    s_counts_t counts;
    s_counts(c, &counts);
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_DRAINS);
         it.key && counts.team && counts.gang;
         it = coord_cache_next(c, it)) {
        const coord_drain_t *d = it.value;
        if (strcmp(s_str(d->rec, "state"), "draining") != 0 ||
            strcmp(s_str(d->rec, "region"), c->cfg.region) != 0)
            continue;
        json_t *rec = s_pass(c, it.key, d, &counts);
        char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        if (text == NULL)
            continue;
        char key[GP_KEY_MAX];
        gp_txnb_t *t = gp_txnb_new();
        int ok = 0;
        int64_t rev;
        gp_err_t err;
        if (t) {
            coord_txn_fence(t, c);
            gp_txnb_cmp(t, gp_key_drain(key, c->cfg.prefix, it.key), GP_ETCD_CMP_MOD, d->mod_rev);
            gp_txnb_put(t, key, text);
            if (coord_txn_run(t, c, &ok, &rev, &err) < 0)
                coord_metrics_etcd_error(&c->m, "drain", &err);
            gp_txnb_destroy(&t);
        }
        free(text);
    }
    gp_strmap_destroy(&counts.team);
    gp_strmap_destroy(&counts.gang);
}

/* ---------------------------------------------------------------- REST */

static int s_write(coord_t *c, gp_http_req_t *req, gp_etcd_op_t *ops, size_t nops)
{
    gp_etcd_txn_t txn = { NULL, 0, ops, nops, NULL, 0 };
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_txn(c->etcd, &txn, &res, &err) < 0) {
        coord_store_write_failed(c, &err);
        gp_http_respond_error(req, 503, "etcd: %s", err.msg);
        return -1;
    }
    gp_etcd_result_free(&res);
    return 0;
}

/* The body's JSON object ({} when empty); NULL when answered 400. */
static json_t *s_body(gp_http_req_t *req)
{
    size_t len;
    const char *body = gp_http_req_body(req, &len);
    if (len == 0)
        return json_object();
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        gp_http_respond_error(req, 400, "expected a JSON object");
        return NULL;
    }
    return o;
}

static json_t *s_cordon_record(coord_t *c, const char *node, const char *reason)
{
    return json_pack("{s:i,s:s,s:s,s:s,s:I}", "schema", 2, "node", node, "reason", reason, "by",
                     c->caller ? c->caller->name : "-", "since_ms", (json_int_t)gp_wall_ms());
}

/* PUT (cordon) / DELETE (uncordon, which also ends a drain) */
static void s_cordon_http(coord_t *c, gp_http_req_t *req, const char *node)
{
    char ckey[GP_KEY_MAX], dkey[GP_KEY_MAX];
    gp_key_cordon(ckey, c->cfg.prefix, node);
    gp_key_drain(dkey, c->cfg.prefix, node);
    if (!strcmp(gp_http_req_method(req), "DELETE")) {
        gp_etcd_op_t ops[2] = { { .type = GP_ETCD_OP_DELETE, .key = ckey },
                                { .type = GP_ETCD_OP_DELETE, .key = dkey } };
        if (s_write(c, req, ops, 2) == 0) {
            gp_log_info("uncordon node=%s by=%s", node, c->caller ? c->caller->name : "-");
            coord_respond_json(req, 200, json_pack("{s:s,s:b}", "node", node, "cordoned", 0));
        }
        return;
    }
    json_t *body = s_body(req);
    if (body == NULL)
        return;
    json_t *reason = json_object_get(body, "reason");
    if ((reason && !json_is_string(reason)) || json_object_size(body) > (reason ? 1u : 0u)) {
        gp_http_respond_error(req, 400, "expected {\"reason\": \"...\"}");
        json_decref(body);
        return;
    }
    json_t *rec = s_cordon_record(c, node, reason ? json_string_value(reason) : "");
    char *text = json_dumps(rec, JSON_COMPACT);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = ckey, .value = text,
                        .value_len = text ? strlen(text) : 0 };
    if (text && s_write(c, req, &op, 1) == 0) {
        gp_log_info("cordon node=%s by=%s", node, c->caller ? c->caller->name : "-");
        coord_respond_json(req, 200, json_incref(rec));
    }
    free(text);
    json_decref(rec);
    json_decref(body);
}

/* POST: start a drain (cordon included), or follow the one in progress;
 * GET: its record; DELETE: stop it (the node stays cordoned). */
static void s_drain_http(coord_t *c, gp_http_req_t *req, const char *node)
{
    const char *method = gp_http_req_method(req);
    char ckey[GP_KEY_MAX], dkey[GP_KEY_MAX];
    gp_key_cordon(ckey, c->cfg.prefix, node);
    gp_key_drain(dkey, c->cfg.prefix, node);
    const coord_drain_t *d = coord_cache_drain(c, node);
    if (!strcmp(method, "GET")) {
        if (d == NULL)
            gp_http_respond_error(req, 404, "no drain of node %s", node);
        else
            coord_respond_json(req, 200, json_incref(d->rec));
        return;
    }
    if (!strcmp(method, "DELETE")) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_DELETE, .key = dkey };
        if (s_write(c, req, &op, 1) == 0)
            coord_respond_json(req, 200, json_pack("{s:s,s:s}", "node", node, "state", "stopped"));
        return;
    }
    if (d && !strcmp(s_str(d->rec, "state"), "draining")) {
        coord_respond_json(req, 200, json_incref(d->rec));   /* in progress: follow it */
        return;
    }
    coord_node_t *n = coord_cache_node(c, node, 0);
    if (n == NULL || n->region[0] == '\0') {
        gp_http_respond_error(req, 404, "no such node %s", node);
        return;
    }
    json_t *body = s_body(req);
    if (body == NULL)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        int good = (!strcmp(k, "grace_s") && json_is_integer(v) && json_integer_value(v) >= 0 &&
                    json_integer_value(v) <= 3600) ||
                   (!strcmp(k, "timeout_s") && json_is_integer(v) && json_integer_value(v) >= 1) ||
                   (!strcmp(k, "force") && json_is_boolean(v)) ||
                   (!strcmp(k, "reason") && json_is_string(v));
        if (!good) {
            gp_http_respond_error(req, 400, "%s: expected grace_s (0..3600), timeout_s (>= 1), "
                                            "force (boolean) or reason (string)", k);
            json_decref(body);
            return;
        }
    }
    json_t *rec = json_pack("{s:i,s:s,s:s,s:s,s:I,s:I,s:b,s:s,s:[],s:[]}", "schema", 2, "node",
                            node, "region", n->region, "by", c->caller ? c->caller->name : "-",
                            "started_ms", (json_int_t)gp_wall_ms(), "timeout_s",
                            (json_int_t)s_int(body, "timeout_s", 600), "force",
                            json_is_true(json_object_get(body, "force")), "state", "draining",
                            "remaining", "stopped");
    if (json_object_get(body, "grace_s"))
        json_object_set(rec, "grace_s", json_object_get(body, "grace_s"));
    const char *reason = json_string_value(json_object_get(body, "reason"));
    json_t *cordon = s_cordon_record(c, node, reason ? reason : "drain");
    char *text = json_dumps(rec, JSON_COMPACT), *ctext = json_dumps(cordon, JSON_COMPACT);
    gp_etcd_op_t ops[2] = {
        { .type = GP_ETCD_OP_PUT, .key = dkey, .value = text, .value_len = text ? strlen(text) : 0 },
        { .type = GP_ETCD_OP_PUT, .key = ckey, .value = ctext, .value_len = ctext ? strlen(ctext) : 0 },
    };
    /* An existing cordon keeps its reason, author and time. */
    if (text && ctext && s_write(c, req, ops, n->cordon ? 1 : 2) == 0) {
        gp_log_info("drain started node=%s by=%s", node, c->caller ? c->caller->name : "-");
        coord_respond_json(req, 201, json_incref(rec));
    }
    free(text);
    free(ctext);
    json_decref(rec);
    json_decref(cordon);
    json_decref(body);
}

void coord_drain_http(coord_t *c, gp_http_req_t *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    const char *method = gp_http_req_method(req);
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    char node[GP_NAME_LEN];
    snprintf(node, sizeof node, "%.*s", (int)(nl < sizeof node ? nl : sizeof node - 1), rest);
    int cordon = slash && !strcmp(slash, "/cordon"), drain = slash && !strcmp(slash, "/drain");
    if (nl == 0 || (!cordon && !drain))
        gp_http_respond_error(req, 404, "no such endpoint %s %s", method, gp_http_req_path(req));
    else if (cordon ? strcmp(method, "PUT") && strcmp(method, "DELETE")
                    : strcmp(method, "POST") && strcmp(method, "GET") && strcmp(method, "DELETE"))
        gp_http_respond_error(req, 405, "%s not allowed on %s", method, gp_http_req_path(req));
    else if (nl >= sizeof node || !gp_name_valid(node))
        gp_http_respond_error(req, 400, "bad node name \"%.*s\"", (int)(nl < 200 ? nl : 200), rest);
    else if (cordon)
        s_cordon_http(c, req, node);
    else
        s_drain_http(c, req, node);
}
