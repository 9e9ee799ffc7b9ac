/* The HTTP server on the wire: raw bytes a client thread sends over
 * 127.0.0.1 sockets.  Messages whose framing two parsers could read
 * differently (RFC 9112: Content-Length twice, Transfer-Encoding with
 * Content-Length, folded header fields) get a 400 and a closed connection,
 * and the request smuggled after them never reaches the handler; request
 * targets that decode to NUL, '/', dot segments or non-UTF-8 get a 400 with
 * a JSON error; slow clients over the per-client limit do not keep another
 * client out, and a header that does not arrive in time closes its
 * connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "tap.h"

static volatile int s_done;
static int s_port;
static int s_victim_hits;   /* requests for /victim the handler saw */

static void s_handler(void *arg, gp_http_req_t *req)
{
    (void)arg;
    const char *path = gp_http_req_path(req), *q = gp_http_req_query(req, "q");
    if (!strcmp(path, "/victim"))
        s_victim_hits++;
    char *out = NULL;
    int n = asprintf(&out, "%s %s q=%s", gp_http_req_method(req), path, q ? q : "-");
    gp_http_respond(req, 200, "text/plain", out, n > 0 ? (size_t)n : 0);
}

/* Connect from src (NULL: any) to the server. */
static int s_connect(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    if (src) {
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            bail_out("cannot bind %s", src);
    }
    sa.sin_port = htons((uint16_t)s_port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        bail_out("cannot connect to the server");
    struct timeval tv = { 20, 0 };   /* a hang fails the test instead of blocking it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Read until the server closes (or resets): 1, or 0 when it did not
 * (timeout). */
static int s_read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0) {
            out[len] = '\0';
            return n == 0 || errno == ECONNRESET;
        }
        len += (size_t)n;
        if (len + 1 == cap) {
            out[len] = '\0';
            return 0;
        }
    }
}

typedef struct {
    const char *name, *bytes;
    const char *status;       /* "HTTP/1.1 400" */
    const char *body;         /* expected in the answer */
} s_case_t;

static const s_case_t s_smuggle[] = {
    { "two Content-Length headers",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
      "helloGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "{\"error\":\"Content-Length given more than once\"}" },
    { "Transfer-Encoding with Content-Length",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
      "0\r\n\r\nGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "both Transfer-Encoding and Content-Length" },
    { "Content-Length with Transfer-Encoding after it",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "both Transfer-Encoding and Content-Length" },
    { "a transfer coding other than chunked",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
      "GET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "Transfer-Encoding other than one" },
    { "a Content-Length that is not a number",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"
      "helloGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "Content-Length" },
    { "obsolete line folding",
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n"
      "GET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "obsolete line folding" },
    { "obsolete line folding with a tab and spaces",
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo three\r\nContent-Length: 0\r\n\r\n"
      "GET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "line folding" },
    { "a folded Content-Length",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\n"
      "helloGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "line folding" },
    { "whitespace between a field name and its colon",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"
      "helloGET /victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "not a token" },
};

static const s_case_t s_targets[] = {
    { "%00 in the path", "GET /victim%00x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "{\"error\":\"%00 (NUL) in the path\"}" },
    { "%2F in a segment", "GET /a%2Fvictim HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "escaped /" },
    { "%ff in the path", "GET /jobs/%ff HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "{\"error\":\"the path does not decode to UTF-8\"}" },
    { "a .. segment", "GET /x/../victim HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "a . or .. segment" },
    { "an escaped .. segment", "GET /x/%2e%2E/victim HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "a . or .. segment" },
    { "a bad escape", "GET /vic%tim HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "bad percent-escape" },
    { "%00 in a query value", "GET /echo?q=a%00b HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
      "%00 (NUL) in the query" },
    { "a query parameter twice", "GET /echo?q=1&q=2 HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 400", "given twice" },
    { "a decoded path and query", "GET /ech%6F?q=a%2Fb+c&r HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n", "HTTP/1.1 200", "GET /echo q=a/b c" },
};

static char s_answer[sizeof s_smuggle / sizeof s_smuggle[0] + 16][2048];
static int s_closed[sizeof s_smuggle / sizeof s_smuggle[0] + 16];
static int s_hits_after[4];
static char s_pair[4096];
static int s_pair_closed;

/* The limits phase. */
static int s_slow_fds[10], s_slow_closed, s_other_closed, s_body_closed;
static char s_other[2048], s_timeout_answer[256], s_body_answer[256];

static void s_exchange(int i, const char *bytes)
{
    int fd = s_connect(NULL);
    send(fd, bytes, strlen(bytes), MSG_NOSIGNAL);
    s_closed[i] = s_read_all(fd, s_answer[i], sizeof s_answer[i]);
    close(fd);
}

static void *s_client(void *arg)
{
    (void)arg;
    /* A well-formed pipelined pair reaches the handler twice: the
     * counting below can see a smuggled request. */
    int fd = s_connect(NULL);
    const char *pair = "GET /victim HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /victim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, pair, strlen(pair), MSG_NOSIGNAL);
    s_pair_closed = s_read_all(fd, s_pair, sizeof s_pair);
    close(fd);
    s_hits_after[0] = s_victim_hits;
    size_t ns = sizeof s_smuggle / sizeof s_smuggle[0];
    for (size_t i = 0; i < ns; i++)
        s_exchange((int)i, s_smuggle[i].bytes);
    s_hits_after[1] = s_victim_hits;
    for (size_t i = 0; i < sizeof s_targets / sizeof s_targets[0]; i++)
        s_exchange((int)(ns + i), s_targets[i].bytes);
    s_hits_after[2] = s_victim_hits;
    s_done = 1;
    return NULL;
}

/* Ten slow clients from 127.0.0.1 (limit 4 per client, 8 in all) send half
 * a header each; a client from 127.0.0.2 still gets its answer.  Then one
 * slow client that never finishes its header is closed by the deadline. */
static void *s_slow_client(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        s_slow_fds[i] = s_connect("127.0.0.1");
        send(s_slow_fds[i], "GET /victim HTTP/1.1\r\nHost:", 27, MSG_NOSIGNAL);
    }
    int fd = s_connect("127.0.0.2");
    const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    s_other_closed = s_read_all(fd, s_other, sizeof s_other);
    close(fd);
    /* Wait for the server to close every slow connection: the four it
     * accepted by their header deadline, the others at once. */
    s_slow_closed = 0;
    for (int i = 0; i < 10; i++) {
        char buf[256];
        s_slow_closed += s_read_all(s_slow_fds[i], buf, sizeof buf);
        if (i == 0)
            snprintf(s_timeout_answer, sizeof s_timeout_answer, "%s", buf);
        close(s_slow_fds[i]);
    }
    /* A whole header, then 10 of the 100 body bytes it announced. */
    fd = s_connect("127.0.0.3");
    const char *part = "POST /victim HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    send(fd, part, strlen(part), MSG_NOSIGNAL);
    s_body_closed = s_read_all(fd, s_body_answer, sizeof s_body_answer);
    close(fd);
    s_done = 1;
    return NULL;
}

static void s_serve(gp_httpd_t *h, void *(*client)(void *))
{
    pthread_t t;
    s_done = 0;
    pthread_create(&t, NULL, client, NULL);
    while (!s_done) {
        struct pollfd p = { gp_httpd_fd(h), POLLIN, 0 };
        int to = gp_httpd_timeout_ms(h);
        poll(&p, 1, to < 0 || to > 50 ? 50 : to);
        gp_httpd_run(h);
    }
    pthread_join(t, NULL);
}

int main(void)
{
    gp_err_t err;
    gp_httpd_limits_t lim;
    gp_httpd_limits_default(&lim, 65536);
    gp_httpd_t *h = gp_httpd_new("127.0.0.1", 0, &lim, s_handler, NULL, &err);
    if (h == NULL)
        bail_out("cannot start server: %s", err.msg);
    s_port = gp_httpd_port(h);
    s_serve(h, s_client);

    ok(strstr(s_pair, "GET /victim") && strstr(strstr(s_pair, "GET /victim") + 1, "GET /victim"),
       "a well-formed pipelined pair gets two answers");
    is_int(s_hits_after[0], 2, "and reaches the handler twice");
    size_t ns = sizeof s_smuggle / sizeof s_smuggle[0];
    for (size_t i = 0; i < ns; i++) {
        const s_case_t *c = &s_smuggle[i];
        ok(!strncmp(s_answer[i], c->status, strlen(c->status)), "%s: %s", c->name, c->status);
        ok(strstr(s_answer[i], c->body) != NULL, "%s: says why (%s)", c->name, c->body);
        ok(strstr(s_answer[i], "Connection: close") != NULL, "%s: announces the close", c->name);
        ok(s_closed[i], "%s: the server closed the connection", c->name);
        ok(strstr(s_answer[i], "GET /victim") == NULL, "%s: no second answer", c->name);
    }
    is_int(s_hits_after[1], s_hits_after[0], "no smuggled request reached the handler");
    for (size_t i = 0; i < sizeof s_targets / sizeof s_targets[0]; i++) {
        const s_case_t *c = &s_targets[i];
        const char *a = s_answer[ns + i];
        ok(!strncmp(a, c->status, strlen(c->status)), "%s: %s", c->name, c->status);
        ok(strstr(a, c->body) != NULL, "%s: %s", c->name, c->body);
        if (!strcmp(c->status, "HTTP/1.1 400"))
            ok(strstr(a, "Content-Type: application/json") != NULL, "%s: a JSON error", c->name);
    }
    is_int(s_hits_after[2], s_hits_after[0], "no refused target reached the handler");
    gp_httpd_destroy(&h);

    lim.max_connections = 8;
    lim.per_client = 4;
    lim.header_timeout_ms = 300;
    lim.body_timeout_ms = 300;
    h = gp_httpd_new("127.0.0.1", 0, &lim, s_handler, NULL, &err);
    if (h == NULL)
        bail_out("cannot start server: %s", err.msg);
    s_port = gp_httpd_port(h);
    s_serve(h, s_slow_client);
    ok(!strncmp(s_other, "HTTP/1.1 200", 12),
       "10 slow connections from one client (4 allowed) leave room for another: %.12s", s_other);
    ok(s_other_closed, "which gets its whole answer");
    is_int(s_slow_closed, 10, "every slow connection is closed: over the limit, or by the header "
           "deadline");
    is_str(s_timeout_answer, "", "a late header gets no answer, only the close");
    ok(s_body_closed, "a body that stops short is closed by the body deadline");
    is_str(s_body_answer, "", "without an answer");
    is_int(s_victim_hits, s_hits_after[0], "and the handler never saw it");
    gp_httpd_destroy(&h);
    return done_testing();
}
