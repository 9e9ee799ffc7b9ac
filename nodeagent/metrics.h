/*
 * metrics.h - the node agent's metrics, declared once.
 *
 * Every metric the agent exports is a row of one table in metrics.c (type,
 * name, help, label set).  agent_metrics_init() registers each row in the
 * daemon's registry at start-up (so every counter exists at 0 before its
 * first event) and resolves its handle into a field of agent_metrics_t;
 * the modules then count through the field:
 *
 *     gp_metric_inc(a->m.awards);
 *     gp_metric_inc(a->m.protocol_errors[AGENT_PROTO_CFB]);
 *
 * No name, help or label string at a call site, no registry lookup per
 * event.  Series that cannot be resolved once are still named by the
 * table and looked up when set:
 *
 *   - etcd errors, whose op and kind labels are open-ended
 *     (agent_metrics_etcd_error);
 *   - a job's slice gauges, labelled by job and device and swept when the
 *     job ends (agent_metrics_slice, by agent_slice_gauge_t);
 *   - a job state change outside the table's states (agent_metrics_job_state
 *     resolves the table's states without a lookup).
 *
 * To add a metric: a field in agent_metrics_t (or an agent_slice_gauge_t
 * value), a row in metrics.c's table, and the increment at the event.
 * Names follow Prometheus' rules (the registry refuses a counter without
 * _total and a label set that differs from its family's); README's metrics
 * list documents each one.
 *
 * The handles belong to the registry (common/metrics.h) and stay valid until
 * it is destroyed; agent_metrics_t owns nothing.  One thread.
 */
#ifndef GP_AGENT_METRICS_H
#define GP_AGENT_METRICS_H

#include "../common/err.h"
#include "../common/metrics.h"

/* gpupool_agent_protocol_errors_total{what=...} */
typedef enum {
    AGENT_PROTO_MESSAGE,
    AGENT_PROTO_UNEXPECTED_TYPE,
    AGENT_PROTO_CFB,
    AGENT_PROTO_CFB_JOB,
    AGENT_PROTO_COORDINATOR_RECORD,
    AGENT_PROTO_ALLOC_RECORD,
    AGENT_PROTO_JOB_RECORD,
    AGENT_PROTO_VERSION,            /* refused by a coordinator at HELLO (versions) */
    AGENT_PROTO__N
} agent_proto_what_t;

/* gpupool_agent_jobs_total{state=...}: the states counted from the start */
#define AGENT_JOB_STATES 12

typedef struct {
    gp_metrics_t *registry;         /* the daemon's (not owned) */
    /* counters */
    gp_metric_t *bids, *bids_refused, *awards, *coordinators_refused, *lease_lost;
    gp_metric_t *inconsistencies;
    gp_metric_t *rightsize_bad_summaries, *rightsize_dropped;   /* rightsize.c */
    gp_metric_t *protocol_errors[AGENT_PROTO__N];
    gp_metric_t *job_states[AGENT_JOB_STATES];
    /* gauges */
    gp_metric_t *nodes, *jobs, *registered, *coordinators;
    /* histograms: a read of new jobs' records, from sent to landed; the
     * work of one pass of the loop (what a call for bids may wait behind) */
    gp_metric_t *record_fetch, *loop_busy;
} agent_metrics_t;

/* A job slice's gauges, {job_id, device}. */
typedef enum {
    AGENT_SLICE_MEMORY_BYTES,
    AGENT_SLICE_COMPUTE_PERCENT,
    AGENT_SLICE_MEMORY_LIMIT_BYTES,
    AGENT_SLICE_COMPUTE_LIMIT_PERCENT,
    AGENT_SLICE_SUSPENDED_SECONDS,
    AGENT_SLICE__N
} agent_slice_gauge_t;

/* Register every metric of the table in registry and resolve the handles
 * into *m; 0, or -1 (err set) when the registry refuses a row (a
 * programmer's error). */
int agent_metrics_init(agent_metrics_t *m, gp_metrics_t *registry, gp_err_t *err);

/* Count a failed etcd request (op: "register", "fetch", ...; kind: err's
 * code); logs err at debug. */
void agent_metrics_etcd_error(agent_metrics_t *m, const char *op, const gp_err_t *err);

/* Count a job state change ("started", "running", "succeeded", ...). */
void agent_metrics_job_state(agent_metrics_t *m, const char *state);

/* The series of slice gauge g for this label set, valid until the registry
 * sweeps it (exporter.c); NULL when refused. */
gp_metric_t *agent_metrics_slice(agent_metrics_t *m, agent_slice_gauge_t g, const char *labels);

#endif
