/*
 * rightsize.c - `gpupool rightsize [JOB | --class C | --owner TEAM]`: what
 * job classes ask for, use and should ask for (GET /v1/rightsize).
 *
 * One row per class: REQUESTED (the last run's request, memory per device
 * and compute), the memory peaks observed (p50 / p95 / max), the busy
 * compute shares (p50 / p95 / max), the RECOMMENDED slice, the jobs of the
 * class allocated now and the GPUs they would free at the recommendation;
 * then the pool's total.  With JOB: that job's class, and the job's
 * requested and applied slices.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"

#include "banned.h"

static void s_triple(char *out, size_t size, const json_t *o, int mib)
{
    if (!json_is_object(o)) {
        snprintf(out, size, "-");
        return;
    }
    char a[16], b[16], c[16];
    if (mib) {
        cli_fmt_mib(a, sizeof a, cli_int(o, "p50"));
        cli_fmt_mib(b, sizeof b, cli_int(o, "p95"));
        cli_fmt_mib(c, sizeof c, cli_int(o, "max"));
    } else {
        snprintf(a, sizeof a, "%" PRId64 "%%", cli_int(o, "p50"));
        snprintf(b, sizeof b, "%" PRId64 "%%", cli_int(o, "p95"));
        snprintf(c, sizeof c, "%" PRId64 "%%", cli_int(o, "max"));
    }
    snprintf(out, size, "%s/%s/%s", a, b, c);
}

static void s_slice(char *out, size_t size, const json_t *o)
{
    char m[16] = "-", c[16] = "-";
    if (json_object_get(o, "mem_mib") && cli_int(o, "mem_mib") > 0)
        cli_fmt_mib(m, sizeof m, cli_int(o, "mem_mib"));
    if (json_object_get(o, "compute_percent") && cli_int(o, "compute_percent") > 0)
        snprintf(c, sizeof c, "%" PRId64 "%%", cli_int(o, "compute_percent"));
    snprintf(out, size, "%s %s", m, c);
}

int cli_cmd_rightsize(cli_t *cli, int argc, char **argv)
{
    typedef struct {
        char *cls, *owner;
    } rs_args_t;
    static const gp_opt_t opts[] = {
        { "class", GP_OPT_STRING, offsetof(rs_args_t, cls), NULL, 0, 0, "one job class" },
        { "owner", GP_OPT_STRING, offsetof(rs_args_t, owner), NULL, 0, 0, "a team's classes" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    static const char usage[] = "gpupool rightsize [JOB | --class C | --owner TEAM]";
    rs_args_t ra = { 0 };
    int rc = cli_args(opts, &ra, &argc, argv, usage);
    if (rc == 0 && (argc > 2 || (argc == 2 && (*ra.cls || *ra.owner)))) {
        gp_config_free(opts, &ra);
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
    }
    if (rc != 0)
        return rc;
    char path[1024] = "/v1/rightsize";
    const char *names[] = { "job", "class", "owner" };
    const char *vals[] = { argc == 2 ? argv[1] : "", ra.cls, ra.owner };
    size_t pl = strlen(path);
    for (size_t i = 0; i < 3; i++) {
        if (*vals[i] == '\0')
            continue;
        char *esc = curl_easy_escape(cli->curl, vals[i], 0);
        pl += (size_t)snprintf(path + pl, sizeof path - pl, "%c%s=%s", pl == 13 ? '?' : '&',
                               names[i], esc ? esc : "");
        curl_free(esc);
    }
    gp_config_free(opts, &ra);
    json_t *ans = NULL;
    if (argc == 2)
        cli->what = argv[1];
    if ((rc = cli_get(cli, path, &ans)) != 0)
        return rc;
    json_t *classes = cli_array(ans, "classes");
    if (classes == NULL) {
        json_decref(ans);
        return cli_fail(76, "the answer is not the gpupool API (no \"classes\")");
    }
    if (cli->out == OUT_JSON) {
        rc = cli_print_json(ans);
        json_decref(ans);
        return rc;
    }
    json_t *job = json_object_get(ans, "job");
    if (json_is_object(job)) {
        char r[48], a[48];
        s_slice(r, sizeof r, json_object_get(job, "requested"));
        s_slice(a, sizeof a, json_object_get(job, "applied"));
        printf("job %s: class %s, rightsize %s, requested %s, applied %s\n", cli_str(job, "id"),
               cli_str(job, "class"), cli_str(job, "rightsize"), r,
               json_object_get(job, "applied") ? a : "- (not right-sized yet)");
    }
    static const char *const heads[] = { "CLASS", "OWNER", "RUNS", "REQUESTED", "MEM p50/p95/max",
                                         "COMPUTE p50/p95/max", "RECOMMENDED", "JOBS",
                                         "GPUS-FREED" };
    cli_table_t t;
    cli_table_init(&t, 9, heads);
    size_t i;
    json_t *c;
    json_array_foreach(classes, i, c) {
        char runs[24], req[48], mem[64], cpt[48], rec[48], jobs[24], freed[24];
        snprintf(runs, sizeof runs, "%" PRId64, cli_int(c, "runs"));
        s_slice(req, sizeof req, json_object_get(c, "requested"));
        json_t *obs = json_object_get(c, "observed");
        s_triple(mem, sizeof mem, json_object_get(obs, "mem_mib"), 1);
        s_triple(cpt, sizeof cpt, json_object_get(obs, "compute_percent"), 0);
        s_slice(rec, sizeof rec, json_object_get(c, "recommended"));
        snprintf(jobs, sizeof jobs, "%" PRId64, cli_int(c, "jobs_allocated"));
        snprintf(freed, sizeof freed, "%.2f", cli_num(c, "gpus_freed"));
        const char *row[] = { cli_str(c, "class"), cli_str(c, "owner"), runs, req, mem, cpt, rec,
                              jobs, freed };
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    printf("GPUs the pool would free if every class used its recommendation: %.2f\n",
           cli_num(ans, "gpus_freed"));
    json_decref(ans);
    return 0;
}
