/*
 * etcd_internal.h - what the modules of the etcd client share; not for
 * users of the client (they include etcd.h).
 *
 *   etcd.c        the client: endpoints, failover, authentication, the
 *                 request engine over libcurl multi handles, synchronous calls
 *   etcd_json.c   base64, request bodies, strict parsing of responses
 *   etcd_batch.c  many ops in flight, results per op
 *   etcd_loop.c   the background multi: socket/timer tracking, pollfds, step
 *   etcd_watch.c  watch streams and their resumption
 *   etcd_lease.c  keep-alives
 *   etcd_home.c   local endpoints: probes of the local members, failback
 *   etcd_member.c one member's distance, role and raft timing (doctor)
 *
 * A request (gp_etcd_req_t) is one POST to one gateway path with a JSON body
 * built up front, or (a watch) one gRPC call over HTTP/2 with a protobuf
 * body.  The engine attaches a pooled easy handle (a gRPC call: a handle
 * and a connection of its own), sends it to the client's current endpoint,
 * and on completion classifies the outcome: success (HTTP 200, body kept),
 * final error, or retry on another endpoint.
 * Two multi handles carry requests: "fg" for synchronous calls and batches
 * (driven to completion inside the call) and "bg" for watches and
 * background batches (driven by gp_etcd_step), so that callbacks never run
 * inside a synchronous call.  Keep-alives run on a thread with a client of
 * its own (etcd_lease.c).
 */
#ifndef GP_ETCD_INTERNAL_H
#define GP_ETCD_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "etcd.h"
#include "util.h"

/* ------------------------------------------------------------ JSON (etcd_json.c) */

int gp_etcd_b64_encode(gp_ebuf_t *b, const void *data, size_t len);
/* Strict decode; out gets a malloc'd NUL-terminated buffer. */
int gp_etcd_b64_decode(const char *s, size_t slen, char **out, size_t *out_len);

/* Append the JSON object of a put/range/delete request (the body of
 * /v3/kv/put etc., or the inside of a txn's request_*). */
int gp_etcd_json_op(gp_ebuf_t *b, const gp_etcd_op_t *op, gp_err_t *err);
int gp_etcd_json_txn(gp_ebuf_t *b, const gp_etcd_txn_t *txn, gp_err_t *err);
/* The gateway path of an op type. */
const char *gp_etcd_op_path(gp_etcd_op_type_t type);

/* Parse a whole response body (HTTP 200) of an op into res. */
int gp_etcd_parse_result(const char *body, size_t len, gp_etcd_op_type_t type,
                         gp_etcd_result_t *res, gp_err_t *err);
/* The same, scanned without a JSON tree: 1 and *res for the usual answer,
 * 0 (nothing filled) for anything else, which gp_etcd_parse_result then
 * parses and checks with jansson. */
int gp_etcd_parse_result_fast(const char *body, size_t len, gp_etcd_op_type_t type,
                              gp_etcd_result_t *res);
/* Parse an error body {"error","code","message"} into err (GP_ERR_SERVER,
 * GP_ERR_AUTH, GP_ERR_COMPACTED...).  Always returns -1.  A body that is
 * not a gateway error gives GP_ERR_SERVER with the HTTP status. */
int gp_etcd_parse_error(const char *body, size_t len, long http_status, gp_err_t *err);
/* Load a JSON object from a body (strict: one object, nothing after). */
json_t *gp_etcd_json_load(const char *body, size_t len, gp_err_t *err);
/* An int64 field encoded as a string or a number; absent = 0. */
int gp_etcd_json_int64(const json_t *obj, const char *field, int64_t *out, gp_err_t *err);
int gp_etcd_parse_header_rev(const json_t *obj, int64_t *rev, gp_err_t *err);
void gp_etcd_kv_free(gp_etcd_kv_t *kv);

/* Map a gRPC status and message from etcd (the gateway's error body, or a
 * gRPC stream's trailers) to err: GP_ERR_AUTH, GP_ERR_COMPACTED, ...,
 * GP_ERR_SERVER, with err->status = code.  Always returns -1. */
int gp_etcd_grpc_error(int code, const char *msg, gp_err_t *err);

/* ------------------------------------------------------------ watch messages (etcd_watch.c) */

/* One WatchResponse of a watch stream (etcd's protobuf, etcd_watch.proto). */
typedef struct {
    int64_t revision;           /* header.revision */
    int64_t compact_revision;
    bool created;
    bool canceled;
    char cancel_reason[256];
    gp_etcd_event_t *events;    /* owned: gp_etcd_watch_msg_free */
    size_t n_events;
} gp_etcd_watch_msg_t;
/* Decode one message's bytes (without the 5-byte gRPC prefix) into *m.
 * -1 (err; *m empty) for bytes that are not a WatchResponse, or an event
 * without a kv or of a type other than PUT and DELETE. */
int gp_etcd_watch_msg_parse(const void *data, size_t len, gp_etcd_watch_msg_t *m, gp_err_t *err);
void gp_etcd_watch_msg_free(gp_etcd_watch_msg_t *m);

/* ------------------------------------------------------------ requests (etcd.c) */

/* A txn's responses must match the branch that ran, op for op. */
int gp_etcd_txn_check(const gp_etcd_txn_t *txn, const gp_etcd_result_t *r, gp_err_t *err);
/* A keep-alive answer; *ttl_s = 0 when the lease is gone. */
int gp_etcd_parse_keepalive(const char *body, size_t len, int64_t *ttl_s, gp_err_t *err);

typedef struct gp_etcd_req gp_etcd_req_t;
typedef void (gp_etcd_req_done_fn)(gp_etcd_req_t *req);
/* Streaming requests see the response bytes as they come; return false to
 * abort the transfer. */
typedef bool (gp_etcd_req_data_fn)(gp_etcd_req_t *req, const char *data, size_t len);

struct gp_etcd_req {
    gp_etcd_t *etcd;
    const char *path;           /* "/v3/kv/put" (static string) */
    gp_ebuf_t body;             /* request JSON */
    gp_ebuf_t resp;             /* response body (non-streaming, or an error) */
    bool idempotent;            /* safe to resend after a broken connection */
    bool streaming;             /* no overall timeout; data goes to on_data */
    bool probe;                 /* a health probe of req->ep: outcome only, no
                                   failover, no retry, no re-authentication */
    bool grpc;                  /* a gRPC call (path "/etcdserverpb.Watch/Watch"):
                                   HTTP/2, binary body, status in the trailers */
    gp_etcd_req_data_fn *on_data;
    gp_etcd_req_done_fn *done;  /* called once when the request is final */
    void *owner;
    size_t index;               /* the owner's index (batch) */

    /* engine state */
    CURL *easy;
    int ep;                     /* endpoint index of the current attempt */
    int attempts;
    bool auth_retried;
    unsigned token_gen;         /* the token generation it was sent with */
    int64_t deadline_ms;        /* 0 = none */
    int64_t not_before_ms;      /* retry backoff */
    long http_status;
    bool streamed_ok;           /* streaming: got HTTP 200 (gRPC: and a message's bytes) */
    bool grpc_ctype;            /* gRPC: the answer is application/grpc */
    int grpc_status;            /* gRPC: grpc-status of the answer, -1 before it */
    char grpc_msg[256];         /* gRPC: its grpc-message (percent-decoded) */

    /* outcome, valid in done() */
    int failed;
    gp_err_t err;
};

void gp_etcd_req_init(gp_etcd_req_t *req, gp_etcd_t *etcd, const char *path);
void gp_etcd_req_release(gp_etcd_req_t *req);   /* frees buffers, returns the easy handle */
void gp_etcd_req_release_easy(gp_etcd_req_t *req);   /* returns the easy handle only */
/* Clear the outcome and the response so that the request can be sent again. */
void gp_etcd_req_rearm(gp_etcd_req_t *req);

/* Run reqs on the fg multi, max_inflight at a time, each to a final
 * outcome (done() called for each, failed/err set).  Returns 0, or -1 only
 * for an internal failure (err). */
int gp_etcd_run_fg(gp_etcd_t *etcd, gp_etcd_req_t **reqs, size_t n, int max_inflight,
                   gp_err_t *err);

/* The bg multi: start a request (done() runs later from gp_etcd_step) and
 * cancel one in flight (done() is not called). */
int gp_etcd_bg_start(gp_etcd_t *etcd, gp_etcd_req_t *req, gp_err_t *err);
void gp_etcd_bg_cancel(gp_etcd_t *etcd, gp_etcd_req_t *req);
/* Have curl deliver what it holds of a streaming request's answer: its
 * socket handed to curl as readable, whatever the kernel has (see
 * etcd_loop.c).  Only from a task's tick. */
void gp_etcd_bg_drain(gp_etcd_t *etcd, gp_etcd_req_t *req);

/* Engine internals shared with etcd_loop.c. */
int gp_etcd_req_attach(gp_etcd_t *etcd, gp_etcd_req_t *req, CURLM *multi, gp_err_t *err);
/* After curl finished req's transfer (already removed from its multi):
 * true when the request should be sent again (to req->ep, not before
 * req->not_before_ms), false when final (outcome set). */
bool gp_etcd_req_finish(gp_etcd_req_t *req, CURLcode rc);
void gp_etcd_endpoint_failed(gp_etcd_t *etcd, int ep);
int gp_etcd_request_timeout_ms(const gp_etcd_t *etcd);

/* ------------------------------------------------------------ the client */

typedef struct gp_etcd_loop gp_etcd_loop_t;

typedef struct gp_etcd_home gp_etcd_home_t;
typedef struct gp_etcd_kathread gp_etcd_kathread_t;

struct gp_etcd {
    char **endpoints;                  /* local ones first */
    int n_endpoints;
    int n_local;                       /* endpoints[0..n_local) are local */
    int cur_ep;
    int64_t left_local_ms;             /* when cur_ep last moved off a local endpoint */
    unsigned home_gen;                 /* bumped at every failback: watches move back */
    int failbacks;
    gp_etcd_home_t *home;              /* the probe task, with local endpoints */
    int request_timeout_ms;
    int dial_timeout_ms;
    int max_connections;
    char *ca_file, *cert_file, *key_file;
    char *username, *password;
    char *token;
    unsigned token_gen;                /* bumped at every new token */
    struct curl_slist *headers;        /* Content-Type, Expect, Authorization */
    struct curl_slist *grpc_headers;   /* gRPC calls': content type, token, has-leader */
    struct curl_slist *old_headers[8]; /* replaced lists, freed at destroy */
    int n_old_headers;

    CURLM *fg;
    CURL **easy_pool;
    int n_easy_pool;
    int cap_easy_pool;

    gp_etcd_loop_t *loop;              /* bg multi, watches */
    gp_etcd_kathread_t *kat;           /* the keep-alive thread, once started */
};

/* Get the token (authenticate when there is none yet, or when force). */
int gp_etcd_authenticate(gp_etcd_t *etcd, bool force, gp_err_t *err);

/* ------------------------------------------------------------ local endpoints (etcd_home.c) */

/* Start the probe task of a client with local and other endpoints (a loop
 * task; it calls no user code). */
int gp_etcd_home_start(gp_etcd_t *etcd, gp_err_t *err);

/* ------------------------------------------------------------ the loop (etcd_loop.c) */

gp_etcd_loop_t *gp_etcd_loop_new(gp_etcd_t *etcd);
void gp_etcd_loop_destroy(gp_etcd_loop_t **loop_p);
bool gp_etcd_loop_in_step(const gp_etcd_t *etcd);

/* Background tasks (a watch, a keep-alive) register with the loop.  At
 * every step the loop calls tick(obj, now) for each live task, after
 * delivering finished bg requests to their done(); tick runs the task's
 * timers and callbacks and returns when it next wants a tick (absolute ms,
 * or -1 for "only when a request finishes").  free_fn releases the task;
 * the loop calls it for tasks removed during a step at the end of the step,
 * and for every task at client destroy. */
typedef int64_t (gp_etcd_tick_fn)(void *obj, int64_t now_ms);
typedef void (gp_etcd_free_fn)(void *obj);
int gp_etcd_loop_add(gp_etcd_t *etcd, void *obj, gp_etcd_tick_fn *tick, gp_etcd_free_fn *free_fn);
/* Remove a task: cancels nothing itself (the task cancels its requests
 * first); frees it now, or at the end of the step when inside one. */
void gp_etcd_loop_remove(gp_etcd_t *etcd, void *obj);
/* Ask for a tick at the next step (e.g. after data arrived). */
void gp_etcd_loop_wake(gp_etcd_t *etcd);

/* ------------------------------------------------------------ keep-alives (etcd_lease.c) */

/* The eventfd by which the keep-alive thread wakes the caller's loop when a
 * lease is lost (readable until the next step), or -1 before the first
 * keep-alive. */
int gp_etcd_kathread_fd(const gp_etcd_t *etcd);

#endif
