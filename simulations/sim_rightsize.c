/*
 * sim_rightsize.c - `gpupool-sim replay --mode time --rightsize auto`: what
 * right-sizing would have done to a workload whose lines say what each run
 * used ("use": {"mem_mib", "compute_percent"}).
 *
 * The same code as the pool (common/rightsize.h), with its defaults: one
 * summary per class; a run of a fractional slice is placed with its
 * class's recommendation (gp_rightsize_apply: never above the request, never
 * below the class's observed max, as requested without history), and its
 * class learns what the agent would have seen, one sample per minute while
 * it runs (the agents' rightsize-interval; taken when the class is next
 * read, which gives the same summary) and one when it ends:
 *   memory   its peak, "use.mem_mib" -- or, when that is more than it was
 *            given, an OOM at its limit (then the class's next runs get the
 *            bump, max(limit + 256 MiB, limit x 1.2))
 *   compute  one busy window at the share it achieved: "use.compute_percent",
 *            at most its cap; when it wanted more than its cap, it was
 *            throttled (then the class learns the compute bump,
 *            min(100, max(cap + 5, cap x 1.2)))
 * at the simulated time (the summaries decay with the pool's 24 h
 * half-life).

 * Reported, over the runs that ended:
 *   GPU time allocated as requested (before) and as right-sized (after),
 *   and used, in GPU-hours; a run's GPU share is the larger of its memory
 *   and compute shares of the device (memory against the largest device
 *   model of the inventory, as the engine's shapes count it), times its
 *   devices, times its duration; used = what "use" says, at most what was
 *   allocated;
 *   utilization = used / allocated, before and after;
 *   GPUs needed: the most GPU shares allocated at once, as right-sized
 *   (after) and, for the same runs at the same moments, as requested
 *   (before);
 *   limit hits: runs that used more memory than they were given (they would
 *   have been refused memory: an OOM in the slice) or more compute than a
 *   cap they were given (throttled), of the runs right-sized.
 * Runs without "use" are placed as requested and count as using all of it.
 */
#include "sim.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

typedef struct {
    int64_t mem;            /* applied per device, MiB (0: not set) */
    int cpt;                /* applied compute percent (0: no cap) */
    double alloc_milli, req_milli, used_milli;   /* all devices */
    bool sized;             /* right-sized (has "use", fractional) */
    int pod;                /* its pod */
    double last;            /* time of its last sample */
    int prev, next;         /* the running runs of its class, -1 ends */
} s_run_t;

#define S_INTERVAL 60.0     /* the agents' rightsize-interval */

struct sim_rs {
    const sim_data_t *d;
    gp_placement_t *pl;
    gp_rightsize_opts_t o;
    gp_rightsize_t **cls;
    int *running;           /* per class: its first running run, -1 none */
    s_run_t *run;           /* per schedule entry */
    int64_t device_mib;     /* the largest device model's memory */
    gp_job_t scratch;
    double now_after, now_before;   /* GPU shares allocated now, thousandths */
    sim_rs_result_t r;
};

sim_rs_t *sim_rs_new(const sim_data_t *d, gp_placement_t *pl, int nsched)
{
    sim_rs_t *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return NULL;
    rs->d = d;
    rs->pl = pl;
    gp_rightsize_opts_t o = GP_RIGHTSIZE_OPTS_DEFAULT;
    rs->o = o;
    rs->cls = calloc((size_t)d->nclasses + 1, sizeof *rs->cls);
    rs->running = malloc(sizeof *rs->running * ((size_t)d->nclasses + 1));
    rs->run = calloc((size_t)nsched + 1, sizeof *rs->run);
    if (rs->cls == NULL || rs->run == NULL || rs->running == NULL) {
        sim_rs_destroy(&rs);
        return NULL;
    }
    for (int i = 0; i < d->nclasses; i++)
        rs->running[i] = -1;
    for (int i = 0; i < d->nmodels; i++)
        if (d->models[i].mem_mib > rs->device_mib)
            rs->device_mib = d->models[i].mem_mib;
    for (int i = 0; i < d->nclasses; i++)
        if ((rs->cls[i] = gp_rightsize_new(d->classes[i], NULL)) == NULL) {
            sim_rs_destroy(&rs);
            return NULL;
        }
    return rs;
}

void sim_rs_destroy(sim_rs_t **self_p)
{
    sim_rs_t *rs = self_p ? *self_p : NULL;
    if (rs == NULL)
        return;
    for (int i = 0; rs->cls && i < rs->d->nclasses; i++)
        gp_rightsize_destroy(&rs->cls[i]);
    free(rs->cls);
    free(rs->running);
    free(rs->run);
    free(rs);
    *self_p = NULL;
}

static bool s_sizable(const sim_pod_t *p, const gp_job_t *job)
{
    return p->use >= 0 && job->devices > 0 && !job->whole && !job->gang[0] &&
           (job->mem_mib > 0 || job->compute_permille > 0);
}

/* One sample of run r at time t, as the agent takes it: its peak (an OOM
 * at its limit when it used more), its achieved share as one busy window
 * (throttled at its cap when it wanted more).  Counts the hits when count. */
static void s_sample(sim_rs_t *rs, s_run_t *r, double t, int n, bool count, bool end)
{
    const sim_pod_t *p = &rs->d->pods[r->pod];
    const sim_use_t *u = &rs->d->uses[p->use];
    gp_rightsize_run_t run;
    memset(&run, 0, sizeof run);
    run.asked_mem_mib = p->mem_mib;
    run.asked_compute_pct = p->comp_pm / 10;
    int hit = 0;
    run.mem_peak_mib = -1;
    if (r->mem > 0 && u->mem_mib >= 0) {
        run.mem_peak_mib = u->mem_mib;
        if (u->mem_mib > r->mem) {
            run.oom = 1;
            run.mem_peak_mib = r->mem;   /* what the agent sees: refused at its limit */
            rs->r.mem_hits += count;
            hit = 1;
        }
    }
    if (u->compute_pct >= 0) {
        double got = u->compute_pct;
        if (r->cpt > 0 && got > r->cpt + 1e-9) {
            got = r->cpt;              /* throttled at its cap */
            run.throttled = 1;
            run.cap_pct = r->cpt;
            rs->r.compute_hits += count;
            hit = 1;
        }
        if (got > 0)
            gp_rightsize_run_busy(&run, got);
    }
    if (count)
        rs->r.limit_hits += hit;
    run.end = end;
    for (int i = 0; i < n; i++)
        gp_rightsize_add_run(rs->cls[u->cls], &run, (int64_t)(t * 1000.0), &rs->o);
}

/* The samples the running runs of class c gave since their last one (one
 * per S_INTERVAL, taken now: nothing reads the summary in between). */
static void s_catch_up(sim_rs_t *rs, int c, double t)
{
    for (int k = rs->running[c]; k >= 0; k = rs->run[k].next) {
        s_run_t *r = &rs->run[k];
        int n = (int)((t - r->last) / S_INTERVAL);
        if (n > 0) {
            s_sample(rs, r, t, n, false, false);
            r->last += n * S_INTERVAL;
        }
    }
}

void sim_rs_apply(sim_rs_t *rs, int k, const sim_pod_t *p, gp_job_t *job, double t)
{
    s_run_t *r = &rs->run[k];
    memset(r, 0, sizeof *r);
    r->mem = job->mem_mib;
    r->cpt = job->compute_permille / 10;
    if (!s_sizable(p, job))
        return;
    r->sized = true;
    r->pod = (int)(p - rs->d->pods);
    gp_rightsize_rec_t rec;
    s_catch_up(rs, rs->d->uses[p->use].cls, t);
    gp_rightsize_recommend(rs->cls[rs->d->uses[p->use].cls], &rs->o, &rec);
    int64_t mem;
    int cpt;
    gp_rightsize_apply(&rec, job->mem_mib, job->compute_permille / 10, 0, rs->device_mib, &mem,
                       &cpt);
    if (job->mem_mib > 0)
        job->mem_mib = r->mem = mem;
    if (job->compute_permille > 0)
        job->compute_permille = (r->cpt = cpt) * 10;
}

/* The GPU share of job with memory mem and compute cpt, all devices. */
static double s_share(sim_rs_t *rs, const gp_job_t *job, int64_t mem, double cpt)
{
    gp_job_t *j = &rs->scratch;
    *j = *job;
    if (job->mem_mib > 0)
        j->mem_mib = mem > 0 ? mem : 1;
    j->compute_permille = cpt > 0 ? (int)ceil(cpt * 10) : 0;
    if (j->compute_permille > 1000)
        j->compute_permille = 1000;
    gp_shape_t sh;
    if (gp_placement_job_shape(rs->pl, j, &sh, NULL) < 0)
        return 0;
    return (double)sh.milli * (job->devices > 0 ? job->devices : 0);
}

double sim_rs_start(sim_rs_t *rs, int k, const sim_pod_t *p, const gp_job_t *job, double t)
{
    s_run_t *r = &rs->run[k];
    if (r->sized) {
        int c = rs->d->uses[p->use].cls;
        r->last = t;
        r->prev = -1;
        r->next = rs->running[c];
        if (r->next >= 0)
            rs->run[r->next].prev = k;
        rs->running[c] = k;
    }
    r->alloc_milli = s_share(rs, job, r->mem, r->cpt);
    r->req_milli = r->alloc_milli;
    r->used_milli = r->alloc_milli;
    if (p->use >= 0 && job->devices > 0) {
        const sim_use_t *u = &rs->d->uses[p->use];
        int64_t asked_mem = job->mem_mib > 0 ? (p->mem_mib > 0 ? p->mem_mib : job->mem_mib) : 0;
        r->req_milli = s_share(rs, job, asked_mem, p->comp_pm / 10.0);
        int64_t um = u->mem_mib >= 0 && u->mem_mib < r->mem ? u->mem_mib : r->mem;
        double uc = u->compute_pct >= 0 ? u->compute_pct : r->cpt;
        if (r->cpt > 0 && uc > r->cpt)
            uc = r->cpt;
        double used = s_share(rs, job, um, uc);
        r->used_milli = used < r->alloc_milli ? used : r->alloc_milli;
    }
    rs->now_after += r->alloc_milli;
    rs->now_before += r->req_milli;
    if (rs->now_after / 1000.0 > rs->r.gpus_after)
        rs->r.gpus_after = rs->now_after / 1000.0;
    if (rs->now_before / 1000.0 > rs->r.gpus_before)
        rs->r.gpus_before = rs->now_before / 1000.0;
    return r->alloc_milli;
}

double sim_rs_end(sim_rs_t *rs, int k, const sim_pod_t *p, double t, double dur)
{
    s_run_t *r = &rs->run[k];
    rs->now_after -= r->alloc_milli;
    rs->now_before -= r->req_milli;
    rs->r.runs++;
    rs->r.gpu_h_before += r->req_milli / 1000.0 * dur / 3600.0;
    rs->r.gpu_h_after += r->alloc_milli / 1000.0 * dur / 3600.0;
    rs->r.gpu_h_used += r->used_milli / 1000.0 * dur / 3600.0;
    if (r->sized) {
        int c = rs->d->uses[p->use].cls;
        if (r->prev >= 0)
            rs->run[r->prev].next = r->next;
        else
            rs->running[c] = r->next;
        if (r->next >= 0)
            rs->run[r->next].prev = r->prev;
        int n = (int)((t - r->last) / S_INTERVAL);
        if (n > 0 && t - r->last - n * S_INTERVAL < 1e-6)
            n--;                       /* the interval that ends with the run is its end */
        if (n > 0)
            s_sample(rs, r, t, n, false, false);
        s_sample(rs, r, t, 1, true, true);   /* its last: the run's end */
    }
    return r->alloc_milli;
}

void sim_rs_result(const sim_rs_t *rs, sim_rs_result_t *out)
{
    *out = rs->r;
    out->util_before_pct = rs->r.gpu_h_before > 0 ? 100.0 * rs->r.gpu_h_used / rs->r.gpu_h_before : 0;
    out->util_after_pct = rs->r.gpu_h_after > 0 ? 100.0 * rs->r.gpu_h_used / rs->r.gpu_h_after : 0;
}

void sim_rs_mean(const sim_result_t *r, int n, sim_rs_result_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        const sim_rs_result_t *x = &r[i].rs;
        double v[] = { x->runs, x->limit_hits, x->mem_hits, x->compute_hits, x->gpu_h_before,
                       x->gpu_h_after, x->gpu_h_used, x->gpus_before, x->gpus_after,
                       x->util_before_pct, x->util_after_pct };
        double *o[] = { &out->runs, &out->limit_hits, &out->mem_hits, &out->compute_hits,
                        &out->gpu_h_before, &out->gpu_h_after, &out->gpu_h_used,
                        &out->gpus_before, &out->gpus_after, &out->util_before_pct,
                        &out->util_after_pct };
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            *o[k] += v[k] / n;
    }
}

void sim_rs_print(FILE *out, const sim_result_t *m, int n)
{
    fprintf(out, "\nright-sizing (--rightsize auto; GPU-hours of the runs that ended; limit hits: "
            "runs that used more than their slice)\n");
    fprintf(out, "%-14s %8s %12s %12s %10s %9s %9s %9s %9s %11s\n", "policy", "runs",
            "alloc.before", "alloc.after", "used", "util.bef", "util.aft", "GPUs.bef", "GPUs.aft",
            "limit.hits");
    for (int i = 0; i < n; i++) {
        const sim_rs_result_t *r = &m[i].rs;
        fprintf(out, "%-14s %8.0f %12.1f %12.1f %10.1f %8.2f%% %8.2f%% %9.1f %9.1f %5.0f %4.2f%%\n",
                m[i].policy, r->runs, r->gpu_h_before, r->gpu_h_after, r->gpu_h_used,
                r->util_before_pct, r->util_after_pct, r->gpus_before, r->gpus_after,
                r->limit_hits, r->runs > 0 ? 100.0 * r->limit_hits / r->runs : 0);
    }
}

/* A mean over seeds: whole numbers as integers. */
static json_t *s_num(double v)
{
    double x = round(v * 100) / 100;
    return x == floor(x) && fabs(x) < 1e15 ? json_integer((json_int_t)x) : json_real(x);
}

void sim_rs_json(json_t *j, const sim_rs_result_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "runs", s_num(r->runs));
    json_object_set_new(o, "gpu_hours_before", s_num(r->gpu_h_before));
    json_object_set_new(o, "gpu_hours_after", s_num(r->gpu_h_after));
    json_object_set_new(o, "gpu_hours_used", s_num(r->gpu_h_used));
    json_object_set_new(o, "util_before_pct", s_num(r->util_before_pct));
    json_object_set_new(o, "util_after_pct", s_num(r->util_after_pct));
    json_object_set_new(o, "gpus_before", s_num(r->gpus_before));
    json_object_set_new(o, "gpus_after", s_num(r->gpus_after));
    json_object_set_new(o, "limit_hits", s_num(r->limit_hits));
    json_object_set_new(o, "mem_hits", s_num(r->mem_hits));
    json_object_set_new(o, "compute_hits", s_num(r->compute_hits));
    json_object_set_new(o, "limit_hits_pct",
                        json_real(r->runs > 0 ? round(10000.0 * r->limit_hits / r->runs) / 100 : 0));
    json_object_set_new(j, "rightsize", o);
}
