/*
 * sim_replay.c - one replay of a workload on an inventory, through the
 * placement engine.
 *
 * Inflation (the published method; Weng et al., ATC'23): the workload is
 * every trace pod plus random copies of trace pods until the pods' total
 * GPU request reaches `inflate` x the cluster's GPU capacity, shuffled with
 * the run's seed.  Pods arrive one by one and never leave; one that cannot
 * be placed counts as failed and the replay goes on.  As pods arrive, the
 * GPU allocation ratio (allocated GPU share / capacity) is recorded against
 * the arrived GPU request (% of capacity) at every whole percent, and the
 * cluster's fragmentation (placement.h, FGD's measure) when the arrived
 * request reaches 100%.  With `count`, `count` pods are drawn at random
 * from the trace instead (the synthetic workloads of the benchmark).
 *
 * Batches (--batch N > 1, as the coordinator's round takes up to N queued
 * jobs): arrivals are placed N at a time, each batch in the order its
 * policy asks (gp_placement_batch_key; arrival order for all but gpupool).
 * Inflation: a batch is closed early by the arrival that crosses 90, 100
 * or 130%, so that those figures, read after the batch is placed, count
 * the arrivals in their order; the series counts a batch's placed pods in
 * arrival order.  Time mode: up to N arrivals with no departure between
 * them, placed when the last arrives; those that do not fit join the queue
 * in arrival order.
 *
 * Time (arrivals and departures): pods arrive at the trace's creation times
 * and leave after their lifetimes, or, with arrival_rate, arrive as a
 * Poisson process (shapes drawn from the trace) and live for `duration`
 * seconds (exponential, or fixed).  A pod that does not fit waits in a FIFO
 * queue; after each departure the queue is retried in order (at most 64
 * tries, so that a long queue of big pods cannot stall the replay); a pod
 * waiting longer than max_wait is dropped as failed.  Reported: utilization
 * over time (sampled), its time-weighted mean and peak, queue length,
 * waiting times, failed and never-placed pods; and the queueing per priority
 * and per team: waits (mean, p50, p95, p99) and the pods never placed, by
 * why: no node of the inventory could hold them even empty (checked on an
 * engine holding one empty node of each kind the run's inventory has),
 * dropped after max_wait, or still waiting at the end.
 *
 * Accounting check: after the replay the engine's own view of used device
 * share must equal the sum of what the placed pods asked for (within
 * rounding of memory to MiB; at most that sum when slices' memory and
 * compute shares differ, see s_uneven) and never exceed 100%; otherwise the result is
 * flagged (capacity_error) and the command fails.
 */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#include "banned.h"

static int64_t s_req_milli(const sim_pod_t *p, bool whole_only)
{
    if (p->n == 0)
        return 0;
    if (whole_only || p->whole)
        return 1000LL * p->n;
    return (int64_t)p->milli * p->n;
}

/* A pod's job id, "p<id>" (id >= 0), written without printf: the hot
 * path of a replay writes one per placement and per departure. */
static void s_pod_id(char *buf, long id)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id > 0);
    *buf++ = 'p';
    while (n > 0)
        *buf++ = tmp[--n];
    *buf = '\0';
}

static void s_job(const sim_data_t *d, const sim_pod_t *p, bool whole_only, long id,
                  gp_job_t *job)
{
    sim_pod_job(d, p, job);
    s_pod_id(job->id, id);
    if (whole_only && job->devices > 0 && !job->whole) {
        job->whole = true;
        job->mem_mib = 0;
        job->mem_permille = 0;
        job->compute_permille = 0;
    }
}

static gp_placement_t *s_engine(const sim_data_t *d, const sim_run_opts_t *o,
                                const gp_shape_t *shapes, const double *weights, int nshapes,
                                double *cap_milli, bool *used, gp_err_t *err)
{
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    po.policy = o->policy;
    po.seed = o->seed;
    po.no_job_index = true;     /* departures leave by reference */
    if (o->candidates > 0)
        po.max_candidates = o->candidates;
    gp_placement_t *pl = gp_placement_new(&po, err);
    if (pl == NULL)
        return NULL;
    gp_node_t *rec = malloc(sizeof *rec);
    if (rec == NULL) {
        gp_placement_destroy(&pl);
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    double cap = 0;
    int total = o->scale_nodes > 0 ? o->scale_nodes : d->nnodes;
    uint64_t rs = o->seed ^ 0xA5A5A5A5ULL;
    for (int i = 0; i < total; i++) {
        const sim_node_t *n;
        int copy = 0;
        if (o->scale_nodes > 0) {
            n = &d->nodes[sim_rand(&rs) % (uint64_t)d->nnodes];
            copy = i + 1;
        } else {
            n = &d->nodes[i];
        }
        if (used)
            used[n - d->nodes] = true;
        sim_node_record(d, n, copy, rec);
        if (gp_placement_add_node(pl, rec, err) < 0) {
            free(rec);
            gp_placement_destroy(&pl);
            return NULL;
        }
        cap += 1000.0 * n->ngpu;
    }
    free(rec);
    if (nshapes > 0 && gp_placement_set_typical(pl, shapes, weights, nshapes, err) < 0) {
        gp_placement_destroy(&pl);
        return NULL;
    }
    *cap_milli = cap;
    return pl;
}

/* A slice whose memory and compute shares differ (JSON-lines jobs) is
 * counted at the larger of the two, so two of them can share a device
 * while their counted shares add up past it: the engine's used share of a
 * device is then the larger of its summed memory and summed compute, at
 * most what was counted. */
static bool s_uneven(const sim_data_t *d)
{
    for (int i = 0; i < d->npods; i++) {
        const sim_pod_t *p = &d->pods[i];
        if (p->n > 0 && !p->whole && (p->mem_mib > 0 || p->mem_pm != p->comp_pm))
            return true;
    }
    return false;
}

static void s_check(const sim_data_t *d, gp_placement_t *pl, double alloc_milli,
                    sim_result_t *res)
{
    gp_placement_stats_t st;
    gp_placement_stats(pl, &st);
    double slack = st.devices + 1.0;
    if (st.gpu_milli_used > st.gpu_milli_total ||
        (double)st.gpu_milli_used > alloc_milli + slack ||
        (!s_uneven(d) && (double)st.gpu_milli_used < alloc_milli - slack))
        res->capacity_error = 1;
}

/* One arrival of a batch: its place in the arrival order and the policy's
 * key (gp_placement_batch_key): a batch is placed by key descending, ties
 * in arrival order. */
typedef struct {
    double key;
    long i;
} s_bat_t;

static int s_cmp_bat(const void *a, const void *b)
{
    const s_bat_t *x = a, *y = b;
    if (x->key != y->key)
        return (x->key < y->key) - (x->key > y->key);
    return (x->i > y->i) - (x->i < y->i);
}

static int s_inflate(const sim_data_t *d, const sim_run_opts_t *o, gp_placement_t *pl,
                     double cap, sim_result_t *res, gp_err_t *err)
{
    uint64_t rs = o->seed;
    int *order = NULL;
    long n = 0, cap_o = 0;
    double total = 0;
    if (o->count > 0) {
        cap_o = o->count;
        if ((order = malloc(sizeof *order * (size_t)cap_o)) == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        for (n = 0; n < o->count; n++)
            order[n] = (int)(sim_rand(&rs) % (uint64_t)d->npods);
    } else {
        cap_o = d->npods * 2 + 16;
        if ((order = malloc(sizeof *order * (size_t)cap_o)) == NULL)
            return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        for (n = 0; n < d->npods; n++) {
            order[n] = (int)n;
            total += (double)s_req_milli(&d->pods[n], o->whole_only);
        }
        for (long i = n - 1; i > 0; i--) {          /* Fisher-Yates */
            long j = (long)(sim_rand(&rs) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double target = o->inflate * cap;
        /* a trace above the target: random pods leave until it is not */
        while (o->inflate > 0 && n > 0 && total > target) {
            long j = (long)(sim_rand(&rs) % (uint64_t)n);
            total -= (double)s_req_milli(&d->pods[order[j]], o->whole_only);
            order[j] = order[--n];
        }
        bool any_gpu = false;
        for (int i = 0; i < d->npods; i++)
            if (d->pods[i].n > 0)
                any_gpu = true;
        /* below it: random copies follow, until the next one would pass it
         * (judged, as the published simulator does, by its per-device share) */
        while (o->inflate > 0 && any_gpu) {
            int k = (int)(sim_rand(&rs) % (uint64_t)d->npods);
            const sim_pod_t *p = &d->pods[k];
            double step = p->n == 0 ? 0 : (o->whole_only || p->whole) ? 1000 : p->milli;
            if (total + step > target)
                break;
            if (n == cap_o) {
                cap_o *= 2;
                int *no = realloc(order, sizeof *order * (size_t)cap_o);
                if (no == NULL) {
                    free(order);
                    return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
                }
                order = no;
            }
            order[n++] = k;
            total += (double)s_req_milli(p, o->whole_only);
        }
    }
    gp_job_t *job = calloc(1, sizeof *job);
    gp_alloc_t *plan = malloc(sizeof *plan);
    if (job == NULL || plan == NULL) {
        free(job);
        free(plan);
        free(order);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    gp_job_init(job);
    double arrived = 0, alloc = 0;
    int next_pct = 0;
    bool got90 = false, got100 = false, got130 = false;
    for (int i = 0; i < SIM_SERIES; i++)
        res->series[i] = NAN;
    int bmax = o->batch > 1 ? o->batch : 1;
    s_bat_t *bat = malloc(sizeof *bat * (size_t)bmax);
    bool *bok = malloc(sizeof *bok * (size_t)bmax);
    if (bat == NULL || bok == NULL) {
        free(bat);
        free(bok);
        free(job);
        free(plan);
        free(order);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    double ahead = 0;
    int rc = 0;
    for (long b = 0; b < n && rc == 0;) {
        /* the batch: the next bmax arrivals, closed early by the one whose
         * arrival crosses 90, 100 or 130% (those figures are taken after
         * a whole batch, as the live pool would see them) */
        long e = b;
        while (e < n && e - b < bmax) {
            double before = cap > 0 ? ahead * 100.0 / cap : 0;
            ahead += (double)s_req_milli(&d->pods[order[e]], o->whole_only);
            double after = cap > 0 ? ahead * 100.0 / cap : 0;
            e++;
            if ((before < 90 && after >= 90) || (before < 100 && after >= 100) ||
                (before < 130 && after >= 130))
                break;
        }
        int bn = (int)(e - b);
        for (int k = 0; k < bn; k++) {
            bat[k].i = b + k;
            bat[k].key = 0;
            if (bn > 1) {
                const sim_pod_t *p = &d->pods[order[b + k]];
                s_job(d, p, o->whole_only, b + k, job);
                gp_err_t e2;
                if (gp_placement_batch_key(pl, job, &bat[k].key, &e2) < 0) {
                    rc = gp_err_set(err, e2.code, "pod %ld (line %d): %s", b + k, p->line,
                                    e2.msg);
                    break;
                }
            }
        }
        if (rc < 0)
            break;
        qsort(bat, (size_t)bn, sizeof *bat, s_cmp_bat);
        for (int k = 0; k < bn && rc == 0; k++) {
            long i = bat[k].i;
            const sim_pod_t *p = &d->pods[order[i]];
            s_job(d, p, o->whole_only, i, job);
            gp_err_t e2;
            bool ok = gp_placement_place(pl, job, plan, &e2) == 0 &&
                      gp_placement_add_alloc(pl, plan, &e2) == 0;
            if (!ok && e2.code != GP_ERR_NOTFOUND)
                rc = gp_err_set(err, e2.code, "pod %ld (line %d): %s", i, p->line, e2.msg);
            bok[i - b] = ok;
        }
        if (rc < 0)
            break;
        for (long i = b; i < e; i++) {
            const sim_pod_t *p = &d->pods[order[i]];
            double req = (double)s_req_milli(p, o->whole_only);
            if (bok[i - b]) {
                alloc += req;
                res->placed++;
            } else {
                res->failed++;
                if (p->n > 0)
                    res->failed_gpu++;
            }
            arrived += req;
            double pct = cap > 0 ? arrived * 100.0 / cap : 0;
            double apct = cap > 0 ? alloc * 100.0 / cap : 0;
            while (next_pct < SIM_SERIES && next_pct <= pct)
                res->series[next_pct++] = apct;
            if (!got90 && pct >= 90) {
                got90 = true;
                res->alloc_pct_90 = apct;
            }
            if (!got130 && pct >= 130) {
                got130 = true;
                res->alloc_pct_130 = apct;
                res->unalloc_gpus_130 = (cap - alloc) / 1000.0;
            }
            if (!got100 && pct >= 100) {
                got100 = true;
                res->alloc_pct_100 = apct;
                double fr, idle;
                gp_placement_frag(pl, &fr, &idle);
                res->frag_gpus_100 = fr / 1000.0;
                res->frag_pct_100 = idle > 0 ? fr * 100.0 / idle : 0;
            }
        }
        b = e;
    }
    free(bat);
    free(bok);
    if (rc < 0) {
        free(job);
        free(plan);
        free(order);
        return -1;
    }
    res->pods = (int)n;
    res->alloc_pct_final = cap > 0 ? alloc * 100.0 / cap : 0;
    res->final_arrived_pct = cap > 0 ? arrived * 100.0 / cap : 0;
    res->unalloc_gpus_final = (cap - alloc) / 1000.0;
    if (!got90)
        res->alloc_pct_90 = res->alloc_pct_final;
    if (!got130) {
        res->alloc_pct_130 = res->alloc_pct_final;
        res->unalloc_gpus_130 = res->unalloc_gpus_final;
    }
    if (!got100) {
        res->alloc_pct_100 = res->alloc_pct_final;
        double fr, idle;
        gp_placement_frag(pl, &fr, &idle);
        res->frag_gpus_100 = fr / 1000.0;
        res->frag_pct_100 = idle > 0 ? fr * 100.0 / idle : 0;
    }
    s_check(d, pl, alloc, res);
    free(job);
    free(plan);
    free(order);
    return 0;
}

/* ------------------------------------------------------------ time mode */

typedef struct {
    double t;
    int k;          /* index into the schedule */
} s_ev_t;

typedef struct {
    s_ev_t *a;
    int n, cap;
} s_heap_t;

static int s_heap_push(s_heap_t *h, s_ev_t e)
{
    if (h->n == h->cap) {
        int ncap = h->cap ? h->cap * 2 : 1024;
        s_ev_t *na = realloc(h->a, sizeof *na * (size_t)ncap);
        if (na == NULL)
            return -1;
        h->a = na;
        h->cap = ncap;
    }
    int i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2].t > e.t) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = e;
    return 0;
}

static s_ev_t s_heap_pop(s_heap_t *h)
{
    s_ev_t top = h->a[0], last = h->a[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].t < h->a[c].t)
            c++;
        if (h->a[c].t >= last.t)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

typedef struct {
    int pod;
    double at, dur;
} s_sched_t;

static int s_cmp_sched(const void *a, const void *b)
{
    const s_sched_t *x = a, *y = b;
    if (x->at != y->at)
        return (x->at > y->at) - (x->at < y->at);
    return (x->pod > y->pod) - (x->pod < y->pod);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort waits ascending.  A wait is never negative (a pod is placed at or
 * after its arrival), and the bits of non-negative doubles order as the
 * doubles do: a radix sort on them, a byte a pass (a pass where every
 * wait has the same byte is skipped: all zero when nothing waited).
 * qsort for anything else, or without memory for the second buffer. */
static void s_sort_waits(double *w, int n)
{
    bool radix = n > 1024;
    for (int i = 0; radix && i < n; i++)
        if (!(w[i] >= 0) || signbit(w[i]))
            radix = false;
    uint64_t *a = radix ? malloc(sizeof *a * (size_t)n) : NULL;
    uint64_t *b = radix ? malloc(sizeof *b * (size_t)n) : NULL;
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        qsort(w, (size_t)n, sizeof *w, s_cmp_double);
        return;
    }
    memcpy(a, w, sizeof *a * (size_t)n);
    for (int shift = 0; shift < 64; shift += 8) {
        size_t cnt[257] = {0};
        for (int i = 0; i < n; i++)
            cnt[(a[i] >> shift & 0xff) + 1]++;
        if (cnt[(a[0] >> shift & 0xff) + 1] == (size_t)n)
            continue;
        for (int d = 0; d < 256; d++)
            cnt[d + 1] += cnt[d];
        for (int i = 0; i < n; i++)
            b[cnt[a[i] >> shift & 0xff]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    memcpy(w, a, sizeof *w * (size_t)n);
    free(a);
    free(b);
}

enum { S_WAITING, S_PLACED, S_DROPPED };

typedef struct {
    const sim_data_t *d;
    const sim_run_opts_t *o;
    gp_placement_t *pl;
    s_sched_t *sch;
    gp_job_t *job;
    gp_alloc_t *plan;
    s_heap_t dep;
    int *queue;             /* schedule indices, FIFO */
    int qhead, qtail, qcap;
    double alloc, cap;
    int running;
    double *waits;
    int *wk;                /* schedule index of each wait */
    int nwaits;
    uint8_t *state;         /* per schedule entry: S_PLACED, S_DROPPED, else waiting */
    gp_placement_ref_t **refs;   /* per schedule entry: its allocation while placed */
    sim_rs_t *rs;           /* --rightsize (sim_rightsize.c), or NULL */
    sim_result_t *res;
    gp_err_t *err;
    int pf_k, pf_stage;     /* s_dep_ahead: the next departure, the stage reached */
} s_tm_t;

/* The next departure's removal, asked of the memory a stage at a time as
 * the loop works towards it (its reference, then the engine's stages,
 * gp_placement_prefetch_ref): each stage reads what the one before asked
 * for, some work later.  Changes nothing. */
static void s_dep_ahead(s_tm_t *m)
{
    if (m->dep.n == 0)
        return;
    int k = m->dep.a[0].k;
    if (k != m->pf_k) {
        m->pf_k = k;
        m->pf_stage = 0;
        __builtin_prefetch(&m->refs[k]);
        return;
    }
    if (m->pf_stage < 3 && m->refs[k] != NULL)
        gp_placement_prefetch_ref(m->pl, m->refs[k], m->pf_stage++);
}

/* Try to place schedule entry k at time t: 1 placed, 0 no room, -1 error. */
static int s_try(s_tm_t *m, int k, double t)
{
    s_dep_ahead(m);
    const sim_pod_t *p = &m->d->pods[m->sch[k].pod];
    s_job(m->d, p, m->o->whole_only, k, m->job);
    if (m->rs)
        sim_rs_apply(m->rs, k, p, m->job, t);
    gp_err_t e;
    if (gp_placement_place(m->pl, m->job, m->plan, &e) < 0) {
        if (e.code == GP_ERR_NOTFOUND)
            return 0;
        gp_err_set(m->err, e.code, "pod line %d: %s", p->line, e.msg);
        return -1;
    }
    if (gp_placement_add_alloc_ref(m->pl, m->plan, &m->refs[k], m->err) < 0)
        return -1;
    m->alloc += m->rs ? sim_rs_start(m->rs, k, p, m->job, t)
                      : (double)s_req_milli(p, m->o->whole_only);
    m->running++;
    m->res->placed++;
    m->state[k] = S_PLACED;
    m->wk[m->nwaits] = k;
    m->waits[m->nwaits++] = t - m->sch[k].at;
    if (m->sch[k].dur >= 0) {
        s_ev_t e2 = {t + m->sch[k].dur, k};
        if (s_heap_push(&m->dep, e2) < 0) {
            gp_err_set(m->err, GP_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    return 1;
}

static int s_retry_queue(s_tm_t *m, double t)
{
    int tries = 0, n = m->qtail - m->qhead;
    for (int i = 0; i < n && tries < 64; i++) {
        int k = m->queue[m->qhead];
        m->qhead++;
        if (m->o->max_wait >= 0 && t - m->sch[k].at > m->o->max_wait) {
            m->state[k] = S_DROPPED;
            m->res->failed++;
            if (m->d->pods[m->sch[k].pod].n > 0)
                m->res->failed_gpu++;
            continue;
        }
        tries++;
        int r = s_try(m, k, t);
        if (r < 0)
            return -1;
        if (r == 0)
            m->queue[m->qtail++] = k;    /* back of the queue; room reserved */
    }
    return 0;
}

/* An engine with one empty node of each kind in the run's inventory (the
 * nodes marked used): where "could this pod ever be placed" is asked. */
static gp_placement_t *s_kinds_engine(const sim_data_t *d, const bool *used, gp_err_t *err)
{
    gp_placement_opts_t po = GP_PLACEMENT_OPTS_DEFAULT;
    gp_placement_t *pl = gp_placement_new(&po, err);
    int *kinds = malloc(sizeof *kinds * (size_t)d->nnodes);
    gp_node_t *rec = malloc(sizeof *rec);
    int nk = 0;
    if (pl == NULL || kinds == NULL || rec == NULL) {
        if (pl != NULL)
            gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < d->nnodes; i++) {
        if (!used[i])
            continue;
        int k;
        for (k = 0; k < nk; k++)
            if (sim_node_same_kind(&d->nodes[i], &d->nodes[kinds[k]]))
                break;
        if (k < nk)
            continue;
        kinds[nk++] = i;
        sim_node_record(d, &d->nodes[i], nk, rec);
        if (gp_placement_add_node(pl, rec, err) < 0)
            goto fail;
    }
    free(kinds);
    free(rec);
    return pl;
fail:
    free(kinds);
    free(rec);
    gp_placement_destroy(&pl);
    return NULL;
}

static int s_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The queueing report: groups per priority present in the workload, then
 * per team (the workload's own, in order of appearance). */
static int s_groups(s_tm_t *m, int n, const bool *used)
{
    const sim_data_t *d = m->d;
    sim_result_t *res = m->res;
    int rc = -1, *prios = NULL, np = 0;
    int8_t *fits = NULL;       /* per pod: -1 unknown, 0 never fits, 1 fits an empty node */
    double *w = NULL;
    gp_placement_t *kpl = NULL;
    gp_job_t *job = NULL;
    gp_alloc_t *plan = NULL;
    if ((prios = malloc(sizeof *prios * (size_t)d->npods)) == NULL ||
        (fits = malloc((size_t)d->npods)) == NULL ||
        (w = malloc(sizeof *w * (size_t)(m->nwaits + 1))) == NULL ||
        (job = calloc(1, sizeof *job)) == NULL || (plan = malloc(sizeof *plan)) == NULL) {
        gp_err_set(m->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memset(fits, -1, (size_t)d->npods);
    for (int i = 0; i < d->npods; i++)
        prios[i] = d->pods[i].priority;
    qsort(prios, (size_t)d->npods, sizeof *prios, s_cmp_int);
    for (int i = 0; i < d->npods; i++)
        if (np == 0 || prios[np - 1] != prios[i])
            prios[np++] = prios[i];
    res->ngroups = np + d->nteams;
    if ((res->groups = calloc((size_t)res->ngroups, sizeof *res->groups)) == NULL) {
        gp_err_set(m->err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int g = 0; g < res->ngroups; g++) {
        res->groups[g].team = g >= np;
        res->groups[g].key = g < np ? prios[g] : g - np;
    }
    /* the pods never placed, by why */
    for (int k = 0; k < n; k++) {
        if (m->state[k] == S_PLACED)
            continue;
        int pi = m->sch[k].pod;
        const sim_pod_t *p = &d->pods[pi];
        if (fits[pi] < 0) {
            if (kpl == NULL && (kpl = s_kinds_engine(d, used, m->err)) == NULL)
                goto cleanup;
            s_job(d, p, m->o->whole_only, k, job);
            gp_err_t e;
            fits[pi] = gp_placement_place(kpl, job, plan, &e) == 0;
        }
        double *why = fits[pi] == 0 ? &res->never_fit : m->state[k] == S_DROPPED ? &res->dropped
                                                                                  : NULL;
        if (why)
            (*why)++;
        for (int g = 0; g < res->ngroups; g++) {
            sim_group_t *gr = &res->groups[g];
            if (gr->team ? gr->key != p->team : gr->key != p->priority)
                continue;
            if (fits[pi] == 0)
                gr->never_fit++;
            else if (m->state[k] == S_DROPPED)
                gr->dropped++;
            else
                gr->queued_end++;
        }
    }
    /* the waits of each group */
    for (int g = 0; g < res->ngroups; g++) {
        sim_group_t *gr = &res->groups[g];
        int c = 0;
        double sum = 0;
        for (int i = 0; i < m->nwaits; i++) {
            const sim_pod_t *p = &d->pods[m->sch[m->wk[i]].pod];
            if (gr->team ? gr->key == p->team : gr->key == p->priority) {
                w[c++] = m->waits[i];
                sum += m->waits[i];
            }
        }
        gr->placed = c;
        if (c == 0)
            continue;
        s_sort_waits(w, c);
        gr->wait_mean = sum / c;
        gr->wait_p50 = w[(int)(0.50 * (c - 1))];
        gr->wait_p95 = w[(int)(0.95 * (c - 1))];
        gr->wait_p99 = w[(int)(0.99 * (c - 1))];
    }
    rc = 0;
cleanup:
    gp_placement_destroy(&kpl);
    free(prios);
    free(fits);
    free(w);
    free(job);
    free(plan);
    return rc;
}

static int s_time(const sim_data_t *d, const sim_run_opts_t *o, gp_placement_t *pl,
                  double cap, const bool *used, sim_result_t *res, gp_err_t *err)
{
    uint64_t rs = o->seed;
    int n = o->arrival_rate > 0 && o->count > 0 ? o->count : d->npods;
    s_tm_t m;
    memset(&m, 0, sizeof m);
    m.d = d;
    m.o = o;
    m.pl = pl;
    m.cap = cap;
    m.res = res;
    m.err = err;
    m.pf_k = -1;
    m.sch = malloc(sizeof *m.sch * (size_t)n);
    m.job = calloc(1, sizeof *m.job);
    m.plan = malloc(sizeof *m.plan);
    m.qcap = 2 * n + 2;
    m.queue = malloc(sizeof *m.queue * (size_t)m.qcap);
    m.waits = malloc(sizeof *m.waits * (size_t)n + 8);
    m.wk = malloc(sizeof *m.wk * (size_t)n + 8);
    m.state = calloc((size_t)n + 1, 1);
    m.refs = calloc((size_t)n + 1, sizeof *m.refs);
    m.rs = o->rightsize ? sim_rs_new(d, pl, n) : NULL;
    int bmax = o->batch > 1 ? o->batch : 1;
    s_bat_t *bat = malloc(sizeof *bat * (size_t)bmax);
    int rc = -1;
    if (!m.sch || !m.job || !m.plan || !m.queue || !m.waits || !m.wk || !m.state || !m.refs || !bat ||
        (o->rightsize && !m.rs)) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    double t = 0;
    for (int i = 0; i < n; i++) {
        if (o->arrival_rate > 0) {
            m.sch[i].pod = o->count > 0 ? (int)(sim_rand(&rs) % (uint64_t)d->npods) : i;
            t += -log(1.0 - sim_rand01(&rs)) / o->arrival_rate;
            m.sch[i].at = t;
        } else {
            m.sch[i].pod = i;
            m.sch[i].at = d->pods[i].arrival >= 0 ? d->pods[i].arrival : 0;
        }
        const sim_pod_t *p = &d->pods[m.sch[i].pod];
        if (o->duration > 0)
            m.sch[i].dur = o->duration_fixed ? o->duration
                                             : -log(1.0 - sim_rand01(&rs)) * o->duration;
        else
            m.sch[i].dur = p->duration;
    }
    qsort(m.sch, (size_t)n, sizeof *m.sch, s_cmp_sched);
    double t0 = n ? m.sch[0].at : 0, tend = n ? m.sch[n - 1].at : 0;
    for (int i = 0; i < n; i++)
        if (m.sch[i].dur >= 0 && m.sch[i].at + m.sch[i].dur > tend)
            tend = m.sch[i].at + m.sch[i].dur;
    double step = o->sample > 0 ? o->sample : (tend - t0) / 200.0;
    if (step <= 0)
        step = 1;
    int scap = (int)((tend - t0) / step) + 4;
    if (scap > 100000)
        scap = 100000;
    res->samples = calloc((size_t)scap, sizeof *res->samples);
    if (res->samples == NULL) {
        gp_err_set(err, GP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    double next_sample = t0, last_t = t0, util_int = 0;
    int i = 0;
    for (;;) {
        bool dep = m.dep.n > 0 && (i >= n || m.dep.a[0].t <= m.sch[i].at);
        if (!dep && i >= n)
            break;
        /* a batch: the next arrivals up to --batch with no departure
         * between them, placed together when the last of them arrives */
        int last = i + 1;
        while (!dep && last < n && last - i < bmax &&
               !(m.dep.n > 0 && m.dep.a[0].t <= m.sch[last].at))
            last++;
        double now = dep ? m.dep.a[0].t : m.sch[last - 1].at;
        while (next_sample <= now && res->nsamples < scap) {
            sim_sample_t *s = &res->samples[res->nsamples++];
            s->t = next_sample - t0;
            s->util_pct = cap > 0 ? m.alloc * 100.0 / cap : 0;
            s->running = m.running;
            s->queued = m.qtail - m.qhead;
            next_sample += step;
        }
        double u = cap > 0 ? m.alloc * 100.0 / cap : 0;
        util_int += u * (now - last_t);
        last_t = now;
        if (dep) {
            s_ev_t e = s_heap_pop(&m.dep);
            const sim_pod_t *p = &d->pods[m.sch[e.k].pod];
            gp_placement_remove_ref(pl, m.refs[e.k]);
            m.refs[e.k] = NULL;
            m.alloc -= m.rs ? sim_rs_end(m.rs, e.k, p, now, m.sch[e.k].dur)
                            : (double)s_req_milli(p, o->whole_only);
            m.running--;
            if (s_retry_queue(&m, now) < 0)
                goto cleanup;
        } else {
            int bn = last - i;
            for (int k = 0; k < bn; k++) {
                bat[k].i = i + k;
                bat[k].key = 0;
                if (bn > 1) {
                    const sim_pod_t *p = &d->pods[m.sch[i + k].pod];
                    s_job(d, p, o->whole_only, i + k, m.job);
                    gp_err_t e2;
                    if (gp_placement_batch_key(pl, m.job, &bat[k].key, &e2) < 0) {
                        gp_err_set(err, e2.code, "pod line %d: %s", p->line, e2.msg);
                        goto cleanup;
                    }
                }
            }
            if (bn > 1)
                qsort(bat, (size_t)bn, sizeof *bat, s_cmp_bat);
            for (int k = 0; k < bn; k++)
                if (s_try(&m, (int)bat[k].i, now) < 0)
                    goto cleanup;
            for (; i < last; i++) {         /* the rest wait, in arrival order */
                if (m.state[i] == S_PLACED)
                    continue;
                if (o->max_wait == 0) {
                    m.state[i] = S_DROPPED;
                    res->failed++;
                    if (d->pods[m.sch[i].pod].n > 0)
                        res->failed_gpu++;
                } else {
                    if (m.qtail == m.qcap) {     /* compact */
                        memmove(m.queue, m.queue + m.qhead,
                                sizeof *m.queue * (size_t)(m.qtail - m.qhead));
                        m.qtail -= m.qhead;
                        m.qhead = 0;
                    }
                    m.queue[m.qtail++] = i;
                }
            }
        }
        s_dep_ahead(&m);
        if (u > res->util_peak)
            res->util_peak = u;
        double ql = m.qtail - m.qhead;
        if (ql > res->queue_peak)
            res->queue_peak = ql;
        if (m.qtail + 64 >= m.qcap) {
            memmove(m.queue, m.queue + m.qhead, sizeof *m.queue * (size_t)(m.qtail - m.qhead));
            m.qtail -= m.qhead;
            m.qhead = 0;
        }
    }
    res->pods = n;
    res->unplaced = m.qtail - m.qhead;
    res->failed += res->unplaced;
    res->util_mean = last_t > t0 ? util_int / (last_t - t0) : 0;
    if (s_groups(&m, n, used) < 0)
        goto cleanup;
    if (m.nwaits > 0) {
        double s = 0;
        for (int k = 0; k < m.nwaits; k++)
            s += m.waits[k];
        res->wait_mean = s / m.nwaits;
        s_sort_waits(m.waits, m.nwaits);
        res->wait_p50 = m.waits[(int)(0.50 * (m.nwaits - 1))];
        res->wait_p95 = m.waits[(int)(0.95 * (m.nwaits - 1))];
        res->wait_p99 = m.waits[(int)(0.99 * (m.nwaits - 1))];
    }
    res->alloc_pct_final = cap > 0 ? m.alloc * 100.0 / cap : 0;
    if (m.rs)
        sim_rs_result(m.rs, &res->rs);
    s_check(d, pl, m.alloc, res);
    rc = 0;
cleanup:
    free(bat);
    sim_rs_destroy(&m.rs);
    free(m.wk);
    free(m.state);
    free(m.refs);
    free(m.sch);
    free(m.job);
    free(m.plan);
    free(m.queue);
    free(m.waits);
    free(m.dep.a);
    return rc;
}

int sim_run(const sim_data_t *d, const sim_run_opts_t *o, const gp_shape_t *shapes,
            const double *weights, int nshapes, sim_result_t *res, gp_err_t *err)
{
    memset(res, 0, sizeof *res);
    res->policy = o->policy;
    res->seed = o->seed;
    int64_t t0 = gp_mono_ns();
    double cap;
    bool *used = o->time_mode ? calloc((size_t)d->nnodes, sizeof *used) : NULL;
    if (o->time_mode && used == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    gp_placement_t *pl = s_engine(d, o, shapes, weights, nshapes, &cap, used, err);
    if (pl == NULL) {
        free(used);
        return -1;
    }
    res->cap_gpus = cap / 1000.0;
    int rc = o->time_mode ? s_time(d, o, pl, cap, used, res, err)
                          : s_inflate(d, o, pl, cap, res, err);
    gp_placement_destroy(&pl);
    free(used);
    res->wall_s = (double)(gp_mono_ns() - t0) / 1e9;
    return rc;
}

void sim_result_free(sim_result_t *r)
{
    free(r->samples);
    r->samples = NULL;
    r->nsamples = 0;
    free(r->groups);
    r->groups = NULL;
    r->ngroups = 0;
}
