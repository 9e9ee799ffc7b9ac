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
 *   round.c     bid rounds: batch, rank, call for bids, award, commit with
 *               fenced transactions
 *
 * One thread; every socket is polled by main.c's loop.
 */
#ifndef GP_COORD_H
#define GP_COORD_H

#include <stdint.h>

#include "etcd.h"
#include "httpd.h"
#include "jobrec.h"
#include "metrics.h"
#include "model.h"
#include "placement.h"
#include "strmap.h"
#include "wire.h"

typedef struct {
    char *id, *region;
    char *etcd_endpoints, *etcd_ca, *etcd_cert, *etcd_key, *etcd_user, *etcd_password;
    char *prefix;
    char *api_listen, *bid_listen, *api_tokens;
    char *curve_key, *agent_keys;
    int64_t lease_ttl_ms;
    char *policy;
    int64_t candidates, batch, bid_timeout_ms, max_body;
    char *log_level;
} coord_cfg_t;

/* What the cache keeps of every job (the full record only while it waits
 * in this coordinator's region). */
typedef struct {
    char id[GP_NAME_LEN];
    gp_job_state_t state;
    char region[GP_SHORT_LEN];      /* owner region */
    char owner[GP_SHORT_LEN];
    char node[GP_NAME_LEN];
    char reason[128];
    int priority, devices, attempts;
    int64_t submitted_ms, updated_ms;
    int64_t mod_rev;                /* of jobs/<id> */
    int queued;                     /* has a queue key ... */
    char queue_region[GP_SHORT_LEN];/* ... in this region */
    char *raw;                      /* the record's JSON while queued here, else NULL */
    size_t raw_len;
    /* scheduling state (leader) */
    int in_round;
    int64_t not_before_ms;          /* backoff after a failed attempt */
    int backoff_ms;
    char last_reason[128];          /* the pending reason last written */
} coord_job_t;

typedef struct {
    char name[GP_NAME_LEN];
    char region[GP_SHORT_LEN];
    int64_t nodealloc_rev;          /* mod revision of nodealloc/<node>, 0 = none */
    char agent[GP_NAME_LEN];        /* routing id of the agent that hosts it */
    int64_t agent_seen_ms;
    int present;                    /* has a node record */
    json_t *record;                 /* the node record, for the API */
} coord_node_t;

typedef struct coord coord_t;

/* cache.c */
int coord_cache_start(coord_t *c, gp_err_t *err);
void coord_cache_tick(coord_t *c);
void coord_cache_stop(coord_t *c);
coord_node_t *coord_cache_node(coord_t *c, const char *name, int create);
coord_job_t *coord_cache_job(coord_t *c, const char *id);
/* Drop the tentative allocations (a round's plans not committed). */
void coord_cache_untentative(coord_t *c, const char *job);

/* election.c */
int coord_election_start(coord_t *c, gp_err_t *err);
void coord_election_tick(coord_t *c);
void coord_election_stop(coord_t *c);
/* True only while this coordinator holds the region's leadership and its
 * lease is known valid (with a safety margin). */
int coord_is_leader(coord_t *c);

/* intake.c */
void coord_http(void *arg, gp_http_req_t *req);
void coord_intake_flush(coord_t *c);
int coord_intake_pending(coord_t *c);
void coord_intake_stop(coord_t *c);

/* round.c */
int coord_round_start(coord_t *c, gp_err_t *err);
void coord_round_on_msg(coord_t *c, gp_wire_msg_t *msg);
void coord_round_tick(coord_t *c);
int64_t coord_round_deadline(coord_t *c);   /* next time the round needs a tick, or 0 */
void coord_round_abort(coord_t *c, const char *why);
void coord_round_stop(coord_t *c);

struct coord {
    coord_cfg_t cfg;
    gp_etcd_t *etcd;
    gp_metrics_t *metrics;
    gp_httpd_t *httpd;
    char **tokens;                   /* API tokens, NULL-terminated */

    /* cache */
    gp_placement_t *engine;
    gp_placement_t *capacity;        /* the same nodes, empty: "could it ever fit?" */
    gp_strmap_t *nodes;              /* name -> coord_node_t* */
    gp_strmap_t *allocs;             /* job -> gp_alloc_t* (committed, from etcd) */
    gp_strmap_t *tentative;          /* job -> gp_alloc_t* (planned in a round) */
    gp_strmap_t *jobs;               /* id -> coord_job_t* */
    gp_strmap_t *leaders;            /* region -> strdup(leader id) */
    gp_strmap_t *coordinators;       /* "region/id" -> strdup(record JSON) */
    gp_etcd_watch_t *watch;
    int relist;
    int64_t cache_rev;               /* revision the cache reflects */
    gp_strmap_t *queue;              /* id -> coord_job_t*: jobs queued in this region */
    int capacity_freed;              /* an allocation or node came: retry waiting jobs */

    /* election */
    int64_t lease;
    gp_etcd_keepalive_t *keepalive;
    int lease_lost;
    int64_t lease_valid_until_ms;
    int registered;
    int leader;
    int64_t leader_rev;              /* create revision of our leader key */
    int64_t next_campaign_ms;
    char bid_endpoint[256];

    /* rounds */
    void *zctx, *router;
    gp_zap_t *zap;
    gp_curve_keys_t keys;
    int have_keys;
    void *round;                     /* round.c's state */

    /* intake */
    void *intake;                    /* intake.c's state */

    int64_t fault_pause_ms;          /* test hook: pause once before a commit */
    int stopping;
};

void coord_count(coord_t *c, const char *name, const char *help, const char *labels);
void coord_count_etcd_error(coord_t *c, const char *what, const gp_err_t *err);

#endif
