/*
 * rightsize.c - the agent's half of right-sizing (common/rightsize.h):
 * what each right-sized run used, turned into samples of its class, and
 * the class summaries in etcd brought up to date.
 *
 * Only jobs with `rightsize` recommend or auto are learned from.  For each
 * such run the agent keeps, beside the job:
 *   busy windows  at every usage sample (usage-interval) in which the slice
 *                 was charged GPU time, the share it achieved over that
 *                 interval (GPU time charged / wall time, the busiest of
 *                 its devices) -- the same figure as
 *                 gpupool_agent_slice_compute_percent
 *   at the end    the slice region's exact memory peak (the highest of its
 *                 devices), and whether an allocation was refused (an OOM:
 *                 the region's oom_count); whether its launches waited for
 *                 compute budget more than 5% of the time since its last
 *                 sample (throttled_ns: it wanted more than its cap); the
 *                 last window, from the last usage sample to the end
 * The run becomes one sample of its class when it ends (also when it is
 * stopped), and a long run one sample per rightsize-interval (1 min) while
 * it runs, with its peak so far and its windows since the last sample.
 *
 * Writing.  Samples wait in a per-class list; each tick, the classes with
 * samples (up to 32) are read (P rightsize/<class>, one batch), the samples
 * added (decaying what is there: rightsize-half-life) and written back (one
 * batch of transactions, each comparing its key's mod revision with the one
 * read, so that two agents never lose each other's samples): two round
 * trips however many classes.  A refused compare or an error keeps the
 * samples for a later tick (a second later).  One write per class per tick, whatever the
 * number of runs that ended: placements themselves write nothing here.
 * A stored summary that is not valid is reported (log, counter
 * gpupool_agent_rightsize_bad_summaries_total) and replaced, never merged.
 *
 * OOM.  A run of an `auto` job that fails after an allocation was refused
 * in its slice died of OOM: its end report (jobs.c) sets the record's
 * rightsize_floor_mib to the bump, max(limit + oom-min, limit x oom-factor)
 * (the run wanted more than its limit, so the limit stands for its peak),
 * and requeues it within max_restarts whatever its restart policy; the
 * coordinator places the next run with at least that much.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "keys.h"
#include "log.h"
#include "rightsize.h"
#include "txnbuild.h"
#include "util.h"

#include "banned.h"

#define S_MAX_PENDING 64          /* samples waiting per class (more are dropped, counted) */
#define S_CLASSES_PER_TICK 32

typedef struct {
    char owner[GP_SHORT_LEN];
    int n;
    gp_rightsize_run_t runs[S_MAX_PENDING];
} s_pending_t;

static gp_rightsize_opts_t s_opts(const agent_t *a)
{
    gp_rightsize_opts_t o = GP_RIGHTSIZE_OPTS_DEFAULT;
    o.half_life_ms = a->cfg.rightsize_half_life_ms;
    o.oom_min_mib = a->cfg.rightsize_oom_min_mib;
    o.oom_factor = a->cfg.rightsize_oom_factor;
    return o;
}

static int s_learns(const agent_job_t *j)
{
    /* A started job had its record (kept while a failed report re-reads it). */
    return j->started && j->rec.rightsize != GP_RIGHTSIZE_OFF && j->region != NULL;
}

static gp_rightsize_run_t *s_run(agent_job_t *j)
{
    if (j->rs_run == NULL)
        j->rs_run = calloc(1, sizeof *j->rs_run);
    return j->rs_run;
}

void agent_rightsize_window(agent_t *a, agent_job_t *j, int ndev, const uint64_t *charged_delta,
                            int64_t interval_ms)
{
    (void)a;
    if (!s_learns(j) || interval_ms <= 0)
        return;
    double best = -1;
    for (int d = 0; d < ndev; d++)
        if (charged_delta[d] > 0) {
            double pct = 100.0 * (double)charged_delta[d] / ((double)interval_ms * 1e6);
            if (pct > best)
                best = pct;
        }
    gp_rightsize_run_t *r = best >= 0 ? s_run(j) : NULL;
    if (r)
        gp_rightsize_run_busy(r, best);
}

/* The run's figures so far into a sample for its class; the run's windows
 * start again. */
static void s_sample(agent_t *a, agent_job_t *j, int end)
{
    char cls[GP_RIGHTSIZE_CLASS_LEN];
    if (gp_rightsize_class(j->rec.owner, j->rec.cls, j->alloc.job, cls, sizeof cls) < 0) {
        gp_log_warn("job has no valid right-sizing class, not learned job=%s owner=%s",
                    j->alloc.job, j->rec.owner);
        return;
    }
    gp_rightsize_run_t *r = s_run(j);
    if (r == NULL)
        return;
    gp_rightsize_opts_t o = s_opts(a);
    int64_t peak = -1, limit = 0, now = gp_mono_ms();
    int64_t since = j->rs_last_sample_ms ? j->rs_last_sample_ms : j->rs_started_ms;
    int oom = 0;
    gp_slice_region_reclaim(j->region);
    for (int d = 0; d < gp_slice_region_ndevices(j->region); d++) {
        gp_slice_usage_t u;
        if (gp_slice_region_usage(j->region, d, &u) < 0)
            continue;
        if ((int64_t)(u.mem_peak >> 20) > peak)
            peak = (int64_t)((u.mem_peak + (1 << 20) - 1) >> 20);
        if (u.oom_count > j->rs_oom_seen[d]) {
            oom = 1;
            j->rs_oom_seen[d] = u.oom_count;
            if (u.mem_limit != UINT64_MAX && (int64_t)(u.mem_limit >> 20) > limit)
                limit = (int64_t)(u.mem_limit >> 20);
        }
        if (u.throttled_ns > j->rs_throttled_seen[d]) {
            uint64_t th = u.throttled_ns - j->rs_throttled_seen[d];
            j->rs_throttled_seen[d] = u.throttled_ns;
            if (since > 0 && now > since && (double)th > 0.05 * (double)(now - since) * 1e6 &&
                d < j->alloc.ndevices && !j->alloc.devices[d].whole &&
                j->alloc.devices[d].compute_permille > 0) {
                r->throttled = 1;
                r->cap_pct = (j->alloc.devices[d].compute_permille + 9) / 10;
            }
        }
        if (end && j->prev_sample_ms && u.charged_ns > j->prev_charged_ns[d]) {
            int64_t iv = gp_mono_ms() - j->prev_sample_ms;
            uint64_t delta = u.charged_ns - j->prev_charged_ns[d];
            if (iv > 0)
                gp_rightsize_run_busy(r, 100.0 * (double)delta / ((double)iv * 1e6));
        } else if (end && !j->prev_sample_ms && u.charged_ns > 0 && j->rs_started_ms) {
            int64_t iv = gp_mono_ms() - j->rs_started_ms;
            if (iv > 0)
                gp_rightsize_run_busy(r, 100.0 * (double)u.charged_ns / ((double)iv * 1e6));
        }
    }
    if (oom && limit > peak)
        peak = limit;   /* it wanted more than its limit */
    r->mem_peak_mib = peak;
    r->oom = oom;
    r->end = end;
    r->asked_mem_mib = j->rec.spec.mem_mib;
    r->asked_compute_pct = j->rec.spec.compute_permille / 10;
    if (end && oom && j->rec.rightsize == GP_RIGHTSIZE_AUTO)
        j->rs_oom_bump_mib = gp_rightsize_oom_bump(peak, &o);

    s_pending_t *p = gp_strmap_get(a->rs_pending, cls);
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL || gp_strmap_put(a->rs_pending, cls, p) < 0) {
            free(p);
            return;
        }
        gp_strlcpy(p->owner, j->rec.owner, sizeof p->owner);
    }
    if (p->n < S_MAX_PENDING) {
        p->runs[p->n++] = *r;
    } else {
        gp_metric_inc(a->m.rightsize_dropped);
    }
    memset(r, 0, sizeof *r);
    j->rs_last_sample_ms = gp_mono_ms();
}

void agent_rightsize_run_end(agent_t *a, agent_job_t *j)
{
    if (s_learns(j))
        s_sample(a, j, 1);
}

/* The class's summary with the samples added, as text (caller frees); a
 * stored value that is not a valid summary of this class is reported and
 * started again. */
static char *s_merged(agent_t *a, const char *key, const char *cls, const s_pending_t *p,
                      const gp_etcd_result_t *res)
{
    gp_err_t err;
    gp_rightsize_t *s = NULL;
    if (res && res->n_kvs) {
        s = gp_rightsize_from_json_str(res->kvs[0].value, res->kvs[0].value_len, &err);
        if (s && strcmp(gp_rightsize_class_name(s), cls) != 0) {
            gp_err_set(&err, GP_ERR_INVALID, "class: \"%s\"", gp_rightsize_class_name(s));
            gp_rightsize_destroy(&s);
        }
        if (s == NULL) {
            gp_metric_inc(a->m.rightsize_bad_summaries);
            gp_log_warn("ignoring a malformed usage summary, starting it again key=%s err=\"%s\"",
                        key, err.msg);
        }
    }
    if (s == NULL && (s = gp_rightsize_new(cls, p->owner)) == NULL)
        return NULL;
    gp_rightsize_opts_t o = s_opts(a);
    int64_t now = gp_wall_ms();
    for (int i = 0; i < p->n; i++)
        gp_rightsize_add_run(s, &p->runs[i], now, &o);
    char *text = gp_rightsize_dump(s);
    gp_rightsize_destroy(&s);
    return text;
}

/* Up to S_CLASSES_PER_TICK classes: their summaries read in one batch, then
 * written back in one batch of compare-and-puts (two round trips in all).
 * Classes written leave the pending map; the others wait for a later tick. */
static int s_flush(agent_t *a)
{
    char cls[S_CLASSES_PER_TICK][GP_RIGHTSIZE_CLASS_LEN];
    s_pending_t *pend[S_CLASSES_PER_TICK];
    int64_t mod[S_CLASSES_PER_TICK];
    int n = 0, failed = 0;
    for (gp_strmap_iter_t it = gp_strmap_first(a->rs_pending); it.key && n < S_CLASSES_PER_TICK;
         it = gp_strmap_next(a->rs_pending, it)) {
        gp_strlcpy(cls[n], it.key, sizeof cls[n]);
        pend[n++] = it.value;
    }
    gp_etcd_batch_t *rb = gp_etcd_batch_new(a->etcd), *wb = gp_etcd_batch_new(a->etcd);
    gp_txnb_t *t = gp_txnb_new();
    char key[GP_KEY_MAX];
    gp_err_t err;
    int written[S_CLASSES_PER_TICK] = { 0 };
    if (rb == NULL || wb == NULL || t == NULL) {
        failed = 1;
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        gp_etcd_op_t op = { .type = GP_ETCD_OP_RANGE, .key = gp_key_rightsize(key, a->cfg.prefix,
                                                                                cls[i]) };
        gp_etcd_batch_add(rb, &op, NULL);
    }
    if (gp_etcd_batch_run(rb, 64, &err) < 0 && err.code != GP_OK)
        agent_metrics_etcd_error(&a->m, "rightsize-read", &err);
    int nw = 0, widx[S_CLASSES_PER_TICK];
    for (int i = 0; i < n; i++) {
        const gp_etcd_result_t *res;
        if (gp_etcd_batch_result(rb, (size_t)i, &res, &err) < 0) {
            failed = 1;
            continue;
        }
        mod[i] = res->n_kvs ? res->kvs[0].mod_revision : 0;
        gp_key_rightsize(key, a->cfg.prefix, cls[i]);
        char *text = s_merged(a, key, cls[i], pend[i], res);
        if (text == NULL) {
            failed = 1;
            continue;
        }
        gp_txnb_reset(t);
        gp_txnb_cmp(t, key, GP_ETCD_CMP_MOD, mod[i]);
        gp_txnb_put(t, key, text);
        free(text);
        if (gp_txnb_add(t, wb, &err) == 0)
            widx[nw++] = i;
    }
    if (nw > 0 && gp_etcd_batch_run(wb, 64, &err) < 0 && err.code != GP_OK)
        agent_metrics_etcd_error(&a->m, "rightsize-write", &err);
    for (int k = 0; k < nw; k++) {
        const gp_etcd_result_t *res;
        if (gp_etcd_batch_result(wb, (size_t)k, &res, &err) < 0 || !res->succeeded)
            failed = 1;   /* an error, or another agent wrote it first: again later */
        else
            written[widx[k]] = 1;
    }
cleanup:
    for (int i = 0; i < n; i++) {
        if (!written[i])
            continue;
        gp_log_debug("usage summary updated class=%s samples=%d", cls[i], pend[i]->n);
        free(gp_strmap_del(a->rs_pending, cls[i]));
    }
    gp_txnb_destroy(&t);
    gp_etcd_batch_destroy(&rb);
    gp_etcd_batch_destroy(&wb);
    return failed ? -1 : 0;
}

void agent_rightsize_tick(agent_t *a)
{
    int64_t now = gp_mono_ms();
    /* The samples are an interval apart (a minute by default): looking at
     * the jobs once a second, or four times an interval when it is shorter
     * (not at every tick), and only at those with a slice region (a
     * simulated pool's thousands of reservations have none), keeps the
     * scan from stalling the loop. */
    if (a->rs_regions && now >= a->rs_next_scan_ms) {
        int64_t step = a->cfg.rightsize_interval_ms / 4;
        a->rs_next_scan_ms = now + (step < 1000 ? step : 1000);
        for (gp_strmap_iter_t it = gp_strmap_first(a->rs_regions); it.key;
             it = gp_strmap_next(a->rs_regions, it)) {
            agent_job_t *j = it.value;
            if (!s_learns(j) || !j->started || j->ended || j->stopping)
                continue;
            if (j->rs_started_ms == 0)
                j->rs_started_ms = j->rs_last_sample_ms = now;
            else if (now - j->rs_last_sample_ms >= a->cfg.rightsize_interval_ms)
                s_sample(a, j, 0);
        }
    }
    if (gp_strmap_size(a->rs_pending) == 0 || now < a->rs_next_flush_ms)
        return;
    /* After a failure wait a second: a full or unreachable store is not hammered. */
    a->rs_next_flush_ms = s_flush(a) < 0 ? now + 1000 : 0;
}

int agent_rightsize_start(agent_t *a, gp_err_t *err)
{
    a->rs_pending = gp_strmap_new();
    a->rs_regions = gp_strmap_new();
    return a->rs_pending && a->rs_regions ? 0 : gp_err_set(err, GP_ERR_NOMEM, "out of memory");
}

void agent_rightsize_track(agent_t *a, agent_job_t *j)
{
    if (a->rs_regions && gp_strmap_put(a->rs_regions, j->alloc.job, j) < 0)
        gp_log_warn("out of memory: job=%s is not right-sized", j->alloc.job);
}

void agent_rightsize_forget(agent_t *a, agent_job_t *j)
{
    /* (an older entry of the same job id may have been replaced by now) */
    if (a->rs_regions && gp_strmap_get(a->rs_regions, j->alloc.job) == j)
        gp_strmap_del(a->rs_regions, j->alloc.job);
}

void agent_rightsize_stop(agent_t *a)
{
    gp_strmap_destroy(&a->rs_regions);   /* (the jobs' entries: owned by a->jobs) */
    if (a->rs_pending == NULL)
        return;
    if (gp_strmap_size(a->rs_pending) > 0)
        agent_rightsize_tick(a);   /* a last try: SIGTERM should lose nothing it can write */
    for (gp_strmap_iter_t it = gp_strmap_first(a->rs_pending); it.key;
         it = gp_strmap_next(a->rs_pending, it)) {
        gp_log_warn("usage samples not written class=%s", it.key);
        free(it.value);
    }
    gp_strmap_destroy(&a->rs_pending);
}
