/*
 * rightsize.h - what a class of jobs really uses, and the slice it should
 * ask for.
 *
 * A job's *class* is the set of runs whose use is learned together: the
 * job's `class` field, else its id with a trailing numeric suffix ("-N",
 * or digits) removed; scoped to the job's owner: "<owner>.<class>"
 * (gp_rightsize_class).  Per class the pool keeps one summary,
 * gp_rightsize_t, stored as JSON at P rightsize/<class> (keys.h):
 *
 *   memory    a histogram of the runs' memory peaks (per device, the
 *             highest of the slice's devices), 200 geometric buckets 5%
 *             wide from 32 MiB; and the highest peak seen (max)
 *   compute   a histogram of the GPU share achieved over busy windows (a
 *             usage interval in which the slice launched work), 101
 *             buckets of one percent; and the highest
 *   samples ("runs"), runs ended ("ends"), OOMs, the sizes last requested,
 *   the owner
 *
 * Fixed size whatever the number of runs.  Decay: when runs are added at
 * time t, every weight already there is first multiplied by
 * 2^-((t - updated) / half_life); a run then adds 1 to the memory
 * histogram and each of its busy windows 1 to the compute histogram, so
 * recent runs dominate.  Weights below 1e-6 are dropped.  The maxima do
 * not decay ("never below the class's observed max").
 *
 * A run that had allocations refused in its slice (an OOM) counts as a run
 * that needed gp_rightsize_oom_bump(peak) = max(peak + oom_min_mib,
 * peak x oom_factor): that figure, not the peak, goes into the histogram
 * and the max, so the next recommendation is at least the bump.  Likewise a
 * run throttled at its compute cap (it wanted more than it achieved) adds
 * a busy window at gp_rightsize_compute_bump(cap) = min(100, max(cap + 5,
 * cap x oom_factor)): an achieved share never shows what a cap withheld.
 *
 * Recommendation (gp_rightsize_recommend), from min_runs (3) samples on
 * (fewer are shown, not recommended from; a long run gives one a minute, so
 * a service that never ends is right-sized too), with the defaults:
 *   memory  = roundup(min(P95(peaks), max) x (1 + 0.05), 128 MiB)
 *   compute = ceil(min(P90(busy shares), max) x (1 + 0.15)), 1..100
 * where P is a weighted percentile of the histogram (a bucket's upper
 * bound).  Applying it (gp_rightsize_apply, `rightsize: auto`): never above
 * what the job asked for, unless an OOM bump asks for it; never below the
 * class's observed max; a class without history gets what was asked.
 *
 * Stored summaries are validated whole (gp_rightsize_from_json): anything
 * malformed is an error naming the field, and the caller ignores the
 * summary (treating the class as one without history) and reports it.
 *
 * Ownership: gp_rightsize_t is owned by its creator; destroy clears the
 * pointer.  Not thread-safe (one owner at a time).
 */
#ifndef GP_RIGHTSIZE_H
#define GP_RIGHTSIZE_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define GP_RIGHTSIZE_MEM_BUCKETS 200
#define GP_RIGHTSIZE_CPU_BUCKETS 101
#define GP_RIGHTSIZE_CLASS_LEN   128

typedef enum {
    GP_RIGHTSIZE_OFF = 0,        /* learn nothing, apply nothing */
    GP_RIGHTSIZE_RECOMMEND,      /* learn and show */
    GP_RIGHTSIZE_AUTO,           /* learn, and place new runs with the recommendation */
} gp_rightsize_mode_t;

typedef struct {
    double mem_percentile;       /* 95 */
    double mem_margin;           /* 0.05: fraction added */
    int64_t mem_granularity_mib; /* 128: rounded up to a multiple */
    double compute_percentile;   /* 90 */
    double compute_margin;       /* 0.15 */
    int64_t half_life_ms;        /* 24 h */
    int64_t oom_min_mib;         /* 256 */
    double oom_factor;           /* 1.2 */
    int64_t min_runs;            /* 3: fewer samples are no history yet */
} gp_rightsize_opts_t;

#define GP_RIGHTSIZE_OPTS_DEFAULT \
    { 95.0, 0.05, 128, 90.0, 0.15, INT64_C(24) * 3600 * 1000, 256, 1.2, 3 }

/* One run's use, as the agent (or the simulator) saw it. */
typedef struct {
    int64_t mem_peak_mib;        /* highest per device; < 0 unknown */
    int oom;                     /* allocations were refused in the slice */
    int end;                     /* the run's last sample (it ended) */
    int throttled;               /* its launches waited for compute budget */
    int cap_pct;                 /* its compute cap (0: none) */
    int64_t asked_mem_mib;       /* the job's request per device (0 unknown) */
    int asked_compute_pct;       /* the job's request (0 unknown) */
    double busy[GP_RIGHTSIZE_CPU_BUCKETS];   /* busy windows by achieved share */
} gp_rightsize_run_t;

/* The summary's figures and the recommendation drawn from them. */
typedef struct {
    int have;                    /* 0: no history: as requested */
    int64_t runs, ends, ooms;
    int64_t mem_p50, mem_p95, mem_max;       /* MiB */
    int compute_p50, compute_p95, compute_max;   /* percent; -1: no busy window */
    int64_t mem_mib;             /* recommended per device */
    int compute_pct;             /* recommended, 1..100; 0: none (no busy window) */
    int64_t asked_mem_mib;       /* the last run's request */
    int asked_compute_pct;
} gp_rightsize_rec_t;

typedef struct gp_rightsize gp_rightsize_t;

gp_rightsize_mode_t gp_rightsize_mode_parse(const char *s, int *ok);
const char *gp_rightsize_mode_name(gp_rightsize_mode_t m);

/* The class of a job: "<owner>.<cls>" (or "<cls>" without an owner), cls
 * being the job's class field, else its id without a trailing "-N" or
 * digits.  Writes at most size bytes to buf; -1 when the result is not a
 * valid key name (keys.h), e.g. an owner with a '/'. */
int gp_rightsize_class(const char *owner, const char *cls, const char *job_id, char *buf,
                       size_t size);

gp_rightsize_t *gp_rightsize_new(const char *cls, const char *owner);
void gp_rightsize_destroy(gp_rightsize_t **self_p);
const char *gp_rightsize_class_name(const gp_rightsize_t *self);
const char *gp_rightsize_owner(const gp_rightsize_t *self);

/* Add one run (decaying what is there to now_ms first). */
void gp_rightsize_add_run(gp_rightsize_t *self, const gp_rightsize_run_t *run, int64_t now_ms,
                          const gp_rightsize_opts_t *o);
/* A busy window of share pct (0..100+, clamped) for run. */
void gp_rightsize_run_busy(gp_rightsize_run_t *run, double pct);
/* max(peak + oom_min_mib, peak x oom_factor). */
int64_t gp_rightsize_oom_bump(int64_t peak_mib, const gp_rightsize_opts_t *o);
/* min(100, max(cap + 5, cap x oom_factor)). */
int gp_rightsize_compute_bump(int cap_pct, const gp_rightsize_opts_t *o);

void gp_rightsize_recommend(const gp_rightsize_t *self, const gp_rightsize_opts_t *o,
                            gp_rightsize_rec_t *out);
/* The slice a run asking for asked_mem / asked_cpt (0: not set) is given
 * under `auto`: rec (may be NULL: no history), then at least floor_mib (an
 * OOM bump the job's record carries; 0 none); above the request only for
 * an OOM bump, and then at most device_mib (the largest device memory the
 * job could have; 0: unknown), so that a bump never makes a job fit
 * nowhere. */
void gp_rightsize_apply(const gp_rightsize_rec_t *rec, int64_t asked_mem, int asked_cpt,
                        int64_t floor_mib, int64_t device_mib, int64_t *mem_mib,
                        int *compute_pct);

/* Codec.  from_json validates everything; caller owns the result. */
json_t *gp_rightsize_to_json(const gp_rightsize_t *self);
char *gp_rightsize_dump(const gp_rightsize_t *self);
gp_rightsize_t *gp_rightsize_from_json_str(const char *text, size_t len, gp_err_t *err);
/* The figures as the API shows them (new reference). */
json_t *gp_rightsize_rec_to_json(const gp_rightsize_rec_t *rec);

#endif
