/*
 * http.c - the gpupool CLI's transport: one libcurl easy handle per run
 * (so `top` keeps its connection), requests to the coordinators' REST API
 * with failover across the endpoints given (cli_request: only requests that
 * may be repeated move on), answers parsed with jansson, and HTTP statuses
 * turned into <sysexits.h> exit statuses.
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
#include "daemon.h"
#include "util.h"

#include "banned.h"

/* ------------------------------------------------------------- HTTP */

static size_t s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    cli_buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > CLI_MAX_ANSWER) {
        b->too_big = true;
        return 0;
    }
    return cli_buf_add(b, data, n) < 0 ? 0 : n;
}

/* The exit status for an HTTP error status. */
int cli_status_exit(long status)
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
        cli_error("URL too long");
        return EX_USAGE;
    }
    CURL *c = cli->curl;
    curl_easy_reset(c);
    cli_buf_t answer = { 0 };
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
    curl_easy_setopt(c, CURLOPT_USERAGENT, CLI_PROG "/" GP_VERSION);
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
            cli_error("%s %s: answer larger than %u MiB", method, url, CLI_MAX_ANSWER >> 20);
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
            cli_error("cannot reach %s: %s%s", cli->api, why, hint);
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
            cli_error("%s %s: the answer is not the gpupool API (HTTP %ld%s%s)", method, url, status,
                   msg && *msg ? ": " : "", msg && *msg ? msg : "");
            json_decref(j);
            rc = EX_PROTOCOL;
            goto cleanup;
        }
        if (cli->what && status == 404)
            cli_error("%s: %s (HTTP %ld)", cli->what, msg && *msg ? msg : "not found", status);
        else if (status == 401 || status == 403)
            cli_error("%s (HTTP %ld; check --token, --token-file or GPUPOOL_TOKEN)",
                   msg && *msg ? msg : "not authorized", status);
        else
            cli_error("%s (HTTP %ld)", msg && *msg ? msg : "request failed", status);
        json_decref(j);
        rc = cli_status_exit(status);
        /* 421: the job's node is another region's; another endpoint may be one of its */
        *down = status >= 500 || status == 421;
        goto cleanup;
    }
    if (j == NULL) {
        cli_error("%s %s: the answer is not JSON%s%s", method, url, answer.len ? ": " : "",
               answer.len ? jerr.text : " (empty)");
        rc = EX_PROTOCOL;
        goto cleanup;
    }
    *out = j;
cleanup:
    curl_slist_free_all(hdrs);
    cli_buf_free(&answer);
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
int cli_request(cli_t *cli, const char *method, const char *path, const char *body,
                     size_t body_len, json_t **out)
{
    size_t tries = s_repeatable(cli, method) ? cli->napis : 1;
    int rc = 0;
    for (size_t t = 0; t < tries; t++) {
        bool down = false, last = t + 1 == tries;
        cli_hold_errors(!last);
        rc = s_request_one(cli, method, path, body, body_len, out, &down);
        const char *held = cli_release_errors();
        if (rc == 0 || last || !down) {
            if (rc != 0 && held[0])
                fprintf(stderr, CLI_PROG ": %s\n", held);
            return rc;
        }
        cli->cur = (cli->cur + 1) % cli->napis;
        cli->api = cli->apis[cli->cur];
        fprintf(stderr, CLI_PROG ": %s; trying %s\n", held, cli->api);
    }
    return rc;
}

int cli_get(cli_t *cli, const char *path, json_t **out)
{
    return cli_request(cli, "GET", path, NULL, 0, out);
}

/* "/v1/jobs/" + escaped id. */
int cli_job_path(cli_t *cli, const char *id, char *out, size_t size)
{
    char *esc = curl_easy_escape(cli->curl, id, 0);
    if (esc == NULL)
        return -1;
    int n = snprintf(out, size, "/v1/jobs/%s", esc);
    curl_free(esc);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* GET a list (path answers {key: [...]}): with -o json print the answer and
 * return 1 with *rc = 0; on error return 1 with *rc the exit code; else
 * return 0 with *ans (the caller decrefs) and *list (borrowed from it)
 * for a table. */
int cli_get_list(cli_t *cli, const char *path, const char *key, json_t **ans, json_t **list,
                      int *rc)
{
    *ans = NULL;
    if ((*rc = cli_get(cli, path, ans)) != 0)
        return 1;
    *list = cli_array(*ans, key);
    if (*list == NULL) {
        json_decref(*ans);
        *rc = EX_PROTOCOL;
        return 1;
    }
    if (cli->out == OUT_JSON) {
        *rc = cli_print_json(*ans);
        json_decref(*ans);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- token */

/* Read the token: the first line that is neither blank nor a comment. */
int cli_read_token(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cli_error("cannot read token file %s: %s", path, strerror(errno));
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
        cli_error("token file %s holds no token", path);
    return rc;
}

