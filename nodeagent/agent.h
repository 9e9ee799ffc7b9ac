/*
 * agent.h - the node agent's state, shared by its modules (internal).
 *
 *   main.c       options, start-up, the event loop, signals, reload
 *   inventory.c  devices: NVML (dlopen'ed), a declared devices file, or
 *                generated virtual nodes (--simulate N); live usage
 *   registry.c   the node records in etcd on the agent's lease; usage
 *                records; re-registration after the lease is lost
 *   bidder.c     coordinators found in etcd, ZeroMQ DEALER sockets with
 *                CURVE, HELLO heartbeats, calls for bids answered with bids
 *   jobs.c       the allocation watch; jobs started exactly once per
 *                committed allocation, adopted after a restart, stopped
 *                when their allocation goes; state reports; slice regions
 *   runner.c     processes under supervisors (runner.h)
 *   container.c  the container runtime's command lines (container.h)
 *   metrics.c    the table of the agent's metrics and their handles
 *   exporter.c   /metrics: counters at 0 from the start, slice series of
 *                ended jobs dropped
 *
 * One thread.  Every socket (etcd's, ZeroMQ's, the metrics server's, the
 * signal pipe) is polled by the loop in main.c; the modules are called from
 * it.  The agent acts on what is committed in etcd: messages from
 * coordinators only ever lead to bids.
 */
#ifndef GP_AGENT_H
#define GP_AGENT_H

#include <stdint.h>

#include "accounts.h"
#include "container.h"
#include "etcd.h"
#include "httpd.h"
#include "jobrec.h"
#include "metrics.h"
#include "model.h"
#include "placement.h"
#include "rightsize.h"
#include "runner.h"
#include "slice_region.h"
#include "strmap.h"
#include "wire.h"

typedef struct {
    char *name, *region, *zone, *cloud, *cluster, *labels;
    int64_t cpu_milli, mem_mib;
    double oversub;
    char *etcd_endpoints, *etcd_ca, *etcd_cert, *etcd_key, *etcd_user, *etcd_password;
    char *etcd_local;           /* etcd-local-endpoints */
    char *prefix;
    int64_t lease_ttl_ms;
    char *state_dir, *shim, *runner;
    char *compute_mode;         /* "cap" or "share": jobs that name none */
    int64_t stop_grace_ms, log_retention_ms;
    int64_t restart_backoff_ms, restart_backoff_max_ms, restart_backoff_reset_ms;
    char *metrics_listen;
    int64_t simulate;
    char *simulate_devices, *simulate_nvlink;
    char *devices_file, *nvml;
    int64_t usage_interval_ms, heartbeat_ms;
    char *curve_key, *coordinator_keys;
    char *log_level;
    char *policy;
    char *container_runtime, *container_oci_runtime, *container_cgroup_manager;
    char *container_ulimits, *container_network, *container_registries;
    char *container_mount_paths, *container_devices;
    char *job_user, *job_users, *job_root_teams, *job_rlimits;
    int64_t rightsize_half_life_ms, rightsize_interval_ms, rightsize_oom_min_mib;
    double rightsize_oom_factor;
} agent_cfg_t;

/* One node this agent speaks for (one, or N with --simulate). */
typedef struct {
    gp_node_t node;
    int nvml_index[GP_MAX_DEVICES];   /* NVML device index, -1 for declared/virtual */
    int64_t free_mib[GP_MAX_DEVICES]; /* live, from NVML; -1 unknown */
    int util[GP_MAX_DEVICES];         /* live GPU utilization %, -1 unknown */
    uint64_t record_digest;           /* of the node record last written */
    uint64_t usage_digest;            /* of the usage record last written, 0 = write it */
    size_t usage_slices;              /* slices listed in that record */
} agent_node_t;

/* A job this agent runs (one per committed allocation on its nodes). */
typedef struct {
    gp_alloc_t alloc;
    int64_t alloc_create_rev;         /* identifies the allocation (fence) */
    int64_t alloc_mod_rev;
    int have_rec;                     /* job record fetched */
    gp_jobrec_t rec;
    int64_t rec_mod_rev;
    int started;                      /* process started (or pretend-started) */
    int reported_running;
    int pretend;                      /* no command: "runs" until duration/cancel */
    int64_t pretend_end_ms;           /* 0 = until cancelled */
    int stopping;                     /* allocation gone: stop, report nothing */
    int drained;                      /* a drain marked the allocation "stop": stop,
                                       * then requeue the record and delete it */
    int ended;                        /* ended, end not yet reported */
    int exit_code, term_signal, lost;
    gp_slice_region_t *region;
    char region_path[4096];
    int suspended;
    int todo;                         /* queued for the next tick's batch work */
    int reporting;                    /* a report of it is in flight */
    int fetching;                     /* a read of its record is in flight */
    int alloc_gone;                   /* its allocation went meanwhile: acted on after it */
    int fetch_linear;                 /* read its record linearizably next time */
    int solo;                         /* its last report failed in a group: report alone */
    int64_t report_after_ms;          /* retry of a failed report */
    int64_t report_backoff_ms;        /* its backoff: doubles per failure, 0 after a success */
    int prio_suspended;               /* held by a high-priority slice on its GPU */
    int report_state;                 /* prio_suspended changed: record it */
    uint64_t prev_charged_ns[GP_MAX_DEVICES];
    int64_t prev_sample_ms;
    double compute_share[GP_MAX_DEVICES];
    char fail_reason[256];            /* why it could not run ("" = its exit status says) */
    /* right-sizing (rightsize.c) */
    gp_rightsize_run_t *rs_run;       /* this run's use since its last sample, or NULL */
    int64_t rs_started_ms, rs_last_sample_ms;
    uint64_t rs_oom_seen[GP_SLICE_MAX_DEVICES];
    uint64_t rs_throttled_seen[GP_SLICE_MAX_DEVICES];
    int64_t rs_oom_bump_mib;          /* the run died of OOM in its slice: its next size */
} agent_job_t;

typedef struct agent agent_t;

/* The container options of a configuration (validated; NULL and err when
 * wrong).  jobs.c; main.c validates with it. */
gp_container_t *agent_containers_new(const agent_cfg_t *cfg, gp_err_t *err);

/* inventory.c */
int agent_inventory_load(agent_t *a, gp_err_t *err);
void agent_inventory_refresh(agent_t *a);   /* live health / free memory / utilization */
void agent_inventory_close(agent_t *a);

/* registry.c */
int agent_registry_start(agent_t *a, gp_err_t *err);
void agent_registry_tick(agent_t *a);        /* re-register, usage records */
void agent_registry_stop(agent_t *a);

/* bidder.c */
int agent_bidder_start(agent_t *a, gp_err_t *err);
int agent_bidder_pollitems(agent_t *a, void *items, int max);  /* zmq_pollitem_t */
void agent_bidder_handle(agent_t *a);
void agent_bidder_tick(agent_t *a);
void agent_bidder_stop(agent_t *a);

/* logs.c: answer a coordinator's LOGS request on sock (LOGDATA). */
void agent_logs_answer(agent_t *a, void *sock, const json_t *body);

/* jobs.c */
int agent_jobs_start(agent_t *a, gp_err_t *err);
void agent_jobs_tick(agent_t *a);
/* Fetch, start and report the jobs of new allocations alone (no scan of
 * every job), so that a job starts at once, not at the next tick. */
void agent_jobs_kick(agent_t *a);
void agent_jobs_stop(agent_t *a);
int agent_jobs_count(agent_t *a);
/* The slices on every node, for their usage records, in one pass over the
 * jobs: element i is a->nodes[i]'s [{"job", "devices": [...]}], owned by
 * the caller with the vector (agent_jobs_usage_free); NULL out of memory. */
json_t **agent_jobs_usage(agent_t *a);
void agent_jobs_usage_free(agent_t *a, json_t **usage);

/* rightsize.c: usage samples of right-sized runs, per-class summaries */
int agent_rightsize_start(agent_t *a, gp_err_t *err);
/* A usage interval of interval_ms in which the job's devices were charged
 * charged_delta[d] ns of GPU time. */
void agent_rightsize_window(agent_t *a, agent_job_t *j, int ndev, const uint64_t *charged_delta,
                            int64_t interval_ms);
/* The job's run ended or was stopped (its region still open): its sample;
 * sets j->rs_oom_bump_mib when an auto run died of OOM. */
void agent_rightsize_run_end(agent_t *a, agent_job_t *j);
void agent_rightsize_tick(agent_t *a);       /* long runs' samples; writes */
/* The job's slice region was opened, or the job is freed: the tick looks
 * at the jobs with a region only, not at every job of the node(s). */
void agent_rightsize_track(agent_t *a, agent_job_t *j);
void agent_rightsize_forget(agent_t *a, agent_job_t *j);
void agent_rightsize_stop(agent_t *a);

struct agent {
    agent_cfg_t cfg;
    gp_etcd_t *etcd;
    gp_metrics_t *metrics;            /* the registry /metrics renders */
    agent_metrics_t m;                /* its handles (metrics.h) */
    int64_t next_sweep_ms;            /* exporter.c: the next sweep of ended jobs' series */
    gp_placement_t *engine;           /* our nodes and their committed allocations */

    agent_node_t *nodes;
    int nnodes;
    gp_strmap_t *node_index;          /* name -> agent_node_t* */
    void *nvml;                       /* inventory's NVML handle (opaque) */

    /* registry */
    int64_t lease;
    gp_etcd_keepalive_t *keepalive;
    int lease_lost;
    int64_t next_register_ms;
    int64_t register_backoff_ms;      /* the next retry's delay after a failed registration */
    int registered;
    gp_etcd_batch_t *changes;         /* the record and usage writes in flight, or NULL */

    /* bidder */
    void *zctx;
    gp_strmap_t *coordinators;        /* id -> bidder's peer (opaque) */
    gp_etcd_watch_t *coord_watch;
    gp_curve_keys_t keys;
    int have_keys;
    void *trusted;                    /* trusted coordinator keys (bidder's) */
    int64_t next_hello_ms;
    int coord_relist;
    int protos[8], nprotos;           /* the versions it speaks, newest first (wire.h) */
    gp_strmap_t *cordoned;            /* our nodes with a cordon (P cordons/): no bids */
    gp_etcd_watch_t *cordon_watch;
    int cordon_relist;

    /* jobs */
    gp_runner_t *runner;
    gp_container_t *containers;       /* the container runtime's options */
    gp_accounts_t *accounts;          /* the accounts jobs run as (accounts.h) */
    gp_strmap_t *jobs;                /* job id -> agent_job_t* */
    gp_etcd_watch_t *alloc_watch;
    int alloc_relist;
    int jobs_kick;                    /* a new allocation: work it now (agent_jobs_kick) */
    gp_strmap_t *fresh;               /* ids of allocations new since the last pass */
    void *reports;                    /* report batches in flight (jobs.c) */
    int nreports;
    void *fetches;                    /* record reads in flight (jobs.c) */
    int nfetches;
    int fetch_again;                  /* jobs wait for a read: fetch when one lands */
    gp_strmap_t *busy;                /* ids of the jobs with work for the tick (jobs.c) */
    int busy_lost;                    /* an insert failed: rebuild it from every job */
    int64_t next_usage_ms, next_prune_ms;
    char slice_dir[3072];
    gp_strmap_t *rs_pending;          /* class -> samples waiting to be written */
    int64_t rs_next_flush_ms;
    int64_t rs_next_scan_ms;          /* the next look at the regions' usage */
    gp_strmap_t *rs_regions;          /* job -> agent_job_t*: the jobs with a slice region */

    int stopping;
};

/* exporter.c: drop the series of jobs that ended (each loop tick; at most
 * once a second); answer GET /metrics. */
void agent_exporter_tick(agent_t *a);
void agent_exporter_serve(agent_t *a, gp_http_req_t *req);

#endif
