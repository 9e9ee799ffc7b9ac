#!/usr/bin/env bash
# A process's context overhead is counted once per device and given back
# with its last context there (cuCtxDestroy, the primary context's last
# release, a reset); cuCtxSetLimit's heap, printf FIFO and stack count
# against the slice.  The device's own usage is the witness.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=256 GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 -- \
    "$SHIMTEST" contexts >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "contexts give back their overhead, their limits count"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"
done_testing
