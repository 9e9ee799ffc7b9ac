#!/usr/bin/env bash
# A high-priority slice that launches kernels on a GPU suspends the launches
# of low-priority slices on it -- with and without a compute cap -- and they
# resume once it has been idle for GP_SLICE_PRIORITY_IDLE_MS.  Their memory
# stays allocated meanwhile.  A normal slice -- what a job of the default
# priority 0 runs as (gp_slice_priority_of) -- is never held.
. "$(dirname "$0")/common.sh"

# All slices of the node keep their regions in one directory; the GPU's
# priority state lives there too.
dir=$T_TMP/node
mkdir -p "$dir"
t0=$(( $(env "${DRIVER_ENV[@]}" "$SHIMTEST" now) + 500000000 ))   # CLOCK_MONOTONIC, as the programs use
# timeline (from t0): low slices launch for 3.5 s; the high slice is busy
# from 1.0 s to 2.0 s; idle interval 300 ms, so the low ones resume at 2.3 s
for low in nocap cap50; do
    extra=()
    [ $low = cap50 ] && extra=(GP_SLICE_COMPUTE=50)
    in_slice "$dir/$low" GP_SLICE_PRIORITY=low GP_SLICE_PRIORITY_IDLE_MS=300ms "${extra[@]}" -- \
        "$SHIMTEST" launchlog "$t0" 3.5 1000 >"$T_TMP/$low.out" 2>&1 &
    track_pid $!
    eval "pid_$low=$!"
done
in_slice "$dir/normal" GP_SLICE_PRIORITY=normal GP_SLICE_PRIORITY_IDLE_MS=300ms -- \
    "$SHIMTEST" launchlog "$t0" 3.5 1000 >"$T_TMP/normal.out" 2>&1 &
track_pid $!
pid_normal=$!
in_slice "$dir/high" GP_SLICE_PRIORITY=high -- "$SHIMTEST" burst "$t0" 1000 2000 1000 \
    >"$T_TMP/high.out" 2>&1
is "$?" 0 "the high-priority slice ran its burst"
wait "$pid_nocap"; st1=$?
wait "$pid_cap50"; st2=$?
is "$st1$st2" 00 "both low-priority slices ran to the end"
diag "high: $(cat "$T_TMP/high.out")"
for low in nocap cap50; do
    b=$(sed -n 's/^buckets=//p' "$T_TMP/$low.out")
    diag "$low launches per 100 ms: $b"
    IFS=, read -r -a n <<<"$b"
    before=0; during=0; after=0
    for i in "${!n[@]}"; do
        if [ "$i" -ge 1 ] && [ "$i" -le 8 ]; then before=$((before + n[i])); fi
        if [ "$i" -ge 12 ] && [ "$i" -le 19 ]; then during=$((during + n[i])); fi
        if [ "$i" -ge 26 ] && [ "$i" -le 33 ]; then after=$((after + n[i])); fi
    done
    [ "$before" -gt 0 ]; ok $? "$low: launches before the high-priority slice starts ($before)"
    is "$during" 0 "$low: no launch completes while the high-priority slice is active"
    [ "$after" -gt 0 ]; ok $? "$low: launches resume after it has been idle ($after)"
    s=$(usage_of "$dir/$low" suspended_ns)
    [ "${s:-0}" -gt 800000000 ]
    ok $? "$low: the region records the time suspended ($((s / 1000000)) ms)"
done
wait "$pid_normal"; is "$?" 0 "the normal slice ran to the end"
b=$(sed -n 's/^buckets=//p' "$T_TMP/normal.out")
diag "normal launches per 100 ms: $b"
IFS=, read -r -a n <<<"$b"
during=0
for i in "${!n[@]}"; do
    if [ "$i" -ge 12 ] && [ "$i" -le 19 ]; then during=$((during + n[i])); fi
done
[ "$during" -gt 0 ]; ok $? "normal: launches go on while the high-priority slice is active ($during)"
s=$(usage_of "$dir/normal" suspended_ns)
is "${s:-0}" 0 "normal: the region records no time suspended"
done_testing
