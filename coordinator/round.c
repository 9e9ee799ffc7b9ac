/*
 * round.c - the bid round: how the region's leader places jobs.
 *
 * A round runs whenever the leader has queued jobs that are not backing
 * off and no round is in flight.  It is driven by events, not only by the
 * loop's 20 ms tick: a job queued here opens a round at once when none is in
 * flight, and the last agent's answer closes it at once (see
 * coord_round_deadline), so a lone job waits for no timer.
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
 *     refusal.  The round waits until every agent asked has answered or the
 *     deadline passes: twice the agents' recent answer time, within
 *     [bid-timeout, 2 s]; no answer means no bid.  The loop keeps serving
 *     the API meanwhile.
 *  4. Award.  Jobs in priority order.  A job keeps the plan the leader held
 *     for it when its node bid (the batch's plans were made together and do
 *     not collide; agents bid on each job alone, so their device plans for
 *     one node may); when that node refused or was silent, the job takes its
 *     best-scoring other bid whose plan still fits (the agent's device plan,
 *     else the leader's plan for that node).  Jobs without bids in time retry
 *     at once; jobs refused everywhere back off (100 ms doubling to 5 s, reset
 *     when capacity frees) and keep a pending reason in their record.
 *  5. Commit.  Awards are grouped by node and packed into transactions of
 *     at most 60 awards (etcd allows 128 operations and compares per
 *     transaction): each compares the leader key's create revision with our
 *     fencing revision; for every touched node, that no key under
 *     alloc/<node>/ was created after the node's fence -- the revision the
 *     round's plans saw, or our own last commit on the node, whichever is
 *     later (a range compare: an allocation committed by anyone since would
 *     make it fail); and every job record's mod revision with the cached
 *     one.  It then puts alloc/<node>/<job> and nothing else: the record is
 *     not rewritten (a pending record with an allocation is placed) and the
 *     queue is derived from the records, so a placement costs one key.  A
 *     node is in one transaction per wave, so a wave's transactions never
 *     conflict and run in parallel (a batch, 64 in flight); a node with
 *     more than 60 awards continues in the next wave, fenced on the revision
 *     the previous one committed at.  One wide-area round trip per wave, not
 *     per job.  A failed compare means the cache was behind (or we are
 *     deposed): those jobs go back to the queue at once and the cache
 *     catches up from the watch.  A transport error leaves the outcome
 *     unknown: the jobs wait out of the queue until recovery.c settles it
 *     (placed, or made sure it never will be), so a job is never placed
 *     twice.
 *  6. Tell.  Winners get an AWARD hint; agents act on the allocation in etcd
 *     whatever happens to the hint.
 *
 * Placement at intake.  A job submitted to this region's leader (intake.c
 * decides which: no gang, no preferences, no right-sizing, no quota of its
 * team) is not stored alone first: it is offered to the next round
 * (coord_round_offer), which ranks it and calls for bids like a queued job
 * and commits its record together with its allocation, in the same fenced
 * transaction as the round's other awards on its node: "jobs/<id> does not
 * exist" (intake's idempotency compare), the leader key's create revision,
 * the node fence; then it puts alloc/<node>/<job> and the record, in that
 * order (the cache never sees the record without its allocation, so the
 * job is never queued).  One durable write instead of two, and agents see
 * a record and an allocation as if the round had run after intake.  An
 * offered job the round does not place (no fit, no bid, a failed compare,
 * an unknown outcome, a round aborted, leadership lost) goes back to
 * intake, which stores it alone as any submission (finding it stored when
 * an unknown outcome was in fact applied: record and allocation are one
 * write, so there is nothing to settle).  Offers wait for the next round,
 * taken in the batch's order with the queued jobs; that round is their one
 * chance: one it does not take goes back to intake, so that no request
 * waits behind the queue.  A placed offer is known from its commit on by
 * its held plan (coord_cache_held), before the watch shows its record:
 * the same id offered again meanwhile is not offered but stored alone
 * (and so answered as the same job).
 *
 * Rounds overlap: once a round has decided its awards (4) and before it
 * commits (5), the next round opens (1-3) and its calls for bids go out,
 * so that agents compute bids while the leader waits for etcd.  The
 * closing round's jobs are still marked in a round and its plans are held
 * in the engine, so the next round neither picks them nor plans over
 * them; its commit is fenced on our commits' revisions like any other.
 * The loop never waits for etcd here: the commit's waves and then the
 * closing round's pending reasons and hand-offs are background batches
 * (etcd.h, gp_etcd_batch_start) whose callbacks carry the round on, while
 * intake, the API, keep-alives and the next round's bids proceed.  A
 * round closes (decides its awards) as soon as every agent asked has
 * answered, even while earlier rounds still commit: the plans of every
 * round decided are held in the engine until its commit has landed, so
 * rounds never plan over each other.  (A round past its deadline with
 * answers missing closes once no commit is in flight: a slow agent gets
 * that time too.)  One commit is in flight at a time: the rounds that
 * closed while it was in the air commit together when it has landed, in
 * one set of waves fenced as the oldest of them (the lowest plan
 * revision), so that their node fences include our last commits and a
 * commit's cost is shared by every round waiting for it.  So a new offer
 * waits for the agents' answers and at most two of etcd's writes, not for
 * each earlier round's commit in turn.  When S_CLOSING_MAX rounds wait to
 * commit, the live round waits to close.  A waiting award is checked again
 * when its commit starts (job unchanged, node known), and rounds decided
 * under another leader term are never sent.  An abort (leadership lost,
 * the cache rebuilt, stopping) fails the waiting rounds and makes the
 * commit in flight stale: it raises no node fence, and no round closes
 * until it has landed (s_fail_waiting).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "coord.h"
#include "daemon.h"
#include "decide.h"
#include "jscan.h"
#include "keys.h"
#include "log.h"
#include "txn.h"
#include "util.h"

#include "banned.h"

#define S_MAX_CAND 8
#define S_TXN_AWARDS 60   /* 1 + nodes + 60 compares, 60 puts: within etcd's 128 */
#define S_AGENT_STALE_MS 10000
#define S_BIG_ROUND 64    /* a round of this many jobs or more ends with a trim */
#define S_MAX_PARSED 64   /* jobs a round keeps parsed for its proposal checks */

/* A bid: the agent's score and device plan for one node, the plan kept
 * as the agent sent it (its text, validated on receipt) and parsed again
 * only if the award falls back to it. */
typedef struct {
    double score;
    char *node;                   /* the node, then after its NUL the plan's text (one block, owned) */
} s_bid_t;

#define S_BID_ALLOC(b) ((b)->node + strlen((b)->node) + 1)

/* A job of a round.  Entries stay small, since a round may hold a batch
 * of a thousand jobs: the job itself is the cache's parsed spec, of which
 * the entry holds a reference (the cache replaces or drops its own when
 * the record changes, the round's stays valid until the round ends); the
 * round's phases parse it into the round's scratch job when they need a
 * gp_job_t; the proposal checks of the first S_MAX_PARSED jobs to receive
 * bids use a copy the round keeps (s_bid_job: one parse per job, not one
 * per bid, within a bounded memory); the bids take what came; the awarded
 * plan is allocated once chosen.  s_entry_clear releases all of it. */
typedef struct {
    char id[GP_NAME_LEN];
    int64_t mod_rev;
    json_t *spec;                 /* a reference to the cache's parsed spec */
    int job_slot;                 /* 1 + its parsed job's index in the round's jobs, or 0 */
    int prio;
    int64_t submitted_ms;
    int asked;                    /* candidate nodes asked for bids */
    int nbids;
    s_bid_t *bids;                /* nbids bids (owned) */
    gp_alloc_t *best;             /* the plan awarded (owned), or NULL */
    char reason[256];             /* why it is not placed, when it is not */
    char handoff[GP_SHORT_LEN];   /* region it is handed to, or "" */
    int awarded;
    int late;                     /* no bid before the deadline */
    int sized;                    /* rightsize auto: mem_mib, compute as applied at ranking */
    int64_t sized_mem_mib;
    int sized_compute_permille;
    struct s_offer *offer;        /* a job offered at intake, not stored yet (owned), or NULL */
    int offered;                  /* an offer (its job is no queued job of this round) */
} s_entry_t;

/* A job offered at intake (coord_round_offer): its record, not stored yet. */
typedef struct s_offer {
    char id[GP_NAME_LEN];
    char owner[GP_SHORT_LEN];
    char *text;                   /* the record to store */
    json_t *spec;                 /* its spec */
    int priority;
    int64_t submitted_ms;
    uint64_t token;               /* intake's, given back with the outcome */
    int64_t revision;             /* committed at (with its allocation), else 0 */
    int taken;                    /* in a round */
    struct s_offer *next;
} s_offer_t;

typedef struct {
    int active;
    int64_t id;
    int64_t started_ms, deadline_ms;
    s_entry_t *e;
    int n;
    gp_strmap_t *by_job;          /* id -> s_entry_t* */
    gp_strmap_t *agents;          /* routing id -> &s_asked or &s_answered */
    int asked, answered;
    int64_t sent_ms;              /* when the calls for bids went out */
    int64_t answer_ms;            /* agents' recent answer time (moving average) */
    int64_t plan_rev;             /* the cache revision when the round opened */
    gp_job_t *jobs;               /* njobs entries' jobs, parsed at their first bid */
    int njobs;
} s_round_t;

/* An agent's part in the round (the values of r->agents). */
static const char s_asked = 'q', s_answered = 'a';

/* round.c's state: the live round, and scratch space for the one job a
 * phase works on (a gp_job_t is large; entries do not keep one). */
struct coord_round {
    s_round_t live;
    struct s_closing *closing;    /* rounds decided and not finished, in order (s_close) */
    int nwaiting;                 /* of them waiting for their commit */
    struct s_group *committing;   /* the commit in flight, or NULL */
    s_offer_t *offers;            /* offered at intake, waiting for a round */
    int noffers;
    gp_strmap_t *offered;         /* id -> s_offer_t*: every offer not answered yet */
    int kick;                     /* open a round now, not at the tick (coord_round_kick) */
    gp_job_t orig;                /* the job as submitted */
    const void *orig_of;          /* the entry whose job s_bid_job left in orig (within
                                   * one BIDS: an agent answers a job's nodes in a row),
                                   * NULL once anything else parses into it */
    gp_job_t here;                /* the same, pinned to this region */
    gp_candidate_t cand[S_MAX_CAND];
};
typedef struct coord_round s_state_t;

static s_round_t *s_r(coord_t *c) { return &c->round->live; }
static s_state_t *s_st(coord_t *c) { return c->round; }

/* Parse e's spec into the scratch jobs (st->here pinned to region), with
 * the sizes right-sizing applied when the job was ranked (the same for the
 * whole round, whatever the class's summary does meanwhile). */
static int s_parse_job(s_state_t *st, const s_entry_t *e, const char *region, gp_err_t *err)
{
    st->orig_of = NULL;
    if (e->spec == NULL || gp_job_from_json(e->spec, &st->orig, err) < 0)
        return -1;
    if (e->sized) {
        st->orig.mem_mib = e->sized_mem_mib;
        st->orig.compute_permille = e->sized_compute_permille;
    }
    st->here = st->orig;
    st->here.regions.n = 0;
    gp_strlist_add(&st->here.regions, region);
    return 0;
}

static void s_entry_clear(s_entry_t *e)
{
    json_decref(e->spec);
    e->spec = NULL;
    for (int b = 0; b < e->nbids; b++)
        free(e->bids[b].node);
    free(e->bids);
    e->bids = NULL;
    e->nbids = 0;
    free(e->best);
    e->best = NULL;
}

/* An offer's outcome goes to intake (revision 0: not placed, store it
 * alone), and the offer is freed. */
static void s_offer_end(coord_t *c, s_offer_t *o, int64_t revision)
{
    if (c->round && c->round->offered && gp_strmap_get(c->round->offered, o->id) == o)
        gp_strmap_del(c->round->offered, o->id);
    coord_intake_offer_done(c, o->token, o->id, revision);
    if (revision == 0)   /* not put by the round (s_wave_add expected it) */
        coord_cache_unexpect(c, o->id);
    free(o->text);
    json_decref(o->spec);
    free(o);
}

/* The round's offers not answered yet: not placed (after a commit, the
 * placed ones were answered). */
static void s_offers_end(coord_t *c, s_round_t *r)
{
    for (int i = 0; i < r->n; i++) {
        if (r->e[i].offer) {
            s_offer_end(c, r->e[i].offer, 0);
            r->e[i].offer = NULL;
        }
    }
}

/* The offers waiting for a round go back to intake (not the leader, the
 * store full, stopping). */
static void s_offers_drop(coord_t *c)
{
    s_state_t *st = c->round;
    while (st && st->offers) {
        s_offer_t *o = st->offers;
        st->offers = o->next;
        st->noffers--;
        s_offer_end(c, o, 0);
    }
}

int coord_round_offer(coord_t *c, const char *id, const char *owner, const char *text,
                      json_t *spec, int priority, int64_t submitted_ms, uint64_t token)
{
    s_state_t *st = c->round;
    if (st == NULL || !coord_is_leader(c) || coord_store_full(c) ||
        st->noffers >= c->cfg.batch || coord_cache_job(c, id) != NULL ||
        coord_cache_held(c, id) != NULL)
        return -1;   /* known: stored, or placed and not yet seen by the watch */
    if (st->offered == NULL && (st->offered = gp_strmap_new()) == NULL)
        return -1;
    if (gp_strmap_get(st->offered, id))
        return -1;   /* offered already (by another request): stored alone */
    s_offer_t *o = calloc(1, sizeof *o);
    if (o == NULL || !json_is_object(spec) || (o->text = strdup(text)) == NULL ||
        gp_strmap_put(st->offered, id, o) < 0) {
        if (o)
            free(o->text);
        free(o);
        return -1;
    }
    o->spec = json_incref(spec);
    gp_strlcpy(o->id, id, sizeof o->id);
    gp_strlcpy(o->owner, owner, sizeof o->owner);
    o->priority = priority;
    o->submitted_ms = submitted_ms;
    o->token = token;
    o->next = st->offers;
    st->offers = o;
    st->noffers++;
    st->kick = 1;
    return 0;
}

void coord_round_withdraw(coord_t *c)
{
    coord_round_abort(c, "stopping");
    s_offers_drop(c);
}

/* ---------------------------------------------------------------- messages */

static void s_hello(coord_t *c, gp_wire_msg_t *msg)
{
    json_t *nodes = json_object_get(msg->body, "nodes");
    const char *region = json_string_value(json_object_get(msg->body, "region"));
    if (!json_is_array(nodes) || region == NULL) {
        gp_metric_inc(c->m.protocol_errors[COORD_PROTO_HELLO]);
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

/* e's job as submitted, for the checks of its proposals; NULL when
 * unreadable.  The round keeps the jobs of the first S_MAX_PARSED entries
 * to receive bids (a gp_job_t is large); the others are parsed into the
 * scratch job at their bids, once for the bids of one job in a row (an
 * agent answers a job's nodes together). */
static const gp_job_t *s_bid_job(coord_t *c, s_round_t *r, s_entry_t *e)
{
    s_state_t *st = s_st(c);
    if (e->job_slot)
        return &r->jobs[e->job_slot - 1];
    if (st->orig_of == e)
        return &st->orig;
    if (s_parse_job(st, e, c->cfg.region, NULL) < 0)
        return NULL;
    int cap = r->n < S_MAX_PARSED ? r->n : S_MAX_PARSED;
    if (r->jobs == NULL)
        r->jobs = malloc((size_t)cap * sizeof *r->jobs);
    if (r->jobs == NULL || r->njobs >= cap) {
        st->orig_of = e;
        return &st->orig;
    }
    r->jobs[r->njobs] = st->orig;
    e->job_slot = ++r->njobs;
    return &r->jobs[r->njobs - 1];
}

/* A bid's plan (its proposal) is advice: the commit writes the leader's
 * own plan for the node it ranked best, and an agent's plan elsewhere only
 * when it still fits (s_choose).  A plan the node could never hold (a bad
 * device index, more memory than the device offers, less than the job
 * asks) is a broken agent: the whole bid is dropped, counted and logged,
 * and the node counts as having refused.  1 when rejected. */
static int s_proposal_rejected(coord_t *c, s_round_t *r, s_entry_t *e, const char *agent,
                               const gp_alloc_t *plan)
{
    gp_err_t err;
    const gp_job_t *job = s_bid_job(c, r, e);
    if (job == NULL || gp_placement_check_plan(coord_cache_engine(c), job, plan, &err) == 0)
        return 0;
    for (char *p = err.msg; *p; p++)   /* the message quotes record fields */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';
    char a[64], n[64];
    gp_metric_inc(c->m.rejected_proposals);
    gp_log_warn("proposal rejected agent=%s job=%s node=%s reason=\"%s\"",
                gp_wire_printable(agent, strlen(agent), a, sizeof a), e->id,
                gp_wire_printable(plan->node, strlen(plan->node), n, sizeof n), err.msg);
    snprintf(e->reason, sizeof e->reason, "%.40s proposal rejected: %.90s", plan->node, err.msg);
    return 1;
}

/* One answer of a BIDS, read in place or from the tree: a bid or a
 * refusal for (job, node). */
typedef struct {
    const char *job, *node;       /* NULL when absent or not a string */
    const char *refused;          /* NULL: a bid */
    size_t refused_len;
    int has_score;
    double score;
    const char *alloc;            /* the plan's text (alloc_len bytes), or NULL */
    size_t alloc_len;
    int alloc_ok;                 /* alloc read into plan already (else alloc is
                                   * NUL-terminated, for gp_alloc_from_json_str) */
    gp_alloc_t plan;
} s_answer_t;

/* One answer of a BIDS: e's bid kept, or the refusal's reason, or the
 * protocol error counted. */
static void s_bid_one(coord_t *c, s_round_t *r, const char *agent, s_answer_t *a)
{
    s_entry_t *e = a->job ? gp_strmap_get(r->by_job, a->job) : NULL;
    coord_node_t *cn = a->node ? coord_cache_node(c, a->node, 0) : NULL;
    if (e == NULL || cn == NULL || strcmp(cn->agent, agent) != 0) {
        char ag[64], jb[64];
        gp_metric_inc(c->m.protocol_errors[COORD_PROTO_BID_NOT_ASKED]);
        gp_log_warn("bid dropped agent=%s job=%s reason=\"not asked of this agent\"",
                    gp_wire_printable(agent, strlen(agent), ag, sizeof ag),
                    gp_wire_printable(a->job ? a->job : "", a->job ? strlen(a->job) : 0, jb, sizeof jb));
        return;
    }
    if (a->refused) {
        snprintf(e->reason, sizeof e->reason, "%.40s refused: %.*s", a->node,
                 (int)(a->refused_len < 100 ? a->refused_len : 100), a->refused);
        gp_metric_inc(c->m.bids_refused);
        return;
    }
    if (!a->has_score || a->alloc == NULL ||
        (!a->alloc_ok && gp_alloc_from_json_str(a->alloc, &a->plan, NULL) < 0) ||
        strcmp(a->plan.node, a->node) != 0 || strcmp(a->plan.job, a->job) != 0) {
        gp_metric_inc(c->m.protocol_errors[COORD_PROTO_BID]);
        return;
    }
    if (s_proposal_rejected(c, r, e, agent, &a->plan))
        return;
    gp_metric_inc(c->m.bids);
    size_t nl = strlen(a->node);
    s_bid_t *grown = e->nbids < S_MAX_CAND
                         ? realloc(e->bids, sizeof *grown * (size_t)(e->nbids + 1)) : NULL;
    char *text = grown ? malloc(nl + 1 + a->alloc_len + 1) : NULL;
    if (grown)
        e->bids = grown;
    if (text) {
        memcpy(text, a->node, nl + 1);
        memcpy(text + nl + 1, a->alloc, a->alloc_len);
        text[nl + 1 + a->alloc_len] = '\0';
        grown[e->nbids++] = (s_bid_t){ a->score, text };
    }
}

/* A string of the BIDS read in place into buf (a name: shorter than it). */
static bool s_scan_name(gp_jscan_t *s, char *buf, size_t size)
{
    const char *v;
    size_t n;
    if (!gp_jscan_str(s, &v, &n) || n >= size)
        return false;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return true;
}

/*
 * A BIDS read in place (jscan.h), the shape gpupool's agents write: an
 * object of "round" (an integer), "agent" (a string) and "bids", whose
 * answers hold "job" and "node" and either "refused" or "score" and
 * "alloc" (gp_alloc_scan's shape).  A round's bids are most of what the
 * leader reads in a burst (one per candidate node of every job): a tree
 * per message was a tenth of its CPU.  Two passes: the first only judges,
 * so that a message is taken whole or not at all; anything it does not
 * take (another key, a key twice, an escape, another type or shape) is
 * read from the tree (gp_wire_msg_body), which judges it exactly as
 * before.  With c NULL it judges and sets *round; else s_bid_one takes
 * every answer.
 */
static bool s_bids_scan(const char *text, size_t len, int64_t *round, coord_t *c, s_round_t *r,
                        const char *agent)
{
    gp_jscan_t s = GP_JSCAN_INIT(text, len);
    bool first = true, ok = gp_jscan_lit(&s, '{');
    unsigned seen = 0;
    const char *k;
    size_t kn;
    while (ok && gp_jscan_obj_next(&s, &k, &kn, &first, &ok)) {
        unsigned bit;
        if (gp_jscan_key_is(k, kn, "round")) {
            bit = 1;
            gp_jscan_ws(&s);
            ok = s.p < s.end && *s.p != '"' && gp_jscan_i64(&s, round) &&
                 !(s.p < s.end && (*s.p == '.' || *s.p == 'e' || *s.p == 'E'));
        } else if (gp_jscan_key_is(k, kn, "agent")) {
            bit = 2;
            const char *v;
            size_t n;
            ok = gp_jscan_str(&s, &v, &n);
        } else if (gp_jscan_key_is(k, kn, "bids")) {
            bit = 4;
            ok = gp_jscan_lit(&s, '[');
            if (ok && !gp_jscan_lit(&s, ']')) {
                do {
                    char job[GP_NAME_LEN], node[GP_NAME_LEN];
                    s_answer_t a = { 0 };
                    bool bfirst = true;
                    unsigned bseen = 0;
                    ok = gp_jscan_lit(&s, '{');
                    while (ok && gp_jscan_obj_next(&s, &k, &kn, &bfirst, &ok)) {
                        unsigned bb;
                        if (gp_jscan_key_is(k, kn, "job")) {
                            bb = 1;
                            ok = s_scan_name(&s, job, sizeof job);
                            a.job = job;
                        } else if (gp_jscan_key_is(k, kn, "node")) {
                            bb = 2;
                            ok = s_scan_name(&s, node, sizeof node);
                            a.node = node;
                        } else if (gp_jscan_key_is(k, kn, "refused")) {
                            bb = 4;
                            ok = gp_jscan_str(&s, &a.refused, &a.refused_len);
                        } else if (gp_jscan_key_is(k, kn, "score")) {
                            bb = 8;
                            ok = gp_jscan_num(&s, &a.score);
                            a.has_score = 1;
                        } else if (gp_jscan_key_is(k, kn, "alloc")) {
                            bb = 16;
                            gp_jscan_ws(&s);
                            a.alloc = s.p;
                            ok = gp_jscan_skip(&s) &&
                                 gp_alloc_scan(a.alloc, (size_t)(s.p - a.alloc), &a.plan);
                            a.alloc_len = (size_t)(s.p - a.alloc);
                            a.alloc_ok = 1;
                        } else {
                            ok = false;
                            break;
                        }
                        ok = ok && !(bseen & bb);
                        bseen |= bb;
                    }
                    /* job and node, then a refusal or a bid, nothing else */
                    ok = ok && (bseen & 3) == 3 && (bseen == (1 | 2 | 4) || bseen == (1 | 2 | 8 | 16));
                    if (ok && c)
                        s_bid_one(c, r, agent, &a);
                } while (ok && gp_jscan_lit(&s, ','));
                ok = ok && gp_jscan_lit(&s, ']');
            }
        } else {
            return false;
        }
        ok = ok && !(seen & bit);
        seen |= bit;
    }
    gp_jscan_ws(&s);
    return ok && s.p == s.end && (seen & 5) == 5;
}

/* The same answers from the tree: whatever a message holds, as before. */
static void s_bids_tree(coord_t *c, s_round_t *r, const char *agent, json_t *bids)
{
    size_t i;
    json_t *b;
    json_array_foreach(bids, i, b) {
        s_answer_t a = { 0 };
        json_t *score = json_object_get(b, "score"), *alloc = json_object_get(b, "alloc");
        a.job = json_string_value(json_object_get(b, "job"));
        a.node = json_string_value(json_object_get(b, "node"));
        a.refused = json_string_value(json_object_get(b, "refused"));
        a.refused_len = a.refused ? strlen(a.refused) : 0;
        a.has_score = json_is_number(score);
        a.score = json_number_value(score);
        char *text = NULL;
        if (a.job && a.node && !a.refused && gp_alloc_from_json(alloc, &a.plan, NULL) == 0) {
            a.alloc_ok = 1;
            a.alloc = text = json_dumps(alloc, JSON_COMPACT);
            a.alloc_len = text ? strlen(text) : 0;
        }
        s_bid_one(c, r, agent, &a);
        free(text);
    }
}

static void s_bids(coord_t *c, gp_wire_msg_t *msg)
{
    s_round_t *r = s_r(c);
    s_st(c)->orig_of = NULL;
    int64_t round = 0;
    json_t *bids = NULL;
    int scanned = msg->text && s_bids_scan(msg->text, msg->text_len, &round, NULL, NULL, NULL);
    if (!scanned) {
        gp_err_t err;
        json_t *body = gp_wire_msg_body(msg, &err);
        if (body == NULL) {   /* as gp_wire_recv drops it */
            char a[64];
            gp_metric_inc(c->m.protocol_errors[COORD_PROTO_MESSAGE]);
            gp_log_warn("message dropped agent=%s reason=\"%s\"",
                        gp_wire_printable(msg->identity, msg->identity_len, a, sizeof a), err.msg);
            return;
        }
        json_t *jr = json_object_get(body, "round");
        bids = json_object_get(body, "bids");
        if (!json_is_integer(jr) || !json_is_array(bids)) {
            gp_metric_inc(c->m.protocol_errors[COORD_PROTO_BIDS]);
            return;
        }
        round = json_integer_value(jr);
    }
    /* How long agents take to answer, late answers included: the deadline
     * follows it (twice the recent answer time, within [bid-timeout, 2 s]). */
    int64_t took = gp_mono_ms() - r->sent_ms;
    if (round == r->id || round == r->id - 1)
        r->answer_ms = r->answer_ms ? (r->answer_ms * 3 + took) / 4 : took;
    if (!r->active || round != r->id) {
        gp_metric_inc(c->m.late_bids);
        return;
    }
    char agent[GP_NAME_LEN];
    snprintf(agent, sizeof agent, "%.*s", (int)msg->identity_len, msg->identity);
    if (gp_strmap_get(r->agents, agent) == &s_asked) {
        gp_strmap_put(r->agents, agent, (void *)&s_answered);
        r->answered++;
    }
    if (scanned)
        s_bids_scan(msg->text, msg->text_len, &round, c, r, agent);
    else
        s_bids_tree(c, r, agent, bids);
    if (r->answered >= r->asked)
        r->deadline_ms = gp_mono_ms();   /* every agent answered: award now */
}

void coord_round_on_msg(coord_t *c, gp_wire_msg_t *msg)
{
    if (msg->type == GP_MSG_HELLO)
        s_hello(c, msg);
    else if (msg->type == GP_MSG_BIDS)
        s_bids(c, msg);
    else
        gp_metric_inc(c->m.protocol_errors[COORD_PROTO_UNEXPECTED_TYPE]);
}

/* ---------------------------------------------------------------- the round */

static void s_reset(s_round_t *r)
{
    for (int i = 0; i < r->n; i++)
        s_entry_clear(&r->e[i]);
    free(r->e);
    r->e = NULL;
    r->n = 0;
    free(r->jobs);
    r->jobs = NULL;
    r->njobs = 0;
    gp_strmap_destroy(&r->by_job);
    gp_strmap_destroy(&r->agents);
    r->active = 0;
    r->asked = r->answered = 0;
}

static void s_fail_waiting(coord_t *c, const char *why);

void coord_round_abort(coord_t *c, const char *why)
{
    s_round_t *r = s_r(c);
    if (c->round)
        s_fail_waiting(c, why);   /* and the commit in flight is stale */
    if (r == NULL || !r->active)
        return;
    gp_log_info("round aborted round=%lld jobs=%d reason=\"%s\"", (long long)r->id, r->n, why);
    s_offers_end(c, r);
    for (int i = 0; i < r->n; i++) {
        coord_cache_untentative(c, r->e[i].id);
        coord_job_t *j = r->e[i].offered ? NULL : coord_cache_job(c, r->e[i].id);
        if (j)
            j->in_round = 0;
    }
    s_reset(r);
}

static void s_backoff(coord_t *c, coord_job_t *j, int64_t now)
{
    j->backoff_ms = j->backoff_ms ? j->backoff_ms * 2 : 100;
    if (j->backoff_ms > 5000)
        j->backoff_ms = 5000;
    j->not_before_ms = now + j->backoff_ms;
    (void)c;
}

/* Fault injection (GPUPOOL_FAULT_BUSY_MS): hold the loop once in a long
 * CPU-bound batch, as ranking a huge queue on a slow machine would, so that
 * tests can check a long batch costs no leadership (the etcd client's
 * keep-alive thread refreshes the lease meanwhile). */
static void s_fault_busy(coord_t *c)
{
    if (c->fault_busy_ms <= 0)
        return;
    gp_log_warn("fault injection: busy %lld ms in a round", (long long)c->fault_busy_ms);
    int64_t until = gp_mono_ms() + c->fault_busy_ms;
    c->fault_busy_ms = 0;
    while (gp_mono_ms() < until)
        ;
    gp_log_warn("fault injection: busy batch over");
}

/* Phase 1: take up to `batch` queued jobs (not in a round, not backing
 * off, not gang members), highest priority first, then oldest
 * (coord_decide_batch); 0 when there is none. */
typedef struct {
    coord_job_t *j;
    s_offer_t *o;
} s_ref_t;

static int s_batch(coord_t *c, s_round_t *r, int64_t now)
{
    s_state_t *st = s_st(c);
    /* An offer whose job was stored meanwhile (by another coordinator),
     * or whose id holds a plan already (placed, the watch not there yet),
     * goes back to intake: it answers by comparison. */
    for (s_offer_t **p = &st->offers; *p;) {
        s_offer_t *o = *p;
        if (coord_cache_job(c, o->id) == NULL && coord_cache_held(c, o->id) == NULL) {
            p = &o->next;
            continue;
        }
        *p = o->next;
        st->noffers--;
        s_offer_end(c, o, 0);
    }
    size_t nq = coord_cache_queue_size(c), no = (size_t)st->noffers;
    if (nq + no == 0)
        return 0;
    coord_batch_key_t *keys = malloc(sizeof *keys * (nq + no));
    coord_job_t **queued = malloc(sizeof *queued * (nq + 1));
    s_ref_t *refs = malloc(sizeof *refs * (nq + no));
    size_t nk = 0;
    if (keys == NULL || queued == NULL || refs == NULL) {
        free(keys);
        free(queued);
        free(refs);
        return 0;
    }
    nq = coord_cache_queued(c, queued, nq);
    int freed = coord_cache_take_capacity_freed(c);
    int64_t wall = gp_wall_ms();
    for (size_t q = 0; q < nq; q++) {
        coord_job_t *j = queued[q];
        if (st->offered && gp_strmap_get(st->offered, j->id))
            continue;   /* stored meanwhile by another request while offered: after the offer */
        if (freed)
            j->not_before_ms = 0;   /* capacity came: waiting jobs retry now */
        /* a restart waits out its backoff (restart_at_ms, wall clock) */
        int64_t not_before = j->not_before_ms;
        if (j->restart_at_ms > wall && now + (j->restart_at_ms - wall) > not_before)
            not_before = now + (j->restart_at_ms - wall);
        refs[nk] = (s_ref_t){ j, NULL };
        keys[nk] = (coord_batch_key_t){
            .id = j->id, .priority = j->priority, .submitted_ms = j->submitted_ms,
            .not_before_ms = not_before, .in_round = j->in_round,
            .pending = j->state == GP_JOB_PENDING, .has_record = j->raw != NULL,
            .gang = j->gang[0] != '\0', .ref = &refs[nk],
        };
        nk++;
    }
    free(queued);
    /* The offers compete with the queued jobs by the same rule. */
    for (s_offer_t *o = st->offers; o; o = o->next) {
        refs[nk] = (s_ref_t){ NULL, o };
        keys[nk] = (coord_batch_key_t){
            .id = o->id, .priority = o->priority, .submitted_ms = o->submitted_ms,
            .pending = 1, .has_record = 1, .ref = &refs[nk],
        };
        nk++;
    }
    nk = coord_decide_batch(keys, nk, now, (size_t)c->cfg.batch);
    r->e = nk ? calloc(nk, sizeof *r->e) : NULL;
    if (r->e == NULL)
        nk = 0;
    /* An offer has one chance, this round: one it does not take goes back
     * to intake, to be stored alone and queued (its request is answered
     * now, not after every job ahead of it). */
    for (size_t k = 0; k < nk; k++)
        if (((const s_ref_t *)keys[k].ref)->o)
            ((const s_ref_t *)keys[k].ref)->o->taken = 1;
    for (s_offer_t **p = &st->offers; *p;) {
        s_offer_t *o = *p;
        *p = o->next;   /* the round's own now, or intake's */
        st->noffers--;
        if (!o->taken)
            s_offer_end(c, o, 0);
    }
    if (r->e == NULL) {
        free(keys);
        free(refs);
        return 0;
    }
    for (size_t k = 0; k < nk; k++) {
        const s_ref_t *ref = keys[k].ref;
        s_entry_t *e = &r->e[r->n++];
        if (ref->o) {
            gp_strlcpy(e->id, ref->o->id, sizeof e->id);
            e->prio = ref->o->priority;
            e->submitted_ms = ref->o->submitted_ms;
            e->offer = ref->o;
            e->offered = 1;
            continue;
        }
        gp_strlcpy(e->id, ref->j->id, sizeof e->id);
        e->prio = ref->j->priority;
        e->submitted_ms = ref->j->submitted_ms;
        e->mod_rev = ref->j->mod_rev;
    }
    free(keys);
    free(refs);
    r->by_job = gp_strmap_new();
    r->agents = gp_strmap_new();
    r->id++;
    r->started_ms = now;
    r->plan_rev = coord_cache_revision(c);
    r->active = 1;
    return r->n;
}

/* The facts coord_decide_job asks for, from the coordinator's modules. */
typedef struct {
    coord_t *c;
    const gp_job_t *orig, *here;
    const char *team;
    const gp_alloc_t *plan;       /* the best candidate's; the target's once handed off */
    coord_usage_t *usage;
    gp_alloc_t there;             /* the plan in the hand-off's target region */
} s_facts_t;

static int s_fact_handoff(void *ctx, int fits_here, char *target, size_t tsize, char *why,
                          size_t wsize)
{
    s_facts_t *f = ctx;
    int to = coord_handoff_target(f->c, f->orig, fits_here, target, tsize, why, wsize, &f->there);
    if (to)
        f->plan = &f->there;   /* the quota is checked against it */
    return to;
}

static int s_fact_preempt(void *ctx, char *why, size_t wsize)
{
    s_facts_t *f = ctx;
    return coord_preempt(f->c, f->here, why, wsize);
}

static int s_fact_over_quota(void *ctx, char *why, size_t wsize)
{
    s_facts_t *f = ctx;
    return coord_quota_exceeded(f->c, f->usage, f->team, f->plan, why, wsize);
}

/* Phase 2 for an offer (coord_round_offer): bid when it fits here now;
 * else it is not placed, and intake stores it (hand-offs, preemption and
 * waiting are the queued job's path). */
static int s_rank_offer(coord_t *c, s_round_t *r, s_entry_t *e, coord_usage_t *usage, int *ncand)
{
    s_state_t *st = s_st(c);
    gp_err_t err;
    e->spec = json_incref(e->offer->spec);
    if (s_parse_job(st, e, c->cfg.region, &err) < 0) {
        snprintf(e->reason, sizeof e->reason, "bad job record");
        return 0;
    }
    gp_strmap_put(r->by_job, e->id, e);
    if (coord_cache_quota(c, e->offer->owner) != NULL) {
        /* its team got a quota since intake took it: the queued job's path */
        snprintf(e->reason, sizeof e->reason, "its team %.64s has a quota", e->offer->owner);
        return 0;
    }
    int k = (int)(c->cfg.candidates < S_MAX_CAND ? c->cfg.candidates : S_MAX_CAND);
    gp_err_set(&err, GP_ERR_NOTFOUND, "no capacity for it in region %s", c->cfg.region);
    int allowed = st->orig.regions.n == 0 || gp_strlist_has(&st->orig.regions, c->cfg.region);
    if (!allowed || gp_placement_rank(coord_cache_engine(c), &st->here, st->cand, k, ncand, &err) < 0 ||
        *ncand == 0) {
        *ncand = 0;
        snprintf(e->reason, sizeof e->reason, "no node fits here: %.200s", err.msg);
        return 0;
    }
    if (coord_cache_held(c, e->id) != NULL || coord_cache_hold(c, &st->cand[0].plan) < 0) {
        *ncand = 0;   /* no plan of its own: it must not release another's */
        snprintf(e->reason, sizeof e->reason, "its plan could not be held");
        return 0;
    }
    coord_quota_charge(c, usage, e->offer->owner, &st->cand[0].plan);
    return 1;
}

/* Phase 2 for one job: rank its candidate nodes (into st->cand, *ncand of
 * them), decide (coord_decide_job) and, when its candidates are to be
 * asked for bids, hold the best plan and return 1. */
static int s_rank(coord_t *c, s_round_t *r, s_entry_t *e, coord_usage_t *usage, int *ncand)
{
    s_state_t *st = s_st(c);
    coord_job_t *j = coord_cache_job(c, e->id);
    gp_err_t err;
    *ncand = 0;
    if (e->offer)
        return s_rank_offer(c, r, e, usage, ncand);
    e->spec = j ? json_incref(j->spec) : NULL;
    e->sized = 0;
    if (s_parse_job(st, e, c->cfg.region, &err) < 0) {
        snprintf(e->reason, sizeof e->reason, "bad job record");
        return 0;
    }
    if (j->rightsize == GP_RIGHTSIZE_AUTO) {   /* rightsize.c */
        coord_rightsize_apply(c, j, &st->orig);
        e->sized = 1;
        e->sized_mem_mib = st->orig.mem_mib;
        e->sized_compute_permille = st->orig.compute_permille;
        st->here.mem_mib = st->orig.mem_mib;
        st->here.compute_permille = st->orig.compute_permille;
    }
    j->in_round = 1;
    gp_strmap_put(r->by_job, e->id, e);
    int k = (int)(c->cfg.candidates < S_MAX_CAND ? c->cfg.candidates : S_MAX_CAND);
    gp_err_set(&err, GP_ERR_NOTFOUND, "no capacity for it in region %s", c->cfg.region);
    int allowed = st->orig.regions.n == 0 || gp_strlist_has(&st->orig.regions, c->cfg.region);
    int fits = allowed && gp_placement_rank(coord_cache_engine(c), &st->here, st->cand, k, ncand, &err) == 0 &&
               *ncand > 0;
    if (!fits)
        *ncand = 0;
    s_facts_t f = { .c = c, .orig = &st->orig, .here = &st->here, .team = j->owner,
                    .plan = fits ? &st->cand[0].plan : NULL, .usage = usage };
    coord_job_facts_t facts = { s_fact_handoff, s_fact_preempt, s_fact_over_quota, &f };
    coord_decision_t d = coord_decide_job(fits, err.msg,
                                          st->orig.prefer_regions.n || st->orig.prefer_clouds.n,
                                          &facts, e->handoff, sizeof e->handoff, e->reason,
                                          sizeof e->reason);
    if (d == COORD_DECIDE_PREEMPTED)
        e->awarded = 1;
    if (d != COORD_DECIDE_HANDOFF)
        e->handoff[0] = '\0';
    if (d != COORD_DECIDE_BID) {
        *ncand = 0;
        return 0;
    }
    coord_quota_charge(c, usage, j->owner, &st->cand[0].plan);
    coord_cache_hold(c, &st->cand[0].plan);
    return 1;
}

/* Phase 3, gathering: add the job to the call for bids of each agent that
 * hosts one of its candidate nodes (one entry per agent and job). */
static void s_call_add(coord_t *c, gp_strmap_t *calls, s_entry_t *e, const gp_job_t *here,
                       const gp_candidate_t *cand, int ncand, int64_t now)
{
    json_t *spec = NULL;
    for (int ci = 0; ci < ncand; ci++) {
        coord_node_t *cn = coord_cache_node(c, cand[ci].plan.node, 0);
        if (cn == NULL || cn->agent[0] == '\0' || now - cn->agent_seen_ms > S_AGENT_STALE_MS)
            continue;
        json_t *jobs = gp_strmap_get(calls, cn->agent);
        if (jobs == NULL) {
            jobs = json_array();
            gp_strmap_put(calls, cn->agent, jobs);
        }
        json_t *last = json_array_get(jobs, json_array_size(jobs) - 1);
        const char *lj = last ? json_string_value(json_object_get(last, "job")) : NULL;
        if (lj == NULL || strcmp(lj, e->id) != 0) {
            if (spec == NULL)
                spec = gp_job_to_json(here);
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

/* Phase 3, sending: one CFB per agent (takes the calls' arrays). */
static void s_calls_send(coord_t *c, s_round_t *r, gp_strmap_t *calls)
{
    for (gp_strmap_iter_t it = gp_strmap_first(calls); it.key; it = gp_strmap_next(calls, it)) {
        json_t *body = json_pack("{s:I,s:o}", "round", (json_int_t)r->id, "jobs", it.value);
        json_t *shapes = coord_shapes_wire(c);   /* the agents score with them too */
        if (body && shapes)
            json_object_set_new(body, "shapes", shapes);
        else
            json_decref(shapes);
        gp_err_t err;
        if (body == NULL)
            gp_err_set(&err, GP_ERR_NOMEM, "cannot build the call for bids");
        if (body && coord_wire_send(c, it.key, GP_MSG_CFB, body, &err) == 0) {
            gp_strmap_put(r->agents, it.key, (void *)&s_asked);
            r->asked++;
        } else {
            gp_log_warn("call for bids not sent agent=%s err=\"%s\"", it.key, err.msg);
        }
        json_decref(body);
    }
}

/* How long a round waits for bids: twice the agents' recent answer time,
 * within [bid-timeout, 2 s]. */
static int64_t s_bid_wait(int64_t answer_ms, int64_t bid_timeout_ms)
{
    int64_t wait = 2 * answer_ms;
    if (wait < bid_timeout_ms)
        wait = bid_timeout_ms;
    return wait > 2000 ? 2000 : wait;
}

static int s_open(coord_t *c, int64_t now)
{
    s_round_t *r = s_r(c);
    if (s_batch(c, r, now) == 0)
        return 0;
    s_fault_busy(c);
    gp_strmap_t *calls = gp_strmap_new();   /* agent -> json CFB jobs array */
    coord_usage_t *usage = coord_quota_usage(c);
    for (int i = 0; calls && i < r->n; i++) {
        int ncand;
        if (s_rank(c, r, &r->e[i], usage, &ncand))
            s_call_add(c, calls, &r->e[i], &s_st(c)->here, s_st(c)->cand, ncand, now);
    }
    if (calls)
        s_calls_send(c, r, calls);
    gp_strmap_destroy(&calls);
    coord_quota_usage_free(&usage);
    r->sent_ms = gp_mono_ms();
    r->deadline_ms = r->asked ? r->sent_ms + s_bid_wait(r->answer_ms, c->cfg.bid_timeout_ms) : 0;
    return 1;
}

/* An award: the allocation to write and its keys. */
typedef struct {
    s_entry_t *e;
    char *alloc_text;
    char akey[GP_KEY_MAX], jkey[GP_KEY_MAX];
    int ok;
} s_award_t;

/* 0 when the award may still be written: its job unchanged (an offer:
 * still not stored) and its node still known. */
static int s_award_valid(coord_t *c, const s_entry_t *e)
{
    coord_job_t *j = coord_cache_job(c, e->id);
    if (e->offer ? j != NULL : j == NULL || j->mod_rev != e->mod_rev || !j->queued)
        return -1;   /* cancelled or changed meanwhile; an offer stored meanwhile */
    return e->best && coord_cache_node(c, e->best->node, 0) == NULL ? -1 : 0;
}

static int s_prepare(coord_t *c, s_award_t *aw)
{
    s_entry_t *e = aw->e;
    if (s_award_valid(c, e) < 0)
        return -1;
    gp_ebuf_t text = { 0 };   /* json_dumps's bytes of gp_alloc_to_json, without the tree */
    if (gp_alloc_dump_buf(e->best, &text) < 0 || text.p == NULL) {
        gp_ebuf_free(&text);
        return -1;
    }
    aw->alloc_text = text.p;   /* owned: free() */
    gp_key_alloc(aw->akey, c->cfg.prefix, e->best->node, e->id);
    gp_key_job(aw->jkey, c->cfg.prefix, e->id);
    return 0;
}

static int s_cmp_award_node(const void *pa, const void *pb)
{
    const s_award_t *a = *(s_award_t *const *)pa, *b = *(s_award_t *const *)pb;
    return strcmp(a->e->best->node, b->e->best->node);
}

/* Commit awards (sorted by node) in waves.  A wave takes up to
 * S_TXN_AWARDS of each node's remaining awards, packs them into
 * transactions of at most S_TXN_AWARDS awards (whole node chunks: a node is
 * in one transaction per wave, so the wave's transactions never conflict
 * and run in parallel), and runs them in the background.  A committed
 * chunk tells the node's new fence (the transaction's revision), which the
 * node's next chunk compares in the next wave; a failed chunk ends the
 * node's awards for this round. */
typedef struct {
    int from, to;     /* awards [from, to) of one node */
    int next;         /* first award not committed yet */
    int failed;
} s_chunk_t;

typedef struct {
    coord_t *c;
    s_award_t **aw;               /* sorted by node */
    s_chunk_t *nodes;
    int nn;
    int64_t plan_rev;             /* the cache revision the round's plans saw */
    /* the wave being built: its segments (one node's chunk each) */
    gp_etcd_batch_t *b;
    gp_txnb_t *t;
    int nseg, ntxn, in_txn;
    int *seg_node, *seg_txn, *seg_to;
    int *txn_idx;                 /* transaction -> its index in the batch, or -1 */
    gp_err_t add_err;             /* why the last transaction not queued was not */
    int wave, lost;
    int stale;                    /* the round state was aborted meanwhile (coord_round_abort) */
    int64_t hold_until_ms;        /* the wave built is held until then (s_fault_hold) */
    int64_t t0;
} s_commit_t;

/* A closed round finishing in the background: its commit's waves (in a
 * group, s_group_t), then its pending reasons and hand-offs (s_close). */
typedef struct s_closing {
    coord_t *c;
    s_round_t r;                  /* the round's entries (detached from the live round) */
    s_award_t *aw;
    int naw, prep_failed;
    int64_t bids_ms, commit_ns;
    int waiting;                  /* its commit has not started */
    int64_t term;                 /* the leader fence it was decided under */
    /* reasons and hand-offs */
    gp_etcd_batch_t *rb;
    char (*ids)[GP_NAME_LEN];
    int *idx, *hidx, nids;
    struct s_closing *next;       /* the round closed after it */
} s_closing_t;

/* One commit in flight: the awards of every round that closed while the
 * previous commit was in the air, together (s_commit_kick), fenced as the
 * oldest of them (its plan revision is the lowest). */
typedef struct s_group {
    coord_t *c;
    s_commit_t k;
    s_award_t **aw;               /* the rounds' awards, sorted by node */
    s_closing_t **rounds;
    int nrounds;
} s_group_t;

/* Rounds decided and waiting for their commit: when this many wait, the
 * live round waits to close. */
#define S_CLOSING_MAX 16

static void s_wave_flush(s_commit_t *k)
{
    if (k->in_txn == 0)
        return;
    /* The batch numbers what it queued: a transaction it refused has no
     * index, and the next ones' are not their count. */
    k->txn_idx[k->ntxn] = gp_txnb_add(k->t, k->b, &k->add_err);
    gp_txnb_reset(k->t);
    k->ntxn++;
    k->in_txn = 0;
}

/* The fence of a node's commit: every allocation created on it up to the
 * round's plan revision, or up to our own last commit on it, is known. */
static int64_t s_node_fence(coord_t *c, const char *node, int64_t plan_rev)
{
    coord_node_t *cn = coord_cache_node(c, node, 0);
    return cn && cn->fence_rev > plan_rev ? cn->fence_rev : plan_rev;
}

/* Add node g's next chunk to the wave: the leader fence once per
 * transaction, the node's fence, and per award the record's compare and
 * the allocation's put. */
static void s_wave_add(s_commit_t *k, int g)
{
    s_chunk_t *nd = &k->nodes[g];
    int take = nd->to - nd->next > S_TXN_AWARDS ? S_TXN_AWARDS : nd->to - nd->next;
    if (k->in_txn > 0 && k->in_txn + take > S_TXN_AWARDS)
        s_wave_flush(k);
    if (k->in_txn == 0)
        coord_txn_fence(k->t, k->c);
    const char *node = k->aw[nd->next]->e->best->node;
    coord_txn_node_fence(k->t, k->c, node, s_node_fence(k->c, node, k->plan_rev));
    for (int a = nd->next; a < nd->next + take; a++) {
        s_entry_t *e = k->aw[a]->e;
        /* An offer: the record must not exist (intake's compare), and it is
         * put after the allocation (one revision; the cache applies the
         * allocation first and never queues the job). */
        gp_txnb_cmp(k->t, k->aw[a]->jkey, e->offer ? GP_ETCD_CMP_CREATE : GP_ETCD_CMP_MOD,
                    e->offer ? 0 : e->mod_rev);
        gp_txnb_put(k->t, k->aw[a]->akey, k->aw[a]->alloc_text);
        if (e->offer) {
            gp_txnb_put(k->t, k->aw[a]->jkey, e->offer->text);
            /* the watch may bring it before the commit's answer: not parsed again */
            coord_cache_expect_record(k->c, e->id, e->offer->text, e->offer->spec);
        }
    }
    k->seg_node[k->nseg] = g;
    k->seg_txn[k->nseg] = k->ntxn;
    k->seg_to[k->nseg] = nd->next + take;
    k->nseg++;
    k->in_txn += take;
}

/* Errors after which etcd surely did not apply the transaction. */
static int s_not_applied(const gp_err_t *err)
{
    return err->code == GP_ERR_NOSPACE || err->code == GP_ERR_AUTH || err->code == GP_ERR_INVALID;
}

static void s_seg_failed(s_commit_t *k, int sgi, int errored, int maybe_applied,
                         const gp_err_t *err)
{
    coord_t *c = k->c;
    s_chunk_t *nd = &k->nodes[k->seg_node[sgi]];
    nd->failed = 1;
    if (sgi == 0 || k->seg_txn[sgi - 1] != k->seg_txn[sgi]) {
        gp_metric_inc(c->m.commit_conflicts);
        if (errored) {
            gp_log_warn("commit failed, jobs requeued err=\"%s\"", err->msg);
            coord_store_write_failed(c, err);
        }
    }
    /* A failed write, not a lost race: its jobs back off; when etcd may
     * have applied it, they wait out of the queue until recovery.c knows. */
    for (int a = nd->next; errored && a < k->seg_to[sgi]; a++) {
        s_entry_t *e = k->aw[a]->e;
        snprintf(e->reason, sizeof e->reason, "commit failed: %.100s", err->msg);
        if (maybe_applied)
            coord_cache_doubt(c, e->id, e->best->node);
    }
}

static void s_seg_committed(s_commit_t *k, int sgi, int64_t revision)
{
    coord_t *c = k->c;
    s_chunk_t *nd = &k->nodes[k->seg_node[sgi]];
    /* Everything on the node is now known up to this revision: record it
     * at once for the next wave and the next round. */
    coord_node_t *cn = coord_cache_node(c, k->aw[nd->next]->e->best->node, 0);
    if (cn && cn->fence_rev < revision && !k->stale)
        cn->fence_rev = revision;   /* (after an abort, the cache may not hold our plans: no) */
    int64_t now_wall = gp_wall_ms();
    for (int a = nd->next; a < k->seg_to[sgi]; a++) {
        s_entry_t *e = k->aw[a]->e;
        k->aw[a]->ok = 1;
        e->awarded = 1;
        coord_cache_placed(c, e->id, revision);
        coord_job_t *j = coord_cache_job(c, e->id);
        int64_t submitted = e->offer ? e->offer->submitted_ms : j ? j->submitted_ms : 0;
        if (e->offer)
            e->offer->revision = revision;
        gp_metric_inc(c->m.placements);
        if (submitted)
            gp_metric_observe(c->m.submit_to_commit_seconds,
                              (double)(now_wall - submitted) / 1000.0);
    }
    nd->next = k->seg_to[sgi];
}

static void s_fault_pause(coord_t *c)
{
    if (c->fault_pause_ms <= 0)
        return;
    /* Fault injection (GPUPOOL_FAULT_COMMIT_PAUSE_MS): stall once between
     * deciding and committing, the whole process (keep-alives included),
     * as a stopped VM would, so that tests can check a leader deposed
     * meanwhile is fenced. */
    gp_log_warn("fault injection: pausing %lld ms before a commit", (long long)c->fault_pause_ms);
    gp_stop_self_ms(c->fault_pause_ms);
    c->fault_pause_ms = 0;
}

/* Fault injection (GPUPOOL_FAULT_COMMIT_LOST): once, the commit's answers
 * are lost, as when a connection breaks after etcd received the request:
 * "applied" runs the wave and then forgets what etcd said, "dropped" never
 * sends it.  Either way the outcome looks unknown, and tests check that
 * recovery.c settles it without placing a job twice or losing one.  With
 * ",grouped" after the mode, the fault waits for a commit of several
 * rounds' awards together (nrounds: the commit's).  Returns 0 (no fault),
 * 1 (applied) or 2 (dropped). */
static int s_fault_lost(coord_t *c, int nrounds)
{
    const char *mode = c->fault_commit_lost;
    if (mode == NULL)
        return 0;
    size_t len = strcspn(mode, ",");
    if (mode[len] && nrounds < 2)
        return 0;   /* ",grouped": not this commit */
    c->fault_commit_lost = NULL;
    gp_log_warn("fault injection: the answers of a commit are lost (%.*s) rounds=%d", (int)len,
                mode, nrounds);
    return len == 7 && strncmp(mode, "dropped", len) == 0 ? 2 : 1;
}

/* The outcomes of the wave that ran (or was never sent: each failed). */
static void s_wave_results(s_commit_t *k, int sent)
{
    for (int sgi = 0; sgi < k->nseg; sgi++) {
        const gp_etcd_result_t *res = NULL;
        gp_err_t err;
        int idx = k->txn_idx[k->seg_txn[sgi]];
        if (idx < 0) {   /* never queued */
            s_seg_failed(k, sgi, 1, 0, &k->add_err);
            continue;
        }
        int errored = k->lost || !sent ? 1 : gp_etcd_batch_result(k->b, (size_t)idx, &res, &err) < 0;
        if (k->lost)
            gp_err_set(&err, GP_ERR_TRANSPORT, "the answer was lost (fault injection)");
        else if (!sent)
            gp_err_set(&err, GP_ERR_TRANSPORT, "the commit could not be sent");
        if (errored || !res->succeeded)
            s_seg_failed(k, sgi, errored, errored && k->lost != 2 && sent && !s_not_applied(&err),
                         &err);
        else
            s_seg_committed(k, sgi, res->revision);
    }
    gp_etcd_batch_destroy(&k->b);
    k->wave++;
}

static void s_commit_done(s_group_t *g);
static void s_wave_landed(gp_etcd_batch_t *b, void *arg);
static void s_wave_next(s_group_t *g);

/* Fault injection (GPUPOOL_FAULT_COMMIT_HOLD_MS): once, a commit's first
 * wave is held that long before it is sent, the loop running meanwhile
 * (keep-alives, watches, rounds deciding and waiting behind it), as a
 * stalled link would hold it, so that tests can take leadership away while
 * rounds wait for a commit whatever the machine's speed.  Returns whether
 * the wave is held. */
static int s_fault_hold(s_commit_t *k)
{
    if (k->c->fault_hold_ms <= 0)
        return 0;
    gp_log_warn("fault injection: holding a commit %lld ms before sending it",
                (long long)k->c->fault_hold_ms);
    k->hold_until_ms = gp_mono_ms() + k->c->fault_hold_ms;
    k->c->fault_hold_ms = 0;
    return 1;
}

/* Send the wave built; 0 if it is on its way (s_wave_landed goes on). */
static int s_wave_send(s_group_t *g)
{
    s_commit_t *k = &g->k;
    k->hold_until_ms = 0;
    return k->lost != 2 && gp_etcd_batch_size(k->b) > 0 &&
                   gp_etcd_batch_start(k->b, 64, s_wave_landed, g, NULL) == 0
               ? 0
               : -1;
}

/* A held wave (s_fault_hold) goes when due, or now if now_ms is 0; one
 * that cannot be sent fails, as in s_wave_next. */
static void s_hold_end(s_group_t *g, int64_t now_ms)
{
    if (g == NULL || g->k.hold_until_ms == 0 || (now_ms && now_ms < g->k.hold_until_ms))
        return;
    if (s_wave_send(g) == 0)
        return;
    s_wave_results(&g->k, 0);
    s_wave_next(g);
}

/* Build the next wave and send it off; when nothing is left to commit,
 * the rounds go on (s_commit_done). */
static void s_wave_next(s_group_t *g)
{
    s_commit_t *k = &g->k;
    for (;;) {
        k->b = k->t ? gp_etcd_batch_new(k->c->etcd) : NULL;
        if (k->b == NULL)
            break;
        k->nseg = k->ntxn = k->in_txn = 0;
        gp_txnb_reset(k->t);
        for (int nd = 0; nd < k->nn; nd++)
            if (!k->nodes[nd].failed && k->nodes[nd].next < k->nodes[nd].to)
                s_wave_add(k, nd);
        s_wave_flush(k);
        if (k->nseg == 0) {
            gp_etcd_batch_destroy(&k->b);
            break;
        }
        if (k->wave == 0)
            s_fault_pause(k->c);
        k->lost = s_fault_lost(k->c, g->nrounds);
        if (k->wave == 0 && k->lost != 2 && s_fault_hold(k))
            return;   /* coord_round_tick sends it (s_wave_send) */
        if (s_wave_send(g) == 0)
            return;   /* s_wave_landed goes on */
        /* Never sent (dropped by the fault, nothing queued, or refused at
         * once): every segment fails.  A "dropped" wave was not applied,
         * but its jobs are treated as in doubt, as a lost answer is. */
        if (k->lost == 2) {
            k->lost = 1;
            s_wave_results(k, 1);
        } else {
            s_wave_results(k, 0);
        }
    }
    s_commit_done(g);
}

static void s_wave_landed(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    s_group_t *g = arg;
    s_wave_results(&g->k, 1);
    s_wave_next(g);
}

/* Start committing the awards of the group's rounds. */
static void s_commit_start(s_group_t *g, int64_t plan_rev)
{
    s_award_t **aw = g->aw;
    int n = 0;
    for (int i = 0; i < g->nrounds; i++)
        for (int a = 0; aw && a < g->rounds[i]->naw; a++)
            if (s_award_valid(g->c, g->rounds[i]->aw[a].e) == 0)   /* again: it waited */
                aw[n++] = &g->rounds[i]->aw[a];
    s_commit_t *k = &g->k;
    *k = (s_commit_t){ .c = g->c, .aw = aw, .plan_rev = plan_rev, .t0 = gp_mono_ns() };
    if (n > 0) {
        qsort(aw, (size_t)n, sizeof *aw, s_cmp_award_node);
        k->nodes = calloc((size_t)n, sizeof *k->nodes);
        k->seg_node = calloc((size_t)n, sizeof *k->seg_node);
        k->seg_txn = calloc((size_t)n, sizeof *k->seg_txn);
        k->seg_to = calloc((size_t)n, sizeof *k->seg_to);
        k->txn_idx = calloc((size_t)n, sizeof *k->txn_idx);
        k->t = gp_txnb_new();
        if (k->nodes == NULL || k->seg_node == NULL || k->seg_txn == NULL || k->seg_to == NULL ||
            k->txn_idx == NULL)
            gp_txnb_destroy(&k->t);   /* out of memory: nothing is committed */
        for (int i = 0; k->t && i < n;) {
            int e = i;
            while (e < n && !strcmp(aw[e]->e->best->node, aw[i]->e->best->node))
                e++;
            k->nodes[k->nn++] = (s_chunk_t){ i, e, i, 0 };
            i = e;
        }
    }
    s_wave_next(g);
}

static void s_commit_free(s_commit_t *k)
{
    gp_etcd_batch_destroy(&k->b);
    free(k->nodes);
    free(k->seg_node);
    free(k->seg_txn);
    free(k->seg_to);
    free(k->txn_idx);
    k->nodes = NULL;
    k->seg_node = k->seg_txn = k->seg_to = k->txn_idx = NULL;
    gp_txnb_destroy(&k->t);
}

/* Pending reasons, written once per change so that `gpupool get` says why,
 * and hand-offs, in one batch in the background.  1 when s_reasons_landed
 * goes on; 0 when nothing is to be written, or it could not be sent (its
 * per-op outcomes say so and are read at once). */
static void s_reasons_landed(gp_etcd_batch_t *b, void *arg);
static void s_reasons_done(s_closing_t *cl);

static int s_write_reasons(s_closing_t *cl)
{
    coord_t *c = cl->c;
    s_round_t *r = &cl->r;
    cl->rb = gp_etcd_batch_new(c->etcd);
    cl->ids = calloc((size_t)r->n + 1, GP_NAME_LEN);
    cl->idx = calloc((size_t)r->n + 1, sizeof *cl->idx);
    cl->hidx = calloc((size_t)r->n + 1, sizeof *cl->hidx);
    cl->nids = 0;
    if (cl->rb == NULL || cl->ids == NULL || cl->idx == NULL || cl->hidx == NULL) {
        gp_etcd_batch_destroy(&cl->rb);
        return 0;
    }
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        coord_job_t *j = coord_cache_job(c, e->id);
        cl->hidx[i] = -2;   /* no hand-off tried */
        if (e->awarded || e->late || j == NULL || j->mod_rev != e->mod_rev)
            continue;   /* placed, retried at once, or changed meanwhile */
        if (e->handoff[0]) {
            cl->hidx[i] = coord_handoff_add(c, cl->rb, e->id, e->handoff, e->reason);
        } else {
            gp_strlcpy(cl->ids[cl->nids], e->id, GP_NAME_LEN);
            cl->idx[cl->nids] = coord_set_reason(c, cl->rb, j, e->reason);
            cl->nids++;
        }
    }
    if (gp_etcd_batch_size(cl->rb) == 0) {
        gp_etcd_batch_destroy(&cl->rb);
        return 0;
    }
    for (int i = 0; i < r->n && c->fault_handoff_pause_ms > 0; i++) {
        if (cl->hidx[i] < 0)
            continue;
        /* Fault injection (GPUPOOL_FAULT_HANDOFF_PAUSE_MS): stall once
         * before a hand-off commits, so that tests can change the job
         * meanwhile and check that a refused hand-off strands nothing. */
        gp_log_warn("fault injection: pausing %lld ms before a hand-off",
                    (long long)c->fault_handoff_pause_ms);
        usleep((useconds_t)(c->fault_handoff_pause_ms * 1000));
        c->fault_handoff_pause_ms = 0;
    }
    return gp_etcd_batch_start(cl->rb, 64, s_reasons_landed, cl, NULL) == 0;
}

static void s_reasons_landed(gp_etcd_batch_t *b, void *arg)
{
    (void)b;
    s_reasons_done(arg);
}

/* Hand the live round's entries to a copy (s_close finishes it). */
static void s_detach(s_round_t *r)
{
    r->e = NULL;
    r->n = 0;
    r->jobs = NULL;
    r->njobs = 0;
    r->by_job = NULL;
    r->agents = NULL;
    r->active = 0;
    r->asked = r->answered = 0;
}

static void s_commit_kick(coord_t *c);

static void s_open_next(coord_t *c, int64_t now)
{
    if (!coord_is_leader(c) || coord_store_full(c))
        return;
    c->round->kick = 0;
    coord_gang_round(c, now);
    s_open(c, now);
}

/* Phase 4 for one job: its plan (coord_decide_award).  The leader's held
 * plan stands when its node was bid on: the batch's plans were made
 * together and do not collide.  When that node refused (or did not
 * answer), the job moves to its best-scoring other bid: the agent's device
 * plan if it still fits, else the leader's plan for that node.  0 with
 * e->best set, or -1 (why in e->reason; e->late when no bid came in
 * time). */
typedef struct {
    coord_t *c;
    s_entry_t *e;
    int dropped;                  /* the held plan is out of the engine */
    int parsed;                   /* the scratch jobs hold e's job */
    gp_alloc_t plan;              /* the plan held */
} s_try_t;

static int s_try_bid(void *ctx, int i)
{
    s_try_t *t = ctx;
    coord_t *c = t->c;
    if (!t->dropped)
        coord_cache_untentative(c, t->e->id);   /* its node did not bid */
    t->dropped = 1;
    if (gp_alloc_from_json_str(S_BID_ALLOC(&t->e->bids[i]), &t->plan, NULL) < 0)
        return -1;
    if (coord_cache_hold(c, &t->plan) == 0)
        return 0;
    if (!t->parsed && s_parse_job(s_st(c), t->e, c->cfg.region, NULL) < 0)
        return -1;
    t->parsed = 1;
    double score;
    return gp_placement_score_node(coord_cache_engine(c), t->plan.node, &s_st(c)->here, &score, &t->plan,
                                   NULL) == 0 && coord_cache_hold(c, &t->plan) == 0 ? 0 : -1;
}

static int s_choose(coord_t *c, s_entry_t *e)
{
    coord_bid_key_t keys[S_MAX_CAND];
    int order[S_MAX_CAND];
    for (int b = 0; b < e->nbids; b++)
        keys[b] = (coord_bid_key_t){ e->bids[b].node, e->bids[b].score };
    const gp_alloc_t *held = coord_cache_held(c, e->id);
    s_try_t t = { .c = c, .e = e };
    int late = 0;
    int got = coord_decide_award(held ? held->node : NULL, keys, e->nbids, order, s_try_bid, &t,
                                 &late, e->reason, sizeof e->reason);
    if (got == COORD_AWARD_HELD)
        t.plan = *held;
    e->late = late;
    if (got == -1) {
        coord_cache_untentative(c, e->id);
        return -1;
    }
    e->best = malloc(sizeof *e->best);
    if (e->best == NULL) {
        coord_cache_untentative(c, e->id);
        snprintf(e->reason, sizeof e->reason, "out of memory");
        return -1;
    }
    *e->best = t.plan;
    return 0;
}

/* Phase 6: one AWARD hint per agent for the committed awards; the plans of
 * the others are dropped from the engine. */
static void s_hints(coord_t *c, s_award_t *aw, int naw)
{
    gp_strmap_t *hints = gp_strmap_new();
    for (int i = 0; i < naw; i++) {
        if (!aw[i].ok) {
            coord_cache_untentative(c, aw[i].e->id);
            continue;
        }
        coord_node_t *cn = coord_cache_node(c, aw[i].e->best->node, 0);
        if (hints && cn && cn->agent[0]) {
            json_t *jobs = gp_strmap_get(hints, cn->agent);
            if (jobs == NULL) {
                jobs = json_array();
                gp_strmap_put(hints, cn->agent, jobs);
            }
            json_array_append_new(jobs, json_pack("{s:s,s:s}", "job", aw[i].e->id, "node",
                                                  aw[i].e->best->node));
        }
    }
    for (gp_strmap_iter_t it = hints ? gp_strmap_first(hints) : (gp_strmap_iter_t){ 0 }; it.key;
         it = gp_strmap_next(hints, it)) {
        json_t *body = json_pack("{s:o}", "jobs", it.value);
        coord_wire_send(c, it.key, GP_MSG_AWARD, body, NULL);
        json_decref(body);
    }
    gp_strmap_destroy(&hints);
}

/* The round's jobs leave it: placed ones reset their backoff, the ones that
 * lost a race retry at once, the late ones soon, the others back off.
 * Returns how many were placed. */
static int s_release(coord_t *c, s_round_t *r, int64_t now)
{
    int placed = 0;
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        /* An offer's job, when stored since, is queued apart from this
         * round (perhaps in the next one): not released here. */
        coord_job_t *j = e->offered ? NULL : coord_cache_job(c, e->id);
        if (j == NULL)
            continue;
        j->in_round = 0;
        if (e->awarded) {
            placed++;
            j->backoff_ms = 0;
        } else if (e->nbids > 0 && e->reason[0] == '\0') {
            j->not_before_ms = 0;   /* lost a race: retry at once */
        } else if (e->late) {
            j->not_before_ms = now + 50;
        } else {
            s_backoff(c, j, now);
        }
    }
    return placed;
}

/* Whether the live round may close now (s_close; coord_round_deadline). */
static int s_may_close(coord_t *c)
{
    s_state_t *st = s_st(c);
    s_round_t *r = s_r(c);
    if (st->nwaiting >= S_CLOSING_MAX)
        return 0;   /* once the commit in flight has landed */
    /* Every agent answered: now.  Past the deadline with answers missing:
     * not before the commits in flight have landed (the slow agent's bids
     * may come meanwhile, as they could when rounds closed in turn). */
    if (st->committing && st->committing->k.stale)
        return 0;   /* after an abort: once the stale commit has landed (s_fail_waiting) */
    return r->answered >= r->asked || (st->committing == NULL && st->nwaiting == 0);
}

/* Phase 4 here; 5 and 6 in the background.  The awards are decided now and
 * the next round opens at once (its calls for bids go out while this one
 * waits and commits); the commit's waves, then the pending reasons and
 * hand-offs, are written by background batches while the loop serves the
 * API and the agents.  One commit is in flight at a time: this round's
 * goes with every round waiting when the one in flight has landed
 * (s_commit_kick: their commits set the node fences this one compares). */
static void s_close(coord_t *c, int64_t now)
{
    s_round_t *r = s_r(c);
    if (!s_may_close(c))
        return;   /* coord_round_deadline says when */
    s_closing_t *cl = calloc(1, sizeof *cl);
    s_award_t *aw = calloc((size_t)r->n + 1, sizeof *aw);
    if (cl == NULL || aw == NULL) {
        free(cl);
        free(aw);
        coord_round_abort(c, "out of memory");
        return;
    }
    cl->c = c;
    cl->bids_ms = gp_mono_ms() - r->sent_ms;
    cl->commit_ns = gp_mono_ns();
    int naw = 0;
    for (int i = 0; i < r->n; i++) {
        s_entry_t *e = &r->e[i];
        if (e->offer && coord_cache_job(c, e->id) != NULL) {
            /* stored meanwhile by another coordinator: its compare would
             * fail the whole transaction, others' awards with it */
            coord_cache_untentative(c, e->id);
            snprintf(e->reason, sizeof e->reason, "stored meanwhile");
            continue;
        }
        if (e->awarded || e->handoff[0] || s_choose(c, e) < 0)
            continue;   /* placed by preemption, leaving the region, or no plan */
        aw[naw].e = e;
        if (s_prepare(c, &aw[naw]) < 0) {
            cl->prep_failed++;
            coord_cache_untentative(c, e->id);
            free(aw[naw].alloc_text);
            memset(&aw[naw], 0, sizeof aw[naw]);
            continue;
        }
        naw++;
    }
    cl->aw = aw;
    cl->naw = naw;
    /* Pipeline: the next round opens now, so that agents bid on it while
     * this one commits.  This one's jobs are in a round and its plans are
     * held in the engine: the next one neither picks them nor plans over
     * them.  The live round state goes to the next; this one finishes from
     * a copy. */
    cl->r = *r;
    s_detach(r);
    s_closing_t **tail = &s_st(c)->closing;
    while (*tail)
        tail = &(*tail)->next;
    *tail = cl;
    cl->waiting = 1;
    cl->term = coord_leader_fence(c);
    s_st(c)->nwaiting++;
    s_open_next(c, now);
    s_commit_kick(c);   /* now, or when the commit in flight has landed */
}

/* Commit the awards of every round waiting, together, unless a commit is
 * in flight (then when it has landed: the node fences compare its
 * revisions). */
static void s_commit_kick(coord_t *c)
{
    s_state_t *st = s_st(c);
    if (st == NULL || st->committing || st->nwaiting == 0)
        return;
    for (s_closing_t *cl = st->closing; cl; cl = cl->next)
        if (cl->waiting && cl->term != coord_leader_fence(c)) {
            s_fail_waiting(c, "decided under another term");   /* never sent under this one */
            return;
        }
    s_group_t *g = calloc(1, sizeof *g);
    int naw = 0, nr = 0;
    for (s_closing_t *cl = st->closing; cl; cl = cl->next)
        if (cl->waiting) {
            naw += cl->naw;
            nr++;
        }
    if (g) {
        g->c = c;
        g->rounds = calloc((size_t)nr, sizeof *g->rounds);
        g->aw = calloc((size_t)naw + 1, sizeof *g->aw);
    }
    if (g == NULL || g->rounds == NULL || g->aw == NULL) {
        if (g) {
            free(g->rounds);
            free(g->aw);
        }
        free(g);
        return;   /* out of memory: tried again at the next tick */
    }
    int64_t plan_rev = 0;
    int have_rev = 0;
    for (s_closing_t *cl = st->closing; cl; cl = cl->next) {
        if (!cl->waiting)
            continue;
        cl->waiting = 0;
        st->nwaiting--;
        g->rounds[g->nrounds++] = cl;
        if (!have_rev || cl->r.plan_rev < plan_rev)
            plan_rev = cl->r.plan_rev;
        have_rev = 1;
    }
    st->committing = g;
    s_commit_start(g, plan_rev);
}

static void s_round_committed(s_closing_t *cl);

/* The group's commit has landed (every wave): each round goes on, then the
 * rounds that closed meanwhile commit. */
static void s_commit_done(s_group_t *g)
{
    coord_t *c = g->c;
    gp_metric_observe(c->m.commit_seconds, (double)(gp_mono_ns() - g->k.t0) / 1e9);
    s_commit_free(&g->k);
    if (c->round && c->round->committing == g)
        c->round->committing = NULL;
    for (int i = 0; i < g->nrounds; i++)
        s_round_committed(g->rounds[i]);
    free(g->rounds);
    free(g->aw);
    free(g);
    s_commit_kick(c);
}

/* A round's commit has landed: tell the winners, write the reasons. */
static void s_round_committed(s_closing_t *cl)
{
    coord_t *c = cl->c;
    cl->commit_ns = gp_mono_ns() - cl->commit_ns;
    s_hints(c, cl->aw, cl->naw);
    /* Offers: the placed ones are stored (answered now), the others go
     * back to intake to be stored alone. */
    for (int i = 0; i < cl->r.n; i++) {
        s_entry_t *e = &cl->r.e[i];
        if (e->offer) {
            s_offer_end(c, e->offer, e->awarded ? e->offer->revision : 0);
            e->offer = NULL;
        }
    }
    if (s_write_reasons(cl) == 0)
        s_reasons_done(cl);
}

/* The round state is aborted (leadership lost, the cache rebuilt,
 * stopping): the rounds waiting for a commit are never sent (nothing
 * placed: their jobs retry, their offers go back to intake), and the
 * commit in flight is stale: it raises no node fence (the rebuilt cache
 * does not hold its plans, so later rounds must compare from their own
 * plan revision) and no round closes before it lands (its jobs may be
 * queued again meanwhile; once it lands they are known placed). */
static void s_fail_waiting(coord_t *c, const char *why)
{
    s_state_t *st = s_st(c);
    if (st->committing)
        st->committing->k.stale = 1;
    for (;;) {
        s_closing_t *cl = st->closing;
        while (cl && !cl->waiting)
            cl = cl->next;
        if (cl == NULL)
            break;
        cl->waiting = 0;
        st->nwaiting--;
        gp_log_info("round not committed round=%lld jobs=%d reason=\"%s\"", (long long)cl->r.id,
                    cl->r.n, why);
        for (int i = 0; i < cl->r.n; i++)
            if (!cl->r.e[i].awarded)
                cl->r.e[i].late = 1;   /* retried at once, no pending reason written */
        s_round_committed(cl);   /* nothing ok: plans released, offers back (may free cl) */
    }
}

static void s_closing_free(s_closing_t *cl)
{
    s_offers_end(cl->c, &cl->r);
    gp_etcd_batch_destroy(&cl->rb);
    for (int i = 0; i < cl->naw; i++)
        free(cl->aw[i].alloc_text);
    s_reset(&cl->r);
    free(cl->ids);
    free(cl->idx);
    free(cl->hidx);
    free(cl->aw);
    free(cl);
}

/* The closing round's last step: reasons recorded, jobs released, the
 * round logged and freed. */
static void s_reasons_done(s_closing_t *cl)
{
    coord_t *c = cl->c;
    s_round_t *r = &cl->r;
    if (cl->rb) {
        coord_reasons_done(c, cl->rb, cl->ids, cl->idx, cl->nids);
        for (int i = 0; i < r->n; i++)
            if (cl->hidx[i] != -2)
                coord_handoff_done(c, cl->rb, r->e[i].id, r->e[i].handoff, cl->hidx[i]);
    }
    int nobid = 0, commit_failed = 0;
    for (int i = 0; i < cl->naw; i++)
        commit_failed += !cl->aw[i].ok;
    for (int i = 0; i < r->n; i++)
        nobid += r->e[i].nbids == 0 && !r->e[i].awarded && !r->e[i].handoff[0];
    int placed = s_release(c, r, gp_mono_ms());
    gp_metric_observe(c->m.round_seconds, (double)(gp_mono_ms() - r->started_ms) / 1000.0);
    gp_log_debug("round closed round=%lld jobs=%d placed=%d agents=%d/%d no_bid=%d "
                 "not_prepared=%d commit_failed=%d open_ms=%lld bids_ms=%lld wait_commit_ms=%.1f "
                 "total_ms=%lld", (long long)r->id, r->n, placed, r->answered, r->asked, nobid,
                 cl->prep_failed, commit_failed, (long long)(r->sent_ms - r->started_ms),
                 (long long)cl->bids_ms, (double)cl->commit_ns / 1e6,
                 (long long)(gp_mono_ms() - r->started_ms));
    int big = r->n >= S_BIG_ROUND;
    for (s_closing_t **p = c->round ? &c->round->closing : NULL; p && *p; p = &(*p)->next) {
        if (*p == cl) {
            *p = cl->next;
            break;
        }
    }
    s_closing_free(cl);
    if (big)
        gp_daemon_trim_memory_after_burst();   /* the round's calls, bids and commit were MiBs */
    if (c->round)
        c->round->kick = 1;   /* its jobs that lost a race retry at once */
}

int coord_round_start(coord_t *c, gp_err_t *err)
{
    c->round = calloc(1, sizeof(s_state_t));
    if (c->round == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    return 0;
}

void coord_round_tick(coord_t *c)
{
    s_round_t *r = s_r(c);
    int64_t now = gp_mono_ms();
    gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_QUEUE_DEPTH, NULL),
                  (double)coord_cache_queue_size(c));
    coord_shapes_apply(c);   /* the learned shapes, when due (standbys too) */
    s_hold_end(c->round ? c->round->committing : NULL, now);
    if (!coord_is_leader(c)) {
        coord_round_abort(c, "not the leader");
        s_offers_drop(c);
        return;
    }
    if (coord_store_full(c))
        s_offers_drop(c);
    coord_recovery_tick(c);
    s_commit_kick(c);   /* rounds left waiting by a failed start (out of memory) */
    if (r->active && now >= r->deadline_ms)
        s_close(c, now);
    if (!r->active && coord_store_full(c))
        return;   /* nothing can be committed: no round until the store takes writes */
    if (!r->active) {
        c->round->kick = 0;
        coord_gang_round(c, now);
        s_open(c, now);
    }
    if (r->active && r->asked == 0)
        s_close(c, now);   /* nobody to ask: no bids, back off */
}

int coord_round_waiting(coord_t *c)
{
    return c->round && c->round->committing ? c->round->nwaiting : 0;
}

void coord_round_kick(coord_t *c)
{
    if (c->round)
        c->round->kick = 1;
}

int64_t coord_round_deadline(coord_t *c)
{
    s_round_t *r = s_r(c);
    if (r == NULL)
        return 0;
    if (r->active)
        return s_may_close(c) ? r->deadline_ms : 0;   /* else when a commit lands */
    return c->round->kick && coord_is_leader(c) && !coord_store_full(c) ? gp_mono_ms() : 0;
}

void coord_round_stop(coord_t *c)
{
    coord_round_abort(c, "stopping");
    /* Let the closing round land (within a request's deadline and a margin). */
    s_state_t *st = c->round;
    s_hold_end(st ? st->committing : NULL, 0);
    int64_t until = gp_mono_ms() + 10000;
    gp_err_t err;
    while (st && st->closing && gp_mono_ms() < until)
        if (gp_etcd_step(c->etcd, 50, &err) < 0)
            break;
    if (st && st->committing) {
        /* Given up: what is in flight is cancelled, its outcome unknown (the
         * next leader's recovery settles it).  Nothing waits: the abort
         * above failed the waiting rounds. */
        s_commit_free(&st->committing->k);
        free(st->committing->rounds);
        free(st->committing->aw);
        free(st->committing);
        st->committing = NULL;
    }
    while (st && st->closing) {
        s_closing_t *cl = st->closing;
        st->closing = cl->next;
        s_closing_free(cl);
    }
    if (st)
        st->nwaiting = 0;
    coord_round_abort(c, "stopping");
    s_offers_drop(c);
    if (st)
        gp_strmap_destroy(&st->offered);
    free(c->round);
    c->round = NULL;
}
