#include "httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "banned.h"

struct gp_httpd {
    struct MHD_Daemon *mhd;
    gp_http_handler_fn handler;
    void *arg;
    size_t max_body;
    int port;
    int resumed;          /* a deferred answer is waiting for gp_httpd_run */
};

/* One request.  State machine: READING (body arriving) -> DISPATCHED
 * (handler called; connection suspended if it did not answer) -> ANSWERED
 * (response stored; queued at the next access-handler call).  Freed by the
 * completion callback. */
struct gp_http_req {
    gp_httpd_t *server;
    struct MHD_Connection *conn;
    char *method, *path;
    char *body;
    size_t len, cap;
    int too_large, dispatched, suspended, answered;
    int status;
    char *resp_body;
    size_t resp_len;
    char content_type[64];
};

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
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    gp_httpd_t *self = cls;
    (void)version;
    gp_http_req_t *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->server = self;
        r->conn = conn;
        r->method = strdup(method);
        r->path = strdup(url);
        if (r->method == NULL || r->path == NULL || s_append(r, "", 0) < 0) {
            free(r->method);
            free(r->path);
            free(r->body);
            free(r);
            return MHD_NO;
        }
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_large && r->len + *upload_size > self->max_body)
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
    if (r->too_large) {
        gp_http_respond_error(r, 413, "request body larger than %zu bytes", self->max_body);
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
    (void)cls;
    (void)conn;
    (void)toe;
    gp_http_req_t *r = *con_cls;
    if (r == NULL)
        return;
    if (r->dispatched && !r->answered) {
        /* The handler still owns it: it will be freed when answered. */
        r->conn = NULL;
        *con_cls = NULL;
        return;
    }
    free(r->method);
    free(r->path);
    free(r->body);
    free(r->resp_body);
    free(r);
    *con_cls = NULL;
}

gp_httpd_t *gp_httpd_new(const char *addr, int port, size_t max_body, gp_http_handler_fn handler,
                         void *arg, gp_err_t *err)
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
    gp_httpd_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->handler = handler;
    self->arg = arg;
    self->max_body = max_body;
    self->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
                                 NULL, NULL, s_access, self, MHD_OPTION_SOCK_ADDR, &sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (self->mhd == NULL) {
        gp_err_set(err, GP_ERR_IO, "cannot listen on %s:%d (address in use?)", addr, port);
        free(self);
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
    MHD_stop_daemon((*self_p)->mhd);
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
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(self->mhd, &t) != MHD_YES)
        return -1;
    return t > 1000 ? 1000 : (int)t;
}

void gp_httpd_run(gp_httpd_t *self)
{
    self->resumed = 0;
    MHD_run(self->mhd);
}

const char *gp_http_req_method(const gp_http_req_t *req) { return req->method; }
const char *gp_http_req_path(const gp_http_req_t *req) { return req->path; }

const char *gp_http_req_query(const gp_http_req_t *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
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

void gp_http_respond(gp_http_req_t *req, int status, const char *content_type, char *body,
                     size_t len)
{
    if (req->answered) {
        free(body);
        return;
    }
    req->answered = 1;
    req->status = status;
    req->resp_body = body;
    req->resp_len = body ? len : 0;
    snprintf(req->content_type, sizeof req->content_type, "%s", content_type ? content_type : "");
    if (req->suspended) {
        if (req->conn == NULL) {
            /* The client went away while we worked: nothing to send. */
            free(req->method);
            free(req->path);
            free(req->body);
            free(req->resp_body);
            free(req);
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
