/*
 * etcd.h - the etcd v3 client: KV, transactions, leases, watches, batches.
 *
 * gpupool keeps all of its state in etcd and talks to it through etcd's v3
 * JSON gateway (POST /v3/kv/range, /v3/kv/put, /v3/kv/txn, ...) with libcurl
 * and jansson.  Keys and values are binary-safe byte strings (base64 on the
 * wire); revisions and lease ids are int64_t.
 *
 * Threading: a gp_etcd_t is used by one thread at a time (it holds libcurl
 * multi handles, which are not thread-safe).  Give each thread its own client
 * when several threads need etcd.  Callbacks (watch events, lease loss) run
 * only from inside gp_etcd_step(), on the caller's thread; never from a
 * synchronous call or a batch run.  A callback may call any function of this
 * header except gp_etcd_step() and gp_etcd_destroy(); it may stop its own
 * watch or keep-alive.
 *
 * Keep-alives are the one part of the client on a thread of its own: the first
 * gp_etcd_keepalive_start of a client starts a thread with a client of its
 * own (the same endpoints, TLS and credentials; its own connections), which
 * refreshes that client's leases on its own timer.  It touches nothing else:
 * not the caller's client, its connections or its watches, and it calls no
 * user code.  So no synchronous call, batch, CPU-bound stretch of the
 * caller or slow member on the caller's connections delays a refresh.  When
 * it finds a lease lost it wakes the caller's loop through a descriptor
 * among gp_etcd_pollfds() (an eventfd), and the next gp_etcd_step() calls
 * that lease's on_lost, on the caller's thread.  gp_etcd_destroy() stops and
 * joins the thread.  The thread takes no signals.
 *
 * Ownership: strings and arrays passed in are copied; the caller keeps them.
 * Results (gp_etcd_result_t) are filled by the library and owned by the
 * caller, who releases them with gp_etcd_result_free().  Data handed to a
 * callback is borrowed for the duration of the callback only.  Handles
 * (client, batch, watch, keep-alive) are released with their destroy/stop
 * call, which clears the caller's pointer.
 *
 * Errors: every fallible call returns 0 or -1 and fills a gp_err_t:
 *   GP_ERR_TRANSPORT  no endpoint could be reached (refused, reset, TLS)
 *   GP_ERR_TIMEOUT    the request deadline passed
 *   GP_ERR_SERVER     etcd answered with an error (err->status = gRPC code,
 *                     err->msg = etcd's message)
 *   GP_ERR_PROTOCOL   the answer was not what the gateway sends (truncated,
 *                     not JSON, wrong types)
 *   GP_ERR_AUTH       authentication or permission refused
 *   GP_ERR_NOTFOUND   lease not found (revoke, time-to-live)
 *   GP_ERR_COMPACTED  a range at a compacted revision
 *   GP_ERR_NOSPACE    a write refused because etcd's NOSPACE alarm is raised
 *                     (the backend reached its quota; reads and deletes pass)
 *   GP_ERR_INVALID    a bad argument
 * Nothing aborts on a server or network failure.  A failed compare in a txn
 * is not an error: the txn call returns 0 with result.succeeded = false and
 * the failure ops' responses.
 *
 * Endpoints and failover: the client sticks to one endpoint while it works.
 * When an endpoint cannot be reached (connect refused or timed out, TLS
 * failure) the request moves to the next endpoint, within the request's
 * deadline (request_timeout_ms).  Local endpoints (local_endpoints: the
 * members in the caller's own cloud or data centre) come first: the client
 * starts on them, fails over to them before the others, and while it works
 * on another member it probes them (a linearizable read, every
 * GP_ETCD_HOME_PROBE_MS) and goes back to a local one after two healthy
 * probes in a row - sooner would flap between a member that restarts and
 * the others; a local member that fails again within a minute of the
 * return waits twice as long before the next (up to a minute).  Watches
 * streaming from another member move back too (resumed from their next
 * revision: nothing lost, nothing twice).  Reads and puts are also retried
 * elsewhere after a broken connection or an "unavailable" answer (a put
 * sent twice leaves the same value, possibly one revision later); a txn or
 * delete whose connection broke after it was sent is not retried (its
 * outcome is unknown) and fails with GP_ERR_TRANSPORT or GP_ERR_TIMEOUT - a
 * caller that must know re-reads (a fenced txn is safe to re-check).
 *
 * Authentication: with a username the client calls /v3/auth/authenticate
 * before its first request and sends the token in the Authorization header;
 * when etcd says the token is invalid or expired it authenticates again and
 * retries once.
 *
 * Calling sequence:
 *
 *     gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
 *     cfg.endpoints = "http://10.0.0.1:2379,http://10.0.0.2:2379";
 *     gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
 *
 *     // synchronous calls
 *     gp_etcd_put(etcd, "/gpupool/x", "v", 1, 0, &rev, &err);
 *     gp_etcd_result_t res;
 *     gp_etcd_get(etcd, "/gpupool/nodes/", GP_ETCD_PREFIX, &res, &err);
 *     ... res.kvs[i] ...
 *     gp_etcd_result_free(&res);
 *
 *     // many operations in flight
 *     gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
 *     for (...) gp_etcd_batch_add(b, &op, &err);      // or _add_txn
 *     gp_etcd_batch_run(b, 64, &err);
 *     for (i...) gp_etcd_batch_result(b, i, &res_p, &op_err);
 *     gp_etcd_batch_destroy(&b);
 *
 *     // background work in the caller's event loop
 *     gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wopts, &err);
 *     gp_etcd_keepalive_t *ka = gp_etcd_keepalive_start(etcd, lease, ttl, on_lost, arg, &err);
 *     for (;;) {
 *         struct pollfd pfd[32]; int n, timeout;
 *         n = gp_etcd_pollfds(etcd, pfd, 32, &timeout);   // + the loop's own fds
 *         poll(pfd, n, timeout);                             // or zmq_poll
 *         gp_etcd_step(etcd, 0);                              // runs callbacks
 *     }
 *     // or simply: for (;;) gp_etcd_step(etcd, 100);
 *
 *     gp_etcd_destroy(&etcd);     // stops watches and keep-alives too
 */
#ifndef GP_ETCD_H
#define GP_ETCD_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct gp_etcd gp_etcd_t;
typedef struct gp_etcd_batch gp_etcd_batch_t;
typedef struct gp_etcd_watch gp_etcd_watch_t;
typedef struct gp_etcd_keepalive gp_etcd_keepalive_t;

/* ------------------------------------------------------------ client */

typedef struct {
    const char *endpoints;      /* "http://h:2379,https://h2:2379" (required) */
    int request_timeout_ms;     /* whole request incl. failover; default 5000 */
    int dial_timeout_ms;        /* one TCP/TLS connect; default 2000 */
    const char *ca_file;        /* PEM CA bundle for https endpoints, or NULL */
    const char *cert_file;      /* PEM client certificate, or NULL */
    const char *key_file;       /* PEM client key, or NULL */
    const char *username;       /* etcd user, or NULL for no authentication */
    const char *password;
    int max_connections;        /* keep-alive connections for requests; default 64 */
    const char *local_endpoints;/* the members near the caller, tried first and
                                   returned to ("http://h:2379,..."), or NULL: all
                                   endpoints alike, in their order.  Local endpoints
                                   missing from endpoints are added to them. */
} gp_etcd_config_t;

#define GP_ETCD_CONFIG_INIT { NULL, 5000, 2000, NULL, NULL, NULL, NULL, NULL, 64, NULL }

/* How often a client working on a non-local member probes its local ones. */
#define GP_ETCD_HOME_PROBE_MS 1000

/* Fill a config from option strings ("" means unset); the strings are
 * borrowed until gp_etcd_new copies them. */
void gp_etcd_config_from(gp_etcd_config_t *cfg, const char *endpoints, const char *ca,
                         const char *cert, const char *key, const char *user,
                         const char *password);

/* Derive the request timeout from the lease a daemon holds: a request may
 * block its caller for at most one TTL (between 1 s and 5 s), so that a
 * hung member is given up in time to reach another while the lease lives
 * (keep-alives have shorter deadlines of their own, see
 * gp_etcd_keepalive_start). */
void gp_etcd_config_for_lease(gp_etcd_config_t *cfg, int64_t lease_ttl_ms);

/* Create a client.  Does no I/O (the first request connects).  Returns NULL
 * and fills err on bad configuration.  The config's strings are copied. */
gp_etcd_t *gp_etcd_new(const gp_etcd_config_t *cfg, gp_err_t *err);
/* Stop every watch and keep-alive (no callbacks), close the connections,
 * free the client and set *etcd_p to NULL.  Handles of watches, keep-alives
 * and batches must not be used afterwards (destroy batches first). */
void gp_etcd_destroy(gp_etcd_t **etcd_p);
/* The endpoint the client currently uses (borrowed). */
const char *gp_etcd_endpoint(const gp_etcd_t *etcd);
/* Whether that endpoint is one of the local endpoints (false without any). */
bool gp_etcd_endpoint_local(const gp_etcd_t *etcd);
/* The client's endpoints, local ones first (*n_local of them); borrowed. */
const char *const *gp_etcd_endpoints(const gp_etcd_t *etcd, int *n, int *n_local);
/* Times the client went back to a local endpoint after a failover. */
int gp_etcd_failbacks(const gp_etcd_t *etcd);

/* ------------------------------------------------------------ data */

/* One key-value.  key and value are NUL-terminated for convenience but may
 * hold NUL bytes: use the lengths. */
typedef struct {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} gp_etcd_kv_t;

typedef enum {
    GP_ETCD_OP_RANGE = 0,
    GP_ETCD_OP_PUT,
    GP_ETCD_OP_DELETE,
    GP_ETCD_OP_TXN,
} gp_etcd_op_type_t;

/* Op flags. */
#define GP_ETCD_PREFIX       0x01u  /* key is a prefix (ignored when range_end is set) */
#define GP_ETCD_PREV_KV      0x02u  /* put/delete: return the previous kv(s) */
#define GP_ETCD_KEYS_ONLY    0x04u  /* range: no values */
#define GP_ETCD_COUNT_ONLY   0x08u  /* range: only the count */
#define GP_ETCD_SERIALIZABLE 0x10u  /* range: served by the member the client talks to
                                       from its own copy, without a round trip to the
                                       raft leader; it may lag the cluster by the
                                       entries that member has not applied yet (tens
                                       of ms across clouds).  For caches, listings and
                                       records only their writer changes; never for a
                                       read that decides a write (use a txn compare). */
#define GP_ETCD_FROM_KEY     0x20u  /* range/delete: every key >= key */

typedef enum { GP_ETCD_SORT_NONE = 0, GP_ETCD_SORT_ASCEND, GP_ETCD_SORT_DESCEND } gp_etcd_sort_order_t;
typedef enum {
    GP_ETCD_SORT_KEY = 0, GP_ETCD_SORT_VERSION, GP_ETCD_SORT_CREATE,
    GP_ETCD_SORT_MOD, GP_ETCD_SORT_VALUE,
} gp_etcd_sort_target_t;

/* One operation: put, range or delete (a txn is gp_etcd_txn_t).  A
 * length of 0 means "strlen" for key, range_end; value_len is taken
 * literally (0 = empty value).  Zero-initialise and set what you need. */
typedef struct {
    gp_etcd_op_type_t type;
    const char *key;
    size_t key_len;
    const char *range_end;      /* explicit range end, or NULL */
    size_t range_end_len;
    const void *value;          /* put */
    size_t value_len;
    int64_t lease;              /* put: attach to this lease (0 = none) */
    unsigned flags;             /* GP_ETCD_* */
    int64_t limit;              /* range: at most this many kvs (0 = all) */
    int64_t revision;           /* range: read at this revision (0 = latest) */
    gp_etcd_sort_order_t sort_order;
    gp_etcd_sort_target_t sort_target;
} gp_etcd_op_t;

typedef enum {
    GP_ETCD_CMP_VERSION = 0, GP_ETCD_CMP_CREATE, GP_ETCD_CMP_MOD,
    GP_ETCD_CMP_VALUE, GP_ETCD_CMP_LEASE,
} gp_etcd_cmp_target_t;
typedef enum {
    GP_ETCD_CMP_EQUAL = 0, GP_ETCD_CMP_GREATER, GP_ETCD_CMP_LESS, GP_ETCD_CMP_NOT_EQUAL,
} gp_etcd_cmp_result_t;

/* One compare of a txn: "target(key) result operand".  A key that does not
 * exist has version, create and mod revision 0 and lease 0. */
typedef struct {
    const char *key;
    size_t key_len;             /* 0 = strlen */
    gp_etcd_cmp_target_t target;
    gp_etcd_cmp_result_t result;
    int64_t number;             /* VERSION, CREATE, MOD, LEASE */
    const void *value;          /* VALUE */
    size_t value_len;
    const char *range_end;      /* NULL, or compare every key in [key, range_end):
                                 * holds when it holds for each (an empty range
                                 * compares as one key that does not exist) */
} gp_etcd_cmp_t;

/* A transaction: if every compare holds, run success[], else failure[].
 * Ops are put, range or delete (no nested txn).  etcd limits the ops per
 * txn (--max-txn-ops, default 128) and a key may be written once per txn. */
typedef struct {
    const gp_etcd_cmp_t *compare;
    size_t n_compare;
    const gp_etcd_op_t *success;
    size_t n_success;
    const gp_etcd_op_t *failure;
    size_t n_failure;
} gp_etcd_txn_t;

/* The result of one operation (owned by the caller; gp_etcd_result_free).
 *   RANGE:  kvs[n_kvs] found, count = total matching keys, more = truncated by limit
 *   PUT:    with GP_ETCD_PREV_KV, the previous kv in kvs[0] when there was one
 *   DELETE: deleted = number deleted; with GP_ETCD_PREV_KV the deleted kvs
 *   TXN:    succeeded, and responses[n_responses], one per op of the branch
 *           that ran, in order
 * revision is the store's revision after the operation (header.revision);
 * for a put/txn that wrote, the revision it wrote at. */
typedef struct gp_etcd_result {
    gp_etcd_op_type_t type;
    int64_t revision;
    gp_etcd_kv_t *kvs;
    size_t n_kvs;
    int64_t count;
    bool more;
    int64_t deleted;
    bool succeeded;
    struct gp_etcd_result *responses;
    size_t n_responses;
} gp_etcd_result_t;

/* Release what a result holds (not the struct itself) and zero it.  Safe on
 * a zeroed result. */
void gp_etcd_result_free(gp_etcd_result_t *res);

/* ------------------------------------------------------------ synchronous calls */

/* Run one op / one txn and wait for it.  *res is filled only on success. */
int gp_etcd_do(gp_etcd_t *etcd, const gp_etcd_op_t *op, gp_etcd_result_t *res, gp_err_t *err);
int gp_etcd_txn(gp_etcd_t *etcd, const gp_etcd_txn_t *txn, gp_etcd_result_t *res, gp_err_t *err);

/* Conveniences over gp_etcd_do.  key is a NUL-terminated string.
 * put: lease 0 = none; *revision (may be NULL) gets the revision written.
 * get: flags 0 for one key or GP_ETCD_PREFIX (and KEYS_ONLY, ...).
 * delete: flags 0 or GP_ETCD_PREFIX; *deleted (may be NULL) gets the count. */
int gp_etcd_put(gp_etcd_t *etcd, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t *revision, gp_err_t *err);
int gp_etcd_get(gp_etcd_t *etcd, const char *key, unsigned flags, gp_etcd_result_t *res,
                gp_err_t *err);
/* gp_etcd_get with GP_ETCD_SERIALIZABLE: answered by the member the client
 * talks to (its local one), without a round trip to the raft leader. */
int gp_etcd_get_serializable(gp_etcd_t *etcd, const char *key, unsigned flags,
                             gp_etcd_result_t *res, gp_err_t *err);
int gp_etcd_delete(gp_etcd_t *etcd, const char *key, unsigned flags, int64_t *deleted,
                   gp_err_t *err);
/* Compact the key-value history up to revision (physical: wait for it). */
int gp_etcd_compact(gp_etcd_t *etcd, int64_t revision, gp_err_t *err);

/* The store's state as the member the client talks to sees it: its backend
 * size, the part of it in use (the rest is freed pages that only a
 * defragmentation gives back), and whether the cluster's NOSPACE alarm is
 * raised. */
typedef struct {
    int64_t db_bytes, db_in_use_bytes;
    bool nospace;
    bool is_leader;             /* the member asked is the raft leader */
} gp_etcd_store_status_t;
int gp_etcd_store_status(gp_etcd_t *etcd, gp_etcd_store_status_t *st, gp_err_t *err);
/* Defragment the member the client talks to (a client of one endpoint, to
 * name the member): it gives its freed pages back to the file system, and
 * blocks that member's requests meanwhile. */
int gp_etcd_defragment(gp_etcd_t *etcd, gp_err_t *err);

/* Stream a snapshot of the backend of the member the client talks to into
 * fd (etcd's maintenance API: the database followed by its SHA-256, the file
 * `etcdctl snapshot restore` takes).  The digest is checked as the stream
 * ends; on failure what was written is incomplete and the caller discards
 * it.  *bytes (may be NULL) gets the size written.  (etcd_snapshot.c) */
int gp_etcd_snapshot(gp_etcd_t *etcd, int fd, int64_t *bytes, gp_err_t *err);
/* Check a snapshot file read from fd: its last 32 bytes must be the SHA-256
 * of the rest.  *bytes (may be NULL) gets its size. */
int gp_etcd_snapshot_verify(int fd, int64_t *bytes, gp_err_t *err);
/* One member as seen from here (etcd_member.c; `gpupool doctor`). */
typedef struct {
    double rtt_min_ms, rtt_ms;  /* serializable reads: the fastest and the median
                                   (network round trip plus the member's own work) */
    double read_ms;             /* linearizable reads, median: plus the member's
                                   round trip to the raft leader */
    bool is_leader;
    double peer_rtt_ms;         /* the largest mean round trip to a peer the member
                                   measured itself (its /metrics), or -1 */
    int heartbeat_ms;           /* its --heartbeat-interval and --election-timeout */
    int election_ms;            /* (its command line on /debug/vars), or -1 */
} gp_etcd_member_report_t;
/* Measure the one member cfg->endpoints names (samples reads of each kind;
 * TLS and credentials from cfg).  Fills *out only on success; -1 with err
 * when the member cannot be reached or fails. */
int gp_etcd_member_report(const gp_etcd_config_t *cfg, int samples, gp_etcd_member_report_t *out,
                          gp_err_t *err);

/* ------------------------------------------------------------ leases */

/* Grant a lease of ttl_s seconds; id 0 lets etcd choose.  Outputs may be NULL. */
int gp_etcd_lease_grant(gp_etcd_t *etcd, int64_t ttl_s, int64_t id, int64_t *lease_id,
                        int64_t *granted_ttl_s, gp_err_t *err);
/* Revoke a lease: its keys are deleted.  GP_ERR_NOTFOUND when it is gone. */
int gp_etcd_lease_revoke(gp_etcd_t *etcd, int64_t lease_id, gp_err_t *err);
/* Remaining and granted TTL in seconds; GP_ERR_NOTFOUND when it is gone. */
int gp_etcd_lease_ttl(gp_etcd_t *etcd, int64_t lease_id, int64_t *ttl_s,
                      int64_t *granted_ttl_s, gp_err_t *err);
/* One synchronous keep-alive; *ttl_s gets the renewed TTL.  GP_ERR_NOTFOUND
 * when the lease is gone. */
int gp_etcd_lease_keepalive_once(gp_etcd_t *etcd, int64_t lease_id, int64_t *ttl_s,
                                 gp_err_t *err);

/* Called from gp_etcd_step() when a kept-alive lease is lost: why->code is
 * GP_ERR_LOST with a message saying "expired or revoked" or "unreachable
 * for longer than the TTL".  The keep-alive does nothing more afterwards;
 * the caller still stops it (gp_etcd_keepalive_stop, allowed in here). */
typedef void (gp_etcd_lease_lost_fn)(gp_etcd_t *etcd, int64_t lease_id, const gp_err_t *why,
                                     void *arg);

/* Keep a lease alive from the client's keep-alive thread (see Threading
 * above): a refresh every ttl_s/3 seconds, each within a deadline of ttl_s/5
 * (at least 250 ms) over which the thread's client fails over to other
 * members, until stopped, or until the lease is lost: etcd says it no
 * longer exists, or no refresh succeeded for ttl_s seconds since the
 * sending of the last good one.  ttl_s is the lease's granted TTL.  The
 * refreshes go on whatever the caller does; only the report of a loss
 * (on_lost) waits for the caller's next gp_etcd_step(). */
gp_etcd_keepalive_t *gp_etcd_keepalive_start(gp_etcd_t *etcd, int64_t lease_id, int64_t ttl_s,
                                             gp_etcd_lease_lost_fn *on_lost, void *arg,
                                             gp_err_t *err);
/* Stop (without revoking), free and set *ka_p to NULL.  NULL is a no-op. */
void gp_etcd_keepalive_stop(gp_etcd_keepalive_t **ka_p);

/* ------------------------------------------------------------ watches */

typedef enum { GP_ETCD_EVENT_PUT = 0, GP_ETCD_EVENT_DELETE } gp_etcd_event_type_t;

typedef struct {
    gp_etcd_event_type_t type;
    gp_etcd_kv_t kv;            /* DELETE: key and mod_revision (the delete's) */
    bool has_prev_kv;
    gp_etcd_kv_t prev_kv;       /* when the watch asked for prev_kv */
} gp_etcd_event_t;

typedef enum {
    GP_ETCD_WATCH_EVENTS = 0,   /* events[n_events], in revision order */
    GP_ETCD_WATCH_PROGRESS,     /* no events; every event <= revision was delivered */
    GP_ETCD_WATCH_COMPACTED,    /* the start revision is compacted: re-list at
                                   compact_revision or later; the watch has ended */
    GP_ETCD_WATCH_ERROR,        /* etcd cancelled the watch (err says why); ended */
} gp_etcd_watch_kind_t;

typedef struct {
    gp_etcd_watch_kind_t kind;
    int64_t revision;           /* header revision of the response */
    int64_t compact_revision;   /* COMPACTED */
    const gp_etcd_event_t *events;
    size_t n_events;
    const gp_err_t *err;        /* ERROR */
} gp_etcd_watch_resp_t;

typedef void (gp_etcd_watch_fn)(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg);

typedef struct {
    const char *key;
    size_t key_len;             /* 0 = strlen */
    bool prefix;                /* watch every key under key */
    const char *range_end;      /* or: watch [key, range_end) (overrides prefix) */
    int64_t start_revision;     /* first revision to deliver; 0 = from now */
    bool prev_kv;               /* deliver each event's previous kv */
    bool progress_notify;       /* ask etcd for periodic progress responses */
    gp_etcd_watch_fn *cb;
    void *arg;
} gp_etcd_watch_opts_t;

/* Start a watch, delivered from gp_etcd_step().  It survives disconnects:
 * it reconnects (to the next endpoint) and resumes after the last revision
 * it delivered, so no event is lost or delivered twice.  After COMPACTED or
 * ERROR the watch is dead; the caller re-lists and starts a new one. */
gp_etcd_watch_t *gp_etcd_watch_new(gp_etcd_t *etcd, const gp_etcd_watch_opts_t *opts,
                                   gp_err_t *err);
/* The revision the watch resumes from after a reconnect (last delivered + 1). */
int64_t gp_etcd_watch_next_revision(const gp_etcd_watch_t *w);
/* Times the watch (re)connected to a member; 1 after the first connect. */
int gp_etcd_watch_connects(const gp_etcd_watch_t *w);
/* Cancel, free and set *w_p to NULL.  NULL is a no-op.  Allowed from the
 * watch's own callback. */
void gp_etcd_watch_destroy(gp_etcd_watch_t **w_p);

/* ------------------------------------------------------------ event loop */

/* Fill up to max pollfds with the sockets the background work (watches,
 * background batches) waits on, and the keep-alive thread's descriptor, and *timeout_ms with how long the caller may sleep
 * (-1 = no deadline).  Returns the number of fds it needs; when that is
 * more than max, only max were filled.  The caller polls them (with its
 * own) and then calls gp_etcd_step(etcd, 0). */
int gp_etcd_pollfds(gp_etcd_t *etcd, struct pollfd *fds, int max, int *timeout_ms);
/* Wait up to timeout_ms for the background sockets (0 = don't wait), then
 * drive watches, keep-alives and reconnects and run their callbacks.
 * Returns 0, or -1 on an internal failure (err). */
int gp_etcd_step(gp_etcd_t *etcd, int timeout_ms, gp_err_t *err);

/* ------------------------------------------------------------ batches */

/* A batch runs many independent ops with up to N requests in flight over
 * the client's keep-alive connections, and keeps one result or error per
 * op.  Ops are independent: no order between them is promised; use a txn
 * for atomicity.  A batch can be reset and reused.  Callbacks of watches and
 * keep-alives do not run during gp_etcd_batch_run. */
gp_etcd_batch_t *gp_etcd_batch_new(gp_etcd_t *etcd);
/* Queue an op / a txn (copied).  Returns its index (0, 1, ...) or -1. */
int gp_etcd_batch_add(gp_etcd_batch_t *b, const gp_etcd_op_t *op, gp_err_t *err);
int gp_etcd_batch_add_txn(gp_etcd_batch_t *b, const gp_etcd_txn_t *txn, gp_err_t *err);
size_t gp_etcd_batch_size(const gp_etcd_batch_t *b);
/* Run every queued op not yet run, max_inflight at a time (1..max_connections).
 * Returns 0 when every op succeeded, -1 when at least one failed (err
 * describes the first failure); per-op outcomes come from batch_result. */
int gp_etcd_batch_run(gp_etcd_batch_t *b, int max_inflight, gp_err_t *err);
/* Run the queued ops in the background instead: max_inflight at a time
 * over the loop's connections, driven by gp_etcd_step.
 * done(b, arg) runs from gp_etcd_step once every op has its outcome (read
 * them with gp_etcd_batch_result); never from inside this call.  done may
 * reset, reuse or destroy the batch.  Until then the batch is running:
 * nothing may be added, run or read; reset or destroy cancels what is in
 * flight (no callback; a write already sent may still be applied).
 * Returns 0, or -1 when nothing could be started (no callback then; the
 * per-op outcomes say why). */
typedef void (gp_etcd_batch_done_fn)(gp_etcd_batch_t *b, void *arg);
int gp_etcd_batch_start(gp_etcd_batch_t *b, int max_inflight, gp_etcd_batch_done_fn *done,
                        void *arg, gp_err_t *err);
/* Whether a background run is in progress. */
bool gp_etcd_batch_running(const gp_etcd_batch_t *b);
/* The outcome of op i after a run: 0 and *res_p (borrowed, valid until the
 * batch is reset or destroyed) or -1 and err. */
int gp_etcd_batch_result(gp_etcd_batch_t *b, size_t i, const gp_etcd_result_t **res_p,
                         gp_err_t *err);
/* Drop every op and result; keep the allocated memory for reuse. */
void gp_etcd_batch_reset(gp_etcd_batch_t *b);
void gp_etcd_batch_destroy(gp_etcd_batch_t **b_p);

/* ------------------------------------------------------------ helpers */

/* The end of the range of every key starting with prefix (prefix with its
 * last byte below 0xff incremented; "\0" when every byte is 0xff).  Writes
 * at most prefix_len bytes to out (or 1) and returns the length. */
size_t gp_etcd_prefix_end(const char *prefix, size_t prefix_len, char *out);

#endif
