/*
 * registry.c - the agent's presence in etcd.
 *
 * Every node the agent speaks for has a record at P nodes/<region>/<node>,
 * attached to one lease that the etcd client keeps alive (its keep-alive
 * thread).  A dead
 * agent stops refreshing, the lease expires and every record of it
 * vanishes: that is how the pool learns a node is gone.
 *
 * The duty, run from the loop every tick:
 *   - not registered (start-up, or the lease was lost): grant a lease, put
 *     every node record on it (a batch, many in flight), start the
 *     keep-alive; on failure retry with backoff (0.5 s doubling to 10 s).
 *   - registered: rewrite a node record only when it changed (device
 *     health), and the usage record P usage/<region>/<node> only when live
 *     usage changed materially (free memory in 256 MiB steps, utilization
 *     in 10-point steps, slice usage in MiB), at most every usage-interval;
 *     those writes run in the background (the loop waits for none of them:
 *     after a burst they are a thousand puts), one batch at a time.
 * SIGTERM does not revoke the lease: the records stay until it expires, so
 * an agent restarted within the TTL takes its node back without the pool
 * ever seeing it gone (the new lease's puts detach the keys from the old
 * one, whose expiry then deletes nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

/* A failed registration is retried after 500 ms, doubling to 10 s. */
#define S_REGISTER_BACKOFF_MS     500
#define S_REGISTER_BACKOFF_MAX_MS 10000

static void s_on_lost(gp_etcd_t *etcd, int64_t lease, const gp_err_t *why, void *arg)
{
    (void)etcd;
    agent_t *a = arg;
    gp_log_warn("lease lost, registering again lease=%lld reason=\"%s\"", (long long)lease,
                why ? why->msg : "-");
    a->lease_lost = 1;
}

/* Queue a put of a node's record on the lease. */
static int s_queue_record(agent_t *a, gp_etcd_batch_t *b, agent_node_t *an, gp_err_t *err)
{
    json_t *j = gp_node_to_json(&an->node);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (text == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    char key[GP_KEY_MAX];
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT,
                        .key = gp_key_node(key, a->cfg.prefix, an->node.region, an->node.name),
                        .value = text, .value_len = strlen(text), .lease = a->lease };
    int rc = gp_etcd_batch_add(b, &op, err) < 0 ? -1 : 0;
    if (rc == 0)
        an->record_digest = gp_hash_str(text);
    free(text);
    return rc;
}

/* Queue a put of the agent's own record (agents/<region>/<name>): its
 * release, the protocol versions it speaks, the newest store schema it
 * reads and its nodes (README "Versions and upgrades").  Spoken as the
 * previous release (a test hook), it writes none, as that release did. */
static int s_queue_agent(agent_t *a, gp_etcd_batch_t *b, gp_err_t *err)
{
    if (a->protos[0] < 3)
        return 0;
    json_t *nodes = json_array(), *protos = json_array();
    for (int i = 0; i < a->nnodes; i++)
        json_array_append_new(nodes, json_string(a->nodes[i].node.name));
    for (int i = 0; i < a->nprotos; i++) {
        char v[32];
        snprintf(v, sizeof v, "gpupool/%d", a->protos[i]);
        json_array_append_new(protos, json_string(v));
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:i,s:o}", "agent", a->cfg.name, "region",
                          a->cfg.region, "version", GP_VERSION, "protocols", protos, "schema",
                          GP_SCHEMA_VERSION, "nodes", nodes);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    char key[GP_KEY_MAX];
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT,
                        .key = gp_key_agent(key, a->cfg.prefix, a->cfg.region, a->cfg.name),
                        .value = text, .value_len = strlen(text), .lease = a->lease };
    int rc = gp_etcd_batch_add(b, &op, err) < 0 ? -1 : 0;
    free(text);
    return rc;
}

static int s_register(agent_t *a, gp_err_t *err)
{
    int64_t ttl_s = a->cfg.lease_ttl_ms / 1000, granted = 0;
    if (ttl_s < 2)
        ttl_s = 2;
    if (gp_etcd_lease_grant(a->etcd, ttl_s, 0, &a->lease, &granted, err) < 0)
        return -1;
    gp_etcd_batch_t *b = gp_etcd_batch_new(a->etcd);
    int rc = -1;
    if (b == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < a->nnodes; i++)
        if (s_queue_record(a, b, &a->nodes[i], err) < 0)
            goto cleanup;
    if (s_queue_agent(a, b, err) < 0)
        goto cleanup;
    if (gp_etcd_batch_run(b, 64, err) < 0)
        goto cleanup;
    a->keepalive = gp_etcd_keepalive_start(a->etcd, a->lease, granted, s_on_lost, a, err);
    if (a->keepalive == NULL)
        goto cleanup;
    rc = 0;
cleanup:
    gp_etcd_batch_destroy(&b);
    if (rc < 0 && a->lease) {
        gp_etcd_lease_revoke(a->etcd, a->lease, NULL);
        a->lease = 0;
    }
    return rc;
}

int agent_registry_start(agent_t *a, gp_err_t *err)
{
    (void)err;
    a->registered = 0;
    a->next_register_ms = 0;
    a->register_backoff_ms = S_REGISTER_BACKOFF_MS;
    return 0;
}

/* The node's usage record: live device state and the slices on it. */
static char *s_usage_text(agent_node_t *an, json_t *slices, uint64_t *digest, size_t *nslices)
{
    json_t *devs = json_array(), *coarse = json_array();
    for (int i = 0; i < an->node.ndevices; i++) {
        json_array_append_new(devs, json_pack("{s:s,s:I,s:i,s:b}", "uuid", an->node.devices[i].uuid,
                                              "free_mib", (json_int_t)an->free_mib[i], "util",
                                              an->util[i], "healthy",
                                              an->node.devices[i].healthy));
        json_array_append_new(coarse, json_pack("[I,i,b]", (json_int_t)(an->free_mib[i] / 256),
                                                an->util[i] / 10, an->node.devices[i].healthy));
    }
    *nslices = json_array_size(slices);
    json_t *o = json_pack("{s:o,s:O,s:I}", "devices", devs, "slices", slices,
                          "at_ms", (json_int_t)gp_wall_ms());
    json_t *d = json_pack("{s:o,s:O}", "d", coarse, "s", json_object_get(o, "slices"));
    char *dt = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    *digest = gp_hash_str(dt ? dt : "");
    free(dt);
    json_decref(d);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* The background writes of s_write_changes landed: a failed one is
 * written again at the next pass. */
static void s_changes_landed(gp_etcd_batch_t *b, void *arg)
{
    agent_t *a = arg;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
        const gp_etcd_result_t *res;
        gp_err_t err;
        if (gp_etcd_batch_result(b, i, &res, &err) < 0) {
            agent_metrics_etcd_error(&a->m, "usage", &err);
            for (int k = 0; k < a->nnodes; k++)
                a->nodes[k].usage_digest = a->nodes[k].record_digest = 0;   /* write again */
            break;
        }
    }
    gp_etcd_batch_destroy(&a->changes);
}

/* Queue the node records and usage records that changed, and write them
 * in the background (the previous writes have landed: a->changes is NULL). */
static void s_write_changes(agent_t *a)
{
    gp_etcd_batch_t *b = gp_etcd_batch_new(a->etcd);
    if (b == NULL)
        return;
    gp_err_t err;
    json_t **slices = agent_jobs_usage(a);
    if (slices == NULL) {
        gp_etcd_batch_destroy(&b);
        return;
    }
    for (int i = 0; i < a->nnodes; i++) {
        agent_node_t *an = &a->nodes[i];
        json_t *j = gp_node_to_json(&an->node);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (text && gp_hash_str(text) != an->record_digest)
            s_queue_record(a, b, an, &err);
        free(text);
        if (a->nvml == NULL && agent_jobs_count(a) == 0 && an->usage_digest &&
            an->usage_slices == 0)
            continue;   /* nothing live to report on virtual or declared devices */
        uint64_t digest;
        size_t nslices;
        char *usage = s_usage_text(an, slices[i], &digest, &nslices);
        if (usage && digest != an->usage_digest) {
            char key[GP_KEY_MAX];
            gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT,
                                .key = gp_key_usage(key, a->cfg.prefix, an->node.region,
                                                    an->node.name),
                                .value = usage, .value_len = strlen(usage), .lease = a->lease };
            if (gp_etcd_batch_add(b, &op, &err) >= 0) {
                an->usage_digest = digest;
                an->usage_slices = nslices;
            }
        }
        free(usage);
    }
    agent_jobs_usage_free(a, slices);
    if (gp_etcd_batch_size(b) == 0) {
        gp_etcd_batch_destroy(&b);
        return;
    }
    a->changes = b;
    if (gp_etcd_batch_start(b, 64, s_changes_landed, a, &err) < 0) {
        agent_metrics_etcd_error(&a->m, "usage", &err);
        for (int i = 0; i < a->nnodes; i++)
            a->nodes[i].usage_digest = a->nodes[i].record_digest = 0;   /* write again */
        gp_etcd_batch_destroy(&a->changes);
    }
}

void agent_registry_tick(agent_t *a)
{
    int64_t now = gp_mono_ms();
    if (a->lease_lost) {
        gp_etcd_keepalive_stop(&a->keepalive);
        a->lease_lost = 0;
        a->registered = 0;
        a->lease = 0;
        a->next_register_ms = now;
        gp_metric_inc(a->m.lease_lost);
    }
    if (!a->registered) {
        if (now < a->next_register_ms)
            return;
        gp_err_t err;
        if (s_register(a, &err) < 0) {
            agent_metrics_etcd_error(&a->m, "register", &err);
            gp_log_warn("registration failed, retrying in %lld ms err=\"%s\"",
                        (long long)a->register_backoff_ms, err.msg);
            a->next_register_ms = now + a->register_backoff_ms;
            a->register_backoff_ms = a->register_backoff_ms * 2 > S_REGISTER_BACKOFF_MAX_MS
                                         ? S_REGISTER_BACKOFF_MAX_MS : a->register_backoff_ms * 2;
            return;
        }
        a->register_backoff_ms = S_REGISTER_BACKOFF_MS;
        a->registered = 1;
        /* The usage records of a lost lease are gone with it: write them again. */
        for (int i = 0; i < a->nnodes; i++)
            a->nodes[i].usage_digest = 0;
        gp_log_info("registered nodes=%d lease=%lld", a->nnodes, (long long)a->lease);
        a->next_usage_ms = 0;
    }
    if (now >= a->next_usage_ms) {
        if (a->changes) {
            a->next_usage_ms = now + 100;   /* the previous writes are still in flight */
            return;
        }
        agent_inventory_refresh(a);
        s_write_changes(a);
        a->next_usage_ms = now + a->cfg.usage_interval_ms;
    }
}

void agent_registry_stop(agent_t *a)
{
    gp_etcd_batch_destroy(&a->changes);   /* writes in flight may still land */
    gp_etcd_keepalive_stop(&a->keepalive);
}
