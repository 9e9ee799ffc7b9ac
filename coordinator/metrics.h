/*
 * metrics.h - the coordinator's metrics, declared once.
 *
 * Every metric the coordinator exports is a row of one table in metrics.c
 * (type, name, help, label set).  coord_metrics_init() registers each row
 * in the daemon's registry at start-up (so every counter exists at 0 before
 * its first event) and resolves its handle into a field of
 * coord_metrics_t; the modules then count through the field:
 *
 *     gp_metric_inc(c->m.placements);
 *     gp_metric_inc(c->m.protocol_errors[COORD_PROTO_BID]);
 *     gp_metric_observe(c->m.commit_seconds, s);
 *
 * No name, help or label string at a call site, no registry lookup per
 * event.  Three kinds of series cannot be resolved once and are looked up
 * when set, still by their table row:
 *
 *   - etcd errors, whose op and kind labels are open-ended: one series per
 *     (op, kind) pair, created with its first error
 *     (coord_metrics_etcd_error);
 *   - gauges rebuilt at each scrape or dropped on a standby (the registry's
 *     reset invalidates their handles): coord_metrics_gauge() and
 *     coord_metrics_drop() by coord_gauge_t;
 *   - nothing else.
 *
 * To add a metric: a field in coord_metrics_t (or a coord_gauge_t value
 * for a gauge that is rebuilt or dropped), a row in metrics.c's table,
 * and the increment at the event.  Names follow Prometheus' rules (the
 * registry refuses a counter without _total, and a label set that differs
 * from its family's); README's metrics list documents each one.
 *
 * The handles belong to the registry (common/metrics.h) and stay valid
 * until it is destroyed; coord_metrics_t owns nothing.  One thread, like the
 * registry.
 */
#ifndef GP_COORD_METRICS_H
#define GP_COORD_METRICS_H

#include "../common/err.h"
#include "../common/metrics.h"

/* gpupool_coordinator_protocol_errors_total{what=...} */
typedef enum {
    COORD_PROTO_MESSAGE,            /* a ZeroMQ message that does not parse */
    COORD_PROTO_HELLO,
    COORD_PROTO_BIDS,
    COORD_PROTO_BID,
    COORD_PROTO_BID_NOT_ASKED,
    COORD_PROTO_UNEXPECTED_TYPE,
    COORD_PROTO_VERSION,            /* an agent refused at HELLO (versions.c) */
    COORD_PROTO__N
} coord_proto_what_t;

/* gpupool_coordinator_bad_records_total{kind=...} */
typedef enum {
    COORD_RECORD_NODE,
    COORD_RECORD_ALLOC,
    COORD_RECORD_JOB,
    COORD_RECORD_RIGHTSIZE,         /* a job class's usage summary (rightsize.c) */
    COORD_RECORD__N
} coord_record_kind_t;

typedef struct {
    gp_metrics_t *registry;         /* the daemon's (not owned) */
    /* counters */
    gp_metric_t *submissions, *cancellations, *unauthorized, *forbidden;
    gp_metric_t *placements, *commit_conflicts, *late_bids, *bids, *bids_refused;
    gp_metric_t *rejected_proposals;
    gp_metric_t *protocol_errors[COORD_PROTO__N];
    gp_metric_t *handoffs, *gangs, *preempted, *queue_repairs, *lost_allocations;
    gp_metric_t *elections_won, *lease_lost, *inconsistencies;
    gp_metric_t *bad_records[COORD_RECORD__N];
    gp_metric_t *compactions, *jobs_removed, *archive_errors, *defragmentations;
    gp_metric_t *curve_refusals, *audit_errors, *typical_updates;
    /* histograms */
    gp_metric_t *round_seconds, *commit_seconds, *submit_to_commit_seconds, *intake_seconds;
    gp_metric_t *loop_busy;
    /* gauges set in place */
    gp_metric_t *store_full, *typical_shape_jobs;
} coord_metrics_t;

/* Gauges whose series are rebuilt at each scrape, or dropped where this
 * coordinator must not show them (exporter.c, rule 2). */
typedef enum {
    COORD_GAUGE_LEADER,             /* {region} */
    COORD_GAUGE_MILLI_ALLOCATED,    /* {region, model} */
    COORD_GAUGE_MILLI_CAPACITY,     /* {region, model} */
    COORD_GAUGE_QUEUE_DEPTH,
    COORD_GAUGE_QUEUE_OLDEST,
    COORD_GAUGE_DB_BYTES,
    COORD_GAUGE_DB_IN_USE_BYTES,
    COORD_GAUGE_TYPICAL_SHAPE,      /* {model, memory_mib, ...} */
    COORD_GAUGE_RS_MEM,             /* {class}: right-sizing, rightsize.c */
    COORD_GAUGE_RS_COMPUTE,         /* {class} */
    COORD_GAUGE_RS_WASTE_GPUS,      /* {class} */
    COORD_GAUGE_RS_WASTE_MEM,       /* {class} */
    COORD_GAUGE__N
} coord_gauge_t;

/* Register every metric of the table in registry and resolve the handles
 * into *m; 0, or -1 (err set) when a row is refused by the registry (a
 * programmer's error: a name or label set that breaks its rules). */
int coord_metrics_init(coord_metrics_t *m, gp_metrics_t *registry, gp_err_t *err);

/* Count a failed etcd request: op names the request ("campaign",
 * "submit", ...), the kind label is err's code; logs err at debug. */
void coord_metrics_etcd_error(coord_metrics_t *m, const char *op, const gp_err_t *err);

/* The series of gauge g with this label set (NULL or "" for none), valid
 * until the next coord_metrics_drop(m, g); NULL when refused. */
gp_metric_t *coord_metrics_gauge(coord_metrics_t *m, coord_gauge_t g, const char *labels);
/* Drop every series of gauge g. */
void coord_metrics_drop(coord_metrics_t *m, coord_gauge_t g);

#endif
