/*
 * test_etcd_noresend.c - the etcd client never sends a txn or a delete
 * twice once it may have reached etcd.
 *
 * Two fake gateways (threads of this program, two endpoints of one client)
 * count the requests they receive per path and either close the
 * connection without answering -- the request arrived, its outcome is
 * unknown -- or answer "unavailable" (etcd's code 14, "request timed out":
 * the proposal may still be applied).  After either, a put is sent again
 * on the other endpoint (the control: the fake does provoke re-sends), but
 * a txn or a delete is sent exactly once and its caller gets an error;
 * the same holds inside a batch.
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
#include "log.h"
#include "tap.h"
#include "util.h"

/* ------------------------------------------------------------ fake gateways */

enum { P_PUT, P_TXN, P_DELETE, P_RANGE, P_OTHER, P_N };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_count[P_N];
static const char *g_reply;   /* NULL: close without answering */

static int s_path_kind(const char *req)
{
    if (!strncmp(req, "POST /v3/kv/put ", 16))
        return P_PUT;
    if (!strncmp(req, "POST /v3/kv/txn ", 16))
        return P_TXN;
    if (!strncmp(req, "POST /v3/kv/deleterange ", 24))
        return P_DELETE;
    if (!strncmp(req, "POST /v3/kv/range ", 18))
        return P_RANGE;
    return P_OTHER;
}

static void s_reset(const char *reply)
{
    pthread_mutex_lock(&g_lock);
    memset(g_count, 0, sizeof g_count);
    g_reply = reply;
    pthread_mutex_unlock(&g_lock);
}

static int s_count(int kind)
{
    pthread_mutex_lock(&g_lock);
    int n = g_count[kind];
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* Read one whole request (head and Content-Length body) from c. */
static int s_read_request(int c, char *buf, size_t size)
{
    size_t got = 0;
    long clen = -1;
    char *body = NULL;
    while (got < size - 1) {
        ssize_t r = read(c, buf + got, size - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL) {
            body += 4;
            char *cl = strcasestr(buf, "Content-Length:");
            clen = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (body && (long)(got - (size_t)(body - buf)) >= clen)
            return 0;
    }
    return -1;
}

/* One gateway: every request on a connection is counted, then answered
 * with g_reply (and the connection closed) or just closed. */
static void *s_server(void *arg)
{
    int fd = *(int *)arg;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        static __thread char buf[65536];
        if (s_read_request(c, buf, sizeof buf) == 0) {
            pthread_mutex_lock(&g_lock);
            g_count[s_path_kind(buf)]++;
            char reply[1024] = "";
            if (g_reply)
                gp_strlcpy(reply, g_reply, sizeof reply);
            pthread_mutex_unlock(&g_lock);
            if (*reply && write(c, reply, strlen(reply)) < 0) {
                /* the client went away */
            }
        }
        close(c);
    }
    return NULL;
}

static int s_start_server(void)
{
    static int fds[2];
    static int n;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int *fd = &fds[n++];
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(*fd, 16) < 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &alen) < 0)
        bail_out("cannot listen on loopback");
    pthread_t t;
    if (pthread_create(&t, NULL, s_server, fd) != 0)
        bail_out("pthread_create");
    pthread_detach(t);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ the checks */

/* What etcd's gateway answers when a proposal timed out: it may still be
 * applied. */
static const char s_unavailable_body[] =
    "{\"error\":\"etcdserver: request timed out\",\"code\":14,\"message\":\"request timed out\"}";
static char s_unavailable[512];

static void s_check_sync(gp_etcd_t *etcd, const char *reply, const char *how)
{
    gp_err_t err;
    gp_etcd_cmp_t cmp = { .key = "k", .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_EQUAL,
                          .number = 7 };
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = "k", .value = "v", .value_len = 1 };
    gp_etcd_txn_t txn = { &cmp, 1, &put, 1, NULL, 0 };
    gp_etcd_result_t res;

    s_reset(reply);
    ok(gp_etcd_put(etcd, "k", "v", 1, 0, NULL, &err) < 0, "%s: a put fails: %s", how, err.msg);
    ok(s_count(P_PUT) >= 2, "%s: the put was sent again (%d times in all), so re-sends happen", how,
       s_count(P_PUT));

    s_reset(reply);
    gp_err_clear(&err);
    ok(gp_etcd_txn(etcd, &txn, &res, &err) < 0 && err.code != GP_OK, "%s: a txn fails: %s", how,
       err.msg);
    is_int(s_count(P_TXN), 1, "%s: the txn was sent exactly once", how);

    s_reset(reply);
    gp_err_clear(&err);
    ok(gp_etcd_delete(etcd, "k", 0, NULL, &err) < 0 && err.code != GP_OK, "%s: a delete fails: %s",
       how, err.msg);
    is_int(s_count(P_DELETE), 1, "%s: the delete was sent exactly once", how);
}

static void s_check_batch(gp_etcd_t *etcd, const char *reply, const char *how)
{
    gp_err_t err;
    gp_etcd_cmp_t cmp = { .key = "k", .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_EQUAL,
                          .number = 7 };
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = "k", .value = "v", .value_len = 1 };
    gp_etcd_op_t del = { .type = GP_ETCD_OP_DELETE, .key = "d" };
    gp_etcd_txn_t txn = { &cmp, 1, &put, 1, NULL, 0 };

    s_reset(reply);
    gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
    if (b == NULL)
        bail_out("gp_etcd_batch_new");
    for (int i = 0; i < 3; i++) {
        gp_etcd_batch_add_txn(b, &txn, &err);
        gp_etcd_batch_add(b, &del, &err);
        gp_etcd_batch_add(b, &put, &err);
    }
    ok(gp_etcd_batch_run(b, 4, &err) < 0, "%s: a batch of 3 txns, 3 deletes, 3 puts fails", how);
    int failed = 0;
    const gp_etcd_result_t *res;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++)
        failed += gp_etcd_batch_result(b, i, &res, &err) < 0;
    is_int(failed, 9, "%s: each of its ops reports a failure", how);
    is_int(s_count(P_TXN), 3, "%s: each txn of the batch was sent exactly once", how);
    is_int(s_count(P_DELETE), 3, "%s: each delete of the batch was sent exactly once", how);
    ok(s_count(P_PUT) >= 6, "%s: its puts were sent again (%d times for 3)", how, s_count(P_PUT));
    gp_etcd_batch_destroy(&b);
}

int main(void)
{
    gp_log_set_level(GP_LOG_ERROR);
    char eps[128];
    int p0 = s_start_server(), p1 = s_start_server();
    snprintf(eps, sizeof eps, "http://127.0.0.1:%d,http://127.0.0.1:%d", p0, p1);
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = eps;
    cfg.request_timeout_ms = 700;
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    if (etcd == NULL)
        bail_out("gp_etcd_new: %s", err.msg);

    snprintf(s_unavailable, sizeof s_unavailable,
             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(s_unavailable_body), s_unavailable_body);
    s_check_sync(etcd, NULL, "connection closed after the request");
    s_check_sync(etcd, s_unavailable, "\"unavailable: request timed out\"");
    s_check_batch(etcd, NULL, "connection closed after the request");
    s_check_batch(etcd, s_unavailable, "\"unavailable: request timed out\"");

    gp_etcd_destroy(&etcd);
    return done_testing();
}
