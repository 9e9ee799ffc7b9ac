#!/usr/bin/env bash
# VMM memory (cuMemCreate) is counted from its creation until its last
# handle is released and its last mapping unmapped, as the driver keeps it:
# create-map-release at once holds the limit, a retained handle keeps it,
# two mappings count once, and a handle exported to another process of the
# slice is not counted twice.  The device's own usage is the witness.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 -- \
    "$SHIMTEST" vmm >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "VMM memory is counted until it is really gone"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the processes have exited"
done_testing
