#!/usr/bin/env bash
# Every allocation path is counted and held to the slice's limit: plain,
# pitched (true pitch), managed, stream-ordered and pool, cuMemCreate,
# arrays and mipmapped arrays, and the entry points a program gets through
# cuGetProcAddress (v1, v2, per-thread stream) and dlopen+dlsym.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=2 -- \
    "$SHIMTEST" paths >"$T_TMP/out" 2>&1
st=$?
grep -E '^(not )?ok' "$T_TMP/out" | grep -c '^ok' >"$T_TMP/n_ok"
tap_ok "$T_TMP/out" "$st" "every allocation path holds the limit ($(cat "$T_TMP/n_ok") checks passed)"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"
peak=$(usage_of "$T_TMP/slice" mem_peak)
[ "$peak" -le $((64 * MiB)) ] && [ "$peak" -gt $((60 * MiB)) ]
ok $? "the slice filled up to, and never beyond, its limit (peak $((peak / MiB)) MiB of 64)"
done_testing
