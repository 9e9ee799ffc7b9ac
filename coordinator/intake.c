/*
 * intake.c - the coordinator's REST API (README "REST API").
 *
 * Every coordinator of every region serves it, leader or not.  Requests
 * other than GET /metrics and GET /healthz need a principal (auth.h: a
 * bearer token or a client certificate; 401 otherwise) whose roles allow
 * them (403 otherwise); answers never show secret env values.
 *
 * Submissions are group-committed and pipelined: the handler validates the
 * body (a job or an array of jobs; a 400 names the field that is wrong and
 * nothing is stored), queues the valid jobs and leaves the request
 * unanswered; after each wake-up the loop puts every queued job of every
 * waiting request into one flight: a batch of transactions ("if jobs/<id>
 * does not exist, put it": the pending record is the job's place in its
 * region's queue) run in the background, and answers the flight's
 * requests from the etcd client's callback when it lands.  A new flight
 * leaves when fewer than S_FLIGHTS write to etcd (flights whose jobs wait
 * at the round do not count: they hold no write; one back from the round
 * writes whatever the count, for the jobs the round did not place, so the
 * bound is soft), so a request waits for one
 * durable write and never for the loop, a round's commit or an earlier
 * flight; the cost of durability is shared by every request that arrived
 * meanwhile.  So a 201 means "stored in etcd".  Submitting an id again is
 * idempotent: the same job gives 200 with the stored record, a different
 * one gives 409.
 *
 * On the leader of the job's region a flight goes first to the round
 * (round.c, "Placement at intake"): its jobs that may be placed at once
 * (no gang, no region preferences, no right-sizing, no quota of their
 * team) are offered to the next round, which stores each record together
 * with its allocation in one fenced transaction; only the jobs it did not
 * place are then stored alone, by the flight's passes.  Either way a
 * request is answered once each of its jobs is durably stored, and a job
 * is stored once (both writes compare "jobs/<id> does not exist").
 *
 * Reads of one job go to etcd (read-your-writes across coordinators), as
 * background reads answered from the etcd client's callback; listings,
 * nodes, regions and usage come from the watch-fed cache.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "txn.h"
#include "txnbuild.h"
#include "ui.h"
#include "util.h"

#include "banned.h"

#define S_MAX_JOBS_PER_REQUEST 10000

/* One job of a waiting submission. */
typedef struct {
    gp_http_req_t *req;
    int index;                 /* in the request's array, -1 for a single object */
    char id[GP_NAME_LEN];
    char *text;                /* the record to store */
    char region[GP_SHORT_LEN];
    json_t *submitted;         /* canonical submission, for idempotency */
    int status;
    json_t *answer;            /* record or error */
    int stored;                /* the answer is the record, s->text: read
                                * only for a single job's answer (an array
                                * answers its state alone) */
    gp_job_state_t state;      /* the record's */
    int offerable;             /* may be placed at intake (round.c) */
    int offered;               /* at the round, outcome not known yet */
    char owner[GP_SHORT_LEN];
    int priority;
    int64_t submitted_ms;
} s_sub_t;

typedef struct {
    gp_http_req_t *req;
    int is_array;
    int waiting;               /* jobs of it not yet stored */
    json_t *results;           /* array answers, by index */
    int status;                /* single answers */
    json_t *single;
} s_pending_req_t;

/* Submissions and their requests: the ones waiting for the next flight
 * (in s_intake_t), or those of one flight. */
typedef struct {
    s_sub_t *subs;
    int nsubs, cap;
    s_pending_req_t **reqs;
    int nreqs, reqcap;
} s_set_t;

/* One flight: a set of submissions stored by background batches, one pass
 * after the other (see s_pass_build). */
typedef struct s_flight {
    coord_t *c;
    s_set_t set;
    gp_etcd_batch_t *b;
    int pass;
    int *group;                /* per sub: its transaction in this pass, or -1 */
    int64_t t0;
    uint64_t token;            /* names the flight to the round */
    int at_round;              /* its subs offered, outcome not known yet */
    int writing;               /* its passes have started (counted in nflights) */
    struct s_flight *next;
} s_flight_t;

#define S_FLIGHTS 8

struct s_read;

/* The last job that some node the pool knows could hold, its id blanked:
 * the next one equal to it but for its id can be held too, without ranking
 * it again, while the capacity engine's nodes and policy stay the same (a
 * burst's arrays hold 250 alike jobs, and one-job requests of alike jobs
 * come back to back). */
typedef struct {
    int valid;
    uint64_t gen;              /* gp_placement_generation when it was kept */
    gp_job_t job;
} s_fits_t;

struct coord_intake {
    s_set_t q;                 /* waiting for the next flight */
    s_flight_t *flights;
    int nflights;              /* of them writing to etcd (not at the round) */
    struct s_read *reads;      /* reads of one job in flight (s_get_job) */
    uint64_t tokens;           /* the last flight's token */
    int stopping;              /* no more offers */
    s_fits_t fits;             /* the last job that could fit (s_accept) */
};
typedef struct coord_intake s_intake_t;

static void s_reads_stop(coord_t *c);

static s_intake_t *s_in(coord_t *c)
{
    if (c->intake == NULL)
        c->intake = calloc(1, sizeof(s_intake_t));
    return c->intake;
}

void coord_respond_json(gp_http_req_t *req, int status, json_t *body)
{
    gp_jobrec_redact_json(body);   /* secret env values never leave */
    gp_json_add_times(body);       /* RFC 3339 beside every _ms time */
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        gp_http_respond_error(req, 500, "out of memory");
        return;
    }
    size_t n = strlen(text);
    char *t = realloc(text, n + 2);
    if (t) {
        t[n] = '\n';
        t[n + 1] = '\0';
        text = t;
        n++;
    }
    gp_http_respond(req, status, "application/json", text, n);
}

/* The fields of a record that a submission set, for "same job again?". */
static json_t *s_canonical(const gp_jobrec_t *rec)
{
    json_t *o = gp_jobrec_to_json(rec);
    if (o == NULL)
        return NULL;
    /* The region too: a hand-off rewrites it, and a resubmission to
     * another region's coordinator defaults it differently; the job is the
     * same. */
    static const char *const drop[] = { "state", "reason", "node", "exit_code", "attempts",
                                        "submitted_ms", "updated_ms", "history", "region",
                                        "restarts", "restart_delay_ms", "restart_at_ms", "applied",
                                        "rightsize_floor_mib", "schema" };
    for (size_t i = 0; i < GP_ARRAY_LEN(drop); i++)
        json_object_del(o, drop[i]);
    return o;
}

/* Whether job is fits's job but for its id (byte for byte: parsed the
 * same way from the same fields) and the engine has not changed since. */
static int s_fits_same(const s_fits_t *fits, gp_placement_t *capacity, gp_job_t *job)
{
    if (!fits->valid || fits->gen != gp_placement_generation(capacity))
        return 0;
    char id[sizeof job->id];
    memcpy(id, job->id, sizeof id);
    memset(job->id, 0, sizeof job->id);   /* blanked for the comparison, then restored */
    int same = memcmp(&fits->job, job, sizeof *job) == 0;
    memcpy(job->id, id, sizeof id);
    return same;
}

/* fits remembers job, which some node of capacity could hold, its id
 * blanked. */
static void s_fits_keep(s_fits_t *fits, gp_placement_t *capacity, const gp_job_t *job)
{
    memcpy(&fits->job, job, sizeof *job);   /* padding too: compared by memcmp */
    memset(fits->job.id, 0, sizeof fits->job.id);
    fits->gen = gp_placement_generation(capacity);
    fits->valid = 1;
}

/* Validate one submission and queue it. -1: answered with an error. */
static int s_accept(coord_t *c, s_pending_req_t *pr, int index, const char *text, size_t len,
                    json_t **error)
{
    gp_jobrec_t rec;
    gp_err_t err;
    if (gp_jobrec_from_submission(text, len, c->cfg.region, gp_wall_ms(), &rec, &err) < 0) {
        *error = json_pack("{s:s}", "error", err.msg);
        return -1;
    }
    int status = 400;
    char why[300];
    const char *v2 = rec.grace_s >= 0 ? "grace_s" : rec.cls[0] ? "class"
                     : rec.rightsize != GP_RIGHTSIZE_OFF ? "rightsize" : NULL;
    if (v2 && coord_cache_schema(c, NULL) < 2) {
        /* Agents of the previous release cannot read the field (README,
         * "Versions and upgrades"): refused until the store is at schema 2. */
        *error = json_pack("{s:s+}", "error", v2,
                           ": the pool stores schema 1 until every agent and coordinator runs "
                           "this release (gpupool regions shows the schema)");
        gp_jobrec_clear(&rec);
        return -1;
    }
    if (coord_auth_owner(c, rec.owner, sizeof rec.owner, &status, why, sizeof why) < 0) {
        *error = json_pack("{s:s,s:i}", "error", why, "status", status);
        gp_jobrec_clear(&rec);
        return -1;
    }
    if (!gp_name_valid(rec.region)) {
        *error = json_pack("{s:s}", "error", "region: must be 1..127 of [A-Za-z0-9._-]");
        gp_jobrec_clear(&rec);
        return -1;
    }
    if (rec.spec.gang[0] && rec.spec.gang_size > GP_MAX_GANG) {
        char msg[128];
        snprintf(msg, sizeof msg, "gang_size: at most %d members (one transaction)", GP_MAX_GANG);
        *error = json_pack("{s:s}", "error", msg);
        gp_jobrec_clear(&rec);
        return -1;
    }
    /* Impossible: no node the pool knows (NotReady ones too, notready.c)
     * could hold it even if it were empty.  Judged only once the pool
     * knows a node.  A job that cannot run now is accepted and waits.  The
     * engine's ranking answers fast; only a refusal walks every node to
     * say why (gp_placement_explain). */
    gp_candidate_t cand;
    int ncand = 0;
    gp_placement_t *capacity = coord_cache_capacity(c);
    s_fits_t *fits = &s_in(c)->fits;
    int ranked = gp_placement_node_count(capacity) > 0 && !s_fits_same(fits, capacity, &rec.spec);
    if (ranked &&
        (gp_placement_rank(capacity, &rec.spec, &cand, 1, &ncand, &err) < 0 || ncand == 0)) {
        char never[400] = "", msg[512];
        if (err.code == GP_ERR_NOTFOUND &&
            gp_placement_explain(capacity, &rec.spec, never, sizeof never, NULL) < 0)
            never[0] = '\0';
        snprintf(msg, sizeof msg, "no node the pool knows could ever hold this job: %s",
                 never[0] ? never : err.msg);
        *error = json_pack("{s:s}", "error", msg);
        gp_jobrec_clear(&rec);
        return -1;
    }
    if (ranked)
        s_fits_keep(fits, capacity, &rec.spec);
    s_set_t *in = &s_in(c)->q;
    if (in->nsubs == in->cap) {
        int cap = in->cap ? in->cap * 2 : 256;
        s_sub_t *p = realloc(in->subs, sizeof *p * (size_t)cap);
        if (p == NULL) {
            gp_jobrec_clear(&rec);
            *error = json_pack("{s:s}", "error", "out of memory");
            return -1;
        }
        in->subs = p;
        in->cap = cap;
    }
    s_sub_t *s = &in->subs[in->nsubs];
    memset(s, 0, sizeof *s);
    s->req = pr->req;
    s->index = index;
    gp_strlcpy(s->id, rec.spec.id, sizeof s->id);
    gp_strlcpy(s->region, rec.region, sizeof s->region);
    gp_strlcpy(s->owner, rec.owner, sizeof s->owner);
    s->priority = rec.spec.priority;
    s->submitted_ms = rec.submitted_ms;
    s->state = rec.state;
    /* Placed at intake (round.c) when its region's leader is us and the
     * round's plain path applies: gangs, preferences (hand-offs),
     * right-sizing and quotas take the queued job's path. */
    s->offerable = !strcmp(rec.region, c->cfg.region) && rec.spec.gang[0] == '\0' &&
                   rec.spec.prefer_regions.n == 0 && rec.spec.prefer_clouds.n == 0 &&
                   rec.rightsize == GP_RIGHTSIZE_OFF && coord_cache_quota(c, rec.owner) == NULL;
    s->text = gp_jobrec_dump(&rec);
    s->submitted = s_canonical(&rec);
    gp_jobrec_clear(&rec);
    if (s->text == NULL || s->submitted == NULL) {
        free(s->text);
        json_decref(s->submitted);
        *error = json_pack("{s:s}", "error", "out of memory");
        return -1;
    }
    in->nsubs++;
    pr->waiting++;
    return 0;
}

/* An array's answer as text: the bytes coord_respond_json writes for
 * {"results": [...]}, without the tree's walks and dump (a burst answers
 * thousands of slots a second).  A slot's members are "id", "status",
 * "error" and "state" (strings, integers, nulls: nothing the walks for
 * times and secrets touch); -1 (nothing sent) for anything else. */
static int s_respond_results(gp_http_req_t *req, const json_t *results)
{
    gp_ebuf_t b = { 0 };
    int rc = gp_ebuf_adds(&b, "{\"results\":[");
    size_t i;
    json_t *slot;
    json_array_foreach(results, i, slot) {
        const char *k;
        json_t *v;
        int first = 1;
        if (rc < 0 || !json_is_object(slot) || gp_ebuf_adds(&b, i ? ",{" : "{") < 0) {
            rc = -1;
            break;
        }
        json_object_foreach((json_t *)slot, k, v) {
            if (rc < 0 || (!first && gp_ebuf_adds(&b, ",") < 0) || gp_ebuf_json_str(&b, k) < 0 ||
                gp_ebuf_adds(&b, ":") < 0) {
                rc = -1;
                break;
            }
            first = 0;
            if (json_is_string(v))
                rc = gp_ebuf_json_str(&b, json_string_value(v));
            else if (json_is_integer(v))
                rc = gp_ebuf_addf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            else if (json_is_null(v))
                rc = gp_ebuf_adds(&b, "null");
            else
                rc = -1;
            if (strcmp(k, "id") && strcmp(k, "status") && strcmp(k, "error") && strcmp(k, "state"))
                rc = -1;   /* not a slot's: coord_respond_json judges it */
        }
        if (rc < 0 || gp_ebuf_adds(&b, "}") < 0)
            rc = -1;
    }
    if (rc < 0 || gp_ebuf_adds(&b, "]}\n") < 0) {
        gp_ebuf_free(&b);
        return -1;
    }
    gp_http_respond(req, 200, "application/json", b.p, b.len);   /* takes b.p */
    return 0;
}

static void s_finish(coord_t *c, s_pending_req_t *pr)
{
    (void)c;
    if (pr->is_array) {
        if (s_respond_results(pr->req, pr->results) == 0)
            json_decref(pr->results);
        else
            coord_respond_json(pr->req, 200, json_pack("{s:o}", "results", pr->results));
    } else {
        coord_respond_json(pr->req, pr->status, pr->single);
    }
    free(pr);
}

static void s_submit(coord_t *c, gp_http_req_t *req)
{
    if (coord_store_full(c)) {
        gp_http_respond_error(req, 507, "the store is full (etcd's NOSPACE alarm): nothing can be "
                                        "stored until an operator frees space; try again later");
        return;
    }
    size_t len;
    const char *body = gp_http_req_body(req, &len);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        gp_http_respond_error(req, 400, "not valid JSON: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
        return;
    }
    if (!json_is_object(doc) && !json_is_array(doc)) {
        json_decref(doc);
        gp_http_respond_error(req, 400, "expected a job (a JSON object) or an array of jobs");
        return;
    }
    if (json_is_array(doc) && json_array_size(doc) > S_MAX_JOBS_PER_REQUEST) {
        json_decref(doc);
        gp_http_respond_error(req, 413, "at most %d jobs per request", S_MAX_JOBS_PER_REQUEST);
        return;
    }
    s_pending_req_t *pr = calloc(1, sizeof *pr);
    s_intake_t *inb = s_in(c);
    s_set_t *in = inb ? &inb->q : NULL;
    if (pr == NULL || in == NULL) {
        free(pr);
        json_decref(doc);
        gp_http_respond_error(req, 500, "out of memory");
        return;
    }
    pr->req = req;
    if (json_is_object(doc)) {
        json_t *error = NULL;
        if (s_accept(c, pr, -1, body, len, &error) < 0) {
            free(pr);
            json_decref(doc);
            int st = (int)json_integer_value(json_object_get(error, "status"));
            json_object_del(error, "status");
            coord_respond_json(req, st ? st : 400, error);
            return;
        }
    } else {
        pr->is_array = 1;
        pr->results = json_array();
        /* An id twice in one array is a 400 for every copy after the first
         * accepted one: one request, one job per id. */
        gp_strmap_t *seen = gp_strmap_new();
        size_t i;
        json_t *v;
        json_array_foreach(doc, i, v) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            json_t *error = NULL;
            json_t *slot = json_null();
            const char *vid = json_string_value(json_object_get(v, "id"));
            if (vid && seen && gp_strmap_get(seen, vid)) {
                error = json_pack("{s:s}", "error", "this id appears earlier in the same request");
                slot = NULL;
            } else if (seen == NULL || text == NULL ||
                       s_accept(c, pr, (int)i, text, strlen(text), &error) < 0) {
                slot = NULL;
            } else if (vid) {
                gp_strmap_put(seen, vid, pr);
            }
            if (slot == NULL) {
                json_t *id = json_is_object(v) ? json_object_get(v, "id") : NULL;
                int st = (int)json_integer_value(json_object_get(error, "status"));
                slot = json_pack("{s:O?,s:i,s:s}", "id", json_is_string(id) ? id : NULL, "status",
                                 st ? st : 400, "error",
                                 error ? json_string_value(json_object_get(error, "error"))
                                       : "out of memory");
            }
            json_decref(error);
            json_array_append_new(pr->results, slot);
            free(text);
        }
        gp_strmap_destroy(&seen);
    }
    json_decref(doc);
    if (pr->waiting == 0) {
        s_finish(c, pr);
        return;
    }
    if (in->nreqs == in->reqcap) {
        int cap = in->reqcap ? in->reqcap * 2 : 64;
        s_pending_req_t **p = realloc(in->reqs, sizeof *p * (size_t)cap);
        if (p == NULL) {
            gp_http_respond_error(req, 500, "out of memory");
            return;   /* the queued subs answer nothing: they are dropped at flush */
        }
        in->reqs = p;
        in->reqcap = cap;
    }
    in->reqs[in->nreqs++] = pr;
}

int coord_intake_pending(coord_t *c)
{
    s_intake_t *in = c->intake;
    return in && in->nflights < S_FLIGHTS ? in->q.nsubs : 0;
}

static s_pending_req_t *s_find_req(s_set_t *in, gp_http_req_t *req)
{
    for (int i = 0; i < in->nreqs; i++)
        if (in->reqs[i]->req == req)
            return in->reqs[i];
    return NULL;
}

/* Up to 60 submissions per transaction (a bound on its size, well within
 * etcd's 128 operations): each compares "jobs/<id> does not exist" and
 * puts the record; on failure the transaction reads every key back.  A
 * job found stored is answered by comparison (200 or 409); the group's
 * other jobs, not stored because the transaction failed whole, go to the
 * next pass, as do ids submitted twice in one flight and the jobs of a
 * transaction whose outcome is unknown (a timeout, a broken connection:
 * sent again, by then to the member the client failed over to, it stores
 * the job or finds it stored). */
#define S_SUBS_PER_TXN 60
#define S_PASSES 4

static void s_answer_existing(s_sub_t *s, const gp_etcd_kv_t *kv)
{
    gp_jobrec_t old;
    json_t *canon = NULL;
    if (gp_jobrec_from_json_str(kv->value, kv->value_len, &old, NULL) == 0) {
        canon = s_canonical(&old);
        gp_jobrec_clear(&old);
    }
    if (canon && json_equal(canon, s->submitted)) {
        s->status = 200;
        s->answer = json_loadb(kv->value, kv->value_len, 0, NULL);
    } else {
        s->status = 409;
        s->answer = json_pack("{s:s,s:s}", "id", s->id, "error", "a different job with this id exists");
    }
    json_decref(canon);
}

/* Queue the transactions of one pass over the subs not yet answered;
 * returns how many transactions (0: nothing to store). */
static int s_pass_build(s_flight_t *f)
{
    coord_t *c = f->c;
    s_set_t *in = &f->set;
    gp_etcd_batch_reset(f->b);
    gp_txnb_t *t = gp_txnb_new();
    gp_strmap_t *ids = gp_strmap_new();
    int ngroups = 0, in_group = 0;
    if (t == NULL || ids == NULL) {
        gp_txnb_destroy(&t);
        gp_strmap_destroy(&ids);
        return 0;
    }
    for (int i = 0; i < in->nsubs; i++) {
        s_sub_t *s = &in->subs[i];
        f->group[i] = -1;
        if (s->status || gp_strmap_get(ids, s->id))
            continue;   /* answered, or the same id once more in this pass */
        gp_strmap_put(ids, s->id, s);
        char jkey[GP_KEY_MAX];
        gp_key_job(jkey, c->cfg.prefix, s->id);
        gp_txnb_cmp(t, jkey, GP_ETCD_CMP_CREATE, 0);
        gp_txnb_fail_range(t, jkey);
        gp_txnb_put(t, jkey, s->text);
        f->group[i] = ngroups;
        if (++in_group == S_SUBS_PER_TXN) {
            gp_txnb_add(t, f->b, NULL);
            gp_txnb_reset(t);
            ngroups++;
            in_group = 0;
        }
    }
    if (in_group > 0) {
        gp_txnb_add(t, f->b, NULL);
        ngroups++;
    }
    gp_strmap_destroy(&ids);
    gp_txnb_destroy(&t);
    return ngroups;
}

/* The outcomes of a pass that ran; returns how many subs are left. */
static int s_pass_collect(s_flight_t *f, int last)
{
    coord_t *c = f->c;
    s_set_t *in = &f->set;
    gp_metric_observe(c->m.intake_seconds, (double)(gp_mono_ns() - f->t0) / 1e9);
    int ngroups = (int)gp_etcd_batch_size(f->b);
    int *pos = calloc((size_t)ngroups + 1, sizeof *pos);   /* index inside the group */
    for (int i = 0; pos && i < in->nsubs; i++) {
        s_sub_t *s = &in->subs[i];
        if (f->group[i] < 0)
            continue;
        int k = pos[f->group[i]]++;
        const gp_etcd_result_t *res;
        gp_err_t err;
        if (gp_etcd_batch_result(f->b, (size_t)f->group[i], &res, &err) < 0) {
            coord_metrics_etcd_error(&c->m, "submit", &err);
            if (!last && (err.code == GP_ERR_TRANSPORT || err.code == GP_ERR_TIMEOUT))
                continue;   /* outcome unknown: the next pass asks again (idempotent) */
            s->status = err.code == GP_ERR_NOSPACE ? 507 : 503;
            s->answer = json_pack("{s:s,s:s}", "id", s->id, "error", err.msg);
            coord_store_write_failed(c, &err);
        } else if (res->succeeded) {
            s->status = 201;
            s->stored = 1;
            gp_metric_inc(c->m.submissions);
        } else if ((size_t)k < res->n_responses && res->responses[k].n_kvs == 1) {
            s_answer_existing(s, &res->responses[k].kvs[0]);
        }
    }
    free(pos);
    int left = 0;
    for (int i = 0; i < in->nsubs; i++) {
        s_sub_t *s = &in->subs[i];
        if (s->status == 0 && last) {
            s->status = 503;
            s->answer = json_pack("{s:s,s:s}", "id", s->id, "error", "not stored: try again");
        }
        left += s->status == 0;
    }
    return left;
}

/* Answer a set's requests and free it. */
static void s_answer(coord_t *c, s_set_t *in)
{
    for (int i = 0; i < in->nsubs; i++) {
        s_sub_t *s = &in->subs[i];
        s_pending_req_t *pr = s_find_req(in, s->req);
        if (pr == NULL) {
            json_decref(s->answer);
        } else if (pr->is_array) {
            json_t *slot = json_pack("{s:s,s:i}", "id", s->id, "status", s->status);
            if (s->status >= 400 && s->answer)
                json_object_set(slot, "error", json_object_get(s->answer, "error"));
            else if (s->stored)
                json_object_set_new(slot, "state", json_string(gp_job_state_name(s->state)));
            else if (s->answer)
                json_object_set(slot, "state", json_object_get(s->answer, "state"));
            json_array_set_new(pr->results, (size_t)s->index, slot);
            json_decref(s->answer);
        } else {
            pr->status = s->status;
            pr->single = s->stored ? json_loads(s->text, 0, NULL) : s->answer;
        }
        if (pr)
            pr->waiting--;
        free(s->text);
        json_decref(s->submitted);
    }
    for (int i = 0; i < in->nreqs; i++) {
        if (in->reqs[i]->waiting == 0) {
            s_finish(c, in->reqs[i]);
        } else {   /* cannot happen: a request's jobs are all in one set */
            gp_http_respond_error(in->reqs[i]->req, 500, "internal error: submission lost");
            json_decref(in->reqs[i]->results);
            free(in->reqs[i]);
        }
    }
    free(in->subs);
    free(in->reqs);
    memset(in, 0, sizeof *in);
}

static void s_flight_done(gp_etcd_batch_t *b, void *arg);
static void s_offer(coord_t *c, s_flight_t *f);

/* Run the flight's passes until one is in the background; when none is
 * left to run, answer and free the flight. */
static void s_flight_go(s_flight_t *f)
{
    coord_t *c = f->c;
    s_intake_t *in = c->intake;
    for (; f->pass < S_PASSES; f->pass++) {
        if (s_pass_build(f) == 0)
            break;
        f->t0 = gp_mono_ns();
        gp_err_t err;
        if (gp_etcd_batch_start(f->b, 64, s_flight_done, f, &err) == 0) {
            if (!f->writing) {
                f->writing = 1;
                in->nflights++;
            }
            return;   /* s_flight_done goes on */
        }
        if (s_pass_collect(f, f->pass == S_PASSES - 1) == 0)
            break;
    }
    for (s_flight_t **p = &in->flights; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            in->nflights -= f->writing;
            break;
        }
    }
    s_answer(c, &f->set);
    gp_etcd_batch_destroy(&f->b);
    free(f->group);
    free(f);
}

static void s_flight_done(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    s_flight_t *f = arg;
    if (s_pass_collect(f, f->pass == S_PASSES - 1) == 0)
        f->pass = S_PASSES;
    else
        f->pass++;
    s_flight_go(f);
}

/* Send every waiting submission off in a new flight (when fewer than
 * S_FLIGHTS are in the air; else they wait for the next wake-up). */
void coord_intake_flush(coord_t *c)
{
    s_intake_t *in = c->intake;
    if (in == NULL || in->q.nsubs == 0 || in->nflights >= S_FLIGHTS)
        return;
    s_flight_t *f = calloc(1, sizeof *f);
    int *group = calloc((size_t)in->q.nsubs, sizeof *group);
    gp_etcd_batch_t *b = gp_etcd_batch_new(c->etcd);
    if (f == NULL || group == NULL || b == NULL) {
        free(f);
        free(group);
        gp_etcd_batch_destroy(&b);
        return;   /* out of memory: tried again at the next wake-up */
    }
    f->c = c;
    f->set = in->q;
    memset(&in->q, 0, sizeof in->q);
    f->b = b;
    f->group = group;
    f->next = in->flights;
    in->flights = f;
    f->token = ++in->tokens;
    f->t0 = gp_mono_ns();
    s_offer(c, f);
    if (f->at_round == 0)
        s_flight_go(f);   /* else when the round has said (coord_intake_offer_done) */
}

/* Offer the flight's jobs that may be placed at intake to the round (the
 * region's leader only; an id once per flight). */
static void s_offer(coord_t *c, s_flight_t *f)
{
    if (c->intake->stopping || !coord_is_leader(c) || coord_store_full(c))
        return;
    gp_strmap_t *ids = gp_strmap_new();
    for (int i = 0; ids && i < f->set.nsubs; i++) {
        s_sub_t *s = &f->set.subs[i];
        if (!s->offerable || gp_strmap_get(ids, s->id))
            continue;
        gp_strmap_put(ids, s->id, s);
        /* the canonical submission holds the record's spec as built, the
         * same tree as its text's (gp_jobrec_dump writes json_dumps's bytes) */
        if (coord_round_offer(c, s->id, s->owner, s->text, json_object_get(s->submitted, "spec"),
                              s->priority, s->submitted_ms, f->token) == 0) {
            s->offered = 1;
            f->at_round++;
        }
    }
    gp_strmap_destroy(&ids);
}

void coord_intake_offer_done(coord_t *c, uint64_t token, const char *id, int64_t revision)
{
    s_intake_t *in = c->intake;
    s_flight_t *f = in ? in->flights : NULL;
    while (f && f->token != token)
        f = f->next;
    for (int i = 0; f && i < f->set.nsubs; i++) {
        s_sub_t *s = &f->set.subs[i];
        if (!s->offered || strcmp(s->id, id) != 0)
            continue;
        s->offered = 0;
        if (revision > 0) {   /* stored, with its allocation */
            s->status = 201;
            s->stored = 1;
            gp_metric_inc(c->m.submissions);
        }
        if (--f->at_round == 0) {
            /* stored with their allocations, or found not placed */
            gp_metric_observe(c->m.intake_seconds, (double)(gp_mono_ns() - f->t0) / 1e9);
            s_flight_go(f);
        }
        return;
    }
}

void coord_intake_stop(coord_t *c)
{
    s_intake_t *in = c->intake;
    if (in == NULL)
        return;
    /* Land what is in the air (within a request's deadline and a margin):
     * offers go back from the round, to be stored alone. */
    in->stopping = 1;
    coord_round_withdraw(c);
    int64_t until = gp_mono_ms() + 10000;
    gp_err_t err;
    while ((in->q.nsubs > 0 || in->flights) && gp_mono_ms() < until) {
        coord_intake_flush(c);
        if (in->flights && gp_etcd_step(c->etcd, 50, &err) < 0)
            break;
    }
    s_reads_stop(c);
    while (in->flights) {
        s_flight_t *f = in->flights;
        in->flights = f->next;
        gp_etcd_batch_destroy(&f->b);
        for (int i = 0; i < f->set.nsubs; i++)
            if (f->set.subs[i].status == 0) {
                f->set.subs[i].status = 503;
                f->set.subs[i].answer = json_pack("{s:s,s:s}", "id", f->set.subs[i].id, "error",
                                                  "the coordinator is stopping");
            }
        s_answer(c, &f->set);
        free(f->group);
        free(f);
    }
    for (int i = 0; i < in->q.nreqs; i++) {
        gp_http_respond_error(in->q.reqs[i]->req, 503, "the coordinator is stopping");
        json_decref(in->q.reqs[i]->results);
        free(in->q.reqs[i]);
    }
    for (int i = 0; i < in->q.nsubs; i++) {
        free(in->q.subs[i].text);
        json_decref(in->q.subs[i].submitted);
    }
    free(in->q.reqs);
    free(in->q.subs);
    free(in);
    c->intake = NULL;
}

/* ---------------------------------------------------------------- reads */

/* A pending record whose allocation the cache knows is placed: say so,
 * with its node (the commit writes the allocation alone). */
static void s_show_placed(coord_t *c, json_t *rec, const char *id)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    const gp_alloc_t *al = coord_cache_alloc(c, id);
    if (st == NULL || strcmp(st, "pending") != 0 || al == NULL)
        return;
    json_object_set_new(rec, "state", json_string("placed"));
    json_object_set_new(rec, "node", json_string(al->node));
}

/* The node of a job's allocation: the cache's, else its record's. */
static const char *s_alloc_node(coord_t *c, const gp_jobrec_t *rec)
{
    const gp_alloc_t *al = coord_cache_alloc(c, rec->spec.id);
    return al ? al->node : rec->node;
}

/* A read of one job in flight: the record, then its allocation, each a
 * background read (linearizable: read-your-writes across coordinators),
 * answered from the etcd client's callback so that the loop waits for
 * neither. */
typedef struct s_read {
    coord_t *c;
    gp_http_req_t *req;
    char id[GP_NAME_LEN];
    gp_etcd_batch_t *b;
    json_t *rec;
    coord_principal_t caller;  /* a copy: the handler's c->caller is gone by the answer */
    int has_caller;
    /* a change (below): what, its attempt, the record read (then as written) */
    int change;                /* S_CANCEL... ; 0: a read */
    int attempt;
    gp_jobrec_t jrec;
    int have_jrec;
    int64_t jmod;
    char *text;                /* a deletion: the record, for the archive */
    struct s_read *next;
} s_read_t;

static void s_read_free(coord_t *c, s_read_t *rd)
{
    s_intake_t *in = c->intake;
    for (s_read_t **p = in ? &in->reads : NULL; p && *p; p = &(*p)->next) {
        if (*p == rd) {
            *p = rd->next;
            break;
        }
    }
    gp_etcd_batch_destroy(&rd->b);
    json_decref(rd->rec);
    if (rd->have_jrec)
        gp_jobrec_clear(&rd->jrec);
    free(rd->text);
    for (int i = 0; i < rd->caller.nteams; i++)
        free(rd->caller.teams[i]);
    free(rd->caller.teams);
    free(rd);
}

static int s_caller_copy(coord_principal_t *to, const coord_principal_t *from)
{
    if (from == NULL)
        return 0;
    *to = *from;
    to->teams = calloc((size_t)from->nteams + 1, sizeof *to->teams);
    to->nteams = 0;
    if (to->teams == NULL)
        return -1;
    for (int i = 0; i < from->nteams; i++) {
        if ((to->teams[i] = strdup(from->teams[i])) == NULL)
            return -1;
        to->nteams++;
    }
    return 0;
}

static void s_reads_stop(coord_t *c)
{
    s_intake_t *in = c->intake;
    while (in->reads) {
        gp_http_respond_error(in->reads->req, 503, "the coordinator is stopping");
        s_read_free(c, in->reads);
    }
}

/* Queue a range of key and send it; -1 when it could not be sent. */
static int s_read_send(s_read_t *rd, const char *key, gp_etcd_batch_done_fn *done)
{
    gp_etcd_batch_reset(rd->b);
    gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = key };
    gp_err_t err;
    if (gp_etcd_batch_add(rd->b, &op, &err) < 0 || gp_etcd_batch_start(rd->b, 1, done, rd, &err) < 0)
        return -1;
    return 0;
}

static void s_get_alloc_landed(gp_etcd_batch_t *b, void *arg)
{
    s_read_t *rd = arg;
    const gp_etcd_result_t *res;
    if (gp_etcd_batch_result(b, 0, &res, NULL) == 0 && res->n_kvs)
        json_object_set_new(rd->rec, "alloc",
                            json_loadb(res->kvs[0].value, res->kvs[0].value_len, 0, NULL));
    coord_respond_json(rd->req, 200, json_incref(rd->rec));
    s_read_free(rd->c, rd);
}

static void s_get_landed(gp_etcd_batch_t *b, void *arg)
{
    s_read_t *rd = arg;
    coord_t *c = rd->c;
    const gp_etcd_result_t *res;
    gp_err_t err;
    if (gp_etcd_batch_result(b, 0, &res, &err) < 0) {
        gp_http_respond_error(rd->req, 503, "etcd: %s", err.msg);
        s_read_free(c, rd);
        return;
    }
    json_t *rec = res->n_kvs ? json_loadb(res->kvs[0].value, res->kvs[0].value_len, 0, NULL) : NULL;
    if (rec == NULL && (rec = coord_store_archived(c, rd->id)) == NULL) {
        gp_http_respond_error(rd->req, 404, "no job %s", rd->id);
        s_read_free(c, rd);
        return;
    }
    const coord_principal_t *was = c->caller;
    c->caller = rd->has_caller ? &rd->caller : NULL;   /* the request's, for this decision */
    int denied = coord_auth_job(c, rd->req, rd->id, json_string_value(json_object_get(rec, "owner")),
                                "read") < 0;
    c->caller = was;
    if (denied) {
        json_decref(rec);
        s_read_free(c, rd);
        return;
    }
    if (json_object_get(rec, "archived")) {
        coord_respond_json(rd->req, 200, rec);   /* ended and removed from the store */
        s_read_free(c, rd);
        return;
    }
    s_show_placed(c, rec, rd->id);
    rd->rec = rec;
    const char *node = json_string_value(json_object_get(rec, "node"));
    char key[GP_KEY_MAX];
    if (node && *node && gp_name_valid(node) &&
        s_read_send(rd, gp_key_alloc(key, c->cfg.prefix, node, rd->id), s_get_alloc_landed) == 0)
        return;   /* s_get_alloc_landed answers */
    coord_respond_json(rd->req, 200, json_incref(rec));
    s_read_free(c, rd);
}

/* A read (or change) of job id for req, linked into the intake's; NULL
 * when req was answered (500). */
static s_read_t *s_read_new(coord_t *c, gp_http_req_t *req, const char *id)
{
    s_intake_t *in = s_in(c);
    s_read_t *rd = calloc(1, sizeof *rd);
    if (in == NULL || rd == NULL || (rd->b = gp_etcd_batch_new(c->etcd)) == NULL) {
        free(rd);
        gp_http_respond_error(req, 500, "out of memory");
        return NULL;
    }
    rd->c = c;
    rd->req = req;
    gp_strlcpy(rd->id, id, sizeof rd->id);
    rd->next = in->reads;
    in->reads = rd;
    rd->has_caller = c->caller != NULL;
    if (s_caller_copy(&rd->caller, c->caller) < 0) {
        gp_http_respond_error(req, 500, "out of memory");
        s_read_free(c, rd);
        return NULL;
    }
    return rd;
}

static void s_get_job(coord_t *c, gp_http_req_t *req, const char *id)
{
    if (!gp_name_valid(id)) {
        gp_http_respond_error(req, 400, "bad job id \"%s\"", id);
        return;
    }
    s_read_t *rd = s_read_new(c, req, id);
    if (rd == NULL)
        return;
    char key[GP_KEY_MAX];
    if (s_read_send(rd, gp_key_job(key, c->cfg.prefix, id), s_get_landed) < 0) {
        gp_http_respond_error(req, 503, "etcd: the read could not be sent");
        s_read_free(c, rd);
    }
}

static void s_list_jobs(coord_t *c, gp_http_req_t *req)
{
    const char *state = gp_http_req_query(req, "state");
    const char *region = gp_http_req_query(req, "region");
    const char *owner = gp_http_req_query(req, "owner");
    gp_job_state_t st = GP_JOB_PENDING;
    if (state && gp_job_state_parse(state, &st) < 0) {
        gp_http_respond_error(req, 400, "unknown state \"%s\"", state);
        return;
    }
    json_t *jobs = json_array();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_JOBS); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        if ((state && coord_cache_state(c, j, NULL) != st) || (region && strcmp(j->region, region)) ||
            (owner && strcmp(j->owner, owner)) || j->raw == NULL)
            continue;
        json_t *rec = json_loadb(j->raw, j->raw_len, 0, NULL);
        if (rec) {
            coord_auth_redact(c, rec);   /* other teams' jobs: no command, env */
            s_show_placed(c, rec, j->id);
            json_array_append_new(jobs, rec);
        }
    }
    coord_respond_json(req, 200, json_pack("{s:o}", "jobs", jobs));
}

static int64_t s_dev_mem(const json_t *record, int index, const char **model)
{
    json_t *d = json_array_get(json_object_get(record, "devices"), (size_t)index);
    if (model)
        *model = json_string_value(json_object_get(d, "model"));
    return json_integer_value(json_object_get(d, "mem_mib"));
}

/* What a node's allocations hold (coord_cache_each_alloc_on). */
typedef struct {
    coord_t *c;
    int64_t milli, mem, jobs;
} s_held_t;

static void s_held_add(const gp_alloc_t *al, void *arg)
{
    s_held_t *h = arg;
    int64_t m = 0;
    h->jobs++;
    h->milli += coord_alloc_milli(h->c, al, &m, NULL, NULL);
    h->mem += m;
}

static void s_nodes(coord_t *c, gp_http_req_t *req)
{
    json_t *out = json_array();
    /* node -> its agent's record (agents/<region>/<agent> lists its nodes) */
    gp_strmap_t *agents = gp_strmap_new();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_AGENTS); it.key && agents;
         it = coord_cache_next(c, it)) {
        size_t i;
        json_t *nm;
        json_array_foreach(json_object_get(it.value, "nodes"), i, nm)
            if (json_is_string(nm))
                gp_strmap_put(agents, json_string_value(nm), it.value);
    }
    gp_strmap_t *alloc_milli = gp_strmap_new();
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (n->record == NULL || (!n->present && n->gone_ms == 0))
            continue;
        json_t *rec = json_deep_copy(n->record);
        /* A node whose agent is gone stays listed for node-retention (notready.c). */
        json_object_set_new(rec, "state", json_string(n->present ? "Ready" : "NotReady"));
        if (!n->present)
            json_object_set_new(rec, "not_ready_since_ms", json_integer(n->gone_ms));
        s_held_t h = { c, 0, 0, 0 };
        coord_cache_each_alloc_on(c, n->name, s_held_add, &h);
        json_object_set_new(rec, "allocated", json_pack("{s:I,s:I,s:I}", "gpu_milli", (json_int_t)h.milli,
                                                        "mem_mib", (json_int_t)h.mem, "jobs",
                                                        (json_int_t)h.jobs));
        if (n->cordon)
            json_object_set(rec, "cordoned", n->cordon);
        const coord_drain_t *d = coord_cache_drain(c, n->name);
        if (d)
            json_object_set_new(rec, "drain", json_pack("{s:O?,s:O?}", "state",
                                                        json_object_get(d->rec, "state"),
                                                        "remaining",
                                                        json_object_get(d->rec, "remaining")));
        json_t *agent = gp_strmap_get(agents, n->name);
        if (agent)
            json_object_set_new(rec, "agent", json_pack("{s:O?,s:O?,s:O?}", "version",
                                                        json_object_get(agent, "version"),
                                                        "protocols", json_object_get(agent, "protocols"),
                                                        "schema", json_object_get(agent, "schema")));
        json_array_append_new(out, rec);
    }
    gp_strmap_destroy(&alloc_milli);
    gp_strmap_destroy(&agents);
    coord_respond_json(req, 200, json_pack("{s:o}", "nodes", out));
}

/* Per-region and per-model totals from the cache. */
typedef struct {
    int64_t nodes, gpus, milli_total, milli_used, pending, running, not_ready;
} s_tot_t;

static s_tot_t *s_tot(gp_strmap_t *m, const char *key)
{
    s_tot_t *t = gp_strmap_get(m, key);
    if (t == NULL && (t = calloc(1, sizeof *t)) != NULL)
        gp_strmap_put(m, key, t);
    return t;
}

static void s_totals(coord_t *c, gp_strmap_t *by_region, gp_strmap_t *by_model, s_tot_t *pool)
{
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (!n->present && n->gone_ms && n->record) {
            s_tot_t *r = s_tot(by_region, n->region);
            if (r)
                r->not_ready++;   /* not counted among the nodes and GPUs */
        }
        if (!n->present || n->record == NULL)
            continue;
        s_tot_t *r = s_tot(by_region, n->region);
        size_t nd = json_array_size(json_object_get(n->record, "devices"));
        if (r) {
            r->nodes++;
            r->gpus += (int64_t)nd;
            r->milli_total += (int64_t)nd * 1000;
        }
        pool->nodes++;
        pool->gpus += (int64_t)nd;
        pool->milli_total += (int64_t)nd * 1000;
        for (size_t d = 0; d < nd; d++) {
            const char *model;
            s_dev_mem(n->record, (int)d, &model);
            s_tot_t *m = s_tot(by_model, model ? model : "?");
            if (m) {
                m->gpus++;
                m->milli_total += 1000;
            }
        }
    }
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); a.key;
         a = coord_cache_next(c, a)) {
        const gp_alloc_t *al = a.value;
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        if (n == NULL || !n->present || n->record == NULL)
            continue;
        s_tot_t *r = s_tot(by_region, n->region);
        const char *model = NULL;
        int64_t milli = coord_alloc_milli(c, al, NULL, NULL, &model);
        if (r)
            r->milli_used += milli;
        pool->milli_used += milli;
        s_tot_t *m = s_tot(by_model, model ? model : "?");
        if (m)
            m->milli_used += milli;
    }
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_JOBS); it.key;
         it = coord_cache_next(c, it)) {
        coord_job_t *j = it.value;
        s_tot_t *r = s_tot(by_region, j->region);
        gp_job_state_t st = coord_cache_state(c, j, NULL);
        if (st == GP_JOB_PENDING) {
            pool->pending++;
            if (r)
                r->pending++;
        } else if (st == GP_JOB_RUNNING || st == GP_JOB_PLACED || st == GP_JOB_SUSPENDED) {
            pool->running++;
            if (r)
                r->running++;
        }
    }
}

static void s_free_tot(gp_strmap_t **m)
{
    for (gp_strmap_iter_t it = gp_strmap_first(*m); it.key; it = gp_strmap_next(*m, it))
        free(it.value);
    gp_strmap_destroy(m);
}

static void s_regions(coord_t *c, gp_http_req_t *req)
{
    gp_strmap_t *by_region = gp_strmap_new(), *by_model = gp_strmap_new();
    s_tot_t pool = { 0 };
    s_totals(c, by_region, by_model, &pool);
    /* Our own region is known before the watch brings our registration back. */
    s_tot(by_region, c->cfg.region);
    /* Regions with coordinators but no nodes are regions too. */
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_COORDINATORS); it.key;
         it = coord_cache_next(c, it)) {
        char region[GP_NAME_LEN];
        gp_strlcpy(region, it.key, sizeof region);
        char *slash = strchr(region, '/');
        if (slash)
            *slash = '\0';
        s_tot(by_region, region);
    }
    json_t *out = json_array();
    for (gp_strmap_iter_t it = gp_strmap_first(by_region); it.key; it = gp_strmap_next(by_region, it)) {
        s_tot_t *t = it.value;
        json_t *coords = json_array(), *versions = json_object();
        size_t rl = strlen(it.key);
        int self = 0;
        for (coord_cache_iter_t k = coord_cache_first(c, COORD_COORDINATORS); k.key;
             k = coord_cache_next(c, k)) {
            if (!strncmp(k.key, it.key, rl) && k.key[rl] == '/') {
                json_array_append_new(coords, json_string(k.key + rl + 1));
                self |= !strcmp(it.key, c->cfg.region) && !strcmp(k.key + rl + 1, c->cfg.id);
                /* its release as it registered it (none: the previous release) */
                json_t *reg = json_loads(k.value, 0, NULL);
                json_t *v = json_object_get(reg, "version");
                json_object_set_new(versions, k.key + rl + 1, json_is_string(v) ? json_incref(v)
                                                                                : json_null());
                json_decref(reg);
            }
        }
        if (!self && !strcmp(it.key, c->cfg.region) && coord_is_registered(c))
            json_array_append_new(coords, json_string(c->cfg.id));
        const char *leader = coord_cache_leader(c, it.key);
        json_array_append_new(out, json_pack("{s:s,s:s?,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name",
                                             it.key, "leader", leader, "coordinators", coords,
                                             "coordinator_versions", versions, "nodes",
                                             (json_int_t)t->nodes, "not_ready",
                                             (json_int_t)t->not_ready, "gpus", (json_int_t)t->gpus,
                                             "gpu_milli_total", (json_int_t)t->milli_total,
                                             "gpu_milli_used", (json_int_t)t->milli_used, "pending",
                                             (json_int_t)t->pending, "running",
                                             (json_int_t)t->running));
    }
    s_free_tot(&by_region);
    s_free_tot(&by_model);
    coord_respond_json(req, 200, json_pack("{s:o,s:{s:b,s:i}}", "regions", out, "store", "full",
                                       coord_store_full(c), "schema", coord_cache_schema(c, NULL)));
}

static void s_usage(coord_t *c, gp_http_req_t *req)
{
    gp_strmap_t *by_region = gp_strmap_new(), *by_model = gp_strmap_new();
    s_tot_t pool = { 0 };
    s_totals(c, by_region, by_model, &pool);
    json_t *regions = json_array(), *models = json_array();
    for (gp_strmap_iter_t it = gp_strmap_first(by_region); it.key; it = gp_strmap_next(by_region, it)) {
        s_tot_t *t = it.value;
        json_array_append_new(regions, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "region", it.key,
                                                 "nodes", (json_int_t)t->nodes, "gpus",
                                                 (json_int_t)t->gpus, "gpu_milli_total",
                                                 (json_int_t)t->milli_total, "gpu_milli_used",
                                                 (json_int_t)t->milli_used, "jobs_running",
                                                 (json_int_t)t->running, "jobs_pending",
                                                 (json_int_t)t->pending));
    }
    for (gp_strmap_iter_t it = gp_strmap_first(by_model); it.key; it = gp_strmap_next(by_model, it)) {
        s_tot_t *t = it.value;
        json_array_append_new(models, json_pack("{s:s,s:I,s:I,s:I}", "model", it.key, "gpus",
                                                (json_int_t)t->gpus, "gpu_milli_total",
                                                (json_int_t)t->milli_total, "gpu_milli_used",
                                                (json_int_t)t->milli_used));
    }
    json_t *p = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "nodes", (json_int_t)pool.nodes, "gpus",
                          (json_int_t)pool.gpus, "gpu_milli_total", (json_int_t)pool.milli_total,
                          "gpu_milli_used", (json_int_t)pool.milli_used, "jobs_running",
                          (json_int_t)pool.running, "jobs_pending", (json_int_t)pool.pending);
    s_free_tot(&by_region);
    s_free_tot(&by_model);
    coord_respond_json(req, 200, json_pack("{s:o,s:o,s:o}", "pool", p, "by_region", regions, "by_model",
                                       models));
}

/*
 * Changes to a job from the API -- cancel it, delete its ended record,
 * suspend or resume it -- run in the background like a read, so that the
 * loop waits for none of their round trips: the stored record is read
 * (and, to suspend or resume, the job's allocation), the change decided on
 * what was read, and written in one transaction fenced on it; when the
 * record changed meanwhile the change is read and decided again, five
 * times at most.
 *
 *   cancel   the record says cancelled and the allocation goes (the agent
 *            stops the job when its allocation goes).  An allocation this
 *            coordinator's cache does not show yet is released by the
 *            leader of its node's region (recovery.c: an ended job holds
 *            none).  An ended job is answered as it is.
 *   delete   (DELETE /v1/jobs/<id>/record) an ended job's record goes; a
 *            live job is 409 (cancel it first).  With job-archive the
 *            record is appended there, as retention does (store.c).
 *   suspend, resume
 *            a placed job's allocation says so (the agent holds or
 *            releases the slice's launches) and its record records it,
 *            fenced on both.
 */
enum { S_CANCEL = 1, S_DELETE, S_SUSPEND, S_RESUME };

static void s_change_loaded(gp_etcd_batch_t *b, void *arg);

/* Answer the change's request (an error: status and message) and forget
 * it. */
static void s_change_end(s_read_t *rd, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_change_end(s_read_t *rd, int status, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    gp_http_respond_error(rd->req, status, "%s", why);
    s_read_free(rd->c, rd);
}

/* Suspend or resume a job that is not placed: 409. */
static void s_change_not_placed(s_read_t *rd)
{
    s_change_end(rd, 409, "job %s is %s: only a placed job can be %s", rd->id,
                 gp_job_state_name(rd->jrec.state),
                 rd->change == S_SUSPEND ? "suspended" : "resumed");
}

/* The answer of the change's batch; NULL when etcd could not be asked,
 * and then the request was answered (503) and the change forgotten. */
static const gp_etcd_result_t *s_change_result(s_read_t *rd, gp_etcd_batch_t *b)
{
    const gp_etcd_result_t *res;
    gp_err_t err;
    if (gp_etcd_batch_result(b, 0, &res, &err) == 0)
        return res;
    s_change_end(rd, 503, "etcd: %s", err.msg);   /* (a transaction's outcome is unknown) */
    return NULL;
}

/* Read the record (again). */
static void s_change_read(s_read_t *rd)
{
    char key[GP_KEY_MAX];
    if (s_read_send(rd, gp_key_job(key, rd->c->cfg.prefix, rd->id), s_change_loaded) < 0)
        s_change_end(rd, 503, "etcd: the read could not be sent");
}

static void s_change_landed(gp_etcd_batch_t *b, void *arg)
{
    s_read_t *rd = arg;
    coord_t *c = rd->c;
    const gp_etcd_result_t *res = s_change_result(rd, b);
    if (res == NULL)
        return;
    if (!res->succeeded) {
        if (++rd->attempt < 5) {
            s_change_read(rd);
            return;
        }
        s_change_end(rd, 503, "job %s keeps changing; try again", rd->id);
        return;
    }
    gp_job_state_t st = rd->jrec.state;
    if (rd->change == S_DELETE) {
        if (c->cfg.job_archive[0])
            coord_store_archive(c, rd->text, strlen(rd->text));
        gp_log_info("job record deleted job=%s state=%s", rd->id, gp_job_state_name(st));
        coord_respond_json(rd->req, 200, json_pack("{s:s,s:b,s:s}", "id", rd->id, "deleted", 1,
                                                   "state", gp_job_state_name(st)));
    } else {
        if (rd->change == S_CANCEL)
            gp_metric_inc(c->m.cancellations);
        gp_log_info("job %s job=%s",
                    rd->change == S_CANCEL ? "cancelled"
                    : rd->change == S_SUSPEND ? "suspended" : "resumed", rd->id);
        coord_respond_json(rd->req, 200, gp_jobrec_to_json(&rd->jrec));
    }
    s_read_free(c, rd);
}

/* Send the change's transaction (t is consumed). */
static void s_change_send(s_read_t *rd, gp_txnb_t *t)
{
    gp_err_t err;
    gp_etcd_batch_reset(rd->b);
    int sent = t != NULL && gp_txnb_add(t, rd->b, &err) >= 0 &&
               gp_etcd_batch_start(rd->b, 1, s_change_landed, rd, &err) == 0;
    gp_txnb_destroy(&t);
    if (!sent)
        s_change_end(rd, 500, "the change could not be sent (out of memory)");
}

static void s_change_alloc_loaded(gp_etcd_batch_t *b, void *arg)
{
    s_read_t *rd = arg;
    coord_t *c = rd->c;
    const gp_etcd_result_t *res = s_change_result(rd, b);
    if (res == NULL)
        return;
    int on = rd->change == S_SUSPEND;
    gp_alloc_t al;
    if (res->n_kvs != 1 || gp_alloc_from_json_str(res->kvs[0].value, &al, NULL) < 0) {
        s_change_not_placed(rd);
        return;
    }
    int64_t amod = res->kvs[0].mod_revision;
    char jkey[GP_KEY_MAX], akey[GP_KEY_MAX];
    al.suspended = on;
    gp_jobrec_set_state(&rd->jrec, on ? GP_JOB_SUSPENDED : GP_JOB_RUNNING, NULL,
                        on ? "suspended by a user" : "resumed by a user", gp_wall_ms());
    gp_txnb_t *t = gp_txnb_new();
    if (t) {
        gp_txnb_cmp(t, gp_key_job(jkey, c->cfg.prefix, rd->id), GP_ETCD_CMP_MOD, rd->jmod);
        gp_txnb_cmp(t, gp_key_alloc(akey, c->cfg.prefix, al.node, rd->id), GP_ETCD_CMP_MOD, amod);
        coord_txn_put_job(t, c, &rd->jrec);
        if (coord_txn_put_alloc(t, c, &al) < 0)
            gp_txnb_destroy(&t);
    }
    s_change_send(rd, t);
}

static void s_change_loaded(gp_etcd_batch_t *b, void *arg)
{
    s_read_t *rd = arg;
    coord_t *c = rd->c;
    const gp_etcd_result_t *res = s_change_result(rd, b);
    if (res == NULL)
        return;
    gp_err_t err;
    if (res->n_kvs == 0) {
        s_change_end(rd, 404, "no job %s", rd->id);
        return;
    }
    if (rd->have_jrec)
        gp_jobrec_clear(&rd->jrec);
    rd->have_jrec = gp_jobrec_from_json_str(res->kvs[0].value, res->kvs[0].value_len, &rd->jrec,
                                            &err) == 0;
    if (!rd->have_jrec) {
        s_change_end(rd, 500, "stored record unreadable: %s", err.msg);
        return;
    }
    rd->jmod = res->kvs[0].mod_revision;
    const coord_principal_t *was = c->caller;
    c->caller = rd->has_caller ? &rd->caller : NULL;   /* the request's, for this decision */
    int denied = coord_auth_job(c, rd->req, rd->id, rd->jrec.owner, "change") < 0;
    c->caller = was;
    if (denied) {
        s_read_free(c, rd);   /* (answered) */
        return;
    }
    gp_jobrec_t *rec = &rd->jrec;
    char jkey[GP_KEY_MAX], akey[GP_KEY_MAX];
    gp_key_job(jkey, c->cfg.prefix, rd->id);
    const char *node = s_alloc_node(c, rec);
    int placed = node[0] && gp_name_valid(node);
    gp_txnb_t *t = NULL;
    switch (rd->change) {
    case S_CANCEL:
        if (gp_job_state_final(rec->state)) {
            coord_respond_json(rd->req, 200, gp_jobrec_to_json(rec));
            s_read_free(c, rd);
            return;
        }
        if (placed)
            gp_key_alloc(akey, c->cfg.prefix, node, rd->id);
        gp_jobrec_set_state(rec, GP_JOB_CANCELLED, NULL, "cancelled by a user", gp_wall_ms());
        if ((t = gp_txnb_new()) != NULL) {
            gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, rd->jmod);
            coord_txn_put_job(t, c, rec);
            if (placed)
                gp_txnb_del(t, akey);
        }
        break;
    case S_DELETE:
        if (!gp_job_state_final(rec->state) && rec->state != GP_JOB_LOST) {
            s_change_end(rd, 409, "job %s is %s: only an ended job can be deleted (cancel it first)",
                         rd->id, gp_job_state_name(rec->state));
            return;
        }
        free(rd->text);
        if ((rd->text = gp_jobrec_dump(rec)) != NULL && (t = gp_txnb_new()) != NULL) {
            gp_txnb_cmp(t, jkey, GP_ETCD_CMP_MOD, rd->jmod);
            gp_txnb_del(t, jkey);
        }
        break;
    default:   /* suspend, resume: the allocation first */
        if (!placed) {
            s_change_not_placed(rd);
        } else if (s_read_send(rd, gp_key_alloc(akey, c->cfg.prefix, node, rd->id),
                               s_change_alloc_loaded) < 0) {
            s_change_end(rd, 503, "etcd: the read could not be sent");
        }
        return;
    }
    s_change_send(rd, t);
}

static void s_change(coord_t *c, gp_http_req_t *req, const char *id, int change)
{
    s_read_t *rd = s_read_new(c, req, id);
    if (rd == NULL)
        return;
    rd->change = change;
    s_change_read(rd);
}

void coord_http(void *arg, gp_http_req_t *req)
{
    coord_t *c = arg;
    const char *method = gp_http_req_method(req), *path = gp_http_req_path(req);
    if (!strcmp(path, "/healthz")) {
        char *body = strdup("ok\n");
        gp_http_respond(req, 200, "text/plain", body, body ? 3 : 0);
        return;
    }
    if (!strcmp(path, "/metrics")) {
        coord_exporter_serve(c, req);
        return;
    }
    if (!strcmp(path, "/ui") || !strncmp(path, "/ui/", 4)) {
        /* ui.c: the console's pages need no principal, its data (/ui/api/) does */
        int data = !strncmp(path, "/ui/api/", 8);
        if (data && coord_auth_request(c, req) < 0)
            return;
        coord_ui_http(c, req, data);
        c->caller = NULL;
        return;
    }
    if (coord_auth_request(c, req) < 0)
        return;
    if (!strcmp(path, "/v1/jobs")) {
        if (!strcmp(method, "POST"))
            s_submit(c, req);
        else if (!strcmp(method, "GET"))
            s_list_jobs(c, req);
        else
            gp_http_respond_error(req, 405, "%s not allowed on %s", method, path);
    } else if (!strncmp(path, "/v1/jobs/", 9)) {
        /* /v1/jobs/<id>, /v1/jobs/<id>/suspend, /v1/jobs/<id>/resume: the
         * endpoint must exist (404), then the method fit it (405), then the
         * id be valid (400).  The path is decoded already (httpd.h). */
        const char *rest = path + 9, *slash = strchr(rest, '/');
        size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
        int on = slash && !strcmp(slash, "/suspend");
        int record = slash && !strcmp(slash, "/record");
        int logs = slash && !strcmp(slash, "/logs");
        char id[GP_NAME_LEN];
        snprintf(id, sizeof id, "%.*s", (int)(idlen < sizeof id ? idlen : sizeof id - 1), rest);
        if (idlen == 0 || (slash && !on && !record && !logs && strcmp(slash, "/resume") != 0))
            gp_http_respond_error(req, 404, "no such endpoint %s %s", method, path);
        else if (record ? strcmp(method, "DELETE") != 0
                 : logs  ? strcmp(method, "GET") != 0
                 : slash ? strcmp(method, "POST") != 0
                         : strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0)
            gp_http_respond_error(req, 405, "%s not allowed on %s", method, path);
        else if (idlen >= sizeof id || !gp_name_valid(id))
            gp_http_respond_error(req, 400, "bad job id \"%.*s\"", (int)(idlen < 200 ? idlen : 200),
                                  rest);
        else if (record)
            s_change(c, req, id, S_DELETE);
        else if (logs)
            coord_logs_http(c, req, id);
        else if (slash)
            s_change(c, req, id, on ? S_SUSPEND : S_RESUME);
        else if (!strcmp(method, "GET"))
            s_get_job(c, req, id);
        else
            s_change(c, req, id, S_CANCEL);
    } else if (!strcmp(path, "/v1/quotas")) {
        coord_quota_http(c, req, NULL);
    } else if (!strncmp(path, "/v1/quotas/", 11)) {
        coord_quota_http(c, req, path + 11);
    } else if (!strncmp(path, "/v1/nodes/", 10)) {
        coord_drain_http(c, req, path + 10);
    } else if (!strcmp(path, "/v1/nodes") && !strcmp(method, "GET")) {
        s_nodes(c, req);
    } else if (!strcmp(path, "/v1/regions") && !strcmp(method, "GET")) {
        s_regions(c, req);
    } else if (!strcmp(path, "/v1/usage") && !strcmp(method, "GET")) {
        s_usage(c, req);
    } else if (!strcmp(path, "/v1/rightsize") && !strcmp(method, "GET")) {
        coord_rightsize_http(c, req);
    } else if (!strcmp(path, "/v1/audit")) {
        coord_audit_http(c, req);
    } else {
        gp_http_respond_error(req, 404, "no such endpoint %s %s", method, path);
    }
    c->caller = NULL;
}
