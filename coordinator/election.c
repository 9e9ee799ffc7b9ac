/*
 * election.c - one leader per region, and how a deposed one is fenced.
 *
 * Each coordinator holds one lease, kept alive from its loop.  On it hang
 * its registration, P coordinators/<region>/<id> (bid endpoint, API URL,
 * CURVE public key: how agents find it), and, while it leads, the
 * region's election key P leader/<region> (its id).
 *
 * Campaign: a transaction "if leader/<region> does not exist, create it
 * with my id on my lease".  The winner records the key's create revision:
 * the fencing revision.  Every commit of a bid round compares
 * leader/<region>'s create revision with it, so a leader whose lease
 * expired (its key deleted, maybe re-created by a standby with a new create
 * revision) can no longer change anything, even if it has not noticed yet.
 * That, not the local flag, is what makes a deposed leader harmless; the
 * flag only stops it from wasting rounds.
 *
 * Standbys campaign again as soon as the cache sees the key deleted, and
 * otherwise every lease-ttl/2, so a standby takes over within the TTL of
 * a dead leader's lease.  A leader that loses its lease stops at once
 * (coord_is_leader is false from the keep-alive's loss report on, and from
 * the moment the lease could have expired without a refresh).  On SIGTERM
 * a leader resigns by revoking its lease, which hands over immediately.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

static int64_t s_backoff_ms = 250;

static void s_on_lost(gp_etcd_t *etcd, int64_t lease, const gp_err_t *why, void *arg)
{
    (void)etcd;
    coord_t *c = arg;
    gp_log_warn("lease lost lease=%lld leader=%s reason=\"%s\"", (long long)lease,
                c->leader ? "yes" : "no", why ? why->msg : "-");
    c->lease_lost = 1;
    coord_count(c, "gpupool_coordinator_lease_lost_total", "Leases lost (leadership given up)", NULL);
    c->leader = 0;
}

int coord_is_leader(coord_t *c)
{
    if (!c->leader || c->lease_lost)
        return 0;
    const char *who = gp_strmap_get(c->leaders, c->cfg.region);
    if (who && strcmp(who, c->cfg.id) != 0)
        return 0;   /* the cache shows another leader: we were deposed */
    return 1;
}

static int s_register(coord_t *c, gp_err_t *err)
{
    int64_t ttl_s = c->cfg.lease_ttl_ms / 1000, granted;
    if (ttl_s < 1)
        ttl_s = 1;
    if (gp_etcd_lease_grant(c->etcd, ttl_s, 0, &c->lease, &granted, err) < 0)
        return -1;
    char api[128] = "";
    if (c->httpd) {
        const char *colon = strrchr(c->cfg.api_listen, ':');
        snprintf(api, sizeof api, "http://%.*s:%d",
                 colon ? (int)(colon - c->cfg.api_listen) : 0, c->cfg.api_listen,
                 gp_httpd_port(c->httpd));
    }
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", c->cfg.id, "region", c->cfg.region,
                            "bid", c->bid_endpoint, "api", api, "public_key",
                            c->have_keys ? c->keys.public_key : "");
    /* What it runs (README "Versions and upgrades"): its release, the
     * protocol versions it speaks and the newest store schema it reads.
     * Spoken as the previous release (a test hook), it says nothing, as
     * that release did. */
    if (rec && c->protos[0] >= 3) {
        json_t *protos = json_array();
        for (int i = 0; i < c->nprotos; i++) {
            char v[32];
            snprintf(v, sizeof v, "gpupool/%d", c->protos[i]);
            json_array_append_new(protos, json_string(v));
        }
        json_object_set_new(rec, "version", json_string(GP_VERSION));
        json_object_set_new(rec, "protocols", protos);
        json_object_set_new(rec, "schema", json_integer(GP_SCHEMA_VERSION));
    }
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    char key[GP_KEY_MAX];
    int rc = -1;
    if (text == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    } else if (gp_etcd_put(c->etcd, gp_key_coordinator(key, c->cfg.prefix, c->cfg.region, c->cfg.id),
                           text, strlen(text), c->lease, NULL, err) == 0) {
        c->keepalive = gp_etcd_keepalive_start(c->etcd, c->lease, granted, s_on_lost, c, err);
        rc = c->keepalive ? 0 : -1;
    }
    free(text);
    if (rc < 0) {
        gp_etcd_lease_revoke(c->etcd, c->lease, NULL);
        c->lease = 0;
    }
    return rc;
}

static void s_campaign(coord_t *c)
{
    char key[GP_KEY_MAX];
    gp_key_leader(key, c->cfg.prefix, c->cfg.region);
    gp_etcd_cmp_t cmp = { .key = key, .target = GP_ETCD_CMP_CREATE, .result = GP_ETCD_CMP_EQUAL,
                          .number = 0 };
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = key, .value = c->cfg.id,
                         .value_len = strlen(c->cfg.id), .lease = c->lease };
    gp_etcd_op_t get = { .type = GP_ETCD_OP_RANGE, .key = key };
    gp_etcd_txn_t txn = { &cmp, 1, &put, 1, &get, 1 };
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_txn(c->etcd, &txn, &res, &err) < 0) {
        coord_count_etcd_error(c, "campaign", &err);
        return;
    }
    if (res.succeeded) {
        c->leader = 1;
        c->leader_rev = res.revision;
        gp_log_info("elected leader region=%s fence=%lld", c->cfg.region, (long long)c->leader_rev);
        coord_count(c, "gpupool_coordinator_elections_won_total", "Elections won", NULL);
    } else if (res.n_responses == 1 && res.responses[0].n_kvs == 1) {
        const gp_etcd_kv_t *kv = &res.responses[0].kvs[0];
        if (kv->value_len == strlen(c->cfg.id) && !memcmp(kv->value, c->cfg.id, kv->value_len) &&
            kv->lease == c->lease) {
            /* Our own key from before (a campaign whose answer was lost). */
            c->leader = 1;
            c->leader_rev = kv->create_revision;
        }
    }
    gp_etcd_result_free(&res);
}

int coord_election_start(coord_t *c, gp_err_t *err)
{
    (void)err;
    c->next_campaign_ms = 0;
    return 0;
}

void coord_election_tick(coord_t *c)
{
    int64_t now = gp_mono_ms();
    if (c->lease_lost) {
        coord_round_abort(c, "lease lost");
        gp_etcd_keepalive_stop(&c->keepalive);
        c->lease_lost = 0;
        c->registered = 0;
        c->leader = 0;
        c->lease = 0;
    }
    if (c->leader && !coord_is_leader(c)) {
        gp_log_warn("deposed: another coordinator leads region=%s", c->cfg.region);
        coord_round_abort(c, "deposed");
        c->leader = 0;
    }
    if (!c->registered) {
        gp_err_t err;
        if (now < c->next_campaign_ms)
            return;
        if (s_register(c, &err) < 0) {
            coord_count_etcd_error(c, "register", &err);
            gp_log_warn("registration failed, retrying in %lld ms err=\"%s\"",
                        (long long)s_backoff_ms, err.msg);
            c->next_campaign_ms = now + s_backoff_ms;
            s_backoff_ms = s_backoff_ms * 2 > 5000 ? 5000 : s_backoff_ms * 2;
            return;
        }
        s_backoff_ms = 250;
        c->registered = 1;
        c->next_campaign_ms = 0;
    }
    if (!c->leader && now >= c->next_campaign_ms) {
        s_campaign(c);
        c->next_campaign_ms = now + c->cfg.lease_ttl_ms / 2;
    }
}

void coord_election_stop(coord_t *c)
{
    gp_etcd_keepalive_stop(&c->keepalive);
    if (c->lease) {
        gp_err_t err;
        /* Resign: the leader key and the registration go with the lease. */
        if (gp_etcd_lease_revoke(c->etcd, c->lease, &err) < 0)
            gp_log_warn("could not revoke the lease on exit err=\"%s\"", err.msg);
        else if (c->leader)
            gp_log_info("resigned leadership region=%s", c->cfg.region);
    }
    c->leader = 0;
    c->lease = 0;
}
