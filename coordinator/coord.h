/*
 * coord.h - the regional coordinator's state, shared by its modules (internal).
 *
 *   main.c      options, start-up, the event loop, signals, reload
 *   cache.c     the watch-fed cache of the whole pool: nodes, allocations,
 *               job summaries, queues, leaders, coordinators; the placement
 *               engine that mirrors them
 *   election.c  the coordinator's lease, its registration for agents, and
 *               the region's leader election (fencing revision)
 *   intake.c    the REST API: submit (group-committed), get, list, cancel,
 *               nodes, regions, usage, /metrics
 *   auth.c      principals and roles: who may do what on the API
 *   audit.c     the audit log of mutating requests
 *   round.c     bid rounds: batch, rank, call for bids, award, commit with
 *               fenced transactions
 *   decide.c    the round's decisions as functions of plain inputs (decide.h)
 *   recovery.c  allocations of vanished nodes released, their jobs requeued
 *   handoff.c   jobs handed to another region (cross-region placement)
 *   preempt.c   a high-priority job that fits nowhere takes lower-priority
 *               jobs' place
 *   gang.c      gangs placed all-or-nothing
 *   quota.c     per-team limits and disruption budgets
 *   drain.c     node maintenance: cordons, and drains the leader carries out
 *   versions.c  version skew: the protocol spoken with each agent, the
 *               store schema the pool writes and its migration
 *   rightsize.c job classes' usage summaries, the slice an auto job gets,
 *               GET /v1/rightsize, the gpupool_rightsize_* gauges
 *   txn.c       building fenced transactions
 *   store.c     etcd kept bounded: compaction, ended jobs' retention, the
 *               store-full alarm
 *   metrics.c   the table of the coordinator's metrics and their handles
 *   exporter.c  /metrics: counters at 0 from the start, pool-wide gauges
 *               from one coordinator only
 *   notready.c  nodes whose agent is gone, listed NotReady for node-retention
 *   logs.c      jobs' stdout and stderr, fetched from their nodes' agents
 *   ui.c        the web console under /ui/: its files, its read-only data
 *               from the cache, the pool's one-hour history (ui.h)
 *
 * One thread; every socket is polled by main.c's loop.
 */
#ifndef GP_COORD_H
#define GP_COORD_H

#include <stdint.h>

#include "audit.h"
#include "auth.h"
#include "etcd.h"
#include "httpd.h"
#include "jobrec.h"
#include "metrics.h"
#include "model.h"
#include "placement.h"
#include "rightsize.h"
#include "shapes.h"
#include "strmap.h"
#include "wire.h"

typedef struct {
    char *id, *region;
    char *etcd_endpoints, *etcd_ca, *etcd_cert, *etcd_key, *etcd_user, *etcd_password;
    char *etcd_local;           /* etcd-local-endpoints */
    char *prefix;
    char *api_listen, *bid_listen, *api_tokens;
    char *curve_key, *agent_keys;
    int64_t lease_ttl_ms;
    char *policy;
    int64_t candidates, batch, bid_timeout_ms, max_body;
    int64_t compaction_retention_ms, job_retention_ms, job_retention_max;
    int64_t node_retention_ms;
    double defrag_threshold;
    char *job_archive;
    int64_t api_max_connections, api_connections_per_client;
    int64_t api_idle_timeout_ms, api_header_timeout_ms, api_body_timeout_ms;
    char *log_level;
    int64_t shapes_half_life_ms;
    char *api_tls_cert, *api_tls_key, *api_tls_client_ca;
    char *audit_log;
    int64_t audit_log_size;
    char *console_prometheus;
    double rightsize_mem_percentile, rightsize_mem_margin;
    double rightsize_compute_percentile, rightsize_compute_margin;
    int64_t rightsize_granularity_mib, rightsize_min_runs;
} coord_cfg_t;

/* What the cache keeps of every job (the record's JSON too, for the API).
 *
 * The queue is derived, not stored: a job waits in this region's queue
 * (c->queue) while its record is pending, its owner region is this one, no
 * allocation of it is known, and no commit of ours may have placed it
 * (held: committed at hold_rev, which the cache has not reached yet; in
 * doubt: a commit whose outcome is unknown).  coord_cache_eval() applies
 * the rule after every change of any of these. */
typedef struct {
    char id[GP_NAME_LEN];
    gp_job_state_t state;           /* as the record says (pending when placed) */
    char region[GP_SHORT_LEN];      /* owner region */
    char owner[GP_SHORT_LEN];
    char node[GP_NAME_LEN];
    char reason[128];               /* the record's, shortened (the console's lists) */
    uint64_t reason_hash;           /* of the record's whole reason */
    int priority, devices, attempts;
    int64_t submitted_ms, updated_ms;
    int64_t restart_at_ms;          /* a restart's backoff: not placed before (wall) */
    int64_t ttl_after_finished_ms;  /* -1: the coordinator's job-retention */
    int64_t mod_rev;                /* of jobs/<id> */
    int queued;                     /* in c->queue */
    int64_t hold_rev;               /* placed by our commit at this revision, not seen yet */
    int doubt;                      /* a commit of ours on doubt_node may have placed it */
    char doubt_node[GP_NAME_LEN];
    char *raw;                      /* the record's JSON */
    size_t raw_len;
    json_t *spec;                   /* its spec, parsed once, while pending (rounds) */
    /* scheduling state (leader): round.c's (and txn.c's last_reason_hash,
     * mod_rev after its own write); the cache writes every field above */
    int in_round;
    int64_t not_before_ms;          /* backoff after a failed attempt */
    int backoff_ms;
    uint64_t last_reason_hash;      /* of the pending reason last written */
    char gang[GP_NAME_LEN];         /* gang name, "" for none */
    int gang_size;
    char cls[GP_RIGHTSIZE_CLASS_LEN];   /* its class (rightsize.h), "" when it has none */
    int rightsize;                  /* gp_rightsize_mode_t */
    int64_t floor_mib;              /* rightsize_floor_mib: after an OOM */
} coord_job_t;

#define GP_MAX_GANG 30              /* members of a gang (one transaction) */

/* A team's limits (quotas/<team>); -1: no limit.  Disruption budgets
 * (drain.c): at most so many of the team's jobs / of each of its gangs'
 * members stopped at once; 0: none. */
typedef struct {
    double gpus;
    int64_t mem_mib;
    int64_t compute_percent;
    int disruption_budget, gang_disruption_budget;
} coord_quota_t;

/* A node the cache knows.  The cache writes it from the watch (notready.c's
 * apply, which the watch calls, included); other modules keep their own
 * fields on it: round.c fence_rev, agent and agent_seen_ms; ui.c usage. */
typedef struct {
    char name[GP_NAME_LEN];
    char region[GP_SHORT_LEN];
    int64_t fence_rev;              /* every allocation on the node created at or
                                     * before this revision is known (our own
                                     * commits on it); see round.c, "Commit" */
    char agent[GP_NAME_LEN];        /* routing id of the agent that hosts it */
    int64_t agent_seen_ms;
    int present;                    /* has a node record */
    json_t *record;                 /* the node record, for the API; while
                                     * NotReady its last one */
    int64_t gone_ms;                /* NotReady since (wall ms), 0 while present */
    int notready_key;               /* P notready/<region>/<node> exists */
    json_t *usage;                  /* the agent's usage record (usage/<region>/<node>), or NULL */
    json_t *cordon;                 /* cordons/<node>: {reason, by, since_ms}, or NULL */
} coord_node_t;

/* A drain record (drains/<node>, drain.c) and the revision it was read at. */
typedef struct {
    json_t *rec;
    int64_t mod_rev;
} coord_drain_t;

typedef struct coord coord_t;

/* Each module's own state, opaque to the others. */
typedef struct coord_cache coord_cache_t;     /* cache.c */
typedef struct coord_election coord_election_t;  /* election.c */
typedef struct coord_round coord_round_t;     /* round.c */
typedef struct coord_store coord_store_t;     /* store.c */
typedef struct coord_rightsize coord_rightsize_t;   /* rightsize.c */
typedef struct coord_intake coord_intake_t;   /* intake.c */
typedef struct coord_ui coord_ui_t;           /* ui.c */
typedef struct coord_shapes coord_shapes_t;   /* shapes.c */
typedef struct coord_logs coord_logs_t;       /* logs.c */

/* cache.c: the pool as the watch delivered it.  The cache alone fills its
 * maps (nodes, allocations, jobs, leaders, coordinators, quotas, drains,
 * agents' records, the store schema) and the two placement engines, and
 * owns what they hold.  Modules that change one of them (quota.c's quotas,
 * drain.c's drains and cordons, versions.c's schema) write etcd and see
 * the change when the watch delivers it, as every coordinator does.  The
 * other modules look entries up, or walk a map with a cursor (like
 * strmap's; it must not outlive a change of the cache):
 *
 *     for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
 *          it = coord_cache_next(c, it))
 *         ... it.key, (coord_node_t *)it.value ...
 *
 * Nodes and jobs are writable for the fields that other modules keep on
 * them (coord_node_t, coord_job_t say which); every other value is
 * read-only. */
typedef enum {
    COORD_NODES,         /* name -> coord_node_t */
    COORD_ALLOCS,        /* job -> const gp_alloc_t (committed, from etcd) */
    COORD_JOBS,          /* id -> coord_job_t */
    COORD_ENDED,         /* id -> coord_job_t: this region's jobs in a final state */
    COORD_LEADERS,       /* region -> const char (the leader's id) */
    COORD_COORDINATORS,  /* "region/id" -> const char (the registration's JSON) */
    COORD_QUOTAS,        /* team -> const coord_quota_t */
    COORD_DRAINS,        /* node -> const coord_drain_t */
    COORD_AGENTS,        /* "region/agent" -> const json_t (the agents/ record) */
} coord_cache_map_t;

typedef struct {
    const char *key;             /* the entry's key; NULL at the end */
    void *value;                 /* its value, as the map says */
    coord_cache_map_t map;       /* cache.c's */
    size_t pos;                  /* cache.c's */
} coord_cache_iter_t;

int coord_cache_start(coord_t *c, gp_err_t *err);
void coord_cache_tick(coord_t *c);
void coord_cache_stop(coord_t *c);
/* The first entry of map (key NULL when empty), then the one after it. */
coord_cache_iter_t coord_cache_first(coord_t *c, coord_cache_map_t map);
coord_cache_iter_t coord_cache_next(coord_t *c, coord_cache_iter_t it);
/* How many entries map holds (0 before the first listing). */
size_t coord_cache_count(coord_t *c, coord_cache_map_t map);
/* True once the cache has listed the pool (its maps exist). */
int coord_cache_listed(coord_t *c);
/* The job's committed allocation, or NULL; borrowed, valid until the
 * cache next changes. */
const gp_alloc_t *coord_cache_alloc(coord_t *c, const char *job);
/* The id of the region's leader, a team's quota, a node's drain; NULL when
 * there is none; borrowed like the above. */
const char *coord_cache_leader(coord_t *c, const char *region);
const coord_quota_t *coord_cache_quota(coord_t *c, const char *team);
const coord_drain_t *coord_cache_drain(coord_t *c, const char *node);
/* The store schema the pool writes (1 while P schema is absent), and the
 * revision P schema was written at (0: absent) when mod_rev is not NULL. */
int coord_cache_schema(coord_t *c, int64_t *mod_rev);
coord_node_t *coord_cache_node(coord_t *c, const char *name, int create);
coord_job_t *coord_cache_job(coord_t *c, const char *id);
/* The jobs queued in this region: how many, and up to max of them into
 * out (borrowed: valid until the cache next changes); in no order. */
size_t coord_cache_queue_size(coord_t *c);
size_t coord_cache_queued(coord_t *c, coord_job_t **out, size_t max);
/* 1 once after an allocation or a node came (jobs waiting for capacity
 * should retry now), else 0. */
int coord_cache_take_capacity_freed(coord_t *c);
/* The revision the cache reflects. */
int64_t coord_cache_revision(coord_t *c);
/* The placement engine that mirrors the cache (committed and held plans). */
gp_placement_t *coord_cache_engine(coord_t *c);
/* The capacity engine: the same nodes, NotReady ones too, and no
 * allocations ("could any node the pool knows ever hold it?", intake.c). */
gp_placement_t *coord_cache_capacity(coord_t *c);
/* A NotReady node (notready.c) stays in the capacity engine as node says. */
void coord_cache_capacity_keep(coord_t *c, const gp_node_t *node);
/* A job record this coordinator is committing itself (an offer placed at
 * intake), before the watch brings it: its text (copied) and its parsed
 * spec (a reference taken).  When the watch brings exactly these bytes,
 * the record is not parsed again.  Ignored when the job is known.
 * coord_cache_unexpect forgets it (the commit did not put it). */
void coord_cache_expect_record(coord_t *c, const char *id, const char *text, json_t *spec);
void coord_cache_unexpect(coord_t *c, const char *id);
/* The plan held for job by a round (coord_cache_hold), or NULL; borrowed,
 * valid until coord_cache_untentative or the watch confirms it. */
const gp_alloc_t *coord_cache_held(coord_t *c, const char *job);
/* Call fn for each job queued in this region (the queue must not change
 * meanwhile). */
void coord_cache_each_queued(coord_t *c, void (*fn)(coord_job_t *j, void *arg), void *arg);
/* Call fn for each allocation the pool has or plans: the committed ones,
 * and the plans rounds hold (a job with both counts once, as held). */
void coord_cache_each_plan(coord_t *c, void (*fn)(const gp_alloc_t *al, void *arg), void *arg);
/* Up to max jobs whose commit is in doubt (recovery.c settles them). */
size_t coord_cache_doubts(coord_t *c, coord_job_t **out, size_t max);
/* Drop the tentative allocations (a round's plans not committed). */
void coord_cache_untentative(coord_t *c, const char *job);
/* The GPU share (thousandths of a device; a slice counts the larger of its
 * memory and compute shares) and the device memory of an allocation, from
 * its node's record; 0 when the node is unknown. */
int64_t coord_alloc_milli(coord_t *c, const gp_alloc_t *al, int64_t *mem_mib, int64_t *compute_pct,
                          const char **model_of_first);
/* fn for each committed allocation on node (from an index by node: no pass
 * over every allocation); fn must not change the cache. */
void coord_cache_each_alloc_on(coord_t *c, const char *node,
                               void (*fn)(const gp_alloc_t *al, void *arg), void *arg);
/* The sum of coord_alloc_milli over the committed allocations on present
 * nodes: kept as allocations come and go, counted again after a node
 * changed. */
int64_t coord_cache_milli_allocated(coord_t *c);
/* Our transaction placed the job at revision (its allocation is in etcd;
 * its record is unchanged): out of the queue until the watch delivers it. */
void coord_cache_placed(coord_t *c, const char *id, int64_t revision);
/* Our transaction rewrote the job's record at revision, with this owner
 * region (a hand-off): reflect it before the watch does. */
void coord_cache_record_written(coord_t *c, const char *id, const char *region, int64_t revision);
/* A commit of ours that may have placed the job on node failed in
 * transport: the job waits out of the queue until recovery.c settles it. */
void coord_cache_doubt(coord_t *c, const char *id, const char *node);
/* Settled: put the job back under the queue rule. */
void coord_cache_undoubt(coord_t *c, coord_job_t *j);
/* Apply the queue rule to the job; 1 when it should be queued here. */
int coord_cache_eval(coord_t *c, coord_job_t *j);
/* The job's state as the API shows it: "placed" for a pending record with
 * an allocation (*node set to its node), else the record's. */
gp_job_state_t coord_cache_state(coord_t *c, const coord_job_t *j, const char **node);
/* The revision below which a plan made now may assume it knows every
 * allocation created on the node (the commit's fence, round.c). */
int64_t coord_cache_fence(coord_t *c, const char *node);
/* Hold a plan in the engine until the watch confirms or it is dropped;
 * -1 when it does not fit. */
int coord_cache_hold(coord_t *c, const gp_alloc_t *plan);

/* election.c */
int coord_election_start(coord_t *c, gp_err_t *err);
void coord_election_tick(coord_t *c);
void coord_election_stop(coord_t *c);
/* True only while this coordinator holds the region's leadership and its
 * lease is known valid (with a safety margin). */
int coord_is_leader(coord_t *c);
/* The leader of the region whose name sorts first among regions with a
 * leader: the one coordinator of the pool that compacts etcd, reads and
 * exports its backend size, exports pool-wide right-sizing gauges and
 * raises the store schema. */
int coord_is_first_leader(coord_t *c);
/* True while the coordinator's registration (and lease) is in etcd. */
int coord_is_registered(coord_t *c);
/* The create revision of our leader key: every commit compares it (txn.c). */
int64_t coord_leader_fence(coord_t *c);
/* The region's leader key went: campaign at the next tick. */
void coord_election_campaign_soon(coord_t *c);

/* recovery.c: release the allocations of vanished nodes and of ended
 * jobs, settle commits in doubt, and check the queue against its rule
 * (leader) */
void coord_recovery_tick(coord_t *c);
/* Repair the queue at the next tick (after a transaction that failed). */
void coord_recovery_reconcile_soon(coord_t *c);
/* Cancel a release pass in flight (what was sent may still apply). */
void coord_recovery_stop(coord_t *c);

/* notready.c: nodes whose agent is gone stay known, NotReady, for
 * node-retention (see its opening comment); every coordinator forgets
 * them after it, the leader records and removes them in etcd. */
void coord_notready_tick(coord_t *c);
/* Cancel the leader's writes in flight (what was sent may still apply). */
void coord_notready_stop(coord_t *c);
/* The cache: a notready/ key was put (value) or deleted (NULL). */
void coord_notready_apply(coord_t *c, const char *region, const char *node, const gp_etcd_kv_t *kv);
/* The node vanished (its record deleted) or is forgotten: the capacity
 * engine ("could any node ever hold it?") keeps a NotReady node. */
void coord_cache_forget_node(coord_t *c, coord_node_t *n);

/* handoff.c: 1 when the job should leave this region for *target (why
 * says so; *plan, if not NULL, where it would go there); 0 when it stays
 * (placed here, or waiting: why says why, node by node). */
int coord_handoff_target(coord_t *c, const gp_job_t *job, int fits_here, char *target, size_t size,
                         char *why, size_t wsize, gp_alloc_t *plan);
/* Queue the hand-off transaction in a batch; its index in the batch, or -1.
 * After the batch ran, coord_handoff_done takes the job out of this
 * region's queue when the hand-off committed, and leaves it queued here
 * when it did not. */
int coord_handoff_add(coord_t *c, gp_etcd_batch_t *b, const char *id, const char *target,
                      const char *why);
void coord_handoff_done(coord_t *c, gp_etcd_batch_t *b, const char *id, const char *target, int idx);

/* store.c: compaction of etcd's history, retention of ended jobs, the
 * store-full alarm (see its opening comment). */
int coord_store_start(coord_t *c, gp_err_t *err);
void coord_store_tick(coord_t *c);
/* At a scrape: the etcd member's sizes, from the first region's leader
 * only (each coordinator reads them every 30 s; the gauges say the last). */
void coord_store_metrics(coord_t *c);
void coord_store_stop(coord_t *c);
/* A write failed: when etcd said NOSPACE, the store is full from now on
 * until etcd's alarm clears. */
void coord_store_write_failed(coord_t *c, const gp_err_t *err);
int coord_store_full(coord_t *c);
/* Append a removed record to job-archive (when set; rotated past its size). */
void coord_store_archive(coord_t *c, const char *text, size_t len);
/* The archived record of a job no longer in etcd (caller decrefs), or NULL. */
json_t *coord_store_archived(coord_t *c, const char *id);

/* preempt.c: place a positive-priority job that fits nowhere by preempting
 * lower-priority jobs on one node; 1 when committed. */
int coord_preempt(coord_t *c, const gp_job_t *job, char *why, size_t wsize);

/* drain.c: carry out the drains of this region's nodes (leader; at most
 * twice a second); REST under /v1/nodes/<node>/ (rest: "<node>/cordon" or
 * "<node>/drain"). */
void coord_drain_tick(coord_t *c);
void coord_drain_http(coord_t *c, gp_http_req_t *req, const char *rest);

/* versions.c: negotiate at HELLO (0: go on with it; -1: refused and
 * answered); send to an agent in the version it speaks; raise the store
 * schema once every daemon reads the next (leader, every 5 s, and soon
 * after an agent's record comes in: coord_versions_agent_seen). */
int coord_versions_init(coord_t *c, gp_err_t *err);
void coord_versions_stop(coord_t *c);
int coord_versions_hello(coord_t *c, gp_wire_msg_t *msg);
int coord_wire_send(coord_t *c, const char *agent, gp_msg_type_t type, const json_t *body,
                    gp_err_t *err);
void coord_versions_tick(coord_t *c);
void coord_versions_agent_seen(coord_t *c);

/* gang.c: place every complete gang queued here (leader) */
void coord_gang_round(coord_t *c, int64_t now);

/* quota.c: per-team usage and limits. */
typedef struct coord_usage coord_usage_t;
coord_usage_t *coord_quota_usage(coord_t *c);            /* committed and held, per team */
void coord_quota_usage_free(coord_usage_t **u_p);
/* 1 (with why) when the plan would take team over its quota. */
int coord_quota_exceeded(coord_t *c, coord_usage_t *u, const char *team, const gp_alloc_t *plan,
                         char *why, size_t wsize);
void coord_quota_charge(coord_t *c, coord_usage_t *u, const char *team, const gp_alloc_t *plan);
/* REST: GET /v1/quotas, PUT and DELETE /v1/quotas/<team>. */
void coord_quota_http(coord_t *c, gp_http_req_t *req, const char *team);

/* txn.c: queue a fenced write of a pending job's reason, when it changed;
 * returns its index in the batch, or -1.  After the batch ran,
 * coord_reasons_done records the written revisions in the cache at once,
 * so that the next round does not compare a stale one. */
int coord_set_reason(coord_t *c, gp_etcd_batch_t *b, coord_job_t *j, const char *reason);
void coord_reasons_done(coord_t *c, gp_etcd_batch_t *b, char (*ids)[GP_NAME_LEN], const int *idx,
                        int n);

/* intake.c */
void coord_http(void *arg, gp_http_req_t *req);
/* Answer with a JSON body (taken; secret env values redacted). */
void coord_respond_json(gp_http_req_t *req, int status, json_t *body);
void coord_intake_flush(coord_t *c);
/* An offered job's outcome (round.c): revision > 0, its record and
 * allocation were stored at it; 0, not placed: intake stores it alone. */
void coord_intake_offer_done(coord_t *c, uint64_t token, const char *id, int64_t revision);
int coord_intake_pending(coord_t *c);
void coord_intake_stop(coord_t *c);

/* logs.c: GET /v1/jobs/<id>/logs, fetched from the node's agent (LOGS,
 * LOGDATA); see its opening comment. */
void coord_logs_http(coord_t *c, gp_http_req_t *req, const char *id);
void coord_logs_on_msg(coord_t *c, gp_wire_msg_t *msg);
void coord_logs_tick(coord_t *c);    /* requests the agent did not answer: 504 */
void coord_logs_stop(coord_t *c);

/* round.c */
int coord_round_start(coord_t *c, gp_err_t *err);
void coord_round_on_msg(coord_t *c, gp_wire_msg_t *msg);
void coord_round_tick(coord_t *c);
/* When the round next needs a tick (monotonic ms; 0 = only at the regular
 * tick): its bid deadline, or now when every agent has answered or a job
 * was just queued and no round is in flight. */
int64_t coord_round_deadline(coord_t *c);
/* A job was queued here, or the store takes writes again: open a round
 * now rather than at the next tick. */
void coord_round_kick(coord_t *c);
/* How many rounds have decided their awards and wait for the commit in
 * flight (0 when none is in flight). */
int coord_round_waiting(coord_t *c);
void coord_round_abort(coord_t *c, const char *why);
void coord_round_stop(coord_t *c);
/* Placement at intake (the region's leader): offer a submitted job whose
 * record (text, copied; spec, its parsed "spec", a reference taken: the
 * tree of that text's spec) is not stored yet to the next round, which stores
 * it together with its allocation in one fenced transaction.  0: taken,
 * and coord_intake_offer_done(token, id) is called exactly once later
 * (never from within this call); -1: not taken (not the leader, the store
 * full, too many offers waiting, the id known or offered already): the
 * caller stores it alone. */
int coord_round_offer(coord_t *c, const char *id, const char *owner, const char *text,
                      json_t *spec, int priority, int64_t submitted_ms, uint64_t token);
/* Every offer not in a commit goes back to intake now (stopping). */
void coord_round_withdraw(coord_t *c);

struct coord {
    coord_cfg_t cfg;
    gp_etcd_t *etcd;
    gp_metrics_t *metrics;           /* the registry /metrics renders */
    coord_metrics_t m;               /* its handles (metrics.h) */
    gp_httpd_t *httpd;
    coord_auth_t *auth;              /* principals (api-tokens), auth.h */
    const coord_principal_t *caller; /* while a request's handler runs */
    coord_audit_t *audit;            /* audit.h */

    coord_cache_t *cache;            /* cache.c's own state: the pool's maps, the engines,
                                      * the queue, held plans, the watch */
    coord_rightsize_t *rightsize;    /* rightsize.c's own state: the classes' summaries */

    coord_election_t *election;      /* election.c's own state: lease, leadership */
    char bid_endpoint[256];          /* the bid socket's, registered by election.c */

    /* rounds */
    void *zctx, *router;
    gp_zap_t *zap;
    gp_strmap_t *agent_proto;        /* routing id -> protocol version (intptr_t), versions.c */
    gp_strmap_t *refusal_logged;     /* routing id -> int64_t* last refusal logged */
    int protos[8], nprotos;          /* the versions this coordinator speaks, newest first */
    int64_t versions_next_schema_ms; /* versions.c: the next schema pass (monotonic) */
    int64_t versions_last_schema_ms; /* versions.c: the last one */
    gp_curve_keys_t keys;
    int have_keys;
    coord_round_t *round;            /* round.c's state */
    coord_store_t *store;            /* store.c's state */
    int64_t recovery_reconcile_ms;   /* recovery.c: the next queue reconciliation */
    int64_t recovery_next_ms;        /* recovery.c: the next settle and release pass */
    int recovery_dirty;              /* cache.c: a change that can make an allocation
                                      * releasable (a node, a job that ended or moved, an
                                      * allocation of an unknown job, a listing) */
    int64_t recovery_full_ms;        /* recovery.c: the next release pass regardless */
    gp_etcd_batch_t *recovery_releases;   /* recovery.c: a release pass in flight, or NULL */
    int64_t drain_next_ms;           /* drain.c: the next pass over the drains */
    int64_t notready_next_ms;        /* notready.c: the next pass */
    gp_etcd_batch_t *notready_writes;   /* notready.c: the leader's writes in flight, or NULL */
    coord_logs_t *logs;              /* logs.c's requests in flight (NULL until one) */

    /* intake */
    coord_intake_t *intake;          /* intake.c's state */
    coord_ui_t *ui;                  /* ui.c's state (the web console) */
    coord_shapes_t *shapes;          /* shapes.c's state */

    int64_t fault_pause_ms;          /* test hook: pause once before a commit */
    int64_t fault_hold_ms;           /* test hook: hold a commit once before sending it */
    int64_t fault_handoff_pause_ms;  /* test hook: pause once before a hand-off */
    int64_t fault_busy_ms;           /* test hook: one long CPU-bound batch in a round */
    int64_t fault_watch_lag_ms;      /* test hook: watch responses applied this late */
    char *fault_queue_drop;          /* test hook: lose this job from the queue once */
    char *fault_commit_lost;         /* test hook: a commit's answers lost once:
                                      * "applied" (etcd applied it) or "dropped";
                                      * with ",grouped": the first commit of
                                      * several rounds' awards */
    int64_t fault_relist_waiting;    /* test hook: the cache listed again once, when
                                      * this many rounds wait for a commit */
    int stopping;
};

/* rightsize.c: usage summaries of job classes (cache), the slice an auto
 * job is placed with, GET /v1/rightsize, the gpupool_rightsize_* gauges
 * (export: this coordinator shows pool-wide gauges; else they are reset). */
void coord_rightsize_put(coord_t *c, const char *cls, const char *value, size_t len);
void coord_rightsize_del(coord_t *c, const char *cls);
/* Forget every summary (a re-listing rebuilds them); -1 out of memory. */
int coord_rightsize_reset(coord_t *c);
void coord_rightsize_clear(coord_t *c);   /* at stop: nothing left */
void coord_rightsize_apply(coord_t *c, const coord_job_t *j, gp_job_t *job);
void coord_rightsize_http(coord_t *c, gp_http_req_t *req);
void coord_rightsize_metrics(coord_t *c, int export);

/* exporter.c: answer GET /metrics. */
void coord_exporter_serve(coord_t *c, gp_http_req_t *req);

/* An etcd client of these endpoints with the coordinator's TLS, credentials
 * and lease-derived timeouts (main.c); caller owns it. */
gp_etcd_t *coord_etcd_new(coord_t *c, const char *endpoints, gp_err_t *err);

#endif
