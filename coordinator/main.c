/*
 * gpupool-coordinator - a regional coordinator.  Several run per region;
 * the elected leader places the region's jobs, every one serves the REST
 * API.  See coord.h for its modules.
 *
 * The loop polls the signal pipe, the API server, etcd's sockets (the pool
 * watch and the lease keep-alive), the ROUTER socket agents connect to,
 * and the ZAP handler that authenticates them.  After each wake-up it
 * drives etcd, reads agents' messages, serves HTTP, then stores the
 * submissions that arrived (one batch), and runs the election and the bid
 * round duties every 20 ms tick, and the round's at once when it asks to
 * (a job queued, every bid in, a deadline passed).
 *
 * Signals: SIGTERM/SIGINT answer what is waiting, resign (the lease is
 * revoked, so a standby takes over at once) and exit 0.  SIGHUP re-reads
 * the configuration: API principals, the audit log, authorized agent keys, log level and the
 * round's tuning take effect; the rest is reported as needing a restart.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "coord.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "ui.h"
#include "util.h"

#include "banned.h"

#define PROG "gpupool-coordinator"

static const gp_opt_t s_opts[] = {
    { "id", GP_OPT_STRING, offsetof(coord_cfg_t, id), "", 0, 0,
      "this coordinator's id, unique in the pool (default: host name)" },
    { "region", GP_OPT_STRING, offsetof(coord_cfg_t, region), "", 0, 0,
      "the region this coordinator serves (required)" },
    { "etcd-endpoints", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_endpoints),
      "http://127.0.0.1:2379", 0, 0, "etcd client URLs, comma-separated" },
    { "etcd-local-endpoints", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_local), "", 0, 0,
      "the etcd members in this daemon's own cloud, used first and returned to after a failover" },
    { "etcd-ca", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_ca), "", 0, 0, "CA bundle for https endpoints" },
    { "etcd-cert", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_cert), "", 0, 0, "client certificate" },
    { "etcd-key", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_key), "", 0, 0, "client key" },
    { "etcd-user", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_user), "", 0, 0, "etcd user name" },
    { "etcd-password", GP_OPT_STRING, offsetof(coord_cfg_t, etcd_password), "", 0, 0, "etcd password" },
    { "prefix", GP_OPT_STRING, offsetof(coord_cfg_t, prefix), GP_DEFAULT_PREFIX, 0, 0,
      "the pool's key prefix in etcd" },
    { "api-listen", GP_OPT_STRING, offsetof(coord_cfg_t, api_listen), "127.0.0.1:8080", 0, 0,
      "address:port of the REST API and /metrics (port 0: any free port)" },
    { "bid-listen", GP_OPT_STRING, offsetof(coord_cfg_t, bid_listen), "tcp://127.0.0.1:5555", 0, 0,
      "ZeroMQ endpoint agents connect to (port * or 0: any free port)" },
    { "api-tokens", GP_OPT_STRING, offsetof(coord_cfg_t, api_tokens), "", 0, 0,
      "file of API principals: hashed tokens and client certificates with their roles and teams "
      "(required; `gpupool keys token` writes entries)" },
    { "api-tls-cert", GP_OPT_STRING, offsetof(coord_cfg_t, api_tls_cert), "", 0, 0,
      "the API's TLS certificate chain (PEM): the API speaks HTTPS only (restart)" },
    { "api-tls-key", GP_OPT_STRING, offsetof(coord_cfg_t, api_tls_key), "", 0, 0,
      "the API's TLS private key (PEM; required with api-tls-cert) (restart)" },
    { "api-tls-client-ca", GP_OPT_STRING, offsetof(coord_cfg_t, api_tls_client_ca), "", 0, 0,
      "CA of client certificates (PEM): verified ones map to principals by cert:<CN> (restart)" },
    { "audit-log", GP_OPT_STRING, offsetof(coord_cfg_t, audit_log), "", 0, 0,
      "file of the audit log, one JSON line per mutating request (empty: the daemon's log)" },
    { "audit-log-size", GP_OPT_MIB, offsetof(coord_cfg_t, audit_log_size), "64", 1, 65536,
      "the audit log is rotated past this many MiB (3 old files kept)" },
    { "curve-key", GP_OPT_STRING, offsetof(coord_cfg_t, curve_key), "", 0, 0,
      "the coordinator's CURVE key pair (.key file); empty: agents connect without CURVE" },
    { "agent-keys", GP_OPT_STRING, offsetof(coord_cfg_t, agent_keys), "", 0, 0,
      "file of agent public keys allowed to bid (required with curve-key)" },
    { "lease-ttl", GP_OPT_DURATION, offsetof(coord_cfg_t, lease_ttl_ms), "5s", 2000, 600000,
      "the coordinator's lease: a dead leader is replaced within this (at least 2s)" },
    { "policy", GP_OPT_STRING, offsetof(coord_cfg_t, policy), "gpupool", 0, 0,
      "placement policy (jobs may name their own)" },
    { "shapes-half-life", GP_OPT_DURATION, offsetof(coord_cfg_t, shapes_half_life_ms), "1h", 1000,
      31536000000, "half-life of a job's weight in the learned typical shapes (restart)" },
    { "console-prometheus", GP_OPT_STRING, offsetof(coord_cfg_t, console_prometheus), "", 0, 0,
      "Prometheus URL the web console reads the pool's last hour from (empty: its own samples)" },
    { "candidates", GP_OPT_INT, offsetof(coord_cfg_t, candidates), "3", 1, 8,
      "nodes asked for a bid per job" },
    { "batch", GP_OPT_INT, offsetof(coord_cfg_t, batch), "1024", 1, 100000,
      "jobs per bid round at most" },
    { "bid-timeout", GP_OPT_DURATION, offsetof(coord_cfg_t, bid_timeout_ms), "250ms", 1, 60000,
      "how long a round waits for bids" },
    { "max-body", GP_OPT_MIB, offsetof(coord_cfg_t, max_body), "4", 1, 1024,
      "largest REST request body, MiB" },
    { "compaction-retention", GP_OPT_DURATION, offsetof(coord_cfg_t, compaction_retention_ms), "5m",
      0, 86400000, "etcd's history is compacted to this long ago (0: etcd's own flags do it)" },
    { "job-retention", GP_OPT_DURATION, offsetof(coord_cfg_t, job_retention_ms), "1h", 0,
      31536000000, "ended jobs' records stay this long (a job's ttl_after_finished_s overrides)" },
    { "job-retention-max", GP_OPT_INT, offsetof(coord_cfg_t, job_retention_max), "10000", 0,
      100000000, "ended jobs kept per region at most (the oldest go first)" },
    { "node-retention", GP_OPT_DURATION, offsetof(coord_cfg_t, node_retention_ms), "24h", 0,
      31536000000, "a node whose agent is gone stays listed, NotReady, this long (and jobs that "
      "only it could hold are still accepted)" },
    { "job-archive", GP_OPT_STRING, offsetof(coord_cfg_t, job_archive), "", 0, 0,
      "file the removed records of ended jobs are appended to (JSON lines; empty: none)" },
    { "defrag-threshold", GP_OPT_DOUBLE, offsetof(coord_cfg_t, defrag_threshold), "0", 0, 1,
      "defragment an etcd member when this fraction of its backend is unused (0: never)" },
    { "api-max-connections", GP_OPT_INT, offsetof(coord_cfg_t, api_max_connections), "1000", 1,
      100000, "REST API connections open at once, all clients together (restart)" },
    { "api-connections-per-client", GP_OPT_INT, offsetof(coord_cfg_t, api_connections_per_client),
      "64", 0, 100000, "REST API connections from one IP address (0: no limit) (restart)" },
    { "api-idle-timeout", GP_OPT_DURATION, offsetof(coord_cfg_t, api_idle_timeout_ms), "30s", 1000,
      3600000, "a REST API connection silent this long is closed (restart)" },
    { "api-header-timeout", GP_OPT_DURATION, offsetof(coord_cfg_t, api_header_timeout_ms), "10s",
      100, 3600000, "a request's header must arrive within this (restart)" },
    { "api-body-timeout", GP_OPT_DURATION, offsetof(coord_cfg_t, api_body_timeout_ms), "60s", 100,
      3600000, "a request's body must arrive within this after its header (restart)" },
    { "log-level", GP_OPT_STRING, offsetof(coord_cfg_t, log_level), "info", 0, 0,
      "debug, info, warn or error" },
    { "rightsize-mem-percentile", GP_OPT_DOUBLE, offsetof(coord_cfg_t, rightsize_mem_percentile),
      "95", 1, 100, "a job class's memory recommendation: this percentile of its runs' peaks" },
    { "rightsize-mem-margin", GP_OPT_DOUBLE, offsetof(coord_cfg_t, rightsize_mem_margin), "0.05", 0,
      10, "... plus this fraction of it" },
    { "rightsize-mem-granularity", GP_OPT_MIB, offsetof(coord_cfg_t, rightsize_granularity_mib),
      "128", 1, 1048576, "... rounded up to a multiple of this" },
    { "rightsize-compute-percentile", GP_OPT_DOUBLE,
      offsetof(coord_cfg_t, rightsize_compute_percentile), "90", 1, 100,
      "a job class's compute recommendation: this percentile of its busy windows' shares" },
    { "rightsize-compute-margin", GP_OPT_DOUBLE, offsetof(coord_cfg_t, rightsize_compute_margin), "0.15",
      0, 10, "... plus this fraction of it" },
    { "rightsize-min-runs", GP_OPT_INT, offsetof(coord_cfg_t, rightsize_min_runs), "3", 1, 1000000,
      "a job class is recommended for (and auto applied) from this many usage samples on" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

static coord_t s_coord;

gp_etcd_t *coord_etcd_new(coord_t *c, const char *endpoints, gp_err_t *err)
{
    gp_etcd_config_t ec;
    gp_etcd_config_from(&ec, endpoints, c->cfg.etcd_ca, c->cfg.etcd_cert, c->cfg.etcd_key,
                        c->cfg.etcd_user, c->cfg.etcd_password);
    gp_etcd_config_for_lease(&ec, c->cfg.lease_ttl_ms);
    if (endpoints == c->cfg.etcd_endpoints)   /* the main client, not a per-member one */
        ec.local_endpoints = c->cfg.etcd_local;
    return gp_etcd_new(&ec, err);
}

static int s_validate(coord_cfg_t *c, gp_err_t *err)
{
    if (c->id[0] == '\0') {
        char host[256];
        if (gethostname(host, sizeof host) < 0)
            return gp_err_errno(err, "gethostname");
        host[sizeof host - 1] = '\0';
        free(c->id);
        if ((c->id = strdup(host)) == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    if (!gp_name_valid(c->id))
        return gp_err_set(err, GP_ERR_INVALID, "id: \"%s\" must be 1..127 of [A-Za-z0-9._-]", c->id);
    if (c->region[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "region: required");
    if (!gp_name_valid(c->region))
        return gp_err_set(err, GP_ERR_INVALID, "region: \"%s\" must be 1..127 of [A-Za-z0-9._-]",
                          c->region);
    if (!gp_prefix_valid(c->prefix))
        return gp_err_set(err, GP_ERR_INVALID, "prefix: \"%s\" must start and end with '/'", c->prefix);
    if (c->api_tokens[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "api-tokens: required (the REST API needs a token)");
    if ((c->api_tls_cert[0] == '\0') != (c->api_tls_key[0] == '\0'))
        return gp_err_set(err, GP_ERR_INVALID, "api-tls-cert and api-tls-key: give both or neither");
    if (c->api_tls_client_ca[0] && c->api_tls_cert[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "api-tls-client-ca: needs api-tls-cert and api-tls-key");
    if (c->curve_key[0] && c->agent_keys[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "agent-keys: required with curve-key");
    if (c->console_prometheus[0] && strncmp(c->console_prometheus, "http://", 7) &&
        strncmp(c->console_prometheus, "https://", 8))
        return gp_err_set(err, GP_ERR_INVALID, "console-prometheus: expected an http:// or https:// URL, "
                          "got \"%s\"", c->console_prometheus);
    gp_log_level_t lv;
    if (gp_log_parse_level(c->log_level, &lv) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "log-level: unknown \"%s\"", c->log_level);
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = c->policy;
    gp_err_t perr;
    gp_placement_t *pl = gp_placement_new(&po, &perr);
    if (pl == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "policy: %s", perr.msg);
    gp_placement_destroy(&pl);
    coord_auth_t *auth = coord_auth_load(c->api_tokens, err);
    if (auth == NULL)
        return -1;
    coord_auth_destroy(&auth);
    return 0;
}

static void s_reload(coord_t *c, int argc, char **argv)
{
    coord_cfg_t next;
    memset(&next, 0, sizeof next);
    gp_config_cli_t cli;
    gp_err_t err;
    coord_auth_t *auth = NULL;
    coord_audit_t *audit = NULL;
    if (gp_config_reload(s_opts, &next, argc, argv, &cli, &err) < 0 || s_validate(&next, &err) < 0 ||
        (auth = coord_auth_load(next.api_tokens, &err)) == NULL ||
        (audit = coord_audit_new(next.audit_log, next.audit_log_size << 20, &err)) == NULL ||
        (c->zap && *next.agent_keys && gp_zap_reload(c->zap, next.agent_keys, &err) < 0)) {
        gp_log_error("reload refused, keeping the running configuration: %s", err.msg);
        coord_auth_destroy(&auth);
        coord_audit_destroy(&audit);
        gp_config_free(s_opts, &next);
        return;
    }
    static const char *const fixed[] = { "id", "region", "etcd-endpoints", "etcd-local-endpoints", "etcd-ca", "etcd-cert",
                                         "etcd-key", "etcd-user", "etcd-password", "prefix",
                                         "api-listen", "bid-listen", "curve-key", "policy",
                                         "shapes-half-life", "api-tls-cert", "api-tls-key",
                                         "api-tls-client-ca", NULL };
    gp_config_keep(s_opts, &c->cfg, &next, fixed);

    next.lease_ttl_ms = c->cfg.lease_ttl_ms;
    coord_auth_destroy(&c->auth);
    c->auth = auth;
    coord_audit_destroy(&c->audit);
    c->audit = audit;
    gp_log_info("api principals loaded count=%d", coord_auth_count(c->auth));
    gp_config_free(s_opts, &c->cfg);
    c->cfg = next;
    gp_log_level_t lv;
    gp_log_parse_level(c->cfg.log_level, &lv);
    gp_log_set_level(cli.verbose ? GP_LOG_DEBUG : lv);
    gp_log_info("configuration reloaded");
}

/* The ROUTER socket agents connect to, with CURVE and ZAP when configured. */
static void s_bind(coord_t *c)
{
    gp_err_t err;
    c->zctx = zmq_ctx_new();
    if (c->cfg.curve_key[0]) {
        if (gp_curve_load(c->cfg.curve_key, &c->keys, &err) < 0)
            gp_log_fatal(EX_CONFIG, "curve-key: %s", err.msg);
        if (c->keys.secret_key[0] == '\0')
            gp_log_fatal(EX_CONFIG, "curve-key %s has no secret key (use the .key file)",
                         c->cfg.curve_key);
        c->have_keys = 1;
        c->zap = gp_zap_new(c->zctx, c->cfg.agent_keys, &err);
        if (c->zap == NULL)
            gp_log_fatal(EX_CONFIG, "agent-keys: %s", err.msg);
    }
    c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
    int zero = 0, hwm = 100000, one = 1;
    int64_t maxmsg = (int64_t)GP_WIRE_MAX_BYTES + 4096;
    if (c->router == NULL || zmq_setsockopt(c->router, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
        zmq_setsockopt(c->router, ZMQ_SNDHWM, &hwm, sizeof hwm) < 0 ||
        zmq_setsockopt(c->router, ZMQ_RCVHWM, &hwm, sizeof hwm) < 0 ||
        zmq_setsockopt(c->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0 ||
        zmq_setsockopt(c->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one) < 0 ||
        (c->have_keys && gp_curve_server(c->router, &c->keys, &err) < 0))
        gp_log_fatal(EX_SOFTWARE, "bid socket: %s", zmq_strerror(zmq_errno()));
    char ep[256];
    gp_strlcpy(ep, c->cfg.bid_listen, sizeof ep);
    size_t el = strlen(ep);
    if (el > 2 && !strcmp(ep + el - 2, ":0"))
        ep[el - 1] = '*';   /* ZeroMQ says "any port" with '*' */
    if (zmq_bind(c->router, ep) < 0)
        gp_log_fatal(EX_UNAVAILABLE, "cannot bind bid-listen %s: %s", c->cfg.bid_listen,
                     zmq_strerror(zmq_errno()));
    size_t sz = sizeof c->bid_endpoint;
    zmq_getsockopt(c->router, ZMQ_LAST_ENDPOINT, c->bid_endpoint, &sz);
}

static void s_recv_agents(coord_t *c)
{
    for (int budget = 0; budget < 10000; budget++) {
        gp_wire_msg_t msg;
        gp_err_t err;
        int rc = gp_wire_recv_text(c->router, &msg, GP_MSG_BIDS, &err);   /* read in place: round.c */
        if (rc == 0)
            return;
        if (rc < 0) {
            gp_metric_inc(c->m.protocol_errors[COORD_PROTO_MESSAGE]);
            char agent[64];
            gp_log_warn("message dropped agent=%s reason=\"%s\"",
                        gp_wire_printable(msg.identity, msg.identity_len, agent, sizeof agent),
                        err.msg);
            continue;
        }
        if (msg.type == GP_MSG_LOGDATA)
            coord_logs_on_msg(c, &msg);
        else if (msg.type != GP_MSG_HELLO || coord_versions_hello(c, &msg) == 0)
            coord_round_on_msg(c, &msg);
        gp_wire_msg_clear(&msg);
    }
}

static int s_run(coord_t *c, int argc, char **argv)
{
    gp_err_t err;
    gp_daemon_memory_init();
    if (gp_daemon_signals_init(&err) < 0)
        gp_log_fatal(EX_OSERR, "%s", err.msg);
    static const char *const faults[] = { "GPUPOOL_FAULT_COMMIT_PAUSE_MS",
                                          "GPUPOOL_FAULT_HANDOFF_PAUSE_MS",
                                          "GPUPOOL_FAULT_BUSY_MS",
                                          "GPUPOOL_FAULT_WATCH_LAG_MS",
                                          "GPUPOOL_FAULT_RELIST_WAITING",
                                          "GPUPOOL_FAULT_COMMIT_HOLD_MS" };
    int64_t *pauses[] = { &c->fault_pause_ms, &c->fault_handoff_pause_ms, &c->fault_busy_ms,
                          &c->fault_watch_lag_ms, &c->fault_relist_waiting, &c->fault_hold_ms };
    c->fault_queue_drop = getenv("GPUPOOL_FAULT_QUEUE_DROP");
    c->fault_commit_lost = getenv("GPUPOOL_FAULT_COMMIT_LOST");
    for (size_t i = 0; i < GP_ARRAY_LEN(faults); i++) {
        const char *fault = getenv(faults[i]);
        if (fault && gp_parse_int64(fault, 0, 600000, pauses[i]) < 0)
            gp_log_fatal(EX_CONFIG, "%s: expected %s, got \"%s\"", faults[i],
                         pauses[i] == &c->fault_relist_waiting ? "a count" : "milliseconds", fault);
    }
    c->metrics = gp_metrics_new();
    c->auth = coord_auth_load(c->cfg.api_tokens, &err);
    if (c->metrics == NULL || c->auth == NULL)
        gp_log_fatal(EX_CONFIG, "%s", c->auth ? "out of memory" : err.msg);
    c->audit = coord_audit_new(c->cfg.audit_log, c->cfg.audit_log_size << 20, &err);
    if (c->audit == NULL)
        gp_log_fatal(EX_CONFIG, "%s", err.msg);
    if (coord_metrics_init(&c->m, c->metrics, &err) < 0)
        gp_log_fatal(EX_SOFTWARE, "%s", err.msg);
    c->etcd = coord_etcd_new(c, c->cfg.etcd_endpoints, &err);
    if (c->etcd == NULL)
        gp_log_fatal(EX_CONFIG, "etcd: %s", err.msg);
    char addr[64];
    int port;
    if (gp_parse_hostport(c->cfg.api_listen, addr, sizeof addr, &port) < 0)
        gp_log_fatal(EX_CONFIG, "api-listen: expected ADDRESS:PORT, got \"%s\"", c->cfg.api_listen);
    gp_httpd_limits_t lim = {
        .max_body = (size_t)c->cfg.max_body << 20,
        .max_connections = (unsigned)c->cfg.api_max_connections,
        .per_client = (unsigned)c->cfg.api_connections_per_client,
        .idle_timeout_s = (unsigned)((c->cfg.api_idle_timeout_ms + 999) / 1000),
        .header_timeout_ms = c->cfg.api_header_timeout_ms,
        .body_timeout_ms = c->cfg.api_body_timeout_ms,
    };
    gp_httpd_tls_t tls = { c->cfg.api_tls_cert, c->cfg.api_tls_key, c->cfg.api_tls_client_ca };
    c->httpd = gp_httpd_new_tls(addr, port, &lim, c->cfg.api_tls_cert[0] ? &tls : NULL, coord_http,
                                c, &err);
    if (c->httpd == NULL)
        gp_log_fatal(EX_UNAVAILABLE, "api: %s", err.msg);
    gp_httpd_set_observer(c->httpd, coord_audit_observe, c);
    gp_log_info("api listening port=%d tls=%s client_certificates=%s principals=%d audit=%s",
                gp_httpd_port(c->httpd), c->cfg.api_tls_cert[0] ? "yes" : "no",
                c->cfg.api_tls_client_ca[0] ? "yes" : "no", coord_auth_count(c->auth),
                c->cfg.audit_log[0] ? c->cfg.audit_log : "log");
    s_bind(c);
    if (coord_versions_init(c, &err) < 0)
        gp_log_fatal(EX_CONFIG, "GPUPOOL_FAULT_PROTOCOLS: %s", err.msg);
    if (coord_store_start(c, &err) < 0 || coord_round_start(c, &err) < 0 ||
        coord_election_start(c, &err) < 0)
        gp_log_fatal(EX_SOFTWARE, "%s", err.msg);
    /* The cache must be listed before anything is decided; retry until etcd answers. */
    for (int64_t backoff = 250; coord_cache_start(c, &err) < 0; backoff = backoff < 4000 ? backoff * 2 : 4000) {
        gp_log_warn("cannot list the pool yet, retrying err=\"%s\"", err.msg);
        if (gp_daemon_take_signals() & GP_SIG_STOP)
            goto out;
        usleep((useconds_t)backoff * 1000);
    }
    int ready = 0;
    int64_t next_tick = 0, busy_from_ns = 0;
    for (;;) {
        zmq_pollitem_t items[80];
        struct pollfd pfds[64];
        int n = 0, etcd_to = -1;
        items[n++] = (zmq_pollitem_t){ NULL, gp_daemon_signal_fd(), ZMQ_POLLIN, 0 };
        items[n++] = (zmq_pollitem_t){ NULL, gp_httpd_fd(c->httpd), ZMQ_POLLIN, 0 };
        items[n++] = (zmq_pollitem_t){ c->router, 0, ZMQ_POLLIN, 0 };
        if (c->zap)
            items[n++] = (zmq_pollitem_t){ gp_zap_socket(c->zap), 0, ZMQ_POLLIN, 0 };
        int ne = gp_etcd_pollfds(c->etcd, pfds, 64, &etcd_to);
        for (int i = 0; i < ne && i < 64; i++)
            items[n++] = (zmq_pollitem_t){ NULL, pfds[i].fd,
                                           (short)((pfds[i].events & POLLIN ? ZMQ_POLLIN : 0) |
                                                   (pfds[i].events & POLLOUT ? ZMQ_POLLOUT : 0)), 0 };
        int64_t now = gp_mono_ms();
        int64_t wake = next_tick;
        int64_t rd = coord_round_deadline(c);
        if (rd && rd < wake)
            wake = rd;
        long timeout = wake > now ? (long)(wake - now) : 0;
        if (etcd_to >= 0 && etcd_to < timeout)
            timeout = etcd_to;
        int ht = gp_httpd_timeout_ms(c->httpd);
        if (ht >= 0 && ht < timeout)
            timeout = ht;
        if (coord_intake_pending(c))
            timeout = 0;
        if (busy_from_ns)
            gp_metric_observe(c->m.loop_busy, (double)(gp_mono_ns() - busy_from_ns) / 1e9);
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR)
            gp_log_warn("zmq_poll: %s", zmq_strerror(zmq_errno()));
        busy_from_ns = gp_mono_ns();

        unsigned sig = gp_daemon_take_signals();
        if (sig & GP_SIG_STOP) {
            gp_log_info("stopping on signal");
            gp_daemon_notify("STOPPING=1");
            break;
        }
        if (sig & GP_SIG_RELOAD) {
            gp_daemon_notify("RELOADING=1");
            s_reload(c, argc, argv);
            gp_daemon_notify("READY=1");
        }
        if (gp_etcd_step(c->etcd, 0, &err) < 0)
            gp_log_warn("etcd: %s", err.msg);
        if (c->zap)
            gp_zap_handle(c->zap);
        s_recv_agents(c);
        gp_httpd_run(c->httpd);
        coord_intake_flush(c);
        now = gp_mono_ms();
        rd = coord_round_deadline(c);   /* bids or jobs that came in this wake-up */
        if (now < next_tick && rd && now >= rd) {
            coord_round_tick(c);
        } else if (now >= next_tick) {
            coord_cache_tick(c);
            coord_election_tick(c);
            coord_store_tick(c);
            coord_drain_tick(c);
            coord_versions_tick(c);
            coord_notready_tick(c);
            coord_logs_tick(c);
            coord_ui_tick(c);
            gp_daemon_trim_memory();
            coord_round_tick(c);
            next_tick = now + 20;
            if (!ready && coord_is_registered(c)) {
                ready = 1;
                gp_daemon_ready(PROG, "id=%s region=%s api=%d bid=%s", c->cfg.id, c->cfg.region,
                                gp_httpd_port(c->httpd), c->bid_endpoint);
            }
        }
    }
out:
    coord_intake_stop(c);
    coord_logs_stop(c);
    coord_ui_stop(c);
    coord_round_stop(c);
    coord_recovery_stop(c);
    coord_notready_stop(c);
    coord_election_stop(c);
    coord_cache_stop(c);
    coord_versions_stop(c);
    coord_store_stop(c);
    gp_etcd_destroy(&c->etcd);
    gp_httpd_destroy(&c->httpd);
    gp_zap_destroy(&c->zap);
    if (c->router)
        zmq_close(c->router);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    coord_auth_destroy(&c->auth);
    coord_audit_destroy(&c->audit);
    gp_metrics_destroy(&c->metrics);
    gp_config_free(s_opts, &c->cfg);
    gp_log_info("stopped");
    return EX_OK;
}

int main(int argc, char **argv)
{
    gp_log_init(PROG, GP_LOG_INFO);
    coord_t *c = &s_coord;
    gp_config_cli_t cli;
    gp_err_t err;
    if (gp_config_load(s_opts, &c->cfg, argc, argv, &cli, &err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        return err.status == GP_CONFIG_IN_FILE ? EX_CONFIG : EX_USAGE;
    }
    if (cli.action == GP_CONFIG_HELP) {
        gp_config_usage(stdout, PROG, "A gpupool regional coordinator: job intake (REST), "
                                      "leader election, bid rounds, fenced commits.", s_opts);
        gp_config_free(s_opts, &c->cfg);
        return EX_OK;
    }
    if (cli.action == GP_CONFIG_VERSION) {
        printf("%s %s\n", PROG, GP_VERSION);
        gp_config_free(s_opts, &c->cfg);
        return EX_OK;
    }
    if (s_validate(&c->cfg, &err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        gp_config_free(s_opts, &c->cfg);
        return EX_CONFIG;
    }
    gp_log_level_t lv;
    gp_log_parse_level(c->cfg.log_level, &lv);
    gp_log_set_level(cli.verbose ? GP_LOG_DEBUG : lv);
    if (cli.action == GP_CONFIG_CHECK) {
        gp_curve_keys_t keys;
        if (*c->cfg.curve_key && gp_curve_load(c->cfg.curve_key, &keys, &err) < 0) {
            fprintf(stderr, "%s: curve-key: %s\n", PROG, err.msg);
            gp_config_free(s_opts, &c->cfg);
            return EX_CONFIG;
        }
        printf("%s: configuration OK\n", PROG);
        gp_config_free(s_opts, &c->cfg);
        return EX_OK;
    }
    return s_run(c, argc, argv);
}
