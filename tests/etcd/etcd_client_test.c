/*
 * etcd_client_test.c - the etcd client against a real etcd cluster.
 *
 *   etcd_client_test SUITE
 *
 * ETCD_ENDPOINTS names the cluster (as tests/lib.sh sets it); ETCD_PIDS the
 * members' pids in the same order (for the suites that kill one);
 * ETCD_CA/ETCD_CERT/ETCD_KEY the TLS files; ETCD_USER/ETCD_PASSWORD the
 * credentials.  Suites:
 *   kv              put, range, delete, txn, batches, compaction
 *   lease           grant, ttl, revoke, expiry, keep-alive and its loss
 *   watch           events in order, prev_kv, progress, compaction
 *   watch-failover  kill the member a watch streams from: no gap, no duplicate
 *   failover        kill one member of three: reads and writes go on
 *   tls             with a client certificate, and refused without one
 *   auth            user/password, token refresh after expiry, bad password
 * Each prints TAP.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static gp_etcd_t *s_client(gp_etcd_config_t *cfg)
{
    gp_etcd_config_t def = GP_ETCD_CONFIG_INIT;
    if (!cfg) {
        cfg = &def;
    }
    if (!cfg->endpoints)
        cfg->endpoints = s_env("ETCD_ENDPOINTS");
    if (!cfg->endpoints)
        bail_out("ETCD_ENDPOINTS is not set");
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(cfg, &err);
    if (!etcd)
        bail_out("gp_etcd_new: %s", err.msg);
    return etcd;
}

/* Run the client's loop for ms milliseconds. */
static void s_step_for(gp_etcd_t *etcd, int ms)
{
    int64_t until = gp_mono_ms() + ms;
    gp_err_t err;
    while (gp_mono_ms() < until)
        gp_etcd_step(etcd, (int)(until - gp_mono_ms()), &err);
}

/* Kill the member serving endpoint url (ETCD_PIDS in ETCD_ENDPOINTS order). */
static int s_kill_member(const char *url)
{
    char eps[4096], pids[1024];
    gp_strlcpy(eps, s_env("ETCD_ENDPOINTS") ? s_env("ETCD_ENDPOINTS") : "", sizeof(eps));
    gp_strlcpy(pids, s_env("ETCD_PIDS") ? s_env("ETCD_PIDS") : "", sizeof(pids));
    char *s1 = NULL, *s2 = NULL;
    char *e = strtok_r(eps, ",", &s1), *p = strtok_r(pids, ",", &s2);
    for (; e && p; e = strtok_r(NULL, ",", &s1), p = strtok_r(NULL, ",", &s2)) {
        if (strcmp(e, url) == 0) {
            int64_t pid;
            if (gp_parse_int64(p, 1, INT32_MAX, &pid) < 0)
                return -1;
            diag("killing the etcd member at %s (pid %" PRId64 ")", url, pid);
            return kill((pid_t)pid, SIGKILL);
        }
    }
    return -1;
}

/* ------------------------------------------------------------ kv */

static int g_bg_done;

static void s_bg_done(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    (*(int *)arg)++;
}

static void suite_kv(void)
{
    gp_etcd_t *etcd = s_client(NULL);
    gp_err_t err;
    gp_etcd_result_t r;
    int64_t rev1, rev2;

    ok(gp_etcd_put(etcd, "/t/kv/a", "one", 3, 0, &rev1, &err) == 0, "put /t/kv/a");
    ok(gp_etcd_get(etcd, "/t/kv/a", 0, &r, &err) == 0 && r.n_kvs == 1 && r.count == 1 &&
       r.kvs[0].value_len == 3 && memcmp(r.kvs[0].value, "one", 3) == 0 &&
       r.kvs[0].mod_revision == rev1 && r.kvs[0].create_revision == rev1 && r.kvs[0].version == 1,
       "get returns the value with its revisions and version");
    gp_etcd_result_free(&r);

    /* put with prev_kv */
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = "/t/kv/a", .value = "two", .value_len = 3,
                         .flags = GP_ETCD_PREV_KV };
    ok(gp_etcd_do(etcd, &put, &r, &err) == 0 && r.n_kvs == 1 && memcmp(r.kvs[0].value, "one", 3) == 0 &&
       r.revision > rev1, "put with prev_kv returns the previous value");
    rev2 = r.revision;
    gp_etcd_result_free(&r);

    /* binary keys and values */
    const char bkey[] = { '/', 't', '/', 'b', 0, 1, (char)0xff };
    const char bval[] = { 0, 'x', 0, (char)0x80 };
    gp_etcd_op_t bput = { .type = GP_ETCD_OP_PUT, .key = bkey, .key_len = sizeof(bkey),
                          .value = bval, .value_len = sizeof(bval) };
    gp_etcd_op_t bget = { .type = GP_ETCD_OP_RANGE, .key = bkey, .key_len = sizeof(bkey) };
    ok(gp_etcd_do(etcd, &bput, &r, &err) == 0, "put a binary key and value");
    gp_etcd_result_free(&r);
    ok(gp_etcd_do(etcd, &bget, &r, &err) == 0 && r.n_kvs == 1 && r.kvs[0].key_len == sizeof(bkey) &&
       memcmp(r.kvs[0].key, bkey, sizeof(bkey)) == 0 && r.kvs[0].value_len == sizeof(bval) &&
       memcmp(r.kvs[0].value, bval, sizeof(bval)) == 0, "binary key and value come back intact");
    gp_etcd_result_free(&r);

    /* range at an older revision */
    gp_etcd_op_t old = { .type = GP_ETCD_OP_RANGE, .key = "/t/kv/a", .revision = rev1 };
    ok(gp_etcd_do(etcd, &old, &r, &err) == 0 && r.n_kvs == 1 && memcmp(r.kvs[0].value, "one", 3) == 0,
       "range at an older revision sees the old value");
    gp_etcd_result_free(&r);

    /* prefix, limit, keys_only, count_only, sort */
    for (int i = 0; i < 5; i++) {
        char k[32], v[16];
        snprintf(k, sizeof(k), "/t/p/%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        gp_etcd_put(etcd, k, v, strlen(v), 0, NULL, &err);
    }
    gp_etcd_put(etcd, "/t/q", "outside", 7, 0, NULL, &err);
    ok(gp_etcd_get(etcd, "/t/p/", GP_ETCD_PREFIX, &r, &err) == 0 && r.n_kvs == 5 && r.count == 5 &&
       memcmp(r.kvs[0].key, "/t/p/0", 6) == 0 && memcmp(r.kvs[4].key, "/t/p/4", 6) == 0,
       "prefix range returns the 5 keys in key order");
    gp_etcd_result_free(&r);
    gp_etcd_op_t lim = { .type = GP_ETCD_OP_RANGE, .key = "/t/p/", .flags = GP_ETCD_PREFIX, .limit = 2,
                         .sort_order = GP_ETCD_SORT_DESCEND, .sort_target = GP_ETCD_SORT_KEY };
    ok(gp_etcd_do(etcd, &lim, &r, &err) == 0 && r.n_kvs == 2 && r.more && r.count == 5 &&
       memcmp(r.kvs[0].key, "/t/p/4", 6) == 0 && memcmp(r.kvs[1].key, "/t/p/3", 6) == 0,
       "limit 2, sorted descending: the last two keys and more=true");
    gp_etcd_result_free(&r);
    ok(gp_etcd_get(etcd, "/t/p/", GP_ETCD_PREFIX | GP_ETCD_KEYS_ONLY, &r, &err) == 0 && r.n_kvs == 5 &&
       r.kvs[0].value_len == 0, "keys_only returns keys without values");
    gp_etcd_result_free(&r);
    ok(gp_etcd_get(etcd, "/t/p/", GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &r, &err) == 0 && r.n_kvs == 0 &&
       r.count == 5, "count_only returns the count only");
    gp_etcd_result_free(&r);
    ok(gp_etcd_get(etcd, "/t/none", 0, &r, &err) == 0 && r.n_kvs == 0 && r.count == 0,
       "a missing key is an empty result, not an error");
    gp_etcd_result_free(&r);

    /* delete */
    int64_t deleted = -1;
    ok(gp_etcd_delete(etcd, "/t/p/0", 0, &deleted, &err) == 0 && deleted == 1, "delete one key");
    gp_etcd_op_t del = { .type = GP_ETCD_OP_DELETE, .key = "/t/p/", .flags = GP_ETCD_PREFIX | GP_ETCD_PREV_KV };
    ok(gp_etcd_do(etcd, &del, &r, &err) == 0 && r.deleted == 4 && r.n_kvs == 4 &&
       memcmp(r.kvs[0].value, "v1", 2) == 0, "delete a prefix with prev_kv returns the deleted kvs");
    gp_etcd_result_free(&r);
    ok(gp_etcd_get(etcd, "/t/q", 0, &r, &err) == 0 && r.n_kvs == 1, "a key outside the prefix survives");
    gp_etcd_result_free(&r);

    /* txn: compares on value, version, create, mod; success and failure branches */
    gp_etcd_cmp_t cmps[] = {
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_VALUE, .result = GP_ETCD_CMP_EQUAL, .value = "two", .value_len = 3 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_VERSION, .result = GP_ETCD_CMP_EQUAL, .number = 2 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_CREATE, .result = GP_ETCD_CMP_EQUAL, .number = rev1 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_EQUAL, .number = rev2 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_LEASE, .result = GP_ETCD_CMP_EQUAL, .number = 0 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_MOD, .result = GP_ETCD_CMP_LESS, .number = rev2 + 1000 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_VERSION, .result = GP_ETCD_CMP_GREATER, .number = 1 },
        { .key = "/t/kv/a", .target = GP_ETCD_CMP_VALUE, .result = GP_ETCD_CMP_NOT_EQUAL, .value = "x", .value_len = 1 },
    };
    gp_etcd_op_t succ[] = {
        { .type = GP_ETCD_OP_PUT, .key = "/t/kv/a", .value = "three", .value_len = 5, .flags = GP_ETCD_PREV_KV },
        { .type = GP_ETCD_OP_RANGE, .key = "/t/q" },
        { .type = GP_ETCD_OP_DELETE, .key = "/t/q" },
    };
    gp_etcd_op_t fail[] = {
        { .type = GP_ETCD_OP_RANGE, .key = "/t/kv/a" },
        { .type = GP_ETCD_OP_PUT, .key = "/t/kv/conflicts", .value = "1", .value_len = 1 },
    };
    gp_etcd_txn_t txn = { cmps, GP_ARRAY_LEN(cmps), succ, GP_ARRAY_LEN(succ), fail, GP_ARRAY_LEN(fail) };
    ok(gp_etcd_txn(etcd, &txn, &r, &err) == 0, "txn with eight compares: %s", err.msg);
    ok(r.succeeded && r.n_responses == 3 && r.responses[0].type == GP_ETCD_OP_PUT &&
       r.responses[0].n_kvs == 1 && memcmp(r.responses[0].kvs[0].value, "two", 3) == 0 &&
       r.responses[1].n_kvs == 1 && memcmp(r.responses[1].kvs[0].value, "outside", 7) == 0 &&
       r.responses[2].deleted == 1, "every compare held: the success ops ran, one result per op");
    int64_t rev3 = r.revision;
    gp_etcd_result_free(&r);
    /* the same txn again conflicts (value, version and mod revision changed) */
    ok(gp_etcd_txn(etcd, &txn, &r, &err) == 0 && !r.succeeded && r.n_responses == 2 &&
       r.responses[0].type == GP_ETCD_OP_RANGE && r.responses[0].n_kvs == 1 &&
       memcmp(r.responses[0].kvs[0].value, "three", 5) == 0 && r.responses[0].kvs[0].mod_revision == rev3 &&
       r.responses[1].type == GP_ETCD_OP_PUT, "a failed compare runs the failure ops and returns their results");
    gp_etcd_result_free(&r);
    ok(gp_etcd_get(etcd, "/t/kv/conflicts", 0, &r, &err) == 0 && r.n_kvs == 1, "the failure branch's put is stored");
    gp_etcd_result_free(&r);
    /* create-if-absent */
    gp_etcd_cmp_t absent = { .key = "/t/kv/new", .target = GP_ETCD_CMP_CREATE, .result = GP_ETCD_CMP_EQUAL, .number = 0 };
    gp_etcd_op_t create = { .type = GP_ETCD_OP_PUT, .key = "/t/kv/new", .value = "n", .value_len = 1 };
    gp_etcd_txn_t ct = { &absent, 1, &create, 1, NULL, 0 };
    ok(gp_etcd_txn(etcd, &ct, &r, &err) == 0 && r.succeeded, "create-if-absent succeeds once");
    gp_etcd_result_free(&r);
    ok(gp_etcd_txn(etcd, &ct, &r, &err) == 0 && !r.succeeded && r.n_responses == 0,
       "and conflicts the second time");
    gp_etcd_result_free(&r);
    /* a txn etcd refuses */
    gp_etcd_op_t dup[] = { create, create };
    gp_etcd_txn_t bad = { NULL, 0, dup, 2, NULL, 0 };
    ok(gp_etcd_txn(etcd, &bad, &r, &err) < 0 && err.code == GP_ERR_SERVER && err.status == 3,
       "a txn writing one key twice is a server error: %s", err.msg);

    /* batches: 1000 puts with 64 in flight, then ranges, deletes and txns */
    gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
    char keys[1000][24];
    int added = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "/t/batch/%04d", i);
        gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = keys[i], .value = keys[i], .value_len = strlen(keys[i]) };
        added += gp_etcd_batch_add(b, &op, &err) == i;
    }
    is_int(added, 1000, "1000 puts queued with their indexes");
    ok(gp_etcd_batch_run(b, 64, &err) == 0, "a batch of 1000 puts runs with 64 in flight");
    int good = 0;
    int64_t maxrev = 0;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
        const gp_etcd_result_t *res;
        if (gp_etcd_batch_result(b, i, &res, &err) == 0 && res->type == GP_ETCD_OP_PUT && res->revision > 0) {
            good++;
            if (res->revision > maxrev)
                maxrev = res->revision;
        }
    }
    is_int(good, 1000, "every put has its own result");
    ok(gp_etcd_get(etcd, "/t/batch/", GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &r, &err) == 0 && r.count == 1000 &&
       r.revision >= maxrev, "all 1000 keys are stored");
    gp_etcd_result_free(&r);
    gp_etcd_batch_reset(b);
    ok(gp_etcd_batch_size(b) == 0, "reset empties the batch");
    gp_etcd_op_t r1 = { .type = GP_ETCD_OP_RANGE, .key = keys[7] };
    gp_etcd_op_t d1 = { .type = GP_ETCD_OP_DELETE, .key = keys[8] };
    gp_etcd_cmp_t c1 = { .key = keys[9], .target = GP_ETCD_CMP_VERSION, .result = GP_ETCD_CMP_EQUAL, .number = 1 };
    gp_etcd_cmp_t c2 = { .key = keys[10], .target = GP_ETCD_CMP_VERSION, .result = GP_ETCD_CMP_EQUAL, .number = 5 };
    gp_etcd_op_t tp = { .type = GP_ETCD_OP_PUT, .key = keys[9], .value = "t", .value_len = 1 };
    gp_etcd_txn_t t1 = { &c1, 1, &tp, 1, NULL, 0 }, t2 = { &c2, 1, NULL, 0, &r1, 1 };
    gp_etcd_batch_add(b, &r1, &err);
    gp_etcd_batch_add(b, &d1, &err);
    gp_etcd_batch_add_txn(b, &t1, &err);
    gp_etcd_batch_add_txn(b, &t2, &err);
    gp_etcd_op_t empty = { .type = GP_ETCD_OP_PUT, .key = "" };
    ok(gp_etcd_batch_add(b, &empty, &err) < 0 && err.code == GP_ERR_INVALID, "a bad op is refused when queued");
    ok(gp_etcd_batch_run(b, 4, &err) == 0, "a mixed batch runs");
    const gp_etcd_result_t *res[4] = { 0 };
    for (size_t i = 0; i < 4; i++)
        gp_etcd_batch_result(b, i, &res[i], &err);
    ok(res[0] && res[0]->n_kvs == 1 && memcmp(res[0]->kvs[0].value, keys[7], strlen(keys[7])) == 0,
       "batch range result");
    ok(res[1] && res[1]->deleted == 1, "batch delete result");
    ok(res[2] && res[2]->succeeded && res[2]->n_responses == 1, "batch txn that succeeds");
    ok(res[3] && !res[3]->succeeded && res[3]->n_responses == 1 && res[3]->responses[0].n_kvs == 1,
       "batch txn that conflicts runs its failure op");
    gp_etcd_batch_destroy(&b);
    ok(b == NULL, "batch destroy clears the pointer");

    /* a batch in the background: 200 puts, 8 in flight, done from a step */
    b = gp_etcd_batch_new(etcd);
    for (int i = 0; i < 200; i++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = keys[i], .value = "bg", .value_len = 2 };
        gp_etcd_batch_add(b, &op, &err);
    }
    g_bg_done = 0;
    ok(gp_etcd_batch_start(b, 8, s_bg_done, &g_bg_done, &err) == 0, "a batch starts in the background");
    ok(g_bg_done == 0 && gp_etcd_batch_running(b), "its callback does not run inside the start");
    gp_etcd_op_t late = { .type = GP_ETCD_OP_PUT, .key = "/t/late", .value = "x", .value_len = 1 };
    ok(gp_etcd_batch_add(b, &late, &err) < 0 && err.code == GP_ERR_INVALID,
       "nothing is added to a running batch");
    int64_t until = gp_mono_ms() + 10000;
    while (g_bg_done == 0 && gp_mono_ms() < until)
        gp_etcd_step(etcd, 50, &err);
    ok(g_bg_done == 1 && !gp_etcd_batch_running(b), "the callback ran once, from a step");
    int bg_ok = 0;
    for (size_t i = 0; i < gp_etcd_batch_size(b); i++) {
        const gp_etcd_result_t *bres;
        bg_ok += gp_etcd_batch_result(b, i, &bres, &err) == 0 && bres->revision > 0;
    }
    ok(bg_ok == 200, "every op of the background batch has its result (%d)", bg_ok);
    gp_etcd_result_t bgr;
    ok(gp_etcd_get(etcd, keys[199], 0, &bgr, &err) == 0 && bgr.n_kvs == 1 &&
           bgr.kvs[0].value_len == 2 && memcmp(bgr.kvs[0].value, "bg", 2) == 0,
       "the background writes are stored");
    gp_etcd_result_free(&bgr);
    /* a synchronous call while a batch runs in the background: both finish */
    gp_etcd_batch_reset(b);
    for (int i = 0; i < 50; i++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_DELETE, .key = keys[i] };
        gp_etcd_batch_add(b, &op, &err);
    }
    g_bg_done = 0;
    gp_etcd_batch_start(b, 4, s_bg_done, &g_bg_done, &err);
    ok(gp_etcd_put(etcd, "/t/sync", "s", 1, 0, NULL, &err) == 0 && g_bg_done == 0,
       "a synchronous put while the batch runs; no callback inside it");
    until = gp_mono_ms() + 10000;
    while (g_bg_done == 0 && gp_mono_ms() < until)
        gp_etcd_step(etcd, 50, &err);
    memset(&bgr, 0, sizeof bgr);
    int got = gp_etcd_get(etcd, "/t/batch/", GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &bgr, &err);
    ok(g_bg_done == 1 && got == 0 && bgr.count == 950,
       "the background deletes finish after it (%lld keys left)", (long long)bgr.count);
    gp_etcd_result_free(&bgr);
    /* destroyed while running: no callback */
    gp_etcd_batch_reset(b);
    for (int i = 50; i < 100; i++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = keys[i], .value = "c", .value_len = 1 };
        gp_etcd_batch_add(b, &op, &err);
    }
    g_bg_done = 0;
    gp_etcd_batch_start(b, 4, s_bg_done, &g_bg_done, &err);
    gp_etcd_batch_destroy(&b);
    until = gp_mono_ms() + 500;
    while (gp_mono_ms() < until)
        gp_etcd_step(etcd, 50, &err);
    ok(g_bg_done == 0, "a batch destroyed while running calls nothing back");

    /* compaction: a range below it is COMPACTED */
    ok(gp_etcd_compact(etcd, rev2, &err) == 0, "compact at an older revision");
    ok(gp_etcd_do(etcd, &old, &r, &err) < 0 && err.code == GP_ERR_COMPACTED,
       "a range at a compacted revision is COMPACTED: %s", err.msg);
    gp_etcd_destroy(&etcd);
}

/* ------------------------------------------------------------ leases */


static int g_lost;
static gp_err_t g_lost_err;
static void s_on_lost(gp_etcd_t *etcd, int64_t id, const gp_err_t *why, void *arg)
{
    (void)etcd;
    (void)id;
    (void)arg;
    g_lost++;
    g_lost_err = *why;
}

static bool s_exists(gp_etcd_t *etcd, const char *key)
{
    gp_etcd_result_t r;
    gp_err_t err;
    if (gp_etcd_get(etcd, key, GP_ETCD_COUNT_ONLY, &r, &err) < 0)
        return false;
    bool e = r.count > 0;
    gp_etcd_result_free(&r);
    return e;
}

static void suite_lease(void)
{
    gp_etcd_t *etcd = s_client(NULL);
    gp_err_t err;
    gp_etcd_result_t r;
    int64_t id, ttl, granted;

    ok(gp_etcd_lease_grant(etcd, 30, 0, &id, &granted, &err) == 0 && id != 0 && granted == 30, "grant a 30 s lease");
    ok(gp_etcd_put(etcd, "/t/lease/a", "x", 1, id, NULL, &err) == 0, "put a key on the lease");
    ok(gp_etcd_get(etcd, "/t/lease/a", 0, &r, &err) == 0 && r.n_kvs == 1 && r.kvs[0].lease == id,
       "the key carries the lease id");
    gp_etcd_result_free(&r);
    gp_etcd_cmp_t lc = { .key = "/t/lease/a", .target = GP_ETCD_CMP_LEASE, .result = GP_ETCD_CMP_EQUAL, .number = id };
    gp_etcd_txn_t lt = { &lc, 1, NULL, 0, NULL, 0 };
    ok(gp_etcd_txn(etcd, &lt, &r, &err) == 0 && r.succeeded, "a txn compare on the lease holds");
    gp_etcd_result_free(&r);
    ok(gp_etcd_lease_ttl(etcd, id, &ttl, &granted, &err) == 0 && ttl > 0 && ttl <= 30 && granted == 30,
       "time-to-live reports the remaining TTL");
    ok(gp_etcd_lease_keepalive_once(etcd, id, &ttl, &err) == 0 && ttl == 30, "one keep-alive renews it");
    ok(gp_etcd_lease_revoke(etcd, id, &err) == 0, "revoke the lease");
    ok(!s_exists(etcd, "/t/lease/a"), "revoking removes the attached key");
    ok(gp_etcd_lease_ttl(etcd, id, &ttl, NULL, &err) < 0 && err.code == GP_ERR_NOTFOUND, "a revoked lease is not found");
    ok(gp_etcd_lease_revoke(etcd, id, &err) < 0 && err.code == GP_ERR_NOTFOUND, "revoking it again is NOTFOUND");
    ok(gp_etcd_lease_keepalive_once(etcd, id, &ttl, &err) < 0 && err.code == GP_ERR_NOTFOUND,
       "keeping it alive is NOTFOUND");

    /* expiry without keep-alive; keep-alive holds another lease */
    int64_t exp_id, kept_id;
    ok(gp_etcd_lease_grant(etcd, 2, 0, &exp_id, NULL, &err) == 0 &&
       gp_etcd_lease_grant(etcd, 2, 0, &kept_id, NULL, &err) == 0, "grant two 2 s leases");
    gp_etcd_put(etcd, "/t/lease/expires", "x", 1, exp_id, NULL, &err);
    gp_etcd_put(etcd, "/t/lease/kept", "x", 1, kept_id, NULL, &err);
    int pfd_n;
    struct pollfd pfds[8];
    int timeout = -2;
    int n_before = gp_etcd_pollfds(etcd, pfds, 8, &timeout);
    gp_etcd_keepalive_t *ka = gp_etcd_keepalive_start(etcd, kept_id, 2, s_on_lost, NULL, &err);
    ok(ka != NULL, "start a keep-alive");
    int64_t t0 = gp_mono_ms();
    bool expired = false;
    while (gp_mono_ms() - t0 < 8000) {
        s_step_for(etcd, 250);
        if (!s_exists(etcd, "/t/lease/expires")) {
            expired = true;
            break;
        }
    }
    ok(expired, "lease expiry removes the attached key (after %.1f s)", (double)(gp_mono_ms() - t0) / 1000);
    s_step_for(etcd, 3000);   /* well past the 2 s TTL */
    ok(s_exists(etcd, "/t/lease/kept"), "the keep-alive holds its key past the TTL");
    is_int(g_lost, 0, "no loss reported while it is held");
    pfd_n = gp_etcd_pollfds(etcd, pfds, 8, &timeout);
    is_int(pfd_n, n_before + 1, "pollfds hands out one more descriptor: the keep-alive thread's");
    /* The caller's loop blocked for three TTLs (no step, no call: a long
     * CPU-bound stretch or a hung synchronous call): the keep-alive thread
     * refreshes the lease all the same. */
    usleep(6000 * 1000);
    ok(s_exists(etcd, "/t/lease/kept"), "a loop blocked for three TTLs keeps its lease");
    s_step_for(etcd, 500);
    is_int(g_lost, 0, "and no loss is reported after it");
    /* revoke it behind the keep-alive's back: loss reported */
    ok(gp_etcd_lease_revoke(etcd, kept_id, &err) == 0, "revoke the kept lease");
    t0 = gp_mono_ms();
    while (g_lost == 0 && gp_mono_ms() - t0 < 5000) {
        int n = gp_etcd_pollfds(etcd, pfds, 8, &timeout);
        poll(pfds, (nfds_t)(n < 8 ? n : 8), timeout < 0 || timeout > 200 ? 200 : timeout);
        gp_etcd_step(etcd, 0, &err);
    }
    is_int(g_lost, 1, "the keep-alive reports the loss once");
    ok(g_lost_err.code == GP_ERR_LOST, "as GP_ERR_LOST: %s", g_lost_err.msg);
    s_step_for(etcd, 1000);
    is_int(g_lost, 1, "and only once");
    gp_etcd_keepalive_stop(&ka);
    ok(ka == NULL, "stop clears the pointer");

    /* a keep-alive that cannot reach etcd reports loss after the TTL */
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.endpoints = "http://127.0.0.1:9";
    cfg.request_timeout_ms = 300;
    gp_etcd_t *dead = s_client(&cfg);
    g_lost = 0;
    ka = gp_etcd_keepalive_start(dead, 12345, 1, s_on_lost, NULL, &err);
    s_step_for(dead, 1800);
    is_int(g_lost, 1, "unreachable for longer than the TTL is a loss: %s", g_lost_err.msg);
    gp_etcd_destroy(&dead);   /* also frees the keep-alive */
    gp_etcd_destroy(&etcd);
}

/* ------------------------------------------------------------ watch */

typedef struct {
    int64_t revs[4096];
    int types[4096];
    char keys[4096][32];
    int n;
    int progress;
    int compacted;
    int64_t compact_rev;
    int errors;
    bool prev_ok;
    bool ordered;
    int64_t last_rev;
} s_seen_t;

typedef struct {
    gp_etcd_watch_t *w;
    int calls;
} s_selfdestruct_t;

/* Destroys its own watch at its first delivery. */
static void s_selfdestruct_cb(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    (void)resp;
    s_selfdestruct_t *sd = arg;
    sd->calls++;
    gp_etcd_watch_destroy(&sd->w);
}

static void s_watch_cb(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    s_seen_t *s = arg;
    switch (resp->kind) {
    case GP_ETCD_WATCH_EVENTS:
        for (size_t i = 0; i < resp->n_events; i++) {
            const gp_etcd_event_t *e = &resp->events[i];
            if (e->kv.mod_revision < s->last_rev)
                s->ordered = false;
            s->last_rev = e->kv.mod_revision;
            if (s->n < 4096) {
                s->revs[s->n] = e->kv.mod_revision;
                s->types[s->n] = e->type;
                snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)e->kv.key_len, e->kv.key);
                s->n++;
            }
            if (e->type == GP_ETCD_EVENT_PUT && e->kv.version > 1 && !e->has_prev_kv)
                s->prev_ok = false;
        }
        break;
    case GP_ETCD_WATCH_PROGRESS:
        s->progress++;
        break;
    case GP_ETCD_WATCH_COMPACTED:
        s->compacted++;
        s->compact_rev = resp->compact_revision;
        break;
    case GP_ETCD_WATCH_ERROR:
        s->errors++;
        break;
    }
}

static void suite_watch(void)
{
    gp_etcd_t *etcd = s_client(NULL);
    gp_err_t err;
    static s_seen_t seen, seen2, seen3;
    seen.prev_ok = seen.ordered = true;
    int64_t rev0;
    gp_etcd_put(etcd, "/t/w/before", "0", 1, 0, &rev0, &err);

    gp_etcd_watch_opts_t wo = { .key = "/t/w/", .prefix = true, .prev_kv = true, .progress_notify = true,
                                .cb = s_watch_cb, .arg = &seen };
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    ok(w != NULL, "start a prefix watch from now with prev_kv and progress notifications");
    s_step_for(etcd, 300);
    int64_t revs[6];
    gp_etcd_put(etcd, "/t/w/a", "1", 1, 0, &revs[0], &err);
    gp_etcd_put(etcd, "/t/w/a", "2", 1, 0, &revs[1], &err);
    gp_etcd_put(etcd, "/t/w/b", "1", 1, 0, &revs[2], &err);
    gp_etcd_put(etcd, "/t/other", "x", 1, 0, NULL, &err);
    gp_etcd_delete(etcd, "/t/w/a", 0, NULL, &err);
    gp_etcd_op_t del = { .type = GP_ETCD_OP_DELETE, .key = "/t/w/b" };
    gp_etcd_result_t r;
    gp_etcd_do(etcd, &del, &r, &err);
    revs[4] = r.revision;
    gp_etcd_result_free(&r);
    int64_t t0 = gp_mono_ms();
    while (seen.n < 5 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    is_int(seen.n, 5, "five events under the prefix (nothing else, nothing from before)");
    ok(seen.ordered && seen.revs[0] == revs[0] && seen.revs[1] == revs[1] && seen.revs[2] == revs[2] &&
       seen.revs[4] == revs[4], "in revision order");
    ok(seen.types[0] == GP_ETCD_EVENT_PUT && seen.types[3] == GP_ETCD_EVENT_DELETE &&
       seen.types[4] == GP_ETCD_EVENT_DELETE && strcmp(seen.keys[3], "/t/w/a") == 0,
       "puts then deletes, with their keys");
    ok(seen.prev_ok, "updates carry their previous kv");
    is_int(gp_etcd_watch_next_revision(w), revs[4] + 1, "the resume point is one past the last event");
    t0 = gp_mono_ms();
    while (seen.progress == 0 && gp_mono_ms() - t0 < 4000)
        gp_etcd_step(etcd, 100, &err);
    ok(seen.progress > 0, "a progress notification arrives");
    gp_etcd_watch_destroy(&w);
    ok(w == NULL, "destroy clears the pointer");

    /* Responses that reach the client together, more of them than
     * libcurl's receive buffer (16 KiB) holds, the last things on their
     * stream (no progress notifications): every one is delivered with
     * nothing behind them to push them through.  (The puts are
     * synchronous calls, which do not read the stream: its responses wait
     * in the socket and are read at once by the next step.) */
    static s_seen_t seen_burst;
    gp_etcd_watch_opts_t wob = { .key = "/t/w/burst/", .prefix = true, .cb = s_watch_cb,
                                 .arg = &seen_burst };
    w = gp_etcd_watch_new(etcd, &wob, &err);
    s_step_for(etcd, 300);
    static char value[800];
    memset(value, 'v', sizeof value);
    int64_t last_rev = 0;
    int puts = 0;
    for (int i = 0; i < 25; i++) {
        char key[64];
        snprintf(key, sizeof key, "/t/w/burst/%02d", i);
        puts += gp_etcd_put(etcd, key, value, sizeof value, 0, &last_rev, &err) == 0;
    }
    is_int(puts, 25, "25 puts of %zu bytes, the watch's stream not read meanwhile", sizeof value);
    t0 = gp_mono_ms();
    while (seen_burst.n < 25 && gp_mono_ms() - t0 < 3000)
        gp_etcd_step(etcd, 100, &err);
    ok(seen_burst.n == 25 && seen_burst.revs[24] == last_rev,
       "every event is delivered with nothing written after them (%d of 25)", seen_burst.n);
    gp_etcd_watch_destroy(&w);

    /* from a start revision: history replayed */
    seen2.ordered = seen2.prev_ok = true;
    gp_etcd_watch_opts_t wo2 = { .key = "/t/w/a", .start_revision = revs[0], .cb = s_watch_cb, .arg = &seen2 };
    w = gp_etcd_watch_new(etcd, &wo2, &err);
    t0 = gp_mono_ms();
    while (seen2.n < 3 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    ok(seen2.n == 3 && seen2.revs[0] == revs[0] && seen2.revs[1] == revs[1] && seen2.types[2] == GP_ETCD_EVENT_DELETE,
       "a watch from a past revision replays that key's history");
    gp_etcd_watch_destroy(&w);

    /* compacted start revision */
    int64_t now_rev;
    gp_etcd_put(etcd, "/t/w/c", "x", 1, 0, &now_rev, &err);
    ok(gp_etcd_compact(etcd, now_rev, &err) == 0, "compact up to the current revision");
    gp_etcd_watch_opts_t wo3 = { .key = "/t/w/", .prefix = true, .start_revision = rev0, .cb = s_watch_cb,
                                 .arg = &seen3 };
    w = gp_etcd_watch_new(etcd, &wo3, &err);
    t0 = gp_mono_ms();
    while (seen3.compacted == 0 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    is_int(seen3.compacted, 1, "a compacted start revision is reported as COMPACTED");
    is_int(seen3.compact_rev, now_rev, "with the compaction revision to re-list from");
    is_int(seen3.n, 0, "and no events");
    gp_etcd_watch_destroy(&w);

    /* A watch destroyed from inside its callback: it delivers nothing more,
     * and the client goes on (ASan run: nothing used after it is freed). */
    s_selfdestruct_t sd = { 0 };
    gp_etcd_watch_opts_t wo4 = { .key = "/t/w/sd", .cb = s_selfdestruct_cb, .arg = &sd };
    sd.w = gp_etcd_watch_new(etcd, &wo4, &err);
    s_step_for(etcd, 300);
    gp_etcd_put(etcd, "/t/w/sd", "1", 1, 0, NULL, &err);
    gp_etcd_put(etcd, "/t/w/sd", "2", 1, 0, NULL, &err);
    t0 = gp_mono_ms();
    while (sd.calls == 0 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    ok(sd.calls == 1 && sd.w == NULL, "a watch destroys itself from its callback (calls=%d)", sd.calls);
    gp_etcd_put(etcd, "/t/w/sd", "3", 1, 0, NULL, &err);
    s_step_for(etcd, 300);
    is_int(sd.calls, 1, "and is called no more");
    int64_t rev_after;
    ok(gp_etcd_put(etcd, "/t/w/sd", "4", 1, 0, &rev_after, &err) == 0 && rev_after > 0,
       "the client works on after it");

    /* a watch left to the client's destroy */
    gp_etcd_watch_t *w2 = gp_etcd_watch_new(etcd, &wo, &err);
    ok(w2 != NULL, "a watch still open when the client is destroyed");
    gp_etcd_destroy(&etcd);
    ok(etcd == NULL, "destroying the client stops its watches");
}

/* ------------------------------------------------------------ watch failover */

static void suite_watch_failover(void)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.request_timeout_ms = 10000;
    gp_etcd_t *etcd = s_client(&cfg);
    gp_err_t err;
    static s_seen_t seen;
    seen.ordered = seen.prev_ok = true;
    int64_t start;
    gp_etcd_put(etcd, "/t/wf/start", "0", 1, 0, &start, &err);
    gp_etcd_watch_opts_t wo = { .key = "/t/wf/k", .prefix = true, .start_revision = start + 1,
                                .cb = s_watch_cb, .arg = &seen };
    char watch_ep[256];
    gp_strlcpy(watch_ep, gp_etcd_endpoint(etcd), sizeof(watch_ep));
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    ok(w != NULL, "start a watch on %s", watch_ep);

    enum { N = 600 };
    int64_t revs[N];
    int put_ok = 0;
    bool killed = false;
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "/t/wf/k%04d", i);
        if (gp_etcd_put(etcd, k, "v", 1, 0, &revs[i], &err) == 0)
            put_ok++;
        else
            diag("put %d failed: %s", i, err.msg);
        gp_etcd_step(etcd, 0, &err);
        if (i == N / 3) {
            s_step_for(etcd, 100);
            ok(seen.n > 0, "the watch delivered events before the kill (%d)", seen.n);
            ok(s_kill_member(watch_ep) == 0, "kill the member the watch streams from");
            killed = true;
        }
    }
    is_int(put_ok, N, "every put went through (failing over after the kill)");
    int64_t t0 = gp_mono_ms();
    while (seen.n < N && gp_mono_ms() - t0 < 15000)
        gp_etcd_step(etcd, 100, &err);
    is_int(seen.n, N, "the watch delivered every event exactly once");
    int gaps = 0;
    for (int i = 0; i < seen.n && i < N; i++)
        if (seen.revs[i] != revs[i])
            gaps++;
    is_int(gaps, 0, "in order, with no gap and no duplicate");
    ok(seen.ordered, "revisions never go backwards");
    ok(killed && gp_etcd_watch_connects(w) >= 2, "the watch reconnected (%d connects) to %s",
       gp_etcd_watch_connects(w), gp_etcd_endpoint(etcd));
    ok(strcmp(gp_etcd_endpoint(etcd), watch_ep) != 0, "on another member");
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);
}

/* ------------------------------------------------------------ failover */

static void suite_failover(void)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.request_timeout_ms = 10000;
    gp_etcd_t *etcd = s_client(&cfg);
    gp_err_t err;
    gp_etcd_result_t r;
    ok(gp_etcd_put(etcd, "/t/f/a", "1", 1, 0, NULL, &err) == 0, "put before the kill");
    char first[256];
    gp_strlcpy(first, gp_etcd_endpoint(etcd), sizeof(first));
    /* warm a pool of connections to the first member */
    gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = "/t/f/a" };
    for (int i = 0; i < 16; i++)
        gp_etcd_batch_add(b, &op, &err);
    gp_etcd_batch_run(b, 16, &err);
    ok(s_kill_member(first) == 0, "kill the member in use");
    ok(gp_etcd_get(etcd, "/t/f/a", 0, &r, &err) == 0 && r.n_kvs == 1, "a read works through another member: %s",
       err.msg);
    gp_etcd_result_free(&r);
    ok(gp_etcd_put(etcd, "/t/f/b", "2", 1, 0, NULL, &err) == 0, "a write works through another member: %s", err.msg);
    ok(strcmp(gp_etcd_endpoint(etcd), first) != 0, "the client moved to %s", gp_etcd_endpoint(etcd));
    gp_etcd_batch_reset(b);
    for (int i = 0; i < 200; i++) {
        char k[32];
        snprintf(k, sizeof(k), "/t/f/batch%d", i);
        gp_etcd_op_t p = { .type = GP_ETCD_OP_PUT, .key = k, .value = "x", .value_len = 1 };
        gp_etcd_batch_add(b, &p, &err);
    }
    ok(gp_etcd_batch_run(b, 32, &err) == 0, "a batch of 200 puts works with a member down: %s", err.msg);
    gp_etcd_batch_destroy(&b);
    gp_etcd_destroy(&etcd);

    /* a client whose first endpoint is the dead member */
    gp_etcd_t *c2 = s_client(NULL);
    gp_etcd_cmp_t cmp = { .key = "/t/f/a", .target = GP_ETCD_CMP_VALUE, .result = GP_ETCD_CMP_EQUAL,
                          .value = "1", .value_len = 1 };
    gp_etcd_op_t put = { .type = GP_ETCD_OP_PUT, .key = "/t/f/c", .value = "3", .value_len = 1 };
    gp_etcd_txn_t txn = { &cmp, 1, &put, 1, NULL, 0 };
    ok(gp_etcd_txn(c2, &txn, &r, &err) == 0 && r.succeeded, "a new client fails over for a txn: %s", err.msg);
    gp_etcd_result_free(&r);
    gp_etcd_destroy(&c2);
}

/* ------------------------------------------------------------ tls */

static void suite_tls(void)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.ca_file = s_env("ETCD_CA");
    cfg.cert_file = s_env("ETCD_CERT");
    cfg.key_file = s_env("ETCD_KEY");
    cfg.request_timeout_ms = 3000;
    gp_etcd_t *etcd = s_client(&cfg);
    gp_err_t err;
    gp_etcd_result_t r;
    ok(gp_etcd_put(etcd, "/t/tls", "secret", 6, 0, NULL, &err) == 0, "put over TLS with a client certificate: %s",
       err.msg);
    ok(gp_etcd_get(etcd, "/t/tls", 0, &r, &err) == 0 && r.n_kvs == 1, "get over TLS");
    gp_etcd_result_free(&r);
    static s_seen_t seen;
    gp_etcd_watch_opts_t wo = { .key = "/t/tls", .start_revision = 1, .cb = s_watch_cb, .arg = &seen };
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    int64_t t0 = gp_mono_ms();
    while (seen.n < 1 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    is_int(seen.n, 1, "a watch over TLS");
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);

    cfg.cert_file = cfg.key_file = NULL;
    etcd = s_client(&cfg);
    ok(gp_etcd_get(etcd, "/t/tls", 0, &r, &err) < 0 && (err.code == GP_ERR_TRANSPORT || err.code == GP_ERR_TIMEOUT),
       "without a client certificate the server refuses: %s", err.msg);
    gp_etcd_destroy(&etcd);

    cfg.ca_file = NULL;
    cfg.cert_file = s_env("ETCD_CERT");
    cfg.key_file = s_env("ETCD_KEY");
    etcd = s_client(&cfg);
    ok(gp_etcd_get(etcd, "/t/tls", 0, &r, &err) < 0 && (err.code == GP_ERR_TRANSPORT || err.code == GP_ERR_TIMEOUT),
       "without the CA the server is not trusted: %s", err.msg);
    gp_etcd_destroy(&etcd);
}

/* ------------------------------------------------------------ auth */

static void suite_auth(void)
{
    gp_etcd_config_t cfg = GP_ETCD_CONFIG_INIT;
    cfg.username = s_env("ETCD_USER");
    cfg.password = s_env("ETCD_PASSWORD");
    gp_etcd_t *etcd = s_client(&cfg);
    gp_err_t err;
    gp_etcd_result_t r;
    ok(gp_etcd_put(etcd, "/t/auth", "v", 1, 0, NULL, &err) == 0, "put with user and password: %s", err.msg);
    static s_seen_t seen;
    gp_etcd_watch_opts_t wo = { .key = "/t/auth", .start_revision = 1, .cb = s_watch_cb, .arg = &seen };
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    int64_t t0 = gp_mono_ms();
    while (seen.n < 1 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    is_int(seen.n, 1, "a watch with authentication");
    gp_etcd_watch_destroy(&w);
    diag("waiting for the token to expire (--auth-token-ttl 1)");
    sleep(3);
    static s_seen_t late;
    gp_etcd_watch_opts_t wl = { .key = "/t/auth", .start_revision = 1, .cb = s_watch_cb, .arg = &late };
    w = gp_etcd_watch_new(etcd, &wl, &err);
    t0 = gp_mono_ms();
    while (late.n < 1 && late.errors == 0 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    ok(late.n == 1 && late.errors == 0, "a watch started with an expired token gets a new one");
    gp_etcd_watch_destroy(&w);
    ok(gp_etcd_get(etcd, "/t/auth", 0, &r, &err) == 0 && r.n_kvs == 1, "after the token expired: refreshed: %s",
       err.msg);
    gp_etcd_result_free(&r);
    gp_etcd_batch_t *b = gp_etcd_batch_new(etcd);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_PUT, .key = "/t/auth/b", .value = "x", .value_len = 1 };
    for (int i = 0; i < 10; i++)
        gp_etcd_batch_add(b, &op, &err);
    sleep(2);
    ok(gp_etcd_batch_run(b, 5, &err) == 0, "a batch after the token expired: %s", err.msg);
    gp_etcd_batch_destroy(&b);
    gp_etcd_destroy(&etcd);

    cfg.password = "wrong";
    etcd = s_client(&cfg);
    ok(gp_etcd_get(etcd, "/t/auth", 0, &r, &err) < 0 && err.code == GP_ERR_AUTH, "a wrong password is AUTH: %s",
       err.msg);
    gp_etcd_destroy(&etcd);
    cfg.username = NULL;
    cfg.password = NULL;
    etcd = s_client(&cfg);
    ok(gp_etcd_get(etcd, "/t/auth", 0, &r, &err) < 0 && err.code == GP_ERR_AUTH, "no credentials is AUTH: %s",
       err.msg);
    static s_seen_t refused;
    gp_etcd_watch_opts_t wr = { .key = "/t/auth", .start_revision = 1, .cb = s_watch_cb, .arg = &refused };
    w = gp_etcd_watch_new(etcd, &wr, &err);
    t0 = gp_mono_ms();
    while (refused.errors == 0 && refused.n == 0 && gp_mono_ms() - t0 < 5000)
        gp_etcd_step(etcd, 100, &err);
    ok(refused.errors == 1 && refused.n == 0, "a watch without credentials ends with an error, no events");
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);
}

int main(int argc, char **argv)
{
    gp_log_init("etcd_client_test", s_env("GP_DEBUG") ? GP_LOG_DEBUG : GP_LOG_ERROR);
    if (argc != 2) {
        fprintf(stderr, "usage: %s kv|lease|watch|watch-failover|failover|tls|auth\n", argv[0]);
        return 2;
    }
    const char *s = argv[1];
    if (strcmp(s, "kv") == 0) suite_kv();
    else if (strcmp(s, "lease") == 0) suite_lease();
    else if (strcmp(s, "watch") == 0) suite_watch();
    else if (strcmp(s, "watch-failover") == 0) suite_watch_failover();
    else if (strcmp(s, "failover") == 0) suite_failover();
    else if (strcmp(s, "tls") == 0) suite_tls();
    else if (strcmp(s, "auth") == 0) suite_auth();
    else bail_out("unknown suite %s", s);
    return done_testing();
}
