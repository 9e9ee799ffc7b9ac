/*
 * proposal_check - what the leader's check of an agent's proposal costs per
 * bid, beside what it already spent on that bid (tests/bench/proposal.sh).
 *
 * An engine of 1,000 nodes of 8 devices, half of them already holding a
 * slice, and a share of one device (8 GiB, 25%).  Per bid the leader parses
 * the proposal from JSON (gp_alloc_from_json, the reference it already
 * paid before the check existed) and now checks it against the node and the
 * job (gp_placement_check_plan); the agent's own work for the bid is
 * gp_placement_score_node, printed as a second reference.  Each figure is
 * the best of 5 runs of N calls, in ns per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "placement.h"
#include "util.h"

#define S_NODES 1000
#define S_CALLS 200000

static gp_alloc_t s_plans[S_NODES];
static json_t *s_json[S_NODES];

static double s_best(int which, gp_placement_t *pl, const gp_job_t *job)
{
    double best = 1e18;
    volatile int sink = 0;
    for (int run = 0; run < 5; run++) {
        int64_t t0 = gp_mono_ns();
        for (int i = 0; i < S_CALLS; i++) {
            int k = i % S_NODES;
            gp_alloc_t a;
            double sc;
            if (which == 0)
                sink += gp_alloc_from_json(s_json[k], &a, NULL);
            else if (which == 1)
                sink += gp_placement_check_plan(pl, job, &s_plans[k], NULL);
            else
                sink += gp_placement_score_node(pl, s_plans[k].node, job, &sc, &a, NULL);
        }
        double ns = (double)(gp_mono_ns() - t0) / S_CALLS;
        if (ns < best)
            best = ns;
    }
    if (sink != 0)
        fprintf(stderr, "proposal_check: some call failed (%d)\n", sink);
    return best;
}

int main(void)
{
    gp_placement_opts_t o = GP_PLACEMENT_OPTS_DEFAULT;
    gp_err_t err;
    gp_placement_t *pl = gp_placement_new(&o, &err);
    if (pl == NULL)
        return 1;
    gp_job_t fill, job;
    gp_job_init(&fill);
    fill.devices = 1;
    fill.mem_mib = 20480;
    fill.compute_permille = 300;
    gp_job_init(&job);
    gp_strlcpy(job.id, "bid", sizeof job.id);
    job.devices = 1;
    job.mem_mib = 8192;
    job.compute_permille = 250;
    job.cpu_milli = 2000;
    for (int i = 0; i < S_NODES; i++) {
        gp_node_t n;
        gp_node_init(&n);
        snprintf(n.name, sizeof n.name, "n%04d", i);
        gp_strlcpy(n.region, "r1", sizeof n.region);
        n.cpu_milli = 128000;
        n.mem_mib = 1 << 20;
        n.ndevices = 8;
        for (int d = 0; d < 8; d++) {
            gp_device_init(&n.devices[d]);
            snprintf(n.devices[d].uuid, sizeof n.devices[d].uuid, "GPU-%04d-%d", i, d);
            gp_strlcpy(n.devices[d].model, "A100", sizeof n.devices[d].model);
            n.devices[d].mem_mib = 81920;
            n.devices[d].links = 1u << (d ^ 1);
        }
        if (gp_placement_add_node(pl, &n, &err) < 0)
            return 1;
        if (i % 2 == 0) {
            gp_alloc_t a;
            snprintf(fill.id, sizeof fill.id, "fill-%d", i);
            double sc;
            if (gp_placement_score_node(pl, n.name, &fill, &sc, &a, &err) < 0 ||
                gp_placement_add_alloc(pl, &a, &err) < 0)
                return 1;
        }
    }
    for (int i = 0; i < S_NODES; i++) {
        char name[16];
        double sc;
        snprintf(name, sizeof name, "n%04d", i);
        if (gp_placement_score_node(pl, name, &job, &sc, &s_plans[i], &err) < 0 ||
            (s_json[i] = gp_alloc_to_json(&s_plans[i])) == NULL)
            return 1;
    }
    printf("bench: proposal_parse_ns %.0f\n", s_best(0, pl, &job));
    printf("bench: proposal_check_ns %.0f\n", s_best(1, pl, &job));
    printf("bench: proposal_score_node_ns %.0f\n", s_best(2, pl, &job));
    for (int i = 0; i < S_NODES; i++)
        json_decref(s_json[i]);
    gp_placement_destroy(&pl);
    return 0;
}
