/*
 * ui.c - the web console: its files, its read-only data endpoints, and the
 * pool's one-hour history (ui.h says what is served and why).
 *
 * Rendering.  Each data view is a function of the cache (and, for the
 * overview, of the history) and of the request's parameters.  The JSON of
 * a view is kept in a memo keyed by the view and its parameters, with the
 * cache revision and history sample it was built from; a request at the
 * same revision is answered from the memo (a copy of the bytes), one whose
 * If-None-Match names that state gets 304 and no body.  So the cost of a
 * console that is open but idle is one small request a second, and the
 * cost of a change is one rendering per view, however many consoles look.
 *
 * The history is a ring of S_HISTORY samples taken every S_SAMPLE_MS from
 * the loop's tick (coord_ui_tick): GPU thousandths in the pool and
 * allocated (as GET /v1/usage counts them), and the thousandths really
 * busy (the sum of every device's utilization in the agents' usage
 * records).  It starts empty at each start of the coordinator.
 *
 * Who sees what.  The console's data is behind the API's authentication
 * (auth.h: c->caller is the principal while the request runs).  s_who()
 * takes the caller, and s_full_view() decides whether a job is shown in
 * full (spec, command, environment, history) or as metadata only (id,
 * state, team, region, node, devices, reason): operators see every job in
 * full, submitters and readers their own teams' jobs in full and the
 * others' as metadata.  who.key (empty for operators, who all see the same)
 * enters the memo key and the ETag, so that two principals who may see
 * different things never share an answer.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "jobrec.h"
#include "keys.h"
#include "log.h"
#include "ui.h"
#include "ui_assets.h"
#include "util.h"

#include "banned.h"

#define S_SAMPLE_MS    10000
#define S_USAGE_MS     1000    /* usage records read at most this often */
#define S_CONSOLE_IDLE_MS 60000 /* ...and only while a console asked within this */
#define S_HISTORY      360            /* one hour of samples */
#define S_MEMO         16             /* rendered views kept */
#define S_NODES_PAGE   100            /* nodes per page of the nodes view */
#define S_JOBS_MAX     1000           /* rows of the jobs view */
#define S_DATA_CACHE   "private, no-store"

typedef struct {
    int64_t at_ms;
    int64_t milli_total, milli_alloc, milli_busy;
} s_sample_t;

typedef struct {
    char key[320];                    /* view, parameters, principal */
    char etag[96];
    char *body;
    size_t len;
    uint64_t used;                    /* LRU clock */
} s_memo_t;

struct coord_ui {
    unsigned boot;                    /* differs between runs: no stale ETag matches */
    s_sample_t ring[S_HISTORY];
    int nsamples, head;               /* head: next slot */
    uint64_t sample_seq;
    int64_t next_sample_ms;
    int64_t usage_at_ms;              /* the usage records' last read */
    int64_t console_at_ms;            /* the last view a console asked for */
    json_t *prom;                     /* the last hour from Prometheus, or NULL */
    int64_t prom_at_ms, prom_warned_ms;
    uint64_t usage_hash, usage_gen;   /* what was read; bumped when it changed */
    s_memo_t memo[S_MEMO];
    uint64_t clock;
};
typedef struct coord_ui s_ui_t;

/* The caller, as far as the console is concerned (see the opening comment). */
typedef struct {
    int authorized;
    const coord_t *c;                 /* c->caller: the principal (auth.h) */
    char key[160];                    /* "" for those who see everything */
} s_who_t;

static s_ui_t *s_ui(coord_t *c)
{
    if (c->ui == NULL) {
        s_ui_t *u = calloc(1, sizeof *u);
        if (u)
            u->boot = (unsigned)(gp_wall_ms() ^ (gp_mono_ms() << 7));
        c->ui = u;
    }
    return c->ui;
}

static s_who_t s_who(coord_t *c, gp_http_req_t *req, int authorized)
{
    (void)req;
    s_who_t who = { .authorized = authorized, .c = c };
    if (authorized && c->caller && !(c->caller->roles & COORD_ROLE_OPERATOR))
        snprintf(who.key, sizeof who.key, "p:%s", c->caller->name);
    return who;
}

/* Whether who sees job j in full, or its metadata only. */
static int s_full_view(const s_who_t *who, const coord_job_t *j)
{
    return who->authorized && coord_auth_sees(who->c, j->owner);
}

/* ---------------------------------------------------------------- history */

/* A device's utilization (percent) from its node's usage record, -1 when
 * the record does not say. */
static int s_device_util(const coord_node_t *n, size_t index, int64_t *free_mib)
{
    json_t *d = n->usage ? json_array_get(json_object_get(n->usage, "devices"), index) : NULL;
    json_t *u = json_object_get(d, "util");
    if (free_mib)
        *free_mib = json_is_integer(json_object_get(d, "free_mib"))
                        ? json_integer_value(json_object_get(d, "free_mib")) : -1;
    return json_is_integer(u) ? (int)json_integer_value(u) : -1;
}

static void s_sample(coord_t *c, s_sample_t *s)
{
    memset(s, 0, sizeof *s);
    s->at_ms = gp_wall_ms();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (!n->present || n->record == NULL)
            continue;
        size_t nd = json_array_size(json_object_get(n->record, "devices"));
        s->milli_total += (int64_t)nd * 1000;
        for (size_t d = 0; d < nd; d++) {
            int util = s_device_util(n, d, NULL);
            s->milli_busy += util > 0 ? util * 10 : 0;
        }
    }
    s->milli_alloc = coord_cache_milli_allocated(c);
}


/* The agents' usage records (what slices really use) are not in the watch
 * that feeds the cache (cache.c: a coordinator does not stream every
 * report).  The console reads them itself, in one serializable range of
 * usage/ served by the nearest member, at most once a second while
 * consoles ask for views, and at each sample of the history while a
 * console asked within the last minute.  A coordinator nobody looks at
 * makes no such read: a synchronous read from the loop's tick to a hung
 * member was enough, under load, to starve the leader's keep-alives
 * (tests/coordinator/member_fault.t).  Each
 * node's record is kept on the node; usage_gen changes when any record did,
 * and enters the views' ETags. */
static void s_usage_refresh(coord_t *c, s_ui_t *u)
{
    int64_t now = gp_mono_ms();
    if (!coord_cache_listed(c) || (u->usage_at_ms && now - u->usage_at_ms < S_USAGE_MS))
        return;
    u->usage_at_ms = now;
    char key[GP_KEY_MAX];
    snprintf(key, sizeof key, "%susage/", c->cfg.prefix);
    gp_etcd_result_t res;
    gp_err_t err;
    if (gp_etcd_get(c->etcd, key, GP_ETCD_PREFIX | GP_ETCD_SERIALIZABLE, &res, &err) < 0) {
        gp_log_debug("console: usage records not read err=\"%s\"", err.msg);
        return;
    }
    uint64_t h = 0;
    for (size_t i = 0; i < res.n_kvs; i++) {   /* each record's key and revision */
        uint64_t step[3] = { h, gp_hash_mem(res.kvs[i].key, res.kvs[i].key_len),
                             (uint64_t)res.kvs[i].mod_revision };
        h = gp_hash_mem(step, sizeof step);
    }
    if (h != u->usage_hash || u->usage_gen == 0) {
        u->usage_hash = h;
        u->usage_gen++;
        for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
             it = coord_cache_next(c, it)) {
            coord_node_t *n = it.value;
            json_decref(n->usage);
            n->usage = NULL;
        }
        for (size_t i = 0; i < res.n_kvs; i++) {
            const gp_etcd_kv_t *kv = &res.kvs[i];
            const char *slash = memrchr(kv->key, '/', kv->key_len);
            char name[GP_NAME_LEN];
            size_t len = slash ? kv->key_len - (size_t)(slash + 1 - kv->key) : 0;
            if (len == 0 || len >= sizeof name)
                continue;
            memcpy(name, slash + 1, len);
            name[len] = '\0';
            coord_node_t *n = coord_cache_node(c, name, 0);
            if (n)
                n->usage = json_loadb(kv->value, kv->value_len, 0, NULL);
        }
    }
    gp_etcd_result_free(&res);
}

void coord_ui_tick(coord_t *c)
{
    s_ui_t *u = s_ui(c);
    int64_t now = gp_mono_ms();
    if (u == NULL || !coord_cache_listed(c) || now < u->next_sample_ms)
        return;
    u->next_sample_ms = now + S_SAMPLE_MS;
    if (u->console_at_ms && now - u->console_at_ms < S_CONSOLE_IDLE_MS) {
        u->usage_at_ms = 0;   /* a sample reads them afresh while consoles are open */
        s_usage_refresh(c, u);
    }
    s_sample(c, &u->ring[u->head]);
    u->head = (u->head + 1) % S_HISTORY;
    if (u->nsamples < S_HISTORY)
        u->nsamples++;
    u->sample_seq++;
}

void coord_ui_stop(coord_t *c)
{
    s_ui_t *u = c->ui;
    if (u == NULL)
        return;
    for (int i = 0; i < S_MEMO; i++)
        free(u->memo[i].body);
    json_decref(u->prom);
    free(u);
    c->ui = NULL;
}

/* ---------------------------------------------------------------- views */

/* A job's state as the API shows it: a pending record whose allocation is
 * committed is placed, on its allocation's node (the commit writes the
 * allocation alone; coord.h). */
static gp_job_state_t s_state(coord_t *c, const coord_job_t *j, const char **node)
{
    return coord_cache_state(c, j, node);
}

static json_t *s_job_meta(coord_t *c, const coord_job_t *j)
{
    const char *node;
    gp_job_state_t st = s_state(c, j, &node);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:s?,s:s?}", "id", j->id, "state",
                     gp_job_state_name(st), "team", j->owner, "region", j->region, "node",
                     node, "reason", j->reason, "priority", j->priority, "devices", j->devices,
                     "attempts", j->attempts, "submitted_ms", (json_int_t)j->submitted_ms,
                     "updated_ms", (json_int_t)j->updated_ms, "queued_in",
                     j->queued ? j->region : NULL, "gang", j->gang[0] ? j->gang : NULL);
}

static int s_active(gp_job_state_t st)
{
    return st == GP_JOB_PENDING || st == GP_JOB_PLACED || st == GP_JOB_RUNNING ||
           st == GP_JOB_SUSPENDED;
}

/* Per-model totals of the overview. */
typedef struct {
    int64_t gpus, milli_total, milli_alloc, milli_busy, mem_total, mem_used;
} s_model_t;

static s_model_t *s_model(gp_strmap_t *m, const char *name)
{
    s_model_t *t = gp_strmap_get(m, name);
    if (t == NULL && (t = calloc(1, sizeof *t)) != NULL && gp_strmap_put(m, name, t) < 0) {
        free(t);
        t = NULL;
    }
    return t;
}

static json_t *s_regions_json(coord_t *c)
{
    /* Regions: those with nodes, with coordinators, and our own. */
    json_t *byname = json_object();
    json_object_set_new(byname, c->cfg.region, json_pack("{s:s,s:[],s:[],s:i,s:i,s:i}", "name",
                                                         c->cfg.region, "clouds", "coordinators",
                                                         "nodes", 0, "gpus", 0, "milli_alloc", 0));
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_COORDINATORS); it.key;
         it = coord_cache_next(c, it)) {
        char region[GP_NAME_LEN];
        gp_strlcpy(region, it.key, sizeof region);
        char *slash = strchr(region, '/');
        if (slash == NULL)
            continue;
        *slash = '\0';
        json_t *r = json_object_get(byname, region);
        if (r == NULL) {
            r = json_pack("{s:s,s:[],s:[],s:i,s:i,s:i}", "name", region, "clouds", "coordinators",
                          "nodes", 0, "gpus", 0, "milli_alloc", 0);
            json_object_set_new(byname, region, r);
        }
        json_array_append_new(json_object_get(r, "coordinators"), json_string(slash + 1));
    }
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (!n->present || n->record == NULL)
            continue;
        json_t *r = json_object_get(byname, n->region);
        if (r == NULL) {
            r = json_pack("{s:s,s:[],s:[],s:i,s:i,s:i}", "name", n->region, "clouds",
                          "coordinators", "nodes", 0, "gpus", 0, "milli_alloc", 0);
            json_object_set_new(byname, n->region, r);
        }
        const char *cloud = json_string_value(json_object_get(n->record, "cloud"));
        json_t *clouds = json_object_get(r, "clouds");
        int seen = 0;
        size_t i;
        json_t *v;
        json_array_foreach(clouds, i, v) {
            seen |= cloud && !strcmp(json_string_value(v), cloud);
        }
        if (cloud && *cloud && !seen)
            json_array_append_new(clouds, json_string(cloud));
        json_object_set_new(r, "nodes", json_integer(json_integer_value(json_object_get(r, "nodes")) + 1));
        json_object_set_new(r, "gpus", json_integer(json_integer_value(json_object_get(r, "gpus")) +
                                                    (json_int_t)json_array_size(json_object_get(
                                                        n->record, "devices"))));
    }
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); a.key;
         a = coord_cache_next(c, a)) {
        const gp_alloc_t *al = a.value;
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        json_t *r = n && n->present ? json_object_get(byname, n->region) : NULL;
        if (r)
            json_object_set_new(r, "milli_alloc",
                                json_integer(json_integer_value(json_object_get(r, "milli_alloc")) +
                                             coord_alloc_milli(c, al, NULL, NULL, NULL)));
    }
    json_t *out = json_array();
    const char *name;
    json_t *r;
    json_object_foreach(byname, name, r) {
        const char *leader = coord_cache_leader(c, name);
        json_object_set_new(r, "leader", leader ? json_string(leader) : json_null());
        json_object_set_new(r, "pending", json_integer(0));
        json_object_set_new(r, "running", json_integer(0));
        json_array_append(out, r);
    }
    json_decref(byname);
    return out;
}

/* The last hour from Prometheus (console-prometheus), read again at most
 * once a sample interval: three range queries of one-minute steps,
 *   total      sum(gpupool_gpu_milli_capacity)
 *   allocated  sum(gpupool_gpu_milli_allocated)
 *   busy       sum(gpupool_agent_slice_compute_percent) * 10
 * (busy: the GPU time the slices achieved, as the agents' shims measure it,
 * where the coordinator's own samples add up the devices' utilization),
 * merged by timestamp into [at_ms, total, allocated, busy] rows like the
 * coordinator's own.  A blocking request with a 2 s deadline, so one
 * console's overview may wait for it; NULL when Prometheus does not answer
 * (logged once a minute), and the console then shows its own samples. */
typedef struct {
    char *p;
    size_t len;
} s_body_t;

static size_t s_prom_body(char *data, size_t size, size_t nmemb, void *arg)
{
    s_body_t *b = arg;
    size_t n = size * nmemb;
    char *p = b->len + n <= ((size_t)8 << 20) ? realloc(b->p, b->len + n + 1) : NULL;
    if (p == NULL)
        return 0;   /* no answer of ours is that large */
    memcpy(p + b->len, data, n);
    b->p = p;
    b->len += n;
    p[b->len] = '\0';
    return n;
}

static json_t *s_prom_range(CURL *curl, const char *base, const char *query, int64_t now_s)
{
    char *q = curl_easy_escape(curl, query, 0);
    char url[1024];
    s_body_t body = { NULL, 0 };
    json_t *values = NULL;
    if (q == NULL)
        return NULL;
    snprintf(url, sizeof url, "%s/api/v1/query_range?query=%s&start=%lld&end=%lld&step=60", base, q,
             (long long)(now_s - 3600), (long long)now_s);
    curl_free(q);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK &&
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200) {
        json_t *doc = json_loadb(body.p ? body.p : "", body.len, 0, NULL);
        json_t *res = json_object_get(json_object_get(doc, "data"), "result");
        values = json_object_get(json_array_get(res, 0), "values");
        if (json_is_array(values))
            json_incref(values);
        else if (json_is_array(res) && json_array_size(res) == 0)
            values = json_array();   /* no data yet */
        else
            values = NULL;
        json_decref(doc);
    }
    free(body.p);
    return values;
}

static json_t *s_prom_history(coord_t *c, s_ui_t *u)
{
    const char *base = c->cfg.console_prometheus;
    if (base == NULL || *base == '\0')
        return NULL;
    int64_t now = gp_mono_ms();
    if (u->prom_at_ms && now - u->prom_at_ms < S_SAMPLE_MS)
        return u->prom;
    u->prom_at_ms = now;
    static const char *const queries[] = { "sum(gpupool_gpu_milli_capacity)",
                                           "sum(gpupool_gpu_milli_allocated)",
                                           "sum(gpupool_agent_slice_compute_percent) * 10" };
    json_t *series[3] = { NULL, NULL, NULL };
    CURL *curl = curl_easy_init();
    int ok = curl != NULL;
    if (curl) {
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_prom_body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        for (int i = 0; ok && i < 3; i++)
            ok = (series[i] = s_prom_range(curl, base, queries[i], gp_wall_ms() / 1000)) != NULL;
        curl_easy_cleanup(curl);
    }
    json_decref(u->prom);
    u->prom = NULL;
    if (ok) {
        /* rows by the total's timestamps; a missing value is 0 */
        u->prom = json_array();
        size_t i;
        json_t *pt;
        json_array_foreach(series[0], i, pt) {
            double at = json_number_value(json_array_get(pt, 0));
            json_int_t v[3] = { 0, 0, 0 };
            for (int k = 0; k < 3; k++) {
                size_t j;
                json_t *q;
                json_array_foreach(series[k], j, q) {
                    if (json_number_value(json_array_get(q, 0)) == at) {
                        v[k] = (json_int_t)atof(json_string_value(json_array_get(q, 1)) ?: "0");
                        break;
                    }
                }
            }
            json_array_append_new(u->prom, json_pack("[I,I,I,I]", (json_int_t)(at * 1000), v[0], v[1], v[2]));
        }
    } else if (now - u->prom_warned_ms >= 60000) {
        u->prom_warned_ms = now;
        gp_log_warn("console: Prometheus did not answer; the console shows the coordinator's own "
                    "samples url=%s", base);
    }
    for (int k = 0; k < 3; k++)
        json_decref(series[k]);
    return u->prom;
}

static json_t *s_view_overview(coord_t *c, const s_who_t *who)
{
    (void)who;
    s_ui_t *u = s_ui(c);
    json_t *regions = s_regions_json(c);
    /* Jobs by state, and pending / running per region. */
    int64_t counts[GP_JOB_LOST + 1] = { 0 };
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_JOBS); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        gp_job_state_t st = s_state(c, j, NULL);
        if ((int)st >= 0 && st <= GP_JOB_LOST)
            counts[st]++;
        const char *where = j->region;   /* a job waits in its owner region's queue */
        const char *field = st == GP_JOB_PENDING ? "pending" : s_active(st) ? "running" : NULL;
        size_t i;
        json_t *r;
        json_array_foreach(regions, i, r) {
            if (field && !strcmp(json_string_value(json_object_get(r, "name")), where))
                json_object_set_new(r, field,
                                    json_integer(json_integer_value(json_object_get(r, field)) + 1));
        }
    }
    json_t *states = json_object();
    for (int s = 0; s <= GP_JOB_LOST; s++)
        json_object_set_new(states, gp_job_state_name((gp_job_state_t)s), json_integer(counts[s]));
    /* GPUs by model: total, allocated, busy (usage records), memory. */
    gp_strmap_t *models = gp_strmap_new();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); models && it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (!n->present || n->record == NULL)
            continue;
        json_t *devs = json_object_get(n->record, "devices");
        for (size_t d = 0; d < json_array_size(devs); d++) {
            json_t *dev = json_array_get(devs, d);
            const char *model = json_string_value(json_object_get(dev, "model"));
            s_model_t *m = s_model(models, model ? model : "?");
            if (m == NULL)
                continue;
            int64_t mem = json_integer_value(json_object_get(dev, "mem_mib")), free_mib;
            int util = s_device_util(n, d, &free_mib);
            m->gpus++;
            m->milli_total += 1000;
            m->milli_busy += util > 0 ? util * 10 : 0;
            m->mem_total += mem;
            m->mem_used += free_mib >= 0 && free_mib <= mem ? mem - free_mib : 0;
        }
    }
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); models && a.key;
         a = coord_cache_next(c, a)) {
        gp_alloc_t *al = a.value;
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        if (n == NULL || !n->present)
            continue;
        const char *model = NULL;
        int64_t milli = coord_alloc_milli(c, al, NULL, NULL, &model);
        s_model_t *m = s_model(models, model ? model : "?");
        if (m)
            m->milli_alloc += milli;
    }
    json_t *mj = json_array();
    for (gp_strmap_iter_t it = gp_strmap_first(models); models && it.key;
         it = gp_strmap_next(models, it)) {
        s_model_t *m = it.value;
        json_array_append_new(mj, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "model", it.key, "gpus",
                                            (json_int_t)m->gpus, "milli_total",
                                            (json_int_t)m->milli_total, "milli_alloc",
                                            (json_int_t)m->milli_alloc, "milli_busy",
                                            (json_int_t)m->milli_busy, "mem_total_mib",
                                            (json_int_t)m->mem_total, "mem_used_mib",
                                            (json_int_t)m->mem_used));
        free(m);
    }
    gp_strmap_destroy(&models);
    /* The history, oldest first: [at_ms, total, allocated, busy]. */
    json_t *prom = u ? s_prom_history(c, u) : NULL;
    json_t *hist = prom ? json_deep_copy(prom) : json_array();
    for (int i = 0; !prom && u && i < u->nsamples; i++) {
        const s_sample_t *s = &u->ring[(u->head - u->nsamples + i + S_HISTORY) % S_HISTORY];
        json_array_append_new(hist, json_pack("[I,I,I,I]", (json_int_t)s->at_ms,
                                              (json_int_t)s->milli_total, (json_int_t)s->milli_alloc,
                                              (json_int_t)s->milli_busy));
    }
    return json_pack("{s:{s:s,s:s,s:b},s:I,s:o,s:o,s:o,s:{s:i,s:o,s:s},s:{s:b}}", "coordinator", "id",
                     c->cfg.id, "region", c->cfg.region, "leader", coord_is_leader(c), "revision",
                     (json_int_t)coord_cache_revision(c), "regions", regions, "models", mj, "jobs", states,
                     "history", "interval_s", prom ? 60 : S_SAMPLE_MS / 1000, "samples", hist,
                     "source", prom ? "prometheus" : "coordinator", "store", "full",
                     coord_store_full(c));
}

static int s_cmp_node(const void *a, const void *b)
{
    const coord_node_t *x = *(coord_node_t *const *)a, *y = *(coord_node_t *const *)b;
    int r = strcmp(x->region, y->region);
    return r ? r : strcmp(x->name, y->name);
}

/* A node's devices, their slices still empty (s_add_slices fills them). */
static json_t *s_node_json(coord_node_t *n)
{
    json_t *devs = json_array();
    json_t *rd = n->record ? json_object_get(n->record, "devices") : NULL;
    for (size_t d = 0; d < json_array_size(rd); d++) {
        json_t *dev = json_array_get(rd, d);
        int64_t free_mib;
        int util = s_device_util(n, d, &free_mib);
        json_array_append_new(devs, json_pack("{s:i,s:O?,s:O?,s:O?,s:b,s:o,s:o,s:[]}", "index", (int)d,
                                              "uuid", json_object_get(dev, "uuid"), "model",
                                              json_object_get(dev, "model"), "mem_mib",
                                              json_object_get(dev, "mem_mib"), "healthy",
                                              !json_is_false(json_object_get(dev, "healthy")),
                                              "util", util >= 0 ? json_integer(util) : json_null(),
                                              "free_mib", free_mib >= 0 ? json_integer(free_mib)
                                                                        : json_null(),
                                              "slices"));
    }
    const char *state = !n->present ? "notready"
                        : json_is_false(json_object_get(n->record, "healthy")) ? "unhealthy"
                                                                                : "ready";
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:[]}", "name", n->name, "region", n->region, "state",
                          state, "devices", devs, "jobs");
    if (n->record) {
        static const char *const copy[] = { "cloud", "cluster", "zone", "cordoned" };
        for (size_t i = 0; i < GP_ARRAY_LEN(copy); i++)
            if (json_object_get(n->record, copy[i]))
                json_object_set(o, copy[i], json_object_get(n->record, copy[i]));
    }
    if (n->cordon)   /* P cordons/<node> (drain.c): {reason, by, since_ms} */
        json_object_set(o, "cordoned", n->cordon);
    return o;
}

/* One committed allocation's slices on its node's devices; each slice is
 * also filed in slices under "job/uuid" for s_add_usage. */
static void s_add_slices(coord_t *c, json_t *node, const gp_alloc_t *al, gp_strmap_t *slices)
{
    coord_job_t *j = coord_cache_job(c, al->job);
    json_t *devs = json_object_get(node, "devices");
    json_array_append_new(json_object_get(node, "jobs"), json_string(al->job));
    for (int d = 0; d < al->ndevices; d++) {
        json_t *dev = json_array_get(devs, (size_t)al->devices[d].index);
        if (dev == NULL)
            continue;
        int64_t dm = json_integer_value(json_object_get(dev, "mem_mib"));
        int whole = al->devices[d].whole;
        json_t *s = json_pack("{s:s,s:s?,s:s?,s:I,s:i,s:b,s:b}", "job", al->job, "team",
                              j ? j->owner : NULL, "state", j ? gp_job_state_name(s_state(c, j, NULL)) : NULL,
                              "mem_mib", (json_int_t)(whole ? dm : al->devices[d].mem_mib),
                              "compute_permille", whole ? 1000 : al->devices[d].compute_permille,
                              "whole", whole, "suspended", al->suspended);
        json_array_append_new(json_object_get(dev, "slices"), s);
        char key[2 * GP_NAME_LEN + 2];
        snprintf(key, sizeof key, "%s/%s", al->job, al->devices[d].uuid);
        gp_strmap_put(slices, key, s);
    }
}

/* What each slice on node n really uses, from its agent's usage record. */
static void s_add_usage(const coord_node_t *n, gp_strmap_t *slices)
{
    json_t *us = n->usage ? json_object_get(n->usage, "slices") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(us, i, v) {
        const char *job = json_string_value(json_object_get(v, "job"));
        size_t k;
        json_t *ud;
        json_array_foreach(json_object_get(v, "devices"), k, ud) {
            const char *uuid = json_string_value(json_object_get(ud, "uuid"));
            char key[2 * GP_NAME_LEN + 2];
            snprintf(key, sizeof key, "%s/%s", job ? job : "", uuid ? uuid : "");
            json_t *s = gp_strmap_get(slices, key);
            if (s == NULL)
                continue;
            json_object_set(s, "used_mib", json_object_get(ud, "mem_used_mib"));
            json_object_set(s, "compute_percent", json_object_get(ud, "compute_percent"));
        }
    }
}

static json_t *s_view_nodes(coord_t *c, const s_who_t *who, const char *region, int page)
{
    (void)who;   /* slices name job, team and share: metadata every caller sees */
    size_t cap = coord_cache_count(c, COORD_NODES), n = 0;
    coord_node_t **list = calloc(cap ? cap : 1, sizeof *list);
    gp_strmap_t *regions = gp_strmap_new(), *slices = gp_strmap_new(), *held = gp_strmap_new(),
                *shown = gp_strmap_new();
    json_t *out = NULL;
    if (list == NULL || regions == NULL || slices == NULL || held == NULL || shown == NULL)
        goto cleanup;
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); a.key;
         a = coord_cache_next(c, a))
        gp_strmap_put(held, ((const gp_alloc_t *)a.value)->node, a.value);
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *nd = it.value;
        /* A node whose record is gone while allocations remain: NotReady
         * (until the leader's recovery releases them). */
        if (!nd->present && !nd->gone_ms && gp_strmap_get(held, nd->name) == NULL)
            continue;
        if (nd->region[0])
            gp_strmap_put(regions, nd->region, nd);
        if (region && strcmp(nd->region, region) != 0)
            continue;
        list[n++] = nd;
    }
    qsort(list, n, sizeof *list, s_cmp_node);
    int pages = (int)((n + S_NODES_PAGE - 1) / S_NODES_PAGE);
    if (page >= pages)
        page = pages ? pages - 1 : 0;
    /* The page's nodes, then one pass over the allocations for their slices. */
    json_t *nodes = json_array();
    size_t first = (size_t)page * S_NODES_PAGE, last = first + S_NODES_PAGE < n ? first + S_NODES_PAGE : n;
    for (size_t i = first; i < last; i++) {
        json_t *o = s_node_json(list[i]);
        json_array_append_new(nodes, o);
        gp_strmap_put(shown, list[i]->name, o);
    }
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); a.key;
         a = coord_cache_next(c, a)) {
        json_t *o = gp_strmap_get(shown, ((const gp_alloc_t *)a.value)->node);
        if (o)
            s_add_slices(c, o, a.value, slices);
    }
    for (size_t i = first; i < last; i++)
        s_add_usage(list[i], slices);
    json_t *rl = json_array();
    for (gp_strmap_iter_t it = gp_strmap_first(regions); it.key; it = gp_strmap_next(regions, it))
        json_array_append_new(rl, json_string(it.key));
    out = json_pack("{s:I,s:i,s:i,s:o,s:o,s:I}", "total", (json_int_t)n, "page", page, "pages", pages,
                    "regions", rl, "nodes", nodes, "revision", (json_int_t)coord_cache_revision(c));
cleanup:
    free(list);
    gp_strmap_destroy(&regions);
    gp_strmap_destroy(&slices);
    gp_strmap_destroy(&held);
    gp_strmap_destroy(&shown);
    return out;
}

/* Queue order: pending first (higher priority, then older, first), then
 * the rest, most recently changed first. */
static int s_cmp_job(const void *a, const void *b)
{
    const coord_job_t *x = *(coord_job_t *const *)a, *y = *(coord_job_t *const *)b;
    int xp = x->state == GP_JOB_PENDING, yp = y->state == GP_JOB_PENDING;
    if (xp != yp)
        return yp - xp;
    if (xp && x->priority != y->priority)
        return y->priority - x->priority;
    if (xp && x->submitted_ms != y->submitted_ms)
        return x->submitted_ms < y->submitted_ms ? -1 : 1;
    if (!xp && x->updated_ms != y->updated_ms)
        return x->updated_ms > y->updated_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* state: a state name, "active" (pending, placed, running, suspended),
 * "ended", or NULL for all. */
static json_t *s_view_jobs(coord_t *c, const s_who_t *who, const char *state, const char *team,
                           const char *region)
{
    size_t cap = coord_cache_count(c, COORD_JOBS), n = 0;
    coord_job_t **list = calloc(cap ? cap : 1, sizeof *list);
    gp_strmap_t *teams = gp_strmap_new(), *regions = gp_strmap_new();
    json_t *out = NULL;
    if (list == NULL || teams == NULL || regions == NULL)
        goto cleanup;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_JOBS); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        if (j->owner[0])
            gp_strmap_put(teams, j->owner, j);
        if (j->region[0])
            gp_strmap_put(regions, j->region, j);
        gp_job_state_t st = s_state(c, j, NULL);
        if (state && !strcmp(state, "active") ? !s_active(st)
            : state && !strcmp(state, "ended") ? s_active(st)
            : state && strcmp(state, gp_job_state_name(st)) != 0)
            continue;
        if ((team && strcmp(team, j->owner)) || (region && strcmp(region, j->region)))
            continue;
        list[n++] = j;
    }
    qsort(list, n, sizeof *list, s_cmp_job);
    json_t *jobs = json_array();
    for (size_t i = 0; i < n && i < S_JOBS_MAX; i++) {
        json_t *m = s_job_meta(c, list[i]);
        json_object_set_new(m, "full", json_boolean(s_full_view(who, list[i])));
        json_array_append_new(jobs, m);
    }
    json_t *tl = json_array(), *rl = json_array();
    for (gp_strmap_iter_t it = gp_strmap_first(teams); it.key; it = gp_strmap_next(teams, it))
        json_array_append_new(tl, json_string(it.key));
    for (gp_strmap_iter_t it = gp_strmap_first(regions); it.key; it = gp_strmap_next(regions, it))
        json_array_append_new(rl, json_string(it.key));
    out = json_pack("{s:I,s:o,s:o,s:o,s:I}", "total", (json_int_t)n, "jobs", jobs, "teams", tl,
                    "regions", rl, "revision", (json_int_t)coord_cache_revision(c));
cleanup:
    free(list);
    gp_strmap_destroy(&teams);
    gp_strmap_destroy(&regions);
    return out;
}

/* One job: its record (in full, or its metadata), its allocation and what
 * its slice uses; NULL when the pool has no such job. */
static json_t *s_view_job(coord_t *c, const s_who_t *who, const char *id)
{
    coord_job_t *j = coord_cache_job(c, id);
    json_t *rec = NULL;
    int full = 0;
    if (j && s_full_view(who, j) && j->raw) {
        rec = json_loadb(j->raw, j->raw_len, 0, NULL);
        full = rec != NULL;
    }
    if (rec == NULL && j)
        rec = s_job_meta(c, j);
    if (rec == NULL && who->authorized && (rec = coord_store_archived(c, id)) != NULL) {
        /* ended and removed from the store */
        full = coord_auth_sees(c, json_string_value(json_object_get(rec, "owner")));
        coord_auth_redact(c, rec);
    }
    if (rec == NULL)
        return NULL;
    json_t *out = json_pack("{s:o,s:b,s:b,s:n,s:I}", "job", rec, "full", full, "archived", j == NULL,
                            "alloc", "revision", (json_int_t)coord_cache_revision(c));
    const gp_alloc_t *al = coord_cache_alloc(c, id);
    if (al) {
        json_object_set_new(out, "alloc", gp_alloc_to_json(al));
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        json_t *us = n && n->usage ? json_object_get(n->usage, "slices") : NULL;
        size_t i;
        json_t *v;
        json_array_foreach(us, i, v) {
            if (!strcmp(json_string_value(json_object_get(v, "job")) ?
                        json_string_value(json_object_get(v, "job")) : "", id))
                json_object_set(out, "usage", json_object_get(v, "devices"));
        }
    }
    /* The logs stay on the node (state-dir); the console has no way to them yet. */
    json_object_set_new(out, "log", json_null());
    return out;
}

/* ---------------------------------------------------------------- serving */

static void s_security_headers(gp_http_req_t *req)
{
    gp_http_set_header(req, "Content-Security-Policy",
                       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
                       "data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                       "frame-ancestors 'none'");
    gp_http_set_header(req, "X-Content-Type-Options", "nosniff");
    gp_http_set_header(req, "Referrer-Policy", "no-referrer");
}

static const char *s_mime(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (dot && !strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (dot && !strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (dot && !strcmp(dot, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

static int s_etag_matches(gp_http_req_t *req, const char *etag)
{
    const char *inm = gp_http_req_header(req, "If-None-Match");
    return inm && (!strcmp(inm, etag) || !strcmp(inm, "*"));
}

/* Answer 200 with a copy of data, or 304 when the request names etag.
 * cache: the Cache-Control value ("no-cache" for the console's files,
 * "private, no-store" for its data, which a browser must not keep). */
static void s_send(gp_http_req_t *req, const char *type, const char *cache, const char *etag,
                   const void *data, size_t len)
{
    if (etag && s_etag_matches(req, etag)) {
        gp_http_set_header(req, "ETag", etag);
        gp_http_set_header(req, "Cache-Control", cache);
        gp_http_respond(req, 304, NULL, NULL, 0);
        return;
    }
    char *body = malloc(len + 1);
    if (body == NULL) {
        gp_http_respond_error(req, 500, "out of memory");
        return;
    }
    memcpy(body, data, len);
    body[len] = '\0';
    if (etag)
        gp_http_set_header(req, "ETag", etag);
    gp_http_set_header(req, "Cache-Control", cache);
    gp_http_respond(req, 200, type, body, len);
}

static void s_asset(gp_http_req_t *req, const char *name)
{
    for (const coord_ui_asset_t *a = coord_ui_assets; a->name; a++) {
        if (strcmp(a->name, name) != 0)
            continue;
        char etag[40];
        snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)gp_hash_mem(a->data, a->len));
        s_security_headers(req);
        s_send(req, s_mime(a->name), "no-cache", etag, a->data, a->len);
        return;
    }
    gp_http_respond_error(req, 404, "no such file /ui/%s", name);
}

static s_memo_t *s_memo_find(s_ui_t *u, const char *key, const char *etag)
{
    for (int i = 0; i < S_MEMO; i++)
        if (u->memo[i].body && !strcmp(u->memo[i].key, key) && !strcmp(u->memo[i].etag, etag)) {
            u->memo[i].used = ++u->clock;
            return &u->memo[i];
        }
    return NULL;
}

static void s_memo_put(s_ui_t *u, const char *key, const char *etag, char *body, size_t len)
{
    s_memo_t *slot = &u->memo[0];
    for (int i = 0; i < S_MEMO; i++) {
        if (u->memo[i].body && !strcmp(u->memo[i].key, key)) {
            slot = &u->memo[i];   /* the same view at an older state */
            break;
        }
        if (u->memo[i].used < slot->used)
            slot = &u->memo[i];
    }
    free(slot->body);
    gp_strlcpy(slot->key, key, sizeof slot->key);
    gp_strlcpy(slot->etag, etag, sizeof slot->etag);
    slot->body = body;
    slot->len = len;
    slot->used = ++u->clock;
}

/* A query parameter that is absent or empty is NULL. */
static const char *s_param(gp_http_req_t *req, const char *name)
{
    const char *v = gp_http_req_query(req, name);
    return v && *v ? v : NULL;
}

static void s_data(coord_t *c, gp_http_req_t *req, const s_who_t *who, const char *view)
{
    s_ui_t *u = s_ui(c);
    if (u == NULL || !coord_cache_listed(c)) {
        gp_http_respond_error(req, 503, "the coordinator's cache is not ready");
        return;
    }
    if (!strncmp(view, "logs/", 5)) {
        /* a job's log tail: the API's logs.c, answered by its node's agent */
        if (!gp_name_valid(view + 5))
            gp_http_respond_error(req, 400, "bad job id \"%.200s\"", view + 5);
        else
            coord_logs_http(c, req, view + 5);
        return;
    }
    char key[320], etag[160];
    const char *state = s_param(req, "state"), *team = s_param(req, "team"),
               *region = s_param(req, "region"), *page = s_param(req, "page");
    int overview = !strcmp(view, "overview");
    /* The principal first, and no truncation: a long parameter must never
     * cut it off and make two principals' views share a key. */
    int klen = snprintf(key, sizeof key, "%s|%s|%s|%s|%s|%s", who->key, view, state ? state : "",
                        team ? team : "", region ? region : "", page ? page : "");
    if (klen < 0 || (size_t)klen >= sizeof key) {
        gp_http_respond_error(req, 400, "query parameters too long");
        return;
    }
    u->console_at_ms = gp_mono_ms();
    s_usage_refresh(c, u);
    snprintf(etag, sizeof etag, "W/\"%08x-%lld-%llu-%llu-%d-%016llx\"", u->boot, (long long)coord_cache_revision(c),
             (unsigned long long)u->usage_gen,
             overview ? (unsigned long long)u->sample_seq : 0ULL,
             overview ? coord_store_full(c) * 2 + coord_is_leader(c) : 0,
             (unsigned long long)gp_hash_str(key));
    gp_http_set_header(req, "X-Content-Type-Options", "nosniff");
    if (s_etag_matches(req, etag)) {
        s_send(req, NULL, S_DATA_CACHE, etag, NULL, 0);   /* 304 */
        return;
    }
    s_memo_t *m = s_memo_find(u, key, etag);
    if (m) {
        s_send(req, "application/json", S_DATA_CACHE, etag, m->body, m->len);
        return;
    }
    json_t *o = NULL;
    if (overview) {
        o = s_view_overview(c, who);
    } else if (!strcmp(view, "nodes")) {
        long p = page ? strtol(page, NULL, 10) : 0;
        o = s_view_nodes(c, who, region, p > 0 && p < 1000000 ? (int)p : 0);
    } else if (!strcmp(view, "jobs")) {
        o = s_view_jobs(c, who, state, team, region);
    } else if (!strncmp(view, "jobs/", 5)) {
        if (!gp_name_valid(view + 5)) {
            gp_http_respond_error(req, 400, "bad job id \"%.200s\"", view + 5);
            return;
        }
        if ((o = s_view_job(c, who, view + 5)) == NULL) {
            gp_http_respond_error(req, 404, "no job %s", view + 5);
            return;
        }
    } else {
        gp_http_respond_error(req, 404, "no such endpoint GET /ui/api/%.200s", view);
        return;
    }
    gp_jobrec_redact_json(json_object_get(o, "job"));   /* secret env values never leave */
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        gp_http_respond_error(req, 500, "out of memory");
        return;
    }
    size_t len = strlen(text);
    s_send(req, "application/json", S_DATA_CACHE, etag, text, len);
    s_memo_put(u, key, etag, text, len);
}

void coord_ui_http(coord_t *c, gp_http_req_t *req, int authorized)
{
    const char *method = gp_http_req_method(req), *path = gp_http_req_path(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        gp_http_respond_error(req, 405, "%s not allowed on %s (the console is read-only)", method,
                              path);
        return;
    }
    if (!strcmp(path, "/ui")) {
        gp_http_set_header(req, "Location", "/ui/");
        gp_http_respond(req, 301, NULL, NULL, 0);
        return;
    }
    const char *rest = path + 4;   /* after "/ui/" */
    if (!strncmp(rest, "api/", 4)) {
        s_who_t who = s_who(c, req, authorized);
        if (!who.authorized) {
            gp_metric_inc(c->m.unauthorized);
            gp_http_respond_error(req, 401, "missing or wrong API token (Authorization: Bearer ...)");
            return;
        }
        s_data(c, req, &who, rest + 4);
        return;
    }
    s_asset(req, *rest ? rest : "index.html");
}
