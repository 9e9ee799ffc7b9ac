/*
 * metrics.c - the table of the coordinator's metrics (see metrics.h).
 *
 * A row names a metric once: its type, name, help and label set, and
 * where its resolved handle goes (a field of coord_metrics_t) or which
 * coord_gauge_t it is.  The registry keeps the help of a family's first
 * registration, so the rows of one family repeat the same help.
 */
#include <stddef.h>
#include <stdio.h>

#include "metrics.h"
#include "log.h"

#include "banned.h"

typedef enum { S_COUNTER, S_HISTOGRAM, S_GAUGE } s_type_t;

typedef struct {
    s_type_t type;
    const char *name, *help, *labels;
    size_t field;                   /* offsetof the handle in coord_metrics_t */
} s_row_t;

#define F(member) offsetof(coord_metrics_t, member)

#define S_PROTO "gpupool_coordinator_protocol_errors_total", "Malformed messages dropped"
#define S_BIDS  "gpupool_coordinator_bids_total", "Bids received"
#define S_BAD   "gpupool_coordinator_bad_records_total", "Records that do not parse"

static const s_row_t s_rows[] = {
    { S_COUNTER, "gpupool_coordinator_submissions_total", "Jobs stored by the API", "",
      F(submissions) },
    { S_COUNTER, "gpupool_coordinator_cancellations_total", "Jobs cancelled through the API", "",
      F(cancellations) },
    { S_COUNTER, "gpupool_coordinator_unauthorized_total", "Requests without a valid token", "",
      F(unauthorized) },
    { S_COUNTER, "gpupool_coordinator_forbidden_total", "Requests refused for want of a role", "",
      F(forbidden) },
    { S_COUNTER, "gpupool_coordinator_placements_total", "Jobs placed (committed)", "",
      F(placements) },
    { S_COUNTER, "gpupool_coordinator_commit_conflicts_total",
      "Commits refused by etcd's compare (stale state or a lost leadership)", "",
      F(commit_conflicts) },
    { S_COUNTER, "gpupool_coordinator_late_bids_total", "Bids for a round already closed", "",
      F(late_bids) },
    { S_COUNTER, S_BIDS, "result=\"bid\"", F(bids) },
    { S_COUNTER, S_BIDS, "result=\"refused\"", F(bids_refused) },
    { S_COUNTER, "gpupool_coordinator_rejected_proposals_total",
      "Bids dropped for a plan their node cannot hold", "", F(rejected_proposals) },
    { S_COUNTER, S_PROTO, "what=\"message\"", F(protocol_errors[COORD_PROTO_MESSAGE]) },
    { S_COUNTER, S_PROTO, "what=\"hello\"", F(protocol_errors[COORD_PROTO_HELLO]) },
    { S_COUNTER, S_PROTO, "what=\"version\"", F(protocol_errors[COORD_PROTO_VERSION]) },
    { S_COUNTER, S_PROTO, "what=\"bids\"", F(protocol_errors[COORD_PROTO_BIDS]) },
    { S_COUNTER, S_PROTO, "what=\"bid\"", F(protocol_errors[COORD_PROTO_BID]) },
    { S_COUNTER, S_PROTO, "what=\"bid-not-asked\"", F(protocol_errors[COORD_PROTO_BID_NOT_ASKED]) },
    { S_COUNTER, S_PROTO, "what=\"unexpected-type\"",
      F(protocol_errors[COORD_PROTO_UNEXPECTED_TYPE]) },
    { S_COUNTER, "gpupool_coordinator_handoffs_total", "Jobs handed to another region", "",
      F(handoffs) },
    { S_COUNTER, "gpupool_coordinator_gangs_total", "Gangs placed", "", F(gangs) },
    { S_COUNTER, "gpupool_coordinator_preempted_total", "Jobs preempted", "", F(preempted) },
    { S_COUNTER, "gpupool_coordinator_queue_repairs_total", "Queue keys repaired", "",
      F(queue_repairs) },
    { S_COUNTER, "gpupool_coordinator_lost_allocations_total",
      "Allocations of vanished nodes released", "", F(lost_allocations) },
    { S_COUNTER, "gpupool_coordinator_elections_won_total", "Leaderships won", "",
      F(elections_won) },
    { S_COUNTER, "gpupool_coordinator_lease_lost_total", "Leases lost (leadership given up)", "",
      F(lease_lost) },
    { S_COUNTER, "gpupool_coordinator_inconsistencies_total", "Inconsistent records seen", "",
      F(inconsistencies) },
    { S_COUNTER, S_BAD, "kind=\"node\"", F(bad_records[COORD_RECORD_NODE]) },
    { S_COUNTER, S_BAD, "kind=\"alloc\"", F(bad_records[COORD_RECORD_ALLOC]) },
    { S_COUNTER, S_BAD, "kind=\"job\"", F(bad_records[COORD_RECORD_JOB]) },
    { S_COUNTER, S_BAD, "kind=\"rightsize\"", F(bad_records[COORD_RECORD_RIGHTSIZE]) },
    { S_COUNTER, "gpupool_coordinator_compactions_total", "Compactions of etcd's history", "",
      F(compactions) },
    { S_COUNTER, "gpupool_coordinator_jobs_removed_total",
      "Ended jobs removed from the store after their retention", "", F(jobs_removed) },
    { S_COUNTER, "gpupool_coordinator_archive_errors_total", "Job records not archived", "",
      F(archive_errors) },
    { S_COUNTER, "gpupool_coordinator_defragmentations_total",
      "Defragmentations of an etcd member", "", F(defragmentations) },
    { S_COUNTER, "gpupool_coordinator_curve_refusals_total",
      "CURVE handshakes refused (agent key not authorized)", "", F(curve_refusals) },
    { S_COUNTER, "gpupool_coordinator_audit_errors_total", "Audit lines not written", "",
      F(audit_errors) },
    { S_COUNTER, "gpupool_coordinator_typical_updates_total",
      "Learned shapes given to the placement engine", "", F(typical_updates) },
    { S_HISTOGRAM, "gpupool_coordinator_round_seconds", "Bid round, from batch to commit", "",
      F(round_seconds) },
    { S_HISTOGRAM, "gpupool_coordinator_commit_seconds", "Time to commit one round's awards", "",
      F(commit_seconds) },
    { S_HISTOGRAM, "gpupool_coordinator_submit_to_commit_seconds",
      "Time from a job's submission to its commit", "", F(submit_to_commit_seconds) },
    { S_HISTOGRAM, "gpupool_coordinator_intake_seconds", "Time to store a batch of submissions", "",
      F(intake_seconds) },
    { S_HISTOGRAM, "gpupool_coordinator_loop_busy_seconds", "Work of one pass of the coordinator's loop",
      "", F(loop_busy) },
    { S_GAUGE, "gpupool_coordinator_store_full",
      "1 while etcd refuses writes for lack of space (NOSPACE)", "", F(store_full) },
    { S_GAUGE, "gpupool_coordinator_typical_shape_jobs", "Jobs counted in the learned shapes", "",
      F(typical_shape_jobs) },
};

static const char *const s_gauges[COORD_GAUGE__N][2] = {
    [COORD_GAUGE_LEADER] = { "gpupool_coordinator_leader",
                             "1 while this coordinator leads its region" },
    [COORD_GAUGE_MILLI_ALLOCATED] = { "gpupool_gpu_milli_allocated",
                                      "GPU thousandths allocated, by region and model (from the "
                                      "region's leader)" },
    [COORD_GAUGE_MILLI_CAPACITY] = { "gpupool_gpu_milli_capacity",
                                     "GPU thousandths registered, by region and model (from the "
                                     "region's leader)" },
    [COORD_GAUGE_QUEUE_DEPTH] = { "gpupool_coordinator_queue_depth", "Jobs queued in this region" },
    [COORD_GAUGE_QUEUE_OLDEST] = { "gpupool_coordinator_queue_oldest_seconds",
                                   "Age of the oldest job queued in this region (from its "
                                   "leader)" },
    [COORD_GAUGE_DB_BYTES] = { "gpupool_coordinator_store_db_bytes",
                               "etcd backend size, as the member asked sees it" },
    [COORD_GAUGE_DB_IN_USE_BYTES] = { "gpupool_coordinator_store_db_in_use_bytes",
                                      "the part of the etcd backend in use (the rest awaits "
                                      "defragmentation)" },
    [COORD_GAUGE_TYPICAL_SHAPE] = { "gpupool_coordinator_typical_shape",
                                    "Share of the learned job shapes' weight (heaviest 64)" },
    [COORD_GAUGE_RS_MEM] = { "gpupool_rightsize_recommended_mem_mib",
                             "Recommended memory per device of a job class, MiB" },
    [COORD_GAUGE_RS_COMPUTE] = { "gpupool_rightsize_recommended_compute_percent",
                                 "Recommended compute share of a job class, percent" },
    [COORD_GAUGE_RS_WASTE_GPUS] = { "gpupool_rightsize_waste_gpus",
                                    "GPUs the class's allocations would free at its "
                                    "recommendation" },
    [COORD_GAUGE_RS_WASTE_MEM] = { "gpupool_rightsize_waste_mem_mib",
                                   "Device memory the class's allocations would free at its "
                                   "recommendation, MiB" },
};

int coord_metrics_init(coord_metrics_t *m, gp_metrics_t *registry, gp_err_t *err)
{
    *m = (coord_metrics_t){ .registry = registry };
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows[0]; i++) {
        const s_row_t *r = &s_rows[i];
        gp_metric_t *h;
        if (r->type == S_COUNTER)
            h = gp_metrics_counter(registry, r->name, r->help, r->labels);
        else if (r->type == S_GAUGE)
            h = gp_metrics_gauge(registry, r->name, r->help, r->labels);
        else
            h = gp_metrics_histogram(registry, r->name, r->help, r->labels, NULL, 0);
        if (h == NULL)
            return gp_err_set(err, GP_ERR_INVALID, "metric %s{%s} refused by the registry", r->name,
                              r->labels);
        *(gp_metric_t **)((char *)m + r->field) = h;
    }
    return 0;
}

void coord_metrics_etcd_error(coord_metrics_t *m, const char *op, const gp_err_t *err)
{
    char labels[96];
    snprintf(labels, sizeof labels, "op=\"%s\",kind=\"%s\"", op, gp_err_name(err->code));
    gp_metric_inc(gp_metrics_counter(m->registry, "gpupool_coordinator_etcd_errors_total",
                                     "Failed etcd requests", labels));
    gp_log_debug("etcd error op=%s err=\"%s\"", op, err->msg);
}

gp_metric_t *coord_metrics_gauge(coord_metrics_t *m, coord_gauge_t g, const char *labels)
{
    return gp_metrics_gauge(m->registry, s_gauges[g][0], s_gauges[g][1], labels);
}

void coord_metrics_drop(coord_metrics_t *m, coord_gauge_t g)
{
    gp_metrics_reset_family(m->registry, s_gauges[g][0]);
}
