/*
 * etcd.c - the etcd client: configuration, endpoints and failover,
 * authentication, the request engine and the synchronous calls.
 *
 * The request engine.  Every call becomes one or more gp_etcd_req_t, each a
 * POST of a pre-built JSON body.  A request borrows an easy handle from the
 * client's pool (handles keep their options, so a request only sets URL,
 * body, deadline and headers) and runs on a libcurl multi handle whose
 * connection cache holds the keep-alive connections (HTTP/1.1: etcd 3.4
 * routes cleartext HTTP/2 to its gRPC server, not to the gateway, so one
 * connection carries one request at a time and N in flight need N
 * connections; max_connections bounds them).
 *
 * Endpoints.  The list is the local endpoints (the members near the
 * caller) followed by the others, duplicates dropped; a client without
 * local endpoints treats them all alike.  Coming back to a local endpoint
 * after a failover is etcd_home.c's duty.
 *
 * Failover.  The client sticks to cur_ep.  When an attempt fails in a way
 * that says "this member is unusable" (connect refused or timed out, TLS
 * failure, a broken connection, "no leader"), the endpoint is marked failed
 * (cur_ep moves to the next one) and the request is sent again when that is
 * safe: always when nothing was sent (connect failures), and after a
 * broken connection or an "unavailable" answer only for requests whose
 * repetition has the same effect: reads, lease time-to-live, keep-alives,
 * and puts (a put applied twice leaves the same value; it may cost one more
 * revision and one more watch event).  Txns, deletes, grants and revokes
 * are not repeated after they may have reached etcd: their outcome is
 * unknown and the caller gets GP_ERR_TRANSPORT/GP_ERR_TIMEOUT.  Attempts
 * stop at the request's deadline; a full round over every endpoint waits
 * 100 ms before the next.
 *
 * Authentication.  With a username, the client gets a token from
 * /v3/auth/authenticate (synchronously, trying every endpoint) and sends it
 * as the Authorization header.  A request answered "invalid auth token"
 * (the token expired: --auth-token-ttl, or the member restarted) gets a new
 * token and is sent once more.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"
#include "banned.h"

#define S_STREAM_BUFFER (256L * 1024)   /* a gRPC stream's receive buffer */

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void gp_etcd_config_from(gp_etcd_config_t *cfg, const char *endpoints, const char *ca,
                         const char *cert, const char *key, const char *user,
                         const char *password)
{
    gp_etcd_config_t d = GP_ETCD_CONFIG_INIT;
    *cfg = d;
    cfg->endpoints = endpoints;
    cfg->ca_file = ca && *ca ? ca : NULL;
    cfg->cert_file = cert && *cert ? cert : NULL;
    cfg->key_file = key && *key ? key : NULL;
    cfg->username = user && *user ? user : NULL;
    cfg->password = password && *password ? password : NULL;
}

/* ------------------------------------------------------------ headers */

void gp_etcd_config_for_lease(gp_etcd_config_t *cfg, int64_t lease_ttl_ms)
{
    int64_t t = lease_ttl_ms < 1000 ? 1000 : lease_ttl_ms > 5000 ? 5000 : lease_ttl_ms;
    cfg->request_timeout_ms = (int)t;
}

static int s_build_headers(gp_etcd_t *etcd)
{
    struct curl_slist *h = NULL, *hg = NULL, *t;
    char auth[1024];
    const char *base[] = { "Content-Type: application/json", "Expect:" };
    /* gRPC calls (watches): etcd reads the token from the "token" metadata;
     * "hasleader" makes etcd end a watch stream when its member loses the
     * leader (a partitioned member would otherwise stay silent). */
    const char *grpc[] = { "Content-Type: application/grpc", "TE: trailers", "hasleader: true" };
    for (size_t i = 0; i < GP_ARRAY_LEN(base); i++) {
        if (!(t = curl_slist_append(h, base[i])))
            goto fail;
        h = t;
    }
    for (size_t i = 0; i < GP_ARRAY_LEN(grpc); i++) {
        if (!(t = curl_slist_append(hg, grpc[i])))
            goto fail;
        hg = t;
    }
    if (etcd->token) {
        snprintf(auth, sizeof(auth), "Authorization: %s", etcd->token);
        if (!(t = curl_slist_append(h, auth)))
            goto fail;
        h = t;
        snprintf(auth, sizeof(auth), "token: %s", etcd->token);
        if (!(t = curl_slist_append(hg, auth)))
            goto fail;
        hg = t;
    }
    /* Lists still referenced by handles in flight stay alive until destroy. */
    if (etcd->headers) {
        if (etcd->n_old_headers + 2 > (int)GP_ARRAY_LEN(etcd->old_headers)) {
            /* Keep the newest few; older ones cannot be in use any more
             * because each request re-reads the list when it is sent. */
            curl_slist_free_all(etcd->old_headers[0]);
            curl_slist_free_all(etcd->old_headers[1]);
            memmove(etcd->old_headers, etcd->old_headers + 2,
                    sizeof(etcd->old_headers[0]) * (size_t)(etcd->n_old_headers - 2));
            etcd->n_old_headers -= 2;
        }
        etcd->old_headers[etcd->n_old_headers++] = etcd->headers;
        etcd->old_headers[etcd->n_old_headers++] = etcd->grpc_headers;
    }
    etcd->headers = h;
    etcd->grpc_headers = hg;
    return 0;
fail:
    curl_slist_free_all(h);
    curl_slist_free_all(hg);
    return -1;
}

/* ------------------------------------------------------------ client */

static char *s_strdup_opt(const char *s, bool *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* Append the comma-separated URLs of list to the client's endpoints,
 * trailing slashes dropped, skipping those already there. */
static int s_add_endpoints(gp_etcd_t *etcd, const char *list_in, gp_err_t *err)
{
    char *list = strdup(list_in), *save = NULL;
    int rc = 0;
    if (!list)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (char *tok = strtok_r(list, ", ", &save); tok && rc == 0; tok = strtok_r(NULL, ", ", &save)) {
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == '/')
            tok[--n] = '\0';
        if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
            rc = gp_err_set(err, GP_ERR_INVALID, "etcd endpoint %s is not an http:// or https:// URL", tok);
            break;
        }
        bool dup = false;
        for (int i = 0; i < etcd->n_endpoints && !dup; i++)
            dup = !strcmp(etcd->endpoints[i], tok);
        if (dup)
            continue;
        char **eps = realloc(etcd->endpoints, sizeof(char *) * (size_t)(etcd->n_endpoints + 1));
        if (eps)
            etcd->endpoints = eps;
        if (!eps || !(eps[etcd->n_endpoints] = strdup(tok)))
            rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        else
            etcd->n_endpoints++;
    }
    free(list);
    return rc;
}

gp_etcd_t *gp_etcd_new(const gp_etcd_config_t *cfg, gp_err_t *err)
{
    if (!cfg || !cfg->endpoints || !*cfg->endpoints) {
        gp_err_set(err, GP_ERR_INVALID, "etcd: no endpoints configured");
        return NULL;
    }
    if ((cfg->cert_file && *cfg->cert_file) != (cfg->key_file && *cfg->key_file)) {
        gp_err_set(err, GP_ERR_INVALID, "etcd: a client certificate needs its key and the key its certificate");
        return NULL;
    }
    pthread_once(&s_curl_once, s_curl_init);
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
        gp_err_set(err, GP_ERR_INVALID, "etcd: this libcurl has no HTTP/2, which watches need (gRPC)");
        return NULL;
    }
    gp_etcd_t *etcd = calloc(1, sizeof(*etcd));
    if (!etcd) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    bool oom = false;
    etcd->request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 5000;
    etcd->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : 2000;
    etcd->max_connections = cfg->max_connections > 0 ? cfg->max_connections : 64;
    etcd->ca_file = s_strdup_opt(cfg->ca_file, &oom);
    etcd->cert_file = s_strdup_opt(cfg->cert_file, &oom);
    etcd->key_file = s_strdup_opt(cfg->key_file, &oom);
    etcd->username = s_strdup_opt(cfg->username, &oom);
    etcd->password = cfg->password ? strdup(cfg->password) : (cfg->username ? strdup("") : NULL);
    if (cfg->username && !etcd->password)
        oom = true;
    if (oom) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* endpoints: the local ones, then the others */
    if (cfg->local_endpoints && *cfg->local_endpoints) {
        if (s_add_endpoints(etcd, cfg->local_endpoints, err) < 0)
            goto fail;
        if (etcd->n_endpoints == 0) {
            gp_err_set(err, GP_ERR_INVALID, "etcd: no endpoints in \"%s\"", cfg->local_endpoints);
            goto fail;
        }
        etcd->n_local = etcd->n_endpoints;
    }
    if (s_add_endpoints(etcd, cfg->endpoints, err) < 0)
        goto fail;
    if (etcd->n_endpoints == etcd->n_local) {
        if (etcd->n_local == 0) {
            gp_err_set(err, GP_ERR_INVALID, "etcd: no endpoints in \"%s\"", cfg->endpoints);
            goto fail;
        }
        etcd->n_local = 0;   /* every endpoint is local: nothing to come back from */
    }

    if (s_build_headers(etcd) < 0 || !(etcd->fg = curl_multi_init())) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    curl_multi_setopt(etcd->fg, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)etcd->max_connections);
    curl_multi_setopt(etcd->fg, CURLMOPT_MAXCONNECTS, (long)etcd->max_connections);
    curl_multi_setopt(etcd->fg, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    if (!(etcd->loop = gp_etcd_loop_new(etcd))) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (etcd->n_local > 0 && gp_etcd_home_start(etcd, err) < 0)
        goto fail;
    return etcd;
fail:
    gp_etcd_destroy(&etcd);
    return NULL;
}

void gp_etcd_destroy(gp_etcd_t **etcd_p)
{
    gp_etcd_t *etcd = etcd_p ? *etcd_p : NULL;
    if (!etcd)
        return;
    gp_etcd_loop_destroy(&etcd->loop);
    for (int i = 0; i < etcd->n_easy_pool; i++)
        curl_easy_cleanup(etcd->easy_pool[i]);
    free(etcd->easy_pool);
    if (etcd->fg)
        curl_multi_cleanup(etcd->fg);
    curl_slist_free_all(etcd->headers);
    curl_slist_free_all(etcd->grpc_headers);
    for (int i = 0; i < etcd->n_old_headers; i++)
        curl_slist_free_all(etcd->old_headers[i]);
    for (int i = 0; i < etcd->n_endpoints; i++)
        free(etcd->endpoints[i]);
    free(etcd->endpoints);
    free(etcd->ca_file);
    free(etcd->cert_file);
    free(etcd->key_file);
    free(etcd->username);
    if (etcd->password) {
        memset(etcd->password, 0, strlen(etcd->password));
        free(etcd->password);
    }
    free(etcd->token);
    free(etcd);
    *etcd_p = NULL;
}

const char *gp_etcd_endpoint(const gp_etcd_t *etcd)
{
    return etcd->endpoints[etcd->cur_ep];
}

bool gp_etcd_endpoint_local(const gp_etcd_t *etcd)
{
    return etcd->cur_ep < etcd->n_local;
}

const char *const *gp_etcd_endpoints(const gp_etcd_t *etcd, int *n, int *n_local)
{
    if (n)
        *n = etcd->n_endpoints;
    if (n_local)
        *n_local = etcd->n_local;
    return (const char *const *)etcd->endpoints;
}

int gp_etcd_failbacks(const gp_etcd_t *etcd)
{
    return etcd->failbacks;
}

int gp_etcd_request_timeout_ms(const gp_etcd_t *etcd)
{
    return etcd->request_timeout_ms;
}

void gp_etcd_endpoint_failed(gp_etcd_t *etcd, int ep)
{
    if (ep == etcd->cur_ep && etcd->n_endpoints > 1) {
        etcd->cur_ep = (ep + 1) % etcd->n_endpoints;
        if (ep < etcd->n_local && etcd->cur_ep >= etcd->n_local)
            etcd->left_local_ms = gp_mono_ms();
        gp_log_info("etcd endpoint failed endpoint=%s next=%s local=%s", etcd->endpoints[ep],
                    etcd->endpoints[etcd->cur_ep], etcd->cur_ep < etcd->n_local ? "yes" : "no");
    }
}

/* ------------------------------------------------------------ easy handles */

static size_t s_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    gp_etcd_req_t *req = arg;
    size_t n = size * nmemb;
    if (req->streaming) {
        long status = 0;
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && (!req->grpc || req->grpc_ctype)) {
            req->streamed_ok = true;
            return req->on_data(req, data, n) ? n : 0;
        }
        if (req->resp.len > 65536)   /* an error body is small */
            return 0;
    }
    if (req->resp.len + n > (size_t)256 << 20)   /* refuse absurd bodies */
        return 0;
    return gp_ebuf_add(&req->resp, data, n) < 0 ? 0 : n;
}

/* Header "name: value" (name case-insensitive): the value, trimmed. */
static bool s_header_is(const char *line, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return false;
    const char *p = line + k + 1, *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *v = p;
    *vn = (size_t)(end - p);
    return true;
}

/* A gRPC answer's headers and trailers (curl gives both here): its content
 * type, and the call's status and message. */
static size_t s_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    gp_etcd_req_t *req = arg;
    size_t n = size * nmemb;
    const char *v;
    size_t vn;
    if (s_header_is(data, n, "content-type", &v, &vn)) {
        req->grpc_ctype = vn >= 16 && strncasecmp(v, "application/grpc", 16) == 0;
    } else if (s_header_is(data, n, "grpc-status", &v, &vn)) {
        char num[16];
        int64_t code;
        if (vn == 0 || vn >= sizeof(num))
            return 0;
        memcpy(num, v, vn);
        num[vn] = '\0';
        if (gp_parse_int64(num, 0, 255, &code) < 0)
            return 0;   /* not gRPC: the transfer fails */
        req->grpc_status = (int)code;
    } else if (s_header_is(data, n, "grpc-message", &v, &vn)) {
        int dn = 0;
        char *d = curl_easy_unescape(req->easy, v, (int)vn, &dn);   /* percent-encoded */
        gp_strlcpy(req->grpc_msg, d ? d : "", sizeof(req->grpc_msg));
        curl_free(d);
    }
    return n;
}

/* Keep-alive probes give up after 3 unanswered ones, so that a stream to a
 * member that vanished without a reset (a partition, a powered-off host)
 * ends within about 25 s instead of the kernel's default of minutes. */
static int s_sockopt_cb(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        int cnt = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
    return CURL_SOCKOPT_OK;
}

static CURL *s_easy_get(gp_etcd_t *etcd)
{
    if (etcd->n_easy_pool > 0)
        return etcd->easy_pool[--etcd->n_easy_pool];
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, s_sockopt_cb);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)etcd->dial_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, "");   /* never a proxy (and no environment lookups per request) */
    if (etcd->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, etcd->ca_file);
    if (etcd->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, etcd->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, etcd->key_file);
    }
    return e;
}

static void s_easy_put(gp_etcd_t *etcd, CURL *e)
{
    if (etcd->n_easy_pool == etcd->cap_easy_pool) {
        int cap = etcd->cap_easy_pool ? etcd->cap_easy_pool * 2 : 16;
        CURL **p = realloc(etcd->easy_pool, sizeof(*p) * (size_t)cap);
        if (!p) {
            curl_easy_cleanup(e);
            return;
        }
        etcd->easy_pool = p;
        etcd->cap_easy_pool = cap;
    }
    etcd->easy_pool[etcd->n_easy_pool++] = e;
}

/* ------------------------------------------------------------ requests */

void gp_etcd_req_init(gp_etcd_req_t *req, gp_etcd_t *etcd, const char *path)
{
    memset(req, 0, sizeof(*req));
    req->etcd = etcd;
    req->path = path;
    req->ep = -1;
}

void gp_etcd_req_release(gp_etcd_req_t *req)
{
    gp_etcd_req_release_easy(req);
    gp_ebuf_free(&req->body);
    gp_ebuf_free(&req->resp);
}

void gp_etcd_req_release_easy(gp_etcd_req_t *req)
{
    if (!req->easy)
        return;
    if (req->grpc)
        curl_easy_cleanup(req->easy);   /* HTTP/2 and a header callback: not for the pool */
    else
        s_easy_put(req->etcd, req->easy);
    req->easy = NULL;
}

void gp_etcd_req_rearm(gp_etcd_req_t *req)
{
    req->resp.len = 0;
    req->failed = 0;
    req->attempts = 0;
    req->auth_retried = false;
    req->deadline_ms = 0;
    req->not_before_ms = 0;
    req->http_status = 0;
    req->streamed_ok = false;
    req->ep = -1;
    gp_err_clear(&req->err);
}

int gp_etcd_req_attach(gp_etcd_t *etcd, gp_etcd_req_t *req, CURLM *multi, gp_err_t *err)
{
    char url[1024];
    int64_t now = gp_mono_ms();
    if (!req->streaming && req->deadline_ms == 0)
        req->deadline_ms = now + etcd->request_timeout_ms;
    if (req->ep < 0 || req->ep >= etcd->n_endpoints)
        req->ep = etcd->cur_ep;
    if (!req->easy && !(req->easy = s_easy_get(etcd)))
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory for a curl handle");
    snprintf(url, sizeof(url), "%s%s", etcd->endpoints[req->ep], req->path);
    CURL *e = req->easy;
    /* a pooled handle usually goes to the same URL again: skip re-parsing it */
    char *last = NULL;
    if (curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &last) != CURLE_OK || !last || strcmp(last, url) != 0)
        curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body.p ? req->body.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body.len);
    if (req->grpc) {
        /* HTTP/2 from the first byte (etcd serves gRPC and the gateway on
         * one port; over TLS, ALPN chooses h2) */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* A receive buffer larger than what libcurl reads from an HTTP/2
         * socket at once (32 KiB): what one read brings never overflows it
         * (see gp_etcd_bg_drain). */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, S_STREAM_BUFFER);
        /* A stream lives long, and a connection kept idle meanwhile may be
         * dead by its next use (its member restarted): the stream would
         * fail at once and count a healthy member as failed.  A stream's
         * own connection, opened for it and closed with it, is never stale. */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, etcd->grpc_headers);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
        req->grpc_ctype = false;
        req->grpc_status = -1;
        req->grpc_msg[0] = '\0';
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, etcd->headers);
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)CURL_MAX_WRITE_SIZE);   /* (a pooled handle) */
    }
    req->token_gen = etcd->token_gen;
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    long t = 0;
    if (!req->streaming) {
        t = (long)(req->deadline_ms - now);
        if (t < 1)
            t = 1;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t);
    req->resp.len = 0;
    req->http_status = 0;
    req->streamed_ok = false;
    req->attempts++;
    if (curl_multi_add_handle(multi, e) != CURLM_OK)
        return gp_err_set(err, GP_ERR_TRANSPORT, "curl_multi_add_handle failed");
    return 0;
}

/* Failed before anything reached the server. */
static bool s_nothing_sent(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
           rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE;
}

/* See the comment at the top of the file. */
bool gp_etcd_req_finish(gp_etcd_req_t *req, CURLcode rc)
{
    enum { NO_RETRY, RETRY_NOW, RETRY_ROUND, RETRY_UNTIL_DEADLINE } retry = NO_RETRY;
    gp_etcd_t *etcd = req->etcd;
    int64_t now = gp_mono_ms();
    gp_err_clear(&req->err);
    req->failed = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->http_status);
    const char *ep = etcd->endpoints[req->ep];

    if (req->probe) {
        /* A probe's answer is its whole outcome.  An authentication
         * refusal is an answer from a working member too (its token may
         * simply be unknown there: the next real request gets one). */
        if (rc == CURLE_OK && req->http_status == 200)
            return false;
        req->failed = 1;
        if (rc == CURLE_OK) {
            gp_etcd_parse_error(req->resp.p ? req->resp.p : "", req->resp.len, req->http_status,
                                &req->err);
            if (req->err.code == GP_ERR_AUTH)
                req->failed = 0;
        } else {
            gp_err_set(&req->err, rc == CURLE_OPERATION_TIMEDOUT ? GP_ERR_TIMEOUT : GP_ERR_TRANSPORT,
                       "etcd probe of %s failed: %s", ep, curl_easy_strerror(rc));
        }
        return false;
    }
    if (req->streaming && req->streamed_ok) {
        /* a stream that had started and then ended: the owner resumes it */
        req->failed = 1;
        bool grpc_err = rc == CURLE_OK && req->grpc_status > 0;   /* e.g. "no leader" */
        if (grpc_err)
            gp_err_set(&req->err, GP_ERR_TRANSPORT, "etcd stream from %s ended: %s (code %d)", ep,
                       req->grpc_msg, req->grpc_status);
        else
            gp_err_set(&req->err, GP_ERR_TRANSPORT, "etcd stream from %s ended: %s", ep,
                       rc == CURLE_OK ? "closed by the server" : curl_easy_strerror(rc));
        if (rc != CURLE_OK || grpc_err)
            gp_etcd_endpoint_failed(etcd, req->ep);
        return false;
    }
    if (rc == CURLE_OK && req->http_status == 200 && !req->grpc)
        return false;
    req->failed = 1;
    if (rc == CURLE_OK) {
        if (!req->grpc) {
            gp_etcd_parse_error(req->resp.p ? req->resp.p : "", req->resp.len, req->http_status, &req->err);
        } else if (req->http_status != 200 || !req->grpc_ctype) {
            gp_err_set(&req->err, GP_ERR_SERVER, "etcd at %s answered HTTP %ld to %s, not gRPC", ep,
                       req->http_status, req->path);
            req->err.status = (int)req->http_status;
        } else if (req->grpc_status > 0) {
            gp_etcd_grpc_error(req->grpc_status, req->grpc_msg, &req->err);   /* a refusal */
        } else {
            gp_err_set(&req->err, GP_ERR_TRANSPORT, "etcd stream from %s closed before its first message", ep);
        }
        if (req->err.code == GP_ERR_AUTH && req->err.status == 16 && etcd->username &&
            !req->auth_retried) {
            /* token expired or unknown to this member: get a new one */
            req->auth_retried = true;
            gp_err_t aerr;
            if (req->token_gen != etcd->token_gen)
                retry = RETRY_NOW;   /* another request already got a new token */
            else if (gp_etcd_authenticate(etcd, true, &aerr) == 0)
                retry = RETRY_NOW;
            else
                req->err = aerr;
        } else if (req->err.status == 14 /* Unavailable: no leader, stopping, ... */) {
            gp_etcd_endpoint_failed(etcd, req->ep);
            if (req->idempotent || strstr(req->err.msg, "no leader") || strstr(req->err.msg, "not capable"))
                retry = RETRY_UNTIL_DEADLINE;
        } else if (req->http_status >= 500 && req->err.status == req->http_status) {
            /* not the gateway talking (a proxy, a dying member) */
            gp_etcd_endpoint_failed(etcd, req->ep);
            if (req->idempotent)
                retry = RETRY_ROUND;
        }
    } else if (rc == CURLE_OPERATION_TIMEDOUT && !req->streaming && now >= req->deadline_ms - 1) {
        gp_err_set(&req->err, GP_ERR_TIMEOUT, "etcd request %s to %s timed out", req->path, ep);
        gp_etcd_endpoint_failed(etcd, req->ep);
    } else if (rc == CURLE_WRITE_ERROR) {
        gp_err_set(&req->err, GP_ERR_PROTOCOL, "etcd response from %s refused (too large or malformed)", ep);
    } else {
        gp_err_set(&req->err, GP_ERR_TRANSPORT, "etcd request %s to %s failed: %s", req->path, ep,
                   curl_easy_strerror(rc));
        gp_etcd_endpoint_failed(etcd, req->ep);
        if (s_nothing_sent(rc) || rc == CURLE_OPERATION_TIMEDOUT)
            retry = RETRY_UNTIL_DEADLINE;   /* connect failed or timed out */
        else if (req->idempotent)
            retry = RETRY_ROUND;
    }
    if (retry == NO_RETRY)
        return false;
    if (retry == RETRY_ROUND && req->attempts >= etcd->n_endpoints)
        return false;
    if (req->attempts >= 64 * etcd->n_endpoints)
        return false;
    req->ep = etcd->cur_ep;
    /* one full round over the endpoints, then pause before the next */
    req->not_before_ms = (retry != RETRY_NOW && req->attempts % etcd->n_endpoints == 0) ? now + 100 : now;
    if (!req->streaming && req->not_before_ms >= req->deadline_ms) {
        char last[sizeof(req->err.msg)];
        gp_strlcpy(last, req->err.msg, sizeof(last));
        gp_err_set(&req->err, GP_ERR_TIMEOUT, "etcd request %s timed out after %d attempts; last: %s",
                   req->path, req->attempts, last);
        return false;
    }
    req->failed = 0;
    return true;
}

/* Attach r to the fg multi; when that fails, r is final at once (failed,
 * its done() called) and false is returned. */
static bool s_attach_fg(gp_etcd_t *etcd, gp_etcd_req_t *r)
{
    if (gp_etcd_req_attach(etcd, r, etcd->fg, &r->err) == 0)
        return true;
    r->failed = 1;
    if (r->done)
        r->done(r);
    return false;
}

/* Drive reqs to completion on the fg multi. */
int gp_etcd_run_fg(gp_etcd_t *etcd, gp_etcd_req_t **reqs, size_t n, int max_inflight, gp_err_t *err)
{
    if (max_inflight < 1)
        max_inflight = 1;
    if (max_inflight > etcd->max_connections)
        max_inflight = etcd->max_connections;
    size_t next = 0, done = 0;
    int inflight = 0;
    /* requests waiting for a retry */
    gp_etcd_req_t *wait_small[16];
    gp_etcd_req_t **wait = wait_small;
    size_t n_wait = 0;
    int rc = 0;
    if (n > GP_ARRAY_LEN(wait_small) && !(wait = malloc(sizeof(*wait) * n)))
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");

    while (done < n) {
        int64_t now = gp_mono_ms();
        int64_t next_wake = -1;
        for (size_t i = 0; i < n_wait && inflight < max_inflight;) {
            gp_etcd_req_t *r = wait[i];
            if (r->not_before_ms > now) {
                if (next_wake < 0 || r->not_before_ms < next_wake)
                    next_wake = r->not_before_ms;
                i++;
                continue;
            }
            wait[i] = wait[--n_wait];
            if (s_attach_fg(etcd, r))
                inflight++;
            else
                done++;
        }
        while (next < n && inflight < max_inflight) {
            if (s_attach_fg(etcd, reqs[next++]))
                inflight++;
            else
                done++;
        }
        if (done >= n)
            break;
        int running = 0;
        if (curl_multi_perform(etcd->fg, &running) != CURLM_OK) {
            rc = gp_err_set(err, GP_ERR_TRANSPORT, "curl_multi_perform failed");
            break;
        }
        CURLMsg *msg;
        int left;
        bool progressed = false;
        while ((msg = curl_multi_info_read(etcd->fg, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            gp_etcd_req_t *r = NULL;
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(etcd->fg, e);
            inflight--;
            progressed = true;
            if (gp_etcd_req_finish(r, res)) {
                wait[n_wait++] = r;
                continue;
            }
            s_easy_put(etcd, r->easy);
            r->easy = NULL;
            done++;
            if (r->done)
                r->done(r);
        }
        if (done >= n || progressed)
            continue;
        int wait_ms = 1000;
        if (n_wait > 0) {
            int64_t d = next_wake >= 0 ? next_wake - gp_mono_ms() : 0;
            if (d < wait_ms)
                wait_ms = d < 0 ? 0 : (int)d;
        }
        if (inflight > 0)
            curl_multi_poll(etcd->fg, NULL, 0, wait_ms, NULL);
        else if (wait_ms > 0)
            poll(NULL, 0, wait_ms);
    }
    /* internal failure: detach whatever is still attached */
    if (rc < 0) {
        for (size_t i = 0; i < next; i++) {
            if (reqs[i]->easy) {
                curl_multi_remove_handle(etcd->fg, reqs[i]->easy);
                s_easy_put(etcd, reqs[i]->easy);
                reqs[i]->easy = NULL;
            }
        }
    }
    if (wait != wait_small)
        free(wait);
    return rc;
}

/* ------------------------------------------------------------ authentication */

int gp_etcd_authenticate(gp_etcd_t *etcd, bool force, gp_err_t *err)
{
    if (!etcd->username)
        return 0;
    if (etcd->token && !force)
        return 0;
    /* A blocking request on its own handle: this may run in the middle of
     * a batch on the fg multi or of a step on the bg multi. */
    gp_etcd_req_t req;
    gp_etcd_req_init(&req, etcd, "/v3/auth/authenticate");
    req.idempotent = true;
    req.auth_retried = true;
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    json_t *body = json_pack("{ssss}", "name", etcd->username, "password", etcd->password);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rc = 0;
    if (!hdr || !s || gp_ebuf_adds(&req.body, s) < 0 || !(req.easy = s_easy_get(etcd)))
        rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
    req.deadline_ms = gp_mono_ms() + etcd->request_timeout_ms;
    while (rc == 0) {
        char url[1024];
        if (req.ep < 0)
            req.ep = etcd->cur_ep;
        if (req.not_before_ms > gp_mono_ms())
            poll(NULL, 0, (int)(req.not_before_ms - gp_mono_ms()));
        snprintf(url, sizeof(url), "%s%s", etcd->endpoints[req.ep], req.path);
        curl_easy_setopt(req.easy, CURLOPT_URL, url);
        curl_easy_setopt(req.easy, CURLOPT_POSTFIELDS, req.body.p);
        curl_easy_setopt(req.easy, CURLOPT_POSTFIELDSIZE, (long)req.body.len);
        curl_easy_setopt(req.easy, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(req.easy, CURLOPT_WRITEDATA, &req);
        long t = (long)(req.deadline_ms - gp_mono_ms());
        curl_easy_setopt(req.easy, CURLOPT_TIMEOUT_MS, t < 1 ? 1L : t);
        req.resp.len = 0;
        req.attempts++;
        CURLcode cc = curl_easy_perform(req.easy);
        if (gp_etcd_req_finish(&req, cc))
            continue;
        if (req.failed) {
            if (err)
                *err = req.err;
            if (err && err->code == GP_ERR_SERVER && err->status == 3)
                err->code = GP_ERR_AUTH;   /* "authentication failed, invalid user ID or password" */
            rc = -1;
        }
        break;
    }
    if (rc == 0) {
        json_t *j = gp_etcd_json_load(req.resp.p, req.resp.len, err);
        json_t *tok = j ? json_object_get(j, "token") : NULL;
        char *old = etcd->token;
        if (!j)
            rc = -1;
        else if (!json_is_string(tok) || json_string_length(tok) == 0 || json_string_length(tok) > 900)
            rc = gp_err_set(err, GP_ERR_PROTOCOL, "etcd authenticate answer without a token");
        else if (!(etcd->token = strdup(json_string_value(tok))) || s_build_headers(etcd) < 0) {
            free(etcd->token);
            etcd->token = old;
            old = NULL;
            rc = gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        }
        free(old);
        if (rc == 0)
            etcd->token_gen++;
        json_decref(j);
    }
    if (req.easy)
        curl_easy_setopt(req.easy, CURLOPT_HTTPHEADER, NULL);
    if (req.body.p)
        memset(req.body.p, 0, req.body.len);
    gp_etcd_req_release(&req);
    curl_slist_free_all(hdr);
    return rc;
}

/* ------------------------------------------------------------ synchronous calls */

/* POST body (taken over) to path; true when the answer is HTTP 200, in
 * req->resp.  The caller releases req in every case. */
static bool s_call(gp_etcd_t *etcd, const char *path, gp_ebuf_t *body, bool idempotent,
                   gp_etcd_req_t *req, gp_err_t *err)
{
    gp_etcd_req_init(req, etcd, path);
    req->body = *body;
    memset(body, 0, sizeof(*body));
    req->idempotent = idempotent;
    if (gp_etcd_authenticate(etcd, false, err) < 0)
        return false;
    gp_etcd_req_t *rp = req;
    if (gp_etcd_run_fg(etcd, &rp, 1, 1, err) < 0)
        return false;
    if (req->failed) {
        if (err)
            *err = req->err;
        return false;
    }
    return true;
}

static int s_do_body(gp_etcd_t *etcd, gp_etcd_op_type_t type, gp_ebuf_t *body,
                     gp_etcd_result_t *res, gp_err_t *err)
{
    gp_etcd_req_t req;
    int rc = -1;
    /* a put may be sent twice: its effect is the same (see the top of the file) */
    if (s_call(etcd, gp_etcd_op_path(type), body, type == GP_ETCD_OP_RANGE || type == GP_ETCD_OP_PUT, &req, err))
        rc = gp_etcd_parse_result(req.resp.p, req.resp.len, type, res, err);
    gp_etcd_req_release(&req);
    return rc;
}

int gp_etcd_do(gp_etcd_t *etcd, const gp_etcd_op_t *op, gp_etcd_result_t *res, gp_err_t *err)
{
    gp_ebuf_t body = { 0 };
    if (!op || !res)
        return gp_err_set(err, GP_ERR_INVALID, "gp_etcd_do: NULL op or result");
    if (gp_etcd_json_op(&body, op, err) < 0) {
        gp_ebuf_free(&body);
        return -1;
    }
    int rc = s_do_body(etcd, op->type, &body, res, err);
    gp_ebuf_free(&body);
    return rc;
}

/* A txn's responses must match the branch that ran, op for op. */
int gp_etcd_txn_check(const gp_etcd_txn_t *txn, const gp_etcd_result_t *r, gp_err_t *err)
{
    const gp_etcd_op_t *ops = r->succeeded ? txn->success : txn->failure;
    size_t n = r->succeeded ? txn->n_success : txn->n_failure;
    if (r->n_responses != n)
        return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn answered %zu responses for %zu ops",
                          r->n_responses, n);
    for (size_t i = 0; i < n; i++)
        if (r->responses[i].type != ops[i].type)
            return gp_err_set(err, GP_ERR_PROTOCOL, "etcd txn response %zu does not match its op", i);
    return 0;
}

int gp_etcd_txn(gp_etcd_t *etcd, const gp_etcd_txn_t *txn, gp_etcd_result_t *res, gp_err_t *err)
{
    gp_ebuf_t body = { 0 };
    gp_etcd_result_t r;
    if (!txn || !res)
        return gp_err_set(err, GP_ERR_INVALID, "gp_etcd_txn: NULL txn or result");
    if (gp_etcd_json_txn(&body, txn, err) < 0) {
        gp_ebuf_free(&body);
        return -1;
    }
    int rc = s_do_body(etcd, GP_ETCD_OP_TXN, &body, &r, err);
    gp_ebuf_free(&body);
    if (rc == 0 && gp_etcd_txn_check(txn, &r, err) < 0) {
        gp_etcd_result_free(&r);
        rc = -1;
    }
    if (rc == 0)
        *res = r;
    return rc;
}

int gp_etcd_put(gp_etcd_t *etcd, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t *revision, gp_err_t *err)
{
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = key, .value = value,
                        .value_len = value_len, .lease = lease };
    gp_etcd_result_t r;
    if (gp_etcd_do(etcd, &op, &r, err) < 0)
        return -1;
    if (revision)
        *revision = r.revision;
    gp_etcd_result_free(&r);
    return 0;
}

int gp_etcd_get(gp_etcd_t *etcd, const char *key, unsigned flags, gp_etcd_result_t *res, gp_err_t *err)
{
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = key, .flags = flags };
    return gp_etcd_do(etcd, &op, res, err);
}

int gp_etcd_get_serializable(gp_etcd_t *etcd, const char *key, unsigned flags,
                             gp_etcd_result_t *res, gp_err_t *err)
{
    return gp_etcd_get(etcd, key, flags | GP_ETCD_SERIALIZABLE, res, err);
}

int gp_etcd_delete(gp_etcd_t *etcd, const char *key, unsigned flags, int64_t *deleted, gp_err_t *err)
{
    gp_etcd_op_t op = { .type = GP_ETCD_OP_DELETE, .key = key, .flags = flags };
    gp_etcd_result_t r;
    if (gp_etcd_do(etcd, &op, &r, err) < 0)
        return -1;
    if (deleted)
        *deleted = r.deleted;
    gp_etcd_result_free(&r);
    return 0;
}

/* A call whose answer is a plain object: returns it (caller decrefs). */
static json_t *s_call_json(gp_etcd_t *etcd, const char *path, bool idempotent, gp_err_t *err,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static json_t *s_call_json(gp_etcd_t *etcd, const char *path, bool idempotent, gp_err_t *err,
                           const char *fmt, ...)
{
    gp_ebuf_t body = { 0 };
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (gp_ebuf_adds(&body, tmp) < 0) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    gp_etcd_req_t req;
    json_t *j = NULL;
    if (s_call(etcd, path, &body, idempotent, &req, err)) {
        j = gp_etcd_json_load(req.resp.p, req.resp.len, err);
        int64_t rev;
        /* An empty answer is a whole one where etcd has nothing to say (the
         * gateway omits empty fields; an alarm list without alarms is {}). */
        if (j && json_object_size(j) > 0 && gp_etcd_parse_header_rev(j, &rev, err) < 0) {
            json_decref(j);
            j = NULL;
        }
    }
    gp_etcd_req_release(&req);
    gp_ebuf_free(&body);
    return j;
}

int gp_etcd_store_status(gp_etcd_t *etcd, gp_etcd_store_status_t *st, gp_err_t *err)
{
    gp_etcd_store_status_t out = { 0 };
    json_t *j = s_call_json(etcd, "/v3/maintenance/status", true, err, "{}");
    if (!j)
        return -1;
    json_t *hdr = json_object_get(j, "header");
    const char *me = json_string_value(json_object_get(hdr, "member_id"));
    const char *leader = json_string_value(json_object_get(j, "leader"));
    if (gp_etcd_json_int64(j, "dbSize", &out.db_bytes, err) < 0 ||
        gp_etcd_json_int64(j, "dbSizeInUse", &out.db_in_use_bytes, err) < 0) {
        json_decref(j);
        return -1;
    }
    out.is_leader = me && leader && !strcmp(me, leader);
    json_decref(j);
    j = s_call_json(etcd, "/v3/maintenance/alarm", true, err, "{\"action\":\"GET\"}");
    if (!j)
        return -1;
    json_t *alarms = json_object_get(j, "alarms"), *a;
    size_t i;
    json_array_foreach(alarms, i, a) {
        const char *kind = json_string_value(json_object_get(a, "alarm"));
        out.nospace |= kind && !strcmp(kind, "NOSPACE");
    }
    json_decref(j);
    *st = out;
    return 0;
}

int gp_etcd_defragment(gp_etcd_t *etcd, gp_err_t *err)
{
    json_t *j = s_call_json(etcd, "/v3/maintenance/defragment", false, err, "{}");
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

int gp_etcd_compact(gp_etcd_t *etcd, int64_t revision, gp_err_t *err)
{
    json_t *j = s_call_json(etcd, "/v3/kv/compaction", false, err,
                            "{\"revision\":%" PRId64 ",\"physical\":true}", revision);
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

int gp_etcd_lease_grant(gp_etcd_t *etcd, int64_t ttl_s, int64_t id, int64_t *lease_id,
                        int64_t *granted_ttl_s, gp_err_t *err)
{
    if (ttl_s <= 0)
        return gp_err_set(err, GP_ERR_INVALID, "lease TTL must be positive");
    json_t *j = s_call_json(etcd, "/v3/lease/grant", false, err,
                            "{\"TTL\":%" PRId64 ",\"ID\":%" PRId64 "}", ttl_s, id);
    if (!j)
        return -1;
    int64_t got_id, got_ttl;
    int rc = 0;
    if (gp_etcd_json_int64(j, "ID", &got_id, err) < 0 || gp_etcd_json_int64(j, "TTL", &got_ttl, err) < 0)
        rc = -1;
    else if (got_id == 0 || got_ttl <= 0)
        rc = gp_err_set(err, GP_ERR_PROTOCOL, "etcd lease grant answer without an ID or TTL");
    json_decref(j);
    if (rc == 0) {
        if (lease_id)
            *lease_id = got_id;
        if (granted_ttl_s)
            *granted_ttl_s = got_ttl;
    }
    return rc;
}

int gp_etcd_lease_revoke(gp_etcd_t *etcd, int64_t lease_id, gp_err_t *err)
{
    json_t *j = s_call_json(etcd, "/v3/lease/revoke", false, err, "{\"ID\":%" PRId64 "}", lease_id);
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

int gp_etcd_lease_ttl(gp_etcd_t *etcd, int64_t lease_id, int64_t *ttl_s, int64_t *granted_ttl_s,
                      gp_err_t *err)
{
    json_t *j = s_call_json(etcd, "/v3/lease/timetolive", true, err, "{\"ID\":%" PRId64 "}", lease_id);
    if (!j)
        return -1;
    int64_t ttl, granted;
    int rc = 0;
    if (gp_etcd_json_int64(j, "TTL", &ttl, err) < 0 || gp_etcd_json_int64(j, "grantedTTL", &granted, err) < 0)
        rc = -1;
    else if (ttl < 0)
        rc = gp_err_set(err, GP_ERR_NOTFOUND, "etcd lease %" PRId64 " not found", lease_id);
    json_decref(j);
    if (rc == 0) {
        if (ttl_s)
            *ttl_s = ttl;
        if (granted_ttl_s)
            *granted_ttl_s = granted;
    }
    return rc;
}

/* The keep-alive answer: {"result":{"header":...,"ID":..,"TTL":..}}; no TTL
 * (0) means the lease does not exist any more. */
int gp_etcd_parse_keepalive(const char *body, size_t len, int64_t *ttl_s, gp_err_t *err)
{
    json_t *j = gp_etcd_json_load(body, len, err);
    if (!j)
        return -1;
    json_t *res = json_object_get(j, "result");
    json_t *e = json_object_get(j, "error");
    int64_t ttl = 0, rev;
    int rc = 0;
    if (e) {
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
        rc = gp_err_set(err, GP_ERR_SERVER, "etcd keep-alive: %s",
                        json_is_string(m) ? json_string_value(m) : "error");
    } else if (!json_is_object(res)) {
        rc = gp_err_set(err, GP_ERR_PROTOCOL, "etcd keep-alive answer without a result");
    } else if (gp_etcd_parse_header_rev(res, &rev, err) < 0 || gp_etcd_json_int64(res, "TTL", &ttl, err) < 0) {
        rc = -1;
    }
    json_decref(j);
    if (rc == 0)
        *ttl_s = ttl;
    return rc;
}

int gp_etcd_lease_keepalive_once(gp_etcd_t *etcd, int64_t lease_id, int64_t *ttl_s, gp_err_t *err)
{
    gp_ebuf_t body = { 0 };
    if (gp_ebuf_addf(&body, "{\"ID\":%" PRId64 "}", lease_id) < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    gp_etcd_req_t req;
    int rc = -1;
    int64_t ttl = 0;
    if (s_call(etcd, "/v3/lease/keepalive", &body, true, &req, err) &&
        gp_etcd_parse_keepalive(req.resp.p, req.resp.len, &ttl, err) == 0) {
        if (ttl <= 0)
            gp_err_set(err, GP_ERR_NOTFOUND, "etcd lease %" PRId64 " not found", lease_id);
        else
            rc = 0;
    }
    gp_etcd_req_release(&req);
    gp_ebuf_free(&body);
    if (rc == 0 && ttl_s)
        *ttl_s = ttl;
    return rc;
}
