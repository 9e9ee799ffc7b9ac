/*
 * exporter.c - what the agent's /metrics shows beyond the events the
 * modules count.
 *
 *   1. Every counter exists at 0 from the start, with each label value it
 *      can take (metrics.c registers its whole table at start-up; etcd
 *      errors, whose op and kind are open-ended, appear with the first
 *      one), so that rate() and alerts work before any event.
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
    int64_t now = gp_mono_ms();
    if (now < a->next_sweep_ms)
        return;
    a->next_sweep_ms = now + S_SWEEP_MS;
    s_sweep(a);
}

void agent_exporter_serve(agent_t *a, gp_http_req_t *req)
{
    gp_metric_set(a->m.nodes,
                  a->nnodes);
    gp_metric_set(a->m.jobs,
                  agent_jobs_count(a));
    gp_metric_set(a->m.registered,
                  a->registered);
    gp_metric_set(a->m.coordinators,
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
