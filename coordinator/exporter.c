/*
 * exporter.c - what the coordinator's /metrics shows, and the rules that
 * make a scrape of every coordinator of the pool add up.
 *
 * The metrics are declared in metrics.c's table, and the modules count
 * their events through its handles.  This module adds what a scrape needs
 * beyond that:
 *
 *   1. Every counter exists at 0 from the start, with each label value it
 *      can take, so that rate() and alerts work before the first event
 *      (metrics.c registers its whole table at start-up).  A family with a label
 *      whose values are open-ended (etcd errors: op and kind) appears with
 *      its first event.
 *   2. Gauges about the pool rather than this process come from one
 *      coordinator only, so that sum() over every coordinator scraped
 *      counts each thing once: a region's allocation, capacity and queue
 *      from that region's leader (its own region only); etcd's backend size
 *      from the leader that compacts it (store.c: the region sorting first).
 *      A standby shows none of them.
 *   3. Values computed at scrape time: leadership, allocation and capacity
 *      per (region, model), the age of the oldest queued job, CURVE
 *      handshakes refused by the ZAP handler.
 *
 * Allocation and capacity are in thousandths of a GPU: a whole device is
 * 1000, a slice counts the larger of its memory and compute shares
 * (coord_alloc_milli); an allocation counts under its first device's model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"
#include "util.h"

#include "banned.h"

typedef struct {
    int64_t allocated, capacity;
} s_pair_t;

static s_pair_t *s_pair(gp_strmap_t *by_model, const char *model)
{
    s_pair_t *p = gp_strmap_get(by_model, model);
    if (p == NULL && (p = calloc(1, sizeof *p)) != NULL && gp_strmap_put(by_model, model, p) < 0) {
        free(p);
        p = NULL;
    }
    return p;
}

/* This region's allocation and capacity per model, set as gauges. */
static void s_region_gauges(coord_t *c)
{
    gp_strmap_t *by_model = gp_strmap_new();
    if (by_model == NULL)
        return;
    for (coord_cache_iter_t it = coord_cache_first(c, COORD_NODES); it.key;
         it = coord_cache_next(c, it)) {
        coord_node_t *n = it.value;
        if (!n->present || n->record == NULL || strcmp(n->region, c->cfg.region) != 0)
            continue;
        json_t *devs = json_object_get(n->record, "devices"), *d;
        size_t i;
        json_array_foreach(devs, i, d) {
            const char *model = json_string_value(json_object_get(d, "model"));
            s_pair_t *p = s_pair(by_model, model ? model : "?");
            if (p)
                p->capacity += 1000;
        }
    }
    for (coord_cache_iter_t a = coord_cache_first(c, COORD_ALLOCS); a.key;
         a = coord_cache_next(c, a)) {
        const gp_alloc_t *al = a.value;
        coord_node_t *n = coord_cache_node(c, al->node, 0);
        if (n == NULL || !n->present || n->record == NULL || strcmp(n->region, c->cfg.region) != 0)
            continue;
        const char *model = NULL;
        int64_t milli = coord_alloc_milli(c, al, NULL, NULL, &model);
        s_pair_t *p = s_pair(by_model, model ? model : "?");
        if (p)
            p->allocated += milli;
    }
    char region[GP_SHORT_LEN * 2 + 1];
    gp_metrics_escape(c->cfg.region, region, sizeof region);
    for (gp_strmap_iter_t it = gp_strmap_first(by_model); it.key; it = gp_strmap_next(by_model, it)) {
        char labels[512], model[256];
        snprintf(labels, sizeof labels, "region=\"%s\",model=\"%s\"", region,
                 gp_metrics_escape(it.key, model, sizeof model));
        s_pair_t *p = it.value;
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_MILLI_ALLOCATED, labels),
                      (double)p->allocated);
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_MILLI_CAPACITY, labels),
                      (double)p->capacity);
        free(p);
    }
    gp_strmap_destroy(&by_model);
}

/* The age of the oldest queued job. */
typedef struct {
    int64_t now_ms, age_ms;
} s_oldest_t;

static void s_oldest(coord_job_t *j, void *arg)
{
    s_oldest_t *o = arg;
    if (j->submitted_ms > 0 && o->now_ms - j->submitted_ms > o->age_ms)
        o->age_ms = o->now_ms - j->submitted_ms;
}

void coord_exporter_serve(coord_t *c, gp_http_req_t *req)
{
    int leader = coord_is_leader(c);
    char region[GP_SHORT_LEN * 2 + 1], labels[GP_SHORT_LEN * 2 + 16];
    snprintf(labels, sizeof labels, "region=\"%s\"",
             gp_metrics_escape(c->cfg.region, region, sizeof region));
    gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_LEADER, labels),
                  leader);
    gp_metric_set(c->m.curve_refusals,
                  c->zap ? (double)gp_zap_denied(c->zap) : 0);
    /* Rebuilt at each scrape: a model or a region gone leaves no series. */
    coord_metrics_drop(&c->m, COORD_GAUGE_MILLI_ALLOCATED);
    coord_metrics_drop(&c->m, COORD_GAUGE_MILLI_CAPACITY);
    if (leader) {
        s_region_gauges(c);
        s_oldest_t o = { gp_wall_ms(), 0 };
        coord_cache_each_queued(c, s_oldest, &o);
        gp_metric_set(coord_metrics_gauge(&c->m, COORD_GAUGE_QUEUE_OLDEST, NULL),
                      (double)o.age_ms / 1000.0);
    } else {
        coord_metrics_drop(&c->m, COORD_GAUGE_QUEUE_DEPTH);
        coord_metrics_drop(&c->m, COORD_GAUGE_QUEUE_OLDEST);
    }
    coord_rightsize_metrics(c, coord_is_first_leader(c));
    coord_store_metrics(c);
    char *text;
    size_t len;
    if (gp_metrics_render(c->metrics, &text, &len) < 0) {
        gp_http_respond_error(req, 500, "cannot render metrics");
        return;
    }
    gp_http_respond(req, 200, "text/plain; version=0.0.4", text, len);
}
