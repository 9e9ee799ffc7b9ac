/*
 * test_etcd_json.c - the etcd client's wire format and its behaviour against
 * a fake gateway that answers badly: truncated bodies, bodies that are not
 * JSON, fields of the wrong type, HTTP errors, closed connections, silence.
 * None of these may crash the client; each is an error of the right kind.
 * Needs no etcd: the fake server is a thread of this program.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etcd.h"
#include "etcd_internal.h"
#include "log.h"
#include "tap.h"
#include "util.h"

/* ------------------------------------------------------------ fake gateway */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *g_reply;      /* raw bytes to answer with; NULL = close; "" = hang */
static size_t g_reply_len;
static int g_requests;
static int g_listen_fd = -1;
static volatile int g_stop;

static void s_set_reply(const char *raw)
{
    pthread_mutex_lock(&g_lock);
    g_reply = raw;
    g_reply_len = raw ? strlen(raw) : 0;
    pthread_mutex_unlock(&g_lock);
}

/* An HTTP/1.1 200 answer with the given body and a correct length. */
static char *s_http(int status, const char *body)
{
    char *out = NULL;
    size_t n = strlen(body);
    if (asprintf(&out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s", status, n, body) < 0)
        abort();
    return out;
}

static void *s_server(void *arg)
{
    (void)arg;
    while (!g_stop) {
        int c = accept(g_listen_fd, NULL, NULL);
        if (c < 0)
            continue;
        /* read the request head and body (Content-Length) */
        char buf[65536];
        size_t got = 0;
        long clen = -1;
        char *body = NULL;
        while (got < sizeof(buf) - 1) {
            ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            if (!body && (body = strstr(buf, "\r\n\r\n"))) {
                body += 4;
                char *cl = strcasestr(buf, "Content-Length:");
                clen = cl ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (body && (long)(got - (size_t)(body - buf)) >= clen)
                break;
        }
        /* The reply is copied under the lock: the test may replace and free
         * it as soon as its client has given up. */
        static char copy[65536];
        pthread_mutex_lock(&g_lock);
        g_requests++;
        const char *reply = g_reply ? copy : NULL;
        size_t len = g_reply_len < sizeof copy ? g_reply_len : sizeof copy;
        if (g_reply)
            memcpy(copy, g_reply, len);
        pthread_mutex_unlock(&g_lock);
        if (reply && len == 0) {
            /* hang until the client gives up */
            while (read(c, buf, sizeof(buf)) > 0)
                ;
        } else if (reply) {
            if (write(c, reply, len) < 0) {
                /* the client went away */
            }
        }
        close(c);
    }
    return NULL;
}

static int s_start_server(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    g_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (g_listen_fd < 0 || bind(g_listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(g_listen_fd, 16) < 0 || getsockname(g_listen_fd, (struct sockaddr *)&a, &alen) < 0)
        bail_out("cannot listen on loopback");
    pthread_t t;
    if (pthread_create(&t, NULL, s_server, NULL) != 0)
        bail_out("pthread_create");
    pthread_detach(t);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ codec */

static void test_base64(void)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    int good = 1;
    for (size_t n = 0; n < 40; n++) {
        gp_ebuf_t b = { 0 };
        char *out = NULL;
        size_t out_len = 0;
        if (gp_etcd_b64_encode(&b, data, n) < 0 || gp_etcd_b64_decode(b.p ? b.p : "", b.len, &out, &out_len) < 0 ||
            out_len != n || memcmp(out, data, n) != 0)
            good = 0;
        free(out);
        gp_ebuf_free(&b);
    }
    ok(good, "base64 round-trips binary data of every length 0..39");
    gp_ebuf_t b = { 0 };
    gp_etcd_b64_encode(&b, "foo", 3);
    is_str(b.p, "Zm9v", "base64 of foo");
    gp_ebuf_free(&b);
    char *out;
    size_t n;
    ok(gp_etcd_b64_decode("Zm9", 3, &out, &n) < 0, "base64 of a bad length is refused");
    ok(gp_etcd_b64_decode("Zm$v", 4, &out, &n) < 0, "base64 with a bad character is refused");
    ok(gp_etcd_b64_decode("Z=9v", 4, &out, &n) < 0, "base64 with padding inside is refused");
}

static void test_prefix_end(void)
{
    char out[16];
    size_t n = gp_etcd_prefix_end("/a/", 3, out);
    ok(n == 3 && memcmp(out, "/a0", 3) == 0, "prefix end of /a/ is /a0");
    n = gp_etcd_prefix_end("a\xff\xff", 3, out);
    ok(n == 1 && out[0] == 'b', "prefix end skips trailing 0xff bytes");
    n = gp_etcd_prefix_end("\xff", 1, out);
    ok(n == 1 && out[0] == '\0', "prefix end of all-0xff is \\0 (every key)");
}

static void test_encode(void)
{
    gp_ebuf_t b = { 0 };
    gp_err_t err;
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = "foo", .value = "bar", .value_len = 3,
                         .lease = 7, .flags = GP_ETCD_PREV_KV };
    ok(gp_etcd_json_op(&b, &put, &err) == 0, "encode a put");
    is_str(b.p, "{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":7,\"prev_kv\":true}", "put body");
    b.len = 0;
    gp_etcd_op_t rng = { .type = GP_ETCD_OP_RANGE, .key = "/a/", .flags = GP_ETCD_PREFIX | GP_ETCD_KEYS_ONLY,
                         .limit = 5, .sort_order = GP_ETCD_SORT_DESCEND, .sort_target = GP_ETCD_SORT_MOD };
    ok(gp_etcd_json_op(&b, &rng, &err) == 0, "encode a prefix range");
    is_str(b.p, "{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\",\"limit\":5,\"sort_order\":\"DESCEND\","
                "\"sort_target\":\"MOD\",\"keys_only\":true}", "range body");
    b.len = 0;
    gp_etcd_cmp_t cmp = { .key = "k", .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_LESS, .number = 9 };
    gp_etcd_op_t del = { .type = GP_ETCD_OP_DELETE, .key = "k" };
    gp_etcd_txn_t txn = { &cmp, 1, &del, 1, &rng, 1 };
    ok(gp_etcd_json_txn(&b, &txn, &err) == 0, "encode a txn");
    ok(strstr(b.p, "\"compare\":[{\"target\":\"MOD\",\"result\":\"LESS\",\"key\":\"aw==\",\"mod_revision\":9}]") &&
       strstr(b.p, "\"success\":[{\"request_delete_range\":{\"key\":\"aw==\"}}]") &&
       strstr(b.p, "\"failure\":[{\"request_range\":"), "txn body has compare, success and failure");
    b.len = 0;
    gp_etcd_cmp_t rcmp = { .key = "/a/", .range_end = "/a0", .target = GP_ETCD_CMP_CREATE,
                           .result = GP_ETCD_CMP_LESS, .number = 5 };
    gp_etcd_txn_t rtxn = { &rcmp, 1, &del, 1, NULL, 0 };
    ok(gp_etcd_json_txn(&b, &rtxn, &err) == 0 &&
       strstr(b.p, "{\"target\":\"CREATE\",\"result\":\"LESS\",\"key\":\"L2Ev\",\"range_end\":\"L2Ew\","
                   "\"create_revision\":5}"), "a compare over a range carries its range_end");
    b.len = 0;
    gp_etcd_op_t bad = { .type = GP_ETCD_OP_PUT, .key = "" };
    ok(gp_etcd_json_op(&b, &bad, &err) < 0 && err.code == GP_ERR_INVALID, "an empty key is refused");
    gp_ebuf_free(&b);
}

static void test_parse(void)
{
    gp_etcd_result_t r;
    gp_err_t err;
    const char *good = "{\"header\":{\"revision\":\"12\"},\"kvs\":[{\"key\":\"AGI=\",\"create_revision\":\"2\","
                       "\"mod_revision\":\"3\",\"version\":4,\"value\":\"AAEC\",\"lease\":\"99\"}],\"count\":\"1\"}";
    ok(gp_etcd_parse_result(good, strlen(good), GP_ETCD_OP_RANGE, &r, &err) == 0, "parse a range answer");
    ok(r.revision == 12 && r.n_kvs == 1 && r.count == 1 && r.kvs[0].key_len == 2 &&
       memcmp(r.kvs[0].key, "\0b", 2) == 0 && r.kvs[0].value_len == 3 && r.kvs[0].value[2] == 2 &&
       r.kvs[0].create_revision == 2 && r.kvs[0].mod_revision == 3 && r.kvs[0].version == 4 &&
       r.kvs[0].lease == 99, "binary key and value, int64 as strings and numbers");
    gp_etcd_result_free(&r);

    static const struct { const char *body; const char *what; } bad[] = {
        { "{\"header\":{\"revision\":\"12\"},\"kvs\":[{\"key\":\"AGI=\"", "truncated JSON" },
        { "hello", "not JSON" },
        { "", "an empty body" },
        { "[1,2]", "an array, not an object" },
        { "{\"kvs\":[]}", "no header" },
        { "{\"header\":{\"revision\":\"x12\"}}", "a revision that is not a number" },
        { "{\"header\":{\"revision\":1.5}}", "a fractional revision" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":{}}", "kvs not an array" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":5}]}", "a key that is a number" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"!!!!\"}]}", "a key that is not base64" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"value\":[]}]}", "a value that is an array" },
        { "{\"header\":{\"revision\":\"1\"},\"count\":{}}", "a count that is an object" },
        { "{\"header\":{\"revision\":\"1\"},\"more\":\"yes\"}", "more that is a string" },
        { "{\"header\":{\"revision\":\"1\"}} trailing", "trailing garbage" },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(bad); i++) {
        gp_err_clear(&err);
        int rc = gp_etcd_parse_result(bad[i].body, strlen(bad[i].body), GP_ETCD_OP_RANGE, &r, &err);
        ok(rc < 0 && err.code == GP_ERR_PROTOCOL, "range answer with %s is a protocol error", bad[i].what);
    }
    const char *txn = "{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
                      "{\"header\":{\"revision\":\"5\"}}},{\"response_range\":{\"header\":{},\"count\":\"0\"}}]}";
    ok(gp_etcd_parse_result(txn, strlen(txn), GP_ETCD_OP_TXN, &r, &err) == 0 && r.succeeded &&
       r.n_responses == 2 && r.responses[0].type == GP_ETCD_OP_PUT && r.responses[1].type == GP_ETCD_OP_RANGE,
       "parse a txn answer with per-op responses");
    gp_etcd_op_t ops[1] = { { .type = GP_ETCD_OP_PUT, .key = "a" } };
    gp_etcd_txn_t t = { NULL, 0, ops, 1, NULL, 0 };
    ok(gp_etcd_txn_check(&t, &r, &err) < 0 && err.code == GP_ERR_PROTOCOL,
       "txn responses that do not match the ops are a protocol error");
    gp_etcd_result_free(&r);
    const char *badtxn = "{\"header\":{\"revision\":\"5\"},\"responses\":[{\"response_what\":{}}]}";
    ok(gp_etcd_parse_result(badtxn, strlen(badtxn), GP_ETCD_OP_TXN, &r, &err) < 0 && err.code == GP_ERR_PROTOCOL,
       "a txn response of an unknown kind is a protocol error");

    const char *e1 = "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}";
    gp_etcd_parse_error(e1, strlen(e1), 404, &err);
    ok(err.code == GP_ERR_NOTFOUND && err.status == 5, "lease not found maps to NOTFOUND, status 5");
    const char *e2 = "{\"error\":\"mvcc: required revision has been compacted\",\"code\":11}";
    gp_etcd_parse_error(e2, strlen(e2), 400, &err);
    ok(err.code == GP_ERR_COMPACTED, "a compacted revision maps to COMPACTED");
    gp_etcd_parse_error("<html>", 6, 502, &err);
    ok(err.code == GP_ERR_SERVER && err.status == 502, "a non-gateway error body gives SERVER with the HTTP status");
}

/* ------------------------------------------------------------ against the fake gateway */

static int g_events;

static void s_on_lost(gp_etcd_t *etcd, int64_t lease, const gp_err_t *why, void *arg)
{
    (void)etcd;
    (void)lease;
    (void)why;
    ++*(int *)arg;
}
static void s_watch_cb(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *r, void *arg)
{
    (void)w;
    (void)arg;
    if (r->kind == GP_ETCD_WATCH_EVENTS)
        g_events += (int)r->n_events;
}

static void test_fake_gateway(void)
{
    int port = s_start_server();
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = ep;
    cfg.request_timeout_ms = 700;
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    ok(etcd != NULL, "client for the fake gateway");
    if (!etcd)
        return;
    gp_etcd_result_t r;

    char *okr = s_http(200, "{\"header\":{\"revision\":\"3\"},\"count\":\"0\"}");
    s_set_reply(okr);
    ok(gp_etcd_get(etcd, "k", 0, &r, &err) == 0 && r.revision == 3, "a well-formed answer is accepted");
    gp_etcd_result_free(&r);

    static const struct { int status; const char *body; gp_errcode_t code; const char *what; } cases[] = {
        { 200, "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"ke", GP_ERR_PROTOCOL, "a truncated JSON body" },
        { 200, "this is not json", GP_ERR_PROTOCOL, "a body that is not JSON" },
        { 200, "{\"header\":\"x\"}", GP_ERR_PROTOCOL, "a header of the wrong type" },
        { 200, "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"a\"}]}", GP_ERR_PROTOCOL, "a key that is not base64" },
        { 500, "<html>boom</html>", GP_ERR_SERVER, "HTTP 500 with HTML" },
        { 400, "{\"error\":\"etcdserver: too many operations in txn request\",\"code\":3}", GP_ERR_SERVER,
          "a gateway error" },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(cases); i++) {
        char *raw = s_http(cases[i].status, cases[i].body);
        s_set_reply(raw);
        gp_err_clear(&err);
        int rc = gp_etcd_get(etcd, "k", 0, &r, &err);
        ok(rc < 0 && err.code == cases[i].code, "%s is an error (%s): %s", cases[i].what,
           gp_err_name(cases[i].code), err.msg);
        free(raw);
    }
    /* the length promises more than comes, then the connection closes */
    s_set_reply("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"header\":{");
    ok(gp_etcd_get(etcd, "k", 0, &r, &err) < 0 && (err.code == GP_ERR_TRANSPORT || err.code == GP_ERR_PROTOCOL),
       "a body cut short by a closed connection is an error: %s", err.msg);
    s_set_reply("HTTP/1.1 200 OK\r\nContent-Length: garbage\r\n\r\n{}");
    ok(gp_etcd_get(etcd, "k", 0, &r, &err) < 0, "a malformed HTTP head is an error: %s", err.msg);
    s_set_reply(NULL);
    ok(gp_etcd_put(etcd, "k", "v", 1, 0, NULL, &err) < 0 && err.code != GP_OK,
       "a connection closed without an answer is an error: %s", err.msg);
    s_set_reply("");
    ok(gp_etcd_get(etcd, "k", 0, &r, &err) < 0 && err.code == GP_ERR_TIMEOUT,
       "a silent server gives a timeout: %s", err.msg);

    /* batch: every op fails cleanly */
    char *garbage = s_http(200, "{\"header\":{\"revision\":[]}}");
    s_set_reply(garbage);
    gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = "k", .value = "v", .value_len = 1 };
    for (int i = 0; i < 8; i++)
        gp_etcd_batch_add(b, &op, &err);
    ok(gp_etcd_batch_run(b, 4, &err) < 0 && err.code == GP_ERR_PROTOCOL, "a batch of bad answers fails");
    const gp_etcd_result_t *res;
    int failed = 0;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++)
        failed += gp_etcd_batch_result(b, i, &res, &err) < 0 && err.code == GP_ERR_PROTOCOL;
    is_int(failed, 8, "each op of the batch reports its protocol error");
    gp_etcd_batch_destroy(&b);

    /* lease calls */
    int64_t ttl;
    ok(gp_etcd_lease_keepalive_once(etcd, 5, &ttl, &err) < 0 && err.code == GP_ERR_PROTOCOL,
       "a keep-alive with a bad answer is an error");
    ok(gp_etcd_lease_grant(etcd, 5, 0, NULL, NULL, &err) < 0, "a grant with a bad answer is an error");

    /* a watch against a server that answers HTTP/1.1 and JSON lines, not
     * gRPC (the fake gateway): no events, no crash, it reconnects (the
     * messages of a real gRPC stream: test_etcd_watch_msg and fuzz_watchmsg) */
    char *stream = s_http(200, "{\"result\":{\"header\":{\"revision\":\"1\"},\"created\":true}}\n"
                               "{\"result\":{\"header\":{\"revision\":\"2\"},\"events\":[{\"kv\":7}]}}\n"
                               "not json at all\n{\"result\":{\"events\":");
    s_set_reply(stream);
    gp_etcd_watch_opts_t wo = { .key = "k", .cb = s_watch_cb };
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    ok(w != NULL, "a watch against the fake gateway starts");
    int64_t until = gp_mono_ms() + 1500;
    while (gp_mono_ms() < until)
        gp_etcd_step(etcd, 50, &err);
    ok(w && gp_etcd_watch_connects(w) >= 2, "a watch answered by a server that is not gRPC reconnects (connects=%d)",
       w ? gp_etcd_watch_connects(w) : 0);
    is_int(g_events, 0, "and delivers no event from that answer");
    gp_etcd_watch_destroy(&w);

    /* a keep-alive whose answers are garbage: the lease is lost after its TTL */
    s_set_reply(garbage);
    int lost = 0;
    int64_t started = gp_mono_ms();
    gp_etcd_keepalive_t *ka = gp_etcd_keepalive_start(etcd, 42, 1, s_on_lost, &lost, &err);
    ok(ka != NULL, "a keep-alive fed garbage starts");
    until = started + 10000;
    while (!lost && gp_mono_ms() < until)
        gp_etcd_step(etcd, 50, &err);
    int64_t lost_after = gp_mono_ms() - started;
    is_int(lost, 1, "its lease is reported lost");
    ok(lost_after >= 1000, "not before its 1 s TTL could have passed (%lld ms)", (long long)lost_after);
    gp_etcd_keepalive_stop(&ka);

    gp_etcd_destroy(&etcd);
    ok(etcd == NULL, "destroy clears the pointer");
    free(okr);
    free(garbage);
    free(stream);
    s_set_reply(NULL);
}

static void test_config(void)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    gp_err_t err;
    ok(gp_etcd_new(&cfg, &err) == NULL && err.code == GP_ERR_INVALID, "no endpoints is refused");
    cfg.endpoints = "ftp://x";
    ok(gp_etcd_new(&cfg, &err) == NULL && err.code == GP_ERR_INVALID, "a non-http endpoint is refused");
    cfg.endpoints = "http://127.0.0.1:1, http://127.0.0.1:2/";
    cfg.cert_file = "/x.pem";
    ok(gp_etcd_new(&cfg, &err) == NULL && err.code == GP_ERR_INVALID, "a certificate without a key is refused");
    cfg.cert_file = NULL;
    cfg.request_timeout_ms = 500;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    ok(etcd && strcmp(gp_etcd_endpoint(etcd), "http://127.0.0.1:1") == 0, "endpoint list parsed");
    gp_etcd_result_t r;
    ok(gp_etcd_get(etcd, "k", 0, &r, &err) < 0 && (err.code == GP_ERR_TRANSPORT || err.code == GP_ERR_TIMEOUT),
       "no server on any endpoint is a transport error: %s", err.msg);
    gp_etcd_destroy(&etcd);
}

/* Answers' fast path: the usual answers give what the general parser
 * gives; the bad ones are left to it (test_parse checks it refuses them). */
static void test_result_fast(void)
{
    gp_etcd_result_t r, g;
    gp_err_t err;
    const char *txn = "{\"header\":{\"revision\":\"30\"},\"succeeded\":true,\"responses\":["
                      "{\"response_range\":{\"header\":{\"revision\":\"30\"},\"kvs\":[{\"key\":\"AGI=\","
                      "\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"4\",\"value\":\"AAEC\"},"
                      "{\"key\":\"eQ==\",\"mod_revision\":\"5\"}],\"count\":\"2\",\"more\":true}},"
                      "{\"response_put\":{\"header\":{\"revision\":\"30\"},\"prev_kv\":{\"key\":\"eQ==\",\"lease\":\"7\"}}},"
                      "{\"response_delete_range\":{\"header\":{\"revision\":\"30\"},\"deleted\":\"1\"}},"
                      "{\"response_range\":{\"header\":{\"revision\":\"30\"}}}]}";
    is_int(gp_etcd_parse_result_fast(txn, strlen(txn), GP_ETCD_OP_TXN, &r), 1, "a txn answer takes the fast path");
    ok(r.revision == 30 && r.succeeded && r.n_responses == 4, "its revision, outcome and four responses");
    gp_etcd_result_t *x = r.responses;
    ok(r.n_responses == 4 && x[0].type == GP_ETCD_OP_RANGE && x[0].n_kvs == 2 && x[0].count == 2 && x[0].more &&
       x[0].kvs[0].key_len == 2 && memcmp(x[0].kvs[0].key, "\0b", 2) == 0 && x[0].kvs[0].value_len == 3 &&
       x[0].kvs[0].version == 4 && x[0].kvs[1].mod_revision == 5 && x[0].kvs[1].value_len == 0,
       "a range: its kvs, count and more");
    ok(r.n_responses == 4 && x[1].type == GP_ETCD_OP_PUT && x[1].n_kvs == 1 && x[1].kvs[0].lease == 7,
       "a put with its previous kv");
    ok(r.n_responses == 4 && x[2].type == GP_ETCD_OP_DELETE && x[2].deleted == 1 && x[3].n_kvs == 0 &&
       x[3].revision == 30, "a delete, and an empty range");
    ok(gp_etcd_parse_result(txn, strlen(txn), GP_ETCD_OP_TXN, &g, &err) == 0 && g.n_responses == 4 &&
       g.responses[0].n_kvs == 2 && g.responses[2].deleted == 1, "gp_etcd_parse_result gives the same");
    gp_etcd_result_free(&g);
    gp_etcd_result_free(&r);

    static const struct { const char *body; gp_etcd_op_type_t type; const char *what; } general[] = {
        { "{\"header\":{\"revision\":\"12\"},\"kvs\":[{\"key\":\"AGI=\"", GP_ETCD_OP_RANGE, "truncated JSON" },
        { "{\"kvs\":[]}", GP_ETCD_OP_RANGE, "no header" },
        { "{\"header\":{\"revision\":1.5}}", GP_ETCD_OP_RANGE, "a fractional revision" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":{}}", GP_ETCD_OP_RANGE, "kvs not an array" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":5}]}", GP_ETCD_OP_RANGE, "a key that is a number" },
        { "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"value\":\"eA==\"}]}", GP_ETCD_OP_RANGE, "a kv without a key" },
        { "{\"header\":{\"revision\":\"1\"},\"responses\":[{\"response_range\":{\"header\":{}},\"x\":1}]}",
          GP_ETCD_OP_TXN, "an op response of two members" },
        { "{\"header\":{\"revision\":\"1\"},\"responses\":[{\"response_txn\":{\"header\":{}}}]}",
          GP_ETCD_OP_TXN, "a nested txn" },
        { "{\"header\":{\"revision\":\"1\"},\"responses\":[{\"response_range\":{}}]}", GP_ETCD_OP_TXN,
          "an op response without a header" },
        { "{\"header\":{\"revision\":\"1\"}} x", GP_ETCD_OP_PUT, "trailing data" },
    };
    for (size_t i = 0; i < GP_ARRAY_LEN(general); i++) {
        memset(&r, 0, sizeof(r));
        int rc = gp_etcd_parse_result_fast(general[i].body, strlen(general[i].body), general[i].type, &r);
        ok(rc == 0 && r.kvs == NULL && r.responses == NULL, "%s is left to the general parser", general[i].what);
    }
}

int main(void)
{
    gp_log_init("test_etcd_json", GP_LOG_ERROR);
    test_base64();
    test_prefix_end();
    test_encode();
    test_parse();
    test_result_fast();
    test_config();
    test_fake_gateway();
    g_stop = 1;
    return done_testing();
}
