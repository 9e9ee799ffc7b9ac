#!/usr/bin/env bash
# A slice spans processes and devices: a job's forked children count in its
# slice, and a slice of two devices holds a limit per device, in CUDA and
# in NVML (whose devices map to the slice's by UUID).
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/s1" GP_SLICE_MEM_LIMIT=256 GP_SLICE_CTX_OVERHEAD_MIB=3 -- \
    "$SHIMTEST" fork >"$T_TMP/fork" 2>&1
tap_ok "$T_TMP/fork" $? "a forked child shares its parent's slice and leaves nothing behind"
is "$(usage_of "$T_TMP/s1" mem_used)" 0 "the slice is empty once both have exited"

if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 2 "needs two fake devices"
else
    env LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T_TMP/gpu2" FAKECUDA_DEVICES=2 \
        "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/s2" GP_SLICE_MEM_LIMIT=64,32 LD_PRELOAD="$PRELOAD" \
        "$SHIMTEST" multidev >"$T_TMP/multi" 2>&1
    tap_ok "$T_TMP/multi" $? "each device of a two-device slice holds its own limit, in CUDA and NVML"
    is "$(usage_of "$T_TMP/s2" mem_limit 2>/dev/null)" $((64 * MiB)) "the region records device 0's limit"
fi
done_testing
