/*
 * placement.h - the placement engine: where does a job go?
 *
 * A pure library (no I/O, no global state, deterministic for a seed) shared
 * by the coordinator (its watch-fed cache of the inventory, the ranking for
 * a call for bids, preemption), the node agent (the score of its own node for
 * a bid) and gpupool-sim (the same decisions, replayed).
 *
 * The engine holds the cluster state: nodes with their devices, and the
 * allocations on them.  The state changes only through add/remove calls, so
 * a coordinator keeps it in sync from an etcd watch (nodes/..., alloc/...).
 * Placing a job computes a plan (a gp_alloc_t); it does not change the state
 * until the caller commits it with gp_placement_add_alloc (the coordinator
 * does that when its etcd transaction has succeeded).
 *
 *     gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
 *     o.policy = "fgd";
 *     gp_placement_t *pl = gp_placement_new(&o, &err);
 *     gp_placement_add_node(pl, &node, &err);            // per node record
 *     gp_placement_add_alloc(pl, &alloc, &err);          // per allocation
 *     if (gp_placement_place(pl, &job, &plan, &err) == 0)
 *         gp_placement_add_alloc(pl, &plan, &err);       // commit
 *     gp_placement_destroy(&pl);
 *
 * Invariants: on every device the sum of allocated memory never exceeds
 * mem_mib x oversub and the sum of compute never exceeds 100%; a whole
 * allocation is alone on its device; a node's allocated CPU and host memory
 * never exceed its capacity.  add_alloc refuses (GP_ERR_CONFLICT) anything
 * that would break them.
 *
 * Filters, in order: node health; region/cloud/zone pins; required labels;
 * CPU and host memory; then per device: health, vendor and model allow and
 * deny lists, uuid allow and deny lists, free memory and compute (or a free
 * device for whole requests).  Preferences (prefer_regions, ...) rank a
 * node above every node that matches fewer of them; the policy ranks the
 * rest.
 *
 * Policies (gp_policy_names() lists them; docs in policy_*.c):
 *   binpack, spread, topology  gpupool's own (node and device level)
 *   gpupool                    FGD plus the GPUs a node's CPU cannot feed
 *   fgd                        fragmentation gradient descent (Weng et al.,
 *                              ATC'23), over the workload's typical shapes
 *   random, dotprod, gpuclustering, gpupacking, bestfit
 *                              the published baselines FGD is compared with
 * fgd and the baselines behave as in the authors' simulator (whole-number
 * scores).  Among equal scores every policy takes the node first in an
 * order fixed by the seed (a hash of seed and node name): first fit in a
 * random but fixed order.
 *
 * Speed: every change to a node (allocation added or removed, node added,
 * updated or removed) is logged.  For the common job (no pins, labels,
 * preferences or uuid lists) and a policy whose score depends only on the
 * node's state, place() keeps per job shape an indexed heap of the nodes
 * that can hold it, re-scores only the nodes changed since that shape was
 * last placed, and reads the best off the top: exact, and independent of
 * the cluster's size (tens of microseconds on 10,000 nodes).  Other jobs,
 * rank() and the random policy walk a max-summary tree of the nodes (free
 * CPU, host memory, best free device, whole free devices, models present)
 * that skips every subtree where the job cannot fit; with more than
 * opts.full_scan_nodes nodes they score at most opts.max_candidates
 * feasible nodes from a seeded random starting point (the sampling
 * Kubernetes' scheduler does for large clusters).
 *
 * Thread safety: none; one engine per thread, or a lock around it.
 */
#ifndef GP_PLACEMENT_H
#define GP_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

typedef struct gp_placement gp_placement_t;

typedef struct {
    const char *policy;        /* default "binpack" */
    uint64_t seed;             /* the tie order, random policy, sampling */
    int full_scan_nodes;       /* score every feasible node up to this many nodes (4096) */
    int max_candidates;        /* above it, score this many feasible nodes (512) */
    bool no_job_index;         /* jobs are not looked up by name: add_alloc does not
                                  refuse an id already allocated, get_alloc and
                                  remove_alloc find nothing; an allocation leaves by
                                  its reference (gpupool-sim's replays) */
} gp_placement_opts_t;

#define GP_PLACEMENT_OPTS_DEFAULT { "binpack", 1, 4096, 512, false }

/* A shape of job for the FGD policy's workload distribution: per device
 * demand in thousandths of a device (1000 = whole), devices, CPU. */
typedef struct {
    int64_t cpu_milli;
    int milli;                 /* per device, 0 for CPU-only */
    int devices;
    char model[GP_SHORT_LEN];  /* "" = any model */
} gp_shape_t;

/* One ranked candidate. */
typedef struct {
    double score;              /* higher is better; comparable within one call */
    gp_alloc_t plan;
} gp_candidate_t;

typedef struct {
    int nodes;
    int devices;
    int64_t gpu_milli_total;   /* devices x 1000 (healthy nodes) */
    int64_t gpu_milli_used;    /* sum over devices of the share in use */
    int64_t cpu_total, cpu_used;
    int allocs;
} gp_placement_stats_t;

/* NULL-terminated list of policy names; one line of documentation each. */
const char *const *gp_policy_names(void);
const char *gp_policy_doc(const char *name);

/* The caller owns the engine.  NULL with err set on a bad option. */
gp_placement_t *gp_placement_new(const gp_placement_opts_t *opts, gp_err_t *err);
void gp_placement_destroy(gp_placement_t **self_p);
int gp_placement_set_policy(gp_placement_t *self, const char *policy, gp_err_t *err);
const char *gp_placement_policy(const gp_placement_t *self);
void gp_placement_reseed(gp_placement_t *self, uint64_t seed);

/* Add a node, or update it (same name): an update keeps the allocations
 * when every allocated device is still there with the same uuid, else it
 * fails with GP_ERR_CONFLICT.  The record is copied. */
int gp_placement_add_node(gp_placement_t *self, const gp_node_t *node, gp_err_t *err);
/* Remove a node and every allocation on it. */
int gp_placement_remove_node(gp_placement_t *self, const char *name, gp_err_t *err);
/* Commit an allocation (device by index, checked against uuid when given). */
int gp_placement_add_alloc(gp_placement_t *self, const gp_alloc_t *alloc, gp_err_t *err);
int gp_placement_remove_alloc(gp_placement_t *self, const char *job, gp_err_t *err);
int gp_placement_get_alloc(const gp_placement_t *self, const char *job, gp_alloc_t *out);
/* A committed allocation as the engine holds it (opaque): valid until it
 * is removed, by job or by reference, or its node is. */
typedef struct gp_pl_alloc gp_placement_ref_t;
/* gp_placement_add_alloc that also gives the allocation's reference. */
int gp_placement_add_alloc_ref(gp_placement_t *self, const gp_alloc_t *alloc,
                               gp_placement_ref_t **ref, gp_err_t *err);
/* gp_placement_remove_alloc by reference, without a lookup by name. */
void gp_placement_remove_ref(gp_placement_t *self, gp_placement_ref_t *ref);
/* Ask the memory, ahead of gp_placement_remove_ref, for what the removal
 * of ref will touch: in stages 0, 1, 2, each reading what the one before
 * asked for, so that a caller that knows its next removal calls them with
 * some work between (a simulator, from its departure queue).  Changes
 * nothing. */
void gp_placement_prefetch_ref(const gp_placement_t *self, const gp_placement_ref_t *ref,
                               int stage);

/* The best node and devices for job, as a plan (not committed).  -1 with
 * GP_ERR_NOTFOUND when nothing fits now, GP_ERR_INVALID when the job is
 * malformed or names an unknown policy. */
int gp_placement_place(gp_placement_t *self, const gp_job_t *job, gp_alloc_t *out,
                       gp_err_t *err);
/* The k best candidates, best first, into out[0..k); *n gets how many. */
int gp_placement_rank(gp_placement_t *self, const gp_job_t *job, gp_candidate_t *out, int k,
                      int *n, gp_err_t *err);
/* Why job fits no node now, counted over the nodes as kube-scheduler does
 * ("0/6 nodes: 4 wrong model (want B200), 2 insufficient GPU memory (want
 * 200000 MiB on 1 GPU, most free 81920)"): each node under the first
 * filter it fails, causes most frequent first; when some nodes can hold
 * it, "N/M nodes can hold it".  Writes buf (truncated to size); returns
 * how many nodes can hold the job, -1 with err for a malformed job.  It
 * walks every node: for jobs that do not fit, not for the placement path. */
int gp_placement_explain(gp_placement_t *self, const gp_job_t *job, char *buf, size_t size,
                         gp_err_t *err);
/* The policy's score of one node for job (the agent's bid) and its plan.
 * GP_ERR_NOTFOUND: no such node; GP_ERR_CONFLICT: the job does not fit it. */
int gp_placement_score_node(gp_placement_t *self, const char *node, const gp_job_t *job,
                            double *score, gp_alloc_t *plan, gp_err_t *err);
bool gp_placement_fits(gp_placement_t *self, const char *node, const gp_job_t *job);
/* Is plan a possible allocation of job on its node, whatever else the node
 * holds (an agent's proposal, checked before it is believed): as many
 * devices as the job asks, each named by its index with that device's
 * uuid, healthy, allowed by the job's device filters, not twice; whole as
 * the job; memory within what the device offers (mem_mib x oversub) and,
 * for a share, at least the job's need on that device; compute at least
 * the job's; host CPU and memory at least the job's and within the node's.
 * 0, or -1 with GP_ERR_NOTFOUND (no such node) or GP_ERR_INVALID, err
 * naming the first fault. */
int gp_placement_check_plan(gp_placement_t *self, const gp_job_t *job, const gp_alloc_t *plan,
                            gp_err_t *err);

/* Gang: place every member or none.  Plans go to out[0..n); with commit
 * they are also added (and the members must have distinct ids). */
int gp_placement_place_gang(gp_placement_t *self, const gp_job_t *jobs, int n, bool commit,
                            gp_alloc_t *out, gp_err_t *err);

/* Preemption planning for a job that does not fit: the smallest set of
 * allocations of lower priority whose removal lets it fit on one node
 * (fewest victims, then lowest priorities).  victims[0..*nvictims) get the
 * job ids (at most max), plan the placement after their removal.  Nothing
 * is changed.  GP_ERR_NOTFOUND when no such set exists. */
int gp_placement_plan_preemption(gp_placement_t *self, const gp_job_t *job,
                                 char (*victims)[GP_NAME_LEN], int max, int *nvictims,
                                 gp_alloc_t *plan, gp_err_t *err);

/* The workload's typical shapes and their frequencies (any positive
 * weights) for FGD and the fragmentation measure.  Without it, an engine
 * learns them from the jobs it is asked to place with the fgd policy (and
 * gp_placement_frag reports 0 until it has some).  The shapes are copied;
 * setting the shapes already set changes nothing (the score caches stay). */
int gp_placement_set_typical(gp_placement_t *self, const gp_shape_t *shapes,
                             const double *weights, int n, gp_err_t *err);
/* The shape of a job as the typical shapes count it: CPU, per-device share
 * in thousandths (a slice's larger share; memory in MiB against the
 * largest device model the engine knows), devices, and its model list as
 * "A|B" ("" for any).  -1 with GP_ERR_INVALID for a malformed job. */
int gp_placement_job_shape(gp_placement_t *self, const gp_job_t *job, gp_shape_t *out,
                           gp_err_t *err);
/* The key by which the engine's policy (the job's own when it names one)
 * orders jobs placed together as one batch: place them by key descending,
 * ties in arrival order.  gpupool's puts whole-GPU jobs first (most GPUs
 * first), then shares, then CPU-only jobs; the other policies give every
 * job 0 (arrival order).  -1 with GP_ERR_INVALID for a malformed job. */
int gp_placement_batch_key(gp_placement_t *self, const gp_job_t *job, double *key,
                           gp_err_t *err);
/* Fragmentation of the cluster now, in thousandths of a device: the idle
 * device capacity that the typical shapes cannot use (their expectation),
 * and the idle capacity in all. */
void gp_placement_frag(gp_placement_t *self, double *frag_milli, double *idle_milli);
void gp_placement_stats(const gp_placement_t *self, gp_placement_stats_t *out);
/* How many nodes the engine holds (cheap, unlike gp_placement_stats). */
int gp_placement_node_count(const gp_placement_t *self);
/* Changes whenever a node is added, updated or removed or the policy is
 * set, never with allocations, to a value no engine of the process has
 * had before: what a ranking on an engine without allocations found holds
 * while it stays the same. */
uint64_t gp_placement_generation(const gp_placement_t *self);

#endif
