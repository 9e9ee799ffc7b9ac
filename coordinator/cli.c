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
 * the next when one cannot be reached or answers 5xx (s_request).  `keys` works offline: it makes CURVE key
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

#define PROG "gpupool"
#define DEFAULT_API "http://127.0.0.1:8080"
#define CLI_MAX_INPUT (64u << 20)       /* largest submission file read */
#define CLI_MAX_ANSWER (256u << 20)     /* largest answer accepted from the server */

typedef enum { OUT_TABLE = 0, OUT_JSON, OUT_WIDE } out_fmt_t;   /* wide: a table with more columns */

typedef struct {
    char **apis;             /* the API endpoints, base URLs without a trailing '/' (owned) */
    size_t napis;            /* how many: at least one */
    size_t cur;              /* the one in use: the first, or the one failed over to */
    const char *api;         /* apis[cur] */
    bool post_idempotent;    /* the next POST may be repeated: a submission naming its ids */
    char *token;             /* bearer token or NULL (owned) */
    const char *cacert;      /* CA bundle the API's certificate is checked against, or NULL */
    const char *cert, *key;  /* client certificate and key, or NULL */
    out_fmt_t out;
    CURL *curl;
    const char *what;        /* names the object of the next request in errors, or NULL */
} cli_t;

/* ------------------------------------------------------------- messages */

/* While s_hold is set, s_fail keeps its line in s_held instead of printing
 * it: a request that another API endpoint may still answer decides later
 * whether its failure is the command's (s_request). */
static bool s_hold;
static char s_held[1024];

static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_fail(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s_hold)
        gp_strlcpy(s_held, line, sizeof s_held);
    else
        fprintf(stderr, PROG ": %s\n", line);
}

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
        "  quota ls | set TEAM [--gpus N] [--mem-mib N] [--compute PCT] | rm TEAM\n"
        "                                per-team limits (a job's owner is its team)\n"
        "  nodes                         nodes, their devices and what is allocated\n"
        "  regions                       regions, their leaders and load\n"
        "  top [--interval 2s] [--once]  live usage of the pool, per region and per model\n"
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
        "                     by commas; default " DEFAULT_API ")\n"
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

/* ------------------------------------------------------------- strings */

typedef struct {
    char *buf;
    size_t len, cap;
    bool too_big;
} buf_t;

static int s_buf_add(buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (p == NULL)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static void s_buf_free(buf_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Read a whole file ("-" is stdin).  Returns 0, or an exit status with the
 * message printed. */
static int s_read_file(const char *path, buf_t *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        s_fail("cannot open %s: %s", path, strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    buf_t b = { 0 };
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > CLI_MAX_INPUT) {
            s_fail("%s: larger than %u MiB", path, CLI_MAX_INPUT >> 20);
            rc = EX_DATAERR;
            break;
        }
        if (s_buf_add(&b, chunk, n) < 0) {
            s_fail("out of memory");
            rc = EX_OSERR;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        s_fail("cannot read %s: %s", path, strerror(errno));
        rc = EX_IOERR;
    }
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        s_buf_free(&b);
        return rc;
    }
    if (b.buf == NULL && s_buf_add(&b, "", 0) < 0)
        return EX_OSERR;
    *out = b;
    return 0;
}

/* 1536 -> "1.5G", 81920 -> "80G", 512 -> "512M". */
static void s_fmt_mib(char *out, size_t size, int64_t mib)
{
    if (mib == 0)
        gp_strlcpy(out, "0", size);
    else if (mib >= 1024 * 1024 && mib % (1024 * 1024) == 0)
        snprintf(out, size, "%" PRId64 "T", mib / (1024 * 1024));
    else if (mib >= 1024 && mib % 1024 == 0)
        snprintf(out, size, "%" PRId64 "G", mib / 1024);
    else if (mib >= 1024)
        snprintf(out, size, "%.1fG", (double)mib / 1024.0);
    else
        snprintf(out, size, "%" PRId64 "M", mib);
}

/* A duration in ms as "45s", "12m", "3h", "2d". */
static void s_fmt_age(char *out, size_t size, int64_t ms)
{
    int64_t s = ms < 0 ? 0 : ms / 1000;
    if (s < 120)
        snprintf(out, size, "%" PRId64 "s", s);
    else if (s < 2 * 3600)
        snprintf(out, size, "%" PRId64 "m", s / 60);
    else if (s < 2 * 86400)
        snprintf(out, size, "%" PRId64 "h", s / 3600);
    else
        snprintf(out, size, "%" PRId64 "d", s / 86400);
}

/* Milliseconds since the epoch as "2026-11-21T15:04:05Z". */
static void s_fmt_time(char *out, size_t size, int64_t ms)
{
    if (ms <= 0) {
        gp_strlcpy(out, "-", size);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        gp_strlcpy(out, "-", size);
}

/* Milliseconds since the epoch in local time, "2026-11-21 16:04:05". */
static void s_fmt_local(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || localtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        gp_strlcpy(out, "-", size);
}

/* How long before now (ms since the epoch) a time was: "3m ago". */
static void s_fmt_ago(char *out, size_t size, int64_t now, int64_t ms)
{
    if (ms <= 0) {
        gp_strlcpy(out, "-", size);
        return;
    }
    char age[24];
    s_fmt_age(age, sizeof age, now - ms);
    snprintf(out, size, "%s ago", age);
}

/* ------------------------------------------------------------- JSON fields */

static const char *s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : "-";
}

static int64_t s_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

static double s_num(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* ------------------------------------------------------------- tables */

#define TABLE_MAX_COLS 16

typedef struct {
    int ncols;
    size_t nrows, cap;
    char **cells;            /* nrows * ncols strings, row-major, owned */
    bool right[TABLE_MAX_COLS];
} table_t;

static void s_table_init(table_t *t, int ncols, const char *const *heads)
{
    memset(t, 0, sizeof *t);
    if (ncols < 1 || ncols > TABLE_MAX_COLS) {
        s_fail("internal error: a table of %d columns", ncols);
        exit(EX_SOFTWARE);
    }
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc(t->cap * (size_t)ncols, sizeof *t->cells);
    if (t->cells == NULL) {
        s_fail("out of memory");
        exit(EX_OSERR);
    }
    for (int c = 0; c < ncols; c++)
        t->cells[c] = strdup(heads[c]);
    t->nrows = 1;
}

/* Add a row of ncols strings (copied). */
static void s_table_row(table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        char **p = realloc(t->cells, t->cap * 2 * (size_t)t->ncols * sizeof *p);
        if (p == NULL) {
            s_fail("out of memory");
            exit(EX_OSERR);
        }
        t->cells = p;
        t->cap *= 2;
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = strdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

/* Print with two spaces between columns; the last column is not padded. */
static void s_table_print(table_t *t, FILE *out)
{
    size_t width[TABLE_MAX_COLS] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t n = s ? strlen(s) : 0;
            if (n > width[c])
                width[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            s = s ? s : "";
            bool last = c == t->ncols - 1;
            if (t->right[c])
                fprintf(out, "%*s%s", (int)width[c], s, last ? "" : "  ");
            else if (last)
                fputs(s, out);
            else
                fprintf(out, "%-*s  ", (int)width[c], s);
        }
        fputc('\n', out);
    }
}

static void s_table_free(table_t *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------- HTTP */

static size_t s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > CLI_MAX_ANSWER) {
        b->too_big = true;
        return 0;
    }
    return s_buf_add(b, data, n) < 0 ? 0 : n;
}

/* The exit status for an HTTP error status. */
static int s_status_exit(long status)
{
    if (status == 401 || status == 403)
        return EX_NOPERM;
    if (status == 404)
        return EX_NOINPUT;
    if (status >= 500)
        return EX_UNAVAILABLE;
    return EX_DATAERR;
}

/*
 * One request to one endpoint: METHOD api+path, with body (JSON) when not
 * NULL.  On a 2xx answer with a JSON body, *out is the parsed answer
 * (caller decrefs) and 0 is returned.  Otherwise the error is printed (the
 * server's "error" message for a 4xx/5xx) and the exit status returned;
 * *down is set when the endpoint could not be reached or answered 5xx, so
 * that another endpoint may do better.
 */
static int s_request_one(cli_t *cli, const char *method, const char *path, const char *body,
                         size_t body_len, json_t **out, bool *down)
{
    *down = false;
    char url[4096];
    if ((size_t)snprintf(url, sizeof url, "%s%s", cli->api, path) >= sizeof url) {
        s_fail("URL too long");
        return EX_USAGE;
    }
    CURL *c = cli->curl;
    curl_easy_reset(c);
    buf_t answer = { 0 };
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    char auth[1024];
    int rc = 0;

    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (cli->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cli->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, PROG "/" GP_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cli->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, cli->cacert);
    if (cli->cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, cli->cert);
    if (cli->key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, cli->key);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }

    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        long os_errno = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
        if (answer.too_big) {
            s_fail("%s %s: answer larger than %u MiB", method, url, CLI_MAX_ANSWER >> 20);
            rc = EX_PROTOCOL;
        } else {
            const char *why = os_errno ? strerror((int)os_errno)
                              : errbuf[0] ? errbuf : curl_easy_strerror(cc);
            /* Say what a TLS mismatch looks like from here. */
            const char *hint = "";
            if ((cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR) &&
                !strncmp(cli->api, "http://", 7))
                hint = " (is the API HTTPS? use an https:// URL)";
            else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
                hint = " (the API's certificate is not trusted: check --cacert or GPUPOOL_CACERT)";
            else if (cc == CURLE_SSL_CERTPROBLEM)
                hint = " (check --cert and --key, or GPUPOOL_CERT and GPUPOOL_KEY)";
            /* our own TLS settings fail the same way everywhere */
            *down = cc != CURLE_PEER_FAILED_VERIFICATION && cc != CURLE_SSL_CACERT_BADFILE &&
                    cc != CURLE_SSL_CERTPROBLEM;
            s_fail("cannot reach %s: %s%s", cli->api, why, hint);
            rc = EX_UNAVAILABLE;
        }
        goto cleanup;
    }

    json_error_t jerr;
    json_t *j = answer.len ? json_loadb(answer.buf, answer.len, 0, &jerr) : NULL;
    if (status < 200 || status > 299) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        char text[300] = "";
        if (msg == NULL && answer.len) {
            /* not our JSON: show the start of the body, on one line */
            size_t k = 0;
            for (size_t i = 0; i < answer.len && k + 1 < sizeof text && k < 200; i++)
                text[k++] = (answer.buf[i] == '\n' || answer.buf[i] == '\r') ? ' ' : answer.buf[i];
            text[k] = '\0';
            msg = text;
        }
        int ours = json_is_string(json_object_get(j, "error"));
        if (!ours && status < 500 && status != 401 && status != 403) {
            /* A 404 (or any 4xx) without our JSON error is some other
             * server's: the URL is wrong, not the job. */
            s_fail("%s %s: the answer is not the gpupool API (HTTP %ld%s%s)", method, url, status,
                   msg && *msg ? ": " : "", msg && *msg ? msg : "");
            json_decref(j);
            rc = EX_PROTOCOL;
            goto cleanup;
        }
        if (cli->what && status == 404)
            s_fail("%s: %s (HTTP %ld)", cli->what, msg && *msg ? msg : "not found", status);
        else if (status == 401 || status == 403)
            s_fail("%s (HTTP %ld; check --token, --token-file or GPUPOOL_TOKEN)",
                   msg && *msg ? msg : "not authorized", status);
        else
            s_fail("%s (HTTP %ld)", msg && *msg ? msg : "request failed", status);
        json_decref(j);
        rc = s_status_exit(status);
        *down = status >= 500;
        goto cleanup;
    }
    if (j == NULL) {
        s_fail("%s %s: the answer is not JSON%s%s", method, url, answer.len ? ": " : "",
               answer.len ? jerr.text : " (empty)");
        rc = EX_PROTOCOL;
        goto cleanup;
    }
    *out = j;
cleanup:
    curl_slist_free_all(hdrs);
    s_buf_free(&answer);
    return rc;
}

/* A request that may be sent again to another endpoint when the first did
 * not answer: it changes nothing the second time (GET, PUT, DELETE), or it
 * is a submission whose jobs all name their ids, which the API takes once
 * (a repeat answers 200 with the stored record). */
static bool s_repeatable(const cli_t *cli, const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "PUT") || !strcmp(method, "DELETE") ||
           (!strcmp(method, "POST") && cli->post_idempotent);
}

/*
 * A request to the pool: to the endpoint in use and, when it cannot be
 * reached or answers 5xx and the request is repeatable, to the next ones
 * in turn (each failure is noted on stderr).  The endpoint that answered
 * stays in use for the rest of the run.  Returns as s_request_one.
 */
static int s_request(cli_t *cli, const char *method, const char *path, const char *body,
                     size_t body_len, json_t **out)
{
    size_t tries = s_repeatable(cli, method) ? cli->napis : 1;
    int rc = 0;
    for (size_t t = 0; t < tries; t++) {
        bool down = false, last = t + 1 == tries;
        s_hold = !last;
        s_held[0] = '\0';
        rc = s_request_one(cli, method, path, body, body_len, out, &down);
        s_hold = false;
        if (rc == 0 || last || !down) {
            if (rc != 0 && s_held[0])
                fprintf(stderr, PROG ": %s\n", s_held);
            return rc;
        }
        cli->cur = (cli->cur + 1) % cli->napis;
        cli->api = cli->apis[cli->cur];
        fprintf(stderr, PROG ": %s; trying %s\n", s_held, cli->api);
    }
    return rc;
}

static int s_get(cli_t *cli, const char *path, json_t **out)
{
    return s_request(cli, "GET", path, NULL, 0, out);
}

/* "/v1/jobs/" + escaped id. */
static int s_job_path(cli_t *cli, const char *id, char *out, size_t size)
{
    char *esc = curl_easy_escape(cli->curl, id, 0);
    if (esc == NULL)
        return -1;
    int n = snprintf(out, size, "/v1/jobs/%s", esc);
    curl_free(esc);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Print a JSON value, indented, on stdout. */
/*
 * Beside every time field "X_ms" (milliseconds since the epoch) of the
 * API's JSON, at any depth, add "X": the same time in RFC 3339, UTC, with
 * milliseconds ("2026-11-21T15:04:05.123Z"), unless the record has an X
 * already.  A "_ms" field is a time when it lies between 2000 and 3000;
 * durations in ms (timeouts, ages) are far below.
 */
#define S_MS_2000 946684800000LL
#define S_MS_3000 32503680000000LL

static void s_add_rfc3339(json_t *j)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) s_add_rfc3339(v);
        return;
    }
    if (!json_is_object(j))
        return;
    const char *k;
    json_t *v;
    void *tmp;
    json_t *add = json_object();
    json_object_foreach_safe(j, tmp, k, v) {
        size_t len = strlen(k);
        s_add_rfc3339(v);
        if (len < 4 || strcmp(k + len - 3, "_ms") || !json_is_integer(v) || add == NULL)
            continue;
        json_int_t ms = json_integer_value(v);
        char name[128], t[40], text[48];
        if (ms < S_MS_2000 || ms >= S_MS_3000 || len - 3 >= sizeof name)
            continue;
        memcpy(name, k, len - 3);
        name[len - 3] = '\0';
        if (json_object_get(j, name))
            continue;
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        if (gmtime_r(&sec, &tm) == NULL || strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            continue;
        snprintf(text, sizeof text, "%s.%03dZ", t, (int)(ms % 1000));
        json_object_set_new(add, name, json_string(text));
    }
    json_object_update(j, add);
    json_decref(add);
}

static int s_print_json(const json_t *j)
{
    json_t *copy = json_deep_copy(j);
    if (copy)
        s_add_rfc3339(copy);
    char *s = copy ? json_dumps(copy, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    json_decref(copy);
    if (s == NULL) {
        s_fail("out of memory");
        return EX_OSERR;
    }
    puts(s);
    free(s);
    return 0;
}

/* A response that must carry an array under key. */
static json_t *s_array(const json_t *j, const char *key)
{
    json_t *a = json_object_get(j, key);
    if (!json_is_array(a)) {
        s_fail("the answer has no \"%s\" array", key);
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------------- jobs */

/* A slice's compute share: "25%", or "no cap" for a memory-only slice
 * (compute 0: it may use whatever GPU time the others leave). */
static void s_fmt_compute(char *out, size_t size, double pct)
{
    if (pct <= 0)
        gp_strlcpy(out, "no cap", size);
    else
        snprintf(out, size, "%g%%", pct);
}

/* What a job asked for: "2 whole", "1x 10G 25%", "1x 40% mem". */
static void s_fmt_request(char *out, size_t size, const json_t *spec)
{
    int64_t n = s_int(spec, "devices");
    if (n == 0)
        n = s_int(spec, "nvidia.com/gpu");
    int64_t mem = s_int(spec, "mem_mib");
    double memp = s_num(spec, "mem_percent");
    double comp = s_num(spec, "compute_percent");
    bool whole = json_is_true(json_object_get(spec, "whole")) ||
                 (n > 0 && mem == 0 && memp == 0 && comp == 0);
    if (n == 0) {
        gp_strlcpy(out, "cpu", size);
    } else if (whole) {
        snprintf(out, size, "%" PRId64 " whole", n);
    } else {
        char m[32] = "";
        if (mem > 0)
            s_fmt_mib(m, sizeof m, mem);
        else if (memp > 0)
            snprintf(m, sizeof m, "%g%%mem", memp);
        else
            gp_strlcpy(m, "all-mem", sizeof m);
        char c[16];
        s_fmt_compute(c, sizeof c, comp);
        snprintf(out, size, "%" PRId64 "x %s %s", n, m, c);
    }
}

/* Where a job runs: "gpu0 10G 25%", "gpu0,1 whole". */
static void s_fmt_alloc(char *out, size_t size, const json_t *alloc)
{
    json_t *devs = json_object_get(alloc, "devices");
    size_t n = json_array_size(devs);
    if (n == 0) {
        gp_strlcpy(out, "cpu", size);
        return;
    }
    char idx[64] = "gpu";
    size_t k = 3;
    for (size_t i = 0; i < n && k + 8 < sizeof idx; i++)
        k += (size_t)snprintf(idx + k, sizeof idx - k, "%s%" PRId64, i ? "," : "",
                              s_int(json_array_get(devs, i), "index"));
    const json_t *d0 = json_array_get(devs, 0);
    if (json_is_true(json_object_get(d0, "whole"))) {
        snprintf(out, size, "%s whole", idx);
        return;
    }
    char m[32];
    s_fmt_mib(m, sizeof m, s_int(d0, "mem_mib"));
    double pct = json_object_get(d0, "compute_percent") ? s_num(d0, "compute_percent")
                                                         : s_num(d0, "compute_permille") / 10.0;
    char c[16];
    s_fmt_compute(c, sizeof c, pct);
    snprintf(out, size, "%s %s %s", idx, m, c);
}

/* The elements of a JSON array sorted by one or two string fields (a view:
 * the array owns them).  Caller frees the returned array. */
static const char *s_sort_k1, *s_sort_k2;

static int s_cmp_fields(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(s_str(x, s_sort_k1), s_str(y, s_sort_k1));
    if (c == 0 && s_sort_k2)
        c = strcmp(s_str(x, s_sort_k2), s_str(y, s_sort_k2));
    return c;
}

static json_t **s_sorted(const json_t *array, const char *k1, const char *k2, size_t *n)
{
    *n = json_array_size(array);
    json_t **v = calloc(*n ? *n : 1, sizeof *v);
    if (v == NULL) {
        s_fail("out of memory");
        exit(EX_OSERR);
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = json_array_get(array, i);
    s_sort_k1 = k1;
    s_sort_k2 = k2;
    qsort(v, *n, sizeof *v, s_cmp_fields);
    return v;
}

static int s_cmp_jobs(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    /* by the second of submission, then by id: a batch reads in order */
    int64_t tx = s_int(x, "submitted_ms") / 1000, ty = s_int(y, "submitted_ms") / 1000;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(s_str(x, "id"), s_str(y, "id"));
}

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

static int s_cmd_submit(cli_t *cli, int argc, char **argv)
{
    if (argc != 2) {
        s_fail("usage: gpupool submit FILE|-");
        return EX_USAGE;
    }
    const char *path = argv[1];
    buf_t in;
    int rc = s_read_file(path, &in);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loadb(in.buf, in.len, 0, &jerr);
    json_t *ans = NULL;
    if (doc == NULL) {
        s_fail("%s: not JSON: %s (line %d, column %d)", strcmp(path, "-") ? path : "stdin",
               jerr.text, jerr.line, jerr.column);
        rc = EX_DATAERR;
        goto cleanup;
    }
    if (!json_is_object(doc) && !json_is_array(doc)) {
        s_fail("%s: expected a job (JSON object) or an array of jobs", path);
        rc = EX_DATAERR;
        goto cleanup;
    }
    if (json_is_array(doc) && json_array_size(doc) == 0) {
        s_fail("%s: the array of jobs is empty", path);
        rc = EX_DATAERR;
        goto cleanup;
    }
    cli->post_idempotent = s_names_ids(doc);
    rc = s_request(cli, "POST", "/v1/jobs", in.buf, in.len, &ans);
    cli->post_idempotent = false;
    if (rc != 0)
        goto cleanup;
    if (cli->out == OUT_JSON) {
        rc = s_print_json(ans);
        if (rc == 0 && json_is_array(doc)) {
            json_t *res = json_object_get(ans, "results"), *r;
            size_t i;
            json_array_foreach(res, i, r) {
                int64_t st = s_int(r, "status");
                if (st >= 300 && rc == 0)
                    rc = s_status_exit(st);
            }
        }
        goto cleanup;
    }
    if (json_is_object(doc)) {
        printf("%s %s\n", s_str(ans, "id"), s_str(ans, "state"));
        goto cleanup;
    }
    json_t *res = s_array(ans, "results");
    if (res == NULL) {
        rc = EX_PROTOCOL;
        goto cleanup;
    }
    size_t i, nerr = 0;
    json_t *r;
    json_array_foreach(res, i, r) {
        int64_t st = s_int(r, "status");
        if (st == 201)
            printf("%s created\n", s_str(r, "id"));
        else if (st == 200)
            printf("%s exists\n", s_str(r, "id"));
        else {
            const char *id = json_string_value(json_object_get(r, "id"));
            char where[64];
            snprintf(where, sizeof where, "job %zu", i + 1);
            s_fail("%s: %s (%" PRId64 ")", id && *id ? id : where, s_str(r, "error"), st);
            if (nerr++ == 0)
                rc = s_status_exit(st);
        }
    }
    if (nerr)
        s_fail("%zu of %zu jobs refused", nerr, json_array_size(res));
cleanup:
    json_decref(ans);
    json_decref(doc);
    s_buf_free(&in);
    return rc;
}

static void s_print_job(const json_t *job)
{
    char t[64], req[96], age[32];
    json_t *spec = json_object_get(job, "spec");
    json_t *alloc = json_object_get(job, "alloc");
    int64_t now = gp_wall_ms();
    printf("Job:        %s\n", s_str(job, "id"));
    printf("State:      %s", s_str(job, "state"));
    const char *reason = json_string_value(json_object_get(job, "reason"));
    if (reason && *reason)
        printf(" (%s)", reason);
    putchar('\n');
    printf("Owner:      %s\n", s_str(job, "owner"));
    printf("Region:     %s\n", s_str(job, "region"));
    printf("Node:       %s\n", s_str(job, "node"));
    s_fmt_request(req, sizeof req, spec);
    printf("Request:    %s, priority %" PRId64, req, s_int(spec, "priority"));
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
    if (json_is_object(alloc)) {
        json_t *d;
        size_t i;
        printf("Devices:\n");
        json_array_foreach(json_object_get(alloc, "devices"), i, d) {
            char m[32];
            s_fmt_mib(m, sizeof m, s_int(d, "mem_mib"));
            double pct = json_object_get(d, "compute_percent") ? s_num(d, "compute_percent")
                                                                : s_num(d, "compute_permille") / 10.0;
            if (json_is_true(json_object_get(d, "whole")))
                printf("  gpu%" PRId64 "  %s  whole\n", s_int(d, "index"), s_str(d, "uuid"));
            else if (pct <= 0)
                printf("  gpu%" PRId64 "  %s  %s memory, no compute cap\n", s_int(d, "index"),
                       s_str(d, "uuid"), m);
            else
                printf("  gpu%" PRId64 "  %s  %s memory, %g%% compute\n", s_int(d, "index"),
                       s_str(d, "uuid"), m, pct);
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
    printf("Restart:    %s (max %" PRId64 "), attempts %" PRId64, s_str(job, "restart"),
           s_int(job, "max_restarts"), s_int(job, "attempts"));
    if (json_is_integer(json_object_get(job, "exit_code")) &&
        (!strcmp(s_str(job, "state"), "succeeded") || !strcmp(s_str(job, "state"), "failed")))
        printf(", exit code %" PRId64, s_int(job, "exit_code"));
    putchar('\n');
    s_fmt_time(t, sizeof t, s_int(job, "submitted_ms"));
    s_fmt_age(age, sizeof age, now - s_int(job, "submitted_ms"));
    printf("Submitted:  %s (%s ago)\n", t, age);
    s_fmt_time(t, sizeof t, s_int(job, "updated_ms"));
    printf("Updated:    %s\n", t);
    json_t *hist = json_object_get(job, "history");
    if (json_array_size(hist) > 0) {
        table_t tab;
        static const char *const heads[] = { "  AT", "STATE", "NODE", "REASON" };
        s_table_init(&tab, 4, heads);
        json_t *h;
        size_t i;
        json_array_foreach(hist, i, h) {
            char at[80];
            s_fmt_time(t, sizeof t, s_int(h, "at_ms"));
            snprintf(at, sizeof at, "  %s", t);
            const char *row[] = { at, s_str(h, "state"), s_str(h, "node"), s_str(h, "reason") };
            s_table_row(&tab, row);
        }
        printf("History:\n");
        s_table_print(&tab, stdout);
        s_table_free(&tab);
    }
}

static int s_cmd_get(cli_t *cli, int argc, char **argv)
{
    if (argc != 2) {
        s_fail("usage: gpupool get ID");
        return EX_USAGE;
    }
    char path[1024];
    if (s_job_path(cli, argv[1], path, sizeof path) < 0) {
        s_fail("job id too long");
        return EX_USAGE;
    }
    json_t *job = NULL;
    cli->what = argv[1];
    int rc = s_get(cli, path, &job);
    if (rc != 0)
        return rc;
    if (!json_is_string(json_object_get(job, "id"))) {
        s_fail("the answer is not a job record (no \"id\")");
        json_decref(job);
        return EX_PROTOCOL;
    }
    if (cli->out == OUT_JSON)
        rc = s_print_json(job);
    else
        s_print_job(job);
    json_decref(job);
    return rc;
}

static int s_cmd_ls(cli_t *cli, int argc, char **argv)
{
    const char *filters[3] = { NULL, NULL, NULL };
    static const char *const names[3] = { "state", "region", "owner" };
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        bool found = false;
        for (int f = 0; f < 3 && !found; f++) {
            size_t n = strlen(names[f]);
            if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, names[f], n))
                continue;
            if (argv[i][2 + n] == '=') {
                filters[f] = argv[i] + 3 + n;
                found = true;
            } else if (argv[i][2 + n] == '\0' && i + 1 < argc) {
                filters[f] = argv[++i];
                found = true;
            }
        }
        if (found)
            continue;
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            quiet = true;
            continue;
        }
        s_fail("usage: gpupool ls [--state S] [--region R] [--owner O] [-q]");
        return EX_USAGE;
    }
    char path[2048] = "/v1/jobs";
    size_t k = strlen(path);
    char sep = '?';
    for (int f = 0; f < 3; f++) {
        if (filters[f] == NULL)
            continue;
        char *esc = curl_easy_escape(cli->curl, filters[f], 0);
        if (esc == NULL)
            return EX_OSERR;
        int n = snprintf(path + k, sizeof path - k, "%c%s=%s", sep, names[f], esc);
        curl_free(esc);
        if (n < 0 || (size_t)n >= sizeof path - k) {
            s_fail("filters too long");
            return EX_USAGE;
        }
        k += (size_t)n;
        sep = '&';
    }
    json_t *ans = NULL;
    int rc = s_get(cli, path, &ans);
    if (rc != 0)
        return rc;
    json_t *jobs = s_array(ans, "jobs");
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
    qsort(sorted, n, sizeof *sorted, s_cmp_jobs);

    if (cli->out == OUT_JSON) {
        rc = s_print_json(ans);
    } else if (quiet) {
        for (size_t i = 0; i < n; i++)
            puts(s_str(sorted[i], "id"));
    } else {
        table_t t;
        bool wide = cli->out == OUT_WIDE;
        static const char *const heads[] = { "ID",       "STATE", "REGION", "NODE",
                                             "DEVICES",  "PRIORITY", "AGE", "REASON" };
        static const char *const wide_heads[] = { "ID",       "STATE",    "REGION", "NODE",
                                                  "DEVICES",  "PRIORITY", "OWNER",  "ATTEMPTS",
                                                  "SUBMITTED", "UPDATED", "REASON" };
        s_table_init(&t, wide ? 11 : 8, wide ? wide_heads : heads);
        t.right[5] = true;
        t.right[wide ? 7 : 6] = true;
        int64_t now = gp_wall_ms();
        for (size_t i = 0; i < n; i++) {
            const json_t *j = sorted[i];
            char dev[128], prio[24], age[24], att[24], sub[40], upd[40];
            json_t *alloc = json_object_get(j, "alloc");
            if (json_is_object(alloc))
                s_fmt_alloc(dev, sizeof dev, alloc);
            else
                s_fmt_request(dev, sizeof dev, json_object_get(j, "spec"));
            snprintf(prio, sizeof prio, "%" PRId64, s_int(json_object_get(j, "spec"), "priority"));
            s_fmt_age(age, sizeof age, now - s_int(j, "submitted_ms"));
            if (wide) {
                snprintf(att, sizeof att, "%" PRId64, s_int(j, "attempts"));
                s_fmt_local(sub, sizeof sub, s_int(j, "submitted_ms"));
                s_fmt_ago(upd, sizeof upd, now, s_int(j, "updated_ms"));
                const char *row[] = { s_str(j, "id"),   s_str(j, "state"), s_str(j, "region"),
                                      s_str(j, "node"), dev,               prio,
                                      s_str(j, "owner"), att,              sub,
                                      upd,              s_str(j, "reason") };
                s_table_row(&t, row);
                continue;
            }
            const char *row[] = { s_str(j, "id"), s_str(j, "state"), s_str(j, "region"),
                                  s_str(j, "node"), dev, prio, age, s_str(j, "reason") };
            s_table_row(&t, row);
        }
        s_table_print(&t, stdout);
        s_table_free(&t);
    }
    free(sorted);
    json_decref(ans);
    return rc;
}

/* cancel, suspend, resume: one request per job id, "ID STATE" per answer. */
static int s_job_action(cli_t *cli, int argc, char **argv, const char *method, const char *suffix)
{
    if (argc < 2) {
        s_fail("usage: gpupool %s ID...", argv[0]);
        return EX_USAGE;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        char path[1024], full[1100];
        if (s_job_path(cli, argv[i], path, sizeof path) < 0) {
            s_fail("%s: job id too long", argv[i]);
            rc = rc ? rc : EX_USAGE;
            continue;
        }
        snprintf(full, sizeof full, "%s%s", path, suffix);
        json_t *job = NULL;
        cli->what = argv[i];
        int r = s_request(cli, method, full, NULL, 0, &job);
        if (r != 0) {
            rc = rc ? rc : r;
            if (r == EX_UNAVAILABLE || r == EX_NOPERM)
                break;       /* the next ones would fail the same way */
            continue;
        }
        if (cli->out == OUT_JSON)
            s_print_json(job);
        else
            printf("%s %s\n", s_str(job, "id"), s_str(job, "state"));
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
 * cancel --all | [--state S] [--owner O] [--region R]: list the jobs that
 * match (every job with --all), then cancel those not ended yet, one
 * request each, printing "ID STATE" per job cancelled.
 */
static int s_cancel_matching(cli_t *cli, int argc, char **argv)
{
    static const char *const names[3] = { "--state", "--owner", "--region" };
    const char *filters[3] = { NULL, NULL, NULL };
    bool all = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int f;
        for (f = 0; f < 3 && v == NULL; f++)
            v = cli_flag_value(argc, argv, &i, names[f]);
        if (v && *v) {
            filters[f - 1] = v;
        } else if (!strcmp(argv[i], "--all")) {
            all = true;
        } else {
            s_fail("usage: gpupool cancel ID... | --all | [--state S] [--owner O] [--region R]");
            return EX_USAGE;
        }
    }
    char path[2048] = "/v1/jobs";
    size_t k = strlen(path);
    for (int f = 0; f < 3; f++) {
        if (filters[f] == NULL)
            continue;
        char *esc = curl_easy_escape(cli->curl, filters[f], 0);
        if (esc == NULL)
            return EX_OSERR;
        int n = snprintf(path + k, sizeof path - k, "%c%s=%s", k == 8 ? '?' : '&',
                         names[f] + 2, esc);
        curl_free(esc);
        if (n < 0 || (size_t)n >= sizeof path - k) {
            s_fail("filters too long");
            return EX_USAGE;
        }
        k += (size_t)n;
    }
    (void)all;      /* --all: no filter, every job not ended */
    json_t *ans = NULL;
    int rc = s_get(cli, path, &ans);
    if (rc != 0)
        return rc;
    json_t *jobs = s_array(ans, "jobs"), *j;
    if (jobs == NULL) {
        json_decref(ans);
        return EX_PROTOCOL;
    }
    /* argv for s_job_action: "cancel" and the ids (borrowed from ans) */
    char **ids = calloc(json_array_size(jobs) + 1, sizeof *ids);
    if (ids == NULL) {
        json_decref(ans);
        return EX_OSERR;
    }
    int nids = 0;
    size_t i;
    ids[nids++] = argv[0];
    json_array_foreach(jobs, i, j) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id && *id && !s_state_ended(s_str(j, "state")))
            ids[nids++] = (char *)id;
    }
    if (nids == 1)
        fprintf(stderr, PROG ": no job to cancel\n");
    else
        rc = s_job_action(cli, nids, ids, "DELETE", "");
    free(ids);
    json_decref(ans);
    return rc;
}

static int s_cmd_cancel(cli_t *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--", 2))
            return s_cancel_matching(cli, argc, argv);
    return s_job_action(cli, argc, argv, "DELETE", "");
}

static int s_cmd_suspend(cli_t *cli, int argc, char **argv)
{
    return s_job_action(cli, argc, argv, "POST", "/suspend");
}

static int s_cmd_resume(cli_t *cli, int argc, char **argv)
{
    return s_job_action(cli, argc, argv, "POST", "/resume");
}

/* GET a list (path answers {key: [...]}): with -o json print the answer and
 * return 1 with *rc = 0; on error return 1 with *rc the exit code; else
 * return 0 with *ans (the caller decrefs) and *list (borrowed from it)
 * for a table. */
static int s_get_list(cli_t *cli, const char *path, const char *key, json_t **ans, json_t **list,
                      int *rc)
{
    *ans = NULL;
    if ((*rc = s_get(cli, path, ans)) != 0)
        return 1;
    *list = s_array(*ans, key);
    if (*list == NULL) {
        json_decref(*ans);
        *rc = EX_PROTOCOL;
        return 1;
    }
    if (cli->out == OUT_JSON) {
        *rc = s_print_json(*ans);
        json_decref(*ans);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- quotas */

/* quota ls | quota set TEAM [--gpus N] [--mem-mib N] [--compute PCT] | quota rm TEAM */
static int s_cmd_quota(cli_t *cli, int argc, char **argv)
{
    const char *usage = "usage: gpupool quota ls | set TEAM [--gpus N] [--mem-mib N] "
                        "[--compute PCT] | rm TEAM";
    if (argc < 2) {
        s_fail("%s", usage);
        return EX_USAGE;
    }
    json_t *ans = NULL;
    int rc;
    if (!strcmp(argv[1], "ls") && argc == 2) {
        json_t *qs;
        if (s_get_list(cli, "/v1/quotas", "quotas", &ans, &qs, &rc))
            return rc;
        table_t t;
        static const char *const heads[] = { "TEAM", "GPUS", "MEM_MIB", "COMPUTE%" };
        s_table_init(&t, 4, heads);
        size_t n;
        json_t **sorted = s_sorted(qs, "team", NULL, &n);
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
            snprintf(m, sizeof m, "%" PRId64 " / ", s_int(used, "mem_mib"));
            if ((v = json_object_get(q, "mem_mib")) != NULL) {
                size_t l = strlen(m);
                snprintf(m + l, sizeof m - l, "%" PRId64, (int64_t)json_integer_value(v));
            } else {
                size_t l = strlen(m);
                snprintf(m + l, sizeof m - l, "-");
            }
            snprintf(cp, sizeof cp, "%" PRId64 " / ", s_int(used, "compute_percent"));
            if ((v = json_object_get(q, "compute_percent")) != NULL) {
                size_t l = strlen(cp);
                snprintf(cp + l, sizeof cp - l, "%" PRId64, (int64_t)json_integer_value(v));
            } else {
                size_t l = strlen(cp);
                snprintf(cp + l, sizeof cp - l, "-");
            }
            const char *row[] = { s_str(q, "team"), g, m, cp };
            s_table_row(&t, row);
        }
        free(sorted);
        s_table_print(&t, stdout);
        s_table_free(&t);
        json_decref(ans);
        return 0;
    }
    if (argc < 3 || (strcmp(argv[1], "set") && strcmp(argv[1], "rm"))) {
        s_fail("%s", usage);
        return EX_USAGE;
    }
    char path[512];
    snprintf(path, sizeof path, "/v1/quotas/%s", argv[2]);
    if (!strcmp(argv[1], "rm")) {
        cli->what = argv[2];
        rc = s_request(cli, "DELETE", path, NULL, 0, &ans);
        json_decref(ans);
        return rc;
    }
    json_t *body = json_object();
    for (int i = 3; i < argc; i += 2) {
        double d;
        if (i + 1 >= argc || gp_parse_double(argv[i + 1], 0, 1e12, &d) < 0) {
            json_decref(body);
            s_fail("%s needs a number >= 0\n%s", argv[i], usage);
            return EX_USAGE;
        }
        if (!strcmp(argv[i], "--gpus"))
            json_object_set_new(body, "gpus", json_real(d));
        else if (!strcmp(argv[i], "--mem-mib"))
            json_object_set_new(body, "mem_mib", json_integer((json_int_t)d));
        else if (!strcmp(argv[i], "--compute"))
            json_object_set_new(body, "compute_percent", json_integer((json_int_t)d));
        else {
            json_decref(body);
            s_fail("unknown option %s\n%s", argv[i], usage);
            return EX_USAGE;
        }
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        s_fail("%s", usage);
        return EX_USAGE;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    cli->what = argv[2];
    rc = s_request(cli, "PUT", path, text, text ? strlen(text) : 0, &ans);
    free(text);
    if (rc == 0 && cli->out == OUT_JSON)
        s_print_json(ans);
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
    snprintf(cpus, 24, "%g", (double)s_int(node, "cpu_milli") / 1000.0);
    s_fmt_mib(hostmem, 24, s_int(node, "mem_mib"));
    snprintf(oversub, 24, "%g", json_is_number(json_object_get(node, "oversub"))
                                    ? s_num(node, "oversub") : 1.0);
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

static int s_cmd_nodes(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        s_fail("usage: gpupool nodes");
        return EX_USAGE;
    }
    json_t *ans, *nodes;
    int rc;
    if (s_get_list(cli, "/v1/nodes", "nodes", &ans, &nodes, &rc))
        return rc;
    table_t t;
    bool wide = cli->out == OUT_WIDE;
    static const char *const heads[] = { "NODE", "REGION", "ZONE", "MODEL", "GPUS",
                                         "MEM", "ALLOCATED", "JOBS", "HEALTHY",
                                         /* -o wide */
                                         "CLOUD", "CPUS", "HOST-MEM", "OVERSUB", "LABELS" };
    s_table_init(&t, wide ? 14 : 9, heads);
    t.right[4] = t.right[7] = true;
    size_t nn;
    json_t **sorted = s_sorted(nodes, "region", "name", &nn);
    for (size_t i = 0; i < nn; i++) {
        json_t *node = sorted[i];
        json_t *devs = json_object_get(node, "devices"), *d;
        size_t k, ndev = json_array_size(devs), unhealthy = 0;
        int64_t mem = 0;
        char models[128] = "";
        json_array_foreach(devs, k, d) {
            mem += s_int(d, "mem_mib");
            if (json_is_false(json_object_get(d, "healthy")))
                unhealthy++;
            const char *m = s_str(d, "model");
            /* the distinct models, in order of appearance */
            bool seen = false;
            for (size_t p = 0; p < k && !seen; p++)
                seen = !strcmp(s_str(json_array_get(devs, p), "model"), m);
            if (!seen) {
                size_t len = strlen(models);
                snprintf(models + len, sizeof models - len, "%s%s", len ? "," : "", m);
            }
        }
        json_t *al = json_object_get(node, "allocated");
        char gpus[24], memtxt[80], used[32], total[32], alloc[48], jobs[24], healthy[24];
        snprintf(gpus, sizeof gpus, "%zu", ndev);
        s_fmt_mib(used, sizeof used, s_int(al, "mem_mib"));
        s_fmt_mib(total, sizeof total, mem);
        snprintf(memtxt, sizeof memtxt, "%s/%s", used, total);
        double milli = (double)s_int(al, "gpu_milli");
        snprintf(alloc, sizeof alloc, "%.2f/%zu (%.0f%%)", milli / 1000.0, ndev,
                 ndev ? milli / 10.0 / (double)ndev : 0.0);
        snprintf(jobs, sizeof jobs, "%" PRId64, s_int(al, "jobs"));
        if (json_is_false(json_object_get(node, "healthy")))
            gp_strlcpy(healthy, "no", sizeof healthy);
        else if (unhealthy)
            snprintf(healthy, sizeof healthy, "%zu/%zu gpus", ndev - unhealthy, ndev);
        else
            gp_strlcpy(healthy, "yes", sizeof healthy);
        char cpus[24], hostmem[32], oversub[24], labels[256];
        s_node_wide(node, cpus, hostmem, oversub, labels, sizeof labels);
        const char *row[] = { s_str(node, "name"), s_str(node, "region"), s_str(node, "zone"),
                              models[0] ? models : "-", gpus, memtxt, alloc, jobs, healthy,
                              s_str(node, "cloud"), cpus, hostmem, oversub, labels };
        s_table_row(&t, row);
    }
    free(sorted);
    s_table_print(&t, stdout);
    s_table_free(&t);
    json_decref(ans);
    return 0;
}

static int s_cmd_regions(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        s_fail("usage: gpupool regions");
        return EX_USAGE;
    }
    json_t *ans, *regions;
    int rc;
    if (s_get_list(cli, "/v1/regions", "regions", &ans, &regions, &rc))
        return rc;
    table_t t;
    static const char *const heads[] = { "REGION", "LEADER", "COORDINATORS", "NODES",
                                         "GPUS",   "USED",   "PENDING" };
    s_table_init(&t, 7, heads);
    t.right[3] = t.right[4] = t.right[6] = true;
    size_t nr;
    json_t **sorted = s_sorted(regions, "name", NULL, &nr);
    for (size_t i = 0; i < nr; i++) {
        json_t *r = sorted[i];
        char coords[256] = "", nodes[24], gpus[24], used[48], pending[24];
        json_t *c;
        size_t k;
        json_array_foreach(json_object_get(r, "coordinators"), k, c) {
            size_t len = strlen(coords);
            snprintf(coords + len, sizeof coords - len, "%s%s", k ? "," : "",
                     json_string_value(c) ? json_string_value(c) : "?");
        }
        int64_t ngpus = s_int(r, "gpus");
        double milli = (double)s_int(r, "gpu_milli_used");
        snprintf(nodes, sizeof nodes, "%" PRId64, s_int(r, "nodes"));
        snprintf(gpus, sizeof gpus, "%" PRId64, ngpus);
        snprintf(used, sizeof used, "%.2f (%.0f%%)", milli / 1000.0,
                 ngpus ? milli / 10.0 / (double)ngpus : 0.0);
        snprintf(pending, sizeof pending, "%" PRId64, s_int(r, "pending"));
        const char *row[] = { s_str(r, "name"), s_str(r, "leader"), coords[0] ? coords : "-",
                              nodes, gpus, used, pending };
        s_table_row(&t, row);
    }
    free(sorted);
    s_table_print(&t, stdout);
    s_table_free(&t);
    if (json_is_true(json_object_get(json_object_get(ans, "store"), "full")))
        printf("store full: etcd's NOSPACE alarm refuses writes; submissions wait until an "
               "operator frees space (README: \"The store's lifecycle\")\n");
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
    s_fmt_time(now, sizeof now, gp_wall_ms());
    const json_t *p = json_object_get(u, "pool");
    int64_t gpus = s_int(p, "gpus");
    int64_t total = s_int(p, "gpu_milli_total") ? s_int(p, "gpu_milli_total") : gpus * 1000;
    printf("gpupool %s  %s\n", cli->api, now);
    printf("pool: %" PRId64 " nodes, %" PRId64 " GPUs, %.2f GPUs allocated (%.1f%%), "
           "%" PRId64 " jobs running, %" PRId64 " pending\n\n",
           s_int(p, "nodes"), gpus, (double)s_int(p, "gpu_milli_used") / 1000.0,
           total ? 100.0 * (double)s_int(p, "gpu_milli_used") / (double)total : 0.0,
           s_int(p, "jobs_running"), s_int(p, "jobs_pending"));

    table_t t;
    static const char *const rheads[] = { "REGION", "NODES", "GPUS", "ALLOCATED", "RUNNING",
                                          "PENDING" };
    s_table_init(&t, 6, rheads);
    t.right[1] = t.right[2] = t.right[4] = t.right[5] = true;
    size_t n;
    json_t **sorted = s_sorted(json_object_get(u, "by_region"),
                               json_object_get(json_array_get(json_object_get(u, "by_region"), 0),
                                               "name") ? "name" : "region", NULL, &n);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = sorted[i];
        char nodes[24], ngpus[24], running[24], pending[24];
        const char *name = s_str(r, "name");
        if (!strcmp(name, "-"))
            name = s_str(r, "region");
        snprintf(nodes, sizeof nodes, "%" PRId64, s_int(r, "nodes"));
        snprintf(ngpus, sizeof ngpus, "%" PRId64, s_int(r, "gpus"));
        s_fmt_used(used, sizeof used, s_int(r, "gpu_milli_used"), s_int(r, "gpus"));
        snprintf(running, sizeof running, "%" PRId64, s_int(r, "jobs_running"));
        snprintf(pending, sizeof pending, "%" PRId64, s_int(r, "jobs_pending"));
        const char *row[] = { name, nodes, ngpus, used, running, pending };
        s_table_row(&t, row);
    }
    free(sorted);
    s_table_print(&t, stdout);
    s_table_free(&t);
    putchar('\n');

    static const char *const mheads[] = { "MODEL", "GPUS", "ALLOCATED" };
    s_table_init(&t, 3, mheads);
    t.right[1] = true;
    sorted = s_sorted(json_object_get(u, "by_model"), "model", NULL, &n);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = sorted[i];
        char ngpus[24];
        snprintf(ngpus, sizeof ngpus, "%" PRId64, s_int(r, "gpus"));
        s_fmt_used(used, sizeof used, s_int(r, "gpu_milli_used"), s_int(r, "gpus"));
        const char *row[] = { s_str(r, "model"), ngpus, used };
        s_table_row(&t, row);
    }
    free(sorted);
    s_table_print(&t, stdout);
    s_table_free(&t);
}

static int s_cmd_top(cli_t *cli, int argc, char **argv)
{
    int64_t interval_ms = 2000;
    bool once = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--once")) {
            once = true;
            continue;
        }
        if (!strncmp(argv[i], "--interval=", 11))
            v = argv[i] + 11;
        else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
            v = argv[++i];
        if (v == NULL || gp_parse_duration_ms(v, &interval_ms) < 0 || interval_ms < 100 ||
            interval_ms > 3600000) {
            s_fail(v ? "--interval: expected a duration from 100ms to 1h, like 2s"
                     : "usage: gpupool top [--interval 2s] [--once]");
            return EX_USAGE;
        }
    }
    bool tty = isatty(STDOUT_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (;;) {
        json_t *u = NULL;
        int rc = s_get(cli, "/v1/usage", &u);
        if (rc != 0)
            return rc;
        if (!json_is_object(json_object_get(u, "pool"))) {
            s_fail("the answer has no \"pool\" object");
            json_decref(u);
            return EX_PROTOCOL;
        }
        if (cli->out == OUT_JSON) {
            rc = s_print_json(u);
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

/* ------------------------------------------------------------- keys */


/* ------------------------------------------------------------- audit */

/* One audit entry as a table row. */
static void s_audit_row(table_t *t, const json_t *e)
{
    char status[16];
    snprintf(status, sizeof status, "%lld", (long long)s_int(e, "status"));
    const char *principal = s_str(e, "principal");
    const char *cells[] = { s_str(e, "time"), principal[0] ? principal : "-", s_str(e, "peer"),
                            s_str(e, "method"), s_str(e, "path"), status, s_str(e, "error") };
    s_table_row(t, cells);
}

/* gpupool audit [--principal P] [--limit N] [--file FILE]: the audit log of
 * the coordinator (GET /v1/audit, operators), or a copy of its file. */
static int s_cmd_audit(cli_t *cli, int argc, char **argv)
{
    const char *principal = NULL, *file = NULL, *limit = "100";
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_flag_value(argc, argv, &i, "--principal")))
            principal = v;
        else if ((v = cli_flag_value(argc, argv, &i, "--limit")))
            limit = v;
        else if ((v = cli_flag_value(argc, argv, &i, "--file")))
            file = v;
        else {
            s_fail("usage: gpupool audit [--principal P] [--limit N] [--file FILE]");
            return EX_USAGE;
        }
    }
    int64_t lim;
    if (gp_parse_int64(limit, 1, 100000, &lim) < 0) {
        s_fail("--limit: expected 1..100000, got \"%s\"", limit);
        return EX_USAGE;
    }
    json_t *entries = NULL, *ans = NULL;
    if (file) {
        FILE *f = fopen(file, "r");
        if (f == NULL) {
            s_fail("cannot read %s: %s", file, strerror(errno));
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
                    s_fail("%s:%d: not an audit entry (skipped)", file, lineno);
            } else if (principal == NULL || !strcmp(s_str(e, "principal"), principal)) {
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
        int rc = s_get(cli, path, &ans);
        if (rc != 0)
            return rc;
        entries = json_incref(json_object_get(ans, "entries"));
        if (!json_is_array(entries)) {
            s_fail("GET %s: the answer has no entries", path);
            json_decref(entries);
            json_decref(ans);
            return EX_PROTOCOL;
        }
    }
    int rc = 0;
    if (cli->out == OUT_JSON) {
        rc = s_print_json(ans);
    } else {
        static const char *const heads[] = { "TIME", "PRINCIPAL", "PEER", "METHOD", "PATH",
                                             "STATUS", "ERROR" };
        table_t t;
        s_table_init(&t, 7, heads);
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
            s_audit_row(&t, e);
        s_table_print(&t, stdout);
        s_table_free(&t);
    }
    json_decref(entries);
    json_decref(ans);
    return rc;
}

static int s_cmd_keys(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "curve")) {
        const char *prefix = argv[2];
        char path[4096];
        static const char *const exts[] = { ".key", ".pub" };
        for (size_t i = 0; i < 2; i++) {
            struct stat st;
            snprintf(path, sizeof path, "%s%s", prefix, exts[i]);
            if (lstat(path, &st) == 0) {
                s_fail("%s exists; not overwriting it (remove it first)", path);
                return EX_CANTCREAT;
            }
        }
        gp_curve_keys_t keys;
        gp_err_t err;
        if (gp_curve_generate(&keys, &err) < 0) {
            s_fail("%s", err.msg);
            return EX_SOFTWARE;
        }
        if (gp_curve_save(prefix, &keys, &err) < 0) {
            s_fail("%s", err.msg);
            return EX_CANTCREAT;
        }
        explicit_bzero(keys.secret_key, sizeof keys.secret_key);
        printf("%s.key %s.pub public-key=%s\n", prefix, prefix, keys.public_key);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "token")) {
        /* --principal P --role R [--role R2] [--team T]... [--file F]: an
         * entry of the coordinators' api-tokens file (coordinator/auth.h). */
        const char *principal = NULL, *file = NULL;
        char roles[256] = "", teams[1024] = "";
        for (int i = 2; i < argc; i++) {
            const char *v;
            char *list = NULL;
            size_t lsize = 0;
            if ((v = cli_flag_value(argc, argv, &i, "--principal"))) {
                principal = v;
                continue;
            } else if ((v = cli_flag_value(argc, argv, &i, "--file"))) {
                file = v;
                continue;
            } else if ((v = cli_flag_value(argc, argv, &i, "--role"))) {
                list = roles;
                lsize = sizeof roles;
                if (strcmp(v, "submitter") && strcmp(v, "operator") && strcmp(v, "reader")) {
                    s_fail("--role: submitter, operator or reader, not \"%s\"", v);
                    return EX_USAGE;
                }
            } else if ((v = cli_flag_value(argc, argv, &i, "--team"))) {
                list = teams;
                lsize = sizeof teams;
                if (!gp_name_valid(v)) {
                    s_fail("--team: \"%s\" must be 1..127 of [A-Za-z0-9._-]", v);
                    return EX_USAGE;
                }
            } else {
                s_fail("keys token: unknown argument %s", argv[i]);
                return EX_USAGE;
            }
            size_t l = strlen(list);
            snprintf(list + l, lsize - l, "%s%s", l ? "," : "", v);
        }
        if ((principal || file || roles[0] || teams[0]) && (principal == NULL || roles[0] == '\0')) {
            s_fail("keys token: an entry needs --principal and --role (and --team for a "
                   "submitter)");
            return EX_USAGE;
        }
        if (principal && strpbrk(principal, " \t#\r\n")) {
            s_fail("--principal: no blanks or '#'");
            return EX_USAGE;
        }
        if (strstr(roles, "submitter") && teams[0] == '\0') {
            s_fail("keys token: a submitter needs --team");
            return EX_USAGE;
        }
        unsigned char raw[32];
        size_t got = 0;
        while (got < sizeof raw) {
            ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                s_fail("getrandom: %s", strerror(errno));
                return EX_OSERR;
            }
            got += (size_t)n;
        }
        char hex[2 * sizeof raw + 1];
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        explicit_bzero(raw, sizeof raw);
        if (principal) {
            unsigned char h[32];
            unsigned hl = sizeof h;
            char line[2048];
            int ll = snprintf(line, sizeof line, "sha256:");
            EVP_Digest(hex, strlen(hex), h, &hl, EVP_sha256(), NULL);
            for (size_t i = 0; i < sizeof h; i++)
                ll += snprintf(line + ll, sizeof line - (size_t)ll, "%02x", h[i]);
            snprintf(line + ll, sizeof line - (size_t)ll, " %s %s %s\n", principal, roles,
                     teams[0] ? teams : "-");
            if (file) {
                int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
                size_t len = strlen(line);
                if (fd < 0 || write(fd, line, len) != (ssize_t)len) {
                    s_fail("cannot append to %s: %s", file, strerror(errno));
                    if (fd >= 0)
                        close(fd);
                    return EX_CANTCREAT;
                }
                close(fd);
            } else {
                fputs(line, stderr);   /* the entry, for the operator to place */
            }
        }
        puts(hex);
        return 0;
    }
    s_fail("usage: gpupool keys curve PREFIX | gpupool keys token [--principal P --role R "
           "[--team T]... [--file F]]");
    return EX_USAGE;
}

/* ------------------------------------------------------------- main */

/* Read the token: the first line that is neither blank nor a comment. */
static int s_read_token(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        s_fail("cannot read token file %s: %s", path, strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    char line[1024];
    int rc = EX_DATAERR;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = '\0';
        if (n == 0 || s[0] == '#')
            continue;
        *out = strdup(s);
        rc = *out ? 0 : EX_OSERR;
        break;
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (rc == EX_DATAERR)
        s_fail("token file %s holds no token", path);
    return rc;
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

/* ------------------------------------------------------------- doctor */

/*
 * gpupool doctor: how far this host is from each etcd member, and whether
 * etcd's raft timing and the daemons' settings fit those distances.
 *
 * Run it on a daemon's host with the daemon's configuration (-c FILE reads
 * its etcd-* options and lease-ttl; flags override them): it measures, per
 * member, the round trip of a serializable read (the network and the
 * member), of a linearizable read (plus the member's round trip to the raft
 * leader), the member's role, the round trip it measures to its peers, and
 * the --heartbeat-interval / --election-timeout it runs with
 * (gp_etcd_member_report).  Then it warns, one line each, when
 *   - a member cannot be reached;
 *   - etcd-local-endpoints is empty while the members are at very different
 *     distances, or names a member that is not the nearest;
 *   - the heartbeat interval is under half the round trip between members
 *     (etcd's guidance: about the round trip, 0.5 to 1.5 times it), or the
 *     election timeout under ten round trips or five heartbeats;
 *   - the members do not all run with the same timing;
 *   - lease-ttl is under three election timeouts (an election could
 *     outlast a lease).
 * and suggests a heartbeat and an election timeout for the distances seen.
 * Exit status: 0 nothing to report, 1 warnings, 64 usage, 66 no such file,
 * 69 no member could be reached.
 */
typedef struct {
    char *endpoints, *local, *ca, *cert, *key, *user, *password;
    int64_t lease_ttl_ms;       /* -1: unknown */
} doctor_cfg_t;

static void s_doctor_set(char **slot, const char *v)
{
    free(*slot);
    *slot = strdup(v);
}

/* The etcd-* options and lease-ttl of a daemon's configuration file (the
 * rest is the daemon's business). */
static int s_doctor_read_conf(const char *path, doctor_cfg_t *dc)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        s_fail("cannot read %s: %s", path, strerror(errno));
        return EX_NOINPUT;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = line, *eq, *v, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || !(eq = strchr(s, '=')))
            continue;
        e = eq;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "#\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
        v[n] = '\0';
        static const char *const names[] = { "etcd-endpoints", "etcd-local-endpoints", "etcd-ca",
                                              "etcd-cert", "etcd-key", "etcd-user", "etcd-password" };
        char **slots[] = { &dc->endpoints, &dc->local, &dc->ca, &dc->cert, &dc->key, &dc->user,
                           &dc->password };
        for (size_t i = 0; i < GP_ARRAY_LEN(names); i++)
            if (!strcmp(s, names[i]))
                s_doctor_set(slots[i], v);
        if (!strcmp(s, "lease-ttl") && gp_parse_duration_ms(v, &dc->lease_ttl_ms) < 0)
            dc->lease_ttl_ms = -1;
    }
    fclose(f);
    return 0;
}

static int s_cmd_doctor(int argc, char **argv, out_fmt_t out)
{
    doctor_cfg_t dc = { .lease_ttl_ms = -1 };
    int64_t samples = 5;
    int rc = 0;
    const char *v;
    for (int i = 1; i < argc; i++) {
        static const char *const flags[] = { "--etcd-endpoints", "--etcd-local-endpoints", "--etcd-ca",
                                              "--etcd-cert", "--etcd-key", "--etcd-user",
                                              "--etcd-password" };
        char **slots[] = { &dc.endpoints, &dc.local, &dc.ca, &dc.cert, &dc.key, &dc.user, &dc.password };
        bool done = false;
        for (size_t k = 0; k < GP_ARRAY_LEN(flags) && !done; k++)
            if ((v = cli_flag_value(argc, argv, &i, flags[k]))) {
                s_doctor_set(slots[k], v);
                done = true;
            }
        if (done)
            continue;
        if ((v = cli_flag_value(argc, argv, &i, "-c")) || (v = cli_flag_value(argc, argv, &i, "--config"))) {
            if ((rc = s_doctor_read_conf(v, &dc)) != 0)
                goto cleanup;
        } else if ((v = cli_flag_value(argc, argv, &i, "--lease-ttl"))) {
            if (gp_parse_duration_ms(v, &dc.lease_ttl_ms) < 0) {
                s_fail("--lease-ttl: expected a duration (5s), got \"%s\"", v);
                rc = EX_USAGE;
                goto cleanup;
            }
        } else if ((v = cli_flag_value(argc, argv, &i, "--samples"))) {
            if (gp_parse_int64(v, 1, 1000, &samples) < 0) {
                s_fail("--samples: expected 1 to 1000, got \"%s\"", v);
                rc = EX_USAGE;
                goto cleanup;
            }
        } else {
            s_fail("doctor: unknown argument %s (usage: gpupool doctor [-c FILE] [--etcd-endpoints URLS] "
                   "[--etcd-local-endpoints URLS] [--lease-ttl D] [--samples N])", argv[i]);
            rc = EX_USAGE;
            goto cleanup;
        }
    }
    if (!dc.endpoints || !*dc.endpoints) {
        s_fail("doctor: no etcd endpoints (-c a daemon's configuration, or --etcd-endpoints)");
        rc = EX_USAGE;
        goto cleanup;
    }

    /* every member, the local ones first (the client's own order) */
    gp_etcd_config_t all = GP_ETCD_CONFIG_INIT;
    gp_etcd_config_from(&all, dc.endpoints, dc.ca, dc.cert, dc.key, dc.user, dc.password);
    all.local_endpoints = dc.local;
    gp_err_t err;
    gp_etcd_t *list = gp_etcd_new(&all, &err);
    if (!list) {
        s_fail("doctor: %s", err.msg);
        rc = EX_USAGE;
        goto cleanup;
    }
    int n = 0, n_local = 0;
    const char *const *eps = gp_etcd_endpoints(list, &n, &n_local);
    gp_etcd_member_report_t *rep = calloc((size_t)n, sizeof *rep);
    char (*why)[256] = calloc((size_t)n, sizeof *why);
    bool *okm = calloc((size_t)n, sizeof *okm);
    json_t *warnings = json_array(), *members = json_array();
    char w[512];
    int reached = 0, hb = -1, el = -1;
    bool mixed = false;
    double peer = -1, nearest = -1, far_rtt = -1;
    int nearest_i = -1;
    for (int i = 0; rep && why && okm && i < n; i++) {
        gp_etcd_config_t one = all;
        one.endpoints = eps[i];
        one.local_endpoints = NULL;
        one.request_timeout_ms = 3000;
        one.dial_timeout_ms = 2000;
        gp_err_t merr;
        if (gp_etcd_member_report(&one, (int)samples, &rep[i], &merr) < 0) {
            snprintf(why[i], sizeof why[i], "%s", merr.msg);
            snprintf(w, sizeof w, "member %s cannot be reached: %s", eps[i], merr.msg);
            json_array_append_new(warnings, json_string(w));
            continue;
        }
        okm[i] = true;
        reached++;
        if (rep[i].peer_rtt_ms > peer)
            peer = rep[i].peer_rtt_ms;
        if (nearest < 0 || rep[i].rtt_min_ms < nearest) {
            nearest = rep[i].rtt_min_ms;
            nearest_i = i;
        }
        if (rep[i].rtt_min_ms > far_rtt)
            far_rtt = rep[i].rtt_min_ms;
        int h = rep[i].heartbeat_ms < 0 ? 100 : rep[i].heartbeat_ms;
        int e = rep[i].election_ms < 0 ? 1000 : rep[i].election_ms;
        if ((hb >= 0 && h != hb) || (el >= 0 && e != el))
            mixed = true;
        hb = hb < 0 || h < hb ? h : hb;
        el = el < 0 || e < el ? e : el;
    }
    if (reached == 0) {
        s_fail("doctor: no etcd member could be reached");
        rc = EX_UNAVAILABLE;
    } else {
        /* The round trip between members: a linearizable read at the raft
         * leader waits for one heartbeat round to a quorum of followers,
         * so its time less the round trip to the leader is the leader's
         * round trip to its nearer followers, now.  Without the leader:
         * the members' own means since they started (their /metrics), or
         * else this host's farthest member. */
        const char *how = "the members' mean since they started";
        double rtt = peer;
        for (int i = 0; i < n; i++)
            if (okm[i] && rep[i].is_leader) {
                rtt = rep[i].read_ms - rep[i].rtt_ms;
                how = "the raft leader's quorum round, now";
            }
        if (rtt < 0) {
            rtt = far_rtt;
            how = "this host's farthest member";
        }
        if (n_local == 0 && n > 1 && far_rtt > 3 * nearest && far_rtt - nearest > 5) {
            snprintf(w, sizeof w, "the members are at %.1f to %.1f ms from here and no etcd-local-endpoints "
                     "is set: name the nearest (%s) so that requests start there",
                     nearest, far_rtt, eps[nearest_i]);
            json_array_append_new(warnings, json_string(w));
        }
        if (n_local > 0 && nearest_i >= n_local && okm[nearest_i]) {
            double local_min = -1;
            for (int i = 0; i < n_local; i++)
                if (okm[i] && (local_min < 0 || rep[i].rtt_min_ms < local_min))
                    local_min = rep[i].rtt_min_ms;
            if (local_min < 0 || (local_min > 2 * nearest && local_min - nearest > 2)) {
                snprintf(w, sizeof w, "etcd-local-endpoints names %s, but %s is nearer (%.1f ms against %.1f)",
                         eps[0], eps[nearest_i], nearest, local_min);
                json_array_append_new(warnings, json_string(w));
            }
        }
        if (mixed) {
            snprintf(w, sizeof w, "the members do not all run with the same heartbeat and election timeout");
            json_array_append_new(warnings, json_string(w));
        }
        if (hb < 0.5 * rtt) {
            snprintf(w, sizeof w, "heartbeat-interval %d ms is under half the round trip between members "
                     "(%.1f ms, %s): followers hear from the leader late and may start elections",
                     hb, rtt, how);
            json_array_append_new(warnings, json_string(w));
        }
        if (el < 10 * rtt || el < 5 * hb) {
            snprintf(w, sizeof w, "election-timeout %d ms is under %s (%.0f ms): one slow round trip can "
                     "start an election", el, el < 5 * hb ? "five heartbeats" : "ten round trips between members",
                     el < 5 * hb ? 5.0 * hb : 10 * rtt);
            json_array_append_new(warnings, json_string(w));
        }
        if (dc.lease_ttl_ms >= 0 && dc.lease_ttl_ms < 3 * (int64_t)el) {
            snprintf(w, sizeof w, "lease-ttl %lld ms is under three election timeouts (%d ms): an etcd "
                     "election can outlast the daemon's lease", (long long)dc.lease_ttl_ms, 3 * el);
            json_array_append_new(warnings, json_string(w));
        }
        /* suggestions: a heartbeat of about the round trip (never under
         * etcd's default 100 ms), ten of them for the election, and at
         * least ten round trips */
        int s_hb = rtt > 100 ? ((int)rtt + 9) / 10 * 10 : 100;
        int s_el = 10 * s_hb;
        if (s_el < 10 * rtt)
            s_el = ((int)(10 * rtt) + 99) / 100 * 100;
        for (int i = 0; i < n; i++) {
            json_t *m = json_pack("{s:s,s:b,s:b}", "endpoint", eps[i], "local", i < n_local, "reachable", okm[i]);
            if (okm[i]) {
                json_object_set_new(m, "role", json_string(rep[i].is_leader ? "leader" : "follower"));
                json_object_set_new(m, "rtt_ms", json_real(rep[i].rtt_ms));
                json_object_set_new(m, "rtt_min_ms", json_real(rep[i].rtt_min_ms));
                json_object_set_new(m, "linearizable_read_ms", json_real(rep[i].read_ms));
                if (rep[i].peer_rtt_ms >= 0)
                    json_object_set_new(m, "peer_rtt_ms", json_real(rep[i].peer_rtt_ms));
                if (rep[i].heartbeat_ms > 0)
                    json_object_set_new(m, "heartbeat_ms", json_integer(rep[i].heartbeat_ms));
                if (rep[i].election_ms > 0)
                    json_object_set_new(m, "election_ms", json_integer(rep[i].election_ms));
            } else {
                json_object_set_new(m, "error", json_string(why[i]));
            }
            json_array_append_new(members, m);
        }
        if (out == OUT_JSON) {
            json_t *doc = json_pack("{s:O,s:O,s:f,s:{s:i,s:i},s:{s:i,s:i}}", "members", members, "warnings",
                                    warnings, "member_rtt_ms", rtt, "etcd_timing", "heartbeat_ms", hb, "election_ms", el,
                                    "suggested", "heartbeat_ms", s_hb, "election_ms", s_el);
            char *s = json_dumps(doc, JSON_INDENT(2));
            if (s)
                puts(s);
            free(s);
            json_decref(doc);
        } else {
            printf("%-32s %-5s %-9s %9s %9s %9s %9s %9s\n", "MEMBER", "LOCAL", "ROLE", "RTT_MS",
                   "READ_MS", "PEERS_MS", "HEARTBEAT", "ELECTION");
            /* RTT_MS: serializable read (network + member); READ_MS:
             * linearizable; PEERS_MS: the member's mean round trip to its
             * peers since it started */
            for (int i = 0; i < n; i++) {
                if (!okm[i]) {
                    printf("%-32s %-5s %-9s %s\n", eps[i], i < n_local ? "yes" : "no", "-", why[i]);
                    continue;
                }
                char p[32] = "-", h[32] = "-", e[32] = "-";
                if (rep[i].peer_rtt_ms >= 0)
                    snprintf(p, sizeof p, "%.1f", rep[i].peer_rtt_ms);
                if (rep[i].heartbeat_ms > 0)
                    snprintf(h, sizeof h, "%d", rep[i].heartbeat_ms);
                if (rep[i].election_ms > 0)
                    snprintf(e, sizeof e, "%d", rep[i].election_ms);
                printf("%-32s %-5s %-9s %9.1f %9.1f %9s %9s %9s\n", eps[i], i < n_local ? "yes" : "no",
                       rep[i].is_leader ? "leader" : "follower", rep[i].rtt_ms, rep[i].read_ms, p, h, e);
            }
            printf("\nround trip between members: %.1f ms (%s); etcd timing: heartbeat %d ms, election %d ms%s\n",
                   rtt, how, hb, el,
                   rep && (rep[0].heartbeat_ms < 0 || rep[0].election_ms < 0) ? " (etcd's defaults where a member's command line does not say)" : "");
            printf("suggested for these distances: --heartbeat-interval %d --election-timeout %d\n", s_hb, s_el);
            size_t k;
            json_t *x;
            json_array_foreach(warnings, k, x)
                printf("warning: %s\n", json_string_value(x));
            if (json_array_size(warnings) == 0)
                printf("ok: nothing to report\n");
        }
        rc = json_array_size(warnings) > 0 ? 1 : 0;
    }
    json_decref(warnings);
    json_decref(members);
    free(rep);
    free(why);
    free(okm);
    gp_etcd_destroy(&list);
cleanup:
    free(dc.endpoints);
    free(dc.local);
    free(dc.ca);
    free(dc.cert);
    free(dc.key);
    free(dc.user);
    if (dc.password) {
        explicit_bzero(dc.password, strlen(dc.password));
        free(dc.password);
    }
    return rc;
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
            s_fail("--api: expected http:// or https:// URLs separated by commas, got \"%s\"",
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
            printf(PROG " %s\n", GP_VERSION);
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
                s_fail("-o: expected table, wide or json, got \"%s\"", v);
                free(rest);
                free(api_flags);
                return EX_USAGE;
            }
        } else if (!strcmp(argv[i], "--api") || !strcmp(argv[i], "--token") ||
                   !strcmp(argv[i], "--token-file") || !strcmp(argv[i], "-o") ||
                   !strcmp(argv[i], "--cacert") || !strcmp(argv[i], "--cert") ||
                   !strcmp(argv[i], "--key") ||
                   !strcmp(argv[i], "--output")) {
            s_fail("%s needs a value", argv[i]);
            free(rest);
            free(api_flags);
            return EX_USAGE;
        } else {
            rest[nrest++] = argv[i];     /* a command's own option */
        }
    }
    if (nrest == 0 || rest[0][0] == '-') {
        if (nrest)
            s_fail("unknown option %s (see gpupool --help)", rest[0]);
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
        rc = !strcmp(cmd, "keys")     ? s_cmd_keys(cargc, cargv)
             : !strcmp(cmd, "plan")   ? cli_plan(cargc, cargv)
             : !strcmp(cmd, "backup") ? cli_backup(cargc, cargv)
                                      : cli_restore_check(cargc, cargv);
        free(rest);
        free(api_flags);
        return rc;
    }
    if (!strcmp(cmd, "doctor")) {
        rc = s_cmd_doctor(cargc, cargv, cli.out);
        free(rest);
        free(api_flags);
        return rc;
    }

    static const struct {
        const char *name;
        cmd_fn fn;
    } cmds[] = {
        { "submit", s_cmd_submit }, { "get", s_cmd_get },         { "ls", s_cmd_ls },
        { "cancel", s_cmd_cancel }, { "suspend", s_cmd_suspend }, { "resume", s_cmd_resume },
        { "nodes", s_cmd_nodes },     { "regions", s_cmd_regions }, { "quota", s_cmd_quota },
        { "top", s_cmd_top },
        { "audit", s_cmd_audit },
    };
    cmd_fn fn = NULL;
    for (size_t k = 0; k < GP_ARRAY_LEN(cmds); k++)
        if (!strcmp(cmd, cmds[k].name))
            fn = cmds[k].fn;
    if (fn == NULL) {
        s_fail("unknown command \"%s\" (see gpupool --help)", cmd);
        free(rest);
        free(api_flags);
        return EX_USAGE;
    }

    if (napi_flags == 0)
        rc = s_api_add(&cli, api && *api ? api : DEFAULT_API);
    for (int k = 0; k < napi_flags && rc == 0; k++)
        rc = s_api_add(&cli, api_flags[k]);
    if (rc != 0)
        goto cleanup;
    cli.api = cli.apis[0];
    if (token && *token) {
        cli.token = strdup(token);
    } else if (token_file && *token_file) {
        rc = s_read_token(token_file, &cli.token);
        if (rc != 0)
            goto cleanup;
    }
    if (cli.token && strpbrk(cli.token, "\r\n")) {
        s_fail("the token holds a line break");
        rc = EX_USAGE;
        goto cleanup;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (cli.curl = curl_easy_init()) == NULL) {
        s_fail("cannot initialise libcurl");
        rc = EX_SOFTWARE;
        goto cleanup;
    }
    rc = fn(&cli, cargc, cargv);
    if (fflush(stdout) != 0 && rc == 0) {
        s_fail("cannot write the output: %s", strerror(errno));
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
