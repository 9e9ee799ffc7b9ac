/*
 * wan_load - load generator of the WAN benchmark (tests/bench/wan.sh) and
 * of tests/coordinator/wan.t.
 *
 *   wan_load TOKEN ETCD_URL NAME burst N CLIENTS PER_REQ API=REGION...
 *   wan_load TOKEN ETCD_URL NAME rate R N API=REGION
 *
 * Submits fractional jobs named NAME-<i> (1 device, 8 GiB, 10% compute;
 * LOAD_JOB in the environment replaces those fields: '"devices":2,...')
 * through the REST API and watches the pool's prefix (/gpupool/) through
 * ETCD_URL: a job is placed when its allocation appears (alloc/<node>/<id>
 * created) and running when its record says "state":"running".  Every
 * time is this process's own clock.
 *
 * burst: CLIENTS clients, spread over the APIs (client c submits to the
 *   c-th API modulo their number, jobs of that API's REGION), each sending
 *   arrays of PER_REQ jobs one request after the other until N are sent.
 *   Prints placements_per_s (jobs placed / time from the first submission
 *   to the last placement) and ack_p50_ms (per request).
 * rate: one job per request, R per second, N jobs, to the one API (up to 64
 *   requests in flight, so that each job is sent when due); prints
 *   ack_p50_ms (submit -> the API's answer: stored), placed_p50_ms and
 *   running_p50_ms (from the submission), and their p90.
 * Both print "placed K / N" and "running K / N"; the exit status is 0 when
 * every job was acknowledged and placed within two minutes (and, at a low
 * rate, running), 1 otherwise, 64 for a bad command line.
 */
#include <curl/curl.h>
#include <stddef.h>
#include <jansson.h>
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
    int64_t submit_ns, ack_ns, placed_ns, running_ns;
} s_job_t;

typedef struct {
    CURL *h;
    struct curl_slist *hdrs;
    char *body;
    const char *api, *region;
    int busy;
    int64_t sent_ns;
    int64_t first, count;       /* the jobs of the request in flight */
} s_client_t;

static gp_strmap_t *s_jobs;
static s_job_t *s_all;
static int64_t s_n, s_placed, s_running, s_last_placed_ns, s_errors;
static char s_name[64];
static CURLM *s_multi;
static char s_auth[300];
static int64_t *s_acks;
static size_t s_nacks;

static s_job_t *s_find(const char *key, size_t key_len)
{
    size_t bl;
    const char *base = gp_key_base(key, key_len, &bl);
    char id[160];
    if (bl >= sizeof id)
        return NULL;
    memcpy(id, base, bl);
    id[bl] = '\0';
    return gp_strmap_get(s_jobs, id);
}

static void s_on_watch(gp_etcd_watch_t *w, const gp_etcd_watch_resp_t *resp, void *arg)
{
    (void)w;
    (void)arg;
    int64_t now = gp_mono_ns();
    for (size_t i = 0; i < resp->n_events; i++) {
        const gp_etcd_event_t *ev = &resp->events[i];
        if (ev->type != GP_ETCD_EVENT_PUT)
            continue;
        s_job_t *j = s_find(ev->kv.key, ev->kv.key_len);
        if (!j)
            continue;
        if (memmem(ev->kv.key, ev->kv.key_len, "/alloc/", 7)) {
            if (j->placed_ns == 0) {
                j->placed_ns = now;
                s_placed++;
                s_last_placed_ns = now;
            }
        } else if (memmem(ev->kv.key, ev->kv.key_len, "/jobs/", 6) && j->running_ns == 0) {
            json_t *o = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
            const char *st = json_string_value(json_object_get(o, "state"));
            if (st && !strcmp(st, "running")) {
                j->running_ns = now;
                s_running++;
            }
            json_decref(o);
        }
    }
}

static size_t s_discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static void s_post(s_client_t *c, char *body, int64_t first, int64_t count)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/jobs", c->api);
    if (c->h == NULL) {
        c->h = curl_easy_init();
        c->hdrs = curl_slist_append(NULL, s_auth);
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    }
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    free(c->body);
    c->body = body;
    c->busy = 1;
    c->first = first;
    c->count = count;
    c->sent_ns = gp_mono_ns();
    curl_multi_add_handle(s_multi, c->h);
}

static void s_reap(void)
{
    CURLMsg *m;
    int left;
    int64_t now = gp_mono_ns();
    while ((m = curl_multi_info_read(s_multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        s_client_t *c;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (m->data.result != CURLE_OK || (code != 200 && code != 201)) {
            s_errors++;
            fprintf(stderr, "wan_load: a request of %lld jobs failed: %s, HTTP %ld\n",
                    (long long)c->count, curl_easy_strerror(m->data.result), code);
        } else {
            for (int64_t k = c->first; k < c->first + c->count; k++)
                s_all[k].ack_ns = now;
            s_acks[s_nacks++] = now - c->sent_ns;
        }
        curl_multi_remove_handle(s_multi, m->easy_handle);
        c->busy = 0;
    }
}

static const char *s_spec = "\"devices\":1,\"mem_mib\":8192,\"compute_percent\":10";

static void s_job_json(FILE *f, int64_t i, const char *region)
{
    fprintf(f, "{\"id\":\"%s-%lld\",\"region\":\"%s\",%s}", s_name, (long long)i, region, s_spec);
}

/* Print the p50 and p90 of field (offset of an int64 minus submit_ns). */
static void s_pct(const char *name, size_t off)
{
    int64_t *v = calloc((size_t)s_n, sizeof *v);
    size_t k = 0;
    for (int64_t i = 0; v && i < s_n; i++) {
        int64_t t = *(const int64_t *)((const char *)&s_all[i] + off);
        if (t)
            v[k++] = t - s_all[i].submit_ns;
    }
    if (k > 0) {
        bench_sort(v, k);
        printf("%s_p50_ms %.2f\n%s_p90_ms %.2f\n", name, bench_pct(v, k, 50) / 1e6, name,
               bench_pct(v, k, 90) / 1e6);
    }
    free(v);
}

int main(int argc, char **argv)
{
    if (argc < 8)
        goto usage;
    int burst = !strcmp(argv[4], "burst");
    if (!burst && strcmp(argv[4], "rate"))
        goto usage;
    int64_t n = 0, clients = 1, per_req = 1, rate = 0;
    int first_api;
    if (burst) {
        if (argc < 9 || gp_parse_int64(argv[5], 1, 1000000, &n) < 0 ||
            gp_parse_int64(argv[6], 1, 256, &clients) < 0 ||
            gp_parse_int64(argv[7], 1, 1000, &per_req) < 0)
            goto usage;
        first_api = 8;
    } else {
        if (gp_parse_int64(argv[5], 1, 10000, &rate) < 0 || gp_parse_int64(argv[6], 1, 1000000, &n) < 0)
            goto usage;
        first_api = 7;
        clients = 64;   /* connections: a slow answer must not hold the next job back */
    }
    int n_api = argc - first_api;
    const char *job = getenv("LOAD_JOB");
    if (job && *job)
        s_spec = job;
    snprintf(s_auth, sizeof s_auth, "Authorization: Bearer %s", argv[1]);
    gp_strlcpy(s_name, argv[3], sizeof s_name);
    s_n = n;
    s_all = calloc((size_t)n, sizeof *s_all);
    s_acks = calloc((size_t)n, sizeof *s_acks);
    s_client_t *cl = calloc((size_t)clients, sizeof *cl);
    s_jobs = gp_strmap_new();
    if (!s_all || !s_acks || !cl || !s_jobs)
        return 70;
    for (int a = 0; a < n_api; a++) {   /* API=REGION, split in place */
        char *spec = argv[first_api + a], *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1])
            goto usage;
        *eq = '\0';
    }
    for (int64_t c = 0; c < clients; c++) {
        const char *api = argv[first_api + c % n_api];
        cl[c].api = api;
        cl[c].region = api + strlen(api) + 1;
    }
    for (int64_t i = 0; i < n; i++) {
        char id[160];
        snprintf(id, sizeof id, "%s-%lld", s_name, (long long)i);
        gp_strmap_put(s_jobs, id, &s_all[i]);
    }

    gp_etcd_config_t ec = GP_ETCD_CONFIG_INIT;
    ec.endpoints = argv[2];
    gp_err_t err;
    gp_etcd_t *etcd = gp_etcd_new(&ec, &err);
    gp_etcd_result_t res;
    if (!etcd || gp_etcd_get(etcd, "/gpupool/", GP_ETCD_PREFIX | GP_ETCD_COUNT_ONLY, &res, &err) < 0) {
        fprintf(stderr, "wan_load: etcd: %s\n", err.msg);
        return 69;
    }
    gp_etcd_watch_opts_t wo = { .key = "/gpupool/", .prefix = true,
                                .start_revision = res.revision + 1, .cb = s_on_watch };
    gp_etcd_result_free(&res);
    gp_etcd_watch_t *w = gp_etcd_watch_new(etcd, &wo, &err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_multi = curl_multi_init();
    bench_loop_t *loop = s_multi ? bench_loop_new(s_multi) : NULL;
    if (!w || !s_multi || !loop)
        return 69;

    int64_t sent = 0, t0 = gp_mono_ns();
    while (sent < n) {
        int64_t now = gp_mono_ns();
        int64_t due = burst ? n : (now - t0) * rate / 1000000000LL + 1;
        if (due > n)
            due = n;
        for (int64_t c = 0; c < clients && sent < due; c++) {
            if (cl[c].busy)
                continue;
            char *body = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&body, &len);
            int64_t first = sent, k;
            fputc('[', f);
            for (k = 0; k < per_req && sent < due; k++, sent++) {
                if (k)
                    fputc(',', f);
                s_job_json(f, sent, cl[c].region);
                /* at a rate, a job counts from when it was due */
                s_all[sent].submit_ns = burst ? now : t0 + sent * 1000000000LL / rate;
            }
            fputc(']', f);
            fclose(f);
            s_post(&cl[c], body, first, k);
        }
        bench_step(loop, etcd, 2, s_reap);
    }
    int64_t deadline = gp_mono_ns() + 120LL * 1000000000LL;
    for (;;) {
        int busy = 0;
        for (int64_t c = 0; c < clients; c++)
            busy |= cl[c].busy;
        if (!busy && s_placed >= n && (burst || s_running >= n))
            break;
        if (gp_mono_ns() >= deadline)
            break;
        bench_step(loop, etcd, 20, s_reap);
    }
    printf("placed %lld / %lld\nrunning %lld / %lld\nerrors %lld\n", (long long)s_placed,
           (long long)n, (long long)s_running, (long long)n, (long long)s_errors);
    if (s_nacks > 0) {
        bench_sort(s_acks, s_nacks);
        printf("request_ack_p50_ms %.2f\n", bench_pct(s_acks, s_nacks, 50) / 1e6);
    }
    if (burst) {
        double secs = (double)(s_last_placed_ns - t0) / 1e9;
        printf("placements_per_s %.1f\n", secs > 0 ? (double)s_placed / secs : 0.0);
    } else {
        s_pct("ack", offsetof(s_job_t, ack_ns));
        s_pct("placed", offsetof(s_job_t, placed_ns));
        s_pct("running", offsetof(s_job_t, running_ns));
    }
    for (int64_t c = 0; c < clients; c++) {
        if (cl[c].h) {
            curl_multi_remove_handle(s_multi, cl[c].h);
            curl_easy_cleanup(cl[c].h);
            curl_slist_free_all(cl[c].hdrs);
        }
        free(cl[c].body);
    }
    free(cl);
    gp_strmap_destroy(&s_jobs);
    free(s_all);
    free(s_acks);
    gp_etcd_watch_destroy(&w);
    gp_etcd_destroy(&etcd);
    bench_loop_destroy(&loop);
    curl_multi_cleanup(s_multi);
    curl_global_cleanup();
    return s_placed == n && s_errors == 0 && (burst || s_running == n) ? 0 : 1;
usage:
    fprintf(stderr, "usage: wan_load TOKEN ETCD_URL NAME burst N CLIENTS PER_REQ API=REGION...\n"
                    "       wan_load TOKEN ETCD_URL NAME rate R N API=REGION\n");
    return 64;
}
