/*
 * rightsize.c - the coordinator's half of right-sizing (common/rightsize.h):
 * the classes' usage summaries from the cache, the slice a right-sized run
 * is placed with, and what the pool would free.
 *
 * The summaries P rightsize/<class> (written by agents) are in the range
 * the cache watches, so every coordinator holds each one parsed, updated by
 * the watch and rebuilt by a re-list: a restarted coordinator loses
 * nothing.  A summary that does not parse is logged and counted
 * (gpupool_coordinator_bad_records_total{kind="rightsize"}) and ignored:
 * its class is treated as one without history until an agent replaces it.
 *
 * Placement (round.c, s_rank): a job with `rightsize: auto` asking for a
 * fractional slice (mem_mib and/or compute_percent) is ranked, bid for and
 * committed with gp_rightsize_apply's sizes: the recommendation, never
 * above the request unless an OOM bump asks (the class's max, or the
 * record's rightsize_floor_mib after an OOM of this job), never below the
 * class's observed max; no history: as requested.  The allocation holds
 * what was applied, so quotas (quota.c, from allocations) charge that; the
 * record keeps the request in its spec and the applied sizes in "applied"
 * (written by the agent).  Whole devices, mem_percent and gangs are placed
 * as requested.
 *
 * GPUs freed: for every committed fractional allocation of a class with a
 * recommendation, its GPU share (the larger of its memory and compute
 * shares of the device, coord_alloc_milli) minus the share it would have
 * with gp_rightsize_apply's sizes (never negative), summed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "keys.h"
#include "log.h"
#include "rightsize.h"
#include "util.h"

#include "banned.h"

/* The summaries of the job classes, valid ones only: class -> gp_rightsize_t*. */
struct coord_rightsize {
    gp_strmap_t *classes;
};

/* The summaries' map, or NULL while the cache is not listed. */
static gp_strmap_t *s_classes(const coord_t *c)
{
    return c->rightsize ? c->rightsize->classes : NULL;
}

static gp_rightsize_opts_t s_opts(const coord_t *c)
{
    gp_rightsize_opts_t o = GP_RIGHTSIZE_OPTS_DEFAULT;
    o.mem_percentile = c->cfg.rightsize_mem_percentile;
    o.mem_margin = c->cfg.rightsize_mem_margin;
    o.mem_granularity_mib = c->cfg.rightsize_granularity_mib;
    o.compute_percentile = c->cfg.rightsize_compute_percentile;
    o.compute_margin = c->cfg.rightsize_compute_margin;
    o.min_runs = c->cfg.rightsize_min_runs;
    return o;
}

void coord_rightsize_put(coord_t *c, const char *cls, const char *value, size_t len)
{
    gp_err_t err;
    gp_rightsize_t *old = gp_strmap_del(c->rightsize->classes, cls);
    gp_rightsize_destroy(&old);
    gp_rightsize_t *s = gp_rightsize_from_json_str(value, len, &err);
    if (s && strcmp(gp_rightsize_class_name(s), cls) != 0) {
        gp_err_set(&err, GP_ERR_INVALID, "class: \"%s\" under the key of \"%s\"",
                   gp_rightsize_class_name(s), cls);
        gp_rightsize_destroy(&s);
    }
    if (s == NULL) {
        gp_metric_inc(c->m.bad_records[COORD_RECORD_RIGHTSIZE]);
        gp_log_warn("ignoring a malformed usage summary class=%s err=\"%s\"", cls, err.msg);
        return;
    }
    if (gp_strmap_put(c->rightsize->classes, cls, s) < 0)
        gp_rightsize_destroy(&s);
}

void coord_rightsize_del(coord_t *c, const char *cls)
{
    gp_rightsize_t *old = gp_strmap_del(c->rightsize->classes, cls);
    gp_rightsize_destroy(&old);
}

static void s_forget(coord_rightsize_t *rs)
{
    for (gp_strmap_iter_t it = rs->classes ? gp_strmap_first(rs->classes) : (gp_strmap_iter_t){ 0 };
         it.key; it = gp_strmap_next(rs->classes, it)) {
        gp_rightsize_t *s = it.value;
        gp_rightsize_destroy(&s);
    }
    gp_strmap_destroy(&rs->classes);
}

int coord_rightsize_reset(coord_t *c)
{
    if (c->rightsize == NULL && (c->rightsize = calloc(1, sizeof *c->rightsize)) == NULL)
        return -1;
    s_forget(c->rightsize);
    c->rightsize->classes = gp_strmap_new();
    return c->rightsize->classes ? 0 : -1;
}

void coord_rightsize_clear(coord_t *c)
{
    if (c->rightsize == NULL)
        return;
    s_forget(c->rightsize);
    free(c->rightsize);
    c->rightsize = NULL;
}

static int s_recommend(coord_t *c, const char *cls, gp_rightsize_rec_t *rec)
{
    const gp_rightsize_t *s = cls[0] && s_classes(c) ? gp_strmap_get(s_classes(c), cls) : NULL;
    gp_rightsize_opts_t o = s_opts(c);
    gp_rightsize_recommend(s, &o, rec);
    return rec->have;
}

/* The largest device memory of the nodes in the cache, MiB. */
static int64_t s_largest_device(coord_t *c)
{
    int64_t best = 0;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        json_t *d;
        size_t i;
        json_array_foreach(n->present ? json_object_get(n->record, "devices") : NULL, i, d)
            if (json_integer_value(json_object_get(d, "mem_mib")) > best)
                best = json_integer_value(json_object_get(d, "mem_mib"));
    }
    return best;
}

void coord_rightsize_apply(coord_t *c, const coord_job_t *j, gp_job_t *job)
{
    if (j->rightsize != GP_RIGHTSIZE_AUTO || job->whole || job->devices == 0 ||
        job->gang[0] || (job->mem_mib == 0 && job->compute_permille == 0))
        return;
    gp_rightsize_rec_t rec;
    s_recommend(c, j->cls, &rec);
    int64_t mem;
    int cpt;
    gp_rightsize_apply(&rec, job->mem_mib, job->compute_permille / 10, j->floor_mib, 0, &mem,
                       &cpt);
    if (mem > job->mem_mib)   /* an OOM bump: at most the largest device in the pool */
        gp_rightsize_apply(&rec, job->mem_mib, job->compute_permille / 10, j->floor_mib,
                           s_largest_device(c), &mem, &cpt);
    if (mem != job->mem_mib || cpt != job->compute_permille / 10)
        gp_log_debug("right-sized job=%s class=%s mem_mib=%lld->%lld compute=%d->%d", j->id,
                     j->cls, (long long)job->mem_mib, (long long)mem, job->compute_permille / 10,
                     cpt);
    if (job->mem_mib > 0)
        job->mem_mib = mem;
    if (job->compute_permille > 0 && cpt != job->compute_permille / 10)
        job->compute_permille = cpt * 10;
}

/* The GPU thousandths an allocation would free at the class's sizes. */
static int64_t s_freed(coord_t *c, const gp_alloc_t *al, const gp_rightsize_rec_t *rec,
                       int64_t *mem_freed)
{
    coord_node_t *n = coord_cache_node(c, al->node, 0);
    json_t *devs = n && n->record ? json_object_get(n->record, "devices") : NULL;
    int64_t freed = 0;
    for (int d = 0; d < al->ndevices; d++) {
        const gp_alloc_dev_t *ad = &al->devices[d];
        int64_t dm = json_integer_value(json_object_get(json_array_get(devs, (size_t)ad->index),
                                                        "mem_mib"));
        if (ad->whole || dm <= 0)
            continue;
        int64_t mem;
        int cpt;
        gp_rightsize_apply(rec, ad->mem_mib, ad->compute_permille / 10, 0, dm, &mem, &cpt);
        int64_t now = ad->mem_mib * 1000 / dm, then = mem * 1000 / dm;
        if (ad->compute_permille > now)
            now = ad->compute_permille;
        int64_t cpm = ad->compute_permille > 0 ? cpt * 10 : 0;
        if (cpm > then)
            then = cpm;
        if (now > then)
            freed += now - then;
        if (ad->mem_mib > mem)
            *mem_freed += ad->mem_mib - mem;
    }
    return freed;
}

typedef struct {
    int64_t jobs, milli, mem;
    gp_rightsize_rec_t rec;   /* the class's, computed once */
} s_waste_t;

/* Per class with a recommendation: jobs allocated now and what they would
 * free (every job of the class, whatever its rightsize: what the pool would
 * free if every class used its recommendation). */
static gp_strmap_t *s_waste(coord_t *c)
{
    gp_strmap_t *w = gp_strmap_new();
    if (w == NULL || s_classes(c) == NULL || gp_strmap_size(s_classes(c)) == 0)
        return w;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_ALLOCS); it.key;
         it = coord_cache_next(c, it)) {
        const gp_alloc_t *al = it.value;
        coord_job_t *j = coord_cache_job(c, al->job);
        if (j == NULL || j->cls[0] == '\0' || gp_strmap_get(c->rightsize->classes, j->cls) == NULL)
            continue;
        s_waste_t *x = gp_strmap_get(w, j->cls);
        if (x == NULL) {
            if ((x = calloc(1, sizeof *x)) == NULL || gp_strmap_put(w, j->cls, x) < 0) {
                free(x);
                continue;
            }
            s_recommend(c, j->cls, &x->rec);
        }
        x->jobs++;
        if (x->rec.have)
            x->milli += s_freed(c, al, &x->rec, &x->mem);
    }
    return w;
}

static void s_waste_free(gp_strmap_t **w)
{
    if (*w == NULL)
        return;
    for (gp_strmap_iter_t it = gp_strmap_first(*w); it.key; it = gp_strmap_next(*w, it))
        free(it.value);
    gp_strmap_destroy(w);
}

void coord_rightsize_http(coord_t *c, gp_http_req_t *req)
{
    const char *cls = gp_http_req_query(req, "class"), *owner = gp_http_req_query(req, "owner");
    const char *id = gp_http_req_query(req, "job");
    json_t *jobj = NULL;
    if (id) {
        coord_job_t *j = gp_name_valid(id) ? coord_cache_job(c, id) : NULL;
        if (j == NULL) {
            gp_http_respond_error(req, 404, "no such job %.128s", id);
            return;
        }
        json_t *rec = j->raw ? json_loads(j->raw, 0, NULL) : NULL;
        json_t *spec = json_object_get(rec, "spec");
        jobj = json_pack("{s:s,s:s,s:s,s:{s:I,s:I}}", "id", j->id, "class", j->cls, "rightsize",
                         gp_rightsize_mode_name(j->rightsize), "requested", "mem_mib",
                         json_integer_value(json_object_get(spec, "mem_mib")), "compute_percent",
                         (json_int_t)json_number_value(json_object_get(spec, "compute_percent")));
        json_t *applied = json_object_get(rec, "applied");
        if (jobj && applied)
            json_object_set(jobj, "applied", applied);
        json_decref(rec);
        cls = j->cls;
    }
    gp_strmap_t *w = s_waste(c);
    json_t *classes = json_array();
    int64_t total = 0;
    for (gp_strmap_iter_t it = s_classes(c) ? gp_strmap_first(s_classes(c)) : (gp_strmap_iter_t){ 0 };
         classes && it.key; it = gp_strmap_next(s_classes(c), it)) {
        const gp_rightsize_t *s = it.value;
        if ((cls && strcmp(cls, it.key) != 0) ||
            (owner && strcmp(owner, gp_rightsize_owner(s)) != 0))
            continue;
        gp_rightsize_rec_t rec;
        s_recommend(c, it.key, &rec);
        json_t *o = gp_rightsize_rec_to_json(&rec);
        const s_waste_t *x = w ? gp_strmap_get(w, it.key) : NULL;
        if (o == NULL)
            continue;
        json_object_set_new(o, "class", json_string(it.key));
        json_object_set_new(o, "owner", json_string(gp_rightsize_owner(s)));
        json_object_set_new(o, "jobs_allocated", json_integer(x ? x->jobs : 0));
        json_object_set_new(o, "gpus_freed", json_real(x ? (double)x->milli / 1000.0 : 0));
        json_object_set_new(o, "mem_mib_freed", json_integer(x ? x->mem : 0));
        total += x ? x->milli : 0;
        json_array_append_new(classes, o);
    }
    s_waste_free(&w);
    json_t *body = json_pack("{s:o,s:f}", "classes", classes ? classes : json_array(), "gpus_freed",
                             (double)total / 1000.0);
    if (body && jobj)
        json_object_set_new(body, "job", jobj);
    else
        json_decref(jobj);
    coord_respond_json(req, 200, body);
}

void coord_rightsize_metrics(coord_t *c, int export)
{
    const coord_gauge_t fams[] = { COORD_GAUGE_RS_MEM, COORD_GAUGE_RS_COMPUTE,
                                   COORD_GAUGE_RS_WASTE_GPUS, COORD_GAUGE_RS_WASTE_MEM };
    for (size_t i = 0; i < GP_ARRAY_LEN(fams); i++)
        coord_metrics_drop(&c->m, fams[i]);   /* rebuilt: a class gone leaves no series */
    if (!export || s_classes(c) == NULL)
        return;
    gp_strmap_t *w = s_waste(c);
    for (gp_strmap_iter_t it = gp_strmap_first(c->rightsize->classes); it.key;
         it = gp_strmap_next(c->rightsize->classes, it)) {
        gp_rightsize_rec_t rec;
        if (!s_recommend(c, it.key, &rec))
            continue;
        char labels[300], esc[260];
        snprintf(labels, sizeof labels, "class=\"%s\"", gp_metrics_escape(it.key, esc, sizeof esc));
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_RS_MEM, labels), (double)rec.mem_mib);
        if (rec.compute_pct > 0)
            gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_RS_COMPUTE, labels),
                          rec.compute_pct);
        const s_waste_t *x = w ? gp_strmap_get(w, it.key) : NULL;
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_RS_WASTE_GPUS, labels),
                      x ? (double)x->milli / 1000.0 : 0);
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_RS_WASTE_MEM, labels),
                      x ? (double)x->mem : 0);
    }
    s_waste_free(&w);
}
