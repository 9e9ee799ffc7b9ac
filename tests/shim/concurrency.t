#!/usr/bin/env bash
# 8 processes of one slice allocating and freeing at once never hold more
# than the limit together (reservations are made before the driver call),
# and the accounting ends at exactly zero.  "Never more than the limit" is
# judged by the device itself: the fake driver's peak of what it really
# held (sizes of whole MiB, which the device rounds up to 2 MiB pages).
. "$(dirname "$0")/common.sh"

region=$T_TMP/slice
pids=()
for i in 1 2 3 4 5 6 7 8; do
    in_slice "$region" GP_SLICE_MEM_LIMIT=256 -- "$SHIMTEST" stress 3 "$i" >"$T_TMP/p$i" 2>&1 &
    pids+=($!)
    track_pid $!
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "all 8 processes ran to the end"
ok_sum=0; oom_sum=0
for i in 1 2 3 4 5 6 7 8; do
    line=$(cat "$T_TMP/p$i")
    r_ok=; r_oom=
    eval "$(printf '%s' "$line" | tr ' ' '\n' | grep -E '^(ok|oom)=[0-9]+$' | sed 's/^/r_/')"
    ok_sum=$((ok_sum + ${r_ok:-0})); oom_sum=$((oom_sum + ${r_oom:-0}))
done
diag "allocations granted $ok_sum, refused $oom_sum"
[ "$ok_sum" -gt 100 ] && [ "$oom_sum" -gt 0 ]
ok $? "the processes contended at the limit (some allocations granted, some refused)"
if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 1 "a real device keeps no peak"
else
    peak=$(env "${DRIVER_ENV[@]}" "$SHIMTEST" devmem | tr ' ' '\n' | sed -n 's/^peak=//p')
    [ -n "$peak" ] && [ "$peak" -le $((256 * MiB)) ]
    ok $? "the device never held more than the slice's limit (its peak $((${peak:-0} / MiB)) MiB of 256)"
fi
is "$(usage_of "$region" mem_used)" 0 "the final accounting is exactly zero"
is "$(usage_of "$region" host_used)" 0 "and nothing is left host-backed"
is "$(usage_of "$region" nprocs)" 0 "every process gave back its slot"
done_testing
