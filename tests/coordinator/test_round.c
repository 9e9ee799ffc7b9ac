/*
 * test_round.c - the bid round's decisions (coordinator/decide.h): which
 * jobs a round takes, what it does with each, and which plan a job gets
 * after the bids.
 */
#include <stdio.h>
#include <string.h>

#include "decide.h"
#include "tap.h"

/* ------------------------------------------------------------ batch */

static coord_batch_key_t key(const char *id, int prio, int64_t submitted)
{
    return (coord_batch_key_t){ .id = id, .priority = prio, .submitted_ms = submitted,
                                .pending = 1, .has_record = 1 };
}

static void test_batch(void)
{
    coord_batch_key_t k[8];
    k[0] = key("old-low", 0, 100);
    k[1] = key("new-high", 5, 900);
    k[2] = key("old-high", 5, 200);
    k[3] = key("b-tie", 0, 100);
    k[4] = key("a-tie", 0, 100);
    size_t n = coord_decide_batch(k, 5, 1000, 10);
    is_int(n, 5, "every eligible job is taken when the batch has room");
    is_str(k[0].id, "old-high", "highest priority first, the oldest of them first");
    is_str(k[1].id, "new-high", "then the newer job of the same priority");
    is_str(k[2].id, "a-tie", "equal priority and age: by id");
    is_str(k[3].id, "b-tie", "... b after a");
    is_str(k[4].id, "old-low", "... then old-low");

    k[0] = key("a", 0, 1);
    k[1] = key("b", 0, 2);
    k[2] = key("c", 0, 3);
    n = coord_decide_batch(k, 3, 1000, 2);
    is_int(n, 2, "at most `batch` jobs");
    ok(n == 2 && !strcmp(k[0].id, "a") && !strcmp(k[1].id, "b"), "the two oldest are taken");

    k[0] = key("in-round", 9, 1);
    k[0].in_round = 1;
    k[1] = key("backing-off", 9, 1);
    k[1].not_before_ms = 1001;
    k[2] = key("placed", 9, 1);
    k[2].pending = 0;
    k[3] = key("no-record", 9, 1);
    k[3].has_record = 0;
    k[4] = key("gang", 9, 1);
    k[4].gang = 1;
    k[5] = key("due", 0, 5);
    k[5].not_before_ms = 1000;
    n = coord_decide_batch(k, 6, 1000, 10);
    is_int(n, 1, "jobs in a round, backing off, not pending, without a record or in a gang wait");
    is_str(n ? k[0].id : "", "due", "a job whose backoff ends now is taken");
    is_int(coord_decide_batch(k, 0, 1000, 10), 0, "an empty queue gives an empty batch");
}

/* ------------------------------------------------------------ one job */

typedef struct {
    int handoff, preempt, over_quota;          /* the answers */
    const char *handoff_why, *preempt_why, *quota_why;
    char calls[64];                            /* h, p, q in call order */
    int fits_seen;
} facts_t;

static void called(facts_t *f, char what)
{
    size_t n = strlen(f->calls);
    if (n + 1 < sizeof f->calls) {
        f->calls[n] = what;
        f->calls[n + 1] = '\0';
    }
}

static int f_handoff(void *ctx, int fits_here, char *target, size_t tsize, char *why, size_t wsize)
{
    facts_t *f = ctx;
    called(f, 'h');
    f->fits_seen = fits_here;
    if (f->handoff)
        snprintf(target, tsize, "r2");
    if (f->handoff_why)
        snprintf(why, wsize, "%s", f->handoff_why);
    return f->handoff;
}

static int f_preempt(void *ctx, char *why, size_t wsize)
{
    facts_t *f = ctx;
    called(f, 'p');
    if (f->preempt_why)
        snprintf(why, wsize, "%s", f->preempt_why);
    return f->preempt;
}

static int f_quota(void *ctx, char *why, size_t wsize)
{
    facts_t *f = ctx;
    called(f, 'q');
    if (f->quota_why)
        snprintf(why, wsize, "%s", f->quota_why);
    return f->over_quota;
}

static coord_decision_t decide(facts_t *f, int fits, int prefs, char *target, char *reason)
{
    coord_job_facts_t facts = { f_handoff, f_preempt, f_quota, f };
    target[0] = '\0';
    snprintf(reason, 160, "stale reason");
    return coord_decide_job(fits, "no device with 80 GiB", prefs, &facts, target, 32, reason, 160);
}

static void test_job(void)
{
    char target[32], reason[160];
    facts_t f = { 0 };

    coord_decision_t d = decide(&f, 1, 0, target, reason);
    is_int(d, COORD_DECIDE_BID, "a job that fits here, without preferences, is bid on");
    is_str(f.calls, "q", "... after its quota alone is checked (no hand-off, no preemption)");
    is_str(reason, "", "... and has no pending reason");

    f = (facts_t){ .over_quota = 1, .quota_why = "team a: 8 of 8 GPUs" };
    d = decide(&f, 1, 0, target, reason);
    is_int(d, COORD_DECIDE_WAIT, "a job over its team's quota waits");
    is_str(reason, "team a: 8 of 8 GPUs", "... saying why");

    f = (facts_t){ .handoff = 1, .handoff_why = "handed off from r1 to r2" };
    d = decide(&f, 1, 1, target, reason);
    is_int(d, COORD_DECIDE_HANDOFF, "a job that fits here but prefers another region is handed off");
    is_str(target, "r2", "... to the region named");
    is_str(f.calls, "hq", "... once its quota (of the plan there) let it");
    is_int(f.fits_seen, 1, "... the hand-off is told the job fits here");

    f = (facts_t){ 0 };
    d = decide(&f, 1, 1, target, reason);
    is_int(d, COORD_DECIDE_BID, "a job with preferences that no other region takes stays");
    is_str(f.calls, "hq", "... hand-off asked, then quota");

    f = (facts_t){ .handoff = 1, .handoff_why = "handed off from r1 to r2", .over_quota = 1,
                   .quota_why = "over the quota of team a: GPUs 1.00 in use + 1.00 > 1.00" };
    d = decide(&f, 0, 0, target, reason);
    is_int(d, COORD_DECIDE_WAIT, "a job its team's quota holds is not handed off: it waits");
    is_str(reason, "over the quota of team a: GPUs 1.00 in use + 1.00 > 1.00", "... saying why");
    is_str(target, "", "... with no target");
    is_str(f.calls, "hq", "... the quota asked after the hand-off named a region");

    f = (facts_t){ .handoff = 1, .handoff_why = "handed off from r1 to r2", .preempt = 1 };
    d = decide(&f, 0, 0, target, reason);
    is_int(d, COORD_DECIDE_HANDOFF, "a job that fits nowhere here goes where it fits");
    is_str(f.calls, "hq", "... and never preempts here");
    is_str(reason, "handed off from r1 to r2", "... its reason says where it went");

    f = (facts_t){ .preempt = 1 };
    d = decide(&f, 0, 0, target, reason);
    is_int(d, COORD_DECIDE_PREEMPTED, "a job that fits nowhere and may preempt does");
    is_str(f.calls, "hp", "... after the hand-off was asked, and without a quota check");
    is_str(reason, "", "... and has no pending reason");

    f = (facts_t){ 0 };
    d = decide(&f, 0, 0, target, reason);
    is_int(d, COORD_DECIDE_WAIT, "a job that fits nowhere and cannot preempt waits");
    is_str(reason, "no node fits here: no device with 80 GiB", "... with the engine's reason");

    f = (facts_t){ .handoff_why = "no region can hold it now; waiting" };
    d = decide(&f, 0, 0, target, reason);
    is_int(d, COORD_DECIDE_WAIT, "a job no region can hold waits");
    is_str(reason, "no region can hold it now; waiting", "... with the hand-off's reason");

    f = (facts_t){ .handoff_why = "no region can hold it now; waiting",
                   .preempt_why = "a preemption on n1 did not commit; retrying" };
    d = decide(&f, 0, 0, target, reason);
    is_str(reason, "a preemption on n1 did not commit; retrying",
           "a failed preemption's reason is the last word");
}

/* ------------------------------------------------------------ award */

typedef struct {
    int holds[8];                 /* 1: bid i's plan can be held */
    char tried[16];
} award_t;

static int try_bid(void *ctx, int i)
{
    award_t *a = ctx;
    size_t n = strlen(a->tried);
    a->tried[n] = (char)('0' + i);
    a->tried[n + 1] = '\0';
    return a->holds[i] ? 0 : -1;
}

static void test_award(void)
{
    coord_bid_key_t bids[4] = { { "n1", 0.2 }, { "n2", 0.9 }, { "n3", 0.5 }, { "n4", 0.9 } };
    int order[4], late = -1;
    char reason[160] = "";
    award_t a = { .holds = { 1, 1, 1, 1 } };

    int got = coord_decide_award("n1", bids, 4, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(got, COORD_AWARD_HELD, "the held plan stands when its node bid, even with a lower score");
    is_str(a.tried, "", "... no other bid is tried");
    is_int(late, 0, "... and the job is not late");

    a = (award_t){ .holds = { 1, 1, 1, 1 } };
    got = coord_decide_award("n9", bids, 4, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(got, 1, "when the held node did not bid, the best score wins (first of a tie)");

    a = (award_t){ .holds = { 1, 0, 0, 0 } };
    got = coord_decide_award(NULL, bids, 4, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(got, 0, "bids whose plans no longer fit are passed over");
    is_str(a.tried, "1320", "... tried in descending score");

    a = (award_t){ 0 };
    reason[0] = '\0';
    got = coord_decide_award(NULL, bids, 4, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(got, -1, "no bid's plan fits: no award");
    is_str(reason, "the nodes that bid are full now", "... and the reason says so");
    is_int(late, 0, "... the job is not late (it backs off)");

    a = (award_t){ 0 };
    reason[0] = '\0';
    got = coord_decide_award("n1", bids, 0, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(got, -1, "no bid at all: no award");
    is_int(late, 1, "... the job is late (retried soon)");
    is_str(reason, "no bids in time", "... and the reason says so");

    snprintf(reason, sizeof reason, "n1 refused: out of memory");
    got = coord_decide_award("n1", bids, 0, order, try_bid, &a, &late, reason, sizeof reason);
    is_int(late, 0, "refused everywhere: not late (it backs off)");
    is_str(reason, "n1 refused: out of memory", "... the refusal stays the reason");
}

int main(void)
{
    test_batch();
    test_job();
    test_award();
    return done_testing();
}
