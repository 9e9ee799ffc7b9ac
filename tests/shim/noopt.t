#!/usr/bin/env bash
# The shim does not depend on what the optimiser does: built at -O0, the
# dlsym(RTLD_NEXT) a program makes through it still searches after the
# program (glibc finds the caller by return address, which a call that is
# not a tail call would make the shim's), and every allocation path holds.
# (make asan runs the shim's tests with a sanitized build too.)
. "$(dirname "$0")/common.sh"

PRELOAD=${PRELOAD%$SHIM}$GP_BUILD/tests/shim/O0/libgpupool-shim.so
in_slice "$T_TMP/slice" GP_SLICE_MEM_LIMIT=64 -- "$SHIMTEST" rtldnext >"$T_TMP/next" 2>&1
tap_ok "$T_TMP/next" $? "dlsym(RTLD_NEXT) through a shim built at -O0 searches after its caller"
in_slice "$T_TMP/slice2" GP_SLICE_MEM_LIMIT=64 GP_SLICE_CTX_OVERHEAD_MIB=2 FAKECUDA_CTX_MIB=2 -- \
    "$SHIMTEST" paths >"$T_TMP/paths" 2>&1
tap_ok "$T_TMP/paths" $? "every allocation path holds the limit with the shim built at -O0"
done_testing
