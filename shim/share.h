/*
 * share.h - compute shares that lend idle time (work-conserving).
 *
 * With GP_SLICE_COMPUTE_MODE=share a slice's compute percent is a
 * guarantee, not a ceiling: the slices of one GPU agree, through a small
 * table shared by every slice on the node ("gpu-<UUID>.share", next to the
 * regions), on who is busy, and each busy share slice is paced at
 *
 *     rate = room * share / (sum of the shares of the busy share slices)
 *     room = 100 - (sum of the caps of the busy cap slices)
 *
 * (at most 100).  So when every share slice is busy each gets its share;
 * what an idle one leaves goes to the busy ones in proportion to their
 * shares; and one that launches again is counted at once (its first launch
 * marks it busy, its neighbours read the table at least every
 * GP_SHARE_RECHECK_NS), so it gets its share back within a few of its
 * neighbours' launches.  A cap slice (the default mode) is paced at its cap
 * exactly as before; it only marks itself busy, so that share slices leave
 * it its cap.
 *
 * Crash rules: nothing in the table is ever held.  A slot says "slice K was
 * busy at time T (share or cap p)"; a slot not refreshed for
 * GP_SHARE_BUSY_NS counts for nothing, so a process killed at any point --
 * mid-claim included -- stops counting within that time, and its slot is
 * taken over once it has been stale for GP_SHARE_STALE_NS.
 *
 * Thread safety: any thread, any process; lock-free.
 */
#ifndef GP_SHARE_H
#define GP_SHARE_H

#include <stdint.h>

#define GP_SHARE_BUSY_NS (50LL * 1000000)      /* a slice is busy this long after a launch */
#define GP_SHARE_RECHECK_NS (2LL * 1000000)    /* how often a share slice re-reads the table */
#define GP_SHARE_STALE_NS (10LL * 1000000000)  /* a slot idle this long may be taken over */

/* Mark the slice busy on device dev at now (its mode and percent pct) and
 * return the percent to pace it at: pct for a cap slice (or when the GPU's
 * table cannot be had), its current rate for a share slice. */
unsigned gp_share_rate(int dev, unsigned pct, int64_t now);

/* Keep the slice marked busy on dev while it waits for budget. */
void gp_share_touch(int dev, int64_t now);

/* In a forked child: forget the parent's cached slot indices. */
void gp_share_fork_child(void);

#endif
