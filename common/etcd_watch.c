/*
 * etcd_watch.c - watch streams over the gateway's /v3/watch.
 *
 * A watch is one long-lived POST whose body is a single create_request; the
 * gateway answers with a stream of JSON objects, one per line, each
 * {"result": WatchResponse} (or {"error": ...} before it closes).  The
 * stream's bytes are buffered by the write callback inside curl; the
 * watch's tick (from gp_etcd_step) cuts complete lines, parses them and
 * calls the user back, so callbacks never run inside libcurl.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define S_IN_KEEP (256 * 1024)   /* stream buffer kept between bursts */

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
    bool auth_retried;      /* a refusal already led to a new token */
    bool fatal;             /* etcd refused the watch itself: report, end */
    gp_err_t fatal_err;
    bool destroyed;
    unsigned home_gen;      /* the client's home_gen when the stream opened */
};

static bool s_on_data(gp_etcd_req_t *req, const char *data, size_t len)
{
    gp_etcd_watch_t *w = req->owner;
    if (w->in.len - w->in_off + len > ((size_t)64 << 20))
        return false;   /* a line this long is not a watch response */
    if (gp_ebuf_add(&w->in, data, len) < 0)
        return false;
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

static void s_free_events(gp_etcd_event_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gp_etcd_kv_free(&ev[i].kv);
        gp_etcd_kv_free(&ev[i].prev_kv);
    }
    free(ev);
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

/* One line of the stream.  Returns -1 when the stream must be restarted.
 * The usual lines take the fast path (gp_etcd_parse_watch_fast); the rest
 * (errors, cancellations, anything unusual) is parsed and checked with
 * jansson. */
static int s_handle_line(gp_etcd_watch_t *w, const char *line, size_t len)
{
    gp_etcd_watch_line_t wl;
    if (gp_etcd_parse_watch_fast(line, len, &wl) == 1) {
        if (wl.created) {
            w->auth_retried = false;
            if (w->next_rev == 0)
                w->next_rev = wl.revision + 1;   /* "from now": later events are > rev */
        } else if (wl.n_events == 0) {
            gp_etcd_watch_resp_t r = { .kind = GP_ETCD_WATCH_PROGRESS, .revision = wl.revision };
            s_deliver(w, &r);
        } else {
            s_deliver_events(w, wl.revision, wl.events, wl.n_events);
        }
        gp_etcd_watch_line_free(&wl);
        return 0;
    }
    gp_err_t err;
    json_t *j = gp_etcd_json_load(line, len, &err);
    if (!j) {
        s_restart(w, err.msg, true);
        return -1;
    }
    json_t *res = json_object_get(j, "result");
    json_t *jerr = json_object_get(j, "error");
    int rc = 0;
    gp_etcd_event_t *ev = NULL;
    size_t n_ev = 0;
    if (jerr || !json_is_object(res)) {
        json_t *m = json_is_object(jerr) ? json_object_get(jerr, "message") : jerr;
        char why[200];
        snprintf(why, sizeof(why), "stream error: %s",
                 json_is_string(m) ? json_string_value(m) : "a line without a result");
        s_restart(w, why, true);
        rc = -1;
        goto out;
    }
    int64_t rev, compact_rev;
    bool created, canceled;
    json_t *events = json_object_get(res, "events");
    if (gp_etcd_parse_header_rev(res, &rev, &err) < 0 ||
        gp_etcd_json_int64(res, "compact_revision", &compact_rev, &err) < 0 ||
        gp_etcd_json_bool(res, "created", &created, &err) < 0 ||
        gp_etcd_json_bool(res, "canceled", &canceled, &err) < 0 ||
        (events && !json_is_null(events) && !json_is_array(events))) {
        s_restart(w, events && !json_is_array(events) ? "events is not an array" : err.msg, true);
        rc = -1;
        goto out;
    }
    if (canceled) {
        gp_etcd_watch_resp_t r = { .revision = rev, .compact_revision = compact_rev };
        if (compact_rev > 0) {
            r.kind = GP_ETCD_WATCH_COMPACTED;
            gp_log_info("etcd watch compacted key=%.*s next_rev=%" PRId64 " compact_rev=%" PRId64,
                        (int)(w->key_len > 128 ? 128 : w->key_len), w->key, w->next_rev, compact_rev);
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
            json_t *reason = json_object_get(res, "cancel_reason");
            gp_err_t cerr;
            gp_err_set(&cerr, GP_ERR_SERVER, "etcd cancelled the watch: %s",
                       json_is_string(reason) ? json_string_value(reason) : "no reason given");
            r.kind = GP_ETCD_WATCH_ERROR;
            r.err = &cerr;
            s_die(w, &r);
        }
        rc = -1;
        goto out;
    }
    if (created) {
        w->auth_retried = false;
        if (w->next_rev == 0)
            w->next_rev = rev + 1;   /* "from now": later events are > rev */
        goto out;
    }
    n_ev = events ? json_array_size(events) : 0;
    if (n_ev == 0) {
        gp_etcd_watch_resp_t r = { .kind = GP_ETCD_WATCH_PROGRESS, .revision = rev };
        s_deliver(w, &r);
        goto out;
    }
    if (!(ev = calloc(n_ev, sizeof(*ev)))) {
        s_restart(w, "out of memory", true);
        rc = -1;
        goto out;
    }
    size_t keep = 0;
    for (size_t i = 0; i < n_ev; i++) {
        json_t *je = json_array_get(events, i), *jt, *jkv, *jprev;
        gp_etcd_event_t *e = &ev[keep];
        memset(e, 0, sizeof(*e));
        if (!json_is_object(je) || !json_is_object(jkv = json_object_get(je, "kv"))) {
            s_restart(w, "watch event without a kv", true);
            n_ev = keep;
            rc = -1;
            goto out;
        }
        jt = json_object_get(je, "type");
        if (jt && !json_is_null(jt) && (!json_is_string(jt) ||
            (strcmp(json_string_value(jt), "PUT") != 0 && strcmp(json_string_value(jt), "DELETE") != 0))) {
            s_restart(w, "watch event of an unknown type", true);
            n_ev = keep;
            rc = -1;
            goto out;
        }
        e->type = jt && json_is_string(jt) && strcmp(json_string_value(jt), "DELETE") == 0
                      ? GP_ETCD_EVENT_DELETE : GP_ETCD_EVENT_PUT;
        if (gp_etcd_parse_kv(jkv, &e->kv, &err) < 0) {
            s_restart(w, err.msg, true);
            n_ev = keep;
            rc = -1;
            goto out;
        }
        jprev = json_object_get(je, "prev_kv");
        if (jprev && !json_is_null(jprev)) {
            if (gp_etcd_parse_kv(jprev, &e->prev_kv, &err) < 0) {
                gp_etcd_kv_free(&e->kv);
                s_restart(w, err.msg, true);
                n_ev = keep;
                rc = -1;
                goto out;
            }
            e->has_prev_kv = true;
        }
        keep++;
    }
    n_ev = keep;
    s_deliver_events(w, rev, ev, n_ev);
out:
    s_free_events(ev, n_ev);
    json_decref(j);
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
    gp_ebuf_t *b = &req->body;
    int rc = gp_ebuf_adds(b, "{\"create_request\":{\"key\":\"");
    rc = rc < 0 ? -1 : gp_etcd_b64_encode(b, w->key, w->key_len);
    if (rc == 0 && w->range_end) {
        rc = gp_ebuf_adds(b, "\",\"range_end\":\"");
        rc = rc < 0 ? -1 : gp_etcd_b64_encode(b, w->range_end, strlen(w->range_end));
    } else if (rc == 0 && w->prefix) {
        char *end = malloc(w->key_len + 1);
        if (!end)
            return -1;
        size_t n = gp_etcd_prefix_end(w->key, w->key_len, end);
        rc = gp_ebuf_adds(b, "\",\"range_end\":\"");
        rc = rc < 0 ? -1 : gp_etcd_b64_encode(b, end, n);
        free(end);
    }
    rc = rc < 0 ? -1 : gp_ebuf_adds(b, "\"");
    if (rc == 0 && w->next_rev > 0)
        rc = gp_ebuf_addf(b, ",\"start_revision\":%" PRId64, w->next_rev);
    if (rc == 0 && w->prev_kv)
        rc = gp_ebuf_adds(b, ",\"prev_kv\":true");
    if (rc == 0 && w->progress_notify)
        rc = gp_ebuf_adds(b, ",\"progress_notify\":true");
    rc = rc < 0 ? -1 : gp_ebuf_adds(b, "}}");
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
 * revision).  Events are delivered only from complete lines (a whole
 * WatchResponse), and etcd never splits one revision across responses, so
 * after any disconnect - the member killed, the stream reset, a garbled
 * line, a "no leader" error from the has-leader check - the watch opens a
 * new stream on the client's current endpoint (the failed one is marked,
 * so that is the next member) with start_revision = next_rev.  etcd then
 * replays everything from next_rev on: nothing is lost, and nothing already
 * delivered comes again (events below next_rev are dropped as a second
 * guard).  Progress notifications do not move next_rev: resuming from the
 * last delivered event is always safe.  A partial line left in the buffer
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
    /* complete lines */
    while (w->state != W_DEAD && !w->destroyed) {
        char *start = w->in.p + w->in_off;
        size_t avail = w->in.len - w->in_off;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (!nl)
            break;
        size_t len = (size_t)(nl - start);
        w->in_off += len + 1;
        /* skip blank lines (keep-alive padding) */
        size_t k = 0;
        while (k < len && (start[k] == ' ' || start[k] == '\r' || start[k] == '\t'))
            k++;
        if (k == len)
            continue;
        if (s_handle_line(w, start, len) < 0)
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
    gp_etcd_req_init(&w->req, etcd, "/v3/watch");
    w->req.streaming = true;
    w->req.has_leader = true;
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
