/*
 * logs.c - GET /v1/jobs/<id>/logs: a job's stdout and stderr, from its node.
 *
 * The logs stay on the node (the agent's state-dir, for log-retention after
 * the job ended); the coordinator fetches them over the channel it already
 * has with the node's agent (wire.h: LOGS, answered by LOGDATA), so that
 * agents open no port of their own and hold no user credentials: the API
 * principal is checked here, as for reading the job whole (its team or an
 * operator, auth.h).
 *
 *   1. The job's node: its allocation's, else its record's (an ended job
 *      keeps it).  None yet: 409.
 *   2. Only the coordinators of the node's region talk to its agent: for a
 *      node of another region the answer is 421 naming that region's
 *      coordinators' APIs (the CLI moves on to its next endpoint, as it
 *      does for an endpoint that is down).  A NotReady node, or an agent
 *      not connected here: 503.
 *   3. The request is held (httpd.h allows a later answer) and LOGS sent
 *      to the agent with a number of our own; the LOGDATA that carries the
 *      number, from that same agent, answers it.  None within 5 s: 504.
 *
 * Query: stdout=OFFSET and/or stderr=OFFSET (the streams wanted, from
 * where; neither: both from 0), tail=N (the last N lines of each instead),
 * run=RUN (a run named by an earlier answer; default the latest).  The
 * answer: {"job", "node", "run", "running", "stdout": {"data", "offset"},
 * "stderr": {...}}: text, and the offsets to ask from next.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define S_TIMEOUT_MS 5000
#define S_AGENT_STALE_MS 10000   /* as round.c: no HELLO for this long, not connected */
#define S_MAX_PENDING 256

typedef struct {
    int64_t id;
    gp_http_req_t *req;
    char agent[GP_NAME_LEN];
    char job[GP_NAME_LEN], node[GP_NAME_LEN];
    int64_t deadline_ms;
} s_pending_t;

/* The requests waiting for their agent's answer (c->logs, made at the
 * first request, freed at stop). */
struct coord_logs {
    s_pending_t pending[S_MAX_PENDING];
    int n;
    int64_t next_id;
};

/* 421 for a node of another region: where to ask instead. */
static void s_misdirected(coord_t *c, gp_http_req_t *req, const char *node, const char *region)
{
    json_t *apis = json_array();
    size_t rl = strlen(region);
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_COORDINATORS); it.key;
         it = coord_cache_next(c, it)) {
        if (strncmp(it.key, region, rl) != 0 || it.key[rl] != '/')
            continue;
        json_t *v = json_loads(it.value, 0, NULL);
        const char *api = json_string_value(json_object_get(v, "api"));
        if (api && *api)
            json_array_append_new(apis, json_string(api));
        json_decref(v);
    }
    char msg[300];
    snprintf(msg, sizeof msg, "node %s is in region %s: its logs are served by that region's "
                              "coordinators (api)", node, region);
    coord_respond_json(req, 421, json_pack("{s:s,s:o}", "error", msg, "api", apis));
}

void coord_logs_http(coord_t *c, gp_http_req_t *req, const char *id)
{
    coord_job_t *j = coord_cache_job(c, id);
    if (j == NULL || j->raw == NULL) {
        gp_http_respond_error(req, 404, "no job %s", id);
        return;
    }
    if (coord_auth_job(c, req, id, j->owner, "read") < 0)
        return;
    const char *node = NULL;
    coord_cache_state(c, j, &node);
    if (node == NULL || node[0] == '\0') {
        gp_http_respond_error(req, 409, "job %s has not run on a node yet", id);
        return;
    }
    coord_node_t *n = coord_cache_node(c, node, 0);
    if (n && n->region[0] && strcmp(n->region, c->cfg.region) != 0) {
        s_misdirected(c, req, node, n->region);
        return;
    }
    if (n == NULL || !n->present) {
        gp_http_respond_error(req, 503, "node %s is %s: its logs are on it", node,
                              n ? "NotReady" : "gone");
        return;
    }
    if (n->agent[0] == '\0' || gp_mono_ms() - n->agent_seen_ms > S_AGENT_STALE_MS) {
        gp_http_respond_error(req, 503, "the agent of node %s is not connected to this coordinator",
                              node);
        return;
    }
    if (c->logs == NULL && (c->logs = calloc(1, sizeof *c->logs)) != NULL)
        c->logs->next_id = 1;
    if (c->logs == NULL || c->logs->n == S_MAX_PENDING) {
        gp_http_respond_error(req, 503, "too many log requests in flight; try again");
        return;
    }
    json_t *q = json_pack("{s:I,s:s,s:s}", "req", (json_int_t)c->logs->next_id, "job", id, "node", node);
    static const char *const streams[] = { "stdout", "stderr" };
    int asked = 0;
    for (int i = 0; i < 2; i++) {
        const char *v = gp_http_req_query(req, streams[i]);
        int64_t off;
        if (v && gp_parse_int64(v, 0, INT64_MAX, &off) < 0) {
            json_decref(q);
            gp_http_respond_error(req, 400, "%s: expected an offset (an integer >= 0)", streams[i]);
            return;
        }
        if (v) {
            json_object_set_new(q, streams[i], json_integer(off));
            asked++;
        }
    }
    for (int i = 0; i < 2 && asked == 0; i++)
        json_object_set_new(q, streams[i], json_integer(0));
    const char *tail = gp_http_req_query(req, "tail"), *run = gp_http_req_query(req, "run");
    int64_t lines;
    if (tail && gp_parse_int64(tail, 0, 1000000, &lines) < 0) {
        json_decref(q);
        gp_http_respond_error(req, 400, "tail: expected a number of lines (0..1000000)");
        return;
    }
    if (tail)
        json_object_set_new(q, "tail", json_integer(lines));
    if (run && !gp_name_valid(run)) {
        json_decref(q);
        gp_http_respond_error(req, 400, "run: not a run of this job");
        return;
    }
    if (run)
        json_object_set_new(q, "run", json_string(run));
    gp_err_t err;
    int rc = gp_wire_send(c->router, n->agent, strlen(n->agent), GP_MSG_LOGS, q, &err);
    json_decref(q);
    if (rc < 0) {
        gp_http_respond_error(req, 503, "cannot ask the agent of node %s: %s", node, err.msg);
        return;
    }
    s_pending_t *p = &c->logs->pending[c->logs->n++];
    p->id = c->logs->next_id++;
    p->req = req;
    gp_strlcpy(p->agent, n->agent, sizeof p->agent);
    gp_strlcpy(p->job, id, sizeof p->job);
    gp_strlcpy(p->node, node, sizeof p->node);
    p->deadline_ms = gp_mono_ms() + S_TIMEOUT_MS;
}

static void s_remove(coord_logs_t *l, int i)
{
    l->pending[i] = l->pending[--l->n];
}

void coord_logs_on_msg(coord_t *c, gp_wire_msg_t *msg)
{
    int64_t id = json_integer_value(json_object_get(msg->body, "req"));
    coord_logs_t *l = c->logs;
    for (int i = 0; l && i < l->n; i++) {
        s_pending_t *p = &l->pending[i];
        if (p->id != id)
            continue;
        if (strlen(p->agent) != msg->identity_len ||
            memcmp(p->agent, msg->identity, msg->identity_len) != 0)
            break;   /* not the agent asked: dropped below */
        const char *why = json_string_value(json_object_get(msg->body, "error"));
        if (why) {
            gp_http_respond_error(p->req, 404, "job %s on node %s: %s", p->job, p->node, why);
        } else {
            json_t *ans = json_deep_copy(msg->body);
            json_object_del(ans, "req");
            json_object_set_new(ans, "node", json_string(p->node));
            coord_respond_json(p->req, 200, ans);
        }
        s_remove(l, i);
        return;
    }
    gp_metric_inc(c->m.protocol_errors[COORD_PROTO_UNEXPECTED_TYPE]);
}

void coord_logs_tick(coord_t *c)
{
    coord_logs_t *l = c->logs;
    int64_t now = gp_mono_ms();
    for (int i = l ? l->n - 1 : -1; i >= 0; i--) {
        if (now < l->pending[i].deadline_ms)
            continue;
        gp_http_respond_error(l->pending[i].req, 504, "the agent of node %s did not answer",
                              l->pending[i].node);
        s_remove(l, i);
    }
}

void coord_logs_stop(coord_t *c)
{
    coord_logs_t *l = c->logs;
    for (int i = 0; l && i < l->n; i++)
        gp_http_respond_error(l->pending[i].req, 503, "the coordinator is stopping");
    free(l);
    c->logs = NULL;
}
