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

/* A failed registration is retried after 250 ms, doubling to 5 s. */
#define S_REGISTER_BACKOFF_MS     250
#define S_REGISTER_BACKOFF_MAX_MS 5000

/* election.c's own state; the others ask coord_is_leader,
 * coord_is_registered, coord_leader_fence. */
struct coord_election {
    int64_t lease;
    gp_etcd_keepalive_t *keepalive;
    int lease_lost;
    int registered;
    int leader;
    int64_t leader_rev;              /* create revision of our leader key: the fence */
    int64_t next_campaign_ms;
    int64_t register_backoff_ms;     /* the next retry's delay after a failed registration */
};

static void s_on_lost(gp_etcd_t *etcd, int64_t lease, const gp_err_t *why, void *arg)
{
    (void)etcd;
    coord_t *c = arg;
    gp_log_warn("lease lost lease=%lld leader=%s reason=\"%s\"", (long long)lease,
                c->election->leader ? "yes" : "no", why ? why->msg : "-");
    c->election->lease_lost = 1;
    gp_metric_inc(c->m.lease_lost);
    c->election->leader = 0;
}

int coord_is_registered(coord_t *c)
{
    return c->election && c->election->registered;
}

int64_t coord_leader_fence(coord_t *c)
{
    return c->election ? c->election->leader_rev : 0;
}

void coord_election_campaign_soon(coord_t *c)
{
    if (c->election)
        c->election->next_campaign_ms = 0;
}

/* Elected, the lease held, and not deposed as far as the cache shows. */
static int s_elected(coord_t *c)
{
    if (c->election == NULL || !c->election->leader || c->election->lease_lost)
        return 0;
    const char *who = coord_cache_leader(c, c->cfg.region);
    return who == NULL || strcmp(who, c->cfg.id) == 0;   /* else another leads: deposed */
}

int coord_is_leader(coord_t *c)
{
    /* Not before the cache holds our own election: every commit of the
     * leaders before us (fenced on their keys, which were gone before ours
     * was made) is then in it, so that a lagging cache never places a job
     * a previous leader placed on another node. */
    return s_elected(c) && coord_cache_revision(c) >= c->election->leader_rev;
}

int coord_is_first_leader(coord_t *c)
{
    if (!coord_is_leader(c))
        return 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_LEADERS); it.key;
         it = coord_cache_next(c, it))
        if (strcmp(it.key, c->cfg.region) < 0)
            return 0;
    return 1;
}

static int s_register(coord_t *c, gp_err_t *err)
{
    int64_t ttl_s = c->cfg.lease_ttl_ms / 1000, granted;
    if (ttl_s < 1)
        ttl_s = 1;
    if (gp_etcd_lease_grant(c->etcd, ttl_s, 0, &c->election->lease, &granted, err) < 0)
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
                           text, strlen(text), c->election->lease, NULL, err) == 0) {
        c->election->keepalive = gp_etcd_keepalive_start(c->etcd, c->election->lease, granted, s_on_lost, c, err);
        rc = c->election->keepalive ? 0 : -1;
    }
    free(text);
    if (rc < 0) {
        gp_etcd_lease_revoke(c->etcd, c->election->lease, NULL);
        c->election->lease = 0;
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
                         .value_len = strlen(c->cfg.id), .lease = c->election->lease };
    gp_etcd_op_t get = { .type = GP_ETCD_OP_RANGE, .key = key };
    gp_etcd_txn_t txn = { &cmp, 1, &put, 1, &get, 1 };
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_txn(c->etcd, &txn, &res, &err) < 0) {
        coord_metrics_etcd_error(&c->m, "campaign", &err);
        return;
    }
    if (res.succeeded) {
        c->election->leader = 1;
        c->election->leader_rev = res.revision;
        gp_log_info("elected leader region=%s fence=%lld", c->cfg.region, (long long)c->election->leader_rev);
        gp_metric_inc(c->m.elections_won);
    } else if (res.n_responses == 1 && res.responses[0].n_kvs == 1) {
        const gp_etcd_kv_t *kv = &res.responses[0].kvs[0];
        if (kv->value_len == strlen(c->cfg.id) && !memcmp(kv->value, c->cfg.id, kv->value_len) &&
            kv->lease == c->election->lease) {
            /* Our own key from before (a campaign whose answer was lost). */
            c->election->leader = 1;
            c->election->leader_rev = kv->create_revision;
        }
    }
    gp_etcd_result_free(&res);
}

int coord_election_start(coord_t *c, gp_err_t *err)
{
    if (c->election == NULL && (c->election = calloc(1, sizeof *c->election)) == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    c->election->next_campaign_ms = 0;
    c->election->register_backoff_ms = S_REGISTER_BACKOFF_MS;
    return 0;
}

void coord_election_tick(coord_t *c)
{
    int64_t now = gp_mono_ms();
    if (c->election->lease_lost) {
        coord_round_abort(c, "lease lost");
        gp_etcd_keepalive_stop(&c->election->keepalive);
        c->election->lease_lost = 0;
        c->election->registered = 0;
        c->election->leader = 0;
        c->election->lease = 0;
    }
    if (c->election->leader && !s_elected(c)) {
        gp_log_warn("deposed: another coordinator leads region=%s", c->cfg.region);
        coord_round_abort(c, "deposed");
        c->election->leader = 0;
    }
    if (!c->election->registered) {
        gp_err_t err;
        if (now < c->election->next_campaign_ms)
            return;
        if (s_register(c, &err) < 0) {
            coord_metrics_etcd_error(&c->m, "register", &err);
            gp_log_warn("registration failed, retrying in %lld ms err=\"%s\"",
                        (long long)c->election->register_backoff_ms, err.msg);
            c->election->next_campaign_ms = now + c->election->register_backoff_ms;
            c->election->register_backoff_ms = c->election->register_backoff_ms * 2 > S_REGISTER_BACKOFF_MAX_MS
                                         ? S_REGISTER_BACKOFF_MAX_MS : c->election->register_backoff_ms * 2;
            return;
        }
        c->election->register_backoff_ms = S_REGISTER_BACKOFF_MS;
        c->election->registered = 1;
        c->election->next_campaign_ms = 0;
    }
    if (!c->election->leader && now >= c->election->next_campaign_ms) {
        s_campaign(c);
        c->election->next_campaign_ms = now + c->cfg.lease_ttl_ms / 2;
    }
}

void coord_election_stop(coord_t *c)
{
    if (c->election == NULL)
        return;
    gp_etcd_keepalive_stop(&c->election->keepalive);
    if (c->election->lease) {
        gp_err_t err;
        /* Resign: the leader key and the registration go with the lease. */
        if (gp_etcd_lease_revoke(c->etcd, c->election->lease, &err) < 0)
            gp_log_warn("could not revoke the lease on exit err=\"%s\"", err.msg);
        else if (c->election->leader)
            gp_log_info("resigned leadership region=%s", c->cfg.region);
    }
    free(c->election);
    c->election = NULL;
}
