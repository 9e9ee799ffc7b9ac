#!/usr/bin/env bash
# Memory pools keep freed memory reserved (release threshold raised, as
# PyTorch and TensorFlow do): the slice counts a pool's reserved memory,
# trims the process's pools before refusing an allocation, and charges
# stream-ordered memory to the stream's device.  The device's own usage is
# the witness.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 -- \
    "$SHIMTEST" pool >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "pools' reserved memory is counted and trimmed before a refusal"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"

if [ "${GP_REAL_CUDA:-0}" = 1 ] && [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -lt 2 ]; then
    skip 1 "needs two devices"
else
    env "${DRIVER_ENV[@]}" FAKECUDA_STATE="$T_TMP/gpu2" FAKECUDA_DEVICES=2 FAKECUDA_CTX_MIB=4 \
        "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/s2" GP_SLICE_MEM_LIMIT=64,64 \
        GP_SLICE_CTX_OVERHEAD_MIB=4 LD_PRELOAD="$PRELOAD" "$SHIMTEST" pooldev >"$T_TMP/dev" 2>&1
    tap_ok "$T_TMP/dev" $? "stream-ordered memory is charged to the stream's device"
fi
done_testing
