#!/usr/bin/env bash
# tests/shim/real-gpu.sh, the one command that runs every shim test program
# on a real GPU node: here, with no CUDA driver, it says so, writes that in
# its summary and exits 2 without running anything.
. "$(dirname "$0")/common.sh"

if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 2 "run by tests/shim/real-gpu.sh itself"
    done_testing
fi
if env -u LD_LIBRARY_PATH -u FAKECUDA_STATE "$SHIMTEST" noop >/dev/null 2>&1; then
    skip 2 "this machine has a CUDA driver: run tests/shim/real-gpu.sh"
    done_testing
fi
bash "$GP_ROOT/tests/shim/real-gpu.sh" "$T_TMP/summary" >"$T_TMP/out" 2>&1
is "$?" 2 "without a CUDA driver the real-GPU run stops with status 2"
grep -q '^shim tests on a real GPU: not run -- no CUDA driver' "$T_TMP/summary"
ok $? "and its summary says that nothing was run, and why"
done_testing
