/*
 * etcd_bench.c - throughput of the etcd client against the simplest libcurl
 * loop doing the same work.
 *
 *   etcd_bench client|ref put|txn INFLIGHT SECONDS
 *
 * ENDPOINT (env) is the etcd client URL to use.  Prints one line,
 * "ops_per_s N", after running for SECONDS.
 *
 *   client, 1 in flight:  gp_etcd_put / gp_etcd_txn in a loop
 *   client, N in flight:  gp_etcd_batch_* in batches of 4096 ops
 *   ref, 1 in flight:     one easy handle, curl_easy_perform in a loop
 *   ref, N in flight:     a curl_multi loop keeping N easy handles busy
 * The reference posts JSON bodies built before the clock starts and only
 * checks the HTTP status; the client encodes every op, parses and checks
 * every answer.  The workloads: a put of a 128-byte value to one of 1000
 * keys; a single-key txn "if mod_revision(k) < 2^62 then put k".
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "etcd_internal.h"
#include "log.h"
#include "util.h"

enum { NKEYS = 1000, BATCH = 4096, VALUE_LEN = 128 };

static char g_keys[NKEYS][32];
static char g_value[VALUE_LEN];
static bool g_txn;

static void s_op(int i, gp_etcd_op_t *op, gp_etcd_cmp_t *cmp, gp_etcd_txn_t *txn)
{
    const char *k = g_keys[i % NKEYS];
    *op = (gp_etcd_op_t){ .type = GP_ETCD_OP_PUT, .key = k, .value = g_value, .value_len = VALUE_LEN };
    *cmp = (gp_etcd_cmp_t){ .key = k, .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_LESS,
                            .number = (int64_t)1 << 62 };
    *txn = (gp_etcd_txn_t){ cmp, 1, op, 1, NULL, 0 };
}

static double s_client(const char *endpoint, int inflight, double seconds)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = endpoint;
    cfg.max_connections = inflight;
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&cfg, &err);
    if (!etcd) {
        fprintf(stderr, "etcd_bench: %s\n", err.msg);
        exit(1);
    }
    int64_t t0 = gp_mono_ns(), end = t0 + (int64_t)(seconds * 1e9);
    long done = 0, failed = 0;
    gp_etcd_op_t op;
    gp_etcd_cmp_t cmp;
    gp_etcd_txn_t txn;
    if (inflight == 1) {
        while (gp_mono_ns() < end) {
            s_op((int)done, &op, &cmp, &txn);
            gp_etcd_result_t r;
            int rc = g_txn ? gp_etcd_txn(etcd, &txn, &r, &err) : gp_etcd_do(etcd, &op, &r, &err);
            if (rc < 0 || (g_txn && !r.succeeded))
                failed++;
            if (rc == 0)
                gp_etcd_result_free(&r);
            done++;
        }
    } else {
        gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
        while (gp_mono_ns() < end) {
            gp_etcd_batch_reset(b);
            for (int i = 0; i < BATCH; i++) {
                s_op((int)done + i, &op, &cmp, &txn);
                if ((g_txn ? gp_etcd_batch_add_txn(b, &txn, &err) : gp_etcd_batch_add(b, &op, &err)) < 0) {
                    fprintf(stderr, "etcd_bench: %s\n", err.msg);
                    exit(1);
                }
            }
            gp_etcd_batch_run(b, inflight, &err);
            for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
                const gp_etcd_result_t *r;
                if (gp_etcd_batch_result(b, i, &r, &err) < 0 || (g_txn && !r->succeeded))
                    failed++;
            }
            done += BATCH;
        }
        gp_etcd_batch_destroy(&b);
    }
    double el = (double)(gp_mono_ns() - t0) / 1e9;
    gp_etcd_destroy(&etcd);
    if (failed)
        fprintf(stderr, "etcd_bench: %ld of %ld ops failed (last: %s)\n", failed, done, err.msg);
    return (double)(done - failed) / el;
}

/* ------------------------------------------------------------ the reference */

static size_t s_discard(char *p, size_t s, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return s * n;
}

static double s_ref(const char *endpoint, int inflight, double seconds)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", endpoint, g_txn ? "/v3/kv/txn" : "/v3/kv/put");
    /* the bodies, built before the clock starts */
    static char *bodies[NKEYS];
    static size_t lens[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        gp_ebuf_t b = { 0 };
        gp_etcd_op_t op;
        gp_etcd_cmp_t cmp;
        gp_etcd_txn_t txn;
        gp_err_t err;
        s_op(i, &op, &cmp, &txn);
        if (g_txn)
            gp_etcd_json_txn(&b, &txn, &err);
        else
            gp_etcd_json_op(&b, &op, &err);
        bodies[i] = b.p;
        lens[i] = b.len;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)inflight);
    CURL **h = calloc((size_t)inflight, sizeof(*h));
    for (int i = 0; i < inflight; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
    }
    long done = 0, failed = 0, next = 0;
    int64_t t0 = gp_mono_ns(), end = t0 + (int64_t)(seconds * 1e9);
    if (inflight == 1) {
        while (gp_mono_ns() < end) {
            curl_easy_setopt(h[0], CURLOPT_POSTFIELDS, bodies[next % NKEYS]);
            curl_easy_setopt(h[0], CURLOPT_POSTFIELDSIZE, (long)lens[next % NKEYS]);
            next++;
            long code = 0;
            if (curl_easy_perform(h[0]) != CURLE_OK ||
                (curl_easy_getinfo(h[0], CURLINFO_RESPONSE_CODE, &code), code != 200))
                failed++;
            done++;
        }
    } else {
        for (int i = 0; i < inflight; i++) {
            curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, bodies[next % NKEYS]);
            curl_easy_setopt(h[i], CURLOPT_POSTFIELDSIZE, (long)lens[next % NKEYS]);
            next++;
            curl_multi_add_handle(m, h[i]);
        }
        int running = inflight;
        while (running > 0) {
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m, &left))) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                CURL *e = msg->easy_handle;
                long code = 0;
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
                if (msg->data.result != CURLE_OK || code != 200)
                    failed++;
                done++;
                curl_multi_remove_handle(m, e);
                if (gp_mono_ns() < end) {
                    curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next % NKEYS]);
                    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)lens[next % NKEYS]);
                    next++;
                    curl_multi_add_handle(m, e);
                    running++;
                }
            }
            if (running > 0)
                curl_multi_poll(m, NULL, 0, 100, NULL);
        }
    }
    double el = (double)(gp_mono_ns() - t0) / 1e9;
    for (int i = 0; i < inflight; i++)
        curl_easy_cleanup(h[i]);
    free(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    for (int i = 0; i < NKEYS; i++)
        free(bodies[i]);
    if (failed)
        fprintf(stderr, "etcd_bench: reference: %ld of %ld requests failed\n", failed, done);
    return (double)(done - failed) / el;
}

int main(int argc, char **argv)
{
    gp_log_init("etcd_bench", GP_LOG_WARN);
    const char *endpoint = getenv("ENDPOINT");
    int64_t inflight;
    double seconds;
    if (argc != 5 || !endpoint || gp_parse_int64(argv[3], 1, 1024, &inflight) < 0 ||
        gp_parse_double(argv[4], 0.1, 600, &seconds) < 0 ||
        (strcmp(argv[2], "put") != 0 && strcmp(argv[2], "txn") != 0)) {
        fprintf(stderr, "usage: ENDPOINT=http://h:p %s client|ref put|txn INFLIGHT SECONDS\n", argv[0]);
        return 2;
    }
    g_txn = strcmp(argv[2], "txn") == 0;
    for (int i = 0; i < NKEYS; i++)
        snprintf(g_keys[i], sizeof(g_keys[i]), "/bench/%s/%04d", argv[2], i);
    for (int i = 0; i < VALUE_LEN; i++)
        g_value[i] = (char)('a' + i % 26);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double rate = strcmp(argv[1], "ref") == 0 ? s_ref(endpoint, (int)inflight, seconds)
                                               : s_client(endpoint, (int)inflight, seconds);
    printf("ops_per_s %.0f\n", rate);
    curl_global_cleanup();
    return 0;
}
