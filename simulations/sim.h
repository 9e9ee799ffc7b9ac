/*
 * sim.h - gpupool-sim's parts: inputs (sim_input.c), replays
 * (sim_replay.c), capacity planning (sim_plan.c; with prices, the cheapest
 * inventory across clouds: sim_catalog.c), output (sim_output.c), the
 * command line (sim_main.c).
 *
 * The simulator holds an inventory and a workload in compact arrays (a
 * 100,000-node, 1,000,000-pod replay fits in a few hundred MiB), builds a
 * placement engine (common/placement.h) per run and feeds it the pods one
 * by one through exactly the calls the coordinator uses: place, then
 * add_alloc to commit, remove_alloc when a pod departs.
 *
 * Inputs, each file in its own format: forced (--nodes-format,
 * --pods-format, or --format for both), else by extension (.csv openb;
 * .jsonl, .ndjson, .json JSON lines), else by content (a first line that is
 * a JSON object: JSON lines; else a CSV header).
 *   openb: the CSV files of simulations/data/openb (node list, pod list).
 *   jsonl inventory: one node record per line (model.h), "#" comments and
 *     blank lines ignored.
 *   jsonl workload: one job spec per line (model.h) with optional extra
 *     fields: "arrival" (seconds), "duration" (seconds), "team" (a name the
 *     queueing report groups by), "use" ({"mem_mib", "compute_percent"}:
 *     what the run really used, for --rightsize) and "class" (the job class
 *     it is learned with; default: its id without a numeric suffix, scoped
 *     to its team, as in the pool; without an id, its line); or a count of
 *     one shape: {"shape": {job spec}, "count": 40, "team": "search"}, 40
 *     pods alike.
 * Errors name the file and line; the process exits EX_DATAERR.
 */
#ifndef GP_SIM_H
#define GP_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "model.h"
#include "placement.h"
#include "rightsize.h"

typedef struct {
    char name[GP_NAME_LEN];
    int64_t cpu, mem;
    int ngpu;
    int model;               /* index into the model table, -1 none */
    gp_node_t *full;         /* jsonl records keep the whole record, else NULL */
    int line;                /* in the inventory file */
} sim_node_t;

typedef struct {
    int64_t cpu, mem;
    int n;                   /* devices */
    bool whole;
    int milli;               /* per device share, permille (1000 whole) */
    int64_t mem_mib;         /* absolute per-device memory (jsonl) */
    int mem_pm, comp_pm;
    int spec;                /* index into the spec table (allowed models), -1 any */
    int priority;
    double arrival, duration;   /* seconds; < 0 unknown */
    int line;
    int team;                /* index into teams, -1 none */
    int use;                 /* index into uses (what the run used), -1 none */
    gp_job_t *full;          /* jsonl jobs using filters beyond models, else NULL;
                                owned by sim_data_t.fulls (copies share one) */
} sim_pod_t;

typedef struct {
    char name[GP_SHORT_LEN];
    char vendor[GP_SHORT_LEN];
    int64_t mem_mib;
} sim_model_t;

/* What a run used ("use" in the workload) and its class. */
typedef struct {
    int64_t mem_mib;         /* per device; < 0 not given (as much as it asked) */
    double compute_pct;      /* < 0 not given */
    int cls;                 /* index into classes */
} sim_use_t;

typedef struct {
    sim_node_t *nodes;
    int nnodes, nodes_cap;
    sim_pod_t *pods;
    int npods, pods_cap;
    sim_model_t models[256];
    int nmodels;
    gp_strlist_t *specs;
    int nspecs, specs_cap;
    int64_t gpu_total;       /* devices in the inventory */
    gp_job_t **fulls;        /* the pods' full job records */
    int nfulls, fulls_cap;
    char (*teams)[GP_SHORT_LEN];
    int nteams, teams_cap;
    sim_use_t *uses;
    int nuses, uses_cap;
    char (*classes)[GP_RIGHTSIZE_CLASS_LEN];
    int nclasses, classes_cap;
    const char *nodes_path, *pods_path;   /* for messages */
} sim_data_t;

/* sim_input.c */
int sim_model_find(sim_data_t *d, const char *name, bool create);
/* format: "openb", "jsonl", or NULL to decide by extension, then content.
 * path must outlive d (messages name it). */
int sim_load_nodes(sim_data_t *d, const char *path, const char *format, gp_err_t *err);
int sim_load_pods(sim_data_t *d, const char *path, const char *format, gp_err_t *err);
/* The format sim_load_* would use for path ("openb" or "jsonl"). */
int sim_detect_format(const char *path, const char **format, gp_err_t *err);
void sim_data_free(sim_data_t *d);
/* Fill job (kept between calls, reused) from a pod; id is set by caller. */
void sim_pod_job(const sim_data_t *d, const sim_pod_t *p, gp_job_t *job);
/* Fill node from an inventory entry. */
void sim_node_record(const sim_data_t *d, const sim_node_t *n, int copy, gp_node_t *out);
/* The workload's typical shapes (all pods, weights = counts). */
int sim_typical(const sim_data_t *d, gp_shape_t **shapes, double **weights, int *n);
int sim_add_node(sim_data_t *d, const sim_node_t *n);
/* Two inventory entries of one kind: the same but for the name (and, for
 * node records, the devices' uuids). */
bool sim_node_same_kind(const sim_node_t *a, const sim_node_t *b);

uint64_t sim_rand(uint64_t *state);
double sim_rand01(uint64_t *state);

/* sim_replay.c */
typedef struct {
    const char *policy;
    uint64_t seed;
    double inflate;          /* arrived GPU request target, fraction of capacity */
    int count;               /* > 0: sample this many pods instead of inflating */
    int candidates;          /* engine max_candidates when the cluster is large */
    bool whole_only;         /* round every fractional request up to whole devices */
    int scale_nodes;         /* > 0: inventory of this many nodes sampled from the list */
    /* time mode */
    bool time_mode;
    double arrival_rate;     /* > 0: synthetic Poisson arrivals, pods per second */
    double duration;         /* > 0: synthetic durations, mean seconds */
    bool duration_fixed;
    double max_wait;         /* < 0: forever */
    double sample;           /* seconds between samples, 0 auto */
    bool rightsize;          /* --rightsize auto: learn per class, place with it */
    int batch;               /* arrivals placed together (> 1: in the policy's order) */
} sim_run_opts_t;

#define SIM_SERIES 201       /* inflation: arrived 0..200% in 1% steps */

typedef struct {
    double t, util_pct, running, queued;
} sim_sample_t;

/* Time mode's queueing, per priority or per team: placed jobs' waits
 * (percentiles by nearest rank below), and the jobs never placed, by why. */
typedef struct {
    bool team;               /* key is a team index (-1: no team), else a priority */
    int key;
    double placed, wait_mean, wait_p50, wait_p95, wait_p99;
    double never_fit;        /* no node of the inventory could hold it, even empty */
    double dropped;          /* waited longer than --max-wait */
    double queued_end;       /* still waiting when the replay ended */
} sim_group_t;

/* Time mode with --rightsize (sim_rightsize.c): the runs that ended, the
 * GPU time they were allocated as requested ("before") and as right-sized
 * ("after"), the GPU time they used, the most GPUs allocated at once each
 * way, and the runs that would have hit their slice's limit. */
typedef struct {
    double runs, limit_hits, mem_hits, compute_hits;
    double gpu_h_before, gpu_h_after, gpu_h_used;
    double gpus_before, gpus_after;
    double util_before_pct, util_after_pct;
} sim_rs_result_t;

typedef struct {
    const char *policy;
    uint64_t seed;
    double pods, placed, failed, failed_gpu;   /* counts (means over seeds) */
    double cap_gpus;
    double alloc_pct_90, alloc_pct_100, alloc_pct_final, final_arrived_pct;
    double unalloc_gpus_final;
    double alloc_pct_130, unalloc_gpus_130;  /* when the arrived request reaches 130%
                                                (the end, if it never does) */
    double frag_pct_100, frag_gpus_100;
    double series[SIM_SERIES];   /* alloc % at arrived i% (NAN before) */
    /* time mode */
    double util_mean, util_peak, wait_mean, wait_p95, queue_peak;
    double wait_p50, wait_p99;
    double unplaced;
    double never_fit, dropped;     /* of the failed pods */
    sim_group_t *groups;           /* priorities (ascending), then teams */
    int ngroups;
    sim_sample_t *samples;
    int nsamples;
    double wall_s;
    int capacity_error;      /* an accounting check failed */
    sim_rs_result_t rs;
} sim_result_t;

int sim_run(const sim_data_t *d, const sim_run_opts_t *o, const gp_shape_t *shapes,
            const double *weights, int nshapes, sim_result_t *res, gp_err_t *err);
void sim_result_free(sim_result_t *r);

/* sim_rightsize.c: --rightsize auto in time mode, with the pool's own code
 * (common/rightsize.h).  A run of a workload line with "use" is right-sized
 * when it asks for a fractional slice: at its start, placed with its
 * class's recommendation (gp_rightsize_apply); at its end, learned as the
 * agent learns a run (its memory peak, its achieved compute share as one
 * busy window, an OOM when it used more memory than it was given). */
typedef struct sim_rs sim_rs_t;
sim_rs_t *sim_rs_new(const sim_data_t *d, gp_placement_t *pl, int nsched);
void sim_rs_destroy(sim_rs_t **self_p);
/* Before placing schedule entry k (pod p) at time t: size job. */
void sim_rs_apply(sim_rs_t *rs, int k, const sim_pod_t *p, gp_job_t *job, double t);
/* Placed: its GPU share (thousandths, all devices) as allocated. */
double sim_rs_start(sim_rs_t *rs, int k, const sim_pod_t *p, const gp_job_t *job, double t);
/* Ended at t after dur seconds: learn, count; its share as allocated. */
double sim_rs_end(sim_rs_t *rs, int k, const sim_pod_t *p, double t, double dur);
void sim_rs_result(const sim_rs_t *rs, sim_rs_result_t *out);
void sim_rs_mean(const sim_result_t *r, int n, sim_rs_result_t *out);
void sim_rs_print(FILE *out, const sim_result_t *m, int n);
void sim_rs_json(json_t *j, const sim_rs_result_t *rs);

/* sim_plan.c */
typedef struct {
    const char *policy;
    uint64_t *seeds;
    int nseeds;
    double success;          /* percent of pods placed */
    const char *mix;         /* "MODEL=weight,..." or NULL: the inventory's own */
    int candidates;
    bool json;
    const char *prices;      /* price file: the cheapest inventory (sim_catalog.c) */
    const char *max_nodes;   /* "cloud=N,...", or NULL */
    int exhaustive;          /* > 0: try every inventory of 0..N nodes per type */
    const char *plot;        /* bar chart of the cost per type, .png or .svg */
} sim_plan_opts_t;
int sim_plan(const sim_data_t *d, const sim_plan_opts_t *o, FILE *out, gp_err_t *err);

/* sim_catalog.c: the cheapest inventory from the node types of d's
 * inventory with o->prices (the search is described there). */
int sim_plan_priced(const sim_data_t *d, const sim_plan_opts_t *o, FILE *out, gp_err_t *err);
/* The hourly price of a node record by the price file prices (its "type"
 * label, else <devices>x<model>, in its cloud; else per GPU of its model):
 * what `gpupool plan --drain-candidates --prices` saves. */
int sim_node_price(const char *prices, const gp_node_t *node, double *price, gp_err_t *err);

/* sim_output.c */
double sim_max_rss_mib(void);   /* the process's peak resident set so far */
double sim_cpu_s(void);         /* the process's CPU time so far (user + system) */
void sim_progress(int done, int total, const char *what);
void sim_print_table(FILE *out, const sim_data_t *d, const sim_result_t *mean, int n,
                     bool time_mode);
void sim_print_json(FILE *out, const sim_data_t *d, const sim_result_t *mean,
                    const uint64_t *seeds, int nseeds, const sim_run_opts_t *o);
int sim_write_csv(const char *path, const sim_result_t *mean, int n, bool time_mode,
                  gp_err_t *err);
/* Run gnuplot to draw path (SVG when it ends in .svg, else PNG, 900x560):
 * write_data writes the points into a temporary file, write_script the
 * commands after the terminal and output lines, given that file's name.
 * A path holding a quote character is refused. */
typedef void (sim_plot_fn)(FILE *f, const char *data, void *arg);
int sim_gnuplot(const char *path, sim_plot_fn *write_data, sim_plot_fn *write_script, void *arg,
                gp_err_t *err);
int sim_write_plot(const char *path, const sim_result_t *mean, int n, bool time_mode,
                   gp_err_t *err);

#endif
