/*
 * round.c - the bid round: how the region's leader places jobs.
 *
 * A round runs whenever the leader has queued jobs that are not backing
 * off and no round is in flight:
 *
 *  1. Batch.  Take up to `batch` queued jobs, highest priority first, then
 *     oldest (gangs go to gang.c first).  A job is placed here only on this
 *     region's nodes; one that cannot be, or that prefers another region, is
 *     handed off (handoff.c); one that fits nowhere and has a positive
 *     priority may preempt (preempt.c); one over its team's quota waits
 *     (quota.c).
 *  2. Rank.  For each job, in that order, the placement engine (fed by the
 *     cache) ranks the `candidates` best nodes.  The best plan is added to
 *     the engine as *tentative*, so that the next jobs of the batch see the
 *     capacity as taken: one batch never plans two jobs onto the same slice.
 *  3. Call for bids.  One CFB per agent, carrying every (job, candidate
 *     nodes) pair for the nodes that agent hosts (known from its HELLOs).
 *     Agents answer from live state with a bid (score and device plan) or a
 *     refusal.  The round waits until every agent asked has answered or
 *     `bid-timeout` passes; no answer means no bid.  The loop keeps serving
 *     the API meanwhile.
 *  4. Award.  Jobs in priority order; each takes its highest-scoring bid
 *     whose plan still fits the engine (the agent's device plan, or the
 *     leader's own plan for that node).  Jobs without a usable bid back off
 *     (100 ms doubling to 5 s, reset when capacity frees) and keep a pending
 *     reason in their record.
 *  5. Commit.  Awards are grouped by node and packed into transactions of
 *     at most 30 awards (etcd allows 128 operations per transaction): each
 *     compares the leader key's create revision with our fencing revision,
 *     every touched node's nodealloc/<node> mod revision with the cached one,
 *     and every job record's mod revision with the cached one; and then puts
 *     alloc/<node>/<job>, puts the job record as "placed", deletes its queue
 *     key, and bumps nodealloc/<node>.  Each node is in one transaction per
 *     round, so the transactions of a round never conflict with each other
 *     and run in parallel (a batch, 64 in flight): one wide-area round trip
 *     per batch, not per job.  A failed compare means the cache was behind
 *     (or we are deposed): those jobs go back to the queue at once and the
 *     cache catches up from the watch.  A transport error leaves the outcome
 *     unknown: the jobs are requeued, and if the commit did happen the watch
 *     delivers it and the fence refuses any plan made without it.
 *  6. Tell.  Winners get an AWARD hint; agents act on the allocation in etcd
 *     whatever happens to the hint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define S_MAX_CAND 8
#define S_TXN_AWARDS 30
#define S_AGENT_STALE_MS 10000

typedef struct {
    char id[GP_NAME_LEN];
    int64_t mod_rev;
    gp_job_t job;                 /* as placed: region pinned */
    int prio;
    int64_t submitted_ms;
    gp_candidate_t cand[S_MAX_CAND];
    int ncand;
    int asked;
    int has_bid;
    double best_score;
    gp_alloc_t best;              /* the best bid's plan */
    char reason[160];             /* why it is not placed, when it is not */
    char handoff[GP_SHORT_LEN];   /* region it is handed to, or "" */
    int awarded;
} s_entry_t;

typedef struct {
    int active;
    int64_t id;
    int64_t started_ms, deadline_ms;
    s_entry_t *e;
    int n;
    gp_strmap_t *by_job;          /* id -> s_entry_t* */
    gp_strmap_t *agents;          /* routing id -> (void*)1 asked, (void*)2 answered */
    int asked, answered;
} s_round_t;

static s_round_t *s_r(coord_t *c) { return c->round; }

static void s_metric_hist(coord_t *c, const char *name, const char *help, double v)
{
    gp_metric_observe(gp_metrics_histogram(c->metrics, name, help, "", NULL, 0), v);
}

/* ---------------------------------------------------------------- messages */

static void s_hello(coord_t *c, gp_wire_msg_t *msg)
{
    json_t *nodes = json_object_get(msg->body, "nodes");
    const char *region = json_string_value(json_object_get(msg->body, "region"));
    if (!json_is_array(nodes) || region == NULL) {
        coord_count(c, "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
                    "what=\"hello\"");
        return;
    }
    char agent[GP_NAME_LEN];
    snprintf(agent, sizeof agent, "%.*s", (int)msg->identity_len, msg->identity);
    int64_t now = gp_mono_ms();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        const char *name = json_string_value(n);
        if (name == NULL || !gp_name_valid(name))
            continue;
        coord_node_t *cn = coord_cache_node(c, name, 1);
        if (cn == NULL)
            continue;
        gp_strlcpy(cn->agent, agent, sizeof cn->agent);
        cn->agent_seen_ms = now;
    }
}

static void s_bids(coord_t *c, gp_wire_msg_t *msg)
{
    s_round_t *r = s_r(c);
    json_t *round = json_object_get(msg->body, "round");
    json_t *bids = json_object_get(msg->body, "bids");
    if (!json_is_integer(round) || !json_is_array(bids)) {
        coord_count(c, "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
                    "what=\"bids\"");
        return;
    }
    if (!r->active || json_integer_value(round) != r->id) {
        coord_count(c, "gpupool_coordinator_late_bids_total", "Bids for a round already closed",
                    NULL);
        return;
    }
    char agent[GP_NAME_LEN];
    snprintf(agent, sizeof agent, "%.*s", (int)msg->identity_len, msg->identity);
    if (gp_strmap_get(r->agents, agent) == (void *)1) {
        gp_strmap_put(r->agents, agent, (void *)2);
        r->answered++;
    }
    size_t i;
    json_t *b;
    json_array_foreach(bids, i, b) {
        const char *job = json_string_value(json_object_get(b, "job"));
        const char *node = json_string_value(json_object_get(b, "node"));
        s_entry_t *e = job ? gp_strmap_get(r->by_job, job) : NULL;
        coord_node_t *cn = node ? coord_cache_node(c, node, 0) : NULL;
        if (e == NULL || cn == NULL || strcmp(cn->agent, agent) != 0)
            continue;   /* not asked of this agent */
        const char *refused = json_string_value(json_object_get(b, "refused"));
        if (refused) {
            snprintf(e->reason, sizeof e->reason, "%.40s refused: %.100s", node, refused);
            coord_count(c, "gpupool_coordinator_bids_total", "Bids received", "result=\"refused\"");
            continue;
        }
        json_t *score = json_object_get(b, "score");
        gp_alloc_t plan;
        if (!json_is_number(score) ||
            gp_alloc_from_json(json_object_get(b, "alloc"), &plan, NULL) < 0 ||
            strcmp(plan.node, node) != 0 || strcmp(plan.job, job) != 0) {
            coord_count(c, "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
                        "what=\"bid\"");
            continue;
        }
        coord_count(c, "gpupool_coordinator_bids_total", "Bids received", "result=\"bid\"");
        double s = json_number_value(score);
        if (!e->has_bid || s > e->best_score) {
            e->has_bid = 1;
            e->best_score = s;
            e->best = plan;
        }
    }
    if (r->answered >= r->asked)
        r->deadline_ms = 0;   /* every agent answered: award now */
}

void coord_round_on_msg(coord_t *c, gp_wire_msg_t *msg)
{
    if (msg->type == GP_MSG_HELLO)
        s_hello(c, msg);
    else if (msg->type == GP_MSG_BIDS)
        s_bids(c, msg);
    else
        coord_count(c, "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
                    "what=\"unexpected-type\"");
}

/* ---------------------------------------------------------------- the round */

static void s_reset(s_round_t *r)
{
    free(r->e);
    r->e = NULL;
    r->n = 0;
    gp_strmap_destroy(&r->by_job);
    gp_strmap_destroy(&r->agents);
    r->active = 0;
    r->asked = r->answered = 0;
}

void coord_round_abort(coord_t *c, const char *why)
{
    s_round_t *r = s_r(c);
    if (r == NULL || !r->active)
        return;
    gp_log_info("round aborted round=%lld jobs=%d reason=\"%s\"", (long long)r->id, r->n, why);
    for (int i = 0; i < r->n; i++) {
        coord_cache_untentative(c, r->e[i].id);
        coord_job_t *j = coord_cache_job(c, r->e[i].id);
        if (j)
            j->in_round = 0;
    }
    s_reset(r);
}

static int s_cmp_entry(const void *pa, const void *pb)
{
    const s_entry_t *a = pa, *b = pb;
    if (a->prio != b->prio)
        return a->prio > b->prio ? -1 : 1;
    if (a->submitted_ms != b->submitted_ms)
        return a->submitted_ms < b->submitted_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

static void s_backoff(coord_t *c, coord_job_t *j, int64_t now)
{
    j->backoff_ms = j->backoff_ms ? j->backoff_ms * 2 : 100;
    if (j->backoff_ms > 5000)
        j->backoff_ms = 5000;
    j->not_before_ms = now + j->backoff_ms;
    (void)c;
}

static int s_open(coord_t *c, int64_t now)
{
    s_round_t *r = s_r(c);
    size_t nq = gp_strmap_size(c->queue);
    if (nq == 0)
        return 0;
    if (c->capacity_freed) {
        for (gp_strmap_iter_t it = gp_strmap_first(c->queue); it.key; it = gp_strmap_next(c->queue, it))
            ((coord_job_t *)it.value)->not_before_ms = 0;
        c->capacity_freed = 0;
    }
    r->e = calloc(nq, sizeof *r->e);
    if (r->e == NULL)
        return 0;
    for (gp_strmap_iter_t it = gp_strmap_first(c->queue); it.key; it = gp_strmap_next(c->queue, it)) {
        coord_job_t *j = it.value;
        if (j->in_round || j->not_before_ms > now || j->raw == NULL ||
            j->state != GP_JOB_PENDING || j->gang[0])
            continue;   /* gangs are placed by gang.c */
        s_entry_t *e = &r->e[r->n];
        gp_strlcpy(e->id, j->id, sizeof e->id);
        e->prio = j->priority;
        e->submitted_ms = j->submitted_ms;
        e->mod_rev = j->mod_rev;
        r->n++;
    }
    if (r->n == 0) {
        s_reset(r);
        return 0;
    }
    qsort(r->e, (size_t)r->n, sizeof *r->e, s_cmp_entry);
    if (r->n > c->cfg.batch)
        r->n = (int)c->cfg.batch;
    r->by_job = gp_strmap_new();
    r->agents = gp_strmap_new();
    r->id++;
    r->started_ms = now;
    r->active = 1;

    /* Rank each job and hold its best plan, in priority order.  A job is
     * placed here only on this region's nodes; one that does not fit here,
     * or prefers elsewhere, is handed off (handoff.c), or preempts
     * (preempt.c), or waits. */
    gp_strmap_t *calls = gp_strmap_new();   /* agent -> json CFB jobs array */
    coord_usage_t *usage = coord_quota_usage(c);
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        coord_job_t *j = coord_cache_job(c, e->id);
        gp_jobrec_t rec;
        gp_err_t err;
        if (j == NULL || gp_jobrec_from_json_str(j->raw, j->raw_len, &rec, &err) < 0) {
            snprintf(e->reason, sizeof e->reason, "bad job record");
            continue;
        }
        j->in_round = 1;
        gp_job_t orig = rec.spec;
        gp_jobrec_clear(&rec);
        e->job = orig;
        e->job.regions.n = 0;
        gp_strlist_add(&e->job.regions, c->cfg.region);
        gp_strmap_put(r->by_job, e->id, e);
        int k = (int)(c->cfg.candidates < S_MAX_CAND ? c->cfg.candidates : S_MAX_CAND);
        gp_err_set(&err, GP_ERR_NOTFOUND, "no capacity for it in region %s", c->cfg.region);
        int allowed = orig.regions.n == 0 || gp_strlist_has(&orig.regions, c->cfg.region);
        int fits = allowed && gp_placement_rank(c->engine, &e->job, e->cand, k, &e->ncand, &err) == 0 &&
                   e->ncand > 0;
        if (!fits) {
            e->ncand = 0;
            snprintf(e->reason, sizeof e->reason, "no node fits here: %.130s", err.msg);
        }
        char why[160] = "";
        if ((!fits || orig.prefer_regions.n || orig.prefer_clouds.n) &&
            coord_handoff_target(c, &orig, fits, e->handoff, sizeof e->handoff, why, sizeof why)) {
            gp_strlcpy(e->reason, why, sizeof e->reason);
            e->ncand = 0;
            continue;
        }
        if (!fits) {
            if (coord_preempt(c, &e->job, why, sizeof why)) {
                e->awarded = 1;
                e->reason[0] = '\0';
            } else if (why[0]) {
                snprintf(e->reason, sizeof e->reason, "%s", why);
            }
            continue;
        }
        if (coord_quota_exceeded(c, usage, j->owner, &e->cand[0].plan, why, sizeof why)) {
            gp_strlcpy(e->reason, why, sizeof e->reason);
            e->ncand = 0;
            continue;
        }
        coord_quota_charge(c, usage, j->owner, &e->cand[0].plan);
        coord_cache_hold(c, &e->cand[0].plan);
        json_t *spec = NULL;
        for (int ci = 0; ci < e->ncand; ci++) {
            coord_node_t *cn = coord_cache_node(c, e->cand[ci].plan.node, 0);
            if (cn == NULL || cn->agent[0] == '\0' || now - cn->agent_seen_ms > S_AGENT_STALE_MS)
                continue;
            json_t *jobs = gp_strmap_get(calls, cn->agent);
            if (jobs == NULL) {
                jobs = json_array();
                gp_strmap_put(calls, cn->agent, jobs);
            }
            /* One entry per (agent, job): append the node to it. */
            json_t *last = json_array_get(jobs, json_array_size(jobs) - 1);
            const char *lj = last ? json_string_value(json_object_get(last, "job")) : NULL;
            if (lj == NULL || strcmp(lj, e->id) != 0) {
                if (spec == NULL)
                    spec = gp_job_to_json(&e->job);
                last = json_pack("{s:s,s:O,s:[]}", "job", e->id, "spec", spec, "nodes");
                json_array_append_new(jobs, last);
            }
            json_array_append_new(json_object_get(last, "nodes"), json_string(cn->name));
            e->asked++;
        }
        json_decref(spec);
        if (e->asked == 0)
            snprintf(e->reason, sizeof e->reason, "no agent answers for the candidate nodes");
    }
    for (gp_strmap_iter_t it = gp_strmap_first(calls); it.key; it = gp_strmap_next(calls, it)) {
        json_t *body = json_pack("{s:I,s:o}", "round", (json_int_t)r->id, "jobs", it.value);
        gp_err_t err;
        if (body && gp_wire_send(c->router, it.key, strlen(it.key), GP_MSG_CFB, body, &err) == 0) {
            gp_strmap_put(r->agents, it.key, (void *)1);
            r->asked++;
        } else {
            gp_log_warn("call for bids not sent agent=%s err=\"%s\"", it.key, err.msg);
        }
        json_decref(body);
    }
    gp_strmap_destroy(&calls);
    coord_quota_usage_free(&usage);
    r->deadline_ms = r->asked ? now + c->cfg.bid_timeout_ms : 0;
    return 1;
}

/* The job record as placed, and the ops and compares of its award. */
typedef struct {
    s_entry_t *e;
    char *alloc_text, *job_text;
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX], qkey[GP_KEY_MAX];
    int ok;
} s_award_t;

static int s_prepare(coord_t *c, s_award_t *aw, int64_t now_wall)
{
    s_entry_t *e = aw->e;
    coord_job_t *j = coord_cache_job(c, e->id);
    if (j == NULL || j->mod_rev != e->mod_rev || !j->queued)
        return -1;   /* cancelled or changed meanwhile */
    gp_jobrec_t rec;
    if (gp_jobrec_from_json_str(j->raw, j->raw_len, &rec, NULL) < 0)
        return -1;
    rec.attempts++;
    char reason[64];
    snprintf(reason, sizeof reason, "attempt %d", rec.attempts);
    gp_jobrec_set_state(&rec, GP_JOB_PLACED, e->best.node, reason, now_wall);
    aw->job_text = gp_jobrec_dump(&rec);
    gp_jobrec_clear(&rec);
    json_t *al = gp_alloc_to_json(&e->best);
    aw->alloc_text = al ? json_dumps(al, JSON_COMPACT) : NULL;
    json_decref(al);
    if (aw->job_text == NULL || aw->alloc_text == NULL)
        return -1;
    gp_key_alloc(aw->akey, c->cfg.prefix, e->best.node, e->id);
    gp_key_job(aw->jkey, c->cfg.prefix, e->id);
    gp_key_queue(aw->qkey, c->cfg.prefix, c->cfg.region, e->id);
    return 0;
}

static int s_cmp_award_node(const void *pa, const void *pb)
{
    const s_award_t *a = pa, *b = pb;
    return strcmp(a->e->best.node, b->e->best.node);
}

/* Pack awards (sorted by node) into fenced transactions and run them. */
static void s_commit(coord_t *c, s_award_t *aw, int n, int64_t now_wall)
{
    if (n == 0)
        return;
    qsort(aw, (size_t)n, sizeof *aw, s_cmp_award_node);
    gp_etcd_batch_t *b = gp_etcd_batch_new(c->etcd);
    int *first = calloc((size_t)n + 1, sizeof *first);   /* txn t covers [first[t], first[t+1]) */
    int ntxn = 0;
    char leader_key[GP_KEY_MAX], round_id[32];
    gp_key_leader(leader_key, c->cfg.prefix, c->cfg.region);
    snprintf(round_id, sizeof round_id, "%lld", (long long)s_r(c)->id);
    if (b == NULL || first == NULL)
        goto cleanup;
    int i = 0;
    while (i < n) {
        first[ntxn] = i;
        gp_etcd_cmp_t cmp[1 + 2 * S_TXN_AWARDS];
        gp_etcd_op_t ops[4 * S_TXN_AWARDS];
        char nkeys[S_TXN_AWARDS][GP_KEY_MAX];
        int ncmp = 0, nops = 0, nnodes = 0, count = 0;
        cmp[ncmp++] = (gp_etcd_cmp_t){ .key = leader_key, .target = GP_ETCD_CMP_CREATE,
                                       .result = GP_ETCD_CMP_EQUAL, .number = c->leader_rev };
        /* Whole nodes only: a node's awards all go in this transaction. */
        while (i < n) {
            int k = i;
            while (k < n && !strcmp(aw[k].e->best.node, aw[i].e->best.node))
                k++;
            if (count > 0 && count + (k - i) > S_TXN_AWARDS)
                break;
            if (k - i > S_TXN_AWARDS)
                k = i + S_TXN_AWARDS;   /* a node with more awards: the rest wait a round */
            coord_node_t *cn = coord_cache_node(c, aw[i].e->best.node, 0);
            gp_key_nodealloc(nkeys[nnodes], c->cfg.prefix, aw[i].e->best.node);
            cmp[ncmp++] = (gp_etcd_cmp_t){ .key = nkeys[nnodes], .target = GP_ETCD_CMP_MOD,
                                           .result = GP_ETCD_CMP_EQUAL,
                                           .number = cn ? cn->nodealloc_rev : 0 };
            ops[nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_PUT, .key = nkeys[nnodes],
                                          .value = round_id, .value_len = strlen(round_id) };
            nnodes++;
            for (int a = i; a < k; a++) {
                aw[a].ok = 1;
                cmp[ncmp++] = (gp_etcd_cmp_t){ .key = aw[a].jkey, .target = GP_ETCD_CMP_MOD,
                                               .result = GP_ETCD_CMP_EQUAL,
                                               .number = aw[a].e->mod_rev };
                ops[nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_PUT, .key = aw[a].akey,
                                              .value = aw[a].alloc_text,
                                              .value_len = strlen(aw[a].alloc_text) };
                ops[nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_PUT, .key = aw[a].jkey,
                                              .value = aw[a].job_text,
                                              .value_len = strlen(aw[a].job_text) };
                ops[nops++] = (gp_etcd_op_t){ .type = GP_ETCD_OP_DELETE, .key = aw[a].qkey };
            }
            count += k - i;
            /* skip the awards of this node beyond the cap */
            while (k < n && !strcmp(aw[k].e->best.node, aw[i].e->best.node))
                k++;
            i = k;
        }
        gp_etcd_txn_t txn = { cmp, (size_t)ncmp, ops, (size_t)nops, NULL, 0 };
        if (gp_etcd_batch_add_txn(b, &txn, NULL) < 0)
            goto cleanup;
        ntxn++;
    }
    first[ntxn] = n;
    if (c->fault_pause_ms > 0) {
        /* Fault injection (GPUPOOL_FAULT_COMMIT_PAUSE_MS): stall once between
         * deciding and committing, as a long GC pause or a stopped VM would,
         * so that tests can check a leader deposed meanwhile is fenced. */
        gp_log_warn("fault injection: pausing %lld ms before a commit",
                    (long long)c->fault_pause_ms);
        usleep((useconds_t)(c->fault_pause_ms * 1000));
        c->fault_pause_ms = 0;
    }
    int64_t t0 = gp_mono_ns();
    gp_err_t err;
    gp_etcd_batch_run(b, 64, &err);
    s_metric_hist(c, "gpupool_coordinator_commit_seconds", "Time to commit one round's awards",
                  (double)(gp_mono_ns() - t0) / 1e9);
    for (int t = 0; t < ntxn; t++) {
        const gp_etcd_result_t *res;
        int committed = gp_etcd_batch_result(b, (size_t)t, &res, &err) == 0 && res->succeeded;
        if (!committed) {
            coord_count(c, "gpupool_coordinator_commit_conflicts_total",
                        "Transactions refused by a compare or failed", NULL);
            if (gp_etcd_batch_result(b, (size_t)t, &res, &err) < 0)
                gp_log_warn("commit failed, jobs requeued err=\"%s\"", err.msg);
        }
        for (int a = first[t]; a < first[t + 1]; a++) {
            if (!aw[a].ok)
                continue;
            aw[a].ok = committed;
            if (committed) {
                aw[a].e->awarded = 1;
                coord_job_t *j = coord_cache_job(c, aw[a].e->id);
                coord_count(c, "gpupool_coordinator_placements_total", "Jobs placed", NULL);
                if (j && j->submitted_ms)
                    s_metric_hist(c, "gpupool_coordinator_submit_to_commit_seconds",
                                  "From submission to committed placement",
                                  (double)(now_wall - j->submitted_ms) / 1000.0);
            }
        }
    }
cleanup:
    free(first);
    gp_etcd_batch_destroy(&b);
}

/* Pending reasons, written once per change so that `gpupool get` says why,
 * and hand-offs, in one batch. */
static void s_write_reasons(coord_t *c)
{
    s_round_t *r = s_r(c);
    gp_etcd_batch_t *b = gp_etcd_batch_new(c->etcd);
    if (b == NULL)
        return;
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        coord_job_t *j = coord_cache_job(c, e->id);
        if (e->awarded || j == NULL || j->mod_rev != e->mod_rev)
            continue;
        if (e->handoff[0])
            coord_handoff_add(c, b, e->id, e->handoff, e->reason);
        else
            coord_set_reason(c, b, j, e->reason);
    }
    if (gp_etcd_batch_size(b) > 0)
        gp_etcd_batch_run(b, 64, NULL);
    gp_etcd_batch_destroy(&b);
}

static void s_close(coord_t *c, int64_t now)
{
    s_round_t *r = s_r(c);
    int64_t now_wall = gp_wall_ms();
    s_award_t *aw = calloc((size_t)r->n + 1, sizeof *aw);
    int naw = 0;
    /* Free every tentative plan first: awards are re-held one by one in
     * priority order against the engine as it really is. */
    for (int i = 0; i < r->n; i++)
        coord_cache_untentative(c, r->e[i].id);
    for (int i = 0; aw && i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        if (e->awarded || e->handoff[0])
            continue;   /* placed by preemption, or leaving the region */
        if (!e->has_bid) {
            if (e->reason[0] == '\0')
                snprintf(e->reason, sizeof e->reason, "no bids in time");
            continue;
        }
        if (coord_cache_hold(c, &e->best) < 0) {
            /* The agent's device plan no longer fits: the leader's own plan
             * for the same node, if there is one. */
            double score;
            gp_alloc_t plan;
            if (gp_placement_score_node(c->engine, e->best.node, &e->job, &score, &plan, NULL) < 0 ||
                coord_cache_hold(c, &plan) < 0) {
                snprintf(e->reason, sizeof e->reason, "the bid for %.100s no longer fits",
                         e->best.node);
                continue;
            }
            e->best = plan;
        }
        aw[naw].e = e;
        if (s_prepare(c, &aw[naw], now_wall) < 0) {
            coord_cache_untentative(c, e->id);
            free(aw[naw].alloc_text);
            free(aw[naw].job_text);
            memset(&aw[naw], 0, sizeof aw[naw]);
            continue;
        }
        naw++;
    }
    s_commit(c, aw, naw, now_wall);

    /* Hints for the winners, backoff for the others. */
    gp_strmap_t *hints = gp_strmap_new();
    for (int i = 0; i < naw; i++) {
        if (!aw[i].ok) {
            coord_cache_untentative(c, aw[i].e->id);
            continue;
        }
        coord_node_t *cn = coord_cache_node(c, aw[i].e->best.node, 0);
        if (hints && cn && cn->agent[0]) {
            json_t *jobs = gp_strmap_get(hints, cn->agent);
            if (jobs == NULL) {
                jobs = json_array();
                gp_strmap_put(hints, cn->agent, jobs);
            }
            json_array_append_new(jobs, json_pack("{s:s,s:s}", "job", aw[i].e->id, "node",
                                                  aw[i].e->best.node));
        }
    }
    for (gp_strmap_iter_t it = hints ? gp_strmap_first(hints) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(hints, it)) {
        json_t *body = json_pack("{s:o}", "jobs", it.value);
        gp_wire_send(c->router, it.key, strlen(it.key), GP_MSG_AWARD, body, NULL);
        json_decref(body);
    }
    gp_strmap_destroy(&hints);
    int placed = 0;
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        coord_job_t *j = coord_cache_job(c, e->id);
        if (j == NULL)
            continue;
        j->in_round = 0;
        if (e->awarded) {
            placed++;
            j->backoff_ms = 0;
        } else if (e->has_bid && e->reason[0] == '\0') {
            j->not_before_ms = 0;   /* lost a race: retry at once */
        } else {
            s_backoff(c, j, now);
        }
    }
    s_write_reasons(c);
    for (int i = 0; i < naw; i++) {
        free(aw[i].alloc_text);
        free(aw[i].job_text);
    }
    free(aw);
    s_metric_hist(c, "gpupool_coordinator_round_seconds", "Bid round, from batch to commit",
                  (double)(gp_mono_ms() - r->started_ms) / 1000.0);
    gp_log_debug("round closed round=%lld jobs=%d placed=%d agents=%d/%d", (long long)r->id, r->n,
                 placed, r->answered, r->asked);
    s_reset(r);
}

int coord_round_start(coord_t *c, gp_err_t *err)
{
    c->round = calloc(1, sizeof(s_round_t));
    if (c->round == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return 0;
}

void coord_round_tick(coord_t *c)
{
    s_round_t *r = s_r(c);
    int64_t now = gp_mono_ms();
    gp_metric_set(gp_metrics_gauge(c->metrics, "gpupool_coordinator_queue_depth",
                                   "Jobs queued in this region", NULL),
                  c->queue ? (double)gp_strmap_size(c->queue) : 0);
    if (!coord_is_leader(c)) {
        coord_round_abort(c, "not the leader");
        return;
    }
    coord_recovery_tick(c);
    if (r->active && now >= r->deadline_ms)
        s_close(c, now);
    if (!r->active) {
        coord_gang_round(c, now);
        s_open(c, now);
    }
    if (r->active && r->asked == 0)
        s_close(c, now);   /* nobody to ask: no bids, back off */
}

int64_t coord_round_deadline(coord_t *c)
{
    s_round_t *r = s_r(c);
    return r && r->active ? r->deadline_ms : 0;
}

void coord_round_stop(coord_t *c)
{
    coord_round_abort(c, "stopping");
    free(c->round);
    c->round = NULL;
}
