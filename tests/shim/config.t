#!/usr/bin/env bash
# Garbage in the slice contract stops a process at start-up with a message
# naming the variable (exit 78, EX_CONFIG), never undefined limits; no
# GP_SLICE_REGION means the shim stays out of the way.
. "$(dirname "$0")/common.sh"

region=$T_TMP/slice
while IFS='|' read -r var value; do
    [ -n "$var" ] || continue
    out=$(in_slice "$region" "$var=$value" -- "$SHIMTEST" noop 2>&1)
    st=$?
    is "$st" 78 "$var='$value' stops the process (EX_CONFIG)"
    like "$out" "$var" "  and the message names $var"
done <<'CASES'
GP_SLICE_MEM_LIMIT|abc
GP_SLICE_MEM_LIMIT|-5
GP_SLICE_MEM_LIMIT|0
GP_SLICE_MEM_LIMIT|1G,,2G
GP_SLICE_COMPUTE|0
GP_SLICE_COMPUTE|150
GP_SLICE_COMPUTE|50%
GP_SLICE_PRIORITY|urgent
GP_SLICE_PRIORITY_IDLE_MS|soon
GP_SLICE_OVERSUBSCRIBE|yes
GP_SLICE_CTX_OVERHEAD_MIB|lots
GP_SLICE_DEVICES|0
GP_SHIM_LOG|chatty
CASES
out=$(in_slice "$region" GP_SLICE_MEM_LIMIT=1G,2G GP_SLICE_COMPUTE=10,20,30 -- "$SHIMTEST" noop 2>&1)
is "$?" 78 "lists of different lengths stop the process"
[ ! -e "$region" ]; ok $? "no region is created from a bad configuration"
# the shim loaded, a limit in the environment, but no region: no slice
env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_MEM_LIMIT=64 LD_PRELOAD="$PRELOAD" \
    "$SHIMTEST" passthrough 200 >"$T_TMP/pass" 2>&1
tap_ok "$T_TMP/pass" $? "without GP_SLICE_REGION the shim passes everything through (200 MiB with a 64 MiB limit set)"
in_slice "$region" GP_SLICE_MEM_LIMIT=4G GP_SLICE_COMPUTE=50 GP_SLICE_PRIORITY=high -- "$SHIMTEST" noop
is "$?" 0 "a valid configuration starts"
is "$(usage_of "$region" mem_limit)" $((4096 * MiB)) "and the region holds its limit"
done_testing
