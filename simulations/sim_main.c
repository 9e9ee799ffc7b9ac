/*
 * sim_main.c - gpupool-sim, the capacity planner's simulator.
 *
 *   gpupool-sim replay --nodes FILE --pods FILE [--format openb|jsonl]
 *                      [--policy P[,P...]] [--seeds 42-51] [--inflate 1.3]
 *                      [--json] [--csv FILE] [--plot FILE.png|.svg] ...
 *   gpupool-sim plan   --nodes FILE --pods FILE [--success 99] [--mix M=w,...]
 *   gpupool-sim plan   --nodes FILE --pods FILE --prices FILE [--max-nodes C=N,...]
 *   gpupool-sim policies
 *
 * Runs (policy x seed) are independent: each builds its own placement
 * engine, so they run on --jobs threads and the output does not depend on
 * how many.  Exit codes (sysexits.h): EX_USAGE bad flags, EX_NOINPUT a
 * missing file, EX_DATAERR bad input, EX_CANTCREAT an output that could not
 * be written, EX_SOFTWARE a failed accounting check.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon.h"
#include "util.h"

#include "banned.h"

static const char s_usage[] =
    "usage: gpupool-sim COMMAND [OPTIONS]\n"
    "\n"
    "Replays workloads through gpupool's placement engine (the coordinator's).\n"
    "\n"
    "commands:\n"
    "  replay     replay a workload on an inventory, per policy and seed\n"
    "  plan       find the smallest inventory that places a workload (with --prices: the\n"
    "             cheapest, by node type and cloud); sharing vs whole GPUs\n"
    "  policies   list the placement policies\n"
    "\n"
    "inputs (replay, plan):\n"
    "  -n, --nodes FILE         inventory: openb node list CSV or node records (JSON lines)\n"
    "  -p, --pods FILE          workload: openb pod list CSV or job specs (JSON lines)\n"
    "      --nodes-format FMT   the inventory's format, openb or jsonl (default: by\n"
    "                           extension, .csv openb, .jsonl/.ndjson/.json jsonl; else\n"
    "                           by content: a JSON object on the first line, or CSV)\n"
    "      --pods-format FMT    the workload's format, likewise\n"
    "  -f, --format FMT         both formats at once\n"
    "                           (JSON-lines workloads: a job spec per line, with\n"
    "                           \"arrival\", \"duration\", \"team\"; or {\"shape\": {...},\n"
    "                           \"count\": N, \"team\": T} for N jobs alike)\n"
    "  -P, --policy LIST        comma-separated policies (default fgd)\n"
    "  -s, --seeds SPEC         42, 42-51 or 1,5,9 (default 42)\n"
    "  -j, --jobs N             threads (default: the CPUs)\n"
    "      --candidates N       nodes scored per pod in clusters over 4096 nodes (512)\n"
    "\n"
    "replay:\n"
    "  -i, --inflate X          inflation method: copy pods until the GPU request is X\n"
    "                           times the capacity (default 1.3)\n"
    "      --count N            instead, draw N pods at random from the workload\n"
    "      --batch N            place arrivals N at a time, each batch in the order\n"
    "                           the policy asks (default 1: arrival order)\n"
    "      --scale-nodes N      inventory of N nodes drawn at random from the node list\n"
    "      --whole              round fractional requests up to whole GPUs\n"
    "      --mode MODE          inflate (default) or time (arrivals and departures)\n"
    "      --arrival-rate R     time mode: synthetic Poisson arrivals, pods per second\n"
    "      --duration S         time mode: synthetic lifetimes, mean seconds\n"
    "      --duration-dist D    exp (default) or fixed\n"
    "      --max-wait S         time mode: drop a pod queued longer (default: never);\n"
    "                           time mode reports waits per priority and per team\n"
    "      --sample S           time mode: seconds between utilization samples\n"
    "      --rightsize MODE     time mode: off (default) or auto: learn each class's use\n"
    "                           (the workload's \"use\") as the pool does and place runs\n"
    "                           with its recommendation; reports GPU time allocated and\n"
    "                           used, GPUs needed, and runs that would hit their limit\n"
    "      --json               one JSON object per policy per line\n"
    "      --csv FILE           series: allocation ratio per arrived %, or utilization\n"
    "      --plot FILE          gnuplot chart, .png or .svg\n"
    "  -q, --quiet              no progress bar\n"
    "\n"
    "plan:\n"
    "      --success PCT        share of pods to place (default 99)\n"
    "      --mix M=W,...        GPU model mix (default: the node list's own)\n"
    "      --prices FILE        prices per hour: lines CLOUD type=NAME PRICE or\n"
    "                           CLOUD gpu=MODEL PRICE (CLOUD * for any); then the plan\n"
    "                           is the cheapest count of each node type of the\n"
    "                           inventory (a node's type: its \"type\" label)\n"
    "      --max-nodes C=N,...  with --prices: at most N nodes in cloud C\n"
    "      --exhaustive N       with --prices: try every inventory of 0..N nodes per\n"
    "                           type instead of searching (small catalogues only)\n"
    "      --plot FILE          with --prices: bar chart of the cost per type\n"
    "      --json               JSON instead of the table\n"
    "\n"
    "  -h, --help               this text\n"
    "      --version            the version\n";

enum {
    O_CANDIDATES = 256, O_COUNT, O_SCALE, O_WHOLE, O_MODE, O_RATE, O_DURATION, O_DDIST,
    O_MAXWAIT, O_SAMPLE, O_RIGHTSIZE, O_JSON, O_CSV, O_PLOT, O_SUCCESS, O_MIX, O_VERSION, O_NFORMAT,
    O_PFORMAT, O_PRICES, O_MAXNODES, O_EXHAUSTIVE, O_BATCH,
};

static const struct option s_options[] = {
    {"nodes", required_argument, NULL, 'n'},
    {"pods", required_argument, NULL, 'p'},
    {"format", required_argument, NULL, 'f'},
    {"nodes-format", required_argument, NULL, O_NFORMAT},
    {"pods-format", required_argument, NULL, O_PFORMAT},
    {"policy", required_argument, NULL, 'P'},
    {"seeds", required_argument, NULL, 's'},
    {"jobs", required_argument, NULL, 'j'},
    {"inflate", required_argument, NULL, 'i'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"candidates", required_argument, NULL, O_CANDIDATES},
    {"count", required_argument, NULL, O_COUNT},
    {"batch", required_argument, NULL, O_BATCH},
    {"scale-nodes", required_argument, NULL, O_SCALE},
    {"whole", no_argument, NULL, O_WHOLE},
    {"mode", required_argument, NULL, O_MODE},
    {"arrival-rate", required_argument, NULL, O_RATE},
    {"duration", required_argument, NULL, O_DURATION},
    {"duration-dist", required_argument, NULL, O_DDIST},
    {"max-wait", required_argument, NULL, O_MAXWAIT},
    {"sample", required_argument, NULL, O_SAMPLE},
    {"rightsize", required_argument, NULL, O_RIGHTSIZE},
    {"json", no_argument, NULL, O_JSON},
    {"csv", required_argument, NULL, O_CSV},
    {"plot", required_argument, NULL, O_PLOT},
    {"success", required_argument, NULL, O_SUCCESS},
    {"mix", required_argument, NULL, O_MIX},
    {"prices", required_argument, NULL, O_PRICES},
    {"max-nodes", required_argument, NULL, O_MAXNODES},
    {"exhaustive", required_argument, NULL, O_EXHAUSTIVE},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

static int s_usage_error(const char *fmt, const char *arg)
    __attribute__((format(printf, 1, 0)));

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gpupool-sim: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
    fprintf(stderr, "\nTry 'gpupool-sim --help'.\n");
    return EX_USAGE;
}

static int s_parse_seeds(const char *spec, uint64_t **out, int *n)
{
    int cap = 16, k = 0;
    uint64_t *s = malloc(sizeof *s * (size_t)cap);
    char *buf = strdup(spec);
    if (s == NULL || buf == NULL)
        goto bad;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t a, b;
        char *dash = strchr(t, '-');
        if (dash) {
            *dash = '\0';
            if (gp_parse_uint64(t, UINT32_MAX, &a) < 0 ||
                gp_parse_uint64(dash + 1, UINT32_MAX, &b) < 0 || b < a || b - a > 100000)
                goto bad;
        } else {
            if (gp_parse_uint64(t, UINT32_MAX, &a) < 0)
                goto bad;
            b = a;
        }
        for (uint64_t v = a; v <= b; v++) {
            if (k == cap) {
                cap *= 2;
                uint64_t *ns = realloc(s, sizeof *s * (size_t)cap);
                if (ns == NULL)
                    goto bad;
                s = ns;
            }
            s[k++] = v;
        }
    }
    if (k == 0)
        goto bad;
    free(buf);
    *out = s;
    *n = k;
    return 0;
bad:
    free(buf);
    free(s);
    return -1;
}

typedef struct {
    const sim_data_t *d;
    sim_run_opts_t *opts;    /* per run */
    sim_result_t *res;
    int nruns, next, done;
    const gp_shape_t *sh;
    const double *w;
    int ns;
    bool quiet;
    int failed;
    gp_err_t err;
    pthread_mutex_t mu;
} s_pool_t;

static void *s_worker(void *arg)
{
    s_pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->failed ? p->nruns : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->nruns)
            return NULL;
        gp_err_t e;
        int rc = sim_run(p->d, &p->opts[i], p->sh, p->w, p->ns, &p->res[i], &e);
        pthread_mutex_lock(&p->mu);
        if (rc < 0 && !p->failed) {
            p->failed = 1;
            p->err = e;
        }
        p->done++;
        if (!p->quiet)
            sim_progress(p->done, p->nruns, "runs");
        pthread_mutex_unlock(&p->mu);
    }
}

/* Mean of the queueing groups over seeds into out->groups (the caller
 * frees it); every seed's list has the same groups in the same order. */
static int s_mean_groups(const sim_result_t *r, int n, sim_result_t *out)
{
    out->groups = NULL;
    if (r[0].ngroups == 0)
        return 0;
    if ((out->groups = calloc((size_t)r[0].ngroups, sizeof *out->groups)) == NULL)
        return -1;
    for (int g = 0; g < r[0].ngroups; g++) {
        sim_group_t *o = &out->groups[g];
        *o = r[0].groups[g];
        o->placed = o->never_fit = o->dropped = o->queued_end = 0;
        o->wait_mean = o->wait_p50 = o->wait_p95 = o->wait_p99 = 0;
        int c = 0;
        for (int i = 0; i < n; i++) {
            const sim_group_t *x = &r[i].groups[g];
            o->placed += x->placed / n;
            o->never_fit += x->never_fit / n;
            o->dropped += x->dropped / n;
            o->queued_end += x->queued_end / n;
            if (x->placed > 0) {       /* waits: over the seeds that placed some */
                o->wait_mean += x->wait_mean;
                o->wait_p50 += x->wait_p50;
                o->wait_p95 += x->wait_p95;
                o->wait_p99 += x->wait_p99;
                c++;
            }
        }
        if (c > 0) {
            o->wait_mean /= c;
            o->wait_p50 /= c;
            o->wait_p95 /= c;
            o->wait_p99 /= c;
        }
    }
    return 0;
}

/* Mean over a policy's seeds into out (samples: the first seed's). */
static int s_mean(const sim_result_t *r, int n, sim_result_t *out)
{
    *out = r[0];
    double a[22] = {0};
    for (int i = 0; i < n; i++) {
        const double v[] = {r[i].pods, r[i].placed, r[i].failed, r[i].failed_gpu,
                            r[i].alloc_pct_90, r[i].alloc_pct_100, r[i].alloc_pct_final,
                            r[i].final_arrived_pct, r[i].unalloc_gpus_final,
                            r[i].frag_pct_100, r[i].frag_gpus_100, r[i].util_mean,
                            r[i].util_peak, r[i].wait_mean, r[i].wait_p95, r[i].unplaced,
                            r[i].alloc_pct_130, r[i].unalloc_gpus_130, r[i].wait_p50,
                            r[i].wait_p99, r[i].never_fit, r[i].dropped};
        for (int k = 0; k < 22; k++)
            a[k] += v[k] / n;
    }
    out->wait_p50 = a[18];
    out->wait_p99 = a[19];
    out->never_fit = a[20];
    out->dropped = a[21];
    out->pods = a[0];
    out->placed = a[1];
    out->failed = a[2];
    out->failed_gpu = a[3];
    out->alloc_pct_90 = a[4];
    out->alloc_pct_100 = a[5];
    out->alloc_pct_final = a[6];
    out->final_arrived_pct = a[7];
    out->unalloc_gpus_final = a[8];
    out->frag_pct_100 = a[9];
    out->frag_gpus_100 = a[10];
    out->util_mean = a[11];
    out->util_peak = a[12];
    out->wait_mean = a[13];
    out->wait_p95 = a[14];
    out->unplaced = a[15];
    out->alloc_pct_130 = a[16];
    out->unalloc_gpus_130 = a[17];
    sim_rs_mean(r, n, &out->rs);
    out->wall_s = 0;
    out->queue_peak = 0;
    for (int i = 0; i < n; i++) {
        out->wall_s += r[i].wall_s;
        if (r[i].queue_peak > out->queue_peak)
            out->queue_peak = r[i].queue_peak;
        out->capacity_error |= r[i].capacity_error;
    }
    for (int k = 0; k < SIM_SERIES; k++) {
        double s = 0;
        int c = 0;
        for (int i = 0; i < n; i++)
            if (!isnan(r[i].series[k])) {
                s += r[i].series[k];
                c++;
            }
        out->series[k] = c == n ? s / c : NAN;
    }
    return s_mean_groups(r, n, out);
}

static int s_exit_for(const gp_err_t *e)
{
    if (e->code == GP_ERR_IO &&
        (strstr(e->msg, "No such file") || strstr(e->msg, "Is a directory")))
        return EX_NOINPUT;
    if (e->code == GP_ERR_NOMEM)
        return EX_OSERR;
    return EX_DATAERR;
}

int main(int argc, char **argv)
{
    const char *nodes = NULL, *pods = NULL, *nformat = NULL, *pformat = NULL;
    const char *policies = "fgd";
    const char *seeds_spec = "42", *csv = NULL, *plot = NULL, *mix = NULL, *mode = "inflate";
    const char *prices = NULL, *max_nodes = NULL;
    int exhaustive = 0;
    bool json = false, quiet = false;
    int jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    sim_run_opts_t base;
    memset(&base, 0, sizeof base);
    base.inflate = 1.3;
    base.max_wait = -1;
    double success = 99;
    int64_t i64;

    if (argc < 2)
        return s_usage_error("%s", "missing command");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("gpupool-sim %s\n", GP_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "policies")) {
        for (const char *const *p = gp_policy_names(); *p; p++)
            printf("%-14s %s\n", *p, gp_policy_doc(*p));
        return 0;
    }
    if (strcmp(cmd, "replay") != 0 && strcmp(cmd, "plan") != 0)
        return s_usage_error("unknown command \"%s\"", cmd);
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":n:p:f:P:s:j:i:qh", s_options, NULL)) != -1) {
        switch (c) {
        case 'n': nodes = optarg; break;
        case 'p': pods = optarg; break;
        case 'f':
            if (strcmp(optarg, "openb") && strcmp(optarg, "jsonl"))
                return s_usage_error("--format: \"%s\" is not openb or jsonl", optarg);
            nformat = pformat = optarg;
            break;
        case O_NFORMAT:
            if (strcmp(optarg, "openb") && strcmp(optarg, "jsonl"))
                return s_usage_error("--nodes-format: \"%s\" is not openb or jsonl", optarg);
            nformat = optarg;
            break;
        case O_PFORMAT:
            if (strcmp(optarg, "openb") && strcmp(optarg, "jsonl"))
                return s_usage_error("--pods-format: \"%s\" is not openb or jsonl", optarg);
            pformat = optarg;
            break;
        case 'P': policies = optarg; break;
        case 's': seeds_spec = optarg; break;
        case 'j':
            if (gp_parse_int64(optarg, 1, 256, &i64) < 0)
                return s_usage_error("--jobs: \"%s\" is not 1..256", optarg);
            jobs = (int)i64;
            break;
        case 'i':
            if (gp_parse_double(optarg, 0.01, 100, &base.inflate) < 0)
                return s_usage_error("--inflate: \"%s\" is not a factor in 0.01..100", optarg);
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(s_usage, stdout); return 0;
        case O_VERSION: printf("gpupool-sim %s\n", GP_VERSION); return 0;
        case O_CANDIDATES:
            if (gp_parse_int64(optarg, 1, 1000000, &i64) < 0)
                return s_usage_error("--candidates: \"%s\" is not 1..1000000", optarg);
            base.candidates = (int)i64;
            break;
        case O_BATCH:
            if (gp_parse_int64(optarg, 1, 1000000, &i64) < 0)
                return s_usage_error("--batch: \"%s\" is not 1..1000000", optarg);
            base.batch = (int)i64;
            break;
        case O_COUNT:
            if (gp_parse_int64(optarg, 1, 100000000, &i64) < 0)
                return s_usage_error("--count: \"%s\" is not 1..100000000", optarg);
            base.count = (int)i64;
            break;
        case O_SCALE:
            if (gp_parse_int64(optarg, 1, 10000000, &i64) < 0)
                return s_usage_error("--scale-nodes: \"%s\" is not 1..10000000", optarg);
            base.scale_nodes = (int)i64;
            break;
        case O_WHOLE: base.whole_only = true; break;
        case O_MODE:
            if (strcmp(optarg, "inflate") && strcmp(optarg, "time"))
                return s_usage_error("--mode: \"%s\" is not inflate or time", optarg);
            mode = optarg;
            break;
        case O_RATE:
            if (gp_parse_double(optarg, 1e-9, 1e9, &base.arrival_rate) < 0)
                return s_usage_error("--arrival-rate: \"%s\" is not a positive rate", optarg);
            break;
        case O_DURATION:
            if (gp_parse_double(optarg, 1e-9, 1e12, &base.duration) < 0)
                return s_usage_error("--duration: \"%s\" is not positive seconds", optarg);
            break;
        case O_DDIST:
            if (strcmp(optarg, "exp") && strcmp(optarg, "fixed"))
                return s_usage_error("--duration-dist: \"%s\" is not exp or fixed", optarg);
            base.duration_fixed = !strcmp(optarg, "fixed");
            break;
        case O_MAXWAIT:
            if (gp_parse_double(optarg, 0, 1e12, &base.max_wait) < 0)
                return s_usage_error("--max-wait: \"%s\" is not seconds >= 0", optarg);
            break;
        case O_SAMPLE:
            if (gp_parse_double(optarg, 1e-6, 1e12, &base.sample) < 0)
                return s_usage_error("--sample: \"%s\" is not positive seconds", optarg);
            break;
        case O_RIGHTSIZE:
            if (strcmp(optarg, "auto") && strcmp(optarg, "off"))
                return s_usage_error("--rightsize: \"%s\" is not off or auto", optarg);
            base.rightsize = !strcmp(optarg, "auto");
            break;
        case O_JSON: json = true; break;
        case O_CSV: csv = optarg; break;
        case O_PLOT: plot = optarg; break;
        case O_SUCCESS:
            if (gp_parse_double(optarg, 0.01, 100, &success) < 0)
                return s_usage_error("--success: \"%s\" is not a percentage", optarg);
            break;
        case O_MIX: mix = optarg; break;
        case O_PRICES: prices = optarg; break;
        case O_MAXNODES: max_nodes = optarg; break;
        case O_EXHAUSTIVE:
            if (gp_parse_int64(optarg, 1, 1000, &i64) < 0)
                return s_usage_error("--exhaustive: \"%s\" is not 1..1000", optarg);
            exhaustive = (int)i64;
            break;
        case ':': return s_usage_error("option %s needs a value", argv[optind - 1]);
        default: return s_usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error("unexpected argument \"%s\"", argv[optind]);
    if (nodes == NULL || pods == NULL)
        return s_usage_error("%s", "--nodes and --pods are required");
    base.time_mode = !strcmp(mode, "time");
    if (base.rightsize && !base.time_mode)
        return s_usage_error("%s", "--rightsize needs --mode time");
    if (prices == NULL && (max_nodes || exhaustive))
        return s_usage_error("%s", "--max-nodes and --exhaustive need --prices");
    if (prices && mix)
        return s_usage_error("%s", "--mix and --prices do not go together");
    if (plot) {
        size_t l = strlen(plot);
        if (l < 5 || (strcmp(plot + l - 4, ".png") && strcmp(plot + l - 4, ".svg")))
            return s_usage_error("--plot: \"%s\" must end in .png or .svg", plot);
    }

    /* policies */
    char *pbuf = strdup(policies);
    const char *plist[64];
    int np = 0;
    char *save = NULL;
    for (char *t = strtok_r(pbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (gp_policy_doc(t) == NULL) {
            int rc = s_usage_error("--policy: unknown policy \"%s\" (see gpupool-sim policies)", t);
            free(pbuf);
            return rc;
        }
        if (np < 64)
            plist[np++] = t;
    }
    if (np == 0) {
        free(pbuf);
        return s_usage_error("%s", "--policy: no policy named");
    }
    uint64_t *seeds;
    int nseeds;
    if (s_parse_seeds(seeds_spec, &seeds, &nseeds) < 0) {
        free(pbuf);
        return s_usage_error("--seeds: \"%s\" is not N, A-B or a list", seeds_spec);
    }

    sim_data_t d;
    memset(&d, 0, sizeof d);
    gp_err_t err;
    int ex = 0;
    if (sim_load_nodes(&d, nodes, nformat, &err) < 0 || sim_load_pods(&d, pods, pformat, &err) < 0) {
        fprintf(stderr, "gpupool-sim: %s\n", err.msg);
        ex = s_exit_for(&err);
        goto out;
    }

    if (!strcmp(cmd, "plan")) {
        sim_plan_opts_t po = {plist[0], seeds, nseeds, success, mix, base.candidates, json,
                              prices, max_nodes, exhaustive, plot};
        if (sim_plan(&d, &po, stdout, &err) < 0) {
            fprintf(stderr, "gpupool-sim: %s\n", err.msg);
            /* a flag's own error names it ("--mix: ...") */
            ex = !strncmp(err.msg, "--", 2) ? EX_USAGE : s_exit_for(&err);
        }
        goto out;
    }

    gp_shape_t *sh = NULL;
    double *w = NULL;
    int ns = 0;
    if (sim_typical(&d, &sh, &w, &ns) < 0) {
        fprintf(stderr, "gpupool-sim: out of memory\n");
        ex = EX_OSERR;
        goto out;
    }
    int nruns = np * nseeds;
    s_pool_t pool;
    memset(&pool, 0, sizeof pool);
    pool.d = &d;
    pool.opts = calloc((size_t)nruns, sizeof *pool.opts);
    pool.res = calloc((size_t)nruns, sizeof *pool.res);
    sim_result_t *mean = calloc((size_t)np, sizeof *mean);
    if (pool.opts == NULL || pool.res == NULL || mean == NULL) {
        fprintf(stderr, "gpupool-sim: out of memory\n");
        ex = EX_OSERR;
        goto out2;
    }
    for (int i = 0; i < nruns; i++) {
        pool.opts[i] = base;
        pool.opts[i].policy = plist[i / nseeds];
        pool.opts[i].seed = seeds[i % nseeds];
    }
    pool.nruns = nruns;
    pool.sh = sh;
    pool.w = w;
    pool.ns = ns;
    pool.quiet = quiet;
    pthread_mutex_init(&pool.mu, NULL);
    if (jobs > nruns)
        jobs = nruns;
    pthread_t th[256];
    int started = 0;
    for (int i = 0; i < jobs; i++)
        if (pthread_create(&th[started], NULL, s_worker, &pool) == 0)
            started++;
    if (started == 0)
        s_worker(&pool);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&pool.mu);
    if (pool.failed) {
        fprintf(stderr, "gpupool-sim: %s\n", pool.err.msg);
        ex = pool.err.code == GP_ERR_NOMEM ? EX_OSERR : EX_DATAERR;
        goto out2;
    }
    for (int p = 0; p < np; p++)
        if (s_mean(&pool.res[p * nseeds], nseeds, &mean[p]) < 0) {
            fprintf(stderr, "gpupool-sim: out of memory\n");
            ex = EX_OSERR;
            goto out2;
        }
    for (int p = 0; p < np; p++) {
        if (json)
            sim_print_json(stdout, &d, &mean[p], seeds, nseeds, &base);
        if (mean[p].capacity_error) {
            fprintf(stderr, "gpupool-sim: policy %s: allocation accounting check failed\n",
                    mean[p].policy);
            ex = EX_SOFTWARE;
        }
    }
    if (!json)
        sim_print_table(stdout, &d, mean, np, base.time_mode);
    fflush(stdout);
    if (csv && sim_write_csv(csv, mean, np, base.time_mode, &err) < 0) {
        fprintf(stderr, "gpupool-sim: %s\n", err.msg);
        ex = EX_CANTCREAT;
    }
    if (plot && sim_write_plot(plot, mean, np, base.time_mode, &err) < 0) {
        fprintf(stderr, "gpupool-sim: %s\n", err.msg);
        ex = EX_CANTCREAT;
    }
out2:
    if (pool.res)
        for (int i = 0; i < nruns; i++)
            sim_result_free(&pool.res[i]);
    free(pool.opts);
    free(pool.res);
    if (mean)
        for (int p = 0; p < np; p++)
            free(mean[p].groups);
    free(mean);
    free(sh);
    free(w);
out:
    sim_data_free(&d);
    free(seeds);
    free(pbuf);
    return ex;
}
