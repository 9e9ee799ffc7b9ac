/*
 * versions.c - version skew: the protocol spoken with each agent, and the
 * store schema the pool writes (README "Versions and upgrades").
 *
 * Protocol.  An agent's HELLO lists the versions it speaks ("versions"; an
 * agent of the previous release lists none and speaks its envelope's).
 * The coordinator picks the newest version both speak and answers WELCOME
 * {"version": "gpupool/N"} in it (only to agents that listed versions: an
 * agent of the previous release does not know WELCOME); every later
 * message to that agent goes in that version (coord_wire_send).  When they
 * share none -- an agent older than the previous release, or newer than
 * this one by more than one -- or when the agent speaks only gpupool/2
 * while the store is at schema 2, which its release cannot read, the HELLO
 * is refused: the coordinator logs it (once a minute per agent), counts
 * it (protocol_errors_total{what="version"}), answers WELCOME {"error"} in
 * the agent's own newest version, and takes none of its nodes.
 *
 * Schema.  Records of schema 2 (a job's grace_s, an allocation's stop
 * mark) cannot be read by daemons of the previous release, which refuse
 * unknown fields.  So the pool writes schema 1 until every daemon reads 2:
 * every 5 s the leader of the region sorting first checks that every
 * registered coordinator says "schema": 2 or more and that every node with
 * a record is served by an agent whose agents/ record says so, and then
 * raises P schema to 2 in ONE transaction fenced on its leader key and on
 * the schema key's revision.  Nothing stored needs rewriting (a schema-1
 * record is a schema-2 record without the new fields), so the migration is
 * that one write: interrupted, it has happened or not, and a second leader
 * racing it fails its compare.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_REFUSAL_LOG_MS 60000
#define S_SCHEMA_PASS_MS 5000
#define S_SCHEMA_SEEN_MS 200

int coord_versions_init(coord_t *c, gp_err_t *err)
{
    c->agent_proto = gp_strmap_new();
    c->refusal_logged = gp_strmap_new();
    if (c->agent_proto == NULL || c->refusal_logged == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    c->nprotos = gp_wire_versions_spoken(getenv("GPUPOOL_FAULT_PROTOCOLS"), c->protos,
                                         GP_ARRAY_LEN(c->protos), err);
    return c->nprotos > 0 ? 0 : -1;
}

void coord_versions_stop(coord_t *c)
{
    gp_strmap_destroy(&c->agent_proto);
    if (c->refusal_logged) {
        for (gp_strmap_iter_t it = gp_strmap_first(c->refusal_logged); it.key;
             it = gp_strmap_next(c->refusal_logged, it))
            free(it.value);
        gp_strmap_destroy(&c->refusal_logged);
    }
}

static int s_speaks(const coord_t *c, int v)
{
    for (int i = 0; i < c->nprotos; i++)
        if (c->protos[i] == v)
            return 1;
    return 0;
}

/* "gpupool/2 and gpupool/3" */
static void s_list(const int *v, int n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s gpupool/%d",
                                i == 0 ? "" : i == n - 1 ? " and" : ",", v[i]);
    if (buf[0] == ' ')
        memmove(buf, buf + 1, strlen(buf));
}

int coord_versions_hello(coord_t *c, gp_wire_msg_t *msg)
{
    char agent[GP_NAME_LEN], shown[64];
    snprintf(agent, sizeof agent, "%.*s", (int)msg->identity_len, msg->identity);
    gp_wire_printable(msg->identity, msg->identity_len, shown, sizeof shown);
    int offered[16], n = 0;
    json_t *versions = json_object_get(msg->body, "versions");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v) {
        int x = gp_wire_version_parse(json_string_value(v));
        if (x > 0 && n < (int)GP_ARRAY_LEN(offered))
            offered[n++] = x;
    }
    if (n == 0)
        offered[n++] = msg->version;   /* the previous release: its envelope's */
    int chosen = -1, newest = offered[0];
    for (int k = 0; k < n; k++) {
        if (offered[k] > newest)
            newest = offered[k];
        if (s_speaks(c, offered[k]) && offered[k] > chosen)
            chosen = offered[k];
    }
    char why[400] = "";
    char ours[96], theirs[96];
    int schema = coord_cache_schema(c, NULL);
    s_list(c->protos, c->nprotos, ours, sizeof ours);
    s_list(offered, n, theirs, sizeof theirs);
    if (chosen < 0)
        snprintf(why, sizeof why, "agent %s speaks %s; coordinator %s (gpupool %s) speaks %s", shown,
                 theirs, c->cfg.id, GP_VERSION, ours);
    else if (chosen < 3 && schema >= 2)
        snprintf(why, sizeof why, "agent %s speaks only %s, of a release that cannot read the "
                                  "store's schema %d; upgrade it", shown, theirs, schema);
    if (why[0]) {
        int64_t now = gp_mono_ms();
        int64_t *last = gp_strmap_get(c->refusal_logged, agent);
        if (last == NULL && (last = calloc(1, sizeof *last)) != NULL &&
            gp_strmap_put(c->refusal_logged, agent, last) < 0) {
            free(last);
            last = NULL;
        }
        if (last == NULL || *last == 0 || now - *last >= S_REFUSAL_LOG_MS) {
            gp_log_error("agent refused: %s (README: Versions and upgrades)", why);
            if (last)
                *last = now;
        }
        gp_metric_inc(c->m.protocol_errors[COORD_PROTO_VERSION]);
        json_t *body = json_pack("{s:s,s:s,s:s}", "error", why, "coordinator", c->cfg.id,
                                 "release", GP_VERSION);
        gp_wire_send_v(c->router, msg->identity, msg->identity_len, newest, GP_MSG_WELCOME, body,
                       NULL);
        json_decref(body);
        gp_strmap_del(c->agent_proto, agent);
        return -1;
    }
    intptr_t was = (intptr_t)gp_strmap_get(c->agent_proto, agent);
    if (was != chosen) {
        gp_strmap_put(c->agent_proto, agent, (void *)(intptr_t)chosen);
        gp_log_info("agent speaks gpupool/%d agent=%s offered=\"%s\"", chosen, shown, theirs);
    }
    if (versions && c->protos[0] >= 3) {   /* WELCOME came with gpupool/3 */
        char version[32];
        snprintf(version, sizeof version, "gpupool/%d", chosen);
        json_t *body = json_pack("{s:s,s:s,s:s}", "version", version, "coordinator", c->cfg.id,
                                 "release", GP_VERSION);
        gp_wire_send_v(c->router, msg->identity, msg->identity_len, chosen, GP_MSG_WELCOME, body,
                       NULL);
        json_decref(body);
    }
    return 0;
}

int coord_wire_send(coord_t *c, const char *agent, gp_msg_type_t type, const json_t *body,
                    gp_err_t *err)
{
    intptr_t v = (intptr_t)gp_strmap_get(c->agent_proto, agent);
    return gp_wire_send_v(c->router, agent, strlen(agent), v > 0 ? (int)v : GP_WIRE_PROTO_MIN,
                          type, body, err);
}

/* Does every daemon of the pool read schema `want`? (why says who not) */
static int s_all_read(coord_t *c, int want, char *why, size_t size)
{
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_COORDINATORS); it.key;
         it = coord_cache_next(c, it)) {
        json_t *rec = json_loads(it.value, 0, NULL);
        json_t *s = json_object_get(rec, "schema");
        int ok = json_is_integer(s) && json_integer_value(s) >= want;
        json_decref(rec);
        if (!ok) {
            snprintf(why, size, "coordinator %s", it.key);
            return 0;
        }
    }
    gp_strmap_t *reads = gp_strmap_new();   /* node -> its agent reads want */
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_AGENTS); it.key && reads;
         it = coord_cache_next(c, it)) {
        json_t *s = json_object_get(it.value, "schema");
        if (!json_is_integer(s) || json_integer_value(s) < want)
            continue;
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(it.value, "nodes"), i, n)
            if (json_is_string(n))
                gp_strmap_put(reads, json_string_value(n), (void *)1);
    }
    int ok = reads != NULL;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); ok && it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (n->present && gp_strmap_get(reads, n->name) == NULL) {
            snprintf(why, size, "the agent of node %s", n->name);
            ok = 0;
        }
    }
    gp_strmap_destroy(&reads);
    return ok;
}

/* An agent's record came in: the pass that waited for it (a pool's first
 * agent, or the last one upgraded) runs at the next tick, at most every
 * S_SCHEMA_SEEN_MS, instead of up to S_SCHEMA_PASS_MS later, so that a new
 * pool takes schema-2 fields as soon as its agents are registered. */
void coord_versions_agent_seen(coord_t *c)
{
    int64_t soon = c->versions_last_schema_ms + S_SCHEMA_SEEN_MS;
    if (c->versions_next_schema_ms > soon)
        c->versions_next_schema_ms = soon;
}

void coord_versions_tick(coord_t *c)
{
    int64_t now = gp_mono_ms(), schema_rev;
    int schema = coord_cache_schema(c, &schema_rev);
    /* the leader of the region sorting first migrates */
    if (now < c->versions_next_schema_ms || schema >= GP_SCHEMA_VERSION || !coord_is_first_leader(c) ||
        !s_speaks(c, GP_WIRE_PROTO))
        return;
    c->versions_next_schema_ms = now + S_SCHEMA_PASS_MS;
    c->versions_last_schema_ms = now;
    char why[200];
    int want = schema + 1;
    if (!s_all_read(c, want, why, sizeof why)) {
        gp_log_debug("store schema stays %d: %s does not read %d yet", schema, why, want);
        return;
    }
    char key[GP_KEY_MAX];
    json_t *rec = json_pack("{s:i,s:s,s:I,s:i}", "schema", want, "by", c->cfg.id, "at_ms",
                            (json_int_t)gp_wall_ms(), "from", schema);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    gp_txnb_t *t = text ? gp_txnb_new() : NULL;
    int ok = 0;
    int64_t rev;
    gp_err_t err;
    if (t) {
        coord_txn_fence(t, c);
        gp_txnb_cmp(t, gp_key_schema(key, c->cfg.prefix), GP_ETCD_CMP_MOD, schema_rev);
        gp_txnb_put(t, key, text);
        if (coord_txn_run(t, c, &ok, &rev, &err) < 0)
            coord_metrics_etcd_error(&c->m, "schema", &err);
        else if (ok)
            gp_log_info("store schema raised from=%d to=%d (every daemon reads it)", want - 1, want);
    }
    gp_txnb_destroy(&t);
    free(text);
}
