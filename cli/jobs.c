/*
 * jobs.c - the job commands of the gpupool CLI: submit, get, ls, cancel,
 * suspend and resume.
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

/* Whether every job of a submission (an object or an array) names its id:
 * then sending it again cannot create a second job. */
static bool s_names_ids(const json_t *doc)
{
    if (json_is_object(doc)) {
        const char *id = json_string_value(json_object_get(doc, "id"));
        return id && *id;
    }
    size_t i;
    const json_t *job;
    json_array_foreach(doc, i, job) {
        if (!s_names_ids(job) || !json_is_object(job))
            return false;
    }
    return json_array_size(doc) > 0;
}

int cli_cmd_submit(cli_t *cli, int argc, char **argv)
{
    if (argc != 2) {
        cli_error("usage: gpupool submit FILE|-");
        return EX_USAGE;
    }
    const char *path = argv[1];
    cli_buf_t in;
    int rc = cli_read_file(path, &in);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loadb(in.buf, in.len, 0, &jerr);
    json_t *ans = NULL;
    if (doc == NULL) {
        cli_error("%s: not JSON: %s (line %d, column %d)", strcmp(path, "-") ? path : "stdin",
               jerr.text, jerr.line, jerr.column);
        rc = EX_DATAERR;
        goto cleanup;
    }
    if (!json_is_object(doc) && !json_is_array(doc)) {
        cli_error("%s: expected a job (JSON object) or an array of jobs", path);
        rc = EX_DATAERR;
        goto cleanup;
    }
    if (json_is_array(doc) && json_array_size(doc) == 0) {
        cli_error("%s: the array of jobs is empty", path);
        rc = EX_DATAERR;
        goto cleanup;
    }
    cli->post_idempotent = s_names_ids(doc);
    rc = cli_request(cli, "POST", "/v1/jobs", in.buf, in.len, &ans);
    cli->post_idempotent = false;
    if (rc != 0)
        goto cleanup;
    if (cli->out == OUT_JSON) {
        rc = cli_print_json(ans);
        if (rc == 0 && json_is_array(doc)) {
            json_t *res = json_object_get(ans, "results"), *r;
            size_t i;
            json_array_foreach(res, i, r) {
                int64_t st = cli_int(r, "status");
                if (st >= 300 && rc == 0)
                    rc = cli_status_exit(st);
            }
        }
        goto cleanup;
    }
    if (json_is_object(doc)) {
        printf("%s %s\n", cli_str(ans, "id"), cli_str(ans, "state"));
        goto cleanup;
    }
    json_t *res = cli_array(ans, "results");
    if (res == NULL) {
        rc = EX_PROTOCOL;
        goto cleanup;
    }
    size_t i, nerr = 0;
    json_t *r;
    json_array_foreach(res, i, r) {
        int64_t st = cli_int(r, "status");
        if (st == 201)
            printf("%s created\n", cli_str(r, "id"));
        else if (st == 200)
            printf("%s exists\n", cli_str(r, "id"));
        else {
            const char *id = json_string_value(json_object_get(r, "id"));
            char where[64];
            snprintf(where, sizeof where, "job %zu", i + 1);
            cli_error("%s: %s (%" PRId64 ")", id && *id ? id : where, cli_str(r, "error"), st);
            if (nerr++ == 0)
                rc = cli_status_exit(st);
        }
    }
    if (nerr)
        cli_error("%zu of %zu jobs refused", nerr, json_array_size(res));
cleanup:
    json_decref(ans);
    json_decref(doc);
    cli_buf_free(&in);
    return rc;
}

static void s_print_job(const json_t *job)
{
    char t[64], req[96], age[32];
    json_t *spec = json_object_get(job, "spec");
    json_t *alloc = json_object_get(job, "alloc");
    int64_t now = gp_wall_ms();
    printf("Job:        %s\n", cli_str(job, "id"));
    printf("State:      %s", cli_str(job, "state"));
    const char *reason = json_string_value(json_object_get(job, "reason"));
    if (reason && *reason)
        printf(" (%s)", reason);
    putchar('\n');
    printf("Owner:      %s\n", cli_str(job, "owner"));
    printf("Region:     %s\n", cli_str(job, "region"));
    printf("Node:       %s\n", cli_str(job, "node"));
    cli_fmt_request(req, sizeof req, spec);
    printf("Request:    %s, priority %" PRId64, req, cli_int(spec, "priority"));
    static const char *const lists[] = { "models", "exclude_models", "vendors", "regions",
                                         "clouds", "zones", "uuids" };
    for (size_t i = 0; i < GP_ARRAY_LEN(lists); i++) {
        json_t *l = json_object_get(spec, lists[i]), *v;
        size_t k;
        if (json_array_size(l) == 0)
            continue;
        printf(", %s ", lists[i]);
        json_array_foreach(l, k, v) printf("%s%s", k ? "," : "", json_string_value(v));
    }
    putchar('\n');
    const char *rs = json_string_value(json_object_get(job, "rightsize"));
    if (rs) {
        json_t *ap = json_object_get(job, "applied");
        printf("Rightsize:  %s", rs);
        if (json_object_get(job, "class"))
            printf(", class %s", cli_str(job, "class"));
        if (json_is_object(ap)) {
            char m[32], c[32];
            cli_fmt_mib(m, sizeof m, cli_int(ap, "mem_mib"));
            cli_fmt_compute(c, sizeof c, cli_num(ap, "compute_percent"));
            printf("; applied %s %s (requested ", m, c);
            cli_fmt_mib(m, sizeof m, cli_int(spec, "mem_mib"));
            cli_fmt_compute(c, sizeof c, cli_num(spec, "compute_percent"));
            printf("%s %s)", m, c);
        }
        if (cli_int(job, "rightsize_floor_mib") > 0)
            printf("; after an OOM at least %" PRId64 " MiB", cli_int(job, "rightsize_floor_mib"));
        putchar('\n');
    }
    if (json_is_object(alloc)) {
        json_t *d;
        size_t i;
        printf("Devices:\n");
        json_array_foreach(json_object_get(alloc, "devices"), i, d) {
            char m[32];
            cli_fmt_mib(m, sizeof m, cli_int(d, "mem_mib"));
            double pct = json_object_get(d, "compute_percent") ? cli_num(d, "compute_percent")
                                                                : cli_num(d, "compute_permille") / 10.0;
            if (json_is_true(json_object_get(d, "whole")))
                printf("  gpu%" PRId64 "  %s  whole\n", cli_int(d, "index"), cli_str(d, "uuid"));
            else if (pct <= 0)
                printf("  gpu%" PRId64 "  %s  %s memory, no compute cap\n", cli_int(d, "index"),
                       cli_str(d, "uuid"), m);
            else
                printf("  gpu%" PRId64 "  %s  %s memory, %g%% compute\n", cli_int(d, "index"),
                       cli_str(d, "uuid"), m, pct);
        }
    }
    json_t *cmd = json_object_get(job, "command");
    if (json_array_size(cmd) > 0) {
        json_t *a;
        size_t i;
        printf("Command:   ");
        json_array_foreach(cmd, i, a) printf(" %s", json_string_value(a) ? json_string_value(a) : "?");
        putchar('\n');
    }
    if (!strcmp(cli_str(job, "restart"), "always"))
        printf("Restart:    always, attempts %" PRId64, cli_int(job, "attempts"));
    else
        printf("Restart:    %s (max %" PRId64 "), attempts %" PRId64, cli_str(job, "restart"),
               cli_int(job, "max_restarts"), cli_int(job, "attempts"));
    if (cli_int(job, "restarts") > 0) {
        /* the backoff: when the last restart may run (CrashLoopBackOff) */
        cli_fmt_time(t, sizeof t, cli_int(job, "restart_at_ms"));
        printf(", restarts %" PRId64 " (backoff %" PRId64 "s, not before %s)",
               cli_int(job, "restarts"), (cli_int(job, "restart_delay_ms") + 999) / 1000, t);
    }
    if (json_is_integer(json_object_get(job, "exit_code")) &&
        (!strcmp(cli_str(job, "state"), "succeeded") || !strcmp(cli_str(job, "state"), "failed")))
        printf(", exit code %" PRId64, cli_int(job, "exit_code"));
    putchar('\n');
    cli_fmt_time(t, sizeof t, cli_int(job, "submitted_ms"));
    cli_fmt_age(age, sizeof age, now - cli_int(job, "submitted_ms"));
    printf("Submitted:  %s (%s ago)\n", t, age);
    cli_fmt_time(t, sizeof t, cli_int(job, "updated_ms"));
    printf("Updated:    %s\n", t);
    json_t *hist = json_object_get(job, "history");
    if (json_array_size(hist) > 0) {
        cli_table_t tab;
        static const char *const heads[] = { "  AT", "STATE", "NODE", "REASON" };
        cli_table_init(&tab, 4, heads);
        json_t *h;
        size_t i;
        json_array_foreach(hist, i, h) {
            char at[80];
            cli_fmt_time(t, sizeof t, cli_int(h, "at_ms"));
            snprintf(at, sizeof at, "  %s", t);
            const char *row[] = { at, cli_str(h, "state"), cli_str(h, "node"), cli_str(h, "reason") };
            cli_table_row(&tab, row);
        }
        printf("History:\n");
        cli_table_print(&tab, stdout);
        cli_table_free(&tab);
    }
}

int cli_cmd_get(cli_t *cli, int argc, char **argv)
{
    if (argc != 2) {
        cli_error("usage: gpupool get ID");
        return EX_USAGE;
    }
    char path[1024];
    if (cli_job_path(cli, argv[1], path, sizeof path) < 0) {
        cli_error("job id too long");
        return EX_USAGE;
    }
    json_t *job = NULL;
    cli->what = argv[1];
    int rc = cli_get(cli, path, &job);
    if (rc != 0)
        return rc;
    if (!json_is_string(json_object_get(job, "id"))) {
        cli_error("the answer is not a job record (no \"id\")");
        json_decref(job);
        return EX_PROTOCOL;
    }
    if (cli->out == OUT_JSON)
        rc = cli_print_json(job);
    else
        s_print_job(job);
    json_decref(job);
    return rc;
}

/* The filters of ls and cancel, as flags and as the API's query. */
typedef struct {
    char *state, *region, *owner;
    int quiet, all;
} s_filter_t;

static const gp_opt_t s_filter_opts[] = {
    { "state", GP_OPT_STRING, offsetof(s_filter_t, state), NULL, 0, 0, "jobs in this state" },
    { "region", GP_OPT_STRING, offsetof(s_filter_t, region), NULL, 0, 0, "jobs of this region" },
    { "owner", GP_OPT_STRING, offsetof(s_filter_t, owner), NULL, 0, 0, "jobs of this team" },
    { "q", GP_OPT_BOOL, offsetof(s_filter_t, quiet), "no", 0, 0, "ids only (ls)" },
    { "quiet", GP_OPT_BOOL, offsetof(s_filter_t, quiet), "no", 0, 0, "ids only (ls)" },
    { "all", GP_OPT_BOOL, offsetof(s_filter_t, all), "no", 0, 0, "every job (cancel)" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

/* "/v1/jobs?state=...&region=...&owner=..." with the filters given.
 * Returns 0, or an exit status (printed). */
static int s_jobs_path(cli_t *cli, const s_filter_t *f, char *path, size_t size)
{
    const char *names[3] = { "state", "region", "owner" };
    const char *vals[3] = { f->state, f->region, f->owner };
    size_t k = (size_t)snprintf(path, size, "/v1/jobs");
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL || *vals[i] == '\0')
            continue;
        char *esc = curl_easy_escape(cli->curl, vals[i], 0);
        if (esc == NULL)
            return EX_OSERR;
        int n = snprintf(path + k, size - k, "%c%s=%s", strchr(path, '?') ? '&' : '?', names[i],
                         esc);
        curl_free(esc);
        if (n < 0 || (size_t)n >= size - k)
            return cli_fail(EX_USAGE, "filters too long");
        k += (size_t)n;
    }
    return 0;
}

int cli_cmd_ls(cli_t *cli, int argc, char **argv)
{
    s_filter_t f = { 0 };
    char path[2048];
    int rc = cli_args(s_filter_opts, &f, &argc, argv,
                      "gpupool ls [--state S] [--region R] [--owner O] [-q]");
    if (rc == 0 && (argc > 1 || f.all))
        rc = cli_fail(EX_USAGE, "usage: gpupool ls [--state S] [--region R] [--owner O] [-q]");
    if (rc == 0)
        rc = s_jobs_path(cli, &f, path, sizeof path);
    bool quiet = f.quiet;
    gp_config_free(s_filter_opts, &f);
    if (rc != 0)
        return rc;
    json_t *ans = NULL;
    rc = cli_get(cli, path, &ans);
    if (rc != 0)
        return rc;
    json_t *jobs = cli_array(ans, "jobs");
    if (jobs == NULL) {
        json_decref(ans);
        return EX_PROTOCOL;
    }
    size_t n = json_array_size(jobs);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (sorted == NULL) {
        json_decref(ans);
        return EX_OSERR;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(jobs, i);
    qsort(sorted, n, sizeof *sorted, cli_cmp_jobs);

    if (cli->out == OUT_JSON) {
        rc = cli_print_json(ans);
    } else if (quiet) {
        for (size_t i = 0; i < n; i++)
            puts(cli_str(sorted[i], "id"));
    } else {
        cli_table_t t;
        bool wide = cli->out == OUT_WIDE;
        static const char *const heads[] = { "ID",       "STATE", "REGION", "NODE",
                                             "DEVICES",  "PRIORITY", "AGE", "REASON" };
        static const char *const wide_heads[] = { "ID",       "STATE",    "REGION", "NODE",
                                                  "DEVICES",  "PRIORITY", "OWNER",  "ATTEMPTS",
                                                  "SUBMITTED", "UPDATED", "REASON" };
        cli_table_init(&t, wide ? 11 : 8, wide ? wide_heads : heads);
        t.right[5] = true;
        t.right[wide ? 7 : 6] = true;
        int64_t now = gp_wall_ms();
        for (size_t i = 0; i < n; i++) {
            const json_t *j = sorted[i];
            char dev[128], prio[24], age[24], att[24], sub[40], upd[40];
            json_t *alloc = json_object_get(j, "alloc");
            if (json_is_object(alloc))
                cli_fmt_alloc(dev, sizeof dev, alloc);
            else
                cli_fmt_request(dev, sizeof dev, json_object_get(j, "spec"));
            snprintf(prio, sizeof prio, "%" PRId64, cli_int(json_object_get(j, "spec"), "priority"));
            cli_fmt_age(age, sizeof age, now - cli_int(j, "submitted_ms"));
            if (wide) {
                snprintf(att, sizeof att, "%" PRId64, cli_int(j, "attempts"));
                cli_fmt_local(sub, sizeof sub, cli_int(j, "submitted_ms"));
                cli_fmt_ago(upd, sizeof upd, now, cli_int(j, "updated_ms"));
                const char *row[] = { cli_str(j, "id"),   cli_str(j, "state"), cli_str(j, "region"),
                                      cli_str(j, "node"), dev,               prio,
                                      cli_str(j, "owner"), att,              sub,
                                      upd,              cli_str(j, "reason") };
                cli_table_row(&t, row);
                continue;
            }
            const char *row[] = { cli_str(j, "id"), cli_str(j, "state"), cli_str(j, "region"),
                                  cli_str(j, "node"), dev, prio, age, cli_str(j, "reason") };
            cli_table_row(&t, row);
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    free(sorted);
    json_decref(ans);
    return rc;
}

/* cancel, suspend, resume: one request per job id, "ID STATE" per answer. */
static int s_job_action(cli_t *cli, int argc, char **argv, const char *method, const char *suffix)
{
    if (argc < 2) {
        cli_error("usage: gpupool %s ID...", argv[0]);
        return EX_USAGE;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        char path[1024], full[1100];
        if (cli_job_path(cli, argv[i], path, sizeof path) < 0) {
            cli_error("%s: job id too long", argv[i]);
            rc = rc ? rc : EX_USAGE;
            continue;
        }
        snprintf(full, sizeof full, "%s%s", path, suffix);
        json_t *job = NULL;
        cli->what = argv[i];
        int r = cli_request(cli, method, full, NULL, 0, &job);
        if (r != 0) {
            rc = rc ? rc : r;
            if (r == EX_UNAVAILABLE || r == EX_NOPERM)
                break;       /* the next ones would fail the same way */
            continue;
        }
        if (cli->out == OUT_JSON)
            cli_print_json(job);
        else
            printf("%s %s\n", cli_str(job, "id"),
                   json_is_true(json_object_get(job, "deleted")) ? "deleted" : cli_str(job, "state"));
        json_decref(job);
    }
    return rc;
}

/* Whether a job's state is final: nothing left to cancel. */
static bool s_state_ended(const char *state)
{
    return !strcmp(state, "succeeded") || !strcmp(state, "failed") ||
           !strcmp(state, "cancelled") || !strcmp(state, "lost");
}

/*
 * List the jobs at path (a filtered /v1/jobs), then act on each that has
 * ended (ended) or not (!ended), and was last updated at or before
 * `before`: one request each (s_job_action: METHOD /v1/jobs/ID + suffix),
 * printing "ID STATE" per job.  cancel --all | [--state S] [--owner O]
 * [--region R] cancels what has not ended; purge deletes the records of
 * what ended long enough ago.
 */
static int s_act_on_listed(cli_t *cli, char *cmd, const char *path, bool ended, int64_t before,
                           const char *method, const char *suffix)
{
    json_t *ans = NULL;
    int rc = cli_get(cli, path, &ans);
    if (rc != 0)
        return rc;
    json_t *jobs = cli_array(ans, "jobs"), *j;
    if (jobs == NULL) {
        json_decref(ans);
        return EX_PROTOCOL;
    }
    /* argv for s_job_action: the command and the ids (borrowed from ans) */
    char **ids = calloc(json_array_size(jobs) + 1, sizeof *ids);
    if (ids == NULL) {
        json_decref(ans);
        return EX_OSERR;
    }
    int nids = 0;
    size_t i;
    ids[nids++] = cmd;
    json_array_foreach(jobs, i, j) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id && *id && s_state_ended(cli_str(j, "state")) == ended &&
            cli_int(j, "updated_ms") <= before)
            ids[nids++] = (char *)id;
    }
    if (nids == 1)
        fprintf(stderr, CLI_PROG ": no job to %s\n", cmd);
    else
        rc = s_job_action(cli, nids, ids, method, suffix);
    free(ids);
    json_decref(ans);
    return rc;
}

int cli_cmd_cancel(cli_t *cli, int argc, char **argv)
{
    static const char usage[] =
        "gpupool cancel ID... | --all | [--state S] [--owner O] [--region R]";
    s_filter_t f = { 0 };
    char path[2048];
    int rc = cli_args(s_filter_opts, &f, &argc, argv, usage);
    bool matching = rc == 0 && (f.all || *f.state || *f.owner || *f.region);
    if (rc == 0 && (f.quiet || (matching && argc > 1) || (!matching && argc < 2)))
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
    if (rc == 0 && matching && (rc = s_jobs_path(cli, &f, path, sizeof path)) == 0)
        rc = s_act_on_listed(cli, argv[0], path, false, INT64_MAX, "DELETE", "");
    else if (rc == 0)
        rc = s_job_action(cli, argc, argv, "DELETE", "");
    gp_config_free(s_filter_opts, &f);
    return rc;
}

int cli_cmd_suspend(cli_t *cli, int argc, char **argv)
{
    return s_job_action(cli, argc, argv, "POST", "/suspend");
}

int cli_cmd_resume(cli_t *cli, int argc, char **argv)
{
    return s_job_action(cli, argc, argv, "POST", "/resume");
}

/* delete ID...: the records of ended jobs, gone from the pool (and from ls). */
int cli_cmd_delete(cli_t *cli, int argc, char **argv)
{
    if (argc < 2)
        return cli_fail(EX_USAGE, "usage: gpupool delete ID...");
    return s_job_action(cli, argc, argv, "DELETE", "/record");
}

/* The flags of purge. */
typedef struct {
    char *state, *region, *owner;
    int64_t older_than_ms;
} s_purge_t;

static const gp_opt_t s_purge_opts[] = {
    { "state", GP_OPT_STRING, offsetof(s_purge_t, state), NULL, 0, 0,
      "ended jobs in this state (succeeded, failed, cancelled, lost; default: all of them)" },
    { "region", GP_OPT_STRING, offsetof(s_purge_t, region), NULL, 0, 0, "jobs of this region" },
    { "owner", GP_OPT_STRING, offsetof(s_purge_t, owner), NULL, 0, 0, "jobs of this team" },
    { "older-than", GP_OPT_DURATION, offsetof(s_purge_t, older_than_ms), "0", 0,
      INT64_C(100) * 365 * 24 * 3600 * 1000, "ended at least this long ago (e.g. 1h)" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

/*
 * purge [--state S] [--older-than D] [--owner O] [--region R]: list the
 * jobs that match, then delete the records of those ended at least D ago
 * (their updated_ms), one request each, printing "ID deleted" per job.
 */
int cli_cmd_purge(cli_t *cli, int argc, char **argv)
{
    static const char usage[] =
        "gpupool purge [--state succeeded|failed|cancelled|lost] [--older-than D] [--owner O] "
        "[--region R]";
    s_purge_t p = { 0 };
    char path[2048];
    int rc = cli_args(s_purge_opts, &p, &argc, argv, usage);
    if (rc == 0 && (argc > 1 || (p.state && *p.state && !s_state_ended(p.state))))
        rc = cli_fail(EX_USAGE, "usage: %s (only ended jobs are purged)", usage);
    s_filter_t f = { .state = p.state, .region = p.region, .owner = p.owner };
    if (rc == 0)
        rc = s_jobs_path(cli, &f, path, sizeof path);
    if (rc == 0)
        rc = s_act_on_listed(cli, argv[0], path, true, gp_wall_ms() - p.older_than_ms, "DELETE",
                             "/record");
    gp_config_free(s_purge_opts, &p);
    return rc;
}
