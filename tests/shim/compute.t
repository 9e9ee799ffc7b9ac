#!/usr/bin/env bash
# Compute caps of 10..90% are achieved within +/- 5 points, for every launch
# path (cuLaunchKernel, cuLaunchKernelEx, cooperative launches, CUDA graphs,
# and an entry point from cuGetProcAddress with the per-thread stream).
# The share is measured by NVML's utilization over 3 s: on the fake driver
# that is busy time on the simulated device clock, so it does not depend on
# how fast this machine runs the test.
. "$(dirname "$0")/common.sh"

# HOW CAP KERNEL_US: one slice on its own device
run_case() {
    local how=$1 cap=$2 us=$3
    local d=$T_TMP/$how-$cap
    mkdir -p "$d"
    env "${DRIVER_ENV[@]}" FAKECUDA_STATE="$d/fakegpu" "${SAN_ENV[@]}" GP_SLICE_REGION="$d/slice" \
        GP_SLICE_COMPUTE="$cap" LD_PRELOAD="$PRELOAD" "$SHIMTEST" compute "$how" 3 "$us" \
        >"$d/out" 2>&1
    echo $? >"$d/status"
}

cases=("launch 10 2000" "launch 25 2000" "launch 50 2000" "launch 75 2000" "launch 90 2000"
       "ex 30 1000" "coop 60 3000" "graph 50 2000" "procaddr 40 2000")
if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    # one GPU: one case at a time
    for c in "${cases[@]}"; do run_case $c; done
else
    # each case has its own simulated device: run them side by side
    pids=()
    for c in "${cases[@]}"; do run_case $c & pids+=($!); track_pid $!; done
    for p in "${pids[@]}"; do wait "$p"; done
fi
for c in "${cases[@]}"; do
    set -- $c
    d=$T_TMP/$1-$2
    tap_ok "$d/out" "$(cat "$d/status")" "$1: a $2% cap is achieved within 5 points"
done
charged=$(usage_of "$T_TMP/graph-50/slice" charged_ns)
[ "${charged:-0}" -gt 0 ]
ok $? "graph launches are charged to the slice's budget ($((charged / 1000000)) ms)"
throttled=$(usage_of "$T_TMP/launch-10/slice" throttled_ns)
[ "${throttled:-0}" -gt 1000000000 ]
ok $? "the 10% slice spent most of its time waiting for budget ($((throttled / 1000000)) ms)"
done_testing
