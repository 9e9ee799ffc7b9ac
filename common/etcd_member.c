/*
 * etcd_member.c - one etcd member as seen from here: how far it is, its
 * role, the round trips it measures to its peers and the raft timing it
 * runs with (gp_etcd_member_report, for `gpupool doctor`).
 *
 * Distance: a serializable read of one key is answered by the member from
 * its own copy, so its time is the network round trip plus the member's
 * own work; a linearizable read also waits for the member to confirm its
 * leader's commit index (a round trip from a follower to the raft leader).
 * The first request of each kind is not counted (it opens the connection).
 *
 * Peers: etcd measures the round trip to each peer itself and publishes it
 * on /metrics as the histogram etcd_network_peer_round_trip_time_seconds
 * (label To = the peer's id); the report keeps the largest mean.
 *
 * Timing: etcd 3.4 publishes its command line on /debug/vars; the report
 * reads --heartbeat-interval and --election-timeout there (either
 * "--flag value" or "--flag=value").  A member configured through its
 * environment or a config file shows neither: the report says unknown (-1)
 * and the caller assumes etcd's defaults, saying so.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "util.h"
#include "banned.h"

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t s_collect(char *data, size_t size, size_t nmemb, void *arg)
{
    gp_ebuf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > ((size_t)8 << 20))
        return 0;
    return gp_ebuf_add(b, data, n) < 0 ? 0 : n;
}

/* GET url into b (NUL-terminated); 0 on HTTP 200. */
static int s_fetch(const gp_etcd_config_t *cfg, const char *url, gp_ebuf_t *b)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    b->len = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    if (cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
    }
    long status = 0;
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK || status != 200 || gp_ebuf_add(b, "", 1) < 0)
        return -1;
    b->len--;
    return 0;
}

/* The largest mean of etcd_network_peer_round_trip_time_seconds over the
 * peers, in ms, or -1. */
static double s_peer_rtt(const char *metrics)
{
    static const char name[] = "etcd_network_peer_round_trip_time_seconds_";
    double best = -1;
    for (const char *l = metrics; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, name, sizeof name - 1) != 0 || strncmp(l + sizeof name - 1, "sum{", 4) != 0)
            continue;
        const char *lab = l + sizeof name - 1 + 3, *end = strchr(lab, '}');
        if (!end)
            continue;
        double sum = strtod(end + 1, NULL), count = 0;
        /* the count line of the same labels */
        char want[256];
        snprintf(want, sizeof want, "%scount%.*s", name, (int)(end - lab + 1), lab);
        const char *c = strstr(metrics, want);
        if (c)
            count = strtod(c + strlen(want), NULL);
        if (count > 0 && sum / count * 1000 > best)
            best = sum / count * 1000;
    }
    return best;
}

/* A flag's value in the member's command line, or -1. */
static int s_cmdline_flag(json_t *cmdline, const char *flag)
{
    size_t i, n = strlen(flag);
    json_t *v;
    json_array_foreach(cmdline, i, v) {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        const char *val = NULL;
        if (!strcmp(s, flag))
            val = json_string_value(json_array_get(cmdline, i + 1));
        else if (!strncmp(s, flag, n) && s[n] == '=')
            val = s + n + 1;
        int64_t x;
        if (val && gp_parse_int64(val, 1, 1000000, &x) == 0)
            return (int)x;
    }
    return -1;
}

int gp_etcd_member_report(const gp_etcd_config_t *cfg, int samples, gp_etcd_member_report_t *out,
                          gp_err_t *err)
{
    gp_etcd_member_report_t r = { .peer_rtt_ms = -1, .heartbeat_ms = -1, .election_ms = -1 };
    gp_etcd_t *etcd = NULL;
    gp_ebuf_t b = { 0 };
    double *t = NULL;
    int rc = -1;
    if (samples < 1)
        samples = 1;
    if (!(t = calloc((size_t)samples, sizeof *t))) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!(etcd = gp_etcd_new(cfg, err)))
        goto cleanup;
    if (etcd->n_endpoints != 1) {
        gp_err_set(err, GP_ERR_INVALID, "a member report names one endpoint");
        goto cleanup;
    }
    for (int lin = 0; lin < 2; lin++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = "\0", .key_len = 1,
                            .flags = GP_ETCD_COUNT_ONLY | (lin ? 0 : GP_ETCD_SERIALIZABLE) };
        for (int i = -1; i < samples; i++) {
            gp_etcd_result_t res;
            int64_t t0 = gp_mono_ns();
            if (gp_etcd_do(etcd, &op, &res, err) < 0)
                goto cleanup;
            gp_etcd_result_free(&res);
            if (i >= 0)
                t[i] = (double)(gp_mono_ns() - t0) / 1e6;
        }
        qsort(t, (size_t)samples, sizeof *t, s_cmp_double);
        if (lin) {
            r.read_ms = t[samples / 2];
        } else {
            r.rtt_min_ms = t[0];
            r.rtt_ms = t[samples / 2];
        }
    }
    gp_etcd_store_status_t st;
    if (gp_etcd_store_status(etcd, &st, err) < 0)
        goto cleanup;
    r.is_leader = st.is_leader;
    char url[1100];
    snprintf(url, sizeof url, "%s/metrics", etcd->endpoints[0]);
    if (s_fetch(cfg, url, &b) == 0)
        r.peer_rtt_ms = s_peer_rtt(b.p);
    snprintf(url, sizeof url, "%s/debug/vars", etcd->endpoints[0]);
    if (s_fetch(cfg, url, &b) == 0) {
        json_t *j = json_loadb(b.p, b.len, 0, NULL);
        json_t *cmd = json_object_get(j, "cmdline");
        if (json_is_array(cmd)) {
            r.heartbeat_ms = s_cmdline_flag(cmd, "--heartbeat-interval");
            r.election_ms = s_cmdline_flag(cmd, "--election-timeout");
        }
        json_decref(j);
    }
    *out = r;
    rc = 0;
cleanup:
    gp_ebuf_free(&b);
    free(t);
    gp_etcd_destroy(&etcd);
    return rc;
}
