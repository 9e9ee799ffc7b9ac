/*
 * etcd_watch.c - watch streams over etcd's gRPC Watch service.
 *
 * A watch is one long-lived gRPC call, POST /etcdserverpb.Watch/Watch over
 * HTTP/2 (libcurl, with nghttp2), whose request is a single WatchRequest
 * holding the create_request; the request side then ends, which etcd takes
 * as "no more requests" and keeps streaming.  The answer is a stream of
 * WatchResponse messages, each in gRPC's framing: one byte (compressed:
 * always 0 here, none was offered), four bytes of length (big-endian), the
 * protobuf bytes (etcd_watch.proto, decoded by protobuf-c).  The call's
 * end carries grpc-status and grpc-message in the trailers (etcd.c reads
 * them).
 *
 * Why gRPC and not the JSON gateway as every other request: etcd's gateway
 * turns each watch response into JSON inside etcd, at about six times the
 * CPU per event of the gRPC stream itself, and every placement is watched
 * by several daemons (see README, "The etcd client").
 *
 * The stream's bytes are buffered by the write callback inside curl; the
 * watch's tick (from gp_etcd_step) cuts complete messages, decodes them and
 * calls the user back, so callbacks never run inside libcurl.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "etcd_watch.pb-c.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define S_IN_KEEP (256 * 1024)   /* stream buffer kept between bursts */
#define S_MSG_MAX ((size_t)64 << 20)   /* the longest WatchResponse taken */
#define S_DRAINS 16                    /* drains in one tick, at most */

typedef enum { W_CONNECT, W_STREAMING, W_DEAD } s_state_t;

struct gp_etcd_watch {
    gp_etcd_t *etcd;
    char *key;
    size_t key_len;
    bool prefix;
    char *range_end;        /* explicit end, or NULL */
    bool prev_kv;
    bool progress_notify;
    gp_etcd_watch_fn *cb;
    void *arg;

    int64_t next_rev;       /* resume point; 0 = "now" until the first created */
    s_state_t state;
    gp_etcd_req_t req;
    gp_ebuf_t in;           /* stream bytes not yet parsed */
    size_t in_off;
    int64_t connect_at;     /* W_CONNECT: when to (re)connect */
    int backoff_ms;
    int connects;
    bool got_data;          /* this connection delivered something */
    bool fresh;             /* bytes came since the last drain */
    bool auth_retried;      /* a refusal already led to a new token */
    bool fatal;             /* etcd refused the watch itself: report, end */
    gp_err_t fatal_err;
    bool destroyed;
    unsigned home_gen;      /* the client's home_gen when the stream opened */
};

static bool s_on_data(gp_etcd_req_t *req, const char *data, size_t len)
{
    gp_etcd_watch_t *w = req->owner;
    if (w->in.len - w->in_off + len > S_MSG_MAX + 5)
        return false;   /* a message this long is not a watch response */
    if (gp_ebuf_add(&w->in, data, len) < 0)
        return false;
    w->fresh = true;
    gp_etcd_loop_wake(w->etcd);
    return true;
}

/* The stream ended (closed, reset, or failed to start). */
static void s_on_done(gp_etcd_req_t *req)
{
    gp_etcd_watch_t *w = req->owner;
    if (w->state == W_DEAD)
        return;
    if (req->failed && !req->streamed_ok &&
        (req->err.code == GP_ERR_AUTH || (req->err.code == GP_ERR_SERVER && req->err.status == 3))) {
        /* refused, not unreachable: retrying would not help */
        w->fatal = true;
        w->fatal_err = req->err;
        w->state = W_CONNECT;
        w->connect_at = INT64_MAX;
        gp_etcd_loop_wake(w->etcd);
        return;
    }
    w->state = W_CONNECT;
    if (w->got_data || req->streamed_ok) {
        w->backoff_ms = 0;
    } else {
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 50;
        if (w->backoff_ms > 2000)
            w->backoff_ms = 2000;
    }
    w->connect_at = gp_mono_ms() + w->backoff_ms;
    if (req->failed)
        gp_log_info("etcd watch stream ended key=%.*s next_rev=%" PRId64 " retry_ms=%d err=\"%s\"",
                    (int)(w->key_len > 128 ? 128 : w->key_len), w->key, w->next_rev, w->backoff_ms,
                    req->err.msg);
    gp_etcd_loop_wake(w->etcd);
}

static void s_deliver(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp)
{
    if (w->cb)
        w->cb(w, resp, w->arg);
}

static void s_die(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp)
{
    w->state = W_DEAD;
    gp_etcd_bg_cancel(w->etcd, &w->req);
    s_deliver(w, resp);
}

/* Drop the current stream and connect again from next_rev. */
static void s_restart(gp_etcd_watch_t *w, const char *why, bool endpoint_bad)
{
    gp_log_warn("etcd watch restarts key=%.*s next_rev=%" PRId64 " reason=\"%s\"",
                (int)(w->key_len > 128 ? 128 : w->key_len), w->key, w->next_rev, why);
    gp_etcd_bg_cancel(w->etcd, &w->req);
    if (endpoint_bad && w->req.ep >= 0)
        gp_etcd_endpoint_failed(w->etcd, w->req.ep);
    w->state = W_CONNECT;
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 50;
    if (w->backoff_ms > 2000)
        w->backoff_ms = 2000;
    w->connect_at = gp_mono_ms() + w->backoff_ms;
}

void gp_etcd_watch_msg_free(gp_etcd_watch_msg_t *m)
{
    for (size_t i = 0; i < m->n_events; i++) {
        gp_etcd_kv_free(&m->events[i].kv);
        gp_etcd_kv_free(&m->events[i].prev_kv);
    }
    free(m->events);
    memset(m, 0, sizeof(*m));
}

/* A NUL-terminated copy of a bytes field (absent: empty). */
static char *s_bytes(const ProtobufCBinaryData *b, size_t *len)
{
    char *p = malloc(b->len + 1);
    if (!p)
        return NULL;
    if (b->len)
        memcpy(p, b->data, b->len);
    p[b->len] = '\0';
    *len = b->len;
    return p;
}

static int s_kv(const Etcdserverpb__KeyValue *src, gp_etcd_kv_t *kv)
{
    kv->create_revision = src->create_revision;
    kv->mod_revision = src->mod_revision;
    kv->version = src->version;
    kv->lease = src->lease;
    return (kv->key = s_bytes(&src->key, &kv->key_len)) &&
           (kv->value = s_bytes(&src->value, &kv->value_len)) ? 0 : -1;
}

int gp_etcd_watch_msg_parse(const void *data, size_t len, gp_etcd_watch_msg_t *m, gp_err_t *err)
{
    memset(m, 0, sizeof(*m));
    Etcdserverpb__WatchResponse *r = etcdserverpb__watch_response__unpack(NULL, len, data);
    if (!r)
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd sent a watch message that is not a WatchResponse "
                          "(%zu bytes)", len);
    int rc = 0;
    m->revision = r->header ? r->header->revision : 0;
    m->compact_revision = r->compact_revision;
    m->created = r->created;
    m->canceled = r->canceled;
    if (r->cancel_reason)
        gp_strlcpy(m->cancel_reason, r->cancel_reason, sizeof(m->cancel_reason));
    if (r->n_events > 0 && !(m->events = calloc(r->n_events, sizeof(*m->events)))) {
        rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        const Etcdserverpb__Event *e = r->events[i];
        gp_etcd_event_t *ev = &m->events[i];
        m->n_events = i + 1;   /* what to free */
        if (!e->kv) {
            rc = gp_err_set(err, GP_ERR_PROTOCOL, "etcd sent a watch event without a kv");
            goto out;
        }
        if (e->type != ETCDSERVERPB__EVENT__EVENT_TYPE__PUT && e->type != ETCDSERVERPB__EVENT__EVENT_TYPE__DELETE) {
            rc = gp_err_set(err, GP_ERR_PROTOCOL, "etcd sent a watch event of an unknown type (%d)", (int)e->type);
            goto out;
        }
        ev->type = e->type == ETCDSERVERPB__EVENT__EVENT_TYPE__DELETE ? GP_ETCD_EVENT_DELETE : GP_ETCD_EVENT_PUT;
        ev->has_prev_kv = e->prev_kv != NULL;
        if (s_kv(e->kv, &ev->kv) < 0 || (e->prev_kv && s_kv(e->prev_kv, &ev->prev_kv) < 0)) {
            rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    etcdserverpb__watch_response__free_unpacked(r, NULL);
    if (rc < 0)
        gp_etcd_watch_msg_free(m);
    return rc;
}

/* Deliver the events ev[0..n) of a response at revision rev, but those
 * already delivered (or out of order): never deliver twice.  The events
 * stay the caller's. */
static void s_deliver_events(gp_etcd_watch_t *w, int64_t rev, gp_etcd_event_t *ev, size_t n)
{
    size_t keep = 0;
    int64_t last = w->next_rev - 1;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kv.mod_revision < last || (w->next_rev > 0 && ev[i].kv.mod_revision < w->next_rev))
            continue;
        last = ev[i].kv.mod_revision;
        if (keep != i) {   /* swap, so that the caller still frees every event */
            gp_etcd_event_t t = ev[keep];
            ev[keep] = ev[i];
            ev[i] = t;
        }
        keep++;
    }
    if (keep > 0) {
        w->next_rev = last + 1;
        w->got_data = true;
        w->backoff_ms = 0;
        gp_etcd_watch_resp_t r = { .kind = GP_ETCD_WATCH_EVENTS, .revision = rev,
                                   .events = ev, .n_events = keep };
        s_deliver(w, &r);
    }
}

/* One message of the stream.  Returns -1 when the stream must be restarted
 * (or the watch has ended). */
static int s_handle_msg(gp_etcd_watch_t *w, const uint8_t *data, size_t len)
{
    gp_etcd_watch_msg_t m;
    gp_err_t err;
    if (gp_etcd_watch_msg_parse(data, len, &m, &err) < 0) {
        s_restart(w, err.msg, true);
        return -1;
    }
    int rc = 0;
    if (m.canceled) {
        gp_etcd_watch_resp_t r = { .revision = m.revision, .compact_revision = m.compact_revision };
        if (m.compact_revision > 0) {
            r.kind = GP_ETCD_WATCH_COMPACTED;
            gp_log_info("etcd watch compacted key=%.*s next_rev=%" PRId64 " compact_rev=%" PRId64,
                        (int)(w->key_len > 128 ? 128 : w->key_len), w->key, w->next_rev, m.compact_revision);
            s_die(w, &r);
        } else if (w->etcd->username && !w->auth_retried) {
            /* etcd answers "permission denied" to an expired token too: get
             * a new token and try once more before giving up */
            w->auth_retried = true;
            gp_err_t aerr;
            if (gp_etcd_authenticate(w->etcd, true, &aerr) < 0)
                gp_log_warn("etcd watch cannot re-authenticate err=\"%s\"", aerr.msg);
            s_restart(w, "cancelled by etcd; retrying with a new token", false);
            w->backoff_ms = 0;
            w->connect_at = gp_mono_ms();
        } else {
            gp_err_t cerr;
            gp_err_set(&cerr, GP_ERR_SERVER, "etcd cancelled the watch: %s",
                       m.cancel_reason[0] ? m.cancel_reason : "no reason given");
            r.kind = GP_ETCD_WATCH_ERROR;
            r.err = &cerr;
            s_die(w, &r);
        }
        rc = -1;
    } else if (m.created) {
        w->auth_retried = false;
        if (w->next_rev == 0)
            w->next_rev = m.revision + 1;   /* "from now": later events are > rev */
    } else if (m.n_events == 0) {
        gp_etcd_watch_resp_t r = { .kind = GP_ETCD_WATCH_PROGRESS, .revision = m.revision };
        s_deliver(w, &r);
    } else {
        s_deliver_events(w, m.revision, m.events, m.n_events);
    }
    gp_etcd_watch_msg_free(&m);
    return rc;
}

static int s_connect(gp_etcd_watch_t *w)
{
    gp_etcd_req_t *req = &w->req;
    gp_etcd_req_rearm(req);
    req->body.len = 0;
    w->in.len = 0;
    w->in_off = 0;
    w->got_data = false;
    /* WatchRequest{create_request}, in one gRPC frame */
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    char *end = NULL;
    cr.key = (ProtobufCBinaryData){ w->key_len, (uint8_t *)w->key };
    if (w->range_end) {
        cr.range_end = (ProtobufCBinaryData){ strlen(w->range_end), (uint8_t *)w->range_end };
    } else if (w->prefix) {
        if (!(end = malloc(w->key_len + 1)))
            return -1;
        cr.range_end = (ProtobufCBinaryData){ gp_etcd_prefix_end(w->key, w->key_len, end), (uint8_t *)end };
    }
    cr.start_revision = w->next_rev;
    cr.prev_kv = w->prev_kv;
    cr.progress_notify = w->progress_notify;
    wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &cr;
    size_t n = etcdserverpb__watch_request__get_packed_size(&wr);
    int rc = gp_ebuf_reserve(&req->body, n + 5);
    if (rc == 0) {
        uint8_t *p = (uint8_t *)req->body.p;
        p[0] = 0;   /* not compressed */
        p[1] = (uint8_t)(n >> 24);
        p[2] = (uint8_t)(n >> 16);
        p[3] = (uint8_t)(n >> 8);
        p[4] = (uint8_t)n;
        req->body.len = 5 + etcdserverpb__watch_request__pack(&wr, p + 5);
    }
    free(end);
    if (rc < 0)
        return -1;
    gp_err_t err;
    if (gp_etcd_bg_start(w->etcd, req, &err) < 0) {
        gp_log_warn("etcd watch cannot start key=%.*s err=\"%s\"",
                    (int)(w->key_len > 128 ? 128 : w->key_len), w->key, err.msg);
        return -1;
    }
    w->connects++;
    w->state = W_STREAMING;
    w->home_gen = w->etcd->home_gen;
    return 0;
}

/*
 * The watch's duty, run at every step.
 *
 * Resumption.  The watch remembers next_rev: one past the mod revision of the
 * last event it delivered (or, for a watch "from now", one past the header
 * revision of the "created" response, since every later event has a higher
 * revision).  Events are delivered only from complete messages (a whole
 * WatchResponse), and etcd never splits one revision across responses, so
 * after any disconnect - the member killed, the stream reset, a garbled
 * message, a "no leader" error from the has-leader check - the watch opens a
 * new stream on the client's current endpoint (the failed one is marked,
 * so that is the next member) with start_revision = next_rev.  etcd then
 * replays everything from next_rev on: nothing is lost, and nothing already
 * delivered comes again (events below next_rev are dropped as a second
 * guard).  Progress notifications do not move next_rev: resuming from the
 * last delivered event is always safe.  A partial message left in the buffer
 * at a disconnect is discarded; its events come again on the new stream.
 *
 * When next_rev has been compacted away meanwhile, etcd cancels the new
 * watch with compact_revision set: the user gets GP_ETCD_WATCH_COMPACTED
 * and must re-list (a range at compact_revision or later) and watch again.
 *
 * Reconnects after a stream that delivered data are immediate; failed
 * connects back off from 50 ms to 2 s.
 */
static int64_t s_tick(void *obj, int64_t now)
{
    gp_etcd_watch_t *w = obj;
    if (w->destroyed || w->state == W_DEAD)
        return -1;
    if (w->fatal) {
        gp_etcd_watch_resp_t r = { .kind = GP_ETCD_WATCH_ERROR, .err = &w->fatal_err };
        s_die(w, &r);
        return -1;
    }
    /* complete messages; after those a delivery brought, the stream is
     * drained (gp_etcd_bg_drain) and what that brings parsed too */
    for (int drains = 0; w->state != W_DEAD && !w->destroyed;) {
        const uint8_t *p = (const uint8_t *)w->in.p + w->in_off;
        size_t avail = w->in.len - w->in_off;
        size_t n = avail >= 5 ? (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4] : 0;
        if (avail < 5 || (p[0] == 0 && n <= S_MSG_MAX && avail < 5 + n)) {
            if (!w->fresh || w->state != W_STREAMING || drains++ == S_DRAINS)
                break;
            w->fresh = false;
            gp_etcd_bg_drain(w->etcd, &w->req);
            continue;
        }
        if (p[0] != 0 || n > S_MSG_MAX) {
            s_restart(w, p[0] != 0 ? "a compressed watch message (none was offered)"
                                   : "a watch message too long", true);
            break;
        }
        w->in_off += 5 + n;
        if (s_handle_msg(w, p + 5, n) < 0)
            break;   /* restarted or dead: the buffer is reset on connect */
    }
    if (w->destroyed || w->state == W_DEAD)
        return -1;
    if (w->in_off > 0 && w->in_off == w->in.len) {
        /* All parsed.  A burst (a long synchronous call of the caller, when
         * the stream is only buffered) may have grown the buffer far past
         * a stream's usual size: give that back rather than keep it. */
        if (w->in.cap > S_IN_KEEP)
            gp_ebuf_free(&w->in);
        w->in.len = w->in_off = 0;
    } else if (w->in_off > 65536) {
        memmove(w->in.p, w->in.p + w->in_off, w->in.len - w->in_off);
        w->in.len -= w->in_off;
        w->in_off = 0;
    }
    if (w->state == W_STREAMING && w->home_gen != w->etcd->home_gen) {
        /* The client went back to a local endpoint (etcd_home.c): a stream
         * from another member moves there too, resumed from next_rev like
         * any reconnect (a watch "from now" not yet created stays). */
        w->home_gen = w->etcd->home_gen;
        if (w->next_rev > 0 && w->req.ep >= w->etcd->n_local && w->etcd->cur_ep < w->etcd->n_local) {
            gp_log_info("etcd watch moves to the local endpoint key=%.*s endpoint=%s next_rev=%" PRId64,
                        (int)(w->key_len > 128 ? 128 : w->key_len), w->key,
                        gp_etcd_endpoint(w->etcd), w->next_rev);
            gp_etcd_bg_cancel(w->etcd, &w->req);
            w->state = W_CONNECT;
            w->backoff_ms = 0;
            w->connect_at = now;
        }
    }
    if (w->state == W_CONNECT) {
        if (now < w->connect_at)
            return w->connect_at;
        if (s_connect(w) < 0) {
            w->state = W_CONNECT;
            w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 50;
            if (w->backoff_ms > 2000)
                w->backoff_ms = 2000;
            w->connect_at = now + w->backoff_ms;
            return w->connect_at;
        }
    }
    return -1;
}

static void s_free(void *obj)
{
    gp_etcd_watch_t *w = obj;
    gp_etcd_bg_cancel(w->etcd, &w->req);
    gp_etcd_req_release(&w->req);
    gp_ebuf_free(&w->in);
    free(w->key);
    free(w->range_end);
    free(w);
}

gp_etcd_watch_t *gp_etcd_watch_new(gp_etcd_t *etcd, const gp_etcd_watch_opts_t *opts, gp_err_t *err)
{
    if (!opts || !opts->key || !opts->cb) {
        gp_err_set(err, GP_ERR_INVALID, "etcd watch needs a key and a callback");
        return NULL;
    }
    size_t key_len = opts->key_len ? opts->key_len : strlen(opts->key);
    if (key_len == 0 || opts->start_revision < 0) {
        gp_err_set(err, GP_ERR_INVALID, "etcd watch with an empty key or a negative revision");
        return NULL;
    }
    gp_etcd_watch_t *w = calloc(1, sizeof(*w));
    if (!w || !(w->key = malloc(key_len + 1))) {
        free(w);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(w->key, opts->key, key_len);
    w->key[key_len] = '\0';
    w->key_len = key_len;
    w->etcd = etcd;
    w->prefix = opts->prefix;
    if (opts->range_end && (w->range_end = strdup(opts->range_end)) == NULL) {
        free(w->key);
        free(w);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->prev_kv = opts->prev_kv;
    w->progress_notify = opts->progress_notify;
    w->cb = opts->cb;
    w->arg = opts->arg;
    w->next_rev = opts->start_revision;
    w->state = W_CONNECT;
    w->connect_at = 0;
    gp_etcd_req_init(&w->req, etcd, "/etcdserverpb.Watch/Watch");
    w->req.grpc = true;
    w->req.streaming = true;
    w->req.idempotent = true;
    w->req.on_data = s_on_data;
    w->req.done = s_on_done;
    w->req.owner = w;
    /* connect now so that a watch "from now" starts from this moment */
    if (s_connect(w) < 0)
        w->connect_at = gp_mono_ms() + 50;
    if (gp_etcd_loop_add(etcd, w, s_tick, s_free) < 0) {
        s_free(w);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return w;
}

int64_t gp_etcd_watch_next_revision(const gp_etcd_watch_t *w)
{
    return w->next_rev;
}

int gp_etcd_watch_connects(const gp_etcd_watch_t *w)
{
    return w->connects;
}

void gp_etcd_watch_destroy(gp_etcd_watch_t **w_p)
{
    gp_etcd_watch_t *w = w_p ? *w_p : NULL;
    if (!w)
        return;
    *w_p = NULL;
    if (w->destroyed)
        return;
    w->destroyed = true;
    w->state = W_DEAD;
    gp_etcd_bg_cancel(w->etcd, &w->req);
    gp_etcd_loop_remove(w->etcd, w);
}
