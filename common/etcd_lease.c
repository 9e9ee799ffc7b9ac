/*
 * etcd_lease.c - lease keep-alives driven by gp_etcd_step().
 *
 * Each keep-alive is a task of the client's loop with at most one request
 * in flight: a POST of {"ID":..} to /v3/lease/keepalive.  The gateway turns
 * that body into a one-message LeaseKeepAlive stream; etcd answers once and
 * the stream ends, so each refresh is a short request over a kept-alive
 * connection of the bg multi.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define RETRY_MS 500
#define MIN_DEADLINE_MS 250

struct gp_etcd_keepalive {
    gp_etcd_t *etcd;
    int64_t lease_id;
    int64_t ttl_ms;
    gp_etcd_lease_lost_fn *on_lost;
    void *arg;
    gp_etcd_req_t req;
    bool in_flight;
    int64_t last_ok_ms;     /* when etcd last confirmed the lease */
    int64_t next_due_ms;    /* next refresh */
    int64_t sent_ms;        /* when the refresh in flight was sent */
    bool gone;              /* etcd said the lease does not exist */
    bool dead;              /* loss reported (or stopped) */
    bool stopped;
};

static void s_on_done(gp_etcd_req_t *req)
{
    gp_etcd_keepalive_t *ka = req->owner;
    int64_t now = gp_mono_ms();
    ka->in_flight = false;
    gp_err_t err;
    int64_t ttl = 0;
    if (!req->failed && gp_etcd_parse_keepalive(req->resp.p, req->resp.len, &ttl, &err) == 0) {
        if (ttl <= 0) {
            ka->gone = true;
            return;
        }
        /* The lease is good for ttl seconds from the moment etcd answered;
         * count from when we sent, which is earlier, to stay on the safe side. */
        ka->last_ok_ms = ka->sent_ms;
        ka->next_due_ms = now + ttl * 1000 / 3;
        return;
    }
    if (req->failed) {
        err = req->err;
        if (err.code == GP_ERR_NOTFOUND) {
            ka->gone = true;
            return;
        }
    }
    gp_log_warn("etcd keep-alive failed lease=%" PRId64 " err=\"%s\"", ka->lease_id, err.msg);
    /* A member that timed out or could not be reached has been passed
     * over: try the next one at once.  Other errors wait a little. */
    ka->next_due_ms = err.code == GP_ERR_TIMEOUT || err.code == GP_ERR_TRANSPORT ? now : now + RETRY_MS;
}

static void s_lost(gp_etcd_keepalive_t *ka, const char *why)
{
    gp_err_t err;
    gp_err_set(&err, GP_ERR_LOST, "etcd lease %" PRId64 " lost: %s", ka->lease_id, why);
    gp_log_warn("etcd lease lost lease=%" PRId64 " reason=\"%s\"", ka->lease_id, why);
    ka->dead = true;
    gp_etcd_bg_cancel(ka->etcd, &ka->req);
    ka->in_flight = false;
    if (ka->on_lost)
        ka->on_lost(ka->etcd, ka->lease_id, &err, ka->arg);
}

/*
 * The keep-alive duty, run at every step.
 *
 * A lease lives ttl seconds after its last refresh.  The keep-alive
 * refreshes it every ttl/3 (from etcd's answer), so two refreshes can fail
 * before the lease is at risk.  A refresh that timed out or could not
 * reach its member is sent again at once to the next endpoint (the engine
 * moved on); one that got an error answer is retried after 500 ms.  The lease is reported lost, once, when
 *   - etcd answers that the lease does not exist (TTL 0 / "lease not
 *     found"): it expired or was revoked, and its keys are gone; or
 *   - ttl has passed since the sending time of the last refresh etcd
 *     confirmed: etcd may have expired it (we cannot tell), so the holder
 *     must act as if it did (stop acting as leader, re-register).
 * Each refresh gets a deadline of ttl/5 (at least 250 ms, at most the
 * client's request timeout): a hung member (stopped, or waiting for a raft
 * election) costs one short deadline, and several other members can be
 * tried before the lease is at risk.
 *
 * Keep-alives run inside the caller's synchronous calls too (the engine
 * pumps them, see etcd_loop.c): a daemon blocked in a long batch keeps its
 * lease.  Inside a pump a loss is not reported: the next step does it.
 */
static int64_t s_tick(void *obj, int64_t now)
{
    gp_etcd_keepalive_t *ka = obj;
    if (ka->dead || ka->stopped)
        return -1;
    if (gp_etcd_loop_pumping(ka->etcd) && (ka->gone || now - ka->last_ok_ms >= ka->ttl_ms))
        return now;   /* report the loss at the next real step, not inside a call */
    if (ka->gone) {
        s_lost(ka, "expired or revoked");
        return -1;
    }
    if (now - ka->last_ok_ms >= ka->ttl_ms) {
        s_lost(ka, "etcd unreachable for longer than the TTL");
        return -1;
    }
    if (!ka->in_flight && now >= ka->next_due_ms) {
        gp_etcd_req_rearm(&ka->req);
        int64_t limit = ka->ttl_ms / 5;
        if (limit < MIN_DEADLINE_MS)
            limit = MIN_DEADLINE_MS;
        if (limit > gp_etcd_request_timeout_ms(ka->etcd))
            limit = gp_etcd_request_timeout_ms(ka->etcd);
        ka->req.deadline_ms = now + limit;
        ka->sent_ms = now;
        gp_err_t err;
        if (gp_etcd_bg_start(ka->etcd, &ka->req, &err) < 0) {
            gp_log_warn("etcd keep-alive not sent lease=%" PRId64 " err=\"%s\"", ka->lease_id, err.msg);
            ka->next_due_ms = now + RETRY_MS;
        } else {
            ka->in_flight = true;
        }
    }
    int64_t d = ka->last_ok_ms + ka->ttl_ms;
    if (!ka->in_flight && ka->next_due_ms < d)
        d = ka->next_due_ms;
    return d;
}

static void s_free(void *obj)
{
    gp_etcd_keepalive_t *ka = obj;
    gp_etcd_bg_cancel(ka->etcd, &ka->req);
    gp_etcd_req_release(&ka->req);
    free(ka);
}

gp_etcd_keepalive_t *gp_etcd_keepalive_start(gp_etcd_t *etcd, int64_t lease_id, int64_t ttl_s,
                                             gp_etcd_lease_lost_fn *on_lost, void *arg,
                                             gp_err_t *err)
{
    if (lease_id == 0 || ttl_s <= 0) {
        gp_err_set(err, GP_ERR_INVALID, "etcd keep-alive needs a lease id and a positive TTL");
        return NULL;
    }
    gp_etcd_keepalive_t *ka = calloc(1, sizeof(*ka));
    if (!ka) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ka->etcd = etcd;
    ka->lease_id = lease_id;
    ka->ttl_ms = ttl_s * 1000;
    ka->on_lost = on_lost;
    ka->arg = arg;
    ka->last_ok_ms = gp_mono_ms();
    ka->next_due_ms = ka->last_ok_ms;   /* refresh (and check) right away */
    gp_etcd_req_init(&ka->req, etcd, "/v3/lease/keepalive");
    ka->req.idempotent = true;
    ka->req.in_sync = true;
    ka->req.done = s_on_done;
    ka->req.owner = ka;
    if (gp_ebuf_addf(&ka->req.body, "{\"ID\":%" PRId64 "}", lease_id) < 0 ||
        gp_etcd_loop_add(etcd, ka, s_tick, s_free, true) < 0) {
        s_free(ka);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return ka;
}

void gp_etcd_keepalive_stop(gp_etcd_keepalive_t **ka_p)
{
    gp_etcd_keepalive_t *ka = ka_p ? *ka_p : NULL;
    if (!ka)
        return;
    *ka_p = NULL;
    if (ka->stopped)
        return;
    ka->stopped = true;
    gp_etcd_bg_cancel(ka->etcd, &ka->req);
    ka->in_flight = false;
    gp_etcd_loop_remove(ka->etcd, ka);
}

void gp_etcd_keepalives_pump(gp_etcd_t *etcd)
{
    gp_etcd_loop_pump(etcd);
}
