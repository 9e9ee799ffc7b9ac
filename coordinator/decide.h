/*
 * decide.h - the bid round's decisions, as functions of plain inputs.
 *
 * round.c runs the round (state, messages, etcd); the choices it makes
 * are here, apart from the cache, the engine and the sockets, so that
 * tests/coordinator/test_round.c checks each one alone:
 *
 *   1. coord_decide_batch   which queued jobs a round takes, in what order;
 *   2. coord_decide_job     for one job of the batch: ask for bids, hand it
 *                           to another region, let it preempt, or let it
 *                           wait (and why);
 *   3. coord_decide_award   for one job after the bids: the plan it gets.
 *
 * Where a decision needs a fact that costs something to learn (a hand-off
 * target, a preemption that commits, a quota, whether a plan still fits),
 * the caller passes it as a callback, and the decision says when, and
 * whether, it is asked: the order of these questions is part of the rule
 * (a job that can leave the region never preempts; a job that fits
 * nowhere is not charged to its quota).
 *
 * Nothing here allocates, logs or keeps state.
 */
#ifndef GP_COORD_DECIDE_H
#define GP_COORD_DECIDE_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ 1. batch */

/* What the batch rule reads of a queued job. */
typedef struct {
    const char *id;
    int priority;
    int64_t submitted_ms;
    int64_t not_before_ms;          /* backing off until then */
    int in_round;                   /* taken by a round not closed yet */
    int pending;                    /* the record says pending */
    int has_record;                 /* the record is cached */
    int gang;                       /* a gang member (gang.c places gangs) */
    void *ref;                      /* the caller's, carried along */
} coord_batch_key_t;

/* Keep the keys a round may take at now (not in a round, not backing off,
 * pending, with a record, not a gang member), highest priority first, then
 * oldest, then by id, and at most batch of them: they are moved to the
 * front of keys, and their number returned. */
size_t coord_decide_batch(coord_batch_key_t *keys, size_t n, int64_t now, size_t batch);

/* --------------------------------------------------------- 2. one job */

typedef enum {
    COORD_DECIDE_BID,               /* ask its candidate nodes for bids */
    COORD_DECIDE_HANDOFF,           /* hand it to the region in target */
    COORD_DECIDE_PREEMPTED,         /* placed by preempting others (committed) */
    COORD_DECIDE_WAIT,              /* stays queued; reason says why */
} coord_decision_t;

/* The facts learned on demand.  Each returns 1 (yes, why filled) or 0
 * (why may still be filled: a hand-off that found no region says why the
 * job waits).  The three share one why buffer, as the rule reads it. */
typedef struct {
    /* Should the job leave the region?  target gets the region. */
    int (*handoff)(void *ctx, int fits_here, char *target, size_t tsize, char *why,
                   size_t wsize);
    /* Place it by preempting lower-priority jobs (commits when it can). */
    int (*preempt)(void *ctx, char *why, size_t wsize);
    /* Would its plan take its team over its quota?  (Its best plan here;
     * once handoff() named a target, the plan it would take there.) */
    int (*over_quota)(void *ctx, char *why, size_t wsize);
    void *ctx;
} coord_job_facts_t;

/* Decide for one job.  fits_here: the engine ranked at least one of this
 * region's nodes for it (and the job may run here); nofit_why: the
 * engine's reason when not; has_preferences: it prefers other regions or
 * clouds.  The rule, in order:
 *
 *   - a job that does not fit here, or has preferences, and for which
 *     handoff() names a target: HANDOFF, unless over_quota() holds it
 *     (quotas count every region: it would be held there too): WAIT;
 *   - a job that does not fit here: PREEMPTED when preempt() placed it,
 *     else WAIT, with the last why said (preempt()'s, else handoff()'s
 *     "waiting" one), else "no node fits here: <nofit_why>";
 *   - a job over its quota: WAIT (over_quota()'s why);
 *   - else BID.
 *
 * reason gets why the job is not placed ("" for BID and PREEMPTED);
 * target the hand-off region. */
coord_decision_t coord_decide_job(int fits_here, const char *nofit_why, int has_preferences,
                                  const coord_job_facts_t *facts, char *target, size_t tsize,
                                  char *reason, size_t rsize);

/* ------------------------------------------------------------ 3. award */

/* A bid as the award reads it. */
typedef struct {
    const char *node;
    double score;
} coord_bid_key_t;

/* Whether a plan for bid i can still be held (the agent's device plan,
 * else the leader's plan for that node); 0 when it was held, -1 not. */
typedef int (*coord_try_bid_fn)(void *ctx, int i);

/* Choose the plan of a job after the bids.  held_node: the node of the
 * plan the leader held for it in the round (NULL when none).  The rule:
 *
 *   - no bid at all: -1; when reason is still empty (no refusal said
 *     why) it becomes "no bids in time" and *late = 1 (agents busy or
 *     slow: retry soon, without backing off);
 *   - the held plan's node bid: that plan stands (the batch's plans were
 *     made together and do not collide): returns -2;
 *   - else the bids in descending score (the first in order on a tie) are
 *     tried until try_bid() holds one: returns its index;
 *   - none holds: -1, reason "the nodes that bid are full now".
 *
 * The caller drops the held plan before trying bids (the return tells it
 * which case it is in: -2 keeps it).  order gets scratch space for nbids
 * indexes; *late is set to 0 or 1. */
int coord_decide_award(const char *held_node, const coord_bid_key_t *bids, int nbids, int *order,
                       coord_try_bid_fn try_bid, void *ctx, int *late, char *reason,
                       size_t rsize);

#define COORD_AWARD_HELD (-2)

#endif
