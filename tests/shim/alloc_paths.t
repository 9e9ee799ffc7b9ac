#!/usr/bin/env bash
# Every allocation path is counted and held to the slice's limit: plain,
# pitched (true pitch), managed, stream-ordered and pool, cuMemCreate,
# arrays and mipmapped arrays, and the entry points a program gets through
# cuGetProcAddress (v1, v2, per-thread stream) and dlopen+dlsym.  The limit
# is judged by the device's own usage (the fake driver's counters), not by
# the shim's.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=2 FAKECUDA_CTX_MIB=2 -- \
    "$SHIMTEST" paths >"$T_TMP/out" 2>&1
st=$?
grep -E '^(not )?ok' "$T_TMP/out" | grep -c '^ok' >"$T_TMP/n_ok"
tap_ok "$T_TMP/out" "$st" "every allocation path holds the limit ($(cat "$T_TMP/n_ok") checks passed)"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"
if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 1 "a real device keeps no peak"
else
    peak=$(env "${DRIVER_ENV[@]}" "$SHIMTEST" devmem | tr ' ' '\n' | sed -n 's/^peak=//p')
    [ -n "$peak" ] && [ "$peak" -le $((64 * MiB)) ] && [ "$peak" -gt $((60 * MiB)) ]
    ok $? "the device filled up to, and never beyond, the slice's limit (its peak ${peak:-?} bytes of $((64 * MiB)))"
fi
done_testing
