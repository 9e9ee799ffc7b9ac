#!/usr/bin/env bash
# The driver hands out memory in whole pages of its allocation granularity
# (2 MiB): every cuMemAlloc-family path and arrays count what the device
# loses, so that 2 MiB + 4 KiB at a time fills the slice to its limit and
# never the device beyond it.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 -- \
    "$SHIMTEST" gran >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "every allocation path counts whole pages"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"
done_testing
