/*
 * metrics.c - the table of the node agent's metrics (see metrics.h).
 *
 * A row names a metric once: its type, name, help and label set, and where
 * its resolved handle goes (a field of agent_metrics_t).  The registry keeps
 * the help of a family's first registration, so the rows of one family
 * repeat the same help.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "log.h"

#include "banned.h"

typedef enum { S_COUNTER, S_GAUGE } s_type_t;

typedef struct {
    s_type_t type;
    const char *name, *help, *labels;
    size_t field;                   /* offsetof the handle in agent_metrics_t */
} s_row_t;

#define F(member) offsetof(agent_metrics_t, member)

#define S_PROTO "gpupool_agent_protocol_errors_total", "Malformed messages or records"
#define S_BIDS  "gpupool_agent_bids_total", "Bids answered"
#define S_JOBS  "gpupool_agent_jobs_total", "Job state changes"

/* The states of gpupool_agent_jobs_total resolved at start, in the order of
 * job_states[]. */
static const char *const s_states[AGENT_JOB_STATES] = {
    "started", "running", "succeeded", "failed", "cancelled", "stopped", "suspended", "resumed",
    "adopted", "priority-suspended", "priority-resumed", "drained",
};

static const s_row_t s_rows[] = {
    { S_COUNTER, S_BIDS, "result=\"bid\"", F(bids) },
    { S_COUNTER, S_BIDS, "result=\"refused\"", F(bids_refused) },
    { S_COUNTER, "gpupool_agent_awards_total", "Award notices received", "", F(awards) },
    { S_COUNTER, "gpupool_agent_coordinators_refused_total",
      "Coordinators not connected to because they could not be authenticated", "",
      F(coordinators_refused) },
    { S_COUNTER, "gpupool_agent_lease_lost_total", "Leases lost (the agent registered again)", "",
      F(lease_lost) },
    { S_COUNTER, "gpupool_agent_inconsistencies_total", "Inconsistent records seen", "",
      F(inconsistencies) },
    { S_COUNTER, "gpupool_agent_rightsize_bad_summaries_total",
      "Stored usage summaries that were not valid (replaced)", "", F(rightsize_bad_summaries) },
    { S_COUNTER, "gpupool_agent_rightsize_dropped_total",
      "Usage samples dropped: too many waiting for one class", "", F(rightsize_dropped) },
    { S_COUNTER, S_PROTO, "what=\"message\"", F(protocol_errors[AGENT_PROTO_MESSAGE]) },
    { S_COUNTER, S_PROTO, "what=\"unexpected-type\"", F(protocol_errors[AGENT_PROTO_UNEXPECTED_TYPE]) },
    { S_COUNTER, S_PROTO, "what=\"cfb\"", F(protocol_errors[AGENT_PROTO_CFB]) },
    { S_COUNTER, S_PROTO, "what=\"cfb-job\"", F(protocol_errors[AGENT_PROTO_CFB_JOB]) },
    { S_COUNTER, S_PROTO, "what=\"coordinator-record\"",
      F(protocol_errors[AGENT_PROTO_COORDINATOR_RECORD]) },
    { S_COUNTER, S_PROTO, "what=\"alloc-record\"", F(protocol_errors[AGENT_PROTO_ALLOC_RECORD]) },
    { S_COUNTER, S_PROTO, "what=\"job-record\"", F(protocol_errors[AGENT_PROTO_JOB_RECORD]) },
    { S_COUNTER, S_PROTO, "what=\"version\"", F(protocol_errors[AGENT_PROTO_VERSION]) },
    { S_COUNTER, S_JOBS, "state=\"started\"", F(job_states[0]) },
    { S_COUNTER, S_JOBS, "state=\"running\"", F(job_states[1]) },
    { S_COUNTER, S_JOBS, "state=\"succeeded\"", F(job_states[2]) },
    { S_COUNTER, S_JOBS, "state=\"failed\"", F(job_states[3]) },
    { S_COUNTER, S_JOBS, "state=\"cancelled\"", F(job_states[4]) },
    { S_COUNTER, S_JOBS, "state=\"stopped\"", F(job_states[5]) },
    { S_COUNTER, S_JOBS, "state=\"suspended\"", F(job_states[6]) },
    { S_COUNTER, S_JOBS, "state=\"resumed\"", F(job_states[7]) },
    { S_COUNTER, S_JOBS, "state=\"adopted\"", F(job_states[8]) },
    { S_COUNTER, S_JOBS, "state=\"priority-suspended\"", F(job_states[9]) },
    { S_COUNTER, S_JOBS, "state=\"priority-resumed\"", F(job_states[10]) },
    { S_COUNTER, S_JOBS, "state=\"drained\"", F(job_states[11]) },
    { S_GAUGE, "gpupool_agent_nodes", "Nodes served", "", F(nodes) },
    { S_GAUGE, "gpupool_agent_jobs", "Jobs on the agent's nodes", "", F(jobs) },
    { S_GAUGE, "gpupool_agent_registered", "1 when the node records are in etcd", "",
      F(registered) },
    { S_GAUGE, "gpupool_agent_coordinators", "Coordinators connected", "", F(coordinators) },
};

static const char *const s_slice[AGENT_SLICE__N][2] = {
    [AGENT_SLICE_MEMORY_BYTES] = { "gpupool_agent_slice_memory_bytes",
                                   "Device memory used by the slice" },
    [AGENT_SLICE_COMPUTE_PERCENT] = { "gpupool_agent_slice_compute_percent",
                                      "GPU time achieved by the slice, %" },
    [AGENT_SLICE_MEMORY_LIMIT_BYTES] = { "gpupool_agent_slice_memory_limit_bytes",
                                         "Device memory the slice may use" },
    [AGENT_SLICE_COMPUTE_LIMIT_PERCENT] = { "gpupool_agent_slice_compute_limit_percent",
                                            "GPU time the slice may use, %" },
    [AGENT_SLICE_SUSPENDED_SECONDS] = { "gpupool_agent_slice_suspended_seconds",
                                        "Time the slice's launches waited suspended" },
};

int agent_metrics_init(agent_metrics_t *m, gp_metrics_t *registry, gp_err_t *err)
{
    *m = (agent_metrics_t){ .registry = registry };
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows[0]; i++) {
        const s_row_t *r = &s_rows[i];
        gp_metric_t *h = r->type == S_COUNTER
                             ? gp_metrics_counter(registry, r->name, r->help, r->labels)
                             : gp_metrics_gauge(registry, r->name, r->help, r->labels);
        if (h == NULL)
            return gp_err_set(err, GP_ERR_INVALID, "metric %s{%s} refused by the registry", r->name,
                              r->labels);
        *(gp_metric_t **)((char *)m + r->field) = h;
    }
    m->record_fetch = gp_metrics_histogram(registry, "gpupool_agent_record_fetch_seconds",
                                           "Reads of new jobs' records, sent to landed", "", NULL, 0);
    m->loop_busy = gp_metrics_histogram(registry, "gpupool_agent_loop_busy_seconds",
                                        "Work of one pass of the agent's loop", "", NULL, 0);
    if (m->record_fetch == NULL || m->loop_busy == NULL)
        return gp_err_set(err, GP_ERR_INVALID, "histograms refused by the registry");
    return 0;
}

void agent_metrics_etcd_error(agent_metrics_t *m, const char *op, const gp_err_t *err)
{
    char labels[96];
    snprintf(labels, sizeof labels, "op=\"%s\",kind=\"%s\"", op, gp_err_name(err->code));
    gp_metric_inc(gp_metrics_counter(m->registry, "gpupool_agent_etcd_errors_total",
                                     "Failed etcd requests", labels));
    gp_log_debug("etcd error op=%s err=\"%s\"", op, err->msg);
}

void agent_metrics_job_state(agent_metrics_t *m, const char *state)
{
    for (int i = 0; i < AGENT_JOB_STATES; i++)
        if (strcmp(s_states[i], state) == 0) {
            gp_metric_inc(m->job_states[i]);
            return;
        }
    char labels[64];
    snprintf(labels, sizeof labels, "state=\"%s\"", state);
    gp_metric_inc(gp_metrics_counter(m->registry, S_JOBS, labels));
}

gp_metric_t *agent_metrics_slice(agent_metrics_t *m, agent_slice_gauge_t g, const char *labels)
{
    return gp_metrics_gauge(m->registry, s_slice[g][0], s_slice[g][1], labels);
}
