/*
 * policy_binpack.c - gpupool's binpack and spread policies.
 *
 * binpack fills the fullest nodes first and, on a node, the fullest devices
 * that can take the job (devices left entirely free stay available for
 * whole-device jobs).  A node's score is its utilization after the job:
 *   0.5 * devices' used share + 0.25 * CPU used + 0.25 * host memory used
 * (each a fraction of the node's capacity; the device term is left out on
 * nodes without devices).  spread is the mirror image: the emptiest nodes,
 * and on a node the emptiest devices, which lowers interference between
 * jobs sharing a device at the cost of fragmentation.
 */
#include "placement_internal.h"

#include "banned.h"

double gp_pl_util_after(const gp_pl_node_t *n, const gp_pl_req_t *r, const int8_t *pick)
{
    double cpu = n->cpu_cap > 0 ? (double)(n->cpu_cap - n->cpu_free + r->cpu) / (double)n->cpu_cap : 1;
    double mem = n->mem_cap > 0 ? (double)(n->mem_cap - n->mem_free + r->hmem) / (double)n->mem_cap : 1;
    if (n->ndev == 0)
        return 0.5 * cpu + 0.5 * mem;
    int64_t freem = gp_pl_node_gpu_free(n);
    for (int k = 0; k < r->n; k++) {
        const gp_pl_dev_t *d = &n->dev[pick[k]];
        freem -= gp_pl_dev_free_milli(d) - gp_pl_dev_milli_after(d, r);
    }
    double gpu = 1.0 - (double)freem / (1000.0 * n->ndev);
    return 0.5 * gpu + 0.25 * cpu + 0.25 * mem;
}

static bool s_binpack(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                      double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    *score = gp_pl_util_after(n, r, pick);
    return true;
}

static bool s_spread(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                     double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_SPREAD, pick))
        return false;
    *score = -gp_pl_util_after(n, r, pick);
    return true;
}

const gp_policy_t gp_policy_binpack = {
    "binpack", "fullest node first, fullest fitting devices first", true, s_binpack, false, NULL,
    NULL,
};

const gp_policy_t gp_policy_spread = {
    "spread", "emptiest node first, emptiest devices first", true, s_spread, false, NULL, NULL,
};
