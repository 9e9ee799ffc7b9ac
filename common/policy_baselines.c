/*
 * policy_baselines.c - the published baselines FGD is compared with, as the
 * authors' Kubernetes scheduler simulator runs them (Weng et al., ATC'23;
 * hkust-adsl/kubernetes-scheduler-simulator, with the configuration of its
 * published run scripts).
 *
 * Every score is a whole number 0..100, like a Kubernetes score plugin's;
 * the engine breaks ties by the node order fixed per seed (first fit among
 * equals), which is how the published simulator decides between equal
 * scores.  That coarseness is part of the published results.  maxCPU and
 * maxGPU are the largest node's CPU and device capacity (128 cores and 8
 * devices on openb, the constants the simulator normalises with); "free
 * GPU" of a node is the sum over its devices of their free share (1000 =
 * a whole device); a device "fits" a share m when its free share >= m.
 *
 * random         a node drawn uniformly from the nodes that fit; for a
 *                fractional job a device drawn uniformly from the devices
 *                that fit, for whole devices the free ones in index order.
 * dotprod        Tetris-style alignment, "merged" GPU dimension:
 *                score = trunc(100 (1 - dot / 2)) with
 *                dot = freeCPU/maxCPU * CPU/maxCPU + freeGPU/maxGPU * GPU/maxGPU
 *                (GPU of the job = devices x share); devices best fit.
 * gpuclustering  jobs tagged "share" (any fractional job) or "N whole"
 *                together: a node whose jobs all carry the job's tag scores
 *                75 + b, one carrying it among others 50 + b, a node without
 *                device jobs 25 + b, any other node b, where
 *                b = 25 (maxGPU - freeGPU) / maxGPU (integer division);
 *                CPU-only jobs score 0 everywhere.  Devices best fit.
 * gpupacking     a node whose devices are all free: max(33 - free devices,
 *                free devices); else take the fitting devices least free
 *                first: if k of them are entirely free, max(50 - k, 33);
 *                otherwise max(100 - s / 10, 50) with s the sum over them of
 *                free share / 10 (integer).  CPU-only jobs score 0.
 * bestfit        score = trunc(100 (1 - 0.5 (freeCPU - CPU) / maxCPU
 *                                    - 0.5 (freeGPU - GPU) / maxGPU)).
 *                (The simulator min-max normalises it over the nodes, which
 *                keeps the same best nodes.)  Devices best fit.
 *
 * Best fit device choice: a fractional job goes to the fitting device with
 * the least free share (lowest index among equals), whole devices are the
 * entirely free ones in index order.
 */
#include "placement_internal.h"

#include "banned.h"

static bool s_random(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                     double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    if (r->n == 1 && !r->whole) {
        int seen = 0;
        for (int i = 0; i < n->ndev; i++)
            if (gp_pl_dev_fits(pl, &n->dev[i], r) &&
                gp_pl_rand(pl) % (uint64_t)++seen == 0)
                pick[0] = (int8_t)i;
    }
    *score = 0;
    return true;
}

static int64_t s_job_gpu(const gp_pl_req_t *r)
{
    return (int64_t)r->n * r->milli;
}

static bool s_dotprod(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                      double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    double mc, mg;
    gp_pl_max_spec(pl, &mc, &mg);
    double dot = ((double)n->cpu_free / mc) * ((double)r->cpu / mc) +
                 ((double)gp_pl_node_gpu_free(n) / mg) * ((double)s_job_gpu(r) / mg);
    *score = (double)(int64_t)(100.0 * (1.0 - dot / 2.0));
    return true;
}

static bool s_gpuclustering(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                            double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    if (r->n == 0) {
        *score = 0;
        return true;
    }
    double mc, mgd;
    gp_pl_max_spec(pl, &mc, &mgd);
    int64_t mg = (int64_t)mgd;
    int tag = r->whole ? r->n : 0;
    bool same = false;
    int other = -2;          /* -2: no device job yet; -1: more than one other tag */
    for (int i = 0; i < n->nallocs; i++) {
        int t = n->allocs[i]->tag;
        if (t < 0)
            continue;
        if (t == tag)
            same = true;
        else if (other == -2 || other == t)
            other = t;
        else
            other = -1;
    }
    int64_t b = 25 * (mg - gp_pl_node_gpu_free(n)) / mg;
    int64_t band = same ? (other == -2 ? 75 : 50) : (other == -2 ? 25 : 0);
    *score = (double)(band + b);
    return true;
}

static bool s_gpupacking(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                         double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    if (r->n == 0) {
        *score = 0;
        return true;
    }
    int free_all = 0;
    for (int i = 0; i < n->ndev; i++)
        if (gp_pl_dev_free_milli(&n->dev[i]) == 1000)
            free_all++;
    if (free_all == n->ndev) {
        int s = 33 - free_all;
        *score = s > free_all ? s : free_all;
        return true;
    }
    int whole_used = 0;
    int64_t ratio = 0;
    for (int k = 0; k < r->n; k++) {
        int f = gp_pl_dev_free_milli(&n->dev[pick[k]]);
        if (f == 1000)
            whole_used++;
        ratio += f * 100 / 1000;
    }
    if (whole_used > 0) {
        int s = 50 - whole_used;
        *score = s > 33 ? s : 33;
    } else {
        int64_t s = 100 - ratio / 10;
        *score = (double)(s > 50 ? s : 50);
    }
    return true;
}

static bool s_bestfit(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                      double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    double mc, mg;
    gp_pl_max_spec(pl, &mc, &mg);
    double s = 0.5 * ((double)(n->cpu_free - r->cpu) / mc) +
               0.5 * ((double)(gp_pl_node_gpu_free(n) - s_job_gpu(r)) / mg);
    *score = (double)(int64_t)((1.0 - s) * 100.0);
    return true;
}

const gp_policy_t gp_policy_random = {
    "random", "a uniformly random node that fits (baseline)", false, s_random, false, NULL, NULL,
};
const gp_policy_t gp_policy_dotprod = {
    "dotprod", "smallest dot product of demand and free resources (Tetris baseline)", true,
    s_dotprod, true, NULL, NULL,
};
const gp_policy_t gp_policy_gpuclustering = {
    "gpuclustering", "jobs of the same kind (shared, N whole devices) together (baseline)",
    true, s_gpuclustering, true, NULL, NULL,
};
const gp_policy_t gp_policy_gpupacking = {
    "gpupacking", "shared devices, then used nodes, then empty nodes (baseline)", true,
    s_gpupacking, true, NULL, NULL,
};
const gp_policy_t gp_policy_bestfit = {
    "bestfit", "the node left with the least CPU and GPU (baseline)", true, s_bestfit, true, NULL,
    NULL,
};
