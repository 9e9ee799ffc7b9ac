#!/usr/bin/env bash
# Graph memory nodes -- cuGraphAddMemAllocNode and cuMemAllocAsync captured
# from a stream -- are charged when the graph runs, not when it is built or
# captured: the slice counts the device's graph memory reserved
# (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT), refuses a launch that needs more
# than the slice, and trims it before refusing other allocations.  The
# device's own usage is the witness.
. "$(dirname "$0")/common.sh"

in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=4 FAKECUDA_CTX_MIB=4 -- \
    "$SHIMTEST" graphmem >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "graph memory is charged when a graph runs"
is "$(usage_of "$T_TMP/slice" mem_used)" 0 "the region counts nothing once the process has exited"
done_testing
