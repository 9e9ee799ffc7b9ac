#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>

#include "log.h"
#include "uri.h"
#include "util.h"

#include "banned.h"

/* One open connection, for the header and body deadlines (a list: the
 * sweep after each MHD_run walks it). */
typedef struct s_conn {
    struct s_conn *prev, *next;
    struct MHD_Connection *conn;
    int fd;
    int64_t deadline_ms;   /* 0: none (idle between reads is MHD's timeout) */
    const char *waiting;   /* "header" or "body", for the log */
} s_conn_t;

struct gp_httpd {
    struct MHD_Daemon *mhd;
    gp_http_handler_fn handler;
    void *arg;
    gp_httpd_limits_t lim;
    int port;
    int resumed;          /* a deferred answer is waiting for gp_httpd_run */
    s_conn_t *conns;      /* open connections */
    int tls;              /* HTTPS */
    char *tls_cert, *tls_key, *tls_ca;   /* PEM text, kept while MHD runs */
    gp_http_observer_fn observer;
    void *observer_arg;
};

/* One request.  State machine: READING (body arriving) -> DISPATCHED
 * (handler called; connection suspended if it did not answer) -> ANSWERED
 * (response stored; queued at the next access-handler call).  Freed by the
 * completion callback. */
struct gp_http_req {
    gp_httpd_t *server;
    struct MHD_Connection *conn;
    char *method, *target;     /* target: as received, before decoding */
    gp_uri_t *uri;             /* decoded target, NULL until checked */
    char *body;
    size_t len, cap;
    int checked, too_large, dispatched, suspended, answered, close;
    int status;
    char *resp_body;
    size_t resp_len;
    char content_type[64];
    int nheaders;              /* extra response header fields */
    char headers[GP_HTTP_MAX_HEADERS][2][256];
    char peer[64];             /* client address */
    char *principal;           /* the handler's label, for the observer */
    int cert_checked;
    gp_http_cert_t cert;
    char cert_cn[256];         /* common name, or why the certificate was refused */
};

static void s_req_free(gp_http_req_t *r)
{
    free(r->method);
    free(r->target);
    gp_uri_destroy(&r->uri);
    free(r->body);
    free(r->resp_body);
    free(r->principal);
    free(r);
}

static int s_append(gp_http_req_t *r, const char *data, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (p == NULL)
            return -1;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static s_conn_t *s_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

static void s_deadline(struct MHD_Connection *conn, int64_t after_ms, const char *waiting)
{
    s_conn_t *sc = s_conn_of(conn);
    if (sc) {
        sc->deadline_ms = after_ms > 0 ? gp_mono_ms() + after_ms : 0;
        sc->waiting = waiting;
    }
}

static enum MHD_Result s_queue(gp_http_req_t *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->resp_len, r->resp_body ? r->resp_body : (void *)"", r->resp_body ? MHD_RESPMEM_MUST_FREE
                                                                           : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    r->resp_body = NULL;   /* owned by the response now */
    if (r->content_type[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * The header checks of RFC 9112 that libmicrohttpd leaves to us.  It keeps
 * every field, duplicates included, so MHD_get_connection_values() sees
 * them all.  Obsolete line folding needs care: this library joins a
 * continuation line onto the field *name*, in a new allocation, and keeps
 * the value where it was received.  A field as received reads
 * "name:" OWS value in one buffer (the ':' overwritten by the name's NUL);
 * a field whose value does not follow its name that way was folded.  A
 * folded name usually stops being a token too, which is checked as well.
 * (This is how libmicrohttpd 0.9.75, Debian 12's, parses a header; should
 * a later version copy names elsewhere, every request would be refused and
 * tests/daemon/test_httpd_wire.c says so at once.)
 */
typedef struct {
    int content_length, transfer_encoding;
    char why[160];
} s_hdr_check_t;

static int s_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

static enum MHD_Result s_check_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    s_hdr_check_t *hc = cls;
    (void)kind;
    if (value == NULL)
        value = "";
    size_t klen = strlen(key);
    uintptr_t k = (uintptr_t)key, v = (uintptr_t)value, first = k + klen + 1;
    int adjacent = v >= first && v - first <= 256;
    for (uintptr_t p = first; adjacent && p < v; p++)
        adjacent = key[p - k] == ' ' || key[p - k] == '\t';
    if (!s_token(key)) {
        snprintf(hc->why, sizeof hc->why, "a header field name that is not a token (obsolete line "
                 "folding or whitespace before the colon)");
        return MHD_NO;
    }
    if (!adjacent) {
        snprintf(hc->why, sizeof hc->why, "obsolete line folding in header field %.60s", key);
        return MHD_NO;
    }
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (++hc->content_length > 1) {
            snprintf(hc->why, sizeof hc->why, "Content-Length given more than once");
            return MHD_NO;
        }
        size_t n = strspn(value, "0123456789");
        if (n == 0 || value[n + strspn(value + n, " \t")] != '\0') {
            snprintf(hc->why, sizeof hc->why, "Content-Length is not a number");
            return MHD_NO;
        }
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        hc->transfer_encoding++;
        if (strcasecmp(value, "chunked") != 0 || hc->transfer_encoding > 1) {
            snprintf(hc->why, sizeof hc->why, "Transfer-Encoding other than one \"chunked\"");
            return MHD_NO;
        }
    }
    if (hc->content_length && hc->transfer_encoding) {
        snprintf(hc->why, sizeof hc->why, "both Transfer-Encoding and Content-Length");
        return MHD_NO;
    }
    return MHD_YES;
}

/* The first call for a request: check its header and target.  0, or -1
 * with the 400 answered (and the connection to be closed for framing). */
static int s_check_request(gp_http_req_t *r)
{
    s_hdr_check_t hc = { 0 };
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, s_check_field, &hc);
    if (hc.why[0]) {
        r->close = 1;
        gp_log_info("http request refused, connection closed why=\"%s\"", hc.why);
        gp_http_respond_error(r, 400, "%s", hc.why);
        return -1;
    }
    gp_err_t err;
    if (gp_uri_parse(r->target, &r->uri, &err) < 0) {
        r->close = 1;
        gp_http_respond_error(r, 400, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Called by MHD once the request line is read, with the target exactly as
 * received (MHD's own decoding cuts at a %00): the request starts here. */
static void *s_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    gp_http_req_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->server = cls;
    r->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, r->peer,
                  sizeof r->peer);
    r->target = strdup(uri);
    if (r->target == NULL || s_append(r, "", 0) < 0) {
        s_req_free(r);
        return NULL;
    }
    return r;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    gp_httpd_t *self = cls;
    (void)version;
    (void)url;   /* decoded by MHD; ours comes from the raw target */
    gp_http_req_t *r = *con_cls;
    if (r == NULL)
        return MHD_NO;   /* out of memory when the request line came */
    if (!r->checked) {
        r->checked = 1;
        r->method = strdup(method);
        if (r->method == NULL)
            return MHD_NO;
        if (s_check_request(r) < 0) {
            r->dispatched = 1;
            return s_queue(r);   /* MHD reads no more of this connection */
        }
        s_deadline(conn, self->lim.body_timeout_ms, "body");
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_large && r->len + *upload_size > self->lim.max_body)
            r->too_large = 1;
        if (!r->too_large && s_append(r, upload, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->answered)
        return s_queue(r);
    if (r->dispatched)
        return MHD_YES;    /* spurious call while deferred */
    r->dispatched = 1;
    s_deadline(conn, 0, NULL);
    if (r->too_large) {
        gp_http_respond_error(r, 413, "request body larger than %zu bytes", self->lim.max_body);
        return s_queue(r);
    }
    self->handler(self->arg, r);
    if (r->answered)
        return s_queue(r);
    r->suspended = 1;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    gp_httpd_t *self = cls;
    (void)toe;
    /* A kept-alive connection waits for its next request's header. */
    s_deadline(conn, self->lim.header_timeout_ms, "header");
    gp_http_req_t *r = *con_cls;
    if (r == NULL)
        return;
    *con_cls = NULL;
    if (r->dispatched && !r->answered) {
        /* The handler still owns it: it will be freed when answered. */
        r->conn = NULL;
        return;
    }
    s_req_free(r);
}

static void s_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    gp_httpd_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        s_conn_t *sc = calloc(1, sizeof *sc);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (sc == NULL || ci == NULL) {
            free(sc);
            return;   /* no deadlines for it; MHD's idle timeout still applies */
        }
        sc->conn = conn;
        sc->fd = ci->connect_fd;
        sc->deadline_ms = gp_mono_ms() + self->lim.header_timeout_ms;
        sc->waiting = "header";
        sc->next = self->conns;
        if (sc->next)
            sc->next->prev = sc;
        self->conns = sc;
        *socket_context = sc;
    } else if (*socket_context) {
        s_conn_t *sc = *socket_context;
        if (sc->prev)
            sc->prev->next = sc->next;
        else
            self->conns = sc->next;
        if (sc->next)
            sc->next->prev = sc->prev;
        free(sc);
        *socket_context = NULL;
    }
}

/* Close the connections whose header or body is late: shutting the socket
 * down makes MHD see the end of the stream and close it on its next run. */
static void s_sweep(gp_httpd_t *self)
{
    int64_t now = gp_mono_ms();
    for (s_conn_t *sc = self->conns; sc; sc = sc->next) {
        if (sc->deadline_ms && now >= sc->deadline_ms) {
            gp_log_info("http connection closed: %s too slow", sc->waiting);
            sc->deadline_ms = 0;
            shutdown(sc->fd, SHUT_RDWR);
            self->resumed = 1;   /* let MHD see it at once */
        }
    }
}

void gp_httpd_limits_default(gp_httpd_limits_t *limits, size_t max_body)
{
    *limits = (gp_httpd_limits_t){ .max_body = max_body,
                                   .max_connections = 1000,
                                   .per_client = 64,
                                   .idle_timeout_s = 30,
                                   .header_timeout_ms = 10000,
                                   .body_timeout_ms = 60000 };
}

/* A whole PEM file as a string (caller frees), or NULL with err set. */
static char *s_read_pem(const char *what, const char *path, gp_err_t *err)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;
    if (f == NULL) {
        gp_err_errno(err, "cannot open %s %s", what, path);
        return NULL;
    }
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (m && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, m);
    int bad = ferror(f);
    fclose(f);
    if (m == NULL || fclose(m) != 0 || bad) {
        free(text);
        gp_err_set(err, GP_ERR_IO, "cannot read %s %s", what, path);
        return NULL;
    }
    if (strstr(text, "-----BEGIN ") == NULL) {
        free(text);
        gp_err_set(err, GP_ERR_INVALID, "%s %s: not a PEM file", what, path);
        return NULL;
    }
    return text;
}

gp_httpd_t *gp_httpd_new(const char *addr, int port, const gp_httpd_limits_t *limits,
                         gp_http_handler_fn handler, void *arg, gp_err_t *err)
{
    return gp_httpd_new_tls(addr, port, limits, NULL, handler, arg, err);
}

gp_httpd_t *gp_httpd_new_tls(const char *addr, int port, const gp_httpd_limits_t *limits,
                             const gp_httpd_tls_t *tls, gp_http_handler_fn handler, void *arg,
                             gp_err_t *err)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port < 0 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        gp_err_set(err, GP_ERR_INVALID, "bad listen address %s:%d (an IPv4 address and a port)",
                   addr, port);
        return NULL;
    }
    if (limits->max_connections == 0 || limits->header_timeout_ms <= 0 ||
        limits->body_timeout_ms <= 0) {
        gp_err_set(err, GP_ERR_INVALID, "HTTP limits: connections and timeouts must be positive");
        return NULL;
    }
    gp_httpd_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->handler = handler;
    self->arg = arg;
    self->lim = *limits;
    /* TLS options go first in the list; unused slots end it early. */
    struct MHD_OptionItem tlsopts[4] = { { MHD_OPTION_END, 0, NULL } };
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (tls) {
        if ((self->tls_cert = s_read_pem("TLS certificate", tls->cert_file, err)) == NULL ||
            (self->tls_key = s_read_pem("TLS key", tls->key_file, err)) == NULL ||
            (tls->client_ca && *tls->client_ca &&
             (self->tls_ca = s_read_pem("client CA", tls->client_ca, err)) == NULL)) {
            gp_httpd_destroy(&self);
            return NULL;
        }
        self->tls = 1;
        flags |= MHD_USE_TLS;
        int k = 0;
        tlsopts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, self->tls_cert };
        tlsopts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, self->tls_key };
        if (self->tls_ca)
            tlsopts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, self->tls_ca };
        tlsopts[k] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    }
    self->mhd = MHD_start_daemon(flags, 0,
                                 NULL, NULL, s_access, self, MHD_OPTION_ARRAY, tlsopts,
                                 MHD_OPTION_SOCK_ADDR, &sa,
                                 MHD_OPTION_URI_LOG_CALLBACK, s_uri_log, self,
                                 MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                 MHD_OPTION_NOTIFY_CONNECTION, s_notify, self,
                                 MHD_OPTION_CONNECTION_TIMEOUT, limits->idle_timeout_s,
                                 MHD_OPTION_CONNECTION_LIMIT, limits->max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits->per_client,
                                 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (self->mhd == NULL) {
        if (self->tls)
            gp_err_set(err, GP_ERR_IO, "cannot listen on %s:%d (address in use, or a TLS "
                                       "certificate and key that do not load or match)", addr, port);
        else
            gp_err_set(err, GP_ERR_IO, "cannot listen on %s:%d (address in use?)", addr, port);
        gp_httpd_destroy(&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    return self;
}

void gp_httpd_destroy(gp_httpd_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    if ((*self_p)->mhd)
        MHD_stop_daemon((*self_p)->mhd);
    free((*self_p)->tls_cert);
    if ((*self_p)->tls_key) {
        explicit_bzero((*self_p)->tls_key, strlen((*self_p)->tls_key));
        free((*self_p)->tls_key);
    }
    free((*self_p)->tls_ca);
    free(*self_p);
    *self_p = NULL;
}

int gp_httpd_port(const gp_httpd_t *self) { return self->port; }

int gp_httpd_fd(const gp_httpd_t *self)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int gp_httpd_timeout_ms(const gp_httpd_t *self)
{
    if (self->resumed)
        return 0;
    int64_t t = 1000, now = gp_mono_ms();
    MHD_UNSIGNED_LONG_LONG mt;
    if (MHD_get_timeout(self->mhd, &mt) == MHD_YES && (int64_t)mt < t)
        t = (int64_t)mt;
    for (const s_conn_t *sc = self->conns; sc; sc = sc->next)
        if (sc->deadline_ms && sc->deadline_ms - now < t)
            t = sc->deadline_ms > now ? sc->deadline_ms - now : 0;
    return (int)t;
}

void gp_httpd_run(gp_httpd_t *self)
{
    self->resumed = 0;
    MHD_run(self->mhd);
    s_sweep(self);
}

const char *gp_http_req_method(const gp_http_req_t *req) { return req->method; }
const char *gp_http_req_path(const gp_http_req_t *req)
{
    return req->uri ? gp_uri_path(req->uri) : "";   /* "": refused before it was decoded */
}

const char *gp_http_req_query(const gp_http_req_t *req, const char *name)
{
    return gp_uri_query(req->uri, name);
}

const char *gp_http_req_header(const gp_http_req_t *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *gp_http_req_body(const gp_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->len;
    return req->body;
}

int gp_http_set_header(gp_http_req_t *req, const char *name, const char *value)
{
    if (req->answered || req->nheaders == GP_HTTP_MAX_HEADERS ||
        strlen(name) >= sizeof req->headers[0][0] || strlen(value) >= sizeof req->headers[0][1] ||
        strpbrk(name, "\r\n: ") != NULL || strpbrk(value, "\r\n") != NULL)
        return -1;
    snprintf(req->headers[req->nheaders][0], sizeof req->headers[0][0], "%s", name);
    snprintf(req->headers[req->nheaders][1], sizeof req->headers[0][1], "%s", value);
    req->nheaders++;
    return 0;
}

void gp_httpd_set_observer(gp_httpd_t *self, gp_http_observer_fn fn, void *arg)
{
    self->observer = fn;
    self->observer_arg = arg;
}

const char *gp_http_req_peer(const gp_http_req_t *req) { return req->peer; }

void gp_http_req_set_principal(gp_http_req_t *req, const char *name)
{
    free(req->principal);
    req->principal = name ? strdup(name) : NULL;
}

const char *gp_http_req_principal(const gp_http_req_t *req) { return req->principal; }

/* Verify the connection's client certificate (once per request). */
static void s_check_cert(gp_http_req_t *req)
{
    req->cert_checked = 1;
    req->cert = GP_HTTP_CERT_NONE;
    if (!req->server->tls || req->server->tls_ca == NULL || req->conn == NULL)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned n = 0;
    const gnutls_datum_t *chain = session ? gnutls_certificate_get_peers(session, &n) : NULL;
    if (chain == NULL || n == 0)
        return;
    req->cert = GP_HTTP_CERT_REFUSED;
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers2(session, &status);
    if (rc < 0) {
        snprintf(req->cert_cn, sizeof req->cert_cn, "cannot be verified: %s", gnutls_strerror(rc));
        return;
    }
    if (status) {
        const char *why = status & GNUTLS_CERT_EXPIRED         ? "expired"
                          : status & GNUTLS_CERT_NOT_ACTIVATED ? "not valid yet"
                          : status & GNUTLS_CERT_REVOKED       ? "revoked"
                          : status & GNUTLS_CERT_SIGNER_NOT_FOUND
                              ? "not signed by the API's client CA"
                              : "invalid";
        snprintf(req->cert_cn, sizeof req->cert_cn, "%s", why);
        return;
    }
    gnutls_x509_crt_t crt;
    size_t size = sizeof req->cert_cn;
    if (gnutls_x509_crt_init(&crt) < 0) {
        snprintf(req->cert_cn, sizeof req->cert_cn, "out of memory");
        return;
    }
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, req->cert_cn,
                                      &size) < 0 ||
        req->cert_cn[0] == '\0') {
        snprintf(req->cert_cn, sizeof req->cert_cn, "has no common name");
    } else {
        req->cert = GP_HTTP_CERT_VERIFIED;
    }
    gnutls_x509_crt_deinit(crt);
}

gp_http_cert_t gp_http_req_client_cert(gp_http_req_t *req, const char **cn)
{
    if (!req->cert_checked)
        s_check_cert(req);
    if (cn)
        *cn = req->cert == GP_HTTP_CERT_NONE ? NULL : req->cert_cn;
    return req->cert;
}

void gp_http_respond(gp_http_req_t *req, int status, const char *content_type, char *body,
                     size_t len)
{
    if (req->answered) {
        free(body);
        return;
    }
    if (req->server->observer)
        req->server->observer(req->server->observer_arg, req, status, body, body ? len : 0);
    req->answered = 1;
    req->status = status;
    req->resp_body = body;
    req->resp_len = body ? len : 0;
    snprintf(req->content_type, sizeof req->content_type, "%s", content_type ? content_type : "");
    if (req->suspended) {
        if (req->conn == NULL) {
            /* The client went away while we worked: nothing to send. */
            s_req_free(req);
            return;
        }
        req->suspended = 0;
        req->server->resumed = 1;
        MHD_resume_connection(req->conn);
    }
}

void gp_http_respond_error(gp_http_req_t *req, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* JSON strings are UTF-8: a message quoting bad input loses those bytes. */
    if (!gp_utf8_valid(msg, strlen(msg)))
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    json_t *o = json_pack("{s:s}", "error", msg);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (body == NULL) {
        gp_http_respond(req, status, "text/plain", NULL, 0);
        return;
    }
    size_t n = strlen(body);
    char *withnl = realloc(body, n + 2);
    if (withnl) {
        withnl[n] = '\n';
        withnl[n + 1] = '\0';
        body = withnl;
        n++;
    }
    gp_http_respond(req, status, "application/json", body, n);
}
