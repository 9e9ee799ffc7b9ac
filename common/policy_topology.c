/*
 * policy_topology.c - topology-aware placement.
 *
 * Inside a node, a multi-device job should get devices joined by NVLink (or
 * a like fabric) and on one NUMA node: collective operations then run at
 * link speed and host transfers stay local.  The device set is chosen by
 * gp_pl_pick(GP_PICK_TOPO) (greedy growth from each seed device, most
 * internal links then most same-NUMA pairs).  The node's score puts link
 * quality first and packing second:
 *   score = 10 * quality + binpack utilization after the job
 *   quality = (4 * links inside the set + same-NUMA pairs) / (5 * pairs)
 * so a node offering a fully linked set beats any node that does not, and
 * among equals the fuller node wins (leaving whole linked sets elsewhere
 * intact).  Single-device and CPU-only jobs are placed as binpack would.
 */
#include "placement_internal.h"

#include "banned.h"

static bool s_topology(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                       double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_TOPO, pick))
        return false;
    double q = 0;
    if (r->n > 1) {
        int pairs = 0, got = 0;
        for (int a = 0; a < r->n; a++)
            for (int b = a + 1; b < r->n; b++) {
                pairs++;
                got += 4 * (int)((n->dev[pick[a]].links >> pick[b]) & 1u);
                got += n->dev[pick[a]].numa == n->dev[pick[b]].numa;
            }
        q = (double)got / (5.0 * pairs);
    }
    *score = 10 * q + gp_pl_util_after(n, r, pick);
    return true;
}

const gp_policy_t gp_policy_topology = {
    "topology", "NVLink-joined, same-NUMA device sets first, then binpack", true, s_topology,
    false, NULL, NULL,
};
