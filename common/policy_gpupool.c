/*
 * policy_gpupool.c - gpupool's own policy: FGD that also sees the GPUs a
 * node's CPU cannot feed and the leftovers no common share can fill, and
 * packs devices among equals.
 *
 * FGD (policy_fgd.c) measures a node's fragmentation F against the
 * workload's typical shapes, and the CPU enters only through them: a
 * shape counts a node's idle GPU as lost when the node lacks the shape's
 * CPU.  That misses the slow drain that strands most GPUs on openb-like
 * clusters: CPU-only jobs and CPU-heavy slices eat a node's cores while
 * its GPUs are still free, and the node ends with idle GPUs that no job
 * can use (the 8-GPU, 96-core nodes of openb have 12 cores per GPU where
 * the workload asks about 14).  So gpupool adds the node's CPU-stranded
 * GPU capacity
 *   S(node) = max(0, free GPU - free CPU / c)
 * where c is the workload's CPU per unit of GPU (over the same shapes:
 * sum of CPU over sum of devices x share, each shape by its frequency):
 * the GPU share the node's free CPU cannot accompany at the workload's
 * average ratio.  The score is FGD's, on the combined change:
 *   score = trunc(100 x sigmoid((dF + LAMBDA x dS) / 1000)),
 *   dF = F(before) - F(after), dS = S(before) - S(after),
 * a whole number like FGD's (the coarseness and first fit among equals
 * are what make FGD fill used nodes first; see policy_fgd.c).  LAMBDA
 * (0.3) matters little between 0.1 and 1: the stranding term mostly
 * moves a placement that would strand a node's GPUs down a bucket.
 * A single-device fractional job also sees what its device is likely to
 * keep idle for good.  FGD asks only whether one typical job still fits a
 * leftover; gpupool asks what combination of common shares can still fill
 * it: W(f), the least leftover that the common shares (those of at least
 * 1.2% of the GPU jobs) can reach from f free thousandths, by dynamic
 * programming over f (W(f) = f when none fits, else min W(f - m)).  On
 * openb 470 next to 470 leaves 60 for good, 470 next to 320 leaves 210
 * that nothing common fills, 320 next to 650 leaves 30.  The gain adds
 * W_MU x (W(before) - W(after)) for the device taken; at W_MU = 8 a
 * leftover that common shares cannot fill outweighs FGD's preference for
 * the fuller device (FGD would put a 320 next to a 470 rather than open a
 * device; measured: W_MU 1.5 leaves 243.5 GPUs idle, 8 to 40 about 239,
 * 100 248; with the 1%-shares 160/550/590 counted common, 250).  The term is off
 * when the workload asks more CPU per GPU than the inventory has (then
 * CPU, not device shares, decides what stays idle; the cpu2 mix).
 * Among equal scores a fractional job takes the placement that leaves its
 * device fullest (best fit, which keeps other devices whole), then the
 * seed's node order.
 *
 * Measured on the openb default trace at 130%, seeds 42-51, and on the
 * synthetic mixes README lists: above FGD on every one (README).
 */
#include "placement_internal.h"

#include <math.h>

#include "banned.h"

#define S_LAMBDA 0.3
#define W_MU 8.0
#define W_COMMON 0.012

/* The workload's CPU (milli) per GPU milli, over the shapes the engine
 * knows (set or learned), recomputed when they change. */
static double s_cpu_per_gpu(gp_placement_t *pl)
{
    if (pl->cpu_per_gpu_epoch != pl->epoch || pl->cpu_per_gpu <= 0) {
        double c = 0, g = 0;
        for (int i = 0; i < pl->nseen; i++) {
            c += pl->seen_w[i] * (double)pl->seen[i].cpu_milli;
            g += pl->seen_w[i] * (double)pl->seen[i].devices * pl->seen[i].milli;
        }
        pl->cpu_per_gpu = g > 0 && c > 0 ? c / g : 1e9;   /* no GPU shapes: never strands */
        pl->cpu_per_gpu_epoch = pl->epoch;
    }
    return pl->cpu_per_gpu;
}

/* The leftover table W (see the top): common shares are those of at least
 * W_COMMON of the GPU jobs (by weight); W[f] = f when none fits, else the
 * least W[f - m] over the common shares m <= f.  Built per epoch, with the
 * switch that turns the term off when the workload asks more CPU per GPU
 * than the inventory has (the inventory as it is when the shapes change:
 * nodes added later count from the next change). */
static const int16_t *s_waste(gp_placement_t *pl)
{
    if (pl->waste_epoch == pl->epoch + 1)
        return pl->waste;
    double tot = 0, pop[1001] = {0};
    for (int i = 0; i < pl->nseen; i++)
        if (pl->seen[i].devices > 0 && pl->seen[i].milli > 0 && pl->seen[i].milli <= 1000) {
            tot += pl->seen_w[i];
            pop[pl->seen[i].milli] += pl->seen_w[i];
        }
    int common[1000], nc = 0;
    for (int m = 1; m <= 1000; m++)
        if (tot > 0 && pop[m] >= W_COMMON * tot)
            common[nc++] = m;
    for (int f = 0; f <= 1000; f++) {
        int w = f;
        for (int k = 0; k < nc && common[k] <= f; k++)
            if (pl->waste[f - common[k]] < w)
                w = pl->waste[f - common[k]];
        pl->waste[f] = (int16_t)w;
    }
    double cpu = 0, gpu = 0;
    for (int k = 0; k < pl->nslots; k++)
        if (pl->nodes[k].used) {
            cpu += (double)pl->nodes[k].cpu_cap;
            gpu += 1000.0 * pl->nodes[k].ndev;
        }
    pl->waste_off = !(gpu > 0 && s_cpu_per_gpu(pl) <= cpu / gpu);
    pl->waste_epoch = pl->epoch + 1;
    return pl->waste;
}

static double s_stranded(int64_t cpu_free, double gpu_free, double cpu_per_gpu)
{
    double x = gpu_free - (double)cpu_free / cpu_per_gpu;
    return x > 0 ? x : 0;
}

static int s_bucket(double gain)
{
    return (int)(100.0 / (1.0 + exp(-gain / 1000.0)));
}

static bool s_gpupool(gp_placement_t *pl, gp_pl_node_t *node, const gp_pl_req_t *r,
                      double *score, int8_t *pick)
{
    int mf[GP_MAX_DEVICES];
    for (int i = 0; i < node->ndev; i++)
        mf[i] = gp_pl_dev_free_milli(&node->dev[i]);
    double before = gp_pl_fgd_node_frag_cached(pl, node, mf);
    double cpg = s_cpu_per_gpu(pl);
    double gfree = (double)gp_pl_node_gpu_free(node);
    double s_before = s_stranded(node->cpu_free, gfree, cpg);
    int64_t cpu_after = node->cpu_free - r->cpu;
    if (r->n == 1 && !r->whole) {
        double best = -1;
        int bi = -1, seen[GP_MAX_DEVICES], nseen = 0;
        const int16_t *W = s_waste(pl);
        for (int i = 0; i < node->ndev; i++) {
            const gp_pl_dev_t *d = &node->dev[i];
            if (!gp_pl_dev_fits(pl, d, r))
                continue;
            bool dup = false;      /* an earlier device in the same state scored the same */
            for (int k = 0; k < nseen && !dup; k++)
                dup = seen[k] == mf[i];
            if (dup)
                continue;
            seen[nseen++] = mf[i];
            int keep = mf[i], left = gp_pl_dev_milli_after(d, r);
            mf[i] = left;
            double after = gp_pl_fgd_node_frag(pl, node, cpu_after, mf);
            mf[i] = keep;
            double ds = s_before - s_stranded(cpu_after, gfree - (keep - left), cpg);
            double dw = pl->waste_off ? 0 : W[keep] - W[left];
            /* whole-number score, then the fullest device (in [0, 0.999]) */
            double sc = s_bucket(before - after + S_LAMBDA * ds + W_MU * dw) +
                        0.999 * (1.0 - left / 1000.0);
            if (bi < 0 || sc > best) {
                best = sc;
                bi = i;
            }
        }
        if (bi < 0)
            return false;
        pick[0] = (int8_t)bi;
        *score = best;
        return true;
    }
    if (!gp_pl_pick(pl, node, r, GP_PICK_PACK, pick))
        return false;
    double gafter = gfree;
    for (int k = 0; k < r->n; k++) {
        int left = gp_pl_dev_milli_after(&node->dev[pick[k]], r);
        gafter -= mf[pick[k]] - left;
        mf[pick[k]] = left;
    }
    double after = gp_pl_fgd_node_frag(pl, node, cpu_after, mf);
    double ds = s_before - s_stranded(cpu_after, gafter, cpg);
    *score = s_bucket(before - after + S_LAMBDA * ds);
    return true;
}

/* A batch placed together: whole-GPU jobs first, most GPUs first, then the
 * shares in arrival order, CPU-only jobs last.  When a batch asks more than
 * the free devices hold, the empty devices go to jobs that fill them (a
 * whole job rather than an 810 that leaves 190 idle for good), and the
 * shares, kept in their mix, still pair on devices as they arrive (sorting
 * them by size as well gave 227 GPUs idle rather than 222 on openb with
 * batches of 1,024). */
static double s_batch_key(const gp_pl_req_t *r)
{
    if (r->n == 0)
        return 0;
    return r->whole ? 1000.0 * r->n : 1;
}

const gp_policy_t gp_policy_gpupool = {
    "gpupool",
    "FGD plus the GPUs a node's CPU cannot feed and the leftovers common shares cannot "
    "fill; among equals the fullest device",
    true, s_gpupool, false, NULL, s_batch_key,
};
