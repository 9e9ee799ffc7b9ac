/*
 * bidder.c - the agent's side of the bid protocol (wire.h, README "Wire
 * protocol").
 *
 * Coordinators announce themselves at P coordinators/<region>/<id> with
 * their bid endpoint and CURVE public key.  The agent lists that folder for
 * its region, watches it, and keeps one DEALER socket per coordinator
 * (leader and standbys alike: only the leader calls for bids).  A
 * coordinator whose key is not in the agent's trusted list
 * (coordinator-keys) is not connected to, and counted: the agent talks only
 * to coordinators it can authenticate; CURVE authenticates the agent to
 * the coordinator in turn.
 *
 * Each peer gets a HELLO when connected and every heartbeat, naming the
 * nodes this agent hosts, so that the coordinator can route calls for bids,
 * and the protocol versions the agent speaks.  The HELLO goes in the
 * oldest of them (a coordinator of the previous release reads it); a
 * coordinator of this release answers WELCOME with the version it chose,
 * which the agent then speaks to it, or with why it refuses the agent
 * (logged as an error, once a minute).  No WELCOME: the previous release's
 * coordinator, spoken to in the oldest version.
 *
 * A cordoned node (P cordons/<node>, watched) gets no bid: its calls are
 * refused with "node cordoned" (a coordinator skips it anyway).
 *
 * A call for bids (CFB) carries many jobs, each with the candidate nodes
 * the coordinator chose.  For each (job, node) the agent answers, in one
 * BIDS message, either a bid (the placement engine's score of the node
 * for the job, lowered by the devices' recent utilization, and the plan:
 * for a multi-device job, the NVLink-connected (then same-NUMA) set;
 * which devices, how much memory and compute) or a refusal with a reason
 * (unknown node, not registered, unhealthy, does not fit, memory in use
 * outside the pool).  The engine holds the node's committed allocations
 * (jobs.c feeds it from the allocation watch), so a bid never offers what
 * is already committed.  Bids are advice: the coordinator commits with its
 * own checks, and the agent acts only on what etcd holds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "agent.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "placement_shapes.h"
#include "util.h"

#include "banned.h"

/* A call for bids of this many jobs or more is a burst of MiBs of JSON
 * (the call, the bids): free pages go back to the system once such calls
 * pause (gp_daemon_trim_memory_after_burst), so the agent's resident size
 * does not follow the size of the last rounds. */
#define S_BIG_CFB 64

typedef struct {
    char id[GP_NAME_LEN];
    char endpoint[256];
    char public_key[41];
    void *sock;
    int proto;                   /* the version its WELCOME chose; 0: none yet */
    int64_t refusal_logged_ms;   /* its last refusal logged */
} s_peer_t;

/* The version spoken to a peer: the one it chose, else our oldest. */
static int s_proto(const agent_t *a, const s_peer_t *p)
{
    return p->proto ? p->proto : a->protos[a->nprotos - 1];
}

typedef struct {
    int n;
    char (*keys)[41];
} s_trusted_t;

static void s_peer_close(s_peer_t *p)
{
    if (p == NULL)
        return;
    if (p->sock)
        zmq_close(p->sock);
    free(p);
}

static int s_trusted_load(const char *path, s_trusted_t *t, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return gp_err_errno(err, "cannot open coordinator-keys %s", path);
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char val[128];
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\0')
            continue;
        if ((sscanf(s, "public-key = %127s", val) != 1 && sscanf(s, "%127s", val) != 1) ||
            strlen(val) != 40) {
            fclose(f);
            return gp_err_set(err, GP_ERR_INVALID, "%s:%d: not a Z85 public key", path, lineno);
        }
        void *p = realloc(t->keys, sizeof *t->keys * (size_t)(t->n + 1));
        if (p == NULL) {
            fclose(f);
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        t->keys = p;
        gp_strlcpy(t->keys[t->n++], val, 41);
    }
    fclose(f);
    return 0;
}

static int s_trusted_has(const s_trusted_t *t, const char *key)
{
    for (int i = 0; t && i < t->n; i++)
        if (strcmp(t->keys[i], key) == 0)
            return 1;
    return 0;
}

static void s_hello(agent_t *a, s_peer_t *p)
{
    json_t *nodes = json_array();
    for (int i = 0; i < a->nnodes; i++)
        json_array_append_new(nodes, json_string(a->nodes[i].node.name));
    json_t *body = json_pack("{s:s,s:s,s:s,s:o}", "agent", a->cfg.name, "region", a->cfg.region,
                             "version", GP_VERSION, "nodes", nodes);
    if (body && a->protos[0] >= 3) {   /* "versions" came with gpupool/3 */
        json_t *vs = json_array();
        for (int i = 0; i < a->nprotos; i++) {
            char v[32];
            snprintf(v, sizeof v, "gpupool/%d", a->protos[i]);
            json_array_append_new(vs, json_string(v));
        }
        json_object_set_new(body, "versions", vs);
    }
    gp_err_t err;
    if (body && gp_wire_send_v(p->sock, NULL, 0, s_proto(a, p), GP_MSG_HELLO, body, &err) < 0)
        gp_log_debug("HELLO not sent coordinator=%s err=\"%s\"", p->id, err.msg);
    json_decref(body);
}

/* Connect to a coordinator from its registration record. */
static void s_peer_update(agent_t *a, const char *id, const char *value, size_t len)
{
    json_error_t jerr;
    json_t *rec = json_loadb(value, len, 0, &jerr);
    const char *ep = rec ? json_string_value(json_object_get(rec, "bid")) : NULL;
    const char *key = rec ? json_string_value(json_object_get(rec, "public_key")) : NULL;
    if (ep == NULL || strlen(ep) >= sizeof(((s_peer_t *)0)->endpoint)) {
        gp_log_warn("ignoring a coordinator record without a bid endpoint coordinator=%s", id);
        gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_COORDINATOR_RECORD]);
        json_decref(rec);
        return;
    }
    s_peer_t *old = gp_strmap_get(a->coordinators, id);
    if (old && !strcmp(old->endpoint, ep) && !strcmp(old->public_key, key ? key : "")) {
        json_decref(rec);
        return;
    }
    s_peer_close(gp_strmap_del(a->coordinators, id));

    const char *refuse = NULL;
    if (a->have_keys && (key == NULL || strlen(key) != 40))
        refuse = "it has no CURVE key";
    else if (a->have_keys && a->trusted && !s_trusted_has(a->trusted, key))
        refuse = "its key is not in coordinator-keys";
    else if (!a->have_keys && key && *key)
        refuse = "it requires CURVE and the agent has no curve-key";
    if (refuse) {
        gp_log_warn("not connecting to coordinator=%s endpoint=%s: %s", id, ep, refuse);
        gp_metric_inc(a->m.coordinators_refused);
        json_decref(rec);
        return;
    }
    s_peer_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        json_decref(rec);
        return;
    }
    gp_strlcpy(p->id, id, sizeof p->id);
    gp_strlcpy(p->endpoint, ep, sizeof p->endpoint);
    gp_strlcpy(p->public_key, key ? key : "", sizeof p->public_key);
    json_decref(rec);
    p->sock = zmq_socket(a->zctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    int64_t maxmsg = (int64_t)GP_WIRE_MAX_BYTES + 4096;
    gp_err_t err;
    if (p->sock == NULL || zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
        zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) < 0 ||
        zmq_setsockopt(p->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) < 0 ||
        zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0 ||
        zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, a->cfg.name, strlen(a->cfg.name)) < 0 ||
        (a->have_keys && gp_curve_client(p->sock, &a->keys, p->public_key, &err) < 0) ||
        zmq_connect(p->sock, p->endpoint) < 0) {
        gp_log_warn("cannot connect to coordinator=%s endpoint=%s: %s", id, p->endpoint,
                    zmq_strerror(zmq_errno()));
        s_peer_close(p);
        return;
    }
    gp_strmap_put(a->coordinators, id, p);
    gp_log_info("connected to coordinator=%s endpoint=%s curve=%s", id, p->endpoint,
                a->have_keys ? "yes" : "no");
    s_hello(a, p);
}

static void s_on_coord_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    agent_t *a = arg;
    if (resp->kind == GP_ETCD_WATCH_COMPACTED || resp->kind == GP_ETCD_WATCH_ERROR) {
        a->coord_relist = 1;
        return;
    }
    for (size_t i = 0; i < resp->n_events; i++) {
        const gp_etcd_event_t *e = &resp->events[i];
        size_t bl;
        const char *base = gp_key_base(e->kv.key, e->kv.key_len, &bl);
        char id[GP_NAME_LEN];
        snprintf(id, sizeof id, "%.*s", (int)bl, base);
        if (e->type == GP_ETCD_EVENT_PUT)
            s_peer_update(a, id, e->kv.value, e->kv.value_len);
        else
            s_peer_close(gp_strmap_del(a->coordinators, id));
    }
}

/* List the region's coordinators and watch for changes. */
static int s_discover(agent_t *a, gp_err_t *err)
{
    gp_etcd_watch_destroy(&a->coord_watch);
    char prefix[GP_KEY_MAX];
    gp_key_coordinator(prefix, a->cfg.prefix, a->cfg.region, NULL);
    gp_etcd_result_t res;
    if (gp_etcd_get(a->etcd, prefix, GP_ETCD_PREFIX, &res, err) < 0)
        return -1;
    /* Drop peers that are gone, connect the others. */
    for (gp_strmap_iter_t it = gp_strmap_first(a->coordinators); it.key;
         it = gp_strmap_next(a->coordinators, it)) {
        int found = 0;
        for (size_t i = 0; i < res.n_kvs && !found; i++) {
            size_t bl;
            const char *base = gp_key_base(res.kvs[i].key, res.kvs[i].key_len, &bl);
            found = bl == strlen(it.key) && !memcmp(base, it.key, bl);
        }
        if (!found)
            s_peer_close(gp_strmap_del(a->coordinators, it.key));
    }
    for (size_t i = 0; i < res.n_kvs; i++) {
        size_t bl;
        const char *base = gp_key_base(res.kvs[i].key, res.kvs[i].key_len, &bl);
        char id[GP_NAME_LEN];
        snprintf(id, sizeof id, "%.*s", (int)bl, base);
        s_peer_update(a, id, res.kvs[i].value, res.kvs[i].value_len);
    }
    gp_etcd_watch_opts_t wo = { .key = prefix, .prefix = true,
                                .start_revision = res.revision + 1, .cb = s_on_coord_watch,
                                .arg = a };
    gp_etcd_result_free(&res);
    a->coord_watch = gp_etcd_watch_new(a->etcd, &wo, err);
    return a->coord_watch ? 0 : -1;
}

/* A cordon of one of our nodes came or went. */
static void s_cordon_event(agent_t *a, const char *key, size_t key_len, int put)
{
    size_t bl;
    const char *base = gp_key_base(key, key_len, &bl);
    char node[GP_NAME_LEN];
    snprintf(node, sizeof node, "%.*s", (int)(bl < sizeof node ? bl : 0), base);
    if (gp_strmap_get(a->node_index, node) == NULL)
        return;
    int was = gp_strmap_get(a->cordoned, node) != NULL;
    if (put)
        gp_strmap_put(a->cordoned, node, (void *)1);
    else
        gp_strmap_del(a->cordoned, node);
    if (was != put)
        gp_log_info("node %s node=%s", put ? "cordoned: no bids" : "uncordoned", node);
}

static void s_on_cordon_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    agent_t *a = arg;
    if (resp->kind == GP_ETCD_WATCH_COMPACTED || resp->kind == GP_ETCD_WATCH_ERROR) {
        a->cordon_relist = 1;
        return;
    }
    for (size_t i = 0; i < resp->n_events; i++)
        s_cordon_event(a, resp->events[i].kv.key, resp->events[i].kv.key_len,
                       resp->events[i].type == GP_ETCD_EVENT_PUT);
}

/* List the cordons (every node's: they are few) and watch them. */
static int s_cordons(agent_t *a, gp_err_t *err)
{
    gp_etcd_watch_destroy(&a->cordon_watch);
    char prefix[GP_KEY_MAX];
    gp_key_cordon(prefix, a->cfg.prefix, NULL);
    gp_etcd_result_t res;
    if (gp_etcd_get(a->etcd, prefix, GP_ETCD_PREFIX, &res, err) < 0)
        return -1;
    gp_strmap_destroy(&a->cordoned);
    a->cordoned = gp_strmap_new();
    for (size_t i = 0; a->cordoned && i < res.n_kvs; i++)
        s_cordon_event(a, res.kvs[i].key, res.kvs[i].key_len, 1);
    gp_etcd_watch_opts_t wo = { .key = prefix, .prefix = true,
                                .start_revision = res.revision + 1, .cb = s_on_cordon_watch,
                                .arg = a };
    gp_etcd_result_free(&res);
    a->cordon_watch = gp_etcd_watch_new(a->etcd, &wo, err);
    return a->cordon_watch ? 0 : -1;
}

int agent_bidder_start(agent_t *a, gp_err_t *err)
{
    if (s_cordons(a, err) < 0) {
        gp_log_warn("cannot list cordons yet, will retry err=\"%s\"", err->msg);
        a->cordon_relist = 1;
    }
    a->zctx = zmq_ctx_new();
    a->coordinators = gp_strmap_new();
    if (a->zctx == NULL || a->coordinators == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    if (a->cfg.curve_key && *a->cfg.curve_key) {
        if (gp_curve_load(a->cfg.curve_key, &a->keys, err) < 0)
            return -1;
        if (a->keys.secret_key[0] == '\0')
            return gp_err_set(err, GP_ERR_INVALID, "curve-key %s has no secret key (use the .key file)",
                              a->cfg.curve_key);
        a->have_keys = 1;
    }
    if (a->cfg.coordinator_keys && *a->cfg.coordinator_keys) {
        s_trusted_t *t = calloc(1, sizeof *t);
        if (t == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        a->trusted = t;
        if (s_trusted_load(a->cfg.coordinator_keys, t, err) < 0)
            return -1;
    }
    if (s_discover(a, err) < 0) {
        gp_log_warn("coordinator discovery failed, will retry err=\"%s\"", err->msg);
        a->coord_relist = 1;
    }
    return 0;
}

int agent_bidder_pollitems(agent_t *a, void *items, int max)
{
    zmq_pollitem_t *it = items;
    int n = 0;
    for (gp_strmap_iter_t i = gp_strmap_first(a->coordinators); i.key && n < max;
         i = gp_strmap_next(a->coordinators, i)) {
        s_peer_t *p = i.value;
        it[n].socket = p->sock;
        it[n].fd = 0;
        it[n].events = ZMQ_POLLIN;
        it[n].revents = 0;
        n++;
    }
    return n;
}

static agent_node_t *s_node(agent_t *a, const char *name)
{
    return name ? gp_strmap_get(a->node_index, name) : NULL;
}

/* One (job, node) answer: a bid object or a refusal. */
/* One refusal, appended to the BIDS text. */
static int s_refuse(gp_ebuf_t *b, const char *job_id, const char *node, const char *why)
{
    return gp_ebuf_adds(b, "{\"job\":") | gp_ebuf_json_str(b, job_id) |
           gp_ebuf_adds(b, ",\"node\":") | gp_ebuf_json_str(b, node) |
           gp_ebuf_adds(b, ",\"refused\":") | gp_ebuf_json_str(b, why) | gp_ebuf_adds(b, "}");
}

/* The bid (or the refusal) for job on node, appended to the BIDS text;
 * *refused says which.  -1 when out of memory. */
static int s_bid(agent_t *a, gp_ebuf_t *b, const char *job_id, const gp_job_t *job,
                 const char *node, int *refused)
{
    agent_node_t *an = s_node(a, node);
    const char *why = NULL;
    char reason[300];
    *refused = 1;
    if (an == NULL)
        why = "unknown node";
    else if (!a->registered)
        why = "node not registered";
    else if (!an->node.healthy)
        why = "node unhealthy";
    else if (a->cordoned && gp_strmap_get(a->cordoned, node))
        why = "node cordoned";
    if (why)
        return s_refuse(b, job_id, node, why);

    double score;
    gp_alloc_t plan;
    gp_err_t err;
    /* A multi-device job gets the best-connected device set the node has
     * (NVLink, then same NUMA node), whatever the node-level policy. */
    gp_job_t topo;
    if (job->devices > 1 && job->policy[0] == '\0') {
        topo = *job;
        gp_strlcpy(topo.policy, "topology", sizeof topo.policy);
        job = &topo;
    }
    if (gp_placement_score_node(a->engine, node, job, &score, &plan, &err) < 0) {
        snprintf(reason, sizeof reason, "does not fit: %s", err.msg);
        gp_log_debug("refusing job=%s node=%s reason=\"%s\"", job_id, node, reason);
        return s_refuse(b, job_id, node, reason);
    }
    double util = 0;
    int nutil = 0;
    for (int i = 0; i < plan.ndevices; i++) {
        int d = plan.devices[i].index;
        if (d < 0 || d >= an->node.ndevices)
            continue;
        if (an->free_mib[d] >= 0 && plan.devices[i].mem_mib > an->free_mib[d]) {
            snprintf(reason, sizeof reason,
                     "device %s has %lld MiB free, %lld asked (memory in use outside the pool)",
                     an->node.devices[d].uuid, (long long)an->free_mib[d],
                     (long long)plan.devices[i].mem_mib);
            return s_refuse(b, job_id, node, reason);
        }
        if (an->util[d] >= 0) {
            util += an->util[d];
            nutil++;
        }
    }
    if (nutil)
        score -= 0.1 * (util / nutil) / 100.0;
    if (!isfinite(score))
        return s_refuse(b, job_id, node, "no finite score");
    *refused = 0;
    return gp_ebuf_adds(b, "{\"job\":") | gp_ebuf_json_str(b, job_id) |
           gp_ebuf_adds(b, ",\"node\":") | gp_ebuf_json_str(b, node) |
           gp_ebuf_adds(b, ",\"score\":") | gp_ebuf_json_real(b, score) |
           gp_ebuf_adds(b, ",\"alloc\":") | gp_alloc_dump_buf(&plan, b) | gp_ebuf_adds(b, "}");
}

/* Answer a CFB with one BIDS: every (job, node) asked, a bid or a
 * refusal.  The answer is written as text directly: a burst's calls ask
 * for thousands of bids, and a jansson tree of them, dumped, was the
 * largest part of the agent's CPU. */
static void s_call_for_bids(agent_t *a, s_peer_t *p, json_t *body)
{
    json_t *round = json_object_get(body, "round");
    json_t *jobs = json_object_get(body, "jobs");
    if (!json_is_integer(round) || !json_is_array(jobs)) {
        gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_CFB]);
        gp_log_warn("malformed CFB dropped coordinator=%s", p->id);
        return;
    }
    gp_err_t serr;   /* the shapes the coordinator learned: bids score with them too */
    if (gp_placement_set_typical_json(a->engine, json_object_get(body, "shapes"), &serr) < 0)
        gp_log_warn("CFB shapes ignored coordinator=%s err=\"%s\"", p->id, serr.msg);
    gp_ebuf_t b = { 0 };
    int bad = gp_ebuf_addf(&b, "{\"round\":%" JSON_INTEGER_FORMAT ",\"agent\":",
                           json_integer_value(round)) |
              gp_ebuf_json_str(&b, a->cfg.name) | gp_ebuf_adds(&b, ",\"bids\":[");
    size_t i;
    json_t *entry;
    int nbids = 0, nrefused = 0;
    json_array_foreach(jobs, i, entry) {
        const char *job_id = json_string_value(json_object_get(entry, "job"));
        json_t *spec = json_object_get(entry, "spec");
        json_t *nodes = json_object_get(entry, "nodes");
        if (job_id == NULL || !json_is_object(spec) || !json_is_array(nodes)) {
            gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_CFB_JOB]);
            continue;
        }
        gp_job_t job;
        gp_err_t err;
        int spec_ok = gp_job_from_json(spec, &job, &err) == 0;
        size_t k;
        json_t *n;
        json_array_foreach(nodes, k, n) {
            const char *node = json_string_value(n);
            if (node == NULL)
                continue;
            if (nbids + nrefused > 0)
                bad |= gp_ebuf_adds(&b, ",");
            int refused = 1;
            if (!spec_ok) {
                char reason[300];
                snprintf(reason, sizeof reason, "bad spec: %s", err.msg);
                bad |= s_refuse(&b, job_id, node, reason);
            } else {
                bad |= s_bid(a, &b, job_id, &job, node, &refused);
            }
            if (refused)
                nrefused++;
            else
                nbids++;
        }
    }
    bad |= gp_ebuf_adds(&b, "]}");
    gp_err_t err;
    if (bad)
        gp_log_warn("BIDS not sent coordinator=%s err=\"out of memory\"", p->id);
    else if (gp_wire_send_text_v(p->sock, NULL, 0, s_proto(a, p), GP_MSG_BIDS, b.p, b.len, &err) < 0)
        gp_log_warn("BIDS not sent coordinator=%s err=\"%s\"", p->id, err.msg);
    gp_ebuf_free(&b);
    gp_metric_add(a->m.bids, nbids);
    gp_metric_add(a->m.bids_refused, nrefused);
}

/* The coordinator's answer to our HELLO: the version to speak, or why it
 * refuses us. */
static void s_welcome(agent_t *a, s_peer_t *p, const gp_wire_msg_t *msg)
{
    const char *error = json_string_value(json_object_get(msg->body, "error"));
    int v = gp_wire_version_parse(json_string_value(json_object_get(msg->body, "version")));
    int spoken = 0;
    for (int i = 0; i < a->nprotos; i++)
        spoken |= a->protos[i] == v;
    char buf[200];
    if (error == NULL && !spoken) {
        snprintf(buf, sizeof buf, "it chose %s, which this agent does not speak",
                 json_string_value(json_object_get(msg->body, "version"))
                     ? json_string_value(json_object_get(msg->body, "version")) : "nothing");
        error = buf;
    }
    if (error) {
        int64_t now = gp_mono_ms();
        if (p->refusal_logged_ms == 0 || now - p->refusal_logged_ms >= 60000) {
            gp_log_error("refused by coordinator=%s: %s (README: Versions and upgrades)", p->id,
                         error);
            p->refusal_logged_ms = now;
        }
        gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_VERSION]);
        p->proto = 0;
        return;
    }
    if (p->proto != v)
        gp_log_info("coordinator=%s speaks gpupool/%d", p->id, v);
    p->proto = v;
}

void agent_bidder_handle(agent_t *a)
{
    for (gp_strmap_iter_t it = gp_strmap_first(a->coordinators); it.key;
         it = gp_strmap_next(a->coordinators, it)) {
        s_peer_t *p = it.value;
        for (int budget = 0; budget < 1000; budget++) {
            gp_wire_msg_t msg;
            gp_err_t err;
            int rc = gp_wire_recv(p->sock, &msg, &err);
            if (rc == 0)
                break;
            if (rc < 0) {
                gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_MESSAGE]);
                gp_log_warn("message dropped coordinator=%s reason=\"%s\"", p->id, err.msg);
                continue;
            }
            int big = 0;
            if (msg.type == GP_MSG_WELCOME) {
                s_welcome(a, p, &msg);
            } else if (msg.type == GP_MSG_CFB) {
                s_call_for_bids(a, p, msg.body);
                big = json_array_size(json_object_get(msg.body, "jobs")) >= S_BIG_CFB;
            } else if (msg.type == GP_MSG_AWARD) {
                gp_metric_inc(a->m.awards);
            } else if (msg.type == GP_MSG_LOGS) {
                agent_logs_answer(a, p->sock, msg.body);
            } else {
                gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_UNEXPECTED_TYPE]);
            }
            gp_wire_msg_clear(&msg);
            if (big)
                gp_daemon_trim_memory_after_burst();   /* the call and our bids were MiBs of JSON */
        }
    }
}

void agent_bidder_tick(agent_t *a)
{
    int64_t now = gp_mono_ms();
    if (a->cordon_relist) {
        gp_err_t err;
        a->cordon_relist = 0;
        if (s_cordons(a, &err) < 0) {
            agent_metrics_etcd_error(&a->m, "cordons", &err);
            a->cordon_relist = 1;
        }
    }
    if (a->coord_relist) {
        gp_err_t err;
        a->coord_relist = 0;
        if (s_discover(a, &err) < 0) {
            agent_metrics_etcd_error(&a->m, "discover", &err);
            a->coord_relist = 1;
        }
    }
    if (now >= a->next_hello_ms) {
        for (gp_strmap_iter_t it = gp_strmap_first(a->coordinators); it.key;
             it = gp_strmap_next(a->coordinators, it))
            s_hello(a, it.value);
        a->next_hello_ms = now + a->cfg.heartbeat_ms;
    }
}

void agent_bidder_stop(agent_t *a)
{
    gp_etcd_watch_destroy(&a->coord_watch);
    gp_etcd_watch_destroy(&a->cordon_watch);
    gp_strmap_destroy(&a->cordoned);
    if (a->coordinators) {
        for (gp_strmap_iter_t it = gp_strmap_first(a->coordinators); it.key;
             it = gp_strmap_next(a->coordinators, it))
            s_peer_close(it.value);
        gp_strmap_destroy(&a->coordinators);
    }
    s_trusted_t *t = a->trusted;
    if (t) {
        free(t->keys);
        free(t);
        a->trusted = NULL;
    }
    if (a->zctx) {
        zmq_ctx_term(a->zctx);
        a->zctx = NULL;
    }
}
