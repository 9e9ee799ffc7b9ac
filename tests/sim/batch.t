#!/usr/bin/env bash
# gpupool-sim replay --batch N: arrivals placed N at a time, each batch in
# the order its policy asks (gp_placement_batch_key).  On one GPU, an 810
# share and a whole job that arrive together: one at a time the first to
# arrive gets the device; in one batch gpupool gives it to the whole job
# (whole-GPU jobs first), fgd keeps arrival order.  In both modes.  On the
# openb trace fgd's figures do not depend on the batch size, and gpupool's
# with --batch 1 are those without the option.
. "$(dirname "$0")/common.sh"

printf 'sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,1,V100M32\n' > "$T_TMP/n.csv"
{
    echo 'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time'
    echo 'p0,4000,8192,1,810,,LS,Running,0,100000,0'
    echo 'p1,4000,8192,1,1000,,LS,Running,0,100000,0'
} > "$T_TMP/p.csv"

line() { printf '%s\n' "$1" | grep "\"policy\":\"$2\""; }

# time mode: both arrive at 0 (the 810 first), nothing departs before the
# round; the one left out is dropped (--max-wait 0)
for b in 1 2; do
    out=$("$SIM" replay -q --json -n "$T_TMP/n.csv" -p "$T_TMP/p.csv" -P gpupool,fgd --mode time \
        --max-wait 0 --batch "$b")
    ok $? "time mode, --batch $b runs"
    eval "tg$b=$(field "$(line "$out" gpupool)" util_peak_pct)"
    eval "tf$b=$(field "$(line "$out" fgd)" util_peak_pct)"
done
is "$tg1" 81.0 "time mode, one at a time: gpupool places the 810 that came first"
is "$tg2" 100.0 "time mode, one batch: gpupool places the whole job"
is "$tf2" 81.0 "time mode, one batch: fgd keeps arrival order"

# count mode: the two pods in each seed's shuffled order (--inflate 1.81: the
# workload is exactly the trace); some seeds put the 810 first
for b in 1 2; do
    out=$("$SIM" replay -q --json -n "$T_TMP/n.csv" -p "$T_TMP/p.csv" -P gpupool,fgd \
        --inflate 1.81 --seeds 42-51 --batch "$b")
    ok $? "count mode, --batch $b runs"
    eval "cg$b=$(field "$(line "$out" gpupool)" alloc_pct_130)"
    eval "cf$b=$(field "$(line "$out" fgd)" alloc_pct_130)"
done
num_gt 100 "$cg1"; ok $? "count mode, one at a time: gpupool below 100% ($cg1%: the 810 came first in some seeds)"
is "$cg2" 100.0 "count mode, batches of 2: gpupool places the whole job in every seed"
is "$cf2" "$cf1" "count mode, batches of 2: fgd as one at a time"

# the openb trace: fgd order-blind, gpupool --batch 1 the published method
run() { # the JSON line, timing and memory aside
    "$SIM" replay -q --json -n "$NODES" -p "$PODS" --seeds 42 "$@" |
        sed -E 's/"(wall_s|max_rss_mib)":[0-9.e+-]*//g'
}
a=$(run -P fgd) && b=$(run -P fgd --batch 1024)
ok $? "openb, fgd with batches of 1,024 runs"
is "$b" "$a" "openb: fgd with batches of 1,024 gives what it gives one at a time"
a=$(run -P gpupool) && b=$(run -P gpupool --batch 1)
is "$b" "$a" "openb: gpupool with --batch 1 gives what it gives without the option"

"$SIM" replay -q -n "$T_TMP/n.csv" -p "$T_TMP/p.csv" --batch 0 2>"$T_TMP/err" >/dev/null
isnt $? 0 "--batch 0 is refused"
grep -q -- '--batch' "$T_TMP/err"; ok $? "and the message names the option"

done_testing
