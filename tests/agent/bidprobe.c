/*
 * bidprobe - plays a coordinator against a real gpupool-agent (TAP).
 *
 *   bidprobe ETCD_ENDPOINTS REGION NODE METRICS_URL
 *
 * Registers itself in etcd as a coordinator of REGION (so the agent
 * connects), then checks the agent's bids for hand-made states: the node
 * has 4 GPUs joined by NVLink in pairs (0-1, 2-3); an allocation written
 * to etcd takes GPU 0 whole.  Then malformed messages, which the agent
 * must drop, count and survive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zmq.h>

#include "etcd.h"
#include "keys.h"
#include "tap.h"
#include "util.h"
#include "wire.h"

#include "banned.h"

static void *s_router;
static char s_agent[256];
static size_t s_agent_len;
static int64_t s_round;

/* Wait for a message of one type; 1 when it came. */
static int s_wait(gp_msg_type_t type, gp_wire_msg_t *msg, int ms)
{
    int64_t end = gp_mono_ms() + ms;
    while (gp_mono_ms() < end) {
        zmq_pollitem_t it = { s_router, 0, ZMQ_POLLIN, 0 };
        zmq_poll(&it, 1, 50);
        gp_err_t err;
        while (gp_wire_recv(s_router, msg, &err) == 1) {
            if (msg->type == type)
                return 1;
            gp_wire_msg_clear(msg);
        }
    }
    return 0;
}

/* Send one CFB with jobs and return the BIDS body (caller decrefs). */
static json_t *s_call(json_t *jobs)
{
    json_t *body = json_pack("{s:I,s:o}", "round", (json_int_t)++s_round, "jobs", jobs);
    gp_wire_send(s_router, s_agent, s_agent_len, GP_MSG_CFB, body, NULL);
    json_decref(body);
    gp_wire_msg_t msg;
    while (s_wait(GP_MSG_BIDS, &msg, 5000)) {
        if (json_integer_value(json_object_get(msg.body, "round")) == s_round) {
            json_t *b = json_incref(msg.body);
            gp_wire_msg_clear(&msg);
            return b;
        }
        gp_wire_msg_clear(&msg);
    }
    return NULL;
}

static json_t *s_job(const char *id, const char *spec_json, const char *node)
{
    json_t *spec = json_loads(spec_json, 0, NULL);
    return json_pack("{s:s,s:o,s:[s]}", "job", id, "spec", spec, "nodes", node);
}

static json_t *s_bid_for(json_t *bids, const char *job)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(bids, "bids"), i, b)
        if (!strcmp(json_string_value(json_object_get(b, "job")), job))
            return b;
    return NULL;
}

/* The device indexes of a bid's plan, as "2,3". */
static const char *s_devs(json_t *bid)
{
    static char buf[64];
    buf[0] = '\0';
    size_t i, o = 0;
    json_t *d;
    json_array_foreach(json_object_get(json_object_get(bid, "alloc"), "devices"), i, d)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(json_object_get(d, "index")));
    return buf;
}

static size_t s_sink(char *p, size_t sz, size_t n, void *arg)
{
    FILE *f = arg;
    return fwrite(p, sz, n, f);
}

static double s_metric(const char *url, const char *line_prefix)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    fclose(f);
    double sum = 0;
    for (char *l = text; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(l, line_prefix, strlen(line_prefix))) {
            char *sp = strrchr(l, ' ');
            if (sp)
                sum += strtod(sp + 1, NULL);
        }
        l = nl ? nl + 1 : NULL;
    }
    free(text);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        bail_out("usage: bidprobe ETCD_ENDPOINTS REGION NODE METRICS_URL");
    const char *region = argv[2], *node = argv[3], *metrics = argv[4];
    gp_etcd_config_t ec = GP_ETCD_CONFIG_INIT;
    ec.endpoints = argv[1];
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&ec, &err);
    void *ctx = zmq_ctx_new();
    s_router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(s_router, ZMQ_LINGER, &zero, sizeof zero);
    if (etcd == NULL || zmq_bind(s_router, "tcp://127.0.0.1:*") < 0)
        bail_out("setup failed");
    char ep[256], key[GP_KEY_MAX], val[512];
    size_t epl = sizeof ep;
    zmq_getsockopt(s_router, ZMQ_LAST_ENDPOINT, ep, &epl);
    snprintf(val, sizeof val, "{\"id\":\"probe\",\"region\":\"%s\",\"bid\":\"%s\",\"public_key\":\"\"}",
             region, ep);
    gp_etcd_put(etcd, gp_key_coordinator(key, GP_DEFAULT_PREFIX, region, "probe"), val, strlen(val),
                0, NULL, &err);

    gp_wire_msg_t msg;
    ok(s_wait(GP_MSG_HELLO, &msg, 10000), "the agent connects and says HELLO");
    memcpy(s_agent, msg.identity, msg.identity_len);
    s_agent_len = msg.identity_len;
    json_t *nodes = json_object_get(msg.body, "nodes");
    is_str(json_string_value(json_array_get(nodes, 0)), node, "HELLO names the node it hosts");
    gp_wire_msg_clear(&msg);

    /* Fill GPU 0 with a committed allocation. */
    snprintf(val, sizeof val,
             "{\"job\":\"filler\",\"node\":\"%s\",\"priority\":0,\"cpu_milli\":0,\"host_mem_mib\":0,"
             "\"devices\":[{\"uuid\":\"GPU-%s-0\",\"index\":0,\"mem_mib\":81920,"
             "\"compute_percent\":100,\"whole\":true}]}", node, node);
    gp_etcd_put(etcd, gp_key_alloc(key, GP_DEFAULT_PREFIX, node, "filler"), val, strlen(val), 0,
                NULL, &err);
    json_t *bids = NULL, *b = NULL;
    for (int i = 0; i < 50; i++) {   /* until the agent has seen the allocation */
        json_decref(bids);
        bids = s_call(json_pack("[o]", s_job("all4", "{\"id\":\"all4\",\"devices\":4}", node)));
        b = s_bid_for(bids, "all4");
        if (b && json_object_get(b, "refused"))
            break;
        usleep(100000);
    }
    ok(b && json_object_get(b, "refused"), "a 4-GPU job is refused once GPU 0 is taken");
    ok(b && strstr(json_string_value(json_object_get(b, "refused")) ?: "", "does not fit"),
       "with a reason: %s", b ? json_string_value(json_object_get(b, "refused")) : "-");
    json_decref(bids);

    /* One call for bids, many jobs. */
    char spec[512];
    json_t *jobs = json_array();
    json_array_append_new(jobs, s_job("pair", "{\"id\":\"pair\",\"devices\":2}", node));
    json_array_append_new(jobs, s_job("frac", "{\"id\":\"frac\",\"devices\":1,\"mem_mib\":40960,"
                                              "\"compute_percent\":50}", node));
    json_array_append_new(jobs, s_job("t4", "{\"id\":\"t4\",\"devices\":1,\"models\":[\"T4\"]}", node));
    snprintf(spec, sizeof spec, "{\"id\":\"uuid\",\"devices\":1,\"uuids\":[\"GPU-%s-1\"]}", node);
    json_array_append_new(jobs, s_job("uuid", spec, node));
    snprintf(spec, sizeof spec,
             "{\"id\":\"nouuid\",\"devices\":1,\"exclude_uuids\":[\"GPU-%s-1\",\"GPU-%s-2\"]}", node,
             node);
    json_array_append_new(jobs, s_job("nouuid", spec, node));
    json_array_append_new(jobs, s_job("ghost", "{\"id\":\"ghost\",\"devices\":1}", "no-such-node"));
    bids = s_call(jobs);
    ok(bids != NULL, "one BIDS answers the whole call");
    is_int(json_array_size(json_object_get(bids, "bids")), 6, "with an answer per (job, node)");
    b = s_bid_for(bids, "pair");
    is_str(s_devs(b), "2,3", "a 2-GPU job gets the free NVLink pair (2,3), not 1 and 2");
    ok(json_is_number(json_object_get(b, "score")), "a bid carries a score");
    b = s_bid_for(bids, "frac");
    ok(b && !json_object_get(b, "refused") && strcmp(s_devs(b), "0") != 0,
       "a fractional job bids on a free GPU (got %s)", s_devs(b));
    b = s_bid_for(bids, "t4");
    ok(b && json_object_get(b, "refused"), "a model the node lacks is refused");
    b = s_bid_for(bids, "uuid");
    is_str(s_devs(b), "1", "a UUID allow list is honoured");
    b = s_bid_for(bids, "nouuid");
    is_str(s_devs(b), "3", "a UUID deny list is honoured (0 is taken, 1 and 2 denied)");
    b = s_bid_for(bids, "ghost");
    is_str(b ? json_string_value(json_object_get(b, "refused")) : NULL, "unknown node",
           "a node the agent does not host is refused");
    json_decref(bids);

    /* Malformed messages are dropped and counted; the agent keeps working. */
    double before = s_metric(metrics, "gpupool_agent_protocol_errors_total");
    const char *bad[][3] = { { "gpupool/7", "CFB", "{}" },
                             { "gpupool/3", "CFB", "{not json" },
                             { "gpupool/3", "EXPLODE", "{}" },
                             { "gpupool/3", "CFB", "{\"round\":\"x\"}" } };
    for (size_t i = 0; i < GP_ARRAY_LEN(bad); i++) {
        zmq_send(s_router, s_agent, s_agent_len, ZMQ_SNDMORE);
        zmq_send(s_router, bad[i][0], strlen(bad[i][0]), ZMQ_SNDMORE);
        zmq_send(s_router, bad[i][1], strlen(bad[i][1]), ZMQ_SNDMORE);
        zmq_send(s_router, bad[i][2], strlen(bad[i][2]), 0);
    }
    bids = s_call(json_pack("[o]", s_job("after", "{\"id\":\"after\",\"devices\":1}", node)));
    ok(bids && s_bid_for(bids, "after"), "after malformed messages, the agent still bids");
    json_decref(bids);
    double after = s_metric(metrics, "gpupool_agent_protocol_errors_total");
    is_int((int64_t)(after - before), 4, "the 4 malformed messages were counted");

    gp_etcd_delete(etcd, gp_key_coordinator(key, GP_DEFAULT_PREFIX, region, "probe"), 0, NULL, NULL);
    zmq_close(s_router);
    zmq_ctx_term(ctx);
    gp_etcd_destroy(&etcd);
    return done_testing();
}
