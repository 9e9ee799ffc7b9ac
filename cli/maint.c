/*
 * maint.c - node maintenance commands of the gpupool CLI: cordon, uncordon
 * and drain (README "Operations: node maintenance").
 *
 * The drain itself is carried out by the leader of the node's region from
 * a record in etcd (coordinator/drain.c), not by this command: `drain`
 * stores it and then follows it, printing what changes, until the node is
 * empty (exit 0) or the drain's timeout passed (exit 75 with what remains
 * and why).  Interrupted, the drain goes on; run `drain NODE` again to
 * follow it (a drain in progress is followed, not restarted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "keys.h"
#include "util.h"

#include "banned.h"

/* "/v1/nodes/<node>/<what>"; -1 when the name is not one. */
static int s_path(const char *node, const char *what, char *out, size_t size)
{
    if (!gp_name_valid(node))
        return cli_fail(EX_USAGE, "bad node name \"%s\"", node);
    snprintf(out, size, "/v1/nodes/%s/%s", node, what);
    return 0;
}

/* cordon NODE [--reason R] | uncordon NODE */
int cli_cmd_cordon(cli_t *cli, int argc, char **argv)
{
    int on = !strcmp(argv[0], "cordon");
    const char *usage = on ? "gpupool cordon NODE [--reason R]" : "gpupool uncordon NODE";
    typedef struct {
        char *reason;
    } cordon_args_t;
    static const gp_opt_t copts[] = {
        { "reason", GP_OPT_STRING, offsetof(cordon_args_t, reason), "", 0, 0, "why" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    static const gp_opt_t uopts[] = { { NULL, 0, 0, NULL, 0, 0, NULL } };
    cordon_args_t ca = { 0 };
    int rc = cli_args(on ? copts : uopts, &ca, &argc, argv, usage);
    if (rc != 0)
        return rc;
    char path[512];
    if (argc != 2) {
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
    } else if ((rc = s_path(argv[1], "cordon", path, sizeof path)) == 0) {
        json_t *body = on ? json_pack("{s:s}", "reason", ca.reason ? ca.reason : "") : NULL;
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        json_t *ans = NULL;
        cli->what = argv[1];
        rc = cli_request(cli, on ? "PUT" : "DELETE", path, text, text ? strlen(text) : 0, &ans);
        free(text);
        if (rc == 0 && cli->out == OUT_JSON)
            cli_print_json(ans);
        else if (rc == 0)
            printf("%s %s\n", argv[1], on ? "cordoned" : "uncordoned");
        json_decref(ans);
    }
    gp_config_free(on ? copts : uopts, &ca);
    return rc;
}

/* Print what changed in the drain record since the last one seen. */
static void s_progress(const char *node, const json_t *rec, json_t **seen)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rec, "stopped"), i, e) {
        const char *job = cli_str(e, "job");
        char key[300];
        snprintf(key, sizeof key, "stop %s %s %s", job, cli_str(e, "how"),
                 json_object_get(e, "ended_ms") ? cli_str(e, "state") : "");
        if (json_object_get(*seen, key))
            continue;
        json_object_set_new(*seen, key, json_true());
        if (json_object_get(e, "ended_ms"))
            printf("drain %s: %s off the node (now %s)\n", node, job, cli_str(e, "state"));
        else
            printf("drain %s: %s %s\n", node, job, !strcmp(cli_str(e, "how"), "stopping")
                                                     ? "stopping" : cli_str(e, "how"));
    }
    json_array_foreach(json_object_get(rec, "remaining"), i, e) {
        char key[600];
        snprintf(key, sizeof key, "wait %s %s", cli_str(e, "job"), cli_str(e, "why"));
        if (json_object_get(*seen, key) || !strcmp(cli_str(e, "why"), "being stopped"))
            continue;
        json_object_set_new(*seen, key, json_true());
        printf("drain %s: %s waits: %s\n", node, cli_str(e, "job"), cli_str(e, "why"));
    }
    fflush(stdout);
}

/* drain NODE [--grace 30s] [--timeout 10m] [--force] [--reason R] */
int cli_cmd_drain(cli_t *cli, int argc, char **argv)
{
    const char *usage = "gpupool drain NODE [--grace 30s] [--timeout 10m] [--force] [--reason R]";
    typedef struct {
        char *grace, *reason;
        int64_t timeout_ms;
        int force;
    } drain_args_t;
    static const gp_opt_t dopts[] = {
        { "grace", GP_OPT_STRING, offsetof(drain_args_t, grace), "", 0, 0,
          "SIGTERM to SIGKILL (default: each job's grace_s)" },
        { "timeout", GP_OPT_DURATION, offsetof(drain_args_t, timeout_ms), "10m", 1000,
          INT64_C(7) * 24 * 3600 * 1000, "give up after" },
        { "force", GP_OPT_BOOL, offsetof(drain_args_t, force), "no", 0, 0,
          "cancel jobs that cannot be restarted" },
        { "reason", GP_OPT_STRING, offsetof(drain_args_t, reason), "", 0, 0, "the cordon's reason" },
        { NULL, 0, 0, NULL, 0, 0, NULL },
    };
    drain_args_t da = { 0 };
    int rc = cli_args(dopts, &da, &argc, argv, usage);
    if (rc != 0)
        return rc;
    char path[512];
    int64_t grace_ms = -1;
    json_t *body = NULL, *ans = NULL, *seen = json_object();
    if (argc != 2) {
        rc = cli_fail(EX_USAGE, "usage: %s", usage);
        goto cleanup;
    }
    if (da.grace && da.grace[0] &&
        (gp_parse_duration_ms(da.grace, &grace_ms) < 0 || grace_ms < 0 || grace_ms > 3600000)) {
        rc = cli_fail(EX_USAGE, "--grace: expected a duration up to 1h, got \"%s\"", da.grace);
        goto cleanup;
    }
    if ((rc = s_path(argv[1], "drain", path, sizeof path)) != 0)
        goto cleanup;
    const char *node = argv[1];
    body = json_pack("{s:I,s:b}", "timeout_s", (json_int_t)((da.timeout_ms + 999) / 1000), "force",
                     da.force);
    if (grace_ms >= 0)
        json_object_set_new(body, "grace_s", json_integer((grace_ms + 999) / 1000));
    if (da.reason && da.reason[0])
        json_object_set_new(body, "reason", json_string(da.reason));
    char *text = json_dumps(body, JSON_COMPACT);
    cli->what = node;
    rc = cli_request(cli, "POST", path, text, text ? strlen(text) : 0, &ans);
    free(text);
    if (rc != 0)
        goto cleanup;
    if (cli->out != OUT_JSON) {
        char since[40];
        cli_fmt_local(since, sizeof since, cli_int(ans, "started_ms"));
        printf("drain %s: cordoned; draining since %s (by %s)\n", node, since,
               cli_str(ans, "by"));
    }
    /* Follow the record until it ends. */
    for (;;) {
        const char *state = cli_str(ans, "state");
        if (cli->out != OUT_JSON)
            s_progress(node, ans, &seen);
        if (strcmp(state, "draining") != 0)
            break;
        sleep(1);
        json_decref(ans);
        ans = NULL;
        if ((rc = cli_get(cli, path, &ans)) != 0)
            goto cleanup;
    }
    if (cli->out == OUT_JSON) {
        cli_print_json(ans);
    } else if (!strcmp(cli_str(ans, "state"), "done")) {
        printf("node %s drained (%zu job%s moved off)\n", node,
               json_array_size(json_object_get(ans, "stopped")),
               json_array_size(json_object_get(ans, "stopped")) == 1 ? "" : "s");
    } else {
        printf("drain of %s %s; what remains:\n", node, cli_str(ans, "state"));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(ans, "remaining"), i, e)
            printf("  %s: %s\n", cli_str(e, "job"), cli_str(e, "why"));
    }
    rc = !strcmp(cli_str(ans, "state"), "done") ? 0 : EX_TEMPFAIL;
cleanup:
    json_decref(body);
    json_decref(ans);
    json_decref(seen);
    gp_config_free(dopts, &da);
    return rc;
}
