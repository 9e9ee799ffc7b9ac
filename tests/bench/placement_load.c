/*
 * placement_load - load generator for the placement benchmark.
 *
 *   placement_load API TOKEN ETCD_ENDPOINTS burst N          (as fast as it can)
 *   placement_load API TOKEN ETCD_ENDPOINTS rate R SECONDS   (R jobs/s, one per request)
 *
 * Submits fractional jobs (1 device, 8 GiB, 10% compute) through the REST
 * API over keep-alive connections (curl multi) and watches P alloc/ in
 * etcd; a job is committed when its allocation appears.  Both clocks are
 * this process's, so submit-to-committed latency includes the API, the
 * bid round, the commit and the watch's delivery.
 *
 * burst: jobs in arrays of 250, 8 requests in flight; prints
 *   placements_per_s N   (jobs committed / time from the first submission to the
 *                         last commit seen, within 2 minutes of the last submission)
 *   submitted_per_s N
 *   cpu_s X              (this process's own CPU time: user + system; rate
 *                         prints it too)
 * LOAD_PREFIX (env) names the jobs (default "burst" / "rate").
 * rate: one job per request, paced, up to 64 requests in flight, for
 *   SECONDS at most (jobs not sent by then are not offered); prints
 *   committed N / N, p50_ms X, p99_ms X, max_ms X, offered_per_s X,
 *   accepted N (answered 200/201), uncommitted_accepted N (accepted, no
 *   allocation seen by the deadline)
 * LOAD_DURATION_S (env) gives each job that duration_s, so that an
 * overload run keeps room in the pool; LOAD_WAIT_S (default 120) is how
 * long to wait for commits after the last submission; LOAD_REJECTS_OK=1
 * lets the API refuse jobs under overload (the run then fails only when an
 * accepted job was not committed).
 * LOAD_SLOW_FILE (env, rate mode) names a file that gets the slowest 1% of
 * the jobs and the uncommitted ones, a line each: id, scheduled ms and
 * commit ms (-1: none) from the run's start (to find them in the logs).
 * A job's latency runs from the moment it was due by the schedule, not from
 * when a connection was free to send it, so that a slow API counts against
 * the figures instead of quietly lowering the offered load.
 */
#include <curl/curl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "keys.h"
#include "strmap.h"
#include "util.h"
#include "bench/load.h"

#include "banned.h"

typedef struct {
    int64_t submit_ns;
    int64_t commit_ns;
    int accepted;
} s_job_t;

static gp_strmap_t *s_jobs;
static int64_t s_committed, s_last_commit_ns;
static char s_prefix[32] = "r";

static void s_on_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    (void)arg;
    int64_t now = gp_mono_ns();
    for (size_t i = 0; i < resp->n_events; i++) {
        if (resp->events[i].type != GP_ETCD_EVENT_PUT || resp->events[i].kv.version != 1)
            continue;
        size_t bl;
        const char *base = gp_key_base(resp->events[i].kv.key, resp->events[i].kv.key_len, &bl);
        char id[128];
        snprintf(id, sizeof id, "%.*s", (int)bl, base);
        s_job_t *j = gp_strmap_get(s_jobs, id);
        if (j && j->commit_ns == 0) {
            j->commit_ns = now;
            s_committed++;
            s_last_commit_ns = now;
        }
    }
}

static size_t s_discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

typedef struct {
    CURL *h;
    char *body;
    struct curl_slist *hdrs;
    int busy;
    s_job_t *job;       /* rate mode: the job this request carries */
} s_conn_t;

static CURLM *s_multi;
static const char *s_api;
static char s_auth[300];
static long s_errors;
static char s_duration[48];

static void s_post(s_conn_t *c, char *body)
{
    if (c->h == NULL) {
        /* What stays the same from one request of the connection to the
         * next is set once; no signal handler per transfer (SIGPIPE is
         * ignored in main), a system call pair each that the pool's CPU
         * figures would count. */
        char url[512];
        snprintf(url, sizeof url, "%s/v1/jobs", s_api);
        c->h = curl_easy_init();
        c->hdrs = curl_slist_append(NULL, s_auth);
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
        curl_easy_setopt(c->h, CURLOPT_URL, url);
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    }
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    free(c->body);
    c->body = body;
    c->busy = 1;
    curl_multi_add_handle(s_multi, c->h);
}

static void s_reap(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s_multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        s_conn_t *c;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (m->data.result != CURLE_OK || (code != 200 && code != 201))
            s_errors++;
        else if (c->job)
            c->job->accepted = 1;
        curl_multi_remove_handle(s_multi, m->easy_handle);
        c->busy = 0;
    }
}

static char *s_job_json(int64_t i)
{
    char *s = NULL;
    if (asprintf(&s, "{\"id\":\"%s-%lld\",\"devices\":1,\"mem_mib\":8192,\"compute_percent\":10%s}",
                 s_prefix, (long long)i, s_duration) < 0)
        return NULL;
    return s;
}

static s_job_t *s_track(int64_t i, int64_t now)
{
    char id[64];
    snprintf(id, sizeof id, "%s-%lld", s_prefix, (long long)i);
    s_job_t *j = calloc(1, sizeof *j);
    j->submit_ns = now;
    gp_strmap_put(s_jobs, id, j);
    return j;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: placement_load API TOKEN ETCD burst N | rate R SECONDS\n");
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);   /* the handles' CURLOPT_NOSIGNAL */
    s_api = argv[1];
    snprintf(s_auth, sizeof s_auth, "Authorization: Bearer %s", argv[2]);
    gp_etcd_config_t ec = GP_ETCD_CONFIG_INIT;
    ec.endpoints = argv[3];
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&ec, &err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_multi = curl_multi_init();
    bench_loop_t *loop = s_multi ? bench_loop_new(s_multi) : NULL;
    s_jobs = gp_strmap_new();
    int burst = !strcmp(argv[4], "burst");
    int64_t n = 0, rate = 0, seconds = 0;
    if (burst) {
        gp_parse_int64(argv[5], 1, 10000000, &n);
        gp_strlcpy(s_prefix, "burst", sizeof s_prefix);
    } else if (argc >= 7) {
        gp_parse_int64(argv[5], 1, 1000000, &rate);
        gp_parse_int64(argv[6], 1, 3600, &seconds);
        n = rate * seconds;
        gp_strlcpy(s_prefix, "rate", sizeof s_prefix);
    }
    const char *px = getenv("LOAD_PREFIX");   /* distinct ids for several runs on one pool */
    if (px && *px)
        gp_strlcpy(s_prefix, px, sizeof s_prefix);
    int64_t duration = 0, wait_s = 120;
    const char *dur = getenv("LOAD_DURATION_S"), *ws = getenv("LOAD_WAIT_S");
    if (dur && gp_parse_int64(dur, 1, 86400, &duration) == 0)
        snprintf(s_duration, sizeof s_duration, ",\"duration_s\":%lld", (long long)duration);
    if (ws)
        gp_parse_int64(ws, 1, 3600, &wait_s);
    int rejects_ok = getenv("LOAD_REJECTS_OK") != NULL;
    if (etcd == NULL || n <= 0) {
        fprintf(stderr, "placement_load: bad arguments\n");
        return 64;
    }
    gp_etcd_result_t res;
    if (gp_etcd_get(etcd, "/gpupool/alloc/", GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &res, &err) < 0) {
        fprintf(stderr, "placement_load: etcd: %s\n", err.msg);
        return 69;
    }
    gp_etcd_watch_opts_t wo = { .key = "/gpupool/alloc/", .prefix = true,
                                .start_revision = res.revision + 1, .cb = s_on_watch };
    gp_etcd_result_free(&res);
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    if (w == NULL || loop == NULL)
        return 69;

    enum { CONNS = 64, PER_REQ = 250, INFLIGHT = 8 };
    s_conn_t conns[CONNS];
    memset(conns, 0, sizeof conns);
    int64_t sent = 0, t0 = gp_mono_ns(), submitted_ns = 0;
    while (sent < n) {
        int64_t now = gp_mono_ns();
        /* rate: offering stops when its time is up, whatever was sent (a
         * slow API must not stretch the run: what it did not take in time
         * was not offered) */
        if (!burst && now - t0 >= seconds * 1000000000LL)
            break;
        int64_t due = burst ? n : (now - t0) * rate / 1000000000LL + 1;
        if (due > n)
            due = n;
        for (int c = 0; c < (burst ? INFLIGHT : CONNS) && sent < due; c++) {
            if (conns[c].busy)
                continue;
            if (burst) {
                char *body = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&body, &len);
                fputc('[', f);
                for (int k = 0; k < PER_REQ && sent < n; k++, sent++) {
                    char *j = s_job_json(sent);
                    fprintf(f, "%s%s", k ? "," : "", j);
                    free(j);
                    s_track(sent, now);
                }
                fputc(']', f);
                fclose(f);
                s_post(&conns[c], body);
            } else {
                conns[c].job = s_track(sent, t0 + sent * 1000000000LL / rate);
                s_post(&conns[c], s_job_json(sent));
                sent++;
            }
        }
        bench_step(loop, etcd, burst ? 5 : 1, s_reap);
    }
    submitted_ns = gp_mono_ns();
    n = sent;
    int64_t deadline = gp_mono_ns() + wait_s * 1000000000LL;
    int pending = 1;
    while ((s_committed < n || pending) && gp_mono_ns() < deadline) {
        bench_step(loop, etcd, 20, s_reap);
        pending = 0;
        for (int c = 0; c < CONNS; c++)
            pending |= conns[c].busy;
        if (s_committed + s_errors >= n && !pending && !burst && rejects_ok)
            break;   /* every request answered; every accepted job committed */
    }
    int64_t accepted = 0, lost = 0;
    for (gp_strmap_iter_t it = gp_strmap_first(s_jobs); it.key; it = gp_strmap_next(s_jobs, it)) {
        s_job_t *j = it.value;
        accepted += j->accepted || burst;
        lost += (j->accepted || burst) && j->commit_ns == 0;
    }
    for (int c = 0; c < CONNS; c++) {
        if (conns[c].h) {
            curl_multi_remove_handle(s_multi, conns[c].h);
            curl_easy_cleanup(conns[c].h);
            curl_slist_free_all(conns[c].hdrs);
        }
        free(conns[c].body);
    }
    if (burst) {
        double secs = (double)(s_last_commit_ns - t0) / 1e9;
        printf("committed %lld / %lld, errors %ld\n", (long long)s_committed, (long long)n, s_errors);
        printf("submitted_per_s %.0f\n", (double)n / ((double)(submitted_ns - t0) / 1e9));
        printf("placements_per_s %.0f\n", secs > 0 ? (double)s_committed / secs : 0.0);
    } else {
        int64_t *lat = calloc((size_t)n, sizeof *lat);
        size_t k = 0;
        for (gp_strmap_iter_t it = gp_strmap_first(s_jobs); it.key; it = gp_strmap_next(s_jobs, it)) {
            s_job_t *j = it.value;
            if (j->commit_ns)
                lat[k++] = j->commit_ns - j->submit_ns;
        }
        bench_sort(lat, k);
        const char *slow = getenv("LOAD_SLOW_FILE");
        FILE *sf = slow && k > 0 ? fopen(slow, "w") : NULL;
        double p99 = k > 0 ? bench_pct(lat, k, 99) : 0;
        for (gp_strmap_iter_t it = gp_strmap_first(s_jobs); sf && it.key; it = gp_strmap_next(s_jobs, it)) {
            s_job_t *j = it.value;
            if (j->commit_ns == 0 || (double)(j->commit_ns - j->submit_ns) >= p99)
                fprintf(sf, "%s %.2f %.2f\n", it.key, (double)(j->submit_ns - t0) / 1e6,
                        j->commit_ns ? (double)(j->commit_ns - t0) / 1e6 : -1.0);
        }
        if (sf)
            fclose(sf);
        printf("committed %zu / %lld, errors %ld\n", k, (long long)n, s_errors);
        if (k > 0)
            printf("p50_ms %.2f\np99_ms %.2f\nmax_ms %.2f\n", bench_pct(lat, k, 50) / 1e6,
                   bench_pct(lat, k, 99) / 1e6, bench_pct(lat, k, 100) / 1e6);
        printf("offered_per_s %.0f\n", (double)n / ((double)(submitted_ns - t0) / 1e9));
        printf("accepted %lld\nuncommitted_accepted %lld\n", (long long)accepted, (long long)lost);
        free(lat);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("cpu_s %.2f\n", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    for (gp_strmap_iter_t it = gp_strmap_first(s_jobs); it.key; it = gp_strmap_next(s_jobs, it))
        free(it.value);
    gp_strmap_destroy(&s_jobs);
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);
    bench_loop_destroy(&loop);
    curl_multi_cleanup(s_multi);
    curl_global_cleanup();
    return rejects_ok ? (lost == 0 ? 0 : 1) : (s_committed == n ? 0 : 1);
}
