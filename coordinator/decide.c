/*
 * decide.c - the bid round's decisions (see decide.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"

#include "banned.h"

static int s_cmp_batch(const void *pa, const void *pb)
{
    const coord_batch_key_t *a = pa, *b = pb;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->submitted_ms != b->submitted_ms)
        return a->submitted_ms < b->submitted_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

size_t coord_decide_batch(coord_batch_key_t *keys, size_t n, int64_t now, size_t batch)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const coord_batch_key_t *k = &keys[i];
        if (k->in_round || k->not_before_ms > now || !k->has_record || !k->pending || k->gang)
            continue;
        keys[kept++] = *k;
    }
    qsort(keys, kept, sizeof *keys, s_cmp_batch);
    return kept < batch ? kept : batch;
}

static void s_set(char *buf, size_t size, const char *s)
{
    if (size > 0)
        snprintf(buf, size, "%s", s);
}

coord_decision_t coord_decide_job(int fits_here, const char *nofit_why, int has_preferences,
                                  const coord_job_facts_t *facts, char *target, size_t tsize,
                                  char *reason, size_t rsize)
{
    char why[256] = "";
    s_set(reason, rsize, "");
    if (!fits_here)
        snprintf(reason, rsize, "no node fits here: %.200s", nofit_why ? nofit_why : "");
    if ((!fits_here || has_preferences) &&
        facts->handoff(facts->ctx, fits_here, target, tsize, why, sizeof why)) {
        /* Held by its team's quota it stays: quotas count the team's
         * allocations in every region, it would be held there too. */
        char qwhy[256] = "";
        if (facts->over_quota(facts->ctx, qwhy, sizeof qwhy)) {
            s_set(reason, rsize, qwhy);
            s_set(target, tsize, "");
            return COORD_DECIDE_WAIT;
        }
        s_set(reason, rsize, why);
        return COORD_DECIDE_HANDOFF;
    }
    if (!fits_here) {
        if (facts->preempt(facts->ctx, why, sizeof why)) {
            s_set(reason, rsize, "");
            return COORD_DECIDE_PREEMPTED;
        }
        if (why[0])
            s_set(reason, rsize, why);
        return COORD_DECIDE_WAIT;
    }
    if (facts->over_quota(facts->ctx, why, sizeof why)) {
        s_set(reason, rsize, why);
        return COORD_DECIDE_WAIT;
    }
    return COORD_DECIDE_BID;
}

int coord_decide_award(const char *held_node, const coord_bid_key_t *bids, int nbids, int *order,
                       coord_try_bid_fn try_bid, void *ctx, int *late, char *reason,
                       size_t rsize)
{
    *late = 0;
    if (nbids <= 0) {
        if (reason[0] == '\0') {
            s_set(reason, rsize, "no bids in time");
            *late = 1;
        }
        return -1;
    }
    for (int b = 0; held_node && b < nbids; b++)
        if (strcmp(bids[b].node, held_node) == 0)
            return COORD_AWARD_HELD;
    /* Best score first; a stable selection keeps the first of equal ones. */
    for (int b = 0; b < nbids; b++)
        order[b] = b;
    for (int i = 0; i < nbids; i++) {
        int top = i;
        for (int b = i + 1; b < nbids; b++)
            if (bids[order[b]].score > bids[order[top]].score)
                top = b;
        int t = order[top];
        memmove(&order[i + 1], &order[i], sizeof *order * (size_t)(top - i));
        order[i] = t;
        if (try_bid(ctx, t) == 0)
            return t;
    }
    s_set(reason, rsize, "the nodes that bid are full now");
    return -1;
}
