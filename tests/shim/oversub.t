#!/usr/bin/env bash
# Oversubscription, opt-in per slice: allocations beyond the device's
# physical memory are served from host memory (mapped pinned) within the
# slice's limit, and the region reports them as host-backed.  Without it,
# the device's own limit stands.
. "$(dirname "$0")/common.sh"

if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 6 "needs the fake driver's small device"
    done_testing
fi
dev=(LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T_TMP/gpu" FAKECUDA_MEM_MIB=256)
region=$T_TMP/slice
# a 1 GiB slice on a 256 MiB device: 5 allocations of 192 MiB, the first on
# the device, the other four from host memory
env "${dev[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$region" GP_SLICE_MEM_LIMIT=1G \
    GP_SLICE_OVERSUBSCRIBE=1 SHIMTEST_WAIT_FILE="$T_TMP/go" LD_PRELOAD="$PRELOAD" \
    "$SHIMTEST" oversub 256 >"$T_TMP/out" 2>&1 &
pid=$!
track_pid $pid
wait_for 20 grep -qE '^# (ready|not ready)' "$T_TMP/out"
grep -q '^# ready' "$T_TMP/out"
ok $? "the oversubscribed slice holds its allocations (every check before the hold passed)"
is "$(usage_of "$region" mem_used)" $((5 * 192 * MiB)) "the region counts all of them against the limit"
is "$(usage_of "$region" host_used)" $((4 * 192 * MiB)) "and reports the four served from host memory"
touch "$T_TMP/go"
wait $pid
tap_ok "$T_TMP/out" $? "allocations beyond the device succeed, are refused beyond the slice, and free"
is "$(usage_of "$region" host_used)" 0 "freed host-backed memory is given back"

# the same without oversubscription: the device is full at 256 MiB
env "${dev[@]}" FAKECUDA_STATE="$T_TMP/gpu2" "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/slice2" \
    GP_SLICE_MEM_LIMIT=1G LD_PRELOAD="$PRELOAD" "$SHIMTEST" hold 300 0 >"$T_TMP/out2" 2>&1
isnt "$?" 0 "without oversubscription an allocation larger than the device fails"
is "$(usage_of "$T_TMP/slice2" mem_used)" 0 "and counts nothing"
done_testing
