#!/usr/bin/env bash
# cuMemGetInfo, cuDeviceTotalMem and NVML report the slice -- total = the
# limit, used = what the whole slice holds -- the same in CUDA and NVML and
# from every process of the slice.
. "$(dirname "$0")/common.sh"

region=$T_TMP/slice
start_daemon holder '^holding' 20 -- \
    env "${DRIVER_ENV[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$region" GP_SLICE_MEM_LIMIT=1G \
    GP_SLICE_CTX_OVERHEAD_MIB=10 LD_PRELOAD="$PRELOAD" "$SHIMTEST" hold 100 30
ok $? "a first process holds 100 MiB"
# each querying process adds its own 10 MiB context to the holder's 110
for who in second third; do
    in_slice "$region" GP_SLICE_MEM_LIMIT=1G GP_SLICE_CTX_OVERHEAD_MIB=10 -- \
        "$SHIMTEST" meminfo 120 >"$T_TMP/$who" 2>&1
    tap_ok "$T_TMP/$who" $? "a $who process sees the slice in CUDA and NVML (limit 1 GiB, 120 MiB used)"
done
# an NVML query alone does not initialise CUDA, and finds the slice (a new
# one, whose devices' UUIDs no process has recorded yet)
in_slice "$T_TMP/slice-nvml" GP_SLICE_MEM_LIMIT=1G -- "$SHIMTEST" nvmlonly >"$T_TMP/nvml" 2>&1
tap_ok "$T_TMP/nvml" $? "NVML reports the slice in a process that never used CUDA, without initialising it"
stop_daemon holder
is "$(usage_of "$region" nprocs)" 1 "a process killed by a signal still holds its slot"
"$SLICECTL" reclaim "$region" >/dev/null
is "$(usage_of "$region" mem_used)" 0 "after reclaim the slice holds nothing"
is "$(usage_of "$region" nprocs)" 0 "and no process slot"

# A device with less free memory than the slice's room: free is what the
# device really has.  Another job (outside any slice) holds 300 of 512 MiB.
if [ "${GP_REAL_CUDA:-0}" = 1 ]; then
    skip 1 "needs the fake driver's small device"
else
    small=(LD_LIBRARY_PATH="$GP_BUILD/tests/fakecuda" FAKECUDA_STATE="$T_TMP/small" FAKECUDA_MEM_MIB=512)
    start_daemon other '^holding' 20 -- env "${small[@]}" "$SHIMTEST" hold 300 30
    env "${small[@]}" "${SAN_ENV[@]}" GP_SLICE_REGION="$T_TMP/slice2" GP_SLICE_MEM_LIMIT=400 \
        LD_PRELOAD="$PRELOAD" "$SHIMTEST" meminfo 0 212 >"$T_TMP/small.out" 2>&1
    tap_ok "$T_TMP/small.out" $? "free is capped by the device's real free memory (212 MiB), in CUDA and NVML"
    stop_daemon other
fi
done_testing
