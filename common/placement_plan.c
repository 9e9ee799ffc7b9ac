/*
 * placement_plan.c - where a job goes: a node's score under the policy (with
 * the per-node score cache), the search for the best k nodes, and the
 * public place / rank / score_node / fits calls, plus gangs (all members or
 * none, placed one by one against the state the earlier members leave).
 *
 * place() takes the index's fast path when it applies (a cacheable policy,
 * no pins, labels, preferences or uuid lists; placement_shape_index.c), the
 * random policy's uniform draw, or else the search over candidates.  All
 * paths rank by score, then by the seed's node order (lower rank first),
 * then by slot, so they agree on the answer.
 */
#include "placement_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "banned.h"

/* ------------------------------------------------------------ evaluation */

static bool s_in(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id && id >= 0)
            return true;
    return false;
}

bool gp_pl_node_static_ok(const gp_pl_node_t *n, const gp_pl_req_t *r)
{
    if (!n->used || !n->healthy || n->cpu_free < r->cpu || n->mem_free < r->hmem)
        return false;
    if (!r->node_filter)
        return true;
    if (r->impossible)
        return false;
    int own[3] = {n->region, n->cloud, n->zone};
    for (int i = 0; i < 3; i++)
        if (r->npin[i] && !s_in(r->pin[i], r->npin[i], own[i]))
            return false;
    for (int i = 0; i < r->nlabels; i++)
        if (!s_in(n->labels, n->nlabels, r->labels[i]))
            return false;
    return true;
}

static double s_pref_bonus(const gp_pl_node_t *n, const gp_pl_req_t *r)
{
    if (!r->has_pref)
        return 0;
    int own[3] = {n->region, n->cloud, n->zone};
    int m = 0;
    for (int i = 0; i < 3; i++)
        if (r->npref[i] && s_in(r->pref[i], r->npref[i], own[i]))
            m++;
    return m * 1e12;
}

uint32_t gp_pl_mask(const int8_t *pick, int n)
{
    uint32_t m = 0;
    for (int k = 0; k < n; k++)
        m |= 1u << pick[k];
    return m;
}

/* Score one node; false when r does not fit it.  The devices come back as
 * a bit mask (the order of a pick carries no meaning). */
bool gp_pl_eval(gp_placement_t *pl, gp_pl_node_t *n, const gp_pl_req_t *r, double *score,
                   uint32_t *mask)
{
    if (!gp_pl_node_static_ok(n, r))
        return false;
    const gp_policy_t *pol = r->policy;
    int8_t pick[GP_MAX_DEVICES];
    bool ok;
    if (pol->cacheable && !r->dev_filter) {
        if (n->cache == NULL && (n->cache = calloc(GP_PL_CACHE_WAYS, sizeof *n->cache)) == NULL)
            goto direct;
        uint64_t tag = r->shape ^ ((uint64_t)pl->epoch * 0x9E3779B97F4A7C15ULL);
        gp_pl_cache_t *c = &n->cache[(tag >> 17) % GP_PL_CACHE_WAYS];
        if (c->tag == tag && c->version == n->version && c->ok >= 0) {
            if (!c->ok)
                return false;
            *score = c->score;
            *mask = c->pick;
            return true;
        }
        ok = pol->score(pl, n, r, score, pick);
        c->tag = tag;
        c->version = n->version;
        c->ok = ok;
        c->score = ok ? *score : 0;
        c->pick = ok ? gp_pl_mask(pick, r->n) : 0;
        *mask = c->pick;
        return ok;
    }
direct:
    ok = pol->score(pl, n, r, score, pick);
    if (ok)
        *mask = gp_pl_mask(pick, r->n);
    return ok;
}

void gp_pl_unmask(uint32_t mask, int8_t *pick)
{
    int k = 0;
    for (int i = 0; mask; i++, mask >>= 1)
        if (mask & 1u)
            pick[k++] = (int8_t)i;
}

void gp_pl_make_plan(const gp_placement_t *pl, const gp_pl_node_t *n, const gp_pl_req_t *r,
                        const int8_t *pick, gp_alloc_t *out)
{
    (void)pl;
    gp_alloc_init(out);
    gp_strlcpy(out->job, r->job->id, sizeof out->job);
    gp_strlcpy(out->node, n->name, sizeof out->node);
    out->priority = r->priority;
    out->cpu_milli = r->cpu;
    out->host_mem_mib = r->hmem;
    out->ndevices = r->n;
    for (int k = 0; k < r->n; k++) {
        const gp_pl_dev_t *d = &n->dev[pick[k]];
        gp_alloc_dev_t *o = &out->devices[k];
        gp_strlcpy(o->uuid, d->uuid, sizeof o->uuid);
        o->index = pick[k];
        o->whole = r->whole;
        o->mem_mib = r->whole ? d->mem_phys : gp_pl_dev_mem_need(d, r);
        o->compute_permille = r->whole ? 1000 : r->comp_pm;
    }
}


/* Higher score first; among equal scores the node earlier in the tie order. */
static bool s_cand_better(const gp_placement_t *pl, const gp_pl_cand_t *a, const gp_pl_cand_t *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    uint32_t ra = pl->nodes[a->slot].rank, rb = pl->nodes[b->slot].rank;
    return ra < rb || (ra == rb && a->slot < b->slot);
}

/* The best k candidates for r into top[0..*n), best first. */
static int s_search(gp_placement_t *pl, const gp_pl_req_t *r, gp_pl_cand_t *top, int k)
{
    if (r->n > 0 && r->group_mask == 0)
        return 0;
    int max = pl->nnodes <= pl->full_scan_nodes ? pl->nslots : pl->max_candidates;
    if (max < k)
        max = k;
    int stackbuf[1024];
    int *slots = max <= 1024 ? stackbuf : malloc(sizeof *slots * (size_t)max);
    if (slots == NULL)
        return -1;
    int nc = gp_pl_candidates(pl, r, slots, max);
    int nt = 0;
    for (int i = 0; i < nc; i++) {
        gp_pl_node_t *n = &pl->nodes[slots[i]];
        gp_pl_cand_t c;
        if (!gp_pl_eval(pl, n, r, &c.score, &c.mask))
            continue;
        c.score += s_pref_bonus(n, r);
        c.slot = slots[i];
        if (nt == k && !s_cand_better(pl, &c, &top[k - 1]))
            continue;
        int j = nt < k ? nt++ : k - 1;
        while (j > 0 && s_cand_better(pl, &c, &top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    if (slots != stackbuf)
        free(slots);
    return nt;
}

static bool s_ix_applies(const gp_pl_req_t *r)
{
    return r->policy->cacheable && !r->dev_filter && !r->node_filter && !r->has_pref;
}

int gp_placement_rank(gp_placement_t *self, const gp_job_t *job, gp_candidate_t *out, int k,
                      int *n, gp_err_t *err)
{
    gp_pl_req_t r;
    if (k < 1)
        return gp_err_set(err, GP_ERR_INVALID, "rank: k must be >= 1");
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    gp_pl_observe(self, &r);
    gp_pl_cand_t one, *top = k == 1 ? &one : malloc(sizeof *top * (size_t)k);
    if (top == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    int nt = s_search(self, &r, top, k);
    if (nt < 0) {
        if (top != &one)
            free(top);
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++) {
        int8_t pick[GP_MAX_DEVICES];
        gp_pl_unmask(top[i].mask, pick);
        out[i].score = top[i].score;
        gp_pl_make_plan(self, &self->nodes[top[i].slot], &r, pick, &out[i].plan);
    }
    if (top != &one)
        free(top);
    *n = nt;
    if (nt == 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node can hold it now", job->id);
    return 0;
}

int gp_placement_place(gp_placement_t *self, const gp_job_t *job, gp_alloc_t *out,
                       gp_err_t *err)
{
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    gp_pl_observe(self, &r);
    gp_pl_cand_t best;
    int nt;
    if (r.n > 0 && r.group_mask == 0)
        nt = 0;
    else if (r.policy == &gp_policy_random && !r.has_pref)
        nt = gp_pl_random_best(self, &r, &best);
    else if (s_ix_applies(&r))
        nt = gp_pl_index_best(self, &r, &best);
    else
        nt = s_search(self, &r, &best, 1);
    if (nt < 0)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    if (nt == 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "job %s: no node can hold it now", job->id);
    int8_t pick[GP_MAX_DEVICES];
    gp_pl_unmask(best.mask, pick);
    gp_pl_make_plan(self, &self->nodes[best.slot], &r, pick, out);
    self->plan_slot = best.slot;
    return 0;
}

int gp_placement_score_node(gp_placement_t *self, const char *node, const gp_job_t *job,
                            double *score, gp_alloc_t *plan, gp_err_t *err)
{
    int slot = gp_pl_map_find(self->node_index, node);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no node %s", node);
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    double sc;
    uint32_t mask;
    int8_t pick[GP_MAX_DEVICES];
    if (!gp_pl_eval(self, &self->nodes[slot], &r, &sc, &mask))
        return gp_err_set(err, GP_ERR_CONFLICT, "job %s does not fit node %s", job->id, node);
    sc += s_pref_bonus(&self->nodes[slot], &r);
    gp_pl_unmask(mask, pick);
    if (plan)
        gp_pl_make_plan(self, &self->nodes[slot], &r, pick, plan);
    *score = sc;
    return 0;
}

bool gp_placement_fits(gp_placement_t *self, const char *node, const gp_job_t *job)
{
    double s;
    return gp_placement_score_node(self, node, job, &s, NULL, NULL) == 0;
}

int gp_placement_check_plan(gp_placement_t *self, const gp_job_t *job, const gp_alloc_t *plan,
                            gp_err_t *err)
{
    int slot = gp_pl_map_find(self->node_index, plan->node);
    if (slot < 0)
        return gp_err_set(err, GP_ERR_NOTFOUND, "no node %s", plan->node);
    gp_pl_req_t r;
    if (gp_pl_compile(self, job, &r, err) < 0)
        return -1;
    const gp_pl_node_t *n = &self->nodes[slot];
    if (plan->ndevices != r.n)
        return gp_err_set(err, GP_ERR_INVALID, "%d devices, the job asks for %d", plan->ndevices,
                          r.n);
    if (plan->cpu_milli < r.cpu || plan->cpu_milli > n->cpu_cap)
        return gp_err_set(err, GP_ERR_INVALID, "cpu_milli %lld: the job asks %lld, the node has %lld",
                          (long long)plan->cpu_milli, (long long)r.cpu, (long long)n->cpu_cap);
    if (plan->host_mem_mib < r.hmem || plan->host_mem_mib > n->mem_cap)
        return gp_err_set(err, GP_ERR_INVALID,
                          "host_mem_mib %lld: the job asks %lld, the node has %lld",
                          (long long)plan->host_mem_mib, (long long)r.hmem, (long long)n->mem_cap);
    uint32_t seen = 0;
    for (int k = 0; k < plan->ndevices; k++) {
        const gp_alloc_dev_t *p = &plan->devices[k];
        if (p->index < 0 || p->index >= n->ndev)
            return gp_err_set(err, GP_ERR_INVALID, "device index %d: the node has %d devices",
                              p->index, n->ndev);
        const gp_pl_dev_t *d = &n->dev[p->index];
        if (strcmp(d->uuid, p->uuid) != 0)
            return gp_err_set(err, GP_ERR_INVALID, "device index %d is %s, the plan names another",
                              p->index, d->uuid);
        if (seen >> p->index & 1u)
            return gp_err_set(err, GP_ERR_INVALID, "device %s named twice", d->uuid);
        seen |= 1u << p->index;
        if (!d->healthy || !r.allowed[d->group] || (r.dev_filter && !gp_pl_dev_fits_slow(d, &r)))
            return gp_err_set(err, GP_ERR_INVALID, "device %s is unhealthy or not allowed",
                              d->uuid);
        if (p->whole != r.whole)
            return gp_err_set(err, GP_ERR_INVALID, "device %s: whole %s, the job asks %s",
                              d->uuid, p->whole ? "true" : "false", r.whole ? "true" : "false");
        if (p->mem_mib > d->mem_cap)
            return gp_err_set(err, GP_ERR_INVALID, "device %s: %lld MiB, the device offers %lld",
                              d->uuid, (long long)p->mem_mib, (long long)d->mem_cap);
        if (!r.whole && p->mem_mib < gp_pl_dev_mem_need(d, &r))
            return gp_err_set(err, GP_ERR_INVALID, "device %s: %lld MiB, the job asks %lld",
                              d->uuid, (long long)p->mem_mib, (long long)gp_pl_dev_mem_need(d, &r));
        if (!r.whole && p->compute_permille < r.comp_pm)
            return gp_err_set(err, GP_ERR_INVALID, "device %s: compute %g%%, the job asks %g%%",
                              d->uuid, p->compute_permille / 10.0, r.comp_pm / 10.0);
    }
    return 0;
}

/* ------------------------------------------------------------------ gangs */

int gp_placement_place_gang(gp_placement_t *self, const gp_job_t *jobs, int n, bool commit,
                            gp_alloc_t *out, gp_err_t *err)
{
    int placed = 0, rc = -1;
    gp_placement_ref_t **refs = calloc((size_t)(n > 0 ? n : 1), sizeof *refs);
    if (refs == NULL)
        return gp_err_set(err, GP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        gp_job_t m = jobs[i];
        if (m.id[0] == '\0' || !commit)
            snprintf(m.id, sizeof m.id, "\x01gang-%d", i);  /* not a valid job id */
        if (gp_placement_place(self, &m, &out[i], err) < 0) {
            if (err && err->code == GP_ERR_NOTFOUND) {
                /* why, with the members before it placed */
                char why[200];
                if (gp_placement_explain(self, &m, why, sizeof why, NULL) < 0)
                    why[0] = '\0';
                gp_err_set(err, GP_ERR_NOTFOUND, "member %s (%d of %d) does not fit: %s",
                           jobs[i].id[0] ? jobs[i].id : "?", i + 1, n, why);
            }
            goto cleanup;
        }
        if (gp_placement_add_alloc_ref(self, &out[i], &refs[placed], err) < 0)
            goto cleanup;
        placed++;
    }
    rc = 0;
cleanup:
    if (rc < 0 || !commit) {
        for (int i = placed - 1; i >= 0; i--)
            gp_placement_remove_ref(self, refs[i]);
    }
    if (rc == 0 && !commit)
        for (int i = 0; i < n; i++)
            gp_strlcpy(out[i].job, jobs[i].id, sizeof out[i].job);
    free(refs);
    return rc;
}
