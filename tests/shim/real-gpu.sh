#!/usr/bin/env bash
# tests/shim/real-gpu.sh - every shim test program against the machine's own
# CUDA driver and GPU (GP_REAL_CUDA=1), with a written pass/fail summary.
#
#   make check-tests && bash tests/shim/real-gpu.sh [SUMMARY_FILE]
#
# With the test programs built, checks that a real driver is there (a test
# program starts without the fake driver and cuInit succeeds), runs
# tests/shim/*.t with prove, and writes SUMMARY_FILE (default
# $BUILD/shim-real-gpu.txt): the GPU and driver, one line per test file
# (pass / FAIL / skipped checks) and the totals.  Exit status: 0 all passed,
# 1 a test failed, 2 no real driver here (nothing run; the summary says so).
# Run it on an idle GPU: the tests compare the device's own usage (NVML)
# before and after what they allocate.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${GP_BUILD:-$ROOT/build}
SUMMARY=${1:-$BUILD/shim-real-gpu.txt}
mkdir -p "$(dirname "$SUMMARY")"

[ -x "$BUILD/tests/shim/shimtest" ] && [ -f "$BUILD/libgpupool-shim.so" ] ||
    { echo "real-gpu: build the tests first (make check-tests)" >&2; exit 1; }

# a real driver: the test program starts with the system's libcuda.so.1
if ! out=$(env -u LD_LIBRARY_PATH -u FAKECUDA_STATE "$BUILD/tests/shim/shimtest" noop 2>&1); then
    {
        echo "shim tests on a real GPU: not run -- no CUDA driver on $(hostname)"
        echo "  ($(printf '%s' "$out" | head -1))"
    } >"$SUMMARY"
    cat "$SUMMARY"
    exit 2
fi

{
    echo "shim tests on a real GPU: $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC')"
    command -v nvidia-smi >/dev/null && \
        nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/  gpu /'
} >"$SUMMARY"
LOG=$(dirname "$SUMMARY")/shim-real-gpu.log
GP_REAL_CUDA=1 GP_BUILD="$BUILD" prove -v "$ROOT"/tests/shim/*.t >"$LOG" 2>&1
st=$?
# one line per test file: its verdict, from prove's verbose output
awk '
    /^\/.*\.t \.+ *$/ || /^[^ #].*\.t \.+/ { if (f) print line; f = $1; sub(/.*\//, "", f); nok = 0; nfail = 0; nskip = 0 }
    /^ok [0-9]+ # skip/ { nskip++ }
    /^ok [0-9]+/ { nok++ }
    /^not ok [0-9]+/ && !/# TODO/ { nfail++ }
    { line = sprintf("  %-20s %s (%d ok, %d failed, %d skipped)", f, nfail ? "FAIL" : "pass", nok, nfail, nskip) }
    END { if (f) print line }
' "$LOG" >>"$SUMMARY"
grep -E '^(Files=|Result:)' "$LOG" | sed 's/^/  /' >>"$SUMMARY"
echo "  full output: $LOG" >>"$SUMMARY"
cat "$SUMMARY"
[ $st = 0 ] && exit 0 || exit 1
