/* The HTTP server answers immediately or later, reads bodies, refuses
 * oversized ones, all on the caller's loop.  A client thread makes real
 * requests with libcurl over 127.0.0.1. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "httpd.h"
#include "tap.h"

static gp_http_req_t *s_deferred;
static volatile int s_done;
static int s_port;

static void s_handler(void *arg, gp_http_req_t *req)
{
    (void)arg;
    const char *path = gp_http_req_path(req);
    size_t len;
    const char *body = gp_http_req_body(req, &len);
    char *out = NULL;
    if (strcmp(path, "/echo") == 0) {
        int n = asprintf(&out, "%s %s %zu %s q=%s", gp_http_req_method(req), path, len, body,
                         gp_http_req_query(req, "q") ? gp_http_req_query(req, "q") : "-");
        gp_http_respond(req, 200, "text/plain", out, (size_t)n);
    } else if (strcmp(path, "/later") == 0) {
        s_deferred = req;   /* answered by the loop on its next turn */
    } else {
        gp_http_respond_error(req, 404, "no such path %s", path);
    }
}

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t s_write(char *p, size_t sz, size_t n, void *arg)
{
    buf_t *b = arg;
    b->data = realloc(b->data, b->len + sz * n + 1);
    memcpy(b->data + b->len, p, sz * n);
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

static long s_request(const char *path, const char *body, size_t body_len, char **out)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s_port, path);
    buf_t b = { calloc(1, 1), 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    *out = b.data;
    return code;
}

static long s_codes[4];
static char *s_bodies[4];

static void *s_client(void *arg)
{
    (void)arg;
    s_codes[0] = s_request("/echo?q=1", "hello", 5, &s_bodies[0]);
    s_codes[1] = s_request("/later", NULL, 0, &s_bodies[1]);
    size_t big = 70000;
    char *huge = malloc(big);
    memset(huge, 'x', big);
    s_codes[2] = s_request("/echo", huge, big, &s_bodies[2]);
    free(huge);
    s_codes[3] = s_request("/nope", NULL, 0, &s_bodies[3]);
    s_done = 1;
    return NULL;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    gp_err_t err;
    gp_httpd_limits_t lim;
    gp_httpd_limits_default(&lim, 100);
    ok(gp_httpd_new("not-an-ip", 0, &lim, s_handler, NULL, &err) == NULL, "a bad address fails: %s",
       err.msg);
    lim.max_body = 65536;
    gp_httpd_t *h = gp_httpd_new("127.0.0.1", 0, &lim, s_handler, NULL, &err);
    if (h == NULL)
        bail_out("cannot start server: %s", err.msg);
    s_port = gp_httpd_port(h);
    ok(s_port > 0, "port 0 binds a free port (%d)", s_port);

    pthread_t t;
    pthread_create(&t, NULL, s_client, NULL);
    while (!s_done) {
        struct pollfd p = { gp_httpd_fd(h), POLLIN, 0 };
        int to = gp_httpd_timeout_ms(h);
        poll(&p, 1, to < 0 || to > 50 ? 50 : to);
        gp_httpd_run(h);
        if (s_deferred) {
            char *b = strdup("done later");
            gp_http_respond(s_deferred, 202, "text/plain", b, strlen(b));
            s_deferred = NULL;
        }
    }
    pthread_join(t, NULL);

    is_int(s_codes[0], 200, "an immediate answer");
    is_str(s_bodies[0], "POST /echo 5 hello q=1", "the handler sees method, path, body, query");
    is_int(s_codes[1], 202, "a deferred answer arrives");
    is_str(s_bodies[1], "done later", "with its body");
    is_int(s_codes[2], 413, "an oversized body is refused");
    ok(strstr(s_bodies[2], "larger than 65536") != NULL, "with a reason: %s", s_bodies[2]);
    is_int(s_codes[3], 404, "errors come as JSON");
    is_str(s_bodies[3], "{\"error\":\"no such path /nope\"}\n", "with the message");
    for (int i = 0; i < 4; i++)
        free(s_bodies[i]);
    gp_httpd_destroy(&h);
    ok(h == NULL, "destroy clears the pointer");
    curl_global_cleanup();
    return done_testing();
}
