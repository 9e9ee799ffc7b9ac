#!/usr/bin/env bash
# The fake driver's own memory rules, which the shim's tests rely on, as a
# real driver has them: allocations in whole 2 MiB pages; VMM memory alive
# until its last handle and its last mapping are gone, in every process that
# imported it; pools that keep freed memory reserved above their release
# threshold; graph memory taken when a graph runs (built or captured), kept
# by the graph pool until trimmed; stream-ordered allocations on the
# stream's device; contexts and their limits occupying memory.  No shim here.
. "$(dirname "$0")/common.sh"

if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 1 "tests the fake driver itself"
    done_testing
fi
env "${DRIVER_ENV[@]}" FAKECUDA_DEVICES=2 FAKECUDA_CTX_MIB=10 "${SAN_ENV[@]}" \
    "$SHIMTEST" fakedriver >"$T_TMP/out" 2>&1
tap_ok "$T_TMP/out" $? "the fake driver follows the real driver's memory rules"
done_testing
