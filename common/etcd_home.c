/*
 * etcd_home.c - local endpoints: probing them while the client works
 * elsewhere, and coming back to them.
 *
 * A pool's etcd members sit in different clouds, tens of milliseconds
 * apart, and each daemon names its own cloud's member(s) as local
 * endpoints.  Every request then costs a local round trip plus whatever
 * raft needs, instead of a wide-area round trip more.  When a local member
 * fails the engine fails over to the next endpoint (etcd.c), and the
 * client would stay there, a wide-area round trip away, until that member
 * failed in turn.  This task brings it back.
 *
 * The duty, run at every step while the client is on a non-local
 * endpoint:
 *   1. Wait one interval (GP_ETCD_HOME_PROBE_MS) after leaving the local
 *      endpoint, then probe a local endpoint: a linearizable range of one
 *      key that does not exist ("\0", count only).  It succeeds only when
 *      the member is up, has a leader and reaches a quorum: the member can
 *      serve, not merely accept connections.  An authentication refusal is
 *      an answer too (a restarted member forgets tokens).
 *   2. Two healthy probes in a row, one interval apart, and the client's
 *      current endpoint becomes that local one; a failed probe starts the
 *      count again, on the next local endpoint.  New requests go there at
 *      once; watches move at their next tick (etcd_watch.c, from home_gen).
 *   3. Flapping: a local member that fails again within FLAP_WINDOW_MS of
 *      the return doubles the interval (up to MAX_INTERVAL_MS) before the
 *      next return; a return that lasts FLAP_WINDOW_MS resets it.
 * A probe never marks an endpoint failed, never retries and never moves
 * the client by itself failing: it only ever brings the client home.
 */
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define HEALTHY_IN_A_ROW 2
#define FLAP_WINDOW_MS 60000
#define MAX_INTERVAL_MS 60000
#define PROBE_DEADLINE_MS 2000

struct gp_etcd_home {
    gp_etcd_t *etcd;
    gp_etcd_req_t req;
    bool in_flight;
    int probe_ep;               /* the local endpoint probed */
    int healthy;                /* healthy probes of it in a row */
    int64_t interval_ms;
    int64_t next_ms;            /* next probe; 0 = one interval after leaving */
    int64_t seen_left_ms;       /* the departure the task has reacted to */
    int64_t returned_ms;        /* the last failback */
    int64_t sent_ms;
};

static void s_on_done(gp_etcd_req_t *req)
{
    gp_etcd_home_t *h = req->owner;
    gp_etcd_t *etcd = h->etcd;
    int64_t now = gp_mono_ms();
    h->in_flight = false;
    h->next_ms = now + h->interval_ms;
    if (req->failed) {
        gp_log_debug("etcd local endpoint probe failed endpoint=%s err=\"%s\"",
                     etcd->endpoints[h->probe_ep], req->err.msg);
        h->healthy = 0;
        h->probe_ep = (h->probe_ep + 1) % etcd->n_local;
        return;
    }
    if (++h->healthy < HEALTHY_IN_A_ROW || etcd->cur_ep < etcd->n_local)
        return;
    gp_log_info("etcd endpoint back to local endpoint=%s from=%s probe_ms=%lld",
                etcd->endpoints[h->probe_ep], etcd->endpoints[etcd->cur_ep],
                (long long)(now - h->sent_ms));
    etcd->cur_ep = h->probe_ep;
    etcd->home_gen++;
    etcd->failbacks++;
    h->returned_ms = now;
    h->healthy = 0;
}

static int64_t s_tick(void *obj, int64_t now)
{
    gp_etcd_home_t *h = obj;
    gp_etcd_t *etcd = h->etcd;
    if (h->in_flight)
        return -1;
    if (etcd->cur_ep < etcd->n_local) {
        h->healthy = 0;
        if (h->returned_ms && now - h->returned_ms >= FLAP_WINDOW_MS)
            h->interval_ms = GP_ETCD_HOME_PROBE_MS;
        return now + GP_ETCD_HOME_PROBE_MS;
    }
    if (etcd->left_local_ms != h->seen_left_ms) {
        /* a new departure from the local endpoints */
        h->seen_left_ms = etcd->left_local_ms;
        if (h->returned_ms && etcd->left_local_ms - h->returned_ms < FLAP_WINDOW_MS) {
            h->interval_ms *= 2;
            if (h->interval_ms > MAX_INTERVAL_MS)
                h->interval_ms = MAX_INTERVAL_MS;
            gp_log_info("etcd local endpoint failed again soon after the return: probing every %lld ms",
                        (long long)h->interval_ms);
        }
        h->healthy = 0;
        h->next_ms = etcd->left_local_ms + h->interval_ms;
    }
    if (h->next_ms == 0)
        h->next_ms = now + h->interval_ms;
    if (now < h->next_ms)
        return h->next_ms;

    gp_etcd_req_rearm(&h->req);
    h->req.ep = h->probe_ep;
    int64_t limit = gp_etcd_request_timeout_ms(etcd);
    if (limit > PROBE_DEADLINE_MS)
        limit = PROBE_DEADLINE_MS;
    h->req.deadline_ms = now + limit;
    h->sent_ms = now;
    gp_err_t err;
    if (gp_etcd_bg_start(etcd, &h->req, &err) < 0) {
        h->next_ms = now + h->interval_ms;
        return h->next_ms;
    }
    h->in_flight = true;
    return -1;
}

static void s_free(void *obj)
{
    gp_etcd_home_t *h = obj;
    gp_etcd_bg_cancel(h->etcd, &h->req);
    gp_etcd_req_release(&h->req);
    free(h);
}

int gp_etcd_home_start(gp_etcd_t *etcd, gp_err_t *err)
{
    gp_etcd_home_t *h = calloc(1, sizeof(*h));
    if (!h)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    h->etcd = etcd;
    h->interval_ms = GP_ETCD_HOME_PROBE_MS;
    gp_etcd_req_init(&h->req, etcd, "/v3/kv/range");
    h->req.idempotent = true;
    h->req.probe = true;
    h->req.done = s_on_done;
    h->req.owner = h;
    /* key "\0": a key gpupool never writes; count only, linearizable */
    if (gp_ebuf_adds(&h->req.body, "{\"key\":\"AA==\",\"count_only\":true}") < 0 ||
        gp_etcd_loop_add(etcd, h, s_tick, s_free) < 0) {
        s_free(h);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    etcd->home = h;
    return 0;
}
