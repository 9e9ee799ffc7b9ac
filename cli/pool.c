/*
 * pool.c - the pool commands of the gpupool CLI: quota, nodes, regions,
 * top and audit.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "util.h"

#include "banned.h"

/* ------------------------------------------------------------- quotas */

/* quota ls | quota set TEAM [--gpus N] [--mem-mib N] [--compute PCT] | quota rm TEAM */
int cli_cmd_quota(cli_t *cli, int argc, char **argv)
{
    const char *usage = "gpupool quota ls | set TEAM [--gpus N] [--mem-mib N] "
                        "[--compute PCT] [--disruption-budget N] [--gang-disruption-budget N] "
                        "| rm TEAM";
    if (argc < 2) {
        cli_error("usage: %s", usage);
        return EX_USAGE;
    }
    json_t *ans = NULL;
    int rc;
    if (!strcmp(argv[1], "ls") && argc == 2) {
        json_t *qs;
        if (cli_get_list(cli, "/v1/quotas", "quotas", &ans, &qs, &rc))
            return rc;
        cli_table_t t;
        static const char *const heads[] = { "TEAM", "GPUS", "MEM_MIB", "COMPUTE%" };
        cli_table_init(&t, 4, heads);
        size_t n;
        json_t **sorted = cli_sorted(qs, "team", NULL, &n);
        for (size_t i = 0; i < n; i++) {
            json_t *q = sorted[i], *used = json_object_get(q, "used");
            char g[64], m[64], cp[64];
            json_t *v;
            snprintf(g, sizeof g, "%.2f / %s", json_number_value(json_object_get(used, "gpus")),
                     (v = json_object_get(q, "gpus")) ? "" : "-");
            if (v) {
                size_t l = strlen(g);
                snprintf(g + l, sizeof g - l, "%.2f", json_number_value(v));
            }
            snprintf(m, sizeof m, "%" PRId64 " / ", cli_int(used, "mem_mib"));
            if ((v = json_object_get(q, "mem_mib")) != NULL) {
                size_t l = strlen(m);
                snprintf(m + l, sizeof m - l, "%" PRId64, (int64_t)json_integer_value(v));
            } else {
                size_t l = strlen(m);
                snprintf(m + l, sizeof m - l, "-");
            }
            snprintf(cp, sizeof cp, "%" PRId64 " / ", cli_int(used, "compute_percent"));
            if ((v = json_object_get(q, "compute_percent")) != NULL) {
                size_t l = strlen(cp);
                snprintf(cp + l, sizeof cp - l, "%" PRId64, (int64_t)json_integer_value(v));
            } else {
                size_t l = strlen(cp);
                snprintf(cp + l, sizeof cp - l, "-");
            }
            const char *row[] = { cli_str(q, "team"), g, m, cp };
            cli_table_row(&t, row);
        }
        free(sorted);
        cli_table_print(&t, stdout);
        cli_table_free(&t);
        json_decref(ans);
        return 0;
    }
    if (argc < 3 || (strcmp(argv[1], "set") && strcmp(argv[1], "rm"))) {
        cli_error("usage: %s", usage);
        return EX_USAGE;
    }
    char path[512];
    snprintf(path, sizeof path, "/v1/quotas/%s", argv[2]);
    if (!strcmp(argv[1], "rm")) {
        cli->what = argv[2];
        rc = cli_request(cli, "DELETE", path, NULL, 0, &ans);
        json_decref(ans);
        return rc;
    }
    /* set: only the limits given (a limit not given stays -1) */
    typedef struct {
        double gpus, mem_mib, compute, budget, gang_budget;
    } limits_t;
    static const gp_opt_t lopts[] = {
        { "gpus", GP_OPT_DOUBLE, offsetof(limits_t, gpus), "-1", 0, 0, "GPUs" },
        { "mem-mib", GP_OPT_DOUBLE, offsetof(limits_t, mem_mib), "-1", 0, 0, "memory, MiB" },
        { "compute", GP_OPT_DOUBLE, offsetof(limits_t, compute), "-1", 0, 0, "compute, %" },
        { "disruption-budget", GP_OPT_DOUBLE, offsetof(limits_t, budget), "-1", 0, 0,
          "jobs a drain may stop at once" },
        { "gang-disruption-budget", GP_OPT_DOUBLE, offsetof(limits_t, gang_budget), "-1", 0, 0,
          "members of each gang a drain may stop at once" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    limits_t lim = { 0 };
    int nargs = argc - 2;           /* from TEAM on: TEAM is the operand */
    if ((rc = cli_args(lopts, &lim, &nargs, argv + 2, usage)) != 0)
        return rc;
    if (nargs != 1 || (lim.gpus < 0 && lim.mem_mib < 0 && lim.compute < 0 && lim.budget < 0 &&
                       lim.gang_budget < 0))
        return cli_fail(EX_USAGE, "usage: %s", usage);
    json_t *body = json_object();
    if (lim.gpus >= 0)
        json_object_set_new(body, "gpus", json_real(lim.gpus));
    if (lim.mem_mib >= 0)
        json_object_set_new(body, "mem_mib", json_integer((json_int_t)lim.mem_mib));
    if (lim.compute >= 0)
        json_object_set_new(body, "compute_percent", json_integer((json_int_t)lim.compute));
    if (lim.budget >= 0)
        json_object_set_new(body, "disruption_budget", json_integer((json_int_t)lim.budget));
    if (lim.gang_budget >= 0)
        json_object_set_new(body, "gang_disruption_budget",
                            json_integer((json_int_t)lim.gang_budget));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    cli->what = argv[2];
    rc = cli_request(cli, "PUT", path, text, text ? strlen(text) : 0, &ans);
    free(text);
    if (rc == 0 && cli->out == OUT_JSON)
        cli_print_json(ans);
    json_decref(ans);
    return rc;
}

/* ------------------------------------------------------------- nodes, regions, top */

/* The -o wide columns of a node: CPUs, host memory, the device memory
 * oversubscription factor and its labels ("k=v,k=v", or "-"); cpus,
 * hostmem and oversub hold at least 24 bytes, labels lsize. */
static void s_node_wide(const json_t *node, char *cpus, char *hostmem, char *oversub,
                        char *labels, size_t lsize)
{
    snprintf(cpus, 24, "%g", (double)cli_int(node, "cpu_milli") / 1000.0);
    cli_fmt_mib(hostmem, 24, cli_int(node, "mem_mib"));
    snprintf(oversub, 24, "%g", json_is_number(json_object_get(node, "oversub"))
                                    ? cli_num(node, "oversub") : 1.0);
    json_t *l = json_object_get(node, "labels"), *v;
    const char *k;
    size_t len = 0;
    labels[0] = '\0';
    if (json_is_object(l)) {
        json_object_foreach(l, k, v) {
            const char *sv = json_string_value(v);
            int n = snprintf(labels + len, lsize - len, "%s%s=%s", len ? "," : "", k, sv ? sv : "");
            if (n < 0 || (size_t)n >= lsize - len)
                break;
            len += (size_t)n;
        }
    } else if (json_is_array(l)) {
        size_t i;
        json_array_foreach(l, i, v) {
            const char *sv = json_string_value(v);
            int n = snprintf(labels + len, lsize - len, "%s%s", len ? "," : "", sv ? sv : "");
            if (n < 0 || (size_t)n >= lsize - len)
                break;
            len += (size_t)n;
        }
    }
    if (labels[0] == '\0')
        gp_strlcpy(labels, "-", lsize);
}

/* ready, cordoned, draining, drained, drain timed out */
static void s_node_status(const json_t *node, int64_t now, char *out, size_t size)
{
    const char *drain = json_string_value(json_object_get(json_object_get(node, "drain"), "state"));
    if (drain == NULL)
        drain = "";
    if (!strcmp(cli_str(node, "state"), "NotReady")) {      /* its agent is gone */
        char age[24];
        cli_fmt_age(age, sizeof age, now - cli_int(node, "not_ready_since_ms"));
        snprintf(out, size, "NotReady %s%s", age,
                 json_object_get(node, "cordoned") ? ",cordoned" : "");
    } else if (json_object_get(node, "cordoned") == NULL)
        gp_strlcpy(out, "Ready", size);
    else if (!strcmp(drain, "draining"))
        gp_strlcpy(out, "draining", size);
    else if (!strcmp(drain, "done"))
        gp_strlcpy(out, "drained", size);
    else if (drain[0])
        snprintf(out, size, "drain %s", drain);
    else
        gp_strlcpy(out, "cordoned", size);
}

int cli_cmd_nodes(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        cli_error("usage: gpupool nodes");
        return EX_USAGE;
    }
    json_t *ans, *nodes;
    int rc;
    if (cli_get_list(cli, "/v1/nodes", "nodes", &ans, &nodes, &rc))
        return rc;
    cli_table_t t;
    bool wide = cli->out == OUT_WIDE;
    static const char *const heads[] = { "NODE", "REGION", "ZONE", "MODEL", "GPUS",
                                         "MEM", "ALLOCATED", "JOBS", "HEALTHY", "STATUS", "AGENT",
                                         /* -o wide */
                                         "CLOUD", "CPUS", "HOST-MEM", "OVERSUB", "LABELS" };
    cli_table_init(&t, wide ? 16 : 11, heads);
    t.right[4] = t.right[7] = true;
    int64_t now = gp_wall_ms();
    size_t nn;
    json_t **sorted = cli_sorted(nodes, "region", "name", &nn);
    for (size_t i = 0; i < nn; i++) {
        json_t *node = sorted[i];
        json_t *devs = json_object_get(node, "devices"), *d;
        size_t k, ndev = json_array_size(devs), unhealthy = 0;
        int64_t mem = 0;
        char models[128] = "";
        json_array_foreach(devs, k, d) {
            mem += cli_int(d, "mem_mib");
            if (json_is_false(json_object_get(d, "healthy")))
                unhealthy++;
            const char *m = cli_str(d, "model");
            /* the distinct models, in order of appearance */
            bool seen = false;
            for (size_t p = 0; p < k && !seen; p++)
                seen = !strcmp(cli_str(json_array_get(devs, p), "model"), m);
            if (!seen) {
                size_t len = strlen(models);
                snprintf(models + len, sizeof models - len, "%s%s", len ? "," : "", m);
            }
        }
        json_t *al = json_object_get(node, "allocated");
        char gpus[24], memtxt[80], used[32], total[32], alloc[48], jobs[24], healthy[24];
        snprintf(gpus, sizeof gpus, "%zu", ndev);
        cli_fmt_mib(used, sizeof used, cli_int(al, "mem_mib"));
        cli_fmt_mib(total, sizeof total, mem);
        snprintf(memtxt, sizeof memtxt, "%s/%s", used, total);
        double milli = (double)cli_int(al, "gpu_milli");
        snprintf(alloc, sizeof alloc, "%.2f/%zu (%.0f%%)", milli / 1000.0, ndev,
                 ndev ? milli / 10.0 / (double)ndev : 0.0);
        snprintf(jobs, sizeof jobs, "%" PRId64, cli_int(al, "jobs"));
        if (json_is_false(json_object_get(node, "healthy")))
            gp_strlcpy(healthy, "no", sizeof healthy);
        else if (unhealthy)
            snprintf(healthy, sizeof healthy, "%zu/%zu gpus", ndev - unhealthy, ndev);
        else
            gp_strlcpy(healthy, "yes", sizeof healthy);
        char cpus[24], hostmem[32], oversub[24], labels[256], status[48];
        s_node_wide(node, cpus, hostmem, oversub, labels, sizeof labels);
        s_node_status(node, now, status, sizeof status);
        /* the agent's release; "-" for one of the previous release (no record) */
        const char *agent = cli_str(json_object_get(node, "agent"), "version");
        const char *row[] = { cli_str(node, "name"), cli_str(node, "region"), cli_str(node, "zone"),
                              models[0] ? models : "-", gpus, memtxt, alloc, jobs, healthy,
                              status, agent[0] ? agent : "-",
                              cli_str(node, "cloud"), cpus, hostmem, oversub, labels };
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    /* cordons: the reason, who and since when */
    for (size_t i = 0; i < nn; i++) {
        json_t *c = json_object_get(sorted[i], "cordoned");
        if (c == NULL)
            continue;
        char since[40], ago[32];
        cli_fmt_local(since, sizeof since, cli_int(c, "since_ms"));
        cli_fmt_ago(ago, sizeof ago, now, cli_int(c, "since_ms"));
        const char *reason = json_string_value(json_object_get(c, "reason"));
        printf("%s cordoned since %s (%s) by %s%s%s\n", cli_str(sorted[i], "name"), since, ago,
               cli_str(c, "by"), reason && *reason ? ": " : "", reason && *reason ? reason : "");
    }
    free(sorted);
    json_decref(ans);
    return 0;
}

int cli_cmd_regions(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        cli_error("usage: gpupool regions");
        return EX_USAGE;
    }
    json_t *ans, *regions;
    int rc;
    if (cli_get_list(cli, "/v1/regions", "regions", &ans, &regions, &rc))
        return rc;
    cli_table_t t;
    static const char *const heads[] = { "REGION", "LEADER", "COORDINATORS", "NODES",
                                         "NOTREADY", "GPUS", "USED", "PENDING", "VERSIONS" };
    cli_table_init(&t, 9, heads);
    t.right[3] = t.right[4] = t.right[5] = t.right[7] = true;
    size_t nr;
    json_t **sorted = cli_sorted(regions, "name", NULL, &nr);
    for (size_t i = 0; i < nr; i++) {
        json_t *r = sorted[i];
        char coords[256] = "", nodes[24], notready[24], gpus[24], used[48], pending[24];
        json_t *c;
        size_t k;
        json_array_foreach(json_object_get(r, "coordinators"), k, c) {
            size_t len = strlen(coords);
            snprintf(coords + len, sizeof coords - len, "%s%s", k ? "," : "",
                     json_string_value(c) ? json_string_value(c) : "?");
        }
        int64_t ngpus = cli_int(r, "gpus");
        double milli = (double)cli_int(r, "gpu_milli_used");
        snprintf(nodes, sizeof nodes, "%" PRId64, cli_int(r, "nodes"));
        snprintf(notready, sizeof notready, "%" PRId64, cli_int(r, "not_ready"));
        snprintf(gpus, sizeof gpus, "%" PRId64, ngpus);
        snprintf(used, sizeof used, "%.2f (%.0f%%)", milli / 1000.0,
                 ngpus ? milli / 10.0 / (double)ngpus : 0.0);
        snprintf(pending, sizeof pending, "%" PRId64, cli_int(r, "pending"));
        /* each coordinator's release ("-": the previous release's, which
         * does not say); one figure when they agree */
        char versions[256] = "";
        json_t *vs = json_object_get(r, "coordinator_versions"), *v;
        const char *id, *first = NULL;
        int same = 1;
        json_object_foreach(vs, id, v) {
            const char *s = json_is_string(v) ? json_string_value(v) : "-";
            same &= first == NULL || !strcmp(first, s);
            if (first == NULL)
                first = s;
            size_t len = strlen(versions);
            snprintf(versions + len, sizeof versions - len, "%s%s=%s", len ? "," : "", id, s);
        }
        if (first && same)
            gp_strlcpy(versions, first, sizeof versions);
        const char *row[] = { cli_str(r, "name"), cli_str(r, "leader"), coords[0] ? coords : "-",
                              nodes, notready, gpus, used, pending, versions[0] ? versions : "-" };
        cli_table_row(&t, row);
    }
    free(sorted);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    if (json_is_true(json_object_get(json_object_get(ans, "store"), "full")))
        printf("store full: etcd's NOSPACE alarm refuses writes; submissions wait until an "
               "operator frees space (README: \"The store's lifecycle\")\n");
    json_t *schema = json_object_get(json_object_get(ans, "store"), "schema");
    if (json_is_integer(schema))
        printf("store schema %lld\n", (long long)json_integer_value(schema));
    json_decref(ans);
    return 0;
}

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig) { (void)sig; s_stop = 1; }

/* "12.50/48 (26%)" from used thousandths of a GPU and a GPU count. */
static void s_fmt_used(char *out, size_t size, int64_t milli, int64_t gpus)
{
    snprintf(out, size, "%.2f/%" PRId64 " (%.0f%%)", (double)milli / 1000.0, gpus,
             gpus ? (double)milli / 10.0 / (double)gpus : 0.0);
}

static void s_print_usage(const cli_t *cli, const json_t *u)
{
    char now[40], used[64];
    cli_fmt_time(now, sizeof now, gp_wall_ms());
    const json_t *p = json_object_get(u, "pool");
    int64_t gpus = cli_int(p, "gpus");
    int64_t total = cli_int(p, "gpu_milli_total") ? cli_int(p, "gpu_milli_total") : gpus * 1000;
    printf("gpupool %s  %s\n", cli->api, now);
    printf("pool: %" PRId64 " nodes, %" PRId64 " GPUs, %.2f GPUs allocated (%.1f%%), "
           "%" PRId64 " jobs running, %" PRId64 " pending\n\n",
           cli_int(p, "nodes"), gpus, (double)cli_int(p, "gpu_milli_used") / 1000.0,
           total ? 100.0 * (double)cli_int(p, "gpu_milli_used") / (double)total : 0.0,
           cli_int(p, "jobs_running"), cli_int(p, "jobs_pending"));

    cli_table_t t;
    static const char *const rheads[] = { "REGION", "NODES", "GPUS", "ALLOCATED", "RUNNING",
                                          "PENDING" };
    cli_table_init(&t, 6, rheads);
    t.right[1] = t.right[2] = t.right[4] = t.right[5] = true;
    size_t n;
    json_t **sorted = cli_sorted(json_object_get(u, "by_region"),
                               json_object_get(json_array_get(json_object_get(u, "by_region"), 0),
                                               "name") ? "name" : "region", NULL, &n);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = sorted[i];
        char nodes[24], ngpus[24], running[24], pending[24];
        const char *name = cli_str(r, "name");
        if (!strcmp(name, "-"))
            name = cli_str(r, "region");
        snprintf(nodes, sizeof nodes, "%" PRId64, cli_int(r, "nodes"));
        snprintf(ngpus, sizeof ngpus, "%" PRId64, cli_int(r, "gpus"));
        s_fmt_used(used, sizeof used, cli_int(r, "gpu_milli_used"), cli_int(r, "gpus"));
        snprintf(running, sizeof running, "%" PRId64, cli_int(r, "jobs_running"));
        snprintf(pending, sizeof pending, "%" PRId64, cli_int(r, "jobs_pending"));
        const char *row[] = { name, nodes, ngpus, used, running, pending };
        cli_table_row(&t, row);
    }
    free(sorted);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    putchar('\n');

    static const char *const mheads[] = { "MODEL", "GPUS", "ALLOCATED" };
    cli_table_init(&t, 3, mheads);
    t.right[1] = true;
    sorted = cli_sorted(json_object_get(u, "by_model"), "model", NULL, &n);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = sorted[i];
        char ngpus[24];
        snprintf(ngpus, sizeof ngpus, "%" PRId64, cli_int(r, "gpus"));
        s_fmt_used(used, sizeof used, cli_int(r, "gpu_milli_used"), cli_int(r, "gpus"));
        const char *row[] = { cli_str(r, "model"), ngpus, used };
        cli_table_row(&t, row);
    }
    free(sorted);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cli_cmd_top(cli_t *cli, int argc, char **argv)
{
    typedef struct {
        int64_t interval_ms;
        int once;
    } top_args_t;
    static const gp_opt_t topts[] = {
        { "interval", GP_OPT_DURATION, offsetof(top_args_t, interval_ms), "2s", 100, 3600000,
          "time between refreshes" },
        { "once", GP_OPT_BOOL, offsetof(top_args_t, once), "no", 0, 0, "print once and exit" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    top_args_t ta = { 0 };
    int rc = cli_args(topts, &ta, &argc, argv, "gpupool top [--interval 2s] [--once]");
    if (rc == 0 && argc > 1)
        rc = cli_fail(EX_USAGE, "usage: gpupool top [--interval 2s] [--once]");
    if (rc != 0)
        return rc;
    int64_t interval_ms = ta.interval_ms;
    bool once = ta.once;
    bool tty = isatty(STDOUT_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (;;) {
        json_t *u = NULL;
        rc = cli_get(cli, "/v1/usage", &u);
        if (rc != 0)
            return rc;
        if (!json_is_object(json_object_get(u, "pool"))) {
            cli_error("the answer has no \"pool\" object");
            json_decref(u);
            return EX_PROTOCOL;
        }
        if (cli->out == OUT_JSON) {
            rc = cli_print_json(u);
        } else {
            if (tty && !once)
                fputs("\033[H\033[2J", stdout);
            s_print_usage(cli, u);
        }
        json_decref(u);
        fflush(stdout);
        if (once || rc != 0)
            return rc;
        if (!tty && cli->out == OUT_TABLE)
            putchar('\n');
        struct timespec ts = { interval_ms / 1000, (long)(interval_ms % 1000) * 1000000L };
        while (!s_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        if (s_stop)
            return 0;
    }
}

/* ------------------------------------------------------------- audit */

/* One audit entry as a table row. */
static void s_audit_row(cli_table_t *t, const json_t *e)
{
    char status[16];
    snprintf(status, sizeof status, "%lld", (long long)cli_int(e, "status"));
    const char *principal = cli_str(e, "principal");
    const char *cells[] = { cli_str(e, "time"), principal[0] ? principal : "-", cli_str(e, "peer"),
                            cli_str(e, "method"), cli_str(e, "path"), status, cli_str(e, "error") };
    cli_table_row(t, cells);
}

static int s_audit(cli_t *cli, const char *principal, const char *file, int64_t lim);

/* gpupool audit [--principal P] [--limit N] [--file FILE]: the audit log of
 * the coordinator (GET /v1/audit, operators), or a copy of its file. */
int cli_cmd_audit(cli_t *cli, int argc, char **argv)
{
    typedef struct {
        char *principal, *file;
        int64_t limit;
    } audit_args_t;
    static const gp_opt_t aopts[] = {
        { "principal", GP_OPT_STRING, offsetof(audit_args_t, principal), NULL, 0, 0,
          "entries of this principal" },
        { "limit", GP_OPT_INT, offsetof(audit_args_t, limit), "100", 1, 100000, "newest N" },
        { "file", GP_OPT_STRING, offsetof(audit_args_t, file), NULL, 0, 0, "a copy of the log" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    static const char usage[] = "gpupool audit [--principal P] [--limit N] [--file FILE]";
    audit_args_t aa = { 0 };
    int rc = cli_args(aopts, &aa, &argc, argv, usage);
    if (rc == 0 && argc > 1) {
        gp_config_free(aopts, &aa);
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
    }
    if (rc != 0)
        return rc;
    rc = s_audit(cli, *aa.principal ? aa.principal : NULL, *aa.file ? aa.file : NULL, aa.limit);
    gp_config_free(aopts, &aa);
    return rc;
}

static int s_audit(cli_t *cli, const char *principal, const char *file, int64_t lim)
{
    json_t *entries = NULL, *ans = NULL;
    if (file) {
        FILE *f = fopen(file, "r");
        if (f == NULL) {
            cli_error("cannot read %s: %s", file, strerror(errno));
            return EX_NOINPUT;
        }
        entries = json_array();
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int lineno = 0, bad = 0;
        while ((n = getline(&line, &cap, f)) > 0) {
            lineno++;
            json_t *e = json_loadb(line, (size_t)n, 0, NULL);
            if (!json_is_object(e)) {
                if (!bad++)
                    cli_error("%s:%d: not an audit entry (skipped)", file, lineno);
            } else if (principal == NULL || !strcmp(cli_str(e, "principal"), principal)) {
                json_array_append(entries, e);
            }
            json_decref(e);
        }
        free(line);
        fclose(f);
        while (json_array_size(entries) > (size_t)lim)
            json_array_remove(entries, 0);
        ans = json_pack("{s:O}", "entries", entries);
    } else {
        char path[512], esc[400] = "";
        if (principal) {
            char *e = curl_easy_escape(cli->curl, principal, 0);
            snprintf(esc, sizeof esc, "&principal=%s", e ? e : "");
            curl_free(e);
        }
        snprintf(path, sizeof path, "/v1/audit?limit=%lld%s", (long long)lim, esc);
        int rc = cli_get(cli, path, &ans);
        if (rc != 0)
            return rc;
        entries = json_incref(json_object_get(ans, "entries"));
        if (!json_is_array(entries)) {
            cli_error("GET %s: the answer has no entries", path);
            json_decref(entries);
            json_decref(ans);
            return EX_PROTOCOL;
        }
    }
    int rc = 0;
    if (cli->out == OUT_JSON) {
        rc = cli_print_json(ans);
    } else {
        static const char *const heads[] = { "TIME", "PRINCIPAL", "PEER", "METHOD", "PATH",
                                             "STATUS", "ERROR" };
        cli_table_t t;
        cli_table_init(&t, 7, heads);
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
            s_audit_row(&t, e);
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    json_decref(entries);
    json_decref(ans);
    return rc;
}

