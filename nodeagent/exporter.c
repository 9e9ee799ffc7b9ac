/*
 * exporter.c - what the agent's /metrics shows beyond the events the
 * modules count.
 *
 *   1. Every counter exists at 0 from the start, with each label value it
 *      can take (etcd errors, whose op and kind are open-ended, appear with
 *      the first one), so that rate() and alerts work before any event.
 *   2. A job's slice series (gpupool_agent_slice_*{job_id=...}, set by jobs.c
 *      at each usage sample) are dropped once the job ended or its
 *      allocation went: at every scrape, before rendering, and once a
 *      second otherwise, so that an agent that runs for months keeps no
 *      series of the jobs it ran.
 *   3. Gauges read at scrape time: nodes, jobs, registration, coordinators.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#include "banned.h"

#define S_SWEEP_MS 1000

static const char *const s_counters[][3] = {
    /* name, help, label set ("" for none) */
    { "gpupool_agent_bids_total", "Bids answered", "result=\"bid\"" },
    { "gpupool_agent_bids_total", "Bids answered", "result=\"refused\"" },
    { "gpupool_agent_awards_total", "Award notices received", "" },
    { "gpupool_agent_coordinators_refused_total",
      "Coordinators not connected to because they could not be authenticated", "" },
    { "gpupool_agent_lease_lost_total", "Leases lost (the agent registered again)", "" },
    { "gpupool_agent_inconsistencies_total", "Inconsistent records seen", "" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records", "what=\"message\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records",
      "what=\"unexpected-type\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records", "what=\"cfb\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records", "what=\"cfb-job\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records",
      "what=\"coordinator-record\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records",
      "what=\"alloc-record\"" },
    { "gpupool_agent_protocol_errors_total", "Malformed messages or records",
      "what=\"job-record\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"started\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"running\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"succeeded\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"failed\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"cancelled\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"stopped\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"suspended\"" },
    { "gpupool_agent_jobs_total", "Job state changes", "state=\"resumed\"" },
    { "gpupool_agent_rightsize_bad_summaries_total",
      "Stored usage summaries that were not valid (replaced)", "" },
    { "gpupool_agent_rightsize_dropped_total",
      "Usage samples dropped: too many waiting for one class", "" },
};

void agent_exporter_init(agent_t *a)
{
    for (size_t i = 0; i < sizeof s_counters / sizeof s_counters[0]; i++)
        if (gp_metrics_counter(a->metrics, s_counters[i][0], s_counters[i][1],
                               s_counters[i][2]) == NULL)
            gp_log_warn("metric not registered name=%s", s_counters[i][0]);
}

/* Keep a job's series while the job runs here. */
static int s_job_runs(const char *job, void *arg)
{
    agent_t *a = arg;
    const agent_job_t *j = gp_strmap_get(a->jobs, job);
    return j != NULL && !j->ended && !j->stopping;
}

static void s_sweep(agent_t *a)
{
    if (a->jobs)
        gp_metrics_sweep(a->metrics, "job_id", s_job_runs, a);
}

void agent_exporter_tick(agent_t *a)
{
    static int64_t next_ms;
    int64_t now = gp_mono_ms();
    if (now < next_ms)
        return;
    next_ms = now + S_SWEEP_MS;
    s_sweep(a);
}

void agent_exporter_serve(agent_t *a, gp_http_req_t *req)
{
    gp_metric_set(gp_metrics_gauge(a->metrics, "gpupool_agent_nodes", "Nodes served", NULL),
                  a->nnodes);
    gp_metric_set(gp_metrics_gauge(a->metrics, "gpupool_agent_jobs", "Jobs on the agent's nodes",
                                   NULL),
                  agent_jobs_count(a));
    gp_metric_set(gp_metrics_gauge(a->metrics, "gpupool_agent_registered",
                                   "1 when the node records are in etcd", NULL),
                  a->registered);
    gp_metric_set(gp_metrics_gauge(a->metrics, "gpupool_agent_coordinators",
                                   "Coordinators connected", NULL),
                  a->coordinators ? (double)gp_strmap_size(a->coordinators) : 0);
    s_sweep(a);
    char *text;
    size_t len;
    if (gp_metrics_render(a->metrics, &text, &len) < 0) {
        gp_http_respond_error(req, 500, "cannot render metrics");
        return;
    }
    gp_http_respond(req, 200, "text/plain; version=0.0.4", text, len);
}
