/*
 * logs.c - `gpupool logs JOB [-f] [--tail N]`: a job's stdout and stderr
 * from its node, through a coordinator of the node's region
 * (GET /v1/jobs/<id>/logs; coordinator/logs.c says how it gets them).
 *
 * The job's stdout goes to ours and its stderr to ours.  The first request
 * reads each stream from its start (or its last N lines); each answer
 * gives the offsets to ask from next and names the run (one allocation of
 * the job), and the CLI asks again at once while answers bring text (an
 * answer holds at most 256 KiB per stream).  With -f it then asks every
 * second for what was added to that same run, and stops once the run has
 * ended and nothing more came.  A
 * coordinator of another region answers 421; like an endpoint that is
 * down, the request then moves on to the next --api endpoint (the local
 * pool's env lists a coordinator of each region).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "util.h"

#include "banned.h"

typedef struct {
    int follow;
    int64_t tail;
} s_logs_t;

static const gp_opt_t s_logs_opts[] = {
    { "f", GP_OPT_BOOL, offsetof(s_logs_t, follow), "no", 0, 0, "follow: print what is added" },
    { "follow", GP_OPT_BOOL, offsetof(s_logs_t, follow), "no", 0, 0, "follow: print what is added" },
    { "tail", GP_OPT_INT, offsetof(s_logs_t, tail), "-1", -1, 1000000,
      "only the last N lines of each stream" },
    { NULL, 0, 0, NULL, 0, 0, NULL },
};

/* Print one stream's new text; its next offset into *offset.  1 when
 * something was printed. */
static int s_print(const json_t *ans, const char *stream, FILE *to, int64_t *offset)
{
    json_t *s = json_object_get(ans, stream);
    if (s == NULL)
        return 0;
    json_t *data = json_object_get(s, "data");
    size_t n = json_string_length(data);
    if (n)
        fwrite(json_string_value(data), 1, n, to);
    fflush(to);
    *offset = cli_int(s, "offset");
    return n > 0;
}

int cli_cmd_logs(cli_t *cli, int argc, char **argv)
{
    static const char usage[] = "gpupool logs JOB [-f] [--tail N]";
    s_logs_t o = { 0 };
    int rc = cli_args(s_logs_opts, &o, &argc, argv, usage);
    if (rc != 0)
        return rc;
    if (argc != 2)
        return cli_fail(EX_USAGE, "usage: %s", usage);
    char base[1024];
    if (cli_job_path(cli, argv[1], base, sizeof base) < 0)
        return cli_fail(EX_USAGE, "%s: job id too long", argv[1]);
    cli->what = argv[1];
    int64_t off[2] = { 0, 0 };
    char run[256] = "";
    for (int first = 1;; first = 0) {
        char path[2048];
        if (first && o.tail >= 0)
            snprintf(path, sizeof path, "%s/logs?tail=%" PRId64, base, o.tail);
        else if (first)
            snprintf(path, sizeof path, "%s/logs", base);
        else
            snprintf(path, sizeof path, "%s/logs?stdout=%" PRId64 "&stderr=%" PRId64 "&run=%s",
                     base, off[0], off[1], run);
        json_t *ans = NULL;
        rc = cli_get(cli, path, &ans);
        if (rc != 0)
            return rc;
        if (cli->out == OUT_JSON) {
            cli_print_json(ans);
        } else {
            s_print(ans, "stdout", stdout, &off[0]);
            s_print(ans, "stderr", stderr, &off[1]);
        }
        bool more = false;
        static const char *const names[2] = { "stdout", "stderr" };
        for (int i = 0; i < 2; i++) {
            json_t *s = json_object_get(ans, names[i]);
            off[i] = cli_int(s, "offset");
            more |= json_string_length(json_object_get(s, "data")) > 0;
        }
        gp_strlcpy(run, cli_str(ans, "run"), sizeof run);
        bool running = json_is_true(json_object_get(ans, "running"));
        json_decref(ans);
        if (!more) {   /* read up to now: done, or wait for what the run adds */
            if (!o.follow || !running)
                return 0;
            sleep(1);
        }
    }
}
