#!/usr/bin/env bash
# A process killed at any point -- mid-allocation included -- leaves no
# usage in the slice once it is reclaimed, by the agent or by the next
# process that finds the slice full.
. "$(dirname "$0")/common.sh"

region=$T_TMP/slice
for delay in 0.05 0.13 0.21 0.34 0.5; do
    start_daemon churn '^churning' 20 -- \
        env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$region" GP_SLICE_MEM_LIMIT=64 \
        GP_SLICE_CTX_OVERHEAD_MIB=4 LD_PRELOAD="$PRELOAD" "$SHIMTEST" churn
    sleep "$delay"
    stop_daemon churn KILL >/dev/null 2>&1
done
used=$(usage_of "$region" mem_used)
[ "$used" -gt 0 ]
ok $? "killed processes left usage behind ($((used / MiB)) MiB)"
left=$(usage_of "$region" nprocs)
[ "$left" -ge 1 ]
ok $? "and their slots ($left; a process that hit the limit reclaimed earlier ones itself)"
is "$("$SLICECTL" reclaim "$region")" "reclaimed=$left" "the agent's reclaim finds the dead processes left"
is "$(usage_of "$region" mem_used)" 0 "after reclaim the slice's usage is exactly zero"
is "$(usage_of "$region" nprocs)" 0 "and no slot is held"

# a process finding the slice full of a dead process's memory reclaims it
start_daemon churn '^churning' 20 -- \
    env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$region" GP_SLICE_MEM_LIMIT=64 \
    LD_PRELOAD="$PRELOAD" "$SHIMTEST" churn
stop_daemon churn KILL >/dev/null 2>&1
in_slice "$region" GP_SLICE_MEM_LIMIT=64 -- "$SHIMTEST" hold 60 0 >"$T_TMP/out" 2>&1
ok $? "a new process gets the whole slice: the dead one's usage was reclaimed on the way"
is "$(usage_of "$region" mem_used)" 0 "and the slice ends empty"
done_testing
