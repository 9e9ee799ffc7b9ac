/*
 * policy_baselines.c - the published baselines FGD is compared with (the
 * ATC'23 paper's evaluation and its Kubernetes scheduler simulator), each
 * a node score plus a device choice.  "Free GPU" below is a device's free
 * share in thousandths; maxCPU and maxGPU are the largest node's capacity.
 *
 * random         a uniformly random feasible node; devices packed.
 * dotprod        Tetris-style alignment.  For each way the node can take the
 *                job (a shared device with room, or the node's entirely free
 *                devices), node vector (free CPU / maxCPU, free GPU of that
 *                option / maxGPU), job vector (CPU / maxCPU, GPU / maxGPU);
 *                the option with the smallest dot product wins; score
 *                1 - dot / 2 (a small product means the job is small
 *                against what is left: the least disturbance).
 * gpuclustering  keep jobs of the same per-device share together: a node
 *                holding only jobs with this share scores in (75, 100], one
 *                holding this share among others (50, 75], an empty node
 *                (25, 50], any other node (0, 25]; inside a band the node
 *                with less free GPU is preferred.  CPU-only jobs: 0.
 * gpupacking     prefer using shared devices, then free devices of a node
 *                already in use, then an entirely free node: bands
 *                [50, 100] (100 - free share of the used devices / 10),
 *                [33, 50] (50 - whole free devices it must take), and
 *                [0, 33] (33 - free devices of the empty node).  CPU-only: 0.
 * bestfit        the node left with the least resources:
 *                score = 1 - (0.5 (freeCPU - CPU) / maxCPU
 *                           + 0.5 (freeGPU - GPU) / maxGPU).
 */
#include "placement_internal.h"

#include "banned.h"

static bool s_random(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                     double *score, int8_t *pick)
{
    if (!gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
        return false;
    *score = (double)(gp_pl_rand(pl) >> 11);
    return true;
}

static bool s_dotprod(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                      double *score, int8_t *pick)
{
    double mc, mg;
    gp_pl_max_spec(pl, &mc, &mg);
    double pc = (double)r->cpu / mc, pg = (double)r->n * r->milli / mg;
    double nc = (double)n->cpu_free / mc;
    double best = -1;
    if (r->n == 1 && !r->whole && r->milli < 1000) {
        for (int i = 0; i < n->ndev; i++) {
            const gp_pl_dev_t *d = &n->dev[i];
            int mf = gp_pl_dev_free_milli(d);
            if (mf >= 1000 || !gp_pl_dev_fits(pl, d, r))
                continue;
            double dot = nc * pc + (mf / mg) * pg;
            if (best < 0 || dot < best) {
                best = dot;
                pick[0] = (int8_t)i;
            }
        }
    }
    if (r->n == 0) {
        best = nc * pc + (gp_pl_node_gpu_free(n) / mg) * pg;
    } else {
        int idle = 0;
        for (int i = 0; i < n->ndev; i++)
            if (n->dev[i].nalloc == 0 && gp_pl_dev_fits(pl, &n->dev[i], r))
                idle++;
        if (idle >= r->n) {
            double dot = nc * pc + (idle * 1000.0 / mg) * pg;
            if (best < 0 || dot < best) {
                gp_pl_req_t w = *r;   /* the exclusive option takes idle devices */
                int k = 0;
                for (int i = 0; i < n->ndev && k < r->n; i++)
                    if (n->dev[i].nalloc == 0 && gp_pl_dev_fits(pl, &n->dev[i], &w))
                        pick[k++] = (int8_t)i;
                best = dot;
            }
        }
        if (best < 0 && !gp_pl_pick(pl, n, r, GP_PICK_PACK, pick))
            return false;
        if (best < 0)
            best = nc * pc + (gp_pl_node_gpu_free(n) / mg) * pg;
    }
    *score = 1.0 - best / 2.0;
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
    double mc, mg;
    gp_pl_max_spec(pl, &mc, &mg);
    bool same = false, other = false;
    for (int i = 0; i < n->nallocs; i++) {
        if (n->allocs[i]->ndev == 0)
            continue;
        if (n->allocs[i]->tag == r->milli)
            same = true;
        else
            other = true;
    }
    double band = same ? (other ? 50 : 75) : (other ? 0 : 25);
    *score = band + 25.0 * (mg - (double)gp_pl_node_gpu_free(n)) / mg;
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
    int free_all = 0, free_used = 0;
    for (int i = 0; i < n->ndev; i++)
        if (n->dev[i].nalloc == 0 && n->dev[i].healthy)
            free_all++;
    if (free_all == n->ndev) {
        double s = 100.0 / 3 - free_all;
        *score = s > 0 ? s : 0;
        return true;
    }
    double freeratio = 0;
    for (int k = 0; k < r->n; k++) {
        const gp_pl_dev_t *d = &n->dev[pick[k]];
        if (d->nalloc == 0)
            free_used++;
        freeratio += gp_pl_dev_free_milli(d) / 10.0;
    }
    if (free_used > 0) {
        double s = 50 - free_used;
        *score = s > 100.0 / 3 ? s : 100.0 / 3;
    } else {
        double s = 100 - freeratio / 10;
        *score = s > 50 ? s : 50;
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
    double freeg = (double)gp_pl_node_gpu_free(n);
    double s = 0.5 * ((double)(n->cpu_free - r->cpu) / mc) +
               0.5 * ((freeg - (double)r->n * r->milli) / mg);
    *score = 1.0 - s;
    return true;
}

const gp_policy_t gp_policy_random = {
    "random", "a uniformly random node that fits (baseline)", false, s_random,
};
const gp_policy_t gp_policy_dotprod = {
    "dotprod", "smallest dot product of demand and free resources (Tetris baseline)", true,
    s_dotprod,
};
const gp_policy_t gp_policy_gpuclustering = {
    "gpuclustering", "jobs with the same per-device share together (baseline)", true,
    s_gpuclustering,
};
const gp_policy_t gp_policy_gpupacking = {
    "gpupacking", "shared devices, then used nodes, then empty nodes (baseline)", true,
    s_gpupacking,
};
const gp_policy_t gp_policy_bestfit = {
    "bestfit", "the node left with the least CPU and GPU (baseline)", true, s_bestfit,
};
