/*
 * placement_preempt.c - preemption planning: which lower-priority
 * allocations to take back so that a job that fits nowhere fits on one
 * node.  It only plans: the state is restored after every trial and the
 * caller commits (deletes the victims, then places the job).
 */
#include "placement_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

/* -------------------------------------------------------------- preemption
 *
 * For a job that fits nowhere, find on one node the cheapest set of
 * allocations with a lower priority whose removal lets it fit.  Cost is
 * compared as (number of victims, highest victim priority, sum of victim
 * priorities), lowest first.  Per node:
 *   1. Take back every lower-priority allocation; if the job still does not
 *      fit, the node is out.
 *   2. Otherwise search subsets in order of size: all single victims, all
 *      pairs, all triples (exact, in lowest-priority-first order), and when
 *      none works a greedy set (remove in lowest-priority order until it
 *      fits, then put back each one it can do without).
 * Nodes are independent and the state is restored after each trial, so the
 * plan changes nothing.  Cost: O(nodes x m^3) fit checks for m
 * lower-priority allocations per node, fine for the tens a node holds.
 */
typedef struct {
    int count, maxp;
    long sump;
} s_cost_t;

static bool s_cost_less(s_cost_t a, s_cost_t b)
{
    if (a.count != b.count)
        return a.count < b.count;
    if (a.maxp != b.maxp)
        return a.maxp < b.maxp;
    return a.sump < b.sump;
}

static bool s_fits_without(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r,
                           gp_pl_alloc_t **v, int nv, double *score, uint32_t *pick)
{
    for (int i = 0; i < nv; i++)
        gp_pl_apply(pl, v[i], -1);
    bool ok = gp_pl_eval(pl, n, r, score, pick);
    for (int i = nv - 1; i >= 0; i--)
        gp_pl_apply(pl, v[i], +1);
    return ok;
}

static int s_prio_cmp(const void *a, const void *b)
{
    const gp_pl_alloc_t *x = *(gp_pl_alloc_t *const *)a, *y = *(gp_pl_alloc_t *const *)b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

int gp_placement_plan_preemption(gp_placement_t *self, const gp_job_t *job,
                                 char (*victims)[GP_NAME_LEN], int max, int *nvictims,
                                 gp_alloc_t *plan, gp_err_t *err)
{
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    bool found = false;
    s_cost_t best = {0, 0, 0};
    gp_pl_alloc_t *bestv[64];
    int nbest = 0, bslot = -1;
    uint32_t bpick = 0;
    gp_pl_alloc_t **low = NULL;
    int lowcap = 0;
    for (int s = 0; s < self->nslots; s++) {
        gp_pl_node_t *n = &self->nodes[s];
        if (!n->used || !n->healthy)
            continue;
        int m = 0;
        if (n->nallocs > lowcap) {
            gp_pl_alloc_t **nl = realloc(low, sizeof *nl * (size_t)n->nallocs);
            if (nl == NULL) {
                free(low);
                return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
            }
            low = nl;
            lowcap = n->nallocs;
        }
        for (int i = 0; i < n->nallocs; i++)
            if (n->allocs[i]->priority < r.priority)
                low[m++] = n->allocs[i];
        if (m == 0)
            continue;
        qsort(low, (size_t)m, sizeof *low, s_prio_cmp);
        double sc;
        uint32_t pk;
        if (!s_fits_without(self, n, &r, low, m, &sc, &pk))
            continue;
        gp_pl_alloc_t *set[64];
        int ns = 0;
        bool got = false;
        for (int a = 0; a < m && !got; a++) {
            set[0] = low[a];
            if (s_fits_without(self, n, &r, set, 1, &sc, &pk)) { ns = 1; got = true; }
        }
        for (int a = 0; a < m && !got && m <= 64; a++)
            for (int b = a + 1; b < m && !got; b++) {
                set[0] = low[a]; set[1] = low[b];
                if (s_fits_without(self, n, &r, set, 2, &sc, &pk)) { ns = 2; got = true; }
            }
        for (int a = 0; a < m && !got && m <= 24; a++)
            for (int b = a + 1; b < m && !got; b++)
                for (int c = b + 1; c < m && !got; c++) {
                    set[0] = low[a]; set[1] = low[b]; set[2] = low[c];
                    if (s_fits_without(self, n, &r, set, 3, &sc, &pk)) { ns = 3; got = true; }
                }
        if (!got) {
            ns = 0;
            for (int a = 0; a < m && ns < 64; a++) {
                set[ns++] = low[a];
                if (s_fits_without(self, n, &r, set, ns, &sc, &pk))
                    break;
            }
            for (int a = ns - 1; a >= 0; a--) {
                gp_pl_alloc_t *keep = set[a];
                set[a] = set[ns - 1];
                if (s_fits_without(self, n, &r, set, ns - 1, &sc, &pk))
                    ns--;
                else
                    set[a] = keep;
            }
            if (!s_fits_without(self, n, &r, set, ns, &sc, &pk))
                continue;
        }
        s_cost_t c = {ns, INT32_MIN, 0};
        for (int i = 0; i < ns; i++) {
            if (set[i]->priority > c.maxp)
                c.maxp = set[i]->priority;
            c.sump += set[i]->priority;
        }
        if (!found || s_cost_less(c, best)) {
            found = true;
            best = c;
            nbest = ns;
            memcpy(bestv, set, sizeof *set * (size_t)ns);
            bslot = s;
            s_fits_without(self, n, &r, set, ns, &sc, &bpick);
        }
    }
    free(low);
    if (!found)
        return gp_err_set(err, GP_ERR_NOTFOUND,
                          "job %s: no set of lower-priority jobs makes room", job->id);
    if (nbest > max)
        return gp_err_set(err, GP_ERR_INVALID, "preemption needs %d victims, room for %d",
                          nbest, max);
    for (int i = 0; i < nbest; i++)
        gp_strlcpy(victims[i], bestv[i]->job, GP_NAME_LEN);
    *nvictims = nbest;
    if (plan) {
        int8_t pick[GP_MAX_DEVICES];
        gp_pl_unmask(bpick, pick);
        gp_pl_make_plan(self, &self->nodes[bslot], &r, pick, plan);
    }
    return 0;
}
