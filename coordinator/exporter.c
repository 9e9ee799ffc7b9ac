/*
 * exporter.c - what the coordinator's /metrics shows, and the rules that
 * make a scrape of every coordinator of the pool add up.
 *
 * The modules count their events themselves (coord_count, gp_metric_*).
 * This module adds what a scrape needs beyond that:
 *
 *   1. Every counter exists at 0 from the start, with each label value it
 *      can take, so that rate() and alerts work before the first event
 *      (coord_exporter_init, once at start-up).  A family with a label
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

static const char *const s_counters[][3] = {
    /* name, help, label set ("" for none) */
    { "gpupool_coordinator_submissions_total", "Jobs stored by the API", "" },
    { "gpupool_coordinator_cancellations_total", "Jobs cancelled through the API", "" },
    { "gpupool_coordinator_unauthorized_total", "Requests without a valid token", "" },
    { "gpupool_coordinator_placements_total", "Jobs placed (committed)", "" },
    { "gpupool_coordinator_commit_conflicts_total",
      "Commits refused by etcd's compare (stale state or a lost leadership)", "" },
    { "gpupool_coordinator_late_bids_total", "Bids for a round already closed", "" },
    { "gpupool_coordinator_bids_total", "Bids received", "result=\"bid\"" },
    { "gpupool_coordinator_bids_total", "Bids received", "result=\"refused\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped", "what=\"message\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped", "what=\"hello\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped", "what=\"bids\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped", "what=\"bid\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
      "what=\"bid-not-asked\"" },
    { "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped",
      "what=\"unexpected-type\"" },
    { "gpupool_coordinator_rejected_proposals_total",
      "Bids dropped for a plan their node cannot hold", "" },
    { "gpupool_coordinator_handoffs_total", "Jobs handed to another region", "" },
    { "gpupool_coordinator_gangs_total", "Gangs placed", "" },
    { "gpupool_coordinator_preempted_total", "Jobs preempted", "" },
    { "gpupool_coordinator_queue_repairs_total", "Queue keys repaired", "" },
    { "gpupool_coordinator_lost_allocations_total", "Allocations of vanished nodes released", "" },
    { "gpupool_coordinator_elections_won_total", "Leaderships won", "" },
    { "gpupool_coordinator_lease_lost_total", "Leases lost (leadership given up)", "" },
    { "gpupool_coordinator_inconsistencies_total", "Inconsistent records seen", "" },
    { "gpupool_coordinator_bad_records_total", "Records that do not parse", "kind=\"node\"" },
    { "gpupool_coordinator_bad_records_total", "Records that do not parse", "kind=\"alloc\"" },
    { "gpupool_coordinator_bad_records_total", "Records that do not parse", "kind=\"job\"" },
    { "gpupool_coordinator_bad_records_total", "Records that do not parse", "kind=\"rightsize\"" },
    { "gpupool_coordinator_compactions_total", "Compactions of etcd's history", "" },
    { "gpupool_coordinator_jobs_removed_total",
      "Ended jobs removed from the store after their retention", "" },
    { "gpupool_coordinator_archive_errors_total", "Job records not archived", "" },
    { "gpupool_coordinator_defragmentations_total", "Defragmentations of an etcd member", "" },
    { "gpupool_coordinator_curve_refusals_total",
      "CURVE handshakes refused (agent key not authorized)", "" },
};

static const char *const s_histograms[][2] = {
    { "gpupool_coordinator_round_seconds", "Bid round, from batch to commit" },
    { "gpupool_coordinator_commit_seconds", "Time to commit one round's awards" },
    { "gpupool_coordinator_submit_to_commit_seconds", "Time from a job's submission to its commit" },
    { "gpupool_coordinator_intake_seconds", "Time to store a batch of submissions" },
};

/* Gauges about the pool (rule 2), dropped on a coordinator that must not
 * show them. */
#define S_ALLOCATED "gpupool_gpu_milli_allocated"
#define S_CAPACITY  "gpupool_gpu_milli_capacity"
#define S_QUEUE     "gpupool_coordinator_queue_depth"
#define S_QUEUE_AGE "gpupool_coordinator_queue_oldest_seconds"
#define S_DB        "gpupool_coordinator_store_db_bytes"
#define S_DB_IN_USE "gpupool_coordinator_store_db_in_use_bytes"

void coord_exporter_init(coord_t *c)
{
    for (size_t i = 0; i < sizeof s_counters / sizeof s_counters[0]; i++)
        if (gp_metrics_counter(c->metrics, s_counters[i][0], s_counters[i][1],
                               s_counters[i][2]) == NULL)
            gp_log_warn("metric not registered name=%s", s_counters[i][0]);
    for (size_t i = 0; i < sizeof s_histograms / sizeof s_histograms[0]; i++)
        gp_metrics_histogram(c->metrics, s_histograms[i][0], s_histograms[i][1], "", NULL, 0);
    gp_metric_set(gp_metrics_gauge(c->metrics, "gpupool_coordinator_store_full",
                                   "1 while etcd refuses writes for lack of space (NOSPACE)", NULL),
                  coord_store_full(c));
}

/* The leader of the region that sorts first among regions with a leader:
 * the one that compacts and reads etcd's backend size (store.c). */
static int s_first_region_leader(coord_t *c)
{
    if (!coord_is_leader(c))
        return 0;
    for (gp_strmap_iter_t it = gp_strmap_first(c->leaders); it.key; it = gp_strmap_next(c->leaders, it))
        if (strcmp(it.key, c->cfg.region) < 0)
            return 0;
    return 1;
}

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
    for (gp_strmap_iter_t it = gp_strmap_first(c->nodes); it.key; it = gp_strmap_next(c->nodes, it)) {
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
    for (gp_strmap_iter_t a = gp_strmap_first(c->allocs); a.key; a = gp_strmap_next(c->allocs, a)) {
        gp_alloc_t *al = a.value;
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
        gp_metric_set(gp_metrics_gauge(c->metrics, S_ALLOCATED,
                                       "GPU thousandths allocated, by region and model (from "
                                       "the region's leader)", labels),
                      (double)p->allocated);
        gp_metric_set(gp_metrics_gauge(c->metrics, S_CAPACITY,
                                       "GPU thousandths registered, by region and model (from "
                                       "the region's leader)", labels),
                      (double)p->capacity);
        free(p);
    }
    gp_strmap_destroy(&by_model);
}

void coord_exporter_serve(coord_t *c, gp_http_req_t *req)
{
    int leader = coord_is_leader(c);
    char region[GP_SHORT_LEN * 2 + 1], labels[GP_SHORT_LEN * 2 + 16];
    snprintf(labels, sizeof labels, "region=\"%s\"",
             gp_metrics_escape(c->cfg.region, region, sizeof region));
    gp_metric_set(gp_metrics_gauge(c->metrics, "gpupool_coordinator_leader",
                                   "1 while this coordinator leads its region", labels),
                  leader);
    gp_metric_set(gp_metrics_counter(c->metrics, "gpupool_coordinator_curve_refusals_total",
                                     "CURVE handshakes refused (agent key not authorized)", NULL),
                  c->zap ? (double)gp_zap_denied(c->zap) : 0);
    /* Rebuilt at each scrape: a model or a region gone leaves no series. */
    gp_metrics_reset_family(c->metrics, S_ALLOCATED);
    gp_metrics_reset_family(c->metrics, S_CAPACITY);
    if (leader) {
        s_region_gauges(c);
        int64_t oldest = 0, now = gp_wall_ms();
        for (gp_strmap_iter_t it = c->queue ? gp_strmap_first(c->queue) : (gp_strmap_iter_t){ 0 };
             it.key; it = gp_strmap_next(c->queue, it)) {
            const coord_job_t *j = it.value;
            if (j->submitted_ms > 0 && now - j->submitted_ms > oldest)
                oldest = now - j->submitted_ms;
        }
        gp_metric_set(gp_metrics_gauge(c->metrics, S_QUEUE_AGE,
                                       "Age of the oldest job queued in this region (from its "
                                       "leader)", NULL),
                      (double)oldest / 1000.0);
    } else {
        gp_metrics_reset_family(c->metrics, S_QUEUE);
        gp_metrics_reset_family(c->metrics, S_QUEUE_AGE);
    }
    coord_rightsize_metrics(c, s_first_region_leader(c));
    if (!s_first_region_leader(c)) {
        gp_metrics_reset_family(c->metrics, S_DB);
        gp_metrics_reset_family(c->metrics, S_DB_IN_USE);
    }
    char *text;
    size_t len;
    if (gp_metrics_render(c->metrics, &text, &len) < 0) {
        gp_http_respond_error(req, 500, "cannot render metrics");
        return;
    }
    gp_http_respond(req, 200, "text/plain; version=0.0.4", text, len);
}
