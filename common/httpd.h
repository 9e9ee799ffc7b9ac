/*
 * httpd.h - a small HTTP/1.1 server for the REST API and /metrics, on
 * libmicrohttpd, driven by the caller's event loop (no threads).
 *
 * The server listens on one address; the caller polls gp_httpd_fd() (an
 * epoll descriptor) with its other sockets, waits at most
 * gp_httpd_timeout_ms(), and calls gp_httpd_run() after every wake-up.
 * Request handlers therefore run on the loop's thread and may touch the
 * program's state without locks.
 *
 * A handler is called once per request, with the whole body read (bodies
 * over max_body are refused with 413 before the handler sees them).  It
 * must answer each request exactly once with gp_http_respond(): either
 * before it returns, or later (the connection is suspended meanwhile), for
 * example once an etcd write the answer depends on has completed.  The
 * request stays valid until it is answered.
 *
 * What a handler sees has been checked first (RFC 9112), each failure a 400
 * with a JSON error before any handler runs:
 *   - framing that two parsers could read differently is refused and the
 *     connection closed (the bytes after the header are never read as a
 *     request): Content-Length given twice or not a number,
 *     Transfer-Encoding together with Content-Length, a transfer coding
 *     other than "chunked", a header field folded onto a second line
 *     (obsolete line folding), a field name that is not a token;
 *   - the request target is decoded strictly by uri.h (no %00, no %2F in a
 *     segment, no dot segments, UTF-8 only).
 *
 * Slow clients cannot starve the others: at most per_client connections
 * from one address (more are closed at once), max_connections in all; a
 * request's header must arrive within header_timeout_ms (counted from the
 * connection's start, or from the previous answer on a kept-alive
 * connection) and its body within body_timeout_ms after the header; a
 * connection silent for idle_timeout_s is closed.  A request whose handler
 * has not answered yet has no deadline.
 *
 * TLS (gp_httpd_new_tls): the server speaks HTTPS only (GnuTLS, through
 * libmicrohttpd), with its certificate chain and key read from files at
 * start.  With a client CA, clients are asked for a certificate (not made to
 * give one); what was presented is verified against that CA when the
 * request comes, and gp_http_req_client_cert() tells the handler: none,
 * verified (with the certificate's common name), or refused and why
 * (expired, not yet valid, not signed by the CA, revoked...).  So a request
 * with a bad certificate reaches the handler, which answers it with a clear
 * error instead of a bare handshake failure.  A plain-HTTP request sent to
 * a TLS listener is not a handshake: the connection is closed.
 *
 * Observing answers: gp_httpd_set_observer's function sees every answer
 * (the request, its status and body) just before it is sent; the audit log
 * hangs on it.  A handler may tag a request with the principal it
 * authenticated (gp_http_req_set_principal) for the observer to read.
 */
#ifndef GP_HTTPD_H
#define GP_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct gp_httpd gp_httpd_t;
typedef struct gp_http_req gp_http_req_t;

typedef void (*gp_http_handler_fn)(void *arg, gp_http_req_t *req);

typedef struct {
    size_t max_body;             /* bytes; larger bodies get 413 */
    unsigned max_connections;    /* all clients together */
    unsigned per_client;         /* from one IP address; 0: no limit */
    unsigned idle_timeout_s;     /* a connection silent this long is closed */
    int64_t header_timeout_ms;   /* see above */
    int64_t body_timeout_ms;
} gp_httpd_limits_t;

/* The defaults: 1000 connections, 64 per client, idle 30 s, header 10 s,
 * body 60 s. */
void gp_httpd_limits_default(gp_httpd_limits_t *limits, size_t max_body);

/* Listen on addr:port (port 0: any free port, see gp_httpd_port). */
gp_httpd_t *gp_httpd_new(const char *addr, int port, const gp_httpd_limits_t *limits,
                         gp_http_handler_fn handler, void *arg, gp_err_t *err);
/* TLS settings: cert_file (PEM, the chain) and key_file are required;
 * client_ca (PEM) optional. */
typedef struct {
    const char *cert_file, *key_file, *client_ca;
} gp_httpd_tls_t;

/* As gp_httpd_new, serving HTTPS with tls (NULL: plain HTTP). */
gp_httpd_t *gp_httpd_new_tls(const char *addr, int port, const gp_httpd_limits_t *limits,
                             const gp_httpd_tls_t *tls, gp_http_handler_fn handler, void *arg,
                             gp_err_t *err);

/* Called with every answer before it is sent; body is the handler's (not
 * owned, may be NULL). */
typedef void (*gp_http_observer_fn)(void *arg, gp_http_req_t *req, int status, const char *body,
                                    size_t len);
void gp_httpd_set_observer(gp_httpd_t *self, gp_http_observer_fn fn, void *arg);

/* Stops listening; requests not yet answered are dropped. */
void gp_httpd_destroy(gp_httpd_t **self_p);

int gp_httpd_port(const gp_httpd_t *self);
int gp_httpd_fd(const gp_httpd_t *self);
/* How long the loop may sleep: -1 forever, 0 when work is pending. */
int gp_httpd_timeout_ms(const gp_httpd_t *self);
/* Do whatever the server has to do now; never blocks. */
void gp_httpd_run(gp_httpd_t *self);

const char *gp_http_req_method(const gp_http_req_t *req);
const char *gp_http_req_path(const gp_http_req_t *req);      /* decoded, without the query */
const char *gp_http_req_query(const gp_http_req_t *req, const char *name);  /* decoded, or NULL */
const char *gp_http_req_header(const gp_http_req_t *req, const char *name); /* or NULL */
const char *gp_http_req_body(const gp_http_req_t *req, size_t *len);        /* NUL-terminated */

/* Add a header field to req's answer (before gp_http_respond); at most
 * GP_HTTP_MAX_HEADERS of them, name < 256 bytes without ':' or white space,
 * value < 256 bytes without CR or LF; -1 otherwise. */
#define GP_HTTP_MAX_HEADERS 6
int gp_http_set_header(gp_http_req_t *req, const char *name, const char *value);
/* The client's address ("203.0.113.7"), or "" when unknown. */
const char *gp_http_req_peer(const gp_http_req_t *req);
/* A label for the observer (copied; NULL clears it), and reading it back
 * (NULL when none). */
void gp_http_req_set_principal(gp_http_req_t *req, const char *name);
const char *gp_http_req_principal(const gp_http_req_t *req);

typedef enum {
    GP_HTTP_CERT_NONE = 0,     /* plain HTTP, no client CA, or none presented */
    GP_HTTP_CERT_VERIFIED,     /* *cn is the certificate's common name */
    GP_HTTP_CERT_REFUSED,      /* *cn is why ("expired", ...) */
} gp_http_cert_t;
/* The client certificate of req's connection, verified against the
 * server's client CA; *cn (may be NULL) is valid until the request is
 * answered. */
gp_http_cert_t gp_http_req_client_cert(gp_http_req_t *req, const char **cn);

/* Answer req: takes ownership of body (heap, may be NULL).  After this call
 * req must not be used. */
void gp_http_respond(gp_http_req_t *req, int status, const char *content_type, char *body,
                     size_t len);
/* Convenience: a JSON body {"error": msg} with the given status. */
void gp_http_respond_error(gp_http_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
