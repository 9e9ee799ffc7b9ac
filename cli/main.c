/*
 * gpupool - the command-line client of a pool's REST API.
 *
 *     gpupool [--api URL[,URL...]]... [--token TOKEN | --token-file FILE]
 *             [-o table|wide|json] COMMAND ...
 *
 * Every command is one or a few HTTP requests to a coordinator (any
 * coordinator of any region: standbys answer too), printed as an aligned
 * table or as the server's JSON.  Given several endpoints, a request that
 * may be repeated (GET, PUT, DELETE, a submission naming its ids) goes to
 * the next when one cannot be reached or answers 5xx (cli_request).  `keys` works offline: it makes CURVE key
 * pairs and API tokens for the daemons.
 *
 * Errors are one line on stderr ("gpupool: ...") and an exit status from
 * <sysexits.h>, so that scripts can tell a bad request from a server that
 * is down:
 *
 *   0   EX_OK           success
 *   64  EX_USAGE        bad command line
 *   65  EX_DATAERR      invalid input: a file that is not JSON, or the server
 *                       refused the request (400, 409, 413)
 *   66  EX_NOINPUT      no such job (404) or no such file
 *   69  EX_UNAVAILABLE  the server cannot be reached or failed (5xx)
 *   73  EX_CANTCREAT    `keys curve` would overwrite a key file
 *   76  EX_PROTOCOL     the server's answer is not the gpupool API (not JSON, or
 *                       a 4xx without its JSON error: a wrong --api URL)
 *   77  EX_NOPERM       the token is missing or refused (401, 403)
 *
 * Requests are made with libcurl's easy interface, one handle reused for
 * the whole run (so `top` keeps its connection).  Answers are parsed with
 * jansson; the tables read fields defensively, so a record with fewer
 * fields than expected prints "-" rather than failing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "cli.h"
#include "daemon.h"
#include "etcd.h"
#include "keys.h"
#include "util.h"
#include "wire.h"

#include "banned.h"


static void s_usage(FILE *out)
{
    fputs(
        "usage: gpupool [--api URL[,URL...]]... [--token TOKEN | --token-file FILE]\n"
        "               [-o table|wide|json] COMMAND ...\n"
        "\n"
        "Commands:\n"
        "  submit FILE|-                 submit jobs (a JSON object or an array of them)\n"
        "  get ID                        one job: state, node, devices, history\n"
        "  ls [--state S] [--region R] [--owner O] [-q]\n"
        "                                list jobs (-q: their ids only)\n"
        "  cancel ID... | --all | [--state S] [--owner O] [--region R]\n"
        "                                cancel jobs: these, or every one not ended (that matches)\n"
        "  suspend ID...                 hold placed jobs' kernel launches (memory stays)\n"
        "  resume ID...                  let suspended jobs launch again\n"
        "  logs JOB [-f] [--tail N]      the job's stdout and stderr, from its node (-f: follow)\n"
        "  delete ID...                  remove ended jobs' records from the pool\n"
        "  purge [--state S] [--older-than D] [--owner O] [--region R]\n"
        "                                delete every ended job (that matches) ended D ago or more\n"
        "  quota ls | set TEAM [--gpus N] [--mem-mib N] [--compute PCT]\n"
        "            [--disruption-budget N] [--gang-disruption-budget N] | rm TEAM\n"
        "                                per-team limits (a job's owner is its team), and how\n"
        "                                many of its jobs / of each gang's members a drain may\n"
        "                                stop at once\n"
        "  nodes                         nodes, their devices, what is allocated, NotReady nodes,\n"
        "                                cordons and their agents' releases\n"
        "  regions                       regions, their leaders, load, NotReady nodes and\n"
        "                                coordinators' releases\n"
        "  cordon NODE [--reason R]      no new placements on NODE (survives restarts)\n"
        "  uncordon NODE                 placements again (ends a drain)\n"
        "  drain NODE [--grace 30s] [--timeout 10m] [--force] [--reason R]\n"
        "                                cordon, then move every job off (restartable jobs are\n"
        "                                stopped and requeued; --force cancels the others); exit\n"
        "                                0 when empty, 75 at the timeout with what remains\n"
        "  top [--interval 2s] [--once]  live usage of the pool, per region and per model\n"
        "  rightsize [JOB | --class C | --owner TEAM]\n"
        "                                job classes: requested, observed use, recommended slice,\n"
        "                                and the GPUs the pool would free at the recommendations\n"
        "  keys curve PREFIX             write a CURVE key pair: PREFIX.key (0600), PREFIX.pub\n"
        "  keys token                    print a new random API token (64 hex characters)\n"
        "  backup FILE [--etcd-endpoints URLS] [--etcd-ca F] [--etcd-cert F] [--etcd-key F]\n"
        "         [--etcd-user U] [--prefix P]\n"
        "                                an etcd snapshot (checked) to FILE and its metadata to\n"
        "                                FILE.meta (env GPUPOOL_ETCD_ENDPOINTS, ..._CA, ..._CERT,\n"
        "                                ..._KEY, ..._USER, ..._PASSWORD)\n"
        "  restore-check FILE            check a backup and say what it holds\n"
        "  plan --drain NODE[,NODE] | --drain-candidates [--prices F]\n"
        "       | --add [--prices F --catalog INVENTORY] [--policy P] [etcd options as backup]\n"
        "                                read-only what-if on the live pool, from one etcd read:\n"
        "                                where drained nodes' jobs go, which nodes can go\n"
        "                                together, the cheapest nodes for the pending jobs\n"
        "  doctor [-c DAEMON.conf] [--etcd-endpoints URLS] [--etcd-local-endpoints URLS]\n"
        "                                this host's round trips to each etcd member; warns when\n"
        "                                etcd's timing or the local endpoints do not fit them\n"
        "  keys token --principal P --role R [--team T]... [--file F]\n"
        "                                also append its entry (hashed) to F, the api-tokens file\n"
        "  audit [--principal P] [--limit N] [--file FILE]\n"
        "                                the coordinator's audit log (operators), or a copy of it\n"
        "\n"
        "Options:\n"
        "  --api URL[,URL]    the coordinators' REST API; repeatable, the next is tried when one\n"
        "                     cannot be reached or fails (5xx) (env GPUPOOL_API, URLs separated\n"
        "                     by commas; default " CLI_DEFAULT_API ")\n"
        "  --token TOKEN      API token (env GPUPOOL_TOKEN)\n"
        "  --token-file FILE  read the token from FILE (env GPUPOOL_TOKEN_FILE)\n"
        "  --cacert FILE      CA bundle to verify an https:// API with (env GPUPOOL_CACERT)\n"
        "  --cert FILE, --key FILE  client certificate and key (env GPUPOOL_CERT, GPUPOOL_KEY)\n"
        "  -o, --output FMT   table (default), wide (ls and nodes: more columns) or json\n"
        "  -h, --help         this help\n"
        "  --version          print the version\n"
        "\n"
        "Exit status:\n"
        "  0 success; 64 usage; 65 invalid input (not JSON, or refused by the server: 400, 409,\n"
        "  413); 66 no such job or file (404); 69 server unreachable or failing (5xx);\n"
        "  73 a key or backup file exists; 76 the answer is not the gpupool API; 77 token refused (401, 403)\n",
        out);
}

const char *cli_flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int cli_args(const gp_opt_t *opts, void *cfg, int *argc, char **argv, const char *usage)
{
    gp_err_t err = { 0 };
    if (gp_config_args(opts, cfg, argc, argv, &err) == 0)
        return 0;
    return cli_fail(EX_USAGE, "%s\nusage: %s", err.msg, usage);
}

typedef int (*cmd_fn)(cli_t *cli, int argc, char **argv);

/* Append the API endpoints of LIST ("URL[,URL...]") to cli->apis, each
 * without its trailing '/'.  Returns 0, or an exit status (printed). */
static int s_api_add(cli_t *cli, const char *list)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == '/' || p[len - 1] == ' '))
            len--;
        while (len > 0 && *p == ' ')
            p++, len--;
        if (len == 0 || (strncmp(p, "http://", 7) && strncmp(p, "https://", 8))) {
            cli_error("--api: expected http:// or https:// URLs separated by commas, got \"%s\"",
                   list);
            return EX_USAGE;
        }
        char **grown = realloc(cli->apis, (cli->napis + 1) * sizeof *grown);
        if (grown == NULL)
            return EX_OSERR;
        cli->apis = grown;
        if ((cli->apis[cli->napis] = strndup(p, len)) == NULL)
            return EX_OSERR;
        cli->napis++;
        p += strcspn(p, ",");
        if (*p == '\0')
            return 0;
        p++;
    }
}

int main(int argc, char **argv)
{
    cli_t cli = { 0 };
    const char *api = getenv("GPUPOOL_API");
    const char *token = getenv("GPUPOOL_TOKEN");
    const char *token_file = getenv("GPUPOOL_TOKEN_FILE");
    cli.cacert = getenv("GPUPOOL_CACERT");
    cli.cert = getenv("GPUPOOL_CERT");
    cli.key = getenv("GPUPOOL_KEY");
    bool flag_token = false;
    const char **api_flags = calloc((size_t)argc + 1, sizeof *api_flags);
    int napi_flags = 0;
    if (api_flags == NULL)
        return EX_OSERR;
    /* Global options may come before or after the command (`gpupool ls -o
     * json`); they are taken out and the rest keeps its order. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (rest == NULL) {
        free(api_flags);
        return EX_OSERR;
    }
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--")) {
            while (++i < argc)
                rest[nrest++] = argv[i];
            break;
        }
        if (argv[i][0] != '-' || !strcmp(argv[i], "-")) {
            rest[nrest++] = argv[i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            s_usage(stdout);
            free(rest);
            free(api_flags);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf(CLI_PROG " %s\n", GP_VERSION);
            free(rest);
            free(api_flags);
            return 0;
        } else if ((v = cli_flag_value(argc, argv, &i, "--api"))) {
            api_flags[napi_flags++] = v;     /* repeatable; the flags replace GPUPOOL_API */
        } else if ((v = cli_flag_value(argc, argv, &i, "--token-file"))) {
            token_file = v;
            token = NULL;
            flag_token = true;
        } else if ((v = cli_flag_value(argc, argv, &i, "--token"))) {
            token = v;
            if (!flag_token)
                token_file = NULL;
            flag_token = true;
        } else if ((v = cli_flag_value(argc, argv, &i, "--cacert"))) {
            cli.cacert = v;
        } else if ((v = cli_flag_value(argc, argv, &i, "--cert"))) {
            cli.cert = v;
        } else if ((v = cli_flag_value(argc, argv, &i, "--key"))) {
            cli.key = v;
        } else if ((v = cli_flag_value(argc, argv, &i, "--output")) ||
                   (v = cli_flag_value(argc, argv, &i, "-o"))) {
            if (!strcmp(v, "json"))
                cli.out = OUT_JSON;
            else if (!strcmp(v, "table"))
                cli.out = OUT_TABLE;
            else if (!strcmp(v, "wide"))
                cli.out = OUT_WIDE;
            else {
                cli_error("-o: expected table, wide or json, got \"%s\"", v);
                free(rest);
                free(api_flags);
                return EX_USAGE;
            }
        } else if (!strcmp(argv[i], "--api") || !strcmp(argv[i], "--token") ||
                   !strcmp(argv[i], "--token-file") || !strcmp(argv[i], "-o") ||
                   !strcmp(argv[i], "--cacert") || !strcmp(argv[i], "--cert") ||
                   !strcmp(argv[i], "--key") ||
                   !strcmp(argv[i], "--output")) {
            cli_error("%s needs a value", argv[i]);
            free(rest);
            free(api_flags);
            return EX_USAGE;
        } else {
            rest[nrest++] = argv[i];     /* a command's own option */
        }
    }
    if (nrest == 0 || rest[0][0] == '-') {
        if (nrest)
            cli_error("unknown option %s (see gpupool --help)", rest[0]);
        else
            s_usage(stderr);
        free(rest);
        free(api_flags);
        return EX_USAGE;
    }
    const char *cmd = rest[0];
    int cargc = nrest;
    char **cargv = rest;
    int rc = 0;
    if (!strcmp(cmd, "keys") || !strcmp(cmd, "backup") || !strcmp(cmd, "restore-check") ||
        !strcmp(cmd, "plan")) {
        /* offline, or etcd's own: no API */
        rc = !strcmp(cmd, "keys")     ? cli_cmd_keys(cargc, cargv)
             : !strcmp(cmd, "plan")   ? cli_plan(cargc, cargv)
             : !strcmp(cmd, "backup") ? cli_backup(cargc, cargv)
                                      : cli_restore_check(cargc, cargv);
        free(rest);
        free(api_flags);
        return rc;
    }
    if (!strcmp(cmd, "doctor")) {
        rc = cli_cmd_doctor(cargc, cargv, cli.out);
        free(rest);
        free(api_flags);
        return rc;
    }

    static const struct {
        const char *name;
        cmd_fn fn;
    } cmds[] = {
        { "submit", cli_cmd_submit }, { "get", cli_cmd_get },         { "ls", cli_cmd_ls },
        { "cancel", cli_cmd_cancel }, { "suspend", cli_cmd_suspend }, { "resume", cli_cmd_resume },
        { "delete", cli_cmd_delete }, { "purge", cli_cmd_purge },       { "logs", cli_cmd_logs },
        { "nodes", cli_cmd_nodes },     { "regions", cli_cmd_regions }, { "quota", cli_cmd_quota },
        { "top", cli_cmd_top },
        { "audit", cli_cmd_audit },     { "rightsize", cli_cmd_rightsize },
        { "cordon", cli_cmd_cordon },   { "uncordon", cli_cmd_cordon }, { "drain", cli_cmd_drain },
    };
    cmd_fn fn = NULL;
    for (size_t k = 0; k < GP_ARRAY_LEN(cmds); k++)
        if (!strcmp(cmd, cmds[k].name))
            fn = cmds[k].fn;
    if (fn == NULL) {
        cli_error("unknown command \"%s\" (see gpupool --help)", cmd);
        free(rest);
        free(api_flags);
        return EX_USAGE;
    }

    if (napi_flags == 0)
        rc = s_api_add(&cli, api && *api ? api : CLI_DEFAULT_API);
    for (int k = 0; k < napi_flags && rc == 0; k++)
        rc = s_api_add(&cli, api_flags[k]);
    if (rc != 0)
        goto cleanup;
    cli.api = cli.apis[0];
    if (token && *token) {
        cli.token = strdup(token);
    } else if (token_file && *token_file) {
        rc = cli_read_token(token_file, &cli.token);
        if (rc != 0)
            goto cleanup;
    }
    if (cli.token && strpbrk(cli.token, "\r\n")) {
        cli_error("the token holds a line break");
        rc = EX_USAGE;
        goto cleanup;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (cli.curl = curl_easy_init()) == NULL) {
        cli_error("cannot initialise libcurl");
        rc = EX_SOFTWARE;
        goto cleanup;
    }
    rc = fn(&cli, cargc, cargv);
    if (fflush(stdout) != 0 && rc == 0) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = EX_IOERR;
    }
cleanup:
    if (cli.curl)
        curl_easy_cleanup(cli.curl);
    curl_global_cleanup();
    if (cli.token) {
        explicit_bzero(cli.token, strlen(cli.token));
        free(cli.token);
    }
    for (size_t k = 0; k < cli.napis; k++)
        free(cli.apis[k]);
    free(cli.apis);
    free(rest);
    free(api_flags);
    return rc;
}

