/*
 * gpupool-agent - the node agent: one per GPU node (or one per N virtual
 * nodes with --simulate N).  See agent.h for its modules.
 *
 * The loop.  One thread polls, with zmq_poll, the signal pipe, the metrics
 * server, etcd's sockets (watches and the lease keep-alive) and one ZeroMQ
 * socket per coordinator.  After every wake-up it drives etcd's background
 * work and answers calls for bids; every tick (100 ms) it runs the
 * registry, bidder and jobs duties.  Nothing blocks
 * for long: etcd requests have deadlines, and batches bound their work.
 *
 * Signals: SIGTERM/SIGINT stop taking work and exit 0; running jobs keep
 * running (their supervisors hold them) and are adopted by the next agent.
 * SIGHUP re-reads the configuration: the log level, labels, intervals,
 * stop grace and runner take effect; options that need a restart (etcd,
 * names, simulate, keys) are reported and keep their old values.
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

#include "agent.h"
#include "config.h"
#include "daemon.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define PROG "gpupool-agent"

static const gp_opt_t s_opts[] = {
    { "name", GP_OPT_STRING, offsetof(agent_cfg_t, name), "", 0, 0,
      "node name (default: the host name); with --simulate, the prefix of the virtual nodes' names" },
    { "region", GP_OPT_STRING, offsetof(agent_cfg_t, region), "default", 0, 0, "region of the node" },
    { "zone", GP_OPT_STRING, offsetof(agent_cfg_t, zone), "", 0, 0, "zone of the node" },
    { "cloud", GP_OPT_STRING, offsetof(agent_cfg_t, cloud), "", 0, 0, "cloud of the node" },
    { "cluster", GP_OPT_STRING, offsetof(agent_cfg_t, cluster), "", 0, 0, "cluster of the node" },
    { "labels", GP_OPT_STRING, offsetof(agent_cfg_t, labels), "", 0, 0, "node labels, k=v,k2=v2" },
    { "cpu-milli", GP_OPT_INT, offsetof(agent_cfg_t, cpu_milli), "0", 0, 100000000,
      "CPU offered, thousandths of a core (0: all cores)" },
    { "memory", GP_OPT_MIB, offsetof(agent_cfg_t, mem_mib), "0", 0, 0,
      "host memory offered (0: all of it)" },
    { "oversubscription", GP_OPT_DOUBLE, offsetof(agent_cfg_t, oversub), "1.0", 1, 8,
      "device memory offered to slices, as a multiple of the physical memory" },
    { "etcd-endpoints", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_endpoints),
      "http://127.0.0.1:2379", 0, 0, "etcd client URLs, comma-separated" },
    { "etcd-local-endpoints", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_local), "", 0, 0,
      "the etcd members in this daemon's own cloud, used first and returned to after a failover" },
    { "etcd-ca", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_ca), "", 0, 0, "CA bundle for https endpoints" },
    { "etcd-cert", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_cert), "", 0, 0, "client certificate" },
    { "etcd-key", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_key), "", 0, 0, "client key" },
    { "etcd-user", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_user), "", 0, 0, "etcd user name" },
    { "etcd-password", GP_OPT_STRING, offsetof(agent_cfg_t, etcd_password), "", 0, 0, "etcd password" },
    { "prefix", GP_OPT_STRING, offsetof(agent_cfg_t, prefix), GP_DEFAULT_PREFIX, 0, 0,
      "the pool's key prefix in etcd" },
    { "lease-ttl", GP_OPT_DURATION, offsetof(agent_cfg_t, lease_ttl_ms), "10s", 2000, 600000,
      "lease of the node records: a dead agent's node vanishes after this" },
    { "state-dir", GP_OPT_STRING, offsetof(agent_cfg_t, state_dir), "/var/lib/gpupool/agent", 0, 0,
      "jobs' folders (pid, exit status, logs) and slice accounting regions" },
    { "shim", GP_OPT_STRING, offsetof(agent_cfg_t, shim), "/usr/lib/gpupool/libgpupool-shim.so", 0,
      0, "the shim preloaded into jobs, as LD_PRELOAD takes it (empty: none)" },
    { "compute-mode", GP_OPT_STRING, offsetof(agent_cfg_t, compute_mode), "cap", 0, 0,
      "compute_percent of jobs that name no compute_mode: cap (a ceiling) or share (a guarantee)" },
    { "runner", GP_OPT_STRING, offsetof(agent_cfg_t, runner), "", 0, 0,
      "run jobs through this /bin/sh command; {command}, {job} and {dir} are replaced" },
    { "stop-grace", GP_OPT_DURATION, offsetof(agent_cfg_t, stop_grace_ms), "30s", 0, 3600000,
      "time between SIGTERM and SIGKILL when a job that names no grace_s is stopped" },
    { "restart-backoff", GP_OPT_DURATION, offsetof(agent_cfg_t, restart_backoff_ms), "10s", 0,
      3600000, "a job restarted by its policy waits this long the first time, twice as long "
      "each next time (as Kubernetes' CrashLoopBackOff)" },
    { "restart-backoff-max", GP_OPT_DURATION, offsetof(agent_cfg_t, restart_backoff_max_ms), "5m",
      0, 86400000, "the longest wait before a restart" },
    { "restart-backoff-reset", GP_OPT_DURATION, offsetof(agent_cfg_t, restart_backoff_reset_ms),
      "10m", 0, 86400000, "a run this long starts the backoff again from restart-backoff" },
    { "log-retention", GP_OPT_DURATION, offsetof(agent_cfg_t, log_retention_ms), "24h", 0,
      INT64_C(365) * 24 * 3600 * 1000, "how long ended jobs' folders (logs) are kept in state-dir/done" },
    { "metrics-listen", GP_OPT_STRING, offsetof(agent_cfg_t, metrics_listen), "127.0.0.1:9464", 0, 0,
      "address:port of /metrics (port 0: any free port; empty: off)" },
    { "simulate", GP_OPT_INT, offsetof(agent_cfg_t, simulate), "0", 0, 100000,
      "act as this many virtual nodes with generated devices" },
    { "simulate-devices", GP_OPT_STRING, offsetof(agent_cfg_t, simulate_devices), "8xA100:81920", 0,
      0, "virtual nodes' devices: COUNTxMODEL:MIB[,...], one entry per node in turn" },
    { "simulate-nvlink", GP_OPT_STRING, offsetof(agent_cfg_t, simulate_nvlink), "pairs", 0, 0,
      "virtual NVLink topology: pairs, all or none" },
    { "devices-file", GP_OPT_STRING, offsetof(agent_cfg_t, devices_file), "", 0, 0,
      "declare the node's devices in a JSON file instead of asking NVML" },
    { "nvml", GP_OPT_STRING, offsetof(agent_cfg_t, nvml), "libnvidia-ml.so.1", 0, 0,
      "NVML library to load" },
    { "usage-interval", GP_OPT_DURATION, offsetof(agent_cfg_t, usage_interval_ms), "5s", 100,
      3600000, "how often live usage is sampled (written to etcd only when it changed)" },
    { "heartbeat", GP_OPT_DURATION, offsetof(agent_cfg_t, heartbeat_ms), "2s", 100, 60000,
      "HELLO interval to each coordinator" },
    { "curve-key", GP_OPT_STRING, offsetof(agent_cfg_t, curve_key), "", 0, 0,
      "the agent's CURVE key pair (.key file from `gpupool keys curve`); empty: no CURVE" },
    { "coordinator-keys", GP_OPT_STRING, offsetof(agent_cfg_t, coordinator_keys), "", 0, 0,
      "file of coordinator public keys the agent trusts (empty: any key registered in etcd)" },
    { "log-level", GP_OPT_STRING, offsetof(agent_cfg_t, log_level), "info", 0, 0,
      "debug, info, warn or error" },
    { "policy", GP_OPT_STRING, offsetof(agent_cfg_t, policy), "gpupool", 0, 0,
      "placement policy used to score bids (jobs may name their own)" },
    { "container-runtime", GP_OPT_STRING, offsetof(agent_cfg_t, container_runtime), "podman", 0, 0,
      "runtime of jobs that name an image: podman or docker" },
    { "container-oci-runtime", GP_OPT_STRING, offsetof(agent_cfg_t, container_oci_runtime), "", 0,
      0, "OCI runtime the container runtime uses, e.g. runc (empty: its default)" },
    { "container-cgroup-manager", GP_OPT_STRING, offsetof(agent_cfg_t, container_cgroup_manager),
      "", 0, 0, "podman's cgroup manager: cgroupfs or systemd (empty: its default)" },
    { "container-ulimits", GP_OPT_STRING, offsetof(agent_cfg_t, container_ulimits), "", 0, 0,
      "containers' limits, NAME=SOFT:HARD[,...], e.g. nofile=1024:1024 (empty: the runtime's)" },
    { "container-network", GP_OPT_STRING, offsetof(agent_cfg_t, container_network), "", 0, 0,
      "containers' network, e.g. host or none (empty: the runtime's default)" },
    { "container-registries", GP_OPT_STRING, offsetof(agent_cfg_t, container_registries),
      "localhost", 0, 0,
      "registries jobs' images may come from (and be pulled from), comma-separated; "
      "localhost: local images, never pulled" },
    { "container-mount-paths", GP_OPT_STRING, offsetof(agent_cfg_t, container_mount_paths), "", 0,
      0, "host folders jobs may mount into their containers, comma-separated (empty: none)" },
    { "container-devices", GP_OPT_STRING, offsetof(agent_cfg_t, container_devices), "cdi", 0, 0,
      "how a slice's GPUs enter its container: cdi (nvidia.com/gpu=UUID), none, or a device "
      "path with {index} or {uuid}" },
    { "job-user", GP_OPT_STRING, offsetof(agent_cfg_t, job_user), "nobody", 0, 0,
      "the Unix account (name or uid[:gid]) jobs run as when job-users names none for their "
      "team; never root" },
    { "job-users", GP_OPT_STRING, offsetof(agent_cfg_t, job_users), "", 0, 0,
      "each team's account, TEAM=ACCOUNT comma-separated (ACCOUNT: name or uid[:gid])" },
    { "job-root-teams", GP_OPT_STRING, offsetof(agent_cfg_t, job_root_teams), "", 0, 0,
      "teams whose job-users account may be root, comma-separated (empty: none)" },
    { "job-rlimits", GP_OPT_STRING, offsetof(agent_cfg_t, job_rlimits), "core=0", 0, 0,
      "resource limits of every job, NAME=VALUE comma-separated (as, core, cpu, data, fsize, "
      "memlock, nofile, nproc, stack; a number or unlimited)" },
    { "rightsize-half-life", GP_OPT_DURATION, offsetof(agent_cfg_t, rightsize_half_life_ms), "24h",
      60000, INT64_C(365) * 24 * 3600 * 1000,
      "usage summaries of job classes: a sample's weight halves in this time" },
    { "rightsize-interval", GP_OPT_DURATION, offsetof(agent_cfg_t, rightsize_interval_ms), "1m",
      1000, INT64_C(24) * 3600 * 1000,
      "a long right-sized run gives its class one usage sample per interval while it runs" },
    { "rightsize-oom-min", GP_OPT_MIB, offsetof(agent_cfg_t, rightsize_oom_min_mib), "256", 0,
      1048576, "after an OOM in a slice, its next size is at least its limit plus this" },
    { "rightsize-oom-factor", GP_OPT_DOUBLE, offsetof(agent_cfg_t, rightsize_oom_factor), "1.2", 1,
      10, "after an OOM in a slice, its next size is at least its limit times this" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

static agent_t s_agent;

/* Checks beyond the option table's (done at start and on reload). */
static int s_validate(agent_cfg_t *c, gp_err_t *err)
{
    if (c->name[0] == '\0') {
        char host[256];
        if (gethostname(host, sizeof host) < 0)
            return gp_err_errno(err, "gethostname");
        host[sizeof host - 1] = '\0';
        free(c->name);
        c->name = strdup(host);
        if (c->name == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    if (!gp_name_valid(c->name) || strlen(c->name) > 100)
        return gp_err_set(err, GP_ERR_INVALID, "name: \"%s\" must be 1..100 of [A-Za-z0-9._-]",
                          c->name);
    if (!gp_name_valid(c->region))
        return gp_err_set(err, GP_ERR_INVALID, "region: \"%s\" must be 1..127 of [A-Za-z0-9._-]",
                          c->region);
    if (!gp_prefix_valid(c->prefix))
        return gp_err_set(err, GP_ERR_INVALID, "prefix: \"%s\" must start and end with '/'",
                          c->prefix);
    gp_log_level_t lv;
    if (gp_log_parse_level(c->log_level, &lv) < 0)
        return gp_err_set(err, GP_ERR_INVALID, "log-level: unknown \"%s\"", c->log_level);
    if (strcmp(c->simulate_nvlink, "pairs") && strcmp(c->simulate_nvlink, "all") &&
        strcmp(c->simulate_nvlink, "none"))
        return gp_err_set(err, GP_ERR_INVALID, "simulate-nvlink: expected pairs, all or none");
    if (strcmp(c->compute_mode, "cap") && strcmp(c->compute_mode, "share"))
        return gp_err_set(err, GP_ERR_INVALID, "compute-mode: expected cap or share");
    if (c->state_dir[0] == '\0')
        return gp_err_set(err, GP_ERR_INVALID, "state-dir: required");
    /* A missing shim would make the dynamic loader skip the preload and run
     * every job unenforced: say so now.  No shim at all is written "". */
    /* The value is LD_PRELOAD's: paths separated by spaces or colons. */
    for (const char *p = c->shim; *p;) {
        size_t n = strcspn(p, " :");
        char path[4096];
        if (n > 0 && n < sizeof path) {
            memcpy(path, p, n);
            path[n] = '\0';
            if (access(path, R_OK) != 0)
                return gp_err_set(err, GP_ERR_INVALID, "shim: %s: %s (jobs would run without "
                                  "their slice enforced; write shim = \"\" to run them without "
                                  "a shim)", path, strerror(errno));
        }
        p += n + (p[n] != '\0');
    }
    gp_err_t perr;
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = c->policy;
    gp_placement_t *pl = gp_placement_new(&po, &perr);
    if (pl == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "policy: %s", perr.msg);
    gp_placement_destroy(&pl);
    gp_container_t *ct = agent_containers_new(c, err);
    if (ct == NULL)
        return -1;
    gp_container_destroy(&ct);
    gp_accounts_t *acc = gp_accounts_new(c->job_users, c->job_user, c->job_root_teams,
                                         c->job_rlimits, err);
    if (acc == NULL)
        return -1;
    gp_accounts_destroy(&acc);
    return 0;
}

static void s_http(void *arg, gp_http_req_t *req)
{
    agent_t *a = arg;
    const char *path = gp_http_req_path(req);
    if (strcmp(path, "/metrics") == 0) {
        agent_exporter_serve(a, req);
    } else if (strcmp(path, "/healthz") == 0) {
        char *body = strdup(a->registered ? "ok\n" : "not registered\n");
        gp_http_respond(req, a->registered ? 200 : 503, "text/plain", body, body ? strlen(body) : 0);
    } else {
        gp_http_respond_error(req, 404, "no such path %s (try /metrics)", path);
    }
}

static void s_reload(agent_t *a, int argc, char **argv)
{
    agent_cfg_t next;
    memset(&next, 0, sizeof next);
    gp_config_cli_t cli;
    gp_err_t err;
    if (gp_config_reload(s_opts, &next, argc, argv, &cli, &err) < 0 || s_validate(&next, &err) < 0) {
        gp_log_error("reload refused, keeping the running configuration: %s", err.msg);
        gp_config_free(s_opts, &next);
        return;
    }
    static const char *const fixed[] = { "name", "region", "zone", "cloud", "cluster",
                                         "etcd-endpoints", "etcd-local-endpoints", "etcd-ca", "etcd-cert", "etcd-key",
                                         "etcd-user", "etcd-password", "prefix", "state-dir",
                                         "simulate-devices", "simulate-nvlink", "devices-file",
                                         "nvml", "curve-key", "coordinator-keys", "metrics-listen",
                                         "shim", "policy", "container-runtime",
                                         "container-oci-runtime", "container-cgroup-manager",
                                         "container-ulimits", "container-network",
                                         "container-registries", "container-mount-paths",
                                         "container-devices", NULL };
    gp_config_keep(s_opts, &a->cfg, &next, fixed);

    if (next.simulate != a->cfg.simulate || next.lease_ttl_ms != a->cfg.lease_ttl_ms) {
        gp_log_warn("reload: simulate and lease-ttl change only at restart");
        next.simulate = a->cfg.simulate;
        next.lease_ttl_ms = a->cfg.lease_ttl_ms;
    }
    if (strcmp(next.labels, a->cfg.labels) != 0) {
        for (int i = 0; i < a->nnodes; i++) {
            gp_node_t *n = &a->nodes[i].node;
            int sim = a->cfg.simulate > 0;
            n->nlabels = 0;
            if (sim)
                gp_node_add_label(n, "gpupool.io/simulated", "true");
            char *copy = strdup(next.labels), *save = NULL;
            for (char *kv = copy ? strtok_r(copy, ",", &save) : NULL; kv;
                 kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (eq) {
                    *eq = '\0';
                    gp_node_add_label(n, kv, eq + 1);
                }
            }
            free(copy);
            gp_placement_add_node(a->engine, n, NULL);
        }
        a->next_usage_ms = 0;   /* the records are rewritten at the next tick */
    }
    gp_config_free(s_opts, &a->cfg);
    a->cfg = next;
    gp_err_t aerr;
    gp_accounts_t *acc = gp_accounts_new(a->cfg.job_users, a->cfg.job_user, a->cfg.job_root_teams,
                                         a->cfg.job_rlimits, &aerr);
    if (acc) {   /* validated above; only a changed passwd database fails here */
        gp_accounts_destroy(&a->accounts);
        a->accounts = acc;
    } else {
        gp_log_error("reload: keeping the job accounts: %s", aerr.msg);
    }
    gp_log_level_t lv;
    gp_log_parse_level(a->cfg.log_level, &lv);
    gp_log_set_level(cli.verbose ? GP_LOG_DEBUG : lv);
    gp_log_info("configuration reloaded");
}

static int s_run(agent_t *a, int argc, char **argv)
{
    gp_err_t err;
    gp_httpd_t *httpd = NULL;
    gp_daemon_memory_init();
    if (gp_daemon_signals_init(&err) < 0)
        gp_log_fatal(EX_OSERR, "%s", err.msg);
    a->metrics = gp_metrics_new();
    a->node_index = gp_strmap_new();
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = a->cfg.policy;
    a->engine = gp_placement_new(&po, &err);
    if (a->metrics == NULL || a->node_index == NULL || a->engine == NULL)
        gp_log_fatal(EX_SOFTWARE, "out of memory");
    if (agent_metrics_init(&a->m, a->metrics, &err) < 0)
        gp_log_fatal(EX_SOFTWARE, "%s", err.msg);
    if (agent_inventory_load(a, &err) < 0)
        gp_log_fatal(EX_CONFIG, "inventory: %s", err.msg);
    for (int i = 0; i < a->nnodes; i++) {
        if (gp_placement_add_node(a->engine, &a->nodes[i].node, &err) < 0)
            gp_log_fatal(EX_CONFIG, "node %s: %s", a->nodes[i].node.name, err.msg);
        gp_strmap_put(a->node_index, a->nodes[i].node.name, &a->nodes[i]);
    }
    int ndev = 0;
    for (int i = 0; i < a->nnodes; i++)
        ndev += a->nodes[i].node.ndevices;
    gp_log_info("inventory nodes=%d devices=%d", a->nnodes, ndev);

    gp_etcd_config_t ec;
    gp_etcd_config_from(&ec, a->cfg.etcd_endpoints, a->cfg.etcd_ca, a->cfg.etcd_cert,
                        a->cfg.etcd_key, a->cfg.etcd_user, a->cfg.etcd_password);
    gp_etcd_config_for_lease(&ec, a->cfg.lease_ttl_ms);
    ec.local_endpoints = a->cfg.etcd_local;
    a->etcd = gp_etcd_new(&ec, &err);
    if (a->etcd == NULL)
        gp_log_fatal(EX_CONFIG, "etcd: %s", err.msg);

    if (*a->cfg.metrics_listen) {
        char addr[64];
        int port;
        if (gp_parse_hostport(a->cfg.metrics_listen, addr, sizeof addr, &port) < 0)
            gp_log_fatal(EX_CONFIG, "metrics-listen: expected ADDRESS:PORT, got \"%s\"",
                         a->cfg.metrics_listen);
        gp_httpd_limits_t lim;
        gp_httpd_limits_default(&lim, 4096);
        httpd = gp_httpd_new(addr, port, &lim, s_http, a, &err);
        if (httpd == NULL)
            gp_log_fatal(EX_UNAVAILABLE, "metrics: %s", err.msg);
    }
    /* The protocol versions spoken (a test hook may make it speak as
     * another release would; wire.h). */
    a->nprotos = gp_wire_versions_spoken(getenv("GPUPOOL_FAULT_PROTOCOLS"), a->protos,
                                         (int)GP_ARRAY_LEN(a->protos), &err);
    if (a->nprotos < 0)
        gp_log_fatal(EX_CONFIG, "GPUPOOL_FAULT_PROTOCOLS: %s", err.msg);
    if (agent_registry_start(a, &err) < 0 || agent_bidder_start(a, &err) < 0)
        gp_log_fatal(EX_CONFIG, "%s", err.msg);
    if (agent_jobs_start(a, &err) < 0)
        gp_log_fatal(EX_CANTCREAT, "%s", err.msg);

    int ready = 0;
    int64_t next_tick = 0, last_kick = 0, busy_from_ns = 0;
    while (!a->stopping) {
        zmq_pollitem_t items[256];
        struct pollfd pfds[64];
        int n = 0, etcd_to = -1;
        items[n++] = (zmq_pollitem_t){ NULL, gp_daemon_signal_fd(), ZMQ_POLLIN, 0 };
        if (httpd)
            items[n++] = (zmq_pollitem_t){ NULL, gp_httpd_fd(httpd), ZMQ_POLLIN, 0 };
        int ne = gp_etcd_pollfds(a->etcd, pfds, 64, &etcd_to);
        for (int i = 0; i < ne && i < 64; i++)
            items[n++] = (zmq_pollitem_t){ NULL, pfds[i].fd, (short)((pfds[i].events & POLLIN ? ZMQ_POLLIN : 0) |
                                                                 (pfds[i].events & POLLOUT ? ZMQ_POLLOUT : 0)), 0 };
        n += agent_bidder_pollitems(a, items + n, (int)GP_ARRAY_LEN(items) - n);
        int64_t now = gp_mono_ms();
        long timeout = next_tick > now ? (long)(next_tick - now) : 0;
        if (a->jobs_kick && timeout > 10)
            timeout = 10;   /* a kick held back by its spacing */
        if (etcd_to >= 0 && etcd_to < timeout)
            timeout = etcd_to;
        if (httpd) {
            int ht = gp_httpd_timeout_ms(httpd);
            if (ht >= 0 && ht < timeout)
                timeout = ht;
        }
        if (busy_from_ns)
            gp_metric_observe(a->m.loop_busy, (double)(gp_mono_ns() - busy_from_ns) / 1e9);
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR)
            gp_log_warn("zmq_poll: %s", zmq_strerror(zmq_errno()));
        busy_from_ns = gp_mono_ns();

        unsigned sig = gp_daemon_take_signals();
        if (sig & GP_SIG_STOP) {
            gp_log_info("stopping on signal; jobs keep running and are adopted on restart");
            gp_daemon_notify("STOPPING=1");
            break;
        }
        if (sig & GP_SIG_RELOAD) {
            gp_daemon_notify("RELOADING=1");
            s_reload(a, argc, argv);
            gp_daemon_notify("READY=1");
        }
        if (gp_etcd_step(a->etcd, 0, &err) < 0)
            gp_log_warn("etcd: %s", err.msg);
        if (httpd)
            gp_httpd_run(httpd);
        agent_bidder_handle(a);
        now = gp_mono_ms();
        if (a->jobs_kick && now < next_tick && now >= last_kick + 10) {
            /* A new allocation starts now, not at the tick (at most every
             * 10 ms: a burst is worked in batches, not event by event). */
            a->jobs_kick = 0;
            last_kick = now;
            agent_jobs_kick(a);
        }
        if (now >= next_tick) {
            agent_registry_tick(a);
            agent_bidder_tick(a);
            a->jobs_kick = 0;
            agent_jobs_tick(a);
            agent_exporter_tick(a);
            gp_daemon_trim_memory();
            next_tick = now + 100;
            if (!ready && a->registered) {
                ready = 1;
                gp_daemon_ready(PROG, "name=%s region=%s nodes=%d devices=%d metrics=%d",
                                a->cfg.name, a->cfg.region, a->nnodes, ndev,
                                httpd ? gp_httpd_port(httpd) : 0);
            }
        }
    }
    agent_jobs_stop(a);
    agent_bidder_stop(a);
    agent_registry_stop(a);
    gp_etcd_destroy(&a->etcd);
    gp_httpd_destroy(&httpd);
    gp_placement_destroy(&a->engine);
    gp_strmap_destroy(&a->node_index);
    agent_inventory_close(a);
    gp_metrics_destroy(&a->metrics);
    gp_config_free(s_opts, &a->cfg);
    gp_log_info("stopped");
    return EX_OK;
}

int main(int argc, char **argv)
{
    gp_log_init(PROG, GP_LOG_INFO);
    agent_t *a = &s_agent;
    gp_config_cli_t cli;
    gp_err_t err;
    if (gp_config_load(s_opts, &a->cfg, argc, argv, &cli, &err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        return err.status == GP_CONFIG_IN_FILE ? EX_CONFIG : EX_USAGE;
    }
    if (cli.action == GP_CONFIG_HELP) {
        gp_config_usage(stdout, PROG, "The gpupool node agent: registers the node's GPUs, bids for "
                                      "jobs, runs them in their slices.", s_opts);
        gp_config_free(s_opts, &a->cfg);
        return EX_OK;
    }
    if (cli.action == GP_CONFIG_VERSION) {
        printf("%s %s\n", PROG, GP_VERSION);
        gp_config_free(s_opts, &a->cfg);
        return EX_OK;
    }
    if (s_validate(&a->cfg, &err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        gp_config_free(s_opts, &a->cfg);
        return EX_CONFIG;
    }
    gp_log_level_t lv;
    gp_log_parse_level(a->cfg.log_level, &lv);
    gp_log_set_level(cli.verbose ? GP_LOG_DEBUG : lv);
    if (cli.action == GP_CONFIG_CHECK) {
        gp_curve_keys_t keys;
        if (*a->cfg.curve_key && gp_curve_load(a->cfg.curve_key, &keys, &err) < 0) {
            fprintf(stderr, "%s: curve-key: %s\n", PROG, err.msg);
            gp_config_free(s_opts, &a->cfg);
            return EX_CONFIG;
        }
        printf("%s: configuration OK\n", PROG);
        gp_config_free(s_opts, &a->cfg);
        return EX_OK;
    }
    return s_run(a, argc, argv);
}
